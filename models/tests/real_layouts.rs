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

/// A real-size manifest with `edit` applied to its lines, as a tracked component.
fn edited(manifest: &str, edit: impl Fn(&str) -> Option<String>) -> TrackedWeights {
    let path = manifests().join(manifest);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("manifest fixture {}: {e}", path.display()));
    let lines: String = text.lines().filter_map(&edit).map(|l| l + "\n").collect();
    let source = ZeroSource::parse(std::path::Path::new(manifest), &lines).unwrap();
    let layout = detect(source.infos()).unwrap();
    checkpoint::track(Arc::new(source), &layout)
}

#[test]
fn every_real_layout_passes_the_header_check() {
    use checkpoint::validate;
    for (manifest, component, naming) in [
        (
            "dit-diffusers.txt",
            Component::Transformer,
            Naming::Diffusers,
        ),
        ("dit-original.txt", Component::Transformer, Naming::Original),
        ("vae-diffusers.txt", Component::Vae, Naming::Diffusers),
        ("vae-original.txt", Component::Vae, Naming::Original),
        (
            "umt5-transformers.txt",
            Component::TextEncoder,
            Naming::Diffusers,
        ),
    ] {
        let weights = tracked(manifest, component, naming);
        let before = rss_bytes();
        let check = match component {
            Component::Transformer => validate::check_transformer(
                &weights,
                &configs::transformer_config(&weights, None).unwrap(),
            ),
            Component::Vae => {
                validate::check_vae(&weights, &configs::vae_config(&weights, None).unwrap())
            }
            Component::TextEncoder => validate::check_text_encoder(
                &weights,
                &configs::text_encoder_config(&weights, None).unwrap(),
            ),
        }
        .unwrap();
        assert_small_growth(before, manifest);
        assert!(check.is_ok(), "{manifest}:\n{check}");
        assert!(
            check.required > 100,
            "{manifest}: {} required",
            check.required
        );
    }
}

/// Regression: `t2v info` answered "components fit together: yes" for a real-size transformer
/// whose `blocks.7.ffn.0.weight` is [14337, 3072]. The header check names it, and every other
/// kind of problem, in one pass.
#[test]
fn the_header_check_names_every_bad_tensor_of_a_real_size_transformer() {
    let weights = edited("dit-original.txt", |line| {
        if line.starts_with("blocks.7.ffn.0.weight ") {
            Some("blocks.7.ffn.0.weight [14337, 3072]".into())
        } else if line.starts_with("blocks.3.cross_attn.k.bias ") {
            None
        } else if line.starts_with("head.modulation ") {
            Some(format!("{line}\nhead.extra_gate [3072]"))
        } else {
            Some(line.to_string())
        }
    });
    let cfg = configs::transformer_config(&weights, None).unwrap();
    assert_eq!(cfg, DitConfig::wan22_ti2v_5b());
    let check = checkpoint::validate::check_transformer(&weights, &cfg).unwrap();
    assert_eq!(
        check.misshaped,
        vec![checkpoint::validate::Misshaped {
            stored: "blocks.7.ffn.0.weight".into(),
            found: vec![14337, 3072],
            expected: vec![14336, 3072],
        }]
    );
    assert_eq!(check.missing, vec!["blocks.3.attn2.to_k.bias".to_string()]);
    assert_eq!(check.unexpected, vec!["head.extra_gate".to_string()]);
    let text = check.to_string();
    for expected in [
        "`blocks.7.ffn.0.weight` has shape [14337, 3072], expected [14336, 3072]",
        "missing tensor `blocks.3.attn2.to_k.bias`",
        "unexpected tensor `head.extra_gate`",
    ] {
        assert!(text.contains(expected), "no `{expected}` in\n{text}");
    }
}

#[test]
fn the_header_check_of_a_real_size_vae_and_text_encoder() {
    let weights = edited("vae-diffusers.txt", |line| {
        if line.starts_with("decoder.up_blocks.1.resnets.0.conv2.weight ") {
            Some("decoder.up_blocks.1.resnets.0.conv2.weight [1024, 1024, 3, 3, 1]".into())
        } else {
            Some(line.to_string())
        }
    });
    let cfg = configs::vae_config(&weights, None).unwrap();
    let check = checkpoint::validate::check_vae(&weights, &cfg).unwrap();
    assert_eq!(check.misshaped.len(), 1, "{check}");
    assert_eq!(
        check.misshaped[0].stored,
        "decoder.up_blocks.1.resnets.0.conv2.weight"
    );
    let weights = edited("umt5-transformers.txt", |line| {
        (!line.starts_with("encoder.block.11.layer.1.DenseReluDense.wo.weight "))
            .then(|| line.to_string())
    });
    let cfg = configs::text_encoder_config(&weights, None).unwrap();
    let check = checkpoint::validate::check_text_encoder(&weights, &cfg).unwrap();
    assert_eq!(
        check.missing,
        vec!["encoder.block.11.layer.1.DenseReluDense.wo.weight".to_string()]
    );
    assert!(
        check.misshaped.is_empty() && check.unexpected.is_empty(),
        "{check}"
    );
}

/// The GGUF transformer files (ComfyUI-GGUF naming, the 5-D patch embedding restored, derived
/// per-tensor types: `models/manifests/README.md`) build the real-size 5B with zero memory, and
/// their stored sizes add up to the published files' sizes.
#[test]
fn gguf_transformers_build_the_5b_and_weigh_what_the_published_files_weigh() {
    for (manifest, published_gib) in DIT_GGUF {
        let weights = tracked(manifest, Component::Transformer, Naming::Original);
        let cfg = configs::transformer_config(&weights, None).expect(manifest);
        assert_eq!(cfg, DitConfig::wan22_ti2v_5b());
        let before = rss_bytes();
        checkpoint::build_transformer(&weights, &cfg, DType::BF16, &Device::Cpu).expect(manifest);
        assert_small_growth(before, manifest);
        assert!(weights.unused(|_| false).is_empty(), "{manifest}");
        let source = weights.source();
        let sizes = source.stored_sizes();
        assert_eq!(sizes.len(), source.infos().len());
        let bytes: u64 = sizes.iter().map(|(_, b)| b).sum();
        let gib = bytes as f64 / (1u64 << 30) as f64;
        println!("{manifest}: {gib:.3} GiB (published {published_gib})");
        assert!((gib - published_gib).abs() < 0.015, "{manifest}: {gib} GiB");
        assert_eq!(source.stored_as("patch_embedding.weight"), Some("F32"));
        assert_eq!(
            source.infos()["patch_embedding.weight"].shape,
            [3072, 48, 1, 2, 2]
        );
    }
}

/// The transformer GGUF files and the sizes they are published at, GiB: QuantStack/Wan2.2-TI2V-5B-GGUF
/// as its byte-for-byte mirror unsloth/Wan2.2-TI2V-5B-GGUF lists them (two decimals, cut, not
/// rounded); F16 and BF16 (not published there) against the bf16 safetensors' 9.31 GiB.
const DIT_GGUF: [(&str, f64); 15] = [
    ("dit-gguf-q8_0.txt", 5.03),
    ("dit-gguf-q6_k.txt", 3.92),
    ("dit-gguf-q5_k_m.txt", 3.55),
    ("dit-gguf-q5_k_s.txt", 3.32),
    ("dit-gguf-q5_1.txt", 3.60),
    ("dit-gguf-q5_0.txt", 3.39),
    ("dit-gguf-q4_k_m.txt", 3.20),
    ("dit-gguf-q4_k_s.txt", 2.90),
    ("dit-gguf-q4_1.txt", 3.03),
    ("dit-gguf-q4_0.txt", 2.82),
    ("dit-gguf-q3_k_m.txt", 2.37),
    ("dit-gguf-q3_k_s.txt", 2.14),
    ("dit-gguf-q2_k.txt", 1.73),
    ("dit-gguf-f16.txt", 9.31),
    ("dit-gguf-bf16.txt", 9.31),
];

/// city96/umt5-xxl-encoder-gguf's files and their published sizes, GB (10^9 bytes, three
/// significant digits; the tokenizer in their metadata adds a few MB to the tensors).
const UMT5_GGUF: [(&str, f64); 10] = [
    ("umt5-gguf-f32.txt", 22.7),
    ("umt5-gguf-f16.txt", 11.4),
    ("umt5-gguf-q8_0.txt", 6.04),
    ("umt5-gguf-q6_k.txt", 4.67),
    ("umt5-gguf-q5_k_m.txt", 4.15),
    ("umt5-gguf-q5_k_s.txt", 4.05),
    ("umt5-gguf-q4_k_m.txt", 3.66),
    ("umt5-gguf-q4_k_s.txt", 3.5),
    ("umt5-gguf-q3_k_m.txt", 3.06),
    ("umt5-gguf-q3_k_s.txt", 2.86),
];

/// The mixes' per-tensor rules, spot-checked (derive_manifests.py has them in full): which
/// tensors llama-quantize raised above the file type's base type.
#[test]
fn gguf_mixes_keep_their_sensitive_tensors_at_higher_precision() {
    let dit = |m: &str| ZeroSource::from_manifest(&manifests().join(m)).unwrap();
    let cases: [(&str, &str, &str); 12] = [
        ("dit-gguf-q4_k_m.txt", "blocks.0.ffn.0.weight", "Q4_K"),
        ("dit-gguf-q4_k_m.txt", "blocks.17.ffn.2.weight", "Q6_K"),
        (
            "dit-gguf-q4_k_m.txt",
            "blocks.5.cross_attn.v.weight",
            "Q6_K",
        ),
        ("dit-gguf-q4_k_s.txt", "blocks.1.self_attn.v.weight", "Q5_K"),
        ("dit-gguf-q4_k_s.txt", "blocks.2.self_attn.v.weight", "Q4_K"),
        (
            "dit-gguf-q3_k_m.txt",
            "blocks.0.cross_attn.v.weight",
            "Q5_K",
        ),
        ("dit-gguf-q3_k_m.txt", "blocks.0.self_attn.v.weight", "Q5_K"),
        (
            "dit-gguf-q3_k_m.txt",
            "blocks.1.cross_attn.v.weight",
            "Q4_K",
        ),
        ("dit-gguf-q4_0.txt", "blocks.9.ffn.2.weight", "Q4_1"),
        ("dit-gguf-q2_k.txt", "blocks.9.self_attn.v.weight", "Q3_K"),
        ("dit-gguf-q4_k_m.txt", "time_projection.1.weight", "BF16"),
        ("dit-gguf-q4_k_m.txt", "blocks.3.modulation", "F32"),
    ];
    for (manifest, tensor, expected) in cases {
        assert_eq!(
            dit(manifest).stored_as(tensor),
            Some(expected),
            "{manifest}: {tensor}"
        );
    }
    // umT5 (llama.cpp's own rules): the embedding in Q6_K below Q8_0, "more bits" layers in
    // sorted-name order (enc.blk.0, 1, 10, 11, ...: the 3rd is block 10).
    let q4km = dit("umt5-gguf-q4_k_m.txt");
    assert_eq!(q4km.stored_as("token_embd.weight"), Some("Q6_K"));
    assert_eq!(q4km.stored_as("enc.blk.10.attn_v.weight"), Some("Q6_K"));
    assert_eq!(q4km.stored_as("enc.blk.11.attn_v.weight"), Some("Q4_K"));
    assert_eq!(q4km.stored_as("enc.blk.9.ffn_down.weight"), Some("Q6_K"));
    assert_eq!(q4km.stored_as("enc.blk.0.attn_rel_b.weight"), Some("F16"));
    let q8 = dit("umt5-gguf-q8_0.txt");
    assert_eq!(q8.stored_as("token_embd.weight"), Some("Q8_0"));
}

#[test]
fn gguf_umt5_xxl_encoders_build_and_weigh_what_the_published_files_weigh() {
    for (manifest, published_gb) in UMT5_GGUF {
        let weights = tracked(manifest, Component::TextEncoder, Naming::LlamaCpp);
        let cfg = configs::text_encoder_config(&weights, None).expect(manifest);
        assert_eq!(cfg, Umt5Config::umt5_xxl());
        let before = rss_bytes();
        checkpoint::build_text_encoder(&weights, &cfg, DType::BF16, &Device::Cpu).expect(manifest);
        assert_small_growth(before, manifest);
        assert!(weights.unused(|_| false).is_empty(), "{manifest}");
        let check = checkpoint::validate::check_text_encoder(&weights, &cfg).unwrap();
        assert!(check.is_ok(), "{manifest}: {check}");
        let bytes: u64 = weights.source().stored_sizes().iter().map(|(_, b)| b).sum();
        let gb = bytes as f64 / 1e9;
        println!("{manifest}: {gb:.3} GB (published {published_gb})");
        // Hugging Face shows three significant digits.
        assert!(
            (gb - published_gb).abs() <= published_gb * 0.005 + 0.015,
            "{manifest}: {gb} GB"
        );
    }
}

/// Header-only real-size files (sparse: the data is a hole) of every GGUF manifest open
/// through the GGUF reader like the published files: the layout is detected from the names,
/// the header check passes and the blocks' sizes are the manifest's.
#[test]
fn real_size_gguf_headers_open_through_the_gguf_reader() {
    let dir = tempfile::tempdir().unwrap();
    let manifests_of = DIT_GGUF
        .iter()
        .map(|(m, _)| (*m, Component::Transformer))
        .chain(UMT5_GGUF.iter().map(|(m, _)| (*m, Component::TextEncoder)));
    for (manifest, component) in manifests_of {
        let zeros = ZeroSource::from_manifest(&manifests().join(manifest)).unwrap();
        let path = dir.path().join(manifest.replace(".txt", ".gguf"));
        t2v_models::weights::write_sparse(&zeros, &path).unwrap();
        let opened: Arc<dyn TensorSource> =
            Arc::from(t2v_models::weights::open_file(&path).expect(manifest));
        let layout = detect(opened.infos()).expect("layout detected from names");
        assert_eq!(layout.component, component, "{manifest}");
        let weights = checkpoint::track(opened, &layout);
        let source = weights.source();
        assert_eq!(source.stored_sizes(), zeros.stored_sizes(), "{manifest}");
        for name in zeros.infos().keys() {
            assert_eq!(
                source.stored_as(name),
                zeros.stored_as(name),
                "{manifest}: {name}"
            );
            assert_eq!(
                source.infos()[name].shape,
                zeros.infos()[name].shape,
                "{name}"
            );
        }
        let check = match component {
            Component::Transformer => checkpoint::validate::check_transformer(
                &weights,
                &configs::transformer_config(&weights, None).unwrap(),
            ),
            _ => checkpoint::validate::check_text_encoder(
                &weights,
                &configs::text_encoder_config(&weights, None).unwrap(),
            ),
        }
        .unwrap();
        assert!(check.is_ok(), "{manifest}: {check}");
    }
}

/// The fp8 files (derived layouts: `models/manifests/README.md`): scaled and unscaled
/// transformer, ComfyUI's scaled umT5, built at real size with zero memory.
#[test]
fn fp8_layouts_build_at_real_size() {
    for manifest in ["dit-fp8-scaled.txt", "dit-fp8-e4m3fn.txt"] {
        let weights = tracked(manifest, Component::Transformer, Naming::Original);
        let cfg = configs::transformer_config(&weights, None).expect(manifest);
        let before = rss_bytes();
        checkpoint::build_transformer(&weights, &cfg, DType::BF16, &Device::Cpu).expect(manifest);
        assert_small_growth(before, manifest);
        assert!(weights.unused(|_| false).is_empty(), "{manifest}");
        assert_eq!(
            weights.source().infos()["blocks.29.ffn.2.weight"].dtype,
            DType::F8E4M3
        );
    }
    let weights = tracked(
        "umt5-fp8-scaled.txt",
        Component::TextEncoder,
        Naming::Diffusers,
    );
    let cfg = configs::text_encoder_config(&weights, None).unwrap();
    assert_eq!(cfg, Umt5Config::umt5_xxl());
    checkpoint::build_text_encoder(&weights, &cfg, DType::BF16, &Device::Cpu).unwrap();
    assert!(weights.unused(|_| false).is_empty());
    let bytes: u64 = weights.source().stored_sizes().iter().map(|(_, b)| b).sum();
    let gib = bytes as f64 / (1u64 << 30) as f64;
    println!("umt5-fp8-scaled.txt: {gib:.3} GiB");
    // ComfyUI's umt5_xxl_fp8_e4m3fn_scaled.safetensors: 6.27 GiB.
    assert!((gib - 6.27).abs() < 0.02, "{gib}");
}
