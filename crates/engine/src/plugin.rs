//! Product plugins: one TOML manifest per product. Everything upkeep knows
//! about a product (where it installs, how to read its version and edition,
//! which packages carry it) is here, never in code.
//!
//! The packaged set is read at run time from `/usr/share/upkeep/plugins`
//! (`../share/upkeep/plugins` beside the binary, or `$UPKEEP_PLUGIN_DIR`;
//! compiled in from `plugins/` when there is none, as in a build tree);
//! `ROOT/etc/upkeep/plugins.d/NAME.toml` overrides the packaged manifest of
//! the same name, or adds a new product. Every file is read without
//! blocking (a FIFO is refused) and bounded in size.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use upkeep_sys::error::{Error, Result};
use upkeep_sys::root::SysRoot;
use upkeep_sys::safe;

pub const LOCAL_DIR: &str = "/etc/upkeep/plugins.d";
pub const SCHEMA: u32 = 1;

/// The manifests shipped with upkeep (the files in `plugins/`), compiled
/// in for a build tree; an installed upkeep reads its packaged directory.
pub use upkeep_hookscan::BUILTIN;

/// An edition, by the name a manifest gives it; `unknown` when no rule
/// of the manifest decides.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Edition(String);

impl Edition {
    const UNKNOWN: &'static str = "unknown";

    pub fn unknown() -> Edition {
        Edition(Self::UNKNOWN.to_string())
    }

    pub fn is_known(&self) -> bool {
        self.0 != Self::UNKNOWN
    }

    pub fn name(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Edition {
    fn from(s: &str) -> Edition {
        Edition(s.to_string())
    }
}

impl Default for Edition {
    fn default() -> Edition {
        Edition::unknown()
    }
}

impl std::fmt::Display for Edition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema: u32,
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    /// Every package that carries the product, in any install kind.
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default, rename = "install")]
    pub installs: Vec<InstallSpec>,
    /// Rules tried in order; the first that decides gives the edition.
    #[serde(default, rename = "edition")]
    pub editions: Vec<EditionRule>,
    /// How people call each edition ("Enterprise Edition").
    #[serde(default)]
    pub edition_titles: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub upgrade: UpgradePolicy,
    /// How an install from the release archive is upgraded (upkeep-upgrade).
    #[serde(default)]
    pub release: Option<crate::release::ReleaseSpec>,
    /// Checks run before an upgrade changes anything (database, logs); read
    /// by upkeep-upgrade's preflight, which holds the schema.
    #[serde(default)]
    pub preflight: Option<toml::Value>,
    /// An upgrade that copies the release's directories over the install
    /// (upkeep-upgrade's overlay, which holds the schema).
    #[serde(default)]
    pub overlay: Option<toml::Value>,
    /// A version-up by the vendor's installer, one step list per source
    /// version (upkeep-upgrade's versionup, which holds the schema).
    #[serde(default)]
    pub versionup: Option<toml::Value>,
    /// What upkeep-maintscript keeps across a package upgrade.
    #[serde(default)]
    pub maintscript: Option<crate::maintscript::MaintscriptSpec>,
}

impl Manifest {
    /// Every package that carries the product: the product's own list and
    /// each install kind's (a package may appear in both).
    pub fn all_packages(&self) -> impl Iterator<Item = &String> {
        self.packages
            .iter()
            .chain(self.installs.iter().flat_map(|i| &i.packages))
    }

    pub fn carried_by(&self, package: &str) -> bool {
        self.all_packages().any(|p| p == package)
    }

    /// How people call `edition`: the manifest's title, else its name.
    pub fn edition_title(&self, edition: &Edition) -> String {
        match self.edition_titles.get(edition.name()) {
            Some(t) => t.clone(),
            None if edition.is_known() => edition.name().to_string(),
            None => "edition unknown".to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallSpec {
    /// What the manifest calls this kind of install (reported as is).
    pub kind: String,
    /// Report the kind after the package database that owns the binary
    /// instead (`deb`, `rpm` or `tarball`).
    #[serde(default)]
    pub kind_by_manager: bool,
    /// The main binary, as seen inside the system.
    #[serde(default)]
    pub binary: Option<String>,
    /// The install or application directory.
    #[serde(default)]
    pub dir: Option<String>,
    #[serde(default)]
    pub config: Option<String>,
    /// Packages that own this install's files, checked first when looking
    /// for the owner.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Services of this install kind (defaults to the product's).
    #[serde(default)]
    pub services: Option<Vec<String>>,
    #[serde(default)]
    pub service_manager: Option<String>,
    /// Where a service's unit or run directory stands (`{service}` is
    /// replaced); default: the usual places of the service manager.
    #[serde(default)]
    pub service_paths: Vec<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// Where the version comes from: the first source that yields one wins.
    #[serde(default)]
    pub version: Vec<VersionSource>,
    /// The product this one is embedded in (GitLab for Omnibus).
    #[serde(default)]
    pub host: Option<HostSpec>,
    #[serde(default)]
    pub embedded: Option<EmbeddedSpec>,
    /// What an in-place upgrade of this install needs lent (upkeep-lease).
    #[serde(default)]
    pub lease: Option<LeaseSpec>,
    /// The edition its packages ship (Omnibus ships Mattermost Team): any
    /// other edition found there was put in by hand and will be reverted.
    #[serde(default)]
    pub ships_edition: Option<Edition>,
    /// What undoes a local change here, and what to do about it (upkeep-guard).
    #[serde(default)]
    pub guard: Option<GuardSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardSpec {
    /// What reverts a locally replaced binary (`{package}` expands).
    #[serde(default)]
    pub reverted_by: Vec<String>,
    /// What to do about it.
    #[serde(default)]
    pub advice: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseSpec {
    /// Paths to lend (`{binary}`, `{dir}` expand).
    pub paths: Vec<String>,
    /// `USER[:GROUP]` to lend them to.
    pub to: String,
    /// Also lend the directory holding each path (Mattermost's upgrader
    /// renames the old binary and creates a new one beside it).
    #[serde(default)]
    pub dir: bool,
    /// Instead of the directory, lend a private directory of the binary's
    /// own: the binary moves into it (a link stays at its path) for the
    /// lease. For upgraders that check the directory of the executable's
    /// real path (Mattermost's `os.Executable()`).
    #[serde(default)]
    pub private: bool,
    /// The product's own in-place conversion the lease is for: where it
    /// runs, what grant says about it, the manual route elsewhere.
    #[serde(default, skip_serializing)]
    pub conversion: Option<ConversionSpec>,
}

/// The product's own in-place conversion (Mattermost's upgrader), as data:
/// `upkeep-lease grant --product` refuses on an architecture it does not
/// run on and prints the manual route instead; otherwise it prints the
/// notices. In every text `{version}`, `{arch}`, `{binary}` and `{package}`
/// expand.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionSpec {
    /// What it is called, for messages ("Mattermost's in-place upgrade to
    /// Enterprise Edition").
    pub name: String,
    /// The architectures it runs on (Debian's names: amd64, arm64).
    pub architectures: Vec<String>,
    /// The edition it converts to: restore says whether that happened.
    #[serde(default)]
    pub edition: Option<Edition>,
    /// Full sentences printed at grant: what it downloads, how a proxy
    /// applies, where the service's environment is set.
    #[serde(default)]
    pub notices: Vec<String>,
    /// Full sentences: what to do by hand where it does not run.
    #[serde(default)]
    pub manual: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    pub product: String,
    #[serde(default)]
    pub version: Vec<VersionSource>,
    /// The host's control command (`gitlab-ctl`), as seen inside the system.
    #[serde(default)]
    pub ctl: Option<String>,
    /// Its arguments for a reconfigure.
    #[serde(default)]
    pub reconfigure: Vec<String>,
    /// The host's own Ruby, used to syntax-check its Ruby config.
    #[serde(default)]
    pub ruby: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedSpec {
    /// The embedded instance is enabled iff this path is a symlink (runit's
    /// service link under Omnibus).
    pub enabled_if_symlink: String,
    /// The host's Ruby config file that switches it (gitlab.rb).
    #[serde(default)]
    pub config: Option<String>,
    /// The settings hash (`mattermost` in `mattermost['enable']`).
    #[serde(default)]
    pub setting: Option<String>,
    #[serde(default)]
    pub enable_key: Option<String>,
    /// Settings that enable the instance by themselves unless the enable
    /// key is set explicitly (`mattermost_external_url`).
    #[serde(default)]
    pub implied_by: Vec<String>,
    /// The config template's section heading, where a new setting goes.
    #[serde(default)]
    pub section: Option<String>,
    /// The service name for the host's `ctl status`.
    #[serde(default)]
    pub service: Option<String>,
    /// Host version that removed the bundled instance.
    #[serde(default)]
    pub removed_in: Option<String>,
    /// Until this host version any remaining setting aborts a reconfigure.
    #[serde(default)]
    pub any_setting_fatal_until: Option<String>,
    /// What the removal form comments out (hash names and method settings).
    #[serde(default)]
    pub removed_settings: Vec<String>,
    /// Printed after disabling: how to move the data to a standalone server.
    #[serde(default)]
    pub next_steps: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionSource {
    /// A file to read: its first line, unless `json` or `field` say more.
    #[serde(default)]
    pub file: Option<String>,
    /// A key (dots for nesting) in a JSON file.
    #[serde(default)]
    pub json: Option<String>,
    /// A whitespace-separated field (1-based) of the first matching line.
    #[serde(default)]
    pub field: Option<usize>,
    /// Only lines starting with this prefix; the prefix is removed.
    #[serde(default)]
    pub prefix: Option<String>,
    /// A command to run (`{binary}` expands). Only run when the caller
    /// explicitly allows it (`--allow-exec`), with `timeout_ms`.
    #[serde(default)]
    pub exec: Option<Vec<String>>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// upkeep's own install record (`upkeep-upgrade` writes it: the
    /// version, the archive, the SHA-256 of every file it placed): its
    /// version, for as long as every recorded file still has its digest.
    #[serde(default)]
    pub record: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditionRule {
    pub edition: Edition,
    /// The binary contains these bytes.
    #[serde(default)]
    pub binary_contains: Option<String>,
    /// The binary is readable and does not contain these bytes.
    #[serde(default)]
    pub binary_lacks: Option<String>,
    /// This file exists (`{dir}`, `{binary}` expand).
    #[serde(default)]
    pub file_exists: Option<String>,
    /// The install is managed by one of these packages.
    #[serde(default)]
    pub package: Option<Vec<String>>,
    /// Running this (`{binary}` expands; only with --allow-exec) prints
    /// `output_contains`.
    #[serde(default)]
    pub exec: Option<Vec<String>>,
    #[serde(default)]
    pub output_contains: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradePolicy {
    /// `block` or `warn` (default `warn`): what a downgrade gets.
    #[serde(default)]
    pub downgrade: Option<String>,
    /// Which version part may change the schema (`minor` for TEGU).
    #[serde(default)]
    pub schema_changes_on: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Plugin {
    pub manifest: Manifest,
    /// Where it came from, for messages (`builtin:mattermost.toml` or a path).
    pub source: PathBuf,
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.manifest.name
    }
}

/// Replaces `{binary}` and `{dir}` in a manifest path.
pub fn expand(template: &str, binary: Option<&str>, dir: Option<&str>) -> String {
    let mut s = template.to_string();
    if let Some(b) = binary {
        s = s.replace("{binary}", b);
    }
    if let Some(d) = dir {
        s = s.replace("{dir}", d);
    }
    s
}

/// Parses and checks one manifest.
pub fn parse_manifest(source: &Path, text: &str) -> Result<Manifest> {
    let m: Manifest = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| 1 + text[..s.start.min(text.len())].matches('\n').count());
        Error::bad_input(source, line, e.message().to_string())
    })?;
    let bad = |msg: String| Err(Error::bad_input(source, None, msg));
    if m.schema != SCHEMA {
        return bad(format!(
            "field 'schema': version {} is not supported (this upkeep reads {SCHEMA})",
            m.schema
        ));
    }
    if m.name.is_empty()
        || !m
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return bad(format!(
            "field 'name': '{}' is not a plain product name",
            m.name
        ));
    }
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    for (i, inst) in m.installs.iter().enumerate() {
        if !plain(&inst.kind) {
            return bad(format!(
                "[[install]] #{}: field 'kind': '{}' is not a plain name",
                i + 1,
                inst.kind
            ));
        }
        if inst.binary.is_none() && inst.dir.is_none() {
            return bad(format!("[[install]] #{}: needs 'binary' or 'dir'", i + 1));
        }
        let host_paths = inst.host.iter().flat_map(|h| h.ctl.iter().chain(&h.ruby));
        let embedded_paths = inst.embedded.iter().flat_map(|e| {
            e.config
                .iter()
                .chain(std::iter::once(&e.enabled_if_symlink))
        });
        for p in inst
            .binary
            .iter()
            .chain(&inst.dir)
            .chain(&inst.config)
            .chain(host_paths)
            .chain(embedded_paths)
        {
            if !p.starts_with('/') {
                return bad(format!(
                    "[[install]] #{}: path '{p}' must be absolute",
                    i + 1
                ));
            }
        }
        let sources = inst
            .version
            .iter()
            .chain(inst.host.iter().flat_map(|h| &h.version));
        for s in sources {
            let kinds = [s.file.is_some(), s.exec.is_some(), s.record.is_some()];
            if kinds.iter().filter(|k| **k).count() != 1 {
                return bad(format!(
                    "[[install]] #{}: a version source needs exactly one of 'file', 'exec' or 'record'",
                    i + 1
                ));
            }
            if s.field == Some(0) {
                return bad(format!("[[install]] #{}: 'field' counts from 1", i + 1));
            }
            if s.exec.as_ref().is_some_and(Vec::is_empty) {
                return bad(format!("[[install]] #{}: 'exec' is empty", i + 1));
            }
        }
    }
    for (i, r) in m.editions.iter().enumerate() {
        let n = [
            r.binary_contains.is_some(),
            r.binary_lacks.is_some(),
            r.file_exists.is_some(),
            r.package.is_some(),
            r.exec.is_some(),
        ]
        .iter()
        .filter(|&&b| b)
        .count();
        if n != 1 {
            return bad(format!(
                "[[edition]] #{}: needs exactly one of binary_contains, binary_lacks, file_exists, package, exec",
                i + 1
            ));
        }
        if r.exec.as_ref().is_some_and(Vec::is_empty) {
            return bad(format!("[[edition]] #{}: 'exec' is empty", i + 1));
        }
        if r.exec.is_some() != r.output_contains.is_some() {
            return bad(format!(
                "[[edition]] #{}: 'exec' and 'output_contains' go together",
                i + 1
            ));
        }
    }
    if let Some(d) = &m.upgrade.downgrade {
        if d != "block" && d != "warn" {
            return bad(format!(
                "field 'upgrade.downgrade': '{d}' is not block or warn"
            ));
        }
    }
    if let Some(r) = &m.release {
        if let Err(msg) = r.validate() {
            return bad(msg);
        }
    }
    if let Some(s) = &m.maintscript {
        if let Err(msg) = s.validate() {
            return bad(msg);
        }
    }
    Ok(m)
}

/// The manifest sources, in override order: the packaged set, then the
/// root's `plugins.d`. Each is its file name, where it came from (for
/// messages) and its text.
fn sources(root: &SysRoot) -> Result<Vec<(String, PathBuf, Cow<'static, str>)>> {
    let mut out = Vec::new();
    // The packaged directory (beside the binary, or $UPKEEP_PLUGIN_DIR);
    // none in a build tree: the compiled-in copies.
    match upkeep_hookscan::packaged_plugin_dir() {
        Some(dir) => {
            if let Some(d) = safe::open_dir(&SysRoot::new(dir), "/")? {
                out.extend(toml_files(&d)?);
            }
        }
        None => {
            for (name, text) in BUILTIN {
                out.push((
                    name.to_string(),
                    PathBuf::from(format!("builtin:{name}")),
                    Cow::Borrowed(*text),
                ));
            }
        }
    }
    if let Some(d) = safe::open_dir(root, LOCAL_DIR)? {
        out.extend(toml_files(&d)?);
    }
    Ok(out)
}

/// Loads the packaged manifests, then the root's local ones over them.
pub fn load(root: &SysRoot) -> Result<Vec<Plugin>> {
    let mut plugins: Vec<Plugin> = Vec::new();
    for (file_name, source, text) in sources(root)? {
        let m = parse_manifest(&source, &text)?;
        let stem = file_name.trim_end_matches(".toml");
        if m.name != stem {
            return Err(Error::bad_input(
                &source,
                None,
                format!(
                    "field 'name': '{}' must match the file name '{stem}'",
                    m.name
                ),
            ));
        }
        let plugin = Plugin {
            manifest: m,
            source,
        };
        match plugins.iter_mut().find(|p| p.name() == stem) {
            Some(p) => *p = plugin,
            None => plugins.push(plugin),
        }
    }
    Ok(plugins)
}

/// Every word that could be a package name in the manifest sources `load`
/// reads: runs of the characters Debian and RPM allow in package names.
/// Every package a manifest declares is one of them, however it is quoted
/// and whatever the comments around it contain, so this is a true superset,
/// found without parsing TOML. The apt hook uses it to see in microseconds
/// that a transaction touches nothing upkeep knows.
pub fn package_name_candidates(root: &SysRoot) -> Result<NameCandidates> {
    let in_name = |b: u8| b.is_ascii_alphanumeric() || b"+._-".contains(&b);
    let mut out = Vec::new();
    for (_, _, text) in sources(root)? {
        out.extend(
            text.as_bytes()
                .split(|&b| !in_name(b))
                .filter(|w| !w.is_empty())
                // Only ASCII bytes were kept, so this is valid UTF-8.
                .map(|w| String::from_utf8_lossy(w).into_owned()),
        );
    }
    out.sort_unstable();
    out.dedup();
    Ok(NameCandidates(out))
}

/// A sorted set of words (binary search: a few comparisons, no hashing).
#[derive(Debug)]
pub struct NameCandidates(Vec<String>);

impl NameCandidates {
    pub fn contains(&self, s: &str) -> bool {
        self.0.binary_search_by(|x| x.as_str().cmp(s)).is_ok()
    }
}

/// The `*.toml` files of a directory in name order, with their text:
/// regular files only, read without blocking and bounded (a FIFO or a huge
/// file there is bad input, never a hang).
fn toml_files(dir: &safe::Dir) -> Result<Vec<(String, PathBuf, Cow<'static, str>)>> {
    let mut out = Vec::new();
    for (name, _) in dir.entries()? {
        let name = name.to_string_lossy().into_owned();
        if !name.ends_with(".toml") || name.starts_with('.') {
            continue;
        }
        let path = dir.shown().join(&name);
        let Some(bytes) = dir.read(Path::new(&name), safe::Resolve::InRoot, safe::limit::CONFIG)?
        else {
            continue;
        };
        out.push((name, path.clone(), Cow::Owned(safe::utf8(bytes, &path)?)));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;

    #[test]
    fn builtin_manifests_parse_and_match_plugins_dir() {
        for (name, text) in BUILTIN {
            parse_manifest(Path::new(name), text).unwrap();
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
        let dir = safe::open_dir(&SysRoot::new(dir), "/").unwrap().unwrap();
        let on_disk: Vec<String> = toml_files(&dir)
            .unwrap()
            .into_iter()
            .map(|(n, _, _)| n)
            .collect();
        let mut built: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
        built.sort();
        assert_eq!(
            on_disk, built,
            "every manifest in plugins/ must be compiled in"
        );
        // The quick superset really holds every package name.
        let t = tempfile::tempdir().unwrap();
        let root = SysRoot::new(t.path());
        let candidates = package_name_candidates(&root).unwrap();
        for p in load(&root).unwrap() {
            for name in p.manifest.all_packages() {
                assert!(candidates.contains(name), "{name}");
            }
        }
    }

    #[test]
    fn candidates_hold_every_package_however_quoted_and_commented() {
        let t = tempfile::tempdir().unwrap();
        let root = SysRoot::new(t.path());
        let dir = root.path(LOCAL_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        // An odd quote in a comment throws quote pairing off; words do not care.
        std::fs::write(
            dir.join("odd.toml"),
            "# the vendor's own \"package\nschema = 1\nname = \"odd\"\npackages = ['odd-server', \"libodd2\", 'x.y+z']\n",
        )
        .unwrap();
        let candidates = package_name_candidates(&root).unwrap();
        let odd = load(&root)
            .unwrap()
            .into_iter()
            .find(|p| p.name() == "odd")
            .unwrap();
        for name in odd.manifest.all_packages() {
            assert!(candidates.contains(name), "{name}");
        }
        assert!(
            candidates.contains("gitlab-ee"),
            "the packaged manifests too"
        );
        assert!(!candidates.contains("libfoo0"));
    }

    #[test]
    fn errors_name_line_and_field() {
        let p = Path::new("x.toml");
        let e = parse_manifest(p, "schema = 1\nname = \"x\"\nbogus = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.toml:3:") && e.contains("bogus"), "{e}");
        let e = parse_manifest(
            p,
            "schema = 1\nname = \"x\"\n[[edition]]\nedition = \"team\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("[[edition]] #1"), "{e}");
        let e = parse_manifest(p, "schema = 2\nname = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'schema'"), "{e}");
        let e = parse_manifest(p, "schema = 1\nname = \"x\"\n[[install]]\nkind = \"gitlab-omnibus\"\nbinary = \"rel/x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("absolute"), "{e}");
        let e = parse_manifest(
            p,
            "schema = 1\nname = \"x\"\n[[install]]\nkind = 5\nbinary = \"/x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("x.toml:4:"), "{e}");
        // Kinds are the manifest's own words, but plain ones.
        assert!(parse_manifest(
            p,
            "schema = 1\nname = \"x\"\n[[install]]\nkind = \"any-kind\"\nbinary = \"/x\"\n"
        )
        .is_ok());
        let e = parse_manifest(
            p,
            "schema = 1\nname = \"x\"\n[[install]]\nkind = \"a kind\"\nbinary = \"/x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("'kind'"), "{e}");
    }
}
