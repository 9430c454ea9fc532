//! upkeep's core: the system root, package databases, versions, plugin
//! manifests and detection, shared by every upkeep binary.

pub mod cli;
pub mod configfile;
pub mod detect;
pub mod dpkg;
pub mod embedded;
pub mod error;
pub mod fault;
pub mod fsutil;
pub mod gitlab_rb;
pub mod guard;
pub mod hooks;
pub mod host;
pub mod lease;
pub mod plugin;
pub mod process;
pub mod release;
pub mod root;
pub mod rpm;
pub mod safefs;
pub mod state;
pub mod users;
pub mod version;

pub use error::{Error, ExitCode, Result};
pub use root::SysRoot;
