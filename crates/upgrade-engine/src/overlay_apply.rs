//! `apply` and `recover` for a product whose manifest has an `[overlay]`
//! (copy the release's `bin/*`, `sbin/*` over the install, keep the rest),
//! in the phases a fleet tool drives one at a time on every node:
//!
//! - `prepare`: the preflight (a refusal changes nothing), the database
//!   dump verified by its `verify` command, the archive unpacked into a
//!   stage next to the install and read back;
//! - `stop`: the manifest's stop command for each service, inside the root;
//! - `swap`: every file the copy will overwrite hard-linked aside, each
//!   staged file given the old file's owner, group and mode and then its
//!   capabilities (read back), renamed over the old one (atomic per file;
//!   files the archive does not carry stay), then upkeep's install record;
//! - `start`, `verify` (the service is active, the record still matches).
//!
//! The whole run is one record of the shared journal (`overlay`), its
//! steps in this order; a phase makes its steps and leaves the record for
//! the next phase, perhaps another process. A phase whose predecessor has
//! not run is refused; a phase already made is a no-op reporting nothing
//! changed. Any failure undoes every step made, newest first, earlier
//! phases included: the old binaries are renamed back (the same inodes,
//! so capabilities exactly as before) and the service is started again.

use crate::fsops;
use crate::overlay::{self, CapSpec, OverlayPlan, OverlaySpec};
use crate::overlay_record::{self, Record as InstallRecord};
use crate::preflight;
use crate::service;
use crate::versioning::Change;
use nix::fcntl::AtFlags;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use upkeep_engine::plugin::Plugin;
use upkeep_sys::fault::point;
use upkeep_sys::journal::{Journal, Phase as JPhase, Record};
use upkeep_sys::safe::{self, Rename};
use upkeep_sys::{state, Error, Result, SysRoot};

/// The shared journal's name for overlay upgrades.
pub const JOURNAL: &str = "overlay";

/// The phases, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Prepare,
    Stop,
    Swap,
    Start,
    Verify,
}

pub const PHASES: [Phase; 5] = [
    Phase::Prepare,
    Phase::Stop,
    Phase::Swap,
    Phase::Start,
    Phase::Verify,
];

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Prepare => "prepare",
            Phase::Stop => "stop",
            Phase::Swap => "swap",
            Phase::Start => "start",
            Phase::Verify => "verify",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        PHASES.into_iter().find(|p| p.as_str() == s)
    }
}

/// One journaled step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The database dump, verified (kept whatever happens later).
    Backup,
    /// The archive unpacked next to the install.
    Stage,
    Stop,
    /// The files to be overwritten hard-linked aside; the staged files
    /// given owner, mode and capabilities.
    Save,
    /// `placed[i]` renamed over the install's file.
    Place(usize),
    /// upkeep's install record (version, archive, digests).
    Record,
    Start,
    Verify,
}

impl Step {
    pub fn phase(self) -> Phase {
        match self {
            Step::Backup | Step::Stage => Phase::Prepare,
            Step::Stop => Phase::Stop,
            Step::Save | Step::Place(_) | Step::Record => Phase::Swap,
            Step::Start => Phase::Start,
            Step::Verify => Phase::Verify,
        }
    }
}

/// The journal record's body: everything a later phase, an undo or a
/// `recover` needs. Paths are as seen inside the system.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Body {
    pub product: String,
    pub dir: String,
    /// The archive as the operator named it (absolute, on this machine).
    pub archive: PathBuf,
    pub top: String,
    pub from: String,
    pub to: String,
    pub stage: String,
    pub saved: String,
    /// Where the database dump goes, when one is taken.
    pub backup: Option<String>,
    /// (path in the stage, path in the install), relative.
    pub placed: Vec<(String, String)>,
    pub caps: Vec<CapSpec>,
    pub services: Vec<String>,
    pub stop: Vec<String>,
    pub start: Vec<String>,
    pub is_active: Vec<String>,
    pub steps: Vec<Step>,
    /// A `rollback`: `stage` is the previous files kept by the last
    /// upgrade, placed back as they are (same inodes: owner, mode and
    /// capabilities as they were); an absent marker there removes the file.
    #[serde(default)]
    pub rollback: bool,
}

/// What the last upgrade replaced, kept until the next one (for `rollback`).
pub fn previous_dir(dir: &str) -> String {
    sibling(dir, "previous")
}

/// `index.json` of the kept files: which upgrade they are from.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Index {
    from: String,
    to: String,
    archive: String,
    placed: Vec<(String, String)>,
}

/// Where the release is unpacked: next to the install (same filesystem).
pub fn stage_dir(dir: &str) -> String {
    sibling(dir, "stage")
}

/// Where the overwritten files are kept until the run is over.
pub fn saved_dir(dir: &str) -> String {
    sibling(dir, "old")
}

fn sibling(dir: &str, what: &str) -> String {
    let p = Path::new(dir);
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    p.with_file_name(format!(".{name}.upkeep-{what}"))
        .display()
        .to_string()
}

/// What one phase did in this run.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub phase: Phase,
    pub changed: bool,
    /// The steps made now.
    pub steps: Vec<String>,
}

/// What `apply` did. `changed` is false when nothing was made (a phase
/// already made, the archive already installed); in a dry run it says
/// whether something would be (as a fleet tool's check mode reads it).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub product: String,
    pub from: Option<String>,
    pub to: String,
    pub change: Option<Change>,
    pub phase: Option<Phase>,
    pub dry_run: bool,
    pub changed: bool,
    pub phases: Vec<PhaseReport>,
    pub backup: Option<String>,
    /// `--db-backup-by`: the node that took this upgrade's dump.
    pub db_backup_by: Option<String>,
    /// The version installed once the run is over (`None` while phases
    /// remain).
    pub installed: Option<String>,
    /// Set only when the archive was already installed.
    pub note: Option<String>,
    /// The plan, when this run planned (a new run, or a dry run).
    pub plan: Option<OverlayPlan>,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// One phase; `None` runs every phase still to make.
    pub phase: Option<Phase>,
    pub preflight: preflight::Options,
    /// Skip the dump of a build-only upgrade (refused for minor and major).
    pub skip_db_backup: bool,
    /// The dump of this upgrade was taken on another node (a fleet's one
    /// dump of its shared database): none here, minor and major too.
    pub db_backup_by: Option<String>,
    pub dry_run: bool,
}

/// A product with an `[overlay]`, loaded from its manifest.
pub struct Loaded {
    pub plugin: Plugin,
    pub spec: OverlaySpec,
}

impl Loaded {
    pub fn title(&self) -> &str {
        self.plugin
            .manifest
            .title
            .as_deref()
            .unwrap_or(self.plugin.name())
    }
}

/// `None` when the product has no `[overlay]`.
pub fn load(root: &SysRoot, product: &str) -> Result<Option<Loaded>> {
    let plugins = upkeep_engine::plugin::load(root)?;
    let Some(plugin) = plugins.into_iter().find(|p| p.name() == product) else {
        return Ok(None);
    };
    let Some(spec) = overlay::spec_of(plugin.manifest.overlay.as_ref(), &plugin.source)? else {
        return Ok(None);
    };
    Ok(Some(Loaded { plugin, spec }))
}

fn records(root: &SysRoot, product: &str) -> Result<Vec<Record<Body>>> {
    let Some(j) = Journal::existing(root, JOURNAL)? else {
        return Ok(Vec::new());
    };
    let mut all: Vec<Record<Body>> = j.load_all()?;
    all.retain(|r| r.body.product == product);
    Ok(all)
}

fn phase_span(steps: &[Step], p: Phase) -> (usize, usize) {
    let first = steps
        .iter()
        .position(|s| s.phase() >= p)
        .unwrap_or(steps.len());
    let end = steps
        .iter()
        .position(|s| s.phase() > p)
        .unwrap_or(steps.len());
    (first, end)
}

fn archive_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs the phase asked for (or all), continuing the run under way for
/// this archive; refuses another archive while a run is under way.
pub fn apply(root: &SysRoot, l: &Loaded, archive: &Path, opts: &Options) -> Result<Report> {
    let product = l.plugin.name().to_string();
    let _lock = Journal::lock(root, Duration::from_secs(10))?;
    let archive = std::path::absolute(archive)
        .map_err(|e| Error::Usage(format!("{}: {e}", archive.display())))?;
    let (to, _, _) = overlay::parse_archive_name(&l.spec, &archive)?;
    let mut under_way = records(root, &product)?;
    if let Some(mut rec) = under_way.pop() {
        if rec.body.to != to || archive_name(&rec.body.archive) != archive_name(&archive) {
            return Err(Error::Refused(format!(
                "an upgrade of {product} to {} from {} is under way ({} of {} steps made): \
                 finish it with its own archive, or undo it with `upkeep-upgrade recover {product}`",
                rec.body.to,
                archive_name(&rec.body.archive),
                rec.done,
                rec.count
            )));
        }
        if rec.phase == JPhase::Undoing {
            return Err(Error::Failed(format!(
                "an undo of the upgrade of {product} did not finish: run `upkeep-upgrade recover {product}`"
            )));
        }
        rec.body.archive = archive;
        return continue_run(root, l, rec, opts, None);
    }
    if let Some(done) = already_installed(root, &product, &archive, &to, opts) {
        return Ok(done);
    }
    if let Some(p) = opts.phase.filter(|p| *p != Phase::Prepare && !opts.dry_run) {
        return Err(Error::Refused(format!(
            "--phase {}: the prepare phase has not run for {product} {to}: run --phase prepare first",
            p.as_str()
        )));
    }
    let plan = overlay::plan(
        root,
        &product,
        l.title(),
        &l.plugin.manifest,
        &l.plugin.source,
        &archive,
        &opts.preflight,
    )?;
    if let Some(r) = &plan.refused {
        let mut why = format!("({}) ", r.rule);
        if r.rule == "preflight" {
            why.push_str("the preflight refused; nothing was changed");
            for f in plan.preflight.iter().filter(|f| !f.ok) {
                why.push_str(&format!("\n  refused {}: {}", f.check, f.message));
            }
        } else {
            why.push_str(&format!("{}; nothing was changed", r.message));
        }
        return Err(Error::Refused(why));
    }
    let mandatory = plan.change.as_ref().is_none_or(|c| c.backup_mandatory);
    if opts.skip_db_backup && mandatory && l.spec.backup.is_some() && opts.db_backup_by.is_none() {
        return Err(Error::Refused(format!(
            "{}: the database backup is mandatory (the schema may change): --skip-db-backup refused (a fleet whose dump another node took says so with --db-backup-by NODE); nothing was changed",
            plan.change.as_ref().map_or("an upgrade from an unknown version", |c| c.summary.as_str())
        )));
    }
    if opts.dry_run {
        return Ok(Report {
            product,
            from: plan.from.clone(),
            to,
            change: plan.change.clone(),
            phase: opts.phase,
            dry_run: true,
            // As a fleet tool's check mode reads it: it would change.
            changed: true,
            phases: Vec::new(),
            backup: None,
            db_backup_by: opts.db_backup_by.clone(),
            installed: None,
            note: Some("dry run: the upgrade would be made; nothing was changed".into()),
            plan: Some(plan),
        });
    }
    let body = new_body(l, &archive, &plan, mandatory, opts)?;
    continue_run(root, l, Record::new(body), opts, Some(plan))
}

/// The archive is installed already (upkeep's record says so and the files
/// still match it): every phase is a no-op.
fn already_installed(
    root: &SysRoot,
    product: &str,
    archive: &Path,
    to: &str,
    opts: &Options,
) -> Option<Report> {
    let rec = overlay_record::load(root, product)?;
    let current = overlay_record::current(root, product)?;
    (current == to && rec.archive == archive_name(archive)).then(|| Report {
        product: product.to_string(),
        from: Some(current.clone()),
        to: to.to_string(),
        change: None,
        phase: opts.phase,
        dry_run: opts.dry_run,
        changed: false,
        phases: Vec::new(),
        backup: None,
        db_backup_by: None,
        installed: Some(current),
        note: Some(format!(
            "{product} {to} is already installed from {}: nothing to do",
            rec.archive
        )),
        plan: None,
    })
}

fn new_body(
    l: &Loaded,
    archive: &Path,
    plan: &OverlayPlan,
    mandatory: bool,
    opts: &Options,
) -> Result<Body> {
    let spec = &l.spec;
    let (_, _, top) = overlay::parse_archive_name(spec, archive)?;
    let checked = overlay::check_archive(spec, archive, &top)?;
    let placed = overlay::placed_files(spec, &checked);
    let dir = spec.dir.trim_end_matches('/').to_string();
    let from = plan.from.clone().unwrap_or_else(|| "unknown".into());
    let take_dump = opts.db_backup_by.is_none()
        && spec
            .backup
            .as_ref()
            .is_some_and(|b| mandatory || (b.build_only == "take" && !opts.skip_db_backup));
    let backup = take_dump.then(|| {
        let stamp = state::utc_stamp(state::now());
        format!("/var/lib/upkeep/backups/{}/{stamp}-{from}", l.plugin.name())
    });
    let mut steps = Vec::new();
    if backup.is_some() {
        steps.push(Step::Backup);
    }
    steps.extend([Step::Stage, Step::Stop, Step::Save]);
    steps.extend((0..placed.len()).map(Step::Place));
    steps.extend([Step::Record, Step::Start, Step::Verify]);
    Ok(Body {
        product: l.plugin.name().to_string(),
        stage: stage_dir(&dir),
        saved: saved_dir(&dir),
        dir,
        archive: archive.to_path_buf(),
        top,
        from,
        to: plan.to.clone(),
        backup,
        placed,
        caps: spec.capabilities.clone(),
        services: spec.services.clone(),
        stop: spec.stop.clone(),
        start: spec.start.clone(),
        is_active: spec.is_active.clone(),
        steps,
        rollback: false,
    })
}

fn continue_run(
    root: &SysRoot,
    l: &Loaded,
    mut rec: Record<Body>,
    opts: &Options,
    plan: Option<OverlayPlan>,
) -> Result<Report> {
    let count = rec.body.steps.len();
    let (first, until) = match opts.phase {
        None => (0, count),
        Some(p) => phase_span(&rec.body.steps, p),
    };
    if rec.done < first && !opts.dry_run {
        let missing = rec.body.steps[rec.done].phase();
        return Err(Error::Refused(format!(
            "--phase {}: the {} phase has not run yet for {} {}: run --phase {} first",
            opts.phase.map_or("", Phase::as_str),
            missing.as_str(),
            rec.body.product,
            rec.body.to,
            missing.as_str()
        )));
    }
    let before = rec.done;
    let mut report = Report {
        product: rec.body.product.clone(),
        from: Some(rec.body.from.clone()),
        to: rec.body.to.clone(),
        change: plan.as_ref().and_then(|p| p.change.clone()),
        phase: opts.phase,
        dry_run: opts.dry_run,
        changed: false,
        phases: Vec::new(),
        backup: rec
            .body
            .backup
            .as_ref()
            .map(|b| root.path(b).display().to_string()),
        db_backup_by: opts.db_backup_by.clone(),
        installed: None,
        note: None,
        plan,
    };
    if opts.dry_run {
        report.changed = until > rec.done;
        report.note = Some(format!(
            "dry run: {} step(s) would be made; nothing was changed",
            until.saturating_sub(rec.done)
        ));
        return Ok(report);
    }
    let journal = Journal::open(root, JOURNAL)?;
    let ctx = Ctx { root, l, opts };
    let res = journal.run_until(
        &mut rec,
        count,
        until,
        |b, i| {
            let p = b.steps[i].phase();
            let (a, z) = phase_span(&b.steps, p);
            if i == a {
                log_phase(root, b, p, "begin");
            }
            ctx.do_step(b, b.steps[i])?;
            if i + 1 == z {
                log_phase(root, b, p, "done");
            }
            Ok(())
        },
        |b, i| ctx.undo_step(b, b.steps[i]),
    );
    if let Err(e) = res {
        let b = &rec.body;
        if records(root, &b.product)?.is_empty() {
            note_undone(root, b);
        }
        upkeep_engine::notify::log_line(
            root,
            &format!(
                "upkeep-upgrade: {} {} -> {}: failed, everything made was undone: {e}",
                b.product, b.from, b.to
            ),
        );
        return Err(Error::Failed(format!(
            "the upgrade of {} to {} failed and everything it had made was undone ({} {} is installed as before, its services started): {e}",
            b.product, b.to, b.product, b.from
        )));
    }
    let made = &rec.body.steps[before..rec.done.min(count)];
    for p in PHASES {
        let (a, z) = phase_span(&rec.body.steps, p);
        let asked = opts.phase.is_none_or(|q| q == p);
        if !asked || a == z {
            continue;
        }
        let now: Vec<String> = made
            .iter()
            .filter(|s| s.phase() == p)
            .map(|s| describe(&rec.body, *s))
            .collect();
        report.phases.push(PhaseReport {
            phase: p,
            changed: !now.is_empty(),
            steps: now,
        });
    }
    report.changed = rec.done > before;
    if rec.phase == JPhase::Done {
        commit(root, &journal, &rec)?;
        report.installed = Some(rec.body.to.clone());
    }
    Ok(report)
}

/// upkeep's log (`/var/log/upkeep/upkeep.log`): each phase's begin and
/// end, with the time in nanoseconds (`t=`), so that the order across the
/// nodes of a fleet can be told afterwards.
fn log_phase(root: &SysRoot, b: &Body, p: Phase, what: &str) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    upkeep_engine::notify::log_line(
        root,
        &format!(
            "upkeep-upgrade: {} {} -> {}: phase {} {what} t={t}",
            b.product,
            b.from,
            b.to,
            p.as_str()
        ),
    );
}

fn describe(b: &Body, s: Step) -> String {
    match s {
        Step::Backup => format!(
            "database dumped and verified: {}/database.dump",
            b.backup.as_deref().unwrap_or_default()
        ),
        Step::Stage => format!("unpacked {} into {}", archive_name(&b.archive), b.stage),
        Step::Stop => format!("stopped {}", b.services.join(" ")),
        Step::Save => format!("kept the files to be replaced in {}", b.saved),
        Step::Place(i) => format!("placed {}/{}", b.dir, b.placed[i].1),
        Step::Record => format!(
            "recorded {} {} in {}",
            b.product,
            b.to,
            overlay_record::record_path(&b.product)
        ),
        Step::Start => format!("started {}", b.services.join(" ")),
        Step::Verify => format!("{} active", b.services.join(" ")),
    }
}

/// The run is over: the stage and the kept old files go, the record closes.
/// The replaced files become the previous release (for `rollback`); a
/// rollback's are dropped, with the previous release it used up.
fn commit(root: &SysRoot, journal: &Journal, rec: &Record<Body>) -> Result<()> {
    let b = &rec.body;
    fsops::remove_tree(root, &root.path(&b.stage))?;
    let saved = root.path(&b.saved);
    if b.rollback {
        fsops::remove_tree(root, &saved)?;
    } else if fsops::exists(root, &saved) {
        let previous = root.path(previous_dir(&b.dir));
        fsops::remove_tree(root, &previous)?;
        fsops::rename_noreplace(root, &saved, &previous)?;
    }
    let undone = root.path(undone_path(&b.product));
    if !b.rollback && fsops::exists(root, &undone) {
        fsops::remove_durable(root, &undone)?;
    }
    point("overlay:committing");
    journal.remove(&rec.id)
}

/// Says the last upgrade failed and was undone: a `rollback` after it (a
/// fleet tool rolls back every failed node) then has nothing to do, and
/// never goes back past the release that is running.
fn undone_path(product: &str) -> String {
    format!("{}/{product}.undone.json", overlay_record::RECORD_DIR)
}

fn note_undone(root: &SysRoot, b: &Body) {
    let text = serde_json::json!({ "from": b.from, "to": b.to, "when": state::now() }).to_string();
    if let Ok(dir) = state::private_dir(root, "releases") {
        let _ = state::write_private(&dir, &format!("{}.undone.json", b.product), text.as_bytes());
    }
}

/// What `rollback` did.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub product: String,
    pub rolled_back: bool,
    pub from: Option<String>,
    pub to: Option<String>,
    pub dry_run: bool,
    pub note: Option<String>,
}

/// Puts back what the last upgrade replaced (kept in the previous
/// directory) and its install record, journaled like an upgrade: stop,
/// the current files linked aside, the old ones renamed back, the record,
/// start, verify; any failure undoes it. Nothing to do (and nothing
/// written) when there is no previous release.
pub fn rollback(root: &SysRoot, l: &Loaded, dry_run: bool) -> Result<RollbackReport> {
    let product = l.plugin.name().to_string();
    let _lock = Journal::lock(root, Duration::from_secs(10))?;
    if let Some(r) = records(root, &product)?.first() {
        return Err(Error::Refused(format!(
            "an upgrade of {product} to {} is under way: finish it, or undo it with `upkeep-upgrade recover {product}`",
            r.body.to
        )));
    }
    let dir = l.spec.dir.trim_end_matches('/').to_string();
    let previous = previous_dir(&dir);
    let index: Option<Index> = fsops::read(root, &root.path(&previous).join("index.json"))?
        .and_then(|b| serde_json::from_slice(&b).ok());
    let undone = fsops::exists(root, &root.path(undone_path(&product)));
    let index = index.filter(|_| !undone);
    let Some(index) = index else {
        overlay::refuse_not_installed(root, &product, &dir)?;
        return Ok(RollbackReport {
            product,
            rolled_back: false,
            from: overlay::installed_version(root, l.plugin.name(), &dir),
            to: None,
            dry_run,
            note: Some(if undone {
                "nothing to roll back: the last upgrade failed and was undone already".into()
            } else {
                "nothing to roll back: no previous release is kept".into()
            }),
        });
    };
    if overlay_record::current(root, &product).as_deref() != Some(index.to.as_str()) {
        return Err(Error::Refused(format!(
            "{product}: the installed files are not the ones the upgrade to {} placed (its record does not match them): not rolled back",
            index.to
        )));
    }
    let mut report = RollbackReport {
        product: product.clone(),
        rolled_back: !dry_run,
        from: Some(index.to.clone()),
        to: Some(index.from.clone()),
        dry_run,
        note: None,
    };
    if dry_run {
        report.note = Some("dry run: nothing was changed".into());
        return Ok(report);
    }
    let mut steps = vec![Step::Stop, Step::Save];
    steps.extend((0..index.placed.len()).map(Step::Place));
    steps.extend([Step::Record, Step::Start, Step::Verify]);
    let body = Body {
        product,
        stage: previous,
        saved: saved_dir(&dir),
        dir,
        archive: PathBuf::from(&index.archive),
        top: String::new(),
        from: index.to.clone(),
        to: index.from.clone(),
        backup: None,
        placed: (0..index.placed.len())
            .map(|i| (i.to_string(), index.placed[i].1.clone()))
            .collect(),
        caps: Vec::new(),
        services: l.spec.services.clone(),
        stop: l.spec.stop.clone(),
        start: l.spec.start.clone(),
        is_active: l.spec.is_active.clone(),
        steps,
        rollback: true,
    };
    let opts = Options::default();
    let ctx = Ctx {
        root,
        l,
        opts: &opts,
    };
    let journal = Journal::open(root, JOURNAL)?;
    let mut rec = Record::new(body);
    let count = rec.body.steps.len();
    journal
        .run(
            &mut rec,
            count,
            |b, i| ctx.do_step(b, b.steps[i]),
            |b, i| ctx.undo_step(b, b.steps[i]),
        )
        .map_err(|e| {
            Error::Failed(format!(
                "the rollback of {} to {} failed and was undone ({} is installed as before): {e}",
                rec.body.product, index.from, index.to
            ))
        })?;
    commit(root, &journal, &rec)?;
    upkeep_engine::notify::log_line(
        root,
        &format!(
            "upkeep-upgrade: {} rolled back from {} to {}",
            rec.body.product, index.to, index.from
        ),
    );
    Ok(report)
}

/// What `recover` did.
pub use crate::apply::Recovered;

/// Finishes or undoes an interrupted run: finished once the new release
/// was started and its services are active, undone otherwise. Nothing
/// written when there is nothing to do.
pub fn recover(root: &SysRoot, l: &Loaded) -> Result<Recovered> {
    match Journal::existing(root, JOURNAL)? {
        None => return Ok(Recovered::Nothing),
        Some(j) if j.is_empty()? => return Ok(Recovered::Nothing),
        Some(_) => {}
    }
    let _lock = Journal::lock(root, Duration::from_secs(10))?;
    let journal = Journal::open(root, JOURNAL)?;
    journal.clean_temps()?;
    let opts = Options::default();
    let ctx = Ctx {
        root,
        l,
        opts: &opts,
    };
    let mut out = Recovered::Nothing;
    for mut rec in records(root, l.plugin.name())? {
        let started = rec
            .body
            .steps
            .iter()
            .position(|s| *s == Step::Start)
            .is_some_and(|i| rec.done >= i);
        if rec.phase == JPhase::Doing && started && ctx.verify(&rec.body).is_ok() {
            rec.done = rec.count;
            rec.phase = JPhase::Done;
            journal.write(&rec)?;
        }
        if rec.phase == JPhase::Done {
            commit(root, &journal, &rec)?;
            out = Recovered::Finished;
        } else {
            journal.undo(&mut rec, |b, i| ctx.undo_step(b, b.steps[i]))?;
            if !rec.body.rollback {
                note_undone(root, &rec.body);
            }
            out = Recovered::RolledBack;
        }
        let b = &rec.body;
        upkeep_engine::notify::log_line(
            root,
            &format!(
                "upkeep-upgrade: {} {} -> {}: recovered ({out:?})",
                b.product, b.from, b.to
            ),
        );
    }
    Ok(out)
}

struct Ctx<'a> {
    root: &'a SysRoot,
    l: &'a Loaded,
    opts: &'a Options,
}

impl Ctx<'_> {
    fn host(&self, inside: &str) -> PathBuf {
        self.root.path(inside)
    }

    fn dest(&self, b: &Body, i: usize) -> String {
        format!("{}/{}", b.dir, b.placed[i].1)
    }

    fn staged(&self, b: &Body, i: usize) -> String {
        format!("{}/{}", b.stage, b.placed[i].0)
    }

    fn kept(&self, b: &Body, i: usize) -> String {
        format!("{}/{i}", b.saved)
    }

    fn absent_marker(&self, b: &Body, i: usize) -> String {
        format!("{}/{i}.absent", b.saved)
    }

    fn do_step(&self, b: &Body, step: Step) -> Result<()> {
        match step {
            Step::Backup => self.backup(b),
            Step::Stage => self.stage(b),
            Step::Stop => service::control(self.root, &b.stop, &b.services),
            Step::Save => self.save(b),
            Step::Place(i) => self.place(b, i),
            Step::Record => self.record(b),
            Step::Start => service::control(self.root, &b.start, &b.services),
            Step::Verify => self.verify(b),
        }
    }

    /// Safe to run again, and for a step never made.
    fn undo_step(&self, b: &Body, step: Step) -> Result<()> {
        match step {
            // A dump that verifies is a good backup of the old database: kept.
            Step::Backup => match &b.backup {
                Some(d) if crate::apply::verify_backup(self.root, &self.host(d)).is_err() => {
                    fsops::remove_tree(self.root, &self.host(d))
                }
                _ => Ok(()),
            },
            Step::Stage => fsops::remove_tree(self.root, &self.host(&b.stage)),
            Step::Stop => service::control(self.root, &b.start, &b.services),
            Step::Save => fsops::remove_tree(self.root, &self.host(&b.saved)),
            Step::Place(i) => self.unplace(b, i),
            Step::Record => self.unrecord(b),
            Step::Start => {
                let _ = service::control(self.root, &b.stop, &b.services);
                Ok(())
            }
            Step::Verify => Ok(()),
        }
    }

    fn backup(&self, b: &Body) -> Result<()> {
        let (Some(dir), Some(spec)) = (&b.backup, &self.l.spec.backup) else {
            return Ok(());
        };
        let host = self.host(dir);
        fsops::remove_tree(self.root, &host)?;
        if let Some(parent) = host.parent() {
            fsops::create_dir_all(self.root, parent, 0o700)?;
        }
        fsops::create_private_dir(self.root, &host)?;
        let target = self.database()?;
        let out = host.join("database.dump");
        let out_s = out.display().to_string();
        let url = target.url();
        let vars = [("out", out_s.as_str()), ("url", url.as_str())];
        let argv = |a: &[String]| -> Vec<String> {
            a.iter()
                .map(|x| {
                    vars.iter()
                        .fold(x.clone(), |x, (k, v)| x.replace(&format!("{{{k}}}"), v))
                })
                .collect()
        };
        let password = target.password.clone();
        run_tool(&argv(&spec.dump), password.as_deref(), "database backup")?;
        if !spec.verify.is_empty() {
            let listed = run_tool(&argv(&spec.verify), password.as_deref(), "backup verify")?;
            if listed.trim().is_empty() {
                return Err(Error::Failed(format!(
                    "backup verify: {} lists nothing in {out_s}",
                    spec.verify[0]
                )));
            }
        }
        let sum = fsops::sha256(self.root, &out)?;
        fsops::write_private(
            self.root,
            &host.join("SHA256SUMS"),
            format!("{sum}  database.dump\n").as_bytes(),
        )?;
        let meta = serde_json::json!({
            "product": b.product, "version": b.from, "created": state::now(), "database": url,
        });
        fsops::write_private(
            self.root,
            &host.join("backup.json"),
            meta.to_string().as_bytes(),
        )?;
        crate::apply::verify_backup(self.root, &host)
    }

    fn database(&self) -> Result<upkeep_dbcheck::target::DbTarget> {
        let m = &self.l.plugin.manifest;
        let pg = preflight::spec_of(m.preflight.as_ref(), &self.l.plugin.source)?
            .and_then(|p| p.postgresql)
            .ok_or_else(|| {
                Error::Failed("database backup: the manifest declares no [preflight.postgresql] to find the database".into())
            })?;
        let config = m.installs.iter().find_map(|i| i.config.clone());
        preflight::target(self.root, &pg, config.as_deref(), &self.opts.preflight)?
            .map_err(|f| Error::Failed(format!("database backup: {}", f.message)))
    }

    fn stage(&self, b: &Body) -> Result<()> {
        let host = self.host(&b.stage);
        fsops::remove_tree(self.root, &host)?;
        let checked = overlay::check_archive(&self.l.spec, &b.archive, &b.top)?;
        if self.l.spec.archive_version_file.is_some() && checked.version != b.to {
            return Err(Error::bad_input(
                &b.archive,
                None,
                format!("says version {}, expected {}", checked.version, b.to),
            ));
        }
        fsops::unpack(self.root, &checked, &b.top, &host)?;
        for i in 0..b.placed.len() {
            if !fsops::is_file(self.root, &self.host(&self.staged(b, i))) {
                return Err(Error::Failed(format!(
                    "{}: not in the stage",
                    self.staged(b, i)
                )));
            }
        }
        Ok(())
    }

    /// Links each file to be replaced aside (or notes it was absent) and
    /// readies its staged successor: the old owner, group and mode (as
    /// `cp` onto an existing file keeps them), then the capabilities, read
    /// back. Also keeps the previous install record.
    fn save(&self, b: &Body) -> Result<()> {
        let saved = self.host(&b.saved);
        if !fsops::is_dir(self.root, &saved) {
            fsops::remove_tree(self.root, &saved)?;
            fsops::create_private_dir(self.root, &saved)?;
        }
        let rec_prev = saved.join("record.json");
        let rec_none = saved.join("record.none");
        if !fsops::exists(self.root, &rec_prev) && !fsops::exists(self.root, &rec_none) {
            match fsops::read(
                self.root,
                &self.host(&overlay_record::record_path(&b.product)),
            )? {
                Some(bytes) => fsops::write_private(self.root, &rec_prev, &bytes)?,
                None => fsops::write_private(self.root, &rec_none, b"")?,
            }
        }
        let index = saved.join("index.json");
        if !b.rollback && !fsops::exists(self.root, &index) {
            let i = Index {
                from: b.from.clone(),
                to: b.to.clone(),
                archive: archive_name(&b.archive),
                placed: b.placed.clone(),
            };
            let text = serde_json::to_vec(&i).map_err(|e| Error::Failed(e.to_string()))?;
            fsops::write_private(self.root, &index, &text)?;
        }
        for i in 0..b.placed.len() {
            self.save_one(b, i)?;
        }
        Ok(())
    }

    fn save_one(&self, b: &Body, i: usize) -> Result<()> {
        let dest = self.host(&self.dest(b, i));
        let kept = self.host(&self.kept(b, i));
        let absent = self.host(&self.absent_marker(b, i));
        if let Some(parent) = dest.parent() {
            fsops::create_dir_all(self.root, parent, 0o755)?;
        }
        let old = fsops::lstat(self.root, &dest)?;
        let already = fsops::exists(self.root, &kept) || fsops::exists(self.root, &absent);
        match &old {
            Some(st) if safe::Kind::of(st) != safe::Kind::File => {
                return Err(Error::Refused(format!(
                    "{}: not a regular file: not replaced",
                    dest.display()
                )))
            }
            Some(st) if !already && st.st_nlink > 1 => {
                return Err(Error::Refused(format!(
                    "{}: has {} hard links: not replaced",
                    dest.display(),
                    st.st_nlink
                )))
            }
            Some(_) if !already => link(self.root, &dest, &kept)?,
            None if !already => fsops::write_private(self.root, &absent, b"")?,
            _ => {}
        }
        let staged = self.host(&self.staged(b, i));
        if b.rollback || !fsops::exists(self.root, &staged) {
            return Ok(()); // placed already, or an old file kept as it was
        }
        let (f, st) = safe::open_file(self.root, self.staged(b, i))?
            .ok_or_else(|| Error::Failed(format!("{}: missing", staged.display())))?;
        if let Some(o) = &old {
            safe::fchown(&f, o.st_uid, o.st_gid)?;
            safe::fchmod(&f, o.st_mode & 0o7777)?;
        } else {
            safe::fchown(&f, 0, 0)?;
            safe::fchmod(&f, st.st_mode & 0o7777)?;
        }
        drop(f);
        for c in b.caps.iter().filter(|c| c.path == b.placed[i].1) {
            fsops::set_caps(self.root, &staged, &c.caps)?;
        }
        Ok(())
    }

    fn place(&self, b: &Body, i: usize) -> Result<()> {
        let staged = self.host(&self.staged(b, i));
        let dest = self.host(&self.dest(b, i));
        let was_absent = self.host(&format!("{}/{i}.absent", b.stage));
        if b.rollback && fsops::exists(self.root, &was_absent) {
            // The upgrade added this file: it goes (it is kept aside).
            if fsops::is_file(self.root, &dest) {
                fsops::remove_durable(self.root, &dest)?;
            }
            return Ok(());
        }
        if fsops::exists(self.root, &staged) {
            rename_replace(self.root, &staged, &dest)?;
        } else {
            let kept = fsops::lstat(self.root, &self.host(&self.kept(b, i)))?;
            let now = fsops::lstat(self.root, &dest)?;
            let placed = match (&now, &kept) {
                (Some(n), Some(k)) => n.st_ino != k.st_ino,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if !placed {
                return Err(Error::Failed(format!(
                    "{}: not in the stage any more, and not placed",
                    staged.display()
                )));
            }
        }
        self.check_caps(b, i)
    }

    /// getcap, read back through the placed file.
    fn check_caps(&self, b: &Body, i: usize) -> Result<()> {
        for c in b.caps.iter().filter(|c| c.path == b.placed[i].1) {
            let want = fsops::encode_caps(&c.caps).map_err(Error::Failed)?;
            let (f, _) = safe::open_file(self.root, self.dest(b, i))?
                .ok_or_else(|| Error::Failed(format!("{}: missing", self.dest(b, i))))?;
            if safe::get_capability(&f)?.as_deref() != Some(&want[..]) {
                return Err(Error::Failed(format!(
                    "{}: the capability {} is not on the placed file",
                    self.dest(b, i),
                    c.caps
                )));
            }
        }
        Ok(())
    }

    fn unplace(&self, b: &Body, i: usize) -> Result<()> {
        let dest = self.host(&self.dest(b, i));
        let kept = self.host(&self.kept(b, i));
        let staged = self.host(&self.staged(b, i));
        if b.rollback && !fsops::exists(self.root, &staged) && fsops::is_file(self.root, &dest) {
            // The old file placed back: into the previous release again,
            // unless it is the current file still (never placed).
            let now = fsops::lstat(self.root, &dest)?.map(|st| st.st_ino);
            let cur = fsops::lstat(self.root, &kept)?.map(|st| st.st_ino);
            if cur.is_some() && now != cur {
                link(self.root, &dest, &staged)?;
            }
        }
        if fsops::exists(self.root, &kept) {
            // The same inode as before: content, owner, mode and
            // capabilities exactly as they were.
            return rename_replace(self.root, &kept, &dest);
        }
        if fsops::exists(self.root, &self.host(&self.absent_marker(b, i)))
            && fsops::is_file(self.root, &dest)
        {
            return fsops::remove_durable(self.root, &dest);
        }
        Ok(())
    }

    fn record(&self, b: &Body) -> Result<()> {
        if b.rollback {
            let prev = self.host(&b.stage);
            let path = self.host(&overlay_record::record_path(&b.product));
            return match fsops::read(self.root, &prev.join("record.json"))? {
                Some(bytes) => {
                    let dir = state::private_dir(self.root, "releases")?;
                    state::write_private(&dir, &format!("{}.installed.json", b.product), &bytes)
                }
                None if fsops::exists(self.root, &path) => fsops::remove_durable(self.root, &path),
                None => Ok(()),
            };
        }
        let mut files = Vec::new();
        for i in 0..b.placed.len() {
            let p = self.dest(b, i);
            files.push((p.clone(), fsops::sha256(self.root, &self.host(&p))?));
        }
        let rec = InstallRecord {
            version: b.to.clone(),
            archive: archive_name(&b.archive),
            files,
        };
        let text = serde_json::to_vec_pretty(&rec).map_err(|e| Error::Failed(e.to_string()))?;
        let dir = state::private_dir(self.root, "releases")?;
        state::write_private(&dir, &format!("{}.installed.json", b.product), &text)?;
        if overlay_record::current(self.root, &b.product).as_deref() != Some(b.to.as_str()) {
            return Err(Error::Failed(format!(
                "{}: the install record does not read back",
                overlay_record::record_path(&b.product)
            )));
        }
        Ok(())
    }

    fn unrecord(&self, b: &Body) -> Result<()> {
        let saved = self.host(&b.saved);
        let path = self.host(&overlay_record::record_path(&b.product));
        if let Some(prev) = fsops::read(self.root, &saved.join("record.json"))? {
            fsops::write_private(self.root, &path, &prev)
        } else if fsops::exists(self.root, &saved.join("record.none"))
            && fsops::exists(self.root, &path)
        {
            fsops::remove_durable(self.root, &path)
        } else {
            Ok(())
        }
    }

    /// Every service active (asked again for up to 10 s), the placed files
    /// still as recorded, their capabilities there.
    fn verify(&self, b: &Body) -> Result<()> {
        if !b.is_active.is_empty() {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match service::control(self.root, &b.is_active, &b.services) {
                    Ok(()) => break,
                    Err(e) if Instant::now() >= deadline => {
                        return Err(Error::Failed(format!("not active: {e}")))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        let had_record =
            !b.rollback || fsops::exists(self.root, &self.host(&b.stage).join("record.json"));
        if had_record
            && overlay_record::current(self.root, &b.product).as_deref() != Some(b.to.as_str())
        {
            return Err(Error::Failed(format!(
                "the placed files no longer match the install record of {} {}",
                b.product, b.to
            )));
        }
        (0..b.placed.len()).try_for_each(|i| self.check_caps(b, i))
    }
}

/// A tool of the manifest (pg_dump, pg_restore), run on this machine with
/// the password through the environment; its standard output.
fn run_tool(argv: &[String], password: Option<&str>, what: &str) -> Result<String> {
    let Some((cmd, args)) = argv.split_first() else {
        return Err(Error::Failed(format!("{what}: no command")));
    };
    let mut c = std::process::Command::new(cmd);
    c.args(args);
    if let Some(p) = password {
        c.env("PGPASSWORD", p);
    }
    let why = match upkeep_sys::process::run_with_timeout(&mut c, None, Duration::from_secs(3600)) {
        Ok(Some(o)) if o.status.success() => {
            return Ok(String::from_utf8_lossy(&o.stdout).into_owned())
        }
        Ok(Some(o)) => format!(
            "{} ({})",
            String::from_utf8_lossy(&o.stderr).trim(),
            o.status
        ),
        Ok(None) => "timed out".into(),
        Err(e) => e.to_string(),
    };
    Err(Error::Failed(format!("{what} with {cmd} failed: {why}")))
}

fn opened_parent(root: &SysRoot, p: &Path) -> Result<(safe::Dir, std::ffi::OsString)> {
    safe::parent_of(root, &fsops::inside(root, p)?)?
        .ok_or_else(|| Error::Failed(format!("{}: its directory is missing", p.display())))
}

/// `rename(2)` over whatever is at `to`, both directories synced.
fn rename_replace(root: &SysRoot, from: &Path, to: &Path) -> Result<()> {
    let (fd, fname) = opened_parent(root, from)?;
    let (td, tname) = opened_parent(root, to)?;
    fd.rename(&fname, &td, &tname, Rename::Replace)?;
    fd.sync()?;
    td.sync()
}

/// A hard link (never following a link at `from`), directory synced.
fn link(root: &SysRoot, from: &Path, to: &Path) -> Result<()> {
    let (fd, fname) = opened_parent(root, from)?;
    let (td, tname) = opened_parent(root, to)?;
    nix::unistd::linkat(
        &fd,
        fname.as_os_str(),
        &td,
        tname.as_os_str(),
        AtFlags::empty(),
    )
    .map_err(|e| Error::io(to, e.into()))?;
    td.sync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_span_their_steps() {
        let steps = vec![
            Step::Backup,
            Step::Stage,
            Step::Stop,
            Step::Save,
            Step::Place(0),
            Step::Place(1),
            Step::Record,
            Step::Start,
            Step::Verify,
        ];
        assert_eq!(phase_span(&steps, Phase::Prepare), (0, 2));
        assert_eq!(phase_span(&steps, Phase::Stop), (2, 3));
        assert_eq!(phase_span(&steps, Phase::Swap), (3, 7));
        assert_eq!(phase_span(&steps, Phase::Verify), (8, 9));
        assert_eq!(Phase::parse("swap"), Some(Phase::Swap));
        assert_eq!(Phase::parse("bogus"), None);
        assert_eq!(stage_dir("/opt/tegu"), "/opt/.tegu.upkeep-stage");
    }
}
