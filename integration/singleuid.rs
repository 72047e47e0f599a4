//! Single-uid mode (no subordinate ids, the common case on a cluster): package installs in RUN
//! steps, and the owners a Dockerfile asks for. Run as both test users: with a subordinate range
//! the same builds must give the real owners, as before.

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
RUN useradd -u 1234 -m app && mkdir /srv/app && chown app:app /srv/app && chgrp -R app /home/app\n";
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
