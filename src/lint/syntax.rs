//! Whether a parsed file can be checked: its first syntax error, and
//! nesting deeper than the lint's recursive walkers go.

use tree_sitter::Tree;

use crate::lint::literal::text;
use crate::lint::source::Pos;

/// The first syntax error of a tree: where, and what.
pub fn syntax_error(tree: &Tree, src: &[u8]) -> Option<(Pos, String)> {
    let root = tree.root_node();
    if !root.has_error() {
        return None;
    }
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        if node.is_missing() {
            return Some((
                Pos::of(node),
                format!("invalid syntax: missing `{}`", node.kind()),
            ));
        }
        if node.is_error() {
            let snippet: String = text(node, src)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(40)
                .collect();
            return Some((Pos::of(node), format!("invalid syntax near `{snippet}`")));
        }
        if node.has_error() && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return Some((Pos::of(root), "invalid syntax".into()));
            }
        }
    }
}

/// The first node nested deeper than `limit` levels below the root, walked
/// without recursion. The lint's walkers recurse over expressions, so a file
/// this deep is refused rather than checked.
pub fn too_deep(tree: &Tree, limit: usize) -> Option<Pos> {
    let mut cursor = tree.walk();
    let mut depth = 0usize;
    loop {
        if depth > limit {
            return Some(Pos::of(cursor.node()));
        }
        // A subtree of n nodes is at most n - 1 levels deep below its root:
        // small ones (nearly every statement) are skipped unvisited.
        let deepest = depth + cursor.node().descendant_count().saturating_sub(1);
        if deepest > limit && cursor.goto_first_child() {
            depth += 1;
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return None;
            }
            depth -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::marks::testing::parse;

    #[test]
    fn syntax_errors_are_located() {
        let src = "import pytest\n\ndef test_a(:\n    pass\n";
        let tree = parse(src);
        let (pos, message) = syntax_error(&tree, src.as_bytes()).unwrap();
        assert_eq!(pos.line, 3);
        assert!(message.starts_with("invalid syntax"), "{message}");
        assert!(syntax_error(&parse("x = 1\n"), b"x = 1\n").is_none());
    }

    #[test]
    fn depth_is_measured_without_recursion() {
        // module > expression_statement > assignment > list^n > integer
        let nested = |n: usize| format!("x = {}1{}\n", "[".repeat(n), "]".repeat(n));
        assert_eq!(too_deep(&parse(&nested(10)), 13), None);
        assert_eq!(
            too_deep(&parse(&nested(10)), 12),
            Some(Pos { line: 1, col: 14 })
        );
        let long = format!("x = [m]{}\n", " + [m]".repeat(50_000));
        assert!(too_deep(&parse(&long), 3000).is_some());
    }
}
