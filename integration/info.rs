//! den about itself: `version` and `info --format` with docker's field names, and docker's
//! management-command aliases (`image ls`, `container rm`, `system info`, ...).

use serde_json::Value;

use crate::sandbox::{Sandbox, registry};

fn json(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn version_prints_dockers_sections_and_fields() {
    let sb = Sandbox::new();
    let text = sb.den(&["version"]).ok();
    assert!(text.starts_with("Client: den\n"), "{text}");
    for key in [
        " Version:",
        " API version:",
        " Rust version:",
        " Git commit:",
        " Built:",
        " OS/Arch:           linux/",
        " Context:           default",
        "\nServer: den",
        "  Kernel version:",
    ] {
        assert!(text.contains(key), "{key:?} missing: {text}");
    }
    let client = sb.den(&["version", "--format", "{{.Client.Version}}"]).ok();
    let server = sb.den(&["version", "-f", "{{.Server.Version}}"]).ok();
    assert_eq!(client, server);
    // `den --version` is docker's one line: `den version X, build COMMIT`.
    let short = sb.den(&["--version"]).ok();
    assert!(
        short.starts_with(&format!("den version {}, build ", client.trim())),
        "{short}"
    );
    let api = sb
        .den(&["version", "--format", "{{.Client.APIVersion}}"])
        .ok();
    assert_eq!(api.trim(), "1.44");
    for format in ["{{json .}}", "json"] {
        let v = json(&sb.den(&["version", "--format", format]).ok());
        assert_eq!(v["Client"]["Version"], client.trim());
        assert_eq!(v["Client"]["ApiVersion"], "1.44");
        assert_eq!(v["Client"]["Os"], "linux");
        assert_eq!(v["Server"]["Components"][0]["Name"], "Engine");
        assert!(
            v["Client"]["GitCommit"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        );
    }
    sb.den(&["version", "--format", "{{.Client"])
        .fails_with(1, "--format");
}

#[test]
fn info_format_has_dockers_field_names() {
    let sb = Sandbox::new();
    let busybox = registry().image("library/busybox");
    sb.den(&["pull", "-q", &busybox]).ok();
    sb.den(&["create", &busybox, "true"]).ok();
    let field = |f: &str| {
        sb.den(&["info", "--format", &format!("{{{{.{f}}}}}")])
            .ok()
            .trim()
            .to_string()
    };
    assert_eq!(field("Containers"), "1");
    assert_eq!(field("ContainersRunning"), "0");
    assert_eq!(field("ContainersPaused"), "0");
    assert_eq!(field("ContainersStopped"), "1");
    assert_eq!(field("Images"), "1");
    assert_eq!(field("OSType"), "linux");
    assert_eq!(field("DockerRootDir"), sb.root.display().to_string());
    assert!(field("NCPU").parse::<u32>().unwrap() >= 1);
    assert!(field("MemTotal").parse::<u64>().unwrap() > 0);
    assert!(!field("KernelVersion").is_empty());
    assert!(!field("ServerVersion").is_empty());
    // The driver is the one den's own report names.
    let text = sb.den(&["info"]).ok();
    let driver = field("Driver");
    assert!(
        text.lines()
            .any(|l| l.starts_with("storage driver:") && l.contains(&driver)),
        "{driver}: {text}"
    );
    let all = json(&sb.den(&["info", "--format", "{{json .}}"]).ok());
    for key in [
        "OperatingSystem",
        "Architecture",
        "CgroupDriver",
        "CgroupVersion",
        "SecurityOptions",
        "Name",
        "LoggingDriver",
        "Plugins",
    ] {
        assert!(all.get(key).is_some(), "{key} missing: {all}");
    }
    assert_eq!(all["Images"], 1);
    assert!(all["SecurityOptions"].to_string().contains("name=rootless"));
    sb.den(&["info", "--format", "{{.Driver"])
        .fails_with(1, "--format");
}

/// docker 25's management-command forms give what the verbs give.
#[test]
fn dockers_aliases_give_the_verbs_output() {
    let sb = Sandbox::new();
    let busybox = registry().image("library/busybox");
    sb.den(&["pull", "-q", &busybox]).ok();
    let id = sb.den(&["create", "--name", "c1", &busybox, "true"]).ok();
    sb.den(&["create", "--name", "c2", &busybox, "true"]).ok();
    let images = sb.den(&["images"]).ok();
    assert!(images.contains("busybox"), "{images}");
    for alias in [["image", "ls"], ["image", "list"]] {
        assert_eq!(sb.den(&alias).ok(), images, "{alias:?}");
    }
    let ps = sb.den(&["ps", "-a", "--no-trunc"]).ok();
    assert!(ps.contains(id.trim()), "{ps}");
    for alias in ["ls", "list", "ps"] {
        assert_eq!(
            sb.den(&["container", alias, "-a", "--no-trunc"]).ok(),
            ps,
            "container {alias}"
        );
    }
    let info = sb
        .den(&["info", "--format", "{{.Driver}} {{.Containers}}"])
        .ok();
    assert_eq!(
        sb.den(&["system", "info", "--format", "{{.Driver}} {{.Containers}}"])
            .ok(),
        info
    );
    // tag and image tag name the same image.
    sb.den(&["tag", &busybox, "one:1"]).ok();
    sb.den(&["image", "tag", &busybox, "two:1"]).ok();
    let ids = |name: &str| {
        sb.den(&["image", "inspect", "--format", "{{.Id}}", name])
            .ok()
    };
    assert_eq!(ids("one:1"), ids("two:1"));
    sb.den(&["tag", &busybox, "three:1"]).ok();
    // rmi, image rm and image remove untag the same way.
    let untag = |args: &[&str], name: &str| {
        let mut argv = args.to_vec();
        argv.push(name);
        sb.den(&argv).ok().replace(name, "NAME")
    };
    let rmi = untag(&["rmi"], "one:1");
    assert!(rmi.starts_with("Untagged: "), "{rmi}");
    assert_eq!(untag(&["image", "rm"], "two:1"), rmi);
    assert_eq!(untag(&["image", "remove"], "three:1"), rmi);
    // start and container start; rm, container rm and container remove.
    assert_eq!(sb.den(&["start", "c1"]).ok(), "c1\n");
    assert_eq!(sb.den(&["container", "start", "c2"]).ok(), "c2\n");
    sb.den(&["wait", "c1", "c2"]).ok();
    sb.den(&["create", "--name", "c3", &busybox, "true"]).ok();
    assert_eq!(sb.den(&["rm", "c1"]).ok(), "c1\n");
    assert_eq!(sb.den(&["container", "rm", "c2"]).ok(), "c2\n");
    assert_eq!(sb.den(&["container", "remove", "c3"]).ok(), "c3\n");
    assert_eq!(sb.den(&["ps", "-aq"]).ok(), "");
}

/// `events`: den's journal of what the verbs and monitors did, printed as docker prints it.
#[test]
fn events_show_what_den_did_as_docker_prints_it() {
    let sb = Sandbox::new();
    let busybox = registry().image("library/busybox");
    sb.den(&["pull", "-q", &busybox]).ok();
    let id = sb
        .den(&[
            "create",
            "--name",
            "ev",
            "--label",
            "tier=front",
            &busybox,
            "sh",
            "-c",
            "exit 3",
        ])
        .ok();
    let id = id.trim();
    sb.den(&["start", "ev"]).ok();
    assert_eq!(sb.den(&["wait", "ev"]).ok().trim(), "3");
    sb.den(&["tag", &busybox, "mine:1"]).ok();
    sb.den(&["rmi", "mine:1"]).ok();
    sb.den(&["rm", "ev"]).ok();

    let all = sb.den(&["events", "--until", "0s"]).ok();
    let line = all
        .lines()
        .find(|l| l.contains(" container create "))
        .unwrap_or_else(|| panic!("no create: {all}"));
    // docker's line: TIME TYPE ACTION ID (attributes in key order)
    let (time, rest) = line.split_once(' ').unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(time).is_ok() && time.len() >= 30,
        "{time}"
    );
    assert_eq!(
        rest,
        format!("container create {id} (image={busybox}, name=ev, tier=front)")
    );
    let actions = |args: &[&str]| {
        let mut argv = vec![
            "events",
            "--until",
            "0s",
            "--format",
            "{{.Type}} {{.Action}}",
        ];
        argv.extend_from_slice(args);
        sb.den(&argv).ok()
    };
    assert_eq!(
        actions(&["--filter", "container=ev"]),
        "container create\ncontainer start\ncontainer die\ncontainer destroy\n"
    );
    assert_eq!(
        actions(&["--filter", "type=image"]),
        "image pull\nimage tag\nimage untag\n"
    );
    assert_eq!(
        actions(&["-f", "label=tier=front", "-f", "event=die"]),
        "container die\n"
    );
    let die = sb
        .den(&[
            "events",
            "--until",
            "0s",
            "--filter",
            "event=die",
            "--format",
            "{{.Actor.Attributes.exitCode}} {{.Actor.ID}} {{.Status}} {{.From}} {{.ID}}",
        ])
        .ok();
    assert_eq!(die, format!("3 {id} die {busybox} {id}\n"));
    // --since in the future selects nothing; json is one object per line.
    assert_eq!(
        sb.den(&["events", "--since", "4102444800", "--until", "0s"])
            .ok(),
        ""
    );
    let json = sb
        .den(&[
            "events",
            "--until",
            "0s",
            "--filter",
            "event=tag",
            "--format",
            "json",
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["Type"], "image");
    assert_eq!(v["Actor"]["Attributes"]["name"], "mine:1");
    assert!(v["TimeNano"].as_i64().unwrap() > 0);
    // The journal is the user's alone.
    let mode = sb
        .sh(&format!("stat -c %a {}/events.log", sb.root.display()))
        .ok();
    assert_eq!(mode.trim(), "600");
    sb.den(&["events", "--filter", "nope=1"])
        .fails_with(1, "nope=1");
    sb.den(&["events", "--since", "yesterday"])
        .fails_with(1, "yesterday");
    // Without --until, new events follow as they happen.
    let followed = sb
        .sh(&format!(
            "den events --since 0s --format '{{{{.Action}}}} {{{{.Actor.Attributes.name}}}}' > follow.out & pid=$!
             sleep 1; den create --name later {busybox} true >/dev/null; den rm later >/dev/null
             for i in 1 2 3 4 5 6 7 8 9 10; do grep -q destroy follow.out && break; sleep 0.5; done
             kill $pid; cat follow.out"
        ))
        .ok();
    assert_eq!(followed, "create later\ndestroy later\n");
    // The docker alias.
    assert_eq!(
        sb.den(&[
            "system",
            "events",
            "--until",
            "0s",
            "--filter",
            "type=image",
            "--format",
            "{{.Action}}"
        ])
        .ok(),
        "pull\ntag\nuntag\n"
    );
}

/// The other verbs record their events too: exec, attach, push, save, load, import, build.
#[test]
fn events_of_exec_push_save_load_import_build() {
    let sb = Sandbox::new();
    let busybox = registry().image("library/busybox");
    sb.den(&["pull", "-q", &busybox]).ok();
    sb.den(&["run", "-d", "--name", "bg", &busybox, "sleep", "60"])
        .ok();
    sb.den(&["exec", "bg", "echo", "hi"]).ok();
    sb.den(&["kill", "bg"]).ok();
    sb.den(&["wait", "bg"]).ok();
    let mut reg = crate::sandbox::Registry::start("events");
    let remote = format!("{}/info/ev:1", reg.addr);
    sb.den(&["tag", &busybox, &remote]).ok();
    sb.den(&["push", &remote]).ok();
    reg.stop();
    sb.den(&["save", "-o", "bb.tar", &busybox]).ok();
    sb.den(&["load", "-q", "-i", "bb.tar"]).ok();
    sb.sh("den export bg > rootfs.tar").ok();
    sb.den(&["import", "rootfs.tar", "imp:1"]).ok();
    sb.den_input(
        &["build", "-q", "-t", "built:1", "-"],
        format!("FROM {busybox}\nLABEL x=y\n").as_bytes(),
    )
    .ok();
    let lines = sb
        .den(&[
            "events",
            "--until",
            "0s",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ])
        .ok();
    for want in [
        "container start bg".to_string(),
        "container exec_start: echo hi bg".to_string(),
        "container kill bg".to_string(),
        "container die bg".to_string(),
        format!("image push {remote}"),
        format!("image save {busybox}"),
        format!("image load {busybox}"),
        "image import imp:1".to_string(),
        "image build built:1".to_string(),
    ] {
        assert!(
            lines.lines().any(|l| l == want),
            "{want:?} missing:\n{lines}"
        );
    }
    let signal = sb
        .den(&[
            "events",
            "--until",
            "0s",
            "-f",
            "event=kill",
            "--format",
            "{{.Actor.Attributes.signal}}",
        ])
        .ok();
    assert_eq!(signal, "9\n");
}

/// `search` against docker-registry: no search API there, so the catalog, filtered by the term.
#[test]
fn search_reads_the_registrys_catalog() {
    let sb = Sandbox::new();
    let addr = &registry().addr;
    let out = sb.den(&["search", &format!("{addr}/busybox")]).ok();
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("NAME")
            && header.contains("DESCRIPTION")
            && header.contains("STARS")
            && header.contains("OFFICIAL"),
        "{out}"
    );
    let names: Vec<&str> = lines
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert!(
        names.contains(&format!("{addr}/library/busybox").as_str()),
        "{out}"
    );
    assert!(names.iter().all(|n| n.contains("busybox")), "{out}");
    let listed = sb
        .den(&[
            "search",
            "--format",
            "{{.Name}} {{.StarCount}}",
            &format!("{addr}/layered"),
        ])
        .ok();
    assert_eq!(listed, format!("{addr}/test/layered 0\n"));
    let one = sb
        .den(&[
            "search",
            "--limit",
            "1",
            "--format",
            "{{.Name}}",
            &format!("{addr}/"),
        ])
        .ok();
    assert_eq!(one.lines().count(), 1, "{one}");
    assert_eq!(
        sb.den(&[
            "search",
            "--filter",
            "is-official=true",
            "--format",
            "{{.Name}}",
            &format!("{addr}/busybox")
        ])
        .ok(),
        ""
    );
    // No registry named: one line saying how to name one.
    sb.den(&["search", "busybox"])
        .fails_with(125, "den search REGISTRY/busybox");
}
