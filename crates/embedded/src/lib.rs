//! `upkeep-embedded`: switch an embedded instance (Mattermost inside GitLab
//! Omnibus) off or on in the host's config, reconfigure, and verify.

use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::fmt::Write as _;
use upkeep_cli::{self, CommonArgs, DryRun, Format, Manual};
use upkeep_engine::embedded::{Action, ConfigState, Why};
use upkeep_engine::switch;
use upkeep_sys::{Error, ExitCode, Result};

pub const NAME: &str = "upkeep-embedded";

pub const MANUAL: Manual = Manual {
    exit: &[
        ExitCode::Ok,
        ExitCode::Failed,
        ExitCode::Usage,
        ExitCode::Refused,
        ExitCode::BadInput,
        ExitCode::Busy,
    ],
    files: &[(
        "/var/log/upkeep/upkeep.log",
        "what ran and what it returned",
    )],
    environment: &[],
    notes: AFTER_HELP,
};

const AFTER_HELP: &str = "Failed (1): the reconfigure failed, or the instance still runs after it.
Refused (3): enabling an instance the host no longer bundles, or a symlinked
config whose target is not root-owned or is writable by others.
Busy (75): the config changed while upkeep was editing it.

disable sets the product's enable setting to false in the host's config. On
host releases before the one that removed the bundled product (the manifest's
removed_in) the last assignment is changed when it is a statement of its own
with a literal value; otherwise (inside a conditional or block, computed)
one final assignment is added after all code (before __END__); without any,
the template's commented line is uncommented, else one is added at the end of
the product's section. From removed_in on, and with --for-upgrade on any
release, every statement that sets the product's settings is commented out
instead, each marked with why; statements sharing a line are split first,
every other statement left byte-identical. A removed setting inside a
conditional, block or expression, or a method called on the settings object
(merge!), is refused (exit 1, nothing written), naming the line to change by
hand.

What the config means is what Ruby computes: the file is evaluated as the host
loads it, on recording objects. On / the host's Ruby runs (the manifest's
ruby, else ruby on PATH); under --root DIR the root's own Ruby runs inside DIR
(chroot), and without one this machine's ruby evaluates the text after
chrooting itself into DIR, so the config's code never sees the live machine.
Without any Ruby the reading is static, and the report says so. Every edit is
verified before it is written: Ruby must see exactly the old settings plus the
intended change, and a second run must change nothing; otherwise exit 1 and
nothing is written. A backup (0600) is written next to the file before it is
replaced; owner, group, mode, CRLF line endings and a missing final newline
are kept; the file is read back after writing. Under --root the host's control
command runs inside the root (chroot), never on this machine. What to edit comes from the product's plugin manifest.";

#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    about = "Switch an embedded instance off or on in its host's config",
    after_help = MANUAL.after_help()
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct EditArgs {
    /// The product whose embedded instance to switch (e.g. mattermost).
    pub product: String,
    #[command(flatten)]
    pub dry_run: DryRun,
    /// Edit the config only; do not run the host's reconfigure.
    #[arg(long)]
    pub no_reconfigure: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Say whether the config enables the embedded instance, and why.
    Status {
        /// The product (e.g. mattermost).
        product: String,
    },
    /// Switch the embedded instance off, reconfigure, verify, say what to do next.
    Disable {
        #[command(flatten)]
        edit: EditArgs,
        /// Comment out every setting the release that removed the bundled product rejects, on any host version.
        #[arg(long)]
        for_upgrade: bool,
    },
    /// Switch the embedded instance on, reconfigure, verify.
    Enable {
        #[command(flatten)]
        edit: EditArgs,
    },
}

pub fn uu_app() -> clap::Command {
    Args::command()
}

pub fn uumain(args: impl IntoIterator<Item = OsString>) -> i32 {
    upkeep_cli::run::<Args, _>(NAME, args, run)
}

fn run(args: Args) -> Result<ExitCode> {
    let root = args.common.sys_root();
    let json = args.common.format == Format::Json;
    let (product, action, edit) = match &args.command {
        Command::Status { product } => (product.clone(), None, None),
        Command::Disable { edit, for_upgrade } => (
            edit.product.clone(),
            Some(if *for_upgrade {
                Action::DisableForUpgrade
            } else {
                Action::Disable
            }),
            Some(edit.clone()),
        ),
        Command::Enable { edit } => (
            edit.product.clone(),
            Some(Action::Enable),
            Some(edit.clone()),
        ),
    };
    let req = switch::Request {
        product,
        action,
        dry_run: edit.as_ref().is_some_and(|e| e.dry_run.dry_run),
        reconfigure: edit.as_ref().is_some_and(|e| !e.no_reconfigure),
        ctl_output_to_stderr: json,
        log_as: NAME,
    };
    let done = switch::switch(&root, &req)?;
    output(&done.report, json)?;
    match done.failed {
        Some(why) => {
            let backup = done
                .report
                .backup
                .as_deref()
                .map(|b| format!(" (the config was changed; its backup is {b})"))
                .unwrap_or_default();
            Err(Error::Failed(format!("{why}{backup}")))
        }
        None => Ok(ExitCode::Ok),
    }
}

fn on_line(line: Option<usize>) -> String {
    line.map(|l| format!(" on line {l}")).unwrap_or_default()
}

fn output(r: &switch::Report, json: bool) -> Result<()> {
    if json {
        return upkeep_cli::print_json(r);
    }
    let mut s = String::new();
    let state = |c: &ConfigState| {
        let why = match c.reason {
            Why::Explicit => format!("set explicitly{}", on_line(c.line)),
            Why::Implied => format!("implied by the URL setting{}", on_line(c.line)),
            Why::Default => "the default".to_string(),
        };
        format!("{} ({why})", if c.enabled { "enabled" } else { "disabled" })
    };
    let host = format!(
        "{} {}",
        r.host.product,
        r.host.version.as_deref().unwrap_or("(version unknown)")
    );
    let _ = writeln!(
        s,
        "{}: embedded {} in {host} is {}",
        r.config,
        r.product,
        state(&r.before)
    );
    if r.after.is_none() {
        let _ = writeln!(
            s,
            "service link: {}",
            if r.service_link {
                "present (supervised)"
            } else {
                "absent"
            }
        );
        for a in &r.before.active_settings {
            let _ = writeln!(s, "  active setting, line {a}");
        }
    }
    if let Some(d) = &r.diff {
        s.push_str(if d.is_empty() {
            "no change needed\n"
        } else {
            d
        });
    } else if r.after.is_some() {
        if r.changes.is_empty() {
            let _ = writeln!(s, "no change needed");
        }
        for c in &r.changes {
            let _ = writeln!(s, "  {c}");
        }
        if let Some(b) = &r.backup {
            let _ = writeln!(s, "backup: {b}");
        }
        if let Some(rc) = &r.reconfigure {
            let _ = writeln!(s, "ran: {} (exit {})", rc.command, rc.exit_code);
        }
        if r.verified == Some(true) {
            let _ = writeln!(
                s,
                "verified: service link {}",
                if r.service_link {
                    "present"
                } else {
                    "gone, not running"
                }
            );
        }
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    if !r.next_steps.is_empty() && r.diff.is_none() {
        let _ = writeln!(
            s,
            "next, to move the data to a standalone server (not done by upkeep):"
        );
        for n in &r.next_steps {
            let _ = writeln!(s, "  - {n}");
        }
    }
    upkeep_cli::print(&s)
}
