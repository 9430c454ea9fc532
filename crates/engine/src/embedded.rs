//! Switching an embedded instance (Mattermost inside GitLab Omnibus) on and
//! off in the host's gitlab.rb. What to edit comes from the manifest's
//! `[install.embedded]` table; this module only knows gitlab.rb semantics.

use crate::plugin::EmbeddedSpec;
use crate::rb_eval::{truthy, Evaluated};
use serde::Serialize;
use serde_json::{Map, Value};
use std::ops::Range;
use upkeep_formats::ruby_config::{
    line_end, line_start, Found, HeredocSpan, Kind, Place, RubyConfig,
};
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

/// Why the config enables the instance or not.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Why {
    /// The enable setting says so.
    Explicit,
    /// A setting that enables it by itself (a URL).
    Implied,
    /// Nothing says: the host's default.
    Default,
}

/// What gitlab.rb says about the instance.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConfigState {
    pub enabled: bool,
    pub reason: Why,
    /// Line of the assignment that decides, if any.
    pub line: Option<usize>,
    /// Every place that sets something of the instance (`mattermost[...]`,
    /// and the removed method settings), as `line: text`.
    pub active_settings: Vec<String>,
    /// "ruby": Ruby evaluated the file as Omnibus does; "static": no Ruby
    /// was available, this is a reading of the text alone.
    pub source: String,
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

/// Every place that sets something the removal release rejects.
fn removable<'a>(rb: &'a RubyConfig, spec: &'a EmbeddedSpec, setting: &'a str) -> Vec<&'a Found> {
    rb.settings
        .iter()
        .filter(|f| f.name == setting || spec.removed_settings.contains(&f.name))
        .collect()
}

fn active_settings(rb: &RubyConfig, spec: &EmbeddedSpec, setting: &str) -> Vec<String> {
    removable(rb, spec, setting)
        .iter()
        .map(|f| rb.describe(&f.span))
        .collect()
}

/// A reading of the text alone, for when no Ruby is available: the last
/// literal assignment of the enable key, else a URL setting. Settings in
/// conditionals count as if they ran.
pub fn state(rb: &RubyConfig, spec: &EmbeddedSpec) -> Result<ConfigState> {
    let n = names(spec)?;
    let last = rb
        .of(n.setting)
        .filter_map(|f| match &f.kind {
            Kind::Index { keys, value }
                if keys.len() == 1 && keys[0].as_deref() == Some(n.enable_key) =>
            {
                Some((f, value.as_ref()))
            }
            _ => None,
        })
        .last();
    let implied = rb
        .settings
        .iter()
        .rev()
        .find(|f| f.kind == Kind::Call && spec.implied_by.contains(&f.name));
    let (enabled, reason, line) = match (last, implied) {
        // Anything but a literal false or nil is taken as true.
        (Some((f, v)), _) => (
            !v.is_some_and(|v| matches!(rb.text[v.span.clone()].trim(), "false" | "nil")),
            Why::Explicit,
            Some(rb.line_of(f.span.start)),
        ),
        (None, Some(f)) => (true, Why::Implied, Some(rb.line_of(f.span.start))),
        (None, None) => (false, Why::Default, None),
    };
    Ok(ConfigState {
        enabled,
        reason,
        line,
        active_settings: active_settings(rb, spec, n.setting),
        source: "static".into(),
    })
}

/// The state as Ruby computed it (`settings` from `rb_eval`), as Omnibus
/// decides it: the enable key when set (not nil), else any URL setting
/// that enables it implicitly.
pub fn state_from_eval(
    rb: &RubyConfig,
    spec: &EmbeddedSpec,
    ev: &Evaluated,
    path: &std::path::Path,
) -> Result<ConfigState> {
    let n = names(spec)?;
    let settings = ev.settings(path)?;
    // A key only read (auto-vivified to an empty object) was never set.
    let enable = settings
        .get(n.setting)
        .and_then(|s| s.get(n.enable_key))
        .filter(|v| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()));
    let implied = spec.implied_by.iter().find(|name| {
        settings
            .get(name.as_str())
            .is_some_and(|v| truthy(v) && !v.is_object())
    });
    let set = |v: &Value| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty());
    let removed_seen = std::iter::once(n.setting)
        .chain(spec.removed_settings.iter().map(String::as_str))
        .any(|name| settings.get(name).is_some_and(set));
    let (enabled, reason, line) = match (enable, implied) {
        (Some(v), _) => (
            truthy(v),
            Why::Explicit,
            ev.line(n.setting, Some(n.enable_key)),
        ),
        (None, Some(name)) => (true, Why::Implied, ev.line(name, None)),
        (None, None) => (false, Why::Default, None),
    };
    Ok(ConfigState {
        enabled,
        reason,
        line,
        // Where they are, when Ruby saw any of them set (code that never
        // runs sets nothing).
        active_settings: if removed_seen {
            active_settings(rb, spec, n.setting)
        } else {
            Vec::new()
        },
        source: "ruby".into(),
    })
}

/// The effective settings a change must leave: `before` with the enable
/// key set to `want`, or with the removed settings gone.
pub fn expected_after(
    spec: &EmbeddedSpec,
    before: &Map<String, Value>,
    action: Action,
    want: bool,
) -> Result<Map<String, Value>> {
    let n = names(spec)?;
    let mut v = before.clone();
    match action {
        Action::DisableForUpgrade => {
            v.remove(n.setting);
            for r in &spec.removed_settings {
                v.remove(r);
            }
        }
        Action::Disable | Action::Enable => {
            let entry = v
                .entry(n.setting.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = entry {
                m.insert(n.enable_key.to_string(), Value::Bool(want));
            } else {
                return Err(Error::Failed(format!(
                    "{} is not a settings object in this file",
                    n.setting
                )));
            }
        }
    }
    Ok(v)
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
    /// The action after the host's version was taken into account.
    #[serde(skip)]
    pub action: Action,
}

/// The line ending of the line `pos` is on (the file's first one if that
/// line has none).
fn line_ending_at(text: &str, pos: usize) -> &'static str {
    let e = line_end(text, pos);
    if text[e..].starts_with("\r\n") {
        "\r\n"
    } else if text[e..].starts_with('\n') {
        "\n"
    } else if text.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
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

/// A change upkeep will not make by itself: exit 1, nothing written.
fn by_hand(rb: &RubyConfig, span: &Range<usize>, why: &str, what: &str) -> Error {
    Error::Failed(format!(
        "line {} ({}) {why}, which upkeep cannot change safely; nothing was written. By hand: {what}, then run this command again.",
        rb.line_of(span.start),
        rb.describe(span).split_once(": ").map_or("", |x| x.1),
    ))
}

/// Plans the edit. `st` is the instance's state (from Ruby when
/// available); `host` names the product that embeds it (for messages).
pub fn plan(
    rb: &RubyConfig,
    spec: &EmbeddedSpec,
    st: &ConfigState,
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
                "{host} {} no longer bundles {product} (it was removed in {}), so its settings are commented out instead of being switched off.",
                host_version.map_or("", |v| v.raw.as_str()),
                spec.removed_in.as_deref().unwrap_or_default()
            ));
            Action::DisableForUpgrade
        }
        Action::Enable if removed => {
            return Err(Error::Refused(format!(
                "{product} is no longer bundled with {host} {}, so it cannot be enabled.",
                host_version.map_or("", |v| v.raw.as_str())
            )))
        }
        a => a,
    };
    if host_version.is_none() {
        warnings.push(format!(
            "The {host} version is unknown, so upkeep assumes it still bundles {product}."
        ));
    }
    let new_text = match action {
        Action::DisableForUpgrade => comment_out(rb, spec, host, n.setting, &mut changes)?,
        Action::Disable | Action::Enable => {
            let want = action == Action::Enable;
            if st.enabled == want {
                rb.text.clone()
            } else {
                set_enable(rb, &n, spec, want, &mut changes)
            }
        }
    };
    if action == Action::Disable {
        if let (Some(from), Some(until)) = (&spec.removed_in, &spec.any_setting_fatal_until) {
            if rb.of(n.setting).next().is_some() || !changes.is_empty() {
                warnings.push(format!(
                    "Before upgrading {host} to {from} or later, run `upkeep-embedded disable --for-upgrade {product}`: {host} {from} up to (not including) {until} stops its reconfigure and its package upgrade on any remaining {}[...] setting.",
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
        action,
    })
}

fn set_enable(
    rb: &RubyConfig,
    n: &Names<'_>,
    spec: &EmbeddedSpec,
    want: bool,
    changes: &mut Vec<String>,
) -> String {
    let text = &rb.text;
    let value = if want { "true" } else { "false" };
    let assignment = format!("{}['{}'] = {value}", n.setting, n.enable_key);
    let last = rb
        .settings
        .iter()
        .rev()
        .find(|f| f.may_set(n.setting, n.enable_key));
    if let Some(f) = last {
        // The last assignment wins: change it when it is a statement of its
        // own with a literal value, else add one after all code.
        if let (
            Place::Statement,
            Kind::Index {
                keys,
                value: Some(v),
            },
        ) = (f.place, &f.kind)
        {
            if keys.len() == 1 && keys[0].as_deref() == Some(n.enable_key) && v.literal {
                changes.push(format!(
                    "line {}: set {}['{}'] to {value}",
                    rb.line_of(f.span.start),
                    n.setting,
                    n.enable_key
                ));
                return apply(text, vec![(v.span.clone(), value.to_string())]);
            }
        }
        return append(rb, &assignment, changes);
    }
    // The template's commented-out line, replaced in place.
    if let Some(c) = rb
        .comments
        .iter()
        .find(|c| is_template_line(&text[(*c).clone()], n) && rb.at_top_level(c.start))
    {
        let start = line_start(text, c.start).max(rb.bom);
        if text[start..c.start].trim().is_empty() {
            let indent = &text[start..c.start];
            changes.push(format!(
                "line {}: uncommented the template's line as {assignment}",
                rb.line_of(c.start)
            ));
            return apply(text, vec![(start..c.end, format!("{indent}{assignment}"))]);
        }
    }
    // Else at the end of the template's section, or after all code.
    if let Some(at) = spec
        .section
        .as_deref()
        .and_then(|s| section_end(rb, s))
        .filter(|at| *at < rb.code_end && rb.at_top_level(*at))
    {
        changes.push(format!("line {}: added {assignment}", rb.line_of(at)));
        let nl = line_ending_at(text, at);
        return apply(text, vec![(at..at, format!("{assignment}{nl}"))]);
    }
    append(rb, &assignment, changes)
}

/// Adds `line` after all code (before `__END__`), keeping a missing final
/// newline missing.
fn append(rb: &RubyConfig, line: &str, changes: &mut Vec<String>) -> String {
    let text = &rb.text;
    let at = rb.code_end;
    let nl = if text[..at].ends_with("\r\n") {
        "\r\n"
    } else if text[..at].ends_with('\n') {
        "\n"
    } else {
        line_ending_at(text, 0)
    };
    if at < text.len() {
        changes.push(format!("line {}: added {line}", rb.line_of(at)));
        return apply(text, vec![(at..at, format!("{line}{nl}"))]);
    }
    let ends_nl = text.is_empty() || text.ends_with('\n');
    changes.push(format!(
        "line {}: added {line}",
        rb.line_of(text.len()) + usize::from(!ends_nl && !text.is_empty())
    ));
    if ends_nl {
        format!("{text}{line}{nl}")
    } else {
        format!("{text}{nl}{line}")
    }
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
        && !comment.contains('\n')
}

/// Just before the banner that follows the section's heading, after the
/// section's last non-blank line.
fn section_end(rb: &RubyConfig, section: &str) -> Option<usize> {
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

/// One piece of a line being rebuilt: a statement (or an operand of a
/// top-level `and`/`or` chain) and whether it is commented out.
struct Unit<'a> {
    span: Range<usize>,
    comment: bool,
    bodies: Vec<&'a HeredocSpan>,
}

/// Whether `gap` (between two statements on one line, heredoc bodies
/// removed) holds only separators: blanks, `;`, line continuations and,
/// inside a chain, its operators.
fn only_separators(gap: &str, chain: bool) -> bool {
    let mut rest = gap;
    loop {
        rest = rest.trim_start_matches([' ', '\t', '\r', '\n', ';', '\\']);
        if rest.is_empty() {
            return true;
        }
        let op = ["and", "or", "&&", "||"]
            .iter()
            .find(|op| chain && rest.starts_with(*op));
        match op {
            Some(op) => rest = &rest[op.len()..],
            None => return false,
        }
    }
}

/// Comments out every statement that sets something the host no longer
/// accepts, each with a line that says why. Statements sharing a line are
/// split onto lines of their own first (top-level `and`/`or` chains into
/// their operands); every other statement stays byte-identical. A setting
/// nested in a conditional, block or method, or a method called on the
/// settings object (`merge!`), is refused: exit 1, nothing written.
fn comment_out(
    rb: &RubyConfig,
    spec: &EmbeddedSpec,
    host: &str,
    setting: &str,
    changes: &mut Vec<String>,
) -> Result<String> {
    let text = &rb.text;
    let why = format!(
        "# upkeep: commented out: {host} {} removed bundled {setting}, and any {setting}[...] setting aborts its reconfigure",
        spec.removed_in.as_deref().unwrap_or_default()
    );
    let targets = removable(rb, spec, setting);
    for f in &targets {
        if let Kind::Method(m) = &f.kind {
            return Err(by_hand(
                rb,
                &f.span,
                &format!("calls {m} on {}", f.name),
                &format!("delete or comment out every {setting} setting it makes"),
            ));
        }
        if f.place == Place::Nested {
            return Err(by_hand(
                rb,
                &f.span,
                &format!("sets {} inside a conditional, block or expression", f.name),
                "comment out or delete that setting (keeping the code around it working)",
            ));
        }
    }
    for f in targets.iter().filter(|f| f.place == Place::Chain) {
        if !rb.statements[f.top].splittable {
            return Err(by_hand(
                rb,
                &f.span,
                &format!(
                    "sets {} in an and/or chain whose other parts may or may not run",
                    f.name
                ),
                "rewrite the chain as separate statements (or an if), without that setting",
            ));
        }
    }
    // Commenting a setting out must not take another setting with it.
    for f in &targets {
        if let Some(o) = rb.settings.iter().find(|o| {
            f.span.start <= o.span.start
                && o.span.end <= f.span.end
                && o.span != f.span
                && !(o.name == setting || spec.removed_settings.contains(&o.name))
        }) {
            return Err(by_hand(
                rb,
                &f.span,
                &format!("sets {} within the same statement", o.name),
                &format!("move the {} setting to a statement of its own", o.name),
            ));
        }
    }
    let target_spans: Vec<&Range<usize>> = targets.iter().map(|f| &f.span).collect();
    let tops: std::collections::BTreeSet<usize> = targets.iter().map(|f| f.top).collect();
    let mut edits = Vec::new();
    let stmts = &rb.statements;
    let mut i = 0;
    while i < stmts.len() {
        // A cluster: statements joined on shared lines.
        let mut j = i;
        while j + 1 < stmts.len()
            && !text[stmts[j].span.end..stmts[j + 1].span.start].contains('\n')
        {
            j += 1;
        }
        if (i..=j).any(|k| tops.contains(&k)) {
            edits.push(rebuild(rb, i..=j, &target_spans, &tops, &why)?);
            for k in i..=j {
                for f in targets.iter().filter(|f| f.top == k) {
                    changes.push(format!(
                        "line {}: commented out {}",
                        rb.line_of(f.span.start),
                        rb.describe(&f.span).split_once(": ").map_or("", |x| x.1)
                    ));
                }
            }
        }
        i = j + 1;
    }
    Ok(apply(text, edits))
}

fn rebuild(
    rb: &RubyConfig,
    cluster: std::ops::RangeInclusive<usize>,
    targets: &[&Range<usize>],
    tops: &std::collections::BTreeSet<usize>,
    why: &str,
) -> Result<(Range<usize>, String)> {
    let text = &rb.text;
    let (first, last) = (*cluster.start(), *cluster.end());
    let stmts = &rb.statements;
    let cannot = |at: usize| {
        Error::Failed(format!(
            "line {} joins statements in a way upkeep cannot split safely; nothing was written. By hand: put each statement on a line of its own, then run this command again.",
            rb.line_of(at)
        ))
    };
    let mut units: Vec<Unit<'_>> = Vec::new();
    for k in cluster.clone() {
        let s = &stmts[k];
        let pieces: Vec<Range<usize>> = if tops.contains(&k) && !s.operands.is_empty() {
            s.operands.clone()
        } else {
            vec![s.span.clone()]
        };
        for p in pieces {
            let comment = tops.contains(&k) && targets.iter().any(|t| **t == p);
            let bodies = s
                .heredocs
                .iter()
                .filter(|h| {
                    p.start <= h.opener.start && h.opener.end <= p.end && h.body.start >= p.end
                })
                .collect();
            units.push(Unit {
                span: p,
                comment,
                bodies,
            });
        }
    }
    // Bodies may only lie after their unit's line, between units or after
    // the last one, never inside another unit.
    for u in &units {
        for b in &u.bodies {
            if units
                .iter()
                .any(|o| o.span.start < b.body.end && b.body.start < o.span.end)
            {
                return Err(cannot(u.span.start));
            }
        }
    }
    let region_start =
        line_start(text, stmts[first].span.start).max(rb.bom.min(stmts[first].span.start));
    let indent = &text[region_start..stmts[first].span.start];
    if !indent.chars().all(|c| c == ' ' || c == '\t') {
        return Err(cannot(stmts[first].span.start));
    }
    let last_unit_end = units.last().map_or(stmts[last].span.end, |u| u.span.end);
    let code_line_end = line_end(text, last_unit_end);
    let region_end = units
        .iter()
        .flat_map(|u| u.bodies.iter().map(|b| b.body.end))
        .fold(code_line_end, usize::max);
    let nl = line_ending_at(text, stmts[first].span.start);
    // What follows the last statement on its line: `;`, blanks, a comment.
    let tail = text[last_unit_end..code_line_end].trim_start_matches([' ', '\t', ';']);
    if !tail.is_empty() && !tail.starts_with('#') {
        return Err(cannot(last_unit_end));
    }
    for w in units.windows(2) {
        let mut gap = text[w[0].span.end..w[1].span.start].to_string();
        for b in units.iter().flat_map(|u| &u.bodies) {
            if w[0].span.end <= b.body.start && b.body.end <= w[1].span.start {
                gap = gap.replace(&text[b.body.clone()], "");
            }
        }
        let chain = !text[w[0].span.end..w[1].span.start].contains(';')
            || units.len() > cluster.clone().count();
        if !only_separators(&gap, chain) {
            return Err(cannot(w[1].span.start));
        }
    }
    let mut out = String::new();
    let commented = |out: &mut String, lines: &str, first_prefix: bool| {
        for (n, l) in lines.split('\n').enumerate() {
            if n > 0 || first_prefix {
                out.push_str(nl);
                out.push_str(indent);
            }
            out.push_str("# ");
            out.push_str(l.strip_suffix('\r').unwrap_or(l));
        }
    };
    for (k, u) in units.iter().enumerate() {
        if k > 0 {
            out.push_str(nl);
        }
        out.push_str(indent);
        let code = &text[u.span.clone()];
        if u.comment {
            out.push_str(why);
            commented(&mut out, code, true);
        } else {
            out.push_str(code);
        }
        if k + 1 == units.len() && !tail.is_empty() {
            out.push(' ');
            out.push_str(tail.trim_end_matches('\r'));
        }
        for b in &u.bodies {
            let body = &text[b.body.clone()];
            if u.comment {
                commented(&mut out, body, true);
            } else {
                out.push_str(nl);
                out.push_str(body);
            }
        }
    }
    Ok((region_start..region_end, out))
}

pub use upkeep_formats::diff::unified_diff;

/// Checks a planned edit before it is written: the new text parses, Ruby
/// (when `evaluated`: the before-settings and the new text's evaluation)
/// computes exactly the old settings plus the intended change, and
/// planning again on the new text changes nothing. Returns the state after.
/// Any failure is exit 1 with a sentence saying nothing was written.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    path: &std::path::Path,
    spec: &EmbeddedSpec,
    p: &Plan,
    evaluated: Option<(&Map<String, Value>, &Evaluated)>,
    host: &str,
    host_version: Option<&ProductVersion>,
    product: &str,
) -> Result<ConfigState> {
    let refuse = |why: String| {
        Error::Failed(format!(
            "upkeep's edit of {} was not written: {why}. Make the change by hand.",
            path.display()
        ))
    };
    let new_rb = RubyConfig::parse(path, p.new_text.clone())
        .map_err(|e| refuse(format!("the edited text would not be valid Ruby ({e})")))?;
    let want = p.action == Action::Enable;
    let after = match evaluated {
        Some((before, ev)) => {
            let got = ev
                .settings(path)
                .map_err(|e| refuse(format!("Ruby could not load the edited text ({e})")))?;
            let expected = expected_after(spec, before, p.action, want)?;
            if *got != expected {
                let mut keys: Vec<&String> = got
                    .keys()
                    .chain(expected.keys())
                    .filter(|k| got.get(*k) != expected.get(*k))
                    .collect();
                keys.sort();
                keys.dedup();
                let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                return Err(refuse(format!(
                    "Ruby would see other settings than intended (differing: {})",
                    keys.join(", ")
                )));
            }
            state_from_eval(&new_rb, spec, ev, path)?
        }
        None => state(&new_rb, spec)?,
    };
    let ok = match p.action {
        Action::DisableForUpgrade => after.active_settings.is_empty(),
        _ => after.enabled == want,
    };
    if !ok {
        return Err(refuse(format!(
            "the edited text would still leave {product} {}",
            if want { "disabled" } else { "enabled or set" }
        )));
    }
    let again = plan(&new_rb, spec, &after, p.action, host, host_version, product)?;
    if again.changed {
        return Err(refuse(
            "a second run would change the file again".to_string(),
        ));
    }
    Ok(after)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;
    use std::path::Path;

    fn spec() -> EmbeddedSpec {
        let m = crate::plugin::parse_manifest(
            Path::new("m"),
            crate::plugin::BUILTIN
                .iter()
                .find(|(n, _)| *n == "mattermost.toml")
                .expect("the manifest")
                .1,
        )
        .unwrap();
        m.installs[0].embedded.clone().unwrap()
    }

    fn try_run(src: &str, action: Action, v: &str) -> Result<Plan> {
        let rb = RubyConfig::parse(Path::new("gitlab.rb"), src.to_string()).unwrap();
        let st = state(&rb, &spec()).unwrap();
        plan(
            &rb,
            &spec(),
            &st,
            action,
            "gitlab",
            ProductVersion::parse(v).as_ref(),
            "mattermost",
        )
    }

    fn run(src: &str, action: Action, v: &str) -> Plan {
        try_run(src, action, v).unwrap()
    }

    #[test]
    fn disable_changes_the_last_plain_assignment_in_place() {
        let p = run(
            "mattermost['enable'] = true\nx = 1\nmattermost[:enable]=true # on\n",
            Action::Disable,
            "18.11.1",
        );
        assert_eq!(
            p.new_text,
            "mattermost['enable'] = true\nx = 1\nmattermost[:enable]=false # on\n"
        );
    }

    #[test]
    fn disable_appends_when_the_last_assignment_is_not_plain() {
        let p = run(
            "mattermost['enable'] = true\nif x then mattermost['enable'] = true end\n__END__\nmattermost['enable'] = true\n",
            Action::Disable,
            "18.11.1",
        );
        assert_eq!(
            p.new_text,
            "mattermost['enable'] = true\nif x then mattermost['enable'] = true end\nmattermost['enable'] = false\n__END__\nmattermost['enable'] = true\n"
        );
        let p = run(
            "mattermost['enable'] = <<~E\n  x\n  E\n",
            Action::Disable,
            "18.11.1",
        );
        assert_eq!(
            p.new_text,
            "mattermost['enable'] = <<~E\n  x\n  E\nmattermost['enable'] = false\n"
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
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn on_18_11_disable_says_what_19_needs_and_does_not_warn_as_on_19() {
        let p = run("mattermost['enable'] = true\n", Action::Disable, "18.11.1");
        assert_eq!(p.warnings, ["Before upgrading gitlab to 19.0 or later, run `upkeep-embedded disable --for-upgrade mattermost`: gitlab 19.0 up to (not including) 19.3 stops its reconfigure and its package upgrade on any remaining mattermost[...] setting."]);
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
        let why = "# upkeep: commented out: gitlab 19.0 removed bundled mattermost, and any mattermost[...] setting aborts its reconfigure";
        assert_eq!(
            p.new_text,
            format!("a = 1\n{why}\n# mattermost['enable'] = true\nb = 2\n{why}\n# mattermost['env'] = <<~EOS\n#   X\n#   EOS\nmattermost_nginx['enable'] = true\n")
        );
        let again = run(&p.new_text, Action::Disable, "19.1.0");
        assert!(!again.changed, "idempotent");
    }

    #[test]
    fn removal_form_splits_crlf_lines_and_chains() {
        let src = "mattermost['enable'] = true; mattermost['service_port'] = \"8065\"\r\ngitlab_rails['a'] = 1 and mattermost['x'] = 2 # c\r\n";
        let p = run(src, Action::DisableForUpgrade, "18.11.1");
        let why = "# upkeep: commented out: gitlab 19.0 removed bundled mattermost, and any mattermost[...] setting aborts its reconfigure";
        assert_eq!(
            p.new_text,
            format!("{why}\r\n# mattermost['enable'] = true\r\n{why}\r\n# mattermost['service_port'] = \"8065\"\r\ngitlab_rails['a'] = 1\r\n{why}\r\n# mattermost['x'] = 2 # c\r\n")
        );
        assert_eq!(p.changes.len(), 3);
    }

    #[test]
    fn removal_form_refuses_conditionals_and_merge() {
        for src in [
            "if x\n  mattermost['enable'] = true\nend\n",
            "mattermost['enable'] = true if x\n",
            "mattermost.merge!('enable' => true)\n",
        ] {
            let e = try_run(src, Action::DisableForUpgrade, "19.0.0").unwrap_err();
            assert_eq!(e.exit_code(), upkeep_sys::ExitCode::Failed, "{src}");
            assert!(e.to_string().contains("By hand:"), "{e}");
        }
    }

    #[test]
    fn which_host_upgrades_abort() {
        let v = |s| ProductVersion::parse(s).unwrap();
        let st = |src: &str| {
            let rb = RubyConfig::parse(Path::new("g"), src.to_string()).unwrap();
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
        let off = st("mattermost['enable'] = false\n");
        assert!(upgrade_aborts(&spec(), &off, &v("19.2.0")));
        assert!(!upgrade_aborts(&spec(), &off, &v("19.3.0")));
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
    fn settings_in_code_that_never_runs_are_not_active_for_ruby() {
        let ruby = crate::rb_eval::Ruby::plain().expect("ruby");
        let st = |src: &str| {
            let rb = RubyConfig::parse(Path::new("g"), src.to_string()).unwrap();
            let ev = ruby.evaluate(&[src]).unwrap().pop().unwrap();
            state_from_eval(&rb, &spec(), &ev, Path::new("g")).unwrap()
        };
        let never = st("if false\n  mattermost['enable'] = true\nend\n");
        assert!(
            !never.enabled && never.active_settings.is_empty(),
            "{never:?}"
        );
        assert_eq!(never.source, "ruby");
        let runs = st("if true\n  mattermost['enable'] = true\nend\n");
        assert!(runs.enabled);
        assert_eq!(runs.active_settings, ["2: mattermost['enable'] = true"]);
        let url = st("mattermost_external_url 'http://m'\nmattermost['enable'] = nil\n");
        assert!(
            url.enabled && url.reason == Why::Implied && url.line == Some(1),
            "{url:?}"
        );
    }

    #[test]
    fn enable_is_refused_after_removal() {
        assert!(try_run("", Action::Enable, "19.0.0").is_err());
    }
}
