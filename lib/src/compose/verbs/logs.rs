//! `logs` and the foreground `up`'s output: each container's log through `den logs`, every
//! line prefixed with the container's name (`web-1  | `), coloured per container on a terminal.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Child;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::compose::ComposeError;
use crate::compose::engine::Den;

/// Where the prefixed lines go (the binary's stdout).
pub type Sink<'a> = &'a Mutex<Box<dyn Write + Send>>;

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub tail: Option<String>,
    pub timestamps: bool,
    pub color: bool,
    pub prefix: bool,
}

/// docker compose's colours, one per container in turn.
const COLORS: &[u8] = &[36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

/// Print `containers`' logs into `out` until they end (or, following, until the containers
/// stop), or until `stop` says so (checked every 100ms).
pub fn follow(
    den: &Den,
    containers: &[String],
    opts: &LogOptions,
    out: Sink,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<(), ComposeError> {
    let width = containers.iter().map(String::len).max().unwrap_or(0);
    let mut children: Vec<Child> = Vec::new();
    for name in containers {
        let mut args = vec!["logs".to_string()];
        if opts.follow {
            args.push("--follow".into());
        }
        if opts.timestamps {
            args.push("--timestamps".into());
        }
        if let Some(t) = &opts.tail {
            args.extend(["--tail".to_string(), t.clone()]);
        }
        args.push(name.clone());
        children.push(den.spawn_piped(&args)?);
    }
    let open = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for (i, (child, name)) in children.iter_mut().zip(containers).enumerate() {
            let prefix = prefix(name, width, i, opts);
            let streams: [Option<Box<dyn Read + Send>>; 2] = [
                child
                    .stdout
                    .take()
                    .map(|o| Box::new(o) as Box<dyn Read + Send>),
                child
                    .stderr
                    .take()
                    .map(|e| Box::new(e) as Box<dyn Read + Send>),
            ];
            for stream in streams.into_iter().flatten() {
                open.fetch_add(1, Ordering::SeqCst);
                let (prefix, open) = (prefix.clone(), &open);
                s.spawn(move || {
                    copy_lines(stream, &prefix, out);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }
        while open.load(Ordering::SeqCst) > 0 {
            if stop() {
                for c in children.iter_mut() {
                    let _ = c.kill();
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    for mut c in children {
        let _ = c.wait();
    }
    Ok(())
}

fn prefix(name: &str, width: usize, i: usize, opts: &LogOptions) -> String {
    if !opts.prefix {
        return String::new();
    }
    let text = format!("{name:<width$}  | ");
    if opts.color {
        format!("\x1b[{}m{text}\x1b[0m", COLORS[i % COLORS.len()])
    } else {
        text
    }
}

fn copy_lines(stream: Box<dyn Read + Send>, prefix: &str, out: Sink) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        let Ok(mut w) = out.lock() else { return };
        let _ = w.write_all(prefix.as_bytes());
        let _ = w.write_all(&line);
        let _ = w.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_pad_to_the_longest_name_and_colour_only_when_asked() {
        let plain = LogOptions {
            prefix: true,
            ..Default::default()
        };
        assert_eq!(prefix("web-1", 7, 0, &plain), "web-1    | ");
        let coloured = LogOptions {
            prefix: true,
            color: true,
            ..Default::default()
        };
        assert_eq!(prefix("db-1", 4, 1, &coloured), "\x1b[33mdb-1  | \x1b[0m");
        assert_eq!(prefix("db-1", 4, 1, &LogOptions::default()), "");
    }
}
