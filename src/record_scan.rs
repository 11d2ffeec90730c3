//! A fast path for the common line: a test record with plain strings and no
//! metrics. It walks the JSON object once, keeps the fields the history
//! needs and skips (while checking) the rest. Anything unusual — an escape
//! in a kept string, metrics, a repeated field, a value of an unexpected
//! type, bad JSON — answers None, and the line goes through the full
//! `serde_json` parser, which reads it or says exactly what is wrong. So
//! the fast path changes speed, never results.

use std::borrow::Cow;

use crate::history_read::TestLine;

const MAX_DEPTH: usize = 64;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Bytes of `w` that are zero, flagged by their high bit; the lowest flag is exact.
#[inline]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w & HIGHS
}

#[inline]
fn word(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// The first `needle` in `hay`, eight bytes at a time.
pub fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    let pattern = ONES * u64::from(needle);
    let mut i = 0;
    while i + 8 <= hay.len() {
        let hit = zero_bytes(word(hay, i) ^ pattern);
        if hit != 0 {
            return Some(i + (hit.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    hay[i..].iter().position(|&c| c == needle).map(|p| i + p)
}

/// The first byte of a JSON string that is not plain: a quote, a backslash
/// or a control character.
fn find_special(hay: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 8 <= hay.len() {
        let w = word(hay, i);
        let hit = zero_bytes(w ^ (ONES * u64::from(b'"')))
            | zero_bytes(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS);
        if hit != 0 {
            return Some(i + (hit.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    hay[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while self.at < self.b.len() && matches!(self.b[self.at], b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek()? == c).then(|| self.at += 1)
    }

    /// A string without escapes, as bytes (the cursor is on its opening quote).
    fn plain_bytes(&mut self) -> Option<&'a [u8]> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.at + 1;
        let len = find_special(&self.b[start..])?;
        if self.b[start + len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        Some(&self.b[start..start + len])
    }

    /// A string without escapes, borrowed.
    fn plain_string(&mut self) -> Option<&'a str> {
        let bytes = self.plain_bytes()?;
        // SAFETY: `test_line` checked the whole line is UTF-8 before any
        // cursor exists, and the slice starts and ends next to an ASCII
        // quote, so it is whole characters.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    }

    fn skip_string(&mut self) -> Option<()> {
        self.at += 1;
        loop {
            self.at += find_special(&self.b[self.at..])?;
            let c = self.b[self.at];
            self.at += 1;
            match c {
                b'"' => return Some(()),
                b'\\' => {
                    let e = *self.b.get(self.at)?;
                    self.at += 1;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.b.get(self.at..self.at + 4)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.at += 4;
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => {}
            }
        }
    }

    /// A JSON number's text (strict grammar), the cursor after it.
    fn number(&mut self) -> Option<&'a str> {
        let start = self.at;
        let digits = |s: &mut Self| {
            let n = s.b[s.at..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            s.at += n;
            n
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => {
                digits(self);
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        std::str::from_utf8(&self.b[start..self.at]).ok()
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        (self.b.get(self.at..self.at + word.len())? == word).then(|| self.at += word.len())
    }

    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => {
                self.at += 1;
                self.ws();
                if self.peek()? == b'}' {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    if self.peek()? != b'"' {
                        return None;
                    }
                    self.skip_string()?;
                    self.eat(b':')?;
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.at += 1,
                        b'}' => {
                            self.at += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.at += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.at += 1,
                        b']' => {
                            self.at += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(|_| ()),
        }
    }

    fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal(b"null").is_some()
    }

    /// `Some(None)` for null: the outer None means "use the full parser".
    #[allow(clippy::option_option)]
    fn opt_string(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            Some(None)
        } else {
            self.plain_string().map(Some)
        }
    }

    fn f64(&mut self) -> Option<f64> {
        let v: f64 = self.number()?.parse().ok()?;
        v.is_finite().then_some(v)
    }
}

/// A key of up to 15 bytes as one integer (length in the top byte); longer
/// keys, which no kept field has, all pack to one value that matches none.
const fn packed(key: &[u8]) -> u128 {
    if key.len() > 15 {
        return u128::MAX;
    }
    let mut v = (key.len() as u128) << 120;
    let mut i = 0;
    while i < key.len() {
        v |= (key[i] as u128) << (8 * i);
        i += 1;
    }
    v
}

/// Fields seen, to refuse repeats (serde refuses them too).
#[derive(Default)]
struct Seen(u32);

impl Seen {
    fn first(&mut self, bit: u32) -> Option<()> {
        let fresh = self.0 & (1 << bit) == 0;
        self.0 |= 1 << bit;
        fresh.then_some(())
    }
}

/// A test record read the fast way, or None to use the full parser.
// One match arm per kept field.
#[allow(clippy::too_many_lines)]
pub fn test_line(line: &[u8]) -> Option<TestLine<'_>> {
    if !line.is_ascii() {
        std::str::from_utf8(line).ok()?;
    }
    let mut c = Cursor { b: line, at: 0 };
    c.eat(b'{')?;
    let mut seen = Seen::default();
    let (mut record, mut run_id, mut nodeid, mut outcome) = (None, None, None, None);
    let (mut stage, mut owner, mut finished) = (None, None, None);
    let (mut duration, mut gating, mut peak) = (None, None, None);
    c.ws();
    if c.peek()? == b'}' {
        return None;
    }
    loop {
        c.ws();
        let key = c.plain_bytes()?;
        c.eat(b':')?;
        c.ws();
        // Keys as one integer each: no byte-by-byte comparison per key.
        match packed(key) {
            k if k == const { packed(b"record") } => {
                seen.first(0)?;
                record = Some(c.plain_string()?);
            }
            k if k == const { packed(b"run_id") } => {
                seen.first(1)?;
                run_id = Some(c.plain_string()?);
            }
            k if k == const { packed(b"nodeid") } => {
                seen.first(2)?;
                nodeid = Some(c.plain_string()?);
            }
            k if k == const { packed(b"outcome") } => {
                seen.first(3)?;
                outcome = Some(c.plain_string()?);
            }
            k if k == const { packed(b"stage") } => {
                seen.first(4)?;
                stage = c.opt_string()?;
            }
            k if k == const { packed(b"owner") } => {
                seen.first(5)?;
                owner = c.opt_string()?;
            }
            k if k == const { packed(b"finished_at") } => {
                seen.first(6)?;
                finished = c.opt_string()?;
            }
            k if k == const { packed(b"duration_s") } => {
                seen.first(7)?;
                duration = if c.null() { None } else { Some(c.f64()?) };
            }
            k if k == const { packed(b"gating") } => {
                seen.first(8)?;
                gating = if c.null() {
                    None
                } else if c.literal(b"true").is_some() {
                    Some(true)
                } else {
                    c.literal(b"false")?;
                    Some(false)
                };
            }
            k if k == const { packed(b"gpu_peak_mib") } => {
                seen.first(9)?;
                peak = if c.null() { None } else { Some(c.f64()?) };
            }
            k if k == const { packed(b"metrics") } => {
                seen.first(10)?;
                // Only the empty list here; metrics go through serde.
                if !c.null() {
                    c.eat(b'[')?;
                    c.eat(b']')?;
                }
            }
            // Kept by serde for other record kinds: only a test's values are safe to skip.
            k if [
                const { packed(b"pipeline") },
                const { packed(b"gpus") },
                const { packed(b"git") },
                const { packed(b"host") },
                const { packed(b"started_at") },
                const { packed(b"exit_status") },
                const { packed(b"wall_s") },
            ]
            .contains(&k) =>
            {
                return None
            }
            _ => c.skip_value(0)?,
        }
        c.ws();
        match c.peek()? {
            b',' => c.at += 1,
            b'}' => {
                c.at += 1;
                break;
            }
            _ => return None,
        }
    }
    c.ws();
    if c.at != line.len() || record? != "test" {
        return None;
    }
    let finished_at = match finished {
        Some(t) => Some(crate::timestamp::parse(t)?),
        None => None,
    };
    Some(TestLine {
        run_id: Cow::Borrowed(run_id?),
        nodeid: Cow::Borrowed(nodeid?),
        outcome: Cow::Borrowed(outcome?),
        duration_s: duration.unwrap_or(0.0),
        stage: stage.map(Cow::Borrowed),
        gating: gating.unwrap_or(true),
        owner: owner.map(Cow::Borrowed),
        gpu_peak_mib: peak,
        metrics: Vec::new(),
        finished_at,
    })
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // values are copied, not computed
mod tests {
    use super::*;
    use crate::history_read::{parse_line, Parsed};

    const LINE: &str = r#"{"record":"test","schema":1,"run_id":"r1","nodeid":"t.py::a[x-1]","test_id":"ab","outcome":"passed","attempts":[{"outcome":"passed","setup_s":0.01,"call_s":1.5e0,"teardown_s":0}],"duration_s":1.52,"markers":{"lifecycle":["nightly"],"other":[]},"reason":null,"gpus_used":1,"gpu_peak_mib":2048.5,"worker":"gw0","flow_id":"f","stage":"e2e","gating":false,"owner":null,"metrics":[],"finished_at":"2026-03-01T12:00:00Z"}"#;

    #[test]
    fn reads_what_serde_reads() {
        let fast = test_line(LINE.as_bytes()).unwrap();
        let Ok(Some(Parsed::Test(slow))) = parse_line(LINE.as_bytes()) else {
            panic!()
        };
        assert_eq!(fast.run_id, slow.run_id);
        assert_eq!(fast.nodeid, "t.py::a[x-1]");
        assert_eq!(fast.outcome, slow.outcome);
        assert_eq!(fast.duration_s, slow.duration_s);
        assert_eq!(fast.stage, slow.stage);
        assert_eq!(fast.owner, None);
        assert!(!fast.gating);
        assert_eq!(fast.gpu_peak_mib, Some(2048.5));
        assert_eq!(fast.finished_at, slow.finished_at);
    }

    #[test]
    fn hands_anything_unusual_to_serde() {
        let cases = [
            LINE.replace("t.py::a[x-1]", "t.py::a[\\u00e9]"),
            LINE.replace(r#""metrics":[]"#, r#""metrics":[{"name":"x","value":1}]"#),
            LINE.replace(r#""gating":false"#, r#""gating":false,"gating":true"#),
            LINE.replace(r#""duration_s":1.52"#, r#""duration_s":"1.52""#),
            LINE.replace(r#""duration_s":1.52"#, r#""duration_s":01.52"#),
            LINE.replace(r#""duration_s":1.52"#, r#""duration_s":1e999"#),
            LINE.replace(
                r#""markers":{"lifecycle":["nightly"],"other":[]}"#,
                r#""markers":{"a":[1,2}"#,
            ),
            LINE.replace(r#""reason":null"#, r#""reason":nul"#),
            LINE.replace(r#""worker":"gw0""#, "\"worker\":\"g\tw\""),
            LINE.replace(r#""record":"test""#, r#""record":"run_end""#),
            LINE.replace("2026-03-01T12:00:00Z", "noon"),
            LINE[..LINE.len() - 1].to_string(),
            format!("{LINE} x"),
            LINE.replace(r#""run_id":"r1","#, ""),
        ];
        for case in &cases {
            assert!(test_line(case.as_bytes()).is_none(), "{case}");
        }
        assert!(test_line(b"{}").is_none());
        assert!(test_line(b"[]").is_none());
        assert!(test_line(&[b'{', 0xff, b'}']).is_none());
    }

    #[test]
    fn finds_bytes_eight_at_a_time() {
        let text = b"0123456789abcdef\"tail\\";
        for n in 0..text.len() {
            let hay = &text[n..];
            assert_eq!(
                find_byte(hay, b'"'),
                hay.iter().position(|&c| c == b'"'),
                "{n}"
            );
            assert_eq!(
                find_special(hay),
                hay.iter().position(|&c| c == b'"' || c == b'\\'),
                "{n}"
            );
        }
        assert_eq!(find_special(b"abcdefgh\x01"), Some(8));
        assert_eq!(find_special(b"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x"), None);
        assert_eq!(find_byte(b"abc", b'\n'), None);
    }

    #[test]
    fn skips_nested_values_and_escapes_in_unkept_fields() {
        let line = LINE.replace(r#""reason":null"#, r#""reason":"a \"quoted\" \\ \u00e9 reason","deep":[[{"x":[true,false,null,-0.5E+3]}]]"#);
        let t = test_line(line.as_bytes()).unwrap();
        assert_eq!(t.nodeid, "t.py::a[x-1]");
        let Ok(Some(Parsed::Test(_))) = parse_line(line.as_bytes()) else {
            panic!("serde agrees it is valid")
        };
    }
}
