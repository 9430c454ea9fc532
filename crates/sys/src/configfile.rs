//! Editing a configuration file in place without losing anything: a backup
//! copy next to it (0600), then the safe layer's atomic replace, keeping
//! owner, group, mode and capabilities. A check (Ruby's syntax check for
//! gitlab.rb) runs on the new text first; if it fails the file is untouched.

use crate::error::{Error, IoContext, Result};
use crate::root::SysRoot;
use crate::safe::{self, Dir, Keep, Kind, Resolve};
use crate::state;
use nix::sys::stat::FileStat;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct ConfigFile {
    /// The file that is edited, as a path on this machine (for messages):
    /// the path itself, or its symlink's target inside the root.
    pub real: PathBuf,
    pub via_symlink: bool,
    pub text: String,
    dir: Dir,
    name: OsString,
    stat: FileStat,
    keep: Keep,
}

impl ConfigFile {
    /// Reads the file. Not there, not a regular file, too large or not
    /// UTF-8 is bad input (65). A symlink is followed inside the root, and
    /// only to a root-owned target nobody else can write; otherwise refused.
    pub fn open(root: &SysRoot, inside: &str) -> Result<Self> {
        let shown = root.path(inside);
        let missing = || Error::bad_input(&shown, None, "cannot read: not there");
        let lstat = safe::stat(root, inside, false)?.ok_or_else(missing)?;
        let via_symlink = Kind::of(&lstat) == Kind::Symlink;
        let target = if via_symlink {
            safe::resolve_inside(root, inside)?.ok_or_else(|| {
                Error::bad_input(&shown, None, "is a symlink to nothing (or a loop)")
            })?
        } else {
            PathBuf::from(inside)
        };
        let (dir, name) = safe::parent_of(root, &target)?.ok_or_else(missing)?;
        // The target's own path has no links left in it.
        let how = if via_symlink {
            Resolve::NoLinks
        } else {
            Resolve::InRoot
        };
        let (file, stat) = dir.open_file(Path::new(&name), how)?.ok_or_else(missing)?;
        let real = dir.shown().join(&name);
        if via_symlink && (stat.st_uid != 0 || safe::writable_by_non_root(&stat)) {
            return Err(Error::Refused(format!(
                "{} is a symlink to {}, which is not root-owned or is writable by others (uid {}, mode {:04o}): not editing through it",
                shown.display(),
                real.display(),
                stat.st_uid,
                stat.st_mode & 0o7777
            )));
        }
        let keep = Keep::of(&file, &stat)?;
        let bytes = safe::read_bounded(file, &stat, safe::limit::CONFIG, &real)?;
        let text = safe::utf8(bytes, &real)?;
        Ok(ConfigFile {
            real,
            via_symlink,
            text,
            dir,
            name,
            stat,
            keep,
        })
    }

    /// Replaces the content with `new_text` after `check` accepts it,
    /// unless someone changed the file meanwhile (busy). Returns the
    /// backup's path.
    pub fn replace(
        &self,
        new_text: &str,
        check: impl FnOnce(&str) -> Result<()>,
    ) -> Result<PathBuf> {
        check(new_text)?;
        let backup = self.write_backup()?;
        self.dir
            .replace_if_unchanged(&self.name, new_text.as_bytes(), &self.keep, &self.stat)?;
        Ok(backup)
    }

    /// A 0600 copy of the current text beside the file, read back.
    fn write_backup(&self) -> Result<PathBuf> {
        let stamp = state::utc_stamp(state::now());
        let base = self.name.to_string_lossy().into_owned();
        for i in 0..100 {
            let suffix = if i == 0 {
                String::new()
            } else {
                format!("-{i}")
            };
            let name = OsString::from(format!("{base}.upkeep-{stamp}{suffix}.bak"));
            let shown = self.dir.shown().join(&name);
            let mut f = match self.dir.create_new(&name, 0o600) {
                Ok(f) => f,
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            f.write_all(self.text.as_bytes())
                .and_then(|()| f.sync_all())
                .at(&shown)?;
            self.dir.sync()?;
            let back = self
                .dir
                .read(Path::new(&name), Resolve::NoLinks, safe::limit::CONFIG)?;
            if back.as_deref() != Some(self.text.as_bytes()) {
                return Err(Error::Failed(format!(
                    "{}: the backup does not read back as written; nothing changed",
                    shown.display()
                )));
            }
            return Ok(shown);
        }
        Err(Error::Failed(format!(
            "{}: too many backups this second",
            self.real.display()
        )))
    }
}
