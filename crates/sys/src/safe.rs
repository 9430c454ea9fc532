//! The one safe-file layer (after uutils' `safe_traversal.rs`). Every file
//! upkeep reads, writes or runs is reached from the root's descriptor:
//!
//! - [`Resolve::InRoot`] follows links the way the system itself would if
//!   the root were `/` (`openat2(RESOLVE_IN_ROOT)`): an absolute link means
//!   the root's own `/`, and `..` never climbs out;
//! - [`Resolve::NoLinks`] refuses a link anywhere on the way, for paths
//!   another user may control (leases);
//! - files are opened non-blocking, only regular files are read, and every
//!   read is bounded, so a FIFO, a device or a huge sparse file never hangs
//!   a hook;
//! - changes are made relative to an opened directory (create, mkdir,
//!   rename with `RENAME_EXCHANGE`/`RENAME_NOREPLACE`, unlink), and owner,
//!   mode and capabilities on the opened descriptor;
//! - [`Dir::replace`] is the one atomic replace.

// This is the layer the lint points everyone else to.
#![allow(clippy::disallowed_methods)]

use crate::error::{Error, IoContext, Result};
use crate::root::SysRoot;
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, RenameFlags, ResolveFlag};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The capability attribute a chown silently drops.
pub const CAP_XATTR: &str = "security.capability";

/// Read bounds, by what is read. A file above its bound is bad input.
pub mod limit {
    /// Small configuration: upkeep.toml, manifests, VERSION files, passwd.
    pub const CONFIG: u64 = 16 << 20;
    /// Package databases: dpkg's status, file lists, md5sums.
    pub const DATABASE: u64 = 1 << 30;
    /// A product binary scanned for its edition.
    pub const BINARY: u64 = 4 << 30;
}

/// How a path inside the root is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// Links are followed inside the root, as the system would.
    InRoot,
    /// Any link on the way (or at the end) is refused.
    NoLinks,
}

impl Resolve {
    fn flags(self) -> ResolveFlag {
        match self {
            Resolve::InRoot => ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            Resolve::NoLinks => ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS,
        }
    }
}

/// What kind of entry stands at a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// Device, FIFO or socket: never opened for reading.
    Other,
}

impl Kind {
    pub fn of(st: &FileStat) -> Kind {
        match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFREG => Kind::File,
            SFlag::S_IFDIR => Kind::Dir,
            SFlag::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

/// A path inside the root as a relative path for `*at` calls ("." for `/`).
/// `..` is kept: the kernel clamps it at the root for [`Resolve::InRoot`]
/// and refuses it for [`Resolve::NoLinks`].
pub fn relative(inside: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in inside.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => out.push(".."),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

fn errno_io(path: &Path, e: Errno) -> Error {
    Error::io(path, std::io::Error::from(e))
}

/// An open directory and the machine path it stands for (for messages).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    shown: PathBuf,
}

impl AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The root itself, opened. A root that is not there is a usage error.
pub fn open_root(root: &SysRoot) -> Result<Dir> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    match nix::fcntl::open(root.dir(), flags, Mode::empty()) {
        Ok(fd) => Ok(Dir {
            fd,
            shown: root.dir().to_path_buf(),
        }),
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Err(Error::Usage(format!(
            "--root {}: no such directory",
            root.dir().display()
        ))),
        Err(e) => Err(errno_io(root.dir(), e)),
    }
}

impl Dir {
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    fn child(&self, rel: &Path) -> PathBuf {
        if rel == Path::new(".") {
            self.shown.clone()
        } else {
            self.shown.join(rel)
        }
    }

    /// `openat2` below this directory; `Ok(None)` when nothing is there.
    fn open_at(&self, rel: &Path, flags: OFlag, how: Resolve) -> Result<Option<OwnedFd>> {
        let oh = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(how.flags());
        loop {
            match openat2(&self.fd, rel, oh) {
                Ok(fd) => return Ok(Some(fd)),
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
                Err(Errno::ENOENT) => return Ok(None),
                Err(Errno::ELOOP) | Err(Errno::EXDEV) if how == Resolve::NoLinks => {
                    return Err(Error::Refused(format!(
                        "{}: a symlink on the way (not followed)",
                        self.child(rel).display()
                    )))
                }
                Err(Errno::ELOOP) => {
                    return Err(Error::bad_input(
                        self.child(rel),
                        None,
                        "too many levels of symbolic links",
                    ))
                }
                Err(Errno::ENOTDIR) => return Ok(None),
                Err(e) => return Err(errno_io(&self.child(rel), e)),
            }
        }
    }

    /// The directory at `rel`, resolved as `how` says.
    pub fn open_dir(&self, rel: &Path, how: Resolve) -> Result<Option<Dir>> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        Ok(self.open_at(rel, flags, how)?.map(|fd| Dir {
            fd,
            shown: self.child(rel),
        }))
    }

    /// Opens a regular file for reading without blocking. Something other
    /// than a regular file is bad input and is never opened for reading.
    pub fn open_file(&self, rel: &Path, how: Resolve) -> Result<Option<(File, FileStat)>> {
        let shown = self.child(rel);
        // O_PATH first: opening a FIFO or a device for reading could block
        // or have effects. Only the regular file checked is then reopened.
        let mut flags = OFlag::O_PATH;
        if how == Resolve::NoLinks {
            flags |= OFlag::O_NOFOLLOW;
        }
        let Some(probe) = self.open_at(rel, flags, how)? else {
            return Ok(None);
        };
        let st = fstat(&probe).map_err(|e| errno_io(&shown, e))?;
        match Kind::of(&st) {
            Kind::File => {}
            Kind::Symlink => {
                return Err(Error::Refused(format!(
                    "{}: is a symlink (not followed)",
                    shown.display()
                )))
            }
            _ => return Err(not_regular(&shown, &st)),
        }
        let read = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::open(
            format!("/proc/self/fd/{}", probe.as_raw_fd()).as_str(),
            read,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            // No /proc (a bare chroot): open again by name and re-check.
            Err(Errno::ENOENT) => {
                match self.open_at(rel, read | (flags & OFlag::O_NOFOLLOW), how)? {
                    Some(fd) => fd,
                    None => return Ok(None),
                }
            }
            Err(e) => return Err(errno_io(&shown, e)),
        };
        let now = fstat(&fd).map_err(|e| errno_io(&shown, e))?;
        if Kind::of(&now) != Kind::File || now.st_ino != st.st_ino || now.st_dev != st.st_dev {
            return Err(not_regular(&shown, &now));
        }
        Ok(Some((File::from(fd), now)))
    }

    /// The whole content of a regular file, at most `max` bytes.
    pub fn read(&self, rel: &Path, how: Resolve, max: u64) -> Result<Option<Vec<u8>>> {
        let Some((f, st)) = self.open_file(rel, how)? else {
            return Ok(None);
        };
        read_bounded(f, &st, max, &self.child(rel)).map(Some)
    }

    /// `lstat` (final link not followed) or `stat` (followed in the root).
    pub fn stat(&self, rel: &Path, how: Resolve, follow: bool) -> Result<Option<FileStat>> {
        let mut flags = OFlag::O_PATH;
        if !follow {
            flags |= OFlag::O_NOFOLLOW;
        }
        let Some(fd) = self.open_at(rel, flags, how)? else {
            return Ok(None);
        };
        fstat(&fd)
            .map(Some)
            .map_err(|e| errno_io(&self.child(rel), e))
    }

    /// The names in this directory with their kinds (not followed).
    pub fn entries(&self) -> Result<Vec<(OsString, Kind)>> {
        let dup = openat(
            &self.fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno_io(&self.shown, e))?;
        let mut d = nix::dir::Dir::from_fd(dup).map_err(|e| errno_io(&self.shown, e))?;
        let mut out = Vec::new();
        for entry in d.iter() {
            let entry = entry.map_err(|e| errno_io(&self.shown, e))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let kind = match self.stat(Path::new(name), Resolve::NoLinks, false) {
                Ok(Some(st)) => Kind::of(&st),
                Ok(None) => continue,
                Err(_) => Kind::Symlink,
            };
            out.push((name.to_os_string(), kind));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Creates `name` here, exclusively (never following or replacing).
    pub fn create_new(&self, name: &OsStr, mode: u32) -> Result<File> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
        let fd = openat(
            &self.fd,
            name,
            flags | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode & 0o777),
        )
        .map_err(|e| errno_io(&self.child(Path::new(name)), e))?;
        let f = File::from(fd);
        // The umask may have narrowed it.
        fchmod(&f, mode)?;
        Ok(f)
    }

    /// Opens `name` here for appending, creating it with `mode`; a link or
    /// anything but a regular file is refused.
    pub fn open_append(&self, name: &OsStr, mode: u32) -> Result<File> {
        self.open_writable(name, mode, OFlag::O_WRONLY | OFlag::O_APPEND)
    }

    /// Opens (creating with `mode`) `name` here for reading and writing,
    /// without truncating; a link or anything but a regular file is refused.
    pub fn open_rw(&self, name: &OsStr, mode: u32) -> Result<File> {
        self.open_writable(name, mode, OFlag::O_RDWR)
    }

    fn open_writable(&self, name: &OsStr, mode: u32, access: OFlag) -> Result<File> {
        let flags =
            access | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let shown = self.child(Path::new(name));
        let fd = openat(&self.fd, name, flags, Mode::from_bits_truncate(mode))
            .map_err(|e| errno_io(&shown, e))?;
        let st = fstat(&fd).map_err(|e| errno_io(&shown, e))?;
        if Kind::of(&st) != Kind::File {
            return Err(not_regular(&shown, &st));
        }
        Ok(File::from(fd))
    }

    /// Creates directory `name` with `mode`; `false` if one is there.
    pub fn mkdir(&self, name: &OsStr, mode: u32) -> Result<bool> {
        let shown = self.child(Path::new(name));
        match nix::sys::stat::mkdirat(&self.fd, name, Mode::from_bits_truncate(mode)) {
            Ok(()) => {
                if let Some(d) = self.open_dir(Path::new(name), Resolve::NoLinks)? {
                    fchmod_fd(&d, mode, &shown)?;
                }
                Ok(true)
            }
            Err(Errno::EEXIST) => Ok(false),
            Err(e) => Err(errno_io(&shown, e)),
        }
    }

    /// Renames `from` here to `to` in `to_dir`.
    pub fn rename(&self, from: &OsStr, to_dir: &Dir, to: &OsStr, how: Rename) -> Result<()> {
        let flags = match how {
            Rename::Replace => RenameFlags::empty(),
            Rename::NoReplace => RenameFlags::RENAME_NOREPLACE,
            Rename::Exchange => RenameFlags::RENAME_EXCHANGE,
        };
        nix::fcntl::renameat2(&self.fd, from, &to_dir.fd, to, flags)
            .map_err(|e| errno_io(&to_dir.child(Path::new(to)), e))
    }

    /// Removes the file or link `name`; `false` if it was not there.
    pub fn unlink(&self, name: &OsStr) -> Result<bool> {
        use nix::unistd::{unlinkat, UnlinkatFlags};
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(errno_io(&self.child(Path::new(name)), e)),
        }
    }

    /// Removes the empty directory `name`; `false` if it was not there.
    pub fn rmdir(&self, name: &OsStr) -> Result<bool> {
        use nix::unistd::{unlinkat, UnlinkatFlags};
        match unlinkat(&self.fd, name, UnlinkatFlags::RemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(errno_io(&self.child(Path::new(name)), e)),
        }
    }

    /// fsync of the directory itself, making renames and unlinks durable.
    pub fn sync(&self) -> Result<()> {
        nix::unistd::fsync(&self.fd).map_err(|e| errno_io(&self.shown, e))
    }

    /// Replaces `name` atomically and durably: a temporary file in this
    /// directory written with `data`, given `keep`'s owner, group, mode and
    /// capabilities (in that order: a chown clears capabilities), fsynced,
    /// renamed over, and the directory fsynced. A crash leaves the old or
    /// the new content, never a mix; a failure leaves the old.
    pub fn replace(&self, name: &OsStr, data: &[u8], keep: &Keep) -> Result<()> {
        let tmp = temp_name(name);
        let shown = self.child(Path::new(name));
        let written = (|| {
            let mut f = self.create_new(&tmp, 0o600)?;
            f.write_all(data).at(&shown)?;
            keep.apply(&f, &shown)?;
            f.sync_all().at(&shown)?;
            crate::fault::point("safe:before-rename");
            self.rename(&tmp, self, name, Rename::Replace)
        })();
        if let Err(e) = written {
            let _ = self.unlink(&tmp);
            return Err(e);
        }
        self.sync()
    }

    /// Like [`Dir::replace`], but only when `name` is still the file
    /// `expected` describes (same inode, size and mtime): someone who
    /// changed it meanwhile is not overwritten (busy).
    pub fn replace_if_unchanged(
        &self,
        name: &OsStr,
        data: &[u8],
        keep: &Keep,
        expected: &FileStat,
    ) -> Result<()> {
        let now = self.stat(Path::new(name), Resolve::NoLinks, false)?;
        let same = now.is_some_and(|n| {
            n.st_ino == expected.st_ino
                && n.st_dev == expected.st_dev
                && n.st_size == expected.st_size
                && n.st_mtime == expected.st_mtime
                && n.st_mtime_nsec == expected.st_mtime_nsec
        });
        if !same {
            return Err(Error::Busy(format!(
                "{} changed while upkeep was working on it; nothing written",
                self.child(Path::new(name)).display()
            )));
        }
        self.replace(name, data, keep)
    }
}

fn temp_name(name: &OsStr) -> OsString {
    let mut t = OsString::from(".");
    t.push(name);
    t.push(format!(".upkeep-tmp.{}", std::process::id()));
    t
}

/// How [`Dir::rename`] treats what stands at the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rename {
    Replace,
    /// Fails if the target exists.
    NoReplace,
    /// Swaps the two atomically; both must exist.
    Exchange,
}

/// The owner, group, mode and capabilities a written file gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keep {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub capability: Option<Vec<u8>>,
}

impl Keep {
    /// upkeep's own state: the caller's, 0600.
    pub fn private() -> Keep {
        Keep {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            mode: 0o600,
            capability: None,
        }
    }

    /// What an existing file has, to be kept across a replace.
    pub fn of(f: &File, st: &FileStat) -> Result<Keep> {
        Ok(Keep {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
            capability: get_capability(f)?,
        })
    }

    /// Applies owner, mode, then capabilities, and reads them back.
    pub fn apply(&self, f: &File, shown: &Path) -> Result<()> {
        fchown(f, self.uid, self.gid)?;
        fchmod(f, self.mode)?;
        if let Some(cap) = &self.capability {
            set_capability(f, cap)?;
        }
        let st = fstat(f).map_err(|e| errno_io(shown, e))?;
        let back = Keep::of(f, &st)?;
        if &back != self {
            return Err(Error::Failed(format!(
                "{}: owner, mode or capabilities did not take (wanted {}:{} {:04o}, got {}:{} {:04o})",
                shown.display(),
                self.uid,
                self.gid,
                self.mode,
                back.uid,
                back.gid,
                back.mode
            )));
        }
        Ok(())
    }
}

fn not_regular(shown: &Path, st: &FileStat) -> Error {
    let what = match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFCHR | SFlag::S_IFBLK => "a device",
        SFlag::S_IFSOCK => "a socket",
        _ => "not a regular file",
    };
    Error::bad_input(
        shown,
        None,
        format!("is {what}, not a regular file: not read"),
    )
}

/// Reads an open regular file whole, refusing more than `max` bytes (the
/// size is checked first and the read is capped too: a file may grow).
pub fn read_bounded(f: File, st: &FileStat, max: u64, shown: &Path) -> Result<Vec<u8>> {
    let too_big = || Error::bad_input(shown, None, format!("is larger than {max} bytes: not read"));
    if st.st_size as u64 > max {
        return Err(too_big());
    }
    let mut buf = Vec::with_capacity(st.st_size as usize);
    f.take(max + 1).read_to_end(&mut buf).at(shown)?;
    if buf.len() as u64 > max {
        return Err(too_big());
    }
    Ok(buf)
}

/// Bytes as UTF-8 text, or bad input naming the first bad line.
pub fn utf8(bytes: Vec<u8>, shown: &Path) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        Error::bad_input(shown, Some(line), "not valid UTF-8")
    })
}

// ---- Path-level helpers: each opens the root and resolves inside it. ----

/// The content of the regular file at `inside`, resolved in the root;
/// `None` if it is not there.
pub fn read(root: &SysRoot, inside: impl AsRef<Path>, max: u64) -> Result<Option<Vec<u8>>> {
    open_root(root)?.read(&relative(inside.as_ref()), Resolve::InRoot, max)
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(
    root: &SysRoot,
    inside: impl AsRef<Path>,
    max: u64,
) -> Result<Option<String>> {
    let inside = inside.as_ref();
    match read(root, inside, max)? {
        Some(b) => utf8(b, &root.path(inside)).map(Some),
        None => Ok(None),
    }
}

/// The regular file at `inside`, opened for reading (non-blocking).
pub fn open_file(root: &SysRoot, inside: impl AsRef<Path>) -> Result<Option<(File, FileStat)>> {
    open_root(root)?.open_file(&relative(inside.as_ref()), Resolve::InRoot)
}

/// `stat` (`follow`) or `lstat` of `inside`, resolved in the root.
pub fn stat(root: &SysRoot, inside: impl AsRef<Path>, follow: bool) -> Result<Option<FileStat>> {
    open_root(root)?.stat(&relative(inside.as_ref()), Resolve::InRoot, follow)
}

/// The directory at `inside`, resolved in the root.
pub fn open_dir(root: &SysRoot, inside: impl AsRef<Path>) -> Result<Option<Dir>> {
    open_root(root)?.open_dir(&relative(inside.as_ref()), Resolve::InRoot)
}

/// The directory at `inside`, resolved in the root; missing components are
/// created with `mode` (0755 as dpkg's, or 0700 for private state).
pub fn create_dir_all(root: &SysRoot, inside: impl AsRef<Path>, mode: u32) -> Result<Dir> {
    let top = open_root(root)?;
    let mut dir = open_root(root)?;
    let mut prefix = PathBuf::new();
    for part in relative(inside.as_ref()).components() {
        let name = part.as_os_str();
        if name == "." {
            continue;
        }
        prefix.push(name);
        // Always resolved from the root: a link met on the way means the
        // root's own `/`, never a directory of the machine.
        if let Some(next) = top.open_dir(&prefix, Resolve::InRoot)? {
            dir = next;
            continue;
        }
        if !dir.mkdir(name, mode)? {
            return Err(Error::Failed(format!(
                "{}: is a symlink to nothing or not a directory",
                root.path(&prefix).display()
            )));
        }
        dir.sync()?;
        dir = dir
            .open_dir(Path::new(name), Resolve::NoLinks)?
            .ok_or_else(|| {
                Error::Failed(format!(
                    "{}: vanished after mkdir",
                    root.path(&prefix).display()
                ))
            })?;
    }
    Ok(dir)
}

/// Where `inside` really is on this machine, links resolved in the root:
/// the path to run a program of the root by. `None` if not there.
pub fn resolve(root: &SysRoot, inside: impl AsRef<Path>) -> Result<Option<PathBuf>> {
    let rel = relative(inside.as_ref());
    let top = open_root(root)?;
    let Some(fd) = top.open_at(&rel, OFlag::O_PATH, Resolve::InRoot)? else {
        return Ok(None);
    };
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let real = std::fs::read_link(&link).at(Path::new(&link))?;
    let base = std::fs::read_link(format!("/proc/self/fd/{}", top.fd.as_raw_fd())).at(root.dir())?;
    // The kernel kept it inside; say so loudly if that ever fails.
    if !real.starts_with(&base) {
        return Err(Error::Refused(format!(
            "{}: resolves outside the root",
            root.path(inside.as_ref()).display()
        )));
    }
    Ok(Some(real))
}

/// Where `inside` really is, as seen inside the root (links resolved in
/// the root). `None` if not there.
pub fn resolve_inside(root: &SysRoot, inside: impl AsRef<Path>) -> Result<Option<PathBuf>> {
    let Some(real) = resolve(root, inside)? else {
        return Ok(None);
    };
    let top = open_root(root)?;
    let base = std::fs::read_link(format!("/proc/self/fd/{}", top.fd.as_raw_fd())).at(root.dir())?;
    Ok(real
        .strip_prefix(&base)
        .ok()
        .map(|rel| Path::new("/").join(rel)))
}

/// The directory holding `inside` (resolved in the root) and the final name.
pub fn parent_of(root: &SysRoot, inside: &Path) -> Result<Option<(Dir, OsString)>> {
    let rel = relative(inside);
    let name = rel
        .file_name()
        .ok_or_else(|| Error::Usage(format!("{}: names no file", inside.display())))?
        .to_os_string();
    let parent = rel.parent().unwrap_or(Path::new("."));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    Ok(open_root(root)?
        .open_dir(parent, Resolve::InRoot)?
        .map(|d| (d, name)))
}

// ---- A strict walk that records every directory on the way (leases). ----

/// A directory on the way to a path, with what it looked like when opened.
#[derive(Debug)]
pub struct Ancestor {
    pub path: PathBuf,
    pub stat: FileStat,
}

/// The parent directory of a path, opened component by component without
/// following any link, and the final name inside it.
#[derive(Debug)]
pub struct Parent {
    pub fd: File,
    pub name: OsString,
    /// From the root down to and including the parent itself.
    pub ancestors: Vec<Ancestor>,
}

fn refuse_at(inside: &Path, why: impl std::fmt::Display) -> Error {
    Error::Refused(format!("{}: {why}", inside.display()))
}

fn open_dir_at(dirfd: &File, name: &OsStr) -> std::result::Result<OwnedFd, Errno> {
    openat(
        dirfd,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Opens the parent of `inside` under `root`. A symlink anywhere on the
/// way is refused; so is `..`.
pub fn open_parent(root: &SysRoot, inside: &Path) -> Result<Parent> {
    let mut names = Vec::new();
    for c in inside.components() {
        match c {
            Component::Normal(n) => names.push(n.to_os_string()),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(refuse_at(inside, "'..' is not allowed"))
            }
        }
    }
    let name = names
        .pop()
        .ok_or_else(|| refuse_at(inside, "is the root itself"))?;
    let root_fd = File::from(open_root(root)?.fd);
    let mut ancestors = vec![Ancestor {
        path: PathBuf::from("/"),
        stat: fstat(&root_fd).map_err(|e| Error::io(root.dir(), e.into()))?,
    }];
    let mut fd = root_fd;
    let mut here = PathBuf::from("/");
    for n in names {
        here.push(&n);
        let next = match open_dir_at(&fd, &n) {
            Ok(f) => File::from(f),
            Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                return Err(refuse_at(
                    inside,
                    format!("{} is a symlink or not a directory", here.display()),
                ))
            }
            // Not there is no policy question: a plain failure naming it.
            Err(Errno::ENOENT) => {
                return Err(Error::Failed(format!(
                    "{}: {} does not exist",
                    inside.display(),
                    here.display()
                )))
            }
            Err(e) => return Err(Error::io(&here, e.into())),
        };
        ancestors.push(Ancestor {
            path: here.clone(),
            stat: fstat(&next).map_err(|e| Error::io(&here, e.into()))?,
        });
        fd = next;
    }
    Ok(Parent {
        fd,
        name,
        ancestors,
    })
}

/// What stands at a name inside a directory, without following it.
#[derive(Debug)]
pub enum Entry {
    File(File, FileStat),
    Dir(File, FileStat),
    Symlink,
    Missing,
    /// Device, FIFO or socket: never opened (a FIFO would block).
    Other,
}

pub fn open_entry(parent: &File, name: &OsStr) -> Result<Entry> {
    use nix::sys::stat::{fstatat, FileStat};
    let st: FileStat = match fstatat(parent, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(Entry::Missing),
        Err(e) => return Err(Error::io(Path::new(name), e.into())),
    };
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let open = |extra: OFlag| match openat(parent, name, flags | extra, Mode::empty()) {
        Ok(fd) => Ok(Some(File::from(fd))),
        // Swapped for a link between the look and the open.
        Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => Ok(None),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(Error::io(Path::new(name), e.into())),
    };
    Ok(match kind {
        SFlag::S_IFLNK => Entry::Symlink,
        SFlag::S_IFREG => match open(OFlag::empty())? {
            Some(f) => {
                let st = fstat(&f).map_err(|e| Error::io(Path::new(name), e.into()))?;
                if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
                    Entry::Other
                } else {
                    Entry::File(f, st)
                }
            }
            None => Entry::Symlink,
        },
        SFlag::S_IFDIR => match open(OFlag::O_DIRECTORY)? {
            Some(f) => {
                let st = fstat(&f).map_err(|e| Error::io(Path::new(name), e.into()))?;
                Entry::Dir(f, st)
            }
            None => Entry::Symlink,
        },
        _ => Entry::Other,
    })
}

// ---- On an opened descriptor. ----

/// Whether anyone but root could change entries of this directory.
pub fn writable_by_non_root(st: &FileStat) -> bool {
    let mode = st.st_mode;
    st.st_uid != 0 || mode & 0o002 != 0 || (mode & 0o020 != 0 && st.st_gid != 0)
}

pub fn fchown(f: &impl AsFd, uid: u32, gid: u32) -> Result<()> {
    nix::unistd::fchown(f, Some(uid.into()), Some(gid.into()))
        .map_err(|e| errno_io(Path::new("<fd>"), e))
}

pub fn fchmod(f: &impl AsFd, mode: u32) -> Result<()> {
    fchmod_fd(f, mode, Path::new("<fd>"))
}

fn fchmod_fd(f: &impl AsFd, mode: u32, shown: &Path) -> Result<()> {
    nix::sys::stat::fchmod(f, Mode::from_bits_truncate(mode & 0o7777))
        .map_err(|e| errno_io(shown, e))
}

pub fn get_capability(f: &File) -> Result<Option<Vec<u8>>> {
    use xattr::FileExt;
    match f.get_xattr(CAP_XATTR) {
        Ok(v) => Ok(v),
        // Filesystems without xattrs have no capabilities to lose.
        Err(e) if e.raw_os_error() == Some(Errno::EOPNOTSUPP as i32) => Ok(None),
        Err(e) => Err(Error::io(Path::new(CAP_XATTR), e)),
    }
}

pub fn set_capability(f: &File, value: &[u8]) -> Result<()> {
    use xattr::FileExt;
    f.set_xattr(CAP_XATTR, value)
        .map_err(|e| Error::io(Path::new(CAP_XATTR), e))
}

/// sha256 of an open file's content, hex, reading at most `max` bytes.
pub fn sha256_file(f: &File) -> Result<String> {
    use std::io::Seek;
    let mut f = f;
    let fd = |e| Error::io(Path::new("<fd>"), e);
    f.seek(std::io::SeekFrom::Start(0)).map_err(fd)?;
    crate::fsutil::hex_digest::<sha2::Sha256>(f.take(limit::BINARY)).map_err(fd)
}

// ---- Lent directories (leases): listing, every xattr, taking back. ----

/// The names in an opened directory (not `.`/`..`), sorted; at most `max`
/// of them, and whether that was all.
pub fn names_in(dir: &File, max: usize) -> Result<(Vec<OsString>, bool)> {
    let shown = Path::new("<dir>");
    let dup = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| errno_io(shown, e))?;
    let mut d = nix::dir::Dir::from_fd(dup).map_err(|e| errno_io(shown, e))?;
    let mut out = Vec::new();
    let mut complete = true;
    for entry in d.iter() {
        let entry = entry.map_err(|e| errno_io(shown, e))?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        if out.len() >= max {
            complete = false;
            break;
        }
        out.push(name.to_os_string());
    }
    out.sort();
    Ok((out, complete))
}

/// `lstat` of `name` in an opened directory; `None` if not there.
pub fn lstat_at(dir: &File, name: &OsStr) -> Result<Option<FileStat>> {
    match nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(errno_io(Path::new(name), e)),
    }
}

/// When the inode at `name` in an opened directory was made (statx
/// `stx_btime`, nanoseconds since the epoch), not followed; `None` if not
/// there or where the filesystem keeps no birth time.
///
/// The kernel sets it once, when it makes the inode, and no system call
/// sets it afterwards (utimensat changes only access and modify times), so
/// a file removed and made again under the same inode number (ext4 hands
/// a freed number out again at once) has a later birth time. ext4 (with
/// its default 256-byte inodes), tmpfs, xfs and btrfs keep it.
pub fn birth_at(dir: &File, name: &OsStr) -> Result<Option<i64>> {
    use rustix::fs::{statx, AtFlags, StatxFlags};
    birth(
        statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BTIME),
        Path::new(name),
    )
}

/// [`birth_at`] of an open file or directory.
pub fn birth_of(f: &File) -> Result<Option<i64>> {
    use rustix::fs::{statx, AtFlags, StatxFlags};
    birth(
        statx(f, "", AtFlags::EMPTY_PATH, StatxFlags::BTIME),
        Path::new("(open file)"),
    )
}

fn birth(sx: rustix::io::Result<rustix::fs::Statx>, shown: &Path) -> Result<Option<i64>> {
    use rustix::io::Errno as E;
    match sx {
        Ok(sx) if sx.stx_mask & rustix::fs::StatxFlags::BTIME.bits() != 0 => Ok(Some(
            sx.stx_btime
                .tv_sec
                .saturating_mul(1_000_000_000)
                .saturating_add(i64::from(sx.stx_btime.tv_nsec)),
        )),
        // Not there; no birth time kept; no statx (old kernel, seccomp).
        Ok(_) | Err(E::NOENT) | Err(E::NOSYS) => Ok(None),
        Err(e) => Err(errno_io(shown, Errno::from_raw(e.raw_os_error()))),
    }
}

fn xattr_unsupported(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(Errno::EOPNOTSUPP as i32)
}

/// Every extended attribute of an open file or directory (POSIX ACLs,
/// capabilities, user.* and the rest), sorted by name.
pub fn xattrs(f: &File) -> Result<Vec<(String, Vec<u8>)>> {
    use xattr::FileExt;
    let names = match f.list_xattr() {
        Ok(n) => n,
        Err(e) if xattr_unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(Path::new("<xattrs>"), e)),
    };
    let mut out = Vec::new();
    for n in names {
        let name = n.to_string_lossy().into_owned();
        match f.get_xattr(&n) {
            Ok(Some(v)) => out.push((name, v)),
            Ok(None) => {}
            Err(e) => return Err(Error::io(Path::new(&name), e)),
        }
    }
    out.sort();
    Ok(out)
}

pub fn set_xattr(f: &File, name: &str, value: &[u8]) -> Result<()> {
    use xattr::FileExt;
    f.set_xattr(name, value)
        .map_err(|e| Error::io(Path::new(name), e))
}

/// Removes an extended attribute; `false` if it was not there.
pub fn remove_xattr(f: &File, name: &str) -> Result<bool> {
    use xattr::FileExt;
    match f.remove_xattr(name) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(Errno::ENODATA as i32) => Ok(false),
        Err(e) => Err(Error::io(Path::new(name), e)),
    }
}

/// `lchown` of `name` in an opened directory: a link itself, never what
/// it points at.
pub fn lchown_at(dir: &File, name: &OsStr, uid: u32, gid: u32) -> Result<()> {
    nix::unistd::fchownat(
        dir,
        name,
        Some(uid.into()),
        Some(gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| errno_io(Path::new(name), e))
}

/// `chmod` of `name` in an opened directory, for entries that cannot be
/// opened (a FIFO, a socket). The caller has checked, in a directory no
/// one else can change, that it is no link.
pub fn chmod_at(dir: &File, name: &OsStr, mode: u32) -> Result<()> {
    nix::sys::stat::fchmodat(
        dir,
        name,
        Mode::from_bits_truncate(mode & 0o7777),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(|e| errno_io(Path::new(name), e))
}

/// Copies the content of `src` (a regular file of at most `max` bytes)
/// to a new inode `name` in `dir`, created exclusively 0600 and fsynced.
/// The caller gives it owner, mode and attributes, then renames it over.
pub fn copy_to_new(dir: &File, name: &OsStr, src: &File, max: u64) -> Result<File> {
    use std::io::Seek;
    let shown = Path::new(name);
    let st = fstat(src).map_err(|e| errno_io(shown, e))?;
    if Kind::of(&st) != Kind::File {
        return Err(not_regular(shown, &st));
    }
    if st.st_size as u64 > max {
        return Err(Error::bad_input(
            shown,
            None,
            format!("is larger than {max} bytes: not copied"),
        ));
    }
    let fd = openat(
        dir,
        name,
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| errno_io(shown, e))?;
    let mut out = File::from(fd);
    let mut from = src;
    from.seek(std::io::SeekFrom::Start(0)).at(shown)?;
    let copied = std::io::copy(&mut from.take(max + 1), &mut out).at(shown);
    let done = match copied {
        Ok(n) if n > max => Err(Error::bad_input(
            shown,
            None,
            format!("grew past {max} bytes: not copied"),
        )),
        Ok(_) => out.sync_all().at(shown),
        Err(e) => Err(e),
    };
    if let Err(e) = done {
        let _ = unlink_at(dir, name);
        return Err(e);
    }
    Ok(out)
}

/// Renames `from` to `to` within one opened directory, replacing `to`.
pub fn rename_at(dir: &File, from: &OsStr, to: &OsStr) -> Result<()> {
    nix::fcntl::renameat(dir, from, dir, to).map_err(|e| errno_io(Path::new(to), e))
}

/// Removes the file or link `name` in an opened directory; `false` if it
/// was not there.
pub fn unlink_at(dir: &File, name: &OsStr) -> Result<bool> {
    use nix::unistd::{unlinkat, UnlinkatFlags};
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(errno_io(Path::new(name), e)),
    }
}

/// Creates directory `name` in an opened directory; `false` if something
/// is already there.
pub fn mkdir_at(dir: &File, name: &OsStr, mode: u32) -> Result<bool> {
    match nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(mode)) {
        Ok(()) => Ok(true),
        Err(Errno::EEXIST) => Ok(false),
        Err(e) => Err(errno_io(Path::new(name), e)),
    }
}

/// Removes the empty directory `name`; `false` if it was not there.
pub fn rmdir_at(dir: &File, name: &OsStr) -> Result<bool> {
    use nix::unistd::{unlinkat, UnlinkatFlags};
    match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(errno_io(Path::new(name), e)),
    }
}

/// Creates the symbolic link `name` -> `target` in an opened directory.
pub fn symlink_at(dir: &File, target: &OsStr, name: &OsStr) -> Result<()> {
    nix::unistd::symlinkat(target, dir, name).map_err(|e| errno_io(Path::new(name), e))
}

/// What the link `name` in an opened directory points at; `None` if
/// nothing or no link is there.
pub fn readlink_at(dir: &File, name: &OsStr) -> Result<Option<OsString>> {
    match nix::fcntl::readlinkat(dir, name) {
        Ok(t) => Ok(Some(t)),
        Err(Errno::ENOENT) | Err(Errno::EINVAL) => Ok(None),
        Err(e) => Err(errno_io(Path::new(name), e)),
    }
}

/// Renames `from` in `from_dir` to `to` in `to_dir`, both opened.
pub fn rename_between(
    from_dir: &File,
    from: &OsStr,
    to_dir: &File,
    to: &OsStr,
    how: Rename,
) -> Result<()> {
    let flags = match how {
        Rename::Replace => RenameFlags::empty(),
        Rename::NoReplace => RenameFlags::RENAME_NOREPLACE,
        Rename::Exchange => RenameFlags::RENAME_EXCHANGE,
    };
    nix::fcntl::renameat2(from_dir, from, to_dir, to, flags).map_err(|e| errno_io(Path::new(to), e))
}

/// fsync of an opened directory.
pub fn sync_dir(dir: &File) -> Result<()> {
    nix::unistd::fsync(dir).map_err(|e| errno_io(Path::new("<dir>"), e))
}

/// sha256 of an open regular file, hex, if it is at most `max` bytes.
pub fn sha256_bounded(f: &File, max: u64) -> Result<Option<String>> {
    let st = fstat(f).map_err(|e| errno_io(Path::new("<fd>"), e))?;
    if Kind::of(&st) != Kind::File || st.st_size as u64 > max {
        return Ok(None);
    }
    use std::io::Seek;
    let mut f = f;
    let fd = |e| Error::io(Path::new("<fd>"), e);
    f.seek(std::io::SeekFrom::Start(0)).map_err(fd)?;
    crate::fsutil::hex_digest::<sha2::Sha256>(f.take(max))
        .map(Some)
        .map_err(fd)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root_with(t: &tempfile::TempDir) -> SysRoot {
        std::fs::create_dir_all(t.path().join("root/etc")).unwrap();
        SysRoot::new(t.path().join("root"))
    }

    /// ext4 (the tests' /tmp here) and tmpfs both keep birth times; a file
    /// made again under a reused inode number has a later one.
    #[test]
    fn a_file_made_again_has_another_birth_time() {
        let shm = Path::new("/dev/shm");
        let dirs: Vec<tempfile::TempDir> = std::iter::once(tempfile::tempdir().unwrap())
            .chain(shm.is_dir().then(|| tempfile::tempdir_in(shm).unwrap()))
            .collect();
        for t in &dirs {
            let d = File::open(t.path()).unwrap();
            std::fs::write(t.path().join("f"), "a").unwrap();
            let first = birth_at(&d, OsStr::new("f")).unwrap();
            assert!(first.is_some(), "{}: no birth time", t.path().display());
            let f = File::open(t.path().join("f")).unwrap();
            assert_eq!(birth_of(&f).unwrap(), first);
            drop(f);
            // Past the coarse clock's tick, as a grant is between the two.
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::fs::remove_file(t.path().join("f")).unwrap();
            std::fs::write(t.path().join("f"), "b").unwrap();
            let again = birth_at(&d, OsStr::new("f")).unwrap();
            assert!(again > first, "{}: {first:?} {again:?}", t.path().display());
            assert_eq!(birth_at(&d, OsStr::new("gone")).unwrap(), None);
        }
    }

    #[test]
    fn absolute_links_mean_the_roots_own_slash() {
        let t = tempfile::tempdir().unwrap();
        let root = root_with(&t);
        std::fs::create_dir_all(t.path().join("outside")).unwrap();
        std::fs::write(t.path().join("outside/secret"), b"host").unwrap();
        std::fs::create_dir_all(t.path().join("root/elsewhere")).unwrap();
        std::fs::write(t.path().join("root/elsewhere/secret"), b"inside").unwrap();
        let outside = t.path().join("outside");
        symlink(&outside, t.path().join("root/etc/gitlab")).unwrap();
        // The same absolute path exists inside the root: that one is meant.
        let inside_twin = t
            .path()
            .join("root")
            .join(outside.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside_twin).unwrap();
        std::fs::write(inside_twin.join("secret"), b"twin").unwrap();
        let got = read(&root, "/etc/gitlab/secret", 100).unwrap().unwrap();
        assert_eq!(got, b"twin");
        symlink("../../../../../../outside", t.path().join("root/etc/up")).unwrap();
        assert_eq!(read(&root, "/etc/up/secret", 100).unwrap(), None);
        let r = resolve(&root, "/etc/gitlab/secret").unwrap().unwrap();
        assert!(r.starts_with(root.dir()), "{}", r.display());
    }

    #[test]
    fn fifos_devices_and_big_files_are_refused_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let root = root_with(&t);
        nix::unistd::mkfifo(
            &t.path().join("root/etc/fifo"),
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let e = read(&root, "/etc/fifo", 100).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        assert_eq!(e.exit_code(), crate::ExitCode::BadInput);
        symlink("/dev/zero", t.path().join("root/etc/zero")).unwrap();
        // /dev/zero of the root: not there.
        assert_eq!(read(&root, "/etc/zero", 100).unwrap(), None);
        let big = File::create(t.path().join("root/etc/big")).unwrap();
        big.set_len(1 << 40).unwrap();
        let e = read(&root, "/etc/big", 1 << 20).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    #[test]
    fn nolinks_refuses_any_link_on_the_way() {
        let t = tempfile::tempdir().unwrap();
        let root = root_with(&t);
        std::fs::create_dir_all(t.path().join("root/real/bin")).unwrap();
        std::fs::write(t.path().join("root/real/bin/app"), b"x").unwrap();
        symlink("real", t.path().join("root/opt")).unwrap();
        let top = open_root(&root).unwrap();
        let e = top
            .open_file(Path::new("opt/bin/app"), Resolve::NoLinks)
            .unwrap_err();
        assert_eq!(e.exit_code(), crate::ExitCode::Refused);
        assert!(top
            .open_file(Path::new("real/bin/app"), Resolve::NoLinks)
            .unwrap()
            .is_some());
        assert!(top
            .open_file(Path::new("real/../../x"), Resolve::NoLinks)
            .is_err());
    }

    #[test]
    fn replace_keeps_owner_mode_and_capabilities_and_leaves_no_temp() {
        let t = tempfile::tempdir().unwrap();
        let root = root_with(&t);
        let p = t.path().join("root/etc/app");
        std::fs::write(&p, b"old").unwrap();
        nix::unistd::chown(&p, Some(12.into()), Some(34.into())).unwrap();
        let dir = open_dir(&root, "/etc").unwrap().unwrap();
        let (f, st) = dir
            .open_file(Path::new("app"), Resolve::NoLinks)
            .unwrap()
            .unwrap();
        let mut keep = Keep::of(&f, &st).unwrap();
        keep.mode = 0o751;
        dir.replace_if_unchanged(OsStr::new("app"), b"new", &keep, &st)
            .unwrap();
        let (f2, st2) = dir
            .open_file(Path::new("app"), Resolve::NoLinks)
            .unwrap()
            .unwrap();
        assert_eq!(Keep::of(&f2, &st2).unwrap(), keep);
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        // Changed meanwhile: busy, nothing written.
        let e = dir
            .replace_if_unchanged(OsStr::new("app"), b"newer", &keep, &st)
            .unwrap_err();
        assert_eq!(e.exit_code(), crate::ExitCode::Busy);
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        let names: Vec<_> = dir.entries().unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec![OsString::from("app")]);
    }

    #[test]
    fn create_dir_all_stays_inside_and_uses_the_mode() {
        let t = tempfile::tempdir().unwrap();
        let root = root_with(&t);
        std::fs::create_dir_all(t.path().join("outside")).unwrap();
        symlink(t.path().join("outside"), t.path().join("root/var")).unwrap();
        // Dangling inside the root (as `mkdir -p` says): refused, and
        // nothing is made on the machine.
        assert!(create_dir_all(&root, "/var/lib/upkeep", 0o755).is_err());
        assert_eq!(
            std::fs::read_dir(t.path().join("outside")).unwrap().count(),
            0
        );
        let twin = t
            .path()
            .join("root")
            .join(t.path().join("outside").strip_prefix("/").unwrap());
        std::fs::create_dir_all(&twin).unwrap();
        let d = create_dir_all(&root, "/var/lib/upkeep", 0o755).unwrap();
        assert!(d.shown().starts_with(root.dir()));
        assert_eq!(
            std::fs::read_dir(t.path().join("outside")).unwrap().count(),
            0
        );
        use std::os::unix::fs::PermissionsExt;
        for sub in ["lib", "lib/upkeep"] {
            let m = std::fs::metadata(twin.join(sub)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o755, "{sub}");
        }
    }

    #[test]
    fn a_missing_root_is_a_usage_error() {
        let e = open_root(&SysRoot::new("/nonexistent/upkeep-root")).unwrap_err();
        assert_eq!(e.exit_code(), crate::ExitCode::Usage);
    }

    #[test]
    fn refuses_links_on_the_way_and_at_the_end() {
        let t = tempfile::tempdir().unwrap();
        let root = SysRoot::new(t.path());
        std::fs::create_dir_all(t.path().join("real/bin")).unwrap();
        std::fs::write(t.path().join("real/bin/app"), b"x").unwrap();
        symlink("real", t.path().join("opt")).unwrap();
        symlink("app", t.path().join("real/bin/link")).unwrap();
        let e = open_parent(&root, Path::new("/opt/bin/app"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/opt is a symlink"), "{e}");
        let p = open_parent(&root, Path::new("/real/bin/link")).unwrap();
        assert!(matches!(
            open_entry(&p.fd, &p.name).unwrap(),
            Entry::Symlink
        ));
        let p = open_parent(&root, Path::new("/real/bin/app")).unwrap();
        assert_eq!(p.ancestors.len(), 3);
        assert!(matches!(
            open_entry(&p.fd, &p.name).unwrap(),
            Entry::File(..)
        ));
        assert!(open_parent(&root, Path::new("/real/../etc/x")).is_err());
    }
}
