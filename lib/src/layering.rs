//! The layering test: dependencies between den's seams point one way.
//!
//! [`ORDER`] is the house's floor plan, top to bottom: a seam may use seams on lower rows, and
//! seams on its own row as long as no cycle forms; never one on a higher row. The test reads
//! every `.rs` file under `lib/src` (comments, string literals and test code left out), collects
//! the `crate::SEAM` paths each seam's files use (`use crate::{a, b}` groups and `super::`
//! paths that climb to the crate root included), and fails naming the file and the edge when a
//! seam reaches up, or when seams form a cycle. A new seam must be given a row here: the test
//! fails for a `pub mod` in `lib.rs` that the table does not place.
//!
//! It reads the source rather than asking the compiler because the compiler allows any import
//! within a crate; a lint that knows den's layers does not exist, and this file is the table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// den's seams, top layer first (see `lib.rs` and ARCHITECTURE.md). `error` and `digest` are
/// leaves; `sys` imports only `error`.
const ORDER: &[&[&str]] = &[
    &["cli", "render"],
    &["compose"],
    &["ops"],
    &["build"],
    &["archive", "registry", "runtime"],
    &["auth"],
    &["store"],
    &["net", "volume", "copy", "unpack", "userns"],
    &[
        "image", "security", "config", "fs", "cgroup", "cdi", "hooks",
    ],
    &["sys"],
    &["error", "digest"],
];

/// The row of `seam` in [`ORDER`] (0 is the top).
fn row(seam: &str) -> Option<usize> {
    ORDER.iter().position(|r| r.contains(&seam))
}

/// One use of another seam: the file and the path it wrote.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Use {
    file: String,
    line: usize,
}

type Graph = BTreeMap<String, BTreeMap<String, Vec<Use>>>;

/// `source` with comments and the insides of string and char literals blanked (newlines kept,
/// so line numbers stay right).
fn code_only(source: &str) -> String {
    let s: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < s.len() {
        let next = s.get(i + 1).copied();
        i = match (s[i], next) {
            ('/', Some('/')) => line_comment(&s, i, &mut out),
            ('/', Some('*')) => block_comment(&s, i, &mut out),
            ('r', Some('"' | '#')) if !ident_before(&s, i) => raw_string(&s, i, &mut out),
            ('"', _) => string(&s, i, &mut out),
            ('\'', _) => char_literal(&s, i, &mut out),
            (c, _) => {
                out.push(c);
                i + 1
            }
        };
    }
    out
}

fn blank(c: char) -> char {
    if c == '\n' { '\n' } else { ' ' }
}

fn ident_before(s: &[char], i: usize) -> bool {
    i > 0 && (s[i - 1].is_alphanumeric() || s[i - 1] == '_')
}

/// `// ...` up to the line's end; where the code goes on.
fn line_comment(s: &[char], mut i: usize, out: &mut String) -> usize {
    while i < s.len() && s[i] != '\n' {
        out.push(' ');
        i += 1;
    }
    i
}

/// `/* ... */`, nested as Rust nests them.
fn block_comment(s: &[char], mut i: usize, out: &mut String) -> usize {
    let mut depth = 0;
    while i < s.len() {
        if s[i] == '/' && s.get(i + 1) == Some(&'*') {
            depth += 1;
            out.push_str("  ");
            i += 2;
        } else if s[i] == '*' && s.get(i + 1) == Some(&'/') {
            depth -= 1;
            out.push_str("  ");
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            out.push(blank(s[i]));
            i += 1;
        }
    }
    i
}

/// `r"..."` or `r#"..."#` (an `r` that starts none is left as it is).
fn raw_string(s: &[char], i: usize, out: &mut String) -> usize {
    let mut j = i + 1;
    let mut hashes = 0;
    while s.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if s.get(j) != Some(&'"') {
        out.push(s[i]);
        return i + 1;
    }
    out.push('"');
    j += 1;
    while j < s.len() {
        if s[j] == '"' && (0..hashes).all(|k| s.get(j + 1 + k) == Some(&'#')) {
            j += 1 + hashes;
            break;
        }
        out.push(blank(s[j]));
        j += 1;
    }
    out.push('"');
    j
}

/// `"..."` with its escapes.
fn string(s: &[char], mut i: usize, out: &mut String) -> usize {
    out.push('"');
    i += 1;
    while i < s.len() && s[i] != '"' {
        if s[i] == '\\' {
            out.push(' ');
            i += 1;
        }
        if i < s.len() {
            out.push(blank(s[i]));
            i += 1;
        }
    }
    out.push('"');
    i + 1
}

/// A char literal (`'x'`, `'\n'`, `'\u{..}'`) is blanked; a lifetime (`'a`) is left as is.
fn char_literal(s: &[char], i: usize, out: &mut String) -> usize {
    let close = if s.get(i + 1) == Some(&'\\') {
        (i + 2..s.len().min(i + 12)).find(|&k| s[k] == '\'')
    } else {
        (s.get(i + 2) == Some(&'\'')).then_some(i + 2)
    };
    match close {
        Some(k) => {
            out.push_str(&" ".repeat(k - i + 1));
            k + 1
        }
        None => {
            out.push('\'');
            i + 1
        }
    }
}

/// `code` with every item marked `#[cfg(test)]` blanked: up to its `;`, or its closing brace.
/// Also returns the names of the `#[cfg(test)] mod NAME;` it declares (files of test code).
fn without_tests(code: &str) -> (String, Vec<String>) {
    let b: Vec<char> = code.chars().collect();
    let mut out: Vec<char> = b.clone();
    let mut test_files = Vec::new();
    let needle: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + needle.len() <= b.len() {
        if b[i..i + needle.len()] != needle[..] {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i + needle.len();
        let mut depth = 0usize;
        while j < b.len() {
            match b[j] {
                '{' => depth += 1,
                '}' if depth <= 1 => break,
                '}' => depth -= 1,
                ';' if depth == 0 => break,
                _ => {}
            }
            j += 1;
        }
        let item: String = b[start..j.min(b.len())].iter().collect();
        let words: Vec<&str> = item
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        if let Some(k) = words.iter().position(|w| *w == "mod")
            && b.get(j) == Some(&';')
            && let Some(name) = words.get(k + 1)
        {
            test_files.push(name.to_string());
        }
        for c in out.iter_mut().take((j + 1).min(b.len())).skip(start) {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = j + 1;
    }
    (out.into_iter().collect(), test_files)
}

/// The seams a file's code names, with the line of each: `crate::x`, the groups of
/// `crate::{x, y::z}`, and `super::` chains that climb from `depth` (the file's module depth:
/// 1 for `lib/src/x.rs` and `lib/src/x/mod.rs`, 2 for `lib/src/x/y.rs`) to the crate root.
fn seams_named(code: &str, depth: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let line_of = |pos: usize| code[..pos].matches('\n').count() + 1;
    let ident = |rest: &str| -> String {
        rest.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (pos, _) in code.match_indices("crate::") {
        let before = code[..pos].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = code[pos + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            for name in group_heads(group) {
                out.push((name, line_of(pos)));
            }
        } else {
            out.push((ident(rest), line_of(pos)));
        }
    }
    // super::super::x from a file `depth` modules down names the root's x.
    let supers = "super::".repeat(depth);
    for (pos, _) in code.match_indices(&supers) {
        let before = code[..pos].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[pos + supers.len()..];
        if rest.starts_with("super::") {
            continue;
        }
        if let Some(group) = rest.trim_start().strip_prefix('{') {
            for name in group_heads(group) {
                out.push((name, line_of(pos)));
            }
        } else {
            out.push((ident(rest), line_of(pos)));
        }
    }
    out
}

/// The first segment of each path in a `{a, b::c, d::{e, f}}` group (`group` starts after the
/// opening brace).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut at_start = true;
    let mut cur = String::new();
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                if !cur.is_empty() {
                    heads.push(std::mem::take(&mut cur));
                }
                at_start = true;
                continue;
            }
            _ => {}
        }
        if depth == 0 && at_start {
            if c.is_alphanumeric() || c == '_' {
                cur.push(c);
                continue;
            } else if !cur.is_empty() {
                heads.push(std::mem::take(&mut cur));
                at_start = false;
            }
        }
    }
    if !cur.is_empty() {
        heads.push(cur);
    }
    heads
}

/// What `lib.rs` re-exports at the root (`pub use error::{Error, Result}`): name to seam.
fn root_aliases(lib_rs: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in lib_rs.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((seam, names)) = rest.split_once("::") else {
            continue;
        };
        let names = names
            .trim_end_matches(';')
            .trim_matches(|c| c == '{' || c == '}');
        for n in names.split(',') {
            let n = n.trim();
            let alias = n.rsplit(" as ").next().unwrap_or(n).trim();
            out.insert(alias.to_string(), seam.to_string());
        }
    }
    out
}

/// The seams `lib.rs` declares (`pub mod x;`, `mod x;`), test modules left out.
fn declared_seams(lib_rs: &str) -> BTreeSet<String> {
    let (code, _) = without_tests(&code_only(lib_rs));
    code.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect()
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The seam graph of the library under `src`: seam -> seam it uses -> where.
fn graph(src: &Path) -> Graph {
    let lib_rs = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let aliases = root_aliases(&lib_rs);
    let mut files = Vec::new();
    rs_files(src, &mut files);
    // Files that hold only test code: `#[cfg(test)] mod tests;` and everything under them.
    let mut test_only: BTreeSet<PathBuf> = BTreeSet::new();
    let mut sources = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("source file");
        let (code, tests) = without_tests(&code_only(&text));
        let dir = if f
            .file_name()
            .is_some_and(|n| n == "mod.rs" || n == "lib.rs")
        {
            f.parent().expect("parent").to_path_buf()
        } else {
            f.with_extension("")
        };
        for t in tests {
            test_only.insert(dir.join(format!("{t}.rs")));
            test_only.insert(dir.join(&t));
        }
        sources.insert(f.clone(), code);
    }
    let mut g = Graph::new();
    for (f, code) in &sources {
        let rel = f.strip_prefix(src).expect("under src");
        if rel == Path::new("lib.rs")
            || test_only.iter().any(|t| f.starts_with(t))
            || rel == Path::new("layering.rs")
        {
            continue;
        }
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let seam = parts[0].trim_end_matches(".rs").to_string();
        let depth = if parts.last().is_some_and(|l| l == "mod.rs") {
            parts.len() - 1
        } else {
            parts.len()
        };
        for (name, line) in seams_named(code, depth) {
            let target = aliases.get(&name).cloned().unwrap_or(name);
            if target == seam || target.is_empty() {
                continue;
            }
            g.entry(seam.clone())
                .or_default()
                .entry(target)
                .or_default()
                .push(Use {
                    file: format!("lib/src/{}", rel.display()),
                    line,
                });
        }
    }
    g
}

/// Edges that point up [`ORDER`], as messages.
fn upward(g: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (from, tos) in g {
        let Some(rf) = row(from) else { continue };
        for (to, uses) in tos {
            let Some(rt) = row(to) else { continue };
            if rt < rf {
                for u in uses {
                    out.push(format!(
                        "{}:{}: {from} uses crate::{to}, which is above it in the layer order",
                        u.file, u.line
                    ));
                }
            }
        }
    }
    out
}

/// The cycles among seams (strongly connected components of more than one seam), each with
/// the edges inside it.
fn cycles(g: &Graph) -> Vec<String> {
    let nodes: Vec<&String> = g.keys().collect();
    let reach = |start: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![start.to_string()];
        while let Some(n) = todo.pop() {
            for next in g.get(&n).into_iter().flat_map(|t| t.keys()) {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for n in &nodes {
        if done.contains(*n) || !reaches[n].contains(*n) {
            continue;
        }
        let component: BTreeSet<String> = reaches[n]
            .iter()
            .filter(|m| reaches.get(m).is_some_and(|r| r.contains(*n)))
            .cloned()
            .collect();
        if component.len() < 2 {
            continue;
        }
        let mut edges = Vec::new();
        for a in &component {
            for (b, uses) in g.get(a).into_iter().flatten() {
                if component.contains(b) {
                    let u = &uses[0];
                    edges.push(format!("  {a} -> {b} ({}:{})", u.file, u.line));
                }
            }
        }
        out.push(format!(
            "seams in a cycle: {}\n{}",
            component.iter().cloned().collect::<Vec<_>>().join(", "),
            edges.join("\n")
        ));
        done.extend(component);
    }
    out
}

#[test]
fn seams_depend_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib_rs = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let mut problems = Vec::new();
    for seam in declared_seams(&lib_rs) {
        if row(&seam).is_none() {
            problems.push(format!(
                "lib/src/lib.rs: seam {seam} has no row in layering::ORDER; place it there"
            ));
        }
    }
    let g = graph(&src);
    problems.extend(upward(&g));
    problems.extend(cycles(&g));
    assert!(
        problems.is_empty(),
        "dependencies between seams must point down ({} problem(s)):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_reader_sees_what_the_compiler_sees() {
    let code = code_only(
        "use crate::a; // crate::b\n/* crate::c /* nested */ crate::d */ let s = \"crate::e\";\n\
         let r = r#\"crate::f\"#; let c = '\"'; use crate::{g, h::{i, j}, k as l};\n\
         fn x<'a>(v: &'a str) { super::super::m::n(); }",
    );
    let names: Vec<String> = seams_named(&code, 2).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a", "g", "h", "k", "m"]);
    let (code, files) = without_tests(
        "use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n#[cfg(test)]\nmod more;\n\
         #[cfg(test)]\npub fn helper() { crate::c::x() }\nuse crate::d;",
    );
    let names: Vec<String> = seams_named(&code, 1).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a", "d"]);
    assert_eq!(files, ["more"]);
}

#[test]
fn an_upward_edge_and_a_cycle_are_named() {
    let mut g = Graph::new();
    let at = |f: &str| {
        vec![Use {
            file: f.into(),
            line: 1,
        }]
    };
    g.entry("net".into())
        .or_default()
        .insert("ops".into(), at("lib/src/net/mod.rs"));
    g.entry("ops".into())
        .or_default()
        .insert("net".into(), at("lib/src/ops/run.rs"));
    let up = upward(&g);
    assert_eq!(
        up,
        ["lib/src/net/mod.rs:1: net uses crate::ops, which is above it in the layer order"]
    );
    let c = cycles(&g);
    assert_eq!(c.len(), 1);
    assert!(c[0].starts_with("seams in a cycle: net, ops\n"), "{}", c[0]);
}
