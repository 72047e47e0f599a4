//! OCI hooks from hooks.d directories (podman's 1.0.0 format): every stage runs once with the
//! OCI state on stdin, `when` decides which containers get a hook, the directories den reads
//! (the user's hooks.d, the config's `[hooks] dirs`, `--hooks-dir`), failing, timing-out and
//! malformed hooks, and the hook den ships (hooks/bind-libs.*).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::sandbox::{Sandbox, busybox};

/// A hook definition running `sh -c SCRIPT`.
fn definition(script: &str, when: &str, stages: &[&str], timeout: Option<u32>) -> String {
    serde_json::json!({
        "version": "1.0.0",
        "hook": {
            "path": "/bin/sh",
            "args": ["sh", "-c", script],
            "timeout": timeout,
        },
        "when": serde_json::from_str::<serde_json::Value>(when).unwrap(),
        "stages": stages,
    })
    .to_string()
}

fn user_hooks(sb: &Sandbox) -> PathBuf {
    let d = sb.config_home.join("den/hooks.d");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn marks(sb: &Sandbox) -> PathBuf {
    let d = sb.dir.join("marks");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// One hook per stage leaves the state it got; the runtime-side ones run in order, each
/// exactly once, with the container's id, init pid, bundle and annotations.
#[test]
fn every_stage_runs_once_with_the_state() {
    let sb = Sandbox::new();
    let bb = busybox();
    let dir = user_hooks(&sb);
    let m = marks(&sb);
    let stages = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    for (i, stage) in stages.iter().enumerate() {
        // startContainer runs inside the container: its path and the marks are the container's.
        let at = if *stage == "startContainer" {
            "/marks".to_string()
        } else {
            m.display().to_string()
        };
        let script = format!("cat > {at}/{stage}.json; echo {stage} >> {at}/order");
        std::fs::write(
            dir.join(format!("{i}-{stage}.json")),
            definition(&script, r#"{"always": true}"#, &[stage], Some(10)),
        )
        .unwrap();
    }
    let vol = format!("{}:/marks", m.display());
    sb.den(&[
        "run",
        "--name",
        "c1",
        "--annotation",
        "org.test.mark=yes",
        "-v",
        &vol,
        &bb,
        "true",
    ])
    .ok();
    let id = sb
        .den(&["inspect", "-f", "{{.Id}}", "c1"])
        .ok()
        .trim()
        .to_string();
    let order = read(&m.join("order"));
    let ran: Vec<&str> = order.lines().collect();
    for stage in stages {
        assert_eq!(
            ran.iter().filter(|s| **s == stage).count(),
            1,
            "{stage}: {order}"
        );
    }
    assert_eq!(&ran[..3], &stages[..3], "{order}");
    assert_eq!(ran.last(), Some(&"poststop"), "{order}");
    let mut pids = Vec::new();
    for stage in stages {
        let text = read(&m.join(format!("{stage}.json")));
        let state: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{stage}'s state {text:?}: {e}"));
        assert_eq!(state["id"], id.as_str(), "{stage}: {state}");
        assert_eq!(
            state["annotations"]["org.test.mark"], "yes",
            "{stage}: {state}"
        );
        let bundle = state["bundle"].as_str().unwrap_or_default();
        assert!(
            bundle.contains(&id) && Path::new(bundle).is_absolute(),
            "{stage}: {state}"
        );
        if stage != "startContainer" {
            pids.push(state["pid"].as_i64().unwrap_or(0));
        }
    }
    assert!(
        pids[0] > 1 && pids.iter().all(|p| *p == pids[0]),
        "{pids:?}"
    );
    // A restart runs them again, once each.
    std::fs::remove_file(m.join("order")).unwrap();
    sb.den(&["start", "-a", "c1"]).ok();
    assert_eq!(read(&m.join("order")).lines().count(), 6);
}

/// `when`: all the conditions given must hold; later directories mask same-named files;
/// `--hooks-dir` replaces den's directories.
#[test]
fn when_conditions_and_directories() {
    let sb = Sandbox::new();
    let bb = busybox();
    let m = marks(&sb);
    let log = m.join("log");
    let mark = |name: &str| format!("echo {name} >> {}", log.display());
    let site = sb.dir.join("site-hooks");
    std::fs::create_dir_all(&site).unwrap();
    sb.config(&format!("[hooks]\ndirs = [\"{}\"]\n", site.display()));
    let user = user_hooks(&sb);
    let prestart = &["prestart"];
    let put = |dir: &Path, file: &str, name: &str, when: &str| {
        std::fs::write(
            dir.join(file),
            definition(&mark(name), when, prestart, None),
        )
        .unwrap();
    };
    put(
        &site,
        "10-always.json",
        "site-always",
        r#"{"always": true}"#,
    );
    put(
        &user,
        "10-always.json",
        "user-always",
        r#"{"always": true}"#,
    );
    put(
        &site,
        "20-mpi.json",
        "mpi",
        r#"{"annotations": {"^org\\.mpi$": "^(yes|true)$"}, "commands": ["(^|/)echo$"]}"#,
    );
    put(
        &user,
        "30-binds.json",
        "binds",
        r#"{"hasBindMounts": true}"#,
    );
    put(
        &user,
        "40-never.json",
        "never",
        r#"{"always": false, "hasBindMounts": true}"#,
    );
    let run = |args: &[&str]| -> Vec<String> {
        let _ = std::fs::remove_file(&log);
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        sb.den(&all).ok();
        read(&log).lines().map(String::from).collect()
    };
    assert_eq!(run(&[&bb, "true"]), ["user-always"]);
    assert_eq!(
        run(&["--annotation", "org.mpi=yes", &bb, "true"]),
        ["user-always"]
    );
    assert_eq!(
        run(&["--annotation", "org.mpi=yes", &bb, "echo", "hi"]),
        ["user-always", "mpi"]
    );
    let vol = format!("{}:/data", m.display());
    assert_eq!(run(&["-v", &vol, &bb, "true"]), ["user-always", "binds"]);
    // --hooks-dir: its hooks only (podman's), later directories winning.
    let flag = sb.dir.join("flag-hooks");
    std::fs::create_dir_all(&flag).unwrap();
    put(
        &flag,
        "10-always.json",
        "flag-always",
        r#"{"always": true}"#,
    );
    let (s, f) = (site.display().to_string(), flag.display().to_string());
    assert_eq!(run(&["--hooks-dir", &s, &bb, "true"]), ["site-always"]);
    assert_eq!(
        run(&["--hooks-dir", &s, "--hooks-dir", &f, &bb, "true"]),
        ["flag-always"]
    );
    // `create` takes the flag too.
    let _ = std::fs::remove_file(&log);
    sb.den(&["create", "--name", "made", "--hooks-dir", &f, &bb, "true"])
        .ok();
    sb.den(&["start", "-a", "made"]).ok();
    assert_eq!(read(&log).trim(), "flag-always");
}

/// A failing hook stops the container with the hook's stderr in the one error line; nothing is
/// left behind. So does one that runs past its timeout.
#[test]
fn failing_and_timing_out_hooks_stop_the_container() {
    let sb = Sandbox::new();
    let bb = busybox();
    let dir = user_hooks(&sb);
    sb.den(&["pull", &bb]).ok();
    for stage in ["prestart", "createRuntime", "createContainer", "poststart"] {
        let file = dir.join("50-fail.json");
        let script = format!("echo 'no GPU for {stage}' >&2; exit 3");
        std::fs::write(
            &file,
            definition(&script, r#"{"always": true}"#, &[stage], None),
        )
        .unwrap();
        let before = sb.store_listing();
        sb.den(&["run", "--rm", &bb, "echo", "ran"]).fails_with(
            125,
            &format!("{stage} hook /bin/sh failed: exit status 3: no GPU for {stage}"),
        );
        assert_eq!(sb.den(&["ps", "-aq"]).ok(), "", "{stage}");
        assert_eq!(sb.store_listing(), before, "{stage}");
        std::fs::remove_file(&file).unwrap();
    }
    std::fs::write(
        dir.join("60-slow.json"),
        definition(
            "sleep 60",
            r#"{"always": true}"#,
            &["createRuntime"],
            Some(1),
        ),
    )
    .unwrap();
    let start = std::time::Instant::now();
    let out = sb.den(&["run", "--rm", &bb, "true"]);
    out.fails_with(125, "createRuntime hook /bin/sh failed: timed out after 1s");
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(sb.den(&["ps", "-aq"]).ok(), "");
    // A failing poststop hook is a warning: the container has ended already.
    std::fs::remove_file(dir.join("60-slow.json")).unwrap();
    std::fs::write(
        dir.join("70-post.json"),
        definition("exit 1", r#"{"always": true}"#, &["poststop"], None),
    )
    .unwrap();
    assert_eq!(sb.den(&["run", "--rm", &bb, "echo", "ran"]).ok(), "ran\n");
}

/// A malformed definition is one line naming the file and line; nothing is pulled or created.
#[test]
fn a_malformed_definition_names_its_file() {
    let sb = Sandbox::new();
    let bb = busybox();
    let dir = user_hooks(&sb);
    sb.den(&["pull", &bb]).ok();
    std::fs::write(
        dir.join("bad.json"),
        "{\n  \"version\": \"1.0.0\",\n  \"hook\": {\"path\": \"/bin/true\"},\n  \"stages\": [\"prestart\"]\n  \"when\": {}\n}\n",
    )
    .unwrap();
    let before = sb.store_listing();
    sb.den(&["run", "--rm", &bb, "true"])
        .fails_with(125, "bad.json, line 5");
    std::fs::write(
        dir.join("bad.json"),
        definition("true", r#"{"always": true}"#, &["prestop"], None),
    )
    .unwrap();
    sb.den(&["run", "--rm", &bb, "true"])
        .fails_with(125, "unknown stage \"prestop\"");
    assert_eq!(sb.store_listing(), before);
}

/// hooks/bind-libs.sh binds what the site file names, read-only, into containers whose
/// annotation asks for it, and refuses a destination through an image's symlink.
#[test]
fn the_shipped_bind_libs_hook() {
    let sb = Sandbox::new();
    let bb = busybox();
    let hook = sb.dir.join("bind-libs.sh");
    std::fs::write(&hook, include_str!("../hooks/bind-libs.sh")).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let libs = sb.dir.join("site-libs");
    std::fs::create_dir_all(libs.join("lib")).unwrap();
    std::fs::write(libs.join("lib/libmpi.so.40"), "fake mpi\n").unwrap();
    std::fs::write(libs.join("mpirun"), "fake mpirun\n").unwrap();
    let conf = sb.dir.join("bind-libs.conf");
    std::fs::write(
        &conf,
        format!(
            "# the site's MPI\n{0}/lib /opt/mpi/lib\n\n{0}/mpirun /usr/local/bin/mpirun\n/nonexistent/lib\n",
            libs.display()
        ),
    )
    .unwrap();
    let mut def: serde_json::Value =
        serde_json::from_str(include_str!("../hooks/bind-libs.json")).unwrap();
    def["hook"]["path"] = serde_json::json!(hook);
    def["hook"]["env"][1] = serde_json::json!(format!("BIND_LIBS_CONF={}", conf.display()));
    std::fs::write(user_hooks(&sb).join("bind-libs.json"), def.to_string()).unwrap();
    let out = sb
        .den(&[
            "run", "--rm", "--annotation", "den.bind-libs=true", &bb, "sh", "-c",
            "cat /opt/mpi/lib/libmpi.so.40 /usr/local/bin/mpirun; touch /opt/mpi/lib/x 2>&1 || echo read-only",
        ])
        .ok();
    assert_eq!(
        out,
        "fake mpi\nfake mpirun\ntouch: /opt/mpi/lib/x: Read-only file system\nread-only\n"
    );
    // Without the annotation, nothing is bound.
    let out = sb.den(&["run", "--rm", &bb, "ls", "/opt"]);
    assert_ne!(out.code, 0, "{}", out.out());
    // An image whose /opt is a symlink to the host's /etc is refused, not followed.
    let ctx = crate::sandbox::context(
        &sb,
        "linked",
        &format!("FROM {bb}\nRUN ln -s /etc /opt\n"),
        &[],
    );
    crate::sandbox::build(&sb, &ctx, &["-t", "linked"]).ok();
    sb.den(&[
        "run",
        "--rm",
        "--annotation",
        "den.bind-libs=1",
        "linked",
        "true",
    ])
    .fails_with(125, "goes through a symlink in the image");
}
