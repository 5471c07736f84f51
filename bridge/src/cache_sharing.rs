//! What lets several machines share one clip cache folder (NFS, SMB) without locks, which such
//! filesystems don't provide reliably:
//!
//! - Temporary folders are named `<host>-<pid>-<n>-<key>.<what>`. A process reaps another's
//!   temporary folder only when that writer is surely gone: a dead process of this machine, or a
//!   folder untouched for [`STALE_TEMPORARY_AGE`] (a writer touches it with every file it adds,
//!   and a clip takes seconds to write). Folders being deleted (`.removing`) are never read and
//!   may be deleted by anyone.
//! - A reader holds a lease while it reads an entry: an empty file `lease.<host>-<pid>-<n>` in
//!   the entry's folder, created before the manifest is read and removed afterwards. Eviction
//!   skips entries with a lease younger than [`LEASE_LIMIT`] (an older one is a crashed
//!   reader's). Creating a file is atomic on every shared filesystem; the window between an
//!   evictor's check and its rename is closed on the reader's side: a reader whose entry vanished
//!   mid-read reports a miss and regenerates, it never deletes anything.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// A temporary folder untouched for this long belongs to a writer that is gone.
pub const STALE_TEMPORARY_AGE: Duration = Duration::from_secs(3600);
/// A lease older than this belongs to a reader that crashed; reading a clip takes seconds.
pub const LEASE_LIMIT: Duration = Duration::from_secs(600);
pub const LEASE_PREFIX: &str = "lease.";

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// This machine's name, reduced to characters that are safe in a file name and free of `-`.
pub fn host_name() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        #[cfg(unix)]
        let name = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        #[cfg(not(unix))]
        let name = std::env::var("COMPUTERNAME").unwrap_or_default();
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if name.is_empty() {
            "unknown_host".into()
        } else {
            name
        }
    })
}

/// `<host>-<pid>-<n>`: unique to this call among every machine sharing the folder.
pub fn owner_tag() -> String {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    format!("{}-{}-{n}", host_name(), std::process::id())
}

/// The host and process id a temporary folder's name carries.
fn writer_of(name: &str) -> Option<(&str, u32)> {
    let mut parts = name.splitn(3, '-');
    let host = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    Some((host, pid))
}

fn process_is_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// The newest modification time of a folder and the files in it.
fn last_touched(dir: &Path) -> Option<SystemTime> {
    let own = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
    let files = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.metadata().ok()?.modified().ok());
    own.into_iter().chain(files).max()
}

fn older_than(time: Option<SystemTime>, age: Duration) -> bool {
    time.and_then(|t| t.elapsed().ok()).is_some_and(|e| e > age)
}

/// Whether the temporary folder `dir` (in `tmp/`) may be deleted by this process.
pub fn is_reapable(dir: &Path) -> bool {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if name.ends_with(".removing") {
        return true;
    }
    if let Some((host, pid)) = writer_of(&name) {
        if host == host_name() {
            if pid == std::process::id() {
                return false;
            }
            if !process_is_alive(pid) {
                return true;
            }
        }
    }
    older_than(last_touched(dir), STALE_TEMPORARY_AGE)
}

/// A reader's lease on an entry folder; removed when dropped.
pub struct Lease(Option<PathBuf>);

impl Lease {
    /// Takes a lease on `entry`; without one (a read-only folder) reading still works, it is
    /// just not protected from eviction.
    pub fn take(entry: &Path) -> Lease {
        let path = entry.join(format!("{LEASE_PREFIX}{}", owner_tag()));
        Lease(t2v_support::private::write(&path, b"").ok().map(|()| path))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether some reader holds a live lease on `entry`.
pub fn is_leased(entry: &Path) -> bool {
    std::fs::read_dir(entry)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(LEASE_PREFIX))
        .any(|e| !older_than(e.metadata().and_then(|m| m.modified()).ok(), LEASE_LIMIT))
}
