//! Builds upkeep's own packages:
//!
//! ```sh
//! cargo run --release --manifest-path packaging/Cargo.toml -- --out DIR
//! ```
//!
//! writes `upkeep_<ver>-1_<arch>.deb` and `upkeep-<ver>-1.<arch>.rpm` into
//! DIR. The release binaries come from `target/release` (built when any is
//! missing; `upkeep-hook` statically linked, so the no-op apt hook starts at
//! the process floor).
//!
//! The .deb is assembled with the `debian-packaging` crate's control-file
//! and tar writers (`DebBuilder` itself is not used: it writes `md5sums`
//! with raw digest bytes instead of hex, so dpkg --verify would fail; the
//! md5sums here are hex, one line per file, as dh_md5sums writes them).
//!
//! The .rpm is built by rpmbuild from a generated spec: the `rpm` crate
//! (0.16, the newest that resolves next to debian-packaging, whose native
//! compression libraries pin it) has no API for `%triggerin` or
//! `%filetriggerin` scriptlets, and its header entries cannot be added from
//! outside the crate, so it cannot write what this package needs.

// A build tool: it reads the source tree and writes into --out on the
// build machine, never a system root; upkeep-sys's safe layer (which the
// repository's clippy.toml asks for) is for the runtime binaries.
#![allow(clippy::disallowed_methods)]

use debian_packaging::control::{ControlField, ControlFile, ControlParagraph};
use debian_packaging::deb::builder::write_deb_tar;
use debian_packaging::deb::DebCompression;
use md5::Digest;
use simple_file_manifest::{FileEntry, FileManifest};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const NAME: &str = "upkeep";
const BINARIES: &[&str] = &[
    "upkeep-detect",
    "upkeep-lease",
    "upkeep-embedded",
    "upkeep-reconfigure",
    "upkeep-guard",
    "upkeep-hook",
    "upkeep-upgrade",
    "upkeep-maintscript",
];
const MAINTAINER: &str = "upkeep maintainers <upkeep@example.invalid>";
const SUMMARY: &str = "keeps self-hosted servers safe across package upgrades";
const DESCRIPTION: &str = "upkeep is a set of small tools that package managers and \
administrators run around upgrades of self-hosted servers (Mattermost inside \
GitLab Omnibus, bundled or standalone, the TEGU mail server, Groupmax). It \
detects what is installed and who manages it, lends file ownership for an \
in-place upgrade and gives it back exactly, refuses downgrades that would \
break the data, and warns before a package upgrade or reconfigure silently \
undoes a local change. Its apt, dpkg, rpm and dnf hooks run on every \
transaction and cost about as much as /bin/true when there is nothing to do.";

/// A file in the package: absolute path, content, executable or not.
struct Item {
    path: String,
    data: Vec<u8>,
    exec: bool,
}

struct Ctx {
    repo: PathBuf,
    version: String,
    out: PathBuf,
    /// Cargo's target directory: the binaries are `TARGET/release/*`.
    target: PathBuf,
    /// Run cargo even when the binaries exist (cargo rebuilds what is stale).
    rebuild: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("upkeep-packaging: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res<T> = Result<T, String>;

fn run() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let mut out = None;
    let mut target = None;
    let mut rebuild = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rebuild" => rebuild = true,
            "--out" => out = args.next().map(PathBuf::from),
            "--target-dir" => target = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("usage: upkeep-packaging --out DIR [--target-dir DIR] [--rebuild]\n  the binaries: TARGET/release (default: the repository's target/), built if missing\n  (always with --rebuild: cargo then rebuilds what is stale)");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (usage: --out DIR)")),
        }
    }
    let out = out.ok_or("--out DIR is required")?;
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let out = out
        .canonicalize()
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no repository")?
        .to_path_buf();
    let version = workspace_version(&repo)?;
    let target = target.unwrap_or_else(|| repo.join("target"));
    let ctx = Ctx {
        repo,
        version,
        out,
        target,
        rebuild,
    };
    build_binaries(&ctx)?;
    let deb = build_deb(&ctx)?;
    println!("{}", deb.display());
    let rpm = build_rpm(&ctx)?;
    println!("{}", rpm.display());
    Ok(())
}

fn read(p: &Path) -> Res<Vec<u8>> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn read_str(p: &Path) -> Res<String> {
    String::from_utf8(read(p)?).map_err(|e| format!("{}: {e}", p.display()))
}

fn workspace_version(repo: &Path) -> Res<String> {
    let text = read_str(&repo.join("Cargo.toml"))?;
    let v: toml::Value = toml::from_str(&text).map_err(|e| format!("Cargo.toml: {e}"))?;
    v.get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| "Cargo.toml: no [workspace.package] version".into())
}

fn run_cmd(c: &mut Command) -> Res<std::process::Output> {
    let o = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "{c:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(o)
}

/// Takes the binaries from target/release, building them if any is missing.
fn build_binaries(ctx: &Ctx) -> Res<()> {
    let dir = ctx.target.join("release");
    if !ctx.rebuild && BINARIES.iter().all(|b| dir.join(b).is_file()) {
        return Ok(());
    }
    eprintln!("upkeep-packaging: building the release binaries (cargo, release profile)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_cmd(
        Command::new(&cargo)
            .current_dir(&ctx.repo)
            .args(["build", "--release", "--locked", "--bins", "--target-dir"])
            .arg(&ctx.target),
    )?;
    // The front hook is statically linked: no dynamic loader work at start.
    run_cmd(Command::new(&cargo).current_dir(&ctx.repo).args([
        "rustc",
        "--release",
        "--locked",
        "--bin",
        "upkeep-hook",
        "--target-dir",
        &ctx.target.display().to_string(),
        "--",
        "-C",
        "target-feature=+crt-static",
    ]))?;
    Ok(())
}

fn gzip9(data: &[u8]) -> Res<Vec<u8>> {
    // No name and mtime 0 in the header: reproducible, as lintian wants.
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(data).map_err(|e| e.to_string())?;
    enc.finish().map_err(|e| e.to_string())
}

/// Directories the dpkg triggers and rpm file triggers watch: the manifests'
/// package-managed binaries' directories (hooks/dpkg/triggers is generated
/// from the manifests and kept in step by a test).
fn trigger_dirs(ctx: &Ctx) -> Res<Vec<String>> {
    let t = read_str(&ctx.repo.join("hooks/dpkg/triggers"))?;
    Ok(t.lines()
        .filter_map(|l| l.strip_prefix("interest-noawait "))
        .map(str::to_string)
        .collect())
}

/// Files shared by both packages. `systemd` is where units go.
fn payload(ctx: &Ctx, systemd: &str, python_dnf: &str) -> Res<Vec<Item>> {
    let r = |p: &str| ctx.repo.join(p);
    let mut items = Vec::new();
    let mut add = |path: String, data: Vec<u8>, exec: bool| {
        items.push(Item { path, data, exec });
    };
    for b in BINARIES {
        add(
            format!("/usr/bin/{b}"),
            read(&ctx.target.join("release").join(b))?,
            true,
        );
    }
    let mut plugins: Vec<_> = std::fs::read_dir(r("plugins"))
        .map_err(|e| format!("plugins/: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    plugins.sort();
    for p in plugins {
        let name = p.file_name().and_then(|n| n.to_str()).ok_or("name")?;
        add(
            format!("/usr/share/upkeep/plugins/{name}"),
            read(&p)?,
            false,
        );
    }
    add(
        "/etc/upkeep/upkeep.toml".into(),
        read(&r("packaging/files/upkeep.toml"))?,
        false,
    );
    add(
        format!("{python_dnf}/dnf-plugins/upkeep.py"),
        read(&r("hooks/dnf/upkeep.py"))?,
        false,
    );
    add(
        "/etc/dnf/plugins/upkeep.conf".into(),
        read(&r("hooks/dnf/upkeep.conf"))?,
        false,
    );
    add(
        "/etc/dnf/libdnf5-plugins/actions.d/upkeep.actions".into(),
        read(&r("hooks/dnf5/upkeep.actions"))?,
        false,
    );
    add(
        "/usr/share/upkeep/dnf5-check".into(),
        read(&r("hooks/dnf5/dnf5-check"))?,
        true,
    );
    // omnibus-ctl loads command files from the GitLab tree, which no other
    // package may write to: shipped here, linked in by the administrator
    // (see upkeep-guard(8)).
    add(
        "/usr/share/upkeep/omnibus-ctl/upkeep.rb".into(),
        read(&r("hooks/omnibus-ctl/upkeep.rb"))?,
        false,
    );
    for unit in ["upkeep-lease-recover.service", "upkeep-lease-recover.timer"] {
        add(
            format!("{systemd}/{unit}"),
            read(&r(&format!("packaging/systemd/{unit}")))?,
            false,
        );
    }
    let mut pages: Vec<_> = std::fs::read_dir(r("man"))
        .map_err(|e| format!("man/: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    pages.sort();
    for p in pages {
        let name = p.file_name().and_then(|n| n.to_str()).ok_or("name")?;
        if let Some(section) = name.rsplit('.').next().filter(|s| s.len() == 1) {
            add(
                format!("/usr/share/man/man{section}/{name}.gz"),
                gzip9(&read(&p)?)?,
                false,
            );
        }
    }
    // Shell completions, if the tree has them.
    for (dir, dest) in [
        ("completions/bash", "/usr/share/bash-completion/completions"),
        ("completions/zsh", "/usr/share/zsh/vendor-completions"),
        ("completions/fish", "/usr/share/fish/vendor_completions.d"),
    ] {
        if let Ok(rd) = std::fs::read_dir(r(dir)) {
            let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let name = e.file_name().to_string_lossy().into_owned();
                add(format!("{dest}/{name}"), read(&e.path())?, false);
            }
        }
    }
    Ok(items)
}

const CONFFILES: &[&str] = &[
    "/etc/upkeep/upkeep.toml",
    "/etc/dnf/plugins/upkeep.conf",
    "/etc/dnf/libdnf5-plugins/actions.d/upkeep.actions",
    "/etc/apt/apt.conf.d/50upkeep",
];

fn changelog_text(ctx: &Ctx, deb_version: &str) -> String {
    format!(
        "upkeep ({deb_version}) unstable; urgency=medium\n\n  * Release {v}: upkeep as a package, with its apt, dpkg, rpm and dnf\n    hooks.\n\n -- {MAINTAINER}  Sun, 22 Nov 2026 00:00:00 +0000\n",
        v = ctx.version
    )
}

fn copyright() -> String {
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: upkeep\n\
         Upstream-Contact: {MAINTAINER}\n\
         \n\
         Files: *\n\
         Copyright: 2026 the upkeep authors\n\
         License: Apache-2.0\n\
         \x20On Debian systems, the full text of the Apache License, Version 2.0\n\
         \x20can be found in the file /usr/share/common-licenses/Apache-2.0.\n"
    )
}

fn dpkg_arch() -> Res<String> {
    let o = run_cmd(Command::new("dpkg").arg("--print-architecture"))?;
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The postinst is hooks/dpkg/postinst, whole: the same script the hook
/// tests install.
fn deb_postinst(ctx: &Ctx) -> Res<String> {
    read_str(&ctx.repo.join("hooks/dpkg/postinst"))
}

fn deb_preinst() -> String {
    r#"#!/bin/sh
# upkeep preinst: a reinstall after "remove" puts the apt.conf.d snippet
# back where postrm set it aside.
set -e

APT_SNIPPET="${DPKG_ROOT:-}/etc/apt/apt.conf.d/50upkeep"
case "$1" in
    install|upgrade)
        if [ -e "$APT_SNIPPET.dpkg-remove" ] && [ ! -e "$APT_SNIPPET" ]; then
            mv -f "$APT_SNIPPET.dpkg-remove" "$APT_SNIPPET"
        fi
        ;;
esac

exit 0
"#
    .to_string()
}

fn deb_prerm() -> String {
    r#"#!/bin/sh
# upkeep prerm: stop the lease-recovery timer on the running system.
set -e

if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    deb-systemd-invoke stop upkeep-lease-recover.timer >/dev/null || true
fi

exit 0
"#
    .to_string()
}

fn deb_postrm() -> String {
    r#"#!/bin/sh
# upkeep postrm. purge: remove what upkeep recorded at run time (state,
# leases, journal, log); dpkg itself removes the conffiles.
set -e

APT_SNIPPET="${DPKG_ROOT:-}/etc/apt/apt.conf.d/50upkeep"

case "$1" in
    purge)
        rm -f "$APT_SNIPPET.dpkg-remove"
        rm -rf "${DPKG_ROOT:-}/var/lib/upkeep" "${DPKG_ROOT:-}/var/log/upkeep"
        if [ -z "${DPKG_ROOT:-}" ] && command -v deb-systemd-helper >/dev/null; then
            deb-systemd-helper purge upkeep-lease-recover.timer >/dev/null || true
        fi
        ;;
    remove)
        # The apt.conf.d snippet is a conffile and stays until purge, but
        # the hook it names is gone: set it aside (apt ignores *.dpkg-*
        # files) so apt keeps working; preinst puts it back on reinstall.
        if [ -e "$APT_SNIPPET" ]; then
            mv -f "$APT_SNIPPET" "$APT_SNIPPET.dpkg-remove"
        fi
        if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
            systemctl --system daemon-reload >/dev/null || true
        fi
        ;;
    upgrade|failed-upgrade|abort-install|abort-upgrade|disappear)
        ;;
    *)
        echo "postrm called with unknown argument \`$1'" >&2
        exit 1
        ;;
esac

exit 0
"#
    .to_string()
}

/// Lintian overrides, each with why.
fn lintian_overrides() -> String {
    "# upkeep-hook runs in every apt transaction and is linked statically (no\n\
     # dynamic loader work: the no-op hook costs what /bin/true does). It is a\n\
     # static PIE executable (ET_DYN without DT_NEEDED), not a shared library.\n\
     upkeep: shared-library-lacks-prerequisites [usr/bin/upkeep-hook]\n\
     # upkeep reads dpkg's status file and *.list files itself, by design: it\n\
     # answers for throwaway --root trees and in hooks where dpkg-query is\n\
     # far too slow (bench/owner-lookup); it never writes them.\n\
     upkeep: uses-dpkg-database-directly [usr/bin/*]\n\
     # Not uploaded to Debian: there is no ITP bug to close.\n\
     upkeep: initial-upload-closes-no-bugs *\n"
        .to_string()
}

fn build_deb(ctx: &Ctx) -> Res<PathBuf> {
    let arch = dpkg_arch()?;
    let deb_version = format!("{}-1", ctx.version);
    let mut items = payload(ctx, "/lib/systemd/system", "/usr/lib/python3/dist-packages")?;
    items.push(Item {
        path: "/etc/apt/apt.conf.d/50upkeep".into(),
        data: read(&ctx.repo.join("hooks/apt/50upkeep-guard"))?,
        exec: false,
    });
    items.push(Item {
        path: "/usr/share/doc/upkeep/copyright".into(),
        data: copyright().into_bytes(),
        exec: false,
    });
    items.push(Item {
        path: "/usr/share/doc/upkeep/changelog.Debian.gz".into(),
        data: gzip9(changelog_text(ctx, &deb_version).as_bytes())?,
        exec: false,
    });
    items.push(Item {
        path: "/usr/share/lintian/overrides/upkeep".into(),
        data: lintian_overrides().into_bytes(),
        exec: false,
    });
    items.sort_by(|a, b| a.path.cmp(&b.path));

    let mut data = FileManifest::default();
    let mut md5sums = String::new();
    let mut size = 0u64;
    for it in &items {
        let rel = it.path.trim_start_matches('/');
        data.add_file_entry(rel, FileEntry::new_from_data(it.data.clone(), it.exec))
            .map_err(|e| format!("{rel}: {e}"))?;
        size += (it.data.len() as u64).div_ceil(1024);
        if !CONFFILES.contains(&it.path.as_str()) {
            // Hex digests, two spaces, the path: what dpkg --verify reads.
            let digest = md5::Md5::digest(&it.data);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            md5sums.push_str(&format!("{hex}  {rel}\n"));
        }
    }
    let dirs: BTreeSet<String> = items
        .iter()
        .flat_map(|i| {
            let mut v = Vec::new();
            let mut p = Path::new(&i.path).parent();
            while let Some(d) = p.filter(|d| d != &Path::new("/")) {
                v.push(d.display().to_string());
                p = d.parent();
            }
            v
        })
        .collect();
    size += dirs.len() as u64;

    let mut para = ControlParagraph::default();
    for (k, v) in [
        ("Package", NAME.to_string()),
        ("Version", deb_version.clone()),
        ("Architecture", arch.clone()),
        ("Maintainer", MAINTAINER.to_string()),
        ("Installed-Size", size.to_string()),
        // python3: dnf loads the dnf 4 plugin with it (lintian requires the
        // dependency of any package shipping Python modules).
        (
            "Depends",
            "libc6 (>= 2.34), libgcc-s1 (>= 4.2), python3:any".to_string(),
        ),
        ("Suggests", "dnf".to_string()),
        ("Section", "admin".to_string()),
        ("Priority", "optional".to_string()),
        ("Homepage", "https://example.invalid/upkeep".to_string()),
    ] {
        para.set_field_from_string(Cow::Borrowed(k), Cow::Owned(v));
    }
    let long: Vec<String> = wrap(DESCRIPTION, 72);
    let mut desc = vec![SUMMARY.to_string()];
    desc.extend(long);
    para.set_field(ControlField::from_lines(
        Cow::Borrowed("Description"),
        desc.into_iter(),
    ));
    let mut control = ControlFile::default();
    control.add_paragraph(para);
    let mut control_bytes = Vec::new();
    control
        .write(&mut control_bytes)
        .map_err(|e| e.to_string())?;

    let triggers = read_str(&ctx.repo.join("hooks/dpkg/triggers"))?;
    let mut conffiles: Vec<&str> = CONFFILES
        .iter()
        .copied()
        .filter(|c| items.iter().any(|i| i.path == *c))
        .collect();
    conffiles.sort();
    let mut ctl = FileManifest::default();
    for (name, content, exec) in [
        ("control", control_bytes, false),
        ("md5sums", md5sums.into_bytes(), false),
        (
            "conffiles",
            (conffiles.join("\n") + "\n").into_bytes(),
            false,
        ),
        ("triggers", triggers.into_bytes(), false),
        ("postinst", deb_postinst(ctx)?.into_bytes(), true),
        ("preinst", deb_preinst().into_bytes(), true),
        ("prerm", deb_prerm().into_bytes(), true),
        ("postrm", deb_postrm().into_bytes(), true),
    ] {
        ctl.add_file_entry(name, FileEntry::new_from_data(content, exec))
            .map_err(|e| format!("{name}: {e}"))?;
    }
    let mtime = source_date();
    let mut control_tar = Vec::new();
    write_deb_tar(&mut control_tar, &ctl, mtime).map_err(|e| e.to_string())?;
    let mut data_tar = Vec::new();
    write_deb_tar(&mut data_tar, &data, mtime).map_err(|e| e.to_string())?;
    let comp = DebCompression::Xz(6);
    let control_tar = comp
        .compress(&mut std::io::Cursor::new(control_tar))
        .map_err(|e| e.to_string())?;
    let data_tar = comp
        .compress(&mut std::io::Cursor::new(data_tar))
        .map_err(|e| e.to_string())?;

    let path = ctx.out.join(format!("{NAME}_{deb_version}_{arch}.deb"));
    let tmp = ctx
        .out
        .join(format!(".{NAME}_{deb_version}_{arch}.deb.tmp"));
    {
        let f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let mut ar = ar::Builder::new(f);
        for (name, content) in [
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.xz", control_tar),
            ("data.tar.xz", data_tar),
        ] {
            let mut h = ar::Header::new(name.as_bytes().to_vec(), content.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            ar.append(&h, content.as_slice())
                .map_err(|e| format!("{}: {e}", tmp.display()))?;
        }
        let f = ar.into_inner().map_err(|e| e.to_string())?;
        f.sync_all().map_err(|e| e.to_string())?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// SOURCE_DATE_EPOCH if set, else the time of the last commit's tree: the
/// same input gives the same package.
fn source_date() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_795_000_000)
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + w.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

fn rpm_arch() -> Res<String> {
    let o = run_cmd(Command::new("uname").arg("-m"))?;
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn build_rpm(ctx: &Ctx) -> Res<PathBuf> {
    let arch = rpm_arch()?;
    let top = ctx.out.join(".rpmbuild");
    let _ = std::fs::remove_dir_all(&top);
    let stage = top.join("SOURCES/root");
    // The dnf 4 plugin's directory depends on the target's Python version,
    // unknown when building: the plugin is kept in /usr/share/upkeep and
    // linked into dnf's plugin directory by %post (see the spec).
    let items = payload(ctx, "/usr/lib/systemd/system", "/usr/share/upkeep")?;
    for it in &items {
        let p = stage.join(it.path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().ok_or("parent")?).map_err(|e| e.to_string())?;
        std::fs::write(&p, &it.data).map_err(|e| format!("{}: {e}", p.display()))?;
        use std::os::unix::fs::PermissionsExt;
        let mode = if it.exec { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| e.to_string())?;
    }
    std::fs::create_dir_all(top.join("SPECS")).map_err(|e| e.to_string())?;
    let mut files = String::new();
    for it in &items {
        if CONFFILES.contains(&it.path.as_str()) {
            files.push_str(&format!("%config(noreplace) {}\n", it.path));
        } else {
            files.push_str(&format!("{}\n", it.path));
        }
    }
    for d in [
        "/etc/upkeep",
        "/usr/share/upkeep",
        "/usr/share/upkeep/plugins",
        "/usr/share/upkeep/omnibus-ctl",
        "/usr/share/upkeep/dnf-plugins",
    ] {
        files.push_str(&format!("%dir {d}\n"));
    }
    let rpm_triggers = read_str(&ctx.repo.join("hooks/rpm/upkeep-guard.triggers"))?;
    let dirs = trigger_dirs(ctx)?;
    let spec = format!(
        r#"Name: {NAME}
Version: {version}
Release: 1
Summary: Keeps self-hosted servers safe across package upgrades
License: Apache-2.0
Group: System Environment/Base
Packager: {MAINTAINER}
URL: https://example.invalid/upkeep
# dnf loads the dnf 4 plugin with it.
Requires: python3
Source0: root

%description
{description}

%prep

%build

%install
mkdir -p %{{buildroot}}
cp -a %{{_sourcedir}}/root/. %{{buildroot}}/

{rpm_triggers}
# After a package puts files where the manifests keep package-managed
# product binaries: the same, keyed on the paths.
%filetriggerin -- {dirs}
cat >/dev/null || :
/usr/bin/upkeep-guard rpm-trigger filetriggerin || :

# The dnf 4 plugin, linked into the directory dnf's Python loads plugins
# from (it depends on the Python version, unknown at build time).
%post
d=$(python3 -c 'import os, dnf; print(os.path.join(os.path.dirname(os.path.dirname(dnf.__file__)), "dnf-plugins"))' 2>/dev/null) || d=
if [ -n "$d" ] && [ -d "$d" ]; then
    ln -sf /usr/share/upkeep/dnf-plugins/upkeep.py "$d/upkeep.py" || :
fi

%preun
if [ "$1" = 0 ]; then
    d=$(python3 -c 'import os, dnf; print(os.path.join(os.path.dirname(os.path.dirname(dnf.__file__)), "dnf-plugins"))' 2>/dev/null) || d=
    if [ -n "$d" ] && [ -L "$d/upkeep.py" ]; then
        rm -f "$d/upkeep.py" || :
    fi
fi

%postun
if [ "$1" = 0 ]; then
    rm -rf /var/lib/upkeep /var/log/upkeep || :
fi

%files
%license {license}
{files}
%changelog
* Sun Nov 22 2026 {MAINTAINER} - {version}-1
- upkeep as a package, with its apt, dpkg, rpm and dnf hooks
"#,
        version = ctx.version,
        description = wrap(DESCRIPTION, 72).join("\n"),
        dirs = dirs.join(" "),
        license = "/usr/share/doc/upkeep/LICENSE",
    );
    // The license text, as %license.
    let lic = stage.join("usr/share/doc/upkeep/LICENSE");
    std::fs::create_dir_all(lic.parent().ok_or("parent")?).map_err(|e| e.to_string())?;
    std::fs::write(&lic, copyright()).map_err(|e| e.to_string())?;
    let spec_path = top.join("SPECS/upkeep.spec");
    std::fs::write(&spec_path, spec).map_err(|e| e.to_string())?;
    run_cmd(
        Command::new("rpmbuild")
            .args(["--quiet", "-bb", "--target", &arch])
            .arg("--define")
            .arg(format!("_topdir {}", top.display()))
            .arg("--dbpath")
            .arg(top.join("rpmdb"))
            .args(["--define", "_build_id_links none"])
            // The binaries are already stripped and need no brp scripts.
            .args(["--define", "__os_install_post %{nil}"])
            .args(["--define", "debug_package %{nil}"])
            .args(["--define", "source_date_epoch_from_changelog 0"])
            .env("SOURCE_DATE_EPOCH", source_date().to_string())
            .arg(&spec_path),
    )?;
    let built = top.join(format!("RPMS/{arch}/{NAME}-{}-1.{arch}.rpm", ctx.version));
    let path = ctx.out.join(format!("{NAME}-{}-1.{arch}.rpm", ctx.version));
    std::fs::rename(&built, &path).map_err(|e| format!("{}: {e}", built.display()))?;
    let _ = std::fs::remove_dir_all(&top);
    Ok(path)
}
