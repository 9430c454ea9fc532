//! `upkeep-embedded`: switch an embedded instance (Mattermost inside GitLab
//! Omnibus) off or on in the host's config, reconfigure, and verify.

use clap::{CommandFactory, Parser, Subcommand};
use serde::Serialize;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use upkeep_cli::{self, CommonArgs, DryRun, Format, Manual};
use upkeep_engine::detect::{self, System};
use upkeep_engine::embedded::{self, Action, ConfigState, Located};
use upkeep_engine::{host, plugin, rb_eval};
use upkeep_formats::ruby_config::RubyConfig;
use upkeep_sys::configfile::ConfigFile;
use upkeep_sys::{Error, ExitCode, Result, SysRoot};

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

#[derive(Debug, Serialize)]
struct Report {
    product: String,
    config: String,
    host: HostReport,
    before: ConfigState,
    after: Option<ConfigState>,
    /// The service link exists (runit supervises the instance).
    service_link: bool,
    changed: bool,
    dry_run: bool,
    diff: Option<String>,
    backup: Option<String>,
    changes: Vec<String>,
    warnings: Vec<String>,
    reconfigure: Option<ReconfigureReport>,
    verified: Option<bool>,
    next_steps: Vec<String>,
}

#[derive(Debug, Serialize)]
struct HostReport {
    product: String,
    version: Option<String>,
}

#[derive(Debug, Serialize)]
struct ReconfigureReport {
    command: String,
    exit_code: i32,
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
    let plugins = plugin::load(&root)?;
    let plugin = detect::select(&plugins, std::slice::from_ref(&product))?[0];
    let mut sys = System::open(&root)?;
    let loc = embedded::locate(&mut sys, plugin)?;
    let file = ConfigFile::open(&root, &loc.config)?;
    let rb = RubyConfig::parse(&file.real, file.text.clone())?;
    // What the file means, as Ruby computes it; a static reading only when
    // no Ruby can run.
    let mut static_why = None;
    let ruby = rb_eval::Ruby::find(&root, &loc.host);
    let before_eval = match &ruby {
        None => {
            static_why = Some("no Ruby was found".to_string());
            None
        }
        // A Ruby that is there but cannot evaluate (a timeout, no right to
        // chroot) is a failure, not a reason to guess.
        Some(r) => r.evaluate(&[&file.text])?.pop(),
    };
    let before = match &before_eval {
        Some(ev) => embedded::state_from_eval(&rb, &loc.embedded, ev, &file.real)?,
        None => embedded::state(&rb, &loc.embedded)?,
    };
    let mut report = Report {
        product: product.clone(),
        config: loc.config.clone(),
        host: HostReport {
            product: loc.host.product.clone(),
            version: loc.host_version_raw.clone(),
        },
        before,
        after: None,
        service_link: service_link(&root, &loc),
        changed: false,
        dry_run: false,
        diff: None,
        backup: None,
        changes: Vec::new(),
        warnings: Vec::new(),
        reconfigure: None,
        verified: None,
        next_steps: Vec::new(),
    };
    if let Some(why) = &static_why {
        report.warnings.push(format!(
            "This is a static reading of {}, because {why}: settings inside conditionals, blocks or computed keys may differ from what the host sees.",
            loc.config
        ));
    }
    let (Some(action), Some(edit)) = (action, edit) else {
        output(&report, json)?;
        return Ok(ExitCode::Ok);
    };

    let plan = embedded::plan(
        &rb,
        &loc.embedded,
        &report.before,
        action,
        &loc.host.product,
        loc.host_version.as_ref(),
        &product,
    )?;
    report.changed = plan.changed;
    report.changes = plan.changes.clone();
    report.warnings.extend(plan.warnings.iter().cloned());
    report.dry_run = edit.dry_run.dry_run;
    if plan.changed {
        // Every edit is checked before it lands (and before a dry run
        // shows it): Ruby's settings, a second run, the new text's syntax.
        let after_eval = match (&ruby, &before_eval) {
            (Some(r), Some(_)) => r.evaluate(&[&plan.new_text])?.pop(),
            _ => None,
        };
        let evaluated = match (&before_eval, &after_eval) {
            (Some(b), Some(a)) => Some((b.settings(&file.real)?, a)),
            _ => None,
        };
        report.after = Some(embedded::verify(
            &file.real,
            &loc.embedded,
            &plan,
            evaluated,
            &loc.host.product,
            loc.host_version.as_ref(),
            &product,
        )?);
    } else {
        report.after = Some(report.before.clone());
    }
    if edit.dry_run.dry_run {
        let d = embedded::unified_diff(&file.text, &plan.new_text, &loc.config, &loc.config);
        report.diff = Some(d);
        output(&report, json)?;
        return Ok(ExitCode::Ok);
    }
    if plan.changed {
        let backup = file.replace(&plan.new_text, |_| Ok(()))?;
        // Read back: never report an edit that did not land.
        let now = ConfigFile::open(&root, &loc.config)?;
        if now.text != plan.new_text {
            return Err(Error::Failed(format!(
                "{} does not hold the edited text after writing it (its backup is {})",
                file.real.display(),
                backup.display()
            )));
        }
        report.backup = Some(inside_path(&root, &backup));
        host::log_line(
            &root,
            &format!(
                "{NAME}: edited {} ({})",
                loc.config,
                report.changes.join("; ")
            ),
        );
    }

    let want_running = action == Action::Enable;
    let link_wrong = report.service_link != want_running;
    let mut failed = None;
    if !edit.no_reconfigure && (plan.changed || link_wrong) {
        match host::find_ctl(&root, &loc.host) {
            None => {
                failed = Some(format!(
                    "no {} found under {}: run its reconfigure yourself",
                    loc.host.ctl.as_deref().unwrap_or("control command"),
                    root.dir().display()
                ))
            }
            Some(ctl) => {
                let code = host::run_ctl(&root, &ctl, &loc.host.reconfigure, json)?;
                report.reconfigure = Some(ReconfigureReport {
                    command: format!("{} {}", ctl.display(), loc.host.reconfigure.join(" ")),
                    exit_code: code,
                });
                if code != 0 {
                    failed = Some(format!("reconfigure failed with exit code {code}"));
                } else {
                    let link = service_link(&root, &loc);
                    let running = match &loc.embedded.service {
                        Some(svc) if !want_running => host::service_running(&root, &ctl, svc)?,
                        _ => want_running,
                    };
                    report.service_link = link;
                    let ok = link == want_running && running == want_running;
                    report.verified = Some(ok);
                    if !ok {
                        failed = Some(format!(
                            "after reconfigure {product} is still {}",
                            if want_running {
                                "not enabled"
                            } else {
                                "enabled or running"
                            }
                        ));
                    }
                }
            }
        }
    }
    if action != Action::Enable {
        report.next_steps = loc.embedded.next_steps.clone();
    }
    output(&report, json)?;
    match failed {
        Some(why) => {
            let backup = report
                .backup
                .as_deref()
                .map(|b| format!(" (the config was changed; its backup is {b})"))
                .unwrap_or_default();
            Err(Error::Failed(format!("{why}{backup}")))
        }
        None => Ok(ExitCode::Ok),
    }
}

fn service_link(root: &SysRoot, loc: &Located) -> bool {
    upkeep_sys::safe::stat(root, &loc.embedded.enabled_if_symlink, false).is_ok_and(|st| {
        st.is_some_and(|st| upkeep_sys::safe::Kind::of(&st) == upkeep_sys::safe::Kind::Symlink)
    })
}

fn inside_path(root: &SysRoot, real: &Path) -> String {
    match real.strip_prefix(root.dir()) {
        Ok(p) if !root.is_host() => format!("/{}", p.display()),
        _ => real.display().to_string(),
    }
}

fn on_line(line: Option<usize>) -> String {
    line.map(|l| format!(" on line {l}")).unwrap_or_default()
}

fn output(r: &Report, json: bool) -> Result<()> {
    if json {
        return upkeep_cli::print_json(r);
    }
    let mut s = String::new();
    let state = |c: &ConfigState| {
        let why = match c.reason.as_str() {
            "explicit" => format!("set explicitly{}", on_line(c.line)),
            "implied" => format!("implied by the URL setting{}", on_line(c.line)),
            _ => "the default".to_string(),
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
