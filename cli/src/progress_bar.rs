//! Progress on stderr: an `indicatif` bar on a terminal, plain lines (one per change) otherwise,
//! nothing with `--quiet`. The machine-readable form is `--progress json` (see `generate`).

use std::io::IsTerminal;
use t2v_bridge::{JobProgress, JobStage};

/// The bar's length in steps: the job's fraction done times this.
const TICKS: u64 = 1000;

pub struct ProgressBar {
    bar: Option<indicatif::ProgressBar>,
    last_line: String,
    quiet: bool,
}

impl ProgressBar {
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(TICKS),
                indicatif::ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template("[{bar:30}] {percent:>3}% {msg}")
                    .expect("the template is valid")
                    .progress_chars("#>-"),
            );
            bar
        });
        ProgressBar {
            bar,
            last_line: String::new(),
            quiet,
        }
    }

    pub fn show(&mut self, p: &JobProgress) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => {
                // The service's own estimate: it leaves model loading out.
                let eta = p
                    .eta
                    .map(|d| format!(", {} left", t2v_bridge::progress::format_duration(d)))
                    .unwrap_or_default();
                bar.set_position((p.fraction.clamp(0.0, 1.0) * TICKS as f32) as u64);
                bar.set_message(format!("{}{eta}", p.stage));
            }
            None => {
                let stage = match p.stage {
                    // On plain output a line per decoded frame is noise; chunks are enough.
                    JobStage::Decoding { .. } => "decoding".to_string(),
                    s => s.to_string(),
                };
                if stage != self.last_line {
                    eprintln!("{stage}");
                    self.last_line = stage;
                }
            }
        }
    }

    /// Ends the bar's line before other output.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}
