//! The file operations the engine needs, in one place so that they can be
//! swapped for the shared descriptor-based layer (`upkeep_sys::safe`) once
//! it exists: rename with RENAME_EXCHANGE / RENAME_NOREPLACE, directory
//! fsync, unpacking a checked archive, verified copies, ownership and file
//! capabilities.

use crate::archive::{open_tar, Checked, Kind};
use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use upkeep_sys::error::IoContext;
use upkeep_sys::{Error, Result};

fn io(p: &Path, e: nix::errno::Errno) -> Error {
    Error::io(p, e.into())
}

/// Swaps two paths atomically (both must exist).
pub fn exchange(a: &Path, b: &Path) -> Result<()> {
    renameat2(AT_FDCWD, a, AT_FDCWD, b, RenameFlags::RENAME_EXCHANGE).map_err(|e| io(a, e))?;
    sync_parent(a)?;
    sync_parent(b)
}

/// Renames without ever replacing what is at `to`.
pub fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE)
        .map_err(|e| io(from, e))?;
    sync_parent(from)?;
    sync_parent(to)
}

pub fn sync_parent(p: &Path) -> Result<()> {
    sync_dir(p.parent().unwrap_or(p))
}

/// fsync of a directory (renames and unlinks in it made durable).
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Writes `data` to `path` atomically and durably, 0600 (upkeep's own files).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.upkeep-tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let res = (|| {
        let mut f = create_file(&tmp)?;
        f.write_all(data).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        std::fs::rename(&tmp, path).at(path)?;
        sync_parent(path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Removes a file durably; nothing there is fine.
pub fn remove_durable(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

pub fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// Removes a tree if it is there.
pub fn remove_tree(p: &Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p).at(p)?,
        Ok(_) => std::fs::remove_file(p).at(p)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(p, e)),
    }
    sync_parent(p)
}

/// Creates `dir` 0700 (never through a symlink: it must not exist).
pub fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new().create(dir).at(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).at(dir)
}

fn create_file(p: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(p)
        .at(p)
}

/// A file's sha256, read back from disk.
pub fn sha256_path(p: &Path) -> Result<String> {
    let f = File::open(p).at(p)?;
    upkeep_sys::fsutil::hex_digest::<Sha256>(f).at(p)
}

/// Unpacks a checked archive into `stage` (which must not exist; it is
/// created 0700, so nobody else can touch what is inside while it is
/// built), then reads every file back against the digest taken while
/// writing. Ownership is left to the caller.
pub fn unpack(checked: &Checked, top: &str, stage: &Path) -> Result<()> {
    create_private_dir(stage)?;
    let mut ar = open_tar(&checked.path)?;
    let rd = |e: std::io::Error| {
        Error::bad_input(&checked.path, None, format!("cannot read the archive: {e}"))
    };
    let mut digests: Vec<(PathBuf, String)> = Vec::new();
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    let mut idx = 0usize;
    for e in ar.entries().map_err(rd)? {
        let mut e = e.map_err(rd)?;
        if matches!(
            e.header().entry_type(),
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        let entry = checked.entries.get(idx).ok_or_else(|| {
            Error::bad_input(
                &checked.path,
                None,
                "the archive changed while upkeep read it",
            )
        })?;
        idx += 1;
        // The archive is read a second time: it must say the same.
        let name = e.path().map_err(rd)?.into_owned();
        let again = name
            .strip_prefix(top)
            .or_else(|_| name.strip_prefix(format!("./{top}")))
            .map(|p| p.to_string_lossy().trim_end_matches('/').to_string())
            .ok();
        if again.as_deref() != Some(entry.rel.as_str()) {
            return Err(Error::bad_input(
                &checked.path,
                None,
                "the archive changed while upkeep read it",
            ));
        }
        let dst = if entry.rel.is_empty() {
            stage.to_path_buf()
        } else {
            stage.join(&entry.rel)
        };
        match &entry.kind {
            Kind::Dir => {
                if !entry.rel.is_empty() {
                    std::fs::DirBuilder::new().create(&dst).at(&dst)?;
                }
                dir_modes.push((dst, entry.mode & 0o7777));
            }
            Kind::File { size } => {
                let mut f = create_file(&dst)?;
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 1 << 16];
                let mut left = *size;
                while left > 0 {
                    let n = e.read(&mut buf).map_err(rd)?;
                    if n == 0 {
                        return Err(Error::bad_input(
                            &checked.path,
                            None,
                            format!("{}: truncated", entry.rel),
                        ));
                    }
                    h.update(&buf[..n]);
                    f.write_all(&buf[..n]).at(&dst)?;
                    left = left.saturating_sub(n as u64);
                }
                upkeep_sys::safe::fchmod(&f, entry.mode & 0o7777)?;
                digests.push((dst, upkeep_sys::fsutil::hex(&h.finalize())));
            }
            Kind::Symlink { target } => std::os::unix::fs::symlink(target, &dst).at(&dst)?,
            Kind::HardLink { target } => std::fs::hard_link(stage.join(target), &dst).at(&dst)?,
        }
    }
    // Directories get their modes last, deepest first (a read-only
    // directory must not stop its own contents from being written).
    for (d, mode) in dir_modes.iter().rev() {
        let m = if d == stage { mode | 0o700 } else { *mode };
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(m)).at(d)?;
    }
    let sf = File::open(stage).at(stage)?;
    nix::unistd::syncfs(&sf).map_err(|e| io(stage, e))?;
    for (p, want) in &digests {
        let got = sha256_path(p)?;
        if &got != want {
            return Err(Error::Failed(format!(
                "{}: reads back differently than written",
                p.display()
            )));
        }
    }
    Ok(())
}

/// Copies a tree (files, dirs, symlinks; owner, mode, capabilities kept)
/// and returns `relative path  sha256` lines of every file, each read back
/// from the copy and compared.
pub fn copy_tree(
    src: &Path,
    dst: &Path,
    rel: &str,
    sums: &mut Vec<(String, String)>,
) -> Result<()> {
    let m = std::fs::symlink_metadata(src).at(src)?;
    let ft = m.file_type();
    if ft.is_dir() {
        std::fs::DirBuilder::new().create(dst).at(dst)?;
        let mut names: Vec<_> = std::fs::read_dir(src)
            .at(src)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            let r = if rel.is_empty() {
                n.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", n.to_string_lossy())
            };
            copy_tree(&src.join(&n), &dst.join(&n), &r, sums)?;
        }
    } else if ft.is_symlink() {
        let t = std::fs::read_link(src).at(src)?;
        std::os::unix::fs::symlink(t, dst).at(dst)?;
        std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid())).at(dst)?;
        return Ok(());
    } else if ft.is_file() {
        let want = sha256_path(src)?;
        {
            let _ = create_file(dst)?;
        }
        // copy_file_range underneath (a reflink where the filesystem can).
        std::fs::copy(src, dst).at(dst)?;
        let f = File::open(dst).at(dst)?;
        f.sync_all().at(dst)?;
        let got = sha256_path(dst)?;
        if got != want {
            return Err(Error::Failed(format!(
                "{}: the copy reads back differently",
                dst.display()
            )));
        }
        if let Some(cap) = upkeep_sys::safe::get_capability(&File::open(src).at(src)?)? {
            std::os::unix::fs::chown(dst, Some(m.uid()), Some(m.gid())).at(dst)?;
            upkeep_sys::safe::set_capability(&f, &cap)?;
        }
        sums.push((rel.to_string(), got));
    } else {
        // Sockets and FIFOs are not data: skipped.
        return Ok(());
    }
    std::os::unix::fs::chown(dst, Some(m.uid()), Some(m.gid())).at(dst)?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(m.mode() & 0o7777)).at(dst)
}

/// The kernel's capability names, by number.
const CAP_NAMES: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// `cap_a,cap_b=+ep` (setcap's text form, one clause) as the
/// `security.capability` value (VFS_CAP_REVISION_2).
pub fn encode_caps(text: &str) -> std::result::Result<Vec<u8>, String> {
    let (names, flags) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}': no '='"))?;
    let flags = flags.trim_start_matches('+');
    let mut permitted = 0u64;
    for n in names.split(',') {
        let n = n.trim().to_ascii_lowercase();
        let n = n.strip_prefix("cap_").unwrap_or(&n);
        let bit = CAP_NAMES
            .iter()
            .position(|c| *c == n)
            .ok_or_else(|| format!("unknown capability '{n}'"))?;
        permitted |= 1 << bit;
    }
    let mut inheritable = 0u64;
    let mut effective = false;
    let mut perm = false;
    for c in flags.chars() {
        match c {
            'e' => effective = true,
            'p' => perm = true,
            'i' => inheritable = permitted,
            _ => return Err(format!("'{text}': flags are e, i, p")),
        }
    }
    let p = if perm { permitted } else { 0 };
    let magic: u32 = 0x0200_0000 | u32::from(effective);
    let mut v = Vec::with_capacity(20);
    v.extend_from_slice(&magic.to_le_bytes());
    for w in [
        p as u32,
        inheritable as u32,
        (p >> 32) as u32,
        (inheritable >> 32) as u32,
    ] {
        v.extend_from_slice(&w.to_le_bytes());
    }
    // Layout: magic, permitted[0], inheritable[0], permitted[1], inheritable[1].
    Ok(v)
}

/// Sets a file capability through the opened file, then reads it back.
pub fn set_caps(path: &Path, text: &str) -> Result<()> {
    let value = encode_caps(text).map_err(Error::Failed)?;
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .at(path)?;
    upkeep_sys::safe::set_capability(&f, &value)?;
    let back = upkeep_sys::safe::get_capability(&f)?;
    if back.as_deref() != Some(&value[..]) {
        return Err(Error::Failed(format!(
            "{}: the capability {text} did not stick",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_encode_like_setcap() {
        // getfattr -e hex -n security.capability after setcap cap_net_bind_service=+ep
        let v = encode_caps("cap_net_bind_service=+ep").unwrap();
        assert_eq!(
            upkeep_sys::fsutil::hex(&v),
            "0100000200040000000000000000000000000000"
        );
        assert!(encode_caps("cap_bogus=+ep").is_err());
        // Same bytes as the real setcap writes, read with the real getcap.
        let t = tempfile::tempdir().unwrap();
        for text in [
            "cap_net_bind_service=+ep",
            "cap_net_raw,cap_bpf=+eip",
            "cap_chown=+p",
        ] {
            let f = t.path().join("bin");
            std::fs::write(&f, b"x").unwrap();
            let st = std::process::Command::new("setcap")
                .arg(text)
                .arg(&f)
                .status()
                .unwrap();
            assert!(st.success());
            let real = upkeep_sys::safe::get_capability(&File::open(&f).unwrap()).unwrap();
            assert_eq!(
                real.as_deref(),
                Some(&encode_caps(text).unwrap()[..]),
                "{text}"
            );
            std::fs::remove_file(&f).unwrap();
        }
    }
}
