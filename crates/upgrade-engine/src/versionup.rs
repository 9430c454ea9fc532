//! Version-ups run by the vendor's own installer (the manifest's
//! `[versionup]`): the installed version is read from a file in the
//! vendor's `VV-RR` form, and each source version has its own step list,
//! as manifest data. This module holds the schema and the plan: every
//! step, every command it would run and every services-file entry it would
//! add (`port/proto name`); a port another service holds refuses the plan.
//! Nothing is written. Running it is `versionup_run`.

use serde::{Deserialize, Serialize};
use std::path::Path;
use upkeep_formats::services::{self, Service};
use upkeep_sys::{Error, Result, SysRoot};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionupSpec {
    /// Inside the system; first line `VV-RR` (`05-00`, `02-10`).
    pub version_file: String,
    /// The version every path leads to.
    pub to: String,
    #[serde(default = "default_services_file")]
    pub services_file: String,
    /// The comment on every line added to the services file.
    #[serde(default)]
    pub services_comment: Option<String>,
    /// Service units whose autostart is switched off and restored.
    #[serde(default)]
    pub units: Vec<String>,
    /// Backups kept once a run finished, newest first.
    #[serde(default = "default_backup_keep")]
    pub backup_keep: usize,
    /// Tried in order; the first that matches the installed version wins.
    #[serde(rename = "path")]
    pub paths: Vec<PathSpec>,
}

pub fn default_backup_keep() -> usize {
    3
}

fn default_services_file() -> String {
    "/etc/services".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathSpec {
    /// How the vendor names the source version ("5", "2.0", "02-00").
    pub name: String,
    /// Exact `VV-RR` versions this path is for…
    #[serde(default)]
    pub versions: Vec<String>,
    /// …or every version whose `VV` is one of these.
    #[serde(default)]
    pub majors: Vec<String>,
    pub steps: Vec<StepSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// `stop`, `start`, `autostart-off`, `autostart-restore`, `backup`,
    /// `install`, `run`, `services`, `clear`, `manual`, `reboot`.
    pub kind: String,
    /// What `resume --confirm` names (required for the operator's steps).
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// Commands (argv), `{service}`, `{unit}`, `{root}` and `{installer}`
    /// expand.
    #[serde(default)]
    pub commands: Vec<Vec<String>>,
    /// Commands that put the step back when a later one fails.
    #[serde(default)]
    pub undo: Vec<Vec<String>>,
    /// Once this step is made the new version is in service: a later
    /// failure is finished forward, never undone from the old backup.
    #[serde(default)]
    pub keeps_new: bool,
    /// For `stop`/`start`: the services each command runs for.
    #[serde(default)]
    pub services: Vec<String>,
    /// For `services`: `NAME PORT/PROTO`.
    #[serde(default)]
    pub entries: Vec<String>,
    /// For `backup` and `clear`: paths or globs inside the system.
    #[serde(default)]
    pub paths: Vec<String>,
    /// For `manual`: what the operator must do.
    #[serde(default)]
    pub text: Option<String>,
}

const KINDS: &[&str] = &[
    "stop",
    "start",
    "autostart-off",
    "autostart-restore",
    "backup",
    "install",
    "run",
    "services",
    "clear",
    "manual",
    "reboot",
];

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    /// Every command line the step runs.
    pub commands: Vec<String>,
    /// For `services`: each entry as `port/proto name`, the ones to add.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<String>,
    /// For `services`: wanted entries already in the file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub present: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// A step the operator does (a reboot, a setup screen).
    pub manual: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionupPlan {
    pub product: String,
    pub from: String,
    pub to: String,
    /// The vendor's name of the path taken ("5", "3", "2.0", "02-00").
    pub path: String,
    pub refused: Option<String>,
    pub steps: Vec<Step>,
}

/// The manifest's `[versionup]`, read and checked.
pub fn spec_of(raw: Option<&toml::Value>, source: &Path) -> Result<Option<VersionupSpec>> {
    let Some(v) = raw else {
        return Ok(None);
    };
    let s: VersionupSpec = v
        .clone()
        .try_into()
        .map_err(|e| Error::bad_input(source, None, format!("[versionup]: {e}")))?;
    for p in &s.paths {
        for st in &p.steps {
            if !KINDS.contains(&st.kind.as_str()) {
                return Err(Error::bad_input(
                    source,
                    None,
                    format!(
                        "[versionup] path {}: step '{}' has kind '{}', none of {}",
                        p.name,
                        st.name,
                        st.kind,
                        KINDS.join(", ")
                    ),
                ));
            }
            for e in &st.entries {
                Service::parse(e).map_err(|m| {
                    Error::bad_input(source, None, format!("[versionup] path {}: {m}", p.name))
                })?;
            }
            check_step(st).map_err(|m| {
                Error::bad_input(source, None, format!("[versionup] path {}: {m}", p.name))
            })?;
        }
    }
    Ok(Some(s))
}

/// What the run needs of a step beyond its kind: an id for the
/// operator's steps, only `DIR/*` globs to clear.
fn check_step(st: &StepSpec) -> std::result::Result<(), String> {
    if matches!(st.kind.as_str(), "manual" | "reboot" | "install") && st.id.is_none() {
        return Err(format!(
            "step '{}' ({}) needs an id (what resume --confirm names)",
            st.name, st.kind
        ));
    }
    for p in &st.paths {
        let bare = p.strip_suffix("/*").unwrap_or(p);
        if !p.starts_with('/')
            || bare.contains(['*', '?', '['])
            || bare.split('/').any(|c| c == "..")
        {
            return Err(format!(
                "step '{}': path '{p}' must be absolute, without '..', with at most a final /*",
                st.name
            ));
        }
    }
    Ok(())
}

/// `VV-RR` -> (`VV`, `RR`).
pub fn parse_vvrr(v: &str) -> Option<(String, String)> {
    let (vv, rr) = v.trim().split_once('-')?;
    let ok = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    (ok(vv) && ok(rr)).then(|| (vv.to_string(), rr.to_string()))
}

fn expand(argv: &[String], vars: &[(&str, &str)]) -> Vec<String> {
    argv.iter()
        .map(|a| {
            let mut a = a.clone();
            for (k, v) in vars {
                a = a.replace(&format!("{{{k}}}"), v);
            }
            a
        })
        .collect()
}

/// Every command line of `argvs`, expanded: once per service for
/// `{service}`, once per unit for `{unit}`, else once. `{installer}` stays
/// as written when none is given.
pub fn command_lines(
    argvs: &[Vec<String>],
    services: &[String],
    units: &[String],
    root: &str,
    installer: Option<&str>,
) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let inst = installer.unwrap_or("{installer}");
    for argv in argvs {
        let common = [("root", root), ("installer", inst)];
        if argv.iter().any(|a| a.contains("{service}")) {
            for s in services {
                out.push(expand(argv, &[&common[..], &[("service", s)]].concat()));
            }
        } else if argv.iter().any(|a| a.contains("{unit}")) {
            for u in units {
                out.push(expand(argv, &[&common[..], &[("unit", u)]].concat()));
            }
        } else {
            out.push(expand(argv, &common));
        }
    }
    out
}

/// The installed version, `VV-RR`, from the version file.
pub fn installed(root: &SysRoot, product: &str, spec: &VersionupSpec) -> Result<String> {
    let vf = Path::new(&spec.version_file);
    let text = crate::preflight_io::read_text(root, vf, 4096)?.ok_or_else(|| {
        crate::not_installed(product, root, format!("{} is not there", vf.display()))
    })?;
    let from = text.lines().next().unwrap_or("").trim().to_string();
    parse_vvrr(&from).ok_or_else(|| {
        Error::bad_input(
            root.path(vf),
            Some(1),
            format!("'{from}' is not a VV-RR version (05-00, 02-10)"),
        )
    })?;
    Ok(from)
}

/// The path for `from`: an exact `versions` match first, then `majors`.
pub fn path_for<'a>(spec: &'a VersionupSpec, from: &str) -> Option<&'a PathSpec> {
    let vv = parse_vvrr(from)?.0;
    spec.paths
        .iter()
        .find(|p| p.versions.iter().any(|v| v == from))
        .or_else(|| spec.paths.iter().find(|p| p.majors.contains(&vv)))
}

/// Reads the version and the services file; decides; writes nothing.
/// With `installer` (a path inside the system) the install step runs it;
/// without, the install step is the operator's.
pub fn plan(
    root: &SysRoot,
    product: &str,
    spec: &VersionupSpec,
    installer: Option<&str>,
) -> Result<VersionupPlan> {
    let from = installed(root, product, spec)?;
    let (vv, _) = parse_vvrr(&from).unwrap_or_default();
    let mut refused = None;
    if parse_vvrr(&spec.to).is_some_and(|(tv, _)| vv >= tv) {
        refused = Some(format!(
            "{product} {from} is not older than {}: nothing to version up",
            spec.to
        ));
    }
    let path = path_for(spec, &from);
    let Some(path) = path else {
        let names: Vec<&str> = spec.paths.iter().map(|p| p.name.as_str()).collect();
        return Ok(VersionupPlan {
            product: product.to_string(),
            from: from.clone(),
            to: spec.to.clone(),
            path: String::new(),
            refused: refused.or(Some(format!(
                "no version-up path from {from} (the manifest has: {})",
                names.join(", ")
            ))),
            steps: vec![],
        });
    };
    let services_text =
        crate::preflight_io::read_text(root, Path::new(&spec.services_file), 16 << 20)?
            .unwrap_or_default();
    let root_s = root.dir().display().to_string();
    let mut steps = Vec::new();
    for st in &path.steps {
        let commands: Vec<String> =
            command_lines(&st.commands, &st.services, &spec.units, &root_s, installer)
                .iter()
                .map(|a| a.join(" "))
                .collect();
        let mut entries = Vec::new();
        let mut present = Vec::new();
        if st.kind == "services" {
            let wanted: Vec<Service> = st
                .entries
                .iter()
                .filter_map(|e| Service::parse(e).ok())
                .collect();
            let comment = spec.services_comment.as_deref().unwrap_or(product);
            match services::add(&services_text, &wanted, comment) {
                Ok(a) => {
                    entries = a.added.iter().map(|s| s.to_string()).collect();
                    present = wanted
                        .iter()
                        .filter(|w| !a.added.contains(w))
                        .map(|s| s.to_string())
                        .collect();
                }
                Err(conflicts) => {
                    let why: Vec<String> = conflicts.iter().map(|c| c.to_string()).collect();
                    refused.get_or_insert(format!(
                        "{}: {}; nothing is changed",
                        spec.services_file,
                        why.join("; ")
                    ));
                    entries = wanted.iter().map(|s| s.to_string()).collect();
                }
            }
        }
        steps.push(Step {
            kind: st.kind.clone(),
            id: st.id.clone(),
            name: st.name.clone(),
            commands,
            entries,
            present,
            paths: st.paths.clone(),
            manual: is_operators(&st.kind, installer.is_some()),
            text: st.text.clone(),
        });
    }
    Ok(VersionupPlan {
        product: product.to_string(),
        from,
        to: spec.to.clone(),
        path: path.name.clone(),
        refused,
        steps,
    })
}

/// Whether a step of this kind is the operator's (apply stops there).
pub fn is_operators(kind: &str, have_installer: bool) -> bool {
    matches!(kind, "manual" | "reboot") || (kind == "install" && !have_installer)
}

/// The plan as text.
pub fn render(p: &VersionupPlan) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} -> {} (the vendor's path from {})",
        p.product, p.from, p.to, p.path
    );
    match &p.refused {
        Some(r) => {
            let _ = writeln!(s, "  REFUSED    {r}");
        }
        None => {
            let _ = writeln!(s, "  policy     allowed");
        }
    }
    for (i, st) in p.steps.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {:>2}. {}{}",
            i + 1,
            st.name,
            if st.manual { " (manual)" } else { "" }
        );
        for c in &st.commands {
            let _ = writeln!(s, "        $ {c}");
        }
        for e in &st.entries {
            let _ = writeln!(s, "        + {e}");
        }
        for e in &st.present {
            let _ = writeln!(s, "        = {e} (already there)");
        }
        for x in &st.paths {
            let _ = writeln!(s, "        {x}");
        }
        if let Some(t) = st.text.as_ref().filter(|_| st.manual) {
            let _ = writeln!(s, "        {t}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vvrr() {
        assert_eq!(parse_vvrr("02-10"), Some(("02".into(), "10".into())));
        assert_eq!(parse_vvrr(" 05-00\n"), Some(("05".into(), "00".into())));
        for bad in ["5", "2.0", "05-0", "a5-00", "05-00-1", ""] {
            assert_eq!(parse_vvrr(bad), None, "{bad}");
        }
    }
}
