//! `den run`: stdio, terminals, exit codes, flags, isolation, the image's configuration.

use crate::sandbox::{Registry, Sandbox, busybox, registry, sha256_hex};

fn layered() -> String {
    registry().image("test/layered")
}

#[test]
fn echo_prints_exactly_and_nothing_else() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    let out = sb.den(&["run", "--rm", &busybox(), "echo", "hello"]);
    assert_eq!(out.ok(), "hello\n");
    assert_eq!(out.stderr, "", "no noise on stderr");
}

#[test]
fn run_pulls_a_missing_image_and_keeps_stdout_clean() {
    let sb = Sandbox::new();
    let out = sb.den(&["run", "--rm", &busybox(), "echo", "hi"]);
    assert_eq!(out.ok(), "hi\n");
    assert!(
        out.stderr.contains("Unable to find image"),
        "{}",
        out.stderr
    );
    assert_eq!(sb.den(&["images", "-q"]).ok().lines().count(), 1);
}

#[test]
fn run_uses_the_local_copy_without_asking_the_registry() {
    let sb = Sandbox::new();
    let mut reg = Registry::start("local-copy");
    reg.push("busybox", "library/busybox");
    let img = reg.image("library/busybox");
    sb.den(&["pull", "-q", &img]).ok();
    reg.stop();
    let out = sb.den(&["run", "--rm", &img, "echo", "offline"]);
    assert_eq!(out.ok(), "offline\n");
    assert_eq!(out.stderr, "");
}

#[test]
fn stdin_streams_with_i_and_is_empty_without() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    assert_eq!(
        sb.den_input(
            &["run", "-i", "--rm", &busybox(), "tr", "a-z", "A-Z"],
            b"abc\n"
        )
        .ok(),
        "ABC\n"
    );
    // Without -i the container's stdin is empty, whatever den's stdin holds.
    assert_eq!(
        sb.den_input(&["run", "--rm", &busybox(), "cat"], b"should not arrive")
            .ok(),
        ""
    );
}

#[test]
fn stdin_is_binary_safe_and_large() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    let mut data = Vec::with_capacity(24 << 20);
    let mut x: u64 = 0x9e3779b97f4a7c15;
    while data.len() < 24 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.extend_from_slice(b"\0\r\n\xff tail without newline");
    let out = sb.den_input(&["run", "-i", "--rm", &busybox(), "cat"], &data);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.len(), data.len());
    assert_eq!(sha256_hex(&out.stdout), sha256_hex(&data));
    // EOF reaches the container: wc ends and counts.
    assert_eq!(
        sb.den_input(&["run", "-i", "--rm", &busybox(), "wc", "-c"], &data)
            .ok()
            .trim(),
        data.len().to_string()
    );
}

#[test]
fn exit_codes_follow_docker() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    assert_eq!(
        sb.den(&["run", "--rm", &busybox(), "sh", "-c", "exit 3"])
            .code,
        3
    );
    // A container killed by a signal: 128 + the signal, as docker reports it.
    assert_eq!(
        sb.den(&[
            "run",
            "--rm",
            &busybox(),
            "sh",
            "-c",
            "sh -c 'kill -9 $$'; exit $?"
        ])
        .code,
        137
    );
    sb.den(&["run", "--rm", &busybox(), "no-such-command"])
        .fails_with(127, "executable file not found");
    sb.den(&["run", "--rm", &busybox(), "/etc/passwd"])
        .fails_with(126, "permission denied");
    sb.den(&["run", "--rm", &busybox(), "/etc"])
        .fails_with(126, "permission denied");
    sb.den(&["run", "--rm", "-u", "nosuchuser", &busybox(), "true"])
        .fails_with(125, "nosuchuser");
}

#[test]
fn signals_sent_to_den_reach_the_container() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    let mut child = sb
        .cmd(
            "den",
            &[
                "run",
                "--rm",
                &busybox(),
                "sh",
                "-c",
                "trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.1; done",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first, b"ready\n");
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "got TERM\n");
    assert_eq!(child.wait().unwrap().code(), Some(42));
}

#[test]
fn a_terminal_with_size_resize_and_ctrl_c() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    let out = sb.den_pty(
        &[
            "--rows",
            "33",
            "--cols",
            "111",
            "expect:# ",
            "send:tty; stty size; echo TERM=$TERM\\n",
            "expect:33 111",
            "resize:40x120",
            "send:stty size\\n",
            "expect:40 120",
            "send:sleep 60\\n",
            "sleep:0.5",
            "send:\\x03",
            "expect:# ",
            "send:echo back from ctrl-c\\n",
            "expect:back from ctrl-c",
            "send:exit 4\\n",
        ],
        &["run", "-it", "--rm", &busybox(), "sh"],
    );
    let text = out.out();
    assert_eq!(out.code, 4, "{text}\n{}", out.stderr);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("TERM=xterm"), "{text}");
}

#[test]
fn a_terminal_without_i_still_has_its_size() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    let out = sb.den_pty(
        &["--rows", "21", "--cols", "77"],
        &["run", "-t", "--rm", &busybox(), "stty", "size"],
    );
    assert_eq!(out.code, 0, "{}", out.out());
    assert!(out.out().contains("21 77"), "{}", out.out());
}

#[test]
fn tty_with_i_needs_a_terminal() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    sb.den_input(&["run", "-it", "--rm", &busybox(), "sh"], b"exit\n")
        .fails_with(125, "the input device is not a TTY");
}

#[test]
fn flags_environment_workdir_user_entrypoint_hostname() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    let envfile = sb.dir.join("env.list");
    std::fs::write(&envfile, "# a comment\nFROM_FILE=yes\n").unwrap();
    let out = sb
        .den(&[
            "run",
            "--rm",
            "-e",
            "A=1",
            "--env",
            "B=two words",
            "--env-file",
            envfile.to_str().unwrap(),
            &busybox(),
            "sh",
            "-c",
            "echo $A/$B/$FROM_FILE",
        ])
        .ok();
    assert_eq!(out, "1/two words/yes\n");
    assert_eq!(
        sb.den(&["run", "--rm", "-w", "/tmp", &busybox(), "pwd"])
            .ok(),
        "/tmp\n"
    );
    assert_eq!(
        sb.den(&["run", "--rm", "-w", "/does/not/exist", &busybox(), "pwd"])
            .ok(),
        "/does/not/exist\n"
    );
    assert_eq!(
        sb.den(&[
            "run",
            "--rm",
            "--entrypoint",
            "echo",
            &busybox(),
            "via",
            "entrypoint"
        ])
        .ok(),
        "via entrypoint\n"
    );
    assert_eq!(
        sb.den(&["run", "--rm", "--hostname", "box1", &busybox(), "hostname"])
            .ok(),
        "box1\n"
    );
    assert_eq!(
        sb.den(&[
            "run",
            "--rm",
            "-h",
            "box2",
            &busybox(),
            "cat",
            "/etc/hostname"
        ])
        .ok(),
        "box2\n"
    );
    if sb.mapped() {
        assert_eq!(
            sb.den(&["run", "--rm", "-u", "1000:1000", &busybox(), "id"])
                .ok(),
            "uid=1000(app) gid=1000(app) groups=1000(app)\n"
        );
        assert_eq!(
            sb.den(&[
                "run",
                "--rm",
                "-u",
                "app",
                &busybox(),
                "sh",
                "-c",
                "id -u; echo $HOME"
            ])
            .ok(),
            "1000\n/home/app\n"
        );
    } else {
        sb.den(&["run", "--rm", "-u", "1000", &busybox(), "id"])
            .fails_with(125, "single-uid mode");
    }
    assert_eq!(sb.den(&["run", "--rm", &busybox(), "id", "-u"]).ok(), "0\n");
}

#[test]
fn container_names_are_unique() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    sb.den(&["run", "--name", "web", &busybox(), "true"]).ok();
    sb.den(&["run", "--name", "web", &busybox(), "true"])
        .fails_with(125, "is already in use");
    sb.den(&["run", "--name", "bad/name", &busybox(), "true"])
        .fails_with(125, "invalid container name");
}

#[test]
fn network_none_and_host() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    let none = sb
        .den(&[
            "run",
            "--rm",
            "--network",
            "none",
            &busybox(),
            "cat",
            "/proc/net/dev",
        ])
        .ok();
    let ifaces: Vec<&str> = none
        .lines()
        .skip(2)
        .map(|l| l.trim().split(':').next().unwrap())
        .collect();
    assert_eq!(ifaces, ["lo"], "{none}");
    let host = sb
        .den(&[
            "run",
            "--rm",
            "--network",
            "host",
            &busybox(),
            "cat",
            "/proc/net/dev",
        ])
        .ok();
    assert!(host.lines().count() > 3, "{host}");
    // A name den does not know is a user network that does not exist, as docker says.
    sb.den(&["run", "--rm", "--network", "bridge0", &busybox(), "true"])
        .fails_with(125, "network bridge0 not found");
    sb.den(&[
        "run",
        "--rm",
        "--network",
        "slirp4netns:mtu=1",
        &busybox(),
        "true",
    ])
    .fails_with(125, "network mode");
}

#[test]
fn containers_are_isolated_and_the_image_never_changes() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    sb.den(&[
        "run",
        "--name",
        "writer",
        &busybox(),
        "sh",
        "-c",
        "echo mine > /etc/marker; rm /bin/vi",
    ])
    .ok();
    let other = sb
        .den(&[
            "run",
            "--rm",
            &busybox(),
            "sh",
            "-c",
            "cat /etc/marker 2>&1; ls /bin/vi",
        ])
        .ok();
    assert!(other.contains("No such file"), "{other}");
    assert!(other.contains("/bin/vi"), "{other}");
    // Each container has its own /tmp and processes: its pid 1 is its own.
    assert_eq!(
        sb.den(&["run", "--rm", &busybox(), "sh", "-c", "echo $$"])
            .ok(),
        "1\n"
    );
}

#[test]
fn devices_and_etc_files_are_provided() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    let out = sb
        .den(&[
            "run", "--rm", &busybox(), "sh", "-c",
            "for f in /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; do [ -c $f ] && echo $f; done; \
             [ -d /dev/pts ] && echo pts; [ -d /dev/shm ] && echo shm; \
             head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok; \
             [ -s /etc/hosts ] && [ -s /etc/hostname ] && [ -s /etc/resolv.conf ] && echo etc-ok; \
             echo y > /dev/shm/f && cat /dev/shm/f",
        ])
        .ok();
    for want in [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
        "pts",
        "shm",
        "4",
        "null-ok",
        "etc-ok",
        "y",
    ] {
        assert!(
            out.lines().any(|l| l.trim() == want),
            "missing {want}: {out}"
        );
    }
}

#[test]
fn the_image_configuration_is_applied() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &layered()]).ok();
    assert_eq!(
        sb.den(&["run", "--rm", &layered(), "sh", "-c", "pwd; echo $LAYERED"])
            .ok(),
        "/srv\nyes\n"
    );
    // CMD ["sh"] with no command: a shell reading empty stdin, which exits at once.
    assert_eq!(sb.den(&["run", "--rm", &layered()]).ok(), "");
}

#[test]
fn layer_contents_whiteouts_links_and_owners() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &layered()]).ok();
    let ls = sb
        .den(&[
            "run",
            "--rm",
            &layered(),
            "sh",
            "-c",
            "ls /srv /srv/replaced",
        ])
        .ok();
    assert!(!ls.contains("deleted"), "whiteout: {ls}");
    assert!(
        !ls.contains("old-1") && ls.contains("new"),
        "opaque dir: {ls}"
    );
    assert!(
        ls.contains("from-zstd") && ls.contains("from-plain"),
        "{ls}"
    );
    let inodes = sb
        .den(&[
            "run",
            "--rm",
            &layered(),
            "stat",
            "-c",
            "%i",
            "/srv/hardlink-a",
            "/srv/hardlink-b",
        ])
        .ok();
    let v: Vec<&str> = inodes.lines().collect();
    assert_eq!(v[0], v[1], "hard link kept");
    assert_eq!(
        sb.den(&["run", "--rm", &layered(), "stat", "-c", "%a", "/srv/setuid"])
            .ok(),
        "4755\n"
    );
    assert_eq!(
        sb.den(&["run", "--rm", &layered(), "readlink", "/srv/link-to-app"])
            .ok(),
        "app-owned\n"
    );
    let owners = sb
        .den(&[
            "run",
            "--rm",
            &layered(),
            "stat",
            "-c",
            "%u:%g %n",
            "/srv/app-owned",
            "/srv/www-owned",
            "/srv/nobody-owned",
            "/srv/root-owned",
        ])
        .ok();
    if sb.mapped() {
        assert_eq!(
            owners,
            "1000:1000 /srv/app-owned\n33:33 /srv/www-owned\n65534:65534 /srv/nobody-owned\n0:0 /srv/root-owned\n"
        );
        assert_eq!(
            sb.den(&[
                "run",
                "--rm",
                &layered(),
                "sh",
                "-c",
                "touch /x && chown 1000:33 /x && stat -c %u:%g /x"
            ])
            .ok(),
            "1000:33\n"
        );
    } else {
        assert_eq!(
            owners,
            "0:0 /srv/app-owned\n0:0 /srv/www-owned\n0:0 /srv/nobody-owned\n0:0 /srv/root-owned\n"
        );
    }
}

#[test]
fn the_image_entrypoint_cmd_user_and_workdir() {
    let sb = Sandbox::new();
    let img = registry().image("test/entrypoint");
    sb.den(&["pull", "-q", &img]).ok();
    if sb.mapped() {
        assert_eq!(
            sb.den(&["run", "--rm", &img]).ok(),
            "from-entrypoint default-cmd\n"
        );
        assert_eq!(
            sb.den(&["run", "--rm", &img, "given"]).ok(),
            "from-entrypoint given\n"
        );
        assert_eq!(
            sb.den(&["run", "--rm", "--entrypoint", "", &img, "id", "-u"])
                .ok(),
            "1000\n"
        );
        assert_eq!(
            sb.den(&[
                "run",
                "--rm",
                "--entrypoint",
                "sh",
                &img,
                "-c",
                "pwd; echo $IMAGE_ENV; echo $HOME"
            ])
            .ok(),
            "/home/app\nset\n/home/app\n"
        );
        assert_eq!(
            sb.den(&["run", "--rm", "-u", "0", "--entrypoint", "id", &img, "-u"])
                .ok(),
            "0\n"
        );
    } else {
        // The image runs as uid 1000, which single-uid mode cannot provide; -u 0 can.
        sb.den(&["run", "--rm", &img])
            .fails_with(125, "single-uid mode");
        assert_eq!(
            sb.den(&["run", "--rm", "-u", "0", &img, "x"]).ok(),
            "from-entrypoint x\n"
        );
    }
}

#[test]
fn works_without_xdg_runtime_dir() {
    let mut sb = Sandbox::new();
    let img = busybox();
    sb.den(&["pull", "-q", &img]).ok();
    let mut c = sb.cmd("den", &["run", "--rm", &img, "echo", "no runtime dir"]);
    c.env_remove("XDG_RUNTIME_DIR");
    let out = crate::sandbox::run(c);
    assert_eq!(out.ok(), "no runtime dir\n");
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let dir = std::path::PathBuf::from(format!("/tmp/den-{uid}"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // A runtime directory others can write is refused.
    let open = sb.dir.join("open-rt");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    sb.set_env("DEN_RUNTIME_DIR", open.to_str().unwrap());
    sb.den(&["run", "--rm", &img, "true"])
        .fails_with(125, "is not private");
}
