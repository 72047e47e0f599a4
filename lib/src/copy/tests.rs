//! `cp`'s rules, end to end over a container root in a temporary directory.

use super::paths::Spec;
use super::tarball::entry_rel;
use super::*;
use nix::sys::stat::UtimensatFlags;
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

struct Fx {
    t: tempfile::TempDir,
    root: PathBuf,
    host: PathBuf,
}

/// A container root with /etc/hello (0640, mtime 1e9) and /data/{a,sub/b,link}, and an empty
/// host directory.
fn fx() -> Fx {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let host = t.path().join("host");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("data/sub")).unwrap();
    std::fs::create_dir(&host).unwrap();
    file(&root.join("etc/hello"), "hi", 0o640);
    file(&root.join("etc/passwd"), "container passwd", 0o644);
    file(&root.join("data/a"), "A", 0o600);
    file(&root.join("data/sub/b"), "B", 0o755);
    symlink("/etc/passwd", root.join("data/link")).unwrap();
    chmod(&root.join("data"), 0o750);
    for p in ["etc/hello", "data/a", "data/sub/b", "data/sub", "data"] {
        set_mtime(&root.join(p), 1_000_000_000);
    }
    Fx { t, root, host }
}

fn file(p: &Path, content: &str, mode: u32) {
    std::fs::write(p, content).unwrap();
    chmod(p, mode);
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn set_mtime(p: &Path, secs: i64) {
    let t = TimeSpec::new(secs, 0);
    nix::sys::stat::utimensat(None, p, &t, &t, UtimensatFlags::NoFollowSymlink).unwrap();
}

/// Root of the initial user namespace, or of one mapping every id.
fn maps_all_ids() -> bool {
    nix::unistd::geteuid().is_root()
        && std::fs::read_to_string("/proc/self/uid_map")
            .is_ok_and(|m| m.split_whitespace().nth(2) == Some("4294967295"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn mode_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn mtime_of(p: &Path) -> i64 {
    std::fs::symlink_metadata(p).unwrap().mtime()
}

fn out(f: &Fx, ctr: &str, dst: &Path) -> Result<(), CopyError> {
    copy_out(&f.root, ctr, Dest::Path(dst), false, &mut io::sink())
}

fn into(f: &Fx, src: &Path, ctr: &str) -> Result<(), CopyError> {
    copy_in(&f.root, Source::Path(src), ctr, &mut io::empty())
}

fn stdin(f: &Fx, tar: &[u8], ctr: &str) -> Result<(), CopyError> {
    copy_in(&f.root, Source::Stdin, ctr, &mut &tar[..])
}

fn to_stdout(f: &Fx, ctr: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    copy_out(&f.root, ctr, Dest::Stdout, false, &mut buf).unwrap();
    buf
}

/// (name, type, mode, link name) of each entry.
fn listing(tar: &[u8]) -> Vec<(String, char, u32, String)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                h.entry_type().as_byte() as char,
                h.mode().unwrap(),
                link,
            )
        })
        .collect()
}

fn names(tar: &[u8]) -> Vec<String> {
    listing(tar).into_iter().map(|e| e.0).collect()
}

/// A tar written header by header, so that it can hold what `tar::Builder` refuses.
/// Entries: (name, type, mode, uid, content or link target).
fn raw_tar(entries: &[(&str, tar::EntryType, u32, u64, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, t, mode, uid, body) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(*t);
        h.set_mode(*mode);
        h.set_uid(*uid);
        h.set_gid(*uid);
        h.set_mtime(1_234_567_890);
        let content = if matches!(t, tar::EntryType::Symlink | tar::EntryType::Link) {
            h.as_old_mut().linkname[..body.len()].copy_from_slice(body.as_bytes());
            ""
        } else {
            body
        };
        h.set_size(content.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(content.as_bytes());
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

// --- Out of the container, to a host path.

#[test]
fn file_to_a_new_path_keeps_mode_and_time() {
    let f = fx();
    let dst = f.host.join("out.txt");
    out(&f, "/etc/hello", &dst).unwrap();
    assert_eq!(read(&dst), "hi");
    assert_eq!(mode_of(&dst), 0o640);
    assert_eq!(mtime_of(&dst), 1_000_000_000);
}

#[test]
fn file_to_an_existing_directory_keeps_its_name() {
    let f = fx();
    out(&f, "etc/hello", &f.host).unwrap();
    assert_eq!(read(&f.host.join("hello")), "hi");
}

#[test]
fn file_overwrites_an_existing_file() {
    let f = fx();
    let dst = f.host.join("f");
    file(&dst, "old content", 0o600);
    out(&f, "/etc/hello", &dst).unwrap();
    assert_eq!(read(&dst), "hi");
    assert_eq!(mode_of(&dst), 0o640);
}

#[test]
fn destination_symlink_is_followed() {
    let f = fx();
    std::fs::create_dir(f.host.join("real")).unwrap();
    symlink("real", f.host.join("alias")).unwrap();
    out(&f, "/etc/hello", &f.host.join("alias")).unwrap();
    assert_eq!(read(&f.host.join("real/hello")), "hi");
}

#[test]
fn directory_to_a_new_path_is_created_with_its_contents() {
    let f = fx();
    let dst = f.host.join("new");
    out(&f, "/data", &dst).unwrap();
    assert_eq!(read(&dst.join("a")), "A");
    assert_eq!(read(&dst.join("sub/b")), "B");
    assert_eq!(mode_of(&dst), 0o750);
    assert_eq!(mode_of(&dst.join("sub/b")), 0o755);
    assert_eq!(mtime_of(&dst), 1_000_000_000);
    assert_eq!(mtime_of(&dst.join("sub")), 1_000_000_000);
}

#[test]
fn directory_into_an_existing_directory_keeps_its_name() {
    let f = fx();
    out(&f, "/data", &f.host).unwrap();
    assert_eq!(read(&f.host.join("data/a")), "A");
    assert_eq!(read(&f.host.join("data/sub/b")), "B");
}

#[test]
fn dot_copies_the_contents_into_an_existing_directory() {
    let f = fx();
    chmod(&f.host, 0o700);
    out(&f, "/data/.", &f.host).unwrap();
    assert_eq!(read(&f.host.join("a")), "A");
    assert_eq!(read(&f.host.join("sub/b")), "B");
    assert!(!f.host.join("data").exists());
    // The destination itself is left as it was.
    assert_eq!(mode_of(&f.host), 0o700);
    // And `/.` on a missing destination creates it, like a plain directory.
    out(&f, "/data/.", &f.host.join("fresh")).unwrap();
    assert_eq!(read(&f.host.join("fresh/a")), "A");
}

#[test]
fn a_directory_never_replaces_a_file() {
    let f = fx();
    let dst = f.host.join("f");
    file(&dst, "x", 0o644);
    let e = out(&f, "/data", &dst).unwrap_err();
    assert!(matches!(e, CopyError::DirToFile { .. }), "{e:?}");
    assert!(e.to_string().contains("cannot copy a directory to a file"));
    assert_eq!(read(&dst), "x");
}

#[test]
fn a_missing_source_is_reported_as_docker_does() {
    let f = fx();
    let e = out(&f, "/nope", &f.host).unwrap_err();
    assert!(matches!(e, CopyError::NotFound { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "Could not find the file /nope in the container"
    );
    assert!(e.hint().is_some());
    let e = out(&f, "/etc/hello/x", &f.host).unwrap_err();
    assert!(matches!(e, CopyError::NotFound { .. }), "{e:?}");
}

#[test]
fn trailing_slash_rules() {
    let f = fx();
    // A file to a missing path ending in `/`: docker's "no such directory".
    let e = out(&f, "/etc/hello", &f.host.join("newdir/")).unwrap_err();
    assert!(matches!(e, CopyError::DirNotExists { .. }), "{e:?}");
    assert!(!f.host.join("newdir").exists());
    // A directory to one is created.
    out(&f, "/data", &f.host.join("newdir/")).unwrap();
    assert_eq!(read(&f.host.join("newdir/a")), "A");
    // A source ending in `/` must be a directory.
    let e = out(&f, "/etc/hello/", &f.host).unwrap_err();
    assert!(matches!(e, CopyError::NotADirectory { .. }), "{e:?}");
    // So must a destination, when it exists.
    file(&f.host.join("plain"), "x", 0o644);
    let e = out(&f, "/etc/hello", &f.host.join("plain/")).unwrap_err();
    assert!(matches!(e, CopyError::NotADirectory { .. }), "{e:?}");
    // A missing parent is an error, not created.
    let e = out(&f, "/etc/hello", &f.host.join("no/such/file")).unwrap_err();
    assert!(matches!(e, CopyError::LocalNotFound { .. }), "{e:?}");
}

#[test]
fn symlinks_are_copied_as_symlinks_never_followed() {
    let f = fx();
    out(&f, "/data", &f.host).unwrap();
    let link = f.host.join("data/link");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/etc/passwd"));
    // Named as the source, the link itself is copied...
    out(&f, "/data/link", &f.host.join("l2")).unwrap();
    assert!(
        std::fs::symlink_metadata(f.host.join("l2"))
            .unwrap()
            .is_symlink()
    );
    // ...unless -L: then its target in the container (not the host's /etc/passwd), under
    // the link's name.
    copy_out(
        &f.root,
        "/data/link",
        Dest::Path(&f.host),
        true,
        &mut io::sink(),
    )
    .unwrap();
    assert_eq!(read(&f.host.join("link")), "container passwd");
    // The same for a host symlink copied in.
    file(&f.host.join("target"), "target", 0o644);
    symlink("target", f.host.join("hostlink")).unwrap();
    into(&f, &f.host.join("hostlink"), "/etc").unwrap();
    assert!(
        std::fs::symlink_metadata(f.root.join("etc/hostlink"))
            .unwrap()
            .is_symlink()
    );
    let src = Source::Path(&f.host.join("hostlink"));
    copy_in_with(&f.root, src, "/data", &mut io::empty(), true).unwrap();
    assert_eq!(read(&f.root.join("data/hostlink")), "target");
}

#[test]
fn hard_links_in_a_tree_stay_hard_links() {
    let f = fx();
    std::fs::hard_link(f.root.join("data/a"), f.root.join("data/a2")).unwrap();
    out(&f, "/data", &f.host.join("d")).unwrap();
    let a = std::fs::metadata(f.host.join("d/a")).unwrap();
    let a2 = std::fs::metadata(f.host.join("d/a2")).unwrap();
    assert_eq!(a.ino(), a2.ino());
    let tar = to_stdout(&f, "/data");
    let l = listing(&tar);
    assert!(
        l.contains(&("data/a2".into(), '1', 0o600, "data/a".into())),
        "{l:?}"
    );
}

// --- Out of the container, as a tar on stdout.

#[test]
fn stdout_tar_starts_with_the_source_base_name() {
    let f = fx();
    let tar = to_stdout(&f, "/data");
    assert_eq!(
        listing(&tar),
        [
            ("data/".into(), '5', 0o750, String::new()),
            ("data/a".into(), '0', 0o600, String::new()),
            ("data/link".into(), '2', 0o777, "/etc/passwd".into()),
            ("data/sub/".into(), '5', 0o755, String::new()),
            ("data/sub/b".into(), '0', 0o755, String::new()),
        ]
    );
    assert_eq!(names(&to_stdout(&f, "/etc/hello")), ["hello"]);
    assert_eq!(
        names(&to_stdout(&f, "/data/.")),
        ["./", "a", "link", "sub/", "sub/b"]
    );
    let mut a = tar::Archive::new(&tar[..]);
    let mut e = a.entries().unwrap().nth(1).unwrap().unwrap();
    let mut s = String::new();
    e.read_to_string(&mut s).unwrap();
    assert_eq!(s, "A");
    assert_eq!(e.header().mtime().unwrap(), 1_000_000_000);
}

// --- Into the container.

#[test]
fn host_file_into_the_container_belongs_to_root() {
    let f = fx();
    let src = f.host.join("hello");
    file(&src, "from host", 0o604);
    set_mtime(&src, 1_500_000_000);
    let _ = nix::unistd::chown(&src, Some(Uid::from_raw(1234)), Some(Gid::from_raw(1234)));
    into(&f, &src, "/etc/new").unwrap();
    let dst = f.root.join("etc/new");
    assert_eq!(read(&dst), "from host");
    assert_eq!(mode_of(&dst), 0o604);
    assert_eq!(mtime_of(&dst), 1_500_000_000);
    if nix::unistd::geteuid().is_root() {
        let md = std::fs::metadata(&dst).unwrap();
        assert_eq!((md.uid(), md.gid()), (0, 0));
    }
    into(&f, &src, "/etc/").unwrap();
    assert_eq!(read(&f.root.join("etc/hello")), "from host");
}

#[test]
fn host_directory_into_the_container_keeps_modes_and_times() {
    let f = fx();
    let src = f.host.join("tree");
    std::fs::create_dir_all(src.join("inner")).unwrap();
    file(&src.join("inner/x"), "x", 0o754);
    symlink("../../../../etc/shadow", src.join("inner/up")).unwrap();
    chmod(&src.join("inner"), 0o511);
    set_mtime(&src.join("inner"), 1_100_000_000);
    into(&f, &src, "/").unwrap();
    let dst = f.root.join("tree/inner");
    assert_eq!(read(&dst.join("x")), "x");
    assert_eq!(mode_of(&dst.join("x")), 0o754);
    assert_eq!(mode_of(&dst), 0o511);
    assert_eq!(mtime_of(&dst), 1_100_000_000);
    assert_eq!(
        std::fs::read_link(dst.join("up")).unwrap(),
        Path::new("../../../../etc/shadow")
    );
    // `/.` copies the contents into a new directory.
    into(&f, &src.join("."), "/copy").unwrap();
    assert_eq!(read(&f.root.join("copy/inner/x")), "x");
    chmod(&src.join("inner"), 0o755);
}

#[test]
fn container_destination_symlink_is_followed_in_scope() {
    let f = fx();
    symlink("/etc", f.root.join("cfg")).unwrap();
    let src = f.host.join("hello2");
    file(&src, "x", 0o644);
    into(&f, &src, "/cfg").unwrap();
    assert_eq!(read(&f.root.join("etc/hello2")), "x");
    let e = into(&f, &src, "/missing/dir/file").unwrap_err();
    assert!(matches!(e, CopyError::NotFound { .. }), "{e:?}");
}

#[test]
fn container_symlinks_to_host_paths_stay_inside_the_root() {
    let f = fx();
    // A directory on the host, next to the root, with a secret in it.
    let outside = f.t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    file(&outside.join("secret"), "host secret", 0o644);
    // Symlinks in the container aiming at it, absolutely and by climbing.
    symlink(&outside, f.root.join("abs")).unwrap();
    symlink("../../../../../../../../outside", f.root.join("up")).unwrap();
    for link in ["/abs/secret", "/up/secret"] {
        let e = out(&f, link, &f.host).unwrap_err();
        assert!(matches!(e, CopyError::NotFound { .. }), "{link}: {e:?}");
        let e = copy_out(&f.root, link, Dest::Stdout, false, &mut Vec::new()).unwrap_err();
        assert!(matches!(e, CopyError::NotFound { .. }), "{link}: {e:?}");
    }
    assert!(!f.host.join("secret").exists());
    // Writing through them lands inside the root.
    let inner = f.root.join(outside.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inner).unwrap();
    std::fs::create_dir_all(f.root.join("outside")).unwrap();
    let src = f.host.join("payload");
    file(&src, "payload", 0o644);
    into(&f, &src, "/abs/").unwrap();
    into(&f, &src, "/up/").unwrap();
    assert_eq!(read(&inner.join("payload")), "payload");
    assert_eq!(read(&f.root.join("outside/payload")), "payload");
    assert!(!outside.join("payload").exists());
    assert_eq!(read(&outside.join("secret")), "host secret");
    // And so does a tar's entry below them.
    let tar = raw_tar(&[("abs/x", tar::EntryType::Regular, 0o644, 0, "tar")]);
    stdin(&f, &tar, "/").unwrap();
    assert_eq!(read(&inner.join("x")), "tar");
    assert!(!outside.join("x").exists());
}

// --- A tar on stdin.

#[test]
fn stdin_tar_is_extracted_with_modes_owners_and_links() {
    let f = fx();
    std::fs::create_dir(f.root.join("dst")).unwrap();
    use tar::EntryType as T;
    let tar = raw_tar(&[
        ("./", T::Directory, 0o700, 0, ""),
        ("x/", T::Directory, 0o751, 0, ""),
        ("x/f", T::Regular, 0o640, 1234, "data"),
        ("x/l", T::Symlink, 0o777, 0, "/etc/passwd"),
        ("x/h", T::Link, 0o640, 0, "x/f"),
        ("/abs/name", T::Regular, 0o644, 0, "rooted"),
        ("deep/er/file", T::Regular, 0o644, 0, "parents made"),
    ]);
    stdin(&f, &tar, "/dst").unwrap();
    let d = f.root.join("dst");
    assert_eq!(read(&d.join("x/f")), "data");
    assert_eq!(mode_of(&d.join("x/f")), 0o640);
    assert_eq!(mode_of(&d.join("x")), 0o751);
    assert_eq!(mtime_of(&d.join("x/f")), 1_234_567_890);
    assert_eq!(mtime_of(&d.join("x")), 1_234_567_890);
    assert_eq!(
        std::fs::read_link(d.join("x/l")).unwrap(),
        Path::new("/etc/passwd")
    );
    let ino = |p: &str| std::fs::metadata(d.join(p)).unwrap().ino();
    assert_eq!(ino("x/f"), ino("x/h"));
    assert_eq!(read(&d.join("abs/name")), "rooted");
    assert_eq!(read(&d.join("deep/er/file")), "parents made");
    // `.` is the destination itself, left alone.
    assert_ne!(mode_of(&d), 0o700);
    // The archive's owner where it is mapped; in a single-id namespace, root.
    let uid = std::fs::metadata(d.join("x/f")).unwrap().uid();
    if maps_all_ids() {
        assert_eq!(uid, 1234);
    } else if nix::unistd::geteuid().is_root() {
        assert_eq!(uid, nix::unistd::geteuid().as_raw());
    }
}

#[test]
fn stdin_tar_may_be_compressed() {
    let f = fx();
    let tar = raw_tar(&[("z", tar::EntryType::Regular, 0o644, 0, "zipped")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    stdin(&f, &gz.finish().unwrap(), "/etc").unwrap();
    assert_eq!(read(&f.root.join("etc/z")), "zipped");
    let zst = zstd::encode_all(&tar[..], 1).unwrap();
    stdin(&f, &zst, "/data").unwrap();
    assert_eq!(read(&f.root.join("data/z")), "zipped");
}

#[test]
fn stdin_needs_an_existing_directory() {
    let f = fx();
    let tar = raw_tar(&[("z", tar::EntryType::Regular, 0o644, 0, "z")]);
    let e = stdin(&f, &tar, "/etc/hello").unwrap_err();
    assert!(matches!(e, CopyError::ExtractTarget { .. }), "{e:?}");
    let e = stdin(&f, &tar, "/nowhere").unwrap_err();
    assert!(matches!(e, CopyError::NotFound { .. }), "{e:?}");
    let e = stdin(&f, b"this is not a tar archive, not at all, nope", "/etc").unwrap_err();
    assert!(matches!(e, CopyError::Archive(_)), "{e:?}");
}

#[test]
fn tar_entries_climbing_out_are_refused_and_nothing_is_written() {
    let f = fx();
    std::fs::create_dir(f.root.join("dst")).unwrap();
    use tar::EntryType as T;
    for tar in [
        raw_tar(&[("../evil", T::Regular, 0o644, 0, "evil")]),
        raw_tar(&[("a/../../../evil", T::Regular, 0o644, 0, "evil")]),
        raw_tar(&[("evil", T::Link, 0o644, 0, "../../etc/hello")]),
    ] {
        let e = stdin(&f, &tar, "/dst").unwrap_err();
        assert!(matches!(e, CopyError::Escape { .. }), "{e:?}");
        assert!(e.hint().is_some());
    }
    assert!(!f.root.join("evil").exists());
    assert!(!f.t.path().join("evil").exists());
    assert_eq!(std::fs::read_dir(f.root.join("dst")).unwrap().count(), 0);
}

#[test]
fn tar_symlink_used_as_a_parent_resolves_inside_the_root() {
    let f = fx();
    let outside = f.t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    use tar::EntryType as T;
    let tar = raw_tar(&[
        ("l", T::Symlink, 0o777, 0, outside.to_str().unwrap()),
        ("l/evil", T::Regular, 0o644, 0, "evil"),
        ("r", T::Symlink, 0o777, 0, "../../../../../../outside"),
        ("r/evil", T::Regular, 0o644, 0, "evil"),
    ]);
    stdin(&f, &tar, "/").unwrap();
    assert!(!outside.join("evil").exists());
    let inner = f.root.join(outside.strip_prefix("/").unwrap());
    assert_eq!(read(&inner.join("evil")), "evil");
    assert_eq!(read(&f.root.join("outside/evil")), "evil");
}

#[test]
fn tar_never_replaces_a_directory_with_a_file_or_back() {
    let f = fx();
    use tar::EntryType as T;
    let e = stdin(&f, &raw_tar(&[("data", T::Regular, 0o644, 0, "x")]), "/").unwrap_err();
    assert!(matches!(e, CopyError::OverwriteDir { .. }), "{e:?}");
    let e = stdin(
        &f,
        &raw_tar(&[("hello/", T::Directory, 0o755, 0, "")]),
        "/etc",
    )
    .unwrap_err();
    assert!(matches!(e, CopyError::OverwriteNonDir { .. }), "{e:?}");
    assert_eq!(read(&f.root.join("etc/hello")), "hi");
    // A file replaces a file, and a symlink is replaced rather than written through.
    symlink("/etc/passwd", f.root.join("etc/ln")).unwrap();
    stdin(&f, &raw_tar(&[("ln", T::Regular, 0o644, 0, "new")]), "/etc").unwrap();
    assert_eq!(read(&f.root.join("etc/ln")), "new");
    assert_eq!(read(&f.root.join("etc/passwd")), "container passwd");
}

// --- Pieces.

#[test]
fn paths_are_read_as_docker_reads_them() {
    let s = Spec::parse(OsStr::new("a/../b/./c/."), Path::new("/"));
    assert_eq!(s.path(), Path::new("/b/c"));
    assert!(s.contents && s.dir);
    let s = Spec::parse(OsStr::new("../../x/"), Path::new("/"));
    assert_eq!(s.path(), Path::new("/x"));
    assert!(!s.contents && s.dir);
    let s = Spec::parse(OsStr::new("rel"), Path::new("/home/u"));
    assert_eq!(s.path(), Path::new("/home/u/rel"));
    assert!(!s.contents && !s.dir);
    let s = Spec::parse(OsStr::new("."), Path::new("/home/u"));
    assert!(s.contents);
    assert_eq!(entry_rel(b"/a//./b"), Some(Some(PathBuf::from("a/b"))));
    assert_eq!(entry_rel(b"./"), Some(None));
    assert_eq!(entry_rel(b"a/../b"), None);
}
