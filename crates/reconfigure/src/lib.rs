//! `upkeep-reconfigure`: the gitlab-ctl-style wrapper other upkeep binaries
//! and people use: runs the host's reconfigure with the given arguments,
//! streams its output, returns its exit code, logs what it ran.

use clap::{CommandFactory, Parser};
use std::ffi::OsString;
use upkeep_cli::{self, CommonArgs};
use upkeep_engine::detect::Options;
use upkeep_engine::plugin::HostSpec;
use upkeep_engine::{guard, host, plugin};
use upkeep_sys::{Error, ExitCode, Result};

pub const NAME: &str = "upkeep-reconfigure";

#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    about = "Run the host's reconfigure (gitlab-ctl reconfigure), passing arguments through",
    after_help = "Exit status: the reconfigure's own; 1 if it could not be run, 2 usage,\n\
65 a malformed plugin manifest.\n\
Before it runs, upkeep-guard's check warns about what the reconfigure may\n\
undo; after, it reports what was reverted (--no-check skips both).\n\
The command comes from the plugin manifests ([install.host] ctl and reconfigure);\n\
under --root only the root's own copy is run. What ran is logged to\n\
ROOT/var/log/upkeep/upkeep.log."
)]
pub struct Args {
    /// Which host product's reconfigure (as the manifests name it).
    #[arg(long, default_value = "gitlab")]
    pub host: String,
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
    let plugins = plugin::load(&root)?;
    let spec: HostSpec = plugins
        .iter()
        .flat_map(|p| p.manifest.installs.iter())
        .filter_map(|i| i.host.clone())
        .find(|h| h.product == args.host && h.ctl.is_some())
        .ok_or_else(|| {
            Error::Usage(format!(
                "no manifest names a control command for host '{}'",
                args.host
            ))
        })?;
    let ctl = host::find_ctl(&root, &spec).ok_or_else(|| {
        Error::Failed(format!(
            "{} not found under {}",
            spec.ctl.as_deref().unwrap_or("?"),
            root.dir().display()
        ))
    })?;
    let mut argv = spec.reconfigure.clone();
    argv.extend(args.args);
    if !args.no_check {
        // Before: what this reconfigure may undo (Mattermost's docs say a
        // reconfigure can put Team Edition back), and record what is there.
        match guard::observe(&root, &Options::default(), true) {
            Ok(obs) => {
                for f in &obs.findings {
                    eprintln!("{NAME}: warning: a reconfigure may revert {}", f.message());
                }
            }
            Err(e) => eprintln!("{NAME}: warning: could not check before reconfigure: {e}"),
        }
    }
    let code = host::run_ctl(&root, &ctl, &argv, false)?;
    if !args.no_check {
        match guard::observe(&root, &Options::default(), true) {
            Ok(obs) => {
                for r in &obs.reverts {
                    let msg = r.message();
                    eprintln!("{NAME}: {msg}");
                    host::syslog(&root, NAME, &msg);
                    host::log_line(&root, &format!("{NAME}: {msg}"));
                }
            }
            Err(e) => eprintln!("{NAME}: warning: could not check after reconfigure: {e}"),
        }
    }
    std::process::exit(code)
}
