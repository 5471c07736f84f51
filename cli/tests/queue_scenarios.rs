//! The studio queue against a real NATS JetStream server: each test starts its own
//! `nats-server -js` on a free loopback port (see `t2v_queue::local_server`; under CI a missing
//! server fails the test), real `t2v worker` processes serving the built-in demo model on the
//! CPU, and clients in this process or as `t2v generate --queue` processes where a scenario
//! kills one.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use t2v_bridge::{
    ClipCache, Decoder, GenerationParams, ModelSpec, Precision, Request, Sampler, Service,
};
use t2v_queue::local_server::LocalServer;
use t2v_queue::{
    DecoderChoice, JobState, QueueClient, QueueConfig, RemoteJob, RemoteRequest, Timings,
};

/// Short timers so failures are seen within seconds.
const ACK_WAIT_S: &str = "2";
const INTEREST_S: &str = "3";
const MAX_DELIVER: &str = "2";

fn timings() -> Timings {
    Timings {
        ack_wait: Duration::from_secs(2),
        max_deliver: 2,
        interest_ttl: Duration::from_secs(3),
        frames_ttl: Duration::from_secs(600),
        poll: Duration::from_millis(50),
    }
}

fn config(server: &LocalServer) -> QueueConfig {
    let mut c = QueueConfig::new(server.url());
    c.timings = timings();
    c
}

fn client(server: &LocalServer) -> QueueClient {
    QueueClient::connect(config(server)).expect("client connects")
}

/// The demo model at its own size, with few steps and frames.
fn params(prompt: &str, frames: usize, steps: usize, seed: u64) -> GenerationParams {
    GenerationParams {
        prompt: prompt.into(),
        negative_prompt: Some(String::new()),
        width: 256,
        height: 160,
        frames,
        steps,
        guidance: 4.0,
        shift: 3.0,
        sampler: Sampler::UniPc,
        seed,
        step_cache: Default::default(),
        step_cache_method: Default::default(),
    }
}

fn remote(params: GenerationParams) -> RemoteRequest {
    RemoteRequest {
        model_id: "demo".into(),
        params,
        precision: Precision::Auto,
        image: None,
        decoder: Default::default(),
    }
}

/// A `t2v worker` process; killed on drop.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(
        server: &LocalServer,
        cache: &Path,
        extra_env: &[(&str, &str)],
        args: &[&str],
    ) -> Worker {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let log = cache
            .parent()
            .unwrap()
            .join(format!("worker-{}-{n}.log", std::process::id()));
        let mut c = Command::new(env!("CARGO_BIN_EXE_t2v"));
        c.args([
            "worker",
            "--queue",
            &server.url(),
            "--device",
            "cpu",
            "--cache-dir",
        ])
        .arg(cache)
        .args(args)
        .env("T2V_QUEUE_ACK_WAIT_SECS", ACK_WAIT_S)
        .env("T2V_QUEUE_INTEREST_SECS", INTEREST_S)
        .env("T2V_QUEUE_MAX_DELIVER", MAX_DELIVER)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in extra_env {
            c.env(k, v);
        }
        Worker {
            child: c.spawn().expect("t2v worker starts"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Waits until the pool serves the demo model (a worker registered it).
fn wait_for_workers(client: &QueueClient) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.model("demo").is_err() {
        assert!(Instant::now() < deadline, "no worker registered in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The key of the job a client process started, once a worker runs it.
fn running_job(client: &QueueClient) -> String {
    let mut key = None;
    wait_until("the client's job runs", Duration::from_secs(60), || {
        key = client
            .records()
            .unwrap()
            .into_iter()
            .find(|(_, r)| r.state == JobState::Running)
            .map(|(k, _)| k);
        key.is_some()
    });
    key.unwrap()
}

fn wait_clip(job: &RemoteJob) -> Arc<t2v_bridge::Clip> {
    job.wait_timeout(Duration::from_secs(120))
        .expect("the job ends within 2 minutes")
        .expect("the job succeeds")
}

/// A local service with no queue and no cache, and its request for `p` on the demo model.
fn local(p: &GenerationParams, decoder: Decoder) -> (Service, Request) {
    let service = Service::new(t2v_bridge::ServiceConfig {
        device: t2v_bridge::DeviceChoice::Cpu,
        use_disk_cache: false,
        ..Default::default()
    })
    .unwrap();
    let mut request = Request::new(ModelSpec::folder(t2v_demo::model_dir()), p.clone());
    request.precision = Precision::F32;
    request.decoder = decoder;
    (service, request)
}

/// The same clip made by a local service.
fn local_frames(p: &GenerationParams) -> Vec<t2v_bridge::Frame> {
    let (service, request) = local(p, Decoder::Full);
    service
        .submit(request)
        .unwrap()
        .wait()
        .unwrap()
        .frames
        .clone()
}

/// A scenario's pool: its own server, `t2v worker` processes sharing one clip cache, and a
/// client that has seen them register. Dropped in field order: the workers first.
struct Pool {
    workers: Vec<Worker>,
    client: QueueClient,
    server: LocalServer,
    cache: PathBuf,
    dir: tempfile::TempDir,
}

impl Pool {
    /// `None` where no `nats-server` is installed (outside CI).
    fn start(workers: usize, extra_env: &[(&str, &str)]) -> Option<Pool> {
        let server = LocalServer::for_test()?;
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let workers = (0..workers)
            .map(|_| Worker::start(&server, &cache, extra_env, &[]))
            .collect();
        let client = client(&server);
        wait_for_workers(&client);
        Some(Pool {
            workers,
            client,
            server,
            cache,
            dir,
        })
    }

    /// Another worker on the same server and cache, with `t2v worker` flags `args`.
    fn add_worker(&mut self, args: &[&str]) {
        self.workers
            .push(Worker::start(&self.server, &self.cache, &[], args));
    }

    fn logs(&self) -> String {
        self.workers.iter().map(Worker::log).collect()
    }
}

#[test]
fn two_clients_share_one_generation_and_see_frames_before_it_ends() {
    let Some(pool) = Pool::start(1, &[]) else {
        return;
    };
    let (a, b) = (&pool.client, client(&pool.server));
    let p = params(
        "a red circle moves to the right on a black background",
        17,
        4,
        1,
    );
    let job_a = a.submit(&remote(p.clone())).unwrap();
    let job_b = b.submit(&remote(p.clone())).unwrap();
    assert_eq!(job_a.key(), job_b.key(), "identical requests name one clip");
    let mut early_frame = false;
    while !job_a.is_finished() {
        if !job_a.frames_so_far().is_empty() && job_a.state() != JobState::Done {
            early_frame = true;
        }
        job_a.wait_for_change(Duration::from_millis(20));
    }
    let (clip_a, clip_b) = (wait_clip(&job_a), wait_clip(&job_b));
    assert!(
        early_frame,
        "a frame reached the client before the job was done"
    );
    assert_eq!(clip_a.frames.len(), 17);
    assert_eq!(
        clip_a.frames, clip_b.frames,
        "both clients got identical frames"
    );
    let record = a.record(&job_a.key()).unwrap().unwrap();
    assert_eq!((record.state, record.attempt), (JobState::Done, 1));
    assert_eq!(
        pool.logs().matches(" attempt ").count(),
        1,
        "one generation"
    );
    // Committed to the shared clip cache, and equal to what the clients got.
    let cached = ClipCache::open(&pool.cache, u64::MAX).unwrap();
    match cached.load(&job_a.key()) {
        t2v_bridge::Lookup::Hit(hit) => assert_eq!(hit.frames, clip_a.frames),
        _ => panic!("the clip is not in the shared cache"),
    }
}

#[test]
fn a_worker_killed_mid_denoise_is_replaced_and_the_clip_equals_a_local_run() {
    let Some(mut pool) = Pool::start(1, &[]) else {
        return;
    };
    let c = &pool.client;
    let p = params("a blue square moves up on a white background", 5, 40, 7);
    let job = c.submit(&remote(p.clone())).unwrap();
    wait_until("denoising started", Duration::from_secs(60), || {
        job.progress().steps_done >= 2
    });
    assert_eq!(job.attempt(), 1);
    pool.workers[0].kill(); // SIGKILL: no goodbye, no ack.
    pool.add_worker(&[]);
    let clip = wait_clip(&job);
    assert_eq!(
        job.attempt(),
        2,
        "the job was redelivered to the second worker"
    );
    assert_eq!(
        clip.frames,
        local_frames(&p),
        "the clip equals a clean local run"
    );
}

#[test]
fn a_job_survives_a_server_restart() {
    let Some(mut pool) = Pool::start(1, &[]) else {
        return;
    };
    let p = params("a green star grows on a black background", 5, 30, 3);
    let job = pool.client.submit(&remote(p.clone())).unwrap();
    wait_until("denoising started", Duration::from_secs(60), || {
        job.progress().steps_done >= 2
    });
    pool.server
        .restart()
        .expect("the server restarts on its port");
    let clip = wait_clip(&job);
    assert_eq!(clip.frames.len(), 5);
    let record = pool.client.record(&job.key()).unwrap().unwrap();
    assert_eq!(record.state, JobState::Done);
}

#[test]
fn a_job_goes_on_while_one_client_holds_it_and_stops_when_none_does() {
    let Some(pool) = Pool::start(1, &[]) else {
        return;
    };
    let (a, b) = (&pool.client, client(&pool.server));
    let p = params("a purple triangle bounces on a white background", 5, 200, 5);
    let job_a = a.submit(&remote(p.clone())).unwrap();
    let job_b = b.submit(&remote(p.clone())).unwrap();
    wait_until("denoising started", Duration::from_secs(60), || {
        job_b.progress().steps_done >= 2
    });
    job_a.cancel();
    let at_cancel = job_b.progress().steps_done;
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        job_b.state(),
        JobState::Running,
        "one client still wants it"
    );
    assert!(job_b.progress().steps_done > at_cancel, "it went on");
    let key = job_b.key();
    job_b.cancel();
    let cancelled_at = Instant::now();
    let observer = client(&pool.server);
    wait_until("the job is cancelled", Duration::from_secs(10), || {
        observer
            .record(&key)
            .unwrap()
            .is_some_and(|r| r.state == JobState::Cancelled)
    });
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(3),
        "an explicit cancel by the last client stops the job at once, not after the interest TTL"
    );
    let cached = ClipCache::open(&pool.cache, u64::MAX).unwrap();
    assert!(!cached.contains(&key), "a cancelled job caches nothing");
}

#[test]
fn a_killed_client_s_interest_lapses_and_its_job_stops() {
    let Some(pool) = Pool::start(1, &[]) else {
        return;
    };
    let observer = &pool.client;
    let mut t2v = Command::new(env!("CARGO_BIN_EXE_t2v"))
        .args([
            "generate",
            "--queue",
            &pool.server.url(),
            "--no-cache",
            "-q",
        ])
        .args([
            "--prompt",
            "a yellow circle moves down on a black background",
        ])
        .args(["--frames", "5", "--steps", "500", "--output"])
        .arg(pool.dir.path().join("out/f.%04d.png"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let key = running_job(observer);
    t2v.kill().unwrap(); // SIGKILL: the client never says goodbye.
    t2v.wait().unwrap();
    let key = t2v_bridge::ClipKey::from_hex(&key).unwrap();
    let killed = Instant::now();
    wait_until("the unwanted job stops", Duration::from_secs(15), || {
        observer
            .record(&key)
            .unwrap()
            .is_some_and(|r| r.state == JobState::Cancelled)
    });
    assert!(
        killed.elapsed() >= Duration::from_secs(1),
        "it stopped because the interest lapsed, not at once"
    );
}

#[test]
fn bad_messages_unknown_models_and_bad_credentials_reach_the_submitter_and_the_worker_serves_on() {
    let Some(pool) = Pool::start(1, &[]) else {
        return;
    };
    let c = &pool.client;

    // A model no worker serves: refused before anything is queued, naming what is served.
    let mut unknown = remote(params("a red circle", 5, 2, 0));
    unknown.model_id = "wan22".into();
    let e = c.submit(&unknown).unwrap_err();
    assert!(
        e.message.contains("serves a model `wan22`") && e.message.contains("demo"),
        "{e}"
    );
    // A path is not a model id.
    unknown.model_id = "/models/wan".into();
    assert!(c
        .submit(&unknown)
        .unwrap_err()
        .message
        .contains("not valid"));

    // Faulty clients: each message reaches the worker and its error reaches the submitter.
    type Fault = Box<dyn Fn(&mut serde_json::Value)>;
    let faults: Vec<(&str, Fault)> = vec![
        ("protocol version 99", Box::new(|m| m["v"] = 99.into())),
        (
            "at most 4000",
            Box::new(|m| m["params"]["prompt"] = "x".repeat(5000).into()),
        ),
        (
            "serves no model `wan22`",
            Box::new(|m| m["model_id"] = "wan22".into()),
        ),
        (
            "model_path",
            Box::new(|m| m["model_path"] = "/etc/passwd".into()),
        ),
        (
            "the limit is",
            Box::new(|m| m["params"]["prompt"] = "y".repeat(70_000).into()),
        ),
        (
            "malformed",
            Box::new(|m| m["params"]["frames"] = "many".into()),
        ),
    ];
    for (i, (needle, fault)) in faults.into_iter().enumerate() {
        let message = c
            .prepare(&remote(params("a red circle", 5, 2, 100 + i as u64)))
            .unwrap();
        let mut json = serde_json::to_value(&message).unwrap();
        fault(&mut json);
        let job = c
            .submit_raw(message, json.to_string().into_bytes())
            .unwrap();
        let e = job
            .wait_timeout(Duration::from_secs(30))
            .expect("the submitter hears back")
            .unwrap_err();
        assert!(e.message.contains(needle), "{needle}: {e}");
    }

    // Bad credentials: the server refuses, the client is told why.
    let locked = LocalServer::start_with(&["--user", "artist", "--pass", "right"]).unwrap();
    let mut wrong = config(&locked);
    wrong.credentials = t2v_queue::Credentials::UserPassword {
        user: "artist".into(),
        password: "wrong".into(),
    };
    let e = QueueClient::connect(wrong.clone()).err().expect("refused");
    assert!(e.message.contains("refused these credentials"), "{e}");
    wrong.credentials = t2v_queue::Credentials::UserPassword {
        user: "artist".into(),
        password: "right".into(),
    };
    assert!(
        QueueClient::connect(wrong).is_ok(),
        "the right password connects"
    );
    let status = Command::new(env!("CARGO_BIN_EXE_t2v"))
        .args([
            "worker",
            "--queue",
            &locked.url(),
            "--user",
            "artist",
            "--password",
            "no",
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(2),
        "a worker with bad credentials exits with bad input"
    );

    // The worker still serves.
    let job = c.submit(&remote(params("a red circle", 5, 2, 1))).unwrap();
    assert_eq!(wait_clip(&job).frames.len(), 5);
    assert!(
        pool.logs().contains("rejected a job message"),
        "{}",
        pool.logs()
    );
}

#[test]
fn a_job_that_kills_every_worker_fails_with_a_message_after_max_deliver() {
    let Some(pool) = Pool::start(3, &[("T2V_WORKER_TEST_ABORT_ON_PROMPT", "poison")]) else {
        return;
    };
    let c = &pool.client;
    let job = c.submit(&remote(params("poison", 5, 20, 0))).unwrap();
    let e = job
        .wait_timeout(Duration::from_secs(60))
        .expect("the job ends")
        .unwrap_err();
    assert!(e.message.contains("given to 2 workers"), "{e}");
    // The survivor still serves.
    let ok = c.submit(&remote(params("a red circle", 5, 2, 2))).unwrap();
    assert_eq!(wait_clip(&ok).frames.len(), 5);
}

#[test]
fn twenty_jobs_over_three_workers_are_each_done_once() {
    let Some(pool) = Pool::start(3, &[]) else {
        return;
    };
    let c = &pool.client;
    let jobs: Vec<RemoteJob> = (0..20)
        .map(|seed| {
            c.submit(&remote(params("a white square", 1, 1, seed)))
                .unwrap()
        })
        .collect();
    let keys: BTreeSet<String> = jobs.iter().map(|j| j.key().to_hex()).collect();
    assert_eq!(keys.len(), 20, "twenty different clips");
    for job in &jobs {
        assert_eq!(wait_clip(job).frames.len(), 1);
    }
    let records = c.records().unwrap();
    let done: Vec<_> = records
        .iter()
        .filter(|(k, r)| keys.contains(k) && r.state == JobState::Done && r.attempt == 1)
        .collect();
    assert_eq!(done.len(), 20, "every job done, each on its first delivery");
    let logs = pool.logs();
    for key in &keys {
        assert_eq!(
            logs.matches(&format!("job {} attempt", &key[..12])).count(),
            1,
            "clip {key} generated once"
        );
    }
    assert_eq!(logs.matches(": done").count(), 20, "none lost, none twice");
}

/// A draft on the pool decodes with the workers' tiny decoder, under the key and with the frames
/// of the same draft made locally; where the pool's model has no tiny decoder, a style's
/// preference falls back to the full decoder and an explicit fast decode is refused before
/// anything is queued.
#[test]
fn a_fast_decode_on_the_pool_is_the_local_one_and_follows_the_pools_model() {
    let Some(mut pool) = Pool::start(1, &[]) else {
        return;
    };
    let p = params(
        "a red circle moves to the right on a black background",
        5,
        2,
        11,
    );
    let with = |decoder| RemoteRequest {
        decoder,
        ..remote(p.clone())
    };
    let c = &pool.client;
    assert!(c.model("demo").unwrap().tiny_decoder.is_some());
    let full = c.prepare(&with(DecoderChoice::Full)).unwrap();
    let fast = c.prepare(&with(DecoderChoice::Fast)).unwrap();
    assert_eq!((full.decoder, fast.decoder), (Decoder::Full, Decoder::Fast));
    assert_ne!(full.key, fast.key, "a fast decode is another clip");
    assert_eq!(
        c.prepare(&with(DecoderChoice::FastWhenPresent))
            .unwrap()
            .key,
        fast.key,
        "the draft style's preference is a fast decode where the model has a tiny decoder"
    );
    let (service, request) = local(&p, Decoder::Fast);
    assert_eq!(
        service.key_for(&request).unwrap(),
        fast.key,
        "the client's key is the service's"
    );
    let clip = wait_clip(&c.submit(&with(DecoderChoice::Fast)).unwrap());
    let here = service.submit(request).unwrap().wait().unwrap();
    assert_eq!(
        clip.frames, here.frames,
        "the pool's draft is the local draft"
    );

    // The same model without its tiny decoder, served under another id.
    let plain = pool.dir.path().join("plain");
    common::copy_dir(&t2v_demo::model_dir(), &plain);
    std::fs::remove_dir_all(plain.join("tiny_decoder")).unwrap();
    let models = pool.dir.path().join("models.toml");
    std::fs::write(
        &models,
        format!("[models.plain]\npath = {:?}\n", plain.display().to_string()),
    )
    .unwrap();
    pool.add_worker(&["--models", &models.display().to_string()]);
    let c = &pool.client;
    wait_until("model plain is served", Duration::from_secs(30), || {
        c.model("plain").is_ok()
    });
    assert_eq!(c.model("plain").unwrap().tiny_decoder, None);
    let on_plain = |decoder| RemoteRequest {
        model_id: "plain".into(),
        ..with(decoder)
    };
    let preferred = c
        .prepare(&on_plain(DecoderChoice::FastWhenPresent))
        .unwrap();
    assert_eq!(preferred.decoder, Decoder::Full);
    assert_eq!(
        preferred.key,
        c.prepare(&on_plain(DecoderChoice::Full)).unwrap().key
    );
    let e = c.prepare(&on_plain(DecoderChoice::Fast)).unwrap_err();
    assert!(
        e.message
            .contains("model `plain` of pool `default` has none"),
        "{e}"
    );
}

/// `t2v generate` of the demo model on `pool`, found through `$T2V_QUEUE_URL` (as on a farm
/// machine), writing PNGs under `out`.
fn t2v_on_pool(pool: &Pool, prompt: &str, steps: usize, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_t2v"));
    c.args(["generate", "--prompt", prompt, "--frames", "5"])
        .args(["--steps", &steps.to_string(), "--output"])
        .arg(out.join("f.%04d.png"))
        .env("T2V_QUEUE_URL", pool.server.url())
        .env("T2V_QUEUE_INTEREST_SECS", INTEREST_S)
        .stdin(Stdio::null());
    c
}

/// The PNG frames written under `dir`, in order.
fn pngs(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    names.retain(|p| p.extension().is_some_and(|e| e == "png"));
    names.sort();
    names.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn a_client_that_goes_away_and_comes_back_reattaches_to_its_running_job() {
    let Some(pool) = Pool::start(1, &[]) else {
        return;
    };
    let prompt = "a green triangle moves left on a black background";
    let (first_out, second_out) = (pool.dir.path().join("a"), pool.dir.path().join("b"));
    let mut first = t2v_on_pool(&pool, prompt, 300, &first_out)
        .args(["--no-cache", "-q"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let key = running_job(&pool.client);
    first.kill().unwrap(); // The artist's machine goes away mid-job ...
    first.wait().unwrap();
    // ... and comes back with the same request before its interest lapses.
    let second = t2v_on_pool(&pool, prompt, 300, &second_out)
        .args(["--no-cache", "--progress", "json"])
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let record = pool
        .client
        .record(&t2v_bridge::ClipKey::from_hex(&key).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        (record.state, record.attempt),
        (JobState::Done, 1),
        "the first attempt finished the job"
    );
    let logs = pool.logs();
    assert_eq!(logs.matches(" attempt ").count(), 1, "one generation");
    assert!(!logs.contains("no client wants it"), "{logs}");
    assert_eq!(pngs(&second_out).len(), 5, "the client wrote the clip");
    let events = String::from_utf8_lossy(&second.stdout);
    assert!(
        events.lines().any(|l| l.contains("\"eta\":{")),
        "the re-attached client was given the time left: {events}"
    );
}

#[test]
fn a_cached_clip_is_read_without_a_job_and_even_without_the_server() {
    let Some(mut pool) = Pool::start(1, &[]) else {
        return;
    };
    let prompt = "a white star moves right on a black background";
    let cache = pool.cache.clone();
    let (made, read) = (pool.dir.path().join("made"), pool.dir.path().join("read"));
    let run_prompt = |pool: &Pool, prompt: &str, out: &Path| {
        t2v_on_pool(pool, prompt, 4, out)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("-q")
            .output()
            .unwrap()
    };
    let run = |pool: &Pool, out: &Path| run_prompt(pool, prompt, out);
    let first = run(&pool, &made);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let jobs = pool.client.records().unwrap().len();
    assert_eq!(jobs, 1);
    // No worker is left: a job could not be served, so the clip must come from the cache.
    pool.workers.clear();
    let started = Instant::now();
    let second = run(&pool, &read);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        pool.client.records().unwrap().len(),
        jobs,
        "nothing was queued"
    );
    let (read, made) = (pngs(&read), pngs(&made));
    assert_eq!(made.len(), 5);
    assert!(read == made, "the cached clip is the one made");

    // The server down (a farm render during maintenance): the model's identity as this machine
    // last saw it names the clip, which is read from the cache without connecting.
    pool.server.stop();
    let offline = pool.dir.path().join("offline");
    let third = run(&pool, &offline);
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    assert!(pngs(&offline) == made);
    // A clip the cache does not hold still needs the server, and says so.
    let started = Instant::now();
    let new = run_prompt(
        &pool,
        "a white star moves left",
        &pool.dir.path().join("new"),
    );
    let e = String::from_utf8_lossy(&new.stderr);
    assert_eq!(new.status.code(), Some(1), "{e}");
    assert!(e.contains("could not reach the queue server"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn pools_keep_their_jobs_apart_and_a_worker_plans_them_within_its_budget() {
    let Some(mut pool) = Pool::start(1, &[]) else {
        return;
    };
    pool.add_worker(&["--pool", "small-gpus", "--vram", "8"]);
    let mut small = config(&pool.server);
    small.pool = "small-gpus".into();
    let small = QueueClient::connect(small).unwrap();
    wait_until(
        "the small pool serves the demo",
        Duration::from_secs(30),
        || small.model("demo").is_ok(),
    );
    let on_small = params("a red square moves down on a white background", 5, 3, 21);
    let on_default = params("a red square moves up on a white background", 5, 3, 22);
    wait_clip(&small.submit(&remote(on_small.clone())).unwrap());
    wait_clip(&pool.client.submit(&remote(on_default.clone())).unwrap());
    let (default_log, small_log) = (pool.workers[0].log(), pool.workers[1].log());
    assert!(small_log.contains(&on_small.prompt), "{small_log}");
    assert!(!small_log.contains(&on_default.prompt), "{small_log}");
    assert!(default_log.contains(&on_default.prompt), "{default_log}");
    assert!(!default_log.contains(&on_small.prompt), "{default_log}");
    // `--vram 8` reaches every job's plan; the default worker plans without a limit (CPU).
    assert!(small_log.contains("(memory budget 8)"), "{small_log}");
    assert!(
        small_log.contains("memory budget 8: planned peak"),
        "{small_log}"
    );
    assert!(small_log.contains("budget 8.00 GiB"), "{small_log}");
    assert!(
        default_log.contains("memory budget auto: planned peak"),
        "{default_log}"
    );
}

#[test]
fn frames_of_an_attempt_that_died_are_dropped_and_the_next_attempt_makes_the_clip() {
    let prompt = "a blue circle moves right on a black background";
    let Some(mut pool) = Pool::start(
        1,
        &[(t2v_queue::worker::ABORT_AFTER_FRAME_ON_PROMPT_ENV, prompt)],
    ) else {
        return;
    };
    let p = params(prompt, 9, 30, 5);
    let job = pool.client.submit(&remote(p.clone())).unwrap();
    wait_until(
        "the first attempt's frames arrive",
        Duration::from_secs(90),
        || !job.frames_so_far().is_empty(),
    );
    assert_eq!(job.attempt(), 1);
    pool.add_worker(&[]);
    // The moment the client sees the second attempt, it holds none of the first one's frames
    // (the second worker needs all its 30 steps before it has any).
    let mut held_at_new_attempt = None;
    while !job.is_finished() {
        if job.attempt() == 2 && held_at_new_attempt.is_none() {
            held_at_new_attempt = Some(job.frames_so_far().len());
        }
        job.wait_for_change(Duration::from_millis(5));
    }
    assert_eq!(held_at_new_attempt, Some(0), "the frames were reset");
    let clip = wait_clip(&job);
    assert_eq!(job.attempt(), 2);
    assert_eq!(
        clip.frames,
        local_frames(&p),
        "the clip equals a clean local run"
    );
}
