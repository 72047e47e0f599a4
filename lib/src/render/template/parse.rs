//! Reading a template: the lexer (text, and the tokens of each `{{action}}` with its trim
//! markers) and the parser (tokens to the syntax tree of `Node`s), with Go's error
//! messages (`template: :1: unexpected "}" in operand`).

use serde_json::{Number, Value};

use super::{At, Cmd, FUNCS, KEYWORDS, Kind, Node, Operand, Pipe, Term};

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

/// A template's text (delimiters and escapes as given, `table` already stripped) as nodes.
pub(super) fn parse(src: &str) -> Result<Vec<Node>, String> {
    Parser::new(lex(src)?).parse_template()
}

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
