//! The two pattern dialects of the project, each built in one place.
//!
//! **Node-id patterns** (the quarantine file, the report's quarantine advice,
//! the owners table), matched by `globset`:
//! - before the first `::` (the file's path) `*` and `?` stop at `/`, and a
//!   whole `**` component spans folders (`tests/**/test_kv*.py`), as in
//!   `.gitignore`;
//! - after it (the test's name and parameters) `*` matches anything, `/`
//!   included, because parameter ids carry slashes (`[meta-llama/Llama-3]`);
//! - everything else is literal, brackets and braces included, because
//!   parametrized ids carry them (`test_x[a-b]`).
//!
//! A pattern without `::` names files: it covers every test in them.
//!
//! **pytest's own patterns** (`python_files`, `python_functions`,
//! `--ignore-glob`, ...): Python's `fnmatch.fnmatchcase`, translated to a
//! regex as Python translates it, so it answers in linear time where a
//! backtracking matcher was exponential.

use std::cell::RefCell;
use std::collections::HashMap;

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;

#[derive(Debug, Clone)]
pub struct Glob {
    pattern: String,
    path: GlobMatcher,
    /// The part after the first `::`, when the pattern has one.
    name: Option<GlobMatcher>,
}

/// True when the text uses a wildcard (else it is an exact id or path).
pub fn is_pattern(text: &str) -> bool {
    text.contains(['*', '?'])
}

/// Only `*` and `?` are wildcards: every other character globset reads
/// specially is escaped, so no text fails to build.
fn escaped(part: &str) -> String {
    let mut out = String::with_capacity(part.len() + 8);
    for c in part.chars() {
        if matches!(c, '[' | ']' | '{' | '}' | '\\' | ',') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn matcher(part: &str, within_segment: bool) -> GlobMatcher {
    GlobBuilder::new(&escaped(part))
        .literal_separator(within_segment)
        .backslash_escape(true)
        .build()
        // Every character but `*` and `?` is escaped; globset accepts any
        // arrangement of those two.
        .expect("an escaped pattern always builds")
        .compile_matcher()
}

impl Glob {
    pub fn new(pattern: &str) -> Self {
        let (path, name) = match pattern.split_once("::") {
            Some((path, name)) => (path, Some(name)),
            None => (pattern, None),
        };
        Glob {
            pattern: pattern.to_string(),
            path: matcher(path, true),
            name: name.map(|n| matcher(n, false)),
        }
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether a node id (or a file's path) matches.
    pub fn matches(&self, nodeid: &str) -> bool {
        let (file, name) = match nodeid.split_once("::") {
            Some((file, name)) => (file, Some(name)),
            None => (nodeid, None),
        };
        if !self.path.is_match(file) {
            return false;
        }
        match (&self.name, name) {
            (None, _) => true,
            (Some(p), Some(n)) => p.is_match(n),
            (Some(_), None) => false,
        }
    }
}

/// A quarantine entry's `test`, built once: the node id itself, or a
/// node-id pattern over it.
#[derive(Debug, Clone)]
pub struct Names {
    exact: String,
    glob: Option<Glob>,
}

impl Names {
    pub fn new(entry: &str) -> Self {
        Names {
            exact: entry.to_string(),
            glob: is_pattern(entry).then(|| Glob::new(entry)),
        }
    }

    pub fn matches(&self, nodeid: &str) -> bool {
        self.exact == nodeid || self.glob.as_ref().is_some_and(|g| g.matches(nodeid))
    }
}

/// Does a quarantine entry's `test` name this node id (one question; build
/// `Names` once to ask many).
pub fn names(entry: &str, nodeid: &str) -> bool {
    Names::new(entry).matches(nodeid)
}

/// A path rule of the owners table: a pattern, or a file or folder (a folder
/// owns everything under it).
pub fn path_matches(rule: &Glob, path: &str) -> bool {
    if rule.matches(path) {
        return true;
    }
    if is_pattern(rule.pattern()) {
        return false;
    }
    let folder = rule.pattern().trim_end_matches('/');
    path.strip_prefix(folder)
        .is_some_and(|rest| rest.starts_with('/'))
}

thread_local! {
    // The lint asks about the same few patterns for every file and function.
    static FNMATCH: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// Python's `fnmatch.fnmatchcase(name, pattern)`: `*`, `?`, `[seq]`,
/// `[!seq]`; an unclosed `[` is literal.
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    FNMATCH.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(re) = cache.get(pattern) {
            return re.is_match(name);
        }
        let re = Regex::new(&fnmatch_regex(pattern))
            .expect("a translated fnmatch pattern is a valid regex");
        let hit = re.is_match(name);
        if cache.len() > 1024 {
            cache.clear();
        }
        cache.insert(pattern.to_string(), re);
        hit
    })
}

/// The regex for an fnmatch pattern, as Python's `fnmatch._translate` builds it.
fn fnmatch_regex(pattern: &str) -> String {
    let p: Vec<char> = pattern.chars().collect();
    let mut re = String::from(r"(?s)\A(?:");
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        i += 1;
        match c {
            '*' => {
                while p.get(i) == Some(&'*') {
                    i += 1;
                }
                re.push_str(".*");
            }
            '?' => re.push('.'),
            '[' => {
                let mut j = i;
                if p.get(j) == Some(&'!') {
                    j += 1;
                }
                if p.get(j) == Some(&']') {
                    j += 1;
                }
                while j < p.len() && p[j] != ']' {
                    j += 1;
                }
                if j >= p.len() {
                    re.push_str(r"\[");
                } else {
                    re.push_str(&class(&p[i..j]));
                    i = j + 1;
                }
            }
            c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    re.push_str(r")\z");
    re
}

/// A `[...]` body (between the brackets) as a regex class. Ranges whose end
/// is before their start match nothing, as in Python.
fn class(body: &[char]) -> String {
    let (negated, body) = match body.split_first() {
        Some(('!', rest)) => (true, rest),
        _ => (false, body),
    };
    let mut items = Vec::new();
    let mut k = 0;
    while k < body.len() {
        if k + 2 < body.len() && body[k + 1] == '-' {
            if body[k] <= body[k + 2] {
                items.push((body[k], body[k + 2]));
            }
            k += 3;
        } else {
            items.push((body[k], body[k]));
            k += 1;
        }
    }
    if items.is_empty() {
        return if negated { "." } else { "[^\\s\\S]" }.to_string();
    }
    let esc = |c: char| format!("\\x{{{:x}}}", c as u32);
    let mut out = String::from(if negated { "[^" } else { "[" });
    for (lo, hi) in items {
        out.push_str(&esc(lo));
        if hi != lo {
            out.push('-');
            out.push_str(&esc(hi));
        }
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_stays_within_a_path_segment() {
        let g = Glob::new("tests/*.py");
        assert!(g.matches("tests/test_a.py"));
        assert!(!g.matches("tests/unit/test_a.py"));
        assert!(Glob::new("tests/**/*.py").matches("tests/unit/test_a.py"));
        assert!(Glob::new("tests/**/*.py").matches("tests/test_a.py"));
        assert!(Glob::new("tests/**").matches("tests/unit/test_a.py::test_x"));
    }

    #[test]
    fn a_pattern_without_a_test_name_covers_the_files_tests() {
        let g = Glob::new("tests/*");
        assert!(g.matches("tests/test_a.py::test_x[a/b]"));
        assert!(g.matches("tests/test_a.py::TestK::test_y"));
        assert!(!g.matches("tests/unit/test_a.py::test_x"));
    }

    #[test]
    fn brackets_of_parametrized_ids_are_literal() {
        let g = Glob::new("tests/test_a.py::test_x[*]");
        assert!(g.matches("tests/test_a.py::test_x[a-b]"));
        assert!(g.matches("tests/test_a.py::test_x[meta-llama/Llama-3]"));
        assert!(!g.matches("tests/test_a.py::test_y[a]"));
        assert!(!g.matches("tests/test_a.py::test_x"));
        assert!(!g.matches("tests/test_a.py"));
        let exact = Glob::new("t.py::test_x[1]");
        assert!(exact.matches("t.py::test_x[1]"));
        assert!(!exact.matches("t.py::test_x1"));
        assert!(Glob::new("t.py::test_[ab]*").matches("t.py::test_[ab]1"));
        assert!(!Glob::new("t.py::test_[ab]*").matches("t.py::test_a1"));
        assert!(Glob::new("t.py::{a,b}*").matches("t.py::{a,b}x"));
        assert!(Glob::new(r"t.py::a\*").matches(r"t.py::a\x"));
    }

    #[test]
    fn a_question_mark_is_one_character() {
        let g = Glob::new("t.py::test_?");
        assert!(g.matches("t.py::test_a"));
        assert!(!g.matches("t.py::test_ab"));
        assert!(!Glob::new("a?b.py").matches("a/b.py"));
    }

    #[test]
    fn a_folder_owns_what_is_under_it() {
        let rule = Glob::new("tests/router");
        assert!(path_matches(&rule, "tests/router/test_a.py"));
        assert!(path_matches(
            &Glob::new("tests/router/"),
            "tests/router/x/t.py"
        ));
        assert!(!path_matches(&rule, "tests/router_old/test_a.py"));
        assert!(path_matches(
            &Glob::new("tests/*/test_a.py"),
            "tests/x/test_a.py"
        ));
    }

    #[test]
    fn is_pattern_sees_wildcards_only() {
        assert!(is_pattern("a/*"));
        assert!(is_pattern("a?"));
        assert!(!is_pattern("t.py::test[x]"));
    }

    #[test]
    fn fnmatch_is_pythons() {
        for (name, pattern, expected) in [
            ("test_a.py", "test_*.py", true),
            ("a/b/test_a.py", "*test_*.py", true),
            ("x1", "x[0-9]", true),
            ("xa", "x[0-9]", false),
            ("xa", "x[!0-9]", true),
            ("a?c", "a[?]c", true),
            ("abc", "a[?]c", false),
            ("[x", "[x", true),
            ("a]", "a]", true),
            ("]", "[]]", true),
            ("a", "[!]]", true),
            ("-", "[a-]", true),
            ("b", "[z-a]", false),
            ("b", "[!z-a]", true),
            ("{arch}", "{arch}", true),
            ("a.b", "a.b", true),
            ("axb", "a.b", false),
            (r"a\b", r"a\b", true),
            ("a^", "a[^]", true),
            ("line\nbreak", "line*", true),
            ("Test", "T*", true),
            ("test", "T*", false),
        ] {
            assert_eq!(fnmatch(name, pattern), expected, "{name} ~ {pattern}");
        }
    }

    #[test]
    fn fnmatch_answers_a_pathological_pattern_at_once() {
        // A backtracking matcher takes exponential time on this one.
        let pattern = format!("{}b", "*a".repeat(30));
        assert!(!fnmatch(&"a".repeat(60), &pattern));
    }

    proptest::proptest! {
        #[test]
        fn any_text_builds_a_glob(p in "[a-z/:*?\\[\\]{}\\\\,!-]{0,24}", t in "[a-z/:\\[\\]-]{0,24}") {
            let _ = Glob::new(&p).matches(&t);
            let _ = fnmatch(&t, &p);
        }
    }
}
