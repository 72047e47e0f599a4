//! Single-file images: `den image squash` writes one, `den run FILE.sqsh` and `--image-file`
//! run it over squashfuse with no copy into the store, `den load` imports it, and a damaged or
//! truncated file is refused with one line.

use std::path::{Path, PathBuf};

use crate::sandbox::{Sandbox, registry, sha256_hex};

/// The layered fixture (whiteouts, owners, hard links) pulled and squashed into the sandbox.
fn squashed(sb: &Sandbox) -> (String, PathBuf) {
    let img = registry().image("test/layered");
    sb.den(&["pull", "-q", &img]).ok();
    let file = sb.dir.join("layered.sqsh");
    let out = sb
        .den(&["image", "squash", &img, "-o", file.to_str().unwrap()])
        .ok();
    assert_eq!(out.trim(), file.to_str().unwrap());
    (img, file)
}

fn sum(p: &Path) -> String {
    sha256_hex(&std::fs::read(p).unwrap())
}

/// squashfuse processes of this test user whose command line names `file`.
fn squashfuse_for(file: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.starts_with("squashfuse") && cmd.contains(file.to_str().unwrap()) {
            n += 1;
        }
    }
    n
}

#[test]
fn squash_and_run_a_file_without_copying_it() {
    let sb = Sandbox::new();
    let (img, file) = squashed(&sb);
    let before = sum(&file);
    let f = file.to_str().unwrap();
    let script = "ls /srv /srv/replaced; cat /srv/hardlink-b; echo new > /srv/written; exit 3";
    let from_store = sb.den(&["run", "--rm", &img, "sh", "-c", script]);
    let out = sb.den(&["run", "--name", "c1", f, "sh", "-c", script]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(out.out(), from_store.out());
    assert!(out.out().contains("shared content"), "{}", out.out());
    // The write is in the container's upper layer; the file is unchanged.
    assert_eq!(sum(&file), before);
    let read = sb.den(&["start", "-a", "c1"]);
    assert_eq!(read.code, 3);
    let fresh = sb.den(&["run", "--rm", "--image-file", f, "cat", "/srv/written"]);
    assert_eq!(fresh.code, 1, "{}", fresh.stderr);
    assert!(fresh.stderr.contains("No such file"), "{}", fresh.stderr);
    if sb.mapped() {
        let owners = sb
            .den(&["run", "--rm", f, "stat", "-c", "%u:%g", "/srv/app-owned"])
            .ok();
        assert_eq!(owners, "1000:1000\n");
    }
    let ps = sb.den(&["ps", "-a", "--format", "{{.Image}}"]).ok();
    assert_eq!(ps.trim(), f);
    let inspect = sb
        .den(&["inspect", "--format", "{{.Config.Image}}", "c1"])
        .ok();
    assert_eq!(inspect.trim(), f);
    assert_eq!(squashfuse_for(&file), 0);
}
