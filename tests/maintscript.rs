//! Every call the real dpkg makes to a package's maintainer scripts, in
//! install, upgrade, a failed upgrade, downgrade, remove and purge, parses
//! to a step (checked against dpkg itself, not against a list we wrote).

#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
use common::*;
use std::process::Command;
use upkeep_pkg::maintscript::{parse_deb, Script, Step};

/// Each script logs `NAME ARGS...` (from DPKG_MAINTSCRIPT_NAME) into the
/// root; `fail_postinst` makes the new postinst fail on configure.
fn logging_deb(work: &std::path::Path, version: &str, fail_postinst: bool) -> std::path::PathBuf {
    let log = "printf '%s' \"$DPKG_MAINTSCRIPT_NAME\" >> \"$DPKG_ROOT/calls\"; for a in \"$@\"; do printf ' %s' \"$a\" >> \"$DPKG_ROOT/calls\"; done; echo >> \"$DPKG_ROOT/calls\"\n";
    let script = |extra: &str| format!("#!/bin/sh\n{log}{extra}exit 0\n");
    let postinst = if fail_postinst {
        script("[ \"$1\" = configure ] && exit 1\n")
    } else {
        script("")
    };
    build_deb(
        work,
        "probe",
        version,
        &[file("/opt/probe/VERSION", version, 0o644)],
        &[
            ("preinst", &script("")),
            ("postinst", &postinst),
            ("prerm", &script("")),
            ("postrm", &script("")),
        ],
    )
}

fn dpkg_raw(r: &TestRoot, args: &[&str]) -> bool {
    let root = r.root().display().to_string();
    Command::new("dpkg")
        .arg(format!("--root={root}"))
        .args([
            "--force-script-chrootless",
            "--force-not-root",
            "--force-downgrade",
        ])
        .arg(format!("--log={root}/var/log/dpkg.log"))
        .args(args)
        .env("DPKG_ROOT", "")
        .output()
        .expect("dpkg")
        .status
        .success()
}

#[test]
fn every_call_real_dpkg_makes_parses_to_a_step() {
    let r = TestRoot::new();
    let work = tempfile::tempdir().expect("tmp");
    let v1 = logging_deb(work.path(), "1.0", false);
    let v2 = logging_deb(work.path(), "2.0", false);
    let v3 = logging_deb(work.path(), "3.0", true);
    let s = |p: &std::path::Path| p.to_str().expect("utf8").to_string();
    assert!(dpkg_raw(&r, &["-i", &s(&v1)]));
    assert!(dpkg_raw(&r, &["-i", &s(&v2)]));
    assert!(dpkg_raw(&r, &["-i", &s(&v1)]), "downgrade");
    assert!(!dpkg_raw(&r, &["-i", &s(&v3)]), "a failing postinst fails");
    assert!(dpkg_raw(&r, &["--purge", "probe"]));
    let calls = std::fs::read_to_string(r.path("calls")).expect("calls");
    let mut steps = Vec::new();
    for line in calls.lines() {
        let mut words = line.split(' ').map(str::to_string);
        let script = Script::parse(&words.next().expect("name")).expect(line);
        let args: Vec<String> = words.collect();
        let step = parse_deb(script, &args).unwrap_or_else(|e| panic!("{line}: {e}"));
        steps.push((line.to_string(), step));
    }
    let has = |want: &Step| steps.iter().any(|(_, s)| s == want);
    assert!(has(&Step::PreInstall { old: None }), "{calls}");
    assert!(has(&Step::PreUpgrade {
        old: Some("1.0".into()),
        new: Some("2.0".into())
    }));
    assert!(
        has(&Step::PreUpgrade {
            old: Some("2.0".into()),
            new: Some("1.0".into())
        }),
        "a downgrade is an upgrade call to dpkg: {calls}"
    );
    assert!(has(&Step::PreRemoveForUpgrade {
        new: Some("2.0".into())
    }));
    assert!(has(&Step::Configure {
        old: Some("1.0".into())
    }));
    assert!(has(&Step::Remove) && has(&Step::Purge));
    assert!(steps.len() >= 15, "{calls}");
}
