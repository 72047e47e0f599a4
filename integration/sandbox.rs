//! The test harness: a private HOME, store, runtime directory and config per test, the den
//! binaries, and real registries (`docker-registry`) holding fixture images built offline.
//!
//! Every test starts with [`Sandbox::new`], which refuses to run as root: these tests exist to
//! prove den works for an unprivileged user. `make test` creates such users and runs this binary
//! as each of them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where the binaries and fixture tools are.
pub struct Env {
    pub bin: PathBuf,
    pub fixtures: PathBuf,
    /// A private scratch directory for this test process.
    pub tmp: PathBuf,
}

fn uid() -> u32 {
    // /proc/self/status: "Uid:\treal\teffective\t..."
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc is mounted");
    let line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    line.split_whitespace()
        .nth(2)
        .expect("effective uid")
        .parse()
        .expect("numeric uid")
}

pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        assert_ne!(
            uid(),
            0,
            "den's integration tests must run as an unprivileged user, not root: \
             run `make test`, which creates test users and runs them as each"
        );
        let bin = std::env::var_os("DEN_TEST_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_BIN_EXE_den"))
                    .parent()
                    .expect("bin dir")
                    .to_path_buf()
            });
        let fixtures = std::env::var_os("DEN_TEST_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/fixtures"));
        let base = std::env::var_os("DEN_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let tmp = base.join(format!("den-it-{}-{}", std::process::id(), uid()));
        std::fs::create_dir_all(&tmp).expect("scratch dir");
        for tool in [
            "openssl",
            "docker-registry",
            "skopeo",
            "python3",
            "setpriv",
            "newuidmap",
        ] {
            assert!(
                which(tool).is_some(),
                "{tool} is missing: run `make test` as root once to install the test dependencies"
            );
        }
        Env { bin, fixtures, tmp }
    })
}

pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The result of a command.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Assert success and return stdout.
    #[track_caller]
    pub fn ok(&self) -> String {
        assert_eq!(
            self.code,
            0,
            "command failed\nstdout: {}\nstderr: {}",
            self.out(),
            self.stderr
        );
        self.out()
    }
    /// Assert success and return stdout's bytes.
    #[track_caller]
    pub fn ok_bytes(&self) -> &[u8] {
        self.ok();
        &self.stdout
    }
    /// Assert failure with `code` and a den error report (one error line, one hint line).
    #[track_caller]
    pub fn fails_with(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(
            self.code,
            code,
            "expected exit {code}\nstdout: {}\nstderr: {}",
            self.out(),
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}: {}",
            self.stderr
        );
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("den: error:"))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "expected exactly one error line: {}",
            self.stderr
        );
        assert!(
            self.stderr.lines().any(|l| l.starts_with("hint: ")),
            "expected a hint: {}",
            self.stderr
        );
        self
    }
}

/// A test's private world.
pub struct Sandbox {
    pub dir: PathBuf,
    pub home: PathBuf,
    pub root: PathBuf,
    pub runtime: PathBuf,
    pub config_home: PathBuf,
    extra_env: Vec<(String, String)>,
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Sandbox {
    pub fn new() -> Sandbox {
        let e = env();
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = e.tmp.join(format!("sb{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        let sb = Sandbox {
            home: dir.join("home"),
            root: dir.join("home/.local/share/den"),
            runtime: dir.join("rt"),
            config_home: dir.join("home/.config"),
            dir,
            extra_env: Vec::new(),
        };
        for d in [&sb.home, &sb.config_home] {
            std::fs::create_dir_all(d).expect("sandbox dirs");
        }
        sb
    }

    /// Set an environment variable for every den command of this sandbox.
    pub fn set_env(&mut self, k: &str, v: &str) {
        self.extra_env.push((k.into(), v.into()));
    }

    /// Write den's config file.
    pub fn config(&self, toml: &str) {
        let d = self.config_home.join("den");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.toml"), toml).unwrap();
    }

    /// A command for one of den's tools in this sandbox (not yet run).
    pub fn cmd(&self, tool: &str, args: &[&str]) -> Command {
        let mut c = Command::new(env().bin.join(tool));
        c.args(args);
        self.apply_env(&mut c);
        c
    }

    /// The sandbox's environment: nothing from the test runner's but PATH and USER.
    fn apply_env(&self, c: &mut Command) {
        c.env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("XDG_CONFIG_HOME", &self.config_home)
            .env("USER", std::env::var("USER").unwrap_or_default())
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
        std::fs::create_dir_all(&self.runtime).ok();
    }

    /// Run `den ARGS` with no stdin.
    pub fn den(&self, args: &[&str]) -> Out {
        run(self.cmd("den", args))
    }

    /// Run a shell script with den's binaries first on PATH, as a Makefile recipe would.
    pub fn sh(&self, script: &str) -> Out {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        self.apply_env(&mut c);
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        c.env("PATH", format!("{}:{path}", env().bin.display()));
        run(c)
    }

    /// Run `den ARGS` with `input` on stdin.
    pub fn den_input(&self, args: &[&str], input: &[u8]) -> Out {
        let mut c = self.cmd("den", args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn den");
        let mut stdin = child.stdin.take().unwrap();
        let data = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().expect("wait den");
        writer.join().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        }
    }

    /// Run `den ARGS` on a terminal driven by ptyrun.py with `steps`.
    pub fn den_pty(&self, steps: &[&str], args: &[&str]) -> Out {
        let mut c = Command::new("python3");
        c.arg(env().fixtures.join("ptyrun.py"))
            .args(steps)
            .arg("--")
            .arg(env().bin.join("den"))
            .args(args);
        self.apply_env(&mut c);
        run(c)
    }

    /// What `den info` says about the id mapping: true with a subordinate range.
    pub fn mapped(&self) -> bool {
        let info = self.den(&["info"]).ok();
        info.contains("subordinate ids")
    }

    /// Entries of a store directory, to compare before and after a failure.
    pub fn store_listing(&self) -> Vec<String> {
        let mut out = Vec::new();
        for d in ["images.json", "layers", "blobs/sha256", "containers", "tmp"] {
            let p = self.root.join(d);
            match std::fs::read_dir(&p) {
                Ok(rd) => {
                    let mut names: Vec<String> = rd
                        .flatten()
                        .map(|e| format!("{d}/{}", e.file_name().to_string_lossy()))
                        .collect();
                    names.sort();
                    out.extend(names);
                }
                Err(_) => {
                    if p.is_file() {
                        out.push(format!(
                            "{d}: {}",
                            std::fs::read_to_string(&p).unwrap_or_default()
                        ));
                    }
                }
            }
        }
        out
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Layer files belong to subordinate ids: only den (in its user namespace) can delete them.
        if self.root.exists() {
            let _ = self
                .cmd("den", &["system", "reset", "--force"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn run(mut c: Command) -> Out {
    let out = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn command");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

// ------------------------------------------------------------------------------- registries

/// A docker-registry server on a loopback port.
pub struct Registry {
    pub addr: String,
    pub storage: PathBuf,
    child: Option<Child>,
    creds: Option<String>,
}

impl Registry {
    /// Start a registry with its own storage. It dies with the test process.
    pub fn start(name: &str) -> Registry {
        Registry::start_with(name, "", None)
    }

    /// Start a registry with extra configuration (an `auth:` section); `creds` (user:password)
    /// are what skopeo pushes fixtures with.
    pub fn start_with(name: &str, extra_config: &str, creds: Option<&str>) -> Registry {
        let e = env();
        let dir = e.tmp.join(format!("registry-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let storage = dir.join("data");
        let cfg = dir.join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{extra_config}",
                storage.display()
            ),
        )
        .unwrap();
        // setpriv --pdeathsig: the registry dies when the thread that started it goes; start it
        // from a thread that lives as long as the test process.
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        std::thread::spawn(move || {
            let child = Command::new("setpriv")
                .args(["--pdeathsig", "KILL", "--"])
                .arg(which("docker-registry").expect("docker-registry"))
                .arg("serve")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            tx.send(child).unwrap();
            loop {
                std::thread::park();
            }
        });
        let child = rx.recv().unwrap();
        wait_http(&addr, "/v2/");
        Registry {
            addr,
            storage,
            child: Some(child),
            creds: creds.map(String::from),
        }
    }

    /// Stop the server (tests of what den does without its registry).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Push the fixture image `kind` (see mkimage.py) as `repo:latest`.
    pub fn push(&self, kind: &str, repo: &str) {
        self.push_format(kind, repo, None)
    }

    pub fn push_format(&self, kind: &str, repo: &str, format: Option<&str>) {
        let layout = fixture(kind);
        let mut c = Command::new("skopeo");
        c.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--all",
            "--dest-tls-verify=false",
        ]);
        if let Some(f) = format {
            c.args(["--format", f]);
        }
        if let Some(creds) = &self.creds {
            c.arg("--dest-creds").arg(creds);
        }
        c.arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/{repo}:latest", self.addr))
            .env("HOME", env().tmp.join("skopeo-home"));
        let out = run(c);
        assert_eq!(out.code, 0, "skopeo push of {kind} failed: {}", out.stderr);
    }

    /// The reference of `repo:latest` on this registry.
    pub fn image(&self, repo: &str) -> String {
        format!("{}/{repo}:latest", self.addr)
    }

    /// The registry's log: its access log counts requests (blob uploads, mounts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.storage.parent().unwrap().join("registry.log"))
            .unwrap_or_default()
    }

    /// Requests in the access log whose request line starts with `method` and contains `needle`,
    /// answered with `status`.
    pub fn requests(&self, method: &str, needle: &str, status: u16) -> usize {
        self.log()
            .lines()
            .filter_map(|l| l.split_once(&format!("\"{method} ")).map(|(_, rest)| rest))
            .filter(|rest| {
                rest.split_once('"').is_some_and(|(line, after)| {
                    line.contains(needle) && after.trim_start().starts_with(&status.to_string())
                })
            })
            .count()
    }

    /// The registry's file holding blob `digest`.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A registry with htpasswd auth (`alice:s3cret`), holding busybox as `library/busybox`.
pub fn htpasswd_registry(name: &str) -> Registry {
    let dir = env().tmp.join(format!("htpasswd-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("htpasswd");
    let out = run({
        let mut c = Command::new("htpasswd");
        c.args(["-Bbn", "alice", "s3cret"]);
        c
    });
    std::fs::write(&file, out.ok()).unwrap();
    let reg = Registry::start_with(
        &format!("htpasswd-{name}"),
        &format!(
            "auth:\n  htpasswd:\n    realm: den-test\n    path: {}\n",
            file.display()
        ),
        Some("alice:s3cret"),
    );
    reg.push("busybox", "library/busybox");
    reg
}
/// The busybox fixture on the shared registry.
pub fn busybox() -> String {
    registry().image("library/busybox")
}

/// A build context under the sandbox: a Dockerfile and `files` (path, content).
pub fn context(sb: &Sandbox, name: &str, dockerfile: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = sb.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    for (p, content) in files {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, content).unwrap();
    }
    dir
}

/// `den build EXTRA... DIR`.
pub fn build(sb: &Sandbox, dir: &Path, extra: &[&str]) -> Out {
    let d = dir.to_string_lossy().into_owned();
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    args.push(&d);
    sb.den(&args)
}

/// The registry every test shares, with the standard fixtures pushed.
pub fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| {
        let r = Registry::start("shared");
        r.push("busybox", "library/busybox");
        r.push("layered", "test/layered");
        r.push("multiarch", "test/multi");
        r.push_format("busybox", "test/busybox-v2s2", Some("v2s2"));
        r.push_format("multiarch", "test/multi-v2s2", Some("v2s2"));
        r.push("entrypoint", "test/entrypoint");
        r.push("web", "test/web");
        for evil in ["evil-dotdot", "evil-symlink", "evil-hardlink"] {
            r.push(evil, &format!("test/{evil}"));
        }
        r
    })
}

/// Build (once) the OCI layout of a fixture image.
pub fn fixture(kind: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let dir = env().tmp.join("fixtures").join(kind);
    if !dir.join("index.json").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let mut c = Command::new("python3");
        c.arg(env().fixtures.join("mkimage.py")).arg(&dir);
        let mut parts = kind.split(' ');
        c.arg(parts.next().unwrap()).args(parts);
        let out = run(c);
        assert_eq!(out.code, 0, "mkimage.py {kind}: {}", out.stderr);
    }
    dir
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait until an HTTP server answers at `addr`.
pub fn wait_http(addr: &str, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(addr) {
            let _ = s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes());
            let mut buf = [0u8; 12];
            if s.read(&mut buf).map(|n| n > 0).unwrap_or(false) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing answers on {addr}");
}

/// A TCP proxy to `upstream` that passes downstream bytes at `bytes_per_sec` (a slow network).
pub struct SlowProxy {
    pub addr: String,
    /// Connections still open on either side.
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SlowProxy {
    /// Responses (downloads) at `bytes_per_sec`; requests pass at full speed.
    pub fn start(upstream: &str, bytes_per_sec: usize) -> SlowProxy {
        SlowProxy::start_with(upstream, None, Some(bytes_per_sec))
    }

    /// Requests (uploads) at `bytes_per_sec`; responses pass at full speed.
    pub fn start_upload(upstream: &str, bytes_per_sec: usize) -> SlowProxy {
        SlowProxy::start_with(upstream, Some(bytes_per_sec), None)
    }

    fn start_with(upstream: &str, up: Option<usize>, down: Option<usize>) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let upstream = upstream.to_string();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let live = requests.clone();
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering::SeqCst;
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (c_r, s_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                live.fetch_add(1, SeqCst);
                let done = live.clone();
                let requests = std::thread::spawn(move || pump(c_r, s_w, up));
                // A connection is done once the registry has closed it too: it has read every
                // request to its end (the half-close), answered them, and stored what they sent.
                std::thread::spawn(move || {
                    pump(server, client, down);
                    let _ = requests.join();
                    done.fetch_sub(1, SeqCst);
                });
            }
        });
        SlowProxy { addr, requests }
    }

    /// Wait until every byte a client sent has been passed on and the registry is done with
    /// it (a killed client's requests still drain from its socket's buffer, and the registry
    /// stores the last of an upload after the proxy has written it: a client that asks right
    /// after the write could find the blob not there yet).
    pub fn wait_drained(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.requests.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            assert!(
                Instant::now() < deadline,
                "the proxy still passes requests after 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Copy `from` to `to`, at `rate` bytes per second if given, then half-close `to`.
fn pump(mut from: TcpStream, mut to: TcpStream, rate: Option<usize>) {
    let chunk = rate.map(|r| (r / 20).max(1024)).unwrap_or(1 << 16);
    let mut buf = vec![0u8; chunk];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                if rate.is_some() {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// sha256 of bytes, hex.
pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

// ------------------------------------------------------------------------------- podman

/// podman as the test user, configured as ENVIRONMENT.md says, with a store of its own under a
/// sandbox: round trips with the peer tool.
pub struct Podman {
    dir: PathBuf,
}

impl Podman {
    pub fn new(sb: &Sandbox) -> Podman {
        let dir = sb.dir.join("podman");
        let conf = dir.join(".config/containers");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::create_dir_all(dir.join("run")).unwrap();
        std::fs::write(
            conf.join("containers.conf"),
            "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        std::fs::write(
            conf.join("storage.conf"),
            "[storage]\ndriver = \"overlay\"\n",
        )
        .unwrap();
        Podman { dir }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(which("podman").expect("podman"));
        c.args(args)
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .env("HOME", &self.dir)
            .env("XDG_CONFIG_HOME", self.dir.join(".config"))
            .env("XDG_DATA_HOME", self.dir.join(".local/share"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("USER", std::env::var("USER").unwrap_or_default())
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        run(self.cmd(args))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self
            .cmd(&["system", "reset", "--force"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
