//! upkeep's own state under `ROOT/var/lib/upkeep/`: a root-owned 0700
//! directory, 0600 files written atomically, and one lock for writers.

use crate::error::{Error, Result};
use crate::root::SysRoot;
use crate::safe::{self, Dir, Keep, Resolve};
use nix::fcntl::{Flock, FlockArg};
use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

pub const STATE_DIR: &str = "/var/lib/upkeep";

/// Directories upkeep makes on the way to its state are 0755, as dpkg's.
const PUBLIC_MODE: u32 = 0o755;
const PRIVATE_MODE: u32 = 0o700;

/// upkeep's state directory (or `sub` in it), created 0700 if missing, its
/// parents 0755. One that is not a directory or is owned by someone else is
/// refused: state steers what root does next.
pub fn private_dir(root: &SysRoot, sub: &str) -> Result<Dir> {
    let parent = Path::new(STATE_DIR).parent().unwrap_or(Path::new("/"));
    let above = safe::create_dir_all(root, parent, PUBLIC_MODE)?;
    let name = Path::new(STATE_DIR)
        .file_name()
        .unwrap_or(OsStr::new("upkeep"));
    let mut dir = private_child(&above, name)?;
    if !sub.is_empty() {
        dir = private_child(&dir, OsStr::new(sub))?;
    }
    Ok(dir)
}

fn private_child(parent: &Dir, name: &OsStr) -> Result<Dir> {
    if parent.mkdir(name, PRIVATE_MODE)? {
        parent.sync()?;
    }
    let dir = parent
        .open_dir(Path::new(name), Resolve::NoLinks)?
        .ok_or_else(|| {
            refuse(
                &parent.shown().join(name),
                "is a symlink or not a directory",
            )
        })?;
    check_private(&dir)?;
    Ok(dir)
}

/// The state directory (or `sub`) if it exists, creating nothing: the fast
/// path of commands that usually have nothing to do.
pub fn existing_private_dir(root: &SysRoot, sub: &str) -> Result<Option<Dir>> {
    let inside = Path::new(STATE_DIR).join(sub);
    let Some(dir) = safe::open_dir(root, &inside)? else {
        return Ok(None);
    };
    check_private(&dir)?;
    Ok(Some(dir))
}

fn refuse(shown: &Path, why: &str) -> Error {
    Error::Refused(format!("{}: state directory {why}", shown.display()))
}

fn check_private(dir: &Dir) -> Result<()> {
    let st =
        nix::sys::stat::fstat(dir).map_err(|e| Error::io(dir.shown(), std::io::Error::from(e)))?;
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != me {
        return Err(refuse(
            dir.shown(),
            &format!("is owned by uid {}, not {me}", st.st_uid),
        ));
    }
    if st.st_mode & 0o077 != 0 {
        safe::fchmod(dir, PRIVATE_MODE)?;
    }
    Ok(())
}

/// The writers' lock (`flock` on `ROOT/var/lib/upkeep/lock`), waited for up
/// to `wait`; still held by another process after that is "busy" (75).
pub struct Lock {
    _flock: Flock<File>,
}

impl Lock {
    pub fn acquire(root: &SysRoot, wait: Duration) -> Result<Lock> {
        let dir = private_dir(root, "")?;
        let path = dir.shown().join("lock");
        // A wait too long to represent is a wait without end.
        let deadline = Instant::now().checked_add(wait);
        let mut file = dir.open_rw(OsStr::new("lock"), 0o600)?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(flock) => return Ok(Lock { _flock: flock }),
                Err((f, nix::errno::Errno::EWOULDBLOCK))
                    if deadline.is_none_or(|d| Instant::now() < d) =>
                {
                    file = f;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    return Err(Error::Busy(format!(
                        "{} is held by another upkeep process (waited {}s)",
                        path.display(),
                        wait.as_secs()
                    )))
                }
                Err((_, e)) => return Err(Error::io(&path, e.into())),
            }
        }
    }
}

/// Writes upkeep's own state file `name` in `dir` atomically (0600).
pub fn write_private(dir: &Dir, name: &str, data: &[u8]) -> Result<()> {
    dir.replace(OsStr::new(name), data, &Keep::private())
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `20261122T043000Z` from seconds since the epoch (UTC, civil-from-days).
pub fn utc_stamp(t: u64) -> String {
    let (y, m, d, hh, mm, ss) = civil(t);
    format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z")
}

/// `2026-11-22 04:30:00 UTC`.
pub fn utc_human(t: u64) -> String {
    let (y, m, d, hh, mm, ss) = civil(t);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC")
}

fn civil(t: u64) -> (i64, i64, i64, u64, u64, u64) {
    let days = (t / 86400) as i64;
    let rem = t % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Parses `90s`, `30m`, `1h`, `2h30m`, `1d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(format!("'{s}': unknown unit '{c}' (use s, m, h, d)")),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("'{s}': a number must come before '{c}'"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("'{s}': too long"))?;
        num.clear();
    }
    if !num.is_empty() {
        return Err(format!("'{s}': a unit must follow {num} (s, m, h, d)"));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc_human(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_human(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_stamp(1_795_320_000), "20261122T040000Z");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").unwrap().as_secs(), 3600);
        assert_eq!(parse_duration("2h30m").unwrap().as_secs(), 9000);
        assert_eq!(parse_duration("45").unwrap().as_secs(), 45);
        assert_eq!(parse_duration("1d").unwrap().as_secs(), 86400);
        for bad in ["", "h", "1x", "1h5", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
