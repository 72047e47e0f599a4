//! The functions a template can call: Go's (`and or not len index slice print printf println
//! eq ne lt le gt ge`) and docker's (`json split join title lower upper pad truncate`), and the
//! printing of values as Go's `fmt` does it (`%v`, `Sprint`, `Sprintf`, `strconv.Quote`).

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::{Number, Value};

use super::{Val, truthy, type_name};

fn arity<const N: usize>(name: &str, args: Vec<Val>) -> Result<[Val; N], String> {
    let got = args.len();
    args.try_into()
        .map_err(|_| format!("wrong number of args for {name}: want {N} got {got}"))
}

/// Call the function `name`: one of Go's builtins, or one of docker's.
pub(super) fn builtin(name: &str, args: Vec<Val>) -> Result<Val, String> {
    match name {
        "json" | "upper" | "lower" | "title" | "split" | "join" | "truncate" | "pad" => {
            docker(name, args)
        }
        _ => go(name, args),
    }
}

/// Go's builtins (text/template's `and` and `or` short-circuit, so the executor does them).
fn go(name: &str, args: Vec<Val>) -> Result<Val, String> {
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
        _ => Err(format!("function \"{name}\" not defined")),
    }
}

/// docker's template functions.
fn docker(name: &str, args: Vec<Val>) -> Result<Val, String> {
    let string = |s: String| Ok(Some(Value::String(s)));
    match name {
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
pub(super) fn display(value: Option<&Value>) -> String {
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
