//! Which collected tests a run keeps, decided for the whole batch at once:
//! the pipeline's lifecycle (a test runs in its own pipeline and every later
//! one), the stage (one stage, or the union of the pipeline's stages), then
//! the framework. A deselected test keeps the first reason that removed it,
//! in that order. A kept test remembers the first stage that selects it and
//! whether it gates the pipeline.

pub mod budgets;
pub mod changes;
mod config;
pub mod expr;
mod framework;
pub mod matcher;
pub mod pipeline;
pub mod plan;

pub use config::{Agnostic, FrameworksConfig, PipelineConfig, StageConfig};
pub use framework::Frameworks;

use crate::selection::pipeline::Pipeline;
use crate::taxonomy::validate::Resolution;
use crate::taxonomy::Item;
use crate::taxonomy::{Taxonomy, FRAMEWORK, LIFECYCLE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Its lifecycle marker is later than the pipeline's.
    Lifecycle,
    /// It has no lifecycle marker at all (only when validation is not strict).
    NoLifecycle,
    /// No stage (or not the chosen stage) selects it.
    Stage,
    /// It belongs to another framework, or to none when those are dropped.
    Framework,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::Lifecycle,
        Reason::NoLifecycle,
        Reason::Stage,
        Reason::Framework,
    ];

    /// A stable key for Python and the summary.
    pub fn key(self) -> &'static str {
        match self {
            Reason::Lifecycle => "lifecycle",
            Reason::NoLifecycle => "no_lifecycle",
            Reason::Stage => "stage",
            Reason::Framework => "framework",
        }
    }
}

/// Keep only one framework's tests.
#[derive(Debug, Clone, Copy)]
pub struct FrameworkFilter<'a> {
    pub name: &'a str,
    pub agnostic: Agnostic,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    pub pipeline: Option<&'a Pipeline>,
    /// One stage of the pipeline (an index), or None for all of them.
    pub stage: Option<usize>,
    pub framework: Option<FrameworkFilter<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// None: the test is selected.
    pub reason: Option<Reason>,
    /// The first stage of the pipeline that selects the test.
    pub stage: Option<usize>,
    /// False when the pipeline's gating expression leaves it out.
    pub gating: bool,
}

/// The earliest lifecycle a test carries: a test marked nightly and weekly
/// runs nightly, and so in every later pipeline too.
pub fn lifecycle_rank(taxonomy: &Taxonomy, r: &Resolution) -> Option<usize> {
    let order = &taxonomy.category(LIFECYCLE)?.markers;
    r.in_category(LIFECYCLE)
        .filter_map(|m| order.iter().position(|o| o == m))
        .min()
}

/// Does the test run in a pipeline with this lifecycle rank?
pub fn lifecycle_reason(taxonomy: &Taxonomy, r: &Resolution, rank: usize) -> Option<Reason> {
    match lifecycle_rank(taxonomy, r) {
        None => Some(Reason::NoLifecycle),
        Some(own) if own > rank => Some(Reason::Lifecycle),
        Some(_) => None,
    }
}

pub fn framework_keeps(filter: &FrameworkFilter, r: &Resolution) -> bool {
    let mut frameworks = r.in_category(FRAMEWORK).peekable();
    if frameworks.peek().is_none() {
        return filter.agnostic == Agnostic::Keep;
    }
    frameworks.any(|f| f == filter.name)
}

/// The first stage (from `from`, or only `only`) whose expression matches.
pub fn first_stage(
    pipeline: &Pipeline,
    only: Option<usize>,
    item: &Item,
    r: &Resolution,
) -> Option<usize> {
    match only {
        Some(i) => pipeline.stages[i].expr.matches(item, r).then_some(i),
        None => pipeline.stages.iter().position(|s| s.expr.matches(item, r)),
    }
}

pub fn verdict(taxonomy: &Taxonomy, req: &Request, item: &Item, r: &Resolution) -> Verdict {
    let dropped = |reason| Verdict {
        reason: Some(reason),
        stage: None,
        gating: true,
    };
    let mut stage = None;
    if let Some(p) = req.pipeline {
        if let Some(reason) = lifecycle_reason(taxonomy, r, p.lifecycle_rank) {
            return dropped(reason);
        }
        stage = first_stage(p, req.stage, item, r);
        if stage.is_none() {
            return dropped(Reason::Stage);
        }
    }
    if let Some(f) = &req.framework {
        if !framework_keeps(f, r) {
            return dropped(Reason::Framework);
        }
    }
    let gating = req
        .pipeline
        .and_then(|p| p.gating.as_ref())
        .is_none_or(|g| g.matches(item, r));
    Verdict {
        reason: None,
        stage,
        gating,
    }
}

/// Verdicts for the tests at `indices` of the batch.
/// Sequential: per test the work is a few microseconds, less than what
/// waking worker threads costs in CPU time on a 2-core CI machine.
pub fn select(
    taxonomy: &Taxonomy,
    req: &Request,
    items: &[Item],
    resolved: &[Resolution],
    indices: &[usize],
) -> Vec<Verdict> {
    indices
        .iter()
        .map(|&i| verdict(taxonomy, req, &items[i], &resolved[i]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::selection::pipeline::Pipelines;
    use crate::taxonomy::validate;
    use std::collections::HashSet;

    fn batch(tests: &[&[&str]]) -> (Vec<Item>, Vec<Resolution>) {
        let t = Taxonomy::builtin();
        let items: Vec<Item> = tests
            .iter()
            .enumerate()
            .map(|(i, marks)| Item::new(format!("t.py::t{i}"), marks))
            .collect();
        let resolved = items
            .iter()
            .map(|i| {
                validate::resolve(
                    &t,
                    i.marks.iter().map(|m| m.name.as_str()),
                    &HashSet::<String>::new(),
                )
            })
            .collect();
        (items, resolved)
    }

    fn run(
        tests: &[&[&str]],
        pipeline: &str,
        stage: Option<&str>,
        fw: Option<(&str, Agnostic)>,
    ) -> Vec<Verdict> {
        let t = Taxonomy::builtin();
        let pipelines = Pipelines::build(&t, &Config::default().pipelines, "built-in").unwrap();
        let p = pipelines.find(pipeline).unwrap();
        let req = Request {
            pipeline: Some(p),
            stage: stage.map(|s| p.stage(s).unwrap()),
            framework: fw.map(|(name, agnostic)| FrameworkFilter { name, agnostic }),
        };
        let (items, resolved) = batch(tests);
        let all: Vec<usize> = (0..items.len()).collect();
        select(&t, &req, &items, &resolved, &all)
    }

    fn reasons(v: &[Verdict]) -> Vec<Option<Reason>> {
        v.iter().map(|v| v.reason).collect()
    }

    #[test]
    fn later_lifecycles_are_left_out_and_earlier_ones_inherited() {
        let tests: &[&[&str]] = &[
            &["pre_merge", "gpu_0", "unit"],
            &["nightly", "gpu_0", "unit"],
            &["weekly", "gpu_0", "unit"],
            &["gpu_0", "unit"],
            &["weekly", "nightly", "gpu_0", "unit"],
        ];
        assert_eq!(
            reasons(&run(tests, "nightly", None, None)),
            [
                None,
                None,
                Some(Reason::Lifecycle),
                Some(Reason::NoLifecycle),
                None
            ]
        );
        assert_eq!(
            reasons(&run(tests, "pre_merge", None, None)),
            [
                None,
                Some(Reason::Lifecycle),
                Some(Reason::Lifecycle),
                Some(Reason::NoLifecycle),
                Some(Reason::Lifecycle)
            ]
        );
    }

    #[test]
    fn the_first_matching_stage_is_remembered() {
        let tests: &[&[&str]] = &[
            &["pre_merge", "gpu_1", "integration", "e2e"],
            &["pre_merge", "gpu_2", "e2e"],
            &["pre_merge", "gpu_0", "stress"],
        ];
        let v = run(tests, "post_merge", None, None);
        assert_eq!(v[0].stage, Some(1), "integration_1 comes before e2e_1");
        assert_eq!(v[1].stage, Some(4));
        assert_eq!(v[2].reason, Some(Reason::Stage));
        let v = run(tests, "post_merge", Some("e2e_1"), None);
        assert_eq!(v[0].stage, Some(3));
        assert_eq!(reasons(&v)[1..], [Some(Reason::Stage), Some(Reason::Stage)]);
    }

    #[test]
    fn frameworks_are_kept_by_inclusion() {
        let tests: &[&[&str]] = &[
            &["nightly", "gpu_1", "e2e", "vllm"],
            &["nightly", "gpu_1", "e2e", "sglang"],
            &["nightly", "gpu_1", "e2e"],
            &["nightly", "gpu_1", "e2e", "vllm", "sglang"],
        ];
        let keep = run(tests, "nightly", None, Some(("vllm", Agnostic::Keep)));
        assert_eq!(reasons(&keep), [None, Some(Reason::Framework), None, None]);
        let drop = run(tests, "nightly", None, Some(("vllm", Agnostic::Drop)));
        assert_eq!(
            reasons(&drop),
            [None, Some(Reason::Framework), Some(Reason::Framework), None]
        );
    }

    #[test]
    fn security_gates_the_release_but_not_nightly() {
        let tests: &[&[&str]] = &[
            &["nightly", "gpu_0", "security"],
            &["nightly", "gpu_1", "e2e"],
        ];
        let nightly = run(tests, "nightly", None, None);
        assert_eq!((nightly[0].gating, nightly[1].gating), (false, true));
        let release = run(tests, "release", None, None);
        assert_eq!((release[0].gating, release[1].gating), (true, true));
    }
}
