//! `plan` for products whose manifest has an `[overlay]` (copy over the
//! install rather than swap the tree) or a `[versionup]` (the vendor's
//! installer, one step list per source version).

use std::path::PathBuf;
use upkeep_cli::{self as cli, Format};
use upkeep_sys::{Error, ExitCode, Result, SysRoot};
use upkeep_upgrade_engine::{overlay, overlay_apply, preflight, versionup};

/// `Ok(None)` when the product has no `[overlay]`: the release engine plans it.
pub fn plan(
    root: &SysRoot,
    format: Format,
    product: &str,
    archives: &[PathBuf],
    db_url: Option<String>,
    log_files: Vec<PathBuf>,
) -> Result<Option<ExitCode>> {
    let plugins = upkeep_engine::plugin::load(root)?;
    let Some(p) = plugins.iter().find(|p| p.name() == product) else {
        return Ok(None);
    };
    if let Some(spec) = versionup::spec_of(p.manifest.versionup.as_ref(), &p.source)? {
        let installer = crate::versionup_cli::installer_arg(product, archives)?;
        let plan = versionup::plan(root, product, &spec, installer.as_deref())?;
        match format {
            Format::Json => cli::print_json(&plan)?,
            Format::Text => cli::print(&versionup::render(&plan))?,
        }
        return Ok(Some(if plan.refused.is_some() {
            ExitCode::Refused
        } else {
            ExitCode::Ok
        }));
    }
    if p.manifest.overlay.is_none() {
        return Ok(None);
    }
    let [archive] = archives else {
        return Err(Error::Usage(format!(
            "{product} is upgraded from one archive at a time ({} given)",
            archives.len()
        )));
    };
    let opts = preflight::Options {
        db_url,
        log_files,
        ..Default::default()
    };
    let title = p.manifest.title.as_deref().unwrap_or(product);
    let plan = overlay::plan(root, product, title, &p.manifest, &p.source, archive, &opts)?;
    match format {
        Format::Json => cli::print_json(&plan)?,
        Format::Text => cli::print(&overlay::render(&plan))?,
    }
    Ok(Some(if plan.refused.is_some() {
        ExitCode::Refused
    } else {
        ExitCode::Ok
    }))
}

/// `apply`'s flags that a copy-over upgrade reads.
pub struct ApplyArgs<'a> {
    pub phase: Option<&'a str>,
    pub db_url: Option<String>,
    pub log_files: Vec<PathBuf>,
    pub skip_db_backup: bool,
    pub db_backup_by: Option<String>,
    pub dry_run: bool,
}

/// `Ok(None)` when the product has no `[overlay]`: the release engine
/// applies it (and `--phase` is refused there).
pub fn apply(
    root: &SysRoot,
    format: Format,
    product: &str,
    archives: &[PathBuf],
    args: ApplyArgs<'_>,
) -> Result<Option<ExitCode>> {
    let Some(l) = overlay_apply::load(root, product)? else {
        if let Some(p) = args.phase {
            return Err(Error::Usage(format!(
                "--phase {p}: {product} is not upgraded by copying over its install: its upgrade has no phases"
            )));
        }
        return Ok(None);
    };
    let [archive] = archives else {
        return Err(Error::Usage(format!(
            "{product} is upgraded from one archive at a time ({} given)",
            archives.len()
        )));
    };
    let opts = overlay_apply::Options {
        phase: args.phase.and_then(overlay_apply::Phase::parse),
        preflight: preflight::Options {
            db_url: args.db_url,
            log_files: args.log_files,
            ..Default::default()
        },
        skip_db_backup: args.skip_db_backup,
        db_backup_by: args.db_backup_by,
        dry_run: args.dry_run,
    };
    let report = overlay_apply::apply(root, &l, archive, &opts)?;
    match format {
        Format::Json => cli::print_json(&report)?,
        Format::Text => cli::print(&render_apply(&report))?,
    }
    Ok(Some(ExitCode::Ok))
}

fn render_apply(r: &overlay_apply::Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if let Some(p) = &r.plan {
        s.push_str(&overlay::render(p));
    }
    for p in &r.phases {
        if p.steps.is_empty() {
            let _ = writeln!(s, "{:<8} nothing to do (made already)", p.phase.as_str());
        }
        for st in &p.steps {
            let _ = writeln!(s, "{:<8} {st}", p.phase.as_str());
        }
    }
    if let Some(n) = &r.note {
        let _ = writeln!(s, "{n}");
    }
    match &r.installed {
        Some(v) if r.changed => {
            let _ = writeln!(
                s,
                "{} {v} is installed and its services are active",
                r.product
            );
        }
        None if !r.dry_run => {
            let _ = writeln!(s, "{} -> {}: phases remain", r.product, r.to);
        }
        _ => {}
    }
    s
}

/// `recover` for a product with an `[overlay]`; `false` for any other.
pub fn recover(root: &SysRoot, product: &str, out: &mut String) -> Result<bool> {
    use std::fmt::Write as _;
    let Some(l) = overlay_apply::load(root, product)? else {
        return Ok(false);
    };
    match overlay_apply::recover(root, &l)? {
        overlay_apply::Recovered::Nothing => {}
        overlay_apply::Recovered::RolledBack => {
            let _ = writeln!(
                out,
                "{product}: an interrupted upgrade was undone; the previous install is back"
            );
        }
        overlay_apply::Recovered::Finished => {
            let _ = writeln!(out, "{product}: an interrupted upgrade was finished");
        }
    }
    Ok(true)
}

/// `rollback` for a product with an `[overlay]`; `Ok(None)` for any other.
pub fn rollback(
    root: &SysRoot,
    format: Format,
    product: &str,
    dry_run: bool,
) -> Result<Option<ExitCode>> {
    let Some(l) = overlay_apply::load(root, product)? else {
        return Ok(None);
    };
    let r = overlay_apply::rollback(root, &l, dry_run)?;
    match format {
        Format::Json => cli::print_json(&r)?,
        Format::Text => cli::print(&match (&r.note, &r.from, &r.to) {
            (Some(n), _, _) => format!("{}: {n}\n", r.product),
            (None, Some(f), Some(t)) => format!(
                "{}: rolled back from {f} to {t}; its services are active\n",
                r.product
            ),
            _ => String::new(),
        })?,
    }
    Ok(Some(ExitCode::Ok))
}
