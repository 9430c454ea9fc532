//! upkeep's core: the system root, package databases, versions, plugin
//! manifests and detection, shared by every upkeep binary.

pub mod cli;
pub mod detect;
pub mod dpkg;
pub mod error;
pub mod fsutil;
pub mod plugin;
pub mod root;
pub mod rpm;
pub mod users;
pub mod version;

pub use error::{Error, ExitCode, Result};
pub use root::SysRoot;
