//! The engine of `upkeep-upgrade`: upgrades an install made from a vendor's
//! release archive without losing anything, driven by the `[release]`
//! section of the product's manifest. It is its own crate so that the
//! package-manager hooks never link tar, gzip and the rest.
//!
//! `plan` reads and checks everything and writes nothing; `apply` stages
//! the release next to the install, swaps it in with one rename, moves the
//! preserved paths across by rename, and rolls back by itself when the
//! service does not come up. Every step is journaled first; `recover`
//! finishes or undoes an interrupted run.

pub mod apply;
pub mod archive;
pub mod autostart;
pub mod fsops;
pub mod jsonedit;
pub mod maintscript;
pub mod overlay;
pub mod overlay_apply;
pub mod overlay_record;
pub mod plan;
pub mod policy;
pub mod preflight;
mod preflight_io;
pub mod progress;
pub mod revert;
pub mod service;
pub mod treecopy;
pub mod versioning;
pub mod versionup;
pub mod versionup_run;

use std::path::{Path, PathBuf};
use upkeep_engine::plugin;
use upkeep_engine::release::ReleaseSpec;
use upkeep_sys::{Error, Result, SysRoot};

/// One product's release install under a system root.
#[derive(Debug, Clone)]
pub struct Release {
    pub root: SysRoot,
    pub product: String,
    pub spec: ReleaseSpec,
}

impl Release {
    /// The product's manifest must have a `[release]` section.
    pub fn load(root: &SysRoot, product: &str) -> Result<Self> {
        let plugins = plugin::load(root)?;
        let p = plugins
            .iter()
            .find(|p| p.name() == product)
            .ok_or_else(|| {
                let names: Vec<&str> = plugins.iter().map(|p| p.name()).collect();
                Error::Usage(format!(
                    "unknown product '{product}' (known: {})",
                    names.join(", ")
                ))
            })?;
        let spec = p.manifest.release.clone().ok_or_else(|| {
            Error::Usage(format!(
                "{product}: its manifest ({}) has no [release] section: upkeep-upgrade does not know how to upgrade it",
                p.source.display()
            ))
        })?;
        Ok(Release {
            root: root.clone(),
            product: product.to_string(),
            spec,
        })
    }

    /// The install directory on this machine.
    pub fn target(&self) -> PathBuf {
        self.root.path(&self.spec.dir)
    }

    fn sibling(&self, what: &str) -> PathBuf {
        let t = self.target();
        let name = t
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        t.with_file_name(format!(".{name}.upkeep-{what}"))
    }

    /// Where the new release is unpacked: next to the target, same filesystem.
    pub fn stage(&self) -> PathBuf {
        self.sibling("stage")
    }

    /// Where the new release's own copies of preserved paths are put aside.
    pub fn shipped(&self) -> PathBuf {
        self.sibling("shipped")
    }

    /// The previous tree after a successful upgrade (for `rollback`).
    pub fn previous(&self) -> PathBuf {
        self.sibling("previous")
    }

    /// The release a `rollback` went back from.
    pub fn rolled_back(&self) -> PathBuf {
        self.sibling("rolled-back")
    }

    pub fn config_path(&self, tree: &Path) -> PathBuf {
        tree.join(&self.spec.config)
    }

    pub fn backup_base(&self) -> PathBuf {
        let dir = self
            .spec
            .backup
            .dir
            .clone()
            .unwrap_or_else(|| "/var/lib/upkeep/backups".into());
        self.root.path(dir).join(&self.product)
    }

    /// The installed version, read from the tree.
    pub fn installed_version(&self) -> Option<String> {
        archive::tree_version(&self.spec, &self.root, &self.target())
    }
}

/// Reads and parses config.json; malformed is bad input (65) naming line
/// and column.
pub fn read_config(root: &SysRoot, path: &Path) -> Result<(String, serde_json::Value)> {
    let bytes = fsops::read(root, path)?
        .ok_or_else(|| Error::bad_input(path, None, "cannot read: missing"))?;
    let text = upkeep_sys::safe::utf8(bytes, path)?;
    let doc = jsonedit::parse(&text).map_err(|e| {
        Error::bad_input(
            path,
            Some(e.line),
            format!(
                "column {}: malformed JSON: {}; nothing was changed",
                e.column, e.msg
            ),
        )
    })?;
    if !doc.is_object() {
        return Err(Error::bad_input(
            path,
            None,
            "not a JSON object (a config.json is one object of sections); nothing was changed",
        ));
    }
    Ok((text, doc))
}

/// A command asked to act on a product that is not installed under the
/// root: a failed precondition (exit 1), never a policy refusal (3) nor
/// malformed input (65), in the same words from every command.
pub fn not_installed(product: &str, root: &SysRoot, why: impl std::fmt::Display) -> Error {
    Error::Failed(format!(
        "{product} is not installed under {}: {why}",
        root.dir().display()
    ))
}

/// Refuses (3, rule `config-is-a-link`) a config file, or a directory
/// between the tree and it, that is a symbolic link: an upgrade restores
/// and edits it in place by rename, which would replace the link (or
/// write where it points). Checked by the plan, before anything stops.
pub fn refuse_linked_config(rel: &Release, tree: &Path) -> Result<()> {
    let mut p = tree.to_path_buf();
    for part in Path::new(&rel.spec.config).components() {
        p.push(part);
        let Some(st) = fsops::lstat(&rel.root, &p)? else {
            return Ok(());
        };
        if upkeep_sys::safe::Kind::of(&st) == upkeep_sys::safe::Kind::Symlink {
            return Err(Error::Refused(format!(
                "config-is-a-link: {} is a symbolic link; upkeep-upgrade edits and restores {} by rename and will not replace a link or write where it points. Nothing was stopped or changed: replace the link by a copy of the file it points to, then upgrade",
                p.display(),
                rel.spec.config,
            )));
        }
    }
    Ok(())
}

/// Where a path from config.json leads: relative paths start at the
/// tree, `..` is resolved by name (as the server joins paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Inside the tree, relative to it (never empty).
    Inside(String),
    /// Outside the tree: the absolute path, inside the root.
    Outside(String),
    /// The tree itself, a directory above it, or `/`.
    TreeOrAbove(String),
}

pub fn place(spec: &ReleaseSpec, value: &str) -> Place {
    let v = value.trim();
    let dir: Vec<&str> = spec.dir.split('/').filter(|c| !c.is_empty()).collect();
    let mut full: Vec<&str> = if v.starts_with('/') {
        Vec::new()
    } else {
        dir.clone()
    };
    for c in v.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                full.pop();
            }
            p => full.push(p),
        }
    }
    let shown = format!("/{}", full.join("/"));
    if full.len() <= dir.len() && dir.starts_with(&full) {
        Place::TreeOrAbove(shown)
    } else if full.starts_with(&dir) {
        Place::Inside(full[dir.len()..].join("/"))
    } else {
        Place::Outside(shown)
    }
}

/// A path from config.json (`./data/`, `/opt/mattermost/data`, `data`,
/// `./data/../files`) relative to the tree, if it points inside it.
pub fn inside_tree(spec: &ReleaseSpec, value: &str) -> Option<String> {
    if value.trim().is_empty() {
        return None;
    }
    match place(spec, value) {
        Place::Inside(rel) => Some(rel),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_paths_inside_the_tree() {
        let spec: ReleaseSpec = toml::from_str(
            "dir = \"/opt/mm\"\ntop = \"mm\"\nconfig = \"c\"\nversion = [{file = \"V\"}]\nmax_entry_bytes = 1\nmax_total_bytes = 1\n",
        )
        .unwrap();
        assert_eq!(inside_tree(&spec, "./data/").as_deref(), Some("data"));
        assert_eq!(
            inside_tree(&spec, "/opt/mm/tls/key.pem").as_deref(),
            Some("tls/key.pem")
        );
        assert_eq!(inside_tree(&spec, "/opt/mmx/data"), None);
        assert_eq!(inside_tree(&spec, "/srv/data"), None);
        assert_eq!(inside_tree(&spec, "../x"), None);
        assert_eq!(inside_tree(&spec, ""), None);
        assert_eq!(inside_tree(&spec, "/opt/mm"), None);
        assert_eq!(
            inside_tree(&spec, "./data/../files").as_deref(),
            Some("files")
        );
        assert_eq!(inside_tree(&spec, "./data/../.."), None);
        for above in [
            "..",
            "/",
            ".",
            "./data/../..",
            "/opt/mm/",
            "/opt",
            "../../..",
        ] {
            assert!(
                matches!(place(&spec, above), Place::TreeOrAbove(_)),
                "{above}"
            );
        }
        assert_eq!(
            place(&spec, "/srv/data"),
            Place::Outside("/srv/data".into())
        );
        assert_eq!(place(&spec, "../mmx"), Place::Outside("/opt/mmx".into()));
    }
}
