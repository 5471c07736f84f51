//! The plugin's log, so that a failed load or a crash in a host can be diagnosed. Private: it
//! holds prompts (folder 0700, files 0600 on Unix).
//!
//! Location: `$T2V_LOG` when set, else `plugin.log` in the platform's log folder
//! ([`t2v_support::folders::log_dir`]: `$XDG_STATE_HOME/text-to-video` or
//! `~/.local/state/text-to-video` on Linux, `~/Library/Logs/text-to-video` on macOS,
//! `%LOCALAPPDATA%\text-to-video` on Windows). Lines go to one file a day (UTC) beside it,
//! `plugin.YYYY-MM-DD.log` (rotated by `tracing-appender`); the last [`KEEP_DAYS`] are kept, and
//! on Unix `plugin.log` itself is a link to the current day's file. Logging never fails an
//! action.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing_appender::rolling::{RollingFileAppender, Rotation};

pub const LOG_ENV: &str = "T2V_LOG";
/// How many daily files are kept.
pub const KEEP_DAYS: usize = 7;

/// The open log: the rolling appender and what names its files.
pub struct LogFile {
    appender: RollingFileAppender,
    dir: PathBuf,
    prefix: String,
    suffix: String,
    /// The day (UTC) whose file is known to exist, private.
    day: String,
}

static LOG: Mutex<Option<LogFile>> = Mutex::new(None);

/// Where the log goes (see the module documentation).
pub fn log_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(LOG_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    Some(t2v_support::folders::log_dir()?.join("plugin.log"))
}

/// Today's date (UTC) as the appender names its daily files.
fn today() -> String {
    let date = time::OffsetDateTime::now_utc().date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        date.month() as u8,
        date.day()
    )
}

impl LogFile {
    /// Opens the log named `path` (its folder created private).
    pub fn open(path: &Path) -> Option<LogFile> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let name = path.file_name()?.to_string_lossy().into_owned();
        let (prefix, suffix) = match name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => (stem.to_string(), ext.to_string()),
            _ => (name.clone(), String::new()),
        };
        t2v_support::private::create_dir_all(&dir).ok()?;
        let mut log = LogFile {
            appender: {
                // Created before the appender opens it, so that it is private from the start.
                private_file(&dir, &prefix, &suffix, &today());
                let builder = RollingFileAppender::builder()
                    .rotation(Rotation::DAILY)
                    .filename_prefix(&prefix)
                    .max_log_files(KEEP_DAYS);
                let builder = if suffix.is_empty() {
                    builder
                } else {
                    builder.filename_suffix(&suffix)
                };
                #[cfg(unix)]
                let builder = builder.latest_symlink(&name);
                builder.build(&dir).ok()?
            },
            dir,
            prefix,
            suffix,
            day: String::new(),
        };
        log.day = today();
        Some(log)
    }

    /// The current day's file.
    pub fn current_file(&self) -> PathBuf {
        day_file(&self.dir, &self.prefix, &self.suffix, &self.day)
    }

    /// Appends one line: seconds since the epoch, the process and thread, the text.
    pub fn write_line(&mut self, text: &str) {
        let day = today();
        if day != self.day {
            // The appender rolls over to this file on this write: create it private first.
            private_file(&self.dir, &self.prefix, &self.suffix, &day);
            self.day = day;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("host");
        let line = format!(
            "{}.{:03} [{}:{name}] {text}\n",
            now.as_secs(),
            now.subsec_millis(),
            std::process::id()
        );
        let _ = self.appender.write_all(line.as_bytes());
    }
}

fn day_file(dir: &Path, prefix: &str, suffix: &str, day: &str) -> PathBuf {
    match suffix {
        "" => dir.join(format!("{prefix}.{day}")),
        _ => dir.join(format!("{prefix}.{day}.{suffix}")),
    }
}

/// Creates the day's file owner-only (an existing one is made so too).
fn private_file(dir: &Path, prefix: &str, suffix: &str, day: &str) {
    let path = day_file(dir, prefix, suffix, day);
    let _ = t2v_support::private::file_options()
        .create(true)
        .append(true)
        .open(&path);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
}

/// Opens the log (at `Load`).
pub fn init() {
    let mut log = t2v_support::lock(&LOG);
    if log.is_none() {
        *log = log_path().and_then(|p| LogFile::open(&p));
    }
}

/// Closes the log (at `Unload`).
pub fn close() {
    t2v_support::lock(&LOG).take();
}

/// Appends one line (opening the log if needed).
pub fn write(text: &str) {
    let mut log = t2v_support::lock(&LOG);
    if log.is_none() {
        *log = log_path().and_then(|p| LogFile::open(&p));
    }
    if let Some(file) = log.as_mut() {
        file.write_line(text);
    }
}

#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => { $crate::log::write(&format!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_a_private_file_in_a_private_folder() {
        let root = std::env::temp_dir().join(format!("t2v-log-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let path = root.join("logs").join("plugin.log");
        let mut log = LogFile::open(&path).expect("the log opens");
        log.write_line("first line");
        log.write_line("second line: ünïcode");
        let text = std::fs::read_to_string(log.current_file()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with("] first line"), "{text}");
        assert!(lines[1].ends_with("second line: ünïcode"));
        assert!(log
            .current_file()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("plugin.20"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&root.join("logs")), 0o700);
            assert_eq!(mode(&log.current_file()), 0o600);
            // plugin.log is the current day's file.
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        }
        drop(log);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
