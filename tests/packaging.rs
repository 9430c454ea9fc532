//! upkeep's own packages, built once by `packaging/` (release binaries in
//! their own target directory, target/packaging, so this never waits on
//! the test build's lock; rebuilt by cargo when stale), installed by the real package managers into
//! throwaway roots:
//! - apt from a flat repository made by dpkg-scanpackages; upgrading a
//!   gitlab-ee test package fires upkeep's apt hook and its dpkg file
//!   trigger; `dpkg --verify upkeep` is clean; remove keeps the conffile,
//!   purge leaves nothing;
//! - rpm --root: upgrading a gitlab-ce test rpm fires the trigger.
//!
//! apt and dpkg run scripts chrootless (the root has no shell of its own),
//! so the installed maintainer scripts run the binaries from the root
//! through $DPKG_ROOT, and the apt.conf.d hook is pointed at the root's
//! binary by one extra configuration file: that mapping is the only
//! stand-in. The root's dpkg status holds stand-in entries for libc6,
//! libgcc-s1 and python3 (the base system the package depends on).
#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const BIN: &str = "/opt/gitlab/embedded/bin/mattermost";

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The .deb and .rpm, built once for all tests here.
fn packages() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = repo("target/packaging/out");
        let _ = std::fs::remove_dir_all(&out);
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let o = Command::new(cargo)
            .args(["run", "--release", "--quiet", "--manifest-path"])
            .arg(repo("packaging/Cargo.toml"))
            .arg("--")
            .arg("--out")
            .arg(&out)
            .arg("--target-dir")
            .arg(repo("target/packaging"))
            // Never package stale binaries: cargo rebuilds what changed.
            .arg("--rebuild")
            .output()
            .expect("cargo run packaging");
        assert!(
            o.status.success(),
            "packaging failed: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let mut deb = None;
        let mut rpm = None;
        for e in std::fs::read_dir(&out).expect("out") {
            let p = e.expect("entry").path();
            match p.extension().and_then(|x| x.to_str()) {
                Some("deb") => deb = Some(p),
                Some("rpm") => rpm = Some(p),
                _ => {}
            }
        }
        (deb.expect("a .deb"), rpm.expect("an .rpm"))
    })
}

fn gitlab_deb(dir: &Path, name: &str, version: &str) -> PathBuf {
    let upstream = version.split('-').next().expect("version");
    build_deb(
        dir,
        name,
        version,
        &[
            file(BIN, mattermost_binary(false), 0o755),
            file(
                "/opt/gitlab/embedded/service/mattermost/VERSION",
                "10.11.4\n",
                0o644,
            ),
            file(
                "/opt/gitlab/version-manifest.json",
                format!("{{\"build_version\": \"{upstream}\"}}"),
                0o644,
            ),
        ],
        &[],
    )
}

fn apt(r: &TestRoot, conf: &Path, args: &[&str]) -> (bool, String) {
    let o = r.apt_get(conf, args, &[]);
    (o.status.success(), stdout(&o))
}

fn dpkg_in(r: &TestRoot, args: &[&str]) -> Output {
    Command::new("dpkg")
        .arg(format!("--root={}", r.root().display()))
        .args(args)
        .env_remove("DPKG_ROOT")
        .output()
        .expect("dpkg")
}

/// Every path under the root whose name mentions upkeep.
fn upkeep_paths(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("upkeep"))
            {
                out.push(p.strip_prefix(root).expect("in root").display().to_string());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_deb_installs_from_a_repository_its_hooks_fire_and_purge_leaves_nothing() {
    let (deb, _) = packages();
    let work = tempfile::tempdir().expect("tmp");
    let r = TestRoot::new();
    let conf = r.init_apt(&[]);
    let arch = stdout(
        &Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .expect("dpkg"),
    )
    .trim()
    .to_string();
    // Stand-ins for the base system the package depends on.
    let status = std::fs::read_to_string(r.path("var/lib/dpkg/status")).expect("status");
    let stub = |name: &str, version: &str| {
        let multi = if name == "python3" { "allowed" } else { "same" };
        format!("Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: libs\nMaintainer: stand-in <x@example.invalid>\nArchitecture: {arch}\nMulti-Arch: {multi}\nVersion: {version}\nDescription: stand-in for the base system\n\n")
    };
    std::fs::write(
        r.path("var/lib/dpkg/status"),
        format!(
            "{status}{}{}{}",
            stub("libc6", "2.36-9"),
            stub("python3", "3.11.2-1+b1"),
            stub("libgcc-s1", "12.2.0-14"),
        ),
    )
    .expect("status");

    // A flat repository with the package, as apt-get update reads it.
    let flat = work.path().join("repo");
    std::fs::create_dir(&flat).expect("mkdir");
    std::fs::copy(deb, flat.join(deb.file_name().expect("name"))).expect("copy");
    let scan = Command::new("dpkg-scanpackages")
        .args(["--multiversion", "."])
        .current_dir(&flat)
        .output()
        .expect("dpkg-scanpackages");
    assert!(scan.status.success(), "{}", stderr(&scan));
    std::fs::write(flat.join("Packages"), &scan.stdout).expect("Packages");
    std::fs::write(
        r.path("etc/apt/sources.list"),
        format!("deb [trusted=yes] file:{} ./\n", flat.display()),
    )
    .expect("sources");
    let (ok, out) = apt(&r, &conf, &["update"]);
    assert!(ok, "{out}");
    let (ok, out) = apt(&r, &conf, &["install", "upkeep"]);
    assert!(ok, "{out}");
    assert!(r.installed_version("upkeep").is_some(), "{out}");

    // What it installed.
    for p in [
        "usr/bin/upkeep-guard",
        "usr/bin/upkeep-hook",
        "usr/share/upkeep/plugins/tegu.toml",
        "etc/upkeep/upkeep.toml",
        "lib/systemd/system/upkeep-lease-recover.timer",
        "usr/share/man/man8/upkeep-guard.8.gz",
        "usr/share/doc/upkeep/copyright",
    ] {
        assert!(r.path(p).exists(), "{p} missing");
    }
    let snippet = std::fs::read_to_string(r.path("etc/apt/apt.conf.d/50upkeep")).expect("snippet");
    assert!(
        snippet.contains("DPkg::Pre-Install-Pkgs { \"/usr/bin/upkeep-hook\"; };"),
        "{snippet}"
    );
    let conf_text = std::fs::read_to_string(r.path("etc/upkeep/upkeep.toml")).expect("conf");
    assert!(
        conf_text.contains("# on_downgrade = \"block\""),
        "{conf_text}"
    );
    let v = dpkg_in(&r, &["--verify", "upkeep"]);
    assert!(
        v.status.success() && v.stdout.is_empty(),
        "dpkg --verify: {}{}",
        stdout(&v),
        stderr(&v)
    );
    // The installed binary reads the installed manifests.
    let o = Command::new(r.path("usr/bin/upkeep-detect"))
        .args(["--root", r.root().to_str().expect("utf8")])
        .env_remove("UPKEEP_PLUGIN_DIR")
        .env_remove("DPKG_ROOT")
        .output()
        .expect("detect");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // The apt hook as installed, run from the root (apt runs hooks on the
    // host: this one file maps the path, as a chroot would).
    let hook = r.path("usr/bin/upkeep-hook").display().to_string();
    std::fs::write(
        r.path("etc/apt/apt.conf.d/99test-root"),
        format!(
            "#clear DPkg::Pre-Install-Pkgs;\nDPkg::Pre-Install-Pkgs {{ \"{hook} --root {}\"; }};\nDPkg::Tools::Options::{hook}::Version \"3\";\n",
            r.root().display()
        ),
    )
    .expect("map");

    let old = gitlab_deb(work.path(), "gitlab-ee", "18.11.1-ee.0");
    let (ok, out) = apt(&r, &conf, &["install", old.to_str().expect("utf8")]);
    assert!(ok, "{out}");
    assert!(!out.contains("upkeep-guard:"), "nothing to say yet: {out}");
    // Converted to Enterprise by hand, and seen so.
    r.write(BIN, mattermost_binary(true), 0o755);
    let o = Command::new(r.path("usr/bin/upkeep-guard"))
        .args(["--root", r.root().to_str().expect("utf8"), "check"])
        .env_remove("UPKEEP_PLUGIN_DIR")
        .output()
        .expect("check");
    assert!(stdout(&o).contains("AT RISK"), "{}", stdout(&o));

    let new = gitlab_deb(work.path(), "gitlab-ee", "18.11.2-ee.0");
    let (ok, out) = apt(&r, &conf, &["install", new.to_str().expect("utf8")]);
    assert!(ok, "{out}");
    let warned = out
        .find("warning: upgrading gitlab-ee will revert /opt/gitlab/embedded/bin/mattermost")
        .unwrap_or_else(|| panic!("the apt hook warned: {out}"));
    let unpacked = out.find("Unpacking gitlab-ee").expect("unpacked");
    assert!(warned < unpacked, "before dpkg ran: {out}");
    assert!(out.contains("Processing triggers for upkeep"), "{out}");
    assert!(
        out.contains(
            "REVERTED: /opt/gitlab/embedded/bin/mattermost (mattermost) was Enterprise Edition"
        ),
        "the dpkg trigger reported: {out}"
    );
    // A forbidden downgrade is vetoed by the installed hook.
    let (ok, out) = apt(
        &r,
        &conf,
        &["install", "--allow-downgrades", old.to_str().expect("utf8")],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("refusing: gitlab-ee would be downgraded"),
        "{out}"
    );
    let v = dpkg_in(&r, &["--verify", "upkeep"]);
    assert!(v.stdout.is_empty(), "{}", stdout(&v));

    // remove: the conffile stays (edited, even), apt keeps working.
    r.write(
        "/etc/upkeep/upkeep.toml",
        "[product.tegu]\non_downgrade = \"warn\"\n",
        0o644,
    );
    let (ok, out) = apt(&r, &conf, &["remove", "upkeep"]);
    assert!(ok, "{out}");
    std::fs::remove_file(r.path("etc/apt/apt.conf.d/99test-root")).expect("rm map");
    assert!(!r.path("usr/bin/upkeep-guard").exists());
    assert_eq!(
        std::fs::read_to_string(r.path("etc/upkeep/upkeep.toml")).expect("kept"),
        "[product.tegu]\non_downgrade = \"warn\"\n"
    );
    assert!(
        !r.path("etc/apt/apt.conf.d/50upkeep").exists(),
        "the snippet naming a removed hook is set aside"
    );
    let (ok, out) = apt(
        &r,
        &conf,
        &["install", "--reinstall", new.to_str().expect("utf8")],
    );
    assert!(ok, "apt still works after remove: {out}");

    // purge: nothing of upkeep's is left.
    let (ok, out) = apt(&r, &conf, &["purge", "upkeep"]);
    assert!(ok, "{out}");
    let left: Vec<String> = upkeep_paths(r.root())
        .into_iter()
        .filter(|p| !p.starts_with("var/cache/apt") && !p.starts_with("var/lib/apt/lists"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    for d in ["etc/upkeep", "var/lib/upkeep", "var/log/upkeep"] {
        assert!(!r.path(d).exists(), "{d} left behind");
    }
}

#[test]
fn the_rpm_installs_with_rpm_root_and_its_trigger_fires() {
    let (_, rpm) = packages();
    let work = tempfile::tempdir().expect("tmp");
    let r = TestRoot::new();
    r.init_rpm();
    let root = r.root().to_str().expect("utf8");
    // The shared libraries the binaries need, for rpm's chrooted scriptlets.
    let guard = repo("target/packaging/release/upkeep-guard");
    let ldd = Command::new("ldd").arg(&guard).output().expect("ldd");
    for l in stdout(&ldd).lines() {
        let path = l
            .split("=>")
            .last()
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_default();
        if path.starts_with('/') {
            r.write(path, std::fs::read(path).expect("lib"), 0o755);
        }
    }
    let files = || {
        vec![
            file(BIN, mattermost_binary(false), 0o755),
            file(
                "/opt/gitlab/version-manifest.json",
                "{\"build_version\": \"18.11.1\"}",
                0o644,
            ),
        ]
    };
    let v1 = build_rpm(work.path(), "gitlab-ce", "18.11.1", "ce.0", &files(), "");
    let v2 = build_rpm(work.path(), "gitlab-ce", "18.11.2", "ce.0", &files(), "");
    r.rpm(&["-i", "--nodeps", v1.to_str().expect("utf8")]);
    r.rpm(&["-i", "--nodeps", rpm.to_str().expect("utf8")]);
    for p in [
        "usr/bin/upkeep-guard",
        "usr/share/upkeep/plugins/mattermost.toml",
        "etc/upkeep/upkeep.toml",
        "usr/lib/systemd/system/upkeep-lease-recover.timer",
        "etc/dnf/libdnf5-plugins/actions.d/upkeep.actions",
    ] {
        assert!(r.path(p).exists(), "{p} missing");
    }
    let o = r.rpm(&["-V", "--nodeps", "upkeep"]);
    assert!(o.stdout.is_empty(), "rpm -V: {}", stdout(&o));

    r.write(BIN, mattermost_binary(true), 0o755);
    let o = Command::new(r.path("usr/bin/upkeep-guard"))
        .args(["--root", root, "check"])
        .env_remove("UPKEEP_PLUGIN_DIR")
        .output()
        .expect("check");
    assert!(stdout(&o).contains("AT RISK"), "{}", stdout(&o));
    let o = r.rpm(&["-U", "--nodeps", v2.to_str().expect("utf8")]);
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        out.contains(
            "REVERTED: /opt/gitlab/embedded/bin/mattermost (mattermost) was Enterprise Edition"
        ),
        "{out}"
    );
    let log = std::fs::read_to_string(r.path("var/log/upkeep/upkeep.log")).expect("log");
    assert!(log.contains("REVERTED"), "{log}");
    // Erase: the recorded state goes with it; the edited conffile is kept
    // as .rpmsave.
    r.write("/etc/upkeep/upkeep.toml", "# edited\n", 0o644);
    r.rpm(&["-e", "--nodeps", "upkeep"]);
    assert!(!r.path("var/lib/upkeep").exists());
    assert!(r.path("etc/upkeep/upkeep.toml.rpmsave").exists());
}
