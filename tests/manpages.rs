//! The man pages in man/ are generated from the clap definitions, so they
//! never drift from `--help`. This test fails when they do; regenerate with
//! `UPKEEP_BLESS=1 cargo test --test manpages`.

use std::path::Path;

fn apps() -> Vec<clap::Command> {
    let mut pages = Vec::new();
    for app in [
        upkeep_detect::uu_app(),
        upkeep_lease::uu_app(),
        upkeep_embedded::uu_app(),
        upkeep_reconfigure::uu_app(),
        upkeep_guard::uu_app(),
        upkeep_upgrade::uu_app(),
    ] {
        // One page per subcommand too (upkeep-lease-grant.8), as git does:
        // the top page lists subcommands but not their flags.
        let app = app.disable_help_subcommand(true);
        let name = app.get_name().to_string();
        for sub in app.get_subcommands() {
            // clap names are &'static str without its "string" feature; a
            // test may leak a few bytes.
            let sub_name: &'static str =
                Box::leak(format!("{name}-{}", sub.get_name()).into_boxed_str());
            pages.push(sub.clone().name(sub_name).bin_name(sub_name));
        }
        pages.push(app);
    }
    pages
}

fn render(cmd: clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("8")
        .manual("upkeep")
        .source(format!("upkeep {}", env!("CARGO_PKG_VERSION")))
        .render(&mut out)
        .expect("render");
    out
}

#[test]
fn man_pages_match_the_clap_definitions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let bless = std::env::var_os("UPKEEP_BLESS").is_some();
    for app in apps() {
        let name = app.get_name().to_string();
        let page = render(app);
        let path = dir.join(format!("{name}.8"));
        if bless {
            std::fs::create_dir_all(&dir).expect("mkdir man");
            std::fs::write(&path, &page).expect("write");
            continue;
        }
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert!(
            on_disk == page,
            "{} is stale: run UPKEEP_BLESS=1 cargo test --test manpages",
            path.display()
        );
        let text = String::from_utf8_lossy(&page);
        // Subcommand pages carry their own flags; the top page the common ones.
        let top = name.matches('-').count() == 1;
        assert!(
            !top || (text.contains("\\-\\-root") && text.contains("65")),
            "{name}: common flags and exit codes documented"
        );
    }
}
