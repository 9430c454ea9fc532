//! What was seen, recorded by the triggers; reverts told from it, until
//! converted back or acknowledged.
use super::*;

const RECORDS: &str = "editions.json";

/// What was seen of an install last time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub product: String,
    pub kind: String,
    pub edition: Edition,
    #[serde(default)]
    pub edition_title: String,
    pub version: Option<String>,
    pub package: Option<String>,
    pub package_version: Option<String>,
    pub modified_from_package: Option<bool>,
    pub seen: u64,
    /// A revert reported and not yet converted back or acknowledged
    /// (`upkeep-guard ack`): reported on every check until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted: Option<Revert>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Records {
    #[serde(default)]
    pub installs: BTreeMap<String, Record>,
}

fn key(i: &Install) -> String {
    let at = i
        .binary
        .as_ref()
        .map(|b| b.path.clone())
        .or_else(|| i.dir.clone())
        .unwrap_or_default();
    format!("{}:{at}", i.product)
}

pub fn load_records(root: &SysRoot) -> Result<Records> {
    let Some(dir) = state::existing_private_dir(root, "")? else {
        return Ok(Records::default());
    };
    let path = dir.shown().join(RECORDS);
    match dir.read(
        Path::new(RECORDS),
        safe::Resolve::NoLinks,
        safe::limit::CONFIG,
    )? {
        Some(t) => serde_json::from_slice(&t)
            .map_err(|e| Error::bad_input(&path, Some(e.line()), e.to_string())),
        None => Ok(Records::default()),
    }
}

/// A local change a package action already undid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revert {
    /// Seen for the first time by this run (not recorded before).
    #[serde(default)]
    pub new: bool,
    pub product: String,
    pub binary: Option<String>,
    pub was: Edition,
    pub now: Edition,
    /// How people call them, per the manifest (empty in old records).
    #[serde(default)]
    pub was_title: String,
    #[serde(default)]
    pub now_title: String,
    pub seen: u64,
    pub package: Option<String>,
    pub package_version_before: Option<String>,
    pub package_version_now: Option<String>,
}

impl Revert {
    pub fn message(&self) -> String {
        let ed = |e: &Edition, title: &str| {
            if e.is_known() && !title.is_empty() {
                title.to_string()
            } else if e.is_known() {
                e.to_string()
            } else {
                "a locally replaced binary".to_string()
            }
        };
        let by = match (
            &self.package,
            &self.package_version_before,
            &self.package_version_now,
        ) {
            (Some(p), Some(a), Some(b)) if a != b => {
                format!(" by the upgrade of {p} from {a} to {b}")
            }
            (Some(p), _, Some(b)) => format!(" by {p} {b} (reinstall, upgrade or reconfigure)"),
            _ => String::new(),
        };
        format!(
            "REVERTED: {} ({}) was {} when last seen ({}), and is now {}: it was put back{by}. Data is unharmed; the features of {} are gone until the change is made again. This is reported on every check until then, or until `upkeep-guard ack {}`.",
            self.binary.as_deref().unwrap_or("?"),
            self.product,
            ed(&self.was, &self.was_title),
            state::utc_human(self.seen),
            ed(&self.now, &self.now_title),
            ed(&self.was, &self.was_title),
            self.product
        )
    }
}

/// The reverts of the installs in `report`: new ones and those recorded
/// and neither converted back nor acknowledged.
pub fn reverts_of(root: &SysRoot, report: &Report) -> Result<Vec<Revert>> {
    Ok(reverts(&load_records(root)?, report))
}

pub(crate) fn reverts(records: &Records, report: &Report) -> Vec<Revert> {
    let mut out = Vec::new();
    for i in &report.installs {
        let Some(r) = records.installs.get(&key(i)) else {
            continue;
        };
        if let Some(p) = &r.reverted {
            // Still reported until the change is made again.
            let converted_back = if p.was.is_known() {
                i.edition == p.was
            } else {
                i.modified_from_package == Some(true)
            };
            if !converted_back {
                out.push(Revert {
                    new: false,
                    ..p.clone()
                });
            }
            continue;
        }
        // The edition the package ships replaced a different, recorded one.
        let edition_back = r.edition.is_known()
            && r.edition != i.edition
            && i.ships_edition.as_ref() == Some(&i.edition);
        let local_change_gone =
            r.modified_from_package == Some(true) && i.modified_from_package == Some(false);
        if edition_back || local_change_gone {
            out.push(Revert {
                new: true,
                product: i.product.clone(),
                binary: i.binary.as_ref().map(|b| b.path.clone()),
                was: if edition_back {
                    r.edition.clone()
                } else {
                    Edition::unknown()
                },
                now: if edition_back {
                    i.edition.clone()
                } else {
                    Edition::unknown()
                },
                was_title: if edition_back {
                    r.edition_title.clone()
                } else {
                    String::new()
                },
                now_title: if edition_back {
                    i.edition_title.clone()
                } else {
                    String::new()
                },
                seen: r.seen,
                package: i.manager.package.clone(),
                package_version_before: r.package_version.clone(),
                package_version_now: i.manager.version.clone(),
            });
        }
    }
    out
}

#[derive(Debug, Serialize)]
pub struct Observation {
    pub installs: Vec<Install>,
    pub findings: Vec<Finding>,
    pub reverts: Vec<Revert>,
    pub warnings: Vec<String>,
}

/// Detects every install, compares with what was recorded, and (when
/// `record`) records what is there now.
pub fn observe(root: &SysRoot, opts: &Options, record: bool) -> Result<Observation> {
    let report = Context::open(root)?.detect(&[], opts)?;
    let records = load_records(root)?;
    let reverts = reverts(&records, &report);
    let mut warnings = report.warnings.clone();
    if record {
        if let Err(e) = save_records(root, &report, &reverts) {
            warnings.push(format!("could not record what was seen: {e}"));
        }
    }
    Ok(Observation {
        findings: findings(&report),
        installs: report.installs,
        reverts,
        warnings,
    })
}

fn save_records(root: &SysRoot, report: &Report, reverts: &[Revert]) -> Result<()> {
    let _lock = Lock::acquire(root, Duration::from_secs(10))?;
    let mut records = load_records(root)?;
    let now = state::now();
    for i in &report.installs {
        let reverted = reverts
            .iter()
            .find(|r| {
                r.product == i.product && r.binary == i.binary.as_ref().map(|b| b.path.clone())
            })
            .map(|r| Revert {
                new: false,
                ..r.clone()
            });
        records.installs.insert(key(i), record_of(i, now, reverted));
    }
    let dir = state::private_dir(root, "")?;
    let data = serde_json::to_vec_pretty(&records).map_err(|e| Error::Failed(e.to_string()))?;
    state::write_private(&dir, RECORDS, &data)
}

/// Acknowledges the reverts of `product` (at `path`, or all of them), new
/// or recorded: what is there now is recorded as seen, so they are no
/// longer reported. Returns how many there were.
pub fn ack(root: &SysRoot, opts: &Options, product: &str, path: Option<&str>) -> Result<usize> {
    let report = Context::open(root)?.detect(&[], opts)?;
    let _lock = Lock::acquire(root, Duration::from_secs(10))?;
    let mut records = load_records(root)?;
    let matching: Vec<Revert> = reverts(&records, &report)
        .into_iter()
        .filter(|r| r.product == product && path.is_none_or(|p| r.binary.as_deref() == Some(p)))
        .collect();
    if matching.is_empty() {
        return Ok(0);
    }
    let now = state::now();
    for i in &report.installs {
        let bin = i.binary.as_ref().map(|b| b.path.clone());
        if matching
            .iter()
            .any(|r| r.product == i.product && r.binary == bin)
        {
            records.installs.insert(key(i), record_of(i, now, None));
        }
    }
    let dir = state::private_dir(root, "")?;
    let data = serde_json::to_vec_pretty(&records).map_err(|e| Error::Failed(e.to_string()))?;
    state::write_private(&dir, RECORDS, &data)?;
    Ok(matching.len())
}

fn record_of(i: &Install, now: u64, reverted: Option<Revert>) -> Record {
    Record {
        product: i.product.clone(),
        kind: i.kind.clone(),
        edition: i.edition.clone(),
        edition_title: i.edition_title.clone(),
        version: i.version.clone(),
        package: i.manager.package.clone(),
        package_version: i.manager.version.clone(),
        modified_from_package: i.modified_from_package,
        seen: now,
        reverted,
    }
}
