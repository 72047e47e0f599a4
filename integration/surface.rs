//! The command line as a whole: docker's flags and verbs den lacks say so in one line (never
//! clap's generic "unexpected argument"), the coverage table, completions and man pages.

use crate::sandbox::Sandbox;

/// docker's flags of the verbs den has, which den does not implement: one line naming the flag
/// and the verb, a hint, status 125 (docker's for a usage error); nothing is created.
#[test]
fn docker_flags_den_lacks_are_named_as_unsupported() {
    let sb = Sandbox::new();
    let out = sb.den(&["run", "--cpu-quota=2", "--rm", "alpine", "true"]);
    out.fails_with(125, "docker's --cpu-quota (of run) is not supported by den");
    assert!(out.stderr.contains("\nhint: "), "{}", out.stderr);
    assert!(
        !out.stderr.contains("unexpected argument"),
        "{}",
        out.stderr
    );
    sb.den(&["create", "--blkio-weight", "20", "alpine"])
        .fails_with(
            125,
            "docker's --blkio-weight (of create) is not supported by den",
        );
    sb.den(&["container", "run", "--link", "db", "alpine"])
        .fails_with(125, "docker's --link (of run) is not supported by den");
    sb.den(&["volume", "create", "--driver", "nfs", "v1"])
        .fails_with(
            125,
            "docker's --driver (of volume create) is not supported by den",
        );
    sb.den(&["pull", "--disable-content-trust", "alpine"])
        .fails_with(
            125,
            "docker's --disable-content-trust (of pull) is not supported by den",
        );
    // The tool itself says the same.
    let out = run_tool(&sb, "den-run", &["run", "--oom-kill-disable", "alpine"]);
    out.fails_with(
        125,
        "docker's --oom-kill-disable (of run) is not supported by den",
    );
    // docker's global options.
    sb.den(&["-H", "tcp://host:2375", "ps"])
        .fails_with(125, "docker's global option --host is not supported by den");
    // Nothing was created.
    assert_eq!(sb.den(&["ps", "-aq"]).ok(), "");
    assert_eq!(sb.den(&["volume", "ls", "-q"]).ok(), "");
}

/// A flag docker does not know either keeps clap's reading, in den's one-line format.
#[test]
fn unknown_flags_are_one_line_with_a_hint() {
    let sb = Sandbox::new();
    let out = sb.den(&["run", "--no-such-flag", "alpine"]);
    out.fails_with(125, "unknown flag: --no-such-flag (of run)");
    assert!(
        out.stderr.contains("hint: see 'den run --help'"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 2, "{}", out.stderr);
    sb.den(&["ps", "--al"])
        .fails_with(125, "did you mean '--all'?");
}

/// docker's verbs den lacks, top-level or a management command's, say so; a word docker does
/// not know either is not a den command, as before.
#[test]
fn docker_verbs_den_lacks_are_named_as_unsupported() {
    let sb = Sandbox::new();
    for verb in [
        "swarm", "plugin", "trust", "context", "buildx", "service", "update",
    ] {
        let out = sb.den(&[verb, "ls"]);
        out.fails_with(125, &format!("docker's '{verb}' is not supported by den"));
        assert!(out.stderr.contains("\nhint: "), "{}", out.stderr);
    }
    sb.den(&["swarm", "init"])
        .fails_with(125, "no orchestrator");
    sb.den(&["container", "update", "--cpus", "1", "x"])
        .fails_with(125, "docker's 'container update' is not supported by den");
    let out = sb.den(&["frobnicate"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("'frobnicate' is not a den command"),
        "{}",
        out.stderr
    );
}

fn run_tool(sb: &Sandbox, tool: &str, args: &[&str]) -> crate::sandbox::Out {
    crate::sandbox::run(sb.cmd(tool, args))
}

/// docs/docker-coverage.md is what the binaries generate now: it cannot drift from the clap
/// definitions.
#[test]
fn coverage_table_is_current() {
    let sb = Sandbox::new();
    let generated = sb.den(&["__coverage"]).ok();
    let checked_in = include_str!("../docs/docker-coverage.md");
    assert!(
        generated == checked_in,
        "docs/docker-coverage.md differs from what den's clap definitions give: run `make coverage` \
         (den __coverage > docs/docker-coverage.md) and commit it\n--- generated ---\n{generated}"
    );
    assert!(generated.contains("| `run` | supported"), "{generated}");
    assert!(
        generated.contains("| `swarm` | not supported"),
        "{generated}"
    );
    assert!(
        generated.contains("| `-p`, `--publish` | supported"),
        "{generated}"
    );
}

/// `den completion SHELL` covers every verb and flag of den's tree; bash accepts its script.
#[test]
fn completion_scripts_know_the_verbs_and_flags() {
    let sb = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = sb.den(&["completion", shell]).ok();
        // fish spells a long flag `-l publish`.
        let publish = if shell == "fish" {
            "-l publish"
        } else {
            "--publish"
        };
        for word in ["run", publish, "image", "prune"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    let checked = sb.sh(
        "den completion bash > c.bash && bash -n c.bash && bash -c '. ./c.bash && complete -p den'",
    );
    assert!(checked.ok().contains("den"), "{}", checked.stderr);
    sb.den(&["completion", "tcsh"])
        .fails_with(125, "no completion for shell 'tcsh'");
}

/// Man pages for den and each verb; they render.
#[test]
fn man_pages_render() {
    let sb = Sandbox::new();
    sb.den(&["__man", "man"]).ok();
    let dir = sb.dir.join("man");
    for page in [
        "den.1",
        "den-run.1",
        "den-image-ls.1",
        "den-volume-create.1",
    ] {
        let roff = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(roff.contains(".TH"), "{page}: {roff}");
    }
    let roff = std::fs::read_to_string(dir.join("den-run.1")).unwrap();
    assert!(roff.contains("publish"), "{roff}");
    if std::path::Path::new("/usr/bin/man").exists() {
        let out = sb.sh("MANWIDTH=80 man -l man/den-run.1 | cat");
        let text = out.ok();
        assert!(
            text.contains("den-run") && text.contains("--publish"),
            "{text}"
        );
    }
}
