//! Version-ups run by the vendor's own installer (the manifest's
//! `[versionup]`): the installed version is read from a file in the
//! vendor's `VV-RR` form, and each source version has its own step list,
//! as manifest data. This module holds the schema and the plan: every
//! step, every command it would run and every services-file entry it would
//! add (`port/proto name`); a port another service holds refuses the plan.
//! Nothing is written.

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
    /// Tried in order; the first that matches the installed version wins.
    #[serde(rename = "path")]
    pub paths: Vec<PathSpec>,
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
    /// `run`, `services`, `clear`, `manual`, `reboot`.
    pub kind: String,
    pub name: String,
    /// Commands (argv), `{service}`, `{unit}` and `{root}` expand.
    #[serde(default)]
    pub commands: Vec<Vec<String>>,
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
    "run",
    "services",
    "clear",
    "manual",
    "reboot",
];

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub kind: String,
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
        }
    }
    Ok(Some(s))
}

/// `VV-RR` -> (`VV`, `RR`).
pub fn parse_vvrr(v: &str) -> Option<(String, String)> {
    let (vv, rr) = v.trim().split_once('-')?;
    let ok = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    (ok(vv) && ok(rr)).then(|| (vv.to_string(), rr.to_string()))
}

fn expand(argv: &[String], vars: &[(&str, &str)]) -> String {
    argv.iter()
        .map(|a| {
            let mut a = a.clone();
            for (k, v) in vars {
                a = a.replace(&format!("{{{k}}}"), v);
            }
            a
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads the version and the services file; decides; writes nothing.
pub fn plan(root: &SysRoot, product: &str, spec: &VersionupSpec) -> Result<VersionupPlan> {
    let vf = Path::new(&spec.version_file);
    let text = crate::preflight_io::read_text(root, vf, 4096)?.ok_or_else(|| {
        Error::Refused(format!(
            "{product} is not installed here: {} is not there",
            root.path(vf).display()
        ))
    })?;
    let from = text.lines().next().unwrap_or("").trim().to_string();
    let (vv, _) = parse_vvrr(&from).ok_or_else(|| {
        Error::bad_input(
            root.path(vf),
            Some(1),
            format!("'{from}' is not a VV-RR version (05-00, 02-10)"),
        )
    })?;
    let mut refused = None;
    if parse_vvrr(&spec.to).is_some_and(|(tv, _)| vv >= tv) {
        refused = Some(format!(
            "{product} {from} is not older than {}: nothing to version up",
            spec.to
        ));
    }
    let path = spec
        .paths
        .iter()
        .find(|p| p.versions.contains(&from))
        .or_else(|| spec.paths.iter().find(|p| p.majors.contains(&vv)));
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
        let mut commands = Vec::new();
        for argv in &st.commands {
            if argv.iter().any(|a| a.contains("{service}")) {
                for s in &st.services {
                    commands.push(expand(argv, &[("service", s), ("root", &root_s)]));
                }
            } else if argv.iter().any(|a| a.contains("{unit}")) {
                for u in &spec.units {
                    commands.push(expand(argv, &[("unit", u), ("root", &root_s)]));
                }
            } else {
                commands.push(expand(argv, &[("root", &root_s)]));
            }
        }
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
            name: st.name.clone(),
            commands,
            entries,
            present,
            paths: st.paths.clone(),
            manual: matches!(st.kind.as_str(), "manual" | "reboot"),
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
        if let Some(t) = &st.text {
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
