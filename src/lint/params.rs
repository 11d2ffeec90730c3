//! `@pytest.mark.parametrize` read statically: its parameter sets, the id
//! pytest gives each, and the markers each `pytest.param(..., marks=...)`
//! adds to its own test.

use tree_sitter::Node;

use crate::lint::grammar::fields;
use crate::lint::known::{ParamSet, Parametrize, Spelled, Unresolved, Val};
use crate::lint::literal::{explicit_id, id_of, literal, make_unique, text, Literal};
use crate::lint::source::{children, concatenation, Binding, Pos, Scope};

struct Args<'t> {
    positional: Vec<Node<'t>>,
    keywords: Vec<(&'t str, Node<'t>)>,
}

impl<'t> Args<'t> {
    fn of(src: &'t [u8], args: Node<'t>) -> Self {
        let mut out = Args {
            positional: Vec::new(),
            keywords: Vec::new(),
        };
        for arg in children(args) {
            if arg.kind() == "keyword_argument" {
                if let (Some(n), Some(v)) = (
                    arg.child_by_field_id(fields().name.get()),
                    arg.child_by_field_id(fields().value.get()),
                ) {
                    out.keywords.push((text(n, src), v));
                }
            } else {
                out.positional.push(arg);
            }
        }
        out
    }

    fn get(&self, index: usize, name: &str) -> Option<Node<'t>> {
        self.keywords
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .or_else(|| self.positional.get(index).copied())
    }
}

/// A value's binding, when it is a name bound at module level.
fn resolve<'t>(scope: &Scope<'t>, mut node: Node<'t>) -> Node<'t> {
    for _ in 0..8 {
        if node.kind() == "parenthesized_expression" {
            match children(node).first() {
                Some(inner) => node = *inner,
                None => break,
            }
        } else if node.kind() == "identifier" {
            match scope.lookup(text(node, scope.src), node.start_byte()) {
                Some(Binding::Value(v)) => node = v,
                _ => break,
            }
        } else {
            break;
        }
    }
    node
}

/// The elements of a list written in the source (through names and `+`).
fn elements<'t>(scope: &Scope<'t>, node: Node<'t>, depth: u32) -> Option<Vec<Node<'t>>> {
    if depth > 8 {
        return None;
    }
    let node = resolve(scope, node);
    match node.kind() {
        "list" | "tuple" => {
            let mut out = Vec::new();
            for item in children(node) {
                if item.kind() == "list_splat" {
                    out.extend(elements(scope, *children(item).first()?, depth + 1)?);
                } else {
                    out.push(item);
                }
            }
            Some(out)
        }
        "binary_operator" => concatenation(scope, node, depth, elements),
        _ => None,
    }
}

/// `range(...)` of integer literals: its values (pytest names each by its value).
/// `range(...)` values of one argument: one set per integer, with pytest's
/// ids (`test_x[0]`), all placed at `pos`.
fn range_sets(scope: &Scope<'_>, values: Node<'_>, pos: Pos) -> Option<Parametrize> {
    let sets = range_values(scope, values)?
        .into_iter()
        .map(|i| ParamSet {
            id: i.to_string(),
            pos,
            marks: Vec::new(),
            unresolved: Vec::new(),
        })
        .collect();
    Some(Parametrize {
        pos,
        sets: Some(sets),
        unknown: None,
    })
}

fn range_values(scope: &Scope<'_>, node: Node<'_>) -> Option<Vec<i64>> {
    let node = resolve(scope, node);
    if node.kind() != "call" {
        return None;
    }
    let function = node.child_by_field_id(fields().function.get())?;
    if text(function, scope.src) != "range"
        || scope.lookup("range", function.start_byte()).is_some()
    {
        return None;
    }
    let args: Option<Vec<i64>> = children(node.child_by_field_id(fields().arguments.get())?)
        .into_iter()
        .map(|a| match literal(a, scope.src) {
            Some(Literal::Int(i)) => i.parse().ok(),
            _ => None,
        })
        .collect();
    let (first, end, by) = match args?.as_slice() {
        [end] => (0, *end, 1),
        [first, end] => (*first, *end, 1),
        [first, end, by] if *by != 0 => (*first, *end, *by),
        _ => return None,
    };
    let mut out = Vec::new();
    let mut v = first;
    while (by > 0 && v < end) || (by < 0 && v > end) {
        if out.len() >= 100_000 {
            return None;
        }
        out.push(v);
        v += by;
    }
    Some(out)
}

fn argnames(scope: &Scope<'_>, node: Option<Node<'_>>) -> Vec<String> {
    let Some(node) = node else {
        return Vec::new();
    };
    let node = resolve(scope, node);
    if let Some(Literal::Str(s)) = literal(node, scope.src) {
        return s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
    }
    elements(scope, node, 0)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| match literal(n, scope.src) {
            Some(Literal::Str(s)) => Some(s),
            _ => None,
        })
        .collect()
}

fn value_id(scope: &Scope<'_>, node: Node<'_>, argname: &str, idx: usize) -> String {
    let fallback = || format!("{argname}{idx}");
    if let Some(lit) = literal(node, scope.src) {
        return id_of(&lit).unwrap_or_else(fallback);
    }
    if node.kind() == "attribute" {
        // A member of a plain Enum of this module: `str()` gives `Color.RED`.
        let object = node.child_by_field_id(fields().object.get());
        if let Some(Binding::Def(class)) =
            object.and_then(|o| scope.lookup(text(o, scope.src), o.start_byte()))
        {
            let bases = class
                .child_by_field_id(fields().superclasses.get())
                .map_or("", |b| text(b, scope.src));
            if matches!(bases, "(Enum)" | "(enum.Enum)") {
                return text(node, scope.src).to_string();
            }
        }
    }
    if node.kind() == "identifier" {
        match scope.lookup(text(node, scope.src), node.start_byte()) {
            Some(Binding::Value(v)) => {
                if let Some(lit) = literal(v, scope.src) {
                    return id_of(&lit).unwrap_or_else(fallback);
                }
            }
            // Functions and classes are named by their `__name__`.
            Some(Binding::Def(_)) => return text(node, scope.src).to_string(),
            _ => {}
        }
    }
    fallback()
}

/// Read a `parametrize(argnames, argvalues, ..., ids=...)` call's arguments.
pub fn parametrize<'t>(scope: &Scope<'t>, args: Node<'t>, pos: Pos, depth: u32) -> Parametrize {
    let args = Args::of(scope.src, args);
    let names = argnames(scope, args.get(0, "argnames"));
    let Some(values) = args.get(1, "argvalues") else {
        return Parametrize {
            pos,
            sets: None,
            unknown: None,
        };
    };
    if names.len() == 1 {
        if let Some(p) = range_sets(scope, values, Pos::of(values)) {
            return p;
        }
    }
    let Some(items) = elements(scope, values, 0) else {
        return Parametrize {
            pos,
            sets: None,
            unknown: computed(scope, values, depth),
        };
    };
    if items.is_empty() {
        return Parametrize {
            pos,
            sets: Some(vec![empty(Pos::of(values))]),
            unknown: None,
        };
    }
    Parametrize {
        pos,
        sets: Some(param_sets(scope, args.get(3, "ids"), &items, &names, depth)),
        unknown: None,
    }
}

/// Values computed at run time: why their markers cannot be known, when
/// they may carry some.
fn computed(scope: &Scope<'_>, values: Node<'_>, depth: u32) -> Option<Unresolved> {
    scope.may_carry_marks(values, depth + 1).then(|| {
        Unresolved::at(
            values,
            format!(
                "parameters computed at run time may carry markers: `{}`",
                text(values, scope.src)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(60)
                    .collect::<String>()
            ),
        )
    })
}

/// pytest makes one skipped test of an empty parameter list.
fn empty(pos: Pos) -> ParamSet {
    ParamSet {
        id: "NOTSET".into(),
        pos,
        marks: vec![Spelled {
            name: "skip".into(),
            pos,
        }],
        unresolved: Vec::new(),
    }
}

/// One parameter set per item, with the ids pytest gives them (`ids=`
/// first), made unique as pytest does.
fn param_sets<'t>(
    scope: &Scope<'t>,
    ids: Option<Node<'t>>,
    items: &[Node<'t>],
    names: &[String],
    depth: u32,
) -> Vec<ParamSet> {
    let explicit: Vec<Option<String>> = ids
        .and_then(|ids| elements(scope, ids, 0))
        .map(|ids| {
            ids.into_iter()
                .map(|n| literal(n, scope.src).and_then(|l| explicit_id(&l)))
                .collect()
        })
        .unwrap_or_default();
    let mut sets: Vec<ParamSet> = items
        .iter()
        .enumerate()
        .map(|(idx, item)| {
            param_set(
                scope,
                *item,
                names,
                idx,
                explicit.get(idx).cloned().flatten(),
                depth,
            )
        })
        .collect();
    let mut ids: Vec<String> = sets.iter().map(|s| s.id.clone()).collect();
    make_unique(&mut ids);
    for (set, id) in sets.iter_mut().zip(ids) {
        set.id = id;
    }
    sets
}

fn param_set(
    scope: &Scope<'_>,
    item: Node<'_>,
    names: &[String],
    idx: usize,
    explicit: Option<String>,
    depth: u32,
) -> ParamSet {
    let src = scope.src;
    let pos = Pos::of(item);
    let resolved = resolve(scope, item);
    let mut marks = Vec::new();
    let mut unresolved = Vec::new();
    let mut own_id = None;
    let values: Option<Vec<_>> = if resolved.kind() == "call"
        && resolved
            .child_by_field_id(fields().function.get())
            .is_some_and(|f| matches!(scope.eval(f, depth + 1), Val::ParamFn))
    {
        let args = resolved
            .child_by_field_id(fields().arguments.get())
            .map(|a| Args::of(src, a));
        if let Some(args) = &args {
            if let Some((_, id)) = args.keywords.iter().find(|(k, _)| *k == "id") {
                own_id = literal(*id, src).and_then(|l| explicit_id(&l));
            }
            if let Some((_, m)) = args.keywords.iter().find(|(k, _)| *k == "marks") {
                let found = scope.mark_list(*m, depth + 1);
                marks = found.marks;
                unresolved = found
                    .unresolved
                    .into_iter()
                    .map(|u| Unresolved {
                        reason: format!("computed pytest.param marks: {}", u.reason),
                        ..u
                    })
                    .collect();
            }
        }
        args.map(|a| a.positional)
    } else if names.len() == 1 {
        Some(vec![item])
    } else {
        match resolved.kind() {
            "tuple" | "list" => Some(children(resolved)),
            _ => None,
        }
    };
    let generated = || match &values {
        Some(v) if v.len() == names.len() && !names.is_empty() => v
            .iter()
            .zip(names)
            .map(|(v, n)| value_id(scope, *v, n, idx))
            .collect::<Vec<_>>()
            .join("-"),
        _ if names.is_empty() => format!("arg{idx}"),
        _ => names
            .iter()
            .map(|n| format!("{n}{idx}"))
            .collect::<Vec<_>>()
            .join("-"),
    };
    ParamSet {
        id: own_id.or(explicit).unwrap_or_else(generated),
        pos,
        marks,
        unresolved,
    }
}

/// A fixture's `params=` (and `ids=`), read as pytest parametrizes the
/// tests using it: like `parametrize(name, params, ids=ids)`.
pub fn fixture_params<'t>(
    scope: &Scope<'t>,
    name: &str,
    values: Node<'t>,
    ids: Option<Node<'t>>,
    pos: Pos,
) -> Parametrize {
    let names = [name.to_string()];
    if let Some(p) = range_sets(scope, values, pos) {
        return p;
    }
    let Some(items) = elements(scope, values, 0) else {
        let unknown = scope.may_carry_marks(values, 1).then(|| {
            Unresolved::at(
                values,
                format!(
                    "fixture `{name}` has parameters computed at run time that may carry markers: `{}`",
                    scope.snippet(values)
                ),
            )
        });
        return Parametrize {
            pos,
            sets: None,
            unknown,
        };
    };
    if items.is_empty() {
        return Parametrize {
            pos,
            sets: Some(vec![empty(pos)]),
            unknown: None,
        };
    }
    Parametrize {
        pos,
        sets: Some(param_sets(scope, ids, &items, &names, 1)),
        unknown: None,
    }
}

/// The argument names of a `parametrize(...)` call's arguments.
pub fn parametrized_names(scope: &Scope<'_>, args: Node<'_>) -> Vec<String> {
    let args = Args::of(scope.src, args);
    argnames(scope, args.get(0, "argnames"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::known::Marks;
    use crate::lint::marks::testing::parse;
    use crate::lint::source::statements;

    fn read(src: &str) -> Marks {
        let tree = parse(src);
        let root = tree.root_node();
        let scope = Scope::new(src.as_bytes(), root);
        let last = children(*statements(root).last().unwrap())[0];
        scope.mark_list(last, 0)
    }

    fn ids(src: &str) -> Vec<String> {
        let m = read(src);
        m.params[0]
            .sets
            .as_ref()
            .unwrap()
            .iter()
            .map(|s| s.id.clone())
            .collect()
    }

    #[test]
    fn ids_are_made_like_pytest() {
        assert_eq!(
            ids("import pytest\npytest.mark.parametrize('x', [1, 'a', None, True, 2.5, -3, (1, 2)])"),
            ["1", "a", "None", "True", "2.5", "-3", "x6"]
        );
        assert_eq!(
            ids("import pytest\npytest.mark.parametrize('x, y', [(1, 'a'), ['b', 2], pytest.param(3, 4, id='own')])"),
            ["1-a", "b-2", "own"]
        );
        assert_eq!(
            ids("import pytest\npytest.mark.parametrize(('x', 'y'), [(1, 1), (1, 1)], ids=['p', None])"),
            ["p", "1-1"]
        );
        assert_eq!(
            ids("import pytest\npytest.mark.parametrize('x', [1, 1, 2])"),
            ["1_0", "1_1", "2"]
        );
        assert_eq!(
            ids("import pytest\nCASES = [1, 2]\npytest.mark.parametrize('x', CASES + [3])"),
            ["1", "2", "3"]
        );
        assert_eq!(
            ids("import pytest\npytest.mark.parametrize('x', [])"),
            ["NOTSET"]
        );
        assert_eq!(
            ids("import pytest\npytest.mark.parametrize('x', range(3))"),
            ["0", "1", "2"]
        );
        assert_eq!(
            ids("import pytest\npytest.mark.parametrize('x', range(4, 0, -2))"),
            ["4", "2"]
        );
        assert_eq!(
            ids("import pytest, enum\nclass C(enum.Enum):\n    A = 1\npytest.mark.parametrize('x', [C.A])"),
            ["C.A"]
        );
        assert_eq!(
            ids("import pytest\ndef f(): pass\nA = 'v'\npytest.mark.parametrize('x', [f, A, len])"),
            ["f", "v", "x2"]
        );
    }

    #[test]
    fn param_marks_belong_to_their_set() {
        let m = read(
            "from pytest import param, mark\nslow = mark.slow\nmark.parametrize('x', [param(1, marks=slow), param(2, marks=[mark.a, mark.b]), 3, param(4, marks=make())])",
        );
        let sets = m.params[0].sets.as_ref().unwrap();
        let names: Vec<Vec<&str>> = sets
            .iter()
            .map(|s| s.marks.iter().map(|m| m.name.as_str()).collect())
            .collect();
        assert_eq!(names, [vec!["slow"], vec!["a", "b"], vec![], vec![]]);
        assert!(sets[3].unresolved[0]
            .reason
            .starts_with("computed pytest.param marks"));
        assert!(m.params[0].has_own_marks());
    }

    #[test]
    fn computed_values_are_unknown_and_flagged_when_they_may_carry_marks() {
        let m = read("import pytest\npytest.mark.parametrize('x', range(n))");
        assert!(m.params[0].sets.is_none());
        assert!(m.params[0].unknown.is_none());
        let m =
            read("import pytest\nM = ['a']\npytest.mark.parametrize('x', [m.upper() for m in M])");
        assert!(m.params[0].unknown.is_none());
        let m = read("import pytest\npytest.mark.parametrize('x', [pytest.param(i, marks=pytest.mark.slow) for i in range(3)])");
        assert!(m.params[0].unknown.is_some());
        let m = read("import pytest\nfrom cases import CASES\npytest.mark.parametrize('x', CASES)");
        assert!(m.params[0].unknown.is_some());
    }
}
