//! `t2v info --plan` on the GGUF files users download, at real size: header-only copies of the
//! published files' layouts (`models/manifests/`, the data a sparse hole) stand in for the
//! gigabytes. Each plan fits its budget at 832x480x121 and counts the transformer at its
//! blocks' bytes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use t2v_models::weights::{write_sparse, ZeroSource};

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("models")
        .join("manifests")
}

fn sparse(dir: &Path, manifest: &str, file: &str) -> PathBuf {
    let source = ZeroSource::from_manifest(&manifests().join(manifest)).unwrap();
    let path = dir.join(file);
    write_sparse(&source, &path).unwrap();
    path
}

#[test]
fn info_plan_reads_real_size_gguf_mixes() {
    let dir = tempfile::tempdir().unwrap();
    let vae = sparse(dir.path(), "vae-original.txt", "wan2.2_vae.safetensors");
    for (dit, text, budget) in [
        ("q4_k_m", "q4_k_m", "8"),
        ("q3_k_s", "q3_k_s", "8"),
        ("q5_k_m", "q5_k_m", "12"),
        ("q8_0", "q8_0", "16"),
    ] {
        let transformer = sparse(
            dir.path(),
            &format!("dit-gguf-{dit}.txt"),
            &format!("Wan2.2-TI2V-5B-{}.gguf", dit.to_uppercase()),
        );
        let encoder = sparse(
            dir.path(),
            &format!("umt5-gguf-{text}.txt"),
            &format!("umt5-xxl-encoder-{}.gguf", text.to_uppercase()),
        );
        let o = Command::new(env!("CARGO_BIN_EXE_t2v"))
            .env("T2V_CACHE_DIR", dir.path().join("cache"))
            .args(["info", "--plan", "--transformer"])
            .arg(&transformer)
            .arg("--text-encoder")
            .arg(&encoder)
            .arg("--vae")
            .arg(&vae)
            .args(["--vram", budget, "--width", "832", "--height", "480"])
            .args(["--frames", "121"])
            .output()
            .expect("t2v runs");
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            o.status.success(),
            "{dit}: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        println!("{out}");
        assert!(out.contains("residency plan: 832x480, 121 frames"), "{out}");
        let last = out.trim_end().lines().last().unwrap();
        assert!(
            last.starts_with("planned peak: ")
                && last.ends_with(&format!("budget {budget}.00 GiB")),
            "{out}"
        );
        let peak: f64 = last
            .trim_start_matches("planned peak: ")
            .split(' ')
            .next()
            .and_then(|g| g.parse().ok())
            .unwrap_or_else(|| panic!("a peak in `{last}`"));
        assert!(peak <= budget.parse::<f64>().unwrap(), "{out}");
        let base = match dit {
            "q8_0" => "Q8_0",
            "q5_k_m" => "Q5_K",
            "q4_k_m" => "Q4_K",
            _ => "Q3_K",
        };
        assert!(out.contains(base), "{dit}: no {base} in\n{out}");
    }
}
