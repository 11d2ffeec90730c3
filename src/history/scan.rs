//! A fast path for the common line: a test record with plain strings and no
//! metrics. It walks the JSON object once, keeps the fields the history
//! needs and skips (while checking) the rest. Anything unusual — an escape
//! in a kept string, metrics, a repeated field, a value of an unexpected
//! type, bad JSON — answers None, and the line goes through the full
//! `serde_json` parser, which reads it or says exactly what is wrong. So
//! the fast path changes speed, never results.
//!
//! The scan starts at a line's first byte without knowing where the line
//! ends. One pass over the line, 64 bytes at a time (SSE2 compares on
//! x86-64, a byte at a time elsewhere), finds its line feed and every quote
//! as bits, and notes whether the line is clean: no backslash, control
//! character or non-ASCII byte before its end. In a clean line every string
//! ends at the next quote bit, so no string is scanned again; the walk over
//! the tokens still checks every value's grammar. A line that is not clean
//! (escapes, tabs, non-ASCII names) is walked the careful way, each string
//! searched for the bytes that end a plain run and its escapes checked, and
//! its UTF-8 checked once at the end.

use std::borrow::Cow;

use crate::history::read::{gpus_of, seconds_ok, TestLine};
use crate::records::facts::RecordedTimeout;

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

/// A byte that ends a plain run of string bytes.
#[inline]
const fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20 || c >= 0x80
}

/// The first byte of `hay` at or after `at` that is a quote, a backslash, a
/// control character or not ASCII, eight bytes at a time (any target).
#[inline]
fn find_special_swar(hay: &[u8], mut at: usize) -> Option<usize> {
    while at + 8 <= hay.len() {
        let w = word(hay, at);
        // Bytes below 0x20 (the subtraction borrows) with their high bit clear;
        // a borrow only makes false flags above a true one.
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
        let hit = zero_bytes(w ^ (ONES * u64::from(b'"')))
            | zero_bytes(w ^ (ONES * u64::from(b'\\')))
            | control
            | (w & HIGHS);
        if hit != 0 {
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    hay[at..]
        .iter()
        .position(|&c| is_special(c))
        .map(|p| at + p)
}

/// As `find_special_swar`, sixteen bytes at a time with SSE2 (part of every
/// x86-64 CPU); the last few bytes of `hay` go the portable way.
#[cfg(target_arch = "x86_64")]
#[inline]
fn find_special(hay: &[u8], mut at: usize) -> Option<usize> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    while at + 16 <= hay.len() {
        // SAFETY: SSE2 is always enabled on x86-64, and the unaligned load
        // reads hay[at..at + 16], inside the slice (checked just above).
        let bits = unsafe {
            let x = _mm_loadu_si128(hay.as_ptr().add(at).cast());
            let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(0x22)); // '"'
            let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(0x5c)); // '\\'
                                                                    // Signed: below 0x20 is a control character, negative is 0x80 and up.
            let other = _mm_cmplt_epi8(x, _mm_set1_epi8(0x20));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), other))
        };
        if bits != 0 {
            return Some(at + bits.trailing_zeros() as usize);
        }
        at += 16;
    }
    find_special_swar(hay, at)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn find_special(hay: &[u8], at: usize) -> Option<usize> {
    find_special_swar(hay, at)
}

/// Quotes and other bytes that end a plain run (backslash, control
/// character, non-ASCII byte) among 64 bytes, one bit per byte.
#[inline]
fn block64(bytes: &[u8; 64]) -> (u64, u64) {
    let (mut quote, mut other) = (0, 0);
    for (i, part) in bytes.chunks_exact(16).enumerate() {
        let (q, o) = block16_of(part.try_into().expect("16 bytes"));
        quote |= u64::from(q) << (16 * i);
        other |= u64::from(o) << (16 * i);
    }
    (quote, other)
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn block16_of(bytes: &[u8; 16]) -> (u32, u32) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is always enabled on x86-64; the load reads the 16 bytes of `bytes`.
    let (quote, other) = unsafe {
        let x = _mm_loadu_si128(bytes.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(0x22)); // '"'
        let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(0x5c)); // '\\'
                                                                // Signed: below 0x20 is a control character, negative is 0x80 and up.
        let below = _mm_cmplt_epi8(x, _mm_set1_epi8(0x20));
        (
            _mm_movemask_epi8(quote),
            _mm_movemask_epi8(_mm_or_si128(backslash, below)),
        )
    };
    #[allow(clippy::cast_sign_loss)] // sixteen mask bits
    (quote as u32, other as u32)
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn block16_of(bytes: &[u8; 16]) -> (u32, u32) {
    block16_portable(bytes)
}

/// `block16_of` a byte at a time, for targets without SSE2.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn block16_portable(bytes: &[u8; 16]) -> (u32, u32) {
    let (mut quote, mut other) = (0, 0);
    for (i, &c) in bytes.iter().enumerate() {
        if c == b'"' {
            quote |= 1 << i;
        } else if is_special(c) {
            other |= 1 << i;
        }
    }
    (quote, other)
}

/// Reusable state of the fast scan (one per chunk): a line's quotes as bits.
#[derive(Default)]
pub struct Scanner {
    quotes: Vec<u64>,
}

impl Scanner {
    /// Where the line at the start of `bytes` ends (its line feed or the end
    /// of `bytes`), and whether it is clean: no backslash, control character
    /// or non-ASCII byte in it. For a clean line `quotes` holds where its
    /// quotes are, so every string of it ends at the next quote.
    fn index(&mut self, bytes: &[u8]) -> (usize, bool) {
        self.quotes.clear();
        let mut at = 0;
        while let Some(block) = bytes.get(at..at + 64) {
            let (quote, other) = block64(block.try_into().expect("64 bytes"));
            if other != 0 {
                return self.stop(bytes, at, quote, other);
            }
            self.quotes.push(quote);
            at += 64;
        }
        // The end of the bytes, padded with spaces (which are not special).
        let rest = &bytes[at..];
        if rest.is_empty() {
            return (at, true);
        }
        let mut pad = [b' '; 64];
        pad[..rest.len()].copy_from_slice(rest);
        let (quote, other) = block64(&pad);
        if other != 0 {
            return self.stop(bytes, at, quote, other);
        }
        self.quotes.push(quote);
        (bytes.len(), true)
    }

    /// The 64-byte block at `at` holds a byte that is not plain: a line feed
    /// ends a clean line there, anything else makes the line unclean.
    fn stop(&mut self, bytes: &[u8], at: usize, quote: u64, other: u64) -> (usize, bool) {
        let first = other.trailing_zeros();
        let p = at + first as usize;
        if bytes[p] != b'\n' {
            let end = memchr::memchr(b'\n', &bytes[p..]).map_or(bytes.len(), |n| p + n);
            return (end, false);
        }
        self.quotes.push(quote & ((1 << first) - 1));
        (p, true)
    }
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A plain decimal (`-?digits[.digits]`, valid JSON already) the exact way
/// when that is one division: at most 2^53 as an integer and at most 22
/// decimals, both exact in an f64, so the quotient is the correctly rounded
/// value `str::parse` gives too (Clinger's fast path). None otherwise.
fn exact_decimal(text: &[u8]) -> Option<f64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let mut mantissa: u64 = 0;
    let mut decimals = None;
    for (i, &c) in digits.iter().enumerate() {
        if c == b'.' {
            decimals = Some(digits.len() - i - 1);
        } else if c.is_ascii_digit() {
            mantissa = mantissa.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        } else {
            return None;
        }
    }
    if mantissa > 1 << 53 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)] // at most 2^53: exact
    let value = mantissa as f64 / *POW10.get(decimals.unwrap_or(0))?;
    Some(if negative { -value } else { value })
}

/// A line being read: its bytes and, when it is clean, its quotes as bits.
/// Positions go in and out by value, so they stay in registers.
struct Line<'a, 'q> {
    /// The line (without its line feed).
    b: &'a [u8],
    /// The line's quotes as bits, when it is clean (else empty).
    quotes: &'q [u64],
    clean: bool,
}

// Measured: left to itself the compiler calls the small steps out of line,
// and a call per token cost about a tenth of the scan.
#[allow(clippy::inline_always)]
impl<'a> Line<'a, '_> {
    #[inline(always)]
    fn byte(&self, at: usize) -> Option<u8> {
        self.b.get(at).copied()
    }

    /// `at` past JSON whitespace (a line has no line feed).
    #[inline(always)]
    fn ws(&self, mut at: usize) -> usize {
        while let Some(b' ' | b'\t' | b'\r') = self.b.get(at) {
            at += 1;
        }
        at
    }

    /// The first byte at or after `at` that is not whitespace, and where it is.
    #[inline(always)]
    fn token(&self, at: usize) -> Option<(usize, u8)> {
        match *self.b.get(at)? {
            b' ' | b'\t' | b'\r' => {
                let at = self.ws(at);
                Some((at, self.byte(at)?))
            }
            c => Some((at, c)),
        }
    }

    /// The first quote at or after `from` in a clean line.
    #[inline(always)]
    fn next_quote(&self, from: usize) -> Option<usize> {
        let mut w = from / 64;
        let mut bits = self.quotes.get(w)? & (u64::MAX << (from % 64));
        while bits == 0 {
            w += 1;
            bits = *self.quotes.get(w)?;
        }
        Some(w * 64 + bits.trailing_zeros() as usize)
    }

    /// A string without escapes at `at` (its opening quote): its bytes, and
    /// the position after it.
    #[inline(always)]
    fn plain(&self, at: usize) -> Option<(&'a [u8], usize)> {
        if self.byte(at)? != b'"' {
            return None;
        }
        let end = if self.clean {
            self.next_quote(at + 1)?
        } else {
            self.plain_end(at + 1)?
        };
        Some((&self.b[at + 1..end], end + 1))
    }

    /// The closing quote of a string without escapes, in a line that is not
    /// clean (its UTF-8 is checked at the end).
    fn plain_end(&self, mut at: usize) -> Option<usize> {
        loop {
            at = find_special(self.b, at)?;
            match self.b[at] {
                b'"' => return Some(at),
                c if c >= 0x80 => at += 1,
                _ => return None,
            }
        }
    }

    /// Past a string at `at` (its opening quote).
    #[inline(always)]
    fn skip_string(&self, at: usize) -> Option<usize> {
        let end = if self.clean {
            self.next_quote(at + 1)?
        } else {
            self.string_end(at + 1)?
        };
        Some(end + 1)
    }

    /// The closing quote of a string, escapes checked, in a line that is not clean.
    fn string_end(&self, mut at: usize) -> Option<usize> {
        loop {
            at = find_special(self.b, at)?;
            match self.b[at] {
                b'"' => return Some(at),
                b'\\' => {
                    match self.byte(at + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.b.get(at + 2..at + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            at += 4;
                        }
                        _ => return None,
                    }
                    at += 2;
                }
                c if c >= 0x80 => at += 1,
                _ => return None,
            }
        }
    }

    /// Past the digits at `at`.
    #[inline]
    fn digits(&self, mut at: usize) -> usize {
        while let Some(b'0'..=b'9') = self.b.get(at) {
            at += 1;
        }
        at
    }

    /// Past a JSON number at `at` (strict grammar).
    #[inline]
    fn number(&self, start: usize) -> Option<usize> {
        let mut at = start;
        if self.byte(at) == Some(b'-') {
            at += 1;
        }
        match self.byte(at)? {
            b'0' => at += 1,
            b'1'..=b'9' => at = self.digits(at + 1),
            _ => return None,
        }
        if self.byte(at) == Some(b'.') {
            let end = self.digits(at + 1);
            if end == at + 1 {
                return None;
            }
            at = end;
        }
        if let Some(b'e' | b'E') = self.byte(at) {
            at += 1;
            if let Some(b'+' | b'-') = self.byte(at) {
                at += 1;
            }
            let end = self.digits(at);
            if end == at {
                return None;
            }
            at = end;
        }
        Some(at)
    }

    /// Past `word` at `at`.
    #[inline(always)]
    fn literal<const N: usize>(&self, at: usize, word: &[u8; N]) -> Option<usize> {
        (self.b.get(at..at + N)? == word).then_some(at + N)
    }

    /// Past a value at `at` (scalars here, containers in `skip_container`).
    #[inline]
    fn skip_value(&self, at: usize, depth: usize) -> Option<usize> {
        let (at, c) = self.token(at)?;
        match c {
            b'"' => self.skip_string(at),
            b'{' | b'[' => self.skip_container(at, depth),
            b't' => self.literal(at, b"true"),
            b'f' => self.literal(at, b"false"),
            b'n' => self.literal(at, b"null"),
            _ => self.number(at),
        }
    }

    /// Past an object or array at `at` (its opening bracket).
    fn skip_container(&self, at: usize, depth: usize) -> Option<usize> {
        if depth > MAX_DEPTH {
            return None;
        }
        let object = self.b[at] == b'{';
        let close = if object { b'}' } else { b']' };
        let (mut at, c) = self.token(at + 1)?;
        if c == close {
            return Some(at + 1);
        }
        loop {
            if object {
                let (a, c) = self.token(at)?;
                if c != b'"' {
                    return None;
                }
                let (a, c) = self.token(self.skip_string(a)?)?;
                if c != b':' {
                    return None;
                }
                at = a + 1;
            }
            let (a, c) = self.token(self.skip_value(at, depth + 1)?)?;
            at = a + 1;
            if c == close {
                return Some(at);
            }
            if c != b',' {
                return None;
            }
        }
    }

    /// `null` at `at`: the position after it.
    #[inline(always)]
    fn null(&self, at: usize) -> Option<usize> {
        if self.byte(at) == Some(b'n') {
            self.literal(at, b"null")
        } else {
            None
        }
    }

    /// A plain string or null at `at`, and the position after it.
    #[inline(always)]
    fn opt_plain(&self, at: usize) -> Option<(Option<&'a [u8]>, usize)> {
        if let Some(at) = self.null(at) {
            return Some((None, at));
        }
        let (text, at) = self.plain(at)?;
        Some((Some(text), at))
    }

    /// `true`, `false` or null at `at`, and the position after it.
    #[inline(always)]
    fn opt_bool(&self, at: usize) -> Option<(Option<bool>, usize)> {
        Some(if let Some(a) = self.null(at) {
            (None, a)
        } else if let Some(a) = self.literal(at, b"true") {
            (Some(true), a)
        } else {
            (Some(false), self.literal(at, b"false")?)
        })
    }

    /// An empty list or null at `at`, and the position after it: metrics
    /// are read here only when there are none; others go through serde.
    #[inline(always)]
    fn empty_list(&self, at: usize) -> Option<usize> {
        if let Some(a) = self.null(at) {
            return Some(a);
        }
        let (a, c) = self.token(at)?;
        if c != b'[' {
            return None;
        }
        let (a, c) = self.token(a + 1)?;
        if c != b']' {
            return None;
        }
        Some(a + 1)
    }

    /// A finite number or null at `at`, and the position after it.
    fn opt_f64(&self, at: usize) -> Option<(Option<f64>, usize)> {
        if let Some(at) = self.null(at) {
            return Some((None, at));
        }
        let end = self.number(at)?;
        let text = &self.b[at..end];
        let v = match exact_decimal(text) {
            Some(v) => v,
            // SAFETY: a JSON number's text is ASCII.
            None => unsafe { std::str::from_utf8_unchecked(text) }
                .parse()
                .ok()?,
        };
        v.is_finite().then_some((Some(v), end))
    }
}

/// Fields seen, to refuse repeats (serde refuses them too).
#[derive(Default)]
struct Seen(u32);

impl Seen {
    #[inline]
    fn first(&mut self, bit: u32) -> Option<()> {
        let fresh = self.0 & (1 << bit) == 0;
        self.0 |= 1 << bit;
        fresh.then_some(())
    }
}

/// A test record read the fast way from a line, or None to use the full parser.
pub fn test_line(line: &[u8]) -> Option<TestLine<'_>> {
    Scanner::default()
        .test_record(line)
        .and_then(|(t, end)| (end == line.len()).then_some(t))
}

/// A test record's kept fields as the scan finds them, still bytes.
#[derive(Default)]
struct Fields<'a> {
    seen: Seen,
    record: Option<&'a [u8]>,
    run_id: Option<&'a [u8]>,
    nodeid: Option<&'a [u8]>,
    outcome: Option<&'a [u8]>,
    stage: Option<&'a [u8]>,
    owner: Option<&'a [u8]>,
    finished: Option<&'a [u8]>,
    duration: Option<f64>,
    gating: Option<bool>,
    peak: Option<f64>,
    gpus: Option<f64>,
    timeout: RecordedTimeout,
}

// Inlined like the line's own steps: they run once per field of every line.
#[allow(clippy::inline_always)]
impl<'a> Fields<'a> {
    /// The line's one object, field by field; the position after its `}`.
    #[inline(always)]
    fn read_object(&mut self, line: &Line<'a, '_>) -> Option<usize> {
        let (at, c) = line.token(0)?;
        if c != b'{' {
            return None;
        }
        let (mut at, c) = line.token(at + 1)?;
        if c == b'}' {
            return None;
        }
        loop {
            let (key, a) = line.plain(line.ws(at))?;
            let (a, c) = line.token(a)?;
            if c != b':' {
                return None;
            }
            at = self.take(line, key, line.ws(a + 1))?;
            let (a, c) = line.token(at)?;
            at = a + 1;
            match c {
                b',' => {}
                b'}' => return Some(at),
                _ => return None,
            }
        }
    }

    /// The value of `key` at `at` into its field, and the position after it.
    /// None: a field seen twice, a value of another shape than the fast path
    /// reads, or a field only other record kinds have.
    // One match arm per kept field.
    #[inline(always)]
    fn take(&mut self, line: &Line<'a, '_>, key: &[u8], at: usize) -> Option<usize> {
        let seen = &mut self.seen;
        let plain = || line.plain(at).map(|(v, a)| (Some(v), a));
        Some(match key {
            b"record" => once(seen, 0, plain, &mut self.record)?,
            b"run_id" => once(seen, 1, plain, &mut self.run_id)?,
            b"nodeid" => once(seen, 2, plain, &mut self.nodeid)?,
            b"outcome" => once(seen, 3, plain, &mut self.outcome)?,
            b"stage" => once(seen, 4, || line.opt_plain(at), &mut self.stage)?,
            b"owner" => once(seen, 5, || line.opt_plain(at), &mut self.owner)?,
            b"finished_at" => once(seen, 6, || line.opt_plain(at), &mut self.finished)?,
            b"duration_s" => once(seen, 7, || line.opt_f64(at), &mut self.duration)?,
            b"gating" => once(seen, 8, || line.opt_bool(at), &mut self.gating)?,
            b"gpu_peak_mib" => once(seen, 9, || line.opt_f64(at), &mut self.peak)?,
            b"gpus_used" => once(seen, 11, || line.opt_f64(at), &mut self.gpus)?,
            b"timeout_s" => {
                let read = || {
                    let (v, a) = line.opt_f64(at)?;
                    Some((RecordedTimeout::present(v), a))
                };
                once(seen, 12, read, &mut self.timeout)?
            }
            // Only the empty list here; metrics go through serde.
            b"metrics" => once(seen, 10, || Some(((), line.empty_list(at)?)), &mut ())?,
            // Kept by serde for other record kinds: only a test's values are safe to skip.
            b"pipeline" | b"gpus" | b"git" | b"host" | b"started_at" | b"exit_status"
            | b"wall_s" => return None,
            _ => line.skip_value(at, 0)?,
        })
    }

    /// The fields as a test line; None for what the full parser must judge.
    #[inline(always)]
    fn test_line(self, line: &Line<'a, '_>) -> Option<TestLine<'a>> {
        // A duration out of range is corrupt: serde's path says why.
        if self.duration.is_some_and(|d| !seconds_ok(d)) {
            return None;
        }
        // A clean line is ASCII; any other is checked once, here.
        if !line.clean {
            std::str::from_utf8(line.b).ok()?;
        }
        // SAFETY: the line is ASCII or was just checked to be UTF-8, and every
        // kept slice starts and ends next to an ASCII quote, so it is whole
        // characters.
        let text = |s: &'a [u8]| -> &'a str { unsafe { std::str::from_utf8_unchecked(s) } };
        let finished_at = match self.finished {
            Some(t) => Some(crate::history::timestamp::parse(text(t))?),
            None => None,
        };
        Some(TestLine {
            run_id: Cow::Borrowed(text(self.run_id?)),
            nodeid: Cow::Borrowed(text(self.nodeid?)),
            outcome: Cow::Borrowed(text(self.outcome?)),
            duration_s: self.duration.unwrap_or(0.0),
            stage: self.stage.map(|s| Cow::Borrowed(text(s))),
            gating: self.gating.unwrap_or(true),
            owner: self.owner.map(|s| Cow::Borrowed(text(s))),
            gpu_peak_mib: self.peak,
            gpus_used: gpus_of(self.gpus),
            timeout: self.timeout,
            metrics: Vec::new(),
            finished_at,
        })
    }
}

/// A field read into its slot, refused when seen before: the position
/// after its value.
#[allow(clippy::inline_always)]
#[inline(always)]
fn once<T>(
    seen: &mut Seen,
    bit: u32,
    read: impl FnOnce() -> Option<(T, usize)>,
    slot: &mut T,
) -> Option<usize> {
    seen.first(bit)?;
    let (value, at) = read()?;
    *slot = value;
    Some(at)
}

impl Scanner {
    /// A test record at the start of `bytes` read the fast way, with the
    /// length of its line (the line feed after it, or the end of `bytes`, is
    /// not included); None to use the full parser on the line.
    pub fn test_record<'a>(&mut self, bytes: &'a [u8]) -> Option<(TestLine<'a>, usize)> {
        let (end, clean) = self.index(bytes);
        let line = Line {
            b: &bytes[..end],
            quotes: &self.quotes,
            clean,
        };
        let mut fields = Fields::default();
        let at = fields.read_object(&line)?;
        if line.ws(at) != end || fields.record? != b"test" {
            return None;
        }
        Some((fields.test_line(&line)?, end))
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // values are copied, not computed
mod tests {
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
                    "-0", "01", "1.", ".5", "-", "1e", "1E+2", "NaN", "Infinity", "null",
                    "\"1.5\"", "true"
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
}
