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
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
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

/// A grant without `--expires` ends after this long (`recover`, run by the
/// timer and the package hooks, then takes everything back).
pub const DEFAULT_EXPIRY: &str = "1h";

/// Bounded work on a lent directory: at most this many entries recorded,
/// files up to this size digested, and this many bytes digested in all.
pub const MAX_DIR_ENTRIES: usize = 10_000;
pub const DIGEST_FILE_MAX: u64 = 256 << 20;
pub const DIGEST_BUDGET: u64 = 1 << 30;

/// Where restore keeps the paths a holder changed (and what they held
/// before): nothing upkeep runs from there unless its content is back.
const TAINTED: &str = "lease-tainted.json";

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
    /// Birth time (statx, ns): with `ino`, tells a new inode that got the
    /// same number from the old one. `None`: not kept by the filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub btime: Option<i64>,
    /// `security.capability`, hex.
    pub capability: Option<String>,
    pub sha256: Option<String>,
    /// Every extended attribute (ACLs, capabilities, ...), hex values.
    #[serde(default)]
    pub xattrs: Option<BTreeMap<String, String>>,
}

/// One entry of a lent directory as it was at grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seen {
    pub name: String,
    pub kind: String,
    pub ino: u64,
    pub uid: u32,
    pub gid: u32,
    #[serde(with = "upkeep_sys::fsutil::octal")]
    pub mode: u32,
    pub size: u64,
    pub mtime: i64,
    pub ctime: i64,
    /// Birth time (statx, ns), where the filesystem keeps one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub btime: Option<i64>,
    /// Regular files within the digest bounds only.
    pub sha256: Option<String>,
    pub xattrs: BTreeMap<String, String>,
}

/// Whether two records of one name are different inodes: another inode
/// number, or the same number with another birth time (ext4 hands a freed
/// inode number out again at once; no system call sets a birth time).
fn other_inode(ino: u64, btime: Option<i64>, now_ino: u64, now_btime: Option<i64>) -> bool {
    ino != now_ino || matches!((btime, now_btime), (Some(a), Some(b)) if a != b)
}

impl Seen {
    /// Same inode, kind, owner, mode, size, times and attributes. The
    /// change time cannot be forged by the holder.
    fn same_as(&self, now: &Seen) -> bool {
        !other_inode(self.ino, self.btime, now.ino, now.btime)
            && (
                self.ino,
                &self.kind,
                self.uid,
                self.gid,
                self.mode,
                self.size,
                self.mtime,
                self.ctime,
                &self.xattrs,
            ) == (
                now.ino,
                &now.kind,
                now.uid,
                now.gid,
                now.mode,
                now.size,
                now.mtime,
                now.ctime,
                &now.xattrs,
            )
    }
}

/// What a lent directory held before the first lease on it: one record,
/// carried over to every overlapping lease on the same directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirRecord {
    pub dir: String,
    pub entries: Vec<Seen>,
    /// Whether every entry was recorded (at most MAX_DIR_ENTRIES).
    pub complete: bool,
    /// Names lent as files by any lease on this directory: that they
    /// changed is the point of the lease.
    pub leased: Vec<String>,
}

/// Something the holder changed in a lent directory, besides the binary.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub path: String,
    /// added, removed, replaced, changed, linked, in-place, unchecked, or
    /// leftover (the conversion's own, removed: not a failure)
    pub change: String,
    pub detail: String,
    /// What restore did about it.
    pub action: String,
    /// The command that puts the package's own file back.
    pub reinstall: Option<String>,
}

/// What the conversion left: the lent file's own inode, untouched, under
/// another name beside the new file (Mattermost's upgrader renames the old
/// binary to a temporary name and removes it last). Restore removes it.
pub const LEFTOVER: &str = "leftover";

impl Finding {
    /// The conversion's own leftover, removed: reported, not a failure.
    pub fn is_leftover(&self) -> bool {
        self.change == LEFTOVER
    }

    /// Whether upkeep must run nothing from the path until its content is
    /// back (what is gone, not compared, or removed cannot run).
    fn taints(&self) -> bool {
        !matches!(self.change.as_str(), "removed" | "unchecked" | LEFTOVER)
    }
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
            btime: None,
            capability,
            sha256,
            xattrs: None,
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
    /// What each lent directory held at grant.
    #[serde(default)]
    pub dirs: Vec<DirRecord>,
    /// The product's packages (manifest), to name reinstall commands.
    #[serde(default)]
    pub packages: Vec<String>,
    /// The binary runs from a private directory for the lease.
    #[serde(default)]
    pub private: Option<Private>,
}

/// A private directory lent instead of the binary's own: entry 0 of the
/// lease is the private directory, entry 1 the binary (never lent itself).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Private {
    /// The private directory, beside the binary in its directory.
    pub dir: String,
    /// The binary's own path: a link into `dir` while lent.
    pub link: String,
    /// What the link says (relative).
    pub target: String,
}

/// One step of a lease, in the order grant makes them.
#[derive(Debug, Clone, Copy)]
enum Step {
    Entry(usize),
    /// Moves the binary into the private directory (a link at its path).
    Move,
    /// Nothing at grant; undone last: the lent directories compared with
    /// their records once everything else is back.
    Contents,
}

fn steps(body: &LeaseBody) -> Vec<Step> {
    if body.private.is_some() {
        return vec![Step::Entry(1), Step::Move, Step::Entry(0)];
    }
    let mut s = Vec::new();
    if !body.dirs.is_empty() {
        s.push(Step::Contents);
    }
    s.extend((0..body.entries.len()).rev().map(Step::Entry));
    s
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
    /// `--private`: the binary runs from this directory while lent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private: Option<Private>,
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
            private: rec.body.private.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct GrantRequest {
    pub paths: Vec<String>,
    pub to: String,
    pub dir: bool,
    /// Lend a private directory of the binary's own instead (one path).
    pub private: bool,
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
    /// What the product's conversion needs known (its manifest's notices).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct EntryOutcome {
    pub path: String,
    pub kind: EntryKind,
    /// The content differs from when the lease was granted.
    pub content_changed: bool,
    /// A different file (inode) stands at the path now.
    pub replaced: bool,
    /// What the holder changed that it should not have.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// For the binary of a product's conversion: "converted to Enterprise
    /// Edition", "unchanged", or what it is instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion: Option<String>,
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

    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.entries.iter().flat_map(|e| e.findings.iter())
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
    let mut entry = LeaseEntry::of(path, EntryKind::File, &st, capability, sha256);
    entry.xattrs = Some(xattr_map(&file)?);
    entry.btime = safefs::birth_of(&file)?;
    Ok(Planned { entry, file })
}

fn xattr_map(f: &File) -> Result<BTreeMap<String, String>> {
    Ok(safefs::xattrs(f)?
        .into_iter()
        .map(|(k, v)| (k, hex(&v)))
        .collect())
}

fn kind_shown(kind: &str) -> &str {
    match kind {
        "file" => "file",
        "dir" => "directory",
        "symlink" => "symbolic link",
        _ => "FIFO, socket or device",
    }
}

fn kind_name(st: &nix::sys::stat::FileStat) -> &'static str {
    match safefs::Kind::of(st) {
        safefs::Kind::File => "file",
        safefs::Kind::Dir => "dir",
        safefs::Kind::Symlink => "symlink",
        safefs::Kind::Other => "other",
    }
}

/// What stands at `name` in an opened directory, never followed, never
/// blocking; digested when `budget` allows.
fn seen_at(dir: &File, name: &OsStr, budget: Option<&mut u64>) -> Result<Option<Seen>> {
    let Some(st) = safefs::lstat_at(dir, name)? else {
        return Ok(None);
    };
    let mut seen = Seen {
        name: name.to_string_lossy().into_owned(),
        kind: kind_name(&st).to_string(),
        ino: st.st_ino,
        uid: st.st_uid,
        gid: st.st_gid,
        mode: st.st_mode & 0o7777,
        size: st.st_size as u64,
        mtime: st.st_mtime,
        ctime: st.st_ctime,
        btime: safefs::birth_at(dir, name)?,
        sha256: None,
        xattrs: BTreeMap::new(),
    };
    match safefs::open_entry(dir, name)? {
        Entry::File(f, fst) => {
            seen.xattrs = xattr_map(&f)?;
            let size = fst.st_size as u64;
            if let Some(b) = budget {
                if size <= DIGEST_FILE_MAX && size <= *b {
                    *b -= size;
                    seen.sha256 = safefs::sha256_bounded(&f, DIGEST_FILE_MAX)?;
                }
            }
        }
        Entry::Dir(f, _) => seen.xattrs = xattr_map(&f)?,
        _ => {}
    }
    Ok(Some(seen))
}

/// Every entry of an opened directory (bounded), with whether that was all.
fn scan(dir: &File, digest: bool) -> Result<(Vec<Seen>, bool)> {
    let (names, complete) = safefs::names_in(dir, MAX_DIR_ENTRIES)?;
    let mut budget = DIGEST_BUDGET;
    let mut out = Vec::new();
    for n in names {
        let b = if digest { Some(&mut budget) } else { None };
        if let Some(seen) = seen_at(dir, &n, b)? {
            out.push(seen);
        }
    }
    Ok((out, complete))
}

/// What else lives in a directory about to be lent and may be run by
/// root: every executable entry but the ones lent.
fn exposure_warning(rec: &DirRecord) -> Option<String> {
    let runnable: Vec<&str> = rec
        .entries
        .iter()
        .filter(|e| !rec.leased.contains(&e.name))
        .filter(|e| (e.kind == "file" && e.mode & 0o111 != 0) || e.kind == "symlink")
        .map(|e| e.name.as_str())
        .collect();
    if runnable.is_empty() {
        return None;
    }
    let shown: Vec<&str> = runnable.iter().take(12).copied().collect();
    let more = if runnable.len() > shown.len() {
        format!(" and {} more", runnable.len() - shown.len())
    } else {
        String::new()
    };
    Some(format!(
        "{} also holds {} other programs root may run ({}{more}): the holder can replace them while the lease is open; upkeep runs nothing from it until it is given back, and restore reports and takes back every change",
        rec.dir,
        runnable.len(),
        shown.join(", ")
    ))
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
    let mut entry = LeaseEntry::of(path, EntryKind::Dir, &st, None, None);
    entry.xattrs = Some(xattr_map(&file)?);
    entry.btime = safefs::birth_of(&file)?;
    Ok(Planned { entry, file })
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
        notes: Vec::new(),
    };
    if todo.is_empty() {
        return Ok(report);
    }

    if req.private {
        return grant_private(root, req, &journal, holder, todo, report);
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
    let all = load_all(&journal)?;
    let mut records: Vec<DirRecord> = Vec::new();
    for d in &dirs {
        let mut p = plan_dir(root, d)?;
        // A directory another open lease already lends: that lease's
        // record of it is the original state, shared, never re-taken.
        let shared = all.iter().find_map(|l| {
            let e = l
                .body
                .entries
                .iter()
                .find(|e| e.kind == EntryKind::Dir && &e.path == d)?;
            Some((l, e))
        });
        let names: Vec<String> = todo
            .iter()
            .filter(|t| &parent_dir_of(t) == d)
            .filter_map(|t| Path::new(t).file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        let rec = match shared {
            Some((l, _)) if l.body.to != holder => {
                return Err(refused(
                    d,
                    format!("already lent to {} in lease {}", l.body.to.spec, l.id),
                ))
            }
            Some((l, e)) => {
                p.entry = e.clone();
                let mut r = l
                    .body
                    .dirs
                    .iter()
                    .find(|r| &r.dir == d)
                    .cloned()
                    .unwrap_or_else(|| DirRecord {
                        dir: d.clone(),
                        entries: Vec::new(),
                        complete: false,
                        leased: Vec::new(),
                    });
                for n in names {
                    if !r.leased.contains(&n) {
                        r.leased.push(n);
                    }
                }
                r
            }
            None => {
                let (entries, complete) = scan(&p.file, true)?;
                // What other open leases lend in it (a nested lent
                // directory) is theirs to give back, never this one's.
                let mut leased = names;
                for s in &entries {
                    let path = Path::new(d).join(&s.name).display().to_string();
                    let lent = all
                        .iter()
                        .any(|l| l.body.entries.iter().any(|e| e.path == path));
                    if lent && !leased.contains(&s.name) {
                        leased.push(s.name.clone());
                    }
                }
                DirRecord {
                    dir: d.clone(),
                    entries,
                    complete,
                    leased,
                }
            }
        };
        if let Some(w) = exposure_warning(&rec) {
            report.warnings.push(w);
        }
        if !rec.complete {
            report.warnings.push(format!(
                "{d} holds more than {MAX_DIR_ENTRIES} entries: only the first were recorded"
            ));
        }
        records.push(rec);
        planned.push(p);
    }
    for p in &todo {
        planned.push(plan_file(root, p, req.dir)?);
    }
    report.warnings.extend(statoverride_warnings(root, &dirs));
    fault::point("grant:recorded");

    let packages = manifest_packages(root, req.product.as_deref())?;
    let mut rec = Record::new(LeaseBody {
        expires: 0,
        to: holder.clone(),
        product: req.product.clone(),
        entries: planned.iter().map(|p| p.entry.clone()).collect(),
        dirs: records,
        packages,
        private: None,
    });
    rec.body.expires = rec.created.saturating_add(req.expires.as_secs());
    if req.dry_run {
        report.lease = Some(Lease::of(&rec));
        return Ok(report);
    }
    // Files first, the directory last: the holder can replace nothing
    // before every file is recorded and lent. Step k lends entry n-1-k;
    // undoing runs newest first, so the directory is taken back first.
    let count = steps(&rec.body).len();
    let lend = |body: &LeaseBody, k: usize| match steps(body)[k] {
        Step::Entry(i) => lend_entry(body, i, &planned[i].file, &planned[i].entry),
        Step::Move | Step::Contents => Ok(()),
    };
    let id = rec.id.clone();
    let give_back =
        |body: &LeaseBody, k: usize| undo_step(root, &journal, &id, body, k).map(|_| ());
    journal.run(&mut rec, count, lend, give_back)?;
    fault::point("grant:committed");
    report.lease = Some(Lease::of(&rec));
    Ok(report)
}

fn lend_entry(body: &LeaseBody, i: usize, f: &File, e: &LeaseEntry) -> Result<()> {
    let gid = body.to.gid.unwrap_or(e.gid);
    safefs::fchown(f, body.to.uid, gid)?;
    fault::point(&format!("grant:entry{i}:chown"));
    safefs::fchmod(f, e.mode | 0o200)?;
    fault::point(&format!("grant:entry{i}:chmod"));
    Ok(())
}

/// Undoes step `k` (in grant's order) of a lease; what it found.
fn undo_step(
    root: &SysRoot,
    journal: &Journal,
    id: &str,
    body: &LeaseBody,
    k: usize,
) -> Result<Vec<EntryOutcome>> {
    match steps(body).get(k) {
        Some(Step::Entry(i)) => restore_entry(root, journal, id, body, *i).map(|o| vec![o]),
        Some(Step::Contents) => contents_step(root, journal, id, body),
        Some(Step::Move) => {
            let Some(pv) = &body.private else {
                return Ok(Vec::new());
            };
            let findings = move_back(root, pv, body.to.uid)?;
            Ok(vec![EntryOutcome {
                path: pv.dir.clone(),
                kind: EntryKind::Dir,
                content_changed: false,
                replaced: false,
                findings,
                conversion: None,
            }])
        }
        None => Ok(Vec::new()),
    }
}

/// `--private`: the binary moves into a new directory of its own beside
/// it (a link stays at its path, so it runs as before, and a running
/// process's executable path follows the move), and only that directory
/// is lent. The binary's own directory, and everything else root runs
/// from it, stays root's.
fn grant_private(
    root: &SysRoot,
    req: &GrantRequest,
    journal: &Journal,
    holder: Holder,
    todo: Vec<String>,
    mut report: GrantReport,
) -> Result<GrantReport> {
    let [bin] = todo.as_slice() else {
        return Err(Error::Usage(
            "a private directory holds one binary: give one PATH".into(),
        ));
    };
    let file = plan_file(root, bin, false)?;
    let dir = parent_dir_of(bin);
    let name = Path::new(bin)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pname = format!(".{name}.upkeep-lease.d");
    let pdir = Path::new(&dir).join(&pname).display().to_string();
    let parent = safefs::open_parent(root, Path::new(bin))?;
    if safefs::lstat_at(&parent.fd, OsStr::new(&pname))?.is_some() {
        return Err(refused(
            &pdir,
            "is already there (a lease cut short?): run upkeep-lease recover, or remove it",
        ));
    }
    let pentry = LeaseEntry {
        path: pdir.clone(),
        kind: EntryKind::Dir,
        uid: 0,
        gid: 0,
        mode: 0o755,
        dev: file.entry.dev,
        ino: 0,
        btime: None,
        capability: None,
        sha256: None,
        xattrs: Some(BTreeMap::new()),
    };
    let packages = manifest_packages(root, req.product.as_deref())?;
    let mut rec = Record::new(LeaseBody {
        expires: 0,
        to: holder,
        product: req.product.clone(),
        entries: vec![pentry, file.entry.clone()],
        dirs: vec![DirRecord {
            dir: pdir.clone(),
            entries: Vec::new(),
            complete: true,
            leased: vec![name.clone()],
        }],
        packages,
        private: Some(Private {
            dir: pdir.clone(),
            link: bin.clone(),
            target: format!("{pname}/{name}"),
        }),
    });
    rec.body.expires = rec.created.saturating_add(req.expires.as_secs());
    report.warnings.push(format!(
        "{bin} runs from {pdir} for the lease (a link stays at its path); only {pdir} is lent, {dir} stays root's"
    ));
    if req.dry_run {
        report.lease = Some(Lease::of(&rec));
        return Ok(report);
    }
    let count = steps(&rec.body).len();
    let lend = |body: &LeaseBody, k: usize| match steps(body)[k] {
        Step::Entry(1) | Step::Contents => Ok(()), // the binary itself is not lent
        Step::Move => move_in(root, body),
        Step::Entry(i) => {
            let e = &body.entries[i];
            let (_, entry) = open_for_restore(root, body, e)?;
            let Entry::Dir(f, _) = entry else {
                return Err(Error::Failed(format!("{}: vanished", e.path)));
            };
            lend_entry(body, i, &f, e)
        }
    };
    let id = rec.id.clone();
    let give_back = |body: &LeaseBody, k: usize| undo_step(root, journal, &id, body, k).map(|_| ());
    journal.run(&mut rec, count, lend, give_back)?;
    fault::point("grant:committed");
    report.lease = Some(Lease::of(&rec));
    Ok(report)
}

fn manifest_packages(root: &SysRoot, product: Option<&str>) -> Result<Vec<String>> {
    Ok(match product {
        Some(name) => crate::plugin::load(root)?
            .iter()
            .filter(|p| p.name() == name)
            .flat_map(|p| p.manifest.all_packages().cloned().collect::<Vec<_>>())
            .collect(),
        None => Vec::new(),
    })
}

fn private_names(pv: &Private) -> (OsString, OsString, OsString) {
    let link = Path::new(&pv.link);
    let name = link.file_name().unwrap_or_default().to_os_string();
    let pname = Path::new(&pv.dir)
        .file_name()
        .unwrap_or_default()
        .to_os_string();
    let mut tmp = OsString::from(".");
    tmp.push(&name);
    tmp.push(".upkeep-lease.link");
    (name, pname, tmp)
}

/// Makes the private directory (root's), swaps a link in for the binary
/// and moves the binary into the directory. At no point is nothing at the
/// binary's path; each part is undone by [`move_back`].
fn move_in(root: &SysRoot, body: &LeaseBody) -> Result<()> {
    let Some(pv) = &body.private else {
        return Ok(());
    };
    let e = &body.entries[1];
    let (name, pname, tmp) = private_names(pv);
    let parent = safefs::open_parent(root, Path::new(&pv.link))?;
    check_ancestors(&pv.link, &parent, None)?;
    let dirfd = &parent.fd;
    if !safefs::mkdir_at(dirfd, &pname, 0o700)? {
        return Err(refused(&pv.dir, "is already there"));
    }
    let pdir = match safefs::open_entry(dirfd, &pname)? {
        Entry::Dir(f, _) => f,
        _ => return Err(refused(&pv.dir, "is not the directory just made")),
    };
    safefs::fchown(&pdir, 0, 0)?;
    safefs::fchmod(&pdir, 0o755)?;
    safefs::sync_dir(dirfd)?;
    fault::point("grant:move:mkdir");
    match safefs::lstat_at(dirfd, &name)? {
        Some(st) if safefs::Kind::of(&st) == safefs::Kind::File && st.st_ino == e.ino => {}
        _ => return Err(refused(&pv.link, "is no longer the file recorded")),
    }
    safefs::unlink_at(dirfd, &tmp)?;
    safefs::symlink_at(dirfd, OsStr::new(&pv.target), &tmp)?;
    safefs::rename_between(dirfd, &tmp, dirfd, &name, safefs::Rename::Exchange)?;
    fault::point("grant:move:exchanged");
    safefs::rename_between(dirfd, &tmp, &pdir, &name, safefs::Rename::NoReplace)?;
    safefs::sync_dir(&pdir)?;
    safefs::sync_dir(dirfd)?;
    fault::point("grant:move:moved");
    Ok(())
}

/// Puts the binary (whatever the upgrade made of it) back at its path in
/// place of the link, and removes the private directory. The directory is
/// root's again before this runs. Idempotent from any state `move_in` or
/// an earlier `move_back` left.
fn move_back(root: &SysRoot, pv: &Private, holder: u32) -> Result<Vec<Finding>> {
    let (name, pname, tmp) = private_names(pv);
    let parent = safefs::open_parent(root, Path::new(&pv.link))?;
    check_ancestors(&pv.link, &parent, None)?;
    let dirfd = &parent.fd;
    let mut findings = Vec::new();
    let ours = |dirfd: &File| -> Result<bool> {
        Ok(safefs::readlink_at(dirfd, &name)?.is_some_and(|t| t == OsStr::new(&pv.target)))
    };
    let is_file = |d: &File, n: &OsStr| -> Result<bool> {
        Ok(safefs::lstat_at(d, n)?.is_some_and(|st| safefs::Kind::of(&st) == safefs::Kind::File))
    };
    let pdir = match safefs::open_entry(dirfd, &pname)? {
        Entry::Dir(f, _) => Some(f),
        _ => None,
    };
    let at_path_free = ours(dirfd)? || safefs::lstat_at(dirfd, &name)?.is_none();
    // Cut short between the swap and the move: the binary is at `tmp`.
    if is_file(dirfd, &tmp)? && at_path_free {
        safefs::rename_between(dirfd, &tmp, dirfd, &name, safefs::Rename::Replace)?;
    } else if let Some(p) = &pdir {
        let there = safefs::lstat_at(p, &name)?;
        if there.is_some() && !is_file(p, &name)? {
            // Not a file where the binary was: a link, FIFO or directory
            // of the holder's. Taken back, reported; nothing moves.
            let action = take_back(p, &name, holder, 0)?;
            findings.push(finding(
                &Path::new(&pv.dir).join(&name).display().to_string(),
                "replaced",
                "the binary in the private directory is no longer a regular file".into(),
                action,
            ));
        }
        if is_file(p, &name)? {
            if at_path_free {
                safefs::rename_between(p, &name, dirfd, &name, safefs::Rename::Replace)?;
            } else {
                // The binary's directory was never lent: only root (a
                // package upgrade) can have put something else there.
                log::info!(
                    "{}: replaced during the lease (a package upgrade?); the lent copy in {} is removed",
                    pv.link,
                    pv.dir
                );
                safefs::unlink_at(p, &name)?;
            }
        }
    }
    safefs::sync_dir(dirfd)?;
    fault::point("restore:move:back");
    // A link left by a run cut short.
    if safefs::readlink_at(dirfd, &tmp)?.is_some() {
        safefs::unlink_at(dirfd, &tmp)?;
    }
    if let Some(p) = &pdir {
        // Taken back and reported by the directory's own step; only the
        // binary belongs here, and it has gone back.
        let (names, _) = safefs::names_in(p, MAX_DIR_ENTRIES)?;
        for n in names {
            match safefs::lstat_at(p, &n)? {
                Some(st) if safefs::Kind::of(&st) == safefs::Kind::Dir => {}
                Some(_) => {
                    safefs::unlink_at(p, &n)?;
                }
                None => {}
            }
        }
        safefs::sync_dir(p)?;
        if let Err(e) = safefs::rmdir_at(dirfd, &pname) {
            findings.push(finding(
                &pv.dir,
                "unchecked",
                format!("could not be removed ({e})"),
                "left in place, root's, not writable by others".into(),
            ));
        }
        safefs::sync_dir(dirfd)?;
    }
    fault::point("restore:move:cleaned");
    Ok(findings)
}

/// What `--product` lends, from the manifest.
#[derive(Debug, Clone)]
pub struct Granted {
    pub paths: Vec<String>,
    pub to: String,
    pub dir: bool,
    pub private: bool,
    /// The conversion's notices, to print with the grant.
    pub notes: Vec<String>,
}

/// `--product`: the paths, holder and directory flag the product's
/// manifest gives for the one install found. A product that declares no
/// lease is a usage error; one not installed is a plain failure; one whose
/// conversion does not run on its architecture is refused.
pub fn from_manifest(
    root: &SysRoot,
    name: &str,
    paths: Vec<String>,
    to: Option<String>,
    dir: bool,
) -> Result<Granted> {
    let ctx = crate::context::Context::open(root)?;
    let names = [name.to_string()];
    let selected = ctx.select(&names)?;
    if !selected
        .iter()
        .any(|p| p.manifest.installs.iter().any(|i| i.lease.is_some()))
    {
        return Err(Error::Usage(format!(
            "{name}: its manifest declares no lease; give PATH and --to instead"
        )));
    }
    let report = ctx.detect(&names, &Default::default())?;
    let found: Vec<_> = report
        .installs
        .iter()
        .filter_map(|i| Some((i, i.lease.as_ref()?)))
        .collect();
    let (install, spec) = match found.as_slice() {
        [] => return Err(Error::Failed(format!("no install of {name} was found"))),
        [one] => *one,
        _ => {
            return Err(Error::Usage(format!(
                "several installs of {name} found: name the PATH to lend"
            )))
        }
    };
    // The directory only when the manifest asks for it: everything else
    // in it (under Omnibus, every program root's tools run) is lent too.
    let lends_dir = spec.dir && !spec.private;
    if dir && !lends_dir {
        return Err(Error::Usage(format!(
            "{name}: its manifest does not ask for the directory (lease.dir); --dir is refused with --product"
        )));
    }
    let paths = if paths.is_empty() {
        spec.paths.clone()
    } else {
        paths
    };
    let notes = crate::lease_conversion::before_grant(root, install)?;
    Ok(Granted {
        paths,
        to: to.unwrap_or_else(|| spec.to.clone()),
        dir: spec.dir && !spec.private,
        private: spec.private,
        notes,
    })
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
    let (parent, entry) = open_for_restore(root, body, e).map_err(|err| err.to_string())?;
    drop(parent);
    let (f, st) = match (entry, e.kind) {
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

/// The parent of an entry (its ancestors checked: above a lent directory
/// only root may write) and what stands at its name, not followed.
fn open_for_restore(
    root: &SysRoot,
    body: &LeaseBody,
    e: &LeaseEntry,
) -> Result<(safefs::Parent, Entry)> {
    let parent = safefs::open_parent(root, Path::new(&e.path))?;
    // The lent directory itself may be owned by the holder; above it, only root.
    let lent_dir = body
        .entries
        .iter()
        .find(|d| d.kind == EntryKind::Dir && d.path == parent_dir_of(&e.path))
        .map(|d| PathBuf::from(&d.path));
    check_ancestors(&e.path, &parent, lent_dir.as_deref())?;
    let entry = safefs::open_entry(&parent.fd, &parent.name)?;
    Ok((parent, entry))
}

fn finding(path: &str, change: &str, detail: String, action: String) -> Finding {
    Finding {
        path: path.to_string(),
        change: change.to_string(),
        detail,
        action,
        reinstall: None,
    }
}

/// Puts entry `i` back as recorded; what changed during the lease.
fn restore_entry(
    root: &SysRoot,
    journal: &Journal,
    id: &str,
    body: &LeaseBody,
    i: usize,
) -> Result<EntryOutcome> {
    let e = &body.entries[i];
    let mut out = EntryOutcome {
        path: e.path.clone(),
        kind: e.kind,
        content_changed: false,
        replaced: false,
        findings: Vec::new(),
        conversion: None,
    };
    match e.kind {
        EntryKind::Dir => {
            let others: Vec<LeaseRecord> = load_all(journal)?
                .into_iter()
                .filter(|l| l.id != id)
                .collect();
            if let Some(mut other) = others
                .iter()
                .find(|l| {
                    l.body
                        .entries
                        .iter()
                        .any(|o| o.kind == EntryKind::Dir && o.path == e.path)
                })
                .cloned()
            {
                // Another open lease lends the same directory: it stays
                // lent, and the last lease on it gives it back. That lease
                // learns which files this one lent.
                let mine = body.dirs.iter().find(|r| r.dir == e.path);
                let theirs = other.body.dirs.iter_mut().find(|r| r.dir == e.path);
                if let (Some(mine), Some(theirs)) = (mine, theirs) {
                    let before = theirs.leased.len();
                    for n in &mine.leased {
                        if !theirs.leased.contains(n) {
                            theirs.leased.push(n.clone());
                        }
                    }
                    if theirs.leased.len() != before {
                        journal.write(&other)?;
                    }
                }
                return Ok(out);
            }
            let (parent, entry) = open_for_restore(root, body, e)?;
            drop(parent);
            if matches!(entry, Entry::Missing) && body.private.is_some() {
                // A private directory not made yet (or already removed).
                return Ok(out);
            }
            let Entry::Dir(f, st) = entry else {
                return Err(Error::Failed(format!(
                    "{}: is not a directory now; nothing changed",
                    e.path
                )));
            };
            put_back(i, e, &f, &st)?;
            // A private directory is compared at once (the move back then
            // empties it); a lent directory once its files are back
            // ([`Step::Contents`]), so that links the holder made to them
            // are broken first.
            if body.private.is_some() {
                if let Some(rec) = body.dirs.iter().find(|r| r.dir == e.path) {
                    let elsewhere = lent_elsewhere(&others);
                    out.findings = check_contents(root, body, rec, &f, &elsewhere)?;
                    fault::point(&format!("restore:entry{i}:contents"));
                }
            }
        }
        EntryKind::File => {
            restore_file(root, body, i, &mut out)?;
            // The holder wrote it: upkeep runs it only if it is the same
            // as before the lease or as its package shipped it.
            if body.private.is_none() && (out.content_changed || out.replaced) {
                taint(root, vec![(e.path.clone(), e.sha256.clone())])?;
            }
        }
    }
    taint(
        root,
        out.findings
            .iter()
            .filter(|f| f.taints())
            .map(|f| (f.path.clone(), expected_digest(body, &f.path)))
            .collect(),
    )?;
    Ok(out)
}

fn lent_elsewhere(others: &[LeaseRecord]) -> Vec<String> {
    others
        .iter()
        .flat_map(|l| l.body.entries.iter().map(|x| x.path.clone()))
        .collect()
}

/// Compares every lent directory this lease is the last one on with its
/// record, taking back what the holder changed ([`check_contents`]).
fn contents_step(
    root: &SysRoot,
    journal: &Journal,
    id: &str,
    body: &LeaseBody,
) -> Result<Vec<EntryOutcome>> {
    let others: Vec<LeaseRecord> = load_all(journal)?
        .into_iter()
        .filter(|l| l.id != id)
        .collect();
    let elsewhere = lent_elsewhere(&others);
    let mut out = Vec::new();
    for (i, e) in body.entries.iter().enumerate() {
        if e.kind != EntryKind::Dir || elsewhere.contains(&e.path) {
            continue;
        }
        let Some(rec) = body.dirs.iter().find(|r| r.dir == e.path) else {
            continue;
        };
        let (_, entry) = open_for_restore(root, body, e)?;
        let Entry::Dir(f, st) = entry else {
            continue;
        };
        // Root's again (its own step ran first): checked, never assumed.
        if (st.st_uid, st.st_gid, st.st_mode & 0o7777) != (e.uid, e.gid, e.mode) {
            return Err(Error::Failed(format!(
                "{}: not taken back; its entries are not compared",
                e.path
            )));
        }
        let findings = check_contents(root, body, rec, &f, &elsewhere)?;
        fault::point(&format!("restore:entry{i}:contents"));
        taint(
            root,
            findings
                .iter()
                .filter(|f| f.taints())
                .map(|f| (f.path.clone(), expected_digest(body, &f.path)))
                .collect(),
        )?;
        out.push(EntryOutcome {
            path: e.path.clone(),
            kind: EntryKind::Dir,
            content_changed: false,
            replaced: false,
            findings,
            conversion: None,
        });
    }
    Ok(out)
}

/// The digest a path had at grant, if it was recorded.
fn expected_digest(body: &LeaseBody, path: &str) -> Option<String> {
    let dir = parent_dir_of(path);
    let name = Path::new(path).file_name()?.to_string_lossy().into_owned();
    body.dirs
        .iter()
        .filter(|r| r.dir == dir)
        .flat_map(|r| r.entries.iter())
        .find(|s| s.name == name)
        .and_then(|s| s.sha256.clone())
}

/// The lent file back: exact owner, mode and attributes on what stands at
/// its path now. A holder's extra hard links are broken (a copy on a new
/// inode is renamed over); what is no longer a file is taken back and
/// reported.
fn restore_file(root: &SysRoot, body: &LeaseBody, i: usize, out: &mut EntryOutcome) -> Result<()> {
    let e = &body.entries[i];
    let (parent, entry) = open_for_restore(root, body, e)?;
    let holder = body.to.uid;
    let (mut f, mut st) = match entry {
        Entry::File(f, st) => {
            if body.private.is_some() && st.st_uid == holder {
                // Written by the holder in the private directory.
                taint(root, vec![(e.path.clone(), e.sha256.clone())])?;
            }
            (f, st)
        }
        Entry::Missing => {
            let mut fi = finding(
                &e.path,
                "removed",
                "the lent file is gone".into(),
                "nothing to take back".into(),
            );
            fi.reinstall = reinstall_cmd(root, &body.packages, &e.path);
            out.findings.push(fi);
            return Ok(());
        }
        _ => {
            let action = take_back(&parent.fd, &parent.name, holder, 0)?;
            out.replaced = true;
            let mut fi = finding(
                &e.path,
                "replaced",
                "the lent file is no longer a regular file (a link, FIFO, socket or directory now stands there)".into(),
                action,
            );
            fi.reinstall = reinstall_cmd(root, &body.packages, &e.path);
            out.findings.push(fi);
            return Ok(());
        }
    };
    let was_ino = st.st_ino;
    let was_btime = safefs::birth_of(&f)?;
    let other = other_inode(e.ino, e.btime, was_ino, was_btime);
    if st.st_nlink > 1 && st.st_uid != holder && other {
        // Not the holder's content: a link to a file of someone else.
        // Neither its owner nor its mode is ours to change.
        out.replaced = true;
        let mut fi = finding(
            &e.path,
            "replaced",
            format!(
                "a hard link to another file (uid {}, {} links) stands there",
                st.st_uid, st.st_nlink
            ),
            "left as it is: changing it would change the other file".into(),
        );
        fi.reinstall = reinstall_cmd(root, &body.packages, &e.path);
        out.findings.push(fi);
        return Ok(());
    }
    if st.st_nlink > 1 || st.st_uid == holder {
        // The holder's inode: it may hold more links to it, or a file
        // descriptor open for writing that outlives any chown. The content
        // goes to a new inode, which gets owner, mode and attributes and is
        // renamed over; the holder keeps only the old copy.
        let links = st.st_nlink;
        // One fixed name: a run cut short leaves at most this, which the
        // next run removes first.
        let tmp = OsString::from(format!(".{}.upkeep-lease", parent.name.to_string_lossy()));
        let _ = safefs::unlink_at(&parent.fd, &tmp);
        match safefs::copy_to_new(&parent.fd, &tmp, &f, safefs::limit::BINARY) {
            Ok(copy) => {
                fault::point(&format!("restore:entry{i}:copied"));
                let nst = nix::sys::stat::fstat(&copy)
                    .map_err(|err| Error::Failed(format!("{}: {err}", e.path)))?;
                if let Err(err) = put_back(i, e, &copy, &nst) {
                    let _ = safefs::unlink_at(&parent.fd, &tmp);
                    return Err(err);
                }
                safefs::rename_at(&parent.fd, &tmp, &parent.name)?;
                safefs::sync_dir(&parent.fd)?;
                fault::point(&format!("restore:entry{i}:relinked"));
                if links > 1 {
                    out.findings.push(finding(
                        &e.path,
                        "linked",
                        format!("the holder gave the lent file {} hard links", links - 1),
                        "copied to a new inode, owner, mode and attributes set, renamed over: the holder's links keep only the old copy".into(),
                    ));
                }
                f = copy;
                st = nst;
            }
            Err(err) => {
                // Too big to copy: take the inode back where it stands
                // (it is the holder's own content); with other links to
                // it, without capabilities.
                let mut plain = e.clone();
                if links > 1 {
                    if let Some(x) = plain.xattrs.as_mut() {
                        x.remove(safefs::CAP_XATTR);
                    }
                    plain.capability = None;
                }
                put_back(i, &plain, &f, &st)?;
                out.findings.push(finding(
                    &e.path,
                    if links > 1 { "linked" } else { "in-place" },
                    format!(
                        "the lent file ({} links) could not be copied to a new inode ({err})",
                        links
                    ),
                    if links > 1 {
                        "taken back in place (owner, mode, attributes) without its capabilities"
                    } else {
                        "taken back in place (owner, mode, attributes)"
                    }
                    .into(),
                ));
                out.content_changed = true;
                out.replaced = other;
                return Ok(());
            }
        }
    } else {
        put_back(i, e, &f, &st)?;
    }
    let _ = st;
    out.replaced = other;
    out.content_changed = out.replaced
        || match &e.sha256 {
            Some(sum) => safefs::sha256_bounded(&f, safefs::limit::BINARY)?.as_ref() != Some(sum),
            None => false,
        };
    Ok(())
}

fn kept(rec: &LeaseRecord, entries: Vec<EntryOutcome>, message: String) -> LeaseOutcome {
    LeaseOutcome {
        id: rec.id.clone(),
        result: LeaseResult::Kept,
        entries,
        message: Some(message),
    }
}

/// Puts back everything a lease recorded and closes it. The directory is
/// taken back first, whatever stands in it; then each file. What cannot be
/// put back keeps the lease open (restoring) and is reported; the others
/// are put back all the same.
fn restore_lease(root: &SysRoot, journal: &Journal, rec: &mut LeaseRecord) -> Result<LeaseOutcome> {
    // Every entry, whatever the grant reached: putting back an entry that
    // was never lent changes nothing.
    rec.done = steps(&rec.body).len();
    rec.count = rec.done;
    rec.phase = Phase::Undoing;
    journal.write(rec)?;
    fault::point("restore:marked");
    let id = rec.id.clone();
    let mut outcomes: Vec<EntryOutcome> = Vec::new();
    // The journal undoes newest step first: entry 0 (a directory) first.
    let undone = journal.undo(rec, |body, k| {
        for o in undo_step(root, journal, &id, body, k)? {
            // A directory's steps make one outcome.
            match outcomes.iter_mut().find(|x| x.path == o.path) {
                Some(x) => x.findings.extend(o.findings),
                None => outcomes.push(o),
            }
        }
        if k == 0 {
            fault::point("restore:before-close");
        }
        Ok(())
    });
    if undone.is_ok() {
        if let Some(product) = &rec.body.product {
            for o in outcomes.iter_mut().filter(|o| o.kind == EntryKind::File) {
                o.conversion =
                    crate::lease_conversion::verdict(root, product, &o.path, o.content_changed);
            }
        }
    }
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

/// Owner first (a chown clears capabilities and setuid bits), then every
/// extended attribute as recorded (an ACL the holder added is removed),
/// the exact mode, and the capabilities last; each only if it differs (an
/// untouched file, even an immutable one, needs nothing). Read back.
fn put_back(i: usize, e: &LeaseEntry, f: &File, st: &nix::sys::stat::FileStat) -> Result<()> {
    let shown = |err: Error| Error::Failed(format!("{}: {err}", e.path));
    let (uid, gid) = (st.st_uid, st.st_gid);
    let chowned = (uid, gid) != (e.uid, e.gid);
    if chowned {
        safefs::fchown(f, e.uid, e.gid).map_err(shown)?;
    }
    fault::point(&format!("restore:entry{i}:chown"));
    let mut want_cap = e.capability.clone();
    if let Some(want) = &e.xattrs {
        want_cap = want.get(safefs::CAP_XATTR).cloned();
        let have = xattr_map(f).map_err(shown)?;
        for name in have.keys() {
            if !want.contains_key(name) && name != "security.selinux" {
                safefs::remove_xattr(f, name).map_err(shown)?;
            }
        }
        for (k, v) in want {
            if k == safefs::CAP_XATTR || have.get(k) == Some(v) {
                continue;
            }
            let bytes = unhex(v)
                .ok_or_else(|| Error::bad_input(Path::new(&e.path), None, "xattr is not hex"))?;
            safefs::set_xattr(f, k, &bytes).map_err(shown)?;
        }
        fault::point(&format!("restore:entry{i}:xattrs"));
    }
    let now =
        nix::sys::stat::fstat(f).map_err(|err| Error::Failed(format!("{}: {err}", e.path)))?;
    if now.st_mode & 0o7777 != e.mode {
        safefs::fchmod(f, e.mode).map_err(shown)?;
    }
    fault::point(&format!("restore:entry{i}:chmod"));
    if let Some(cap) = &want_cap {
        let bytes = unhex(cap)
            .ok_or_else(|| Error::bad_input(Path::new(&e.path), None, "capability is not hex"))?;
        if safefs::get_capability(f)?.as_deref() != Some(bytes.as_slice()) {
            safefs::set_capability(f, &bytes).map_err(shown)?;
        }
        fault::point(&format!("restore:entry{i}:capability"));
    }
    // Read back: claim nothing that did not take.
    let now =
        nix::sys::stat::fstat(f).map_err(|err| Error::Failed(format!("{}: {err}", e.path)))?;
    let mut wrong = Vec::new();
    if (now.st_uid, now.st_gid, now.st_mode & 0o7777) != (e.uid, e.gid, e.mode) {
        wrong.push(format!(
            "owner or mode is {}:{} {:04o}",
            now.st_uid,
            now.st_gid,
            now.st_mode & 0o7777
        ));
    }
    if let Some(want) = &e.xattrs {
        let mut have = xattr_map(f).map_err(shown)?;
        have.remove("security.selinux");
        let mut want = want.clone();
        want.remove("security.selinux");
        if have != want {
            wrong.push(format!(
                "attributes are {:?}, not {:?}",
                have.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>()
            ));
        }
    }
    if !wrong.is_empty() {
        return Err(Error::Failed(format!(
            "{}: did not take: {}",
            e.path,
            wrong.join("; ")
        )));
    }
    Ok(())
}

/// Removes every extended attribute the kernel lets root remove (ACLs,
/// capabilities, user.*), but the security label.
fn strip_xattrs(f: &File) -> Result<()> {
    for (name, _) in safefs::xattrs(f)? {
        if name != "security.selinux" {
            safefs::remove_xattr(f, &name)?;
        }
    }
    Ok(())
}

/// Takes back an entry the holder added or replaced in a directory that
/// is root's again: owner root, no write for group or others, no setuid,
/// no ACLs or other attributes; a directory with everything in it. A hard
/// link to a file the holder does not own is left as it is.
fn take_back(dir: &File, name: &OsStr, holder: u32, depth: usize) -> Result<String> {
    match safefs::open_entry(dir, name)? {
        Entry::Missing => Ok("gone by the time it was taken back".into()),
        Entry::Symlink => {
            if let Some(st) = safefs::lstat_at(dir, name)? {
                if (st.st_uid, st.st_gid) != (0, 0) {
                    safefs::lchown_at(dir, name, 0, 0)?;
                }
            }
            Ok("a link: owner root, not followed".into())
        }
        Entry::Other => {
            if let Some(st) = safefs::lstat_at(dir, name)? {
                if (st.st_uid, st.st_gid) != (0, 0) {
                    safefs::lchown_at(dir, name, 0, 0)?;
                }
                // The directory is root's: nothing can be swapped in.
                safefs::chmod_at(dir, name, st.st_mode & 0o755)?;
            }
            Ok("owner root, no write for others".into())
        }
        Entry::File(f, st) => {
            if st.st_nlink > 1 && st.st_uid != holder {
                return Ok(format!(
                    "left as it is: a hard link ({} links) to a file of uid {}",
                    st.st_nlink, st.st_uid
                ));
            }
            strip_xattrs(&f)?;
            if (st.st_uid, st.st_gid) != (0, 0) {
                safefs::fchown(&f, 0, 0)?;
            }
            safefs::fchmod(&f, st.st_mode & 0o755)?;
            Ok("owner root, no write for others, no setuid, attributes removed".into())
        }
        Entry::Dir(f, st) => {
            strip_xattrs(&f)?;
            if (st.st_uid, st.st_gid) != (0, 0) {
                safefs::fchown(&f, 0, 0)?;
            }
            safefs::fchmod(&f, st.st_mode & 0o1755)?;
            let mut note = "owner root, no write for others, attributes removed".to_string();
            if depth >= 16 {
                note.push_str("; deeper entries not examined");
                return Ok(note);
            }
            let (names, complete) = safefs::names_in(&f, MAX_DIR_ENTRIES)?;
            for n in names {
                take_back(&f, &n, holder, depth + 1)?;
            }
            note.push_str(if complete {
                ", and everything in it"
            } else {
                ", and the first entries in it"
            });
            Ok(note)
        }
    }
}

/// An entry that changed in place (same inode) back to what was recorded.
fn restore_seen(dir: &File, name: &OsStr, r: &Seen) -> Result<String> {
    match safefs::open_entry(dir, name)? {
        Entry::File(f, st) | Entry::Dir(f, st) => {
            let e = LeaseEntry {
                path: r.name.clone(),
                kind: if r.kind == "dir" {
                    EntryKind::Dir
                } else {
                    EntryKind::File
                },
                uid: r.uid,
                gid: r.gid,
                mode: r.mode,
                dev: st.st_dev,
                ino: r.ino,
                btime: r.btime,
                capability: None,
                sha256: None,
                xattrs: Some(r.xattrs.clone()),
            };
            put_back(usize::MAX, &e, &f, &st)?;
            Ok("owner, mode and attributes put back as recorded".into())
        }
        Entry::Symlink => {
            safefs::lchown_at(dir, name, r.uid, r.gid)?;
            Ok("owner put back as recorded".into())
        }
        _ => Ok("left as it is".into()),
    }
}

/// Compares a lent directory, root's again, with its record: every entry
/// added, replaced, removed or changed (but the lent files and what other
/// open leases lend) is taken back and reported.
fn check_contents(
    root: &SysRoot,
    body: &LeaseBody,
    rec: &DirRecord,
    dir: &File,
    elsewhere: &[String],
) -> Result<Vec<Finding>> {
    let (now, complete) = scan(dir, false)?;
    let mut out = Vec::new();
    if !rec.complete || !complete {
        out.push(finding(
            &rec.dir,
            "unchecked",
            format!("more than {MAX_DIR_ENTRIES} entries: only the first were compared"),
            "none".into(),
        ));
    }
    let recorded: BTreeMap<&str, &Seen> =
        rec.entries.iter().map(|s| (s.name.as_str(), s)).collect();
    let current: BTreeMap<&str, &Seen> = now.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut names: Vec<&str> = recorded.keys().chain(current.keys()).copied().collect();
    names.sort();
    names.dedup();
    for name in names {
        if rec.leased.iter().any(|l| l == name) {
            continue;
        }
        let path = Path::new(&rec.dir).join(name).display().to_string();
        if elsewhere.contains(&path) {
            continue;
        }
        let os = OsStr::new(name);
        let mut fi = match (recorded.get(name), current.get(name)) {
            (Some(r), Some(c)) if r.same_as(c) => continue,
            (None, Some(c)) => {
                // Same inode, size and mtime (an inode number alone may
                // have been reused).
                let moved = rec.entries.iter().find(|r| {
                    (r.ino, &r.kind, r.size, r.mtime) == (c.ino, &c.kind, c.size, c.mtime)
                        && !other_inode(r.ino, r.btime, c.ino, c.btime)
                        && r.name != c.name
                });
                let old_binary = c.kind == "file"
                    && body.entries.iter().any(|e| {
                        e.kind == EntryKind::File
                            && !other_inode(e.ino, e.btime, c.ino, c.btime)
                            && e.sha256.is_some()
                            && matches!(safefs::open_entry(dir, os), Ok(Entry::File(f, _))
                                if safefs::sha256_bounded(&f, DIGEST_FILE_MAX).ok().flatten() == e.sha256)
                    });
                if old_binary {
                    // The recorded inode itself (number, birth time and
                    // content): nothing else needs it.
                    safefs::unlink_at(dir, os)?;
                    out.push(finding(
                        &path,
                        LEFTOVER,
                        "the lent file's old inode under a new name, as the upgrader leaves it when it stops before removing it".into(),
                        "removed".into(),
                    ));
                    continue;
                }
                let what = if let Some(r) = moved {
                    format!("{}'s original file under a new name", r.name)
                } else {
                    format!(
                        "a {} of uid {}, mode {:04o}",
                        kind_shown(&c.kind),
                        c.uid,
                        c.mode
                    )
                };
                finding(&path, "added", what, take_back(dir, os, body.to.uid, 0)?)
            }
            (Some(r), None) => finding(
                &path,
                "removed",
                format!("a {} of uid {} is gone", r.kind, r.uid),
                "nothing to take back".into(),
            ),
            (Some(r), Some(c))
                if other_inode(r.ino, r.btime, c.ino, c.btime) || r.kind != c.kind =>
            {
                finding(
                    &path,
                    "replaced",
                    format!(
                        "a {} of uid {}, mode {:04o} stands where a {} was",
                        kind_shown(&c.kind),
                        c.uid,
                        c.mode,
                        kind_shown(&r.kind)
                    ),
                    take_back(dir, os, body.to.uid, 0)?,
                )
            }
            (Some(r), Some(c)) => {
                let mut what = Vec::new();
                if (r.uid, r.gid, r.mode) != (c.uid, c.gid, c.mode) {
                    what.push(format!(
                        "owner/mode {}:{} {:04o} (was {}:{} {:04o})",
                        c.uid, c.gid, c.mode, r.uid, r.gid, r.mode
                    ));
                }
                if r.xattrs != c.xattrs {
                    what.push("extended attributes (ACLs, capabilities)".into());
                }
                if (r.size, r.mtime) != (c.size, c.mtime) {
                    what.push("content".into());
                } else if what.is_empty() {
                    what.push("status (ctime): touched in place".into());
                }
                finding(&path, "changed", what.join(", "), restore_seen(dir, os, r)?)
            }
            (None, None) => continue,
        };
        if fi.change != "added" {
            fi.reinstall = reinstall_cmd(root, &body.packages, &path);
        }
        out.push(fi);
    }
    Ok(out)
}

/// The command that puts a package's own copy of `path` back.
fn reinstall_cmd(root: &SysRoot, packages: &[String], path: &str) -> Option<String> {
    if let Ok(Some(db)) = upkeep_pkg::dpkg::Dpkg::open(root) {
        let owner = db
            .owners(Path::new(path), packages)
            .ok()
            .and_then(|o| o.first().cloned());
        if let Some(p) = owner {
            return Some(format!("apt-get install --reinstall {p}"));
        }
    }
    let rpm = upkeep_pkg::rpm::Rpm::open(root)?;
    rpm.owner(Path::new(path))
        .ok()?
        .map(|p| format!("dnf reinstall {}", p.name))
}

type Tainted = BTreeMap<String, Option<String>>;

fn load_tainted(root: &SysRoot) -> Result<Tainted> {
    let Some(dir) = state::existing_private_dir(root, "")? else {
        return Ok(Tainted::new());
    };
    match dir.read(
        Path::new(TAINTED),
        safefs::Resolve::NoLinks,
        safefs::limit::CONFIG,
    )? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Error::bad_input(dir.shown().join(TAINTED), Some(e.line()), e.to_string())
        }),
        None => Ok(Tainted::new()),
    }
}

/// Remembers paths the holder changed, with the digest each had before:
/// upkeep runs none of them unless its content is back.
fn taint(root: &SysRoot, paths: Vec<(String, Option<String>)>) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let mut all = load_tainted(root)?;
    let before = all.len();
    for (p, sum) in paths {
        all.entry(p).or_insert(sum);
    }
    if all.len() == before {
        return Ok(());
    }
    let data = serde_json::to_vec_pretty(&all).map_err(|e| Error::Failed(e.to_string()))?;
    state::private_dir(root, "")?.replace(OsStr::new(TAINTED), &data, &safefs::Keep::private())
}

/// Whether upkeep may run the program at `inside` (as seen in the root):
/// never from a directory an open lease lends (or the lent file itself);
/// after restore, a file the holder changed only if its content is what
/// it was at grant or what its package recorded. The host tool lookup
/// and detect call this before running anything.
pub fn may_run(root: &SysRoot, inside: &Path) -> Result<()> {
    let mut paths = vec![upkeep_sys::root::normalize_inside(inside)];
    if let Ok(Some(real)) = safefs::resolve_inside(root, inside) {
        paths.push(real);
    }
    if let Some(journal) = Journal::existing(root, LEASE_DIR)? {
        for l in load_all(&journal)? {
            for e in &l.body.entries {
                let lent = Path::new(&e.path);
                let hit = paths.iter().any(|p| match e.kind {
                    EntryKind::Dir => p.starts_with(lent) && p != lent,
                    EntryKind::File => p == lent,
                });
                if hit {
                    return Err(Error::Refused(format!(
                        "{}: {} is lent to {} (lease {}); upkeep runs nothing from it until it is given back (upkeep-lease restore)",
                        inside.display(),
                        e.path,
                        l.body.to.spec,
                        l.id
                    )));
                }
            }
        }
    }
    let tainted = load_tainted(root)?;
    for p in &paths {
        let key = p.display().to_string();
        let Some(expected) = tainted.get(&key) else {
            continue;
        };
        let Some((f, _)) = safefs::open_file(root, p)? else {
            continue;
        };
        let sum = safefs::sha256_bounded(&f, safefs::limit::BINARY)?;
        if sum.is_some() && &sum == expected {
            continue;
        }
        if package_checksum_matches(root, p, &f) {
            continue;
        }
        return Err(Error::Refused(format!(
            "{key}: changed while its directory was lent and not the same as before or as its package shipped it: not run (reinstall its package)"
        )));
    }
    Ok(())
}

fn package_checksum_matches(root: &SysRoot, path: &Path, f: &File) -> bool {
    let Ok(Some(db)) = upkeep_pkg::dpkg::Dpkg::open(root) else {
        return false;
    };
    let Ok(owners) = db.owners(path, &[]) else {
        return false;
    };
    let Ok(md5) = upkeep_pkg::dpkg::md5_file(f, path) else {
        return false;
    };
    owners
        .iter()
        .any(|pkg| matches!(db.recorded_md5(pkg, path), Ok(Some(s)) if s == md5))
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
    for mut lease in outer_first(leases) {
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
    for mut lease in outer_first(load_all(&journal)?) {
        let due = match lease.phase {
            Phase::Doing | Phase::Undoing => true,
            Phase::Done => lease.body.expires <= now,
        };
        if due {
            out.push(restore_lease(root, &journal, &mut lease)?);
        } else if is_moot(root, &lease.body) {
            // Still compared and taken back: a package upgrade that
            // re-roots the directory leaves what the holder added.
            let mut o = restore_lease(root, &journal, &mut lease)?;
            if o.result == LeaseResult::Restored && o.findings().next().is_none() {
                o.result = LeaseResult::Closed;
                o.message = Some(
                    "owner and mode are already back (a package upgrade restored them)".into(),
                );
            }
            out.push(o);
        }
    }
    Ok(out)
}

/// Leases on outer directories first: an inner lent directory can be
/// given back only once nothing above it is lent.
fn outer_first(mut leases: Vec<LeaseRecord>) -> Vec<LeaseRecord> {
    let depth = |l: &LeaseRecord| {
        l.body
            .entries
            .iter()
            .map(|e| Path::new(&e.path).components().count())
            .min()
            .unwrap_or(0)
    };
    leases.sort_by_key(depth);
    leases
}

/// Every path already has its recorded owner, group and mode again (an
/// Omnibus postinst re-roots its directories on upgrade).
fn is_moot(root: &SysRoot, body: &LeaseBody) -> bool {
    if let Some(pv) = &body.private {
        // The binary's path no longer holds the link: a package put a file
        // there. Restore then only takes the private directory back.
        let (name, _, _) = private_names(pv);
        return safefs::open_parent(root, Path::new(&pv.link))
            .and_then(|p| safefs::readlink_at(&p.fd, &name))
            .is_ok_and(|t| t.is_none_or(|t| t != OsStr::new(&pv.target)));
    }
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
