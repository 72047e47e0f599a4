//! docker's credential helpers: the `docker-credential-NAME` programs that keep passwords in a
//! keyring (`secretservice`, `pass`, `desktop`, `ecr-login`, ...) instead of in a JSON file.
//!
//! An auth file names them with `credsStore` (the helper for every registry) and `credHelpers`
//! (`{"HOST": "NAME"}`, one registry's helper, which wins). The protocol is docker's
//! (`docker/docker-credential-helpers`' `credentials.go`), one verb per run, the argument on
//! stdin:
//!
//! * `get`: the server URL in, `{"ServerURL","Username","Secret"}` out; "credentials not found
//!   in native keychain" on stdout with exit 1 means the helper has none (not an error);
//! * `store`: that JSON in;
//! * `erase`: the server URL in;
//! * `list`: nothing in, `{"URL": "user"}` out.
//!
//! The server URL is what docker passes: `https://index.docker.io/v1/` for Docker Hub, else the
//! registry's host (`127.0.0.1:5000`), so a helper docker filled serves den and the other way
//! round.
//!
//! A helper is a program from PATH, so it is treated as outside input: NAME must be a plain
//! name (letters, digits, `.`, `_`, `-`; no `/`, no `..`), its answer is read no further than
//! [`MAX_OUTPUT`] and it is killed after [`TIMEOUT`]. Its secret never reaches a log or an
//! error: a failing helper's message is cut to one short line with the secret blanked out.
//!
//! Run by hand with std's process API rather than through `docker_credential` (which has neither
//! a time limit nor an output cap) because those two limits are the point.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{AuthError, Credentials, Result};

/// The most bytes read from a helper (an answer is a few hundred).
pub const MAX_OUTPUT: usize = 64 << 10;

/// How long a helper may run before it is killed (a keyring may ask the user to unlock it).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The user name helpers (and docker's auth files) give for an identity token.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

/// One credential helper: `docker-credential-NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    name: String,
    timeout: Duration,
    /// Where to look for the program: PATH's directories when None.
    search: Option<Vec<PathBuf>>,
}

/// The server URL a helper knows `registry` by (docker's convention).
pub fn server_url(registry: &str) -> String {
    if registry == crate::image::reference::DOCKER_HUB {
        super::DOCKER_HUB_KEY.into()
    } else {
        registry.into()
    }
}

impl Helper {
    /// The helper named `name` in an auth file (`file`, for the error): a plain name only.
    pub fn new(name: &str, file: &Path) -> Result<Helper> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && !name.contains("..")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !plain {
            return Err(AuthError::BadHelperName {
                name: name.into(),
                file: file.into(),
            });
        }
        Ok(Helper {
            name: name.into(),
            timeout: TIMEOUT,
            search: None,
        })
    }

    /// The same helper looked for in `dirs` instead of PATH (tests).
    pub fn with_search(mut self, dirs: Vec<PathBuf>) -> Helper {
        self.search = Some(dirs);
        self
    }

    /// The same helper with another time limit (tests).
    pub fn with_timeout(mut self, timeout: Duration) -> Helper {
        self.timeout = timeout;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn program(&self) -> String {
        format!("docker-credential-{}", self.name)
    }

    /// The program on PATH, as a shell would find it.
    fn find(&self, registry: &str) -> Result<PathBuf> {
        let program = self.program();
        let dirs = match &self.search {
            Some(d) => d.clone(),
            None => std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default(),
        };
        dirs.into_iter()
            .filter(|d| d.is_absolute())
            .map(|d| d.join(&program))
            .find(|p| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::metadata(p)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
            .ok_or_else(|| AuthError::HelperMissing {
                helper: program,
                registry: registry.into(),
            })
    }

    /// `get`: the helper's credentials for `registry`, None when it has none.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>> {
        let url = server_url(registry);
        let out = self.run("get", registry, url.as_bytes())?;
        if !out.success {
            if out.text().contains("credentials not found") {
                return Ok(None);
            }
            return Err(self.failed("get", registry, &out, None));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let answer: Answer =
            serde_json::from_slice(&out.stdout).map_err(|e| AuthError::HelperFailed {
                helper: self.program(),
                verb: "get",
                registry: registry.into(),
                message: format!(
                    "its answer is not JSON ({})",
                    format!("{:?}", e.classify()).to_lowercase()
                ),
            })?;
        if answer.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials {
            username: answer.username,
            password: answer.secret,
        }))
    }

    /// `store`: keep `creds` for `registry` in the helper.
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<()> {
        let input = serde_json::json!({
            "ServerURL": server_url(registry),
            "Username": creds.username,
            "Secret": creds.password,
        });
        let input = serde_json::to_vec(&input).expect("a JSON value serializes");
        let out = self.run("store", registry, &input)?;
        if out.success {
            Ok(())
        } else {
            Err(self.failed("store", registry, &out, Some(&creds.password)))
        }
    }

    /// `erase`: forget `registry`; whether the helper had it.
    pub fn erase(&self, registry: &str) -> Result<bool> {
        let url = server_url(registry);
        let out = self.run("erase", registry, url.as_bytes())?;
        if out.success {
            Ok(true)
        } else if out.text().contains("credentials not found") {
            Ok(false)
        } else {
            Err(self.failed("erase", registry, &out, None))
        }
    }

    /// `list`: the server URLs the helper has credentials for, with their user names.
    pub fn list(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let out = self.run("list", "", b"")?;
        if !out.success {
            return Err(self.failed("list", "", &out, None));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| AuthError::HelperFailed {
            helper: self.program(),
            verb: "list",
            registry: String::new(),
            message: format!(
                "its answer is not JSON ({})",
                format!("{:?}", e.classify()).to_lowercase()
            ),
        })
    }

    fn failed(
        &self,
        verb: &'static str,
        registry: &str,
        out: &Output,
        secret: Option<&str>,
    ) -> AuthError {
        AuthError::HelperFailed {
            helper: self.program(),
            verb,
            registry: registry.into(),
            message: out.message(secret),
        }
    }

    /// Run `docker-credential-NAME VERB` with `input` on stdin, within the time and size limits.
    fn run(&self, verb: &'static str, registry: &str, input: &[u8]) -> Result<Output> {
        let program = self.find(registry)?;
        let spawn_err = |e: std::io::Error| AuthError::HelperFailed {
            helper: self.program(),
            verb,
            registry: registry.into(),
            message: e.to_string(),
        };
        let mut child = spawn(&program, verb).map_err(spawn_err)?;
        tracing::debug!(helper = %self.program(), verb, registry, "credential helper started");
        let rx = pipes(&mut child, input);
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(AuthError::HelperFailed {
                        helper: self.program(),
                        verb,
                        registry: registry.into(),
                        message: format!(
                            "it ran longer than {} s and was stopped",
                            self.timeout.as_secs_f32()
                        ),
                    });
                }
                Err(e) => return Err(spawn_err(e)),
            }
        };
        // A helper that left a child holding its pipes open is waited for no longer than the
        // time left.
        let mut out = Output {
            success: status.success(),
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.max(Duration::from_millis(100))) {
                Ok((0, b)) => out.stdout = b,
                Ok((_, b)) => out.stderr = b,
                Err(_) => break,
            }
        }
        if out.stdout.len() > MAX_OUTPUT || out.stderr.len() > MAX_OUTPUT {
            return Err(AuthError::HelperFailed {
                helper: self.program(),
                verb,
                registry: registry.into(),
                message: format!("it wrote more than {} KiB", MAX_OUTPUT >> 10),
            });
        }
        Ok(out)
    }
}

/// Start `program VERB` with its three pipes. ETXTBSY (the program is being written, installed
/// or made by a test, while another thread forks) clears within moments: tried again.
fn spawn(program: &Path, verb: &str) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match Command::new(program)
            .arg(verb)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Err(e) if e.raw_os_error() == Some(26) && tries < 10 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

/// Feed `input` to the child and read its stdout (0) and stderr (1), each on a thread, so a
/// helper that writes before it reads (or never reads) cannot block den; the readers stop one
/// byte past the cap.
fn pipes(
    child: &mut std::process::Child,
    input: &[u8],
) -> std::sync::mpsc::Receiver<(usize, Vec<u8>)> {
    if let Some(mut stdin) = child.stdin.take() {
        let data = input.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child
        .stdout
        .take()
        .map(|p| Box::new(p) as Box<dyn Read + Send>);
    let err = child
        .stderr
        .take()
        .map(|p| Box::new(p) as Box<dyn Read + Send>);
    for (i, pipe) in [out, err].into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(MAX_OUTPUT as u64 + 1).read_to_end(&mut buf);
            }
            let _ = tx.send((i, buf));
        });
    }
    rx
}

/// What a helper run gave.
struct Output {
    success: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Output {
    fn text(&self) -> String {
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }

    /// The helper's complaint, fit for one line of an error: its first non-empty line (stdout,
    /// where docker's helpers write errors, then stderr), printable characters only, at most 200
    /// of them, with `secret` blanked out.
    fn message(&self, secret: Option<&str>) -> String {
        let text = self.text();
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("it failed and said nothing");
        let mut line: String = line.chars().filter(|c| !c.is_control()).take(200).collect();
        if let Some(s) = secret.filter(|s| !s.is_empty()) {
            line = line.replace(s, "<hidden>");
        }
        if !self.success && line.is_empty() {
            line = "it failed".into();
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A helper script `docker-credential-fake` in a directory of its own, found there.
    fn with_helper<T>(script: &str, f: impl FnOnce(&Helper, &Path) -> T) -> T {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("docker-credential-fake");
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let h = Helper::new("fake", Path::new("test.json"))
            .unwrap()
            .with_search(vec![t.path().to_path_buf()]);
        f(&h, t.path())
    }

    #[test]
    fn names_must_be_plain() {
        for bad in ["", "../x", "a/b", ".hidden", "a..b", "a b", "x;rm"] {
            assert!(
                matches!(
                    Helper::new(bad, Path::new("f")),
                    Err(AuthError::BadHelperName { .. })
                ),
                "{bad:?}"
            );
        }
        for good in [
            "pass",
            "secretservice",
            "ecr-login",
            "gcloud",
            "osxkeychain",
            "a_b.c",
        ] {
            assert!(Helper::new(good, Path::new("f")).is_ok(), "{good}");
        }
    }

    #[test]
    fn the_protocol_round_trips_through_a_helper() {
        let script = r#"f="$(dirname "$0")/store"
case "$1" in
get) read -r url; if [ -f "$f" ] && grep -q "\"ServerURL\":\"$url\"" "$f"; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store) cat > "$f" ;;
erase) read -r url; [ -f "$f" ] || { echo "credentials not found in native keychain"; exit 1; }; rm "$f" ;;
list) echo '{"127.0.0.1:5000":"alice"}' ;;
esac"#;
        with_helper(script, |h, _| {
            assert_eq!(h.get("127.0.0.1:5000").unwrap(), None);
            let c = Credentials {
                username: "alice".into(),
                password: "s3cret".into(),
            };
            h.store("127.0.0.1:5000", &c).unwrap();
            assert_eq!(h.get("127.0.0.1:5000").unwrap(), Some(c));
            assert_eq!(h.get("127.0.0.1:5001").unwrap(), None);
            assert_eq!(h.list().unwrap()["127.0.0.1:5000"], "alice");
            assert!(h.erase("127.0.0.1:5000").unwrap());
            assert!(!h.erase("127.0.0.1:5000").unwrap());
        });
    }

    #[test]
    fn docker_hub_is_asked_for_by_dockers_url() {
        with_helper(
            r#"read -r url; printf '{"ServerURL":"%s","Username":"u","Secret":"p"}' "$url" > "$(dirname "$0")/asked""#,
            |h, dir| {
                // The answer is empty: no credentials, but the question is what matters.
                let _ = h.get("docker.io");
                let asked = std::fs::read_to_string(dir.join("asked")).unwrap();
                assert!(asked.contains("https://index.docker.io/v1/"), "{asked}");
            },
        );
    }

    #[test]
    fn failures_are_one_line_without_the_secret() {
        with_helper(
            r#"read -r x; echo "cannot store $x"; echo more; exit 3"#,
            |h, _| {
                let c = Credentials {
                    username: "alice".into(),
                    password: "hunter2".into(),
                };
                let e = h.store("127.0.0.1:5000", &c).unwrap_err();
                let text = e.to_string();
                assert!(text.contains("docker-credential-fake"), "{text}");
                assert!(text.contains("127.0.0.1:5000"), "{text}");
                assert!(!text.contains("hunter2"), "{text}");
                assert!(!text.contains('\n'), "{text}");
            },
        );
    }

    #[test]
    fn a_helper_that_hangs_is_stopped_and_one_that_floods_is_cut_off() {
        with_helper("sleep 20", |h, _| {
            let h = h.clone().with_timeout(Duration::from_millis(300));
            let started = Instant::now();
            let e = h.get("127.0.0.1:5000").unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(5));
            assert!(e.to_string().contains("longer than"), "{e}");
        });
        with_helper("head -c 200000 /dev/zero", |h, _| {
            let e = h.get("127.0.0.1:5000").unwrap_err();
            assert!(e.to_string().contains("more than 64 KiB"), "{e}");
        });
    }

    #[test]
    fn a_missing_helper_names_itself_and_the_registry() {
        with_helper("true", |_, _| {
            let h = Helper::new("absent", Path::new("f"))
                .unwrap()
                .with_search(vec!["/nonexistent".into()]);
            let e = h.get("127.0.0.1:5000").unwrap_err();
            assert!(matches!(e, AuthError::HelperMissing { .. }));
            let text = e.to_string();
            assert!(text.contains("docker-credential-absent") && text.contains("127.0.0.1:5000"));
        });
    }
}
