//! upkeep-embedded and upkeep-reconfigure on throwaway roots. Every edit is
//! judged by real Ruby: tests/support/gitlab_rb_eval.rb loads gitlab.rb as
//! Omnibus does and dumps its settings; after `disable` they must equal the
//! settings before, but for Mattermost switched off. gitlab-ctl is a
//! stand-in (tests/support/gitlab-ctl-standin): the real one cannot run here.

#![allow(clippy::disallowed_methods)] // tests build their roots by path

mod common;
use common::*;
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RB: &str = "/etc/gitlab/gitlab.rb";

fn support(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/gitlab-rb")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (shared/ must sit beside the repository)",
            p.display()
        )
    })
}

/// An Omnibus root at GitLab `version` with this gitlab.rb (root, 0600),
/// Mattermost's runit link present and the gitlab-ctl stand-in installed.
fn gitlab_root(version: &str, gitlab_rb: &str) -> TestRoot {
    let r = TestRoot::new();
    r.write(
        "/opt/gitlab/version-manifest.json",
        format!("{{\"build_version\": \"{version}\"}}"),
        0o644,
    );
    r.write(RB, gitlab_rb, 0o600);
    r.write("/opt/gitlab/sv/mattermost/run", "#!/bin/sh\n", 0o755);
    std::fs::create_dir_all(r.path("opt/gitlab/service")).expect("mkdir");
    std::os::unix::fs::symlink(
        "/opt/gitlab/sv/mattermost",
        r.path("opt/gitlab/service/mattermost"),
    )
    .expect("ln");
    std::fs::create_dir_all(r.path("opt/gitlab/bin")).expect("mkdir");
    std::fs::copy(
        support("gitlab-ctl-standin"),
        r.path("opt/gitlab/bin/gitlab-ctl"),
    )
    .expect("cp");
    r.install_busybox();
    r.install_ruby();
    r
}

/// The settings Ruby sees in a gitlab.rb.
fn settings(path: &Path) -> Value {
    let o = Command::new("ruby")
        .arg(support("gitlab_rb_eval.rb"))
        .arg(path)
        .output()
        .expect("ruby");
    assert!(
        o.status.success(),
        "ruby could not load {}: {}",
        path.display(),
        stderr(&o)
    );
    serde_json::from_slice(&o.stdout).expect("json")
}

fn embedded(r: &TestRoot, args: &[&str]) -> Output {
    let mut all = vec!["--root", r.root().to_str().expect("utf8")];
    all.extend_from_slice(args);
    let o = upkeep("upkeep-embedded", &all);
    assert_no_panic(&o);
    o
}

/// Whether runit's service link is there (the link itself: its absolute
/// target points outside the test root).
fn link_present(r: &TestRoot) -> bool {
    std::fs::symlink_metadata(r.path("opt/gitlab/service/mattermost")).is_ok()
}

fn backups(r: &TestRoot) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(r.path("etc/gitlab"))
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".upkeep-") && n.ends_with(".bak"))
        .collect();
    v.sort();
    v
}

/// What disable must leave: on GitLab up to 18.11 the same settings with
/// mattermost.enable false; from 19.0 no Mattermost settings at all.
fn expected_after_disable(before: &Value, removal_form: bool) -> Value {
    let mut v = before.clone();
    let obj = v.as_object_mut().expect("object");
    if removal_form {
        obj.remove("mattermost");
        obj.remove("mattermost_external_url");
    } else {
        let mm = obj
            .entry("mattermost")
            .or_insert_with(|| Value::Object(Default::default()));
        mm.as_object_mut()
            .expect("object")
            .insert("enable".into(), Value::Bool(false));
    }
    v
}

fn disable_and_compare(
    version: &str,
    text: &str,
    extra: &[&str],
    removal_form: bool,
    case: &str,
) -> TestRoot {
    let r = gitlab_root(version, text);
    let before = settings(&r.path(RB));
    let mut args = vec!["disable", "mattermost"];
    args.extend_from_slice(extra);
    let o = embedded(&r, &args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{case}: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let after = settings(&r.path(RB));
    assert_eq!(
        after,
        expected_after_disable(&before, removal_form),
        "{case}:\n{}",
        stdout(&o)
    );
    assert!(
        !link_present(&r),
        "{case}: runit link removed by reconfigure"
    );
    // Idempotent: a second run writes nothing and makes no new backup.
    let bytes = std::fs::read(r.path(RB)).expect("read");
    let n = backups(&r).len();
    let o = embedded(&r, &args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{case} second run: {}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(r.path(RB)).expect("read"),
        bytes,
        "{case}: second run changed the file"
    );
    assert_eq!(backups(&r).len(), n, "{case}: second run made a backup");
    r
}

/// The 18.11 template with Mattermost switched on in different ways.
fn switched_on_18_11() -> Vec<(&'static str, String)> {
    let t = fixture("gitlab.rb.template-18.11.11");
    let url = "# mattermost_external_url 'http://mattermost.example.com'";
    assert!(t.contains(url));
    vec![
        ("url only", t.replace(url, "mattermost_external_url 'http://mattermost.example.com'")),
        (
            "explicit enable, env block (its typo fixed), port",
            t.replace("# mattermost['enable'] = false", "mattermost['enable'] = true")
                .replace("# mattermost['env'] = {\n#   'SSL_CERT_DIR' => \"/opt/gitlab/embedded/ssl/certs/\",\n#   'GODEBUG` => \"tlsmlkem=0\",\n# }", "mattermost['env'] = {\n  'SSL_CERT_DIR' => \"/opt/gitlab/embedded/ssl/certs/\",\n  'GODEBUG' => \"tlsmlkem=0\",\n}")
                .replace("# mattermost['service_port'] = \"8065\"", "mattermost['service_port'] = \"8065\""),
        ),
        (
            "several spellings, look-alikes active",
            format!(
                "{}\nmattermost_external_url 'https://chat.example.com'\nmattermost[\"enable\"]=true\ngitlab_rails['mattermost_host'] = \"https://chat.example.com\"\nmattermost_nginx['enable'] = true\nmattermost[:enable]  =  true # again\nmattermost[:team_site_name] = \"Chat; here\"\n",
                t.replace(url, "mattermost_external_url 'http://mattermost.example.com'")
            ),
        ),
    ]
}

#[test]
fn disable_on_the_real_18_11_template_switches_only_mattermost_off() {
    for (case, text) in switched_on_18_11() {
        let r = gitlab_root("18.11.11-ee", &text);
        let o = embedded(&r, &["status", "mattermost", "--format", "json"]);
        assert_eq!(json(&o)["before"]["enabled"], true, "{case}");
        let r = disable_and_compare("18.11.11-ee", &text, &[], false, case);
        let text_after = std::fs::read_to_string(r.path(RB)).expect("read");
        assert!(
            text_after.contains("mattermost_nginx['enable'] = true")
                || !text.contains("mattermost_nginx['enable'] = true"),
            "{case}: look-alike kept"
        );
        let log = std::fs::read_to_string(r.path("var/log/gitlab-ctl.args")).expect("ctl log");
        assert!(
            log.lines().any(|l| l == "reconfigure"),
            "{case}: reconfigure ran: {log}"
        );
    }
}

#[test]
fn disable_on_19_x_comments_out_every_mattermost_setting() {
    let base = fixture("gitlab.rb.template-19.3");
    let text = format!(
        "{base}\n## Left over from 18.11\nmattermost_external_url 'https://chat.example.com'\nmattermost['enable'] = true\nmattermost['env'] = {{\n  'A' => 'b'\n}}\ngitlab_rails['mattermost_host'] = \"https://chat.example.com\"\nx = 1; mattermost['service_port'] = 8065\n"
    );
    let r = disable_and_compare("19.3.0", &text, &[], true, "19.3 template");
    let after = std::fs::read_to_string(r.path(RB)).expect("read");
    assert!(after.contains("# upkeep: commented out"), "each marked");
    assert!(after.contains("gitlab_rails['mattermost_host'] = \"https://chat.example.com\"\n"));
    let o = embedded(&r, &["status", "mattermost", "--format", "json"]);
    assert_eq!(json(&o)["before"]["active_settings"], Value::Array(vec![]));
    // 19.x cannot get bundled Mattermost back.
    let o = embedded(&r, &["enable", "mattermost"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

#[test]
fn for_upgrade_does_the_removal_form_on_18_11_and_warns_otherwise() {
    for (case, text) in switched_on_18_11() {
        disable_and_compare("18.11.11-ee", &text, &["--for-upgrade"], true, case);
    }
    let (_, text) = &switched_on_18_11()[0];
    let r = gitlab_root("18.11.11-ee", text);
    let o = embedded(&r, &["disable", "mattermost"]);
    assert!(
        stdout(&o).contains("disable --for-upgrade mattermost"),
        "warns about the 19.0-19.2 upgrade: {}",
        stdout(&o)
    );
}

const TORTURE: &str = r#"external_url 'https://gitlab.example.com'
# mattermost['enable'] = true
=begin
mattermost['enable'] = true
=end
gitlab_rails['motd_single'] = 'mattermost[\'enable\'] = true'
gitlab_rails['motd_double'] = "say \"mattermost['enable'] = true\" #{'}'} done"
gitlab_rails['motd_q'] = %q(mattermost['enable'] = (true))
gitlab_rails['motd_Q'] = %Q[mattermost['enable'] = #{1 + 1}]
gitlab_rails['motd_w'] = %w{mattermost['enable'] = true}
gitlab_rails['heredoc'] = <<EOS
mattermost['enable'] = true
EOS
gitlab_rails['heredoc_dash'] = <<-EOS
  mattermost['enable'] = true
  EOS
gitlab_rails['heredoc_squiggly'] = <<~'EOS'
  mattermost['enable'] = true
EOS
mattermost_nginx['enable'] = true; mattermost['enable'] = true; nginx['enable'] = true # trailing
mattermost['env'] = {
  'A' => "x;y # not a comment",
  'B' => 'mattermost[:enable] = true',
}
mattermost_external_url 'https://chat.example.com'
"#;

#[test]
fn every_ruby_syntax_is_understood_and_nothing_in_strings_changes() {
    let r = disable_and_compare("18.11.11-ee", TORTURE, &[], false, "torture 18.11");
    let after = std::fs::read_to_string(r.path(RB)).expect("read");
    assert!(after.contains("mattermost_nginx['enable'] = true; mattermost['enable'] = false; nginx['enable'] = true # trailing"), "{after}");
    disable_and_compare("19.1.0", TORTURE, &[], true, "torture 19.1");
}

#[test]
fn owner_group_mode_crlf_and_missing_final_newline_are_kept() {
    let r = gitlab_root(
        "18.11.1",
        "external_url 'https://g'\r\nmattermost_external_url 'https://m'\r\n",
    );
    std::os::unix::fs::chown(r.path(RB), Some(998), Some(994)).expect("chown");
    std::fs::set_permissions(r.path(RB), std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let o = embedded(&r, &["disable", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let m = std::fs::metadata(r.path(RB)).expect("stat");
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (998, 994, 0o640));
    assert_eq!(std::fs::read_to_string(r.path(RB)).expect("read"), "external_url 'https://g'\r\nmattermost_external_url 'https://m'\r\nmattermost['enable'] = false\r\n");
    let b = backups(&r);
    assert_eq!(b.len(), 1);
    let bm = std::fs::metadata(r.path(&format!("etc/gitlab/{}", b[0]))).expect("stat");
    assert_eq!(bm.mode() & 0o777, 0o600, "backup is 0600");

    let r = gitlab_root("18.11.1", "mattermost['enable'] = true");
    embedded(&r, &["disable", "mattermost"]);
    assert_eq!(
        std::fs::read_to_string(r.path(RB)).expect("read"),
        "mattermost['enable'] = false"
    );
    let m = std::fs::metadata(r.path(RB)).expect("stat");
    assert_eq!(
        (m.uid(), m.mode() & 0o7777),
        (0, 0o600),
        "Omnibus keeps gitlab.rb 0600 root"
    );
}

#[test]
fn dry_run_prints_a_diff_and_changes_nothing() {
    let (_, text) = &switched_on_18_11()[0];
    let r = gitlab_root("18.11.11-ee", text);
    let o = embedded(&r, &["disable", "mattermost", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        out.contains("--- /etc/gitlab/gitlab.rb\n+++ /etc/gitlab/gitlab.rb\n@@ -2435,"),
        "{out}"
    );
    assert!(
        out.contains("\n-# mattermost['enable'] = false\n+mattermost['enable'] = false\n"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(r.path(RB)).expect("read"), *text);
    assert!(backups(&r).is_empty());
    assert!(link_present(&r), "no reconfigure");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
            .count(),
        1
    );
}

fn assert_bad_input_untouched(r: &TestRoot, needle: &str) {
    let before = std::fs::read(r.path(RB)).ok();
    let o = embedded(r, &["disable", "mattermost"]);
    assert_eq!(o.status.code(), Some(65), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains(needle),
        "wanted {needle:?}: {}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(r.path(RB)).ok(), before, "untouched");
    assert!(backups(r).is_empty());
    assert!(
        !r.path("var/log/gitlab-ctl.args").exists(),
        "no reconfigure"
    );
}

#[test]
fn malformed_gitlab_rb_is_reported_with_its_line_and_left_untouched() {
    let r = gitlab_root(
        "18.11.1",
        "external_url 'https://g'\nmattermost['enable'] = 'oops\nx = 1\n",
    );
    // Ruby, too, names the end of the file for a string left open.
    assert_bad_input_untouched(&r, "gitlab.rb:4: not valid Ruby: unterminated string");
    let r = gitlab_root(
        "18.11.1",
        "mattermost['enable'] = true\nx = <<~EOS\n  never ends\n",
    );
    assert_bad_input_untouched(
        &r,
        "gitlab.rb:2: not valid Ruby: can't find string \"EOS\" anywhere before EOF",
    );
    // The 18.11 template's own env example, uncommented as it stands, has a typo.
    let t = fixture("gitlab.rb.template-18.11.11").replace("# mattermost['env'] = {\n#   'SSL_CERT_DIR' => \"/opt/gitlab/embedded/ssl/certs/\",\n#   'GODEBUG` => \"tlsmlkem=0\",\n# }", "mattermost['env'] = {\n  'SSL_CERT_DIR' => \"/opt/gitlab/embedded/ssl/certs/\",\n  'GODEBUG` => \"tlsmlkem=0\",\n}");
    let r = gitlab_root("18.11.11", &t);
    assert_bad_input_untouched(&r, "gitlab.rb:");
    // A stray `end`.
    let r = gitlab_root("18.11.1", "mattermost['enable'] = true\nend\n");
    assert_bad_input_untouched(&r, "gitlab.rb:2: not valid Ruby: unexpected");
    // Not a regular file; missing.
    let r = gitlab_root("18.11.1", "");
    std::fs::remove_file(r.path(RB)).expect("rm");
    std::fs::create_dir(r.path(RB)).expect("mkdir");
    assert_bad_input_untouched(&r, "not a regular file");
    std::fs::remove_dir(r.path(RB)).expect("rmdir");
    assert_bad_input_untouched(&r, "cannot read");
}

#[test]
fn a_symlinked_gitlab_rb_is_edited_at_a_safe_target_only() {
    let r = gitlab_root("18.11.1", "");
    std::fs::remove_file(r.path(RB)).expect("rm");
    r.write(
        "/srv/config/gitlab.rb",
        "mattermost['enable'] = true\n",
        0o600,
    );
    std::os::unix::fs::symlink("/srv/config/gitlab.rb", r.path(RB)).expect("ln");
    // Editing only: the gitlab-ctl stand-in cannot follow an absolute link inside a root.
    let o = embedded(&r, &["disable", "mattermost", "--no-reconfigure"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        std::fs::symlink_metadata(r.path(RB))
            .expect("lstat")
            .file_type()
            .is_symlink(),
        "the link stays"
    );
    assert_eq!(
        std::fs::read_to_string(r.path("srv/config/gitlab.rb")).expect("read"),
        "mattermost['enable'] = false\n"
    );

    for (uid, mode) in [(998, 0o600), (0, 0o666)] {
        r.write(
            "/srv/config/gitlab.rb",
            "mattermost['enable'] = true\n",
            mode,
        );
        std::os::unix::fs::chown(r.path("srv/config/gitlab.rb"), Some(uid), None).expect("chown");
        let o = embedded(&r, &["disable", "mattermost", "--no-reconfigure"]);
        assert_eq!(
            o.status.code(),
            Some(3),
            "uid {uid} mode {mode:o}: {}",
            stderr(&o)
        );
        assert_eq!(
            std::fs::read_to_string(r.path("srv/config/gitlab.rb")).expect("read"),
            "mattermost['enable'] = true\n"
        );
    }
}

#[test]
fn reconfigure_failures_and_an_instance_still_running_are_exit_1() {
    let (_, text) = &switched_on_18_11()[0];
    let r = gitlab_root("18.11.11-ee", text);
    let o = upkeep_env(
        "upkeep-embedded",
        &[
            "--root",
            r.root().to_str().expect("utf8"),
            "disable",
            "mattermost",
        ],
        &[("STANDIN_FAIL", "1")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("reconfigure failed with exit code 1") && stderr(&o).contains("backup"),
        "{}",
        stderr(&o)
    );
    // A rerun reconfigures again: the file is already right, the link is not.
    let o = upkeep_env(
        "upkeep-embedded",
        &[
            "--root",
            r.root().to_str().expect("utf8"),
            "disable",
            "mattermost",
        ],
        &[("STANDIN_KEEP_LINK", "1")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("still enabled or running"),
        "{}",
        stderr(&o)
    );
    let o = embedded(&r, &["disable", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("verified"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("pg_dump") && stdout(&o).contains("/var/opt/gitlab/mattermost/data"),
        "next steps"
    );
}

#[test]
fn enable_turns_it_back_on_and_no_reconfigure_only_edits() {
    let r = gitlab_root(
        "18.11.1",
        "mattermost_external_url 'https://m'\nmattermost['enable'] = false\n",
    );
    std::fs::remove_file(r.path("opt/gitlab/service/mattermost")).expect("rm");
    assert!(!link_present(&r));
    let o = embedded(&r, &["enable", "mattermost", "--no-reconfigure"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!r.path("var/log/gitlab-ctl.args").exists());
    assert_eq!(settings(&r.path(RB))["mattermost"]["enable"], true);
    let o = embedded(&r, &["enable", "mattermost"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(link_present(&r), "link back");
}

#[test]
fn upkeep_reconfigure_passes_arguments_and_exit_code_through_and_logs() {
    let r = gitlab_root("18.11.1", "external_url 'x'\n");
    let root = r.root().to_str().expect("utf8");
    let o = upkeep(
        "upkeep-reconfigure",
        &["--root", root, "--", "--accept-license", "-x"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("gitlab Reconfigured!"),
        "output streamed: {}",
        stdout(&o)
    );
    let args = std::fs::read_to_string(r.path("var/log/gitlab-ctl.args")).expect("args");
    assert_eq!(args, "reconfigure --accept-license -x\n");
    let log = std::fs::read_to_string(r.path("var/log/upkeep/upkeep.log")).expect("log");
    assert!(
        log.contains("reconfigure --accept-license -x: exit 0"),
        "{log}"
    );
    let o = upkeep_env(
        "upkeep-reconfigure",
        &["--root", root],
        &[("STANDIN_FAIL", "1")],
    );
    assert_eq!(o.status.code(), Some(1));
    // No gitlab-ctl in the root: never the machine's own.
    let bare = TestRoot::new();
    let o = upkeep(
        "upkeep-reconfigure",
        &["--root", bare.root().to_str().expect("utf8")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
}

/// What the issue saw go wrong, through the binary: each judged by Ruby.
#[test]
fn joined_heredoc_conditional_bom_and_end_cases_through_the_binary() {
    let on_19 = [
        ("two settings on one CRLF line", "mattermost['enable'] = true; mattermost['service_port'] = \"8065\"\r\ngitlab_rails['time_zone'] = 'UTC'\r\n"),
        ("joined by and", "gitlab_rails['time_zone'] = 'UTC' and mattermost['enable'] = true\n"),
        ("a heredoc value", "mattermost['env'] = <<~EOS\n  A=1\n  EOS\ngitlab_rails['x'] = 1\n"),
        ("a BOM", "\u{feff}mattermost['enable'] = true\n"),
        ("__END__", "mattermost['enable'] = true\n__END__\nmattermost['enable'] = true\n"),
    ];
    for (case, text) in on_19 {
        disable_and_compare("19.1.0", text, &[], true, case);
    }
    let on_18 = [
        ("an if", "mattermost_external_url 'http://m'\nif true then mattermost['enable'] = true end\n"),
        ("unless/else", "unless false\n  mattermost['enable'] = true\nelse\n  mattermost['enable'] = false\nend\n"),
        ("a block", "[1].each { mattermost['enable'] = true }\n"),
        ("an interpolated key", "mattermost[\"#{'en'}able\"] = true\n"),
        ("a BOM", "\u{feff}mattermost['enable'] = true\n"),
        ("$/ and ?'", "x = ?'\nmattermost['enable'] = true if $/\n"),
        ("a heredoc value", "mattermost['enable'] = <<~EOS\n  yes\n  EOS\n"),
    ];
    for (case, text) in on_18 {
        disable_and_compare("18.11.1", text, &[], false, case);
    }
}

#[test]
fn status_is_what_ruby_computes_and_gitlab_rb_code_runs_inside_the_root() {
    let marker = format!("upkeep-chroot-test-{}", std::process::id());
    let text = format!(
        "mattermost_external_url 'http://m'\nif false\n  mattermost['enable'] = false\nend\nFile.write('/{marker}', 'x')\n"
    );
    let r = gitlab_root("18.11.1", &text);
    let o = embedded(&r, &["status", "mattermost", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["before"]["enabled"], true, "{j}");
    assert_eq!(j["before"]["reason"], "implied", "{j}");
    assert_eq!(j["before"]["source"], "ruby", "{j}");
    assert!(
        r.path(&marker).exists(),
        "gitlab.rb's code ran inside the root"
    );
    assert!(
        !Path::new("/").join(&marker).exists(),
        "gitlab.rb's code never touches the machine"
    );
}

#[test]
fn a_removed_key_in_a_conditional_or_merge_is_refused_naming_the_line() {
    for (text, line) in [
        (
            "external_url 'x'\nif true\n  mattermost['enable'] = true\nend\n",
            "line 3",
        ),
        ("mattermost.merge!('enable' => true)\n", "line 1"),
        (
            "mattermost['enable'] = true or gitlab_rails['x'] = 1\n",
            "line 1",
        ),
    ] {
        let r = gitlab_root("19.1.0", text);
        let o = embedded(&r, &["disable", "mattermost"]);
        assert_eq!(o.status.code(), Some(1), "{text}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(line) && e.contains("nothing was written. By hand:"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(r.path(RB)).expect("read"), text);
        assert!(backups(&r).is_empty());
    }
}

/// The root's own Ruby runs inside the root (chroot), never on the live
/// machine. A real Ruby cannot be installed into a throwaway root here, so
/// /opt/gitlab/embedded/bin/ruby is a stand-in: a busybox (static) shell
/// script that marks where it ran and answers as the recorder would.
#[test]
fn the_roots_own_ruby_runs_chrooted_in_the_root() {
    let r = gitlab_root("18.11.1", "mattermost['enable'] = true\n");
    r.write(
        "/bin/busybox",
        std::fs::read("/bin/busybox").expect("busybox-static"),
        0o755,
    );
    let marker = format!("upkeep-ruby-standin-{}", std::process::id());
    r.write(
        "/opt/gitlab/embedded/bin/ruby",
        format!(
            "#!/bin/busybox sh\n/bin/busybox cat >/dev/null\n/bin/busybox touch /{marker}\nprintf '\\n@@upkeep-recorder@@\\n[{{\"ok\":true,\"settings\":{{\"mattermost\":{{\"enable\":false}}}},\"lines\":{{}}}}]\\n'\n"
        ),
        0o755,
    );
    let o = embedded(&r, &["status", "mattermost", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["before"]["source"], "ruby", "{j}");
    assert_eq!(j["before"]["enabled"], false, "the stand-in's answer: {j}");
    assert!(r.path(&marker).exists(), "ran inside the root");
    assert!(!Path::new("/").join(&marker).exists(), "not on the machine");
}

/// The diff is linear in memory (similar's Myers): a 60,000-line gitlab.rb
/// with settings near both ends, as a dry run on GitLab 19.
#[test]
fn dry_run_on_a_60000_line_file_with_edits_near_both_ends() {
    let mut text = String::from("external_url 'https://g'\nmattermost['enable'] = true\n");
    for i in 0..60_000 {
        text.push_str(&format!("gitlab_rails['k{i}'] = {i}\n"));
    }
    text.push_str("mattermost['service_port'] = \"8065\"\n");
    let r = gitlab_root("19.1.0", &text);
    let started = std::time::Instant::now();
    let o = embedded(&r, &["disable", "mattermost", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.matches("\n@@ -").count(), 2, "two hunks: {out}");
    assert!(
        out.contains("-mattermost['enable'] = true\n+# upkeep: commented out"),
        "{out}"
    );
    assert!(
        out.contains("+# mattermost['service_port'] = \"8065\"\n"),
        "{out}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(std::fs::read_to_string(r.path(RB)).expect("read"), text);
}

/// Without any Ruby (none in the root, none on PATH) the reading is static,
/// and the report says so.
#[test]
fn without_ruby_the_reading_is_static_and_says_so() {
    let r = gitlab_root("18.11.1", "mattermost['enable'] = true\n");
    let root = r.root().to_str().expect("utf8");
    let o = upkeep_env(
        "upkeep-embedded",
        &["--root", root, "status", "mattermost", "--format", "json"],
        &[("PATH", "/nonexistent")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["before"]["source"], "static", "{j}");
    assert_eq!(j["before"]["enabled"], true, "{j}");
    assert_eq!(
        j["warnings"][0],
        "This is a static reading of /etc/gitlab/gitlab.rb, because no Ruby was found: settings inside conditionals, blocks or computed keys may differ from what the host sees.",
        "{j}"
    );
}

/// The root's gitlab-ctl runs inside the root (chroot), never on the live
/// machine: what it writes lands in the root. Where it cannot run there (a
/// script with no shell in the root) it does not run at all.
#[test]
fn the_roots_gitlab_ctl_runs_inside_the_root_or_not_at_all() {
    let r = gitlab_root("18.11.1", "external_url 'x'\n");
    let root = r.root().to_str().expect("utf8");
    let marker = format!("/tmp/upkeep-ctl-escape-{}", std::process::id());
    let o = upkeep_env(
        "upkeep-reconfigure",
        &["--root", root],
        &[("STANDIN_ESCAPE", marker.as_str())],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(r.path(&marker).exists(), "written inside the root");
    assert!(!Path::new(&marker).exists(), "never on the machine");

    let bare = gitlab_root("18.11.1", "external_url 'x'\n");
    std::fs::remove_file(bare.path("bin/sh")).expect("rm");
    let o = upkeep_env(
        "upkeep-reconfigure",
        &["--root", bare.root().to_str().expect("utf8")],
        &[("STANDIN_ESCAPE", marker.as_str())],
    );
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("could not be started inside")
            && stderr(&o).contains("upkeep never runs it on this machine instead."),
        "{}",
        stderr(&o)
    );
    assert!(!Path::new(&marker).exists(), "never on the machine");
    assert!(!bare.path(&marker).exists(), "did not run at all");
}
