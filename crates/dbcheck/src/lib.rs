//! PostgreSQL and log preflight checks for `upkeep-upgrade`.
//!
//! Every check here reads and never writes. The kinds of check a product
//! needs, and their parameters (extensions, minimum server version, log
//! patterns, the names of its configuration keys), come from the product's
//! manifest as a [`PreflightSpec`]; this crate knows no product.
//!
//! - [`probe`]: the raw SSLRequest exchange (8 bytes out, `S` or `N` back),
//!   so that "the server refuses TLS" is told apart from "no route".
//! - [`target`]: where the database is, from the product's configuration or
//!   from `--db-url`, including `sslmode`.
//! - [`checks`]: the checks themselves, each giving a [`Finding`]; all run
//!   and are reported together.
//! - [`logscan`]: recent log lines matching declared patterns.

pub mod checks;
pub mod logscan;
pub mod probe;
pub mod target;

use serde::{Deserialize, Serialize};

/// What the manifest declares about a product's database and logs.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PreflightSpec {
    /// The product's PostgreSQL database, when it has one.
    #[serde(default)]
    pub postgresql: Option<PostgresSpec>,
    /// Log files and the patterns that refuse an upgrade.
    #[serde(default)]
    pub log: Option<LogSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    /// Names of the keys in the product's configuration file.
    #[serde(default)]
    pub keys: ConfigKeys,
    /// Defaults for what the configuration does not say.
    #[serde(default = "default_port")]
    pub default_port: u16,
    #[serde(default)]
    pub default_user: Option<String>,
    #[serde(default)]
    pub default_dbname: Option<String>,
    /// Extensions `pg_available_extensions` must list (postgresql-contrib).
    #[serde(default)]
    pub extensions: Vec<String>,
    /// The lowest server major version the product supports, e.g. 13.
    #[serde(default)]
    pub min_server_major: Option<u32>,
    /// The package that ships the extensions, per package manager, named
    /// to the operator when the database is on this host and it is missing.
    #[serde(default)]
    pub contrib_package: Option<ContribPackage>,
    /// How the product names its own client setting for TLS, for the
    /// message that says what to change (e.g. "db_sslmode in tegu.conf").
    #[serde(default)]
    pub client_tls_setting: Option<String>,
}

fn default_port() -> u16 {
    5432
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfigKeys {
    #[serde(default = "k_host")]
    pub host: String,
    #[serde(default = "k_port")]
    pub port: String,
    #[serde(default = "k_user")]
    pub user: String,
    #[serde(default = "k_password")]
    pub password: String,
    #[serde(default = "k_dbname")]
    pub dbname: String,
    #[serde(default = "k_sslmode")]
    pub sslmode: String,
}

fn k_host() -> String {
    "db_host".into()
}
fn k_port() -> String {
    "db_port".into()
}
fn k_user() -> String {
    "db_user".into()
}
fn k_password() -> String {
    "db_password".into()
}
fn k_dbname() -> String {
    "db_name".into()
}
fn k_sslmode() -> String {
    "db_sslmode".into()
}

impl Default for ConfigKeys {
    fn default() -> Self {
        ConfigKeys {
            host: k_host(),
            port: k_port(),
            user: k_user(),
            password: k_password(),
            dbname: k_dbname(),
            sslmode: k_sslmode(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ContribPackage {
    #[serde(default)]
    pub dpkg: Option<String>,
    #[serde(default)]
    pub rpm: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    /// Log files, absolute paths inside the system root.
    #[serde(default)]
    pub files: Vec<String>,
    /// Regular expressions; a recent line matching one refuses the upgrade.
    pub patterns: Vec<String>,
    /// How far back a line counts as recent, in hours (lines with a time).
    #[serde(default = "default_window")]
    pub window_hours: u64,
    /// How many lines from the end of each file are read at most.
    #[serde(default = "default_tail")]
    pub tail_lines: usize,
}

fn default_window() -> u64 {
    24
}
fn default_tail() -> usize {
    20_000
}

/// The outcome of one check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// Which check: `tls`, `connect`, `extensions`, `server-version`,
    /// `contrib-package`, `log`.
    pub check: String,
    pub ok: bool,
    pub message: String,
}

impl Finding {
    pub fn ok(check: &str, message: impl Into<String>) -> Self {
        Finding {
            check: check.into(),
            ok: true,
            message: message.into(),
        }
    }
    pub fn refused(check: &str, message: impl Into<String>) -> Self {
        Finding {
            check: check.into(),
            ok: false,
            message: message.into(),
        }
    }
}

/// Errors from reading inputs (not check outcomes, which are [`Finding`]s).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A malformed URL or configuration value.
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
