//! Fleets: the Ansible role in packaging/ansible/ driven by Debian's
//! ansible-core against three real "machines": network namespaces made by
//! scripts/netns-nodes, each running its own sshd on its own address, and a
//! fourth running PostgreSQL 15. The controller runs in a namespace of its
//! own, so all traffic stays on the addresses the test made. Each node's
//! upkeep works on its own --root; the nodes share no state.
//!
//! Run on its own: `cargo test --test fleet` (needs root).
#![allow(clippy::disallowed_methods)] // tests build their roots by path

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Condvar, Mutex};

/// At most two fleets at a time: each is cheap to make, but ansible is
/// not cheap to run and the CI machine has two cores. (Each test has its
/// own subnet and namespaces, so two never meet.)
static RUNNING: (Mutex<u8>, Condvar) = (Mutex::new(0), Condvar::new());

struct Slot;

impl Slot {
    fn take() -> Slot {
        let (m, cv) = &RUNNING;
        let mut n = m.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= 2 {
            n = cv.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (m, cv) = &RUNNING;
        *m.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        cv.notify_one();
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Three nodes and a database, torn down on drop (also on a failed
/// assertion: the guard unwinds).
pub struct Fleet {
    dir: tempfile::TempDir,
    net: u8,
    _slot: Slot,
}

impl Fleet {
    pub fn up(net: u8) -> Fleet {
        let slot = Slot::take();
        let dir = tempfile::Builder::new()
            .prefix("upkeep-fleet-")
            .tempdir()
            .expect("tempdir");
        let f = Fleet {
            dir,
            net,
            _slot: slot,
        };
        let o = Command::new(repo().join("scripts/netns-nodes"))
            .arg("up")
            .arg(f.dir())
            .arg(net.to_string())
            .output()
            .expect("run scripts/netns-nodes");
        assert!(o.status.success(), "netns-nodes up: {}", text(&o));
        f
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn prefix(&self) -> String {
        format!("upk{}", self.net)
    }

    pub fn addr(&self, host: u8) -> String {
        format!("10.231.{}.{host}", self.net)
    }

    pub fn node_addr(&self, node: &str) -> String {
        let i: u8 = node.trim_start_matches('n').parse().expect("node name");
        self.addr(10 + i)
    }

    pub fn root(&self, node: &str) -> PathBuf {
        self.dir().join("nodes").join(node).join("root")
    }

    /// A command run inside the controller's namespace.
    pub fn ctl(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &format!("{}-ctl", self.prefix()), prog]);
        c
    }

    /// ssh from the controller to a node with the test's key.
    pub fn ssh(&self, node_addr: &str, extra: &[&str], remote: &str) -> Output {
        let mut c = self.ctl("ssh");
        c.arg("-F")
            .arg(self.dir().join("ssh_config"))
            .args(["-o", "BatchMode=yes"])
            .args(extra)
            .arg(node_addr)
            .arg(remote);
        c.output().expect("ssh")
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/netns-nodes"))
            .arg("down")
            .arg(self.dir.path())
            .status();
    }
}

fn namespaces() -> String {
    let o = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn nodes_are_separate_machines_reachable_by_key_only() {
    let prefix;
    {
        let f = Fleet::up(101);
        prefix = f.prefix();
        let stranger = f.dir().join("stranger");
        let o = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&stranger)
            .output()
            .expect("ssh-keygen");
        assert!(o.status.success());
        for n in ["n1", "n2", "n3"] {
            let addr = f.node_addr(n);
            let o = f.ssh(&addr, &[], "ip -o -4 addr show scope global");
            assert!(o.status.success(), "ssh {n}: {}", text(&o));
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            // Each node has its own address and no other.
            assert!(out.contains(&format!("{addr}/24")), "{n}: {out}");
            assert_eq!(out.lines().count(), 1, "{n}: {out}");
            // It reaches the database server over the test's network.
            let o = f.ssh(
                &addr,
                &[],
                &format!(
                    "psql -h {} -U postgres -Atc 'show server_version'",
                    f.addr(20)
                ),
            );
            assert!(o.status.success(), "psql from {n}: {}", text(&o));
            assert!(String::from_utf8_lossy(&o.stdout).starts_with("15."));
            // With another key there is no way in (and no password asked).
            let o = f
                .ctl("ssh")
                .args([
                    "-F",
                    "/dev/null",
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "IdentitiesOnly=yes",
                ])
                .arg("-o")
                .arg(format!(
                    "UserKnownHostsFile={}",
                    f.dir().join("known_hosts").display()
                ))
                .arg("-i")
                .arg(&stranger)
                .arg(format!("root@{addr}"))
                .arg("true")
                .output()
                .expect("ssh");
            assert!(!o.status.success(), "{n} let in a stranger's key");
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
                "{}",
                text(&o)
            );
        }
        // The machine's own namespace has none of the test's addresses.
        let o = Command::new("ip")
            .args(["-o", "-4", "addr"])
            .output()
            .expect("ip addr");
        assert!(!String::from_utf8_lossy(&o.stdout).contains("10.231."));
        assert!(namespaces().contains(&format!("{prefix}-db")));
    }
    // Dropped: nothing of it is left.
    assert!(
        !namespaces().contains(&format!("{prefix}-")),
        "{}",
        namespaces()
    );
}

// ---------------------------------------------------------------------
// The role, against the nodes, with the real upkeep-upgrade (built by
// cargo, installed on each node by the role's `copy` method) upgrading a
// TEGU install on each node's root: preflight against the database
// server over the test network, the real pg_dump and pg_restore --list,
// the capability set with the real kernel call and read back.
//
// A node has no systemd (none can run as PID 1 here): its `systemctl` is
// a STAND-IN shell script run by busybox-static inside the node's root
// (the engine runs it with chroot, as on any --root). "tegu.service" is
// stood in for by busybox httpd on the node's own address, answering
// with the version the installed sbin/tegu carries. What is tested is the
// role's job (order, run-once, refusals, rollback, idempotence, check
// mode) done by the real engine; the order is read from the engine's own
// log (each phase's begin and end, in nanoseconds) and from the times of
// the stand-in's stop and start files.

const OLD: &str = "1.0.0";
const NEW: &str = "1.1.0";
const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// The engine, as cargo built it for this test.
fn engine() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_upkeep-upgrade"))
}

fn run_ok(c: &mut Command) -> Output {
    let o = c.output().expect("run");
    assert!(o.status.success(), "{c:?}: {}", text(&o));
    o
}

/// What sbin/tegu carries: an x86-64 ELF header, then the version.
fn sbin_tegu(version: &str) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    h[16] = 2;
    h[18] = 62;
    h[20] = 1;
    h.extend_from_slice(version.as_bytes());
    h
}

/// tegu-ent-vVERSION-x86_64.tar.gz as the vendor ships it: VERSION,
/// bin/tegu-admin, sbin/tegu under one top directory.
fn archive(dir: &Path, version: &str) -> PathBuf {
    let top = format!("tegu-ent-v{version}-x86_64");
    let src = dir.join(format!("src-{version}"));
    let t = src.join(&top);
    for d in ["bin", "sbin"] {
        std::fs::create_dir_all(t.join(d)).expect("fleet test");
    }
    std::fs::write(t.join("VERSION"), format!("{version}\n")).expect("fleet test");
    std::fs::write(
        t.join("bin/tegu-admin"),
        format!("#!/bin/sh\necho {version}\n"),
    )
    .expect("fleet test");
    std::fs::write(t.join("sbin/tegu"), sbin_tegu(version)).expect("fleet test");
    run_ok(
        Command::new("chmod")
            .arg("755")
            .arg(t.join("bin/tegu-admin"))
            .arg(t.join("sbin/tegu")),
    );
    let out = dir.join(format!("{top}.tar.gz"));
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&src)
            .arg("-czf")
            .arg(&out)
            .arg(&top),
    );
    out
}

const SYSTEMCTL: &str = r#"#!/bin/sh
# STAND-IN for systemctl on a fleet test node (no systemd here): one
# service, tegu.service, stood in for by busybox httpd on the node's
# address answering the version the installed sbin/tegu carries. Each stop
# and start leaves a file in /var/log/standin whose time says when.
[ "$1" = is-active ] && [ "$2" = --quiet ] && set -- is-active "$3"
pidf=/run/tegu.pid
running() { [ -f $pidf ] && kill -0 "$(cat $pidf)" 2>/dev/null; }
case "$1" in
start)
  running && exit 0
  v=$(tail -c +65 /opt/tegu/sbin/tegu)
  if [ -f /etc/upkeep-standin/fail-start ] && [ "$v" != "$(cat /etc/upkeep-standin/fail-start)" ]; then
    echo "tegu $v did not start (fault point fail-start)" >&2
    exit 1
  fi
  mkdir -p /run/www/api/v4/system
  printf '{"status":"OK","version":"%s"}' "$v" >/run/www/api/v4/system/ping.json
  setsid httpd -f -p @ADDR@:8065 -h /run/www -c /etc/httpd.conf </dev/null >>/var/log/httpd.log 2>&1 &
  echo $! >$pidf
  touch "/var/log/standin/start.$$"
  ;;
stop)
  running || exit 0
  pid=$(cat $pidf)
  kill "$pid"
  n=0
  while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done
  rm -f $pidf
  touch "/var/log/standin/stop.$$"
  ;;
is-active) running ;;
*) echo "stand-in systemctl: $1 not supported" >&2; exit 1 ;;
esac
"#;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Recap {
    ok: u32,
    changed: u32,
    failed: u32,
    unreachable: u32,
}

struct Play {
    out: Output,
}

impl Play {
    fn ok(&self) -> bool {
        self.out.status.success()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    /// The PLAY RECAP line of each host.
    fn recap(&self) -> std::collections::BTreeMap<String, Recap> {
        let s = self.stdout();
        let mut m = std::collections::BTreeMap::new();
        let Some((_, tail)) = s.rsplit_once("PLAY RECAP") else {
            return m;
        };
        for line in tail.lines() {
            let Some((host, rest)) = line.split_once(':') else {
                continue;
            };
            let mut r = Recap::default();
            for kv in rest.split_whitespace() {
                if let Some((k, v)) = kv.split_once('=') {
                    let v = v.parse().unwrap_or(0);
                    match k {
                        "ok" => r.ok = v,
                        "changed" => r.changed = v,
                        "failed" => r.failed = v,
                        "unreachable" => r.unreachable = v,
                        _ => {}
                    }
                }
            }
            m.insert(host.trim().to_string(), r);
        }
        m
    }
}

impl std::fmt::Debug for Play {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&text(&self.out))
    }
}

/// What happened on a node, with times in nanoseconds: the engine's log
/// (`prepare`, `stop-begin`, `stop`, … for each phase's begin and end,
/// `failed`, `rollback`) and the stand-in's `service-stop`/`service-start`.
struct Journal(Vec<(u128, String)>);

impl Journal {
    fn times(&self, what: &str) -> Vec<u128> {
        self.0
            .iter()
            .filter(|(_, w)| w == what)
            .map(|(t, _)| *t)
            .collect()
    }
    fn has(&self, what: &str) -> bool {
        !self.times(what).is_empty()
    }
    /// Whether the engine changed anything (only the stand-in's own
    /// service calls of the test's set-up are there otherwise).
    fn untouched(&self) -> bool {
        self.0.iter().all(|(_, w)| w.starts_with("service-"))
    }
}

/// The nodes with TEGU OLD installed as the vendor does (the capability
/// on sbin/tegu), its service running on each node's address, a database
/// `tegu` on the database server.
struct Tegu {
    f: Fleet,
    new: PathBuf,
}

impl Tegu {
    fn up(net: u8) -> Tegu {
        let f = Fleet::up(net);
        let old = archive(f.dir(), OLD);
        let new = archive(f.dir(), NEW);
        let db = f.addr(20);
        run_ok(
            f.ctl("psql")
                .args(["-h", &db, "-U", "postgres", "-qc", "create database tegu"]),
        );
        run_ok(f.ctl("psql").args([
            "-h",
            &db,
            "-U",
            "postgres",
            "-d",
            "tegu",
            "-qc",
            "create table mail(id int); insert into mail values (1),(2),(3)",
        ]));
        for n in NODES {
            Self::install(&f, n, &old, &db);
        }
        let t = Tegu { f, new };
        for n in NODES {
            t.service(n, "start");
        }
        for n in NODES {
            assert_eq!(t.answers(n).as_deref(), Some(OLD), "{n} did not come up");
        }
        t
    }

    /// The node's root: busybox-static as its shell and tools, the
    /// stand-in systemctl, /dev/null, and TEGU from the archive.
    fn install(f: &Fleet, n: &str, old: &Path, db: &str) {
        let root = f.root(n);
        for d in [
            "bin",
            "usr/bin",
            "run",
            "dev",
            "opt",
            "var/log/standin",
            "etc/upkeep-standin",
        ] {
            std::fs::create_dir_all(root.join(d)).expect("fleet test");
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
        for tool in [
            "sh", "cat", "kill", "sleep", "rm", "mkdir", "printf", "touch", "tail", "setsid",
            "httpd",
        ] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(tool)).expect("fleet test");
        }
        std::fs::write(
            root.join("usr/bin/systemctl"),
            SYSTEMCTL.replace("@ADDR@", &f.node_addr(n)),
        )
        .expect("fleet test");
        run_ok(
            Command::new("chmod")
                .arg("755")
                .arg(root.join("usr/bin/systemctl")),
        );
        std::fs::write(root.join("etc/httpd.conf"), ".json:application/json\n")
            .expect("fleet test");
        run_ok(
            Command::new("mknod")
                .args(["-m", "666"])
                .arg(root.join("dev/null"))
                .args(["c", "1", "3"]),
        );
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
            .expect("fleet test");
        std::fs::write(root.join("etc/group"), "root:x:0:\n").expect("fleet test");
        let opt = root.join("opt");
        run_ok(Command::new("tar").arg("-C").arg(&opt).arg("-xzf").arg(old));
        std::fs::rename(
            opt.join(format!("tegu-ent-v{OLD}-x86_64")),
            opt.join("tegu"),
        )
        .expect("fleet test");
        run_ok(
            Command::new("setcap")
                .arg("cap_net_bind_service=+eip")
                .arg(opt.join("tegu/sbin/tegu")),
        );
        for d in ["etc", "log"] {
            std::fs::create_dir_all(opt.join("tegu").join(d)).expect("fleet test");
        }
        std::fs::write(opt.join("tegu/log/tegu.log"), "").expect("fleet test");
        std::fs::write(
            opt.join("tegu/etc/tegu.conf"),
            format!(
                "db_host = \"{db}\"\ndb_port = 5432\ndb_user = \"postgres\"\ndb_name = \"tegu\"\ndb_sslmode = \"disable\"\n"
            ),
        )
        .expect("fleet test");
    }

    fn conf(&self, node: &str) -> PathBuf {
        self.f.root(node).join("opt/tegu/etc/tegu.conf")
    }

    /// The stand-in systemctl, run in the node's namespace inside its root.
    fn service(&self, node: &str, what: &str) {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &format!("{}-{node}", self.f.prefix())])
            .arg("chroot")
            .arg(self.f.root(node))
            .args(["/usr/bin/systemctl", what, "tegu.service"]);
        run_ok(&mut c);
    }

    /// The version the node's service answers with, asked from the
    /// controller over the test network; None when nothing answers.
    fn answers(&self, node: &str) -> Option<String> {
        let url = format!(
            "http://{}:8065/api/v4/system/ping.json",
            self.f.node_addr(node)
        );
        for _ in 0..150 {
            let o = self
                .f
                .ctl("python3")
                .args([
                    "-c",
                    "import json,sys,urllib.request;print(json.load(urllib.request.urlopen(sys.argv[1],timeout=2))['version'])",
                    &url,
                ])
                .output()
                .expect("python3");
            if o.status.success() {
                return Some(String::from_utf8_lossy(&o.stdout).trim().to_string());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        None
    }

    /// The version of the sbin/tegu in place (the vendor's copy writes no
    /// version file).
    fn installed(&self, node: &str) -> String {
        let b = std::fs::read(self.f.root(node).join("opt/tegu/sbin/tegu")).expect("fleet test");
        String::from_utf8_lossy(&b[64..]).into_owned()
    }

    fn getcap(&self, node: &str) -> String {
        let o = Command::new("getcap")
            .arg(self.f.root(node).join("opt/tegu/sbin/tegu"))
            .output()
            .expect("getcap");
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }

    fn pid(&self, node: &str) -> Option<String> {
        std::fs::read_to_string(self.f.root(node).join("run/tegu.pid"))
            .ok()
            .map(|s| s.trim().to_string())
    }

    fn journal(&self, node: &str) -> Journal {
        let root = self.f.root(node);
        let mut out = Vec::new();
        let log =
            std::fs::read_to_string(root.join("var/log/upkeep/upkeep.log")).unwrap_or_default();
        for l in log.lines() {
            let Some((head, t)) = l.rsplit_once(" t=") else {
                if l.contains("failed, everything made was undone") {
                    out.push((0, "failed".to_string()));
                } else if l.contains(" rolled back from ") {
                    out.push((0, "rollback".to_string()));
                }
                continue;
            };
            let (Ok(t), Some(rest)) = (t.parse::<u128>(), head.split_once(": phase ")) else {
                continue;
            };
            let what = match rest.1.split_once(' ') {
                Some((p, "begin")) => format!("{p}-begin"),
                Some((p, _)) => p.to_string(),
                None => continue,
            };
            out.push((t, what));
        }
        for e in std::fs::read_dir(root.join("var/log/standin"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let t = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            if let Some((what, _)) = name.split_once('.') {
                out.push((t, format!("service-{what}")));
            }
        }
        out.sort();
        Journal(out)
    }

    /// Database dumps on every node's root.
    fn dumps(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for n in NODES {
            let base = self.f.root(n).join("var/lib/upkeep/backups/tegu");
            for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
                let p = e.path().join("database.dump");
                if p.exists() {
                    v.push(p);
                }
            }
        }
        v
    }

    /// Connections pg_dump made, from the PostgreSQL server's own log.
    fn pg_dump_connections(&self) -> usize {
        let log =
            std::fs::read_to_string(self.f.dir().join("db/postgresql.log")).expect("fleet test");
        log.lines()
            .filter(|l| {
                l.contains("connection authorized") && l.contains("application_name=pg_dump")
            })
            .count()
    }

    fn fault(&self, node: &str, name: &str, content: &str) {
        std::fs::write(
            self.f.root(node).join("etc/upkeep-standin").join(name),
            content,
        )
        .expect("fleet test");
    }

    /// ansible-playbook (Debian's) on packaging/ansible/upgrade.yml, run in
    /// the controller's namespace, with everything it writes under the
    /// fleet's directory.
    fn play(&self, vars: serde_json::Value, check: bool) -> Play {
        let d = self.f.dir();
        let mut all = serde_json::json!({
            "upkeep_product": "tegu",
            "upkeep_archive": self.new,
            "upkeep_install_method": "copy",
            "upkeep_bin_dir": "{{ upkeep_root }}/usr/bin",
            "upkeep_copy_files": {"upkeep-upgrade": engine()},
            "upkeep_health_url": "http://{{ hostvars[inventory_hostname].ansible_host }}:8065/api/v4/system/ping.json",
            "upkeep_health_version_field": "version",
            "upkeep_health_delay": 0.2,
            "upkeep_health_retries": 100,
            "upkeep_rollout": "phased",
            "upkeep_serial": 1,
        });
        for (k, v) in vars.as_object().expect("fleet test") {
            all[k] = v.clone();
        }
        let vars_file = d.join("vars.json");
        std::fs::write(&vars_file, all.to_string()).expect("fleet test");
        let home = d.join("ansible-home");
        std::fs::create_dir_all(home.join("tmp")).expect("fleet test");
        let mut c = self.f.ctl("ansible-playbook");
        c.arg("-i")
            .arg(d.join("inventory.ini"))
            .arg(repo().join("packaging/ansible/upgrade.yml"))
            .arg("-e")
            .arg(format!("@{}", vars_file.display()))
            .env(
                "ANSIBLE_CONFIG",
                repo().join("packaging/ansible/ansible.cfg"),
            )
            .env("HOME", &home)
            .env("ANSIBLE_HOME", &home)
            .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
            .env("ANSIBLE_SSH_CONTROL_PATH_DIR", home.join("cp"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORKS", "5");
        if check {
            c.arg("--check");
        }
        let started = std::time::Instant::now();
        let out = c.output().expect("ansible-playbook");
        eprintln!(
            "ansible-playbook{} took {:?}",
            if check { " --check" } else { "" },
            started.elapsed()
        );
        if std::env::var_os("FLEET_VERBOSE").is_some() {
            eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        }
        Play { out }
    }
}

fn first(v: &[u128]) -> u128 {
    *v.iter().min().expect("a time")
}

fn last(v: &[u128]) -> u128 {
    *v.iter().max().expect("a time")
}

/// Every node on NEW (sbin/tegu with its capability), answering with NEW,
/// and the play reporting it.
fn assert_upgraded(t: &Tegu, p: &Play) {
    assert!(p.ok(), "{p:?}");
    let recap = p.recap();
    for n in NODES {
        assert_eq!(t.installed(n), NEW, "{n}");
        assert_eq!(t.getcap(n), "cap_net_bind_service=eip", "{n}");
        assert_eq!(t.answers(n).as_deref(), Some(NEW), "{n}");
        let r = recap[n];
        assert_eq!((r.failed, r.unreachable), (0, 0), "{n}: {p:?}");
        assert!(r.changed > 0, "{n}: {p:?}");
    }
}

#[test]
fn tegu_rollout_on_three_nodes_no_swap_before_every_node_stopped() {
    let t = Tegu::up(102);
    let p = t.play(serde_json::json!({"upkeep_serial": 2}), false);
    assert_upgraded(&t, &p);
    let j: Vec<Journal> = NODES.iter().map(|n| t.journal(n)).collect();
    for (n, j) in NODES.iter().zip(&j) {
        for phase in ["prepare", "stop", "swap", "start", "verify"] {
            assert_eq!(j.times(phase).len(), 1, "{n} {phase}: {:?}", j.0);
        }
    }
    let all = |what: &str| -> Vec<u128> { j.iter().flat_map(|j| j.times(what)).collect() };
    // Every node prepared (and the database dumped) before any stopped;
    // every node stopped before any node began its swap; every node
    // swapped before any started.
    assert!(last(&all("prepare")) < first(&all("stop-begin")));
    assert!(
        last(&all("stop")) < first(&all("swap-begin")),
        "a node swapped before every node had stopped: {:?}",
        j.iter().map(|j| &j.0).collect::<Vec<_>>()
    );
    assert!(last(&all("service-stop")) < first(&all("swap-begin")));
    assert!(last(&all("swap")) < first(&all("start-begin")));
    // start + verify in serial batches of 2: n1 and n2 verified before n3
    // started.
    assert!(
        last(&j[0].times("verify")).max(last(&j[1].times("verify")))
            < first(&j[2].times("start-begin"))
    );
    // The database backup: once, by the first node, verified readable.
    assert_eq!(t.dumps().len(), 1, "{:?}", t.dumps());
    assert!(t.dumps()[0].starts_with(t.f.root("n1")));
    assert_eq!(t.pg_dump_connections(), 1);
}

#[test]
fn rolling_rollout_backs_up_once_across_serial_batches_and_a_second_run_changes_nothing() {
    let t = Tegu::up(103);
    let p = t.play(serde_json::json!({"upkeep_rollout": "rolling"}), false);
    assert_upgraded(&t, &p);
    // serial: 1 makes three batches: run_once inside them would dump three
    // times. The database was dumped once, by the first node.
    let dumps = t.dumps();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    assert!(dumps[0].starts_with(t.f.root("n1")));
    let listed = run_ok(
        Command::new("/usr/lib/postgresql/15/bin/pg_restore")
            .arg("--list")
            .arg(&dumps[0]),
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("TABLE public mail"));
    assert_eq!(t.pg_dump_connections(), 1);
    // One node at a time: each node verified before the next one stopped.
    let j: Vec<Journal> = NODES.iter().map(|n| t.journal(n)).collect();
    for w in j.windows(2) {
        assert!(last(&w[0].times("verify")) < first(&w[1].times("stop-begin")));
    }

    // Again: nothing to do, nothing changed, nothing touched.
    let before: Vec<usize> = NODES.iter().map(|n| t.journal(n).0.len()).collect();
    let pids: Vec<Option<String>> = NODES.iter().map(|n| t.pid(n)).collect();
    let p = t.play(serde_json::json!({"upkeep_rollout": "rolling"}), false);
    assert!(p.ok(), "{p:?}");
    for (i, n) in NODES.iter().enumerate() {
        let r = p.recap()[*n];
        assert_eq!((r.changed, r.failed), (0, 0), "{n}: {p:?}");
        assert_eq!(t.journal(n).0.len(), before[i], "{n}");
        assert_eq!(t.pid(n), pids[i], "{n}: the service was restarted");
    }
    assert!(p.stdout().contains("\"status\": \"uptodate\""), "{p:?}");
    assert_eq!(t.dumps().len(), 1);
}

/// Nothing of the product changed on any node: version, service, no
/// phase logged, no backup.
fn assert_untouched(t: &Tegu, pids: &[Option<String>]) {
    for (i, n) in NODES.iter().enumerate() {
        assert_eq!(t.installed(n), OLD, "{n}");
        assert_eq!(t.answers(n).as_deref(), Some(OLD), "{n}");
        assert_eq!(t.pid(n), pids[i], "{n}: the service was restarted");
        let j = t.journal(n);
        assert!(j.untouched(), "{n}: {:?}", j.0);
    }
    assert_eq!(t.dumps().len(), 0);
    assert_eq!(t.pg_dump_connections(), 0);
}

#[test]
fn refusals_stop_the_play_before_any_node_changes() {
    let t = Tegu::up(104);
    let pids: Vec<Option<String>> = NODES.iter().map(|n| t.pid(n)).collect();
    // A preflight failure on one node: n3 cannot reach the database.
    let cfg = t.conf("n3");
    let good = std::fs::read_to_string(&cfg).expect("fleet test");
    std::fs::write(&cfg, good.replace("5432", "5439")).expect("fleet test");
    let p = t.play(serde_json::json!({}), false);
    assert!(!p.ok(), "{p:?}");
    assert!(
        p.stdout()
            .contains("n3 refuses tegu 1.0.0 -> 1.1.0 (preflight)"),
        "{p:?}"
    );
    assert_untouched(&t, &pids);
    std::fs::write(&cfg, &good).expect("fleet test");

    // Version skew: n2 runs another version than the others.
    let v2 = t.f.root("n2").join("opt/tegu/VERSION");
    std::fs::write(&v2, "1.0.5\n").expect("fleet test");
    let p = t.play(serde_json::json!({}), false);
    assert!(!p.ok(), "{p:?}");
    assert!(p.stdout().contains("version skew between nodes"), "{p:?}");
    std::fs::write(&v2, format!("{OLD}\n")).expect("fleet test");
    assert_untouched(&t, &pids);

    // A downgrade: n1 is already newer than the archive.
    let v1 = t.f.root("n1").join("opt/tegu/VERSION");
    std::fs::write(&v1, "2.0.0\n").expect("fleet test");
    let p = t.play(serde_json::json!({}), false);
    assert!(!p.ok(), "{p:?}");
    assert!(p.stdout().contains("(downgrade)"), "{p:?}");
    std::fs::write(&v1, format!("{OLD}\n")).expect("fleet test");
    assert_untouched(&t, &pids);
}

#[test]
fn a_failed_start_rolls_back_that_node_and_leaves_the_others_alone() {
    let t = Tegu::up(105);
    // n2's new release does not start (only OLD does).
    t.fault("n2", "fail-start", OLD);
    let n3_pid = t.pid("n3");
    let p = t.play(serde_json::json!({"upkeep_rollout": "rolling"}), false);
    assert!(!p.ok(), "{p:?}");
    // n1 went first and is upgraded.
    assert_eq!(t.installed("n1"), NEW);
    assert_eq!(t.answers("n1").as_deref(), Some(NEW));
    // n2 failed to start and is back on OLD (the engine undid its own
    // run: the capability is back too), running.
    assert_eq!(t.installed("n2"), OLD);
    assert_eq!(t.getcap("n2"), "cap_net_bind_service=eip");
    assert_eq!(t.answers("n2").as_deref(), Some(OLD));
    assert!(t.journal("n2").has("failed"), "{:?}", t.journal("n2").0);
    assert!(p.stdout().contains("rolled back to 1.0.0"), "{p:?}");
    // n3 was never touched and kept running all along.
    assert_eq!(t.installed("n3"), OLD);
    assert_eq!(t.answers("n3").as_deref(), Some(OLD));
    assert_eq!(t.pid("n3"), n3_pid);
    let j3 = t.journal("n3");
    assert!(j3.untouched(), "{:?}", j3.0);
    assert_eq!(p.recap()["n2"].failed, 1, "{p:?}");
}

#[test]
fn check_mode_changes_nothing() {
    let t = Tegu::up(106);
    // upkeep installed and the archive pushed already (a real run does
    // that first; without them check mode has no plan to show).
    for n in NODES {
        let root = t.f.root(n);
        std::fs::copy(engine(), root.join("usr/bin/upkeep-upgrade")).expect("fleet test");
        let cache = root.join("var/cache/upkeep/archives");
        std::fs::create_dir_all(&cache).expect("fleet test");
        std::fs::copy(&t.new, cache.join(t.new.file_name().expect("fleet test")))
            .expect("fleet test");
    }
    let pids: Vec<Option<String>> = NODES.iter().map(|n| t.pid(n)).collect();
    for rollout in ["phased", "rolling"] {
        let p = t.play(serde_json::json!({"upkeep_rollout": rollout}), true);
        assert!(p.ok(), "{p:?}");
        // It says what would change...
        for n in NODES {
            assert!(p.recap()[n].changed > 0, "{n}: {p:?}");
        }
        // ...and nothing did.
        assert_untouched(&t, &pids);
        for n in NODES {
            assert!(!t.f.root(n).join("opt/.tegu.upkeep-stage").exists());
            assert!(
                !t.f.root(n).join("var/lib/upkeep/overlay").exists() || {
                    std::fs::read_dir(t.f.root(n).join("var/lib/upkeep/overlay"))
                        .expect("fleet test")
                        .next()
                        .is_none()
                }
            );
        }
    }
}

#[test]
fn without_engine_phases_every_node_still_stops_before_any_swap() {
    let t = Tegu::up(107);
    // The role told the engine has no phases (upkeep_phases: false, as an
    // engine without --phase is found out with `auto`): it stops the
    // services itself with upkeep_stop_command (here the stand-in
    // systemctl, inside the node's root), then runs the whole apply node
    // by node.
    let p = t.play(
        serde_json::json!({
            "upkeep_phases": false,
            "upkeep_stop_command": ["chroot", "{{ upkeep_root }}", "/usr/bin/systemctl", "stop", "{service}"],
            "upkeep_services": ["tegu.service"],
        }),
        false,
    );
    assert_upgraded(&t, &p);
    let j: Vec<Journal> = NODES.iter().map(|n| t.journal(n)).collect();
    let all = |what: &str| -> Vec<u128> { j.iter().flat_map(|j| j.times(what)).collect() };
    assert_eq!(all("service-stop").len(), 3);
    assert_eq!(all("swap").len(), 3);
    assert!(
        last(&all("service-stop")) < first(&all("swap-begin")),
        "{:?}",
        j.iter().map(|j| &j.0).collect::<Vec<_>>()
    );
    // The database was dumped once, by the first node's whole apply.
    assert_eq!(t.dumps().len(), 1, "{:?}", t.dumps());
    assert!(t.dumps()[0].starts_with(t.f.root("n1")));
    assert_eq!(t.pg_dump_connections(), 1);
}

#[test]
fn phased_a_failed_start_rolls_back_that_node_and_stops_the_rollout() {
    let t = Tegu::up(108);
    t.fault("n2", "fail-start", OLD);
    let p = t.play(serde_json::json!({"upkeep_serial": 1}), false);
    assert!(!p.ok(), "{p:?}");
    // n1's batch came first: upgraded and running.
    assert_eq!(t.installed("n1"), NEW);
    assert_eq!(t.answers("n1").as_deref(), Some(NEW));
    // n2 did not start: the engine undid every phase of its run (old
    // binaries and capability back), and started OLD again.
    assert_eq!(t.installed("n2"), OLD);
    assert_eq!(t.getcap("n2"), "cap_net_bind_service=eip");
    assert_eq!(t.answers("n2").as_deref(), Some(OLD));
    assert!(t.journal("n2").has("failed"), "{:?}", t.journal("n2").0);
    // The rollout stopped: n3's batch never started. In a phased rollout
    // every node was stopped and swapped before any start (that is the
    // point of it), so n3 is left stopped on NEW, as documented in
    // packaging/ansible/README.md; nothing rolled it back or started it.
    assert_eq!(t.installed("n3"), NEW);
    assert!(
        !t.journal("n3").has("start-begin"),
        "{:?}",
        t.journal("n3").0
    );
    assert!(!t.journal("n3").has("rollback"), "{:?}", t.journal("n3").0);
    assert_eq!(t.pid("n3"), None);
    assert_eq!(p.recap()["n2"].failed, 1, "{p:?}");
}

#[test]
fn rolling_a_failed_health_check_from_the_controller_rolls_back_and_stops() {
    let t = Tegu::up(109);
    let n3_pid = t.pid("n3");
    // The engine upgrades n2 fine, but the controller's health check of n2
    // never succeeds (it asks a port nothing listens on).
    let p = t.play(
        serde_json::json!({
            "upkeep_rollout": "rolling",
            "upkeep_health_url": "http://{{ hostvars[inventory_hostname].ansible_host }}:{{ 8066 if inventory_hostname == 'n2' else 8065 }}/api/v4/system/ping.json",
            "upkeep_health_retries": 3,
        }),
        false,
    );
    assert!(!p.ok(), "{p:?}");
    assert_eq!(t.installed("n1"), NEW);
    assert_eq!(t.answers("n1").as_deref(), Some(NEW));
    // n2 was upgraded by the engine, failed the health check, and the
    // role's `upkeep-upgrade rollback` put the old files back.
    assert!(t.journal("n2").has("verify"), "{:?}", t.journal("n2").0);
    assert!(t.journal("n2").has("rollback"), "{:?}", t.journal("n2").0);
    assert_eq!(t.installed("n2"), OLD);
    assert_eq!(t.getcap("n2"), "cap_net_bind_service=eip");
    assert_eq!(t.answers("n2").as_deref(), Some(OLD));
    // n3: never touched.
    assert_eq!(t.installed("n3"), OLD);
    assert_eq!(t.pid("n3"), n3_pid);
    let j3 = t.journal("n3");
    assert!(j3.untouched(), "{:?}", j3.0);
}
