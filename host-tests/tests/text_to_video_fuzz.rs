//! Fuzzing the node: seeded random sequences of host actions and parameter values (hostile ones
//! included: zero and huge sizes, NaN guidance, empty, very long and unicode prompts, missing
//! and odd model paths, renders at any time, abort, cancel, purge, double destroy, unload and
//! reload) against the node on the tiny model, in several hosts.
//!
//! Each batch runs in a child process of this test binary (seed in `$T2V_FUZZ_SEED`), so that a
//! crash is counted, not the end of the run. A batch fails on a status the OFX specification
//! does not allow for the action, on a panic that reached the plugin's catch at the C boundary
//! (its log says `panic in`), on pixels written outside the image or images not released.
//! Replay a batch with `T2V_FUZZ_SEED=<seed> cargo test --release -p ofx-test-host --test
//! text_to_video_fuzz fuzz_batch -- --ignored --nocapture`.

mod t2v_common;

use ofx_bindings::sys::*;
use ofx_bindings::Context;
use ofx_test_host::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use t2v_common::*;

const SEED_ENV: &str = "T2V_FUZZ_SEED";
const SEQUENCES_ENV: &str = "T2V_FUZZ_SEQUENCES";
/// Batches (child processes) and sequences per batch.
const BATCHES: u64 = 4;
const SEQUENCES: usize = 1000;

#[test]
fn fuzz_the_node() {
    bundle(); // built once here, reused by the children
    let (mut sequences, mut actions, mut failures, mut crashes) = (0, 0, 0, 0);
    let mut reports = Vec::new();
    for seed in 0..BATCHES {
        let output = child_test("fuzz_batch")
            .env(SEED_ENV, seed.to_string())
            .env(SEQUENCES_ENV, SEQUENCES.to_string())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if let Some(line) = stdout.lines().find(|l| l.contains("clips made")) {
            println!("{line}");
        }
        let summary = stdout
            .lines()
            .find_map(|l| l.split("fuzz batch summary: ").nth(1))
            .map(|l| {
                l.split_whitespace()
                    .filter_map(|n| n.parse::<usize>().ok())
                    .collect::<Vec<_>>()
            });
        match summary {
            Some(n) if n.len() == 3 && output.status.success() => {
                sequences += n[0];
                actions += n[1];
                failures += n[2];
            }
            _ => {
                crashes += 1;
                reports.push(format!(
                    "batch {seed}: {}\n{}\n{}",
                    output.status,
                    stdout.lines().rev().take(30).collect::<Vec<_>>().join("\n"),
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
        }
        reports.extend(
            stdout
                .lines()
                .filter(|l| l.starts_with("FAILURE"))
                .map(|l| format!("batch {seed}: {l}")),
        );
    }
    println!(
        "node fuzzing: {sequences} sequences, {actions} actions, {failures} failures, {crashes} crashes"
    );
    assert!(
        failures == 0 && crashes == 0,
        "{failures} failures, {crashes} crashes:\n{}",
        reports.join("\n\n")
    );
    assert!(sequences >= BATCHES as usize * SEQUENCES, "every batch ran");
}

/// What an action may answer (ofxImageEffect.h, ofxCore.h).
fn allowed(action: &str, status: OfxStatus) -> bool {
    let common = [
        kOfxStatOK,
        kOfxStatReplyDefault,
        kOfxStatFailed,
        kOfxStatErrMemory,
    ];
    match action {
        "render" => [
            kOfxStatOK,
            kOfxStatFailed,
            kOfxStatErrMemory,
            kOfxStatErrImageFormat,
            kOfxStatGPUOutOfMemory,
            kOfxStatGPURenderFailed,
        ]
        .contains(&status),
        "create" => [kOfxStatOK, kOfxStatFailed, kOfxStatErrMemory].contains(&status),
        _ => common.contains(&status),
    }
}

/// One batch's state: the host, the loaded plugin, the live instances.
struct Fuzzer {
    rng: ChaCha8Rng,
    host: Host,
    plugin: Option<Plugin>,
    instances: Vec<Instance>,
    actions: usize,
    failures: Vec<String>,
    trail: Vec<String>,
}

/// The batch's host: Nuke, Resolve, a colour-managed host and Natron in turn, on a farm or
/// not, some without optional suites.
fn profile(seed: u64, rng: &mut ChaCha8Rng) -> HostProfile {
    let base = match seed % 4 {
        0 => HostProfile::nuke(),
        1 => HostProfile::resolve(),
        2 => HostProfile::generic()
            .colour_managed("OfxImageEffectPropColourManagementCore", "ACEScg"),
        _ => HostProfile::natron(),
    };
    let base = base.background(rng.random_bool(0.3));
    match rng.random_range(0..6) {
        0 => base.without_progress_suite(),
        1 => base.without_message_suite(),
        _ => base,
    }
}

const PARAMS: &[&str] = &[
    "prompt",
    "negative",
    "style",
    "style_name",
    "tags",
    "seed",
    "steps",
    "guidance",
    "shift",
    "sampler",
    "resolution",
    "width",
    "height",
    "frames",
    "first_frame",
    "upscale",
    "upscaler",
    "model",
    "loras",
    "device",
    "memory",
    "colour",
    "cache",
    "decoder",
];

impl Fuzzer {
    fn load(&mut self) {
        self.plugin = Some(
            self.host
                .load_bundle(bundle())
                .unwrap()
                .plugin(Some(ID))
                .unwrap(),
        );
    }

    fn context(&self) -> Context {
        let contexts = &self.host.profile().contexts;
        if contexts.contains(&Context::Generator) {
            Context::Generator
        } else {
            Context::General
        }
    }

    /// Checks an action's outcome.
    fn check<T>(&mut self, action: &str, result: ofx_test_host::Result<T>) -> Option<T> {
        self.actions += 1;
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                let bad = match &e {
                    HostError::Action { status, .. } => !allowed(action, *status),
                    // The driver's own refusals (a choice out of range, an unknown name).
                    HostError::ParamValue { .. } | HostError::Unsupported(_) => false,
                    _ => true,
                };
                if bad {
                    self.failures
                        .push(format!("{action}: {e} after {:?}", self.trail));
                }
                None
            }
        }
    }

    fn value(&mut self, name: &str) -> ParamValue {
        let r = &mut self.rng;
        let long: String = "a long prompt ".repeat(800);
        let pick = |r: &mut ChaCha8Rng, options: &[i32]| options[r.random_range(0..options.len())];
        match name {
            "prompt" | "negative" => ParamValue::String(
                match r.random_range(0..8) {
                    0 => "",
                    1 => "   ",
                    2 => long.as_str(),
                    3 => "🎬 café, 日本語の夜景, ñ\u{200b}\t\n",
                    4 => "a red ball",
                    5 => "a blue square moves left",
                    _ => "fuzz",
                }
                .to_string(),
            ),
            "tags" => ParamValue::String(
                [
                    "",
                    "golden-hour",
                    "golden-hour, dolly-in",
                    "no-such-tag",
                    ",,, ,",
                    "🎬",
                ][r.random_range(0..6)]
                .to_string(),
            ),
            "style_name" => ParamValue::String(
                ["", "none", "anime", "no-such-style", "ünïcode"][r.random_range(0..5)].to_string(),
            ),
            "model" => ParamValue::String(match r.random_range(0..6) {
                0 => String::new(),
                1 => "/nonexistent/wan".to_string(),
                2 => tiny_model().join("model_index.json").display().to_string(),
                3 => format!("/tmp/{}", "ü".repeat(300)),
                _ => tiny_model().display().to_string(),
            }),
            "loras" => ParamValue::String(match r.random_range(0..8) {
                0 => tiny_model()
                    .with_file_name("lora")
                    .join("kohya.safetensors:0.5")
                    .display()
                    .to_string(),
                1 => "a.safetensors:1.2.3\n# note".to_string(),
                2 => format!("{}:1e999", "ü".repeat(200)),
                3 => tiny_model().join("model_index.json").display().to_string(),
                _ => String::new(),
            }),
            "seed" => ParamValue::Int(pick(r, &[0, 1, 2, -1, i32::MAX])),
            "steps" => ParamValue::Int(pick(r, &[1, 2, 1, 0, -3, 1001, i32::MAX])),
            "width" | "height" => {
                ParamValue::Int(pick(r, &[32, 32, 64, 0, -32, 31, 4096, i32::MAX]))
            }
            "frames" => ParamValue::Int(pick(r, &[1, 5, 1, 0, 2, -1, 258, i32::MAX])),
            "first_frame" => ParamValue::Int(pick(r, &[1, 0, -5, 1001, i32::MIN, i32::MAX])),
            "guidance" | "shift" => ParamValue::Double(
                [5.0, 1.0, 0.0, -1.0, f64::NAN, f64::INFINITY, 1e300][r.random_range(0..7)],
            ),
            "resolution" => ParamValue::Int(if r.random_bool(0.9) {
                4
            } else {
                r.random_range(0..6)
            }),
            "sampler" => ParamValue::Int(r.random_range(0..3)),
            "device" => ParamValue::Int(r.random_range(0..4)),
            "memory" => ParamValue::Int(r.random_range(-1..6)),
            "colour" => ParamValue::Int(r.random_range(0..5)),
            "style" => ParamValue::Int(r.random_range(0..12)),
            "cache" => ParamValue::Bool(r.random_bool(0.7)),
            "upscale" => ParamValue::Int(if r.random_bool(0.7) {
                0
            } else {
                pick(r, &[1, 2, 3, 4, 5, 6, -1])
            }),
            "upscaler" => ParamValue::String(match r.random_range(0..4) {
                0 => String::new(),
                1 => "/nonexistent/net.pth".to_string(),
                2 => tiny_model().join("model_index.json").display().to_string(),
                _ => tiny_model()
                    .parent()
                    .unwrap()
                    .join("upscale/compact_x2.safetensors")
                    .display()
                    .to_string(),
            }),
            "decoder" => ParamValue::Int(r.random_range(0..3)),
            other => panic!("no values for {other}"),
        }
    }

    fn step(&mut self) {
        let n = self.instances.len();
        let choice = self.rng.random_range(0..100);
        if self.plugin.is_none() {
            self.trail.push("load".into());
            self.load();
            return;
        }
        if n == 0 || (choice < 8 && n < 3) {
            self.trail.push("create".into());
            let plugin = self.plugin.clone().unwrap();
            let context = self.context();
            if let Some(i) = self.check("create", plugin.create_instance(context)) {
                // Mostly small clips on the tiny model.
                if self.rng.random_bool(0.8) {
                    configure(&i, "fuzz", self.rng.random_range(0..3));
                    let _ = i.set_param("width", 32);
                    let _ = i.set_param("height", 32);
                    let _ = i.set_param("frames", 1);
                    let _ = i.set_param("steps", 1);
                }
                self.instances.push(i);
            }
            return;
        }
        let k = self.rng.random_range(0..n);
        match choice {
            0..=39 => {
                let name = PARAMS[self.rng.random_range(0..PARAMS.len())];
                let value = self.value(name);
                let shown: String = format!("{value:?}").chars().take(60).collect();
                self.trail.push(format!("set {name}={shown}"));
                let r = self.instances[k].set_param(name, value);
                self.check("instance changed", r);
            }
            40..=49 => {
                let cancel = self.rng.random_bool(0.2);
                self.trail
                    .push(format!("generate (progress cancel {cancel})"));
                self.host.set_progress_cancel(cancel);
                let r = self.instances[k].push_button("generate");
                self.host.set_progress_cancel(false);
                self.check("instance changed", r);
            }
            50..=53 => {
                self.trail.push("cancel".into());
                let r = self.instances[k].push_button("cancel");
                self.check("instance changed", r);
            }
            54..=74 => {
                let depths = self.host.profile().depths.clone();
                let depth = depths[self.rng.random_range(0..depths.len())];
                let time = [1.0, 3.0, 0.0, -1e6, 1e9, 2.5, -0.5][self.rng.random_range(0..7)];
                let scale = [1.0, 0.5, 0.25][self.rng.random_range(0..3)];
                let abort = self.rng.random_bool(0.1);
                let interactive = self.rng.random_bool(0.5);
                self.trail.push(format!(
                    "render t={time} {depth:?} scale {scale} abort {abort} interactive {interactive}"
                ));
                self.host.set_abort(abort);
                let r = self.instances[k].render_with(
                    &RenderRequest::new(time, depth)
                        .render_scale(scale)
                        .interactive(interactive),
                );
                self.host.set_abort(false);
                self.check("render", r);
            }
            75..=79 => {
                self.trail.push("purge caches".into());
                let r = self.instances[k].purge_caches();
                self.check("purge caches", r);
            }
            80..=84 => {
                self.trail
                    .push("sync, time domain, rod, clip preferences".into());
                let i = &self.instances[k];
                let (a, b, c, d) = (
                    i.sync_private_data(),
                    i.time_domain().map(drop),
                    i.region_of_definition(1.0, 1.0).map(drop),
                    i.get_clip_preferences(),
                );
                self.check("sync private data", a);
                self.check("time domain", b);
                self.check("region of definition", c);
                self.check("clip preferences", d);
            }
            85..=87 => {
                let value = [0.5, f32::NAN, -1.0, f32::INFINITY][self.rng.random_range(0..4)];
                self.trail.push(format!("connect source {value}"));
                let rgba = vec![value; SIZE * SIZE * 4];
                let r = self.instances[k].connect_input("Source", SIZE, SIZE, &rgba);
                self.check("connect", r);
            }
            88..=94 => {
                let again = self.rng.random_bool(0.3);
                self.trail.push(format!("destroy (twice {again})"));
                let i = self.instances.swap_remove(k);
                if again {
                    let r = i.destroy_again();
                    self.check("destroy", r);
                } else {
                    let r = i.destroy();
                    self.check("destroy", r);
                }
            }
            _ if self.rng.random_bool(0.3) => {
                self.trail.push("unload".into());
                self.instances.clear();
                self.plugin = None;
                self.actions += 1;
            }
            _ => {
                self.trail.push("noop".into());
            }
        }
    }
}

#[test]
#[ignore = "one batch of fuzz_the_node, run by it in a child process with T2V_FUZZ_SEED"]
fn fuzz_batch() {
    let seed: u64 = std::env::var(SEED_ENV)
        .expect("run by fuzz_the_node: T2V_FUZZ_SEED")
        .parse()
        .unwrap();
    let sequences: usize = std::env::var(SEQUENCES_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEQUENCES);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fuzzer = Fuzzer {
        host: Host::new(profile(seed, &mut rng)),
        rng,
        plugin: None,
        instances: Vec::new(),
        actions: 0,
        failures: Vec::new(),
        trail: Vec::new(),
    };
    for _ in 0..sequences {
        fuzzer.trail.clear();
        let length = fuzzer.rng.random_range(3..15);
        for _ in 0..length {
            fuzzer.step();
        }
        // A sequence ends with its instances destroyed.
        fuzzer.instances.clear();
    }
    fuzzer.plugin = None;
    let panics: Vec<String> = log_text()
        .lines()
        .filter(|l| l.contains("] panic in "))
        .map(str::to_string)
        .collect();
    for p in &panics {
        fuzzer
            .failures
            .push(format!("a panic reached the C boundary: {p}"));
    }
    for f in &fuzzer.failures {
        println!("FAILURE {f}");
    }
    let clips = log_text().matches("ready (").count();
    println!("fuzz batch {seed}: {clips} clips made or read from the cache");
    println!(
        "fuzz batch summary: {sequences} {} {}",
        fuzzer.actions,
        fuzzer.failures.len()
    );
    assert!(
        fuzzer.failures.is_empty(),
        "{} failures",
        fuzzer.failures.len()
    );
}
