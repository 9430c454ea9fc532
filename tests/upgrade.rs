//! upkeep-upgrade on Mattermost installed from its release tarball, in a
//! throwaway root. Release tarballs are built here; each carries a
//! STAND-IN server (tests/support/standin_mattermost.rs: reads config.json,
//! refuses a newer schema, answers the ping on loopback). The root has no
//! systemd (none can run as PID 1 in a test): its `systemctl` is a
//! STAND-IN shell script, run by busybox-static as the root's /bin/sh,
//! and upkeep-upgrade runs it chrooted inside the root as the manifest
//! says. setcap and getcap are the real ones.

// Test helpers below panic on a broken fixture, as the tests themselves do.
#![allow(clippy::unwrap_used)]
#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;

use common::{assert_no_panic, json, stderr, stdout, upkeep, upkeep_env, TestRoot};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const UP: &str = "upkeep-upgrade";

/// The stand-in server binary (an example target of this package), built
/// once per run: `cargo test --test upgrade` alone does not build examples,
/// and a stale stand-in would test yesterday's behaviour.
fn standin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("exe");
            let st = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "--example", "standin-mattermost"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("cargo");
            assert!(st.success());
            exe.parent()
                .and_then(Path::parent)
                .expect("target dir")
                .join("examples/standin-mattermost")
        })
        .clone()
}

const SYSTEMCTL: &str = r#"#!/bin/sh
# STAND-IN for systemctl (no systemd in a test root): start and stop one
# service, the Mattermost server in /opt/mattermost, with a pid file.
svc="$2"
pidf="/run/$svc.pid"
case "$1" in
start)
  # Already running: nothing to do, as with systemd.
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then exit 0; fi
  cd /opt/mattermost || exit 1
  # A subshell stays the server's parent and reaps it at once, as systemd
  # does; an orphan's zombie waits for PID 1, which here can take a second.
  rm -f "$pidf"
  ( ./bin/mattermost >>"/var/log/$svc.log" 2>&1 </dev/null & echo $! >"$pidf.new"; mv "$pidf.new" "$pidf"; wait ) >/dev/null 2>&1 </dev/null &
  while [ ! -f "$pidf" ]; do sleep 0.01; done
  sleep 0.1
  if ! kill -0 "$(cat "$pidf")" 2>/dev/null; then
    echo "$svc.service: start failed, see /var/log/$svc.log" >&2
    rm -f "$pidf"
    exit 1
  fi
  ;;
stop)
  [ -f "$pidf" ] || exit 0
  pid="$(cat "$pidf")"
  kill "$pid" 2>/dev/null
  n=0
  while kill -0 "$pid" 2>/dev/null && [ $n -lt 300 ]; do sleep 0.01; n=$((n+1)); done
  rm -f "$pidf"
  ;;
*) echo "stand-in systemctl: $1 not supported" >&2; exit 1 ;;
esac
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Copies a host binary and the libraries `ldd` names into the root.
fn copy_with_libs(root: &TestRoot, host: &Path, inside: &str) {
    let out = Command::new("ldd").arg(host).output().expect("ldd");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let lib = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        if let Some(lib) = lib {
            let dst = root.path(&lib.display().to_string());
            if !dst.exists() {
                fs::create_dir_all(dst.parent().unwrap()).unwrap();
                fs::copy(&lib, &dst).unwrap();
            }
        }
    }
    let dst = root.path(inside);
    fs::create_dir_all(dst.parent().unwrap()).unwrap();
    fs::copy(host, &dst).unwrap();
}

struct Release {
    version: &'static str,
    fail_start: bool,
    extra: Vec<(&'static str, Vec<u8>)>,
}

fn rel(version: &'static str) -> Release {
    Release {
        version,
        fail_start: false,
        extra: Vec::new(),
    }
}

const DEFAULT_CONFIG: &str = "{\n    \"ServiceSettings\": {\n        \"SiteURL\": \"\",\n        \"ListenAddress\": \":8065\"\n    },\n    \"SqlSettings\": {\n        \"DriverName\": \"postgres\",\n        \"DataSource\": \"postgres://mmuser:mostest@localhost/mattermost_test\"\n    },\n    \"FileSettings\": {\n        \"DriverName\": \"local\",\n        \"Directory\": \"./data/\"\n    }\n}\n";

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h
}

/// A release tarball like mattermost-X.Y.Z-linux-amd64.tar.gz: one top
/// directory `mattermost/`, the stand-in server as bin/mattermost.
fn tarball(dir: &Path, r: &Release) -> PathBuf {
    let path = dir.join(format!("mattermost-{}-linux-amd64.tar.gz", r.version));
    let f = fs::File::create(&path).unwrap();
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        f,
        flate2::Compression::fast(),
    ));
    let server = fs::read(standin()).unwrap();
    let mut files: Vec<(String, Vec<u8>, u32)> = vec![
        (
            "mattermost/VERSION".into(),
            format!("{}\n", r.version).into_bytes(),
            0o644,
        ),
        ("mattermost/bin/mattermost".into(), server, 0o755),
        (
            "mattermost/config/config.json".into(),
            DEFAULT_CONFIG.as_bytes().to_vec(),
            0o600,
        ),
        (
            "mattermost/client/root.html".into(),
            format!("<html>{}</html>", r.version).into_bytes(),
            0o644,
        ),
        ("mattermost/i18n/en.json".into(), b"{}".to_vec(), 0o644),
    ];
    if r.fail_start {
        files.push(("mattermost/FAIL_START".into(), Vec::new(), 0o644));
    }
    for (n, c) in &r.extra {
        files.push((format!("mattermost/{n}"), c.clone(), 0o644));
    }
    for d in [
        "mattermost/",
        "mattermost/bin/",
        "mattermost/config/",
        "mattermost/client/",
        "mattermost/i18n/",
        "mattermost/logs/",
    ] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, d, std::io::empty()).unwrap();
    }
    for (n, c, mode) in files {
        let mut h = header(tar::EntryType::Regular, mode, c.len() as u64);
        b.append_data(&mut h, n, &c[..]).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
    path
}

/// A root with Mattermost installed by hand from a release tarball, as
/// the vendor's guide says, customised, with a capability set and a TLS
/// key directory that nothing declares.
struct Site {
    root: TestRoot,
    port: u16,
    work: tempfile::TempDir,
    /// `opt` is a small tmpfs of the test's own.
    mounted: bool,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = Command::new("chroot")
            .arg(self.root.root())
            .args(["/usr/bin/systemctl", "stop", "mattermost"])
            .output();
        if self.mounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.root.path("opt"))
                .status();
        }
    }
}

fn site(first: &'static str) -> Site {
    site_on(first, None)
}

/// With `opt_size`, the root's /opt is a tmpfs of that size.
fn site_on(first: &'static str, opt_size: Option<&str>) -> Site {
    let root = TestRoot::new();
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    // The root's own shell and tools: busybox-static.
    let bb = Path::new("/bin/busybox");
    assert!(
        bb.exists(),
        "busybox-static is needed (scripts/test installs it)"
    );
    root.write("bin/busybox", fs::read(bb).unwrap(), 0o755);
    for tool in ["sh", "sleep", "cat", "kill", "rm", "mv"] {
        std::os::unix::fs::symlink("busybox", root.path(&format!("bin/{tool}"))).unwrap();
    }
    root.write("usr/bin/systemctl", SYSTEMCTL, 0o755);
    for d in ["run", "var/log", "var/lib/mmdb", "opt", "dev"] {
        fs::create_dir_all(root.path(d)).unwrap();
    }
    let st = Command::new("mknod")
        .args(["-m", "666"])
        .arg(root.path("dev/null"))
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(st.success());
    // The stand-in server is dynamically linked: its libraries go in too.
    copy_with_libs(&root, &standin(), "usr/local/lib/standin-probe");
    if let Some(size) = opt_size {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "upkeep-test"])
            .arg(root.path("opt"))
            .status()
            .unwrap();
        assert!(st.success(), "mount a tmpfs (the tests run as root)");
    }
    let tgz = tarball(work.path(), &rel(first));
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(root.path("opt"))
        .status()
        .unwrap();
    assert!(st.success());
    let cfg = DEFAULT_CONFIG
        .replace(":8065", &format!(":{port}"))
        .replace(
            "postgres://mmuser:mostest@localhost/mattermost_test",
            "file:/var/lib/mmdb/schema",
        );
    root.write("opt/mattermost/config/config.json", cfg, 0o600);
    root.write("opt/mattermost/data/users/1/avatar.png", b"png", 0o640);
    root.write("opt/mattermost/tls/key.pem", b"secret key", 0o600);
    root.write(
        "opt/mattermost/plugins/com.example.p/plugin.json",
        b"{}",
        0o644,
    );
    let st = Command::new("chown")
        .args(["-R", "994:994"])
        .arg(root.path("opt/mattermost"))
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("setcap")
        .arg("cap_net_bind_service=+ep")
        .arg(root.path("opt/mattermost/bin/mattermost"))
        .status()
        .unwrap();
    assert!(st.success());
    let s = Site {
        root,
        port,
        work,
        mounted: opt_size.is_some(),
    };
    s.systemctl("start");
    assert_eq!(
        s.ping().as_deref(),
        Some(first),
        "the first install answers"
    );
    s
}

impl Site {
    fn r(&self) -> &str {
        self.root.root().to_str().unwrap()
    }

    /// Replaces `from` (which must be there) with `to` in config.json.
    fn edit_config(&self, from: &str, to: &str) {
        let cfg = self.root.path("opt/mattermost/config/config.json");
        let text = fs::read_to_string(&cfg).unwrap();
        assert!(text.contains(from), "{from} is not in config.json");
        fs::write(&cfg, text.replace(from, to)).unwrap();
    }

    fn systemctl(&self, what: &str) {
        let o = Command::new("chroot")
            .arg(self.root.root())
            .args(["/usr/bin/systemctl", what, "mattermost"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// The version the server answers the ping with, if it answers.
    fn ping(&self) -> Option<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.write_all(b"GET /api/v4/system/ping HTTP/1.0\r\n\r\n")
            .ok()?;
        let mut t = String::new();
        s.read_to_string(&mut t).ok()?;
        let v = t.lines().find_map(|l| l.strip_prefix("X-Version-Id: "))?;
        Some(v.split('.').take(3).collect::<Vec<_>>().join("."))
    }

    fn tarball(&self, r: &Release) -> String {
        tarball(self.work.path(), r).display().to_string()
    }

    fn up(&self, args: &[&str]) -> std::process::Output {
        let mut a = vec!["--root", self.r()];
        a.extend_from_slice(args);
        // The stand-in's database is a file: no pg_dump for it.
        if args.first() == Some(&"apply") {
            a.push("--skip-db-backup");
        }
        let o = upkeep(UP, &a);
        assert_no_panic(&o);
        o
    }

    fn read(&self, inside: &str) -> Vec<u8> {
        fs::read(self.root.path(inside)).unwrap()
    }

    fn getcap(&self, inside: &str) -> String {
        let o = Command::new("getcap")
            .arg(self.root.path(inside))
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        s.split_whitespace().nth(1).unwrap_or_default().to_string()
    }

    /// Every path under the install (and beside it) with owner, mode and
    /// content digest: to prove "nothing changed".
    fn snapshot(&self) -> Vec<String> {
        fn walk(p: &Path, base: &Path, out: &mut Vec<String>) {
            let m = fs::symlink_metadata(p).unwrap();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let content = if m.is_file() {
                format!("{:x}", md5_like(&fs::read(p).unwrap()))
            } else {
                String::new()
            };
            out.push(format!(
                "{rel} {}:{} {:o} {content}",
                m.uid(),
                m.gid(),
                m.mode()
            ));
            if m.is_dir() {
                let mut names: Vec<_> = fs::read_dir(p)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect();
                names.sort();
                for n in names {
                    walk(&n, base, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root.path("opt"), self.root.root(), &mut out);
        out.push(format!(
            "cap {}",
            self.getcap("opt/mattermost/bin/mattermost")
        ));
        out
    }
}

/// A cheap content fingerprint (FNV-1a): enough to see a change.
fn md5_like(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100000001b3)
    })
}

#[test]
fn plan_reports_versions_steps_preserved_and_unknown_and_writes_nothing() {
    let s = site("9.11.0");
    let a = s.tarball(&rel("10.5.1"));
    let before = s.snapshot();
    let o = s.up(&["plan", "mattermost", &a, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let p = json(&o);
    assert_eq!(p["product"], "mattermost");
    assert_eq!(p["from"], "9.11.0");
    assert_eq!(p["to"], "10.5.1");
    assert!(p["refused"].is_null());
    assert!(p["stops"].as_array().unwrap().is_empty());
    let steps: Vec<&str> = p["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for want in [
        "backup",
        "stage 10.5.1",
        "stop",
        "swap",
        "restore",
        "ownership",
        "capabilities",
        "start",
        "verify",
    ] {
        assert!(steps.contains(&want), "{want} in {steps:?}");
    }
    let cap = steps.iter().position(|s| *s == "capabilities").unwrap();
    assert!(
        steps.iter().position(|s| *s == "ownership").unwrap() < cap,
        "capabilities after ownership"
    );
    let preserve: Vec<&str> = p["preserve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for want in ["config", "logs", "plugins", "data"] {
        assert!(preserve.contains(&want), "{want} in {preserve:?}");
    }
    assert_eq!(p["unknown"], serde_json::json!(["tls"]));
    assert_eq!(
        p["backup_data"]
            .as_str()
            .map(|d| d.ends_with("opt/mattermost/data")),
        Some(true)
    );
    assert_eq!(s.snapshot(), before);
    assert!(
        !s.root.path("var/lib/upkeep").exists(),
        "plan wrote state: {:?}",
        fs::read_dir(s.root.path("var/lib/upkeep"))
            .map(|d| d.map(|e| e.unwrap().path()).collect::<Vec<_>>())
    );
    // Text too.
    let o = s.up(&["plan", "mattermost", &a]);
    assert!(
        stdout(&o).contains("unknown    tls (declared by nothing: kept)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn downgrade_and_skipped_required_stop_are_refused_with_the_rule() {
    let s = site("5.20.0");
    let o = s.up(&[
        "plan",
        "mattermost",
        &s.tarball(&rel("5.10.0")),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(json(&o)["refused"]["rule"], "downgrade");
    let seven = s.tarball(&rel("7.1.0"));
    let o = s.up(&["plan", "mattermost", &seven, "--format", "json"]);
    assert_eq!(o.status.code(), Some(3));
    let p = json(&o);
    assert_eq!(p["refused"]["rule"], "required-stop");
    assert!(p["refused"]["message"].as_str().unwrap().contains("5.37"));
    assert_eq!(p["stops"], serde_json::json!(["5.37"]));
    let before = s.snapshot();
    let o = s.up(&["apply", "mattermost", &seven]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("5.37"), "{}", stderr(&o));
    assert_eq!(s.snapshot(), before);
    // Through the stop, in any argument order: allowed.
    let o = s.up(&[
        "plan",
        "mattermost",
        &seven,
        &s.tarball(&rel("5.37.2")),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["chain"], serde_json::json!(["5.37.2", "7.1.0"]));
}

/// name, type, mode, content, link target.
type RawEntry<'a> = (&'a str, tar::EntryType, u32, &'a [u8], Option<&'a str>);

fn raw_tarball(path: &Path, entries: &[RawEntry<'_>]) {
    let f = fs::File::create(path).unwrap();
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        f,
        flate2::Compression::fast(),
    ));
    for (name, kind, mode, data, link) in entries {
        let mut h = header(*kind, *mode, data.len() as u64);
        // Names are written raw: tar's own checks would refuse `..`.
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

#[test]
fn hostile_archives_are_refused_before_anything_is_written() {
    use tar::EntryType::*;
    let s = site("9.11.0");
    let before = s.snapshot();
    let elf = fs::read(standin()).unwrap();
    let ok: Vec<RawEntry<'_>> = vec![
        ("mattermost/", Directory, 0o755, b"", None),
        ("mattermost/VERSION", Regular, 0o644, b"10.5.1\n", None),
        ("mattermost/bin/mattermost", Regular, 0o755, &elf, None),
    ];
    let mut arm = elf.clone();
    arm[18] = 183;
    arm[19] = 0;
    let cases: Vec<(&str, RawEntry<'_>, i32, &str)> = vec![
        (
            "dotdot",
            ("mattermost/../../etc/cron.d/x", Regular, 0o644, b"x", None),
            65,
            "'..'",
        ),
        (
            "absolute",
            ("/etc/cron.d/x", Regular, 0o644, b"x", None),
            65,
            "absolute",
        ),
        (
            "symlink-out",
            ("mattermost/evil", Symlink, 0o777, b"", Some("/etc/shadow")),
            65,
            "outside",
        ),
        (
            "symlink-up",
            ("mattermost/evil", Symlink, 0o777, b"", Some("../../etc")),
            65,
            "outside",
        ),
        (
            "hardlink-out",
            ("mattermost/evil", Link, 0o644, b"", Some("/etc/shadow")),
            65,
            "hard link",
        ),
        (
            "device",
            ("mattermost/dev", Char, 0o644, b"", None),
            65,
            "not allowed",
        ),
        (
            "setuid",
            ("mattermost/bin/su", Regular, 0o4755, b"x", None),
            65,
            "setuid",
        ),
        (
            "duplicate",
            ("mattermost/VERSION", Regular, 0o644, b"10.5.2\n", None),
            65,
            "duplicate",
        ),
        (
            "other-top",
            ("elsewhere/x", Regular, 0o644, b"x", None),
            65,
            "top directory",
        ),
    ];
    for (name, bad, code, says) in cases {
        let p = s.work.path().join(format!("{name}.tar.gz"));
        let mut entries = ok.clone();
        entries.push(bad);
        raw_tarball(&p, &entries);
        for cmd in ["plan", "apply"] {
            let o = s.up(&[cmd, "mattermost", p.to_str().unwrap()]);
            assert_eq!(o.status.code(), Some(code), "{name} {cmd}: {}", stderr(&o));
            assert!(stderr(&o).contains(says), "{name}: {}", stderr(&o));
        }
    }
    // Without the server itself (only VERSION), or with a directory in
    // its place: not a release.
    for (name, entries) in [
        ("no-server", ok[..2].to_vec()),
        (
            "server-is-a-dir",
            vec![
                ok[0],
                ok[1],
                ("mattermost/bin/mattermost/", Directory, 0o755, b"", None),
            ],
        ),
    ] {
        let p = s.work.path().join(format!("{name}.tar.gz"));
        raw_tarball(&p, &entries);
        for cmd in ["plan", "apply"] {
            let o = s.up(&[cmd, "mattermost", p.to_str().unwrap()]);
            assert_eq!(o.status.code(), Some(65), "{name} {cmd}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("no file bin/mattermost"),
                "{name}: {}",
                stderr(&o)
            );
        }
    }
    // An arm64 release on this x86-64 machine: refused by policy.
    let p = s.work.path().join("arm.tar.gz");
    let mut entries = ok.clone();
    entries[2].3 = &arm;
    raw_tarball(&p, &entries);
    let o = s.up(&["apply", "mattermost", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("arm64"), "{}", stderr(&o));
    assert_eq!(s.snapshot(), before);
    assert!(!s.root.path("var/lib/upkeep/backups").exists());
    assert_eq!(s.ping().as_deref(), Some("9.11.0"));
}

/// What tar itself unpacks: a file whose directory has no entry, a
/// directory listed after what is in it, names with `./` and `//` in them.
/// The plan allows them, so apply must unpack them too.
#[test]
fn archives_tar_accepts_unpack_with_implied_directories_and_odd_names() {
    use tar::EntryType::*;
    let s = site("9.11.0");
    let elf = fs::read(standin()).unwrap();
    let entries: Vec<RawEntry<'_>> = vec![
        ("mattermost/", Directory, 0o755, b"", None),
        ("mattermost/VERSION", Regular, 0o644, b"10.5.1\n", None),
        ("mattermost/bin/mattermost", Regular, 0o755, &elf, None),
        ("mattermost/newdir/deeper/x", Regular, 0o644, b"x", None),
        ("mattermost/late/y", Regular, 0o644, b"y", None),
        ("mattermost/late/", Directory, 0o750, b"", None),
        ("mattermost/./client/./z", Regular, 0o644, b"z", None),
        ("mattermost//i18n//w", Regular, 0o644, b"w", None),
    ];
    let p = s.work.path().join("mattermost-10.5.1-linux-amd64.tar.gz");
    raw_tarball(&p, &entries);
    let o = s.up(&["plan", "mattermost", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = s.up(&["apply", "mattermost", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(s.ping().as_deref(), Some("10.5.1"));
    assert_eq!(s.read("opt/mattermost/newdir/deeper/x"), b"x");
    assert_eq!(s.read("opt/mattermost/late/y"), b"y");
    assert_eq!(s.read("opt/mattermost/client/z"), b"z");
    assert_eq!(s.read("opt/mattermost/i18n/w"), b"w");
    let mode = |p: &str| fs::metadata(s.root.path(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("opt/mattermost/late"), 0o750, "its own entry's mode");
}

/// What is kept from the old tree keeps its owner: a config an admin made
/// root-owned stays so; the release's own files go to the service user.
#[test]
fn kept_paths_keep_their_owner_and_the_release_gets_the_service_user() {
    let s = site("9.11.0");
    for p in ["opt/mattermost/config", "opt/mattermost/config/config.json"] {
        std::os::unix::fs::chown(s.root.path(p), Some(0), Some(0)).unwrap();
    }
    let o = s.up(&["apply", "mattermost", &s.tarball(&rel("10.5.1"))]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for p in ["opt/mattermost/config", "opt/mattermost/config/config.json"] {
        let m = fs::metadata(s.root.path(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0), "{p}");
    }
    let m = fs::metadata(s.root.path("opt/mattermost/client/root.html")).unwrap();
    assert_eq!((m.uid(), m.gid()), (994, 994));
}

#[test]
fn malformed_config_is_refused_naming_line_and_column() {
    let s = site("9.11.0");
    let cfg = s.root.path("opt/mattermost/config/config.json");
    fs::write(
        &cfg,
        "{\n  \"ServiceSettings\": {\n    \"SiteURL\" \"x\"\n  }\n}\n",
    )
    .unwrap();
    let before = s.snapshot();
    let a = s.tarball(&rel("10.5.1"));
    for cmd in ["plan", "apply"] {
        let o = s.up(&[cmd, "mattermost", &a]);
        assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("config.json:3: column 15"),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(s.snapshot(), before);
}

#[test]
fn upgrade_keeps_everything_and_sets_capabilities_after_ownership() {
    let s = site("9.11.0");
    let cfg_before = String::from_utf8(s.read("opt/mattermost/config/config.json")).unwrap();
    let a = s.tarball(&rel("10.5.1"));
    let o = s.up(&[
        "apply",
        "mattermost",
        &a,
        "--set",
        "ServiceSettings.SiteURL=\"https://chat.example.com\"",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(s.ping().as_deref(), Some("10.5.1"));
    assert_eq!(s.read("opt/mattermost/VERSION"), b"10.5.1\n");
    // config.json: only the one value changed, byte for byte.
    let cfg = String::from_utf8(s.read("opt/mattermost/config/config.json")).unwrap();
    assert_eq!(
        cfg,
        cfg_before.replace(
            "\"SiteURL\": \"\"",
            "\"SiteURL\": \"https://chat.example.com\""
        )
    );
    let m = fs::metadata(s.root.path("opt/mattermost/config/config.json")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (994, 994, 0o600));
    // Data, plugins and the undeclared TLS key are all there.
    assert_eq!(s.read("opt/mattermost/data/users/1/avatar.png"), b"png");
    assert_eq!(s.read("opt/mattermost/tls/key.pem"), b"secret key");
    assert_eq!(
        s.read("opt/mattermost/plugins/com.example.p/plugin.json"),
        b"{}"
    );
    assert_eq!(
        s.read("opt/mattermost/client/root.html"),
        b"<html>10.5.1</html>"
    );
    // Ownership, then the capability (real getcap).
    let b = fs::metadata(s.root.path("opt/mattermost/bin/mattermost")).unwrap();
    assert_eq!((b.uid(), b.gid()), (994, 994));
    assert_eq!(
        s.getcap("opt/mattermost/bin/mattermost"),
        "cap_net_bind_service=ep"
    );
    // The database was migrated by the new server.
    assert_eq!(s.read("var/lib/mmdb/schema"), b"10.5.1\n");
    // A verified backup of config and local data.
    let o = s.up(&["backups", "mattermost", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list = json(&o);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["verified"], true);
    let bdir = PathBuf::from(list[0]["path"].as_str().unwrap());
    assert_eq!(
        fs::read_to_string(bdir.join("config.json")).unwrap(),
        cfg_before
    );
    assert_eq!(
        fs::read(bdir.join("data/users/1/avatar.png")).unwrap(),
        b"png"
    );
    // Tampering with it is found.
    fs::write(bdir.join("data/users/1/avatar.png"), b"PNG").unwrap();
    let o = s.up(&["backups", "mattermost"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("does not match"), "{}", stdout(&o));
    // Nothing left beside the install but the previous release.
    let mut beside: Vec<String> = fs::read_dir(s.root.path("opt"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, [".mattermost.upkeep-previous", "mattermost"]);
    // recover has nothing to do, and says nothing.
    let o = s.up(&["recover"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "");
}

#[test]
fn a_failed_start_rolls_back_config_data_and_capabilities_exactly() {
    let s = site("9.11.0");
    let before = s.snapshot();
    let broken = Release {
        fail_start: true,
        ..rel("10.5.1")
    };
    let a = s.tarball(&broken);
    // Without --skip-db-backup the real pg_dump runs first: it cannot
    // reach this database, and that stops everything before any change.
    let o = upkeep(UP, &["--root", s.r(), "apply", "mattermost", &a]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pg_dump") && stderr(&o).contains("--skip-db-backup"),
        "{}",
        stderr(&o)
    );
    assert_eq!(s.snapshot(), before);
    assert!(!s
        .root
        .path("var/lib/upkeep/backups/mattermost")
        .read_dir()
        .unwrap()
        .any(|_| true));
    let o = s.up(&[
        "apply",
        "mattermost",
        &a,
        "--set",
        "ServiceSettings.SiteURL=\"https://x\"",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("rolled back"), "{}", stderr(&o));
    assert_eq!(
        s.ping().as_deref(),
        Some("9.11.0"),
        "the old release runs again"
    );
    assert_eq!(
        s.snapshot(),
        before,
        "config, data, tree and capability exactly as before"
    );
    assert!(!s
        .root
        .path("var/lib/upkeep/upgrade/mattermost.journal")
        .exists());
}

/// A release that migrates the database and then fails: the rollback puts
/// the old release back, but the old one refuses the migrated schema. The
/// report must not say it runs as before; it says it does not answer and
/// where the dump from before is. (The stand-in takes a second to refuse,
/// as a real server does, so the stand-in service manager sees it start.)
#[test]
fn a_rollback_whose_old_release_does_not_answer_says_so() {
    let s = site("9.11.0");
    let manifest =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/mattermost.toml"))
            .unwrap();
    assert!(manifest.contains("timeout_ms = 60000"));
    s.root.write(
        "etc/upkeep/plugins.d/mattermost.toml",
        manifest.replace("timeout_ms = 60000", "timeout_ms = 2000"),
        0o644,
    );
    s.root.write("var/lib/mmdb/schema.slow-refusal", "", 0o644);
    let broken = Release {
        extra: vec![("FAIL_AFTER_MIGRATE", Vec::new())],
        ..rel("10.5.1")
    };
    let o = s.up(&["apply", "mattermost", &s.tarball(&broken)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("rolled back"), "{err}");
    assert!(!err.contains("running as before"), "{err}");
    assert!(
        err.contains("9.11.0 is back in place but does not answer"),
        "{err}"
    );
    assert!(err.contains("var/lib/upkeep/backups/mattermost/"), "{err}");
    // Run with --skip-db-backup: no dump is claimed.
    assert!(err.contains("no database dump was made before it"), "{err}");
    assert!(!err.contains("database.dump"), "{err}");
    assert_eq!(s.read("opt/mattermost/VERSION"), b"9.11.0\n");
    assert_eq!(s.ping(), None);
}

/// A root with its own `pg_dump` is dumped by that one, chrooted, with the
/// file named as the root sees it (a client of the version its server
/// expects), never by the machine's. The root's pg_dump here is a STAND-IN
/// shell script (busybox) that records its arguments: which program runs,
/// and with what, is what is tested.
#[test]
fn a_root_with_its_own_pg_dump_is_dumped_by_it_chrooted() {
    let s = site("9.11.0");
    s.root.write(
        "usr/bin/pg_dump",
        "#!/bin/sh\necho \"$@\" > /var/lib/pg_dump.args\nfor a in \"$@\"; do case $a in --file=*) echo DUMP > \"${a#--file=}\";; esac; done\n",
        0o755,
    );
    let o = upkeep(UP, &["--root", s.r(), "backup", "mattermost"]);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let args = String::from_utf8(s.read("var/lib/pg_dump.args")).unwrap();
    assert!(
        args.starts_with("-Fc --file=/var/lib/upkeep/backups/mattermost/")
            && args.contains("/database.dump --dbname=file:/var/lib/mmdb/schema"),
        "{args}"
    );
    assert!(
        !args.contains(s.r()),
        "the file is named as the root sees it: {args}"
    );
    let backups = s.root.path("var/lib/upkeep/backups/mattermost");
    let dir = fs::read_dir(&backups)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(fs::read(dir.join("database.dump")).unwrap(), b"DUMP\n");
    let o = upkeep(UP, &["--root", s.r(), "backups", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// ./data a link to where the data really is (a bigger disk, here a
/// directory of the root): the backup holds the data it names, not the
/// link, and the link itself is kept across the upgrade.
#[test]
fn a_linked_data_directory_is_backed_up_through_its_link() {
    let s = site("9.11.0");
    fs::create_dir_all(s.root.path("srv")).unwrap();
    fs::rename(
        s.root.path("opt/mattermost/data"),
        s.root.path("srv/mmdata"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/srv/mmdata", s.root.path("opt/mattermost/data")).unwrap();
    let o = s.up(&["apply", "mattermost", &s.tarball(&rel("10.5.1"))]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let backups = s.root.path("var/lib/upkeep/backups/mattermost");
    let dir = fs::read_dir(&backups)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        fs::read(dir.join("data/users/1/avatar.png")).unwrap(),
        b"png"
    );
    assert!(fs::symlink_metadata(dir.join("data")).unwrap().is_dir());
    assert_eq!(
        fs::read_link(s.root.path("opt/mattermost/data")).unwrap(),
        Path::new("/srv/mmdata")
    );
    let o = upkeep(UP, &["--root", s.r(), "backups", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// After an upgrade that failed and was undone, the release running is
/// the one it ran before: `rollback` (what a fleet tool runs on a failed
/// node) has nothing to do and must not go back to the older release kept
/// aside by the upgrade before. The next good upgrade makes it work again.
#[test]
fn rollback_after_an_undone_upgrade_changes_nothing() {
    let s = site("9.11.0");
    let o = s.up(&["apply", "mattermost", &s.tarball(&rel("10.5.1"))]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let broken = Release {
        fail_start: true,
        ..rel("11.0.0")
    };
    let o = s.up(&["apply", "mattermost", &s.tarball(&broken)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(s.ping().as_deref(), Some("10.5.1"));
    let before = s.snapshot();
    let o = s.up(&["rollback", "mattermost", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["unchanged"], true, "{}", stdout(&o));
    assert_eq!(s.ping().as_deref(), Some("10.5.1"), "not back to 9.11.0");
    assert_eq!(s.snapshot(), before);
    let o = s.up(&["apply", "mattermost", &s.tarball(&rel("11.0.0"))]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // 11.0.0 migrated the stand-in's database: as an operator would, put
    // back the one 10.5.1 reads.
    fs::write(s.root.path("var/lib/mmdb/schema"), "10.5.1\n").unwrap();
    let o = s.up(&["rollback", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(s.ping().as_deref(), Some("10.5.1"), "a real rollback again");
}

/// The data source comes from config.json, which the service user can
/// write: one that reads as an option (`--file=…` would make pg_dump, run
/// as root, truncate that file) is never handed to a program.
#[test]
fn a_data_source_that_reads_as_an_option_is_never_passed_on() {
    let s = site("9.11.0");
    let victim = s.work.path().join("precious");
    fs::write(&victim, b"precious").unwrap();
    s.edit_config(
        "file:/var/lib/mmdb/schema",
        &format!("--file={}", victim.display()),
    );
    let before = s.snapshot();
    let a = s.tarball(&rel("10.5.1"));
    for args in [
        vec!["plan", "mattermost", a.as_str()],
        vec!["backup", "mattermost"],
        vec!["apply", "mattermost", a.as_str()],
    ] {
        let mut full = vec!["--root", s.r()];
        full.extend(args.iter().copied());
        let o = upkeep(UP, &full);
        assert_eq!(
            fs::read(&victim).unwrap(),
            b"precious",
            "{args:?}: {}",
            stderr(&o)
        );
        if args[0] != "plan" {
            assert_ne!(o.status.code(), Some(0), "{args:?}");
            assert!(
                stderr(&o).contains("not a database address"),
                "{args:?}: {}",
                stderr(&o)
            );
        }
    }
    assert_eq!(s.snapshot(), before);
    assert_eq!(s.ping().as_deref(), Some("9.11.0"));
}

/// A data directory that holds the backups (`FileSettings.Directory`
/// pointing at /var/lib/upkeep) is refused as bad input, not copied into
/// itself until the stack runs out, and no partial backup is left.
#[test]
fn a_data_directory_that_holds_the_backups_is_refused() {
    let s = site("9.11.0");
    fs::create_dir_all(s.root.path("var/lib/upkeep")).unwrap();
    s.edit_config(
        "\"Directory\": \"./data/\"",
        "\"Directory\": \"/var/lib/upkeep\"",
    );
    let o = s.up(&["backup", "mattermost", "--skip-db-backup"]);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("copy itself without end"),
        "{}",
        stderr(&o)
    );
    let left: Vec<_> = fs::read_dir(s.root.path("var/lib/upkeep/backups/mattermost"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "no partial backup: {left:?}");
}

/// /opt/mattermost as a link to the real directory (on a bigger volume,
/// say): a swap by rename would replace the link with a directory, so the
/// plan refuses before anything changes.
#[test]
fn an_install_directory_that_is_a_link_is_refused() {
    let s = site("9.11.0");
    s.systemctl("stop");
    fs::rename(s.root.path("opt/mattermost"), s.root.path("opt/mm-real")).unwrap();
    std::os::unix::fs::symlink("/opt/mm-real", s.root.path("opt/mattermost")).unwrap();
    s.systemctl("start");
    let before = s.snapshot();
    let a = s.tarball(&rel("10.5.1"));
    let o = s.up(&["plan", "mattermost", &a, "--format", "json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(json(&o)["refused"]["rule"], "install-is-a-link");
    let o = s.up(&["apply", "mattermost", &a]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("is a symbolic link"), "{}", stderr(&o));
    assert_eq!(s.snapshot(), before);
    assert_eq!(s.ping().as_deref(), Some("9.11.0"));
}

#[test]
fn a_chain_of_three_versions_each_verified() {
    let s = site("9.5.0");
    let chain = [
        s.tarball(&rel("10.5.1")),
        s.tarball(&rel("9.11.2")),
        s.tarball(&rel("10.11.0")),
    ];
    let o = s.up(&[
        "apply",
        "mattermost",
        &chain[0],
        &chain[1],
        &chain[2],
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = json(&o);
    assert_eq!(
        r["plan"]["chain"],
        serde_json::json!(["9.11.2", "10.5.1", "10.11.0"])
    );
    assert_eq!(r["installed"], "10.11.0");
    assert_eq!(s.ping().as_deref(), Some("10.11.0"));
    assert_eq!(s.read("opt/mattermost/tls/key.pem"), b"secret key");
    assert_eq!(s.read("opt/mattermost/data/users/1/avatar.png"), b"png");
    assert_eq!(
        s.getcap("opt/mattermost/bin/mattermost"),
        "cap_net_bind_service=ep"
    );
}

#[test]
fn a_full_disk_while_staging_changes_nothing() {
    // The install fits in the small tmpfs; a second copy of it next to
    // it, with a 4 MiB file more, does not.
    let installed = fs::metadata(standin()).unwrap().len();
    let size = format!(
        "{}k",
        (installed + (2 << 20)) / 1024 * 2 - (installed / 1024)
    );
    let s = site_on("9.11.0", Some(&size));
    let before = s.snapshot();
    let big = Release {
        extra: vec![("client/big.js", vec![7u8; 4 << 20])],
        ..rel("10.5.1")
    };
    let a = s.tarball(&big);
    let o = s.up(&["apply", "mattermost", &a]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("No space left on device"),
        "{}",
        stderr(&o)
    );
    assert_eq!(s.snapshot(), before);
    assert_eq!(s.ping().as_deref(), Some("9.11.0"));
    assert!(!s.root.path("opt/.mattermost.upkeep-stage").exists());
    let o = s.up(&["recover"]);
    assert_eq!(stdout(&o), "");
}

#[test]
fn object_storage_data_is_not_backed_up() {
    let s = site("9.11.0");
    s.edit_config("\"DriverName\": \"local\"", "\"DriverName\": \"amazons3\"");
    let a = s.tarball(&rel("10.5.1"));
    let o = s.up(&["plan", "mattermost", &a, "--format", "json"]);
    assert!(json(&o)["backup_data"].is_null());
    let o = s.up(&["apply", "mattermost", &a]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = s.up(&["backups", "mattermost", "--format", "json"]);
    let b = PathBuf::from(json(&o)[0]["path"].as_str().unwrap().to_string());
    assert!(b.join("config.json").exists());
    assert!(!b.join("data").exists(), "S3 data is not copied");
    // Still kept in the tree, though: it is preserved, just not backed up.
    assert_eq!(s.read("opt/mattermost/data/users/1/avatar.png"), b"png");
}

/// SIGKILL at every step of the shared journal (and around it), then
/// `recover`: the old release exactly as it was, or, once the new one has
/// started and answers, the new one complete; never a mix.
#[test]
fn sigkill_at_every_step_then_recover_leaves_old_or_new() {
    let mut points: Vec<String> = vec!["upgrade:backed-up".into(), "journal:begun".into()];
    points.extend((0..40).map(|i| format!("journal:step{i}")));
    // Between two renames of step 3, the one that moves what is kept
    // (stage, stop, swap come first).
    let at = points.iter().position(|p| p == "journal:step2").unwrap() + 1;
    points.splice(at..at, (0..3).map(|i| format!("upgrade:moved{i}")));
    points.extend(["journal:done".into(), "upgrade:committing".into()]);
    let mut seen_new = false;
    let mut killed = 0;
    let mut steps_past_the_end = false;
    for point in &points {
        if steps_past_the_end && point.starts_with("journal:step") {
            continue;
        }
        let s = site("9.11.0");
        let before = s.snapshot();
        let a = s.tarball(&rel("10.5.1"));
        let o = upkeep_env(
            UP,
            &[
                "--root",
                s.r(),
                "apply",
                "mattermost",
                &a,
                "--skip-db-backup",
                "--set",
                "ServiceSettings.SiteURL=\"https://x\"",
            ],
            &[("UPKEEP_CRASH_AT", point)],
        );
        if o.status.code() == Some(0) && point.starts_with("journal:step") {
            // No such step: the upgrade ran through. Steps are numbered
            // from 0, so every later step number is absent too.
            assert_eq!(s.ping().as_deref(), Some("10.5.1"));
            steps_past_the_end = true;
            continue;
        }
        assert_eq!(o.status.code(), None, "{point}: not killed: {}", stderr(&o));
        killed += 1;
        let o = s.up(&["recover"]);
        assert_eq!(o.status.code(), Some(0), "{point}: {}", stderr(&o));
        match s.ping().as_deref() {
            Some("9.11.0") => {
                assert!(!seen_new, "{point}: old again after a later point gave new");
                assert_eq!(s.snapshot(), before, "{point}: old, exactly");
            }
            Some("10.5.1") => {
                seen_new = true;
                assert_eq!(s.read("opt/mattermost/VERSION"), b"10.5.1\n");
                assert_eq!(s.read("opt/mattermost/tls/key.pem"), b"secret key");
                assert_eq!(s.read("opt/mattermost/data/users/1/avatar.png"), b"png");
                let cfg = String::from_utf8(s.read("opt/mattermost/config/config.json")).unwrap();
                assert!(cfg.contains("\"SiteURL\": \"https://x\""), "{point}: {cfg}");
                assert_eq!(
                    s.getcap("opt/mattermost/bin/mattermost"),
                    "cap_net_bind_service=ep"
                );
            }
            other => panic!("{point}: answers {other:?}"),
        }
        assert!(
            !s.root.path("opt/.mattermost.upkeep-stage").exists(),
            "{point}"
        );
        assert!(
            !s.root.path("opt/.mattermost.upkeep-shipped").exists(),
            "{point}"
        );
        let o = s.up(&["recover"]);
        assert_eq!(
            stdout(&o),
            "",
            "{point}: a second recover has nothing to do"
        );
    }
    assert!(
        seen_new,
        "some crash points come after the new release started"
    );
    assert!(killed >= 14, "only {killed} crash points reached");
}

/// A crash that takes the server down with upkeep (a power loss, the OOM
/// killer on the group): at every point, `recover` (what the boot timer
/// runs) leaves a release that answers. Past the start, the new release
/// was complete and may own a migrated database: it is started again, not
/// undone; "finished" is said only once it answers.
#[test]
fn a_crash_that_kills_the_server_too_is_recovered_to_a_running_release() {
    let mut points: Vec<String> = (0..20).map(|i| format!("journal:step{i}")).collect();
    points.extend(["journal:done".into(), "upgrade:committing".into()]);
    let mut seen_new = false;
    for point in &points {
        let s = site("9.11.0");
        let a = s.tarball(&rel("10.5.1"));
        let o = upkeep_env(
            UP,
            &[
                "--root",
                s.r(),
                "apply",
                "mattermost",
                &a,
                "--skip-db-backup",
            ],
            &[("UPKEEP_CRASH_AT", point)],
        );
        if o.status.code() == Some(0) {
            continue;
        }
        assert_eq!(o.status.code(), None, "{point}: not killed: {}", stderr(&o));
        if let Ok(pid) = fs::read_to_string(s.root.path("run/mattermost.pid")) {
            let _ = Command::new("kill").args(["-9", pid.trim()]).status();
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let o = s.up(&["recover"]);
        assert_eq!(o.status.code(), Some(0), "{point}: {}", stderr(&o));
        match s.ping().as_deref() {
            Some("9.11.0") => assert!(!seen_new, "{point}: old again after new"),
            Some("10.5.1") => {
                seen_new = true;
                assert_eq!(s.read("opt/mattermost/VERSION"), b"10.5.1\n");
            }
            other => panic!("{point}: answers {other:?} after recover: {}", stdout(&o)),
        }
    }
    assert!(
        seen_new,
        "some crash points come after the new release started"
    );
}

/// A throwaway PostgreSQL 15 cluster (scripts/pg-test-cluster: initdb and
/// pg_ctl as the postgres user, loopback only), stopped and removed on drop.
struct Pg {
    url: String,
    dir: String,
}

impl Pg {
    fn start() -> Pg {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-test-cluster");
        let o = Command::new(&script)
            .args(["start", &free_port().to_string()])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "PostgreSQL 15 is needed (scripts/test installs it): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let get = |k: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap()
                .to_string()
        };
        Pg {
            url: get("PGURL="),
            dir: get("PGDIR="),
        }
    }

    fn psql(&self, sql: &str) -> String {
        let o = Command::new("/usr/lib/postgresql/15/bin/psql")
            .args(["-Atc", sql, &self.url])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-test-cluster");
        let _ = Command::new(script).args(["stop", &self.dir]).status();
    }
}

#[test]
fn the_database_is_dumped_by_real_pg_dump_and_its_version_checked() {
    let pg = Pg::start();
    pg.psql("CREATE TABLE upkeep_marker (v text); INSERT INTO upkeep_marker VALUES ('kept')");
    let s = site("10.5.1");
    s.edit_config("file:/var/lib/mmdb/schema", &pg.url);
    let a = s.tarball(&rel("11.0.0"));
    // Mattermost 11 needs PostgreSQL 14; this one is 15: allowed.
    let o = s.up(&["plan", "mattermost", &a, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let p = json(&o);
    assert!(p["refused"].is_null(), "{p}");
    assert!(p["backup_database"] == true);
    // A manifest asking for PostgreSQL 16 (a local override): refused.
    let manifest =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/mattermost.toml"))
            .unwrap()
            .replace("minimum = \"14\"", "minimum = \"16\"");
    s.root
        .write("etc/upkeep/plugins.d/mattermost.toml", manifest, 0o644);
    let o = s.up(&["plan", "mattermost", &a, "--format", "json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let p = json(&o);
    assert_eq!(p["refused"]["rule"], "database-minimum");
    assert!(
        p["refused"]["message"].as_str().unwrap().contains("15."),
        "{p}"
    );
    fs::remove_file(s.root.path("etc/upkeep/plugins.d/mattermost.toml")).unwrap();
    // The upgrade dumps it first with the real pg_dump -Fc.
    let o = upkeep(UP, &["--root", s.r(), "apply", "mattermost", &a]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(s.ping().as_deref(), Some("11.0.0"));
    let o = s.up(&["backups", "mattermost", "--format", "json"]);
    let list = json(&o);
    assert_eq!(list[0]["verified"], true, "{list}");
    let dump = PathBuf::from(list[0]["path"].as_str().unwrap()).join("database.dump");
    let o = Command::new("/usr/lib/postgresql/15/bin/pg_restore")
        .arg("--list")
        .arg(&dump)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("upkeep_marker"));
    let sums = fs::read_to_string(dump.with_file_name("SHA256SUMS")).unwrap();
    assert!(sums.contains("  database.dump\n"), "{sums}");
}

/// The stand-in migrates a real PostgreSQL 15 database (its version in
/// `standin_schema`): after an upgrade the old release refuses it, a plain
/// rollback undoes itself and names `--restore-database`, and that flag
/// restores the backup's dump with the real pg_restore, after saving the
/// database as it was.
#[test]
fn rollback_restores_the_database_only_when_asked_and_saves_it_first() {
    let pg = Pg::start();
    let s = site("9.11.0");
    s.edit_config("file:/var/lib/mmdb/schema", &pg.url);
    s.systemctl("stop");
    s.systemctl("start");
    assert_eq!(s.ping().as_deref(), Some("9.11.0"));
    assert_eq!(pg.psql("SELECT version FROM standin_schema"), "9.11.0");
    let a = s.tarball(&rel("10.5.1"));
    // With the database backup (`s.up` skips it for the file stand-in).
    let o = upkeep(UP, &["--root", s.r(), "apply", "mattermost", &a]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(pg.psql("SELECT version FROM standin_schema"), "10.5.1");
    pg.psql("CREATE TABLE made_after_upgrade (x int)");
    // Without the flag: 9.11.0 refuses the migrated database, the
    // rollback undoes itself and says how to go on.
    let o = s.up(&["rollback", "mattermost"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("add --restore-database"),
        "{}",
        stderr(&o)
    );
    assert_eq!(s.ping().as_deref(), Some("10.5.1"));
    assert_eq!(pg.psql("SELECT version FROM standin_schema"), "10.5.1");
    let o = s.up(&["rollback", "mattermost", "--restore-database", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("would be restored from"),
        "{}",
        stdout(&o)
    );
    assert_eq!(pg.psql("SELECT version FROM standin_schema"), "10.5.1");
    let o = s.up(&["rollback", "mattermost", "--restore-database"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(s.ping().as_deref(), Some("9.11.0"));
    assert_eq!(pg.psql("SELECT version FROM standin_schema"), "9.11.0");
    // pg_restore --clean replaces what the dump holds; a table the dump
    // never had is not its to drop.
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'made_after_upgrade'"),
        "1"
    );
    let said = stdout(&o);
    let before = said
        .split("is saved in ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{said}"));
    let o = Command::new("/usr/lib/postgresql/15/bin/pg_restore")
        .arg("--list")
        .arg(before)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("made_after_upgrade"),
        "the database as it was before the rollback is kept"
    );
}

#[test]
fn dry_run_changes_nothing_and_a_planted_link_is_never_followed() {
    let s = site("9.11.0");
    let a = s.tarball(&rel("10.5.1"));
    let before = s.snapshot();
    let o = s.up(&["apply", "mattermost", &a, "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("dry run: nothing was changed"),
        "{}",
        stdout(&o)
    );
    assert_eq!(s.snapshot(), before);
    assert!(!s.root.path("var/lib/upkeep/backups").exists());
    // Someone plants a link where the release is staged, pointing at a
    // directory of the machine: it is removed as a link, never followed.
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("precious"), b"keep me").unwrap();
    std::os::unix::fs::symlink(outside.path(), s.root.path("opt/.mattermost.upkeep-stage"))
        .unwrap();
    let o = s.up(&["apply", "mattermost", &a]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(s.ping().as_deref(), Some("10.5.1"));
    assert_eq!(
        fs::read(outside.path().join("precious")).unwrap(),
        b"keep me"
    );
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 1);
}

#[test]
fn install_from_nothing_checks_stages_and_starts_and_undoes_a_failed_one() {
    let s = site("9.11.0");
    // Take the hand-made install away: a machine with nothing installed.
    s.systemctl("stop");
    fs::remove_dir_all(s.root.path("opt/mattermost")).unwrap();
    let listen = format!("ServiceSettings.ListenAddress=\":{}\"", s.port);
    let db = "SqlSettings.DataSource=\"file:/var/lib/mmdb/schema\"";
    // A broken release: the start fails, and nothing is left behind.
    let broken = s.tarball(&Release {
        fail_start: true,
        ..rel("9.11.0")
    });
    let o = s.up(&[
        "install",
        "mattermost",
        &broken,
        "--set",
        &listen,
        "--set",
        db,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("undone"), "{}", stderr(&o));
    let beside: Vec<_> = fs::read_dir(s.root.path("opt")).unwrap().collect();
    assert!(beside.is_empty(), "nothing left in /opt: {beside:?}");
    assert!(!s
        .root
        .path("var/lib/upkeep/upgrade/mattermost.journal")
        .exists());
    // A hostile archive: refused before anything is written.
    let evil = s.work.path().join("evil.tar.gz");
    raw_tarball(
        &evil,
        &[(
            "mattermost/../../etc/evil",
            tar::EntryType::Regular,
            0o644,
            b"x",
            None,
        )],
    );
    let o = s.up(&["install", "mattermost", evil.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert!(fs::read_dir(s.root.path("opt")).unwrap().next().is_none());
    // The real one.
    let a = s.tarball(&rel("9.11.0"));
    let o = s.up(&["install", "mattermost", &a, "--set", &listen, "--set", db]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(s.ping().as_deref(), Some("9.11.0"));
    let b = fs::metadata(s.root.path("opt/mattermost/bin/mattermost")).unwrap();
    assert_eq!((b.uid(), b.gid()), (994, 994));
    assert_eq!(
        s.getcap("opt/mattermost/bin/mattermost"),
        "cap_net_bind_service=ep"
    );
    let cfg = String::from_utf8(s.read("opt/mattermost/config/config.json")).unwrap();
    assert!(cfg.contains("file:/var/lib/mmdb/schema"), "{cfg}");
    let mut beside: Vec<String> = fs::read_dir(s.root.path("opt"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["mattermost"]);
    // Again: nothing to do. Another version over it: refused, use apply.
    let before = s.snapshot();
    let o = s.up(&["install", "mattermost", &a]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing to do"), "{}", stdout(&o));
    let newer = s.tarball(&rel("10.5.1"));
    let o = s.up(&["install", "mattermost", &newer]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("apply"), "{}", stderr(&o));
    assert_eq!(s.snapshot(), before);
    // And it upgrades like a hand-made install.
    let o = s.up(&["apply", "mattermost", &newer]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(s.ping().as_deref(), Some("10.5.1"));
}

#[test]
fn rollback_restores_the_previous_release_and_its_config_and_keeps_data() {
    let s = site("9.11.0");
    let cfg_before = String::from_utf8(s.read("opt/mattermost/config/config.json")).unwrap();
    // Nothing to roll back to yet.
    let o = s.up(&["rollback", "mattermost"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let a = s.tarball(&rel("10.5.1"));
    let o = s.up(&[
        "apply",
        "mattermost",
        &a,
        "--set",
        "ServiceSettings.SiteURL=\"https://chat.example.com\"",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(s.ping().as_deref(), Some("10.5.1"));
    // Uploaded after the upgrade: must survive the rollback.
    s.root
        .write("opt/mattermost/data/users/2/new.png", b"new", 0o640);
    // The new release migrated the database: the old one refuses it, so
    // the rollback fails its health check and undoes itself.
    let after = s.snapshot();
    let o = s.up(&["rollback", "mattermost"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("undone"), "{}", stderr(&o));
    assert_eq!(s.ping().as_deref(), Some("10.5.1"));
    assert_eq!(s.snapshot(), after, "exactly as before the rollback");
    // The operator restores the database (here: the stand-in's file).
    fs::write(s.root.path("var/lib/mmdb/schema"), "9.11.0\n").unwrap();
    let o = s.up(&["rollback", "mattermost", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(s.snapshot(), after, "a dry run changes nothing");
    let o = s.up(&["rollback", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(s.ping().as_deref(), Some("9.11.0"));
    assert_eq!(s.read("opt/mattermost/VERSION"), b"9.11.0\n");
    assert_eq!(
        String::from_utf8(s.read("opt/mattermost/config/config.json")).unwrap(),
        cfg_before,
        "the config of the backup"
    );
    assert_eq!(s.read("opt/mattermost/data/users/1/avatar.png"), b"png");
    assert_eq!(s.read("opt/mattermost/data/users/2/new.png"), b"new");
    assert_eq!(s.read("opt/mattermost/tls/key.pem"), b"secret key");
    assert_eq!(
        s.read("opt/mattermost/client/root.html"),
        b"<html>9.11.0</html>"
    );
    let b = fs::metadata(s.root.path("opt/mattermost/bin/mattermost")).unwrap();
    assert_eq!((b.uid(), b.gid()), (994, 994));
    assert_eq!(
        s.getcap("opt/mattermost/bin/mattermost"),
        "cap_net_bind_service=ep"
    );
    // Again: nothing to do, nothing changed.
    let done = s.snapshot();
    let o = s.up(&["rollback", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing to do"), "{}", stdout(&o));
    assert_eq!(s.snapshot(), done);
    assert!(
        !s.root
            .path("var/lib/upkeep/upgrade/mattermost.journal")
            .exists()
            || s.up(&["recover"]).stdout.is_empty()
    );
}

#[test]
fn backup_now_is_verified_and_listed_and_changes_nothing_installed() {
    let s = site("9.11.0");
    let before = s.snapshot();
    let o = s.up(&[
        "backup",
        "mattermost",
        "--skip-db-backup",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = PathBuf::from(json(&o)["path"].as_str().unwrap());
    assert_eq!(
        fs::read(dir.join("data/users/1/avatar.png")).unwrap(),
        b"png"
    );
    let m = fs::metadata(dir.join("data/users/1/avatar.png")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (994, 994, 0o640));
    assert!(fs::read_to_string(dir.join("SHA256SUMS"))
        .unwrap()
        .contains("  data/users/1/avatar.png\n"));
    assert_eq!(s.snapshot(), before);
    let o = s.up(&["backups", "mattermost", "--format", "json"]);
    assert_eq!(json(&o)[0]["verified"], true, "{}", stdout(&o));
    // Without --skip-db-backup the real pg_dump cannot reach the
    // stand-in's database: the backup fails and leaves nothing.
    let o = s.up(&["backup", "mattermost"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        fs::read_dir(s.root.path("var/lib/upkeep/backups/mattermost"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count(),
        1
    );
}

/// `--set` that would drop a whole section, go through a value that is not
/// an object, or has an empty key part: refused as usage (2) naming the
/// key, before anything is stopped or written; a config.json that is not
/// an object at all is malformed input (65).
#[test]
fn a_set_that_replaces_a_section_or_walks_through_a_value_is_refused() {
    let s = site("9.11.0");
    let a = s.tarball(&rel("10.5.1"));
    let before = s.snapshot();
    for (set, names) in [
        ("ServiceSettings=1", "ServiceSettings is a section"),
        ("FileSettings=null", "FileSettings is a section"),
        (
            "ServiceSettings.SiteURL.Host=\"x\"",
            "ServiceSettings.SiteURL is not an object",
        ),
        ("A..B=1", "empty key part"),
        (".A=1", "empty key part"),
        ("=1", "empty key part"),
    ] {
        for cmd in ["plan", "apply"] {
            let o = s.up(&[cmd, "mattermost", &a, "--set", set]);
            assert_eq!(
                o.status.code(),
                Some(2),
                "{cmd} --set {set}: {}",
                stderr(&o)
            );
            assert!(
                stderr(&o).contains(names),
                "{cmd} --set {set}: {}",
                stderr(&o)
            );
        }
    }
    assert_eq!(s.snapshot(), before);
    assert_eq!(s.ping().as_deref(), Some("9.11.0"), "still running");
    s.edit_config(
        &fs::read_to_string(s.root.path("opt/mattermost/config/config.json")).unwrap(),
        "[1]\n",
    );
    let before = s.snapshot();
    let o = s.up(&["plan", "mattermost", &a, "--set", "A.B=1"]);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a JSON object"), "{}", stderr(&o));
    assert_eq!(s.snapshot(), before);
}

/// mattermost-10.5.0-linux-amd64.tar.gz holding VERSION 10.5.1: the
/// plan's version comes from the contents, and a name that says another
/// version is malformed input (65, rule archive-name-mismatch) with
/// nothing changed; a name that carries no version is fine.
#[test]
fn an_archive_whose_name_and_version_file_disagree_is_refused() {
    let s = site("9.11.0");
    let a = s.tarball(&rel("10.5.1"));
    let renamed = s.work.path().join("mattermost-10.5.0-linux-amd64.tar.gz");
    fs::copy(&a, &renamed).unwrap();
    let renamed = renamed.display().to_string();
    let before = s.snapshot();
    for cmd in ["plan", "apply"] {
        let o = s.up(&[cmd, "mattermost", &renamed]);
        assert_eq!(o.status.code(), Some(65), "{cmd}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("archive-name-mismatch"), "{cmd}: {e}");
        assert!(e.contains("10.5.0") && e.contains("10.5.1"), "{cmd}: {e}");
    }
    assert_eq!(s.snapshot(), before);
    assert_eq!(s.ping().as_deref(), Some("9.11.0"));
    let plain = s.work.path().join("release.tar.gz");
    fs::copy(&a, &plain).unwrap();
    let o = s.up(&[
        "plan",
        "mattermost",
        plain.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["to"], "10.5.1");
}

/// config/config.json as a symbolic link (here to a file elsewhere in the
/// root; outside it would be worse): found by the plan, so apply refuses
/// (3, rule config-is-a-link) before it stops the service or writes.
#[test]
fn a_config_json_that_is_a_link_is_refused_by_the_plan_with_the_service_running() {
    let s = site("9.11.0");
    let cfg = s.root.path("opt/mattermost/config/config.json");
    fs::copy(&cfg, s.root.path("etc/mm-config.json")).unwrap();
    fs::remove_file(&cfg).unwrap();
    std::os::unix::fs::symlink("/etc/mm-config.json", &cfg).unwrap();
    let before = s.snapshot();
    let a = s.tarball(&rel("10.5.1"));
    let o = s.up(&["plan", "mattermost", &a]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("config-is-a-link"), "{}", stderr(&o));
    for extra in [
        &[][..],
        &["--set", "ServiceSettings.SiteURL=\"https://x.example\""][..],
    ] {
        let mut args = vec!["apply", "mattermost", a.as_str()];
        args.extend_from_slice(extra);
        let o = s.up(&args);
        assert_eq!(o.status.code(), Some(3), "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("config-is-a-link"), "{}", stderr(&o));
    }
    assert_eq!(s.snapshot(), before);
    assert_eq!(
        fs::read_link(&cfg).unwrap(),
        Path::new("/etc/mm-config.json")
    );
    assert_eq!(s.ping().as_deref(), Some("9.11.0"), "never stopped");

    // rollback, too, refuses before it stops anything.
    fs::remove_file(&cfg).unwrap();
    fs::copy(s.root.path("etc/mm-config.json"), &cfg).unwrap();
    let o = s.up(&["apply", "mattermost", &a]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    fs::rename(&cfg, s.root.path("etc/mm-config.json")).unwrap();
    std::os::unix::fs::symlink("/etc/mm-config.json", &cfg).unwrap();
    let before = s.snapshot();
    let o = s.up(&["rollback", "mattermost"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("config-is-a-link"), "{}", stderr(&o));
    assert_eq!(s.snapshot(), before);
    assert_eq!(s.ping().as_deref(), Some("10.5.1"), "never stopped");
}

/// FileSettings.Directory: empty means the default ./data/; the install
/// directory itself, above it, or / is malformed (65, naming the setting)
/// before anything changes; an absolute directory outside the install is
/// data outside the tree: backed up (storage is local), not preserved.
#[test]
fn odd_data_directories_are_defaulted_refused_or_backed_up_from_outside() {
    let s = site("9.11.0");
    let a = s.tarball(&rel("10.5.1"));
    let set_dir = |v: &str| {
        let cfg = s.root.path("opt/mattermost/config/config.json");
        let text = fs::read_to_string(&cfg).unwrap();
        let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        doc["FileSettings"]["Directory"] = v.into();
        fs::write(&cfg, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    };
    let plan = |what: &str| {
        let o = s.up(&["plan", "mattermost", &a, "--format", "json"]);
        assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&o));
        json(&o)
    };

    set_dir("");
    let p = plan("empty");
    let data = s.root.path("opt/mattermost/data").display().to_string();
    assert_eq!(p["backup_data"], data.as_str(), "empty is ./data/");

    for bad in [
        "..",
        "/",
        "./data/../..",
        "/opt/mattermost",
        "/opt/mattermost/",
        "/opt",
        ".",
    ] {
        set_dir(bad);
        let before = s.snapshot();
        for cmd in ["plan", "apply"] {
            let o = s.up(&[cmd, "mattermost", &a]);
            assert_eq!(o.status.code(), Some(65), "{cmd} {bad:?}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("FileSettings.Directory"),
                "{cmd} {bad:?}: {}",
                stderr(&o)
            );
        }
        let o = s.up(&["backup", "mattermost", "--skip-db-backup"]);
        assert_eq!(o.status.code(), Some(65), "backup {bad:?}: {}", stderr(&o));
        assert_eq!(s.snapshot(), before, "{bad:?}");
        assert_eq!(s.ping().as_deref(), Some("9.11.0"));
    }

    s.root
        .write("srv/mmdata/users/2/avatar.png", b"png2", 0o640);
    set_dir("/srv/mmdata");
    let p = plan("outside");
    let outside = s.root.path("srv/mmdata").display().to_string();
    assert_eq!(p["backup_data"], outside.as_str());
    assert!(
        !p["preserve"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().contains("srv")),
        "{}",
        p["preserve"]
    );
    set_dir("./data/../files");
    s.root.write("opt/mattermost/files/f", b"f", 0o640);
    let p = plan("inside after ..");
    let files = s.root.path("opt/mattermost/files").display().to_string();
    assert_eq!(p["backup_data"], files.as_str());
    assert!(
        p["preserve"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "files"),
        "{}",
        p["preserve"]
    );
}
