//! `den compose`: a three-service project (a web server built from a Dockerfile, a database-
//! like server with a health check and a named volume, a worker that reaches both by service
//! name and exits 0) brought up, listed, read, entered and taken down; `.env` interpolation
//! and `config`; an unknown key refused with the store unchanged; `kill -9` of a foreground
//! `up` recovered by `up -d` and `down`; `run --rm`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::sandbox::{Out, Sandbox, busybox, run};

/// `den ARGS` in the project directory `dir`.
fn compose(sb: &Sandbox, dir: &Path, args: &[&str]) -> Out {
    let mut all = vec!["compose"];
    all.extend_from_slice(args);
    let mut c = sb.cmd("den", &all);
    c.current_dir(dir);
    run(c)
}

/// A project directory `name` holding `files` (path, contents).
fn project(sb: &Sandbox, name: &str, files: &[(&str, String)]) -> PathBuf {
    let dir = sb.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn wait_for(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn state(sb: &Sandbox, name: &str) -> String {
    sb.den(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        name,
    ])
    .out()
    .trim()
    .to_string()
}

const SHOP: &str = r#"
services:
  db:
    image: ${BB}
    init: true
    command: ["sh", "-c", "echo db-ready > /data/index.html; exec httpd -f -p 5432 -h /data"]
    volumes: [data:/data]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:5432/"]
      interval: 1s
      retries: 30
  web:
    build: ./web
    init: true
    depends_on:
      db: {condition: service_healthy}
  worker:
    image: ${BB}
    depends_on:
      web: {condition: service_started}
      db: {condition: service_healthy}
    command:
      - sh
      - -c
      - for i in $$(seq 1 40); do wget -qO- http://web:8080/ && wget -qO- http://db:5432/ && exit 0; sleep 0.25; done; exit 1
volumes:
  data: {}
"#;

fn shop(sb: &Sandbox) -> PathBuf {
    let bb = busybox();
    project(
        sb,
        "shop",
        &[
            ("compose.yaml", SHOP.to_string()),
            (".env", format!("BB={bb}\n")),
            (
                "web/Dockerfile",
                format!(
                    "FROM {bb}\nRUN mkdir -p /www && echo hello-from-web > /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
                ),
            ),
        ],
    )
}

/// The issue's project: up -d in dependency order, ps, logs, exec, labels, a second up that
/// changes nothing, down keeping the named volume until down -v.
#[test]
fn a_three_service_project_up_ps_logs_exec_down() {
    let sb = Sandbox::new();
    let dir = shop(&sb);
    let up = compose(&sb, &dir, &["up", "-d"]);
    up.ok();
    assert!(
        up.stderr.contains("Container shop-db-1  Healthy"),
        "{}",
        up.stderr
    );
    // The worker reached web and db by their service names, and exited 0.
    assert!(
        wait_for(30, || state(&sb, "shop-worker-1").starts_with("exited")),
        "{}",
        state(&sb, "shop-worker-1")
    );
    assert_eq!(state(&sb, "shop-worker-1"), "exited 0");
    let logs = compose(&sb, &dir, &["logs", "--no-color", "worker"]).ok();
    assert!(logs.contains("shop-worker-1  | hello-from-web"), "{logs}");
    assert!(logs.contains("shop-worker-1  | db-ready"), "{logs}");
    let ps = compose(&sb, &dir, &["ps"]).ok();
    assert!(ps.starts_with("NAME "), "{ps}");
    assert!(
        ps.contains("shop-db-1") && ps.contains("shop-web-1"),
        "{ps}"
    );
    assert!(!ps.contains("shop-worker-1"), "running only: {ps}");
    let all = compose(&sb, &dir, &["ps", "-a", "-q"]).ok();
    assert_eq!(all.lines().count(), 3, "{all}");
    let labelled = sb
        .den(&[
            "ps",
            "-a",
            "-q",
            "--filter",
            "label=com.docker.compose.project=shop",
        ])
        .ok();
    assert_eq!(labelled.lines().count(), 3, "{labelled}");
    let page = compose(&sb, &dir, &["exec", "-T", "web", "cat", "/www/index.html"]).ok();
    assert_eq!(page, "hello-from-web\n");
    compose(
        &sb,
        &dir,
        &["exec", "-T", "db", "sh", "-c", "echo kept > /data/marker"],
    )
    .ok();
    // Unchanged services are left alone.
    let id = sb
        .den(&["inspect", "--format", "{{.Id}}", "shop-web-1"])
        .ok();
    let again = compose(&sb, &dir, &["up", "-d", "web"]);
    again.ok();
    assert!(
        again.stderr.contains("Container shop-web-1  Running"),
        "{}",
        again.stderr
    );
    assert_eq!(
        sb.den(&["inspect", "--format", "{{.Id}}", "shop-web-1"])
            .ok(),
        id
    );
    compose(&sb, &dir, &["down"]).ok();
    assert_eq!(compose(&sb, &dir, &["ps", "-a", "-q"]).ok(), "");
    assert!(sb.den(&["volume", "ls", "-q"]).ok().contains("shop_data"));
    compose(&sb, &dir, &["up", "-d", "db"]).ok();
    let kept = compose(&sb, &dir, &["exec", "-T", "db", "cat", "/data/marker"]).ok();
    assert_eq!(kept, "kept\n");
    compose(&sb, &dir, &["down", "-v"]).ok();
    assert!(!sb.den(&["volume", "ls", "-q"]).ok().contains("shop_data"));
    assert_eq!(sb.den(&["ps", "-a", "-q"]).ok(), "");
}

/// `.env` under the shell's variables, defaults, `$$`, a required variable, and `config`.
#[test]
fn dotenv_interpolation_and_config() {
    let sb = Sandbox::new();
    let dir = project(
        &sb,
        "My.App",
        &[
            (
                "compose.yaml",
                "services:\n  app:\n    image: \"busybox:${TAG}\"\n    environment:\n      GREETING: \"${GREETING:-hello}\"\n      LITERAL: \"$$HOME\"\n  extra:\n    image: busybox\n    profiles: [debug]\n".into(),
            ),
            (".env", "TAG=1.36\n".into()),
        ],
    );
    let config = compose(&sb, &dir, &["config"]).ok();
    assert!(config.contains("name: myapp"), "{config}");
    assert!(config.contains("image: busybox:1.36"), "{config}");
    assert!(config.contains("GREETING: hello"), "{config}");
    assert!(config.contains("LITERAL: $HOME"), "{config}");
    assert!(
        !config.contains("extra"),
        "a profile's service is off: {config}"
    );
    let mut c = sb.cmd(
        "den",
        &["compose", "--profile", "debug", "config", "--services"],
    );
    c.current_dir(&dir).env("TAG", "2");
    assert_eq!(run(c).ok(), "app\nextra\n");
    let mut c = sb.cmd("den", &["compose", "config"]);
    c.current_dir(&dir).env("TAG", "2");
    assert!(run(c).ok().contains("image: busybox:2"));
    std::fs::write(
        dir.join("need.yaml"),
        "services:\n  app:\n    image: \"${IMAGE:?set IMAGE to the image to run}\"\n",
    )
    .unwrap();
    compose(&sb, &dir, &["-f", "need.yaml", "config"])
        .fails_with(125, "required variable IMAGE is missing a value: set IMAGE");
}

/// A key den does not implement is named, exit 125, and nothing is made.
#[test]
fn an_unknown_key_is_refused_and_the_store_is_unchanged() {
    let sb = Sandbox::new();
    let dir = project(
        &sb,
        "bad",
        &[(
            "compose.yaml",
            format!("services:\n  web:\n    image: {}\n    foo: 1\n", busybox()),
        )],
    );
    let before = sb.store_listing();
    let out = compose(&sb, &dir, &["up", "-d"]);
    out.fails_with(
        125,
        "services.web.foo: den compose does not support this key",
    );
    assert_eq!(sb.store_listing(), before);
    assert_eq!(sb.den(&["ps", "-a", "-q"]).ok(), "");
    let none = project(&sb, "empty", &[]);
    compose(&sb, &none, &["ps"]).fails_with(125, "no configuration file provided");
}

/// One service without a network of its own (`network_mode: none`).
const SLEEPER: &str = "services:\n  sleeper:\n    image: ${BB}\n    init: true\n    network_mode: none\n    command: [sh, -c, 'echo sleeper-up; exec sleep 1000']\n";

/// A foreground `up` killed with SIGKILL leaves its containers running; `up -d` finds them
/// unchanged and `down` removes everything. A foreground `up` interrupted stops them (130).
#[test]
fn a_killed_foreground_up_is_recovered_by_up_and_down() {
    let sb = Sandbox::new();
    let dir = project(
        &sb,
        "fg",
        &[
            ("compose.yaml", SLEEPER.into()),
            (".env", format!("BB={}\n", busybox())),
        ],
    );
    let mut c = sb.cmd("den", &["compose", "up"]);
    c.current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut fg = c.spawn().unwrap();
    assert!(
        wait_for(60, || state(&sb, "fg-sleeper-1").starts_with("running")),
        "the foreground up never started its container"
    );
    fg.kill().unwrap();
    fg.wait().unwrap();
    let id = sb
        .den(&["inspect", "--format", "{{.Id}}", "fg-sleeper-1"])
        .ok();
    let up = compose(&sb, &dir, &["up", "-d"]);
    up.ok();
    assert!(up.stderr.contains("fg-sleeper-1  Running"), "{}", up.stderr);
    assert_eq!(
        sb.den(&["inspect", "--format", "{{.Id}}", "fg-sleeper-1"])
            .ok(),
        id
    );
    compose(&sb, &dir, &["down"]).ok();
    assert_eq!(sb.den(&["ps", "-a", "-q"]).ok(), "");

    // Interrupted, it stops what it started and exits 130; its output is the prefixed log.
    let mut c = sb.cmd("den", &["compose", "up", "--no-color"]);
    c.current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let fg = c.spawn().unwrap();
    assert!(wait_for(60, || state(&sb, "fg-sleeper-1").starts_with("running")));
    std::thread::sleep(Duration::from_millis(500));
    let pid = fg.id().to_string();
    run({
        let mut k = std::process::Command::new("kill");
        k.args(["-INT", &pid]);
        k
    })
    .ok();
    let out = fg.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("fg-sleeper-1  | sleeper-up"), "{text}");
    assert!(state(&sb, "fg-sleeper-1").starts_with("exited"));
    compose(&sb, &dir, &["down"]).ok();
}

/// `run --rm`: a one-off with its own command, its output and status, then gone.
#[test]
fn run_rm_runs_a_one_off_and_removes_it() {
    let sb = Sandbox::new();
    let dir = project(
        &sb,
        "once",
        &[
            ("compose.yaml", SLEEPER.into()),
            (".env", format!("BB={}\n", busybox())),
        ],
    );
    let out = compose(
        &sb,
        &dir,
        &[
            "run",
            "--rm",
            "-T",
            "sleeper",
            "sh",
            "-c",
            "echo one-off; exit 3",
        ],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(out.out(), "one-off\n");
    assert_eq!(sb.den(&["ps", "-a", "-q"]).ok(), "");
    compose(&sb, &dir, &["down"]).ok();
}

const TWO_NETWORKS: &str = r#"
services:
  front:
    image: ${BB}
    command: ["sh", "-c", "hostname > /tmp/index.html; exec httpd -f -p 80 -h /tmp"]
    networks: [outer]
  back:
    image: ${BB}
    command: ["sh", "-c", "hostname > /tmp/index.html; exec httpd -f -p 80 -h /tmp"]
    networks: [inner]
  hub:
    image: ${BB}
    command: ["sleep", "600"]
    networks: [outer, inner]
  side:
    image: ${BB}
    command: ["sleep", "600"]
    network_mode: "service:front"
networks:
  outer: {}
  inner: {}
"#;

/// A service on two networks reaches both networks' services by name (the second network is
/// `network connect`ed before start); `network_mode: service:X` shares X's network namespace.
#[test]
fn a_service_on_two_networks_and_one_on_anothers_namespace() {
    let sb = Sandbox::new();
    let dir = project(
        &sb,
        "nets",
        &[
            ("compose.yaml", TWO_NETWORKS.into()),
            (".env", format!("BB={}\n", busybox())),
        ],
    );
    compose(&sb, &dir, &["up", "-d"]).ok();
    let get = |svc: &str, url: &str| {
        compose(
            &sb,
            &dir,
            &["exec", "-T", svc, "timeout", "5", "wget", "-qO-", url],
        )
    };
    let front = get("hub", "http://front/");
    let back = get("hub", "http://back/");
    assert_eq!(
        (front.code, back.code),
        (0, 0),
        "{} {}",
        front.stderr,
        back.stderr
    );
    assert_ne!(front.out(), back.out(), "two different servers");
    // front and back are on different networks: neither resolves the other.
    assert_ne!(get("front", "http://back/").code, 0);
    // side shares front's namespace: front's server on its loopback, front's host name.
    assert_eq!(get("side", "http://127.0.0.1/").out(), front.out());
    compose(&sb, &dir, &["down"]).ok();
    assert_eq!(sb.den(&["ps", "-a", "-q"]).ok(), "");
}
