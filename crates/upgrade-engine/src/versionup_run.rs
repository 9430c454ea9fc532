//! Running a version-up (`[versionup]`): `apply`, `resume` and `recover`.
//!
//! The source version's step list (manifest data, copied into the journal
//! record so that a resume follows the same list) runs step by step, each
//! journaled first in the shared write-ahead journal
//! (`ROOT/var/lib/upkeep/versionup/`). The operator's steps (a reboot, a
//! setup screen, an install without an INSTALLER) stop the run: the record
//! keeps the place, on disk, across the reboot; `resume` goes on once a
//! changed boot id (read from `ROOT/proc/sys/kernel/random/boot_id`)
//! confirms the reboot, or `--confirm ID` any other step.
//!
//! A failing step undoes what was made, newest first (services started
//! again, the services file, autostart, the install tree and database
//! files from the backup made before the install), unless a step marked
//! `keeps_new` was made already: then the new version is in service and
//! the run stops, keeping its place, and says what to do.

use crate::autostart::{self, UnitState};
use crate::versionup::{self, StepSpec, VersionupPlan, VersionupSpec};
use crate::{apply, fsops, service};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use upkeep_formats::services::{self, Service};
use upkeep_sys::fault::point;
use upkeep_sys::journal::{Journal, Phase, Record};
use upkeep_sys::{safe, state, Error, Result, SysRoot};

/// The shared journal's name for version-ups.
pub const JOURNAL: &str = "versionup";
/// Where the boot id is read, inside the system root: a reboot changes it.
pub const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
/// Where version-up backups go, inside the system, one directory a product.
pub const BACKUPS: &str = "/var/lib/upkeep/backups";

/// The journal record's body: the steps and everything a resume, an undo
/// or a `recover` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Body {
    pub product: String,
    pub from: String,
    pub to: String,
    pub path: String,
    pub installer: Option<String>,
    pub version_file: String,
    pub services_file: String,
    pub services_comment: String,
    pub units: Vec<String>,
    pub steps: Vec<StepSpec>,
    /// What the clear steps remove: the files there before the run began.
    pub old_journals: Vec<String>,
    /// Autostart as it was, recorded before it was switched off.
    pub autostart: Option<Vec<UnitState>>,
    /// (step index, backup directory inside the system).
    pub backups: Vec<(usize, String)>,
    /// How many backups stay once a run finished (journals written
    /// before this field keep the manifest default).
    #[serde(default = "versionup::default_backup_keep")]
    pub backup_keep: usize,
    /// The services file before it was edited.
    pub services_before: Option<String>,
    /// The boot id when the run stopped for the reboot.
    pub boot_id: Option<String>,
    /// The operator's step the run stopped at.
    pub waiting: Option<usize>,
}

/// Where a run stopped for the operator, and how to go on.
#[derive(Debug, Clone, Serialize)]
pub struct Wait {
    pub product: String,
    pub from: String,
    pub to: String,
    /// 1-based.
    pub step: usize,
    pub count: usize,
    pub id: String,
    pub name: String,
    pub text: Option<String>,
    pub reboot: bool,
    /// The command that goes on once the step is done.
    pub resume: String,
}

/// What a command did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Outcome {
    /// `--dry-run`: the plan, nothing changed.
    Planned {
        plan: VersionupPlan,
    },
    /// Already at the target version: nothing to do.
    Current {
        product: String,
        version: String,
    },
    Done {
        product: String,
        from: String,
        to: String,
        backups: Vec<String>,
    },
    Waiting(Wait),
    RolledBack {
        product: String,
        from: String,
    },
    /// No version-up under way.
    Nothing {
        product: String,
    },
}

fn lock(root: &SysRoot) -> Result<upkeep_sys::state::Lock> {
    Journal::lock(root, Duration::from_secs(10))
}

/// The product's record, if a version-up is under way.
fn find(root: &SysRoot, product: &str) -> Result<Option<(Journal, Record<Body>)>> {
    let Some(j) = Journal::existing(root, JOURNAL)? else {
        return Ok(None);
    };
    let rec = j
        .load_all::<Body>()?
        .into_iter()
        .find(|r| r.body.product == product);
    Ok(rec.map(|r| (j, r)))
}

fn under_way(rec: &Record<Body>) -> Error {
    let b = &rec.body;
    let at = b
        .waiting
        .unwrap_or(rec.done)
        .min(b.steps.len().saturating_sub(1));
    Error::Refused(format!(
        "a version-up of {} from {} to {} is under way (step {}/{}, '{}'): run upkeep-upgrade resume {} (or recover)",
        b.product,
        b.from,
        b.to,
        at + 1,
        b.steps.len(),
        b.steps.get(at).map(|s| s.name.as_str()).unwrap_or(""),
        b.product
    ))
}

/// Checks everything, then runs the step list from the start. Refused
/// before anything changes: a version-up under way, a plan refused (a
/// held port, no path), an INSTALLER not in the system.
pub fn apply(
    root: &SysRoot,
    product: &str,
    spec: &VersionupSpec,
    installer: Option<&str>,
    dry_run: bool,
) -> Result<Outcome> {
    if let Some((_, rec)) = find(root, product)? {
        return Err(under_way(&rec));
    }
    let from = versionup::installed(root, product, spec)?;
    if from == spec.to {
        return Ok(Outcome::Current {
            product: product.into(),
            version: from,
        });
    }
    let plan = versionup::plan(root, product, spec, installer)?;
    if let Some(r) = &plan.refused {
        return Err(Error::Refused(r.clone()));
    }
    check_inputs(root, spec, &plan, installer)?;
    if dry_run {
        return Ok(Outcome::Planned { plan });
    }
    let _lock = lock(root)?;
    if let Some((_, rec)) = find(root, product)? {
        return Err(under_way(&rec));
    }
    let path = versionup::path_for(spec, &from)
        .ok_or_else(|| Error::Failed(format!("no version-up path from {from}")))?;
    let body = Body {
        product: product.into(),
        from,
        to: spec.to.clone(),
        path: path.name.clone(),
        installer: installer.map(str::to_string),
        version_file: spec.version_file.clone(),
        services_file: spec.services_file.clone(),
        services_comment: spec
            .services_comment
            .clone()
            .unwrap_or_else(|| product.into()),
        units: spec.units.clone(),
        old_journals: old_journals(root, &path.steps)?,
        steps: path.steps.clone(),
        autostart: None,
        backups: Vec::new(),
        backup_keep: spec.backup_keep,
        services_before: None,
        boot_id: None,
        waiting: None,
    };
    let journal = Journal::open(root, JOURNAL)?;
    let mut rec = Record::new(body);
    rec.count = rec.body.steps.len();
    drive(root, &journal, &mut rec, None)
}

fn check_inputs(
    root: &SysRoot,
    spec: &VersionupSpec,
    plan: &VersionupPlan,
    installer: Option<&str>,
) -> Result<()> {
    if let Some(i) = installer {
        if !i.starts_with('/') || !fsops::is_file(root, &root.path(i)) {
            return Err(Error::Usage(format!(
                "the installer {i} is not a file inside the system ({}): give its path as the system sees it",
                root.path(i).display()
            )));
        }
    }
    let path = versionup::path_for(spec, &plan.from);
    for p in path.iter().flat_map(|p| written_paths(spec, &p.steps)) {
        no_links(root, &p).map_err(|e| {
            Error::Refused(format!(
                "{e}: upkeep does not back up, restore, clear or edit through a link; nothing was changed"
            ))
        })?;
    }
    let adds = plan.steps.iter().any(|s| !s.entries.is_empty());
    if adds && !fsops::is_file(root, &root.path(&spec.services_file)) {
        return Err(Error::Refused(format!(
            "{} is not there: the services-file entries cannot be added; nothing was changed",
            root.path(&spec.services_file).display()
        )));
    }
    Ok(())
}

/// What the run removes, restores or rewrites: the backed-up trees, the
/// directories it clears, the services file.
fn written_paths(spec: &VersionupSpec, steps: &[StepSpec]) -> Vec<String> {
    let mut out = vec![spec.services_file.clone()];
    for st in steps
        .iter()
        .filter(|s| matches!(s.kind.as_str(), "backup" | "clear"))
    {
        out.extend(
            st.paths
                .iter()
                .map(|p| p.strip_suffix("/*").unwrap_or(p).to_string()),
        );
    }
    out
}

/// Refuses a path that is, or is reached through, a symlink.
fn no_links(root: &SysRoot, inside: &str) -> Result<()> {
    safe::open_root(root)?
        .stat(
            &safe::relative(Path::new(inside)),
            safe::Resolve::NoLinks,
            true,
        )
        .map(|_| ())
}

/// The files the clear steps will remove: what is there now.
fn old_journals(root: &SysRoot, steps: &[StepSpec]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for st in steps.iter().filter(|s| s.kind == "clear") {
        for p in &st.paths {
            if let Some(dir) = p.strip_suffix("/*") {
                let mut names: Vec<String> = fsops::entries(root, &root.path(dir))?
                    .into_iter()
                    .map(|(n, _)| format!("{dir}/{}", n.to_string_lossy()))
                    .collect();
                names.sort();
                out.extend(names);
            } else if fsops::exists(root, &root.path(p)) {
                out.push(p.clone());
            }
        }
    }
    Ok(out)
}

/// Goes on with an interrupted or stopped run. `confirm` names the
/// operator's step the run waits at (not needed for a reboot: a changed
/// boot id confirms it).
pub fn resume(root: &SysRoot, product: &str, confirm: Option<&str>) -> Result<Outcome> {
    let _lock = lock(root)?;
    let Some((journal, mut rec)) = find(root, product)? else {
        if confirm.is_some() {
            return Err(Error::Refused(format!(
                "no version-up of {product} is under way: nothing to confirm"
            )));
        }
        return Ok(Outcome::Nothing {
            product: product.into(),
        });
    };
    journal.clean_temps()?;
    if let Some(c) = confirm {
        let waiting = rec.body.waiting.map(|i| &rec.body.steps[i]);
        if !waiting.is_some_and(|s| names(s, c)) {
            return Err(Error::Refused(format!(
                "--confirm {c}: the version-up is not waiting at that step ({}); nothing was changed",
                match waiting {
                    Some(s) => format!("it waits at '{}', id {}", s.name, id_of(s)),
                    None => "it waits at no operator's step".into(),
                }
            )));
        }
    }
    match rec.phase {
        Phase::Undoing => undo_all(root, &journal, &mut rec),
        Phase::Done => finish(root, &journal, &rec),
        Phase::Doing => drive(root, &journal, &mut rec, confirm),
    }
}

/// Finishes or undoes an interrupted run (never one waiting for the
/// operator): undone while the old version can come back from its
/// backup, finished once a `keeps_new` step was made.
pub fn recover(root: &SysRoot, product: &str) -> Result<Outcome> {
    let nothing = Outcome::Nothing {
        product: product.into(),
    };
    match Journal::existing(root, JOURNAL)? {
        None => return Ok(nothing),
        Some(j) if j.is_empty()? => return Ok(nothing),
        Some(_) => {}
    }
    let _lock = lock(root)?;
    let Some((journal, mut rec)) = find(root, product)? else {
        return Ok(nothing);
    };
    journal.clean_temps()?;
    match rec.phase {
        Phase::Undoing => undo_all(root, &journal, &mut rec),
        Phase::Done => finish(root, &journal, &rec),
        Phase::Doing if rec.body.waiting.is_some() => Ok(Outcome::Waiting(wait_of(root, &rec))),
        Phase::Doing if past_keeps_new(&rec) => drive(root, &journal, &mut rec, None),
        Phase::Doing => undo_all(root, &journal, &mut rec),
    }
}

fn undo_all(root: &SysRoot, journal: &Journal, rec: &mut Record<Body>) -> Result<Outcome> {
    journal.undo(rec, |b, i| undo_step(root, b, i))?;
    Ok(Outcome::RolledBack {
        product: rec.body.product.clone(),
        from: rec.body.from.clone(),
    })
}

fn finish(root: &SysRoot, journal: &Journal, rec: &Record<Body>) -> Result<Outcome> {
    journal.remove(&rec.id)?;
    let b = &rec.body;
    prune_backups(root, b)?;
    Ok(Outcome::Done {
        product: b.product.clone(),
        from: b.from.clone(),
        to: b.to.clone(),
        backups: b.backups.iter().map(|(_, d)| d.clone()).collect(),
    })
}

/// Whether a `keeps_new` step was made: the new version is in service.
fn past_keeps_new(rec: &Record<Body>) -> bool {
    rec.body
        .steps
        .iter()
        .position(|s| s.keeps_new)
        .is_some_and(|k| rec.done > k)
}

fn id_of(s: &StepSpec) -> &str {
    s.id.as_deref().unwrap_or(&s.name)
}

fn names(s: &StepSpec, c: &str) -> bool {
    s.id.as_deref().is_some_and(|i| i.eq_ignore_ascii_case(c)) || s.name.eq_ignore_ascii_case(c)
}

fn wait_of(root: &SysRoot, rec: &Record<Body>) -> Wait {
    let b = &rec.body;
    let i = b.waiting.unwrap_or(rec.done);
    let st = &b.steps[i];
    let reboot = st.kind == "reboot";
    let mut resume = format!("upkeep-upgrade resume {}", b.product);
    if !root.is_host() {
        resume.push_str(&format!(" --root {}", root.dir().display()));
    }
    if !reboot {
        resume.push_str(&format!(" --confirm {}", id_of(st)));
    }
    Wait {
        product: b.product.clone(),
        from: b.from.clone(),
        to: b.to.clone(),
        step: i + 1,
        count: b.steps.len(),
        id: id_of(st).to_string(),
        name: st.name.clone(),
        text: st.text.clone(),
        reboot,
        resume,
    }
}

/// Runs steps `rec.done..` in order, each journaled first; stops at the
/// operator's steps; undoes (or keeps the place) on a failure.
fn drive(
    root: &SysRoot,
    journal: &Journal,
    rec: &mut Record<Body>,
    mut confirm: Option<&str>,
) -> Result<Outcome> {
    rec.phase = Phase::Doing;
    journal.write(rec)?;
    point("versionup:begun");
    while rec.done < rec.count {
        let i = rec.done;
        let st = rec.body.steps[i].clone();
        if versionup::is_operators(&st.kind, rec.body.installer.is_some()) {
            if rec.body.waiting != Some(i) {
                if st.kind == "reboot" {
                    rec.body.boot_id = boot_id(root)?;
                }
                rec.body.waiting = Some(i);
                journal.write(rec)?;
                point("versionup:waiting");
                return Ok(Outcome::Waiting(wait_of(root, rec)));
            }
            confirmed(root, &rec.body, i, confirm.take())?;
            rec.body.waiting = None;
            rec.done += 1;
            journal.write(rec)?;
            point(&format!("versionup:step{i}"));
            continue;
        }
        if let Err(e) = prepare(root, &mut rec.body, i) {
            return Err(failed(root, journal, rec, i, e));
        }
        journal.write(rec)?;
        point(&format!("versionup:before{i}"));
        if let Err(e) = do_step(root, &rec.body, i) {
            return Err(failed(root, journal, rec, i, e));
        }
        rec.done += 1;
        point(&format!("versionup:step{i}"));
        journal.write(rec)?;
    }
    rec.phase = Phase::Done;
    journal.write(rec)?;
    point("versionup:done");
    finish(root, journal, rec)
}

/// The boot id as the system root shows it; `None` when it cannot be read.
pub fn boot_id(root: &SysRoot) -> Result<Option<String>> {
    let text = crate::preflight_io::read_text(root, Path::new(BOOT_ID), 4096)?;
    Ok(text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()))
}

/// Whether the operator's step `i` is confirmed: a changed boot id for
/// the reboot (or `--confirm` when no boot id can be read), `--confirm ID`
/// for the others; an install must have left the target version.
fn confirmed(root: &SysRoot, b: &Body, i: usize, confirm: Option<&str>) -> Result<()> {
    let st = &b.steps[i];
    let (n, count) = (i + 1, b.steps.len());
    if st.kind == "reboot" {
        let now = boot_id(root)?;
        return match (&b.boot_id, &now) {
            (Some(then), Some(now)) if then != now => Ok(()),
            (Some(then), Some(_)) => Err(Error::Refused(format!(
                "step {n}/{count} '{}' is not done: the boot id is still {then} ({} inside the root), so the machine has not restarted since the version-up stopped; restart it, then resume",
                st.name, BOOT_ID
            ))),
            _ if confirm.is_some_and(|c| names(st, c)) => Ok(()),
            _ => Err(Error::Refused(format!(
                "step {n}/{count} '{}': no boot id can be read from {} inside the root to see the restart; once restarted, resume with --confirm {}",
                st.name, BOOT_ID, id_of(st)
            ))),
        };
    }
    if !confirm.is_some_and(|c| names(st, c)) {
        return Err(Error::Refused(format!(
            "step {n}/{count} '{}' is the operator's{}: once it is done, run resume with --confirm {}; nothing was changed",
            st.name,
            st.text.as_deref().map(|t| format!(" ({t})")).unwrap_or_default(),
            id_of(st)
        )));
    }
    if st.kind == "install" {
        check_version(root, b).map_err(|e| Error::Refused(e.to_string()))?;
    }
    Ok(())
}

/// The version file reads the target version.
fn check_version(root: &SysRoot, b: &Body) -> Result<()> {
    let vf = Path::new(&b.version_file);
    let text = crate::preflight_io::read_text(root, vf, 4096)?.unwrap_or_default();
    let now = text.lines().next().unwrap_or("").trim();
    if now != b.to {
        return Err(Error::Failed(format!(
            "{} says '{now}', not {}: the install has not finished",
            root.path(vf).display(),
            b.to
        )));
    }
    Ok(())
}

/// What a step records before it changes anything (journaled with it).
fn prepare(root: &SysRoot, b: &mut Body, i: usize) -> Result<()> {
    match b.steps[i].kind.as_str() {
        "autostart-off" if b.autostart.is_none() => {
            b.autostart = Some(autostart::states(root, &b.units)?);
        }
        "backup" if !b.backups.iter().any(|(j, _)| *j == i) => {
            let version = read_version(root, b);
            let stamp = state::utc_stamp(state::now());
            let base = Path::new(BACKUPS).join(&b.product);
            let dir = (0..100)
                .map(|k| match k {
                    0 => base.join(format!("{stamp}-{version}")),
                    k => base.join(format!("{stamp}-{version}-{k}")),
                })
                .find(|d| !fsops::exists(root, &root.path(d)))
                .ok_or_else(|| Error::Failed("too many backups this second".into()))?;
            b.backups.push((i, dir.display().to_string()));
        }
        "services" if b.services_before.is_none() => {
            b.services_before = Some(read_services(root, b)?);
        }
        _ => {}
    }
    Ok(())
}

fn read_version(root: &SysRoot, b: &Body) -> String {
    crate::preflight_io::read_text(root, Path::new(&b.version_file), 4096)
        .ok()
        .flatten()
        .and_then(|t| t.lines().next().map(|l| l.trim().to_string()))
        .filter(|v| versionup::parse_vvrr(v).is_some())
        .unwrap_or_else(|| "unknown".into())
}

fn run_commands(root: &SysRoot, b: &Body, st: &StepSpec, argvs: &[Vec<String>]) -> Result<()> {
    let lines =
        versionup::command_lines(argvs, &st.services, &b.units, "/", b.installer.as_deref());
    for argv in lines.iter().filter(|a| !a.is_empty()) {
        service::control(root, argv, &[String::new()])?;
    }
    Ok(())
}

fn do_step(root: &SysRoot, b: &Body, i: usize) -> Result<()> {
    let st = &b.steps[i];
    match st.kind.as_str() {
        "stop" | "start" | "run" => run_commands(root, b, st, &st.commands),
        "install" => {
            run_commands(root, b, st, &st.commands)?;
            check_version(root, b)
        }
        "autostart-off" => autostart::switch_off(root, recorded(b)?),
        "autostart-restore" => autostart::restore(root, recorded(b)?),
        "backup" => backup(root, b, i),
        "services" => add_services(root, b, st),
        "clear" => clear(root, b),
        _ => Ok(()),
    }
}

fn recorded(b: &Body) -> Result<&[UnitState]> {
    b.autostart.as_deref().ok_or_else(|| {
        Error::Failed("autostart was not recorded before it was switched off".into())
    })
}

/// Undoes step `i`; safe to run again, and for a step never made.
fn undo_step(root: &SysRoot, b: &Body, i: usize) -> Result<()> {
    let st = &b.steps[i];
    match st.kind.as_str() {
        "stop" | "start" | "run" => run_commands(root, b, st, &st.undo),
        "autostart-off" => match &b.autostart {
            Some(saved) => autostart::restore(root, saved),
            None => Ok(()),
        },
        "install" => restore_backup(root, b, i),
        "services" => remove_services(root, b, st),
        // Backups are kept; the clear is undone with the tree.
        _ => Ok(()),
    }
}

/// The product's version-up backups (machine paths), oldest first.
pub fn list_backups(root: &SysRoot, product: &str) -> Result<Vec<PathBuf>> {
    let base = root.path(BACKUPS).join(product);
    let mut out: Vec<PathBuf> = fsops::entries(root, &base)?
        .into_iter()
        .filter(|(_, k)| *k == safe::Kind::Dir)
        .map(|(n, _)| base.join(n))
        .filter(|p| fsops::is_file(root, &p.join("backup.json")))
        .collect();
    out.sort();
    Ok(out)
}

/// After a finished run: the newest `backup_keep` backups stay (this
/// run's always), older ones go, as `apply` keeps its own.
fn prune_backups(root: &SysRoot, b: &Body) -> Result<()> {
    let mine: Vec<PathBuf> = b.backups.iter().map(|(_, d)| root.path(d)).collect();
    let mut all = list_backups(root, &b.product)?;
    let keep = b.backup_keep.max(1).max(mine.len());
    while all.len() > keep {
        let old = all.remove(0);
        if !mine.contains(&old) {
            fsops::remove_tree(root, &old)?;
        }
    }
    Ok(())
}

/// `/opt/app` -> `opt_app`: a backed-up path's name in a backup.
fn slot(p: &str) -> String {
    p.trim_matches('/').replace('/', "_")
}

fn backup(root: &SysRoot, b: &Body, i: usize) -> Result<()> {
    let st = &b.steps[i];
    let dir = b
        .backups
        .iter()
        .find(|(j, _)| *j == i)
        .map(|(_, d)| root.path(d))
        .ok_or_else(|| Error::Failed("the backup directory was not recorded".into()))?;
    // Half made by an interrupted run: made again.
    fsops::remove_tree(root, &dir)?;
    if let Some(parent) = dir.parent() {
        fsops::create_dir_all(root, parent, 0o700)?;
    }
    fsops::create_private_dir(root, &dir)?;
    let mut sums = fsops::Sums::new();
    let mut absent = Vec::new();
    for p in &st.paths {
        let src = root.path(p);
        if !fsops::exists(root, &src) {
            absent.push(p.clone());
            continue;
        }
        let name = slot(p);
        fsops::copy_tree(root, &src, &dir.join(&name), &name, &mut sums)?;
    }
    sums.write(root, &dir)?;
    let meta = serde_json::json!({
        "product": b.product, "version": read_version(root, b),
        "paths": st.paths, "absent": absent, "created": state::now(),
    });
    fsops::write_private(root, &dir.join("backup.json"), meta.to_string().as_bytes())?;
    apply::verify_backup(root, &dir)
}

/// The install tree and database files back from the last backup made
/// before step `i`, then read back against the backup's checksums.
fn restore_backup(root: &SysRoot, b: &Body, i: usize) -> Result<()> {
    let Some((j, dir)) = b.backups.iter().rfind(|(j, _)| *j < i) else {
        return Err(Error::Failed(
            "no backup was made before the install: restore the install by hand".into(),
        ));
    };
    let dir = root.path(dir);
    apply::verify_backup(root, &dir)?;
    for p in &b.steps[*j].paths {
        no_links(root, p)?;
        let (target, name) = (root.path(p), slot(p));
        fsops::remove_tree(root, &target)?;
        if fsops::exists(root, &dir.join(&name)) {
            // Read back as it is copied (against the backup's own files).
            fsops::copy_tree(
                root,
                &dir.join(&name),
                &target,
                &name,
                &mut fsops::Sums::new(),
            )?;
        }
    }
    verify_restored(root, b, *j, &dir)
}

fn verify_restored(root: &SysRoot, b: &Body, j: usize, dir: &Path) -> Result<()> {
    let sums = dir.join("SHA256SUMS");
    let text = safe::utf8(fsops::read(root, &sums)?.unwrap_or_default(), &sums)?;
    let slots: Vec<(String, PathBuf)> = b.steps[j]
        .paths
        .iter()
        .map(|p| (slot(p), root.path(p)))
        .collect();
    for line in text.lines() {
        let Some((want, rel)) = line.split_once("  ") else {
            continue;
        };
        let Some((name, target)) = slots
            .iter()
            .find(|(s, _)| rel == s || rel.starts_with(&format!("{s}/")))
        else {
            continue;
        };
        let rest = rel[name.len()..].trim_start_matches('/');
        let p = if rest.is_empty() {
            target.clone()
        } else {
            target.join(rest)
        };
        if fsops::sha256(root, &p)? != want {
            return Err(Error::Failed(format!(
                "{}: restored from {} but reads back differently",
                p.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

fn read_services(root: &SysRoot, b: &Body) -> Result<String> {
    let p = root.path(&b.services_file);
    let bytes =
        fsops::read(root, &p)?.ok_or_else(|| Error::Failed(format!("{}: missing", p.display())))?;
    safe::utf8(bytes, &p)
}

fn wanted(st: &StepSpec) -> Vec<Service> {
    st.entries
        .iter()
        .filter_map(|e| Service::parse(e).ok())
        .collect()
}

/// Adds the step's entries (those not there yet), atomically, keeping
/// owner, group, mode, comments and order; then reads the file back: every
/// entry is there, once.
fn add_services(root: &SysRoot, b: &Body, st: &StepSpec) -> Result<()> {
    let p = root.path(&b.services_file);
    let want = wanted(st);
    let text = read_services(root, b)?;
    let added = services::add(&text, &want, &b.services_comment).map_err(|c| conflicts(&p, &c))?;
    if added.added.is_empty() {
        return Ok(());
    }
    fsops::replace_keeping(root, &p, added.text.as_bytes())?;
    match services::add(&read_services(root, b)?, &want, &b.services_comment) {
        Ok(again) if again.added.is_empty() => Ok(()),
        _ => Err(Error::Failed(format!(
            "{}: does not read back with every entry added",
            p.display()
        ))),
    }
}

fn conflicts(p: &Path, c: &[services::Conflict]) -> Error {
    let why: Vec<String> = c.iter().map(|c| c.to_string()).collect();
    Error::Failed(format!("{}: {}", p.display(), why.join("; ")))
}

/// Puts the services file back as it was, if it is what upkeep made of it.
fn remove_services(root: &SysRoot, b: &Body, st: &StepSpec) -> Result<()> {
    let Some(before) = &b.services_before else {
        return Ok(());
    };
    let p = root.path(&b.services_file);
    let now = read_services(root, b)?;
    if now == *before {
        return Ok(());
    }
    let ours = services::add(before, &wanted(st), &b.services_comment).map(|a| a.text);
    if ours.as_deref() != Ok(now.as_str()) {
        return Err(Error::Failed(format!(
            "{} was changed by someone else since upkeep added {}: remove those lines by hand",
            p.display(),
            st.entries.join(", ")
        )));
    }
    fsops::replace_keeping(root, &p, before.as_bytes())
}

/// Removes the journal files there before the run began, then checks
/// they are gone.
fn clear(root: &SysRoot, b: &Body) -> Result<()> {
    for p in &b.old_journals {
        no_links(
            root,
            Path::new(p).parent().and_then(Path::to_str).unwrap_or("/"),
        )?;
        fsops::remove_tree(root, &root.path(p))?;
    }
    if let Some(p) = b
        .old_journals
        .iter()
        .find(|p| fsops::exists(root, &root.path(p)))
    {
        return Err(Error::Failed(format!("{p}: still there after removing it")));
    }
    Ok(())
}

/// What to do when a step fails after the new version went into service:
/// go on, or go back by hand, each part named.
fn kept_in_service(root: &SysRoot, b: &Body) -> String {
    let since = b
        .steps
        .iter()
        .find(|s| s.keeps_new)
        .map(|s| s.name.as_str());
    let backed_up = b
        .steps
        .iter()
        .find(|s| s.kind == "backup")
        .map(|s| s.paths.join(" and "));
    let added: Vec<&str> = b
        .steps
        .iter()
        .filter(|s| s.kind == "services")
        .flat_map(|s| s.entries.iter().map(String::as_str))
        .collect();
    let autostart: Vec<String> = b
        .autostart
        .iter()
        .flatten()
        .map(|u| format!("{} {}", u.unit, u.state))
        .collect();
    let root_flag = if root.is_host() {
        String::new()
    } else {
        format!(" --root {}", root.dir().display())
    };
    format!(
        "{} {} is in service since '{}', so this is not undone automatically: restoring the backup of {} would lose what it has taken in since. Fix the cause, then run `upkeep-upgrade resume {}{root_flag}` (or `recover`) to go on from this step; the journal keeps the place. To go back to {} anyway, by hand: stop the services; restore {} from the backup {}; remove the lines added to {} ({}); set autostart back ({}).",
        b.product,
        b.to,
        since.unwrap_or_default(),
        b.from,
        b.product,
        b.from,
        backed_up.unwrap_or_default(),
        b.backups.first().map(|(_, d)| d.as_str()).unwrap_or("(none)"),
        b.services_file,
        if added.is_empty() { "none".to_string() } else { added.join(", ") },
        autostart.join(", "),
    )
}

/// A failed step: undone, newest first, while the old version can come
/// back; kept in place (and said so) once the new one is in service.
fn failed(root: &SysRoot, journal: &Journal, rec: &mut Record<Body>, i: usize, e: Error) -> Error {
    let b = rec.body.clone();
    let what = format!(
        "step {}/{} '{}' failed: {e}",
        i + 1,
        b.steps.len(),
        b.steps[i].name
    );
    if past_keeps_new(rec) {
        return Error::Failed(format!("{what}. {}", kept_in_service(root, &b)));
    }
    match journal.undo(rec, |b, j| undo_step(root, b, j)) {
        Ok(()) => Error::Failed(format!(
            "{what}; everything made was undone, newest first: {} {} is back (services file, autostart{}), its services started again",
            b.product,
            b.from,
            match b.backups.first() {
                Some((j, d)) if *j < i => format!(", install tree and database files from {d}"),
                _ => String::new(),
            }
        )),
        Err(u) => Error::Failed(format!(
            "{what}; undoing did not finish ({u}): run `upkeep-upgrade recover {}`",
            b.product
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through the safe layer, procfs's boot id reads on this machine
    /// (read only).
    #[test]
    fn the_boot_id_reads_from_procfs() {
        let id = boot_id(&SysRoot::new("/")).unwrap().unwrap();
        assert_eq!(id.len(), 36, "{id}");
    }
}
