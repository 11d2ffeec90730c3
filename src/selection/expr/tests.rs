use super::*;

fn name(n: &str) -> Expr {
    Expr::Name {
        name: n.into(),
        kwargs: Vec::new(),
    }
}
fn and(a: Expr, b: Expr) -> Expr {
    Expr::And(vec![a, b])
}
fn or(a: Expr, b: Expr) -> Expr {
    Expr::Or(vec![a, b])
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
        Expr::And(vec![name("a"), name("b"), name("c")])
    );
    assert_eq!(
        p("(a and b) and c"),
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
        ("x(a²=1)", 3, "not a valid python identifier a²"),
        (
            "gpu(a=1 b=2)",
            9,
            "expected right parenthesis; got identifier",
        ),
        ("ünï & x", 5, "unexpected character \"&\""),
    ];
    for (input, column, message) in cases {
        assert_eq!(err(input), (*column, (*message).to_string()), "{input}");
    }
}

#[test]
fn the_pointer_sits_under_the_column() {
    assert_eq!(SyntaxError::pointer("a & b", 3), "    a & b\n      ^");
    let long = format!("{}x{}", "a".repeat(1000), "b".repeat(1000));
    let shown = SyntaxError::pointer(&long, 1001);
    let expected_line = format!("    ...{}x{}...", "a".repeat(40), "b".repeat(39));
    assert_eq!(shown, format!("{expected_line}\n    {}^", " ".repeat(43)));
    let start = SyntaxError::pointer(&long, 1);
    assert!(
        start.starts_with(&format!("    a{}", "a".repeat(39))),
        "{start}"
    );
    assert!(start.ends_with("...\n    ^"), "{start}");
}

#[test]
fn printing_uses_the_fewest_parentheses() {
    for s in [
        "a or b and c",
        "(a or b) and c",
        "not (a or b)",
        "not not a",
        "a and (b and c)",
        "(a and b) and c",
        "a or b or (c or d) or e",
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
        1 => Value::Int(i64::try_from(rng.below(2000)).unwrap() - 1000),
        2 if rng.below(3) == 0 => Value::BigInt("-99999999999999999999999".into()),
        2 => Value::Bool(rng.below(2) == 0),
        3 => Value::None,
        _ => Value::Int(i64::MIN),
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
    let operands = |rng: &mut Rng| {
        (0..2 + rng.below(3))
            .map(|_| random_expr(rng, depth - 1))
            .collect()
    };
    match rng.below(3) {
        0 => not(random_expr(rng, depth - 1)),
        1 => Expr::And(operands(rng)),
        _ => Expr::Or(operands(rng)),
    }
}

/// The reference semantics, written independently of `eval`.
fn truth(e: &Expr, env: &dyn Fn(&str) -> bool) -> bool {
    match e {
        Expr::Empty => false,
        Expr::Name { name, .. } => env(name),
        Expr::Not(a) => !truth(a, env),
        Expr::And(all) => all.iter().fold(true, |t, a| t & truth(a, env)),
        Expr::Or(all) => all.iter().fold(false, |t, a| t | truth(a, env)),
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

#[test]
fn long_chains_are_flat_and_deep_nesting_is_refused() {
    // 25,000 terms once made a tree 25,000 deep: a stack overflow in
    // parsing, printing, evaluating and dropping it.
    let long = vec!["a"; 25_000].join(" and ");
    let e = p(&long);
    let Expr::And(operands) = &e else { panic!() };
    assert_eq!(operands.len(), 25_000);
    assert!(e.eval(&mut |_, _| true));
    assert_eq!(e.to_string(), long);
    let mixed = vec!["a or b and c"; 10_000].join(" or ");
    assert_eq!(p(&mixed).to_string(), mixed);

    let limit = |s: &str| {
        let e = parse(s).expect_err("too deep");
        assert!(e.message.contains("nests deeper than 200 levels"), "{e}");
        e.column
    };
    let parens = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(limit(&parens(10_000)), 201);
    assert_eq!(limit(&"not ".repeat(20_000)), 801);
    assert_eq!(limit(&format!("{}a", "not (".repeat(101))), 501);
    assert_eq!(p(&parens(200)), name("a"));
    let nots = format!("{}a", "not ".repeat(200));
    assert_eq!(p(&nots).to_string(), nots);
    // Unbalanced input at any depth is a syntax error, not a crash.
    assert!(parse(&"(".repeat(100_000)).is_err());
    assert!(parse(&")".repeat(100_000)).is_err());
}

#[test]
fn integers_are_pythons_unbounded_and_in_any_script() {
    let value = |s: &str| {
        let Expr::Name { kwargs, .. } = p(&format!("m(v={s})")) else {
            panic!()
        };
        kwargs[0].1.clone()
    };
    assert_eq!(value("9223372036854775807"), Value::Int(i64::MAX));
    assert_eq!(value("-9223372036854775808"), Value::Int(i64::MIN));
    assert_eq!(
        value("9223372036854775808"),
        Value::BigInt("9223372036854775808".into())
    );
    assert_eq!(
        value("-000099999999999999999999"),
        Value::BigInt("-99999999999999999999".into())
    );
    assert_eq!(value("007"), Value::Int(7));
    assert_eq!(value("-0"), Value::Int(0));
    // int() reads any decimal digit: Arabic-Indic, fullwidth, math bold.
    assert_eq!(value("\u{663}\u{661}"), Value::Int(31));
    assert_eq!(value("\u{ff11}\u{ff12}"), Value::Int(12));
    assert_eq!(value("\u{1d7d7}\u{1d7ce}"), Value::Int(90));
    assert_eq!(value("\u{1d7ff}"), Value::Int(9));
    // isdigit() but not int(): pytest fails with a traceback; an error here.
    assert_eq!(
        err("m(v=\u{b2})"),
        (5, "unexpected character/s \"\u{b2}\"".into())
    );
    let big = "m(v=-123456789012345678901234567890)";
    assert_eq!(p(big).to_string(), big);
}

#[test]
fn identifiers_take_what_pythons_word_class_takes() {
    // Letters and numbers of any script, as Python's \w.
    assert_eq!(p("\u{3b1}\u{2167}\u{bd}"), name("\u{3b1}\u{2167}\u{bd}"));
    // Marks are not \w, even those Rust counts as alphabetic: a
    // Devanagari vowel sign, a combining acute, a circled letter.
    for (text, column, c) in [
        ("\u{915}\u{93f}", 2, '\u{93f}'),
        ("e\u{301}", 2, '\u{301}'),
        ("ok and \u{24b6}", 8, '\u{24b6}'),
        ("a\u{345}", 2, '\u{345}'),
    ] {
        assert_eq!(
            err(text),
            (column, format!("unexpected character \"{c}\"")),
            "{text:?}"
        );
    }
}

mod properties {
    use super::super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            "[a-z \"]{0,6}".prop_map(Value::Str),
            "[a-z ']{0,6}".prop_map(Value::Str),
            any::<i64>().prop_map(Value::Int),
            "-?[1-9][0-9]{19,30}".prop_map(|s| Value::BigInt(s.clone())),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::None),
        ]
    }

    fn name() -> impl Strategy<Value = Expr> {
        let ident = "[a-zA-Z_\u{e9}\u{3b1}][a-zA-Z0-9_:+.\\[\\]/\u{e9}-]{0,8}"
            .prop_filter("not a keyword", |s| {
                !matches!(s.as_str(), "and" | "or" | "not")
            });
        let kwargs = prop::collection::btree_map("k[a-z0-9_]{0,4}", value(), 0..3)
            .prop_map(|m| m.into_iter().collect::<Vec<_>>());
        (ident, kwargs).prop_map(|(name, kwargs)| Expr::Name { name, kwargs })
    }

    /// Trees as the parser builds them: chains of two or more, no chain
    /// directly inside a chain of the same operator written without
    /// parentheses (Display adds them).
    fn tree() -> impl Strategy<Value = Expr> {
        name().prop_recursive(6, 64, 5, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                prop::collection::vec(inner.clone(), 2..5).prop_map(Expr::And),
                prop::collection::vec(inner, 2..5).prop_map(Expr::Or),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn printing_then_parsing_gives_the_same_tree(e in tree()) {
            let text = e.to_string();
            prop_assert_eq!(parse(&text).map(|p| p.expr), Ok(e), "{}", text);
        }

        #[test]
        fn arbitrary_text_never_panics_and_errors_point_inside(s in "\\PC{0,80}") {
            if let Err(e) = parse(&s) {
                prop_assert!(e.column >= 1 && e.column <= s.chars().count() + 1, "{:?}: {}", s, e);
            }
        }

        #[test]
        fn grammar_soup_never_panics(parts in prop::collection::vec(
            prop::sample::select(vec!["a", "not", "and", "or", "(", ")", "m(k=1)", "m(k=", "'", ",", "=", " "]),
            0..60,
        )) {
            let s = parts.join(" ");
            let _ = parse(&s).map(|p| (p.expr.to_string(), p.expr.eval(&mut |_, _| true)));
        }

        #[test]
        fn deep_input_is_parsed_or_refused_at_the_limit(
            levels in prop::collection::vec(prop::bool::ANY, 0..600),
            chain in 1usize..3000,
        ) {
            // Parentheses and `not`s in any order, around a long chain.
            let mut text = String::new();
            for paren in &levels {
                text.push_str(if *paren { "(" } else { "not " });
            }
            text.push_str(&vec!["a"; chain].join(" or "));
            for paren in levels.iter().rev() {
                if *paren {
                    text.push(')');
                }
            }
            match parse(&text) {
                Ok(p) => {
                    prop_assert!(levels.len() <= MAX_NESTING);
                    prop_assert!(p.expr.eval(&mut |_, _| true) || levels.iter().any(|p| !p));
                    prop_assert_eq!(parse(&p.expr.to_string()).map(|q| q.expr), Ok(p.expr));
                }
                Err(e) => {
                    prop_assert!(levels.len() > MAX_NESTING);
                    prop_assert!(e.message.contains("nests deeper than"), "{}", e);
                }
            }
        }
    }
}

fn fully_parenthesized(e: &Expr) -> String {
    match e {
        Expr::Empty | Expr::Name { .. } => e.to_string(),
        Expr::Not(a) => format!("(not {})", fully_parenthesized(a)),
        Expr::And(all) | Expr::Or(all) => {
            let word = if matches!(e, Expr::And(_)) {
                " and "
            } else {
                " or "
            };
            let parts: Vec<_> = all.iter().map(fully_parenthesized).collect();
            format!("({})", parts.join(word))
        }
    }
}
