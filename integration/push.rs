//! login, logout and push, against registries that ask for credentials: one with HTTP basic
//! auth (htpasswd) and one with bearer tokens from the test token service; round trips with
//! skopeo and podman.

use std::process::Command;

use crate::sandbox::{Registry, Sandbox, env, htpasswd_registry, run};

fn login(sb: &Sandbox, reg: &Registry, user: &str, password: &str) -> crate::sandbox::Out {
    sb.den_input(
        &["login", &reg.addr, "-u", user, "--password-stdin"],
        format!("{password}\n").as_bytes(),
    )
}

/// Build an image named `name` from busybox with `extra` Dockerfile lines.
fn build(sb: &Sandbox, reg: &Registry, name: &str, extra: &str) {
    let df = format!("FROM {}\n{extra}\n", reg.image("library/busybox"));
    sb.den_input(&["build", "-q", "-t", name, "-"], df.as_bytes())
        .ok();
}

/// Blob uploads the registry completed into `repo`.
fn uploads(reg: &Registry, repo: &str) -> usize {
    reg.requests("PUT", &format!("/v2/{repo}/blobs/uploads/"), 201)
}

#[test]
fn login_push_and_pull_with_basic_auth() {
    let sb = Sandbox::new();
    let reg = htpasswd_registry("basic");
    let bb = reg.image("library/busybox");
    let auth_file = sb.config_home.join("den/auth.json");

    // Anonymous pulls are refused and say how to log in.
    sb.den(&["pull", &bb])
        .fails_with(125, &format!("den login {}", reg.addr));

    // A wrong password: one error naming the registry, exit 1, nothing stored.
    let wrong = login(&sb, &reg, "alice", "wrong");
    wrong.fails_with(1, &reg.addr);
    assert!(!wrong.stderr.contains("wrong\n") && !wrong.out().contains("wrong"));
    assert!(!auth_file.exists());

    let ok = login(&sb, &reg, "alice", "s3cret");
    assert_eq!(ok.ok(), "Login Succeeded\n");
    assert!(!ok.stderr.contains("s3cret"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&auth_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "auth.json must be private");
    let text = std::fs::read_to_string(&auth_file).unwrap();
    assert!(text.contains(&reg.addr) && !text.contains("s3cret"));

    sb.den(&["pull", "-q", &bb]).ok();

    // First push: every blob goes up (layers are mounted from library/busybox where the
    // registry has them, the new layer and the config are uploaded).
    let app = format!("{}/alice/app:1", reg.addr);
    build(&sb, &reg, &app, "RUN echo one > /one");
    let first = sb.den(&["push", &app]);
    let out = first.ok();
    assert!(
        out.starts_with("1: digest: sha256:") && out.contains(" size: "),
        "{out}"
    );
    assert!(
        first.stderr.contains("Mounted from library/busybox"),
        "{}",
        first.stderr
    );
    assert_eq!(
        uploads(&reg, "alice/app"),
        2,
        "new layer and config: {}",
        reg.log()
    );

    // Second push: nothing is uploaded.
    let again = sb.den(&["push", &app]);
    assert_eq!(again.ok(), out);
    assert!(again.stderr.contains("Layer already exists"));
    assert_eq!(uploads(&reg, "alice/app"), 2, "a re-push uploads no blob");

    // One more layer: exactly that layer and the new config go up.
    let app2 = format!("{}/alice/app:2", reg.addr);
    build(&sb, &reg, &app2, "RUN echo one > /one\nRUN echo two > /two");
    sb.den(&["push", &app2]).ok();
    assert_eq!(uploads(&reg, "alice/app"), 4, "{}", reg.log());

    // A second store pulls what was pushed, and runs it.
    let other = Sandbox::new();
    login(&other, &reg, "alice", "s3cret").ok();
    other.den(&["pull", "-q", &app2]).ok();
    assert_eq!(
        other
            .den(&["run", "--rm", &app2, "cat", "/one", "/two"])
            .ok(),
        "one\ntwo\n"
    );

    // Logged out, a push is refused and says to log in.
    assert_eq!(
        sb.den(&["logout", &reg.addr]).ok(),
        format!("Removing login credentials for {}\n", reg.addr)
    );
    sb.den(&["push", &app])
        .fails_with(1, &format!("den login {}", reg.addr));
    assert_eq!(
        sb.den(&["logout", &reg.addr]).ok(),
        format!("Not logged in to {}\n", reg.addr)
    );
}

#[test]
fn docker_and_podman_credentials_are_used() {
    let sb = Sandbox::new();
    let reg = htpasswd_registry("others");
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    // docker's file: pull works without den login.
    let docker = sb.home.join(".docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.addr),
    )
    .unwrap();
    sb.den(&["pull", "-q", &reg.image("library/busybox")]).ok();
    // logout leaves other tools' files alone, and says so.
    let out = sb.den(&["logout", &reg.addr]).ok();
    assert!(
        out.contains("Not logged in") && out.contains(".docker/config.json"),
        "{out}"
    );
    std::fs::remove_dir_all(&docker).unwrap();

    // podman's file ($XDG_RUNTIME_DIR/containers/auth.json).
    let other = Sandbox::new();
    let podman = other.runtime.join("containers");
    std::fs::create_dir_all(&podman).unwrap();
    std::fs::write(
        podman.join("auth.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.addr),
    )
    .unwrap();
    other
        .den(&["pull", "-q", &reg.image("library/busybox")])
        .ok();
}

#[test]
fn bearer_tokens_login_push_and_mounts() {
    let mut sb = Sandbox::new();
    let tokens =
        crate::token::TokenService::start(&env().tmp.join("tokens-push"), &[("alice", "s3cret")]);
    let reg = Registry::start_with(
        "bearer-push",
        &tokens.registry_config(),
        Some("alice:s3cret"),
    );
    reg.push("busybox", "library/busybox");
    let bb = reg.image("library/busybox");

    // Anonymous pull is allowed; push without login is not.
    sb.den(&["pull", "-q", &bb]).ok();
    let app = format!("{}/alice/app:1", reg.addr);
    build(&sb, &reg, &app, "RUN echo token > /t");
    sb.den(&["push", &app])
        .fails_with(1, &format!("den login {}", reg.addr));

    login(&sb, &reg, "alice", "nope").fails_with(1, &reg.addr);
    assert_eq!(
        login(&sb, &reg, "alice", "s3cret").ok(),
        "Login Succeeded\n"
    );

    // Small chunks: the new layer goes up in several PATCH requests.
    sb.set_env("DEN_PUSH_CHUNK_SIZE", "4096");
    build(&sb, &reg, &app, "RUN head -c 100000 /dev/urandom > /t");
    let out = sb.den(&["push", &app]).ok();
    assert!(out.starts_with("1: digest: sha256:"), "{out}");
    assert!(
        reg.requests("PATCH", "/v2/alice/app/blobs/uploads/", 202) >= 10,
        "chunked upload: {}",
        reg.log()
    );

    // The same image in another repository: its blobs are mounted, not uploaded.
    let before = uploads(&reg, "alice/copy");
    let copy = format!("{}/alice/copy:1", reg.addr);
    let pushed = sb.den(&["push", &app, &copy]);
    pushed.ok();
    assert!(
        pushed.stderr.contains("Mounted from alice/app"),
        "{}",
        pushed.stderr
    );
    assert_eq!(uploads(&reg, "alice/copy"), before);
    assert!(reg.requests("POST", "/v2/alice/copy/blobs/uploads/?mount=sha256", 201) >= 2);

    // What den pushed, skopeo reads (and anyone may pull it).
    let inspect = run({
        let mut c = Command::new("skopeo");
        c.args(["inspect", "--tls-verify=false", "--raw"])
            .arg(format!("docker://{copy}"))
            .env("HOME", env().tmp.join("skopeo-home"));
        c
    });
    let manifest: serde_json::Value = serde_json::from_str(&inspect.ok()).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
}

#[test]
fn pushed_images_run_in_podman_and_skopeo_pushed_ones_in_den() {
    let sb = Sandbox::new();
    let reg = Registry::start("podman-trip");
    reg.push("busybox", "library/busybox");
    let app = format!("{}/trip/app:1", reg.addr);
    build(
        &sb,
        &reg,
        &app,
        "RUN echo from-den > /made-by\nCMD [\"cat\", \"/made-by\"]",
    );
    sb.den(&["push", &app]).ok();

    let podman = crate::sandbox::Podman::new(&sb);
    podman.run(&["pull", "-q", "--tls-verify=false", &app]).ok();
    assert_eq!(podman.run(&["run", "--rm", &app]).ok(), "from-den\n");

    // skopeo copies it to another repository; den pulls that copy and runs it.
    let copy = format!("{}/trip/copy:1", reg.addr);
    run({
        let mut c = Command::new("skopeo");
        c.args([
            "--insecure-policy",
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(format!("docker://{app}"))
        .arg(format!("docker://{copy}"))
        .env("HOME", env().tmp.join("skopeo-home"));
        c
    })
    .ok();
    let fresh = Sandbox::new();
    assert_eq!(fresh.den(&["run", "--rm", &copy]).ok(), "from-den\n");
}

#[test]
fn an_interrupted_push_resumes_without_resending_what_landed() {
    let sb = Sandbox::new();
    let reg = Registry::start("resume");
    reg.push("busybox", "library/busybox");
    let app = format!("{}/r/app:1", reg.addr);
    // Two new layers: a small one that lands at once and a large one that cannot in time.
    build(
        &sb,
        &reg,
        &app,
        "RUN echo small > /small\nRUN head -c 3000000 /dev/urandom > /big",
    );
    let slow = crate::sandbox::SlowProxy::start_upload(&reg.addr, 200_000);
    let via_proxy = format!("{}/r/app:1", slow.addr);
    let mut c = sb.cmd("den", &["push", &app, &via_proxy]);
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    // Wait until a blob has landed, then kill den mid-push.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while uploads(&reg, "r/app") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let landed = uploads(&reg, "r/app");
    assert!(landed >= 1, "a blob landed before the kill: {}", reg.log());
    assert!(landed < 4, "the push was interrupted: {}", reg.log());
    // What den had already written (a small blob sent alongside, say) reaches the registry
    // after its death; the re-run starts from what landed by then.
    slow.wait_drained();

    // The re-run sends only what had not landed: no blob is uploaded twice.
    let out = sb.den(&["push", &app]);
    out.ok();
    assert!(
        out.stderr.contains("Layer already exists"),
        "{}",
        out.stderr
    );
    let log = reg.log();
    let mut digests: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"PUT /v2/r/app/blobs/uploads/") && l.contains("\" 201 "))
        .filter_map(|l| l.split("digest=").nth(1))
        .filter_map(|d| d.split(['&', ' ']).next())
        .collect();
    let all = digests.len();
    digests.sort();
    digests.dedup();
    assert_eq!(digests.len(), all, "a blob went up twice: {log}");
    assert_eq!(reg.requests("PUT", "/v2/r/app/manifests/1", 201), 1);
}
