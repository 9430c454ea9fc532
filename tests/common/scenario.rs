//! Scenario builders for throwaway roots: one place that knows what an
//! Omnibus install, a tarball install or an example root looks like, so
//! the test files describe what they need instead of copying set-up.

use super::*;

/// The Mattermost binary GitLab's package ships.
pub const MM_BIN: &str = "/opt/gitlab/embedded/bin/mattermost";

/// What GitLab's package carries for Mattermost at GitLab `gitlab_version`
/// (upstream version, e.g. `18.11.1`): the binary (Team or Enterprise),
/// its VERSION, and GitLab's version manifest.
pub fn gitlab_package_files(gitlab_version: &str, enterprise: bool) -> Vec<PkgFile<'static>> {
    vec![
        file(MM_BIN, mattermost_binary(enterprise), 0o755),
        file(
            "/opt/gitlab/embedded/service/mattermost/VERSION",
            "10.11.4\n",
            0o644,
        ),
        file(
            "/opt/gitlab/version-manifest.json",
            format!("{{\"build_version\": \"{gitlab_version}\"}}"),
            0o644,
        ),
    ]
}

/// An Omnibus root: GitLab with its bundled Mattermost.
pub struct Omnibus {
    version: String,
    enterprise: bool,
    gitlab_rb: Option<String>,
    runit_link: bool,
}

impl Omnibus {
    /// GitLab `version` (upstream), Team Edition Mattermost, no gitlab.rb.
    pub fn new(version: &str) -> Self {
        Omnibus {
            version: version.to_string(),
            enterprise: false,
            gitlab_rb: None,
            runit_link: false,
        }
    }

    /// The binary converted in place to Enterprise Edition.
    pub fn enterprise(mut self) -> Self {
        self.enterprise = true;
        self
    }

    /// `/etc/gitlab/gitlab.rb` with this text (root, 0600).
    pub fn gitlab_rb(mut self, text: &str) -> Self {
        self.gitlab_rb = Some(text.to_string());
        self
    }

    /// Mattermost's runit service link, as when GitLab runs it.
    pub fn runit_link(mut self) -> Self {
        self.runit_link = true;
        self
    }

    /// The files written as they are, no package database entry.
    pub fn files_only(self) -> TestRoot {
        let r = TestRoot::new();
        for f in gitlab_package_files(&self.version, self.enterprise) {
            r.write(f.path, &f.content, f.mode);
        }
        self.finish(r)
    }

    /// Installed by the real dpkg as `package` `deb_version`.
    pub fn dpkg_installed(self, package: &str, deb_version: &str) -> TestRoot {
        let r = TestRoot::new();
        let work = tempfile::tempdir().expect("tmp");
        // Always Team in the package: Omnibus ships Team Edition.
        let deb = build_deb(
            work.path(),
            package,
            deb_version,
            &gitlab_package_files(&self.version, false),
            &[],
        );
        let o = r.dpkg(&["-i", deb.to_str().expect("utf8")]);
        assert!(o.status.success(), "dpkg -i: {}", stderr(&o));
        if self.enterprise {
            r.write(MM_BIN, mattermost_binary(true), 0o755);
        }
        self.finish(r)
    }

    fn finish(self, r: TestRoot) -> TestRoot {
        if let Some(text) = &self.gitlab_rb {
            r.write("/etc/gitlab/gitlab.rb", text, 0o600);
        }
        if self.runit_link {
            r.write("/opt/gitlab/sv/mattermost/run", "#!/bin/sh\n", 0o755);
            fs::create_dir_all(r.path("opt/gitlab/service")).expect("mkdir");
            std::os::unix::fs::symlink(
                "/opt/gitlab/sv/mattermost",
                r.path("opt/gitlab/service/mattermost"),
            )
            .expect("ln");
        }
        r
    }
}

/// A copy of one of the example roots in `examples/`, to change freely.
pub fn example_copy(name: &str) -> tempfile::TempDir {
    let t = tempfile::Builder::new()
        .prefix("upkeep-example-")
        .tempdir()
        .expect("tempdir");
    let src = examples_dir().join(name);
    let ok = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(t.path())
        .status()
        .expect("cp");
    assert!(ok.success(), "cp -a {}", src.display());
    t
}
