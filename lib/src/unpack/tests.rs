use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::paths::{SHOWN, show_path, shown};
use super::*;

/// A tar entry as a test wants to write it, including paths `tar::Builder` would refuse.
enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
}

fn header(path: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    // Write the name field raw: set_path() refuses `..`, which is what some tests need.
    let name = &mut h.as_old_mut().name;
    name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h
}

fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::Dir(p, m) => {
                let mut h = header(p, tar::EntryType::Directory, 0, *m);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            E::File(p, data, m) => {
                let mut h = header(p, tar::EntryType::Regular, data.len() as u64, *m);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            E::Symlink(p, t) | E::Hardlink(p, t) => {
                let kind = if matches!(e, E::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                let mut h = header(p, kind, 0, 0o777);
                let ln = &mut h.as_old_mut().linkname;
                ln[..t.len()].copy_from_slice(t.as_bytes());
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            E::Char(p, maj, min) => {
                let mut h = header(p, tar::EntryType::Char, 0, 0o644);
                h.set_device_major(*maj).unwrap();
                h.set_device_minor(*min).unwrap();
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

const OPTS: Options = Options {
    owners: Owners::Ignore,
};

fn unpack_bytes(bytes: Vec<u8>, dest: &Path) -> Result<Stats> {
    unpack_blob(std::io::Cursor::new(bytes), dest, OPTS, None)
}

#[test]
fn files_dirs_links_and_modes() {
    let t = tempfile::tempdir().unwrap();
    let tar = tar_of(&[
        E::Dir("etc/", 0o755),
        E::File("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644),
        E::File("bin/tool", b"#!/bin/sh\n", 0o4755),
        E::Symlink("bin/sh", "/bin/busybox"),
        E::Hardlink("etc/passwd.bak", "etc/passwd"),
        E::Dir("ro/", 0o555),
        E::File("ro/inside", b"x", 0o444),
    ]);
    let stats = unpack_bytes(tar.clone(), t.path()).unwrap();
    assert_eq!(stats.entries, 7);
    assert_eq!(stats.size, 26 + 10 + 1);
    assert_eq!(stats.diff_id, crate::digest::Digest::of(&tar));
    let p = t.path();
    assert_eq!(
        std::fs::read(p.join("etc/passwd")).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    assert_eq!(
        std::fs::metadata(p.join("bin/tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o4755
    );
    assert_eq!(
        std::fs::read_link(p.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        std::fs::metadata(p.join("etc/passwd.bak")).unwrap().ino(),
        std::fs::metadata(p.join("etc/passwd")).unwrap().ino()
    );
    assert_eq!(
        std::fs::metadata(p.join("ro"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o555
    );
    assert_eq!(
        std::fs::metadata(p.join("etc/passwd")).unwrap().mtime(),
        1_600_000_000
    );
    crate::fs::remove_tree(p).unwrap();
}

#[test]
fn whiteouts_become_overlay_devices_and_opaque_xattrs() {
    let t = tempfile::tempdir().unwrap();
    let tar = tar_of(&[
        E::Dir("gone/", 0o755),
        E::File("dir/.wh.old", b"", 0o644),
        E::File("opq/.wh..wh..opq", b"", 0o644),
        E::File("dir/.wh..wh.plnk", b"", 0o644),
        E::Char("dir/pre", 0, 0),
        E::Char("dev/null", 1, 3),
    ]);
    let stats = unpack_bytes(tar, t.path()).unwrap();
    let md = std::fs::symlink_metadata(t.path().join("dir/old")).unwrap();
    assert!(is_whiteout(&md));
    assert!(is_whiteout(
        &std::fs::symlink_metadata(t.path().join("dir/pre")).unwrap()
    ));
    assert!(!t.path().join("dir/.wh.old").exists());
    assert!(!t.path().join("dir/.wh..wh.plnk").exists());
    assert_eq!(
        crate::sys::lgetxattr(&t.path().join("opq"), OPAQUE_XATTR).unwrap(),
        Some(b"y".to_vec())
    );
    assert!(!t.path().join("dev/null").exists());
    assert_eq!(stats.skipped_devices, 1);
}

#[test]
fn dot_dot_paths_are_refused() {
    for bad in ["../escape", "a/../../escape", "./../x"] {
        let t = tempfile::tempdir().unwrap();
        let inner = t.path().join("layer");
        std::fs::create_dir(&inner).unwrap();
        let e = unpack_bytes(tar_of(&[E::File(bad, b"x", 0o644)]), &inner).unwrap_err();
        assert!(matches!(e, UnpackError::PathEscape { .. }), "{bad}: {e}");
        assert!(!t.path().join("escape").exists() && !t.path().join("x").exists());
    }
}

#[test]
fn absolute_and_dotted_paths_stay_inside() {
    let t = tempfile::tempdir().unwrap();
    unpack_bytes(
        tar_of(&[
            E::File("/etc/abs", b"a", 0o644),
            E::File("./x/../y", b"b", 0o644),
        ]),
        t.path(),
    )
    .unwrap();
    assert!(t.path().join("etc/abs").exists());
    assert!(t.path().join("y").exists());
}

#[test]
fn escaping_symlinks_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let inner = t.path().join("layer");
    std::fs::create_dir(&inner).unwrap();
    let e = unpack_bytes(tar_of(&[E::Symlink("a/evil", "../../etc")]), &inner).unwrap_err();
    assert!(matches!(e, UnpackError::LinkEscape { .. }), "{e}");
    // Relative links that stay inside are fine.
    let ok = t.path().join("ok");
    std::fs::create_dir(&ok).unwrap();
    unpack_bytes(tar_of(&[E::Symlink("usr/bin/x", "../../bin/x")]), &ok).unwrap();
}

#[test]
fn writes_through_symlinks_resolve_inside_the_layer() {
    let t = tempfile::tempdir().unwrap();
    let inner = t.path().join("layer");
    std::fs::create_dir(&inner).unwrap();
    // An absolute symlink to the host's /tmp, then a file written "through" it.
    let tar = tar_of(&[
        E::Symlink("tmpl", "/outside"),
        E::File("tmpl/f", b"x", 0o644),
        E::Symlink("up", "/"),
        E::File("up/g", b"y", 0o644),
    ]);
    unpack_bytes(tar, &inner).unwrap();
    assert_eq!(std::fs::read(inner.join("outside/f")).unwrap(), b"x");
    assert_eq!(std::fs::read(inner.join("g")).unwrap(), b"y");
    assert!(!Path::new("/outside").exists());
}

#[test]
fn hard_links_must_point_inside_and_exist() {
    let t = tempfile::tempdir().unwrap();
    let inner = t.path().join("layer");
    std::fs::create_dir(&inner).unwrap();
    std::fs::write(t.path().join("secret"), b"s").unwrap();
    let e = unpack_bytes(tar_of(&[E::Hardlink("h", "../secret")]), &inner).unwrap_err();
    assert!(matches!(e, UnpackError::LinkEscape { .. }), "{e}");
    let e = unpack_bytes(tar_of(&[E::Hardlink("h", "nothere")]), &inner).unwrap_err();
    assert!(matches!(e, UnpackError::LinkMissing { .. }), "{e}");
    // A hard link through a symlinked directory is resolved in scope too.
    let e = unpack_bytes(
        tar_of(&[E::Symlink("up", "/.."), E::Hardlink("h2", "up/secret")]),
        &inner,
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::LinkMissing { .. }), "{e}");
}

#[test]
fn a_hard_link_cannot_move_a_symlink_to_where_it_escapes() {
    let t = tempfile::tempdir().unwrap();
    let inner = t.path().join("layer");
    std::fs::create_dir(&inner).unwrap();
    // Inside where it was made (eight levels down), out of the layer once linked at the top.
    let deep = "a/b/c/d/e/f/g/h/link";
    let e = unpack_bytes(
        tar_of(&[
            E::Dir("a/b/c/d/e/f/g/h", 0o755),
            E::Symlink(deep, "../../../../../../../../etc"),
            E::Hardlink("hostetc", deep),
        ]),
        &inner,
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::LinkEscape { .. }), "{e}");
    assert!(std::fs::symlink_metadata(inner.join("hostetc")).is_err());
    // A second name at the same depth is as safe as the first.
    let inner2 = t.path().join("layer2");
    std::fs::create_dir(&inner2).unwrap();
    unpack_bytes(
        tar_of(&[
            E::Dir("x/y", 0o755),
            E::Symlink("x/y/l", "../z"),
            E::Hardlink("x/y/l2", "x/y/l"),
        ]),
        &inner2,
    )
    .unwrap();
}

#[test]
fn whiteouts_of_the_directory_itself_are_refused() {
    let t = tempfile::tempdir().unwrap();
    for name in ["d/.wh.", "d/.wh..", "d/.wh..."] {
        let inner = t.path().join(name.replace(['/', '.'], "_"));
        std::fs::create_dir(&inner).unwrap();
        std::fs::write(t.path().join("keep"), b"k").unwrap();
        let e = unpack_bytes(
            tar_of(&[
                E::Dir("d", 0o755),
                E::File("d/f", b"x", 0o644),
                E::File(name, b"", 0o644),
            ]),
            &inner,
        )
        .unwrap_err();
        assert!(matches!(e, UnpackError::PathEscape { .. }), "{name}: {e}");
        assert!(inner.join("d/f").exists(), "{name}");
        assert!(t.path().join("keep").exists(), "{name}");
    }
}

#[test]
fn later_entries_replace_earlier_ones() {
    let t = tempfile::tempdir().unwrap();
    let tar = tar_of(&[
        E::Dir("d/", 0o755),
        E::File("d/keep", b"k", 0o644),
        E::Dir("d/", 0o700),
        E::File("x", b"file", 0o644),
        E::Dir("x/", 0o755),
        E::File("x/in", b"i", 0o644),
        E::Symlink("s", "x"),
        E::File("s", b"now a file", 0o644),
    ]);
    unpack_bytes(tar, t.path()).unwrap();
    assert!(t.path().join("d/keep").exists());
    assert_eq!(
        std::fs::metadata(t.path().join("d"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert!(t.path().join("x/in").exists());
    assert_eq!(std::fs::read(t.path().join("s")).unwrap(), b"now a file");
}

#[test]
fn compressed_blobs_are_sniffed_and_diff_id_checked() {
    let tar = tar_of(&[E::File("f", b"hello", 0o644)]);
    let diff_id = crate::digest::Digest::of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 1).unwrap();
    for blob in [tar.clone(), gz, zst] {
        let t = tempfile::tempdir().unwrap();
        let s = unpack_blob(std::io::Cursor::new(blob), t.path(), OPTS, Some(&diff_id)).unwrap();
        assert_eq!(s.diff_id, diff_id);
        assert_eq!(std::fs::read(t.path().join("f")).unwrap(), b"hello");
    }
    let t = tempfile::tempdir().unwrap();
    let e = unpack_blob(
        std::io::Cursor::new(tar),
        t.path(),
        OPTS,
        Some(&crate::digest::Digest::of(b"00")),
    )
    .unwrap_err();
    assert!(matches!(e, UnpackError::DiffIdMismatch { .. }));
}

#[test]
fn garbage_is_a_tar_error() {
    let t = tempfile::tempdir().unwrap();
    let mut junk = vec![0x1f, 0x8b];
    junk.extend_from_slice(&[7u8; 100]);
    assert!(matches!(
        unpack_bytes(junk, t.path()),
        Err(UnpackError::Tar(_))
    ));
}

#[test]
fn lexical_helpers() {
    let parts = |s: &str| clean(s.as_bytes()).unwrap();
    assert_eq!(
        parts("a/./b//c/"),
        vec![OsString::from("a"), "b".into(), "c".into()]
    );
    assert!(clean(b"../a").is_none());
    assert!(symlink_target_inside(&parts("a/b"), b"../c"));
    assert!(!symlink_target_inside(&parts("a/b"), b"../../c"));
    assert!(symlink_target_inside(&parts("a"), b"/anything/../.."));
    assert!(symlink_target_inside(&parts("a/b"), b"x/../../c"));
}

fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let content = if md.is_file() {
                String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()
            } else {
                String::new()
            };
            out.push(format!(
                "{rel} {:o} {} {content}",
                md.permissions().mode(),
                md.mtime()
            ));
            if md.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn sample_tar() -> Vec<u8> {
    tar_of(&[
        E::Dir("etc/", 0o755),
        E::File("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644),
        E::File("bin/tool", b"#!/bin/sh\n", 0o4755),
        E::Symlink("bin/sh", "/bin/busybox"),
        E::Hardlink("etc/passwd.bak", "etc/passwd"),
        E::File("big", &vec![7u8; 300_000], 0o600),
        E::File("x/.wh.gone", b"", 0o644),
        E::File("x", b"replaced dir by file", 0o644),
    ])
}

#[test]
fn whole_buffer_and_streaming_unpacks_agree() {
    let tar = sample_tar();
    let diff_id = crate::digest::Digest::of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let t = tempfile::tempdir().unwrap();
    let blob = t.path().join("blob");
    std::fs::write(&blob, gz.finish().unwrap()).unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let whole = unpack_file(&blob, &a, OPTS, Some(&diff_id)).unwrap();
    let streamed = unpack_blob(
        std::fs::File::open(&blob).unwrap(),
        &b,
        OPTS,
        Some(&diff_id),
    )
    .unwrap();
    assert_eq!(whole, streamed);
    assert_eq!(listing(&a), listing(&b));
    assert_eq!(std::fs::read(a.join("x")).unwrap(), b"replaced dir by file");
}

#[test]
fn multi_member_gzip_falls_back_to_streaming() {
    let tar = sample_tar();
    let diff_id = crate::digest::Digest::of(&tar);
    let mut blob = Vec::new();
    for part in [&tar[..1024], &tar[1024..]] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(part).unwrap();
        blob.extend(gz.finish().unwrap());
    }
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("blob");
    std::fs::write(&path, blob).unwrap();
    let dest = t.path().join("d");
    std::fs::create_dir(&dest).unwrap();
    let stats = unpack_file(&path, &dest, OPTS, Some(&diff_id)).unwrap();
    assert_eq!(stats.diff_id, diff_id);
    assert_eq!(
        std::fs::read(dest.join("etc/passwd")).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
}

#[test]
fn hard_links_to_directories_are_the_layers_fault() {
    let t = tempfile::tempdir().unwrap();
    let tar = tar_of(&[E::Dir("d/", 0o755), E::Hardlink("hl", "d")]);
    let e = unpack_bytes(tar, t.path()).unwrap_err();
    assert!(matches!(e, UnpackError::LinkToDir { .. }), "{e}");
    assert!(e.hint().unwrap().contains("malformed or malicious"));
}

#[test]
fn runs_of_zeros_become_holes() {
    let t = tempfile::tempdir().unwrap();
    let mut data = vec![0u8; 8 << 20];
    data.extend_from_slice(b"the end\n");
    let tar = tar_of(&[E::File("zeros", &data, 0o644), E::File("empty", b"", 0o644)]);
    let stats = unpack_bytes(tar, t.path()).unwrap();
    assert_eq!(stats.size, data.len() as u64);
    let f = t.path().join("zeros");
    assert_eq!(std::fs::read(&f).unwrap(), data);
    // Most of it is a hole (tmpfs and ext4 allocate only the last block or so).
    assert!(std::fs::metadata(&f).unwrap().blocks() * 512 < 1 << 20);
    assert_eq!(std::fs::metadata(t.path().join("empty")).unwrap().len(), 0);
}

#[test]
fn long_paths_are_cut_in_messages() {
    let long = "n".repeat(5000);
    let s = shown(long.clone());
    assert_eq!(s.chars().count(), SHOWN + 1);
    assert!(s.contains('…'));
    assert_eq!(shown("short".into()), "short");
    let parts: Vec<OsString> = vec![long.into(), "tail".into()];
    assert!(show_path(&parts).ends_with("nnnn/tail"));
}

/// Each level resolves from its parent (see `resolve_dir`): 300 levels, GNU long names.
#[test]
fn deep_trees_unpack() {
    let t = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    let mut path = String::from("d");
    for _ in 0..300 {
        dirs.push(format!("{path}/"));
        path.push_str("/d");
    }
    let file = format!("{path}/bottom");
    let mut b = tar::Builder::new(Vec::new());
    for d in &dirs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, d, std::io::empty()).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(7);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, &file, &b"bottom\n"[..]).unwrap();
    unpack_bytes(b.into_inner().unwrap(), t.path()).unwrap();
    assert_eq!(std::fs::read(t.path().join(&file)).unwrap(), b"bottom\n");
}
