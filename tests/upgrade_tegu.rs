//! `upkeep-upgrade plan` for TEGU (the manifest's `[overlay]`): versions
//! `major.minor.build`, build-only and minor upgrades reported apart, every
//! downgrade refused (build-only too), the archive checked, the preflight
//! run against a real PostgreSQL 15 (throwaway cluster on loopback), and
//! nothing written.
#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
#[path = "../crates/dbcheck/tests/support/pgcluster.rs"]
mod pgcluster;

use common::{json, stderr, stdout, upkeep, TestRoot};
use pgcluster::Cluster;
use std::path::{Path, PathBuf};

fn elf_x86_64(msg: &str) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    h[16] = 2;
    h[18] = 62;
    h[20] = 1;
    h.extend_from_slice(msg.as_bytes());
    h
}

/// `tegu-ent-vVERSION-ARCH.tar.gz` with VERSION (saying `says`), bin/ and sbin/.
fn archive(dir: &Path, version: &str, arch: &str, says: &str) -> PathBuf {
    let top = format!("tegu-ent-v{version}-{arch}");
    let path = dir.join(format!("{top}.tar.gz"));
    let f = std::fs::File::create(&path).expect("create");
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        f,
        flate2::Compression::fast(),
    ));
    let mut add = |name: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, format!("{top}/{name}"), data)
            .expect("append");
    };
    add("VERSION", format!("{says}\n").as_bytes(), 0o644);
    add(
        "bin/tegu-admin",
        format!("#!/bin/sh\necho {version}\n").as_bytes(),
        0o755,
    );
    add("sbin/tegu", &elf_x86_64(version), 0o755);
    b.into_inner().expect("tar").finish().expect("gz");
    path
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let mut es: Vec<_> = std::fs::read_dir(d).expect("read_dir").flatten().collect();
        es.sort_by_key(|e| e.file_name());
        for e in es {
            let p = e.path();
            let rel = p.strip_prefix(base).expect("prefix").display().to_string();
            if e.file_type().expect("type").is_dir() {
                out.push((rel, vec![]));
                walk(base, &p, out);
            } else {
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn plan_tells_build_from_minor_refuses_every_downgrade_and_writes_nothing() {
    let db = Cluster::start(true);
    let r = TestRoot::new();
    r.write("opt/tegu/VERSION", "1.19.44\n", 0o644);
    r.write("opt/tegu/bin/tegu-admin", "#!/bin/sh\n", 0o755);
    r.write("opt/tegu/sbin/tegu", elf_x86_64("1.19.44"), 0o755);
    r.write("opt/tegu/data/keep.me", "mail", 0o600);
    // The database is on this host (loopback): its contrib package is checked too.
    r.write(
        "var/lib/dpkg/status",
        "Package: postgresql-contrib\nStatus: install ok installed\nArchitecture: all\nVersion: 15+248\nDescription: x\n\n",
        0o644,
    );
    r.write(
        "opt/tegu/etc/tegu.conf",
        format!(
            "db_host = \"127.0.0.1\"\ndb_port = {}\ndb_user = \"postgres\"\ndb_name = \"postgres\"\ndb_sslmode = \"require\"\n",
            db.port
        ),
        0o640,
    );
    let arch = std::env::consts::ARCH;
    let a = tempfile::tempdir().expect("tempdir");
    let root = r.root().to_str().expect("utf8").to_string();
    let before = snapshot(r.root());
    let plan = |archive: &Path| {
        upkeep(
            "upkeep-upgrade",
            &[
                "plan",
                "tegu",
                archive.to_str().expect("utf8"),
                "--root",
                &root,
                "--format",
                "json",
            ],
        )
    };

    // Build-only: allowed, no schema change, backup not mandatory.
    let o = plan(&archive(a.path(), "1.19.45", arch, "1.19.45"));
    let j = json(&o);
    assert_eq!(o.status.code(), Some(0), "{j}\n{}", stderr(&o));
    assert_eq!(j["from"], "1.19.44");
    assert_eq!(j["to"], "1.19.45");
    assert_eq!(j["change"]["kind"], "build");
    assert_eq!(j["change"]["backup_mandatory"], false);
    assert!(j["change"]["summary"]
        .as_str()
        .expect("s")
        .starts_with("build-only upgrade"));
    let steps = j["steps"].as_array().expect("steps");
    let phases: Vec<&str> = steps
        .iter()
        .map(|s| s["phase"].as_str().expect("p"))
        .collect();
    for p in ["prepare", "stop", "swap", "start", "verify"] {
        assert!(phases.contains(&p), "{p}: {j}");
    }
    let commands: Vec<&str> = steps
        .iter()
        .flat_map(|s| s["commands"].as_array().expect("c").iter())
        .map(|c| c.as_str().expect("c"))
        .collect();
    for c in [
        "systemctl stop tegu.service",
        "systemctl start tegu.service",
        "systemctl is-active --quiet tegu.service",
    ] {
        assert!(commands.contains(&c), "{c}: {commands:?}");
    }
    // The dump reads the database TEGU's config names (no password shown).
    let dump = format!(
        "pg_dump -Fc -f {{backup}}/database.dump --dbname=postgres://postgres@127.0.0.1:{}/postgres?sslmode=require",
        db.port
    );
    assert!(commands.contains(&dump.as_str()), "{commands:?}");
    assert!(
        commands.iter().any(|c| c.starts_with("pg_restore --list")),
        "{commands:?}"
    );
    let touched: Vec<&str> = steps
        .iter()
        .flat_map(|s| s["touches"].as_array().expect("t").iter())
        .map(|c| c.as_str().expect("t"))
        .collect();
    assert!(touched.contains(&"/opt/tegu/sbin/tegu"), "{touched:?}");
    assert!(touched.contains(&"/opt/tegu/bin/tegu-admin"), "{touched:?}");
    assert!(touched.contains(&"/opt/tegu/sbin/tegu = cap_net_bind_service=+eip"));
    let kept: Vec<&str> = j["kept"]
        .as_array()
        .expect("kept")
        .iter()
        .map(|k| k.as_str().expect("k"))
        .collect();
    assert!(
        kept.contains(&"data/keep.me") && kept.contains(&"etc/tegu.conf"),
        "{kept:?}"
    );
    // The preflight ran against the real server, over TLS.
    let pf = j["preflight"].as_array().expect("preflight");
    assert!(
        pf.iter()
            .any(|f| f["check"] == "extensions" && f["ok"] == true),
        "{j}"
    );
    assert!(
        pf.iter().any(|f| f["check"] == "disk" && f["ok"] == true),
        "{j}"
    );

    // Minor: the backup is mandatory, and the text says so.
    let minor = archive(a.path(), "1.20.0", arch, "1.20.0");
    let j = json(&plan(&minor));
    assert_eq!(j["change"]["kind"], "minor");
    assert_eq!(j["change"]["backup_mandatory"], true);
    let o = upkeep(
        "upkeep-upgrade",
        &[
            "plan",
            "tegu",
            minor.to_str().expect("utf8"),
            "--root",
            &root,
        ],
    );
    assert!(stdout(&o).contains("minor upgrade 1.19.44 -> 1.20.0: the database schema may change, the database backup is mandatory"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("database backup (mandatory"),
        "{}",
        stdout(&o)
    );

    // Downgrades: refused, the build-only one too.
    for (v, kind) in [
        ("1.19.43", "build"),
        ("1.18.99", "minor"),
        ("0.99.0", "major"),
    ] {
        let o = plan(&archive(a.path(), v, arch, v));
        let j = json(&o);
        assert_eq!(o.status.code(), Some(3), "{v}: {j}");
        assert_eq!(j["refused"]["rule"], "downgrade", "{j}");
        let why = j["refused"]["message"].as_str().expect("refused");
        assert!(why.contains(&format!("({kind} downgrade)")), "{why}");
        assert!(why.contains("backup"), "{why}");
    }
    // The same version again is no upgrade.
    assert_eq!(
        plan(&archive(a.path(), "1.19.44", arch, "1.19.44"))
            .status
            .code(),
        Some(3)
    );

    // Another architecture, by name: refused before anything else.
    let o = plan(&archive(a.path(), "1.19.46", "aarch64", "1.19.46"));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // The name and the archive's own version disagree: malformed input.
    let o = plan(&archive(a.path(), "1.19.47", arch, "1.19.99"));
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    // Not an archive name the manifest knows: usage.
    let odd = a.path().join("tegu.tar.gz");
    std::fs::copy(archive(a.path(), "1.19.48", arch, "1.19.48"), &odd).expect("copy");
    assert_eq!(plan(&odd).status.code(), Some(2));

    assert!(before == snapshot(r.root()), "plan wrote into the root");
}
