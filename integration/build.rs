//! `den build`: every instruction, the step cache, multi-stage builds, `.dockerignore`, errors,
//! and the node example (`RUN npm install` through the container's network).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::sandbox::{Sandbox, busybox, free_port, registry, wait_http};

/// A build context under the sandbox with `files` (path, content).
fn context(sb: &Sandbox, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = sb.dir.join(name);
    for (p, content) in files {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, content).unwrap();
    }
    dir
}

fn build(sb: &Sandbox, dir: &Path, extra: &[&str]) -> crate::sandbox::Out {
    let d = dir.to_string_lossy().into_owned();
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    args.push(&d);
    sb.den(&args)
}

fn run_out(sb: &Sandbox, image: &str, cmd: &[&str]) -> String {
    let mut a = vec!["run", "--rm", image];
    a.extend_from_slice(cmd);
    sb.den(&a).ok()
}

fn inspect(sb: &Sandbox, image: &str, format: &str) -> String {
    sb.den(&["image", "inspect", "--format", format, image])
        .ok()
        .trim()
        .to_string()
}

#[test]
fn every_instruction_lands_in_the_image() {
    let sb = Sandbox::new();
    // A local tar.gz for ADD to unpack.
    let tgz = {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, "inner/from-tar.txt", &b"tar\n"[..])
            .unwrap();
        b.into_inner().unwrap().finish().unwrap()
    };
    let dockerfile = format!(
        r#"# syntax=docker/dockerfile:1
ARG BASE={bb}
FROM ${{BASE}} AS base
ARG GREETING=hello
ENV APP_HOME=/srv/app \
    QUOTED="two words"
# a comment between instructions
WORKDIR $APP_HOME
COPY --chmod=750 run.sh ./
COPY --chown=1:2 data/ ./data/
COPY *.txt /texts/
ADD archive.tgz /unpacked/
COPY <<EOF /etc/motd
greeting ${{GREETING:-none}}
EOF
RUN <<EOS
echo "$GREETING from a heredoc" > heredoc.out
EOS
RUN ["/bin/sh", "-c", "echo exec form > exec.out"]
RUN --mount=type=bind,source=data/a.dat,target=/mnt/a.dat cat /mnt/a.dat > bound.out
RUN --mount=type=cache,target=/cache echo x >> /cache/count && wc -l < /cache/count > cache.out
LABEL org.example.name="den test" version=1
EXPOSE 80 53/udp
VOLUME /data
USER 1000:1000
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --retries=2 CMD wget -q -O- http://localhost/ || exit 1
SHELL ["/bin/sh", "-c"]
ONBUILD ENV TRIGGERED=yes
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /etc/motd"]
"#,
        bb = busybox()
    );
    let dir = context(
        &sb,
        "ctx",
        &[
            ("Dockerfile", &dockerfile),
            ("run.sh", "#!/bin/sh\necho run\n"),
            ("data/a.dat", "A"),
            ("data/sub/b.dat", "B"),
            ("one.txt", "1"),
            ("two.txt", "2"),
        ],
    );
    std::fs::write(dir.join("archive.tgz"), tgz).unwrap();
    let out = build(&sb, &dir, &["-t", "every:1"]);
    out.ok();
    assert!(
        out.stderr.contains("STEP 1/"),
        "progress on stderr: {}",
        out.stderr
    );
    let id = out.out().trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let cfg = |f: &str| inspect(&sb, "every:1", f);
    assert_eq!(cfg("{{.Config.WorkingDir}}"), "/srv/app");
    assert_eq!(cfg("{{json .Config.Cmd}}"), r#"["cat /etc/motd"]"#);
    assert_eq!(cfg("{{json .Config.Entrypoint}}"), r#"["/bin/sh","-c"]"#);
    assert_eq!(cfg("{{.Config.User}}"), "1000:1000");
    assert_eq!(cfg("{{.Config.StopSignal}}"), "SIGINT");
    assert_eq!(
        cfg("{{json .Config.ExposedPorts}}"),
        r#"{"53/udp":{},"80/tcp":{}}"#
    );
    assert_eq!(cfg("{{json .Config.Volumes}}"), r#"{"/data":{}}"#);
    assert_eq!(
        cfg("{{index .Config.Labels \"org.example.name\"}}"),
        "den test"
    );
    assert_eq!(
        cfg("{{json .Config.Healthcheck.Test}}"),
        r#"["CMD-SHELL","wget -q -O- http://localhost/ || exit 1"]"#
    );
    assert_eq!(cfg("{{.Config.Healthcheck.Retries}}"), "2");
    assert_eq!(cfg("{{json .Config.OnBuild}}"), r#"["ENV TRIGGERED=yes"]"#);
    let env = cfg("{{json .Config.Env}}");
    assert!(
        env.contains(r#""APP_HOME=/srv/app""#) && env.contains(r#""QUOTED=two words""#),
        "{env}"
    );
    assert!(!env.contains("GREETING"), "build args are not kept: {env}");
    // RUN, COPY and ADD make layers; the rest history entries only.
    let layers: usize = cfg("{{len .RootFS.Layers}}").parse().unwrap();
    assert_eq!(layers, 1 + 9, "busybox's layer and one per RUN/COPY/ADD");
    let history = cfg("{{json .History}}");
    assert!(
        history.contains("\"created_by\":\"EXPOSE 80 53/udp\",\"empty_layer\":true"),
        "{history}"
    );

    // The files, as the container sees them (as root: single-uid mode has no uid 1000).
    let sh = |c: &str| sb.den(&["run", "--rm", "-u", "0", "every:1", c]).ok();
    assert_eq!(sh("cat /etc/motd"), "greeting hello\n");
    assert_eq!(
        sh("cat heredoc.out exec.out bound.out cache.out"),
        "hello from a heredoc\nexec form\nA1\n"
    );
    assert_eq!(
        sh("stat -c %a run.sh; cat /texts/one.txt /texts/two.txt /unpacked/inner/from-tar.txt"),
        "750\n12tar\n"
    );
    assert_eq!(sh("cat data/a.dat data/sub/b.dat"), "AB");
    if sb.mapped() {
        assert_eq!(sh("stat -c %u:%g data/a.dat data/sub"), "1:2\n1:2\n");
        // The image's user and default command.
        assert_eq!(
            run_out(&sb, "every:1", &["id -u; cat /etc/motd"]),
            "1000\ngreeting hello\n"
        );
    }

    // ONBUILD triggers run in a build FROM this image.
    let child = context(
        &sb,
        "child",
        &[(
            "Dockerfile",
            "FROM every:1\nUSER 0\nRUN test -f /srv/app/run.sh\n",
        )],
    );
    build(&sb, &child, &["-t", "child:1"]).ok();
    assert!(inspect(&sb, "child:1", "{{json .Config.Env}}").contains("TRIGGERED=yes"));
    assert_eq!(inspect(&sb, "child:1", "{{json .Config.OnBuild}}"), "null");
}

#[test]
fn the_cache_follows_content_args_and_edits() {
    let sb = Sandbox::new();
    let dockerfile = format!(
        "FROM {}\nARG MODE=one\nCOPY a.txt /a.txt\nRUN echo \"$MODE $(cat /a.txt) $(cat /proc/sys/kernel/random/uuid)\" > /stamp\nCOPY b.txt /b.txt\nRUN cat /b.txt > /b.copy\n",
        busybox()
    );
    let dir = context(
        &sb,
        "ctx",
        &[("Dockerfile", &dockerfile), ("a.txt", "A"), ("b.txt", "B")],
    );
    let iid = sb.dir.join("iid");
    let iid_s = iid.to_string_lossy().into_owned();
    let first = build(&sb, &dir, &["-q", "--iidfile", &iid_s, "-t", "c:1"]).ok();
    assert_eq!(first.lines().count(), 1, "-q prints only the id: {first}");
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), first.trim());
    let stamp = |tag: &str| run_out(&sb, tag, &["cat", "/stamp"]);
    let s1 = stamp("c:1");

    // A no-op rebuild: every step from the cache, the same id, the iidfile untouched.
    let mtime = std::fs::metadata(&iid).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let again = build(&sb, &dir, &["--iidfile", &iid_s, "-t", "c:1"]);
    assert_eq!(again.ok(), first);
    assert_eq!(
        again.stderr.matches("--> Using cache").count(),
        4,
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::metadata(&iid).unwrap().modified().unwrap(), mtime);

    // Touching a file changes nothing; editing it rebuilds from its COPY on.
    let f = std::fs::File::options()
        .append(true)
        .open(dir.join("b.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    assert_eq!(build(&sb, &dir, &["-q"]).ok(), first);
    std::fs::write(dir.join("b.txt"), "B2").unwrap();
    let edited = build(&sb, &dir, &["-t", "c:2"]);
    let edited_id = edited.ok();
    assert_ne!(edited_id, first);
    assert_eq!(
        edited.stderr.matches("--> Using cache").count(),
        2,
        "{}",
        edited.stderr
    );
    assert_eq!(
        stamp("c:2"),
        s1,
        "the RUN before the edit came from the cache"
    );
    assert_eq!(run_out(&sb, "c:2", &["cat", "/b.copy"]), "B2");

    // A different build argument misses from the first step that has it in scope.
    let other = build(&sb, &dir, &["--build-arg", "MODE=two", "-t", "c:3"]);
    other.ok();
    assert_eq!(
        other.stderr.matches("--> Using cache").count(),
        0,
        "{}",
        other.stderr
    );
    assert!(stamp("c:3").starts_with("two A "));

    // --no-cache runs everything; `builder prune` empties the cache.
    let nc = build(&sb, &dir, &["--no-cache", "-t", "c:4"]);
    nc.ok();
    assert_eq!(nc.stderr.matches("--> Using cache").count(), 0);
    sb.den(&["builder", "prune", "-f"]).ok();
    let after = build(&sb, &dir, &[]);
    after.ok();
    assert_eq!(
        after.stderr.matches("--> Using cache").count(),
        0,
        "{}",
        after.stderr
    );
}

#[test]
fn stages_targets_and_dockerignore() {
    let sb = Sandbox::new();
    let dockerfile = format!(
        "FROM {bb} AS builder\nWORKDIR /work\nCOPY . .\nRUN ls -a > /tmp/l && sort /tmp/l | tr '\\n' ' ' > listing && echo compiled > artifact\n\nFROM {bb} AS unused\nRUN exit 3\n\nFROM {bb}\nCOPY --from=builder /work/artifact /work/listing /out/\nCOPY --from=0 /work/keep.log /out/\nCMD [\"cat\", \"/out/artifact\"]\n",
        bb = busybox()
    );
    let dir = context(
        &sb,
        "ctx",
        &[
            ("Dockerfile", &dockerfile),
            (
                ".dockerignore",
                "# secrets stay home\nsecret.txt\n*.log\n!keep.log\nnode_modules\n",
            ),
            ("main.c", "int main;"),
            ("secret.txt", "s"),
            ("debug.log", "d"),
            ("keep.log", "k"),
            ("node_modules/x/index.js", "x"),
        ],
    );
    let out = build(&sb, &dir, &["-t", "ms:1"]);
    out.ok();
    assert!(
        !out.stderr.contains("exit 3"),
        "an unneeded stage is skipped: {}",
        out.stderr
    );
    assert_eq!(sb.den(&["run", "--rm", "ms:1"]).ok(), "compiled\n");
    let listing = run_out(&sb, "ms:1", &["cat", "/out/listing"]);
    assert_eq!(listing, ". .. .dockerignore Dockerfile keep.log main.c ");
    assert_eq!(run_out(&sb, "ms:1", &["cat", "/out/keep.log"]), "k");
    // --target stops at a stage.
    build(&sb, &dir, &["--target", "builder", "-t", "ms:builder"]).ok();
    assert_eq!(
        run_out(&sb, "ms:builder", &["cat", "/work/artifact"]),
        "compiled\n"
    );
    build(&sb, &dir, &["--target", "nope"]).fails_with(1, "no stage is named \"nope\"");
}

#[test]
fn errors_name_the_line_and_leave_nothing_behind() {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    let bb = busybox();
    let case = |name: &str, df: &str| context(&sb, name, &[("Dockerfile", df), ("here.txt", "h")]);
    let before = sb.store_listing();

    let d = case("syntax", &format!("FROM {bb}\n\nRUNN true\n"));
    build(&sb, &d, &["-t", "bad:1"]).fails_with(1, "Dockerfile:3: unknown instruction \"RUNN\"");
    let d = case(
        "missing",
        &format!("FROM {bb}\nCOPY here.txt /\nCOPY nothere.txt /\n"),
    );
    build(&sb, &d, &["-t", "bad:1"]).fails_with(
        1,
        "Dockerfile:3: COPY: nothere.txt: no such file or directory",
    );
    let d = case(
        "failing",
        &format!("FROM {bb}\nRUN echo before-failing && exit 7\n"),
    );
    let out = build(&sb, &d, &["-t", "bad:1"]);
    out.fails_with(
        1,
        "Dockerfile:2: RUN echo before-failing && exit 7: the command failed with exit status 7",
    );
    assert!(
        out.stderr.contains("before-failing\n"),
        "RUN output is streamed: {}",
        out.stderr
    );
    let d = case("noarg", "FROM\n");
    build(&sb, &d, &[]).fails_with(1, "Dockerfile:1: FROM needs an argument");

    // No tag, no container, nothing half-written; only the COPY step's finished layer (cached).
    assert!(!sb.den(&["images"]).ok().contains("bad"));
    assert_eq!(sb.den(&["ps", "-aq"]).ok(), "");
    let after = sb.store_listing();
    let new: Vec<&String> = after.iter().filter(|e| !before.contains(e)).collect();
    assert!(
        new.iter()
            .all(|e| e.starts_with("layers/") || e.starts_with("blobs/")),
        "only whole layers and blobs are new: {new:?}"
    );
    assert!(
        !after
            .iter()
            .any(|e| e.starts_with("tmp/") || e.starts_with("containers/")),
        "{after:?}"
    );

    // A Dockerfile on stdin, without a context.
    let out = sb.den_input(
        &["build", "-q", "-"],
        format!("FROM {bb}\nRUN echo from stdin > /s\n").as_bytes(),
    );
    let id = out.ok();
    assert_eq!(run_out(&sb, id.trim(), &["cat", "/s"]), "from stdin\n");
    sb.den_input(&["build", "-"], format!("FROM {bb}\nCOPY x /\n").as_bytes())
        .fails_with(1, "no build context");
}

/// Where `integration/setup.sh` leaves the Debian + Node.js userland.
const NODE_TAR: &str = "/var/tmp/den-fixtures/node.tar";

#[test]
fn node_example_with_npm_install_through_the_network() {
    assert!(
        Path::new(NODE_TAR).is_file(),
        "{NODE_TAR} is missing: run integration/setup.sh as root once (it makes it with mmdebstrap)"
    );
    let r = registry();
    static PUSHED: std::sync::Once = std::sync::Once::new();
    PUSHED.call_once(|| r.push(&format!("node {NODE_TAR}"), "test/node"));
    let sb = Sandbox::new();
    let dockerfile = format!(
        "FROM {node}\nWORKDIR /app\nCOPY package.json ./\nRUN npm install --no-audit --no-fund --loglevel=error\nCOPY server.js ./\nEXPOSE 80\nCMD [\"node\", \"server.js\"]\n",
        node = r.image("test/node")
    );
    let dir = context(
        &sb,
        "app",
        &[
            ("Dockerfile", &dockerfile),
            (
                "package.json",
                r#"{"name":"app","version":"1.0.0","dependencies":{"ms":"2.1.3"}}"#,
            ),
            (
                "server.js",
                "const ms = require('ms');\nrequire('http').createServer((q, r) => r.end('two days is ' + ms('2 days') + ' ms\\n')).listen(80);\n",
            ),
        ],
    );
    build(&sb, &dir, &["-t", "app:1"]).ok();
    let port = free_port();
    sb.den(&[
        "run",
        "-d",
        "--name",
        "app",
        "-p",
        &format!("{port}:80"),
        "app:1",
    ])
    .ok();
    let addr = format!("127.0.0.1:{port}");
    wait_http(&addr, "/");
    let page = crate::network::http_get(&addr, "/");
    assert!(page.ends_with("two days is 172800000 ms\n"), "{page}");
    sb.den(&["rm", "-f", "app"]).ok();
    // Editing the server rebuilds only from its COPY: npm install comes from the cache.
    std::fs::write(
        dir.join("server.js"),
        "require('http').createServer((q, r) => r.end('v2\\n')).listen(80);\n",
    )
    .unwrap();
    let out = build(&sb, &dir, &["-t", "app:2"]);
    out.ok();
    assert_eq!(
        out.stderr.matches("--> Using cache").count(),
        3,
        "{}",
        out.stderr
    );
}

#[test]
fn add_of_a_url_and_a_fresh_base() {
    let sb = Sandbox::new();
    // A file served on the host's loopback; den-build fetches it itself.
    let www = sb.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("tool.txt"), "downloaded\n").unwrap();
    let port = free_port();
    let mut server = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(&www)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_http(&format!("127.0.0.1:{port}"), "/tool.txt");
    let df = format!(
        "FROM {}\nADD http://127.0.0.1:{port}/tool.txt /opt/\nRUN cat /opt/tool.txt && stat -c %a /opt/tool.txt\n",
        busybox()
    );
    let dir = context(&sb, "ctx", &[("Dockerfile", &df)]);
    // --pull fetches the base even though the store has none yet, and again when it has it.
    let out = build(&sb, &dir, &["--pull", "-t", "url:1"]);
    out.ok();
    assert!(out.stderr.contains("downloaded\n600\n"), "{}", out.stderr);
    build(&sb, &dir, &["--pull", "-q"]).ok();
    // The URL's content decides the cache: a change is a miss.
    let again = build(&sb, &dir, &[]);
    again.ok();
    assert!(again.stderr.contains("--> Using cache"), "{}", again.stderr);
    std::fs::write(www.join("tool.txt"), "changed\n").unwrap();
    let changed = build(&sb, &dir, &["-t", "url:2"]);
    changed.ok();
    assert!(changed.stderr.contains("changed\n"), "{}", changed.stderr);
    let _ = server.kill();
    let _ = server.wait();
}
