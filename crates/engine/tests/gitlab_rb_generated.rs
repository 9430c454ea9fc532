//! Generated gitlab.rb files, every operation judged by real Ruby.
//!
//! A proptest generator builds gitlab.rb files from joined statements (`;`,
//! `and`, `or`) in any order and count; `if`/`unless`/`case`/`begin`,
//! modifiers and blocks; multi-line hashes and arrays; heredocs of every
//! form; comments and `=begin`/`=end`; strings, %-literals and char literals
//! holding look-alikes; CRLF, a BOM, tabs, a missing final newline,
//! `__END__`. For each file, and each operation (disable on 18.11, the
//! comment-out of 19.x, enable, status):
//! - the parser accepts exactly what Ruby accepts;
//! - the plan either is a refusal of a kind the tool documents (a removed
//!   key in a conditional, `merge!`) or passes upkeep's own verification;
//! - an independent Ruby loader (tests/support/gitlab_rb_eval.rb, not the
//!   recorder the binaries embed) sees exactly the old settings plus the
//!   intended change, and agrees on the enabled state.
//!
//! Files are checked in batches, each batch evaluated by a few Ruby
//! processes. A failing file is shrunk to a minimal one, which is appended
//! to tests/gitlab_rb_regressions.jsonl (one JSON string per line) and
//! checked on every later run. `UPKEEP_GEN_CASES` sets how many files are
//! generated (default 2000).

#![allow(clippy::disallowed_methods)] // tests build their files by path

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use upkeep_engine::embedded::{self, Action};
use upkeep_engine::plugin::{self, EmbeddedSpec};
use upkeep_engine::rb_eval::{Evaluated, Ruby};
use upkeep_formats::ruby_config::RubyConfig;
use upkeep_pkg::version::ProductVersion;

fn spec() -> EmbeddedSpec {
    let m = plugin::parse_manifest(
        Path::new("m"),
        plugin::BUILTIN
            .iter()
            .find(|(n, _)| *n == "mattermost.toml")
            .expect("the manifest")
            .1,
    )
    .expect("manifest");
    m.installs[0].embedded.clone().expect("embedded")
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
}

// ---------------------------------------------------------------- generator

fn key() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => Just("'enable'"),
        1 => Just("\"enable\""),
        1 => Just(":enable"),
        1 => Just(":\"enable\""),
        1 => Just("'service_port'"),
        1 => Just(":team_site_name"),
        1 => Just("\"#{'en'}able\""),
    ]
}

fn value() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        3 => Just("true"),
        3 => Just("false"),
        1 => Just("nil"),
        1 => Just("'8065'"),
        1 => Just("1"),
        1 => Just("\"x; mattermost['enable'] = true\""),
        1 => Just("?'"),
        1 => Just("%q(mattermost['enable'] = false)"),
    ]
}

fn simple() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (key(), value()).prop_map(|(k, v)| format!("mattermost[{k}] = {v}")),
        2 => Just("mattermost_external_url 'http://m.example.com'".to_string()),
        1 => Just("mattermost_nginx['enable'] = true".to_string()),
        1 => Just("gitlab_rails['mattermost_host'] = 'https://m'".to_string()),
        1 => Just("gitlab_rails['s'] = 'mattermost[\\'enable\\'] = true'".to_string()),
        1 => Just("gitlab_rails['c'] = ?'".to_string()),
        1 => Just("gitlab_rails['p'] = %q(mattermost['enable'] = (true))".to_string()),
        1 => Just("gitlab_rails['w'] = %w[mattermost['enable'] true]".to_string()),
        1 => Just("gitlab_rails['g'] = $/".to_string()),
        1 => Just("external_url \"https://g.example.com\"".to_string()),
        1 => Just("x = 1".to_string()),
        1 => Just("mattermost['enable'] ||= true".to_string()),
        1 => Just("mattermost['env']['X'] = 'y'".to_string()),
        1 => Just("self.mattermost['enable'] = true".to_string()),
        1 => Just("mattermost_external_url('http://m.example.com')".to_string()),
        1 => Just("mattermost['enable'] = true # on".to_string()),
        1 => Just("mattermost['enable'] = \\\n  false".to_string()),
        1 => Just("gitlab_rails['i'] = %i[mattermost enable]".to_string()),
        1 => Just("gitlab_rails['Q'] = %Q(#{1} mattermost['enable'] = true)".to_string()),
        1 => Just("gitlab_rails['r'] = %r{mattermost\\['enable'\\]}".to_string()),
        1 => Just("mattermost['x'] = ENV.fetch('UPKEEP_UNSET', 'd')".to_string()),
    ]
}

fn cond() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("true"),
        Just("false"),
        Just("$/"),
        Just("1 == 2"),
        Just("!nil")
    ]
}

fn heredoc() -> impl Strategy<Value = String> {
    let kinds = prop_oneof![
        Just(("<<~E", "  E")),
        Just(("<<-E", "  E")),
        Just(("<<E", "E")),
        Just(("<<~'E'", "  E")),
        Just(("<<-\"E\"", "E")),
    ];
    let target = prop_oneof![Just("mattermost['env']"), Just("gitlab_rails['h']")];
    (kinds, target, simple(), 0..3usize).prop_map(|((op, end), target, s, form)| {
        let body = "  mattermost['enable'] = true\n  #{1}\n";
        match form {
            0 => format!("{target} = {op}\n{body}{end}"),
            1 => format!("{target} = {op}; {s}\n{body}{end}"),
            _ => format!("{s}; {target} = {op}.strip\n{body}{end}"),
        }
    })
}

fn statement() -> impl Strategy<Value = String> {
    let ind = prop_oneof![Just("  "), Just("\t")];
    prop_oneof![
        8 => simple(),
        2 => heredoc(),
        3 => prop::collection::vec(simple(), 2..4).prop_map(|v| v.join("; ")),
        2 => (simple(), simple(), prop_oneof![Just(" and "), Just(" or "), Just(" && ")])
            .prop_map(|(a, b, op)| format!("{a}{op}{b}")),
        2 => (cond(), simple(), ind.clone()).prop_map(|(c, s, i)| format!("if {c}\n{i}{s}\nend")),
        1 => (cond(), simple()).prop_map(|(c, s)| format!("unless {c} then {s} end")),
        1 => (cond(), simple()).prop_map(|(c, s)| format!("{s} if {c}")),
        1 => (cond(), simple(), simple()).prop_map(|(c, s, t)| format!("if {c} then {s} else {t} end")),
        1 => simple().prop_map(|s| format!("case 1\nwhen 1 then {s}\nend")),
        1 => (simple(), ind.clone()).prop_map(|(s, i)| format!("begin\n{i}{s}\nend")),
        1 => simple().prop_map(|s| format!("[1].each {{ {s} }}")),
        1 => (simple(), ind).prop_map(|(s, i)| format!("[1].each do |n|\n{i}{s}\nend")),
        1 => Just("gitlab_rails['env'] = {\n  'A' => \"mattermost['enable'] = true\",\n  :b => [1,\n    2],\n}".to_string()),
        1 => Just("mattermost['env'] = {\n  'X' => 1\n}".to_string()),
        1 => Just("mattermost.merge!('enable' => true)".to_string()),
        1 => Just("# mattermost['enable'] = true".to_string()),
        1 => Just("=begin\nmattermost['enable'] = true\n=end".to_string()),
        1 => Just("mattermost['trusted'] = [\n  'a',\n  'b',\n]".to_string()),
        1 => simple().prop_map(|s| format!("def upkeep_helper\n  {s}\nend\nupkeep_helper")),
        1 => simple().prop_map(|s| format!("while false do {s} end")),
        1 => Just("if true\n=begin\nmattermost['enable'] = false\n=end\n  x = 2\nend".to_string()),
        1 => Just("gitlab_rails['e'] = <<~E\n  __END__\n  mattermost['enable'] = true\n  E".to_string()),
        1 => Just(String::new()),
    ]
}

#[derive(Debug, Clone)]
struct FileShape {
    statements: Vec<String>,
    bom: bool,
    crlf: bool,
    final_newline: bool,
    end_marker: bool,
}

impl FileShape {
    fn text(&self) -> String {
        let mut t = self.statements.join("\n");
        if self.end_marker {
            t.push_str("\n__END__\nmattermost['enable'] = true");
        }
        if self.final_newline || t.is_empty() {
            t.push('\n');
        }
        if self.crlf {
            t = t.replace('\n', "\r\n");
        }
        if self.bom {
            // Ruby (and the parser) reject a heredoc opened on a BOM's line.
            t = format!("\u{feff}# gitlab.rb\n{t}");
        }
        t
    }
}

fn file() -> impl Strategy<Value = FileShape> {
    (
        prop::collection::vec(statement(), 0..8),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(statements, bom, crlf, final_newline, end_marker)| FileShape {
                statements,
                bom,
                crlf,
                final_newline,
                end_marker,
            },
        )
}

// ---------------------------------------------------------------- checking

const OPS: [(Action, &str); 3] = [
    (Action::Disable, "18.11.1"),
    (Action::DisableForUpgrade, "19.1.0"),
    (Action::Enable, "18.11.1"),
];

/// The independent loader's view of each text.
fn oracle(texts: &[&str]) -> Vec<Option<Map<String, Value>>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths: Vec<PathBuf> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = dir.path().join(format!("{i}.rb"));
            std::fs::write(&p, t).expect("write");
            p
        })
        .collect();
    let run = |chunk: &[PathBuf]| -> Option<Vec<Option<Map<String, Value>>>> {
        let o = Command::new("ruby")
            .arg(repo("tests/support/gitlab_rb_eval.rb"))
            .arg("--many")
            .args(chunk)
            .output()
            .expect("ruby");
        if !o.status.success() {
            return None;
        }
        let v: Vec<Value> = serde_json::from_slice(&o.stdout).expect("json");
        Some(
            v.into_iter()
                .map(|r| {
                    (r["ok"] == Value::Bool(true))
                        .then(|| r["settings"].as_object().cloned().unwrap_or_default())
                })
                .collect(),
        )
    };
    let mut all = Vec::new();
    for chunk in paths.chunks(250) {
        match run(chunk) {
            Some(v) => all.extend(v),
            // The loader itself crashed on a file: find which, one by one.
            None => all.extend(
                chunk
                    .iter()
                    .map(|p| run(std::slice::from_ref(p)).and_then(|mut v| v.pop().flatten())),
            ),
        }
    }
    all
}

fn oracle_enabled(s: &Map<String, Value>) -> bool {
    let set = |v: &&Value| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty());
    match s
        .get("mattermost")
        .and_then(|m| m.get("enable"))
        .filter(set)
    {
        Some(v) => v != &Value::Bool(false),
        _ => s
            .get("mattermost_external_url")
            .is_some_and(|v| !v.is_null() && v != &Value::Bool(false) && !v.is_object()),
    }
}

/// How the checked operations ended.
#[derive(Debug, Default)]
struct Tally {
    edits: usize,
    unchanged: usize,
    refused: usize,
    invalid: usize,
}

/// Checks every text; `Some(why)` for each that fails.
fn check(texts: &[String]) -> Vec<Option<String>> {
    check_tally(texts).0
}

fn check_tally(texts: &[String]) -> (Vec<Option<String>>, Tally) {
    let mut tally = Tally::default();
    let spec = spec();
    let ruby = Ruby::plain().expect("ruby on PATH");
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let before = ruby.evaluate(&refs).expect("recorder");
    let before_oracle = oracle(&refs);
    let path = Path::new("gitlab.rb");
    let mut fails: Vec<Option<String>> = vec![None; texts.len()];
    // (text index, op, plan, before settings)
    let mut planned = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let parsed = RubyConfig::parse(path, t.clone());
        let (rb, settings) = match (&before[i], parsed) {
            (Evaluated::Loaded { settings, .. }, Ok(rb)) => (rb, settings.clone()),
            (Evaluated::Failed { error, .. }, Err(_)) if error.starts_with("SyntaxError") => {
                tally.invalid += 1;
                continue;
            }
            (Evaluated::Failed { error, .. }, Ok(_)) if error.starts_with("SyntaxError") => {
                fails[i] = Some(format!("the parser accepts what Ruby rejects: {error}"));
                continue;
            }
            // Valid Ruby that raises while loading (as it would in Omnibus):
            // bad input (65), nothing planned.
            (Evaluated::Failed { .. }, Ok(rb)) => {
                match embedded::state_from_eval(&rb, &spec, &before[i], path) {
                    Err(e) if e.exit_code() == upkeep_sys::ExitCode::BadInput => tally.invalid += 1,
                    other => fails[i] = Some(format!("a file Ruby cannot load gave {other:?}")),
                }
                continue;
            }
            (Evaluated::Failed { error, .. }, Err(_)) => {
                fails[i] = Some(format!("Ruby cannot run a generated file: {error}"));
                continue;
            }
            (Evaluated::Loaded { .. }, Err(e)) => {
                fails[i] = Some(format!("the parser rejects valid Ruby: {e}"));
                continue;
            }
        };
        let st = match embedded::state_from_eval(&rb, &spec, &before[i], path) {
            Ok(s) => s,
            Err(e) => {
                fails[i] = Some(format!("status: {e}"));
                continue;
            }
        };
        // status: the recorder and the independent loader agree.
        match &before_oracle[i] {
            Some(o) if oracle_enabled(o) != st.enabled => {
                fails[i] = Some(format!(
                    "status says enabled={} but Ruby's loader says {}",
                    st.enabled,
                    oracle_enabled(o)
                ));
                continue;
            }
            None => {
                fails[i] = Some("the independent loader cannot load it".into());
                continue;
            }
            _ => {}
        }
        for (action, v) in OPS {
            let hv = ProductVersion::parse(v);
            match embedded::plan(&rb, &spec, &st, action, "gitlab", hv.as_ref(), "mattermost") {
                Ok(p) => {
                    if p.changed {
                        tally.edits += 1;
                    } else {
                        tally.unchanged += 1;
                    }
                    planned.push((i, action, v, p, settings.clone(), rb.text.clone()))
                }
                Err(e)
                    if action == Action::DisableForUpgrade
                        && e.to_string().contains("By hand:") =>
                {
                    tally.refused += 1;
                }
                Err(e) => fails[i] = Some(format!("{action:?}: refused: {e}")),
            }
        }
    }
    let new_texts: Vec<&str> = planned.iter().map(|x| x.3.new_text.as_str()).collect();
    let after = ruby.evaluate(&new_texts).expect("recorder");
    let after_oracle = oracle(&new_texts);
    for (k, (i, action, v, p, settings, _old)) in planned.iter().enumerate() {
        if fails[*i].is_some() {
            continue;
        }
        let hv = ProductVersion::parse(v);
        let evaluated = p.changed.then_some((settings, &after[k]));
        let verified = if p.changed {
            embedded::verify(
                path,
                &spec,
                p,
                evaluated,
                "gitlab",
                hv.as_ref(),
                "mattermost",
            )
        } else {
            Ok(embedded::state_from_eval(
                &RubyConfig::parse(path, p.new_text.clone()).expect("parse"),
                &spec,
                &after[k],
                path,
            )
            .expect("state"))
        };
        let after_state = match verified {
            Ok(s) => s,
            Err(e) => {
                fails[*i] = Some(format!("{action:?}: upkeep's own check failed: {e}"));
                continue;
            }
        };
        let want = *action == Action::Enable;
        let Some(old) = &before_oracle[*i] else {
            continue;
        };
        let Some(new) = &after_oracle[k] else {
            fails[*i] = Some(format!(
                "{action:?}: the edited file does not load:\n{}",
                p.new_text
            ));
            continue;
        };
        let expected = if p.changed {
            embedded::expected_after(&spec, old, p.action, want).expect("expected")
        } else {
            old.clone()
        };
        let bad = if new != &expected {
            Some("other settings than intended")
        } else if p.action == Action::DisableForUpgrade
            && (new.contains_key("mattermost") || new.contains_key("mattermost_external_url"))
        {
            Some("a removed setting is still active")
        } else if p.action != Action::DisableForUpgrade && oracle_enabled(new) != want {
            Some("the enabled state is not the wanted one")
        } else if p.action != Action::DisableForUpgrade && after_state.enabled != want {
            Some("upkeep's state after is not the wanted one")
        } else {
            None
        };
        if let Some(b) = bad {
            fails[*i] = Some(format!(
                "{action:?} on {v}: {b}\n--- new text ---\n{}\n--- Ruby sees ---\n{}\n--- expected ---\n{}",
                p.new_text,
                Value::Object(new.clone()),
                Value::Object(expected)
            ));
        }
    }
    (fails, tally)
}

const REGRESSIONS: &str = "tests/gitlab_rb_regressions.jsonl";

fn regressions() -> Vec<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(REGRESSIONS);
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<String>(l).expect("a JSON string per line"))
        .collect()
}

#[test]
fn kept_regressions_pass() {
    let cases = regressions();
    let fails = check(&cases);
    for (c, f) in cases.iter().zip(&fails) {
        assert!(
            f.is_none(),
            "regression {c:?}: {}",
            f.as_deref().unwrap_or("")
        );
    }
}

#[test]
fn generated_files_every_operation_against_ruby() {
    let n: usize = std::env::var("UPKEEP_GEN_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut runner = TestRunner::default();
    let strategy = file();
    let mut trees = Vec::with_capacity(n);
    for _ in 0..n {
        trees.push(strategy.new_tree(&mut runner).expect("tree"));
    }
    let texts: Vec<String> = trees.iter().map(|t| t.current().text()).collect();
    let started = std::time::Instant::now();
    let (fails, tally) = check_tally(&texts);
    eprintln!(
        "{} generated gitlab.rb files checked (3 operations and status each) in {:.1} s: {tally:?}",
        texts.len(),
        started.elapsed().as_secs_f64()
    );
    // The generator must reach every outcome, or the check proves little.
    assert!(
        tally.edits > n / 2 && tally.unchanged > n / 10 && tally.refused > n / 50,
        "{tally:?}"
    );
    let Some(first) = fails.iter().position(Option::is_some) else {
        return;
    };
    for (t, f) in texts.iter().zip(&fails).filter(|x| x.1.is_some()).take(5) {
        eprintln!("FAILS: {t:?}\n{}\n", f.as_deref().unwrap_or(""));
    }
    // Shrink the first failure, one Ruby run per step.
    let mut tree = trees.swap_remove(first);
    let mut minimal = texts[first].clone();
    let mut why = fails[first].clone().unwrap_or_default();
    let mut steps = 0;
    while steps < 300 && tree.simplify() {
        steps += 1;
        let t = tree.current().text();
        match check(std::slice::from_ref(&t)).pop().flatten() {
            Some(w) => {
                minimal = t;
                why = w;
            }
            None => {
                if !tree.complicate() {
                    break;
                }
            }
        }
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(REGRESSIONS);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&p)
    {
        let _ = writeln!(f, "{}", serde_json::to_string(&minimal).unwrap_or_default());
    }
    panic!(
        "{} of {} generated files fail; the first, shrunk and kept in {REGRESSIONS}:\n{minimal:?}\n{why}",
        fails.iter().filter(|f| f.is_some()).count(),
        texts.len()
    );
}
