//! Where the database is: from the product's configuration file, or from
//! `--db-url postgres://…` (which wins, `sslmode` included).

use crate::{DbError, PostgresSpec};
use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs, UdpSocket};

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Result<Self, DbError> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "disable" | "off" | "false" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" | "" => SslMode::Prefer,
            "require" | "on" | "true" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(DbError::Malformed(format!(
                    "sslmode '{other}' is none of disable, allow, prefer, require, verify-ca, verify-full"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a connection without TLS is refused by the client.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

/// One database to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    pub sslmode: SslMode,
    /// Where the address came from, for messages: a config file or `--db-url`.
    pub origin: String,
}

impl DbTarget {
    /// The words operators know from the product's own log line:
    /// `host=… user=… database=…`.
    pub fn describe(&self) -> String {
        format!(
            "host={} user={} database={}",
            self.host, self.user, self.dbname
        )
    }

    /// As a URL for `pg_dump` and for messages: never with the password
    /// (the dump gets it through the environment).
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "postgres://{}@{host}:{}/{}?sslmode={}",
            self.user,
            self.port,
            self.dbname,
            self.sslmode.as_str()
        )
    }

    /// Parses `postgres://user:password@host:port/dbname?sslmode=…`.
    pub fn from_url(url: &str, spec: &PostgresSpec) -> Result<Self, DbError> {
        let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
        if !scheme_ok {
            return Err(DbError::Malformed(format!(
                "--db-url '{}' is not a postgres:// or postgresql:// URL",
                redact(url)
            )));
        }
        // tokio-postgres knows only disable/prefer/require: take sslmode
        // out first and keep libpq's full set ourselves.
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, q),
            None => (url, ""),
        };
        let mut sslmode = SslMode::Prefer;
        let mut rest = Vec::new();
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            match kv.split_once('=') {
                Some(("sslmode", v)) => sslmode = SslMode::parse(v)?,
                _ => rest.push(kv),
            }
        }
        let cleaned = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let cfg: postgres::Config = cleaned
            .parse()
            .map_err(|e| DbError::Malformed(format!("--db-url '{}': {e}", redact(url))))?;
        let host = match cfg.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            Some(postgres::config::Host::Unix(p)) => {
                return Err(DbError::Malformed(format!(
                    "--db-url names a Unix socket ({}): the checks need a TCP address",
                    p.display()
                )))
            }
            None => "localhost".to_string(),
        };
        let port = cfg
            .get_ports()
            .first()
            .copied()
            .unwrap_or(spec.default_port);
        let user = cfg
            .get_user()
            .map(str::to_string)
            .or_else(|| spec.default_user.clone())
            .unwrap_or_else(|| "postgres".into());
        let dbname = cfg
            .get_dbname()
            .map(str::to_string)
            .or_else(|| spec.default_dbname.clone())
            .unwrap_or_else(|| user.clone());
        let password = cfg
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        Ok(DbTarget {
            host,
            port,
            user,
            password,
            dbname,
            sslmode,
            origin: "--db-url".into(),
        })
    }

    /// From the settings read out of the product's configuration file.
    pub fn from_settings(
        settings: &BTreeMap<String, String>,
        spec: &PostgresSpec,
        origin: &str,
    ) -> Result<Self, DbError> {
        let get = |k: &str| settings.get(k).filter(|v| !v.is_empty()).cloned();
        let host = get(&spec.keys.host).ok_or_else(|| {
            DbError::Malformed(format!(
                "{origin} has no '{}': cannot tell where the database is (give --db-url)",
                spec.keys.host
            ))
        })?;
        let port = match get(&spec.keys.port) {
            Some(p) => p.parse::<u16>().map_err(|_| {
                DbError::Malformed(format!(
                    "{origin}: {} = '{p}' is not a port",
                    spec.keys.port
                ))
            })?,
            None => spec.default_port,
        };
        let user = get(&spec.keys.user)
            .or_else(|| spec.default_user.clone())
            .unwrap_or_else(|| "postgres".into());
        let dbname = get(&spec.keys.dbname)
            .or_else(|| spec.default_dbname.clone())
            .unwrap_or_else(|| user.clone());
        let sslmode = match get(&spec.keys.sslmode) {
            Some(s) => SslMode::parse(&s)
                .map_err(|e| DbError::Malformed(format!("{origin}: {}: {e}", spec.keys.sslmode)))?,
            None => SslMode::Prefer,
        };
        Ok(DbTarget {
            host,
            port,
            user,
            password: get(&spec.keys.password),
            dbname,
            sslmode,
            origin: origin.to_string(),
        })
    }

    /// Whether the database server runs on this machine: a loopback
    /// address, or an address one of this machine's interfaces holds
    /// (binding to it succeeds only then).
    pub fn is_on_this_host(&self) -> bool {
        let addrs: Vec<IpAddr> = match (self.host.as_str(), 0u16).to_socket_addrs() {
            Ok(it) => it.map(|a| a.ip()).collect(),
            Err(_) => return false,
        };
        !addrs.is_empty()
            && addrs
                .iter()
                .any(|ip| ip.is_loopback() || UdpSocket::bind((*ip, 0)).is_ok())
    }
}

/// `key = value` lines (TOML-like or INI-like, quotes optional); `#` and
/// `;` start comments; `[sections]` are ignored. Only simple scalar values
/// are read, which is all the database settings are.
pub fn read_settings(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with(';')
            || line.starts_with('[')
        {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        let mut v = v.trim();
        if let Some(q) = v.strip_prefix('"').and_then(|s| s.split_once('"')) {
            v = q.0;
        } else if let Some(q) = v.strip_prefix('\'').and_then(|s| s.split_once('\'')) {
            v = q.0;
        } else if let Some((before, _)) = v.split_once(" #") {
            v = before.trim();
        }
        out.insert(k.to_string(), v.to_string());
    }
    out
}

/// A URL with its password replaced, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((auth, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PostgresSpec {
        toml_spec()
    }

    fn toml_spec() -> PostgresSpec {
        PostgresSpec {
            keys: Default::default(),
            default_port: 5432,
            default_user: Some("tegu".into()),
            default_dbname: Some("tegu_mailboxes".into()),
            extensions: vec![],
            min_server_major: None,
            contrib_package: None,
            client_tls_setting: None,
        }
    }

    #[test]
    fn url_with_every_sslmode() {
        for (m, want) in [
            ("disable", SslMode::Disable),
            ("require", SslMode::Require),
            ("verify-full", SslMode::VerifyFull),
            ("verify-ca", SslMode::VerifyCa),
        ] {
            let t = DbTarget::from_url(
                &format!("postgres://u:p%40ss@127.0.0.1:5544/db?sslmode={m}&connect_timeout=3"),
                &spec(),
            )
            .expect("parses");
            assert_eq!(t.sslmode, want);
            assert_eq!(t.host, "127.0.0.1");
            assert_eq!(t.port, 5544);
            assert_eq!(t.user, "u");
            assert_eq!(t.password.as_deref(), Some("p@ss"));
            assert_eq!(t.dbname, "db");
        }
    }

    #[test]
    fn url_defaults_and_refusals() {
        let t = DbTarget::from_url("postgresql://db.example", &spec()).expect("parses");
        assert_eq!((t.port, t.user.as_str()), (5432, "tegu"));
        assert_eq!(t.dbname, "tegu_mailboxes");
        assert_eq!(t.sslmode, SslMode::Prefer);
        for bad in [
            "mysql://x",
            "postgres://h/db?sslmode=sometimes",
            "",
            "postgres://u:secret@h:notaport/db",
        ] {
            let e = DbTarget::from_url(bad, &spec()).expect_err(bad).to_string();
            assert!(!e.contains("secret"), "password leaked: {e}");
        }
    }

    #[test]
    fn settings_from_config_text() {
        let s = read_settings(
            "# TEGU\n[db]\ndb_host = \"10.0.0.5\" # primary\ndb_port=6543\ndb_sslmode = 'require'\nnoise\n",
        );
        let t = DbTarget::from_settings(&s, &spec(), "tegu.conf").expect("reads");
        assert_eq!(t.host, "10.0.0.5");
        assert_eq!(t.port, 6543);
        assert_eq!(t.sslmode, SslMode::Require);
        assert_eq!(
            t.describe(),
            "host=10.0.0.5 user=tegu database=tegu_mailboxes"
        );
        let none = DbTarget::from_settings(&read_settings("x=1"), &spec(), "tegu.conf");
        assert!(none.expect_err("no host").to_string().contains("db_host"));
        let bad = read_settings("db_host=h\ndb_port=99999");
        assert!(DbTarget::from_settings(&bad, &spec(), "c").is_err());
    }

    #[test]
    fn loopback_is_this_host_and_a_foreign_address_is_not() {
        let mut t = DbTarget::from_url("postgres://127.0.0.1/x", &spec()).expect("parses");
        assert!(t.is_on_this_host());
        // TEST-NET-1 (RFC 5737) is never assigned to a real interface.
        t.host = "192.0.2.7".into();
        assert!(!t.is_on_this_host());
    }
}
