//! Progress on stderr: a redrawn bar on a terminal, plain lines (one per change) otherwise.

use std::io::{IsTerminal, Write};
use t2v_bridge::{JobProgress, JobStage};

pub struct ProgressBar {
    tty: bool,
    last_line: String,
    quiet: bool,
}

impl ProgressBar {
    pub fn new(quiet: bool) -> Self {
        ProgressBar {
            tty: std::io::stderr().is_terminal(),
            last_line: String::new(),
            quiet,
        }
    }

    pub fn show(&mut self, p: &JobProgress) {
        if self.quiet {
            return;
        }
        let stage = match p.stage {
            // On plain output a line per decoded frame is noise; chunks are enough.
            JobStage::Decoding { .. } if !self.tty => "decoding".to_string(),
            s => s.to_string(),
        };
        if self.tty {
            const WIDTH: usize = 30;
            let filled = ((p.fraction.clamp(0.0, 1.0) * WIDTH as f32) as usize).min(WIDTH);
            let eta = p
                .eta
                .map(|d| format!(", {} left", t2v_bridge::progress::format_duration(d)))
                .unwrap_or_default();
            let line = format!(
                "[{}{}] {:3.0}% {stage}{eta}",
                "#".repeat(filled),
                "-".repeat(WIDTH - filled),
                p.fraction * 100.0
            );
            if line != self.last_line {
                eprint!("\r\x1b[2K{line}");
                let _ = std::io::stderr().flush();
                self.last_line = line;
            }
        } else if stage != self.last_line {
            eprintln!("{stage}");
            self.last_line = stage;
        }
    }

    /// Ends the bar's line before other output.
    pub fn finish(&mut self) {
        if self.tty && !self.last_line.is_empty() && !self.quiet {
            eprintln!();
            self.last_line.clear();
        }
    }
}
