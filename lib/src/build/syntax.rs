//! The Dockerfile's syntax: lines into instruction nodes, as BuildKit's parser makes them.
//!
//! A node is an instruction's name, its `--flag=value` options, its arguments (the JSON array
//! form, or the raw rest of the line), its heredocs and its line number. What the arguments mean
//! is the planner's and the executor's business ([`super::plan`], [`super::instruction`]), with
//! [`super::expand`] for variables.
//!
//! Written by hand: the crates for Dockerfiles (`dockerfile-parser`, a pest grammar) predate
//! heredocs and the `# escape` directive and drop line numbers of continuation lines; BuildKit's
//! own parser is line-oriented and small, and this follows it: parser directives at the very
//! top, comments and blank lines skipped (also inside continuations), a line ending in the
//! escape character continues on the next, heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`) on RUN, COPY
//! and ADD read the lines up to their terminator.

use super::BuildError;

/// Instructions a Dockerfile may use.
pub const INSTRUCTIONS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// A heredoc: `<<NAME` on the instruction line, its body on the lines after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub body: String,
    /// Unquoted delimiter: variables in the body are expanded (by the shell, for RUN).
    pub expand: bool,
}

/// The arguments of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// `["a", "b"]`
    Json(Vec<String>),
    /// The rest of the line, continuations joined.
    Raw(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Upper case: `RUN`.
    pub name: String,
    /// `--name=value` options in order (`--name` alone has an empty value).
    pub flags: Vec<(String, String)>,
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    /// 1-based line of the instruction's first line.
    pub line: usize,
    /// The instruction as written, continuations joined (for messages and history).
    pub original: String,
}

impl Node {
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn flags_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.flags
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The raw argument text (the JSON form re-joined with spaces).
    pub fn text(&self) -> String {
        match &self.args {
            Args::Raw(s) => s.clone(),
            Args::Json(v) => v.join(" "),
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub escape: char,
    pub syntax: Option<String>,
    pub nodes: Vec<Node>,
}

fn err(file: &str, line: usize, message: impl Into<String>) -> BuildError {
    BuildError::Syntax {
        file: file.into(),
        line,
        message: message.into(),
    }
}

/// Parse `text`; `file` names it in errors (`Dockerfile`, `Dockerfile (stdin)`).
pub fn parse(file: &str, text: &str) -> Result<Dockerfile, BuildError> {
    let lines: Vec<&str> = text.lines().collect();
    let (escape, syntax, mut i) = directives(file, &lines)?;
    let mut nodes = Vec::new();
    while i < lines.len() {
        let t = lines[i].trim_start();
        if t.is_empty() || t.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i;
        let joined = join(&lines, &mut i, escape);
        let (name, rest) = match joined.split_once(char::is_whitespace) {
            Some((n, r)) => (n.to_string(), r.trim().to_string()),
            None => (joined.clone(), String::new()),
        };
        let upper = name.to_ascii_uppercase();
        if !INSTRUCTIONS.contains(&upper.as_str()) {
            let near = INSTRUCTIONS
                .iter()
                .min_by_key(|k| distance(k, &upper))
                .filter(|k| distance(k, &upper) <= 2);
            return Err(BuildError::UnknownInstruction {
                file: file.into(),
                line: start + 1,
                name,
                suggestion: near.map(|s| s.to_string()),
            });
        }
        let mut node = node(file, start + 1, &upper, &rest, &joined)?;
        // Heredocs read the lines after the instruction, in order.
        if matches!(upper.as_str(), "RUN" | "COPY" | "ADD") {
            for (hname, strip, expand) in heredoc_markers(&rest) {
                let body = heredoc_body(file, start + 1, &lines, &mut i, &hname, strip)?;
                node.heredocs.push(Heredoc {
                    name: hname,
                    body,
                    expand,
                });
            }
        }
        nodes.push(node);
    }
    Ok(Dockerfile {
        escape,
        syntax,
        nodes,
    })
}

/// Parser directives: `# key=value` lines at the very top, before anything else. Returns the
/// escape character, the `syntax` directive and the index of the first line after them.
fn directives(file: &str, lines: &[&str]) -> Result<(char, Option<String>, usize), BuildError> {
    let mut escape = '\\';
    let mut syntax = None;
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim();
        let Some(d) = l.strip_prefix('#') else { break };
        let Some((k, v)) = d.split_once('=') else {
            break;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k.contains(char::is_whitespace) {
            break;
        }
        match k.as_str() {
            "escape" => {
                escape = match v {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(err(
                            file,
                            i + 1,
                            format!("invalid escape token {v:?}: use \\ or `"),
                        ));
                    }
                }
            }
            "syntax" => syntax = Some(v.to_string()),
            _ => {}
        }
        i += 1;
    }
    Ok((escape, syntax, i))
}

/// The instruction starting at line `*i`, continuation lines joined; comment and empty lines
/// inside are dropped, as BuildKit does. Leaves `*i` on the line after it.
fn join(lines: &[&str], i: &mut usize, escape: char) -> String {
    let mut joined = String::new();
    let mut cur = lines[*i].trim_start().trim_end().to_string();
    loop {
        match cur.strip_suffix(escape) {
            Some(head) if *i + 1 < lines.len() => {
                joined.push_str(head);
                *i += 1;
                while *i < lines.len() {
                    let n = lines[*i].trim_start();
                    if n.starts_with('#') || n.trim().is_empty() {
                        *i += 1;
                        continue;
                    }
                    break;
                }
                if *i >= lines.len() {
                    break;
                }
                cur = lines[*i].trim_start().trim_end().to_string();
            }
            Some(head) => {
                joined.push_str(head);
                break;
            }
            None => {
                joined.push_str(&cur);
                break;
            }
        }
    }
    *i += 1;
    joined
}

/// A heredoc's body: the lines from `*i` up to its terminator (`strip`: leading tabs removed);
/// leaves `*i` after the terminator.
fn heredoc_body(
    file: &str,
    line: usize,
    lines: &[&str],
    i: &mut usize,
    name: &str,
    strip: bool,
) -> Result<String, BuildError> {
    let mut body = String::new();
    loop {
        let Some(l) = lines.get(*i) else {
            return Err(err(
                file,
                line,
                format!("heredoc <<{name} has no terminating line {name}"),
            ));
        };
        *i += 1;
        let l = if strip { l.trim_start_matches('\t') } else { l };
        if l == name {
            return Ok(body);
        }
        body.push_str(l);
        body.push('\n');
    }
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` markers in an instruction line, in order:
/// (name, strip leading tabs, expand).
fn heredoc_markers(rest: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i + 2 < b.len() + 1 && i + 1 < b.len() {
        if b[i] == b'<' && b[i + 1] == b'<' && (i + 2 < b.len()) && b[i + 2] != b'<' {
            let mut j = i + 2;
            let strip = b.get(j) == Some(&b'-');
            if strip {
                j += 1;
            }
            let quote = match b.get(j) {
                Some(&q) if q == b'"' || q == b'\'' => {
                    j += 1;
                    Some(q)
                }
                _ => None,
            };
            let s = j;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j > s {
                let name = rest[s..j].to_string();
                if let Some(q) = quote
                    && b.get(j) == Some(&q)
                {
                    j += 1;
                }
                out.push((name, strip, quote.is_none()));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Split off `--flag[=value]` words at the start (for the instructions that take flags), then
/// the JSON form or the raw text.
fn node(
    file: &str,
    line: usize,
    name: &str,
    rest: &str,
    original: &str,
) -> Result<Node, BuildError> {
    let mut flags = Vec::new();
    let mut rest = rest.trim_start();
    if matches!(name, "FROM" | "RUN" | "COPY" | "ADD" | "HEALTHCHECK") {
        while let Some(f) = rest.strip_prefix("--") {
            let end = f.find(char::is_whitespace).unwrap_or(f.len());
            let word = &f[..end];
            let (k, v) = word.split_once('=').unwrap_or((word, ""));
            flags.push((k.to_string(), v.to_string()));
            rest = f[end..].trim_start();
        }
    }
    let args = match rest.trim_start() {
        r if r.starts_with('[')
            && matches!(
                name,
                "RUN" | "CMD" | "ENTRYPOINT" | "SHELL" | "VOLUME" | "COPY" | "ADD"
            ) =>
        {
            // Not valid JSON: the shell form, as docker does.
            match serde_json::from_str::<Vec<String>>(r) {
                Ok(v) => Args::Json(v),
                Err(_) => Args::Raw(r.to_string()),
            }
        }
        r => Args::Raw(r.to_string()),
    };
    if let Args::Raw(r) = &args
        && r.is_empty()
        && !matches!(name, "RUN" | "CMD" | "ENTRYPOINT")
        && (name != "HEALTHCHECK" || flags.is_empty())
    {
        return Err(err(file, line, format!("{name} needs an argument")));
    }
    Ok(Node {
        name: name.into(),
        flags,
        args,
        heredocs: Vec::new(),
        line,
        original: original.trim().to_string(),
    })
}

/// Edit distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let v = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
            cur.push(v);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str) -> Dockerfile {
        parse("Dockerfile", t).unwrap()
    }

    #[test]
    fn lines_continuations_comments_and_flags() {
        let d = p(
            "# syntax=docker/dockerfile:1\nFROM --platform=linux/amd64 busybox AS base\n\n# c\nRUN echo a \\\n  # inside\n  && echo b\ncopy --chown=1:2 --from=x a b /d/\nCMD [\"sh\", \"-c\", \"x\"]\nCMD [bad json\n",
        );
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        let n = &d.nodes;
        assert_eq!(n[0].flag("platform"), Some("linux/amd64"));
        assert_eq!(n[0].args, Args::Raw("busybox AS base".into()));
        assert_eq!(n[1].line, 5);
        assert_eq!(n[1].args, Args::Raw("echo a && echo b".into()));
        assert_eq!(n[2].name, "COPY");
        assert_eq!(
            n[2].flags,
            [("chown".into(), "1:2".into()), ("from".into(), "x".into())]
        );
        assert_eq!(
            n[3].args,
            Args::Json(vec!["sh".into(), "-c".into(), "x".into()])
        );
        assert_eq!(n[4].args, Args::Raw("[bad json".into()));
    }

    #[test]
    fn escape_directive_and_heredocs() {
        let d = p(
            "# escape=`\nFROM x\nRUN a `\n b\nRUN <<EOF\necho $A\nEOF\nCOPY <<-\"one\" <<two /x/\n\tfirst\n\tone\nsecond\ntwo\n",
        );
        assert_eq!(d.escape, '`');
        assert_eq!(d.nodes[1].args, Args::Raw("a b".into()));
        let h = &d.nodes[2].heredocs;
        assert_eq!(
            (h[0].name.as_str(), h[0].body.as_str(), h[0].expand),
            ("EOF", "echo $A\n", true)
        );
        let h = &d.nodes[3].heredocs;
        assert_eq!((h[0].body.as_str(), h[0].expand), ("first\n", false));
        assert_eq!(h[1].body, "second\n");
    }

    #[test]
    fn errors_name_file_line_and_instruction() {
        let e = parse("Dockerfile", "FROM x\n\nRUNN true\n").unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile:3: unknown instruction \"RUNN\"");
        assert!(crate::error::Diagnose::hint(&e).unwrap().contains("RUN"));
        let e = parse("Dockerfile", "FROM x\nENV\n").unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile:2: ENV needs an argument");
        let e = parse("Dockerfile", "FROM x\nRUN <<EOF\nno end\n").unwrap_err();
        assert!(e.to_string().starts_with("Dockerfile:2: heredoc <<EOF"));
    }
}
