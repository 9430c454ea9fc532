//! The services file (`/etc/services`, services(5)): `name port/protocol
//! [aliases...] [# comment]`. Adding entries keeps every existing byte,
//! comment and line order; an entry already there (by name or alias) is
//! not added again; a port or name another service holds is a conflict,
//! named, and nothing is changed.

use std::fmt;

/// One wanted entry: `imap 143/tcp`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Service {
    pub name: String,
    pub port: u16,
    pub protocol: String,
}

impl fmt::Display for Service {
    /// As the plan names it: `143/tcp imap`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.port, self.protocol, self.name)
    }
}

impl Service {
    /// Parses `NAME PORT/PROTO` (as manifests write it).
    pub fn parse(spec: &str) -> Result<Service, String> {
        let mut words = spec.split_whitespace();
        let (Some(name), Some(pp), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("'{spec}': want NAME PORT/PROTOCOL"));
        };
        let (port, protocol) =
            parse_port(pp).ok_or_else(|| format!("'{spec}': bad port/protocol"))?;
        if !valid_name(name) {
            return Err(format!("'{spec}': bad service name"));
        }
        Ok(Service {
            name: name.to_string(),
            port,
            protocol,
        })
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('#')
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'#')
}

fn parse_port(pp: &str) -> Option<(u16, String)> {
    let (port, proto) = pp.split_once('/')?;
    let port: u16 = port.parse().ok()?;
    if proto.is_empty() || !proto.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some((port, proto.to_ascii_lowercase()))
}

/// One entry of the file as it stands, with its line number.
#[derive(Debug, Clone)]
struct Existing {
    line: usize,
    names: Vec<String>,
    port: u16,
    protocol: String,
}

fn entries(text: &str) -> Vec<Existing> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("");
        let mut words = code.split_whitespace();
        let (Some(name), Some(pp)) = (words.next(), words.next()) else {
            continue;
        };
        // A line that does not parse is not ours to judge: kept as it is.
        let Some((port, protocol)) = parse_port(pp) else {
            continue;
        };
        let mut names = vec![name.to_string()];
        names.extend(words.map(str::to_string));
        out.push(Existing {
            line: i + 1,
            names,
            port,
            protocol,
        });
    }
    out
}

/// Why an entry cannot be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub wanted: Service,
    pub line: usize,
    pub holder: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot add '{} {}/{}': line {} already has '{}'",
            self.wanted.name, self.wanted.port, self.wanted.protocol, self.line, self.holder
        )
    }
}

/// The result of planning: the new text and what was added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub text: String,
    pub added: Vec<Service>,
}

/// Adds `wanted` to the services file `text`. Entries already present (the
/// same port and protocol under the name or an alias) are skipped; a port
/// and protocol held by another name, or the name bound to another port of
/// the same protocol, is a conflict and nothing is added at all. New lines
/// go at the end, each with `comment`, in the file's line ending.
pub fn add(text: &str, wanted: &[Service], comment: &str) -> Result<Added, Vec<Conflict>> {
    let existing = entries(text);
    let mut added: Vec<Service> = Vec::new();
    let mut conflicts = Vec::new();
    for w in wanted {
        let same_slot = existing
            .iter()
            .find(|e| e.port == w.port && e.protocol == w.protocol);
        let same_name = existing
            .iter()
            .find(|e| e.protocol == w.protocol && e.names.contains(&w.name));
        // The resolver takes the first line for a name and for a port: the
        // entry is there only when both first lines are this entry.
        match (same_slot, same_name) {
            (Some(e), Some(n)) if e.line == n.line => {}
            (Some(e), _) if !e.names.contains(&w.name) => conflicts.push(Conflict {
                wanted: w.clone(),
                line: e.line,
                holder: format!("{} {}/{}", e.names.join(" "), e.port, e.protocol),
            }),
            (Some(_), Some(e)) | (None, Some(e)) | (Some(e), None) => conflicts.push(Conflict {
                wanted: w.clone(),
                line: e.line,
                holder: format!("{} {}/{}", e.names.join(" "), e.port, e.protocol),
            }),
            (None, None) => {
                let clash = added
                    .iter()
                    .find(|a| a.protocol == w.protocol && (a.port == w.port || a.name == w.name));
                match clash {
                    Some(a) if a == w => {}
                    Some(a) => conflicts.push(Conflict {
                        wanted: w.clone(),
                        line: 0,
                        holder: format!("{} (also wanted)", a),
                    }),
                    None => added.push(w.clone()),
                }
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push_str(eol);
    }
    for a in &added {
        out.push_str(&format!(
            "{}\t{}/{}\t\t# {comment}{eol}",
            a.name, a.port, a.protocol
        ));
    }
    Ok(Added { text: out, added })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn svc(s: &str) -> Service {
        Service::parse(s).unwrap()
    }

    const DEBIAN: &str = "# Network services, Internet style\n#\ntcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer\npop3\t\t110/tcp\t\tpop-3\t\t# POP version 3\nimap2\t\t143/tcp\t\timap\t\t# Interim Mail Access P 2 and 4\nhttp-alt\t8080/tcp\twebcache\n";

    #[test]
    fn aliases_count_and_comments_and_order_stay() {
        let wanted = [
            svc("imap 143/tcp"),
            svc("adrshd 20141/tcp"),
            svc("pop3 110/tcp"),
        ];
        let a = add(DEBIAN, &wanted, "groupmax").unwrap();
        assert_eq!(a.added, vec![svc("adrshd 20141/tcp")]);
        assert!(a.text.starts_with(DEBIAN));
        assert_eq!(&a.text[DEBIAN.len()..], "adrshd\t20141/tcp\t\t# groupmax\n");
        // Idempotent.
        let b = add(&a.text, &wanted, "groupmax").unwrap();
        assert_eq!(b.text, a.text);
        assert!(b.added.is_empty());
    }

    #[test]
    fn a_port_or_name_held_elsewhere_is_a_named_conflict() {
        let e = add(DEBIAN, &[svc("adagt_ap 8080/tcp"), svc("x 1/udp")], "g").unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].to_string(),
            "cannot add 'adagt_ap 8080/tcp': line 6 already has 'http-alt webcache 8080/tcp'"
        );
        let e = add(DEBIAN, &[svc("pop3 111/tcp")], "g").unwrap_err();
        assert_eq!(e[0].line, 4);
        // The same name on another protocol is no conflict.
        assert!(add(DEBIAN, &[svc("pop3 110/udp")], "g").is_ok());
    }

    /// Shrunk by the property test: the resolver takes the first line of a
    /// name, so a later line with the wanted port is not the entry.
    #[test]
    fn a_name_bound_twice_counts_by_its_first_line() {
        let a = add("d\t5/udp\nd\t1/udp\n", &[svc("d 5/udp")], "t").unwrap();
        assert!(a.added.is_empty());
        let e = add("d\t1/udp\nd\t5/udp\n", &[svc("d 5/udp")], "t").unwrap_err();
        assert_eq!(e[0].line, 1, "{}", e[0]);
    }

    #[test]
    fn crlf_and_a_missing_final_newline_are_kept() {
        let a = add("a 1/tcp\r\nb 2/tcp", &[svc("c 3/tcp")], "x").unwrap();
        assert_eq!(a.text, "a 1/tcp\r\nb 2/tcp\r\nc\t3/tcp\t\t# x\r\n");
    }

    #[test]
    fn bad_specs_are_refused() {
        for bad in [
            "imap",
            "imap 143",
            "imap 70000/tcp",
            "imap 143/",
            "# 1/tcp",
            "a b/tcp",
            "a 1/tcp x",
        ] {
            assert!(Service::parse(bad).is_err(), "{bad}");
        }
    }

    fn arb_service() -> impl Strategy<Value = Service> {
        ("[a-e]{1,2}", 1u16..6, prop_oneof![Just("tcp"), Just("udp")]).prop_map(|(n, p, pr)| {
            Service {
                name: n,
                port: p,
                protocol: pr.to_string(),
            }
        })
    }

    fn arb_file() -> impl Strategy<Value = String> {
        let line = prop_oneof![
            arb_service().prop_map(|s| format!("{}\t{}/{}\n", s.name, s.port, s.protocol)),
            (arb_service(), "[f-h]{1,2}")
                .prop_map(|(s, a)| format!("{} {}/{} {a} # c\n", s.name, s.port, s.protocol)),
            Just("# comment 9/tcp\n".to_string()),
            Just("\n".to_string()),
            Just("garbage line\n".to_string()),
        ];
        proptest::collection::vec(line, 0..8).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn adding_keeps_every_byte_adds_each_once_and_is_idempotent(
            file in arb_file(),
            wanted in proptest::collection::vec(arb_service(), 0..5),
        ) {
            match add(&file, &wanted, "t") {
                Ok(a) => {
                    prop_assert!(a.text.starts_with(&file));
                    let again = add(&a.text, &wanted, "t").expect("second run");
                    prop_assert_eq!(&again.text, &a.text);
                    prop_assert!(again.added.is_empty());
                    // Every wanted entry resolves as the resolver does (first
                    // line for a name, first line for a port) to itself.
                    let all = entries(&a.text);
                    for w in &wanted {
                        let by_name = all.iter().find(|e| e.protocol == w.protocol && e.names.contains(&w.name));
                        let by_port = all.iter().find(|e| e.protocol == w.protocol && e.port == w.port);
                        prop_assert_eq!(by_name.map(|e| e.port), Some(w.port));
                        prop_assert!(by_port.is_some_and(|e| e.names.contains(&w.name)));
                    }
                }
                Err(conflicts) => {
                    prop_assert!(!conflicts.is_empty());
                    for c in conflicts {
                        prop_assert!(wanted.contains(&c.wanted));
                    }
                }
            }
        }
    }
}
