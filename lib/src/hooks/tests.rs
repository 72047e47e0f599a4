use super::*;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

fn def(when: &str, stages: &str) -> String {
    format!(
        r#"{{"version": "1.0.0", "hook": {{"path": "/bin/sh", "args": ["sh", "-c", "true"], "timeout": 3}},
 "when": {when}, "stages": {stages}}}"#
    )
}

fn target<'a>(a: &'a BTreeMap<String, String>, command: &'a str, binds: bool) -> Target<'a> {
    Target {
        annotations: a,
        command,
        has_bind_mounts: binds,
    }
}

#[test]
fn conditions_all_must_hold() {
    let d = tempfile::tempdir().expect("tmp");
    write(
        d.path(),
        "a.json",
        &def(r#"{"always": true}"#, r#"["prestart", "poststop"]"#),
    );
    write(
        d.path(),
        "b.json",
        &def(
            r#"{"annotations": {"^org\\.mpi$": "^yes$"}, "commands": ["/mpirun$"]}"#,
            r#"["createContainer"]"#,
        ),
    );
    write(
        d.path(),
        "c.json",
        &def(r#"{"hasBindMounts": true}"#, r#"["poststart"]"#),
    );
    write(
        d.path(),
        "d.json",
        &def(r#"{"always": false}"#, r#"["prestart"]"#),
    );
    write(d.path(), "not-a-hook.txt", "junk");
    let defs = load(&[d.path().into()]).expect("load");
    assert_eq!(defs.0.len(), 4);
    let none = BTreeMap::new();
    let h = defs.matching(&target(&none, "/bin/sh", false));
    assert_eq!(h.prestart.len(), 1);
    assert_eq!(h.poststop.len(), 1);
    assert!(h.create_container.is_empty() && h.poststart.is_empty());
    let mpi: BTreeMap<String, String> = [("org.mpi".into(), "yes".into())].into();
    let h = defs.matching(&target(&mpi, "/usr/bin/sh", true));
    assert!(h.create_container.is_empty(), "the command must match too");
    let h = defs.matching(&target(&mpi, "/usr/bin/mpirun", true));
    assert_eq!(h.create_container.len(), 1);
    assert_eq!(h.poststart.len(), 1);
    assert_eq!(h.create_container[0].args, ["sh", "-c", "true"]);
    assert_eq!(h.create_container[0].timeout, Some(3));
}

#[test]
fn later_directories_mask_same_named_files_and_order_is_by_name() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    write(
        a.path(),
        "10-x.json",
        &def(r#"{"always": true}"#, r#"["prestart"]"#),
    );
    write(
        a.path(),
        "20-y.json",
        &def(r#"{"always": true}"#, r#"["prestart"]"#),
    );
    let masked = def(r#"{"always": true}"#, r#"["poststop"]"#);
    write(b.path(), "10-x.json", &masked);
    write(
        b.path(),
        "05-z.json",
        &def(r#"{"always": true}"#, r#"["prestart"]"#),
    );
    let defs = load(&[a.path().into(), b.path().into(), "/nonexistent".into()]).expect("load");
    let names: Vec<&str> = defs.0.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["05-z.json", "10-x.json", "20-y.json"]);
    let none = BTreeMap::new();
    let h = defs.matching(&target(&none, "x", false));
    assert_eq!(h.prestart.len(), 2);
    assert_eq!(h.poststop.len(), 1);
}

#[test]
fn malformed_files_name_the_file_and_line() {
    let cases = [
        (
            "{\n\"version\": \"1.0.0\",\n\"hook\": {\"path\": \"/bin/sh\"},\n\"when\": {\"always\": true},\n\"stages\": [\"prestart\"],,\n}",
            5,
        ),
        (
            &def(r#"{"always": true}"#, r#"["prestart", "later"]"#) as &str,
            2,
        ),
        (&def(r#"{}"#, r#"["prestart"]"#), 2),
        (&def(r#"{"commands": ["("]}"#, r#"["prestart"]"#), 2),
        (&def(r#"{"annotation": {"a": "b"}}"#, r#"["prestart"]"#), 2),
        (&def(r#"{"always": true}"#, "[]"), 2),
    ];
    for (text, line) in cases {
        let d = tempfile::tempdir().expect("tmp");
        write(d.path(), "bad.json", text);
        match load(&[d.path().into()]) {
            Err(HookError::Invalid { path, line: l, .. }) => {
                assert!(path.ends_with("bad.json"));
                assert_eq!(l, line, "{text}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    let d = tempfile::tempdir().expect("tmp");
    write(
        d.path(),
        "rel.json",
        r#"{"version": "1.0.0", "hook": {"path": "sh"}, "when": {"always": true}, "stages": ["prestart"]}"#,
    );
    let e = load(&[d.path().into()]).expect_err("relative path");
    assert!(e.to_string().contains("not absolute"), "{e}");
    write(d.path(), "rel.json", &" ".repeat(70_000));
    assert!(matches!(
        load(&[d.path().into()]),
        Err(HookError::TooLarge { .. })
    ));
}

#[test]
fn a_hook_gets_the_state_and_its_failures_carry_stderr() {
    let d = tempfile::tempdir().expect("tmp");
    let out = d.path().join("state");
    let hook = |script: String, timeout| Hook {
        path: "/bin/sh".into(),
        args: vec!["sh".into(), "-c".into(), script],
        env: vec!["MARK=yes".into()],
        timeout,
    };
    let ok = hook(format!("cat > {}; echo $MARK >> {0}", out.display()), None);
    run(&ok, br#"{"id":"x"}"#).expect("runs");
    assert_eq!(
        std::fs::read_to_string(&out).expect("mark"),
        "{\"id\":\"x\"}yes\n"
    );
    let failing = hook("echo first >&2; echo 'no GPU' >&2; exit 3".into(), None);
    let e = run(&failing, b"{}").expect_err("fails");
    assert_eq!(e.to_string(), "exit status 3: first; no GPU");
    let slow = hook("sleep 30 & sleep 30".into(), Some(1));
    let start = std::time::Instant::now();
    let e = run(&slow, b"{}").expect_err("times out");
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(e.to_string(), "timed out after 1s");
}
