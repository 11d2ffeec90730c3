//! Files pytest never collects: those a `conftest.py` lists in
//! `collect_ignore` / `collect_ignore_glob`, and those `--ignore` /
//! `--ignore-glob` in the ini `addopts` name. Read the way pytest's
//! `pytest_ignore_collect` applies them: the nearest conftest that sets a
//! list decides (its entries relative to its directory), the options add to
//! it (relative to the invocation directory), and a path named on the command
//! line is never ignored.

use std::path::{Component, Path, PathBuf};

use tree_sitter::{Node, Tree};

use crate::lint::discover::fnmatch;
use crate::lint::grammar::fields;
use crate::lint::known::Unresolved;
use crate::lint::literal::{literal, text, Literal};
use crate::lint::source::{children, concatenation, Binding, Scope};

const PATHS: &str = "collect_ignore";
const GLOBS: &str = "collect_ignore_glob";

/// What one conftest.py says about the files below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConftestIgnore {
    /// `collect_ignore`, None when the conftest does not set it.
    pub paths: Option<Vec<String>>,
    /// `collect_ignore_glob`, None when the conftest does not set it.
    pub globs: Option<Vec<String>>,
    /// Where a value is computed, set under a condition, or not a list of
    /// strings: the entries read so far still apply.
    pub unresolved: Option<Unresolved>,
}

/// The strings of a list written in the source (through names and `+`).
fn strings(scope: &Scope<'_>, node: Node<'_>, depth: u32) -> Option<Vec<String>> {
    if depth > 8 {
        return None;
    }
    match node.kind() {
        "list" | "tuple" => children(node)
            .into_iter()
            .map(|item| string(scope, item, depth + 1))
            .collect(),
        "parenthesized_expression" => strings(scope, *children(node).first()?, depth + 1),
        "binary_operator" => concatenation(scope, node, depth, strings),
        "identifier" => match scope.lookup(text(node, scope.src), node.start_byte())? {
            Binding::Value(v) => strings(scope, v, depth + 1),
            _ => None,
        },
        _ => None,
    }
}

/// One string literal, or a name bound to one.
fn string(scope: &Scope<'_>, node: Node<'_>, depth: u32) -> Option<String> {
    if depth > 8 {
        return None;
    }
    if let Some(Literal::Str(s)) = literal(node, scope.src) {
        return Some(s);
    }
    if node.kind() != "identifier" {
        return None;
    }
    match scope.lookup(text(node, scope.src), node.start_byte())? {
        Binding::Value(v) => string(scope, v, depth + 1),
        _ => None,
    }
}

/// Whether a node mentions one of the two names.
fn mentions(node: Node<'_>, src: &[u8]) -> bool {
    let t = text(node, src);
    t.contains(PATHS)
}

/// Read `collect_ignore` and `collect_ignore_glob` from a conftest's
/// module-level statements: assigned, `+=`, `.append`, `.extend`, `.insert`.
pub fn read(src: &[u8], tree: &Tree) -> ConftestIgnore {
    let root = tree.root_node();
    let scope = Scope::new(src, root);
    let mut out = ConftestIgnore::default();
    for stmt in children(root) {
        if stmt.kind() != "expression_statement" {
            // Set in a block (`if`, `try`, a function): known only when it runs.
            if mentions(stmt, src)
                && !matches!(
                    stmt.kind(),
                    "import_statement" | "import_from_statement" | "future_import_statement"
                )
            {
                computed(&scope, &mut out, stmt, "is set under a condition");
            }
            continue;
        }
        for expr in children(stmt) {
            match expr.kind() {
                "assignment" | "augmented_assignment" => assignment(&scope, expr, &mut out),
                "call" => call(&scope, expr, &mut out),
                _ => {}
            }
        }
    }
    out
}

/// The first place the lists are computed: the files they name are linted.
fn computed(scope: &Scope<'_>, out: &mut ConftestIgnore, node: Node<'_>, why: &str) {
    if out.unresolved.is_none() {
        out.unresolved = Some(Unresolved::at(
            node,
            format!(
                "`{}` {why}: the files it names are linted though pytest may not collect them",
                scope.snippet(node)
            ),
        ));
    }
}

/// `collect_ignore` or `collect_ignore_glob`, when `node` is one of them.
fn target<'s>(node: Option<Node<'_>>, src: &'s [u8]) -> Option<&'s str> {
    node.map(|n| text(n, src))
        .filter(|t| *t == PATHS || *t == GLOBS)
}

/// The list a name stands for.
fn slot<'o>(out: &'o mut ConftestIgnore, name: &str) -> &'o mut Option<Vec<String>> {
    if name == PATHS {
        &mut out.paths
    } else {
        &mut out.globs
    }
}

/// `collect_ignore = [...]` or `collect_ignore += [...]`.
fn assignment(scope: &Scope<'_>, expr: Node<'_>, out: &mut ConftestIgnore) {
    let src = scope.src;
    let left = expr.child_by_field_id(fields().left.get());
    let right = expr.child_by_field_id(fields().right.get());
    let Some(name) = target(left, src) else {
        if mentions(expr, src) && left.is_some_and(|l| mentions(l, src)) {
            computed(scope, out, expr, "is assigned in a way not read statically");
        }
        return;
    };
    let values = right.and_then(|r| strings(scope, r, 0));
    let slot = slot(out, name);
    if expr.kind() == "assignment" {
        *slot = Some(Vec::new());
    }
    match values {
        Some(v) => slot.get_or_insert_with(Vec::new).extend(v),
        None => computed(scope, out, expr, "is computed"),
    }
}

/// `collect_ignore.append(...)`, `.extend(...)` or `.insert(i, ...)`.
fn call(scope: &Scope<'_>, expr: Node<'_>, out: &mut ConftestIgnore) {
    let src = scope.src;
    let Some(function) = expr.child_by_field_id(fields().function.get()) else {
        return;
    };
    let object = function.child_by_field_id(fields().object.get());
    let Some(name) = target(object, src) else {
        return;
    };
    let method = function
        .child_by_field_id(fields().attribute.get())
        .map_or("", |a| text(a, src));
    let args = expr
        .child_by_field_id(fields().arguments.get())
        .map(children)
        .unwrap_or_default();
    let values = match (method, args.as_slice()) {
        ("append", [one]) | ("insert", [_, one]) => string(scope, *one, 0).map(|s| vec![s]),
        ("extend", [many]) => strings(scope, *many, 0),
        _ => None,
    };
    let slot = slot(out, name);
    match values {
        Some(v) if slot.is_some() => slot.get_or_insert_with(Vec::new).extend(v),
        _ => computed(scope, out, expr, "is computed"),
    }
}

/// `os.path.abspath` without the file system: `.` and `..` folded.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(part);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `--ignore` and `--ignore-glob` values in `addopts` (both spellings:
/// `--ignore=x` and `--ignore x`).
pub fn from_addopts(addopts: &[String]) -> (Vec<String>, Vec<String>) {
    let mut paths = Vec::new();
    let mut globs = Vec::new();
    let mut args = addopts.iter();
    while let Some(arg) = args.next() {
        if let Some(v) = arg.strip_prefix("--ignore=") {
            paths.push(v.to_string());
        } else if let Some(v) = arg.strip_prefix("--ignore-glob=") {
            globs.push(v.to_string());
        } else if arg == "--ignore" {
            paths.extend(args.next().cloned());
        } else if arg == "--ignore-glob" {
            globs.extend(args.next().cloned());
        }
    }
    (paths, globs)
}

/// Everything that decides which walked paths pytest ignores.
pub struct Ignores<'a> {
    /// Each conftest's directory and what it sets.
    pub conftests: Vec<(&'a Path, &'a ConftestIgnore)>,
    /// `--ignore` paths, absolute.
    pub paths: Vec<PathBuf>,
    /// `--ignore-glob` patterns, absolute.
    pub globs: Vec<String>,
}

impl Ignores<'_> {
    /// The nearest conftest at or above `dir` that sets the list.
    fn nearest<'s>(
        &'s self,
        dir: &Path,
        pick: impl Fn(&ConftestIgnore) -> Option<&Vec<String>>,
    ) -> Option<(&'s Path, &'s Vec<String>)> {
        self.conftests
            .iter()
            .filter(|(d, _)| dir.starts_with(d))
            .filter_map(|(d, c)| pick(c).map(|list| (*d, list)))
            .max_by_key(|(d, _)| d.components().count())
    }

    /// pytest's `pytest_ignore_collect` for one walked path.
    pub fn ignores(&self, path: &Path) -> bool {
        let Some(dir) = path.parent() else {
            return false;
        };
        let path = normalize(path);
        let listed = self
            .nearest(dir, |c| c.paths.as_ref())
            .into_iter()
            .flat_map(|(d, list)| list.iter().map(move |p| normalize(&d.join(p))));
        if listed.chain(self.paths.iter().cloned()).any(|p| p == path) {
            return true;
        }
        let shown = path.to_string_lossy();
        let globbed: Vec<String> = self
            .nearest(dir, |c| c.globs.as_ref())
            .into_iter()
            .flat_map(|(d, list)| {
                list.iter()
                    .map(move |g| normalize(&d.join(g)).to_string_lossy().into_owned())
            })
            .collect();
        globbed
            .iter()
            .chain(&self.globs)
            .any(|g| fnmatch(&shown, g))
    }

    /// Whether a test file found under `root` is collected: neither it nor
    /// a directory between it and `root` is ignored. A file named as the
    /// root itself is always collected.
    pub fn keeps(&self, file: &Path, root: &Path) -> bool {
        file.ancestors()
            .take_while(|p| *p != root && p.starts_with(root))
            .all(|p| !self.ignores(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::marks::testing::parse;

    fn read_src(src: &str) -> ConftestIgnore {
        read(src.as_bytes(), &parse(src))
    }

    #[test]
    fn literal_lists_and_simple_expressions_are_read() {
        let c = read_src(
            "BASE = ['a.py']\ncollect_ignore = BASE + ['b.py']\ncollect_ignore.append('c')\ncollect_ignore += ['d']\ncollect_ignore.extend(('e',))\ncollect_ignore_glob = ['*_old.py']\n",
        );
        assert_eq!(
            c.paths.as_deref(),
            Some(&["a.py", "b.py", "c", "d", "e"].map(String::from)[..])
        );
        assert_eq!(c.globs.as_deref(), Some(&["*_old.py".to_string()][..]));
        assert!(c.unresolved.is_none());
        let c = read_src("import sys\ndef f(): pass\n");
        assert_eq!(c, ConftestIgnore::default());
    }

    #[test]
    fn computed_and_conditional_lists_are_unresolved() {
        for src in [
            "collect_ignore = [str(p) for p in PATHS]\n",
            "import sys\ncollect_ignore = []\nif sys.version_info < (3, 9):\n    collect_ignore.append('x.py')\n",
            "collect_ignore = ['a.py']\ncollect_ignore.append(name())\n",
            "collect_ignore_glob = sorted(x)\n",
        ] {
            let c = read_src(src);
            assert!(c.unresolved.is_some(), "{src}");
        }
        // What is known still applies.
        let c = read_src("collect_ignore = ['a.py']\ncollect_ignore.append(name())\n");
        assert_eq!(c.paths.as_deref(), Some(&["a.py".to_string()][..]));
    }

    #[test]
    fn addopts_ignores_are_read_in_both_spellings() {
        let args: Vec<String> = [
            "-q",
            "--ignore=a",
            "--ignore",
            "b",
            "--ignore-glob=*x*",
            "-x",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            from_addopts(&args),
            (vec!["a".into(), "b".into()], vec!["*x*".into()])
        );
    }

    #[test]
    fn the_nearest_conftest_decides_and_roots_are_kept() {
        let top = ConftestIgnore {
            paths: Some(vec!["legacy".into()]),
            globs: Some(vec!["*_old.py".into()]),
            unresolved: None,
        };
        let sub = ConftestIgnore {
            paths: Some(vec!["test_b.py".into()]),
            globs: None,
            unresolved: None,
        };
        let ignores = Ignores {
            conftests: vec![
                (Path::new("/r/tests"), &top),
                (Path::new("/r/tests/sub"), &sub),
            ],
            paths: vec![PathBuf::from("/r/tests/skipme.py")],
            globs: vec![],
        };
        let root = Path::new("/r/tests");
        assert!(!ignores.keeps(Path::new("/r/tests/legacy/test_a.py"), root));
        assert!(!ignores.keeps(Path::new("/r/tests/test_x_old.py"), root));
        assert!(!ignores.keeps(Path::new("/r/tests/sub/test_b.py"), root));
        // The nearest conftest's list replaces the one above, the globs still come from above.
        assert!(ignores.keeps(Path::new("/r/tests/sub/legacy/test_a.py"), root));
        assert!(!ignores.keeps(Path::new("/r/tests/sub/test_y_old.py"), root));
        assert!(!ignores.keeps(Path::new("/r/tests/skipme.py"), root));
        assert!(ignores.keeps(Path::new("/r/tests/test_a.py"), root));
        // A path named on the command line is collected.
        let named = Path::new("/r/tests/legacy/test_a.py");
        assert!(ignores.keeps(named, named));
    }
}
