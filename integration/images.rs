//! Local image management: tag, rmi, image prune (and the garbage collection behind them),
//! history, images --filter/--format, system df/prune, export and import.

use std::collections::BTreeSet;
use std::io::Read;

use crate::sandbox::{Sandbox, busybox, registry};

fn layered() -> String {
    registry().image("test/layered")
}

fn pulled(images: &[&str]) -> Sandbox {
    let sb = Sandbox::new();
    for i in images {
        sb.den(&["pull", "-q", i]).ok();
    }
    sb
}

/// The full id (hex) of an image.
fn id_of(sb: &Sandbox, image: &str) -> String {
    let id = sb
        .den(&["image", "inspect", "--format", "{{.Id}}", image])
        .ok();
    id.trim().trim_start_matches("sha256:").to_string()
}

/// The diff ids (hex) of an image's layers.
fn layers_of(sb: &Sandbox, image: &str) -> BTreeSet<String> {
    let out = sb
        .den(&[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            image,
        ])
        .ok();
    let v: Vec<String> = serde_json::from_str(out.trim()).unwrap();
    v.into_iter()
        .map(|d| d.trim_start_matches("sha256:").to_string())
        .collect()
}

/// The layer directories in the store (hex names).
fn stored_layers(sb: &Sandbox) -> BTreeSet<String> {
    std::fs::read_dir(sb.root.join("layers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 64)
        .collect()
}

fn stored_blobs(sb: &Sandbox) -> usize {
    std::fs::read_dir(sb.root.join("blobs/sha256"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 64)
        .count()
}

fn ids(sb: &Sandbox, extra: &[&str]) -> BTreeSet<String> {
    let mut a = vec!["images", "-q", "--no-trunc"];
    a.extend_from_slice(extra);
    sb.den(&a)
        .ok()
        .lines()
        .map(|l| l.trim_start_matches("sha256:").to_string())
        .collect()
}

/// A tar with the given regular files, as a root filesystem.
fn rootfs_tar(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, path, content.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

/// The reclaimed bytes a prune reports, as text (`4.261MB`).
fn reclaimed(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap_or_else(|| panic!("no total in {out}"))
        .to_string()
}

/// `rmi NAME` of a pulled image's last name: the name, the repository digest, the image.
#[track_caller]
fn assert_removed(out: &str, name: &str, id: &str) {
    let lines: Vec<&str> = out.lines().collect();
    let repo = name.rsplit_once(':').unwrap().0;
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], format!("Untagged: {name}"), "{out}");
    assert!(
        lines[1].starts_with(&format!("Untagged: {repo}@sha256:")),
        "{out}"
    );
    assert_eq!(lines[2], format!("Deleted: sha256:{id}"), "{out}");
}

#[test]
fn tag_by_name_and_id_and_bad_names() {
    let bb = busybox();
    let sb = pulled(&[&bb]);
    let id = id_of(&sb, &bb);
    sb.den(&["tag", &bb, "app"]).ok();
    sb.den(&["tag", &id[..5], "app:2"]).ok();
    sb.den(&[
        "image",
        "tag",
        &format!("sha256:{id}"),
        "127.0.0.1:5999/x/app:3",
    ])
    .ok();
    let names = sb
        .den(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        .ok();
    for want in ["app:latest", "app:2", "127.0.0.1:5999/x/app:3"] {
        assert!(
            names.lines().any(|l| l == format!("{want} {}", &id[..12])),
            "{want} in {names}"
        );
    }
    assert_eq!(ids(&sb, &[]), BTreeSet::from([id.clone()]));
    sb.den(&["run", "--rm", "app:2", "true"]).ok();

    // Bad targets: one line naming the input, exit 125 as docker's "invalid reference format".
    for bad in [
        "App:1",
        "app:-bad",
        "app@sha256:0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        sb.den(&["tag", &bb, bad])
            .fails_with(125, &format!("{bad:?}"));
    }
    sb.den(&["tag", &"a".repeat(64), "x"])
        .fails_with(1, "no such image");
    sb.den(&["tag", "nope:1", "x"]).fails_with(1, "nope:1");
}

#[test]
fn rmi_untags_then_deletes_and_collects_content() {
    let bb = busybox();
    let sb = pulled(&[&bb]);
    let id = id_of(&sb, &bb);
    sb.den(&["tag", &bb, "app:1"]).ok();
    assert!(!stored_layers(&sb).is_empty());

    // A name among several: only untagged.
    assert_eq!(sb.den(&["rmi", "app:1"]).ok(), "Untagged: app:1\n");
    assert_eq!(ids(&sb, &[]), BTreeSet::from([id.clone()]));

    // The last name: the image goes (its repo digest with it), then every layer and blob.
    let out = sb.den(&["image", "rm", &bb]).ok();
    assert_removed(&out, &bb, &id);
    assert!(ids(&sb, &[]).is_empty());
    assert!(stored_layers(&sb).is_empty());
    assert_eq!(stored_blobs(&sb), 0);
    assert_eq!(
        std::fs::read_dir(sb.root.join("layers/l")).unwrap().count(),
        0
    );
    assert_eq!(std::fs::read_dir(sb.root.join("tmp")).unwrap().count(), 0);
    sb.den(&["rmi", &bb]).fails_with(1, "no such image");

    // By id, an image with several names needs -f; a failure does not stop the others.
    sb.den(&["pull", "-q", &bb]).ok();
    sb.den(&["tag", &bb, "app:1"]).ok();
    sb.den(&["rmi", &id[..12]])
        .fails_with(1, "image is referenced in multiple repositories");
    let out = sb.den(&["image", "remove", "nope:1", &id[..12], "-f"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("nope:1"), "{}", out.stderr);
    let lines = out.out();
    assert!(lines.contains("Untagged: app:1\n"), "{lines}");
    assert!(lines.contains(&format!("Untagged: {bb}\n")), "{lines}");
    assert!(
        lines.ends_with(&format!("Deleted: sha256:{id}\n")),
        "{lines}"
    );
    assert!(stored_layers(&sb).is_empty());
}

#[test]
fn rmi_refuses_while_a_container_uses_the_image_unless_forced() {
    let bb = busybox();
    let sb = pulled(&[&bb]);
    let id = id_of(&sb, &bb);
    let layers = layers_of(&sb, &bb);
    let cid = sb
        .den(&[
            "create",
            "--name",
            "keep",
            &bb,
            "sh",
            "-c",
            "cat /etc/os-release",
        ])
        .ok()
        .trim()
        .to_string();
    let (c12, i12) = (&cid[..12], &id[..12]);

    sb.den(&["rmi", &bb]).fails_with(
        1,
        &format!(
            "unable to remove repository reference \"{bb}\" (must force) - container {c12} is using its referenced image {i12}"
        ),
    );
    sb.den(&["rmi", i12]).fails_with(
        1,
        &format!(
            "conflict: unable to delete {i12} (must be forced) - image is being used by stopped container {c12}"
        ),
    );
    sb.den(&["image", "prune", "-a", "-f"]).ok();
    assert_eq!(
        ids(&sb, &[]),
        BTreeSet::from([id.clone()]),
        "prune -a keeps used images"
    );

    // -f: the image leaves the list; the container keeps its layers and still runs.
    let out = sb.den(&["rmi", "-f", &bb]).ok();
    assert_removed(&out, &bb, &id);
    assert!(ids(&sb, &[]).is_empty());
    assert_eq!(stored_layers(&sb), layers);
    sb.den(&["image", "prune", "-a", "-f"]).ok();
    assert_eq!(stored_layers(&sb), layers);
    let started = sb.den(&["start", "-a", "keep"]).ok();
    assert!(started.contains("den busybox"), "{started}");

    // Once the container goes, nothing keeps the layers.
    sb.den(&["rm", "keep"]).ok();
    let out = sb.den(&["image", "prune", "-f"]).ok();
    assert_ne!(reclaimed(&out), "0B", "{out}");
    assert!(stored_layers(&sb).is_empty());
    assert_eq!(stored_blobs(&sb), 0);
}

#[test]
fn image_prune_dangling_then_all_unused() {
    let (bb, lay) = (busybox(), layered());
    let sb = pulled(&[&bb, &lay]);
    let bb_id = id_of(&sb, &bb);
    let lay_id = id_of(&sb, &lay);
    let lay_layers = layers_of(&sb, &lay);
    sb.den(&["create", "--name", "user", &lay, "true"]).ok();
    let spare = sb.dir.join("spare.tar");
    std::fs::write(&spare, rootfs_tar(&[("spare.txt", "spare\n")])).unwrap();
    let spare_id = sb
        .den(&["import", spare.to_str().unwrap(), "spare:1"])
        .ok()
        .trim()
        .trim_start_matches("sha256:")
        .to_string();

    // busybox's name moves to another image: busybox is dangling.
    sb.den(&["tag", &lay, &bb]).ok();
    assert_eq!(
        ids(&sb, &["--filter", "dangling=true"]),
        BTreeSet::from([bb_id.clone()])
    );

    let out = sb.den(&["image", "prune", "-f"]).ok();
    assert!(out.starts_with("Deleted Images:\n"), "{out}");
    assert!(out.contains(&format!("deleted: sha256:{bb_id}\n")), "{out}");
    assert_ne!(reclaimed(&out), "0B", "{out}");
    assert_eq!(
        ids(&sb, &[]),
        BTreeSet::from([lay_id.clone(), spare_id.clone()])
    );
    // Nothing dangling is left: a second prune frees nothing. Without a terminal to ask on,
    // prune proceeds without -f, as a script wants.
    assert_eq!(
        sb.den(&["image", "prune"]).ok(),
        "Total reclaimed space: 0B\n"
    );
    // On a terminal it asks, once, and "n" keeps everything.
    let asked = sb.den_pty(&["expect:[y/N]", "send:n\\n"], &["image", "prune", "-a"]);
    assert_eq!(asked.code, 0, "{}", asked.out());
    assert_eq!(
        asked.out().matches("Are you sure").count(),
        1,
        "{}",
        asked.out()
    );
    assert!(
        asked
            .out()
            .contains("WARNING! This will remove all images without at least one container"),
        "{}",
        asked.out()
    );
    assert_eq!(
        ids(&sb, &[]),
        BTreeSet::from([lay_id.clone(), spare_id.clone()])
    );

    // -a: every image no container uses; the container's image survives.
    let out = sb.den(&["image", "prune", "-a", "-f"]).ok();
    assert!(out.contains("untagged: spare:1\n"), "{out}");
    assert!(
        out.contains(&format!("deleted: sha256:{spare_id}\n")),
        "{out}"
    );
    assert_ne!(reclaimed(&out), "0B", "{out}");
    assert_eq!(ids(&sb, &[]), BTreeSet::from([lay_id.clone()]));
    assert_eq!(
        stored_layers(&sb),
        lay_layers,
        "only the used image's layers remain"
    );
    sb.den(&["start", "-a", "user"]).ok();
}

#[test]
fn system_df_and_system_prune() {
    let bb = busybox();
    let sb = Sandbox::new();
    let df = sb.den(&["system", "df"]).ok();
    let lines: Vec<Vec<&str>> = df.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        lines[0],
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        "{df}"
    );
    assert_eq!(lines[1], ["Images", "0", "0", "0B", "0B"], "{df}");
    assert_eq!(lines[2], ["Containers", "0", "0", "0B", "0B"], "{df}");
    assert_eq!(lines[3], ["Local", "Volumes", "0", "0", "0B", "0B"], "{df}");
    assert_eq!(lines[4], ["Build", "Cache", "0", "0", "0B", "0B"], "{df}");

    sb.den(&["pull", "-q", &bb]).ok();
    let id = id_of(&sb, &bb);
    sb.den(&[
        "run",
        "--name",
        "wrote",
        &bb,
        "sh",
        "-c",
        "head -c 5000 /bin/busybox > /blob",
    ])
    .ok();
    sb.den(&["volume", "create", "data"]).ok();
    let size = sb.den(&["images", "--format", "{{.Size}}"]).ok();
    let rows: Vec<serde_json::Value> = sb
        .den(&["system", "df", "--format", "json"])
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    let images = &rows[0];
    assert_eq!(images["Type"], "Images");
    assert_eq!(
        (images["TotalCount"].as_str(), images["Active"].as_str()),
        (Some("1"), Some("1"))
    );
    // The same bytes as `images` shows (four digits here, three there).
    let df_size = images["Size"].as_str().unwrap();
    assert!(
        df_size.ends_with("MB") && size.trim().ends_with("MB"),
        "{df_size} {size}"
    );
    assert_eq!(
        df_size
            .trim_end_matches("MB")
            .parse::<f64>()
            .unwrap()
            .round(),
        size.trim()
            .trim_end_matches("MB")
            .parse::<f64>()
            .unwrap()
            .round()
    );
    assert_eq!(images["Reclaimable"], "0B (0%)");
    let ctrs = &rows[1];
    assert_eq!(
        (ctrs["TotalCount"].as_str(), ctrs["Active"].as_str()),
        (Some("1"), Some("0"))
    );
    let csize = ctrs["Size"].as_str().unwrap();
    assert_ne!(csize, "0B", "the writable layer holds a 5kB file");
    assert_eq!(ctrs["Reclaimable"], format!("{csize} (100%)"));
    assert_eq!(rows[2]["TotalCount"], "1");
    assert_eq!(
        sb.den(&["system", "df", "--format", "{{.Type}}={{.TotalCount}}"])
            .ok(),
        "Images=1\nContainers=1\nLocal Volumes=1\nBuild Cache=0\n"
    );
    let verbose = sb.den(&["system", "df", "-v"]).ok();
    for part in [
        "Images space usage:",
        "Containers space usage:",
        "wrote",
        &id[..12],
        "data",
    ] {
        assert!(verbose.contains(part), "{part} in {verbose}");
    }

    // prune: the stopped container; the tagged image stays without -a.
    let out = sb.den(&["system", "prune", "-f"]).ok();
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert_ne!(reclaimed(&out), "0B", "{out}");
    assert_eq!(sb.den(&["ps", "-aq"]).ok(), "");
    assert_eq!(ids(&sb, &[]), BTreeSet::from([id.clone()]));
    let out = sb.den(&["system", "prune", "-a", "-f", "--volumes"]).ok();
    assert!(out.contains(&format!("deleted: sha256:{id}\n")), "{out}");
    assert!(stored_layers(&sb).is_empty());
    let df = sb.den(&["system", "df"]).ok();
    assert!(df.lines().nth(1).unwrap().starts_with("Images"), "{df}");
    assert_eq!(
        df.lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["Images", "0", "0", "0B", "0B"]
    );
}

#[test]
fn history_shows_the_steps_newest_first() {
    let (bb, lay) = (busybox(), layered());
    let sb = pulled(&[&bb, &lay]);
    let id = id_of(&sb, &bb);
    let out = sb.den(&["history", &bb]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"],
        "{out}"
    );
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[1].starts_with(&id[..12]), "{out}");
    assert!(
        lines[1].contains("mkimage.py") && lines[1].contains(" ago "),
        "{out}"
    );
    assert!(lines[1].trim_end().ends_with("MB"), "{out}");
    assert_eq!(
        sb.den(&["history", "-q", &bb]).ok(),
        format!("{}\n", &id[..12])
    );

    // Five layers: the top row carries the id, the others are <missing>.
    let rows: Vec<serde_json::Value> = sb
        .den(&["image", "history", "--format", "json", &lay])
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["ID"], id_of(&sb, &lay)[..12]);
    assert!(rows[1..].iter().all(|r| r["ID"] == "<missing>"));
    assert!(rows.iter().all(|r| r["CreatedBy"] == "mkimage.py"));
    assert_eq!(
        sb.den(&["history", "--no-trunc", "--format", "{{.ID}}", &bb])
            .ok(),
        format!("sha256:{id}\n")
    );

    // Metadata steps show as 0B rows.
    let ctx = sb.dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {bb}\nENV A=1\n")).unwrap();
    sb.den(&["build", "-q", "-t", "withenv", ctx.to_str().unwrap()])
        .ok();
    let rows: Vec<serde_json::Value> = sb
        .den(&["history", "--format", "json", "withenv"])
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0]["CreatedBy"].as_str().unwrap().contains("A=1"),
        "{rows:?}"
    );
    assert_eq!(rows[0]["Size"], "0B");
    assert_eq!(rows[1]["ID"], "<missing>");
    sb.den(&["history", "nope:1"]).fails_with(1, "nope:1");
}

#[test]
fn images_filters_and_formats() {
    let (bb, lay) = (busybox(), layered());
    let sb = pulled(&[&bb, &lay]);
    let bb_id = id_of(&sb, &bb);
    let lay_id = id_of(&sb, &lay);
    let tar = sb.dir.join("l.tar");
    std::fs::write(&tar, rootfs_tar(&[("f", "x")])).unwrap();
    let labelled = sb
        .den(&[
            "import",
            "-c",
            "LABEL team=db tier=1",
            tar.to_str().unwrap(),
            "labelled:1",
        ])
        .ok()
        .trim()
        .trim_start_matches("sha256:")
        .to_string();
    sb.den(&["tag", &bb, "second:1"]).ok();

    // --format json: one object per row, docker's fields.
    let out = sb.den(&["images", "--format", "json"]).ok();
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4, "{out}");
    for r in &rows {
        for k in [
            "Containers",
            "CreatedAt",
            "CreatedSince",
            "Digest",
            "ID",
            "Repository",
            "SharedSize",
            "Size",
            "Tag",
            "UniqueSize",
            "VirtualSize",
        ] {
            assert!(r.get(k).is_some(), "{k} in {r}");
        }
    }
    let second = rows.iter().find(|r| r["Repository"] == "second").unwrap();
    assert_eq!(
        (second["Tag"].as_str(), second["ID"].as_str()),
        (Some("1"), Some(&bb_id[..12]))
    );
    assert_eq!(second["Digest"], "<none>");
    let pulled_row = rows
        .iter()
        .find(|r| r["Tag"] == "latest" && r["ID"] == bb_id[..12])
        .unwrap();
    assert!(
        pulled_row["Digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let table = sb
        .den(&["image", "ls", "--format", "table {{.Repository}}\t{{.Tag}}"])
        .ok();
    assert!(table.starts_with("REPOSITORY"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().eq(["labelled", "1"])),
        "{table}"
    );
    let digests = sb.den(&["images", "--digests"]).ok();
    assert!(
        digests.lines().next().unwrap().contains("DIGEST"),
        "{digests}"
    );

    // dangling: busybox loses both names.
    sb.den(&["tag", &lay, &bb]).ok();
    sb.den(&["tag", &lay, "second:1"]).ok();
    assert_eq!(
        ids(&sb, &["--filter", "dangling=true"]),
        BTreeSet::from([bb_id.clone()])
    );
    let dangling = sb.den(&["images", "-f", "dangling=true"]).ok();
    assert_eq!(dangling.lines().count(), 2, "{dangling}");
    assert!(
        dangling.lines().nth(1).unwrap().starts_with("<none>"),
        "{dangling}"
    );
    assert_eq!(
        ids(&sb, &["--filter", "dangling=false"]),
        BTreeSet::from([lay_id.clone(), labelled.clone()])
    );
    // reference, label, since/before.
    assert_eq!(
        sb.den(&[
            "images",
            "--filter",
            "reference=lab*",
            "--format",
            "{{.Repository}}"
        ])
        .ok(),
        "labelled\n"
    );
    assert_eq!(
        ids(&sb, &["--filter", "reference=*/library/*"]),
        BTreeSet::from([lay_id.clone()])
    );
    assert_eq!(
        ids(&sb, &["--filter", "label=team=db"]),
        BTreeSet::from([labelled.clone()])
    );
    assert_eq!(
        ids(&sb, &["--filter", "label=tier"]),
        BTreeSet::from([labelled.clone()])
    );
    assert!(ids(&sb, &["--filter", "label=team=web"]).is_empty());
    assert_eq!(
        ids(&sb, &["--filter", "since=second:1"]),
        BTreeSet::from([labelled.clone()])
    );
    assert!(!ids(&sb, &["--filter", "before=labelled:1"]).contains(&labelled));
    sb.den(&["images", "--filter", "colour=red"])
        .fails_with(125, "colour=red");
}

/// The entries of a tar: path -> (uid, content).
fn entries(tar: &[u8]) -> std::collections::BTreeMap<String, (u64, Vec<u8>)> {
    let mut out = std::collections::BTreeMap::new();
    let mut ar = tar::Archive::new(tar);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let uid = e.header().uid().unwrap();
        let mut content = Vec::new();
        e.read_to_end(&mut content).unwrap();
        out.insert(path, (uid, content));
    }
    out
}

#[test]
fn export_then_import_round_trip() {
    let lay = layered();
    let sb = pulled(&[&lay]);
    sb.den(&[
        "run",
        "--name",
        "w",
        &lay,
        "sh",
        "-c",
        "echo made > /made; rm /srv/root-owned; mkdir -p /new/dir",
    ])
    .ok();
    let file = sb.dir.join("w.tar");
    sb.den(&["export", "-o", file.to_str().unwrap(), "w"]).ok();
    let tar = std::fs::read(&file).unwrap();
    let e = entries(&tar);
    assert_eq!(e["made"].1, b"made\n");
    assert!(e.contains_key("new/dir/"), "{:?}", e.keys());
    assert!(e.contains_key("bin/busybox"));
    assert!(
        !e.contains_key("srv/root-owned"),
        "deleted in the container"
    );
    assert!(
        e.keys().all(|k| !k.contains(".wh.")),
        "no whiteouts in an export"
    );
    // Owners as the container sees them.
    assert_eq!(e["bin/busybox"].0, 0);
    if sb.mapped() {
        assert_eq!(e["srv/app-owned"].0, 1000);
    }
    // The same tar on stdout, and through `container export`.
    let piped = sb.den(&["container", "export", "w"]);
    assert_eq!(piped.ok_bytes(), &tar[..]);

    // import: a new image with the container's files.
    let out = sb
        .den(&["import", "-m", "round trip", file.to_str().unwrap(), "rt:1"])
        .ok();
    assert!(
        out.starts_with("sha256:") && out.trim().len() == 71,
        "{out}"
    );
    assert_eq!(
        sb.den(&["run", "--rm", "rt:1", "cat", "/made"]).ok(),
        "made\n"
    );
    assert_eq!(
        sb.den(&[
            "run",
            "--rm",
            "rt:1",
            "sh",
            "-c",
            "test -e /srv/root-owned || echo gone"
        ])
        .ok(),
        "gone\n"
    );
    let hist = sb
        .den(&["history", "--format", "{{.CreatedBy}}|{{.Comment}}", "rt:1"])
        .ok();
    assert_eq!(hist, "den import|round trip\n");
    if sb.mapped() {
        assert_eq!(
            sb.den(&["run", "--rm", "rt:1", "stat", "-c", "%u", "/srv/app-owned"])
                .ok(),
            "1000\n"
        );
    }

    // gzip from stdin, with --change.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    sb.den_input(
        &[
            "image",
            "import",
            "-c",
            "CMD [\"cat\", \"/made\"]",
            "-c",
            "ENV X=1",
            "-",
            "rt:gz",
        ],
        &gz,
    )
    .ok();
    assert_eq!(sb.den(&["run", "--rm", "rt:gz"]).ok(), "made\n");
    assert_eq!(id_of(&sb, "rt:gz").len(), 64);
    assert_eq!(
        layers_of(&sb, "rt:gz"),
        layers_of(&sb, "rt:1"),
        "the diff id is the uncompressed tar's"
    );

    // A malformed tar and a bad --change: one error line, nothing stored.
    let before = sb.store_listing();
    let junk = sb.dir.join("junk.tar");
    std::fs::write(&junk, vec![b'x'; 3000]).unwrap();
    sb.den(&["import", junk.to_str().unwrap(), "junk:1"])
        .fails_with(125, "tar");
    sb.den(&["import", "-c", "RUN true", file.to_str().unwrap()])
        .fails_with(125, "RUN true");
    sb.den(&["import", "/nonexistent.tar"])
        .fails_with(125, "/nonexistent.tar");
    assert_eq!(sb.store_listing(), before);

    // A tar is never written to a terminal.
    let out = sb.den_pty(&[], &["export", "w"]);
    assert_eq!(out.code, 1, "{}", out.out());
    assert!(out.out().contains("cowardly refusing"), "{}", out.out());
    sb.den(&["export", "nope"])
        .fails_with(1, "no such container: nope");
}
