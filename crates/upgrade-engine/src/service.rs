//! Service control and the health check. Under a `--root` other than `/`
//! the manifest's commands run inside the root (`chroot ROOT CMD...`): the
//! root's own `systemctl`, never the machine's.

use crate::jsonedit;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::Command;
use std::time::{Duration, Instant};
use upkeep_engine::release::ReleaseHealth;
use upkeep_sys::{Error, Result, SysRoot};

/// Runs one service command (`{service}` expanded) for each service.
pub fn control(root: &SysRoot, argv: &[String], services: &[String]) -> Result<()> {
    for s in services {
        let args: Vec<String> = argv.iter().map(|a| a.replace("{service}", s)).collect();
        let mut cmd = if root.is_host() {
            let mut c = Command::new(&args[0]);
            c.args(&args[1..]);
            c
        } else {
            let mut c = Command::new("chroot");
            c.arg(root.dir()).args(&args);
            c
        };
        cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        let out = upkeep_sys::process::run_with_timeout(&mut cmd, None, Duration::from_secs(120))
            .map_err(|e| Error::Failed(format!("{}: {e}", args.join(" "))))?
            .ok_or_else(|| Error::Failed(format!("{}: timed out", args.join(" "))))?;
        if !out.status.success() {
            return Err(Error::Failed(format!(
                "{} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}

/// `host:port` to ask, from the configured listen address (`:8065` means
/// every address: ask loopback).
pub fn listen_address(h: &ReleaseHealth, config: &serde_json::Value) -> String {
    let v = jsonedit::get_str(config, &h.listen_from).unwrap_or(&h.default_listen);
    let v = if v.is_empty() {
        h.default_listen.as_str()
    } else {
        v
    };
    match v.rsplit_once(':') {
        Some(("", port)) | Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => v.to_string(),
    }
}

/// An HTTP answer: status code, headers (lower-cased names) and body.
type Answer = (u16, Vec<(String, String)>, String);

/// One GET.
fn get(addr: &str, path: &str) -> std::io::Result<Answer> {
    let sa = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let mut s = TcpStream::connect_timeout(&sa, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.take(1 << 20).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("not HTTP"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers, body.to_string()))
}

/// Asks until the answer is OK for `version` or the deadline passes.
pub fn wait_healthy(h: &ReleaseHealth, config: &serde_json::Value, version: &str) -> Result<()> {
    let addr = listen_address(h, config);
    let deadline = Instant::now() + Duration::from_millis(h.timeout_ms);
    loop {
        let last = match get(&addr, &h.path) {
            Ok((status, headers, body)) => match judge(h, status, &headers, &body, version) {
                Ok(()) => return Ok(()),
                Err(why) => why,
            },
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(Error::Failed(format!(
                "health check GET http://{addr}{} failed after {} ms: {last}",
                h.path, h.timeout_ms
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn judge(
    h: &ReleaseHealth,
    status: u16,
    headers: &[(String, String)],
    body: &str,
    version: &str,
) -> std::result::Result<(), String> {
    if status != 200 {
        return Err(format!("HTTP {status}"));
    }
    if let (Some(f), Some(want)) = (&h.json_field, &h.json_value) {
        let v: serde_json::Value =
            serde_json::from_str(body).map_err(|_| format!("answer is not JSON: {body}"))?;
        if jsonedit::get_str(&v, f) != Some(want.as_str()) {
            return Err(format!("{f} is not {want}: {body}"));
        }
    }
    if let Some(name) = &h.version_header {
        let n = name.to_ascii_lowercase();
        let got = headers
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if !(got == version || got.starts_with(&format!("{version}."))) {
            return Err(format!("{name} is '{got}', expected {version}"));
        }
    }
    Ok(())
}
