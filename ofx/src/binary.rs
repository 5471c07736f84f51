//! An OFX binary opened by path: its exported entry points, for a host (the test host) and for a
//! plugin binary that hands the host the plugins of another binary (the CPU build of our node
//! serves the CUDA build's plugins when an NVIDIA driver is present).

use crate::sys::{
    OfxGetNumberOfPluginsFn, OfxGetPluginFn, OfxHost, OfxPlugin, OfxSetHostFn, OfxStatus,
};
use std::ffi::c_int;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum BinaryError {
    /// The dynamic loader refused the file (missing file, missing dependency, wrong format).
    Load { path: PathBuf, message: String },
    /// It loaded but lacks a required entry point.
    MissingSymbol { path: PathBuf, symbol: &'static str },
}

impl std::fmt::Display for BinaryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BinaryError::Load { path, message } => {
                write!(f, "{} could not be loaded: {message}", path.display())
            }
            BinaryError::MissingSymbol { path, symbol } => {
                write!(f, "{} is not an OFX plugin: no {symbol}", path.display())
            }
        }
    }
}

impl std::error::Error for BinaryError {}

fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// A loaded OFX binary. The entry points stay valid while this value (or the library returned
/// by [`OfxBinary::into_library`]) lives.
/// Loads a library. On Windows the libraries it needs are looked for in its own folder first (as
/// the runtime linker's `$ORIGIN` rpath does on Linux), so a plugin can ship them beside itself.
///
/// # Safety
/// As [`libloading::Library::new`]: the library's initialisers run.
unsafe fn load(path: &Path) -> Result<libloading::Library, libloading::Error> {
    #[cfg(windows)]
    {
        use libloading::os::windows::{Library, LOAD_WITH_ALTERED_SEARCH_PATH};
        // SAFETY: as this function's. The flag needs a full path: make it one.
        let full = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        unsafe { Library::load_with_flags(full, LOAD_WITH_ALTERED_SEARCH_PATH) }.map(Into::into)
    }
    #[cfg(not(windows))]
    {
        // SAFETY: as this function's.
        unsafe { libloading::Library::new(path) }
    }
}

pub struct OfxBinary {
    path: PathBuf,
    library: libloading::Library,
    number_of_plugins: OfxGetNumberOfPluginsFn,
    get_plugin: OfxGetPluginFn,
    set_host: Option<OfxSetHostFn>,
}

impl OfxBinary {
    /// Opens `path` and looks up `OfxGetNumberOfPlugins`, `OfxGetPlugin` and the optional
    /// `OfxSetHost`.
    ///
    /// # Safety
    /// Loading a binary runs its initialisers: `path` must be an OFX plugin binary (or a library
    /// whose initialisers are harmless).
    pub unsafe fn open(path: &Path) -> Result<OfxBinary, BinaryError> {
        // SAFETY: the caller vouches for the binary's initialisers.
        let library = unsafe { load(path) }.map_err(|e| BinaryError::Load {
            path: path.to_path_buf(),
            message: with_sources(&e),
        })?;
        let missing = |symbol| BinaryError::MissingSymbol {
            path: path.to_path_buf(),
            symbol,
        };
        // SAFETY: the symbol types are ofxCore.h's; the pointers are copied out while the library
        // is alive and kept next to it.
        let (number_of_plugins, get_plugin, set_host) = unsafe {
            (
                *library
                    .get::<OfxGetNumberOfPluginsFn>(b"OfxGetNumberOfPlugins\0")
                    .map_err(|_| missing("OfxGetNumberOfPlugins"))?,
                *library
                    .get::<OfxGetPluginFn>(b"OfxGetPlugin\0")
                    .map_err(|_| missing("OfxGetPlugin"))?,
                library
                    .get::<OfxSetHostFn>(b"OfxSetHost\0")
                    .ok()
                    .map(|f| *f),
            )
        };
        Ok(OfxBinary {
            path: path.to_path_buf(),
            library,
            number_of_plugins,
            get_plugin,
            set_host,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn number_of_plugins(&self) -> c_int {
        // SAFETY: an exported entry point of the loaded binary, which takes no arguments.
        unsafe { (self.number_of_plugins)() }
    }

    /// `OfxGetPlugin(nth)`: NULL when the binary has none at `nth`.
    pub fn plugin(&self, nth: c_int) -> *mut OfxPlugin {
        // SAFETY: an exported entry point of the loaded binary; any index is allowed (the binary
        // answers NULL out of range).
        unsafe { (self.get_plugin)(nth) }
    }

    /// `OfxSetHost(host)` when the binary exports it (OFX 1.5), before any `OfxGetPlugin`.
    ///
    /// # Safety
    /// `host` must stay valid until the binary's `OfxGetPlugin` has been called.
    pub unsafe fn set_host(&self, host: *const OfxHost) -> Option<OfxStatus> {
        // SAFETY: per the caller.
        self.set_host.map(|f| unsafe { f(host) })
    }

    /// The library, to keep it mapped (or to unload it by dropping it).
    pub fn into_library(self) -> libloading::Library {
        self.library
    }
}
