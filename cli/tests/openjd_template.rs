//! The render-farm template (installers/farm/t2v-clip.openjd.yaml) run offline by `openjd run`
//! (PyPI `openjd-cli`): the Generate step writes the clip into a shared cache and reports
//! `openjd_progress:`, then both Comp chunks find it there. Skipped when `openjd` is not
//! installed, except under CI (`$CI` set), where that fails. With `QueueUrl`, against a real
//! queue server and a `t2v worker`: the pool makes the clip once.

use std::path::{Path, PathBuf};
use std::process::Command;

fn find_openjd() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OPENJD").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    // Beside the queue server of the same venv (.ci/run installs both).
    if let Some(nats) = std::env::var_os("NATS_SERVER") {
        dirs.extend(PathBuf::from(nats).parent().map(PathBuf::from));
    }
    dirs.into_iter()
        .map(|d| d.join("openjd"))
        .find(|p| p.is_file())
}

/// `openjd`, or `None` (outside CI) to skip.
fn openjd_for_test() -> Option<PathBuf> {
    let openjd = find_openjd();
    if openjd.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs openjd: pip install openjd-cli (or set $OPENJD)"
        );
        eprintln!("skipped: no openjd (pip install openjd-cli)");
    }
    openjd
}

/// A job's shared folders: the clip cache and the output folder.
struct Shared {
    _dir: tempfile::TempDir,
    cache: PathBuf,
    out: PathBuf,
}

impl Shared {
    fn new() -> Shared {
        let dir = tempfile::tempdir().unwrap();
        let (cache, out) = (dir.path().join("cache"), dir.path().join("out"));
        std::fs::create_dir_all(&cache).unwrap();
        Shared {
            _dir: dir,
            cache,
            out,
        }
    }

    /// `openjd run` of the template's Comp step and its dependencies, with `params` besides the
    /// shared folders and `t2v`; its success and its log.
    fn run(&self, openjd: &Path, params: &[(&str, &str)], env: &[(&str, &str)]) -> (bool, String) {
        let template = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../installers/farm/t2v-clip.openjd.yaml");
        let mut c = Command::new(openjd);
        c.arg("run")
            .arg(&template)
            .args(["--step", "Comp", "--run-dependencies"]);
        let folders = [
            ("T2V", env!("CARGO_BIN_EXE_t2v")),
            ("CacheDir", self.cache.to_str().unwrap()),
            ("OutDir", self.out.to_str().unwrap()),
        ];
        for (k, v) in folders.iter().chain(params) {
            c.arg("-p").arg(format!("{k}={v}"));
        }
        let output = c.envs(env.iter().copied()).output().expect("openjd runs");
        let log = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), log)
    }
}

#[test]
fn the_farm_template_generates_once_into_the_shared_cache_and_the_comp_reads_it() {
    let Some(openjd) = openjd_for_test() else {
        return;
    };
    let shared = Shared::new();
    let (cache, out) = (&shared.cache, &shared.out);
    let (ok, log) = shared.run(
        &openjd,
        &[
            (
                "Prompt",
                "a red circle moves to the right on a black background",
            ),
            ("Frames", "5"),
            ("Steps", "2"),
        ],
        &[("T2V_DEVICE", "cpu")],
    );
    assert!(ok, "{log}");
    assert!(
        log.contains("openjd_progress: 100"),
        "progress reaches the farm: {log}"
    );
    assert!(log.contains("openjd_status: denoising"), "{log}");
    for i in 0..5 {
        assert!(
            out.join(format!("clip/frame.{i:04}.png")).is_file(),
            "frame {i}"
        );
    }
    // Each comp chunk read the clip from the shared cache: generated once.
    for chunk in 1..=2 {
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("comp-{chunk}/frame.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(meta["from_cache"], true, "chunk {chunk}");
        assert!(out.join(format!("comp-{chunk}/preview.gif")).is_file());
        assert_eq!(
            std::fs::read(out.join(format!("comp-{chunk}/frame.0004.png"))).unwrap(),
            std::fs::read(out.join("clip/frame.0004.png")).unwrap()
        );
    }
    let clips = std::fs::read_dir(cache.join("clips")).unwrap().count();
    assert_eq!(clips, 1, "one clip in the shared cache");
}

#[test]
fn with_a_queue_url_the_farm_template_has_the_pool_make_the_clip_once() {
    let Some(openjd) = openjd_for_test() else {
        return;
    };
    let Some(server) = t2v_queue::local_server::LocalServer::for_test() else {
        return;
    };
    let shared = Shared::new();
    let (cache, out) = (&shared.cache, &shared.out);
    let worker_log = out.with_file_name("worker.log");
    let mut worker = Command::new(env!("CARGO_BIN_EXE_t2v"))
        .args(["worker", "--queue", &server.url(), "--device", "cpu"])
        .arg("--cache-dir")
        .arg(cache)
        .stderr(std::fs::File::create(&worker_log).unwrap())
        .spawn()
        .unwrap();
    let client =
        t2v_queue::QueueClient::connect(t2v_queue::QueueConfig::new(server.url())).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while client.model("demo").is_err() {
        assert!(std::time::Instant::now() < deadline, "the worker registers");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (ok, log) = shared.run(
        &openjd,
        &[
            ("Prompt", "a blue square moves up on a white background"),
            ("Frames", "5"),
            ("Steps", "3"),
            ("QueueUrl", &server.url()),
        ],
        &[],
    );
    let _ = worker.kill();
    let _ = worker.wait();
    let worker_log = std::fs::read_to_string(&worker_log).unwrap();
    assert!(ok, "{log}\n{worker_log}");
    assert!(log.contains("openjd_progress: 100"), "{log}");
    assert_eq!(
        worker_log.matches(" attempt ").count(),
        1,
        "the pool made the clip once: {worker_log}"
    );
    assert_eq!(client.records().unwrap().len(), 1, "one job was queued");
    for chunk in 1..=2 {
        assert_eq!(
            std::fs::read(out.join(format!("comp-{chunk}/frame.0004.png"))).unwrap(),
            std::fs::read(out.join("clip/frame.0004.png")).unwrap(),
            "chunk {chunk} has the pool's clip"
        );
    }
}
