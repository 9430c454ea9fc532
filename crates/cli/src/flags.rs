//! Every flag more than one binary takes, defined once (after ripgrep's
//! `flags/defs.rs`): one name, one help text, one value syntax. A binary
//! flattens the groups it uses; help, man pages and completions follow.

use std::path::PathBuf;
use std::time::Duration;
use upkeep_sys::root::SysRoot;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For scripts; field names are stable.
    Json,
}

/// `--root` and `--format`: every upkeep binary takes both.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Act on the system below DIR instead of / (default: $DPKG_ROOT, else /).
    #[arg(long, value_name = "DIR", global = true)]
    pub root: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Text, global = true)]
    pub format: Format,
}

impl CommonArgs {
    pub fn sys_root(&self) -> SysRoot {
        SysRoot::from_arg_or_env(self.root.clone())
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }
}

/// `--dry-run`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DryRun {
    /// Show what would change (a unified diff where a file would change); change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `--wait`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Wait {
    /// Wait this many seconds for another upkeep's lock before giving up (exit 75).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, global = true)]
    pub wait: u64,
}

impl Wait {
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.wait)
    }
}

/// `--allow-exec`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct AllowExec {
    /// Run product binaries where a manifest allows it (to read a version or edition), with a timeout.
    #[arg(long)]
    pub allow_exec: bool,
}

/// `--strict`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Strict {
    /// Exit 4 when there is a finding (something at risk or already reverted).
    #[arg(long)]
    pub strict: bool,
}
