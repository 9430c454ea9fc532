//! A `tegu` test .deb whose maintainer scripts are each the one line
//! `upkeep-maintscript tegu -- "$@"` (postinst: the package's own
//! `chown -R` first), driven by the real dpkg on a throwaway root. Scripts
//! run chrootless with $DPKG_ROOT set; the helper is found on $PATH.
//! Capabilities are real (setcap's xattr, read with the real getcap).

#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LINE: &str = "upkeep-maintscript tegu -- \"$@\"\n";

/// The tegu package. `plain_prerm`: an older package whose prerm does not
/// call upkeep. `extra`: one more file (to make an unpack fail on purpose).
fn tegu_deb(work: &Path, version: &str, plain_prerm: bool, extra: Option<&str>) -> PathBuf {
    let one = format!("#!/bin/sh\nset -e\n{LINE}");
    let postinst = format!("#!/bin/sh\nset -e\nchown -R 990:990 \"$DPKG_ROOT/opt/tegu\"\n{LINE}");
    let prerm = if plain_prerm {
        "#!/bin/sh\nexit 0\n".to_string()
    } else {
        one.clone()
    };
    let mut files = vec![
        file("/opt/tegu/VERSION", format!("{version}\n"), 0o644),
        file(
            "/opt/tegu/sbin/tegu",
            format!("\x7fELF stand-in tegu {version}\n"),
            0o755,
        ),
        file(
            "/opt/tegu/etc/tegu.conf",
            format!("# tegu {version} default configuration\n"),
            0o640,
        ),
    ];
    if let Some(x) = extra {
        files.push(file(x, "extra\n", 0o644));
    }
    let dir = work.join(format!(
        "{version}{}",
        if plain_prerm { "-plain" } else { "" }
    ));
    std::fs::create_dir_all(&dir).expect("mkdir");
    build_deb(
        &dir,
        "tegu",
        version,
        &files,
        &[
            ("preinst", &one),
            ("postinst", &postinst),
            ("prerm", &prerm),
            ("postrm", &one),
        ],
    )
}

struct Env {
    r: TestRoot,
    work: tempfile::TempDir,
    path: String,
}

impl Env {
    fn new() -> Env {
        let r = TestRoot::new();
        let mut passwd = std::fs::read_to_string(r.path("etc/passwd")).expect("passwd");
        passwd.push_str("tegu:x:990:990::/opt/tegu:/bin/sh\n");
        r.write("etc/passwd", passwd, 0o644);
        let mut group = std::fs::read_to_string(r.path("etc/group")).expect("group");
        group.push_str("tegu:x:990:\n");
        r.write("etc/group", group, 0o644);
        let work = tempfile::tempdir().expect("tmp");
        let bindir = work.path().join("bin");
        std::fs::create_dir_all(&bindir).expect("mkdir");
        std::os::unix::fs::symlink(bin("upkeep-maintscript"), bindir.join("upkeep-maintscript"))
            .expect("ln");
        let path = format!(
            "{}:{}",
            bindir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Env { r, work, path }
    }

    /// Real dpkg, scripts chrootless; the result is returned, not asserted.
    fn dpkg(&self, args: &[&str]) -> (bool, String) {
        self.dpkg_env(args, &[])
    }

    fn dpkg_env(&self, args: &[&str], vars: &[(&str, &str)]) -> (bool, String) {
        let root = self.r.root().display().to_string();
        let out = Command::new("dpkg")
            .arg(format!("--root={root}"))
            .args(["--force-script-chrootless", "--force-not-root"])
            .arg(format!("--log={root}/var/log/dpkg.log"))
            .args(args)
            .env("DPKG_ROOT", "")
            .env("PATH", &self.path)
            .env_remove("UPKEEP_PLUGIN_DIR")
            .env_remove("UPKEEP_CRASH_AT")
            .envs(vars.iter().copied())
            .output()
            .expect("dpkg");
        let text = format!("{}{}", stdout(&out), stderr(&out));
        (out.status.success(), text)
    }

    fn install(&self, deb: &Path) -> (bool, String) {
        self.dpkg(&["-i", deb.to_str().expect("utf8")])
    }

    fn caps(&self) -> String {
        let out = Command::new("getcap")
            .arg(self.r.path("opt/tegu/sbin/tegu"))
            .output()
            .expect("getcap (libcap2-bin)");
        stdout(&out)
    }

    fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.r.path(p)).unwrap_or_default()
    }

    fn pending(&self) -> bool {
        self.r.path("var/lib/upkeep/maintscript/tegu.json").exists()
    }

    fn backups(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.r.path("var/lib/upkeep/backups/tegu"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Calls the helper the way dpkg does, without dpkg.
    fn helper(&self, script: &str, args: &[&str]) -> Output {
        let mut all = vec!["tegu", "--"];
        all.extend_from_slice(args);
        upkeep_env(
            "upkeep-maintscript",
            &all,
            &[
                ("DPKG_MAINTSCRIPT_NAME", script),
                ("DPKG_MAINTSCRIPT_PACKAGE", "tegu"),
                ("DPKG_ROOT", self.r.root().to_str().expect("utf8")),
            ],
        )
    }
}

const ADMIN_CONF: &str = "# the admin's tegu configuration\ndb_host = db.example.invalid\n";

/// 3.1.0 installed, the admin's configuration in place.
fn installed(env: &Env) {
    let (ok, out) = env.install(&tegu_deb(env.work.path(), "3.1.0", false, None));
    assert!(ok, "install: {out}");
    assert_eq!(env.r.installed_version("tegu").as_deref(), Some("3.1.0"));
    env.r.write("opt/tegu/etc/tegu.conf", ADMIN_CONF, 0o640);
    std::os::unix::fs::chown(env.r.path("opt/tegu/etc/tegu.conf"), Some(990), Some(990))
        .expect("chown");
}

#[test]
fn supports_and_usage() {
    let o = upkeep("upkeep-maintscript", &["supports"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = upkeep("upkeep-maintscript", &["tegu", "--", "configure"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "no DPKG_MAINTSCRIPT_NAME: {}",
        stderr(&o)
    );
    let env = Env::new();
    let o = env.helper("preinst", &["frobnicate"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_no_panic(&o);
    let o = upkeep_env(
        "upkeep-maintscript",
        &["nosuchproduct", "--", "configure"],
        &[("DPKG_MAINTSCRIPT_NAME", "postinst")],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn install_then_upgrade_backs_up_restores_and_reapplies_capabilities() {
    let env = Env::new();
    installed(&env);
    assert!(
        env.caps().contains("cap_net_bind_service=eip"),
        "after install: {}",
        env.caps()
    );
    assert!(!env.pending());

    let (ok, out) = env.install(&tegu_deb(env.work.path(), "3.1.5", false, None));
    assert!(ok, "upgrade: {out}");
    assert_eq!(env.r.installed_version("tegu").as_deref(), Some("3.1.5"));
    assert_eq!(env.read("opt/tegu/VERSION"), "3.1.5\n");
    // The package shipped its default; the admin's came back from the backup.
    assert_eq!(env.read("opt/tegu/etc/tegu.conf"), ADMIN_CONF, "{out}");
    let backups = env.backups();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(
        std::fs::read_to_string(backups[0].join("files/etc/tegu.conf")).expect("backup"),
        ADMIN_CONF
    );
    assert!(backups[0].join("SHA256SUMS").is_file());
    // The postinst's chown -R ran first (it clears capabilities), upkeep last.
    assert!(
        env.caps().contains("cap_net_bind_service=eip"),
        "capability after the upgrade: '{}'\n{out}",
        env.caps()
    );
    let md = std::fs::metadata(env.r.path("opt/tegu/sbin/tegu")).expect("stat");
    assert_eq!((md.uid(), md.gid()), (990, 990));
    assert!(
        out.contains("upkeep-maintscript: tegu: backed up and verified"),
        "{out}"
    );
    assert!(
        !env.pending(),
        "the pending upgrade is closed by the postinst"
    );
    assert!(
        env.r.path("var/lib/upkeep/editions.json").is_file(),
        "the new state is recorded for the guard"
    );

    // A postinst run again (dpkg --configure after a failure) is harmless.
    let o = env.helper("postinst", &["configure", "3.1.0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(env.read("opt/tegu/etc/tegu.conf"), ADMIN_CONF);
    assert!(env.caps().contains("cap_net_bind_service=eip"));
}

#[test]
fn a_downgrade_is_refused_and_the_installed_version_stays() {
    let env = Env::new();
    installed(&env);
    let (ok, _) = env.install(&tegu_deb(env.work.path(), "3.2.0", false, None));
    assert!(ok);
    let before_bin = std::fs::read(env.r.path("opt/tegu/sbin/tegu")).expect("bin");

    let (ok, out) = env.install(&tegu_deb(env.work.path(), "3.1.0", false, None));
    assert!(!ok, "the downgrade must fail: {out}");
    assert!(out.contains("refused by policy"), "{out}");
    assert_eq!(env.r.installed_version("tegu").as_deref(), Some("3.2.0"));
    assert_eq!(env.read("opt/tegu/VERSION"), "3.2.0\n");
    assert_eq!(
        std::fs::read(env.r.path("opt/tegu/sbin/tegu")).expect("bin"),
        before_bin
    );
    assert_eq!(env.read("opt/tegu/etc/tegu.conf"), ADMIN_CONF);
    assert!(
        env.caps().contains("cap_net_bind_service=eip"),
        "{}",
        env.caps()
    );
    assert!(!env.pending());
}

#[test]
fn the_new_preinst_refuses_a_downgrade_when_the_old_prerm_does_not() {
    let env = Env::new();
    // An older tegu package whose prerm does not call upkeep.
    let (ok, out) = env.install(&tegu_deb(env.work.path(), "3.2.0", true, None));
    assert!(ok, "{out}");
    let (ok, out) = env.install(&tegu_deb(env.work.path(), "3.1.0", false, None));
    assert!(!ok, "{out}");
    assert!(
        out.contains("preinst upgrade 3.2.0 3.1.0"),
        "refused by the preinst: {out}"
    );
    assert!(out.contains("refused by policy"), "{out}");
    assert_eq!(env.r.installed_version("tegu").as_deref(), Some("3.2.0"));
    assert_eq!(env.read("opt/tegu/VERSION"), "3.2.0\n");
    assert!(env.backups().is_empty(), "policy goes before the backup");
}

#[test]
fn a_failed_unpack_runs_abort_upgrade_which_rolls_back() {
    let env = Env::new();
    installed(&env);
    // Another package owns a file the next tegu also ships: dpkg stops the
    // unpack after the preinst and unwinds with abort-upgrade.
    let other = env.work.path().join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    let deb = build_deb(
        &other,
        "tegu-extra",
        "1.0",
        &[file("/opt/tegu/share/extra", "other\n", 0o644)],
        &[],
    );
    let (ok, out) = env.install(&deb);
    assert!(ok, "{out}");
    let (ok, out) = env.install(&tegu_deb(
        env.work.path(),
        "3.1.6",
        false,
        Some("/opt/tegu/share/extra"),
    ));
    assert!(!ok, "{out}");
    assert!(
        out.contains("backed up and verified"),
        "the preinst ran: {out}"
    );
    assert!(
        out.contains("rolled back"),
        "abort-upgrade rolled back: {out}"
    );
    assert_eq!(env.r.installed_version("tegu").as_deref(), Some("3.1.0"));
    assert_eq!(env.read("opt/tegu/VERSION"), "3.1.0\n");
    assert_eq!(env.read("opt/tegu/etc/tegu.conf"), ADMIN_CONF);
    assert!(
        env.caps().contains("cap_net_bind_service=eip"),
        "{}",
        env.caps()
    );
    assert!(!env.pending(), "the rollback closed the pending upgrade");
}

#[test]
fn abort_upgrade_restores_the_preserved_paths_and_every_step_repeats() {
    let env = Env::new();
    installed(&env);
    for _ in 0..2 {
        let o = env.helper("preinst", &["upgrade", "3.1.0", "3.1.5"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    assert_eq!(
        env.backups().len(),
        1,
        "a repeated preinst keeps its backup"
    );
    assert!(env.pending());
    // The package's own file was put over the admin's config between the
    // preinst and the rollback: the admin's comes back.
    env.r.write(
        "opt/tegu/etc/tegu.conf",
        "# tegu 3.1.0 default configuration\n",
        0o640,
    );
    for _ in 0..2 {
        let o = env.helper("postrm", &["abort-upgrade", "3.1.0", "3.1.5"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(env.read("opt/tegu/etc/tegu.conf"), ADMIN_CONF);
    }
    assert!(!env.pending());
    let o = env.helper("postinst", &["abort-upgrade", "3.1.5"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A backup that no longer matches its checksums is not restored from.
    let o = env.helper("preinst", &["upgrade", "3.1.0", "3.1.6"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let b = env.backups().pop().expect("backup");
    std::fs::write(b.join("files/etc/tegu.conf"), "tampered\n").expect("tamper");
    env.r.write("opt/tegu/etc/tegu.conf", "new\n", 0o640);
    let o = env.helper("postrm", &["abort-upgrade", "3.1.0", "3.1.6"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(env.read("opt/tegu/etc/tegu.conf"), "new\n");
}

#[test]
fn a_postinst_killed_midway_is_finished_by_dpkg_configure() {
    let env = Env::new();
    installed(&env);
    // SIGKILL in the postinst right after the preserved paths came back:
    // dpkg leaves the package half-configured (it calls no abort-upgrade
    // for a failed configure).
    let (ok, out) = env.dpkg_env(
        &[
            "-i",
            tegu_deb(env.work.path(), "3.1.5", false, None)
                .to_str()
                .expect("utf8"),
        ],
        &[("UPKEEP_CRASH_AT", "maintscript-restored")],
    );
    assert!(!ok, "{out}");
    assert!(env.pending(), "the upgrade is still pending");
    assert!(
        !env.caps().contains("cap_net_bind_service"),
        "killed before the capability: '{}'",
        env.caps()
    );
    // dpkg runs the postinst again; it finishes.
    let (ok, out) = env.dpkg(&["--configure", "-a"]);
    assert!(ok, "{out}");
    assert_eq!(env.r.installed_version("tegu").as_deref(), Some("3.1.5"));
    assert_eq!(env.read("opt/tegu/etc/tegu.conf"), ADMIN_CONF);
    assert!(
        env.caps().contains("cap_net_bind_service=eip"),
        "{}",
        env.caps()
    );
    assert!(!env.pending());
}

#[test]
fn a_preinst_killed_during_the_backup_leaves_the_old_version() {
    let env = Env::new();
    installed(&env);
    let deb = tegu_deb(env.work.path(), "3.1.5", false, None);
    let (ok, out) = env.dpkg_env(
        &["-i", deb.to_str().expect("utf8")],
        &[("UPKEEP_CRASH_AT", "maintscript-backup-copied")],
    );
    assert!(!ok, "{out}");
    assert_eq!(env.r.installed_version("tegu").as_deref(), Some("3.1.0"));
    assert_eq!(env.read("opt/tegu/VERSION"), "3.1.0\n");
    assert_eq!(env.read("opt/tegu/etc/tegu.conf"), ADMIN_CONF);
    assert!(
        !env.pending(),
        "no pending upgrade without a verified backup"
    );
    // Tried again, it goes through.
    let (ok, out) = env.install(&deb);
    assert!(ok, "{out}");
    assert_eq!(env.read("opt/tegu/etc/tegu.conf"), ADMIN_CONF);
    assert!(
        env.caps().contains("cap_net_bind_service=eip"),
        "{}",
        env.caps()
    );
}

#[test]
fn links_are_never_followed_out_of_the_root() {
    let env = Env::new();
    installed(&env);
    // A file outside the root, and the preserved path turned into a link to it.
    let outside = env.work.path().join("secret");
    std::fs::write(&outside, "outside the root\n").expect("write");
    let conf = env.r.path("opt/tegu/etc/tegu.conf");
    std::fs::remove_file(&conf).expect("rm");
    std::os::unix::fs::symlink(&outside, &conf).expect("ln");
    let o = env.helper("preinst", &["upgrade", "3.1.0", "3.1.5"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let b = env.backups().pop().expect("backup");
    let copied = b.join("files/etc/tegu.conf");
    assert!(
        std::fs::symlink_metadata(&copied)
            .expect("stat")
            .file_type()
            .is_symlink(),
        "the link is backed up as a link"
    );
    // The install directory itself a link: the preflight refuses.
    let o = env.helper("postrm", &["abort-upgrade", "3.1.0", "3.1.5"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&outside).expect("read"),
        "outside the root\n"
    );
    let real = env.r.path("opt/tegu-real");
    std::fs::rename(env.r.path("opt/tegu"), &real).expect("mv");
    std::os::unix::fs::symlink(&real, env.r.path("opt/tegu")).expect("ln");
    let o = env.helper("preinst", &["upgrade", "3.1.0", "3.1.5"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a directory"), "{}", stderr(&o));
    assert_no_panic(&o);
}

/// What was written into a preserved directory after the preinst's backup
/// (an upload, a new plugin, an edit) is newer than the backup and not the
/// package's doing: configure keeps it, and puts back only what the
/// package replaced with its own file or removed. (A local manifest
/// preserves all of etc/, as Mattermost's preserves data/ and plugins/.)
#[test]
fn configure_keeps_what_was_written_since_the_backup() {
    let env = Env::new();
    installed(&env);
    let manifest = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/tegu.toml"),
    )
    .expect("manifest");
    assert!(manifest.contains("preserve = [\"etc/tegu.conf\"]"));
    env.r.write(
        "etc/upkeep/plugins.d/tegu.toml",
        manifest.replace("preserve = [\"etc/tegu.conf\"]", "preserve = [\"etc\"]"),
        0o644,
    );
    env.r
        .write("opt/tegu/etc/aliases", "postmaster: root\n", 0o640);
    env.r.write("opt/tegu/etc/gone", "was here\n", 0o640);
    let o = env.helper("preinst", &["upgrade", "3.1.0", "3.1.5"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Meanwhile: a new file, an edit, a removal, and the package's default
    // put over the admin's config (what the unpack does).
    env.r.write("opt/tegu/etc/new-since", "mine\n", 0o640);
    env.r
        .write("opt/tegu/etc/aliases", "postmaster: admin\n", 0o640);
    std::fs::remove_file(env.r.path("opt/tegu/etc/gone")).expect("rm");
    env.r.write(
        "opt/tegu/etc/tegu.conf",
        "# tegu 3.1.0 default configuration\n",
        0o640,
    );
    let o = env.helper("postinst", &["configure", "3.1.0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(env.read("opt/tegu/etc/tegu.conf"), ADMIN_CONF);
    assert_eq!(env.read("opt/tegu/etc/new-since"), "mine\n");
    assert_eq!(env.read("opt/tegu/etc/aliases"), "postmaster: admin\n");
    assert_eq!(env.read("opt/tegu/etc/gone"), "was here\n");
}
