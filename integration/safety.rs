//! Bad input: a one-line error that names the input and the fix, a non-zero exit, and a store
//! left exactly as it was.

use crate::sandbox::{Registry, Sandbox, registry};

#[test]
fn malformed_references_are_refused() {
    let sb = Sandbox::new();
    for bad in ["library/UPPER", "busybox:", "a//b", "x@sha256:1234"] {
        let out = sb.den(&["pull", bad]);
        out.fails_with(125, "invalid reference format");
        assert!(
            out.stderr.contains(bad),
            "the error names the input: {}",
            out.stderr
        );
        sb.den(&["run", "--rm", bad])
            .fails_with(125, "invalid reference format");
    }
    assert!(!sb.root.join("images.json").exists());
}

#[test]
fn unknown_flags_exit_125_like_docker() {
    let sb = Sandbox::new();
    let out = sb.den(&["run", "--no-such-flag", "busybox"]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(out.stderr.contains("--no-such-flag"), "{}", out.stderr);
    assert!(
        out.stderr.contains("den run"),
        "usage names den, not den-run: {}",
        out.stderr
    );
    assert_eq!(sb.den(&["no-such-verb"]).code, 1);
    assert_eq!(sb.den(&["run", "--help"]).code, 0);
    assert_eq!(
        sb.den(&["--version"]).ok().split_whitespace().next(),
        Some("den")
    );
}

#[test]
fn unknown_images_and_unreachable_registries() {
    let sb = Sandbox::new();
    sb.den(&["pull", &format!("{}/library/nope:latest", registry().addr)])
        .fails_with(125, "not found");
    sb.den(&["pull", &format!("{}/library/busybox:nope", registry().addr)])
        .fails_with(125, "not found");
    let closed = format!("127.0.0.1:{}", crate::sandbox::free_port());
    sb.den(&["pull", &format!("{closed}/library/busybox")])
        .fails_with(125, "cannot reach registry");
    sb.den(&["run", "--rm", &format!("{closed}/library/busybox"), "true"])
        .fails_with(125, "cannot reach registry");
    assert_eq!(sb.den(&["images", "-q"]).ok(), "");
}

#[test]
fn a_tampered_blob_is_refused_and_nothing_is_stored() {
    let sb = Sandbox::new();
    let reg = Registry::start("tamper");
    reg.push("layered", "test/tamper");
    // Overwrite the top layer's blob in the registry's storage: same size, other bytes.
    let layout = crate::sandbox::fixture("layered");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(&mdigest[7..])).unwrap(),
    )
    .unwrap();
    let top = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let f = reg.blob_file(&top);
    let mut bytes = std::fs::read(&f).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&f, bytes).unwrap();

    sb.den(&["pull", "-q", &registry().image("library/busybox")])
        .ok();
    let before = sb.store_listing();
    let out = sb.den(&["pull", &reg.image("test/tamper")]);
    out.fails_with(125, "does not match its digest");
    assert!(out.stderr.contains(&top), "names the blob: {}", out.stderr);
    assert!(!sb.root.join("blobs/sha256").join(&top[7..]).exists());
    let after = sb.store_listing();
    // Layers other than the tampered one may have arrived, but no image and no half layer.
    let images: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.root.join("images.json")).unwrap()).unwrap();
    assert_eq!(images["images"].as_array().unwrap().len(), 1);
    assert!(
        after.iter().filter(|e| e.starts_with("tmp/")).count() == 0,
        "{after:?}"
    );
    assert!(
        before
            .iter()
            .all(|e| after.contains(e) || e.starts_with("images.json")),
        "{before:?}\n{after:?}"
    );
}

#[test]
fn layers_that_escape_are_refused() {
    for (evil, _what) in [
        ("evil-dotdot", "../"),
        ("evil-symlink", "symlink"),
        ("evil-hardlink", "hard link"),
    ] {
        let sb = Sandbox::new();
        let img = registry().image(&format!("test/{evil}"));
        let out = sb.den(&["pull", &img]);
        out.fails_with(125, "outside the layer directory");
        assert_eq!(sb.den(&["images", "-q"]).ok(), "", "{evil}");
        // Nothing half-unpacked: only complete layers (the busybox base) are in place.
        let staged: Vec<_> = std::fs::read_dir(sb.root.join("tmp"))
            .unwrap()
            .flatten()
            .collect();
        assert!(staged.is_empty(), "{evil}: {staged:?}");
        assert!(!std::path::Path::new("/tmp/escaped-by-symlink").exists());
        assert!(!sb.root.parent().unwrap().join("escaped-by-dotdot").exists());
        // run refuses it the same way.
        sb.den(&["run", "--rm", &img, "true"])
            .fails_with(125, "outside the layer directory");
    }
}

#[test]
fn failed_runs_leave_the_store_as_it_was() {
    let sb = Sandbox::new();
    let img = registry().image("library/busybox");
    sb.den(&["pull", "-q", &img]).ok();
    let before = sb.store_listing();
    sb.den(&["run", "--rm", &img, "no-such-command"])
        .fails_with(127, "not found");
    sb.den(&["run", "--rm", "-u", "ghost", &img, "true"])
        .fails_with(125, "ghost");
    sb.den(&[
        "run",
        "--rm",
        &format!("{}/library/absent", registry().addr),
        "true",
    ])
    .fails_with(125, "not found");
    assert_eq!(sb.store_listing(), before);
}

/// The mode bits of a path.
fn mode_of(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_store_is_private_to_its_user() {
    let sb = Sandbox::new();
    let bb = registry().image("library/busybox");
    sb.den(&["pull", "-q", &bb]).ok();
    assert_eq!(mode_of(&sb.root), 0o700, "the store's root");
    sb.den(&[
        "run",
        "--name",
        "secret",
        "-e",
        "DB_PASSWORD=hunter2",
        &bb,
        "echo",
        "logged",
    ])
    .ok();
    let id = sb
        .den(&["inspect", "--format", "{{.Id}}", "secret"])
        .ok()
        .trim()
        .to_string();
    let cdir = sb.root.join("containers").join(&id);
    // The spec and the record hold the password; the log holds what the container said.
    let spec = cdir.join("config.json");
    assert!(std::fs::read_to_string(&spec).unwrap().contains("hunter2"));
    for f in [&spec, &cdir.join("container.json"), &cdir.join("ctr.log")] {
        assert_eq!(mode_of(f), 0o600, "{}", f.display());
    }
    assert_eq!(mode_of(&sb.root.join("images.json")), 0o600);

    // A store opened to others (by hand, an old den, a careless umask) is made private again,
    // and den says so once.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sb.root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = sb.den(&["images", "-q"]);
    out.ok();
    assert!(
        out.stderr.contains("was open to other users") && out.stderr.contains("0755"),
        "{}",
        out.stderr
    );
    assert_eq!(mode_of(&sb.root), 0o700);
    assert!(
        !sb.den(&["images", "-q"])
            .stderr
            .contains("open to other users")
    );
}

#[test]
fn system_reset_deletes_only_a_den_store() {
    let sb = Sandbox::new();
    // Something that is not a store: reset refuses and touches nothing.
    let notes = sb.dir.join("my-notes");
    std::fs::create_dir_all(notes.join("sub")).unwrap();
    std::fs::write(notes.join("sub/thesis.tex"), "years of work").unwrap();
    let root = notes.to_string_lossy().into_owned();
    sb.den(&["--root", &root, "system", "reset", "--force"])
        .fails_with(1, "is not a den store");
    assert_eq!(
        std::fs::read_to_string(notes.join("sub/thesis.tex")).unwrap(),
        "years of work"
    );
    // An empty directory, or a real store, goes.
    let empty = sb.dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    sb.den(&[
        "--root",
        &empty.to_string_lossy(),
        "system",
        "reset",
        "--force",
    ])
    .ok();
    let store = sb.dir.join("a-store");
    let s = store.to_string_lossy().into_owned();
    sb.den(&[
        "--root",
        &s,
        "pull",
        "-q",
        &registry().image("library/busybox"),
    ])
    .ok();
    sb.den(&["--root", &s, "system", "reset", "--force"]).ok();
    assert!(!store.join("images.json").exists());
}
