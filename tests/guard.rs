//! upkeep-guard with real apt and dpkg on throwaway roots (apt -o Dir=R via
//! its own APT_CONFIG, dpkg --root, scripts chrootless), real rpm --root with
//! the trigger scriptlets from hooks/ run by rpm in its chroot, and the hook
//! files as they ship in hooks/.

#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = "/opt/gitlab/embedded/bin/mattermost";

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn gitlab_deb(dir: &Path, name: &str, version: &str, extra: &[(&str, &str)]) -> PathBuf {
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
        extra,
    )
}

/// The shipped apt.conf.d snippet, pointed at the test binary and root.
fn apt_hook_snippet(r: &TestRoot) -> String {
    let text = std::fs::read_to_string(repo("hooks/apt/50upkeep-guard")).expect("hooks/apt");
    let b = bin("upkeep-hook").display().to_string();
    let replaced = text
        .replace(
            "\"/usr/bin/upkeep-hook\"",
            &format!("\"{b} --root {}\"", r.root().display()),
        )
        .replace("/usr/bin/upkeep-hook::Version", &format!("{b}::Version"));
    assert_ne!(replaced, text, "the snippet names /usr/bin/upkeep-hook");
    replaced
}

/// An apt root with gitlab-ee 18.11.1 installed by apt, its Mattermost
/// binary then replaced by an Enterprise one, and the hook configured.
fn converted_gitlab(work: &Path) -> (TestRoot, PathBuf) {
    let r = TestRoot::new();
    let conf = r.init_apt(&[]);
    let old = gitlab_deb(work, "gitlab-ee", "18.11.1-ee.0", &[]);
    apt_install(&r, &conf, &old);
    r.write(BIN, mattermost_binary(true), 0o755);
    std::fs::write(
        r.path("etc/apt/apt.conf.d/50upkeep-guard"),
        apt_hook_snippet(&r),
    )
    .expect("hook");
    (r, conf)
}

/// `apt-get install DEB` on the root, which must succeed.
fn apt_install(r: &TestRoot, conf: &Path, deb: &Path) {
    let o = r.apt_get(conf, &["install", deb.to_str().expect("utf8")], &[]);
    assert!(o.status.success(), "{}", stdout(&o));
}

fn position(hay: &str, needle: &str) -> usize {
    hay.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{hay}"))
}

#[test]
fn apt_warns_before_dpkg_runs_and_block_vetoes_the_upgrade() {
    let work = tempfile::tempdir().expect("tmp");
    let (r, conf) = converted_gitlab(work.path());
    let new = gitlab_deb(work.path(), "gitlab-ee", "18.11.2-ee.0", &[]);

    // block: apt stops before dpkg runs; nothing changes.
    r.write(
        "/etc/upkeep/upkeep.toml",
        "[product.mattermost]\non_revert = \"block\"\n",
        0o644,
    );
    let o = r.apt_get(&conf, &["install", new.to_str().expect("utf8")], &[]);
    let out = stdout(&o);
    assert!(!o.status.success(), "vetoed: {out}");
    assert!(
        out.contains(
            "refusing: upgrading gitlab-ee will revert /opt/gitlab/embedded/bin/mattermost"
        ),
        "{out}"
    );
    assert!(
        out.contains("upkeep-guard: Stopping apt before dpkg runs. To let it through, set on_revert or on_downgrade = \"warn\" for the product in /etc/upkeep/upkeep.toml.\n"),
        "{out}"
    );
    assert!(!out.contains("Unpacking"), "dpkg never ran: {out}");
    assert_eq!(
        r.installed_version("gitlab-ee").as_deref(),
        Some("18.11.1-ee.0")
    );
    assert!(std::fs::read(r.path(BIN))
        .expect("bin")
        .windows(ENTERPRISE_MARKER.len())
        .any(|w| w == ENTERPRISE_MARKER.as_bytes()));

    // warn (the default): the warning comes before dpkg unpacks.
    std::fs::remove_file(r.path("etc/upkeep/upkeep.toml")).expect("rm");
    let o = r.apt_get(&conf, &["install", new.to_str().expect("utf8")], &[]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    let warn = position(
        &out,
        "warning: upgrading gitlab-ee will revert /opt/gitlab/embedded/bin/mattermost",
    );
    assert!(
        out.contains("Enterprise Edition binary in a path that package gitlab-ee owns"),
        "{out}"
    );
    assert!(
        warn < position(&out, "Unpacking gitlab-ee"),
        "warned before dpkg ran:\n{out}"
    );
    assert_eq!(
        r.installed_version("gitlab-ee").as_deref(),
        Some("18.11.2-ee.0")
    );
}

#[test]
fn a_forbidden_downgrade_is_vetoed_and_warn_lets_it_through() {
    let work = tempfile::tempdir().expect("tmp");
    let r = TestRoot::new();
    let conf = r.init_apt(&[]);
    let old = gitlab_deb(work.path(), "gitlab-ee", "18.11.1-ee.0", &[]);
    let new = gitlab_deb(work.path(), "gitlab-ee", "18.11.2-ee.0", &[]);
    apt_install(&r, &conf, &new);
    std::fs::write(
        r.path("etc/apt/apt.conf.d/50upkeep-guard"),
        apt_hook_snippet(&r),
    )
    .expect("hook");

    let o = r.apt_get(
        &conf,
        &["install", "--allow-downgrades", old.to_str().expect("utf8")],
        &[],
    );
    let out = stdout(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("upkeep-guard: refusing: gitlab-ee would be downgraded from 18.11.2-ee.0 to 18.11.1-ee.0, and mattermost forbids downgrades because its database schema may have moved on.\n"),
        "{out}"
    );
    assert_eq!(
        r.installed_version("gitlab-ee").as_deref(),
        Some("18.11.2-ee.0")
    );

    r.write(
        "/etc/upkeep/upkeep.toml",
        "[product.mattermost]\non_downgrade = \"warn\"\n",
        0o644,
    );
    let o = r.apt_get(
        &conf,
        &["install", "--allow-downgrades", old.to_str().expect("utf8")],
        &[],
    );
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("warning: gitlab-ee would be downgraded"));
    assert_eq!(
        r.installed_version("gitlab-ee").as_deref(),
        Some("18.11.1-ee.0")
    );
}

#[test]
fn a_gitlab_19_upgrade_with_mattermost_settings_names_the_fix() {
    let work = tempfile::tempdir().expect("tmp");
    let r = TestRoot::new();
    let conf = r.init_apt(&[]);
    let old = gitlab_deb(work.path(), "gitlab-ee", "18.11.1-ee.0", &[]);
    apt_install(&r, &conf, &old);
    r.write(
        "/etc/gitlab/gitlab.rb",
        "external_url 'https://g'\nmattermost['enable'] = false\n",
        0o600,
    );
    std::fs::write(
        r.path("etc/apt/apt.conf.d/50upkeep-guard"),
        apt_hook_snippet(&r),
    )
    .expect("hook");
    let new = gitlab_deb(work.path(), "gitlab-ee", "19.0.1-ee.0", &[]);
    let o = r.apt_get(&conf, &["install", new.to_str().expect("utf8")], &[]);
    let out = stdout(&o);
    assert!(
        out.contains("upkeep-guard: warning: upgrading gitlab-ee from 18.11.1-ee.0 to 19.0.1-ee.0 will fail, because /etc/gitlab/gitlab.rb still has active mattermost settings (2: mattermost['enable'] = false), so the package's preinst will abort. Run `upkeep-embedded disable --for-upgrade mattermost` first.\n"),
        "the whole sentence, naming the line: {out}"
    );
    assert!(position(&out, "preinst will abort") < position(&out, "Unpacking"));
}

fn hook(r: &TestRoot, stream: &str, env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut c = Command::new(bin("upkeep-guard"));
    c.args(["--root", r.root().to_str().expect("utf8"), "apt-hook"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("APT_HOOK_INFO_FD");
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stream.as_bytes())
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert_no_panic(&o);
    o
}

pub fn synthetic_stream(n: usize) -> String {
    let mut s = String::from("VERSION 3\nAPT::Architecture=amd64\nDPkg::Tools::Options::/usr/bin/upkeep-guard::Version=3\n\n");
    for i in 0..n {
        s.push_str(&format!("libfoo{i} 1.{i}-1 amd64 same < 1.{i}-2 amd64 same /var/cache/apt/archives/libfoo{i}_1.{i}-2_amd64.deb\n"));
    }
    for i in 0..n {
        s.push_str(&format!(
            "libfoo{i} 1.{i}-1 amd64 same < 1.{i}-2 amd64 same **CONFIGURE**\n"
        ));
    }
    s
}

#[test]
fn a_big_upgrade_with_nothing_relevant_passes_silently() {
    let work = tempfile::tempdir().expect("tmp");
    let (r, _) = converted_gitlab(work.path());
    let o = hook(&r, &synthetic_stream(500), &[]);
    assert_eq!(
        (o.status.code(), stderr(&o).as_str(), stdout(&o).as_str()),
        (Some(0), "", "")
    );
    // The same stream with the one relevant line added is not silent.
    let mut s = synthetic_stream(500);
    s.push_str("gitlab-ee 18.11.1-ee.0 all none < 18.11.2-ee.0 all none /x/gitlab-ee_18.11.2-ee.0_all.deb\n");
    let o = hook(&r, &s, &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("will revert"), "{}", stderr(&o));
}

#[test]
fn the_hook_reads_apt_hook_info_fd_when_set() {
    let work = tempfile::tempdir().expect("tmp");
    let (r, _) = converted_gitlab(work.path());
    let stream = work.path().join("stream");
    std::fs::write(
        &stream,
        "VERSION 3\n\ngitlab-ee 18.11.1-ee.0 all none = 18.11.1-ee.0 all none /x.deb\n",
    )
    .expect("w");
    // fd 3 opened on the stream file by the shell; stdin gets garbage.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo garbage | APT_HOOK_INFO_FD=3 {} --root {} apt-hook 3<{}",
            bin("upkeep-guard").display(),
            r.root().display(),
            stream.display()
        ))
        .output()
        .expect("sh");
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("reinstalling gitlab-ee will revert"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn broken_input_never_breaks_apt_but_check_reports_it() {
    let work = tempfile::tempdir().expect("tmp");
    let (r, _) = converted_gitlab(work.path());
    let line = "gitlab-ee 18.11.1-ee.0 all none < 18.11.2-ee.0 all none /x.deb\n";
    let stream = format!("VERSION 3\n\n{line}");

    r.write(
        "/etc/upkeep/upkeep.toml",
        "[product.mattermost]\non_revert = \"block\"\nbogus = [\n",
        0o644,
    );
    let o = hook(&r, &stream, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "a broken config never blocks: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("configuration is broken")
            && stderr(&o).contains("upkeep.toml:4: invalid array"),
        "{}",
        stderr(&o)
    );
    let o = upkeep(
        "upkeep-guard",
        &["--root", r.root().to_str().expect("utf8"), "check"],
    );
    assert_eq!(
        o.status.code(),
        Some(65),
        "check reports a broken config: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("upkeep.toml:4"), "{}", stderr(&o));
    std::fs::remove_file(r.path("etc/upkeep/upkeep.toml")).expect("rm");

    for garbage in [
        "",
        "VERSION 9\n",
        "\u{0}\u{1}binary",
        "VERSION 3\n\ngitlab-ee only four fields\n",
    ] {
        let o = hook(&r, garbage, &[]);
        assert_eq!(o.status.code(), Some(0), "{garbage:?}");
        assert!(
            stderr(&o).contains("apt's hook stream cannot be read"),
            "{garbage:?}: {}",
            stderr(&o)
        );
    }

    let status = std::fs::read_to_string(r.path("var/lib/dpkg/status")).expect("status");
    std::fs::write(
        r.path("var/lib/dpkg/status"),
        status.replace("Status: install ok installed", "Status: broken"),
    )
    .expect("w");
    let o = hook(&r, &stream, &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("the installs cannot be inspected"),
        "{}",
        stderr(&o)
    );
    let o = upkeep(
        "upkeep-guard",
        &["--root", r.root().to_str().expect("utf8"), "check"],
    );
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("var/lib/dpkg/status:"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_names_binary_package_and_what_to_do_and_strict_exits_4() {
    let work = tempfile::tempdir().expect("tmp");
    let (r, _) = converted_gitlab(work.path());
    let root = r.root().to_str().expect("utf8");
    let o = upkeep("upkeep-guard", &["--root", root, "check"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for want in [
        BIN,
        "gitlab-ee",
        "an upgrade or reinstall of gitlab-ee",
        "gitlab-ctl reconfigure",
        "standalone Mattermost server",
        "upkeep-lease grant --product mattermost",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
    assert_eq!(
        upkeep("upkeep-guard", &["--root", root, "check", "--strict"])
            .status
            .code(),
        Some(4)
    );
    let v = json(&upkeep(
        "upkeep-guard",
        &["--root", root, "check", "--format", "json"],
    ));
    assert_eq!(v["findings"][0]["package"], "gitlab-ee");
    assert_eq!(v["findings"][0]["edition"], "enterprise");
    assert_eq!(v["findings"][0]["reason"], "modified");

    let clean = TestRoot::new();
    let o = upkeep(
        "upkeep-guard",
        &[
            "--root",
            clean.root().to_str().expect("utf8"),
            "check",
            "--strict",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("nothing at risk"));
}

/// dpkg's postinst fragment from hooks/, made into a complete script.
fn hook_package(work: &Path) -> PathBuf {
    let triggers = std::fs::read_to_string(repo("hooks/dpkg/triggers")).expect("triggers");
    let postinst = std::fs::read_to_string(repo("hooks/dpkg/postinst"))
        .expect("postinst")
        .replace("#DEBHELPER#\n", "");
    build_deb(
        work,
        "upkeep-hooks",
        "1.0",
        &[file(
            "/usr/share/doc/upkeep-hooks/README",
            "test hook package\n",
            0o644,
        )],
        &[("triggers", &triggers), ("postinst", &postinst)],
    )
}

#[test]
fn a_dpkg_file_trigger_reports_the_revert_after_the_upgrade() {
    let work = tempfile::tempdir().expect("tmp");
    let r = TestRoot::new();
    let root = r.root().to_str().expect("utf8");
    r.dpkg(&[
        "-i",
        gitlab_deb(work.path(), "gitlab-ee", "18.11.1-ee.0", &[])
            .to_str()
            .expect("utf8"),
    ]);
    r.write(BIN, mattermost_binary(true), 0o755);
    // What was seen: Enterprise.
    assert_eq!(
        upkeep("upkeep-guard", &["--root", root, "check", "--record"])
            .status
            .code(),
        Some(0)
    );
    let guard = bin("upkeep-guard").display().to_string();
    let env = [("UPKEEP_GUARD", guard.as_str())];
    let run = |args: &[&str]| {
        let o = Command::new("dpkg")
            .arg(format!("--root={root}"))
            .args([
                "--force-script-chrootless",
                &format!("--log={root}/var/log/dpkg.log"),
            ])
            .args(args)
            .envs(env)
            .env("DPKG_ROOT", "")
            .output()
            .expect("dpkg");
        assert!(o.status.success(), "{}", stderr(&o));
        format!("{}{}", stdout(&o), stderr(&o))
    };
    run(&["-i", hook_package(work.path()).to_str().expect("utf8")]);
    let out = run(&[
        "-i",
        gitlab_deb(work.path(), "gitlab-ee", "18.11.2-ee.0", &[])
            .to_str()
            .expect("utf8"),
    ]);
    assert!(
        out.contains("Processing triggers for upkeep-hooks"),
        "{out}"
    );
    assert!(
        out.contains(
            "REVERTED: /opt/gitlab/embedded/bin/mattermost (mattermost) was Enterprise Edition"
        ) && out.contains("by the upgrade of gitlab-ee from 18.11.1-ee.0 to 18.11.2-ee.0"),
        "{out}"
    );
    let log = std::fs::read_to_string(r.path("var/log/upkeep/upkeep.log")).expect("log");
    assert!(log.contains("REVERTED"), "{log}");
    // Recorded: the next trigger has nothing new to say.
    let out = run(&[
        "-i",
        gitlab_deb(work.path(), "gitlab-ee", "18.11.3-ee.0", &[])
            .to_str()
            .expect("utf8"),
    ]);
    assert!(!out.contains("REVERTED"), "{out}");
    // But every check reports it, in text and JSON, until acknowledged.
    for _ in 0..2 {
        let o = upkeep("upkeep-guard", &["--root", root, "check"]);
        assert!(
            stdout(&o).contains(
                "REVERTED: /opt/gitlab/embedded/bin/mattermost (mattermost) was Enterprise Edition"
            ),
            "{}",
            stdout(&o)
        );
        let o = upkeep(
            "upkeep-guard",
            &["--root", root, "check", "--format", "json"],
        );
        assert_eq!(
            json(&o)["reverts"].as_array().map(Vec::len),
            Some(1),
            "{}",
            stdout(&o)
        );
    }
    let o = upkeep("upkeep-guard", &["--root", root, "check", "--strict"]);
    assert_eq!(o.status.code(), Some(4));
    // The apt hook, before the next upgrade of the package, and detect.
    let o = hook(
        &r,
        "VERSION 3\n\ngitlab-ee 18.11.3-ee.0 all none < 18.11.4-ee.0 all none /x.deb\n",
        &[],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("warning: REVERTED: /opt/gitlab/embedded/bin/mattermost (mattermost) was Enterprise Edition"), "{}", stderr(&o));
    let o = upkeep("upkeep-detect", &["--root", root]);
    assert!(
        stdout(&o).contains("REVERTED: /opt/gitlab/embedded/bin/mattermost"),
        "{}",
        stdout(&o)
    );
    let o = upkeep("upkeep-detect", &["--root", root, "--format", "json"]);
    let j = json(&o);
    assert_eq!(j["reverts"][0]["was"], "enterprise", "{j}");
    assert_eq!(j["reverts"][0]["now"], "team", "{j}");
    // Converted back: no longer reported; reverted again: reported again.
    r.write(BIN, mattermost_binary(true), 0o755);
    let o = upkeep(
        "upkeep-guard",
        &["--root", root, "check", "--format", "json"],
    );
    assert_eq!(json(&o)["reverts"], serde_json::json!([]), "{}", stdout(&o));
    r.write(BIN, mattermost_binary(false), 0o755);
    let o = upkeep(
        "upkeep-guard",
        &["--root", root, "check", "--format", "json"],
    );
    assert_eq!(json(&o)["reverts"].as_array().map(Vec::len), Some(1));
    let o = upkeep("upkeep-guard", &["--root", root, "ack", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "Acknowledged 1 revert(s) of mattermost: they are no longer reported.\n"
    );
    let o = upkeep(
        "upkeep-guard",
        &["--root", root, "check", "--format", "json"],
    );
    assert_eq!(
        json(&o)["reverts"].as_array().map(Vec::len),
        Some(0),
        "{}",
        stdout(&o)
    );
    let o = upkeep("upkeep-guard", &["--root", root, "ack", "mattermost"]);
    assert_eq!(
        stdout(&o),
        "There is no reported revert of mattermost to acknowledge.\n"
    );
    let o = upkeep("upkeep-detect", &["--root", root, "--format", "json"]);
    assert_eq!(json(&o)["reverts"], serde_json::json!([]));
}

/// Copies the test binary and the shared libraries it needs into the root,
/// so rpm's chrooted scriptlets can run /usr/bin/upkeep-guard.
fn install_guard_in_root(r: &TestRoot) {
    let b = bin("upkeep-guard");
    r.write(
        "/usr/bin/upkeep-guard",
        std::fs::read(&b).expect("bin"),
        0o755,
    );
    let ldd = Command::new("ldd").arg(&b).output().expect("ldd");
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
}

#[test]
fn an_rpm_trigger_reports_the_revert_after_the_upgrade() {
    let work = tempfile::tempdir().expect("tmp");
    let r = TestRoot::new();
    r.init_rpm();
    install_guard_in_root(&r);
    let root = r.root().to_str().expect("utf8");
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
    let scriptlets =
        std::fs::read_to_string(repo("hooks/rpm/upkeep-guard.triggers")).expect("rpm triggers");
    let hooks = build_rpm(
        work.path(),
        "upkeep-hooks",
        "1.0",
        "1",
        &[file("/usr/share/doc/upkeep-hooks/README", "x", 0o644)],
        &scriptlets,
    );
    r.rpm(&["-i", "--nodeps", v1.to_str().expect("utf8")]);
    r.write(BIN, mattermost_binary(true), 0o755);
    assert_eq!(
        upkeep("upkeep-guard", &["--root", root, "check", "--record"])
            .status
            .code(),
        Some(0)
    );
    r.rpm(&["-i", "--nodeps", hooks.to_str().expect("utf8")]);
    let o = r.rpm(&["-U", "--nodeps", v2.to_str().expect("utf8")]);
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        out.contains(
            "REVERTED: /opt/gitlab/embedded/bin/mattermost (mattermost) was Enterprise Edition"
        ),
        "{out}"
    );
    let log = std::fs::read_to_string(r.path("var/log/upkeep/upkeep.log"))
        .expect("log written inside the chroot");
    assert!(log.contains("REVERTED"), "{log}");
}

#[test]
fn upkeep_reconfigure_checks_before_and_reports_a_revert_after() {
    let work = tempfile::tempdir().expect("tmp");
    let r = TestRoot::new();
    let root = r.root().to_str().expect("utf8");
    r.dpkg(&[
        "-i",
        gitlab_deb(work.path(), "gitlab-ee", "18.11.1-ee.0", &[])
            .to_str()
            .expect("utf8"),
    ]);
    r.write(BIN, mattermost_binary(true), 0o755);
    r.write("/etc/gitlab/gitlab.rb", "external_url 'https://g'\n", 0o600);
    r.write(
        "/opt/gitlab/bin/gitlab-ctl",
        std::fs::read(repo("tests/support/gitlab-ctl-standin")).expect("standin"),
        0o755,
    );
    r.install_busybox();
    r.install_ruby();
    // Inside the root: the stand-in runs there (chroot).
    r.write("/tmp/team-binary", mattermost_binary(false), 0o755);
    let o = upkeep_env(
        "upkeep-reconfigure",
        &["--root", root],
        &[("STANDIN_REVERT_WITH", "/tmp/team-binary")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning: a reconfigure may revert /opt/gitlab/embedded/bin/mattermost"),
        "{err}"
    );
    assert!(
        err.contains(
            "REVERTED: /opt/gitlab/embedded/bin/mattermost (mattermost) was Enterprise Edition"
        ),
        "{err}"
    );
    assert!(position(&err, "may revert") < position(&err, "REVERTED"));
}

#[test]
fn the_gitlab_ctl_command_file_registers_upkeep_check() {
    // STAND-IN for omnibus-ctl (a Ruby gem not in Debian): just enough to load
    // a command file the way it does and run the command it registers.
    let harness = r#"
      $registered = {}
      def add_command_under_category(name, category, desc, arity, &block)
        raise "arity must be 2" unless arity == 2
        $registered[name] = [category, desc, block]
      end
      def exec(*argv); puts argv.inspect; end
      load ARGV[0]
      cat, desc, block = $registered.fetch('upkeep-check')
      puts cat, desc
      block.call('upkeep-check', '--strict')
    "#;
    let o = Command::new("ruby")
        .args(["-e", harness])
        .arg(repo("hooks/omnibus-ctl/upkeep.rb"))
        .output()
        .expect("ruby");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("upkeep\n") && out.contains("upkeep-guard check"),
        "{out}"
    );
    assert!(
        out.contains(r#"["/usr/bin/upkeep-guard", "check", "--strict"]"#),
        "{out}"
    );
}
