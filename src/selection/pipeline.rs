//! Pipelines and their stages: the strategy's "Mapping Tests to Pipelines"
//! table, and a project's changes to it under
//! `[tool.pytest-dynamo.pipelines.<name>]`.
//!
//! A pipeline runs the tests whose lifecycle marker is at or before its own
//! in the lifecycle order (nightly runs `pre_merge` tests; weekly tests do not
//! run nightly), so the table's `premerge` and `not nightly` terms are not
//! written in the stages. Each stage is an expression in pytest's `-m`
//! language and the machine class it needs.

use std::collections::BTreeMap;

use regex::Regex;
use std::sync::LazyLock;

use crate::error::TABLE;
use crate::error::{Error, Result};
use crate::selection::config::{PipelineConfig, StageConfig};
use crate::selection::matcher::{self, Compiled};
use crate::taxonomy::{Taxonomy, LIFECYCLE};

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    pub expr: Compiled,
    pub machine: String,
    /// pytest options `--dynamo-stage` applies as if given on the command line.
    pub options: Vec<String>,
    /// Seconds the stage may take (None: no budget of its own).
    pub budget: Option<f64>,
}

/// An expression not compiled yet: a built-in one is compiled only when the
/// project keeps it, so a marker removed from the taxonomy is no error where
/// only a replaced or dropped built-in stage named it.
#[derive(Debug, Clone)]
enum Pending {
    Builtin { key: String, text: &'static str },
    Done(Compiled),
}

#[derive(Debug, Clone)]
struct DraftStage {
    name: String,
    expr: Pending,
    machine: String,
    options: Vec<String>,
    budget: Option<f64>,
}

/// A pipeline while the project's tables apply to it.
#[derive(Debug, Clone)]
struct Draft {
    name: String,
    aliases: Vec<String>,
    description: String,
    lifecycle: String,
    lifecycle_rank: usize,
    stages: Vec<DraftStage>,
    gating: Option<Pending>,
    budget: Option<f64>,
}

impl Draft {
    fn stage(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    fn stage_names(&self) -> String {
        self.stages
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub name: String,
    pub aliases: Vec<String>,
    pub description: String,
    pub lifecycle: String,
    pub lifecycle_rank: usize,
    pub stages: Vec<Stage>,
    /// None: every selected test gates.
    pub gating: Option<Compiled>,
    /// Seconds the pipeline may take (None: no budget).
    pub budget: Option<f64>,
}

impl Pipeline {
    pub fn stage(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    fn stage_names(&self) -> String {
        self.stages
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every pipeline of the run, built-in ones first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipelines {
    pub list: Vec<Pipeline>,
}

/// Machine classes of the built-in stages.
pub const CPU: &str = "cpu";
pub const GPU_1: &str = "gpu_1";
pub const MULTI_GPU: &str = "multi_gpu";
pub const CLUSTER: &str = "cluster";

/// `(stage, expression, machine)`.
type StageDef = (&'static str, &'static str, &'static str);

const UNIT: StageDef = ("unit", "unit", CPU);
const INTEGRATION_1: StageDef = ("integration_1", "integration and (gpu_0 or gpu_1)", GPU_1);
const INTEGRATION_2: StageDef = (
    "integration_2",
    "integration and (gpu_2 or gpu_4 or gpu_8)",
    MULTI_GPU,
);
const E2E_1: StageDef = ("e2e_1", "e2e and (gpu_0 or gpu_1)", GPU_1);
const E2E_2: StageDef = ("e2e_2", "e2e and (gpu_2 or gpu_4 or gpu_8)", MULTI_GPU);
const BENCHMARK: StageDef = ("benchmark", "benchmark", CLUSTER);
const SECURITY: StageDef = ("security", "security", CPU);
const STRESS: StageDef = ("stress", "stress", CLUSTER);

/// Security and benchmarks gate only the release: what gates differs by
/// pipeline (pre-merge, nightly, weekly, release).
const NOT_YET_GATING: &str = "not (security or benchmark)";

struct PipelineDef {
    name: &'static str,
    aliases: &'static [&'static str],
    description: &'static str,
    gating: Option<&'static str>,
    stages: &'static [StageDef],
}

const BUILTIN: &[PipelineDef] = &[
    PipelineDef {
        name: "pre_commit",
        aliases: &[],
        description: "every commit: fast CPU tests",
        gating: None,
        stages: &[UNIT],
    },
    PipelineDef {
        name: "pre_merge",
        aliases: &["pr"],
        description: "pull request: unit, integration and E2E on CPU and one GPU",
        gating: None,
        stages: &[UNIT, INTEGRATION_1, E2E_1],
    },
    PipelineDef {
        name: "post_merge",
        aliases: &["push"],
        description: "push to a gated branch: full integration and E2E",
        gating: None,
        stages: &[UNIT, INTEGRATION_1, INTEGRATION_2, E2E_1, E2E_2],
    },
    PipelineDef {
        name: "nightly",
        aliases: &[],
        description: "all tests, all hardware, benchmarks and security",
        gating: Some(NOT_YET_GATING),
        stages: &[
            UNIT,
            INTEGRATION_1,
            INTEGRATION_2,
            E2E_1,
            E2E_2,
            BENCHMARK,
            SECURITY,
        ],
    },
    PipelineDef {
        name: "weekly",
        aliases: &[],
        description: "nightly plus long stress runs",
        gating: Some(NOT_YET_GATING),
        stages: &[
            UNIT,
            INTEGRATION_1,
            INTEGRATION_2,
            E2E_1,
            E2E_2,
            BENCHMARK,
            SECURITY,
            STRESS,
        ],
    },
    PipelineDef {
        name: "release",
        aliases: &[],
        description: "everything, with security and benchmarks gating",
        gating: None,
        stages: &[
            UNIT,
            INTEGRATION_1,
            INTEGRATION_2,
            E2E_1,
            E2E_2,
            BENCHMARK,
            SECURITY,
            STRESS,
        ],
    },
];

static NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_-]*$").expect("valid regex"));

struct Ctx<'a> {
    taxonomy: &'a Taxonomy,
    source: &'a str,
}

impl Ctx<'_> {
    fn err(&self, key: &str, message: impl Into<String>, fix: impl Into<String>) -> Error {
        Error::at_key(
            self.source,
            &format!("{TABLE}.pipelines"),
            key,
            message,
            fix,
        )
    }

    fn compile(&self, key: &str, text: &str, builtin: bool) -> Result<Compiled> {
        matcher::compile(self.taxonomy, text).map_err(|e| {
            let fix = if builtin {
                format!(
                    "{}; or redefine it under [{TABLE}.pipelines] ({})",
                    e.fix,
                    crate::docs_url!("pipelines.md")
                )
            } else {
                e.fix.clone()
            };
            self.err(key, e.describe(text), fix)
        })
    }

    fn lifecycle_rank(&self, key: &str, lifecycle: &str) -> Result<usize> {
        self.taxonomy.lifecycle_rank(lifecycle).ok_or_else(|| {
            let known = self
                .taxonomy
                .category(LIFECYCLE)
                .map(|c| c.markers.join(", "))
                .unwrap_or_default();
            let hint = self
                .taxonomy
                .suggest(lifecycle)
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            self.err(
                key,
                format!("'{lifecycle}' is not a lifecycle marker{hint}"),
                format!("set `lifecycle` to one of: {known}"),
            )
        })
    }

    fn finish(&self, expr: Pending) -> Result<Compiled> {
        match expr {
            Pending::Builtin { key, text } => self.compile(&key, text, true),
            Pending::Done(c) => Ok(c),
        }
    }

    fn budget(&self, key: &str, text: &crate::selection::budgets::BudgetText) -> Result<f64> {
        crate::selection::budgets::parse(text).map_err(|(message, fix)| self.err(key, message, fix))
    }

    fn name(&self, key: &str, what: &str, name: &str) -> Result<()> {
        if NAME.is_match(name) {
            Ok(())
        } else {
            Err(self.err(
                key,
                format!("'{name}' is not a valid {what} name"),
                "use letters, digits, '_' and '-', starting with a letter or '_'",
            ))
        }
    }
}

impl Pipelines {
    /// The built-in pipelines with the project's configuration applied.
    pub fn build(
        taxonomy: &Taxonomy,
        config: &BTreeMap<String, PipelineConfig>,
        source: &str,
    ) -> Result<Self> {
        let ctx = Ctx { taxonomy, source };
        let mut drafts = Vec::new();
        for def in BUILTIN {
            // A project that removed the lifecycle marker removed the pipeline.
            let Some(rank) = taxonomy.lifecycle_rank(def.name) else {
                continue;
            };
            let stages = def
                .stages
                .iter()
                .map(|(name, text, machine)| DraftStage {
                    name: (*name).to_string(),
                    expr: Pending::Builtin {
                        key: format!("{}.stages.{name} (built in)", def.name),
                        text,
                    },
                    machine: (*machine).to_string(),
                    options: Vec::new(),
                    // The strategy gives no time budgets: none built in.
                    budget: None,
                })
                .collect();
            drafts.push(Draft {
                name: def.name.to_string(),
                aliases: def.aliases.iter().map(|a| (*a).to_string()).collect(),
                description: def.description.to_string(),
                lifecycle: def.name.to_string(),
                lifecycle_rank: rank,
                stages,
                gating: def.gating.map(|text| Pending::Builtin {
                    key: format!("{}.gating (built in)", def.name),
                    text,
                }),
                budget: None,
            });
        }
        for (name, table) in config {
            if table.enabled == Some(false) {
                disable(&ctx, &mut drafts, name)?;
            } else {
                apply(&ctx, &mut drafts, name, table)?;
            }
        }
        let mut list = Vec::with_capacity(drafts.len());
        for d in drafts {
            let mut stages = Vec::with_capacity(d.stages.len());
            for s in d.stages {
                stages.push(Stage {
                    name: s.name,
                    expr: ctx.finish(s.expr)?,
                    machine: s.machine,
                    options: s.options,
                    budget: s.budget,
                });
            }
            list.push(Pipeline {
                gating: d.gating.map(|g| ctx.finish(g)).transpose()?,
                name: d.name,
                aliases: d.aliases,
                description: d.description,
                lifecycle: d.lifecycle,
                lifecycle_rank: d.lifecycle_rank,
                stages,
                budget: d.budget,
            });
        }
        let pipelines = Pipelines { list };
        pipelines.check_names(&ctx)?;
        pipelines.check_budgets(&ctx)?;
        Ok(pipelines)
    }

    fn check_names(&self, ctx: &Ctx) -> Result<()> {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for p in &self.list {
            for alias in &p.aliases {
                ctx.name(&format!("{}.aliases", p.name), "pipeline alias", alias)?;
            }
            for name in std::iter::once(&p.name).chain(&p.aliases) {
                if let Some(other) = seen.insert(name, &p.name) {
                    return Err(ctx.err(
                        &format!("{}.aliases", p.name),
                        format!("'{name}' already names the pipeline '{other}'"),
                        "give each pipeline and alias a name of its own",
                    ));
                }
            }
        }
        Ok(())
    }

    /// A stage may not have more time than its pipeline: the pipeline could
    /// not meet its budget while the stage met its own.
    fn check_budgets(&self, ctx: &Ctx) -> Result<()> {
        for p in &self.list {
            let Some(limit) = p.budget else { continue };
            for s in &p.stages {
                if let Some(b) = s.budget.filter(|b| *b > limit) {
                    return Err(ctx.err(
                        &format!("{}.stages.{}.budget", p.name, s.name),
                        format!(
                            "the stage's budget ({}) is above its pipeline's ({}); the stages run side by side, so the pipeline takes as long as its slowest stage",
                            crate::selection::budgets::human(b),
                            crate::selection::budgets::human(limit)
                        ),
                        format!("lower the stage's budget to at most the pipeline's, or raise [{TABLE}.pipelines.{}] budget", p.name),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every name and alias, for messages.
    pub fn known(&self) -> String {
        self.list
            .iter()
            .map(|p| {
                if p.aliases.is_empty() {
                    p.name.clone()
                } else {
                    format!("{} (alias {})", p.name, p.aliases.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A pipeline by name or alias; an unknown one lists the known ones.
    pub fn find(&self, name: &str) -> Result<&Pipeline> {
        if let Some(p) = self
            .list
            .iter()
            .find(|p| p.name == name || p.aliases.iter().any(|a| a == name))
        {
            return Ok(p);
        }
        let names = self.list.iter().flat_map(|p| {
            std::iter::once(p.name.as_str()).chain(p.aliases.iter().map(String::as_str))
        });
        let hint = crate::taxonomy::suggest::closest(name, names)
            .map(|s| format!(" (did you mean '{s}'?)"))
            .unwrap_or_default();
        Err(Error::config(
            "--dynamo-pipeline",
            format!("unknown pipeline '{name}'{hint}"),
            format!(
                "use one of: {}; or define it under [{TABLE}.pipelines.{name}]",
                self.known()
            ),
        ))
    }

    /// A pipeline and, when named, one of its stages.
    pub fn find_stage(&self, pipeline: &str, stage: &str) -> Result<(&Pipeline, usize)> {
        let p = self.find(pipeline)?;
        if let Some(i) = p.stage(stage) {
            return Ok((p, i));
        }
        let hint =
            crate::taxonomy::suggest::closest(stage, p.stages.iter().map(|s| s.name.as_str()))
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
        Err(Error::config(
            "--dynamo-stage",
            format!("pipeline '{}' has no stage '{stage}'{hint}", p.name),
            format!("use one of: {}", p.stage_names()),
        ))
    }
}

fn stage_from(
    ctx: &Ctx,
    key: &str,
    cfg: &StageConfig,
    old: Option<&DraftStage>,
) -> Result<DraftStage> {
    ctx.name(key, "stage", &cfg.name)?;
    let expr = merged(
        cfg.expr.as_deref(),
        old,
        |text| {
            if text.trim().is_empty() {
                return Err(ctx.err(
                    &format!("{key}.expr"),
                    "the expression is empty, so the stage would select no test",
                    "write a marker expression, e.g. expr = \"e2e and gpu_1\"",
                ));
            }
            Ok(Pending::Done(ctx.compile(
                &format!("{key}.expr"),
                text,
                false,
            )?))
        },
        |old| old.expr.clone(),
        || {
            Err(ctx.err(
                key,
                "a new stage needs an expression",
                "add expr = \"<marker expression>\"",
            ))
        },
    )?;
    let machine = merged(
        cfg.machine.as_deref(),
        old,
        |m| {
            if m.trim().is_empty() {
                return Err(ctx.err(
                    &format!("{key}.machine"),
                    "the machine class is empty",
                    "name the machine the stage runs on, e.g. cpu, gpu_1, multi_gpu",
                ));
            }
            Ok(m.trim().to_string())
        },
        |old| old.machine.clone(),
        || {
            Err(ctx.err(
                key,
                "a new stage needs a machine class",
                "add machine = \"cpu\" (or gpu_1, multi_gpu, cluster, or a class of your own)",
            ))
        },
    )?;
    let options = merged(
        cfg.options.as_deref(),
        old,
        |options| checked_options(ctx, &format!("{key}.options"), options),
        |old| old.options.clone(),
        || Ok(Vec::new()),
    )?;
    let budget = merged(
        cfg.budget.as_ref(),
        old,
        |text| ctx.budget(&format!("{key}.budget"), text).map(Some),
        |old| old.budget,
        || Ok(None),
    )?;
    Ok(DraftStage {
        name: cfg.name.clone(),
        expr,
        machine,
        options,
        budget,
    })
}

/// One field of a stage the table defines or redefines: the table's value
/// (checked), else the redefined stage's, else what a new stage gets
/// without it (a default, or an error for a field it needs).
fn merged<V: ?Sized, T>(
    given: Option<&V>,
    old: Option<&DraftStage>,
    check: impl FnOnce(&V) -> Result<T>,
    kept: impl FnOnce(&DraftStage) -> T,
    absent: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match (given, old) {
        (Some(value), _) => check(value),
        (None, Some(old)) => Ok(kept(old)),
        (None, None) => absent(),
    }
}

/// A stage's pytest options: words as a shell would split them, none empty,
/// and none that chooses the pipeline or stage (they are what applies them).
fn checked_options(ctx: &Ctx, key: &str, options: &[String]) -> Result<Vec<String>> {
    for option in options {
        if option.trim().is_empty() {
            return Err(ctx.err(
                key,
                "an option is empty",
                "write each option and each value as its own string, e.g. [\"-n\", \"4\"]",
            ));
        }
        let flag = option.split('=').next().unwrap_or_default();
        if matches!(
            flag,
            "--dynamo-pipeline" | "--dynamo-stage" | "--dynamo-plan" | "--dynamo-config"
        ) {
            return Err(ctx.err(
                key,
                format!("'{option}' cannot be a stage option: the pipeline and stage decide which options apply"),
                "remove it from the list",
            ));
        }
    }
    Ok(options.to_vec())
}

/// `enabled = false`: drop a built-in pipeline the project does not use.
fn disable(ctx: &Ctx, list: &mut Vec<Draft>, name: &str) -> Result<()> {
    ctx.name(name, "pipeline", name)?;
    if let Some(i) = list.iter().position(|p| p.name == name) {
        list.remove(i);
        return Ok(());
    }
    if let Some(owner) = list.iter().find(|p| p.aliases.iter().any(|a| a == name)) {
        return Err(ctx.err(
            name,
            format!("'{name}' is an alias of the pipeline '{}'", owner.name),
            format!("disable it as [{TABLE}.pipelines.{}]", owner.name),
        ));
    }
    if BUILTIN.iter().any(|d| d.name == name) {
        // Its lifecycle marker was removed: the pipeline is gone already.
        return Ok(());
    }
    let builtin: Vec<&str> = BUILTIN.iter().map(|d| d.name).collect();
    let hint = crate::taxonomy::suggest::closest(name, builtin.iter().copied())
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default();
    Err(ctx.err(
        &format!("{name}.enabled"),
        format!("there is no built-in pipeline '{name}' to disable{hint}"),
        format!("use one of: {}", builtin.join(", ")),
    ))
}

fn apply(ctx: &Ctx, list: &mut Vec<Draft>, name: &str, table: &PipelineConfig) -> Result<()> {
    let at = find_or_add(ctx, list, name, table)?;
    let pipeline = &mut list[at];
    set_fields(ctx, pipeline, name, table)?;
    edit_stages(ctx, pipeline, name, table)
}

/// The position of the pipeline a table configures; a new one (its
/// lifecycle checked, its stages still to come) is added at the end.
fn find_or_add(
    ctx: &Ctx,
    list: &mut Vec<Draft>,
    name: &str,
    table: &PipelineConfig,
) -> Result<usize> {
    ctx.name(name, "pipeline", name)?;
    if let Some(owner) = list.iter().find(|p| p.aliases.iter().any(|a| a == name)) {
        return Err(ctx.err(
            name,
            format!("'{name}' is an alias of the pipeline '{}'", owner.name),
            format!("configure it as [{TABLE}.pipelines.{}]", owner.name),
        ));
    }
    if let Some(i) = list.iter().position(|p| p.name == name) {
        return Ok(i);
    }
    let lifecycle = table.lifecycle.clone().unwrap_or_else(|| name.to_string());
    let rank = ctx.lifecycle_rank(&format!("{name}.lifecycle"), &lifecycle)?;
    if table.stages.is_none() && table.add_stages.is_empty() {
        return Err(ctx.err(
            name,
            format!("the new pipeline '{name}' has no stages"),
            "add stages = [{ name = \"...\", expr = \"...\", machine = \"...\" }]",
        ));
    }
    list.push(Draft {
        name: name.to_string(),
        aliases: Vec::new(),
        description: format!("pipeline defined by the project ({lifecycle} tests and earlier)"),
        lifecycle,
        lifecycle_rank: rank,
        stages: Vec::new(),
        gating: None,
        budget: None,
    });
    Ok(list.len() - 1)
}

/// The pipeline's own keys: lifecycle, description, budget, aliases, gating.
fn set_fields(ctx: &Ctx, pipeline: &mut Draft, name: &str, table: &PipelineConfig) -> Result<()> {
    if let Some(lifecycle) = &table.lifecycle {
        pipeline.lifecycle_rank = ctx.lifecycle_rank(&format!("{name}.lifecycle"), lifecycle)?;
        pipeline.lifecycle.clone_from(lifecycle);
    }
    if let Some(description) = &table.description {
        pipeline.description.clone_from(description);
    }
    if let Some(budget) = &table.budget {
        pipeline.budget = Some(ctx.budget(&format!("{name}.budget"), budget)?);
    }
    if let Some(aliases) = &table.aliases {
        pipeline.aliases.clone_from(aliases);
    }
    if let Some(gating) = &table.gating {
        pipeline.gating = if gating.trim().is_empty() {
            None
        } else {
            Some(Pending::Done(ctx.compile(
                &format!("{name}.gating"),
                gating,
                false,
            )?))
        };
    }
    Ok(())
}

/// `stages` replaces the list, then `remove_stages` and `add_stages` edit
/// it (a stage added under an existing name is redefined in place).
fn edit_stages(ctx: &Ctx, pipeline: &mut Draft, name: &str, table: &PipelineConfig) -> Result<()> {
    if let Some(stages) = &table.stages {
        pipeline.stages.clear();
        for (i, s) in stages.iter().enumerate() {
            let stage = stage_from(ctx, &format!("{name}.stages[{i}]"), s, None)?;
            push_stage(ctx, pipeline, stage, &format!("{name}.stages"))?;
        }
    }
    for gone in &table.remove_stages {
        let Some(i) = pipeline.stage(gone) else {
            return Err(ctx.err(
                &format!("{name}.remove_stages"),
                format!("the pipeline has no stage '{gone}'"),
                format!("use one of: {}", pipeline.stage_names()),
            ));
        };
        pipeline.stages.remove(i);
    }
    for s in &table.add_stages {
        let key = format!("{name}.add_stages.{}", s.name);
        if let Some(i) = pipeline.stage(&s.name) {
            let stage = stage_from(ctx, &key, s, Some(&pipeline.stages[i]))?;
            pipeline.stages[i] = stage;
        } else {
            let stage = stage_from(ctx, &key, s, None)?;
            pipeline.stages.push(stage);
        }
    }
    if pipeline.stages.is_empty() {
        return Err(ctx.err(
            name,
            "the pipeline has no stages left",
            "keep at least one stage",
        ));
    }
    Ok(())
}

fn push_stage(ctx: &Ctx, pipeline: &mut Draft, stage: DraftStage, key: &str) -> Result<()> {
    if pipeline.stage(&stage.name).is_some() {
        return Err(ctx.err(
            key,
            format!("two stages are named '{}'", stage.name),
            "give each stage a name of its own",
        ));
    }
    pipeline.stages.push(stage);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_pyproject;
    use crate::taxonomy::customize;

    fn build(toml: &str) -> Result<Pipelines> {
        let config = from_pyproject("pyproject.toml", toml)?.unwrap_or_default();
        let taxonomy = customize::taxonomy(&config, "pyproject.toml")?;
        Pipelines::build(&taxonomy, &config.pipelines, "pyproject.toml")
    }

    fn stages(p: &Pipeline) -> Vec<(&str, &str, &str)> {
        p.stages
            .iter()
            .map(|s| (s.name.as_str(), s.expr.text.as_str(), s.machine.as_str()))
            .collect()
    }

    #[test]
    fn the_builtin_table_follows_the_spec() {
        let p = build("").unwrap();
        let names: Vec<_> = p.list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "pre_commit",
                "pre_merge",
                "post_merge",
                "nightly",
                "weekly",
                "release"
            ]
        );
        assert_eq!(p.find("pr").unwrap().name, "pre_merge");
        assert_eq!(p.find("push").unwrap().name, "post_merge");
        assert_eq!(
            stages(p.find("pr").unwrap()),
            [
                ("unit", "unit", "cpu"),
                ("integration_1", "integration and (gpu_0 or gpu_1)", "gpu_1"),
                ("e2e_1", "e2e and (gpu_0 or gpu_1)", "gpu_1"),
            ]
        );
        let release = p.find("release").unwrap();
        assert!(release.gating.is_none());
        assert_eq!(release.stages.len(), 8);
        let nightly = p.find("nightly").unwrap();
        assert_eq!(
            nightly.gating.as_ref().unwrap().text,
            "not (security or benchmark)"
        );
        assert!(nightly.stage("stress").is_none());
        assert!(p.find("weekly").unwrap().stage("stress").is_some());
        let ranks: Vec<_> = p.list.iter().map(|p| p.lifecycle_rank).collect();
        assert_eq!(ranks, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_project_redefines_adds_and_removes_stages() {
        let p = build(
            r#"
[tool.pytest-dynamo.pipelines.nightly]
gating = ""
remove_stages = ["security"]
[[tool.pytest-dynamo.pipelines.nightly.add_stages]]
name = "benchmark"
machine = "slurm"
[[tool.pytest-dynamo.pipelines.nightly.add_stages]]
name = "smoke"
expr = "smoke and gpu_1"
machine = "gpu_1"
[tool.pytest-dynamo.pipelines.pre_merge]
aliases = ["pr", "mr"]
stages = [{ name = "all", expr = "unit or e2e", machine = "cpu" }]
"#,
        )
        .unwrap();
        let nightly = p.find("nightly").unwrap();
        assert!(nightly.gating.is_none());
        let s = stages(nightly);
        assert_eq!(s[5], ("benchmark", "benchmark", "slurm"));
        assert_eq!(s.last().unwrap(), &("smoke", "smoke and gpu_1", "gpu_1"));
        assert!(nightly.stage("security").is_none());
        assert_eq!(
            stages(p.find("mr").unwrap()),
            [("all", "unit or e2e", "cpu")]
        );
    }

    #[test]
    fn a_new_pipeline_takes_its_lifecycle() {
        let p = build(
            r#"
[tool.pytest-dynamo.taxonomy.lifecycle]
add = [{ name = "canary", after = "nightly" }]
[tool.pytest-dynamo.pipelines.canary]
aliases = ["can"]
stages = [{ name = "e2e_1", expr = "e2e", machine = "gpu_1" }]
[tool.pytest-dynamo.pipelines.gitlab_nightly]
lifecycle = "nightly"
gating = "not security"
stages = [{ name = "security", expr = "security", machine = "cpu" }]
"#,
        )
        .unwrap();
        let canary = p.find("can").unwrap();
        assert_eq!(
            (canary.lifecycle.as_str(), canary.lifecycle_rank),
            ("canary", 4)
        );
        assert_eq!(p.find("weekly").unwrap().lifecycle_rank, 5);
        assert_eq!(p.find("gitlab_nightly").unwrap().lifecycle_rank, 3);
    }

    #[test]
    fn a_removed_lifecycle_marker_removes_its_builtin_pipeline() {
        let p =
            build("[tool.pytest-dynamo.taxonomy.lifecycle]\nremove = [\"pre_commit\"]\n").unwrap();
        assert!(p.find("pre_commit").is_err());
        assert_eq!(p.find("pre_merge").unwrap().lifecycle_rank, 0);
    }

    #[test]
    fn builtin_stages_compile_only_when_kept_and_pipelines_can_be_disabled() {
        // `security` gone from the taxonomy: only the built-in stages that
        // name it would fail, and the project drops or replaces them all.
        let p = build(
            r#"
[tool.pytest-dynamo.taxonomy.type]
remove = ["security", "benchmark"]
[tool.pytest-dynamo.pipelines.weekly]
enabled = false
[tool.pytest-dynamo.pipelines.release]
enabled = false
[tool.pytest-dynamo.pipelines.nightly]
gating = ""
stages = [{ name = "all", expr = "unit or e2e", machine = "gpu_1" }]
"#,
        )
        .unwrap();
        let names: Vec<_> = p.list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["pre_commit", "pre_merge", "post_merge", "nightly"]);
        // Kept, the built-in stage still fails, and says how to fix it.
        let err = build(
            "[tool.pytest-dynamo.taxonomy.type]\nremove = [\"security\"]\n\
             [tool.pytest-dynamo.pipelines.weekly]\nenabled = false\n\
             [tool.pytest-dynamo.pipelines.release]\nenabled = false\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("nightly.stages.security (built in)"), "{err}");
        for (toml, expected) in [
            (
                "[tool.pytest-dynamo.pipelines.nigthly]\nenabled = false\n",
                "there is no built-in pipeline 'nigthly' to disable (did you mean 'nightly'?)",
            ),
            (
                "[tool.pytest-dynamo.pipelines.pr]\nenabled = false\n",
                "'pr' is an alias of the pipeline 'pre_merge'",
            ),
        ] {
            let err = build(toml).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn stages_carry_their_options() {
        let p = build(
            r#"
[[tool.pytest-dynamo.pipelines.pre_merge.add_stages]]
name = "unit"
options = ["-n", "4", "--dist=loadscope"]
[[tool.pytest-dynamo.pipelines.nightly.add_stages]]
name = "slow"
expr = "unit and slow"
machine = "cpu"
options = ["--timeout=600"]
"#,
        )
        .unwrap();
        let pr = p.find("pr").unwrap();
        assert_eq!(pr.stages[0].options, ["-n", "4", "--dist=loadscope"]);
        assert_eq!(pr.stages[0].expr.text, "unit");
        assert!(pr.stages[1].options.is_empty());
        let nightly = p.find("nightly").unwrap();
        assert_eq!(
            nightly.stages[nightly.stage("slow").unwrap()].options,
            ["--timeout=600"]
        );
        for (toml, expected) in [
            ("[[tool.pytest-dynamo.pipelines.nightly.add_stages]]\nname = \"unit\"\noptions = [\"\"]\n", "nightly.add_stages.unit.options: an option is empty"),
            ("[[tool.pytest-dynamo.pipelines.nightly.add_stages]]\nname = \"unit\"\noptions = [\"--dynamo-stage=e2e_1\"]\n", "cannot be a stage option"),
        ] {
            let err = build(toml).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn unknown_pipelines_and_stages_list_the_known_ones() {
        let p = build("").unwrap();
        let err = p.find("nighty").unwrap_err().to_string();
        assert!(
            err.contains("unknown pipeline 'nighty' (did you mean 'nightly'?)"),
            "{err}"
        );
        assert!(err.contains("pre_merge (alias pr)"), "{err}");
        let err = p.find_stage("pr", "e2e_2").unwrap_err().to_string();
        assert!(
            err.contains("pipeline 'pre_merge' has no stage 'e2e_2'"),
            "{err}"
        );
        assert!(
            err.contains("use one of: unit, integration_1, e2e_1"),
            "{err}"
        );
    }

    #[test]
    fn bad_definitions_are_errors_that_name_the_key() {
        let cases = [
            (
                "[tool.pytest-dynamo.pipelines.nightly]\nadd_stages = [{ name = \"x\", expr = \"integration and premerge\", machine = \"cpu\" }]\n",
                "nightly.add_stages.x.expr: 'premerge' is not a marker of the taxonomy (column 17)",
            ),
            ("[tool.pytest-dynamo.pipelines.nightly]\ngating = \"not (security\"\n", "expected right parenthesis"),
            ("[tool.pytest-dynamo.pipelines.canary]\nstages = [{ name = \"a\", expr = \"unit\", machine = \"cpu\" }]\n", "'canary' is not a lifecycle marker"),
            ("[tool.pytest-dynamo.pipelines.canary]\nlifecycle = \"nigthly\"\nstages = []\n", "did you mean 'nightly'"),
            ("[tool.pytest-dynamo.pipelines.gl]\nlifecycle = \"nightly\"\n", "the new pipeline 'gl' has no stages"),
            ("[tool.pytest-dynamo.pipelines.pr]\ngating = \"unit\"\n", "'pr' is an alias of the pipeline 'pre_merge'"),
            ("[tool.pytest-dynamo.pipelines.nightly]\naliases = [\"pr\"]\n", "'pr' already names the pipeline"),
            ("[tool.pytest-dynamo.pipelines.nightly]\nremove_stages = [\"stress\"]\n", "the pipeline has no stage 'stress'"),
            ("[tool.pytest-dynamo.pipelines.nightly]\nadd_stages = [{ name = \"new\", expr = \"unit\" }]\n", "a new stage needs a machine class"),
            ("[tool.pytest-dynamo.pipelines.nightly]\nadd_stages = [{ name = \"new\", machine = \"cpu\" }]\n", "a new stage needs an expression"),
            ("[tool.pytest-dynamo.pipelines.nightly]\nadd_stages = [{ name = \"unit\", expr = \" \" }]\n", "the expression is empty"),
            ("[tool.pytest-dynamo.pipelines.nightly]\nstages = [{ name = \"a\", expr = \"unit\", machine = \"cpu\" }, { name = \"a\", expr = \"e2e\", machine = \"cpu\" }]\n", "two stages are named 'a'"),
            ("[tool.pytest-dynamo.pipelines.nightly]\nstages = []\n", "no stages left"),
            ("[tool.pytest-dynamo.pipelines.\"a b\"]\nstages = []\n", "'a b' is not a valid pipeline name"),
            ("[tool.pytest-dynamo.pipelines.nightly]\nstagse = []\n", "unknown field `stagse`"),
            ("[tool.pytest-dynamo.taxonomy.hardware]\nremove = [\"gpu_8\"]\n", "redefine it under"),
        ];
        for (toml, expected) in cases {
            let err = build(toml).unwrap_err().to_string();
            assert!(err.contains(expected), "{toml}\n{err}");
            assert!(err.starts_with("pyproject.toml: "), "{err}");
        }
    }
}
