//! The system root every path is resolved under (`--root`, `$DPKG_ROOT`, `/`).

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoot {
    dir: PathBuf,
}

impl SysRoot {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SysRoot { dir: dir.into() }
    }

    /// `--root` if given, else `$DPKG_ROOT` (as dpkg sets it for maintainer
    /// scripts), else `/`. An empty `$DPKG_ROOT` means `/`, as in dpkg.
    pub fn from_arg_or_env(arg: Option<PathBuf>) -> Self {
        Self::choose(arg, std::env::var_os("DPKG_ROOT"))
    }

    fn choose(arg: Option<PathBuf>, env: Option<OsString>) -> Self {
        match (arg, env) {
            (Some(a), _) => SysRoot::new(a),
            (None, Some(e)) if !e.is_empty() => SysRoot::new(e),
            _ => SysRoot::new("/"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_host(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// Maps a path as seen inside the system (`/opt/gitlab/...`) to where it
    /// is on this machine. `..` components are dropped lexically so that a
    /// manifest or a package list can never name something outside the root.
    pub fn path(&self, inside: impl AsRef<Path>) -> PathBuf {
        let mut out = self.dir.clone();
        for c in inside.as_ref().components() {
            if let Component::Normal(part) = c {
                out.push(part);
            }
        }
        out
    }
}

/// Normalises a path as seen inside the system: absolute, no `.`/`..`, no
/// trailing slash. Used for comparing against package file lists.
pub fn normalize_inside(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;

    #[test]
    fn arg_beats_env_and_empty_env_is_slash() {
        let r = SysRoot::choose(Some("/a".into()), Some("/b".into()));
        assert_eq!(r.dir(), Path::new("/a"));
        let r = SysRoot::choose(None, Some("/b".into()));
        assert_eq!(r.dir(), Path::new("/b"));
        let r = SysRoot::choose(None, Some("".into()));
        assert!(r.is_host());
        assert!(SysRoot::choose(None, None).is_host());
    }

    #[test]
    fn paths_stay_inside_root() {
        let r = SysRoot::new("/tmp/r");
        assert_eq!(r.path("/opt/x"), PathBuf::from("/tmp/r/opt/x"));
        assert_eq!(
            r.path("../../etc/passwd"),
            PathBuf::from("/tmp/r/etc/passwd")
        );
        assert_eq!(
            normalize_inside(Path::new("/opt/./a/../b/")),
            PathBuf::from("/opt/b")
        );
    }
}
