//! Throwaway system roots for the integration tests, with the real dpkg,
//! dpkg-deb, rpm and rpmbuild working on them. Nothing here reads or writes
//! the machine's own /etc, /opt, /var or package databases.
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // tests build their roots by path

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod scenario;
#[allow(unused_imports)] // not every test file builds scenarios
pub use scenario::*;

pub const ENTERPRISE_MARKER: &str = "github.com/mattermost/enterprise/";

/// ELF machine numbers (`e_machine`) the tests build headers for.
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

/// The first 20 bytes of a 64-bit little-endian ELF executable for
/// `machine`: all that is read of a binary's architecture (no cross
/// compiler needed).
pub fn elf_header(machine: u16) -> Vec<u8> {
    let mut h = b"\x7fELF\x02\x01\x01".to_vec();
    h.resize(16, 0); // the rest of e_ident
    h.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    h.extend_from_slice(&machine.to_le_bytes());
    h
}

/// Bytes standing in for a Mattermost binary of the given edition (the real
/// one is a 200 MB Go binary; only the marker matters to upkeep), built
/// for x86-64 as the real one's ELF header says.
pub fn mattermost_binary(enterprise: bool) -> Vec<u8> {
    let mut b = elf_header(EM_X86_64);
    b.extend_from_slice(b" stand-in mattermost\0");
    b.extend(std::iter::repeat_n(0u8, 4096));
    if enterprise {
        b.extend_from_slice(ENTERPRISE_MARKER.as_bytes());
        b.extend_from_slice(b"ldap\0");
    } else {
        b.extend_from_slice(b"github.com/mattermost/mattermost/server/v8/channels\0");
    }
    b
}

pub struct TestRoot {
    pub dir: tempfile::TempDir,
}

impl TestRoot {
    /// An empty root with a dpkg admindir and passwd/group files.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("upkeep-root-")
            .tempdir()
            .expect("tempdir");
        let r = TestRoot { dir };
        for d in [
            "var/lib/dpkg/info",
            "var/lib/dpkg/updates",
            "var/lib/dpkg/triggers",
            "var/log",
            "etc",
            "tmp",
        ] {
            fs::create_dir_all(r.path(d)).expect("mkdir");
        }
        fs::write(r.path("var/lib/dpkg/status"), "").expect("status");
        fs::write(
            r.path("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\ngit:x:998:998::/var/opt/gitlab:/bin/sh\nmattermost:x:994:994::/var/opt/gitlab/mattermost:/bin/sh\n",
        )
        .expect("passwd");
        fs::write(
            r.path("etc/group"),
            "root:x:0:\ngit:x:998:\nmattermost:x:994:\n",
        )
        .expect("group");
        r
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, inside: &str) -> PathBuf {
        self.dir.path().join(inside.trim_start_matches('/'))
    }

    pub fn write(&self, inside: &str, content: impl AsRef<[u8]>, mode: u32) {
        let p = self.path(inside);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, content).expect("write");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// Real dpkg on this root. Maintainer scripts run chrootless (the root
    /// has no shell of its own); the log stays in the root.
    pub fn dpkg(&self, args: &[&str]) -> Output {
        let root = self.root().display().to_string();
        let out = Command::new("dpkg")
            .arg(format!("--root={root}"))
            .arg("--force-script-chrootless")
            .arg("--force-not-root")
            .arg(format!("--log={root}/var/log/dpkg.log"))
            .args(args)
            .env("DPKG_ROOT", "")
            .output()
            .expect("run dpkg");
        assert!(
            out.status.success(),
            "dpkg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Makes the root able to run rpm scriptlets (rpm chroots into it):
    /// busybox-static as /bin/sh, and an empty rpm database.
    pub fn init_rpm(&self) {
        fs::create_dir_all(self.path("bin")).expect("bin");
        fs::copy("/bin/busybox", self.path("bin/sh"))
            .expect("busybox-static is needed for rpm tests");
        let st = Command::new("rpm")
            .args(["--root"])
            .arg(self.root())
            .args(["--dbpath", "/var/lib/rpm", "--initdb"])
            .status()
            .expect("rpm");
        assert!(st.success());
    }

    pub fn rpm(&self, args: &[&str]) -> Output {
        let out = Command::new("rpm")
            .arg("--root")
            .arg(self.root())
            .args(["--dbpath", "/var/lib/rpm"])
            .args(args)
            .output()
            .expect("run rpm");
        assert!(
            out.status.success(),
            "rpm {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

pub struct PkgFile<'a> {
    pub path: &'a str,
    pub content: Vec<u8>,
    pub mode: u32,
}

pub fn file<'a>(path: &'a str, content: impl AsRef<[u8]>, mode: u32) -> PkgFile<'a> {
    PkgFile {
        path,
        content: content.as_ref().to_vec(),
        mode,
    }
}

/// Builds a .deb with the real dpkg-deb. `extra` is added to DEBIAN/ (e.g.
/// `("triggers", "...")` or a maintainer script); `("control", "Conflicts: x\n")`
/// adds fields to the control file.
pub fn build_deb(
    out_dir: &Path,
    name: &str,
    version: &str,
    files: &[PkgFile<'_>],
    extra: &[(&str, &str)],
) -> PathBuf {
    let tree = out_dir.join(format!("{name}_{version}.tree"));
    let _ = fs::remove_dir_all(&tree);
    fs::create_dir_all(tree.join("DEBIAN")).expect("mkdir");
    for f in files {
        let p = tree.join(f.path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, &f.content).expect("write");
        fs::set_permissions(&p, fs::Permissions::from_mode(f.mode)).expect("chmod");
    }
    fs::write(
        tree.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: upkeep tests <tests@upkeep.invalid>\nDescription: upkeep test package\n"
        ),
    )
    .expect("control");
    // md5sums as dh_md5sums writes them, so dpkg records them.
    let mut sums = String::new();
    for f in files {
        let digest = Command::new("md5sum")
            .arg(tree.join(f.path.trim_start_matches('/')))
            .output()
            .expect("md5sum");
        let hex = String::from_utf8_lossy(&digest.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        sums.push_str(&format!("{hex}  {}\n", f.path.trim_start_matches('/')));
    }
    fs::write(tree.join("DEBIAN/md5sums"), sums).expect("md5sums");
    for (n, text) in extra {
        let p = tree.join("DEBIAN").join(n);
        if *n == "control" {
            let mut c = fs::read_to_string(&p).expect("control");
            c.push_str(text);
            fs::write(&p, c).expect("control");
            continue;
        }
        fs::write(&p, text).expect("extra");
        let mode = if text.starts_with("#!") { 0o755 } else { 0o644 };
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let deb = out_dir.join(format!("{name}_{version}_all.deb"));
    let st = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zgzip", "--build"])
        .arg(&tree)
        .arg(&deb)
        .stdout(Stdio::null())
        .status()
        .expect("dpkg-deb");
    assert!(st.success(), "dpkg-deb failed");
    deb
}

/// Builds a noarch .rpm with the real rpmbuild. `scriptlets` is spec text
/// added verbatim (e.g. `%triggerin -- gitlab-ce`).
pub fn build_rpm(
    out_dir: &Path,
    name: &str,
    version: &str,
    release: &str,
    files: &[PkgFile<'_>],
    scriptlets: &str,
) -> PathBuf {
    build_rpm_for("noarch", out_dir, name, version, release, files, scriptlets)
}

/// [`build_rpm`] for one architecture (`aarch64`: rpmbuild's `--target`;
/// nothing is compiled, so no cross compiler is needed).
pub fn build_rpm_for(
    arch: &str,
    out_dir: &Path,
    name: &str,
    version: &str,
    release: &str,
    files: &[PkgFile<'_>],
    scriptlets: &str,
) -> PathBuf {
    let top = out_dir.join(format!("rpmbuild-{name}-{version}-{release}"));
    let _ = fs::remove_dir_all(&top);
    let src = top.join("SOURCES/root");
    for f in files {
        let p = src.join(f.path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, &f.content).expect("write");
        fs::set_permissions(&p, fs::Permissions::from_mode(f.mode)).expect("chmod");
    }
    fs::create_dir_all(top.join("SPECS")).expect("mkdir");
    let list: String = files.iter().map(|f| format!("{}\n", f.path)).collect();
    let build_arch = if arch == "noarch" {
        "BuildArch: noarch\n"
    } else {
        ""
    };
    let spec = format!(
        "Name: {name}\nVersion: {version}\nRelease: {release}\nSummary: upkeep test package\nLicense: MIT\n{build_arch}\
         %description\nupkeep test package\n%install\nmkdir -p %{{buildroot}}\ncp -a %{{_sourcedir}}/root/. %{{buildroot}}/\n\
         {scriptlets}\n%files\n{list}"
    );
    let spec_path = top.join("SPECS/pkg.spec");
    let target: &[&str] = if arch == "noarch" {
        &[]
    } else {
        &["--target", arch]
    };
    fs::write(&spec_path, spec).expect("spec");
    let out = Command::new("rpmbuild")
        .args(["--quiet", "-bb", "--define"])
        .arg(format!("_topdir {}", top.display()))
        // Its own database: rpmbuild opens one, and Debian's default is the
        // machine's ~/.rpmdb.
        .arg("--dbpath")
        .arg(top.join("rpmdb"))
        .args([
            "--define",
            "_build_id_links none",
            "--define",
            "__os_install_post %{nil}",
        ])
        .args(["--define", "_binaries_in_noarch_packages_terminate_build 0"])
        .args(target)
        .arg(&spec_path)
        .output()
        .expect("rpmbuild");
    assert!(
        out.status.success(),
        "rpmbuild failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    top.join(format!("RPMS/{arch}/{name}-{version}-{release}.{arch}.rpm"))
}

pub fn bin(name: &str) -> PathBuf {
    let p = match name {
        "upkeep-detect" => env!("CARGO_BIN_EXE_upkeep-detect"),
        "upkeep-lease" => env!("CARGO_BIN_EXE_upkeep-lease"),
        "upkeep-embedded" => env!("CARGO_BIN_EXE_upkeep-embedded"),
        "upkeep-reconfigure" => env!("CARGO_BIN_EXE_upkeep-reconfigure"),
        "upkeep-guard" => env!("CARGO_BIN_EXE_upkeep-guard"),
        "upkeep-upgrade" => env!("CARGO_BIN_EXE_upkeep-upgrade"),
        "upkeep-maintscript" => env!("CARGO_BIN_EXE_upkeep-maintscript"),
        "upkeep-hook" => env!("CARGO_BIN_EXE_upkeep-hook"),
        other => panic!("unknown binary {other}"),
    };
    PathBuf::from(p)
}

/// Runs an upkeep binary with a clean environment (no $DPKG_ROOT or
/// plugin directory leaking in from the caller).
pub fn upkeep(name: &str, args: &[&str]) -> Output {
    upkeep_env(name, args, &[])
}

/// The same, with these variables set (after the cleaning, so a test may
/// set $DPKG_ROOT itself).
pub fn upkeep_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin(name));
    c.args(args)
        .env_remove("DPKG_ROOT")
        .env_remove("UPKEEP_PLUGIN_DIR")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run upkeep binary")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(o), stderr(o)))
}

/// Asserts no Rust panic reached the user.
pub fn assert_no_panic(o: &Output) {
    let e = stderr(o);
    assert!(!e.contains("panicked"), "panic: {e}");
    assert_ne!(o.status.code(), Some(101), "panic exit: {e}");
    assert!(o.status.code().is_some(), "killed by a signal: {e}");
}

pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

impl TestRoot {
    /// Real apt working on this root: its own APT_CONFIG (so the machine's
    /// /etc/apt and its hooks stay out), dpkg with --root, scripts chrootless.
    /// `apt_conf_d` files are placed in the root's etc/apt/apt.conf.d.
    pub fn init_apt(&self, apt_conf_d: &[(&str, String)]) -> PathBuf {
        for d in [
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/sources.list.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/log/apt",
        ] {
            fs::create_dir_all(self.path(d)).expect("mkdir");
        }
        fs::write(self.path("etc/apt/sources.list"), "").expect("sources");
        let root = self.root().display();
        // Not etc/apt/apt.conf: apt reads Dir::Etc::main again after APT_CONFIG.
        let conf = self.path("etc/apt-test.conf");
        fs::write(
            &conf,
            format!(
                "Dir \"{root}/\";\nDir::State::status \"{root}/var/lib/dpkg/status\";\nDir::Bin::dpkg \"/usr/bin/dpkg\";\n\
                 DPkg::Options {{ \"--root={root}\"; \"--force-script-chrootless\"; \"--log={root}/var/log/dpkg.log\"; }};\n\
                 APT::Sandbox::User \"root\";\n"
            ),
        )
        .expect("apt conf");
        for (name, text) in apt_conf_d {
            fs::write(self.path(&format!("etc/apt/apt.conf.d/{name}")), text).expect("conf.d");
        }
        conf
    }

    /// `apt-get ARGS` on this root, stdout and stderr in one stream so the
    /// order of the hook's warnings and dpkg's lines can be checked.
    pub fn apt_get(&self, conf: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg("exec apt-get -y -q \"$@\" 2>&1")
            .arg("sh")
            .args(args);
        c.env("APT_CONFIG", conf)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env_remove("DPKG_ROOT");
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdin(Stdio::null()).output().expect("apt-get")
    }

    /// The version dpkg's status says is installed.
    pub fn installed_version(&self, pkg: &str) -> Option<String> {
        let status = fs::read_to_string(self.path("var/lib/dpkg/status")).ok()?;
        status.split("\n\n").find_map(|para| {
            let mut name = None;
            let mut version = None;
            let mut installed = false;
            for l in para.lines() {
                if let Some(v) = l.strip_prefix("Package: ") {
                    name = Some(v);
                } else if let Some(v) = l.strip_prefix("Version: ") {
                    version = Some(v.to_string());
                } else if l == "Status: install ok installed" {
                    installed = true;
                }
            }
            (name == Some(pkg) && installed)
                .then_some(version)
                .flatten()
        })
    }
}

impl TestRoot {
    /// busybox (static, from Debian's busybox-static) as the root's /bin/sh
    /// and the few tools the gitlab-ctl stand-in uses, so that it can run
    /// inside the root, where upkeep runs the root's own commands (chroot).
    pub fn install_busybox(&self) {
        self.write(
            "/bin/busybox",
            fs::read("/bin/busybox").expect("busybox-static installed"),
            0o755,
        );
        for tool in ["sh", "grep", "tail", "cp", "mkdir", "ln", "rm", "cat"] {
            let link = self.path(&format!("bin/{tool}"));
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink("busybox", link).expect("ln");
        }
        fs::create_dir_all(self.path("var/log")).expect("mkdir");
    }

    /// The machine's ruby as the root's /usr/bin/ruby, with the shared
    /// libraries it links (enough for `ruby --disable-gems`), so the
    /// gitlab-ctl stand-in can evaluate gitlab.rb inside the root.
    pub fn install_ruby(&self) {
        let ruby = fs::canonicalize(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|d| d.join("ruby"))
                .find(|p| p.is_file())
                .expect("ruby on PATH"),
        )
        .expect("ruby");
        self.write("/usr/bin/ruby", fs::read(&ruby).expect("ruby"), 0o755);
        let ldd = Command::new("ldd").arg(&ruby).output().expect("ldd");
        for lib in String::from_utf8_lossy(&ldd.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
        {
            self.write(lib, fs::read(lib).expect("lib"), 0o755);
        }
    }
}
