//! Backup copies of trees (`treecopy`): on a tmpfs of the test's own (no
//! cloning, so every file is read, hashed and written) and on an XFS loop image made with reflink
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

/// A tmpfs of the test's own: a filesystem that never clones.
struct Tmpfs(tempfile::TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

fn tmpfs() -> Tmpfs {
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success(), "a tmpfs mount (the tests run as root)");
    Tmpfs(dir)
}

#[test]
fn a_copy_without_cloning_is_hashed_and_read_back() {
    let fs_ = tmpfs();
    let t = &fs_.0;
    let (root, lists) = back_up(t.path());
    assert_eq!(lists, ["SHA256SUMS"], "tmpfs cannot clone");
    let sums = fs::read_to_string(t.path().join("backup/SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 3, "{sums}");
    let o = Command::new("sha256sum")
        .arg("-c")
        .arg("--quiet")
        .arg("SHA256SUMS")
        .current_dir(t.path().join("backup"))
        .status()
        .unwrap();
    assert!(o.success(), "sha256sum -c agrees with SHA256SUMS");
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
    // Beside the other temporary files, never the machine's /var.
    let img = tempfile::NamedTempFile::new().unwrap();
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

/// A FIFO and a socket below the copied directory are not data: the copy
/// leaves them out and names them in `SKIPPED`, and still verifies.
#[test]
fn special_files_below_the_tree_are_left_out_and_named() {
    let t = tempfile::tempdir().unwrap();
    tree(t.path());
    let data = t.path().join("src/data");
    nix::unistd::mkfifo(
        &data.join("users/pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(data.join("sock")).unwrap();
    let root = SysRoot::new(t.path());
    fs::create_dir_all(t.path().join("backup")).unwrap();
    let mut sums = fsops::Sums::new();
    fsops::copy_tree(
        &root,
        &data,
        &t.path().join("backup/data"),
        "data",
        &mut sums,
    )
    .unwrap();
    let mut skipped = sums.skipped().to_vec();
    skipped.sort();
    assert_eq!(skipped, ["data/sock", "data/users/pipe"]);
    sums.write(&root, &t.path().join("backup")).unwrap();
    treecopy::verify(&root, &t.path().join("backup")).unwrap();
    assert_eq!(
        treecopy::skipped_in(&root, &t.path().join("backup"))
            .unwrap()
            .len(),
        2
    );
    assert!(!t.path().join("backup/data/users/pipe").exists());
    assert!(t.path().join("backup/data/users/1/big.bin").exists());
}

/// Asked to copy a FIFO itself (a config.json replaced by one), the copy
/// refuses: there is nothing to back up and call verified.
#[test]
fn a_fifo_asked_for_is_refused_and_nothing_is_made() {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir_all(t.path().join("config")).unwrap();
    let fifo = t.path().join("config/config.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let root = SysRoot::new(t.path());
    let mut sums = fsops::Sums::new();
    let e = fsops::copy_tree(
        &root,
        &fifo,
        &t.path().join("copy.json"),
        "config.json",
        &mut sums,
    )
    .unwrap_err();
    assert_eq!(e.exit_code().code(), 1, "{e}");
    assert!(e.to_string().contains("cannot be backed up"), "{e}");
    assert!(!t.path().join("copy.json").exists());
}
