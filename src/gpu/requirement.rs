//! What one test asks of the machine, read from its markers: NVIDIA GPUs
//! (`gpu_N`), GPU models, VRAM (the configured marker, in GiB) and the
//! packages its markers need (frameworks, or any marker under `[packages]`).

// `number` lives with the markers (validation shows numbers too); the
// GPU files name it here.
pub use crate::taxonomy::number;
use crate::taxonomy::{Groups, Resolution};
use crate::taxonomy::{Item, Mark, MarkValue};
use crate::taxonomy::{GPU_MODEL, HARDWARE};

use super::rules::Rules;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Requirement {
    /// The NVIDIA-family hardware marker and its GPU count.
    pub hardware: Option<(String, u32)>,
    pub models: Vec<String>,
    pub vram_gib: Option<f64>,
    /// The markers it carries that need a package installed.
    pub package_markers: Vec<String>,
}

impl Requirement {
    /// GPUs the `gpu_N` marker asks for.
    pub fn marked_gpus(&self) -> u32 {
        self.hardware.as_ref().map_or(0, |(_, n)| *n)
    }

    /// GPUs the test cannot run without: a model or a VRAM need above 0
    /// implies one (a need of 0 is a CPU-only test saying so).
    pub fn gpus(&self) -> u32 {
        let n = self.marked_gpus();
        if n == 0 && (!self.models.is_empty() || self.vram_gib.is_some_and(|g| g > 0.0)) {
            1
        } else {
            n
        }
    }
}

fn shown(v: &MarkValue) -> String {
    match v {
        MarkValue::None => "None".into(),
        MarkValue::Bool(b) => if *b { "True" } else { "False" }.into(),
        MarkValue::Int(i) => i.to_string(),
        MarkValue::Float(f) => number(*f),
        MarkValue::Str(s) => format!("{s:?}"),
        MarkValue::Other(r) => r.clone(),
    }
}

/// The GiB of a VRAM marker: its first argument, or `gib=`.
fn vram(mark: &Mark, nodeid: &str) -> Result<f64, String> {
    let value = mark.args.first().or_else(|| mark.kwargs.get("gib"));
    match value.and_then(MarkValue::as_f64) {
        Some(gib) if gib.is_finite() && gib >= 0.0 => Ok(gib),
        _ => {
            let args: Vec<String> = mark
                .args
                .iter()
                .map(shown)
                .chain(mark.kwargs.iter().map(|(k, v)| format!("{k}={}", shown(v))))
                .collect();
            Err(format!(
                "{nodeid}: @pytest.mark.{}({}) needs one number, the GiB of GPU memory the test needs, e.g. @pytest.mark.{}(3.8)",
                mark.name,
                args.join(", "),
                mark.name
            ))
        }
    }
}

/// One test's requirement; an error when its VRAM marker has no usable number.
pub fn of(item: &Item, resolved: &Resolution, rules: &Rules) -> Result<Requirement, String> {
    let hardware = resolved
        .in_category(HARDWARE)
        .filter_map(|m| rules.gpus(m).map(|n| (m.to_string(), n)))
        .max_by_key(|(_, n)| *n);
    // The closest marker wins: iter_markers yields the function's first.
    let vram_gib = item
        .marks
        .iter()
        .find(|m| m.name == rules.vram_marker)
        .map(|m| vram(m, &item.nodeid))
        .transpose()?;
    Ok(Requirement {
        hardware,
        models: resolved.in_category(GPU_MODEL).map(String::from).collect(),
        vram_gib,
        package_markers: rules.package_markers(item, resolved),
    })
}

/// The requirements of a batch, worked out once per group of tests that
/// hold the same marks (`Groups`), and shared by hardware decisions, the
/// VRAM budget and GPU-parallel needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Requirements {
    /// One per group.
    pub distinct: Vec<Requirement>,
    /// Each item's index in `distinct`.
    pub of_item: Vec<usize>,
}

impl Requirements {
    /// The requirement of item `i`.
    pub fn get(&self, i: usize) -> &Requirement {
        &self.distinct[self.of_item[i]]
    }
}

/// Every item's requirement, worked out once per group of alike tests
/// (`groups`, made from `items`); the errors of every item whose VRAM
/// marker has no usable number, in the items' order, each naming its test.
pub fn of_batch(
    items: &[Item],
    resolved: &[Resolution],
    groups: &Groups,
    rules: &Rules,
) -> Result<Requirements, Vec<String>> {
    let mut bad = vec![false; groups.first.len()];
    let distinct = groups
        .first
        .iter()
        .enumerate()
        .map(|(g, &i)| {
            of(&items[i], &resolved[i], rules).unwrap_or_else(|_| {
                bad[g] = true;
                Requirement::default()
            })
        })
        .collect();
    // An error names its test: made again for each test of a bad group.
    let errors: Vec<String> = groups
        .of_item
        .iter()
        .enumerate()
        .filter(|(_, &g)| bad[g])
        .filter_map(|(i, _)| of(&items[i], &resolved[i], rules).err())
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Requirements {
        distinct,
        of_item: groups.of_item.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::gpu::rules::Rules;
    use crate::taxonomy::validate;
    use crate::taxonomy::Taxonomy;
    use std::collections::HashSet;

    fn req(marks: Vec<Mark>) -> Result<Requirement, String> {
        let taxonomy = Taxonomy::builtin();
        let rules = Rules::new(&Config::default().gpu, &taxonomy, "defaults").unwrap();
        let item = Item {
            nodeid: "t.py::test".into(),
            line: 1,
            marks: marks.into_iter().map(Into::into).collect(),
        };
        let registered: HashSet<String> = HashSet::from(["vram_gib".to_string()]);
        let r = validate::resolve(
            &taxonomy,
            item.marks.iter().map(|m| m.name.as_str()),
            &registered,
        );
        of(&item, &r, &rules)
    }

    fn vram_mark(args: Vec<MarkValue>) -> Mark {
        Mark {
            name: "vram_gib".into(),
            args,
            ..Mark::default()
        }
    }

    #[test]
    fn markers_become_a_requirement() {
        let r = req(vec![
            Mark::named("gpu_2"),
            Mark::named("h100"),
            Mark::named("trtllm"),
            vram_mark(vec![MarkValue::Float(3.8)]),
            vram_mark(vec![MarkValue::Int(80)]),
        ])
        .unwrap();
        assert_eq!(r.hardware, Some(("gpu_2".into(), 2)));
        assert_eq!(r.models, ["h100"]);
        assert_eq!(r.package_markers, ["trtllm"]);
        assert_eq!(r.vram_gib, Some(3.8));
        assert_eq!(r.gpus(), 2);
    }

    #[test]
    fn a_model_or_vram_needs_a_gpu() {
        let r = req(vec![Mark::named("gpu_0"), Mark::named("a100")]).unwrap();
        assert_eq!((r.marked_gpus(), r.gpus()), (0, 1));
        let r = req(vec![Mark::named("unit")]).unwrap();
        assert_eq!((r.hardware.clone(), r.gpus()), (None, 0));
        // VRAM 0: no GPU memory needed, so no GPU implied.
        let r = req(vec![
            Mark::named("gpu_0"),
            vram_mark(vec![MarkValue::Int(0)]),
        ])
        .unwrap();
        assert_eq!((r.vram_gib, r.gpus()), (Some(0.0), 0));
        let mut m = vram_mark(vec![]);
        m.kwargs.insert("gib".into(), MarkValue::Str("12".into()));
        assert_eq!(req(vec![m]).unwrap().vram_gib, Some(12.0));
    }

    #[test]
    fn a_vram_marker_without_a_number_is_an_error() {
        let err = req(vec![vram_mark(vec![MarkValue::Str("big".into())])]).unwrap_err();
        assert_eq!(
            err,
            "t.py::test: @pytest.mark.vram_gib(\"big\") needs one number, the GiB of GPU memory the test needs, e.g. @pytest.mark.vram_gib(3.8)"
        );
        assert!(req(vec![vram_mark(vec![])]).is_err());
        assert!(req(vec![vram_mark(vec![MarkValue::Float(-1.0)])]).is_err());
        assert!(req(vec![vram_mark(vec![MarkValue::Bool(true)])]).is_err());
    }

    #[test]
    fn a_batch_is_worked_out_once_per_group_and_errors_name_each_test() {
        use std::sync::Arc;
        let taxonomy = Taxonomy::builtin();
        let rules = Rules::new(&Config::default().gpu, &taxonomy, "defaults").unwrap();
        let gpu = Arc::new(Mark::named("gpu_2"));
        let good = Arc::new(vram_mark(vec![MarkValue::Int(40)]));
        let bad = Arc::new(vram_mark(vec![MarkValue::Str("big".into())]));
        let item = |id: &str, marks: &[&Arc<Mark>]| Item {
            nodeid: id.into(),
            line: 0,
            marks: marks.iter().map(|&m| Arc::clone(m)).collect(),
        };
        let items = [
            item("a", &[&gpu, &good]),
            item("b", &[&gpu]),
            item("c", &[&gpu, &good]),
        ];
        let registered: HashSet<String> = HashSet::from(["vram_gib".to_string()]);
        let groups = crate::taxonomy::Groups::of(&items);
        let resolved = groups.resolve(&taxonomy, &items, &registered);
        let reqs = of_batch(
            &items,
            &resolved,
            &crate::taxonomy::Groups::of(&items),
            &rules,
        )
        .unwrap();
        assert_eq!(reqs.distinct.len(), 2);
        for (i, it) in items.iter().enumerate() {
            assert_eq!(*reqs.get(i), of(it, &resolved[i], &rules).unwrap());
        }
        let items = [
            item("a", &[&gpu, &bad]),
            item("b", &[&gpu]),
            item("c", &[&gpu, &bad]),
        ];
        let resolved = crate::taxonomy::Groups::of(&items).resolve(&taxonomy, &items, &registered);
        let errors = of_batch(
            &items,
            &resolved,
            &crate::taxonomy::Groups::of(&items),
            &rules,
        )
        .unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].starts_with("a: "), "{errors:?}");
        assert!(errors[1].starts_with("c: "), "{errors:?}");
    }

    #[test]
    fn numbers_show_as_written() {
        assert_eq!(number(40.0), "40");
        assert_eq!(number(3.8), "3.8");
    }
}
