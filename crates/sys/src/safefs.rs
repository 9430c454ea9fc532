//! Descriptor-based file access for code that runs as root on paths other
//! users may control (after uutils' safe_traversal): every component is
//! opened with `O_NOFOLLOW` relative to its parent's descriptor, and owner
//! and mode are changed on the opened descriptor, never by path.

use crate::error::{Error, Result};
use crate::root::SysRoot;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

/// The capability attribute a chown silently drops.
pub const CAP_XATTR: &str = "security.capability";

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

fn refuse(inside: &Path, why: impl std::fmt::Display) -> Error {
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
                return Err(refuse(inside, "'..' is not allowed"))
            }
        }
    }
    let name = names
        .pop()
        .ok_or_else(|| refuse(inside, "is the root itself"))?;
    let root_fd = File::open(root.dir()).map_err(|e| Error::io(root.dir(), e))?;
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
                return Err(refuse(
                    inside,
                    format!("{} is a symlink or not a directory", here.display()),
                ))
            }
            Err(Errno::ENOENT) => {
                return Err(refuse(inside, format!("{} does not exist", here.display())))
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

/// Whether anyone but root could change entries of this directory.
pub fn writable_by_non_root(st: &FileStat) -> bool {
    let mode = st.st_mode;
    st.st_uid != 0 || mode & 0o002 != 0 || (mode & 0o020 != 0 && st.st_gid != 0)
}

pub fn fchown(f: &File, uid: u32, gid: u32) -> Result<()> {
    nix::unistd::fchown(f, Some(uid.into()), Some(gid.into()))
        .map_err(|e| Error::io(Path::new("<fd>"), e.into()))
}

pub fn fchmod(f: &File, mode: u32) -> Result<()> {
    nix::sys::stat::fchmod(f, Mode::from_bits_truncate(mode & 0o7777))
        .map_err(|e| Error::io(Path::new("<fd>"), e.into()))
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

/// sha256 of an open file's content, hex.
pub fn sha256_file(f: &File) -> Result<String> {
    use std::io::Seek;
    let mut f = f;
    let fd = |e| Error::io(Path::new("<fd>"), e);
    f.seek(std::io::SeekFrom::Start(0)).map_err(fd)?;
    crate::fsutil::hex_digest::<sha2::Sha256>(f).map_err(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

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
