//! Reading and editing gitlab.rb: Ruby that Omnibus evaluates.
//!
//! The lexer knows enough Ruby never to be fooled by text that only looks
//! like a setting: line and `=begin`/`=end` comments, single- and
//! double-quoted strings with escapes and `#{}` interpolation, `%q`/`%Q`/
//! `%w`-style literals, heredocs (`<<EOS`, `<<-EOS`, `<<~EOS`, quoted ids),
//! regexes, brackets spanning lines, `;`-joined statements. On top of the
//! tokens it finds statements, and in them settings: `name['key'] = value`
//! (any quoting, `:symbol` keys, nested keys, any spacing) and method-style
//! settings such as `mattermost_external_url 'https://…'`.

use std::ops::Range;
use std::path::Path;
use upkeep_sys::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Const,
    Number,
    /// A string literal; `Some(value)` when it has no interpolation.
    Str(Option<String>),
    Sym(String),
    Open(u8),
    Close(u8),
    /// `=` on its own (not `==`, `=>`, `=~`, `<=`, `!=`).
    Assign,
    Comma,
    /// `\` at the end of a line.
    Continue,
    /// Any other operator; `true` if it expects an operand to follow
    /// (`+`, `&&`, `.`, `?`…), which continues a statement onto the next line.
    Op(bool),
    Semi,
    Newline,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    span: Range<usize>,
}

impl Token {
    /// Whether this token can end an expression (then `/`, `%`, `<<` that
    /// follow are operators, not literals).
    fn ends_value(&self) -> bool {
        matches!(
            self.tok,
            Tok::Ident(_) | Tok::Const | Tok::Number | Tok::Str(_) | Tok::Sym(_) | Tok::Close(_)
        )
    }
}

/// One statement and, if it sets something, what.
#[derive(Debug, Clone)]
pub struct Statement {
    /// From its first token to its last (comments after it excluded).
    pub span: Range<usize>,
    pub setting: Option<Setting>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// `name['k1']['k2'] = value`: `keys` in order, `value` the text after `=`.
    Index {
        name: String,
        keys: Vec<String>,
        value: Range<usize>,
    },
    /// `name 'arg'` or `name('arg')`: Omnibus' URL settings.
    Call { name: String, args: Range<usize> },
}

#[derive(Debug)]
pub struct GitlabRb {
    pub text: String,
    pub statements: Vec<Statement>,
    /// Spans of comments (line comments and `=begin` blocks).
    pub comments: Vec<Range<usize>>,
    /// Heredoc bodies, from the line after the opener to the terminator.
    pub heredoc_bodies: Vec<Range<usize>>,
}

type Lexed = (Vec<Token>, Vec<Range<usize>>, Vec<Range<usize>>);

struct Lexer<'a> {
    src: &'a [u8],
    path: &'a Path,
    pos: usize,
    toks: Vec<Token>,
    comments: Vec<Range<usize>>,
    /// Heredocs opened on the current line, read at its end.
    pending: Vec<Heredoc>,
    /// Byte ranges of heredoc bodies, terminator lines included.
    bodies: Vec<Range<usize>>,
}

#[derive(Debug, Clone)]
struct Heredoc {
    id: String,
    /// `<<-` or `<<~`: the terminator may be indented.
    indented_end: bool,
    opened_at: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

fn closing(open: u8) -> u8 {
    match open {
        b'(' => b')',
        b'[' => b']',
        b'{' => b'}',
        b'<' => b'>',
        other => other,
    }
}

impl<'a> Lexer<'a> {
    fn line_of(&self, pos: usize) -> usize {
        1 + self.src[..pos.min(self.src.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    fn err(&self, at: usize, msg: impl Into<String>) -> Error {
        Error::bad_input(self.path, Some(self.line_of(at)), msg)
    }

    fn peek(&self, off: usize) -> Option<u8> {
        self.src.get(self.pos + off).copied()
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.toks.push(Token {
            tok,
            span: start..self.pos,
        });
    }

    fn prev_ends_value(&self) -> bool {
        self.toks.last().is_some_and(Token::ends_value)
    }

    fn space_before(&self, pos: usize) -> bool {
        pos > 0 && matches!(self.src[pos - 1], b' ' | b'\t')
    }

    /// Whether a `/`, `%` or `<<` at `pos` starts a literal rather than
    /// being an operator: after a value only when it looks like a
    /// command argument (`foo <<EOS`, `puts %w(a)`: space before, none after).
    fn literal_here(&self, pos: usize, after: usize) -> bool {
        if !self.prev_ends_value() {
            return true;
        }
        let prev_is_ident = matches!(self.toks.last().map(|t| &t.tok), Some(Tok::Ident(_)));
        prev_is_ident
            && self.space_before(pos)
            && self
                .src
                .get(after)
                .is_some_and(|b| !b.is_ascii_whitespace())
    }

    /// Tokens, comment spans, heredoc body spans.
    fn run(mut self) -> Result<Lexed> {
        self.lex_code(None)?;
        if let Some(h) = self.pending.first() {
            return Err(self.err(
                h.opened_at,
                format!("heredoc <<{} is never terminated", h.id),
            ));
        }
        Ok((self.toks, self.comments, self.bodies))
    }

    /// Lexes code until EOF or, inside `#{…}`, the matching `}`.
    fn lex_code(&mut self, interp_start: Option<usize>) -> Result<()> {
        let mut braces = 0usize;
        while let Some(b) = self.peek(0) {
            let start = self.pos;
            match b {
                b'\n' => {
                    self.pos += 1;
                    self.push(Tok::Newline, start);
                    self.read_heredoc_bodies()?;
                    if self.src[self.pos..].starts_with(b"=begin")
                        && self
                            .src
                            .get(self.pos + 6)
                            .is_none_or(|c| c.is_ascii_whitespace())
                    {
                        self.block_comment()?;
                    }
                    if self.src[self.pos..].starts_with(b"__END__")
                        && matches!(self.src.get(self.pos + 7), None | Some(b'\n') | Some(b'\r'))
                        && interp_start.is_none()
                    {
                        return Ok(()); // the rest is data, not code
                    }
                }
                b' ' | b'\t' | b'\r' | b'\x0c' => self.pos += 1,
                b'\\'
                    if matches!(self.peek(1), Some(b'\n'))
                        || (self.peek(1) == Some(b'\r') && self.peek(2) == Some(b'\n')) =>
                {
                    self.pos += 1;
                    self.push(Tok::Continue, start);
                    // The newline is consumed as part of the continuation.
                    if self.peek(0) == Some(b'\r') {
                        self.pos += 1;
                    }
                    self.pos += 1;
                    self.read_heredoc_bodies()?;
                }
                b'#' => {
                    while self.peek(0).is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
                    self.comments.push(start..self.pos);
                }
                b'=' if start == 0 && self.src[start..].starts_with(b"=begin") => {
                    self.block_comment()?
                }
                b'\'' | b'"' | b'`' => {
                    self.pos += 1;
                    let value = self.string_body(b, b, b != b'\'', start)?;
                    self.push(Tok::Str(value), start);
                }
                b':' if self.peek(1) == Some(b':') => {
                    self.pos += 2;
                    self.push(Tok::Op(true), start);
                }
                b':' if matches!(self.peek(1), Some(b'"') | Some(b'\'')) => {
                    let q = self.src[self.pos + 1];
                    self.pos += 2;
                    let value = self.string_body(q, q, q == b'"', start)?;
                    self.push(Tok::Sym(value.unwrap_or_default()), start);
                }
                b':' if self.peek(1).is_some_and(is_ident_start) => {
                    self.pos += 1;
                    while self.peek(0).is_some_and(is_ident) {
                        self.pos += 1;
                    }
                    if matches!(self.peek(0), Some(b'?') | Some(b'!') | Some(b'='))
                        && self.peek(1) != Some(b'=')
                        && self.peek(1) != Some(b'>')
                    {
                        self.pos += 1;
                    }
                    let name = String::from_utf8_lossy(&self.src[start + 1..self.pos]).into_owned();
                    self.push(Tok::Sym(name), start);
                }
                b'%' if self.percent_literal_start().is_some()
                    && self.literal_here(start, start + 1) =>
                {
                    self.percent_literal(start)?;
                }
                b'/' if self.literal_here(start, start + 1) => {
                    self.pos += 1;
                    self.string_body(b'/', b'/', true, start)?;
                    while self.peek(0).is_some_and(|c| c.is_ascii_alphabetic()) {
                        self.pos += 1; // flags
                    }
                    self.push(Tok::Str(None), start);
                }
                b'<' if self.peek(1) == Some(b'<')
                    && self.heredoc_start().is_some()
                    && self.literal_here(start, start + 2) =>
                {
                    let (h, end) = self.heredoc_start().unwrap_or_else(|| unreachable!());
                    self.pos = end;
                    self.pending.push(Heredoc {
                        opened_at: start,
                        ..h
                    });
                    self.push(Tok::Str(None), start);
                }
                b'?' if self.peek(1).is_some_and(|c| c.is_ascii_alphanumeric())
                    && !self.peek(2).is_some_and(is_ident)
                    && !self.prev_ends_value() =>
                {
                    self.pos += 2; // ?a character literal
                    self.push(Tok::Str(None), start);
                }
                b'(' | b'[' | b'{' => {
                    if b == b'{' {
                        braces += 1;
                    }
                    self.pos += 1;
                    self.push(Tok::Open(b), start);
                }
                b'}' if interp_start.is_some() && braces == 0 => {
                    self.pos += 1;
                    return Ok(());
                }
                b')' | b']' | b'}' => {
                    if b == b'}' {
                        braces = braces.saturating_sub(1);
                    }
                    self.pos += 1;
                    self.push(Tok::Close(b), start);
                }
                b',' => {
                    self.pos += 1;
                    self.push(Tok::Comma, start);
                }
                b';' => {
                    self.pos += 1;
                    self.push(Tok::Semi, start);
                }
                b'=' => {
                    let next = self.peek(1);
                    if matches!(next, Some(b'=') | Some(b'~') | Some(b'>')) {
                        self.pos += 2;
                        if self.peek(0) == Some(b'=') {
                            self.pos += 1;
                        }
                        self.push(Tok::Op(true), start);
                    } else {
                        self.pos += 1;
                        self.push(Tok::Assign, start);
                    }
                }
                b'0'..=b'9' => {
                    while self.peek(0).is_some_and(|c| {
                        c.is_ascii_alphanumeric()
                            || c == b'_'
                            || (c == b'.' && self.peek(1).is_some_and(|d| d.is_ascii_digit()))
                    }) {
                        self.pos += 1;
                    }
                    self.push(Tok::Number, start);
                }
                c if is_ident_start(c) => {
                    while self.peek(0).is_some_and(is_ident) {
                        self.pos += 1;
                    }
                    if matches!(self.peek(0), Some(b'?') | Some(b'!')) && self.peek(1) != Some(b'=')
                    {
                        self.pos += 1;
                    }
                    let word = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
                    if c.is_ascii_uppercase() {
                        self.push(Tok::Const, start);
                    } else {
                        self.push(Tok::Ident(word), start);
                    }
                }
                _ => {
                    // Operators: runs of punctuation. Those that need a
                    // right-hand side continue the statement on the next line.
                    self.pos += 1;
                    while self.peek(0).is_some_and(|c| b"+-*&|<>!^~.?".contains(&c)) {
                        self.pos += 1;
                    }
                    let text = &self.src[start..self.pos];
                    let expects_operand = !matches!(text, b"!" | b"~");
                    self.push(Tok::Op(expects_operand || text.len() > 1), start);
                }
            }
        }
        if let Some(s) = interp_start {
            return Err(self.err(s, "unterminated #{ interpolation"));
        }
        Ok(())
    }

    fn block_comment(&mut self) -> Result<()> {
        let start = self.pos;
        loop {
            let Some(nl) = memchr::memchr(b'\n', &self.src[self.pos..]) else {
                return Err(self.err(start, "=begin without =end"));
            };
            self.pos += nl + 1;
            if self.src[self.pos..].starts_with(b"=end")
                && self
                    .src
                    .get(self.pos + 4)
                    .is_none_or(|c| c.is_ascii_whitespace())
            {
                while self.peek(0).is_some_and(|c| c != b'\n') {
                    self.pos += 1;
                }
                self.comments.push(start..self.pos);
                return Ok(());
            }
        }
    }

    /// Reads a string body after its opening delimiter up to `close`
    /// (nesting `open`…`close` pairs), handling escapes and, when
    /// `interpolates`, `#{…}`. Returns the value when it is static.
    fn string_body(
        &mut self,
        open: u8,
        close: u8,
        interpolates: bool,
        start: usize,
    ) -> Result<Option<String>> {
        let mut value = Vec::new();
        let mut static_value = true;
        let mut depth = 0usize;
        loop {
            let Some(b) = self.peek(0) else {
                return Err(self.err(start, "unterminated string"));
            };
            self.pos += 1;
            match b {
                b'\\' => {
                    let Some(e) = self.peek(0) else {
                        return Err(self.err(start, "unterminated string"));
                    };
                    self.pos += 1;
                    if interpolates {
                        match e {
                            b'n' => value.push(b'\n'),
                            b't' => value.push(b'\t'),
                            b'\\' | b'"' | b'\'' | b'#' => value.push(e),
                            _ if e == close || e == open => value.push(e),
                            _ => {
                                static_value = false; // other escapes: not needed as values
                                value.push(e);
                            }
                        }
                    } else if e == close || e == open || e == b'\\' {
                        value.push(e);
                    } else {
                        value.extend_from_slice(&[b'\\', e]);
                    }
                }
                b'#' if interpolates && self.peek(0) == Some(b'{') => {
                    self.pos += 1;
                    static_value = false;
                    let saved = std::mem::take(&mut self.pending);
                    self.lex_code(Some(self.pos - 2))?;
                    self.pending = saved;
                }
                _ if b == close && depth == 0 => break,
                _ if b == close => {
                    depth -= 1;
                    value.push(b);
                }
                _ if b == open && open != close => {
                    depth += 1;
                    value.push(b);
                }
                _ => value.push(b),
            }
        }
        Ok(static_value.then(|| String::from_utf8_lossy(&value).into_owned()))
    }

    /// `%q(`, `%w[`, `%(`…: the kind letter (0 for none) and delimiter.
    fn percent_literal_start(&self) -> Option<(u8, u8)> {
        let a = self.peek(1)?;
        if b"qQwWiIrsx".contains(&a) {
            let d = self.peek(2)?;
            (!d.is_ascii_alphanumeric() && !d.is_ascii_whitespace()).then_some((a, d))
        } else if b"([{<|!/^".contains(&a) {
            Some((0, a))
        } else {
            None
        }
    }

    fn percent_literal(&mut self, start: usize) -> Result<()> {
        let (kind, delim) = self.percent_literal_start().unwrap_or((0, b'('));
        self.pos += if kind == 0 { 2 } else { 3 };
        let interpolates = matches!(kind, 0 | b'Q' | b'W' | b'I' | b'r' | b'x');
        let value = self.string_body(delim, closing(delim), interpolates, start)?;
        let tok = match kind {
            b'q' | b'Q' | 0 => Tok::Str(value),
            b's' => Tok::Sym(value.unwrap_or_default()),
            _ => Tok::Str(None), // arrays, regexes, commands
        };
        self.push(tok, start);
        Ok(())
    }

    /// `<<ID`, `<<-ID`, `<<~ID`, with `'ID'`, `"ID"` or `` `ID` ``.
    fn heredoc_start(&self) -> Option<(Heredoc, usize)> {
        let mut p = self.pos + 2;
        let mut indented_end = false;
        if matches!(self.src.get(p), Some(b'-') | Some(b'~')) {
            indented_end = true;
            p += 1;
        }
        let (id, end) = match self.src.get(p)? {
            q @ (b'\'' | b'"' | b'`') => {
                let close = memchr::memchr(*q, &self.src[p + 1..])?;
                let id = &self.src[p + 1..p + 1 + close];
                if id.contains(&b'\n') {
                    return None;
                }
                (id, p + close + 2)
            }
            c if is_ident_start(*c) => {
                let mut e = p;
                while self.src.get(e).is_some_and(|&c| is_ident(c)) {
                    e += 1;
                }
                (&self.src[p..e], e)
            }
            _ => return None,
        };
        Some((
            Heredoc {
                id: String::from_utf8_lossy(id).into_owned(),
                indented_end,
                opened_at: self.pos,
            },
            end,
        ))
    }

    /// At the start of a line: the bodies of heredocs opened on the line
    /// before, in order. They are string content, never code.
    fn read_heredoc_bodies(&mut self) -> Result<()> {
        for h in std::mem::take(&mut self.pending) {
            let start = self.pos;
            loop {
                if self.pos >= self.src.len() {
                    return Err(self.err(
                        h.opened_at,
                        format!("heredoc <<{} is never terminated", h.id),
                    ));
                }
                let end = memchr::memchr(b'\n', &self.src[self.pos..])
                    .map_or(self.src.len(), |n| self.pos + n);
                let line = &self.src[self.pos..end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let line = if h.indented_end {
                    line.trim_ascii_start()
                } else {
                    line
                };
                self.pos = (end + 1).min(self.src.len());
                if line == h.id.as_bytes() {
                    self.bodies.push(start..end);
                    break;
                }
            }
        }
        Ok(())
    }
}

impl GitlabRb {
    /// Lexes and splits `text`; unterminated strings, heredocs, comments or
    /// brackets are bad input naming `path` and the line they start on.
    pub fn parse(path: &Path, text: String) -> Result<Self> {
        let lexer = Lexer {
            src: text.as_bytes(),
            path,
            pos: 0,
            toks: Vec::new(),
            comments: Vec::new(),
            pending: Vec::new(),
            bodies: Vec::new(),
        };
        let (toks, comments, heredoc_bodies) = lexer.run()?;
        let statements = split_statements(path, &text, &toks)?;
        Ok(GitlabRb {
            text,
            statements,
            comments,
            heredoc_bodies,
        })
    }

    pub fn line_of(&self, pos: usize) -> usize {
        1 + self.text.as_bytes()[..pos]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    /// Active `name[...] = …` assignments whose first key is `key` (or any
    /// key when `key` is `None`), in file order.
    pub fn assignments<'s>(
        &'s self,
        name: &'s str,
        key: Option<&'s str>,
    ) -> impl Iterator<Item = &'s Statement> + 's {
        self.statements.iter().filter(move |s| match &s.setting {
            Some(Setting::Index { name: n, keys, .. }) => {
                n == name && key.is_none_or(|k| keys.first().is_some_and(|f| f == k))
            }
            _ => false,
        })
    }

    /// Active `name 'arg'` calls.
    pub fn calls<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Statement> + 's {
        self.statements
            .iter()
            .filter(move |s| matches!(&s.setting, Some(Setting::Call { name: n, .. }) if n == name))
    }

    /// The literal value of a setting's right-hand side, trimmed.
    pub fn value_text(&self, s: &Statement) -> Option<&str> {
        match &s.setting {
            Some(Setting::Index { value, .. }) => Some(self.text[value.clone()].trim()),
            Some(Setting::Call { args, .. }) => Some(self.text[args.clone()].trim()),
            None => None,
        }
    }
}

fn continues(t: &Tok) -> bool {
    matches!(t, Tok::Assign | Tok::Comma | Tok::Continue | Tok::Op(true))
}

fn split_statements(path: &Path, text: &str, toks: &[Token]) -> Result<Vec<Statement>> {
    let mut out = Vec::new();
    let mut cur: Vec<&Token> = Vec::new();
    let mut depth: Vec<(u8, usize)> = Vec::new();
    let line_of = |pos: usize| {
        1 + text.as_bytes()[..pos]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    };
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        match &t.tok {
            Tok::Open(b) => depth.push((*b, t.span.start)),
            Tok::Close(b) => match depth.pop() {
                Some((o, _)) if closing(o) == *b => {}
                Some((o, at)) => {
                    return Err(Error::bad_input(
                        path,
                        Some(line_of(t.span.start)),
                        format!(
                            "'{}' closes the '{}' opened on line {}",
                            *b as char,
                            o as char,
                            line_of(at)
                        ),
                    ))
                }
                None => {
                    return Err(Error::bad_input(
                        path,
                        Some(line_of(t.span.start)),
                        format!("unmatched '{}'", *b as char),
                    ))
                }
            },
            _ => {}
        }
        let ends = match t.tok {
            Tok::Semi => depth.is_empty(),
            Tok::Newline => {
                depth.is_empty()
                    && !cur.last().is_some_and(|l| continues(&l.tok))
                    // A line starting with `.method` continues a chain.
                    && !matches!(toks.get(i + 1), Some(Token { tok: Tok::Op(_), span }) if text.as_bytes()[span.start] == b'.' && text.as_bytes().get(span.start + 1) != Some(&b'.'))
            }
            _ => false,
        };
        if ends {
            if !cur.is_empty() {
                out.push(make_statement(&cur));
            }
            cur.clear();
        } else if !matches!(t.tok, Tok::Newline | Tok::Continue) {
            cur.push(t);
        }
        i += 1;
    }
    if let Some((o, at)) = depth.pop() {
        return Err(Error::bad_input(
            path,
            Some(line_of(at)),
            format!("'{}' is never closed", o as char),
        ));
    }
    if !cur.is_empty() {
        out.push(make_statement(&cur));
    }
    Ok(out)
}

fn make_statement(toks: &[&Token]) -> Statement {
    let span = toks[0].span.start..toks[toks.len() - 1].span.end;
    Statement {
        setting: recognise(toks),
        span,
    }
}

fn key_of(t: &Token) -> Option<String> {
    match &t.tok {
        Tok::Str(Some(v)) | Tok::Sym(v) => Some(v.clone()),
        _ => None,
    }
}

/// `name[k]...[k] = value` or `name arg` / `name(arg)`.
fn recognise(toks: &[&Token]) -> Option<Setting> {
    let Tok::Ident(name) = &toks.first()?.tok else {
        return None;
    };
    let mut keys = Vec::new();
    let mut i = 1;
    while let (Some(open), Some(key), Some(close)) = (toks.get(i), toks.get(i + 1), toks.get(i + 2))
    {
        // `name [k]` with a space is a call with an array argument.
        if open.tok != Tok::Open(b'[')
            || close.tok != Tok::Close(b']')
            || (i == 1 && open.span.start != toks[0].span.end)
        {
            break;
        }
        keys.push(key_of(key)?);
        i += 3;
    }
    if !keys.is_empty() {
        let assign = toks.get(i)?;
        if assign.tok != Tok::Assign || i + 1 >= toks.len() {
            return None;
        }
        let value = toks[i + 1].span.start..toks[toks.len() - 1].span.end;
        return Some(Setting::Index {
            name: name.clone(),
            keys,
            value,
        });
    }
    // A method-style setting: an argument follows the name.
    let next = toks.get(1)?;
    let args_ok = match next.tok {
        Tok::Str(_) | Tok::Ident(_) | Tok::Const | Tok::Sym(_) | Tok::Number => true,
        Tok::Open(b'(') => next.span.start == toks[0].span.end,
        _ => false,
    };
    args_ok.then(|| Setting::Call {
        name: name.clone(),
        args: next.span.start..toks[toks.len() - 1].span.end,
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build their roots by path
mod tests {
    use super::*;

    fn parse(s: &str) -> GitlabRb {
        GitlabRb::parse(Path::new("gitlab.rb"), s.to_string()).unwrap()
    }

    fn err(s: &str) -> String {
        GitlabRb::parse(Path::new("gitlab.rb"), s.to_string())
            .unwrap_err()
            .to_string()
    }

    fn enables(rb: &GitlabRb) -> Vec<String> {
        rb.assignments("mattermost", Some("enable"))
            .map(|s| rb.value_text(s).unwrap().to_string())
            .collect()
    }

    #[test]
    fn key_spellings_and_spacing() {
        let rb = parse("mattermost['enable'] = true\nmattermost[\"enable\"]=false\nmattermost[:enable]  =  nil # c\nmattermost[:\"enable\"] = 1\n");
        assert_eq!(enables(&rb), ["true", "false", "nil", "1"]);
    }

    #[test]
    fn look_alikes_are_other_settings() {
        let rb = parse("mattermost_nginx['enable'] = true\ngitlab_rails['mattermost_host'] = 'x'\nmattermost_external_url 'http://m'\nmattermost['env'] = {}\n");
        assert!(enables(&rb).is_empty());
        assert_eq!(rb.calls("mattermost_external_url").count(), 1);
        assert_eq!(rb.assignments("mattermost", None).count(), 1);
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
"#;
        let rb = parse(src);
        assert!(enables(&rb).is_empty(), "{:?}", rb.statements);
        assert_eq!(rb.statements.len(), 7);
    }

    #[test]
    fn semicolons_multiline_hashes_and_continuations() {
        let rb = parse("a = 1; mattermost['enable'] = true; b = 2\nmattermost['env'] = {\n  'A' => \"x;y\",\n  'B' => 2\n}\nx = 1 +\n  2\nmattermost['enable'] = \\\n  false\n");
        assert_eq!(enables(&rb), ["true", "false"]);
        let env = rb.assignments("mattermost", Some("env")).next().unwrap();
        assert!(rb.text[env.span.clone()].ends_with('}'));
        assert_eq!(rb.statements.len(), 6);
    }

    #[test]
    fn nested_keys_and_calls() {
        let rb = parse("mattermost['env']['X'] = 'y'\nexternal_url('https://a')\nroles ['x']\n");
        let Some(Setting::Index { keys, .. }) = &rb.statements[0].setting else {
            panic!()
        };
        assert_eq!(keys, &["env", "X"]);
        assert_eq!(rb.calls("external_url").count(), 1);
    }

    #[test]
    fn operators_are_not_literals() {
        let rb = parse("x = a / 2\ny = b % 3\nz = c << 4\nmattermost['enable'] = true\n");
        assert_eq!(enables(&rb), ["true"]);
    }

    #[test]
    fn crlf_and_no_final_newline() {
        let rb = parse("a = 1\r\nmattermost['enable'] = true\r\nb = <<~E\r\n  x\r\n  E\r\nmattermost['enable'] = false");
        assert_eq!(enables(&rb), ["true", "false"]);
    }

    #[test]
    fn bad_input_names_the_line() {
        assert!(err("a = 1\nb = 'oops\nc = 2\n").contains("gitlab.rb:2: unterminated string"));
        assert!(err("a = 1\nb = <<~EOS\n  text\n").contains("gitlab.rb:2: heredoc <<EOS"));
        assert!(err("=begin\nx\n").contains("gitlab.rb:1: =begin"));
        assert!(err("a = {\n'b' => 1\n").contains("gitlab.rb:1: '{' is never closed"));
        assert!(err("a = [1)\n").contains("gitlab.rb:1:"));
        assert!(err("b = \"#{ x \n").contains("gitlab.rb:1:"));
    }
}
