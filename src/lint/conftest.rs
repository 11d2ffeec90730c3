//! What a `conftest.py` may do to the markers of the tests below it: hooks
//! that call `item.add_marker(...)` or touch `own_markers`, and
//! `pytest_generate_tests` that parametrizes with markers. Markers a hook
//! adds that cannot change the rules' outcome (`skip`, `xfail`, registered
//! foreign markers) are harmless; anything else leaves those tests to
//! collection-time validation.

use std::path::Path;

use tree_sitter::{Node, Tree};

use crate::lint::grammar::fields;
use crate::lint::literal::{literal, text, Literal};
use crate::lint::marks::Unresolved;
use crate::lint::source::{children, statements, Scope};

/// Every call in a tree (walked without recursion: files may nest deeply).
fn calls<'t>(root: Node<'t>, out: &mut Vec<Node<'t>>) {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if node.kind() == "call" {
            out.push(node);
        }
        stack.extend(children(node));
    }
}

/// The reasons a conftest's hooks make its tests' markers unknown.
/// `inert(name)` says whether adding that marker can change no rule.
pub fn effects(
    path: &Path,
    src: &[u8],
    tree: &Tree,
    inert: &dyn Fn(&str) -> bool,
) -> Vec<Unresolved> {
    let root = tree.root_node();
    let scope = Scope::new(src, root);
    let mut out = Vec::new();
    let mut found = Vec::new();
    calls(root, &mut found);
    for call in found {
        let Some(function) = call.child_by_field_id(fields().function.get()) else {
            continue;
        };
        let method = function
            .child_by_field_id(fields().attribute.get())
            .map_or("", |a| text(a, src));
        if function.kind() != "attribute" || !matches!(method, "add_marker" | "applymarker") {
            continue;
        }
        let arg = call
            .child_by_field_id(fields().arguments.get())
            .and_then(|a| {
                children(a)
                    .into_iter()
                    .find(|c| c.kind() != "keyword_argument")
            });
        let harmless = arg.is_some_and(|arg| {
            if let Some(Literal::Str(name)) = literal(arg, src) {
                return inert(&name);
            }
            let marks = scope.mark_list(arg, 0);
            marks.unresolved.is_empty() && marks.marks.iter().all(|m| inert(&m.name))
        });
        if !harmless {
            out.push(Unresolved::at(
                call,
                format!(
                    "a hook in this conftest.py adds markers: `{}`",
                    text(call, src)
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                        .chars()
                        .take(60)
                        .collect::<String>()
                ),
            ));
        }
    }
    if let Some(mut u) = crate::lint::collect::generate_tests(&scope, &statements(root)) {
        u.reason = "pytest_generate_tests in this conftest.py may parametrize with markers".into();
        out.push(u);
    }
    if src.windows(11).any(|w| w == b"own_markers") {
        out.push(Unresolved {
            file: None,
            pos: crate::lint::source::Pos { line: 1, col: 1 },
            reason: "this conftest.py changes `own_markers` of tests".into(),
        });
    }
    for u in &mut out {
        u.file = Some(path.to_path_buf());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::marks::testing::parse;

    fn reasons(src: &str) -> Vec<String> {
        let tree = parse(src);
        let inert = |name: &str| matches!(name, "skip" | "xfail" | "asyncio");
        effects(Path::new("conftest.py"), src.as_bytes(), &tree, &inert)
            .into_iter()
            .map(|u| u.reason)
            .collect()
    }

    #[test]
    fn hooks_adding_rule_markers_make_tests_unresolved() {
        let src = "import pytest\ndef pytest_collection_modifyitems(items):\n    for item in items:\n        item.add_marker(pytest.mark.unit)\n";
        assert_eq!(reasons(src).len(), 1);
        assert!(reasons(src)[0].contains("adds markers"));
        let src = "def pytest_itemcollected(item):\n    item.add_marker(choose(item))\n";
        assert_eq!(reasons(src).len(), 1);
        let src = "def pytest_itemcollected(item):\n    item.add_marker('nightly')\n";
        assert_eq!(reasons(src).len(), 1);
    }

    #[test]
    fn harmless_hooks_and_plain_fixtures_change_nothing() {
        let src = "import pytest\n@pytest.fixture\ndef engine(): return 1\ndef pytest_collection_modifyitems(items):\n    for i in items:\n        i.add_marker(pytest.mark.skip(reason='x'))\n        i.add_marker('xfail')\n";
        assert!(reasons(src).is_empty(), "{:?}", reasons(src));
    }

    #[test]
    fn generate_tests_with_marks_is_reported() {
        let src = "import pytest\ndef pytest_generate_tests(metafunc):\n    metafunc.parametrize('x', [pytest.param(1, marks=pytest.mark.gpu_1)])\n";
        assert!(reasons(src)
            .iter()
            .any(|r| r.contains("pytest_generate_tests")));
        let src = "def pytest_generate_tests(metafunc):\n    metafunc.parametrize('x', [1, 2])\n";
        assert!(reasons(src).is_empty());
    }
}
