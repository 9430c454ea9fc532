//! Reading gitlab.rb, Ruby that Omnibus evaluates, with a real Ruby parser
//! (`lib-ruby-parser`, Ruby 3.1 grammar).
//!
//! The parser gives the top-level statements with their byte ranges, the
//! comments, heredoc bodies and where code ends (`__END__`); on top of the
//! tree this module finds every place that sets something: `name['k'] = v`
//! (any quoting, `:symbol` keys, nested keys, `||=`), `name 'arg'` (URL
//! settings) and any other method called on a settings object
//! (`name.merge!(…)`), each with where it stands: a statement of its own, an
//! operand of a top-level `and`/`or` chain, or nested in a conditional, a
//! block or a method. What the file *means* is for Ruby to say
//! (`crate::rb_eval`); this module only says where things are, so that an
//! edit changes exactly the bytes it means to.

use lib_ruby_parser::nodes;
use lib_ruby_parser::traverse::visitor::{self, Visitor};
use lib_ruby_parser::{ErrorLevel, Node, Parser, ParserOptions};
use std::ops::Range;
use std::path::Path;
use upkeep_sys::error::{Error, Result};

/// One top-level statement.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The statement's own code, from its first byte to its last.
    pub span: Range<usize>,
    /// Heredocs it opens, in order.
    pub heredocs: Vec<HeredocSpan>,
    /// The operands of a top-level `and`/`or`/`&&`/`||` chain, flattened
    /// (empty when the statement is not a chain).
    pub operands: Vec<Range<usize>>,
    /// Whether the chain's operands can stand as statements of their own
    /// without changing what runs: every left side of an `and` is surely
    /// true, of an `or` surely false (literal values).
    pub splittable: bool,
}

/// A heredoc: its opener (`<<~EOS`) and its body, from the line after the
/// opener to the end of its terminator line (without the final newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeredocSpan {
    pub opener: Range<usize>,
    pub body: Range<usize>,
}

impl Statement {
    /// Bodies that follow the statement's last line.
    pub fn trailing_bodies(&self) -> impl Iterator<Item = &HeredocSpan> + '_ {
        self.heredocs
            .iter()
            .filter(|h| h.body.start >= self.span.end)
    }

    /// The statement's last byte, its trailing heredoc bodies included.
    pub fn extent_end(&self) -> usize {
        self.trailing_bodies()
            .map(|h| h.body.end)
            .fold(self.span.end, usize::max)
    }
}

/// Where a setting stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// It is a top-level statement of its own.
    Statement,
    /// It is an operand of a top-level `and`/`or` chain.
    Chain,
    /// Inside anything else: a conditional (modifiers too), a block, a
    /// method, a `begin`, an argument…
    Nested,
}

/// A literal value on the right of `=`, or any expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub span: Range<usize>,
    /// `true`, `false`, `nil`, a number, a plain one-line string or symbol:
    /// replacing it drops nothing.
    pub literal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `name[k1][k2]… = value`; a key is `None` when it is not a literal
    /// (interpolated, computed); `value` is `None` for `||=`-style and
    /// multiple assignment.
    Index {
        keys: Vec<Option<String>>,
        value: Option<Value>,
    },
    /// `name 'arg'` or `name('arg')`: Omnibus' URL settings.
    Call,
    /// Any other method called on the settings object or one of its
    /// entries (`name.merge!(…)`, `name['env'].update(…)`).
    Method(String),
}

#[derive(Debug, Clone)]
pub struct Found {
    pub name: String,
    pub kind: Kind,
    /// The whole assignment or call.
    pub span: Range<usize>,
    /// Index of the top-level statement it is in.
    pub top: usize,
    pub place: Place,
}

impl Found {
    /// Whether this may set key `key` of setting `name` (a computed key may).
    pub fn may_set(&self, name: &str, key: &str) -> bool {
        self.name == name
            && match &self.kind {
                Kind::Index { keys, .. } => keys
                    .first()
                    .is_some_and(|k| k.as_deref().is_none_or(|k| k == key)),
                Kind::Method(_) => true,
                Kind::Call => false,
            }
    }
}

#[derive(Debug)]
pub struct RubyConfig {
    pub text: String,
    pub statements: Vec<Statement>,
    /// Every setting, in file order.
    pub settings: Vec<Found>,
    /// Comments (line comments and `=begin` blocks).
    pub comments: Vec<Range<usize>>,
    /// Where the code ends: the start of the `__END__` line, else the end.
    pub code_end: usize,
    /// 3 when the file starts with a UTF-8 byte order mark, else 0.
    pub bom: usize,
}

fn range(l: &lib_ruby_parser::Loc) -> Range<usize> {
    l.begin..l.end
}

/// The name of a settings object: a bare method call with no arguments
/// (`mattermost`, `self.mattermost`).
fn settings_root(n: &Node) -> Option<&str> {
    match n {
        Node::Send(s)
            if s.args.is_empty()
                && s.begin_l.is_none()
                && matches!(s.recv.as_deref(), None | Some(Node::Self_(_)))
                && s.method_name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && !s.method_name.ends_with(['=', '?', '!']) =>
        {
            Some(&s.method_name)
        }
        _ => None,
    }
}

fn key_of(n: &Node) -> Option<String> {
    match n {
        Node::Str(s) => s.value.to_string().ok(),
        Node::Sym(s) => s.name.to_string().ok(),
        _ => None,
    }
}

/// `name[k]…[k]`: the name and the keys, outermost last.
fn index_chain(n: &Node) -> Option<(&str, Vec<Option<String>>)> {
    if let Some(name) = settings_root(n) {
        return Some((name, Vec::new()));
    }
    match n {
        Node::Index(i) => {
            let (name, mut keys) = index_chain(&i.recv)?;
            keys.push(if i.indexes.len() == 1 {
                key_of(&i.indexes[0])
            } else {
                None
            });
            Some((name, keys))
        }
        _ => None,
    }
}

fn is_literal(n: &Node, text: &str) -> bool {
    match n {
        Node::True(_) | Node::False(_) | Node::Nil(_) | Node::Int(_) | Node::Float(_) => true,
        Node::Str(s) => {
            let src = &text[range(&s.expression_l)];
            s.begin_l.is_some() && !src.starts_with("<<") && !src.contains('\n')
        }
        Node::Sym(s) => !text[range(&s.expression_l)].contains('\n'),
        _ => false,
    }
}

struct Finder<'a> {
    text: &'a str,
    /// The `||=`/`&&=`/`+=` around the index assignment being visited.
    op_asgn: Option<Range<usize>>,
    top: usize,
    found: Vec<(String, Kind, Range<usize>)>,
    heredocs: Vec<HeredocSpan>,
}

impl Finder<'_> {
    fn index_asgn(&mut self, a: &nodes::IndexAsgn, value: Option<&Node>, op: Option<Range<usize>>) {
        if let Some((name, mut keys)) = index_chain(&a.recv) {
            keys.push(if a.indexes.len() == 1 {
                key_of(&a.indexes[0])
            } else {
                None
            });
            let value = value.map(|v| Value {
                span: range(v.expression()),
                literal: is_literal(v, self.text),
            });
            // `name['k'] ||= v`: the whole operator assignment, value unknown.
            let (span, value) = match op {
                Some(whole) => (whole, None),
                None => (range(&a.expression_l), value),
            };
            self.found
                .push((name.to_string(), Kind::Index { keys, value }, span));
        }
    }

    fn heredoc(
        &mut self,
        opener: &lib_ruby_parser::Loc,
        body: &lib_ruby_parser::Loc,
        end: &lib_ruby_parser::Loc,
    ) {
        let last = end.end.max(body.end).saturating_sub(1).max(body.begin);
        self.heredocs.push(HeredocSpan {
            opener: range(opener),
            body: body.begin..line_end(self.text, last),
        });
    }
}

impl Visitor for Finder<'_> {
    fn on_index_asgn(&mut self, node: &nodes::IndexAsgn) {
        let op = self.op_asgn.take();
        self.index_asgn(node, node.value.as_deref(), op);
        visitor::visit_index_asgn(self, node);
    }

    fn on_or_asgn(&mut self, node: &nodes::OrAsgn) {
        if matches!(&*node.recv, Node::IndexAsgn(_)) {
            self.op_asgn = Some(range(&node.expression_l));
        }
        visitor::visit_or_asgn(self, node);
    }

    fn on_and_asgn(&mut self, node: &nodes::AndAsgn) {
        if matches!(&*node.recv, Node::IndexAsgn(_)) {
            self.op_asgn = Some(range(&node.expression_l));
        }
        visitor::visit_and_asgn(self, node);
    }

    fn on_op_asgn(&mut self, node: &nodes::OpAsgn) {
        if matches!(&*node.recv, Node::IndexAsgn(_)) {
            self.op_asgn = Some(range(&node.expression_l));
        }
        visitor::visit_op_asgn(self, node);
    }

    fn on_send(&mut self, node: &nodes::Send) {
        if node.recv.is_none() && !node.args.is_empty() && !node.method_name.ends_with('=') {
            // `name 'arg'`: a method-style setting.
            self.found.push((
                node.method_name.clone(),
                Kind::Call,
                range(&node.expression_l),
            ));
        } else if let Some(recv) = node.recv.as_deref() {
            if let Some((name, _)) = index_chain(recv) {
                self.found.push((
                    name.to_string(),
                    Kind::Method(node.method_name.clone()),
                    range(&node.expression_l),
                ));
            }
        }
        visitor::visit_send(self, node);
    }

    fn on_c_send(&mut self, node: &nodes::CSend) {
        if let Some((name, _)) = index_chain(&node.recv) {
            self.found.push((
                name.to_string(),
                Kind::Method(node.method_name.clone()),
                range(&node.expression_l),
            ));
        }
        visitor::visit_c_send(self, node);
    }

    fn on_heredoc(&mut self, node: &nodes::Heredoc) {
        self.heredoc(
            &node.expression_l,
            &node.heredoc_body_l,
            &node.heredoc_end_l,
        );
        visitor::visit_heredoc(self, node);
    }

    fn on_x_heredoc(&mut self, node: &nodes::XHeredoc) {
        self.heredoc(
            &node.expression_l,
            &node.heredoc_body_l,
            &node.heredoc_end_l,
        );
        visitor::visit_x_heredoc(self, node);
    }
}

/// Ruby's truth of an expression, when it is sure from the text: a literal,
/// or an assignment or setting call whose value is one.
fn surely_truthy(n: &Node, text: &str) -> Option<bool> {
    let lit = |v: &Node| -> Option<bool> {
        if !is_literal(v, text) {
            return None;
        }
        Some(!matches!(v, Node::False(_) | Node::Nil(_)))
    };
    match n {
        Node::IndexAsgn(a) => lit(a.value.as_deref()?),
        Node::Lvasgn(a) => lit(a.value.as_deref()?),
        Node::Send(s) if s.recv.is_none() && s.args.len() == 1 => lit(&s.args[0]),
        other => lit(other),
    }
}

fn splittable(n: &Node, text: &str) -> bool {
    match n {
        Node::And(a) => {
            surely_truthy(&a.lhs, text) == Some(true)
                && splittable(&a.lhs, text)
                && splittable(&a.rhs, text)
        }
        Node::Or(o) => {
            surely_truthy(&o.lhs, text) == Some(false)
                && splittable(&o.lhs, text)
                && splittable(&o.rhs, text)
        }
        _ => true,
    }
}

fn flatten_chain<'n>(n: &'n Node, out: &mut Vec<&'n Node>) {
    match n {
        Node::And(a) => {
            flatten_chain(&a.lhs, out);
            flatten_chain(&a.rhs, out);
        }
        Node::Or(o) => {
            flatten_chain(&o.lhs, out);
            flatten_chain(&o.rhs, out);
        }
        other => out.push(other),
    }
}

/// The end of the line `pos` is on, before its `\r\n` or `\n`.
pub fn line_end(text: &str, pos: usize) -> usize {
    let e = memchr::memchr(b'\n', &text.as_bytes()[pos.min(text.len())..])
        .map_or(text.len(), |i| pos + i);
    if e > pos && text.as_bytes()[e - 1] == b'\r' {
        e - 1
    } else {
        e
    }
}

/// The start of the line `pos` is on.
pub fn line_start(text: &str, pos: usize) -> usize {
    memchr::memrchr(b'\n', &text.as_bytes()[..pos]).map_or(0, |i| i + 1)
}

impl RubyConfig {
    /// Parses `text`; invalid Ruby is bad input (65) naming `path` and the
    /// line of the first error.
    pub fn parse(path: &Path, text: String) -> Result<Self> {
        let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
        let result = Parser::new(
            text.as_bytes().to_vec(),
            ParserOptions {
                buffer_name: path.display().to_string(),
                record_tokens: false,
                ..Default::default()
            },
        )
        .do_parse();
        let line_of = |pos: usize| {
            1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..pos.min(text.len())]).count()
        };
        if let Some(d) = result
            .diagnostics
            .iter()
            .find(|d| d.level == ErrorLevel::Error)
        {
            return Err(Error::bad_input(
                path,
                Some(line_of(d.loc.begin)),
                format!("not valid Ruby: {}", d.message.render()),
            ));
        }
        if result.input.bytes.len() != text.len() {
            return Err(Error::bad_input(
                path,
                None,
                "its magic encoding comment names an encoding other than UTF-8",
            ));
        }
        let tops: Vec<&Node> = match result.ast.as_deref() {
            None => Vec::new(),
            // The top level: a `begin` with no keyword is the statement list.
            Some(Node::Begin(b)) if b.begin_l.is_none() => b.statements.iter().collect(),
            Some(n) => vec![n],
        };
        let mut statements = Vec::new();
        let mut settings = Vec::new();
        for (i, node) in tops.iter().enumerate() {
            let span = range(node.expression());
            let mut f = Finder {
                text: &text,
                op_asgn: None,
                top: i,
                found: Vec::new(),
                heredocs: Vec::new(),
            };
            f.visit(node);
            let mut chain = Vec::new();
            if matches!(node, Node::And(_) | Node::Or(_)) {
                flatten_chain(node, &mut chain);
            }
            let operands: Vec<Range<usize>> = chain.iter().map(|n| range(n.expression())).collect();
            let top = f.top;
            for (name, kind, s) in f.found {
                let place = if s == span {
                    Place::Statement
                } else if operands.contains(&s) {
                    Place::Chain
                } else {
                    Place::Nested
                };
                settings.push(Found {
                    name,
                    kind,
                    span: s,
                    top,
                    place,
                });
            }
            let mut heredocs = f.heredocs;
            heredocs.sort_by_key(|h| h.body.start);
            statements.push(Statement {
                span,
                heredocs,
                operands,
                splittable: splittable(node, &text),
            });
        }
        settings.sort_by_key(|f| f.span.start);
        // A comment without its line's end.
        let comments: Vec<Range<usize>> = result
            .comments
            .iter()
            .map(|c| {
                let t = &text[c.location.begin..c.location.end];
                let t = t.strip_suffix('\n').unwrap_or(t);
                let t = t.strip_suffix('\r').unwrap_or(t);
                c.location.begin..c.location.begin + t.len()
            })
            .collect();
        // `__END__` alone on a line after all code, not in a comment.
        let code_last = statements
            .iter()
            .map(Statement::extent_end)
            .max()
            .unwrap_or(0);
        let mut code_end = text.len();
        let mut pos = line_start(&text, code_last.min(text.len()));
        while pos < text.len() {
            let e = line_end(&text, pos);
            if &text[pos..e] == "__END__"
                && pos >= code_last
                && !comments.iter().any(|c| c.contains(&pos))
            {
                code_end = pos;
                break;
            }
            pos = match memchr::memchr(b'\n', &text.as_bytes()[pos..]) {
                Some(i) => pos + i + 1,
                None => text.len(),
            };
        }
        Ok(RubyConfig {
            text,
            statements,
            settings,
            comments,
            code_end,
            bom,
        })
    }

    pub fn line_of(&self, pos: usize) -> usize {
        1 + memchr::memchr_iter(b'\n', &self.text.as_bytes()[..pos.min(self.text.len())]).count()
    }

    /// The first line of a setting's text, as `line: text`.
    pub fn describe(&self, span: &Range<usize>) -> String {
        let t = &self.text[span.clone()];
        let first = t.lines().next().unwrap_or_default().trim_end_matches('\r');
        let more = if t.contains('\n') { " …" } else { "" };
        format!("{}: {first}{more}", self.line_of(span.start))
    }

    /// Settings of object `name` (every kind), in file order.
    pub fn of<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Found> + 's {
        self.settings.iter().filter(move |f| f.name == name)
    }

    /// Whether `pos` is at top level: not inside any statement or heredoc
    /// body, and before `__END__`.
    pub fn at_top_level(&self, pos: usize) -> bool {
        pos <= self.code_end
            && !self.statements.iter().any(|s| {
                (s.span.start < pos && pos < s.span.end)
                    || s.trailing_bodies()
                        .any(|h| h.body.start <= pos && pos <= h.body.end)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> RubyConfig {
        RubyConfig::parse(Path::new("gitlab.rb"), s.to_string()).unwrap()
    }

    fn err(s: &str) -> String {
        RubyConfig::parse(Path::new("gitlab.rb"), s.to_string())
            .unwrap_err()
            .to_string()
    }

    fn enables(rb: &RubyConfig) -> Vec<(String, Place)> {
        rb.of("mattermost")
            .filter(|f| f.may_set("mattermost", "enable"))
            .map(|f| match &f.kind {
                Kind::Index { value: Some(v), .. } => {
                    (rb.text[v.span.clone()].to_string(), f.place)
                }
                _ => ("?".to_string(), f.place),
            })
            .collect()
    }

    fn vals(rb: &RubyConfig) -> Vec<String> {
        enables(rb).into_iter().map(|x| x.0).collect()
    }

    #[test]
    fn key_spellings_and_spacing() {
        let rb = parse("mattermost['enable'] = true\nmattermost[\"enable\"]=false\nmattermost[:enable]  =  nil # c\nmattermost[:\"enable\"] = 1\n");
        assert_eq!(vals(&rb), ["true", "false", "nil", "1"]);
        assert!(enables(&rb).iter().all(|e| e.1 == Place::Statement));
    }

    #[test]
    fn look_alikes_are_other_settings() {
        let rb = parse("mattermost_nginx['enable'] = true\ngitlab_rails['mattermost_host'] = 'x'\nmattermost_external_url 'http://m'\nmattermost['env'] = {}\n");
        assert!(enables(&rb).is_empty());
        assert_eq!(rb.of("mattermost_external_url").count(), 1);
        assert_eq!(rb.of("mattermost").count(), 1);
    }

    #[test]
    fn nothing_inside_strings_comments_or_heredocs_counts() {
        let src = r#"# mattermost['enable'] = true
=begin
mattermost['enable'] = true
=end
a = 'mattermost[\'enable\'] = true'
b = "x #{ "}" } mattermost['enable'] = true"
c = %q(mattermost['enable'] = (true))
d = %w[mattermost['enable'] = true]
e = <<~EOS
  mattermost['enable'] = true
  EOS
f = <<-'EOS' + <<EOT
mattermost['enable'] = true
  EOS
mattermost['enable'] = true
EOT
g = /mattermost\['enable'\] = true/
h = ?'
__END__
mattermost['enable'] = true
"#;
        let rb = parse(src);
        assert!(enables(&rb).is_empty(), "{:?}", rb.settings);
        assert_eq!(rb.statements.len(), 8);
        assert_eq!(
            &rb.text[rb.code_end..],
            "__END__\nmattermost['enable'] = true\n"
        );
        let e = &rb.statements[4];
        let body = e.trailing_bodies().next().unwrap().body.clone();
        assert_eq!(&rb.text[body], "  mattermost['enable'] = true\n  EOS");
        let f = &rb.statements[5];
        assert_eq!(f.trailing_bodies().count(), 2);
    }

    #[test]
    fn places_chains_conditionals_blocks() {
        let rb = parse("a = 1; mattermost['enable'] = true and gitlab_rails['x'] = 1\nmattermost['enable'] = false if $/\nif x then mattermost['enable'] = 1 end\n[1].each { mattermost[\"#{'en'}able\"] = 2 }\nmattermost.merge!('enable' => true)\n");
        let places: Vec<Place> = enables(&rb).into_iter().map(|e| e.1).collect();
        assert_eq!(
            places,
            [
                Place::Chain,
                Place::Nested,
                Place::Nested,
                Place::Nested,
                Place::Statement
            ]
        );
        assert!(matches!(&rb.settings.last().unwrap().kind, Kind::Method(m) if m == "merge!"));
        assert_eq!(rb.statements[1].operands.len(), 2);
    }

    #[test]
    fn operator_assignments_are_whole_statements() {
        let rb = parse("mattermost['enable'] ||= true\nx ||= mattermost['y'] = 1\nmattermost['env']['A'] += 2\n");
        let got: Vec<(String, Place)> = rb
            .of("mattermost")
            .map(|f| (rb.text[f.span.clone()].to_string(), f.place))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "mattermost['enable'] ||= true".to_string(),
                    Place::Statement
                ),
                ("mattermost['y'] = 1".to_string(), Place::Nested),
                ("mattermost['env']['A'] += 2".to_string(), Place::Statement),
            ]
        );
    }

    #[test]
    fn a_bom_is_skipped() {
        let rb = parse("\u{feff}mattermost['enable'] = true\n");
        assert_eq!(vals(&rb), ["true"]);
        assert_eq!(rb.bom, 3);
    }

    #[test]
    fn bad_input_names_the_line() {
        // Ruby too names the end of the file for an unterminated string.
        assert!(err("a = 1\nb = 'oops\nc = 2\n")
            .contains("gitlab.rb:4: not valid Ruby: unterminated string"));
        assert!(err("a = 1\nend\n").contains("gitlab.rb:2:"));
        assert!(err("a = {\n'b' => 1\n").contains("gitlab.rb:"));
        assert!(err("a = [1)\n").contains("gitlab.rb:1:"));
    }
}

#[cfg(test)]
mod no_panic {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        /// Any text (Ruby-ish fragments, glued at random) parses or is bad
        /// input: never a panic.
        #[test]
        fn any_text_parses_or_is_bad_input(parts in prop::collection::vec(prop_oneof![
            Just("mattermost"), Just("['enable']"), Just(" = "), Just("true"), Just("\n"), Just("\r\n"),
            Just("<<~E\n"), Just("E\n"), Just("if "), Just(" end"), Just("#{"), Just("}"), Just("\""),
            Just("'"), Just("?'"), Just("%q("), Just(")"), Just("=begin\n"), Just("=end\n"), Just("__END__\n"),
            Just("\u{feff}"), Just(";"), Just(" and "), Just("\\\n"), Just("$/"), Just("do |x|"), Just("{"),
            Just("["), Just("]"), Just(":"), Just("@"), Just("0x"), Just("1e"), Just("é"), Just("\t"),
            Just("# encoding: ascii-8bit\n"), Just("/"), Just("%w["), Just("`"), Just("<<-'X'\n"), Just("X\n"),
        ], 0..30)) {
            let text: String = parts.concat();
            let _ = RubyConfig::parse(Path::new("g.rb"), text);
        }
    }
}
