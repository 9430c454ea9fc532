//! Package managers as upkeep sees them: the dpkg database (status,
//! updates journal, file lists, md5sums, statoverride), rpm through its own
//! tool, and the two version orderings.

pub mod dpkg;
pub mod rpm;
pub mod version;
