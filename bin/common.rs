// Shared by the den binaries (included with `#[path]`): logging set-up and the exit path.

use den::error::Error;

/// Parse the command line; a usage error exits 125 as docker's do (help and version exit 0).
/// Called by `den VERB`, the tool names itself "den" in its messages.
pub fn parse<C: clap::Parser>() -> C {
    let mut cmd = C::command();
    if std::env::var_os("_DEN_FRONT").is_some() {
        cmd = cmd.bin_name("den").name("den");
    }
    let args = den::cli::end_options_after_image(&cmd, std::env::args_os().collect());
    let matches = cmd.try_get_matches_from(args).unwrap_or_else(|e| {
        let code = if e.use_stderr() { 125 } else { 0 };
        let _ = e.print();
        std::process::exit(code)
    });
    C::from_arg_matches(&matches).unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(125)
    })
}

/// Install the log subscriber: plain lines on stderr, at the `--log-level` given.
///
/// At the default level libcontainer's own warnings are left out: on hosts without cgroup
/// delegation it warns about every controller, and den runs without cgroups on purpose there.
pub fn init_logging(level: &str) {
    let lvl = den::cli::log_level(level);
    let filter = if lvl <= tracing::Level::WARN {
        format!("{lvl},libcontainer=error,libcgroups=error")
    } else {
        lvl.to_string()
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false);
    // Timestamps (time since start) only when debugging: they show where time goes.
    let _ = if lvl >= tracing::Level::DEBUG {
        builder
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .try_init()
    } else {
        builder.without_time().try_init()
    };
}

/// Turn a verb's result into the process exit status, reporting an error once.
pub fn exit_with(result: Result<i32, Error>) -> std::process::ExitCode {
    let code = match result {
        Ok(code) => code,
        Err(e) => den::cli::fail(&e),
    };
    std::process::ExitCode::from(code.clamp(0, 255) as u8)
}

/// Write `text` to stdout; a closed pipe (`den images | head -1`) is not an error.
pub fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("den: error: cannot write output: {e}");
    }
}

/// Print what an `inspect` found (a JSON array, or `--format` per object), then report each
/// error, the verb's then the format's; the exit status: 1 if there was any.
#[allow(dead_code)] // den-build inspects nothing
pub fn print_objects(
    values: &[serde_json::Value],
    format: Option<&str>,
    mut errors: Vec<Error>,
) -> i32 {
    let (out, format_errors) = den::render::objects(values, format);
    errors.extend(
        format_errors
            .into_iter()
            .map(|e| den::error::UsageError::Format(e).into()),
    );
    print_and_fail(&out, errors)
}

/// Print `out`, then report each error; the exit status: 1 if there was any.
#[allow(dead_code)] // den-build inspects nothing
pub fn print_and_fail(out: &str, errors: Vec<Error>) -> i32 {
    print(out);
    let failed = !errors.is_empty();
    for e in errors {
        den::cli::fail(&e);
    }
    if failed { 1 } else { 0 }
}
