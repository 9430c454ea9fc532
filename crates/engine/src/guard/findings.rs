//! Findings: binaries a package action would put back, in one sentence each.
use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub product: String,
    pub kind: String,
    pub binary: Option<String>,
    pub edition: Edition,
    /// How people call it ("Enterprise Edition"), per the manifest.
    pub edition_title: String,
    /// Not the edition the package ships.
    pub other_edition: bool,
    pub package: String,
    pub package_version: Option<String>,
    /// Why it is at risk.
    /// the edition the package ships).
    pub reason: Risk,
    pub reverted_by: Vec<String>,
    pub advice: Vec<String>,
}

/// Why a binary is at risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Its content differs from the package's checksum.
    Modified,
    /// It is not the edition the package ships.
    Edition,
}

impl Finding {
    /// The one sentence template of a binary at risk, after `lead` (who
    /// says it: "AT RISK:", "warning: upgrading gitlab-ee will revert",
    /// "warning: a reconfigure may revert"), then what to do.
    pub fn message(&self, lead: &str) -> String {
        let what = if self.other_edition {
            format!(
                "{} {} binary",
                article(&self.edition_title),
                self.edition_title
            )
        } else {
            "a locally replaced binary".to_string()
        };
        let mut s = format!(
            "{lead} {} ({} {}): it is {what} in a path that package {} owns, and {} puts the package's own binary back.",
            self.binary.as_deref().unwrap_or("(unknown path)"),
            self.product,
            self.kind,
            self.package,
            self.reverted_by.join(", or ")
        );
        if !self.advice.is_empty() {
            s.push_str(" What to do: ");
            s.push_str(&self.advice.join("; or "));
            s.push('.');
        }
        s
    }
}

/// "a" or "an" before a title, by its first letter.
fn article(title: &str) -> &'static str {
    match title.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

pub fn findings(report: &Report) -> Vec<Finding> {
    report.installs.iter().filter_map(finding).collect()
}

fn finding(i: &Install) -> Option<Finding> {
    let package = i.manager.package.clone()?;
    let other_edition = i
        .ships_edition
        .as_ref()
        .is_some_and(|shipped| i.edition.is_known() && &i.edition != shipped);
    let reason = match i.modified_from_package {
        Some(true) => Risk::Modified,
        _ if other_edition => Risk::Edition,
        _ => return None,
    };
    let guard = i.guard.clone().unwrap_or_default();
    let expand = |v: &[String]| {
        v.iter()
            .map(|s| s.replace("{package}", &package))
            .collect::<Vec<_>>()
    };
    let mut reverted_by = expand(&guard.reverted_by);
    if reverted_by.is_empty() {
        reverted_by.push(format!("an upgrade or reinstall of {package}"));
    }
    Some(Finding {
        product: i.product.clone(),
        kind: i.kind.clone(),
        binary: i.binary.as_ref().map(|b| b.path.clone()),
        edition: i.edition.clone(),
        edition_title: i.edition_title.clone(),
        other_edition,
        package_version: i.manager.version.clone(),
        reason,
        reverted_by,
        advice: expand(&guard.advice),
        package,
    })
}
