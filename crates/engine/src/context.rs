//! Where every operation starts: the system root and its manifests, loaded
//! once, and the installs detected on it. One sequence (load the manifests,
//! open the package databases, detect) instead of one per command.

use crate::detect::{self, Options, Report, System};
use crate::plugin::{self, Plugin};
use upkeep_sys::error::Result;
use upkeep_sys::root::SysRoot;

pub struct Context {
    pub root: SysRoot,
    pub plugins: Vec<Plugin>,
}

impl Context {
    /// Loads the packaged manifests and the root's own over them.
    pub fn open(root: &SysRoot) -> Result<Context> {
        Ok(Context {
            root: root.clone(),
            plugins: plugin::load(root)?,
        })
    }

    /// The products named (every product when none is); an unknown name
    /// is a usage error.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Plugin>> {
        detect::select(&self.plugins, names)
    }

    /// Opens the root's users and package databases.
    pub fn system(&self) -> Result<System<'_>> {
        System::open(&self.root)
    }

    /// Every install of the products named (all when none is).
    pub fn detect(&self, names: &[String], opts: &Options) -> Result<Report> {
        let selected = self.select(names)?;
        detect::detect(&mut self.system()?, &selected, opts)
    }
}
