//! `upkeep-detect`: which products are installed, which version and
//! edition, and who manages them.

use clap::{CommandFactory, Parser};
use serde::Serialize;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use upkeep_cli::{self, AllowExec, CommonArgs, Format, Manual};
use upkeep_engine::context::Context;
use upkeep_engine::detect::{self, Install, Options, Report};
use upkeep_engine::guard;
use upkeep_sys::{ExitCode, Result};

pub const NAME: &str = "upkeep-detect";

pub const MANUAL: Manual = Manual {
    exit: &[
        ExitCode::Ok,
        ExitCode::Failed,
        ExitCode::Usage,
        ExitCode::BadInput,
    ],
    files: &[
        (
            "/var/lib/dpkg/",
            "the dpkg database (status, updates/, info/*.list, info/*.md5sums), read directly",
        ),
        ("/var/lib/rpm/", "the rpm database, read through rpm --root"),
    ],
    environment: &[],
    notes: "",
};

#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    about = "Report the managed installs on a system: product, version, edition, manager",
    long_about = "Reports every install of the products upkeep knows (from its plugin \
manifests): where it is, which version and edition it is, which package manages it \
(dpkg, rpm, or none: a tarball), whether the binary still matches what the package \
recorded, and whether an embedded instance is enabled. Nothing is changed.",
    after_help = MANUAL.after_help()
)]
pub struct Args {
    /// Only these products (default: every product with a manifest).
    #[arg(value_name = "PRODUCT")]
    pub products: Vec<String>,
    /// Instead of detecting, print the packages owning PATH (like dpkg -S, rpm -qf).
    #[arg(long, value_name = "PATH")]
    pub owner: Option<PathBuf>,
    #[command(flatten)]
    pub exec: AllowExec,
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
    if let Some(path) = &args.owner {
        return owner(&root, path, &args);
    }
    let report = Context::open(&root)?.detect(
        &args.products,
        &Options {
            allow_exec: args.exec.allow_exec,
        },
    )?;
    // Reverts recorded by upkeep-guard and not yet converted back or
    // acknowledged; detection never fails over them.
    let reverts = match guard::reverts_of(&root, &report) {
        Ok(r) => r,
        Err(e) => {
            let mut r = report;
            r.warnings
                .push(format!("could not read the recorded reverts: {e}"));
            return print(&args, &r, &[]);
        }
    };
    print(&args, &report, &reverts)
}

#[derive(Serialize)]
struct WithReverts<'a> {
    #[serde(flatten)]
    report: &'a Report,
    reverts: &'a [guard::Revert],
}

fn print(args: &Args, report: &Report, reverts: &[guard::Revert]) -> Result<ExitCode> {
    match args.common.format {
        Format::Json => upkeep_cli::print_json(&WithReverts { report, reverts })?,
        Format::Text => {
            let mut s = render_text(report);
            for r in reverts {
                s.push('\n');
                s.push_str(&r.message());
                s.push('\n');
            }
            upkeep_cli::print(&s)?
        }
    }
    Ok(ExitCode::Ok)
}

#[derive(Serialize)]
struct OwnerReport {
    path: String,
    owners: Vec<detect::Owner>,
}

/// `--owner PATH`: like `dpkg -S` / `rpm -qf`.
fn owner(root: &upkeep_sys::SysRoot, path: &std::path::Path, args: &Args) -> Result<ExitCode> {
    let owners = detect::owners(root, path)?;
    let report = OwnerReport {
        path: upkeep_sys::root::normalize_inside(path)
            .display()
            .to_string(),
        owners,
    };
    match args.common.format {
        Format::Json => upkeep_cli::print_json(&report)?,
        Format::Text if report.owners.is_empty() => {
            upkeep_cli::print(&format!("{}: not owned by any package\n", report.path))?
        }
        Format::Text => {
            let names: Vec<&str> = report.owners.iter().map(|o| o.package.as_str()).collect();
            upkeep_cli::print(&format!("{}: {}\n", names.join(", "), report.path))?
        }
    }
    Ok(ExitCode::Ok)
}

pub fn render_text(report: &Report) -> String {
    let mut s = String::new();
    if report.installs.is_empty() {
        let _ = writeln!(s, "No managed installs found under {}.", report.root);
    }
    for (n, i) in report.installs.iter().enumerate() {
        if n > 0 {
            s.push('\n');
        }
        render_install(&mut s, i);
    }
    for w in &report.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

fn render_install(s: &mut String, i: &Install) {
    let edition = &i.edition_title;
    let _ = writeln!(
        s,
        "{} {} ({}), {}",
        i.product,
        i.version.as_deref().unwrap_or("(version unknown)"),
        i.kind,
        edition
    );
    if let Some(b) = &i.binary {
        let _ = writeln!(
            s,
            "  binary    {}  {}:{} {}",
            b.path, b.owner, b.group, b.mode
        );
    }
    if let Some(d) = &i.dir {
        let _ = writeln!(s, "  directory {d}");
    }
    let m = &i.manager;
    match (&m.package, &m.version) {
        (Some(p), Some(v)) => {
            let _ = writeln!(s, "  managed   by {} package {p} {v}", m.kind);
        }
        (Some(p), None) => {
            let _ = writeln!(s, "  managed   by {} package {p}", m.kind);
        }
        _ => {
            let _ = writeln!(s, "  managed   by no package (tarball install)");
        }
    }
    match i.modified_from_package {
        Some(true) => {
            let _ = writeln!(
                s,
                "  MODIFIED  the binary differs from what {} recorded: a package upgrade or reinstall will replace it",
                m.package.as_deref().unwrap_or("its package")
            );
        }
        Some(false) => {
            let _ = writeln!(s, "  unmodified (matches the package's checksum)");
        }
        None => {}
    }
    if let Some(h) = &i.host {
        let _ = writeln!(
            s,
            "  host      {} {}",
            h.product,
            h.version.as_deref().unwrap_or("(version unknown)")
        );
    }
    if let Some(e) = i.embedded_enabled {
        let _ = writeln!(s, "  embedded  {}", if e { "enabled" } else { "disabled" });
    }
    if !i.services.is_empty() {
        let via = i
            .service_manager
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        let _ = writeln!(s, "  services  {}{via}", i.services.join(", "));
    }
    if !i.services_missing.is_empty() {
        let _ = writeln!(
            s,
            "  services  {}: declared, not found",
            i.services_missing.join(", ")
        );
    }
    if let Some(c) = &i.config {
        let _ = writeln!(s, "  config    {c}");
    }
}
