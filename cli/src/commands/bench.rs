//! `t2v bench`: times each stage of the architecture with random weights (see
//! `t2v_cli::bench`) and prints a table, optionally JSON.

use super::{bad_input, failure, Failure};
use crate::bench::{self, BenchModel, BenchOptions, BenchSize, BenchStage};
use clap::Args;
use std::path::PathBuf;
use t2v_bridge::DeviceChoice;

#[derive(Args)]
pub struct BenchArgs {
    /// real (Wan2.2 TI2V-5B's configuration; needs a large GPU) or tiny. Default: real on CUDA,
    /// tiny on the CPU.
    #[arg(long = "model-size")]
    model_size: Option<String>,
    /// Clip sizes WIDTHxHEIGHTxFRAMES (repeatable). Default: 832x480x121 and 1280x704x121 (real) or 256x160x17 (tiny).
    #[arg(long = "size")]
    sizes: Vec<String>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// f32, bf16 or f16.
    #[arg(long, default_value = "bf16")]
    dtype: String,
    /// Timed repetitions per measurement, after one warm-up.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Prompt length in tokens for the text-encoder timing.
    #[arg(long = "prompt-tokens", default_value_t = 64)]
    prompt_tokens: usize,
    /// Stages to run, comma-separated: text, transformer, attention, vae, generation, upscale,
    /// preview.
    /// Default: all.
    #[arg(long, value_delimiter = ',')]
    stages: Vec<String>,
    /// The published upscalers the upscale stage times (repeatable): realesr-animevideov3,
    /// realesr-general-x4v3, RealESRGAN_x2plus, RealESRGAN_x4plus [default:
    /// realesr-animevideov3, plus RealESRGAN_x4plus on CUDA].
    #[arg(long = "upscaler")]
    upscalers: Vec<String>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Instead of the stages: the residency plan of this memory budget (auto, 24, 16, 12, 8)
    /// for each size, its planned peak next to one CFG step of the plan's transformer, timed,
    /// with the peak GPU memory measured on a GPU.
    #[arg(long, conflicts_with_all = ["stages", "json"])]
    vram: Option<t2v_bridge::MemoryBudget>,
}

fn parse_size(s: &str) -> Result<BenchSize, Failure> {
    let parts: Vec<usize> = s
        .split('x')
        .map(|p| p.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            bad_input(format!(
                "--size `{s}`: use WIDTHxHEIGHTxFRAMES, e.g. 832x480x81"
            ))
        })?;
    let [width, height, frames] = parts[..] else {
        return Err(bad_input(format!(
            "--size `{s}`: use WIDTHxHEIGHTxFRAMES, e.g. 832x480x81"
        )));
    };
    t2v_models::pipeline::request::validate_size(width, height)?;
    t2v_models::pipeline::request::validate_frames(frames)?;
    Ok(BenchSize {
        width,
        height,
        frames,
    })
}

pub fn run(args: BenchArgs) -> Result<(), Failure> {
    let device = args
        .device
        .parse::<DeviceChoice>()
        .map_err(|e| bad_input(format!("--device: {e}")))?
        .resolve()?;
    let dtype = t2v_bridge::device::parse_dtype(&args.dtype)
        .map_err(|e| bad_input(format!("--dtype: {e}")))?;
    let model = match args.model_size.as_deref() {
        Some("real") => BenchModel::Real,
        Some("tiny") => BenchModel::Tiny,
        None if device.is_cuda() => BenchModel::Real,
        None => BenchModel::Tiny,
        Some(other) => {
            return Err(bad_input(format!(
                "--model-size `{other}`: use real or tiny"
            )))
        }
    };
    let mut sizes = args
        .sizes
        .iter()
        .map(|s| parse_size(s))
        .collect::<Result<Vec<_>, _>>()?;
    if sizes.is_empty() {
        sizes = match model {
            BenchModel::Real => vec![
                BenchSize {
                    width: 832,
                    height: 480,
                    frames: 121,
                },
                BenchSize {
                    width: 1280,
                    height: 704,
                    frames: 121,
                },
            ],
            BenchModel::Tiny => vec![BenchSize {
                width: 256,
                height: 160,
                frames: 17,
            }],
        };
    }
    let stages = if args.stages.is_empty() {
        BenchStage::ALL.to_vec()
    } else {
        args.stages
            .iter()
            .map(|s| s.parse::<BenchStage>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad_input(format!("--stages: {e}")))?
    };
    let upscalers = if args.upscalers.is_empty() {
        crate::bench_upscale::default_upscalers(&device)
    } else {
        for name in &args.upscalers {
            crate::bench_upscale::published(name)
                .map_err(|e| bad_input(format!("--upscaler: {e}")))?;
        }
        args.upscalers.clone()
    };
    let opts = BenchOptions {
        model,
        stages,
        sizes,
        device,
        dtype,
        repeats: args.repeats.max(1),
        prompt_tokens: args.prompt_tokens.max(1),
        upscalers,
    };
    if let Some(budget) = args.vram {
        let rows = crate::bench_budget::run(&opts, budget, &mut |line| eprintln!("{line}"))?;
        print!(
            "{}",
            crate::bench_budget::table(budget, &opts.device, &rows)
        );
        return Ok(());
    }
    let report =
        bench::run(&opts, &mut |line| eprintln!("{line}")).map_err(|e| failure(e.to_string()))?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        crate::frames_out::ensure_parent(path).map_err(bad_input)?;
        std::fs::write(
            path,
            serde_json::to_string_pretty(&report.json()).expect("json"),
        )
        .map_err(|e| failure(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}
