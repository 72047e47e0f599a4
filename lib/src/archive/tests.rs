//! Round trips through both formats between two stores, and archives that must be refused.

use std::io::{Read, Write};

use super::format::{self, DockerManifest};
use super::*;
use crate::digest::Digest;
use crate::image::Reference;
use crate::image::manifest::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::store::{ImageRecord, LayerRef, Store};
use crate::unpack::{Options, Owners};

const OPTS: Options = Options {
    owners: Owners::Ignore,
};

fn layer_tar(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, name, content.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Put an image with `layers` (tar, how it is stored) into `store` as a pull would.
fn put_image(store: &Store, name: &str, layers: &[(Vec<u8>, &str)]) -> ImageRecord {
    let mut refs = Vec::new();
    for (tar, how) in layers {
        let blob = match *how {
            "gzip" => gzip(tar),
            "zstd" => zstd::encode_all(&tar[..], 3).unwrap(),
            _ => tar.clone(),
        };
        let digest = Digest::of(&blob);
        store.put_blob(&digest, &blob).unwrap();
        refs.push(LayerRef {
            diff_id: Digest::of(tar),
            blob: digest,
            media_type: match *how {
                "gzip" => OCI_LAYER_GZIP.into(),
                "zstd" => "application/vnd.oci.image.layer.v1.tar+zstd".into(),
                _ => crate::image::manifest::OCI_LAYER.into(),
            },
            size: blob.len() as u64,
        });
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["sh"], "Env": [format!("NAME={name}")]},
        "rootfs": {"type": "layers", "diff_ids": refs.iter().map(|r| r.diff_id.clone()).collect::<Vec<_>>()},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = Digest::of(&config);
    store.put_blob(&config_digest, &config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": refs.iter().map(|r| serde_json::json!({"mediaType": r.media_type, "digest": r.blob, "size": r.size})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let manifest_digest = Digest::of(&manifest);
    store.put_blob(&manifest_digest, &manifest).unwrap();
    let record = ImageRecord {
        id: config_digest.clone(),
        names: vec![],
        repo_digests: vec![],
        manifest: manifest_digest,
        manifest_media_type: OCI_MANIFEST.into(),
        config: config_digest,
        layers: refs,
        created: None,
        size: 0,
        os: "linux".into(),
        architecture: "amd64".into(),
        added: chrono::Utc::now(),
    };
    let name = Reference::parse(name).unwrap();
    store.put_image(record, Some(&name)).unwrap();
    store.find_image(&name.canonical()).unwrap()
}

fn stores() -> (tempfile::TempDir, Store, Store) {
    let t = tempfile::tempdir().unwrap();
    let a = Store::open(&t.path().join("a")).unwrap();
    let b = Store::open(&t.path().join("b")).unwrap();
    (t, a, b)
}

fn save_to_vec(store: &Store, images: &[(&ImageRecord, &[&str])], format: Format) -> Vec<u8> {
    let images: Vec<SaveImage> = images
        .iter()
        .map(|(r, names)| SaveImage {
            record: (*r).clone(),
            names: names.iter().map(|n| Reference::parse(n).unwrap()).collect(),
        })
        .collect();
    let mut out = Vec::new();
    save(store, &images, format, &mut out, "test").unwrap();
    out
}

fn entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(archive);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

fn file<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &entries
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

fn layer_file(store: &Store, diff_id: &Digest, path: &str) -> String {
    std::fs::read_to_string(store.layer_diff(diff_id).join(path)).unwrap()
}

/// Every entry of a store a load may touch, to compare before and after a refused one.
fn listing(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for d in ["blobs/sha256", "layers", "tmp"] {
        let mut names: Vec<String> = std::fs::read_dir(store.root().join(d))
            .unwrap()
            .map(|e| format!("{d}/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        names.sort();
        out.extend(names);
    }
    out.push(std::fs::read_to_string(store.root().join("images.json")).unwrap_or_default());
    out
}

#[test]
fn docker_archives_hold_plain_layers_named_by_diff_id_and_load_back() {
    let (_t, a, b) = stores();
    let l1 = layer_tar(&[("etc/one", "1\n")]);
    let l2 = layer_tar(&[("etc/two", "2\n")]);
    let l3 = layer_tar(&[("etc/three", "3\n")]);
    let img = put_image(&a, "app:1", &[(l1, "gzip"), (l2, "zstd"), (l3, "plain")]);
    let archive = save_to_vec(
        &a,
        &[(&img, &["app:1", "127.0.0.1:5000/x/app:2"])],
        Format::Docker,
    );

    let e = entries(&archive);
    let manifest: Vec<DockerManifest> =
        serde_json::from_slice(file(&e, format::MANIFEST_JSON)).unwrap();
    assert_eq!(manifest.len(), 1);
    assert_eq!(
        manifest[0].repo_tags.as_deref().unwrap(),
        ["docker.io/library/app:1", "127.0.0.1:5000/x/app:2"]
    );
    assert_eq!(manifest[0].config, format::blob_path(&img.config));
    // Each layer is the uncompressed tar: its digest is the diff id.
    for (path, l) in manifest[0].layers.iter().zip(&img.layers) {
        assert_eq!(Digest::of(file(&e, path)), l.diff_id);
    }
    // It is an OCI layout too, with docker 25's annotations.
    let index: serde_json::Value = serde_json::from_slice(file(&e, format::INDEX_JSON)).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(
        index["manifests"][0]["annotations"][format::IMAGE_NAME],
        "docker.io/library/app:1"
    );
    let m = Digest::parse(index["manifests"][0]["digest"].as_str().unwrap()).unwrap();
    assert_eq!(Digest::of(file(&e, &format::blob_path(&m))), m);
    assert_eq!(file(&e, format::OCI_LAYOUT), format::OCI_LAYOUT_CONTENT);
    let repos: serde_json::Value = serde_json::from_slice(file(&e, format::REPOSITORIES)).unwrap();
    assert!(repos["docker.io/library/app"]["1"].is_string());
    // The same images give the same bytes.
    assert_eq!(
        archive,
        save_to_vec(
            &a,
            &[(&img, &["app:1", "127.0.0.1:5000/x/app:2"])],
            Format::Docker
        )
    );

    let loaded = load(&b, &mut &archive[..], "test", OPTS).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, img.id);
    assert_eq!(loaded[0].names.len(), 2);
    let got = b.find_image("app:1").unwrap();
    assert_eq!(got.id, img.id);
    assert_eq!(b.find_image("127.0.0.1:5000/x/app:2").unwrap().id, img.id);
    assert!(got.repo_digests.is_empty());
    // Layers are stored as plain tars, named by their diff ids, and unpacked.
    for l in &got.layers {
        assert_eq!(l.blob, l.diff_id);
        assert_eq!(l.media_type, crate::image::manifest::OCI_LAYER);
        assert!(b.has_blob(&l.blob) && b.has_layer(&l.diff_id));
    }
    assert_eq!(layer_file(&b, &got.layers[1].diff_id, "etc/two"), "2\n");
    assert_eq!(
        got.created.unwrap().to_rfc3339(),
        "2024-01-02T03:04:05+00:00"
    );
    // The manifest den made on load is the one the archive carries.
    assert_eq!(got.manifest, m);
    assert_eq!(std::fs::read_dir(b.root().join("tmp")).unwrap().count(), 0);

    // Saved again from the second store, the archive is the same.
    let again = save_to_vec(
        &b,
        &[(&got, &["app:1", "127.0.0.1:5000/x/app:2"])],
        Format::Docker,
    );
    assert_eq!(again, archive);
}

#[test]
fn oci_archives_keep_the_blobs_and_the_manifest_digest() {
    let (_t, a, b) = stores();
    let img = put_image(&a, "app:1", &[(layer_tar(&[("f", "x")]), "gzip")]);
    let other = put_image(&a, "other:2", &[(layer_tar(&[("g", "y")]), "zstd")]);
    let archive = save_to_vec(&a, &[(&img, &["app:1"]), (&other, &[])], Format::Oci);
    let e = entries(&archive);
    assert!(e.iter().all(|(n, _)| n != format::MANIFEST_JSON));
    for l in img.layers.iter().chain(&other.layers) {
        assert_eq!(
            file(&e, &format::blob_path(&l.blob)),
            a.read_blob(&l.blob).unwrap()
        );
    }
    let index: serde_json::Value = serde_json::from_slice(file(&e, format::INDEX_JSON)).unwrap();
    assert_eq!(index["manifests"][0]["annotations"][format::REF_NAME], "1");
    assert!(index["manifests"][1]["annotations"].is_null());

    let loaded = load(&b, &mut &archive[..], "test", OPTS).unwrap();
    assert_eq!(loaded.len(), 2);
    assert!(loaded[1].names.is_empty());
    let got = b.find_image("app:1").unwrap();
    assert_eq!(
        (got.id.as_str(), got.manifest.as_str()),
        (img.id.as_str(), img.manifest.as_str())
    );
    assert_eq!(got.layers, img.layers);
    assert_eq!(
        got.repo_digests,
        [format!("docker.io/library/app@{}", img.manifest)]
    );
    let unnamed = b.find_image(other.id.as_str()).unwrap();
    assert!(unnamed.names.is_empty());
    assert_eq!(layer_file(&b, &other.layers[0].diff_id, "g"), "y");
}

#[test]
fn loading_again_only_names_and_a_name_moves_to_the_loaded_image() {
    let (_t, a, b) = stores();
    let img = put_image(&a, "app:1", &[(layer_tar(&[("f", "x")]), "gzip")]);
    let archive = save_to_vec(&a, &[(&img, &["app:1"])], Format::Docker);
    let old = put_image(&b, "app:1", &[(layer_tar(&[("f", "old")]), "gzip")]);
    let loaded = load(&b, &mut &archive[..], "test", OPTS).unwrap();
    assert_eq!(
        loaded[0].renamed,
        [("docker.io/library/app:1".to_string(), old.id.clone())]
    );
    assert_eq!(b.find_image("app:1").unwrap().id, img.id);
    assert!(b.find_image(old.id.as_str()).unwrap().names.is_empty());
    let before = listing(&b);
    let archive2 = save_to_vec(&a, &[(&img, &["app:2"])], Format::Docker);
    load(&b, &mut &archive2[..], "test", OPTS).unwrap();
    assert_eq!(b.find_image("app:2").unwrap().id, img.id);
    let after = listing(&b);
    assert_eq!(before[..before.len() - 1], after[..after.len() - 1]);
}

#[test]
fn compressed_archives_load() {
    let (_t, a, b) = stores();
    let img = put_image(&a, "app:1", &[(layer_tar(&[("f", "x")]), "gzip")]);
    let archive = save_to_vec(&a, &[(&img, &["app:1"])], Format::Docker);
    load(&b, &mut &gzip(&archive)[..], "test", OPTS).unwrap();
    assert_eq!(b.find_image("app:1").unwrap().id, img.id);
    let (_t, _, c) = stores();
    let z = zstd::encode_all(&archive[..], 3).unwrap();
    load(&c, &mut &z[..], "test", OPTS).unwrap();
    assert_eq!(c.find_image("app:1").unwrap().id, img.id);
}

/// Change one byte of the entry `name` of a (plain) tar archive, keeping the tar valid.
fn tamper(archive: &[u8], name: &str, at: usize) -> Vec<u8> {
    let mut out = archive.to_vec();
    let mut a = tar::Archive::new(archive);
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == name {
            let pos = e.raw_file_position() as usize + at;
            out[pos] ^= 0x20;
            return out;
        }
    }
    panic!("no {name}");
}

#[test]
fn altered_archives_are_refused_and_leave_the_store_alone() {
    let (_t, a, b) = stores();
    let base = put_image(&b, "base:1", &[(layer_tar(&[("b", "b")]), "gzip")]);
    let img = put_image(&a, "app:1", &[(layer_tar(&[("etc/f", "content")]), "gzip")]);
    let before = listing(&b);

    let docker = save_to_vec(&a, &[(&img, &["app:1"])], Format::Docker);
    let layer = format::blob_path(&img.layers[0].diff_id);
    let bad = tamper(&docker, &layer, 600);
    let e = load(&b, &mut &bad[..], "bad.tar", OPTS).unwrap_err();
    let msg = crate::error::chain(&e);
    assert!(
        msg.contains(&layer) && msg.contains("does not match"),
        "{msg}"
    );
    assert_eq!(crate::error::Diagnose::exit_code(&e), 1);
    assert_eq!(listing(&b), before);

    let bad = tamper(&docker, &format::blob_path(&img.config), 10);
    assert!(load(&b, &mut &bad[..], "bad.tar", OPTS).is_err());
    assert_eq!(listing(&b), before);

    let oci = save_to_vec(&a, &[(&img, &["app:1"])], Format::Oci);
    let blob = format::blob_path(&img.layers[0].blob);
    let bad = tamper(&oci, &blob, 40);
    let msg = crate::error::chain(&load(&b, &mut &bad[..], "bad.tar", OPTS).unwrap_err());
    assert!(msg.contains(&blob), "{msg}");
    assert_eq!(listing(&b), before);
    assert_eq!(b.find_image("base:1").unwrap().id, base.id);

    // Not archives at all.
    let e = load(&b, &mut &b"hello"[..], "x", OPTS).unwrap_err();
    assert!(matches!(e, ArchiveError::Read { .. }), "{e:?}");
    let e = load(&b, &mut &[][..], "stdin", OPTS).unwrap_err();
    assert!(matches!(e, ArchiveError::StdinEmpty), "{e:?}");
    let cut = &docker[..docker.len() / 2];
    let e = load(&b, &mut &cut[..], "cut.tar", OPTS).unwrap_err();
    assert!(
        crate::error::chain(&e).contains("ends in the middle"),
        "{e}"
    );
    let e = load(&b, &mut &layer_tar(&[("x", "y")])[..], "x", OPTS).unwrap_err();
    assert!(matches!(e, ArchiveError::NotAnArchive { .. }), "{e:?}");
    assert_eq!(listing(&b), before);
}

/// An archive laid out as podman 4 and docker before 25 write them: `<hex>.json` configs,
/// `<hex>.tar` layers with `<id>/layer.tar` symlinks to them, short names.
#[test]
fn podman_and_old_docker_layouts_load() {
    let (_t, _a, b) = stores();
    let tar1 = layer_tar(&[("bin/sh", "#!")]);
    let tar2 = layer_tar(&[("app", "v1")]);
    let d1 = Digest::of(&tar1);
    let d2 = Digest::of(&tar2);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [d1, d2]},
    }))
    .unwrap();
    let c = Digest::of(&config);
    let hex = |d: &Digest| d.hex().to_string();
    let manifest = format!(
        r#"[{{"Config":"{}.json","RepoTags":["localhost/app:1","app:2"],"Layers":["{}.tar","v1id/layer.tar"]}}]"#,
        hex(&c),
        hex(&d1)
    );
    let mut b2 = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o444);
        h.set_cksum();
        b2.append_data(&mut h, name, data).unwrap();
    };
    add(&format!("{}.tar", hex(&d1)), &tar1);
    add(&format!("./{}.tar", hex(&d2)), &tar2);
    add(&format!("{}.json", hex(&c)), &config);
    add("manifest.json", manifest.as_bytes());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_cksum();
    b2.append_link(&mut h, "v1id/layer.tar", format!("../{}.tar", hex(&d2)))
        .unwrap();
    let archive = b2.into_inner().unwrap();
    let loaded = load(&b, &mut &archive[..], "podman.tar", OPTS).unwrap();
    assert_eq!(loaded[0].id, c);
    assert_eq!(b.find_image("localhost/app:1").unwrap().id, c);
    assert_eq!(b.find_image("app:2").unwrap().id, c);
    assert_eq!(layer_file(&b, &d2, "app"), "v1");

    // A config whose file name is not its digest is refused.
    let wrong = manifest.replace(&hex(&c), &"0".repeat(64));
    let mut b3 = tar::Builder::new(Vec::new());
    for (name, data) in [
        (format!("{}.json", "0".repeat(64)), config.clone()),
        (format!("{}.tar", hex(&d1)), tar1.clone()),
        ("manifest.json".to_string(), wrong.into_bytes()),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_cksum();
        b3.append_data(&mut h, &name, &data[..]).unwrap();
    }
    let (_t2, _, c3) = stores();
    let e = load(&c3, &mut &b3.into_inner().unwrap()[..], "x", OPTS).unwrap_err();
    assert!(crate::error::chain(&e).contains("does not match"), "{e}");
}

#[test]
fn docker_archives_with_compressed_layer_files_load_and_are_checked() {
    let (_t, _a, b) = stores();
    let tar1 = layer_tar(&[("f", "gz")]);
    let d1 = Digest::of(&tar1);
    let gz = gzip(&tar1);
    let make = |diff_id: &Digest| {
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }))
        .unwrap();
        let manifest = r#"[{"Config":"config.json","RepoTags":["gz:1"],"Layers":["l/layer.tar"]}]"#;
        let mut t = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("config.json", &config[..]),
            ("l/layer.tar", &gz[..]),
            ("manifest.json", manifest.as_bytes()),
        ] {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_cksum();
            t.append_data(&mut h, name, data).unwrap();
        }
        t.into_inner().unwrap()
    };
    load(&b, &mut &make(&d1)[..], "gz.tar", OPTS).unwrap();
    let got = b.find_image("gz:1").unwrap();
    assert_eq!(got.layers[0].blob, Digest::of(&gz));
    assert_eq!(got.layers[0].media_type, OCI_LAYER_GZIP);
    assert_eq!(layer_file(&b, &d1, "f"), "gz");

    let (_t2, _, c) = stores();
    let before = listing(&c);
    let wrong = Digest::from_hex(&"1".repeat(64)).unwrap();
    let msg = crate::error::chain(&load(&c, &mut &make(&wrong)[..], "gz.tar", OPTS).unwrap_err());
    assert!(
        msg.contains("l/layer.tar") && msg.contains("does not match"),
        "{msg}"
    );
    assert_eq!(listing(&c), before);
}

#[test]
fn big_layers_are_unpacked_as_they_stream_in_and_refused_when_altered() {
    let (_t, a, b) = stores();
    // Hex digits of a simple generator: compressed, still well over the early-unpack size.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let big: String = (0..(1200 << 10))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).unwrap()
        })
        .collect();
    let img = put_image(
        &a,
        "big:1",
        &[
            (layer_tar(&[("big", &big)]), "plain"),
            (layer_tar(&[("big2", &big)]), "gzip"),
        ],
    );
    for format in [Format::Docker, Format::Oci] {
        let archive = save_to_vec(&a, &[(&img, &["big:1"])], format);
        let (_t2, _, c) = stores();
        let before = listing(&c);
        let layer = format::blob_path(match format {
            Format::Docker => &img.layers[0].diff_id,
            Format::Oci => &img.layers[1].blob,
        });
        let bad = tamper(&archive, &layer, 400 << 10);
        assert!(load(&c, &mut &bad[..], "bad.tar", OPTS).is_err());
        assert_eq!(listing(&c), before);

        load(&b, &mut &archive[..], "test", OPTS).unwrap();
        let got = b.find_image("big:1").unwrap();
        assert_eq!(got.id, img.id);
        assert_eq!(
            layer_file(&b, &img.layers[0].diff_id, "big").len(),
            big.len()
        );
        assert_eq!(layer_file(&b, &img.layers[1].diff_id, "big2"), big);
        assert_eq!(std::fs::read_dir(b.root().join("tmp")).unwrap().count(), 0);
    }
}
