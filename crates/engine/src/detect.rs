//! Finds the installs of every product a plugin manifest describes: where,
//! which version and edition, who manages them.

use crate::plugin::{
    expand, Edition, EditionRule, GuardSpec, InstallSpec, LeaseSpec, Plugin, VersionSource,
};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;
use upkeep_pkg::dpkg::{self, Dpkg};
use upkeep_pkg::rpm::Rpm;
use upkeep_pkg::ManagerKind;
use upkeep_sys::error::{Error, Result};
use upkeep_sys::fsutil::file_contains;
use upkeep_sys::root::SysRoot;
use upkeep_sys::safe;
use upkeep_sys::users::Accounts;

/// The JSON report (`--format json`). Field names are a documented,
/// stable interface: add fields, never rename them.
#[derive(Debug, Serialize)]
pub struct Report {
    pub root: String,
    pub installs: Vec<Install>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Install {
    pub product: String,
    /// gitlab-omnibus, tarball, deb or rpm.
    pub kind: String,
    pub version: Option<String>,
    pub edition: Edition,
    /// How people call the edition ("Enterprise Edition"), per the manifest.
    pub edition_title: String,
    pub dir: Option<String>,
    pub config: Option<String>,
    pub binary: Option<FileInfo>,
    pub manager: Manager,
    /// The binary's content differs from what its package recorded (`null`
    /// when no package recorded a checksum for it).
    pub modified_from_package: Option<bool>,
    /// For embedded instances: whether the host runs it (`null` otherwise).
    pub embedded_enabled: Option<bool>,
    pub host: Option<Host>,
    /// Declared services whose unit or run directory is in the root.
    pub services: Vec<String>,
    /// Declared services with no unit or run directory in the root.
    pub services_missing: Vec<String>,
    pub service_manager: Option<String>,
    pub user: Option<String>,
    /// What upkeep-lease lends for an in-place upgrade (paths expanded).
    pub lease: Option<LeaseSpec>,
    #[serde(skip)]
    pub ships_edition: Option<Edition>,
    #[serde(skip)]
    pub guard: Option<GuardSpec>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileInfo {
    /// As seen inside the system.
    pub path: String,
    pub owner: String,
    pub group: String,
    pub uid: u32,
    pub gid: u32,
    /// Octal permission bits, e.g. "0755".
    pub mode: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manager {
    #[serde(rename = "type")]
    pub kind: ManagerKind,
    pub package: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub product: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Run binaries for their version where a manifest allows it.
    pub allow_exec: bool,
}

/// What a detection run needs from the system, opened once.
pub struct System<'a> {
    pub root: &'a SysRoot,
    pub accounts: Accounts,
    pub dpkg: Option<Dpkg>,
    pub rpm: Option<Rpm>,
    pub warnings: Vec<String>,
}

impl<'a> System<'a> {
    pub fn open(root: &'a SysRoot) -> Result<Self> {
        Ok(System {
            root,
            accounts: Accounts::load(root)?,
            dpkg: Dpkg::open(root)?,
            rpm: Rpm::open(root),
            warnings: Vec::new(),
        })
    }
}

pub fn detect(sys: &mut System<'_>, plugins: &[&Plugin], opts: &Options) -> Result<Report> {
    let mut installs = Vec::new();
    for plugin in plugins {
        for spec in &plugin.manifest.installs {
            if let Some(i) = detect_install(sys, plugin, spec, opts)? {
                installs.push(i);
            }
        }
    }
    Ok(Report {
        root: sys.root.dir().display().to_string(),
        installs,
        warnings: std::mem::take(&mut sys.warnings),
    })
}

fn detect_install(
    sys: &mut System<'_>,
    plugin: &Plugin,
    spec: &InstallSpec,
    opts: &Options,
) -> Result<Option<Install>> {
    let root = sys.root;
    // The binary, opened once (non-blocking, regular files only, links
    // resolved inside the root): a FIFO or device there is reported, never read.
    let binary_file = match spec.binary.as_deref().map(|b| safe::open_file(root, b)) {
        // Bounded: a sparse terabyte planted at the path is never scanned.
        Some(Ok(Some((_, st)))) if st.st_size as u64 > safe::limit::BINARY => {
            sys.warnings.push(format!(
                "{}: is larger than {} bytes: not read",
                root.path(spec.binary.as_deref().unwrap_or_default())
                    .display(),
                safe::limit::BINARY
            ));
            None
        }
        Some(Ok(found)) => found,
        Some(Err(e)) => {
            sys.warnings.push(e.to_string());
            None
        }
        None => None,
    };
    let dir_present = match spec.dir.as_deref().map(|d| safe::stat(root, d, true)) {
        Some(Ok(Some(st))) => safe::Kind::of(&st) == safe::Kind::Dir,
        Some(Err(e)) => {
            sys.warnings.push(e.to_string());
            false
        }
        _ => false,
    };
    if binary_file.is_none() && !dir_present {
        return Ok(None);
    }
    let m = &plugin.manifest;
    let binary = spec.binary.as_deref();
    let dir = spec.dir.as_deref();

    let binary_info = match (&binary_file, binary) {
        (Some((_, st)), Some(path)) => Some(FileInfo {
            path: path.to_string(),
            owner: sys.accounts.user_label(st.st_uid),
            group: sys.accounts.group_label(st.st_gid),
            uid: st.st_uid,
            gid: st.st_gid,
            mode: format!("{:04o}", st.st_mode & 0o7777),
            size: st.st_size as u64,
        }),
        _ => None,
    };

    // Who manages it: the package owning the binary (or the directory).
    let owned_path = binary
        .filter(|_| binary_file.is_some())
        .or(dir)
        .map(Path::new);
    let hints: Vec<String> = spec.packages.iter().chain(&m.packages).cloned().collect();
    let (manager, modified) = match owned_path {
        Some(p) => find_manager(sys, p, &hints, binary_file.as_ref().map(|(f, _)| f))?,
        None => (tarball(), None),
    };

    let kind = match manager.kind {
        _ if !spec.kind_by_manager => spec.kind.clone(),
        ManagerKind::Dpkg => "deb".to_string(),
        other => other.to_string(),
    };

    let version = read_version(sys, &spec.version, binary, dir, opts)
        .or_else(|| manager.version.as_deref().map(upstream_version));
    let host = spec.host.as_ref().map(|h| Host {
        product: h.product.clone(),
        version: read_version(sys, &h.version, binary, dir, opts),
    });
    let edition = decide_edition(
        sys.root,
        &m.editions,
        binary_file.as_ref().map(|(f, _)| f),
        binary,
        dir,
        &manager,
        opts,
    );
    let embedded_enabled = spec.embedded.as_ref().map(|e| {
        safe::stat(root, &e.enabled_if_symlink, false)
            .is_ok_and(|st| st.is_some_and(|st| safe::Kind::of(&st) == safe::Kind::Symlink))
    });

    let (services, services_missing) = find_services(
        root,
        spec,
        spec.services.clone().unwrap_or_else(|| m.services.clone()),
    );
    Ok(Some(Install {
        product: m.name.clone(),
        kind,
        version,
        edition_title: m.edition_title(&edition),
        edition,
        dir: dir.filter(|_| dir_present).map(str::to_string),
        config: spec.config.clone(),
        binary: binary_info,
        manager,
        modified_from_package: modified,
        embedded_enabled,
        host,
        services,
        services_missing,
        service_manager: spec.service_manager.clone(),
        user: spec.user.clone().or_else(|| m.user.clone()),
        lease: spec.lease.as_ref().map(|l| LeaseSpec {
            paths: l.paths.iter().map(|p| expand(p, binary, dir)).collect(),
            to: l.to.clone(),
            dir: l.dir,
            private: l.private,
            conversion: l.conversion.clone(),
        }),
        ships_edition: spec.ships_edition.clone(),
        guard: spec.guard.clone(),
    }))
}

/// Where a service manager keeps what defines a service, when the
/// manifest does not say.
fn default_service_paths(manager: Option<&str>) -> &'static [&'static str] {
    match manager {
        Some("systemd") => &[
            "/etc/systemd/system/{service}.service",
            "/lib/systemd/system/{service}.service",
            "/usr/lib/systemd/system/{service}.service",
        ],
        Some("runit") => &["/etc/sv/{service}", "/etc/service/{service}"],
        _ => &[],
    }
}

/// Splits the declared services into those found in the root and those
/// declared but not found: a service is reported only when it is there.
fn find_services(
    root: &SysRoot,
    spec: &InstallSpec,
    declared: Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let defaults = default_service_paths(spec.service_manager.as_deref());
    let patterns: Vec<&str> = if spec.service_paths.is_empty() {
        defaults.to_vec()
    } else {
        spec.service_paths.iter().map(String::as_str).collect()
    };
    declared.into_iter().partition(|svc| {
        // `tegu.service` and `tegu` name the same systemd unit.
        let name = svc.strip_suffix(".service").unwrap_or(svc);
        patterns.iter().any(|p| {
            safe::stat(root, p.replace("{service}", name), true).is_ok_and(|st| st.is_some())
        })
    })
}

fn tarball() -> Manager {
    Manager {
        kind: ManagerKind::Tarball,
        package: None,
        version: None,
    }
}

/// The owning package from dpkg, else rpm; and whether the file's content
/// still matches what that package recorded.
fn find_manager(
    sys: &mut System<'_>,
    path: &Path,
    hints: &[String],
    file: Option<&std::fs::File>,
) -> Result<(Manager, Option<bool>)> {
    if let Some(db) = &sys.dpkg {
        if let Some(pkg) = db.owners(path, hints)?.into_iter().next() {
            let version = db.package(&pkg)?.map(|p| p.version);
            let modified = match (file, db.recorded_md5(&pkg, path)?) {
                (Some(f), Some(sum)) => Some(dpkg::md5_file(f, &sys.root.path(path))? != sum),
                _ => None,
            };
            return Ok((
                Manager {
                    kind: ManagerKind::Dpkg,
                    package: Some(pkg),
                    version,
                },
                modified,
            ));
        }
    }
    if let Some(rpm) = &sys.rpm {
        if let Some(pkg) = rpm.owner(path)? {
            let modified = if file.is_some() {
                Some(rpm.is_modified(&pkg.name, path)?)
            } else {
                None
            };
            return Ok((
                Manager {
                    kind: ManagerKind::Rpm,
                    package: Some(pkg.name),
                    version: Some(pkg.evr),
                },
                modified,
            ));
        }
    }
    Ok((tarball(), None))
}

/// `1:10.5.2-1` → `10.5.2`: the upstream part of a package version.
fn upstream_version(v: &str) -> String {
    let v = v.split_once(':').map_or(v, |(_, r)| r);
    v.rsplit_once('-').map_or(v, |(u, _)| u).to_string()
}

pub fn read_version(
    sys: &mut System<'_>,
    sources: &[VersionSource],
    binary: Option<&str>,
    dir: Option<&str>,
    opts: &Options,
) -> Option<String> {
    for src in sources {
        if let Some(rec) = &src.record {
            match recorded_version(sys.root, &expand(rec, binary, dir)) {
                Some(v) => return Some(v),
                None => continue,
            }
        }
        let text = if let Some(file) = &src.file {
            let inside = expand(file, binary, dir);
            match safe::read_to_string(sys.root, &inside, safe::limit::CONFIG) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    sys.warnings.push(e.to_string());
                    continue;
                }
            }
        } else if let Some(argv) = &src.exec {
            if !opts.allow_exec {
                continue;
            }
            match run_for_version(sys.root, argv, binary, dir, src.timeout_ms.unwrap_or(5000)) {
                Ok(t) => t,
                Err(e) => {
                    sys.warnings.push(e);
                    continue;
                }
            }
        } else {
            continue;
        };
        let value = if let Some(key) = &src.json {
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => key
                    .split('.')
                    .try_fold(&v, |v, k| v.get(k))
                    .and_then(|v| v.as_str().map(str::to_string)),
                Err(e) => {
                    let f = src.file.as_deref().unwrap_or_default();
                    sys.warnings.push(format!(
                        "{}:{}: not valid JSON: {e}",
                        expand(f, binary, dir),
                        e.line()
                    ));
                    None
                }
            }
        } else {
            pick_line(&text, src.prefix.as_deref(), src.field)
        };
        if let Some(v) = value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        {
            return Some(v);
        }
    }
    None
}

/// An install record upkeep wrote (`{"version": …, "files": [[path,
/// sha256], …]}`): its version while every listed file (inside the root)
/// still has its digest; `None` when there is no record, it does not parse,
/// or any file differs or is gone.
pub fn recorded_version(root: &SysRoot, inside: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Rec {
        version: String,
        files: Vec<(String, String)>,
    }
    let text = safe::read_to_string(root, inside, safe::limit::CONFIG).ok()??;
    let rec: Rec = serde_json::from_str(&text).ok()?;
    let matches = |(path, want): &(String, String)| {
        matches!(safe::open_file(root, path), Ok(Some((f, _)))
            if safe::sha256_file(&f).is_ok_and(|got| &got == want))
    };
    (!rec.files.is_empty() && rec.files.iter().all(matches) && !rec.version.is_empty())
        .then_some(rec.version)
}

fn pick_line(text: &str, prefix: Option<&str>, field: Option<usize>) -> Option<String> {
    let line = match prefix {
        Some(p) => text.lines().find_map(|l| l.trim_start().strip_prefix(p))?,
        None => text.lines().find(|l| !l.trim().is_empty())?,
    };
    match field {
        Some(n) => line.split_whitespace().nth(n - 1).map(str::to_string),
        None => Some(line.trim().to_string()),
    }
}

fn run_for_version(
    root: &SysRoot,
    argv: &[String],
    binary: Option<&str>,
    dir: Option<&str>,
    timeout_ms: u64,
) -> Result<String, String> {
    let args: Vec<String> = argv.iter().map(|a| expand(a, binary, dir)).collect();
    let program = args.first().ok_or("an empty command")?;
    // Nothing a lease holder could have written is run.
    crate::lease::may_run(root, Path::new(program)).map_err(|e| e.to_string())?;
    // The program is the root's, its links resolved inside the root.
    let prog = safe::resolve(root, program)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{program}: not found"))?;
    let mut cmd = std::process::Command::new(&prog);
    cmd.args(&args[1..]);
    match upkeep_sys::process::run_with_timeout(&mut cmd, None, Duration::from_millis(timeout_ms)) {
        Ok(Some(out)) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(None) => Err(format!(
            "{}: no answer within {timeout_ms} ms, killed",
            args[0]
        )),
        Err(e) => Err(format!("{}: cannot run: {e}", args[0])),
    }
}

fn decide_edition(
    root: &SysRoot,
    rules: &[EditionRule],
    binary_file: Option<&std::fs::File>,
    binary: Option<&str>,
    dir: Option<&str>,
    manager: &Manager,
    opts: &Options,
) -> Edition {
    for r in rules {
        let decided = if let Some(marker) = &r.binary_contains {
            binary_file.is_some_and(|b| file_contains(b, marker.as_bytes()).unwrap_or(false))
        } else if let Some(marker) = &r.binary_lacks {
            binary_file.is_some_and(|b| matches!(file_contains(b, marker.as_bytes()), Ok(false)))
        } else if let Some(f) = &r.file_exists {
            safe::stat(root, expand(f, binary, dir), true).is_ok_and(|st| st.is_some())
        } else if let Some(pkgs) = &r.package {
            manager.package.as_ref().is_some_and(|p| pkgs.contains(p))
        } else if let (Some(argv), Some(want)) = (&r.exec, &r.output_contains) {
            // `mattermost version` says "Build Enterprise Ready: true".
            opts.allow_exec
                && binary_file.is_some()
                && run_for_version(root, argv, binary, dir, 5000)
                    .is_ok_and(|out| out.contains(want.as_str()))
        } else {
            false
        };
        if decided {
            return r.edition.clone();
        }
    }
    Edition::unknown()
}

/// One package that owns a path, and which database said so.
#[derive(Debug, Clone, Serialize)]
pub struct Owner {
    pub manager: ManagerKind,
    pub package: String,
}

/// The packages owning `path` (as `dpkg -S`, `rpm -qf` answer): the dpkg
/// database first, hinted by the manifests' package names, then rpm's.
pub fn owners(root: &SysRoot, path: &Path) -> Result<Vec<Owner>> {
    let hints: Vec<String> = crate::plugin::load(root)?
        .iter()
        .flat_map(|p| p.manifest.all_packages().cloned())
        .collect();
    let mut owners = Vec::new();
    if let Some(db) = Dpkg::open(root)? {
        for package in db.owners(path, &hints)? {
            owners.push(Owner {
                manager: ManagerKind::Dpkg,
                package,
            });
        }
    }
    if owners.is_empty() {
        if let Some(rpm) = Rpm::open(root) {
            if let Some(p) = rpm.owner(path)? {
                owners.push(Owner {
                    manager: ManagerKind::Rpm,
                    package: p.name,
                });
            }
        }
    }
    Ok(owners)
}

/// Picks the plugins named on the command line (all if none); an unknown
/// name is a usage error.
pub fn select<'p>(plugins: &'p [Plugin], names: &[String]) -> Result<Vec<&'p Plugin>> {
    if names.is_empty() {
        return Ok(plugins.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            plugins.iter().find(|p| p.name() == n).ok_or_else(|| {
                let known: Vec<&str> = plugins.iter().map(Plugin::name).collect();
                Error::Usage(format!(
                    "unknown product '{n}' (known: {})",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;

    #[test]
    fn line_picking() {
        assert_eq!(
            pick_line("gitlab-ee 18.11.1\n", None, Some(2)).as_deref(),
            Some("18.11.1")
        );
        assert_eq!(
            pick_line("\n 10.5.2 \n", None, None).as_deref(),
            Some("10.5.2")
        );
        let out = "Version: 10.5.2\nBuild Enterprise Ready: true\n";
        assert_eq!(
            pick_line(out, Some("Version:"), None).as_deref(),
            Some("10.5.2")
        );
        assert_eq!(pick_line(out, Some("Nope:"), None), None);
        assert_eq!(pick_line("a\n", None, Some(3)), None);
    }

    #[test]
    fn upstream_part() {
        assert_eq!(upstream_version("1:10.5.2-1"), "10.5.2");
        assert_eq!(upstream_version("18.11.1-ee.0"), "18.11.1");
        assert_eq!(upstream_version("3.2.1045"), "3.2.1045");
    }
}
