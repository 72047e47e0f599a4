use std::collections::BTreeMap;

use super::*;
use crate::compose::ProjectOptions;
use crate::compose::load::load;

/// The project of `yaml` in a directory `demo`, with `env` as the process environment.
pub(crate) fn project(yaml: &str, env: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    let p = project_in(&dir, yaml, env);
    (dir, p)
}

/// The project of `yaml` in `dir`/demo.
fn project_in(dir: &tempfile::TempDir, yaml: &str, env: &[(&str, &str)]) -> Project {
    let proj = dir.path().join("demo");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(proj.join("compose.yaml"), yaml).unwrap();
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load(&ProjectOptions::default(), &env, &proj).unwrap()
}

const APP: &str = "
services:
  web:
    build: {context: ./web, args: {V: '1'}}
    ports: ['8080:80']
    depends_on:
      db: {condition: service_healthy}
    networks: [default, back]
    init: true
  db:
    image: busybox
    command: httpd -f -p 5432
    volumes: [data:/data, ./conf:/etc/conf:ro, /cache]
    healthcheck:
      test: [CMD, wget, -q, 'http://127.0.0.1:5432/']
      interval: 1s
      retries: 3
    stop_grace_period: 1m30s
  worker:
    image: busybox
    depends_on: [web]
    deploy: {replicas: 2}
    profiles: [jobs]
volumes:
  data: {}
networks:
  back: {}
";

#[test]
fn names_and_labels_are_docker_composes() {
    let (_d, p) = project(APP, &[]);
    assert_eq!(p.name, "demo");
    assert_eq!(container_name(&p, "web", 1), "demo-web-1");
    assert_eq!(image(&p, "web"), "demo-web");
    assert_eq!(image(&p, "db"), "busybox");
    let labels: BTreeMap<String, String> = labels(&p, "db", 1, false).into_iter().collect();
    assert_eq!(labels[PROJECT], "demo");
    assert_eq!(labels[SERVICE], "db");
    assert_eq!(labels[NUMBER], "1");
    assert_eq!(labels[ONEOFF], "False");
    assert_eq!(labels[HASH].len(), 64);
    assert!(labels[CONFIG_FILES].ends_with("demo/compose.yaml"));
}

#[test]
fn the_config_hash_follows_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let p = project_in(&dir, APP, &[]);
    let q = project_in(&dir, &APP.replace("retries: 3", "retries: 4"), &[]);
    assert_eq!(
        config_hash(&p.services["web"]),
        config_hash(&q.services["web"])
    );
    assert_ne!(
        config_hash(&p.services["db"]),
        config_hash(&q.services["db"])
    );
}

#[test]
fn dependencies_come_first_and_profiles_hide_services() {
    let (_d, p) = project(APP, &[]);
    let all = selection(&p, &[], false).unwrap();
    assert_eq!(all.iter().collect::<Vec<_>>(), ["db", "web"]);
    let named = selection(&p, &["worker".to_string()], false).unwrap();
    assert_eq!(order(&p, &named).unwrap(), ["db", "web", "worker"]);
    let alone = selection(&p, &["worker".to_string()], true).unwrap();
    assert_eq!(alone.len(), 1);
    let (_e, q) = project(APP, &[("COMPOSE_PROFILES", "jobs")]);
    assert!(q.active.contains("worker"));
    assert!(matches!(
        selection(&p, &["nope".to_string()], false),
        Err(ComposeError::NoSuchService(_))
    ));
}

#[test]
fn a_dependency_cycle_is_refused() {
    let (_d, p) = project(
        "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n",
        &[],
    );
    let all = selection(&p, &[], false).unwrap();
    assert!(matches!(order(&p, &all), Err(ComposeError::Cycle(_))));
}

#[test]
fn a_service_becomes_dens_flags() {
    let (d, p) = project(APP, &[]);
    let c = container(&p, "db", 1, &Make::default());
    let root = d.path().join("demo");
    let args = c.args.join(" ");
    assert_eq!(c.name, "demo-db-1");
    for want in [
        "--network demo_default --network-alias db",
        "-v demo_data:/data",
        &format!("-v {}/conf:/etc/conf:ro", root.display()),
        "-v /cache",
        "--health-cmd=wget -q http://127.0.0.1:5432/",
        "--health-interval=1s",
        "--health-retries=3",
        "--stop-timeout=90",
        "busybox httpd -f -p 5432",
    ] {
        assert!(args.contains(want), "{want:?} not in {args}");
    }
    assert!(c.connect.is_empty());
    let web = container(&p, "web", 1, &Make::default());
    assert!(web.args.join(" ").contains("-p 8080:80"));
    assert!(web.args.contains(&"--init".to_string()));
    assert_eq!(
        web.connect,
        [[
            "network",
            "connect",
            "--alias",
            "web",
            "demo_back",
            "demo-web-1"
        ]]
    );
    let b = build(&p, "web", false).unwrap();
    assert_eq!(b[..3], ["build", "-t", "demo-web"]);
    assert!(b.join(" ").contains("--build-arg V=1"));
}

#[test]
fn a_one_off_has_no_ports_and_its_own_command() {
    let (_d, p) = project(APP, &[]);
    let make = Make {
        oneoff: Some("demo-web-run-1a2b".into()),
        command: Some(vec!["echo".into(), "hi".into()]),
        ..Default::default()
    };
    let c = container(&p, "web", 1, &make);
    let args = c.args.join(" ");
    assert!(!args.contains("-p 8080:80"), "{args}");
    assert!(args.contains("com.docker.compose.oneoff=True"));
    assert!(args.ends_with("demo-web echo hi"), "{args}");
}

#[test]
fn entrypoint_lists_split_over_flag_and_arguments() {
    let (_d, p) = project(
        "services:\n  a:\n    image: x\n    entrypoint: [sh, -c]\n    command: ['echo hi']\n",
        &[],
    );
    let args = container(&p, "a", 1, &Make::default()).args;
    let tail = &args[args.len() - 3..];
    assert_eq!(tail, ["x", "-c", "echo hi"]);
    assert!(args.contains(&"--entrypoint=sh".to_string()));
}

#[test]
fn network_mode_replaces_the_project_network() {
    let (_d, p) = project(
        "services:\n  a: {image: x, network_mode: none}\n  b: {image: x, network_mode: 'service:a'}\n",
        &[],
    );
    let a = container(&p, "a", 1, &Make::default()).args.join(" ");
    assert!(
        a.contains("--network none") && !a.contains("--network-alias"),
        "{a}"
    );
    let b = container(&p, "b", 1, &Make::default()).args.join(" ");
    assert!(b.contains("--network container:demo-a-1"), "{b}");
    assert!(p.services["a"].networks.is_empty());
}
