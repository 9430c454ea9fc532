//! The apt hook as an attacker would try it: downgrades spelled as package
//! swaps or remove + install, malformed and non-UTF-8 lines, FIFOs where
//! files belong. Each stream runs through both the front (`upkeep-hook`,
//! what apt.conf.d names) and `upkeep-guard apt-hook` directly; the swap and
//! the non-UTF-8 path also run through real apt on a throwaway root.
#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
use common::*;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the hook (front or guard) on `stream` with a deadline: a hook that
/// blocks fails the test instead of hanging it.
fn run_hook(front: bool, r: &TestRoot, stream: &[u8]) -> Output {
    let root = r.root().to_str().expect("utf8");
    let mut c = if front {
        let mut c = Command::new(bin("upkeep-hook"));
        c.args(["--root", root]);
        c
    } else {
        let mut c = Command::new(bin("upkeep-guard"));
        c.args(["--root", root, "apt-hook"]);
        c
    };
    c.env_remove("APT_HOOK_INFO_FD")
        .env_remove("DPKG_ROOT")
        .env_remove("UPKEEP_PLUGIN_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = stream.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the hook blocked (front: {front})");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = writer.join();
    let o = child.wait_with_output().expect("output");
    assert_no_panic(&o);
    o
}

/// Both entry points give the same exit code; returns the guard's stderr
/// (the front's is checked to say the same).
fn both(r: &TestRoot, stream: &[u8], code: i32) -> String {
    let g = run_hook(false, r, stream);
    let f = run_hook(true, r, stream);
    assert_eq!(g.status.code(), Some(code), "guard: {}", stderr(&g));
    assert_eq!(f.status.code(), Some(code), "front: {}", stderr(&f));
    assert_eq!(stderr(&f), stderr(&g), "the front hands over everything");
    stderr(&g)
}

const HEAD: &str =
    "VERSION 3\nAPT::Architecture=amd64\nDPkg::Pre-Install-Pkgs::=/usr/bin/upkeep-hook\n\n";

#[test]
fn a_tegu_downgrade_spelled_as_a_swap_or_remove_and_install_is_vetoed() {
    let r = TestRoot::new();
    let swap = format!(
        "{HEAD}tegu-ent 3.2.0 amd64 none > - - none **REMOVE**\ntegu - - none < 3.1.0 amd64 none /var/cache/apt/archives/tegu_3.1.0_amd64.deb\ntegu - - none < 3.1.0 amd64 none **CONFIGURE**\n"
    );
    let err = both(&r, swap.as_bytes(), 3);
    assert!(
        err.contains("refusing: tegu 3.1.0 would replace tegu-ent 3.2.0: tegu would be downgraded from 3.2.0 to 3.1.0"),
        "{err}"
    );
    // The same with the lines the other way round.
    let reversed = format!(
        "{HEAD}tegu - - none < 3.1.0 amd64 none /x/tegu_3.1.0_amd64.deb\ntegu-ent 3.2.0 amd64 none > - - none **REMOVE**\n"
    );
    both(&r, reversed.as_bytes(), 3);

    let remove_then_install = format!(
        "{HEAD}tegu 3.2.0 amd64 none > - - none **REMOVE**\ntegu - - none < 3.1.0 amd64 none /x/tegu_3.1.0_amd64.deb\n"
    );
    let err = both(&r, remove_then_install.as_bytes(), 3);
    assert!(
        err.contains("refusing: tegu would be downgraded from 3.2.0 to 3.1.0"),
        "{err}"
    );

    // Upgrades spelled the same ways pass in silence.
    for ok in [
        format!("{HEAD}tegu 3.1.0 amd64 none > - - none **REMOVE**\ntegu-ent - - none < 3.2.0 amd64 none /x/tegu-ent_3.2.0_amd64.deb\n"),
        format!("{HEAD}tegu-ent 3.1.0 amd64 none < 3.1.1 amd64 none /x/tegu-ent_3.1.1_amd64.deb\n"),
        // A standalone Mattermost's version says nothing about GitLab's.
        format!("{HEAD}mattermost 10.11.4 amd64 none > - - none **REMOVE**\ngitlab-ee - - none < 9.0.0-ee.0 amd64 none /x/gitlab-ee.deb\n"),
    ] {
        assert_eq!(both(&r, ok.as_bytes(), 0), "", "{ok}");
    }
    // The manifest's policy can be relaxed per product: then it warns.
    r.write(
        "/etc/upkeep/upkeep.toml",
        "[product.tegu]\non_downgrade = \"warn\"\n",
        0o644,
    );
    let err = both(&r, swap.as_bytes(), 0);
    assert!(
        err.contains("warning: tegu 3.1.0 would replace tegu-ent 3.2.0"),
        "{err}"
    );
}

#[test]
fn a_bad_line_or_byte_never_hides_the_good_lines() {
    let r = TestRoot::new();
    let mut s = HEAD.as_bytes().to_vec();
    s.extend_from_slice(b"this line is broken\n");
    s.extend_from_slice(b"libfoo 1 amd64 same ? 2 amd64 same /x.deb\n");
    s.extend_from_slice(
        b"tegu-ent 3.2.0 amd64 none < 3.1.0 amd64 none /tmp/caf\xe9 debs/tegu-ent_3.1.0_amd64.deb\n",
    );
    let err = both(&r, &s, 3);
    assert!(
        err.contains("line 5: not a package line") && err.contains("line 6: direction"),
        "each bad line is named: {err}"
    );
    assert!(
        err.contains("refusing: tegu-ent would be downgraded from 3.2.0 to 3.1.0"),
        "{err}"
    );
    // A broken header: the package lines are still read by their shape.
    let err = both(
        &r,
        b"VERSION 7\nX=y\n\ntegu-ent 3.2.0 amd64 none < 3.1.0 amd64 none /x.deb\n",
        3,
    );
    assert!(
        err.contains("line 1: expected 'VERSION 2' or 'VERSION 3'"),
        "{err}"
    );
    // Non-UTF-8 in a path of an unrelated upgrade: nothing to say at all.
    let mut s = HEAD.as_bytes().to_vec();
    s.extend_from_slice(b"libfoo 1 amd64 same < 2 amd64 same /tmp/\xff\xfe/libfoo_2_amd64.deb\n");
    assert_eq!(both(&r, &s, 0), "");
    // Many bad lines: the first ten are named, the rest counted.
    let mut s = HEAD.to_string();
    for i in 0..25 {
        s.push_str(&format!("bad line {i}\n"));
    }
    s.push_str("tegu 3.2.0 amd64 none < 3.1.0 amd64 none /x.deb\n");
    let err = both(&r, s.as_bytes(), 3);
    assert!(err.contains("15 more bad lines, all skipped"), "{err}");
}

fn mkfifo(p: &Path) {
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    let st = Command::new("mkfifo").arg(p).status().expect("mkfifo");
    assert!(st.success());
}

#[test]
fn a_fifo_where_a_file_belongs_never_hangs_the_hook() {
    let downgrade = format!("{HEAD}tegu-ent 3.2.0 amd64 none < 3.1.0 amd64 none /x.deb\n");

    // upkeep.toml: the hook warns, blocks nothing (the config is unreadable).
    let r = TestRoot::new();
    mkfifo(&r.path("etc/upkeep/upkeep.toml"));
    let err = both(&r, downgrade.as_bytes(), 0);
    assert!(
        err.contains("configuration is broken") && err.contains("FIFO"),
        "{err}"
    );
    let o = upkeep(
        "upkeep-guard",
        &["--root", r.root().to_str().expect("utf8"), "check"],
    );
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));

    // A manifest override.
    let r = TestRoot::new();
    mkfifo(&r.path("etc/upkeep/plugins.d/tegu.toml"));
    let err = both(&r, downgrade.as_bytes(), 0);
    assert!(
        err.contains("plugin manifests are broken")
            && err.contains("tegu.toml")
            && err.contains("FIFO"),
        "{err}"
    );
    let o = upkeep(
        "upkeep-detect",
        &["--root", r.root().to_str().expect("utf8")],
    );
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));

    // A VERSION file, read while the hook inspects the installs.
    let r = TestRoot::new();
    r.write("/opt/tegu/sbin/tegu", b"\x7fELF tegu", 0o755);
    mkfifo(&r.path("opt/tegu/VERSION"));
    let upgrade = format!("{HEAD}tegu-ent 3.1.0 amd64 none < 3.2.0 amd64 none /x.deb\n");
    both(&r, upgrade.as_bytes(), 0);
    let o = upkeep(
        "upkeep-detect",
        &["--root", r.root().to_str().expect("utf8")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        format!("{}{}", stdout(&o), stderr(&o)).contains("/opt/tegu/VERSION: is a FIFO"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

fn tegu_deb(dir: &Path, name: &str, version: &str, other: &str) -> std::path::PathBuf {
    build_deb(
        dir,
        name,
        version,
        &[
            file("/opt/tegu/sbin/tegu", b"\x7fELF tegu", 0o755),
            file("/opt/tegu/VERSION", format!("{version}\n"), 0o644),
        ],
        &[(
            "control",
            &format!("Conflicts: {other}\nReplaces: {other}\n"),
        )],
    )
}

/// apt on the root with the shipped apt.conf.d snippet pointed at the test
/// binaries.
fn apt_root() -> (TestRoot, std::path::PathBuf) {
    let r = TestRoot::new();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/apt/50upkeep-guard"),
    )
    .expect("snippet");
    let b = bin("upkeep-hook").display().to_string();
    let snippet = text
        .replace(
            "\"/usr/bin/upkeep-hook\"",
            &format!("\"{b} --root {}\"", r.root().display()),
        )
        .replace("/usr/bin/upkeep-hook::Version", &format!("{b}::Version"));
    let conf = r.init_apt(&[("50upkeep-guard", snippet)]);
    (r, conf)
}

fn apt(r: &TestRoot, conf: &Path, args: &[&OsStr]) -> (bool, String) {
    let o = Command::new("sh")
        .arg("-c")
        .arg("exec apt-get -y -q \"$@\" 2>&1")
        .arg("sh")
        .args(args)
        .env("APT_CONFIG", conf)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env_remove("DPKG_ROOT")
        .stdin(Stdio::null())
        .output()
        .expect("apt-get");
    let _ = r;
    (o.status.success(), stdout(&o))
}

#[test]
fn real_apt_swap_and_a_latin1_path_are_vetoed_before_dpkg_runs() {
    let work = tempfile::tempdir().expect("tmp");
    let (r, conf) = apt_root();
    let ent = tegu_deb(work.path(), "tegu-ent", "3.2.0", "tegu");
    let (ok, out) = apt(&r, &conf, &[OsStr::new("install"), ent.as_os_str()]);
    assert!(ok, "{out}");
    assert_eq!(r.installed_version("tegu-ent").as_deref(), Some("3.2.0"));

    // The swap: apt removes tegu-ent to install the older tegu.
    let team = tegu_deb(work.path(), "tegu", "3.1.0", "tegu-ent");
    let (ok, out) = apt(&r, &conf, &[OsStr::new("install"), team.as_os_str()]);
    assert!(!ok, "vetoed: {out}");
    assert!(
        out.contains("refusing: tegu 3.1.0 would replace tegu-ent 3.2.0"),
        "{out}"
    );
    assert!(!out.contains("Removing tegu-ent"), "dpkg never ran: {out}");
    assert_eq!(r.installed_version("tegu-ent").as_deref(), Some("3.2.0"));
    assert_eq!(r.installed_version("tegu"), None);

    // A plain downgrade from a directory whose name is not UTF-8.
    let latin1 = work.path().join(OsStr::from_bytes(b"caf\xe9 debs"));
    std::fs::create_dir(&latin1).expect("mkdir");
    let old = tegu_deb(&latin1, "tegu-ent", "3.1.0", "tegu");
    let (ok, out) = apt(
        &r,
        &conf,
        &[
            OsStr::new("install"),
            OsStr::new("--allow-downgrades"),
            old.as_os_str(),
        ],
    );
    assert!(!ok, "vetoed: {out}");
    assert!(
        out.contains("refusing: tegu-ent would be downgraded from 3.2.0 to 3.1.0"),
        "{out}"
    );
    assert_eq!(r.installed_version("tegu-ent").as_deref(), Some("3.2.0"));

    // An upgrade goes through, in silence from upkeep.
    let newer = tegu_deb(work.path(), "tegu-ent", "3.2.1", "tegu");
    let (ok, out) = apt(&r, &conf, &[OsStr::new("install"), newer.as_os_str()]);
    assert!(ok, "{out}");
    assert!(!out.contains("upkeep"), "{out}");
    assert_eq!(r.installed_version("tegu-ent").as_deref(), Some("3.2.1"));
}

#[test]
fn the_front_reads_apt_hook_info_fd_and_never_fails_apt_without_the_guard() {
    let r = TestRoot::new();
    let work = tempfile::tempdir().expect("tmp");
    let stream = work.path().join("stream");
    std::fs::write(
        &stream,
        format!("{HEAD}tegu-ent 3.2.0 amd64 none < 3.1.0 amd64 none /x.deb\n"),
    )
    .expect("w");
    // fd 3 holds the stream; stdin has garbage the front must not read.
    let run = |front: &Path| {
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo garbage | APT_HOOK_INFO_FD=3 {} --root {} 3<{}",
                front.display(),
                r.root().display(),
                stream.display()
            ))
            .env_remove("UPKEEP_PLUGIN_DIR")
            .env_remove("DPKG_ROOT")
            .output()
            .expect("sh")
    };
    let o = run(&bin("upkeep-hook"));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("refusing: tegu-ent would be downgraded"),
        "{}",
        stderr(&o)
    );
    // The front alone, no upkeep-guard beside it: a warning, and apt goes on.
    let alone = work.path().join("upkeep-hook");
    std::fs::copy(bin("upkeep-hook"), &alone).expect("copy");
    let o = run(&alone);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("upkeep-hook: warning: cannot run")
            && stderr(&o).contains("upkeep-guard"),
        "{}",
        stderr(&o)
    );
}
