//! A marker expression checked against the taxonomy and ready to evaluate on
//! collected tests. Every name must be a marker of the taxonomy (or an alias
//! of one); an unknown name is an error at its column with "did you mean".
//! Matching follows pytest's `-m`: a name matches a test that carries the
//! marker, `name(key=value)` one whose marker has that keyword argument.

use std::collections::HashMap;
use std::fmt;

use crate::selection::expr::{self, Expr, SyntaxError, Value};
use crate::taxonomy::validate::Resolution;
use crate::taxonomy::{Item, MarkValue};
use crate::taxonomy::{Resolved, Taxonomy};

/// One marker test of an expression: the canonical name, every name a test
/// may carry for it (the canonical one and its aliases), the keywords.
#[derive(Debug, Clone, PartialEq)]
struct Atom {
    canonical: String,
    spellings: Vec<String>,
    kwargs: Vec<(String, Value)>,
}

/// The expression's tree with names replaced by atoms; as deep as the
/// expression, which `expr` bounds (`MAX_NESTING`).
#[derive(Debug, Clone, PartialEq)]
enum Node {
    False,
    Atom(usize),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

/// An expression that passed the taxonomy check.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// The expression as written.
    pub text: String,
    atoms: Vec<Atom>,
    root: Node,
}

/// Why an expression was refused: a syntax error or an unknown marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub column: usize,
    pub message: String,
    pub fix: String,
}

impl ExprError {
    /// `message at column N`, the expression with a caret under the column.
    pub fn describe(&self, input: &str) -> String {
        format!(
            "{} (column {})\n{}",
            self.message,
            self.column,
            SyntaxError::pointer(input, self.column)
        )
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

/// Parse `text` and check every name against the taxonomy.
pub fn compile(taxonomy: &Taxonomy, text: &str) -> Result<Compiled, ExprError> {
    let parsed = expr::parse(text).map_err(|e| ExprError {
        column: e.column,
        message: e.message,
        fix: "correct the expression; the grammar is pytest's -m: names, and, or, not, parentheses, name(key=value)".into(),
    })?;
    for (name, column) in &parsed.names {
        if let Resolved::Unknown = taxonomy.resolve(name) {
            let fix = match taxonomy.suggest(name) {
                Some(s) => format!("did you mean '{s}'?"),
                None => "use a marker of the taxonomy (`pytest --markers` lists them), or add it under [tool.pytest-dynamo.taxonomy]".into(),
            };
            return Err(ExprError {
                column: *column,
                message: format!("'{name}' is not a marker of the taxonomy"),
                fix,
            });
        }
    }
    let mut atoms = Atoms::default();
    let root = lower(taxonomy, &parsed.expr, &mut atoms);
    let atoms = atoms.list;
    Ok(Compiled {
        text: text.trim().to_string(),
        atoms,
        root,
    })
}

/// The distinct atoms of an expression, found by a map: a chain of 25,000
/// terms made a linear search of them quadratic.
#[derive(Default)]
struct Atoms {
    list: Vec<Atom>,
    index: HashMap<(String, Vec<(String, Value)>), usize>,
}

fn lower(taxonomy: &Taxonomy, e: &Expr, atoms: &mut Atoms) -> Node {
    match e {
        Expr::Empty => Node::False,
        Expr::Name { name, kwargs } => {
            let canonical = match taxonomy.resolve(name) {
                Resolved::Known(def) | Resolved::Alias(def) => def.name.clone(),
                Resolved::Unknown => name.clone(),
            };
            let key = (canonical, kwargs.clone());
            if let Some(index) = atoms.index.get(&key) {
                return Node::Atom(*index);
            }
            let (canonical, kwargs) = key.clone();
            let mut spellings: Vec<String> = taxonomy
                .aliases()
                .filter(|(_, c)| *c == canonical)
                .map(|(a, _)| a.to_string())
                .collect();
            spellings.push(canonical.clone());
            atoms.list.push(Atom {
                canonical,
                spellings,
                kwargs,
            });
            atoms.index.insert(key, atoms.list.len() - 1);
            Node::Atom(atoms.list.len() - 1)
        }
        Expr::Not(a) => Node::Not(Box::new(lower(taxonomy, a, atoms))),
        Expr::And(all) => Node::And(all.iter().map(|a| lower(taxonomy, a, atoms)).collect()),
        Expr::Or(all) => Node::Or(all.iter().map(|a| lower(taxonomy, a, atoms)).collect()),
    }
}

/// Python's `==` between a marker's keyword value and an expression literal
/// (`True == 1`, `2.0 == 2`); values pytest-dynamo cannot read never match.
fn same(mark: &MarkValue, wanted: &Value) -> bool {
    let number = |v: &Value| match v {
        Value::Int(i) => Some(i128::from(*i)),
        Value::Bool(b) => Some(i128::from(*b)),
        _ => None,
    };
    match (mark, wanted) {
        // A Python int beyond 64 bits reaches the core as its repr, which is
        // its decimal form, the very form `BigInt` keeps.
        (MarkValue::Str(a), Value::Str(b)) | (MarkValue::Other(a), Value::BigInt(b)) => a == b,
        (MarkValue::None, Value::None) => true,
        (MarkValue::Int(a), w) => number(w) == Some(i128::from(*a)),
        (MarkValue::Bool(a), w) => number(w) == Some(i128::from(*a)),
        // Exact, as Python compares: 2.0**70 == 2**70, 1e30 != 10**30.
        #[allow(clippy::float_cmp)]
        (MarkValue::Float(a), Value::BigInt(b)) => {
            a.is_finite() && a.fract() == 0.0 && format!("{a:.0}") == *b
        }
        // Exact, as Python compares: 2.0 == 2, 2.5 != 2.
        #[allow(clippy::cast_precision_loss, clippy::float_cmp)]
        (MarkValue::Float(a), w) => number(w).is_some_and(|n| *a == n as f64),
        _ => false,
    }
}

impl Compiled {
    /// Does the test match? `resolution` holds its canonical marker names.
    pub fn matches(&self, item: &Item, resolution: &Resolution) -> bool {
        // Each atom is decided at most once per test.
        let mut seen: [Option<bool>; 32] = [None; 32];
        let mut decide = |i: usize| {
            if let Some(Some(v)) = seen.get(i) {
                return *v;
            }
            let v = self.atom(i, item, resolution);
            if let Some(slot) = seen.get_mut(i) {
                *slot = Some(v);
            }
            v
        };
        eval(&self.root, &mut decide)
    }

    fn atom(&self, i: usize, item: &Item, resolution: &Resolution) -> bool {
        let atom = &self.atoms[i];
        if atom.kwargs.is_empty() {
            return resolution.markers.contains_key(atom.canonical.as_str());
        }
        item.marks.iter().any(|m| {
            atom.spellings.contains(&m.name)
                && atom
                    .kwargs
                    .iter()
                    .all(|(k, v)| m.kwargs.get(k).is_some_and(|mv| same(mv, v)))
        })
    }
}

fn eval(node: &Node, decide: &mut impl FnMut(usize) -> bool) -> bool {
    match node {
        Node::False => false,
        Node::Atom(i) => decide(*i),
        Node::Not(a) => !eval(a, decide),
        Node::And(all) => all.iter().all(|a| eval(a, decide)),
        Node::Or(all) => all.iter().any(|a| eval(a, decide)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taxonomy::validate;
    use crate::taxonomy::Mark;
    use std::collections::{BTreeMap, HashSet};

    fn taxonomy() -> Taxonomy {
        let mut t = Taxonomy::builtin();
        t.insert_marker("other", "gpu", "GPUs by keyword", None, None);
        t.add_alias("premerge", "pre_merge");
        t
    }

    fn item(marks: Vec<Mark>) -> (Item, Resolution) {
        let t = taxonomy();
        let item = Item {
            nodeid: "t.py::t".into(),
            line: 1,
            marks: marks.into_iter().map(Into::into).collect(),
        };
        let r = validate::resolve(
            &t,
            item.marks.iter().map(|m| m.name.as_str()),
            &HashSet::<String>::new(),
        );
        (item, r)
    }

    fn plain(names: &[&str]) -> (Item, Resolution) {
        item(names.iter().map(|n| Mark::named(*n)).collect())
    }

    fn with_kwargs(name: &str, kwargs: &[(&str, MarkValue)]) -> Mark {
        Mark {
            name: name.into(),
            args: Vec::new(),
            kwargs: kwargs
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn matches(expr: &str, test: &(Item, Resolution)) -> bool {
        compile(&taxonomy(), expr)
            .unwrap()
            .matches(&test.0, &test.1)
    }

    #[test]
    fn names_match_the_markers_a_test_carries() {
        let t = plain(&["nightly", "gpu_1", "integration", "vllm"]);
        assert!(matches("integration and (gpu_0 or gpu_1)", &t));
        assert!(!matches("integration and gpu_2", &t));
        assert!(matches("not unit", &t));
        assert!(!matches("", &t));
    }

    #[test]
    fn an_alias_and_its_marker_are_the_same_name() {
        assert!(matches("pre_merge", &plain(&["premerge"])));
        assert!(matches("premerge", &plain(&["pre_merge"])));
        let kw = item(vec![with_kwargs("premerge", &[("x", MarkValue::Int(1))])]);
        assert!(matches("pre_merge(x=1)", &kw));
    }

    #[test]
    fn keywords_compare_as_python_does() {
        let t = item(vec![
            with_kwargs(
                "gpu",
                &[
                    ("count", MarkValue::Int(2)),
                    ("model", MarkValue::Str("h100".into())),
                ],
            ),
            with_kwargs(
                "gpu",
                &[
                    ("count", MarkValue::Float(4.0)),
                    ("big", MarkValue::Bool(true)),
                ],
            ),
        ]);
        assert!(matches("gpu(count=2)", &t));
        assert!(matches("gpu(count=2, model='h100')", &t));
        assert!(
            !matches("gpu(count=2, big=True)", &t),
            "one mark must match all"
        );
        assert!(matches("gpu(count=4, big=1)", &t));
        assert!(!matches("gpu(count=3)", &t));
        assert!(!matches("gpu(count='2')", &t));
        assert!(!matches("gpu(missing=None)", &t));
        let none = item(vec![with_kwargs("gpu", &[("m", MarkValue::None)])]);
        assert!(matches("gpu(m=None)", &none));
        let other = item(vec![with_kwargs(
            "gpu",
            &[("m", MarkValue::Other("<obj>".into()))],
        )]);
        assert!(!matches("gpu(m=None)", &other));
    }

    #[test]
    fn the_spec_typos_are_refused_at_their_column() {
        let err = compile(
            &Taxonomy::builtin(),
            "integration and premerge and (gpus_needed_0 or gpus_needed_1)",
        )
        .unwrap_err();
        assert_eq!(err.column, 17);
        assert_eq!(err.message, "'premerge' is not a marker of the taxonomy");
        assert_eq!(err.fix, "did you mean 'pre_merge'?");
        let err = compile(&Taxonomy::builtin(), "integration and (gpus_needed_0)").unwrap_err();
        assert_eq!(
            (err.column, err.fix.as_str()),
            (18, "did you mean 'gpu_0'?")
        );
        assert!(err
            .describe("integration and (gpus_needed_0)")
            .ends_with("\n    integration and (gpus_needed_0)\n                     ^"));
        let err = compile(&Taxonomy::builtin(), "timeout").unwrap_err();
        assert!(err.fix.contains("pytest --markers"), "{}", err.fix);
    }

    #[test]
    fn a_syntax_error_keeps_its_column() {
        let err = compile(&Taxonomy::builtin(), "unit and (e2e").unwrap_err();
        assert_eq!(err.column, 14);
        assert!(err.message.contains("right parenthesis"));
    }

    #[test]
    fn many_atoms_are_still_decided() {
        let names: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
        let mut t = Taxonomy::builtin();
        for n in &names {
            t.insert_marker("other", n, "x", None, None);
        }
        let c = compile(&t, &names.join(" or ")).unwrap();
        let test = Item::new("a::b", &["m39"]);
        let r = validate::resolve(
            &t,
            test.marks.iter().map(|m| m.name.as_str()),
            &HashSet::<String>::new(),
        );
        assert!(c.matches(&test, &r));
    }
}
