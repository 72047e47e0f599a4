//! `den save` and `den load`: through pipes and files, several images, both formats, altered
//! archives, and round trips with podman (run as this same unprivileged user, in a private store).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::sandbox::{Out, Sandbox, busybox, env, registry, run, which};

fn layered() -> String {
    registry().image("test/layered")
}

/// `sh -c SCRIPT` in `sb`'s environment, with den's binaries first on PATH.
fn sh(sb: &Sandbox, script: &str) -> Out {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(script)
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:{}",
                env().bin.display(),
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
            ),
        )
        .env("USER", std::env::var("USER").unwrap_or_default())
        .current_dir(&sb.dir)
        .stdin(Stdio::null());
    for (k, v) in sandbox_env(sb) {
        c.env(k, v);
    }
    std::fs::create_dir_all(&sb.runtime).unwrap();
    run(c)
}

fn sandbox_env(sb: &Sandbox) -> [(&'static str, PathBuf); 3] {
    [
        ("HOME", sb.home.clone()),
        ("XDG_RUNTIME_DIR", sb.runtime.clone()),
        ("XDG_CONFIG_HOME", sb.config_home.clone()),
    ]
}

/// A shell prefix that runs the command after it in `sb`'s environment.
fn in_env(sb: &Sandbox) -> String {
    std::fs::create_dir_all(&sb.runtime).unwrap();
    let vars: Vec<String> = sandbox_env(sb)
        .iter()
        .map(|(k, v)| format!("{k}='{}'", v.display()))
        .collect();
    format!("env {}", vars.join(" "))
}

fn id_of(sb: &Sandbox, image: &str) -> String {
    sb.den(&["image", "inspect", "--format", "{{.Id}}", image])
        .ok()
        .trim()
        .to_string()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

#[test]
fn save_and_load_through_a_shell_pipe_then_run() {
    let a = Sandbox::new();
    let b = Sandbox::new();
    let img = busybox();
    a.den(&["pull", "-q", &img]).ok();
    let out = sh(&a, &format!("den save {img} | {} den load", in_env(&b)));
    assert_eq!(out.ok(), format!("Loaded image: {img}\n"), "{}", out.stderr);
    assert_eq!(id_of(&b, &img), id_of(&a, &img));
    assert_eq!(
        b.den(&["run", "--rm", &img, "echo", "loaded"]).ok(),
        "loaded\n"
    );
    // Loading the same archive again changes nothing but says the same.
    let again = sh(
        &a,
        &format!("den image save {img} | {} den image load -q", in_env(&b)),
    );
    assert_eq!(again.ok(), format!("Loaded image: {img}\n"));
    assert_eq!(b.den(&["images", "-q"]).ok().lines().count(), 1);

    // docker's refusals: a terminal on stdout, nothing on stdin, an unknown image.
    let tty = a.den_pty(&[], &["save", &img]);
    assert_eq!(tty.code, 1, "{}", tty.out());
    assert!(
        tty.out()
            .contains("cowardly refusing to save to a terminal. Use the -o flag or redirect"),
        "{}",
        tty.out()
    );
    b.den(&["load"])
        .fails_with(1, "requested load from stdin, but stdin is empty");
    let missing = a.dir.join("nothing.tar");
    a.den(&["save", "-o", path_str(&missing), "nosuch:1"])
        .fails_with(1, "no such image: nosuch:1");
    assert!(!missing.exists());
    a.den(&["load", "-i", path_str(&missing)])
        .fails_with(1, "cannot open");
    let bad = a.den(&["save", "--format", "zip", "-o", path_str(&missing), &img]);
    assert_eq!(bad.code, 125, "{}", bad.stderr);
    assert!(bad.stderr.contains("invalid value 'zip'"), "{}", bad.stderr);
}

#[test]
fn files_hold_several_images_with_their_names() {
    let a = Sandbox::new();
    let (bb, lay) = (busybox(), layered());
    a.den(&["pull", "-q", &bb]).ok();
    a.den(&["pull", "-q", &lay]).ok();
    let file = a.dir.join("two.tar");
    a.den(&["save", "-o", path_str(&file), &bb, &lay]).ok();
    // Written under a temporary name and renamed: nothing else is left next to it.
    let names: Vec<String> = std::fs::read_dir(&a.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("two.tar"))
        .collect();
    assert_eq!(names, ["two.tar"]);

    let b = Sandbox::new();
    let out = b.den(&["load", "-i", path_str(&file)]).ok();
    assert_eq!(out, format!("Loaded image: {bb}\nLoaded image: {lay}\n"));
    let images = b.den(&["images"]).ok();
    assert_eq!(images.lines().count(), 3, "{images}");
    assert_eq!(id_of(&b, &lay), id_of(&a, &lay));
    // The layered image's gzip, zstd and plain layers, whiteouts and owners survive.
    let script = "cat /srv/from-zstd /srv/from-plain /srv/replaced/new; ls /srv/replaced; \
                  test -e /srv/deleted || echo deleted; stat -c %u:%g /srv/app-owned; echo $LAYERED";
    let owner = if b.mapped() { "1000:1000" } else { "0:0" };
    assert_eq!(
        b.den(&["run", "--rm", &lay, "sh", "-c", script]).ok(),
        format!("zstd layer\nplain layer\nnew\nnew\ndeleted\n{owner}\nyes\n")
    );

    // An image saved by id has no name.
    let id = id_of(&a, &bb);
    let by_id = a.dir.join("id.tar");
    a.den(&["save", "-o", path_str(&by_id), &id]).ok();
    let c = Sandbox::new();
    let out = c.den(&["load", "-i", path_str(&by_id)]).ok();
    assert_eq!(out, format!("Loaded image ID: {id}\n"));
    let images = c.den(&["images"]).ok();
    assert!(
        images.lines().nth(1).unwrap().starts_with("<none>"),
        "{images}"
    );
    assert_eq!(
        c.den(&[
            "run",
            "--rm",
            id.trim_start_matches("sha256:"),
            "echo",
            "by id"
        ])
        .ok(),
        "by id\n"
    );
}

#[test]
fn oci_archives_keep_the_id_and_the_repo_digest() {
    let a = Sandbox::new();
    let img = layered();
    a.den(&["pull", "-q", &img]).ok();
    let file = a.dir.join("oci.tar");
    a.den(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        path_str(&file),
        &img,
    ])
    .ok();
    let listing = run({
        let mut c = Command::new("tar");
        c.arg("tf").arg(&file);
        c
    })
    .ok();
    assert!(listing.lines().any(|l| l == "oci-layout"), "{listing}");
    assert!(!listing.lines().any(|l| l == "manifest.json"), "{listing}");

    let b = Sandbox::new();
    b.den(&["load", "-i", path_str(&file)]).ok();
    let show = "{{.Id}} {{json .RepoDigests}}";
    let want = a.den(&["image", "inspect", "--format", show, &img]).ok();
    assert_eq!(
        b.den(&["image", "inspect", "--format", show, &img]).ok(),
        want
    );
    assert!(want.contains("@sha256:"), "{want}");
    assert_eq!(
        b.den(&["run", "--rm", &img, "cat", "/srv/from-zstd"]).ok(),
        "zstd layer\n"
    );
}

/// Flip a byte of the data of entry `name` in a tar archive.
fn tamper(archive: &Path, name_prefix: &str, at: u64) -> PathBuf {
    let bytes = std::fs::read(archive).unwrap();
    let mut pos = None;
    let mut a = tar::Archive::new(&bytes[..]);
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name.starts_with(name_prefix) && e.size() > at {
            pos = Some(e.raw_file_position() + at);
            break;
        }
    }
    let mut bytes = bytes;
    bytes[pos.expect("entry found") as usize] ^= 0x01;
    let out = archive.with_extension("bad.tar");
    std::fs::write(&out, bytes).unwrap();
    out
}

#[test]
fn altered_archives_are_refused_and_the_store_is_unchanged() {
    let a = Sandbox::new();
    let img = busybox();
    a.den(&["pull", "-q", &img]).ok();
    let id = id_of(&a, &img);
    let layer = a
        .den(&[
            "image",
            "inspect",
            "--format",
            "{{index .RootFS.Layers 0}}",
            &img,
        ])
        .ok();
    let layer_entry = format!(
        "blobs/sha256/{}",
        layer.trim().trim_start_matches("sha256:")
    );
    let file = a.dir.join("good.tar");
    a.den(&["save", "-o", path_str(&file), &img]).ok();

    let b = Sandbox::new();
    b.den(&["pull", "-q", &layered()]).ok();
    let before = b.store_listing();
    let images_before = b.den(&["images"]).ok();
    // A byte inside the layer's data (well past its first header).
    let bad = tamper(&file, &layer_entry, 4096);
    let out = b.den(&["load", "-i", path_str(&bad)]);
    out.fails_with(1, "does not match");
    assert!(out.stderr.contains(&layer_entry), "{}", out.stderr);
    assert_eq!(b.store_listing(), before);
    assert_eq!(b.den(&["images"]).ok(), images_before);
    // The same through a pipe, and in an OCI archive (a compressed blob).
    let out = sh(&b, &format!("den load < '{}'", bad.display()));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let oci = a.dir.join("oci.tar");
    a.den(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        path_str(&oci),
        &img,
    ])
    .ok();
    let bad = tamper(&oci, "blobs/sha256/", 100);
    b.den(&["load", "-i", path_str(&bad)])
        .fails_with(1, "does not match its digest");
    assert_eq!(b.store_listing(), before);
    // Intact, the archive loads.
    b.den(&["load", "-i", path_str(&file)]).ok();
    assert_eq!(id_of(&b, &img), id);
}

#[test]
fn gzip_compressed_archives_load() {
    let a = Sandbox::new();
    let b = Sandbox::new();
    let img = busybox();
    a.den(&["pull", "-q", &img]).ok();
    let gz = a.dir.join("bb.tar.gz");
    sh(
        &a,
        &format!("den save {img} | gzip -1 > '{}'", gz.display()),
    )
    .ok();
    assert_eq!(&std::fs::read(&gz).unwrap()[..2], &[0x1f, 0x8b]);
    assert_eq!(
        b.den(&["load", "-i", path_str(&gz)]).ok(),
        format!("Loaded image: {img}\n")
    );
    assert_eq!(b.den(&["run", "--rm", &img, "echo", "gz"]).ok(), "gz\n");
}

// ------------------------------------------------------------------------------------ podman

/// podman as this user, with a private store (vfs: no mounts needed to save or load) that is
/// removed when the value is dropped.
struct Podman {
    dir: PathBuf,
}

impl Podman {
    fn new(sb: &Sandbox) -> Podman {
        assert!(
            which("podman").is_some(),
            "podman is missing: run integration/setup.sh as root once (it installs podman)"
        );
        let dir = sb.dir.join("podman");
        for d in ["home", "rt", "tmp"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        Podman { dir }
    }

    fn run(&self, args: &[&str]) -> Out {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                // Without subordinate ids podman cannot chown either (den keeps owners then only
                // inside its own namespace, podman not at all).
                "--storage-opt",
                "vfs.ignore_chown_errors=true",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
                "--runtime",
                "runc",
            ])
            .args(args)
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .env("HOME", self.dir.join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.join("rt"))
            .env("USER", std::env::var("USER").unwrap_or_default())
            .stdin(Stdio::null());
        run(c)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Its files belong to subordinate ids: podman removes them from its user namespace.
        let _ = self.run(&["system", "reset", "--force"]);
    }
}

fn podman_ok(p: &Podman, args: &[&str]) -> String {
    let out = p.run(args);
    assert_eq!(
        out.code,
        0,
        "podman {args:?} failed\nstdout: {}\nstderr: {}",
        out.out(),
        out.stderr
    );
    out.out()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn podman_loads_what_den_saves_and_den_loads_what_podman_saves() {
    let a = Sandbox::new();
    let img = busybox();
    let lay = layered();
    a.den(&["pull", "-q", &img]).ok();
    a.den(&["pull", "-q", &lay]).ok();
    let id = id_of(&a, &img);
    let env = a
        .den(&["image", "inspect", "--format", "{{json .Config.Env}}", &img])
        .ok();
    let p = Podman::new(&a);

    // den's docker archive, one image: podman reads it as an OCI layout.
    let one = a.dir.join("one.tar");
    a.den(&["save", "-o", path_str(&one), &img]).ok();
    let out = podman_ok(&p, &["load", "-i", path_str(&one)]);
    assert!(out.contains(&format!("Loaded image: {img}")), "{out}");
    let inspect = |name: &str, f: &str| {
        podman_ok(&p, &["image", "inspect", "--format", f, name])
            .trim()
            .to_string()
    };
    assert_eq!(format!("sha256:{}", inspect(&img, "{{.Id}}")), id);
    assert_eq!(json(&inspect(&img, "{{json .Config.Env}}")), json(&env));
    assert_eq!(
        podman_ok(
            &p,
            &["run", "--rm", "--net", "none", &img, "echo", "in podman"]
        ),
        "in podman\n"
    );
    // Two images: podman reads manifest.json and keeps both names.
    let two = a.dir.join("two.tar");
    a.den(&["save", "-o", path_str(&two), &img, &lay]).ok();
    podman_ok(&p, &["rmi", "-a", "-f"]);
    let out = podman_ok(&p, &["load", "-i", path_str(&two)]);
    assert!(out.contains(&format!("Loaded image: {lay}")), "{out}");
    assert_eq!(
        format!("sha256:{}", inspect(&lay, "{{.Id}}")),
        id_of(&a, &lay)
    );
    // den's OCI archive.
    let oci = a.dir.join("oci.tar");
    a.den(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        path_str(&oci),
        &img,
    ])
    .ok();
    podman_ok(&p, &["rmi", "-a", "-f"]);
    podman_ok(&p, &["load", "-i", path_str(&oci)]);
    assert_eq!(format!("sha256:{}", inspect(&img, "{{.Id}}")), id);

    // podman's archives, both formats, load in den and run.
    for format in ["docker-archive", "oci-archive"] {
        let file = a.dir.join(format!("podman-{format}.tar"));
        podman_ok(
            &p,
            &["save", "--format", format, "-o", path_str(&file), &img],
        );
        let b = Sandbox::new();
        let out = b.den(&["load", "-i", path_str(&file)]).ok();
        assert_eq!(out, format!("Loaded image: {img}\n"), "{format}");
        assert_eq!(id_of(&b, &img), id, "{format}");
        assert_eq!(
            b.den(&["run", "--rm", &img, "echo", format]).ok(),
            format!("{format}\n")
        );
    }
}
