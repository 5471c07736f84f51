//! `t2v bench --vram N`: for each size, the residency plan a memory budget gives (random weights
//! of the bench's model configuration, planned from their shapes) next to what running that
//! plan's transformer measures: the time of one CFG step and, on a GPU, the peak memory in use.

use crate::bench::{time, BenchModel, BenchOptions, MemoryMeter};
use candle_core::{Device, Tensor};
use t2v_models::dit::{TokenTimesteps, WanTransformer};
use t2v_models::residency::{
    self, Mechanisms, MemoryBudget, ModelInventory, PlanRequest, PlanStage, ResidencyPlan,
    TransformerPlacement, GIB,
};
use t2v_models::weights::{ModelConfigs, RandomWeights};

pub struct BudgetRow {
    pub size: String,
    pub plan: ResidencyPlan,
    /// Seconds of one CFG step (two forwards) with the plan's transformer.
    pub step_seconds: f64,
    /// Peak device memory in use while stepping; `None` without a GPU.
    pub measured_peak: Option<u64>,
}

fn describe(m: &Mechanisms) -> String {
    let dit = match m.transformer {
        TransformerPlacement::Resident => "transformer resident".to_string(),
        TransformerPlacement::Streamed { slots } => format!("blocks streamed ({slots} slots)"),
    };
    let ffn = if m.ffn_chunks > 1 {
        format!(", FFN in {}", m.ffn_chunks)
    } else {
        String::new()
    };
    format!("{dit}{ffn}")
}

/// The transformer as the plan runs it, with random weights.
fn planned_transformer(
    cfg: &t2v_models::dit::DitConfig,
    plan: &ResidencyPlan,
    opts: &BenchOptions,
) -> candle_core::Result<WanTransformer> {
    let model = match plan.mechanisms.transformer {
        TransformerPlacement::Resident => {
            RandomWeights::transformer(cfg, opts.dtype, &opts.device)?
        }
        TransformerPlacement::Streamed { slots } => WanTransformer::new_streamed(
            cfg,
            RandomWeights::var_builder(opts.dtype, &opts.device),
            RandomWeights,
            slots,
        )?,
    };
    Ok(model.with_ffn_chunks(plan.mechanisms.ffn_chunks))
}

pub fn run(
    opts: &BenchOptions,
    budget: MemoryBudget,
    log: &mut dyn FnMut(&str),
) -> t2v_models::Result<Vec<BudgetRow>> {
    let configs = match opts.model {
        BenchModel::Real => ModelConfigs::wan22_ti2v_5b(),
        BenchModel::Tiny => ModelConfigs::tiny(),
    };
    let inventory = ModelInventory::from_configs(
        &configs.transformer,
        &configs.text_encoder,
        &configs.vae,
        opts.dtype,
    )?;
    let free = t2v_bridge::memory::free_memory(&opts.device);
    let meter = MemoryMeter::start(&opts.device);
    let cfg = &configs.transformer;
    let mut rows = Vec::new();
    for size in &opts.sizes {
        let request = PlanRequest {
            width: size.width,
            height: size.height,
            frames: size.frames,
            guidance: true,
            dtype: opts.dtype,
        };
        let plan = residency::plan(&inventory, &request, budget.resolve(free))?;
        log(&format!(
            "{}: {} ({})",
            size.label(),
            plan.peak_line(),
            describe(&plan.mechanisms)
        ));
        meter.reset();
        let dit = planned_transformer(cfg, &plan, opts)?;
        let dev = &opts.device;
        let context =
            Tensor::randn(0f32, 1.0, (1, 512, cfg.text_dim), dev)?.to_dtype(opts.dtype)?;
        let prompt = dit.prepare_context(&context)?;
        let negative = dit.prepare_context(&context)?;
        let latents = size.random_latents(cfg.in_channels, dev)?;
        let steps = TokenTimesteps::uniform(size.tokens(cfg), 500.0);
        log(&format!("timing one CFG step at {}", size.label()));
        let step_seconds = time(opts.repeats, dev, || {
            dit.forward(&latents, &steps, &prompt)?;
            dit.forward(&latents, &steps, &negative)
        })?;
        let measured_peak = if dev.is_cuda() {
            meter.peak(true)
        } else {
            None
        };
        rows.push(BudgetRow {
            size: size.label(),
            plan,
            step_seconds,
            measured_peak,
        });
    }
    Ok(rows)
}

/// The table `t2v bench --vram` prints.
pub fn table(budget: MemoryBudget, device: &Device, rows: &[BudgetRow]) -> String {
    let gib = |b: u64| format!("{:.2} GiB", b as f64 / GIB as f64);
    let mut out = format!(
        "memory budget {budget} on {device:?}\n{:<14} {:<32} {:>13} {:>13} {:>13} {:>9}\n",
        "size", "mechanisms", "planned peak", "planned step", "measured", "s/step"
    );
    for r in rows {
        let denoise = r.plan.stage(PlanStage::Denoise).total() + r.plan.overhead;
        let measured = match r.measured_peak {
            Some(b) => gib(b),
            None => "not measured".to_string(),
        };
        out += &format!(
            "{:<14} {:<32} {:>13} {:>13} {:>13} {:>9.3}\n",
            r.size,
            describe(&r.plan.mechanisms),
            gib(r.plan.peak()),
            gib(denoise),
            measured,
            r.step_seconds
        );
    }
    if rows.iter().any(|r| r.measured_peak.is_none()) {
        out +=
            "GPU memory not measured: no GPU was used (the planned figures are the plan's own).\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{BenchSize, BenchStage};
    use candle_core::DType;

    #[test]
    fn the_tiny_model_is_planned_and_timed_and_says_what_was_not_measured() {
        let opts = BenchOptions {
            model: BenchModel::Tiny,
            stages: vec![BenchStage::Transformer],
            sizes: vec![BenchSize {
                width: 64,
                height: 64,
                frames: 5,
            }],
            device: Device::Cpu,
            dtype: DType::F32,
            repeats: 1,
            prompt_tokens: 8,
            upscalers: Vec::new(),
        };
        let rows = run(&opts, MemoryBudget::Gib(8), &mut |_| {}).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].step_seconds > 0.0);
        assert_eq!(rows[0].measured_peak, None);
        assert_eq!(rows[0].plan.mechanisms, Mechanisms::FASTEST);
        let t = table(MemoryBudget::Gib(8), &Device::Cpu, &rows);
        assert!(t.contains("64x64x5"), "{t}");
        assert!(t.contains("not measured"), "{t}");
        assert!(
            t.contains("GPU memory not measured: no GPU was used"),
            "{t}"
        );
    }
}
