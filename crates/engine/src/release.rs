//! The `[release]` section of a product manifest: how an install made from
//! the vendor's release archive is upgraded (upkeep-upgrade). Only the
//! schema and its checks live here; the engine is `upkeep-upgrade-engine`.

use serde::Deserialize;
use upkeep_sys::fsutil::is_clean_relative;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSpec {
    /// Where the release is installed, as seen inside the system.
    pub dir: String,
    /// The archive's one top directory (`mattermost/`).
    pub top: String,
    /// Where the version is read, in the installed tree and in an archive
    /// (paths relative to the top directory): the first that yields wins.
    pub version: Vec<ReleaseVersionSource>,
    /// The configuration file, relative to the top directory.
    pub config: String,
    /// Binaries whose ELF architecture must match the host's.
    #[serde(default)]
    pub binaries: Vec<String>,
    /// Files every release archive must carry (relative to the top): one
    /// without them is not a release, whatever else it holds.
    #[serde(default)]
    pub required: Vec<String>,
    /// Largest single entry and whole archive, in bytes.
    pub max_entry_bytes: u64,
    pub max_total_bytes: u64,
    /// Paths (relative to the top) allowed to carry setuid/setgid bits.
    #[serde(default)]
    pub allow_setid: Vec<String>,
    /// Paths kept from the old tree (moved by rename, never copied).
    #[serde(default)]
    pub preserve: Vec<String>,
    /// Config keys (`Section.Key`) whose value is a path: kept too when it
    /// points inside the tree.
    #[serde(default)]
    pub preserve_from_config: Vec<String>,
    /// Owner after install, `USER:GROUP`, applied to the whole tree.
    #[serde(default)]
    pub owner: Option<String>,
    /// Modes after install.
    #[serde(default)]
    pub modes: Vec<ReleaseMode>,
    /// File capabilities, applied after every ownership change.
    #[serde(default)]
    pub capabilities: Vec<ReleaseCapability>,
    #[serde(default)]
    pub services: Vec<String>,
    /// Service control, run inside the root (`{service}` expands).
    #[serde(default)]
    pub stop: Vec<String>,
    #[serde(default)]
    pub start: Vec<String>,
    #[serde(default)]
    pub health: Option<ReleaseHealth>,
    /// Upgrade paths.
    #[serde(default)]
    pub policy: ReleasePolicy,
    #[serde(default)]
    pub backup: ReleaseBackup,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseVersionSource {
    /// A file relative to the top directory: the first line, or the rest
    /// of the first line starting with `prefix`.
    pub file: String,
    #[serde(default)]
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseMode {
    pub path: String,
    /// Octal, as a string: `"0755"`.
    pub mode: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseCapability {
    pub path: String,
    /// `setcap` text form: `cap_net_bind_service=+ep`.
    pub caps: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseHealth {
    /// URL path asked with GET (`/api/v4/system/ping`).
    pub path: String,
    /// Config key holding the listen address (`ServiceSettings.ListenAddress`).
    pub listen_from: String,
    /// Used when the config does not say.
    pub default_listen: String,
    /// A JSON field of the answer and the value it must have.
    #[serde(default)]
    pub json_field: Option<String>,
    #[serde(default)]
    pub json_value: Option<String>,
    /// A response header that must start with the new version.
    #[serde(default)]
    pub version_header: Option<String>,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleasePolicy {
    /// Refuse going to an older version.
    #[serde(default)]
    pub refuse_downgrade: bool,
    #[serde(default)]
    pub required_stops: Vec<RequiredStop>,
    /// Extended-support releases, oldest first: an upgrade must start at or
    /// after the last ESR below the target.
    #[serde(default)]
    pub esr: Vec<String>,
    /// Whether starting before the previous ESR is refused (else a warning).
    #[serde(default)]
    pub esr_refuse: bool,
    #[serde(default)]
    pub database_minimum: Vec<DatabaseMinimum>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredStop {
    /// Upgrades starting below `from_below` and ending at or above
    /// `to_at_least` must pass through `via`.
    pub from_below: String,
    pub to_at_least: String,
    pub via: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseMinimum {
    /// From this product version on, the database must be at least `minimum`.
    pub from: String,
    pub database: String,
    pub minimum: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBackup {
    /// Where backups go, as seen inside the system.
    #[serde(default)]
    pub dir: Option<String>,
    /// How many to keep.
    #[serde(default)]
    pub keep: Option<usize>,
    /// A config key naming a data directory, backed up only when the
    /// config key `data_if` has the value `data_if_value`.
    #[serde(default)]
    pub data_from: Option<String>,
    #[serde(default)]
    pub data_default: Option<String>,
    #[serde(default)]
    pub data_if: Option<String>,
    #[serde(default)]
    pub data_if_value: Option<String>,
    /// The database dump: `{datasource}` (from `datasource_from` in the
    /// config) and `{out}` expand.
    #[serde(default)]
    pub dump: Vec<String>,
    /// Restores such a dump (`rollback --restore-database`): `{datasource}`
    /// and `{dump}` expand.
    #[serde(default)]
    pub restore: Vec<String>,
    #[serde(default)]
    pub datasource_from: Option<String>,
    /// Asks the database for its version (`{datasource}` expands).
    #[serde(default)]
    pub database_version: Vec<String>,
}

fn is_version(s: &str) -> bool {
    let s = s.strip_prefix('v').unwrap_or(s);
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

impl ReleaseSpec {
    /// Every check the loader makes; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !self.dir.starts_with('/') || !is_clean_relative(self.dir.trim_start_matches('/')) {
            return Err(format!(
                "release.dir: '{}' must be a clean absolute path",
                self.dir
            ));
        }
        let rel = |field: &str, p: &str| {
            if is_clean_relative(p) {
                Ok(())
            } else {
                Err(format!(
                    "{field}: '{p}' must be a relative path without '..'"
                ))
            }
        };
        rel("release.top", &self.top)?;
        rel("release.config", &self.config)?;
        if self.version.is_empty() {
            return Err("release.version: needs at least one source".into());
        }
        for v in &self.version {
            rel("release.version.file", &v.file)?;
        }
        for p in self
            .binaries
            .iter()
            .chain(&self.required)
            .chain(&self.allow_setid)
            .chain(&self.preserve)
        {
            rel("release paths", p)?;
        }
        for m in &self.modes {
            rel("release.modes.path", &m.path)?;
            if u32::from_str_radix(&m.mode, 8).map_or(true, |v| v > 0o7777) {
                return Err(format!("release.modes: '{}' is not an octal mode", m.mode));
            }
        }
        for c in &self.capabilities {
            rel("release.capabilities.path", &c.path)?;
            if !c.caps.contains('=') {
                return Err(format!(
                    "release.capabilities: '{}' is not in setcap form",
                    c.caps
                ));
            }
        }
        if let Some(o) = &self.owner {
            if o.split(':').count() != 2 || o.split(':').any(str::is_empty) {
                return Err(format!("release.owner: '{o}' is not USER:GROUP"));
            }
        }
        if self.max_entry_bytes == 0 || self.max_total_bytes < self.max_entry_bytes {
            return Err(
                "release.max_entry_bytes / max_total_bytes: need 0 < entry <= total".into(),
            );
        }
        if !self.services.is_empty() && (self.stop.is_empty() || self.start.is_empty()) {
            return Err("release.stop and release.start are needed with services".into());
        }
        if let Some(h) = &self.health {
            if !h.path.starts_with('/') {
                return Err(format!(
                    "release.health.path: '{}' must start with '/'",
                    h.path
                ));
            }
            if h.json_field.is_some() != h.json_value.is_some() {
                return Err("release.health: json_field and json_value go together".into());
            }
            if h.timeout_ms == 0 {
                return Err("release.health.timeout_ms: must be positive".into());
            }
        }
        let p = &self.policy;
        for s in &p.required_stops {
            for v in [&s.from_below, &s.to_at_least, &s.via] {
                if !is_version(v) {
                    return Err(format!(
                        "release.policy.required_stops: '{v}' is not a version"
                    ));
                }
            }
        }
        for v in &p.esr {
            if !is_version(v) {
                return Err(format!("release.policy.esr: '{v}' is not a version"));
            }
        }
        for d in &p.database_minimum {
            for v in [&d.from, &d.minimum] {
                if !is_version(v) {
                    return Err(format!(
                        "release.policy.database_minimum: '{v}' is not a version"
                    ));
                }
            }
        }
        let b = &self.backup;
        if let Some(d) = &b.dir {
            if !d.starts_with('/') {
                return Err(format!("release.backup.dir: '{d}' must be absolute"));
            }
        }
        if b.keep == Some(0) {
            return Err("release.backup.keep: must be at least 1".into());
        }
        if b.data_if.is_some() != b.data_if_value.is_some() {
            return Err("release.backup: data_if and data_if_value go together".into());
        }
        if !b.dump.is_empty() && b.datasource_from.is_none() {
            return Err("release.backup.dump needs datasource_from".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_field() {
        let ok = r#"
dir = "/opt/x"
top = "x"
config = "config/config.json"
version = [{ file = "VERSION" }]
max_entry_bytes = 10
max_total_bytes = 100
"#;
        let s: ReleaseSpec = toml::from_str(ok).unwrap();
        s.validate().unwrap();
        for (bad, field) in [
            ("top = \"../x\"", "release.top"),
            ("preserve = [\"/abs\"]", "release paths"),
            ("modes = [{ path = \"a\", mode = \"999\" }]", "release.modes"),
            ("policy = { required_stops = [{ from_below = \"5.x\", to_at_least = \"7\", via = \"5.37\" }] }", "required_stops"),
            ("services = [\"x\"]", "release.stop"),
        ] {
            let text = ok.replace("top = \"x\"", if bad.starts_with("top") { bad } else { "top = \"x\"" });
            let text = if bad.starts_with("top") { text } else { format!("{text}{bad}\n") };
            let s: ReleaseSpec = toml::from_str(&text).unwrap();
            let e = s.validate().unwrap_err();
            assert!(e.contains(field), "{bad}: {e}");
        }
    }
}
