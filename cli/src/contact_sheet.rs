//! A contact sheet comparing clips frame by frame: one row per clip (e.g. per style preset),
//! one column per sampled frame, on a dark grey background with a gap around every cell.

use image::{imageops, Rgb, RgbImage};
use std::path::Path;
use t2v_bridge::Frame;

/// Pixels between cells and around the sheet.
pub const GAP: u32 = 4;
/// Cells wider than this are scaled down (keeping the aspect ratio).
pub const MAX_CELL_WIDTH: u32 = 320;
const BACKGROUND: Rgb<u8> = Rgb([24, 24, 24]);

/// `count` frame indices spread evenly from the first to the last of `frames` frames.
pub fn sample_frames(frames: usize, count: usize) -> Vec<usize> {
    if frames == 0 || count == 0 {
        return Vec::new();
    }
    let count = count.min(frames);
    if count == 1 {
        return vec![0];
    }
    (0..count)
        .map(|i| (i * (frames - 1) + (count - 1) / 2) / (count - 1))
        .collect()
}

/// The size of a cell for frames of `width` x `height`.
pub fn cell_size(width: u32, height: u32) -> (u32, u32) {
    if width <= MAX_CELL_WIDTH {
        (width, height)
    } else {
        (
            MAX_CELL_WIDTH,
            ((height as u64 * MAX_CELL_WIDTH as u64 + width as u64 / 2) / width as u64).max(1)
                as u32,
        )
    }
}

/// One row per clip, its frames at `columns` (indices into every clip); every clip has the
/// size of the first.
pub fn contact_sheet(clips: &[&[Frame]], columns: &[usize]) -> Result<RgbImage, String> {
    let first = clips
        .first()
        .and_then(|c| c.first())
        .ok_or("a contact sheet needs at least one clip with frames")?;
    let (fw, fh) = (first.width() as u32, first.height() as u32);
    let (cw, ch) = cell_size(fw, fh);
    let cols = columns.len() as u32;
    let rows = clips.len() as u32;
    let mut sheet = RgbImage::from_pixel(
        cols * cw + (cols + 1) * GAP,
        rows * ch + (rows + 1) * GAP,
        BACKGROUND,
    );
    for (r, clip) in clips.iter().enumerate() {
        for (c, &index) in columns.iter().enumerate() {
            let frame = clip
                .get(index)
                .ok_or_else(|| format!("clip {r} has no frame {index}"))?;
            if (frame.width() as u32, frame.height() as u32) != (fw, fh) {
                return Err(format!(
                    "clip {r} is {}x{}, not {fw}x{fh} like the first",
                    frame.width(),
                    frame.height()
                ));
            }
            let mut cell = frame.to_rgb8();
            if (cw, ch) != (fw, fh) {
                cell = imageops::resize(&cell, cw, ch, imageops::FilterType::Triangle);
            }
            let x = GAP + c as u32 * (cw + GAP);
            let y = GAP + r as u32 * (ch + GAP);
            imageops::replace(&mut sheet, &cell, x as i64, y as i64);
        }
    }
    Ok(sheet)
}

pub fn write_contact_sheet(
    path: &Path,
    clips: &[&[Frame]],
    columns: &[usize],
) -> Result<(), String> {
    let sheet = contact_sheet(clips, columns)?;
    crate::frames_out::ensure_parent(path)?;
    sheet
        .save(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(w: usize, h: usize, v: u16) -> Frame {
        Frame::from_rgb16(w, h, vec![v; w * h * 3])
    }

    #[test]
    fn samples_spread_from_first_to_last() {
        assert_eq!(sample_frames(81, 5), [0, 20, 40, 60, 80]);
        assert_eq!(sample_frames(5, 5), [0, 1, 2, 3, 4]);
        assert_eq!(sample_frames(3, 5), [0, 1, 2]);
        assert_eq!(sample_frames(9, 1), [0]);
        assert_eq!(sample_frames(17, 4), [0, 5, 11, 16]);
        assert!(sample_frames(0, 4).is_empty());
    }

    #[test]
    fn rows_are_clips_and_columns_are_frames() {
        let a: Vec<Frame> = (0..3).map(|i| flat(8, 6, i * 1000)).collect();
        let b: Vec<Frame> = (0..3).map(|_| flat(8, 6, 65535)).collect();
        let sheet = contact_sheet(&[&a, &b], &[0, 2]).unwrap();
        assert_eq!(sheet.dimensions(), (2 * 8 + 3 * GAP, 2 * 6 + 3 * GAP));
        assert_eq!(sheet.get_pixel(0, 0), &BACKGROUND);
        assert_eq!(
            sheet.get_pixel(GAP, GAP).0,
            a[0].to_rgb8().get_pixel(0, 0).0
        );
        assert_eq!(
            sheet.get_pixel(2 * GAP + 8, GAP).0,
            a[2].to_rgb8().get_pixel(0, 0).0
        );
        assert_eq!(sheet.get_pixel(GAP, 2 * GAP + 6).0, [255, 255, 255]);
        assert!(contact_sheet(&[&a, &b[..1]], &[0, 2])
            .unwrap_err()
            .contains("no frame 2"));
    }

    #[test]
    fn wide_frames_are_scaled_down() {
        assert_eq!(cell_size(832, 480), (320, 185));
        assert_eq!(cell_size(64, 64), (64, 64));
        let a = vec![flat(640, 320, 0)];
        assert_eq!(
            contact_sheet(&[&a], &[0]).unwrap().dimensions(),
            (320 + 2 * GAP, 160 + 2 * GAP)
        );
    }
}
