//! The package-manager hook files whose content follows from the plugin
//! manifests: dpkg's `triggers` (file triggers on the directories that hold
//! package-managed product binaries) and rpm's trigger scriptlets (on every
//! package that carries a product). `hooks/` holds the generated files; a
//! test keeps them in step with `plugins/`.

use crate::plugin::Plugin;
use std::collections::BTreeSet;
use std::path::Path;

pub fn dpkg_triggers(plugins: &[Plugin]) -> String {
    let mut dirs = BTreeSet::new();
    for p in plugins {
        for i in p
            .manifest
            .installs
            .iter()
            .filter(|i| !i.packages.is_empty())
        {
            if let Some(parent) = i.binary.as_deref().and_then(|b| Path::new(b).parent()) {
                dirs.insert(parent.display().to_string());
            }
        }
    }
    let mut s = String::from(
        "# upkeep: run upkeep-guard (postinst \"triggered\") whenever a package\n\
         # changes files where the plugin manifests keep package-managed product\n\
         # binaries. noawait: the triggering package is not held back meanwhile.\n\
         # Generated from plugins/ (tests/hooks.rs keeps it in step).\n",
    );
    for d in dirs {
        s.push_str(&format!("interest-noawait {d}\n"));
    }
    s
}

pub fn rpm_packages(plugins: &[Plugin]) -> Vec<String> {
    let pkgs: BTreeSet<&String> = plugins
        .iter()
        .flat_map(|p| p.manifest.all_packages())
        .collect();
    pkgs.into_iter().cloned().collect()
}

pub fn rpm_triggers(plugins: &[Plugin]) -> String {
    let list = rpm_packages(plugins).join(", ");
    format!(
        "# upkeep: rpm trigger scriptlets for upkeep's own package spec. After a\n\
         # package that carries a product is installed, upgraded or removed,\n\
         # report what it reverted, record the new state, close moot leases.\n\
         # Never fails the transaction. Generated from plugins/ (tests/hooks.rs).\n\
         %triggerin -- {list}\n\
         /usr/bin/upkeep-guard rpm-trigger triggerin \"$1\" \"$2\" || :\n\
         \n\
         %triggerpostun -- {list}\n\
         /usr/bin/upkeep-guard rpm-trigger triggerpostun \"$1\" \"$2\" || :\n"
    )
}
