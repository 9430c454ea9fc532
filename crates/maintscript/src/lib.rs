//! `upkeep-maintscript`: one line in each maintainer script of a product's
//! own package, `upkeep-maintscript PRODUCT -- "$@"` (after
//! `dpkg-maintscript-helper`). The installed helper holds the policy, so
//! an older package's scripts get today's.

use clap::{CommandFactory, Parser};
use std::ffi::OsString;
use upkeep_cli::{CommonArgs, Manual};
use upkeep_pkg::maintscript::{parse_deb, parse_rpm, Script, Scriptlet, Step};
use upkeep_sys::{Error, ExitCode, Result};
use upkeep_upgrade_engine::maintscript::{self as ms, Ctx};

pub const NAME: &str = "upkeep-maintscript";

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
            "/var/lib/upkeep/maintscript/PRODUCT.json",
            "the upgrade between its preinst and its postinst: versions and the backup",
        ),
        (
            "/var/lib/upkeep/backups/PRODUCT/",
            "verified backups of the paths the manifest preserves (SHA256SUMS)",
        ),
        (
            "/etc/upkeep/upkeep.toml",
            "on_downgrade = \"warn\" under [product.PRODUCT] lets a downgrade through",
        ),
    ],
    environment: &[
        (
            "DPKG_MAINTSCRIPT_NAME",
            "which Debian maintainer script runs (set by dpkg)",
        ),
        (
            "DPKG_MAINTSCRIPT_PACKAGE",
            "the package whose script runs (set by dpkg)",
        ),
        ("DPKG_ROOT", "the system root dpkg works on (set by dpkg)"),
    ],
    notes: "In a .deb, every maintainer script is one line: upkeep-maintscript PRODUCT -- \"$@\". \
In postinst it goes last, after the package's own chown -R: a chown clears file capabilities, \
and upkeep applies them after it. In an .rpm: upkeep-maintscript PRODUCT --scriptlet pre -- \"$1\" \
(and post, preun, postun, posttrans); %pretrans must be Lua (see the README).",
};

#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    about = "What a product's package calls from its maintainer scripts: policy, backup, ownership, capabilities, rollback",
    long_about = "Called from a product's own maintainer scripts with the script's arguments: \
upkeep-maintscript PRODUCT -- \"$@\". preinst upgrade applies the downgrade policy first (a refused \
downgrade exits 3 before anything is unpacked), then a preflight and a verified backup of what the \
manifest preserves, and closes leases the upgrade makes moot; prerm upgrade and failed-upgrade apply \
the policy too; postinst configure puts the preserved paths back, re-applies ownership and file \
capabilities and records the new state for upkeep-guard; abort-upgrade rolls back from the backup. \
Every call may be repeated. `upkeep-maintscript supports` exits 0 when the helper is there.",
    after_help = MANUAL.after_help()
)]
pub struct Args {
    /// The product (its manifest name), or `supports`.
    #[arg(value_name = "PRODUCT")]
    pub product: String,
    /// rpm: which scriptlet calls (pre, post, preun, postun, posttrans); deb: $DPKG_MAINTSCRIPT_NAME.
    #[arg(long, value_name = "NAME")]
    pub scriptlet: Option<String>,
    /// The version being replaced, where the package manager does not say (rpm: by default read from the root's rpm database).
    #[arg(long, value_name = "VERSION")]
    pub old_version: Option<String>,
    /// The version being installed, where the package manager does not say (rpm: %{version}-%{release}).
    #[arg(long, value_name = "VERSION")]
    pub new_version: Option<String>,
    /// The script's own arguments, after `--`.
    #[arg(last = true, value_name = "ARGS")]
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

fn step_of(args: &Args) -> Result<(Step, String)> {
    if let Some(s) = &args.scriptlet {
        let sl = Scriptlet::parse(s).ok_or_else(|| {
            Error::Usage(format!(
                "--scriptlet {s}: not pre, post, preun, postun or posttrans"
            ))
        })?;
        let step = parse_rpm(sl, args.args.first().map(String::as_str))
            .map_err(|e| Error::Usage(e.to_string()))?;
        return Ok((step, format!("%{s}")));
    }
    let name = std::env::var("DPKG_MAINTSCRIPT_NAME").map_err(|_| {
        Error::Usage(
            "$DPKG_MAINTSCRIPT_NAME is not set: call me from a maintainer script, or give --scriptlet"
                .into(),
        )
    })?;
    let script = Script::parse(&name).ok_or_else(|| {
        Error::Usage(format!(
            "DPKG_MAINTSCRIPT_NAME={name}: not a maintainer script"
        ))
    })?;
    let step = parse_deb(script, &args.args).map_err(|e| Error::Usage(e.to_string()))?;
    Ok((step, format!("{name} {}", args.args.join(" "))))
}

fn run(args: Args) -> Result<ExitCode> {
    if args.product == "supports" && args.args.is_empty() && args.scriptlet.is_none() {
        return Ok(ExitCode::Ok);
    }
    let (step, script) = step_of(&args)?;
    let root = args.common.sys_root();
    let plugin = ms::find_plugin(&root, &args.product)?;
    let mut ctx = Ctx::new(&root, &plugin);
    ctx.package = std::env::var("DPKG_MAINTSCRIPT_PACKAGE")
        .ok()
        .filter(|s| !s.is_empty());
    if args.scriptlet.is_some() {
        ctx.manager = ms::Manager::Rpm;
    }
    ctx.old_version = args.old_version.clone();
    ctx.new_version = args.new_version.clone();
    let out = ms::run(&ctx, &step, script.trim())?;
    let mut text = String::new();
    for w in &out.warnings {
        eprintln!("{NAME}: {}: warning: {w}", args.product);
    }
    for d in &out.done {
        text.push_str(&format!("{NAME}: {}: {d}\n", args.product));
    }
    upkeep_cli::print(&text)?;
    Ok(ExitCode::Ok)
}
