//! upkeep.toml: what to do about a revert or a downgrade, per product.
use super::*;

pub const CONFIG: &str = "/etc/upkeep/upkeep.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Warn,
    Block,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductPolicy {
    /// A package action that would revert a local change: warn or block.
    #[serde(default)]
    pub on_revert: Option<Policy>,
    /// A downgrade: block or warn (default: the manifest's).
    #[serde(default)]
    pub on_downgrade: Option<Policy>,
}

/// `ROOT/etc/upkeep/upkeep.toml`; every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub product: BTreeMap<String, ProductPolicy>,
}

impl Config {
    pub fn load(root: &SysRoot) -> Result<Config> {
        let path = root.path(CONFIG);
        // Non-blocking and bounded: a FIFO here must never hang apt.
        let Some(text) = safe::read_to_string(root, CONFIG, safe::limit::CONFIG)? else {
            return Ok(Config::default());
        };
        toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| 1 + text[..s.start.min(text.len())].matches('\n').count());
            Error::bad_input(&path, line, e.message().to_string())
        })
    }

    pub fn on_revert(&self, product: &str) -> Policy {
        self.product
            .get(product)
            .and_then(|p| p.on_revert)
            .unwrap_or(Policy::Warn)
    }

    pub fn on_downgrade(&self, plugin: &Plugin) -> Policy {
        self.product
            .get(plugin.name())
            .and_then(|p| p.on_downgrade)
            .unwrap_or(match plugin.manifest.upgrade.downgrade.as_deref() {
                Some("block") => Policy::Block,
                _ => Policy::Warn,
            })
    }
}
