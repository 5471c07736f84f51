//! With the `cuda` feature, compiles the project's CUDA kernels to PTX with nvcc (the same
//! toolchain candle's own kernels need). The driver JIT-compiles the PTX for the GPU in use.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    const SOURCES: [(&str, &str); 3] = [
        ("src/dit/fused_attention.cu", "fused_attention.ptx"),
        ("src/ops/rowwise.cu", "rowwise.ptx"),
        ("src/vae/channel_norm.cu", "channel_norm.ptx"),
    ];
    println!("cargo:rerun-if-changed=src/ops/half_convert.cuh");
    for var in ["CUDA_ROOT", "CUDA_PATH", "CUDA_HOME", "NVCC", "NVCC_CCBIN"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let nvcc = std::env::var_os("NVCC")
        .map(PathBuf::from)
        .or_else(|| {
            ["CUDA_ROOT", "CUDA_PATH", "CUDA_HOME"]
                .iter()
                .filter_map(std::env::var_os)
                .map(|root| PathBuf::from(root).join("bin").join("nvcc"))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| PathBuf::from("nvcc"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    for (source, ptx) in SOURCES {
        println!("cargo:rerun-if-changed={source}");
        let mut cmd = Command::new(&nvcc);
        // compute_80: the oldest architecture with bf16 mma.sync; newer GPUs JIT it.
        cmd.args(["--ptx", "-O3", "-std=c++17", "-arch=compute_80", "-o"])
            .arg(out_dir.join(ptx))
            .arg(source);
        if let Some(ccbin) = std::env::var_os("NVCC_CCBIN") {
            cmd.arg("-ccbin").arg(ccbin);
        }
        let status = cmd.status().unwrap_or_else(|e| {
            panic!(
                "could not run {} ({e}): the cuda feature needs the CUDA toolkit's nvcc \
                 (set CUDA_ROOT or NVCC)",
                nvcc.display()
            )
        });
        assert!(status.success(), "nvcc failed to compile {source}");
    }
}
