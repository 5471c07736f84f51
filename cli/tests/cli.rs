//! End-to-end tests of the `t2v` binary on the tiny model.

mod common;

use common::fixtures;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn t2v(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_t2v"));
    c.env("T2V_CACHE_DIR", cache);
    c
}

fn run(mut c: Command) -> Output {
    c.output().expect("t2v runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// `t2v generate` on the tiny model; `extra` flag/value pairs replace the defaults or add to them.
fn tiny_generate(cache: &Path, out: &Path, extra: &[String]) -> Command {
    let model = fixtures().join("tiny-diffusers").display().to_string();
    let output = out.join("f.%04d.png").display().to_string();
    let mut flags: Vec<(String, String)> = [
        ("--model", model.as_str()),
        ("--prompt", "a red ball"),
        ("--width", "64"),
        ("--height", "64"),
        ("--frames", "5"),
        ("--steps", "2"),
        ("--output", output.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for pair in extra.chunks(2) {
        match flags.iter_mut().find(|(k, _)| *k == pair[0]) {
            Some(slot) => slot.1 = pair[1].clone(),
            None => flags.push((pair[0].clone(), pair[1].clone())),
        }
    }
    let mut c = t2v(cache);
    c.arg("generate");
    for (k, v) in flags {
        c.arg(k).arg(v);
    }
    c
}

/// Runs `c`, which must exit 2 (bad input) with `needle` in its message; the message.
fn assert_bad_input(c: Command, what: &str, needle: &str) -> String {
    let o = run(c);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{what}: {e}");
    assert!(e.contains(needle), "{what}: {e}");
    e
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn load(path: &Path, name: &str) -> Vec<f32> {
    let t = candle_core::safetensors::load(path, &candle_core::Device::Cpu)
        .unwrap()
        .remove(name)
        .unwrap();
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn generate_matches_the_reference_pipeline_and_then_reads_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let case = fixtures().join("parity/pipeline_t2v_cfg_unipc");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(case.with_extension("json")).unwrap())
            .unwrap();
    let mut tensors = candle_core::safetensors::load(
        case.with_extension("safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let init = dir.path().join("init.safetensors");
    tensors
        .remove("init_latents")
        .unwrap()
        .save_safetensors("latents", &init)
        .unwrap();
    let expected: Vec<f32> = tensors
        .remove("frames")
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();

    for (attempt, out) in ["first", "cached"].iter().enumerate() {
        let out = dir.path().join(out);
        let mut c = t2v(&dir.path().join("cache"));
        c.args(["generate", "--model"])
            .arg(fixtures().join("tiny-diffusers"));
        c.args([
            "--prompt",
            spec["prompt"].as_str().unwrap(),
            "--negative-prompt",
            spec["negative_prompt"].as_str().unwrap(),
        ]);
        c.args([
            "--width",
            "64",
            "--height",
            "64",
            "--frames",
            "5",
            "--steps",
            "4",
            "--guidance",
            "5",
            "--shift",
            "5",
        ]);
        c.args([
            "--sampler",
            "unipc",
            "--seed",
            "0",
            "--device",
            "cpu",
            "--dtype",
            "f32",
            "--init-latents",
        ])
        .arg(&init);
        c.arg("--save-frames").arg(out.join("frames.safetensors"));
        c.arg("--save-latents").arg(out.join("latents.safetensors"));
        c.arg("--output").arg(out.join("frame.%04d.png"));
        let o = run(c);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            stderr(&o).contains("from the clip cache"),
            attempt == 1,
            "{}",
            stderr(&o)
        );
        let got = load(&out.join("frames.safetensors"), "frames");
        assert_eq!(got.len(), expected.len());
        let worst = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-4, "frames differ from the reference by {worst}");
        for i in 0..5 {
            let png = image::open(out.join(format!("frame.{i:04}.png"))).unwrap();
            assert_eq!((png.width(), png.height()), (64, 64));
        }
        let metadata: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("frame.json")).unwrap())
                .unwrap();
        assert_eq!(metadata["steps"], 4);
        assert_eq!(metadata["from_cache"], attempt == 1);
        assert_eq!(
            load(&out.join("latents.safetensors"), "latents").len(),
            48 * 2 * 4 * 4
        );
    }
}

#[test]
fn exports_16_bit_png_exr_and_previews() {
    let dir = tempfile::tempdir().unwrap();
    for preview in ["p.gif", "p.png"] {
        let p = |s: &str| dir.path().join(s).display().to_string();
        let extra = vec![
            "--bit-depth".into(),
            "16".into(),
            "--exr".into(),
            p("exr/f.####.exr"),
            "--preview".into(),
            p(preview),
            "--metadata".into(),
            p("meta/clip.json"),
        ];
        let c = tiny_generate(&dir.path().join("cache"), dir.path(), &extra);
        let o = run(c);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let png = image::open(dir.path().join("f.0004.png")).unwrap();
    assert!(
        matches!(png, image::DynamicImage::ImageRgb16(_)),
        "16-bit PNG"
    );
    assert!(dir.path().join("exr/f.0004.exr").is_file());
    assert!(dir.path().join("meta/clip.json").is_file());
    let gif = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(dir.path().join("p.gif")).unwrap(),
    ))
    .unwrap();
    use image::AnimationDecoder;
    assert_eq!(gif.into_frames().count(), 5);
    let apng = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(dir.path().join("p.png")).unwrap(),
    ))
    .read_info()
    .unwrap();
    assert_eq!(apng.info().animation_control.unwrap().num_frames, 5);
}

#[test]
fn bad_input_exits_2_with_a_message_that_says_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--prompt", " "], "prompt is empty"),
        (vec!["--width", "65"], "width 65 is not a multiple of 32"),
        (vec!["--frames", "6"], "frame count 6"),
        (vec!["--model", "/no/such/folder"], "does not exist"),
        (vec!["--output", "out/frame.png"], "has no frame number"),
        (
            vec!["--image", "/no/such/image.png"],
            "--image /no/such/image.png",
        ),
        (vec!["--dtype", "f64"], "use auto, f32, bf16 or f16"),
        (vec!["--device", "tpu"], "use auto, cpu, cuda"),
        (vec!["--preview", "p.mp4"], "use a .gif or .png"),
        (vec!["--bit-depth", "12"], "use 8 or 16"),
    ];
    let not_an_image = dir.path().join("not-an-image.png");
    std::fs::write(&not_an_image, "text").unwrap();
    let mut cases: Vec<(Vec<String>, String)> = cases
        .into_iter()
        .map(|(a, m)| (a.into_iter().map(String::from).collect(), m.to_string()))
        .collect();
    cases.push((
        vec!["--image".into(), not_an_image.display().to_string()],
        "cannot be read as an image".into(),
    ));
    let wrong_latents = dir.path().join("wrong.safetensors");
    candle_core::Tensor::zeros(
        (1, 48, 1, 4, 4),
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .unwrap()
    .save_safetensors("latents", &wrong_latents)
    .unwrap();
    cases.push((
        vec!["--init-latents".into(), wrong_latents.display().to_string()],
        "this request needs [1, 48, 2, 4, 4]".into(),
    ));
    for (extra, expected) in cases {
        let c = tiny_generate(&dir.path().join("cache"), &dir.path().join("out"), &extra);
        let o = run(c);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(
            err.contains(&expected),
            "{extra:?}: `{err}` lacks `{expected}`"
        );
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
    }
}

/// What a worker cannot take (files on this machine, this machine's device settings) is refused
/// with `--queue` before any connection, instead of being dropped silently.
#[test]
fn worker_device_flags_are_checked_before_it_connects() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 2] = [
        (&["--vram", "lots"], "--vram"),
        (
            &["--low-memory", "--keep-text-encoder"],
            "cannot be used with",
        ),
    ];
    for (flags, needle) in cases {
        let mut c = t2v(dir.path());
        // Port 9 (discard): nothing listens, so reaching the connection would exit 1.
        c.args(["worker", "--queue", "nats://127.0.0.1:9"])
            .args(flags)
            .current_dir(dir.path());
        assert_bad_input(c, &format!("{flags:?}"), needle);
    }
}

#[test]
fn queue_tls_files_come_from_flags_or_the_environment_and_are_checked_first() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("studio-ca.pem").display().to_string();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (&["--tls-cert", "node.pem"], &[], "needs its key"),
        (
            &[],
            &[("T2V_QUEUE_TLS_KEY", "node-key.pem")],
            "needs its certificate",
        ),
        (&["--tls-ca", &missing], &[], "TLS CA file"),
        (&[], &[("T2V_QUEUE_TLS_CA", &missing)], "TLS CA file"),
    ];
    for (command, flags) in [
        ("worker", &[][..]),
        ("generate", &["--prompt", "a red ball"][..]),
    ] {
        for (tls, env, needle) in cases {
            let mut c = t2v(dir.path());
            // Port 9 (discard): nothing listens; the files are checked before connecting.
            c.args([command, "--queue", "nats://127.0.0.1:9"])
                .args(flags)
                .args(tls)
                .envs(env.iter().copied())
                .current_dir(dir.path());
            let what = format!("{command} {tls:?} {env:?}");
            let e = assert_bad_input(c, &what, needle);
            if needle == "TLS CA file" {
                assert!(e.contains("studio-ca.pem"), "{e}");
            }
        }
    }
}

#[test]
fn generate_on_a_queue_refuses_what_a_worker_cannot_take() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("some.safetensors");
    std::fs::write(&file, b"x").unwrap();
    let file = file.display().to_string();
    let cases: [(&[&str], &str); 9] = [
        (&["--model", &file], "name the model by --model-id"),
        (&["--init-latents", &file], "--init-latents cannot be sent"),
        (&["--lora", &file], "--lora cannot be sent"),
        (&["--upscale", "2x"], "--upscale cannot be sent"),
        (&["--fast-decoder", &file], "--fast-decoder cannot be sent"),
        (
            &["--preview", "p.gif", "--preview-every", "2"],
            "--preview-every cannot be used",
        ),
        (&["--vram", "8"], "--vram cannot be used with --queue"),
        (&["--device", "cpu"], "--device cannot be used with --queue"),
        (
            &["--low-memory"],
            "--low-memory cannot be used with --queue",
        ),
    ];
    for (flags, needle) in cases {
        let mut c = t2v(dir.path());
        // Port 9 (discard): nothing listens, so reaching the connection would fail otherwise.
        c.args([
            "generate",
            "--queue",
            "nats://127.0.0.1:9",
            "--prompt",
            "a red ball",
        ])
        .args(flags)
        .current_dir(dir.path());
        assert_bad_input(c, &format!("{flags:?}"), needle);
    }
}

#[test]
fn bench_refuses_an_unknown_stage_and_runs_the_ones_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = t2v(&dir.path().join("cache"));
    c.args(["bench", "--stages", "transformer,warp-drive"]);
    let o = run(c);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--stages: unknown stage `warp-drive`: use text, transformer, attention, vae, generation, upscale"), "{err}");

    let json = dir.path().join("bench.json");
    let mut c = t2v(&dir.path().join("cache"));
    c.args([
        "bench",
        "--device",
        "cpu",
        "--stages",
        "attention",
        "--size",
        "64x32x5",
        "--repeats",
        "1",
        "--json",
    ]);
    c.arg(&json);
    let o = run(c);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let stages: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["self-attention, one block", "self-attention, chunked"]
    );
}

#[test]
fn cache_commands_list_show_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    assert!(run(tiny_generate(&cache, dir.path(), &[])).status.success());
    let mut c = t2v(&cache);
    c.args(["cache", "path"]);
    assert_eq!(
        String::from_utf8_lossy(&run(c).stdout).trim(),
        cache.display().to_string()
    );
    let mut c = t2v(&cache);
    c.args(["cache", "list"]);
    let list = String::from_utf8_lossy(&run(c).stdout).to_string();
    assert!(
        list.contains("a red ball") && list.contains("1 clips"),
        "{list}"
    );
    let key = list.split_whitespace().next().unwrap().to_string();
    let mut c = t2v(&cache);
    c.args(["cache", "show", &key[..8]]);
    let o = run(c);
    let shown = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        shown.contains("\"prompt\": \"a red ball\"") && shown.contains("checksums match"),
        "{shown}"
    );
    let mut c = t2v(&cache);
    c.args(["cache", "show", "ffffffff"]);
    assert_eq!(run(c).status.code(), Some(2));
    let mut c = t2v(&cache);
    c.args(["cache", "clear"]);
    assert!(String::from_utf8_lossy(&run(c).stdout).contains("removed 1 clips"));
}

#[test]
fn info_reports_devices_and_the_model_layout() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = t2v(dir.path());
    c.args(["info", "--model"])
        .arg(fixtures().join("tiny-original"));
    let o = run(c);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", stderr(&o));
    for expected in [
        "cpu: available",
        "transformer:",
        "Original names",
        "stored as: f16 100% of",
        "text encoder (umT5):",
        "fit together: yes",
    ] {
        assert!(out.contains(expected), "no `{expected}` in\n{out}");
    }
}

/// GGUF and fp8 components: `t2v info` names the storage format it detected.
#[test]
fn info_reports_gguf_and_fp8_storage() {
    let dir = tempfile::tempdir().unwrap();
    let models = fixtures();
    let mut c = t2v(dir.path());
    c.args(["info", "--model"])
        .arg(fixtures().join("tiny-original"))
        .arg("--transformer")
        .arg(models.join("gguf/tiny-dit-Q8_0.gguf"))
        .arg("--text-encoder")
        .arg(models.join("fp8/tiny-umt5-fp8-scaled.safetensors"));
    let o = run(c);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", stderr(&o));
    for expected in [
        "stored as: F16 50%, Q8_0 25%, F32 24% of",
        "F32 ",
        "KiB, decoded per layer",
        "stored as: bf16 70%, f8e4m3 (scaled) 29% of",
        "fit together: yes",
    ] {
        assert!(out.contains(expected), "no `{expected}` in\n{out}");
    }
}

#[cfg(unix)]
fn send_signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn ctrl_c_cancels_with_exit_130_and_leaves_the_cache_clean() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let mut c = tiny_generate(&cache, dir.path(), &strings(&["--steps", "1000"]));
    c.stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Plain (non-terminal) progress prints a line per change: wait until denoising runs.
    for line in lines.by_ref() {
        if line.unwrap().starts_with("denoising") {
            break;
        }
    }
    send_signal(&child, "INT");
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("cancelled")), "{rest:?}");
    let clips = std::fs::read_dir(cache.join("clips")).unwrap().count();
    assert_eq!(clips, 0, "a cancelled run cached nothing");
}

/// `--progress json` on stdout, read line by line as the run goes.
#[cfg(unix)]
fn json_progress_lines(child: &mut std::process::Child) -> impl Iterator<Item = serde_json::Value> {
    BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("every stdout line is JSON"))
}

/// Regression: SIGTERM (how render farms cancel a task) killed `t2v` outright; it is now a
/// Ctrl-C: the job stops, nothing is cached, and no frame of the unfinished clip is left.
#[cfg(unix)]
#[test]
fn sigterm_cancels_like_ctrl_c_and_leaves_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("out");
    let mut c = tiny_generate(
        &cache,
        &out,
        &strings(&["--steps", "1000", "--frames", "9", "--progress", "json"]),
    );
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut events = json_progress_lines(&mut child);
    // Wait until denoising runs.
    for event in events.by_ref() {
        if event["stage"].get("denoising").is_some() {
            break;
        }
    }
    send_signal(&child, "TERM");
    let last = events.last();
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(err.contains("cancelled;"), "{err}");
    assert!(err.contains("the clip cache is unchanged"), "{err}");
    assert_eq!(last.unwrap()["stage"], "cancelled");
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "partial output left: {left:?}");
    assert_eq!(std::fs::read_dir(cache.join("clips")).unwrap().count(), 0);
}

#[test]
fn progress_json_prints_one_line_per_step_and_a_final_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(tiny_generate(
        &dir.path().join("cache"),
        dir.path(),
        &strings(&["--steps", "3", "--progress", "json"]),
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is JSON"))
        .collect();
    let steps: Vec<u64> = events
        .iter()
        .filter_map(|e| e["stage"]["denoising"]["step"].as_u64())
        .collect();
    assert_eq!(steps, vec![0, 1, 2, 3], "{events:?}");
    for e in &events {
        let fraction = e["fraction"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&fraction), "{e}");
        assert!(e["steps_done"].is_u64() && e["frames_done"].is_u64(), "{e}");
    }
    let last = events.last().unwrap();
    assert_eq!(last["stage"], "done");
    assert_eq!(last["fraction"], 1.0);
    assert_eq!(last["frames_done"], 5);
    // The bar's lines are not mixed in: stderr has no stage lines.
    assert!(!stderr(&o).contains("denoising"), "{}", stderr(&o));
}

/// Regression: a stage shorter than the 100 ms poll (a 1-step run on the tiny model) used to
/// be missing from the farm's status lines (CI saw no `openjd_status: denoising`).
#[test]
fn progress_openjd_names_every_stage_in_order_even_when_it_is_brief() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(tiny_generate(
        &dir.path().join("cache"),
        dir.path(),
        &strings(&["--steps", "1", "--frames", "1", "--progress", "openjd"]),
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let stages: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("openjd_status: "))
        .collect();
    let wanted = ["denoising", "decoding", "done"];
    let found: Vec<&str> = stages
        .iter()
        .copied()
        .filter(|s| wanted.contains(s))
        .collect();
    assert_eq!(found, wanted, "{stdout}");
    let percents: Vec<u32> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("openjd_progress: "))
        .map(|p| p.parse().expect("a whole percent"))
        .collect();
    assert!(percents.windows(2).all(|w| w[0] < w[1]), "{percents:?}");
    assert_eq!(percents.last(), Some(&100), "{stdout}");
}

#[test]
fn without_a_model_and_without_a_trained_demo_model_the_message_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("no-demo-here");
    std::fs::create_dir_all(&empty).unwrap();
    let mut c = t2v(&tmp.path().join("cache"));
    c.env("T2V_DEMO_MODEL", &empty)
        .args(["generate", "--prompt", "a red circle moves left"]);
    c.arg("--output").arg(tmp.path().join("f.%04d.png"));
    let o = run(c);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("built-in demo model is missing") && e.contains("--model"),
        "{e}"
    );
}

/// Copies the tiny model into `dir` with a `demo.json`, as `t2v-train-demo --out dir` leaves it.
fn demo_model_folder(dir: &Path, settings: &str) {
    let src = fixtures().join("tiny-diffusers");
    for entry in walk(&src) {
        let to = dir.join(entry.strip_prefix(&src).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &to).unwrap();
    }
    std::fs::write(dir.join("demo.json"), settings).unwrap();
}

/// The PNG files in `dir`, sorted (the frames, without the metadata file beside them).
fn pngs_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut frames: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    frames.sort();
    frames
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Regression: `--model` naming a demo model folder (its own training's output) ran at Wan2.2's
/// defaults, 832x480 and 81 frames, which took many minutes on the CPU for a model trained at
/// 256x160; the flags left out now take the folder's `demo.json`.
#[test]
fn a_demo_model_folder_given_as_model_uses_its_own_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("my-demo");
    demo_model_folder(
        &model,
        r#"{"width":64,"height":32,"frames":5,"fps":16.0,"steps":2,"guidance":4.0,"shift":3.0,"sampler":"unipc","negative_prompt":""}"#,
    );
    let out = tmp.path().join("out");
    let mut c = t2v(&tmp.path().join("cache"));
    c.args(["generate", "--prompt", "a red circle moves left", "--model"])
        .arg(&model)
        .arg("--output")
        .arg(out.join("f.%04d.png"));
    let o = run(c);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains("is a demo model") && e.contains("64x32, 5 frames, 2 steps"),
        "{e}"
    );
    let frames = pngs_in(&out);
    assert_eq!(frames.len(), 5, "{frames:?}");
    let first = image::open(&frames[0]).unwrap();
    assert_eq!((first.width(), first.height()), (64, 32));

    // A flag given still wins over the folder's settings.
    let out3 = tmp.path().join("out3");
    let mut c = t2v(&tmp.path().join("cache"));
    c.args([
        "generate",
        "--prompt",
        "a red circle moves left",
        "--frames",
        "9",
        "--model",
    ])
    .arg(&model)
    .arg("--output")
    .arg(out3.join("f.%04d.png"));
    let o = run(c);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(pngs_in(&out3).len(), 9);

    // A settings file that can't be read is an error that names it, not a silent 480P run.
    std::fs::write(model.join("demo.json"), "{ not json").unwrap();
    let mut c = t2v(&tmp.path().join("cache"));
    c.args(["generate", "--prompt", "a red circle moves left", "--model"])
        .arg(&model)
        .arg("--output")
        .arg(tmp.path().join("bad").join("f.%04d.png"));
    let o = run(c);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("demo.json") && e.contains("demo model"), "{e}");
}

/// A GGUF transformer and an fp8 text encoder given as files: `t2v generate` writes the clip,
/// within a few 8-bit levels of the one the dense files give.
#[test]
fn generate_with_gguf_and_fp8_files() {
    let dir = tempfile::tempdir().unwrap();
    let dense_out = dir.path().join("dense");
    let quant_out = dir.path().join("quant");
    for out in [&dense_out, &quant_out] {
        std::fs::create_dir_all(out).unwrap();
    }
    let o = run(tiny_generate(&dir.path().join("c1"), &dense_out, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let files = |p: &str| fixtures().join(p).display().to_string();
    let extra = [
        "--transformer".to_string(),
        files("gguf/tiny-dit-Q8_0.gguf"),
        "--text-encoder".to_string(),
        files("fp8/tiny-umt5-fp8-scaled.safetensors"),
    ];
    let o = run(tiny_generate(&dir.path().join("c2"), &quant_out, &extra));
    assert!(o.status.success(), "{}", stderr(&o));
    for i in 0..5 {
        let name = format!("f.{i:04}.png");
        let a = image::open(dense_out.join(&name)).unwrap().to_rgb8();
        let b = image::open(quant_out.join(&name)).unwrap().to_rgb8();
        let diffs: Vec<u8> = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| x.abs_diff(*y))
            .collect();
        let max = *diffs.iter().max().unwrap();
        let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
        println!("{name}: max {max}, mean {mean:.2} levels apart");
        // Measured on this random tiny model (2 steps): max 13, mean 1.51 levels at most.
        assert!(max <= 20 && mean <= 2.5, "{name}: max {max}, mean {mean}");
    }
}

#[test]
fn preview_every_rewrites_the_preview_while_denoising() {
    let dir = tempfile::tempdir().unwrap();
    let gif = dir.path().join("live/p.gif").display().to_string();
    let extra = strings(&["--preview", &gif, "--preview-every", "2", "--steps", "20"]);
    let o = run(tiny_generate(&dir.path().join("cache"), dir.path(), &extra));
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let steps: Vec<usize> = err
        .lines()
        .filter_map(|l| l.split("preview after step ").nth(1))
        .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(!steps.is_empty(), "no preview was written: {err}");
    assert!(
        steps.iter().all(|s| s % 2 == 0 && *s < 20) && steps.windows(2).all(|w| w[0] < w[1]),
        "{steps:?}"
    );
    // At the end the preview is the decoded clip.
    let decoder = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(&gif).unwrap(),
    ))
    .unwrap();
    use image::AnimationDecoder;
    assert_eq!(decoder.into_frames().count(), 5);

    for (bad, why) in [
        (strings(&["--preview", &gif, "--preview-every", "0"]), "0"),
        (strings(&["--preview-every", "2"]), "--preview"),
    ] {
        let o = run(tiny_generate(&dir.path().join("cache"), dir.path(), &bad));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
    }
}

#[test]
fn lora_flags_change_the_frames_and_a_bad_lora_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let lora = |name: &str| fixtures().join("lora").join(name).display().to_string();
    let first_frame = |out: &str, extra: &[String]| {
        let out = dir.path().join(out);
        let o = run(tiny_generate(&cache, &out, extra));
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        std::fs::read(out.join("f.0001.png")).unwrap()
    };
    let plain = first_frame("plain", &[]);
    // Repeatable; the strength defaults to 1.
    let styled = first_frame(
        "styled",
        &[
            "--lora".into(),
            lora("kohya.safetensors"),
            "--lora".into(),
            format!("{}:0.5", lora("wan.safetensors")),
        ],
    );
    assert_ne!(plain, styled, "the LoRAs change the frames");

    let wrong = dir.path().join("wrong.safetensors");
    candle_core::Tensor::ones(
        (4, 3072),
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .unwrap()
    .save_safetensors("transformer.blocks.0.attn1.to_q.lora_A.weight", &wrong)
    .unwrap();
    let cases = [
        (
            "/no/such/lora.safetensors".to_string(),
            "LoRA file not found",
        ),
        (
            wrong.display().to_string(),
            "`transformer.blocks.0.attn1.to_q.lora_A.weight` has no partner",
        ),
        (
            format!("{}:1.2.3", lora("kohya.safetensors")),
            "strength `1.2.3` is not a number",
        ),
    ];
    for (value, expected) in cases {
        let o = run(tiny_generate(
            &cache,
            &dir.path().join("bad"),
            &["--lora".into(), value.clone()],
        ));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{value}: {err}");
        assert!(
            err.contains(expected),
            "{value}: `{err}` lacks `{expected}`"
        );
        assert!(!err.contains("panicked"), "{value}: {err}");
    }
}

fn upscaler_fixture(name: &str) -> String {
    fixtures().join("upscale").join(name).display().to_string()
}

/// `--upscale` gives PNGs, `--save-frames` and the metadata at the upscaled size.
#[test]
fn generate_upscales_the_frames_it_writes_and_saves() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let saved = dir.path().join("frames.safetensors");
    let extra = [
        "--upscale".to_string(),
        "720p".into(),
        "--upscaler".into(),
        upscaler_fixture("compact_x4.pth"),
        "--save-frames".into(),
        saved.display().to_string(),
    ];
    let o = run(tiny_generate(&dir.path().join("cache"), &out, &extra));
    assert!(o.status.success(), "{}", stderr(&o));
    let png = image::open(out.join("f.0000.png")).unwrap();
    assert_eq!((png.width(), png.height()), (720, 720));
    let frames = candle_core::safetensors::load(&saved, &candle_core::Device::Cpu)
        .unwrap()
        .remove("frames")
        .unwrap();
    assert_eq!(frames.dims(), &[5, 720, 720, 3]);
    let metadata: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("f.json")).unwrap()).unwrap();
    assert_eq!(metadata["upscale"]["target"], "720p");
    assert_eq!(metadata["upscale"]["width"], 720);
    assert_eq!(metadata["width"], 64);

    // 1.5x through the x2 network.
    let extra = [
        "--upscale".to_string(),
        "1.5x".into(),
        "--upscaler".into(),
        upscaler_fixture("compact_x2.safetensors"),
        "--frames".into(),
        "1".into(),
    ];
    let o = run(tiny_generate(&dir.path().join("cache"), &out, &extra));
    assert!(o.status.success(), "{}", stderr(&o));
    let png = image::open(out.join("f.0000.png")).unwrap();
    assert_eq!((png.width(), png.height()), (96, 96));
}

#[test]
fn bad_upscale_flags_exit_2_and_say_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let net = upscaler_fixture("rrdb_x4.pth");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            strings(&["--upscale", "3x", "--upscaler", &net]),
            "choose one of 1.5x, 2x, 4x, 720p, 1080p",
        ),
        (strings(&["--upscale", "2x"]), "--upscaler"),
        (strings(&["--upscaler", &net]), "--upscale"),
        (
            strings(&["--upscale", "2x", "--upscaler", "/no/such/net.pth"]),
            "--upscaler: upscaler /no/such/net.pth: no such file",
        ),
        (
            strings(&[
                "--upscale",
                "4x",
                "--upscaler",
                &net,
                "--width",
                "1280",
                "--height",
                "704",
            ]),
            "gives 5120x2816, more than 4096 pixels a side",
        ),
    ];
    for (extra, expected) in cases {
        let o = run(tiny_generate(
            &dir.path().join("cache"),
            &dir.path().join("out"),
            &extra,
        ));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(
            err.contains(expected),
            "{extra:?}: `{err}` lacks `{expected}`"
        );
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
    }
}

#[test]
fn vram_prints_the_plan_and_the_clip_is_the_same_under_any_budget() {
    let cache = tempfile::tempdir().unwrap();
    let a = tempfile::tempdir().unwrap();
    let o = run(tiny_generate(
        cache.path(),
        a.path(),
        &strings(&["--vram", "8"]),
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("memory budget 8: planned peak: "),
        "{}",
        stderr(&o)
    );
    // The budget is left out of the clip key: another budget is a cache hit of the same clip.
    let b = tempfile::tempdir().unwrap();
    let o = run(tiny_generate(
        cache.path(),
        b.path(),
        &strings(&["--vram", "16"]),
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    for i in 0..5 {
        let name = format!("f.{i:04}.png");
        assert_eq!(
            std::fs::read(a.path().join(&name)).unwrap(),
            std::fs::read(b.path().join(&name)).unwrap()
        );
    }
    let o = run(tiny_generate(
        cache.path(),
        b.path(),
        &strings(&["--vram", "huge"]),
    ));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn decoder_fast_uses_the_tiny_decoder_and_says_when_there_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let tiny = fixtures()
        .join("taehv/taehv-tiny.safetensors")
        .display()
        .to_string();
    let full_out = dir.path().join("full");
    let fast_out = dir.path().join("fast");
    assert!(run(tiny_generate(&cache, &full_out, &[])).status.success());
    let extra = strings(&["--decoder", "fast", "--fast-decoder", &tiny]);
    let o = run(tiny_generate(&cache, &fast_out, &extra));
    assert!(o.status.success(), "{}", stderr(&o));
    let frame = |dir: &Path| image::open(dir.join("f.0002.png")).unwrap().to_rgb8();
    assert_eq!(frame(&fast_out).dimensions(), (64, 64));
    assert_ne!(
        frame(&fast_out),
        frame(&full_out),
        "another decoder, another clip"
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fast_out.join("f.json")).unwrap()).unwrap();
    assert_eq!(meta["from_cache"], false);

    let o = run(tiny_generate(
        &cache,
        &fast_out,
        &strings(&["--decoder", "fast"]),
    ));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("taew2_2"), "{}", stderr(&o));
    let o = run(tiny_generate(
        &cache,
        &fast_out,
        &strings(&["--decoder", "tiny"]),
    ));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("`full` or `fast`"), "{}", stderr(&o));
}

#[test]
fn sampler_dmd_runs_fastwan_s_three_steps_without_guidance() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dmd");
    let mut c = t2v(dir.path());
    c.args(["generate", "--sampler", "dmd", "--prompt", "a red ball"])
        .arg("--model")
        .arg(fixtures().join("tiny-diffusers"))
        .args(["--width", "64", "--height", "64", "--frames", "5", "-q"])
        .arg("--output")
        .arg(out.join("f.%04d.png"));
    let o = run(c);
    assert!(o.status.success(), "{}", stderr(&o));
    let metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("f.json")).unwrap()).unwrap();
    assert_eq!(metadata["sampler"], "dmd");
    assert_eq!(
        (
            &metadata["steps"],
            &metadata["guidance"],
            &metadata["shift"]
        ),
        (&3.into(), &1.0.into(), &8.0.into()),
        "FastWan's steps, guidance off and its shift: {metadata}"
    );
    assert_eq!(metadata["frames"], 5);
}
