//! The hook files in hooks/ that list what the plugin manifests name are
//! generated from them; regenerate with `UPKEEP_BLESS=1 cargo test --test hooks`.

#![allow(clippy::disallowed_methods)] // tests build their roots by path

use std::path::Path;
use upkeep_engine::plugin::{parse_manifest, Plugin, BUILTIN};

fn plugins() -> Vec<Plugin> {
    BUILTIN
        .iter()
        .map(|(name, text)| Plugin {
            manifest: parse_manifest(Path::new(name), text).expect("manifest"),
            source: name.into(),
        })
        .collect()
}

#[test]
fn generated_hook_files_match_the_manifests() {
    let p = plugins();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks");
    for (file, text) in [
        ("dpkg/triggers", upkeep_engine::hooks::dpkg_triggers(&p)),
        (
            "rpm/upkeep-guard.triggers",
            upkeep_engine::hooks::rpm_triggers(&p),
        ),
    ] {
        let path = dir.join(file);
        if std::env::var_os("UPKEEP_BLESS").is_some() {
            std::fs::write(&path, &text).expect("write");
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap_or_default(),
            text,
            "{file} is stale: UPKEEP_BLESS=1 cargo test --test hooks"
        );
    }
    let t = upkeep_engine::hooks::dpkg_triggers(&p);
    assert!(
        t.contains("interest-noawait /opt/gitlab/embedded/bin\n"),
        "{t}"
    );
    assert!(upkeep_engine::hooks::rpm_packages(&p).contains(&"gitlab-ce".to_string()));
}
