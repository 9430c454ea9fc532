//! What upkeep's apt hook does on every transaction, kept small enough for
//! a front binary that starts at the process floor (`upkeep-hook`, see
//! [`front`]): reading apt's `Pre-Install-Pkgs` stream line by line (a bad
//! line is reported and skipped, never the whole run), reading manifest and
//! configuration files without ever blocking (a FIFO or device is refused,
//! reads are bounded), and the package-name prefilter.
//!
//! std, memchr and nix only; no clap, no logger, no TOML.
//!
//! Files are read through upkeep-sys's safe layer, as everywhere: links of
//! the root resolve inside it, only regular files are read, without
//! blocking, bounded.

pub mod front;

use std::borrow::Cow;
use std::io;
use std::path::{Path, PathBuf};

// BUILTIN: the manifests shipped with upkeep (every file in `plugins/`,
// listed by build.rs), used when no packaged manifest directory is found at
// run time (a build tree).
include!(concat!(env!("OUT_DIR"), "/builtin.rs"));

/// Where the packages install the manifests.
pub const PACKAGED_DIR: &str = "/usr/share/upkeep/plugins";
/// Local manifests, inside the system root.
pub const LOCAL_DIR: &str = "/etc/upkeep/plugins.d";
/// Manifests and configuration files are small; anything bigger is refused.
pub const MAX_SMALL_FILE: u64 = 1 << 20;

/// The packaged manifest directory: `$UPKEEP_PLUGIN_DIR` if set; else
/// `../share/upkeep/plugins` next to the running binary (so
/// `/usr/bin/upkeep-guard` reads `/usr/share/upkeep/plugins`), or
/// [`PACKAGED_DIR`] when the binary's own path is unknown (no `/proc` in a
/// chroot); `None` when there is none: the compiled-in [`BUILTIN`] set.
pub fn packaged_plugin_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("UPKEEP_PLUGIN_DIR") {
        return Some(PathBuf::from(d));
    }
    let beside = std::env::current_exe().ok().and_then(|exe| {
        Some(
            exe.parent()?
                .parent()?
                .join("share")
                .join("upkeep")
                .join("plugins"),
        )
    });
    let dir = beside.unwrap_or_else(|| PathBuf::from(PACKAGED_DIR));
    let machine = upkeep_sys::SysRoot::new("/");
    let st = upkeep_sys::safe::stat(&machine, &dir, true).ok()??;
    (upkeep_sys::safe::Kind::of(&st) == upkeep_sys::safe::Kind::Dir).then_some(dir)
}

/// Every manifest text the tools read for `root`, in override order: the
/// packaged set, then `ROOT/etc/upkeep/plugins.d`. Each is its file name,
/// where it came from and its bytes.
pub type Source = (String, PathBuf, Cow<'static, [u8]>);

pub fn manifest_sources(root: &Path) -> Result<Vec<Source>, (PathBuf, io::Error)> {
    use upkeep_sys::safe;
    use upkeep_sys::SysRoot;
    let err =
        |path: &Path, e: upkeep_sys::Error| (path.to_path_buf(), io::Error::other(e.to_string()));
    // Through the one safe layer: the root's links resolve inside it, and
    // only regular files are read, without blocking, bounded.
    let read_dir = |dir: Option<safe::Dir>, out: &mut Vec<Source>| {
        let Some(dir) = dir else { return Ok(()) };
        for (name, _) in dir.entries().map_err(|e| err(dir.shown(), e))? {
            let name = name.to_string_lossy().into_owned();
            if !name.ends_with(".toml") || name.starts_with('.') {
                continue;
            }
            let path = dir.shown().join(&name);
            match dir.read(Path::new(&name), safe::Resolve::InRoot, MAX_SMALL_FILE) {
                Ok(Some(text)) => out.push((name, path, Cow::Owned(text))),
                Ok(None) => {}
                Err(e) => return Err(err(&path, e)),
            }
        }
        Ok(())
    };
    let mut out = Vec::new();
    match packaged_plugin_dir() {
        Some(dir) => {
            let d = safe::open_dir(&SysRoot::new(&dir), "/").map_err(|e| err(&dir, e))?;
            read_dir(d, &mut out)?;
        }
        None => {
            for (name, text) in BUILTIN {
                out.push((
                    name.to_string(),
                    PathBuf::from(format!("builtin:{name}")),
                    Cow::Borrowed(text.as_bytes()),
                ));
            }
        }
    }
    let local = safe::open_dir(&SysRoot::new(root), LOCAL_DIR).map_err(|e| err(root, e))?;
    read_dir(local, &mut out)?;
    Ok(out)
}

/// A byte that may appear in a Debian or RPM package name.
pub fn in_package_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+._-".contains(&b)
}

/// Every word that could be a package name in these texts: runs of the
/// characters package names allow, sorted and unique. Every package a
/// manifest declares is one of them however it is quoted and whatever the
/// comments around it say: a true superset, found without parsing TOML.
pub fn name_candidates<'a>(texts: impl IntoIterator<Item = &'a [u8]>) -> Vec<&'a [u8]> {
    let mut out: Vec<&[u8]> = texts
        .into_iter()
        .flat_map(|t| t.split(|&b| !in_package_name(b)))
        .filter(|w| !w.is_empty())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// One well-formed package line of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// 1-based line number in the stream.
    pub no: usize,
    /// The package name, architecture qualifier removed.
    pub name: &'a [u8],
    /// Old version, direction (`<`, `>`, `=`), new version and action
    /// (a .deb path, which may hold spaces and any bytes, `**CONFIGURE**`
    /// or `**REMOVE**`).
    pub old: &'a [u8],
    pub direction: u8,
    pub new: &'a [u8],
    pub action: &'a [u8],
}

/// What [`scan`] found.
#[derive(Debug, Default)]
pub struct Scan<'a> {
    /// 2 or 3; `None` when the first line is not a `VERSION` line (the
    /// package lines are then read by their shape).
    pub version: Option<u32>,
    pub lines: Vec<Line<'a>>,
    /// One message per line that was skipped (or a bad header), naming it.
    pub problems: Vec<String>,
}

/// Reads apt's `Pre-Install-Pkgs` stream (protocol 2 or 3): `VERSION N`,
/// configuration lines, a blank line, one line per package action. Any
/// bytes are accepted: a line that is not a package action is reported in
/// `problems` and skipped, and every other line is still returned.
pub fn scan(s: &[u8]) -> Scan<'_> {
    let mut out = Scan::default();
    out.version = scan_each(s, |item| {
        match item {
            Ok(line) => out.lines.push(line),
            Err(e) => out.problems.push(e),
        }
        true
    });
    out
}

/// [`scan`] without collecting: `each` gets every package line or problem
/// in stream order and returns false to stop early. Returns the protocol
/// version (`None`: no `VERSION` header).
pub fn scan_each<'a>(
    s: &'a [u8],
    mut each: impl FnMut(Result<Line<'a>, String>) -> bool,
) -> Option<u32> {
    if s.is_empty() {
        each(Err("empty stream".into()));
        return None;
    }
    let mut start = 0;
    let mut lines = memchr::memchr_iter(b'\n', s)
        .chain(std::iter::once(s.len()))
        .map(move |end| {
            let mut l = &s[start.min(end)..end];
            if let [rest @ .., b'\r'] = l {
                l = rest;
            }
            start = end + 1;
            l
        })
        .enumerate();
    let mut version = None;
    let mut header_blank = false;
    match lines.next() {
        Some((_, b"VERSION 3")) => version = Some(3),
        Some((_, b"VERSION 2")) => version = Some(2),
        Some((_, l)) => {
            if !each(Err(format!(
                "line 1: expected 'VERSION 2' or 'VERSION 3', got {}",
                quote(l)
            ))) {
                return None;
            }
            header_blank = l.is_empty();
        }
        None => {}
    }
    if !header_blank {
        for (_, l) in lines.by_ref() {
            if l.is_empty() {
                break;
            }
        }
    }
    for (i, l) in lines {
        if l.is_empty() {
            continue;
        }
        if !each(parse_line(version, i + 1, l)) {
            break;
        }
    }
    version
}

/// `field field ... rest`: the first `n` space-separated fields, each
/// non-empty, and the rest of the line (non-empty; it may hold spaces).
fn split_fields<const N: usize>(l: &[u8]) -> Option<([&[u8]; N], &[u8])> {
    let mut f: [&[u8]; N] = [&[]; N];
    let mut rest = l;
    for slot in f.iter_mut() {
        let sp = memchr::memchr(b' ', rest)?;
        *slot = &rest[..sp];
        if slot.is_empty() {
            return None;
        }
        rest = &rest[sp + 1..];
    }
    (!rest.is_empty()).then_some((f, rest))
}

fn parse_line(version: Option<u32>, no: usize, l: &[u8]) -> Result<Line<'_>, String> {
    let v3 = || split_fields::<8>(l).map(|(f, act)| (f[0], f[1], f[4], f[5], act));
    let v2 = || split_fields::<4>(l).map(|(f, act)| (f[0], f[1], f[2], f[3], act));
    let is_dir = |d: &[u8]| matches!(d, b"<" | b">" | b"=");
    let fields = match version {
        Some(3) => v3(),
        Some(_) => v2(),
        // No header: whichever shape has a direction where it belongs.
        None => v3()
            .filter(|f| is_dir(f.2))
            .or_else(|| v2().filter(|f| is_dir(f.2))),
    };
    let Some((name, old, dir, new, action)) = fields else {
        return Err(format!(
            "line {no}: not a package line of protocol {}: {}",
            version.map_or_else(|| "2 or 3".to_string(), |v| v.to_string()),
            quote(l)
        ));
    };
    if !is_dir(dir) {
        return Err(format!(
            "line {no}: direction {} is not <, > or =",
            quote(dir)
        ));
    }
    let name = &name[..memchr::memchr(b':', name).unwrap_or(name.len())];
    if name.is_empty() || !name.iter().all(|&b| in_package_name(b)) {
        return Err(format!("line {no}: {} is not a package name", quote(name)));
    }
    Ok(Line {
        no,
        name,
        old,
        direction: dir[0],
        new,
        action,
    })
}

/// A short, printable rendering of untrusted bytes for a message.
pub fn quote(b: &[u8]) -> String {
    let cut = &b[..b.len().min(80)];
    let mut s = format!("{:?}", String::from_utf8_lossy(cut));
    if b.len() > cut.len() {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_v3_and_v2() {
        let s = b"VERSION 3\nAPT::Architecture=amd64\nDPkg::Pre-Install-Pkgs::=/usr/bin/x apt-hook\n\ngitlab-ee 1.0-1 all none < 2.0-1 all none /var/cache/apt/archives/gitlab-ee_2.0-1_all.deb\nfoo:amd64 1.0 amd64 same > - - none **REMOVE**\nbar - - none < 1 all none /my debs/bar_1_all.deb\r\n";
        let sc = scan(s);
        assert_eq!(sc.version, Some(3));
        assert!(sc.problems.is_empty(), "{:?}", sc.problems);
        assert_eq!(sc.lines.len(), 3);
        assert_eq!(sc.lines[0].no, 5);
        assert_eq!(sc.lines[1].name, b"foo");
        assert_eq!(sc.lines[1].action, b"**REMOVE**");
        assert_eq!(sc.lines[2].action, b"/my debs/bar_1_all.deb");
        let sc = scan(b"VERSION 2\nX=1\n\ngitlab-ee 1.0 < 2.0 /x.deb\n");
        assert_eq!(
            (sc.lines[0].old, sc.lines[0].new),
            (&b"1.0"[..], &b"2.0"[..])
        );
    }

    #[test]
    fn a_bad_line_is_reported_and_the_others_kept() {
        let s = b"VERSION 3\n\nbroken line\ntegu - - none < 3.1.0 amd64 none /x/\xff\xfe.deb\nx 1 a b ? 2 a b /y.deb\nBad^Name 1 a b < 2 a b /z.deb\ntegu-ent 3.2.0 amd64 none > - - none **REMOVE**\n";
        let sc = scan(s);
        let names: Vec<&[u8]> = sc.lines.iter().map(|l| l.name).collect();
        assert_eq!(names, vec![&b"tegu"[..], b"tegu-ent"]);
        assert_eq!(sc.problems.len(), 3, "{:?}", sc.problems);
        assert!(sc.problems[0].starts_with("line 3:"), "{:?}", sc.problems);
        assert!(sc.problems[1].contains("direction"), "{:?}", sc.problems);
        assert!(sc.problems[2].contains("not a package name"));
    }

    #[test]
    fn a_bad_header_still_reads_the_package_lines() {
        let sc = scan(b"VERSION 9\nA=b\n\ntegu - - none < 3.1.0 amd64 none /x.deb\n");
        assert_eq!(sc.version, None);
        assert_eq!(sc.problems.len(), 1);
        assert_eq!(sc.lines.len(), 1);
        let sc = scan(b"\x00\x01binary");
        assert!(sc.lines.is_empty() && !sc.problems.is_empty());
        assert_eq!(scan(b"").problems, vec!["empty stream".to_string()]);
    }

    #[test]
    fn candidates_are_a_superset() {
        let c = name_candidates([&b"packages = ['a-b', \"c.d+e\"] # x\"y"[..]]);
        assert!(c.contains(&&b"a-b"[..]) && c.contains(&&b"c.d+e"[..]));
        assert!(!c.contains(&&b"zz"[..]));
    }
}
