//! Flags on existing verbs that docker's and podman's users type: `start/stop/rm --all`,
//! `rm -t`, `ps --noheading/--sort/-s`, `images --sort`, `save -m`.

use crate::sandbox::{Sandbox, busybox};

fn ready() -> Sandbox {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    sb
}

/// A loop that ends on SIGTERM at once.
const SERVE: &str = "trap 'exit 0' TERM; while true; do sleep 0.1; done";

fn states(sb: &Sandbox) -> String {
    sb.den(&["ps", "-a", "--format", "{{.Names}}={{.State}}"])
        .ok()
        .lines()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn start_stop_rm_all() {
    let sb = ready();
    let bb = busybox();
    sb.den(&["create", "--name", "a", &bb, "sh", "-c", SERVE])
        .ok();
    sb.den(&["create", "--name", "b", &bb, "sh", "-c", SERVE])
        .ok();
    // `start --all` starts the stopped ones and names each, in creation order.
    assert_eq!(sb.den(&["start", "--all"]).ok(), "a\nb\n");
    assert_eq!(states(&sb), "a=running b=running");
    // `--all` and names together are a usage error.
    let both = sb.den(&["stop", "--all", "a"]);
    assert_eq!(both.code, 125, "{}", both.stderr);
    assert!(both.stderr.contains("--all"), "{}", both.stderr);
    assert_eq!(sb.den(&["stop", "--all", "-t", "2"]).ok(), "a\nb\n");
    assert_eq!(states(&sb), "a=exited b=exited");
    // Nothing running: `stop --all` does nothing, successfully.
    assert_eq!(sb.den(&["stop", "-a"]).ok(), "");
    sb.den(&["start", "b"]).ok();
    // Without -f a running container is refused (podman's rule), the stopped one goes.
    sb.den(&["rm", "--all"]).fails_with(1, "b");
    assert_eq!(states(&sb), "b=running");
    sb.den(&["run", "-d", "--name", "c", &bb, "sh", "-c", SERVE])
        .ok();
    // With -f every container goes, running ones too; -t gives them the stop signal first.
    let t0 = std::time::Instant::now();
    let out = sb.den(&["rm", "-a", "-f", "-t", "5"]).ok();
    assert_eq!(out, "b\nc\n");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "SIGTERM ended them"
    );
    assert_eq!(states(&sb), "");
    assert_eq!(sb.den(&["rm", "--all"]).ok(), "");
}

#[test]
fn ps_noheading_sort_and_sizes() {
    let sb = ready();
    let bb = busybox();
    sb.den(&["run", "--name", "small", &bb, "true"]).ok();
    sb.den(&[
        "run",
        "--name",
        "big",
        &bb,
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /f",
    ])
    .ok();
    sb.den(&["create", "--name", "mid", &bb, "true"]).ok();
    // docker's default order is newest first; podman's --sort orders by the key.
    let names = |args: &[&str]| {
        let mut a = vec!["ps", "-a", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        sb.den(&a)
            .ok()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(names(&[]), "mid big small");
    assert_eq!(names(&["--sort", "names"]), "big mid small");
    assert_eq!(names(&["--sort", "created"]), "mid big small");
    assert_eq!(names(&["--sort", "status"]), "mid big small");
    let by_size = names(&["--sort", "size"]);
    assert!(by_size.ends_with("big"), "{by_size}");
    let ids = sb.den(&["ps", "-a", "-q", "--no-trunc"]).ok();
    let mut ids: Vec<&str> = ids.lines().collect();
    ids.sort();
    let sorted = sb
        .den(&[
            "ps",
            "-a",
            "--sort",
            "id",
            "--format",
            "{{.ID}}",
            "--no-trunc",
        ])
        .ok();
    assert_eq!(sorted.lines().collect::<Vec<_>>(), ids);
    sb.den(&["ps", "--sort", "nope"])
        .code
        .eq(&125)
        .then_some(())
        .expect("a bad key is refused");

    // --noheading: the table's rows alone.
    let table = sb.den(&["ps", "-a"]).ok();
    assert!(table.starts_with("CONTAINER ID"), "{table}");
    let bare = sb.den(&["ps", "-a", "--noheading"]).ok();
    assert_eq!(bare, table.split_once('\n').unwrap().1);
    assert_eq!(bare.lines().count(), 3);

    // -s: docker's SIZE column, "<writable> (virtual <with the image>)".
    let sized = sb.den(&["ps", "-a", "-s"]).ok();
    let header = sized.lines().next().unwrap();
    assert!(header.trim_end().ends_with("SIZE"), "{sized}");
    let big = sized.lines().find(|l| l.contains("big")).unwrap();
    assert!(big.contains("(virtual "), "{big}");
    let size = sb
        .den(&[
            "ps",
            "-a",
            "-s",
            "--filter",
            "name=big",
            "--format",
            "{{.Size}}",
        ])
        .ok();
    let rw = size.split(' ').next().unwrap();
    assert!(
        rw.ends_with("kB") || rw.ends_with("MB"),
        "at least 300kB: {size}"
    );
    let kb: f64 = rw
        .trim_end_matches("kB")
        .trim_end_matches("MB")
        .parse()
        .unwrap();
    assert!(rw.ends_with("MB") || kb >= 300.0, "{size}");
}

#[test]
fn images_sort_and_save_multi_image_archive() {
    let sb = ready();
    let bb = busybox();
    sb.den(&["tag", &bb, "aaa:zz"]).ok();
    sb.den(&["tag", &bb, "zzz:aa"]).ok();
    let rows = |key: &str, field: &str| {
        let f = format!("{{{{.{field}}}}}");
        sb.den(&["images", "--sort", key, "--format", &f])
            .ok()
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let repos = rows("repository", "Repository");
    let mut sorted = repos.clone();
    sorted.sort();
    assert_eq!(repos, sorted);
    assert_eq!(repos.len(), 3);
    let tags = rows("tag", "Tag");
    assert_eq!(tags.first().map(String::as_str), Some("aa"));
    assert_eq!(tags.last().map(String::as_str), Some("zz"));
    assert_eq!(rows("size", "Tag").len(), 3);
    let bad = sb.den(&["images", "--sort", "names"]);
    assert_eq!(bad.code, 125, "{}", bad.stderr);

    // save -m (podman's): several images in one archive, which load brings back.
    let tar = sb.dir.join("multi.tar");
    let tar = tar.to_str().unwrap();
    sb.den(&["save", "-m", "-o", tar, "aaa:zz", "zzz:aa"]).ok();
    sb.den(&["rmi", "aaa:zz", "zzz:aa"]).ok();
    let loaded = sb.den(&["load", "-i", tar]).ok();
    assert!(
        loaded.contains("aaa:zz") && loaded.contains("zzz:aa"),
        "{loaded}"
    );
}

#[test]
fn run_pull_policies() {
    let sb = Sandbox::new();
    let bb = busybox();
    // never, with the image missing: docker's error (its daemon's words, the name as docker
    // shows it) and 125; nothing pulled.
    sb.den(&["run", "--rm", "--pull", "never", "busybox", "true"])
        .fails_with(125, "No such image: busybox:latest");
    sb.den(&["create", "--pull=never", &bb, "true"])
        .fails_with(125, "No such image: ");
    assert_eq!(sb.den(&["images", "-q"]).ok(), "");
    // missing (the default, podman's false): pulls once, then uses the store.
    let first = sb.den(&["run", "--rm", "--pull=false", &bb, "echo", "hi"]);
    assert_eq!(first.ok(), "hi\n");
    assert!(first.stderr.contains("Pulling from"), "{}", first.stderr);
    let again = sb.den(&["run", "--rm", "--pull", "missing", &bb, "true"]);
    again.ok();
    assert!(!again.stderr.contains("Pulling from"), "{}", again.stderr);
    // always (podman's true): pulls though the image is there; stdout stays the container's.
    for p in ["--pull=always", "--pull=true"] {
        let always = sb.den(&["run", "--rm", p, &bb, "echo", "hi"]);
        assert_eq!(always.ok(), "hi\n");
        assert!(
            always.stderr.contains("Image is up to date"),
            "{}",
            always.stderr
        );
    }
    sb.den(&["run", "--rm", "--pull", "never", &bb, "true"])
        .ok();
    sb.den(&["run", "--pull", "sometimes", &bb, "true"])
        .fails_with(125, "invalid pull policy");
}

#[test]
fn run_cidfile_and_replace() {
    let sb = ready();
    let bb = busybox();
    let cid = sb.dir.join("cid");
    let cid_s = cid.to_str().unwrap();
    let id = sb
        .den(&["create", "--cidfile", cid_s, "--name", "one", &bb, "true"])
        .ok();
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id.trim());
    // An existing file: docker's message, 125, and no container made.
    sb.den(&["run", "--cidfile", cid_s, &bb, "true"])
        .fails_with(125, "Container ID file found");
    assert_eq!(sb.den(&["ps", "-aq"]).ok().lines().count(), 1);
    std::fs::remove_file(&cid).unwrap();
    let out = sb
        .den(&["run", "--rm", "--cidfile", cid_s, &bb, "echo", "x"])
        .ok();
    assert_eq!(out, "x\n");
    assert_eq!(std::fs::read_to_string(&cid).unwrap().len(), 64);

    // --replace: the container of that name goes first, running or not.
    sb.den(&["run", "-d", "--name", "web", &bb, "sleep", "300"])
        .ok();
    sb.den(&["run", "-d", "--name", "web", &bb, "sleep", "300"])
        .fails_with(125, "web");
    let new = sb
        .den(&[
            "run",
            "-d",
            "--replace",
            "--name",
            "web",
            &bb,
            "sleep",
            "300",
        ])
        .ok();
    let listed = sb
        .den(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"])
        .ok();
    assert!(listed.contains(&format!("{} web", new.trim())), "{listed}");
    assert_eq!(listed.matches(" web").count(), 1, "{listed}");
    sb.den(&["create", "--replace", "--name", "one", &bb, "true"])
        .ok();
    sb.den(&["create", "--replace", "--name", "fresh", &bb, "true"])
        .ok();
    sb.den(&["rm", "-af"]).ok();
}

fn find_named(dir: &std::path::Path, parent: &str, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let ft = e.file_type().ok()?;
        if ft.is_file() && e.file_name() == name && p.parent()?.file_name()?.to_str()? == parent {
            return Some(p);
        }
        if ft.is_dir()
            && let Some(f) = find_named(&p, parent, name)
        {
            return Some(f);
        }
    }
    None
}

#[test]
fn run_annotation_env_host_and_refused_network_settings() {
    let mut sb = ready();
    let bb = busybox();
    // --annotation: in the OCI spec the runtime gets, and in inspect as docker and podman show.
    let id = sb
        .den(&[
            "run",
            "-d",
            "--annotation",
            "org.example.team=blue",
            "--annotation",
            "empty=",
            &bb,
            "sleep",
            "300",
        ])
        .ok();
    let id = id.trim();
    let host = sb
        .den(&["inspect", "-f", "{{json .HostConfig.Annotations}}", id])
        .ok();
    assert_eq!(host.trim(), r#"{"empty":"","org.example.team":"blue"}"#);
    let cfg = sb
        .den(&[
            "inspect",
            "-f",
            "{{index .Config.Annotations \"org.example.team\"}}",
            id,
        ])
        .ok();
    assert_eq!(cfg.trim(), "blue");
    let spec = find_named(&sb.root, id, "config.json").expect("the container's OCI spec");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(spec).unwrap()).unwrap();
    assert_eq!(spec["annotations"]["org.example.team"], "blue");
    sb.den(&["rm", "-f", id]).ok();
    sb.den(&["run", "--rm", "--annotation", "novalue", &bb, "true"])
        .fails_with(125, "invalid annotation");

    // --env-host: den's environment, under -e.
    sb.set_env("DEN_FLAGS_FROM_HOST", "host-value");
    let env = |args: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend_from_slice(&[&bb, "sh", "-c", "echo ${DEN_FLAGS_FROM_HOST:-unset}"]);
        sb.den(&a).ok()
    };
    assert_eq!(env(&[]), "unset\n");
    assert_eq!(env(&["--env-host"]), "host-value\n");
    assert_eq!(
        env(&["--env-host", "-e", "DEN_FLAGS_FROM_HOST=flag"]),
        "flag\n"
    );

    // --ip6 and --mac-address: one clear line, nothing created.
    sb.den(&["run", "--rm", "--ip6", "fd00::5", &bb, "true"])
        .fails_with(125, "--ip6 (of run) is not supported");
    sb.den(&["create", "--mac-address", "02:42:ac:11:00:02", &bb, "true"])
        .fails_with(125, "--mac-address (of create) is not supported")
        .stderr
        .contains("userspace network has no such setting")
        .then_some(())
        .expect("the hint says why and what instead");
    assert_eq!(sb.den(&["ps", "-aq"]).ok(), "");
}

#[test]
fn run_tz_and_uts() {
    let sb = ready();
    let bb = busybox();
    // --tz NAME: the host's zone file on /etc/localtime, read-only.
    let out = sb
        .den(&["run", "--rm", "--tz", "Asia/Tokyo", &bb, "date", "+%Z"])
        .ok();
    assert_eq!(out, "JST\n");
    // As podman's: /etc/localtime only; TZ stays the image's and -e's to set.
    let tz = sb
        .den(&[
            "run",
            "--rm",
            "--tz",
            "Asia/Tokyo",
            &bb,
            "sh",
            "-c",
            "echo ${TZ-unset}",
        ])
        .ok();
    assert_eq!(tz, "unset\n");
    let host = std::fs::read("/etc/localtime").unwrap();
    let local = sb
        .den(&["run", "--rm", "--tz=local", &bb, "cat", "/etc/localtime"])
        .ok_bytes()
        .to_vec();
    assert_eq!(local, host);
    sb.den(&[
        "run",
        "--rm",
        "--tz",
        "Asia/Tokyo",
        &bb,
        "sh",
        "-c",
        "echo x > /etc/localtime",
    ])
    .code
    .ne(&0)
    .then_some(())
    .expect("/etc/localtime is read-only");
    for bad in ["Nowhere/Place", "../../../etc/passwd"] {
        sb.den(&["run", "--rm", "--tz", bad, &bb, "true"])
            .fails_with(125, "unknown time zone");
    }

    // --uts host: the host's name, seen and not settable.
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let out = sb
        .den(&["run", "--rm", "--uts", "host", &bb, "hostname"])
        .ok();
    assert_eq!(out.trim(), name.trim());
    let own = sb
        .den(&["run", "--rm", "--uts=private", &bb, "hostname"])
        .ok();
    assert_ne!(own.trim(), name.trim());
    sb.den(&["run", "--rm", "--uts", "host", "-h", "x", &bb, "true"])
        .fails_with(125, "--hostname cannot be used with --uts host");
    sb.den(&["run", "--rm", "--uts", "container:x", &bb, "true"])
        .fails_with(125, "invalid --uts");
}
