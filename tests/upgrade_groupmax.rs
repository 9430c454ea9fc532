//! `upkeep-upgrade plan groupmax` (the manifest's `[versionup]`): one
//! throwaway root each from 5, 3, 2.0 and 02-00; the services-file entries
//! are exactly the vendor's list for the source version, named under
//! `.steps[]` as `port/proto name`; `advup2_6` only from 2.0; a port
//! another service holds refuses; nothing is written.
#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
use common::{json, stderr, upkeep, TestRoot};

const SERVICES: &str = "# Network services, Internet style\n#\ntcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer\nsmtp\t\t25/tcp\t\tmail\n";

fn root(version: &str, services: &str) -> TestRoot {
    let r = TestRoot::new();
    r.write("opt/groupmax/VERSION", format!("{version}\n"), 0o644);
    r.write("etc/services", services, 0o644);
    r
}

fn plan(r: &TestRoot) -> (Option<i32>, serde_json::Value) {
    let o = upkeep(
        "upkeep-upgrade",
        &[
            "plan",
            "groupmax",
            "--root",
            r.root().to_str().expect("utf8"),
            "--format",
            "json",
        ],
    );
    assert!(!o.stdout.is_empty(), "{}", stderr(&o));
    (o.status.code(), json(&o))
}

fn entries(j: &serde_json::Value) -> Vec<String> {
    j["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "services")
        .flat_map(|s| s["entries"].as_array().expect("entries").iter())
        .map(|e| e.as_str().expect("str").to_string())
        .collect()
}

fn commands(j: &serde_json::Value) -> Vec<String> {
    j["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .flat_map(|s| s["commands"].as_array().expect("commands").iter())
        .map(|e| e.as_str().expect("str").to_string())
        .collect()
}

#[test]
fn each_source_version_gets_its_own_steps_and_services_entries() {
    let v3 = ["143/tcp imap", "20141/tcp adrshd"];
    let v2 = [&v3[..], &["110/tcp pop3", "106/tcp popcfg"]].concat();
    let v200 = [&v2[..], &["9080/tcp adagt_ap", "9081/tcp adreq_ap"]].concat();
    let cases: [(&str, &str, Vec<&str>, bool); 5] = [
        ("05-00", "5", vec![], false),
        ("03-00", "3", v3.to_vec(), false),
        ("02-10", "2.0", v2.clone(), true),
        ("02-00", "02-00", v200.clone(), true),
        // 2.0's other releases take 2.0's path, without 02-00's two ports.
        ("02-05", "2.0", v2.clone(), true),
    ];
    for (version, path, want, advup) in cases {
        let r = root(version, SERVICES);
        let (code, j) = plan(&r);
        assert_eq!(code, Some(0), "{version}: {j}");
        assert_eq!(j["from"], version);
        assert_eq!(j["to"], "06-00");
        assert_eq!(j["path"], path, "{version}");
        assert_eq!(entries(&j), want, "{version}: {j}");
        let c = commands(&j);
        assert_eq!(
            c.iter().any(|c| c.ends_with("/advup2_6")),
            advup,
            "{version}: {c:?}"
        );
        let root = r.root().display().to_string();
        for unit in ["groupmax-address.service", "groupmax-objectserver.service"] {
            assert!(
                c.contains(&format!("systemctl --root={root} disable {unit}")),
                "{c:?}"
            );
            assert!(
                c.contains(&format!("systemctl --root={root} enable {unit}")),
                "{c:?}"
            );
        }
        let kinds: Vec<&str> = j["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| s["kind"].as_str().expect("kind"))
            .collect();
        for k in [
            "stop",
            "autostart-off",
            "reboot",
            "backup",
            "clear",
            "autostart-restore",
        ] {
            assert!(kinds.contains(&k), "{version}: {k} missing in {kinds:?}");
        }
        let manual: Vec<&str> = j["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter(|s| s["manual"] == true)
            .map(|s| s["name"].as_str().expect("name"))
            .collect();
        assert_eq!(manual.contains(&"Address_Mail setup"), advup, "{manual:?}");
        // Nothing written.
        assert_eq!(
            std::fs::read_to_string(r.path("etc/services")).expect("read"),
            SERVICES
        );
    }
}

#[test]
fn entries_already_there_are_not_added_and_a_held_port_refuses() {
    // Debian's own file has imap as an alias of imap2 and pop3 already.
    let debian = format!("{SERVICES}pop3\t\t110/tcp\t\tpop-3\nimap2\t\t143/tcp\t\timap\n");
    let r = root("02-10", &debian);
    let (code, j) = plan(&r);
    assert_eq!(code, Some(0), "{j}");
    assert_eq!(entries(&j), ["20141/tcp adrshd", "106/tcp popcfg"]);
    let present: Vec<&str> = j["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "services")
        .flat_map(|s| s["present"].as_array().expect("present").iter())
        .map(|e| e.as_str().expect("str"))
        .collect();
    assert_eq!(present, ["143/tcp imap", "110/tcp pop3"]);

    // 9080/tcp is held by another name: refused, naming it; nothing changed.
    let held = format!("{SERVICES}http-alt\t8080/tcp\twebcache\nglassfish\t9080/tcp\n");
    let r = root("02-00", &held);
    let (code, j) = plan(&r);
    assert_eq!(code, Some(3), "{j}");
    let why = j["refused"].as_str().expect("refused");
    assert!(
        why.contains("adagt_ap 9080/tcp") && why.contains("glassfish 9080/tcp"),
        "{why}"
    );
    assert!(why.contains("nothing is changed"), "{why}");
    assert_eq!(
        std::fs::read_to_string(r.path("etc/services")).expect("read"),
        held
    );
}

#[test]
fn version_file_edge_cases() {
    // Already at 6: nothing to do, refused.
    let (code, j) = plan(&root("06-00", SERVICES));
    assert_eq!(code, Some(3), "{j}");
    // Not VV-RR: malformed input, naming the file.
    let r = root("2.0", SERVICES);
    let o = upkeep(
        "upkeep-upgrade",
        &[
            "plan",
            "groupmax",
            "--root",
            r.root().to_str().expect("utf8"),
        ],
    );
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert!(stderr(&o).contains("VERSION"), "{}", stderr(&o));
    // A version no path is for (04-00): refused, listing the paths.
    let (code, j) = plan(&root("04-00", SERVICES));
    assert_eq!(code, Some(3), "{j}");
    assert!(
        j["refused"]
            .as_str()
            .expect("r")
            .contains("02-00, 2.0, 3, 5"),
        "{j}"
    );
    // Not installed: a failed precondition (1), not a policy refusal.
    let r = TestRoot::new();
    let o = upkeep(
        "upkeep-upgrade",
        &[
            "plan",
            "groupmax",
            "--root",
            r.root().to_str().expect("utf8"),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("groupmax is not installed under"),
        "{}",
        stderr(&o)
    );
}
