//! A throwaway PostgreSQL 15 cluster for tests: `initdb` in a temporary
//! directory, started by `pg_ctl` as the postgres user on a free loopback
//! port, with `ssl = on` (a self-signed certificate made by openssl) or
//! `ssl = off`. Stopped (`-m immediate`) and removed on drop. Needs root
//! and Debian's postgresql package (scripts/test installs it).
//!
//! Other crates' tests use it with
//! `#[path = "…/crates/dbcheck/tests/support/pgcluster.rs"] mod pgcluster;`.
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // tests build their clusters by path

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub ssl: bool,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn as_postgres(args: &[&str]) -> std::process::Output {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .expect("run runuser");
    assert!(
        out.status.success(),
        "{args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn chown_postgres(p: &Path) {
    let st = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(p)
        .status()
        .expect("chown");
    assert!(st.success());
}

pub fn bin(name: &str) -> String {
    format!("{PG_BIN}/{name}")
}

impl Cluster {
    /// Starts a cluster; `ssl` chooses `ssl = on` or `ssl = off`.
    pub fn start(ssl: bool) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("upkeep-pg-")
            .tempdir()
            .expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir(&sock).expect("mkdir sock");
        chown_postgres(dir.path());
        as_postgres(&[
            &bin("initdb"),
            "-D",
            data.to_str().expect("utf8"),
            "--auth=trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ]);
        let mut conf = String::from(
            "listen_addresses = '127.0.0.1'\nfsync = off\nlog_min_messages = warning\n",
        );
        if ssl {
            let crt = data.join("server.crt");
            let key = data.join("server.key");
            let st = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args(["-subj", "/CN=localhost", "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&crt)
                .output()
                .expect("openssl");
            assert!(
                st.status.success(),
                "{}",
                String::from_utf8_lossy(&st.stderr)
            );
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
            chown_postgres(&data);
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        } else {
            conf.push_str("ssl = off\n");
        }
        let mut f = std::fs::read_to_string(data.join("postgresql.conf")).expect("conf");
        f.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), f).expect("write conf");
        // A few tries: the free port may be taken between probe and start.
        for _ in 0..5 {
            let port = free_port();
            let opts = format!("-p {port} -k {}", sock.display());
            let out = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin("pg_ctl"))
                .args([
                    "-D",
                    data.to_str().expect("utf8"),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    &opts,
                ])
                .arg("-l")
                .arg(dir.path().join("server.log"))
                .arg("start")
                .output()
                .expect("pg_ctl");
            if out.status.success() {
                return Cluster { dir, port, ssl };
            }
        }
        let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
        panic!("the throwaway PostgreSQL cluster did not start:\n{log}");
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB?sslmode=MODE`
    pub fn url(&self, db: &str, sslmode: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{db}?sslmode={sslmode}",
            self.port
        )
    }

    /// Runs SQL with psql over the socket directory, as postgres.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let sock = self.dir.path().join("sock");
        let out = as_postgres(&[
            &bin("psql"),
            "-h",
            sock.to_str().expect("utf8"),
            "-p",
            &self.port.to_string(),
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
