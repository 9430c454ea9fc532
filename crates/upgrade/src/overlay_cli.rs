//! `plan` for products whose manifest has an `[overlay]` (copy over the
//! install rather than swap the tree) or a `[versionup]` (the vendor's
//! installer, one step list per source version).

use std::path::PathBuf;
use upkeep_cli::{self as cli, Format};
use upkeep_sys::{Error, ExitCode, Result, SysRoot};
use upkeep_upgrade_engine::{overlay, preflight, versionup};

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
