//! The dpkg database of a system root: `var/lib/dpkg/status`, `info/*.list`
//! and `info/*.md5sums`, read directly (never through `dpkg` itself, which
//! would load the whole file database for one question).

use md5::Md5;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use upkeep_sys::error::{Error, IoContext, Result};
use upkeep_sys::root::{normalize_inside, SysRoot};
use upkeep_sys::safe::{self, Dir, Kind, Resolve};

pub const ADMINDIR: &str = "/var/lib/dpkg";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub architecture: Option<String>,
    /// The third word of `Status:` (installed, unpacked, half-configured, …).
    pub state: String,
}

impl Package {
    /// dpkg keeps a `.list` and counts files as owned in every state but
    /// not-installed and config-files.
    pub fn has_files(&self) -> bool {
        !matches!(self.state.as_str(), "not-installed" | "config-files")
    }
}

#[derive(Debug)]
pub struct Dpkg {
    /// Opened once; everything below it is read without following links,
    /// non-blocking, regular files only, bounded.
    admindir: Dir,
    /// `status`, then the journal files in `updates/` in order.
    sources: Vec<(PathBuf, String)>,
    /// Package name → (source, byte range of its paragraph, first line).
    index: HashMap<String, (usize, std::ops::Range<usize>, usize)>,
}

/// A file of the database as text; `None` if it is not there.
fn read_utf8(dir: &Dir, rel: &Path) -> Result<Option<String>> {
    match dir.read(rel, Resolve::NoLinks, safe::limit::DATABASE)? {
        Some(bytes) => safe::utf8(bytes, &dir.shown().join(rel)).map(Some),
        None => Ok(None),
    }
}

impl Dpkg {
    /// Opens the root's dpkg database; `Ok(None)` when the root has none.
    pub fn open(root: &SysRoot) -> Result<Option<Self>> {
        match safe::open_dir(root, ADMINDIR)? {
            Some(dir) => Self::open_admindir(dir),
            None => Ok(None),
        }
    }

    /// Reads `status` and indexes its paragraphs in one cheap pass that
    /// also checks the structure (every paragraph has a Package and a
    /// three-word Status). Fields are parsed only for the packages asked
    /// about: a lookup on a 3,000-package system reads one paragraph.
    ///
    /// Then, as dpkg-query does, the journal in `updates/`: while dpkg runs
    /// (maintainer scripts, triggers) the newest state of a package is
    /// there, not yet merged into `status`.
    pub fn open_admindir(admindir: Dir) -> Result<Option<Self>> {
        let Some(status) = read_utf8(&admindir, Path::new("status"))? else {
            return Ok(None);
        };
        let mut sources = vec![(admindir.shown().join("status"), status)];
        if let Some(updates) = admindir.open_dir(Path::new("updates"), Resolve::NoLinks)? {
            let mut journal: Vec<(u64, std::ffi::OsString)> = updates
                .entries()?
                .into_iter()
                .filter_map(|(name, _)| Some((name.to_str()?.parse::<u64>().ok()?, name)))
                .collect();
            journal.sort();
            for (_, name) in journal {
                if let Some(text) = read_utf8(&updates, Path::new(&name))? {
                    sources.push((updates.shown().join(&name), text));
                }
            }
        }
        let mut index = HashMap::new();
        for (i, (path, text)) in sources.iter().enumerate() {
            for (name, (range, line)) in index_status(path, text)? {
                index.insert(name, (i, range, line));
            }
        }
        Ok(Some(Dpkg {
            admindir,
            sources,
            index,
        }))
    }

    /// One package's record, parsed on demand; a malformed paragraph is bad
    /// input naming its line.
    pub fn package(&self, name: &str) -> Result<Option<Package>> {
        let Some((src, range, line)) = self.index.get(name) else {
            return Ok(None);
        };
        let (path, text) = &self.sources[*src];
        parse_paragraph(path, &text[range.clone()], *line).map(Some)
    }

    /// `info/<pkg>.<ext>`, or with Multi-Arch: same the architecture in
    /// the name; relative to the admindir.
    fn info_file(&self, pkg: &Package, ext: &str) -> Option<PathBuf> {
        let exists = |rel: &Path| {
            self.admindir
                .stat(rel, Resolve::NoLinks, false)
                .is_ok_and(|st| st.is_some())
        };
        let plain = PathBuf::from(format!("info/{}.{ext}", pkg.name));
        if exists(&plain) {
            return Some(plain);
        }
        let arch = pkg.architecture.as_deref()?;
        let qualified = PathBuf::from(format!("info/{}:{arch}.{ext}", pkg.name));
        exists(&qualified).then_some(qualified)
    }

    /// The packages that own `path` (as seen inside the system). The
    /// `hints` (the packages a plugin manifest names) are checked first, so a
    /// product lookup reads one or two `.list` files; only when they do not
    /// own the path is every `.list` searched, with a byte search rather than
    /// a parse.
    pub fn owners(&self, path: &Path, hints: &[String]) -> Result<Vec<String>> {
        let path = normalize_inside(path);
        let needle = path.as_os_str().as_encoded_bytes();
        let mut found = Vec::new();
        for (i, name) in hints.iter().enumerate() {
            // A hint listed twice is looked at once.
            if hints[..i].contains(name) {
                continue;
            }
            let Some(pkg) = self.package(name)?.filter(Package::has_files) else {
                continue;
            };
            if let Some(list) = self.info_file(&pkg, "list") {
                if list_contains(&self.admindir, &list, needle)? {
                    found.push(pkg.name);
                }
            }
        }
        if !found.is_empty() {
            return Ok(found);
        }
        let Some(info) = self
            .admindir
            .open_dir(Path::new("info"), Resolve::NoLinks)?
        else {
            return Ok(found);
        };
        let mut lists = Vec::new();
        for (fname, kind) in info.entries()? {
            let Some(stem) = fname.to_str().and_then(|f| f.strip_suffix(".list")) else {
                continue;
            };
            let name = stem.split_once(':').map_or(stem, |(n, _)| n);
            if kind == Kind::File && self.index.contains_key(name) {
                lists.push((name.to_string(), PathBuf::from(&fname)));
            }
        }
        let info = &info;
        // Reading thousands of small files is syscall-bound: split the work.
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4);
        let chunk = lists.len().div_ceil(threads).max(1);
        let hits: Vec<Result<Vec<String>>> = std::thread::scope(|s| {
            let handles: Vec<_> = lists
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        let mut hits = Vec::new();
                        let mut buf = Vec::new();
                        for (name, path) in part {
                            if list_contains_with(info, path, needle, &mut buf)? {
                                hits.push(name.clone());
                            }
                        }
                        Ok(hits)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Failed("list search thread failed".into())))
                })
                .collect()
        });
        for h in hits {
            for name in h? {
                if self.package(&name)?.is_some_and(|p| p.has_files()) {
                    found.push(name);
                }
            }
        }
        found.sort();
        found.dedup();
        Ok(found)
    }

    /// The md5 that `pkg` recorded for `path`, from `info/<pkg>.md5sums`.
    /// `Ok(None)` if the package recorded none (conffiles, or no md5sums).
    pub fn recorded_md5(&self, pkg: &str, path: &Path) -> Result<Option<String>> {
        let Some(pkg) = self.package(pkg)? else {
            return Ok(None);
        };
        let Some(file) = self.info_file(&pkg, "md5sums") else {
            return Ok(None);
        };
        let Some(text) = self
            .admindir
            .read(&file, Resolve::NoLinks, safe::limit::DATABASE)?
        else {
            return Ok(None);
        };
        let file = self.admindir.shown().join(&file);
        let want = normalize_inside(path);
        let want = want.as_os_str().as_encoded_bytes();
        let want = &want[1..]; // md5sums paths carry no leading slash
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let (sum, rest) = parse_md5sums_line(line).ok_or_else(|| {
                Error::bad_input(
                    &file,
                    Some(i + 1),
                    "not an md5sums line (32 hex digits, two spaces, a path)",
                )
            })?;
            if rest == want {
                return Ok(Some(sum.to_string()));
            }
        }
        Ok(None)
    }
}

fn parse_md5sums_line(line: &[u8]) -> Option<(&str, &[u8])> {
    let sum = line.get(..32)?;
    if !sum.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let rest = line.get(32..)?;
    // dpkg writes two spaces; md5sum's binary marker " *" is accepted too.
    let rest = rest
        .strip_prefix(b"  ")
        .or_else(|| rest.strip_prefix(b" *"))?;
    let rest = rest.strip_prefix(b"/").unwrap_or(rest);
    if rest.is_empty() {
        return None;
    }
    Some((std::str::from_utf8(sum).ok()?, rest))
}

/// md5 of a file, hex, as md5sums records it.
pub fn md5_file(f: &std::fs::File, shown: &Path) -> Result<String> {
    use std::io::Seek;
    let mut f = f;
    f.seek(std::io::SeekFrom::Start(0)).at(shown)?;
    upkeep_sys::fsutil::hex_digest::<Md5>(f.take(safe::limit::BINARY)).at(shown)
}

/// Whether a `.list` file has `needle` as a whole line. Read in fixed
/// chunks (GitLab's list has tens of thousands of lines); only complete
/// lines are searched, the partial tail is carried over.
fn list_contains(dir: &Dir, list: &Path, needle: &[u8]) -> Result<bool> {
    list_contains_with(dir, list, needle, &mut Vec::new())
}

/// The same, with a caller's buffer reused across files.
fn list_contains_with(dir: &Dir, rel: &Path, needle: &[u8], buf: &mut Vec<u8>) -> Result<bool> {
    let list = &dir.shown().join(rel);
    let Some((f, _)) = dir.open_file(rel, Resolve::NoLinks)? else {
        return Ok(false);
    };
    // Bounded: a list linked or grown to something endless is not read forever.
    let mut f = f.take(safe::limit::DATABASE);
    if buf.len() < 64 * 1024 {
        buf.resize(64 * 1024, 0);
    }
    let mut have = 0;
    loop {
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0); // a single line longer than the buffer
        }
        let n = f.read(&mut buf[have..]).at(list)?;
        if n == 0 {
            return Ok(contains_line(&buf[..have], needle));
        }
        have += n;
        let Some(last_nl) = memchr::memrchr(b'\n', &buf[..have]) else {
            continue;
        };
        if contains_line(&buf[..last_nl], needle) {
            return Ok(true);
        }
        buf.copy_within(last_nl + 1..have, 0);
        have -= last_nl + 1;
    }
}

/// Whether `needle` is a whole line of `hay`.
fn contains_line(hay: &[u8], needle: &[u8]) -> bool {
    let finder = memchr::memmem::Finder::new(needle);
    for pos in finder.find_iter(hay) {
        let starts = pos == 0 || hay[pos - 1] == b'\n';
        let end = pos + needle.len();
        let ends = end == hay.len() || hay[end] == b'\n';
        if starts && ends {
            return true;
        }
    }
    false
}

/// One pass over the status file: paragraph boundaries, names, and the
/// structure dpkg itself insists on.
fn index_status(
    path: &Path,
    text: &str,
) -> Result<HashMap<String, (std::ops::Range<usize>, usize)>> {
    let mut index = HashMap::new();
    let mut para_start: Option<(usize, usize)> = None; // (byte, line)
    let mut name: Option<&str> = None;
    let mut has_status = false;
    let mut offset = 0;
    let finish = |index: &mut HashMap<_, _>,
                  start: (usize, usize),
                  end: usize,
                  name: Option<&str>,
                  has_status: bool| {
        let name = name.ok_or_else(|| {
            Error::bad_input(path, Some(start.1), "paragraph without a Package field")
        })?;
        if !has_status {
            return Err(Error::bad_input(
                path,
                Some(start.1),
                format!("package {name} has no Status field"),
            ));
        }
        index.insert(name.to_string(), (start.0..end, start.1));
        Ok(())
    };
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let content = line.trim_end_matches(['\n', '\r']);
        if content.trim().is_empty() {
            if let Some(start) = para_start.take() {
                finish(
                    &mut index,
                    start,
                    offset,
                    name.take(),
                    std::mem::take(&mut has_status),
                )?;
            }
        } else {
            let start = *para_start.get_or_insert((offset, i + 1));
            if let Some(v) = field_value(content, "Package") {
                name = Some(v);
            } else if let Some(v) = field_value(content, "Status") {
                if v.split_whitespace().count() != 3 {
                    return Err(Error::bad_input(
                        path,
                        Some(i + 1),
                        format!(
                            "Status '{v}' is not 'want flag state' (paragraph at line {})",
                            start.1
                        ),
                    ));
                }
                has_status = true;
            }
        }
        offset += line.len();
    }
    if let Some(start) = para_start {
        finish(&mut index, start, offset, name, has_status)?;
    }
    Ok(index)
}

fn field_value<'a>(line: &'a str, field: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(field)?.strip_prefix(':')?;
    Some(rest.trim())
}

/// Parses one status paragraph with deb822-fast.
fn parse_paragraph(path: &Path, text: &str, line: usize) -> Result<Package> {
    let para = deb822_fast::Paragraph::from_str(text)
        .map_err(|e| Error::bad_input(path, Some(line), format!("bad paragraph: {e}")))?;
    let field = |n: &str| para.get(n).map(str::trim);
    let name = field("Package").unwrap_or_default().to_string();
    let status = field("Status").unwrap_or_default();
    let state = status
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string();
    let version = field("Version").unwrap_or_default().to_string();
    if !version.is_empty() {
        crate::version::check_deb(&version).map_err(|why| {
            Error::bad_input(
                path,
                Some(line),
                format!("package {name}: version '{version}': {why}"),
            )
        })?;
    }
    Ok(Package {
        name,
        version,
        architecture: field("Architecture").map(str::to_string),
        state,
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;

    #[test]
    fn whole_lines_only() {
        let hay = b"/opt\n/opt/gitlab/bin/x\n/opt/gitlab/bin/xy\n";
        assert!(contains_line(hay, b"/opt/gitlab/bin/xy"));
        assert!(contains_line(hay, b"/opt"));
        assert!(!contains_line(hay, b"/opt/gitlab/bin"));
        assert!(!contains_line(hay, b"gitlab/bin/x"));
        assert!(contains_line(b"/a", b"/a"));
    }

    #[test]
    fn md5sums_lines() {
        let l = b"0123456789abcdef0123456789abcdef  opt/x";
        assert_eq!(parse_md5sums_line(l).map(|(_, p)| p), Some(&b"opt/x"[..]));
        assert!(parse_md5sums_line(b"zz23456789abcdef0123456789abcdef  opt/x").is_none());
        assert!(parse_md5sums_line(b"0123456789abcdef0123456789abcdef opt/x").is_none());
        assert!(parse_md5sums_line(b"short").is_none());
    }

    #[test]
    fn status_errors_name_the_line() {
        let p = Path::new("status");
        let ok = "Package: a\nStatus: install ok installed\nVersion: 1.0-1\n\nPackage: b\nStatus: deinstall ok config-files\nVersion: 2\n";
        let idx = index_status(p, ok).unwrap();
        let a = parse_paragraph(p, &ok[idx["a"].0.clone()], idx["a"].1).unwrap();
        assert!(a.has_files());
        assert_eq!(a.version, "1.0-1");
        let b = parse_paragraph(p, &ok[idx["b"].0.clone()], idx["b"].1).unwrap();
        assert!(!b.has_files());
        assert_eq!(idx["b"].1, 5);
        let bad = "Package: a\nStatus: install ok installed\n\nPackage: b\nStatus: broken\n";
        let e = index_status(p, bad).unwrap_err().to_string();
        assert!(e.starts_with("status:5:"), "{e}");
        let bad = "Package: a\nStatus: install ok installed\nVersion: 1:\n";
        let idx = index_status(p, bad).unwrap();
        let e = parse_paragraph(p, bad, idx["a"].1).unwrap_err().to_string();
        assert!(e.contains("nothing after colon"), "{e}");
        let bad = "Status: install ok installed\n";
        assert!(index_status(p, bad)
            .unwrap_err()
            .to_string()
            .contains("without a Package"));
        let bad = "Package: x\nVersion: 1\n";
        assert!(index_status(p, bad)
            .unwrap_err()
            .to_string()
            .contains("no Status"));
    }

    #[test]
    fn the_updates_journal_overrides_status_in_order() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("updates")).unwrap();
        std::fs::write(t.path().join("status"), "Package: gitlab-ee\nStatus: install ok installed\nVersion: 18.11.1-ee.0\n\nPackage: other\nStatus: install ok installed\nVersion: 1\n").unwrap();
        std::fs::write(
            t.path().join("updates/0000"),
            "Package: gitlab-ee\nStatus: install ok unpacked\nVersion: 18.11.2-ee.0\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("updates/0001"),
            "Package: gitlab-ee\nStatus: install ok installed\nVersion: 18.11.2-ee.0\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("updates/tmp.i"),
            "garbage, not a journal entry",
        )
        .unwrap();
        let db = Dpkg::open_admindir(safe::open_root(&SysRoot::new(t.path())).unwrap())
            .unwrap()
            .unwrap();
        let p = db.package("gitlab-ee").unwrap().unwrap();
        assert_eq!(
            (p.version.as_str(), p.state.as_str()),
            ("18.11.2-ee.0", "installed")
        );
        assert_eq!(db.package("other").unwrap().unwrap().version, "1");
        std::fs::write(
            t.path().join("updates/0002"),
            "Package: gitlab-ee\nStatus: bad\n",
        )
        .unwrap();
        let e = Dpkg::open_admindir(safe::open_root(&SysRoot::new(t.path())).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("updates/0002:2:"), "{e}");
    }

    #[test]
    fn chunked_list_search_crosses_chunk_edges() {
        let t = tempfile::tempdir().unwrap();
        let d = safe::open_root(&SysRoot::new(t.path())).unwrap();
        let p = Path::new("big.list");
        let mut text = String::new();
        let mut i = 0;
        while text.len() < 600 * 1024 {
            text.push_str(&format!("/opt/gitlab/embedded/lib/file{i:07}.rb\n"));
            i += 1;
        }
        std::fs::write(
            t.path().join(p),
            format!("{text}/opt/gitlab/embedded/bin/mattermost"),
        )
        .unwrap();
        assert!(list_contains(&d, p, b"/opt/gitlab/embedded/bin/mattermost").unwrap());
        assert!(list_contains(&d, p, b"/opt/gitlab/embedded/lib/file0000000.rb").unwrap());
        assert!(list_contains(
            &d,
            p,
            format!("/opt/gitlab/embedded/lib/file{:07}.rb", i - 1).as_bytes()
        )
        .unwrap());
        assert!(!list_contains(&d, p, b"/opt/gitlab/embedded/bin").unwrap());
    }
}
