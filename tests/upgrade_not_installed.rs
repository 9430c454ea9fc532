//! One meaning for "not installed": a command asked to act on a product
//! that is not installed under the root fails its precondition (exit 1,
//! "PRODUCT is not installed under ROOT"), never a policy refusal (3) nor
//! malformed input (65). Where doing nothing is the documented outcome
//! (`recover` with nothing to recover: silent; `resume` with no
//! version-up under way; a package's maintainer scripts, which must not
//! fail dpkg or rpm over a tree the package has not unpacked yet) it is
//! 0. Every subcommand, on an empty root, with well-formed archives.
#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn tarball(path: &Path, top: &str, files: &[(&str, Vec<u8>)]) {
    let f = std::fs::File::create(path).expect("create");
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        f,
        flate2::Compression::fast(),
    ));
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, format!("{top}/{name}"), &data[..])
            .expect("append");
    }
    b.into_inner().expect("tar").finish().expect("gz");
}

fn archives(dir: &Path) -> (PathBuf, PathBuf) {
    let mm = dir.join("mattermost-10.5.1-linux-amd64.tar.gz");
    tarball(
        &mm,
        "mattermost",
        &[
            ("VERSION", b"10.5.1\n".to_vec()),
            ("bin/mattermost", mattermost_binary(false)),
        ],
    );
    let tegu = dir.join("tegu-ent-v3.2.0-x86_64.tar.gz");
    let mut elf = elf_header(EM_X86_64);
    elf.resize(64, 0);
    tarball(
        &tegu,
        "tegu-ent-v3.2.0-x86_64",
        &[
            ("VERSION", b"3.2.0\n".to_vec()),
            ("bin/tegu-admin", b"#!/bin/sh\n".to_vec()),
            ("sbin/tegu", elf),
        ],
    );
    (mm, tegu)
}

#[test]
fn every_subcommand_on_an_empty_root_says_not_installed_with_one_exit_code() {
    let r = TestRoot::new();
    let root = r.root().to_str().expect("utf8").to_string();
    let work = tempfile::tempdir().expect("tmp");
    let (mm, tegu) = archives(work.path());
    let (mm, tegu) = (mm.to_str().unwrap(), tegu.to_str().unwrap());
    let not_installed = |p: &str| format!("{p} is not installed under {root}");
    // (arguments, exit code, what stderr must say; "" = silent)
    let table: Vec<(Vec<&str>, i32, String)> = vec![
        (
            vec!["plan", "mattermost", mm],
            1,
            not_installed("mattermost"),
        ),
        (
            vec!["apply", "mattermost", mm],
            1,
            not_installed("mattermost"),
        ),
        (
            vec!["apply", "mattermost", mm, "--dry-run"],
            1,
            not_installed("mattermost"),
        ),
        (
            vec!["rollback", "mattermost"],
            1,
            not_installed("mattermost"),
        ),
        (vec!["backup", "mattermost"], 1, not_installed("mattermost")),
        (
            vec!["backups", "mattermost"],
            1,
            not_installed("mattermost"),
        ),
        (vec!["plan", "tegu", tegu], 1, not_installed("tegu")),
        (vec!["apply", "tegu", tegu], 1, not_installed("tegu")),
        (
            vec!["apply", "tegu", tegu, "--dry-run"],
            1,
            not_installed("tegu"),
        ),
        (vec!["rollback", "tegu"], 1, not_installed("tegu")),
        (vec!["plan", "groupmax"], 1, not_installed("groupmax")),
        (vec!["apply", "groupmax"], 1, not_installed("groupmax")),
        (vec!["backups", "groupmax"], 1, not_installed("groupmax")),
        (vec!["recover", "mattermost"], 0, String::new()),
        (vec!["recover", "tegu"], 0, String::new()),
        (vec!["recover", "groupmax"], 0, String::new()),
        (vec!["recover"], 0, String::new()),
    ];
    let mut wrong = Vec::new();
    for (args, code, says) in &table {
        let mut all = vec!["--root", root.as_str()];
        all.extend_from_slice(args);
        let o = upkeep("upkeep-upgrade", &all);
        assert_no_panic(&o);
        let e = stderr(&o);
        let ok_text = if says.is_empty() {
            e.is_empty() && o.stdout.is_empty()
        } else {
            e.contains(says.as_str())
        };
        if o.status.code() != Some(*code) || !ok_text {
            wrong.push(format!(
                "{args:?}: exit {:?}, want {code}: {e}",
                o.status.code()
            ));
        }
    }
    // A product's maintainer scripts: nothing there yet is nothing to do.
    for product in ["mattermost", "tegu", "groupmax"] {
        for (script, args) in [
            ("preinst", &["upgrade", "1.0", "2.0"][..]),
            ("prerm", &["upgrade", "2.0"][..]),
            ("postinst", &["configure", "1.0"][..]),
            ("preinst", &["abort-upgrade", "1.0"][..]),
        ] {
            let mut all = vec!["--root", root.as_str(), product, "--"];
            all.extend_from_slice(args);
            let o = upkeep_env(
                "upkeep-maintscript",
                &all,
                &[("DPKG_MAINTSCRIPT_NAME", script)],
            );
            assert_no_panic(&o);
            if o.status.code() != Some(0) {
                wrong.push(format!(
                    "maintscript {product} {script} {args:?}: {}",
                    stderr(&o)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    assert!(
        !r.path("opt").exists() && !r.path("var/lib/upkeep/backups").exists(),
        "nothing was made"
    );
}
