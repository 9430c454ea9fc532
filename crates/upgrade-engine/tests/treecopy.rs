//! Backup copies of trees (`treecopy`): on the test's own temporary
//! directory (ext4 or whatever /tmp is: no cloning, so every file is read,
//! hashed and written) and on an XFS loop image made with reflink
//! (Debian's xfsprogs; mkfs.xfs and a loop mount, as root), where files are
//! cloned and proven by their shared extent maps. Every copy is read back;
//! a byte changed in the copy afterwards must fail the verification.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)] // tests build their roots by path

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use upkeep_sys::SysRoot;
use upkeep_upgrade_engine::{fsops, treecopy};

fn tree(root: &Path) {
    let data = root.join("src/data");
    fs::create_dir_all(data.join("users/1")).unwrap();
    fs::create_dir_all(data.join("empty")).unwrap();
    fs::write(data.join("users/1/avatar.png"), b"png").unwrap();
    let big: Vec<u8> = (0..5u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(data.join("users/1/big.bin"), &big).unwrap();
    fs::write(data.join("zero"), b"").unwrap();
    fs::set_permissions(
        data.join("users/1/avatar.png"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    fs::set_permissions(data.join("users"), fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("users/1/avatar.png", data.join("link")).unwrap();
    std::os::unix::fs::chown(data.join("users/1/big.bin"), Some(994), Some(995)).unwrap();
    let st = Command::new("setcap")
        .arg("cap_net_bind_service=+ep")
        .arg(data.join("users/1/big.bin"))
        .status()
        .unwrap();
    assert!(st.success(), "setcap (libcap2-bin)");
}

fn getcap(p: &Path) -> String {
    let o = Command::new("getcap").arg(p).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string()
}

/// Copies, writes the lists, verifies; returns the list names written.
fn back_up(dir: &Path) -> (SysRoot, Vec<String>) {
    tree(dir);
    let root = SysRoot::new(dir);
    fs::create_dir_all(dir.join("backup")).unwrap();
    let mut sums = fsops::Sums::new();
    fsops::copy_tree(
        &root,
        &dir.join("src/data"),
        &dir.join("backup/data"),
        "data",
        &mut sums,
    )
    .unwrap();
    sums.write(&root, &dir.join("backup")).unwrap();
    treecopy::verify(&root, &dir.join("backup")).unwrap();
    let b = dir.join("backup/data");
    assert_eq!(fs::read(b.join("users/1/avatar.png")).unwrap(), b"png");
    assert_eq!(
        fs::read(b.join("users/1/big.bin")).unwrap(),
        fs::read(dir.join("src/data/users/1/big.bin")).unwrap()
    );
    let m = fs::metadata(b.join("users/1/big.bin")).unwrap();
    assert_eq!((m.uid(), m.gid()), (994, 995));
    assert_eq!(
        getcap(&b.join("users/1/big.bin")),
        "cap_net_bind_service=ep"
    );
    assert_eq!(
        fs::metadata(b.join("users/1/avatar.png")).unwrap().mode() & 0o7777,
        0o640
    );
    assert_eq!(
        fs::metadata(b.join("users")).unwrap().mode() & 0o7777,
        0o750
    );
    assert_eq!(
        fs::read_link(b.join("link")).unwrap(),
        Path::new("users/1/avatar.png")
    );
    assert!(b.join("empty").is_dir());
    let lists = ["SHA256SUMS", "CLONES"]
        .into_iter()
        .filter(|n| dir.join("backup").join(n).exists())
        .map(String::from)
        .collect();
    (root, lists)
}

/// Overwrites one byte of the copy in place, keeping its size.
fn tamper(p: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = fs::OpenOptions::new().write(true).open(p).unwrap();
    f.seek(SeekFrom::Start(4096)).unwrap();
    f.write_all(b"X").unwrap();
    f.sync_all().unwrap();
}

#[test]
fn a_copy_without_cloning_is_hashed_and_read_back() {
    let t = tempfile::tempdir().unwrap();
    let (root, lists) = back_up(t.path());
    // Whatever /tmp is, a non-cloning filesystem lists every file here.
    let sums = fs::read_to_string(t.path().join("backup/SHA256SUMS")).unwrap();
    if lists == ["SHA256SUMS"] {
        assert_eq!(sums.lines().count(), 3, "{sums}");
        let o = Command::new("sha256sum")
            .arg("-c")
            .arg("--quiet")
            .arg("SHA256SUMS")
            .current_dir(t.path().join("backup"))
            .status()
            .unwrap();
        assert!(o.success(), "sha256sum -c agrees with SHA256SUMS");
    }
    tamper(&t.path().join("backup/data/users/1/big.bin"));
    let e = treecopy::verify(&root, &t.path().join("backup")).unwrap_err();
    assert!(
        e.to_string()
            .contains("data/users/1/big.bin does not match"),
        "{e}"
    );
}

#[test]
fn a_malformed_list_is_refused_naming_the_line() {
    let t = tempfile::tempdir().unwrap();
    let (root, _) = back_up(t.path());
    fs::write(
        t.path().join("backup/SHA256SUMS"),
        format!("{}  ../etc/shadow\n", "0".repeat(64)),
    )
    .unwrap();
    let e = treecopy::verify(&root, &t.path().join("backup")).unwrap_err();
    assert_eq!(e.exit_code().code(), 65, "{e}");
    assert!(e.to_string().contains("SHA256SUMS:1"), "{e}");
}

struct Xfs {
    dir: tempfile::TempDir,
    _img: tempfile::NamedTempFile,
}

impl Drop for Xfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn xfs() -> Xfs {
    let img = tempfile::NamedTempFile::new_in("/var/tmp").unwrap();
    img.as_file().set_len(320 << 20).unwrap();
    let st = Command::new("mkfs.xfs")
        .args(["-q", "-m", "reflink=1"])
        .arg(img.path())
        .status()
        .unwrap();
    assert!(
        st.success(),
        "mkfs.xfs (xfsprogs, installed by scripts/test)"
    );
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("mount")
        .args(["-o", "loop"])
        .arg(img.path())
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success(), "a loop mount (the tests run as root)");
    Xfs { dir, _img: img }
}

#[test]
fn on_a_reflink_filesystem_files_are_cloned_and_proven_by_extents() {
    let x = xfs();
    let (root, lists) = back_up(x.dir.path());
    assert_eq!(lists, ["SHA256SUMS", "CLONES"]);
    let clones = fs::read_to_string(x.dir.path().join("backup/CLONES")).unwrap();
    assert_eq!(clones.lines().count(), 3, "every file was cloned: {clones}");
    assert!(clones.contains("  data/users/1/big.bin\n"), "{clones}");
    assert_eq!(
        fs::read_to_string(x.dir.path().join("backup/SHA256SUMS")).unwrap(),
        ""
    );
    // Writing the clone (even one byte) gives it blocks of its own.
    tamper(&x.dir.path().join("backup/data/users/1/big.bin"));
    let e = treecopy::verify(&root, &x.dir.path().join("backup")).unwrap_err();
    assert!(
        e.to_string()
            .contains("data/users/1/big.bin does not match"),
        "{e}"
    );
}

#[test]
fn a_change_to_the_source_after_cloning_leaves_the_backup_valid() {
    let x = xfs();
    let (root, _) = back_up(x.dir.path());
    tamper(&x.dir.path().join("src/data/users/1/big.bin"));
    treecopy::verify(&root, &x.dir.path().join("backup")).unwrap();
    assert_ne!(
        fs::read(x.dir.path().join("src/data/users/1/big.bin")).unwrap(),
        fs::read(x.dir.path().join("backup/data/users/1/big.bin")).unwrap()
    );
}

#[test]
fn a_tree_that_holds_its_own_copy_is_refused_not_copied_without_end() {
    let t = tempfile::tempdir().unwrap();
    tree(t.path());
    let root = SysRoot::new(t.path());
    let mut sums = fsops::Sums::new();
    let e = fsops::copy_tree(
        &root,
        &t.path().join("src"),
        &t.path().join("src/data/backup"),
        "all",
        &mut sums,
    )
    .unwrap_err();
    assert_eq!(e.exit_code().code(), 65, "{e}");
    assert!(e.to_string().contains("copy itself without end"), "{e}");
}
