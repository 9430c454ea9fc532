//! Package managers as upkeep sees them: the dpkg database (status,
//! updates journal, file lists, md5sums, statoverride), rpm through its own
//! tool, and the two version orderings.

pub mod arch;
pub mod dpkg;
pub mod maintscript;
pub mod rpm;
pub mod version;

/// Who manages an install's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagerKind {
    Dpkg,
    Rpm,
    /// No package: unpacked from a release archive.
    Tarball,
}

impl std::fmt::Display for ManagerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ManagerKind::Dpkg => "dpkg",
            ManagerKind::Rpm => "rpm",
            ManagerKind::Tarball => "tarball",
        })
    }
}
