//! Switching an embedded instance off or on in its host's config, end to
//! end: read the config, find out what it means (evaluated by Ruby where a
//! Ruby can run), plan the edit, verify it before it lands, write, read
//! back, run the host's reconfigure, verify the instance's state.

use crate::context::Context;
use crate::embedded::{self, Action, ConfigState, Located};
use crate::{host, rb_eval};
use serde::Serialize;
use std::path::Path;
use upkeep_formats::ruby_config::RubyConfig;
use upkeep_sys::configfile::ConfigFile;
use upkeep_sys::{Error, Result, SysRoot};

/// What to do: only report (`action` none), or switch.
pub struct Request {
    pub product: String,
    pub action: Option<Action>,
    pub dry_run: bool,
    /// Run the host's reconfigure after the edit and verify.
    pub reconfigure: bool,
    /// The reconfigure's output goes to stderr (stdout carries JSON).
    pub ctl_output_to_stderr: bool,
    /// Who edits, for upkeep's log.
    pub log_as: &'static str,
}

/// The report, and why the switch failed after it changed things (the
/// report is shown either way).
pub struct Switched {
    pub report: Report,
    pub failed: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub product: String,
    pub config: String,
    pub host: HostReport,
    pub before: ConfigState,
    pub after: Option<ConfigState>,
    /// The service link exists (runit supervises the instance).
    pub service_link: bool,
    pub changed: bool,
    pub dry_run: bool,
    pub diff: Option<String>,
    pub backup: Option<String>,
    pub changes: Vec<String>,
    pub warnings: Vec<String>,
    pub reconfigure: Option<ReconfigureReport>,
    pub verified: Option<bool>,
    pub next_steps: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct HostReport {
    pub product: String,
    pub version: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ReconfigureReport {
    pub command: String,
    pub exit_code: i32,
}

pub fn switch(root: &SysRoot, req: &Request) -> Result<Switched> {
    let ctx = Context::open(root)?;
    let plugin = ctx.select(std::slice::from_ref(&req.product))?[0];
    let loc = embedded::locate(&mut ctx.system()?, plugin)?;
    let product = req.product.clone();
    let file = ConfigFile::open(root, &loc.config)?;
    let rb = RubyConfig::parse(&file.real, file.text.clone())?;
    // What the file means, as Ruby computes it; a static reading only when
    // no Ruby can run.
    let mut static_why = None;
    let ruby = rb_eval::Ruby::find(root, &loc.host);
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
        service_link: service_link(root, &loc),
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
    let Some(action) = req.action else {
        return Ok(Switched {
            report,
            failed: None,
        });
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
    report.dry_run = req.dry_run;
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
    if req.dry_run {
        let d = embedded::unified_diff(&file.text, &plan.new_text, &loc.config, &loc.config);
        report.diff = Some(d);
        return Ok(Switched {
            report,
            failed: None,
        });
    }
    if plan.changed {
        let backup = file.replace(&plan.new_text, |_| Ok(()))?;
        // Read back: never report an edit that did not land.
        let now = ConfigFile::open(root, &loc.config)?;
        if now.text != plan.new_text {
            return Err(Error::Failed(format!(
                "{} does not hold the edited text after writing it (its backup is {})",
                file.real.display(),
                backup.display()
            )));
        }
        report.backup = Some(inside_path(root, &backup));
        host::log_line(
            root,
            &format!(
                "{}: edited {} ({})",
                req.log_as,
                loc.config,
                report.changes.join("; ")
            ),
        );
    }

    let want_running = action == Action::Enable;
    let link_wrong = report.service_link != want_running;
    let mut failed = None;
    if req.reconfigure && (plan.changed || link_wrong) {
        match host::find_ctl(root, &loc.host) {
            None => {
                failed = Some(format!(
                    "no {} found under {}: run its reconfigure yourself",
                    loc.host.ctl.as_deref().unwrap_or("control command"),
                    root.dir().display()
                ))
            }
            Some(ctl) => {
                let code =
                    host::run_ctl(root, &ctl, &loc.host.reconfigure, req.ctl_output_to_stderr)?;
                report.reconfigure = Some(ReconfigureReport {
                    command: format!("{} {}", ctl.display(), loc.host.reconfigure.join(" ")),
                    exit_code: code,
                });
                if code != 0 {
                    failed = Some(format!("reconfigure failed with exit code {code}"));
                } else {
                    let link = service_link(root, &loc);
                    let running = match &loc.embedded.service {
                        Some(svc) if !want_running => host::service_running(root, &ctl, svc)?,
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
    Ok(Switched { report, failed })
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
