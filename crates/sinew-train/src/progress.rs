//! Progress display: a bar per epoch on a terminal (indicatif), one plain line per epoch
//! otherwise, nothing when quiet.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::history::Logs;

/// How much `fit` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// A bar on a terminal, lines otherwise (the default).
    #[default]
    Auto,
    /// A live bar with loss, speed and ETA on a terminal; where stderr is not a terminal
    /// (a log file, CI), where a bar would draw nothing, one line per epoch instead.
    Bar,
    /// One line per epoch.
    Lines,
    /// Nothing.
    Quiet,
}

fn format_logs(logs: &Logs) -> String {
    logs.iter().map(|(k, v)| format!("{k} {v:.4}")).collect::<Vec<_>>().join(" - ")
}

pub(crate) struct Progress {
    mode: Verbosity,
    bar: Option<ProgressBar>,
    started: Instant,
    epochs: usize,
}

impl Progress {
    pub(crate) fn new(mode: Verbosity, epochs: usize) -> Self {
        let mode = match mode {
            Verbosity::Auto | Verbosity::Bar if std::io::stderr().is_terminal() => Verbosity::Bar,
            // indicatif draws nothing where stderr is not a terminal: print lines there
            Verbosity::Auto | Verbosity::Bar => Verbosity::Lines,
            m => m,
        };
        Progress { mode, bar: None, started: Instant::now(), epochs }
    }

    pub(crate) fn epoch_begin(&mut self, epoch: usize, batches: usize) {
        self.started = Instant::now();
        if self.mode == Verbosity::Bar {
            let bar = ProgressBar::with_draw_target(Some(batches as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} {bar:30} {pos}/{len} [{elapsed}<{eta}, {per_sec}] {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(format!("epoch {}/{}", epoch + 1, self.epochs));
            self.bar = Some(bar);
        }
    }

    pub(crate) fn batch_end(&mut self, mean_loss: f64) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!("loss {mean_loss:.4}"));
        }
    }

    pub(crate) fn epoch_end(&mut self, epoch: usize, logs: &Logs) {
        let secs = self.started.elapsed().as_secs_f64();
        match self.mode {
            Verbosity::Bar => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_with_message(format_logs(logs));
                }
            }
            Verbosity::Lines => {
                eprintln!("epoch {}/{} - {} - {secs:.2}s", epoch + 1, self.epochs, format_logs(logs))
            }
            _ => {}
        }
    }
}
