//! Build facts for `den version`: the compiler's version (where docker reports Go's), the git
//! commit and the commit's time (docker's "Built"; the commit's time rather than the clock's
//! keeps builds reproducible). Outside a git checkout (a source tarball) they read "unknown".

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    // `rustc 1.85.0 (4d91de4e4 2025-02-17)` -> `1.85.0`
    let rust = output(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let commit =
        output("git", &["rev-parse", "--short=7", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let time = output("git", &["log", "-1", "--format=%ct"]).unwrap_or_else(|| "0".into());
    println!("cargo:rustc-env=DEN_RUST_VERSION={rust}");
    println!("cargo:rustc-env=DEN_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=DEN_COMMIT_TIME={time}");
    // A new commit changes this worktree's HEAD log: rerun then, not on every build.
    if let Some(log) = output("git", &["rev-parse", "--git-path", "logs/HEAD"]) {
        println!("cargo:rerun-if-changed={log}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
