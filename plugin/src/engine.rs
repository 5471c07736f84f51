//! Which build of the node serves the host: this binary, or the CUDA build beside it.
//!
//! A build with CUDA support links the NVIDIA driver and CUDA libraries, so it cannot even be
//! loaded on a machine without them. The bundle therefore ships the node twice: the CPU build as
//! `TextToVideo.ofx` (what the host loads), and the CUDA build as [`CUDA_ENGINE_FILE`] next to
//! it. When the host asks the CPU build for its plugins, it checks for the NVIDIA driver; if the
//! driver is there and the CUDA build loads, it hands the host the CUDA build's plugins (same
//! identifier, its own entry points), else its own, and the node says why it runs on the CPU.
//!
//! `T2V_ENGINE` overrides the choice: `cpu` never loads the CUDA build, `cuda` loads it without
//! checking for the driver first (for diagnosis: the log says what the loader answered);
//! `T2V_CUDA_ENGINE` names another file to load as the CUDA build.

use ofx_bindings::binary::OfxBinary;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The CUDA build's file name in the bundle's binary folder.
pub const CUDA_ENGINE_FILE: &str = if cfg!(windows) {
    "TextToVideo-cuda.dll"
} else {
    "TextToVideo-cuda.so"
};
pub const ENGINE_ENV: &str = "T2V_ENGINE";
pub const CUDA_ENGINE_ENV: &str = "T2V_CUDA_ENGINE";

pub enum Engine {
    /// This binary serves the node; for a CPU build, the reason the CUDA build does not.
    Own { cpu_reason: Option<String> },
    /// The CUDA build serves it.
    Cuda(OfxBinary),
}

/// The engine, chosen on first use (the host's first `OfxGetNumberOfPlugins`).
pub fn current() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        // Code of this binary may be left to run at thread exit (the standard library's
        // thread-local destructors, registered by logging), and a CUDA build it hands over to
        // stays loaded: keep this binary mapped too, whatever the host unloads.
        ofx_bindings::entry::pin_binary();
        let engine = choose();
        match &engine {
            Engine::Own {
                cpu_reason: Some(why),
            } => crate::log!("engine: CPU ({why})"),
            Engine::Own { cpu_reason: None } => crate::log!("engine: this build (CUDA)"),
            Engine::Cuda(binary) => crate::log!("engine: CUDA, {}", binary.path().display()),
        }
        engine
    })
}

/// Why the node computes on the CPU although it could use a GPU, for its status; `None` when
/// this is the CUDA build.
pub fn cpu_reason() -> Option<&'static str> {
    match current() {
        Engine::Own { cpu_reason } => cpu_reason.as_deref(),
        Engine::Cuda(_) => None,
    }
}

fn own(reason: impl Into<String>) -> Engine {
    Engine::Own {
        cpu_reason: Some(reason.into()),
    }
}

fn choose() -> Engine {
    if cfg!(feature = "cuda") {
        return Engine::Own { cpu_reason: None };
    }
    let mode = std::env::var(ENGINE_ENV)
        .unwrap_or_default()
        .to_ascii_lowercase();
    match mode.as_str() {
        "" | "auto" | "cuda" => {}
        "cpu" => return own(format!("{ENGINE_ENV}=cpu")),
        other => crate::log!("engine: ignoring {ENGINE_ENV}={other} (use auto, cpu or cuda)"),
    }
    let Some(path) = cuda_engine_path() else {
        return own("this bundle has no CUDA engine");
    };
    if !path.is_file() {
        return own("this bundle has no CUDA engine");
    }
    if mode != "cuda" && !nvidia_driver_present() {
        return own("no NVIDIA driver found");
    }
    if Some(&path) == ofx_bindings::entry::binary_path().as_ref() {
        return own("the CUDA engine is this binary");
    }
    // SAFETY: the file is the bundle's CUDA build of this node (or what T2V_CUDA_ENGINE names).
    match unsafe { OfxBinary::open(&path) } {
        Ok(binary) if binary.number_of_plugins() > 0 => Engine::Cuda(binary),
        Ok(binary) => own(format!("{} has no plugins", binary.path().display())),
        Err(e) => own(format!("the CUDA engine did not load: {e}")),
    }
}

fn cuda_engine_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(CUDA_ENGINE_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    Some(
        ofx_bindings::entry::binary_path()?
            .parent()?
            .join(CUDA_ENGINE_FILE),
    )
}

/// Whether the NVIDIA driver library opens (it is only opened to check, then closed).
fn nvidia_driver_present() -> bool {
    let names: &[&str] = if cfg!(windows) {
        &["nvcuda.dll"]
    } else if cfg!(target_os = "macos") {
        &[]
    } else {
        &["libcuda.so.1", "libcuda.so"]
    };
    // SAFETY: the driver library's initialisers are made to run in any process.
    names
        .iter()
        .any(|&name| unsafe { libloading::Library::new(name) }.is_ok())
}
