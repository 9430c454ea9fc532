//! upkeep's own state under `ROOT/var/lib/upkeep/`: a root-owned 0700
//! directory, 0600 files written atomically, and one lock for writers.

use crate::error::{Error, IoContext, Result};
use crate::root::SysRoot;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const STATE_DIR: &str = "/var/lib/upkeep";

/// The state directory, created 0700 if missing. One that is a symlink or
/// owned by someone else is refused: state steers what root does next.
pub fn state_dir(root: &SysRoot, sub: &str) -> Result<PathBuf> {
    let base = root.path(STATE_DIR);
    let dir = if sub.is_empty() {
        base.clone()
    } else {
        base.join(sub)
    };
    for d in [&base, &dir] {
        match std::fs::symlink_metadata(d) {
            Ok(m) => check_private_dir(d, &m)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(d)
                    .at(d)?;
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).at(d)?;
                sync_dir(d.parent().unwrap_or(d))?;
            }
            Err(e) => return Err(Error::io(d, e)),
        }
    }
    Ok(dir)
}

/// The state directory if it exists, without creating anything: the fast
/// path of commands that usually have nothing to do.
pub fn existing_state_dir(root: &SysRoot, sub: &str) -> Result<Option<PathBuf>> {
    let dir = root.path(STATE_DIR).join(sub);
    match std::fs::symlink_metadata(&dir) {
        Ok(m) => {
            check_private_dir(&dir, &m)?;
            Ok(Some(dir))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&dir, e)),
    }
}

fn check_private_dir(d: &Path, m: &std::fs::Metadata) -> Result<()> {
    if !m.file_type().is_dir() {
        return Err(Error::Refused(format!(
            "{}: state directory is a symlink or not a directory",
            d.display()
        )));
    }
    let me = nix::unistd::geteuid().as_raw();
    if m.uid() != me {
        return Err(Error::Refused(format!(
            "{}: state directory is owned by uid {}, not {me}",
            d.display(),
            m.uid()
        )));
    }
    if m.mode() & 0o077 != 0 {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).at(d)?;
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
        let dir = state_dir(root, "")?;
        let path = dir.join("lock");
        let deadline = Instant::now() + wait;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .at(&path)?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(flock) => return Ok(Lock { _flock: flock }),
                Err((f, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
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

/// Writes `data` to `path` atomically and durably: a temporary file in the
/// same directory (0600), fsync, rename over, fsync the directory. A crash
/// leaves either the old or the new content, never a mix.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Failed(format!("{}: no parent", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&tmp)
        .at(&tmp)?;
    let result = f
        .write_all(data)
        .and_then(|()| f.sync_all())
        .and_then(|()| {
            crate::fault::point("state:before-rename");
            std::fs::rename(&tmp, path)
        });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    sync_dir(dir)
}

/// Removes a state file durably.
pub fn remove_durable(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    }
    sync_dir(path.parent().unwrap_or(path))
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
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

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
    }
}
