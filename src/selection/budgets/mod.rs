//! Time budgets of pipelines and stages (issue #17): how long each may take,
//! what the plan estimates they take (shards and GPU packing included), which
//! slow tests to move to the next lifecycle when over. The gate over the
//! records' measured wall times is `analytics/gates/budget.rs`.

mod duration;
mod estimate;
mod machines;
pub mod plan;

pub use duration::{human, parse, BudgetText};
pub use machines::MachineConfig;

#[cfg(test)]
#[allow(clippy::float_cmp)] // exact answers
mod config_tests {
    use crate::config::from_pyproject;
    use crate::error::Result;
    use crate::selection::pipeline::Pipelines;
    use crate::taxonomy::customize;

    fn build(toml: &str) -> Result<Pipelines> {
        let config = from_pyproject("pyproject.toml", toml)?.unwrap_or_default();
        let taxonomy = customize::taxonomy(&config, "pyproject.toml")?;
        Pipelines::build(&taxonomy, &config.pipelines, "pyproject.toml")
    }

    #[test]
    fn pipelines_and_stages_carry_their_budgets() {
        let p = build(
            r#"
[tool.pytest-dynamo.pipelines.pre_merge]
budget = "30m"
add_stages = [{ name = "integration_1", budget = "20m" }]
[tool.pytest-dynamo.pipelines.canary]
lifecycle = "nightly"
budget = "1h 30m"
stages = [{ name = "smoke", expr = "e2e", machine = "gpu_1", budget = "90s" }]
"#,
        )
        .unwrap();
        let pr = p.find("pr").unwrap();
        assert_eq!(pr.budget, Some(1800.0));
        let i1 = &pr.stages[pr.stage("integration_1").unwrap()];
        // Redefined in place: the built-in expression and machine stay.
        assert_eq!(
            (i1.budget, i1.expr.text.as_str(), i1.machine.as_str()),
            (Some(1200.0), "integration and (gpu_0 or gpu_1)", "gpu_1")
        );
        assert_eq!(pr.stages[0].budget, None);
        let canary = p.find("canary").unwrap();
        assert_eq!(
            (canary.budget, canary.stages[0].budget),
            (Some(5400.0), Some(90.0))
        );
        // The strategy gives no numbers: no built-in pipeline has a budget.
        let plain = build("").unwrap();
        assert!(plain
            .list
            .iter()
            .all(|p| p.budget.is_none() && p.stages.iter().all(|s| s.budget.is_none())));
    }

    #[test]
    fn bad_budgets_name_the_key_and_the_fix() {
        for (toml, key, words) in [
            (
                "[tool.pytest-dynamo.pipelines.pre_merge]\nbudget = \"-5m\"",
                "pre_merge.budget",
                "negative",
            ),
            (
                "[tool.pytest-dynamo.pipelines.pre_merge]\nbudget = \"0s\"",
                "pre_merge.budget",
                "zero",
            ),
            (
                "[tool.pytest-dynamo.pipelines.nightly]\nbudget = \"3000h\"",
                "nightly.budget",
                "longer than a week",
            ),
            (
                "[tool.pytest-dynamo.pipelines.nightly]\nbudget = \"3 hourz\"",
                "nightly.budget",
                "not a duration",
            ),
            (
                "[tool.pytest-dynamo.pipelines.nightly]\nbudget = 30",
                "nightly.budget",
                "without a unit",
            ),
            (
                "[tool.pytest-dynamo.pipelines.nightly]\nbudget = true",
                "budget",
                "a duration with its unit",
            ),
            (
                "[tool.pytest-dynamo.pipelines.pre_merge]\nadd_stages = [{ name = \"unit\", budget = \"5\" }]",
                "pre_merge.add_stages.unit.budget",
                "not a duration",
            ),
            (
                "[tool.pytest-dynamo.pipelines.pre_merge]\nbudget = \"30m\"\nadd_stages = [{ name = \"unit\", budget = \"40m\" }]",
                "pre_merge.stages.unit.budget",
                "above its pipeline's",
            ),
        ] {
            let e = build(toml).unwrap_err().to_string();
            assert!(
                e.contains(key) && e.contains(words) && e.contains("fix:"),
                "{toml}: {e}"
            );
        }
    }
}
