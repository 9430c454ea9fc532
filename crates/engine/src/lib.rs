//! upkeep's operations, driven by product manifests: detect, lease,
//! embedded, guard and the host's reconfigure.

pub mod context;
pub mod detect;
pub mod embedded;
pub mod guard;
pub mod hooks;
pub mod host;
pub mod lease;
pub mod lease_conversion;
pub mod maintscript;
pub mod notify;
pub mod plugin;
pub mod rb_eval;
pub mod reconfigure;
pub mod release;
pub mod switch;
