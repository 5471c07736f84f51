//! `t2v info`: the devices this build can use and, with a model or component files, what was
//! found in them: each component's tensors checked against the architecture from headers alone.

use super::{bad_input, Failure, ModelArgs};
use clap::Args;
use t2v_bridge::device::{list_devices, parse_dtype};
use t2v_bridge::{DeviceChoice, MemoryBudget};
use t2v_models::checkpoint::{
    self, configs, validate, ComponentFiles, FoundComponents, ModelFiles,
};
use t2v_models::residency::{self, ModelInventory, PlanRequest};

#[derive(Args)]
pub struct InfoArgs {
    #[command(flatten)]
    models: ModelArgs,
    /// The compute dtype to report per-component precisions for (f32, bf16 or f16)
    /// [default: f32; with --plan bf16, as on a GPU].
    #[arg(long)]
    dtype: Option<String>,
    /// The device to report precisions for: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Print the residency plan of a generation (headers only: no tokenizer needed): what is
    /// on the GPU at each stage and the planned peak.
    #[arg(long)]
    plan: bool,
    /// The plan's memory budget: auto (this device's free memory; no limit on the CPU) or a
    /// card size in GB (24, 16, 12, 8).
    #[arg(long, default_value = "auto", requires = "plan")]
    vram: MemoryBudget,
    /// The plan's frame width.
    #[arg(long, default_value_t = 832, requires = "plan")]
    width: usize,
    /// The plan's frame height.
    #[arg(long, default_value_t = 480, requires = "plan")]
    height: usize,
    /// The plan's frame count (4k+1).
    #[arg(long, default_value_t = 81, requires = "plan")]
    frames: usize,
    /// The plan's guidance scale (above 1: classifier-free guidance, two prompts).
    #[arg(long, default_value_t = 5.0, requires = "plan")]
    guidance: f64,
}

fn describe(
    name: &str,
    files: &ComponentFiles,
    compute: candle_core::DType,
) -> Result<String, Failure> {
    let weights = checkpoint::open_component(files)?;
    let stored = weights.storage_summary();
    let mut out = format!(
        "{name}:\n  layout: {:?} names{}\n  stored as: {stored}\n  runs in: {}\n",
        files.layout.naming,
        if files.layout.prefix.is_empty() {
            String::new()
        } else {
            format!(", prefix `{}`", files.layout.prefix)
        },
        compute.as_str()
    );
    for f in &files.files {
        out += &format!("  file: {}\n", f.display());
    }
    if let Some(c) = &files.config {
        out += &format!("  config: {}\n", c.display());
    }
    Ok(out)
}

/// Checks every tensor's name and shape against the architecture (headers only); prints the
/// result and returns the number of problems.
fn check_tensors(files: &ComponentFiles) -> usize {
    match validate::check_component(files) {
        Ok(check) if check.is_ok() => {
            println!(
                "  tensors: {} required, all present with the right shapes",
                check.required
            );
            0
        }
        Ok(check) => {
            println!(
                "  tensors: {} required, {} problem(s):",
                check.required,
                check.problem_count()
            );
            for line in check.to_string().lines() {
                println!("    {line}");
            }
            check.problem_count()
        }
        Err(e) => {
            println!("  tensors: not checked: {e}");
            1
        }
    }
}

pub fn run(args: InfoArgs) -> Result<(), Failure> {
    println!("devices:");
    for (name, status) in list_devices() {
        match status {
            Ok(()) => println!("  {name}: available"),
            Err(why) => println!("  {name}: unavailable ({why})"),
        }
    }
    let choice: DeviceChoice = args
        .device
        .parse()
        .map_err(|e: String| bad_input(format!("--device: {e}")))?;
    let device = choice.resolve()?;
    println!(
        "auto picks: {}",
        t2v_bridge::device::device_name(&DeviceChoice::Auto.resolve()?)
    );
    let mut args = args;
    if args.models.is_empty() {
        if !args.plan {
            return Ok(());
        }
        // As `t2v generate` without a model: the demo model.
        args.models.model = Some(t2v_demo::model_dir());
    }
    let overrides = args.models.overrides();
    let default_dtype = if args.plan { "bf16" } else { "f32" };
    let dtype = parse_dtype(args.dtype.as_deref().unwrap_or(default_dtype))
        .map_err(|e| bad_input(format!("--dtype: {e}")))?;
    let model = args.models.model.as_deref();
    let found = ModelFiles::find(model, &overrides)?;
    println!(
        "\nmodel: {}",
        model.map_or("(component files)".to_string(), |r| r.display().to_string())
    );
    let components = [
        ("transformer", &found.transformer, dtype),
        ("VAE", &found.vae, checkpoint::vae_dtype(dtype, &device)),
        (
            "text encoder (umT5)",
            &found.text_encoder,
            checkpoint::text_encoder_dtype(dtype),
        ),
    ];
    let mut problems = 0;
    for (name, files, compute) in components {
        match files {
            Some(files) => {
                print!("{}", describe(name, files, compute)?);
                problems += check_tensors(files);
            }
            None => println!("{name}: not given"),
        }
    }
    match &found.tokenizer {
        Some(t) => println!("tokenizer: {}", t.display()),
        None => println!("tokenizer: not given"),
    }
    if let Some(files) = &found.transformer {
        if let Ok(dit) = configs::transformer_config(
            &checkpoint::open_component(files)?,
            files.config.as_deref(),
        ) {
            println!(
                "transformer: {} layers, {} heads x {}, {} latent channels",
                dit.num_layers, dit.num_attention_heads, dit.attention_head_dim, dit.in_channels
            );
        }
    }
    if problems > 0 {
        println!("components fit together: NO (the tensors above do not match the architecture)");
        return Err(bad_input(format!(
            "{problems} problem(s) with the checkpoint's tensors, listed above"
        )));
    }
    let fit = print_fit(found.clone(), model);
    if args.plan {
        print_plan(&args, &found, dtype, &device)?;
    }
    fit
}

/// The residency plan, last: it ends with the planned-peak line.
fn print_plan(
    args: &InfoArgs,
    found: &FoundComponents,
    dtype: candle_core::DType,
    device: &candle_core::Device,
) -> Result<(), Failure> {
    let (Some(transformer), Some(vae), Some(text_encoder)) =
        (&found.transformer, &found.vae, &found.text_encoder)
    else {
        return Err(bad_input(
            "--plan needs the transformer, the VAE and the text encoder (a model folder, or all three files)",
        ));
    };
    let model = ModelInventory::open(transformer, vae, text_encoder)?;
    let request = PlanRequest {
        width: args.width,
        height: args.height,
        frames: args.frames,
        guidance: args.guidance > 1.0,
        dtype,
    };
    let budget = args.vram.resolve(t2v_bridge::memory::free_memory(device));
    let plan = residency::plan(&model, &request, budget)?;
    println!("\n{plan}");
    Ok(())
}

/// Whether the components fit together, and the model's fingerprint.
fn print_fit(found: FoundComponents, model: Option<&std::path::Path>) -> Result<(), Failure> {
    let Ok(files) = found.finish(model) else {
        println!("components fit together: not checked (only some components given)");
        return Ok(());
    };
    let dit = configs::transformer_config(
        &checkpoint::open_component(&files.transformer)?,
        files.transformer.config.as_deref(),
    )?;
    let vae = configs::vae_config(
        &checkpoint::open_component(&files.vae)?,
        files.vae.config.as_deref(),
    )?;
    let text = configs::text_encoder_config(
        &checkpoint::open_component(&files.text_encoder)?,
        files.text_encoder.config.as_deref(),
    )?;
    match checkpoint::check_compatible(&dit, &vae, &text) {
        Ok(()) => println!("components fit together: yes"),
        Err(e) => println!("components fit together: NO ({e})"),
    }
    println!(
        "fingerprint: {}",
        t2v_bridge::cache_key::model_fingerprint(&files)?
    );
    Ok(())
}
