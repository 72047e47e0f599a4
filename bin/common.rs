// Shared by the den binaries (included with `#[path]`): parsing, logging, output, entering the
// user namespace, and the one place a failure becomes a message and an exit status.
// Each binary uses part of it.
#![allow(dead_code)]

use den::error::{Diagnose, EXIT_DEN, Fault};
use den::ops::{self, Ctx};
use den::render::FormatError;

/// What a tool's verb fails with: a verb's error, or a `--format` that does not parse (the
/// binaries render; `ops` never sees a template).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Op(#[from] ops::Error),
    #[error(transparent)]
    Format(#[from] FormatError),
}

impl Diagnose for Failure {
    fn hint(&self) -> Option<String> {
        match self {
            Failure::Op(e) => e.hint(),
            Failure::Format(e) => e.hint(),
        }
    }
    fn exit_code(&self) -> i32 {
        match self {
            Failure::Op(e) => e.exit_code(),
            Failure::Format(e) => e.exit_code(),
        }
    }
}

/// The seams' errors the binaries meet outside a verb (entering the user namespace, a flag
/// read into a type) are a verb's errors.
macro_rules! through_ops {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Failure {
                Failure::Op(e.into())
            }
        }
    )*};
}
through_ops!(
    den::archive::ArchiveError,
    den::auth::AuthError,
    den::build::BuildError,
    den::copy::CopyError,
    den::image::ReferenceError,
    den::store::StoreError,
    den::sys::SysError,
    den::userns::UsernsError,
);

impl From<den::render::TemplateError> for Failure {
    fn from(e: den::render::TemplateError) -> Failure {
        Failure::Format(e.into())
    }
}

pub type Result<T, E = Failure> = std::result::Result<T, E>;

/// When docker reports a verb's failure with status 1 rather than 125. docker's client exits
/// 125 for its own failures and 1 for an error its daemon answered; den has no daemon, so each
/// verb says which of its failures docker's daemon would have answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// den's own failures exit 125 (run, create, build, pull, import, ...).
    Den,
    /// Every failure of den's exits 1: the daemon's verbs (stop, rm, logs, save, load, ...).
    One,
    /// An image the user named that is unknown or ambiguous exits 1 (images, tag, history).
    OneIfUnknownImage,
    /// A registry that refused or failed exits 1 (login, push).
    OneIfRegistry,
}

impl OnFailure {
    fn is_one(self, err: &Failure) -> bool {
        use den::store::StoreError;
        match (self, err) {
            (OnFailure::Den, _) => false,
            (OnFailure::One, _) => true,
            (
                OnFailure::OneIfUnknownImage,
                Failure::Op(ops::Error::Store(
                    StoreError::ImageUnknown(_) | StoreError::ImageAmbiguous(_),
                )),
            ) => true,
            (OnFailure::OneIfRegistry, Failure::Op(ops::Error::Registry(e))) => e.from_registry(),
            _ => false,
        }
    }
}

/// Print `err` once, `den: error: <message>: <causes>` then `hint: ...`, and return its exit
/// status. A den tool run as a child that failed has said why already: nothing is printed.
pub fn report(err: &Failure) -> i32 {
    if let Failure::Op(e) = err
        && let Some(code) = e.reported()
    {
        return code;
    }
    print_error(err);
    err.exit_code()
}

/// Print an error that is not a verb's (the front's own) as [`report`] does; its exit status.
pub fn fail(err: &dyn Fault) -> std::process::ExitCode {
    print_error(err);
    std::process::ExitCode::from(err.exit_code().clamp(0, 255) as u8)
}

fn print_error(err: &dyn Fault) {
    eprintln!("den: error: {}", den::error::chain(err));
    if let Some(h) = err.hint() {
        eprintln!("hint: {h}");
    }
}

/// The exit status of a verb's failure, reported once: its own, or docker's 1 where `on`
/// says docker's verb exits 1.
pub fn status(err: &Failure, on: OnFailure) -> i32 {
    let code = report(err);
    if code == EXIT_DEN && on.is_one(err) {
        1
    } else {
        code
    }
}

/// The process exit status of a verb's result.
pub fn exit(result: Result<i32>, on: OnFailure) -> std::process::ExitCode {
    let code = match result {
        Ok(code) => code,
        Err(e) => status(&e, on),
    };
    std::process::ExitCode::from(code.clamp(0, 255) as u8)
}

/// Notes and errors a verb tells the user while it carries on, on stderr: the [`ops::Report`]
/// the binaries give [`Ctx`].
pub struct Notes;

impl ops::Report for Notes {
    fn note(&self, text: &str) {
        den::cli::note(text);
    }

    fn error(&self, err: &ops::Error) {
        if err.reported().is_none() {
            print_error(err);
        }
    }
}

/// The context of a verb run as the user: paths resolved, configuration read.
pub fn open(root: Option<&std::path::Path>) -> Result<Ctx> {
    Ok(Ctx::new(root, &Notes)?)
}

/// Enter den's user namespace (re-executing this program inside, while it is single-threaded)
/// and open the context again there. The paths `ctx` resolved as the user go along in the
/// environment: inside, den is uid 0 and would resolve another runtime directory.
pub fn enter(ctx: &Ctx, root: Option<&std::path::Path>) -> Result<Ctx> {
    ctx.paths.export()?;
    den::userns::enter(&den::sys::LinuxSys, ctx.runtime_dir().ok().as_deref())?;
    tracing::debug!("inside the user namespace");
    open(root)
}

/// [`enter`] without the re-execution ([`den::userns::enter_in_place`]), for a container start
/// that runs no keep-id container in this process, and for a pull.
#[allow(dead_code, reason = "den-run's and den-image's; the others re-execute")]
pub fn enter_in_place(ctx: &Ctx, root: Option<&std::path::Path>) -> Result<Ctx> {
    ctx.paths.export()?;
    den::userns::enter_in_place(&den::sys::LinuxSys, ctx.runtime_dir().ok().as_deref())?;
    tracing::debug!("inside the user namespace");
    open(root)
}

/// Parse the command line; a usage error exits 125 as docker's do (help and version exit 0).
/// Called by `den VERB`, the tool names itself "den" in its messages.
pub fn parse<C: clap::Parser>() -> C {
    let mut cmd = C::command();
    if std::env::var_os("_DEN_FRONT").is_some() {
        cmd = cmd.bin_name("den").name("den");
    }
    let args = den::cli::end_options_after_image(&cmd, std::env::args_os().collect());
    let verb = typed_verb(&cmd, &args);
    let bin = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string();
    let matches = cmd.try_get_matches_from(args).unwrap_or_else(|e| {
        // docker's flags and verbs den lacks, and unknown ones, are one line and a hint.
        if let Some((line, hint)) = den::cli::docker::explain(&e, verb.as_deref(), &bin) {
            eprintln!("den: error: {line}\nhint: {hint}");
            std::process::exit(EXIT_DEN)
        }
        let code = if e.use_stderr() { EXIT_DEN } else { 0 };
        let _ = e.print();
        std::process::exit(code)
    });
    C::from_arg_matches(&matches).unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(EXIT_DEN)
    })
}

/// The verb being parsed as the user typed it: the subcommands named on the command line
/// (`volume create`); for a top-level verb, the one the front says the user typed
/// (`den container prune` is den-run's `prune`).
fn typed_verb(cmd: &clap::Command, args: &[std::ffi::OsString]) -> Option<String> {
    let mut names: Vec<String> = Vec::new();
    let mut at = cmd;
    for a in args.iter().skip(1) {
        let a = a.to_string_lossy();
        if let Some(sub) = at.find_subcommand(a.as_ref()) {
            names.push(sub.get_name().to_string());
            at = sub;
        } else if !a.starts_with('-') && !names.is_empty() {
            break;
        }
    }
    match std::env::var_os("_DEN_VERB") {
        Some(v) if names.len() <= 1 => Some(v.to_string_lossy().into_owned()),
        _ => (!names.is_empty()).then(|| names.join(" ")),
    }
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
pub fn print_objects(
    values: &[serde_json::Value],
    format: Option<&str>,
    errors: Vec<ops::Error>,
) -> i32 {
    let (out, format_errors) = den::render::objects(values, format);
    let mut errors: Vec<Failure> = errors.into_iter().map(Failure::from).collect();
    errors.extend(format_errors.into_iter().map(Failure::from));
    print_and_fail(&out, errors)
}

/// Print `out`, then report each error; the exit status: 1 if there was any.
pub fn print_and_fail(out: &str, errors: Vec<Failure>) -> i32 {
    print(out);
    let failed = !errors.is_empty();
    for e in errors {
        report(&e);
    }
    if failed { 1 } else { 0 }
}

/// Run `f` on each item (a name the user gave): docker prints each success and reports each
/// failure, and exits 1 if any failed.
pub fn each<T>(
    items: impl IntoIterator<Item = T>,
    mut f: impl FnMut(T) -> Result<Option<String>>,
) -> i32 {
    let mut failed = false;
    for n in items {
        match f(n) {
            Ok(Some(line)) => print(&format!("{line}\n")),
            Ok(None) => {}
            Err(e) => {
                report(&e);
                failed = true;
            }
        }
    }
    if failed { 1 } else { 0 }
}
