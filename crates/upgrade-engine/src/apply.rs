//! `apply`, `recover` and `backups`: backup, stage next to the target,
//! stop, swap by one rename, move the preserved paths across by rename,
//! overrides, ownership, capabilities last, start, health check; and on
//! any failure after the first change, back to the old tree by itself.
//!
//! Every change is journaled first (`ROOT/var/lib/upkeep/upgrade/PRODUCT.journal`,
//! written atomically and fsynced). What a crash leaves is decided from the
//! journal and from what is on disk: before the commit point, `recover`
//! puts the old install back; after it, it finishes the new one.

use crate::archive::Checked;
use crate::fsops;
use crate::jsonedit::{self, Setting};
use crate::plan::{self, Options, Plan};
use crate::{service, Release};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use upkeep_core::error::IoContext;
use upkeep_core::fault::point;
use upkeep_core::{state, users, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Unpacking next to the target; the install is untouched.
    Staging,
    /// The services are being stopped; the install is untouched.
    Stopping,
    /// Swapped (or about to be) and being finished: undone on a crash.
    Swapping,
    /// The new release was started (and may have migrated the database):
    /// on a crash, finished if it answers its health check, else undone.
    Started,
    /// The new release answered its health check: finished on a crash.
    Committing,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub product: String,
    pub from: String,
    pub to: String,
    pub phase: Phase,
    pub target: PathBuf,
    pub stage: PathBuf,
    pub shipped: PathBuf,
    /// The target directory's inode before the swap: tells whether it happened.
    pub old_ino: u64,
    /// Renames in order, as (from, to), in after-swap coordinates.
    pub moves: Vec<(PathBuf, PathBuf)>,
    /// The config as it was before this step (restored on rollback).
    pub config_path: PathBuf,
    pub config_backup: PathBuf,
    /// The release's file list (recorded on commit).
    pub files: Vec<String>,
}

fn save(path: &Path, j: &Journal) -> Result<()> {
    let data = serde_json::to_vec_pretty(j).map_err(|e| Error::Failed(e.to_string()))?;
    state::write_atomic(path, &data)
}

fn load(path: &Path) -> Result<Option<Journal>> {
    match std::fs::read(path) {
        Ok(d) => serde_json::from_slice(&d)
            .map(Some)
            .map_err(|e| Error::bad_input(path, None, format!("unreadable journal: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
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

/// Writes `text` over `path` atomically, keeping owner, group and mode.
fn replace_keeping(path: &Path, text: &[u8]) -> Result<()> {
    let meta = std::fs::metadata(path).at(path)?;
    let dir = path
        .parent()
        .ok_or_else(|| Error::Failed(format!("{}: no parent", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.upkeep-tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .at(&tmp)?;
        std::io::Write::write_all(&mut f, text).at(&tmp)?;
        upkeep_core::safefs::fchown(&f, meta.uid(), meta.gid())?;
        upkeep_core::safefs::fchmod(&f, meta.mode())?;
        f.sync_all().at(&tmp)?;
        std::fs::rename(&tmp, path).at(path)?;
        fsops::sync_parent(path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res?;
    if std::fs::read(path).at(path)? != text {
        return Err(Error::Failed(format!(
            "{}: reads back differently than written",
            path.display()
        )));
    }
    Ok(())
}

/// Backs up config, data (when stored locally) and the database, each
/// verified; returns the backup directory.
fn backup(rel: &Release, from: &str, inputs: &plan::Inputs, opts: &Options) -> Result<PathBuf> {
    let base = rel.backup_base();
    std::fs::create_dir_all(&base).at(&base)?;
    let stamp = state::utc_stamp(state::now());
    let dir = (0..100)
        .map(|i| {
            base.join(if i == 0 {
                format!("{stamp}-{from}")
            } else {
                format!("{stamp}-{from}-{i}")
            })
        })
        .find(|p| !fsops::exists(p))
        .ok_or_else(|| Error::Failed("too many backups this second".into()))?;
    fsops::create_private_dir(&dir)?;
    let res = (|| {
        let mut sums = Vec::new();
        fsops::copy_tree(
            &inputs.config_path,
            &dir.join("config.json"),
            "config.json",
            &mut sums,
        )?;
        if let Some(data) = plan::data_to_back_up(rel, &inputs.config, &rel.target()) {
            fsops::copy_tree(&data, &dir.join("data"), "data", &mut sums)?;
        }
        if !rel.spec.backup.dump.is_empty() && !opts.skip_db_backup {
            dump_database(rel, &inputs.config, &dir.join("database.dump"))?;
            let s = fsops::sha256_path(&dir.join("database.dump"))?;
            sums.push(("database.dump".into(), s));
        }
        let mut text = String::new();
        for (p, s) in &sums {
            text.push_str(&format!("{s}  {p}\n"));
        }
        state::write_atomic(&dir.join("SHA256SUMS"), text.as_bytes())?;
        let meta =
            serde_json::json!({ "product": rel.product, "version": from, "created": state::now() });
        state::write_atomic(&dir.join("backup.json"), meta.to_string().as_bytes())?;
        verify_backup(&dir)?;
        Ok(())
    })();
    if let Err(e) = res {
        let _ = fsops::remove_tree(&dir);
        return Err(e);
    }
    retain(&base, rel.spec.backup.keep.unwrap_or(3))?;
    Ok(dir)
}

fn dump_database(rel: &Release, config: &serde_json::Value, out: &Path) -> Result<()> {
    let b = &rel.spec.backup;
    let key = b.datasource_from.as_deref().unwrap_or_default();
    let skip = "nothing was changed; to upgrade without a database backup on purpose, add --skip-db-backup";
    let ds = jsonedit::get_str(config, key)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::Failed(format!("database backup: no {key} in the config; {skip}")))?;
    let out_s = out.display().to_string();
    let argv: Vec<String> = b
        .dump
        .iter()
        .map(|a| a.replace("{datasource}", ds).replace("{out}", &out_s))
        .collect();
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    let res = upkeep_core::process::run_with_timeout(&mut cmd, None, Duration::from_secs(3600));
    let why = match res {
        Ok(Some(o)) if o.status.success() && fsops::exists(out) => return Ok(()),
        Ok(Some(o)) => format!(
            "{} ({})",
            String::from_utf8_lossy(&o.stderr).trim(),
            o.status
        ),
        Ok(None) => "timed out".into(),
        Err(e) => e.to_string(),
    };
    Err(Error::Failed(format!(
        "database backup with {} failed: {why}; {skip}",
        argv[0]
    )))
}

/// Reads a backup back against its SHA256SUMS.
pub fn verify_backup(dir: &Path) -> Result<()> {
    let sums = dir.join("SHA256SUMS");
    let text = std::fs::read_to_string(&sums).at(&sums)?;
    for (n, line) in text.lines().enumerate() {
        let (want, rel) = line
            .split_once("  ")
            .ok_or_else(|| Error::bad_input(&sums, Some(n + 1), "not 'SHA256  PATH'"))?;
        if rel.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(Error::bad_input(&sums, Some(n + 1), "bad path"));
        }
        let got = fsops::sha256_path(&dir.join(rel))?;
        if got != want {
            return Err(Error::Failed(format!(
                "{}: {rel} does not match its checksum",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Backups of a product, oldest first.
pub fn list_backups(rel: &Release) -> Result<Vec<PathBuf>> {
    let base = rel.backup_base();
    let rd = match std::fs::read_dir(&base) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&base, e)),
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("backup.json").is_file())
        .collect();
    out.sort();
    Ok(out)
}

fn retain(base: &Path, keep: usize) -> Result<()> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(base)
        .at(base)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("backup.json").is_file())
        .collect();
    all.sort();
    while all.len() > keep {
        let old = all.remove(0);
        fsops::remove_tree(&old)?;
    }
    Ok(())
}

/// Plans, then (unless refused or `dry_run`) applies every archive of the
/// chain in version order, each a full step with its own health check.
pub fn apply(rel: &Release, archives: &[PathBuf], opts: &Options, dry_run: bool) -> Result<Report> {
    let _lock = state::Lock::acquire(&rel.root, Duration::from_secs(10))?;
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
            Err(e) => {
                return Err(Error::Failed(format!(
                    "upgrade to {} failed and was rolled back; {} {cur} is installed and running as before: {e}",
                    c.version, rel.product
                )))
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

fn owner_ids(rel: &Release) -> Result<Option<(u32, u32)>> {
    let Some(o) = &rel.spec.owner else {
        return Ok(None);
    };
    let acc = users::Accounts::load(&rel.root)?;
    let (u, g) = users::resolve_owner(&acc, o)?;
    Ok(Some((u, g.unwrap_or(0))))
}

/// One archive: stage, stop, swap, restore, overrides, ownership,
/// capabilities, start, verify; rolled back on any failure after staging.
fn step(
    rel: &Release,
    c: &Checked,
    from: &str,
    settings: &[Setting],
    backup_dir: &Path,
) -> Result<()> {
    let jpath = rel.journal_path()?;
    let target = rel.target();
    let (stage, shipped) = (rel.stage(), rel.shipped());
    let config_path = rel.config_path(&target);
    let (_, config) = crate::read_config(&config_path)?;
    let owner = owner_ids(rel)?;
    let mut j = Journal {
        product: rel.product.clone(),
        from: from.to_string(),
        to: c.version.clone(),
        phase: Phase::Staging,
        target: target.clone(),
        stage: stage.clone(),
        shipped: shipped.clone(),
        old_ino: std::fs::metadata(&target).at(&target)?.ino(),
        moves: Vec::new(),
        config_path: config_path.clone(),
        config_backup: backup_dir.join("config.json"),
        files: c
            .entries
            .iter()
            .map(|e| e.rel.clone())
            .filter(|r| !r.is_empty())
            .collect(),
    };
    save(&jpath, &j)?;
    point("upgrade:staging");
    if let Err(e) = fsops::unpack(c, &rel.spec.top, &stage) {
        let _ = undo(rel, &j);
        return Err(e);
    }
    let staged = crate::archive::tree_version(&rel.spec, &stage);
    if staged.as_deref() != Some(c.version.as_str()) {
        let _ = undo(rel, &j);
        return Err(Error::Failed(format!(
            "the staged tree says version {staged:?}, expected {}",
            c.version
        )));
    }
    // What moves across, in after-swap coordinates (old tree at `stage`).
    let preserve = plan::preserved(rel, &config, &target);
    let mut known = plan::recorded_files(rel);
    known.extend(c.entries.iter().map(|e| e.rel.clone()));
    let unknown = plan::unknown(&target, &known, &preserve);
    for p in preserve.iter().chain(&unknown) {
        if fsops::exists(&stage.join(p)) {
            j.moves.push((target.join(p), shipped.join(p)));
        }
        j.moves.push((stage.join(p), target.join(p)));
    }
    j.phase = Phase::Stopping;
    save(&jpath, &j)?;
    point("upgrade:stop");
    if let Err(e) = service::control(&rel.root, &rel.spec.stop, &rel.spec.services) {
        let _ = undo(rel, &j);
        return Err(e);
    }
    j.phase = Phase::Swapping;
    save(&jpath, &j)?;
    let res = (|| {
        point("upgrade:swap");
        fsops::exchange(&target, &stage)?;
        point("upgrade:swapped");
        for (a, b) in &j.moves {
            if let Some(parent) = b.parent() {
                std::fs::create_dir_all(parent).at(parent)?;
            }
            fsops::rename_noreplace(a, b)?;
            point("upgrade:moved");
        }
        if !settings.is_empty() {
            let (text, _) = crate::read_config(&config_path)?;
            let mut new = text;
            for s in settings {
                new = jsonedit::set(&new, s).map_err(Error::Failed)?;
            }
            replace_keeping(&config_path, new.as_bytes())?;
            point("upgrade:overrides");
        }
        if let Some((uid, gid)) = owner {
            for r in &j.files {
                let p = target.join(r);
                std::os::unix::fs::lchown(&p, Some(uid), Some(gid)).at(&p)?;
            }
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid)).at(&target)?;
        }
        for m in &rel.spec.modes {
            let p = target.join(&m.path);
            if let Ok(mode) = u32::from_str_radix(&m.mode, 8) {
                if fsops::exists(&p) {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).at(&p)?;
                }
            }
        }
        point("upgrade:ownership");
        // Last: a chown clears file capabilities.
        for cap in &rel.spec.capabilities {
            let p = target.join(&cap.path);
            if fsops::exists(&p) {
                fsops::set_caps(&p, &cap.caps)?;
            }
        }
        point("upgrade:capabilities");
        service::control(&rel.root, &rel.spec.start, &rel.spec.services)?;
        j.phase = Phase::Started;
        save(&jpath, &j)?;
        point("upgrade:started");
        healthy(rel, &j)
    })();
    if let Err(e) = res {
        log::warn!("{}: {e}; rolling back", rel.product);
        if let Err(e2) = undo(rel, &j) {
            return Err(Error::Failed(format!(
                "{e}; and the rollback failed too: {e2}"
            )));
        }
        return Err(e);
    }
    j.phase = Phase::Committing;
    save(&jpath, &j)?;
    point("upgrade:commit");
    commit(rel, &j)
}

fn healthy(rel: &Release, j: &Journal) -> Result<()> {
    if let Some(h) = &rel.spec.health {
        let (_, cfg) = crate::read_config(&j.config_path)?;
        service::wait_healthy(h, &cfg, &j.to)?;
    }
    Ok(())
}

/// Keeps the old tree as the previous release, records the new file list,
/// and closes the journal.
fn commit(rel: &Release, j: &Journal) -> Result<()> {
    let prev = rel.previous();
    if fsops::exists(&j.stage) {
        fsops::remove_tree(&prev)?;
        fsops::rename_noreplace(&j.stage, &prev)?;
    }
    fsops::remove_tree(&j.shipped)?;
    let mut files = j.files.join("\n");
    files.push('\n');
    state::write_atomic(&rel.files_path()?, files.as_bytes())?;
    state::remove_durable(&rel.journal_path()?)
}

/// Puts the old install back from whatever state the journal describes.
fn undo(rel: &Release, j: &Journal) -> Result<()> {
    if matches!(j.phase, Phase::Swapping | Phase::Started) {
        let _ = service::control(&rel.root, &rel.spec.stop, &rel.spec.services);
        // Nothing moves before the swap: before it, the moves' paths
        // name other trees and must not be touched.
        let swapped = std::fs::metadata(&j.target).at(&j.target)?.ino() != j.old_ino;
        if swapped {
            for (a, b) in j.moves.iter().rev() {
                if fsops::exists(b) && !fsops::exists(a) {
                    fsops::rename_noreplace(b, a)?;
                }
            }
            fsops::exchange(&j.target, &j.stage)?;
        }
        if let Ok(saved) = std::fs::read(&j.config_backup) {
            if std::fs::read(&j.config_path).ok().as_deref() != Some(&saved[..]) {
                replace_keeping(&j.config_path, &saved)?;
            }
        }
    }
    if std::fs::metadata(&j.target).map(|m| m.ino()).ok() == Some(j.old_ino) {
        fsops::remove_tree(&j.stage)?;
    }
    fsops::remove_tree(&j.shipped)?;
    if j.phase != Phase::Staging {
        service::control(&rel.root, &rel.spec.start, &rel.spec.services)?;
    }
    state::remove_durable(&rel.journal_path()?)
}

/// What `recover` did: nothing, rolled back, or finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recovered {
    Nothing,
    RolledBack,
    Finished,
}

fn recover_locked(rel: &Release) -> Result<Recovered> {
    let jpath = rel.journal_path()?;
    let Some(j) = load(&jpath)? else {
        return Ok(Recovered::Nothing);
    };
    if j.phase == Phase::Started && healthy(rel, &j).is_ok() {
        let mut j = j;
        j.phase = Phase::Committing;
        save(&jpath, &j)?;
    }
    let Some(j) = load(&jpath)? else {
        return Ok(Recovered::Nothing);
    };
    if j.phase == Phase::Committing {
        commit(rel, &j)?;
        return Ok(Recovered::Finished);
    }
    undo(rel, &j)?;
    Ok(Recovered::RolledBack)
}

/// Finishes or undoes an interrupted run; `Nothing` (and nothing written)
/// when there is none.
pub fn recover(rel: &Release) -> Result<Recovered> {
    // The fast path: no state directory, no journal, nothing to do.
    match upkeep_core::state::existing_state_dir(&rel.root, "upgrade")? {
        None => return Ok(Recovered::Nothing),
        Some(d) if !d.join(format!("{}.journal", rel.product)).exists() => {
            return Ok(Recovered::Nothing)
        }
        Some(_) => {}
    }
    let _lock = state::Lock::acquire(&rel.root, Duration::from_secs(10))?;
    recover_locked(rel)
}
