//! The preflight a manifest declares in `[preflight]`: the database checks
//! and the log patterns of `upkeep-dbcheck`, and, when the database is on
//! this host, the local package database for the contrib package. Every
//! check runs, nothing is written, and the findings are reported together;
//! one refused finding refuses the upgrade.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use upkeep_dbcheck::target::{read_settings, DbTarget};
use upkeep_dbcheck::{checks, logscan, Finding, PreflightSpec};
use upkeep_sys::{Error, Result, SysRoot};

/// Largest configuration or log file read.
const MAX_TEXT: u64 = 64 << 20;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--db-url postgres://…`: wins over the product's configuration.
    pub db_url: Option<String>,
    /// `--log-file FILE`: more logs for the pattern check (paths on this
    /// machine, as the operator gave them, e.g. a `journalctl` export).
    pub log_files: Vec<PathBuf>,
    /// Per network step.
    pub timeout: Option<Duration>,
    /// For tests: the time "recent" is measured from.
    pub now: Option<SystemTime>,
}

/// The manifest's `[preflight]` section, read and checked.
pub fn spec_of(raw: Option<&toml::Value>, source: &Path) -> Result<Option<PreflightSpec>> {
    let Some(v) = raw else {
        return Ok(None);
    };
    v.clone()
        .try_into::<PreflightSpec>()
        .map(Some)
        .map_err(|e| Error::bad_input(source, None, format!("[preflight]: {e}")))
}

/// The database to check: `--db-url`, else the product's configuration.
/// `Ok(Err(finding))` when neither says where it is.
pub fn target(
    root: &SysRoot,
    pg: &upkeep_dbcheck::PostgresSpec,
    config: Option<&str>,
    opts: &Options,
) -> Result<std::result::Result<DbTarget, Finding>> {
    if let Some(url) = &opts.db_url {
        return DbTarget::from_url(url, pg)
            .map(Ok)
            .map_err(|e| Error::Usage(e.to_string()));
    }
    let Some(c) = config else {
        return Ok(Err(Finding::refused(
            "connect",
            "the manifest names no configuration file to read the database address from: give --db-url",
        )));
    };
    let path = root.path(c);
    Ok(
        match crate::preflight_io::read_text(root, Path::new(c), MAX_TEXT)? {
            None => Err(Finding::refused(
                "connect",
                format!(
                    "{} is not there: cannot tell where the database is (give --db-url)",
                    path.display()
                ),
            )),
            Some(text) => DbTarget::from_settings(&read_settings(&text), pg, c)
                .map_err(|e| Finding::refused("connect", e.to_string())),
        },
    )
}

/// Runs every declared check. `config` is the product's configuration file
/// as seen inside the system (where the database settings are).
pub fn run(
    root: &SysRoot,
    title: &str,
    spec: &PreflightSpec,
    config: Option<&str>,
    opts: &Options,
) -> Result<Vec<Finding>> {
    let timeout = opts.timeout.unwrap_or(Duration::from_secs(10));
    let mut out = Vec::new();
    if let Some(pg) = &spec.postgresql {
        let target = match target(root, pg, config, opts)? {
            Ok(t) => Some(t),
            Err(f) => {
                out.push(f);
                None
            }
        };
        if let Some(t) = target {
            out.extend(checks::run_postgres(&t, pg, title, timeout));
            if t.is_on_this_host() {
                if let Some(f) = contrib_package(root, pg)? {
                    out.push(f);
                }
            }
        }
    }
    if let Some(log) = &spec.log {
        let patterns = logscan::compile(&log.patterns)
            .map_err(|e| Error::Usage(format!("[preflight.log]: {e}")))?;
        let now = opts.now.unwrap_or_else(SystemTime::now);
        let window = Duration::from_secs(log.window_hours.saturating_mul(3600));
        let mut files: Vec<(PathBuf, Option<String>, bool)> = Vec::new();
        for f in &log.files {
            let text = crate::preflight_io::read_text(root, Path::new(f), MAX_TEXT)?;
            files.push((root.path(f), text, false));
        }
        for f in &opts.log_files {
            let text = crate::preflight_io::read_operator_file(f, MAX_TEXT)?;
            files.push((f.clone(), text, true));
        }
        for (path, text, given) in files {
            match text {
                Some(text) => {
                    let found = logscan::scan(
                        &text,
                        &path.display().to_string(),
                        &patterns,
                        now,
                        window,
                        log.tail_lines,
                    );
                    if found.is_empty() {
                        out.push(Finding::ok(
                            "log",
                            format!("{}: no recent line matches", path.display()),
                        ));
                    }
                    out.extend(found);
                }
                // A log the operator named must be there.
                None if given => {
                    return Err(Error::Usage(format!(
                        "--log-file {}: no such file",
                        path.display()
                    )))
                }
                None => out.push(Finding::ok(
                    "log",
                    format!("{}: no log (nothing to check)", path.display()),
                )),
            }
        }
    }
    Ok(out)
}

/// The local dpkg or rpm database of the root: the contrib package must be
/// installed when the database server runs here.
fn contrib_package(root: &SysRoot, pg: &upkeep_dbcheck::PostgresSpec) -> Result<Option<Finding>> {
    let Some(want) = &pg.contrib_package else {
        return Ok(None);
    };
    if let Some(name) = &want.dpkg {
        if let Some(db) = upkeep_pkg::dpkg::Dpkg::open(root)? {
            return Ok(Some(match db.package(name)? {
                Some(p) if p.state == "installed" => Finding::ok(
                    "contrib-package",
                    format!("{name} {} is installed (dpkg)", p.version),
                ),
                _ => Finding::refused(
                    "contrib-package",
                    format!("the database server runs on this host and {name} is not installed (dpkg): apt-get install {name}, then run the upgrade"),
                ),
            }));
        }
    }
    if let Some(name) = &want.rpm {
        if let Some(db) = upkeep_pkg::rpm::Rpm::open(root) {
            return Ok(Some(match db.package(name)? {
                Some(p) => Finding::ok(
                    "contrib-package",
                    format!("{name} {} is installed (rpm)", p.evr),
                ),
                None => Finding::refused(
                    "contrib-package",
                    format!("the database server runs on this host and {name} is not installed (rpm): dnf install {name}, then run the upgrade"),
                ),
            }));
        }
    }
    Ok(None)
}

/// One line per finding, refusals marked.
pub fn render(findings: &[Finding]) -> String {
    let mut s = String::new();
    for f in findings {
        s.push_str(&format!(
            "  {:<9} {:<16} {}\n",
            if f.ok { "ok" } else { "REFUSED" },
            f.check,
            f.message
        ));
    }
    s
}

/// What `upkeep-upgrade check PRODUCT` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub product: String,
    pub findings: Vec<Finding>,
    pub refused: bool,
}

/// Loads the product's manifest and runs its `[preflight]`.
pub fn for_product(root: &SysRoot, product: &str, opts: &Options) -> Result<Report> {
    let plugins = upkeep_engine::plugin::load(root)?;
    let p = plugins
        .iter()
        .find(|p| p.name() == product)
        .ok_or_else(|| {
            let names: Vec<&str> = plugins.iter().map(|p| p.name()).collect();
            Error::Usage(format!(
                "unknown product '{product}' (known: {})",
                names.join(", ")
            ))
        })?;
    let spec = spec_of(p.manifest.preflight.as_ref(), &p.source)?.ok_or_else(|| {
        Error::Usage(format!(
            "{product}: its manifest ({}) declares no [preflight] checks",
            p.source.display()
        ))
    })?;
    let config = p.manifest.installs.iter().find_map(|i| {
        let c = i.config.as_deref()?;
        Some(match &i.dir {
            Some(d) => c.replace("{dir}", d),
            None => c.to_string(),
        })
    });
    let title = p.manifest.title.as_deref().unwrap_or(product);
    let findings = run(root, title, &spec, config.as_deref(), opts)?;
    Ok(Report {
        product: product.to_string(),
        refused: findings.iter().any(|f| !f.ok),
        findings,
    })
}
