//! A progress line for long work (backups, unpacking) on a terminal:
//! drawn on stderr only when stderr is a TTY, nothing at all otherwise
//! (hooks, timers, pipes and tests see no trace of it).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;

static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Shown while alive; cleared when dropped.
pub struct Progress(());

/// Starts a byte-counting line with `what`; a no-op unless stderr is a TTY.
pub fn start(what: &str) -> Progress {
    if std::io::stderr().is_terminal() {
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {msg}: {binary_bytes} in {pos_files} files ({binary_bytes_per_sec}), {elapsed}",
        ) {
            pb.set_style(style.with_key(
                "pos_files",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{}", FILES.load(std::sync::atomic::Ordering::Relaxed));
                    let _ = s;
                },
            ));
        }
        pb.set_message(what.to_string());
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        FILES.store(0, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut g) = BAR.lock() {
            *g = Some(pb);
        }
    }
    Progress(())
}

static FILES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One file of `bytes` done.
pub fn file_done(bytes: u64) {
    if let Ok(g) = BAR.lock() {
        if let Some(pb) = g.as_ref() {
            FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            pb.inc(bytes);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Ok(mut g) = BAR.lock() {
            if let Some(pb) = g.take() {
                pb.finish_and_clear();
            }
        }
    }
}
