//! `apply`, `recover` and `backups`: backup, stage next to the target,
//! stop, swap by one rename, move the preserved paths across by rename,
//! overrides, ownership, capabilities last, start, health check; and on
//! any failure after the first change, back to the old tree by itself.
//!
//! Every step is journaled first in the shared write-ahead journal
//! (`upkeep_sys::journal`, `ROOT/var/lib/upkeep/upgrade/`). After a crash,
//! `recover` undoes the steps made, newest first, and the old install is
//! back; once the new release has started and answers its health check,
//! or once every step was made, it finishes the new one instead.

use crate::archive::Checked;
use crate::fsops;
use crate::jsonedit::{self, Setting};
use crate::plan::{self, Options, Plan};
use crate::{service, Release};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use upkeep_sys::fault::point;
use upkeep_sys::journal::{Journal, Phase as JPhase, Record};
use upkeep_sys::safe;
use upkeep_sys::{state, users, Error, Result, SysRoot};

/// The shared write-ahead journal's name for upgrades.
pub const JOURNAL: &str = "upgrade";

/// One step of an upgrade, in journal order. Each is journaled before it
/// changes anything, and each has an undo that is safe to run again and
/// safe to run for a step that never happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Unpack next to the target and verify (the install is untouched).
    Stage,
    Stop,
    /// One `renameat2(RENAME_EXCHANGE)` of the target and the staged tree.
    Swap,
    /// `moves[i]`, by rename (records written before `Moves`).
    Move(usize),
    /// Every `moves[i]` in order, by rename, as one step: one journal
    /// write instead of one a path while the service is down. Each undo
    /// looks at what is where, so a crash between two renames undoes
    /// exactly those made.
    Moves,
    Overrides,
    Ownership,
    Capabilities,
    Start,
    Verify,
    /// `rollback`: the backup's config.json back in place.
    RestoreConfig,
    /// `rollback --restore-database`: the database as it is goes into a
    /// dump of its own first (the undo), then the backup's dump is restored.
    RestoreDatabase,
}

/// The database a rollback restores, and where it keeps what it replaces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseRestore {
    pub datasource: String,
    pub dump: PathBuf,
    pub before: PathBuf,
}

/// The journal record's body: everything an undo or a `recover` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Body {
    pub product: String,
    pub from: String,
    pub to: String,
    pub archive: PathBuf,
    pub steps: Vec<Step>,
    pub target: PathBuf,
    pub stage: PathBuf,
    pub shipped: PathBuf,
    /// The target directory's inode before the swap: tells whether it happened.
    pub old_ino: u64,
    /// Renames in order, as (from, to), in after-swap coordinates.
    pub moves: Vec<(PathBuf, PathBuf)>,
    /// The config as it was before this upgrade (restored on rollback).
    pub config_path: PathBuf,
    pub config_backup: PathBuf,
    pub settings: Vec<(Vec<String>, serde_json::Value)>,
    pub owner: Option<(u32, u32)>,
    /// The release's file list (recorded on commit).
    pub files: Vec<String>,
    /// A first install (`install`): the target was an empty directory.
    #[serde(default)]
    pub install: bool,
    /// A `rollback`: the config to put back (from the verified backup).
    #[serde(default)]
    pub restore_config: Option<PathBuf>,
    #[serde(default)]
    pub database: Option<DatabaseRestore>,
}

impl Body {
    pub(crate) fn swapped(&self, root: &SysRoot) -> bool {
        matches!(fsops::lstat(root, &self.target), Ok(Some(st)) if st.st_ino != self.old_ino)
    }
}

/// What `apply` did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub plan: Plan,
    pub backup: Option<String>,
    pub installed: Option<String>,
    pub rolled_back: bool,
}

/// Backs up config, data (when stored locally) and the database, each
/// verified; returns the backup directory.
fn backup(rel: &Release, from: &str, inputs: &plan::Inputs, opts: &Options) -> Result<PathBuf> {
    let base = rel.backup_base();
    fsops::create_dir_all(&rel.root, &base, 0o700)?;
    let stamp = state::utc_stamp(state::now());
    let dir = (0..100)
        .map(|i| {
            base.join(if i == 0 {
                format!("{stamp}-{from}")
            } else {
                format!("{stamp}-{from}-{i}")
            })
        })
        .find(|p| !fsops::exists(&rel.root, p))
        .ok_or_else(|| Error::Failed("too many backups this second".into()))?;
    fsops::create_private_dir(&rel.root, &dir)?;
    let _progress = crate::progress::start(&format!("backing up to {}", dir.display()));
    let res = (|| {
        let mut sums = fsops::Sums::new();
        fsops::copy_tree(
            &rel.root,
            &inputs.config_path,
            &dir.join("config.json"),
            "config.json",
            &mut sums,
        )?;
        if let Some(data) = plan::data_to_back_up(rel, &inputs.config, &rel.target()) {
            fsops::copy_tree(&rel.root, &data, &dir.join("data"), "data", &mut sums)?;
        }
        if !rel.spec.backup.dump.is_empty() && !opts.skip_db_backup {
            dump_database(rel, &inputs.config, &dir.join("database.dump"))?;
            sums.add_file(&rel.root, &dir.join("database.dump"), "database.dump")?;
        }
        sums.write(&rel.root, &dir)?;
        let meta =
            serde_json::json!({ "product": rel.product, "version": from, "created": state::now() });
        fsops::write_private(
            &rel.root,
            &dir.join("backup.json"),
            meta.to_string().as_bytes(),
        )?;
        Ok(())
    })();
    if let Err(e) = res {
        let _ = fsops::remove_tree(&rel.root, &dir);
        return Err(e);
    }
    retain(rel, rel.spec.backup.keep.unwrap_or(3))?;
    Ok(dir)
}

/// A backup now, as `apply` makes before it changes anything (config,
/// local data, database dump unless skipped), verified; its directory.
pub fn backup_now(rel: &Release, opts: &Options) -> Result<PathBuf> {
    let _lock = Journal::lock(&rel.root, Duration::from_secs(10))?;
    let from = rel.installed_version().ok_or_else(|| {
        crate::not_installed(
            &rel.product,
            &rel.root,
            format!("no release in {}: nothing to back up", rel.spec.dir),
        )
    })?;
    let config_path = rel.config_path(&rel.target());
    let (config_text, config) = crate::read_config(&rel.root, &config_path)?;
    plan::check_data_dir(rel, &config, &config_path)?;
    let inputs = plan::Inputs {
        archives: Vec::new(),
        config_text,
        config,
        config_path,
    };
    backup(rel, &from, &inputs, opts)
}

fn dump_database(rel: &Release, config: &serde_json::Value, out: &Path) -> Result<()> {
    let key = rel
        .spec
        .backup
        .datasource_from
        .as_deref()
        .unwrap_or_default();
    let skip = "nothing was changed; to upgrade without a database backup on purpose, add --skip-db-backup";
    let ds = jsonedit::get_str(config, key)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::Failed(format!("database backup: no {key} in the config; {skip}")))?;
    database_command(rel, &rel.spec.backup.dump, ds, out)
        .map_err(|why| Error::Failed(format!("database backup with {why}; {skip}")))
}

/// The database a config points at (the manifest's `datasource_from`).
pub(crate) fn datasource(rel: &Release, config: &serde_json::Value) -> Option<String> {
    let key = rel.spec.backup.datasource_from.as_deref()?;
    jsonedit::get_str(config, key)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Runs a manifest's database command (`dump` or `restore`) with
/// `{datasource}` and `{out}`/`{dump}` expanded; the error says which
/// program failed and why.
pub(crate) fn database_command(
    rel: &Release,
    template: &[String],
    datasource: &str,
    file: &Path,
) -> std::result::Result<(), String> {
    let Some(program) = template.first() else {
        return Err("no command in the manifest".into());
    };
    let mut cmd = match inside_root(rel, program, file) {
        // The root's own client, chrooted: the version its server expects.
        Some(seen) => {
            let argv = database_argv(template, datasource, &seen)?;
            let mut c = std::process::Command::new("chroot");
            c.arg(rel.root.dir()).args(&argv);
            c.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
            c
        }
        // None in the root (or the root is `/`): the machine's, which only
        // talks to the database over the network and writes the file.
        None => {
            let argv = database_argv(template, datasource, &file.display().to_string())?;
            let mut c = std::process::Command::new(program);
            c.args(&argv[1..]);
            c
        }
    };
    let res = upkeep_sys::process::run_with_timeout(&mut cmd, None, Duration::from_secs(3600));
    let why = match res {
        Ok(Some(o)) if o.status.success() && fsops::exists(&rel.root, file) => return Ok(()),
        Ok(Some(o)) => format!(
            "{} ({})",
            String::from_utf8_lossy(&o.stderr).trim(),
            o.status
        ),
        Ok(None) => "timed out".into(),
        Err(e) => e.to_string(),
    };
    Err(format!("{program} failed: {why}"))
}

/// Under a `--root` that has `program` itself (on the usual PATH), the
/// file as seen from inside the root; `None` when the machine's runs.
fn inside_root(rel: &Release, program: &str, file: &Path) -> Option<String> {
    if rel.root.is_host() || program.contains('/') {
        return None;
    }
    let has = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .any(|d| fsops::exists(&rel.root, &rel.root.path(format!("{d}/{program}"))));
    let seen = file.strip_prefix(rel.root.dir()).ok()?;
    has.then(|| Path::new("/").join(seen).display().to_string())
}

/// A manifest's database command with `{datasource}` and `{out}`/`{dump}`
/// expanded. The data source comes from a config its service user may
/// write: one that a program would read as an option (`--file=/etc/…`)
/// is refused, whatever the manifest's command looks like.
pub(crate) fn database_argv(
    template: &[String],
    datasource: &str,
    file: &str,
) -> std::result::Result<Vec<String>, String> {
    if datasource.starts_with('-') || datasource.contains(['\0', '\n']) {
        return Err(format!(
            "the data source {datasource:?} in the config is not a database address (it would be read as an option): nothing was run"
        ));
    }
    Ok(template
        .iter()
        .map(|a| {
            a.replace("{datasource}", datasource)
                .replace("{out}", file)
                .replace("{dump}", file)
        })
        .collect())
}

/// A rollback's database step: the database as it is into `before`
/// (once; kept if a crash repeats the step), then the backup's dump in.
fn restore_database(rel: &Release, d: &DatabaseRestore) -> Result<()> {
    let b = &rel.spec.backup;
    if !fsops::exists(&rel.root, &d.before) {
        let partial = d.before.with_extension("partial");
        fsops::remove_tree(&rel.root, &partial)?;
        database_command(rel, &b.dump, &d.datasource, &partial).map_err(|why| {
            Error::Failed(format!("saving the database before restoring it: {why}"))
        })?;
        fsops::rename_noreplace(&rel.root, &partial, &d.before)?;
    }
    database_command(rel, &b.restore, &d.datasource, &d.dump)
        .map_err(|why| Error::Failed(format!("restoring the database: {why}")))
}

/// Reads a backup back against its SHA256SUMS (and CLONES).
pub fn verify_backup(root: &SysRoot, dir: &Path) -> Result<()> {
    crate::treecopy::verify(root, dir)
}

/// Backups of a product, oldest first.
pub fn list_backups(rel: &Release) -> Result<Vec<PathBuf>> {
    let base = rel.backup_base();
    let mut out: Vec<PathBuf> = fsops::entries(&rel.root, &base)?
        .into_iter()
        .filter(|(_, k)| *k == safe::Kind::Dir)
        .map(|(n, _)| base.join(n))
        .filter(|p| fsops::is_file(&rel.root, &p.join("backup.json")))
        .collect();
    out.sort();
    Ok(out)
}

fn retain(rel: &Release, keep: usize) -> Result<()> {
    let mut all = list_backups(rel)?;
    while all.len() > keep {
        let old = all.remove(0);
        fsops::remove_tree(&rel.root, &old)?;
    }
    Ok(())
}

/// Plans, then (unless refused or `dry_run`) applies every archive of the
/// chain in version order, each a full step with its own health check.
pub fn apply(rel: &Release, archives: &[PathBuf], opts: &Options, dry_run: bool) -> Result<Report> {
    let _lock = Journal::lock(&rel.root, Duration::from_secs(10))?;
    recover_locked(rel)?;
    let (plan, inputs) = plan::plan(rel, archives, opts)?;
    if let Some(r) = &plan.refused {
        return Err(Error::Refused(format!("{} ({})", r.message, r.rule)));
    }
    if dry_run {
        return Ok(Report {
            plan,
            backup: None,
            installed: None,
            rolled_back: false,
        });
    }
    let from = plan.from.clone().unwrap_or_else(|| "unknown".into());
    let backup_dir = backup(rel, &from, &inputs, opts)?;
    point("upgrade:backed-up");
    let mut cur = from;
    for c in &inputs.archives {
        match step(rel, c, &cur, &opts.settings, &backup_dir) {
            Ok(()) => cur = c.version.clone(),
            Err(e) if undo_left(rel) => {
                return Err(Error::Failed(format!(
                    "upgrade to {} failed, and undoing it did not finish: {e}",
                    c.version
                )));
            }
            Err(e) => {
                mark_undone(rel, &cur, &c.version);
                return Err(Error::Failed(format!(
                    "upgrade to {} failed and was rolled back: {e}; {}",
                    c.version,
                    back_as(rel, &cur, &c.version, &backup_dir)
                )));
            }
        }
    }
    Ok(Report {
        plan,
        backup: Some(backup_dir.display().to_string()),
        installed: Some(cur),
        rolled_back: false,
    })
}

pub(crate) fn owner_ids(rel: &Release) -> Result<Option<(u32, u32)>> {
    let Some(o) = &rel.spec.owner else {
        return Ok(None);
    };
    let acc = users::Accounts::load(&rel.root)?;
    let (u, g) = users::resolve_owner(&acc, o)?;
    Ok(Some((u, g.unwrap_or(0))))
}

/// One archive: stage, stop, swap, restore, overrides, ownership,
/// capabilities, start, verify, each journaled first; any failure undoes
/// what was made, newest first.
fn step(
    rel: &Release,
    c: &Checked,
    from: &str,
    settings: &[Setting],
    backup_dir: &Path,
) -> Result<()> {
    let journal = Journal::open(&rel.root, JOURNAL)?;
    let target = rel.target();
    let (stage, shipped) = (rel.stage(), rel.shipped());
    let config_path = rel.config_path(&target);
    let (_, config) = crate::read_config(&rel.root, &config_path)?;
    // What moves across, in after-swap coordinates (old tree at `stage`),
    // decided now from the old tree and the archive's own list.
    let names = c.names();
    let preserve = plan::preserved(rel, &config, &target);
    let mut known = plan::recorded_files(rel);
    known.extend(names.iter().map(|n| n.to_string()));
    let unknown = plan::unknown(&rel.root, &target, &known, &preserve);
    let mut moves = Vec::new();
    for p in preserve.iter().chain(&unknown) {
        if names.contains(p.as_str()) {
            moves.push((target.join(p), shipped.join(p)));
        }
        moves.push((stage.join(p), target.join(p)));
    }
    let mut steps = vec![Step::Stage, Step::Stop, Step::Swap];
    if !moves.is_empty() {
        steps.push(Step::Moves);
    }
    if !settings.is_empty() {
        steps.push(Step::Overrides);
    }
    steps.extend([
        Step::Ownership,
        Step::Capabilities,
        Step::Start,
        Step::Verify,
    ]);
    let body = Body {
        product: rel.product.clone(),
        from: from.to_string(),
        to: c.version.clone(),
        archive: c.path.clone(),
        steps,
        target: target.clone(),
        stage,
        shipped,
        old_ino: fsops::lstat(&rel.root, &target)?
            .ok_or_else(|| Error::Failed(format!("{}: not there", target.display())))?
            .st_ino,
        moves,
        config_path,
        config_backup: backup_dir.join("config.json"),
        settings: settings
            .iter()
            .map(|s| (s.key.clone(), s.value.clone()))
            .collect(),
        owner: owner_ids(rel)?,
        files: c
            .names()
            .into_iter()
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
        install: false,
        restore_config: None,
        database: None,
    };
    let count = body.steps.len();
    let mut rec = Record::new(body);
    journal.run(
        &mut rec,
        count,
        |b, i| do_step(rel, c, b, b.steps[i]),
        |b, i| undo_step(rel, b, b.steps[i]),
    )?;
    commit(rel, &journal, &rec)
}

pub(crate) fn do_step(rel: &Release, c: &Checked, b: &Body, step: Step) -> Result<()> {
    match step {
        Step::Stage => {
            fsops::remove_tree(&rel.root, &b.stage)?;
            fsops::unpack(&rel.root, c, &rel.spec.top, &b.stage)?;
            let staged = crate::archive::tree_version(&rel.spec, &rel.root, &b.stage);
            if staged.as_deref() != Some(b.to.as_str()) {
                return Err(Error::Failed(format!(
                    "the staged tree says version {staged:?}, expected {}",
                    b.to
                )));
            }
            Ok(())
        }
        Step::Stop => service::control(&rel.root, &rel.spec.stop, &rel.spec.services),
        Step::Swap => fsops::exchange(&rel.root, &b.target, &b.stage),
        Step::Move(i) => move_one(rel, b, i),
        Step::Moves => {
            for i in 0..b.moves.len() {
                move_one(rel, b, i)?;
                point(&format!("upgrade:moved{i}"));
            }
            Ok(())
        }
        Step::Overrides => {
            let (text, _) = crate::read_config(&rel.root, &b.config_path)?;
            let mut new = text;
            for (key, value) in &b.settings {
                let s = Setting {
                    key: key.clone(),
                    value: value.clone(),
                };
                new = jsonedit::set(&new, &s).map_err(Error::Failed)?;
            }
            fsops::replace_keeping(&rel.root, &b.config_path, new.as_bytes())
        }
        Step::Ownership => {
            if let Some((uid, gid)) = b.owner {
                // What was kept from the old tree keeps its owner: the
                // release's own files only.
                let kept: Vec<&PathBuf> = b
                    .moves
                    .iter()
                    .map(|(_, to)| to)
                    .filter(|to| to.starts_with(&b.target))
                    .collect();
                for r in &b.files {
                    let p = b.target.join(r);
                    if !kept.iter().any(|k| p.starts_with(k)) {
                        fsops::chown_nofollow(&rel.root, &p, uid, gid)?;
                    }
                }
                fsops::chown_nofollow(&rel.root, &b.target, uid, gid)?;
            }
            for m in &rel.spec.modes {
                let p = b.target.join(&m.path);
                if let Ok(mode) = u32::from_str_radix(&m.mode, 8) {
                    if fsops::exists(&rel.root, &p) {
                        fsops::chmod(&rel.root, &p, mode)?;
                    }
                }
            }
            Ok(())
        }
        // Last: a chown clears file capabilities. Each is read back.
        Step::Capabilities => {
            for cap in &rel.spec.capabilities {
                let p = b.target.join(&cap.path);
                if fsops::exists(&rel.root, &p) {
                    fsops::set_caps(&rel.root, &p, &cap.caps)?;
                }
            }
            Ok(())
        }
        Step::Start => service::control(&rel.root, &rel.spec.start, &rel.spec.services),
        Step::Verify => healthy(rel, b),
        Step::RestoreConfig => {
            let from = b.restore_config.as_deref().unwrap_or(&b.config_backup);
            let saved = fsops::read(&rel.root, from)?
                .ok_or_else(|| Error::Failed(format!("{}: missing", from.display())))?;
            fsops::replace_keeping(&rel.root, &b.config_path, &saved)
        }
        Step::RestoreDatabase => match &b.database {
            Some(d) => restore_database(rel, d),
            None => Ok(()),
        },
    }
}

/// Undoes one step; safe to run again, and for a step never made.
pub(crate) fn undo_step(rel: &Release, b: &Body, step: Step) -> Result<()> {
    match step {
        // Only while the target is the old tree is the stage the new one.
        Step::Stage => {
            if !b.swapped(&rel.root) {
                fsops::remove_tree(&rel.root, &b.stage)?;
                if b.install {
                    crate::revert::remove_if_empty(&rel.root, &b.target)?;
                }
            }
            fsops::remove_tree(&rel.root, &b.shipped)
        }
        Step::Stop => service::control(&rel.root, &rel.spec.start, &rel.spec.services),
        Step::Swap => {
            if b.swapped(&rel.root) {
                fsops::exchange(&rel.root, &b.target, &b.stage)?;
            }
            if b.install {
                crate::revert::remove_if_empty(&rel.root, &b.target)?;
            }
            Ok(())
        }
        Step::Move(i) => unmove_one(rel, b, i),
        Step::Moves => (0..b.moves.len())
            .rev()
            .try_for_each(|i| unmove_one(rel, b, i)),
        // A first install's tree goes away whole.
        Step::Overrides | Step::RestoreConfig if b.install => Ok(()),
        Step::Overrides | Step::RestoreConfig => {
            if b.swapped(&rel.root) {
                let saved = fsops::read(&rel.root, &b.config_backup)?.ok_or_else(|| {
                    Error::Failed(format!("{}: missing", b.config_backup.display()))
                })?;
                if fsops::exists(&rel.root, &b.config_path)
                    && fsops::read(&rel.root, &b.config_path)
                        .ok()
                        .flatten()
                        .as_deref()
                        != Some(&saved[..])
                {
                    fsops::replace_keeping(&rel.root, &b.config_path, &saved)?;
                }
            }
            Ok(())
        }
        // The new tree goes away whole: nothing to give back.
        Step::Ownership | Step::Capabilities | Step::Verify => Ok(()),
        // The database as it was before the step, if the step saved it.
        Step::RestoreDatabase => match &b.database {
            Some(d) if fsops::exists(&rel.root, &d.before) => {
                database_command(rel, &rel.spec.backup.restore, &d.datasource, &d.before)
                    .map_err(|why| Error::Failed(format!("putting the database back: {why}")))
            }
            _ => Ok(()),
        },
        Step::Start => {
            let _ = service::control(&rel.root, &rel.spec.stop, &rel.spec.services);
            Ok(())
        }
    }
}

fn move_one(rel: &Release, b: &Body, i: usize) -> Result<()> {
    let (from, to) = &b.moves[i];
    if let Some(parent) = to.parent() {
        fsops::create_dir_all(&rel.root, parent, 0o755)?;
    }
    fsops::rename_noreplace(&rel.root, from, to)
}

/// Before the swap the moves' paths name other trees: untouched.
fn unmove_one(rel: &Release, b: &Body, i: usize) -> Result<()> {
    let (from, to) = &b.moves[i];
    if b.swapped(&rel.root) && fsops::exists(&rel.root, to) && !fsops::exists(&rel.root, from) {
        fsops::rename_noreplace(&rel.root, to, from)?;
    }
    Ok(())
}

/// Whether a record of this product is still in the journal: its undo
/// stopped half way, and only `recover` may say where things are.
fn undo_left(rel: &Release) -> bool {
    let Ok(Some(j)) = Journal::existing(&rel.root, JOURNAL) else {
        return false;
    };
    j.load_all::<Body>()
        .map(|all| all.iter().any(|r| r.body.product == rel.product))
        .unwrap_or(true)
}

/// What a rollback left running, said only once the release rolled back
/// to answers its health check as `version`.
fn back_as(rel: &Release, version: &str, failed: &str, backup: &Path) -> String {
    match answers_as(rel, version) {
        Ok(()) => format!(
            "{} {version} is installed and running as before",
            rel.product
        ),
        Err(e) => {
            let dump = backup.join("database.dump");
            let dump = if fsops::exists(&rel.root, &dump) {
                format!("the dump made before the upgrade is {}", dump.display())
            } else {
                format!("no database dump was made before it (--skip-db-backup, or none declared); the backup in {} holds the config and data", backup.display())
            };
            format!(
                "{} {version} is back in place but does not answer ({e}): if {failed} migrated the database before it failed, {version} refuses it; {dump}",
                rel.product
            )
        }
    }
}

/// Starts the service (a no-op when it runs: the service manager's own
/// rule) and waits for the release the record went to to answer. After a
/// crash that took the new server down with it, the new release, complete
/// and perhaps owning a migrated database, is started rather than undone.
fn start_and_ask(rel: &Release, b: &Body) -> Result<()> {
    service::control(&rel.root, &rel.spec.start, &rel.spec.services)?;
    healthy(rel, b)
}

/// The installed tree's service answers its health check as `version`.
fn answers_as(rel: &Release, version: &str) -> Result<()> {
    if let Some(h) = &rel.spec.health {
        let (_, cfg) = crate::read_config(&rel.root, &rel.config_path(&rel.target()))?;
        service::wait_healthy(h, &cfg, version)?;
    }
    Ok(())
}

pub(crate) fn healthy(rel: &Release, b: &Body) -> Result<()> {
    if let Some(h) = &rel.spec.health {
        let (_, cfg) = crate::read_config(&rel.root, &b.config_path)?;
        service::wait_healthy(h, &cfg, &b.to)?;
    }
    Ok(())
}

/// The release's file list as upkeep recorded it, in its own state.
pub const RELEASES: &str = "releases";

fn undone_name(rel: &Release) -> String {
    format!("{}.undone", rel.product)
}

/// Notes that an upgrade to `to` failed and was undone while `running`
/// runs as before: a rollback then has nothing to undo (the release kept
/// aside is older than the one running). Best effort: the failure is the
/// news, and without the note a rollback only asks more of the operator.
fn mark_undone(rel: &Release, running: &str, to: &str) {
    let note = serde_json::json!({ "running": running, "failed": to });
    if let Ok(dir) = state::private_dir(&rel.root, RELEASES) {
        let _ = state::write_private(&dir, &undone_name(rel), note.to_string().as_bytes());
    }
}

/// The upgrade that failed and was undone, when the release running is
/// still the one it started from: `(running, failed)`.
pub(crate) fn undone(rel: &Release, installed: &str) -> Option<(String, String)> {
    let dir = state::existing_private_dir(&rel.root, RELEASES).ok()??;
    let bytes = dir
        .read(Path::new(&undone_name(rel)), safe::Resolve::NoLinks, 4096)
        .ok()??;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let (running, failed) = (v["running"].as_str()?, v["failed"].as_str()?);
    (running == installed).then(|| (running.to_string(), failed.to_string()))
}

fn clear_undone(dir: &safe::Dir, rel: &Release) -> Result<()> {
    dir.unlink(std::ffi::OsStr::new(&undone_name(rel)))?;
    Ok(())
}

/// Keeps the old tree as the previous release, records the new file list,
/// and closes the record.
pub(crate) fn commit(rel: &Release, journal: &Journal, rec: &Record<Body>) -> Result<()> {
    let b = &rec.body;
    let prev = rel.previous();
    if b.install {
        // What is left at the stage is the empty directory swapped out.
        crate::revert::remove_if_empty(&rel.root, &b.stage)?;
    } else if b.stage == prev {
        // A rollback: the release rolled back from is kept aside, so that
        // a second rollback finds nothing to do.
        let gone = rel.rolled_back();
        if b.swapped(&rel.root) && fsops::exists(&rel.root, &b.stage) {
            fsops::remove_tree(&rel.root, &gone)?;
            fsops::rename_noreplace(&rel.root, &b.stage, &gone)?;
        }
    } else if b.swapped(&rel.root) && fsops::exists(&rel.root, &b.stage) {
        fsops::remove_tree(&rel.root, &prev)?;
        fsops::rename_noreplace(&rel.root, &b.stage, &prev)?;
    }
    fsops::remove_tree(&rel.root, &b.shipped)?;
    point("upgrade:committing");
    let mut files = b.files.join("\n");
    files.push('\n');
    let dir = state::private_dir(&rel.root, RELEASES)?;
    state::write_private(&dir, &format!("{}.files", b.product), files.as_bytes())?;
    clear_undone(&dir, rel)?;
    journal.remove(&rec.id)
}

/// What `recover` did: nothing, rolled back, or finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recovered {
    Nothing,
    RolledBack,
    Finished,
}

pub(crate) fn recover_locked(rel: &Release) -> Result<Recovered> {
    let Some(journal) = Journal::existing(&rel.root, JOURNAL)? else {
        return Ok(Recovered::Nothing);
    };
    journal.clean_temps()?;
    let mut out = Recovered::Nothing;
    let records: Vec<Record<Body>> = journal.load_all()?;
    for mut rec in records {
        if rec.body.product != rel.product {
            continue;
        }
        // Started, or perhaps started (step `done` may be half made), and
        // so perhaps the database migrated: if the new release answers,
        // finishing is the way forward.
        let started = rec
            .body
            .steps
            .iter()
            .position(|s| *s == Step::Start)
            .is_some_and(|i| rec.done >= i);
        if rec.phase == JPhase::Doing && started && start_and_ask(rel, &rec.body).is_ok() {
            rec.done = rec.count;
            rec.phase = JPhase::Done;
            journal.write(&rec)?;
        }
        if rec.phase == JPhase::Done {
            commit(rel, &journal, &rec)?;
            // Finished only once it runs: a crash can take the service with it.
            start_and_ask(rel, &rec.body).map_err(|e| {
                Error::Failed(format!(
                    "an interrupted upgrade of {} to {} was finished, but it does not answer: {e}",
                    rel.product, rec.body.to
                ))
            })?;
            out = Recovered::Finished;
        } else {
            journal.undo(&mut rec, |b, i| undo_step(rel, b, b.steps[i]))?;
            let b = &rec.body;
            if !b.install && b.restore_config.is_none() {
                mark_undone(rel, &b.from, &b.to);
            }
            // Back only once it answers: started again by the undo, or
            // started here when a crash took it down before the stop.
            if !b.install {
                service::control(&rel.root, &rel.spec.start, &rel.spec.services)
                    .and_then(|()| answers_as(rel, &b.from))
                    .map_err(|e| {
                    Error::Failed(format!(
                        "an interrupted upgrade of {} to {} was undone, but {} does not answer: {e}",
                        rel.product, b.to, b.from
                    ))
                })?;
            }
            out = Recovered::RolledBack;
        }
    }
    Ok(out)
}

/// Finishes or undoes an interrupted run; `Nothing` (and nothing written)
/// when there is none.
pub fn recover(rel: &Release) -> Result<Recovered> {
    // The fast path: no journal, nothing to do, nothing created.
    match Journal::existing(&rel.root, JOURNAL)? {
        None => return Ok(Recovered::Nothing),
        Some(j) if j.is_empty()? => return Ok(Recovered::Nothing),
        Some(_) => {}
    }
    let _lock = Journal::lock(&rel.root, Duration::from_secs(10))?;
    recover_locked(rel)
}
