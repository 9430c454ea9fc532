//! File formats upkeep reads and edits without losing a byte it did not
//! mean to change.

pub mod diff;
pub mod ruby_config;
pub mod services;
