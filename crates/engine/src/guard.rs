//! Warning before an upgrade undoes local work, and saying so after it did.
//!
//! A *finding* is a binary in a path a package owns that is not what that
//! package put there (its checksum differs, or its edition is not the one
//! the package ships): the next upgrade or reinstall of the package puts the
//! package's binary back. A *revert* is a finding that already happened: the
//! edition recorded last time (`ROOT/var/lib/upkeep/editions.json`) is not
//! the edition found now.

use crate::context::Context;
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
    /// Why it is at risk.
    /// the edition the package ships).
    pub reason: Risk,
    pub reverted_by: Vec<String>,
    pub advice: Vec<String>,
}

/// Why a binary is at risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Its content differs from the package's checksum.
    Modified,
    /// It is not the edition the package ships.
    Edition,
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
        Some(true) => Risk::Modified,
        _ if other_edition => Risk::Edition,
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
        reason,
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
    let report = Context::open(root)?.detect(&[], opts)?;
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
    let report = Context::open(root)?.detect(&[], opts)?;
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
    /// Its line in the stream.
    pub line: usize,
    pub name: String,
    pub old: Option<String>,
    pub direction: Direction,
    pub new: Option<String>,
    pub action: Action,
}

/// Which way a package's version goes in apt's hook stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `<`: an upgrade (or a first install).
    Up,
    /// `>`: a downgrade, or a removal.
    Down,
    /// `=`: a reinstall.
    Same,
}

impl Direction {
    /// The scanner accepts only `<`, `>` and `=`.
    fn of(b: u8) -> Direction {
        match b {
            b'>' => Direction::Down,
            b'=' => Direction::Same,
            _ => Direction::Up,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Unpack(String),
    Configure,
    Remove,
}

/// A well-formed stream line as an action. Its name is ASCII (the scanner
/// checked); any other field may hold any bytes (a local .deb path in
/// Latin-1), shown lossily.
fn action_of(l: &upkeep_hookscan::Line<'_>) -> PkgAction {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let opt =
        |b: &[u8]| (b != b"-" && b != b"**CONFIGURE**" && b != b"**REMOVE**").then(|| text(b));
    PkgAction {
        line: l.no,
        name: text(l.name),
        old: opt(l.old),
        direction: Direction::of(l.direction),
        new: opt(l.new),
        action: match l.action {
            b"**CONFIGURE**" => Action::Configure,
            b"**REMOVE**" => Action::Remove,
            path => Action::Unpack(text(path)),
        },
    }
}

/// Parses a whole stream (protocol 2 or 3): the actions of the good lines
/// and one message per bad line.
pub fn parse_hook_stream(stream: &[u8]) -> (Vec<PkgAction>, Vec<String>) {
    let scan = upkeep_hookscan::scan(stream);
    (scan.lines.iter().map(action_of).collect(), scan.problems)
}

#[derive(Debug, Default)]
pub struct HookOutcome {
    pub messages: Vec<String>,
    pub veto: bool,
}

/// At most this many bad lines are named one by one.
const MAX_LINE_WARNINGS: usize = 10;

/// The apt hook. It never fails apt by accident: anything it cannot read is
/// a warning, and only a configured `block` (or a manifest that forbids
/// downgrades) sets `veto`. The stream is read line by line: a bad line is
/// reported and skipped, and every good line is still checked.
pub fn apt_hook(root: &SysRoot, stream: &[u8]) -> HookOutcome {
    let mut out = HookOutcome::default();
    let scan = upkeep_hookscan::scan(stream);
    if scan.lines.is_empty() && !scan.problems.is_empty() {
        out.messages.push(format!(
            "warning: apt's hook stream cannot be read ({}), so this run is not checked.",
            scan.problems.join("; ")
        ));
        return out;
    }
    for p in scan.problems.iter().take(MAX_LINE_WARNINGS) {
        out.messages.push(format!(
            "warning: apt's hook stream, {p}: that line is skipped; the other lines are checked."
        ));
    }
    if scan.problems.len() > MAX_LINE_WARNINGS {
        out.messages.push(format!(
            "warning: apt's hook stream has {} more bad lines, all skipped.",
            scan.problems.len() - MAX_LINE_WARNINGS
        ));
    }
    // The common case, in microseconds: no package name in this
    // transaction appears anywhere in the manifests.
    match plugin::package_name_candidates(root) {
        Ok(known)
            if !scan
                .lines
                .iter()
                .any(|l| known.contains(std::str::from_utf8(l.name).unwrap_or_default())) =>
        {
            return out
        }
        _ => {}
    }
    let actions: Vec<PkgAction> = scan
        .lines
        .iter()
        .filter(|l| l.action != b"**CONFIGURE**")
        .map(action_of)
        .collect();
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
        .filter(|a| plugins.iter().any(|p| p.manifest.carried_by(&a.name)))
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
    for p in &plugins {
        check_downgrades(p, &relevant, &config, may_block, &mut out);
    }
    let mut detection: Option<Report> = None;
    let mut reverts_reported = false;
    for a in relevant {
        for p in plugins.iter().filter(|p| p.manifest.carried_by(&a.name)) {
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
                    break;
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
                    _ if a.direction == Direction::Same => "reinstalling",
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

/// The packages of a product whose versions compare with each other: each
/// install kind's packages together (`tegu` and `tegu-ent`; `gitlab-ce` and
/// `gitlab-ee`), and every other package of the product on its own (a
/// standalone Mattermost's version says nothing about GitLab's).
fn version_groups(p: &Plugin) -> Vec<Vec<&str>> {
    let mut groups: Vec<Vec<&str>> = p
        .manifest
        .installs
        .iter()
        .filter(|i| !i.packages.is_empty())
        .map(|i| i.packages.iter().map(String::as_str).collect())
        .collect();
    for pkg in &p.manifest.packages {
        if !groups.iter().any(|g| g.contains(&pkg.as_str())) {
            groups.push(vec![pkg.as_str()]);
        }
    }
    groups
}

/// A downgrade of the product, however it is spelled: one package going
/// down, one package swapped for another that carries the product at an
/// older version (`tegu-ent 3.2.0` removed, `tegu 3.1.0` installed), or a
/// removal and an older install in the same run. Every version being
/// installed is compared with the newest version of the product that the
/// run replaces or removes, across every package that carries it.
fn check_downgrades(
    p: &Plugin,
    actions: &[&PkgAction],
    config: &Config,
    may_block: bool,
    out: &mut HookOutcome,
) {
    use std::cmp::Ordering::{Greater, Less};
    for group in version_groups(p) {
        let in_group: Vec<&PkgAction> = actions
            .iter()
            .copied()
            .filter(|a| group.contains(&a.name.as_str()))
            .collect();
        let mut newest: Option<(&str, &str)> = None;
        for a in &in_group {
            if let Some(old) = a.old.as_deref() {
                if newest.is_none_or(|(_, n)| compare_deb(old, n) == Some(Greater)) {
                    newest = Some((&a.name, old));
                }
            }
        }
        let Some((from_pkg, from)) = newest else {
            continue;
        };
        for a in &in_group {
            let (Some(new), Action::Unpack(_)) = (a.new.as_deref(), &a.action) else {
                continue;
            };
            match compare_deb(new, from) {
                Some(Less) => {
                    let policy = config.on_downgrade(p);
                    let block = policy == Policy::Block && may_block;
                    let what = if from_pkg == a.name {
                        format!("{} would be downgraded from {from} to {new}", a.name)
                    } else {
                        format!(
                            "{} {new} would replace {from_pkg} {from}: {} would be downgraded from {from} to {new}",
                            a.name,
                            p.name()
                        )
                    };
                    out.messages.push(format!(
                        "{}: {what}; {} forbids downgrades (its schema may have moved on)",
                        if block { "refusing" } else { "warning" },
                        p.name()
                    ));
                    out.veto |= block;
                }
                None => out.messages.push(format!(
                    "warning: apt's hook stream, line {}: cannot compare {} version {new:?} with {from:?}",
                    a.line, a.name
                )),
                _ => {}
            }
        }
    }
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
            let rb = upkeep_formats::ruby_config::RubyConfig::parse(&f.real, f.text.clone())?;
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
            reason: Risk::Edition,
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
            reason: Risk::Modified,
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

    #[test]
    fn v3_stream() {
        let s = "VERSION 3\nAPT::Architecture=amd64\nDPkg::Tools::Options::x::Version=3\n\ngitlab-ee 1.0-1 all none < 2.0-1 all none /var/cache/apt/archives/gitlab-ee_2.0-1_all.deb\ngitlab-ee 1.0-1 all none < 2.0-1 all none **CONFIGURE**\nfoo:amd64 1.0 amd64 same > - - none **REMOVE**\nbar - - none < 1 all none /x.deb\n";
        let (a, bad) = parse_hook_stream(s.as_bytes());
        assert!(bad.is_empty(), "{bad:?}");
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
        let (a, _) = parse_hook_stream(b"VERSION 2\nX=1\n\ngitlab-ee 1.0 < 2.0 /x.deb\n");
        assert_eq!(a[0].new.as_deref(), Some("2.0"));
        assert!(!parse_hook_stream(b"").1.is_empty());
        assert!(!parse_hook_stream(b"garbage\n").1.is_empty());
        let (a, bad) =
            parse_hook_stream(b"VERSION 3\n\nonly three fields\nx - - none < 1 all none /x.deb\n");
        assert!(bad[0].contains("line 3"), "{bad:?}");
        assert_eq!(a.len(), 1, "the good line is kept");
        assert!(
            !parse_hook_stream(b"VERSION 3\n\na 1 all none ? 2 all none /x\n")
                .1
                .is_empty()
        );
    }
}
