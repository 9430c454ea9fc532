//! The database checks against real PostgreSQL 15 servers (Debian's
//! package), one with `ssl = on` and a self-signed certificate and one
//! with `ssl = off`, both throwaway clusters on loopback.
#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod support;
use support::pgcluster::Cluster;

use std::time::Duration;
use upkeep_dbcheck::checks::{check_tls, connect, run_postgres};
use upkeep_dbcheck::probe::{ssl_request, TlsAnswer};
use upkeep_dbcheck::target::{read_settings, DbTarget};
use upkeep_dbcheck::PostgresSpec;

const T: Duration = Duration::from_secs(10);

fn spec(extensions: &[&str], min: Option<u32>) -> PostgresSpec {
    toml::from_str::<PostgresSpec>(&format!(
        "extensions = {:?}\nclient_tls_setting = \"db_sslmode in /opt/tegu/etc/tegu.conf\"\n{}",
        extensions,
        min.map(|m| format!("min_server_major = {m}"))
            .unwrap_or_default()
    ))
    .expect("spec")
}

/// Both servers in one test: starting clusters is the slow part.
#[test]
fn tls_probe_extensions_and_version_against_real_servers() {
    let on = Cluster::start(true);
    let off = Cluster::start(false);

    // The raw SSLRequest.
    assert_eq!(
        ssl_request("127.0.0.1", on.port, T).ok(),
        Some(TlsAnswer::Accepted)
    );
    assert_eq!(
        ssl_request("127.0.0.1", off.port, T).ok(),
        Some(TlsAnswer::Refused)
    );

    // A TEGU-style config that requires TLS, pointed at the ssl=off server.
    let s = spec(&["pg_trgm"], Some(13));
    let conf = format!(
        "db_host = \"127.0.0.1\"\ndb_port = {}\ndb_user = \"postgres\"\ndb_name = \"postgres\"\ndb_sslmode = \"require\"\n",
        off.port
    );
    let t = DbTarget::from_settings(&read_settings(&conf), &s, "/opt/tegu/etc/tegu.conf")
        .expect("target");
    let f = check_tls(&t, &s, "TEGU mail server", T);
    assert!(!f.ok);
    assert!(
        f.message.contains("failed to connect to `host=127.0.0.1 user=postgres database=postgres`: tls error (server refused TLS connection)"),
        "{}",
        f.message
    );
    assert!(f.message.contains("`ssl = on`"), "{}", f.message);
    assert!(
        f.message.contains("db_sslmode in /opt/tegu/etc/tegu.conf"),
        "{}",
        f.message
    );
    let all = run_postgres(&t, &s, "TEGU mail server", T);
    assert!(all.iter().all(|f| !f.ok), "{all:?}");
    assert_eq!(all.len(), 3, "tls, extensions, server-version: {all:?}");
    // The client library agrees that a TLS connection is impossible.
    assert!(connect(&t, T).is_err());

    // The same config with TLS not required passes on the ssl=off server...
    let t_off = DbTarget::from_url(&off.url("postgres", "disable"), &s).expect("url");
    let all = run_postgres(&t_off, &s, "TEGU mail server", T);
    assert!(all.iter().all(|f| f.ok), "{all:?}");

    // ...and --db-url with sslmode=require reaches the ssl=on server over TLS.
    let t_on = DbTarget::from_url(&on.url("postgres", "require"), &s).expect("url");
    let all = run_postgres(&t_on, &s, "TEGU mail server", T);
    assert!(all.iter().all(|f| f.ok), "{all:?}");
    let mut c = connect(&t_on, T).expect("connects");
    let ssl: bool = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .expect("query")
        .get(0);
    assert!(ssl, "the connection must really be encrypted");
    // verify-full against a self-signed certificate is refused by the client.
    let t_vf = DbTarget::from_url(&on.url("postgres", "verify-full"), &s).expect("url");
    assert!(connect(&t_vf, T).is_err());

    // A declared extension the server does not have is a refusal naming it.
    let s_missing = spec(&["pg_trgm", "upkeep_no_such_extension"], None);
    let all = run_postgres(&t_on, &s_missing, "TEGU mail server", T);
    let ext = all
        .iter()
        .find(|f| f.check == "extensions")
        .expect("ext finding");
    assert!(!ext.ok);
    assert!(
        ext.message.contains("upkeep_no_such_extension"),
        "{}",
        ext.message
    );
    assert!(!ext.message.contains("pg_trgm,"), "{}", ext.message);
    assert!(
        ext.message.contains("postgresql-contrib"),
        "{}",
        ext.message
    );

    // The server's version against the manifest's minimum.
    let s_new = spec(&[], Some(99));
    let all = run_postgres(&t_on, &s_new, "TEGU mail server", T);
    let v = all
        .iter()
        .find(|f| f.check == "server-version")
        .expect("version");
    assert!(
        !v.ok && v.message.contains("PostgreSQL 15"),
        "{}",
        v.message
    );
    assert!(v.message.contains("at least 99"), "{}", v.message);

    // The database really is on this host: loopback.
    assert!(t_on.is_on_this_host());
}

#[test]
fn nothing_listening_is_refused_with_the_address() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    let s = spec(&[], None);
    let t = DbTarget::from_url(
        &format!("postgres://u@127.0.0.1:{port}/d?sslmode=require"),
        &s,
    )
    .expect("url");
    let all = run_postgres(&t, &s, "TEGU mail server", T);
    assert!(all.iter().all(|f| !f.ok), "{all:?}");
    assert!(
        all[0].message.contains(&format!("127.0.0.1:{port}")),
        "{}",
        all[0].message
    );
}
