//! Recent log lines that match declared patterns. A line with a time
//! (`YYYY-MM-DD HH:MM:SS` or `…T…`, read as UTC) counts when it is inside
//! the window; a line without one counts when it is among the last lines
//! read, since nothing says it is old.

use crate::Finding;
use regex::Regex;
use std::time::{Duration, SystemTime};

/// The compiled patterns; a bad pattern is malformed manifest data.
pub fn compile(patterns: &[String]) -> Result<Vec<Regex>, crate::DbError> {
    patterns
        .iter()
        .map(|p| {
            Regex::new(p).map_err(|e| crate::DbError::Malformed(format!("log pattern '{p}': {e}")))
        })
        .collect()
}

fn line_time(line: &str) -> Option<(String, SystemTime)> {
    static_time_re().captures(line).and_then(|c| {
        let (d, t) = (c.get(1)?.as_str(), c.get(2)?.as_str());
        let s = format!("{d} {t}");
        humantime::parse_rfc3339_weak(&s).ok().map(|st| (s, st))
    })
}

fn static_time_re() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        #[allow(clippy::unwrap_used)] // a constant pattern, checked by the tests
        Regex::new(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})").unwrap()
    })
}

/// One refusal per matching recent line of `text` (the content of
/// `source`), quoting the line and its time.
pub fn scan(
    text: &str,
    source: &str,
    patterns: &[Regex],
    now: SystemTime,
    window: Duration,
    tail_lines: usize,
) -> Vec<Finding> {
    let cutoff = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(tail_lines);
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(start) {
        if !patterns.iter().any(|p| p.is_match(line)) {
            continue;
        }
        let when = match line_time(line) {
            Some((_, t)) if t < cutoff => continue,
            Some((s, _)) => format!("at {s} UTC"),
            None => "(the line carries no time)".to_string(),
        };
        out.push(Finding::refused(
            "log",
            format!("{source} line {} {when}: {}", i + 1, line.trim_end()),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats() -> Vec<Regex> {
        compile(&[r"tls error \(server refused TLS connection\)".to_string()]).expect("compiles")
    }

    #[test]
    fn recent_matching_lines_refuse_with_line_and_time() {
        let now = humantime::parse_rfc3339("2026-11-22T21:00:00Z").expect("time");
        let log = "2026-11-22 20:00:01 [INFO] started\n\
                   2026-11-22T20:30:00 [DEBUG] failed to connect to `host=10.0.0.5 user=postgres database=tegu_mailboxes`: tls error (server refused TLS connection)\n\
                   2026-11-01 10:00:00 [DEBUG] failed to connect to `x`: tls error (server refused TLS connection)\n\
                   failed to connect to `y`: tls error (server refused TLS connection)\n";
        let f = scan(
            log,
            "/opt/tegu/log/tegu.log",
            &pats(),
            now,
            Duration::from_secs(86400),
            100,
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(
            f[0].message.contains("line 2 at 2026-11-22 20:30:00 UTC"),
            "{}",
            f[0].message
        );
        assert!(f[0].message.contains("host=10.0.0.5"));
        assert!(f[1].message.contains("line 4 (the line carries no time)"));
        assert!(f.iter().all(|x| !x.ok && x.check == "log"));
    }

    #[test]
    fn old_or_unmatched_or_beyond_the_tail_pass() {
        let now = humantime::parse_rfc3339("2026-11-22T21:00:00Z").expect("time");
        let log =
            "failed: tls error (server refused TLS connection)\n2026-11-22 20:59:00 all good\n";
        assert!(scan(log, "l", &pats(), now, Duration::from_secs(3600), 1).is_empty());
        assert_eq!(
            scan(log, "l", &pats(), now, Duration::from_secs(3600), 2).len(),
            1
        );
        assert!(compile(&["(".to_string()]).is_err());
    }
}
