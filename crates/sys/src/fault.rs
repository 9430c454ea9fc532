//! Crash points for the crash tests. Only debug builds (what `cargo test`
//! runs) have them: `UPKEEP_CRASH_AT=NAME` kills the process with SIGKILL
//! when it reaches the point NAME; a point reached again is `NAME#2`, `NAME#3`.
//! Release builds compile them to nothing.

/// Every point reached is logged at debug level, so a test can list them
/// with `UPKEEP_LOG=debug`.
#[inline]
pub fn point(name: &str) {
    #[cfg(debug_assertions)]
    {
        use std::sync::Mutex;
        static SEEN: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());
        let n = {
            let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
            match seen.iter_mut().find(|(k, _)| k == name) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    seen.push((name.to_string(), 1));
                    1
                }
            }
        };
        let full = if n == 1 {
            name.to_string()
        } else {
            format!("{name}#{n}")
        };
        log::debug!("crash point {full}");
        if std::env::var_os("UPKEEP_CRASH_AT").is_some_and(|v| v == full.as_str()) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
