//! Warning before an upgrade undoes local work, and saying so after it did.
//!
//! A *finding* is a binary in a path a package owns that is not what that
//! package put there (its checksum differs, or its edition is not the one
//! the package ships): the next upgrade or reinstall of the package puts the
//! package's binary back. A *revert* is a finding that already happened: the
//! edition recorded last time (`ROOT/var/lib/upkeep/editions.json`) is not
//! the edition found now.

use crate::detect::{self, Install, Options, Report, System};
use crate::embedded;
use crate::plugin::{self, Edition, Plugin};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use upkeep_pkg::version::{compare_deb, ProductVersion};
use upkeep_sys::error::{Error, Result};
use upkeep_sys::root::SysRoot;
use upkeep_sys::safe;
use upkeep_sys::state::{self, Lock};

pub const CONFIG: &str = "/etc/upkeep/upkeep.toml";
const RECORDS: &str = "editions.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Warn,
    Block,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductPolicy {
    /// A package action that would revert a local change: warn or block.
    #[serde(default)]
    pub on_revert: Option<Policy>,
    /// A downgrade: block or warn (default: the manifest's).
    #[serde(default)]
    pub on_downgrade: Option<Policy>,
}

/// `ROOT/etc/upkeep/upkeep.toml`; every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub product: BTreeMap<String, ProductPolicy>,
}

impl Config {
    pub fn load(root: &SysRoot) -> Result<Config> {
        let path = root.path(CONFIG);
        // Non-blocking and bounded: a FIFO here must never hang apt.
        let Some(text) = safe::read_to_string(root, CONFIG, safe::limit::CONFIG)? else {
            return Ok(Config::default());
        };
        toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| 1 + text[..s.start.min(text.len())].matches('\n').count());
            Error::bad_input(&path, line, e.message().to_string())
        })
    }

    pub fn on_revert(&self, product: &str) -> Policy {
        self.product
            .get(product)
            .and_then(|p| p.on_revert)
            .unwrap_or(Policy::Warn)
    }

    pub fn on_downgrade(&self, plugin: &Plugin) -> Policy {
        self.product
            .get(plugin.name())
            .and_then(|p| p.on_downgrade)
            .unwrap_or(match plugin.manifest.upgrade.downgrade.as_deref() {
                Some("block") => Policy::Block,
                _ => Policy::Warn,
            })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub product: String,
    pub kind: String,
    pub binary: Option<String>,
    pub edition: Edition,
    /// How people call it ("Enterprise Edition"), per the manifest.
    pub edition_title: String,
    /// Not the edition the package ships.
    pub other_edition: bool,
    pub package: String,
    pub package_version: Option<String>,
    /// "modified" (differs from the package's checksum) or "edition" (not
    /// the edition the package ships).
    pub reason: String,
    pub reverted_by: Vec<String>,
    pub advice: Vec<String>,
}

impl Finding {
    /// The one sentence template of a binary at risk, after `lead` (who
    /// says it: "AT RISK:", "warning: upgrading gitlab-ee will revert",
    /// "warning: a reconfigure may revert"), then what to do.
    pub fn message(&self, lead: &str) -> String {
        let what = if self.other_edition {
            format!(
                "{} {} binary",
                article(&self.edition_title),
                self.edition_title
            )
        } else {
            "a locally replaced binary".to_string()
        };
        let mut s = format!(
            "{lead} {} ({} {}): it is {what} in a path that package {} owns, and {} puts the package's own binary back.",
            self.binary.as_deref().unwrap_or("(unknown path)"),
            self.product,
            self.kind,
            self.package,
            self.reverted_by.join(", or ")
        );
        if !self.advice.is_empty() {
            s.push_str(" What to do: ");
            s.push_str(&self.advice.join("; or "));
            s.push('.');
        }
        s
    }
}

/// "a" or "an" before a title, by its first letter.
fn article(title: &str) -> &'static str {
    match title.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

pub fn findings(report: &Report) -> Vec<Finding> {
    report.installs.iter().filter_map(finding).collect()
}

fn finding(i: &Install) -> Option<Finding> {
    let package = i.manager.package.clone()?;
    let other_edition = i
        .ships_edition
        .as_ref()
        .is_some_and(|shipped| i.edition.is_known() && &i.edition != shipped);
    let reason = match i.modified_from_package {
        Some(true) => "modified",
        _ if other_edition => "edition",
        _ => return None,
    };
    let guard = i.guard.clone().unwrap_or_default();
    let expand = |v: &[String]| {
        v.iter()
            .map(|s| s.replace("{package}", &package))
            .collect::<Vec<_>>()
    };
    let mut reverted_by = expand(&guard.reverted_by);
    if reverted_by.is_empty() {
        reverted_by.push(format!("an upgrade or reinstall of {package}"));
    }
    Some(Finding {
        product: i.product.clone(),
        kind: i.kind.clone(),
        binary: i.binary.as_ref().map(|b| b.path.clone()),
        edition: i.edition.clone(),
        edition_title: i.edition_title.clone(),
        other_edition,
        package_version: i.manager.version.clone(),
        reason: reason.into(),
        reverted_by,
        advice: expand(&guard.advice),
        package,
    })
}

/// What was seen of an install last time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub product: String,
    pub kind: String,
    pub edition: Edition,
    #[serde(default)]
    pub edition_title: String,
    pub version: Option<String>,
    pub package: Option<String>,
    pub package_version: Option<String>,
    pub modified_from_package: Option<bool>,
    pub seen: u64,
    /// A revert reported and not yet converted back or acknowledged
    /// (`upkeep-guard ack`): reported on every check until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted: Option<Revert>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Records {
    #[serde(default)]
    pub installs: BTreeMap<String, Record>,
}

fn key(i: &Install) -> String {
    let at = i
        .binary
        .as_ref()
        .map(|b| b.path.clone())
        .or_else(|| i.dir.clone())
        .unwrap_or_default();
    format!("{}:{at}", i.product)
}

pub fn load_records(root: &SysRoot) -> Result<Records> {
    let Some(dir) = state::existing_private_dir(root, "")? else {
        return Ok(Records::default());
    };
    let path = dir.shown().join(RECORDS);
    match dir.read(
        Path::new(RECORDS),
        safe::Resolve::NoLinks,
        safe::limit::CONFIG,
    )? {
        Some(t) => serde_json::from_slice(&t)
            .map_err(|e| Error::bad_input(&path, Some(e.line()), e.to_string())),
        None => Ok(Records::default()),
    }
}

/// A local change a package action already undid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revert {
    /// Seen for the first time by this run (not recorded before).
    #[serde(default)]
    pub new: bool,
    pub product: String,
    pub binary: Option<String>,
    pub was: Edition,
    pub now: Edition,
    /// How people call them, per the manifest (empty in old records).
    #[serde(default)]
    pub was_title: String,
    #[serde(default)]
    pub now_title: String,
    pub seen: u64,
    pub package: Option<String>,
    pub package_version_before: Option<String>,
    pub package_version_now: Option<String>,
}

impl Revert {
    pub fn message(&self) -> String {
        let ed = |e: &Edition, title: &str| {
            if e.is_known() && !title.is_empty() {
                title.to_string()
            } else if e.is_known() {
                e.to_string()
            } else {
                "a locally replaced binary".to_string()
            }
        };
        let by = match (
            &self.package,
            &self.package_version_before,
            &self.package_version_now,
        ) {
            (Some(p), Some(a), Some(b)) if a != b => {
                format!(" by the upgrade of {p} from {a} to {b}")
            }
            (Some(p), _, Some(b)) => format!(" by {p} {b} (reinstall, upgrade or reconfigure)"),
            _ => String::new(),
        };
        format!(
            "REVERTED: {} ({}) was {} when last seen ({}), and is now {}: it was put back{by}. Data is unharmed; the features of {} are gone until the change is made again. This is reported on every check until then, or until `upkeep-guard ack {}`.",
            self.binary.as_deref().unwrap_or("?"),
            self.product,
            ed(&self.was, &self.was_title),
            state::utc_human(self.seen),
            ed(&self.now, &self.now_title),
            ed(&self.was, &self.was_title),
            self.product
        )
    }
}

/// The reverts of the installs in `report`: new ones and those recorded
/// and neither converted back nor acknowledged.
pub fn reverts_of(root: &SysRoot, report: &Report) -> Result<Vec<Revert>> {
    Ok(reverts(&load_records(root)?, report))
}

fn reverts(records: &Records, report: &Report) -> Vec<Revert> {
    let mut out = Vec::new();
    for i in &report.installs {
        let Some(r) = records.installs.get(&key(i)) else {
            continue;
        };
        if let Some(p) = &r.reverted {
            // Still reported until the change is made again.
            let converted_back = if p.was.is_known() {
                i.edition == p.was
            } else {
                i.modified_from_package == Some(true)
            };
            if !converted_back {
                out.push(Revert {
                    new: false,
                    ..p.clone()
                });
            }
            continue;
        }
        // The edition the package ships replaced a different, recorded one.
        let edition_back = r.edition.is_known()
            && r.edition != i.edition
            && i.ships_edition.as_ref() == Some(&i.edition);
        let local_change_gone =
            r.modified_from_package == Some(true) && i.modified_from_package == Some(false);
        if edition_back || local_change_gone {
            out.push(Revert {
                new: true,
                product: i.product.clone(),
                binary: i.binary.as_ref().map(|b| b.path.clone()),
                was: if edition_back {
                    r.edition.clone()
                } else {
                    Edition::unknown()
                },
                now: if edition_back {
                    i.edition.clone()
                } else {
                    Edition::unknown()
                },
                was_title: if edition_back {
                    r.edition_title.clone()
                } else {
                    String::new()
                },
                now_title: if edition_back {
                    i.edition_title.clone()
                } else {
                    String::new()
                },
                seen: r.seen,
                package: i.manager.package.clone(),
                package_version_before: r.package_version.clone(),
                package_version_now: i.manager.version.clone(),
            });
        }
    }
    out
}

#[derive(Debug, Serialize)]
pub struct Observation {
    pub installs: Vec<Install>,
    pub findings: Vec<Finding>,
    pub reverts: Vec<Revert>,
    pub warnings: Vec<String>,
}

/// Detects every install, compares with what was recorded, and (when
/// `record`) records what is there now.
pub fn observe(root: &SysRoot, opts: &Options, record: bool) -> Result<Observation> {
    let plugins = plugin::load(root)?;
    let all: Vec<&Plugin> = plugins.iter().collect();
    let mut sys = System::open(root)?;
    let report = detect::detect(&mut sys, &all, opts)?;
    let records = load_records(root)?;
    let reverts = reverts(&records, &report);
    let mut warnings = report.warnings.clone();
    if record {
        if let Err(e) = save_records(root, &report, &reverts) {
            warnings.push(format!("could not record what was seen: {e}"));
        }
    }
    Ok(Observation {
        findings: findings(&report),
        installs: report.installs,
        reverts,
        warnings,
    })
}

fn save_records(root: &SysRoot, report: &Report, reverts: &[Revert]) -> Result<()> {
    let _lock = Lock::acquire(root, Duration::from_secs(10))?;
    let mut records = load_records(root)?;
    let now = state::now();
    for i in &report.installs {
        let reverted = reverts
            .iter()
            .find(|r| {
                r.product == i.product && r.binary == i.binary.as_ref().map(|b| b.path.clone())
            })
            .map(|r| Revert {
                new: false,
                ..r.clone()
            });
        records.installs.insert(key(i), record_of(i, now, reverted));
    }
    let dir = state::private_dir(root, "")?;
    let data = serde_json::to_vec_pretty(&records).map_err(|e| Error::Failed(e.to_string()))?;
    state::write_private(&dir, RECORDS, &data)
}

/// Acknowledges the reverts of `product` (at `path`, or all of them), new
/// or recorded: what is there now is recorded as seen, so they are no
/// longer reported. Returns how many there were.
pub fn ack(root: &SysRoot, opts: &Options, product: &str, path: Option<&str>) -> Result<usize> {
    let plugins = plugin::load(root)?;
    let all: Vec<&Plugin> = plugins.iter().collect();
    let mut sys = System::open(root)?;
    let report = detect::detect(&mut sys, &all, opts)?;
    let _lock = Lock::acquire(root, Duration::from_secs(10))?;
    let mut records = load_records(root)?;
    let matching: Vec<Revert> = reverts(&records, &report)
        .into_iter()
        .filter(|r| r.product == product && path.is_none_or(|p| r.binary.as_deref() == Some(p)))
        .collect();
    if matching.is_empty() {
        return Ok(0);
    }
    let now = state::now();
    for i in &report.installs {
        let bin = i.binary.as_ref().map(|b| b.path.clone());
        if matching
            .iter()
            .any(|r| r.product == i.product && r.binary == bin)
        {
            records.installs.insert(key(i), record_of(i, now, None));
        }
    }
    let dir = state::private_dir(root, "")?;
    let data = serde_json::to_vec_pretty(&records).map_err(|e| Error::Failed(e.to_string()))?;
    state::write_private(&dir, RECORDS, &data)?;
    Ok(matching.len())
}

fn record_of(i: &Install, now: u64, reverted: Option<Revert>) -> Record {
    Record {
        product: i.product.clone(),
        kind: i.kind.clone(),
        edition: i.edition.clone(),
        edition_title: i.edition_title.clone(),
        version: i.version.clone(),
        package: i.manager.package.clone(),
        package_version: i.manager.version.clone(),
        modified_from_package: i.modified_from_package,
        seen: now,
        reverted,
    }
}

/// One package action from apt's `Pre-Install-Pkgs` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgAction {
    pub name: String,
    pub old: Option<String>,
    /// `<` upgrade, `>` downgrade or removal, `=` reinstall.
    pub direction: String,
    pub new: Option<String>,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Unpack(String),
    Configure,
    Remove,
}

/// The protocol version and, per package line: line number, name, line.
type Scanned<'a> = (u32, Vec<(usize, &'a str, &'a str)>);

/// Checks the stream's shape cheaply and returns each package line with
/// its package name (architecture qualifier removed): protocol version 2 or
/// 3, `VERSION N`, configuration lines, a blank line, one line per action.
fn scan_hook_stream(text: &str) -> std::result::Result<Scanned<'_>, String> {
    // Lines by memchr: this runs on every apt transaction.
    let mut start = 0;
    let mut lines = memchr::memchr_iter(b'\n', text.as_bytes())
        .chain(std::iter::once(text.len()))
        .map(move |end| {
            let l = text[start.min(end)..end].trim_end_matches('\r');
            start = end + 1;
            l
        })
        .enumerate();
    let version = match lines.next() {
        Some((_, "VERSION 2")) => 2,
        Some((_, "VERSION 3")) => 3,
        Some((_, "")) if text.is_empty() => return Err("empty stream".into()),
        Some((_, l)) => {
            return Err(format!(
                "line 1: expected 'VERSION 2' or 'VERSION 3', got {l:?}"
            ))
        }
        None => return Err("empty stream".into()),
    };
    for (_, l) in lines.by_ref() {
        if l.is_empty() {
            break;
        }
    }
    let spaces = if version == 3 { 8 } else { 4 };
    let mut out = Vec::new();
    for (i, l) in lines {
        if l.is_empty() {
            continue;
        }
        let b = l.as_bytes();
        if memchr::memchr_iter(b' ', b).count() != spaces {
            return Err(format!(
                "line {}: expected {} fields for protocol {version}",
                i + 1,
                spaces + 1
            ));
        }
        let end = memchr::memchr(b' ', b).unwrap_or(b.len());
        let name = &l[..memchr::memchr(b':', &b[..end]).unwrap_or(end)];
        out.push((i + 1, name, l));
    }
    Ok((version, out))
}

fn parse_hook_line(
    version: u32,
    line_no: usize,
    line: &str,
) -> std::result::Result<PkgAction, String> {
    let f: Vec<&str> = line.split(' ').collect();
    let (name, old, dir, new, act) = if version == 3 {
        (f[0], f[1], f[4], f[5], f[8])
    } else {
        (f[0], f[1], f[2], f[3], f[4])
    };
    if !matches!(dir, "<" | ">" | "=") {
        return Err(format!(
            "line {line_no}: direction {dir:?} is not <, > or ="
        ));
    }
    let opt =
        |v: &str| (v != "-" && v != "**CONFIGURE**" && v != "**REMOVE**").then(|| v.to_string());
    Ok(PkgAction {
        name: name.split(':').next().unwrap_or(name).to_string(),
        old: opt(old),
        direction: dir.to_string(),
        new: opt(new),
        action: match act {
            "**CONFIGURE**" => Action::Configure,
            "**REMOVE**" => Action::Remove,
            path => Action::Unpack(path.to_string()),
        },
    })
}

#[derive(Debug, Default)]
pub struct HookOutcome {
    pub messages: Vec<String>,
    pub veto: bool,
}

/// The apt hook. It never fails apt by accident: anything it cannot read is
/// a warning, and only a configured `block` (or a manifest that forbids
/// downgrades) sets `veto`.
pub fn apt_hook(root: &SysRoot, stream: &str) -> HookOutcome {
    let mut out = HookOutcome::default();
    let unreadable = |e: String| {
        format!("warning: apt's hook stream cannot be read ({e}), so this run is not checked.")
    };
    let (version, lines) = match scan_hook_stream(stream) {
        Ok(v) => v,
        Err(e) => {
            out.messages.push(unreadable(e));
            return out;
        }
    };
    // The common case, in microseconds: no package name in this
    // transaction appears anywhere in the manifests.
    match plugin::package_name_candidates(root) {
        Ok(known) if !lines.iter().any(|(_, name, _)| known.contains(name)) => return out,
        _ => {}
    }
    let parsed: std::result::Result<Vec<_>, _> = lines
        .iter()
        .filter(|(_, _, l)| !l.ends_with("**CONFIGURE**"))
        .map(|(n, _, l)| parse_hook_line(version, *n, l))
        .collect();
    let actions = match parsed {
        Ok(a) => a,
        Err(e) => {
            out.messages.push(unreadable(e));
            return out;
        }
    };
    let plugins = match plugin::load(root) {
        Ok(p) => p,
        Err(e) => {
            out.messages.push(format!(
                "warning: the plugin manifests are broken ({e}), so this run is not checked."
            ));
            return out;
        }
    };
    let relevant: Vec<&PkgAction> = actions
        .iter()
        .filter(|a| {
            a.action != Action::Configure && plugins.iter().any(|p| p.manifest.carried_by(&a.name))
        })
        .collect();
    if relevant.is_empty() {
        return out; // the common case: nothing of ours in this transaction
    }
    let (config, may_block) = match Config::load(root) {
        Ok(c) => (c, true),
        Err(e) => {
            out.messages.push(format!(
                "warning: the configuration is broken ({e}), so upkeep only warns and blocks nothing."
            ));
            (Config::default(), false)
        }
    };
    let mut detection: Option<Report> = None;
    let mut reverts_reported = false;
    for a in relevant {
        for p in plugins.iter().filter(|p| p.manifest.carried_by(&a.name)) {
            if let (Some(old), Some(new), Action::Unpack(_)) = (&a.old, &a.new, &a.action) {
                if compare_deb(new, old) == Some(std::cmp::Ordering::Less) {
                    let policy = config.on_downgrade(p);
                    out.messages.push(format!(
                        "{}: {} would be downgraded from {old} to {new}, and {} forbids downgrades because its database schema may have moved on.",
                        if policy == Policy::Block && may_block { "refusing" } else { "warning" },
                        a.name,
                        p.name()
                    ));
                    out.veto |= policy == Policy::Block && may_block;
                }
            }
            host_upgrade_check(root, p, a, &mut out);
        }
        // A package action that replaces what the package owns.
        if detection.is_none() {
            let all: Vec<&Plugin> = plugins.iter().collect();
            match System::open(root)
                .and_then(|mut sys| detect::detect(&mut sys, &all, &Options::default()))
            {
                Ok(r) => detection = Some(r),
                Err(e) => {
                    out.messages.push(format!(
                        "warning: the installs cannot be inspected ({e}), so nothing is checked for reverts."
                    ));
                    return out;
                }
            }
        }
        if let (Some(report), false) = (&detection, reverts_reported) {
            reverts_reported = true;
            if let Ok(records) = load_records(root) {
                for r in reverts(&records, report) {
                    out.messages.push(format!("warning: {}", r.message()));
                }
            }
        }
        if let Some(report) = &detection {
            for f in findings(report).into_iter().filter(|f| f.package == a.name) {
                let verb = match a.action {
                    Action::Remove => "removing",
                    _ if a.direction == "=" => "reinstalling",
                    _ => "upgrading",
                };
                let policy = config.on_revert(&f.product);
                let block = policy == Policy::Block && may_block;
                out.messages.push(f.message(&format!(
                    "{}: {verb} {} will revert",
                    if block { "refusing" } else { "warning" },
                    a.name,
                )));
                out.veto |= block;
            }
        }
    }
    if out.veto {
        out.messages.push(format!(
            "Stopping apt before dpkg runs. To let it through, set on_revert or on_downgrade = \"warn\" for the product in {CONFIG}."
        ));
    }
    out
}

/// A host upgrade across the release that removed an embedded instance,
/// while the host's config still has its settings: the new package's
/// preinst aborts.
fn host_upgrade_check(root: &SysRoot, p: &Plugin, a: &PkgAction, out: &mut HookOutcome) {
    let (Some(old), Some(new)) = (&a.old, &a.new) else {
        return;
    };
    for inst in p
        .manifest
        .installs
        .iter()
        .filter(|i| i.packages.contains(&a.name))
    {
        let Some(emb) = &inst.embedded else {
            continue;
        };
        let (Some(o), Some(n)) = (ProductVersion::parse(old), ProductVersion::parse(new)) else {
            continue;
        };
        if !embedded::upgrade_crosses_removal(emb, &o, &n) {
            continue;
        }
        let Some(config) = &emb.config else {
            continue;
        };
        // What the file means as Ruby computes it (run inside the root),
        // else a static reading.
        let state = upkeep_sys::configfile::ConfigFile::open(root, config).and_then(|f| {
            let rb = upkeep_formats::gitlab_rb::GitlabRb::parse(&f.real, f.text.clone())?;
            let evaluated = inst
                .host
                .as_ref()
                .and_then(|h| crate::rb_eval::Ruby::find(root, h))
                .and_then(|r| r.evaluate(&[&f.text]).ok())
                .and_then(|mut v| v.pop());
            match evaluated {
                Some(ev) => embedded::state_from_eval(&rb, emb, &ev, &f.real),
                None => embedded::state(&rb, emb),
            }
        });
        match state {
            Ok(st) => {
                if embedded::upgrade_aborts(emb, &st, &n) {
                    out.messages.push(format!(
                        "warning: upgrading {} from {old} to {new} will fail, because {config} still has active {} settings ({}), so the package's preinst will abort. Run `upkeep-embedded disable --for-upgrade {}` first.",
                        a.name,
                        emb.setting.as_deref().unwrap_or(p.name()),
                        st.active_settings.join("; "),
                        p.name()
                    ));
                }
            }
            Err(e) => out.messages.push(format!(
                "warning: {config} cannot be read to check the upgrade ({e})."
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;

    fn a_finding() -> Finding {
        Finding {
            product: "mattermost".into(),
            kind: "gitlab-omnibus".into(),
            binary: Some("/opt/gitlab/embedded/bin/mattermost".into()),
            edition: Edition::from("enterprise"),
            edition_title: "Enterprise Edition".into(),
            other_edition: true,
            package: "gitlab-ee".into(),
            package_version: Some("18.11.1-ee.0".into()),
            reason: "edition".into(),
            reverted_by: vec![
                "an upgrade or reinstall of gitlab-ee".into(),
                "gitlab-ctl reconfigure (per Mattermost's documentation)".into(),
            ],
            advice: vec![
                "move to a standalone server".into(),
                "re-run the conversion".into(),
            ],
        }
    }

    #[test]
    fn every_finding_template_is_a_full_sentence() {
        let f = a_finding();
        let tail = "/opt/gitlab/embedded/bin/mattermost (mattermost gitlab-omnibus): it is an Enterprise Edition binary in a path that package gitlab-ee owns, and an upgrade or reinstall of gitlab-ee, or gitlab-ctl reconfigure (per Mattermost's documentation) puts the package's own binary back. What to do: move to a standalone server; or re-run the conversion.";
        assert_eq!(f.message("AT RISK:"), format!("AT RISK: {tail}"));
        assert_eq!(
            f.message("warning: upgrading gitlab-ee will revert"),
            format!("warning: upgrading gitlab-ee will revert {tail}")
        );
        assert_eq!(
            f.message("warning: a reconfigure may revert"),
            format!("warning: a reconfigure may revert {tail}")
        );
        let local = Finding {
            edition: Edition::from("team"),
            edition_title: "Team Edition".into(),
            other_edition: false,
            reason: "modified".into(),
            advice: Vec::new(),
            reverted_by: vec!["an upgrade or reinstall of mattermost".into()],
            ..a_finding()
        };
        assert_eq!(
            local.message("AT RISK:"),
            "AT RISK: /opt/gitlab/embedded/bin/mattermost (mattermost gitlab-omnibus): it is a locally replaced binary in a path that package gitlab-ee owns, and an upgrade or reinstall of mattermost puts the package's own binary back."
        );
        let r = Revert {
            new: true,
            product: "mattermost".into(),
            binary: Some("/opt/gitlab/embedded/bin/mattermost".into()),
            was: Edition::from("enterprise"),
            now: Edition::from("team"),
            was_title: "Enterprise Edition".into(),
            now_title: "Team Edition".into(),
            seen: 0,
            package: Some("gitlab-ee".into()),
            package_version_before: Some("18.11.1-ee.0".into()),
            package_version_now: Some("18.11.2-ee.0".into()),
        };
        assert_eq!(
            r.message(),
            format!("REVERTED: /opt/gitlab/embedded/bin/mattermost (mattermost) was Enterprise Edition when last seen ({}), and is now Team Edition: it was put back by the upgrade of gitlab-ee from 18.11.1-ee.0 to 18.11.2-ee.0. Data is unharmed; the features of Enterprise Edition are gone until the change is made again. This is reported on every check until then, or until `upkeep-guard ack mattermost`.", state::utc_human(0))
        );
    }

    /// Parses a whole stream (protocol 2 or 3).
    fn parse_hook_stream(text: &str) -> std::result::Result<Vec<PkgAction>, String> {
        let (version, lines) = scan_hook_stream(text)?;
        lines
            .into_iter()
            .map(|(n, _, l)| parse_hook_line(version, n, l))
            .collect()
    }

    #[test]
    fn v3_stream() {
        let s = "VERSION 3\nAPT::Architecture=amd64\nDPkg::Tools::Options::x::Version=3\n\ngitlab-ee 1.0-1 all none < 2.0-1 all none /var/cache/apt/archives/gitlab-ee_2.0-1_all.deb\ngitlab-ee 1.0-1 all none < 2.0-1 all none **CONFIGURE**\nfoo:amd64 1.0 amd64 same > - - none **REMOVE**\nbar - - none < 1 all none /x.deb\n";
        let a = parse_hook_stream(s).unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a[0].old.as_deref(), Some("1.0-1"));
        assert_eq!(
            a[0].action,
            Action::Unpack("/var/cache/apt/archives/gitlab-ee_2.0-1_all.deb".into())
        );
        assert_eq!(a[1].action, Action::Configure);
        assert_eq!(
            (a[2].name.as_str(), a[2].new.as_deref(), &a[2].action),
            ("foo", None, &Action::Remove)
        );
        assert_eq!(a[3].old, None);
    }

    #[test]
    fn v2_and_garbage() {
        let a = parse_hook_stream("VERSION 2\nX=1\n\ngitlab-ee 1.0 < 2.0 /x.deb\n").unwrap();
        assert_eq!(a[0].new.as_deref(), Some("2.0"));
        assert!(parse_hook_stream("").is_err());
        assert!(parse_hook_stream("garbage\n").is_err());
        assert!(parse_hook_stream("VERSION 3\n\nonly three fields\n")
            .unwrap_err()
            .contains("line 3"));
        assert!(parse_hook_stream("VERSION 3\n\na 1 all none ? 2 all none /x\n").is_err());
    }
}
