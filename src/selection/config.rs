//! Selection's slice of `[tool.pytest-dynamo]`: the pipelines and their
//! stages (`[pipelines.<name>]`) and the framework rules (`[frameworks]`),
//! as written; `pipeline.rs` and `framework.rs` check and build them. The
//! machine classes of the budgets are `budgets/machines.rs`'s.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[tool.pytest-dynamo.pipelines.<name>]`: a new pipeline, or changes to a
/// built-in one.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    pub description: Option<String>,
    /// The lifecycle marker the pipeline runs up to (default: its own name).
    pub lifecycle: Option<String>,
    /// Other names the pipeline answers to (replaces the built-in ones).
    pub aliases: Option<Vec<String>>,
    /// Which selected tests gate the run (default: all of them).
    pub gating: Option<String>,
    /// The whole list of stages, replacing the built-in one.
    pub stages: Option<Vec<StageConfig>>,
    /// Stages to add, or to redefine in place when the name exists.
    pub add_stages: Vec<StageConfig>,
    pub remove_stages: Vec<String>,
    /// `false` drops a built-in pipeline the project does not use.
    pub enabled: Option<bool>,
    /// The longest the pipeline may take, e.g. `"30m"` (its stages run side
    /// by side, so its slowest stage's wall time).
    pub budget: Option<crate::selection::budgets::BudgetText>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    pub name: String,
    /// A marker expression (pytest's `-m` grammar).
    #[serde(default)]
    pub expr: Option<String>,
    /// The machine class the stage runs on, e.g. `cpu`, `gpu_1`, `multi_gpu`.
    #[serde(default)]
    pub machine: Option<String>,
    /// pytest options the stage runs with, e.g. `["-n", "4", "--dist=loadscope"]`.
    #[serde(default)]
    pub options: Option<Vec<String>>,
    /// The longest the stage may take, e.g. `"10m"`.
    #[serde(default)]
    pub budget: Option<crate::selection::budgets::BudgetText>,
}

/// What happens to tests without a framework marker when a framework is chosen.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Agnostic {
    /// They run with every framework (they need none).
    #[default]
    Keep,
    /// Only the framework's own tests run (`and vllm` taken literally).
    Drop,
}

/// `[tool.pytest-dynamo.frameworks]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrameworksConfig {
    /// The framework when none is named (after `DYNAMO_TEST_FRAMEWORK` and
    /// `DYNAMO_DEFAULT_FRAMEWORK`), and `auto`'s fallback.
    pub default: Option<String>,
    pub agnostic: Agnostic,
    /// Framework -> regular expressions over changed paths (for `auto`).
    /// When absent, a path touches a framework when a path component or a
    /// `.`/`_`/`-` separated part of one is the framework's name.
    pub paths: Option<BTreeMap<String, Vec<String>>>,
    /// The environment variables that choose the framework: the one that
    /// names it, then the one that gives the default (`[]`: none).
    pub env: Option<Vec<String>>,
}
