//! Tried as an attacker would: whatever a root holds (absolute links,
//! FIFOs, devices, huge sparse files, hostile manifests and flags), every
//! binary stays inside the root, never hangs and never panics.

#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
use common::*;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A copy of the Omnibus example root (real dpkg database, gitlab.rb).
fn omnibus() -> tempfile::TempDir {
    example_copy("gitlab-omnibus")
}

/// A directory outside every root, standing for "the machine".
fn outside() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("upkeep-outside-")
        .tempdir()
        .expect("tempdir")
}

/// Replaces `inside` in the root with an absolute link to `target`.
fn link_out(root: &Path, inside: &str, target: &Path) {
    let p = root.join(inside);
    if p.is_dir() {
        std::fs::remove_dir_all(&p).expect("rm");
    } else if p.exists() || p.symlink_metadata().is_ok() {
        std::fs::remove_file(&p).expect("rm");
    }
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    symlink(target, &p).expect("ln");
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walk(dir) {
        let data = std::fs::read(&e).unwrap_or_default();
        out.push((e, data));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.clone());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&p));
            }
        }
    }
    out
}

/// Runs a binary with a deadline: a hang is a failure, not a stuck test.
fn run_bounded(name: &str, args: &[&str], input: Option<&[u8]>) -> Output {
    let mut c = Command::new(bin(name));
    c.args(args)
        .env_remove("DPKG_ROOT")
        .env_remove("UPKEEP_PLUGIN_DIR")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    if let (Some(mut stdin), Some(data)) = (child.stdin.take(), input) {
        use std::io::Write;
        stdin.write_all(data).expect("stdin");
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let o = child.wait_with_output().expect("output");
    panic!("{name} {args:?} hung: {}", stderr(&o));
}

fn root_arg(t: &tempfile::TempDir) -> String {
    t.path().to_str().expect("utf8").to_string()
}

#[test]
fn an_absolute_link_to_the_config_never_edits_outside_the_root() {
    let r = omnibus();
    let out = outside();
    std::fs::write(
        out.path().join("gitlab.rb"),
        "mattermost['enable'] = true\n",
    )
    .expect("w");
    link_out(r.path(), "etc/gitlab", out.path());
    let before = snapshot(out.path());
    let root = root_arg(&r);
    let o = run_bounded(
        "upkeep-embedded",
        &["--root", &root, "disable", "mattermost", "--no-reconfigure"],
        None,
    );
    assert_no_panic(&o);
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        snapshot(out.path()),
        before,
        "nothing outside the root changed"
    );
}

#[test]
fn state_lock_and_log_are_never_written_through_an_absolute_link() {
    let r = omnibus();
    let out = outside();
    link_out(r.path(), "var/lib", out.path());
    link_out(r.path(), "var/log", out.path());
    let root = root_arg(&r);
    for args in [
        vec!["upkeep-guard", "--root", &root, "check"],
        vec!["upkeep-guard", "--root", &root, "dpkg-trigger"],
        vec![
            "upkeep-lease",
            "--root",
            &root,
            "grant",
            "/opt/gitlab/embedded/bin/mattermost",
            "--to",
            "mattermost",
        ],
    ] {
        let o = run_bounded(args[0], &args[1..], None);
        assert_no_panic(&o);
        assert!(
            walk(out.path()).is_empty(),
            "{args:?} wrote outside the root: {:?}",
            walk(out.path())
        );
    }
}

#[test]
fn detect_never_reads_another_dpkg_database() {
    let r = omnibus();
    let out = outside();
    // A database outside the root claiming a different owner.
    let src = examples_dir().join("gitlab-omnibus/var/lib/dpkg");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(out.path())
        .status()
        .expect("cp");
    assert!(ok.success());
    let status = std::fs::read_to_string(out.path().join("status")).expect("status");
    std::fs::write(
        out.path().join("status"),
        status.replace("Version: 18.11.1-ee.0", "Version: 99.0.0-evil"),
    )
    .expect("w");
    link_out(r.path(), "var/lib/dpkg", out.path());
    let root = root_arg(&r);
    let o = run_bounded(
        "upkeep-detect",
        &["--root", &root, "--format", "json"],
        None,
    );
    assert_no_panic(&o);
    assert!(!stdout(&o).contains("99.0.0-evil"), "{}", stdout(&o));
}

/// The root's gitlab-ctl or Ruby linked to a program of the machine's is
/// never run: resolved inside the root, the link leads nowhere.
#[test]
fn programs_linked_out_of_the_root_are_never_run() {
    let r = omnibus();
    let out = outside();
    let marker = out.path().join("ran");
    let evil = out.path().join("evil");
    std::fs::write(
        &evil,
        format!("#!/bin/sh\ntouch {}\nexit 0\n", marker.display()),
    )
    .expect("w");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    link_out(r.path(), "opt/gitlab/bin/gitlab-ctl", &evil);
    link_out(r.path(), "opt/gitlab/embedded/bin/ruby", &evil);
    let root = root_arg(&r);
    for args in [
        vec!["upkeep-reconfigure", "--root", &root, "--no-check"],
        vec!["upkeep-embedded", "--root", &root, "disable", "mattermost"],
        vec!["upkeep-embedded", "--root", &root, "status", "mattermost"],
    ] {
        let o = run_bounded(args[0], &args[1..], None);
        assert_no_panic(&o);
        assert!(!marker.exists(), "{args:?} ran a program outside the root");
    }
}

#[test]
fn fifos_devices_and_sparse_files_never_hang_anything() {
    let r = omnibus();
    let root = root_arg(&r);
    let fifo = |inside: &str| {
        let p = r.path().join(inside);
        let _ = std::fs::remove_file(&p);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        let ok = Command::new("mkfifo").arg(&p).status().expect("mkfifo");
        assert!(ok.success());
    };
    fifo("etc/upkeep/upkeep.toml");
    fifo("etc/upkeep/plugins.d/zz.toml");
    fifo("opt/gitlab/embedded/service/mattermost/VERSION");
    fifo("etc/passwd");
    // A .list that is a device, and one linked to /dev/zero (of the root).
    let _ = std::fs::remove_file(r.path().join("var/lib/dpkg/info/gitlab-ee.list"));
    symlink(
        "/dev/zero",
        r.path().join("var/lib/dpkg/info/gitlab-ee.list"),
    )
    .expect("ln");
    let ok = Command::new("mknod")
        .arg(r.path().join("var/lib/dpkg/info/other.list"))
        .args(["c", "1", "5"])
        .status()
        .expect("mknod");
    assert!(ok.success());
    // The binary: a terabyte of holes.
    let bin = r.path().join("opt/gitlab/embedded/bin/mattermost");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&bin)
        .expect("open");
    f.set_len(1 << 40).expect("sparse");
    drop(f);
    let stream = b"VERSION 3\nAPT::Architecture=amd64\n\ngitlab-ee 18.11.1-ee.0 < 18.11.2-ee.0 amd64 **CONFIGURE**\n";
    for args in [
        vec!["upkeep-detect", "--root", &root],
        vec!["upkeep-detect", "--root", &root, "--owner", "/opt/x"],
        vec!["upkeep-guard", "--root", &root, "check"],
        vec!["upkeep-lease", "--root", &root, "status"],
    ] {
        let o = run_bounded(args[0], &args[1..], None);
        assert_no_panic(&o);
    }
    // The hook warns and lets apt go on.
    let o = run_bounded("upkeep-guard", &["--root", &root, "apt-hook"], Some(stream));
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn hostile_flags_and_manifests_are_clear_errors_not_panics() {
    let r = omnibus();
    let root = root_arg(&r);
    let o = run_bounded(
        "upkeep-lease",
        &[
            "--root",
            &root,
            "restore",
            "--all",
            "--wait",
            "18446744073709551615",
        ],
        None,
    );
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let dir = r.path().join("etc/upkeep/plugins.d");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("bad.toml"),
        "schema = 1\nname = \"bad\"\n[[install]]\nkind = \"standalone\"\nbinary = \"/opt/bad\"\n[[edition]]\nedition = \"team\"\nexec = []\noutput_contains = \"x\"\n",
    )
    .expect("w");
    let o = run_bounded("upkeep-detect", &["--root", &root], None);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.toml"), "{}", stderr(&o));
}

#[test]
fn a_root_that_is_not_there_is_a_usage_error_everywhere() {
    for (name, args) in [
        ("upkeep-detect", vec![]),
        ("upkeep-guard", vec!["check"]),
        ("upkeep-lease", vec!["status"]),
        ("upkeep-embedded", vec!["status", "mattermost"]),
    ] {
        let mut all = vec!["--root", "/nonexistent-upkeep-root"];
        all.extend(args);
        let o = upkeep(name, &all);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("/nonexistent-upkeep-root"),
            "{name}: {}",
            stderr(&o)
        );
    }
}
