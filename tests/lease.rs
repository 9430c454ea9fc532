//! upkeep-lease on throwaway roots, as root: exact restore, the upgrader
//! run as the real leased user, a SIGKILL at every crash point, attacks,
//! expiry, moot leases after a real dpkg upgrade, and concurrent runs.

#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = "/opt/gitlab/embedded/bin/mattermost";
const DIR: &str = "/opt/gitlab/embedded/bin";
const MM_UID: u32 = 994;

/// uid, gid, mode, inode, capabilities (getcap's view) of every path in
/// the root but upkeep's own state.
type Snapshot = BTreeMap<String, (u32, u32, u32, u64, String)>;

fn snapshot(root: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).expect("prefix").display().to_string();
            if rel.starts_with("var/lib/upkeep") {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            let caps = if m.is_file() {
                getcap(&p)
            } else {
                String::new()
            };
            out.insert(rel, (m.uid(), m.gid(), m.mode() & 0o7777, m.ino(), caps));
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn getcap(p: &Path) -> String {
    let o = Command::new("getcap")
        .arg(p)
        .output()
        .expect("getcap (libcap2-bin)");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

fn setcap(p: &Path, caps: &str) {
    let st = Command::new("setcap")
        .arg(caps)
        .arg(p)
        .status()
        .expect("setcap (libcap2-bin)");
    assert!(st.success());
}

/// A root with the Omnibus layout: the binary in a root-owned directory,
/// a root-only /etc/shadow to aim attacks at.
fn omnibus_root(file_mode: u32) -> TestRoot {
    let r = TestRoot::new();
    r.write(BIN, mattermost_binary(false), file_mode);
    r.write(
        "/opt/gitlab/embedded/bin/gitlab-rails",
        "#!/bin/sh\n",
        0o755,
    );
    r.write("/etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640);
    for d in [
        "opt",
        "opt/gitlab",
        "opt/gitlab/embedded",
        "opt/gitlab/embedded/bin",
    ] {
        std::fs::set_permissions(r.path(d), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    r
}

fn lease(r: &TestRoot, args: &[&str]) -> Output {
    let mut all = vec!["--root", r.root().to_str().expect("utf8")];
    all.extend_from_slice(args);
    let o = upkeep("upkeep-lease", &all);
    assert_no_panic(&o);
    o
}

fn lease_files(r: &TestRoot) -> Vec<String> {
    match std::fs::read_dir(r.path("var/lib/upkeep/leases")) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn stat(r: &TestRoot, inside: &str) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(r.path(inside)).expect("stat");
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

#[test]
fn grant_then_restore_gives_back_exact_owner_group_and_mode() {
    for (mode, dir_mode, owner) in [
        (0o755, 0o755, (0, 0)),
        (0o750, 0o750, (0, 998)),
        (0o555, 0o555, (0, 0)),
        (0o700, 0o711, (0, 998)),
    ] {
        let r = omnibus_root(mode);
        std::os::unix::fs::chown(r.path(BIN), Some(owner.0), Some(owner.1)).expect("chown");
        std::fs::set_permissions(r.path(DIR), std::fs::Permissions::from_mode(dir_mode))
            .expect("chmod");
        let before = snapshot(r.root());

        let o = lease(&r, &["grant", BIN, "--dir", "--to", "mattermost"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(
            stat(&r, BIN),
            (MM_UID, owner.1, mode | 0o200),
            "file lent, group kept, owner-writable"
        );
        assert_eq!(
            stat(&r, DIR),
            (MM_UID, 0, dir_mode | 0o200),
            "directory lent"
        );
        assert_eq!(lease_files(&r).len(), 1);

        let o = lease(&r, &["restore", BIN]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(
            snapshot(r.root()),
            before,
            "mode {mode:o}: everything exactly as before"
        );
        assert!(lease_files(&r).is_empty(), "lease closed");
        assert!(!stdout(&o).contains("content changed"), "{}", stdout(&o));
    }
}

#[test]
fn user_group_form_lends_the_group_too_and_restores_it() {
    let r = omnibus_root(0o755);
    let before = snapshot(r.root());
    let o = lease(&r, &["grant", BIN, "--to", "mattermost:mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stat(&r, BIN), (MM_UID, 994, 0o755));
    assert_eq!(
        stat(&r, DIR),
        (0, 0, 0o755),
        "no --dir: the directory is not lent"
    );
    lease(&r, &["restore", "--all"]);
    assert_eq!(snapshot(r.root()), before);
}

/// Runs a shell command as the mattermost user (uid 994), for real.
fn as_mattermost(r: &TestRoot, script: &str) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=994",
            "--regid=994",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .current_dir(r.path(DIR))
        .output()
        .expect("setpriv")
}

#[test]
fn the_upgrader_replaces_the_binary_as_the_leased_user_and_restore_fixes_the_new_file() {
    let r = omnibus_root(0o755);
    // The leased user must be able to reach the directory, as on a real system.
    std::fs::set_permissions(r.root(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    setcap(&r.path(BIN), "cap_net_bind_service=+ep");
    let cap_before = getcap(&r.path(BIN));
    assert!(cap_before.contains("cap_net_bind_service"), "{cap_before}");
    let (uid, gid, mode) = stat(&r, BIN);
    let dir_before = stat(&r, DIR);
    let ino_before = std::fs::metadata(r.path(BIN)).expect("stat").ino();

    // What Mattermost's upgrader does: rename the old binary, create the new
    // one beside it, make it executable.
    let upgrade = "mv mattermost mattermost.old && printf 'new github.com/mattermost/enterprise/ build' > mattermost && chmod 0700 mattermost";
    let o = as_mattermost(&r, upgrade);
    assert!(
        !o.status.success(),
        "without a lease the mattermost user cannot replace the binary"
    );

    let o = lease(
        &r,
        &["grant", "--product", "mattermost", "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let paths: Vec<&str> = v["lease"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["path"].as_str().expect("path"))
        .collect();
    assert_eq!(
        paths,
        [DIR, BIN],
        "the manifest lends the binary and its directory"
    );

    let o = as_mattermost(&r, upgrade);
    assert!(
        o.status.success(),
        "with the lease the upgrade works: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::metadata(r.path(BIN)).expect("stat").uid(),
        MM_UID,
        "new file owned by the upgrader"
    );

    let o = lease(&r, &["restore", "--all", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let bin = v["leases"][0]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["path"] == BIN)
        .expect("bin")
        .clone();
    assert_eq!(bin["content_changed"], true, "the conversion happened");
    assert_eq!(bin["replaced"], true);
    assert_eq!(
        stat(&r, BIN),
        (uid, gid, mode),
        "the new inode gets the recorded owner, group and mode"
    );
    assert_ne!(
        std::fs::metadata(r.path(BIN)).expect("stat").ino(),
        ino_before
    );
    assert_eq!(
        getcap(&r.path(BIN)),
        cap_before,
        "capabilities are back on the new binary"
    );
    assert_eq!(stat(&r, DIR), dir_before);
    let o = as_mattermost(&r, "touch x");
    assert!(
        !o.status.success(),
        "the directory is no longer writable by mattermost"
    );
}

#[test]
fn capabilities_survive_a_lease_without_any_change() {
    let r = omnibus_root(0o755);
    setcap(&r.path(BIN), "cap_net_bind_service=+eip");
    let before = snapshot(r.root());
    lease(&r, &["grant", BIN, "--dir", "--to", "mattermost"]);
    assert_eq!(
        getcap(&r.path(BIN)),
        "",
        "the chown dropped them, as the kernel does"
    );
    lease(&r, &["restore", BIN]);
    assert_eq!(snapshot(r.root()), before);
}

/// The crash points a run passes, as the debug build logs them.
fn crash_points(r: &TestRoot, args: &[&str]) -> Vec<String> {
    let mut all = vec!["--root", r.root().to_str().expect("utf8")];
    all.extend_from_slice(args);
    let o = upkeep_env("upkeep-lease", &all, &[("UPKEEP_LOG", "debug")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut points: Vec<String> = Vec::new();
    for line in stderr(&o).lines() {
        if let Some(p) = line.split("crash point ").nth(1) {
            if !points.iter().any(|q| q == p) {
                points.push(p.to_string());
            }
        }
    }
    points
}

fn run_crashing_at(r: &TestRoot, point: &str, args: &[&str]) {
    let mut all = vec!["--root", r.root().to_str().expect("utf8")];
    all.extend_from_slice(args);
    let o = upkeep_env("upkeep-lease", &all, &[("UPKEEP_CRASH_AT", point)]);
    assert_eq!(
        o.status.signal(),
        Some(9),
        "{point}: expected SIGKILL, got {:?}: {}",
        o.status,
        stderr(&o)
    );
}

#[test]
fn a_crash_at_any_point_of_grant_or_restore_is_recovered_to_the_original_state() {
    let grant = ["grant", BIN, "--dir", "--to", "mattermost"];
    let restore = ["restore", BIN];

    let probe = omnibus_root(0o750);
    setcap(&probe.path(BIN), "cap_net_bind_service=+ep");
    // After the journal marks the lease done it is granted: a crash there
    // leaves a lease in force, which is right, not a state to recover from.
    let grant_points: Vec<String> = crash_points(&probe, &grant)
        .into_iter()
        .filter(|p| p != "grant:committed" && p != "journal:done")
        .collect();
    let restore_points = crash_points(&probe, &restore);
    assert!(grant_points.len() >= 6, "{grant_points:?}");
    assert!(restore_points.len() >= 8, "{restore_points:?}");

    for point in &grant_points {
        let r = omnibus_root(0o750);
        setcap(&r.path(BIN), "cap_net_bind_service=+ep");
        let before = snapshot(r.root());
        run_crashing_at(&r, point, &grant);
        let o = lease(&r, &["recover"]);
        assert_eq!(o.status.code(), Some(0), "{point}: {}", stderr(&o));
        assert_eq!(snapshot(r.root()), before, "grant crashed at {point}");
        assert!(
            lease_files(&r).is_empty(),
            "{point}: leftover {:?}",
            lease_files(&r)
        );
        let o = lease(&r, &["recover"]);
        assert!(stdout(&o).is_empty(), "second recover has nothing to do");
    }
    let mut before_intent = Vec::new();
    for point in &restore_points {
        let r = omnibus_root(0o750);
        setcap(&r.path(BIN), "cap_net_bind_service=+ep");
        let before = snapshot(r.root());
        assert_eq!(lease(&r, &grant).status.code(), Some(0));
        let lent = snapshot(r.root());
        run_crashing_at(&r, point, &restore);
        let o = lease(&r, &["recover"]);
        assert_eq!(o.status.code(), Some(0), "{point}: {}", stderr(&o));
        let v = json(&lease(&r, &["status", "--format", "json"]));
        if v["leases"].as_array().is_some_and(|l| !l.is_empty()) {
            // Killed before restore's intent was durable: nothing has changed
            // and the lease is still rightly open; re-running restore (as a
            // maintainer script re-runs) finishes it.
            assert_eq!(v["leases"][0]["state"], "granted", "{point}");
            assert_eq!(
                snapshot(r.root()),
                lent,
                "{point}: nothing changed before the intent"
            );
            before_intent.push(point.clone());
            assert_eq!(lease(&r, &restore).status.code(), Some(0));
        }
        assert_eq!(snapshot(r.root()), before, "restore crashed at {point}");
        assert!(
            lease_files(&r).is_empty(),
            "{point}: leftover {:?}",
            lease_files(&r)
        );
    }
    assert_eq!(
        before_intent,
        ["journal:before-write", "safe:before-rename"],
        "only the intent write itself precedes the intent"
    );
    eprintln!(
        "crash points covered: {} in grant ({}), {} in restore ({})",
        grant_points.len(),
        grant_points.join(", "),
        restore_points.len(),
        restore_points.join(", ")
    );
}

fn assert_refused_and_untouched(r: &TestRoot, args: &[&str], needle: &str) {
    let before = snapshot(r.root());
    let o = lease(r, args);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{args:?}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(needle),
        "wanted {needle:?}: {}",
        stderr(&o)
    );
    assert_eq!(snapshot(r.root()), before, "{args:?} changed something");
    assert!(lease_files(r).is_empty(), "no lease recorded");
}

#[test]
fn attacks_before_grant_are_refused_and_change_nothing() {
    // A symlink at the path, pointing at a root-only file.
    let r = omnibus_root(0o755);
    std::fs::remove_file(r.path(BIN)).expect("rm");
    std::os::unix::fs::symlink("/etc/shadow", r.path(BIN)).expect("ln");
    assert_refused_and_untouched(
        &r,
        &["grant", BIN, "--dir", "--to", "mattermost"],
        "is a symlink",
    );

    // A symlink among the parents.
    let r = omnibus_root(0o755);
    std::fs::rename(r.path("opt/gitlab/embedded"), r.path("opt/gitlab/real")).expect("mv");
    std::os::unix::fs::symlink("real", r.path("opt/gitlab/embedded")).expect("ln");
    assert_refused_and_untouched(
        &r,
        &["grant", BIN, "--to", "mattermost"],
        "/opt/gitlab/embedded is a symlink",
    );

    // A hard link to a root-only file.
    let r = omnibus_root(0o755);
    std::fs::remove_file(r.path(BIN)).expect("rm");
    std::fs::hard_link(r.path("etc/shadow"), r.path(BIN)).expect("ln");
    assert_refused_and_untouched(&r, &["grant", BIN, "--to", "mattermost"], "hard links");

    // A parent anyone can write to, and one owned by another user.
    let r = omnibus_root(0o755);
    std::fs::set_permissions(r.path("opt/gitlab"), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");
    assert_refused_and_untouched(
        &r,
        &["grant", BIN, "--dir", "--to", "mattermost"],
        "/opt/gitlab is writable",
    );
    let r = omnibus_root(0o755);
    std::os::unix::fs::chown(r.path("opt/gitlab/embedded"), Some(998), None).expect("chown");
    assert_refused_and_untouched(
        &r,
        &["grant", BIN, "--to", "mattermost"],
        "/opt/gitlab/embedded is writable",
    );
    let r = omnibus_root(0o755);
    std::fs::set_permissions(r.path(DIR), std::fs::Permissions::from_mode(0o775)).expect("chmod");
    std::os::unix::fs::chown(r.path(DIR), None, Some(998)).expect("chgrp");
    assert_refused_and_untouched(
        &r,
        &["grant", BIN, "--to", "mattermost"],
        "writable by someone other than root",
    );

    // A user that does not exist, a setuid file, a FIFO, a directory.
    let r = omnibus_root(0o755);
    assert_refused_and_untouched(
        &r,
        &["grant", BIN, "--to", "nobody-here"],
        "no user 'nobody-here'",
    );
    assert_refused_and_untouched(
        &r,
        &["grant", BIN, "--to", "mattermost:nogroup"],
        "no group 'nogroup'",
    );
    std::fs::set_permissions(r.path(BIN), std::fs::Permissions::from_mode(0o4755)).expect("chmod");
    assert_refused_and_untouched(&r, &["grant", BIN, "--to", "mattermost"], "setuid");
    std::fs::remove_file(r.path(BIN)).expect("rm");
    let st = Command::new("mkfifo")
        .arg(r.path(BIN))
        .status()
        .expect("mkfifo");
    assert!(st.success());
    assert_refused_and_untouched(
        &r,
        &["grant", BIN, "--to", "mattermost"],
        "not a regular file",
    );
    assert_refused_and_untouched(&r, &["grant", DIR, "--to", "mattermost"], "is a directory");
}

#[test]
fn attacks_during_the_lease_make_restore_change_nothing_and_keep_the_lease() {
    for attack in ["symlink", "hardlink", "dir-symlink"] {
        let r = omnibus_root(0o755);
        let o = lease(&r, &["grant", BIN, "--dir", "--to", "mattermost"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        // What the leased user could do with the directory it holds.
        std::fs::remove_file(r.path(BIN)).expect("rm");
        match attack {
            "symlink" => std::os::unix::fs::symlink("/etc/shadow", r.path(BIN)).expect("ln"),
            "hardlink" => std::fs::hard_link(r.path("etc/shadow"), r.path(BIN)).expect("ln"),
            _ => {
                std::fs::create_dir(r.path("opt/gitlab/embedded/bin/evil")).expect("mkdir");
                std::os::unix::fs::symlink("/etc", r.path(BIN)).expect("ln");
            }
        }
        let before = snapshot(r.root());
        let o = lease(&r, &["restore", "--all"]);
        assert_eq!(o.status.code(), Some(3), "{attack}: {}", stdout(&o));
        assert!(
            stdout(&o).contains("stays open"),
            "{attack}: {}",
            stdout(&o)
        );
        assert_eq!(
            snapshot(r.root()),
            before,
            "{attack}: restore changed something"
        );
        assert_eq!(stat(&r, "etc/shadow"), (0, 0, 0o640));
        assert_eq!(lease_files(&r).len(), 1, "{attack}: lease kept open");
        let o = lease(&r, &["status"]);
        assert!(stdout(&o).contains(BIN), "{}", stdout(&o));
    }
}

#[test]
fn expired_leases_are_restored_by_recover_which_is_silent_otherwise() {
    let r = omnibus_root(0o755);
    let before = snapshot(r.root());
    let o = lease(&r, &["recover"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str(), stderr(&o).as_str()),
        (Some(0), "", "")
    );
    assert!(
        !r.path("var/lib/upkeep").exists(),
        "recover with nothing to do creates nothing"
    );

    lease(
        &r,
        &[
            "grant",
            BIN,
            "--dir",
            "--to",
            "mattermost",
            "--expires",
            "4s",
        ],
    );
    // Margin for a loaded machine: the grant and this recover take well
    // under the four seconds.
    let o = lease(&r, &["recover"]);
    assert!(stdout(&o).is_empty(), "not yet expired: {}", stdout(&o));
    assert_eq!(lease_files(&r).len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(4100));
    let o = lease(&r, &["status"]);
    assert!(stdout(&o).contains("expired"), "{}", stdout(&o));
    let o = lease(&r, &["recover"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("restored /opt/gitlab/embedded/bin/mattermost"),
        "{}",
        stdout(&o)
    );
    assert_eq!(snapshot(r.root()), before);
    assert!(lease_files(&r).is_empty());
    let o = lease(&r, &["recover"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), ""));
}

#[test]
fn a_real_dpkg_upgrade_that_re_roots_the_files_makes_the_lease_moot() {
    let r = omnibus_root(0o755);
    std::fs::remove_file(r.path(BIN)).expect("rm");
    let work = tempfile::tempdir().expect("tmp");
    let files = |v: &str| vec![file(BIN, format!("mattermost team {v}"), 0o755)];
    let old = build_deb(work.path(), "gitlab-ee", "18.11.1-ee.0", &files("1"), &[]);
    // Omnibus's postinst puts ownership of its directories back; this one
    // does the same for the one that matters here.
    let postinst = "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  chown root:root \"$DPKG_ROOT/opt/gitlab/embedded/bin\"\n  chmod 0755 \"$DPKG_ROOT/opt/gitlab/embedded/bin\"\nfi\n";
    let new = build_deb(
        work.path(),
        "gitlab-ee",
        "18.11.2-ee.0",
        &files("2"),
        &[("postinst", postinst)],
    );
    r.dpkg(&["-i", old.to_str().expect("utf8")]);
    let before = (stat(&r, BIN), stat(&r, DIR));

    let o = lease(&r, &["grant", "--product", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stat(&r, BIN).0, MM_UID);
    r.dpkg(&["-i", new.to_str().expect("utf8")]);
    assert_eq!(
        (stat(&r, BIN), stat(&r, DIR)),
        before,
        "the package put everything back"
    );

    let o = lease(&r, &["recover"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("closed"), "{}", stdout(&o));
    assert!(lease_files(&r).is_empty());
}

#[test]
fn grant_and_restore_are_idempotent_and_dry_run_changes_nothing() {
    let r = omnibus_root(0o755);
    let before = snapshot(r.root());
    let o = lease(
        &r,
        &["grant", BIN, "--dir", "--to", "mattermost", "--dry-run"],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("would lend"));
    assert_eq!(snapshot(r.root()), before);
    assert!(lease_files(&r).is_empty());

    lease(&r, &["grant", BIN, "--dir", "--to", "mattermost"]);
    let lent = snapshot(r.root());
    let o = lease(&r, &["grant", BIN, "--dir", "--to", "mattermost"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("already lent"), "{}", stdout(&o));
    assert_eq!(snapshot(r.root()), lent);
    assert_eq!(lease_files(&r).len(), 1);
    // The same path to someone else is refused.
    let o = lease(&r, &["grant", BIN, "--to", "git"]);
    assert_eq!(o.status.code(), Some(3));

    lease(&r, &["restore", BIN]);
    let o = lease(&r, &["restore", BIN]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("no open lease"));
    assert_eq!(snapshot(r.root()), before);
}

#[test]
fn a_held_lock_makes_a_second_writer_wait_or_fail_clearly() {
    let r = omnibus_root(0o755);
    std::fs::create_dir_all(r.path("var/lib/upkeep")).expect("mkdir");
    std::fs::set_permissions(
        r.path("var/lib/upkeep"),
        std::fs::Permissions::from_mode(0o700),
    )
    .expect("chmod");
    let lock = r.path("var/lib/upkeep/lock");
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "3"])
        .spawn()
        .expect("flock");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = snapshot(r.root());
    let o = lease(&r, &["--wait", "0", "grant", BIN, "--to", "mattermost"]);
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("held by another upkeep"),
        "{}",
        stderr(&o)
    );
    assert_eq!(snapshot(r.root()), before);
    // With a wait longer than the holder, it goes through.
    let o = lease(&r, &["--wait", "10", "grant", BIN, "--to", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    holder.wait().expect("wait");
}

#[test]
fn concurrent_grants_serialise_and_never_corrupt_the_journal() {
    let r = omnibus_root(0o755);
    let files: Vec<String> = (0..6).map(|i| format!("/opt/tools/bin{i}/tool")).collect();
    for f in &files {
        r.write(f, "x", 0o755);
        std::fs::set_permissions(r.path("opt/tools"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let root = r.root().to_str().expect("utf8").to_string();
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            Command::new(bin("upkeep-lease"))
                .args(["--root", &root, "grant", f, "--dir", "--to", "mattermost"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("wait").success());
    }
    let o = lease(&r, &["status", "--format", "json"]);
    let v = json(&o);
    assert_eq!(
        v["leases"].as_array().map(Vec::len),
        Some(6),
        "one valid lease each"
    );
    let o = lease(&r, &["restore", "--all"]);
    assert_eq!(o.status.code(), Some(0));
    for f in &files {
        assert_eq!(stat(&r, f), (0, 0, 0o755));
    }
}

#[test]
fn statoverride_entries_are_pointed_out() {
    let r = omnibus_root(0o755);
    std::fs::write(
        r.path("var/lib/dpkg/statoverride"),
        format!("root mattermost 0750 {BIN}\n"),
    )
    .expect("w");
    let o = lease(&r, &["grant", BIN, "--to", "mattermost"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("statoverride"), "{}", stdout(&o));
}

#[test]
fn garbage_in_a_lease_record_is_bad_input() {
    let r = omnibus_root(0o755);
    lease(&r, &["grant", BIN, "--to", "mattermost"]);
    let name = lease_files(&r).pop().expect("lease");
    std::fs::write(
        r.path(&format!("var/lib/upkeep/leases/{name}")),
        "{ \"format\": 1, garbage",
    )
    .expect("w");
    let o = lease(&r, &["recover"]);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert!(stderr(&o).contains(&name), "{}", stderr(&o));
}

#[test]
fn a_failure_part_way_through_grant_rolls_back_what_was_applied() {
    let r = omnibus_root(0o755);
    // Lent in reverse order: gitlab-rails first, then mattermost, which
    // fails: an immutable file refuses even root's chown (a real EPERM).
    let immutable = r.path(BIN);
    let st = Command::new("chattr")
        .arg("+i")
        .arg(&immutable)
        .status()
        .expect("chattr (e2fsprogs)");
    if !st.success() {
        eprintln!("SKIPPED: this filesystem has no immutable flag to make a chown fail");
        return;
    }
    let before = snapshot(r.root());
    let o = lease(
        &r,
        &[
            "grant",
            BIN,
            "/opt/gitlab/embedded/bin/gitlab-rails",
            "--dir",
            "--to",
            "mattermost",
        ],
    );
    let _ = Command::new("chattr").arg("-i").arg(&immutable).status();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        snapshot(r.root()),
        before,
        "what was lent before the failure is back"
    );
    assert!(lease_files(&r).is_empty(), "no lease left behind");
}
