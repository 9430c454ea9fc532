//! Product knowledge lives in `plugins/`, never in code: no library or
//! binary crate names a product outside comments and `#[cfg(test)]`.
//! The source is tokenized with proc-macro2 (comments vanish, doc comments
//! become attributes and are skipped), so a name inside a string literal
//! or an identifier counts, and one in a comment does not.

#![allow(clippy::disallowed_methods)] // tests read the tree by path

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use std::path::{Path, PathBuf};
use std::str::FromStr;

const PRODUCTS: &[&str] = &["mattermost", "gitlab", "omnibus", "tegu", "groupmax"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every product name found in code, with a short context.
fn offenders(src: &str) -> Vec<String> {
    let tokens = TokenStream::from_str(src).expect("the file tokenizes");
    let mut out = Vec::new();
    walk(tokens, &mut out);
    out
}

fn walk(tokens: TokenStream, out: &mut Vec<String>) {
    let mut iter = tokens.into_iter().peekable();
    let mut skip_next_item = false;
    while let Some(t) = iter.next() {
        match &t {
            TokenTree::Punct(p) if p.as_char() == '#' => {
                // An attribute: `#[...]` or `#![...]`.
                let mut inner = false;
                if let Some(TokenTree::Punct(b)) = iter.peek() {
                    if b.as_char() == '!' {
                        inner = true;
                        iter.next();
                    }
                }
                if let Some(TokenTree::Group(g)) = iter.next() {
                    let text = g.stream().to_string();
                    if text.starts_with("doc") {
                        continue;
                    }
                    if text.replace(' ', "").starts_with("cfg(test)") && !inner {
                        skip_next_item = true;
                        continue;
                    }
                    walk(g.stream(), out);
                }
            }
            TokenTree::Group(g) => {
                if skip_next_item && g.delimiter() == Delimiter::Brace {
                    skip_next_item = false;
                    continue;
                }
                walk(g.stream(), out);
            }
            TokenTree::Punct(p) if p.as_char() == ';' => skip_next_item = false,
            TokenTree::Ident(_) | TokenTree::Literal(_) => {
                if skip_next_item {
                    continue;
                }
                let text = t.to_string().to_ascii_lowercase();
                if let Some(name) = PRODUCTS.iter().find(|n| text.contains(*n)) {
                    out.push(format!("{name} in {}", t));
                }
            }
            TokenTree::Punct(_) => {}
        }
    }
}

#[test]
fn no_crate_names_a_product_in_its_code() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    let mut files = Vec::new();
    rust_files(&crates, &mut files);
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    files.retain(|f| !f.components().any(|c| c.as_os_str() == "tests"));
    assert!(files.len() > 20, "found the sources: {files:?}");
    let mut found = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).expect("read");
        for o in offenders(&src) {
            found.push(format!("{}: {o}", f.display()));
        }
    }
    assert!(
        found.is_empty(),
        "product names in code:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_finds_names_in_code_and_ignores_comments_and_tests() {
    let bad = "fn f() -> &'static str { \"run gitlab-ctl\" }\nfn g() { let tegu_dir = 1; }\n";
    assert_eq!(offenders(bad).len(), 2, "{:?}", offenders(bad));
    let good = "/// Mattermost inside GitLab\n// tegu\nfn f() {}\n/* groupmax */\n#[cfg(test)]\nmod tests { fn t() { let _ = \"mattermost\"; } }\n#[cfg(test)]\nfn only_in_tests() -> &'static str { \"omnibus\" }\n";
    assert!(offenders(good).is_empty(), "{:?}", offenders(good));
}
