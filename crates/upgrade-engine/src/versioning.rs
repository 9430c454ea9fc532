//! What kind of version change an upgrade is, from the manifest's
//! `[upgrade]` data: which version part may change the database schema
//! (`schema_changes_on`) and whether downgrades are blocked. A change at or
//! above that part makes the database backup mandatory; a change below it
//! (a new build, for a product whose schema changes only on minor) does
//! not. Any downgrade is refused when blocked, a build-only one too: the
//! newer build may already have run its migrations.

use serde::Serialize;

/// The highest version part that differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    Same,
    /// Third part and beyond (`major.minor.build`).
    Build,
    Minor,
    Major,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Same => "same",
            ChangeKind::Build => "build",
            ChangeKind::Minor => "minor",
            ChangeKind::Major => "major",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "build" | "patch" => ChangeKind::Build,
            "minor" => ChangeKind::Minor,
            "major" => ChangeKind::Major,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub from: String,
    pub to: String,
    pub kind: ChangeKind,
    pub downgrade: bool,
    /// The new version may change the database schema.
    pub schema_may_change: bool,
    /// So the database backup cannot be skipped.
    pub backup_mandatory: bool,
    /// One sentence for the plan.
    pub summary: String,
}

fn parts(v: &str) -> Option<Vec<u64>> {
    let v = v.trim();
    let v = v.strip_prefix('v').unwrap_or(v);
    if v.is_empty() {
        return None;
    }
    v.split('.').map(|p| p.parse::<u64>().ok()).collect()
}

/// Classifies `from -> to`. `Err` is malformed input (not a version, or an
/// unknown `schema_changes_on`); a refused downgrade is `Ok` with
/// `downgrade` set, for the caller to refuse with [`refusal`].
pub fn classify(from: &str, to: &str, schema_changes_on: Option<&str>) -> Result<Change, String> {
    let a = parts(from).ok_or_else(|| format!("'{from}' is not a version"))?;
    let b = parts(to).ok_or_else(|| format!("'{to}' is not a version"))?;
    let on = match schema_changes_on {
        None => ChangeKind::Build,
        Some(s) => ChangeKind::parse(s)
            .ok_or_else(|| format!("schema_changes_on = '{s}' is none of build, minor, major"))?,
    };
    let n = a.len().max(b.len());
    let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
    let first_diff = (0..n).find(|&i| at(&a, i) != at(&b, i));
    let kind = match first_diff {
        None => ChangeKind::Same,
        Some(0) => ChangeKind::Major,
        Some(1) => ChangeKind::Minor,
        Some(_) => ChangeKind::Build,
    };
    let downgrade = first_diff.is_some_and(|i| at(&b, i) < at(&a, i));
    let schema_may_change = kind != ChangeKind::Same && kind >= on;
    let summary = match (kind, downgrade) {
        (ChangeKind::Same, _) => format!("{to} is already installed"),
        (k, true) => format!("{} downgrade {from} -> {to}", k.as_str()),
        (k, false) if schema_may_change => format!(
            "{} upgrade {from} -> {to}: the database schema may change, the database backup is mandatory",
            k.as_str()
        ),
        (k, false) => format!(
            "{}-only upgrade {from} -> {to}: no database schema change",
            k.as_str()
        ),
    };
    Ok(Change {
        from: from.to_string(),
        to: to.to_string(),
        kind,
        downgrade,
        schema_may_change,
        backup_mandatory: schema_may_change,
        summary,
    })
}

/// The refusal for a downgrade when the manifest blocks them, or `None`.
pub fn refusal(c: &Change, title: &str, downgrade_policy: Option<&str>) -> Option<String> {
    if c.kind == ChangeKind::Same {
        return Some(format!("{title} {} is already installed", c.from));
    }
    if c.downgrade && downgrade_policy == Some("block") {
        return Some(format!(
            "{title} {} is older than the installed {} ({} downgrade): downgrades are forbidden, because the database may already carry the newer version's changes and could then only be recovered from a backup",
            c.to,
            c.from,
            c.kind.as_str()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_minor_major_and_downgrades() {
        let c = classify("1.19.44", "1.19.45", Some("minor")).expect("ok");
        assert_eq!(
            (c.kind, c.downgrade, c.backup_mandatory),
            (ChangeKind::Build, false, false)
        );
        assert!(c.summary.starts_with("build-only upgrade"), "{}", c.summary);
        let c = classify("1.19.44", "1.20.0", Some("minor")).expect("ok");
        assert_eq!(
            (c.kind, c.downgrade, c.backup_mandatory),
            (ChangeKind::Minor, false, true)
        );
        assert!(c.summary.contains("backup is mandatory"));
        let c = classify("v1.19.44", "2.0.0", Some("minor")).expect("ok");
        assert_eq!((c.kind, c.backup_mandatory), (ChangeKind::Major, true));
        // Build-only downgrade: refused all the same.
        let c = classify("1.19.44", "1.19.43", Some("minor")).expect("ok");
        assert_eq!((c.kind, c.downgrade), (ChangeKind::Build, true));
        let r = refusal(&c, "TEGU", Some("block")).expect("refused");
        assert!(r.contains("build downgrade") && r.contains("backup"), "{r}");
        assert!(refusal(&c, "TEGU", Some("warn")).is_none());
        let c = classify("1.19.44", "1.18.99", Some("minor")).expect("ok");
        assert_eq!((c.kind, c.downgrade), (ChangeKind::Minor, true));
        // 1.19.44 -> 1.19.44.1 is a build change; numeric, not textual.
        let c = classify("1.19.9", "1.19.10", Some("minor")).expect("ok");
        assert!(!c.downgrade);
        let c = classify("1.19.44", "1.19.44", Some("minor")).expect("ok");
        assert!(refusal(&c, "TEGU", Some("block")).is_some());
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(classify("1.x.3", "1.2.3", None).is_err());
        assert!(classify("", "1.2.3", None).is_err());
        assert!(classify("1.2.3", "1.2.4", Some("sometimes")).is_err());
        // Without schema_changes_on every change may change the schema.
        assert!(
            classify("1.2.3", "1.2.4", None)
                .expect("ok")
                .backup_mandatory
        );
    }
}
