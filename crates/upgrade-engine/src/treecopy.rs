//! Verified copies of trees, for backups and restores.
//!
//! Each file is cloned (FICLONE: the copy shares the source's blocks, so
//! time does not follow the bytes on XFS or btrfs) where the filesystem
//! can; otherwise it is read once, hashed and written. Files go through a
//! few threads with one buffer each, so memory stays bounded whatever the
//! tree. The copy is synced once, then proven: a written file is read back
//! against the SHA-256 of what was read from the source; a clone by its
//! extent map, which must still be exactly the blocks it shares with the
//! source. The proofs become `SHA256SUMS` (the `sha256sum -c` format) and
//! `CLONES` (extent-map digests) in a backup.

use crate::fsops;
use nix::sys::stat::FileStat;
use sha2::{Digest, Sha256};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use upkeep_sys::error::IoContext;
use upkeep_sys::safe::{self, Dir, Keep, Kind, Resolve};
use upkeep_sys::{Error, Result, SysRoot};

/// One buffer per thread.
const BUF: usize = 1 << 20;
/// This many threads copy or read back (fewer for fewer files).
const MAX_THREADS: usize = 4;
pub const SUMS: &str = "SHA256SUMS";
pub const CLONES: &str = "CLONES";
/// Devices, FIFOs and sockets met in the tree: not data, not copied, but
/// named, so the backup does not pass for more than it holds.
pub const SKIPPED: &str = "SKIPPED";
/// What the backup is of (product, version, time): not data.
pub const META: &str = "backup.json";

/// How a copied file is proven to hold its source's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// SHA-256 of the bytes read from the source.
    Sha256(String),
    /// Digest of the block map the clone shared with its source when made:
    /// a write to the clone moves its blocks, and the map no longer matches.
    Extents(String),
}

/// The files of a backup (relative paths) and their proofs, and what was
/// left out.
#[derive(Debug, Default)]
pub struct Sums {
    proofs: Vec<(String, Proof)>,
    skipped: Vec<String>,
}

struct Job {
    src: Arc<Dir>,
    sname: OsString,
    dst: Arc<Dir>,
    dname: OsString,
    rel: String,
}

#[derive(Default)]
struct Walk {
    files: Vec<Job>,
    /// Directories made, deepest first: owner and mode are set once their
    /// content is in.
    dirs: Vec<(Dir, FileStat)>,
    /// The copy's top directory (device, inode): met again in the source,
    /// the copy would contain itself without end.
    top: Option<(u64, u64)>,
    skipped: Vec<String>,
}

impl Sums {
    pub fn new() -> Sums {
        Sums::default()
    }

    /// Copies `src` to `dst` (a new name) with owner, mode and
    /// capabilities, syncs it and reads it back; adds each file's proof,
    /// named `rel/...`.
    pub fn copy_tree(&mut self, root: &SysRoot, src: &Path, dst: &Path, rel: &str) -> Result<()> {
        let (sd, sn) = fsops::parent(root, src)?;
        let (dd, dn) = fsops::parent(root, dst)?;
        let (sd, dd) = (Arc::new(sd), Arc::new(dd));
        let mut walk = Walk::default();
        walk_at(&sd, &sn, &dd, &dn, rel, &mut walk)?;
        let proofs = parallel(&walk.files, copy_file)?;
        for (d, st) in &walk.dirs {
            safe::fchown(d, st.st_uid, st.st_gid)?;
            safe::fchmod(d, st.st_mode & 0o7777)?;
        }
        // Durable before it is read back: one syncfs, not an fsync a file.
        nix::unistd::syncfs(&*dd).map_err(|e| Error::io(dst, e.into()))?;
        dd.sync()?;
        let checks: Vec<(&Job, &Proof)> = walk.files.iter().zip(&proofs).collect();
        parallel(&checks, |(job, proof), buf| {
            let (f, _) = open(&job.dst, &job.dname)?;
            check(&f, proof, buf, &job.dst.shown().join(&job.dname))
        })?;
        let rels = walk.files.into_iter().map(|j| j.rel);
        self.proofs.extend(rels.zip(proofs));
        self.skipped.extend(walk.skipped);
        Ok(())
    }

    /// Adds a file written by someone else (a database dump), hashed.
    pub fn add_file(&mut self, root: &SysRoot, p: &Path, rel: &str) -> Result<()> {
        let (f, _) = fsops::open_regular(root, p)?;
        let mut buf = vec![0u8; BUF];
        self.proofs
            .push((rel.into(), Proof::Sha256(sha256_all(&f, &mut buf, p)?)));
        Ok(())
    }

    /// What was met and not copied (devices, FIFOs, sockets).
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Writes `SHA256SUMS` (and `CLONES` when anything was cloned,
    /// `SKIPPED` when anything was left out) into `dir`, each read back.
    pub fn write(&self, root: &SysRoot, dir: &Path) -> Result<()> {
        let skipped: String = self.skipped.iter().map(|r| format!("{r}\n")).collect();
        for (name, text) in [
            (SUMS, self.list(false)),
            (CLONES, self.list(true)),
            (SKIPPED, skipped),
        ] {
            if name != SUMS && text.is_empty() {
                continue;
            }
            let p = dir.join(name);
            fsops::write_private(root, &p, text.as_bytes())?;
            if fsops::read(root, &p)?.as_deref() != Some(text.as_bytes()) {
                return Err(Error::Failed(format!(
                    "{}: reads back differently",
                    p.display()
                )));
            }
        }
        Ok(())
    }

    fn list(&self, clones: bool) -> String {
        let mut text = String::new();
        for (rel, proof) in &self.proofs {
            match proof {
                Proof::Sha256(h) if !clones => text.push_str(&format!("{h}  {rel}\n")),
                Proof::Extents(h) if clones => text.push_str(&format!("{h}  {rel}\n")),
                _ => {}
            }
        }
        text
    }
}

/// Reads a backup directory back against its `SHA256SUMS` and `CLONES`.
pub fn verify(root: &SysRoot, dir: &Path) -> Result<()> {
    let mut items: Vec<(PathBuf, String, Proof)> = Vec::new();
    for name in [SUMS, CLONES] {
        let list = dir.join(name);
        let Some(bytes) = fsops::read(root, &list)? else {
            if name == SUMS {
                return Err(Error::Failed(format!("{}: missing", list.display())));
            }
            continue;
        };
        let text = safe::utf8(bytes, &list)?;
        for (n, line) in text.lines().enumerate() {
            let (want, rel) = line
                .split_once("  ")
                .filter(|(h, _)| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| Error::bad_input(&list, Some(n + 1), "not 'DIGEST  PATH'"))?;
            if !upkeep_sys::fsutil::is_clean_relative(rel) {
                return Err(Error::bad_input(&list, Some(n + 1), "bad path"));
            }
            let proof = match name {
                SUMS => Proof::Sha256(want.to_string()),
                _ => Proof::Extents(want.to_string()),
            };
            items.push((dir.join(rel), rel.to_string(), proof));
        }
    }
    let mut present = Vec::new();
    files_below(root, dir, "", &mut present)?;
    let listed: std::collections::HashSet<&str> =
        items.iter().map(|(_, r, _)| r.as_str()).collect();
    if let Some(extra) = present.iter().find(|f| !listed.contains(f.as_str())) {
        return Err(Error::Failed(format!(
            "{}: {extra} is not in its SHA256SUMS or CLONES: the backup cannot be proven whole",
            dir.display()
        )));
    }
    parallel(&items, |(p, rel, proof), buf| {
        let (f, _) = fsops::open_regular(root, p)
            .map_err(|e| Error::Failed(format!("{}: {rel}: {e}", dir.display())))?;
        check(&f, proof, buf, p).map_err(|_| {
            Error::Failed(format!(
                "{}: {rel} does not match its checksum",
                dir.display()
            ))
        })
    })?;
    Ok(())
}

/// What a backup left out (its `SKIPPED` list), as relative paths.
pub fn skipped_in(root: &SysRoot, dir: &Path) -> Result<Vec<String>> {
    let list = dir.join(SKIPPED);
    Ok(match fsops::read(root, &list)? {
        Some(bytes) => safe::utf8(bytes, &list)?
            .lines()
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    })
}

/// The backup's own files below `dir` (not its lists and metadata).
fn files_below(root: &SysRoot, dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
    for (name, kind) in fsops::entries(root, &dir.join(rel))? {
        let r = match rel {
            "" => name.to_string_lossy().into_owned(),
            _ => format!("{rel}/{}", name.to_string_lossy()),
        };
        match kind {
            Kind::Dir => files_below(root, dir, &r, out)?,
            Kind::File if rel.is_empty() && [SUMS, CLONES, SKIPPED, META].contains(&r.as_str()) => {
            }
            Kind::File => out.push(r),
            _ => {}
        }
    }
    Ok(())
}

fn walk_at(
    sd: &Arc<Dir>,
    sn: &OsStr,
    dd: &Arc<Dir>,
    dn: &OsStr,
    rel: &str,
    w: &mut Walk,
) -> Result<()> {
    let shown = dd.shown().join(dn);
    let Some(st) = sd.stat(Path::new(sn), Resolve::NoLinks, false)? else {
        return Ok(());
    };
    match Kind::of(&st) {
        Kind::Dir => {
            if w.top == Some((st.st_dev, st.st_ino)) {
                return Err(Error::bad_input(
                    sd.shown().join(sn),
                    None,
                    "is the copy being made (what is copied holds where the copy goes): it would copy itself without end",
                ));
            }
            dd.mkdir(dn, 0o700)?;
            let s2 = Arc::new(open_dir(sd, sn, &shown)?);
            let d2 = Arc::new(open_dir(dd, dn, &shown)?);
            if w.top.is_none() {
                let t = nix::sys::stat::fstat(&*d2).map_err(|e| Error::io(&shown, e.into()))?;
                w.top = Some((t.st_dev, t.st_ino));
            }
            for (name, _) in s2.entries()? {
                let r = format!("{rel}/{}", name.to_string_lossy());
                walk_at(&s2, &name, &d2, &name, &r, w)?;
            }
            let d2 = open_dir(dd, dn, &shown)?;
            w.dirs.push((d2, st));
            Ok(())
        }
        Kind::File => {
            w.files.push(Job {
                src: sd.clone(),
                sname: sn.to_owned(),
                dst: dd.clone(),
                dname: dn.to_owned(),
                rel: rel.to_string(),
            });
            Ok(())
        }
        Kind::Symlink => fsops::copy_symlink(sd, sn, dd, dn, &st),
        // What was asked for must be copied: a FIFO in its place is not
        // something to back up and call verified.
        Kind::Other if w.top.is_none() => Err(Error::Failed(format!(
            "{}: a device, FIFO or socket, not a file or directory: cannot be backed up",
            sd.shown().join(sn).display()
        ))),
        // Below it, sockets, FIFOs and devices are not data: left out, named.
        Kind::Other => {
            w.skipped.push(rel.to_string());
            Ok(())
        }
    }
}

fn open_dir(d: &Dir, name: &OsStr, shown: &Path) -> Result<Dir> {
    d.open_dir(Path::new(name), Resolve::NoLinks)?
        .ok_or_else(|| Error::Failed(format!("{}: vanished", shown.display())))
}

fn open(d: &Dir, name: &OsStr) -> Result<(File, FileStat)> {
    d.open_file(Path::new(name), Resolve::NoLinks)?
        .ok_or_else(|| Error::Failed(format!("{}: vanished", d.shown().join(name).display())))
}

/// One file: cloned where the filesystem can, else read, hashed, written.
fn copy_file(job: &Job, buf: &mut [u8]) -> Result<Proof> {
    let shown = job.dst.shown().join(&job.dname);
    let (f, st) = open(&job.src, &job.sname)?;
    let mut out = job.dst.create_new(&job.dname, 0o600)?;
    let proof = match rustix::fs::ioctl_ficlone(&out, &f) {
        Ok(()) => Proof::Extents(shared_extents(&f, &out, &shown)?),
        Err(e) if cannot_clone(e) => {
            out.set_len(0).at(&shown)?;
            let sum = copy_hashing(&f, &mut out, buf, &shown)?;
            start_writeback(&out);
            Proof::Sha256(sum)
        }
        Err(e) => return Err(Error::io(&shown, e.into())),
    };
    Keep::of(&f, &st)?.apply(&out, &shown)?;
    crate::progress::file_done(u64::try_from(st.st_size).unwrap_or(0));
    Ok(proof)
}

/// Starts writing the copy out now (Linux starts writeback of dirty pages
/// for DONTNEED, and keeps pages under writeback), so the disk works while
/// the next files are copied and the one syncfs at the end waits for
/// little. Only a head start: syncfs is what makes the copy durable, so a
/// failure here is not one.
fn start_writeback(out: &File) {
    let _ = rustix::fs::fadvise(out, 0, None, rustix::fs::Advice::DontNeed);
}

/// The errors that mean "this filesystem (pair) does not clone".
fn cannot_clone(e: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    [
        Errno::OPNOTSUPP,
        Errno::XDEV,
        Errno::INVAL,
        Errno::NOTTY,
        Errno::PERM,
        Errno::BADF,
    ]
    .contains(&e)
}

fn copy_hashing(f: &File, out: &mut File, buf: &mut [u8], shown: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let mut from = f;
    loop {
        let n = from.read(buf).at(shown)?;
        if n == 0 {
            return Ok(upkeep_sys::fsutil::hex(&h.finalize()));
        }
        h.update(&buf[..n]);
        out.write_all(&buf[..n]).at(shown)?;
    }
}

fn sha256_all(f: &File, buf: &mut [u8], shown: &Path) -> Result<String> {
    use std::io::Seek;
    let mut from = f;
    from.seek(std::io::SeekFrom::Start(0)).at(shown)?;
    let mut h = Sha256::new();
    loop {
        let n = from.read(buf).at(shown)?;
        if n == 0 {
            return Ok(upkeep_sys::fsutil::hex(&h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// The digest of a clone's extent map, after checking that the source
/// maps to exactly the same blocks and that every one is shared.
fn shared_extents(src: &File, clone: &File, shown: &Path) -> Result<String> {
    let theirs = extent_map(src, shown)?;
    let ours = extent_map(clone, shown)?;
    if theirs != ours || !ours.iter().all(|e| e.shared) {
        return Err(Error::Failed(format!(
            "{}: the clone does not share its source's blocks",
            shown.display()
        )));
    }
    Ok(extent_digest(&ours))
}

#[derive(Debug, PartialEq, Eq)]
struct Extent {
    logical: u64,
    physical: u64,
    length: u64,
    shared: bool,
}

/// The file's block map, with runs that continue each other (in the file
/// and on disk) merged: how the filesystem happens to split or flag them
/// (a shared run splits once the source is rewritten) does not count.
fn extent_map(f: &File, shown: &Path) -> Result<Vec<Extent>> {
    let mut map: Vec<Extent> = Vec::new();
    for e in fiemap::Fiemap::new(f) {
        let e = e.map_err(|e| Error::io(shown, e))?;
        let next = Extent {
            logical: e.fe_logical,
            physical: e.fe_physical,
            length: e.fe_length,
            shared: e.fe_flags.contains(fiemap::FiemapExtentFlags::SHARED),
        };
        match map.last_mut() {
            Some(last)
                if last.logical + last.length == next.logical
                    && last.physical + last.length == next.physical =>
            {
                last.length += next.length;
                last.shared &= next.shared;
            }
            _ => map.push(next),
        }
    }
    Ok(map)
}

fn extent_digest(map: &[Extent]) -> String {
    let mut h = Sha256::new();
    for e in map {
        h.update(format!("{} {} {}\n", e.logical, e.physical, e.length));
    }
    upkeep_sys::fsutil::hex(&h.finalize())
}

/// Reads a copy back against its proof.
fn check(f: &File, proof: &Proof, buf: &mut [u8], shown: &Path) -> Result<()> {
    let ok = match proof {
        Proof::Sha256(want) => &sha256_all(f, buf, shown)? == want,
        Proof::Extents(want) => &extent_digest(&extent_map(f, shown)?) == want,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "{}: reads back differently than written",
            shown.display()
        )))
    }
}

/// Runs `work` on every item with a few threads, one buffer each, in the
/// items' order; the first error stops the rest.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T, &mut [u8]) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    // Not capped by the cores: a copy mostly waits for the disk, and more
    // reads in flight keep it busier (cold data: 2 threads took 11.4 s for
    // 2 GiB, 4 took 8.1 s, on 2 cores).
    let threads = MAX_THREADS.min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let worker = || -> Result<Vec<(usize, R)>> {
        let mut buf = vec![0u8; BUF];
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            match work(item, &mut buf) {
                Ok(r) => done.push((i, r)),
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        Ok(done)
    };
    let results: Vec<Result<Vec<(usize, R)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Failed("a copy thread panicked".into())))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(items.len());
    for r in results {
        all.extend(r?);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, r)| r).collect())
}
