//! What a RUN step may see that never lands in the image: `--secret` with `RUN
//! --mount=type=secret`, `--ssh` with `RUN --mount=type=ssh` (a real ssh-agent), and `RUN
//! --mount=type=bind,from=` another stage or an image.

use std::path::Path;
use std::process::Command;

use crate::sandbox::{Sandbox, build, busybox, context, sha256_hex};

fn run_out(sb: &Sandbox, image: &str, cmd: &[&str]) -> String {
    let mut a = vec!["run", "--rm", image];
    a.extend_from_slice(cmd);
    sb.den(&a).ok()
}

/// Whether `needle` is anywhere in the files under `dir` (what the user can read of it).
fn found_under(dir: &Path, needle: &str) -> bool {
    let out = Command::new("grep")
        .args(["-r", "-s", "-F", "-l", "-a", needle])
        .arg(dir)
        .output()
        .unwrap();
    !out.stdout.is_empty()
}

/// The build's private directories in den's runtime directory (none once a build ends).
fn build_dirs(sb: &Sandbox) -> Vec<String> {
    std::fs::read_dir(sb.runtime.join("den"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("build-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_secret_is_read_by_the_step_and_lands_nowhere() {
    let sb = Sandbox::new();
    let secret = format!("den-secret-{}", std::process::id());
    let src = sb.dir.join("token.txt");
    std::fs::write(&src, &secret).unwrap();
    let df = format!(
        "FROM {bb}
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /sum && stat -c %a /run/secrets/tok > /mode && (echo x > /run/secrets/tok 2>/dev/null && echo writable || echo read-only) > /ro
RUN --mount=type=secret,id=tok,target=/etc/app/key,mode=0440,env=TOKEN sh -c 'test \"$TOKEN\" = \"$(cat /etc/app/key)\" && stat -c %a /etc/app/key > /envmode'
RUN --mount=type=secret,id=tok,env=TOKEN sh -c 'echo ${{#TOKEN}} > /envlen; test ! -e /run/secrets/tok'
WORKDIR /app
RUN --mount=type=secret,id=tok,target=conf/key sh -c 'sha256sum /app/conf/key | cut -d\" \" -f1 > /rel'
WORKDIR /
RUN --mount=type=secret,id=absent sh -c 'test ! -e /run/secrets/absent && echo skipped > /absent'
RUN test ! -e /run/secrets && test ! -e /etc/app && test ! -e /app/conf && echo clean > /stubs
",
        bb = busybox()
    );
    let dir = context(&sb, "ctx", &df, &[]);
    // Relative to where den build runs, as docker reads it.
    let flag = "id=tok,src=token.txt".to_string();
    let out = build(&sb, &dir, &["-t", "sec:1", "--secret", &flag]);
    out.ok();
    assert!(!out.stderr.contains(&secret), "{}", out.stderr);
    let got = run_out(
        &sb,
        "sec:1",
        &[
            "cat", "/sum", "/mode", "/ro", "/envmode", "/envlen", "/rel", "/absent", "/stubs",
        ],
    );
    assert_eq!(
        got,
        format!(
            "{sum}\n400\nread-only\n440\n{}\n{sum}\nskipped\nclean\n",
            secret.len(),
            sum = sha256_hex(secret.as_bytes()),
        )
    );
    // Not in the saved image, its history, its config, or anywhere in the store.
    let tar = sb.dir.join("sec.tar");
    sb.den(&["save", "-o", tar.to_str().unwrap(), "sec:1"]).ok();
    assert!(
        !found_under(&tar, &secret),
        "the saved image holds the secret"
    );
    let history = sb.den(&["history", "--no-trunc", "sec:1"]).ok();
    assert!(!history.contains(&secret), "{history}");
    assert!(history.contains("/run/secrets/tok"), "{history}");
    let inspect = sb.den(&["image", "inspect", "sec:1"]).ok();
    assert!(!inspect.contains(&secret));
    assert!(
        !found_under(&sb.root, &secret),
        "the store holds the secret"
    );
    assert!(
        !found_under(&sb.runtime, &secret),
        "the runtime dir holds the secret"
    );
    assert_eq!(build_dirs(&sb), Vec::<String>::new());
    // The cache key holds the id, not the bytes (BuildKit's way): a rebuild is all cache hits.
    let again = build(&sb, &dir, &["-t", "sec:2", "--secret", &flag]);
    again.ok();
    assert_eq!(
        again.stderr.matches("Using cache").count(),
        8,
        "{}",
        again.stderr
    );
    // An environment variable as the source, buildx's spelling.
    let mut sb = sb;
    sb.set_env("DEN_TEST_TOKEN", &secret);
    build(
        &sb,
        &dir,
        &[
            "--no-cache",
            "-t",
            "sec:3",
            "--secret",
            "id=tok,env=DEN_TEST_TOKEN",
        ],
    )
    .ok();
    assert_eq!(
        run_out(&sb, "sec:3", &["cat", "/sum"]).trim(),
        sha256_hex(secret.as_bytes())
    );
}

#[test]
fn secrets_the_user_did_not_give_or_cannot_give_fail_in_one_line() {
    let sb = Sandbox::new();
    let bb = busybox();
    let dir = context(
        &sb,
        "req",
        &format!("FROM {bb}\nRUN --mount=type=secret,id=deploy_key,required=true true\n"),
        &[],
    );
    // A secret the Dockerfile requires and the user did not give: exit 1, naming the id.
    build(&sb, &dir, &["-t", "req:1"])
        .fails_with(1, "secret deploy_key is required but was not given");
    let before = sb.store_listing();
    // Bad --secret flags and sources: refused before anything is built, store unchanged.
    build(&sb, &dir, &["--secret", "src=/etc/hostname"]).fails_with(1, "it has no id");
    build(
        &sb,
        &dir,
        &["--secret", "id=deploy_key,src=/nonexistent/key"],
    )
    .fails_with(1, "cannot read secret deploy_key from /nonexistent/key");
    let big = sb.dir.join("big");
    std::fs::write(&big, vec![b'x'; 600 * 1024]).unwrap();
    build(
        &sb,
        &dir,
        &["--secret", &format!("id=deploy_key,src={}", big.display())],
    )
    .fails_with(1, "over the cap of 500 KiB");
    build(
        &sb,
        &dir,
        &["--secret", "id=deploy_key,env=DEN_TEST_UNSET_VAR"],
    )
    .fails_with(1, "DEN_TEST_UNSET_VAR, which is not set");
    build(&sb, &dir, &["--ssh", "k=/nonexistent/sock"]).fails_with(1, "--ssh k:");
    assert_eq!(sb.store_listing(), before);
    // A Dockerfile cannot name a host path for a secret: only an id, which the user maps.
    let host = context(
        &sb,
        "host",
        &format!(
            "FROM {bb}\nRUN --mount=type=secret,id=x,source=/etc/shadow,required cat /run/secrets/x\n"
        ),
        &[],
    );
    build(&sb, &host, &[]).fails_with(1, "secret x is required but was not given");
    // The mounts one RUN may have are capped.
    let many: String = (0..33)
        .map(|n| format!("--mount=type=tmpfs,target=/t{n} "))
        .collect();
    let capped = context(&sb, "cap", &format!("FROM {bb}\nRUN {many}true\n"), &[]);
    build(&sb, &capped, &[]).fails_with(1, "more than 32 --mount flags");
    assert_eq!(build_dirs(&sb), Vec::<String>::new());
}

/// The host's ssh-add with the libraries it needs, to run in a busybox step from a bind mount
/// (busybox has no OpenSSH): its dynamic loader runs it with the mount as its library path.
fn ssh_add_kit(dir: &Path) -> String {
    let kit = dir.join("kit");
    std::fs::create_dir_all(&kit).unwrap();
    std::fs::copy("/usr/bin/ssh-add", kit.join("ssh-add")).unwrap();
    let ldd = Command::new("ldd")
        .arg("/usr/bin/ssh-add")
        .output()
        .unwrap();
    let mut loader = String::new();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(String::from);
        if let Some(p) = path {
            let name = Path::new(&p).file_name().unwrap().to_owned();
            std::fs::copy(&p, kit.join(&name)).unwrap();
            if name.to_string_lossy().starts_with("ld-linux") {
                loader = name.to_string_lossy().into_owned();
            }
        }
    }
    assert!(!loader.is_empty(), "no dynamic loader in {ldd:?}");
    format!("/kit/{loader} --library-path /kit /kit/ssh-add")
}

#[test]
fn an_ssh_agent_is_reachable_in_the_step_and_only_there() {
    let mut sb = Sandbox::new();
    // A throwaway key in a real agent of the test's own.
    let key = sb.dir.join("id_test");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "den-test-key", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let sock = sb.dir.join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The agent binds its socket, then listens: wait until it answers.
    for _ in 0..100 {
        if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let added = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    let dir = sb.dir.join("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    let ssh_add = ssh_add_kit(&dir);
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {bb}
RUN --mount=type=ssh --mount=type=bind,source=kit,target=/kit sh -c 'test -S /run/buildkit/ssh_agent.0 && test \"$SSH_AUTH_SOCK\" = /run/buildkit/ssh_agent.0 && {ssh_add} -l > /keys'
RUN --mount=type=ssh,id=mine,target=/agent --mount=type=bind,source=kit,target=/kit sh -c 'SSH_AUTH_SOCK=/agent {ssh_add} -l > /keys2'
RUN --mount=type=ssh,mode=0666,target=/proxied --mount=type=bind,source=kit,target=/kit sh -c 'test \"$(stat -c %a /proxied)\" = 666 && {ssh_add} -l > /keys3'
{as_nobody}RUN sh -c 'test -z \"$SSH_AUTH_SOCK\" && test ! -e /run/buildkit && test ! -e /agent && test ! -e /proxied && echo clean > /after'
",
            bb = busybox(),
            // Another user reaches the agent through a socket of the step's own, owned as
            // asked (where the user namespace maps more than one id).
            as_nobody = if sb.mapped() {
                format!(
                    "USER nobody\nRUN --mount=type=ssh,uid=65534 --mount=type=bind,source=kit,target=/kit sh -c '{ssh_add} -l > /tmp/keys4'\nUSER root\n"
                )
            } else {
                String::new()
            }
        ),
    )
    .unwrap();
    sb.set_env("SSH_AUTH_SOCK", sock.to_str().unwrap());
    // `default` is $SSH_AUTH_SOCK; `mine` is a key file, for which den starts an agent.
    let mine = format!("mine={}", key.display());
    let out = build(
        &sb,
        &dir,
        &["-t", "ssh:1", "--ssh", "default", "--ssh", &mine],
    );
    let _ = agent.kill();
    let _ = agent.wait();
    out.ok();
    let mut files = vec!["cat", "/keys", "/keys2", "/keys3"];
    if sb.mapped() {
        files.push("/tmp/keys4");
    }
    files.push("/after");
    let got = run_out(&sb, "ssh:1", &files);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), files.len() - 1, "{got}");
    for l in &lines[..lines.len() - 1] {
        assert!(l.contains("den-test-key") && l.contains("ED25519"), "{got}");
    }
    assert_eq!(lines.last(), Some(&"clean"));
    assert_eq!(build_dirs(&sb), Vec::<String>::new());
    // Without --ssh, a required agent is refused in one line.
    let req = context(
        &sb,
        "req",
        &format!(
            "FROM {}\nRUN --mount=type=ssh,required=true true\n",
            busybox()
        ),
        &[],
    );
    build(&sb, &req, &[]).fails_with(1, "ssh agent default is required but was not given");
}

#[test]
fn bind_mounts_from_a_stage_or_an_image_stay_inside_and_throw_writes_away() {
    let sb = Sandbox::new();
    let bb = busybox();
    let df = format!(
        "FROM {bb} AS tools
RUN mkdir -p /opt/t /tmp && echo tool-data > /opt/t/file && echo stage-tmp > /tmp/marker && ln -s ../../../../../../tmp /opt/esc
FROM {bb}
RUN --mount=type=bind,from=tools,source=/opt/t,target=/t cat /t/file > /got && (touch /t/x 2>/dev/null && echo writable || echo read-only) > /ro
RUN --mount=type=bind,from=tools,source=/opt/t,target=/t,rw sh -c 'echo scribble > /t/new && cat /t/new > /rw'
RUN --mount=type=bind,from=tools,source=/opt/t,target=/t test ! -e /t/new && echo gone > /thrown
RUN --mount=type=bind,from=tools,source=/opt/esc,target=/e cat /e/marker > /inside
RUN --mount=type=bind,from=0,source=../../../../tmp/marker,target=/m cat /m > /dotdot
RUN --mount=type=bind,from={bb},source=/bin/busybox,target=/x/busybox /x/busybox echo image > /img
RUN test ! -e /t && test ! -e /x && test ! -e /e && echo clean > /stubs
"
    );
    let dir = context(&sb, "ctx", &df, &[]);
    build(&sb, &dir, &["-t", "from:1"]).ok();
    assert_eq!(
        run_out(
            &sb,
            "from:1",
            &[
                "cat", "/got", "/ro", "/rw", "/thrown", "/inside", "/dotdot", "/img", "/stubs"
            ]
        ),
        "tool-data\nread-only\nscribble\ngone\nstage-tmp\nstage-tmp\nimage\nclean\n"
    );
    // Nothing the rw mount wrote reached the stage: a stage built from it has no /opt/t/new.
    let check = context(
        &sb,
        "check",
        &format!("{df}FROM tools\nRUN test ! -e /opt/t/new && echo untouched > /u\n"),
        &[],
    );
    build(&sb, &check, &["-t", "from:2"]).ok();
    assert_eq!(run_out(&sb, "from:2", &["cat", "/u"]), "untouched\n");
    // A source missing in the stage: one line, naming it.
    let missing = context(
        &sb,
        "missing",
        &format!(
            "FROM {bb} AS a\nFROM {bb}\nRUN --mount=type=bind,from=a,source=/nope,target=/n true\n"
        ),
        &[],
    );
    build(&sb, &missing, &[]).fails_with(1, "/nope is not in a");
    // The stage decides the step: a change in it reruns the step.
    let v2 = df.replace("tool-data", "tool-data-2");
    let dir2 = context(&sb, "ctx2", &v2, &[]);
    build(&sb, &dir2, &["-t", "from:3"]).ok();
    assert_eq!(run_out(&sb, "from:3", &["cat", "/got"]), "tool-data-2\n");
}
