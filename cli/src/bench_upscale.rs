//! `t2v bench --stages upscale`: one frame of each bench size through the published
//! Real-ESRGAN networks' architectures (random weights, f32, the service's default tiles), then
//! resized to 720P and 1080P: the per-frame cost `--upscale` adds to a clip.

use crate::bench::{time, BenchOptions, BenchRow};
use candle_core::{DType, Tensor};
use t2v_bridge::UpscaleTarget;
use t2v_models::upscale::{Architecture, Tiling, Upscaler};
use t2v_models::weights::RandomWeights;

/// The networks timed by default: the video one, and on a GPU also the heaviest (RRDBNet x4 is
/// about 14 TFLOP a 480P frame: minutes on a CPU).
pub fn default_upscalers(device: &candle_core::Device) -> Vec<String> {
    let mut names = vec!["realesr-animevideov3".to_string()];
    if device.is_cuda() {
        names.push("RealESRGAN_x4plus".into());
    }
    names
}

/// The published architecture called `name` (a file name without extension).
pub fn published(name: &str) -> Result<Architecture, String> {
    Architecture::PUBLISHED
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, a)| *a)
        .ok_or_else(|| {
            let names: Vec<_> = Architecture::PUBLISHED.iter().map(|(n, _)| *n).collect();
            format!("unknown upscaler `{name}`: use {}", names.join(", "))
        })
}

pub fn upscale_rows(
    opts: &BenchOptions,
    rows: &mut Vec<BenchRow>,
    log: &mut dyn FnMut(&str),
) -> candle_core::Result<()> {
    let dev = &opts.device;
    for name in &opts.upscalers {
        let architecture = published(name).map_err(candle_core::Error::Msg)?;
        log(&format!(
            "building {name} ({}, random weights)",
            architecture.describe()
        ));
        let upscaler = Upscaler::new(architecture, RandomWeights::var_builder(DType::F32, dev))?;
        for size in &opts.sizes {
            let frame = Tensor::rand(0f32, 1f32, (size.height, size.width, 3), dev)?;
            for target in [UpscaleTarget::To720p, UpscaleTarget::To1080p] {
                let (w, h) = target.output_size(size.width, size.height);
                log(&format!(
                    "timing {name} from {}x{} to {w}x{h}",
                    size.width, size.height
                ));
                let seconds = time(opts.repeats, dev, || {
                    upscaler
                        .upscale_frame(&frame, w, h, &Tiling::DEFAULT, dev)
                        .map_err(|e| candle_core::Error::Msg(e.to_string()))
                })?;
                rows.push(BenchRow {
                    size: format!("{}x{} -> {w}x{h}", size.width, size.height),
                    stage: format!("upscale one frame, {name}"),
                    seconds,
                    flops: None,
                });
            }
        }
    }
    Ok(())
}
