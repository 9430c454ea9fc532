//! The rpm database of a system root, asked through the real `rpm` (its
//! database formats are not ours to parse) with `--root` and `--dbpath`.

use std::path::{Path, PathBuf};
use std::process::Command;
use upkeep_sys::error::{Error, Result};
use upkeep_sys::root::{normalize_inside, SysRoot};

/// Where rpm keeps its database inside a root: the historical place and
/// the one Fedora moved to. Debian's rpm defaults to `~/.rpmdb`, so the
/// path is always given explicitly.
const DBPATHS: &[&str] = &["/var/lib/rpm", "/usr/lib/sysimage/rpm"];

#[derive(Debug, Clone)]
pub struct Rpm {
    rpm: PathBuf,
    root: PathBuf,
    dbpath: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmPackage {
    pub name: String,
    /// `[EPOCH:]VERSION-RELEASE`
    pub evr: String,
}

const QF: &str = "%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n";

impl Rpm {
    /// `None` when the root has no rpm database or no `rpm` is installed.
    pub fn open(root: &SysRoot) -> Option<Self> {
        // Resolved inside the root and handed to rpm with no link left in
        // it: rpm itself would follow an absolute link on the machine.
        let dbpath = DBPATHS.iter().copied().find_map(|d| {
            let found = ["Packages", "rpmdb.sqlite", "Packages.db"].iter().any(|f| {
                upkeep_sys::safe::stat(root, format!("{d}/{f}"), true).is_ok_and(|st| st.is_some())
            });
            if !found {
                return None;
            }
            let inside = upkeep_sys::safe::resolve_inside(root, d).ok()??;
            Some(inside.display().to_string())
        })?;
        let rpm = which::which("rpm").ok()?;
        Some(Rpm {
            rpm,
            root: root.dir().to_path_buf(),
            dbpath,
        })
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.rpm);
        c.arg("--root")
            .arg(&self.root)
            .arg("--dbpath")
            .arg(&self.dbpath);
        c.env("LC_ALL", "C");
        c
    }

    fn run(&self, args: &[&std::ffi::OsStr]) -> Result<(bool, String)> {
        let out = self
            .cmd()
            .args(args)
            .output()
            .map_err(|e| Error::Failed(format!("cannot run {}: {e}", self.rpm.display())))?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ))
    }

    /// The package owning `path`, if any.
    pub fn owner(&self, path: &Path) -> Result<Option<RpmPackage>> {
        let p = normalize_inside(path);
        let (ok, out) = self.run(&["-qf".as_ref(), "--qf".as_ref(), QF.as_ref(), p.as_os_str()])?;
        if !ok {
            return Ok(None); // "file ... is not owned by any package"
        }
        Ok(parse_nevr_lines(&out).into_iter().next())
    }

    pub fn package(&self, name: &str) -> Result<Option<RpmPackage>> {
        let (ok, out) = self.run(&["-q".as_ref(), "--qf".as_ref(), QF.as_ref(), name.as_ref()])?;
        Ok(if ok {
            parse_nevr_lines(&out).into_iter().next()
        } else {
            None
        })
    }

    /// The architecture installed package `name` was built for (`%{ARCH}`:
    /// `x86_64`, `aarch64`, `noarch`), if installed.
    pub fn arch(&self, name: &str) -> Result<Option<String>> {
        let (ok, out) = self.run(&[
            "-q".as_ref(),
            "--qf".as_ref(),
            "%{ARCH}\\n".as_ref(),
            name.as_ref(),
        ])?;
        Ok(out
            .lines()
            .next()
            .map(str::trim)
            .filter(|a| ok && !a.is_empty())
            .map(str::to_string))
    }

    /// Whether the content of `path` differs from the digest `pkg` recorded,
    /// as `rpm -V` sees it (size or digest flag, or missing).
    pub fn is_modified(&self, pkg: &str, path: &Path) -> Result<bool> {
        let p = normalize_inside(path);
        let (_, out) = self.run(&[
            "-V".as_ref(),
            "--nodeps".as_ref(),
            "--noscripts".as_ref(),
            pkg.as_ref(),
        ])?;
        Ok(verify_says_modified(&out, &p.to_string_lossy()))
    }
}

fn parse_nevr_lines(out: &str) -> Vec<RpmPackage> {
    out.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, evr)| RpmPackage {
            name: n.to_string(),
            evr: evr.to_string(),
        })
        .collect()
}

/// Reads `rpm -V` output: `SM5DLUGTP  [c] /path` or `missing   /path`.
fn verify_says_modified(out: &str, path: &str) -> bool {
    out.lines().any(|line| {
        let Some(rest) = line.strip_suffix(path) else {
            return false;
        };
        if !rest.ends_with(' ') {
            return false;
        }
        if rest.starts_with("missing") {
            return true;
        }
        let flags = rest.as_bytes();
        flags.len() >= 9 && (flags[0] == b'S' || flags[2] == b'5')
    })
}

/// Whether `v` is an rpm `[EPOCH:]VERSION[-RELEASE]`: a numeric epoch,
/// and a version and release of rpm's characters (no `-` inside either).
pub fn check_evr(v: &str) -> std::result::Result<(), &'static str> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+~^".contains(&b))
    };
    let rest = match v.split_once(':') {
        Some((e, _)) if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) => {
            return Err("epoch in version is not a number")
        }
        Some((_, rest)) => rest,
        None => v,
    };
    let (version, release) = match rest.split_once('-') {
        Some((v, r)) => (v, Some(r)),
        None => (rest, None),
    };
    if !ok(version) {
        return Err("version is empty or has a character rpm does not allow");
    }
    if release.is_some_and(|r| !ok(r)) {
        return Err("release is empty or has a character rpm does not allow (or a second '-')");
    }
    Ok(())
}

/// RPM version order (never dpkg's: `2.30-ubuntu1` vs `2.30-1` differ).
pub fn compare_evr(a: &str, b: &str) -> std::cmp::Ordering {
    rpm_version::Evr::parse(a).cmp(&rpm_version::Evr::parse(b))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;

    #[test]
    fn verify_lines() {
        let out = "S.5....T.    /opt/gitlab/embedded/bin/mattermost\n";
        assert!(verify_says_modified(
            out,
            "/opt/gitlab/embedded/bin/mattermost"
        ));
        assert!(!verify_says_modified(out, "/embedded/bin/mattermost"));
        let out = ".....U...    /opt/x\n";
        assert!(
            !verify_says_modified(out, "/opt/x"),
            "owner change is not content"
        );
        assert!(verify_says_modified("missing     /opt/x\n", "/opt/x"));
        assert!(verify_says_modified("..5......  c /opt/x\n", "/opt/x"));
    }

    #[test]
    fn evr_order_is_rpms() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_evr("2.30-ubuntu1", "2.30-1"), Less);
        assert_eq!(compare_evr("1:1.0-1", "2.0-1"), Greater);
        assert_eq!(compare_evr("1.0~rc1-1", "1.0-1"), Less);
    }

    #[test]
    fn evr_syntax() {
        for good in ["3.2.0", "3.2.0-1", "1:3.2.0-1.el9", "1.0~rc1^git2-1"] {
            assert_eq!(check_evr(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "3.3.0 beta",
            "1:",
            ":1.0",
            "x:1.0",
            "1.0-",
            "1.0-1-2",
            "-1",
        ] {
            assert!(check_evr(bad).is_err(), "{bad:?}");
        }
    }
}
