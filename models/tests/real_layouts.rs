//! The real-size Wan2.2 TI2V-5B components built from the exact tensor names and shapes of the
//! real checkpoints (`models/manifests/`), in every layout: every tensor must be
//! consumed with the right shape and none left over. Weights are broadcast zeros, so nothing of
//! real size is allocated.

mod common;

use candle_core::{DType, Device};
use common::manifests;
use std::sync::Arc;
use t2v_models::checkpoint::{self, configs, layout::detect, Component, Naming};
use t2v_models::dit::DitConfig;
use t2v_models::text::Umt5Config;
use t2v_models::vae::VaeConfig;
use t2v_models::weights::{TensorSource, TrackedWeights, ZeroSource};

fn tracked(manifest: &str, component: Component, naming: Naming) -> TrackedWeights {
    let source = ZeroSource::from_manifest(&manifests().join(manifest)).expect("manifest");
    let layout = detect(source.infos()).expect("layout detected from names");
    assert_eq!(
        (layout.component, layout.naming),
        (component, naming),
        "{manifest}"
    );
    checkpoint::track(Arc::new(source) as Arc<dyn TensorSource>, &layout)
}

/// Resident memory in bytes (Linux), to show that nothing of real size was allocated.
fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn assert_small_growth(before: usize, what: &str) {
    let grown = rss_bytes().saturating_sub(before);
    assert!(
        grown < 512 << 20,
        "{what}: building grew resident memory by {} MiB",
        grown >> 20
    );
}

#[test]
fn transformer_from_both_layouts() {
    for (manifest, naming) in [
        ("dit-diffusers.txt", Naming::Diffusers),
        ("dit-original.txt", Naming::Original),
    ] {
        let weights = tracked(manifest, Component::Transformer, naming);
        let cfg = configs::transformer_config(&weights, None)
            .expect("recognised as the 5B by its shapes");
        assert_eq!(cfg, DitConfig::wan22_ti2v_5b());
        let before = rss_bytes();
        let model = checkpoint::build_transformer(&weights, &cfg, DType::BF16, &Device::Cpu)
            .expect(manifest);
        assert_small_growth(before, manifest);
        assert_eq!(model.config().dim(), 3072);
        assert!(weights.unused(|_| false).is_empty());
        assert_eq!(weights.source().infos().len(), 825);
    }
}

#[test]
fn comfy_prefixed_transformer() {
    let path = manifests().join("dit-original.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("manifest fixture {}: {e}", path.display()));
    let prefixed: String = text
        .lines()
        .map(|l| format!("model.diffusion_model.{l}\n"))
        .collect();
    let source = ZeroSource::parse(std::path::Path::new("comfy.safetensors"), &prefixed).unwrap();
    let layout = detect(source.infos()).unwrap();
    assert_eq!(layout.prefix, "model.diffusion_model.");
    let weights = checkpoint::track(Arc::new(source), &layout);
    let cfg = configs::transformer_config(&weights, None).unwrap();
    checkpoint::build_transformer(&weights, &cfg, DType::F16, &Device::Cpu).unwrap();
}

#[test]
fn vae_from_both_layouts() {
    for (manifest, naming) in [
        ("vae-diffusers.txt", Naming::Diffusers),
        ("vae-original.txt", Naming::Original),
    ] {
        let weights = tracked(manifest, Component::Vae, naming);
        let cfg = configs::vae_config(&weights, None).expect("recognised");
        assert_eq!(cfg, VaeConfig::wan22_ti2v_5b());
        let before = rss_bytes();
        let vae =
            checkpoint::build_vae(&weights, &cfg, false, DType::F32, &Device::Cpu).expect(manifest);
        assert_small_growth(before, manifest);
        assert!(vae.encoder().is_some());
        assert!(weights.unused(|_| false).is_empty());
    }
}

#[test]
fn vae_decoder_only_leaves_just_the_encoder() {
    let weights = tracked("vae-diffusers.txt", Component::Vae, Naming::Diffusers);
    let cfg = configs::vae_config(&weights, None).unwrap();
    checkpoint::build_vae(&weights, &cfg, true, DType::BF16, &Device::Cpu).unwrap();
    let unused = weights.unused(|_| false);
    assert!(!unused.is_empty());
    assert!(
        unused
            .iter()
            .all(|n| n.starts_with("encoder.") || n.starts_with("quant_conv.")),
        "{unused:?}"
    );
}

#[test]
fn real_vae_shapes_win_over_a_wrong_config_file() {
    let weights = tracked("vae-diffusers.txt", Component::Vae, Naming::Diffusers);
    let tmp = tempfile::tempdir().unwrap();
    let cfg_path = tmp.path().join("config.json");
    std::fs::write(&cfg_path, "{\"base_dim\": 160}").unwrap();
    assert_eq!(
        configs::vae_config(&weights, Some(&cfg_path)).unwrap(),
        VaeConfig::wan22_ti2v_5b()
    );
}

#[test]
fn umt5_xxl_encoder() {
    let weights = tracked(
        "umt5-transformers.txt",
        Component::TextEncoder,
        Naming::Diffusers,
    );
    let cfg = configs::text_encoder_config(&weights, None).expect("recognised");
    assert_eq!(cfg, Umt5Config::umt5_xxl());
    let before = rss_bytes();
    checkpoint::build_text_encoder(&weights, &cfg, DType::BF16, &Device::Cpu).expect("umT5");
    assert_small_growth(before, "umT5");
    // Only the tied duplicate of the embedding may be left.
    let unused = weights.unused(|_| false);
    assert!(unused.len() <= 1, "{unused:?}");
    assert!(unused
        .iter()
        .all(|n| n == "shared.weight" || n == "encoder.embed_tokens.weight"));
}
