//! The plan: everything read and checked, nothing written.

use crate::archive::{self, Checked};
use crate::jsonedit::{self, Setting};
use crate::policy::{self, Refusal};
use crate::{read_config, Release};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use upkeep_pkg::version::ProductVersion;
use upkeep_sys::{Error, Result};

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub touches: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub product: String,
    pub dir: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Every version the chain goes through, in order.
    pub chain: Vec<String>,
    pub refused: Option<Refusal>,
    /// Required stops on the way from `from` to `to`.
    pub stops: Vec<String>,
    pub steps: Vec<Step>,
    /// Paths kept from the old tree (relative to the install directory).
    pub preserve: Vec<String>,
    /// Files in the old tree that nothing declares: kept and reported.
    pub unknown: Vec<String>,
    /// Whether the data directory is backed up (only with local storage).
    pub backup_data: Option<String>,
    pub backup_database: bool,
    pub warnings: Vec<String>,
}

/// What the plan read, for `apply` to act on.
#[derive(Debug)]
pub struct Inputs {
    pub archives: Vec<Checked>,
    pub config_text: String,
    pub config: serde_json::Value,
    pub config_path: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub settings: Vec<Setting>,
    pub skip_db_backup: bool,
}

/// The preserved paths that exist in `tree`: the manifest's, then those
/// config.json points to inside the tree, each once, outermost only.
pub fn preserved(rel: &Release, config: &serde_json::Value, tree: &Path) -> Vec<String> {
    let mut all: Vec<String> = rel.spec.preserve.clone();
    for key in &rel.spec.preserve_from_config {
        if let Some(p) =
            jsonedit::get_str(config, key).and_then(|v| crate::inside_tree(&rel.spec, v))
        {
            all.push(p);
        }
    }
    let mut out: Vec<String> = Vec::new();
    for p in all {
        if !crate::fsops::exists(&rel.root, &tree.join(&p)) {
            continue;
        }
        if out
            .iter()
            .any(|o| p == *o || p.starts_with(&format!("{o}/")))
        {
            continue;
        }
        out.retain(|o| !o.starts_with(&format!("{p}/")));
        out.push(p);
    }
    out
}

/// Old-tree paths that neither release ships nor the manifest preserves;
/// a directory is reported once, not each file in it.
pub fn unknown(
    root: &upkeep_sys::SysRoot,
    tree: &Path,
    known: &BTreeSet<String>,
    preserve: &[String],
) -> Vec<String> {
    fn walk(
        root: &upkeep_sys::SysRoot,
        dir: &Path,
        rel: &str,
        known: &BTreeSet<String>,
        preserve: &[String],
        out: &mut Vec<String>,
    ) {
        let Ok(entries) = crate::fsops::entries(root, dir) else {
            return;
        };
        for (n, kind) in entries {
            let n = n.to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                n.clone()
            } else {
                format!("{rel}/{n}")
            };
            if preserve.contains(&r) {
                continue;
            }
            if !known.contains(&r) {
                out.push(r);
                continue;
            }
            if kind == upkeep_sys::safe::Kind::Dir {
                walk(root, &dir.join(&n), &r, known, preserve, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, tree, "", known, preserve, &mut out);
    out
}

/// The file list upkeep recorded for the installed release, if any.
pub fn recorded_files(rel: &Release) -> BTreeSet<String> {
    let p = rel
        .root
        .path(upkeep_sys::state::STATE_DIR)
        .join(crate::apply::RELEASES)
        .join(format!("{}.files", rel.product));
    crate::fsops::read(&rel.root, &p)
        .ok()
        .flatten()
        .map(|t| {
            String::from_utf8_lossy(&t)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Asks the database for its version with the manifest's command.
fn database_version(
    rel: &Release,
    config: &serde_json::Value,
) -> std::result::Result<ProductVersion, String> {
    let b = &rel.spec.backup;
    let ds = b
        .datasource_from
        .as_deref()
        .and_then(|k| jsonedit::get_str(config, k))
        .ok_or("no data source in the config")?;
    let argv = crate::apply::database_argv(&b.database_version, ds, "")?;
    let (prog, args) = argv.split_first().ok_or("no database_version command")?;
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args);
    let out = upkeep_sys::process::run_with_timeout(&mut cmd, None, Duration::from_secs(20))
        .map_err(|e| format!("{prog}: {e}"))?
        .ok_or_else(|| format!("{prog}: timed out"))?;
    if !out.status.success() {
        return Err(format!(
            "{prog}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.split_whitespace().next().unwrap_or_default();
    ProductVersion::parse(first).ok_or_else(|| format!("{prog} printed '{}'", text.trim()))
}

/// The install directory must be a directory: a swap by rename would turn
/// a link (to a bigger volume, say) into a directory and move the data
/// off the volume it was put on.
fn install_is_a_link(rel: &Release, target: &Path) -> Option<policy::Refusal> {
    let st = crate::fsops::lstat(&rel.root, target).ok()??;
    (upkeep_sys::safe::Kind::of(&st) == upkeep_sys::safe::Kind::Symlink).then(|| policy::Refusal {
        rule: "install-is-a-link".into(),
        message: format!(
            "{} is a symbolic link: an upgrade swaps the install directory by rename and would replace the link with a directory. Set `dir` in the [release] section of a local manifest (/etc/upkeep/plugins.d/{}.toml) to the real directory, or upgrade by hand",
            rel.spec.dir, rel.product
        ),
    })
}

/// The data directory setting's value, empty meaning the default
/// (`./data/` for Mattermost), with the key it was read from.
fn data_setting<'a>(rel: &'a Release, config: &'a serde_json::Value) -> Option<(&'a str, &'a str)> {
    let b = &rel.spec.backup;
    let key = b.data_from.as_deref().unwrap_or("the data directory");
    let v = b
        .data_from
        .as_deref()
        .and_then(|k| jsonedit::get_str(config, k))
        .filter(|v| !v.trim().is_empty())
        .or(b.data_default.as_deref())?;
    Some((key, v))
}

/// Whether local storage is on, so that the data directory is backed up.
fn data_is_local(rel: &Release, config: &serde_json::Value) -> bool {
    let b = &rel.spec.backup;
    match (&b.data_if, &b.data_if_value) {
        (Some(k), Some(want)) => jsonedit::get_str(config, k) == Some(want.as_str()),
        _ => true,
    }
}

/// Refuses (65) a data directory that is the install directory itself, a
/// directory above it, or `/`: backing it up or keeping it would copy or
/// move the whole install, or the whole root.
pub fn check_data_dir(rel: &Release, config: &serde_json::Value, config_path: &Path) -> Result<()> {
    if !data_is_local(rel, config) {
        return Ok(());
    }
    let Some((key, v)) = data_setting(rel, config) else {
        return Ok(());
    };
    if let crate::Place::TreeOrAbove(at) = crate::place(&rel.spec, v) {
        return Err(Error::bad_input(
            config_path,
            None,
            format!(
                "{key} = {v:?} leads to {at}, the install directory {} itself or a directory above it: backing it up or keeping it would copy or move the whole install (or root). Nothing was changed: set {key} to the data directory ({})",
                rel.spec.dir,
                rel.spec.backup.data_default.as_deref().unwrap_or("./data/")
            ),
        ));
    }
    Ok(())
}

/// Whether the data directory is to be backed up, and which it is.
pub fn data_to_back_up(rel: &Release, config: &serde_json::Value, tree: &Path) -> Option<PathBuf> {
    if !data_is_local(rel, config) {
        return None;
    }
    let (_, v) = data_setting(rel, config)?;
    let p = match crate::place(&rel.spec, v) {
        crate::Place::Inside(inside) => tree.join(inside),
        crate::Place::Outside(abs) => rel.root.path(abs),
        crate::Place::TreeOrAbove(_) => return None,
    };
    if crate::fsops::is_dir(&rel.root, &p) {
        return Some(p);
    }
    // A link (the data moved to a bigger disk): the directory it names,
    // resolved inside the root, is what holds the data.
    let inside = p.strip_prefix(rel.root.dir()).ok()?;
    let real = upkeep_sys::safe::resolve_inside(&rel.root, inside).ok()??;
    let real = rel.root.path(real);
    crate::fsops::is_dir(&rel.root, &real).then_some(real)
}

/// Reads the installed tree, its config and every archive; decides.
pub fn plan(rel: &Release, archives: &[PathBuf], opts: &Options) -> Result<(Plan, Inputs)> {
    let target = rel.target();
    let config_path = rel.config_path(&target);
    let from = rel.installed_version();
    if from.is_none() && !crate::fsops::exists(&rel.root, &target) {
        return Err(crate::not_installed(
            &rel.product,
            &rel.root,
            format!(
                "{} is not there (for a first install: upkeep-upgrade install {} ARCHIVE)",
                rel.spec.dir, rel.product
            ),
        ));
    }
    crate::refuse_linked_config(rel, &target)?;
    let (config_text, config) = read_config(&rel.root, &config_path)?;
    check_data_dir(rel, &config, &config_path)?;
    let mut edited = config_text.clone();
    for s in &opts.settings {
        edited = jsonedit::set(&edited, s)
            .map_err(|e| Error::Usage(format!("--set {}: {e}", s.key.join("."))))?;
    }
    let mut checked = archives
        .iter()
        .map(|a| archive::check(&rel.spec, a))
        .collect::<Result<Vec<_>>>()?;
    let ver = |s: &str| ProductVersion::parse(s);
    for c in &checked {
        if ver(&c.version).is_none() {
            return Err(Error::bad_input(
                &c.path,
                None,
                format!("'{}' is not a version", c.version),
            ));
        }
    }
    checked.sort_by_key(|c| ver(&c.version));
    let chain: Vec<String> = checked.iter().map(|c| c.version.clone()).collect();
    let to = chain.last().cloned();
    let mut refused = None;
    let mut warnings = Vec::new();
    let mut stops = Vec::new();
    match &from {
        None => warnings.push(format!(
            "the installed version could not be read from {}",
            target.display()
        )),
        Some(f) => {
            let Some(fv) = ver(f) else {
                return Err(Error::bad_input(
                    &target,
                    None,
                    format!("installed version '{f}' is not a version"),
                ));
            };
            if let Some(tv) = to.as_deref().and_then(ver) {
                stops = policy::stops_between(&rel.spec.policy, &fv, &tv);
            }
            let mut cur = fv;
            for c in &checked {
                let Some(next) = ver(&c.version) else {
                    continue;
                };
                match policy::check_step(&rel.spec.policy, &rel.product, &cur, &next) {
                    Ok(w) => warnings.extend(w),
                    Err(r) => {
                        refused = Some(r);
                        break;
                    }
                }
                cur = next;
            }
        }
    }
    if refused.is_none() {
        refused = install_is_a_link(rel, &target);
    }
    if refused.is_none() {
        if let Some(tv) = to.as_deref().and_then(ver) {
            if let Some((db, min)) = policy::database_minimum(&rel.spec.policy, &tv) {
                if rel.spec.backup.database_version.is_empty() {
                    warnings.push(format!(
                        "{} {} needs {db} {min} or newer: check it yourself",
                        rel.product, tv.raw
                    ));
                } else {
                    match database_version(rel, &config) {
                        Ok(have) => {
                            if let Err(r) = policy::check_database(&rel.spec.policy, &rel.product, &tv, &have) {
                                refused = Some(r);
                            }
                        }
                        Err(e) => warnings.push(format!(
                            "{} {} needs {db} {min} or newer, and the database's version could not be read: {e}",
                            rel.product, tv.raw
                        )),
                    }
                }
            }
        }
    }
    let preserve = preserved(rel, &config, &target);
    let mut known = recorded_files(rel);
    for c in &checked {
        known.extend(c.names().into_iter().map(str::to_string));
    }
    let unknown = unknown(&rel.root, &target, &known, &preserve);
    let backup_data = data_to_back_up(rel, &config, &target);
    let backup_database = !rel.spec.backup.dump.is_empty() && !opts.skip_db_backup;
    let dir = rel.spec.dir.clone();
    let backup_dir = rel.backup_base().display().to_string();
    let mut steps = vec![
        Step {
            name: "preflight".into(),
            touches: vec![],
        },
        Step {
            name: "backup".into(),
            touches: [
                Some(format!("{backup_dir} <- {}", rel.spec.config)),
                backup_data
                    .as_ref()
                    .map(|d| format!("{backup_dir} <- {}", d.display())),
                backup_database.then(|| format!("{backup_dir} <- database dump")),
            ]
            .into_iter()
            .flatten()
            .collect(),
        },
    ];
    for v in &chain {
        steps.push(Step {
            name: format!("stage {v}"),
            touches: vec![rel.stage().display().to_string()],
        });
        steps.push(Step {
            name: "stop".into(),
            touches: rel.spec.services.clone(),
        });
        steps.push(Step {
            name: "swap".into(),
            touches: vec![dir.clone(), rel.stage().display().to_string()],
        });
        steps.push(Step {
            name: "restore".into(),
            touches: preserve
                .iter()
                .chain(&unknown)
                .map(|p| format!("{dir}/{p}"))
                .collect(),
        });
        steps.push(Step {
            name: "overrides".into(),
            touches: if opts.settings.is_empty() {
                vec![]
            } else {
                vec![format!("{dir}/{}", rel.spec.config)]
            },
        });
        steps.push(Step {
            name: "ownership".into(),
            touches: rel
                .spec
                .owner
                .iter()
                .map(|o| format!("{dir} (files of the release) -> {o}"))
                .collect(),
        });
        steps.push(Step {
            name: "capabilities".into(),
            touches: rel
                .spec
                .capabilities
                .iter()
                .map(|c| format!("{dir}/{} = {}", c.path, c.caps))
                .collect(),
        });
        steps.push(Step {
            name: "start".into(),
            touches: rel.spec.services.clone(),
        });
        steps.push(Step {
            name: "verify".into(),
            touches: rel
                .spec
                .health
                .iter()
                .map(|h| format!("GET {}", h.path))
                .collect(),
        });
    }
    let plan = Plan {
        product: rel.product.clone(),
        dir,
        from,
        to,
        chain,
        refused,
        stops,
        steps,
        preserve,
        unknown,
        backup_data: backup_data.map(|d| d.display().to_string()),
        backup_database,
        warnings,
    };
    Ok((
        plan,
        Inputs {
            archives: checked,
            config_text,
            config,
            config_path,
        },
    ))
}
