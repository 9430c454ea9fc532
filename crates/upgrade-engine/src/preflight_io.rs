//! File reads of the preflight and of the overlay record, through the
//! safe-file layer: resolved inside the root, never following a link out
//! of it, regular files only.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use upkeep_sys::safe::{self, Kind, Resolve};
use upkeep_sys::{Error, Result, SysRoot};

/// The file's text (lossy UTF-8), `None` when it is not there. A file
/// larger than `max` is read from its last `max` bytes on, starting at the
/// first whole line: for logs the recent end is what counts.
pub fn read_text(root: &SysRoot, inside: &Path, max: u64) -> Result<Option<String>> {
    let Some((mut f, st)) = safe::open_file(root, inside)? else {
        return Ok(None);
    };
    let shown = root.path(inside);
    let io = |e: std::io::Error| Error::Io {
        path: shown.clone(),
        source: e,
    };
    let size = u64::try_from(st.st_size).unwrap_or(0);
    let skipped = size > max;
    if skipped {
        f.seek(SeekFrom::Start(size - max)).map_err(io)?;
    }
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf).map_err(io)?;
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if skipped {
        text = match text.split_once('\n') {
            Some((_, rest)) => rest.to_string(),
            None => String::new(),
        };
    }
    Ok(Some(text))
}

/// A file the operator named on the command line (`--log-file`): a path on
/// this machine, read through the same layer from `/`.
pub fn read_operator_file(path: &Path, max: u64) -> Result<Option<String>> {
    let abs: PathBuf = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::Io {
                path: path.to_path_buf(),
                source: e,
            })?
            .join(path)
    };
    read_text(&SysRoot::new("/"), &abs, max)
}

/// Regular files below `inside` (relative to it), sorted; links and
/// special files are not followed or listed.
pub fn walk_files(root: &SysRoot, inside: &Path) -> Result<Vec<String>> {
    fn walk(d: &safe::Dir, rel: &str, out: &mut Vec<String>, depth: usize) -> Result<()> {
        if depth > 32 {
            return Ok(());
        }
        for (name, kind) in d.entries()? {
            let n = name.to_string_lossy();
            let r = if rel.is_empty() {
                n.into_owned()
            } else {
                format!("{rel}/{n}")
            };
            match kind {
                Kind::File => out.push(r),
                Kind::Dir => {
                    if let Some(sub) = d.open_dir(Path::new(&name), Resolve::NoLinks)? {
                        walk(&sub, &r, out, depth + 1)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if let Some(d) = safe::open_dir(root, inside)? {
        walk(&d, "", &mut out, 0)?;
    }
    Ok(out)
}
