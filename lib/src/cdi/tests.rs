use super::*;

fn spec(kind: &str, devices: &[(&str, &str)], top_env: &str) -> String {
    let mut s =
        format!("cdiVersion: 0.6.0\nkind: {kind}\ncontainerEdits:\n  env: [{top_env}]\ndevices:\n");
    for (name, node) in devices {
        s.push_str(&format!(
            "  - name: {name}\n    containerEdits:\n      env: [DEV_{name}=1]\n      deviceNodes:\n        - path: /dev/x{name}\n          hostPath: {node}\n"
        ));
    }
    s
}

fn dirs(t: &tempfile::TempDir) -> Vec<PathBuf> {
    let d: Vec<PathBuf> = ["site", "user"].iter().map(|n| t.path().join(n)).collect();
    for x in &d {
        std::fs::create_dir_all(x).unwrap();
    }
    d
}

#[test]
fn devices_resolve_with_the_specs_edits_once() {
    let t = tempfile::tempdir().unwrap();
    let d = dirs(&t);
    let text = spec(
        "vendor.test/dev",
        &[("a", "/dev/null"), ("b", "/dev/zero")],
        "TOP=1",
    );
    std::fs::write(d[0].join("t.yaml"), text).unwrap();
    let r = Registry::load(d).unwrap();
    assert_eq!(r.device_names(), ["vendor.test/dev=a", "vendor.test/dev=b"]);
    let e = r.resolve(&["vendor.test/dev=b".into()]).unwrap();
    assert_eq!(e.env, ["DEV_b=1", "TOP=1"]);
    assert_eq!(
        node_binds(&e),
        [(PathBuf::from("/dev/zero"), "/dev/xb".to_string())]
    );
    let e = r.resolve(&["vendor.test/dev=all".into()]).unwrap();
    assert_eq!(e.env, ["DEV_a=1", "TOP=1", "DEV_b=1"]);
    assert_eq!(e.device_nodes.len(), 2);
    // Asking twice adds nothing.
    let twice = r
        .resolve(&["vendor.test/dev=a".into(), "vendor.test/dev=all".into()])
        .unwrap();
    assert_eq!(twice.device_nodes.len(), 2);
}

#[test]
fn later_directories_override_and_one_directory_conflicts() {
    let t = tempfile::tempdir().unwrap();
    let d = dirs(&t);
    std::fs::write(
        d[0].join("a.yaml"),
        spec("v.t/d", &[("a", "/dev/null")], "FROM=site"),
    )
    .unwrap();
    std::fs::write(
        d[1].join("a.json"),
        serde_json::json!({
            "cdiVersion": "0.8.0", "kind": "v.t/d",
            "devices": [{"name": "a", "containerEdits": {"env": ["FROM=user"]}}]
        })
        .to_string(),
    )
    .unwrap();
    let r = Registry::load(d.clone()).unwrap();
    assert_eq!(r.resolve(&["v.t/d=a".into()]).unwrap().env, ["FROM=user"]);
    std::fs::write(
        d[1].join("b.yaml"),
        spec("v.t/d", &[("a", "/dev/null")], "X=1"),
    )
    .unwrap();
    let e = Registry::load(d)
        .unwrap()
        .resolve(&["v.t/d=a".into()])
        .unwrap_err();
    assert!(matches!(e, DeviceError::Conflict { .. }), "{e}");
}

#[test]
fn unknown_devices_name_the_specs_read() {
    let t = tempfile::tempdir().unwrap();
    let d = dirs(&t);
    let r = Registry::load(d.clone()).unwrap();
    let e = r.resolve(&["nvidia.com/gpu=all".into()]).unwrap_err();
    assert!(e.to_string().contains("none, in"), "{e}");
    assert!(e.hint().unwrap().contains("nvidia-ctk cdi generate"));
    std::fs::write(
        d[1].join("t.yaml"),
        spec("v.t/d", &[("a", "/dev/null")], "X=1"),
    )
    .unwrap();
    let r = Registry::load(d.clone()).unwrap();
    let e = r.resolve(&["v.t/d=zz".into()]).unwrap_err();
    assert!(e.to_string().contains("t.yaml"), "{e}");
    assert!(r.resolve(&["v.t/other=all".into()]).is_err());
    assert!(matches!(
        r.resolve(&["nokind=a".into()]),
        Err(DeviceError::BadName(_))
    ));
    // A node the host lacks.
    std::fs::write(
        d[1].join("t.yaml"),
        spec("v.t/d", &[("a", "/dev/den-no-such")], "X=1"),
    )
    .unwrap();
    let e = Registry::load(d)
        .unwrap()
        .resolve(&["v.t/d=a".into()])
        .unwrap_err();
    assert!(matches!(e, DeviceError::MissingNode { .. }), "{e}");
}

#[test]
fn spec_reading_is_capped() {
    let t = tempfile::tempdir().unwrap();
    let d = dirs(&t);
    let big = format!("# {}\n", "x".repeat(MAX_SPEC_BYTES as usize));
    std::fs::write(d[0].join("big.yaml"), big).unwrap();
    std::fs::write(d[0].join("ignored.txt"), "not a spec").unwrap();
    let e = Registry::load(d).unwrap_err();
    assert!(matches!(e, DeviceError::TooLarge { .. }), "{e}");
}

#[test]
fn spec_dirs_follow_xdg() {
    struct E(Vec<(&'static str, &'static str)>);
    impl crate::config::Env for E {
        fn var(&self, k: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
        fn uid(&self) -> u32 {
            1000
        }
    }
    let d = spec_dirs(&E(vec![("HOME", "/h")]));
    assert_eq!(d[2], Path::new("/h/.config/cdi"));
    let d = spec_dirs(&E(vec![("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")]));
    assert_eq!(
        d,
        [
            Path::new("/etc/cdi"),
            Path::new("/var/run/cdi"),
            Path::new("/x/cdi")
        ]
    );
}

#[test]
fn device_flags_parse_like_dockers() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let r = DeviceRequest::parse(
        &s(&[
            "/dev/null",
            "/dev/null:/dev/mynull:r",
            "/dev/zero:rw",
            "v.t/d=a",
        ]),
        Some("2"),
        &s(&["keep-groups"]),
    )
    .unwrap();
    let h: Vec<(&str, &str)> = r
        .host
        .iter()
        .map(|d| (d.path_in_container.as_str(), d.cgroup_permissions.as_str()))
        .collect();
    assert_eq!(
        h,
        [
            ("/dev/null", "rwm"),
            ("/dev/mynull", "r"),
            ("/dev/zero", "rw")
        ]
    );
    assert_eq!(r.cdi, ["v.t/d=a", "nvidia.com/gpu=0", "nvidia.com/gpu=1"]);
    assert!(r.keep_groups);
    for bad in ["dev/null", "/dev/null:/a:/b:c", "/dev/null:rel"] {
        assert!(
            matches!(
                DeviceRequest::parse(&s(&[bad]), None, &[]),
                Err(DeviceError::BadDevice(_))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        DeviceRequest::parse(&s(&["/etc/passwd"]), None, &[]),
        Err(DeviceError::NotADevice { .. })
    ));
    assert!(matches!(
        DeviceRequest::parse(&[], None, &s(&["video"])),
        Err(DeviceError::BadGroupAdd(_))
    ));
}

#[test]
fn gpus_map_to_nvidia_cdi_names() {
    assert_eq!(gpu_names("all").unwrap(), ["nvidia.com/gpu=all"]);
    assert_eq!(gpu_names("count=all").unwrap(), ["nvidia.com/gpu=all"]);
    assert_eq!(gpu_names("1").unwrap(), ["nvidia.com/gpu=0"]);
    assert_eq!(
        gpu_names("\"device=0,GPU-abc\"").unwrap(),
        ["nvidia.com/gpu=0", "nvidia.com/gpu=GPU-abc"]
    );
    for bad in ["", "0", "x", "device=", "device=a b"] {
        assert!(gpu_names(bad).is_err(), "{bad}");
    }
}

#[test]
fn hooks_group_by_stage() {
    let h = |stage: &str, path: &str| spec::Hook {
        hook_name: stage.into(),
        path: path.into(),
        args: vec![],
        env: vec![],
        timeout: None,
    };
    let e = ContainerEdits {
        hooks: vec![
            h("prestart", "/a"),
            h("poststop", "/b"),
            h("prestart", "/c"),
        ],
        ..Default::default()
    };
    let by = hooks_by_stage(&e);
    assert_eq!(by["prestart"].len(), 2);
    assert_eq!(by["poststop"][0].path, "/b");
}

#[test]
fn the_shipped_nvidia_example_parses() {
    let text = include_str!("../../../docs/cdi/nvidia-example.yaml");
    let s = spec::parse(Path::new("nvidia-example.yaml"), text).unwrap();
    assert_eq!(s.kind, GPU_KIND);
    assert_eq!(s.devices[0].name, "0");
    assert_eq!(
        s.container_edits.mounts[0].container_path,
        "/usr/local/nvidia"
    );
}
