//! Docker 25's command line, as data: every top-level verb and management command, and the
//! flags of `run`/`create` and of the other verbs den has (written from docker's CLI reference,
//! docs.docker.com/reference/cli/docker/). den uses it to say that a flag or verb it does not
//! implement is docker's and unsupported (rather than clap's "unexpected argument"), and to
//! generate docs/docker-coverage.md against den's clap definitions ([`super::coverage`]).
//!
//! Hand-written rather than scraped: docker's reference is YAML spread over its repository, and
//! the table only changes with a docker release.

/// One of docker's flags: its long spelling (without `--`), its short letter, whether it
/// takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    pub value: bool,
}

/// A flag that takes a value.
const fn v(long: &'static str) -> Flag {
    Flag {
        long,
        short: None,
        value: true,
    }
}

/// A flag with a short letter that takes a value.
const fn vs(long: &'static str, short: char) -> Flag {
    Flag {
        long,
        short: Some(short),
        value: true,
    }
}

/// A switch.
const fn b(long: &'static str) -> Flag {
    Flag {
        long,
        short: None,
        value: false,
    }
}

/// A switch with a short letter.
const fn bs(long: &'static str, short: char) -> Flag {
    Flag {
        long,
        short: Some(short),
        value: false,
    }
}

/// One of docker's verbs: its name as typed (`run`, `image ls`), a line about it, its flags.
/// A verb whose flags den does not look at has none listed (den implements none of it).
#[derive(Debug, Clone, Copy)]
pub struct Verb {
    pub name: &'static str,
    pub about: &'static str,
    pub flags: &'static [Flag],
}

const fn verb(name: &'static str, about: &'static str, flags: &'static [Flag]) -> Verb {
    Verb { name, about, flags }
}

/// `docker run`'s flags (`create` has them all but `--detach`, `--detach-keys`, `--sig-proxy`).
pub const RUN_FLAGS: &[Flag] = &[
    v("add-host"),
    v("annotation"),
    vs("attach", 'a'),
    v("blkio-weight"),
    v("blkio-weight-device"),
    v("cap-add"),
    v("cap-drop"),
    v("cgroup-parent"),
    v("cgroupns"),
    v("cidfile"),
    v("cpu-count"),
    v("cpu-percent"),
    v("cpu-period"),
    v("cpu-quota"),
    v("cpu-rt-period"),
    v("cpu-rt-runtime"),
    vs("cpu-shares", 'c'),
    v("cpus"),
    v("cpuset-cpus"),
    v("cpuset-mems"),
    bs("detach", 'd'),
    v("detach-keys"),
    v("device"),
    v("device-cgroup-rule"),
    v("device-read-bps"),
    v("device-read-iops"),
    v("device-write-bps"),
    v("device-write-iops"),
    b("disable-content-trust"),
    v("dns"),
    v("dns-opt"),
    v("dns-option"),
    v("dns-search"),
    v("domainname"),
    v("entrypoint"),
    vs("env", 'e'),
    v("env-file"),
    v("expose"),
    v("gpus"),
    v("group-add"),
    v("health-cmd"),
    v("health-interval"),
    v("health-retries"),
    v("health-start-interval"),
    v("health-start-period"),
    v("health-timeout"),
    b("help"),
    vs("hostname", 'h'),
    b("init"),
    bs("interactive", 'i'),
    v("io-maxbandwidth"),
    v("io-maxiops"),
    v("ip"),
    v("ip6"),
    v("ipc"),
    v("isolation"),
    v("kernel-memory"),
    vs("label", 'l'),
    v("label-file"),
    v("link"),
    v("link-local-ip"),
    v("log-driver"),
    v("log-opt"),
    v("mac-address"),
    vs("memory", 'm'),
    v("memory-reservation"),
    v("memory-swap"),
    v("memory-swappiness"),
    v("mount"),
    v("name"),
    v("network"),
    v("network-alias"),
    b("no-healthcheck"),
    b("oom-kill-disable"),
    v("oom-score-adj"),
    v("pid"),
    v("pids-limit"),
    v("platform"),
    b("privileged"),
    vs("publish", 'p'),
    bs("publish-all", 'P'),
    v("pull"),
    bs("quiet", 'q'),
    b("read-only"),
    v("restart"),
    b("rm"),
    v("runtime"),
    v("security-opt"),
    v("shm-size"),
    b("sig-proxy"),
    v("stop-signal"),
    v("stop-timeout"),
    v("storage-opt"),
    v("sysctl"),
    v("tmpfs"),
    bs("tty", 't'),
    v("ulimit"),
    vs("user", 'u'),
    v("userns"),
    v("uts"),
    vs("volume", 'v'),
    v("volume-driver"),
    v("volumes-from"),
    vs("workdir", 'w'),
];

/// `run`'s flags `create` does not have.
pub const RUN_ONLY: &[&str] = &["detach", "detach-keys", "sig-proxy"];

const BUILD_FLAGS: &[Flag] = &[
    v("add-host"),
    v("allow"),
    v("annotation"),
    v("attest"),
    v("build-arg"),
    v("build-context"),
    v("builder"),
    v("cache-from"),
    v("cache-to"),
    v("cgroup-parent"),
    b("compress"),
    v("cpu-period"),
    v("cpu-quota"),
    vs("cpu-shares", 'c'),
    v("cpuset-cpus"),
    v("cpuset-mems"),
    b("disable-content-trust"),
    vs("file", 'f'),
    b("force-rm"),
    v("iidfile"),
    v("isolation"),
    v("label"),
    b("load"),
    vs("memory", 'm'),
    v("memory-swap"),
    v("metadata-file"),
    v("network"),
    b("no-cache"),
    v("no-cache-filter"),
    vs("output", 'o'),
    v("platform"),
    v("progress"),
    v("provenance"),
    b("pull"),
    b("push"),
    bs("quiet", 'q'),
    b("rm"),
    v("sbom"),
    v("secret"),
    v("security-opt"),
    v("shm-size"),
    b("squash"),
    v("ssh"),
    vs("tag", 't'),
    v("target"),
    v("ulimit"),
];

const EXEC_FLAGS: &[Flag] = &[
    bs("detach", 'd'),
    v("detach-keys"),
    vs("env", 'e'),
    v("env-file"),
    bs("interactive", 'i'),
    b("privileged"),
    bs("tty", 't'),
    vs("user", 'u'),
    vs("workdir", 'w'),
];

const PS_FLAGS: &[Flag] = &[
    bs("all", 'a'),
    vs("filter", 'f'),
    v("format"),
    vs("last", 'n'),
    bs("latest", 'l'),
    b("no-trunc"),
    bs("quiet", 'q'),
    bs("size", 's'),
];

const IMAGES_FLAGS: &[Flag] = &[
    bs("all", 'a'),
    b("digests"),
    vs("filter", 'f'),
    v("format"),
    b("no-trunc"),
    bs("quiet", 'q'),
];

const STOP_FLAGS: &[Flag] = &[vs("signal", 's'), vs("time", 't')];
const PRUNE_FLAGS: &[Flag] = &[v("filter"), bs("force", 'f')];
const PRUNE_ALL_FLAGS: &[Flag] = &[bs("all", 'a'), v("filter"), bs("force", 'f')];
const FORMAT_FLAGS: &[Flag] = &[vs("format", 'f')];
const RMI_FLAGS: &[Flag] = &[bs("force", 'f'), b("no-prune")];
const HISTORY_FLAGS: &[Flag] = &[
    v("format"),
    bs("human", 'H'),
    b("no-trunc"),
    bs("quiet", 'q'),
];
const IMPORT_FLAGS: &[Flag] = &[vs("change", 'c'), vs("message", 'm'), v("platform")];
const LOAD_FLAGS: &[Flag] = &[vs("input", 'i'), bs("quiet", 'q')];
const OUTPUT_FLAGS: &[Flag] = &[vs("output", 'o')];
const PULL_FLAGS: &[Flag] = &[
    bs("all-tags", 'a'),
    b("disable-content-trust"),
    v("platform"),
    bs("quiet", 'q'),
];
const PUSH_FLAGS: &[Flag] = &[
    bs("all-tags", 'a'),
    b("disable-content-trust"),
    bs("quiet", 'q'),
];
const STATS_FLAGS: &[Flag] = &[bs("all", 'a'), v("format"), b("no-stream"), b("no-trunc")];
const VOLUME_CREATE_FLAGS: &[Flag] = &[
    v("availability"),
    vs("driver", 'd'),
    v("group"),
    vs("label", 'l'),
    v("limit-bytes"),
    vs("opt", 'o'),
    v("required-bytes"),
    v("scope"),
    v("secret"),
    v("sharing"),
    v("type"),
];
const VOLUME_LS_FLAGS: &[Flag] = &[
    b("cluster"),
    vs("filter", 'f'),
    v("format"),
    bs("quiet", 'q'),
];

/// Every verb of docker 25's CLI: the top level, then each management command's verbs.
pub const VERBS: &[Verb] = &[
    verb(
        "attach",
        "Attach to a running container",
        &[v("detach-keys"), b("no-stdin"), b("sig-proxy")],
    ),
    verb("build", "Build an image from a Dockerfile", BUILD_FLAGS),
    verb(
        "commit",
        "Create a new image from a container's changes",
        &[
            vs("author", 'a'),
            vs("change", 'c'),
            vs("message", 'm'),
            bs("pause", 'p'),
        ],
    ),
    verb(
        "cp",
        "Copy files between a container and the host",
        &[bs("archive", 'a'), bs("follow-link", 'L'), bs("quiet", 'q')],
    ),
    verb("create", "Create a new container", RUN_FLAGS),
    verb("diff", "Inspect changes to a container's filesystem", &[]),
    verb(
        "events",
        "Get real time events from the server",
        &[vs("filter", 'f'), v("format"), v("since"), v("until")],
    ),
    verb(
        "exec",
        "Execute a command in a running container",
        EXEC_FLAGS,
    ),
    verb(
        "export",
        "Export a container's filesystem as a tar archive",
        OUTPUT_FLAGS,
    ),
    verb("history", "Show the history of an image", HISTORY_FLAGS),
    verb("images", "List images", IMAGES_FLAGS),
    verb(
        "import",
        "Import a tarball to create an image",
        IMPORT_FLAGS,
    ),
    verb("info", "Display system-wide information", FORMAT_FLAGS),
    verb(
        "inspect",
        "Return low-level information on objects",
        &[vs("format", 'f'), bs("size", 's'), v("type")],
    ),
    verb(
        "kill",
        "Kill one or more running containers",
        &[vs("signal", 's')],
    ),
    verb(
        "load",
        "Load an image from a tar archive or STDIN",
        LOAD_FLAGS,
    ),
    verb(
        "login",
        "Log in to a registry",
        &[
            vs("password", 'p'),
            b("password-stdin"),
            vs("username", 'u'),
        ],
    ),
    verb("logout", "Log out from a registry", &[]),
    verb(
        "logs",
        "Fetch the logs of a container",
        &[
            b("details"),
            bs("follow", 'f'),
            v("since"),
            vs("tail", 'n'),
            bs("timestamps", 't'),
            v("until"),
        ],
    ),
    verb("pause", "Pause all processes within containers", &[]),
    verb("port", "List port mappings of a container", &[]),
    verb("ps", "List containers", PS_FLAGS),
    verb("pull", "Download an image from a registry", PULL_FLAGS),
    verb("push", "Upload an image to a registry", PUSH_FLAGS),
    verb("rename", "Rename a container", &[]),
    verb("restart", "Restart containers", STOP_FLAGS),
    verb(
        "rm",
        "Remove containers",
        &[bs("force", 'f'), bs("link", 'l'), bs("volumes", 'v')],
    ),
    verb("rmi", "Remove images", RMI_FLAGS),
    verb(
        "run",
        "Create and run a new container from an image",
        RUN_FLAGS,
    ),
    verb("save", "Save images to a tar archive", OUTPUT_FLAGS),
    verb(
        "search",
        "Search Docker Hub for images",
        &[vs("filter", 'f'), v("format"), v("limit"), b("no-trunc")],
    ),
    verb(
        "start",
        "Start stopped containers",
        &[
            bs("attach", 'a'),
            v("checkpoint"),
            v("checkpoint-dir"),
            v("detach-keys"),
            bs("interactive", 'i'),
        ],
    ),
    verb(
        "stats",
        "Display a live stream of resource usage",
        STATS_FLAGS,
    ),
    verb("stop", "Stop running containers", STOP_FLAGS),
    verb("tag", "Create a tag that refers to an image", &[]),
    verb("top", "Display the running processes of a container", &[]),
    verb("unpause", "Unpause all processes within containers", &[]),
    verb("update", "Update configuration of containers", &[]),
    verb(
        "version",
        "Show the Docker version information",
        FORMAT_FLAGS,
    ),
    verb(
        "wait",
        "Block until containers stop, print their exit codes",
        &[],
    ),
    // Management commands and their verbs.
    verb("builder", "Manage builds", &[]),
    verb(
        "builder build",
        "Build an image from a Dockerfile",
        BUILD_FLAGS,
    ),
    verb(
        "builder prune",
        "Remove build cache",
        &[
            bs("all", 'a'),
            v("filter"),
            bs("force", 'f'),
            v("keep-storage"),
        ],
    ),
    verb("buildx", "Docker Buildx (plugin)", &[]),
    verb("checkpoint", "Manage checkpoints (experimental)", &[]),
    verb("compose", "Docker Compose (plugin)", &[]),
    verb("config", "Manage Swarm configs", &[]),
    verb("container", "Manage containers", &[]),
    verb("container attach", "Attach to a running container", &[]),
    verb(
        "container commit",
        "Create a new image from a container",
        &[],
    ),
    verb("container cp", "Copy files to or from a container", &[]),
    verb("container create", "Create a new container", RUN_FLAGS),
    verb("container diff", "Inspect changes to a container", &[]),
    verb(
        "container exec",
        "Execute a command in a container",
        EXEC_FLAGS,
    ),
    verb("container export", "Export a container's filesystem", &[]),
    verb("container inspect", "Display containers' details", &[]),
    verb("container kill", "Kill running containers", &[]),
    verb("container logs", "Fetch the logs of a container", &[]),
    verb("container ls", "List containers", PS_FLAGS),
    verb("container pause", "Pause containers", &[]),
    verb("container port", "List port mappings", &[]),
    verb(
        "container prune",
        "Remove all stopped containers",
        PRUNE_FLAGS,
    ),
    verb("container rename", "Rename a container", &[]),
    verb("container restart", "Restart containers", STOP_FLAGS),
    verb("container rm", "Remove containers", &[]),
    verb("container run", "Create and run a new container", RUN_FLAGS),
    verb("container start", "Start stopped containers", &[]),
    verb("container stats", "Display resource usage", STATS_FLAGS),
    verb("container stop", "Stop running containers", STOP_FLAGS),
    verb("container top", "Display running processes", &[]),
    verb("container unpause", "Unpause containers", &[]),
    verb("container update", "Update configuration", &[]),
    verb("container wait", "Wait for containers to stop", &[]),
    verb("context", "Manage contexts", &[]),
    verb("image", "Manage images", &[]),
    verb(
        "image build",
        "Build an image from a Dockerfile",
        BUILD_FLAGS,
    ),
    verb(
        "image history",
        "Show the history of an image",
        HISTORY_FLAGS,
    ),
    verb("image import", "Import a tarball", IMPORT_FLAGS),
    verb("image inspect", "Display images' details", FORMAT_FLAGS),
    verb("image load", "Load an image from a tar archive", LOAD_FLAGS),
    verb("image ls", "List images", IMAGES_FLAGS),
    verb("image prune", "Remove unused images", PRUNE_ALL_FLAGS),
    verb("image pull", "Download an image", PULL_FLAGS),
    verb("image push", "Upload an image", PUSH_FLAGS),
    verb("image rm", "Remove images", RMI_FLAGS),
    verb("image save", "Save images to a tar archive", OUTPUT_FLAGS),
    verb("image tag", "Create a tag", &[]),
    verb("init", "Create Docker-related starter files (plugin)", &[]),
    verb("manifest", "Manage manifest lists (experimental)", &[]),
    verb(
        "manifest annotate",
        "Add additional information to a local image manifest",
        &[
            v("arch"),
            v("os"),
            v("os-features"),
            v("os-version"),
            v("variant"),
        ],
    ),
    verb(
        "manifest create",
        "Create a local manifest list",
        &[bs("amend", 'a'), b("insecure")],
    ),
    verb(
        "manifest inspect",
        "Display an image manifest, or manifest list",
        &[b("insecure"), bs("verbose", 'v')],
    ),
    verb(
        "manifest push",
        "Push a manifest list to a repository",
        &[b("insecure"), bs("purge", 'p')],
    ),
    verb("manifest rm", "Delete local manifest lists", &[]),
    verb("network", "Manage networks", &[]),
    verb(
        "network connect",
        "Connect a container to a network",
        &[
            v("alias"),
            v("driver-opt"),
            v("ip"),
            v("ip6"),
            v("link"),
            v("link-local-ip"),
        ],
    ),
    verb("network create", "Create a network", &[]),
    verb(
        "network disconnect",
        "Disconnect a container from a network",
        &[bs("force", 'f')],
    ),
    verb("network inspect", "Display networks' details", &[]),
    verb("network ls", "List networks", &[]),
    verb("network prune", "Remove all unused networks", &[]),
    verb("network rm", "Remove networks", &[]),
    verb("node", "Manage Swarm nodes", &[]),
    verb("plugin", "Manage plugins", &[]),
    verb(
        "sbom",
        "View the packaged-based SBOM for an image (plugin)",
        &[],
    ),
    verb("scout", "Docker Scout (plugin)", &[]),
    verb("secret", "Manage Swarm secrets", &[]),
    verb("service", "Manage Swarm services", &[]),
    verb("stack", "Manage Swarm stacks", &[]),
    verb("swarm", "Manage Swarm", &[]),
    verb("system", "Manage Docker", &[]),
    verb(
        "system df",
        "Show docker disk usage",
        &[v("format"), bs("verbose", 'v')],
    ),
    verb(
        "system events",
        "Get real time events",
        &[vs("filter", 'f'), v("format"), v("since"), v("until")],
    ),
    verb(
        "system info",
        "Display system-wide information",
        FORMAT_FLAGS,
    ),
    verb(
        "system prune",
        "Remove unused data",
        &[bs("all", 'a'), v("filter"), bs("force", 'f'), b("volumes")],
    ),
    verb("trust", "Manage trust on Docker images", &[]),
    verb("volume", "Manage volumes", &[]),
    verb("volume create", "Create a volume", VOLUME_CREATE_FLAGS),
    verb("volume inspect", "Display volumes' details", FORMAT_FLAGS),
    verb("volume ls", "List volumes", VOLUME_LS_FLAGS),
    verb(
        "volume prune",
        "Remove unused local volumes",
        PRUNE_ALL_FLAGS,
    ),
    verb("volume rm", "Remove volumes", &[bs("force", 'f')]),
    verb(
        "volume update",
        "Update a volume (cluster volumes only)",
        &[],
    ),
];

/// docker's global options (before the verb).
pub const GLOBAL_FLAGS: &[Flag] = &[
    v("config"),
    vs("context", 'c'),
    bs("debug", 'D'),
    vs("host", 'H'),
    vs("log-level", 'l'),
    b("tls"),
    v("tlscacert"),
    v("tlscert"),
    v("tlskey"),
    b("tlsverify"),
    bs("version", 'v'),
];

/// What to use in den instead of a docker flag or verb it lacks: (verb or `*`, flag or "" for
/// the verb itself, the hint).
const INSTEAD: &[(&str, &str, &str)] = &[
    (
        "*",
        "disable-content-trust",
        "den verifies every blob's digest; it signs nothing",
    ),
    (
        "run",
        "runtime",
        "den runs containers with its built-in runtime only",
    ),
    ("run", "isolation", "den runs Linux containers only"),
    (
        "run",
        "ip6",
        "den's userspace network has no such setting (one fixed address per container): publish ports with -p, or share the host's addresses with --network host",
    ),
    (
        "run",
        "mac-address",
        "den's userspace network has no such setting (one fixed address per container): publish ports with -p, or share the host's addresses with --network host",
    ),
    (
        "run",
        "link",
        "den has no container links: put both containers on a user network (den network create NET; --network NET) and use the name",
    ),
    ("run", "kernel-memory", "docker deprecated it; use --memory"),
    (
        "*",
        "host",
        "den has no daemon: it runs as you on this machine",
    ),
    (
        "*",
        "context",
        "den has no daemon: it runs as you on this machine",
    ),
    ("*", "tls", "den has no daemon to connect to"),
    ("*", "tlsverify", "den has no daemon to connect to"),
    ("*", "debug", "use --log-level debug"),
    (
        "*",
        "insecure",
        "den reaches loopback registries, and those its config lists as insecure, without TLS verification; `den manifest push` takes --tls-verify=false",
    ),
    (
        "manifest inspect",
        "verbose",
        "den prints the list (or manifest) itself; inspect an entry by digest (REPO@DIGEST) for its manifest",
    ),
    (
        "*",
        "config",
        "den reads ~/.docker/config.json for registry logins; --root sets its store",
    ),
    (
        "swarm",
        "",
        "den runs containers on this machine only; it has no orchestrator",
    ),
    (
        "service",
        "",
        "den runs containers on this machine only; it has no orchestrator",
    ),
    (
        "stack",
        "",
        "den runs containers on this machine only; it has no orchestrator",
    ),
    (
        "node",
        "",
        "den runs containers on this machine only; it has no orchestrator",
    ),
    (
        "secret",
        "",
        "mount the secret's file with -v HOST-FILE:CTR-FILE:ro",
    ),
    ("config", "", "mount the file with -v HOST-FILE:CTR-FILE:ro"),
    (
        "context",
        "",
        "den has no daemon: it runs as you on this machine (--root picks a store)",
    ),
    ("buildx", "", "use den build (its flags are docker build's)"),
    ("builder build", "", "use den build"),
    ("image build", "", "use den build"),
    ("plugin", "", "den has no plugins"),
    (
        "trust",
        "",
        "den verifies every blob's digest; it signs nothing",
    ),
    ("checkpoint", "", "den has no checkpoint/restore"),
];

/// Where to ask for what den lacks.
pub const ASK: &str =
    "docs/docker-coverage.md lists what den supports; open an issue to ask for it";

/// docker's verb named `name` (`run`, `image ls`).
pub fn find_verb(name: &str) -> Option<&'static Verb> {
    VERBS.iter().find(|v| v.name == name)
}

/// `verb`'s flags in docker (create's are run's without the run-only ones).
pub fn flags(verb: &str) -> Vec<Flag> {
    let Some(v) = find_verb(verb) else {
        return Vec::new();
    };
    let create = verb == "create" || verb == "container create";
    v.flags
        .iter()
        .filter(|f| !(create && RUN_ONLY.contains(&f.long)))
        .copied()
        .collect()
}

/// docker's flag of `verb` spelled `arg` (`--cpus`, `--cpus=2`, `-c`), or of docker's global
/// options where `verb` is None.
pub fn find_flag(verb: Option<&str>, arg: &str) -> Option<Flag> {
    let all = match verb {
        Some(v) => flags(v),
        None => GLOBAL_FLAGS.to_vec(),
    };
    if let Some(long) = arg.strip_prefix("--") {
        let long = long.split_once('=').map_or(long, |(l, _)| l);
        all.into_iter().find(|f| f.long == long)
    } else {
        let short = arg.strip_prefix('-')?.chars().next()?;
        all.into_iter().find(|f| f.short == Some(short))
    }
}

/// What to use instead of docker's `flag` of `verb` (`flag` "" for the verb itself), else
/// where to ask.
pub fn instead(verb: &str, flag: &str) -> String {
    let first = verb.split(' ').next().unwrap_or(verb);
    INSTEAD
        .iter()
        .find(|(v, f, _)| {
            (*v == verb || *v == "*" || (flag.is_empty() && *v == first)) && *f == flag
        })
        .or_else(|| {
            INSTEAD
                .iter()
                .find(|(v, f, _)| *v == "run" && *f == flag && verb.ends_with("create"))
        })
        .map_or_else(|| ASK.to_string(), |(_, _, h)| (*h).to_string())
}

/// The one line that says docker's `arg` of `verb` is unsupported, and its hint.
pub fn unsupported_flag(verb: Option<&str>, flag: &Flag) -> (String, String) {
    let spelled = format!("--{}", flag.long);
    let line = match verb {
        Some(v) => format!("docker's {spelled} (of {v}) is not supported by den"),
        None => format!("docker's global option {spelled} is not supported by den"),
    };
    (line, instead(verb.unwrap_or("*"), flag.long))
}

/// The one line that says docker's verb `name` is unsupported, and its hint.
pub fn unsupported_verb(name: &str) -> (String, String) {
    (
        format!("docker's '{name}' is not supported by den"),
        instead(name, ""),
    )
}

/// The one-line message and hint for a command line clap refused with an unknown argument or
/// subcommand: docker's flag or verb that den lacks says so; anything else keeps clap's
/// message, with clap's suggestion or the verb's help as the hint. `verb` is the verb being
/// parsed as the user typed it (`run`, `container prune`), `bin` how the tool names itself.
/// Other errors (a bad value, a missing argument) are not this function's: None.
pub fn explain(err: &clap::Error, verb: Option<&str>, bin: &str) -> Option<(String, String)> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let text = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    let help = match verb {
        Some(v) => format!("see '{bin} {v} --help'"),
        None => format!("see '{bin} --help'"),
    };
    match err.kind() {
        ErrorKind::UnknownArgument => {
            let arg = text(ContextKind::InvalidArg)?;
            if let Some(flag) = find_flag(verb, &arg) {
                return Some(unsupported_flag(verb, &flag));
            }
            let line = match verb {
                Some(v) => format!("unknown flag: {arg} (of {v})"),
                None => format!("unknown flag: {arg}"),
            };
            let hint = match text(ContextKind::SuggestedArg) {
                Some(s) => format!("did you mean '{s}'? {help}"),
                None => help,
            };
            Some((line, hint))
        }
        ErrorKind::InvalidSubcommand => {
            let sub = text(ContextKind::InvalidSubcommand)?;
            let name = match verb {
                Some(v) => format!("{v} {sub}"),
                None => sub.clone(),
            };
            if find_verb(&name).is_some() {
                return Some(unsupported_verb(&name));
            }
            let hint = match text(ContextKind::SuggestedSubcommand) {
                Some(s) => format!("did you mean '{s}'? {help}"),
                None => help,
            };
            Some((format!("'{name}' is not a den command"), hint))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_found_by_every_spelling() {
        assert_eq!(
            find_flag(Some("run"), "--cpus=2").map(|f| f.long),
            Some("cpus")
        );
        assert_eq!(
            find_flag(Some("run"), "-c").map(|f| f.long),
            Some("cpu-shares")
        );
        assert_eq!(find_flag(Some("run"), "--bogus"), None);
        assert_eq!(find_flag(Some("create"), "--detach"), None);
        assert_eq!(find_flag(None, "-H").map(|f| f.long), Some("host"));
    }

    #[test]
    fn hints_say_what_instead_else_where_to_ask() {
        assert!(instead("swarm", "").contains("orchestrator"));
        assert!(instead("pull", "disable-content-trust").contains("digest"));
        assert_eq!(instead("run", "oom-score-adj"), ASK);
    }

    fn refused(args: &[&str]) -> Option<(String, String)> {
        let cmd = clap::Command::new("den")
            .subcommand(clap::Command::new("run").arg(clap::Arg::new("rm").long("rm").num_args(0)));
        let err = cmd.try_get_matches_from(args).err()?;
        explain(&err, Some("run"), "den")
    }

    #[test]
    fn docker_flags_den_lacks_say_so_in_one_line() {
        let (line, hint) = refused(&["den", "run", "--cpus=2"]).unwrap();
        assert_eq!(line, "docker's --cpus (of run) is not supported by den");
        assert_eq!(hint, ASK);
        let (line, _) = refused(&["den", "run", "-c", "3"]).unwrap();
        assert_eq!(
            line,
            "docker's --cpu-shares (of run) is not supported by den"
        );
        let (line, hint) = refused(&["den", "run", "--rmm"]).unwrap();
        assert_eq!(line, "unknown flag: --rmm (of run)");
        assert!(
            hint.contains("--rm") && hint.contains("den run --help"),
            "{hint}"
        );
    }

    #[test]
    fn the_table_has_no_duplicates() {
        let mut names: Vec<_> = VERBS.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), VERBS.len());
        for v in VERBS {
            let mut longs: Vec<_> = v.flags.iter().map(|f| f.long).collect();
            longs.sort_unstable();
            longs.dedup();
            assert_eq!(longs.len(), v.flags.len(), "{}", v.name);
        }
    }
}
