//! config.json edited as JSON: a value is replaced (or a key added) by
//! splicing its bytes, so key order, indentation and every unrelated byte
//! stay as they were. The text is first checked with serde_json, so a
//! malformed file is refused with its line and column before anything else.

use serde_json::Value;

/// A malformed document: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    pub line: usize,
    pub column: usize,
    pub msg: String,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} column {}: {}", self.line, self.column, self.msg)
    }
}

/// Parses the whole document; the error names line and column.
pub fn parse(text: &str) -> Result<Value, JsonError> {
    serde_json::from_str(text).map_err(|e| JsonError {
        line: e.line(),
        column: e.column(),
        msg: e.to_string(),
    })
}

/// The value at a dotted key (`ServiceSettings.SiteURL`).
pub fn get<'a>(doc: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(doc, |v, k| v.get(k))
}

/// The string at a dotted key, if it is one.
pub fn get_str<'a>(doc: &'a Value, dotted: &str) -> Option<&'a str> {
    get(doc, dotted).and_then(Value::as_str)
}

/// One `--set Section.Key=JSON`.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub key: Vec<String>,
    pub value: Value,
}

/// Parses `Section.Key=JSON`; the message says what is wrong.
pub fn parse_setting(s: &str) -> Result<Setting, String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("--set {s}: expected Section.Key=JSON"))?;
    let key: Vec<String> = k.split('.').map(str::to_string).collect();
    if key.iter().any(String::is_empty) {
        return Err(format!("--set {s}: empty key part in '{k}'"));
    }
    let value: Value = serde_json::from_str(v).map_err(|e| {
        format!("--set {s}: the value is not JSON ({e}); a string needs quotes: {k}='\"...\"'")
    })?;
    Ok(Setting { key, value })
}

/// Where a member sits in the text.
struct Member {
    key: String,
    key_start: usize,
    value_start: usize,
    value_end: usize,
}

struct Obj {
    open: usize,
    close: usize,
    members: Vec<Member>,
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn string(&mut self) -> Option<String> {
        let start = self.i;
        self.i += 1;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    let raw = std::str::from_utf8(&self.b[start..self.i]).ok()?;
                    return serde_json::from_str(raw).ok();
                }
                _ => self.i += 1,
            }
        }
        None
    }

    /// Skips one value; returns the object layout if it was an object.
    fn value(&mut self) -> Option<Option<Obj>> {
        self.ws();
        match *self.b.get(self.i)? {
            b'{' => self.object().map(Some),
            b'[' => {
                self.i += 1;
                loop {
                    self.ws();
                    if *self.b.get(self.i)? == b']' {
                        self.i += 1;
                        return Some(None);
                    }
                    self.value()?;
                    self.ws();
                    if *self.b.get(self.i)? == b',' {
                        self.i += 1;
                    }
                }
            }
            b'"' => self.string().map(|_| None),
            _ => {
                while self.i < self.b.len()
                    && !matches!(
                        self.b[self.i],
                        b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    self.i += 1;
                }
                Some(None)
            }
        }
    }

    fn object(&mut self) -> Option<Obj> {
        let open = self.i;
        self.i += 1;
        let mut members = Vec::new();
        loop {
            self.ws();
            match *self.b.get(self.i)? {
                b'}' => {
                    self.i += 1;
                    return Some(Obj {
                        open,
                        close: self.i - 1,
                        members,
                    });
                }
                b',' => self.i += 1,
                b'"' => {
                    let key_start = self.i;
                    let key = self.string()?;
                    self.ws();
                    if *self.b.get(self.i)? != b':' {
                        return None;
                    }
                    self.i += 1;
                    self.ws();
                    let value_start = self.i;
                    self.value()?;
                    members.push(Member {
                        key,
                        key_start,
                        value_start,
                        value_end: self.i,
                    });
                }
                _ => return None,
            }
        }
    }
}

fn object_at(text: &str, at: usize) -> Option<Obj> {
    let mut s = Scanner {
        b: text.as_bytes(),
        i: at,
    };
    s.ws();
    if s.b.get(s.i) != Some(&b'{') {
        return None;
    }
    s.object()
}

/// The whitespace before `pos` on its line.
fn indent_before(text: &str, pos: usize) -> &str {
    let line_start = text[..pos].rfind('\n').map_or(0, |n| n + 1);
    let lead = &text[line_start..pos];
    if lead.trim().is_empty() {
        lead
    } else {
        ""
    }
}

/// Sets `setting` in `text`, returning the new text. Only the bytes of the
/// one value change (or one member is added after the last one, written
/// the way its neighbours are). `text` must already parse (`parse`).
pub fn set(text: &str, setting: &Setting) -> Result<String, String> {
    let mut at = 0usize;
    let mut obj = object_at(text, at).ok_or("the document is not a JSON object")?;
    for (depth, part) in setting.key.iter().enumerate() {
        let last = depth + 1 == setting.key.len();
        let found = obj.members.iter().rev().find(|m| &m.key == part);
        match found {
            Some(m) if last => {
                if !setting.value.is_object() && object_at(text, m.value_start).is_some() {
                    return Err(format!(
                        "{} is a section (a JSON object): replacing it with {} would drop every setting in it; set its keys one by one ({}.KEY=JSON)",
                        setting.key.join("."),
                        setting.value,
                        setting.key.join(".")
                    ));
                }
                let value = serde_json::to_string(&setting.value).map_err(|e| e.to_string())?;
                let mut out = String::with_capacity(text.len() + value.len());
                out.push_str(&text[..m.value_start]);
                out.push_str(&value);
                out.push_str(&text[m.value_end..]);
                return Ok(out);
            }
            Some(m) => {
                at = m.value_start;
                obj = object_at(text, at).ok_or_else(|| {
                    format!("{} is not an object", setting.key[..=depth].join("."))
                })?;
            }
            None => {
                // Build the missing rest as nested objects around the value.
                let mut value = setting.value.clone();
                for k in setting.key[depth + 1..].iter().rev() {
                    let mut m = serde_json::Map::new();
                    m.insert(k.clone(), value);
                    value = Value::Object(m);
                }
                let value = serde_json::to_string(&value).map_err(|e| e.to_string())?;
                let key = serde_json::to_string(part).map_err(|e| e.to_string())?;
                let mut out = String::with_capacity(text.len() + value.len() + 32);
                match obj.members.last() {
                    Some(prev) => {
                        let sep = &text[prev.key_start..prev.value_start];
                        let sep = &sep[sep.rfind('"').map_or(0, |n| n + 1)..];
                        let indent = indent_before(text, prev.key_start);
                        let lead = if indent.is_empty() {
                            " ".to_string()
                        } else {
                            format!("\n{indent}")
                        };
                        out.push_str(&text[..prev.value_end]);
                        out.push_str(&format!(",{lead}{key}{sep}{value}"));
                        out.push_str(&text[prev.value_end..]);
                    }
                    None => {
                        out.push_str(&text[..=obj.open]);
                        out.push_str(&format!("{key}: {value}"));
                        out.push_str(&text[obj.close..]);
                    }
                }
                return Ok(out);
            }
        }
    }
    Err("empty key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "{\n    \"ServiceSettings\": {\n        \"SiteURL\": \"\",\n        \"ListenAddress\": \":8065\"\n    },\n    \"Zed\":   [1, {\"a\": 2}],\n    \"SqlSettings\": {}\n}\n";

    fn setting(s: &str) -> Setting {
        parse_setting(s).unwrap()
    }

    #[test]
    fn replaces_only_the_value_bytes() {
        let out = set(
            DOC,
            &setting("ServiceSettings.SiteURL=\"https://chat.example.com\""),
        )
        .unwrap();
        assert_eq!(
            out,
            DOC.replace(
                "\"SiteURL\": \"\"",
                "\"SiteURL\": \"https://chat.example.com\""
            )
        );
        let v = parse(&out).unwrap();
        assert_eq!(
            get_str(&v, "ServiceSettings.SiteURL"),
            Some("https://chat.example.com")
        );
    }

    #[test]
    fn adds_missing_keys_like_their_neighbours() {
        let out = set(DOC, &setting("ServiceSettings.EnableX=true")).unwrap();
        assert!(
            out.contains("\"ListenAddress\": \":8065\",\n        \"EnableX\": true\n    }"),
            "{out}"
        );
        let out = set(DOC, &setting("New.Deep.Key=3")).unwrap();
        assert!(
            out.contains("\"SqlSettings\": {},\n    \"New\": {\"Deep\":{\"Key\":3}}\n}"),
            "{out}"
        );
        let out = set(DOC, &setting("SqlSettings.DataSource=\"x\"")).unwrap();
        assert!(
            out.contains("\"SqlSettings\": {\"DataSource\": \"x\"}"),
            "{out}"
        );
        parse(&out).unwrap();
        // Through a non-object: refused, not guessed.
        assert!(set(DOC, &setting("Zed.a=1")).is_err());
    }

    #[test]
    fn a_section_is_never_replaced_by_a_scalar() {
        for bad in [
            "ServiceSettings=1",
            "ServiceSettings=\"x\"",
            "ServiceSettings=null",
            "ServiceSettings=[]",
            "SqlSettings=false",
        ] {
            let e = set(DOC, &setting(bad)).unwrap_err();
            assert!(e.contains("is a section"), "{bad}: {e}");
        }
        // A section by a section, and a scalar by anything, still go.
        set(DOC, &setting("SqlSettings={\"DriverName\":\"postgres\"}")).unwrap();
        set(DOC, &setting("Zed=1")).unwrap();
        // A key path through a scalar names the part that is not an object.
        let e = set(DOC, &setting("ServiceSettings.SiteURL.X=1")).unwrap_err();
        assert!(
            e.contains("ServiceSettings.SiteURL is not an object"),
            "{e}"
        );
        for bad in ["=1", ".A=1", "A.=1", "A..B=1", "A.B.=1"] {
            assert!(parse_setting(bad).is_err(), "{bad}");
        }
    }

    /// What `set` must do, on the parsed document: `None` = refused.
    fn model(doc: &Value, path: &[String], v: &Value) -> Option<Value> {
        let mut out = doc.clone();
        let mut cur = out.as_object_mut()?;
        for (i, k) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            match cur.get(k) {
                Some(old) if last => {
                    if old.is_object() && !v.is_object() {
                        return None;
                    }
                    cur.insert(k.clone(), v.clone());
                    return Some(out);
                }
                Some(old) if !old.is_object() => return None,
                Some(_) => cur = cur.get_mut(k)?.as_object_mut()?,
                None => {
                    let mut value = v.clone();
                    for k in path[i + 1..].iter().rev() {
                        value = serde_json::json!({ k.clone(): value });
                    }
                    cur.insert(k.clone(), value);
                    return Some(out);
                }
            }
        }
        None
    }

    fn key_part() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            Just("ServiceSettings".to_string()),
            Just("SiteURL".to_string()),
            Just("SqlSettings".to_string()),
            Just("Zed".to_string()),
            Just("a\"}".to_string()),
            Just("S".to_string()),
            Just("K".to_string()),
            Just(String::new()),
            "[a-zA-Z\"\\\\ {}:,]{1,4}",
        ]
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            "[a-z\"\\\\ {}]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    const DOCS: [&str; 3] = [
        DOC,
        "{\"a\\\"}\": \"}{\", \"S\": {\"K\": \"v\\\"}\"}}",
        "{}",
    ];

    proptest::proptest! {
        /// Any `--set`: refused, or exactly that value at that path with
        /// every byte outside the edited value as it was.
        #[test]
        fn set_changes_exactly_one_value_or_refuses(
            which in 0..DOCS.len(),
            path in proptest::collection::vec(key_part(), 1..4),
            value in json_value(),
        ) {
            let text = DOCS[which];
            let doc = parse(text).unwrap();
            let arg = format!("{}={}", path.join("."), value);
            let Ok(s) = parse_setting(&arg) else {
                proptest::prop_assert!(
                    path.iter().any(|p| p.is_empty() || p.contains('.') || p.contains('=')),
                    "refused a good key: {arg}"
                );
                return Ok(());
            };
            let want = model(&doc, &s.key, &s.value);
            let got = set(text, &s);
            match (&want, &got) {
                (None, Err(_)) => {}
                (Some(w), Ok(out)) => {
                    proptest::prop_assert_eq!(&parse(out).unwrap(), w);
                    let p = text.bytes().zip(out.bytes()).take_while(|(a, b)| a == b).count();
                    let room = text.len().min(out.len()) - p;
                    let sfx = text.bytes().rev().zip(out.bytes().rev())
                        .take_while(|(a, b)| a == b).count().min(room);
                    let replaced = jsonedit_get_path(&doc, &s.key).is_some();
                    if replaced {
                        let new = serde_json::to_string(&s.value).unwrap();
                        let end = out.len() - sfx;
                        let covered = p == end || out.match_indices(new.as_str())
                            .any(|(i, _)| i <= p && i + new.len() >= end);
                        proptest::prop_assert!(covered, "bytes outside the value changed: {out}");
                    } else {
                        proptest::prop_assert_eq!(p + sfx, text.len(), "an insertion removed bytes: {}", out);
                    }
                }
                _ => proptest::prop_assert!(false, "{arg}: model {want:?}, set {got:?}"),
            }
        }
    }

    fn jsonedit_get_path<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
        path.iter().try_fold(doc, |v, k| v.get(k))
    }

    #[test]
    fn malformed_names_line_and_column() {
        let e = parse("{\n  \"a\": 1,\n  \"b\" 2\n}\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 7), "{e}");
        assert!(parse_setting("A.B=unquoted")
            .unwrap_err()
            .contains("quotes"));
        assert!(parse_setting("A..B=1").is_err());
        assert!(parse_setting("nothing").is_err());
    }

    #[test]
    fn escaped_keys_and_strings_with_braces() {
        let doc = "{\"a\\\"}\": \"}{\", \"S\": {\"K\": \"v\\\"}\"}}";
        let out = set(doc, &setting("S.K=1")).unwrap();
        assert_eq!(out, "{\"a\\\"}\": \"}{\", \"S\": {\"K\": 1}}");
    }
}
