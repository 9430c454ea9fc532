//! `upkeep-upgrade check PRODUCT`: the manifest's preflight checks, all of
//! them, reported together; exit 3 when any refuses.

use std::path::PathBuf;
use upkeep_cli::{self as cli, Format};
use upkeep_sys::{ExitCode, Result, SysRoot};
use upkeep_upgrade_engine::preflight::{self, Options};

pub fn run(
    root: &SysRoot,
    format: Format,
    product: &str,
    db_url: Option<String>,
    log_files: Vec<PathBuf>,
) -> Result<ExitCode> {
    let opts = Options {
        db_url,
        log_files,
        ..Options::default()
    };
    let r = preflight::for_product(root, product, &opts)?;
    match format {
        Format::Json => cli::print_json(&r)?,
        Format::Text => {
            let mut s = format!(
                "{product}: preflight {}\n",
                if r.refused { "REFUSED" } else { "passed" }
            );
            s.push_str(&preflight::render(&r.findings));
            cli::print(&s)?
        }
    }
    Ok(if r.refused {
        ExitCode::Refused
    } else {
        ExitCode::Ok
    })
}
