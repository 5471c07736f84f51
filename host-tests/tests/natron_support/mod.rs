//! For the real-host suite (natron_host.rs): NatronRenderer runs (a private HOME, our bundle on
//! `OFX_PLUGIN_PATH`, the plugin's log and clip cache per run), the driver's jobs and reports
//! (`host-tests/natron/driver.py`), the `t2v` CLI's reference clips, and the image files both
//! write (PFM, PNG, safetensors).
#![allow(dead_code)]

pub mod images;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const ID: &str = "org.texttovideo.TextToVideo";
/// The demo model's own settings (demo/model/demo.json), which the node uses with an empty
/// Model Path.
pub const WIDTH: usize = 256;
pub const HEIGHT: usize = 160;
pub const FRAMES: usize = 17;
const DEMO_STEPS: usize = 16;
const DEMO_GUIDANCE: f64 = 4.0;
const DEMO_SHIFT: f64 = 3.0;
/// Longest a NatronRenderer run may take (a demo clip is generated in seconds).
const RUN_LIMIT: Duration = Duration::from_secs(300);

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where the suite's runs keep their files (left in place for inspection).
pub fn suite_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("natron-host");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        eprintln!("natron suite files: {}", dir.display());
        dir
    })
}

/// A fresh folder for one test.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = suite_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The clip cache the tests share, so that a clip is generated once per suite (the farm test
/// uses its own, to see a generation happen).
pub fn shared_cache() -> PathBuf {
    suite_dir().join("clip-cache")
}

/// The folder holding our bundle, built by plugin/build-bundle.sh.
pub fn bundle_folder() -> PathBuf {
    let bundle = crate::t2v_common::built_bundle();
    bundle.parent().unwrap().to_path_buf()
}

/// The bundle's demo model folder: the model an empty Model Path uses.
pub fn demo_model() -> PathBuf {
    crate::t2v_common::built_bundle().join("Contents/Resources/demo-model")
}

/// The crate that builds the `t2v` command line. The one place to change when it moves.
const T2V_CLI_PACKAGE: &str = "t2v-cli";

/// The `t2v` binary, built into the bundle's target folder (not ours: the `cargo test` running
/// us holds its lock).
pub fn t2v_cli() -> PathBuf {
    static CLI: OnceLock<PathBuf> = OnceLock::new();
    CLI.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target"))
            .join("ofx-fixtures");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "-p", T2V_CLI_PACKAGE, "--bin", "t2v"])
            .arg("--manifest-path")
            .arg(workspace().join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the t2v CLI failed");
        target.join("release/t2v")
    })
    .clone()
}

/// A clip made by `t2v generate` with the demo model's settings.
pub struct CliClip {
    /// `--save-frames`: `[frame][row from the top][x][rgb]`, flattened, in [0, 1].
    pub floats: Vec<f32>,
    /// The PNG frames (8-bit sRGB), top row first.
    pub pngs: Vec<images::Image>,
}

impl CliClip {
    /// Frame `f`'s float RGB at (x, y) counted from the top.
    pub fn float(&self, f: usize, x: usize, y: usize) -> [f32; 3] {
        let i = ((f * HEIGHT + y) * WIDTH + x) * 3;
        [self.floats[i], self.floats[i + 1], self.floats[i + 2]]
    }
}

/// `t2v generate` with the demo model and its own settings (what the node uses with an empty
/// Model Path), `--no-cache`, plus `extra` arguments (e.g. `--image FILE`). Memoised.
pub fn cli_clip(prompt: &str, seed: u64, extra: &[&str]) -> std::sync::Arc<CliClip> {
    static CLIPS: OnceLock<Mutex<HashMap<String, std::sync::Arc<CliClip>>>> = OnceLock::new();
    let key = format!("{prompt}\n{seed}\n{extra:?}");
    let clips = CLIPS.get_or_init(Default::default);
    if let Some(clip) = clips.lock().unwrap().get(&key) {
        return clip.clone();
    }
    let dir = suite_dir().join(format!("cli-{}", clips.lock().unwrap().len()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(t2v_cli())
        .arg("generate")
        .arg("--model")
        .arg(demo_model())
        .args(["--prompt", prompt, "--seed", &seed.to_string()])
        .args([
            "--width",
            &WIDTH.to_string(),
            "--height",
            &HEIGHT.to_string(),
        ])
        .args([
            "--frames",
            &FRAMES.to_string(),
            "--steps",
            &DEMO_STEPS.to_string(),
        ])
        .args(["--guidance", &DEMO_GUIDANCE.to_string()])
        .args(["--shift", &DEMO_SHIFT.to_string()])
        .args([
            "--negative-prompt",
            "",
            "--device",
            "cpu",
            "--no-cache",
            "-q",
        ])
        .args(extra)
        .arg("--save-frames")
        .arg(dir.join("frames.safetensors"))
        .arg("--output")
        .arg(dir.join("frame.%04d.png"))
        .output()
        .expect("t2v runs");
    assert!(
        out.status.success(),
        "t2v generate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let floats = images::read_safetensors_f32(&dir.join("frames.safetensors"), "frames");
    assert_eq!(floats.len(), FRAMES * HEIGHT * WIDTH * 3);
    let pngs = (0..FRAMES)
        .map(|f| images::read_png(&dir.join(format!("frame.{f:04}.png"))))
        .collect();
    let clip = std::sync::Arc::new(CliClip { floats, pngs });
    clips.lock().unwrap().insert(key, clip.clone());
    clip
}

/// One NatronRenderer process: its output (stdout and stderr), exit status and our plugin's log.
pub struct Run {
    pub output: String,
    pub status: ExitStatus,
    pub plugin_log: String,
    pub home: PathBuf,
}

impl Run {
    /// Whether the process ended on its own (an exit code), not killed by a signal.
    pub fn exited(&self) -> bool {
        self.status.code().is_some()
    }
}

/// Where NatronRenderer and its IO plugins are: `$NATRON_RENDERER`, `$NATRON_PLUGINS` (one
/// folder or a `:`-separated list: the IO bundle for the writers, openfx-misc for generators).
fn natron() -> (PathBuf, String) {
    let hint = "set NATRON_RENDERER to a NatronRenderer 2.5 binary and NATRON_PLUGINS to the \
                folder(s) holding its IO and Misc OFX bundles (README: the real-host suite)";
    let renderer = std::env::var_os("NATRON_RENDERER").expect(hint);
    let plugins = std::env::var("NATRON_PLUGINS").expect(hint);
    (PathBuf::from(renderer), plugins)
}

/// Runs NatronRenderer with `args` in `dir` (its working folder), a private HOME in
/// `dir/home`, our bundle first on `OFX_PLUGIN_PATH`, the plugin's log at `dir/plugin.log`
/// (appended to: several runs may share a folder) and its clip cache at `cache`.
pub fn natron_run(dir: &Path, cache: &Path, args: &[&OsStr]) -> Run {
    natron_run_with(dir, cache, args, &[])
}

fn natron_run_with(dir: &Path, cache: &Path, args: &[&OsStr], envs: &[(&str, &OsStr)]) -> Run {
    let (renderer, plugins) = natron();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let log = dir.join("plugin.log");
    let log_before = std::fs::read_to_string(&log).unwrap_or_default().len();
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let output_file = dir.join(format!(
        "natron-{}.log",
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let ofx_path = format!("{}:{plugins}", bundle_folder().display());
    let mut child = Command::new(&renderer)
        .args(args)
        .current_dir(dir)
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("QT_QPA_PLATFORM", "offscreen")
        .env("PYTHONPATH", "/usr/lib/python3/dist-packages")
        .env("OFX_PLUGIN_PATH", ofx_path)
        .env("T2V_LOG", &log)
        .env("T2V_CACHE_DIR", cache)
        .env("T2V_DEVICE", "cpu")
        .env_remove("T2V_DEMO_MODEL")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&output_file).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", renderer.display()));
    // stderr is drained on a thread, so that a full pipe never blocks NatronRenderer.
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            panic!(
                "NatronRenderer {args:?} ran past {RUN_LIMIT:?}; its output: {}",
                output_file.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = std::fs::read_to_string(&output_file).unwrap_or_default();
    output.push_str(&reader.join().unwrap());
    std::fs::write(&output_file, &output).unwrap();
    let plugin_log = std::fs::read_to_string(&log).unwrap_or_default()[log_before..].to_string();
    Run {
        output,
        status,
        plugin_log,
        home,
    }
}

/// Runs host-tests/natron/driver.py on `job` (its `report` is set here) and returns the run and
/// the driver's report. The job's own failure (a Python exception) fails the test with its
/// traceback and NatronRenderer's output.
pub fn drive(dir: &Path, cache: &Path, mut job: Value) -> (Run, Value) {
    let report_file = dir.join("report.json");
    let _ = std::fs::remove_file(&report_file);
    job["report"] = json!(report_file);
    let job_file = dir.join("job.json");
    std::fs::write(&job_file, serde_json::to_string_pretty(&job).unwrap()).unwrap();
    let driver = workspace().join("host-tests/natron/driver.py");
    let run = natron_run_with(
        dir,
        cache,
        &["-t".as_ref(), driver.as_os_str()],
        &[("T2V_NATRON_JOB", job_file.as_os_str())],
    );
    let report: Value = match std::fs::read_to_string(&report_file) {
        Ok(text) => serde_json::from_str(&text).unwrap(),
        Err(e) => panic!(
            "the driver wrote no report ({e}); NatronRenderer said:\n{}",
            run.output
        ),
    };
    assert!(
        report["done"] == json!(true),
        "the driver failed: {}\nNatronRenderer said:\n{}",
        report["error"].as_str().unwrap_or("?"),
        run.output
    );
    (run, report)
}

/// The renders the driver reported as failed (`[writer, message]`).
pub fn failed_renders(report: &Value) -> Vec<String> {
    report["renders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r[1] != json!("ok"))
        .map(|r| r.to_string())
        .collect()
}

/// Frame file `pattern` (one `###`) at `frame`.
pub fn frame_file(dir: &Path, pattern: &str, frame: i64) -> PathBuf {
    dir.join(pattern.replace("###", &format!("{frame:03}")))
}

/// The generation lines of our log: a clip denoised by the worker (not read from the cache).
pub fn generations(plugin_log: &str) -> usize {
    plugin_log
        .lines()
        .filter(|l| l.contains(":t2v-worker] job ") && l.contains(": done after"))
        .count()
}
