//! Python literals read from source, and the parameter ids pytest makes from
//! them (`test_x[a-1]`): strings escaped to ASCII, numbers as `str()` prints
//! them, anything else `argname` + index.

use std::fmt::Write;

use tree_sitter::Node;

use crate::lint::grammar::fields;

/// A literal value written in the source.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Bytes(Vec<u8>),
    Int(String),
    Float(f64),
    Bool(bool),
    None,
    /// `1j` and the like: kept as written.
    Other(String),
}

pub fn text<'s>(node: Node<'_>, src: &'s [u8]) -> &'s str {
    node.utf8_text(src).unwrap_or("")
}

/// The literal a node spells, if it is one.
pub fn literal(node: Node<'_>, src: &[u8]) -> Option<Literal> {
    match node.kind() {
        "string" => string(text(node, src)),
        "concatenated_string" => {
            let mut cursor = node.walk();
            let parts: Option<Vec<Literal>> = node
                .named_children(&mut cursor)
                .filter(|c| c.kind() != "comment")
                .map(|c| literal(c, src))
                .collect();
            let parts = parts?;
            if parts.iter().all(|p| matches!(p, Literal::Str(_))) {
                Some(Literal::Str(
                    parts
                        .into_iter()
                        .map(|p| match p {
                            Literal::Str(s) => s,
                            _ => String::new(),
                        })
                        .collect(),
                ))
            } else if parts.iter().all(|p| matches!(p, Literal::Bytes(_))) {
                Some(Literal::Bytes(
                    parts
                        .into_iter()
                        .flat_map(|p| match p {
                            Literal::Bytes(b) => b,
                            _ => Vec::new(),
                        })
                        .collect(),
                ))
            } else {
                None
            }
        }
        "integer" => {
            let t = text(node, src);
            if t.ends_with(['j', 'J']) {
                Some(Literal::Other(t.to_string()))
            } else {
                Some(Literal::Int(int_value(t)))
            }
        }
        "float" => {
            let t = text(node, src);
            if t.ends_with(['j', 'J']) {
                Some(Literal::Other(t.to_string()))
            } else {
                t.replace('_', "").parse().ok().map(Literal::Float)
            }
        }
        "true" => Some(Literal::Bool(true)),
        "false" => Some(Literal::Bool(false)),
        "none" => Some(Literal::None),
        "parenthesized_expression" => {
            let inner = node.named_child(0)?;
            literal(inner, src)
        }
        "unary_operator" => {
            let op = node.child_by_field_id(fields().operator.get())?;
            let arg = literal(node.child_by_field_id(fields().argument.get())?, src)?;
            match (text(op, src), arg) {
                ("-", Literal::Int(i)) => {
                    Some(Literal::Int(if i == "0" { i } else { format!("-{i}") }))
                }
                ("-", Literal::Float(f)) => Some(Literal::Float(-f)),
                ("+", v @ (Literal::Int(_) | Literal::Float(_))) => Some(v),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A Python integer literal's decimal value (`0x10` is 16, `1_000` 1000).
fn int_value(t: &str) -> String {
    let t = t.replace('_', "");
    let lower = t.to_ascii_lowercase();
    let (digits, radix) = if let Some(d) = lower.strip_prefix("0x") {
        (d.to_string(), 16)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (d.to_string(), 8)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (d.to_string(), 2)
    } else {
        (lower.clone(), 10)
    };
    u128::from_str_radix(&digits, radix).map_or(t, |v| v.to_string())
}

/// A string literal's value: prefixes, quotes, escapes. None for f-strings
/// with replacement fields (computed at run time).
pub fn string(t: &str) -> Option<Literal> {
    let quote_at = t.find(['\'', '"'])?;
    let prefix = t[..quote_at].to_ascii_lowercase();
    let body = &t[quote_at..];
    let q = if body.starts_with("\"\"\"") || body.starts_with("'''") {
        3
    } else {
        1
    };
    if body.len() < 2 * q {
        return None;
    }
    let inner = &body[q..body.len() - q];
    let raw = prefix.contains('r');
    let bytes = prefix.contains('b');
    if prefix.contains('f') || prefix.contains('t') {
        let unescaped = inner.replace("{{", "").replace("}}", "");
        if unescaped.contains('{') {
            return None;
        }
    }
    let inner = if prefix.contains('f') || prefix.contains('t') {
        inner.replace("{{", "{").replace("}}", "}")
    } else {
        inner.to_string()
    };
    let value = if raw { inner } else { unescape(&inner, bytes) };
    if bytes {
        Some(Literal::Bytes(
            value
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect(),
        ))
    } else {
        Some(Literal::Str(value))
    }
}

fn unescape(s: &str, bytes: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            out.push('\\');
            break;
        };
        let hex = |n: usize, chars: &mut std::iter::Peekable<std::str::Chars>| {
            let digits: String = (0..n).filter_map(|_| chars.next()).collect();
            u32::from_str_radix(&digits, 16)
                .ok()
                .and_then(char::from_u32)
        };
        match e {
            '\n' => {}
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            'x' => out.extend(hex(2, &mut chars)),
            'u' if !bytes => out.extend(hex(4, &mut chars)),
            'U' if !bytes => out.extend(hex(8, &mut chars)),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.extend(char::from_u32(v));
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

/// pytest's `ascii_escaped` of a str: `unicode_escape`, then ASCII.
pub fn ascii_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            c if u32::from(c) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if u32::from(c) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out
}

fn bytes_escaped(b: &[u8]) -> String {
    let mut out = String::new();
    for &c in b {
        match c {
            b' '..=b'~' => out.push(char::from(c)),
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed
/// notation between 1e-4 and 1e16, else with an exponent like `1e+16`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let body = if point <= 0 {
            format!(
                "0.{}{digits}",
                "0".repeat(usize::try_from(-point).unwrap_or(0))
            )
        } else {
            let point = usize::try_from(point).unwrap_or(0);
            if digits.len() <= point {
                format!("{digits}{}.0", "0".repeat(point - digits.len()))
            } else {
                format!("{}.{}", &digits[..point], &digits[point..])
            }
        };
        format!("{sign}{body}")
    } else {
        let rest = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{rest}e{esign}{:02}", exp.abs())
    }
}

/// The id pytest gives a value it can name, None for values it names
/// `argname` + index.
pub fn id_of(lit: &Literal) -> Option<String> {
    match lit {
        Literal::Str(s) if s.chars().count() <= 100 => Some(ascii_escaped(s)),
        Literal::Bytes(b) if b.len() <= 100 => Some(bytes_escaped(b)),
        Literal::Str(_) | Literal::Bytes(_) => None,
        Literal::Int(i) => Some(i.clone()),
        Literal::Float(f) => Some(float_repr(*f)),
        Literal::Bool(b) => Some(if *b { "True" } else { "False" }.into()),
        Literal::None => Some("None".into()),
        Literal::Other(t) => Some(t.clone()),
    }
}

/// The id of an explicit `ids=[...]` entry or `pytest.param(id=...)`.
pub fn explicit_id(lit: &Literal) -> Option<String> {
    match lit {
        Literal::Str(s) => Some(ascii_escaped(s)),
        Literal::Bytes(b) => Some(bytes_escaped(b)),
        Literal::None => None,
        other => id_of(other),
    }
}

/// pytest's `make_unique_parameterset_ids`: duplicates get a counter suffix.
pub fn make_unique(ids: &mut [String]) {
    use std::collections::{HashMap, HashSet};
    let mut counts: HashMap<String, usize> = HashMap::new();
    for id in ids.iter() {
        *counts.entry(id.clone()).or_default() += 1;
    }
    if counts.values().all(|&c| c == 1) {
        return;
    }
    let mut taken: HashSet<String> = ids.iter().cloned().collect();
    let mut suffixes: HashMap<String, usize> = HashMap::new();
    for id in ids.iter_mut() {
        if counts[id.as_str()] > 1 {
            let base = id.clone();
            let sep = if base.ends_with(|c: char| c.is_ascii_digit()) {
                "_"
            } else {
                ""
            };
            let n = suffixes.entry(base.clone()).or_default();
            let mut new = format!("{base}{sep}{n}");
            while taken.contains(&new) {
                *n += 1;
                new = format!("{base}{sep}{n}");
            }
            *n += 1;
            taken.insert(new.clone());
            *id = new;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_decoded() {
        assert_eq!(string("'a'"), Some(Literal::Str("a".into())));
        assert_eq!(string("\"a\\tb\""), Some(Literal::Str("a\tb".into())));
        assert_eq!(string("r'a\\tb'"), Some(Literal::Str("a\\tb".into())));
        assert_eq!(string("'''x'''"), Some(Literal::Str("x".into())));
        assert_eq!(string("b'\\x00a'"), Some(Literal::Bytes(vec![0, b'a'])));
        assert_eq!(string("'\\u00e9'"), Some(Literal::Str("é".into())));
        assert_eq!(string("f'{x}'"), None);
        assert_eq!(string("f'{{x}}'"), Some(Literal::Str("{x}".into())));
    }

    #[test]
    fn ids_follow_pytest() {
        assert_eq!(ascii_escaped("héllo\n"), "h\\xe9llo\\n");
        assert_eq!(ascii_escaped("日"), "\\u65e5");
        assert_eq!(id_of(&Literal::Bool(true)).unwrap(), "True");
        assert_eq!(id_of(&Literal::None).unwrap(), "None");
        assert_eq!(id_of(&Literal::Str("x".repeat(101))), None);
        assert_eq!(id_of(&Literal::Bytes(vec![b'a', 0xff])).unwrap(), "a\\xff");
        assert_eq!(int_value("0x10"), "16");
        assert_eq!(int_value("1_000"), "1000");
    }

    #[test]
    fn floats_print_as_python_repr() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.25, "-2.25"),
            (123.456, "123.456"),
            (0.1, "0.1"),
        ] {
            assert_eq!(float_repr(f), s);
        }
    }

    #[test]
    fn duplicate_ids_get_suffixes() {
        let mut ids = vec![
            "a".to_string(),
            "a".into(),
            "b".into(),
            "x1".into(),
            "x1".into(),
        ];
        make_unique(&mut ids);
        assert_eq!(ids, ["a0", "a1", "b", "x1_0", "x1_1"]);
    }
}
