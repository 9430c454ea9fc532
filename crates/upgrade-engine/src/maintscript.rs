//! What `upkeep-maintscript` does for each maintainer-script step of a
//! product's own package (`upkeep-maintscript PRODUCT -- "$@"`), driven by
//! the manifest: the downgrade policy, a preflight, a verified backup of
//! the preserved paths, their restore, ownership and file capabilities,
//! leases made moot, and the guard's record.
//!
//! Every step may run again after a failure (dpkg re-runs a postinst on
//! `--configure -a`): the pending upgrade is one small file in
//! `/var/lib/upkeep/maintscript/PRODUCT.json`, written once the backup is
//! verified and removed once the postinst (or the rollback) is done.

use crate::apply::verify_backup;
use crate::fsops;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::time::Duration;
use upkeep_engine::maintscript::{effective, MaintscriptSpec};
use upkeep_engine::plugin::{self, Plugin};
use upkeep_engine::{detect, guard, lease};
use upkeep_pkg::maintscript::Step;
use upkeep_sys::fault::point;
use upkeep_sys::journal::Journal;
use upkeep_sys::safe::Kind as SKind;
use upkeep_sys::{state, users, Error, Result, SysRoot};

/// Where the pending upgrades are kept, below upkeep's state directory.
pub const PENDING_DIR: &str = "maintscript";

/// An upgrade between its preinst and its postinst (or rollback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub old: Option<String>,
    pub new: Option<String>,
    /// The verified backup of the preserved paths (none when nothing is preserved).
    pub backup: Option<PathBuf>,
}

/// What was done, one line each, for the package manager's output.
#[derive(Debug, Default)]
pub struct Outcome {
    pub done: Vec<String>,
    pub warnings: Vec<String>,
}

/// The package manager running the script: its database says what is
/// installed, and its version syntax and order apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Manager {
    #[default]
    Dpkg,
    Rpm,
}

impl Manager {
    fn check(self, v: &str) -> std::result::Result<(), &'static str> {
        match self {
            Manager::Dpkg => upkeep_pkg::version::check_deb(v),
            Manager::Rpm => upkeep_pkg::rpm::check_evr(v),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Manager::Dpkg => "Debian",
            Manager::Rpm => "rpm",
        }
    }

    fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        match self {
            Manager::Dpkg => upkeep_pkg::version::compare_deb(a, b),
            Manager::Rpm => Some(upkeep_pkg::rpm::compare_evr(a, b)),
        }
    }
}

/// The context of one call: the product's manifest and the root.
pub struct Ctx<'a> {
    pub root: &'a SysRoot,
    pub plugin: &'a Plugin,
    pub manager: Manager,
    pub spec: Option<MaintscriptSpec>,
    /// The package whose script runs (`$DPKG_MAINTSCRIPT_PACKAGE`), for the
    /// installed version when the script is not told it.
    pub package: Option<String>,
    /// The version being replaced, when the caller knows it (rpm `%pre`
    /// has no versions; `--old-version`).
    pub old_version: Option<String>,
    pub new_version: Option<String>,
}

/// Loads the product's manifest; an unknown product is a usage error.
pub fn find_plugin(root: &SysRoot, product: &str) -> Result<Plugin> {
    let plugins = plugin::load(root)?;
    let names: Vec<String> = plugins.iter().map(|p| p.name().to_string()).collect();
    plugins
        .into_iter()
        .find(|p| p.name() == product)
        .ok_or_else(|| {
            Error::Usage(format!(
                "unknown product '{product}' (known: {})",
                names.join(", ")
            ))
        })
}

impl<'a> Ctx<'a> {
    pub fn new(root: &'a SysRoot, plugin: &'a Plugin) -> Self {
        Ctx {
            root,
            plugin,
            manager: Manager::Dpkg,
            spec: effective(&plugin.manifest),
            package: None,
            old_version: None,
            new_version: None,
        }
    }

    fn product(&self) -> &str {
        self.plugin.name()
    }

    fn pending_path(&self) -> PathBuf {
        self.root
            .path(state::STATE_DIR)
            .join(PENDING_DIR)
            .join(format!("{}.json", self.product()))
    }

    pub fn pending(&self) -> Result<Option<Pending>> {
        let p = self.pending_path();
        let Some(bytes) = fsops::read(self.root, &p)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::bad_input(&p, None, e.to_string()))
    }

    fn set_pending(&self, p: &Pending) -> Result<()> {
        let dir = state::private_dir(self.root, PENDING_DIR)?;
        let data = serde_json::to_vec_pretty(p).map_err(|e| Error::Failed(e.to_string()))?;
        state::write_private(&dir, &format!("{}.json", self.product()), &data)
    }

    fn clear_pending(&self) -> Result<()> {
        let p = self.pending_path();
        if fsops::exists(self.root, &p) {
            fsops::remove_durable(self.root, &p)?;
        }
        Ok(())
    }

    /// The version being replaced: as the script was told, else as the
    /// caller said (`--old-version`), else the installed one.
    fn replaced_version(&self, told: &Option<String>) -> Result<Option<String>> {
        match told.clone().or_else(|| self.old_version.clone()) {
            Some(v) => Ok(Some(v)),
            None => self.installed_package_version(),
        }
    }

    fn package_names(&self) -> Vec<String> {
        match &self.package {
            Some(p) => vec![p.clone()],
            None => self.plugin.manifest.packages.clone(),
        }
    }

    /// The installed version of the package running the script, from the
    /// package database (dpkg's status, or rpm's database: rpm's `$1` is
    /// a count, never the old version).
    fn installed_package_version(&self) -> Result<Option<String>> {
        if self.manager == Manager::Rpm {
            return self.installed_rpm_version();
        }
        let Some(db) = upkeep_pkg::dpkg::Dpkg::open(self.root)? else {
            return Ok(None);
        };
        for n in self.package_names() {
            if let Some(p) = db.package(&n)? {
                if p.has_files() {
                    return Ok(Some(p.version));
                }
            }
        }
        Ok(None)
    }

    /// `[EPOCH:]VERSION-RELEASE` of the package in the root's rpm database
    /// (asked through rpm itself, with `--root`).
    fn installed_rpm_version(&self) -> Result<Option<String>> {
        let Some(db) = upkeep_pkg::rpm::Rpm::open(self.root) else {
            return Ok(None);
        };
        for n in self.package_names() {
            if let Some(p) = db.package(&n)? {
                return Ok(Some(p.evr));
            }
        }
        Ok(None)
    }
}

/// Runs one step. `script` names the script for messages.
pub fn run(ctx: &Ctx<'_>, step: &Step, script: &str) -> Result<Outcome> {
    let mut out = Outcome::default();
    match step {
        Step::PreUpgrade { old, new } => {
            let old = ctx.replaced_version(old)?;
            let new = new.clone().or_else(|| ctx.new_version.clone());
            if old.is_none() && ctx.manager == Manager::Rpm {
                out.warnings.push(format!(
                    "{script}: the version being replaced could not be read from the rpm database (no rpm in the root, or none of {} installed): the downgrade policy was not applied; give --old-version",
                    ctx.package_names().join(", ")
                ));
            }
            policy(ctx, old.as_deref(), new.as_deref(), script, &mut out)?;
            preflight(ctx)?;
            pre_upgrade(ctx, old, new, &mut out)?;
            close_moot_leases(ctx, &mut out);
        }
        Step::PreInstall { .. } => {
            preflight(ctx)?;
            out.done.push("preflight passed".into());
        }
        Step::PreRemoveForUpgrade { new } => {
            let new = new.clone().or_else(|| ctx.new_version.clone());
            let old = ctx.replaced_version(&None)?;
            policy(ctx, old.as_deref(), new.as_deref(), script, &mut out)?;
        }
        Step::Configure { .. } => {
            configure(ctx, &mut out)?;
        }
        Step::AbortUpgrade => rollback(ctx, &mut out)?,
        Step::AbortInstall => {
            ctx.clear_pending()?;
            out.done
                .push("nothing to roll back (a first install)".into());
        }
        Step::Remove
        | Step::Purge
        | Step::PostUpgradeOld
        | Step::TransactionDone
        | Step::Other(_) => {}
    }
    Ok(out)
}

/// The downgrade policy: the manifest's `[upgrade] downgrade`, unless
/// upkeep.toml says otherwise for the product.
fn policy(
    ctx: &Ctx<'_>,
    old: Option<&str>,
    new: Option<&str>,
    script: &str,
    out: &mut Outcome,
) -> Result<()> {
    let (Some(old), Some(new)) = (old, new) else {
        return Ok(());
    };
    for (what, v) in [("the installed", old), ("the new", new)] {
        ctx.manager.check(v).map_err(|why| {
            Error::bad_input(
                script,
                None,
                format!("{what} version {v:?} is not a valid {} version ({why}); nothing was changed: whether this is a downgrade cannot be told", ctx.manager.name()),
            )
        })?;
    }
    if ctx.manager.compare(new, old) != Some(Ordering::Less) {
        return Ok(());
    }
    let product = ctx.product();
    match guard::Config::load(ctx.root)?.on_downgrade(ctx.plugin) {
        guard::Policy::Block => Err(Error::Refused(format!(
            "{product}: the downgrade from {old} to {new} is refused by policy ({script}; the manifest's [upgrade] downgrade = \"block\"); {old} stays installed and nothing was changed. To allow it, set on_downgrade = \"warn\" under [product.{product}] in {}",
            guard::CONFIG
        ))),
        guard::Policy::Warn => {
            out.warnings
                .push(format!("downgrading {product} from {old} to {new}"));
            Ok(())
        }
    }
}

/// Nothing half-done by upkeep-upgrade, and the install directory (when
/// there) a directory, not a link.
fn preflight(ctx: &Ctx<'_>) -> Result<()> {
    if let Some(j) = Journal::existing(ctx.root, crate::apply::JOURNAL)? {
        if !j.is_empty()? {
            return Err(Error::Busy(format!(
                "an interrupted upkeep-upgrade is recorded in {}: run `upkeep-upgrade recover` first",
                j.shown().display()
            )));
        }
    }
    if let Some(spec) = &ctx.spec {
        let dir = ctx.root.path(&spec.dir);
        if fsops::exists(ctx.root, &dir) && !fsops::is_dir(ctx.root, &dir) {
            return Err(Error::Failed(format!(
                "{}: not a directory (a link or a file); refusing to go on",
                spec.dir
            )));
        }
    }
    Ok(())
}

fn pre_upgrade(
    ctx: &Ctx<'_>,
    old: Option<String>,
    new: Option<String>,
    out: &mut Outcome,
) -> Result<()> {
    // Run again after a failure: the backup made then is kept if it still
    // verifies.
    if let Some(p) = ctx.pending()? {
        if p.old == old && p.new == new {
            match &p.backup {
                Some(b) if verify_backup(ctx.root, b).is_ok() => {
                    out.done
                        .push(format!("backup {} already made and verified", b.display()));
                    return Ok(());
                }
                None => return Ok(()),
                Some(_) => {}
            }
        }
    }
    let backup = match &ctx.spec {
        Some(spec) => backup(ctx, spec, old.as_deref().unwrap_or("unknown"))?,
        None => None,
    };
    if let Some(b) = &backup {
        out.done
            .push(format!("backed up and verified: {}", b.display()));
    }
    ctx.set_pending(&Pending { old, new, backup })
}

fn backup(ctx: &Ctx<'_>, spec: &MaintscriptSpec, from: &str) -> Result<Option<PathBuf>> {
    let root = ctx.root;
    let tree = root.path(&spec.dir);
    let present: Vec<&String> = spec
        .preserve
        .iter()
        .filter(|p| fsops::exists(root, &tree.join(p)))
        .collect();
    if present.is_empty() {
        return Ok(None);
    }
    let base = backup_base(ctx, spec);
    fsops::create_dir_all(root, &base, 0o700)?;
    let stamp = state::utc_stamp(state::now());
    let safe_from: String = from
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".+~-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = (0..100)
        .map(|i| {
            base.join(if i == 0 {
                format!("{stamp}-{safe_from}")
            } else {
                format!("{stamp}-{safe_from}-{i}")
            })
        })
        .find(|p| !fsops::exists(root, p))
        .ok_or_else(|| Error::Failed("too many backups this second".into()))?;
    fsops::create_private_dir(root, &dir)?;
    let res = (|| {
        let mut sums = fsops::Sums::new();
        let files = dir.join("files");
        fsops::create_private_dir(root, &files)?;
        for p in &present {
            if let Some(parent) = Path::new(p.as_str()).parent() {
                if !parent.as_os_str().is_empty() {
                    fsops::create_dir_all(root, &files.join(parent), 0o700)?;
                }
            }
            fsops::copy_tree(
                root,
                &tree.join(p),
                &files.join(p),
                &format!("files/{p}"),
                &mut sums,
            )?;
        }
        point("maintscript-backup-copied");
        sums.write(root, &dir)?;
        let meta = serde_json::json!({
            "product": ctx.product(),
            "version": from,
            "created": state::now(),
            "by": "upkeep-maintscript",
            "preserved": present,
        });
        fsops::write_private(root, &dir.join("backup.json"), meta.to_string().as_bytes())?;
        verify_backup(root, &dir)
    })();
    if let Err(e) = res {
        let _ = fsops::remove_tree(root, &dir);
        return Err(e);
    }
    retain(ctx, spec, &base)?;
    Ok(Some(dir))
}

fn backup_base(ctx: &Ctx<'_>, spec: &MaintscriptSpec) -> PathBuf {
    ctx.root
        .path(
            spec.backup_dir
                .clone()
                .unwrap_or_else(|| "/var/lib/upkeep/backups".into()),
        )
        .join(ctx.product())
}

/// Keeps the newest `keep` of the backups upkeep-maintscript made (and
/// the pending one, whatever its age).
fn retain(ctx: &Ctx<'_>, spec: &MaintscriptSpec, base: &Path) -> Result<()> {
    let keep = spec.keep.unwrap_or(3).max(1);
    let pending = ctx.pending()?.and_then(|p| p.backup);
    let mut ours: Vec<PathBuf> = fsops::entries(ctx.root, base)?
        .into_iter()
        .filter(|(_, k)| *k == SKind::Dir)
        .map(|(n, _)| base.join(n))
        .filter(|p| {
            fsops::read(ctx.root, &p.join("backup.json"))
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|v| v["by"] == "upkeep-maintscript")
        })
        .collect();
    ours.sort();
    while ours.len() > keep {
        let old = ours.remove(0);
        if Some(&old) != pending.as_ref() {
            fsops::remove_tree(ctx.root, &old)?;
        }
    }
    Ok(())
}

/// Puts back, from the backup (after checking it against its SHA256SUMS),
/// what the package took away: a preserved file or directory that is gone,
/// and a file the package replaced with its own (the live one is exactly
/// what the package database says it shipped). Anything else stays as it
/// is now: an upload, a new plugin or a config edit made since the backup
/// is newer than the backup, and is not the package's doing. Each file is
/// copied beside, then moved in by one rename.
fn restore(ctx: &Ctx<'_>, spec: &MaintscriptSpec, backup: &Path, out: &mut Outcome) -> Result<()> {
    verify_backup(ctx.root, backup)?;
    for p in &spec.preserve {
        let from = backup.join("files").join(p);
        if !fsops::exists(ctx.root, &from) {
            continue;
        }
        let inside = Path::new(&spec.dir).join(p);
        let mut n = 0;
        merge_back(ctx, &from, &inside, p, &mut n)?;
        if n > 0 {
            out.done.push(format!(
                "restored {p} from {} ({n} put back; newer files kept)",
                backup.display()
            ));
        }
    }
    Ok(())
}

/// `from` (in the backup) onto `inside` (a path inside the system).
fn merge_back(ctx: &Ctx<'_>, from: &Path, inside: &Path, rel: &str, n: &mut usize) -> Result<()> {
    let root = ctx.root;
    let to = root.path(inside);
    let Some(live) = fsops::lstat(root, &to)? else {
        put_back(root, from, &to, rel)?;
        *n += 1;
        return Ok(());
    };
    let Some(saved) = fsops::lstat(root, from)? else {
        return Ok(());
    };
    match (SKind::of(&saved), SKind::of(&live)) {
        (SKind::Dir, SKind::Dir) => {
            for (name, _) in fsops::entries(root, from)? {
                let r = format!("{rel}/{}", name.to_string_lossy());
                merge_back(ctx, &from.join(&name), &inside.join(&name), &r, n)?;
            }
        }
        (SKind::File, SKind::File)
            if !fsops::same_content(root, from, &to)? && shipped_as_is(ctx, inside, &to)? =>
        {
            put_back(root, from, &to, rel)?;
            *n += 1;
        }
        _ => {}
    }
    Ok(())
}

/// Copies `from` beside `to`, then renames it over `to` (or into place).
fn put_back(root: &SysRoot, from: &Path, to: &Path, rel: &str) -> Result<()> {
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = to.with_file_name(format!(".{name}.upkeep-restore"));
    if let Some(parent) = to.parent() {
        fsops::create_dir_all(root, parent, 0o755)?;
    }
    fsops::remove_tree(root, &tmp)?;
    fsops::copy_tree(root, from, &tmp, rel, &mut fsops::Sums::new())?;
    if fsops::exists(root, to) {
        fsops::exchange(root, &tmp, to)?;
        fsops::remove_tree(root, &tmp)
    } else {
        fsops::rename_noreplace(root, &tmp, to)
    }
}

/// Whether the file at `inside` is exactly what the running package
/// shipped there (dpkg's md5sums; rpm's own verify for a path it owns).
fn shipped_as_is(ctx: &Ctx<'_>, inside: &Path, at: &Path) -> Result<bool> {
    match ctx.manager {
        Manager::Dpkg => {
            let Some(db) = upkeep_pkg::dpkg::Dpkg::open(ctx.root)? else {
                return Ok(false);
            };
            for n in ctx.package_names() {
                if let Some(want) = db.recorded_md5(&n, inside)? {
                    let (f, _) = fsops::open_regular(ctx.root, at)?;
                    return Ok(upkeep_pkg::dpkg::md5_file(&f, at)? == want);
                }
            }
            Ok(false)
        }
        Manager::Rpm => {
            let Some(db) = upkeep_pkg::rpm::Rpm::open(ctx.root) else {
                return Ok(false);
            };
            let Some(owner) = db.owner(inside)? else {
                return Ok(false);
            };
            Ok(
                ctx.package_names().contains(&owner.name)
                    && !db.is_modified(&owner.name, inside)?,
            )
        }
    }
}

/// Ownership, then modes, then capabilities (a chown clears them), each
/// capability read back. `strict`: a declared capability on a missing
/// file is an error (after a configure the package's files are there).
fn reapply(ctx: &Ctx<'_>, spec: &MaintscriptSpec, strict: bool, out: &mut Outcome) -> Result<()> {
    let root = ctx.root;
    let tree = root.path(&spec.dir);
    if !fsops::is_dir(root, &tree) {
        return Ok(());
    }
    if let Some(o) = &spec.owner {
        let acc = users::Accounts::load(root)?;
        let (uid, gid) = users::resolve_owner(&acc, o)?;
        chown_tree(root, &tree, uid, gid.unwrap_or(0))?;
        out.done.push(format!("owner {o} on {}", spec.dir));
    }
    for m in &spec.modes {
        let p = tree.join(&m.path);
        if let Ok(mode) = u32::from_str_radix(&m.mode, 8) {
            if fsops::exists(root, &p) {
                fsops::chmod(root, &p, mode)?;
            }
        }
    }
    for c in &spec.capabilities {
        let p = tree.join(&c.path);
        if !fsops::is_file(root, &p) {
            if strict {
                return Err(Error::Failed(format!(
                    "{}/{}: the manifest gives it {}, but it is not a file",
                    spec.dir, c.path, c.caps
                )));
            }
            continue;
        }
        fsops::set_caps(root, &p, &c.caps)?;
        out.done
            .push(format!("capability {} on {}/{}", c.caps, spec.dir, c.path));
    }
    Ok(())
}

fn chown_tree(root: &SysRoot, p: &Path, uid: u32, gid: u32) -> Result<()> {
    fsops::chown_nofollow(root, p, uid, gid)?;
    if fsops::is_dir(root, p) {
        for (n, k) in fsops::entries(root, p)? {
            let c = p.join(n);
            if k == SKind::Dir {
                chown_tree(root, &c, uid, gid)?;
            } else {
                fsops::chown_nofollow(root, &c, uid, gid)?;
            }
        }
    }
    Ok(())
}

fn close_moot_leases(ctx: &Ctx<'_>, out: &mut Outcome) {
    match lease::recover(ctx.root, Duration::from_secs(30)) {
        Ok(done) => {
            for o in done {
                out.done.push(format!(
                    "lease {}: {:?}{}",
                    o.id,
                    o.result,
                    o.message.map(|m| format!(" ({m})")).unwrap_or_default()
                ));
            }
        }
        Err(e) => out.warnings.push(format!("leases: {e}")),
    }
}

fn record_for_guard(ctx: &Ctx<'_>, out: &mut Outcome) {
    let opts = detect::Options { allow_exec: false };
    match guard::observe(ctx.root, &opts, true) {
        Ok(o) => out.warnings.extend(o.warnings),
        Err(e) => out
            .warnings
            .push(format!("could not record the new state for the guard: {e}")),
    }
}

/// postinst `configure`: the preserved paths back from the preinst's
/// backup, then ownership and capabilities, leases, the guard's record.
fn configure(ctx: &Ctx<'_>, out: &mut Outcome) -> Result<()> {
    let pending = ctx.pending()?;
    if let Some(spec) = &ctx.spec {
        if let Some(b) = pending.as_ref().and_then(|p| p.backup.as_ref()) {
            restore(ctx, spec, b, out)?;
        }
        point("maintscript-restored");
        reapply(ctx, spec, true, out)?;
    }
    close_moot_leases(ctx, out);
    record_for_guard(ctx, out);
    ctx.clear_pending()
}

/// `abort-upgrade`: the preserved paths back from the backup (dpkg puts
/// the old package's files back itself), ownership and capabilities again.
fn rollback(ctx: &Ctx<'_>, out: &mut Outcome) -> Result<()> {
    let pending = ctx.pending()?;
    if let Some(spec) = &ctx.spec {
        if let Some(b) = pending.as_ref().and_then(|p| p.backup.as_ref()) {
            restore(ctx, spec, b, out)?;
            out.done.push("rolled back".into());
        }
        reapply(ctx, spec, false, out)?;
    }
    ctx.clear_pending()
}
