//! The demo model's shipped tiny decoder and upscaler do their job on world clips they never
//! trained on, loaded the way the product loads them (`t2v_models::taehv::load_taehv`,
//! `t2v_models::upscale::Upscaler::load`).

use candle_core::{DType, Device};
use t2v_demo_trainer::configs::Preset;
use t2v_demo_trainer::{fast_decode as fd, upscaler as up};

t2v_support::before_main!(
    SINGLE_THREADED_CANDLE,
    t2v_demo_trainer::train::single_threaded_candle
);

#[test]
fn the_shipped_tiny_decoder_reproduces_the_full_decode() {
    let model = t2v_demo::shipped::bundled_model_dir();
    let vae = fd::load_vae(&model).unwrap();
    // Held-out clips, as the trainer measures them (its eval offset).
    let samples = fd::decoded_samples(&vae, &Preset::full(), 2, 7, 2).unwrap();
    let tiny =
        t2v_models::taehv::load_taehv(&model.join(fd::TINY_DECODER_FILE), DType::F32, &Device::Cpu)
            .unwrap();
    let db = fd::tiny_decoder_psnr(&tiny, &samples).unwrap();
    eprintln!("tiny decoder vs full decode: {db:.2} dB");
    // Measured 23.4 dB on these 2 (the trainer: 22.5 dB on its 4 held-out clips; the
    // latent-to-RGB projection: 20.4 dB).
    assert!(db > 22.0, "tiny decoder vs full decode: {db:.2} dB");
}

#[test]
fn the_shipped_upscaler_keeps_its_measured_quality_on_held_out_frames() {
    let model = t2v_demo::shipped::bundled_model_dir();
    let upscaler =
        t2v_models::upscale::Upscaler::load(&model.join(up::UPSCALER_FILE), &Device::Cpu).unwrap();
    assert_eq!(upscaler.scale(), 2);
    let pairs = up::frame_pairs(&Preset::full(), 4, 7).unwrap();
    let (net, bicubic) = up::upscaler_psnr(&upscaler, &pairs).unwrap();
    eprintln!("upscaler {net:.2} dB, bicubic {bicubic:.2} dB");
    // Measured 49.6 dB on these 4 frames, where bicubic reaches 41.0 dB (docs/demo-model.md).
    assert!(
        net > bicubic + 6.0,
        "upscaler {net:.2} dB, bicubic {bicubic:.2} dB"
    );
}
