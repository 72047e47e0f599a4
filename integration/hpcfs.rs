//! Stores on shared filesystems (issue 16): den names the filesystem that holds its store in
//! `den info` (and `info --format`'s `DriverStatus`, docker's `Backing Filesystem`), and warns
//! in one line at `run` and `pull` when the store is on a filesystem shared between machines,
//! naming the fix (a store on the node's own disk).
//!
//! No NFS or Lustre can be mounted where these tests run (the kernel has neither nfs nor nfsd,
//! and mounting needs root), so those are unit tests through the statfs seam's fake
//! (`fs::kind`, `store::placement`, `store::driver`). Here the real kernel answers: the test
//! store's own filesystem, a store on /dev/shm (tmpfs), and a store on a FUSE filesystem the
//! test user mounts itself (fuse-overlayfs through fusermount3), which den treats as possibly
//! remote: the kernel's overlay cannot keep upper directories there either.

use std::path::{Path, PathBuf};

use crate::sandbox::{Sandbox, busybox};

/// docker's name for the filesystem with statfs magic `hex` (as `stat -f -c %t` prints it), as
/// den names the local ones a test machine may have.
fn name_of(hex: &str) -> String {
    match hex {
        "ef53" => "extfs",
        "58465342" => "xfs",
        "1021994" => "tmpfs",
        "9123683e" => "btrfs",
        "2fc12fc1" => "zfs",
        "f2f52010" => "f2fs",
        "794c7630" => "overlayfs (an overlay itself: no kernel overlay for containers on it)",
        other => return format!("unknown (0x{other})"),
    }
    .into()
}

fn magic(sb: &Sandbox, path: &Path) -> String {
    sb.sh(&format!("stat -f -c %t '{}'", path.display()))
        .ok()
        .trim()
        .to_string()
}

fn store_line(info: &str) -> String {
    info.lines()
        .find(|l| l.starts_with("store filesystem:"))
        .unwrap_or_else(|| panic!("no store filesystem line: {info}"))
        .to_string()
}

#[test]
fn info_names_the_filesystem_of_the_store() {
    let sb = Sandbox::new();
    let out = sb.den(&["pull", "-q", &busybox()]);
    out.ok();
    assert!(!out.stderr.contains("warning:"), "{}", out.stderr);
    let want = name_of(&magic(&sb, &sb.root));
    let info = sb.den(&["info"]).ok();
    assert_eq!(
        store_line(&info),
        format!("store filesystem:   {want}"),
        "{info}"
    );
    let status = sb.den(&["info", "--format", "{{json .DriverStatus}}"]).ok();
    assert!(
        status.starts_with(&format!(
            "[[\"Backing Filesystem\",\"{want}\"],[\"Reason\","
        )),
        "{status}"
    );
}

#[test]
fn a_store_on_dev_shm_is_on_tmpfs() {
    let mut sb = Sandbox::new();
    let root = PathBuf::from(format!(
        "/dev/shm/den-hpcfs-{}-{}",
        std::process::id(),
        sb.dir.file_name().unwrap().to_string_lossy()
    ));
    sb.set_env("DEN_ROOT", &root.to_string_lossy());
    let info = sb.den(&["info"]);
    let status = sb.den(&["info", "--format", "{{index .DriverStatus 0}}"]);
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(store_line(&info.ok()), "store filesystem:   tmpfs");
    assert_eq!(status.ok(), "[Backing Filesystem tmpfs]\n");
}

/// A FUSE filesystem the test user mounted, unmounted when dropped.
struct FuseMount(PathBuf);

impl FuseMount {
    fn new(sb: &Sandbox) -> FuseMount {
        let d = sb.dir.join("fuse");
        for p in ["lower", "upper", "work", "mnt"] {
            std::fs::create_dir_all(d.join(p)).unwrap();
        }
        sb.sh(&format!(
            "fuse-overlayfs -o lowerdir={d}/lower,upperdir={d}/upper,workdir={d}/work {d}/mnt",
            d = d.display()
        ))
        .ok();
        FuseMount(d.join("mnt"))
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("fusermount3")
            .arg("-u")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_store_on_fuse_is_named_and_warned_of_once() {
    let mut sb = Sandbox::new();
    let fuse = FuseMount::new(&sb);
    let root = fuse.0.join("den");
    sb.set_env("DEN_ROOT", &root.to_string_lossy());
    assert_eq!(magic(&sb, &fuse.0), "65735546");
    let info = sb.den(&["info"]).ok();
    assert!(
        store_line(&info).starts_with("store filesystem:   fuse (served by a program"),
        "{info}"
    );
    let driver = info
        .lines()
        .find(|l| l.starts_with("storage driver:"))
        .unwrap();
    assert!(
        driver.contains("kernel overlayfs cannot keep containers' writable layers on fuse, the store's filesystem"),
        "{driver}"
    );
    // `run` pulls (through den-image) and runs: the warning comes once, on one line, with the fix.
    let run = sb.den(&["run", "--rm", &busybox(), "echo", "ran"]);
    let warning = format!("den: warning: the store {} is on fuse (", root.display());
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("den: warning: the store"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(warnings[0].starts_with(&warning), "{}", run.stderr);
    assert!(
        warnings[0].ends_with("`storage.root` in den's config, or DEN_ROOT=$TMPDIR/den"),
        "{}",
        run.stderr
    );
    assert_eq!(run.ok(), "ran\n");
    let pull = sb.den(&["pull", "-q", &busybox()]);
    pull.ok();
    assert_eq!(
        pull.stderr.matches("warning: the store").count(),
        1,
        "{}",
        pull.stderr
    );
    // `images` is not where it matters: no warning.
    let images = sb.den(&["images"]);
    images.ok();
    assert!(!images.stderr.contains("warning"), "{}", images.stderr);
    sb.den(&["system", "reset", "--force"]).ok();
    // A runtime directory there is warned of too (the store back on local disk).
    let mut local = Sandbox::new();
    let rt = fuse.0.join("rt");
    local.set_env("DEN_RUNTIME_DIR", &rt.to_string_lossy());
    let pull = local.den(&["pull", "-q", &busybox()]);
    pull.ok();
    let warnings: Vec<&str> = pull
        .stderr
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    assert_eq!(
        warnings,
        vec![format!(
            "den: warning: the runtime directory {} is on fuse, shared between machines: \
             containers' state and locks belong on this one; set DEN_RUNTIME_DIR to a local \
             directory (/tmp/den-$UID)",
            rt.display()
        )]
    );
}
