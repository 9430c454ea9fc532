//! Defects a new user met, each fixed with a test: misleading exit codes,
//! services reported that were never looked for, directory modes, and one
//! representation of file modes in JSON.

#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;

fn run(name: &str, r: &TestRoot, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--root", r.root().to_str().expect("utf8")];
    all.extend_from_slice(args);
    let o = upkeep(name, &all);
    assert_no_panic(&o);
    o
}

#[test]
fn embedded_status_without_the_host_says_not_installed_not_bad_input() {
    let r = TestRoot::new();
    let o = run("upkeep-embedded", &r, &["status", "mattermost"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no gitlab install"), "{}", stderr(&o));
}

#[test]
fn lease_of_a_missing_path_or_a_product_without_a_lease_is_no_policy_refusal() {
    let r = TestRoot::new();
    let o = run(
        "upkeep-lease",
        &r,
        &["grant", "/opt/nothing/here", "--to", "mattermost"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    // tegu's manifest declares no lease.
    let o = run("upkeep-lease", &r, &["grant", "--product", "tegu"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("declares no lease"), "{}", stderr(&o));
    // mattermost's does, but nothing is installed.
    let o = run("upkeep-lease", &r, &["grant", "--product", "mattermost"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn detect_reports_only_services_it_found() {
    let r = TestRoot::new();
    r.write("/opt/tegu/sbin/tegu", "\x7fELF", 0o755);
    r.write("/opt/tegu/VERSION", "3.1.2\n", 0o644);
    let o = run("upkeep-detect", &r, &["--format", "json", "tegu"]);
    let v = json(&o);
    let i = &v["installs"][0];
    assert_eq!(i["services"], serde_json::json!([]), "{v}");
    assert_eq!(
        i["services_missing"],
        serde_json::json!(["tegu.service"]),
        "{v}"
    );
    let o = run("upkeep-detect", &r, &["tegu"]);
    assert!(
        stdout(&o).contains("tegu.service: declared, not found"),
        "{}",
        stdout(&o)
    );
    r.write("/etc/systemd/system/tegu.service", "[Service]\n", 0o644);
    let v = json(&run("upkeep-detect", &r, &["--format", "json", "tegu"]));
    assert_eq!(
        v["installs"][0]["services"],
        serde_json::json!(["tegu.service"]),
        "{v}"
    );
}

#[test]
fn directories_made_outside_the_state_directory_are_0755() {
    let r = TestRoot::new();
    std::fs::remove_dir_all(r.path("var")).expect("rm");
    let o = run("upkeep-guard", &r, &["dpkg-trigger"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for (d, mode) in [
        ("var", 0o755),
        ("var/lib", 0o755),
        ("var/lib/upkeep", 0o700),
    ] {
        let m = std::fs::metadata(r.path(d)).expect(d).permissions().mode() & 0o777;
        assert_eq!(m, mode, "{d}: {m:o}");
    }
}

#[test]
fn json_gives_file_modes_as_octal_strings_everywhere() {
    let r = TestRoot::new();
    r.write(
        "/opt/gitlab/embedded/bin/mattermost",
        mattermost_binary(false),
        0o755,
    );
    let o = run(
        "upkeep-lease",
        &r,
        &[
            "grant",
            "/opt/gitlab/embedded/bin/mattermost",
            "--to",
            "mattermost",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["lease"]["entries"][0]["mode"], "0755", "{v}");
    let v = json(&run("upkeep-lease", &r, &["status", "--format", "json"]));
    assert_eq!(v["leases"][0]["entries"][0]["mode"], "0755", "{v}");
}
