//! `upkeep-lease`: lend a file (and its directory) to a user for an
//! in-place upgrade, and give back exactly the owner, group, mode and file
//! capabilities it had.

use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::time::Duration;
use upkeep_cli::{self, CommonArgs, DryRun, Format, Manual, Wait};
use upkeep_engine::lease::{self, GrantReport, GrantRequest, Lease, LeaseOutcome, RestoreReport};
use upkeep_sys::{state, Error, ExitCode, Result};

pub const NAME: &str = "upkeep-lease";

const WALKTHROUGH: &str = "Refused (3): a symlink, hard link, non-regular or setuid file, a parent
writable by others, or (restore, recover) a path that is no longer what it was.

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

pub const MANUAL: Manual = Manual {
    exit: &[
        ExitCode::Ok,
        ExitCode::Failed,
        ExitCode::Usage,
        ExitCode::Refused,
        ExitCode::BadInput,
        ExitCode::Busy,
    ],
    files: &[
        (
            "/var/lib/upkeep/leases/*.json",
            "open leases: journal records written before anything changes",
        ),
        ("/var/lib/upkeep/lock", "the one writers' lock (see --wait)"),
        (
            "/var/lib/dpkg/statoverride",
            "read to warn about paths dpkg re-owns on upgrade",
        ),
    ],
    environment: &[],
    notes: WALKTHROUGH,
};

#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    about = "Lend file ownership for an in-place upgrade and give it back exactly",
    after_help = MANUAL.after_help()
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub wait: Wait,
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
        #[command(flatten)]
        dry_run: DryRun,
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
    let wait = args.wait.duration();
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
                Some(name) => lease::from_manifest(&root, name, paths, to, dir)?,
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
                    dry_run: dry_run.dry_run,
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
    if outcomes
        .iter()
        .any(|o| o.result == lease::LeaseResult::Kept)
    {
        ExitCode::Refused
    } else {
        ExitCode::Ok
    }
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
        match o.result {
            lease::LeaseResult::Restored => {
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
