//! A docker user's first hour: what scripts, Makefiles and habits bring to den. Output sent to
//! /dev/null, `logs` after a foreground run, `login` to an https registry with a self-signed
//! certificate, `ps` filters, hard links through COPY, `cp` into a running container's mounts,
//! and help for the management commands.

use std::process::{Command, Stdio};

use crate::sandbox::{Registry, Sandbox, busybox, env, run};

fn ready() -> Sandbox {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    sb
}

/// `den ARGS` with stdout and stderr sent to /dev/null (as `>/dev/null 2>&1`): its exit code.
fn silenced(sb: &Sandbox, args: &[&str]) -> i32 {
    sb.cmd("den", args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn den")
        .code()
        .unwrap_or(-1)
}

#[test]
fn output_sent_to_dev_null() {
    let sb = ready();
    let bb = busybox();
    // stdout, stderr, both: the container writes, den succeeds, with the container's status.
    assert_eq!(silenced(&sb, &["run", "--rm", &bb, "echo", "hi"]), 0);
    assert_eq!(
        silenced(
            &sb,
            &[
                "run",
                "--rm",
                &bb,
                "sh",
                "-c",
                "echo out; echo err >&2; exit 7"
            ]
        ),
        7
    );
    let mut c = sb.cmd("den", &["run", "--rm", &bb, "sh", "-c", "echo err >&2"]);
    let out = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    // As a Makefile recipe writes it.
    let script = format!(
        "den run --rm {bb} echo hi >/dev/null 2>&1 && echo silenced-ok; \
         den run --rm {bb} sh -c 'echo to-stderr >&2' 2>/dev/null && echo stderr-ok; \
         den run --rm {bb} sh -c 'exit 3' >/dev/null 2>&1; echo status=$?"
    );
    let out = sb.sh(&script).ok();
    assert_eq!(out, "silenced-ok\nstderr-ok\nstatus=3\n", "{out}");

    // A pipe that closes early ends the container's stream, as if it held the pipe itself.
    let out = sb.sh(&format!("den run --rm {bb} yes | head -n 2")).ok();
    assert_eq!(out, "y\ny\n");

    // A build whose output goes nowhere still runs its RUN steps.
    let df = format!("FROM {bb}\nRUN echo building && echo to-stderr >&2\nRUN echo second\n");
    let dir = sb.dir.join("silent-build");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), df).unwrap();
    let out = sb
        .sh(&format!(
            "den build -t silent:1 {} >/dev/null 2>&1 && echo built",
            dir.display()
        ))
        .ok();
    assert_eq!(out, "built\n");
}

#[test]
fn logs_after_a_foreground_run() {
    let sb = ready();
    let bb = busybox();
    let ran = sb.den(&[
        "run",
        "--name",
        "fg",
        &bb,
        "sh",
        "-c",
        "echo out-1; echo err-1 >&2; printf 'no newline'",
    ]);
    assert_eq!(ran.out(), "out-1\nno newline");
    assert_eq!(ran.stderr, "err-1\n");
    let logs = sb.den(&["logs", "fg"]);
    assert_eq!(logs.out(), "out-1\nno newline");
    assert_eq!(logs.stderr, "err-1\n");
    let t = sb.den(&["logs", "-t", "--tail", "1", "fg"]).ok();
    assert!(t.ends_with(" no newline") && t.starts_with("20"), "{t}");

    // Silenced in a script, kept in the log; a second run of the container appends.
    let script = format!(
        "den run --name quiet {bb} sh -c 'seq 1 3; echo oops >&2' >/dev/null 2>&1 && den logs quiet 2>&1; \
         den start -a quiet >/dev/null 2>&1; den logs quiet 2>/dev/null"
    );
    let out = sb.sh(&script).ok();
    assert_eq!(out, "1\n2\n3\noops\n1\n2\n3\n1\n2\n3\n", "{out}");

    // Large output is logged whole, byte for byte, and a tty run is logged too.
    let big = sb
        .den(&[
            "run",
            "--name",
            "big",
            &bb,
            "sh",
            "-c",
            "seq 1 200000 | sed 's/$/ some words to make the line longer/'",
        ])
        .ok();
    assert!(big.len() > 7_000_000, "{}", big.len());
    assert_eq!(sb.den(&["logs", "big"]).ok(), big);
    let tty = sb.den_pty(
        &[],
        &["run", "-t", "--name", "tty", &bb, "echo", "on-a-tty"],
    );
    assert_eq!(tty.code, 0, "{}", tty.stderr);
    assert!(
        sb.den(&["logs", "tty"]).ok().contains("on-a-tty"),
        "tty output is logged"
    );

    // --rm leaves nothing to read.
    sb.den(&["run", "--rm", "--name", "gone", &bb, "echo", "x"])
        .ok();
    sb.den(&["logs", "gone"]).fails_with(1, "gone");
}

/// A registry on loopback speaking https with a self-signed certificate, and htpasswd auth
/// (`alice:s3cret`).
fn https_registry() -> Registry {
    let dir = env().tmp.join("https-registry");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = run({
        let mut c = Command::new("openssl");
        c.args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert);
        c
    });
    assert_eq!(out.code, 0, "openssl: {}", out.stderr);
    let htpasswd = dir.join("htpasswd");
    let out = run({
        let mut c = Command::new("htpasswd");
        c.args(["-Bbn", "alice", "s3cret"]);
        c
    });
    std::fs::write(&htpasswd, out.ok()).unwrap();
    let reg = Registry::start_with(
        "https",
        &format!(
            "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: den-test\n    path: {}\n",
            cert.display(),
            key.display(),
            htpasswd.display()
        ),
        Some("alice:s3cret"),
    );
    reg.push("busybox", "library/busybox");
    reg
}

#[test]
fn login_to_an_https_registry_with_a_self_signed_certificate() {
    let sb = Sandbox::new();
    let reg = https_registry();
    let auth_file = sb.config_home.join("den/auth.json");
    let login = |extra: &[&str], password: &str| {
        let mut a = vec!["login"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["-u", "alice", "--password-stdin", &reg.addr]);
        sb.den_input(&a, format!("{password}\n").as_bytes())
    };

    // A wrong password is refused over https (not "succeeded" over http), and nothing is kept.
    login(&["--tls-verify=false"], "wrong").fails_with(1, "refused the user name or password");
    assert!(!auth_file.exists());
    // Verification asked for: the certificate is not trusted, and the hint says what to do.
    login(&["--tls-verify=true"], "s3cret").fails_with(1, "--tls-verify=false");
    assert!(!auth_file.exists());

    let out = login(&["--tls-verify=false"], "s3cret");
    assert_eq!(out.ok(), "Login Succeeded\n");
    assert!(auth_file.exists());
    // A loopback registry is insecure by default, as in docker: https first, unverified.
    assert_eq!(login(&[], "s3cret").ok(), "Login Succeeded\n");

    // Scripted: the exit status is the answer.
    let script = format!(
        "echo wrong | den login --tls-verify=false -u alice --password-stdin {a} >/dev/null 2>&1 && echo bad || echo refused; \
         echo s3cret | den login --tls-verify=false -u alice --password-stdin {a} >/dev/null 2>&1 && echo accepted",
        a = reg.addr
    );
    assert_eq!(sb.sh(&script).ok(), "refused\naccepted\n");

    // Pull and push speak https to it too.
    let bb = reg.image("library/busybox");
    sb.den(&["pull", "-q", &bb]).ok();
    let mine = format!("{}/alice/mine:1", reg.addr);
    sb.den(&["tag", &bb, &mine]).ok();
    sb.den(&["push", "-q", &mine]).ok();
    assert_eq!(
        sb.den(&["run", "--rm", &mine, "echo", "over-https"]).ok(),
        "over-https\n"
    );

    // Something that is not a registry is not logged in to.
    let web = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = web.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut c in web.incoming().flatten() {
            let mut b = [0u8; 1024];
            let _ = c.read(&mut b);
            let _ = c.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    });
    sb.den_input(
        &["login", "-u", "alice", "--password-stdin", &addr],
        b"s3cret\n",
    )
    .fails_with(1, "does not answer as a registry");
}

#[test]
fn ps_filters_follow_docker() {
    let sb = ready();
    let bb = busybox();
    sb.den(&["run", "--name", "app-exited", &bb, "true"]).ok();
    sb.den(&["run", "-d", "--name", "app-running", &bb, "sleep", "60"])
        .ok();
    sb.den(&["create", "--name", "other", &bb, "true"]).ok();
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["ps", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        let mut v: Vec<String> = sb.den(&a).ok().lines().map(String::from).collect();
        v.sort();
        v
    };
    // A name filter narrows the running containers; with -a, all of them.
    assert_eq!(names(&["--filter", "name=app"]), ["app-running"]);
    assert_eq!(
        names(&["-a", "--filter", "name=app"]),
        ["app-exited", "app-running"]
    );
    // A status filter names the states wanted, -a or not.
    assert_eq!(names(&["--filter", "status=exited"]), ["app-exited"]);
    assert_eq!(names(&["--filter", "status=created"]), ["other"]);
    // Values of one key are alternatives; different keys must all match.
    assert_eq!(
        names(&["--filter", "status=exited", "--filter", "status=created"]),
        ["app-exited", "other"]
    );
    assert_eq!(
        names(&["-a", "--filter", "name=app", "--filter", "status=running"]),
        ["app-running"]
    );
    assert_eq!(
        names(&["-a", "--filter", "name=other", "--filter", "name=exited"]),
        ["app-exited", "other"]
    );
    sb.den(&["ps", "--filter", "status=sleeping"])
        .fails_with(1, "status=sleeping");
    sb.den(&["rm", "-f", "app-running"]).ok();
}

#[test]
fn copy_keeps_hard_links() {
    let sb = ready();
    let dir = sb.dir.join("links");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a"), "shared").unwrap();
    std::fs::hard_link(dir.join("a"), dir.join("b")).unwrap();
    std::fs::hard_link(dir.join("a"), dir.join("sub/c")).unwrap();
    std::fs::write(dir.join("single"), "one").unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {}\nCOPY . /app/\nCOPY a b /two/\n", busybox()),
    )
    .unwrap();
    sb.den(&["build", "-q", "-t", "links:1", &dir.to_string_lossy()])
        .ok();
    let out = sb
        .den(&[
            "run",
            "--rm",
            "links:1",
            "sh",
            "-c",
            "stat -c '%n %i %h' /app/a /app/b /app/sub/c /app/single /two/a /two/b",
        ])
        .ok();
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(rows.len(), 6, "{out}");
    // One inode, three names, in one COPY; a file with one name stays alone.
    assert!(
        rows[0][1] == rows[1][1] && rows[1][1] == rows[2][1],
        "{out}"
    );
    assert_eq!((rows[0][2], rows[3][2]), ("3", "1"), "{out}");
    // Each COPY keeps the links among what it copies.
    assert_eq!(rows[4][1], rows[5][1], "{out}");
    assert_ne!(rows[0][1], rows[4][1], "{out}");

    // The link structure is part of the step's key: breaking the link is a cache miss.
    std::fs::remove_file(dir.join("b")).unwrap();
    std::fs::write(dir.join("b"), "shared").unwrap();
    sb.den(&["build", "-q", "-t", "links:2", &dir.to_string_lossy()])
        .ok();
    let out = sb
        .den(&["run", "--rm", "links:2", "stat", "-c", "%h", "/app/b"])
        .ok();
    assert_eq!(out, "1\n");
}

#[test]
fn cp_sees_a_running_containers_mounts() {
    let sb = ready();
    let bb = busybox();
    let vol = sb.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let host_file = sb.dir.join("note.txt");
    std::fs::write(&host_file, "from the host\n").unwrap();
    sb.den(&[
        "run",
        "-d",
        "--name",
        "m",
        "--tmpfs",
        "/tmp",
        "-v",
        &format!("{}:/vol", vol.display()),
        &bb,
        "sleep",
        "60",
    ])
    .ok();
    let hf = host_file.to_string_lossy().into_owned();
    // Into the tmpfs, as a process in the container sees it.
    sb.den(&["cp", &hf, "m:/tmp"]).ok();
    assert_eq!(
        sb.den(&["exec", "m", "cat", "/tmp/note.txt"]).ok(),
        "from the host\n"
    );
    // Out of it: a file the container wrote there.
    sb.den(&["exec", "m", "sh", "-c", "echo made-inside > /tmp/inside"])
        .ok();
    let back = sb.dir.join("back");
    sb.den(&["cp", "m:/tmp/inside", &back.to_string_lossy()])
        .ok();
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "made-inside\n");
    // A bind mount and den's own /etc files are the container's too.
    sb.den(&["cp", &hf, "m:/vol/"]).ok();
    assert_eq!(
        std::fs::read_to_string(vol.join("note.txt")).unwrap(),
        "from the host\n"
    );
    let hostname = sb.den(&["cp", "m:/etc/hostname", "-"]).ok_bytes().to_vec();
    assert!(String::from_utf8_lossy(&hostname).contains("hostname"));
    // A symlink in the container resolves in the container, mounts included.
    sb.den(&["exec", "m", "ln", "-s", "/tmp", "/ln"]).ok();
    sb.den(&["cp", &hf, "m:/ln/via-link"]).ok();
    assert_eq!(
        sb.den(&["exec", "m", "cat", "/tmp/via-link"]).ok(),
        "from the host\n"
    );
    // The tmpfs is not the image's directory: once stopped, the file is gone with it.
    sb.den(&["rm", "-f", "m"]).ok();
}

#[test]
fn management_commands_have_help() {
    let sb = Sandbox::new();
    for (group, verbs) in [
        ("system", &["df", "info", "prune", "reset"][..]),
        (
            "image",
            &["ls", "pull", "push", "rm", "prune", "save", "load"][..],
        ),
        (
            "container",
            &["ls", "run", "logs", "exec", "cp", "prune"][..],
        ),
        ("builder", &["prune"][..]),
    ] {
        for form in [
            vec![group, "--help"],
            vec![group, "-h"],
            vec!["help", group],
            vec![group],
        ] {
            let out = sb.den(&form).ok();
            assert!(
                out.contains(&format!("Usage:  den {group} COMMAND")),
                "{form:?}: {out}"
            );
            for v in verbs {
                assert!(
                    out.lines()
                        .any(|l| l.trim_start().starts_with(&format!("{v} "))),
                    "{form:?} lacks {v}: {out}"
                );
            }
        }
    }
    let help = sb.den(&["--help"]).ok();
    assert_eq!(help.matches("Image Commands:").count(), 1, "{help}");
    for v in ["save", "load", "history", "tag"] {
        assert!(help.contains(&format!("\n  {v} ")), "{help}");
    }
    // A verb's own help, through a group or `help`.
    assert!(sb.den(&["system", "df", "--help"]).ok().contains("Usage:"));
    assert!(sb.den(&["help", "ps"]).ok().contains("--all"));
    let bad = sb.den(&["system", "bogus"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("'system bogus' is not a den command"),
        "{}",
        bad.stderr
    );
}
