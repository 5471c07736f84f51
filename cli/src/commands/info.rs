//! `t2v info`: the devices this build can use and, with a model, what was found in it.

use super::{bad_input, Failure, ModelArgs};
use clap::Args;
use t2v_bridge::device::{list_devices, parse_dtype};
use t2v_bridge::DeviceChoice;
use t2v_models::checkpoint::{self, configs, ComponentFiles, ModelFiles};

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
    let stored = weights
        .dominant_dtype()
        .map_or("?".to_string(), |d| d.as_str().to_string());
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
    let files = ModelFiles::resolve(args.models.model.as_deref(), &overrides)?;
    println!(
        "\nmodel: {}",
        files
            .root
            .as_ref()
            .map_or("(component files)".to_string(), |r| r.display().to_string())
    );
    print!("{}", describe("transformer", &files.transformer, dtype)?);
    print!(
        "{}",
        describe("VAE", &files.vae, checkpoint::vae_dtype(dtype, &device))?
    );
    print!(
        "{}",
        describe(
            "text encoder (umT5)",
            &files.text_encoder,
            checkpoint::text_encoder_dtype(dtype)
        )?
    );
    println!("tokenizer: {}", files.tokenizer.display());
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
    println!(
        "transformer: {} layers, {} heads x {}, {} latent channels",
        dit.num_layers, dit.num_attention_heads, dit.attention_head_dim, dit.in_channels
    );
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
