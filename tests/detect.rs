//! upkeep-detect against real dpkg and rpm databases on throwaway roots.

#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
use common::*;
use std::process::{Command, Stdio};

const BIN: &str = MM_BIN;

fn detect_json(r: &TestRoot, extra: &[&str]) -> serde_json::Value {
    let root = r.root().to_str().expect("utf8");
    let mut args = vec!["--root", root, "--format", "json"];
    args.extend_from_slice(extra);
    let o = upkeep("upkeep-detect", &args);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    json(&o)
}

fn only_install(v: &serde_json::Value) -> &serde_json::Value {
    let installs = v["installs"].as_array().expect("installs");
    assert_eq!(installs.len(), 1, "{v:#}");
    &installs[0]
}

#[test]
fn dpkg_installed_gitlab_is_named_as_manager_and_replacement_is_noticed() {
    let r = Omnibus::new("18.11.1+ee.0").dpkg_installed("gitlab-ee", "18.11.1-ee.0");

    let v = detect_json(&r, &["mattermost"]);
    let i = only_install(&v);
    assert_eq!(i["product"], "mattermost");
    assert_eq!(i["kind"], "gitlab-omnibus");
    assert_eq!(i["version"], "10.11.4");
    assert_eq!(i["edition"], "team");
    assert_eq!(i["manager"]["type"], "dpkg");
    assert_eq!(i["manager"]["package"], "gitlab-ee");
    assert_eq!(i["manager"]["version"], "18.11.1-ee.0");
    assert_eq!(i["modified_from_package"], false);
    assert_eq!(i["binary"]["path"], BIN);
    assert_eq!(i["binary"]["owner"], "root");
    assert_eq!(i["binary"]["mode"], "0755");
    assert_eq!(i["host"]["product"], "gitlab");
    assert_eq!(i["host"]["version"], "18.11.1+ee.0");
    assert_eq!(i["embedded_enabled"], false, "no runit link yet");

    // The in-place conversion replaces the binary with an Enterprise build.
    r.write(BIN, mattermost_binary(true), 0o755);
    std::os::unix::fs::symlink(
        "/opt/gitlab/sv/mattermost",
        r.path("opt/gitlab/service/mattermost"),
    )
    .unwrap_or_else(|_| {
        std::fs::create_dir_all(r.path("opt/gitlab/service")).expect("mkdir");
        std::os::unix::fs::symlink(
            "/opt/gitlab/sv/mattermost",
            r.path("opt/gitlab/service/mattermost"),
        )
        .expect("link");
    });
    let v = detect_json(&r, &[]);
    let i = only_install(&v);
    assert_eq!(i["edition"], "enterprise");
    assert_eq!(i["modified_from_package"], true);
    assert_eq!(i["embedded_enabled"], true);

    // Text report says the same for people.
    let o = upkeep(
        "upkeep-detect",
        &["--root", r.root().to_str().expect("utf8")],
    );
    let t = stdout(&o);
    assert!(
        t.contains("Enterprise Edition") && t.contains("MODIFIED") && t.contains("gitlab-ee"),
        "{t}"
    );
}

#[test]
fn multiarch_list_names_are_found() {
    let r = TestRoot::new();
    r.write(BIN, mattermost_binary(false), 0o755);
    std::fs::write(
        r.path("var/lib/dpkg/status"),
        "Package: gitlab-ee\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nVersion: 18.11.1-ee.0\n",
    )
    .expect("status");
    std::fs::write(
        r.path("var/lib/dpkg/info/gitlab-ee:amd64.list"),
        format!("/opt\n{BIN}\n"),
    )
    .expect("list");
    let v = detect_json(&r, &[]);
    assert_eq!(only_install(&v)["manager"]["package"], "gitlab-ee");
    assert_eq!(
        only_install(&v)["modified_from_package"],
        serde_json::Value::Null,
        "no md5sums recorded"
    );
}

#[test]
fn rpm_installed_gitlab_is_named_as_manager_and_replacement_is_noticed() {
    let r = TestRoot::new();
    r.init_rpm();
    let work = tempfile::tempdir().expect("tmp");
    let rpm = build_rpm(
        work.path(),
        "gitlab-ce",
        "18.11.1",
        "ce.0",
        &gitlab_package_files("18.11.1+ee.0", false),
        "",
    );
    r.rpm(&["-i", "--nodeps", rpm.to_str().expect("utf8")]);

    let v = detect_json(&r, &["mattermost"]);
    let i = only_install(&v);
    assert_eq!(i["kind"], "gitlab-omnibus");
    assert_eq!(i["manager"]["type"], "rpm");
    assert_eq!(i["manager"]["package"], "gitlab-ce");
    assert_eq!(i["manager"]["version"], "18.11.1-ce.0");
    assert_eq!(i["modified_from_package"], false);
    assert_eq!(i["edition"], "team");

    r.write(BIN, mattermost_binary(true), 0o755);
    let v = detect_json(&r, &[]);
    let i = only_install(&v);
    assert_eq!(i["modified_from_package"], true);
    assert_eq!(i["edition"], "enterprise");
}

#[test]
fn standalone_kind_follows_the_package_database() {
    // Mattermost's own .deb installs to /opt/mattermost, like the tarball.
    let r = TestRoot::new();
    let work = tempfile::tempdir().expect("tmp");
    let deb = build_deb(
        work.path(),
        "mattermost",
        "10.11.4-0",
        &[file(
            "/opt/mattermost/bin/mattermost",
            mattermost_binary(true),
            0o755,
        )],
        &[],
    );
    r.dpkg(&["-i", deb.to_str().expect("utf8")]);
    let v = detect_json(&r, &[]);
    let i = only_install(&v);
    assert_eq!(i["kind"], "deb");
    assert_eq!(i["manager"]["package"], "mattermost");
    assert_eq!(
        i["version"], "10.11.4",
        "upstream part of the package version"
    );
    assert_eq!(i["edition"], "enterprise");

    r.dpkg(&["--purge", "mattermost"]);
    r.write(
        "/opt/mattermost/bin/mattermost",
        mattermost_binary(false),
        0o755,
    );
    let v = detect_json(&r, &[]);
    let i = only_install(&v);
    assert_eq!(i["kind"], "tarball");
    assert_eq!(i["manager"]["type"], "tarball");
    assert_eq!(i["manager"]["package"], serde_json::Value::Null);
    assert_eq!(i["edition"], "team");
}

#[test]
fn owner_lookup_agrees_with_dpkg_s() {
    let r = TestRoot::new();
    let work = tempfile::tempdir().expect("tmp");
    for (name, path) in [
        ("alpha", "/usr/share/alpha/a.txt"),
        ("beta", "/usr/share/beta/b.txt"),
        ("gitlab-ee", BIN),
    ] {
        let deb = build_deb(work.path(), name, "1.0-1", &[file(path, name, 0o644)], &[]);
        r.dpkg(&["-i", deb.to_str().expect("utf8")]);
    }
    let root = r.root().to_str().expect("utf8");
    for path in [
        "/usr/share/beta/b.txt",
        BIN,
        "/usr/share/alpha/a.txt",
        "/usr/share",
    ] {
        let dpkg = Command::new("dpkg")
            .arg(format!("--root={root}"))
            .args(["-S", path])
            .output()
            .expect("dpkg -S");
        let theirs: Vec<String> = {
            let s = String::from_utf8_lossy(&dpkg.stdout);
            let names = s.split(": ").next().unwrap_or_default().to_string();
            let mut v: Vec<String> = names.split(", ").map(str::to_string).collect();
            v.sort();
            v
        };
        let o = upkeep(
            "upkeep-detect",
            &["--root", root, "--owner", path, "--format", "json"],
        );
        let v = json(&o);
        let mut ours: Vec<String> = v["owners"]
            .as_array()
            .expect("owners")
            .iter()
            .map(|o| o["package"].as_str().expect("str").to_string())
            .collect();
        ours.sort();
        assert_eq!(ours, theirs, "owners of {path}");
    }
    let o = upkeep("upkeep-detect", &["--root", root, "--owner", "/nowhere"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("not owned by any package"));
}

#[test]
fn every_example_root_is_detected() {
    let ex = examples_dir();
    let run = |name: &str| {
        let o = upkeep(
            "upkeep-detect",
            &[
                "--root",
                ex.join(name).to_str().expect("utf8"),
                "--format",
                "json",
                "--allow-exec",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        json(&o)
    };
    let v = run("gitlab-omnibus");
    let i = only_install(&v);
    assert_eq!(
        (i["product"].as_str(), i["kind"].as_str()),
        (Some("mattermost"), Some("gitlab-omnibus"))
    );
    assert_eq!(i["edition"], "team");
    assert_eq!(i["manager"]["package"], "gitlab-ee");
    assert_eq!(i["modified_from_package"], false);
    assert_eq!(i["embedded_enabled"], true);
    assert_eq!(i["host"]["version"], "18.11.1+ee.0");

    let v = run("mattermost-tarball");
    let i = only_install(&v);
    assert_eq!(
        (i["kind"].as_str(), i["edition"].as_str()),
        (Some("tarball"), Some("enterprise"))
    );
    assert_eq!(
        i["version"], "10.11.4",
        "read by running the binary (--allow-exec)"
    );
    assert_eq!(
        i["binary"]["path"], "/opt/mattermost/bin/mattermost",
        "found through the versioned symlink"
    );

    let v = run("tegu");
    let i = only_install(&v);
    assert_eq!(
        (i["product"].as_str(), i["version"].as_str()),
        (Some("tegu"), Some("3.2.1045"))
    );
    assert_eq!(i["edition"], "enterprise");

    let v = run("groupmax");
    let i = only_install(&v);
    assert_eq!(
        (i["product"].as_str(), i["version"].as_str()),
        (Some("groupmax"), Some("05-00"))
    );
}

#[test]
fn unknown_layout_finds_nothing_and_succeeds() {
    let r = TestRoot::new();
    r.write("/opt/something-else/bin/app", "x", 0o755);
    let v = detect_json(&r, &[]);
    assert_eq!(v["installs"].as_array().map(Vec::len), Some(0));
    let o = upkeep(
        "upkeep-detect",
        &["--root", r.root().to_str().expect("utf8")],
    );
    assert!(stdout(&o).contains("No managed installs found"));
    // A root with no package databases and no passwd at all.
    let bare = tempfile::tempdir().expect("tmp");
    let o = upkeep(
        "upkeep-detect",
        &["--root", bare.path().to_str().expect("utf8")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn dpkg_root_environment_is_the_default_root() {
    let ex = examples_dir().join("tegu");
    let o = upkeep_env(
        "upkeep-detect",
        &["--format", "json"],
        &[("DPKG_ROOT", ex.to_str().expect("utf8"))],
    );
    assert_eq!(json(&o)["installs"][0]["product"], "tegu");
}

fn expect_bad_input(r: &TestRoot, needle: &str) {
    let o = upkeep(
        "upkeep-detect",
        &["--root", r.root().to_str().expect("utf8")],
    );
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(65), "stderr: {}", stderr(&o));
    assert!(
        stderr(&o).contains(needle),
        "wanted {needle:?} in {}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty(), "no half report: {}", stdout(&o));
}

#[test]
fn garbage_in_the_status_file_is_a_clear_error() {
    let r = TestRoot::new();
    r.write(BIN, "x", 0o755);
    std::fs::write(
        r.path("var/lib/dpkg/status"),
        "Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: b\nStatus: what\n",
    )
    .expect("w");
    expect_bad_input(&r, "var/lib/dpkg/status:6: Status 'what'");
    // Fields are parsed for the packages a lookup reaches: the owner here.
    std::fs::write(
        r.path("var/lib/dpkg/info/gitlab-ee.list"),
        format!("{BIN}\n"),
    )
    .expect("w");
    std::fs::write(
        r.path("var/lib/dpkg/status"),
        "Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: gitlab-ee\nStatus: install ok installed\nVersion: 18.11.1-\n",
    )
    .expect("w");
    expect_bad_input(
        &r,
        "var/lib/dpkg/status:5: package gitlab-ee: version '18.11.1-': revision number is empty",
    );
    std::fs::write(r.path("var/lib/dpkg/status"), b"\xff\xfe\x00garbage\n").expect("w");
    expect_bad_input(&r, "not valid UTF-8");
}

#[test]
fn garbage_in_md5sums_is_a_clear_error() {
    let r = TestRoot::new();
    r.write(BIN, "x", 0o755);
    std::fs::write(
        r.path("var/lib/dpkg/status"),
        "Package: gitlab-ee\nStatus: install ok installed\nVersion: 18.11.1-ee.0\n",
    )
    .expect("w");
    std::fs::write(
        r.path("var/lib/dpkg/info/gitlab-ee.list"),
        format!("{BIN}\n"),
    )
    .expect("w");
    std::fs::write(
        r.path("var/lib/dpkg/info/gitlab-ee.md5sums"),
        "d41d8cd98f00b204e9800998ecf8427e  opt/other\nnot a line\n",
    )
    .expect("w");
    expect_bad_input(&r, "gitlab-ee.md5sums:2:");
}

#[test]
fn malformed_local_manifest_names_file_line_and_field() {
    let r = TestRoot::new();
    r.write(
        "/etc/upkeep/plugins.d/tegu.toml",
        "schema = 1\nname = \"tegu\"\n[[install]]\nkind = \"standalone\"\nbinnary = \"/x\"\n",
        0o644,
    );
    expect_bad_input(&r, "plugins.d/tegu.toml:5:");
    let o = upkeep(
        "upkeep-detect",
        &["--root", r.root().to_str().expect("utf8")],
    );
    assert!(stderr(&o).contains("binnary"), "{}", stderr(&o));
    r.write(
        "/etc/upkeep/plugins.d/tegu.toml",
        "schema = 1\nname = [\n",
        0o644,
    );
    expect_bad_input(&r, "tegu.toml:");
}

#[test]
fn local_manifest_overrides_the_packaged_one() {
    let r = TestRoot::new();
    r.write("/srv/mm/mattermost", mattermost_binary(true), 0o750);
    r.write(
        "/etc/upkeep/plugins.d/mattermost.toml",
        "schema = 1\nname = \"mattermost\"\n[[install]]\nkind = \"standalone\"\nbinary = \"/srv/mm/mattermost\"\n\
         [[edition]]\nedition = \"enterprise\"\nbinary_contains = \"github.com/mattermost/enterprise/\"\n",
        0o644,
    );
    r.write(BIN, mattermost_binary(false), 0o755);
    let v = detect_json(&r, &["mattermost"]);
    let i = only_install(&v);
    assert_eq!(
        i["binary"]["path"], "/srv/mm/mattermost",
        "the packaged Omnibus entry is replaced"
    );
    assert_eq!(i["binary"]["mode"], "0750");
    assert_eq!(i["edition"], "enterprise");
}

#[test]
fn usage_errors_exit_2() {
    let ex = examples_dir().join("gitlab-omnibus");
    let o = upkeep(
        "upkeep-detect",
        &["--root", ex.to_str().expect("utf8"), "no-such-product"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown product"));
    // A root that is not there is a usage error naming it, not "nothing found".
    let o = upkeep("upkeep-detect", &["--root", "/nonexistent-upkeep-root"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/nonexistent-upkeep-root"),
        "{}",
        stderr(&o)
    );
    let o = upkeep("upkeep-detect", &["--bogus-flag"]);
    assert_eq!(o.status.code(), Some(2));
    let o = upkeep("upkeep-detect", &["--format", "yaml"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn closed_stdout_is_not_a_panic() {
    let ex = examples_dir().join("gitlab-omnibus");
    let mut child = Command::new(bin("upkeep-detect"))
        .args(["--root", ex.to_str().expect("utf8"), "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take()); // the reader goes away, like `| head -0`
    let o = child.wait_with_output().expect("wait");
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn version_files_that_are_garbage_are_warnings_not_failures() {
    let r = TestRoot::new();
    r.write(BIN, mattermost_binary(false), 0o755);
    r.write("/opt/gitlab/version-manifest.json", "{ not json", 0o644);
    r.write(
        "/opt/gitlab/version-manifest.txt",
        "gitlab-ce 18.10.3\n",
        0o644,
    );
    let v = detect_json(&r, &[]);
    assert_eq!(
        only_install(&v)["host"]["version"],
        "18.10.3",
        "falls back to the .txt manifest"
    );
    let w = v["warnings"].to_string();
    assert!(w.contains("version-manifest.json:1"), "{w}");
}

#[test]
fn running_the_binary_tells_the_edition_only_when_allowed_and_is_killed_on_timeout() {
    let r = TestRoot::new();
    // Says Team when run, though its bytes carry the Enterprise marker.
    r.write(
        "/opt/mattermost/bin/mattermost",
        format!("#!/bin/sh\n# {ENTERPRISE_MARKER}\necho 'Version: 10.11.4'\necho 'Build Enterprise Ready: false'\n"),
        0o755,
    );
    let v = detect_json(&r, &[]);
    assert_eq!(
        only_install(&v)["edition"],
        "enterprise",
        "without --allow-exec: the bytes"
    );
    assert_eq!(
        only_install(&v)["version"],
        serde_json::Value::Null,
        "never run without --allow-exec"
    );
    let v = detect_json(&r, &["--allow-exec"]);
    assert_eq!(
        only_install(&v)["edition"],
        "team",
        "`mattermost version` decides when allowed"
    );
    assert_eq!(only_install(&v)["version"], "10.11.4");

    // A binary that hangs is killed after the manifest's timeout.
    r.write("/opt/hang/bin/app", "#!/bin/sh\nsleep 30\n", 0o755);
    r.write(
        "/etc/upkeep/plugins.d/hang.toml",
        "schema = 1\nname = \"hang\"\n[[install]]\nkind = \"standalone\"\nbinary = \"/opt/hang/bin/app\"\n\
         version = [{ exec = [\"{binary}\", \"--version\"], timeout_ms = 300 }]\n",
        0o644,
    );
    let started = std::time::Instant::now();
    let v = detect_json(&r, &["hang", "--allow-exec"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "killed, not waited for"
    );
    assert_eq!(only_install(&v)["version"], serde_json::Value::Null);
    assert!(
        v["warnings"]
            .to_string()
            .contains("no answer within 300 ms"),
        "{v:#}"
    );
}
