//! Upgrades that copy a release's directories over the install instead of
//! replacing the tree (the manifest's `[overlay]`): `bin/*` into
//! `DIR/bin/`, `sbin/*` into `DIR/sbin/`, everything else in `DIR` kept.
//! This module holds the schema and the plan (read everything, write
//! nothing); the version change is classified by [`crate::versioning`] and
//! the manifest's `[preflight]` runs as part of the plan.

use crate::archive::{self, Checked, Kind};
pub use crate::policy::Refusal;
use crate::preflight;
use crate::versioning::{self, Change};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use upkeep_dbcheck::Finding;
use upkeep_engine::release::{ReleaseSpec, ReleaseVersionSource};
use upkeep_sys::{Error, Result, SysRoot};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlaySpec {
    /// The install directory, as seen inside the system.
    pub dir: String,
    /// The archive's file name is PREFIX VERSION - ARCH SUFFIX, and its one
    /// top directory is the name without SUFFIX.
    pub archive_prefix: String,
    #[serde(default = "default_suffix")]
    pub archive_suffix: String,
    /// Where the archive states its version (relative to its top), checked
    /// against the version in its name.
    #[serde(default)]
    pub archive_version_file: Option<String>,
    /// Directories of the archive copied into the install, file by file.
    pub copy: Vec<CopySpec>,
    /// Binaries (relative to the archive top) that must be ELF for this host.
    #[serde(default)]
    pub binaries: Vec<String>,
    /// File capabilities re-applied after the copy (path relative to `dir`).
    #[serde(default)]
    pub capabilities: Vec<CapSpec>,
    #[serde(default)]
    pub services: Vec<String>,
    /// Service control inside the root, `{service}` expands.
    #[serde(default)]
    pub stop: Vec<String>,
    #[serde(default)]
    pub start: Vec<String>,
    #[serde(default)]
    pub is_active: Vec<String>,
    /// The database backup: `{url}` (the database, as in `--db-url`) and
    /// `{out}` expand; `verify` proves the dump readable.
    #[serde(default)]
    pub backup: Option<OverlayBackup>,
    #[serde(default = "default_max_entry")]
    pub max_entry_bytes: u64,
    #[serde(default = "default_max_total")]
    pub max_total_bytes: u64,
}

fn default_suffix() -> String {
    ".tar.gz".into()
}
fn default_max_entry() -> u64 {
    1 << 30
}
fn default_max_total() -> u64 {
    4 << 30
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CopySpec {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CapSpec {
    pub path: String,
    pub caps: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayBackup {
    pub dump: Vec<String>,
    #[serde(default)]
    pub verify: Vec<String>,
    /// For a build-only upgrade (no schema change): `take` the dump all
    /// the same (unless `--skip-db-backup`), or `skip` it. Minor and major
    /// upgrades always take it.
    #[serde(default = "default_build_only")]
    pub build_only: String,
}

fn default_build_only() -> String {
    "take".into()
}

/// One step of the plan: its phase, what it does, and the command lines it
/// will run.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub phase: String,
    pub name: String,
    pub touches: Vec<String>,
    pub commands: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverlayPlan {
    pub product: String,
    pub dir: String,
    pub from: Option<String>,
    pub to: String,
    pub change: Option<Change>,
    /// Why not, with the rule that says so: `same-version`, `downgrade`
    /// or `preflight` (as the release plan's `refused`).
    pub refused: Option<Refusal>,
    pub preflight: Vec<Finding>,
    pub steps: Vec<Step>,
    /// Files of the install that the archive does not carry: kept.
    pub kept: Vec<String>,
    pub warnings: Vec<String>,
}

/// The manifest's `[overlay]`, read and checked.
pub fn spec_of(raw: Option<&toml::Value>, source: &Path) -> Result<Option<OverlaySpec>> {
    let Some(v) = raw else {
        return Ok(None);
    };
    let s: OverlaySpec = v
        .clone()
        .try_into()
        .map_err(|e| Error::bad_input(source, None, format!("[overlay]: {e}")))?;
    let clean = |p: &str| {
        !p.is_empty()
            && !p.starts_with('/')
            && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
    };
    let ok = s.dir.starts_with('/')
        && clean(s.dir.trim_start_matches('/'))
        && s.copy.iter().all(|c| clean(&c.from) && clean(&c.to))
        && s.capabilities.iter().all(|c| clean(&c.path))
        && s.binaries.iter().all(|b| clean(b))
        && s.backup.as_ref().is_none_or(|b| {
            !b.dump.is_empty() && ["take", "skip"].contains(&b.build_only.as_str())
        });
    if !ok {
        return Err(Error::bad_input(
            source,
            None,
            "[overlay]: dir must be a clean absolute path, copy/capabilities/binaries clean relative paths, backup.dump a command and backup.build_only take or skip",
        ));
    }
    Ok(Some(s))
}

/// `PREFIX1.19.44-x86_64SUFFIX` -> (`1.19.44`, `x86_64`, top directory).
pub fn parse_archive_name(spec: &OverlaySpec, path: &Path) -> Result<(String, String, String)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bad = || {
        Error::Usage(format!(
            "{}: not a release archive name ({}VERSION-ARCH{})",
            path.display(),
            spec.archive_prefix,
            spec.archive_suffix
        ))
    };
    let top = name.strip_suffix(&spec.archive_suffix).ok_or_else(bad)?;
    let rest = top.strip_prefix(&spec.archive_prefix).ok_or_else(bad)?;
    let (version, arch) = rest.rsplit_once('-').ok_or_else(bad)?;
    let numeric = !version.is_empty()
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric || arch.is_empty() {
        return Err(bad());
    }
    Ok((version.to_string(), arch.to_string(), top.to_string()))
}

/// The archive checks of the engine (names, links, sizes, setid, ELF
/// architecture), with this overlay's top directory and limits.
pub fn check_archive(spec: &OverlaySpec, path: &Path, top: &str) -> Result<Checked> {
    let rs = ReleaseSpec {
        dir: spec.dir.clone(),
        top: top.to_string(),
        version: spec
            .archive_version_file
            .iter()
            .map(|f| ReleaseVersionSource {
                file: f.clone(),
                prefix: None,
            })
            .collect(),
        config: String::new(),
        binaries: spec.binaries.clone(),
        required: vec![],
        max_entry_bytes: spec.max_entry_bytes,
        max_total_bytes: spec.max_total_bytes,
        allow_setid: vec![],
        preserve: vec![],
        preserve_from_config: vec![],
        owner: None,
        modes: vec![],
        capabilities: vec![],
        services: vec![],
        stop: vec![],
        start: vec![],
        health: None,
        policy: Default::default(),
        backup: Default::default(),
    };
    archive::check(&rs, path)
}

/// The files the copy places, relative to the install directory.
pub fn placed_files(spec: &OverlaySpec, checked: &Checked) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in &checked.entries {
        if !matches!(e.kind, Kind::File { .. }) {
            continue;
        }
        for c in &spec.copy {
            if let Some(name) = e.rel.strip_prefix(&format!("{}/", c.from)) {
                // `cp bin/* DIR/bin/`: the directory's own files.
                if !name.contains('/') {
                    out.push((e.rel.clone(), format!("{}/{name}", c.to)));
                }
            }
        }
    }
    out
}

pub(crate) fn expand(argv: &[String], vars: &[(&str, &str)]) -> String {
    argv.iter()
        .map(|a| {
            let mut a = a.clone();
            for (k, v) in vars {
                a = a.replace(&format!("{{{k}}}"), v);
            }
            a
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The installed version: upkeep's record while the placed files still
/// match it, else the version file the manifest's detection reads.
pub fn installed_version(root: &SysRoot, product: &str, dir: &str) -> Option<String> {
    crate::overlay_record::current(root, product)
        .or_else(|| crate::overlay_record::version_file(root, dir))
}

/// Fails (1) when neither a version nor the install directory is there:
/// an overlay upgrade copies over an install, it does not make one.
pub fn refuse_not_installed(root: &SysRoot, product: &str, dir: &str) -> Result<()> {
    if installed_version(root, product, dir).is_none()
        && !crate::fsops::exists(root, &root.path(dir))
    {
        return Err(crate::not_installed(
            product,
            root,
            format!("{dir} is not there"),
        ));
    }
    Ok(())
}

/// Reads and checks everything; writes nothing.
pub fn plan(
    root: &SysRoot,
    product: &str,
    title: &str,
    manifest: &upkeep_engine::plugin::Manifest,
    source: &Path,
    archive: &Path,
    pre: &preflight::Options,
) -> Result<OverlayPlan> {
    let spec = spec_of(manifest.overlay.as_ref(), source)?
        .ok_or_else(|| Error::Usage(format!("{product}: its manifest declares no [overlay]")))?;
    refuse_not_installed(root, product, &spec.dir)?;
    let (to, arch, top) = parse_archive_name(&spec, archive)?;
    let host = std::env::consts::ARCH;
    if arch != host {
        return Err(Error::Refused(format!(
            "{}: the archive is for {arch}, this machine is {host}",
            archive.display()
        )));
    }
    let checked = check_archive(&spec, archive, &top)?;
    if spec.archive_version_file.is_some() && checked.version != to {
        return Err(Error::bad_input(
            archive,
            None,
            format!(
                "its name says {to}, its version file says {}",
                checked.version
            ),
        ));
    }
    let mut warnings = Vec::new();
    let from = installed_version(root, product, &spec.dir);
    let (change, refused) = match &from {
        None => {
            warnings.push(format!(
                "the installed version of {product} could not be read in {}",
                spec.dir
            ));
            (None, None)
        }
        Some(f) => {
            let c = versioning::classify(f, &to, manifest.upgrade.schema_changes_on.as_deref())
                .map_err(Error::Usage)?;
            let rule = if c.kind == versioning::ChangeKind::Same {
                "same-version"
            } else {
                "downgrade"
            };
            let r = versioning::refusal(&c, title, manifest.upgrade.downgrade.as_deref()).map(
                |message| Refusal {
                    rule: rule.into(),
                    message,
                },
            );
            (Some(c), r)
        }
    };
    // The preflight runs in every plan: its refusals refuse the upgrade.
    let pf = match preflight::spec_of(manifest.preflight.as_ref(), source)? {
        Some(ps) => {
            let config = manifest.installs.iter().find_map(|i| i.config.clone());
            preflight::run(root, title, &ps, config.as_deref(), pre)?
        }
        None => vec![],
    };
    let mut pf = pf;
    pf.push(disk_finding(
        root,
        &spec.dir,
        checked.total_bytes.saturating_mul(2),
    ));
    let refused = refused.or_else(|| {
        let bad: Vec<String> = pf
            .iter()
            .filter(|f| !f.ok)
            .map(|f| format!("{}: {}", f.check, f.message))
            .collect();
        (!bad.is_empty()).then(|| Refusal {
            rule: "preflight".into(),
            message: format!(
                "{} preflight check(s) refused: {}",
                bad.len(),
                bad.join("; ")
            ),
        })
    });
    let placed = placed_files(&spec, &checked);
    let dir = spec.dir.trim_end_matches('/').to_string();
    let kept = crate::overlay_record::kept_files(root, &dir, &placed);
    let svc = spec.services.join(" ");
    let per_service = |argv: &[String]| -> Vec<String> {
        spec.services
            .iter()
            .map(|s| expand(argv, &[("service", s)]))
            .filter(|c| !c.is_empty())
            .collect()
    };
    let mandatory = change.as_ref().is_none_or(|c| c.backup_mandatory);
    // The database the dump reads, as the preflight found it.
    let database = match preflight::spec_of(manifest.preflight.as_ref(), source)?
        .and_then(|ps| ps.postgresql)
    {
        Some(pg) => {
            let config = manifest.installs.iter().find_map(|i| i.config.clone());
            match preflight::target(root, &pg, config.as_deref(), pre)? {
                Ok(t) => t.url(),
                Err(_) => "{database}".to_string(),
            }
        }
        None => "{database}".to_string(),
    };
    let mut steps = vec![Step {
        phase: "prepare".into(),
        name: "preflight".into(),
        touches: vec![],
        commands: vec![],
    }];
    if let Some(b) = &spec.backup {
        let out = "{backup}/database.dump";
        steps.push(Step {
            phase: "prepare".into(),
            name: if mandatory {
                "database backup (mandatory: the schema may change)".into()
            } else {
                "database backup (build-only upgrade: no schema change)".into()
            },
            touches: vec![out.into()],
            commands: [
                expand(&b.dump, &[("out", out), ("url", &database)]),
                expand(&b.verify, &[("out", out), ("url", &database)]),
            ]
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect(),
        });
    }
    steps.push(Step {
        phase: "prepare".into(),
        name: format!("unpack {}", archive.display()),
        touches: vec![crate::overlay_apply::stage_dir(&dir)],
        commands: vec![],
    });
    steps.push(Step {
        phase: "stop".into(),
        name: format!("stop {svc}"),
        touches: spec.services.clone(),
        commands: per_service(&spec.stop),
    });
    steps.push(Step {
        phase: "swap".into(),
        name: format!(
            "copy {}",
            spec.copy
                .iter()
                .map(|c| format!("{}/* -> {dir}/{}/", c.from, c.to))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        touches: placed.iter().map(|(_, d)| format!("{dir}/{d}")).collect(),
        commands: vec![],
    });
    steps.push(Step {
        phase: "swap".into(),
        name: "capabilities".into(),
        touches: spec
            .capabilities
            .iter()
            .map(|c| format!("{dir}/{} = {}", c.path, c.caps))
            .collect(),
        commands: vec![],
    });
    steps.push(Step {
        phase: "swap".into(),
        name: "version record".into(),
        touches: vec![crate::overlay_record::record_path(product)],
        commands: vec![],
    });
    steps.push(Step {
        phase: "start".into(),
        name: format!("start {svc}"),
        touches: spec.services.clone(),
        commands: per_service(&spec.start),
    });
    steps.push(Step {
        phase: "verify".into(),
        name: format!("check {svc} is active"),
        touches: vec![],
        commands: per_service(&spec.is_active),
    });
    Ok(OverlayPlan {
        product: product.to_string(),
        dir,
        from,
        to,
        change,
        refused,
        preflight: pf,
        steps,
        kept,
        warnings,
    })
}

/// The plan as text.
pub fn render(p: &OverlayPlan) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} in {}: {} -> {}",
        p.product,
        p.dir,
        p.from.as_deref().unwrap_or("(unknown)"),
        p.to
    );
    if let Some(c) = &p.change {
        let _ = writeln!(s, "  change     {}", c.summary);
    }
    match &p.refused {
        Some(r) if r.rule == "preflight" => {
            let n = p.preflight.iter().filter(|f| !f.ok).count();
            let _ = writeln!(
                s,
                "  REFUSED    {n} preflight check(s) refused: see the findings"
            );
        }
        Some(r) => {
            let _ = writeln!(s, "  REFUSED    ({}) {}", r.rule, r.message);
        }
        None => {
            let _ = writeln!(s, "  policy     allowed");
        }
    }
    if !p.preflight.is_empty() {
        let _ = writeln!(s, "  preflight");
        s.push_str(&preflight::render(&p.preflight));
    }
    for st in &p.steps {
        let _ = write!(s, "  {:<7}    {}", st.phase, st.name);
        if !st.touches.is_empty() && st.touches.len() <= 6 {
            let _ = write!(s, ": {}", st.touches.join(", "));
        } else if !st.touches.is_empty() {
            let _ = write!(s, ": {} files", st.touches.len());
        }
        s.push('\n');
        for c in &st.commands {
            let _ = writeln!(s, "               $ {c}");
        }
    }
    for k in &p.kept {
        let _ = writeln!(s, "  keep       {}/{k}", p.dir);
    }
    for w in &p.warnings {
        let _ = writeln!(s, "  warning    {w}");
    }
    s
}

/// Free space on the install's filesystem for the staged release and the
/// replaced files kept for a rollback (twice the archive's content). The
/// database dump goes to the backup directory and is not counted here.
pub fn disk_finding(root: &SysRoot, dir: &str, need: u64) -> Finding {
    let d = match upkeep_sys::safe::open_dir(root, dir) {
        Ok(Some(d)) => d,
        Ok(None) => return Finding::refused("disk", format!("{dir} is not there")),
        Err(e) => return Finding::refused("disk", e.to_string()),
    };
    match nix::sys::statvfs::fstatvfs(&d) {
        Ok(st) => {
            let free = st.blocks_available().saturating_mul(st.fragment_size());
            if free >= need {
                Finding::ok(
                    "disk",
                    format!(
                        "{} MiB free where {dir} is, {} MiB needed",
                        free >> 20,
                        need.div_ceil(1 << 20)
                    ),
                )
            } else {
                Finding::refused(
                    "disk",
                    format!(
                        "only {free} bytes free where {dir} is; the staged release and the kept old files need {need}"
                    ),
                )
            }
        }
        Err(e) => Finding::refused("disk", format!("{dir}: statvfs: {e}")),
    }
}

/// Where a file of the install is, on this machine.
pub fn host_path(root: &SysRoot, dir: &str, rel: &str) -> PathBuf {
    root.path(dir).join(rel)
}
