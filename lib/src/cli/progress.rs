//! How a pull looks: progress bars on a terminal, docker's status lines otherwise, nothing with
//! `-q`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::image::Reference;
use crate::ops::{LayerEvent, Report};

enum Mode {
    Quiet,
    Lines(Mutex<Box<dyn Write + Send>>),
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<String, ProgressBar>>,
    },
}

/// A [`Report`] for the terminal or a pipe.
pub struct PullReport {
    mode: Mode,
}

impl PullReport {
    /// `to_stderr`: print to stderr (as `run` does when it pulls), else stdout (as `pull` does).
    pub fn new(quiet: bool, to_stderr: bool) -> PullReport {
        use std::io::IsTerminal;
        let mode = if quiet {
            Mode::Quiet
        } else if (to_stderr && std::io::stderr().is_terminal())
            || (!to_stderr && std::io::stdout().is_terminal())
        {
            let target = if to_stderr {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::stdout()
            };
            Mode::Bars {
                multi: MultiProgress::with_draw_target(target),
                bars: Mutex::new(HashMap::new()),
            }
        } else {
            let out: Box<dyn Write + Send> = if to_stderr {
                Box::new(std::io::stderr())
            } else {
                Box::new(std::io::stdout())
            };
            Mode::Lines(Mutex::new(out))
        };
        PullReport { mode }
    }

    /// Print a line in whatever mode (above the bars on a terminal).
    pub fn line(&self, text: &str) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Lines(out) => {
                let mut o = out.lock().expect("report lock");
                let _ = writeln!(o, "{text}");
                let _ = o.flush();
            }
            Mode::Bars { multi, .. } => {
                let _ = multi.println(text);
            }
        }
    }

    fn bar(&self, short: &str, f: impl FnOnce(&ProgressBar)) {
        if let Mode::Bars { multi, bars } = &self.mode {
            let mut bars = bars.lock().expect("report lock");
            let bar = bars.entry(short.to_string()).or_insert_with(|| {
                let b = multi.add(ProgressBar::new(0));
                b.set_style(
                    ProgressStyle::with_template(
                        "{prefix}: {msg:<12} [{bar:30}] {bytes}/{total_bytes}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                b.set_prefix(short.to_string());
                b
            });
            f(bar);
        }
    }
}

impl Report for PullReport {
    fn pulling(&self, reference: &Reference) {
        let tag = reference
            .tag()
            .map(String::from)
            .unwrap_or_else(|| reference.digest().unwrap_or_default().to_string());
        self.line(&format!("{tag}: Pulling from {}", reference.repository()));
    }

    fn digest(&self, digest: &str) {
        self.line(&format!("Digest: {digest}"));
    }

    fn layer(&self, short: &str, event: LayerEvent) {
        match (&self.mode, event) {
            (Mode::Quiet, _) => {}
            (Mode::Lines(_), LayerEvent::AlreadyExists) => {
                self.line(&format!("{short}: Already exists"))
            }
            (Mode::Lines(_), LayerEvent::Complete) => self.line(&format!("{short}: Pull complete")),
            (Mode::Lines(_), _) => {}
            (Mode::Bars { .. }, LayerEvent::AlreadyExists) => {
                self.line(&format!("{short}: Already exists"))
            }
            (Mode::Bars { .. }, LayerEvent::Waiting(total)) => self.bar(short, |b| {
                b.set_length(total);
                b.set_message("Waiting");
            }),
            (Mode::Bars { .. }, LayerEvent::Downloaded(n)) => self.bar(short, |b| {
                b.set_message("Downloading");
                b.inc(n);
            }),
            (Mode::Bars { .. }, LayerEvent::Verified) => {
                self.bar(short, |b| b.set_message("Verified"))
            }
            (Mode::Bars { .. }, LayerEvent::Extracting) => {
                self.bar(short, |b| b.set_message("Extracting"))
            }
            (Mode::Bars { .. }, LayerEvent::Complete) => self.bar(short, |b| {
                b.set_position(b.length().unwrap_or(0));
                b.finish_with_message("Pull complete");
            }),
        }
    }

    #[allow(clippy::print_stderr, reason = "the edge: pull's notes for the user")]
    fn note(&self, text: &str) {
        eprintln!("{text}");
    }
}
