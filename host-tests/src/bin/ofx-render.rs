//! `ofx-render`: renders frames of an OFX generator bundle to PNG files, printing the
//! messages and progress the plugin sent.

use clap::Parser;
use ofx_bindings::{Context, PixelDepth};
use ofx_test_host::{find_bundles, search_path, Host, HostProfile, ProgressEvent, RenderRequest};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Render frames of an OFX generator bundle to PNG files")]
struct Args {
    /// A NAME.ofx.bundle, or a bundle name to look up on OFX_PLUGIN_PATH (then /usr/OFX/Plugins).
    #[arg(long)]
    bundle: String,
    /// Plugin identifier (default: the bundle's first plugin).
    #[arg(long)]
    plugin: Option<String>,
    #[arg(long, default_value = "generator", value_parser = ["generator", "general"])]
    context: String,
    /// Parameter values, `name=value` (numbers, true/false, choice labels or indices, text).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Frames to render, `A-B` or `A`.
    #[arg(long, default_value = "1")]
    frames: String,
    #[arg(long, default_value = "float", value_parser = ["byte", "short", "float"])]
    depth: String,
    /// Render as a background (batch) host: IsBackground=1, sequential, not interactive.
    #[arg(long)]
    background: bool,
    /// Project size `WxH` in pixels.
    #[arg(long, default_value = "640x360")]
    size: String,
    /// Output pattern, `%04d` is replaced by the frame number.
    #[arg(long)]
    output: String,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ofx-render: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_frames(text: &str) -> Result<Vec<i32>, String> {
    let bad = || format!("--frames {text:?}: expected A or A-B");
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        ),
        None => {
            let a = text.trim().parse().map_err(|_| bad())?;
            (a, a)
        }
    };
    if b < a {
        return Err(bad());
    }
    Ok((a..=b).collect())
}

fn output_path(pattern: &str, frame: i32) -> PathBuf {
    PathBuf::from(
        pattern
            .replace("%04d", &format!("{frame:04}"))
            .replace("%d", &frame.to_string()),
    )
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let frames = parse_frames(&args.frames)?;
    let (w, h) = args.size.split_once('x').ok_or("--size: expected WxH")?;
    let profile = HostProfile::generic()
        .background(args.background)
        .project_size(w.parse()?, h.parse()?);
    let mut host = Host::new(profile);
    host.set_isolated_loading(false);

    let mut bundle_path = PathBuf::from(&args.bundle);
    if !bundle_path.exists() {
        let wanted = format!("{}.ofx.bundle", args.bundle.trim_end_matches(".ofx.bundle"));
        bundle_path = find_bundles(&search_path())
            .into_iter()
            .find(|b| b.file_name().is_some_and(|n| n.to_string_lossy() == wanted))
            .ok_or_else(|| format!("no bundle {wanted} here or on OFX_PLUGIN_PATH"))?;
    }
    let bundle = host.load_bundle(&bundle_path)?;
    let plugin = bundle.plugin(args.plugin.as_deref())?;
    let context = if args.context == "general" {
        Context::General
    } else {
        Context::Generator
    };
    let depth = match args.depth.as_str() {
        "byte" => PixelDepth::Byte,
        "short" => PixelDepth::Short,
        _ => PixelDepth::Float,
    };
    eprintln!(
        "{} v{}.{} ({:?}, {:?})",
        plugin.identifier(),
        plugin.info().version.0,
        plugin.info().version.1,
        context,
        depth
    );
    let instance = plugin.create_instance(context)?;
    for assignment in &args.set {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("--set {assignment:?}: expected name=value"))?;
        instance.set_param_from_str(name, value)?;
    }
    let times: Vec<f64> = frames.iter().map(|&f| f as f64).collect();
    let result = instance.render_sequence(&times, &RenderRequest::new(times[0], depth));
    for m in host.messages().iter().chain(instance.messages().iter()) {
        eprintln!(
            "[{}] {}: {}",
            m.kind.trim_start_matches("OfxMessage"),
            m.id,
            m.text
        );
    }
    let updates = instance
        .progress_events()
        .iter()
        .filter(|e| matches!(e, ProgressEvent::Update(_)))
        .count();
    if updates > 0 {
        eprintln!("progress: {updates} update(s)");
    }
    if let Some(m) = instance.persistent_message() {
        eprintln!("status: {}", m.text);
    }
    for (image, frame) in result?.iter().zip(&frames) {
        let path = output_path(&args.output, *frame);
        if let Some(dir) = std::path::Path::new(&path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)?;
        }
        image.save_png(&path)?;
        println!("{}", path.display());
    }
    Ok(())
}
