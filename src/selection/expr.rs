//! pytest's marker-expression language, the one `-m` takes:
//!
//! ```text
//! expression: expr? EOF
//! expr:       and_expr ('or' and_expr)*
//! and_expr:   not_expr ('and' not_expr)*
//! not_expr:   'not' not_expr | '(' expr ')' | ident kwargs?
//! ident:      (\w|:|\+|-|\.|\[|\]|\\|/)+
//! kwargs:     '(' name '=' value (',' name '=' value)* ')'
//! value:      'string' | "string" | -?[0-9]+ | True | False | None
//! ```
//!
//! Pipelines and stages are written in it, so a CI job's `-m` string and a
//! stage mean the same. Parsing keeps the column of every error (1-based, as
//! pytest reports it) and the column of every marker name, so the taxonomy
//! check can point at a misspelled one.
//!
//! Nothing here recurses in proportion to the input's length: a chain of
//! `and`s (or `or`s) is one node with many operands, however long, and
//! parentheses and `not`s may nest [`MAX_NESTING`] levels deep (pytest's own
//! parser gives up with a `RecursionError` a little beyond that), so parsing,
//! printing, evaluating and dropping a tree stay well within any stack.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// How deeply parentheses and `not`s may nest, together.
pub const MAX_NESTING: usize = 200;

/// A keyword argument's value in `name(key=value)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Str(String),
    Int(i64),
    /// An integer beyond 64 bits (Python's are unbounded), in its canonical
    /// decimal form: no leading zeros, `-` when negative.
    BigInt(String),
    Bool(bool),
    None,
}

/// A parsed expression. `And` and `Or` hold the operands of one chain
/// (two or more), in order: `a and b and c` is one `And` of three, while
/// `(a and b) and c` keeps its parentheses as a nested `And`, so printing
/// and parsing again gives the same tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// The empty expression: matches nothing, as in pytest.
    Empty,
    /// A marker name, with keyword arguments to match when given.
    Name {
        name: String,
        kwargs: Vec<(String, Value)>,
    },
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// A parsed expression and the marker names in it with their columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub expr: Expr,
    pub names: Vec<(String, usize)>,
}

/// What is wrong with an expression and where (1-based column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub column: usize,
    pub message: String,
}

impl SyntaxError {
    /// The expression with a caret under the column; a long one cut to
    /// the 40 characters either side of the column.
    pub fn pointer(input: &str, column: usize) -> String {
        const SIDE: usize = 40;
        let chars: Vec<char> = input.chars().collect();
        let at = column.saturating_sub(1).min(chars.len());
        if chars.len() <= 2 * SIDE + 20 {
            return format!("    {input}\n    {}^", " ".repeat(at));
        }
        let from = at.saturating_sub(SIDE);
        let to = (at + SIDE).min(chars.len());
        let head = if from > 0 { "..." } else { "" };
        let tail = if to < chars.len() { "..." } else { "" };
        let shown: String = chars[from..to].iter().collect();
        format!(
            "    {head}{shown}{tail}\n    {}^",
            " ".repeat(head.len() + at - from)
        )
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for SyntaxError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    LParen,
    RParen,
    Or,
    And,
    Not,
    Ident,
    Eof,
    Equal,
    Str,
    Comma,
}

impl Kind {
    /// The words pytest uses in "expected X; got Y".
    fn describe(self) -> &'static str {
        match self {
            Kind::LParen => "left parenthesis",
            Kind::RParen => "right parenthesis",
            Kind::Or => "or",
            Kind::And => "and",
            Kind::Not => "not",
            Kind::Ident => "identifier",
            Kind::Eof => "end of input",
            Kind::Equal => "=",
            Kind::Str => "string literal",
            Kind::Comma => ",",
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    text: String,
    /// 0-based character position.
    pos: usize,
}

/// Python's `\w` outside ASCII: letters and numbers by general category.
/// Rust's `is_alphanumeric` also takes `Other_Alphabetic` marks (vowel signs,
/// circled letters), which pytest refuses.
static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{N}]$").expect("valid regex"));

/// A character of pytest's `ident`: `(\w|:|\+|-|\.|\[|\]|\\|/)+`.
fn is_ident_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
            || matches!(c, '_' | ':' | '+' | '-' | '.' | '[' | ']' | '\\' | '/')
    } else {
        WORD.is_match(c.encode_utf8(&mut [0; 4]))
    }
}

/// Unicode decimal digits (category `Nd`), which Python's `int()` reads.
static DECIMAL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\p{Nd}$").expect("valid regex"));

fn is_decimal(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && DECIMAL.is_match(c.encode_utf8(&mut [0; 4])))
}

/// The value of a decimal digit. Unicode assigns `Nd` characters in runs of
/// ten, zero to nine, so a digit's value is its distance from the start of
/// its block of such characters, modulo ten (the longest block is fifty).
fn decimal_value(c: char) -> u8 {
    if let Some(d) = c.to_digit(10) {
        return u8::try_from(d).unwrap_or(0);
    }
    let code = u32::from(c);
    let before = (1..=code.min(100))
        .take_while(|back| char::from_u32(code - back).is_some_and(is_decimal))
        .count();
    u8::try_from(before % 10).unwrap_or(0)
}

/// An integer as Python's `int()` reads one: an optional `-`, then decimal
/// digits of any script, unbounded. `None` when the text is no integer.
/// (pytest also tries `int()` on superscripts and other `isdigit()`
/// characters, and fails with a traceback; here they are no integer.)
fn integer(text: &str) -> Option<Value> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.chars().all(is_decimal) {
        return None;
    }
    let ascii: String = digits
        .chars()
        .map(|c| char::from(b'0' + decimal_value(c)))
        .skip_while(|c| *c == '0')
        .collect();
    let canonical = if ascii.is_empty() {
        "0".to_string()
    } else if text.starts_with('-') {
        format!("-{ascii}")
    } else {
        ascii
    };
    Some(
        canonical
            .parse()
            .map_or(Value::BigInt(canonical), Value::Int),
    )
}

/// The tokens, and the first lexical error with the number of tokens before
/// it. pytest lexes lazily, one token ahead of its parser, so a parse error
/// before the bad character is the one it reports; `parse` does the same.
fn lex(input: &str) -> (Vec<Token>, Option<(usize, SyntaxError)>) {
    let mut tokens = Vec::new();
    match lex_into(input, &mut tokens) {
        Ok(()) => (tokens, None),
        Err(error) => {
            let at = tokens.len();
            // Stands where the bad token is; reaching it means pytest's lexer
            // has already raised.
            tokens.push(Token {
                kind: Kind::Eof,
                text: String::new(),
                pos: error.column.saturating_sub(1),
            });
            (tokens, Some((at, error)))
        }
    }
}

fn lex_into(input: &str, tokens: &mut Vec<Token>) -> Result<(), SyntaxError> {
    let chars: Vec<char> = input.chars().collect();
    let mut pos = 0;
    let single = |kind, pos| Token {
        kind,
        text: String::new(),
        pos,
    };
    while pos < chars.len() {
        let c = chars[pos];
        match c {
            ' ' | '\t' => pos += 1,
            '(' => {
                tokens.push(single(Kind::LParen, pos));
                pos += 1;
            }
            ')' => {
                tokens.push(single(Kind::RParen, pos));
                pos += 1;
            }
            '=' => {
                tokens.push(single(Kind::Equal, pos));
                pos += 1;
            }
            ',' => {
                tokens.push(single(Kind::Comma, pos));
                pos += 1;
            }
            '\'' | '"' => {
                let Some(len) = chars[pos + 1..].iter().position(|&q| q == c) else {
                    return Err(SyntaxError {
                        column: pos + 1,
                        message: format!("closing quote \"{c}\" is missing"),
                    });
                };
                let body: String = chars[pos + 1..pos + 1 + len].iter().collect();
                if let Some(b) = body.chars().position(|x| x == '\\') {
                    return Err(SyntaxError {
                        column: pos + 2 + b,
                        message: "escaping with \"\\\" not supported in marker expression".into(),
                    });
                }
                tokens.push(Token {
                    kind: Kind::Str,
                    text: body,
                    pos,
                });
                pos += len + 2;
            }
            c if is_ident_char(c) => {
                let len = chars[pos..]
                    .iter()
                    .take_while(|c| is_ident_char(**c))
                    .count();
                let text: String = chars[pos..pos + len].iter().collect();
                let kind = match text.as_str() {
                    "or" => Kind::Or,
                    "and" => Kind::And,
                    "not" => Kind::Not,
                    _ => Kind::Ident,
                };
                tokens.push(Token { kind, text, pos });
                pos += len;
            }
            c => {
                return Err(SyntaxError {
                    column: pos + 1,
                    message: format!("unexpected character \"{c}\""),
                })
            }
        }
    }
    tokens.push(single(Kind::Eof, chars.len()));
    Ok(())
}

/// Python's reserved words: not allowed as keyword-argument names.
const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Python's `str.isidentifier`: `XID_Start` or `_`, then `XID_Continue` (`x²`
/// is not one, though `²` is alphanumeric).
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| unicode_ident::is_xid_start(c) || c == '_')
        && chars.all(unicode_ident::is_xid_continue)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    names: Vec<(String, usize)>,
    /// A keyword given twice: pytest finds it when compiling, after the whole
    /// expression parsed, so it is reported only then (at the key).
    repeated: Option<SyntaxError>,
    /// Parentheses and `not`s open around the current token.
    nesting: usize,
}

impl Parser {
    fn current(&self) -> &Token {
        &self.tokens[self.at]
    }

    fn accept(&mut self, kind: Kind) -> Option<Token> {
        if self.current().kind == kind {
            let token = self.current().clone();
            if kind != Kind::Eof {
                self.at += 1;
            }
            Some(token)
        } else {
            None
        }
    }

    fn reject(&self, expected: &[Kind]) -> SyntaxError {
        let wanted: Vec<_> = expected.iter().map(|k| k.describe()).collect();
        SyntaxError {
            column: self.current().pos + 1,
            message: format!(
                "expected {}; got {}",
                wanted.join(" OR "),
                self.current().kind.describe()
            ),
        }
    }

    fn expect(&mut self, kind: Kind) -> Result<Token, SyntaxError> {
        self.accept(kind).ok_or_else(|| self.reject(&[kind]))
    }

    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        let mut operands = vec![self.and_expr()?];
        while self.accept(Kind::Or).is_some() {
            operands.push(self.and_expr()?);
        }
        Ok(chain(operands, Expr::Or))
    }

    fn and_expr(&mut self) -> Result<Expr, SyntaxError> {
        let mut operands = vec![self.not_expr()?];
        while self.accept(Kind::And).is_some() {
            operands.push(self.not_expr()?);
        }
        Ok(chain(operands, Expr::And))
    }

    /// One more level of parentheses or `not` (just accepted), refused
    /// beyond the limit at its column.
    fn nest(&mut self) -> Result<(), SyntaxError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(SyntaxError {
                column: self.tokens[self.at - 1].pos + 1,
                message: format!(
                    "the expression nests deeper than {MAX_NESTING} levels of parentheses and `not`"
                ),
            });
        }
        Ok(())
    }

    fn not_expr(&mut self) -> Result<Expr, SyntaxError> {
        if self.accept(Kind::Not).is_some() {
            self.nest()?;
            let inner = self.not_expr()?;
            self.nesting -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.accept(Kind::LParen).is_some() {
            self.nest()?;
            let inner = self.expr()?;
            self.expect(Kind::RParen)?;
            self.nesting -= 1;
            return Ok(inner);
        }
        let Some(ident) = self.accept(Kind::Ident) else {
            return Err(self.reject(&[Kind::Not, Kind::LParen, Kind::Ident]));
        };
        self.names.push((ident.text.clone(), ident.pos + 1));
        let mut kwargs = Vec::new();
        if self.accept(Kind::LParen).is_some() {
            loop {
                let (key, value) = self.kwarg()?;
                if self.repeated.is_none() && kwargs.iter().any(|(k, _)| *k == key.text) {
                    self.repeated = Some(SyntaxError {
                        column: key.pos + 1,
                        message: format!("keyword argument repeated: {}", key.text),
                    });
                }
                kwargs.push((key.text, value));
                if self.accept(Kind::Comma).is_none() {
                    break;
                }
            }
            self.expect(Kind::RParen)?;
        }
        Ok(Expr::Name {
            name: ident.text,
            kwargs,
        })
    }

    fn kwarg(&mut self) -> Result<(Token, Value), SyntaxError> {
        let key = self.expect(Kind::Ident)?;
        if !is_identifier(&key.text) {
            return Err(SyntaxError {
                column: key.pos + 1,
                message: format!("not a valid python identifier {}", key.text),
            });
        }
        if PYTHON_KEYWORDS.contains(&key.text.as_str()) {
            return Err(SyntaxError {
                column: key.pos + 1,
                message: format!("unexpected reserved python keyword `{}`", key.text),
            });
        }
        self.expect(Kind::Equal)?;
        if let Some(s) = self.accept(Kind::Str) {
            return Ok((key, Value::Str(s.text)));
        }
        let token = self.expect(Kind::Ident)?;
        let text = token.text.as_str();
        let value = if let Some(number) = integer(text) {
            number
        } else {
            match text {
                "True" => Value::Bool(true),
                "False" => Value::Bool(false),
                "None" => Value::None,
                _ => {
                    return Err(SyntaxError {
                        column: token.pos + 1,
                        message: format!("unexpected character/s \"{text}\""),
                    })
                }
            }
        };
        Ok((key, value))
    }
}

/// One operand alone, or the chain of them.
fn chain(mut operands: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if operands.len() == 1 {
        operands.pop().expect("one operand")
    } else {
        make(operands)
    }
}

/// Parse an expression with pytest's grammar and error messages.
pub fn parse(input: &str) -> Result<Parsed, SyntaxError> {
    let (tokens, lex_error) = lex(input);
    let mut parser = Parser {
        tokens,
        at: 0,
        names: Vec::new(),
        repeated: None,
        nesting: 0,
    };
    let parsed = if parser.accept(Kind::Eof).is_some() {
        Ok(Expr::Empty)
    } else {
        parser
            .expr()
            .and_then(|expr| parser.expect(Kind::Eof).map(|_| expr))
    };
    // The parser reached the bad token: pytest's lexer raised there first.
    if let Some((at, error)) = lex_error {
        if parser.at >= at {
            return Err(error);
        }
    }
    let expr = parsed?;
    if let Some(error) = parser.repeated {
        return Err(error);
    }
    Ok(Parsed {
        expr,
        names: parser.names,
    })
}

impl Expr {
    /// Evaluate with `matches(name, kwargs)` deciding each marker name.
    pub fn eval(&self, matches: &mut impl FnMut(&str, &[(String, Value)]) -> bool) -> bool {
        match self {
            Expr::Empty => false,
            Expr::Name { name, kwargs } => matches(name, kwargs),
            Expr::Not(e) => !e.eval(matches),
            Expr::And(operands) => operands.iter().all(|e| e.eval(matches)),
            Expr::Or(operands) => operands.iter().any(|e| e.eval(matches)),
        }
    }

    /// Binding strength: `or` < `and` < `not` < a name.
    fn precedence(&self) -> u8 {
        match self {
            Expr::Or(..) => 1,
            Expr::And(..) => 2,
            Expr::Not(_) => 3,
            Expr::Empty | Expr::Name { .. } => 4,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The grammar has no escapes: pick the quote the text lacks.
            Value::Str(s) if s.contains('"') => write!(f, "'{s}'"),
            Value::Str(s) => write!(f, "\"{s}\""),
            Value::Int(i) => write!(f, "{i}"),
            Value::BigInt(i) => f.write_str(i),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::None => f.write_str("None"),
        }
    }
}

/// Prints the expression with the fewest parentheses that parse back to the
/// same tree.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let child = |f: &mut fmt::Formatter<'_>, e: &Expr, parens: bool| {
            if parens {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        };
        match self {
            Expr::Empty => Ok(()),
            Expr::Name { name, kwargs } => {
                f.write_str(name)?;
                if !kwargs.is_empty() {
                    let args: Vec<_> = kwargs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    write!(f, "({})", args.join(", "))?;
                }
                Ok(())
            }
            Expr::Not(e) => {
                f.write_str("not ")?;
                child(f, e, e.precedence() < 3)
            }
            Expr::And(operands) | Expr::Or(operands) => {
                let (word, prec) = if matches!(self, Expr::And(..)) {
                    (" and ", 2)
                } else {
                    (" or ", 1)
                };
                for (i, e) in operands.iter().enumerate() {
                    if i > 0 {
                        f.write_str(word)?;
                    }
                    // A nested chain of the same operator was parenthesized.
                    child(f, e, e.precedence() <= prec)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
