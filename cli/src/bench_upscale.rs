//! `t2v bench --stages upscale`: one frame of each bench size through the published
//! Real-ESRGAN networks' architectures (random weights, f32, the service's default tiles), then
//! resized to 720P and 1080P: the per-frame cost `--upscale` adds to a clip. The sizes' frame
//! counts play no part (one frame is timed), so `--size 832x480x1 --size 1280x704x1` times the
//! upscaler on a 480P and a 720P frame.

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

/// The targets each size is upscaled to, with the output size and the row's size label.
const TARGETS: [UpscaleTarget; 2] = [UpscaleTarget::To720p, UpscaleTarget::To1080p];

/// A `width` x `height` frame upscaled to `target`: the output size and the row's label
/// (`832x480 -> 1248x720`).
fn target_row(width: usize, height: usize, target: UpscaleTarget) -> (usize, usize, String) {
    let (w, h) = target.output_size(width, height);
    (w, h, format!("{width}x{height} -> {w}x{h}"))
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
            for target in TARGETS {
                let (w, h, label) = target_row(size.width, size.height, target);
                log(&format!("timing {name} from {label}"));
                let seconds = time(opts.repeats, dev, || {
                    upscaler
                        .upscale_frame(&frame, w, h, &Tiling::DEFAULT, dev)
                        .map_err(|e| candle_core::Error::Msg(e.to_string()))
                })?;
                rows.push(BenchRow {
                    size: label,
                    stage: format!("upscale one frame, {name}"),
                    seconds,
                    flops: None,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{run, BenchModel, BenchSize, BenchStage};
    use candle_core::Device;

    /// The rows of the Wan2.2 sizes: a 480P and a 720P frame, each to 720P and 1080P.
    #[test]
    fn a_480p_and_a_720p_frame_go_to_720p_and_1080p() {
        let labels: Vec<String> = [(832, 480), (1280, 704)]
            .into_iter()
            .flat_map(|(w, h)| TARGETS.map(|t| target_row(w, h, t).2))
            .collect();
        assert_eq!(
            labels,
            [
                "832x480 -> 1248x720",
                "832x480 -> 1872x1080",
                "1280x704 -> 1309x720",
                "1280x704 -> 1964x1080",
            ]
        );
    }

    /// Every bench size gets its rows (small frames here; the same path as 480P and 720P).
    #[test]
    fn the_upscale_stage_reports_every_size_and_target() {
        let size = |width, height| BenchSize {
            width,
            height,
            frames: 1,
        };
        let opts = BenchOptions {
            model: BenchModel::Tiny,
            stages: vec![BenchStage::Upscale],
            sizes: vec![size(32, 16), size(48, 32)],
            device: Device::Cpu,
            dtype: DType::F32,
            repeats: 1,
            prompt_tokens: 8,
            upscalers: vec!["realesr-animevideov3".into()],
        };
        let report = run(&opts, &mut |_| {}).unwrap();
        let rows: Vec<(&str, &str)> = report
            .rows
            .iter()
            .map(|r| (r.size.as_str(), r.stage.as_str()))
            .collect();
        let stage = "upscale one frame, realesr-animevideov3";
        assert_eq!(
            rows,
            [
                ("32x16 -> 1440x720", stage),
                ("32x16 -> 2160x1080", stage),
                ("48x32 -> 1080x720", stage),
                ("48x32 -> 1620x1080", stage),
            ]
        );
        assert!(report
            .rows
            .iter()
            .all(|r| r.seconds.is_finite() && r.seconds > 0.0));
    }
}
