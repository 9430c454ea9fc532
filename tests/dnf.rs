//! upkeep's dnf 4 plugin (hooks/dnf/upkeep.py, as the packages ship it),
//! loaded by Debian's real dnf working with --installroot on a throwaway
//! root against a local repository made by createrepo_c. The plugin runs
//! this build's upkeep-guard ($UPKEEP_GUARD; the packaged one is
//! /usr/bin/upkeep-guard) and vetoes a TEGU downgrade, plain or spelled as
//! a swap of packages, before rpm runs; an upgrade goes through.
//!
//! dnf's configuration is a file of the test's own (no host repositories,
//! plugin path = hooks/dnf). HOME=/ for dnf: Debian's rpm keeps its
//! database in $HOME/.rpmdb, which then lands inside the installroot.
#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn tegu_rpm(dir: &Path, name: &str, version: &str) -> std::path::PathBuf {
    build_rpm(
        dir,
        name,
        version,
        "1",
        &[file(
            "/opt/tegu/sbin/tegu",
            format!("{name} {version}\n"),
            0o755,
        )],
        "",
    )
}

struct Dnf {
    conf: std::path::PathBuf,
    root: std::path::PathBuf,
}

impl Dnf {
    fn run(&self, args: &[&str]) -> (bool, String) {
        let o = Command::new("dnf")
            .args(["-y", "--releasever", "12", "--config"])
            .arg(&self.conf)
            .arg("--installroot")
            .arg(&self.root)
            .args(args)
            .env("HOME", "/")
            .env("UPKEEP_GUARD", bin("upkeep-guard"))
            .env_remove("UPKEEP_PLUGIN_DIR")
            .env_remove("DPKG_ROOT")
            .current_dir("/")
            .output()
            .expect("dnf");
        (o.status.success(), format!("{}{}", stdout(&o), stderr(&o)))
    }

    fn installed(&self) -> String {
        let o = Command::new("rpm")
            .arg("--root")
            .arg(&self.root)
            .args(["-qa", "--qf", "%{NAME}-%{VERSION}\\n"])
            .env("HOME", "/")
            .output()
            .expect("rpm");
        let mut v: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
        v.sort();
        v.join(" ")
    }
}

#[test]
fn the_dnf_plugin_vetoes_a_tegu_downgrade_before_rpm_runs() {
    let work = tempfile::tempdir().expect("tmp");
    let r = TestRoot::new();
    let repo = work.path().join("repo");
    std::fs::create_dir(&repo).expect("mkdir");
    for (name, v) in [
        ("tegu-ent", "3.1.0"),
        ("tegu-ent", "3.2.0"),
        ("tegu-ent", "3.2.1"),
        ("tegu", "3.1.0"),
    ] {
        let p = tegu_rpm(work.path(), name, v);
        std::fs::copy(&p, repo.join(p.file_name().expect("name"))).expect("copy");
    }
    let st = Command::new("createrepo_c")
        .arg("-q")
        .arg(&repo)
        .status()
        .expect("createrepo_c");
    assert!(st.success());
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/dnf");
    let conf = work.path().join("dnf.conf");
    std::fs::write(
        &conf,
        format!(
            "[main]\ngpgcheck=0\nreposdir={none}\npluginpath={p}\npluginconfpath={p}\nplugins=1\ncachedir={cache}\ninstall_weak_deps=0\n\n[local]\nname=local\nbaseurl=file://{repo}\ngpgcheck=0\n",
            none = work.path().join("no-repos").display(),
            p = plugins.display(),
            cache = work.path().join("cache").display(),
            repo = repo.display()
        ),
    )
    .expect("conf");
    let dnf = Dnf {
        conf,
        root: r.root().to_path_buf(),
    };

    let (ok, out) = dnf.run(&["install", "tegu-ent-3.2.0"]);
    assert!(ok, "{out}");
    assert_eq!(dnf.installed(), "tegu-ent-3.2.0");

    // A plain downgrade.
    let (ok, out) = dnf.run(&["downgrade", "tegu-ent-3.1.0"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("upkeep vetoed this transaction")
            && out.contains("refusing: tegu-ent would be downgraded from 3.2.0-1 to 3.1.0-1"),
        "{out}"
    );
    assert!(!out.contains("Running scriptlet"), "rpm never ran: {out}");
    assert!(
        out.contains("Stopping dnf before rpm runs the transaction.") && !out.contains("apt"),
        "the veto names dnf, not apt: {out}"
    );
    assert_eq!(dnf.installed(), "tegu-ent-3.2.0");

    // The same downgrade spelled as a swap of the packages.
    let (ok, out) = dnf.run(&["swap", "tegu-ent", "tegu"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("refusing: tegu 3.1.0-1 would replace tegu-ent 3.2.0-1"),
        "{out}"
    );
    assert_eq!(dnf.installed(), "tegu-ent-3.2.0");

    // An upgrade goes through.
    let (ok, out) = dnf.run(&["upgrade", "tegu-ent"]);
    assert!(ok, "{out}");
    assert!(!out.contains("upkeep"), "{out}");
    assert_eq!(dnf.installed(), "tegu-ent-3.2.1");

    // Configured to warn: the downgrade proceeds with the warning.
    r.write(
        "/etc/upkeep/upkeep.toml",
        "[product.tegu]\non_downgrade = \"warn\"\n",
        0o644,
    );
    let (ok, out) = dnf.run(&["downgrade", "tegu-ent-3.2.0"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("warning: tegu-ent would be downgraded"),
        "{out}"
    );
    assert_eq!(dnf.installed(), "tegu-ent-3.2.0");
}
