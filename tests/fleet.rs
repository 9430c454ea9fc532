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
use std::sync::Mutex;

/// One fleet at a time: they are cheap to make but ansible is not cheap
/// to run, and two cores are shared.
static SERIAL: Mutex<()> = Mutex::new(());

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
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Fleet {
    pub fn up(net: u8) -> Fleet {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::Builder::new()
            .prefix("upkeep-fleet-")
            .tempdir()
            .expect("tempdir");
        let f = Fleet {
            dir,
            net,
            _serial: serial,
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
