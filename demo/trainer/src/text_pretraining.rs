//! Pretraining of the demo model's text encoder, before the transformer learns from it.
//!
//! Wan2.2's umT5 comes pretrained and stays frozen while its transformer trains; ours starts
//! from random weights. Trained only through the transformer's cross-attention, it never learnt
//! that "drifts left", "slides to the left" and "moving left" mean one thing, and the transformer
//! ignored the motion words (docs/demo-model.md). Here it first learns to say what a caption
//! describes: at the noun of each object ("circle", "box", ...) linear heads read that object's
//! colour, shape and motion, and at "background"/"backdrop" the background's colour. The heads
//! are thrown away; the encoder keeps the words' meanings in the noun's vector, where one
//! cross-attention lookup finds them.

use crate::configs::Preset;
use crate::train::{adamw, augmented_ids, clipped_step, parallel_grads, Log, Result, TrainError};
use crate::world::{
    caption, Layout, Scene, Split, BACKGROUND_COLOURS, MOTIONS, OBJECT_COLOURS, SHAPES,
};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{Linear, Module, Optimizer, VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::time::Instant;
use t2v_models::text::{PromptTokenizer, Umt5Encoder};

/// What a head reads from a token's vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attribute {
    Colour,
    Shape,
    Motion,
    Background,
}

const ATTRIBUTES: [Attribute; 4] = [
    Attribute::Colour,
    Attribute::Shape,
    Attribute::Motion,
    Attribute::Background,
];

impl Attribute {
    fn classes(self) -> usize {
        match self {
            Attribute::Colour => OBJECT_COLOURS.len(),
            Attribute::Shape => SHAPES.len(),
            Attribute::Motion => MOTIONS.len(),
            Attribute::Background => BACKGROUND_COLOURS.len(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Attribute::Colour => "colour",
            Attribute::Shape => "shape",
            Attribute::Motion => "motion",
            Attribute::Background => "background",
        }
    }
}

/// A labelled token of a caption: its position, the attribute read there and its class.
type Label = (usize, Attribute, u32);

/// The token ids of the nouns the labels sit on (every case the captions use).
pub struct NounIds {
    shapes: Vec<u32>,
    backgrounds: Vec<u32>,
}

impl NounIds {
    pub fn new(tokenizer: &PromptTokenizer) -> Result<NounIds> {
        let ids = |words: &[&str]| -> Result<Vec<u32>> {
            let mut out = Vec::new();
            for word in words {
                for form in [word.to_string(), crate::world::capitalise_first(word)] {
                    let ids = tokenizer
                        .encode(&form)
                        .map_err(|e| TrainError::Other(e.to_string()))?;
                    match ids.as_slice() {
                        [id, crate::vocab::EOS_ID] if *id != crate::vocab::UNK_ID => out.push(*id),
                        _ => {
                            return Err(TrainError::Other(format!(
                                "text pretraining: `{form}` is not one token ({ids:?})"
                            )))
                        }
                    }
                }
            }
            Ok(out)
        };
        let shape_words: Vec<&str> = SHAPES.iter().flat_map(|s| s.words()).copied().collect();
        Ok(NounIds {
            shapes: ids(&shape_words)?,
            backgrounds: ids(&["background", "backdrop"])?,
        })
    }

    /// The labels of a caption of `scene`: the k-th shape noun names object k (captions name the
    /// objects in order), the background noun the background.
    pub fn labels(&self, ids: &[u32], scene: &Scene) -> Vec<Label> {
        fn index<T: PartialEq>(items: &[T], item: T) -> u32 {
            items
                .iter()
                .position(|x| *x == item)
                .expect("a listed value") as u32
        }
        let mut labels = Vec::new();
        let mut objects = scene.objects.iter();
        for (at, id) in ids.iter().enumerate() {
            if self.shapes.contains(id) {
                if let Some(o) = objects.next() {
                    labels.push((at, Attribute::Colour, index(&OBJECT_COLOURS[..], o.colour)));
                    labels.push((at, Attribute::Shape, index(&SHAPES[..], o.shape)));
                    labels.push((at, Attribute::Motion, index(&MOTIONS[..], o.motion)));
                }
            } else if self.backgrounds.contains(id) {
                labels.push((
                    at,
                    Attribute::Background,
                    index(&BACKGROUND_COLOURS[..], scene.background),
                ));
            }
        }
        labels
    }
}

/// One caption: its token ids and labels.
struct Example {
    ids: Vec<u32>,
    labels: Vec<Label>,
}

fn examples(
    count: usize,
    preset: &Preset,
    tokenizer: &PromptTokenizer,
    nouns: &NounIds,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Example>> {
    let d = &preset.dataset;
    (0..count)
        .map(|_| {
            let scene = Scene::sample(
                rng,
                Split::Train,
                d.two_objects,
                Layout::Lanes,
                d.width,
                d.height,
            );
            let text = caption(rng, &scene);
            let ids = augmented_ids(tokenizer, &text, preset.dit.unknown_insertion, rng)?;
            let labels = nouns.labels(&ids, &scene);
            Ok(Example { ids, labels })
        })
        .collect()
}

/// The linear heads, one per attribute.
struct Heads {
    map: VarMap,
    heads: HashMap<Attribute, Linear>,
}

impl Heads {
    /// Heads with weights drawn from `seed` (candle's own initialisation draws from an unseeded
    /// generator, which made every training run differ).
    fn new(d_model: usize, seed: u64, device: &Device) -> Result<Heads> {
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, device);
        let mut heads = HashMap::new();
        for a in ATTRIBUTES {
            heads.insert(a, candle_nn::linear(d_model, a.classes(), vb.pp(a.name()))?);
        }
        crate::init::initialise(&map, seed, 1)?;
        Ok(Heads { map, heads })
    }

    /// Per attribute: the logits `[n, classes]` at its labelled positions and the classes `[n]`.
    fn logits(
        &self,
        encoder: &Umt5Encoder,
        example: &Example,
    ) -> Result<Vec<(Attribute, Tensor, Tensor)>> {
        let device = Device::Cpu;
        let ids = Tensor::new(example.ids.as_slice(), &device)?.unsqueeze(0)?;
        let hidden = encoder.forward(&ids)?.squeeze(0)?;
        let mut out = Vec::new();
        for a in ATTRIBUTES {
            let (at, classes): (Vec<u32>, Vec<u32>) = example
                .labels
                .iter()
                .filter(|l| l.1 == a)
                .map(|l| (l.0 as u32, l.2))
                .unzip();
            if at.is_empty() {
                continue;
            }
            let rows = hidden.index_select(&Tensor::new(at.as_slice(), &device)?, 0)?;
            let logits = self.heads[&a].forward(&rows)?;
            out.push((a, logits, Tensor::new(classes.as_slice(), &device)?));
        }
        Ok(out)
    }
}

/// Trains `encoder` (its variables `text_vars`) for `preset.dit.text_pretrain_steps` steps to
/// read each object's colour, shape and motion and the background's colour from a caption;
/// logs the heads' accuracy on fresh captions at the end and returns it (per attribute).
pub fn pretrain_text_encoder(
    preset: &Preset,
    encoder: &Umt5Encoder,
    text_map: &VarMap,
    tokenizer: &PromptTokenizer,
    workers: usize,
    log: &Log,
) -> Result<Vec<(Attribute, f32)>> {
    let steps = preset.dit.text_pretrain_steps;
    let device = Device::Cpu;
    let nouns = NounIds::new(tokenizer)?;
    let heads = Heads::new(
        preset.sizes.text_d_model,
        preset.seed ^ 0x4845_4144,
        &device,
    )?;
    // In name order: the gradient norm sums over them, and a map's own order changes per run.
    let vars: Vec<Var> = crate::train::named_vars(text_map)
        .into_iter()
        .chain(crate::train::named_vars(&heads.map))
        .map(|(_, v)| v)
        .collect();
    let peak = 3e-3;
    let mut opt = adamw(vars.clone(), peak)?;
    let mut rng = ChaCha8Rng::seed_from_u64(preset.seed ^ 0x5445_5854);
    let batch = 32;
    let start = Instant::now();
    let mut recent = Vec::new();
    for step in 0..steps {
        opt.set_learning_rate(crate::train::learning_rate(step, steps, 50, peak));
        let batch_examples = examples(batch, preset, tokenizer, &nouns, &mut rng)?;
        let (loss, grads) = parallel_grads(&batch_examples, workers, &vars, |example| {
            let mut total = Tensor::zeros((), DType::F32, &device)?;
            for (_, logits, classes) in heads.logits(encoder, example)? {
                let ce = candle_nn::loss::cross_entropy(&logits, &classes)?;
                total = (total + (ce * logits.dim(0)? as f64)?)?;
            }
            Ok((total / batch as f64)?)
        })?;
        if !loss.is_finite() {
            return Err(TrainError::Other(format!(
                "text pretraining: loss became {loss} at step {step}"
            )));
        }
        clipped_step(&mut [&mut opt], &vars, grads, 1.0)?;
        recent.push(loss);
        if (step + 1) % 100 == 0 || step + 1 == steps {
            let mean = recent.iter().sum::<f32>() / recent.len() as f32;
            recent.clear();
            log.line(&format!(
                "text pretraining: step {}/{steps} loss {mean:.4} ({:.0} s)",
                step + 1,
                start.elapsed().as_secs_f64()
            ));
        }
    }
    let accuracy = accuracy(encoder, &heads, preset, tokenizer, &nouns)?;
    log.line(&format!(
        "text pretraining: accuracy on 500 new captions: {}",
        accuracy
            .iter()
            .map(|(a, acc)| format!("{} {:.1}%", a.name(), acc * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(accuracy)
}

/// Per attribute, the share of labelled tokens of 500 fresh captions whose head picks the class.
fn accuracy(
    encoder: &Umt5Encoder,
    heads: &Heads,
    preset: &Preset,
    tokenizer: &PromptTokenizer,
    nouns: &NounIds,
) -> Result<Vec<(Attribute, f32)>> {
    let mut rng = ChaCha8Rng::seed_from_u64(preset.seed ^ 0xACC);
    let mut right: HashMap<Attribute, (usize, usize)> = HashMap::new();
    for example in examples(500, preset, tokenizer, nouns, &mut rng)? {
        for (a, logits, classes) in heads.logits(encoder, &example)? {
            let picked: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
            let classes: Vec<u32> = classes.to_vec1()?;
            let entry = right.entry(a).or_default();
            entry.0 += picked.iter().zip(&classes).filter(|(p, c)| p == c).count();
            entry.1 += classes.len();
        }
    }
    Ok(ATTRIBUTES
        .iter()
        .filter_map(|a| right.get(a).map(|&(r, n)| (*a, r as f32 / n.max(1) as f32)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{Colour, Motion, Object, Shape};

    fn object(colour: Colour, shape: Shape, motion: Motion) -> Object {
        Object {
            colour,
            shape,
            motion,
            size: 20.0,
            start: (100.0, 80.0),
            travel: 0.0,
        }
    }

    /// The demo tokenizer, saved into and read back from `dir`.
    fn demo_tokenizer(dir: &tempfile::TempDir) -> PromptTokenizer {
        let path = dir.path().join("tokenizer.json");
        crate::vocab::save_tokenizer(&path).unwrap();
        PromptTokenizer::from_file(&path).unwrap()
    }

    /// A text encoder of `preset`'s size with the trainer's seeded starting weights.
    fn fresh_encoder(preset: &Preset) -> (VarMap, Umt5Encoder) {
        let map = VarMap::new();
        let encoder = Umt5Encoder::new_with_kernels(
            &preset.sizes.text_encoder(),
            VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu),
            &crate::kernels::training_kernels(),
        )
        .unwrap();
        crate::init::initialise(&map, 1, preset.sizes.text_d_kv).unwrap();
        (map, encoder)
    }

    // The trainer's candle is single-threaded (it parallelises over the batch instead).
    t2v_support::before_main!(SINGLE_THREADED_CANDLE, crate::train::single_threaded_candle);

    /// A few hundred steps teach the demo's encoder to read every object's colour, shape and
    /// motion at its noun and the background's colour, on captions it never saw.
    #[test]
    fn pretraining_teaches_the_encoder_what_captions_describe() {
        let dir = tempfile::tempdir().unwrap();
        let tokenizer = demo_tokenizer(&dir);
        let mut preset = Preset::full();
        preset.dit.text_pretrain_steps = 300;
        let (map, encoder) = fresh_encoder(&preset);
        let accuracy =
            pretrain_text_encoder(&preset, &encoder, &map, &tokenizer, 2, &Log::new()).unwrap();
        assert_eq!(accuracy.len(), ATTRIBUTES.len());
        for (attribute, share) in accuracy {
            assert!(share > 0.95, "{}: {share}", attribute.name());
        }
    }

    /// Regression: the heads took candle's unseeded initialisation and the variables came in
    /// the map's per-run order, so two runs of the trainer with one seed made different models.
    #[test]
    fn pretraining_is_the_same_on_every_run() {
        let dir = tempfile::tempdir().unwrap();
        let tokenizer = demo_tokenizer(&dir);
        let mut preset = Preset::full();
        preset.dit.text_pretrain_steps = 20;
        let run = || {
            let (map, encoder) = fresh_encoder(&preset);
            pretrain_text_encoder(&preset, &encoder, &map, &tokenizer, 2, &Log::new()).unwrap();
            crate::train::named_vars(&map)
                .into_iter()
                .map(|(name, v)| {
                    (
                        name,
                        v.as_tensor()
                            .flatten_all()
                            .unwrap()
                            .to_vec1::<f32>()
                            .unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let (first, second) = (run(), run());
        assert_eq!(first.len(), second.len());
        for ((name, a), (_, b)) in first.iter().zip(&second) {
            assert_eq!(a, b, "{name} differs between two runs");
        }
    }

    /// The labels sit on the nouns, in the objects' order, whatever the case.
    #[test]
    fn labels_sit_on_the_nouns_in_object_order() {
        let dir = tempfile::tempdir().unwrap();
        let tokenizer = demo_tokenizer(&dir);
        let nouns = NounIds::new(&tokenizer).unwrap();
        let scene = Scene {
            background: Colour::Black,
            objects: vec![
                object(Colour::Red, Shape::Star, Motion::Left),
                object(Colour::Blue, Shape::Square, Motion::Grow),
            ],
        };
        let ids = tokenizer
            .encode("A red Star drifts left and a blue box grows, a black Backdrop")
            .unwrap();
        let labels = nouns.labels(&ids, &scene);
        // A ▁red ▁Star ▁drifts ▁left ▁and ▁a ▁blue ▁box ▁grows , ▁a ▁black ▁Backdrop </s>
        assert_eq!(
            labels,
            vec![
                (2, Attribute::Colour, 0),
                (2, Attribute::Shape, 3),
                (2, Attribute::Motion, 0),
                (8, Attribute::Colour, 4),
                (8, Attribute::Shape, 1),
                (8, Attribute::Motion, 4),
                (13, Attribute::Background, 1),
            ]
        );
    }
}
