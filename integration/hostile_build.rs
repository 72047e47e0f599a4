//! Hostile base images and Dockerfiles against `den build`, `run`, `exec` and `cp` (issue 13):
//! an image's symlinks never turn a COPY, ADD or `--chown` lookup into a host access, its odd
//! /etc/passwd (a FIFO, a huge file) is refused in one line instead of hanging or filling memory,
//! a `null` config builds, a Dockerfile gets no writable build context and no host network
//! without the user's flag, and `cp` cleans `..` before choosing a bind mount.
//!
//! Each case ends one of two ways: refused with one line naming what was wrong, or contained
//! (the write lands inside the image); either way the host's victim files keep their content
//! and mode.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::sandbox::{Out, Sandbox, build, busybox, context};

/// `den ARGS`, killed with its process group after `secs`: `None` when it had to be killed.
fn den_within(sb: &Sandbox, args: &[&str], secs: u64) -> Option<Out> {
    let mut c = sb.cmd("den", args);
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = c.spawn().expect("spawn den");
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return Some(Out {
                code: out.status.code().unwrap_or(-1),
                stdout: out.stdout,
                stderr: String::from_utf8_lossy(&out.stderr).into(),
            });
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A host file and directory that a hostile image aims at, with what they held.
struct Victim {
    dir: PathBuf,
    file: PathBuf,
}

impl Victim {
    fn new(sb: &Sandbox) -> Victim {
        let dir = sb.dir.join("victim");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("target.txt");
        std::fs::write(&file, "original\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        Victim { dir, file }
    }

    #[track_caller]
    fn assert_untouched(&self) {
        assert_eq!(
            std::fs::read_to_string(&self.file).unwrap(),
            "original\n",
            "the host file was written"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&self.file), 0o600, "the host file's mode changed");
        assert_eq!(mode(&self.dir), 0o700, "the host directory's mode changed");
        let names: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["target.txt"], "something was written beside it");
    }
}

/// An HTTP server on a loopback port answering every request with `body`; its address.
fn serve(body: &'static [u8]) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    addr
}

fn tar_of(entries: &[(&str, Option<&[u8]>, u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data, mode) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(*mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        match data {
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
                h.set_cksum();
                b.append_data(&mut h, name, *d).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_cksum();
                b.append_data(&mut h, name, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

// ------------------------------------------------------------------------------ item 1

#[test]
fn copy_and_add_write_through_image_symlinks_inside_the_image_only() {
    let sb = Sandbox::new();
    let v = Victim::new(&sb);
    let url = format!("http://{}/payload", serve(b"downloaded\n"));
    let archive = tar_of(&[
        ("vdir2/", None, 0o777),
        ("vdir2/planted", Some(b"from the archive\n"), 0o644),
    ]);
    let (f, d) = (v.file.display(), v.dir.display());
    let dockerfile = format!(
        "FROM {bb}\n\
         RUN ln -s {f} /etc/app.conf && ln -s {f} /etc/app2.conf && ln -s {f} /etc/app3.conf \
             && ln -s {d} /etc/vdir && ln -s {d} /etc/vdir2\n\
         COPY --chmod=777 <<EOF /etc/app.conf\n\
         pwned by a heredoc\n\
         EOF\n\
         ADD --chmod=777 {url} /etc/app2.conf\n\
         COPY --chmod=777 file.txt /etc/app3.conf\n\
         COPY --chmod=777 file.txt /etc/vdir/\n\
         ADD archive.tar /etc/\n",
        bb = busybox()
    );
    let ctx = context(
        &sb,
        "ctx",
        &dockerfile,
        &[
            ("file.txt", b"from the context\n"),
            ("archive.tar", &archive),
        ],
    );
    let out = build(&sb, &ctx, &["-t", "symlinked:1"]);
    v.assert_untouched();
    out.ok();
    // Contained: each write followed the image's symlink with the image's root as `/`.
    // ADD's untar replaces the symlink /etc/vdir2 with the archive's directory, as docker's does.
    let show = format!(
        "cat /etc/app.conf /etc/app2.conf /etc/app3.conf; stat -c %a {f}; ls {d}; \
         cat /etc/vdir2/planted; test -L /etc/vdir2 || echo replaced"
    );
    let out = sb
        .den(&["run", "--rm", "symlinked:1", "sh", "-c", &show])
        .ok();
    assert_eq!(
        out,
        "from the context\nfrom the context\nfrom the context\n777\n\
         file.txt\ntarget.txt\nfrom the archive\nreplaced\n",
        "the last write wins, all inside the image"
    );
    let again = "FROM symlinked:1\n\
         COPY <<EOF /etc/app.conf\nheredoc\nEOF\n\
         RUN cat /etc/app.conf\n";
    let ctx2 = context(&sb, "ctx2", again, &[]);
    build(&sb, &ctx2, &["-t", "again:1"]).ok();
    let out = sb
        .den(&["run", "--rm", "again:1", "cat", &v.file.to_string_lossy()])
        .ok();
    assert_eq!(out, "heredoc\n");
    v.assert_untouched();
}

// ------------------------------------------------------------------------------ items 3, 4

#[test]
fn chown_names_are_looked_up_inside_the_image() {
    let sb = Sandbox::new();
    let host_passwd = sb.dir.join("host-passwd");
    std::fs::write(&host_passwd, "hostonly:x:4242:4343::/:/bin/sh\n").unwrap();
    let host_group = sb.dir.join("host-group");
    std::fs::write(&host_group, "hostgroup:x:4343:\n").unwrap();
    // An absolute symlink, and a relative one that climbs out of any layer directory.
    let up = "../".repeat(40);
    let dockerfile = format!(
        "FROM {bb}\n\
         RUN rm -f /etc/passwd /etc/group && ln -s {pw} /etc/passwd && ln -s {up}{gr} /etc/group\n\
         COPY --chown=hostonly file.txt /f\n",
        bb = busybox(),
        pw = host_passwd.display(),
        gr = host_group.display().to_string().trim_start_matches('/'),
    );
    let ctx = context(&sb, "ctx", &dockerfile, &[("file.txt", b"x\n")]);
    let out = build(&sb, &ctx, &[]);
    out.fails_with(1, "\"hostonly\" is not in the image's /etc/passwd");
    let ctx = context(
        &sb,
        "ctx-group",
        &dockerfile.replace("--chown=hostonly", "--chown=0:hostgroup"),
        &[("file.txt", b"x\n")],
    );
    build(&sb, &ctx, &[]).fails_with(1, "\"hostgroup\" is not in the image's /etc/group");

    // A FIFO as /etc/passwd is refused, not read (which would wait for a writer forever).
    let dockerfile = format!(
        "FROM {bb}\nRUN rm -f /etc/passwd && mkfifo /etc/passwd\nCOPY --chown=daemon file.txt /f\n",
        bb = busybox()
    );
    let ctx = context(&sb, "ctx-fifo", &dockerfile, &[("file.txt", b"x\n")]);
    let d = ctx.to_string_lossy().into_owned();
    let out = den_within(&sb, &["build", &d], 120).expect("den build hung on a FIFO /etc/passwd");
    out.fails_with(1, "/etc/passwd in the image is a fifo, not a regular file");
}

// ------------------------------------------------------------------------------ item 10

#[test]
fn run_and_exec_refuse_a_fifo_or_huge_passwd_in_one_line() {
    let sb = Sandbox::new();
    let bb = busybox();
    let fifo = context(
        &sb,
        "fifo",
        &format!("FROM {bb}\nRUN rm -f /etc/passwd && mkfifo /etc/passwd\n"),
        &[],
    );
    build(&sb, &fifo, &["-t", "fifo:1"]).ok();
    let out = den_within(&sb, &["run", "--rm", "fifo:1", "true"], 60)
        .expect("den run hung on a FIFO /etc/passwd");
    out.fails_with(125, "/etc/passwd in the image is a fifo");
    assert_eq!(sb.den(&["ps", "-aq"]).ok(), "", "--rm left a container");

    let huge = context(
        &sb,
        "huge",
        &format!("FROM {bb}\nRUN head -c 5000000 /dev/zero > /etc/passwd\n"),
        &[],
    );
    build(&sb, &huge, &["-t", "huge:1"]).ok();
    sb.den(&["run", "--rm", "huge:1", "true"])
        .fails_with(125, "/etc/passwd in the image is larger than 4194304 bytes");

    // A running container turns its /etc/passwd into a FIFO: exec is refused, not stuck.
    sb.den(&["run", "-d", "--name", "live", &bb, "sleep", "600"])
        .ok();
    sb.den(&[
        "exec",
        "live",
        "sh",
        "-c",
        "rm /etc/passwd && mkfifo /etc/passwd",
    ])
    .ok();
    let out = den_within(&sb, &["exec", "live", "true"], 60);
    sb.den(&["rm", "-f", "live"]).ok();
    // docker exec's status for an exec that could not start is 1.
    out.expect("den exec hung on a FIFO /etc/passwd")
        .fails_with(1, "/etc/passwd in the image is a fifo");
}

// ------------------------------------------------------------------------------ item 7

#[test]
fn rw_bind_mounts_write_to_a_throwaway_layer_not_the_context() {
    let sb = Sandbox::new();
    let dockerfile = format!(
        "FROM {bb}\n\
         RUN --mount=type=bind,rw,target=/ctx echo changed > /ctx/data.txt && echo new > /ctx/new.txt \
             && rm /ctx/gone.txt && rm -r /ctx/sub && cat /ctx/data.txt > /seen && ls /ctx > /listing\n\
         RUN --mount=type=bind,rw,source=data.txt,target=/one echo more >> /one && cat /one > /seen-one\n",
        bb = busybox()
    );
    let ctx = context(
        &sb,
        "ctx",
        &dockerfile,
        &[
            ("data.txt", b"orig\n"),
            ("gone.txt", b"keep\n"),
            ("sub/x", b"x\n"),
        ],
    );
    let listing = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let before = listing(&ctx);
    build(&sb, &ctx, &["-t", "rw:1"]).ok();
    assert_eq!(listing(&ctx), before, "the build context changed");
    assert_eq!(
        std::fs::read_to_string(ctx.join("data.txt")).unwrap(),
        "orig\n"
    );
    assert_eq!(
        std::fs::read_to_string(ctx.join("gone.txt")).unwrap(),
        "keep\n"
    );
    assert_eq!(std::fs::read_to_string(ctx.join("sub/x")).unwrap(), "x\n");
    // The step saw its own writes.
    let out = sb
        .den(&[
            "run",
            "--rm",
            "rw:1",
            "cat",
            "/seen",
            "/listing",
            "/seen-one",
        ])
        .ok();
    assert_eq!(out, "changed\nDockerfile\ndata.txt\nnew.txt\norig\nmore\n");
    assert_eq!(sb.den(&["ps", "-aq"]).ok(), "", "a step container was left");
}

#[test]
fn run_network_host_needs_the_users_entitlement() {
    let sb = Sandbox::new();
    let addr = serve(b"a loopback-only service\n");
    let dockerfile = format!(
        "FROM {bb}\nRUN --network=host wget -q -O /got http://{addr}/\n",
        bb = busybox()
    );
    let ctx = context(&sb, "ctx", &dockerfile, &[]);
    build(&sb, &ctx, &[]).fails_with(1, "--allow network.host");
    build(&sb, &ctx, &["--allow", "security.insecure"]).fails_with(1, "security.insecure");
    build(&sb, &ctx, &["--allow", "network.host", "-t", "net:1"]).ok();
    assert_eq!(
        sb.den(&["run", "--rm", "net:1", "cat", "/got"]).ok(),
        "a loopback-only service\n"
    );
    build(&sb, &ctx, &["--network", "host", "--no-cache"]).ok();
}

// ------------------------------------------------------------------------------ item 11

#[test]
fn a_base_image_with_a_null_config_builds() {
    let sb = Sandbox::new();
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");
    let mut layer = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.set_cksum();
        layer.append_data(&mut h, name, data).unwrap();
    };
    add("bin/", tar::EntryType::Directory, b"", None);
    add("etc/", tar::EntryType::Directory, b"", None);
    add("bin/busybox", tar::EntryType::Regular, &busybox, None);
    add("bin/sh", tar::EntryType::Symlink, b"", Some("busybox"));
    add("bin/cat", tar::EntryType::Symlink, b"", Some("busybox"));
    let layer = layer.into_inner().unwrap();
    let diff_id = crate::sandbox::sha256_hex(&layer);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": null,
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
        "history": [{"created_by": "hand-made"}],
    }))
    .unwrap();
    let config_name = format!("{}.json", crate::sandbox::sha256_hex(&config));
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": ["nullcfg:1"],
        "Layers": [format!("{diff_id}/layer.tar")],
    }]))
    .unwrap();
    let archive = {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            (config_name.clone(), &config),
            (format!("{diff_id}/layer.tar"), &layer),
            ("manifest.json".to_string(), &manifest),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append_data(&mut h, name, data.as_slice()).unwrap();
        }
        b.into_inner().unwrap()
    };
    let path = sb.dir.join("nullcfg.tar");
    std::fs::write(&path, archive).unwrap();
    sb.den(&["load", "-i", &path.to_string_lossy()]).ok();
    sb.den(&["image", "inspect", "nullcfg:1"]).ok();
    sb.den(&["history", "nullcfg:1"]).ok();

    let ctx = context(
        &sb,
        "ctx",
        "FROM nullcfg:1\nENV A=1\nLABEL x=y\nWORKDIR /app\nCOPY file.txt ./\n\
         RUN echo ran > /ran\nCMD [\"cat\", \"/app/file.txt\", \"/ran\"]\n",
        &[("file.txt", b"copied\n")],
    );
    build(&sb, &ctx, &["-t", "out:1", "--label", "k=v"]).ok();
    assert_eq!(sb.den(&["run", "--rm", "out:1"]).ok(), "copied\nran\n");
    let label = |k: &str| {
        let f = format!("{{{{index .Config.Labels \"{k}\"}}}}");
        sb.den(&["image", "inspect", "--format", &f, "out:1"])
            .ok()
            .trim()
            .to_string()
    };
    assert_eq!((label("k"), label("x")), ("v".into(), "y".into()));
}

// ------------------------------------------------------------------------------ item 12

#[test]
fn cp_cleans_dotdot_before_choosing_a_bind_mount() {
    let sb = Sandbox::new();
    let hostdir = sb.dir.join("hostdir");
    std::fs::create_dir_all(&hostdir).unwrap();
    std::fs::write(hostdir.join("file"), "bound\n").unwrap();
    std::fs::write(hostdir.join("secret"), "host secret\n").unwrap();
    let bind = format!("{}:/mnt/file", hostdir.join("file").display());
    // Run once, so that the mount point /mnt/file exists in the container's own files.
    sb.den(&["run", "--name", "c", "-v", &bind, &busybox(), "true"])
        .ok();
    std::fs::write(sb.dir.join("payload"), "payload\n").unwrap();
    sb.den(&["cp", "payload", "c:/mnt/file/../bar"]).ok();
    assert!(
        !hostdir.join("bar").exists(),
        "cp wrote beside the bind-mounted file on the host"
    );
    // It went where docker puts it: /mnt/bar in the container.
    sb.den(&["cp", "c:/mnt/bar", "back"]).ok();
    assert_eq!(
        std::fs::read_to_string(sb.dir.join("back")).unwrap(),
        "payload\n"
    );
    // And out of the container, `..` does not reach the host's files beside the mount either.
    sb.den(&["cp", "c:/mnt/file/../secret", "leak"])
        .fails_with(1, "Could not find the file /mnt/secret");
    assert!(!sb.dir.join("leak").exists());
    let mut names: Vec<String> = std::fs::read_dir(&hostdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["file", "secret"]);
    assert_eq!(
        std::fs::read_to_string(hostdir.join("file")).unwrap(),
        "bound\n"
    );
}
