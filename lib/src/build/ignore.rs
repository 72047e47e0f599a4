//! `.dockerignore`: which context paths a build leaves out, with docker's rules
//! (moby/patternmatcher).
//!
//! One pattern a line; `#` comments and blank lines skipped; `!` makes an exception; patterns
//! are cleaned (`./a/` is `a`, a leading `/` dropped) and matched with Go's `filepath.Match`
//! plus `**` for any number of directories; a pattern that matches a directory matches what is
//! inside it; the last matching pattern decides. `Dockerfile.dockerignore` next to the
//! Dockerfile is used before `.dockerignore` at the context root.
//!
//! Written by hand: the `ignore` crate implements gitignore, whose rules differ (unanchored
//! names match at any depth, `/` anchors), and no crate implements docker's.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
struct Pattern {
    parts: Vec<String>,
    exception: bool,
}

/// A parsed ignore file.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// The ignore file for a build: `<Dockerfile>.dockerignore` beside the Dockerfile, else
/// `.dockerignore` at the root of the context.
pub fn find(context: &Path, dockerfile: Option<&Path>) -> Option<PathBuf> {
    if let Some(df) = dockerfile
        && let Some(name) = df.file_name()
    {
        let p = df.with_file_name(format!("{}.dockerignore", name.to_string_lossy()));
        if p.is_file() {
            return Some(p);
        }
    }
    let p = context.join(".dockerignore");
    p.is_file().then_some(p)
}

fn clean(p: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.to_string()),
        }
    }
    out
}

impl Ignore {
    pub fn parse(text: &str) -> Ignore {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (exception, l) = match l.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, l),
            };
            let parts = clean(l);
            if parts.is_empty() {
                continue;
            }
            patterns.push(Pattern { parts, exception });
        }
        Ignore { patterns }
    }

    /// Whether `rel` (relative to the context root, `/`-separated) is left out.
    pub fn excluded(&self, rel: &str) -> bool {
        let path = clean(rel);
        let mut out = false;
        for p in &self.patterns {
            // A pattern matches the path or one of its parent directories.
            let hit = (1..=path.len()).any(|n| matches(&p.parts, &path[..n]));
            if hit {
                out = !p.exception;
            }
        }
        out
    }

    /// Whether any exception could bring back something inside an excluded directory.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// Whether an exception could bring back something below the directory `rel` (moby's
    /// walk skips an excluded directory otherwise).
    pub fn may_include_below(&self, rel: &str) -> bool {
        let dir = clean(rel);
        self.patterns.iter().filter(|p| p.exception).any(|p| {
            if p.parts.iter().any(|c| c == "**") {
                return true;
            }
            p.parts.len() > dir.len()
                && dir
                    .iter()
                    .zip(&p.parts)
                    .all(|(d, pat)| glob(pat.as_bytes(), d.as_bytes()))
        })
    }

    /// Whether the walk keeps `rel`: not excluded, or a directory an exception reaches into.
    pub fn keeps(&self, rel: &str, is_dir: bool) -> bool {
        !self.excluded(rel) || (is_dir && self.may_include_below(rel))
    }
}

/// Match path components against pattern components; `**` spans any number of components.
fn matches(pat: &[String], path: &[String]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| matches(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((p, prest)) => glob(first.as_bytes(), p.as_bytes()) && matches(rest, prest),
            None => false,
        },
    }
}

/// Go's `filepath.Match` for one component: `*`, `?`, `[...]` classes (with `^`/`!` and
/// ranges), `\` escapes.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|k| glob(rest, &s[k..])),
        Some((b'?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((b'[', rest)) => {
            let Some((&c, srest)) = s.split_first() else {
                return false;
            };
            let (negate, mut i) = match rest.first() {
                Some(b'^') | Some(b'!') => (true, 1),
                _ => (false, 0),
            };
            let mut hit = false;
            let mut first = true;
            while i < rest.len() && (rest[i] != b']' || first) {
                first = false;
                let mut lo = rest[i];
                if lo == b'\\' && i + 1 < rest.len() {
                    i += 1;
                    lo = rest[i];
                }
                let mut hi = lo;
                if i + 2 < rest.len() && rest[i + 1] == b'-' && rest[i + 2] != b']' {
                    hi = rest[i + 2];
                    i += 2;
                }
                if lo <= c && c <= hi {
                    hit = true;
                }
                i += 1;
            }
            if i >= rest.len() {
                return false; // unterminated class: no match, as Go reports ErrBadPattern
            }
            hit != negate && glob(&rest[i + 1..], srest)
        }
        Some((b'\\', rest)) if !rest.is_empty() => {
            s.first() == Some(&rest[0]) && glob(&rest[1..], &s[1..])
        }
        Some((&c, rest)) => s.first() == Some(&c) && glob(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_ignore_rules() {
        let i = Ignore::parse(
            "# comment\n\n*.md\n!README.md\n**/node_modules\n/build/\ntmp?\n[a-c].txt\n./docs/*/draft\n",
        );
        let cases = [
            ("notes.md", true),
            ("README.md", false),
            ("sub/notes.md", false), // *.md is anchored at the root
            ("node_modules", true),
            ("a/b/node_modules/x/y.js", true),
            ("build", true),
            ("build/out.o", true),
            ("tmp1", true),
            ("tmp12", false),
            ("b.txt", true),
            ("d.txt", false),
            ("docs/v1/draft", true),
            ("docs/draft", false),
            ("src/main.js", false),
        ];
        for (p, want) in cases {
            assert_eq!(i.excluded(p), want, "{p}");
        }
        assert!(i.has_exceptions());
        assert!(
            !i.keeps("node_modules", true),
            "no exception reaches into it"
        );
        let k = Ignore::parse("docs\n!docs/keep.md\n");
        assert!(
            k.keeps("docs", true)
                && !k.keeps("docs/other.md", false)
                && k.keeps("docs/keep.md", false)
        );
        let j = Ignore::parse("dir\n");
        assert!(!j.keeps("dir", true));
        assert!(j.keeps("other", false));
    }
}
