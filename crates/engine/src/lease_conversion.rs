//! The product's own in-place conversion a lease is for (its manifest's
//! `[install.lease.conversion]`): before `grant --product` lends anything,
//! the binary's architecture (its ELF header) and its package's must be
//! one the conversion runs on; otherwise the grant is refused and the
//! manual route printed. After restore, whether the conversion happened.

use crate::detect::Install;
use crate::plugin::ConversionSpec;
use std::io::Read;
use upkeep_pkg::arch::{elf_arch, package_arch, ELF_HEAD};
use upkeep_pkg::ManagerKind;
use upkeep_sys::error::{Error, Result};
use upkeep_sys::root::SysRoot;
use upkeep_sys::safe;

/// What the architecture check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arches {
    /// The binary's, from its ELF header, or why it cannot be told.
    pub binary: std::result::Result<String, String>,
    /// The managing package and its architecture (none for `all`/`noarch`
    /// packages, tarballs, or an unreadable database).
    pub package: Option<(String, String)>,
}

/// Expands `{version}`, `{arch}`, `{binary}` and `{package}` in a text of
/// the conversion's.
pub fn expand(text: &str, install: &Install, arch: &str) -> String {
    let binary = install
        .binary
        .as_ref()
        .map(|b| b.path.as_str())
        .unwrap_or("the binary");
    text.replace("{version}", install.version.as_deref().unwrap_or("VERSION"))
        .replace("{arch}", arch)
        .replace("{binary}", binary)
        .replace(
            "{package}",
            install.manager.package.as_deref().unwrap_or("its package"),
        )
}

/// The binary's architecture by its ELF header, read through the safe
/// layer (links resolved inside the root), or why it cannot be told.
fn binary_arch(root: &SysRoot, path: &str) -> std::result::Result<String, String> {
    let (f, _) = match safe::open_file(root, path) {
        Ok(Some(found)) => found,
        Ok(None) => return Err("is not there".into()),
        Err(e) => return Err(format!("cannot be read ({e})")),
    };
    let mut head = Vec::with_capacity(64);
    if let Err(e) = f.take(64).read_to_end(&mut head) {
        return Err(format!("cannot be read ({e})"));
    }
    if head.len() < ELF_HEAD && head.starts_with(b"\x7fELF") {
        return Err("has an ELF header cut short".into());
    }
    elf_arch(&head)
}

/// The managing package's architecture, as its database says.
fn package_of(root: &SysRoot, install: &Install) -> Option<(String, String)> {
    let name = install.manager.package.clone()?;
    let recorded = match install.manager.kind {
        ManagerKind::Dpkg => {
            upkeep_pkg::dpkg::Dpkg::open(root)
                .ok()??
                .package(&name)
                .ok()??
                .architecture?
        }
        ManagerKind::Rpm => upkeep_pkg::rpm::Rpm::open(root)?.arch(&name).ok()??,
        ManagerKind::Tarball => return None,
    };
    Some((name, package_arch(&recorded)?))
}

/// Reads both architectures.
pub fn arches(root: &SysRoot, install: &Install) -> Arches {
    let binary = match &install.binary {
        Some(b) => binary_arch(root, &b.path),
        None => Err("is not there".into()),
    };
    Arches {
        binary,
        package: package_of(root, install),
    }
}

fn listed(archs: &[String]) -> String {
    match archs {
        [] => "no architecture".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `Ok` when the conversion runs here; otherwise the refusal, naming what
/// was found and the manual route, in full sentences.
pub fn check(
    c: &ConversionSpec,
    install: &Install,
    found: &Arches,
) -> std::result::Result<(), String> {
    let runs = |a: &str| c.architectures.iter().any(|x| x == a);
    let binary = install
        .binary
        .as_ref()
        .map(|b| b.path.as_str())
        .unwrap_or("the binary");
    let only = format!("{} runs only on {}", c.name, listed(&c.architectures));
    let package_wrong = found
        .package
        .as_ref()
        .filter(|(_, a)| !runs(a))
        .map(|(p, a)| format!("package {p} is built for {a}"));
    let (head, arch) = match (&found.binary, package_wrong) {
        (Ok(a), None) if runs(a) => return Ok(()),
        (Ok(a), None) => (format!("{only}, and {binary} is built for {a}."), a.clone()),
        (Ok(a), Some(p)) if runs(a) => (
            format!("{only}, and {p}, although {binary} is built for {a}."),
            found.package.clone().map(|(_, a)| a).unwrap_or_default(),
        ),
        (Ok(a), Some(p)) => (
            format!("{only}, and {binary} is built for {a} ({p})."),
            a.clone(),
        ),
        (Err(why), p) => (
            format!(
                "{only}, and which architecture {binary} is built for cannot be told: it {why}{}.",
                p.map(|p| format!(" ({p})")).unwrap_or_default()
            ),
            found
                .package
                .clone()
                .map(|(_, a)| a)
                .unwrap_or_else(|| "ARCH".into()),
        ),
    };
    let mut text = format!("{head} Nothing was lent.");
    for m in &c.manual {
        text.push(' ');
        text.push_str(&expand(m, install, &arch));
    }
    Err(text)
}

/// Refuses (exit 3) where the conversion does not run; otherwise the
/// notices to print at grant.
pub fn before_grant(root: &SysRoot, install: &Install) -> Result<Vec<String>> {
    let Some(c) = install.lease.as_ref().and_then(|l| l.conversion.as_ref()) else {
        return Ok(Vec::new());
    };
    check(c, install, &arches(root, install)).map_err(Error::Refused)?;
    let arch = c.architectures.first().map(String::as_str).unwrap_or("");
    Ok(c.notices.iter().map(|n| expand(n, install, arch)).collect())
}

/// After restore: whether the product's conversion happened to the lent
/// binary at `path`, by the manifest's edition rules on what stands there
/// now. `None` when the product declares no conversion or is not found.
pub fn verdict(root: &SysRoot, product: &str, path: &str, changed: bool) -> Option<String> {
    let ctx = crate::context::Context::open(root).ok()?;
    let names = [product.to_string()];
    let report = ctx.detect(&names, &Default::default()).ok()?;
    let install = report
        .installs
        .iter()
        .find(|i| i.binary.as_ref().is_some_and(|b| b.path == path))?;
    let target = install
        .lease
        .as_ref()?
        .conversion
        .as_ref()?
        .edition
        .clone()?;
    let plugin = ctx.select(&names).ok()?.into_iter().next()?;
    let title = plugin.manifest.edition_title(&target);
    Some(if !changed {
        "unchanged".to_string()
    } else if install.edition == target {
        format!("converted to {title}")
    } else {
        format!("changed, but it is {}, not {title}", install.edition_title)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{FileInfo, Manager};
    use crate::plugin::{parse_manifest, Edition, BUILTIN};
    use std::path::Path;

    /// The Omnibus install of the built-in Mattermost manifest, version
    /// 10.11.4, managed by gitlab-ee.
    fn omnibus() -> Install {
        let (name, text) = BUILTIN
            .iter()
            .find(|(n, _)| n.starts_with("mattermost"))
            .expect("built in");
        let m = parse_manifest(Path::new(name), text).expect("parses");
        let spec = m
            .installs
            .iter()
            .find(|i| i.kind == "gitlab-omnibus")
            .expect("omnibus");
        Install {
            product: "mattermost".into(),
            kind: "gitlab-omnibus".into(),
            version: Some("10.11.4".into()),
            edition: Edition::from("team"),
            edition_title: "Team Edition".into(),
            dir: None,
            config: None,
            binary: Some(FileInfo {
                path: "/opt/gitlab/embedded/bin/mattermost".into(),
                owner: "root".into(),
                group: "root".into(),
                uid: 0,
                gid: 0,
                mode: "0755".into(),
                size: 1,
            }),
            manager: Manager {
                kind: ManagerKind::Dpkg,
                package: Some("gitlab-ee".into()),
                version: Some("18.11.1-ee.0".into()),
            },
            modified_from_package: None,
            embedded_enabled: None,
            host: None,
            services: Vec::new(),
            services_missing: Vec::new(),
            service_manager: None,
            user: None,
            lease: spec.lease.clone(),
            ships_edition: None,
            guard: None,
        }
    }

    fn conversion(i: &Install) -> &ConversionSpec {
        i.lease
            .as_ref()
            .and_then(|l| l.conversion.as_ref())
            .expect("declared")
    }

    const MANUAL: &str = "By hand: download mattermost-10.11.4-linux-arm64.tar.gz and its .sig from https://releases.mattermost.com/10.11.4/ (if Mattermost publishes that architecture for 10.11.4) and check it with `gpg --verify`; run `gitlab-ctl stop mattermost`; put mattermost/bin/mattermost from the archive in place of /opt/gitlab/embedded/bin/mattermost as root with the owner and mode it has now (`install -o root -g root -m 0755` for the package's); run `gitlab-ctl start mattermost`. An upgrade or reinstall of gitlab-ee, or a reconfigure, puts Team Edition back afterwards: `upkeep-guard check` names what will.";

    #[test]
    fn an_arm64_install_is_refused_with_the_manual_route_in_full_sentences() {
        let i = omnibus();
        let c = conversion(&i);
        let arm = |binary: std::result::Result<&str, &str>, package: Option<&str>| Arches {
            binary: binary.map(str::to_string).map_err(str::to_string),
            package: package.map(|a| ("gitlab-ee".to_string(), a.to_string())),
        };
        assert_eq!(check(c, &i, &arm(Ok("amd64"), Some("amd64"))), Ok(()));
        assert_eq!(check(c, &i, &arm(Ok("amd64"), None)), Ok(()));
        assert_eq!(
            check(c, &i, &arm(Ok("arm64"), Some("arm64"))),
            Err(format!("Mattermost's in-place upgrade to Enterprise Edition (System Console > Edition and License) runs only on amd64, and /opt/gitlab/embedded/bin/mattermost is built for arm64 (package gitlab-ee is built for arm64). Nothing was lent. {MANUAL}"))
        );
        assert_eq!(
            check(c, &i, &arm(Ok("amd64"), Some("arm64"))),
            Err(format!("Mattermost's in-place upgrade to Enterprise Edition (System Console > Edition and License) runs only on amd64, and package gitlab-ee is built for arm64, although /opt/gitlab/embedded/bin/mattermost is built for amd64. Nothing was lent. {MANUAL}"))
        );
        assert_eq!(
            check(c, &i, &arm(Err("is not an ELF binary"), Some("arm64"))),
            Err(format!("Mattermost's in-place upgrade to Enterprise Edition (System Console > Edition and License) runs only on amd64, and which architecture /opt/gitlab/embedded/bin/mattermost is built for cannot be told: it is not an ELF binary (package gitlab-ee is built for arm64). Nothing was lent. {MANUAL}"))
        );
        let unknown = check(c, &i, &arm(Err("is not an ELF binary"), None)).unwrap_err();
        assert!(
            unknown.contains("it is not an ELF binary. Nothing was lent. By hand: download mattermost-10.11.4-linux-ARCH.tar.gz"),
            "{unknown}"
        );
    }

    #[test]
    fn grant_says_what_the_upgrader_downloads_and_how_a_proxy_applies() {
        let i = omnibus();
        let c = conversion(&i);
        let notes: Vec<String> = c.notices.iter().map(|n| expand(n, &i, "amd64")).collect();
        assert_eq!(
            notes,
            [
                "Mattermost's in-place upgrade downloads the Enterprise Edition release of the same version from the internet, https://releases.mattermost.com/10.11.4/mattermost-10.11.4-linux-amd64.tar.gz and its signature (.sig), so the Mattermost server itself must reach releases.mattermost.com over HTTPS.",
                "The server makes that download with Go's default HTTP client, which uses a proxy only from the server process's environment (HTTPS_PROXY or https_proxy, with NO_PROXY for exceptions) as it was when the server started; nothing in config.json or the System Console sets a proxy for it.",
                "Under GitLab Omnibus that environment is mattermost['env'] in /etc/gitlab/gitlab.rb (for example mattermost['env'] = { 'HTTPS_PROXY' => 'http://PROXY:PORT', 'NO_PROXY' => 'localhost,127.0.0.1' }), which gitlab-ctl reconfigure writes to /opt/gitlab/etc/mattermost/env; set it and reconfigure before the upgrade, because a reconfigure afterwards puts Team Edition back.",
            ]
        );
        for n in notes.iter().chain(c.manual.iter()) {
            assert!(n.ends_with('.'), "a full sentence: {n}");
        }
    }
}
