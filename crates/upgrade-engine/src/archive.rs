//! Release archives (`.tar.gz`), checked whole before anything is written:
//! names stay inside the one top directory (no `..`, no absolute names),
//! links point inside it, no devices or FIFOs, no duplicates, sizes within
//! the manifest's limits, no setuid/setgid unless allowed, and the declared
//! binaries are ELF for this machine's architecture.

use flate2::read::GzDecoder;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use tar::EntryType;
use upkeep_engine::release::ReleaseSpec;
use upkeep_pkg::arch::{elf_machine, elf_machine_name, host_elf_machine};
use upkeep_pkg::version::ProductVersion;
use upkeep_sys::Error;

/// What an entry is, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File {
        size: u64,
    },
    Symlink {
        target: PathBuf,
    },
    /// A hard link to an earlier regular file (relative to the top).
    HardLink {
        target: String,
    },
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// Relative to the top directory; empty for the top itself.
    pub rel: String,
    pub kind: Kind,
    pub mode: u32,
}

/// A checked archive: its entries in archive order and what it says about
/// itself.
#[derive(Debug, Clone)]
pub struct Checked {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
    pub version: String,
    pub total_bytes: u64,
}

impl Checked {
    /// Every path the release ships, relative to the top: its entries and
    /// the directories above them (a directory with no entry of its own,
    /// which tar makes all the same). The top itself is `""`.
    pub fn names(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        for e in &self.entries {
            let mut p = e.rel.as_str();
            out.insert(p);
            while let Some((parent, _)) = p.rsplit_once('/') {
                out.insert(parent);
                p = parent;
            }
        }
        out
    }
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::bad_input(path, None, msg.into())
}

/// Lexically normalised, relative to the top directory. `None` if it
/// leaves it.
pub(crate) fn normalize(name: &Path, top: &str) -> Result<String, String> {
    if name.is_absolute() {
        return Err("absolute name".into());
    }
    let mut parts: Vec<String> = Vec::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => parts.push(
                p.to_str()
                    .ok_or_else(|| "name is not UTF-8".to_string())?
                    .to_string(),
            ),
            Component::CurDir => {}
            Component::ParentDir => return Err("'..' in name".into()),
            Component::RootDir | Component::Prefix(_) => return Err("absolute name".into()),
        }
    }
    if parts.first().map(String::as_str) != Some(top) {
        return Err(format!("outside the one top directory '{top}/'"));
    }
    Ok(parts[1..].join("/"))
}

/// Where a symlink at `rel` pointing to `target` lands, relative to the
/// top; `None` if outside.
fn link_lands(rel: &str, target: &Path) -> Option<String> {
    if target.is_absolute() {
        return None;
    }
    let mut parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    parts.pop();
    for c in target.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

fn first_line(data: &[u8], prefix: Option<&str>) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    text.lines().find_map(|l| match prefix {
        Some(p) => l.strip_prefix(p).map(|v| v.trim().to_string()),
        None => Some(l.trim().to_string()).filter(|s| !s.is_empty()),
    })
}

/// Reads the version from a tree on disk (the installed release).
pub fn tree_version(spec: &ReleaseSpec, root: &upkeep_sys::SysRoot, dir: &Path) -> Option<String> {
    spec.version.iter().find_map(|v| {
        let data = crate::fsops::read(root, &dir.join(&v.file)).ok()??;
        first_line(&data, v.prefix.as_deref())
    })
}

pub fn open_tar(path: &Path) -> upkeep_sys::Result<tar::Archive<GzDecoder<File>>> {
    let f = crate::fsops::open_archive(path)?;
    Ok(tar::Archive::new(GzDecoder::new(f)))
}

/// Reads and checks the whole archive. Bad archives are bad input (65);
/// the wrong architecture is a refusal (3).
pub fn check(spec: &ReleaseSpec, path: &Path) -> upkeep_sys::Result<Checked> {
    let mut ar = open_tar(path)?;
    let rd = |e: std::io::Error| bad(path, format!("cannot read the archive: {e}"));
    let mut entries: Vec<Entry> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0u64;
    let mut versions: BTreeMap<usize, String> = BTreeMap::new();
    let host = host_elf_machine();
    for e in ar.entries().map_err(rd)? {
        let mut e = e.map_err(rd)?;
        let ty = e.header().entry_type();
        if matches!(ty, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue;
        }
        let name = e.path().map_err(rd)?.into_owned();
        let shown = name.display().to_string();
        let rel =
            normalize(&name, &spec.top).map_err(|why| bad(path, format!("{shown}: {why}")))?;
        let mut anc = rel.as_str();
        while let Some((up, _)) = anc.rsplit_once('/') {
            if let Some(Kind::Symlink { .. }) = seen.get(up).map(|&i| &entries[i].kind) {
                return Err(bad(path, format!("{shown}: below a symlink ({up})")));
            }
            anc = up;
        }
        if seen.insert(rel.clone(), entries.len()).is_some() {
            return Err(bad(path, format!("{shown}: duplicate entry")));
        }
        let mode = e.header().mode().map_err(rd)?;
        if mode & 0o6000 != 0 && !spec.allow_setid.contains(&rel) {
            return Err(bad(
                path,
                format!(
                    "{shown}: setuid/setgid bit (mode {:04o}) not allowed by the manifest",
                    mode & 0o7777
                ),
            ));
        }
        let kind = match ty {
            EntryType::Directory => Kind::Dir,
            EntryType::Regular | EntryType::Continuous => {
                let size = e.size();
                if size > spec.max_entry_bytes {
                    return Err(bad(
                        path,
                        format!(
                            "{shown}: {size} bytes, over the limit of {}",
                            spec.max_entry_bytes
                        ),
                    ));
                }
                total += size;
                if total > spec.max_total_bytes {
                    return Err(bad(
                        path,
                        format!("over the limit of {} bytes in all", spec.max_total_bytes),
                    ));
                }
                if let Some(i) = spec.version.iter().position(|v| v.file == rel) {
                    let mut data = Vec::new();
                    (&mut e).take(4096).read_to_end(&mut data).map_err(rd)?;
                    if let Some(v) = first_line(&data, spec.version[i].prefix.as_deref()) {
                        versions.insert(i, v);
                    }
                }
                if spec.binaries.contains(&rel) {
                    let mut head = Vec::new();
                    (&mut e).take(64).read_to_end(&mut head).map_err(rd)?;
                    let m =
                        elf_machine(&head).map_err(|why| bad(path, format!("{shown} {why}")))?;
                    if let Some(h) = host {
                        if m != h {
                            return Err(Error::Refused(format!(
                                "{}: {shown} is built for {}, this machine is {}",
                                path.display(),
                                elf_machine_name(m),
                                elf_machine_name(h)
                            )));
                        }
                    }
                }
                Kind::File { size }
            }
            EntryType::Symlink => {
                let target = e
                    .link_name()
                    .map_err(rd)?
                    .ok_or_else(|| bad(path, format!("{shown}: symlink without a target")))?
                    .into_owned();
                if link_lands(&rel, &target).is_none() {
                    return Err(bad(
                        path,
                        format!(
                            "{shown}: symlink points outside the release ({})",
                            target.display()
                        ),
                    ));
                }
                Kind::Symlink { target }
            }
            EntryType::Link => {
                let target = e
                    .link_name()
                    .map_err(rd)?
                    .ok_or_else(|| bad(path, format!("{shown}: hard link without a target")))?
                    .into_owned();
                let t = normalize(&target, &spec.top).map_err(|why| {
                    bad(
                        path,
                        format!(
                            "{shown}: hard link points outside the release ({}: {why})",
                            target.display()
                        ),
                    )
                })?;
                match seen.get(&t).map(|&i| &entries[i].kind) {
                    Some(Kind::File { .. }) => {}
                    _ => {
                        return Err(bad(
                            path,
                            format!(
                                "{shown}: hard link to {t}, which is not an earlier regular file"
                            ),
                        ))
                    }
                }
                Kind::HardLink { target: t }
            }
            other => {
                return Err(bad(
                    path,
                    format!("{shown}: {other:?} entries (devices, FIFOs, ...) are not allowed"),
                ))
            }
        };
        entries.push(Entry { rel, kind, mode });
    }
    if entries.is_empty() {
        return Err(bad(path, "empty archive"));
    }
    for b in &spec.binaries {
        if !seen.contains_key(b) {
            log::info!("{}: no {b} in this release", path.display());
        }
    }
    let is_file = |r: &String| {
        matches!(
            seen.get(r).map(|&i| &entries[i].kind),
            Some(Kind::File { .. })
        )
    };
    if let Some(r) = spec.required.iter().find(|r| !is_file(r)) {
        return Err(bad(
            path,
            format!("no file {r} in the archive: not a release (the manifest requires it); nothing was written"),
        ));
    }
    let version = versions.into_values().next().ok_or_else(|| {
        let want: Vec<&str> = spec.version.iter().map(|v| v.file.as_str()).collect();
        bad(
            path,
            format!(
                "no version found in the archive (looked in {})",
                want.join(", ")
            ),
        )
    })?;
    check_name_agrees(path, &version)?;
    Ok(Checked {
        path: path.to_path_buf(),
        entries,
        version,
        total_bytes: total,
    })
}

/// The dotted numbers in an archive's file name (`9.11.0` in
/// `mattermost-9.11.0-linux-amd64.tar.gz`; none in `release.tar.gz`).
fn versions_in_name(name: &str) -> Vec<Vec<u64>> {
    let mut found = Vec::new();
    for token in name.split(|c: char| !(c.is_ascii_digit() || c == '.')) {
        let token = token.trim_matches('.');
        if !token.contains('.') {
            continue;
        }
        if let Some(parts) = token
            .split('.')
            .map(|p| p.parse::<u64>().ok())
            .collect::<Option<Vec<u64>>>()
        {
            found.push(parts);
        }
    }
    found
}

/// Same version when equal once the shorter is padded with zeros (`9.11`
/// names `9.11.0`).
fn same_numbers(a: &[u64], b: &[u64]) -> bool {
    (0..a.len().max(b.len())).all(|i| a.get(i).unwrap_or(&0) == b.get(i).unwrap_or(&0))
}

/// The version comes from the archive's contents; a file name that says
/// another one is a mislabelled archive, refused rather than guessed.
fn check_name_agrees(path: &Path, version: &str) -> upkeep_sys::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let named = versions_in_name(&name);
    let Some(content) = ProductVersion::parse(version) else {
        return Ok(()); // the caller refuses a content version that is none
    };
    if named.is_empty() || named.iter().any(|n| same_numbers(n, &content.parts)) {
        return Ok(());
    }
    let said: Vec<String> = named
        .iter()
        .map(|n| n.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
        .collect();
    Err(bad(
        path,
        format!(
            "archive-name-mismatch: its name says {}, but the release inside says {version}; nothing was changed. Get the archive again, or rename it to what it holds",
            said.join(" or ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_a_file_name_says() {
        let v = |n: &str| versions_in_name(n);
        assert_eq!(v("mattermost-9.11.0-linux-amd64.tar.gz"), [vec![9, 11, 0]]);
        assert!(v("release.tar.gz").is_empty());
        assert!(v("mattermost-linux-amd64.tar.gz").is_empty());
        assert_eq!(v("mm-v10.5.1.tar.gz"), [vec![10, 5, 1]]);
        let p = |n: &str| Path::new(n).to_path_buf();
        assert!(check_name_agrees(&p("/x/mattermost-9.11.0-linux-amd64.tar.gz"), "9.11.0").is_ok());
        assert!(check_name_agrees(&p("/x/mattermost-9.11-linux-amd64.tar.gz"), "9.11.0").is_ok());
        assert!(check_name_agrees(&p("/x/release.tar.gz"), "9.10.0").is_ok());
        let e = check_name_agrees(&p("/x/mattermost-9.11.0-linux-amd64.tar.gz"), "9.10.0")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("archive-name-mismatch") && e.contains("9.11.0"),
            "{e}"
        );
    }

    #[test]
    fn names_and_links() {
        assert_eq!(normalize(Path::new("mm/bin/x"), "mm").unwrap(), "bin/x");
        assert_eq!(normalize(Path::new("./mm/"), "mm").unwrap(), "");
        assert!(normalize(Path::new("mm/../etc"), "mm").is_err());
        assert!(normalize(Path::new("/mm/x"), "mm").is_err());
        assert!(normalize(Path::new("other/x"), "mm").is_err());
        assert_eq!(link_lands("bin/x", Path::new("../lib/y")).unwrap(), "lib/y");
        assert!(link_lands("bin/x", Path::new("../../etc")).is_none());
        assert!(link_lands("x", Path::new("/etc/passwd")).is_none());
    }
}
