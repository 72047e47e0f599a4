//! Read-only additional stores (`[storage] additional`, `DEN_ADDITIONAL_STORES`): a site's
//! shared store, owned by another user and not writable, used in place.
//!
//! The shared store is made by `integration/setup.sh --shared-store BIN` (as root; `make test`'s
//! run.sh calls it once den is built): the user `den-admin` makes it with den itself
//! (`den --root /var/tmp/den-shared-store import ...`, then `system share`), and root takes the
//! write bits off den's files and, where the kernel lets it, bind-mounts it read-only. A test
//! user cannot make a store that another user owns, and both test users run the same suite, so
//! it is made once, before them. Its image, `shared/solver:2.1`, is busybox with
//! `/opt/solver/VERSION`. What the shared store holds is compared before and after each test
//! (a listing of every path, mode, size and time, and the records' bytes): den never changes it.
//!
//! A store of the user's own, shared with `system share`, is made in a test (that one is
//! mounted with kernel overlayfs, the other user's with fuse-overlayfs).

use std::path::Path;

use crate::sandbox::{Sandbox, busybox, context};

const SHARED: &str = "/var/tmp/den-shared-store";
const IMAGE: &str = "shared/solver:2.1";

/// A sandbox whose config lists the shared store, which must be there, and another user's.
fn sandbox() -> Sandbox {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(Path::new(SHARED).join("store.json")).unwrap_or_else(|e| {
        panic!(
            "{SHARED} is missing ({e}): run `integration/setup.sh --shared-store DIR_OF_DEN_BINARIES` \
             as root (make test does)"
        )
    });
    assert_ne!(
        md.uid(),
        my_uid(),
        "the shared store must be another user's"
    );
    let sb = Sandbox::new();
    sb.config(&format!("[storage]\nadditional = [\"{SHARED}\"]\n"));
    sb
}

fn my_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid()
}

/// Everything about the shared store a reader can see: each path with its mode, size and
/// modification time, and the bytes of its records.
fn fingerprint(sb: &Sandbox) -> String {
    sb.sh(&format!(
        "find {SHARED} -printf '%p %m %s %T@\\n' 2>/dev/null | sort; cat {SHARED}/store.json {SHARED}/images.json"
    ))
    .out()
}

/// The own store's layers and blobs.
fn content(sb: &Sandbox) -> Vec<String> {
    sb.store_listing()
        .into_iter()
        .filter(|e| e.starts_with("layers/") || e.starts_with("blobs/"))
        .collect()
}

#[test]
fn the_shared_image_is_listed_marked_inspected_and_run_in_place_with_writes() {
    let sb = sandbox();
    let before = fingerprint(&sb);
    let listing = sb.den(&["images"]).ok();
    let header = listing.lines().next().unwrap();
    assert!(header.ends_with("R/O"), "{listing}");
    let row = listing
        .lines()
        .find(|l| l.starts_with("shared/solver "))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(row.trim_end().ends_with("true"), "{row}");
    let fields = sb
        .den(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ReadOnly}}",
        ])
        .ok();
    assert_eq!(fields.trim(), "shared/solver:2.1 true");
    let id = sb
        .den(&["image", "inspect", "--format", "{{.Id}}", IMAGE])
        .ok();
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let info = sb.den(&["info"]).ok();
    assert!(
        info.contains(&format!("(then, read only: {SHARED})")),
        "{info}"
    );

    let own = content(&sb);
    // Writes into the image's directories: copy-up over another user's files.
    let out = sb
        .den(&[
            "run",
            "--rm",
            IMAGE,
            "sh",
            "-c",
            "cat /opt/solver/VERSION && touch /etc/x && echo guest:x:1:1::/:/bin/sh >> /etc/passwd \
             && tail -1 /etc/passwd && echo tmp > /tmp/t && cat /tmp/t && ls -ld /etc",
        ])
        .ok();
    assert!(out.starts_with("solver 2.1 from the shared store\nguest:x:1:1::/:/bin/sh\ntmp\n"));
    assert!(
        out.contains(" root "),
        "the image's files show as root's: {out}"
    );
    // create + start, and the container's driver.
    let cid = sb.den(&["create", IMAGE, "cat", "/etc/passwd"]).ok();
    let cid = cid.trim();
    let driver = sb.den(&["inspect", "--format", "{{.Driver}}", cid]).ok();
    assert_eq!(driver.trim(), "fuse-overlayfs", "another user's layers");
    assert_eq!(
        sb.den(&["start", "-a", cid]).ok(),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
    sb.den(&["rm", cid]).ok();
    assert_eq!(content(&sb), own, "nothing copied into the own store");
    assert_eq!(fingerprint(&sb), before, "the shared store is unchanged");
}

#[test]
fn a_build_from_the_shared_image_adds_only_its_own_layers() {
    let sb = sandbox();
    let before = fingerprint(&sb);
    let base_layers = sb
        .den(&[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            IMAGE,
        ])
        .ok();
    let dir = context(
        &sb,
        "ctx",
        "FROM shared/solver:2.1\nRUN echo built >> /opt/solver/VERSION && touch /etc/built\nCOPY f /etc/f\n",
        &[("f", b"file\n")],
    );
    sb.den(&["build", "-q", "-t", "mine:1", dir.to_str().unwrap()])
        .ok();
    let layers: Vec<String> = content(&sb)
        .into_iter()
        .filter(|e| e.starts_with("layers/") && e != "layers/l")
        .collect();
    assert_eq!(layers.len(), 2, "RUN and COPY only: {layers:?}");
    let base: Vec<String> = serde_json::from_str(base_layers.trim()).unwrap();
    for b in &base {
        let hex = b.trim_start_matches("sha256:");
        assert!(!layers.iter().any(|l| l.ends_with(hex)), "{layers:?}");
    }
    let out = sb
        .den(&[
            "run",
            "--rm",
            "mine:1",
            "cat",
            "/opt/solver/VERSION",
            "/etc/f",
        ])
        .ok();
    assert_eq!(out, "solver 2.1 from the shared store\nbuilt\nfile\n");
    // The own store is sound: the base's content is the shared store's, not missing.
    sb.den(&["system", "check"]).ok();
    assert_eq!(fingerprint(&sb), before);
}

#[test]
fn the_own_image_wins_a_name_clash() {
    let sb = sandbox();
    let shared_id = sb
        .den(&["image", "inspect", "--format", "{{.Id}}", IMAGE])
        .ok();
    sb.den(&["pull", "-q", &busybox()]).ok();
    sb.den(&["tag", &busybox(), IMAGE]).ok();
    let own_id = sb
        .den(&["image", "inspect", "--format", "{{.Id}}", IMAGE])
        .ok();
    assert_ne!(own_id, shared_id);
    // busybox has no /opt/solver: the run used the own image.
    let out = sb.den(&["run", "--rm", IMAGE, "ls", "/opt/solver"]);
    assert_ne!(out.code, 0, "{}", out.out());
    let rows = sb
        .den(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ReadOnly}}",
        ])
        .ok();
    assert!(rows.contains("shared/solver:2.1 false\n"), "{rows}");
    assert!(rows.contains("shared/solver:2.1 true\n"), "{rows}");
    // Untagged here, the name is the shared store's again.
    sb.den(&["rmi", IMAGE]).ok();
    assert_eq!(
        sb.den(&["image", "inspect", "--format", "{{.Id}}", IMAGE])
            .ok(),
        shared_id
    );
    // Tagging the shared image names it here: a record, no content.
    let own = content(&sb);
    sb.den(&["tag", IMAGE, "mine:1"]).ok();
    let rows = sb
        .den(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ReadOnly}} {{.ID}}",
        ])
        .ok();
    let short = &shared_id.trim().trim_start_matches("sha256:")[..12];
    assert!(rows.contains(&format!("mine:1 false {short}\n")), "{rows}");
    assert_eq!(
        sb.den(&["run", "--rm", "mine:1", "cat", "/opt/solver/VERSION"])
            .ok(),
        "solver 2.1 from the shared store\n"
    );
    sb.den(&["rmi", "mine:1"]).ok();
    assert_eq!(content(&sb), own);
    sb.den(&["system", "check"]).ok();
}

#[test]
fn rmi_prune_and_reset_leave_the_shared_store_alone_and_say_why() {
    let sb = sandbox();
    let before = fingerprint(&sb);
    sb.den(&["run", "--rm", IMAGE, "echo"]).ok();
    let own = sb.store_listing();
    sb.den(&["rmi", IMAGE])
        .fails_with(1, &format!("is in the read-only store {SHARED}"));
    sb.den(&["rmi", "-f", IMAGE])
        .fails_with(1, "den never changes an additional store");
    assert_eq!(sb.store_listing(), own);
    sb.den(&["image", "prune", "-a", "-f"]).ok();
    sb.den(&["system", "prune", "-a", "-f"]).ok();
    let reset = sb.den(&["system", "reset", "--force"]);
    reset.ok();
    assert!(
        reset.stderr.contains(&format!(
            "the additional store {SHARED} is read only to den"
        )),
        "{}",
        reset.stderr
    );
    assert_eq!(fingerprint(&sb), before);
    let rows = sb.den(&["images", "--format", "{{.Repository}}"]).ok();
    assert_eq!(rows, "shared/solver\n");
}

#[test]
fn bad_additional_stores_are_skipped_with_one_line_each() {
    let mut sb = sandbox();
    let empty = sb.dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let old = sb.dir.join("old");
    std::fs::create_dir(&old).unwrap();
    std::fs::write(old.join("store.json"), r#"{"format":99}"#).unwrap();
    // The environment's list replaces the config's.
    sb.set_env(
        "DEN_ADDITIONAL_STORES",
        &format!(
            "{}/missing:{}:{}:{SHARED}",
            sb.dir.display(),
            empty.display(),
            old.display()
        ),
    );
    let out = sb.den(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(out.ok(), "shared/solver:2.1\n");
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warnings.len(), 3, "{}", out.stderr);
    assert!(
        warnings[0].contains("/missing does not exist"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].contains("is not a den store"),
        "{}",
        warnings[1]
    );
    assert!(warnings[2].contains("has format 99"), "{}", warnings[2]);
    for w in &warnings {
        assert!(w.starts_with("den: warning: the additional store "), "{w}");
    }
    // Nothing was made in them.
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&old).unwrap().count(), 1);
    sb.set_env("DEN_ADDITIONAL_STORES", empty.to_str().unwrap());
    let out = sb.den(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(out.ok(), "", "the config's store is not used");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_shared_store_of_ones_own_stays_readable_and_runs_with_kernel_overlay() {
    use std::os::unix::fs::PermissionsExt;
    let admin = Sandbox::new();
    let site = admin.dir.join("site");
    let root = site.to_str().unwrap();
    admin.den(&["--root", root, "pull", "-q", &busybox()]).ok();
    let mode = |p: &str| {
        std::fs::metadata(site.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700, "private by default");
    let said = admin.den(&["--root", root, "system", "share"]).ok();
    assert!(
        said.contains("shared read-only with other users (1 images"),
        "{said}"
    );
    assert_eq!(mode(""), 0o755);
    assert_eq!(mode("images.json"), 0o644);
    assert_eq!(mode("containers"), 0o700);
    // Later writes keep it readable, and opening it does not make it private again.
    admin
        .den(&["--root", root, "tag", &busybox(), "site/tool:1"])
        .ok();
    assert_eq!(mode(""), 0o755);
    assert_eq!(mode("images.json"), 0o644);

    let sb = Sandbox::new();
    sb.config(&format!("[storage]\nadditional = [\"{root}\"]\n"));
    let cid = sb
        .den(&[
            "create",
            "site/tool:1",
            "sh",
            "-c",
            "touch /etc/x && echo ok",
        ])
        .ok();
    let driver = sb
        .den(&["inspect", "--format", "{{.Driver}}", cid.trim()])
        .ok();
    let chosen = sb.den(&["info", "--format", "{{.Driver}}"]).ok();
    assert_eq!(driver.trim(), chosen.trim(), "own layers: the usual driver");
    assert_eq!(sb.den(&["start", "-a", cid.trim()]).ok(), "ok\n");
    assert!(
        content(&sb).iter().all(|e| e == "layers/l"),
        "{:?}",
        content(&sb)
    );
    sb.den(&["rm", cid.trim()]).ok();
    drop(sb);
    admin
        .den(&["--root", root, "system", "reset", "--force"])
        .ok();
}
