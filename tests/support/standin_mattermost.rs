//! A STAND-IN for the Mattermost server, for the upgrade tests (the real
//! one is a 200 MB Go binary that needs a database and minutes to start).
//! It does what upkeep-upgrade relies on, nothing more:
//! - reads `config/config.json` from its working directory (the install
//!   directory) and its own version from `VERSION` there;
//! - refuses to start when the database's schema is newer than itself,
//!   otherwise "migrates" it by writing its own version there. The
//!   database is `SqlSettings.DataSource`: a real PostgreSQL one
//!   (`postgres://`), where the version is the one row of the table
//!   `standin_schema`, or a `file:PATH` that stands in for one (the tests
//!   that need no database server);
//! - refuses to start when the release carries `FAIL_START` (a broken
//!   release, for the rollback tests), or after migrating when it carries
//!   `FAIL_AFTER_MIGRATE`; with a file `DB.slow-refusal` beside a `file:`
//!   database, takes a second to refuse a schema too new;
//! - answers every HTTP request on `ServiceSettings.ListenAddress` with
//!   `{"status":"OK"}` and `X-Version-Id: VERSION.VERSION`, like
//!   `GET /api/v4/system/ping`.

#![allow(clippy::disallowed_methods)] // a test helper, not upkeep code

use std::io::{Read, Write};
use std::net::TcpListener;

fn parts(v: &str) -> Vec<u64> {
    v.trim().split('.').filter_map(|p| p.parse().ok()).collect()
}

fn refuse_newer(schema: &str, version: &str) -> Result<(), String> {
    if !schema.trim().is_empty() && parts(schema) > parts(version) {
        return Err(format!(
            "the database schema {} is newer than this server {version}",
            schema.trim()
        ));
    }
    Ok(())
}

fn migrate_file(db: &str, version: &str) -> Result<(), String> {
    let refused = refuse_newer(&std::fs::read_to_string(db).unwrap_or_default(), version);
    if refused.is_err() && std::path::Path::new(&format!("{db}.slow-refusal")).exists() {
        // As a real server that spends a while connecting before it finds
        // the schema too new: a service manager sees it started.
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    refused?;
    std::fs::write(db, format!("{version}\n")).map_err(|e| format!("{db}: {e}"))
}

fn migrate_postgres(url: &str, version: &str) -> Result<(), String> {
    let e = |e: postgres::Error| format!("{url}: {e}");
    let mut db = postgres::Client::connect(url, postgres::NoTls).map_err(e)?;
    db.batch_execute("CREATE TABLE IF NOT EXISTS standin_schema (version text NOT NULL)")
        .map_err(e)?;
    let row = db
        .query_opt("SELECT version FROM standin_schema", &[])
        .map_err(e)?;
    let schema: String = row.map(|r| r.get(0)).unwrap_or_default();
    refuse_newer(&schema, version)?;
    let mut tx = db.transaction().map_err(e)?;
    tx.batch_execute("DELETE FROM standin_schema").map_err(e)?;
    tx.execute("INSERT INTO standin_schema VALUES ($1)", &[&version])
        .map_err(e)?;
    tx.commit().map_err(e)
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
    let migrated = if let Some(db) = ds.strip_prefix("file:") {
        migrate_file(db, &version)
    } else if ds.starts_with("postgres://") || ds.starts_with("postgresql://") {
        migrate_postgres(ds, &version)
    } else {
        Ok(())
    };
    if let Err(e) = migrated {
        eprintln!("standin: {e}");
        std::process::exit(1);
    }
    if std::path::Path::new("FAIL_AFTER_MIGRATE").exists() {
        eprintln!("standin: this release migrated the database, then broke (FAIL_AFTER_MIGRATE)");
        std::process::exit(1);
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
