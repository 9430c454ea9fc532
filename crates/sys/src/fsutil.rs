//! Reading files under a system root without ever leaving it.

use crate::root::SysRoot;
use std::path::{Component, Path, PathBuf};

/// Follows symlinks the way the system itself would if the root were `/`:
/// an absolute link target starts again at the root, `..` never climbs
/// above it. Returns the path on this machine, or `None` if it does not
/// exist or loops.
pub fn resolve_in_root(root: &SysRoot, inside: &Path) -> Option<PathBuf> {
    let mut hops = 0;
    let mut done: Vec<std::ffi::OsString> = Vec::new();
    let mut todo: Vec<std::ffi::OsString> = components(inside);
    todo.reverse();
    while let Some(part) = todo.pop() {
        if part == ".." {
            done.pop();
            continue;
        }
        let mut candidate = root.dir().to_path_buf();
        candidate.extend(&done);
        candidate.push(&part);
        let meta = std::fs::symlink_metadata(&candidate).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&candidate).ok()?;
            if target.is_absolute() {
                done.clear();
            }
            let mut t = components(&target);
            t.reverse();
            todo.extend(t);
        } else {
            done.push(part);
        }
    }
    let mut out = root.dir().to_path_buf();
    out.extend(&done);
    Some(out)
}

fn components(p: &Path) -> Vec<std::ffi::OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Searches a file for a byte string in fixed-size chunks (Mattermost's
/// binary is ~200 MB; it is never read whole into memory).
pub fn file_contains(path: &Path, needle: &[u8]) -> std::io::Result<bool> {
    use std::io::Read;
    if needle.is_empty() {
        return Ok(true);
    }
    let finder = memchr::memmem::Finder::new(needle);
    let mut f = std::fs::File::open(path)?;
    let chunk = 1 << 20;
    let keep = needle.len() - 1;
    let mut buf = vec![0u8; chunk + keep];
    let mut have = 0;
    loop {
        let n = f.read(&mut buf[have..])?;
        if n == 0 {
            return Ok(false);
        }
        have += n;
        if finder.find(&buf[..have]).is_some() {
            return Ok(true);
        }
        if have > keep {
            buf.copy_within(have - keep..have, 0);
            have = keep;
        }
    }
}

/// Lower-case hex, as md5sums, rpm and our records write digests.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The hex digest of everything `r` yields, read in fixed-size chunks.
pub fn hex_digest<D: md5::Digest>(mut r: impl std::io::Read) -> std::io::Result<String> {
    let mut h = D::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(hex(&h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_links_stay_in_root() {
        let t = tempfile::tempdir().unwrap();
        let root = SysRoot::new(t.path());
        std::fs::create_dir_all(t.path().join("opt/mattermost-10/bin")).unwrap();
        std::fs::write(t.path().join("opt/mattermost-10/bin/mattermost"), b"x").unwrap();
        symlink("/opt/mattermost-10", t.path().join("opt/mattermost")).unwrap();
        symlink("../../../../../etc/passwd", t.path().join("opt/escape")).unwrap();
        symlink("/opt/loop", t.path().join("opt/loop")).unwrap();
        assert_eq!(
            resolve_in_root(&root, Path::new("/opt/mattermost/bin/mattermost")),
            Some(t.path().join("opt/mattermost-10/bin/mattermost"))
        );
        // Climbs no higher than the root: /etc/passwd of the root, absent here.
        assert_eq!(resolve_in_root(&root, Path::new("/opt/escape")), None);
        assert_eq!(resolve_in_root(&root, Path::new("/opt/loop")), None);
    }

    #[test]
    fn digests_match_the_coreutils_tools() {
        assert_eq!(
            hex_digest::<md5::Md5>(&b"abc"[..]).unwrap(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            hex_digest::<sha2::Sha256>(&b"abc"[..]).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&[0, 0xab]), "00ab");
    }

    #[test]
    fn finds_bytes_across_chunk_boundaries() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("bin");
        let needle = b"github.com/mattermost/enterprise/";
        let mut data = vec![0u8; (1 << 20) - 10];
        data.extend_from_slice(needle);
        data.extend_from_slice(&[0u8; 100]);
        std::fs::write(&p, &data).unwrap();
        assert!(file_contains(&p, needle).unwrap());
        assert!(!file_contains(&p, b"github.com/mattermost/enterprisX").unwrap());
    }
}
