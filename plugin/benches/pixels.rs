//! How long the node takes to write one frame into a host image: `cargo bench -p
//! t2v-ofx-plugin --bench pixels` prints milliseconds per frame for each depth and colour at
//! 832x480 and 1280x704 (the aim: under 5 ms for an 832x480 Float frame).

use ofx_bindings::sys::OfxRectI;
use std::time::Instant;
use t2v_bridge::Frame;
use text_to_video::colour::{tables, Colour};
use text_to_video::pixels::{write_frame_rows, Out};

fn time_one<T: Out + Copy>(frame: &Frame, colour: Colour, scale: f64) -> f64 {
    let (w, h) = (
        (frame.width() as f64 * scale) as usize,
        (frame.height() as f64 * scale) as usize,
    );
    let mut buf = vec![T::default(); w * h * 4];
    let window = OfxRectI {
        x1: 0,
        y1: 0,
        x2: w as i32,
        y2: h as i32,
    };
    let runs = 20;
    let start = Instant::now();
    for _ in 0..runs {
        let rows: Vec<(i32, &mut [T])> = buf
            .chunks_exact_mut(w * 4)
            .enumerate()
            .map(|(y, r)| (y as i32, r))
            .collect();
        write_frame_rows(rows, 0, window, frame, scale, colour);
    }
    std::hint::black_box(&buf);
    start.elapsed().as_secs_f64() * 1000.0 / runs as f64
}

fn main() {
    for (w, h) in [(832, 480), (1280, 704)] {
        let frame = Frame::from_rgb16(
            w,
            h,
            (0..w * h * 3).map(|i| (i * 7919 % 65536) as u16).collect(),
        );
        for colour in [Colour::SrgbDisplay, Colour::Linear, Colour::Rec709] {
            tables(colour);
            println!(
                "{w}x{h} {colour:?}: float {:.2} ms, short {:.2} ms, byte {:.2} ms, float at half scale {:.2} ms",
                time_one::<f32>(&frame, colour, 1.0),
                time_one::<u16>(&frame, colour, 1.0),
                time_one::<u8>(&frame, colour, 1.0),
                time_one::<f32>(&frame, colour, 0.5),
            );
        }
    }
}
