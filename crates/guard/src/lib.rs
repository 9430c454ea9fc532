//! `upkeep-guard`: warns before a package upgrade, reinstall or reconfigure
//! silently undoes local work (an Enterprise binary put back to Team), vetoes
//! what is configured to be blocked, and reports loudly after the fact.

use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Read;
use upkeep_cli::{self, AllowExec, CommonArgs, Format, Manual, Strict};
use upkeep_engine::detect::Options;
use upkeep_engine::guard::{self, Observation};
use upkeep_engine::{lease, notify};
use upkeep_sys::{ExitCode, Result, SysRoot};

pub const NAME: &str = "upkeep-guard";

pub const MANUAL: Manual = Manual {
    exit: &[
        ExitCode::Ok,
        ExitCode::Failed,
        ExitCode::Usage,
        ExitCode::Refused,
        ExitCode::Finding,
        ExitCode::BadInput,
    ],
    files: &[
        (
            "/etc/upkeep/upkeep.toml",
            "policy per product: on_revert, on_downgrade",
        ),
        (
            "/var/lib/upkeep/editions.json",
            "what the triggers last saw, to tell a revert",
        ),
        (
            "/var/log/upkeep/upkeep.log",
            "reverts reported and runs vetoed",
        ),
    ],
    environment: &[(
        "APT_HOOK_INFO_FD",
        "apt-hook: the descriptor apt writes the hook stream to (else stdin)",
    )],
    notes: AFTER_HELP,
};

const AFTER_HELP: &str = "Refused (3) is apt-hook's veto: apt stops before dpkg runs. The triggers
always exit 0. The apt hook never breaks apt by accident: a broken config, database or
stream is a warning and exit 0.

Configuration: /etc/upkeep/upkeep.toml (every key optional):
  [product.NAME]           # NAME: a product manifest's name
  on_revert = \"warn\"      # or \"block\": veto a package action that reverts a local change
  on_downgrade = \"block\"  # or \"warn\"; default: what the product's manifest says

Hooks (in hooks/ of the source): the apt.conf.d snippet (DPkg::Pre-Install-Pkgs,
protocol version 3), the dpkg triggers file and postinst fragment
(interest-noawait on the manifests' paths), rpm %triggerin/%triggerpostun
scriptlets, and a command file that adds `upkeep-check` to the host's control command.";

#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    about = "Warn before an upgrade or reconfigure undoes local work, and report it after",
    after_help = MANUAL.after_help()
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Report binaries a package upgrade, reinstall or reconfigure would revert, and reverts already done.
    Check {
        #[command(flatten)]
        strict: Strict,
        #[command(flatten)]
        exec: AllowExec,
        /// Record what is seen now (check is read-only without it; the triggers record).
        #[arg(long)]
        record: bool,
    },
    /// Stop reporting a revert: the local change is gone for good, or will be made again later.
    Ack {
        /// The product, as its manifest names it.
        product: String,
        /// Only the revert of this binary (default: every one of the product).
        path: Option<String>,
    },
    /// apt DPkg::Pre-Install-Pkgs hook (protocol 3 on APT_HOOK_INFO_FD, else stdin).
    AptHook {
        /// The package manager that runs the hook (dnf's plugin speaks apt's protocol too).
        #[arg(long, value_enum, default_value = "apt")]
        caller: HookCaller,
    },
    /// dpkg file trigger: report reverts, record the new state, close moot leases.
    DpkgTrigger {
        /// The trigger names dpkg passes (ignored: everything is checked).
        #[arg(value_name = "TRIGGER")]
        triggers: Vec<String>,
    },
    /// rpm %triggerin/%triggerpostun: report reverts, record the new state, close moot leases.
    RpmTrigger {
        /// rpm's scriptlet arguments (ignored: everything is checked).
        #[arg(value_name = "ARG", allow_hyphen_values = true)]
        args: Vec<String>,
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
    match args.command {
        Command::Ack { product, path } => {
            let n = guard::ack(&root, &Options::default(), &product, path.as_deref())?;
            upkeep_cli::print(&if n == 0 {
                format!("There is no reported revert of {product} to acknowledge.\n")
            } else {
                format!("Acknowledged {n} revert(s) of {product}: they are no longer reported.\n")
            })?;
            Ok(ExitCode::Ok)
        }
        Command::Check {
            strict,
            exec,
            record,
        } => {
            let (strict, allow_exec) = (strict.strict, exec.allow_exec);
            // A broken configuration is bad input here (65); the hook only warns.
            guard::Config::load(&root)?;
            let obs = guard::observe(&root, &Options { allow_exec }, record)?;
            for r in obs.reverts.iter().filter(|r| r.new) {
                report_revert(&root, r);
            }
            if json {
                upkeep_cli::print_json(&obs)?;
            } else {
                upkeep_cli::print(&render(&obs))?;
            }
            let at_risk = !obs.findings.is_empty() || !obs.reverts.is_empty();
            Ok(if strict && at_risk {
                ExitCode::Finding
            } else {
                ExitCode::Ok
            })
        }
        Command::AptHook { caller } => {
            let stream = read_hook_stream();
            let outcome = guard::apt_hook(&root, &stream, caller.into());
            for m in &outcome.messages {
                eprintln!("{NAME}: {m}");
            }
            if outcome.veto {
                notify::log_line(
                    &root,
                    &format!(
                        "{NAME}: vetoed an apt run: {}",
                        outcome.messages.join(" | ")
                    ),
                );
                return Ok(ExitCode::Refused);
            }
            Ok(ExitCode::Ok)
        }
        Command::DpkgTrigger { .. } | Command::RpmTrigger { .. } => {
            after_the_fact(&root);
            Ok(ExitCode::Ok)
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum HookCaller {
    Apt,
    Dnf,
}

impl From<HookCaller> for guard::Caller {
    fn from(c: HookCaller) -> guard::Caller {
        match c {
            HookCaller::Apt => guard::Caller::Apt,
            HookCaller::Dnf => guard::Caller::Dnf,
        }
    }
}

/// apt writes the stream to the descriptor named in APT_HOOK_INFO_FD (when
/// configured), else to stdin. Read through /proc so no unsafe fd juggling
/// is needed; anything unreadable becomes an empty stream (a warning).
// apt's own pipe, not a path of the root.
#[allow(clippy::disallowed_methods)]
fn read_hook_stream() -> Vec<u8> {
    let mut s = Vec::new();
    match std::env::var("APT_HOOK_INFO_FD")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        Some(fd) => {
            let _ = std::fs::File::open(format!("/proc/self/fd/{fd}"))
                .and_then(|mut f| f.read_to_end(&mut s));
        }
        None => {
            let _ = std::io::stdin().lock().read_to_end(&mut s);
        }
    }
    s
}

fn report_revert(root: &SysRoot, r: &guard::Revert) {
    let msg = r.message();
    eprintln!("{NAME}: {msg}");
    notify::syslog(root, NAME, &msg);
    notify::log_line(root, &format!("{NAME}: {msg}"));
}

/// What the package triggers run: never fails the package manager.
fn after_the_fact(root: &SysRoot) {
    match guard::observe(root, &Options::default(), true) {
        Ok(obs) => {
            for r in obs.reverts.iter().filter(|r| r.new) {
                report_revert(root, r);
            }
            for w in &obs.warnings {
                eprintln!("{NAME}: warning: {w}");
            }
        }
        Err(e) => eprintln!("{NAME}: warning: could not check for reverts: {e}"),
    }
    match lease::recover(root, std::time::Duration::from_secs(10)) {
        Ok(outcomes) => {
            for o in outcomes {
                eprintln!(
                    "{NAME}: lease {} {}{}",
                    o.id,
                    o.result,
                    o.message.map(|m| format!(": {m}")).unwrap_or_default()
                );
            }
        }
        Err(e) => eprintln!("{NAME}: warning: could not recover leases: {e}"),
    }
}

fn render(obs: &Observation) -> String {
    let mut s = String::new();
    for r in &obs.reverts {
        let _ = writeln!(s, "{}", r.message());
    }
    for f in &obs.findings {
        let _ = writeln!(s, "{}", f.message("AT RISK:"));
    }
    for w in &obs.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    if obs.reverts.is_empty() && obs.findings.is_empty() {
        let _ = writeln!(
            s,
            "nothing at risk ({} installs checked)",
            obs.installs.len()
        );
    }
    s
}
