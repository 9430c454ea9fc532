//! Ownership leases: lend a file (and its directory) to a user for an
//! in-place upgrade, and give back exactly what was recorded.
//!
//! A lease is one record of the shared write-ahead journal
//! (`ROOT/var/lib/upkeep/leases/`), written durably before anything
//! changes. Its phase says how far it got: doing (`granting`: changes may
//! be half applied, recover rolls back), done (`granted`, in force until
//! `expires`), undoing (`restoring`: recover finishes the restore).
//! Restoring is idempotent, so running it again after any crash converges.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;
use upkeep_sys::error::{Error, Result};
use upkeep_sys::fault;
use upkeep_sys::fsutil::hex;
use upkeep_sys::journal::{Journal, Phase, Record};
use upkeep_sys::root::SysRoot;
use upkeep_sys::safe::{self as safefs, Entry};
use upkeep_sys::state::{self, Lock};
use upkeep_sys::users::{self, Accounts};

pub const LEASE_DIR: &str = "leases";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseState {
    Granting,
    Granted,
    Restoring,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holder {
    /// As given: `USER` or `USER:GROUP`.
    pub spec: String,
    pub uid: u32,
    /// Only when a group was given; otherwise the group is left as it was.
    pub gid: Option<u32>,
}

/// What a path looked like before the lease: what restore puts back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseEntry {
    pub path: String,
    pub kind: EntryKind,
    pub uid: u32,
    pub gid: u32,
    #[serde(with = "upkeep_sys::fsutil::octal")]
    pub mode: u32,
    pub dev: u64,
    pub ino: u64,
    /// `security.capability`, hex.
    pub capability: Option<String>,
    pub sha256: Option<String>,
}

impl LeaseEntry {
    /// The record of what `st` says, before anything changes.
    fn of(
        path: &str,
        kind: EntryKind,
        st: &nix::sys::stat::FileStat,
        capability: Option<String>,
        sha256: Option<String>,
    ) -> Self {
        LeaseEntry {
            path: path.to_string(),
            kind,
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
            dev: st.st_dev,
            ino: st.st_ino,
            capability,
            sha256,
        }
    }
}

/// What the journal keeps for a lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseBody {
    pub expires: u64,
    pub to: Holder,
    pub product: Option<String>,
    /// Directories first: restore takes the directory back before it
    /// touches the files in it, so nothing can be swapped in meanwhile.
    pub entries: Vec<LeaseEntry>,
}

type LeaseRecord = Record<LeaseBody>;

/// A lease as reported (`status`, `grant --format json`).
#[derive(Debug, Clone, Serialize)]
pub struct Lease {
    pub id: String,
    pub state: LeaseState,
    pub created: u64,
    pub expires: u64,
    pub to: Holder,
    pub product: Option<String>,
    pub entries: Vec<LeaseEntry>,
}

impl Lease {
    fn of(rec: &LeaseRecord) -> Lease {
        Lease {
            id: rec.id.clone(),
            state: match rec.phase {
                Phase::Doing => LeaseState::Granting,
                Phase::Done => LeaseState::Granted,
                Phase::Undoing => LeaseState::Restoring,
            },
            created: rec.created,
            expires: rec.body.expires,
            to: rec.body.to.clone(),
            product: rec.body.product.clone(),
            entries: rec.body.entries.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GrantRequest {
    pub paths: Vec<String>,
    pub to: String,
    pub dir: bool,
    pub expires: Duration,
    pub product: Option<String>,
    pub dry_run: bool,
    pub wait: Duration,
}

#[derive(Debug, Serialize)]
pub struct GrantReport {
    pub lease: Option<Lease>,
    /// Paths that already had an open lease to the same holder.
    pub already_leased: Vec<String>,
    pub dry_run: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct EntryOutcome {
    pub path: String,
    pub kind: EntryKind,
    /// The content differs from when the lease was granted.
    pub content_changed: bool,
    /// A different file (inode) stands at the path now.
    pub replaced: bool,
}

/// How a lease ended up after restore or recover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseResult {
    /// Everything recorded was put back; the lease is closed.
    Restored,
    /// Nothing was left to put back (a package upgrade did it); closed.
    Closed,
    /// Refused or incomplete: the lease stays open.
    Kept,
}

impl std::fmt::Display for LeaseResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LeaseResult::Restored => "restored",
            LeaseResult::Closed => "closed",
            LeaseResult::Kept => "kept",
        })
    }
}

#[derive(Debug, Serialize)]
pub struct LeaseOutcome {
    pub id: String,
    pub result: LeaseResult,
    pub entries: Vec<EntryOutcome>,
    pub message: Option<String>,
}

impl LeaseOutcome {
    pub fn content_changed(&self) -> bool {
        self.entries.iter().any(|e| e.content_changed)
    }
}

/// Every lease, oldest first (journal records of the lease journal).
pub fn load_all(journal: &Journal) -> Result<Vec<LeaseRecord>> {
    journal.load_all()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn refused(path: &str, why: impl std::fmt::Display) -> Error {
    Error::Refused(format!("{path}: {why}"))
}

/// An opened entry ready to change, with its record.
struct Planned {
    file: File,
    entry: LeaseEntry,
}

fn parent_dir_of(p: &str) -> String {
    match Path::new(p).parent() {
        Some(d) if d != Path::new("") => d.display().to_string(),
        _ => "/".to_string(),
    }
}

/// Checks the directories above a path: none may be writable by anyone
/// but root, except `skip` (the directory being lent itself).
fn check_ancestors(path: &str, parent: &safefs::Parent, skip: Option<&Path>) -> Result<()> {
    for a in &parent.ancestors {
        if Some(a.path.as_path()) == skip {
            continue;
        }
        if safefs::writable_by_non_root(&a.stat) {
            return Err(refused(
                path,
                format!(
                    "{} is writable by someone other than root (uid {}, mode {:04o}): refusing to act below it",
                    a.path.display(),
                    a.stat.st_uid,
                    a.stat.st_mode & 0o7777
                ),
            ));
        }
    }
    Ok(())
}

fn plan_file(root: &SysRoot, path: &str, dir_lent: bool) -> Result<Planned> {
    let parent = safefs::open_parent(root, Path::new(path))?;
    let dir = PathBuf::from(parent_dir_of(path));
    check_ancestors(path, &parent, dir_lent.then_some(dir.as_path()))?;
    let (file, st) = match safefs::open_entry(&parent.fd, &parent.name)? {
        Entry::File(f, st) => (f, st),
        Entry::Symlink => return Err(refused(path, "is a symlink")),
        Entry::Missing => return Err(Error::Failed(format!("{path}: does not exist"))),
        Entry::Dir(..) => {
            return Err(refused(
                path,
                "is a directory (lend the file; --dir adds its directory)",
            ))
        }
        Entry::Other => return Err(refused(path, "is not a regular file")),
    };
    if st.st_nlink > 1 {
        return Err(refused(
            path,
            format!(
                "has {} hard links: one of them could be anything",
                st.st_nlink
            ),
        ));
    }
    if st.st_mode & 0o6000 != 0 {
        return Err(refused(path, "is setuid or setgid"));
    }
    let capability = safefs::get_capability(&file)?.map(|c| hex(&c));
    let sha256 = Some(safefs::sha256_file(&file)?);
    Ok(Planned {
        entry: LeaseEntry::of(path, EntryKind::File, &st, capability, sha256),
        file,
    })
}

fn plan_dir(root: &SysRoot, path: &str) -> Result<Planned> {
    let parent = safefs::open_parent(root, Path::new(path))?;
    check_ancestors(path, &parent, None)?;
    let (file, st) = match safefs::open_entry(&parent.fd, &parent.name)? {
        Entry::Dir(f, st) => (f, st),
        Entry::Symlink => return Err(refused(path, "is a symlink")),
        _ => return Err(refused(path, "is not a directory")),
    };
    if st.st_mode & 0o6000 != 0 {
        return Err(refused(path, "is setuid or setgid"));
    }
    Ok(Planned {
        entry: LeaseEntry::of(path, EntryKind::Dir, &st, None, None),
        file,
    })
}

fn normalize(path: &str) -> Result<String> {
    if !path.starts_with('/') {
        return Err(Error::Usage(format!(
            "{path}: give the path as seen inside the system, absolute"
        )));
    }
    Ok(upkeep_sys::root::normalize_inside(Path::new(path))
        .display()
        .to_string())
}

pub fn grant(root: &SysRoot, req: &GrantRequest) -> Result<GrantReport> {
    let (uid, gid) = users::resolve_owner(&Accounts::load(root)?, &req.to)?;
    let holder = Holder {
        spec: req.to.clone(),
        uid,
        gid,
    };
    let mut paths = Vec::new();
    for p in &req.paths {
        let p = normalize(p)?;
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    if paths.is_empty() {
        return Err(Error::Usage(
            "nothing to lend: give PATH or --product".into(),
        ));
    }

    let _lock = Lock::acquire(root, req.wait)?;
    let journal = Journal::open(root, LEASE_DIR)?;
    let open: Vec<Lease> = load_all(&journal)?.iter().map(Lease::of).collect();
    let mut already = Vec::new();
    let mut todo = Vec::new();
    for p in paths {
        match open.iter().find(|l| l.entries.iter().any(|e| e.path == p)) {
            Some(l) if l.to == holder && l.state == LeaseState::Granted => already.push(p),
            Some(l) => {
                return Err(refused(
                    &p,
                    format!("already in lease {} to {} ({:?})", l.id, l.to.spec, l.state),
                ));
            }
            None => todo.push(p),
        }
    }
    let mut report = GrantReport {
        lease: None,
        already_leased: already,
        dry_run: req.dry_run,
        warnings: statoverride_warnings(root, &todo),
    };
    if todo.is_empty() {
        return Ok(report);
    }

    // Open and check everything before anything changes.
    let mut planned: Vec<Planned> = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    for p in &todo {
        if req.dir {
            let d = parent_dir_of(p);
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    for d in &dirs {
        planned.push(plan_dir(root, d)?);
    }
    for p in &todo {
        planned.push(plan_file(root, p, req.dir)?);
    }
    report.warnings.extend(statoverride_warnings(root, &dirs));

    let mut rec = Record::new(LeaseBody {
        expires: 0,
        to: holder.clone(),
        product: req.product.clone(),
        entries: planned.iter().map(|p| p.entry.clone()).collect(),
    });
    rec.body.expires = rec.created.saturating_add(req.expires.as_secs());
    if req.dry_run {
        report.lease = Some(Lease::of(&rec));
        return Ok(report);
    }
    // Files first, the directory last: the holder can replace nothing
    // before every file is recorded and lent. Step k lends entry n-1-k;
    // undoing runs newest first, so the directory is taken back first.
    let n = planned.len();
    let lend = |body: &LeaseBody, k: usize| {
        let (i, p) = (n - 1 - k, &planned[n - 1 - k]);
        let gid = body.to.gid.unwrap_or(p.entry.gid);
        safefs::fchown(&p.file, body.to.uid, gid)?;
        fault::point(&format!("grant:entry{i}:chown"));
        safefs::fchmod(&p.file, p.entry.mode | 0o200)?;
        fault::point(&format!("grant:entry{i}:chmod"));
        Ok(())
    };
    let give_back = |body: &LeaseBody, k: usize| restore_entry(root, body, n - 1 - k).map(|_| ());
    journal.run(&mut rec, n, lend, give_back)?;
    fault::point("grant:committed");
    report.lease = Some(Lease::of(&rec));
    Ok(report)
}

/// `--product`: the paths, holder and directory flag the product's
/// manifest gives for the one install found. A product that declares no
/// lease is a usage error; one not installed is a plain failure.
pub fn from_manifest(
    root: &SysRoot,
    name: &str,
    paths: Vec<String>,
    to: Option<String>,
    dir: bool,
) -> Result<(Vec<String>, String, bool)> {
    let plugins = crate::plugin::load(root)?;
    let selected = crate::detect::select(&plugins, &[name.to_string()])?;
    if !selected
        .iter()
        .any(|p| p.manifest.installs.iter().any(|i| i.lease.is_some()))
    {
        return Err(Error::Usage(format!(
            "{name}: its manifest declares no lease; give PATH and --to instead"
        )));
    }
    let mut sys = crate::detect::System::open(root)?;
    let report = crate::detect::detect(&mut sys, &selected, &Default::default())?;
    let specs: Vec<_> = report
        .installs
        .iter()
        .filter_map(|i| i.lease.as_ref())
        .collect();
    let spec = match specs.as_slice() {
        [] => return Err(Error::Failed(format!("no install of {name} was found"))),
        [one] => *one,
        _ => {
            return Err(Error::Usage(format!(
                "several installs of {name} found: name the PATH to lend"
            )))
        }
    };
    let paths = if paths.is_empty() {
        spec.paths.clone()
    } else {
        paths
    };
    Ok((
        paths,
        to.unwrap_or_else(|| spec.to.clone()),
        dir || spec.dir,
    ))
}

/// dpkg re-applies `statoverride` entries on every upgrade of the package
/// that ships the path: worth knowing while a lease is open.
fn statoverride_warnings(root: &SysRoot, paths: &[String]) -> Vec<String> {
    let Ok(Some(text)) = upkeep_sys::safe::read_to_string(
        root,
        "/var/lib/dpkg/statoverride",
        upkeep_sys::safe::limit::CONFIG,
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [owner, group, mode, path] = fields[..] {
            if paths.iter().any(|p| p == path) {
                out.push(format!(
                    "{path} has a dpkg statoverride ({owner} {group} {mode}): dpkg re-applies it on every upgrade of its package"
                ));
            }
        }
    }
    out
}

/// What stands at an entry's path now, checked for restore.
fn reopen(
    root: &SysRoot,
    body: &LeaseBody,
    e: &LeaseEntry,
) -> std::result::Result<(File, u64, u32, u32, u32), String> {
    let parent = safefs::open_parent(root, Path::new(&e.path)).map_err(|err| err.to_string())?;
    // The lent directory itself may be owned by the holder; above it, only root.
    let lent_dir = body
        .entries
        .iter()
        .find(|d| d.kind == EntryKind::Dir && d.path == parent_dir_of(&e.path))
        .map(|d| PathBuf::from(&d.path));
    check_ancestors(&e.path, &parent, lent_dir.as_deref()).map_err(|err| err.to_string())?;
    let (f, st) = match (
        safefs::open_entry(&parent.fd, &parent.name).map_err(|err| err.to_string())?,
        e.kind,
    ) {
        (Entry::File(f, st), EntryKind::File) => (f, st),
        (Entry::Dir(f, st), EntryKind::Dir) => (f, st),
        (Entry::Symlink, _) => return Err(format!("{}: is a symlink now", e.path)),
        (Entry::Missing, _) => return Err(format!("{}: does not exist now", e.path)),
        _ => return Err(format!("{}: is not a {:?} now", e.path, e.kind)),
    };
    if e.kind == EntryKind::File && st.st_nlink > 1 {
        return Err(format!("{}: has {} hard links now", e.path, st.st_nlink));
    }
    Ok((f, st.st_ino, st.st_uid, st.st_gid, st.st_mode & 0o7777))
}

/// Puts entry `i` back as recorded; what changed during the lease.
fn restore_entry(root: &SysRoot, body: &LeaseBody, i: usize) -> Result<EntryOutcome> {
    let e = &body.entries[i];
    // Re-opened after the directory above was taken back.
    let (f, ino, uid, gid, mode) = reopen(root, body, e).map_err(Error::Failed)?;
    let content_changed = put_back(i, e, &f, (uid, gid, mode))
        .map_err(|err| Error::Failed(format!("{}: {err}", e.path)))?;
    Ok(EntryOutcome {
        path: e.path.clone(),
        kind: e.kind,
        content_changed,
        replaced: ino != e.ino,
    })
}

fn kept(rec: &LeaseRecord, entries: Vec<EntryOutcome>, message: String) -> LeaseOutcome {
    LeaseOutcome {
        id: rec.id.clone(),
        result: LeaseResult::Kept,
        entries,
        message: Some(message),
    }
}

/// Puts back everything a lease recorded and closes it. Nothing changes
/// (and the lease stays open) if any path is now a symlink, missing, or
/// not what it was; one path that cannot be put back does not stop the
/// others, and keeps the lease open (restoring).
fn restore_lease(root: &SysRoot, journal: &Journal, rec: &mut LeaseRecord) -> Result<LeaseOutcome> {
    for e in &rec.body.entries {
        if let Err(why) = reopen(root, &rec.body, e) {
            return Ok(kept(
                rec,
                Vec::new(),
                format!("{why}; nothing changed, the lease stays open"),
            ));
        }
    }
    // Every entry, whatever the grant reached: putting back an entry that
    // was never lent changes nothing.
    rec.done = rec.body.entries.len();
    rec.count = rec.done;
    rec.phase = Phase::Undoing;
    journal.write(rec)?;
    fault::point("restore:marked");
    let n = rec.body.entries.len();
    let mut outcomes = Vec::new();
    // The journal undoes newest step first: entry 0 (a directory) first.
    let undone = journal.undo(rec, |body, k| {
        outcomes.push(restore_entry(root, body, n - 1 - k)?);
        if k == 0 {
            fault::point("restore:before-close");
        }
        Ok(())
    });
    match undone {
        Ok(()) => Ok(LeaseOutcome {
            id: rec.id.clone(),
            result: LeaseResult::Restored,
            entries: outcomes,
            message: None,
        }),
        Err(e) => Ok(kept(
            rec,
            outcomes,
            format!("{e}; the lease stays open (state restoring)"),
        )),
    }
}

/// Owner first (a chown clears capabilities and setuid bits), then the
/// exact mode, then the capabilities the file had; each only if it differs
/// (an untouched file, even an immutable one, needs nothing). Returns
/// whether the content changed during the lease.
fn put_back(i: usize, e: &LeaseEntry, f: &File, now: (u32, u32, u32)) -> Result<bool> {
    let (uid, gid, mode) = now;
    let chowned = (uid, gid) != (e.uid, e.gid);
    if chowned {
        safefs::fchown(f, e.uid, e.gid)?;
    }
    fault::point(&format!("restore:entry{i}:chown"));
    if chowned || mode != e.mode {
        safefs::fchmod(f, e.mode)?;
    }
    fault::point(&format!("restore:entry{i}:chmod"));
    if let Some(cap) = &e.capability {
        let bytes = unhex(cap)
            .ok_or_else(|| Error::bad_input(Path::new(&e.path), None, "capability is not hex"))?;
        if safefs::get_capability(f)?.as_deref() != Some(bytes.as_slice()) {
            safefs::set_capability(f, &bytes)?;
        }
        fault::point(&format!("restore:entry{i}:capability"));
    }
    Ok(match &e.sha256 {
        Some(sum) => &safefs::sha256_file(f)? != sum,
        None => false,
    })
}

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub leases: Vec<LeaseOutcome>,
    /// Paths asked for that no open lease covers.
    pub not_leased: Vec<String>,
}

/// `paths` empty means every open lease.
pub fn restore(root: &SysRoot, paths: &[String], wait: Duration) -> Result<RestoreReport> {
    let wanted: Vec<String> = paths.iter().map(|p| normalize(p)).collect::<Result<_>>()?;
    let mut report = RestoreReport {
        leases: Vec::new(),
        not_leased: Vec::new(),
    };
    let Some(journal) = Journal::existing(root, LEASE_DIR)? else {
        report.not_leased = wanted;
        return Ok(report);
    };
    let _lock = Lock::acquire(root, wait)?;
    let leases = load_all(&journal)?;
    let covers = |l: &LeaseRecord, p: &String| l.body.entries.iter().any(|e| &e.path == p);
    for p in &wanted {
        if !leases.iter().any(|l| covers(l, p)) {
            report.not_leased.push(p.clone());
        }
    }
    for mut lease in leases {
        if wanted.is_empty() || wanted.iter().any(|p| covers(&lease, p)) {
            report
                .leases
                .push(restore_lease(root, &journal, &mut lease)?);
        }
    }
    Ok(report)
}

pub fn status(root: &SysRoot) -> Result<Vec<Lease>> {
    match Journal::existing(root, LEASE_DIR)? {
        Some(j) => Ok(load_all(&j)?.iter().map(Lease::of).collect()),
        None => Ok(Vec::new()),
    }
}

/// Finishes whatever a crash interrupted, restores expired leases, and
/// closes leases a package upgrade already made moot. With nothing to do
/// it reads one directory and returns.
pub fn recover(root: &SysRoot, wait: Duration) -> Result<Vec<LeaseOutcome>> {
    let Some(journal) = Journal::existing(root, LEASE_DIR)? else {
        return Ok(Vec::new());
    };
    if journal.is_empty()? {
        return Ok(Vec::new());
    }
    let _lock = Lock::acquire(root, wait)?;
    journal.clean_temps()?; // writes a crash cut short
    let now = state::now();
    let mut out = Vec::new();
    for mut lease in load_all(&journal)? {
        let due = match lease.phase {
            Phase::Doing | Phase::Undoing => true,
            Phase::Done => lease.body.expires <= now,
        };
        if due {
            out.push(restore_lease(root, &journal, &mut lease)?);
        } else if is_moot(root, &lease.body) {
            journal.remove(&lease.id)?;
            out.push(LeaseOutcome {
                id: lease.id.clone(),
                result: LeaseResult::Closed,
                entries: Vec::new(),
                message: Some(
                    "owner and mode are already back (a package upgrade restored them)".into(),
                ),
            });
        }
    }
    Ok(out)
}

/// Every path already has its recorded owner, group and mode again (an
/// Omnibus postinst re-roots its directories on upgrade).
fn is_moot(root: &SysRoot, body: &LeaseBody) -> bool {
    body.entries.iter().all(|e| match reopen(root, body, e) {
        Ok((_, _, uid, gid, mode)) => uid == e.uid && gid == e.gid && mode == e.mode,
        Err(_) => false,
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip() {
        let b = [0u8, 1, 0xfe, 0xff];
        assert_eq!(unhex(&hex(&b)).unwrap(), b);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }

    #[test]
    fn parent_dirs() {
        assert_eq!(
            parent_dir_of("/opt/gitlab/embedded/bin/mattermost"),
            "/opt/gitlab/embedded/bin"
        );
        assert_eq!(parent_dir_of("/x"), "/");
    }
}
