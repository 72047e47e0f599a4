//! The three storage drivers give containers the same root filesystem.

use crate::sandbox::{Sandbox, registry};

fn same_filesystem_with(driver: &str) {
    let mut sb = Sandbox::new();
    sb.set_env("DEN_STORAGE_DRIVER", driver);
    let img = registry().image("test/layered");
    sb.den(&["pull", "-q", &img]).ok();
    let info = sb.den(&["info"]).ok();
    assert!(
        info.lines()
            .any(|l| l.starts_with("storage driver:") && l.contains(driver)),
        "{info}"
    );
    let ls = sb
        .den(&[
            "run",
            "--rm",
            &img,
            "sh",
            "-c",
            "ls /srv /srv/replaced; cat /srv/hardlink-b",
        ])
        .ok();
    assert!(
        !ls.contains("deleted") && !ls.contains("old-1") && ls.contains("new"),
        "{driver}: {ls}"
    );
    assert!(ls.contains("shared content"), "{driver}: {ls}");
    // Writes land in the container's own layer, deletions of image files too.
    sb.den(&[
        "run",
        "--name",
        "c1",
        &img,
        "sh",
        "-c",
        "echo one > /srv/new-file; rm /srv/root-owned; rm -r /srv/replaced",
    ])
    .ok();
    let other = sb.den(&["run", "--rm", &img, "sh", "-c", "ls /srv"]).ok();
    assert!(
        !other.contains("new-file") && other.contains("root-owned") && other.contains("replaced"),
        "{driver}: {other}"
    );
    if sb.mapped() {
        let owners = sb
            .den(&["run", "--rm", &img, "stat", "-c", "%u:%g", "/srv/app-owned"])
            .ok();
        assert_eq!(owners, "1000:1000\n", "{driver}");
    }
}

#[test]
fn kernel_overlay() {
    same_filesystem_with("overlay");
}

#[test]
fn fuse_overlayfs() {
    same_filesystem_with("fuse-overlayfs");
}

#[test]
fn vfs_copy() {
    same_filesystem_with("vfs");
}

#[test]
fn info_explains_the_choices() {
    let sb = Sandbox::new();
    let info = sb.den(&["info"]).ok();
    for key in [
        "store:",
        "runtime dir:",
        "id mapping:",
        "storage driver:",
        "cgroups:",
        "fuse-overlayfs:",
        "slirp4netns:",
    ] {
        assert!(info.contains(key), "{key} missing: {info}");
    }
    assert!(info.contains(&sb.root.display().to_string()), "{info}");
}
