//! `upkeep-hook`: the command apt's `DPkg::Pre-Install-Pkgs` runs on every
//! transaction. It reads the stream, and when no line names a package any
//! manifest could mean (and every line reads well) it exits 0 at once:
//! that is nearly every apt run, and it costs about what `/bin/true` does.
//! Otherwise it execs `upkeep-guard [ARGS] apt-hook` beside it, handing the
//! stream over on stdin (a memfd), so the full guard does the checking.
//!
//! `upkeep-hook [--root DIR]`: the arguments go to upkeep-guard unchanged.
//! It never fails apt by accident: anything unexpected execs the guard
//! (which reports it), and a guard that cannot be run is a warning.

use std::ffi::OsString;
use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

const NAME: &str = "upkeep-hook";
/// The stream is held in memory; apt's for a whole distribution upgrade is
/// a few megabytes.
const MAX_STREAM: u64 = 256 << 20;

pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().skip(1).collect();
    let stream = match read_stream() {
        Ok(s) => s,
        // Unreadable: the guard has nothing to read either; say so.
        Err(e) => {
            eprintln!(
                "{NAME}: warning: cannot read apt's hook stream ({e}); not checking this run"
            );
            return 0;
        }
    };
    if nothing_to_do(&root(&args), &stream) {
        return 0;
    }
    let guard = guard_path();
    let err = match hand_over(&stream) {
        Ok(fd) => std::process::Command::new(&guard)
            .args(&args)
            .arg("apt-hook")
            .env_remove("APT_HOOK_INFO_FD")
            .stdin(fd)
            .exec(),
        Err(e) => e,
    };
    eprintln!(
        "{NAME}: warning: cannot run {} ({err}); not checking this run",
        guard.display()
    );
    0
}

/// True when no package line names anything a manifest could mean, every
/// line is well formed, and every manifest could be read. Stops at the
/// first line that says otherwise.
pub fn nothing_to_do(root: &Path, stream: &[u8]) -> bool {
    let Ok(sources) = crate::manifest_sources(root) else {
        return false;
    };
    let known = crate::name_candidates(sources.iter().map(|(_, _, t)| t.as_ref()));
    let mut quiet = true;
    crate::scan_each(stream, |item| {
        quiet = matches!(item, Ok(l) if known.binary_search(&l.name).is_err());
        quiet
    });
    quiet
}

/// `--root DIR` or `--root=DIR` among the arguments, else `$DPKG_ROOT`,
/// else `/` (as every upkeep binary).
fn root(args: &[OsString]) -> PathBuf {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--root" {
            if let Some(v) = it.next() {
                return PathBuf::from(v);
            }
        } else if let Some(v) = a.to_str().and_then(|s| s.strip_prefix("--root=")) {
            return PathBuf::from(v);
        }
    }
    match std::env::var_os("DPKG_ROOT") {
        Some(r) if !r.is_empty() => PathBuf::from(r),
        _ => PathBuf::from("/"),
    }
}

/// apt writes the stream to the descriptor in APT_HOOK_INFO_FD when its
/// configuration says so, else to stdin.
// apt's own pipe, not a path of the root.
#[allow(clippy::disallowed_methods)]
fn read_stream() -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    match std::env::var("APT_HOOK_INFO_FD")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        Some(fd) => {
            std::fs::File::open(format!("/proc/self/fd/{fd}"))?
                .take(MAX_STREAM)
                .read_to_end(&mut buf)?;
        }
        None => {
            std::io::stdin()
                .lock()
                .take(MAX_STREAM)
                .read_to_end(&mut buf)?;
        }
    }
    Ok(buf)
}

/// `upkeep-guard` in the same directory as this binary.
fn guard_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.join("upkeep-guard")))
        .unwrap_or_else(|| PathBuf::from("/usr/bin/upkeep-guard"))
}

/// The stream in an anonymous memory file, positioned at its start.
fn hand_over(stream: &[u8]) -> std::io::Result<std::fs::File> {
    let fd = nix::sys::memfd::memfd_create(
        "upkeep-apt-hook-stream",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )?;
    let mut f = std::fs::File::from(fd);
    f.write_all(stream)?;
    f.rewind()?;
    Ok(f)
}
