//! What a build produces: `--format docker|oci` (the manifest's media types, as inspect and a
//! push show them), `--output` (the final stage's filesystem as a directory, a tar or an OCI
//! archive) and the step cache exported and imported with `--cache-to`/`--cache-from`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sandbox::{Registry, Sandbox, env, registry, run};

fn busybox() -> String {
    registry().image("library/busybox")
}

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
