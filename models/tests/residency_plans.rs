//! Real-size residency plans from the committed manifests (zero weights: no memory of real size
//! is touched): every budget has a plan under it at 832x480x121 and 1280x704x121, with the
//! CUDA context and the host margin counted. `--nocapture` prints the table of planned peaks
//! (docs/benchmarks.md holds a copy).

mod common;

use candle_core::DType;
use common::manifests;
use std::sync::Arc;
use t2v_models::checkpoint::{self, configs, layout::detect};
use t2v_models::residency::{
    plan, plan_with, Budget, DecodeMode, Mechanisms, ModelInventory, PlanRequest, PlanStage,
    ResidencyPlan, TextEncoderPlacement, TransformerPlacement, BUDGET_CHOICES_GIB,
    CUDA_CONTEXT_BYTES, GIB, HOST_MARGIN_BYTES,
};
use t2v_models::weights::{TensorSource, TrackedWeights, ZeroSource};

fn tracked(manifest: &str) -> TrackedWeights {
    let source = ZeroSource::from_manifest(&manifests().join(manifest)).expect("manifest");
    let layout = detect(source.infos()).expect("layout");
    checkpoint::track(Arc::new(source) as Arc<dyn TensorSource>, &layout)
}

/// The inventory of three manifests: a transformer, a text encoder and a VAE.
fn inventory(dit: &str, text: &str, vae: &str) -> ModelInventory {
    let (dit, text, vae) = (tracked(dit), tracked(text), tracked(vae));
    let dit_cfg = configs::transformer_config(&dit, None).unwrap();
    let text_cfg = configs::text_encoder_config(&text, None).unwrap();
    let vae_cfg = configs::vae_config(&vae, None).unwrap();
    ModelInventory::from_tracked((&dit, dit_cfg), (&text, text_cfg), (&vae, vae_cfg))
}

fn real_model() -> ModelInventory {
    inventory(
        "dit-diffusers.txt",
        "umt5-transformers.txt",
        "vae-diffusers.txt",
    )
}

/// Plans `model` at both sizes under every budget and asserts what every plan must be: under
/// its budget at every stage with the CUDA context and host margin counted, and the fastest
/// that fits (no cheaper set of mechanisms would). `check` sees each plan with its size and budget. Adds
/// a row per plan to `rows` (labelled `label`) and returns the peaks per size, "a / b / c / d".
fn plans_under_every_budget(
    model: &ModelInventory,
    label: &str,
    rows: &mut String,
    mut check: impl FnMut((usize, usize), u32, &ResidencyPlan),
) -> Vec<String> {
    let overhead = CUDA_CONTEXT_BYTES + HOST_MARGIN_BYTES;
    let mut cells = Vec::new();
    for (w, h) in SIZES {
        let mut peaks = Vec::new();
        for gib in BUDGET_CHOICES_GIB {
            let budget = Budget::Bytes(gib as u64 * GIB);
            let p = plan(model, &request(w, h), budget)
                .unwrap_or_else(|e| panic!("{label}, {w}x{h} at {gib} GiB: {e}"));
            assert!(p.fits() && p.peak() <= gib as u64 * GIB, "{label}: {p}");
            assert_eq!(p.overhead, overhead, "context and margin are counted");
            for s in &p.stages {
                assert!(s.total() + overhead <= gib as u64 * GIB, "{label}: {p}");
            }
            for cheaper in Mechanisms::candidates()
                .into_iter()
                .take_while(|m| *m != p.mechanisms)
            {
                assert!(!plan_with(model, &request(w, h), cheaper, budget).fits());
            }
            check((w, h), gib, &p);
            peaks.push(gib_text(p.peak()));
            *rows += &format!(
                "| {label} | {w}x{h} | {gib} GiB | {} | {} |\n",
                short(&p.mechanisms),
                gib_text(p.peak())
            );
        }
        cells.push(peaks.join(" / "));
    }
    cells
}

/// The headers of a table of peaks per pair of files (a column per size, every budget in it)
/// and of the table of each plan's mechanisms.
fn file_tables(transformer: &str, text_encoder: &str) -> (String, String) {
    let budgets = BUDGET_CHOICES_GIB.map(|g| g.to_string()).join(" / ");
    (
        format!(
            "| {transformer} | {text_encoder} | on the device (GiB) | 832x480x121 at {budgets} GiB | 1280x704x121 at {budgets} GiB |\n|---|---|---|---|---|\n"
        ),
        String::from(
            "| files | size | budget | mechanisms | planned peak |\n|---|---|---|---|---|\n",
        ),
    )
}

fn gib_text(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / GIB as f64)
}

fn request(width: usize, height: usize) -> PlanRequest {
    PlanRequest {
        width,
        height,
        frames: 121,
        guidance: true,
        dtype: DType::BF16,
    }
}

const SIZES: [(usize, usize); 2] = [(832, 480), (1280, 704)];

fn short(m: &Mechanisms) -> String {
    let text = match m.text_encoder {
        TextEncoderPlacement::WithTransformer => "TE kept",
        TextEncoderPlacement::Alone => "TE alone",
        TextEncoderPlacement::Cpu => "TE on CPU",
    };
    let dit = match m.transformer {
        TransformerPlacement::Resident => "DiT resident".to_string(),
        TransformerPlacement::Streamed { slots } => format!("DiT streamed ({slots} slots)"),
    };
    let ffn = if m.ffn_chunks > 1 {
        format!(", FFN x{}", m.ffn_chunks)
    } else {
        String::new()
    };
    let decode = match m.decode {
        DecodeMode::Whole => "",
        DecodeMode::Tiled => ", tiled decode",
    };
    format!("{text}, {dit}{ffn}{decode}")
}

#[test]
fn the_real_components_weigh_what_the_reference_says() {
    let model = real_model();
    let gib = |b: u64| b as f64 / GIB as f64;
    // Transformer 9.31 GiB in bf16, 30 blocks; umT5 read once despite its tied embedding;
    // VAE 0.705 B parameters.
    let dit = gib(model.transformer.device_bytes(DType::BF16));
    assert!((dit - 9.31).abs() < 0.01, "{dit}");
    assert_eq!(model.transformer.block_count(), 30);
    let text = model.text_encoder.device_bytes(DType::BF16);
    assert_eq!(text, 5_680_910_336 * 2);
    assert_eq!(model.text_encoder.block_count(), 24);
    let vae = model.vae.device_bytes(DType::BF16);
    assert_eq!(vae, 704_688_668 * 2);
    // A 5B block: 4 attention projections twice, the FFN, norms and modulation (~330 MB).
    let block = model.transformer.largest_block_bytes(DType::BF16);
    assert!((block as f64 / 1e6 - 330.0).abs() < 10.0, "{block}");
}

#[test]
fn every_budget_has_a_plan_under_it_at_both_sizes() {
    let model = real_model();
    let mut table = String::from(
        "| size | budget | mechanisms | text encode | denoise step | VAE decode | planned peak |\n|---|---|---|---|---|---|---|\n",
    );
    let overhead = CUDA_CONTEXT_BYTES + HOST_MARGIN_BYTES;
    let mut rows = String::new();
    plans_under_every_budget(&model, "bf16", &mut rows, |(w, h), gib, p| {
        let stage = |s| gib_text(p.stage(s).total() + overhead);
        table += &format!(
            "| {w}x{h}x121 | {gib} GiB | {} | {} | {} | {} | **{}** |\n",
            short(&p.mechanisms),
            stage(PlanStage::TextEncode),
            stage(PlanStage::Denoise),
            stage(PlanStage::Decode),
            gib_text(p.peak())
        );
        println!("{p}\n");
    });
    println!("Planned peaks (GiB, CUDA context and host margin included):\n\n{table}");
}

#[test]
fn small_budgets_stream_the_transformer_and_keep_the_encoder_off_it() {
    let model = real_model();
    let p = plan(&model, &request(832, 480), Budget::Bytes(8 * GIB)).unwrap();
    assert!(matches!(
        p.mechanisms.transformer,
        TransformerPlacement::Streamed { .. }
    ));
    assert_ne!(
        p.mechanisms.text_encoder,
        TextEncoderPlacement::WithTransformer
    );
    // With no limit everything is resident and the encoder stays loaded.
    let p = plan(&model, &request(832, 480), Budget::Unlimited).unwrap();
    assert_eq!(p.mechanisms, Mechanisms::FASTEST);
    assert_eq!(p.overhead, 0);
    // Today's behaviour (encoder beside the resident transformer) peaks above 20 GiB at 480P:
    // the issue measured 22.6 GiB on an H100.
    let p = plan_with(
        &model,
        &request(832, 480),
        Mechanisms::FASTEST,
        Budget::Bytes(24 * GIB),
    );
    assert!(p.peak() > 20 * GIB, "{p}");
    println!("{p}");
}

#[test]
fn a_request_too_large_for_the_budget_names_what_fits() {
    let model = real_model();
    let r = PlanRequest {
        width: 2048,
        height: 2048,
        frames: 257,
        guidance: true,
        dtype: DType::BF16,
    };
    let e = plan(&model, &r, Budget::Bytes(8 * GIB))
        .unwrap_err()
        .to_string();
    assert!(e.contains("8.00 GiB budget"), "{e}");
    assert!(e.contains("at 2048x2048 up to "), "{e}");
    assert!(e.contains("257 frames fit up to "), "{e}");
    // The frame count it names does fit, and the next one does not.
    let frames: usize = e
        .split("up to ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("a frame count");
    let at = |frames| PlanRequest { frames, ..r };
    assert!(plan(&model, &at(frames), Budget::Bytes(8 * GIB)).is_ok());
    assert!(plan(&model, &at(frames + 4), Budget::Bytes(8 * GIB)).is_err());
}

#[test]
fn fp8_storage_is_counted_by_its_real_bytes() {
    // A transformer whose block linears are stored in fp8 (as the ComfyUI fp8 files): the
    // header's dtype, not the compute dtype, sizes them.
    let text = std::fs::read_to_string(manifests().join("dit-diffusers.txt")).unwrap();
    let source = ZeroSource::parse(std::path::Path::new("fp8"), &text).unwrap();
    let mut infos = source.infos().clone();
    for (name, info) in infos.iter_mut() {
        if name.starts_with("blocks.") && name.ends_with(".weight") && info.shape.len() == 2 {
            info.dtype = DType::F8E4M3;
        }
    }
    let bf16 = real_model();
    let mut fp8 = bf16.clone();
    fp8.transformer.entries = fp8
        .transformer
        .entries
        .iter()
        .map(|e| {
            let info = &infos[&e.name];
            t2v_models::residency::WeightEntry::from_info(&e.name, info, e.block)
        })
        .collect();
    let full = bf16.transformer.device_bytes(DType::BF16);
    let packed = fp8.transformer.device_bytes(DType::BF16);
    assert!(packed * 10 < full * 6, "{packed} vs {full}");
    assert_eq!(
        fp8.transformer.dequantize_scratch_bytes(DType::BF16),
        14_336 * 3072 * 2,
        "one FFN weight is dequantised at a time"
    );
    // Smaller weights make a leaner plan fit: 12 GiB at 480P keeps the fp8 transformer resident.
    let p = plan(&fp8, &request(832, 480), Budget::Bytes(12 * GIB)).unwrap();
    assert_eq!(
        p.mechanisms.transformer,
        TransformerPlacement::Resident,
        "{p}"
    );
}

#[test]
fn sizes_are_read_from_safetensors_headers_in_their_stored_dtype() {
    use safetensors::{tensor::TensorView, Dtype};
    use t2v_models::checkpoint::Component;
    use t2v_models::residency::ComponentWeights;
    use t2v_models::weights::SafetensorsSource;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.safetensors");
    let fp8 = vec![0u8; 4 * 8];
    let bf16 = vec![0u8; 6 * 2];
    let f32 = 1.0f32.to_le_bytes().to_vec();
    let tensors = [
        (
            "blocks.1.ffn.net.2.weight",
            TensorView::new(Dtype::F8_E4M3, vec![4, 8], &fp8).unwrap(),
        ),
        (
            "blocks.1.ffn.net.2.scale_weight",
            TensorView::new(Dtype::F32, vec![1], &f32).unwrap(),
        ),
        (
            "proj_out.weight",
            TensorView::new(Dtype::BF16, vec![2, 3], &bf16).unwrap(),
        ),
    ];
    safetensors::serialize_to_file(tensors, None, &path).unwrap();
    let source = Arc::new(SafetensorsSource::open(&[path]).unwrap()) as Arc<dyn TensorSource>;
    let weights = TrackedWeights::new(source, |n| Some(n.to_string()));
    let c = ComponentWeights::from_tracked(Component::Transformer, &weights);
    // The scale belongs to its weight (read with it), not a tensor of its own.
    assert_eq!(c.stored_bytes(), 32 + 12);
    assert_eq!(c.block_count(), 2);
    // In bf16: the fp8 weight stays 32 bytes, the bf16 head 12.
    assert_eq!(c.block_bytes(1, DType::BF16), 32);
    assert_eq!(c.outside_blocks_bytes(DType::BF16), 12);
}

#[test]
fn a_plan_reads_a_model_folder_headers_only() {
    use t2v_models::checkpoint::{ModelFiles, Overrides};
    let found = ModelFiles::find(Some(&common::tiny_diffusers()), &Overrides::default()).unwrap();
    let model = ModelInventory::open(
        found.transformer.as_ref().unwrap(),
        found.vae.as_ref().unwrap(),
        found.text_encoder.as_ref().unwrap(),
    )
    .unwrap();
    assert!(model.transformer.block_count() > 0);
    let r = PlanRequest {
        width: 64,
        height: 64,
        frames: 5,
        guidance: true,
        dtype: DType::F32,
    };
    let p = plan(&model, &r, Budget::Bytes(8 * GIB)).unwrap();
    assert_eq!(
        p.mechanisms,
        Mechanisms::FASTEST,
        "a tiny model fits anything"
    );
    assert!(p.to_string().ends_with(&p.peak_line()));
    assert!(
        p.peak_line().starts_with("planned peak: 1.2"),
        "{}",
        p.peak_line()
    );
    assert!(p.peak() < GIB * 3 / 2, "context and margin plus a few MiB");
}

#[test]
fn configs_alone_give_the_manifests_inventory() {
    // What a benchmark with random weights plans from: the same bytes as the real headers.
    let real = real_model();
    let from_configs =
        ModelInventory::from_configs(&real.dit, &real.text, &real.vae_config, DType::BF16).unwrap();
    for (a, b) in [
        (&real.transformer, &from_configs.transformer),
        (&real.text_encoder, &from_configs.text_encoder),
        (&real.vae, &from_configs.vae),
    ] {
        assert_eq!(a.device_bytes(DType::BF16), b.device_bytes(DType::BF16));
        assert_eq!(a.block_count(), b.block_count());
        assert_eq!(
            a.largest_block_bytes(DType::BF16),
            b.largest_block_bytes(DType::BF16)
        );
    }
}

#[test]
fn gguf_storage_is_counted_by_its_block_bytes() {
    use t2v_models::checkpoint::{Component, ModelFiles, Overrides};
    use t2v_models::residency::ComponentWeights;
    let path = common::fixtures().join("gguf").join("tiny-dit-Q8_0.gguf");
    let files = ModelFiles::find(
        None,
        &Overrides {
            transformer: Some(path),
            ..Overrides::default()
        },
    )
    .unwrap();
    let weights = checkpoint::open_component(&files.transformer.unwrap()).unwrap();
    let c = ComponentWeights::from_tracked(Component::Transformer, &weights);
    let file_sizes: u64 = weights.source().stored_sizes().iter().map(|(_, b)| b).sum();
    assert_eq!(c.stored_bytes(), file_sizes);
    let q8 =
        |e: &&t2v_models::residency::WeightEntry| e.name.starts_with("blocks.0.attn1.to_q.weight");
    let entry = c.entries.iter().find(q8).expect("a block linear");
    // Q8_0: 34 bytes per 32 weights, held as blocks on the device in any compute dtype.
    assert!(entry.packed);
    assert_eq!(entry.stored_bytes, entry.elements / 32 * 34);
    assert_eq!(entry.device_bytes(DType::BF16), entry.stored_bytes);
}

/// Each GGUF transformer file (`models/manifests/dit-gguf-*.txt`) with the umT5 GGUF of the
/// same (or the nearest published) type and the VAE, at real size.
const GGUF_PAIRS: [(&str, &str); 15] = [
    ("q8_0", "q8_0"),
    ("q6_k", "q6_k"),
    ("q5_k_m", "q5_k_m"),
    ("q5_k_s", "q5_k_s"),
    ("q5_1", "q5_k_s"),
    ("q5_0", "q5_k_s"),
    ("q4_k_m", "q4_k_m"),
    ("q4_k_s", "q4_k_s"),
    ("q4_1", "q4_k_s"),
    ("q4_0", "q4_k_s"),
    ("q3_k_m", "q3_k_m"),
    ("q3_k_s", "q3_k_s"),
    ("q2_k", "q3_k_s"),
    ("bf16", "f16"),
    ("f16", "f32"),
];

fn gguf_model(dit: &str, text: &str) -> ModelInventory {
    inventory(
        &format!("dit-gguf-{dit}.txt"),
        &format!("umt5-gguf-{text}.txt"),
        "vae-original.txt",
    )
}

/// Every budget has a plan under it at both sizes with every GGUF file, counted at the bytes
/// its blocks take. `--nocapture` prints the table docs/benchmarks.md holds.
#[test]
fn every_budget_has_a_plan_under_it_with_every_gguf_file() {
    let (mut table, mut mechanisms) = file_tables("transformer GGUF", "umT5 GGUF");
    for (dit, text) in GGUF_PAIRS {
        let model = gguf_model(dit, text);
        // Packed storage is what the device holds: less than the bf16 weights for every quant.
        let weights = model.transformer.device_bytes(DType::BF16);
        if !dit.ends_with("16") {
            assert!(weights < 6 * GIB, "{dit}: {}", gib_text(weights));
        }
        let cells = plans_under_every_budget(
            &model,
            &format!("{dit} + {text}"),
            &mut mechanisms,
            |_, _, _| {},
        );
        table += &format!(
            "| {} | {} | {} + {} | {} | {} |\n",
            dit.to_uppercase(),
            text.to_uppercase(),
            gib_text(weights),
            gib_text(model.text_encoder.device_bytes(DType::BF16)),
            cells[0],
            cells[1]
        );
    }
    println!("Planned peaks with the GGUF files (GiB, CUDA context and host margin included):\n\n{table}\n{mechanisms}");
}

/// Each fp8 transformer file (`models/manifests/dit-fp8-*.txt`, scaled and unscaled) with
/// ComfyUI's scaled fp8 umT5 or the bf16 umT5 that many users keep, and the VAE, at real size.
const FP8_PAIRS: [(&str, &str); 4] = [
    ("dit-fp8-scaled.txt", "umt5-fp8-scaled.txt"),
    ("dit-fp8-e4m3fn.txt", "umt5-fp8-scaled.txt"),
    ("dit-fp8-scaled.txt", "umt5-transformers.txt"),
    ("dit-fp8-e4m3fn.txt", "umt5-transformers.txt"),
];

fn fp8_model(dit: &str, text: &str) -> ModelInventory {
    inventory(dit, text, "vae-original.txt")
}

/// Every budget has a plan under it at both sizes with each fp8 file, its block linears counted
/// at one byte a weight. `--nocapture` prints the table.
#[test]
fn every_budget_has_a_plan_under_it_with_every_fp8_file() {
    let bf16_transformer = real_model().transformer.device_bytes(DType::BF16);
    let (mut table, mut mechanisms) = file_tables("transformer", "umT5");
    for (dit, text) in FP8_PAIRS {
        let model = fp8_model(dit, text);
        // The block linears are held in fp8: well under the bf16 transformer's 9.31 GiB.
        let weights = model.transformer.device_bytes(DType::BF16);
        assert!(
            weights * 10 < bf16_transformer * 6,
            "{dit}: {}",
            gib_text(weights)
        );
        assert!(
            model.transformer.entries.iter().any(|e| e.packed),
            "{dit}: fp8 weights are kept as stored"
        );
        let label = format!("{dit} + {text}");
        let cells = plans_under_every_budget(&model, &label, &mut mechanisms, |_, gib, p| {
            // What fp8 buys: from 12 GiB up the transformer stays resident at both sizes.
            if gib >= 12 {
                assert_eq!(
                    p.mechanisms.transformer,
                    TransformerPlacement::Resident,
                    "{p}"
                );
            }
        });
        table += &format!(
            "| {} | {} | {} + {} | {} | {} |\n",
            dit.trim_end_matches(".txt"),
            text.trim_end_matches(".txt"),
            gib_text(weights),
            gib_text(model.text_encoder.device_bytes(DType::BF16)),
            cells[0],
            cells[1]
        );
    }
    println!("Planned peaks with the fp8 files (GiB, CUDA context and host margin included):\n\n{table}\n{mechanisms}");
}
