//! User networks: `network create|ls|inspect|rm|prune`, containers that reach each other by
//! name and alias on one network and not across two, `--ip`, `-p` on a user network, DNS
//! forwarding, and the network helper's lifetime.

use std::time::{Duration, Instant};

use crate::sandbox::{Sandbox, busybox, free_port, wait_http};

fn ready() -> Sandbox {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &busybox()]).ok();
    sb
}

/// A detached busybox httpd named `name` on `net` serving "hello from NAME", with `extra` flags.
fn web(sb: &Sandbox, name: &str, net: &str, extra: &[&str]) {
    let www = sb.dir.join(format!("www-{name}"));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), format!("hello from {name}\n")).unwrap();
    let vol = format!("{}:/www:ro", www.display());
    let mut args = vec!["run", "-d", "--name", name, "--network", net, "-v", &vol];
    args.extend_from_slice(extra);
    let img = busybox();
    args.extend_from_slice(&[&img, "httpd", "-f", "-p", "80", "-h", "/www"]);
    sb.den(&args).ok();
}

/// `wget` (busybox's `-T` crashes: `timeout` instead) from a throwaway container on `net`: the page, or None when it cannot be fetched.
fn fetch(sb: &Sandbox, net: &str, url: &str) -> Option<String> {
    let img = busybox();
    let out = sb.den(&[
        "run",
        "--rm",
        "--network",
        net,
        &img,
        "timeout",
        "5",
        "wget",
        "-qO-",
        url,
    ]);
    if out.code != 0 {
        eprintln!("{url} from {net}: {} {}", out.code, out.stderr);
    }
    (out.code == 0).then(|| out.out())
}

fn inspect_field(sb: &Sandbox, what: &[&str], format: &str) -> String {
    let mut args = vec!["inspect", "--format", format];
    args.extend_from_slice(what);
    sb.den(&args).ok().trim().to_string()
}

/// The helper's pid file, wherever the runtime directory puts it.
fn holder_pid(sb: &Sandbox) -> Option<i32> {
    let out = sb.sh(&format!(
        "cat $(find {} -name holder.pid 2>/dev/null) 2>/dev/null",
        sb.runtime.display()
    ));
    out.out().trim().parse().ok()
}

#[test]
fn network_verbs_follow_docker() {
    let sb = Sandbox::new();
    let id = sb
        .den(&["network", "create", "--label", "team=a", "appnet"])
        .ok();
    assert_eq!(id.trim().len(), 64, "the id: {id}");
    let ls = sb.den(&["network", "ls"]).ok();
    let first = ls.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("NETWORK ID") && first.contains("DRIVER"),
        "{ls}"
    );
    for n in ["bridge", "host", "none", "appnet"] {
        assert!(ls.contains(n), "{n} missing: {ls}");
    }
    let names = sb
        .den(&[
            "network",
            "ls",
            "--format",
            "{{.Name}}",
            "--filter",
            "name=app",
        ])
        .ok();
    assert_eq!(names.trim(), "appnet");
    assert_eq!(
        sb.den(&["network", "ls", "-q", "--filter", "label=team=a"])
            .ok()
            .trim(),
        &id.trim()[..12]
    );
    let json: serde_json::Value =
        serde_json::from_str(&sb.den(&["network", "inspect", "appnet"]).ok()).unwrap();
    assert_eq!(json[0]["Name"], "appnet");
    assert_eq!(json[0]["Driver"], "bridge");
    assert_eq!(json[0]["Labels"]["team"], "a");
    assert_eq!(json[0]["IPAM"]["Config"][0]["Subnet"], "10.89.1.0/24");
    assert_eq!(json[0]["IPAM"]["Config"][0]["Gateway"], "10.89.1.1");
    // Refusals: one line, exit 1 as docker's `network create`, nothing stored.
    sb.den(&["network", "create", "--subnet", "10.89.1.128/25", "other"])
        .fails_with(1, "overlaps");
    sb.den(&["network", "create", "--subnet", "10.89.1.7/24", "other"])
        .fails_with(1, "invalid subnet");
    sb.den(&["network", "create", "bad/name"])
        .fails_with(1, "invalid network name");
    sb.den(&["network", "create", "appnet"])
        .fails_with(1, "already exists");
    assert_eq!(sb.den(&["network", "ls", "-q"]).ok().lines().count(), 4);
    sb.den(&["network", "inspect", "nope"])
        .fails_with(1, "network nope not found");
    sb.den(&["run", "--rm", "--network", "nope", &busybox(), "true"])
        .fails_with(125, "network nope not found");
    sb.den(&["run", "--rm", "--ip", "10.0.0.9", &busybox(), "true"])
        .fails_with(125, "--ip needs a user network");
    sb.den(&["network", "rm", "appnet"]).ok();
    assert!(!sb.den(&["network", "ls"]).ok().contains("appnet"));
}

#[test]
fn containers_reach_each_other_by_name_and_alias_not_across_networks() {
    let sb = ready();
    sb.den(&["network", "create", "front"]).ok();
    sb.den(&["network", "create", "back"]).ok();
    web(&sb, "db", "back", &["--network-alias", "database"]);
    for url in ["http://db/", "http://database/", "http://DB./"] {
        let page = fetch(&sb, "back", url);
        assert_eq!(page.as_deref(), Some("hello from db\n"), "{url}");
    }
    let ip = inspect_field(
        &sb,
        &["db"],
        "{{(index .NetworkSettings.Networks \"back\").IPAddress}}",
    );
    assert!(ip.starts_with("10.89."), "db's address: {ip:?}");
    assert_eq!(
        fetch(&sb, "back", &format!("http://{ip}/")).as_deref(),
        Some("hello from db\n")
    );
    // Another network neither resolves the name nor reaches the address.
    assert_eq!(fetch(&sb, "front", "http://db/"), None);
    assert_eq!(fetch(&sb, "front", &format!("http://{ip}/")), None);
    // Names that are not containers go to the upstream resolver, which answers (no internet
    // here: an error, not a hang).
    let t = Instant::now();
    let out = sb.den(&[
        "run",
        "--rm",
        "--network",
        "back",
        &busybox(),
        "nslookup",
        "no-such-host.invalid",
    ]);
    assert_ne!(out.code, 0, "{}", out.out());
    assert!(t.elapsed() < Duration::from_secs(30), "the forwarder hung");
    // The network is in use: rm is refused, prune keeps it and removes the unused one.
    sb.den(&["network", "rm", "back"])
        .fails_with(1, "has active endpoints");
    let pruned = sb.den(&["network", "prune", "-f"]).ok();
    assert!(
        pruned.contains("front") && !pruned.contains("back"),
        "{pruned}"
    );
    let inspect = sb.den(&["network", "inspect", "back"]).ok();
    assert!(inspect.contains(&ip), "the container is listed: {inspect}");
    sb.den(&["rm", "-f", "db"]).ok();
    sb.den(&["network", "rm", "back"]).ok();
}

#[test]
fn fixed_address_and_published_port_on_a_user_network() {
    let sb = ready();
    sb.den(&["network", "create", "--subnet", "10.90.5.0/24", "pub"])
        .ok();
    let port = free_port();
    let publish = format!("{port}:80");
    web(&sb, "site", "pub", &["--ip", "10.90.5.50", "-p", &publish]);
    let ip = inspect_field(
        &sb,
        &["site"],
        "{{(index .NetworkSettings.Networks \"pub\").IPAddress}}",
    );
    assert_eq!(ip, "10.90.5.50");
    let addr = format!("127.0.0.1:{port}");
    wait_http(&addr, "/");
    let page = crate::network::http_get(&addr, "/index.html");
    assert!(page.contains("hello from site"), "{page}");
    // The address is taken.
    sb.den(&[
        "run",
        "--rm",
        "--network",
        "pub",
        "--ip",
        "10.90.5.50",
        &busybox(),
        "true",
    ])
    .fails_with(125, "already in use");
    sb.den(&["rm", "-f", "site"]).ok();
}

#[test]
fn the_helper_exits_after_the_last_container() {
    let sb = ready();
    sb.den(&["network", "create", "short"]).ok();
    sb.den(&[
        "run",
        "-d",
        "--name",
        "a",
        "--network",
        "short",
        &busybox(),
        "sleep",
        "600",
    ])
    .ok();
    let pid = holder_pid(&sb).expect("a helper runs");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    sb.den(&["rm", "-f", "a"]).ok();
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(t.elapsed() < Duration::from_secs(30), "the helper stays");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_internal_network_has_no_way_out_and_keep_id_is_refused() {
    let sb = ready();
    let img = busybox();
    sb.den(&["network", "create", "--internal", "inner"]).ok();
    web(&sb, "box", "inner", &[]);
    // Members still reach each other by name...
    assert_eq!(
        fetch(&sb, "inner", "http://box/").as_deref(),
        Some("hello from box\n")
    );
    // ...but have no route out (docker's internal networks).
    let routes = sb
        .den(&["run", "--rm", "--network", "inner", &img, "ip", "route"])
        .ok();
    assert!(!routes.contains("default"), "{routes}");
    assert!(routes.contains("10.89."), "{routes}");
    // A keep-id container cannot share the network's id mapping: one line, nothing made.
    let before = sb.den(&["ps", "-aq"]).ok();
    let out = sb.den(&[
        "run",
        "--rm",
        "--userns",
        "keep-id",
        "--network",
        "inner",
        &img,
        "true",
    ]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(out.stderr.contains("keep-id"), "{}", out.stderr);
    assert_eq!(sb.den(&["ps", "-aq"]).ok(), before);
    sb.den(&["rm", "-f", "box"]).ok();
}

#[test]
fn a_killed_helper_is_replaced_and_running_containers_attached_again() {
    let sb = ready();
    sb.den(&["network", "create", "sturdy"]).ok();
    web(&sb, "db", "sturdy", &["--network-alias", "database"]);
    let ip = inspect_field(
        &sb,
        &["db"],
        "{{(index .NetworkSettings.Networks \"sturdy\").IPAddress}}",
    );
    let pid = holder_pid(&sb).expect("a helper runs");
    sb.sh(&format!("kill -9 {pid}")).ok();
    let t = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "the helper lives");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The next container gets a new helper, in the running one's user namespace, and finds it
    // again by name and alias at its old address.
    for url in ["http://db/", "http://database/", &format!("http://{ip}/")] {
        assert_eq!(
            fetch(&sb, "sturdy", url).as_deref(),
            Some("hello from db\n"),
            "{url} after the helper was killed"
        );
    }
    let again = holder_pid(&sb).expect("a new helper runs");
    assert_ne!(again, pid);
    assert_eq!(
        std::fs::read_link(format!("/proc/{again}/ns/user")).ok(),
        std::fs::read_link(format!(
            "/proc/{}/ns/user",
            inspect_field(&sb, &["db"], "{{.State.Pid}}")
        ))
        .ok(),
        "the new helper shares the running container's user namespace"
    );
    sb.den(&["rm", "-f", "db"]).ok();
}

#[test]
fn containers_started_as_the_helper_exits_get_one() {
    // Each `run --rm` is the network's only container: the helper exits after each one while
    // the next one starts (a `compose down` then `up`), in turn and two at a time.
    let sb = ready();
    let img = busybox();
    sb.den(&["network", "create", "brief"]).ok();
    let one = ["run", "--rm", "--network", "brief", &img, "true"];
    for i in 0..6 {
        let out = sb.den(&one);
        assert_eq!(out.code, 0, "run {i}: {}", out.stderr);
    }
    let both = format!(
        "set -e; for i in 1 2 3; do den {args} & den {args}; wait $!; done",
        args = one.join(" ")
    );
    sb.sh(&both).ok();
}

#[test]
fn a_container_on_another_containers_network() {
    let sb = ready();
    let img = busybox();
    // On the default network: the other's loopback is ours, and so is its host name.
    sb.den(&[
        "run",
        "-d",
        "--name",
        "owner",
        &img,
        "httpd",
        "-f",
        "-p",
        "127.0.0.1:8080",
        "-h",
        "/etc",
    ])
    .ok();
    let got = sb
        .den(&[
            "run",
            "--rm",
            "--network",
            "container:owner",
            &img,
            "sh",
            "-c",
            "hostname; timeout 5 wget -qO- http://127.0.0.1:8080/hostname",
        ])
        .ok();
    let owner_host = inspect_field(&sb, &["owner"], "{{.Config.Hostname}}");
    assert_eq!(got, format!("{owner_host}\n{owner_host}\n"));
    sb.den(&[
        "create",
        "--name",
        "joiner",
        "--network",
        "container:owner",
        &img,
        "true",
    ])
    .ok();
    let id = inspect_field(&sb, &["owner"], "{{.Id}}");
    assert_eq!(
        inspect_field(&sb, &["joiner"], "{{.HostConfig.NetworkMode}}"),
        format!("container:{id}")
    );
    // Conflicting flags and a stopped owner: one line, exit 125.
    sb.den(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        "-p",
        "8081:80",
        &img,
        "true",
    ])
    .fails_with(125, "conflicting options: port publishing");
    sb.den(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        "-h",
        "x",
        &img,
        "true",
    ])
    .fails_with(125, "conflicting options: hostname");
    sb.den(&["run", "--rm", "--network", "container:nosuch", &img, "true"])
        .fails_with(125, "nosuch");
    sb.den(&["stop", "-t", "0", "owner"]).ok();
    // docker's `start` fails with 1.
    sb.den(&["start", "joiner"])
        .fails_with(1, "non running container");
    // On a user network: the other's address and its network's names.
    sb.den(&["network", "create", "shared"]).ok();
    web(&sb, "db", "shared", &[]);
    let got = sb
        .den(&[
            "run",
            "--rm",
            "--network",
            "container:db",
            &img,
            "sh",
            "-c",
            "timeout 5 wget -qO- http://127.0.0.1/; timeout 5 wget -qO- http://db/",
        ])
        .ok();
    assert_eq!(got, "hello from db\nhello from db\n");
    sb.den(&["rm", "-f", "db", "owner", "joiner"]).ok();
}

#[test]
fn network_connect_and_disconnect() {
    let sb = ready();
    let img = busybox();
    sb.den(&["network", "create", "left"]).ok();
    sb.den(&["network", "create", "right"]).ok();
    web(&sb, "db", "left", &[]);
    // A running container gets an interface on the second network at once, with its alias.
    sb.den(&["network", "connect", "--alias", "store", "right", "db"])
        .ok();
    for url in ["http://db/", "http://store/"] {
        assert_eq!(
            fetch(&sb, "right", url).as_deref(),
            Some("hello from db\n"),
            "{url} on the network it joined"
        );
    }
    let nets = inspect_field(&sb, &["db"], "{{len .NetworkSettings.Networks}}");
    assert_eq!(nets, "2");
    sb.den(&["network", "connect", "right", "db"])
        .fails_with(1, "already exists in network right");
    // A container on both resolves the names of both through its first network's server.
    sb.den(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "left",
        &img,
        "sleep",
        "600",
    ])
    .ok();
    web(&sb, "other", "right", &[]);
    sb.den(&["network", "connect", "right", "cli"]).ok();
    let page = sb
        .den(&[
            "exec",
            "cli",
            "timeout",
            "5",
            "wget",
            "-qO-",
            "http://other/",
        ])
        .ok();
    assert_eq!(page, "hello from other\n");
    // Disconnected: gone from that network, still on the other; the last one stays.
    sb.den(&["network", "disconnect", "right", "db"]).ok();
    assert_eq!(fetch(&sb, "right", "http://store/"), None);
    assert_eq!(
        fetch(&sb, "left", "http://db/").as_deref(),
        Some("hello from db\n")
    );
    sb.den(&["network", "disconnect", "left", "db"])
        .fails_with(1, "no network left");
    sb.den(&["network", "disconnect", "right", "db"])
        .fails_with(1, "is not connected to network right");
    // A stopped container is connected when it starts, instead of the default network.
    sb.den(&["create", "--name", "later", &img, "ip", "-4", "-o", "addr"])
        .ok();
    sb.den(&["network", "connect", "--ip", "10.89.1.77", "left", "later"])
        .ok();
    let addrs = sb.den(&["start", "-a", "later"]).ok();
    assert!(addrs.contains("10.89.1.77/24"), "{addrs}");
    sb.den(&[
        "run",
        "-d",
        "--name",
        "hosted",
        "--network",
        "host",
        &img,
        "sleep",
        "600",
    ])
    .ok();
    sb.den(&["network", "connect", "left", "hosted"])
        .fails_with(1, "cannot be connected");
    sb.den(&["rm", "-f", "db", "cli", "other", "later", "hosted"])
        .ok();
}
