//! `upkeep-reconfigure`: the gitlab-ctl-style wrapper other upkeep binaries
//! and people use: runs the host's reconfigure with the given arguments,
//! streams its output, returns its exit code, logs what it ran.

use clap::{CommandFactory, Parser};
use std::ffi::OsString;
use upkeep_cli::{self, CommonArgs, Manual};
use upkeep_engine::reconfigure;
use upkeep_sys::{ExitCode, Result};

pub const NAME: &str = "upkeep-reconfigure";

const NOTES: &str = "Otherwise the exit status is the reconfigure's own.
Before it runs, upkeep-guard's check warns about what the reconfigure may
undo; after, it reports what was reverted (--no-check skips both).
The command comes from the plugin manifests ([install.host] ctl and
reconfigure); under --root only the root's own copy is run, and it runs inside
the root (chroot DIR, with UPKEEP_ROOT=/), never on this machine: where it
cannot start there (no interpreter or libraries in the root) it does not run
at all.";

pub const MANUAL: Manual = Manual {
    exit: &[
        ExitCode::Ok,
        ExitCode::Failed,
        ExitCode::Usage,
        ExitCode::BadInput,
    ],
    files: &[(
        "/var/log/upkeep/upkeep.log",
        "what ran and what it returned",
    )],
    environment: &[],
    notes: NOTES,
};

#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    about = "Run the host's reconfigure, passing arguments through",
    after_help = MANUAL.after_help()
)]
pub struct Args {
    /// Which host product's reconfigure, as the manifests name it (default: the one host a manifest declares).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Skip upkeep-guard's check before and after the reconfigure.
    #[arg(long)]
    pub no_check: bool,
    /// Arguments passed to the reconfigure as they are.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn uu_app() -> clap::Command {
    Args::command()
}

pub fn uumain(args: impl IntoIterator<Item = OsString>) -> i32 {
    upkeep_cli::run::<Args, _>(NAME, args, run)
}

fn run(args: Args) -> Result<ExitCode> {
    let root = args.common.sys_root();
    let report = |msg: &str| eprintln!("{NAME}: {msg}");
    let code = reconfigure::reconfigure(
        &root,
        args.host.as_deref(),
        &args.args,
        !args.no_check,
        report,
    )?;
    Ok(ExitCode::Child(code))
}
