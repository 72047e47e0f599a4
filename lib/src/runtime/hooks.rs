//! The OCI spec's hooks in den's flow: each stage runs exactly once, with the OCI state on
//! stdin and the hook's timeout, and a failing hook's stderr reaches the one-line error.
//!
//! The spec is the one road: den's hooks (from `hooks.d`, in the container's record) are
//! appended to whatever the spec already has (a CDI device's hooks), then [`prepare`] arranges
//! them for libcontainer, which runs `prestart` and `createRuntime` in den's process (den's
//! user and mount namespaces, as the user), `createContainer` in the container's namespaces
//! before pivot_root, `startContainer` inside the container just before the command, and
//! `poststart` in the process that starts the container. libcontainer inherits a hook's
//! stderr and reports only "exit code N", and its timeout leaves the hook's children running;
//! so every hook whose path resolves on the host (all but `startContainer`, whose path is the
//! container's) runs through `den-run __hook` ([`wrapper_main`]): it runs the hook
//! ([`crate::hooks::run`]), fills in the init's pid where libcontainer's state lacks it
//! (`createContainer`'s), keeps the timeout by killing the hook's process group, and on failure
//! writes the error to `hooks.err` in the bundle, where [`failure`] finds it for the error den
//! reports.
//!
//! den skips libcontainer's delete when it has hidden the cgroups, and libcontainer would run
//! `poststop` only there: [`prepare`] moves the `poststop` hooks out of the spec into
//! `poststop.json` in the bundle, and [`poststop`] runs them after the container is deleted,
//! whichever way it was. A failing `poststop` hook is a warning (the OCI spec's rule): the
//! container is gone already.
//!
//! `startContainer` hooks run inside the container (their path is the container's); a failing
//! one ends the container's init before the command runs, and its stderr is the container's.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::RuntimeError;
use crate::hooks::{Hook, Hooks, Stage};

/// The bundle's file where a wrapped hook's failure is left for den.
const ERROR_FILE: &str = "hooks.err";
/// The bundle's file with the `poststop` hooks and the state they get.
const POSTSTOP_FILE: &str = "poststop.json";
/// The most of the state JSON the wrapper reads from its stdin.
const MAX_STATE: u64 = 1 << 20;

/// Append `mine` to the spec's hooks, wrap the host-side ones in `wrapper` (den-run, where
/// [`wrapper_path`] found it), and move `poststop` into the bundle's `poststop.json`.
pub fn prepare(
    spec: &mut Value,
    mine: &Hooks,
    bundle: &Path,
    wrapper: Option<&Path>,
) -> Result<(), RuntimeError> {
    let mut all: Hooks = spec
        .get("hooks")
        .and_then(|h| serde_json::from_value(h.clone()).ok())
        .unwrap_or_default();
    for s in Stage::ALL {
        all.stage_mut(s).extend(mine.stage(s).iter().cloned());
    }
    let poststop = std::mem::take(&mut all.poststop);
    write_poststop(bundle, spec, &poststop)?;
    if all.is_empty() {
        if let Some(o) = spec.as_object_mut() {
            o.remove("hooks");
        }
        return Ok(());
    }
    let wrapper = wrapper.ok_or_else(|| RuntimeError::Io {
        path: "den-run".into(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "den-run, which runs the container's hooks, is not beside den nor on PATH",
        ),
    })?;
    for s in Stage::ALL {
        if s == Stage::StartContainer {
            continue;
        }
        let wrapped = all.stage(s).iter().map(|h| wrap(s, h, wrapper)).collect();
        *all.stage_mut(s) = wrapped;
    }
    spec["hooks"] = serde_json::to_value(&all).map_err(|e| RuntimeError::Io {
        path: bundle.join("config.json"),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(())
}

/// Where den-run is, which runs the hooks: beside this program, else on PATH.
pub fn wrapper_path() -> Option<PathBuf> {
    crate::config::tool_path("den-run")
}

/// `hook` run by `den-run __hook STAGE TIMEOUT PATH ARGS...`, with the hook's environment.
fn wrap(stage: Stage, hook: &Hook, wrapper: &Path) -> Hook {
    let mut args = vec![
        "den-run".to_string(),
        "__hook".into(),
        stage.name().into(),
        hook.timeout.map_or("-".into(), |t| t.to_string()),
        hook.path.to_string_lossy().into_owned(),
    ];
    args.extend(hook.args.iter().cloned());
    Hook {
        path: wrapper.to_path_buf(),
        args,
        env: hook.env.clone(),
        timeout: None,
    }
}

fn write_poststop(bundle: &Path, spec: &Value, hooks: &[Hook]) -> Result<(), RuntimeError> {
    let path = bundle.join(POSTSTOP_FILE);
    if hooks.is_empty() {
        let _ = std::fs::remove_file(&path);
        return Ok(());
    }
    let body = json!({
        "hooks": hooks,
        "annotations": spec.get("annotations").cloned().unwrap_or(json!({})),
    });
    std::fs::write(&path, body.to_string()).map_err(|source| RuntimeError::Io { path, source })
}

/// `den-run __hook STAGE TIMEOUT PATH [ARG0 ARGS...]`: run one hook for libcontainer (see the
/// module doc); its exit status is 0 or 1.
pub fn wrapper_main(args: &[String]) -> i32 {
    let [stage, timeout, path, rest @ ..] = args else {
        return 1;
    };
    let hook = Hook {
        path: PathBuf::from(path),
        args: rest.to_vec(),
        env: std::env::vars_os()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect(),
        timeout: timeout.parse().ok(),
    };
    let mut input = Vec::new();
    let _ = std::io::Read::read_to_end(
        &mut std::io::Read::take(std::io::stdin(), MAX_STATE),
        &mut input,
    );
    let mut state: Value = serde_json::from_slice(&input).unwrap_or(json!({}));
    if state.get("pid").and_then(Value::as_i64).unwrap_or(0) == 0
        && let Some(pid) = parent_pid()
    {
        // createContainer's state has no pid: the hook's parent is the container's init.
        state["pid"] = json!(pid);
    }
    let bundle = state
        .get("bundle")
        .and_then(Value::as_str)
        .map(PathBuf::from);
    match crate::hooks::run(&hook, state.to_string().as_bytes()) {
        Ok(()) => 0,
        Err(failure) => {
            if let Some(b) = bundle {
                let record = json!({"stage": stage, "path": path, "failure": failure.to_string()});
                let _ = std::fs::write(b.join(ERROR_FILE), record.to_string());
            }
            1
        }
    }
}

/// This process's parent, as the /proc it sees numbers it (the runtime's pid namespace: the
/// container's own /proc is not mounted over the host's before pivot_root).
fn parent_pid() -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // pid (comm) state ppid ...: comm may hold spaces, so read after its closing paren.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Forget a failure an earlier start left in `bundle`.
pub fn clear_failure(bundle: &Path) {
    let _ = std::fs::remove_file(bundle.join(ERROR_FILE));
}

/// The hook failure a wrapped hook left in `bundle`, as den reports it.
pub fn failure(bundle: &Path) -> Option<RuntimeError> {
    let text = std::fs::read_to_string(bundle.join(ERROR_FILE)).ok()?;
    clear_failure(bundle);
    let v: Value = serde_json::from_str(&text).ok()?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Some(RuntimeError::Hook {
        stage: field("stage"),
        path: field("path").into(),
        failure: field("failure"),
    })
}

/// Run the `poststop` hooks [`prepare`] left in `bundle` for the container `id` whose init was
/// `pid`; a failure is a warning.
pub fn poststop(bundle: &Path, id: &str, pid: i32) {
    let Ok(text) = std::fs::read_to_string(bundle.join(POSTSTOP_FILE)) else {
        return;
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return;
    };
    let hooks: Vec<Hook> = v
        .get("hooks")
        .and_then(|h| serde_json::from_value(h.clone()).ok())
        .unwrap_or_default();
    let state = json!({
        "ociVersion": "1.0.2",
        "id": id,
        "status": "stopped",
        "pid": pid,
        "bundle": bundle,
        "annotations": v.get("annotations").cloned().unwrap_or(json!({})),
    })
    .to_string();
    for h in &hooks {
        if let Err(e) = crate::hooks::run(h, state.as_bytes()) {
            tracing::warn!("poststop hook {} failed: {e}", h.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(path: &str) -> Hook {
        Hook {
            path: path.into(),
            args: vec!["x".into(), "-y".into()],
            env: vec!["A=1".into()],
            timeout: Some(4),
        }
    }

    #[test]
    fn hooks_are_wrapped_appended_and_poststop_moved_out() {
        let d = tempfile::tempdir().expect("tmp");
        let mut spec = json!({
            "annotations": {"a": "b"},
            "hooks": {"createContainer": [{"path": "/cdi/hook"}]}
        });
        let mine = Hooks {
            create_container: vec![hook("/mine")],
            start_container: vec![hook("/in/container")],
            poststop: vec![hook("/after")],
            ..Hooks::default()
        };
        prepare(&mut spec, &mine, d.path(), Some(Path::new("/bin/den-run"))).expect("prepare");
        let cc = &spec["hooks"]["createContainer"];
        assert_eq!(cc.as_array().map(Vec::len), Some(2));
        assert_eq!(
            cc[0]["args"],
            json!(["den-run", "__hook", "createContainer", "-", "/cdi/hook"])
        );
        assert_eq!(
            cc[1]["args"],
            json!([
                "den-run",
                "__hook",
                "createContainer",
                "4",
                "/mine",
                "x",
                "-y"
            ])
        );
        assert_eq!(cc[1]["env"], json!(["A=1"]));
        assert!(
            cc[1].get("timeout").is_none(),
            "the wrapper keeps the timeout"
        );
        assert_eq!(spec["hooks"]["startContainer"][0]["path"], "/in/container");
        assert!(spec["hooks"].get("poststop").is_none());
        let kept: Value = serde_json::from_str(
            &std::fs::read_to_string(d.path().join(POSTSTOP_FILE)).expect("poststop.json"),
        )
        .expect("json");
        assert_eq!(kept["hooks"][0]["path"], "/after");
        assert_eq!(kept["annotations"], json!({"a": "b"}));

        let mut plain = json!({});
        prepare(&mut plain, &Hooks::default(), d.path(), None).expect("none");
        assert_eq!(plain, json!({}));
        assert!(!d.path().join(POSTSTOP_FILE).exists());
    }

    #[test]
    fn a_failure_left_in_the_bundle_is_read_once() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::write(
            d.path().join(ERROR_FILE),
            r#"{"stage":"createRuntime","path":"/h","failure":"exit status 2: no"}"#,
        )
        .expect("write");
        let e = failure(d.path()).expect("failure");
        assert_eq!(
            e.to_string(),
            "createRuntime hook /h failed: exit status 2: no"
        );
        assert!(failure(d.path()).is_none());
    }
}
