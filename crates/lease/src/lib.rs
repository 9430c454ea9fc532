//! `upkeep-lease`: lend a file (and its directory) to a user for an
//! in-place upgrade, and give back exactly the owner, group, mode and file
//! capabilities it had.

use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::time::Duration;
use upkeep_cli::{self, CommonArgs, Format};
use upkeep_engine::detect::{self, Options, System};
use upkeep_engine::lease::{self, GrantReport, GrantRequest, Lease, LeaseOutcome, RestoreReport};
use upkeep_engine::plugin;
use upkeep_sys::{state, Error, ExitCode, Result};

pub const NAME: &str = "upkeep-lease";

const WALKTHROUGH: &str = "Exit status:
  0   done (also when there was nothing to do)
  1   failed
  2   usage error
  3   refused: a symlink, hard link, non-regular or setuid file, a parent writable by
      others, an unknown user, or (restore, recover) a path that is no longer what it was
  65  bad input (a malformed lease record or manifest)
  75  busy: another upkeep holds the lock (see --wait)

Mattermost inside GitLab Omnibus, Team -> Enterprise in place:
  upkeep-lease grant --product mattermost --expires 30m
      records owner, group, mode and capabilities of /opt/gitlab/embedded/bin/mattermost
      and of /opt/gitlab/embedded/bin, then lends both to the mattermost user
  (System Console > Edition and License > Upgrade to Enterprise Edition; restart)
  upkeep-lease restore --all
      gives both back exactly (on the new binary the upgrade created) and says
      whether the binary changed, i.e. whether the conversion happened
A lease that is never restored is restored by `upkeep-lease recover` once it
expires; the package hooks and the upkeep-lease-recover timer run it.

State: ROOT/var/lib/upkeep/leases/*.json (0600, in a 0700 directory), written
before anything changes, so recover can finish or roll back after a crash.";

#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    about = "Lend file ownership for an in-place upgrade and give it back exactly",
    after_help = WALKTHROUGH
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    /// Wait this many seconds for another upkeep's lock before giving up (exit 75).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, global = true)]
    pub wait: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record each path's owner, group, mode and capabilities, then lend it to USER.
    Grant {
        /// Files to lend, as seen inside the system.
        #[arg(value_name = "PATH")]
        paths: Vec<String>,
        /// Lend to USER, or USER:GROUP to change the group too.
        #[arg(long, value_name = "USER[:GROUP]")]
        to: Option<String>,
        /// Also lend the directory holding each path.
        #[arg(long)]
        dir: bool,
        /// Give everything back automatically after this long (recover does it).
        #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
        expires: Duration,
        /// Lend what the product's manifest names for an in-place upgrade.
        #[arg(long, value_name = "PRODUCT")]
        product: Option<String>,
        /// Show what would be lent; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Give back exactly what was recorded and close the lease.
    Restore {
        /// Paths whose leases to close.
        #[arg(value_name = "PATH", required_unless_present = "all")]
        paths: Vec<String>,
        /// Every open lease.
        #[arg(long, conflicts_with = "paths")]
        all: bool,
    },
    /// List open leases and when they expire.
    Status,
    /// Restore expired leases, finish what a crash interrupted, close leases a package upgrade made moot.
    Recover,
}

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    state::parse_duration(s)
}

pub fn uu_app() -> clap::Command {
    Args::command()
}

pub fn uumain(args: impl IntoIterator<Item = OsString>) -> i32 {
    upkeep_cli::run::<Args, _>(NAME, args, run)
}

fn run(args: Args) -> Result<ExitCode> {
    let root = args.common.sys_root();
    let wait = Duration::from_secs(args.wait);
    let json = args.common.format == Format::Json;
    match args.command {
        Command::Grant {
            paths,
            to,
            dir,
            expires,
            product,
            dry_run,
        } => {
            let (paths, to, dir) = match &product {
                Some(name) => from_manifest(&root, name, paths, to, dir)?,
                None => (
                    paths,
                    to.ok_or_else(|| {
                        Error::Usage("--to USER[:GROUP] is required without --product".into())
                    })?,
                    dir,
                ),
            };
            let report = lease::grant(
                &root,
                &GrantRequest {
                    paths,
                    to,
                    dir,
                    expires,
                    product,
                    dry_run,
                    wait,
                },
            )?;
            if json {
                upkeep_cli::print_json(&report)?;
            } else {
                upkeep_cli::print(&render_grant(&report))?;
            }
            Ok(ExitCode::Ok)
        }
        Command::Restore { paths, all } => {
            let report = lease::restore(&root, if all { &[] } else { &paths }, wait)?;
            if json {
                upkeep_cli::print_json(&report)?;
            } else {
                upkeep_cli::print(&render_restore(&report))?;
            }
            Ok(exit_for(&report.leases))
        }
        Command::Status => {
            let leases = lease::status(&root)?;
            if json {
                upkeep_cli::print_json(&serde_json::json!({ "leases": leases }))?;
            } else {
                upkeep_cli::print(&render_status(&leases))?;
            }
            Ok(ExitCode::Ok)
        }
        Command::Recover => {
            let outcomes = lease::recover(&root, wait)?;
            if json {
                upkeep_cli::print_json(&serde_json::json!({ "leases": outcomes }))?;
            } else if !outcomes.is_empty() {
                // Silent when there is nothing to do: it runs from hooks.
                upkeep_cli::print(&render_outcomes(&outcomes))?;
            }
            Ok(exit_for(&outcomes))
        }
    }
}

fn exit_for(outcomes: &[LeaseOutcome]) -> ExitCode {
    if outcomes.iter().any(|o| o.result == "kept") {
        ExitCode::Refused
    } else {
        ExitCode::Ok
    }
}

/// `--product`: the lease the manifest describes for the install found.
fn from_manifest(
    root: &upkeep_sys::SysRoot,
    name: &str,
    paths: Vec<String>,
    to: Option<String>,
    dir: bool,
) -> Result<(Vec<String>, String, bool)> {
    let plugins = plugin::load(root)?;
    let selected = detect::select(&plugins, &[name.to_string()])?;
    let mut sys = System::open(root)?;
    let report = detect::detect(&mut sys, &selected, &Options::default())?;
    let specs: Vec<_> = report
        .installs
        .iter()
        .filter_map(|i| i.lease.as_ref())
        .collect();
    let spec = match specs.as_slice() {
        [] => {
            return Err(Error::Refused(format!(
                "no install of {name} with a lease in its manifest was found"
            )))
        }
        [one] => *one,
        _ => {
            return Err(Error::Usage(format!(
                "several installs of {name} found: name the PATH to lend"
            )))
        }
    };
    let paths = if paths.is_empty() {
        spec.paths.clone()
    } else {
        paths
    };
    Ok((
        paths,
        to.unwrap_or_else(|| spec.to.clone()),
        dir || spec.dir,
    ))
}

fn render_grant(r: &GrantReport) -> String {
    let mut s = String::new();
    for p in &r.already_leased {
        let _ = writeln!(s, "{p}: already lent (nothing changed)");
    }
    if let Some(l) = &r.lease {
        let verb = if r.dry_run { "would lend" } else { "lent" };
        for e in &l.entries {
            let _ = writeln!(
                s,
                "{verb} {} (was uid {} gid {} mode {:04o}) to {}",
                e.path, e.uid, e.gid, e.mode, l.to.spec
            );
        }
        if !r.dry_run {
            let _ = writeln!(
                s,
                "lease {} expires {}; give it back with: {NAME} restore --all",
                l.id,
                utc(l.expires)
            );
        }
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

fn render_outcomes(outcomes: &[LeaseOutcome]) -> String {
    let mut s = String::new();
    for o in outcomes {
        match o.result.as_str() {
            "restored" => {
                for e in &o.entries {
                    let what = match (e.content_changed, e.replaced) {
                        (true, _) => {
                            "; its content changed during the lease (the upgrade happened)"
                        }
                        (false, true) => "; a different file stands there now, same content",
                        _ => "",
                    };
                    let _ = writeln!(s, "restored {}{what}", e.path);
                }
            }
            _ => {
                let _ = writeln!(
                    s,
                    "lease {} {}: {}",
                    o.id,
                    o.result,
                    o.message.as_deref().unwrap_or("")
                );
            }
        }
    }
    s
}

fn render_restore(r: &RestoreReport) -> String {
    let mut s = render_outcomes(&r.leases);
    for p in &r.not_leased {
        let _ = writeln!(s, "{p}: no open lease (nothing to do)");
    }
    s
}

fn render_status(leases: &[Lease]) -> String {
    if leases.is_empty() {
        return "no open leases\n".into();
    }
    let now = state::now();
    let mut s = String::new();
    for l in leases {
        let when = if l.expires <= now {
            "expired".to_string()
        } else {
            format!("expires in {}", human(l.expires - now))
        };
        let _ = writeln!(
            s,
            "lease {} to {} ({:?}, {when}, at {})",
            l.id,
            l.to.spec,
            l.state,
            utc(l.expires)
        );
        for e in &l.entries {
            let _ = writeln!(
                s,
                "  {} (was uid {} gid {} mode {:04o})",
                e.path, e.uid, e.gid, e.mode
            );
        }
    }
    s
}

fn human(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

fn utc(t: u64) -> String {
    state::utc_human(t)
}
