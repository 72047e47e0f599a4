//! Crash safety, tested rather than promised, and `den system check`.
//!
//! den is killed with SIGKILL (the whole process group, as a job limit or Ctrl-\ would) at a
//! random moment of `pull`, `build`, `load`, `rm -f` and `rmi`. After each kill:
//!
//! - `den system check` finds nothing but leftovers, the things a killed den may leave and the
//!   next writer removes (stale staging under `tmp/`, content no record names yet, a removed
//!   container's name): no damage, no half layer;
//! - `den images` lists no half image: an image listed runs, and its files match their checksums;
//! - the command succeeds when run again (`rmi` may say the image is gone: the kill came after
//!   its record went), and then `den system check` is clean: the rerun swept the leftovers;
//! - the image's files match their checksums inside a container (`sha256sum -c`).
//!
//! `make test` runs one trial per command; `make stress` runs 100 (`DEN_CRASH_TRIALS`) and prints
//! where the kills landed. `DEN_CRASH_SEED` repeats a run's moments.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::sandbox::{Out, Registry, Sandbox, registry};

/// What a killed den may leave: the prefixes of `den system check`'s leftover lines.
const LEFTOVERS: &[&str] = &[
    "stale staging entry:",
    "stale temporary file:",
    "unused layer:",
    "unused blob:",
    "dangling link:",
    "dangling name:",
    "partial container:",
    "build step container left by a killed build:",
];

/// xorshift64*: the trials' random moments, reproducible from the seed printed.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("DEN_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("crash trials: DEN_CRASH_SEED={seed}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, max).
    fn below(&mut self, max: Duration) -> Duration {
        let f = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        max.mul_f64(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pull,
    Load,
    Build,
    Rm,
    Rmi,
}

const KINDS: [Kind; 5] = [Kind::Pull, Kind::Load, Kind::Build, Kind::Rm, Kind::Rmi];

/// One store, a registry with a 24 MB image whose files list their checksums, an archive of it
/// and a build context.
struct Bench {
    sb: Sandbox,
    _reg: Registry,
    image: String,
    archive: PathBuf,
    context: PathBuf,
}

const BUILT: &str = "crash-built:latest";
const VICTIM: &str = "crash-victim";

impl Bench {
    fn new() -> Bench {
        let sb = Sandbox::new();
        let reg = Registry::start("crash");
        reg.push("big --mb 24", "test/big");
        let image = reg.image("test/big");
        sb.den(&["pull", "-q", &image]).ok();
        let archive = sb.dir.join("big.tar");
        sb.den(&["save", "-o", archive.to_str().unwrap(), &image])
            .ok();
        let context = sb.dir.join("ctx");
        std::fs::create_dir_all(context.join("files")).unwrap();
        let mut sums = String::new();
        for i in 0..4 {
            let data: Vec<u8> = (0..2 << 20).map(|j: u32| (j * 7 + i * 13) as u8).collect();
            sums.push_str(&format!(
                "{}  /ctx/file-{i}\n",
                crate::sandbox::sha256_hex(&data)
            ));
            std::fs::write(context.join(format!("files/file-{i}")), data).unwrap();
        }
        std::fs::write(context.join("files/SUMS"), sums).unwrap();
        std::fs::write(
            context.join("Dockerfile"),
            format!(
                "FROM {image}\nCOPY files/ /ctx/\n\
                 RUN cp /data/blob-0 /made && sha256sum /made > /made.sum\n"
            ),
        )
        .unwrap();
        Bench {
            sb,
            _reg: reg,
            image,
            archive,
            context,
        }
    }

    fn den(&self, args: &[&str]) -> Out {
        self.sb.den(args)
    }

    /// The command a trial kills, as arguments to `den`.
    fn command(&self, kind: Kind) -> Vec<String> {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        match kind {
            Kind::Pull => v(&["pull", &self.image]),
            Kind::Load => v(&["load", "-i", self.archive.to_str().unwrap()]),
            Kind::Build => v(&[
                "build",
                "--no-cache",
                "-t",
                BUILT,
                self.context.to_str().unwrap(),
            ]),
            Kind::Rm => v(&["rm", "-f", VICTIM]),
            Kind::Rmi => v(&["rmi", &self.image]),
        }
    }

    /// The state the command starts from. Pull and load start from a store without the image's
    /// content (nothing else keeps it: the build's image and cache go after each build trial).
    fn prepare(&self, kind: Kind) {
        match kind {
            Kind::Pull | Kind::Load => {
                if self.listed(&self.image) {
                    self.den(&["rmi", &self.image]).ok();
                }
                assert!(
                    self.den(&["images", "-q"]).ok().is_empty(),
                    "{}",
                    self.den(&["images"]).out()
                );
            }
            Kind::Build | Kind::Rmi => {
                self.den(&["pull", "-q", &self.image]).ok();
            }
            Kind::Rm => {
                self.den(&["pull", "-q", &self.image]).ok();
                // A stopped container with a 24 MB writable layer: its removal takes a while.
                self.den(&[
                    "run",
                    "--name",
                    VICTIM,
                    &self.image,
                    "sh",
                    "-c",
                    "cp -r /data /copy",
                ])
                .ok();
            }
        }
    }

    /// What the command's image holds, checked inside a container.
    fn verify(&self, kind: Kind) {
        match kind {
            Kind::Build => {
                self.den(&[
                    "run",
                    "--rm",
                    BUILT,
                    "sh",
                    "-c",
                    "sha256sum -c -s /data/SHA256SUMS && sha256sum -c -s /ctx/SUMS && sha256sum -c -s /made.sum",
                ])
                .ok();
            }
            _ => self.verify_image(),
        }
    }

    fn verify_image(&self) {
        self.den(&[
            "run",
            "--rm",
            &self.image,
            "sha256sum",
            "-c",
            "-s",
            "/data/SHA256SUMS",
        ])
        .ok();
    }

    /// `den system check` right after a kill: clean, or leftovers only. Returns the leftovers'
    /// kinds.
    fn leftovers(&self, what: &str) -> Vec<&'static str> {
        let out = self.den(&["system", "check"]);
        if out.code == 0 {
            return Vec::new();
        }
        assert_eq!(out.code, 1, "{what}: system check failed: {}", out.stderr);
        let mut kinds = Vec::new();
        for line in out.out().lines() {
            match LEFTOVERS.iter().find(|p| line.starts_with(*p)) {
                Some(p) => kinds.push(*p),
                None => panic!(
                    "{what}: the store is damaged, not just left over: {line}\n{}",
                    out.out()
                ),
            }
        }
        kinds
    }

    /// Whether `den images` lists `reference`.
    fn listed(&self, reference: &str) -> bool {
        let (repo, tag) = reference.rsplit_once(':').unwrap();
        self.den(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .ok()
            .lines()
            .any(|l| l == format!("{repo}:{tag}"))
    }

    /// The trial's clean-up, so that the next one starts from the state it prepares.
    fn finish(&self, kind: Kind) {
        if kind == Kind::Build {
            self.den(&["rmi", BUILT]).ok();
            // A build killed after its image was named, then run again, left the first image
            // nameless, as any rebuild of a name does.
            self.den(&["image", "prune", "-f"]).ok();
            self.den(&["builder", "prune", "-f"]).ok();
        }
        let check = self.den(&["system", "check"]);
        assert_eq!(
            check.code,
            0,
            "after {kind:?}: {}{}",
            check.out(),
            check.stderr
        );
    }
}

/// Run `den ARGS` in a process group of its own; returns the child and when it started.
fn spawn(sb: &Sandbox, args: &[String]) -> (std::process::Child, Instant) {
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let child = sb
        .cmd("den", &args)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, Instant::now())
}

/// Whether a process of group `pgid` still runs (zombies do not count: no one reaps the
/// orphans of a killed den here, and they hold nothing).
fn group_runs(pgid: i32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        let Some(close) = stat.rfind(')') else {
            return false;
        };
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        f.len() > 3 && f[0] != "Z" && f[0] != "X" && f[2] == pgid.to_string()
    })
}

/// Kill with SIGKILL, the whole group (a job's time limit) or only the den the user started
/// (the OOM killer's pick; its child in the user namespace follows by its parent-death signal,
/// a build step's den-run finishes its step), and wait until none of the group runs.
fn kill(child: &mut std::process::Child, group: bool) {
    let pgid = child.id() as i32;
    let _ = den::sys::sigkill(if group { -pgid } else { pgid });
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(20);
    while group_runs(pgid) {
        assert!(
            Instant::now() < deadline,
            "den's processes outlived SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long `kind` takes uninterrupted (its prepared state restored after).
fn calibrate(b: &Bench, kind: Kind) -> Duration {
    b.prepare(kind);
    let (child, start) = spawn(&b.sb, &b.command(kind));
    let out = child.wait_with_output().unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{kind:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.finish(kind);
    if std::env::var_os("DEN_CRASH_VERBOSE").is_some() {
        eprintln!(
            "calibrated {kind:?}: {} ms; images: {}",
            took.as_millis(),
            b.den(&["images", "-q"]).out().replace('\n', " ")
        );
    }
    took
}

/// Figures of one command's trials.
#[derive(Default)]
struct Tally {
    trials: usize,
    /// Killed while it ran (the rest had finished before the moment came).
    killed: usize,
    /// Kills after which the store held leftovers, by kind of leftover.
    leftovers: std::collections::BTreeMap<&'static str, usize>,
    /// Reruns that found the image gone (rmi).
    gone: usize,
}

/// One trial: prepare, start, kill at a random moment, check, run again, check, verify.
fn trial(b: &Bench, kind: Kind, window: Duration, rng: &mut Rng, tally: &mut Tally) {
    b.prepare(kind);
    let delay = rng.below(window);
    let group = rng.next() & 1 == 0;
    let what = format!(
        "{kind:?} killed ({}) after {} ms",
        if group {
            "its process group"
        } else {
            "den alone"
        },
        delay.as_millis()
    );
    let (mut child, _) = spawn(&b.sb, &b.command(kind));
    std::thread::sleep(delay);
    let finished = child.try_wait().unwrap().is_some();
    kill(&mut child, group);
    if std::env::var_os("DEN_CRASH_VERBOSE").is_some() {
        eprintln!("{what}{}", if finished { " (it had finished)" } else { "" });
    }
    tally.trials += 1;
    if !finished {
        tally.killed += 1;
    }

    // Only leftovers; and an image that is listed is whole.
    for l in b.leftovers(&what) {
        *tally.leftovers.entry(l).or_default() += 1;
    }
    match kind {
        Kind::Build if b.listed(BUILT) => b.verify(kind),
        Kind::Pull | Kind::Load | Kind::Rmi if b.listed(&b.image) => b.verify_image(),
        _ => {}
    }

    // The command again: it succeeds and sweeps what the killed one left.
    let args: Vec<String> = b.command(kind);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let again = b.den(&args);
    match kind {
        Kind::Rmi if again.code == 1 && again.stderr.contains("no such image") => tally.gone += 1,
        _ => assert_eq!(
            again.code, 0,
            "{what}: running it again failed: {}",
            again.stderr
        ),
    }
    let check = b.den(&["system", "check"]);
    assert_eq!(
        check.code,
        0,
        "{what}: the store is not clean after {kind:?} ran again:\n{}{}",
        check.out(),
        check.stderr
    );
    match kind {
        Kind::Rm => assert!(
            !b.den(&["ps", "-a", "--format", "{{.Names}}"])
                .ok()
                .lines()
                .any(|n| n == VICTIM),
            "{what}: the container is still listed"
        ),
        Kind::Rmi => {
            assert!(!b.listed(&b.image), "{what}: the image is still listed");
            b.den(&["pull", "-q", &b.image]).ok();
        }
        _ => {}
    }
    b.verify(kind);
    b.finish(kind);
}

fn trials() -> usize {
    std::env::var("DEN_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(KINDS.len())
}

#[test]
fn killed_commands_leave_a_store_den_can_use() {
    let b = Bench::new();
    let mut rng = Rng::new();
    let windows: Vec<Duration> = KINDS.iter().map(|k| calibrate(&b, *k)).collect();
    let mut tallies: Vec<Tally> = KINDS.iter().map(|_| Tally::default()).collect();
    let started = Instant::now();
    for i in 0..trials() {
        let k = i % KINDS.len();
        trial(&b, KINDS[k], windows[k], &mut rng, &mut tallies[k]);
    }
    eprintln!(
        "crash trials: {} in {:.0} s",
        trials(),
        started.elapsed().as_secs_f64()
    );
    for ((kind, window), t) in KINDS.iter().zip(&windows).zip(&tallies) {
        let left: Vec<String> = t
            .leftovers
            .iter()
            .map(|(k, n)| format!("{n}x {}", k.trim_end_matches(':')))
            .collect();
        eprintln!(
            "  {:<6} {:>3} trials, {:>3} killed while running (window {:>5} ms); left after the kill: {}{}",
            format!("{kind:?}").to_lowercase(),
            t.trials,
            t.killed,
            window.as_millis(),
            if left.is_empty() {
                "nothing".into()
            } else {
                left.join(", ")
            },
            if t.gone > 0 {
                format!("; {} reruns found the image already gone", t.gone)
            } else {
                String::new()
            }
        );
    }
}

// ------------------------------------------------------------------------------ system check

#[test]
fn system_check_reports_leftovers_and_damage_and_repairs_them() {
    let sb = Sandbox::new();
    let img = registry().image("test/layered");
    sb.den(&["pull", "-q", &img]).ok();
    let clean = sb.den(&["system", "check", "--full"]);
    assert!(
        clean.ok().contains("no problems (1 images, 5 layers"),
        "{}",
        clean.out()
    );

    // Content an `rmi --no-prune` left, a dead den's staging, a file den did not write, and a
    // layer whose record is gone.
    sb.den(&["rmi", "--no-prune", &img]).ok();
    std::fs::create_dir(sb.root.join("tmp/layer-999999999-abcd")).unwrap();
    std::fs::write(sb.root.join("stray"), b"x").unwrap();
    let out = sb.den(&["system", "check"]);
    out.fails_with(1, "problem(s)");
    assert!(
        out.stderr.contains("den system check --repair"),
        "{}",
        out.stderr
    );
    let lines: Vec<String> = out.out().lines().map(String::from).collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("unused layer: layers/"))
            .count(),
        5,
        "{lines:?}"
    );
    assert!(lines.contains(&"not den's: stray (den did not write it)".to_string()));
    assert!(lines.contains(
        &"stale staging entry: tmp/layer-999999999-abcd (its den process is gone)".to_string()
    ));

    let repaired = sb.den(&["system", "check", "--repair"]);
    let text = repaired.ok();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("repaired: ")).count(),
        lines.len(),
        "{text}"
    );
    assert!(
        text.contains("no problems (0 images, 0 layers, 0 blobs"),
        "{text}"
    );
    sb.den(&["system", "check"]).ok();

    // Damage: an image whose layer directory lost its record.
    sb.den(&["pull", "-q", &img]).ok();
    let layer = std::fs::read_dir(sb.root.join("layers"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("layer.json").exists())
        .unwrap();
    // Layer files belong to subordinate ids; the record is the user's own file.
    std::fs::remove_file(layer.join("layer.json")).unwrap();
    let out = sb.den(&["system", "check"]);
    out.fails_with(1, "problem(s)");
    let text = out.out();
    assert!(text.contains("partial layer: layers/"), "{text}");
    assert!(text.contains("(it has no layer.json)"), "{text}");
    assert!(text.contains("image with missing content: "), "{text}");
    sb.den(&["system", "check", "--repair"]).ok();
    assert_eq!(sb.den(&["images", "-q"]).ok(), "", "the broken image went");
    sb.den(&["pull", "-q", &img]).ok();
    sb.den(&["run", "--rm", &img, "cat", "/srv/from-zstd"]).ok();
    sb.den(&["system", "check", "--full"]).ok();
}

// ------------------------------------------------------------------ a build's step directory

/// An HTTP server that sends `body` to every request in 16 KiB pieces, `gap` apart.
fn slow_http(body: Vec<u8>, gap: Duration) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let body = std::sync::Arc::new(body);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut req = [0u8; 4096];
                let _ = conn.read(&mut req);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                if conn.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for piece in body.chunks(16 << 10) {
                    if conn.write_all(piece).is_err() {
                        return;
                    }
                    std::thread::sleep(gap);
                }
            });
        }
    });
    addr
}

#[test]
fn a_pull_does_not_sweep_away_a_running_build_step() {
    let sb = Sandbox::new();
    let base = registry().image("library/busybox");
    sb.den(&["pull", "-q", &base]).ok();
    // The ADD step's root stays mounted under tmp/ while the download drips (about 2 s).
    let body: Vec<u8> = (0..256u32 << 10).map(|i| (i % 251) as u8).collect();
    let sum = crate::sandbox::sha256_hex(&body);
    let addr = slow_http(body, Duration::from_millis(120));
    let ctx = sb.dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nADD http://{addr}/payload /payload\n"),
    )
    .unwrap();
    let build = sb
        .cmd(
            "den",
            &["build", "-q", "-t", "slow:1", ctx.to_str().unwrap()],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The step's directory appears once the download for the cache key is done.
    let deadline = Instant::now() + Duration::from_secs(60);
    let step_dir = || {
        std::fs::read_dir(sb.root.join("tmp"))
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("step-"))
            })
            .unwrap_or(false)
    };
    while !step_dir() {
        assert!(
            Instant::now() < deadline,
            "the build never reached its ADD step"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A pull sweeps tmp/ of what dead dens left; the build is alive.
    sb.den(&["pull", "-q", &registry().image("test/entrypoint")])
        .ok();
    assert!(
        step_dir(),
        "the pull removed the running build's step directory"
    );
    let out = build.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = sb
        .den(&["run", "--rm", "slow:1", "sha256sum", "/payload"])
        .ok();
    assert!(got.starts_with(&sum), "{got}");
    sb.den(&["system", "check"]).ok();
}
