//! docker's `--format`: a hand-written subset of Go's `text/template`, rendered over JSON.
//!
//! `den ps`, `den images`, `den volume ls` and `den inspect` take docker's `--format`: a Go
//! template executed once per row or inspected object. den already has each row as a
//! [`serde_json::Value`], so this module parses the template and walks that value directly.
//! It is written by hand rather than taken from a crate: the Rust ports of Go templates bring
//! their own value model that every row would first be converted into, and what docker users
//! write is a small subset (field paths, a dozen functions, `if`/`range`/`with`) that fits here.
//!
//! # Supported
//! - Text and actions: `{{.}}`, `{{.A.B}}`, `{{$}}`, `{{$x.A}}`, `{{(pipeline).A}}`, literals
//!   (`"str"`, `` `raw` ``, numbers, `true`, `false`, `nil`), comments `{{/* … */}}`, and the
//!   trim markers `{{- ` and ` -}}`.
//! - Pipelines `{{.X | json}}`: the piped value becomes the last argument.
//! - `if`/`else if`/`else`, `with`/`else with`/`else`, `range` (arrays; objects by sorted key;
//!   non-negative integers) with `else`, and variables `{{$x := …}}`, `{{$x = …}}`,
//!   `{{range $i, $e := …}}`.
//! - Go's functions `and or not len index slice print printf println eq ne lt le gt ge`, and
//!   docker's `json split join title lower upper pad truncate`.
//! - As docker does, the two characters `\t` and `\n` in the format become a tab and a newline,
//!   and a leading `table` asks for [`render_table`]'s aligned columns with a header line.
//!
//! # Not supported
//! `define`/`template`/`block`, `break`/`continue`, methods (docker's `{{.Label "k"}}`),
//! `call`, `html`/`js`/`urlquery`, character constants, and printf verbs beyond
//! `%v %s %q %d %x %X %f %t %%` (with flags `-+0`, width and precision).
//!
//! # Where JSON differs from docker's typed Go values
//! A missing key prints `<no value>` and a `null` prints `<nil>`; a field of a `null` or missing
//! value is missing rather than an error, and string functions take a missing/`null` argument
//! as `""` (docker's typed zero values). Integral numbers print as integers. Objects print as Go
//! maps (`map[k:v]`), also where docker would print a struct (`{0.0.0.0 8080}`).

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// A parsed `--format` template.
#[derive(Debug)]
pub struct Template {
    /// The format as the user gave it, for error messages.
    source: String,
    table: bool,
    nodes: Vec<Node>,
}

/// A bad `--format`: the template as given, and a one-line Go-style message.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template does not parse (`template: :1: unexpected "}" in operand`).
    #[error("template parsing error in {template:?}: {message}")]
    Parse { template: String, message: String },
    /// Rendering failed for a value (`template: :1: executing at <.A.B>: …`).
    #[error("template execution error in {template:?}: {message}")]
    Exec { template: String, message: String },
}

impl Template {
    /// Parse a docker --format string. A leading "table " (or "table" alone) is recorded and
    /// stripped.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let (table, body) = match src.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_matches(' '))
            }
            _ => (false, src),
        };
        let body = body.replace(r"\t", "\t").replace(r"\n", "\n");
        let nodes = lex(&body)
            .and_then(|items| Parser::new(items).parse_template())
            .map_err(|message| TemplateError::Parse {
                template: src.to_string(),
                message,
            })?;
        Ok(Template {
            source: src.to_string(),
            table,
            nodes,
        })
    }

    /// True when the format began with "table".
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// Render for one value (a row / one inspected object). No trailing newline is added.
    pub fn render(&self, value: &serde_json::Value) -> Result<String, TemplateError> {
        self.execute(value, None)
    }

    /// Run the template with `value` as `.` and `$`; with `headers`, every field path instead
    /// yields its column header (docker renders its table header line this way).
    fn execute(
        &self,
        value: &Value,
        headers: Option<&[(&str, &str)]>,
    ) -> Result<String, TemplateError> {
        let mut exec = Exec {
            root: value,
            vars: Vec::new(),
            headers,
        };
        let mut out = String::new();
        exec.walk(&self.nodes, value, &mut out)
            .map_err(|message| TemplateError::Exec {
                template: self.source.clone(),
                message,
            })?;
        Ok(out)
    }
}

/// Go tabwriter's minimal cell width (padding included) in docker's `NewWriter(out, 10, 1, 3, ' ', 0)`.
const MIN_WIDTH: usize = 10;
/// Spaces docker's tabwriter adds after the widest cell of a column.
const PADDING: usize = 3;

/// docker's "table" output: a header line, then every row, columns aligned by [`align`].
///
/// The header is the template rendered with each field path (`{{.ID}}`, `{{.State.Status}}`)
/// replaced by its entry in `headers` (looked up by the dotted path, e.g. "ID" -> "CONTAINER ID"),
/// or else by its last field upper-cased; `.` itself is an object of all `headers`.
pub fn render_table(
    t: &Template,
    headers: &[(&str, &str)],
    rows: &[serde_json::Value],
) -> Result<String, TemplateError> {
    let header_dot: Map<String, Value> = headers
        .iter()
        .map(|(field, header)| (field.to_string(), Value::from(*header)))
        .collect();
    let mut text = t.execute(&Value::Object(header_dot), Some(headers))?;
    text.push('\n');
    for row in rows {
        text.push_str(&t.render(row)?);
        text.push('\n');
    }
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let lines: Vec<Vec<String>> = body
        .split('\n')
        .map(|line| line.split('\t').map(str::to_string).collect())
        .collect();
    Ok(align(&lines))
}

/// Align tab-separated cells the way docker's tables do (Go's tabwriter with minwidth 10 and
/// padding 3): every cell but a line's last is padded to its column's width, which is its widest
/// cell plus 3 spaces, at least 10. As in tabwriter, a column spans consecutive lines that have a
/// cell in it. Trailing spaces are dropped; every line ends with "\n".
pub fn align(lines: &[Vec<String>]) -> String {
    let mut widths = vec![Vec::new(); lines.len()];
    column_widths(lines, 0, lines.len(), &mut Vec::new(), &mut widths);
    let mut out = String::new();
    for (cells, widths) in lines.iter().zip(&widths) {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            line.push_str(cell);
            if let Some(&width) = widths.get(i) {
                let used = cell.chars().count();
                line.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
            }
        }
        out.push_str(line.trim_end_matches(' '));
        out.push('\n');
    }
    out
}

/// Go tabwriter's `format`: find the blocks of consecutive lines in `first..end` having a cell
/// in column `known.len()` (a cell that is not the line's last), size that column per block,
/// and recurse into the next column. `out[line]` gets the widths of the line's padded cells.
fn column_widths(
    lines: &[Vec<String>],
    first: usize,
    end: usize,
    known: &mut Vec<usize>,
    out: &mut [Vec<usize>],
) {
    let column = known.len();
    let has_cell = |line: usize| lines[line].len() > column + 1;
    let mut line = first;
    let mut done = first;
    while line < end {
        if !has_cell(line) {
            line += 1;
            continue;
        }
        for w in &mut out[done..line] {
            w.clone_from(known);
        }
        let start = line;
        let mut width = MIN_WIDTH;
        while line < end && has_cell(line) {
            width = width.max(lines[line][column].chars().count() + PADDING);
            line += 1;
        }
        known.push(width);
        column_widths(lines, start, line, known, out);
        known.pop();
        done = line;
    }
    for w in &mut out[done..end] {
        w.clone_from(known);
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax tree

#[derive(Debug)]
enum Node {
    Text(String),
    /// `{{pipeline}}`: printed, unless it declares or assigns a variable.
    Action {
        pipe: Pipe,
        at: At,
    },
    /// `if`, `with` or `range`; `otherwise` is the `{{else}}` part.
    Control {
        kind: Kind,
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
        at: At,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    If,
    With,
    Range,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::If => "if",
            Kind::With => "with",
            Kind::Range => "range",
        }
    }
}

/// Where an action is, for error messages.
#[derive(Debug, Clone)]
struct At {
    line: usize,
    /// The action's text between the delimiters.
    src: String,
}

impl At {
    fn parse_error(&self, message: impl std::fmt::Display) -> String {
        format!("template: :{}: {message}", self.line)
    }

    fn exec_error(&self, message: impl std::fmt::Display) -> String {
        format!(
            "template: :{}: executing at <{}>: {message}",
            self.line, self.src
        )
    }
}

#[derive(Debug)]
struct Pipe {
    /// Declared (or, with `assign`, assigned) variables, `$` included.
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Cmd>,
}

/// One stage of a pipeline: a function and its arguments, or a single operand.
#[derive(Debug)]
struct Cmd {
    args: Vec<Operand>,
}

/// A term followed by field names: `.A.B` is `Dot` with fields `[A, B]`.
#[derive(Debug)]
struct Operand {
    term: Term,
    fields: Vec<String>,
}

#[derive(Debug)]
enum Term {
    Dot,
    Var(String),
    Lit(Value),
    Func(String),
    Sub(Pipe),
}

const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

// ---------------------------------------------------------------------------------------------
// Lexer: text and the tokens of each action

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Field(String),
    Var(String),
    Ident(String),
    Lit(Value),
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Whitespace came before it (`.A.B` is one operand, `.A .B` two).
    spaced: bool,
}

#[derive(Debug)]
enum Item {
    Text(String),
    Action { toks: Vec<Token>, at: At },
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn lex(src: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    while pos < src.len() {
        let rest = &src[pos..];
        let open = rest.find("{{").unwrap_or(rest.len());
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let mut p = pos + open + 2;
        if open < rest.len() && src[p..].starts_with('-') && src[p + 1..].starts_with(is_space) {
            text = text.trim_end_matches(is_space);
            p += 1;
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        if open == rest.len() {
            break;
        }
        let line = 1 + src[..pos + open].matches('\n').count();
        let action = lex_action(src, p).map_err(|m| format!("template: :{line}: {m}"))?;
        if let Some(toks) = action.toks {
            let at = At {
                line,
                src: src[p..action.text_end].trim_matches(is_space).to_string(),
            };
            items.push(Item::Action { toks, at });
        }
        pos = action.end;
        trim_next = action.trim;
    }
    Ok(items)
}

/// One lexed action.
struct Lexed {
    /// `None` for a comment.
    toks: Option<Vec<Token>>,
    /// Where the action's text ends (before the closing delimiter).
    text_end: usize,
    /// Where the closing delimiter ends.
    end: usize,
    /// It closed with ` -}}`, trimming the text after it.
    trim: bool,
}

/// Lex one action starting after `{{` (and its trim marker).
fn lex_action(src: &str, start: usize) -> Result<Lexed, String> {
    let after_space = start + src[start..].len() - src[start..].trim_start_matches(is_space).len();
    if src[after_space..].starts_with("/*") {
        let close = src[after_space..].find("*/").ok_or("unclosed comment")?;
        let p = after_space + close + 2;
        return match close_delim(src, p) {
            Some((end, trim)) => Ok(Lexed {
                toks: None,
                text_end: p,
                end,
                trim,
            }),
            None => Err("comment ends before closing delimiter".to_string()),
        };
    }
    let mut toks = Vec::new();
    let mut p = start;
    loop {
        let ws = src[p..].len() - src[p..].trim_start_matches(is_space).len();
        let tok_start = p + ws;
        if let Some((end, trim)) = close_delim(src, p) {
            return Ok(Lexed {
                toks: Some(toks),
                text_end: p,
                end,
                trim,
            });
        }
        p = tok_start;
        let rest = &src[p..];
        let Some(c) = rest.chars().next() else {
            return Err("unclosed action".to_string());
        };
        let (tok, len) = match c {
            '|' => (Tok::Pipe, 1),
            '(' => (Tok::Open, 1),
            ')' => (Tok::Close, 1),
            ',' => (Tok::Comma, 1),
            '=' => (Tok::Assign, 1),
            ':' if rest.starts_with(":=") => (Tok::Declare, 2),
            '"' => lex_quoted(rest)?,
            '`' => match rest[1..].find('`') {
                Some(n) => (Tok::Lit(Value::from(&rest[1..1 + n])), n + 2),
                None => return Err("unterminated raw quoted string".to_string()),
            },
            '$' => {
                let n = 1 + ident_len(&rest[1..]);
                (Tok::Var(rest[..n].to_string()), n)
            }
            '.' => match ident_len(&rest[1..]) {
                0 => (Tok::Dot, 1),
                n => (Tok::Field(rest[1..1 + n].to_string()), 1 + n),
            },
            c if c.is_alphabetic() || c == '_' => {
                let n = ident_len(rest);
                let tok = match &rest[..n] {
                    "true" => Tok::Lit(Value::Bool(true)),
                    "false" => Tok::Lit(Value::Bool(false)),
                    "nil" => Tok::Lit(Value::Null),
                    word => Tok::Ident(word.to_string()),
                };
                (tok, n)
            }
            _ => match lex_number(rest)? {
                Some(found) => found,
                None => return Err(format!("unexpected \"{c}\" in operand")),
            },
        };
        toks.push(Token {
            tok,
            spaced: ws > 0,
        });
        p += len;
    }
}

/// At `p`, after optional whitespace: `}}`, or ` -}}` when whitespace came first. Returns where
/// the delimiter ends and whether it trims.
fn close_delim(src: &str, p: usize) -> Option<(usize, bool)> {
    let trimmed = src[p..].trim_start_matches(is_space);
    let at = src.len() - trimmed.len();
    if trimmed.starts_with("-}}") && at > p {
        Some((at + 3, true))
    } else if trimmed.starts_with("}}") {
        Some((at + 2, false))
    } else {
        None
    }
}

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(s.len(), |(i, _)| i)
}

fn lex_quoted(rest: &str) -> Result<(Tok, usize), String> {
    let mut out = String::new();
    let mut chars = rest.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Tok::Lit(Value::String(out)), i + 1)),
            '\\' => {
                let (_, e) = chars.next().ok_or("unterminated quoted string")?;
                let hex_digits = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => 0,
                };
                if hex_digits > 0 {
                    let hex: String = chars.by_ref().take(hex_digits).map(|(_, c)| c).collect();
                    let ch = u32::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == hex_digits)
                        .and_then(char::from_u32)
                        .ok_or("invalid syntax in quoted string")?;
                    out.push(ch);
                    continue;
                }
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'a' => '\x07',
                    'b' => '\x08',
                    'f' => '\x0c',
                    'v' => '\x0b',
                    '\\' | '"' | '\'' => e,
                    _ => return Err("invalid syntax in quoted string".to_string()),
                });
            }
            c => out.push(c),
        }
    }
    Err("unterminated quoted string".to_string())
}

/// A number at the start of `rest`: `[+-]digits[.digits][e[+-]digits]` or `0x…`.
fn lex_number(rest: &str) -> Result<Option<(Tok, usize)>, String> {
    let b = rest.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return Ok(None);
    }
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let hex = b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X'));
    if hex {
        i += 2;
        while b.get(i).is_some_and(u8::is_ascii_hexdigit) {
            i += 1;
        }
    } else {
        i = digits(i);
        if b.get(i) == Some(&b'.') {
            i = digits(i + 1);
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            i = digits(i);
        }
    }
    let text = &rest[..i];
    let bad = || format!("bad number syntax: \"{text}\"");
    if b.get(i)
        .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
    {
        return Err(bad());
    }
    let number = if hex {
        let (neg, digits) = match text.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, text.trim_start_matches('+')),
        };
        let n = i64::from_str_radix(&digits[2..], 16).map_err(|_| bad())?;
        Number::from(if neg { -n } else { n })
    } else if let Ok(n) = text.parse::<i64>() {
        Number::from(n)
    } else {
        text.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .ok_or_else(bad)?
    };
    Ok(Some((Tok::Lit(Value::Number(number)), i)))
}

// ---------------------------------------------------------------------------------------------
// Parser: items to nodes

/// Why [`Parser::parse_list`] stopped.
enum Stop {
    Eof,
    End(At),
    /// `{{else …}}`, with the tokens after `else`.
    Else(Vec<Token>, At),
}

struct Parser {
    items: std::vec::IntoIter<Item>,
    /// Variables in scope, for "undefined variable" errors.
    vars: Vec<String>,
}

impl Parser {
    fn new(items: Vec<Item>) -> Parser {
        Parser {
            items: items.into_iter(),
            vars: Vec::new(),
        }
    }

    fn parse_template(mut self) -> Result<Vec<Node>, String> {
        let (nodes, stop) = self.parse_list()?;
        match stop {
            Stop::Eof => Ok(nodes),
            Stop::End(at) => Err(at.parse_error("unexpected {{end}}")),
            Stop::Else(_, at) => Err(at.parse_error("unexpected {{else}}")),
        }
    }

    fn parse_list(&mut self) -> Result<(Vec<Node>, Stop), String> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let (toks, at) = match item {
                Item::Text(text) => {
                    nodes.push(Node::Text(text));
                    continue;
                }
                Item::Action { toks, at } => (toks, at),
            };
            let keyword = match toks.first().map(|t| &t.tok) {
                Some(Tok::Ident(word)) if KEYWORDS.contains(&word.as_str()) => word.as_str(),
                _ => "",
            };
            match keyword {
                "end" if toks.len() > 1 => {
                    return Err(at.parse_error("unexpected operand in {{end}}"));
                }
                "end" => return Ok((nodes, Stop::End(at))),
                "else" => return Ok((nodes, Stop::Else(toks[1..].to_vec(), at))),
                "if" => nodes.push(self.parse_control(Kind::If, &toks[1..], at)?),
                "with" => nodes.push(self.parse_control(Kind::With, &toks[1..], at)?),
                "range" => nodes.push(self.parse_control(Kind::Range, &toks[1..], at)?),
                "" => {
                    let pipe = self.parse_pipe(&toks, &at, "command", false)?;
                    nodes.push(Node::Action { pipe, at });
                }
                other => {
                    return Err(at.parse_error(format_args!("{{{{{other}}}}} is not supported")));
                }
            }
        }
        Ok((nodes, Stop::Eof))
    }

    /// `{{if|with|range pipeline}} body [{{else}} otherwise | {{else if|with …}} …] {{end}}`.
    fn parse_control(&mut self, kind: Kind, toks: &[Token], at: At) -> Result<Node, String> {
        let scope = self.vars.len();
        let pipe = self.parse_pipe(toks, &at, kind.name(), kind == Kind::Range)?;
        let (body, stop) = self.parse_list()?;
        let otherwise = match stop {
            Stop::End(_) => Vec::new(),
            Stop::Eof => {
                return Err(at.parse_error(format_args!("unexpected EOF in {}", kind.name())));
            }
            Stop::Else(rest, else_at) => match rest.first().map(|t| &t.tok) {
                None => match self.parse_list()? {
                    (nodes, Stop::End(_)) => nodes,
                    (_, Stop::Eof) => {
                        return Err(
                            at.parse_error(format_args!("unexpected EOF in {}", kind.name()))
                        );
                    }
                    (_, Stop::Else(_, at)) => {
                        return Err(at.parse_error("expected {{end}}; found {{else}}"));
                    }
                },
                Some(Tok::Ident(word)) if kind != Kind::Range && word == kind.name() => {
                    vec![self.parse_control(kind, &rest[1..], else_at)?]
                }
                Some(_) => return Err(else_at.parse_error("unexpected operand in {{else}}")),
            },
        };
        self.vars.truncate(scope);
        Ok(Node::Control {
            kind,
            pipe,
            body,
            otherwise,
            at,
        })
    }

    /// `[$x :=|= | $k, $v :=] cmd | cmd …` (two variables only in `range`).
    fn parse_pipe(
        &mut self,
        toks: &[Token],
        at: &At,
        what: &str,
        two_vars: bool,
    ) -> Result<Pipe, String> {
        use Tok::{Assign, Comma, Declare, Var};
        let var = |t: &Token| match &t.tok {
            Var(name) => Some(name.clone()),
            _ => None,
        };
        let (decl, assign, rest) = match toks {
            [a, op, rest @ ..] if matches!(op.tok, Declare | Assign) && var(a).is_some() => {
                (vec![var(a)], op.tok == Assign, rest)
            }
            [a, comma, b, op, rest @ ..]
                if comma.tok == Comma
                    && matches!(op.tok, Declare | Assign)
                    && var(a).is_some()
                    && var(b).is_some() =>
            {
                if !two_vars {
                    return Err(at.parse_error(format_args!("too many declarations in {what}")));
                }
                (vec![var(a), var(b)], op.tok == Assign, rest)
            }
            _ => (Vec::new(), false, toks),
        };
        let decl: Vec<String> = decl.into_iter().flatten().collect();
        if rest.is_empty() {
            return Err(at.parse_error(format_args!("missing value for {what}")));
        }
        let mut cursor = Cursor { toks: rest, i: 0 };
        let cmds = self.parse_cmds(&mut cursor, at)?;
        if let Some(t) = cursor.peek() {
            return Err(at.parse_error(format_args!("unexpected {} in {what}", describe(t))));
        }
        for name in &decl {
            if assign && !self.is_defined(name) {
                return Err(at.parse_error(format_args!("undefined variable \"{name}\"")));
            }
        }
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipe { decl, assign, cmds })
    }

    fn parse_cmds(&mut self, cursor: &mut Cursor, at: &At) -> Result<Vec<Cmd>, String> {
        let mut cmds = Vec::new();
        loop {
            let mut args = Vec::new();
            while let Some(t) = cursor.peek() {
                if matches!(t, Tok::Pipe | Tok::Close) {
                    break;
                }
                args.push(self.parse_operand(cursor, at)?);
            }
            match args.first() {
                None => return Err(at.parse_error("missing command")),
                Some(first) => {
                    let is_func = matches!(first.term, Term::Func(_));
                    if !cmds.is_empty() && !is_func {
                        return Err(at.parse_error(format_args!(
                            "non executable command in pipeline stage {}",
                            cmds.len() + 1
                        )));
                    }
                    if !is_func && args.len() > 1 {
                        return Err(at.parse_error("can't give argument to non-function"));
                    }
                    if matches!(first.term, Term::Lit(Value::Null)) {
                        return Err(at.parse_error("nil is not a command"));
                    }
                }
            }
            cmds.push(Cmd { args });
            if cursor.peek() != Some(&Tok::Pipe) {
                return Ok(cmds);
            }
            cursor.i += 1;
        }
    }

    fn parse_operand(&mut self, cursor: &mut Cursor, at: &At) -> Result<Operand, String> {
        let Some(token) = cursor.next() else {
            return Err(at.parse_error("missing operand"));
        };
        let mut fields = Vec::new();
        let term = match &token.tok {
            Tok::Dot => Term::Dot,
            Tok::Field(name) => {
                fields.push(name.clone());
                Term::Dot
            }
            Tok::Var(name) if self.is_defined(name) => Term::Var(name.clone()),
            Tok::Var(name) => {
                return Err(at.parse_error(format_args!("undefined variable \"{name}\"")));
            }
            Tok::Lit(value) => Term::Lit(value.clone()),
            Tok::Ident(name) if FUNCS.contains(&name.as_str()) => Term::Func(name.clone()),
            Tok::Ident(name) if KEYWORDS.contains(&name.as_str()) => {
                return Err(at.parse_error(format_args!("unexpected <{name}> in operand")));
            }
            Tok::Ident(name) => {
                return Err(at.parse_error(format_args!("function \"{name}\" not defined")));
            }
            Tok::Open => {
                let cmds = self.parse_cmds(cursor, at)?;
                if cursor.next().map(|t| &t.tok) != Some(&Tok::Close) {
                    return Err(at.parse_error("unclosed left paren"));
                }
                Term::Sub(Pipe {
                    decl: Vec::new(),
                    assign: false,
                    cmds,
                })
            }
            other => {
                return Err(
                    at.parse_error(format_args!("unexpected {} in operand", describe(other)))
                );
            }
        };
        while let Some(Token {
            tok: Tok::Field(name),
            spaced: false,
        }) = cursor.toks.get(cursor.i)
        {
            if matches!(term, Term::Lit(_) | Term::Func(_)) {
                return Err(at.parse_error(format_args!("unexpected .{name} after term")));
            }
            fields.push(name.clone());
            cursor.i += 1;
        }
        Ok(Operand { term, fields })
    }

    fn is_defined(&self, name: &str) -> bool {
        name == "$" || self.vars.iter().any(|v| v == name)
    }
}

struct Cursor<'a> {
    toks: &'a [Token],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<&'a Tok> {
        self.toks.get(self.i).map(|t| &t.tok)
    }

    fn next(&mut self) -> Option<&'a Token> {
        let t = self.toks.get(self.i);
        self.i += 1;
        t
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Dot => "\".\"".into(),
        Tok::Field(f) => format!("<.{f}>"),
        Tok::Var(v) | Tok::Ident(v) => format!("<{v}>"),
        Tok::Lit(v) => format!("<{v}>"),
        Tok::Pipe => "\"|\"".into(),
        Tok::Open => "\"(\"".into(),
        Tok::Close => "\")\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Execution

/// A value during execution: `None` is Go's "no value" (a missing map key), printed
/// `<no value>`; `Some(Value::Null)` is nil, printed `<nil>`.
type Val = Option<Value>;

struct Exec<'a> {
    root: &'a Value,
    vars: Vec<(String, Val)>,
    /// Set while rendering a table's header line.
    headers: Option<&'a [(&'a str, &'a str)]>,
}

impl Exec<'_> {
    fn walk(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), String> {
        for node in nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Action { pipe, at } => {
                    let value = self.eval_pipe(pipe, dot).map_err(|e| at.exec_error(e))?;
                    if pipe.decl.is_empty() {
                        out.push_str(&display(value.as_ref()));
                    } else {
                        self.bind(&pipe.decl[0], value, pipe.assign);
                    }
                }
                Node::Control {
                    kind,
                    pipe,
                    body,
                    otherwise,
                    at,
                } => {
                    let scope = self.vars.len();
                    let value = self.eval_pipe(pipe, dot).map_err(|e| at.exec_error(e))?;
                    match kind {
                        Kind::If | Kind::With => {
                            let truth = truthy(value.as_ref());
                            if let Some(name) = pipe.decl.first() {
                                self.bind(name, value.clone(), pipe.assign);
                            }
                            let inner = value.unwrap_or(Value::Null);
                            match (truth, kind) {
                                (true, Kind::With) => self.walk(body, &inner, out)?,
                                (true, _) => self.walk(body, dot, out)?,
                                (false, _) => self.walk(otherwise, dot, out)?,
                            }
                        }
                        Kind::Range => self.range(pipe, value, body, otherwise, dot, out, at)?,
                    }
                    self.vars.truncate(scope);
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn range(
        &mut self,
        pipe: &Pipe,
        value: Val,
        body: &[Node],
        otherwise: &[Node],
        dot: &Value,
        out: &mut String,
        at: &At,
    ) -> Result<(), String> {
        // (key, element) pairs: array index or object key (sorted, as Go sorts map keys).
        let items: Box<dyn Iterator<Item = (Value, Value)>> = match value {
            None | Some(Value::Null) => Box::new(std::iter::empty()),
            Some(Value::Array(a)) => {
                Box::new(a.into_iter().enumerate().map(|(i, e)| (Value::from(i), e)))
            }
            Some(Value::Object(m)) => {
                let mut items: Vec<_> = m.into_iter().collect();
                items.sort_by(|a, b| a.0.cmp(&b.0));
                Box::new(items.into_iter().map(|(k, e)| (Value::String(k), e)))
            }
            Some(Value::Number(n)) if n.as_u64().is_some() => {
                Box::new((0..n.as_u64().unwrap_or(0)).map(|i| (Value::from(i), Value::from(i))))
            }
            Some(other) => {
                return Err(at.exec_error(format_args!(
                    "range can't iterate over {}",
                    display(Some(&other))
                )));
            }
        };
        let mut items = items.peekable();
        if items.peek().is_none() {
            return self.walk(otherwise, dot, out);
        }
        for (key, elem) in items {
            let scope = self.vars.len();
            match pipe.decl.as_slice() {
                [e] => self.bind(e, Some(elem.clone()), pipe.assign),
                [k, e] => {
                    self.bind(k, Some(key), pipe.assign);
                    self.bind(e, Some(elem.clone()), pipe.assign);
                }
                _ => {}
            }
            self.walk(body, &elem, out)?;
            self.vars.truncate(scope);
        }
        Ok(())
    }

    fn bind(&mut self, name: &str, value: Val, assign: bool) {
        let existing = self.vars.iter_mut().rev().find(|(n, _)| n == name);
        match existing {
            Some((_, slot)) if assign => *slot = value,
            _ => self.vars.push((name.to_string(), value)),
        }
    }

    fn var(&self, name: &str) -> Result<Option<&Value>, String> {
        if name == "$" {
            return Ok(Some(self.root));
        }
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, value)) => Ok(value.as_ref()),
            None => Err(format!("undefined variable: {name}")),
        }
    }

    fn eval_pipe(&self, pipe: &Pipe, dot: &Value) -> Result<Val, String> {
        let mut piped: Option<Val> = None;
        for cmd in &pipe.cmds {
            piped = Some(self.eval_cmd(cmd, dot, piped)?);
        }
        Ok(piped.flatten())
    }

    fn eval_cmd(&self, cmd: &Cmd, dot: &Value, piped: Option<Val>) -> Result<Val, String> {
        match cmd.args.split_first() {
            Some((
                Operand {
                    term: Term::Func(name),
                    ..
                },
                args,
            )) => self.call(name, args, dot, piped),
            Some((operand, _)) => self.eval_operand(operand, dot),
            None => Err("empty command".to_string()),
        }
    }

    fn eval_operand(&self, op: &Operand, dot: &Value) -> Result<Val, String> {
        if let Some(headers) = self.headers
            && !op.fields.is_empty()
            && matches!(op.term, Term::Dot | Term::Var(_))
        {
            return Ok(Some(Value::String(header_name(headers, &op.fields))));
        }
        let owned;
        let base = match &op.term {
            Term::Dot => Some(dot),
            Term::Var(name) => self.var(name)?,
            Term::Lit(value) => return Ok(Some(value.clone())),
            Term::Func(name) => return self.call(name, &[], dot, None),
            Term::Sub(pipe) => {
                owned = self.eval_pipe(pipe, dot)?;
                owned.as_ref()
            }
        };
        Ok(walk_fields(base, &op.fields)?.cloned())
    }

    fn call(
        &self,
        name: &str,
        args: &[Operand],
        dot: &Value,
        piped: Option<Val>,
    ) -> Result<Val, String> {
        if name == "and" || name == "or" {
            // Short-circuit: the first argument that decides, else the last.
            let stop_on = name == "or";
            let mut last = None;
            for arg in args {
                let value = self.eval_operand(arg, dot)?;
                if truthy(value.as_ref()) == stop_on {
                    return Ok(value);
                }
                last = Some(value);
            }
            return match piped.or(last) {
                Some(value) => Ok(value),
                None => Err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                )),
            };
        }
        let mut values = args
            .iter()
            .map(|arg| self.eval_operand(arg, dot))
            .collect::<Result<Vec<_>, _>>()?;
        values.extend(piped);
        builtin(name, values)
    }
}

fn header_name(headers: &[(&str, &str)], fields: &[String]) -> String {
    let path = fields.join(".");
    match headers.iter().find(|(field, _)| *field == path) {
        Some((_, header)) => header.to_string(),
        None => fields.last().map(|f| f.to_uppercase()).unwrap_or_default(),
    }
}

fn walk_fields<'v>(
    mut value: Option<&'v Value>,
    fields: &[String],
) -> Result<Option<&'v Value>, String> {
    for field in fields {
        value = match value {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => map.get(field),
            Some(other) => {
                return Err(format!(
                    "can't evaluate field {field} in type {}",
                    type_name(other)
                ));
            }
        };
    }
    Ok(value)
}

/// Go's truth: false, 0, "", nil and empty arrays/objects are false.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "map",
    }
}

// ---------------------------------------------------------------------------------------------
// Functions

fn arity<const N: usize>(name: &str, args: Vec<Val>) -> Result<[Val; N], String> {
    let got = args.len();
    args.try_into()
        .map_err(|_| format!("wrong number of args for {name}: want {N} got {got}"))
}

fn builtin(name: &str, args: Vec<Val>) -> Result<Val, String> {
    let string = |s: String| Ok(Some(Value::String(s)));
    match name {
        "not" => {
            let [a] = arity(name, args)?;
            Ok(Some(Value::Bool(!truthy(a.as_ref()))))
        }
        "len" => {
            let [a] = arity(name, args)?;
            let n = match &a {
                None | Some(Value::Null) => 0,
                Some(Value::String(s)) => s.chars().count(),
                Some(Value::Array(v)) => v.len(),
                Some(Value::Object(m)) => m.len(),
                Some(other) => return Err(format!("len of type {}", type_name(other))),
            };
            Ok(Some(Value::from(n)))
        }
        "index" => {
            let mut args = args.into_iter();
            let item = args
                .next()
                .ok_or("wrong number of args for index: want at least 1 got 0")?;
            args.try_fold(item, index)
        }
        "slice" => slice(args),
        "print" => string(sprint(&args, false)),
        "println" => string(sprint(&args, true)),
        "printf" => match args.split_first() {
            Some((Some(Value::String(format)), rest)) => string(sprintf(format, rest)),
            Some((other, _)) => Err(format!(
                "wrong type for value; expected string; got {}",
                other.as_ref().map_or("nil", type_name)
            )),
            None => Err("wrong number of args for printf: want at least 1 got 0".to_string()),
        },
        "eq" => {
            let Some((first, rest)) = args.split_first().filter(|(_, rest)| !rest.is_empty())
            else {
                return Err("missing argument for comparison".to_string());
            };
            for other in rest {
                if equal(first.as_ref(), other.as_ref())? {
                    return Ok(Some(Value::Bool(true)));
                }
            }
            Ok(Some(Value::Bool(false)))
        }
        "ne" => {
            let [a, b] = arity(name, args)?;
            Ok(Some(Value::Bool(!equal(a.as_ref(), b.as_ref())?)))
        }
        "lt" | "le" | "gt" | "ge" => {
            let [a, b] = arity(name, args)?;
            let ord = order(a.as_ref(), b.as_ref())?;
            let truth = match name {
                "lt" => ord == Ordering::Less,
                "le" => ord != Ordering::Greater,
                "gt" => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            };
            Ok(Some(Value::Bool(truth)))
        }
        "json" => {
            let [a] = arity(name, args)?;
            string(serde_json::to_string(&a.unwrap_or(Value::Null)).map_err(|e| e.to_string())?)
        }
        "upper" => {
            let [a] = arity(name, args)?;
            string(str_arg(a)?.to_uppercase())
        }
        "lower" => {
            let [a] = arity(name, args)?;
            string(str_arg(a)?.to_lowercase())
        }
        "title" => {
            let [a] = arity(name, args)?;
            string(title(&str_arg(a)?))
        }
        "split" => {
            let [s, sep] = arity(name, args)?;
            let (s, sep) = (str_arg(s)?, str_arg(sep)?);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep.as_str()).map(Value::from).collect()
            };
            Ok(Some(Value::Array(parts)))
        }
        "join" => {
            let [list, sep] = arity(name, args)?;
            let items = match list {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items,
                Some(other) => {
                    return Err(format!(
                        "wrong type for value; expected array; got {}",
                        type_name(&other)
                    ));
                }
            };
            let items: Vec<String> = items.iter().map(|v| display(Some(v))).collect();
            string(items.join(&str_arg(sep)?))
        }
        "truncate" => {
            let [s, n] = arity(name, args)?;
            let n = usize::try_from(int_arg(n)?).unwrap_or(0);
            string(str_arg(s)?.chars().take(n).collect())
        }
        "pad" => {
            let [s, before, after] = arity(name, args)?;
            let s = str_arg(s)?;
            let (before, after) = (int_arg(before)?, int_arg(after)?);
            if s.is_empty() {
                return string(s);
            }
            let spaces = |n: i64| " ".repeat(usize::try_from(n).unwrap_or(0));
            string(format!("{}{s}{}", spaces(before), spaces(after)))
        }
        _ => Err(format!("function \"{name}\" not defined")),
    }
}

/// A string argument; missing and nil are "" (docker's typed zero value), numbers and bools
/// are formatted.
fn str_arg(value: Val) -> Result<String, String> {
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(display(Some(&v))),
        Some(other) => Err(format!(
            "wrong type for value; expected string; got {}",
            type_name(&other)
        )),
    }
}

fn int_arg(value: Val) -> Result<i64, String> {
    let n = match &value {
        Some(Value::Number(n)) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        _ => None,
    };
    n.ok_or_else(|| {
        format!(
            "wrong type for value; expected int; got {}",
            value.as_ref().map_or("nil", type_name)
        )
    })
}

fn index(item: Val, key: Val) -> Result<Val, String> {
    match (item, key) {
        (None | Some(Value::Null), _) => Ok(None),
        (Some(Value::Object(mut map)), Some(Value::String(k))) => Ok(map.remove(&k)),
        (Some(Value::Array(list)), key) => {
            let len = list.len();
            let i = int_arg(key)?;
            match usize::try_from(i).ok().filter(|&i| i < len) {
                Some(i) => Ok(list.into_iter().nth(i)),
                None => Err(format!("error calling index: index out of range: {i}")),
            }
        }
        (Some(Value::String(s)), key) => {
            let i = int_arg(key)?;
            match usize::try_from(i).ok().and_then(|i| s.as_bytes().get(i)) {
                Some(&byte) => Ok(Some(Value::from(byte))),
                None => Err(format!("error calling index: index out of range: {i}")),
            }
        }
        (Some(Value::Object(_)), key) => Err(format!(
            "error calling index: value has type {}; should be string",
            key.as_ref().map_or("nil", type_name)
        )),
        (Some(other), _) => Err(format!(
            "error calling index: can't index item of type {}",
            type_name(&other)
        )),
    }
}

/// Go's `slice x [i [j]]` on strings (by character) and arrays.
fn slice(args: Vec<Val>) -> Result<Val, String> {
    let mut args = args.into_iter();
    let item = args
        .next()
        .ok_or("wrong number of args for slice: want at least 1 got 0")?;
    let bounds = args.map(int_arg).collect::<Result<Vec<_>, _>>()?;
    let len = match &item {
        Some(Value::String(s)) => s.chars().count(),
        Some(Value::Array(a)) => a.len(),
        other => {
            return Err(format!(
                "error calling slice: can't slice item of type {}",
                other.as_ref().map_or("nil", type_name)
            ));
        }
    };
    let bound = |i: usize, default: usize| -> Result<usize, String> {
        match bounds.get(i) {
            None => Ok(default),
            Some(&b) => usize::try_from(b)
                .ok()
                .filter(|&b| b <= len)
                .ok_or_else(|| format!("error calling slice: index out of range: {b}")),
        }
    };
    if bounds.len() > 2 {
        return Err("error calling slice: too many slice indexes".to_string());
    }
    let (from, to) = (bound(0, 0)?, bound(1, len)?);
    if from > to {
        return Err(format!(
            "error calling slice: invalid slice index: {from} > {to}"
        ));
    }
    Ok(match item {
        Some(Value::String(s)) => Some(Value::String(
            s.chars().skip(from).take(to - from).collect(),
        )),
        Some(Value::Array(a)) => Some(Value::Array(a[from..to].to_vec())),
        _ => None,
    })
}

/// `eq`: missing and nil equal each other and nothing else; numbers compare by value.
fn equal(a: Option<&Value>, b: Option<&Value>) -> Result<bool, String> {
    let nil = |v: Option<&Value>| v.is_none_or(Value::is_null);
    match (a, b) {
        _ if nil(a) || nil(b) => Ok(nil(a) && nil(b)),
        (Some(Value::Number(x)), Some(Value::Number(y))) => Ok(num_cmp(x, y) == Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => Ok(x == y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => Ok(x == y),
        (Some(Value::Array(_) | Value::Object(_)), _)
        | (_, Some(Value::Array(_) | Value::Object(_))) => {
            Err("error calling eq: non-comparable type".to_string())
        }
        _ => Err("error calling eq: incompatible types for comparison".to_string()),
    }
}

fn order(a: Option<&Value>, b: Option<&Value>) -> Result<Ordering, String> {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => Ok(num_cmp(x, y)),
        (Some(Value::String(x)), Some(Value::String(y))) => Ok(x.cmp(y)),
        _ => Err("error calling comparison: invalid type for comparison".to_string()),
    }
}

fn num_cmp(x: &Number, y: &Number) -> Ordering {
    match (x.as_i64(), y.as_i64()) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => match (x.as_u64(), y.as_u64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        },
    }
}

/// docker's `title` (Go's `strings.Title`): upper-case the first letter of each word.
fn title(s: &str) -> String {
    let mut prev_letter = false;
    s.chars()
        .map(|c| {
            // Go's separators: ASCII other than letters, digits and '_', and white space.
            let word = if c.is_ascii() {
                c.is_ascii_alphanumeric() || c == '_'
            } else {
                !c.is_whitespace()
            };
            let out = if word && !prev_letter {
                c.to_uppercase().collect()
            } else {
                c.to_string()
            };
            prev_letter = word;
            out
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Formatting like Go's fmt

/// Go's `%v` as text/template prints it.
fn display(value: Option<&Value>) -> String {
    let mut out = String::new();
    match value {
        None => out.push_str("<no value>"),
        Some(v) => write_value(&mut out, v),
    }
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&format_number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push_str("map[");
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_value(out, v);
            }
            out.push(']');
        }
    }
}

fn format_number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e21 {
        return format!("{}", f as i128);
    }
    // Go's %v for other floats: shortest digits, exponent form outside 1e-4 <= |f| < 1e6.
    let sci = format!("{f:e}");
    match sci.split_once('e').map(|(m, e)| (m, e.parse::<i32>())) {
        Some((mantissa, Ok(exp))) if !(-4..6).contains(&exp) => {
            let sign = if exp < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", exp.abs())
        }
        _ => format!("{f}"),
    }
}

/// Go's `fmt.Sprint` (spaces only between two non-strings) or `fmt.Sprintln` (spaces always,
/// and a newline).
fn sprint(args: &[Val], line: bool) -> String {
    let mut out = String::new();
    let is_str = |v: &Val| matches!(v, Some(Value::String(_)));
    for (i, arg) in args.iter().enumerate() {
        if i > 0 && (line || (!is_str(arg) && !is_str(&args[i - 1]))) {
            out.push(' ');
        }
        write_value(&mut out, arg.as_ref().unwrap_or(&Value::Null));
    }
    if line {
        out.push('\n');
    }
    out
}

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Go's `fmt.Sprintf` for the common verbs, with Go's `%!verb(type=value)` for mismatches.
fn sprintf(format: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars>| {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
                chars.next();
            }
            n
        };
        spec.width = number(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(number(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next += 1;
        let arg = arg.as_ref().unwrap_or(&Value::Null);
        let (text, numeric) = format_verb(verb, &spec, arg);
        out.push_str(&pad(text, &spec, numeric));
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, arg) in args[next..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let arg = arg.as_ref().unwrap_or(&Value::Null);
            let _ = write!(out, "{}={}", type_name(arg), display(Some(arg)));
        }
        out.push(')');
    }
    out
}

/// One verb's text, and whether it is a number (for zero padding).
fn format_verb(verb: char, spec: &Spec, arg: &Value) -> (String, bool) {
    let int = match arg {
        Value::Number(n) => n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)),
        _ => None,
    };
    let signed = |s: String, negative: bool| {
        if spec.plus && !negative {
            format!("+{s}")
        } else {
            s
        }
    };
    let truncated = |s: &str| match spec.precision {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    };
    match (verb, arg) {
        ('v', Value::Number(_)) => (
            signed(display(Some(arg)), arg.as_f64().is_some_and(|f| f < 0.0)),
            true,
        ),
        ('v', _) => (truncated(&display(Some(arg))), false),
        ('s', Value::String(s)) => (truncated(s), false),
        ('s', Value::Array(_) | Value::Object(_)) => (display(Some(arg)), false),
        ('q', Value::String(s)) => (go_quote(s), false),
        ('t', Value::Bool(b)) => (b.to_string(), false),
        ('d', _) if int.is_some() => {
            let n = int.unwrap_or(0);
            (signed(n.to_string(), n < 0), true)
        }
        ('x', _) if int.is_some() => (format!("{:x}", int.unwrap_or(0)), true),
        ('X', _) if int.is_some() => (format!("{:X}", int.unwrap_or(0)), true),
        ('x', Value::String(s)) => (s.bytes().map(|b| format!("{b:02x}")).collect(), false),
        ('X', Value::String(s)) => (s.bytes().map(|b| format!("{b:02X}")).collect(), false),
        ('f' | 'F', Value::Number(n)) => {
            let f = n.as_f64().unwrap_or(0.0);
            (
                signed(format!("{f:.*}", spec.precision.unwrap_or(6)), f < 0.0),
                true,
            )
        }
        (_, Value::Null) => (format!("%!{verb}(<nil>)"), false),
        _ => (
            format!("%!{verb}({}={})", type_name(arg), display(Some(arg))),
            false,
        ),
    }
}

fn pad(text: String, spec: &Spec, numeric: bool) -> String {
    let len = text.chars().count();
    let Some(fill) = spec.width.map(|w| w.saturating_sub(len)).filter(|&f| f > 0) else {
        return text;
    };
    if spec.minus {
        format!("{text}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let sign_len = usize::from(text.starts_with(['-', '+']));
        let (sign, digits) = text.split_at(sign_len);
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{text}", " ".repeat(fill))
    }
}

/// Go's `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn render(format: &str, value: &Value) -> String {
        Template::parse(format)
            .unwrap_or_else(|e| panic!("{e}"))
            .render(value)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn parse_error(format: &str) -> String {
        match Template::parse(format) {
            Err(TemplateError::Parse { template, message }) => {
                assert_eq!(template, format);
                message
            }
            other => panic!("expected a parse error for {format:?}, got {other:?}"),
        }
    }

    fn exec_error(format: &str, value: &Value) -> String {
        match Template::parse(format).unwrap().render(value) {
            Err(TemplateError::Exec { template, message }) => {
                assert_eq!(template, format);
                message
            }
            other => panic!("expected an exec error for {format:?}, got {other:?}"),
        }
    }

    fn container() -> Value {
        json!({
            "ID": "0123456789abcdef",
            "Names": "web",
            "Image": "nginx:latest",
            "Status": "Up 2 minutes",
            "Size": 1234,
            "Ratio": 0.5,
            "Tags": ["a", "b", "c"],
            "Empty": [],
            "Nothing": null,
            "State": {"Status": "running", "Running": true, "Pid": 42, "Health": null},
            "Mounts": [
                {"Source": "/data", "Destination": "/var/lib/data"},
                {"Source": "/etc/x", "Destination": "/x"}
            ],
            "Config": {"Labels": {"z": "last", "a": "first", "m": "mid"}},
            "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}}
        })
    }

    #[test]
    fn text_and_fields() {
        let c = container();
        assert_eq!(render("plain text", &c), "plain text");
        assert_eq!(render("", &c), "");
        assert_eq!(render("{{.Names}}", &c), "web");
        assert_eq!(
            render("name={{.Names}} image={{ .Image }}", &c),
            "name=web image=nginx:latest"
        );
        assert_eq!(render("{{.State.Status}}", &c), "running");
        assert_eq!(render("{{.State.Pid}}", &c), "42");
        assert_eq!(render("{{.}}", &json!("x")), "x");
        assert_eq!(render("{{$.Names}}", &c), "web");
        assert_eq!(render("{{$}}", &json!(7)), "7");
    }

    #[test]
    fn missing_and_nil() {
        let c = container();
        assert_eq!(render("{{.Nope}}", &c), "<no value>");
        assert_eq!(render("{{.Nope.Deeper}}", &c), "<no value>");
        assert_eq!(render("{{.Nothing}}", &c), "<nil>");
        assert_eq!(render("{{.State.Health}}", &c), "<nil>");
        assert_eq!(render("{{.State.Health.Status}}", &c), "<no value>");
        assert!(
            exec_error("{{.Names.First}}", &c)
                .contains("can't evaluate field First in type string")
        );
    }

    #[test]
    fn value_printing() {
        let v = json!({"s": "x", "i": -3, "u": 18446744073709551615u64, "f": 1.5, "whole": 3.0,
            "big": 1234567.5, "tiny": 0.00001, "t": true, "a": [1, "b", null, [2]],
            "m": {"b": 2, "a": {"c": [1]}}, "e": {}});
        assert_eq!(
            render("{{.s}} {{.i}} {{.u}} {{.f}} {{.whole}} {{.t}}", &v),
            "x -3 18446744073709551615 1.5 3 true"
        );
        assert_eq!(render("{{.big}} {{.tiny}}", &v), "1.2345675e+06 1e-05");
        assert_eq!(render("{{.a}}", &v), "[1 b <nil> [2]]");
        assert_eq!(render("{{.m}}", &v), "map[a:map[c:[1]] b:2]");
        assert_eq!(render("{{.e}}", &v), "map[]");
    }

    #[test]
    fn escapes_and_table_prefix() {
        let c = container();
        let t = Template::parse(r"{{.ID}}\t{{.Image}}\n").unwrap();
        assert!(!t.is_table());
        assert_eq!(t.render(&c).unwrap(), "0123456789abcdef\tnginx:latest\n");
        let t = Template::parse(r"table {{.ID}}\t{{.Image}}").unwrap();
        assert!(t.is_table());
        assert_eq!(t.render(&c).unwrap(), "0123456789abcdef\tnginx:latest");
        let t = Template::parse("table").unwrap();
        assert!(t.is_table());
        assert_eq!(t.render(&c).unwrap(), "");
        assert!(!Template::parse("tablefoo").unwrap().is_table());
        assert!(!Template::parse("{{.Names}} table").unwrap().is_table());
    }

    #[test]
    fn trim_markers_and_comments() {
        let c = container();
        assert_eq!(render("a  {{- .Names -}}  \n b", &c), "awebb");
        assert_eq!(render("a {{- .Names}} b", &c), "aweb b");
        assert_eq!(render("a {{.Names -}} b", &c), "a webb");
        assert_eq!(render("{{-3}}", &c), "-3");
        assert_eq!(render("x{{/* a comment */}}y", &c), "xy");
        assert_eq!(render("x {{- /* a comment */ -}} y", &c), "xy");
        assert!(parse_error("{{/* a */ .X}}").contains("comment ends before closing delimiter"));
    }

    #[test]
    fn literals() {
        let c = container();
        assert_eq!(render(r#"{{"a\"b\u00e9\\"}}"#, &c), "a\"bé\\");
        assert_eq!(render("{{`raw\\x`}}", &c), "raw\\x");
        // Like docker, `\t` and `\n` become tab and newline everywhere in the format.
        assert_eq!(render("{{`raw\\n`}}", &c), "raw\n");
        assert_eq!(
            render("{{1.5}} {{0x1f}} {{true}} {{false}}", &c),
            "1.5 31 true false"
        );
        assert_eq!(render(r#"{{"}}"}}"#, &c), "}}");
    }

    #[test]
    fn json_function() {
        let c = container();
        assert_eq!(render("{{json .Tags}}", &c), r#"["a","b","c"]"#);
        assert_eq!(render("{{json .State.Status}}", &c), r#""running""#);
        assert_eq!(render("{{json .Nope}}", &c), "null");
        assert_eq!(
            render("{{.Config.Labels | json}}", &c),
            r#"{"a":"first","m":"mid","z":"last"}"#
        );
        let v = json!({"b": 1, "a": "<&>"});
        assert_eq!(render("{{json .}}", &v), r#"{"a":"<&>","b":1}"#);
    }

    #[test]
    fn string_functions() {
        let c = container();
        assert_eq!(render("{{upper .Names}} {{.Names | upper}}", &c), "WEB WEB");
        assert_eq!(render(r#"{{lower "MiXeD"}}"#, &c), "mixed");
        assert_eq!(
            render(r#"{{title "hello big_world foo-bar"}}"#, &c),
            "Hello Big_world Foo-Bar"
        );
        assert_eq!(render(r#"{{join .Tags ", "}}"#, &c), "a, b, c");
        assert_eq!(render(r#"{{join .Nope ","}}"#, &c), "");
        assert_eq!(render(r#"{{split "a,b,c" ","}}"#, &c), "[a b c]");
        assert_eq!(render(r#"{{index (split .Image ":") 1}}"#, &c), "latest");
        assert_eq!(render(r#"{{len (split "abc" "")}}"#, &c), "3");
        assert_eq!(render("{{truncate .ID 12}}", &c), "0123456789ab");
        assert_eq!(render("{{truncate .Names 12}}", &c), "web");
        assert_eq!(
            render("[{{pad .Names 1 2}}][{{pad .Nope 1 1}}]", &c),
            "[ web  ][]"
        );
        assert_eq!(render("{{upper .Size}} {{upper .Nope}}.", &c), "1234 .");
        assert!(exec_error("{{upper .Tags}}", &c).contains("expected string; got array"));
    }

    #[test]
    fn len_index_slice() {
        let c = container();
        assert_eq!(
            render(
                "{{len .Tags}} {{len .Names}} {{len .Config.Labels}} {{len .Nope}}",
                &c
            ),
            "3 3 3 0"
        );
        assert_eq!(render("{{index .Tags 0}} {{index .Tags 2}}", &c), "a c");
        assert_eq!(render(r#"{{index .Config.Labels "a"}}"#, &c), "first");
        assert_eq!(
            render(r#"{{index .Config.Labels "missing"}}"#, &c),
            "<no value>"
        );
        assert_eq!(render(r#"{{index .Nope "x"}}"#, &c), "<no value>");
        assert_eq!(
            render(r#"{{index .NetworkSettings.Ports "80/tcp"}}"#, &c),
            "[map[HostIp:0.0.0.0 HostPort:8080]]"
        );
        assert_eq!(
            render(
                r#"{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}"#,
                &c
            ),
            "8080"
        );
        assert_eq!(
            render(
                r#"{{index .NetworkSettings.Ports "80/tcp" 0 "HostPort"}}"#,
                &c
            ),
            "8080"
        );
        assert_eq!(
            render("{{slice .Tags 1}} {{slice .Names 0 2}}", &c),
            "[b c] we"
        );
        assert!(exec_error("{{index .Tags 3}}", &c).contains("index out of range: 3"));
        assert!(exec_error("{{len .Size}}", &c).contains("len of type int"));
    }

    #[test]
    fn printf_print_println() {
        let c = container();
        assert_eq!(
            render(r#"{{printf "%s has %d tags" .Names (len .Tags)}}"#, &c),
            "web has 3 tags"
        );
        assert_eq!(
            render(r#"{{printf "[%-6s][%6s][%.2s]" .Names .Names .Names}}"#, &c),
            "[web   ][   web][we]"
        );
        assert_eq!(
            render(r#"{{printf "%v %v %v" .Tags .State.Running .Ratio}}"#, &c),
            "[a b c] true 0.5"
        );
        assert_eq!(
            render(
                r#"{{printf "%q %05d %+d %x %.1f %t %%" .Names 42 7 255 .Ratio true}}"#,
                &c
            ),
            r#""web" 00042 +7 ff 0.5 true %"#
        );
        assert_eq!(
            render(r#"{{printf "%d %s" .Names}}"#, &c),
            "%!d(string=web) %!s(MISSING)"
        );
        assert_eq!(
            render(r#"{{printf "%s" .Names 1}}"#, &c),
            "web%!(EXTRA int=1)"
        );
        assert_eq!(render(r#"{{printf "%s" .Nope}}"#, &c), "%!s(<nil>)");
        assert_eq!(render(r#"{{.Names | printf "<%s>"}}"#, &c), "<web>");
        assert_eq!(render(r#"{{print "a" "b" 1 2 "c"}}"#, &c), "ab1 2c");
        assert_eq!(render(r#"{{println "a" 1 .Names}}"#, &c), "a 1 web\n");
    }

    #[test]
    fn pipelines() {
        let c = container();
        assert_eq!(render("{{.Names | upper | lower}}", &c), "web");
        assert_eq!(render("{{.Tags | len}}", &c), "3");
        assert_eq!(render(r#"{{"," | split "x,y" }}"#, &c), "[x y]");
        assert_eq!(render("{{(.State).Status}}", &c), "running");
        assert!(
            parse_error("{{.Names | .Image}}")
                .contains("non executable command in pipeline stage 2")
        );
    }

    #[test]
    fn range() {
        let c = container();
        assert_eq!(
            render("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}", &c),
            "/data:/var/lib/data /etc/x:/x "
        );
        assert_eq!(
            render(
                "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
                &c
            ),
            "a=first;m=mid;z=last;"
        );
        assert_eq!(
            render("{{range .Config.Labels}}{{.}},{{end}}", &c),
            "first,mid,last,"
        );
        assert_eq!(
            render("{{range $i, $e := .Tags}}{{$i}}:{{$e}} {{end}}", &c),
            "0:a 1:b 2:c "
        );
        assert_eq!(render("{{range $e := .Tags}}{{$e}}{{end}}", &c), "abc");
        assert_eq!(render("{{range .Empty}}x{{else}}none{{end}}", &c), "none");
        assert_eq!(render("{{range .Nope}}x{{else}}none{{end}}", &c), "none");
        assert_eq!(render("{{range .Tags}}{{$.Names}}{{end}}", &c), "webwebweb");
        assert_eq!(render("{{range 3}}{{.}}{{end}}", &c), "012");
        assert_eq!(
            render(
                "{{range .Tags}}{{if eq . \"b\"}}B{{else}}{{.}}{{end}}{{end}}",
                &c
            ),
            "aBc"
        );
        assert!(
            exec_error("{{range .Names}}x{{end}}", &c).contains("range can't iterate over web")
        );
    }

    #[test]
    fn conditionals() {
        let c = container();
        assert_eq!(
            render("{{if .State.Running}}up{{else}}down{{end}}", &c),
            "up"
        );
        assert_eq!(render("{{if .Nope}}up{{else}}down{{end}}", &c), "down");
        assert_eq!(
            render(
                r#"{{if eq .Names "db"}}db{{else if eq .Names "web"}}web{{else}}?{{end}}"#,
                &c
            ),
            "web"
        );
        assert_eq!(
            render(
                r#"{{if eq .Names "x"}}x{{else if .Nope}}n{{else}}other{{end}}"#,
                &c
            ),
            "other"
        );
        for (value, truth) in [
            (json!(false), false),
            (json!(0), false),
            (json!(0.0), false),
            (json!(""), false),
            (json!(null), false),
            (json!([]), false),
            (json!({}), false),
            (json!(true), true),
            (json!(-1), true),
            (json!("0"), true),
            (json!([0]), true),
            (json!({"a": 0}), true),
        ] {
            let expected = if truth { "T" } else { "F" };
            assert_eq!(
                render("{{if .}}T{{else}}F{{end}}", &value),
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn comparisons_and_logic() {
        let c = container();
        assert_eq!(
            render(
                r#"{{eq .Names "web"}} {{ne .Names "web"}} {{eq .Size 1234}} {{eq .Size 1234.0}}"#,
                &c
            ),
            "true false true true"
        );
        assert_eq!(render(r#"{{eq .Names "a" "b" "web"}}"#, &c), "true");
        assert_eq!(
            render(
                r#"{{eq .Nope "x"}} {{eq .Nope .Nothing}} {{eq .Nope nil}}"#,
                &c
            ),
            "false true true"
        );
        assert_eq!(
            render(
                "{{gt .Size 1000}} {{lt .Size 1000}} {{le 2 2}} {{ge 1 2}}",
                &c
            ),
            "true false true false"
        );
        assert_eq!(render(r#"{{lt "a" "b"}}"#, &c), "true");
        assert_eq!(
            render("{{not .State.Running}} {{not .Empty}}", &c),
            "false true"
        );
        assert_eq!(
            render(
                "{{and .Names .Size}} {{and .Names .Empty}} {{or .Empty .Names}} {{or .Empty 0}}",
                &c
            ),
            "1234 [] web 0"
        );
        // Short-circuit: the failing index is never evaluated.
        assert_eq!(render("{{and .Empty (index .Tags 9)}}", &c), "[]");
        assert_eq!(
            render(
                r#"{{if and .State.Running (eq .Names "web")}}yes{{end}}"#,
                &c
            ),
            "yes"
        );
        assert!(exec_error(r#"{{eq .Names 1}}"#, &c).contains("incompatible types for comparison"));
        assert!(exec_error(r#"{{lt .Tags 1}}"#, &c).contains("invalid type for comparison"));
        assert!(exec_error(r#"{{eq .Names}}"#, &c).contains("missing argument for comparison"));
    }

    #[test]
    fn with_and_variables() {
        let c = container();
        assert_eq!(
            render("{{with .State}}{{.Status}}/{{.Pid}}{{end}}", &c),
            "running/42"
        );
        assert_eq!(render("{{with .Nope}}x{{else}}none{{end}}", &c), "none");
        assert_eq!(
            render("{{with .Nope}}x{{else with .Names}}{{.}}{{end}}", &c),
            "web"
        );
        assert_eq!(
            render("{{with $s := .State.Status}}{{$s}}{{end}}", &c),
            "running"
        );
        assert_eq!(
            render("{{$n := .Names}}{{range .Tags}}{{$n}}{{.}} {{end}}", &c),
            "weba webb webc "
        );
        assert_eq!(render("{{$n := 1}}{{$n = 2}}{{$n}}", &c), "2");
        assert_eq!(
            render("{{$x := 1}}{{if true}}{{$x = 5}}{{end}}{{$x}}", &c),
            "5"
        );
        assert!(
            parse_error("{{if true}}{{$y := 1}}{{end}}{{$y}}")
                .contains("undefined variable \"$y\"")
        );
        assert!(parse_error("{{$z = 1}}").contains("undefined variable \"$z\""));
        assert!(parse_error("{{with $a, $b := .X}}{{end}}").contains("too many declarations"));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            parse_error("{{.ID}"),
            "template: :1: unexpected \"}\" in operand"
        );
        assert_eq!(parse_error("{{.ID"), "template: :1: unclosed action");
        assert_eq!(
            parse_error("a\n{{.ID}}{{end}}"),
            "template: :2: unexpected {{end}}"
        );
        assert_eq!(parse_error("{{else}}"), "template: :1: unexpected {{else}}");
        assert!(parse_error("{{if .X}}a").contains("unexpected EOF"));
        assert!(parse_error("{{range .X}}a{{else}}b").contains("unexpected EOF"));
        assert!(
            parse_error("{{if .X}}a{{else}}b{{else}}c{{end}}")
                .contains("expected {{end}}; found {{else}}")
        );
        assert_eq!(
            parse_error("{{nope .X}}"),
            "template: :1: function \"nope\" not defined"
        );
        assert!(parse_error("{{}}").contains("missing value for command"));
        assert!(parse_error("{{if}}{{end}}").contains("missing value for if"));
        assert!(parse_error("{{.X .Y}}").contains("can't give argument to non-function"));
        assert!(parse_error("{{(.X}}").contains("unclosed left paren"));
        assert!(parse_error("{{.X)}}").contains("unexpected \")\""));
        assert!(parse_error("{{\"abc}}").contains("unterminated quoted string"));
        assert!(parse_error("{{12ab}}").contains("bad number syntax"));
        assert!(parse_error("{{nil}}").contains("nil is not a command"));
        assert!(parse_error("{{template \"x\"}}").contains("not supported"));
        assert!(parse_error("{{.X | }}").contains("missing command"));
        assert!(parse_error("{{end .X}}").contains("unexpected operand"));
        let message = Template::parse("{{.ID}").unwrap_err().to_string();
        assert_eq!(
            message,
            r#"template parsing error in "{{.ID}": template: :1: unexpected "}" in operand"#
        );
    }

    #[test]
    fn exec_errors() {
        let c = container();
        assert_eq!(
            exec_error("{{.Names.X}}", &c),
            "template: :1: executing at <.Names.X>: can't evaluate field X in type string"
        );
        assert!(
            exec_error("{{upper 1 2}}", &c)
                .contains("wrong number of args for upper: want 1 got 2")
        );
        assert!(exec_error(r#"{{truncate .Names "x"}}"#, &c).contains("expected int; got string"));
        assert!(exec_error("{{printf 1}}", &c).contains("expected string; got int"));
        let message = Template::parse("{{.Names.X}}")
            .unwrap()
            .render(&c)
            .unwrap_err()
            .to_string();
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn align_like_tabwriter() {
        let lines = |rows: &[&[&str]]| -> Vec<Vec<String>> {
            rows.iter()
                .map(|r| r.iter().map(|c| c.to_string()).collect())
                .collect()
        };
        // Columns: widest cell + 3, at least 10; the last cell is never padded.
        assert_eq!(
            align(&lines(&[
                &["CONTAINER ID", "IMAGE", "NAMES"],
                &["abc", "nginx:latest", "web"]
            ])),
            "CONTAINER ID   IMAGE          NAMES\nabc            nginx:latest   web\n"
        );
        // Trailing spaces dropped when the last cell is empty.
        assert_eq!(
            align(&lines(&[&["a", ""], &["b", "x"]])),
            "a\nb         x\n"
        );
        // A line without that column ends the column's block (Go tabwriter semantics).
        assert_eq!(
            align(&lines(&[&["aaaaaaaaaaaa", "1"], &["single"], &["b", "2"]])),
            "aaaaaaaaaaaa   1\nsingle\nb         2\n"
        );
        // Widths count characters, not bytes.
        assert_eq!(
            align(&lines(&[&["héllo", "x"], &["h", "y"]])),
            "héllo     x\nh         y\n"
        );
        assert_eq!(align(&[]), "");
    }

    #[test]
    fn table() {
        let rows = vec![
            json!({"ID": "0123456789ab", "Image": "nginx:latest", "Status": "Up 2 minutes", "Names": "web"}),
            json!({"ID": "ba9876543210", "Image": "redis", "Status": "Exited (0) 1 hour ago", "Names": "cache"}),
        ];
        let headers = [
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Status", "STATUS"),
            ("Names", "NAMES"),
        ];
        let t = Template::parse(r"table {{.ID}}\t{{.Image}}\t{{.Status}}\t{{.Names}}").unwrap();
        assert_eq!(
            render_table(&t, &headers, &rows).unwrap(),
            "CONTAINER ID   IMAGE          STATUS                  NAMES\n\
             0123456789ab   nginx:latest   Up 2 minutes            web\n\
             ba9876543210   redis          Exited (0) 1 hour ago   cache\n"
        );
        // Short columns are still 10 wide, as in `docker ps` with no containers.
        let t = Template::parse(r"table {{.Image}}\t{{.Names}}").unwrap();
        assert_eq!(
            render_table(&t, &headers, &[]).unwrap(),
            "IMAGE     NAMES\n"
        );
        // Unknown fields get their upper-cased name; functions apply to the header too.
        let t = Template::parse(r"table {{.Foo}}\t{{.Names | lower}}\t{{.State.Status}}").unwrap();
        assert_eq!(
            render_table(
                &t,
                &headers,
                &[json!({"Foo": 1, "Names": "WEB", "State": {"Status": "up"}})]
            )
            .unwrap(),
            "FOO       names     STATUS\n1         web       up\n"
        );
        // Errors in a row are reported.
        let t = Template::parse(r"table {{.ID.X}}").unwrap();
        assert!(render_table(&t, &headers, &rows).is_err());
    }

    #[test]
    fn serialized_rows() {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Row {
            id: String,
            labels: std::collections::BTreeMap<String, String>,
        }
        let row = serde_json::to_value(Row {
            id: "abc".into(),
            labels: [("k".to_string(), "v".to_string())].into(),
        })
        .unwrap();
        assert_eq!(
            render("{{.Id}} {{.Labels.k}} {{index .Labels \"k\"}}", &row),
            "abc v v"
        );
    }
}
