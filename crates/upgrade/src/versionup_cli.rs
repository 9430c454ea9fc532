//! `apply`, `resume` and `recover` for products whose manifest has a
//! `[versionup]` (the vendor's installer, one step list per source
//! version, the operator's steps in between).

use std::fmt::Write as _;
use std::path::PathBuf;
use upkeep_cli::{self as cli, Format};
use upkeep_sys::{Error, ExitCode, Result, SysRoot};
use upkeep_upgrade_engine::versionup::{self, VersionupSpec};
use upkeep_upgrade_engine::versionup_run::{self, Outcome};

/// The product's `[versionup]`, if it has one.
pub fn spec(root: &SysRoot, product: &str) -> Result<Option<VersionupSpec>> {
    let plugins = upkeep_engine::plugin::load(root)?;
    match plugins.iter().find(|p| p.name() == product) {
        Some(p) => versionup::spec_of(p.manifest.versionup.as_ref(), &p.source),
        None => Ok(None),
    }
}

/// Every product with a `[versionup]`.
pub fn products(root: &SysRoot) -> Result<Vec<String>> {
    Ok(upkeep_engine::plugin::load(root)?
        .into_iter()
        .filter(|p| p.manifest.versionup.is_some())
        .map(|p| p.manifest.name)
        .collect())
}

/// The one optional INSTALLER (a path inside the system).
pub fn installer_arg(product: &str, args: &[PathBuf]) -> Result<Option<String>> {
    match args {
        [] => Ok(None),
        [one] => Ok(Some(one.display().to_string())),
        _ => Err(Error::Usage(format!(
            "{product} is versioned up by the vendor's installer: give at most one INSTALLER (its path inside the system), {} given",
            args.len()
        ))),
    }
}

/// `None` when the product has no `[versionup]`.
pub fn apply(
    root: &SysRoot,
    format: Format,
    product: &str,
    args: &[PathBuf],
    dry_run: bool,
) -> Result<Option<ExitCode>> {
    let Some(spec) = spec(root, product)? else {
        return Ok(None);
    };
    let installer = installer_arg(product, args)?;
    let out = versionup_run::apply(root, product, &spec, installer.as_deref(), dry_run)?;
    show(format, &out).map(Some)
}

pub fn resume(
    root: &SysRoot,
    format: Format,
    product: &str,
    confirm: Option<&str>,
) -> Result<ExitCode> {
    if spec(root, product)?.is_none() {
        return Err(Error::Usage(format!(
            "{product}: its manifest has no [versionup]: there is nothing to resume"
        )));
    }
    let out = versionup_run::resume(root, product, confirm)?;
    show(format, &out)
}

/// What `recover` says for one product ("" when nothing was under way).
pub fn recover(root: &SysRoot, product: &str) -> Result<(String, ExitCode)> {
    let out = versionup_run::recover(root, product)?;
    let code = match out {
        Outcome::Waiting(_) => ExitCode::Waiting,
        _ => ExitCode::Ok,
    };
    let text = match &out {
        Outcome::Nothing { .. } => String::new(),
        Outcome::RolledBack { product, from } => {
            format!("{product}: an interrupted version-up was undone; {product} {from} is back\n")
        }
        o => render(o),
    };
    Ok((text, code))
}

fn show(format: Format, out: &Outcome) -> Result<ExitCode> {
    match format {
        Format::Json => cli::print_json(out)?,
        Format::Text => cli::print(&render(out))?,
    }
    Ok(match out {
        Outcome::Waiting(_) => ExitCode::Waiting,
        _ => ExitCode::Ok,
    })
}

pub fn render(out: &Outcome) -> String {
    let mut s = String::new();
    match out {
        Outcome::Planned { plan } => {
            s.push_str(&versionup::render(plan));
            s.push_str("dry run: nothing was changed\n");
        }
        Outcome::Current { product, version } => {
            let _ = writeln!(s, "{product} {version} is installed: nothing to do");
        }
        Outcome::Done {
            product,
            from,
            to,
            backups,
        } => {
            let _ = writeln!(
                s,
                "{product}: versioned up from {from} to {to}; autostart is as it was"
            );
            for b in backups {
                let _ = writeln!(s, "backup: {b} (verified)");
            }
        }
        Outcome::Waiting(w) => {
            let _ = writeln!(
                s,
                "{}: version-up {} -> {} stopped at step {}/{}, the operator's: {}",
                w.product, w.from, w.to, w.step, w.count, w.name
            );
            if let Some(t) = &w.text {
                let _ = writeln!(s, "  {t}");
            }
            let _ = writeln!(s, "  then run: {}", w.resume);
        }
        Outcome::RolledBack { product, from } => {
            let _ = writeln!(
                s,
                "{product}: the version-up was undone; {product} {from} is back"
            );
        }
        Outcome::Nothing { product } => {
            let _ = writeln!(s, "{product}: no version-up under way: nothing to resume");
        }
    }
    s
}
