// Shared by the den binaries (included with `#[path]`): logging set-up and the exit path.

use den::error::Error;

/// Install the log subscriber: plain lines on stderr, at the `--log-level` given.
pub fn init_logging(level: &str) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(den::cli::log_level(level))
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
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
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("den: error: cannot write output: {e}");
        }
    }
}
