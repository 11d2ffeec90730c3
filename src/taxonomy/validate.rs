//! The collection-time rules: every test carries its lifecycle, exactly one
//! hardware marker (the lowest it runs on), its type, no contradictions and
//! no misspelled marker. The same code serves collection and the static lint.

use std::collections::{BTreeMap, HashSet};

use crate::taxonomy::Item;
use crate::taxonomy::{Taxonomy, GPU_MODEL, HARDWARE, LIFECYCLE, TYPE};

/// Stable rule codes, shared with the lint.
pub mod code {
    pub const LIFECYCLE: &str = "DYN001";
    pub const HARDWARE: &str = "DYN002";
    pub const TYPE: &str = "DYN003";
    pub const CONTRADICTION: &str = "DYN004";
    pub const UNKNOWN: &str = "DYN005";
    pub const CATEGORY_COUNT: &str = "DYN006";
    /// Two markers a category's `exclusive` keeps apart.
    pub const EXCLUSIVE: &str = "DYN007";
    /// A VRAM need above 0 on a test marked CPU-only.
    pub const VRAM_ON_CPU: &str = "DYN008";
    /// Arguments a marker does not take, or values its reader cannot use.
    pub const ARGUMENTS: &str = "DYN010";
    pub const ALIAS: &str = "DYN101";
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
    pub fix: String,
}

/// One test that breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub nodeid: String,
    pub line: u32,
    pub problems: Vec<Problem>,
}

/// A deprecated alias in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasUse {
    pub alias: String,
    pub canonical: String,
    pub tests: usize,
    /// The first test using it, to point the warning at.
    pub first_nodeid: String,
    pub first_line: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validation {
    pub findings: Vec<Finding>,
    pub aliases: Vec<AliasUse>,
    pub checked: usize,
}

// Resolution lives with the taxonomy; named here too, where the rules'
// users have always found it.
pub use crate::taxonomy::{resolve, Resolution};

fn mark_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("@pytest.mark.{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rules for one resolved test.
pub fn check(taxonomy: &Taxonomy, r: &Resolution) -> Vec<Problem> {
    let mut problems = Vec::new();
    let covered = typo_categories(taxonomy, r);
    for (name, suggestion) in &r.typos {
        problems.push(Problem {
            code: code::UNKNOWN,
            message: format!("unknown marker '{name}'"),
            fix: format!("did you mean @pytest.mark.{suggestion}?"),
        });
    }
    for category in &taxonomy.categories {
        let have: Vec<String> = r.in_category(&category.name).map(String::from).collect();
        let count = u32::try_from(have.len()).unwrap_or(u32::MAX);
        let rule = match category.name.as_str() {
            LIFECYCLE => code::LIFECYCLE,
            HARDWARE => code::HARDWARE,
            TYPE => code::TYPE,
            _ => code::CATEGORY_COUNT,
        };
        problems.extend(too_few(category, r, count, rule, &covered));
        if let Some(max) = category.max {
            if count > max {
                problems.push(too_many(taxonomy, &category.name, &have, max, rule));
            }
        }
        problems.extend(exclusive(category, r));
    }
    problems.extend(model_on_cpu(taxonomy, r));
    problems
}

/// The categories a typo covers: fixing the typo fixes both.
fn typo_categories<'a>(taxonomy: &'a Taxonomy, r: &Resolution) -> HashSet<&'a str> {
    let mut covered: HashSet<&str> = r
        .typos
        .values()
        .filter_map(|s| taxonomy.marker(s).map(|d| d.category.as_str()))
        .collect();
    // A typo of a marker that satisfies a category covers that category too.
    for category in &taxonomy.categories {
        if r.typos.values().any(|s| category.satisfied_by.contains(s)) {
            covered.insert(category.name.as_str());
        }
    }
    covered
}

/// Fewer of a category's markers than its `min`, unless another marker
/// (`satisfied_by`) or a typo covers it.
fn too_few(
    category: &crate::taxonomy::Category,
    r: &Resolution,
    count: u32,
    rule: &'static str,
    covered: &HashSet<&str>,
) -> Option<Problem> {
    // `satisfied_by`: another marker meets the requirement (`max` still holds).
    let satisfied = category
        .satisfied_by
        .iter()
        .any(|m| r.markers.contains_key(m));
    if count >= category.min || satisfied || covered.contains(category.name.as_str()) {
        return None;
    }
    let options = match category.name.as_str() {
        HARDWARE => "the lowest hardware it runs on: ".to_string(),
        _ => "one of ".to_string(),
    };
    Some(Problem {
        code: rule,
        message: if category.min == 1 {
            format!("no {} marker", category.name)
        } else {
            format!(
                "{count} {} markers, at least {} needed",
                category.name, category.min
            )
        },
        fix: if category.satisfied_by.is_empty() {
            format!("add {options}{}", mark_list(&category.markers))
        } else {
            format!(
                "add {options}{}; or one of {}, which meet it too",
                mark_list(&category.markers),
                mark_list(&category.satisfied_by)
            )
        },
    })
}

/// A GPU model on a CPU-only test: one problem per model marker.
fn model_on_cpu(taxonomy: &Taxonomy, r: &Resolution) -> Vec<Problem> {
    let Some(cpu) = r
        .in_category(HARDWARE)
        .find(|m| taxonomy.marker(m).and_then(|d| d.devices) == Some(0))
    else {
        return Vec::new();
    };
    r.in_category(GPU_MODEL)
        .map(|model| Problem {
            code: code::CONTRADICTION,
            message: format!("marked {model} and {cpu}: a GPU model needs a GPU"),
            fix: format!(
                "mark it with the GPUs it needs (@pytest.mark.gpu_1 or more) or remove @pytest.mark.{model}"
            ),
        })
        .collect()
}

/// Markers a category's `exclusive` keeps apart, carried together.
fn exclusive<'a>(
    category: &'a crate::taxonomy::Category,
    r: &'a Resolution,
) -> impl Iterator<Item = Problem> + 'a {
    category.exclusive.iter().filter_map(move |group| {
        let carried: Vec<String> = group
            .iter()
            .filter(|m| r.markers.contains_key(*m))
            .cloned()
            .collect();
        (carried.len() >= 2).then(|| Problem {
            code: code::EXCLUSIVE,
            message: format!(
                "marked {}: the {} category keeps them apart",
                carried.join(" and "),
                category.name
            ),
            fix: format!("keep one of {}", mark_list(&carried)),
        })
    })
}

/// The VRAM need a test's closest VRAM marker states, when it is a number.
pub fn vram_need(taxonomy: &Taxonomy, item: &Item) -> Option<f64> {
    let mark = item.marks.iter().find(|m| m.name == taxonomy.vram_marker)?;
    mark.args
        .first()
        .or_else(|| mark.kwargs.get("gib"))
        .and_then(crate::taxonomy::MarkValue::as_f64)
}

/// A VRAM need above 0 on a CPU-only (`gpu_0`) test: it cannot be both.
/// A need of 0 is how CPU-only tests say "no GPU memory".
pub fn vram_problem(taxonomy: &Taxonomy, r: &Resolution, vram: Option<f64>) -> Option<Problem> {
    let gib = vram.filter(|g| *g > 0.0)?;
    let cpu = r
        .in_category(HARDWARE)
        .find(|m| taxonomy.marker(m).and_then(|d| d.devices) == Some(0))?;
    let marker = &taxonomy.vram_marker;
    let shown = crate::taxonomy::number(gib);
    Some(Problem {
        code: code::VRAM_ON_CPU,
        message: format!("marked {cpu} and {marker}({shown}): GPU memory needs a GPU"),
        fix: format!(
            "mark it with the GPUs it needs (@pytest.mark.gpu_1 or more), or write @pytest.mark.{marker}(0) for a CPU-only test"
        ),
    })
}

fn too_many(
    taxonomy: &Taxonomy,
    category: &str,
    have: &[String],
    max: u32,
    rule: &'static str,
) -> Problem {
    let listed = have.join(" and ");
    if category == HARDWARE && max == 1 {
        let lowest = have
            .iter()
            .min_by_key(|m| {
                taxonomy
                    .marker(m)
                    .and_then(|d| d.devices)
                    .unwrap_or(u32::MAX)
            })
            .cloned()
            .unwrap_or_default();
        let others: Vec<_> = have.iter().filter(|m| **m != lowest).cloned().collect();
        return Problem {
            code: rule,
            message: format!(
                "marked {listed}: a test carries exactly one hardware marker, the lowest it runs on"
            ),
            fix: format!(
                "keep @pytest.mark.{lowest} and remove {}",
                mark_list(&others)
            ),
        };
    }
    Problem {
        code: rule,
        message: format!("marked {listed}: at most {max} {category} marker(s) allowed"),
        fix: format!("keep at most {max} of them"),
    }
}

/// Check a whole batch of collected tests at once.
pub fn validate<S: std::hash::BuildHasher + Sync>(
    taxonomy: &Taxonomy,
    items: &[Item],
    registered: &HashSet<String, S>,
) -> Validation {
    let resolved: Vec<Resolution> = items
        .iter()
        .map(|item| {
            resolve(
                taxonomy,
                item.marks.iter().map(|m| m.name.as_str()),
                registered,
            )
        })
        .collect();
    validate_resolved(taxonomy, items, &resolved)
}

/// The rules over tests whose markers are already resolved.
pub fn validate_resolved(
    taxonomy: &Taxonomy,
    items: &[Item],
    resolved: &[Resolution],
) -> Validation {
    // The rules read only the resolution and the VRAM need: worked out once
    // per shared resolution (a group of alike tests) and need.
    let mut seen: foldhash::HashMap<(usize, Option<u64>), Vec<Problem>> =
        foldhash::HashMap::default();
    let findings: Vec<Finding> = items
        .iter()
        .zip(resolved.iter())
        .filter_map(|(item, r)| {
            let vram = vram_need(taxonomy, item);
            let problems = seen
                .entry((r.key(), vram.map(f64::to_bits)))
                .or_insert_with(|| {
                    let mut problems = check(taxonomy, r);
                    problems.extend(vram_problem(taxonomy, r, vram));
                    problems
                });
            (!problems.is_empty()).then(|| Finding {
                nodeid: item.nodeid.clone(),
                line: item.line,
                problems: problems.clone(),
            })
        })
        .collect();
    let mut alias_counts: BTreeMap<(String, String), (usize, &Item)> = BTreeMap::new();
    for (item, r) in items.iter().zip(resolved) {
        for pair in &r.aliases {
            alias_counts.entry(pair.clone()).or_insert((0, item)).0 += 1;
        }
    }
    Validation {
        findings,
        aliases: alias_counts
            .into_iter()
            .map(|((alias, canonical), (tests, first))| AliasUse {
                alias,
                canonical,
                tests,
                first_nodeid: first.nodeid.clone(),
                first_line: first.line,
            })
            .collect(),
        checked: items.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(marks: &[&str]) -> Vec<Problem> {
        let t = Taxonomy::builtin();
        let registered: HashSet<String> = ["parametrize".to_string()].into();
        check(&t, &resolve(&t, marks.iter().copied(), &registered))
    }

    fn codes(marks: &[&str]) -> Vec<&'static str> {
        problems(marks).into_iter().map(|p| p.code).collect()
    }

    #[test]
    fn a_fully_marked_test_passes() {
        assert!(codes(&["pre_merge", "gpu_0", "unit", "parametrize"]).is_empty());
        assert!(codes(&["nightly", "weekly", "gpu_2", "e2e", "vllm", "h100"]).is_empty());
    }

    #[test]
    fn each_required_category_is_reported() {
        assert_eq!(codes(&["gpu_0", "unit"]), [code::LIFECYCLE]);
        assert_eq!(codes(&["nightly", "unit"]), [code::HARDWARE]);
        assert_eq!(codes(&["nightly", "gpu_1"]), [code::TYPE]);
        assert_eq!(codes(&[]), [code::LIFECYCLE, code::HARDWARE, code::TYPE]);
    }

    #[test]
    fn two_hardware_markers_name_the_lowest() {
        let p = problems(&["nightly", "unit", "gpu_2", "gpu_1"]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].code, code::HARDWARE);
        assert_eq!(
            p[0].fix,
            "keep @pytest.mark.gpu_1 and remove @pytest.mark.gpu_2"
        );
    }

    #[test]
    fn a_gpu_model_on_a_cpu_test_is_a_contradiction() {
        let p = problems(&["nightly", "unit", "gpu_0", "h100"]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].code, code::CONTRADICTION);
        assert!(p[0].message.contains("h100 and gpu_0"));
    }

    #[test]
    fn a_typo_is_reported_once_with_its_suggestion() {
        let p = problems(&["premerge", "gpu_0", "unit"]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].fix, "did you mean @pytest.mark.pre_merge?");
        assert_eq!(
            codes(&["pre_merge", "gpus_needed_1", "intergration"]),
            [code::UNKNOWN, code::UNKNOWN]
        );
    }

    #[test]
    fn registered_foreign_markers_are_not_typos() {
        let t = Taxonomy::builtin();
        let registered: HashSet<String> = ["nightlyx".to_string()].into();
        let r = resolve(
            &t,
            ["nightlyx", "nightly", "gpu_0", "unit"].into_iter(),
            &registered,
        );
        assert!(check(&t, &r).is_empty());
    }

    #[test]
    fn satisfied_by_meets_the_requirement_and_max_still_holds() {
        let mut t = Taxonomy::builtin();
        t.category_mut(HARDWARE).unwrap().satisfied_by = vec!["k8s".into()];
        let registered: HashSet<String> = HashSet::new();
        let codes = |marks: &[&str]| -> Vec<&'static str> {
            check(&t, &resolve(&t, marks.iter().copied(), &registered))
                .into_iter()
                .map(|p| p.code)
                .collect()
        };
        assert!(codes(&["nightly", "e2e", "k8s"]).is_empty());
        assert_eq!(
            codes(&["nightly", "e2e", "k8s", "gpu_1", "gpu_2"]),
            [code::HARDWARE]
        );
        assert_eq!(codes(&["nightly", "e2e"]), [code::HARDWARE]);
        let p = check(
            &t,
            &resolve(&t, ["nightly", "e2e"].into_iter(), &registered),
        );
        assert!(
            p[0].fix
                .ends_with("or one of @pytest.mark.k8s, which meet it too"),
            "{}",
            p[0].fix
        );
        // A typo of k8s covers the category: fixing the typo fixes both.
        assert_eq!(codes(&["nightly", "e2e", "k8"]), [code::UNKNOWN]);
    }

    #[test]
    fn exclusive_markers_are_reported_with_both_names() {
        let mut t = Taxonomy::builtin();
        t.category_mut(TYPE).unwrap().exclusive = vec![vec!["e2e".into(), "integration".into()]];
        let registered: HashSet<String> = HashSet::new();
        let p = check(
            &t,
            &resolve(
                &t,
                ["nightly", "gpu_0", "e2e", "integration"].into_iter(),
                &registered,
            ),
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].code, code::EXCLUSIVE);
        assert_eq!(
            p[0].message,
            "marked e2e and integration: the type category keeps them apart"
        );
        assert_eq!(
            p[0].fix,
            "keep one of @pytest.mark.e2e, @pytest.mark.integration"
        );
        let ok = check(
            &t,
            &resolve(
                &t,
                ["nightly", "gpu_0", "e2e", "unit"].into_iter(),
                &registered,
            ),
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn vram_above_zero_on_a_cpu_test_is_a_contradiction() {
        use crate::taxonomy::{Mark, MarkValue};
        use std::sync::Arc;
        let t = Taxonomy::builtin();
        let item = |gib: f64, hw: &str| Item {
            nodeid: "a.py::t".into(),
            line: 1,
            marks: vec![
                Arc::new(Mark::named("nightly")),
                Arc::new(Mark::named(hw)),
                Arc::new(Mark::named("unit")),
                Arc::new(Mark {
                    name: "vram_gib".into(),
                    args: vec![MarkValue::Float(gib)],
                    ..Mark::default()
                }),
            ],
        };
        let registered: HashSet<String> = ["vram_gib".to_string()].into();
        let v = validate(
            &t,
            &[item(0.0, "gpu_0"), item(3.5, "gpu_1"), item(3.5, "gpu_0")],
            &registered,
        );
        assert_eq!(v.findings.len(), 1, "{v:?}");
        let p = &v.findings[0].problems[0];
        assert_eq!(p.code, code::VRAM_ON_CPU);
        assert_eq!(
            p.message,
            "marked gpu_0 and vram_gib(3.5): GPU memory needs a GPU"
        );
    }

    #[test]
    fn aliases_count_for_their_category_and_are_tallied() {
        let mut t = Taxonomy::builtin();
        t.add_alias("premerge", "pre_merge");
        let items = vec![
            Item::new("a.py::t1", &["premerge", "gpu_0", "unit"]),
            Item::new("a.py::t2", &["premerge", "gpu_0", "unit"]),
        ];
        let v = validate(&t, &items, &HashSet::new());
        assert!(v.findings.is_empty());
        assert_eq!(v.aliases.len(), 1);
        assert_eq!(v.aliases[0].tests, 2);
    }
}
