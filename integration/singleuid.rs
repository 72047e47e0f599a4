//! Single-uid mode (no subordinate ids, the common case on a cluster): package installs in RUN
//! steps, and the owners a Dockerfile asks for. Run as both test users: with a subordinate range
//! the same builds must give the real owners, as before.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::sandbox::{Sandbox, build, busybox, context};

/// Where `integration/setup.sh` leaves the Debian userland (the build tests' base).
const DEBIAN_TAR: &str = "/var/tmp/den-fixtures/node.tar";

/// The Debian fixture as `debian:fixture` in the sandbox's store (an import: no registry, ~3 s).
fn debian(sb: &Sandbox) {
    assert!(
        Path::new(DEBIAN_TAR).is_file(),
        "{DEBIAN_TAR} is missing: run integration/setup.sh as root once (it makes it with mmdebstrap)"
    );
    sb.den(&["import", DEBIAN_TAR, "debian:fixture"]).ok();
}

const CONTROL: &str = "Package: den-hello\nVersion: 1.0\nArchitecture: all\n\
Maintainer: den tests <den@example.invalid>\nDescription: a postinst that makes a system user\n";

/// A maintainer script as packages have them: a system user, and a file given to it.
const POSTINST: &str = "#!/bin/sh\nset -e\n\
getent passwd denhello >/dev/null || useradd --system --no-create-home denhello\n\
chown denhello:denhello /opt/hello/data\n";

#[test]
fn apt_installs_a_local_package_whose_postinst_chowns() {
    let sb = Sandbox::new();
    debian(&sb);
    // The .deb is made in the build (dpkg-deb is in the image) and installed offline with apt,
    // which drops to _apt, chowns its partial directories, and runs dpkg, which runs the
    // postinst; then a user of the Dockerfile's own, and a chown to it.
    let df = "FROM debian:fixture\nCOPY pkg /pkg\n\
RUN chmod 0755 /pkg/DEBIAN/postinst && dpkg-deb --root-owner-group -b /pkg /tmp/den-hello.deb \
&& apt-get install -y /tmp/den-hello.deb && rm -r /pkg /tmp/den-hello.deb\n\
RUN useradd -u 1234 -m app && mkdir /srv/app && chown app:app /srv/app && chgrp -R app /home/app\n\
RUN touch /var/local/x && echo >> /var/log/lastlog\n";
    let dir = context(
        &sb,
        "ctx",
        df,
        &[
            ("pkg/DEBIAN/control", CONTROL.as_bytes()),
            ("pkg/DEBIAN/postinst", POSTINST.as_bytes()),
            ("pkg/opt/hello/data", b"hello\n"),
        ],
    );
    build(&sb, &dir, &["-q", "-t", "pkg:1"]).ok();
    let out = sb
        .den(&[
            "run",
            "--rm",
            "pkg:1",
            "sh",
            "-c",
            "dpkg-query -W -f '${Status}\\n' den-hello; id -u denhello; id -u app; \
             cat /opt/hello/data; stat -c %u /opt/hello/data /srv/app",
        ])
        .ok();
    // Single-uid mode has one id: the files are the user's (root inside); with a range, the
    // owners are real.
    let (hello, app) = if sb.mapped() {
        ("999", "1234")
    } else {
        ("0", "0")
    };
    assert_eq!(
        out,
        format!("install ok installed\n999\n1234\nhello\n{hello}\n{app}\n"),
    );
    // What the base image's layer says of owners reaches the layers made from it, in either
    // mode: a directory and a file the last step copied up (root:staff, root:utmp).
    let owners = saved_owners(&sb, "pkg:1", 1);
    assert_eq!(owners["var/local/"], (0, 50), "{owners:?}");
    assert_eq!(owners["var/log/lastlog"], (0, 43), "{owners:?}");
}

/// The owners (uid, gid) of the entries of the last `n` layers of `image` as `den save` writes
/// them (later layers win), by entry path.
fn saved_owners(sb: &Sandbox, image: &str, n: usize) -> BTreeMap<String, (u64, u64)> {
    let file = sb.dir.join("saved.tar");
    let f = file.to_string_lossy().into_owned();
    sb.den(&["save", "-o", &f, image]).ok();
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut a = tar::Archive::new(std::fs::File::open(&file).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        blobs.insert(name, bytes);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&blobs["manifest.json"]).unwrap();
    let layers: Vec<&str> = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let mut owners = BTreeMap::new();
    // den's own layers are plain tars.
    for l in &layers[layers.len() - n..] {
        let mut t = tar::Archive::new(&blobs[*l][..]);
        for e in t.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            owners.insert(name, (h.uid().unwrap(), h.gid().unwrap()));
        }
    }
    owners
}

#[test]
fn copy_chown_owners_reach_the_saved_layers() {
    let sb = Sandbox::new();
    let bb = busybox();
    // A RUN that appends to the file copies it up: its owner stays.
    let df = format!(
        "FROM {bb}\nCOPY --chown=1000:1000 f /f\nCOPY --chown=1000:1001 d /d/\n\
RUN echo more >> /f && touch /new\n"
    );
    let dir = context(&sb, "ctx", &df, &[("f", b"a\n"), ("d/sub/x", b"b\n")]);
    build(&sb, &dir, &["-q", "-t", "own:1"]).ok();
    let copies = saved_owners(&sb, "own:1", 3);
    assert_eq!(copies["d/"], (1000, 1001), "{copies:?}");
    assert_eq!(copies["d/sub/"], (1000, 1001), "{copies:?}");
    assert_eq!(copies["d/sub/x"], (1000, 1001), "{copies:?}");
    let run = saved_owners(&sb, "own:1", 1);
    assert_eq!(run["f"], (1000, 1000), "{run:?}");
    assert_eq!(run["new"], (0, 0), "{run:?}");
    // `cp` out as a tar: the owners the image has, in either mode.
    sb.den(&["create", "--name", "c", "own:1"]).ok();
    let out = sb.den(&["cp", "c:/d", "-"]);
    let mut cp = BTreeMap::new();
    for e in tar::Archive::new(out.ok_bytes()).entries().unwrap() {
        let e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        cp.insert(name, (e.header().uid().unwrap(), e.header().gid().unwrap()));
    }
    assert_eq!(cp["d/sub/x"], (1000, 1001), "{cp:?}");
    // In the container: the user's in single-uid mode, the real owner with a range.
    let shown = sb
        .den(&[
            "run", "--rm", "own:1", "stat", "-c", "%u:%g", "/f", "/d/sub/x",
        ])
        .ok();
    if sb.mapped() {
        assert_eq!(shown, "1000:1000\n1000:1001\n");
    } else {
        assert_eq!(shown, "0:0\n0:0\n");
    }
}

#[test]
fn fake_ids_are_for_builds_and_for_run_when_asked() {
    let sb = Sandbox::new();
    let bb = busybox();
    sb.den(&["pull", "-q", &bb]).ok();
    let script = "touch /f && chown 5:6 /f && echo chowned";
    let plain = sb.den(&["run", "--rm", &bb, "sh", "-c", script]);
    let asked = sb.den(&[
        "run",
        "--rm",
        "--security-opt",
        "fake-ids",
        &bb,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(asked.ok(), "chowned\n");
    if sb.mapped() {
        // The ids exist: chown works with or without.
        assert_eq!(plain.ok(), "chowned\n");
    } else {
        // Without: the kernel's answer, as before.
        assert_eq!(plain.code, 1, "{}", plain.stderr);
        assert!(
            plain.stderr.contains("Invalid argument"),
            "{}",
            plain.stderr
        );
    }
    sb.den(&["create", "--name", "c", "--security-opt", "fake-ids", &bb])
        .ok();
    let shown = sb
        .den(&["inspect", "-f", "{{.HostConfig.SecurityOpt}}", "c"])
        .ok();
    assert_eq!(shown, "[fake-ids]\n");
    sb.den(&[
        "run",
        "--rm",
        "--security-opt",
        "fake-ids=maybe",
        &bb,
        "true",
    ])
    .fails_with(125, "fake-ids=maybe");
}
