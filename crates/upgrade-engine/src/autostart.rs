//! Autostart of systemd units through the real `systemctl --root=ROOT`,
//! which edits the install symlinks of a system root without a running
//! systemd. A version-up records each unit's state, switches autostart off,
//! and at the end puts back exactly what was recorded: units that were
//! enabled are enabled again, the others are left disabled; states systemctl
//! does not change by enable/disable (static, masked, …) are not touched.

use serde::{Deserialize, Serialize};
use std::process::Command;
use std::time::Duration;
use upkeep_sys::{Error, Result, SysRoot};

const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitState {
    pub unit: String,
    /// What `systemctl is-enabled` printed (`enabled`, `disabled`,
    /// `static`, `masked`, …), or `not-found`.
    pub state: String,
}

fn systemctl(root: &SysRoot, args: &[&str]) -> Result<std::process::Output> {
    let mut c = Command::new("systemctl");
    c.arg(format!("--root={}", root.dir().display()))
        .args(args)
        .env("SYSTEMD_OFFLINE", "1");
    let shown = format!(
        "systemctl --root={} {}",
        root.dir().display(),
        args.join(" ")
    );
    upkeep_sys::process::run_with_timeout(&mut c, None, SYSTEMCTL_TIMEOUT)
        .map_err(|e| Error::Failed(format!("{shown}: {e}")))?
        .ok_or_else(|| Error::Failed(format!("{shown}: timed out")))
}

/// Each unit's autostart state.
pub fn states(root: &SysRoot, units: &[String]) -> Result<Vec<UnitState>> {
    units
        .iter()
        .map(|u| {
            let o = systemctl(root, &["is-enabled", u])?;
            let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let state = if out.is_empty() {
                "not-found".to_string()
            } else {
                out
            };
            Ok(UnitState {
                unit: u.clone(),
                state,
            })
        })
        .collect()
}

fn change(root: &SysRoot, verb: &str, unit: &str) -> Result<()> {
    let o = systemctl(root, &[verb, unit])?;
    if !o.status.success() {
        return Err(Error::Failed(format!(
            "systemctl --root={} {verb} {unit}: {}",
            root.dir().display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(())
}

/// Switches autostart off for every unit that has it on; returns what it
/// recorded before, for [`restore`].
pub fn disable(root: &SysRoot, units: &[String]) -> Result<Vec<UnitState>> {
    let before = states(root, units)?;
    for s in before.iter().filter(|s| s.state == "enabled") {
        change(root, "disable", &s.unit)?;
    }
    Ok(before)
}

/// Switches autostart off for the units `saved` (recorded earlier by
/// [`states`]) has enabled, then reads it back: none is enabled.
pub fn switch_off(root: &SysRoot, saved: &[UnitState]) -> Result<()> {
    for s in saved.iter().filter(|s| s.state == "enabled") {
        change(root, "disable", &s.unit)?;
    }
    let units: Vec<String> = saved.iter().map(|s| s.unit.clone()).collect();
    let now = states(root, &units)?;
    if let Some(on) = now.iter().find(|s| s.state == "enabled") {
        return Err(Error::Failed(format!(
            "{} is still enabled after systemctl --root={} disable",
            on.unit,
            root.dir().display()
        )));
    }
    Ok(())
}

/// Puts back what [`disable`] recorded, then reads it back.
pub fn restore(root: &SysRoot, saved: &[UnitState]) -> Result<()> {
    for s in saved {
        match s.state.as_str() {
            "enabled" => change(root, "enable", &s.unit)?,
            "disabled" => change(root, "disable", &s.unit)?,
            _ => {}
        }
    }
    let units: Vec<String> = saved.iter().map(|s| s.unit.clone()).collect();
    let now = states(root, &units)?;
    if now != saved {
        return Err(Error::Failed(format!(
            "autostart not restored: was {saved:?}, is {now:?}"
        )));
    }
    Ok(())
}
