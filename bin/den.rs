//! den: the docker-compatible front. It maps each verb to the den-* tool that serves it and
//! execs that tool with the arguments unchanged, so `den run ...` and `den-run run ...` parse the
//! same flags the same way. The tools are looked up next to this executable, then on PATH.

#![deny(unsafe_code)]
#![allow(
    clippy::duplicate_mod,
    reason = "the tools' sources are included for their clap definitions (`tree`), each with its own copy of common.rs"
)]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a binary is the edge: it writes what the user reads"
)]

use std::ffi::OsString;

#[path = "common.rs"]
mod common;

// The tools' command-line definitions, for the combined tree of `den completion`, the man
// pages and the coverage table (`tree`): the front execs the tools, so it does not otherwise
// link their code; including their sources keeps one definition of each verb's flags.
#[allow(
    dead_code,
    unused_imports,
    reason = "only the tools' `Cli` is used here"
)]
#[path = "den-build.rs"]
mod tool_build;
#[allow(
    dead_code,
    unused_imports,
    reason = "only the tools' `Cli` is used here"
)]
#[path = "den-compose.rs"]
mod tool_compose;
#[allow(
    dead_code,
    unused_imports,
    reason = "only the tools' `Cli` is used here"
)]
#[path = "den-image.rs"]
mod tool_image;
#[allow(
    dead_code,
    unused_imports,
    reason = "only the tools' `Cli` is used here"
)]
#[path = "den-run.rs"]
mod tool_run;

/// verb -> (tool, the tool's verb)
const ROUTES: &[(&str, &str, &str)] = &[
    ("pull", "den-image", "pull"),
    ("images", "den-image", "images"),
    ("run", "den-run", "run"),
    ("create", "den-run", "create"),
    ("start", "den-run", "start"),
    ("stop", "den-run", "stop"),
    ("restart", "den-run", "restart"),
    ("kill", "den-run", "kill"),
    ("wait", "den-run", "wait"),
    ("ps", "den-run", "ps"),
    ("logs", "den-run", "logs"),
    ("attach", "den-run", "attach"),
    ("port", "den-run", "port"),
    ("exec", "den-run", "exec"),
    ("cp", "den-run", "cp"),
    ("rm", "den-run", "rm"),
    ("rename", "den-run", "rename"),
    ("diff", "den-run", "diff"),
    ("commit", "den-run", "commit"),
    ("pause", "den-run", "pause"),
    ("unpause", "den-run", "unpause"),
    ("top", "den-run", "top"),
    ("stats", "den-run", "stats"),
    ("inspect", "den-run", "inspect"),
    ("volume", "den-run", "volume"),
    ("healthcheck", "den-run", "healthcheck"),
    ("network", "den-run", "network"),
    ("container prune", "den-run", "prune"),
    ("info", "den-run", "info"),
    ("version", "den-run", "version"),
    ("events", "den-run", "events"),
    ("search", "den-image", "search"),
    ("manifest", "den-image", "manifest"),
    ("reset", "den-run", "reset"),
    ("build", "den-build", "build"),
    ("builder prune", "den-build", "prune"),
    ("image inspect", "den-image", "inspect"),
    ("image squash", "den-image", "squash"),
    ("login", "den-image", "login"),
    ("logout", "den-image", "logout"),
    ("push", "den-image", "push"),
    ("tag", "den-image", "tag"),
    ("rmi", "den-image", "rmi"),
    ("history", "den-image", "history"),
    ("import", "den-image", "import"),
    ("image prune", "den-image", "prune"),
    ("system df", "den-image", "df"),
    ("system prune", "den-image", "system-prune"),
    ("system check", "den-image", "system-check"),
    ("system share", "den-image", "system-share"),
    ("export", "den-run", "export"),
    ("save", "den-image", "save"),
    ("load", "den-image", "load"),
];

/// docker's management commands: `den GROUP VERB` is the verb it maps to. Each has a line of
/// help for `den GROUP --help`.
struct Group {
    name: &'static str,
    about: &'static str,
    verbs: &'static [(&'static str, &'static str, &'static str)],
}

const GROUPS: &[Group] = &[
    Group {
        name: "image",
        about: "Manage images",
        verbs: &[
            ("build", "build", "Build an image from a Dockerfile"),
            ("history", "history", "Show the steps that made an image"),
            (
                "import",
                "import",
                "Make an image from a root filesystem tar",
            ),
            ("inspect", "image inspect", "Show images' details as JSON"),
            ("load", "load", "Load images from a tar archive or stdin"),
            ("ls", "images", "List images"),
            ("list", "images", ""),
            ("prune", "image prune", "Remove unused images"),
            ("pull", "pull", "Download an image from a registry"),
            ("push", "push", "Upload an image to a registry"),
            ("rm", "rmi", "Remove images"),
            ("remove", "rmi", ""),
            (
                "save",
                "save",
                "Save images to a tar archive (stdout by default)",
            ),
            (
                "squash",
                "image squash",
                "Write an image as one SquashFS file (den run FILE.sqsh)",
            ),
            ("tag", "tag", "Give an image another name"),
        ],
    },
    Group {
        name: "container",
        about: "Manage containers",
        verbs: &[
            (
                "attach",
                "attach",
                "Attach to a running container's output and input",
            ),
            ("commit", "commit", "Make an image of a container's changes"),
            ("cp", "cp", "Copy files between a container and the host"),
            ("create", "create", "Create a container"),
            (
                "diff",
                "diff",
                "Show what a container changed in its filesystem",
            ),
            ("exec", "exec", "Run a command in a running container"),
            (
                "export",
                "export",
                "Write a container's filesystem as a tar archive",
            ),
            ("inspect", "inspect", "Show containers' details as JSON"),
            ("kill", "kill", "Send a signal to running containers"),
            ("logs", "logs", "Print a container's logs"),
            ("ls", "ps", "List containers"),
            ("list", "ps", ""),
            ("ps", "ps", ""),
            ("pause", "pause", "Pause all processes of containers"),
            ("port", "port", "List a container's published ports"),
            ("prune", "container prune", "Remove all stopped containers"),
            ("rename", "rename", "Rename a container"),
            ("restart", "restart", "Restart containers"),
            ("rm", "rm", "Remove containers"),
            ("remove", "rm", ""),
            ("run", "run", "Create and run a new container from an image"),
            ("start", "start", "Start stopped containers"),
            ("stats", "stats", "Show containers' resource use"),
            ("stop", "stop", "Stop running containers"),
            ("top", "top", "Show a container's processes"),
            (
                "unpause",
                "unpause",
                "Continue all processes of paused containers",
            ),
            (
                "wait",
                "wait",
                "Wait for containers to stop, print their exit codes",
            ),
        ],
    },
    Group {
        name: "system",
        about: "Manage den",
        verbs: &[
            (
                "check",
                "system check",
                "Check the store for leftovers and damage (--repair fixes them)",
            ),
            ("df", "system df", "Show den's disk usage"),
            ("events", "events", "Show what den did, and follow it"),
            (
                "info",
                "info",
                "Show what den does on this machine, and why",
            ),
            (
                "prune",
                "system prune",
                "Remove unused containers, images and build cache",
            ),
            (
                "reset",
                "reset",
                "Remove every image and container of yours",
            ),
            (
                "share",
                "system share",
                "Open the store (--root) to other users as a read-only additional store",
            ),
        ],
    },
    Group {
        name: "builder",
        about: "Manage the build cache",
        verbs: &[("prune", "builder prune", "Remove the build cache")],
    },
];

/// `den GROUP --help`: docker's layout for a management command.
fn group_help(g: &Group) -> String {
    let mut out = format!(
        "\nUsage:  den {} COMMAND\n\n{}\n\nCommands:\n",
        g.name, g.about
    );
    for (verb, _, about) in g.verbs.iter().filter(|(_, _, a)| !a.is_empty()) {
        out.push_str(&format!("  {verb:<11} {about}\n"));
    }
    out.push_str(&format!(
        "\nRun 'den {} COMMAND --help' for more information on a command.\n",
        g.name
    ));
    out
}

fn is_help(arg: &str) -> bool {
    matches!(arg, "-h" | "--help" | "help")
}

const HELP: &str = "\
Usage:  den [OPTIONS] COMMAND

A rootless, daemonless container toolkit with docker's workflow

Common Commands:
  run         Create and run a new container from an image
  exec        Run a command in a running container
  ps          List containers
  pull        Download an image from a registry
  build       Build an image from a Dockerfile
  push        Upload an image to a registry
  images      List images
  login       Log in to a registry
  logout      Log out from a registry
  info        Show what den does on this machine, and why

Image Commands:
  history     Show the steps that made an image
  import      Make an image from a root filesystem tar
  load        Load images from a tar archive or stdin
  rmi         Remove images
  save        Save images to a tar archive (stdout by default)
  tag         Give an image another name

Container Commands:
  attach      Attach to a running container's output and input
  commit      Make an image of a container's changes
  cp          Copy files between a container and the host
  create      Create a container
  diff        Show what a container changed in its filesystem
  export      Write a container's filesystem as a tar archive
  inspect     Show a container's details as JSON
  kill        Send a signal to running containers
  logs        Print a container's logs
  pause       Pause all processes of containers
  port        List a container's published ports
  rename      Rename a container
  restart     Restart containers
  rm          Remove containers
  start       Start stopped containers
  stats       Show containers' resource use
  stop        Stop running containers
  top         Show a container's processes
  unpause     Continue all processes of paused containers
  wait        Wait for containers to stop, print their exit codes

Management Commands:
  image       Manage images (ls, pull, push, build, inspect, tag, rm, prune, history, import, save, load)
  builder     Manage the build cache (prune)
  container   Manage containers (run, ls, start, stop, logs, exec, cp, export, rm, prune, ...)
  volume      Manage volumes (create, ls, rm, inspect, prune)
  system      Manage den (info, df, prune, check, reset)
  manifest    Manage manifest lists (create, add, annotate, inspect, push, rm, exists)
  compose     Define and run multi-container applications (up, down, ps, logs, exec, run, ...)

Other Commands:
  completion  Print a shell completion script (bash, zsh, fish)

Global Options:
      --root DIR          Store root (env DEN_ROOT) [default: ~/.local/share/den]
      --log-level LEVEL   error, warn, info, debug, trace (env DEN_LOG) [default: warn]
  -v, --version           Print version information and quit
  -h, --help              Print this help

Run 'den COMMAND --help' for more information on a command.
";

fn main() -> std::process::ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut i = 0;
    // Global options before the verb travel to the tool through the environment.
    let mut env: Vec<(&str, String)> = Vec::new();
    while i < args.len() {
        let a = args[i].to_string_lossy().into_owned();
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let var = match flag.as_str() {
            "--root" => "DEN_ROOT",
            "--log-level" => "DEN_LOG",
            "-h" | "--help" => {
                common::print(HELP);
                return std::process::ExitCode::SUCCESS;
            }
            "-v" | "--version" => {
                // docker's line: `Docker version 25.0.0, build e758fe5`.
                let v = den::ops::info::version();
                common::print(&format!(
                    "den version {}, build {}\n",
                    v.version, v.git_commit
                ));
                return std::process::ExitCode::SUCCESS;
            }
            _ if a.starts_with('-') => {
                if let Some(flag) = den::cli::docker::find_flag(None, &a) {
                    return unsupported(den::cli::docker::unsupported_flag(None, &flag));
                }
                return usage_error(&format!("unknown flag: {a}"));
            }
            _ => break,
        };
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                match args.get(i) {
                    Some(v) => v.to_string_lossy().into_owned(),
                    None => return usage_error(&format!("flag needs an argument: {flag}")),
                }
            }
        };
        let value = if var == "DEN_ROOT" {
            absolute(&value)
        } else {
            value
        };
        env.push((var, value));
        i += 1;
    }
    let Some(verb) = args.get(i).map(|v| v.to_string_lossy().into_owned()) else {
        common::print(HELP);
        return std::process::ExitCode::SUCCESS;
    };
    let rest: Vec<OsString> = args[i + 1..].to_vec();
    match verb.as_str() {
        "completion" => return completion(&rest),
        "__coverage" => {
            common::print(&den::cli::coverage::markdown(&tree()));
            return std::process::ExitCode::SUCCESS;
        }
        "__man" => return man(&rest),
        _ => {}
    }
    if verb == "help" {
        // `den help VERB` is `den VERB --help`, as in docker.
        match rest.first().map(|v| v.to_string_lossy().into_owned()) {
            Some(v) => return dispatch(&v, vec![OsString::from("--help")], env),
            None => {
                common::print(HELP);
                return std::process::ExitCode::SUCCESS;
            }
        }
    }
    dispatch(&verb, rest, env)
}

/// Run `verb` (a group's verb is looked up in the group) with `rest`, adding `env` to the
/// tool's environment.
fn dispatch(
    verb: &str,
    mut rest: Vec<OsString>,
    mut env: Vec<(&str, String)>,
) -> std::process::ExitCode {
    let verb = match GROUPS.iter().find(|g| g.name == verb) {
        Some(group) => {
            // docker prints a management command's help for `den image`, `--help` and `help`.
            let sub = rest.first().map(|s| s.to_string_lossy().into_owned());
            let Some(sub) = sub.filter(|s| !is_help(s)) else {
                common::print(&group_help(group));
                return std::process::ExitCode::SUCCESS;
            };
            let Some((_, mapped, _)) = group.verbs.iter().find(|(s, _, _)| *s == sub) else {
                let name = format!("{} {sub}", group.name);
                if den::cli::docker::find_verb(&name).is_some() {
                    return unsupported(den::cli::docker::unsupported_verb(&name));
                }
                eprintln!(
                    "den: '{} {sub}' is not a den command.\nSee 'den {} --help'",
                    group.name, group.name
                );
                return std::process::ExitCode::from(1);
            };
            rest.remove(0);
            mapped.to_string()
        }
        None => verb.to_string(),
    };
    // `den compose VERB ...` is den-compose's own command line, unchanged.
    let (tool, tool_verb) = if verb == "compose" {
        ("den-compose", "")
    } else if let Some((_, tool, tool_verb)) = ROUTES.iter().find(|(v, _, _)| *v == verb) {
        (*tool, *tool_verb)
    } else {
        if den::cli::docker::find_verb(&verb).is_some() {
            return unsupported(den::cli::docker::unsupported_verb(&verb));
        }
        eprintln!("den: '{verb}' is not a den command.\nSee 'den --help'");
        return std::process::ExitCode::from(1);
    };
    let Some(path) = den::config::tool_path(tool) else {
        return common::fail(&FrontError::NotInstalled(tool));
    };
    let mut argv: Vec<OsString> = Vec::new();
    if !tool_verb.is_empty() {
        argv.push(OsString::from(tool_verb));
        // Tells the tool to call itself "den", and which verb the user typed.
        env.push(("_DEN_FRONT", "1".into()));
        env.push(("_DEN_VERB", verb.clone()));
    }
    argv.extend(rest);
    common::fail(&FrontError::Exec(den::sys::exec(&path, &argv, &env)))
}

/// What the front itself fails at; a tool's failures are the tool's to report.
#[derive(Debug, thiserror::Error)]
enum FrontError {
    #[error("{0} is not installed next to den or on PATH")]
    NotInstalled(&'static str),
    #[error(transparent)]
    Exec(den::sys::SysError),
    #[error("no completion for shell '{0}'")]
    Shell(String),
    #[error("cannot write man pages to {0}")]
    Man(std::path::PathBuf, #[source] std::io::Error),
}

impl den::error::Diagnose for FrontError {
    fn hint(&self) -> Option<String> {
        match self {
            FrontError::NotInstalled(_) => {
                Some("install all den binaries together (make install)".into())
            }
            FrontError::Exec(_) | FrontError::Man(..) => None,
            FrontError::Shell(_) => Some("den completion bash|zsh|fish|elvish|powershell".into()),
        }
    }
}

fn absolute(p: &str) -> String {
    let path = std::path::Path::new(p);
    if path.is_absolute() {
        return p.to_string();
    }
    std::env::current_dir()
        .map(|d| d.join(path).display().to_string())
        .unwrap_or_else(|_| p.to_string())
}

fn usage_error(msg: &str) -> std::process::ExitCode {
    eprintln!("den: {msg}\nSee 'den --help'");
    std::process::ExitCode::from(125)
}

/// docker's flag or verb that den does not implement: one line, a hint, docker's usage status.
fn unsupported((line, hint): (String, String)) -> std::process::ExitCode {
    eprintln!("den: error: {line}\nhint: {hint}");
    std::process::ExitCode::from(125)
}

/// den's whole command tree, as the user types it: each route's verb is the tool's verb
/// (its flags as the tool defines them) under den's name, each group a command of its verbs.
fn tree() -> clap::Command {
    use clap::{Args, CommandFactory};
    let tools = [
        ("den-run", tool_run::Cli::command()),
        ("den-image", tool_image::Cli::command()),
        ("den-build", tool_build::Cli::command()),
    ];
    let routed = |verb: &str, name: &'static str, about: &'static str| {
        let (_, tool, tool_verb) = ROUTES.iter().find(|(v, _, _)| *v == verb)?;
        let (_, cmd) = tools.iter().find(|(t, _)| t == tool)?;
        // The tool's own other names (den-run's `ls` for `ps`) are not den's.
        let sub = cmd
            .find_subcommand(tool_verb)?
            .clone()
            .name(name)
            .alias(None);
        Some(if about.is_empty() {
            sub
        } else {
            sub.about(about)
        })
    };
    let mut den = den::cli::GlobalArgs::augment_args(clap::Command::new("den"))
        .about("A rootless, daemonless container toolkit with docker's workflow")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_subcommand(true)
        .subcommand_required(true);
    for (verb, _, _) in ROUTES.iter().filter(|(v, _, _)| !v.contains(' ')) {
        if let Some(cmd) = routed(verb, verb, "") {
            den = den.subcommand(cmd);
        }
    }
    for g in GROUPS {
        let mut group = clap::Command::new(g.name)
            .about(g.about)
            .disable_help_subcommand(true);
        for (sub, mapped, about) in g.verbs.iter().filter(|(_, _, a)| !a.is_empty()) {
            // The group's other names for the verb (`ls`, `list`) are its aliases.
            let aliases = g
                .verbs
                .iter()
                .filter(|(s, m, a)| a.is_empty() && m == mapped && s != sub)
                .map(|(s, _, _)| *s);
            if let Some(cmd) = routed(mapped, sub, about) {
                group = group.subcommand(cmd.visible_aliases(aliases));
            }
        }
        den = den.subcommand(group);
    }
    den = den.subcommand(
        tool_compose::Cli::command()
            .name("compose")
            .bin_name("den compose")
            .about("Define and run multi-container applications")
            .version(None::<&str>),
    );
    den.subcommand(
        clap::Command::new("completion")
            .about("Print a shell completion script (bash, zsh, fish, elvish, powershell)")
            .arg(
                clap::Arg::new("shell")
                    .required(true)
                    .value_parser(clap::value_parser!(clap_complete::Shell)),
            ),
    )
}

/// `den completion SHELL`: the shell's completion script for [`tree`].
fn completion(rest: &[OsString]) -> std::process::ExitCode {
    let shell = rest.first().map(|s| s.to_string_lossy().into_owned());
    let Some(shell) = shell.and_then(|s| s.parse::<clap_complete::Shell>().ok()) else {
        return common::fail(&FrontError::Shell(
            rest.first()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ));
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut tree(), "den", &mut out);
    common::print(&String::from_utf8_lossy(&out));
    std::process::ExitCode::SUCCESS
}

/// `den __man DIR`: a man page for den and one for each verb (`den-run.1`, `den-image-ls.1`).
fn man(rest: &[OsString]) -> std::process::ExitCode {
    let Some(dir) = rest.first().map(std::path::PathBuf::from) else {
        return usage_error("__man needs a directory");
    };
    let made = std::fs::create_dir_all(&dir).and_then(|_| clap_mangen::generate_to(tree(), &dir));
    match made {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => common::fail(&FrontError::Man(dir, e)),
    }
}
