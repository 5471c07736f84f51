//! Finding bundles, assembling a bundle from a cdylib, and building the test fixture.

use crate::error::{HostError, Result};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The OFX architecture folder of this machine.
pub const ARCH_DIR: &str = if cfg!(target_os = "macos") {
    "MacOS"
} else if cfg!(windows) {
    "Win64"
} else {
    "Linux-x86-64"
};

/// `NAME.ofx.bundle/Contents/<arch>/NAME.ofx`.
pub fn bundle_binary_path(bundle: &Path) -> Result<PathBuf> {
    let file = bundle
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let Some(name) = file.strip_suffix(".ofx.bundle") else {
        return Err(HostError::Bundle {
            path: bundle.into(),
            what: "a bundle's name must end in .ofx.bundle".into(),
        });
    };
    let binary = bundle
        .join("Contents")
        .join(ARCH_DIR)
        .join(format!("{name}.ofx"));
    if !binary.is_file() {
        return Err(HostError::Bundle {
            path: bundle.into(),
            what: format!("missing {}", binary.display()),
        });
    }
    Ok(binary)
}

/// `OFX_PLUGIN_PATH` (':'-separated) then the platform's default folder.
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("OFX_PLUGIN_PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from(if cfg!(target_os = "macos") {
        "/Library/OFX/Plugins"
    } else if cfg!(windows) {
        "C:\\Program Files\\Common Files\\OFX\\Plugins"
    } else {
        "/usr/OFX/Plugins"
    }));
    dirs
}

/// Every `*.ofx.bundle` under `dirs`, scanned recursively, in search order.
pub fn find_bundles(dirs: &[PathBuf]) -> Vec<PathBuf> {
    fn scan(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            if !path.is_dir() {
                continue;
            }
            if path.to_string_lossy().ends_with(".ofx.bundle") {
                out.push(path);
            } else if depth < 16 {
                scan(&path, out, depth + 1);
            }
        }
    }
    let mut out = Vec::new();
    for dir in dirs {
        scan(dir, &mut out, 0);
    }
    out
}

/// Assembles `<out_dir>/<name>.ofx.bundle` around a built cdylib (`lib<crate>.so`), replacing
/// the binary atomically so that concurrent test processes never see half a file.
pub fn assemble_bundle(cdylib: &Path, name: &str, out_dir: &Path) -> Result<PathBuf> {
    let bundle = out_dir.join(format!("{name}.ofx.bundle"));
    let arch = bundle.join("Contents").join(ARCH_DIR);
    std::fs::create_dir_all(&arch)?;
    let tmp = arch.join(format!(".{name}.ofx.{}", std::process::id()));
    std::fs::copy(cdylib, &tmp)?;
    std::fs::rename(&tmp, arch.join(format!("{name}.ofx")))?;
    Ok(bundle)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host-tests sits in the workspace")
        .to_path_buf()
}

/// Builds the `ramp-generator` fixture (release, in its own target dir so that it never
/// waits on the lock of the `cargo test` that runs us) and returns its bundle. Built once
/// per process.
pub fn ramp_generator_bundle() -> Result<PathBuf> {
    static BUNDLE: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| build_fixture().map_err(|e| e.to_string()))
        .clone()
        .map_err(HostError::Fixture)
}

fn build_fixture() -> Result<PathBuf> {
    let root = workspace_root();
    let target_root = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target = target_root.join("ofx-fixtures");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "--offline",
            "-p",
            "ramp-generator",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .output()?;
    if !output.status.success() {
        return Err(HostError::Fixture(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    let lib = target.join("release").join(format!(
        "{}ramp_generator{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assemble_bundle(&lib, "RampGenerator", &target.join("bundles"))
}
