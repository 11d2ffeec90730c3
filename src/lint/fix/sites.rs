//! Where markers are written, as byte ranges of the syntax tree: decorators
//! of functions and classes, `pytestmark` (one marker, a list or a tuple),
//! and `pytest.param(..., marks=...)`. Only literal markers
//! (`pytest.mark.NAME`, `NAME(...)`, through `mark` or a `pytest` alias) are
//! sites; anything computed is left to the caller to report.

use std::ops::Range;

use tree_sitter::{Node, Tree};

use crate::lint::source::Pos;

/// How much a site covers: a marker may be edited for one test only where
/// it is written for that test alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Module,
    Class,
    Function,
    Param,
}

impl Scope {
    pub fn words(self) -> &'static str {
        match self {
            Scope::Module => "the whole module (pytestmark)",
            Scope::Class => "the whole class",
            Scope::Function => "the function",
            Scope::Param => "the parameter set",
        }
    }
}

/// One literal marker in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub name: String,
    /// Where the name is written: the lint's `Spelled` position of it.
    pub pos: Pos,
    pub name_range: Range<usize>,
    /// Where `(...)` goes when the marker is written bare.
    pub expr_end: usize,
    /// The call's `(...)`, when called.
    pub args: Option<Range<usize>>,
    /// The number the marker carries (first positional, or `timeout=`/`gib=`).
    pub value: Option<f64>,
    pub value_range: Option<Range<usize>>,
    pub scope: Scope,
    /// The bytes to delete to drop the marker; None where that cannot be done cleanly.
    pub removal: Option<Range<usize>>,
}

/// Names a marker's number may be passed as.
const VALUE_KEYWORDS: [&str; 2] = ["timeout", "gib"];

fn text<'s>(node: Node<'_>, src: &'s [u8]) -> &'s str {
    std::str::from_utf8(&src[node.byte_range()]).unwrap_or("")
}

/// `pytest.mark` / `pt.mark` / `mark`: a marker namespace written literally.
fn is_mark_namespace(node: Node<'_>, src: &[u8]) -> bool {
    match node.kind() {
        "identifier" => text(node, src) == "mark",
        "attribute" => {
            let (Some(object), Some(attr)) = (
                node.child_by_field_name("object"),
                node.child_by_field_name("attribute"),
            ) else {
                return false;
            };
            object.kind() == "identifier" && text(attr, src) == "mark"
        }
        _ => false,
    }
}

/// The literal marker `node` is, if any: (name node, arguments node).
pub fn mark_expr<'t>(node: Node<'t>, src: &[u8]) -> Option<(Node<'t>, Option<Node<'t>>)> {
    let (attr, args) = match node.kind() {
        "call" => (
            node.child_by_field_name("function")?,
            node.child_by_field_name("arguments"),
        ),
        "attribute" => (node, None),
        _ => return None,
    };
    if attr.kind() != "attribute" || args.is_some_and(|a| a.kind() != "argument_list") {
        return None;
    }
    let object = attr.child_by_field_name("object")?;
    let name = attr.child_by_field_name("attribute")?;
    is_mark_namespace(object, src).then_some((name, args))
}

fn number(node: Node<'_>, src: &[u8]) -> Option<f64> {
    matches!(node.kind(), "integer" | "float")
        .then(|| text(node, src).replace('_', "").parse().ok())
        .flatten()
}

/// The first positional argument, or a `timeout=` / `gib=` one, when it is a number.
fn value_of<'t>(args: Node<'t>, src: &[u8]) -> Option<Node<'t>> {
    let mut cursor = args.walk();
    let children: Vec<Node<'t>> = args
        .named_children(&mut cursor)
        .filter(|c| c.kind() != "comment")
        .collect();
    let found = match children.first() {
        Some(first) if first.kind() != "keyword_argument" => Some(*first),
        _ => children.iter().find_map(|c| {
            let name = c.child_by_field_name("name")?;
            (c.kind() == "keyword_argument" && VALUE_KEYWORDS.contains(&text(name, src)))
                .then(|| c.child_by_field_name("value"))
                .flatten()
        }),
    };
    found.filter(|n| number(*n, src).is_some())
}

/// Start of the line `at` is on.
fn line_start(src: &[u8], at: usize) -> usize {
    src[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)
}

/// Past the line feed of the line `at` is on (or the end of the file).
fn line_end(src: &[u8], at: usize) -> usize {
    src[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(src.len(), |i| at + i + 1)
}

fn blank(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c'))
}

/// The whole lines `range` covers, when nothing else is written on them
/// (a trailing comment goes with the marker).
fn whole_lines(src: &[u8], range: Range<usize>) -> Option<Range<usize>> {
    let start = line_start(src, range.start);
    let end = line_end(src, range.end);
    let after = &src[range.end..end];
    let after_code = after
        .iter()
        .position(|&b| b == b'#')
        .map_or(after, |i| &after[..i]);
    (blank(&src[start..range.start]) && blank(after_code)).then_some(start..end)
}

/// What to delete to drop `item` from its list or tuple `list`.
fn list_removal(src: &[u8], list: Node<'_>, item: Node<'_>) -> Option<Range<usize>> {
    let mut cursor = list.walk();
    let children: Vec<Node<'_>> = list.children(&mut cursor).collect();
    let at = children.iter().position(|c| c.id() == item.id())?;
    let next = children.get(at + 1).filter(|c| c.kind() == ",");
    let end = next.map_or(item.end_byte(), Node::end_byte);
    if let Some(lines) = whole_lines(src, item.start_byte()..end) {
        return Some(lines);
    }
    if let Some(comma) = next {
        // `a, b` -> `b`: the item, its comma and the spaces after it.
        let mut end = comma.end_byte();
        while matches!(src.get(end), Some(b' ' | b'\t')) {
            end += 1;
        }
        return Some(item.start_byte()..end);
    }
    // The last item: from the comma before it.
    let before = children[..at].iter().rposition(|c| c.kind() == ",");
    Some(before.map_or(item.start_byte(), |i| children[i].start_byte())..item.end_byte())
}

struct Walk<'s> {
    src: &'s [u8],
    sites: Vec<Site>,
}

impl<'t> Walk<'_> {
    fn push(&mut self, expr: Node<'t>, scope: Scope, removal: Option<Range<usize>>) -> bool {
        let Some((name, args)) = mark_expr(expr, self.src) else {
            return false;
        };
        let value = args.and_then(|a| value_of(a, self.src));
        self.sites.push(Site {
            name: text(name, self.src).to_string(),
            pos: Pos::of(name),
            name_range: name.byte_range(),
            expr_end: args.map_or(expr.end_byte(), |a| a.start_byte()),
            args: args.map(|a| a.byte_range()),
            value: value.and_then(|v| number(v, self.src)),
            value_range: value.map(|v| v.byte_range()),
            scope,
            removal,
        });
        true
    }

    /// A `pytestmark` value or a `marks=` value: one marker, or a list or tuple of them.
    fn marks_value(&mut self, value: Node<'t>, scope: Scope, whole: Option<Range<usize>>) {
        match value.kind() {
            "list" | "tuple" => {
                let mut cursor = value.walk();
                let items: Vec<Node<'t>> = value
                    .named_children(&mut cursor)
                    .filter(|c| c.kind() != "comment")
                    .collect();
                for item in items {
                    let removal = list_removal(self.src, value, item);
                    self.push(item, scope, removal);
                }
            }
            _ => {
                self.push(value, scope, whole);
            }
        }
    }

    fn decorators(&mut self, decorated: Node<'t>, scope: Scope) {
        let mut cursor = decorated.walk();
        let decorators: Vec<Node<'t>> = decorated
            .named_children(&mut cursor)
            .filter(|c| c.kind() == "decorator")
            .collect();
        for d in decorators {
            if let Some(expr) = d.named_child(0) {
                let removal = whole_lines(self.src, d.byte_range());
                self.push(expr, scope, removal);
            }
        }
    }

    /// `pytest.param(..., marks=...)`.
    fn param(&mut self, call: Node<'t>) {
        let Some(function) = call.child_by_field_name("function") else {
            return;
        };
        let name = text(function, self.src);
        if name.rsplit('.').next() != Some("param") {
            return;
        }
        let Some(args) = call.child_by_field_name("arguments") else {
            return;
        };
        let mut cursor = args.walk();
        let children: Vec<Node<'t>> = args.children(&mut cursor).collect();
        for (i, kw) in children.iter().enumerate() {
            if kw.kind() != "keyword_argument" {
                continue;
            }
            let (Some(key), Some(value)) = (
                kw.child_by_field_name("name"),
                kw.child_by_field_name("value"),
            ) else {
                continue;
            };
            if text(key, self.src) != "marks" {
                continue;
            }
            // `, marks=pytest.mark.x`: the keyword and the comma before it.
            let whole = children[..i]
                .iter()
                .rposition(|c| c.kind() == ",")
                .map(|c| children[c].start_byte()..kw.end_byte());
            self.marks_value(value, Scope::Param, whole);
        }
    }

    fn pytestmark(&mut self, stmt: Node<'t>, scope: Scope) {
        let Some(assign) = stmt.named_child(0).filter(|a| a.kind() == "assignment") else {
            return;
        };
        let (Some(left), Some(right)) = (
            assign.child_by_field_name("left"),
            assign.child_by_field_name("right"),
        ) else {
            return;
        };
        if left.kind() == "identifier" && text(left, self.src) == "pytestmark" {
            let whole = whole_lines(self.src, stmt.byte_range());
            self.marks_value(right, scope, whole);
        }
    }

    /// Every node: definitions' decorators and bodies, `pytestmark` of
    /// modules and classes, and `pytest.param` calls anywhere.
    fn walk(&mut self, root: Node<'t>) {
        let mut stack = vec![(root, Scope::Module)];
        while let Some((node, body)) = stack.pop() {
            match node.kind() {
                "decorated_definition" => {
                    let scope = match node.child_by_field_name("definition").map(|d| d.kind()) {
                        Some("class_definition") => Scope::Class,
                        _ => Scope::Function,
                    };
                    self.decorators(node, scope);
                }
                "expression_statement" if matches!(body, Scope::Module | Scope::Class) => {
                    self.pytestmark(node, body);
                }
                "call" => self.param(node),
                _ => {}
            }
            let inner = match node.kind() {
                "class_definition" => Scope::Class,
                "function_definition" => Scope::Function,
                _ => body,
            };
            let mut cursor = node.walk();
            for child in node.children(&mut cursor) {
                stack.push((child, inner));
            }
        }
    }
}

/// Every literal marker of a module, in source order.
pub fn sites(src: &[u8], tree: &Tree) -> Vec<Site> {
    let mut walk = Walk {
        src,
        sites: Vec::new(),
    };
    walk.walk(tree.root_node());
    walk.sites.sort_by_key(|s| s.name_range.start);
    walk.sites
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::grammar::parser;

    fn of(src: &str) -> Vec<(String, Scope, Option<f64>, Option<String>)> {
        let tree = parser().parse(src, None).unwrap();
        sites(src.as_bytes(), &tree)
            .into_iter()
            .map(|s| {
                let removed = s.removal.map(|r| src[r].to_string());
                (s.name, s.scope, s.value, removed)
            })
            .collect()
    }

    #[test]
    fn every_placement_is_found_with_what_dropping_it_deletes() {
        let src = "import pytest\n\
                   pytestmark = [pytest.mark.gpu_1, pytest.mark.nightly]\n\
                   \n\
                   @pytest.mark.timeout(60)  # slow\n\
                   @pytest.mark.parametrize('x', [1, pytest.param(2, marks=pytest.mark.gpu_2)])\n\
                   def test_a(x):\n    pass\n\
                   \n\
                   @pytest.mark.e2e\n\
                   class TestB:\n    pytestmark = pytest.mark.vram_gib(gib=3.5)\n\n    def test_b(self):\n        pass\n";
        assert_eq!(
            of(src),
            [
                ("gpu_1".into(), Scope::Module, None, Some("pytest.mark.gpu_1, ".into())),
                ("nightly".into(), Scope::Module, None, Some(", pytest.mark.nightly".into())),
                ("timeout".into(), Scope::Function, Some(60.0), Some("@pytest.mark.timeout(60)  # slow\n".into())),
                ("parametrize".into(), Scope::Function, None, Some("@pytest.mark.parametrize('x', [1, pytest.param(2, marks=pytest.mark.gpu_2)])\n".into())),
                ("gpu_2".into(), Scope::Param, None, Some(", marks=pytest.mark.gpu_2".into())),
                ("e2e".into(), Scope::Class, None, Some("@pytest.mark.e2e\n".into())),
                ("vram_gib".into(), Scope::Class, Some(3.5), Some("    pytestmark = pytest.mark.vram_gib(gib=3.5)\n".into())),
            ]
        );
    }

    #[test]
    fn computed_markers_are_no_sites() {
        let src = "import pytest\nGPU = pytest.mark.gpu_1\n@GPU\n@getattr(pytest.mark, 'gpu_2')\n@other.gpu_1\ndef test_a():\n    pass\n";
        assert!(of(src).is_empty());
    }

    #[test]
    fn one_per_line_lists_drop_whole_lines() {
        let src = "import pytest\npytestmark = [\n    pytest.mark.gpu_1,\n    pytest.mark.gpu_2,  # too many\n]\n";
        let found = of(src);
        assert_eq!(
            found[1].3.as_deref(),
            Some("    pytest.mark.gpu_2,  # too many\n")
        );
    }
}
