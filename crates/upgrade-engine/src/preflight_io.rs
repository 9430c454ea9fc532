//! File reads of the preflight, in one place so that the layer they go
//! through can change without touching the checks.

use std::path::Path;
use upkeep_core::{Error, Result};

/// The file's text, `None` when it is not there; at most `max` bytes.
pub fn read_text(path: &Path, max: u64) -> Result<Option<String>> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut buf = Vec::new();
    f.take(max)
        .read_to_end(&mut buf)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}
