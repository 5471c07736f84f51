//! Generates a few prompts with a demo model folder and writes their frames 0, 8, 16 as one PNG:
//! `show_generation MODEL_DIR OUT.png "prompt" ["prompt" ...]`.
use t2v_demo_trainer::eval::{load, run_case, EvalCase};
use t2v_demo_trainer::judge::Expectation;
use t2v_demo_trainer::world::Colour;
fn main() -> Result<(), Box<dyn std::error::Error>> {
    t2v_demo_trainer::train::single_threaded_candle();
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let models = load(&dir)?;
    let settings = t2v_demo::shipped::settings_in(&dir)?;
    let prompts = &args[3..];
    let (w, h, f) = (settings.width, settings.height, settings.frames);
    let cols = [0, f / 2, f - 1];
    let mut img = image::RgbImage::new((w * cols.len()) as u32, (h * prompts.len()) as u32);
    for (r, prompt) in prompts.iter().enumerate() {
        let case = EvalCase {
            prompt: prompt.clone(),
            expect: Expectation {
                background: Colour::White,
                objects: vec![],
            },
            seed: 1,
            scene: None,
        };
        let t = std::time::Instant::now();
        let (_, data) = run_case(&models, &settings, &case)?;
        println!("{prompt}: {:.1} s", t.elapsed().as_secs_f64());
        for (c, &fi) in cols.iter().enumerate() {
            for y in 0..h {
                for x in 0..w {
                    let i = ((fi * h + y) * w + x) * 3;
                    let px = |k: usize| (data[i + k].clamp(0.0, 1.0) * 255.0) as u8;
                    img.put_pixel(
                        (c * w + x) as u32,
                        (r * h + y) as u32,
                        image::Rgb([px(0), px(1), px(2)]),
                    );
                }
            }
        }
    }
    img.save(&args[2])?;
    Ok(())
}
