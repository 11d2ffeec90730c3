//! The fast scan against `serde_json`: both read every line the same.

use super::*;
use crate::history::read::{parse_line, Parsed};

const LINE: &str = r#"{"record":"test","schema":1,"run_id":"r1","nodeid":"t.py::a[x-1]","test_id":"ab","outcome":"passed","attempts":[{"outcome":"passed","setup_s":0.01,"call_s":1.5e0,"teardown_s":0}],"duration_s":1.52,"markers":{"lifecycle":["nightly"],"other":[]},"reason":null,"gpus_used":1,"gpu_peak_mib":2048.5,"worker":"gw0","flow_id":"f","stage":"e2e","gating":false,"owner":null,"metrics":[],"finished_at":"2026-03-01T12:00:00Z"}"#;

/// The fast path's answer equals serde's, field by field.
fn same_as_serde(line: &str) {
    let fast = test_line(line.as_bytes()).unwrap_or_else(|| panic!("fast path: {line}"));
    let Ok(Some(Parsed::Test(slow))) = parse_line(line.as_bytes()) else {
        panic!("serde refuses what the fast path read: {line}")
    };
    assert_eq!(fast.run_id, slow.run_id, "{line}");
    assert_eq!(fast.nodeid, slow.nodeid, "{line}");
    assert_eq!(fast.outcome, slow.outcome, "{line}");
    assert_eq!(
        fast.duration_s.to_bits(),
        slow.duration_s.to_bits(),
        "{line}"
    );
    assert_eq!(fast.stage, slow.stage, "{line}");
    assert_eq!(fast.gating, slow.gating, "{line}");
    assert_eq!(fast.owner, slow.owner, "{line}");
    assert_eq!(
        fast.gpu_peak_mib.map(f64::to_bits),
        slow.gpu_peak_mib.map(f64::to_bits),
        "{line}"
    );
    assert!(slow.metrics.is_empty(), "{line}");
    assert_eq!(fast.finished_at, slow.finished_at, "{line}");
    assert_eq!(fast.gpus_used, slow.gpus_used, "{line}");
    assert_eq!(fast.timeout, slow.timeout, "{line}");
}

#[test]
fn gpus_and_timeouts_read_the_same_on_both_paths() {
    use crate::history::RecordedTimeout;
    let with = |extra: &str| LINE.replace(r#""worker""#, &format!("{extra},\"worker\""));
    let fast = test_line(LINE.as_bytes()).unwrap();
    assert_eq!(fast.gpus_used, Some(1));
    assert_eq!(fast.timeout, RecordedTimeout::Unknown);
    for (extra, timeout) in [
        (r#""timeout_s":null"#, RecordedTimeout::None),
        (r#""timeout_s":0"#, RecordedTimeout::None),
        (r#""timeout_s":120"#, RecordedTimeout::Seconds(120.0)),
        (r#""timeout_s":2.5e1"#, RecordedTimeout::Seconds(25.0)),
    ] {
        let line = with(extra);
        same_as_serde(&line);
        assert_eq!(
            test_line(line.as_bytes()).unwrap().timeout,
            timeout,
            "{line}"
        );
    }
    // Not a whole number of GPUs: unknown on both paths.
    let line = LINE.replace(r#""gpus_used":1"#, r#""gpus_used":1.5"#);
    same_as_serde(&line);
    assert_eq!(test_line(line.as_bytes()).unwrap().gpus_used, None);
    // A string where a number belongs is corrupt, as serde says.
    let line = with(r#""timeout_s":"60""#);
    assert!(test_line(line.as_bytes()).is_none());
    assert!(parse_line(line.as_bytes()).is_err());
}

#[test]
fn reads_what_serde_reads() {
    let fast = test_line(LINE.as_bytes()).unwrap();
    assert_eq!(fast.nodeid, "t.py::a[x-1]");
    assert_eq!(fast.owner, None);
    assert!(!fast.gating);
    assert_eq!(fast.gpu_peak_mib, Some(2048.5));
    same_as_serde(LINE);
    // Whitespace anywhere JSON allows it, but no line feed.
    same_as_serde(&LINE.replace("\":", "\" :\t").replace(",\"", "\r, \""));
    same_as_serde(&format!(" {LINE}\t\r"));
    // Non-ASCII text in kept and skipped strings.
    same_as_serde(&LINE.replace("t.py::a[x-1]", "t.py::a[é-ü]"));
    same_as_serde(&LINE.replace(r#""worker":"gw0""#, r#""worker":"gé0""#));
    same_as_serde(&LINE.replace(r#""stage":"e2e""#, r#""stage":"ünit""#));
}

#[test]
fn hands_anything_unusual_to_serde() {
    let cases = [
        LINE.replace("t.py::a[x-1]", "t.py::a[\\u00e9]"),
        LINE.replace("t.py::a[x-1]", "t.py::a[\\\"]"),
        LINE.replace(r#""metrics":[]"#, r#""metrics":[{"name":"x","value":1}]"#),
        LINE.replace(r#""gating":false"#, r#""gating":false,"gating":true"#),
        LINE.replace(r#""duration_s":1.52"#, r#""duration_s":"1.52""#),
        LINE.replace(r#""duration_s":1.52"#, r#""duration_s":01.52"#),
        LINE.replace(r#""duration_s":1.52"#, r#""duration_s":1e999"#),
        LINE.replace(r#""duration_s":1.52"#, r#""duration_s":1."#),
        LINE.replace(r#""gpus_used":1"#, r#""gpus_used":-"#),
        LINE.replace(r#""gpus_used":1"#, r#""gpus_used":1e"#),
        LINE.replace(r#""gpus_used":1"#, r#""gpus_used":1 2"#),
        LINE.replace(
            r#""markers":{"lifecycle":["nightly"],"other":[]}"#,
            r#""markers":{"a":[1,2}"#,
        ),
        LINE.replace(r#""reason":null"#, r#""reason":nul"#),
        LINE.replace(r#""reason":null"#, r#""reason":"\x""#),
        LINE.replace(r#""reason":null"#, r#""reason":"\u12G4""#),
        LINE.replace(r#""worker":"gw0""#, "\"worker\":\"g\tw\""),
        LINE.replace(r#""record":"test""#, r#""record":"run_end""#),
        LINE.replace(r#""record":"test""#, r#""pipeline":"p","record":"test""#),
        LINE.replace("2026-03-01T12:00:00Z", "noon"),
        LINE[..LINE.len() - 1].to_string(),
        format!("{LINE} x"),
        format!("{LINE},"),
        LINE.replace(r#""run_id":"r1","#, ""),
        LINE.replace(r#""run_id":"r1","#, r#""run_id":"r1",,"#),
        LINE.replace(r#""schema":1"#, r#""sch\u0065ma":1"#),
        LINE.replace(r#""schema":1"#, r"schema:1"),
    ];
    for case in &cases {
        assert!(test_line(case.as_bytes()).is_none(), "{case}");
    }
    assert!(test_line(b"{}").is_none());
    assert!(test_line(b"[]").is_none());
    assert!(test_line(b"").is_none());
    assert!(test_line(&[b'{', 0xff, b'}']).is_none());
    // Not UTF-8 inside a skipped string: found when the record is complete.
    let bad = LINE.replace("gw0", "g\u{e9}0").into_bytes();
    let at = bad.iter().position(|&c| c == 0xc3).unwrap();
    let mut bad = bad;
    bad[at + 1] = b'x';
    assert!(test_line(&bad).is_none());
    // serde does not check the UTF-8 of values it skips: the line is still read.
    assert!(matches!(parse_line(&bad), Ok(Some(Parsed::Test(_)))));
}

#[test]
fn skips_nested_values_and_escapes_in_unkept_fields() {
    let line = LINE.replace(
        r#""reason":null"#,
        r#""reason":"a \"quoted\" \\ \/ \b\f\n\r\t \u00e9 reason","deep":[[{"x":[true,false,null,-0.5E+3,0,1e-2,{}],"y":[]}]]"#,
    );
    same_as_serde(&line);
    // Deeper than the fast path goes: serde reads it.
    let deep = format!("{}1{}", "[".repeat(70), "]".repeat(70));
    let line = LINE.replace(r#""reason":null"#, &format!(r#""reason":{deep}"#));
    assert!(test_line(line.as_bytes()).is_none());
    assert!(matches!(
        parse_line(line.as_bytes()),
        Ok(Some(Parsed::Test(_)))
    ));
    let shallow = format!("{}1{}", "[".repeat(60), "]".repeat(60));
    same_as_serde(&LINE.replace(r#""reason":null"#, &format!(r#""reason":{shallow}"#)));
}

#[test]
fn finds_where_each_line_ends() {
    let text = format!("{LINE}\n{LINE}\r\n\n{}\n{LINE}", &LINE[..100]);
    let bytes = text.as_bytes();
    let mut scanner = Scanner::default();
    let (first, end) = scanner.test_record(bytes).unwrap();
    assert_eq!(end, LINE.len());
    assert_eq!(first.nodeid, "t.py::a[x-1]");
    let rest = &bytes[end + 1..];
    let (_, end) = scanner.test_record(rest).unwrap();
    assert_eq!(end, LINE.len() + 1, "the carriage return is whitespace");
    assert_eq!(&rest[end - 1..=end], b"\r\n");
    let rest = &rest[end + 1..];
    assert!(rest.starts_with(b"\n"));
    assert!(scanner.test_record(rest).is_none(), "a blank line");
    // A truncated line is refused, never completed from the next line.
    let rest = &rest[1..];
    assert!(scanner.test_record(rest).is_none());
    let (index_end, _) = scanner.index(rest);
    assert_eq!(index_end, 100);
    let rest = &rest[101..];
    let (_, end) = scanner.test_record(rest).unwrap();
    assert_eq!(end, rest.len(), "the last line needs no line feed");
}

#[test]
fn indexes_quotes_and_finds_unclean_lines() {
    // Lengths around 16- and 64-byte blocks; a quote in every position.
    for len in [0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200] {
        for q in 0..len {
            let mut line = vec![b'a'; len];
            line[q] = b'"';
            line[len - 1 - q / 2] = b'"';
            let mut bytes = line.clone();
            bytes.extend_from_slice(b"\n\"after\"");
            for b in [&line[..], &bytes[..]] {
                let mut s = Scanner::default();
                assert_eq!(s.index(b), (len, true), "{len} {q}");
                let c = Line {
                    b: &line,
                    quotes: &s.quotes,
                    clean: true,
                };
                let want: Vec<usize> = (0..len).filter(|&i| line[i] == b'"').collect();
                let mut got = Vec::new();
                let mut at = 0;
                while let Some(p) = c.next_quote(at) {
                    got.push(p);
                    at = p + 1;
                }
                assert_eq!(got, want, "{len} {q}");
            }
        }
    }
    for bad in [b'\\', b'\t', b'\r', 0x01, 0x80, 0xff] {
        let mut line = vec![b'a'; 100];
        line[70] = bad;
        line.extend_from_slice(b"\nb\n");
        assert_eq!(Scanner::default().index(&line), (100, false), "{bad}");
    }
}

#[test]
fn finds_special_bytes_sixteen_and_eight_at_a_time() {
    let naive = |hay: &[u8], at: usize| {
        hay[at..]
            .iter()
            .position(|&c| is_special(c))
            .map(|p| at + p)
    };
    let text =
        b"0123456789abcdef0123456789\"tail\\x\x01yz\xc3\xa9end of it all, no specials at all";
    for start in 0..text.len() {
        for at in 0..=text.len() - start {
            let hay = &text[start..];
            assert_eq!(find_special(hay, at), naive(hay, at), "{start} {at}");
            assert_eq!(find_special_swar(hay, at), naive(hay, at), "{start} {at}");
        }
    }
    for c in 0..=255u8 {
        let mut block = [b'x'; 16];
        block[c as usize % 16] = c;
        assert_eq!(block16_of(&block), block16_portable(&block), "{c}");
        assert_eq!(
            find_special(
                &[b'a'; 20]
                    .iter()
                    .chain([c].iter())
                    .copied()
                    .collect::<Vec<_>>(),
                0
            ),
            is_special(c).then_some(20),
            "{c}"
        );
    }
}

#[test]
fn exact_decimals_are_what_parse_gives() {
    let cases = [
        "0",
        "-0",
        "-0.0",
        "1.52",
        "2048.5",
        "0.1",
        "0.3",
        "1.6776",
        "29.99999",
        "123456789.123456",
        "9007199254740992",
        "9007199254740993",
        "0.0000000000000000000001",
        "1.00000000000000000000001",
        "-17.25",
        "18446744073709551616",
        "3.141592653589793",
    ];
    for text in cases {
        let want: f64 = text.parse().unwrap();
        if let Some(got) = exact_decimal(text.as_bytes()) {
            assert_eq!(got.to_bits(), want.to_bits(), "{text}");
        }
        // Values no duration takes are read as a GPU peak.
        let field = if crate::history::read::seconds_ok(want) {
            "1.52"
        } else {
            "2048.5"
        };
        same_as_serde(&LINE.replace(field, text));
    }
    assert_eq!(exact_decimal(b"9007199254740993"), None);
    assert_eq!(exact_decimal(b"1e5"), None);
    assert_eq!(exact_decimal(b"0.00000000000000000000001"), None);
}

/// Lines changed one byte at a time: whatever the fast path reads, serde
/// reads the same; a cut line is never read.
#[test]
fn mutated_lines_agree_with_serde() {
    let line = LINE.replace(
        r#""reason":null"#,
        r#""reason":"a \"b\" \u00e9 é","x":[{"y":-1.5e3}]"#,
    );
    let bytes = line.as_bytes();
    for cut in 0..bytes.len() {
        assert!(test_line(&bytes[..cut]).is_none(), "cut at {cut}");
    }
    let alphabet = b"\"\\{}[]:,0-.eE tfnul\t\n\r\x01\xc3\xa9x";
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % n as u64).unwrap()
    };
    let mut read = 0;
    for _ in 0..20_000 {
        let mut m = bytes.to_vec();
        let at = next(m.len());
        match next(3) {
            0 => {
                m.remove(at);
            }
            1 => m.insert(at, alphabet[next(alphabet.len())]),
            _ => m[at] = alphabet[next(alphabet.len())],
        }
        if let Some(fast) = test_line(&m) {
            read += 1;
            let text = std::str::from_utf8(&m).expect("the fast path read only UTF-8");
            same_as_serde(text);
            assert!(!fast.nodeid.is_empty() || !text.contains("t.py"));
        }
    }
    assert!(read > 1000, "{read} mutated lines still read fast");
}

/// Long decimals read the same whichever path reads their line: serde
/// (with `float_roundtrip`) rounds correctly, as `str::parse` and the
/// fast path do. Without it about one in ten of these was a unit off.
#[test]
fn long_decimals_read_the_same_on_both_paths() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..5_000 {
        let text = format!(
            "{}.{:019}",
            next() % 100_000,
            next() % 10_000_000_000_000_000_000
        );
        let want: f64 = text.parse().unwrap();
        let line = LINE.replace("1.52", &text);
        same_as_serde(&line);
        // The same line with an escape in its node id goes through serde.
        let escaped = line.replace("t.py::a[x-1]", "t.py::a[\\u0078-1]");
        assert!(test_line(escaped.as_bytes()).is_none());
        let Ok(Some(Parsed::Test(t))) = parse_line(escaped.as_bytes()) else {
            panic!("{escaped}")
        };
        assert_eq!(t.duration_s.to_bits(), want.to_bits(), "{text}");
    }
}

#[test]
fn durations_out_of_range_are_corrupt_on_both_paths() {
    for bad in ["-1", "-0.5", "1e308", "1000000000.5", "-1e-300"] {
        let line = LINE.replace("1.52", bad);
        assert!(test_line(line.as_bytes()).is_none(), "{bad}");
        let err = parse_line(line.as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{bad}"));
        assert!(err.contains("`duration_s` is"), "{err}");
    }
    for good in ["0", "-0", "0.0", "1000000000", "1e9", "3e-7"] {
        same_as_serde(&LINE.replace("1.52", good));
    }
    let end = r#"{"record":"run_end","run_id":"r","exit_status":0,"wall_s":-3}"#;
    assert!(parse_line(end.as_bytes())
        .err()
        .unwrap()
        .contains("`wall_s` is -3"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A JSON string's text: plain, escaped, non-ASCII or control bytes.
    fn json_string() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                6 => prop::sample::select(vec!["a", "t.py::x", "[1-2]", " ", "/", "::"]),
                1 => prop::sample::select(vec!["\\\"", "\\\\", "\\/", "\\n", "\\u00e9", "\\ud83d\\ude00", "\\u0000", "\\ud800"]),
                1 => prop::sample::select(vec!["é", "ü", "日本", "\u{7f}", "\t", "\"", "\\", "\\x"]),
            ],
            0..6,
        )
        .prop_map(|parts| format!("\"{}\"", parts.concat()))
    }

    /// A JSON number's text, long decimals and exponents included, or
    /// something near one.
    fn json_number() -> impl Strategy<Value = String> {
        prop_oneof![
            (any::<u32>(), 0..25usize, any::<u64>()).prop_map(|(i, n, f)| {
                let digits = format!("{f:020}{f:020}");
                if n == 0 {
                    i.to_string()
                } else {
                    format!("{i}.{}", &digits[..n])
                }
            }),
            (any::<u16>(), -330i32..330).prop_map(|(m, e)| format!("{m}e{e}")),
            any::<f64>().prop_map(|v| format!("{v}")),
            any::<f64>().prop_map(|v| format!("{v:e}")),
            prop::sample::select(vec![
                "-0", "01", "1.", ".5", "-", "1e", "1E+2", "NaN", "Infinity", "null", "\"1.5\"",
                "true"
            ])
            .prop_map(String::from),
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            json_string(),
            json_number(),
            prop::sample::select(vec!["true", "false", "null", "nul", "[]", "{}"])
                .prop_map(String::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((json_string(), inner), 0..4).prop_map(|v| {
                    let fields: Vec<String> =
                        v.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    /// A test record's line: the kept fields with values of every type,
    /// in any order, some left out or repeated, unknown fields between.
    fn test_record() -> impl Strategy<Value = String> {
        let kept = prop::sample::select(vec![
            "record",
            "run_id",
            "nodeid",
            "outcome",
            "stage",
            "owner",
            "finished_at",
            "duration_s",
            "gating",
            "gpu_peak_mib",
            "metrics",
            "schema",
            "worker",
        ]);
        let field = (
            kept,
            prop_oneof![
                3 => json_string(),
                3 => json_number(),
                1 => Just("\"test\"".to_string()),
                1 => Just("\"2026-03-01T12:00:00.25+01:00\"".to_string()),
                1 => value(),
            ],
        );
        let ws = prop::sample::select(vec!["", " ", "\t", "\r", "  "]);
        (
            prop::collection::vec((field, ws.clone()), 0..12),
            prop::bool::ANY,
            ws,
        )
            .prop_map(|(fields, base, tail)| {
                let mut parts: Vec<String> = Vec::new();
                if base {
                    parts.extend(
                        [
                            "\"record\":\"test\"",
                            "\"run_id\":\"r\"",
                            "\"nodeid\":\"t.py::a\"",
                            "\"outcome\":\"passed\"",
                        ]
                        .map(String::from),
                    );
                }
                for ((key, v), ws) in fields {
                    parts.push(format!("{ws}\"{key}\"{ws}:{ws}{v}"));
                }
                format!("{{{}}}{tail}", parts.join(","))
            })
    }

    /// Both paths read a line the same: the fast path never reads what
    /// serde refuses or reads another value, and neither panics.
    fn agree(line: &[u8]) {
        let full = parse_line(line);
        if let Some(fast) = test_line(line) {
            let Ok(Some(Parsed::Test(slow))) = full else {
                panic!(
                    "fast read, serde refused: {}",
                    String::from_utf8_lossy(line)
                )
            };
            assert_eq!(fast.run_id, slow.run_id);
            assert_eq!(fast.nodeid, slow.nodeid);
            assert_eq!(fast.outcome, slow.outcome);
            assert_eq!(fast.duration_s.to_bits(), slow.duration_s.to_bits());
            assert_eq!(fast.stage, slow.stage);
            assert_eq!(fast.gating, slow.gating);
            assert_eq!(fast.owner, slow.owner);
            assert_eq!(
                fast.gpu_peak_mib.map(f64::to_bits),
                slow.gpu_peak_mib.map(f64::to_bits)
            );
            assert_eq!(
                fast.finished_at.map(f64::to_bits),
                slow.finished_at.map(f64::to_bits)
            );
            assert!(slow.metrics.is_empty());
        }
        // The chunk reader (fast scan, then serde) takes it without
        // panic, every line counted once, each as one thing at most.
        let chunk = crate::history::chunk::parse_chunk(0, line);
        let feeds = memchr::memchr_iter(b'\n', line).count();
        let lines = feeds + usize::from(!line.is_empty() && !line.ends_with(b"\n"));
        assert_eq!(chunk.lines, lines);
        let kept = chunk.tests.len() + chunk.parsed.len() + chunk.unknown + chunk.corrupt.len();
        assert!(kept <= lines);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

        #[test]
        fn generated_test_records_read_the_same_both_ways(line in test_record()) {
            agree(line.as_bytes());
        }

        #[test]
        fn the_known_line_with_a_generated_duration(n in json_number()) {
            agree(LINE.replace("1.52", &n).as_bytes());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            agree(&bytes);
        }

        #[test]
        fn the_known_line_with_bytes_changed(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)
        ) {
            let mut line = LINE.as_bytes().to_vec();
            for (at, b) in edits {
                let i = at.index(line.len());
                line[i] = b;
            }
            agree(&line);
        }
    }
}
