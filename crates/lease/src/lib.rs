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
writable by others, (restore, recover) a path that is no longer what it was,
or (grant --product) an architecture the product's own conversion does not
run on: the binary's ELF header and its package's architecture (dpkg
Architecture, rpm ARCH) must be one the manifest lists, else nothing is lent
and the manual route is printed; a binary whose architecture cannot be read
is refused the same way.

An in-place edition conversion by the product's own upgrader:
  upkeep-lease grant --product PRODUCT --expires 30m
      checks the architecture (above), prints what the conversion downloads
      and how a proxy reaches it (the server's own environment), records
      owner, group, mode and every attribute of the binary the product's
      manifest names, moves it into a private directory beside it
      (DIR/.NAME.upkeep-lease.d; a link stays at its path, the running server
      follows) and lends only that directory to the product's user: an
      upgrader that checks the directory of the binary's real path is
      satisfied, and the binary's own directory stays root's
  (run the conversion in the product, e.g. from its admin console; restart)
  upkeep-lease restore --all
      takes the private directory back, moves the new binary back to its path
      with the recorded owner, mode and capabilities, removes the directory
      (and in it the old binary an upgrader left under a temporary name, once
      it is the recorded file), and says whether the conversion happened:
      \"converted to Enterprise Edition\" (by the manifest's edition rules) or
      \"unchanged\"
A lease that is never restored is restored by `upkeep-lease recover` once it
expires (default: 1h after the grant); the package hooks and the
upkeep-lease-recover timer run it.

A lent directory: at grant every entry in it is recorded (name, inode, type,
owner, mode, size, times, attributes, digest; bounded) and the other programs
in it are named. While it is lent upkeep runs nothing from it. Restore takes
the directory back first, then compares: anything the holder added, replaced
or changed besides the lent files is taken back (owner root, no write for
others, no setuid, no ACLs), listed with the `apt-get install --reinstall` or
`dnf reinstall` command of its package, and restore exits 1; upkeep then runs
such a file only once its content is what it was or what its package shipped.
Every extended attribute (ACLs, capabilities) is put back as recorded; extra
hard links the holder made to a lent file are broken (copy, rename over).
Leases on the same directory share its record; the last one gives it back.
With --product the directory is lent only when the manifest asks (lease.dir).

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
        #[arg(long, conflicts_with = "private")]
        dir: bool,
        /// Lend a new private directory holding only the binary instead: the
        /// binary moves into it for the lease, a link stays at its path.
        #[arg(long)]
        private: bool,
        /// Give everything back automatically after this long (recover, run by the timer, does it).
        #[arg(long, value_name = "DURATION", default_value = lease::DEFAULT_EXPIRY, value_parser = parse_duration)]
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
            private,
            expires,
            product,
            dry_run,
        } => {
            let g = match &product {
                Some(name) => {
                    let mut g = lease::from_manifest(&root, name, paths, to, dir)?;
                    if private {
                        g.private = true;
                        g.dir = false;
                    }
                    g
                }
                None => lease::Granted {
                    paths,
                    to: to.ok_or_else(|| {
                        Error::Usage("--to USER[:GROUP] is required without --product".into())
                    })?,
                    dir,
                    private,
                    notes: Vec::new(),
                },
            };
            let mut report = lease::grant(
                &root,
                &GrantRequest {
                    paths: g.paths,
                    to: g.to,
                    dir: g.dir,
                    private: g.private,
                    expires,
                    product,
                    dry_run: dry_run.dry_run,
                    wait,
                },
            )?;
            report.notes = g.notes;
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

/// Refused (3) when a lease stays open; failed (1) when the holder changed
/// anything besides the lent files (all of it is listed); else 0.
fn exit_for(outcomes: &[LeaseOutcome]) -> ExitCode {
    if outcomes
        .iter()
        .any(|o| o.result == lease::LeaseResult::Kept)
    {
        ExitCode::Refused
    } else if outcomes
        .iter()
        .any(|o| o.findings().any(|f| !f.is_leftover()))
    {
        ExitCode::Failed
    } else {
        ExitCode::Ok
    }
}

fn render_findings(s: &mut String, o: &LeaseOutcome) {
    for f in o.findings() {
        if f.is_leftover() {
            let _ = writeln!(
                s,
                "left by the upgrader: {}: {}; {}",
                f.path, f.detail, f.action
            );
            continue;
        }
        let _ = writeln!(
            s,
            "changed by the holder: {} ({}): {}; {}",
            f.path, f.change, f.detail, f.action
        );
        if let Some(cmd) = &f.reinstall {
            let _ = writeln!(s, "  belongs to a package: run `{cmd}`");
        }
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
            if let Some(pv) = l.private.as_ref().filter(|pv| pv.link == e.path) {
                let _ = writeln!(
                    s,
                    "{} {} into {} (itself not lent; a link stays at its path)",
                    if r.dry_run { "would move" } else { "moved" },
                    e.path,
                    pv.dir
                );
                continue;
            }
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
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

fn render_outcomes(outcomes: &[LeaseOutcome]) -> String {
    let mut s = String::new();
    for o in outcomes {
        match o.result {
            lease::LeaseResult::Restored => {
                for e in &o.entries {
                    if let Some(c) = &e.conversion {
                        let _ = writeln!(s, "restored {}: {c}", e.path);
                        continue;
                    }
                    let what = match (e.content_changed, e.replaced) {
                        (true, _) => {
                            "; its content changed during the lease (the upgrade happened)"
                        }
                        (false, true) => "; a different file stands there now, same content",
                        _ => "",
                    };
                    let _ = writeln!(s, "restored {}{what}", e.path);
                }
                render_findings(&mut s, o);
            }
            _ => {
                let _ = writeln!(
                    s,
                    "lease {} {}: {}",
                    o.id,
                    o.result,
                    o.message.as_deref().unwrap_or("")
                );
                render_findings(&mut s, o);
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
