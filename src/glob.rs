//! Patterns for test ids and paths, as the quarantine file and the owners
//! table write them: `*` any characters but `/`, `**` any characters, `?` one
//! character but `/`. Everything else is literal, brackets included, because
//! parametrized test ids carry them (`test_x[a-b]`).

use regex::Regex;

#[derive(Debug, Clone)]
pub struct Glob {
    pattern: String,
    regex: Regex,
}

/// True when the text uses a wildcard (else it is an exact id or path).
pub fn is_pattern(text: &str) -> bool {
    text.contains(['*', '?'])
}

impl Glob {
    pub fn new(pattern: &str) -> Self {
        let mut re = String::with_capacity(pattern.len() * 2 + 2);
        re.push('^');
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    re.push_str(".*");
                }
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
            }
        }
        re.push('$');
        Glob {
            pattern: pattern.to_string(),
            // Every character but the wildcards is escaped: always a valid regex.
            regex: Regex::new(&re).expect("an escaped glob is a valid regex"),
        }
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    pub fn matches(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_stays_within_a_path_segment() {
        let g = Glob::new("tests/*.py");
        assert!(g.matches("tests/test_a.py"));
        assert!(!g.matches("tests/unit/test_a.py"));
        assert!(Glob::new("tests/**.py").matches("tests/unit/test_a.py"));
    }

    #[test]
    fn brackets_of_parametrized_ids_are_literal() {
        let g = Glob::new("tests/test_a.py::test_x[*]");
        assert!(g.matches("tests/test_a.py::test_x[a-b]"));
        assert!(!g.matches("tests/test_a.py::test_y[a]"));
        let exact = Glob::new("t.py::test_x[1]");
        assert!(exact.matches("t.py::test_x[1]"));
        assert!(!exact.matches("t.py::test_x1"));
    }

    #[test]
    fn a_question_mark_is_one_character() {
        let g = Glob::new("t.py::test_?");
        assert!(g.matches("t.py::test_a"));
        assert!(!g.matches("t.py::test_ab"));
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
}
