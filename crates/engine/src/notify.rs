//! Telling the operator: upkeep's own log in the root, and the system log
//! when acting on the real system. Neither ever fails a command.

use std::io::Write;
use upkeep_sys::root::SysRoot;
use upkeep_sys::safe;

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
