//! Version ordering checked against the real tools on tricky pairs: dpkg's
//! `--compare-versions` and rpm's own `rpm.vercmp` (through rpm's Lua).
//! Never one comparison for both: they disagree, and each must match its own.

#![allow(clippy::disallowed_methods)] // tests build their roots by path

use std::cmp::Ordering;
use std::process::Command;
use upkeep_pkg::version::{compare_deb, compare_rpm};

const PAIRS: &[(&str, &str)] = &[
    ("2.30-ubuntu1", "2.30-1"),
    ("1.0~rc1", "1.0"),
    ("1.0", "1.0+b1"),
    ("1:0.1", "9.9"),
    ("18.11.1-ee.0", "18.11.10-ee.0"),
    ("19.0.0-ee.0", "18.11.11-ee.0"),
    ("1.0a", "1.0"),
    ("1.0.a", "1.0.1"),
    ("10.5.2", "10.5.2"),
    ("1.0-1~bpo12+1", "1.0-1"),
    ("3.2.1045", "3.2.999"),
    ("2.0", "2.0.0"),
];

fn dpkg(a: &str, b: &str) -> Ordering {
    let holds = |op: &str| {
        Command::new("dpkg")
            .args(["--compare-versions", a, op, b])
            .status()
            .expect("dpkg")
            .success()
    };
    if holds("lt") {
        Ordering::Less
    } else if holds("eq") {
        Ordering::Equal
    } else {
        Ordering::Greater
    }
}

fn rpm(a: &str, b: &str) -> Ordering {
    let o = Command::new("rpm")
        .args([
            "--eval",
            &format!("%{{lua: print(rpm.vercmp(\"{a}\", \"{b}\"))}}"),
        ])
        .output()
        .expect("rpm");
    match String::from_utf8_lossy(&o.stdout).trim() {
        "-1" => Ordering::Less,
        "0" => Ordering::Equal,
        "1" => Ordering::Greater,
        other => panic!("rpm.vercmp({a}, {b}) said {other:?}"),
    }
}

#[test]
fn deb_ordering_agrees_with_dpkg() {
    for (a, b) in PAIRS {
        assert_eq!(compare_deb(a, b), Some(dpkg(a, b)), "{a} vs {b}");
    }
}

#[test]
fn rpm_ordering_agrees_with_rpm() {
    let mut disagreements = 0;
    for (a, b) in PAIRS {
        assert_eq!(compare_rpm(a, b), rpm(a, b), "{a} vs {b}");
        if Some(rpm(a, b)) != compare_deb(a, b) {
            disagreements += 1;
        }
    }
    assert!(
        disagreements > 0,
        "the two orders differ on some pair (2.30-ubuntu1 vs 2.30-1)"
    );
}
