//! `den pull` and `den images` against a real registry.

use std::os::unix::process::CommandExt;

use crate::sandbox::{Registry, Sandbox, SlowProxy, registry};

#[test]
fn pull_lists_and_pulls_again_as_docker_does() {
    let sb = Sandbox::new();
    let img = registry().image("library/busybox");
    let out = sb.den(&["pull", &img]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("latest: Pulling from library/busybox"),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with(": Pull complete")),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Digest: sha256:")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Status: Downloaded newer image for ")),
        "{out}"
    );
    assert_eq!(lines.last().copied(), Some(img.as_str()));

    let images = sb.den(&["images"]).ok();
    let rows: Vec<&str> = images.lines().collect();
    assert_eq!(rows.len(), 2, "{images}");
    let cols: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(
        cols,
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    );
    assert!(
        rows[1].starts_with(&format!("{}/library/busybox ", registry().addr)),
        "{images}"
    );
    assert!(rows[1].contains(" latest "), "{images}");
    assert!(rows[1].ends_with("MB"), "{images}");

    let ids = sb.den(&["images", "-q"]).ok();
    assert_eq!(ids.trim().len(), 12);
    assert!(ids.trim().bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(sb.den(&["image", "ls", "--quiet"]).ok(), ids);

    let again = sb.den(&["pull", &img]).ok();
    assert!(
        again.contains("Status: Image is up to date for "),
        "{again}"
    );
    assert!(!again.contains("Pull complete"), "{again}");
    assert_eq!(sb.den(&["pull", "-q", &img]).ok(), format!("{img}\n"));
}

#[test]
fn pull_by_digest() {
    let sb = Sandbox::new();
    let img = registry().image("library/busybox");
    let out = sb.den(&["pull", &img]).ok();
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .expect("digest line")
        .to_string();
    let by_digest = format!("{}/library/busybox@{digest}", registry().addr);
    let sb2 = Sandbox::new();
    let out = sb2.den(&["pull", &by_digest]).ok();
    assert_eq!(out.lines().last(), Some(by_digest.as_str()), "{out}");
    // The image has no tag here: docker lists it as <none>.
    let images = sb2.den(&["images"]).ok();
    assert!(
        images.lines().nth(1).unwrap().starts_with("<none>"),
        "{images}"
    );
    let run = sb2
        .den(&["run", "--rm", &by_digest, "echo", "by digest"])
        .ok();
    assert_eq!(run, "by digest\n");
}

fn architecture(sb: &Sandbox) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.root.join("images.json")).unwrap()).unwrap();
    v["images"][0]["architecture"].as_str().unwrap().to_string()
}

#[test]
fn image_indexes_pick_the_platform() {
    let img = registry().image("test/multi");
    let sb = Sandbox::new();
    sb.den(&["pull", &img]).ok();
    assert_eq!(architecture(&sb), "amd64");

    let sb = Sandbox::new();
    sb.den(&["pull", "--platform", "linux/arm64", &img]).ok();
    assert_eq!(architecture(&sb), "arm64");

    let sb = Sandbox::new();
    let out = sb.den(&["pull", "--platform", "linux/s390x", &img]);
    out.fails_with(125, "no matching manifest for linux/s390x");
    assert!(
        out.stderr.contains("linux/amd64") && out.stderr.contains("linux/arm64"),
        "{}",
        out.stderr
    );
    sb.den(&["pull", "--platform", "linux", &img])
        .fails_with(125, "invalid platform");
}

#[test]
fn docker_schema2_images_pull_and_run() {
    let sb = Sandbox::new();
    let img = registry().image("test/busybox-v2s2");
    sb.den(&["pull", &img]).ok();
    assert_eq!(
        sb.den(&["run", "--rm", &img, "echo", "v2s2"]).ok(),
        "v2s2\n"
    );
}

#[test]
fn layers_are_shared_between_images() {
    let sb = Sandbox::new();
    sb.den(&["pull", &registry().image("library/busybox")]).ok();
    let out = sb.den(&["pull", &registry().image("test/layered")]).ok();
    assert_eq!(
        out.lines()
            .filter(|l| l.ends_with(": Already exists"))
            .count(),
        1,
        "{out}"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.ends_with(": Pull complete"))
            .count(),
        4,
        "{out}"
    );
    let layers = std::fs::read_dir(sb.root.join("layers"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().len() == 64)
        .count();
    assert_eq!(layers, 5);
}

#[test]
fn concurrent_pulls_share_one_store() {
    let sb = Sandbox::new();
    let img = registry().image("test/layered");
    let children: Vec<_> = (0..3)
        .map(|_| {
            sb.cmd("den", &["pull", "-q", &img])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(sb.den(&["images", "-q"]).ok().lines().count(), 1);
    assert_eq!(
        sb.den(&["run", "--rm", &img, "cat", "/srv/from-zstd"]).ok(),
        "zstd layer\n"
    );
}

#[test]
fn a_killed_pull_leaves_no_image_and_the_next_one_completes() {
    let sb = Sandbox::new();
    let mut reg = Registry::start("killed-pull");
    reg.push("big --mb 48", "test/big");
    // 8 MB/s: the pull takes seconds, so the kill lands in the middle of it.
    let proxy = SlowProxy::start(&reg.addr, 8 << 20);
    let img = format!("{}/test/big:latest", proxy.addr);
    let mut child = sb
        .cmd("den", &["pull", &img])
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let pgid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status()
            .unwrap()
            .success()
    );
    let _ = child.wait();
    // The whole group must be gone (den-image's child in the user namespace dies a moment after
    // the parent is reaped) before the next pull sweeps what it left.
    for _ in 0..100 {
        let alive = std::process::Command::new("kill")
            .args(["-0", "--", &format!("-{pgid}")])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !alive {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        sb.den(&["images", "-q"]).ok(),
        "",
        "a killed pull must not leave an image"
    );
    let fast = format!("{}/test/big:latest", reg.addr);
    sb.den(&["pull", &fast]).ok();
    assert_eq!(sb.den(&["images", "-q"]).ok().lines().count(), 1);
    // The next writer swept the killed pull's staging files.
    let tmp: Vec<_> = std::fs::read_dir(sb.root.join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    reg.stop();
}

#[test]
fn docker_hub_names_go_to_the_configured_mirror() {
    let sb = Sandbox::new();
    sb.config(&format!(
        "[registry]\nmirrors = [\"http://{}\"]\n",
        registry().addr
    ));
    let out = sb.den(&["pull", "busybox"]).ok();
    assert_eq!(
        out.lines().last(),
        Some("docker.io/library/busybox:latest"),
        "{out}"
    );
    let images = sb.den(&["images"]).ok();
    assert!(
        images.lines().nth(1).unwrap().starts_with("busybox "),
        "{images}"
    );
    assert_eq!(
        sb.den(&["run", "--rm", "busybox", "echo", "via mirror"])
            .ok(),
        "via mirror\n"
    );
}

#[test]
fn registries_with_bearer_tokens() {
    let sb = Sandbox::new();
    let tokens = crate::token::TokenService::start(
        &crate::sandbox::env().tmp.join("tokens-pull"),
        &[("pusher", "secret")],
    );
    let reg = Registry::start_with("bearer", &tokens.registry_config(), Some("pusher:secret"));
    reg.push("busybox", "library/busybox");
    // Without a token the registry refuses even to list.
    let direct = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import urllib.request,sys\ntry:\n  urllib.request.urlopen('http://{}/v2/library/busybox/manifests/latest')\nexcept Exception as e:\n  print(e)",
            reg.addr
        ))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&direct.stdout).contains("401"),
        "{}",
        String::from_utf8_lossy(&direct.stdout)
    );
    let img = reg.image("library/busybox");
    sb.den(&["pull", &img]).ok();
    assert_eq!(
        sb.den(&["run", "--rm", &img, "echo", "token ok"]).ok(),
        "token ok\n"
    );
}

#[test]
fn docker_manifest_lists_pick_the_platform() {
    let sb = Sandbox::new();
    sb.den(&["pull", &registry().image("test/multi-v2s2")]).ok();
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.root.join("images.json")).unwrap()).unwrap();
    assert_eq!(v["images"][0]["architecture"], "amd64");
    assert_eq!(
        v["images"][0]["manifest_media_type"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}

#[test]
fn single_uid_mode_is_announced_once() {
    let sb = Sandbox::new();
    let first = sb.den(&["pull", &registry().image("library/busybox")]);
    first.ok();
    let second = sb.den(&["pull", &registry().image("test/layered")]);
    second.ok();
    if sb.mapped() {
        assert!(!first.stderr.contains("single-uid"), "{}", first.stderr);
    } else {
        assert_eq!(
            first.stderr.matches("single-uid mode").count(),
            1,
            "{}",
            first.stderr
        );
        assert!(!second.stderr.contains("single-uid"), "{}", second.stderr);
    }
}

#[test]
fn progress_is_drawn_on_a_terminal_only() {
    let sb = Sandbox::new();
    let out = sb.den_pty(
        &["--cols", "120"],
        &["pull", &registry().image("test/layered")],
    );
    assert_eq!(out.code, 0, "{}", out.out());
    let text = out.out();
    assert!(text.contains("Pull complete"), "{text}");
    assert!(text.contains("Status: Downloaded newer image"), "{text}");
    // On a pipe the same pull prints plain lines, no escape sequences.
    let sb = Sandbox::new();
    let plain = sb.den(&["pull", &registry().image("test/layered")]).ok();
    assert!(!plain.contains('\x1b'), "{plain:?}");
}

/// A host with no CA certificates (a minimal CI image without ca-certificates) still pulls from
/// a plain-http registry, and where verified https is asked for, says what to install instead
/// of crashing (oci-client built a default client, which panicked without a trust store).
#[test]
fn no_trust_store_is_needed_for_plain_http_and_named_for_https() {
    let mut sb = Sandbox::new();
    sb.set_env("SSL_CERT_FILE", "/dev/null");
    sb.set_env("SSL_CERT_DIR", "/nonexistent");
    let img = registry().image("library/busybox");
    assert_eq!(sb.den(&["pull", "-q", &img]).ok(), format!("{img}\n"));
    let addr = registry().addr.clone();
    sb.den(&["login", "--tls-verify=true", "-u", "a", "-p", "b", &addr])
        .fails_with(125, "cannot verify")
        .fails_with(125, "ca-certificates");
    assert!(sb.den(&["images", "-q"]).ok().trim().len() == 12);
}
