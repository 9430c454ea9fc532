//! A STAND-IN for the Mattermost server, for the upgrade tests (the real
//! one is a 200 MB Go binary that needs a database and minutes to start).
//! It does what upkeep-upgrade relies on, nothing more:
//! - reads `config/config.json` from its working directory (the install
//!   directory) and its own version from `VERSION` there;
//! - refuses to start when the database's schema is newer than itself,
//!   otherwise "migrates" it by writing its own version there. The
//!   database is `SqlSettings.DataSource`: a `file:PATH` stands in for one
//!   (a real `postgres://` data source is left alone: the stand-in has no
//!   PostgreSQL client; upkeep-upgrade dumps it with the real pg_dump);
//! - refuses to start when the release carries `FAIL_START` (a broken
//!   release, for the rollback tests);
//! - answers every HTTP request on `ServiceSettings.ListenAddress` with
//!   `{"status":"OK"}` and `X-Version-Id: VERSION.VERSION`, like
//!   `GET /api/v4/system/ping`.

#![allow(clippy::disallowed_methods)] // a test helper, not upkeep code

use std::io::{Read, Write};
use std::net::TcpListener;

fn parts(v: &str) -> Vec<u64> {
    v.trim().split('.').filter_map(|p| p.parse().ok()).collect()
}

fn main() {
    let version = std::fs::read_to_string("VERSION")
        .unwrap_or_default()
        .trim()
        .to_string();
    let text = match std::fs::read_to_string("config/config.json") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("standin: config/config.json: {e}");
            std::process::exit(1)
        }
    };
    let config: serde_json::Value = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("standin: config/config.json: {e}");
            std::process::exit(1)
        }
    };
    if std::path::Path::new("FAIL_START").exists() {
        eprintln!("standin: this release is broken (FAIL_START)");
        std::process::exit(1);
    }
    let ds = config["SqlSettings"]["DataSource"]
        .as_str()
        .unwrap_or_default();
    if let Some(db) = ds.strip_prefix("file:") {
        let schema = std::fs::read_to_string(db).unwrap_or_default();
        if !schema.trim().is_empty() && parts(&schema) > parts(&version) {
            eprintln!(
                "standin: the database schema {} is newer than this server {version}",
                schema.trim()
            );
            std::process::exit(1);
        }
        if let Err(e) = std::fs::write(db, format!("{version}\n")) {
            eprintln!("standin: {db}: {e}");
            std::process::exit(1);
        }
    }
    let listen = config["ServiceSettings"]["ListenAddress"]
        .as_str()
        .unwrap_or(":8065");
    let addr = match listen.strip_prefix(':') {
        Some(port) => format!("127.0.0.1:{port}"),
        None => listen.to_string(),
    };
    let l = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("standin: {addr}: {e}");
            std::process::exit(1)
        }
    };
    for s in l.incoming() {
        let Ok(mut s) = s else { continue };
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let body = "{\"status\":\"OK\"}";
        let _ = write!(
            s,
            "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nX-Version-Id: {version}.{version}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    }
}
