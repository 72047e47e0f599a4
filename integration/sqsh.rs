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

/// squashfuse processes whose command line names `file`.
fn squashfuse_pids(file: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.starts_with("squashfuse") && cmd.contains(file.to_str().unwrap()) {
            pids.push(pid);
        }
    }
    pids
}

fn squashfuse_for(file: &Path) -> usize {
    squashfuse_pids(file).len()
}

/// Wait (5 s at most) for the squashfuse of `file` to be gone.
#[track_caller]
fn settles(file: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while squashfuse_for(file) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(squashfuse_for(file), 0, "squashfuse still runs");
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
    // cp and export of the stopped container see the file's tree and the container's writes.
    let copied = sb.dir.join("written");
    sb.den(&["cp", "c1:/srv/written", copied.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_to_string(&copied).unwrap(), "new\n");
    let listing = sb
        .sh("den export c1 | tar -t | grep -E '^srv/(written|hardlink-b)$' | sort")
        .ok();
    assert_eq!(listing, "srv/hardlink-b\nsrv/written\n");
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

#[test]
fn detached_stop_and_rm_leave_no_squashfuse() {
    let sb = Sandbox::new();
    let (_, file) = squashed(&sb);
    let f = file.to_str().unwrap();
    sb.den(&["run", "-d", "--name", "bg", f, "sleep", "60"])
        .ok();
    let running = sb.den(&["ps", "--format", "{{.Names}} {{.Image}}"]).ok();
    assert_eq!(running.trim(), format!("bg {f}"));
    assert_eq!(squashfuse_for(&file), 1);
    sb.den(&["stop", "-t", "1", "bg"]).ok();
    // The monitor unmounts after the container has stopped.
    settles(&file);
    sb.den(&["start", "bg"]).ok();
    assert_eq!(squashfuse_for(&file), 1);
    sb.den(&["rm", "-f", "bg"]).ok();
    settles(&file);
    assert!(sb.den(&["ps", "-aq"]).ok().is_empty());
    // A den killed outright (the monitor here: squashfuse's parent) takes squashfuse along.
    sb.den(&["run", "-d", "--name", "crash", f, "sleep", "60"])
        .ok();
    let pid = squashfuse_pids(&file)[0];
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let ppid = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .unwrap()
        .trim()
        .to_string();
    sb.sh(&format!("kill -9 {ppid}")).ok();
    settles(&file);
    sb.den(&["rm", "-f", "crash"]).ok();
}

#[test]
fn eight_runs_at_once_share_the_file() {
    let sb = Sandbox::new();
    let (_, file) = squashed(&sb);
    let before = sum(&file);
    let f = file.to_str().unwrap();
    let runs: Vec<std::process::Child> = (0..8)
        .map(|i| {
            let mut c = sb.cmd(
                "den",
                &[
                    "run",
                    "--rm",
                    f,
                    "sh",
                    "-c",
                    &format!("echo {i} > /srv/mine; cat /srv/mine /srv/hardlink-b"),
                ],
            );
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for (i, c) in runs.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.starts_with(&format!("{i}\n")),
            "{i}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(sum(&file), before);
    assert_eq!(squashfuse_for(&file), 0);
    assert!(sb.den(&["ps", "-aq"]).ok().is_empty());
}

#[test]
fn damaged_and_truncated_files_are_refused_with_one_line() {
    let sb = Sandbox::new();
    let (_, file) = squashed(&sb);
    let bytes = std::fs::read(&file).unwrap();
    let mut flipped = bytes.clone();
    flipped[28] ^= 0x01;
    let bad = sb.dir.join("flipped.sqsh");
    std::fs::write(&bad, &flipped).unwrap();
    let short = sb.dir.join("short.sqsh");
    std::fs::write(&short, &bytes[..bytes.len() / 2]).unwrap();
    let listing = sb.store_listing();
    for (f, what) in [(&bad, "version 5.0"), (&short, "truncated")] {
        let p = f.to_str().unwrap();
        sb.den(&["run", "--rm", p, "true"]).fails_with(125, what);
        sb.den(&["run", "--rm", "--image-file", p, "true"])
            .fails_with(125, p);
        assert_eq!(sb.store_listing(), listing, "{p}");
    }
    let out = sb.den(&["run", "--rm", bad.to_str().unwrap(), "true"]);
    assert!(
        out.stderr.contains("hint: the file is damaged"),
        "{}",
        out.stderr
    );
    // A file that is not SquashFS at all, and a squash to a directory.
    let junk = sb.dir.join("junk.sqsh");
    std::fs::write(&junk, vec![7u8; 8192]).unwrap();
    sb.den(&["run", "--rm", junk.to_str().unwrap(), "true"])
        .fails_with(125, "not a SquashFS image");
    let img = registry().image("test/layered");
    sb.den(&["image", "squash", &img, "-o", sb.dir.to_str().unwrap()])
        .fails_with(125, "is a directory");
    // A file whose rootfs is a symlink to the host's /etc: never followed.
    let evil = sb.dir.join("evil");
    std::fs::create_dir(&evil).unwrap();
    let json = std::process::Command::new("unsquashfs")
        .args(["-cat", file.to_str().unwrap(), "image.json"])
        .output()
        .unwrap();
    std::fs::write(evil.join("image.json"), json.stdout).unwrap();
    std::os::unix::fs::symlink("/etc", evil.join("rootfs")).unwrap();
    let evil_file = sb.dir.join("evil.sqsh");
    let made = std::process::Command::new("mksquashfs")
        .arg(&evil)
        .arg(&evil_file)
        .args(["-quiet", "-no-progress"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let e = evil_file.to_str().unwrap();
    sb.den(&["run", "--rm", e, "cat", "/passwd"])
        .fails_with(125, "no rootfs directory");
    sb.den(&["load", "-i", e])
        .fails_with(1, "no rootfs directory");
    assert_eq!(sb.store_listing(), listing);
}

#[test]
fn load_a_file_into_the_store_and_list_it() {
    let sb = Sandbox::new();
    let (img, file) = squashed(&sb);
    let f = file.to_str().unwrap();
    let id = sb.den(&["images", "-q", "--no-trunc", &img]).ok();
    let listed = sb
        .den(&[
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
            f,
        ])
        .ok();
    assert_eq!(listed.trim(), format!("{img} {}", id.trim()));
    let inspected = sb
        .den(&["image", "inspect", "--format", "{{.Id}} {{.Size}}", f])
        .ok();
    let size = std::fs::metadata(&file).unwrap().len();
    assert_eq!(inspected.trim(), format!("{} {size}", id.trim()));
    // Loaded under its name, in place of the image it was made from: one layer, same tree.
    sb.den(&["rmi", &img]).ok();
    let loaded = sb.den(&["load", "-i", f]).ok();
    assert!(loaded.contains(&format!("Loaded image: {img}")), "{loaded}");
    let layers = sb
        .den(&[
            "image",
            "inspect",
            "--format",
            "{{len .RootFS.Layers}}",
            &img,
        ])
        .ok();
    assert_eq!(layers.trim(), "1");
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
    assert_eq!(
        ls,
        sb.den(&[
            "run",
            "--rm",
            f,
            "sh",
            "-c",
            "ls /srv /srv/replaced; cat /srv/hardlink-b"
        ])
        .ok()
    );
    if sb.mapped() {
        let owners = sb
            .den(&["run", "--rm", &img, "stat", "-c", "%u:%g", "/srv/app-owned"])
            .ok();
        assert_eq!(owners, "1000:1000\n");
    }
    // A truncated file is refused by load too, and the store stays as it was.
    let bytes = std::fs::read(&file).unwrap();
    let short = sb.dir.join("short.sqsh");
    std::fs::write(&short, &bytes[..bytes.len() - 4096]).unwrap();
    let listing = sb.store_listing();
    sb.den(&["load", "-i", short.to_str().unwrap()])
        .fails_with(1, "truncated");
    assert_eq!(sb.store_listing(), listing);
}
