//! Switching an embedded instance (Mattermost inside GitLab Omnibus) on and
//! off in the host's gitlab.rb. What to edit comes from the manifest's
//! `[install.embedded]` table; this module only knows gitlab.rb semantics.

use crate::plugin::EmbeddedSpec;
use serde::Serialize;
use std::ops::Range;
use upkeep_formats::gitlab_rb::{GitlabRb, Setting, Statement};
use upkeep_pkg::version::ProductVersion;
use upkeep_sys::error::{Error, Result};

/// The manifest entry of a product's embedded install, with its host.
#[derive(Debug, Clone)]
pub struct Located {
    pub embedded: EmbeddedSpec,
    pub host: crate::plugin::HostSpec,
    pub config: String,
    pub host_version: Option<ProductVersion>,
    pub host_version_raw: Option<String>,
}

/// Finds the plugin's embedded install kind (the one whose manifest has an
/// `[install.embedded]` table with a config file) and reads the host's
/// version. It does not need the embedded binary to exist: a host that
/// removed it may still carry its settings.
pub fn locate(
    sys: &mut crate::detect::System<'_>,
    plugin: &crate::plugin::Plugin,
) -> Result<Located> {
    let m = &plugin.manifest;
    let install = m
        .installs
        .iter()
        .find(|i| i.embedded.as_ref().is_some_and(|e| e.config.is_some()) && i.host.is_some())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{} has no embedded install kind in its manifest",
                m.name
            ))
        })?;
    let (Some(embedded), Some(host)) = (install.embedded.clone(), install.host.clone()) else {
        return Err(Error::Usage(format!(
            "{}: incomplete [install.embedded]",
            m.name
        )));
    };
    let config = embedded.config.clone().unwrap_or_default();
    let raw = crate::detect::read_version(
        sys,
        &host.version,
        install.binary.as_deref(),
        install.dir.as_deref(),
        &crate::detect::Options::default(),
    );
    // Not installed is a plain failure, not malformed input.
    let config_there = upkeep_sys::safe::stat(sys.root, &config, true)?.is_some();
    if raw.is_none() && !config_there {
        return Err(Error::Failed(format!(
            "no {} install with an embedded {} was found under {}",
            host.product,
            m.name,
            sys.root.dir().display()
        )));
    }
    Ok(Located {
        host_version: raw.as_deref().and_then(ProductVersion::parse),
        host_version_raw: raw,
        embedded,
        host,
        config,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Disable,
    /// Comment out every setting the host no longer accepts.
    DisableForUpgrade,
    Enable,
}

/// What gitlab.rb says about the instance.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigState {
    pub enabled: bool,
    /// explicit, implied (a URL setting), or default.
    pub reason: String,
    /// Line of the assignment that decides, if any.
    pub line: Option<usize>,
    /// Every active setting of the instance (`mattermost[...]`, and the
    /// removed method settings), as `line: text`.
    pub active_settings: Vec<String>,
}

/// The names the manifest gives, with gitlab.rb's defaults.
struct Names<'a> {
    setting: &'a str,
    enable_key: &'a str,
}

fn names(spec: &EmbeddedSpec) -> Result<Names<'_>> {
    Ok(Names {
        setting: spec.setting.as_deref().ok_or_else(|| {
            Error::Failed("the manifest's [install.embedded] has no 'setting'".into())
        })?,
        enable_key: spec.enable_key.as_deref().unwrap_or("enable"),
    })
}

fn first_line(rb: &GitlabRb, s: &Statement) -> String {
    let text = &rb.text[s.span.clone()];
    let line = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r');
    format!("{}: {line}", rb.line_of(s.span.start))
}

pub fn state(rb: &GitlabRb, spec: &EmbeddedSpec) -> Result<ConfigState> {
    let n = names(spec)?;
    let last = rb.assignments(n.setting, Some(n.enable_key)).last();
    let implied = spec
        .implied_by
        .iter()
        .find_map(|name| rb.calls(name).last());
    let active_settings = removable(rb, spec, n.setting)
        .map(|s| first_line(rb, s))
        .collect();
    let (enabled, reason, line) = match (last, implied) {
        (Some(s), _) => {
            let v = rb.value_text(s).unwrap_or_default();
            // Anything but a literal false or nil is truthy to Ruby.
            (
                !matches!(v, "false" | "nil"),
                "explicit".to_string(),
                Some(rb.line_of(s.span.start)),
            )
        }
        (None, Some(s)) => (true, "implied".to_string(), Some(rb.line_of(s.span.start))),
        (None, None) => (false, "default".to_string(), None),
    };
    Ok(ConfigState {
        enabled,
        reason,
        line,
        active_settings,
    })
}

/// Active statements the removal form comments out.
fn removable<'a>(
    rb: &'a GitlabRb,
    spec: &'a EmbeddedSpec,
    setting: &'a str,
) -> impl Iterator<Item = &'a Statement> + 'a {
    rb.statements.iter().filter(move |s| match &s.setting {
        Some(Setting::Index { name, .. }) => {
            name == setting || spec.removed_settings.contains(name)
        }
        Some(Setting::Call { name, .. }) => spec.removed_settings.contains(name),
        None => false,
    })
}

fn version_of(v: Option<&str>) -> Option<ProductVersion> {
    v.and_then(ProductVersion::parse)
}

/// Whether the host version has removed the embedded instance.
pub fn host_removed_it(spec: &EmbeddedSpec, host_version: Option<&ProductVersion>) -> bool {
    match (version_of(spec.removed_in.as_deref()), host_version) {
        (Some(removed), Some(v)) => *v >= removed,
        _ => false,
    }
}

/// Whether a host upgrade from `old` to `new` crosses the release that
/// removed the embedded instance.
pub fn upgrade_crosses_removal(
    spec: &EmbeddedSpec,
    old: &ProductVersion,
    new: &ProductVersion,
) -> bool {
    version_of(spec.removed_in.as_deref()).is_some_and(|removed| *old < removed && *new >= removed)
}

/// Whether the new host package (at `new`, past the removal) refuses the
/// config: up to `any_setting_fatal_until` any remaining setting aborts it,
/// after that only an instance still enabled.
pub fn upgrade_aborts(spec: &EmbeddedSpec, state: &ConfigState, new: &ProductVersion) -> bool {
    let any_is_fatal =
        version_of(spec.any_setting_fatal_until.as_deref()).is_none_or(|until| *new < until);
    !state.active_settings.is_empty() && (any_is_fatal || state.enabled)
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    #[serde(skip)]
    pub new_text: String,
    pub changed: bool,
    /// What was done, one line each, for people.
    pub changes: Vec<String>,
    pub warnings: Vec<String>,
}

fn line_ending(text: &str) -> &'static str {
    if text.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    }
}

fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

fn line_end(text: &str, pos: usize) -> usize {
    let e = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
    if e > 0 && text.as_bytes()[e - 1] == b'\r' {
        e - 1
    } else {
        e
    }
}

fn apply(text: &str, mut edits: Vec<(Range<usize>, String)>) -> String {
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = text.to_string();
    for (r, s) in edits {
        out.replace_range(r, &s);
    }
    out
}

/// `host` names the product that embeds it (for messages).
pub fn plan(
    rb: &GitlabRb,
    spec: &EmbeddedSpec,
    action: Action,
    host: &str,
    host_version: Option<&ProductVersion>,
    product: &str,
) -> Result<Plan> {
    let n = names(spec)?;
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    let removed = host_removed_it(spec, host_version);
    let action = match action {
        Action::Disable if removed => {
            warnings.push(format!(
                "{host} {} no longer bundles {product} (removed in {}): commenting out its settings instead of disabling it",
                host_version.map_or("", |v| v.raw.as_str()),
                spec.removed_in.as_deref().unwrap_or_default()
            ));
            Action::DisableForUpgrade
        }
        Action::Enable if removed => {
            return Err(Error::Refused(format!(
                "{product} is no longer bundled with {host} {}: it cannot be enabled",
                host_version.map_or("", |v| v.raw.as_str())
            )))
        }
        a => a,
    };
    if host_version.is_none() {
        warnings.push(format!(
            "the {host} version is unknown: assuming it still bundles {product}"
        ));
    }
    let new_text = match action {
        Action::DisableForUpgrade => comment_out(rb, spec, host, n.setting, &mut changes),
        Action::Disable | Action::Enable => {
            let want = action == Action::Enable;
            let st = state(rb, spec)?;
            if action == Action::Disable && !st.enabled && st.reason == "default" {
                // Nothing to write: a new mattermost[...] line would only
                // break a later upgrade to a host that removed the instance.
                rb.text.clone()
            } else {
                set_enable(rb, &n, spec, want, &mut changes)
            }
        }
    };
    if action == Action::Disable {
        if let (Some(from), Some(until)) = (&spec.removed_in, &spec.any_setting_fatal_until) {
            if rb.assignments(n.setting, None).next().is_some() || !changes.is_empty() {
                warnings.push(format!(
                    "{host} {from} up to (not including) {until} aborts reconfigure on any {}[...] setting, and an upgrade to it fails in the package's preinst while one is active: before such an upgrade run `upkeep-embedded disable --for-upgrade {product}`",
                    n.setting
                ));
            }
        }
    }
    Ok(Plan {
        changed: new_text != rb.text,
        new_text,
        changes,
        warnings,
    })
}

fn set_enable(
    rb: &GitlabRb,
    n: &Names<'_>,
    spec: &EmbeddedSpec,
    want: bool,
    changes: &mut Vec<String>,
) -> String {
    let text = &rb.text;
    let value = if want { "true" } else { "false" };
    let nl = line_ending(text);
    let assignment = format!("{}['{}'] = {value}", n.setting, n.enable_key);
    let existing: Vec<&Statement> = rb.assignments(n.setting, Some(n.enable_key)).collect();
    if !existing.is_empty() {
        // Change every active assignment: the last one wins, but a person
        // reading the file should not find a contradicting earlier one.
        let mut edits = Vec::new();
        for s in existing {
            if let Some(Setting::Index { value: r, .. }) = &s.setting {
                if text[r.clone()].trim() != value {
                    changes.push(format!(
                        "line {}: set {}['{}'] to {value}",
                        rb.line_of(s.span.start),
                        n.setting,
                        n.enable_key
                    ));
                    edits.push((r.clone(), value.to_string()));
                }
            }
        }
        return apply(text, edits);
    }
    // The template's commented-out line, replaced in place.
    if let Some(c) = rb
        .comments
        .iter()
        .find(|c| is_template_line(&text[(*c).clone()], n))
    {
        let start = line_start(text, c.start);
        if text[start..c.start].trim().is_empty() {
            let indent = &text[start..c.start];
            changes.push(format!(
                "line {}: uncommented the template's line as {assignment}",
                rb.line_of(c.start)
            ));
            return apply(text, vec![(start..c.end, format!("{indent}{assignment}"))]);
        }
    }
    // Else at the end of the template's section, or of the file.
    let at = spec
        .section
        .as_deref()
        .and_then(|s| section_end(rb, s))
        .unwrap_or(text.len());
    changes.push(format!(
        "line {}: added {assignment}",
        rb.line_of(at.min(text.len()))
    ));
    if at >= text.len() {
        let sep = if text.is_empty() || text.ends_with('\n') {
            ""
        } else {
            nl
        };
        // Keep a missing final newline missing.
        let end = if text.is_empty() || text.ends_with('\n') {
            nl
        } else {
            ""
        };
        return format!("{text}{sep}{assignment}{end}");
    }
    apply(text, vec![(at..at, format!("{assignment}{nl}"))])
}

/// `# mattermost['enable'] = …` as the template writes it.
fn is_template_line(comment: &str, n: &Names<'_>) -> bool {
    let body = comment.trim_start_matches('#').trim_start();
    let Some(rest) = body.strip_prefix(n.setting) else {
        return false;
    };
    let rest = rest.trim_start();
    let Some(rest) = rest.strip_prefix('[') else {
        return false;
    };
    let key = rest.trim_start().trim_start_matches([':', '\'', '"']);
    key.starts_with(n.enable_key)
        && key[n.enable_key.len()..]
            .trim_start_matches(['\'', '"'])
            .trim_start()
            .starts_with(']')
        && key.contains('=')
}

/// Just before the banner that follows the section's heading, after the
/// section's last non-blank line.
fn section_end(rb: &GitlabRb, section: &str) -> Option<usize> {
    let text = &rb.text;
    let heading = rb
        .comments
        .iter()
        .find(|c| text[(*c).clone()].trim_end() == format!("## {section}"))?;
    let mut pos = line_end(text, heading.end);
    let mut past_header = false;
    let mut last_content_end = None;
    while pos < text.len() {
        let start = if text.as_bytes()[pos] == b'\r' {
            pos + 2
        } else {
            pos + 1
        };
        if start >= text.len() {
            break;
        }
        let end = line_end(text, start);
        let line = &text[start..end];
        if line.starts_with("####") {
            if past_header {
                return Some(last_content_end.map_or(start, |e: usize| line_start(text, e)));
            }
            past_header = true; // the closing rule of the heading block
        } else if !line.trim().is_empty() && past_header {
            last_content_end = Some(
                end + if text[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                },
            );
        }
        pos = end;
    }
    None
}

/// Comments out every active setting the host no longer accepts, each with
/// a line that says why; statements sharing a line with others are split
/// onto their own lines first.
fn comment_out(
    rb: &GitlabRb,
    spec: &EmbeddedSpec,
    host: &str,
    setting: &str,
    changes: &mut Vec<String>,
) -> String {
    let text = &rb.text;
    let nl = line_ending(text);
    let why = format!(
        "# upkeep: commented out: {host} {} removed bundled {setting}, and any {setting}[...] setting aborts its reconfigure",
        spec.removed_in.as_deref().unwrap_or_default()
    );
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    for s in removable(rb, spec, setting) {
        let ls = line_start(text, s.span.start);
        let own_end = line_end(text, s.span.end);
        let mut le = own_end;
        // Heredoc bodies that follow belong to the statement.
        while let Some(b) = rb.heredoc_bodies.iter().find(|b| {
            let next = if text[le..].starts_with("\r\n") {
                le + 2
            } else {
                le + 1
            };
            b.start == next
        }) {
            le = line_end(text, b.end.saturating_sub(1).max(b.start));
        }
        let before = &text[ls..s.span.start];
        let after = &text[s.span.end..own_end];
        let indent: String = before
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        let mut out = String::new();
        if !before.trim().is_empty() {
            out.push_str(before.trim_end().trim_end_matches(';').trim_end());
            out.push_str(nl);
        }
        let after_code = after.trim_start().strip_prefix(';').map(str::trim_start);
        let (trailing_comment, rest_code) = match after_code {
            Some(rest) => ("", rest),
            None => (after.trim_end(), ""),
        };
        out.push_str(&indent);
        out.push_str(&why);
        for (i, l) in text[s.span.start..s.span.end].split('\n').enumerate() {
            out.push_str(nl);
            out.push_str(&indent);
            out.push_str("# ");
            let l = l.trim_end_matches('\r');
            out.push_str(if i == 0 { l } else { l.trim_start() });
        }
        out.push_str(trailing_comment);
        // Heredoc bodies after the statement's own lines.
        if le > own_end {
            for l in text[own_end..le].split('\n').skip(1) {
                out.push_str(nl);
                out.push_str(&indent);
                out.push_str("# ");
                out.push_str(l.trim_end_matches('\r'));
            }
        }
        if !rest_code.is_empty() {
            out.push_str(nl);
            out.push_str(&indent);
            out.push_str(rest_code);
        }
        changes.push(format!(
            "line {}: commented out {}",
            rb.line_of(s.span.start),
            first_line(rb, s).split_once(": ").map_or("", |x| x.1)
        ));
        edits.push((ls..le, out));
    }
    apply(text, edits)
}

/// A unified diff (`diff -u` style, 3 lines of context) of two texts.
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = diff_lines(&a, &b);
    if ops.iter().all(|o| matches!(o, Op::Same(..))) {
        return String::new();
    }
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    // Group changes with 3 lines of context into hunks.
    let ctx = 3;
    let mut i = 0;
    while i < ops.len() {
        if matches!(ops[i], Op::Same(..)) {
            i += 1;
            continue;
        }
        let start = i.saturating_sub(ctx);
        let mut end = i;
        let mut same_run = 0;
        while end < ops.len() {
            if matches!(ops[end], Op::Same(..)) {
                same_run += 1;
                if same_run > 2 * ctx {
                    break;
                }
            } else {
                same_run = 0;
            }
            end += 1;
        }
        let end = (end - same_run.min(end)).min(ops.len()) + same_run.min(ctx);
        let end = end.min(ops.len());
        let (mut a0, mut b0) = (usize::MAX, usize::MAX);
        let (mut an, mut bn) = (0, 0);
        let mut body = String::new();
        for op in &ops[start..end] {
            match *op {
                Op::Same(x, y) => {
                    a0 = a0.min(x);
                    b0 = b0.min(y);
                    an += 1;
                    bn += 1;
                    push_line(&mut body, ' ', a[x]);
                }
                Op::Del(x, y) => {
                    a0 = a0.min(x);
                    b0 = b0.min(y);
                    an += 1;
                    push_line(&mut body, '-', a[x]);
                }
                Op::Add(x, y) => {
                    a0 = a0.min(x);
                    b0 = b0.min(y);
                    bn += 1;
                    push_line(&mut body, '+', b[y]);
                }
            }
        }
        let show = |s: usize, n: usize| if n == 0 { s } else { s + 1 };
        out.push_str(&format!(
            "@@ -{},{an} +{},{bn} @@\n",
            show(a0, an),
            show(b0, bn)
        ));
        out.push_str(&body);
        i = end;
    }
    out
}

fn push_line(out: &mut String, mark: char, line: &str) {
    out.push(mark);
    out.push_str(line.trim_end_matches('\n'));
    out.push('\n');
    if !line.ends_with('\n') {
        out.push_str("\\ No newline at end of file\n");
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    /// Line indexes in old and new.
    Same(usize, usize),
    /// Old line removed; the second is the new position it stands before.
    Del(usize, usize),
    /// New line added; the first is the old position it stands before.
    Add(usize, usize),
}

/// Line diff: common prefix and suffix trimmed, then a longest-common-
/// subsequence table over what is left (small: edits are local).
fn diff_lines(a: &[&str], b: &[&str]) -> Vec<Op> {
    let pre = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suf = a[pre..]
        .iter()
        .rev()
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    let mut ops: Vec<Op> = (0..pre).map(|i| Op::Same(i, i)).collect();
    let (n, m) = (am.len(), bm.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if am[i] == bm[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && am[i] == bm[j] {
            ops.push(Op::Same(pre + i, pre + j));
            i += 1;
            j += 1;
        } else if i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(Op::Del(pre + i, pre + j));
            i += 1;
        } else {
            ops.push(Op::Add(pre + i, pre + j));
            j += 1;
        }
    }
    ops.extend((0..suf).map(|k| Op::Same(a.len() - suf + k, b.len() - suf + k)));
    ops
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;
    use std::path::Path;

    fn spec() -> EmbeddedSpec {
        let m = crate::plugin::parse_manifest(Path::new("m"), crate::plugin::BUILTIN[0].1).unwrap();
        m.installs[0].embedded.clone().unwrap()
    }

    fn run(src: &str, action: Action, v: &str) -> Plan {
        let rb = GitlabRb::parse(Path::new("gitlab.rb"), src.to_string()).unwrap();
        plan(
            &rb,
            &spec(),
            action,
            "gitlab",
            ProductVersion::parse(v).as_ref(),
            "mattermost",
        )
        .unwrap()
    }

    #[test]
    fn disable_changes_every_assignment_in_place() {
        let p = run(
            "mattermost['enable'] = true\nx = 1\nmattermost[:enable]=true # on\n",
            Action::Disable,
            "18.11.1",
        );
        assert_eq!(
            p.new_text,
            "mattermost['enable'] = false\nx = 1\nmattermost[:enable]=false # on\n"
        );
    }

    #[test]
    fn implied_by_url_gets_an_explicit_false_in_the_template_line() {
        let src = "mattermost_external_url 'http://m'\n\n  # mattermost['enable'] = false\n# mattermost['username'] = 'x'\n";
        let p = run(src, Action::Disable, "18.11.1");
        assert_eq!(p.new_text, "mattermost_external_url 'http://m'\n\n  mattermost['enable'] = false\n# mattermost['username'] = 'x'\n");
    }

    #[test]
    fn default_disabled_is_left_alone() {
        let p = run("external_url 'x'\n", Action::Disable, "18.11.1");
        assert!(!p.changed);
    }

    #[test]
    fn appended_at_the_end_keeping_a_missing_newline_missing() {
        let p = run(
            "mattermost_external_url 'http://m'",
            Action::Disable,
            "18.11.1",
        );
        assert_eq!(
            p.new_text,
            "mattermost_external_url 'http://m'\nmattermost['enable'] = false"
        );
        let p = run(
            "mattermost_external_url 'http://m'\r\n",
            Action::Disable,
            "18.11.1",
        );
        assert_eq!(
            p.new_text,
            "mattermost_external_url 'http://m'\r\nmattermost['enable'] = false\r\n"
        );
    }

    #[test]
    fn removal_form_comments_out_split_statements_and_heredocs() {
        let src = "a = 1; mattermost['enable'] = true; b = 2\nmattermost['env'] = <<~EOS\n  X\n  EOS\nmattermost_nginx['enable'] = true\n";
        let p = run(src, Action::Disable, "19.1.0");
        assert!(
            p.new_text.starts_with("a = 1\n# upkeep: commented out"),
            "{}",
            p.new_text
        );
        assert!(
            p.new_text
                .contains("# mattermost['enable'] = true\nb = 2\n"),
            "{}",
            p.new_text
        );
        assert!(
            p.new_text
                .contains("# mattermost['env'] = <<~EOS\n#   X\n#   EOS\n"),
            "{}",
            p.new_text
        );
        assert!(
            p.new_text.contains("\nmattermost_nginx['enable'] = true\n"),
            "look-alike untouched"
        );
        let again = run(&p.new_text, Action::Disable, "19.1.0");
        assert!(!again.changed, "idempotent");
    }

    #[test]
    fn which_host_upgrades_abort() {
        let v = |s| ProductVersion::parse(s).unwrap();
        let st = |src: &str| {
            let rb = GitlabRb::parse(Path::new("g"), src.to_string()).unwrap();
            state(&rb, &spec()).unwrap()
        };
        assert!(upgrade_crosses_removal(
            &spec(),
            &v("18.11.1"),
            &v("19.0.0")
        ));
        assert!(!upgrade_crosses_removal(
            &spec(),
            &v("19.0.0"),
            &v("19.1.0")
        ));
        assert!(!upgrade_crosses_removal(
            &spec(),
            &v("18.10.0"),
            &v("18.11.1")
        ));
        let off = st("mattermost['enable'] = false\n");
        assert!(
            upgrade_aborts(&spec(), &off, &v("19.2.0")),
            "19.0-19.2: any setting"
        );
        assert!(
            !upgrade_aborts(&spec(), &off, &v("19.3.0")),
            "19.3+: only an enabled one"
        );
        assert!(upgrade_aborts(
            &spec(),
            &st("mattermost['enable'] = true\n"),
            &v("19.3.0")
        ));
        assert!(!upgrade_aborts(
            &spec(),
            &st("external_url 'x'\n"),
            &v("19.0.0")
        ));
    }

    #[test]
    fn enable_is_refused_after_removal() {
        let rb = GitlabRb::parse(Path::new("g"), String::new()).unwrap();
        assert!(plan(
            &rb,
            &spec(),
            Action::Enable,
            "gitlab",
            ProductVersion::parse("19.0.0").as_ref(),
            "m"
        )
        .is_err());
    }

    #[test]
    fn diff_is_unified() {
        let d = unified_diff("a\nb\nc\n", "a\nB\nc\n", "x", "y");
        assert_eq!(d, "--- x\n+++ y\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
        assert_eq!(unified_diff("a\n", "a\n", "x", "y"), "");
        let d = unified_diff("a", "a\nb", "x", "y");
        assert!(
            d.contains("-a\n\\ No newline at end of file\n+a\n+b\n\\ No newline"),
            "{d}"
        );
    }
}
