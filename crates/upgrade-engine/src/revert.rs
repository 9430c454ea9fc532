//! `install` (a first install, with the same checks, staging and
//! journal as an upgrade) and `rollback` (back to the release kept beside
//! the install, with the config of its verified backup). Both run through
//! the same journaled steps as `apply`, so `recover` finishes or undoes
//! them, and both are safe to run again.

use crate::apply::{self, Body, Step, JOURNAL};
use crate::archive;
use crate::fsops;
use crate::jsonedit::Setting;
use crate::plan;
use crate::Release;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use upkeep_pkg::version::ProductVersion;
use upkeep_sys::journal::{Journal, Record};
use upkeep_sys::safe;
use upkeep_sys::{state, Error, Result, SysRoot};

/// Removes `p` when it is an empty directory; anything else stays.
pub fn remove_if_empty(root: &SysRoot, p: &Path) -> Result<()> {
    if fsops::is_dir(root, p) && fsops::entries(root, p)?.is_empty() {
        fsops::remove_tree(root, p)?;
    }
    Ok(())
}

/// Every path in a tree, relative, directories before what they hold.
fn tree_files(root: &SysRoot, dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
    for (n, kind) in fsops::entries(root, dir)? {
        let n = n.to_string_lossy().into_owned();
        let r = if rel.is_empty() {
            n.clone()
        } else {
            format!("{rel}/{n}")
        };
        out.push(r.clone());
        if kind == safe::Kind::Dir {
            tree_files(root, &dir.join(&n), &r, out)?;
        }
    }
    Ok(())
}

/// What `install` did.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    pub product: String,
    pub version: String,
    pub dir: String,
    /// Already installed at this version: nothing was done.
    pub unchanged: bool,
}

/// A first install from one checked archive: stage next to the target,
/// swap it in, overrides, ownership, capabilities, start, health check.
/// Refused (3) when something else is installed there already; nothing
/// to do when this very version is.
pub fn install(
    rel: &Release,
    archive_path: &Path,
    settings: &[Setting],
    dry_run: bool,
) -> Result<Installed> {
    let _lock = Journal::lock(&rel.root, Duration::from_secs(10))?;
    apply::recover_locked(rel)?;
    let c = archive::check(&rel.spec, archive_path)?;
    if ProductVersion::parse(&c.version).is_none() {
        return Err(Error::bad_input(
            &c.path,
            None,
            format!("'{}' is not a version", c.version),
        ));
    }
    let target = rel.target();
    let out = Installed {
        product: rel.product.clone(),
        version: c.version.clone(),
        dir: rel.spec.dir.clone(),
        unchanged: false,
    };
    if let Some(have) = rel.installed_version() {
        if have == c.version {
            return Ok(Installed {
                unchanged: true,
                ..out
            });
        }
        return Err(Error::Refused(format!(
            "{} {have} is already installed in {}: to upgrade it, upkeep-upgrade apply {} ARCHIVE",
            rel.product, rel.spec.dir, rel.product
        )));
    }
    let empty = fsops::is_dir(&rel.root, &target) && fsops::entries(&rel.root, &target)?.is_empty();
    if fsops::exists(&rel.root, &target) && !empty {
        return Err(Error::Refused(format!(
            "{} exists and holds no {} release that can be read: nothing was changed; move it away first",
            target.display(),
            rel.product
        )));
    }
    if dry_run {
        return Ok(out);
    }
    // The swap exchanges two directories: the target starts empty.
    if let Some(parent) = target.parent() {
        fsops::create_dir_all(&rel.root, parent, 0o755)?;
    }
    if !empty {
        fsops::create_dir_all(&rel.root, &target, 0o755)?;
    }
    let mut steps = vec![Step::Stage, Step::Swap];
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
        from: String::new(),
        to: c.version.clone(),
        archive: c.path.clone(),
        steps,
        target: target.clone(),
        stage: rel.stage(),
        shipped: rel.shipped(),
        old_ino: fsops::lstat(&rel.root, &target)?
            .ok_or_else(|| Error::Failed(format!("{}: not there", target.display())))?
            .st_ino,
        moves: Vec::new(),
        config_path: rel.config_path(&target),
        config_backup: rel.config_path(&target),
        settings: settings
            .iter()
            .map(|s| (s.key.clone(), s.value.clone()))
            .collect(),
        owner: apply::owner_ids(rel)?,
        files: c
            .names()
            .into_iter()
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
        install: true,
        restore_config: None,
        database: None,
    };
    let journal = Journal::open(&rel.root, JOURNAL)?;
    let count = body.steps.len();
    let mut rec = Record::new(body);
    let res = journal.run(
        &mut rec,
        count,
        |b, i| apply::do_step(rel, &c, b, b.steps[i]),
        |b, i| apply::undo_step(rel, b, b.steps[i]),
    );
    if let Err(e) = res {
        let _ = remove_if_empty(&rel.root, &target);
        return Err(Error::Failed(format!(
            "the install of {} {} failed and was undone; nothing is left in {}: {e}",
            rel.product, c.version, rel.spec.dir
        )));
    }
    apply::commit(rel, &journal, &rec)?;
    Ok(out)
}

/// What `rollback` did.
#[derive(Debug, Clone, Serialize)]
pub struct RolledBack {
    pub product: String,
    pub from: String,
    pub to: String,
    /// The backup whose config was put back.
    pub backup: String,
    /// The database dump in that backup.
    pub database_dump: Option<String>,
    /// Whether it was restored (`--restore-database`).
    pub database_restored: bool,
    /// The database as it was before the restore, dumped first.
    pub database_before: Option<String>,
    /// How to restore the dump by hand (the manifest's command) when it
    /// was not restored.
    pub restore_hint: Option<String>,
    /// Already rolled back: nothing was done.
    pub unchanged: bool,
    /// Something was rolled back (not a dry run, not `unchanged`): what a
    /// fleet tool reports as changed.
    pub rolled_back: bool,
}

impl RolledBack {
    /// Nothing to roll back: `from` is already undone, `to` runs.
    fn nothing(rel: &Release, from: String, to: String) -> RolledBack {
        RolledBack {
            product: rel.product.clone(),
            from,
            to,
            backup: String::new(),
            database_dump: None,
            database_restored: false,
            database_before: None,
            restore_hint: None,
            unchanged: true,
            rolled_back: false,
        }
    }
}

fn backup_version(root: &SysRoot, dir: &Path) -> Option<String> {
    let bytes = fsops::read(root, &dir.join("backup.json")).ok()??;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["version"].as_str().map(str::to_string)
}

/// Back to the release kept beside the install after the last upgrade,
/// with the config.json of the newest verified backup made for that
/// release. Data stays the live data (moved by rename, as in an upgrade),
/// so nothing uploaded since is lost. A second run finds nothing to do.
pub fn rollback(rel: &Release, dry_run: bool, restore_db: bool) -> Result<RolledBack> {
    let _lock = Journal::lock(&rel.root, Duration::from_secs(10))?;
    apply::recover_locked(rel)?;
    let target = rel.target();
    let prev = rel.previous();
    crate::refuse_linked_config(rel, &target)?;
    let installed = rel.installed_version().ok_or_else(|| {
        crate::not_installed(
            &rel.product,
            &rel.root,
            format!("no release in {}: nothing to roll back", rel.spec.dir),
        )
    })?;
    // The last upgrade failed and was undone: what runs is what ran, and
    // the release kept aside is older still. Nothing to roll back.
    if let Some((running, failed)) = apply::undone(rel, &installed) {
        return Ok(RolledBack::nothing(rel, failed, running));
    }
    let prev_version = archive::tree_version(&rel.spec, &rel.root, &prev);
    let Some(to) = prev_version else {
        // Already rolled back: the newer release sits aside.
        let gone = archive::tree_version(&rel.spec, &rel.root, &rel.rolled_back());
        if let Some(gone) = gone {
            return Ok(RolledBack::nothing(rel, gone, installed));
        }
        return Err(Error::Failed(format!(
            "no previous release of {} is kept in {}: nothing to roll back to",
            rel.product,
            prev.display()
        )));
    };
    // The newest verified backup made of that release.
    let mut backups = apply::list_backups(rel)?;
    backups.reverse();
    let mut why = Vec::new();
    let backup = backups
        .into_iter()
        .filter(|b| backup_version(&rel.root, b).as_deref() == Some(to.as_str()))
        .find(|b| match apply::verify_backup(&rel.root, b) {
            Ok(()) => true,
            Err(e) => {
                why.push(e.to_string());
                false
            }
        })
        .ok_or_else(|| {
            Error::Failed(format!(
                "no verified backup of {} {to} in {}{}: nothing was changed",
                rel.product,
                rel.backup_base().display(),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", why.join("; "))
                }
            ))
        })?;
    let config_path = rel.config_path(&target);
    let (_, config) = crate::read_config(&rel.root, &config_path)?;
    let database = database_restore(rel, &backup, restore_db)?;
    let dump = backup.join("database.dump");
    let database_dump = fsops::is_file(&rel.root, &dump).then(|| dump.display().to_string());
    let out = RolledBack {
        product: rel.product.clone(),
        from: installed.clone(),
        to: to.clone(),
        backup: backup.display().to_string(),
        restore_hint: database_dump
            .as_ref()
            .filter(|_| !restore_db)
            .and_then(|d| restore_hint(rel, d)),
        database_dump,
        database_restored: database.is_some(),
        database_before: database.as_ref().map(|d| d.before.display().to_string()),
        unchanged: false,
        rolled_back: !dry_run,
    };
    if dry_run {
        return Ok(out);
    }
    // The config as it is now, for the undo.
    let saved = rel.backup_base().join(".config-before-rollback.json");
    let now = fsops::read(&rel.root, &config_path)?
        .ok_or_else(|| Error::Failed(format!("{}: missing", config_path.display())))?;
    fsops::write_private(&rel.root, &saved, &now)?;
    // What moves back, in after-swap coordinates (current tree at `prev`).
    let preserve = plan::preserved(rel, &config, &target);
    let known = plan::recorded_files(rel);
    let unknown = plan::unknown(&rel.root, &target, &known, &preserve);
    let mut moves = Vec::new();
    for p in preserve.iter().chain(&unknown) {
        if fsops::exists(&rel.root, &prev.join(p)) {
            moves.push((target.join(p), rel.shipped().join(p)));
        }
        moves.push((prev.join(p), target.join(p)));
    }
    let mut files = Vec::new();
    tree_files(&rel.root, &prev, "", &mut files)?;
    let mut steps = vec![Step::Stop];
    if database.is_some() {
        steps.push(Step::RestoreDatabase);
    }
    steps.push(Step::Swap);
    if !moves.is_empty() {
        steps.push(Step::Moves);
    }
    steps.extend([
        Step::RestoreConfig,
        Step::Ownership,
        Step::Capabilities,
        Step::Start,
        Step::Verify,
    ]);
    let body = Body {
        product: rel.product.clone(),
        from: installed.clone(),
        to: to.clone(),
        archive: PathBuf::new(),
        steps,
        target: target.clone(),
        stage: prev.clone(),
        shipped: rel.shipped(),
        old_ino: fsops::lstat(&rel.root, &target)?
            .ok_or_else(|| Error::Failed(format!("{}: not there", target.display())))?
            .st_ino,
        moves,
        config_path,
        config_backup: saved.clone(),
        settings: Vec::new(),
        owner: apply::owner_ids(rel)?,
        files,
        install: false,
        restore_config: Some(backup.join("config.json")),
        database,
    };
    let journal = Journal::open(&rel.root, JOURNAL)?;
    let count = body.steps.len();
    let mut rec = Record::new(body);
    // No step here stages: there is no archive.
    let none = archive::Checked {
        path: PathBuf::new(),
        entries: Vec::new(),
        version: to.clone(),
        total_bytes: 0,
    };
    let res = journal.run(
        &mut rec,
        count,
        |b, i| apply::do_step(rel, &none, b, b.steps[i]),
        |b, i| apply::undo_step(rel, b, b.steps[i]),
    );
    if let Err(e) = res {
        return Err(Error::Failed(format!(
            "the rollback to {to} failed and was undone; {} {installed} is installed and running as before: {e}{}",
            rel.product,
            match (&out.restore_hint, &out.database_dump) {
                (Some(_), Some(_)) => format!(
                    " (if {installed} migrated the database, {to} refuses it: add --restore-database to restore the backup's dump; changes made since the backup are lost)"
                ),
                _ => String::new(),
            }
        )));
    }
    apply::commit(rel, &journal, &rec)?;
    fsops::remove_tree(&rel.root, &saved)?;
    Ok(out)
}

/// With `--restore-database`: the backup's dump, the database the
/// backup's config points at, and where the database as it is now is
/// saved first. Refused (nothing changed) when any of them is missing.
fn database_restore(
    rel: &Release,
    backup: &Path,
    restore_db: bool,
) -> Result<Option<apply::DatabaseRestore>> {
    if !restore_db {
        return Ok(None);
    }
    let dump = backup.join("database.dump");
    if !fsops::is_file(&rel.root, &dump) {
        return Err(Error::Failed(format!(
            "--restore-database: {} has no database dump (made with --skip-db-backup?): nothing was changed",
            backup.display()
        )));
    }
    if rel.spec.backup.restore.is_empty() || rel.spec.backup.dump.is_empty() {
        return Err(Error::Failed(format!(
            "--restore-database: the {} manifest declares no database dump and restore commands: nothing was changed",
            rel.product
        )));
    }
    let (_, config) = crate::read_config(&rel.root, &backup.join("config.json"))?;
    let datasource = apply::datasource(rel, &config).ok_or_else(|| {
        Error::Failed(
            "--restore-database: the backup's config names no database: nothing was changed".into(),
        )
    })?;
    // Beside the backups, not in one: a backup holds only what it lists.
    let before = rel.backup_base().join(format!(
        "database-before-rollback-{}.dump",
        state::utc_stamp(state::now())
    ));
    Ok(Some(apply::DatabaseRestore {
        datasource,
        dump,
        before,
    }))
}

/// The manifest's restore command for `dump`, the database left as
/// DATASOURCE (it may hold a password).
fn restore_hint(rel: &Release, dump: &str) -> Option<String> {
    let argv = &rel.spec.backup.restore;
    (!argv.is_empty()).then(|| {
        argv.iter()
            .map(|a| {
                a.replace("{datasource}", "DATASOURCE")
                    .replace("{dump}", dump)
            })
            .collect::<Vec<_>>()
            .join(" ")
    })
}
