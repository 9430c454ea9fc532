//! apt's Pre-Install-Pkgs hook: what a transaction would do to a product.
use super::*;

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
/// The package manager that ran the hook (the dnf plugin and the dnf5
/// action speak apt's protocol too): the veto names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Caller {
    #[default]
    Apt,
    Dnf,
}

impl Caller {
    fn stopping(self) -> &'static str {
        match self {
            Caller::Apt => "Stopping apt before dpkg runs.",
            Caller::Dnf => "Stopping dnf before rpm runs the transaction.",
        }
    }
}

pub fn apt_hook(root: &SysRoot, stream: &[u8], caller: Caller) -> HookOutcome {
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
            "warning: apt's hook stream, {p}. That line is skipped; the others are checked."
        ));
    }
    if scan.problems.len() > MAX_LINE_WARNINGS {
        out.messages.push(format!(
            "warning: apt's hook stream has {} more bad lines, skipped as well.",
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
            "{} To let it through, set on_revert or on_downgrade = \"warn\" for the product in {CONFIG}.",
            caller.stopping()
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
                        "{}: {what}, and {} forbids downgrades because its database schema may have moved on.",
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
