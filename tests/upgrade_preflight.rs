//! `upkeep-upgrade check`: the manifest's preflight against real
//! PostgreSQL 15 servers (throwaway clusters on loopback, one `ssl = on`
//! with a self-signed certificate, one `ssl = off`), the product's log and
//! `--log-file`, and the local package database of the throwaway root.
#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
#[path = "../crates/dbcheck/tests/support/pgcluster.rs"]
mod pgcluster;

use common::{json, stdout, upkeep, TestRoot};
use pgcluster::Cluster;
use std::process::Command;

fn now_utc() -> String {
    let o = Command::new("date")
        .args(["-u", "+%F %T"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn tegu_root(port: u16, sslmode: &str) -> TestRoot {
    let r = TestRoot::new();
    r.write(
        "opt/tegu/etc/tegu.conf",
        format!(
            "db_host = \"127.0.0.1\"\ndb_port = {port}\ndb_user = \"postgres\"\ndb_name = \"postgres\"\ndb_sslmode = \"{sslmode}\"\n"
        ),
        0o640,
    );
    r.write(
        "opt/tegu/log/tegu.log",
        "2021-07-08 14:13:29 [DEBUG] failed to connect to `host=x user=postgres database=tegu_mailboxes`: tls error (server refused TLS connection)\n",
        0o640,
    );
    r
}

fn contrib_installed(r: &TestRoot, yes: bool) {
    let status = if yes {
        "install ok installed"
    } else {
        "deinstall ok config-files"
    };
    r.write(
        "var/lib/dpkg/status",
        format!("Package: postgresql-contrib\nStatus: {status}\nPriority: optional\nSection: database\nMaintainer: x\nArchitecture: all\nVersion: 15+248\nDescription: x\n\n"),
        0o644,
    );
}

fn check(r: &TestRoot, extra: &[&str]) -> std::process::Output {
    let root = r.root().to_str().expect("utf8").to_string();
    let mut args = vec!["check", "tegu", "--root", &root];
    args.extend_from_slice(extra);
    upkeep("upkeep-upgrade", &args)
}

#[test]
fn tls_required_against_ssl_off_is_refused_and_everything_else_is_reported_too() {
    let off = Cluster::start(false);
    let on = Cluster::start(true);

    // TEGU's config requires TLS; the server runs with ssl = off.
    let r = tegu_root(off.port, "require");
    contrib_installed(&r, true);
    let o = check(&r, &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.contains("failed to connect to `host=127.0.0.1 user=postgres database=postgres`: tls error (server refused TLS connection)"),
        "{out}"
    );
    assert!(
        out.contains("`ssl = on`") && out.contains("db_sslmode in /opt/tegu/etc/tegu.conf"),
        "{out}"
    );
    // The other checks are reported in the same run (the old log line passes).
    assert!(
        out.contains("extensions") && out.contains("server-version"),
        "{out}"
    );
    assert!(out.contains("no recent line matches"), "{out}");

    // --db-url wins over the config, sslmode included: TLS to the ssl=on server.
    let url = on.url("postgres", "require");
    let o = check(&r, &["--db-url", &url, "--format", "json"]);
    let j = json(&o);
    assert_eq!(o.status.code(), Some(0), "{j}");
    let checks: Vec<&str> = j["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["check"].as_str().unwrap_or_default())
        .collect();
    for c in [
        "tls",
        "connect",
        "extensions",
        "server-version",
        "contrib-package",
        "log",
    ] {
        assert!(checks.contains(&c), "{c} missing: {j}");
    }

    // On this host without postgresql-contrib in the package database: named.
    contrib_installed(&r, false);
    let o = check(&r, &["--db-url", &url]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains("apt-get install postgresql-contrib"), "{out}");
    contrib_installed(&r, true);

    // A recent matching line in TEGU's log refuses, quoting line and time.
    let t = now_utc();
    let line = format!("{t} [DEBUG] failed to connect to `host=127.0.0.1 user=tegu database=tegu_mailboxes`: tls error (server refused TLS connection)");
    r.write(
        "opt/tegu/log/tegu.log",
        format!("{t} [INFO] up\n{line}\n"),
        0o640,
    );
    let o = check(&r, &["--db-url", &url]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains(&format!("line 2 at {t} UTC: {line}")), "{out}");

    // --log-file adds a log (a journal export): its matching line refuses too.
    r.write("opt/tegu/log/tegu.log", "", 0o640);
    let extra = r.path("journal.txt");
    std::fs::write(
        &extra,
        format!("{t} tegu[1]: failed to connect to `h`: tls error (boom)\n"),
    )
    .expect("write");
    let o = check(
        &r,
        &[
            "--db-url",
            &url,
            "--log-file",
            extra.to_str().expect("utf8"),
        ],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains("journal.txt line 1"), "{out}");
    let o = check(
        &r,
        &["--db-url", &url, "--log-file", "/nonexistent/upkeep.log"],
    );
    assert_eq!(o.status.code(), Some(2));

    // A declared extension the server lacks refuses (manifest override).
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plugins/tegu.toml"))
            .expect("manifest")
            .replace(
                "extensions = [\"pg_trgm\", \"pgcrypto\"]",
                "extensions = [\"pg_trgm\", \"upkeep_missing_ext\"]",
            );
    assert!(manifest.contains("upkeep_missing_ext"));
    r.write("etc/upkeep/plugins.d/tegu.toml", manifest, 0o644);
    let o = check(&r, &["--db-url", &url]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains("does not list upkeep_missing_ext"), "{out}");

    // A malformed --db-url is a usage error.
    let o = check(&r, &["--db-url", "mysql://x"]);
    assert_eq!(o.status.code(), Some(2));
}
