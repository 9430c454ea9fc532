//! Autostart switched off and restored exactly, with the real
//! `systemctl --root=ROOT` (Debian's systemd package) on a throwaway root:
//! no running systemd is involved, only the root's install symlinks.
#![allow(clippy::disallowed_methods)] // tests build their roots by path

use std::path::Path;
use upkeep_sys::SysRoot;
use upkeep_upgrade_engine::autostart;

const UNIT: &str = "[Unit]\nDescription=stand-in\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n";

fn links(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    if let Ok(rd) = std::fs::read_dir(&wants) {
        for e in rd.flatten() {
            let t = std::fs::read_link(e.path()).expect("link");
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                t.display().to_string(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn disable_then_restore_puts_back_exactly_what_was_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sys = dir.path().join("etc/systemd/system");
    std::fs::create_dir_all(&sys).expect("mkdir");
    for u in ["gm-address.service", "gm-objectserver.service"] {
        std::fs::write(sys.join(u), UNIT).expect("unit");
    }
    let root = SysRoot::new(dir.path());
    let st = std::process::Command::new("systemctl")
        .arg(format!("--root={}", dir.path().display()))
        .args(["enable", "gm-address.service"])
        .output()
        .expect("systemctl");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let before = links(dir.path());
    assert_eq!(before.len(), 1, "{before:?}");

    let units: Vec<String> = [
        "gm-address.service",
        "gm-objectserver.service",
        "gm-absent.service",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let saved = autostart::disable(&root, &units).expect("disable");
    let states: Vec<&str> = saved.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states, ["enabled", "disabled", "not-found"]);
    assert!(links(dir.path()).is_empty(), "{:?}", links(dir.path()));
    let off = autostart::states(&root, &units).expect("states");
    assert!(off.iter().all(|s| s.state != "enabled"), "{off:?}");

    autostart::restore(&root, &saved).expect("restore");
    assert_eq!(links(dir.path()), before);
    assert_eq!(autostart::states(&root, &units).expect("states"), saved);
    // Restoring twice changes nothing.
    autostart::restore(&root, &saved).expect("restore again");
    assert_eq!(links(dir.path()), before);
}
