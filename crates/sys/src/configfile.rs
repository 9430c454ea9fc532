//! Editing a configuration file in place without losing anything: a backup
//! copy next to it (0600), then an atomic replace (temporary file in the
//! same directory, fsync, rename, directory fsync) that keeps the owner,
//! group and mode. A check (Ruby's syntax check for gitlab.rb) runs on the
//! new text first; if it fails the file is untouched.

use crate::error::{Error, Result};
use crate::fsutil::resolve_in_root;
use crate::root::SysRoot;
use crate::state;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct ConfigFile {
    /// The file that is edited: the path itself, or its symlink's target.
    pub real: PathBuf,
    pub via_symlink: bool,
    pub text: String,
    meta: std::fs::Metadata,
}

impl ConfigFile {
    /// Reads the file. Not there, not a regular file, unreadable or not
    /// UTF-8 is bad input (65). A symlink is followed (inside the root)
    /// only to a root-owned target nobody else can write; otherwise refused.
    pub fn open(root: &SysRoot, inside: &str) -> Result<Self> {
        let path = root.path(inside);
        let lmeta = std::fs::symlink_metadata(&path)
            .map_err(|e| Error::bad_input(&path, None, format!("cannot read: {e}")))?;
        let via_symlink = lmeta.file_type().is_symlink();
        let real = if via_symlink {
            resolve_in_root(root, Path::new(inside)).ok_or_else(|| {
                Error::bad_input(&path, None, "is a symlink to nothing (or a loop)")
            })?
        } else {
            path.clone()
        };
        let meta = std::fs::metadata(&real)
            .map_err(|e| Error::bad_input(&real, None, format!("cannot read: {e}")))?;
        if !meta.is_file() {
            return Err(Error::bad_input(&real, None, "is not a regular file"));
        }
        if via_symlink {
            let others_write =
                meta.mode() & 0o002 != 0 || (meta.mode() & 0o020 != 0 && meta.gid() != 0);
            if meta.uid() != 0 || others_write {
                return Err(Error::Refused(format!(
                    "{} is a symlink to {}, which is not root-owned or is writable by others (uid {}, mode {:04o}): not editing through it",
                    path.display(),
                    real.display(),
                    meta.uid(),
                    meta.mode() & 0o7777
                )));
            }
        }
        let bytes = std::fs::read(&real)
            .map_err(|e| Error::bad_input(&real, None, format!("cannot read: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = e.utf8_error().valid_up_to();
            let line = 1 + e.as_bytes()[..valid]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            Error::bad_input(&real, Some(line), "not valid UTF-8")
        })?;
        Ok(ConfigFile {
            real,
            via_symlink,
            text,
            meta,
        })
    }

    /// Replaces the content with `new_text` after `check` accepts it.
    /// Returns the backup's path.
    pub fn replace(
        &self,
        new_text: &str,
        check: impl FnOnce(&str) -> Result<()>,
    ) -> Result<PathBuf> {
        check(new_text)?;
        let dir = self
            .real
            .parent()
            .ok_or_else(|| Error::Failed(format!("{}: no directory", self.real.display())))?;
        let name = self
            .real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let now = state::now();
        let backup = (0..100)
            .map(|i| {
                let suffix = if i == 0 {
                    String::new()
                } else {
                    format!("-{i}")
                };
                dir.join(format!(
                    "{name}.upkeep-{}{suffix}.bak",
                    state::utc_stamp(now)
                ))
            })
            .find(|p| !p.exists())
            .ok_or_else(|| {
                Error::Failed(format!(
                    "{}: too many backups this second",
                    self.real.display()
                ))
            })?;
        write_new(&backup, self.text.as_bytes(), 0o600, None)?;

        let tmp = dir.join(format!(".{name}.upkeep-tmp.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        write_new(
            &tmp,
            new_text.as_bytes(),
            self.meta.mode() & 0o7777,
            Some((self.meta.uid(), self.meta.gid())),
        )?;
        // Someone else changed the file since we read it: do not overwrite.
        let now_meta = std::fs::metadata(&self.real).map_err(|e| Error::io(&self.real, e))?;
        if now_meta.ino() != self.meta.ino()
            || now_meta.mtime_nsec() != self.meta.mtime_nsec()
            || now_meta.len() != self.meta.len()
        {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Busy(format!(
                "{} changed while upkeep was editing it; nothing written",
                self.real.display()
            )));
        }
        std::fs::rename(&tmp, &self.real).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(&self.real, e)
        })?;
        state::sync_dir(dir)?;
        Ok(backup)
    }
}

/// Creates `path` (never following or replacing anything), writes, sets
/// owner and mode on the descriptor, fsyncs.
fn write_new(path: &Path, data: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(data).map_err(|e| Error::io(path, e))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(|e| Error::io(path, e))?;
    }
    crate::safefs::fchmod(&f, mode)?;
    f.sync_all().map_err(|e| Error::io(path, e))
}
