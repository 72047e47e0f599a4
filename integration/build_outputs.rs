//! What a build produces: `--format docker|oci` (the manifest's media types, as inspect and a
//! push show them), `--output` (the final stage's filesystem as a directory, a tar or an OCI
//! archive) and the step cache exported and imported with `--cache-to`/`--cache-from`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sandbox::{Registry, Sandbox, busybox, env, run};

/// A build context under the sandbox with this Dockerfile.
fn context(sb: &Sandbox, name: &str, dockerfile: &str) -> PathBuf {
    let dir = sb.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    dir
}

fn build(sb: &Sandbox, dir: &Path, extra: &[&str]) -> crate::sandbox::Out {
    let d = dir.to_string_lossy().into_owned();
    let mut args = vec!["build", "-q"];
    args.extend_from_slice(extra);
    args.push(&d);
    sb.den(&args)
}

/// The raw manifest of `reference` in a registry, as skopeo reads it.
fn remote_manifest(reference: &str) -> serde_json::Value {
    let out = run({
        let mut c = Command::new("skopeo");
        c.args(["inspect", "--tls-verify=false", "--raw"])
            .arg(format!("docker://{reference}"))
            .env("HOME", env().tmp.join("skopeo-home"));
        c
    });
    serde_json::from_str(&out.ok()).unwrap()
}

#[test]
fn format_docker_writes_a_schema_2_manifest_that_inspect_and_push_carry() {
    let mut sb = Sandbox::new();
    let reg = Registry::start("bout-format");
    let df = format!("FROM {}\nRUN echo made > /made\n", busybox());
    let dir = context(&sb, "fmt", &df);
    let docker_name = format!("{}/fmt/docker:1", reg.addr);
    let oci_name = format!("{}/fmt/oci:1", reg.addr);

    let id = build(&sb, &dir, &["--format", "docker", "-t", &docker_name]).ok();
    let ty = sb
        .den(&[
            "image",
            "inspect",
            "--format",
            "{{.ManifestType}}",
            &docker_name,
        ])
        .ok();
    assert_eq!(
        ty.trim(),
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    sb.den(&["push", &docker_name]).ok();
    let m = remote_manifest(&docker_name);
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    for l in m["layers"].as_array().unwrap() {
        let t = l["mediaType"].as_str().unwrap();
        assert!(
            t.starts_with("application/vnd.docker.image.rootfs.diff.tar"),
            "{m}"
        );
    }

    // The default is OCI; the same steps make the same image id in either format.
    let again = build(&sb, &dir, &["-t", &oci_name]).ok();
    assert_eq!(again, id);
    sb.den(&["push", &oci_name]).ok();
    let m = remote_manifest(&oci_name);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    for l in m["layers"].as_array().unwrap() {
        let t = l["mediaType"].as_str().unwrap();
        assert!(
            t.starts_with("application/vnd.oci.image.layer.v1.tar"),
            "{m}"
        );
    }

    // podman's BUILDAH_FORMAT; the flag wins over it.
    sb.set_env("BUILDAH_FORMAT", "docker");
    build(&sb, &dir, &["-t", "envfmt"]).ok();
    let ty = sb
        .den(&[
            "image",
            "inspect",
            "--format",
            "{{.ManifestType}}",
            "envfmt",
        ])
        .ok();
    assert_eq!(
        ty.trim(),
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    build(&sb, &dir, &["--format", "oci", "-t", "envfmt"]).ok();
    let ty = sb
        .den(&[
            "image",
            "inspect",
            "--format",
            "{{.ManifestType}}",
            "envfmt",
        ])
        .ok();
    assert_eq!(ty.trim(), "application/vnd.oci.image.manifest.v1+json");

    // A format den does not write: one line, before anything is built.
    sb.set_env("BUILDAH_FORMAT", "");
    let before = sb.store_listing();
    build(&sb, &dir, &["--format", "v2s2", "-t", "bad"])
        .fails_with(125, "unrecognized image format \"v2s2\"");
    assert_eq!(sb.store_listing(), before);
}

/// The paths in a tar, with a `/` after directories.
fn tar_paths(bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            p.trim_start_matches("./").to_string()
        })
        .collect()
}

/// What `-o` writes: the final stage's filesystem (whiteouts applied, the image's symlinks
/// kept as links, files the user's own), as a directory, a tar or an OCI archive; the image
/// is stored and tagged as well (podman's behaviour).
#[test]
fn output_writes_the_final_filesystem_as_a_directory_a_tar_or_an_oci_archive() {
    use std::os::unix::fs::MetadataExt;
    let sb = Sandbox::new();
    // Single-uid mode has only root inside: the chown to another user is for mapped mode.
    let chown = if sb.mapped() {
        " && chown 1000:1000 /app/greeting"
    } else {
        ""
    };
    let df = format!(
        "FROM {} AS base\nRUN echo gone > /gone && mkdir /app && echo hello > /app/greeting\n\
         RUN rm /gone && ln -s /etc /app/etc-link{chown}\n",
        busybox()
    );
    let dir = context(&sb, "out", &df);

    // A directory: -o DIR and type=local.
    let out = sb.dir.join("outdir");
    let id = build(&sb, &dir, &["-t", "outimg", "-o", &out.to_string_lossy()]).ok();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        std::fs::read_to_string(out.join("app/greeting")).unwrap(),
        "hello\n"
    );
    assert!(!out.join("gone").exists());
    let link = std::fs::symlink_metadata(out.join("app/etc-link")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(out.join("app/etc-link")).unwrap(),
        Path::new("/etc")
    );
    let me = std::fs::metadata(&sb.dir).unwrap().uid();
    assert_eq!(
        std::fs::metadata(out.join("app/greeting")).unwrap().uid(),
        me
    );
    assert!(out.join("bin/sh").exists() || out.join("bin/busybox").exists());
    // The image is in the store under its tag too.
    let stored = sb
        .den(&["image", "inspect", "--format", "{{.Id}}", "outimg"])
        .ok();
    assert_eq!(stored.trim(), id.trim());

    let local = sb.dir.join("local2");
    let spec = format!("type=local,dest={}", local.display());
    build(&sb, &dir, &["-o", &spec]).ok();
    assert!(local.join("app/greeting").is_file());

    // A directory whose entry is a symlink planted to a victim: the link is replaced by the
    // image's directory, never written through.
    let victim = sb.dir.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let planted = sb.dir.join("planted");
    std::fs::create_dir_all(&planted).unwrap();
    std::os::unix::fs::symlink(&victim, planted.join("app")).unwrap();
    build(&sb, &dir, &["-o", &planted.to_string_lossy()]).ok();
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
    let app = std::fs::symlink_metadata(planted.join("app")).unwrap();
    assert!(app.is_dir(), "{app:?}");
    assert!(planted.join("app/greeting").is_file());

    // A tar in a file, and on stdout (where the image id then does not go).
    let tarfile = sb.dir.join("fs.tar");
    let spec = format!("type=tar,dest={}", tarfile.display());
    build(&sb, &dir, &["-o", &spec]).ok();
    let paths = tar_paths(&std::fs::read(&tarfile).unwrap());
    assert!(paths.iter().any(|p| p == "app/greeting"), "{paths:?}");
    assert!(!paths.iter().any(|p| p == "gone"), "{paths:?}");
    let piped = build(&sb, &dir, &["-o", "-"]);
    let paths = tar_paths(piped.ok_bytes());
    assert!(paths.iter().any(|p| p == "app/etc-link"), "{paths:?}");
    // The tar alone: it ends with its zero blocks, no image id after them.
    assert_eq!(piped.stdout.len() % 512, 0);
    assert_eq!(piped.stdout.last(), Some(&0));
    // Never onto a terminal.
    let d = dir.to_string_lossy().into_owned();
    let tty = sb.den_pty(&[], &["build", "-q", "-o", "-", &d]);
    assert_eq!(tty.code, 1, "{}", tty.out());
    assert!(
        tty.out()
            .contains("cowardly refusing to write the build's tar to a terminal"),
        "{}",
        tty.out()
    );

    // An OCI archive that den load takes back.
    let oci = sb.dir.join("img.tar");
    let spec = format!("type=oci,dest={}", oci.display());
    build(&sb, &dir, &["-t", "ociout:1", "-o", &spec]).ok();
    let paths = tar_paths(&std::fs::read(&oci).unwrap());
    assert!(paths.iter().any(|p| p == "index.json"), "{paths:?}");
    assert!(paths.iter().any(|p| p == "oci-layout"), "{paths:?}");
    sb.den(&["rmi", "outimg", "ociout:1"]).ok();
    sb.den(&["load", "-i", &oci.to_string_lossy()]).ok();
    let hello = sb
        .den(&["run", "--rm", "ociout:1", "cat", "/app/greeting"])
        .ok();
    assert_eq!(hello, "hello\n");

    // A docker archive, as `docker load` takes it; buildx's --load (den stores every image).
    let archive = sb.dir.join("docker.tar");
    let spec = format!("type=docker,dest={}", archive.display());
    build(&sb, &dir, &["--load", "-t", "dockerout:1", "-o", &spec]).ok();
    let paths = tar_paths(&std::fs::read(&archive).unwrap());
    assert!(paths.iter().any(|p| p == "manifest.json"), "{paths:?}");
    sb.den(&["rmi", "dockerout:1"]).ok();
    sb.den(&["load", "-i", &archive.to_string_lossy()]).ok();
    let hello = sb
        .den(&["run", "--rm", "dockerout:1", "cat", "/app/greeting"])
        .ok();
    assert_eq!(hello, "hello\n");

    // Outputs den lacks: one line, nothing built.
    let before = sb.store_listing();
    build(&sb, &dir, &["-o", "type=registry,ref=x/y"]).fails_with(125, "type=registry");
    build(&sb, &dir, &["-o", "type=local"]).fails_with(125, "needs dest=DIR");
    assert_eq!(sb.store_listing(), before);
}

/// The blob files of an OCI layout.
fn layout_blobs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// `--cache-to type=local` then `--cache-from type=local` on an empty store: every step comes
/// from the cache (the RUN's random stamp is the first build's) and the image id is the same; a
/// missing, malformed or tampered cache is a warning and the steps run.
#[test]
fn a_local_cache_exported_then_imported_into_an_empty_store_reuses_every_step() {
    let sb = Sandbox::new();
    let df = format!(
        "FROM {}\nRUN cat /proc/sys/kernel/random/uuid > /stamp\nCOPY f /f\nENV X=1\nRUN cat /stamp /f > /both\n",
        busybox()
    );
    let dir = context(&sb, "cache", &df);
    std::fs::write(dir.join("f"), "context file\n").unwrap();
    let cache = sb.dir.join("cache-layout");
    let to = format!("type=local,dest={}", cache.display());
    let first = build(&sb, &dir, &["-t", "c1", "--cache-to", &to]).ok();
    assert!(cache.join("index.json").is_file());
    assert!(cache.join("oci-layout").is_file());
    let stamp = sb.den(&["run", "--rm", "c1", "cat", "/both"]).ok();

    // A second user's empty store: nothing runs, the same image.
    let other = Sandbox::new();
    let from = format!("type=local,src={}", cache.display());
    let d = dir.to_string_lossy().into_owned();
    let out = other.den(&["build", "--cache-from", &from, "-t", "c2", &d]);
    let second = out.ok();
    assert_eq!(second.trim(), first.trim(), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("--> Using cache").count(),
        4,
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--> cache from"), "{}", out.stderr);
    assert_eq!(
        other.den(&["run", "--rm", "c2", "cat", "/both"]).ok(),
        stamp
    );

    // Missing and malformed caches: a warning, and the build goes on.
    let fresh = Sandbox::new();
    let missing = format!("type=local,src={}", sb.dir.join("nowhere").display());
    let out = fresh.den(&["build", "--cache-from", &missing, &d]);
    out.ok();
    assert!(
        out.stderr.contains("warning: --cache-from"),
        "{}",
        out.stderr
    );
    let junk = sb.dir.join("junk-cache");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("index.json"), "{not json").unwrap();
    let from_junk = format!("type=local,src={}", junk.display());
    let out = fresh.den(&["build", "--cache-from", &from_junk, &d]);
    out.ok();
    assert!(
        out.stderr.contains("index.json is not valid"),
        "{}",
        out.stderr
    );

    // A tampered layer: the digest check refuses it, the step runs again (a new stamp).
    let tampered = Sandbox::new();
    let mut changed = 0;
    for blob in layout_blobs(&cache) {
        let bytes = std::fs::read(&blob).unwrap();
        // The RUN layers are uncompressed tars holding /stamp or /both.
        if bytes.len() > 512
            && bytes.windows(5).any(|w| w == b"stamp")
            && &bytes[257..262] == b"ustar"
        {
            std::fs::write(&blob, [&bytes[..bytes.len() - 1], b"X"].concat()).unwrap();
            changed += 1;
        }
    }
    assert!(changed >= 1);
    let out = tampered.den(&["build", "--cache-from", &from, &d]);
    let third = out.ok();
    assert_ne!(third.trim(), first.trim());
    assert!(out.stderr.contains("does not match"), "{}", out.stderr);

    // A cache spec den cannot use: one line, nothing built.
    let before = sb.store_listing();
    build(&sb, &dir, &["--cache-to", "type=gha"]).fails_with(125, "no cache type \"gha\"");
    assert_eq!(sb.store_listing(), before);
}

/// The same through a registry: podman's `--cache-to REGISTRY/REPO`, buildx's
/// `type=registry,ref=REF` to read it back on an empty store; an unreachable one is a warning.
#[test]
fn a_registry_cache_pushed_then_pulled_into_an_empty_store_reuses_every_step() {
    let sb = Sandbox::new();
    let reg = Registry::start("bout-cache");
    let df = format!(
        "FROM {}\nRUN cat /proc/sys/kernel/random/uuid > /stamp\nWORKDIR /w\nRUN cp /stamp /w/copy\n",
        busybox()
    );
    let dir = context(&sb, "regcache", &df);
    let cache = format!("{}/cache/app:buildcache", reg.addr);
    let first = build(&sb, &dir, &["--cache-to", &cache]).ok();
    let m = remote_manifest(&cache);
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.den.build.cache.steps.v1+json"
    );

    let other = Sandbox::new();
    let d = dir.to_string_lossy().into_owned();
    let from = format!("type=registry,ref={cache}");
    let out = other.den(&["build", "--cache-from", &from, &d]);
    assert_eq!(out.ok().trim(), first.trim(), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("--> Using cache").count(),
        3,
        "{}",
        out.stderr
    );

    // Nothing listening there: a warning, and the steps run.
    let fresh = Sandbox::new();
    let gone = format!(
        "127.0.0.1:{}/cache/app:buildcache",
        crate::sandbox::free_port()
    );
    let out = fresh.den(&["build", "--cache-from", &gone, &d]);
    assert_ne!(out.ok().trim(), first.trim());
    assert!(
        out.stderr.contains("warning: --cache-from"),
        "{}",
        out.stderr
    );
}
