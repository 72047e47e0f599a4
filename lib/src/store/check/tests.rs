//! Unit tests of the check and the repair, on stores made by den's own writers and then damaged.

use super::*;
use crate::store::{
    ContainerRecord, ContainerState, Digest, ImageRecord, LayerRef, Lock, Status, Store,
    containers::BUILD_STEP_LABEL,
};
use chrono::Utc;

fn store() -> (tempfile::TempDir, Store) {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path()).unwrap();
    (t, s)
}

fn layer(s: &Store, content: &[u8]) -> LayerRef {
    let blob = Digest::of(content);
    s.put_blob(&blob, content).unwrap();
    let staged = s.stage_layer().unwrap();
    std::fs::write(staged.diff().join("f"), content).unwrap();
    s.commit_layer(staged, &blob, content.len() as u64, 1)
        .unwrap();
    LayerRef {
        diff_id: blob.clone(),
        blob,
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        size: content.len() as u64,
    }
}

/// An image whose manifest and config name its layers, as a pull stores them.
fn image(s: &Store, tag: &str, layers: Vec<LayerRef>) -> ImageRecord {
    let config = serde_json::to_vec(&serde_json::json!({
        "tag": tag,
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
    }))
    .unwrap();
    let config_digest = Digest::of(&config);
    s.put_blob(&config_digest, &config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "config": {"digest": config_digest.to_string()},
        "layers": layers.iter().map(|l| serde_json::json!({"digest": l.blob.to_string()})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let manifest_digest = Digest::of(&manifest);
    s.put_blob(&manifest_digest, &manifest).unwrap();
    let r = ImageRecord {
        id: config_digest.clone(),
        names: vec![],
        repo_digests: vec![],
        manifest: manifest_digest,
        manifest_media_type: "m".into(),
        config: config_digest,
        layers,
        created: None,
        size: 0,
        os: "linux".into(),
        architecture: "amd64".into(),
        added: Utc::now(),
    };
    let name = crate::image::Reference::parse(tag).unwrap();
    s.put_image(r.clone(), Some(&name)).unwrap();
    s.find_image(tag).unwrap()
}

fn container(s: &Store, image: &ImageRecord, name: &str) -> ContainerRecord {
    s.create_container(
        ContainerRecord {
            id: String::new(),
            name: String::new(),
            image_id: image.id.clone(),
            image: "app".into(),
            created: Utc::now(),
            driver: "vfs".into(),
            spec: Default::default(),
            auto_remove: false,
            layers: vec![],
            image_file: None,
        },
        Some(name),
    )
    .unwrap()
}

/// A store with one image of two layers and one container of it.
fn populated() -> (tempfile::TempDir, Store, ImageRecord, ContainerRecord) {
    let (t, s) = store();
    let a = layer(&s, b"base");
    let b = layer(&s, b"top");
    let img = image(&s, "app:1", vec![a, b]);
    let c = container(&s, &img, "web");
    (t, s, img, c)
}

fn lock(s: &Store) -> Lock {
    s.lock_content_exclusive().unwrap()
}

fn check(s: &Store) -> Vec<Problem> {
    s.check(&lock(s), CheckOptions::default()).unwrap().problems
}

fn full(s: &Store) -> Vec<Problem> {
    s.check(&lock(s), CheckOptions { full: true })
        .unwrap()
        .problems
}

/// Repair, expecting everything fixed; returns what was.
fn repair(s: &Store) -> Vec<Problem> {
    let r = s.repair(&lock(s), CheckOptions { full: true }).unwrap();
    assert_eq!(r.remaining.problems, vec![], "left after repair");
    r.fixed
}

#[test]
fn a_store_den_made_is_clean() {
    let (_t, s, _, _) = populated();
    let l = lock(&s);
    let c = s.check(&l, CheckOptions { full: true }).unwrap();
    assert_eq!(c.problems, vec![]);
    assert_eq!((c.images, c.layers, c.blobs, c.containers), (1, 2, 4, 1));
    // Staging in use and an atomic write in progress are not problems.
    let _held = s.staging_dir("pull").unwrap();
    std::fs::write(
        s.root()
            .join(format!(".images.json.tmp-{}-abcd", std::process::id())),
        b"",
    )
    .unwrap();
    assert_eq!(
        s.check(&l, CheckOptions::default()).unwrap().problems,
        vec![]
    );
}

#[test]
fn stale_staging_and_temporary_files_are_leftovers() {
    let (t, s, _, c) = populated();
    std::fs::create_dir(t.path().join("tmp/layer-999999999-abcd")).unwrap();
    std::fs::write(t.path().join("tmp/blob-999999999-ef01"), b"x").unwrap();
    std::fs::write(t.path().join(".images.json.tmp-999999999-abcd"), b"{").unwrap();
    let in_container = format!("containers/{}/.state.json.tmp-999999999-abcd", c.id);
    std::fs::write(t.path().join(&in_container), b"{").unwrap();
    let got = check(&s);
    assert_eq!(
        got,
        vec![
            Problem::StaleTemp {
                path: ".images.json.tmp-999999999-abcd".into()
            },
            Problem::StaleStaging {
                path: "tmp/blob-999999999-ef01".into()
            },
            Problem::StaleStaging {
                path: "tmp/layer-999999999-abcd".into()
            },
            Problem::StaleTemp {
                path: in_container.into()
            },
        ]
    );
    assert!(got.iter().all(Problem::leftover));
    assert_eq!(
        got[0].to_string(),
        "stale temporary file: .images.json.tmp-999999999-abcd (its writer is gone)"
    );
    assert_eq!(repair(&s).len(), 4);
    assert_eq!(std::fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
}

#[test]
fn unused_content_is_reported_not_silently_collected() {
    let (_t, s, img, _) = populated();
    let loose = layer(&s, b"loose");
    let got = check(&s);
    assert_eq!(
        got,
        vec![
            Problem::UnusedLayer {
                diff_id: loose.diff_id.clone()
            },
            Problem::UnusedBlob {
                digest: loose.blob.clone()
            },
        ]
    );
    assert!(got[0].to_string().starts_with("unused layer: layers/"));
    assert!(s.has_layer(&loose.diff_id), "a check removes nothing");
    assert_eq!(repair(&s), got);
    assert!(!s.has_layer(&loose.diff_id) && !s.has_blob(&loose.blob));
    assert!(s.has_layer(&img.layers[0].diff_id));
}

#[test]
fn partial_layers_are_damage_and_go() {
    let (t, s, _, _) = populated();
    // No layer.json.
    let a = "a".repeat(64);
    std::fs::create_dir_all(t.path().join("layers").join(&a).join("diff")).unwrap();
    // A layer.json that names another layer.
    let b = "b".repeat(64);
    let forged = layer(&s, b"forged");
    std::fs::rename(
        s.layer_dir(&forged.diff_id),
        t.path().join("layers").join(&b),
    )
    .unwrap();
    // A record without its files.
    let c = layer(&s, b"nodiff");
    std::fs::remove_dir_all(s.layer_diff(&c.diff_id)).unwrap();
    // A record that does not parse.
    let d = layer(&s, b"garbled");
    std::fs::write(s.layer_dir(&d.diff_id).join("layer.json"), b"{").unwrap();
    let got: Vec<Problem> = check(&s)
        .into_iter()
        .filter(|p| matches!(p, Problem::PartialLayer { .. }))
        .collect();
    let mut want = vec![
        Problem::PartialLayer {
            dir: a,
            why: "it has no layer.json",
        },
        Problem::PartialLayer {
            dir: b,
            why: "its layer.json names another layer",
        },
        Problem::PartialLayer {
            dir: c.diff_id.hex().into(),
            why: "it has no diff directory",
        },
        Problem::PartialLayer {
            dir: d.diff_id.hex().into(),
            why: "its layer.json does not parse",
        },
    ];
    want.sort_by_key(|p| p.to_string());
    let mut got = got;
    got.sort_by_key(|p| p.to_string());
    assert_eq!(got, want);
    assert!(!got[0].leftover());
    repair(&s);
    assert_eq!(
        s.layer_ids().unwrap().len(),
        2,
        "only the image's layers stay"
    );
}

#[test]
fn links_missing_or_dangling() {
    let (_t, s, img, _) = populated();
    let rec = s.layer_record(&img.layers[0].diff_id).unwrap();
    std::fs::remove_file(s.links_dir().join(&rec.link)).unwrap();
    std::os::unix::fs::symlink(
        format!("../{}/diff", "e".repeat(64)),
        s.links_dir().join("e".repeat(16)),
    )
    .unwrap();
    assert_eq!(
        check(&s),
        vec![
            Problem::DanglingLink {
                name: "e".repeat(16)
            },
            Problem::MissingLink {
                diff_id: img.layers[0].diff_id.clone(),
                link: rec.link.clone()
            },
        ]
    );
    repair(&s);
    assert!(s.links_dir().join(&rec.link).join("f").exists());
    assert!(!s.links_dir().join("e".repeat(16)).exists());
}

#[test]
fn images_that_point_at_nothing_are_removed_with_their_content() {
    let (_t, s, img, c) = populated();
    std::fs::remove_file(s.blob_path(&img.layers[1].blob)).unwrap();
    let got = check(&s);
    assert_eq!(
        got,
        vec![Problem::BrokenImage {
            image: "docker.io/library/app:1".into(),
            id: img.id.clone(),
            missing: format!("its layer blob blobs/sha256/{}", img.layers[1].blob.hex()),
        }]
    );
    assert!(
        got[0]
            .to_string()
            .starts_with("image with missing content: docker.io/library/app:1 (")
    );
    let fixed = repair(&s);
    // The image goes; its container, which needs it, goes too; then the content.
    assert!(fixed.contains(&got[0]));
    assert!(s.images().unwrap().is_empty());
    assert!(s.container(&c.id).is_err());
    assert!(s.layer_ids().unwrap().is_empty());
}

#[test]
fn containers_whose_image_or_layers_are_gone() {
    let (_t, s, img, c) = populated();
    s.update_images(|i| {
        i.clear();
        Ok(())
    })
    .unwrap();
    let got = check(&s);
    assert_eq!(
        got[0],
        Problem::BrokenContainer {
            id: c.id.clone(),
            name: "web".into(),
            missing: format!("its image {}", img.id.short()),
            running: false
        }
    );
    // Its image's content is unused meanwhile.
    assert!(got[1..].iter().all(Problem::leftover));
    repair(&s);
    assert!(s.container_ids().unwrap().is_empty());

    // A container with its own layer list (a build step's, or after `rmi -f`).
    let (_t, s, img, _) = populated();
    let mut r = container(&s, &img, "own");
    r.layers = vec![Digest::of(b"gone")];
    s.write_json(&s.container_dir(&r.id).join("container.json"), &r)
        .unwrap();
    assert_eq!(
        check(&s),
        vec![Problem::BrokenContainer {
            id: r.id.clone(),
            name: "own".into(),
            missing: format!("its layer layers/{}", Digest::of(b"gone").hex()),
            running: false
        }]
    );
}

#[test]
fn names_half_created_containers_and_killed_builds() {
    let (t, s, img, c) = populated();
    // A killed rm: the container moved aside, its name left.
    std::fs::rename(
        s.container_dir(&c.id),
        t.path().join("tmp/rm-999999999-abcd"),
    )
    .unwrap();
    // A killed create: a directory without its record.
    let half = "d".repeat(64);
    std::fs::create_dir(s.container_dir(&half)).unwrap();
    // A killed build: its step container, not running.
    let mut step = container(&s, &img, "step");
    step.spec
        .labels
        .insert(BUILD_STEP_LABEL.into(), "999999999".into());
    s.write_json(&s.container_dir(&step.id).join("container.json"), &step)
        .unwrap();
    let got = check(&s);
    assert!(got.contains(&Problem::DanglingName {
        name: "web".into(),
        id: c.id.clone()
    }));
    assert!(got.contains(&Problem::PartialContainer { id: half.clone() }));
    assert!(got.contains(&Problem::BuildLeftover {
        id: step.id.clone(),
        name: "step".into()
    }));
    assert!(got.contains(&Problem::StaleStaging {
        path: "tmp/rm-999999999-abcd".into()
    }));
    assert!(got.iter().all(Problem::leftover), "{got:?}");
    repair(&s);
    assert!(s.container_ids().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(t.path().join("names")).unwrap().count(),
        0
    );

    // A running step container (its den-run outlived the build) stays.
    let mut step = container(&s, &img, "step2");
    step.spec.labels.insert(BUILD_STEP_LABEL.into(), "1".into());
    s.write_json(&s.container_dir(&step.id).join("container.json"), &step)
        .unwrap();
    let me = std::process::id() as i32;
    s.set_container_state(
        &step.id,
        &ContainerState {
            status: Status::Running,
            monitor: Some((me, crate::store::process_start_time(me).unwrap())),
            ..ContainerState::created()
        },
    )
    .unwrap();
    assert_eq!(check(&s), vec![]);
}

#[test]
fn a_pulls_blob_locks_are_den_s() {
    let (t, s, _, _) = populated();
    let held = s.lock_blobs(&[Digest::of(b"x")]).unwrap();
    drop(held);
    std::fs::write(t.path().join("locks/blob-nothex.lock"), b"").unwrap();
    assert_eq!(
        check(&s),
        vec![Problem::Unknown {
            path: "locks/blob-nothex.lock".into()
        }]
    );
}

#[test]
fn files_den_did_not_write() {
    let (t, s, _, _) = populated();
    for p in [
        "junk",
        "blobs/md5",
        "blobs/sha256/nothex",
        "layers/junk",
        "containers/junk",
        "names/.hidden",
        "locks/other.lock",
        "build-cache/steps/notes.txt",
    ] {
        let p = t.path().join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }
    std::os::unix::fs::symlink("/etc", t.path().join("layers/l/escape")).unwrap();
    let got = check(&s);
    assert_eq!(got.len(), 9, "{got:?}");
    assert!(got.iter().all(|p| matches!(p, Problem::Unknown { .. })));
    assert!(got.contains(&Problem::Unknown {
        path: "layers/l/escape".into()
    }));
    assert_eq!(got[0].to_string(), "not den's: junk (den did not write it)");
    repair(&s);
    assert!(!t.path().join("junk").exists());
    assert!(std::path::Path::new("/etc").exists());
}

#[test]
fn full_rehashes_blobs_and_reads_manifests() {
    let (_t, s, img, _) = populated();
    std::fs::write(s.blob_path(&img.layers[0].blob), b"tampered").unwrap();
    assert_eq!(check(&s), vec![], "only --full reads the blobs");
    let got = full(&s);
    assert_eq!(
        got,
        vec![Problem::CorruptBlob {
            digest: img.layers[0].blob.clone(),
            actual: Digest::of(b"tampered")
        }]
    );
    repair(&s);
    assert!(
        s.images().unwrap().is_empty(),
        "the image lost a blob: it goes"
    );

    // A record that names layers its manifest and config do not.
    let (_t, s, img, _) = populated();
    s.update_images(|images| {
        images[0].layers.swap(0, 1);
        Ok(())
    })
    .unwrap();
    assert_eq!(
        full(&s),
        vec![Problem::ImageMismatch {
            image: "docker.io/library/app:1".into(),
            id: img.id.clone(),
            what: "manifest"
        }]
    );
}

#[test]
fn damaged_records() {
    let (t, s, _, c) = populated();
    std::fs::write(s.container_dir(&c.id).join("container.json"), b"{").unwrap();
    // With a record unread, nothing is called unused: it may be what the record names.
    let got = check(&s);
    assert_eq!(
        got,
        vec![Problem::DamagedRecord {
            path: format!("containers/{}/container.json", c.id).into()
        }]
    );
    repair(&s);
    assert!(s.container_ids().unwrap().is_empty());

    std::fs::write(t.path().join("images.json"), b"{").unwrap();
    let r = s.repair(&lock(&s), CheckOptions::default()).unwrap();
    assert_eq!(
        r.remaining.problems,
        vec![Problem::DamagedRecord {
            path: "images.json".into()
        }],
        "den does not guess image records"
    );
}

#[test]
fn build_cache_steps_that_point_at_nothing() {
    let (t, s, img, _) = populated();
    let steps = t.path().join("build-cache/steps");
    std::fs::create_dir_all(&steps).unwrap();
    let mut gone = img.layers[0].clone();
    gone.diff_id = Digest::of(b"gone");
    std::fs::write(
        steps.join("k.json"),
        serde_json::to_vec(&serde_json::json!({"layers": [gone], "config": {}})).unwrap(),
    )
    .unwrap();
    std::fs::write(steps.join("bad.json"), b"{").unwrap();
    assert_eq!(
        check(&s),
        vec![
            Problem::DamagedRecord {
                path: "build-cache/steps/bad.json".into()
            },
            Problem::BrokenCacheStep {
                path: "build-cache/steps/k.json".into(),
                missing: format!("its layer layers/{}", Digest::of(b"gone").hex())
            },
        ]
    );
    repair(&s);
    assert_eq!(std::fs::read_dir(&steps).unwrap().count(), 0);
}
