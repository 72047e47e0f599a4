//! Multi-platform images: `den manifest` lists made of local images and of images in a
//! registry, pushed to the test registry and pulled back per platform. The arm64 image is the
//! fixture's (`test/multi`, busybox with its config's architecture rewritten): it never runs.

use crate::sandbox::{Sandbox, registry};

/// Pull `test/multi` for `platform` and name it `name`.
fn pull_as(sb: &Sandbox, platform: &str, name: &str) {
    let multi = registry().image("test/multi");
    sb.den(&["pull", "-q", "--platform", platform, &multi]).ok();
    sb.den(&["tag", &multi, name]).ok();
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn arches(v: &serde_json::Value) -> Vec<String> {
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_list_of_local_images_is_made_annotated_pushed_and_pulled_back() {
    let sb = Sandbox::new();
    let reg = registry();
    pull_as(&sb, "linux/amd64", "app:amd64");
    pull_as(&sb, "linux/arm64", "app:arm64");
    let list = format!("{}/manifests/app:multi", reg.addr);

    assert_eq!(
        sb.den(&["manifest", "create", &list, "app:amd64", "app:arm64"])
            .ok(),
        format!("Created manifest list {list}\n")
    );
    sb.den(&["manifest", "exists", &list]).ok();
    assert_eq!(sb.den(&["manifest", "exists", "nolist:1"]).code, 1);
    // A list is not an image.
    assert!(!sb.den(&["images"]).ok().contains("manifests/app"));

    // Docker's shape, tab-indented; each entry the image's own manifest.
    let shown = sb.den(&["manifest", "inspect", &list]).ok();
    assert!(shown.starts_with("{\n\t\"schemaVersion\": 2,\n\t\"mediaType\": \"application/vnd.oci.image.index.v1+json\""), "{shown}");
    let v = json(&shown);
    assert_eq!(arches(&v), ["amd64", "arm64"]);
    let arm_digest = v["manifests"][1]["digest"].as_str().unwrap().to_string();
    let inspect = json(&sb.den(&["image", "inspect", "app:arm64"]).ok());
    assert_eq!(inspect[0]["Architecture"], "arm64");

    // annotate by image name; add replaces an entry rather than doubling it.
    sb.den(&[
        "manifest",
        "annotate",
        &list,
        "app:arm64",
        "--variant",
        "v8",
    ])
    .ok();
    let id = sb.den(&["manifest", "add", &list, "app:amd64"]).ok();
    assert_eq!(id.trim().len(), 64, "{id}");
    let v = json(&sb.den(&["manifest", "inspect", &list]).ok());
    assert_eq!(arches(&v), ["amd64", "arm64"]);
    assert_eq!(v["manifests"][1]["platform"]["variant"], "v8");

    // `run LIST` runs the host's entry (podman's rule); a platform the list lacks is refused.
    assert_eq!(
        sb.den(&["run", "--rm", &list, "echo", "from-list"]).ok(),
        "from-list\n"
    );
    sb.den(&["run", "--rm", "--platform", "linux/s390x", &list, "true"])
        .fails_with(125, "no matching manifest for linux/s390x");

    // Bad input: one line naming it, the list unchanged; create refuses an existing list.
    let before = sb.den(&["manifest", "inspect", &list]).ok();
    sb.den(&[
        "manifest",
        "annotate",
        &list,
        "app:arm64",
        "--arch",
        "arm/64",
    ])
    .fails_with(1, "invalid architecture \"arm/64\"");
    sb.den(&["manifest", "annotate", &list, "busybox:nope"])
        .fails_with(1, "has no entry for busybox:nope");
    sb.den(&["manifest", "create", &list, "app:amd64"])
        .fails_with(1, "already exists");
    sb.den(&["manifest", "push", "--format", "zip", &list])
        .fails_with(1, "invalid manifest list format");
    // podman's --authfile: a file named must be there.
    sb.den(&[
        "manifest",
        "push",
        "--authfile",
        "/nonexistent/auth.json",
        &list,
    ])
    .fails_with(1, "/nonexistent/auth.json");
    assert_eq!(sb.den(&["manifest", "inspect", &list]).ok(), before);

    // Push: the images, each manifest by digest, the list under its tag; the digest on stdout.
    let pushed = sb.den(&["manifest", "push", "--rm", &list]).ok();
    let digest = pushed.trim().to_string();
    assert!(digest.starts_with("sha256:"), "{pushed}");
    assert_eq!(
        sb.den(&["manifest", "exists", &list]).code,
        1,
        "--rm removed it"
    );
    // What the registry holds is what was pushed, byte for byte (inspect reads it there now).
    let remote = sb.den(&["manifest", "inspect", &list]).ok();
    assert_eq!(
        format!("sha256:{}", crate::sandbox::sha256_hex(remote.as_bytes())),
        digest
    );

    // Pulled back per platform, in another store.
    let other = Sandbox::new();
    other
        .den(&["pull", "-q", "--platform", "linux/arm64", &list])
        .ok();
    let got = json(&other.den(&["image", "inspect", &list]).ok());
    assert_eq!(got[0]["Architecture"], "arm64");
    assert!(
        got[0]["RepoDigests"].to_string().contains(&arm_digest),
        "{got}"
    );
    other
        .den(&["pull", "-q", "--platform", "linux/amd64", &list])
        .ok();
    let got = json(&other.den(&["image", "inspect", &list]).ok());
    assert_eq!(got[0]["Architecture"], "amd64");

    // An entry whose local image was removed (and that came from no registry) says how to
    // mend the list.
    let lonely = format!("{}/manifests/lonely:1", reg.addr);
    sb.den(&["manifest", "create", &lonely, "app:amd64"]).ok();
    let amd_id = json(&sb.den(&["image", "inspect", "app:amd64"]).ok())[0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    sb.den(&["rmi", "-f", &amd_id]).ok();
    sb.den(&["manifest", "push", &lonely])
        .fails_with(1, "has no image in the store")
        .fails_with(1, "den manifest remove");
}

#[test]
fn remote_entries_are_recorded_by_digest_and_pushed_from_their_registry() {
    let sb = Sandbox::new();
    let reg = registry();
    let multi = reg.image("test/multi");
    let list = format!("{}/manifests/remote:1", reg.addr);

    // The index's host entry (as a pull picks it), by digest: nothing is pulled.
    sb.den(&["manifest", "create", &list, &multi]).ok();
    let v = json(&sb.den(&["manifest", "inspect", &list]).ok());
    assert_eq!(arches(&v), ["amd64"]);
    assert!(
        sb.den(&["images", "-q"]).ok().is_empty(),
        "no image was pulled"
    );
    // --all: every platform of the index.
    sb.den(&["manifest", "add", "--all", &list, &multi]).ok();
    let v = json(&sb.den(&["manifest", "inspect", &list]).ok());
    let mut a = arches(&v);
    a.sort();
    assert_eq!(a, ["amd64", "arm64"]);
    // A lone manifest's platform comes from its configuration (podman's docker:// prefix
    // is taken).
    let single = format!("{}/manifests/single:1", reg.addr);
    let busybox = format!("docker://{}", reg.image("library/busybox"));
    sb.den(&["manifest", "create", &single, &busybox]).ok();
    let v = json(&sb.den(&["manifest", "inspect", &single]).ok());
    assert_eq!(arches(&v), ["amd64"]);
    assert_eq!(
        v["manifests"][0]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );

    // `run` pulls the host's entry by digest from where it was found.
    assert_eq!(
        sb.den(&["run", "--rm", &single, "echo", "pulled"]).ok(),
        "pulled\n"
    );

    // Pushing (here in v2s2, to another name) pulls each entry by digest (verified), then
    // pushes it.
    let dest = format!("{}/manifests/remote:v2s2", reg.addr);
    let digest = sb
        .den(&["manifest", "push", "-q", "--format", "v2s2", &list, &dest])
        .ok();
    assert!(digest.starts_with("sha256:"), "{digest}");
    let remote = json(&sb.den(&["manifest", "inspect", &dest]).ok());
    assert_eq!(
        remote["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let other = Sandbox::new();
    other
        .den(&["pull", "-q", "--platform", "linux/arm64", &dest])
        .ok();
    let got = json(&other.den(&["image", "inspect", &dest]).ok());
    assert_eq!(got[0]["Architecture"], "arm64");

    // A registry's manifest inspected directly, as docker prints it.
    let shown = sb.den(&["manifest", "inspect", &multi]).ok();
    assert!(shown.starts_with("{\n\t"), "{shown}");
    assert_eq!(json(&shown)["manifests"].as_array().unwrap().len(), 2);

    // rm: each list, an unknown one reported with exit 1; the images stay.
    sb.den(&["manifest", "rm", &list]).ok();
    sb.den(&["manifest", "rm", &list])
        .fails_with(1, "no such manifest list");
    // rmi removes a list too, and leaves the images.
    let removed = sb.den(&["rmi", &single]).ok();
    assert!(removed.starts_with("Untagged: "), "{removed}");
    assert_eq!(sb.den(&["manifest", "exists", &single]).code, 1);
    assert!(!sb.den(&["images", "-q"]).ok().is_empty());
}

#[test]
fn build_for_several_platforms_fills_a_list_from_each_platforms_base() {
    let sb = Sandbox::new();
    let reg = registry();
    let ctx = sb.home.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello"), "hello from the build\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {}\nARG TARGETARCH\nENV BUILT_FOR=$TARGETARCH\nCOPY hello /hello\n",
            reg.image("test/multi")
        ),
    )
    .unwrap();
    let list = format!("{}/manifests/built:1", reg.addr);
    let ctx_arg = ctx.to_str().unwrap();

    // Several platforms need a list; a bad platform is named.
    sb.den(&["build", "--platform", "linux/amd64,linux/arm64", ctx_arg])
        .fails_with(125, "needs --manifest LIST");
    sb.den(&[
        "build",
        "--platform",
        "linux/amd64,linux",
        "--manifest",
        &list,
        ctx_arg,
    ])
    .fails_with(125, "invalid platform \"linux\"");
    sb.den(&[
        "build",
        "--platform",
        "linux/amd64,linux/arm64",
        "--manifest",
        &list,
        "-t",
        "x:1",
        ctx_arg,
    ])
    .fails_with(125, "-t names one image");
    assert_eq!(sb.den(&["manifest", "exists", &list]).code, 1);

    let out = sb
        .den(&[
            "build",
            "-q",
            "--platform",
            "linux/amd64,linux/arm64",
            "--manifest",
            &list,
            ctx_arg,
        ])
        .ok();
    let ids: Vec<&str> = out.lines().collect();
    assert_eq!(ids.len(), 2, "{out}");
    let v = json(&sb.den(&["manifest", "inspect", &list]).ok());
    assert_eq!(arches(&v), ["amd64", "arm64"]);
    // Each image is its platform's: the base's entry for it (the fixture labels each), the
    // platform in its configuration, TARGETARCH set.
    for (id, arch) in ids.iter().zip(["amd64", "arm64"]) {
        let i = json(&sb.den(&["image", "inspect", id]).ok());
        assert_eq!(i[0]["Architecture"], arch);
        assert_eq!(i[0]["Config"]["Labels"]["arch"], arch);
        assert!(
            i[0]["Config"]["Env"]
                .to_string()
                .contains(&format!("BUILT_FOR={arch}"))
        );
    }
    // The host's entry runs.
    assert_eq!(
        sb.den(&["run", "--rm", &list, "cat", "/hello"]).ok(),
        "hello from the build\n"
    );
    // Pushed and pulled back for arm64 elsewhere.
    sb.den(&["manifest", "push", "-q", &list]).ok();
    let other = Sandbox::new();
    other
        .den(&["pull", "-q", "--platform", "linux/arm64", &list])
        .ok();
    let i = json(&other.den(&["image", "inspect", &list]).ok());
    assert_eq!(i[0]["Architecture"], "arm64");
    assert!(
        i[0]["Config"]["Env"]
            .to_string()
            .contains("BUILT_FOR=arm64")
    );
}

/// Whether this host runs arm64 programs in containers (qemu-user registered with the F flag).
fn runs_arm64() -> bool {
    std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64").is_ok_and(|t| {
        t.starts_with("enabled")
            && t.lines()
                .any(|l| l.strip_prefix("flags:").is_some_and(|f| f.contains('F')))
    })
}

#[test]
fn run_steps_for_a_foreign_platform_need_an_emulator() {
    let sb = Sandbox::new();
    let df = format!(
        "FROM {}\nENV A=1\nRUN true\n",
        registry().image("test/multi")
    );
    sb.den(&["images"]).ok();
    let before = sb.store_listing();
    let out = sb.den_input(
        &["build", "-q", "--platform", "linux/arm64", "-"],
        df.as_bytes(),
    );
    if runs_arm64() {
        // The fixture's arm64 image holds an amd64 busybox, which the host runs either way.
        out.ok();
    } else {
        out.fails_with(1, "cannot run steps for linux/arm64")
            .fails_with(1, "install qemu-user-static");
        assert!(
            out.stderr.contains("Dockerfile (stdin):3"),
            "{}",
            out.stderr
        );
        assert_eq!(
            sb.store_listing(),
            before,
            "nothing ran, nothing was stored"
        );
    }
    // Without RUN any platform builds.
    let df = format!("FROM {}\nENV A=1\n", registry().image("test/multi"));
    sb.den_input(
        &["build", "-q", "--platform", "linux/arm64", "-"],
        df.as_bytes(),
    )
    .ok();
}

#[test]
fn hostile_indexes_are_refused_and_entries_verified() {
    let sb = Sandbox::new();
    let liar = crate::hostile::liar();
    let list = "manifests/hostile:1";
    sb.den(&["manifest", "create", list]).ok();
    let before = sb.den(&["manifest", "inspect", list]).ok();
    sb.den(&["manifest", "add", list, &liar.image("lie/wide-index")])
        .fails_with(1, "has 300 entries, more than den keeps in a list (256)");
    sb.den(&[
        "manifest",
        "add",
        "--all",
        list,
        &liar.image("lie/nested-index"),
    ])
    .fails_with(1, "\"nested index\"");
    let evil = sb.den(&[
        "manifest",
        "add",
        "--all",
        list,
        &liar.image("lie/evil-platform"),
    ]);
    evil.fails_with(1, "invalid architecture");
    assert!(!evil.stderr.contains('\u{1b}'), "{}", evil.stderr);
    assert_eq!(sb.den(&["manifest", "inspect", list]).ok(), before);

    // An entry is recorded by the digest the index claims; using it checks the manifest's
    // bytes against that digest, and refuses what the registry sent instead.
    let lying = liar.image("lie/index-manifest");
    sb.den(&["manifest", "add", list, &lying]).ok();
    let run = sb.den(&["run", "--rm", list, "true"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("sent a manifest whose digest is"),
        "{}",
        run.stderr
    );
    assert!(
        sb.den(&["images", "-q"]).ok().is_empty(),
        "nothing was stored"
    );
}
