//! The database checks. Each gives a [`Finding`]; [`run_postgres`] runs
//! all of them and never stops at the first refusal, so that an operator
//! sees everything to fix at once.

use crate::probe::{ssl_request, TlsAnswer};
use crate::target::{DbTarget, SslMode};
use crate::{Finding, PostgresSpec};
use std::time::Duration;

/// Whether the server speaks TLS, by the raw SSLRequest, judged against
/// what the product's client requires.
pub fn check_tls(t: &DbTarget, spec: &PostgresSpec, product: &str, timeout: Duration) -> Finding {
    let fix_client = spec
        .client_tls_setting
        .clone()
        .unwrap_or_else(|| format!("{product}'s database sslmode setting"));
    match ssl_request(&t.host, t.port, timeout) {
        Ok(TlsAnswer::Accepted) => Finding::ok(
            "tls",
            format!("{}:{} accepts TLS (SSLRequest answered 'S')", t.host, t.port),
        ),
        Ok(TlsAnswer::Refused) if t.sslmode.requires_tls() => Finding::refused(
            "tls",
            format!(
                "failed to connect to `{}`: tls error (server refused TLS connection). \
                 The PostgreSQL server at {}:{} answered the SSLRequest with 'N' (it runs with ssl = off), \
                 while {product} requires TLS (sslmode={}, from {}). \
                 Fix: set `ssl = on` on the server (postgresql.conf, with ssl_cert_file and ssl_key_file) and reload it, \
                 or change {fix_client}.",
                t.describe(),
                t.host,
                t.port,
                t.sslmode.as_str(),
                t.origin
            ),
        ),
        Ok(TlsAnswer::Refused) => Finding::ok(
            "tls",
            format!(
                "{}:{} does not do TLS (SSLRequest answered 'N'); {product} does not require it (sslmode={})",
                t.host,
                t.port,
                t.sslmode.as_str()
            ),
        ),
        Err(e) => Finding::refused(
            "tls",
            format!(
                "failed to connect to `{}`: {e}. The database must be reachable from this node before the upgrade",
                t.describe()
            ),
        ),
    }
}

fn tls_connector(mode: SslMode) -> Result<postgres_native_tls::MakeTlsConnector, String> {
    let mut b = native_tls::TlsConnector::builder();
    // libpq: require and prefer encrypt without checking the certificate;
    // verify-ca checks the chain; verify-full also the host name.
    match mode {
        SslMode::VerifyFull => {}
        SslMode::VerifyCa => {
            b.danger_accept_invalid_hostnames(true);
        }
        _ => {
            b.danger_accept_invalid_certs(true);
            b.danger_accept_invalid_hostnames(true);
        }
    }
    b.build()
        .map(postgres_native_tls::MakeTlsConnector::new)
        .map_err(|e| format!("cannot set up TLS: {e}"))
}

/// A real connection (startup, TLS as the sslmode says, authentication).
pub fn connect(t: &DbTarget, timeout: Duration) -> Result<postgres::Client, String> {
    let mut c = postgres::Config::new();
    c.host(&t.host)
        .port(t.port)
        .user(&t.user)
        .dbname(&t.dbname)
        .connect_timeout(timeout)
        .application_name("upkeep-upgrade preflight");
    if let Some(p) = &t.password {
        c.password(p);
    }
    c.ssl_mode(match t.sslmode {
        SslMode::Disable => postgres::config::SslMode::Disable,
        SslMode::Allow | SslMode::Prefer => postgres::config::SslMode::Prefer,
        _ => postgres::config::SslMode::Require,
    });
    let tls = tls_connector(t.sslmode)?;
    c.connect(tls).map_err(|e| {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        format!("failed to connect to `{}`: {msg}", t.describe())
    })
}

/// The declared extensions must be listed by `pg_available_extensions`,
/// i.e. postgresql-contrib (or the distribution's equivalent) is installed
/// on the database server, wherever that is.
pub fn check_extensions(client: &mut postgres::Client, want: &[String]) -> Finding {
    if want.is_empty() {
        return Finding::ok("extensions", "no extensions declared");
    }
    let rows = match client.query("SELECT name FROM pg_available_extensions", &[]) {
        Ok(r) => r,
        Err(e) => {
            return Finding::refused(
                "extensions",
                format!("cannot read pg_available_extensions: {e}"),
            )
        }
    };
    let have: Vec<String> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
    let missing: Vec<&str> = want
        .iter()
        .filter(|w| !have.iter().any(|h| h == *w))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Finding::ok(
            "extensions",
            format!("pg_available_extensions lists {}", want.join(", ")),
        )
    } else {
        Finding::refused(
            "extensions",
            format!(
                "pg_available_extensions on the database server does not list {}: install postgresql-contrib (or your distribution's package of PostgreSQL's contrib modules) on the database server, then run the upgrade",
                missing.join(", ")
            ),
        )
    }
}

/// The server's version (`server_version_num`) against the minimum.
pub fn check_server_version(client: &mut postgres::Client, min_major: Option<u32>) -> Finding {
    let num: Option<u32> = client
        .query_one("SHOW server_version_num", &[])
        .ok()
        .and_then(|r| r.try_get::<_, String>(0).ok())
        .and_then(|s| s.trim().parse().ok());
    let Some(num) = num else {
        return Finding::refused(
            "server-version",
            "cannot read the server's server_version_num",
        );
    };
    // Since PostgreSQL 10: major * 10000 + minor.
    let (major, minor) = (num / 10000, num % 10000);
    match min_major {
        Some(min) if major < min => Finding::refused(
            "server-version",
            format!("the database server runs PostgreSQL {major}.{minor}; at least {min} is required: upgrade the database server first"),
        ),
        Some(min) => Finding::ok(
            "server-version",
            format!("PostgreSQL {major}.{minor} (at least {min} required)"),
        ),
        None => Finding::ok("server-version", format!("PostgreSQL {major}.{minor}")),
    }
}

/// All database checks against one target, reported together.
pub fn run_postgres(
    t: &DbTarget,
    spec: &PostgresSpec,
    product: &str,
    timeout: Duration,
) -> Vec<Finding> {
    let mut out = vec![check_tls(t, spec, product, timeout)];
    let tls_refused = !out[0].ok;
    match connect(t, timeout) {
        Ok(mut client) => {
            out.push(Finding::ok(
                "connect",
                format!(
                    "connected to `{}` (sslmode={})",
                    t.describe(),
                    t.sslmode.as_str()
                ),
            ));
            out.push(check_extensions(&mut client, &spec.extensions));
            out.push(check_server_version(&mut client, spec.min_server_major));
        }
        Err(e) => {
            // The TLS finding already says why when the server refused TLS.
            if !tls_refused {
                out.push(Finding::refused("connect", e));
            }
            for c in ["extensions", "server-version"] {
                out.push(Finding::refused(
                    c,
                    "not checked: no connection to the database (see above)",
                ));
            }
        }
    }
    out
}
