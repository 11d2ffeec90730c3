//! The arguments a marker takes (issue #18): taxonomy markers take none,
//! the VRAM marker one number, `flaky` what the plugin that retries reads.
//! Anything else was silently dropped before; now it is rule DYN010.

use std::collections::HashMap;

use crate::policy::retries::{self, Retrier};
use crate::taxonomy::validate::{code, Finding, Problem, Validation};
use crate::taxonomy::{Item, Mark};
use crate::taxonomy::{Resolved, Taxonomy};

fn problem(message: String, fix: impl Into<String>) -> Problem {
    Problem {
        code: code::ARGUMENTS,
        message,
        fix: fix.into(),
    }
}

/// The VRAM marker: one number, positional or `gib=`.
fn vram(mark: &Mark) -> Option<Problem> {
    let unknown: Vec<&str> = mark
        .kwargs
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "gib")
        .collect();
    let given = mark.args.len() + mark.kwargs.len();
    if unknown.is_empty() && given == 1 {
        return None;
    }
    let why = if unknown.is_empty() {
        format!("takes one number, not {given} arguments")
    } else {
        format!("takes no argument named {}", unknown.join(", "))
    };
    Some(problem(
        format!("{}: {why}", retries::spelled(mark)),
        format!(
            "give the GiB of GPU memory the test needs, once: @pytest.mark.{}(3.8)",
            mark.name
        ),
    ))
}

/// The problems of one mark; None when it is not one whose arguments we know.
fn check_mark(
    taxonomy: &Taxonomy,
    vram_marker: &str,
    retrier: Retrier,
    mark: &Mark,
) -> Option<Problem> {
    let def = match taxonomy.resolve(&mark.name) {
        Resolved::Known(def) | Resolved::Alias(def) => def,
        Resolved::Unknown if mark.name == vram_marker => return vram(mark),
        Resolved::Unknown => return None,
    };
    if def.name == retries::MARKER {
        return retries::check_arguments(mark, retrier)
            .err()
            .map(|(message, fix)| problem(message, fix));
    }
    if mark.args.is_empty() && mark.kwargs.is_empty() {
        return None;
    }
    Some(problem(
        format!(
            "{}: the {} marker takes no arguments",
            retries::spelled(mark),
            def.category
        ),
        format!(
            "write @pytest.mark.{}; a count or a model is a marker of its own (gpu_N, h100)",
            mark.name
        ),
    ))
}

/// One test's argument problems.
pub fn check(
    taxonomy: &Taxonomy,
    vram_marker: &str,
    retrier: Retrier,
    item: &Item,
) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    for mark in &item.marks {
        if mark.args.is_empty() && mark.kwargs.is_empty() && mark.name != vram_marker {
            continue; // the common case: nothing to check, and no lookup
        }
        if let Some(p) = check_mark(taxonomy, vram_marker, retrier, mark) {
            // A class mark and the function's own may say the same thing.
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Add the argument problems of every item to a validation, keeping the
/// items' order and one finding per test.
pub fn add_to(
    validation: &mut Validation,
    taxonomy: &Taxonomy,
    vram_marker: &str,
    retrier: Retrier,
    items: &[Item],
) {
    let found: Vec<(usize, Vec<Problem>)> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (i, check(taxonomy, vram_marker, retrier, item)))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    if found.is_empty() {
        return;
    }
    let mut index: HashMap<String, usize> = validation
        .findings
        .iter()
        .enumerate()
        .map(|(n, f)| (f.nodeid.clone(), n))
        .collect();
    let mut added = false;
    for (i, problems) in found {
        let item = &items[i];
        if let Some(&n) = index.get(&item.nodeid) {
            validation.findings[n].problems.extend(problems);
        } else {
            index.insert(item.nodeid.clone(), validation.findings.len());
            validation.findings.push(Finding {
                nodeid: item.nodeid.clone(),
                line: item.line,
                problems,
            });
            added = true;
        }
    }
    if added {
        // Back in the items' order, as the other rules report them.
        let order: HashMap<&str, usize> = items
            .iter()
            .enumerate()
            .map(|(i, item)| (item.nodeid.as_str(), i))
            .collect();
        validation
            .findings
            .sort_by_key(|f| order.get(f.nodeid.as_str()).copied().unwrap_or(usize::MAX));
    }
}

/// `(nodeid, message)` of each test whose closest `flaky` marker another
/// retrying plugin cannot use: checked whatever the validation mode, since
/// that plugin would loop (`reruns=10**20`) or crash (`reruns="x"`) on it.
pub fn flaky_problems(retrier: Retrier, items: &[Item]) -> Vec<(String, String)> {
    items
        .iter()
        .filter_map(|item| {
            // The other plugins read the marker by its own name, closest first.
            let mark = item.marks.iter().find(|m| m.name == retries::MARKER)?;
            let (message, fix) = retries::check_arguments(mark, retrier).err()?;
            Some((item.nodeid.clone(), format!("{message}: {fix}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::taxonomy::validate;
    use crate::taxonomy::MarkValue;

    fn mark(name: &str, args: Vec<MarkValue>, kwargs: &[(&str, MarkValue)]) -> Arc<Mark> {
        Arc::new(Mark {
            name: name.into(),
            args,
            kwargs: kwargs
                .iter()
                .map(|(k, v)| ((*k).into(), v.clone()))
                .collect(),
        })
    }

    fn item(nodeid: &str, extra: Vec<Arc<Mark>>) -> Item {
        let mut marks: Vec<Arc<Mark>> = ["pre_merge", "gpu_0", "unit"]
            .iter()
            .map(|m| Arc::new(Mark::named(*m)))
            .collect();
        marks.extend(extra);
        Item {
            nodeid: nodeid.into(),
            line: 1,
            marks,
        }
    }

    fn problems(extra: Vec<Arc<Mark>>, retrier: Retrier) -> Vec<String> {
        check(
            &Taxonomy::builtin(),
            "vram_gib",
            retrier,
            &item("t.py::a", extra),
        )
        .into_iter()
        .map(|p| {
            assert_eq!(p.code, "DYN010");
            assert!(!p.fix.is_empty());
            p.message
        })
        .collect()
    }

    #[test]
    fn taxonomy_markers_take_no_arguments() {
        use MarkValue::Int;
        for m in [
            mark("gpu_2", vec![Int(3)], &[]),
            mark("gpu_1", vec![], &[("count", Int(8))]),
            mark("h100", vec![Int(4)], &[]),
            mark("nightly", vec![MarkValue::Str("why".into())], &[]),
        ] {
            let p = problems(vec![Arc::clone(&m)], Retrier::Dynamo);
            assert_eq!(p.len(), 1, "{m:?}");
            assert!(p[0].contains("takes no arguments"), "{p:?}");
            assert!(
                p[0].starts_with(&format!("@pytest.mark.{}(", m.name)),
                "{p:?}"
            );
        }
        // Markers the taxonomy does not know keep their own arguments.
        let p = problems(
            vec![
                mark("timeout", vec![Int(3)], &[]),
                mark("parametrize", vec![Int(1)], &[]),
            ],
            Retrier::Dynamo,
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn the_vram_marker_takes_one_number() {
        use MarkValue::{Float, Int};
        assert!(problems(
            vec![mark("vram_gib", vec![Float(3.8)], &[])],
            Retrier::Dynamo
        )
        .is_empty());
        assert!(problems(
            vec![mark("vram_gib", vec![], &[("gib", Int(2))])],
            Retrier::Dynamo
        )
        .is_empty());
        let p = problems(
            vec![mark("vram_gib", vec![Int(1), Int(2)], &[])],
            Retrier::Dynamo,
        );
        assert!(p[0].contains("takes one number, not 2 arguments"), "{p:?}");
        let p = problems(vec![mark("vram_gib", vec![], &[])], Retrier::Dynamo);
        assert!(p[0].contains("not 0 arguments"), "{p:?}");
        let p = problems(
            vec![mark("vram_gib", vec![], &[("gb", Int(2))])],
            Retrier::Dynamo,
        );
        assert!(p[0].contains("no argument named gb"), "{p:?}");
    }

    #[test]
    fn flaky_takes_what_its_retrier_reads() {
        use MarkValue::{Int, Other, Str};
        let two = || mark("flaky", vec![Int(1), Int(2)], &[]);
        assert!(problems(vec![two()], Retrier::Dynamo)[0].contains("at most 1 positional"));
        assert!(problems(vec![two()], Retrier::Rerunfailures).is_empty());
        let both = mark("flaky", vec![Int(1)], &[("reruns", Int(2))]);
        assert!(problems(vec![both], Retrier::Rerunfailures)[0].contains("given twice"));
        let huge = mark(
            "flaky",
            vec![],
            &[("reruns", Other("100000000000000000000".into()))],
        );
        for retrier in [Retrier::Dynamo, Retrier::Rerunfailures] {
            let p = problems(vec![Arc::clone(&huge)], retrier);
            assert!(p[0].contains("at most 100"), "{p:?}");
        }
        let text = mark("flaky", vec![], &[("reruns", Str("x".into()))]);
        assert!(problems(vec![text], Retrier::Rerunfailures)[0].contains("whole number"));
        let delay = mark("flaky", vec![], &[("reruns_delay", Int(-1))]);
        assert!(problems(vec![delay], Retrier::Rerunfailures)[0].contains("reruns_delay"));
        let runs = mark(
            "flaky",
            vec![],
            &[("max_runs", Int(3)), ("min_passes", Int(5))],
        );
        assert!(problems(vec![runs], Retrier::Flaky)[0].contains("min_passes"));
        let ok = mark(
            "flaky",
            vec![],
            &[("max_runs", Int(3)), ("min_passes", Int(2))],
        );
        assert!(problems(vec![ok], Retrier::Flaky).is_empty());
    }

    #[test]
    fn another_retriers_flaky_problems_are_listed_by_test() {
        let bad = mark("flaky", vec![], &[("reruns", MarkValue::Str("x".into()))]);
        let items = vec![
            item("t.py::a", vec![bad]),
            item("t.py::b", vec![mark("flaky", vec![], &[])]),
        ];
        let p = flaky_problems(Retrier::Rerunfailures, &items);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "t.py::a");
        assert!(p[0].1.contains("whole number"), "{p:?}");
    }

    #[test]
    fn problems_join_the_other_rules_findings_in_item_order() {
        let t = Taxonomy::builtin();
        let items = vec![
            item("t.py::a", vec![mark("gpu_2", vec![MarkValue::Int(3)], &[])]),
            Item::new("t.py::b", &["unit"]),
            item("t.py::c", vec![mark("h100", vec![MarkValue::Int(4)], &[])]),
        ];
        let registered = std::collections::HashSet::<String>::new();
        let mut v = validate::validate(&t, &items, &registered);
        add_to(&mut v, &t, "vram_gib", Retrier::Dynamo, &items);
        let ids: Vec<_> = v.findings.iter().map(|f| f.nodeid.as_str()).collect();
        assert_eq!(ids, ["t.py::a", "t.py::b", "t.py::c"]);
        // gpu_2 with gpu_0: two hardware markers, and an argument.
        let codes: Vec<_> = v.findings[0].problems.iter().map(|p| p.code).collect();
        assert_eq!(codes, ["DYN002", "DYN010"]);
    }
}
