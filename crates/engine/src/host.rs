//! The host product's own tools: its control command (`gitlab-ctl`) and
//! its Ruby. Under a `--root` other than `/` only the root's own copies are
//! used, never the machine's.

use crate::plugin::HostSpec;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use upkeep_sys::error::{Error, Result};
use upkeep_sys::root::SysRoot;
use upkeep_sys::safe;

/// The root's own regular file at `inside`, its links resolved inside the
/// root (never a program of the machine's through an absolute link).
pub(crate) fn in_root_file(root: &SysRoot, inside: &str) -> Option<PathBuf> {
    let st = safe::stat(root, inside, true).ok()??;
    if safe::Kind::of(&st) != safe::Kind::File {
        return None;
    }
    safe::resolve(root, inside).ok()?
}

/// Whether upkeep may run `p` (inside the root): nothing from a directory
/// lent to another user, nothing a lease holder changed (see
/// [`crate::lease::may_run`]). A refusal is logged and the tool is not used.
fn runnable(root: &SysRoot, inside: &Path) -> bool {
    match crate::lease::may_run(root, inside) {
        Ok(()) => true,
        Err(e) => {
            log::warn!("{e}");
            eprintln!("warning: {e}");
            false
        }
    }
}

/// The root's own file at `inside` (as [`in_root_file`]) if upkeep may run
/// it: not from a lent directory, not changed by a lease holder.
pub(crate) fn runnable_in_root(root: &SysRoot, inside: &str) -> Option<PathBuf> {
    in_root_file(root, inside).filter(|_| runnable(root, Path::new(inside)))
}

/// A program found on the machine's PATH, checked as `runnable` (only on `/`).
pub(crate) fn on_path(root: &SysRoot, name: &std::ffi::OsStr) -> Option<PathBuf> {
    let p = which::which(name).ok()?;
    runnable(root, &p).then_some(p)
}

/// The root's executable at `inside`, or on `/` the same name on PATH.
fn find_tool(root: &SysRoot, inside: &str) -> Option<PathBuf> {
    if let Some(p) = in_root_file(root, inside) {
        return runnable(root, Path::new(inside)).then_some(p);
    }
    if root.is_host() {
        let name = Path::new(inside).file_name()?;
        return on_path(root, name);
    }
    None
}

pub fn find_ctl(root: &SysRoot, host: &HostSpec) -> Option<PathBuf> {
    host.ctl.as_deref().and_then(|c| find_tool(root, c))
}

/// How a command of the managed system runs: on `/` as it is; under any
/// other root *inside* that root (`chroot ROOT PATH`, as rpm runs
/// scriptlets), with `UPKEEP_ROOT=/` and the root's own PATH, never on the
/// live machine. `real` is the command's path as found under the root.
fn in_root_command(root: &SysRoot, real: &Path) -> Result<Command> {
    if root.is_host() {
        let mut c = Command::new(real);
        c.env("UPKEEP_ROOT", "/");
        return Ok(c);
    }
    let rest = real.strip_prefix(root.dir()).map_err(|_| {
        Error::Refused(format!(
            "{} is not inside {}: not running it",
            real.display(),
            root.dir().display()
        ))
    })?;
    let inside = Path::new("/").join(rest);
    // The machine's chroot, also when PATH lacks the sbin directories.
    let chroot = which::which("chroot")
        .or_else(|_| which::which_in("chroot", Some("/usr/sbin:/usr/bin:/sbin:/bin"), "/"))
        .map_err(|e| {
            Error::Failed(format!(
                "chroot is needed to run {} inside {} and was not found ({e}); nothing ran",
                inside.display(),
                root.dir().display()
            ))
        })?;
    let mut c = Command::new(chroot);
    c.arg(root.dir())
        .arg(&inside)
        .env("UPKEEP_ROOT", "/")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .current_dir("/");
    Ok(c)
}

/// What chroot's 125-127 mean, for a person.
fn chroot_failure(root: &SysRoot, ctl: &Path, code: i32) -> Option<String> {
    (!root.is_host() && (125..=127).contains(&code)).then(|| {
        format!(
            "{} could not be started inside {} (chroot exit {code}): the root lacks what it needs to run it (its interpreter or libraries), and upkeep never runs it on this machine instead.",
            ctl.display(),
            root.dir().display()
        )
    })
}

/// Runs the host's control command with `args` inside the root (see
/// `in_root_command`), its output streamed to ours (to stderr when stdout
/// carries JSON), and returns its exit code. What ran is logged to
/// `ROOT/var/log/upkeep/upkeep.log`.
pub fn run_ctl(root: &SysRoot, ctl: &Path, args: &[String], output_to_stderr: bool) -> Result<i32> {
    let mut cmd = in_root_command(root, ctl)?;
    cmd.args(args).stdin(Stdio::null());
    if output_to_stderr {
        let fd = std::io::stderr().lock();
        use std::os::fd::AsFd;
        let owned = fd
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::Failed(e.to_string()))?;
        cmd.stdout(Stdio::from(owned));
    }
    let status = cmd
        .status()
        .map_err(|e| Error::Failed(format!("cannot run {}: {e}", ctl.display())))?;
    let code = status.code().unwrap_or(128 + 9);
    if let Some(why) = chroot_failure(root, ctl, code) {
        eprintln!("upkeep: {why}");
    }
    log_line(
        root,
        &format!("ran {} {}: exit {code}", ctl.display(), args.join(" ")),
    );
    Ok(code)
}

/// `ctl status SERVICE`, inside the root, says it is running (a `run:` line).
pub fn service_running(root: &SysRoot, ctl: &Path, service: &str) -> Result<bool> {
    let out = in_root_command(root, ctl)?
        .args(["status", service])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Failed(format!("cannot run {}: {e}", ctl.display())))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.starts_with("run:") && l.contains(service)))
}

/// Appends a line to upkeep's log; logging never fails a command.
pub fn log_line(root: &SysRoot, line: &str) {
    let file = safe::create_dir_all(root, "/var/log/upkeep", 0o755)
        .and_then(|d| d.open_append(std::ffi::OsStr::new("upkeep.log"), 0o640));
    if let Ok(mut f) = file {
        let _ = writeln!(
            f,
            "{} {line}",
            upkeep_sys::state::utc_stamp(upkeep_sys::state::now())
        );
    }
}

/// Sends a warning to the system log (`/dev/log`) when acting on the real
/// system; a test root has no syslog of its own. Never fails.
pub fn syslog(root: &SysRoot, tag: &str, msg: &str) {
    if !root.is_host() {
        return;
    }
    if let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() {
        // facility user (1), severity warning (4)
        let _ = sock.send_to(format!("<12>{tag}: {msg}").as_bytes(), "/dev/log");
    }
}
