//! The system layer every other upkeep crate stands on: the system root
//! (`--root`), errors with their exit codes, users and groups, child
//! processes with deadlines, crash points, the descriptor-based safe-file
//! layer, and upkeep's own state (journal and lock).

pub mod configfile;
pub mod error;
pub mod fault;
pub mod fsutil;
pub mod journal;
pub mod process;
pub mod root;
pub mod safe;
pub mod state;
pub mod users;

pub use error::{Error, ExitCode, Result};
pub use root::SysRoot;
