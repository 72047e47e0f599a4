//! den against a hostile world: a registry that lies (fixtures/liar.py) and a corpus of hostile
//! layers and archives, from the outside.
//!
//! Every case ends one of two ways. Refused: exactly one `den: error:` line naming what was
//! wrong, a hint, no control characters from the server on the terminal, and the store exactly
//! as it was. Contained: den takes the image, and what its layers write lands inside the layer.
//! Either way a victim directory outside the store, which the layers aim at with `..`, absolute
//! paths, symlinks and hard links, keeps its content.
//!
//! The liar is one Python process per test binary (the repository name picks the lie); it
//! counts what it is asked for, so a test can tell that den stopped before downloading layers,
//! never had more than four blobs in flight, and sent no credentials to where it was redirected.
//!
//! The cases, and what den must answer:
//! - registry lies (refused): wrong digest, a blob past its size (with and without
//!   Content-Length), 12 MiB manifests and configs, invalid JSON, unknown manifest and layer media
//!   types, a nested index, 2,000 layers (nothing downloaded), diff ids and layer digests that
//!   are paths, a diff id or an index entry that does not match, manifest and config that
//!   disagree, redirect loops, redirects to `file:`, other bytes behind a redirect; slow drips of
//!   a body, of headers and of the auth challenge (given up in seconds with `DEN_STALL_SECS=2`);
//!   terminal escapes in error bodies and media types (shown as text);
//! - registry behaviour (contained): a blob redirected to another origin gets no credentials;
//!   30 layers download at most 4 at a time;
//! - layers (refused): `..`, symlinks and hard links out of the layer (also a hard link to a deep
//!   symlink, and through an absolute symlink), whiteouts `.wh..`, `.wh...` and of a path
//!   outside, symlink loops, hard links to directories, paths past PATH_MAX and names past 255,
//!   truncated and garbage layers;
//! - layers (contained): absolute paths, writes and whiteouts through absolute symlinks (in the
//!   same layer and across layers), device nodes (skipped), set-id files (owned by the user), a
//!   tree 1,500 deep, mislabelled compression (sniffed, diff id checked), a 512 MiB gzip bomb and a
//!   4 GiB sparse file (under 64 MiB of memory, holes on disk);
//! - archives for `den load`: hostile layers, layer paths out of the archive, a symlinked layer
//!   entry, a diff id that is a path, 2,000 layers (refused); a gzip bomb and 200 MiB of small
//!   entries (under 64 MiB of memory).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::sandbox::{Out, Sandbox, env, run, which};

/// The lying registry: `addr` is the registry, `elsewhere` another origin it redirects to.
pub(crate) struct Liar {
    addr: String,
    elsewhere: String,
}

/// The directory the hostile layers aim at, with what it must keep holding.
fn victim() -> &'static Path {
    static V: OnceLock<PathBuf> = OnceLock::new();
    V.get_or_init(|| {
        let v = env().tmp.join("victim");
        std::fs::create_dir_all(v.join("somedir")).unwrap();
        std::fs::write(v.join("target.txt"), "original\n").unwrap();
        std::fs::write(v.join("somedir/keep.txt"), "keep\n").unwrap();
        v
    })
}

/// The victim directory as it was made: nothing added, removed or changed.
#[track_caller]
fn victim_intact() {
    let v = victim();
    let mut names: Vec<String> = walk(v)
        .iter()
        .map(|p| p.strip_prefix(v).unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["somedir", "somedir/keep.txt", "target.txt"],
        "something was written in {}",
        v.display()
    );
    assert_eq!(
        std::fs::read_to_string(v.join("target.txt")).unwrap(),
        "original\n"
    );
    assert_eq!(
        std::fs::read_to_string(v.join("somedir/keep.txt")).unwrap(),
        "keep\n"
    );
    let md = std::fs::symlink_metadata(v.join("target.txt")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(md.nlink(), 1, "a hard link to the victim's file was made");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.clone());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}

pub(crate) fn liar() -> &'static Liar {
    static L: OnceLock<Liar> = OnceLock::new();
    L.get_or_init(|| {
        let victim = victim().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        // As for docker-registry (sandbox.rs): --pdeathsig ties the server to this thread, which
        // lives as long as the test process.
        std::thread::spawn(move || {
            let mut child = Command::new("setpriv")
                .args(["--pdeathsig", "KILL", "--", "python3"])
                .arg(env().fixtures.join("liar.py"))
                .arg("serve")
                .arg(&victim)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start liar.py");
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            tx.send(line).unwrap();
            // Until the test process ends.
            let _ = child.wait();
        });
        let line = rx.recv().unwrap();
        let ports: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(ports.len(), 2, "liar.py did not start: {line:?}");
        Liar {
            addr: format!("127.0.0.1:{}", ports[0]),
            elsewhere: format!("127.0.0.1:{}", ports[1]),
        }
    })
}

impl Liar {
    pub(crate) fn image(&self, scenario: &str) -> String {
        format!("{}/{scenario}:latest", self.addr)
    }

    /// What the liar saw for `scenario`.
    fn stats(&self, scenario: &str) -> serde_json::Value {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(s, "GET /_stats/{scenario} HTTP/1.0\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let body = resp.split_once("\r\n\r\n").expect("an HTTP answer").1;
        serde_json::from_str(body).unwrap()
    }
}

/// A sandbox whose store already holds an image (so "unchanged" means something).
fn ready() -> Sandbox {
    let sb = Sandbox::new();
    sb.den(&["pull", "-q", &liar().image("ok/busybox")]).ok();
    sb
}

/// No control character but newlines on den's terminal: a server's escape sequences are shown
/// as text, never sent to the terminal.
#[track_caller]
fn printable(what: &str, out: &Out) {
    for (name, text) in [("stderr", out.stderr.clone()), ("stdout", out.out())] {
        if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\n') {
            panic!("{what}: den's {name} holds the control character {c:?}: {text:?}");
        }
    }
}

/// `den ARGS` is refused with `code` and one error line containing `needle`; the store, the
/// image list and the victim are as they were.
#[track_caller]
fn refused(sb: &Sandbox, args: &[&str], code: i32, needle: &str) -> Out {
    let before = sb.store_listing();
    let out = sb.den(args);
    out.fails_with(code, needle);
    printable(&args.join(" "), &out);
    assert_eq!(
        sb.store_listing(),
        before,
        "{args:?}: the store changed\n{}",
        out.stderr
    );
    victim_intact();
    out
}

#[track_caller]
fn pull_refused(sb: &Sandbox, scenario: &str, needle: &str) -> Out {
    refused(sb, &["pull", &liar().image(scenario)], 125, needle)
}

// ------------------------------------------------------------------------ the lying registry

#[test]
fn lying_registries_are_refused() {
    let sb = ready();
    let img = |s| liar().image(s);
    for (scenario, needle) in [
        ("lie/digest", "does not match its digest"),
        ("lie/long-blob", "sent more than the"),
        ("lie/long-blob-stream", "sent more than the"),
        ("lie/huge-manifest", "more than den reads (4194304)"),
        ("lie/huge-manifest-stream", "more than den reads (4194304)"),
        ("lie/huge-config", "is 12583"),
        ("lie/nested-index", "\"nested index\""),
        (
            "lie/wide-index",
            "300 entries, more than den keeps in a list (256)",
        ),
        (
            "lie/layer-media",
            "unsupported media type \"application/vnd.liar.layer.v1.tar+evil\"",
        ),
        (
            "lie/count-mismatch",
            "lists 2 layers but its configuration lists 3",
        ),
        ("lie/invalid-json", "manifest of"),
        (
            "lie/unknown-media",
            "unsupported media type \"application/vnd.liar.manifest.v9+json\"",
        ),
        ("lie/evil-diffid", "names a bad digest"),
        ("lie/evil-layer-digest", "lie/evil-layer-digest"),
        ("lie/wrong-diffid", "does not match its diff id"),
        ("lie/index-manifest", "sent a manifest whose digest is"),
    ] {
        let out = pull_refused(&sb, scenario, needle);
        assert!(
            out.stderr.contains(&img(scenario)) || out.stderr.contains(scenario),
            "{scenario}: the error names the image: {}",
            out.stderr
        );
    }
    // The 256 MiB that followed the blob were not read: den stopped at its size.
    let sent = liar().stats("lie/long-blob-stream")["sent"]
        .as_u64()
        .unwrap();
    assert!(sent < 64 << 20, "den read {sent} bytes past the blob");
    // Refused from the manifest: nothing downloaded.
    for scenario in [
        "lie/huge-config",
        "lie/layer-media",
        "lie/evil-layer-digest",
    ] {
        assert_eq!(liar().stats(scenario)["blobs"], 0, "{scenario}");
    }
    // A config whose diff id is a path: refused before any layer was unpacked (the layer blob
    // the store lacks may have started with the config, and was thrown away with the staging).
    let blobs = liar().stats("lie/evil-diffid")["blobs"].as_u64().unwrap();
    assert!(
        (1..=2).contains(&blobs),
        "config and at most its one layer: {blobs}"
    );
    assert_eq!(sb.den(&["images", "-q"]).ok().lines().count(), 1);
}

#[test]
fn thousands_of_layers_are_refused_before_any_download() {
    let sb = ready();
    let t = Instant::now();
    pull_refused(
        &sb,
        "lie/layers-2000",
        "has 2000 layers, more than den mounts (500)",
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let stats = liar().stats("lie/layers-2000");
    assert_eq!(stats["manifests"], 1);
    assert_eq!(stats["blobs"], 0, "den downloaded something: {stats}");
}

#[test]
fn slow_drips_give_up_within_seconds() {
    let mut sb = ready();
    sb.set_env("DEN_STALL_SECS", "2");
    let sb = sb;
    // A layer, a manifest and a manifest's headers dripped, and a registry whose first answer
    // (the auth challenge) drips its headers. In parallel: each takes seconds of waiting.
    let images = [
        liar().image("lie/drip-blob"),
        liar().image("lie/drip-manifest"),
        liar().image("lie/drip-headers"),
        format!("{}/ok/busybox:latest", liar().elsewhere),
    ];
    let outs: Vec<(String, Out, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = images
            .iter()
            .map(|image| {
                let sb = &sb;
                s.spawn(move || {
                    let t = Instant::now();
                    let out = sb.den(&["pull", image]);
                    (image.clone(), out, t.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (scenario, out, took) in outs {
        out.fails_with(125, "sent less than 16 KiB in 2 s while den fetched");
        assert!(
            out.stderr.contains("run the command again"),
            "{scenario}: the hint says to retry: {}",
            out.stderr
        );
        assert!(
            took < Duration::from_secs(12),
            "{scenario}: den waited {took:?} on a server dripping a byte a second"
        );
        printable(&scenario, &out);
    }
    assert_eq!(sb.den(&["images", "-q"]).ok().lines().count(), 1);
    victim_intact();
}

#[test]
fn server_text_reaches_the_terminal_without_control_characters() {
    let sb = ready();
    for (scenario, needle) in [
        (
            "lie/escape-500",
            "500 Internal Server Error: ?]0;pwned-title",
        ),
        ("lie/escape-404-blob", "not found in the registry"),
        ("lie/escape-media", "unsupported media type"),
    ] {
        let out = pull_refused(&sb, scenario, needle);
        let error = out
            .stderr
            .lines()
            .find(|l| l.starts_with("den: error:"))
            .unwrap();
        assert!(error.len() < 1000, "{scenario}: {} bytes", error.len());
    }
}

#[test]
fn blobs_download_at_most_four_at_a_time() {
    let sb = Sandbox::new();
    let img = liar().image("slow/thirty");
    sb.den(&["pull", "-q", &img]).ok();
    let stats = liar().stats("slow/thirty");
    // 30 layers and the config.
    assert_eq!(stats["blobs"], 31, "{stats}");
    let peak = stats["peak"].as_u64().unwrap();
    eprintln!("slow/thirty: at most {peak} blobs in flight");
    assert!((1..=4).contains(&peak), "{peak} blobs in flight at once");
    assert_eq!(
        sb.den(&["run", "--rm", &img, "cat", "/layer-00", "/layer-28"])
            .ok(),
        "0\n28\n"
    );
}

#[test]
fn redirects_carry_no_credentials_and_are_checked() {
    let sb = ready();
    // Credentials for the liar, as `docker login` leaves them.
    let docker = sb.home.join(".docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auth = base64_encode(b"alice:secret");
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, liar().addr),
    )
    .unwrap();
    // Elsewhere holds the right bytes: the pull works, and only the registry saw credentials.
    let img = liar().image("lie/redirect-elsewhere");
    sb.den(&["pull", "-q", &img]).ok();
    let stats = liar().stats("lie/redirect-elsewhere");
    assert!(stats["auth"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["elsewhere"], 1, "{stats}");
    assert_eq!(stats["elsewhere_auth"], 0, "credentials went elsewhere");
    assert_eq!(
        sb.den(&["run", "--rm", &img, "cat", "/small.txt"]).ok(),
        "lie/redirect-elsewhere"
    );
    // Elsewhere holds other bytes; a loop between the two; a redirect to a local file.
    pull_refused(
        &sb,
        "lie/redirect-elsewhere-bad",
        "does not match its digest",
    );
    let t = Instant::now();
    pull_refused(&sb, "lie/redirect-loop", "redirected more than 10 times");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(
        liar().stats("lie/redirect-loop")["elsewhere"]
            .as_u64()
            .unwrap()
            <= 10
    );
    pull_refused(
        &sb,
        "lie/redirect-file",
        "a redirect to file:///etc/passwd, which is not an http or https address",
    );
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

// ------------------------------------------------------------------------ hostile layers

#[test]
fn hostile_layers_are_refused() {
    let sb = ready();
    for (case, needle) in [
        ("dotdot", "would land outside the layer directory"),
        ("dotdot-inner", "would land outside the layer directory"),
        ("symlink-escape", "outside the layer directory"),
        (
            "symlink-escape-deep",
            "\"a/b/up\" links to \"../../..\", outside",
        ),
        ("hardlink-dotdot", "outside the layer directory"),
        ("hardlink-absolute", "which the layer does not contain"),
        ("hardlink-to-symlink", "\"hostvictim\" links to"),
        (
            "hardlink-through-symlink",
            "which the layer does not contain",
        ),
        ("whiteout-dot", "\"d/.wh..\" would land outside"),
        ("whiteout-dotdot", "\".wh...\" would land outside"),
        ("whiteout-dotdot-deep", "\"a/b/.wh...\" would land outside"),
        ("whiteout-outside", "would land outside the layer directory"),
        ("dotdot-escapes", "\"../\\u{1b}]0;pwned-title"),
        (
            "symlink-loop",
            "too many levels of symbolic links under \"a\"",
        ),
        (
            "hardlink-dir",
            "\"hl\" is a hard link to the directory \"somedir\"",
        ),
        ("long-name", "File name too long"),
        ("long-component", "File name too long"),
        ("truncated", "not a valid"),
        ("garbage", "not a valid"),
    ] {
        let out = pull_refused(&sb, &format!("layer/{case}"), needle);
        let error = out
            .stderr
            .lines()
            .find(|l| l.starts_with("den: error:"))
            .unwrap();
        assert!(
            error.len() < 1000,
            "{case}: an error line of {} bytes",
            error.len()
        );
        // Which layer of which image, and whose fault it is.
        assert!(
            error.contains(&format!(
                "of {} cannot be unpacked",
                liar().image(&format!("layer/{case}"))
            )),
            "{case}: {error}"
        );
        let hint = out.stderr.lines().find(|l| l.starts_with("hint:")).unwrap();
        let fault = match case {
            "long-name" | "long-component" => "Rebuild the image with shorter paths",
            "truncated" | "garbage" => "the layer is damaged",
            "symlink-loop" => "the layer's symlinks loop",
            _ => "this layer is malformed or malicious",
        };
        assert!(hint.contains(fault), "{case}: {hint}");
    }
    assert_eq!(sb.den(&["images", "-q"]).ok().lines().count(), 1);
}

/// The directory of the unpacked layer holding `rel`, if any.
fn in_layers(sb: &Sandbox, rel: &str) -> Vec<PathBuf> {
    std::fs::read_dir(sb.root.join("layers"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("diff").join(rel))
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect()
}

#[test]
fn hostile_layers_are_contained() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let sb = Sandbox::new();
    let img = liar().image("layer/contained");
    // The tree of 1,500 levels costs time and memory linear in its depth.
    let (out, kib) = measured(&sb, &format!("pull -q {img}"));
    out.ok();
    eprintln!("den pull of the contained corpus: {kib} KiB");
    assert!(kib < 64 << 10, "den pull of a deep tree used {kib} KiB");
    victim_intact();
    let v = victim().display().to_string();
    let vrel = v.trim_start_matches('/');

    // On the host: each write through a symlink landed in the layer, under the victim's path.
    for (file, content) in [
        ("abs.txt", "absolute\n"),
        ("through.txt", "through a symlink\n"),
        ("via-root.txt", "via the root symlink\n"),
    ] {
        let found = in_layers(&sb, &format!("{vrel}/{file}"));
        assert_eq!(found.len(), 1, "{file}");
        assert_eq!(std::fs::read_to_string(&found[0]).unwrap(), content);
    }
    // The whiteout through a symlink hides the layer's own path, not the victim's file.
    let wh = in_layers(&sb, &format!("{vrel}/target.txt"));
    assert_eq!(wh.len(), 1);
    assert!(
        std::fs::symlink_metadata(&wh[0])
            .unwrap()
            .file_type()
            .is_char_device()
    );
    // Device nodes are not made; a fifo is.
    assert!(in_layers(&sb, "devs/sda").is_empty());
    assert!(in_layers(&sb, "devs/loop0").is_empty());
    let fifo = in_layers(&sb, "devs/fifo");
    assert!(
        std::fs::symlink_metadata(&fifo[0])
            .unwrap()
            .file_type()
            .is_fifo()
    );
    // Set-id files belong to the user (or the user's subordinate ids), never to root.
    let me = std::fs::metadata(&sb.dir).unwrap().uid();
    for f in ["suid/root", "suid/app"] {
        let md = std::fs::symlink_metadata(&in_layers(&sb, f)[0]).unwrap();
        assert_ne!(md.uid(), 0, "{f}");
        assert_ne!(md.gid(), 0, "{f}");
        if f == "suid/root" {
            assert_eq!(md.uid(), me, "{f}");
        }
    }

    // Inside the container, what the layers made, across layers too.
    let deep: String = "/d".repeat(1500);
    let script = format!(
        "cat {v}/abs.txt {v}/through.txt {v}/via-root.txt /cross/cross.txt /lnabs/second.txt \
         /deep{deep}/bottom.txt /mislabel/gzip-as-zstd /mislabel/tar-as-gzip /mislabel/zstd-as-tar; \
         ls {v}; test -e /devs/sda || echo no-sda; test -p /devs/fifo && echo fifo; \
         stat -c '%a %u' /suid/root"
    );
    let out = sb.den(&["run", "--rm", &img, "sh", "-c", &script]).ok();
    let expected = "absolute\nthrough a symlink\nvia the root symlink\nacross layers\nsecond layer\n\
        bottom\ngzip bytes labelled zstd\na plain tar labelled gzip\nzstd bytes labelled tar\n\
        abs.txt\nthrough.txt\nvia-root.txt\nno-sda\nfifo\n4755 0\n";
    assert_eq!(out, expected);
    victim_intact();
}

/// `den ARGS` under /usr/bin/time: its output and its peak memory in KiB.
fn measured(sb: &Sandbox, args: &str) -> (Out, u64) {
    let time = which("time").expect("/usr/bin/time: run setup.sh (package time)");
    let report = sb.dir.join("maxrss");
    let out = sb.sh(&format!(
        "{} -f %M -o {} den {args}",
        time.display(),
        report.display()
    ));
    let kib = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (out, kib)
}

#[test]
fn bombs_stay_small() {
    let sb = Sandbox::new();
    // 512 MiB of zeros in 530 KB of gzip: inflated as it streams, never whole.
    let (out, kib) = measured(&sb, &format!("pull -q {}", liar().image("layer/bomb")));
    out.ok();
    eprintln!("den pull of a gzip bomb: {kib} KiB");
    assert!(kib < 64 << 10, "den pull of a gzip bomb used {kib} KiB");
    // A sparse file of 4 GiB in a few bytes of tar: written sparse, not as 4 GiB of zeros.
    let (out, kib) = measured(&sb, &format!("pull -q {}", liar().image("layer/sparse")));
    out.ok();
    eprintln!("den pull of a sparse file: {kib} KiB");
    assert!(kib < 64 << 10, "den pull of a sparse file used {kib} KiB");
    let f = &in_layers(&sb, "sparse")[0];
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(f).unwrap();
    assert_eq!(md.len(), 4 << 30);
    assert!(
        md.blocks() * 512 < 16 << 20,
        "the sparse file takes {} bytes on disk",
        md.blocks() * 512
    );
    victim_intact();
}

// ------------------------------------------------------------------------ hostile archives

fn archive(sb: &Sandbox, case: &str) -> PathBuf {
    let out = sb.dir.join(format!("{}.tar", case.replace('/', "-")));
    let mut c = Command::new("python3");
    c.arg(env().fixtures.join("liar.py"))
        .arg("archive")
        .arg(case)
        .arg(victim())
        .arg(&out);
    let r = run(c);
    assert_eq!(r.code, 0, "liar.py archive {case}: {}", r.stderr);
    out
}

#[test]
fn hostile_archives_are_refused_or_contained() {
    let sb = ready();
    let load = |case: &str| {
        let a = archive(&sb, case);
        vec!["load".to_string(), "-i".into(), a.display().to_string()]
    };
    for (case, code, needle) in [
        ("dotdot", 1, "would land outside the layer directory"),
        ("hardlink-to-symlink", 1, "\"hostvictim\" links to"),
        ("layer-path-escape", 1, "target.txt"),
        ("symlink-entry", 1, "evil/layer.tar"),
        ("evil-diffid", 1, "names a bad digest"),
        ("layers-2000", 1, "has 2000 layers"),
    ] {
        let args = load(case);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&sb, &args, code, needle);
    }
    // Bombs: a 512 MiB gzip bomb layer, and 200 MiB of small files in a compressed archive.
    for case in ["bomb", "small-files"] {
        let a = archive(&sb, case);
        let (out, kib) = measured(&sb, &format!("load -q -i {}", a.display()));
        out.ok();
        eprintln!("den load of {case}: {kib} KiB");
        assert!(kib < 64 << 10, "den load of {case} used {kib} KiB");
    }
    victim_intact();
}
