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
/// Where `--private` (and the manifest) runs the binary from while lent.
const PRIVATE: &str = "/opt/gitlab/embedded/bin/.mattermost.upkeep-lease.d";

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
    // Restore deliberately gives the lent binary a new inode (the holder
    // may keep links or a writable descriptor to the old one): everything
    // else about it, and every other inode, must be as it was.
    for lent in [
        BIN,
        "/opt/gitlab/embedded/bin/gitlab-rails",
        "/opt/gitlab/embedded/bin/sub/tool",
    ] {
        if let Some(e) = out.get_mut(lent.trim_start_matches('/')) {
            e.3 = 0;
        }
    }
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

    // What Mattermost's upgrader does (upgrader_linux.go extractBinary):
    // rename the old binary to a temporary name beside it, create the new
    // one, remove the old one, chmod the new one to the old mode.
    // It works in the directory of the binary's real path (os.Executable).
    let upgrade = "cd \"$(dirname \"$(readlink -f mattermost)\")\" && mv mattermost .12345 && printf 'new github.com/mattermost/enterprise/ build' > mattermost && rm .12345 && chmod 0700 mattermost";
    let o = as_mattermost(&r, upgrade);
    assert!(
        !o.status.success(),
        "without a lease the mattermost user cannot replace the binary"
    );

    // The manifest does not ask for the directory: --dir is refused.
    let o = lease(&r, &["grant", "--product", "mattermost", "--dir"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(lease_files(&r).is_empty());
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
        [PRIVATE, BIN],
        "the manifest lends a private directory for the binary, not its own"
    );
    let o = as_mattermost(&r, "touch x || mv gitlab-rails y");
    assert!(
        !o.status.success(),
        "the binary's own directory stays root's"
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
    assert!(!r.path(PRIVATE).exists(), "the private directory is gone");
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
    crash_everywhere(&["grant", BIN, "--dir", "--to", "mattermost"]);
}

#[test]
fn a_crash_at_any_point_of_a_private_grant_or_its_restore_is_recovered() {
    crash_everywhere(&["grant", BIN, "--private", "--to", "mattermost"]);
}

/// SIGKILL at every crash point grant and restore pass; recover (and a
/// re-run restore where the intent was not yet durable) leaves everything
/// exactly as before the grant.
fn crash_everywhere(grant: &[&str]) {
    let restore = ["restore", BIN];

    let probe = omnibus_root(0o750);
    setcap(&probe.path(BIN), "cap_net_bind_service=+ep");
    // After the journal marks the lease done it is granted: a crash there
    // leaves a lease in force, which is right, not a state to recover from.
    let grant_points: Vec<String> = crash_points(&probe, grant)
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
        run_crashing_at(&r, point, grant);
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
        assert_eq!(lease(&r, grant).status.code(), Some(0));
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
fn attacks_during_the_lease_are_reported_and_the_directory_is_taken_back_anyway() {
    for attack in ["symlink", "hardlink", "dir-symlink"] {
        let r = omnibus_root(0o755);
        let dir_before = stat(&r, DIR);
        let o = lease(&r, &["grant", BIN, "--dir", "--to", "mattermost"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        // What the leased user could do with the directory it holds.
        std::fs::remove_file(r.path(BIN)).expect("rm");
        match attack {
            "symlink" => std::os::unix::fs::symlink("/etc/shadow", r.path(BIN)).expect("ln"),
            "hardlink" => std::fs::hard_link(r.path("etc/shadow"), r.path(BIN)).expect("ln"),
            _ => {
                std::fs::create_dir(r.path("opt/gitlab/embedded/bin/evil")).expect("mkdir");
                std::os::unix::fs::chown(
                    r.path("opt/gitlab/embedded/bin/evil"),
                    Some(MM_UID),
                    Some(MM_UID),
                )
                .expect("chown");
                std::os::unix::fs::symlink("/etc", r.path(BIN)).expect("ln");
            }
        }
        if attack != "hardlink" {
            // Made by the holder, so its own (a hard link keeps its inode's owner).
            std::os::unix::fs::lchown(r.path(BIN), Some(MM_UID), Some(MM_UID)).expect("lchown");
        }
        let o = lease(&r, &["restore", "--all"]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(1), "{attack}: {out}{}", stderr(&o));
        assert!(
            out.contains(&format!("changed by the holder: {BIN} (replaced)")),
            "{attack}: {out}"
        );
        assert_eq!(
            stat(&r, DIR),
            dir_before,
            "{attack}: the directory is taken back"
        );
        assert_eq!(
            stat(&r, "etc/shadow"),
            (0, 0, 0o640),
            "{attack}: nothing followed"
        );
        let m = std::fs::symlink_metadata(r.path(BIN)).expect("lstat");
        assert_eq!(m.uid(), 0, "{attack}: what stands at the path is root's");
        assert!(lease_files(&r).is_empty(), "{attack}: nothing stays lent");
        let o = as_mattermost(&r, "touch x");
        assert!(
            !o.status.success(),
            "{attack}: the holder cannot write there"
        );
        if attack == "dir-symlink" {
            assert_eq!(stat(&r, "opt/gitlab/embedded/bin/evil"), (0, 0, 0o755));
            assert!(out.contains("evil (added)"), "{out}");
        }
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
    let team = |v: &str| {
        [
            elf_header(EM_X86_64),
            format!("mattermost team {v}").into_bytes(),
        ]
        .concat()
    };
    let files = |v: &str| vec![file(BIN, team(v), 0o755)];
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

    let o = lease(&r, &["grant", BIN, "--dir", "--to", "mattermost"]);
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

    // The manifest's private directory: the upgrade puts a file where the
    // link was; recover takes the private directory back and removes it.
    r.dpkg(&["-i", old.to_str().expect("utf8")]);
    let before = (stat(&r, BIN), stat(&r, DIR));
    let o = lease(&r, &["grant", "--product", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stat(&r, PRIVATE).0, MM_UID);
    r.dpkg(&["-i", new.to_str().expect("utf8")]);
    let o = lease(&r, &["recover"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("closed"), "{}", stdout(&o));
    assert!(lease_files(&r).is_empty());
    assert_eq!((stat(&r, BIN), stat(&r, DIR)), before);
    assert!(!r.path(PRIVATE).exists());
    assert_eq!(std::fs::read(r.path(BIN)).expect("read"), team("2"));
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

// ---- The holder as an attacker (issue 10): a real unprivileged process. ----

/// The root reachable by the holder, as on a real system, with a
/// world-writable /var/tmp for it to keep things in.
fn reachable(r: &TestRoot) {
    std::fs::set_permissions(r.root(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::create_dir_all(r.path("var/tmp")).expect("mkdir");
    std::fs::set_permissions(r.path("var/tmp"), std::fs::Permissions::from_mode(0o1777))
        .expect("chmod");
}

/// `getfacl` of a path, numeric, without comments: only the base entries
/// when there is no ACL.
fn acl(p: &Path) -> String {
    let o = Command::new("getfacl")
        .args(["-c", "-n", "-p"])
        .arg(p)
        .output()
        .expect("getfacl (acl)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// gitlab-ee "installed" in the root's dpkg database, owning the binaries.
fn gitlab_ee_owns(r: &TestRoot, paths: &[&str]) {
    std::fs::write(
        r.path("var/lib/dpkg/status"),
        "Package: gitlab-ee\nStatus: install ok installed\nVersion: 18.11.1-ee.0\nArchitecture: amd64\nMaintainer: x\nDescription: x\n\n",
    )
    .expect("status");
    let mut list =
        String::from("/opt\n/opt/gitlab\n/opt/gitlab/embedded\n/opt/gitlab/embedded/bin\n");
    for p in paths {
        list.push_str(p);
        list.push('\n');
    }
    std::fs::write(r.path("var/lib/dpkg/info/gitlab-ee.list"), list).expect("list");
}

#[test]
fn everything_the_holder_changes_in_the_directory_is_reported_and_taken_back() {
    let r = omnibus_root(0o755);
    reachable(&r);
    const RAILS: &str = "/opt/gitlab/embedded/bin/gitlab-rails";
    gitlab_ee_owns(&r, &[BIN, RAILS]);
    setcap(&r.path(BIN), "cap_net_bind_service=+ep");
    let before = snapshot(r.root());
    let acl_before = (acl(&r.path(DIR)), acl(&r.path(BIN)));
    assert!(!acl_before.0.contains("user:994"), "{}", acl_before.0);

    let o = lease(&r, &["grant", BIN, "--dir", "--to", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("also holds 1 other programs root may run (gitlab-rails)"),
        "grant names what else lives there: {}",
        stdout(&o)
    );
    let attack = "set -e
        setfacl -m u:994:rwx . ; setfacl -d -m u:994:rwx . ; setfacl -m u:994:rwx mattermost
        printf x > added
        mv gitlab-rails gitlab-rails.orig
        printf '#!/bin/sh\\necho pwned\\n' > gitlab-rails
        chmod 6755 gitlab-rails
        ln mattermost ../../../../var/tmp/keep
        mkfifo fifo
        mkdir sub && printf y > sub/inner && chmod 777 sub";
    let o = as_mattermost(&r, attack);
    assert!(o.status.success(), "holder: {}", stderr(&o));
    assert!(acl(&r.path(DIR)).contains("user:994:rwx"));

    let o = lease(&r, &["restore", "--all"]);
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "never 0 after changes: {out}{}",
        stderr(&o)
    );
    for needle in [
        "bin/added (added)",
        "bin/gitlab-rails (replaced)",
        "bin/gitlab-rails.orig (added): gitlab-rails's original file under a new name",
        "bin/fifo (added)",
        "bin/sub (added)",
        "bin/mattermost (linked)",
        "run `apt-get install --reinstall gitlab-ee`",
    ] {
        assert!(out.contains(needle), "wanted {needle:?} in: {out}");
    }
    // The directory and the binary exactly as before, ACLs and all.
    assert_eq!(
        stat(&r, DIR),
        before["opt/gitlab/embedded/bin"].clone().into_stat()
    );
    assert_eq!(
        (acl(&r.path(DIR)), acl(&r.path(BIN))),
        acl_before,
        "ACLs gone"
    );
    assert_eq!(
        getcap(&r.path(BIN)),
        before["opt/gitlab/embedded/bin/mattermost"].4
    );
    let bm = std::fs::metadata(r.path(BIN)).expect("stat");
    assert_eq!(
        (bm.uid(), bm.gid(), bm.mode() & 0o7777, bm.nlink()),
        (0, 0, 0o755, 1)
    );
    let keep = std::fs::metadata(r.path("var/tmp/keep")).expect("stat");
    assert_ne!(
        keep.ino(),
        bm.ino(),
        "the holder's link no longer reaches the binary"
    );
    // What it added or replaced is root's, not writable, not setuid.
    for p in ["added", "gitlab-rails", "fifo", "sub", "sub/inner"] {
        let m = std::fs::symlink_metadata(r.path(&format!("{DIR}/{p}"))).expect("stat");
        assert_eq!(m.uid(), 0, "{p}");
        assert_eq!(m.mode() & 0o6022, 0, "{p}: {:o}", m.mode());
    }
    for (what, script) in [
        ("create", "touch x"),
        ("append", "printf y >> added"),
        ("write below", "touch sub/x"),
        ("rename", "mv gitlab-rails y"),
    ] {
        let o = as_mattermost(&r, script);
        assert!(!o.status.success(), "the holder can still {what}");
    }
    assert!(lease_files(&r).is_empty());
}

trait IntoStat {
    fn into_stat(self) -> (u32, u32, u32);
}

impl IntoStat for (u32, u32, u32, u64, String) {
    fn into_stat(self) -> (u32, u32, u32) {
        (self.0, self.1, self.2)
    }
}

#[test]
fn overlapping_leases_share_the_directory_record_and_the_last_one_gives_it_back() {
    const RAILS: &str = "/opt/gitlab/embedded/bin/gitlab-rails";
    for order in [[BIN, RAILS], [RAILS, BIN]] {
        let r = omnibus_root(0o755);
        let before = snapshot(r.root());
        for p in [BIN, RAILS] {
            let o = lease(&r, &["grant", p, "--dir", "--to", "mattermost"]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        }
        let o = lease(&r, &["grant", RAILS, "--dir", "--to", "git"]);
        assert_eq!(o.status.code(), Some(3), "another holder is refused");
        let v = json(&lease(&r, &["status", "--format", "json"]));
        for l in v["leases"].as_array().expect("leases") {
            let d = &l["entries"][0];
            assert_eq!(
                (d["path"].as_str(), d["uid"].as_u64()),
                (Some(DIR), Some(0)),
                "{l}"
            );
        }
        let o = lease(&r, &["restore", order[0]]);
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
        assert_eq!(stat(&r, DIR).0, MM_UID, "still lent to the other lease");
        let o = lease(&r, &["restore", order[1]]);
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
        assert_eq!(snapshot(r.root()), before, "the last lease gave it back");
        assert!(lease_files(&r).is_empty());
    }
    // restore --all, and a nested directory lent first.
    let r = omnibus_root(0o755);
    r.write("/opt/gitlab/embedded/bin/sub/tool", "x", 0o755);
    let before = snapshot(r.root());
    for p in ["/opt/gitlab/embedded/bin/sub/tool", BIN, RAILS] {
        let o = lease(&r, &["grant", p, "--dir", "--to", "mattermost"]);
        assert_eq!(o.status.code(), Some(0), "{p}: {}", stderr(&o));
    }
    let o = lease(&r, &["restore", "--all"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(snapshot(r.root()), before);
    assert!(lease_files(&r).is_empty());
}

#[test]
fn a_crash_while_breaking_the_holders_hard_links_is_recovered() {
    let grant = ["grant", BIN, "--dir", "--to", "mattermost"];
    let restore = ["restore", BIN];
    let setup = || {
        let r = omnibus_root(0o750);
        reachable(&r);
        setcap(&r.path(BIN), "cap_net_bind_service=+ep");
        let before = (stat(&r, BIN), stat(&r, DIR), getcap(&r.path(BIN)));
        assert_eq!(lease(&r, &grant).status.code(), Some(0));
        let o = as_mattermost(&r, "ln mattermost ../../../../var/tmp/keep");
        assert!(o.status.success(), "{}", stderr(&o));
        (r, before)
    };
    let (probe, _) = setup();
    let mut all = vec!["--root", probe.root().to_str().expect("utf8")];
    all.extend_from_slice(&restore);
    let o = upkeep_env("upkeep-lease", &all, &[("UPKEEP_LOG", "debug")]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let points: Vec<String> = stderr(&o)
        .lines()
        .filter_map(|l| l.split("crash point ").nth(1).map(str::to_string))
        .collect();
    assert!(points.iter().any(|p| p.ends_with(":copied")), "{points:?}");
    assert!(
        points.iter().any(|p| p.ends_with(":relinked")),
        "{points:?}"
    );
    for point in &points {
        let (r, before) = setup();
        run_crashing_at(&r, point, &restore);
        let o = lease(&r, &["recover"]);
        assert_ne!(o.status.code(), Some(3), "{point}: {}", stdout(&o));
        if !lease_files(&r).is_empty() {
            // Killed before restore's intent was durable: still granted,
            // and restore run again finishes it.
            let v = json(&lease(&r, &["status", "--format", "json"]));
            assert_eq!(v["leases"][0]["state"], "granted", "{point}");
            assert_eq!(lease(&r, &restore).status.code(), Some(1), "{point}");
        }
        assert!(lease_files(&r).is_empty(), "{point}: {}", stdout(&o));
        assert_eq!(
            (stat(&r, BIN), stat(&r, DIR), getcap(&r.path(BIN))),
            before,
            "{point}"
        );
        let m = std::fs::metadata(r.path(BIN)).expect("stat");
        assert_eq!(m.nlink(), 1, "{point}: the link is broken");
        let names: Vec<String> = std::fs::read_dir(r.path(DIR))
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.contains("upkeep-lease")),
            "{point}: temporary copy left: {names:?}"
        );
    }
}

#[test]
fn a_grant_without_expires_ends_after_the_documented_hour() {
    let r = omnibus_root(0o755);
    let o = lease(
        &r,
        &["grant", BIN, "--to", "mattermost", "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let created = v["lease"]["created"].as_u64().expect("created");
    assert_eq!(v["lease"]["expires"].as_u64(), Some(created + 3600));
    let o = lease(&r, &["grant", "--help"]);
    assert!(stdout(&o).contains("[default: 1h]"), "{}", stdout(&o));
}

/// An Omnibus root whose embedded Ruby is a stand-in (a real Ruby cannot be
/// installed into a throwaway root): a static busybox script that upkeep runs
/// chrooted in the root, which marks each run at `/MARKER` in the root and
/// answers as the gitlab.rb recorder would.
fn gitlab_root_with_ruby(marker: &str) -> TestRoot {
    let r = omnibus_root(0o755);
    reachable(&r);
    r.write(
        "/opt/gitlab/version-manifest.json",
        "{\"build_version\": \"18.11.1\"}",
        0o644,
    );
    r.write(
        "/etc/gitlab/gitlab.rb",
        "mattermost['enable'] = true\n",
        0o600,
    );
    r.write(
        "/bin/busybox",
        std::fs::read("/bin/busybox").expect("busybox-static"),
        0o755,
    );
    r.write("/opt/gitlab/embedded/bin/ruby", ruby_standin(marker), 0o755);
    r
}

fn ruby_standin(marker: &str) -> String {
    format!(
        "#!/bin/busybox sh\n/bin/busybox cat >/dev/null\n/bin/busybox touch /{marker}\nprintf '\\n@@upkeep-recorder@@\\n[{{\"ok\":true,\"settings\":{{\"mattermost\":{{\"enable\":false}}}},\"lines\":{{}}}}]\\n'\n"
    )
}

/// `upkeep-embedded status`, which evaluates gitlab.rb with the root's Ruby.
fn embedded_status(r: &TestRoot) -> Output {
    let o = upkeep(
        "upkeep-embedded",
        &[
            "--root",
            r.root().to_str().expect("utf8"),
            "status",
            "mattermost",
            "--format",
            "json",
        ],
    );
    assert_no_panic(&o);
    o
}

#[test]
fn nothing_is_run_from_a_lent_directory_and_a_changed_tool_only_once_it_is_back() {
    let marker = format!("ruby-ran-{}", std::process::id());
    let r = gitlab_root_with_ruby(&marker);
    let ran = || r.path(&marker).exists();
    // Without a lease the root's Ruby evaluates gitlab.rb: the test can fail.
    let o = embedded_status(&r);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(ran(), "the root's ruby runs when nothing is lent");
    std::fs::remove_file(r.path(&marker)).expect("rm");

    let ruby = "/opt/gitlab/embedded/bin/ruby";
    let original = std::fs::read(r.path(ruby)).expect("read");
    assert_eq!(
        lease(&r, &["grant", BIN, "--dir", "--to", "mattermost"])
            .status
            .code(),
        Some(0)
    );
    let o = embedded_status(&r);
    assert!(!ran(), "ran the lent directory's ruby: {}", stderr(&o));
    assert!(stderr(&o).contains("lent to mattermost"), "{}", stderr(&o));
    // The holder replaces ruby; restore takes it back but remembers.
    let o = as_mattermost(
        &r,
        &format!(
            "rm ruby && printf '%s' '{}' > ruby && chmod 755 ruby",
            ruby_standin(&marker).replace('\'', "")
        ),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(std::fs::read(r.path(ruby)).expect("read"), original);
    let o = lease(&r, &["restore", "--all"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let o = embedded_status(&r);
    assert!(!ran(), "ran what the holder wrote: {}", stderr(&o));
    assert!(
        stderr(&o).contains("changed while its directory was lent"),
        "{}",
        stderr(&o)
    );
    // Its content back (as a reinstall puts it): it runs again.
    std::fs::write(r.path(ruby), &original).expect("write");
    let o = embedded_status(&r);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(ran(), "the original content runs again");
}

#[test]
fn a_fifo_or_a_sparse_terabyte_over_the_binary_stalls_nothing() {
    for what in ["fifo", "sparse"] {
        let r = omnibus_root(0o755);
        reachable(&r);
        r.write(
            "/opt/gitlab/embedded/service/mattermost/VERSION",
            "10.11.1\n",
            0o644,
        );
        gitlab_ee_owns(&r, &[BIN]);
        let sum = Command::new("md5sum")
            .arg(r.path(BIN))
            .output()
            .expect("md5sum");
        let sum = String::from_utf8_lossy(&sum.stdout);
        std::fs::write(
            r.path("var/lib/dpkg/info/gitlab-ee.md5sums"),
            format!("{}  {}\n", &sum[..32], &BIN[1..]),
        )
        .expect("md5sums");
        assert_eq!(
            lease(&r, &["grant", BIN, "--dir", "--to", "mattermost"])
                .status
                .code(),
            Some(0)
        );
        let script = match what {
            "fifo" => "rm mattermost && mkfifo mattermost",
            _ => "rm mattermost && truncate -s 1T mattermost",
        };
        let o = as_mattermost(&r, script);
        assert!(o.status.success(), "{what}: {}", stderr(&o));
        let root = r.root().to_str().expect("utf8");
        for (tool, args) in [
            ("upkeep-detect", vec!["--root", root]),
            ("upkeep-detect", vec!["--root", root, "--allow-exec"]),
            ("upkeep-guard", vec!["--root", root, "check"]),
            ("upkeep-guard", vec!["--root", root, "apt-hook"]),
            ("upkeep-guard", vec!["--root", root, "dpkg-trigger"]),
            ("upkeep-lease", vec!["--root", root, "status"]),
        ] {
            // coreutils' timeout kills it after 20 s (exit 124): a hang.
            // The apt hook reads an upgrade of GitLab from stdin.
            let stream =
                "VERSION 3\n\ngitlab-ee 18.11.1-ee.0 amd64 none < 18.11.2-ee.0 amd64 none /x.deb\n";
            let o = Command::new("sh")
                .arg("-c")
                .arg("printf '%s' \"$STREAM\" | timeout 20 \"$@\"")
                .arg("sh")
                .arg(bin(tool))
                .args(&args)
                .env("STREAM", stream)
                .output()
                .expect("timeout");
            assert_no_panic(&o);
            assert_ne!(o.status.code(), Some(124), "{what}: {tool} {args:?} hangs");
            assert!(
                o.status.code().is_some(),
                "{what}: {tool} {args:?} killed: {:?}",
                o.status
            );
        }
        let start = std::time::Instant::now();
        let o = lease(&r, &["restore", "--all"]);
        // A FIFO is not a file at all; a sparse terabyte is too big to
        // move to a new inode (taken back in place): both reported, exit 1.
        assert_eq!(o.status.code(), Some(1), "{what}: {}", stdout(&o));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "{what}: restore took {:?}",
            start.elapsed()
        );
        let m = std::fs::symlink_metadata(r.path(BIN)).expect("stat");
        assert_eq!(m.uid(), 0, "{what}");
        assert_eq!(stat(&r, DIR), (0, 0, 0o755), "{what}");
    }
}

#[test]
fn an_expired_lease_is_taken_back_by_recover_with_everything_the_holder_did() {
    let r = omnibus_root(0o755);
    reachable(&r);
    let before = snapshot(r.root());
    let o = lease(
        &r,
        &[
            "grant",
            BIN,
            "--dir",
            "--to",
            "mattermost",
            "--expires",
            "1s",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = as_mattermost(
        &r,
        "setfacl -m u:994:rwx . && printf x > planted && ln mattermost ../../../../var/tmp/keep",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let o = lease(&r, &["recover"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    assert!(
        out.contains("planted (added)") && out.contains("(linked)"),
        "{out}"
    );
    std::fs::remove_file(r.path(&format!("{DIR}/planted"))).expect("rm");
    std::fs::remove_file(r.path("var/tmp/keep")).expect("rm");
    let mut now = snapshot(r.root());
    // The binary is a new inode now (its links broken): all else as before.
    let ino = |s: &mut Snapshot| {
        s.get_mut("opt/gitlab/embedded/bin/mattermost")
            .map(|e| std::mem::take(&mut e.3))
    };
    let mut before = before;
    ino(&mut now);
    ino(&mut before);
    assert_eq!(now, before);
    assert!(!acl(&r.path(DIR)).contains("user:994"));
    assert!(lease_files(&r).is_empty());
}

#[test]
fn links_in_the_directory_to_the_new_binary_are_broken_and_both_taken_back() {
    let r = omnibus_root(0o750);
    reachable(&r);
    std::os::unix::fs::chown(r.path(BIN), Some(0), Some(998)).expect("chown");
    setcap(&r.path(BIN), "cap_net_bind_service=+ep");
    let before = (stat(&r, BIN), stat(&r, DIR), getcap(&r.path(BIN)));
    assert_eq!(
        lease(&r, &["grant", BIN, "--dir", "--to", "mattermost"])
            .status
            .code(),
        Some(0)
    );
    let o = as_mattermost(
        &r,
        "mv mattermost .1 && printf new > mattermost && rm .1 && chmod 750 mattermost && ln mattermost twin",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = lease(&r, &["restore", "--all"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    assert!(
        out.contains("bin/twin (added)") && out.contains("mattermost (linked)"),
        "{out}"
    );
    assert_eq!((stat(&r, BIN), stat(&r, DIR), getcap(&r.path(BIN))), before);
    assert_eq!(std::fs::metadata(r.path(BIN)).expect("stat").nlink(), 1);
    assert_eq!(std::fs::read(r.path(BIN)).expect("read"), b"new");
    let twin = stat(&r, &format!("{DIR}/twin"));
    assert_eq!((twin.0, twin.2 & 0o022), (0, 0), "{twin:?}");
}

#[test]
fn a_file_of_an_rpm_package_the_holder_replaced_is_flagged_for_dnf_reinstall() {
    let r = TestRoot::new();
    r.init_rpm();
    reachable(&r);
    let work = tempfile::tempdir().expect("tmp");
    const RAILS: &str = "/opt/gitlab/embedded/bin/gitlab-rails";
    let pkg = build_rpm(
        work.path(),
        "gitlab-ce",
        "18.11.1",
        "ce.0",
        &[
            file(BIN, mattermost_binary(false), 0o755),
            file(RAILS, "#!/bin/sh\n", 0o755),
        ],
        "",
    );
    r.rpm(&["-i", "--nodeps", pkg.to_str().expect("utf8")]);
    for d in [
        "opt",
        "opt/gitlab",
        "opt/gitlab/embedded",
        "opt/gitlab/embedded/bin",
    ] {
        std::fs::set_permissions(r.path(d), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let o = lease(&r, &["grant", BIN, "--dir", "--to", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = as_mattermost(
        &r,
        "rm gitlab-rails && printf '#!/bin/sh\\necho x\\n' > gitlab-rails",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = lease(&r, &["restore", "--all"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    // rm + create often gets the same inode number back (ext4 reuses it at
    // once): the birth time tells the new inode from the old one.
    assert!(out.contains("bin/gitlab-rails (replaced)"), "{out}");
    assert!(out.contains("run `dnf reinstall gitlab-ce`"), "{out}");
    assert_eq!(stat(&r, RAILS).0, 0);
}

#[test]
fn a_descriptor_the_holder_kept_open_cannot_write_the_binary_after_restore() {
    let r = omnibus_root(0o755);
    reachable(&r);
    assert_eq!(
        lease(&r, &["grant", BIN, "--to", "mattermost"])
            .status
            .code(),
        Some(0)
    );
    let fifo = r.path("var/tmp/go");
    let st = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(st.success());
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    // The holder opens the binary for writing, waits, then writes.
    let mut holder = Command::new("setpriv")
        .args(["--reuid=994", "--regid=994", "--clear-groups", "sh", "-c"])
        .arg(format!(
            "exec 3>>mattermost; read x < {}; printf PWNED >&3",
            fifo.display()
        ))
        .current_dir(r.path(DIR))
        .spawn()
        .expect("setpriv");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let o = lease(&r, &["restore", "--all"]);
    // Released before anything is asserted: the holder waits on the FIFO.
    std::fs::write(&fifo, "go\n").expect("release the holder");
    assert!(holder.wait().expect("wait").success());
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let content = std::fs::read(r.path(BIN)).expect("read");
    assert!(
        !content.ends_with(b"PWNED"),
        "the holder's descriptor still reaches the binary"
    );
    assert_eq!(content, mattermost_binary(false));
    assert_eq!(stat(&r, BIN), (0, 0, 0o755));
}

#[test]
fn a_private_lease_survives_the_holders_attacks_in_its_directory() {
    for attack in [
        "rm mattermost && mkdir mattermost && chmod 777 mattermost",
        "rm mattermost && ln -s /etc/shadow mattermost",
        "mv mattermost .x && printf new > mattermost && ln mattermost ../../../../../var/tmp/keep && setfacl -m u:994:rwx . && mkdir sub && touch sub/f",
    ] {
        let r = omnibus_root(0o755);
        reachable(&r);
        let dir_before = stat(&r, DIR);
        let o = lease(&r, &["grant", BIN, "--private", "--to", "mattermost"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let o = as_mattermost(&r, &format!("cd .mattermost.upkeep-lease.d && {attack}"));
        assert!(o.status.success(), "{attack}: {}", stderr(&o));
        let o = lease(&r, &["restore", "--all"]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(1), "{attack}: {out}{}", stderr(&o));
        assert_eq!(stat(&r, DIR), dir_before, "{attack}");
        assert_eq!(stat(&r, "etc/shadow"), (0, 0, 0o640), "{attack}");
        assert!(lease_files(&r).is_empty(), "{attack}");
        // Nothing below the binary's directory is the holder's any more.
        let o = as_mattermost(
            &r,
            "touch x || touch .mattermost.upkeep-lease.d/x || touch .mattermost.upkeep-lease.d/mattermost/x || touch .mattermost.upkeep-lease.d/sub/x",
        );
        assert!(!o.status.success(), "{attack}: the holder can still write");
        let m = std::fs::symlink_metadata(r.path(BIN)).expect("lstat");
        assert_eq!(m.uid(), 0, "{attack}");
    }
}

/// Every path of the root (upkeep's own state too) with its owner, mode,
/// inode and content digest: a refused grant changes none of it. rpm's
/// database is left out: any query (`rpm -q`) opens its SQLite files for
/// writing.
fn digest_tree(root: &Path) -> BTreeMap<String, (u32, u32, u32, u64, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, u32, u32, u64, String)>) {
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).expect("prefix").display().to_string();
            if rel == "var/lib/rpm" {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            let content = if m.is_file() {
                let o = Command::new("sha256sum")
                    .arg(&p)
                    .output()
                    .expect("sha256sum");
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string()
            } else {
                String::new()
            };
            out.insert(rel, (m.uid(), m.gid(), m.mode(), m.ino(), content));
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

const MM_VERSION: &str = "/opt/gitlab/embedded/service/mattermost/VERSION";

/// gitlab-ee in dpkg's status as built for `arch`, owning the binary.
fn gitlab_ee_for(r: &TestRoot, arch: &str) {
    std::fs::write(
        r.path("var/lib/dpkg/status"),
        format!("Package: gitlab-ee\nStatus: install ok installed\nArchitecture: {arch}\nVersion: 18.11.1-ee.0\n"),
    )
    .expect("status");
    std::fs::write(
        r.path("var/lib/dpkg/info/gitlab-ee.list"),
        format!("/opt\n/opt/gitlab\n{DIR}\n{BIN}\n"),
    )
    .expect("list");
}

#[test]
fn an_arm64_root_is_refused_the_conversion_lease_and_told_the_manual_route() {
    let r = omnibus_root(0o755);
    r.write(MM_VERSION, "10.11.4\n", 0o644);
    // An aarch64 binary (its ELF header says so) of an arm64 package.
    let arm = [elf_header(EM_AARCH64), mattermost_binary(false)].concat();
    r.write(BIN, &arm, 0o755);
    gitlab_ee_for(&r, "arm64");
    let before = digest_tree(r.root());
    for args in [
        &["grant", "--product", "mattermost"][..],
        &["grant", "--product", "mattermost", "--dry-run"],
        &["grant", "--product", "mattermost", "--private"],
    ] {
        let o = lease(&r, args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}{err}", stdout(&o));
        assert!(
            err.contains("Mattermost's in-place upgrade to Enterprise Edition (System Console > Edition and License) runs only on amd64, and /opt/gitlab/embedded/bin/mattermost is built for arm64 (package gitlab-ee is built for arm64). Nothing was lent. By hand: download mattermost-10.11.4-linux-arm64.tar.gz and its .sig from https://releases.mattermost.com/10.11.4/"),
            "{args:?}: {err}"
        );
        assert!(err.contains("run `gitlab-ctl stop mattermost`"), "{err}");
        assert_eq!(digest_tree(r.root()), before, "{args:?}: nothing changed");
    }

    // The package alone says arm64 (an x86-64 binary put there by hand):
    // refused all the same, both named.
    r.write(BIN, mattermost_binary(false), 0o755);
    let before = digest_tree(r.root());
    let o = lease(&r, &["grant", "--product", "mattermost"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("and package gitlab-ee is built for arm64, although /opt/gitlab/embedded/bin/mattermost is built for amd64."),
        "{}",
        stderr(&o)
    );
    assert_eq!(digest_tree(r.root()), before);

    // An amd64 package, but a binary whose architecture cannot be read:
    // refused (the binary is not input the user gave: not 65).
    gitlab_ee_for(&r, "amd64");
    r.write(BIN, "#!/bin/sh\necho not a binary\n", 0o755);
    let before = digest_tree(r.root());
    let o = lease(&r, &["grant", "--product", "mattermost"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("which architecture /opt/gitlab/embedded/bin/mattermost is built for cannot be told: it is not an ELF binary. Nothing was lent. By hand: download mattermost-10.11.4-linux-amd64.tar.gz"),
        "{}",
        stderr(&o)
    );
    assert_eq!(digest_tree(r.root()), before);

    // x86-64 binary and package: granted, and told what the upgrader downloads.
    r.write(BIN, mattermost_binary(false), 0o755);
    let o = lease(&r, &["grant", "--product", "mattermost", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("note: Mattermost's in-place upgrade downloads the Enterprise Edition release of the same version from the internet, https://releases.mattermost.com/10.11.4/mattermost-10.11.4-linux-amd64.tar.gz and its signature (.sig), so the Mattermost server itself must reach releases.mattermost.com over HTTPS.\n"),
        "{}",
        stdout(&o)
    );
}

/// The name Go's `os.CreateTemp(dir, "*")` gives: digits only.
const UPGRADER_TMP: &str = "2854107923";

#[test]
fn a_conversion_as_the_upgrader_makes_it_is_given_back_root_owned_and_reported() {
    let r = omnibus_root(0o750);
    reachable(&r);
    r.write(MM_VERSION, "10.11.4\n", 0o644);
    std::os::unix::fs::chown(r.path(BIN), Some(0), Some(998)).expect("chown");
    setcap(&r.path(BIN), "cap_net_bind_service=+ep");
    r.write("/var/tmp/ee", mattermost_binary(true), 0o644);
    let ee = r.path("var/tmp/ee");
    let before = snapshot(r.root());
    let bin_before = (stat(&r, BIN), getcap(&r.path(BIN)));

    let o = lease(&r, &["grant", "--product", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("note: The server makes that download with Go's default HTTP client, which uses a proxy only from the server process's environment (HTTPS_PROXY or https_proxy, with NO_PROXY for exceptions) as it was when the server started; nothing in config.json or the System Console sets a proxy for it.\n"),
        "{}",
        stdout(&o)
    );
    // upgrader_linux.go extractBinary, in the directory of the binary's
    // real path: os.CreateTemp(dir, "*") names a temporary file (digits),
    // which it removes and renames the old binary to; os.Create makes the
    // new one (owned by the running user, no capabilities); the old one is
    // removed last -- here it is left, as when that remove fails or the
    // server dies first; then chmod to the old mode.
    let upgrade = format!(
        "cd \"$(dirname \"$(readlink -f mattermost)\")\" && mv mattermost {UPGRADER_TMP} && (umask 022 && cat {} > mattermost) && chmod 0750 mattermost",
        ee.display()
    );
    let o = as_mattermost(&r, &upgrade);
    assert!(o.status.success(), "{}", stderr(&o));
    let new = std::fs::metadata(r.path(BIN)).expect("stat");
    assert_eq!((new.uid(), getcap(&r.path(BIN))), (MM_UID, String::new()));
    let leftover = format!("{PRIVATE}/{UPGRADER_TMP}");
    assert_eq!(
        stat(&r, &leftover),
        (0, 998, 0o750),
        "the old inode, root's"
    );

    let o = lease(&r, &["restore", "--all"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(
        out.contains(&format!(
            "restored {BIN}: converted to Enterprise Edition\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("left by the upgrader: {leftover}: the lent file's old inode under a new name, as the upgrader leaves it when it stops before removing it; removed\n")),
        "{out}"
    );
    assert_eq!(
        (stat(&r, BIN), getcap(&r.path(BIN))),
        bin_before,
        "the new binary: recorded owner, group, mode and capabilities"
    );
    assert_eq!(
        std::fs::read(r.path(BIN)).expect("read"),
        mattermost_binary(true)
    );
    assert_eq!(
        snapshot(r.root()),
        before,
        "directory, private directory and leftover"
    );
    assert!(lease_files(&r).is_empty());

    // No conversion this time: restore says so.
    let o = lease(&r, &["grant", "--product", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = lease(&r, &["restore", "--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("restored {BIN}: unchanged\n")),
        "{}",
        stdout(&o)
    );
    assert_eq!(snapshot(r.root()), before);
    // The same in JSON.
    assert_eq!(
        lease(&r, &["grant", "--product", "mattermost"])
            .status
            .code(),
        Some(0)
    );
    let v = json(&lease(&r, &["restore", "--all", "--format", "json"]));
    let bin = v["leases"][0]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["path"] == BIN)
        .expect("bin")
        .clone();
    assert_eq!(bin["conversion"], "unchanged", "{v}");
}

#[test]
fn a_leftover_in_a_lent_directory_is_removed_and_an_unknown_one_taken_back() {
    let r = omnibus_root(0o755);
    reachable(&r);
    setcap(&r.path(BIN), "cap_net_bind_service=+ep");
    let before = snapshot(r.root());
    let bin_before = (stat(&r, BIN), getcap(&r.path(BIN)));
    let o = lease(&r, &["grant", BIN, "--dir", "--to", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The upgrader's leftover, and a file of the holder's under a name like it.
    let o = as_mattermost(
        &r,
        &format!("mv mattermost {UPGRADER_TMP} && printf new > mattermost && chmod 0755 mattermost && printf x > 1234 && chmod 0777 1234"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = lease(&r, &["restore", "--all"]);
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "the holder's own file: {out}{}",
        stderr(&o)
    );
    assert!(
        out.contains(&format!("left by the upgrader: {DIR}/{UPGRADER_TMP}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("changed by the holder: {DIR}/1234 (added)")),
        "{out}"
    );
    assert!(
        !r.path(&format!("{DIR}/{UPGRADER_TMP}")).exists(),
        "leftover removed"
    );
    assert_eq!(
        stat(&r, &format!("{DIR}/1234")),
        (0, 0, 0o755),
        "taken back"
    );
    assert_eq!((stat(&r, BIN), getcap(&r.path(BIN))), bin_before);
    let mut after = snapshot(r.root());
    after.remove(format!("{DIR}/1234").trim_start_matches('/'));
    assert_eq!(after, before);
}

#[test]
fn an_aarch64_rpm_root_is_refused_the_conversion_lease_too() {
    let r = TestRoot::new();
    r.init_rpm();
    let work = tempfile::tempdir().expect("tmp");
    let arm = [elf_header(EM_AARCH64), mattermost_binary(false)].concat();
    let pkg = build_rpm_for(
        "aarch64",
        work.path(),
        "gitlab-ce",
        "18.11.1",
        "ce.0",
        &[file(BIN, &arm, 0o755), file(MM_VERSION, "10.11.4\n", 0o644)],
        "",
    );
    r.rpm(&[
        "-i",
        "--nodeps",
        "--ignorearch",
        pkg.to_str().expect("utf8"),
    ]);
    let before = digest_tree(r.root());
    let o = lease(&r, &["grant", "--product", "mattermost"]);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("runs only on amd64, and /opt/gitlab/embedded/bin/mattermost is built for arm64 (package gitlab-ce is built for arm64). Nothing was lent. By hand: download mattermost-10.11.4-linux-arm64.tar.gz"),
        "{}",
        stderr(&o)
    );
    assert_eq!(digest_tree(r.root()), before, "nothing changed");
}
