//! Writes original | reconstruction frames 0, 8 and 16 of a few scenes through the VAE a training
//! run left in its work folder: `show_vae target/demo-train out.png`.
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use t2v_demo_trainer::world::{Scene, Split, FRAMES, HEIGHT, WIDTH};
use t2v_models::vae::WanVae;
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let work = std::env::args().nth(1).unwrap();
    let out = std::env::args().nth(2).unwrap();
    let preset = t2v_demo_trainer::configs::Preset::full();
    let cfg = preset.sizes.vae();
    let map = VarMap::new();
    let vae = WanVae::new(
        &cfg,
        VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu),
    )?;
    let tensors = candle_core::safetensors::load(format!("{work}/vae.safetensors"), &Device::Cpu)?;
    for (name, var) in map.data().lock().unwrap().iter() {
        var.set(&tensors[name])?;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let rows = 4;
    let cols = [0usize, 8, 16];
    let mut img = image::RgbImage::new((WIDTH * 2 * cols.len()) as u32, (HEIGHT * rows) as u32);
    let mut err = 0f32;
    for r in 0..rows {
        let scene = Scene::sample(
            &mut rng,
            Split::Train,
            0.3,
            t2v_demo_trainer::world::Layout::Anywhere,
            WIDTH,
            HEIGHT,
        );
        let clip = Tensor::from_vec(
            scene.render_clip(),
            (1, 3, FRAMES, HEIGHT, WIDTH),
            &Device::Cpu,
        )?;
        let mu = vae.encode(&clip)?;
        let rec = vae.decode(&mu)?;
        err += (&rec - &clip)?.abs()?.mean_all()?.to_scalar::<f32>()?;
        let a: Vec<f32> = clip.flatten_all()?.to_vec1()?;
        let b: Vec<f32> = rec.flatten_all()?.to_vec1()?;
        let plane = FRAMES * HEIGHT * WIDTH;
        for (ci, &f) in cols.iter().enumerate() {
            for (k, src) in [&a, &b].iter().enumerate() {
                for y in 0..HEIGHT {
                    for x in 0..WIDTH {
                        let i = (f * HEIGHT + y) * WIDTH + x;
                        let px = |c: usize| {
                            (((src[c * plane + i] + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0) as u8
                        };
                        img.put_pixel(
                            ((ci * 2 + k) * WIDTH + x) as u32,
                            (r * HEIGHT + y) as u32,
                            image::Rgb([px(0), px(1), px(2)]),
                        );
                    }
                }
            }
        }
    }
    println!("mean abs error {:.4}", err / rows as f32);
    img.save(out)?;
    Ok(())
}
