//! File formats upkeep reads and edits without losing a byte it did not
//! mean to change.

pub mod gitlab_rb;
pub mod services;
