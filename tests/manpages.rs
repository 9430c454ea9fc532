//! The man pages in man/ and the shell completions in completions/ are
//! generated from the clap definitions and each binary's manual, so they
//! never drift from `--help`. This test fails when they do; regenerate with
//! `UPKEEP_BLESS=1 cargo test --test manpages`.

#![allow(clippy::disallowed_methods)] // tests build their roots by path

use std::path::Path;
use upkeep_docgen::Binary;

fn binaries() -> Vec<Binary> {
    vec![
        Binary {
            app: upkeep_detect::uu_app(),
            manual: upkeep_detect::MANUAL,
        },
        Binary {
            app: upkeep_lease::uu_app(),
            manual: upkeep_lease::MANUAL,
        },
        Binary {
            app: upkeep_embedded::uu_app(),
            manual: upkeep_embedded::MANUAL,
        },
        Binary {
            app: upkeep_reconfigure::uu_app(),
            manual: upkeep_reconfigure::MANUAL,
        },
        Binary {
            app: upkeep_guard::uu_app(),
            manual: upkeep_guard::MANUAL,
        },
        Binary {
            app: upkeep_upgrade::uu_app(),
            manual: upkeep_upgrade::MANUAL,
        },
    ]
}

/// Writes (bless) or compares every generated file under `dir`; a file on
/// disk that nothing generates is stale too.
fn check(dir: &Path, files: Vec<(String, String)>) {
    let bless = std::env::var_os("UPKEEP_BLESS").is_some();
    for (name, text) in &files {
        let path = dir.join(name);
        if bless {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, text).expect("write");
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            &on_disk == text,
            "{} is stale: run UPKEEP_BLESS=1 cargo test --test manpages",
            path.display()
        );
    }
}

#[test]
fn man_pages_match_the_clap_definitions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let pages = upkeep_docgen::man_pages(binaries(), env!("CARGO_PKG_VERSION"));
    for (name, page) in &pages {
        for section in [
            "SYNOPSIS",
            "GLOBAL OPTIONS",
            "EXIT STATUS",
            "ENVIRONMENT",
            "FILES",
        ] {
            assert!(
                page.contains(&format!(".SH {section}")),
                "{name}: no {section}"
            );
        }
        assert!(
            page.contains("\\fB\\-\\-root\\fR \\fIDIR\\fR"),
            "{name}: --root DIR"
        );
        assert!(page.contains(".B 0\n"), "{name}: exit 0 documented");
    }
    let grant = &pages
        .iter()
        .find(|(n, _)| n == "upkeep-lease-grant.8")
        .expect("grant page")
        .1;
    assert!(grant.contains(".B upkeep\\-lease grant\n"), "real synopsis");
    assert!(
        grant.contains("[\\fB\\-\\-to\\fR \\fIUSER[:GROUP]\\fR]"),
        "option arguments shown"
    );
    assert!(
        grant.contains("\\fB\\-\\-wait\\fR \\fISECONDS\\fR"),
        "globals on subcommand pages"
    );
    let lease = &pages
        .iter()
        .find(|(n, _)| n == "upkeep-lease.8")
        .expect("page")
        .1;
    assert!(lease.contains(".SH NOTES\n.nf\n"), "notes preformatted");
    // Each binary lists only the codes it can return.
    let detect = &pages
        .iter()
        .find(|(n, _)| n == "upkeep-detect.8")
        .expect("page")
        .1;
    assert!(
        !detect.contains(".B 75\n") && !detect.contains(".B 3\n"),
        "{detect}"
    );
    check(&dir, pages);
}

#[test]
fn completions_match_the_clap_definitions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    let files = upkeep_docgen::completions(binaries());
    let bash = &files
        .iter()
        .find(|(n, _)| n == "bash/upkeep-lease")
        .expect("bash")
        .1;
    assert!(bash.contains("--root") && bash.contains("grant"), "{bash}");
    assert_eq!(files.len(), 18, "bash, zsh and fish for six binaries");
    check(&dir, files);
}
