//! The file operations of an upgrade, on the shared descriptor-based layer
//! (`upkeep_sys::safe`). Paths are the machine's paths under the system
//! root (`root.path(...)`); each is resolved again from the root's
//! descriptor, and every change is made relative to an opened directory:
//! renames with RENAME_EXCHANGE / RENAME_NOREPLACE, mkdir, create, unlink,
//! symlink and link, owner and mode on descriptors, file capabilities.

use crate::archive::{Checked, Kind};
pub use crate::treecopy::Sums;
use nix::fcntl::AtFlags;
use nix::sys::stat::FileStat;
use sha2::{Digest, Sha256};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use upkeep_sys::error::IoContext;
use upkeep_sys::safe::{self, Dir, Keep, Kind as SKind, Rename, Resolve};
use upkeep_sys::{Error, Result, SysRoot};

fn errno(p: &Path, e: nix::errno::Errno) -> Error {
    Error::io(p, e.into())
}

/// `p` (under the root) as seen inside the system.
pub fn inside(root: &SysRoot, p: &Path) -> Result<PathBuf> {
    let rest = p
        .strip_prefix(root.dir())
        .map_err(|_| Error::Failed(format!("{}: not under the root", p.display())))?;
    Ok(Path::new("/").join(rest))
}

/// The opened parent directory of `p` and the final name.
pub(crate) fn parent(root: &SysRoot, p: &Path) -> Result<(Dir, OsString)> {
    safe::parent_of(root, &inside(root, p)?)?
        .ok_or_else(|| Error::Failed(format!("{}: its directory is missing", p.display())))
}

/// `lstat`, resolved in the root.
pub fn lstat(root: &SysRoot, p: &Path) -> Result<Option<FileStat>> {
    safe::stat(root, inside(root, p)?, false)
}

pub fn exists(root: &SysRoot, p: &Path) -> bool {
    matches!(lstat(root, p), Ok(Some(_)))
}

pub fn is_dir(root: &SysRoot, p: &Path) -> bool {
    matches!(lstat(root, p), Ok(Some(st)) if SKind::of(&st) == SKind::Dir)
}

pub fn is_file(root: &SysRoot, p: &Path) -> bool {
    matches!(lstat(root, p), Ok(Some(st)) if SKind::of(&st) == SKind::File)
}

/// A small file's content (bounded), `None` if absent.
pub fn read(root: &SysRoot, p: &Path) -> Result<Option<Vec<u8>>> {
    safe::read(root, inside(root, p)?, safe::limit::CONFIG)
}

/// The names in a directory with their kinds; none if it is not there.
pub fn entries(root: &SysRoot, p: &Path) -> Result<Vec<(OsString, SKind)>> {
    match safe::open_dir(root, inside(root, p)?)? {
        Some(d) => d.entries(),
        None => Ok(Vec::new()),
    }
}

fn rename(root: &SysRoot, from: &Path, to: &Path, how: Rename) -> Result<()> {
    let (fd, fname) = parent(root, from)?;
    let (td, tname) = parent(root, to)?;
    fd.rename(&fname, &td, &tname, how)?;
    fd.sync()?;
    td.sync()
}

/// Swaps two paths atomically (both must exist).
pub fn exchange(root: &SysRoot, a: &Path, b: &Path) -> Result<()> {
    rename(root, a, b, Rename::Exchange)
}

/// Renames without ever replacing what is at `to`.
pub fn rename_noreplace(root: &SysRoot, from: &Path, to: &Path) -> Result<()> {
    rename(root, from, to, Rename::NoReplace)
}

/// Missing directories up to `p`, created with `mode`.
pub fn create_dir_all(root: &SysRoot, p: &Path, mode: u32) -> Result<()> {
    safe::create_dir_all(root, inside(root, p)?, mode).map(|_| ())
}

/// Creates `dir` 0700; something already there is an error.
pub fn create_private_dir(root: &SysRoot, dir: &Path) -> Result<()> {
    let (d, n) = parent(root, dir)?;
    if !d.mkdir(&n, 0o700)? {
        return Err(Error::Failed(format!("{}: already exists", dir.display())));
    }
    d.sync()
}

/// upkeep's own file, written atomically (0600).
pub fn write_private(root: &SysRoot, p: &Path, data: &[u8]) -> Result<()> {
    let (d, n) = parent(root, p)?;
    d.replace(&n, data, &Keep::private())
}

/// Replaces a file's content atomically, keeping owner, group, mode and
/// capabilities, then reads it back.
pub fn replace_keeping(root: &SysRoot, p: &Path, data: &[u8]) -> Result<()> {
    let (d, n) = parent(root, p)?;
    let (f, st) = d
        .open_file(Path::new(&n), Resolve::NoLinks)?
        .ok_or_else(|| Error::Failed(format!("{}: missing", p.display())))?;
    let keep = Keep::of(&f, &st)?;
    d.replace(&n, data, &keep)?;
    if read(root, p)?.as_deref() != Some(data) {
        return Err(Error::Failed(format!(
            "{}: reads back differently than written",
            p.display()
        )));
    }
    Ok(())
}

pub fn remove_durable(root: &SysRoot, p: &Path) -> Result<()> {
    let (d, n) = parent(root, p)?;
    d.unlink(&n)?;
    d.sync()
}

fn remove_at(d: &Dir, name: &OsStr) -> Result<()> {
    match d.stat(Path::new(name), Resolve::NoLinks, false)? {
        None => Ok(()),
        Some(st) if SKind::of(&st) == SKind::Dir => {
            if let Some(sub) = d.open_dir(Path::new(name), Resolve::NoLinks)? {
                for (n, _) in sub.entries()? {
                    remove_at(&sub, &n)?;
                }
            }
            d.rmdir(name).map(|_| ())
        }
        Some(_) => d.unlink(name).map(|_| ()),
    }
}

/// Removes a tree if it is there (never following a link out of it).
pub fn remove_tree(root: &SysRoot, p: &Path) -> Result<()> {
    let Some((d, n)) = safe::parent_of(root, &inside(root, p)?)? else {
        return Ok(());
    };
    remove_at(&d, &n)?;
    d.sync()
}

/// A regular file, opened for reading (never through a link out).
pub(crate) fn open_regular(root: &SysRoot, p: &Path) -> Result<(File, FileStat)> {
    safe::open_file(root, inside(root, p)?)?
        .ok_or_else(|| Error::Failed(format!("{}: missing", p.display())))
}

/// Whether two regular files hold the same bytes (sizes first, then the
/// bytes, a block at a time).
pub fn same_content(root: &SysRoot, a: &Path, b: &Path) -> Result<bool> {
    use std::io::Read;
    let (mut fa, sa) = open_regular(root, a)?;
    let (mut fb, sb) = open_regular(root, b)?;
    if sa.st_size != sb.st_size {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = fa.read(&mut ba).map_err(|e| Error::io(a, e))?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n]).map_err(|e| Error::io(b, e))?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// sha256 of a regular file.
pub fn sha256(root: &SysRoot, p: &Path) -> Result<String> {
    let (f, _) = safe::open_file(root, inside(root, p)?)?
        .ok_or_else(|| Error::Failed(format!("{}: missing", p.display())))?;
    safe::sha256_file(&f)
}

/// chown without following a link at the end.
pub fn chown_nofollow(root: &SysRoot, p: &Path, uid: u32, gid: u32) -> Result<()> {
    let (d, n) = parent(root, p)?;
    nix::unistd::fchownat(
        &d,
        n.as_os_str(),
        Some(uid.into()),
        Some(gid.into()),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| errno(p, e))
}

/// chmod through the opened file or directory (a link is refused).
pub fn chmod(root: &SysRoot, p: &Path, mode: u32) -> Result<()> {
    let (d, n) = parent(root, p)?;
    if is_dir(root, p) {
        let sub = d
            .open_dir(Path::new(&n), Resolve::NoLinks)?
            .ok_or_else(|| Error::Failed(format!("{}: missing", p.display())))?;
        return safe::fchmod(&sub, mode);
    }
    let (f, _) = d
        .open_file(Path::new(&n), Resolve::NoLinks)?
        .ok_or_else(|| Error::Failed(format!("{}: missing", p.display())))?;
    safe::fchmod(&f, mode)
}

/// The archive the user named (a path on the machine, not in the root).
pub fn open_archive(path: &Path) -> Result<File> {
    let abs = std::path::absolute(path).at(path)?;
    safe::open_file(&SysRoot::new("/"), &abs)?
        .map(|(f, _)| f)
        .ok_or_else(|| Error::bad_input(path, None, "no such file"))
}

fn open_sub(top: &Dir, rel: &str) -> Result<Dir> {
    let p = if rel.is_empty() { "." } else { rel };
    top.open_dir(Path::new(p), Resolve::NoLinks)?
        .ok_or_else(|| Error::Failed(format!("{}/{p}: missing", top.shown().display())))
}

/// Opens `rel` below `top`, making each missing directory on the way
/// (0755, as tar does for a directory with no entry of its own).
fn open_sub_making(
    top: &Dir,
    rel: &str,
    implied: &mut std::collections::BTreeSet<String>,
) -> Result<Dir> {
    let mut at = String::new();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        let d = open_sub(top, &at)?;
        at = if at.is_empty() {
            part.to_string()
        } else {
            format!("{at}/{part}")
        };
        if d.mkdir(OsStr::new(part), 0o755)? {
            implied.insert(at.clone());
        }
    }
    open_sub(top, rel)
}

fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Unpacks a checked archive into `stage` (which must not exist; it is
/// created 0700, so nobody else can touch what is inside while it is
/// built), then reads every file back against the digest taken while
/// writing. Ownership is left to the caller.
pub fn unpack(root: &SysRoot, checked: &Checked, top: &str, stage: &Path) -> Result<()> {
    create_private_dir(root, stage)?;
    let sd = safe::open_dir(root, inside(root, stage)?)?
        .ok_or_else(|| Error::Failed(format!("{}: vanished", stage.display())))?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(open_archive(&checked.path)?));
    let rd = |e: std::io::Error| {
        Error::bad_input(&checked.path, None, format!("cannot read the archive: {e}"))
    };
    let mut digests: Vec<(String, String)> = Vec::new();
    let mut dir_modes: Vec<(String, u32)> = Vec::new();
    // Directories made for entries whose own directory has no entry (yet).
    let mut implied: std::collections::BTreeSet<String> = Default::default();
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
        let again = crate::archive::normalize(&name, top).ok();
        if again.as_deref() != Some(entry.rel.as_str()) {
            return Err(Error::bad_input(
                &checked.path,
                None,
                "the archive changed while upkeep read it",
            ));
        }
        if entry.rel.is_empty() {
            dir_modes.push((String::new(), entry.mode & 0o7777));
            continue;
        }
        let (up, leaf) = split(&entry.rel);
        let pd = open_sub_making(&sd, up, &mut implied)?;
        let leaf = OsStr::new(leaf);
        let shown = stage.join(&entry.rel);
        match &entry.kind {
            Kind::Dir => {
                // Made already for an entry below it (listed before its
                // directory, as tar allows): its own entry sets the mode.
                if !pd.mkdir(leaf, 0o700)? && !implied.remove(&entry.rel) {
                    return Err(Error::Failed(format!("{}: already there", shown.display())));
                }
                dir_modes.push((entry.rel.clone(), entry.mode & 0o7777));
            }
            Kind::File { size } => {
                let mut f = pd.create_new(leaf, 0o600)?;
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
                    f.write_all(&buf[..n]).at(&shown)?;
                    left = left.saturating_sub(n as u64);
                }
                safe::fchmod(&f, entry.mode & 0o7777)?;
                digests.push((entry.rel.clone(), upkeep_sys::fsutil::hex(&h.finalize())));
            }
            Kind::Symlink { target } => {
                nix::unistd::symlinkat(target.as_path(), &pd, leaf).map_err(|e| errno(&shown, e))?
            }
            Kind::HardLink { target } => {
                nix::unistd::linkat(&sd, Path::new(target), &pd, leaf, AtFlags::empty())
                    .map_err(|e| errno(&shown, e))?
            }
        }
    }
    // Directories get their modes last, deepest first (a read-only
    // directory must not stop its own contents from being written).
    for (rel, mode) in dir_modes.iter().rev() {
        let d = open_sub(&sd, rel)?;
        let m = if rel.is_empty() { mode | 0o700 } else { *mode };
        safe::fchmod(&d, m)?;
    }
    nix::unistd::syncfs(&sd).map_err(|e| errno(stage, e))?;
    for (rel, want) in &digests {
        let (f, _) = sd
            .open_file(Path::new(rel), Resolve::NoLinks)?
            .ok_or_else(|| Error::Failed(format!("{rel}: vanished from the stage")))?;
        if &safe::sha256_file(&f)? != want {
            return Err(Error::Failed(format!(
                "{}: reads back differently than written",
                stage.join(rel).display()
            )));
        }
    }
    Ok(())
}

/// Recreates the symlink `sn` of `sd` as `dn` in `dd`, with its owner.
pub(crate) fn copy_symlink(
    sd: &Dir,
    sn: &OsStr,
    dd: &Dir,
    dn: &OsStr,
    st: &FileStat,
) -> Result<()> {
    let shown = dd.shown().join(dn);
    let t = nix::fcntl::readlinkat(sd, sn).map_err(|e| errno(&shown, e))?;
    nix::unistd::symlinkat(t.as_os_str(), dd, dn).map_err(|e| errno(&shown, e))?;
    nix::unistd::fchownat(
        dd,
        dn,
        Some(st.st_uid.into()),
        Some(st.st_gid.into()),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| errno(&shown, e))
}

/// Copies a tree (files, dirs, symlinks; owner, mode, capabilities kept),
/// synced and read back; adds every file's proof to `sums`.
pub fn copy_tree(root: &SysRoot, src: &Path, dst: &Path, rel: &str, sums: &mut Sums) -> Result<()> {
    sums.copy_tree(root, src, dst, rel)
}

/// Sets a file capability through the opened file, then reads it back.
pub fn set_caps(root: &SysRoot, path: &Path, text: &str) -> Result<()> {
    let value = encode_caps(text).map_err(Error::Failed)?;
    let (d, n) = parent(root, path)?;
    let (f, _) = d
        .open_file(Path::new(&n), Resolve::NoLinks)?
        .ok_or_else(|| Error::Failed(format!("{}: missing", path.display())))?;
    safe::set_capability(&f, &value)?;
    let back = safe::get_capability(&f)?;
    if back.as_deref() != Some(&value[..]) {
        return Err(Error::Failed(format!(
            "{}: the capability {text} did not stick",
            path.display()
        )));
    }
    Ok(())
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

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their files by path
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
