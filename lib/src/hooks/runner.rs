//! Running one hook: the OCI state on its stdin, its stdout discarded, its stderr kept for the
//! error, and its timeout kept by killing its whole process group (a hook that times out
//! leaves nothing behind).
//!
//! The stderr goes to an unlinked file rather than a pipe: a hook that leaves a child behind
//! holding the pipe would make reading to its end wait for that child.

use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::Hook;

/// The most of a hook's stderr an error shows.
const STDERR_SHOWN: usize = 2000;

/// How a hook failed; its stderr, on one line, where it wrote any.
#[derive(Debug, thiserror::Error)]
pub enum HookFailure {
    #[error("cannot run it: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("exit status {code}{stderr}")]
    Status { code: i32, stderr: String },
    #[error("killed by signal {signal}{stderr}")]
    Signal { signal: i32, stderr: String },
    #[error("timed out after {secs}s{stderr}")]
    Timeout { secs: u32, stderr: String },
}

/// Run `hook` with `state` (the OCI state JSON) on its stdin, to its end or its timeout.
pub fn run(hook: &Hook, state: &[u8]) -> Result<(), HookFailure> {
    let mut errors = stderr_file().map_err(HookFailure::Spawn)?;
    let mut cmd = std::process::Command::new(&hook.path);
    if let Some((arg0, rest)) = hook.args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear()
        .envs(hook.env.iter().filter_map(|e| e.split_once('=')))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(errors.try_clone().map_err(HookFailure::Spawn)?)
        .process_group(0);
    let mut child = cmd.spawn().map_err(HookFailure::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its state closes the pipe: not an error (OCI's).
        let _ = stdin.write_all(state);
    }
    let deadline = hook
        .timeout
        .map(|s| Instant::now() + Duration::from_secs(s.into()));
    let status = loop {
        match child.try_wait().map_err(HookFailure::Spawn)? {
            Some(status) => break Some(status),
            None if deadline.is_some_and(|d| Instant::now() >= d) => break None,
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    let mut stderr = || read_stderr(&mut errors);
    let Some(status) = status else {
        // The hook's whole group: nothing it started keeps running unaccounted.
        let group = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        return Err(HookFailure::Timeout {
            secs: hook.timeout.unwrap_or(0),
            stderr: stderr(),
        });
    };
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(HookFailure::Status {
            code,
            stderr: stderr(),
        }),
        (None, signal) => Err(HookFailure::Signal {
            signal: signal.unwrap_or(0),
            stderr: stderr(),
        }),
    }
}

/// An unlinked file in the temporary directory.
fn stderr_file() -> std::io::Result<std::fs::File> {
    let dir = std::env::temp_dir();
    let dir = if dir.is_dir() {
        dir
    } else {
        Path::new("/tmp").into()
    };
    let path = dir.join(format!(
        "den-hook-{}-{}",
        std::process::id(),
        crate::fs::random_hex(6)
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let _ = std::fs::remove_file(&path);
    Ok(f)
}

/// What the hook wrote on stderr, as `": LINE; LINE"`, or nothing.
fn read_stderr(f: &mut std::fs::File) -> String {
    let mut buf = Vec::new();
    let _ = f.rewind();
    let _ = f.take(64 * 1024).read_to_end(&mut buf);
    one_line(&String::from_utf8_lossy(&buf))
}

fn one_line(text: &str) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if joined.is_empty() {
        return String::new();
    }
    let shown: String = joined.chars().take(STDERR_SHOWN).collect();
    format!(": {shown}")
}
