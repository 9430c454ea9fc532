//! `upkeep-maintscript tegu --scriptlet pre -- "$1"` as an rpm `%pre`
//! calls it: rpm passes only the instance count, so the version being
//! replaced is read from the root's real rpm database (made with the real
//! rpmbuild and rpm on a throwaway root).

#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
use common::*;
use std::process::Output;

/// A root whose rpm database holds tegu 3.2.0-1 (installed without
/// scripts: only the database and the files matter here).
fn rpm_root_with_tegu(work: &std::path::Path) -> TestRoot {
    let r = TestRoot::new();
    r.init_rpm();
    let pkg = build_rpm(
        work,
        "tegu",
        "3.2.0",
        "1",
        &[file("/opt/tegu/VERSION", "3.2.0\n", 0o644)],
        "",
    );
    r.rpm(&["-i", "--nodeps", "--noscripts", pkg.to_str().expect("utf8")]);
    r
}

fn pre(r: &TestRoot, new_version: &str) -> Output {
    let root = r.root().to_str().expect("utf8");
    let out = upkeep(
        "upkeep-maintscript",
        &[
            "--root",
            root,
            "tegu",
            "--scriptlet",
            "pre",
            "--new-version",
            new_version,
            "--",
            "2",
        ],
    );
    assert_no_panic(&out);
    out
}

#[test]
fn rpm_pre_reads_the_installed_version_and_refuses_a_downgrade() {
    let work = tempfile::tempdir().expect("tmp");
    let r = rpm_root_with_tegu(work.path());

    let out = pre(&r, "3.1.0-1");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("refused by policy"), "{err}");
    assert!(err.contains("from 3.2.0-1 to 3.1.0-1"), "{err}");
    assert!(err.contains("%pre"), "{err}");
    assert!(
        !r.path("var/lib/upkeep/maintscript/tegu.json").exists(),
        "policy goes before anything is written"
    );

    let out = pre(&r, "3.3.0-1");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(r.path("var/lib/upkeep/maintscript/tegu.json").exists());
}

#[test]
fn rpm_pre_refuses_an_unparseable_version_as_malformed() {
    let work = tempfile::tempdir().expect("tmp");
    let r = rpm_root_with_tegu(work.path());
    for bad in ["3.3.0 beta", "", "1:", "3.3.0-", "x:3.3.0-1", "3.3.0-1-2"] {
        let out = pre(&r, bad);
        assert_eq!(out.status.code(), Some(65), "{bad:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("version"),
            "{bad:?}: {}",
            stderr(&out)
        );
        assert!(!r.path("var/lib/upkeep/maintscript/tegu.json").exists());
    }
}

/// rpm says it is an upgrade ($1 = 2) but its database has no tegu (or
/// no rpm can read it): the policy cannot be applied, and it says so.
#[test]
fn rpm_pre_warns_when_the_replaced_version_cannot_be_read() {
    let r = TestRoot::new();
    r.init_rpm();
    let out = pre(&r, "3.1.0-1");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("could not be read from the rpm database")
            && err.contains("downgrade policy was not applied"),
        "{err}"
    );
}
