//! Progress reporting: a trait the engine calls, a silent implementation, and a progress bar on stderr for terminals.

use std::io::IsTerminal;

/// Receives the progress of a run: input bytes read, then partitions matched.
pub trait Progress: Sync {
    /// A new phase with `total` units of work.
    fn begin(&self, phase: &str, total: u64);
    /// `amount` more units are done.
    fn advance(&self, amount: u64);
    /// The phase is over.
    fn end(&self);
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _phase: &str, _total: u64) {}
    fn advance(&self, _amount: u64) {}
    fn end(&self) {}
}

/// A progress bar on stderr.
#[derive(Debug)]
pub struct TerminalProgress {
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl TerminalProgress {
    /// A progress bar when stderr is a terminal, otherwise `None`.
    pub fn when_terminal() -> Option<TerminalProgress> {
        std::io::stderr().is_terminal().then(|| TerminalProgress {
            bar: std::sync::Mutex::new(None),
        })
    }
}

impl Progress for TerminalProgress {
    fn begin(&self, phase: &str, total: u64) {
        let bar = indicatif::ProgressBar::new(total);
        let template = if phase == "read" {
            "{msg:>8} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{msg:>8} [{bar:40}] {pos}/{len} eta {eta}"
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(phase.to_owned());
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn advance(&self, amount: u64) {
        if let Ok(slot) = self.bar.lock() {
            if let Some(bar) = slot.as_ref() {
                bar.inc(amount);
            }
        }
    }

    fn end(&self) {
        if let Ok(mut slot) = self.bar.lock() {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        }
    }
}
