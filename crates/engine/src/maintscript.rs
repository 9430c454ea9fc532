//! The `[maintscript]` section of a product manifest: what
//! `upkeep-maintscript` keeps across a package upgrade when the product's
//! own package calls it from its maintainer scripts. Only the schema and
//! its checks live here; the work is `upkeep_upgrade_engine::maintscript`.
//!
//! The fields are the `[release]` section's (same names, same forms), so a
//! product with a `[release]` section needs no `[maintscript]` of its own:
//! [`effective`] takes `dir`, `owner`, `modes`, `capabilities`, `preserve`
//! and the backup directory from there.

use crate::plugin::Manifest;
use crate::release::{ReleaseCapability, ReleaseMode};
use serde::Deserialize;
use upkeep_sys::fsutil::is_clean_relative;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintscriptSpec {
    /// The directory the package installs, as seen inside the system.
    pub dir: String,
    /// Owner re-applied to the whole tree in postinst, `USER:GROUP`.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub modes: Vec<ReleaseMode>,
    /// File capabilities, applied after the ownership (a chown clears them)
    /// and read back.
    #[serde(default)]
    pub capabilities: Vec<ReleaseCapability>,
    /// Paths (relative to `dir`) backed up by the preinst and put back by
    /// the postinst (the package's copy is replaced by the admin's).
    #[serde(default)]
    pub preserve: Vec<String>,
    /// Where backups go (default `/var/lib/upkeep/backups`).
    #[serde(default)]
    pub backup_dir: Option<String>,
    /// How many backups to keep (default 3).
    #[serde(default)]
    pub keep: Option<usize>,
}

impl MaintscriptSpec {
    /// Every check the loader makes; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !self.dir.starts_with('/') || !is_clean_relative(self.dir.trim_start_matches('/')) {
            return Err(format!(
                "maintscript.dir: '{}' must be a clean absolute path",
                self.dir
            ));
        }
        for p in self
            .preserve
            .iter()
            .chain(self.modes.iter().map(|m| &m.path))
            .chain(self.capabilities.iter().map(|c| &c.path))
        {
            if !is_clean_relative(p) {
                return Err(format!(
                    "maintscript paths: '{p}' must be a relative path without '..'"
                ));
            }
        }
        for m in &self.modes {
            if u32::from_str_radix(&m.mode, 8).map_or(true, |v| v > 0o7777) {
                return Err(format!(
                    "maintscript.modes: '{}' is not an octal mode",
                    m.mode
                ));
            }
        }
        for c in &self.capabilities {
            if !c.caps.contains('=') {
                return Err(format!(
                    "maintscript.capabilities: '{}' is not in setcap's form (cap_x=+ep)",
                    c.caps
                ));
            }
        }
        if let Some(d) = &self.backup_dir {
            if !d.starts_with('/') || !is_clean_relative(d.trim_start_matches('/')) {
                return Err(format!(
                    "maintscript.backup_dir: '{d}' must be a clean absolute path"
                ));
            }
        }
        Ok(())
    }
}

/// The product's `[maintscript]` section, else the same fields of its
/// `[release]` section, else nothing to keep (policy and guard still apply).
pub fn effective(m: &Manifest) -> Option<MaintscriptSpec> {
    if let Some(s) = &m.maintscript {
        return Some(s.clone());
    }
    m.release.as_ref().map(|r| MaintscriptSpec {
        dir: r.dir.clone(),
        owner: r.owner.clone(),
        modes: r.modes.clone(),
        capabilities: r.capabilities.clone(),
        preserve: r.preserve.clone(),
        backup_dir: r.backup.dir.clone(),
        keep: r.backup.keep,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Result<MaintscriptSpec, String> {
        let s: MaintscriptSpec = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate().map(|()| s)
    }

    #[test]
    fn checks_paths_modes_and_caps() {
        assert!(spec("dir = \"/opt/t\"\ncapabilities = [{ path = \"sbin/t\", caps = \"cap_net_bind_service=+eip\" }]").is_ok());
        assert!(spec("dir = \"opt/t\"").is_err());
        assert!(spec("dir = \"/opt/t\"\npreserve = [\"../etc\"]").is_err());
        assert!(spec("dir = \"/opt/t\"\nmodes = [{ path = \"x\", mode = \"999\" }]").is_err());
        assert!(
            spec("dir = \"/opt/t\"\ncapabilities = [{ path = \"x\", caps = \"bogus\" }]").is_err()
        );
        assert!(spec("dir = \"/opt/t\"\nbackup_dir = \"rel\"").is_err());
        assert!(spec("dir = \"/opt/t\"\nunknown = 1").is_err());
    }
}
