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

use std::fmt;

/// A keyword argument's value in `name(key=value)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    /// Python's ints are unbounded; i128 holds every literal a person writes.
    Int(i128),
    Bool(bool),
    None,
}

/// A parsed expression. `And` and `Or` are binary and left-associative, as
/// pytest builds them, so printing and parsing again gives the same tree.
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
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
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
    /// The expression with a caret under the column.
    pub fn pointer(input: &str, column: usize) -> String {
        format!("    {input}\n    {}^", " ".repeat(column.saturating_sub(1)))
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

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | ':' | '+' | '-' | '.' | '[' | ']' | '\\' | '/')
        || (!c.is_ascii() && is_python_alnum(c))
}

/// Python's `\w` beyond ASCII is `str.isalnum`: a letter (`L*`) or a number
/// (`N*`). Rust's `is_alphanumeric` differs: it takes combining vowel signs
/// (`\u{93e}`) and circled letters as alphabetic.
fn is_python_alnum(c: char) -> bool {
    static ALNUM: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    ALNUM
        .get_or_init(|| regex::Regex::new(r"^[\p{L}\p{N}]$").expect("a valid class"))
        .is_match(c.encode_utf8(&mut [0; 4]))
}

/// The tokens, and the first lexical error with the number of tokens before
/// it. pytest lexes lazily, one token ahead of its parser, so a parse error
/// before the bad character is the one it reports; `parse` does the same.
fn lex(input: &str) -> (Vec<Token>, Option<(usize, SyntaxError)>) {
    match lex_until_error(input) {
        Ok(tokens) => (tokens, None),
        Err((mut tokens, error)) => {
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

fn lex_until_error(input: &str) -> Result<Vec<Token>, (Vec<Token>, SyntaxError)> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
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
                    return Err((
                        tokens,
                        SyntaxError {
                            column: pos + 1,
                            message: format!("closing quote \"{c}\" is missing"),
                        },
                    ));
                };
                let body: String = chars[pos + 1..pos + 1 + len].iter().collect();
                if let Some(b) = body.chars().position(|x| x == '\\') {
                    return Err((
                        tokens,
                        SyntaxError {
                            column: pos + 2 + b,
                            message: "escaping with \"\\\" not supported in marker expression"
                                .into(),
                        },
                    ));
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
                return Err((
                    tokens,
                    SyntaxError {
                        column: pos + 1,
                        message: format!("unexpected character \"{c}\""),
                    },
                ))
            }
        }
    }
    tokens.push(single(Kind::Eof, chars.len()));
    Ok(tokens)
}

/// Python's reserved words: not allowed as keyword-argument names.
const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Python's `str.isidentifier`: XID_Start or `_`, then XID_Continue (`x²`
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
        let mut left = self.and_expr()?;
        while self.accept(Kind::Or).is_some() {
            left = Expr::Or(Box::new(left), Box::new(self.and_expr()?));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.not_expr()?;
        while self.accept(Kind::And).is_some() {
            left = Expr::And(Box::new(left), Box::new(self.not_expr()?));
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, SyntaxError> {
        if self.accept(Kind::Not).is_some() {
            return Ok(Expr::Not(Box::new(self.not_expr()?)));
        }
        if self.accept(Kind::LParen).is_some() {
            let inner = self.expr()?;
            self.expect(Kind::RParen)?;
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
        let digits = text.strip_prefix('-').unwrap_or(text);
        let value = if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
            Value::Int(text.parse().map_err(|_| SyntaxError {
                column: token.pos + 1,
                message: format!("integer {text} is out of range"),
            })?)
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

/// Parse an expression with pytest's grammar and error messages.
pub fn parse(input: &str) -> Result<Parsed, SyntaxError> {
    let (tokens, lex_error) = lex(input);
    let mut parser = Parser {
        tokens,
        at: 0,
        names: Vec::new(),
        repeated: None,
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
            Expr::And(a, b) => a.eval(matches) && b.eval(matches),
            Expr::Or(a, b) => a.eval(matches) || b.eval(matches),
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
            Expr::And(a, b) | Expr::Or(a, b) => {
                let (word, prec) = if matches!(self, Expr::And(..)) {
                    ("and", 2)
                } else {
                    ("or", 1)
                };
                child(f, a, a.precedence() < prec)?;
                write!(f, " {word} ")?;
                child(f, b, b.precedence() <= prec)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> Expr {
        Expr::Name {
            name: n.into(),
            kwargs: Vec::new(),
        }
    }
    fn and(a: Expr, b: Expr) -> Expr {
        Expr::And(Box::new(a), Box::new(b))
    }
    fn or(a: Expr, b: Expr) -> Expr {
        Expr::Or(Box::new(a), Box::new(b))
    }
    fn not(a: Expr) -> Expr {
        Expr::Not(Box::new(a))
    }
    fn p(s: &str) -> Expr {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).expr
    }
    fn err(s: &str) -> (usize, String) {
        let e = parse(s).expect_err(s);
        (e.column, e.message)
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        assert_eq!(p("a or b and c"), or(name("a"), and(name("b"), name("c"))));
        assert_eq!(p("a and b or c"), or(and(name("a"), name("b")), name("c")));
        assert_eq!(p("not a and b"), and(not(name("a")), name("b")));
        assert_eq!(p("not (a and b)"), not(and(name("a"), name("b"))));
        assert_eq!(p("not not a"), not(not(name("a"))));
        assert_eq!(
            p("a and b and c"),
            and(and(name("a"), name("b")), name("c"))
        );
        assert_eq!(p("a or (b or c)"), or(name("a"), or(name("b"), name("c"))));
        assert_eq!(p("((a))"), name("a"));
    }

    #[test]
    fn the_spec_table_parses() {
        let e = p("integration and premerge and (gpus_needed_0 or gpus_needed_1)");
        assert_eq!(
            e.to_string(),
            "integration and premerge and (gpus_needed_0 or gpus_needed_1)"
        );
        let names: Vec<_> = parse("e2e and gpus_needed_2 and not nightly ")
            .unwrap()
            .names;
        assert_eq!(
            names,
            [
                ("e2e".to_string(), 1),
                ("gpus_needed_2".to_string(), 9),
                ("nightly".to_string(), 31)
            ]
        );
    }

    #[test]
    fn identifiers_take_pytests_characters() {
        assert_eq!(p("a:b+c-d.e[f]/g\\h"), name("a:b+c-d.e[f]/g\\h"));
        assert_eq!(
            p("orchid and nothing"),
            and(name("orchid"), name("nothing"))
        );
        assert_eq!(p("True"), name("True"));
        assert_eq!(p("ünïcode_1"), name("ünïcode_1"));
    }

    #[test]
    fn keyword_arguments_and_their_values() {
        let e = p("gpu(count=2, model='h100', big=True, small=False, x=None, n=-3, s=\"a b\")");
        let Expr::Name { name, kwargs } = e else {
            panic!()
        };
        assert_eq!(name, "gpu");
        assert_eq!(
            kwargs,
            [
                ("count".to_string(), Value::Int(2)),
                ("model".to_string(), Value::Str("h100".into())),
                ("big".to_string(), Value::Bool(true)),
                ("small".to_string(), Value::Bool(false)),
                ("x".to_string(), Value::None),
                ("n".to_string(), Value::Int(-3)),
                ("s".to_string(), Value::Str("a b".into())),
            ]
        );
    }

    #[test]
    fn the_empty_expression_matches_nothing() {
        assert_eq!(p(""), Expr::Empty);
        assert_eq!(p("  \t"), Expr::Empty);
        assert!(!Expr::Empty.eval(&mut |_, _| true));
    }

    #[test]
    fn every_error_has_its_message_and_column() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "a and",
                6,
                "expected not OR left parenthesis OR identifier; got end of input",
            ),
            ("(a or b", 8, "expected right parenthesis; got end of input"),
            ("a b", 3, "expected end of input; got identifier"),
            ("a )", 3, "expected end of input; got right parenthesis"),
            (
                "and",
                1,
                "expected not OR left parenthesis OR identifier; got and",
            ),
            ("a & b", 3, "unexpected character \"&\""),
            ("gpu(count='2)", 11, "closing quote \"'\" is missing"),
            (
                "gpu(s='a\\b')",
                9,
                "escaping with \"\\\" not supported in marker expression",
            ),
            ("gpu()", 5, "expected identifier; got right parenthesis"),
            ("gpu(count)", 10, "expected =; got right parenthesis"),
            (
                "gpu(count=)",
                11,
                "expected identifier; got right parenthesis",
            ),
            ("gpu(1x=1)", 5, "not a valid python identifier 1x"),
            (
                "gpu(class=1)",
                5,
                "unexpected reserved python keyword `class`",
            ),
            ("gpu(a=b)", 7, "unexpected character/s \"b\""),
            ("gpu(a=1, a=2)", 10, "keyword argument repeated: a"),
            (
                "gpu(a=9999999999999999999999999999999999999999)",
                7,
                "integer 9999999999999999999999999999999999999999 is out of range",
            ),
            // pytest lexes one token ahead of its parser: a parse error before
            // a bad character wins, and a repeated keyword is found last.
            ("a b 'open", 3, "expected end of input; got identifier"),
            ("a and 'open", 7, "closing quote \"'\" is missing"),
            (
                "gpu(a=1, a=2) b",
                15,
                "expected end of input; got identifier",
            ),
            ("gpu(a=1, a=2) $", 15, "unexpected character \"$\""),
            (
                "gpu(a=1 b=2)",
                9,
                "expected right parenthesis; got identifier",
            ),
            ("ünï & x", 5, "unexpected character \"&\""),
            ("x(a²=1)", 3, "not a valid python identifier a²"),
            ("a\u{93e}", 2, "unexpected character \"\u{93e}\""),
            ("a\u{24b6}", 2, "unexpected character \"\u{24b6}\""),
        ];
        for (input, column, message) in cases {
            assert_eq!(err(input), (*column, (*message).to_string()), "{input}");
        }
    }

    #[test]
    fn integers_past_i64_are_read_as_python_reads_them() {
        assert_eq!(
            p("gpu(a=99999999999999999999)"),
            Expr::Name {
                name: "gpu".into(),
                kwargs: vec![("a".into(), Value::Int(99_999_999_999_999_999_999))],
            }
        );
    }

    #[test]
    fn the_pointer_sits_under_the_column() {
        assert_eq!(SyntaxError::pointer("a & b", 3), "    a & b\n      ^");
    }

    #[test]
    fn printing_uses_the_fewest_parentheses() {
        for s in [
            "a or b and c",
            "(a or b) and c",
            "not (a or b)",
            "not not a",
            "a and (b and c)",
            "a or not b and c",
            "gpu(count=2, model=\"h100\") or not x",
            "s(q='say \"hi\"')",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
        assert_eq!(p(" ( a )and(b)").to_string(), "a and b");
    }

    /// A small deterministic generator (no extra crate): xorshift64*.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).expect("below n")
        }
    }

    const NAMES: &[&str] = &[
        "unit",
        "gpu_1",
        "e2e",
        "pre_merge",
        "a.b",
        "x-y",
        "orx",
        "nota",
    ];

    fn random_value(rng: &mut Rng) -> Value {
        match rng.below(5) {
            0 => Value::Str(["", "h100", "a b", "it's", "say \"x\""][rng.below(5)].into()),
            1 => Value::Int(i128::try_from(rng.below(2000)).unwrap() - 1000),
            2 => Value::Bool(rng.below(2) == 0),
            3 => Value::None,
            _ => Value::Int(i128::from(i64::MIN)),
        }
    }

    fn random_expr(rng: &mut Rng, depth: u32) -> Expr {
        let leaf = depth == 0 || rng.below(3) == 0;
        if leaf {
            let name = NAMES[rng.below(NAMES.len())].to_string();
            let kwargs = (0..rng.below(3))
                .map(|i| (format!("k{i}"), random_value(rng)))
                .collect();
            return Expr::Name { name, kwargs };
        }
        match rng.below(3) {
            0 => not(random_expr(rng, depth - 1)),
            1 => and(random_expr(rng, depth - 1), random_expr(rng, depth - 1)),
            _ => or(random_expr(rng, depth - 1), random_expr(rng, depth - 1)),
        }
    }

    /// The reference semantics, written independently of `eval`.
    fn truth(e: &Expr, env: &dyn Fn(&str) -> bool) -> bool {
        match e {
            Expr::Empty => false,
            Expr::Name { name, .. } => env(name),
            Expr::Not(a) => !truth(a, env),
            Expr::And(a, b) => truth(a, env) & truth(b, env),
            Expr::Or(a, b) => truth(a, env) | truth(b, env),
        }
    }

    #[test]
    fn property_printing_then_parsing_gives_the_same_tree() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let e = random_expr(&mut rng, 5);
            let text = e.to_string();
            assert_eq!(parse(&text).map(|p| p.expr), Ok(e.clone()), "{text}");
            // Fully parenthesized text means the same tree too.
            let full = fully_parenthesized(&e);
            assert_eq!(parse(&full).map(|p| p.expr), Ok(e), "{full}");
        }
    }

    #[test]
    fn property_evaluation_follows_boolean_logic() {
        let mut rng = Rng(42);
        for _ in 0..2000 {
            let e = random_expr(&mut rng, 4);
            let set = rng.next();
            let env = |n: &str| {
                let i = NAMES.iter().position(|x| *x == n).unwrap();
                set >> i & 1 == 1
            };
            assert_eq!(e.eval(&mut |n, _| env(n)), truth(&e, &env), "{e}");
        }
    }

    #[test]
    fn property_garbage_never_panics_and_errors_point_inside() {
        let alphabet: Vec<char> = "ab_1 ()=,'\"\\&-notandor".chars().collect();
        let mut rng = Rng(7);
        for _ in 0..5000 {
            let len = rng.below(14);
            let s: String = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            if let Err(e) = parse(&s) {
                assert!(
                    e.column >= 1 && e.column <= s.chars().count() + 1,
                    "{s:?}: {e}"
                );
            }
        }
    }

    fn fully_parenthesized(e: &Expr) -> String {
        match e {
            Expr::Empty | Expr::Name { .. } => e.to_string(),
            Expr::Not(a) => format!("(not {})", fully_parenthesized(a)),
            Expr::And(a, b) => format!(
                "({} and {})",
                fully_parenthesized(a),
                fully_parenthesized(b)
            ),
            Expr::Or(a, b) => format!("({} or {})", fully_parenthesized(a), fully_parenthesized(b)),
        }
    }
}
