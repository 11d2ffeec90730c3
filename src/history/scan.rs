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
use crate::records::RecordedTimeout;

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

impl Scanner {
    /// A test record at the start of `bytes` read the fast way, with the
    /// length of its line (the line feed after it, or the end of `bytes`, is
    /// not included); None to use the full parser on the line.
    // One match arm per kept field. Kept whole: split into named steps (the
    // fields in a struct, a function per field) it cost 0.9% more instructions
    // reading a history (callgrind, docs/benchmarks.md), this being the hot loop.
    #[allow(clippy::too_many_lines)]
    pub fn test_record<'a>(&mut self, bytes: &'a [u8]) -> Option<(TestLine<'a>, usize)> {
        let (end, clean) = self.index(bytes);
        let line = Line {
            b: &bytes[..end],
            quotes: &self.quotes,
            clean,
        };
        let mut seen = Seen::default();
        let (mut record, mut run_id, mut nodeid, mut outcome) = (None, None, None, None);
        let (mut stage, mut owner, mut finished) = (None, None, None);
        let (mut duration, mut gating, mut peak) = (None, None, None);
        let (mut gpus, mut timeout) = (None, RecordedTimeout::Unknown);
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
            at = line.ws(a + 1);
            match key {
                b"record" => {
                    seen.first(0)?;
                    let (v, a) = line.plain(at)?;
                    (record, at) = (Some(v), a);
                }
                b"run_id" => {
                    seen.first(1)?;
                    let (v, a) = line.plain(at)?;
                    (run_id, at) = (Some(v), a);
                }
                b"nodeid" => {
                    seen.first(2)?;
                    let (v, a) = line.plain(at)?;
                    (nodeid, at) = (Some(v), a);
                }
                b"outcome" => {
                    seen.first(3)?;
                    let (v, a) = line.plain(at)?;
                    (outcome, at) = (Some(v), a);
                }
                b"stage" => {
                    seen.first(4)?;
                    (stage, at) = line.opt_plain(at)?;
                }
                b"owner" => {
                    seen.first(5)?;
                    (owner, at) = line.opt_plain(at)?;
                }
                b"finished_at" => {
                    seen.first(6)?;
                    (finished, at) = line.opt_plain(at)?;
                }
                b"duration_s" => {
                    seen.first(7)?;
                    (duration, at) = line.opt_f64(at)?;
                }
                b"gating" => {
                    seen.first(8)?;
                    (gating, at) = if let Some(a) = line.null(at) {
                        (None, a)
                    } else if let Some(a) = line.literal(at, b"true") {
                        (Some(true), a)
                    } else {
                        (Some(false), line.literal(at, b"false")?)
                    };
                }
                b"gpu_peak_mib" => {
                    seen.first(9)?;
                    (peak, at) = line.opt_f64(at)?;
                }
                b"gpus_used" => {
                    seen.first(11)?;
                    (gpus, at) = line.opt_f64(at)?;
                }
                b"timeout_s" => {
                    seen.first(12)?;
                    let (v, a) = line.opt_f64(at)?;
                    (timeout, at) = (RecordedTimeout::present(v), a);
                }
                b"metrics" => {
                    seen.first(10)?;
                    // Only the empty list here; metrics go through serde.
                    at = if let Some(a) = line.null(at) {
                        a
                    } else {
                        let (a, c) = line.token(at)?;
                        if c != b'[' {
                            return None;
                        }
                        let (a, c) = line.token(a + 1)?;
                        if c != b']' {
                            return None;
                        }
                        a + 1
                    };
                }
                // Kept by serde for other record kinds: only a test's values are safe to skip.
                b"pipeline" | b"gpus" | b"git" | b"host" | b"started_at" | b"exit_status"
                | b"wall_s" => return None,
                _ => at = line.skip_value(at, 0)?,
            }
            let (a, c) = line.token(at)?;
            at = a + 1;
            match c {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        if line.ws(at) != end || record? != b"test" {
            return None;
        }
        // A duration out of range is corrupt: serde's path says why.
        if duration.is_some_and(|d| !seconds_ok(d)) {
            return None;
        }
        // A clean line is ASCII; any other is checked once, here.
        if !clean {
            std::str::from_utf8(line.b).ok()?;
        }
        // SAFETY: the line is ASCII or was just checked to be UTF-8, and every
        // kept slice starts and ends next to an ASCII quote, so it is whole
        // characters.
        let text = |s: &'a [u8]| -> &'a str { unsafe { std::str::from_utf8_unchecked(s) } };
        let finished_at = match finished {
            Some(t) => Some(crate::history::timestamp::parse(text(t))?),
            None => None,
        };
        Some((
            TestLine {
                run_id: Cow::Borrowed(text(run_id?)),
                nodeid: Cow::Borrowed(text(nodeid?)),
                outcome: Cow::Borrowed(text(outcome?)),
                duration_s: duration.unwrap_or(0.0),
                stage: stage.map(|s| Cow::Borrowed(text(s))),
                gating: gating.unwrap_or(true),
                owner: owner.map(|s| Cow::Borrowed(text(s))),
                gpu_peak_mib: peak,
                gpus_used: gpus_of(gpus),
                timeout,
                metrics: Vec::new(),
                finished_at,
            },
            end,
        ))
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // values are copied, not computed
mod tests;
