//! How den reports failure: the words every seam's error shares, in a leaf that imports nothing
//! of den (every seam imports it; it imports none of them, so it closes no loop).
//!
//! Each seam owns one `thiserror` enum whose variants carry the input that failed (a reference,
//! a path, a registry) so the message can name it, and implements [`Diagnose`] for its hint and
//! exit code. A seam that calls a lower one wraps that one's error in a variant of its own (the
//! build's `BuildError::Store`); `ops::Error` wraps every seam's for the binaries, and the
//! binaries add what only they make (a bad `--format`). The binaries print an error once, at the
//! edge (`bin/common.rs`), as
//!
//! ```text
//! den: error: <message>: <cause>: <cause>
//! hint: <what to do about it>
//! ```
//!
//! and exit with [`Diagnose::exit_code`]: 125 when den itself failed, 126 when the container's
//! command cannot be invoked, 127 when it is not found, as docker does (or 1 where docker's
//! verb reports a failure so, a choice the binaries make per verb).

/// What a user-facing error knows beyond its message.
pub trait Diagnose {
    /// A sentence telling the user what to do, when there is something to do.
    fn hint(&self) -> Option<String> {
        None
    }
    /// The process exit status this error should produce.
    fn exit_code(&self) -> i32 {
        EXIT_DEN
    }
}

/// An error as the binaries report it: its message and causes, a hint and an exit code. A seam
/// carries an error of a layer above it that it cannot name (a build's base image, pulled by
/// `ops`) as a `Box<dyn Fault>`, which keeps all three.
pub trait Fault: std::error::Error + Diagnose + Send + Sync + 'static {}

impl<T: std::error::Error + Diagnose + Send + Sync + 'static> Fault for T {}

/// den itself failed (docker's 125).
pub const EXIT_DEN: i32 = 125;
/// The container's command was found but cannot be invoked (docker's 126).
pub const EXIT_CANNOT_INVOKE: i32 = 126;
/// The container's command was not found (docker's 127).
pub const EXIT_NOT_FOUND: i32 = 127;

/// A den tool run as a child failed and has already said why; exit with its status, say nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a den tool failed with status {0}")]
pub struct Reported(pub i32);

impl Diagnose for Reported {
    fn exit_code(&self) -> i32 {
        self.0
    }
}

/// The message of an error and all its causes, joined by ": " (anyhow's `{:#}` for std errors).
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        // Transparent wrappers repeat their inner message; say each thing once.
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer {0}")]
    struct Outer(&'static str, #[source] std::io::Error);

    #[test]
    fn chain_joins_causes_once() {
        let e = Outer("x", std::io::Error::other("inner"));
        assert_eq!(chain(&e), "outer x: inner");
    }

    #[test]
    fn reported_exits_with_the_child_status() {
        assert_eq!(Reported(3).exit_code(), 3);
        assert_eq!(Reported(3).hint(), None);
    }

    #[test]
    fn this_module_is_a_leaf() {
        // Every seam imports this module; were it to import one of them, it would close a loop.
        let src = include_str!("error.rs");
        let code = src.split("#[cfg(test)]").next().unwrap_or(src);
        assert!(
            !code.contains(concat!("crate", "::")),
            "error.rs imports den"
        );
        assert!(
            !code.contains(concat!("super", "::")),
            "error.rs imports den"
        );
    }
}
