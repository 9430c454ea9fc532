//! `upkeep-upgrade`: upgrades an install made from a release archive
//! (Mattermost in /opt/mattermost), losing nothing. Thin: arguments,
//! the engine, a report.

use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use upkeep_cli::{self as cli, CommonArgs, DryRun, Format, Manual};
use upkeep_sys::{Error, ExitCode, Result};

pub const MANUAL: Manual = Manual {
    exit: &[
        ExitCode::Ok,
        ExitCode::Failed,
        ExitCode::Usage,
        ExitCode::Refused,
        ExitCode::Waiting,
        ExitCode::BadInput,
        ExitCode::Busy,
    ],
    files: &[
        (
            "/var/lib/upkeep/upgrade/PRODUCT.journal",
            "the upgrade under way, written before each change; recover reads it",
        ),
        (
            "/var/lib/upkeep/upgrade/PRODUCT.files",
            "the file list of the release installed last",
        ),
        (
            "/var/lib/upkeep/overlay/",
            "the journal of a copy-over upgrade run in phases (apply --phase): what later phases, an undo and recover read",
        ),
        (
            "/var/lib/upkeep/releases/PRODUCT.installed.json",
            "what a copy-over upgrade installed: version, archive, SHA-256 of every placed file; upkeep-detect trusts it while they match",
        ),
        (
            "/var/lib/upkeep/backups/PRODUCT/",
            "backups: config, local data, database dump, SHA256SUMS",
        ),
        (
            "/var/lib/upkeep/versionup/",
            "a version-up under way (steps, recorded autostart, backups, where it stopped); resume and recover read it",
        ),
        (
            "/proc/sys/kernel/random/boot_id",
            "read inside --root: a changed boot id confirms a version-up's reboot step",
        ),
        ("/var/lib/upkeep/lock", "the one writers' lock"),
    ],
    environment: &[],
    notes: "A command asked to act on a product that is not installed under the root (plan, apply, rollback, backup, and backups when there are none) fails with exit 1 and says \"PRODUCT is not installed under ROOT\"; exit 3 is kept for policy refusals and 65 for malformed input. recover with nothing to recover is silent and exits 0.",
};
use upkeep_upgrade_engine::apply::{self, Recovered};
use upkeep_upgrade_engine::plan::{self, Options, Plan};
use upkeep_upgrade_engine::{jsonedit, revert, treecopy, versionup, versionup_run, Release};

mod check;
mod overlay_cli;
mod versionup_cli;

pub const NAME: &str = "upkeep-upgrade";

#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    about = "Upgrade an install made from a release archive, losing nothing",
    long_about = "Upgrades a product installed from its vendor's release archive the way its manifest describes: checks every archive before writing \
anything, backs up config, data and database, unpacks next to the install, swaps it in \
with one rename, moves preserved paths across by rename, re-applies ownership and then \
file capabilities, starts the service and checks its health; any failure after the first \
change rolls back to the old install by itself. Files nothing declares are kept and reported.",
    after_help = MANUAL.after_help()
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Print the plan (versions, policy, stops, steps, preserved and unknown paths); change nothing.
    Plan {
        product: String,
        #[arg(value_name = "ARCHIVE")]
        archives: Vec<PathBuf>,
        /// Override a config.json setting (JSON value): Section.Key=JSON.
        #[arg(long = "set", value_name = "Section.Key=JSON")]
        set: Vec<String>,
        /// Plan without the database dump.
        #[arg(long)]
        skip_db_backup: bool,
        /// The database the preflight checks instead of the one in the product's config, sslmode included.
        #[arg(long, value_name = "postgres://…")]
        db_url: Option<String>,
        /// Another log for the preflight's pattern check; repeatable.
        #[arg(long = "log-file", value_name = "FILE")]
        log_files: Vec<PathBuf>,
    },
    /// Upgrade through every ARCHIVE in version order, each step verified; a version-up ([versionup] in the manifest) takes an optional INSTALLER, its path inside the system, and may stop at the operator's steps (exit 5).
    Apply {
        product: String,
        #[arg(value_name = "ARCHIVE")]
        archives: Vec<PathBuf>,
        /// Override a config.json setting (JSON value): Section.Key=JSON.
        #[arg(long = "set", value_name = "Section.Key=JSON")]
        set: Vec<String>,
        /// Upgrade without dumping the database first (on purpose; refused where the schema may change).
        #[arg(long)]
        skip_db_backup: bool,
        /// The database dump of this upgrade was taken on NODE (a fleet's one dump of its shared database): none here.
        #[arg(long, value_name = "NODE")]
        db_backup_by: Option<String>,
        /// Only this phase of a copy-over upgrade (each needs the one before; a phase made already changes nothing).
        #[arg(long, value_name = "PHASE", value_parser = ["prepare", "stop", "swap", "start", "verify"])]
        phase: Option<String>,
        /// The database the preflight checks and the dump reads instead of the one in the product's config, sslmode included.
        #[arg(long, value_name = "postgres://…")]
        db_url: Option<String>,
        /// Another log for the preflight's pattern check; repeatable.
        #[arg(long = "log-file", value_name = "FILE")]
        log_files: Vec<PathBuf>,
        #[command(flatten)]
        dry_run: DryRun,
    },
    /// First install from ARCHIVE, with the same checks, staging and journal as an upgrade.
    Install {
        product: String,
        #[arg(value_name = "ARCHIVE")]
        archive: PathBuf,
        /// Override a config.json setting (JSON value): Section.Key=JSON.
        #[arg(long = "set", value_name = "Section.Key=JSON")]
        set: Vec<String>,
        #[command(flatten)]
        dry_run: DryRun,
    },
    /// Go back to the release kept after the last upgrade, with its verified config backup.
    Rollback {
        product: String,
        /// Also restore the backup's database dump (the database as it is is dumped first; changes since the backup are lost).
        #[arg(long)]
        restore_database: bool,
        #[command(flatten)]
        dry_run: DryRun,
    },
    /// Go on with a version-up stopped at the operator's step (a reboot: confirmed by a changed boot id) or interrupted.
    Resume {
        product: String,
        /// The operator's step now done, by its id as apply printed it (a reboot needs none: a changed boot id confirms it).
        #[arg(long, value_name = "STEP")]
        confirm: Option<String>,
    },
    /// Finish or undo an interrupted upgrade; silent when there is none.
    Recover {
        /// Only this product (default: every product with a [release] section).
        product: Option<String>,
    },
    /// Back up PRODUCT now as apply does first (config, local data, database), verified.
    Backup {
        product: String,
        /// Without the database dump (on purpose).
        #[arg(long)]
        skip_db_backup: bool,
    },
    /// List the backups of PRODUCT and verify each against its checksums.
    Backups { product: String },
    /// Run the manifest's preflight checks (database, TLS, extensions, logs); change nothing.
    Check {
        product: String,
        /// The database to check instead of the one in the product's config, sslmode included.
        #[arg(long, value_name = "postgres://…")]
        db_url: Option<String>,
        /// Another log for the pattern check (e.g. a journalctl export); repeatable.
        #[arg(long = "log-file", value_name = "FILE")]
        log_files: Vec<PathBuf>,
    },
}

pub fn uu_app() -> clap::Command {
    Args::command()
}

pub fn uumain(args: impl IntoIterator<Item = OsString>) -> i32 {
    cli::run::<Args, _>(NAME, args, run)
}

fn options(set: &[String], skip_db_backup: bool) -> Result<Options> {
    let settings = set
        .iter()
        .map(|s| jsonedit::parse_setting(s).map_err(Error::Usage))
        .collect::<Result<Vec<_>>>()?;
    Ok(Options {
        settings,
        skip_db_backup,
    })
}

fn run(args: Args) -> Result<ExitCode> {
    let root = args.common.sys_root();
    let format = args.common.format;
    match args.command {
        Cmd::Plan {
            product,
            archives,
            set,
            skip_db_backup,
            db_url,
            log_files,
        } => {
            if let Some(code) =
                overlay_cli::plan(&root, format, &product, &archives, db_url, log_files)?
            {
                return Ok(code);
            }
            if archives.is_empty() {
                return Err(Error::Usage(format!(
                    "plan {product}: give at least one ARCHIVE"
                )));
            }
            let rel = Release::load(&root, &product)?;
            let (p, _) = plan::plan(&rel, &archives, &options(&set, skip_db_backup)?)?;
            match format {
                Format::Json => cli::print_json(&p)?,
                Format::Text => cli::print(&render_plan(&p))?,
            }
            if let Some(r) = &p.refused {
                if format == Format::Json {
                    eprintln!("{NAME}: refused ({}): {}", r.rule, r.message);
                }
                return Ok(ExitCode::Refused);
            }
            Ok(ExitCode::Ok)
        }
        Cmd::Apply {
            product,
            archives,
            set,
            skip_db_backup,
            db_backup_by,
            phase,
            db_url,
            log_files,
            dry_run,
        } => {
            let overlay_args = overlay_cli::ApplyArgs {
                phase: phase.as_deref(),
                db_url,
                log_files,
                skip_db_backup,
                db_backup_by: db_backup_by.clone(),
                dry_run: dry_run.dry_run,
            };
            let skip_db_backup = skip_db_backup || db_backup_by.is_some();
            if let Some(code) =
                overlay_cli::apply(&root, format, &product, &archives, overlay_args)?
            {
                return Ok(code);
            }
            let dry_run = dry_run.dry_run;
            if let Some(code) = versionup_cli::apply(&root, format, &product, &archives, dry_run)? {
                return Ok(code);
            }
            if archives.is_empty() {
                return Err(Error::Usage(format!(
                    "apply {product}: give at least one ARCHIVE"
                )));
            }
            let rel = Release::load(&root, &product)?;
            let report = apply::apply(&rel, &archives, &options(&set, skip_db_backup)?, dry_run)?;
            match format {
                Format::Json => cli::print_json(&report)?,
                Format::Text => {
                    let mut s = render_plan(&report.plan);
                    match (&report.installed, dry_run) {
                        (_, true) => s.push_str("dry run: nothing was changed\n"),
                        (Some(v), _) => {
                            let _ = writeln!(
                                s,
                                "{product} {v} is installed and answers its health check"
                            );
                        }
                        (None, _) => {}
                    }
                    if let Some(b) = &report.backup {
                        let _ = writeln!(s, "backup: {b}");
                    }
                    cli::print(&s)?
                }
            }
            Ok(ExitCode::Ok)
        }
        Cmd::Install {
            product,
            archive,
            set,
            dry_run,
        } => {
            let rel = Release::load(&root, &product)?;
            let opts = options(&set, false)?;
            let r = revert::install(&rel, &archive, &opts.settings, dry_run.dry_run)?;
            match format {
                Format::Json => cli::print_json(&r)?,
                Format::Text => cli::print(&if r.unchanged {
                    format!(
                        "{} {} is already installed in {}: nothing to do\n",
                        r.product, r.version, r.dir
                    )
                } else if dry_run.dry_run {
                    format!(
                        "{} {} would be installed in {}; dry run: nothing was changed\n",
                        r.product, r.version, r.dir
                    )
                } else {
                    format!(
                        "{} {} is installed in {} and answers its health check\n",
                        r.product, r.version, r.dir
                    )
                })?,
            }
            Ok(ExitCode::Ok)
        }
        Cmd::Rollback {
            product,
            restore_database,
            dry_run,
        } => {
            if let Some(code) = overlay_cli::rollback(&root, format, &product, dry_run.dry_run)? {
                return Ok(code);
            }
            let rel = Release::load(&root, &product)?;
            let r = revert::rollback(&rel, dry_run.dry_run, restore_database)?;
            match format {
                Format::Json => cli::print_json(&r)?,
                Format::Text => {
                    let mut s = if r.unchanged {
                        format!(
                            "{}: already rolled back from {} to {}: nothing to do\n",
                            r.product, r.from, r.to
                        )
                    } else if dry_run.dry_run {
                        format!("{}: would roll back from {} to {} with the config of {}; dry run: nothing was changed\n", r.product, r.from, r.to, r.backup)
                    } else {
                        format!("{}: rolled back from {} to {} (config from {}); it answers its health check\n", r.product, r.from, r.to, r.backup)
                    };
                    s.push_str(&database_sentence(&r, dry_run.dry_run));
                    cli::print(&s)?
                }
            }
            Ok(ExitCode::Ok)
        }
        Cmd::Resume { product, confirm } => {
            versionup_cli::resume(&root, format, &product, confirm.as_deref())
        }
        Cmd::Recover { product } => {
            let versionups = versionup_cli::products(&root)?;
            let mut code = ExitCode::Ok;
            let mut out = String::new();
            for p in versionups
                .iter()
                .filter(|p| product.as_ref().is_none_or(|w| w == *p))
            {
                let (text, c) = versionup_cli::recover(&root, p)?;
                out.push_str(&text);
                if c != ExitCode::Ok {
                    code = c;
                }
            }
            if product.as_ref().is_some_and(|p| versionups.contains(p)) {
                cli::print(&out)?;
                return Ok(code);
            }
            let products: Vec<String> = match product {
                Some(p) => vec![p],
                None => upkeep_engine::plugin::load(&root)?
                    .into_iter()
                    .filter(|p| p.manifest.release.is_some() || p.manifest.overlay.is_some())
                    .map(|p| p.manifest.name)
                    .collect(),
            };
            for p in products {
                if overlay_cli::recover(&root, &p, &mut out)? {
                    continue;
                }
                let rel = Release::load(&root, &p)?;
                match apply::recover(&rel)? {
                    Recovered::Nothing => {}
                    Recovered::RolledBack => {
                        let _ = writeln!(
                            out,
                            "{p}: an interrupted upgrade was undone; the previous install is back"
                        );
                    }
                    Recovered::Finished => {
                        let _ = writeln!(out, "{p}: an interrupted upgrade was finished");
                    }
                }
            }
            cli::print(&out)?;
            Ok(code)
        }
        Cmd::Backup {
            product,
            skip_db_backup,
        } => {
            let rel = Release::load(&root, &product)?;
            let dir = apply::backup_now(&rel, &options(&[], skip_db_backup)?)?;
            let skipped = treecopy::skipped_in(&root, &dir)?;
            match format {
                Format::Json => cli::print_json(&serde_json::json!({
                    "path": dir.display().to_string(), "verified": true, "skipped": skipped,
                }))?,
                Format::Text => {
                    let mut out = format!("backup: {} (verified)\n", dir.display());
                    for s in &skipped {
                        out.push_str(&format!("  not copied (a device, FIFO or socket): {s}\n"));
                    }
                    cli::print(&out)?
                }
            }
            Ok(ExitCode::Ok)
        }
        Cmd::Check {
            product,
            db_url,
            log_files,
        } => check::run(&root, format, &product, db_url, log_files),
        Cmd::Backups { product } => {
            let list = match versionup_cli::spec(&root, &product)? {
                Some(spec) => {
                    let list = versionup_run::list_backups(&root, &product)?;
                    if list.is_empty() {
                        // Backups outlive the install; none and no install is a failure.
                        versionup::installed(&root, &product, &spec)?;
                    }
                    list
                }
                None => {
                    let rel = Release::load(&root, &product)?;
                    let list = apply::list_backups(&rel)?;
                    if list.is_empty() && rel.installed_version().is_none() {
                        return Err(upkeep_upgrade_engine::not_installed(
                            &product,
                            &root,
                            format!("no release in {} and no backups", rel.spec.dir),
                        ));
                    }
                    list
                }
            };
            let mut bad = 0;
            let mut rows = Vec::new();
            for b in list {
                let ok = apply::verify_backup(&root, &b);
                if ok.is_err() {
                    bad += 1;
                }
                rows.push(serde_json::json!({
                    "path": b.display().to_string(),
                    "verified": ok.is_ok(),
                    "error": ok.err().map(|e| e.to_string()),
                }));
            }
            match format {
                Format::Json => cli::print_json(&rows)?,
                Format::Text => {
                    let mut s = String::new();
                    for r in &rows {
                        let _ = writeln!(
                            s,
                            "{}  {}",
                            r["path"].as_str().unwrap_or_default(),
                            if r["verified"] == true {
                                "verified".to_string()
                            } else {
                                format!("BAD: {}", r["error"].as_str().unwrap_or_default())
                            }
                        );
                    }
                    cli::print(&s)?
                }
            }
            Ok(if bad > 0 {
                ExitCode::Failed
            } else {
                ExitCode::Ok
            })
        }
    }
}

pub fn render_plan(p: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} in {}: {} -> {}",
        p.product,
        p.dir,
        p.from.as_deref().unwrap_or("(unknown)"),
        p.to.as_deref().unwrap_or("(none)")
    );
    if p.chain.len() > 1 {
        let _ = writeln!(s, "  chain      {}", p.chain.join(" -> "));
    }
    if !p.stops.is_empty() {
        let _ = writeln!(s, "  stops      {}", p.stops.join(", "));
    }
    match &p.refused {
        Some(r) => {
            let _ = writeln!(s, "  REFUSED    ({}) {}", r.rule, r.message);
        }
        None => {
            let _ = writeln!(s, "  policy     allowed");
        }
    }
    for step in &p.steps {
        if step.touches.is_empty() {
            let _ = writeln!(s, "  step       {}", step.name);
        } else {
            let _ = writeln!(s, "  step       {}: {}", step.name, step.touches.join(", "));
        }
    }
    for x in &p.preserve {
        let _ = writeln!(s, "  keep       {x}");
    }
    for x in &p.unknown {
        let _ = writeln!(s, "  unknown    {x} (declared by nothing: kept)");
    }
    for w in &p.warnings {
        let _ = writeln!(s, "  warning    {w}");
    }
    s
}

/// What a rollback did, or would do, with the database.
fn database_sentence(r: &revert::RolledBack, dry_run: bool) -> String {
    match (&r.database_dump, &r.database_before) {
        (Some(d), Some(before)) if dry_run => format!("the database would be restored from {d}, after saving it as it is to {before}; changes made since the backup would be lost\n"),
        (Some(d), Some(before)) => format!("the database was restored from {d}; changes made since the backup are lost, and the database as it was before the rollback is saved in {before}\n"),
        (Some(d), None) if !r.unchanged => format!(
            "the database was not restored: if {} migrated it, {} refuses it; add --restore-database to restore {d}{}\n",
            r.from,
            r.to,
            r.restore_hint.as_deref().map(|h| format!(" (what it runs: {h})")).unwrap_or_default()
        ),
        _ => String::new(),
    }
}
