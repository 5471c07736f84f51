//! Parity of the text path (cleaning, tokenizer, umT5) with the reference pipeline, on the tiny
//! fixtures of `tests/fixtures` (see docs/dev/fixtures.md).

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::VarBuilder;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use t2v_models::text::{self, PromptTokenizer, Umt5Config, Umt5Encoder, MAX_SEQUENCE_LENGTH};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[derive(serde::Deserialize)]
struct TextCases {
    prompts: Vec<TextCase>,
}

#[derive(serde::Deserialize)]
struct TextCase {
    key: String,
    raw: String,
    cleaned: String,
    ids: Vec<u32>,
}

fn cases() -> Vec<TextCase> {
    let json = std::fs::read_to_string(fixtures().join("parity/text.json")).unwrap();
    serde_json::from_str::<TextCases>(&json).unwrap().prompts
}

fn reference() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join("parity/text.safetensors"), &Device::Cpu)
        .unwrap()
}

fn tokenizer() -> PromptTokenizer {
    PromptTokenizer::from_file(&fixtures().join("tiny-diffusers/tokenizer/tokenizer.json")).unwrap()
}

fn tiny_config() -> Umt5Config {
    let json = std::fs::read_to_string(fixtures().join("tiny-diffusers/text_encoder/config.json"))
        .unwrap();
    serde_json::from_str(&json).unwrap()
}

fn encoder(file: &str, dtype: DType) -> Umt5Encoder {
    let weights = candle_core::safetensors::load(fixtures().join(file), &Device::Cpu).unwrap();
    Umt5Encoder::new(
        &tiny_config(),
        VarBuilder::from_tensors(weights, dtype, &Device::Cpu),
    )
    .unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn cleaning_and_token_ids_match_the_reference() {
    let tokenizer = tokenizer();
    let reference = reference();
    for case in cases() {
        assert_eq!(text::clean_prompt(&case.raw), case.cleaned, "{}", case.key);
        let ids = tokenizer.encode(&case.raw).unwrap();
        assert_eq!(ids, case.ids, "{}", case.key);

        let padded: Vec<i64> = reference[&format!("{}.input_ids", case.key)]
            .squeeze(0)
            .unwrap()
            .to_vec1()
            .unwrap();
        let mask: Vec<i64> = reference[&format!("{}.attention_mask", case.key)]
            .squeeze(0)
            .unwrap()
            .to_vec1()
            .unwrap();
        let real = mask.iter().filter(|&&m| m > 0).count();
        let padded_ids: Vec<u32> = padded[..real].iter().map(|&id| id as u32).collect();
        assert_eq!(ids, padded_ids, "{}", case.key);
    }
}

#[test]
fn long_prompts_are_truncated_to_511_tokens_and_eos() {
    let tokenizer = tokenizer();
    let prompt = "A red ball bouncing on a green field. ".repeat(60);
    let ids = tokenizer.encode(&prompt).unwrap();
    assert_eq!(ids.len(), MAX_SEQUENCE_LENGTH);
    assert_eq!(ids.last(), Some(&1));
    let short = tokenizer
        .encode("A red ball bouncing on a green field.")
        .unwrap();
    assert_eq!(ids[..short.len() - 1], short[..short.len() - 1]);
}

/// transformers' `T5Tokenizer` keeps only the vocabulary and the `Precompiled` normaliser of a
/// `tokenizer.json`; the ids below are what it gives for this altered copy of the fixture.
#[test]
fn tokenizer_json_settings_are_replaced_like_transformers_does() {
    let path = fixtures().join("tiny-diffusers/tokenizer/tokenizer.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["pre_tokenizer"] = serde_json::json!(
        {"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "always", "split": true});
    json["normalizer"] = serde_json::json!({"type": "Sequence", "normalizers": [
        {"type": "Replace", "pattern": {"String": "Q"}, "content": "  "}]});
    json["post_processor"] = serde_json::Value::Null;
    let altered = std::env::temp_dir().join(format!("t2v-text-parity-{}.json", std::process::id()));
    std::fs::write(&altered, json.to_string()).unwrap();
    let tokenizer = PromptTokenizer::from_file(&altered);
    std::fs::remove_file(&altered).unwrap();
    assert_eq!(
        tokenizer.unwrap().encode("aQb red").unwrap(),
        vec![17, 2, 25, 234, 1]
    );
}

#[test]
fn unknown_text_is_reported_with_its_word() {
    let tokenizer = tokenizer();
    assert_eq!(tokenizer.unk_id(), Some(2));
    assert!(tokenizer
        .unknown_text("A red ball bouncing on a green field")
        .unwrap()
        .is_empty());
    // The tiny vocabulary has no `—`; the reference ids show unk (2) for it.
    let unknown = tokenizer
        .unknown_text("The sign says “hello” — it’s a ﬁne day")
        .unwrap();
    assert_eq!(
        unknown,
        vec![text::UnknownText {
            text: "—".into(),
            word: "—".into()
        }]
    );
    // transformers: ['▁ca', 'f', '<unk>', 's', '▁', 'and', ...]
    let unknown = tokenizer.unknown_text("caf\u{e9}s and dogs").unwrap();
    assert_eq!(
        unknown,
        vec![text::UnknownText {
            text: "\u{e9}".into(),
            word: "caf\u{e9}s".into()
        }]
    );
}

#[test]
fn f32_prompt_embeddings_match_the_reference() {
    let tokenizer = tokenizer();
    let encoder = encoder("tiny-diffusers/text_encoder/model.safetensors", DType::F32);
    assert_eq!(encoder.embedding_name(), "shared.weight");
    let reference = reference();
    for case in cases() {
        let embeddings =
            text::encode_prompt(&tokenizer, &encoder, &case.raw, &Device::Cpu).unwrap();
        let expected = &reference[&format!("{}.prompt_embeds", case.key)];
        assert_eq!(embeddings.dims(), &[1, MAX_SEQUENCE_LENGTH, 32]);
        assert_eq!(embeddings.dtype(), DType::F32);
        let diff = max_abs_diff(&embeddings, expected);
        println!(
            "{}: {} tokens, f32 max |diff| {diff:.3e}",
            case.key,
            case.ids.len()
        );
        assert!(diff <= 1e-4, "{}: max |diff| {diff}", case.key);

        let real = case.ids.len();
        let pad = embeddings
            .narrow(1, real, MAX_SEQUENCE_LENGTH - real)
            .unwrap();
        assert_eq!(
            pad.abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );
    }
}

/// The bf16 copy holds the same (bf16-representable) weights, so the difference is bf16 compute
/// against the f32 reference, on outputs of magnitude up to ~3.4 (bf16 spacing 1.6e-2 there).
/// Measured over p0..p5: max |diff| 1.4e-2..6.7e-2, mean |diff| 4.9e-3..9.7e-3. transformers
/// itself in bf16 is as far off: max 2.2e-2..5.6e-2, mean 7.0e-3..8.3e-3 against the same
/// reference. The bounds leave ~1.5x headroom.
const BF16_MAX_TOLERANCE: f32 = 1e-1;
const BF16_MEAN_TOLERANCE: f32 = 1.5e-2;

#[test]
fn bf16_checkpoint_loads_and_matches_within_bf16_tolerance() {
    let tokenizer = tokenizer();
    let encoder = encoder("tiny-original/umt5_tiny_bf16.safetensors", DType::BF16);
    assert_eq!(encoder.embedding_name(), "encoder.embed_tokens.weight");
    let reference = reference();
    for case in cases() {
        let embeddings =
            text::encode_prompt(&tokenizer, &encoder, &case.raw, &Device::Cpu).unwrap();
        assert_eq!(embeddings.dtype(), DType::BF16);
        let real = case.ids.len();
        let embeddings = embeddings
            .narrow(1, 0, real)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let expected = reference[&format!("{}.prompt_embeds", case.key)]
            .narrow(1, 0, real)
            .unwrap();
        let max = max_abs_diff(&embeddings, &expected);
        let mean: f32 = (embeddings - expected)
            .unwrap()
            .abs()
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        println!(
            "{}: bf16 max |diff| {max:.3e}, mean |diff| {mean:.3e}",
            case.key
        );
        assert!(max <= BF16_MAX_TOLERANCE, "{}: max |diff| {max}", case.key);
        assert!(
            mean <= BF16_MEAN_TOLERANCE,
            "{}: mean |diff| {mean}",
            case.key
        );
    }
}

#[test]
fn relative_position_buckets_match_transformers() {
    // Bucket edges computed with transformers' `_relative_position_bucket` (32 buckets, 128).
    let edges = [
        (1, 1),
        (7, 7),
        (8, 8),
        (11, 8),
        (12, 9),
        (15, 9),
        (16, 10),
        (22, 10),
        (23, 11),
        (31, 11),
        (32, 12),
        (45, 12),
        (46, 13),
        (63, 13),
        (64, 14),
        (90, 14),
        (91, 15),
        (128, 15),
        (600, 15),
    ];
    assert_eq!(text::umt5::relative_position_bucket(0, 32, 128), 0);
    for (distance, bucket) in edges {
        assert_eq!(
            text::umt5::relative_position_bucket(-distance, 32, 128),
            bucket,
            "-{distance}"
        );
        assert_eq!(
            text::umt5::relative_position_bucket(distance, 32, 128),
            bucket + 16,
            "+{distance}"
        );
    }
}

#[test]
fn pad_to_length_appends_zero_rows() {
    let embeddings = Tensor::ones((2, 3, 4), DType::F32, &Device::Cpu).unwrap();
    let padded = text::pad_to_length(&embeddings, 5).unwrap();
    assert_eq!(padded.dims(), &[2, 5, 4]);
    let rows: Vec<Vec<Vec<f32>>> = padded.to_vec3().unwrap();
    assert!(rows
        .iter()
        .all(|b| b[..3].iter().flatten().all(|&x| x == 1.0)));
    assert!(rows
        .iter()
        .all(|b| b[3..].iter().flatten().all(|&x| x == 0.0)));
    assert!(text::pad_to_length(&embeddings, 2).is_err());
}

/// Serves broadcast zero tensors (one-element storage) of the real shapes and records which
/// names the model asks for.
struct ZeroWeights {
    shapes: HashMap<String, Vec<usize>>,
    used: Mutex<BTreeSet<String>>,
}

impl candle_nn::var_builder::SimpleBackend for ZeroWeights {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let shape = self
            .shapes
            .get(name)
            .ok_or_else(|| candle_core::Error::CannotFindTensor { path: name.into() })?;
        assert_eq!(s.dims(), shape.as_slice(), "{name}");
        self.used.lock().unwrap().insert(name.to_string());
        Tensor::zeros((), dtype, dev)?.broadcast_as(shape.as_slice())
    }
    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let shape = self.shapes[name].clone();
        self.get(
            shape.as_slice().into(),
            name,
            candle_nn::Init::Const(0.),
            dtype,
            dev,
        )
    }
    fn contains_tensor(&self, name: &str) -> bool {
        self.shapes.contains_key(name)
    }
}

/// The 243 tensors of the real transformers checkpoint (models/manifests/umt5-transformers.txt).
fn umt5_xxl_shapes(cfg: &Umt5Config) -> HashMap<String, Vec<usize>> {
    let (d, ff, inner) = (cfg.d_model, cfg.d_ff, cfg.num_heads * cfg.d_kv);
    let mut shapes = HashMap::from([
        ("shared.weight".to_string(), vec![cfg.vocab_size, d]),
        (
            "encoder.embed_tokens.weight".to_string(),
            vec![cfg.vocab_size, d],
        ),
        ("encoder.final_layer_norm.weight".to_string(), vec![d]),
    ]);
    for i in 0..cfg.num_layers {
        let p = format!("encoder.block.{i}.layer");
        for name in ["q", "k", "v"] {
            shapes.insert(format!("{p}.0.SelfAttention.{name}.weight"), vec![inner, d]);
        }
        shapes.insert(format!("{p}.0.SelfAttention.o.weight"), vec![d, inner]);
        shapes.insert(
            format!("{p}.0.SelfAttention.relative_attention_bias.weight"),
            vec![cfg.relative_attention_num_buckets, cfg.num_heads],
        );
        shapes.insert(format!("{p}.0.layer_norm.weight"), vec![d]);
        shapes.insert(format!("{p}.1.DenseReluDense.wi_0.weight"), vec![ff, d]);
        shapes.insert(format!("{p}.1.DenseReluDense.wi_1.weight"), vec![ff, d]);
        shapes.insert(format!("{p}.1.DenseReluDense.wo.weight"), vec![d, ff]);
        shapes.insert(format!("{p}.1.layer_norm.weight"), vec![d]);
    }
    shapes
}

#[test]
fn real_size_umt5_xxl_builds_without_copying_weights() {
    let cfg = Umt5Config::umt5_xxl();
    let shapes = umt5_xxl_shapes(&cfg);
    assert_eq!(shapes.len(), 243);
    let backend = std::sync::Arc::new(ZeroWeights {
        shapes: shapes.clone(),
        used: Mutex::default(),
    });
    struct Shared(std::sync::Arc<ZeroWeights>);
    impl candle_nn::var_builder::SimpleBackend for Shared {
        fn get(
            &self,
            s: Shape,
            n: &str,
            h: candle_nn::Init,
            t: DType,
            d: &Device,
        ) -> candle_core::Result<Tensor> {
            self.0.get(s, n, h, t, d)
        }
        fn get_unchecked(&self, n: &str, t: DType, d: &Device) -> candle_core::Result<Tensor> {
            self.0.get_unchecked(n, t, d)
        }
        fn contains_tensor(&self, n: &str) -> bool {
            self.0.contains_tensor(n)
        }
    }
    let vb = VarBuilder::from_backend(Box::new(Shared(backend.clone())), DType::BF16, Device::Cpu);
    let encoder = Umt5Encoder::new(&cfg, vb).unwrap();
    assert_eq!(encoder.embedding_name(), "encoder.embed_tokens.weight");
    let used = backend.used.lock().unwrap().clone();
    let unused: Vec<_> = shapes.keys().filter(|name| !used.contains(*name)).collect();
    assert_eq!(unused, vec!["shared.weight"]);
}

#[test]
fn config_reads_transformers_config_json() {
    let cfg = tiny_config();
    assert_eq!(
        (
            cfg.d_model,
            cfg.d_kv,
            cfg.num_heads,
            cfg.d_ff,
            cfg.num_layers
        ),
        (32, 8, 4, 64, 2)
    );
    assert_eq!(
        cfg.feed_forward_activation().unwrap(),
        (candle_nn::Activation::NewGelu, true)
    );
}
