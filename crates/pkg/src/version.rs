//! Version ordering: dpkg's for Debian packages, rpm's for RPM packages,
//! and plain dotted numbers (`18.11.1`, `3.2.1045`) for products.

use std::cmp::Ordering;
use std::str::FromStr;

/// dpkg's ordering; `None` if either side is not a Debian version.
pub fn compare_deb(a: &str, b: &str) -> Option<Ordering> {
    check_deb(a).ok()?;
    check_deb(b).ok()?;
    let a = debversion::Version::from_str(a).ok()?;
    let b = debversion::Version::from_str(b).ok()?;
    Some(a.cmp(&b))
}

/// dpkg's syntax errors (debversion alone accepts `a:b` or `1.0-`); the
/// message is dpkg's wording.
pub fn check_deb(v: &str) -> Result<(), &'static str> {
    if v.is_empty() {
        return Err("version string is empty");
    }
    if v.contains(char::is_whitespace) {
        return Err("version string has embedded spaces");
    }
    let rest = match v.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() {
                return Err("epoch in version is empty");
            }
            if !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return Err("epoch in version is not number");
            }
            if rest.is_empty() {
                return Err("nothing after colon in version number");
            }
            rest
        }
        None => v,
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, Some(r)),
        None => (rest, None),
    };
    if upstream.is_empty() {
        return Err("version number is empty");
    }
    if revision == Some("") {
        return Err("revision number is empty");
    }
    let ok_up = |b: u8| b.is_ascii_alphanumeric() || b".+-~:".contains(&b);
    if !upstream.bytes().all(ok_up) {
        return Err("invalid character in version number");
    }
    let ok_rev = |b: u8| b.is_ascii_alphanumeric() || b".+~".contains(&b);
    if !revision.unwrap_or_default().bytes().all(ok_rev) {
        return Err("invalid character in revision number");
    }
    Ok(())
}

pub use crate::rpm::compare_evr as compare_rpm;

/// A product version: dot-separated numbers. Build metadata after `+` or a
/// `-` suffix (GitLab's `18.11.1+ee.0`, `18.11.1-ee`) is kept for display
/// and ignored for ordering, except a pre-release (`-rc1`, `-beta2`,
/// `-alpha`, `-pre`), which comes before its release, as in semver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductVersion {
    pub parts: Vec<u64>,
    pub raw: String,
}

impl ProductVersion {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let core = s.split(['+', '-', ' ']).next()?;
        let core = core.strip_prefix('v').unwrap_or(core);
        let parts = core
            .split('.')
            .map(|p| p.parse::<u64>().ok())
            .collect::<Option<Vec<_>>>()?;
        if parts.is_empty() {
            return None;
        }
        Some(ProductVersion {
            parts,
            raw: s.to_string(),
        })
    }

    pub fn major(&self) -> u64 {
        self.parts[0]
    }

    pub fn minor(&self) -> u64 {
        self.parts.get(1).copied().unwrap_or(0)
    }

    /// Just the numbers, `18.11.1`.
    pub fn numeric(&self) -> String {
        self.parts
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }
}

impl ProductVersion {
    /// `-rc1`, `-beta.2`, `-alpha`, `-pre3` after the numbers: the word and
    /// its number (alpha < beta < pre < rc, as the words sort).
    pub fn prerelease(&self) -> Option<(String, u64)> {
        let (_, suffix) = self.raw.split('+').next()?.split_once('-')?;
        let s = suffix.to_ascii_lowercase();
        let word: String = s.chars().take_while(char::is_ascii_alphabetic).collect();
        if !["rc", "alpha", "beta", "pre"].contains(&word.as_str()) {
            return None;
        }
        let digits: String = s[word.len()..]
            .trim_start_matches(['.', '-'])
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some((word, digits.parse().unwrap_or(0)))
    }
}

impl Ord for ProductVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.parts.len().max(other.parts.len());
        (0..n)
            .map(|i| {
                let a = self.parts.get(i).copied().unwrap_or(0);
                let b = other.parts.get(i).copied().unwrap_or(0);
                a.cmp(&b)
            })
            .find(|o| o.is_ne())
            // The same numbers: a pre-release first, then in its order.
            .unwrap_or_else(|| match (self.prerelease(), other.prerelease()) {
                (None, None) => Ordering::Equal,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(a), Some(b)) => a.cmp(&b),
            })
    }
}

impl PartialOrd for ProductVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn a_prerelease_comes_before_its_release_and_editions_do_not_count() {
        let v = |s| ProductVersion::parse(s).unwrap();
        assert!(v("10.5.1-rc1") < v("10.5.1"));
        assert!(v("10.5.1-rc2") > v("10.5.0"));
        assert!(v("5.30.0-beta.1") < v("5.30.0"));
        assert_eq!(v("18.11.1-ee").cmp(&v("18.11.1")), Equal);
        assert_eq!(v("18.11.1+ee.0").cmp(&v("18.11.1")), Equal);
        assert!(v("10.5.1-rc1") < v("10.5.1-rc2"));
        assert!(v("10.5.1-beta3") < v("10.5.1-rc1"));
        assert_eq!(v("10.5.1-rc1").cmp(&v("10.5.1-RC1")), Equal);
    }

    #[test]
    fn deb_order() {
        assert_eq!(compare_deb("2.30-ubuntu1", "2.30-1"), Some(Greater));
        assert_eq!(compare_deb("1.0~rc1", "1.0"), Some(Less));
        assert_eq!(compare_deb("1:0.1", "9.9"), Some(Greater));
        assert_eq!(compare_deb("18.11.1-ee.0", "18.11.1-ee.0"), Some(Equal));
        for bad in ["a:b", "1:", "1.0-", "1 0", "", "-1", "1.0-a/b"] {
            assert_eq!(compare_deb(bad, "1"), None, "{bad}");
        }
    }

    #[test]
    fn product_versions() {
        let v = ProductVersion::parse("18.11.1+ee.0").unwrap();
        assert_eq!(v.numeric(), "18.11.1");
        assert_eq!((v.major(), v.minor()), (18, 11));
        let a = ProductVersion::parse("3.2").unwrap();
        let b = ProductVersion::parse("3.2.0").unwrap();
        assert_eq!(a.cmp(&b), Equal);
        assert!(ProductVersion::parse("19.0.0-ee").unwrap() > v);
        assert!(ProductVersion::parse("x.1").is_none());
        assert!(ProductVersion::parse("").is_none());
    }
}
