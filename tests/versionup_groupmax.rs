//! `upkeep-upgrade apply|resume|recover groupmax` (the manifest's
//! `[versionup]`) on throwaway roots, one each from 5, 3, 2.0 and 02-00.
//!
//! Real: `systemctl --root=ROOT` of this machine for autostart (it edits
//! the root's install symlinks without a running systemd), chroot, the
//! root's busybox-static shell. STAND-INS (no systemd as PID 1 and no
//! Groupmax here): the root's `/usr/bin/systemctl` (start/stop mark a
//! service active under /run), the vendor's Version 6 installer (a shell
//! script that writes the new binaries, `advup2_6` and VERSION `06-00`),
//! and the "reboot" (a new boot id written to the root's
//! /proc/sys/kernel/random/boot_id).
#![allow(clippy::unwrap_used)]
#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;

use common::{assert_no_panic, json, stderr, stdout, upkeep_env, TestRoot};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

const UP: &str = "upkeep-upgrade";
const SERVICES: &str = "# Network services, Internet style\n#\ntcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer\nsmtp\t\t25/tcp\t\tmail\n";
const UNITS: [&str; 2] = ["groupmax-address.service", "groupmax-objectserver.service"];
const INSTALLER: &str = "/media/groupmax6/setup";

const SYSTEMCTL: &str = r#"#!/bin/sh
# STAND-IN for systemctl inside the root (no systemd as PID 1 in a test):
# start and stop mark a service active; every call is logged.
echo "$*" >>/var/log/systemctl.log
case "$1" in
start) : >"/run/$2.active" ;;
stop) rm -f "/run/$2.active" ;;
*) echo "stand-in systemctl: $1 not supported" >&2; exit 1 ;;
esac
"#;

/// STAND-IN for the vendor's Version 6 installer (an update install):
/// the example root's, or one that fails half-way.
fn installer(fail: bool) -> String {
    let example =
        fs::read_to_string(common::examples_dir().join("groupmax/media/groupmax6/setup")).unwrap();
    if fail {
        example.replace(
            "echo 06-00 >/opt/groupmax/VERSION",
            "echo 06-00 >/opt/groupmax/VERSION\necho 'setup: disk error' >&2\nexit 1",
        )
    } else {
        example
    }
}

fn unit(name: &str) -> String {
    format!("[Unit]\nDescription={name}\n[Service]\nExecStart=/opt/groupmax/bin/adrsd\n[Install]\nWantedBy=multi-user.target\n")
}

/// A Groupmax master management server at `version`: the address service
/// enabled and running, the Object Server running but not enabled, two
/// journal files, a database file.
fn root(version: &str, services: &str) -> TestRoot {
    let r = TestRoot::new();
    let bb = Path::new("/bin/busybox");
    assert!(
        bb.exists(),
        "busybox-static is needed (scripts/test installs it)"
    );
    r.write("bin/busybox", fs::read(bb).unwrap(), 0o755);
    for tool in ["sh", "cat", "rm", "mkdir", "chmod"] {
        std::os::unix::fs::symlink("busybox", r.path(&format!("bin/{tool}"))).unwrap();
    }
    fs::create_dir_all(r.path("dev")).unwrap();
    let st = Command::new("mknod")
        .args(["-m", "666"])
        .arg(r.path("dev/null"))
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(st.success());
    r.write("usr/bin/systemctl", SYSTEMCTL, 0o755);
    r.write(&INSTALLER[1..], installer(false), 0o755);
    r.write("opt/groupmax/VERSION", format!("{version}\n"), 0o644);
    r.write(
        "opt/groupmax/bin/adrsd",
        format!("address server {version}\n"),
        0o755,
    );
    r.write("opt/groupmax/conf/adrs.conf", "port=20141\n", 0o640);
    r.write("opt/groupmax/journal/adrs0001.jnl", "old journal 1", 0o600);
    r.write("opt/groupmax/journal/adrs0002.jnl", "old journal 2", 0o600);
    r.write(
        "var/opt/groupmax/db/address.db",
        format!("db {version}"),
        0o600,
    );
    r.write("etc/services", services, 0o644);
    r.write("proc/sys/kernel/random/boot_id", "boot-1\n", 0o444);
    fs::create_dir_all(r.path("run")).unwrap();
    for u in UNITS {
        r.write(&format!("usr/lib/systemd/system/{u}"), unit(u), 0o644);
        r.write(
            &format!("run/{}.active", u.trim_end_matches(".service")),
            "",
            0o644,
        );
    }
    assert_eq!(systemctl(&r, &["enable", UNITS[0]]).status.code(), Some(0));
    assert_eq!(autostart(&r), ["enabled", "disabled"]);
    r
}

/// The real systemctl on the root.
fn systemctl(r: &TestRoot, args: &[&str]) -> Output {
    Command::new("systemctl")
        .arg(format!("--root={}", r.root().display()))
        .args(args)
        .output()
        .expect("systemctl")
}

fn autostart(r: &TestRoot) -> Vec<String> {
    UNITS
        .iter()
        .map(|u| stdout(&systemctl(r, &["is-enabled", u])).trim().to_string())
        .collect()
}

fn up(r: &TestRoot, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut a = args.to_vec();
    a.extend(["--root", r.root().to_str().unwrap()]);
    let o = upkeep_env(UP, &a, env);
    if env.is_empty() {
        assert_no_panic(&o);
    }
    o
}

fn reboot(r: &TestRoot, n: u32) {
    r.write(
        "proc/sys/kernel/random/boot_id",
        format!("boot-{n}\n"),
        0o444,
    );
}

fn read(r: &TestRoot, p: &str) -> String {
    fs::read_to_string(r.path(p)).unwrap_or_default()
}

fn active(r: &TestRoot) -> Vec<bool> {
    UNITS
        .iter()
        .map(|u| {
            r.path(&format!("run/{}.active", u.trim_end_matches(".service")))
                .exists()
        })
        .collect()
}

/// Every path under `dir` with kind, owner, mode, content or link target.
fn digest(r: &TestRoot, dir: &str) -> Vec<String> {
    fn walk(p: &Path, base: &Path, out: &mut Vec<String>) {
        let Ok(m) = fs::symlink_metadata(p) else {
            return;
        };
        let rel = p.strip_prefix(base).unwrap().display().to_string();
        let what = if m.is_file() {
            format!("{:?}", fs::read(p).unwrap())
        } else if m.file_type().is_symlink() {
            format!("-> {}", fs::read_link(p).unwrap().display())
        } else {
            String::new()
        };
        out.push(format!(
            "{rel} {}:{} {:o} {what}",
            m.uid(),
            m.gid(),
            m.mode()
        ));
        if m.is_dir() {
            let mut names: Vec<_> = fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            names.sort();
            for n in names {
                walk(&n, base, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&r.path(dir), r.root(), &mut out);
    out
}

/// What a version-up may change, and what an undo must put back.
fn system_state(r: &TestRoot) -> Vec<String> {
    let mut s = digest(r, "opt/groupmax");
    s.extend(digest(r, "var/opt/groupmax"));
    s.push(read(r, "etc/services"));
    s.extend(autostart(r));
    s.extend(active(r).iter().map(|a| a.to_string()));
    s
}

fn no_record(r: &TestRoot) -> bool {
    fs::read_dir(r.path("var/lib/upkeep/versionup"))
        .map(|d| d.count() == 0)
        .unwrap_or(true)
}

/// The lines the version-up added to the services file.
fn added_lines(r: &TestRoot, before: &str) -> Vec<String> {
    let now = read(r, "etc/services");
    assert!(now.starts_with(before), "kept as it was: {now}");
    now[before.len()..].lines().map(str::to_string).collect()
}

fn expect_lines(entries: &[&str]) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            let (name, pp) = e.split_once(' ').unwrap();
            format!("{name}\t{pp}\t\t# Groupmax Version 6")
        })
        .collect()
}

fn assert_new(r: &TestRoot, entries: &[&str], advup: bool) {
    assert_eq!(read(r, "opt/groupmax/VERSION"), "06-00\n");
    assert_eq!(added_lines(r, SERVICES), expect_lines(entries));
    assert_eq!(autostart(r), ["enabled", "disabled"], "autostart as it was");
    assert_eq!(active(r), [true, true], "both services started");
    let journals: Vec<_> = fs::read_dir(r.path("opt/groupmax/journal"))
        .unwrap()
        .collect();
    assert!(journals.is_empty(), "old journals cleared: {journals:?}");
    assert_eq!(
        read(r, "var/log/advup2_6.log"),
        if advup { "advup2_6 ran\n" } else { "" },
        "advup2_6 only from 2.0, once"
    );
    assert!(no_record(r), "the journal record is closed");
    // Two verified backups: the old environment (with its journals and
    // database) and the new one.
    let mut backups: Vec<_> = fs::read_dir(r.path("var/lib/upkeep/backups/groupmax"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    backups.sort();
    assert_eq!(backups.len(), 2, "{backups:?}");
    let old = &backups[0];
    assert!(old.join("opt_groupmax/journal/adrs0001.jnl").exists());
    assert!(old.join("var_opt_groupmax_db/address.db").exists());
    assert_ne!(
        fs::read_to_string(old.join("opt_groupmax/VERSION")).unwrap(),
        "06-00\n"
    );
    assert_eq!(
        fs::read_to_string(backups[1].join("opt_groupmax/VERSION")).unwrap(),
        "06-00\n"
    );
}

const V3: [&str; 2] = ["imap 143/tcp", "adrshd 20141/tcp"];
const V2: [&str; 4] = [
    "imap 143/tcp",
    "adrshd 20141/tcp",
    "pop3 110/tcp",
    "popcfg 106/tcp",
];
const V0200: [&str; 6] = [
    "imap 143/tcp",
    "adrshd 20141/tcp",
    "pop3 110/tcp",
    "popcfg 106/tcp",
    "adagt_ap 9080/tcp",
    "adreq_ap 9081/tcp",
];

/// apply stops at the reboot: services stopped, autostart off, nothing
/// else changed yet; resume refuses until the boot id changes.
fn apply_to_reboot(r: &TestRoot, args: &[&str]) {
    let before = read(r, "opt/groupmax/VERSION");
    let o = up(
        r,
        &[&["apply", "groupmax", "--format", "json"], args].concat(),
        &[],
    );
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["state"], "waiting", "{j}");
    assert_eq!(j["id"], "reboot", "{j}");
    assert_eq!(j["reboot"], true);
    assert_eq!(
        autostart(r),
        ["disabled", "disabled"],
        "autostart off before the reboot"
    );
    assert_eq!(active(r), [false, false], "both services stopped");
    assert_eq!(read(r, "opt/groupmax/VERSION"), before);
    assert_eq!(read(r, "etc/services"), SERVICES);
    // Not rebooted: refused, saying so; a second apply refuses too.
    let o = up(r, &["resume", "groupmax"], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("boot id is still boot-1"),
        "{}",
        stderr(&o)
    );
    let o = up(r, &["apply", "groupmax"], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stderr(&o).contains("under way"), "{}", stderr(&o));
    reboot(r, 2);
}

#[test]
fn from_5_and_from_3_with_the_installer_across_a_reboot() {
    for (version, entries) in [("05-00", &[][..]), ("03-00", &V3[..])] {
        let r = root(version, SERVICES);
        // The services file's owner and mode are kept by the edit.
        std::os::unix::fs::chown(r.path("etc/services"), Some(0), Some(994)).unwrap();
        fs::set_permissions(r.path("etc/services"), fs::Permissions::from_mode(0o640)).unwrap();
        apply_to_reboot(&r, &[INSTALLER]);
        let o = up(&r, &["resume", "groupmax"], &[]);
        assert_eq!(o.status.code(), Some(0), "{version}: {}", stderr(&o));
        assert!(stdout(&o).contains("versioned up from"), "{}", stdout(&o));
        assert_new(&r, entries, false);
        // Both backups listed and verified.
        let o = up(&r, &["backups", "groupmax", "--format", "json"], &[]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let rows = json(&o);
        assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
        assert!(rows
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["verified"] == true));
        let m = fs::metadata(r.path("etc/services")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 994, 0o640));
        // A second apply, and a second resume, are no-ops.
        let all = digest(&r, "");
        let o = up(&r, &["apply", "groupmax", INSTALLER], &[]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stdout(&o).contains("nothing to do"), "{}", stdout(&o));
        let o = up(&r, &["resume", "groupmax"], &[]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(digest(&r, ""), all, "{version}: nothing changed");
        // A backup changed afterwards no longer verifies.
        let base = r.path("var/lib/upkeep/backups/groupmax");
        let mut dirs: Vec<_> = fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        fs::write(dirs[0].join("opt_groupmax/VERSION"), "99-99\n").unwrap();
        let o = up(&r, &["backups", "groupmax"], &[]);
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        assert!(stdout(&o).contains("BAD"), "{}", stdout(&o));
    }
}

#[test]
fn from_2_0_stops_for_the_address_mail_setup_and_runs_advup2_6() {
    let r = root("02-10", SERVICES);
    apply_to_reboot(&r, &[INSTALLER]);
    let o = up(&r, &["resume", "groupmax", "--format", "json"], &[]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["id"], "address-mail-setup", "{j}");
    assert!(j["resume"]
        .as_str()
        .unwrap()
        .ends_with("--confirm address-mail-setup"));
    assert_eq!(read(&r, "var/log/advup2_6.log"), "advup2_6 ran\n");
    assert_eq!(added_lines(&r, SERVICES), expect_lines(&V2));
    // Without the confirmation, or confirming another step: refused, and
    // nothing moves.
    let o = up(&r, &["resume", "groupmax"], &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("--confirm address-mail-setup"),
        "{}",
        stderr(&o)
    );
    let o = up(&r, &["resume", "groupmax", "--confirm", "reboot"], &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("not waiting at that step"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        active(&r),
        [false, true],
        "the address service waits for the setup"
    );
    let o = up(
        &r,
        &["resume", "groupmax", "--confirm", "address-mail-setup"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_new(&r, &V2, true);
}

#[test]
fn from_02_00_with_the_install_as_the_operators_step() {
    let r = root("02-00", SERVICES);
    apply_to_reboot(&r, &[]);
    let o = up(&r, &["resume", "groupmax", "--format", "json"], &[]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert_eq!(json(&o)["id"], "install");
    // Confirmed before the installer ran: the version file says so.
    let o = up(&r, &["resume", "groupmax", "--confirm", "install"], &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("has not finished"), "{}", stderr(&o));
    let st = Command::new("chroot")
        .arg(r.root())
        .arg(INSTALLER)
        .status()
        .unwrap();
    assert!(st.success());
    let o = up(&r, &["resume", "groupmax", "--confirm", "install"], &[]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stdout(&o).contains("Address_Mail"), "{}", stdout(&o));
    let o = up(
        &r,
        &["resume", "groupmax", "--confirm", "Address_Mail setup"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_new(&r, &V0200, true);
}

#[test]
fn a_held_port_is_refused_with_nothing_changed() {
    let held = format!("{SERVICES}glassfish\t9080/tcp\n");
    let r = root("02-00", &held);
    let before = digest(&r, "");
    let o = up(&r, &["apply", "groupmax"], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(
        e.contains("adagt_ap 9080/tcp") && e.contains("glassfish"),
        "{e}"
    );
    assert_eq!(
        digest(&r, ""),
        before,
        "nothing changed, not even upkeep's state"
    );
}

#[test]
fn a_journal_directory_planted_as_a_link_is_refused_with_nothing_changed() {
    let r = root("03-00", SERVICES);
    r.write("etc/keep-me", "system file", 0o644);
    fs::remove_dir_all(r.path("opt/groupmax/journal")).unwrap();
    std::os::unix::fs::symlink("../../etc", r.path("opt/groupmax/journal")).unwrap();
    let before = digest(&r, "");
    let o = up(&r, &["apply", "groupmax", INSTALLER], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stderr(&o).contains("symlink"), "{}", stderr(&o));
    assert_eq!(digest(&r, ""), before, "nothing changed");
}

/// A port taken while the run waited for the reboot: the services step
/// refuses it, naming it, and everything made is undone (the installed
/// Version 6 too, from the backup); the operator's own edit stays.
#[test]
fn a_port_taken_during_the_reboot_undoes_the_run() {
    let r = root("03-00", SERVICES);
    let before = system_state(&r);
    apply_to_reboot(&r, &[INSTALLER]);
    let edited = format!("{SERVICES}other\t20141/tcp\n");
    r.write("etc/services", &edited, 0o644);
    let o = up(&r, &["resume", "groupmax"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(
        e.contains("adrshd 20141/tcp") && e.contains("'other 20141/tcp'"),
        "{e}"
    );
    assert!(e.contains("was undone"), "{e}");
    assert_eq!(read(&r, "etc/services"), edited);
    r.write("etc/services", SERVICES, 0o644);
    assert_eq!(system_state(&r), before);
    assert!(no_record(&r));
}

#[test]
fn a_failing_installer_is_undone_from_the_backup() {
    let r = root("03-00", SERVICES);
    r.write(&INSTALLER[1..], installer(true), 0o755);
    let before = system_state(&r);
    apply_to_reboot(&r, &[INSTALLER]);
    let o = up(&r, &["resume", "groupmax"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(e.contains("disk error") && e.contains("was undone"), "{e}");
    assert!(e.contains("groupmax 03-00 is back"), "{e}");
    assert_eq!(
        system_state(&r),
        before,
        "tree, database, services file, autostart, services"
    );
    assert!(no_record(&r));
}

/// Killed while undoing a failed install: `recover` finishes the undo.
#[test]
fn killed_while_undoing_recover_finishes_the_undo() {
    let r = root("02-00", SERVICES);
    r.write(&INSTALLER[1..], installer(true), 0o755);
    let before = system_state(&r);
    apply_to_reboot(&r, &[INSTALLER]);
    let o = up(
        &r,
        &["resume", "groupmax"],
        &[("UPKEEP_CRASH_AT", "journal:undoing")],
    );
    assert_eq!(o.status.code(), None, "killed: {}", stderr(&o));
    assert!(!no_record(&r));
    // Neither apply nor a confirmation goes past an unfinished undo.
    let o = up(&r, &["apply", "groupmax", INSTALLER], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = up(&r, &["recover"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("02-00 is back"), "{}", stdout(&o));
    assert_eq!(system_state(&r), before);
    assert!(no_record(&r));
}

/// A manifest of the site's own (plugins.d) with one more step after the
/// address service is in service: starting the operations console, which
/// the vendor lists there too.
fn with_console_step(r: &TestRoot) {
    let m = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/groupmax.toml"))
        .unwrap();
    let step = "[[versionup.path.steps]]\nkind = \"clear\"\n";
    let console = "[[versionup.path.steps]]\nkind = \"run\"\nname = \"Start the operations console\"\ncommands = [[\"/opt/groupmax/bin/console\"]]\n\n";
    assert!(m.contains(step));
    r.write(
        "etc/upkeep/plugins.d/groupmax.toml",
        m.replace(step, &format!("{console}{step}")),
        0o644,
    );
    r.write(
        "opt/groupmax/bin/console",
        "#!/bin/sh\nif [ -e /etc/console-broken ]; then echo 'console: cannot start' >&2; exit 1; fi\n",
        0o755,
    );
}

#[test]
fn past_the_address_start_a_failure_keeps_the_place_and_resume_finishes() {
    let r = root("03-00", SERVICES);
    with_console_step(&r);
    r.write("etc/console-broken", "", 0o644);
    apply_to_reboot(&r, &[INSTALLER]);
    let o = up(&r, &["resume", "groupmax"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(e.contains("console: cannot start"), "{e}");
    assert!(e.contains("not undone automatically"), "{e}");
    assert!(e.contains("resume groupmax --root"), "{e}");
    assert!(
        e.contains("/var/lib/upkeep/backups/groupmax/")
            && e.contains("imap 143/tcp, adrshd 20141/tcp")
            && e.contains("groupmax-address.service enabled"),
        "how to go back, each part: {e}"
    );
    assert_eq!(
        read(&r, "opt/groupmax/VERSION"),
        "06-00\n",
        "left in service"
    );
    assert!(!no_record(&r), "the journal keeps the place");
    // recover does not undo it either: it goes on, and fails the same way.
    let o = up(&r, &["recover", "groupmax"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(read(&r, "opt/groupmax/VERSION"), "06-00\n");
    fs::remove_file(r.path("etc/console-broken")).unwrap();
    let o = up(&r, &["resume", "groupmax"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_new(&r, &V3, false);
}

/// SIGKILL at every step of a run from 3 (apply, then resume after the
/// reboot), then `recover` or `resume`: the old install exactly as it was,
/// or the new one complete.
#[test]
fn sigkill_at_every_step_then_recover_or_resume() {
    let mut points = vec![
        "versionup:begun".to_string(),
        "versionup:waiting".into(),
        "versionup:done".into(),
    ];
    for i in 0..12 {
        points.push(format!("versionup:before{i}"));
        points.push(format!("versionup:step{i}"));
    }
    let mut kills = 0;
    for (n, point) in points.iter().enumerate() {
        let r = root("03-00", SERVICES);
        let old = system_state(&r);
        let env = [("UPKEEP_CRASH_AT", point.as_str())];
        let o = up(&r, &["apply", "groupmax", INSTALLER], &env);
        let killed = o.status.code().is_none() || {
            assert_eq!(o.status.code(), Some(5), "{point}: {}", stderr(&o));
            reboot(&r, 2);
            let o = up(&r, &["resume", "groupmax"], &env);
            let killed = o.status.code().is_none();
            if !killed {
                assert_eq!(o.status.code(), Some(0), "{point}: {}", stderr(&o));
            }
            killed
        };
        if !killed {
            // A point this run never reaches: the reboot (step 3) is the
            // operator's, so it has no "before".
            assert_eq!(point, "versionup:before3");
            assert_new(&r, &V3, false);
            continue;
        }
        kills += 1;
        if n % 2 == 0 {
            let o = up(&r, &["recover"], &[]);
            match o.status.code() {
                Some(0) if read(&r, "opt/groupmax/VERSION") == "06-00\n" => {
                    assert_new(&r, &V3, false);
                    continue;
                }
                Some(0) => {
                    assert_eq!(system_state(&r), old, "{point}: recover: the old install");
                    assert!(no_record(&r), "{point}");
                    continue;
                }
                // Stopped at the reboot: recover leaves it for resume.
                Some(5) => assert!(stdout(&o).contains("resume"), "{point}"),
                c => panic!("{point}: recover exited {c:?}: {}", stderr(&o)),
            }
        }
        // resume, across the reboot where the run still waits for one.
        let mut tries = 0;
        loop {
            let o = up(&r, &["resume", "groupmax"], &[]);
            match o.status.code() {
                Some(0) => break,
                Some(5) => reboot(&r, 10 + tries),
                Some(3) if stderr(&o).contains("boot id") => reboot(&r, 10 + tries),
                c => panic!("{point}: resume exited {c:?}: {}", stderr(&o)),
            }
            tries += 1;
            assert!(tries < 4, "{point}: resume does not finish");
        }
        assert_new(&r, &V3, false);
    }
    assert_eq!(kills, points.len() - 1);
}

#[test]
fn dry_run_and_plan_name_the_installer_and_change_nothing() {
    let r = root("03-00", SERVICES);
    let before = digest(&r, "");
    let o = up(&r, &["apply", "groupmax", INSTALLER, "--dry-run"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("$ {INSTALLER}")),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("+ 20141/tcp adrshd"), "{}", stdout(&o));
    assert!(stdout(&o).contains("nothing was changed"), "{}", stdout(&o));
    let o = up(
        &r,
        &["plan", "groupmax", INSTALLER, "--format", "json"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json(&o);
    let install = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "install")
        .unwrap();
    assert_eq!(install["commands"][0], INSTALLER);
    assert_eq!(install["manual"], false);
    // Without an installer the install is the operator's step.
    let o = up(&r, &["plan", "groupmax", "--format", "json"], &[]);
    let j = json(&o);
    let install = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "install")
        .unwrap();
    assert_eq!(install["manual"], true);
    // An installer that is not in the system: a usage error, nothing done.
    let o = up(&r, &["apply", "groupmax", "/media/nothing/setup"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(digest(&r, ""), before);
}

#[test]
fn without_a_boot_id_the_reboot_is_confirmed_by_its_id() {
    let r = root("05-00", SERVICES);
    fs::remove_file(r.path("proc/sys/kernel/random/boot_id")).unwrap();
    let o = up(&r, &["apply", "groupmax", INSTALLER], &[]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stdout(&o).contains("Reboot the machine"), "{}", stdout(&o));
    let o = up(&r, &["resume", "groupmax"], &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("--confirm reboot"), "{}", stderr(&o));
    let o = up(&r, &["resume", "groupmax", "--confirm", "reboot"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_new(&r, &[], false);
}

/// Once a run finished, the newest `backup_keep` backups stay (3, the
/// default; this run's two always), older ones are removed.
#[test]
fn a_finished_run_keeps_the_newest_backups_and_removes_older_ones() {
    let r = root("05-00", SERVICES);
    let base = r.path("var/lib/upkeep/backups/groupmax");
    let old = [
        "20000101T000000Z-01-00",
        "20000102T000000Z-01-00",
        "20000103T000000Z-01-00",
    ];
    for d in old {
        fs::create_dir_all(base.join(d)).unwrap();
        fs::write(base.join(d).join("backup.json"), "{}").unwrap();
    }
    apply_to_reboot(&r, &[INSTALLER]);
    let o = up(&r, &["resume", "groupmax"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut left: Vec<String> = fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left.len(), 3, "{left:?}");
    assert_eq!(left[0], old[2], "the newest older one stays: {left:?}");
    assert!(!left.iter().any(|d| d == old[0] || d == old[1]), "{left:?}");
}
