//! `upkeep-upgrade apply tegu ARCHIVE [--phase …]` and `recover` on
//! throwaway roots: the real pg_dump and pg_restore --list against a
//! throwaway PostgreSQL 15 cluster (ssl = on, loopback), the real setcap
//! and getcap, and the real upkeep-detect. The root has no systemd (none
//! can run as PID 1 in a test): its `systemctl` is a STAND-IN shell script
//! run by busybox-static inside the root (chroot), as the manifest's
//! commands are; it keeps a service's state in /run and refuses to start
//! an `sbin/tegu` that carries the marker FAIL_START.
#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
#[path = "../crates/dbcheck/tests/support/pgcluster.rs"]
mod pgcluster;

use common::{assert_no_panic, json, stderr, stdout, upkeep, upkeep_env, TestRoot};
use pgcluster::Cluster;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const UP: &str = "upkeep-upgrade";
const CAP: &str = "cap_net_bind_service=eip";

const SYSTEMCTL: &str = r#"#!/bin/sh
# STAND-IN for systemctl (no systemd in a test root): start, stop and
# is-active for one service, its state a file in /run; every call logged
# with its time. A new sbin/tegu carrying FAIL_START does not start.
[ "$1" = is-active ] && [ "$2" = --quiet ] && set -- is-active "$3"
cmd="$1"
svc="$2"
echo "$(date +%s) $cmd $svc" >>/var/log/systemctl.log
case "$cmd" in
start)
  if grep -q FAIL_START /opt/tegu/sbin/tegu; then
    echo "$svc: start failed (stand-in: FAIL_START)" >&2
    exit 1
  fi
  touch "/run/$svc.active"
  ;;
stop) rm -f "/run/$svc.active" ;;
is-active) [ -f "/run/$svc.active" ] ;;
*) echo "stand-in systemctl: $cmd not supported" >&2; exit 1 ;;
esac
"#;

fn elf_x86_64(msg: &str) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    h[16] = 2;
    h[18] = 62;
    h[20] = 1;
    h.extend_from_slice(msg.as_bytes());
    h
}

/// `tegu-ent-vVERSION-ARCH.tar.gz`: VERSION, bin/tegu-admin, bin/tegu-new
/// (a file the install does not have yet), sbin/tegu; `sbin_extra` goes
/// into sbin/tegu (FAIL_START makes the stand-in refuse to start it).
fn archive(dir: &Path, version: &str, sbin_extra: &str) -> PathBuf {
    let arch = std::env::consts::ARCH;
    let top = format!("tegu-ent-v{version}-{arch}");
    let path = dir.join(format!("{top}.tar.gz"));
    let f = fs::File::create(&path).expect("create");
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        f,
        flate2::Compression::fast(),
    ));
    let add = |b: &mut tar::Builder<_>, name: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, format!("{top}/{name}"), data)
            .expect("append");
    };
    for d in ["", "bin/", "sbin/"] {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Directory);
        h.set_cksum();
        b.append_data(&mut h, format!("{top}/{d}"), std::io::empty())
            .expect("append");
    }
    add(&mut b, "VERSION", format!("{version}\n").as_bytes(), 0o644);
    add(
        &mut b,
        "bin/tegu-admin",
        format!("#!/bin/sh\necho {version}\n").as_bytes(),
        0o755,
    );
    add(&mut b, "bin/tegu-new", b"#!/bin/sh\n", 0o755);
    add(
        &mut b,
        "sbin/tegu",
        &elf_x86_64(&format!("{version}{sbin_extra}")),
        0o755,
    );
    b.into_inner().expect("tar").finish().expect("gz");
    path
}

struct Site {
    root: TestRoot,
    work: tempfile::TempDir,
}

/// A root with TEGU 1.19.44 installed as the vendor does (tegu-owned
/// binaries, the capability on sbin/tegu), its config pointing at `db`
/// with TLS required, the service running (stand-in).
fn site(db: &Cluster) -> Site {
    let root = TestRoot::new();
    tools(&root);
    root.write("opt/tegu/VERSION", "1.19.44\n", 0o644);
    root.write("opt/tegu/bin/tegu-admin", "#!/bin/sh\necho old\n", 0o750);
    root.write("opt/tegu/bin/local-tool", "#!/bin/sh\n", 0o755);
    root.write("opt/tegu/sbin/tegu", elf_x86_64("1.19.44"), 0o750);
    root.write("opt/tegu/data/keep.me", "mail", 0o600);
    root.write("opt/tegu/LICENSE-ENT", "licensed", 0o644);
    root.write("opt/tegu/log/tegu.log", "", 0o640);
    root.write(
        "opt/tegu/etc/tegu.conf",
        format!(
            "db_host = \"127.0.0.1\"\ndb_port = {}\ndb_user = \"postgres\"\ndb_name = \"postgres\"\ndb_sslmode = \"require\"\n",
            db.port
        ),
        0o640,
    );
    let mut passwd = fs::read_to_string(root.path("etc/passwd")).expect("passwd");
    passwd.push_str("tegu:x:990:990::/opt/tegu:/bin/sh\n");
    fs::write(root.path("etc/passwd"), passwd).expect("passwd");
    for p in ["opt/tegu/bin/tegu-admin", "opt/tegu/sbin/tegu"] {
        std::os::unix::fs::chown(root.path(p), Some(990), Some(990)).expect("chown");
    }
    setcap(&root.path("opt/tegu/sbin/tegu"));
    started(Site {
        root,
        work: tempfile::tempdir().expect("tempdir"),
    })
}

fn started(s: Site) -> Site {
    let o = Command::new("chroot")
        .arg(s.root.root())
        .args(["/usr/bin/systemctl", "start", "tegu.service"])
        .output()
        .expect("chroot");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    s
}

/// The root's own shell and tools (busybox-static), its stand-in
/// systemctl, and a dpkg database saying postgresql-contrib is installed
/// (the database is on this host, so the package is looked up too).
fn tools(root: &TestRoot) {
    let bb = Path::new("/bin/busybox");
    assert!(
        bb.exists(),
        "busybox-static is needed (scripts/test installs it)"
    );
    root.write("bin/busybox", fs::read(bb).expect("busybox"), 0o755);
    for tool in ["sh", "grep", "touch", "rm", "date", "cat"] {
        std::os::unix::fs::symlink("busybox", root.path(&format!("bin/{tool}"))).expect("ln");
    }
    root.write("usr/bin/systemctl", SYSTEMCTL, 0o755);
    fs::create_dir_all(root.path("run")).expect("run");
    root.write(
        "var/lib/dpkg/status",
        "Package: postgresql-contrib\nStatus: install ok installed\nArchitecture: all\nVersion: 15+248\nDescription: x\n\n",
        0o644,
    );
}

fn setcap(p: &Path) {
    let st = Command::new("setcap")
        .arg("cap_net_bind_service=+eip")
        .arg(p)
        .status()
        .expect("setcap");
    assert!(st.success());
}

impl Site {
    fn r(&self) -> &str {
        self.root.root().to_str().expect("utf8")
    }

    fn archive(&self, version: &str) -> String {
        archive(self.work.path(), version, "").display().to_string()
    }

    fn failing_archive(&self, version: &str) -> String {
        archive(self.work.path(), version, " FAIL_START")
            .display()
            .to_string()
    }

    fn up(&self, args: &[&str]) -> Output {
        let o = self.up_env(args, &[]);
        assert_no_panic(&o);
        o
    }

    /// Without the panic check: a crash point kills it on purpose.
    fn up_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut a = vec!["--root", self.r()];
        a.extend_from_slice(args);
        upkeep_env(UP, &a, env)
    }

    fn getcap(&self, inside: &str) -> String {
        let o = Command::new("getcap")
            .arg(self.root.path(inside))
            .output()
            .expect("getcap");
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        s.split_whitespace().nth(1).unwrap_or_default().to_string()
    }

    fn active(&self) -> bool {
        self.root.path("run/tegu.service.active").exists()
    }

    fn detected_version(&self) -> String {
        let o = upkeep("upkeep-detect", &["--root", self.r(), "--format", "json"]);
        let j = json(&o);
        let i = j["installs"]
            .as_array()
            .expect("installs")
            .iter()
            .find(|i| i["product"] == "tegu")
            .unwrap_or_else(|| panic!("no tegu: {j}"))
            .clone();
        i["version"].as_str().unwrap_or_default().to_string()
    }

    /// Every path of the install and beside it with owner, mode, content
    /// and capability; the service's state; upkeep's install record.
    fn snapshot(&self) -> Vec<String> {
        fn walk(p: &Path, base: &Path, out: &mut Vec<String>) {
            let m = fs::symlink_metadata(p).expect("stat");
            let rel = p.strip_prefix(base).expect("prefix").display().to_string();
            let content = if m.is_file() {
                format!("{:x}", fnv(&fs::read(p).expect("read")))
            } else {
                String::new()
            };
            let cap = if m.is_file() {
                let o = Command::new("getcap").arg(p).output().expect("getcap");
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string()
            } else {
                String::new()
            };
            out.push(format!(
                "{rel} {}:{} {:o} {content} {cap}",
                m.uid(),
                m.gid(),
                m.mode()
            ));
            if m.is_dir() {
                let mut names: Vec<_> = fs::read_dir(p)
                    .expect("read_dir")
                    .map(|e| e.expect("entry").path())
                    .collect();
                names.sort();
                for n in names {
                    walk(&n, base, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root.path("opt"), self.root.root(), &mut out);
        out.push(format!("active {}", self.active()));
        out.push(format!(
            "record {:?}",
            fs::read(
                self.root
                    .path("var/lib/upkeep/releases/tegu.installed.json")
            )
            .ok()
        ));
        out
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100000001b3)
    })
}

fn phases(j: &serde_json::Value) -> Vec<(String, bool)> {
    j["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| {
            (
                p["phase"].as_str().expect("phase").to_string(),
                p["changed"].as_bool().expect("changed"),
            )
        })
        .collect()
}

#[test]
fn build_then_minor_upgrade_keeps_files_sets_caps_and_detect_follows_the_record() {
    let db = Cluster::start(true);
    let s = site(&db);
    assert_eq!(s.detected_version(), "1.19.44");

    // Build-only: allowed, reported as such; the dump is taken (the
    // manifest says build_only = "take") and verified.
    let a = s.archive("1.19.45");
    let o = s.up(&["apply", "tegu", &a, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["change"]["kind"], "build", "{j}");
    assert_eq!(j["change"]["backup_mandatory"], false);
    assert_eq!(j["changed"], true);
    assert_eq!(j["installed"], "1.19.45");
    let all: Vec<(String, bool)> = ["prepare", "stop", "swap", "start", "verify"]
        .iter()
        .map(|p| (p.to_string(), true))
        .collect();
    assert_eq!(phases(&j), all, "{j}");
    let dump = PathBuf::from(j["backup"].as_str().expect("backup")).join("database.dump");
    let listed = Command::new(pgcluster::bin("pg_restore"))
        .arg("--list")
        .arg(&dump)
        .output()
        .expect("pg_restore");
    assert!(listed.status.success() && !listed.stdout.is_empty());

    // The binaries are the new ones; sbin/tegu has its capability back;
    // owner and mode of the replaced files kept; files the archive does
    // not carry kept; the version file untouched (the vendor's copy does
    // not write it): the record is the truth.
    let new = fs::read(s.root.path("opt/tegu/sbin/tegu")).expect("read");
    assert_eq!(new, elf_x86_64("1.19.45"));
    assert_eq!(s.getcap("opt/tegu/sbin/tegu"), CAP);
    let m = fs::metadata(s.root.path("opt/tegu/sbin/tegu")).expect("stat");
    assert_eq!((m.uid(), m.mode() & 0o7777), (990, 0o750));
    assert_eq!(
        fs::read_to_string(s.root.path("opt/tegu/bin/tegu-admin")).expect("read"),
        "#!/bin/sh\necho 1.19.45\n"
    );
    assert!(s.root.path("opt/tegu/bin/tegu-new").exists());
    assert_eq!(
        fs::read_to_string(s.root.path("opt/tegu/bin/local-tool")).expect("read"),
        "#!/bin/sh\n"
    );
    assert_eq!(
        fs::read_to_string(s.root.path("opt/tegu/data/keep.me")).expect("read"),
        "mail"
    );
    assert_eq!(
        fs::read_to_string(s.root.path("opt/tegu/VERSION")).expect("read"),
        "1.19.44\n"
    );
    assert!(s.active());
    assert!(!s.root.path("opt/.tegu.upkeep-stage").exists());
    assert!(!s.root.path("opt/.tegu.upkeep-old").exists());
    assert_eq!(s.detected_version(), "1.19.45");

    // The same archive again: nothing to do, nothing changed.
    let before = s.snapshot();
    let o = s.up(&["apply", "tegu", &a, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["changed"], false);
    assert_eq!(s.snapshot(), before);

    // Downgrades, the build-only one too: refused, nothing changed.
    for v in ["1.19.44", "1.18.99"] {
        let o = s.up(&["apply", "tegu", &s.archive(v)]);
        assert_eq!(o.status.code(), Some(3), "{v}: {}", stderr(&o));
        assert!(stderr(&o).contains("downgrade"), "{}", stderr(&o));
        assert_eq!(s.snapshot(), before, "{v}");
    }

    // Minor: the backup is mandatory: --skip-db-backup is refused.
    let minor = s.archive("1.20.0");
    let o = s.up(&["apply", "tegu", &minor, "--skip-db-backup"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("mandatory"), "{}", stderr(&o));
    assert_eq!(s.snapshot(), before);
    let o = s.up(&["apply", "tegu", &minor]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("minor upgrade 1.19.45 -> 1.20.0: the database schema may change"),
        "{}",
        stdout(&o)
    );
    assert_eq!(s.detected_version(), "1.20.0");
    assert_eq!(s.getcap("opt/tegu/sbin/tegu"), CAP);

    // Someone copies another sbin/tegu over by hand: the record no longer
    // speaks, detect reads the version file again.
    fs::write(s.root.path("opt/tegu/sbin/tegu"), elf_x86_64("hand-copied")).expect("write");
    assert_eq!(s.detected_version(), "1.19.44");
}

#[test]
fn phases_one_at_a_time_in_order_each_idempotent() {
    let db = Cluster::start(true);
    let s = site(&db);
    let a = s.archive("1.19.45");
    let phase = |p: &str| s.up(&["apply", "tegu", &a, "--phase", p, "--format", "json"]);

    // Swap before prepare: refused, nothing changed.
    let before = s.snapshot();
    let o = phase("swap");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("run --phase prepare first"),
        "{}",
        stderr(&o)
    );
    assert_eq!(s.snapshot(), before);

    let o = phase("prepare");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(phases(&json(&o)), [("prepare".to_string(), true)]);
    assert!(s.root.path("opt/.tegu.upkeep-stage/sbin/tegu").exists());
    assert!(s.active(), "prepare stops nothing");
    let o = phase("prepare");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["changed"], false);

    // Swap before stop: refused, naming the phase missing.
    let o = phase("swap");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("run --phase stop first"),
        "{}",
        stderr(&o)
    );
    // Another archive while this run is under way: refused.
    let o = s.up(&["apply", "tegu", &s.archive("1.19.46"), "--phase", "stop"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("under way"), "{}", stderr(&o));

    let o = phase("stop");
    assert_eq!(phases(&json(&o)), [("stop".to_string(), true)]);
    assert!(!s.active());
    let o = phase("stop");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(phases(&json(&o)), [("stop".to_string(), false)]);
    assert_eq!(json(&o)["changed"], false);

    let o = phase("swap");
    assert_eq!(phases(&json(&o)), [("swap".to_string(), true)]);
    assert_eq!(s.getcap("opt/tegu/sbin/tegu"), CAP);
    assert!(!s.active(), "swap starts nothing");
    assert_eq!(json(&phase("swap"))["changed"], false);
    let o = phase("start");
    assert_eq!(phases(&json(&o)), [("start".to_string(), true)]);
    assert!(s.active());
    let o = phase("verify");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["installed"], "1.19.45");
    assert!(!s.root.path("opt/.tegu.upkeep-stage").exists());
    // After the run, every phase of the same archive is a no-op.
    for p in ["prepare", "stop", "swap", "start", "verify"] {
        let o = phase(p);
        assert_eq!(o.status.code(), Some(0), "{p}: {}", stderr(&o));
        assert_eq!(json(&o)["changed"], false, "{p}");
    }
    assert!(s.active());
    assert_eq!(s.detected_version(), "1.19.45");

    // Each phase's begin and end in upkeep's log, with nanoseconds: a
    // fleet's order can be told from the nodes' logs.
    let log = fs::read_to_string(s.root.path("var/log/upkeep/upkeep.log")).expect("log");
    let begun = |p: &str| {
        log.lines()
            .find(|l| l.contains(&format!("phase {p} begin t=")))
            .and_then(|l| l.rsplit_once("t="))
            .and_then(|(_, t)| t.parse::<u128>().ok())
            .unwrap_or_else(|| panic!("{p}: {log}"))
    };
    assert!(begun("stop") < begun("swap") && begun("swap") < begun("start"));

    // A minor upgrade whose dump another node of the fleet took: none
    // here, said so.
    let o = s.up(&[
        "apply",
        "tegu",
        &s.archive("1.20.0"),
        "--db-backup-by",
        "n1",
        "--skip-db-backup",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["change"]["kind"], "minor");
    assert!(j["backup"].is_null(), "{j}");
    assert_eq!(j["db_backup_by"], "n1");
    assert_eq!(s.detected_version(), "1.20.0");

    // --phase on a product without phases is a usage error.
    let o = s.up(&["apply", "mattermost", &a, "--phase", "stop"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // Dry run: nothing changed.
    let before = s.snapshot();
    let o = s.up(&[
        "apply",
        "tegu",
        &s.archive("1.21.0"),
        "--dry-run",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(
        (j["dry_run"].clone(), j["changed"].clone()),
        (true.into(), true.into()),
        "it would change"
    );
    // A later phase, dry: what it would do, even before prepare ran.
    let o = s.up(&[
        "apply",
        "tegu",
        &s.archive("1.21.0"),
        "--phase",
        "swap",
        "--dry-run",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(s.snapshot(), before);
}

#[test]
fn rollback_puts_back_exactly_what_the_last_upgrade_replaced() {
    let db = Cluster::start(true);
    let s = site(&db);
    let before = s.snapshot();
    let o = s.up(&["rollback", "tegu", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["rolled_back"], false, "nothing to roll back yet");
    let o = s.up(&["apply", "tegu", &s.archive("1.19.45")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(s.detected_version(), "1.19.45");
    let o = s.up(&["rollback", "tegu", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(
        (j["rolled_back"].clone(), j["to"].clone()),
        (true.into(), "1.19.44".into())
    );
    // Exactly as before the upgrade: the old inodes back (content, owner,
    // mode, capability), the added file gone, no record, service active.
    assert_eq!(s.snapshot(), before);
    assert_eq!(s.detected_version(), "1.19.44");
    let o = s.up(&["rollback", "tegu", "--format", "json"]);
    assert_eq!(
        json(&o)["rolled_back"],
        false,
        "a second rollback does nothing"
    );
    assert_eq!(s.snapshot(), before);
    // A start that fails during a rollback: the rollback is undone, the
    // upgraded release stays (and the kept previous one too).
    let o = s.up(&["apply", "tegu", &s.archive("1.19.45")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let upgraded = s.snapshot();
    let systemctl = fs::read_to_string(s.root.path("usr/bin/systemctl")).expect("read");
    fs::write(
        s.root.path("usr/bin/systemctl"),
        systemctl.replace(
            "start)\n",
            "start)\n  [ -f /usr/bin/systemctl.fail ] && exit 1\n",
        ),
    )
    .expect("write");
    fs::write(s.root.path("usr/bin/systemctl.fail"), "").expect("write");
    let o = s.up(&["rollback", "tegu"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // Every start refused: even the undo could not start it again; once
    // starts work, recover finishes the undo.
    fs::remove_file(s.root.path("usr/bin/systemctl.fail")).expect("rm");
    let o = s.up(&["recover"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(s.snapshot(), upgraded);
    assert_eq!(s.detected_version(), "1.19.45");

    // An upgrade after it that fails and is undone: a rollback then (what
    // a fleet tool runs on a failed node) has nothing to do; it never
    // goes back past the release that runs.
    let o = s.up(&["apply", "tegu", &s.failing_archive("1.19.46")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = s.up(&["rollback", "tegu", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["rolled_back"], false, "{}", stdout(&o));
    assert_eq!(s.snapshot(), upgraded);
    assert_eq!(s.detected_version(), "1.19.45");
}

#[test]
fn a_failed_start_rolls_back_binaries_caps_and_the_service() {
    let db = Cluster::start(true);
    let s = site(&db);
    let before = s.snapshot();
    let o = s.up(&["apply", "tegu", &s.failing_archive("1.19.45")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("undone"), "{}", stderr(&o));
    assert_eq!(s.snapshot(), before, "the old install, exactly");
    assert_eq!(s.getcap("opt/tegu/sbin/tegu"), CAP);
    assert!(s.active(), "started again");
    assert_eq!(s.detected_version(), "1.19.44");
    // Also when start is its own phase, after the others ran apart.
    let a = s.failing_archive("1.19.46");
    for p in ["prepare", "stop", "swap"] {
        let o = s.up(&["apply", "tegu", &a, "--phase", p]);
        assert_eq!(o.status.code(), Some(0), "{p}: {}", stderr(&o));
    }
    let o = s.up(&["apply", "tegu", &a, "--phase", "start"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(s.snapshot(), before, "the old install, exactly");
    let o = s.up(&["recover"]);
    assert_eq!(stdout(&o), "", "nothing left to recover");
}

/// SIGKILL at every step of the journal (and around it), then `recover`:
/// the old install exactly as it was, or the new one complete (digests,
/// capability, record, service); never a mix.
#[test]
fn sigkill_at_every_step_then_recover_leaves_old_or_new() {
    let db = Cluster::start(true);
    let mut points: Vec<String> = vec!["journal:begun".into()];
    points.extend((0..20).map(|i| format!("journal:step{i}")));
    points.extend(["journal:done".into(), "overlay:committing".into()]);
    let (mut old, mut new) = (0, 0);
    for point in &points {
        let s = site(&db);
        let before = s.snapshot();
        let a = s.archive("1.19.45");
        let o = s.up_env(&["apply", "tegu", &a], &[("UPKEEP_CRASH_AT", point)]);
        if o.status.code() == Some(0) && point.starts_with("journal:step") {
            continue; // no such step: the run went through
        }
        assert_eq!(o.status.code(), None, "{point}: not killed: {}", stderr(&o));
        let o = s.up(&["recover"]);
        assert_eq!(o.status.code(), Some(0), "{point}: {}", stderr(&o));
        assert!(s.active(), "{point}: the service runs");
        if fs::read(s.root.path("opt/tegu/sbin/tegu")).expect("read") == elf_x86_64("1.19.44") {
            old += 1;
            assert_eq!(s.snapshot(), before, "{point}: old, exactly");
            assert_eq!(s.detected_version(), "1.19.44");
        } else {
            new += 1;
            assert_eq!(
                fs::read(s.root.path("opt/tegu/sbin/tegu")).expect("read"),
                elf_x86_64("1.19.45"),
                "{point}"
            );
            assert_eq!(
                fs::read_to_string(s.root.path("opt/tegu/bin/tegu-admin")).expect("read"),
                "#!/bin/sh\necho 1.19.45\n",
                "{point}"
            );
            assert!(s.root.path("opt/tegu/bin/tegu-new").exists(), "{point}");
            assert_eq!(s.getcap("opt/tegu/sbin/tegu"), CAP, "{point}");
            assert_eq!(s.detected_version(), "1.19.45", "{point}");
        }
        assert!(!s.root.path("opt/.tegu.upkeep-stage").exists(), "{point}");
        assert!(!s.root.path("opt/.tegu.upkeep-old").exists(), "{point}");
        let o = s.up(&["recover"]);
        assert_eq!(
            stdout(&o),
            "",
            "{point}: a second recover has nothing to do"
        );
    }
    assert!(old >= 8 && new >= 2, "old {old}, new {new}");
}

/// The example root and archive of the README, copied: git keeps no file
/// capabilities, so the copy gets the one a real install has with the
/// real setcap; the example's database host does not exist, so --db-url
/// points the preflight and the dump at the test's server.
#[test]
fn the_example_root_upgrades_with_the_example_archive_and_db_url() {
    let db = Cluster::start(true);
    let root = TestRoot::new();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let st = Command::new("cp")
        .arg("-a")
        .arg(examples.join("tegu/."))
        .arg(root.root())
        .status()
        .expect("cp");
    assert!(st.success());
    tools(&root);
    setcap(&root.path("opt/tegu/sbin/tegu"));
    let s = started(Site {
        root,
        work: tempfile::tempdir().expect("tempdir"),
    });
    let a = examples.join("tegu-ent-v3.2.1046-x86_64.tar.gz");
    let a = a.to_str().expect("utf8");
    // Without --db-url the example's database is unreachable: refused
    // before anything changes.
    let before = s.snapshot();
    let o = s.up(&["apply", "tegu", a]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(s.snapshot(), before);
    let url = db.url("postgres", "require");
    let o = s.up(&["apply", "tegu", a, "--db-url", &url, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["change"]["kind"], "build", "{j}");
    assert_eq!(j["installed"], "3.2.1046");
    assert!(PathBuf::from(j["backup"].as_str().expect("backup"))
        .join("database.dump")
        .exists());
    assert_eq!(s.getcap("opt/tegu/sbin/tegu"), CAP);
    assert!(s.root.path("opt/tegu/LICENSE-ENT").exists());
    assert!(s.root.path("opt/tegu/log/tegu.log").exists());
    assert_eq!(s.detected_version(), "3.2.1046");
}

/// A recent log line matching the manifest's patterns refuses the
/// upgrade before anything changes, quoting the line.
#[test]
fn a_recent_tls_error_in_the_log_refuses_apply_with_nothing_changed() {
    let db = Cluster::start(true);
    let s = site(&db);
    let now = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S"])
        .output()
        .expect("date");
    let line = format!(
        "{} [DEBUG] failed to connect to `host=10.0.0.1 user=postgres database=tegu_mailboxes`: tls error (server refused TLS connection)\n",
        String::from_utf8_lossy(&now.stdout).trim()
    );
    let log = s.work.path().join("journal.txt");
    fs::write(&log, &line).expect("write");
    let before = s.snapshot();
    let a = s.archive("1.19.45");
    let o = s.up(&[
        "apply",
        "tegu",
        &a,
        "--log-file",
        log.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("tls error (server refused TLS connection)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(s.snapshot(), before);
    assert!(s.active());
}
