//! `t2v info`: the devices this build can use and, with a model or component files, what was
//! found in them: each component's tensors checked against the architecture from headers alone.

use super::{bad_input, Failure, ModelArgs};
use clap::Args;
use t2v_bridge::device::{list_devices, parse_dtype};
use t2v_bridge::DeviceChoice;
use t2v_models::checkpoint::{self, configs, validate, ComponentFiles, ModelFiles};

#[derive(Args)]
pub struct InfoArgs {
    #[command(flatten)]
    models: ModelArgs,
    /// The compute dtype to report per-component precisions for: f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// The device to report precisions for: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
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
    if args.models.is_empty() {
        return Ok(());
    }
    let overrides = args.models.overrides();
    let dtype = parse_dtype(&args.dtype).map_err(|e| bad_input(format!("--dtype: {e}")))?;
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
