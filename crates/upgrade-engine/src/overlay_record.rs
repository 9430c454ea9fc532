//! What upkeep installed by an overlay upgrade: the version, the archive
//! and the digest of every file it placed. The vendor's copy updates no
//! version file, so this record is the version's truth for as long as the
//! placed files still match it; once any differs (a manual copy, another
//! tool), it no longer speaks and the version file is read again.

use serde::{Deserialize, Serialize};
use std::path::Path;
use upkeep_sys::SysRoot;

/// Inside the system root.
/// Beside the release file lists (`/var/lib/upkeep/releases/`), not in the
/// journal's directory: the journal reads every `.json` there as a record.
pub const RECORD_DIR: &str = "/var/lib/upkeep/releases";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub version: String,
    pub archive: String,
    /// Absolute paths inside the system, with their SHA-256.
    pub files: Vec<(String, String)>,
}

pub fn record_path(product: &str) -> String {
    format!("{RECORD_DIR}/{product}.installed.json")
}

/// The record, if there is one and it parses.
pub fn load(root: &SysRoot, product: &str) -> Option<Record> {
    let text =
        crate::preflight_io::read_text(root, Path::new(&record_path(product)), 1 << 24).ok()??;
    serde_json::from_str(&text).ok()
}

/// The recorded version, while every recorded file still has its digest.
pub fn current(root: &SysRoot, product: &str) -> Option<String> {
    upkeep_engine::detect::recorded_version(root, &record_path(product))
}

/// `DIR/VERSION`, first line.
pub fn version_file(root: &SysRoot, dir: &str) -> Option<String> {
    let text =
        crate::preflight_io::read_text(root, &Path::new(dir).join("VERSION"), 4096).ok()??;
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

/// Files of the install (relative to it) that the copy does not touch.
pub fn kept_files(root: &SysRoot, dir: &str, placed: &[(String, String)]) -> Vec<String> {
    let mut all = crate::preflight_io::walk_files(root, Path::new(dir)).unwrap_or_default();
    all.retain(|f| !placed.iter().any(|(_, d)| d == f));
    all
}
