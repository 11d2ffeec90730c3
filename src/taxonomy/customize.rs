//! A project's adjustments to the built-in taxonomy: markers added to or
//! removed from a category, new categories, aliases, and the counts a test
//! must carry. Every inconsistency is an error naming the key and the fix.

use regex::Regex;
use std::collections::HashMap;
use std::sync::LazyLock;

use crate::config::{Config, TABLE};
use crate::error::{Error, Result};
use crate::taxonomy::{CategoryConfig, Limit, MarkerSpec};
use crate::taxonomy::{Resolved, Taxonomy, LIFECYCLE};

static MARKER_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("valid regex"));

struct Ctx<'a> {
    source: &'a str,
}

impl Ctx<'_> {
    fn err(&self, key: &str, message: impl Into<String>, fix: impl Into<String>) -> Error {
        Error::at_key(self.source, TABLE, key, message, fix)
    }
}

/// The built-in taxonomy with the project's configuration applied.
pub fn taxonomy(config: &Config, source: &str) -> Result<Taxonomy> {
    let ctx = Ctx { source };
    let mut taxonomy = Taxonomy::builtin();
    taxonomy.vram_marker.clone_from(&config.gpu.vram_marker);
    // Every category's `remove` before any `add`, whatever the names: moving
    // `k8s` from other to infrastructure must not depend on which sorts first.
    for (category, table) in &config.taxonomy {
        define_category(&ctx, &mut taxonomy, category, table)?;
    }
    let mut removed = HashMap::new();
    for (category, table) in &config.taxonomy {
        remove_markers(&ctx, &mut taxonomy, category, table, &mut removed)?;
    }
    for (category, table) in &config.taxonomy {
        let key = format!("taxonomy.{category}");
        for spec in &table.add {
            // A moved built-in marker keeps its description unless given one.
            let spec = match (&spec.description, removed.get(&spec.name)) {
                (None, Some(description)) => &MarkerSpec {
                    description: Some(String::clone(description)),
                    ..spec.clone()
                },
                _ => spec,
            };
            add_marker(&ctx, &mut taxonomy, category, &key, spec)?;
        }
    }
    for (category, table) in &config.taxonomy {
        apply_counts(&ctx, &mut taxonomy, category, table)?;
    }
    for (alias, canonical) in &config.aliases {
        let key = format!("aliases.{alias}");
        if taxonomy.marker(alias).is_some() {
            return Err(ctx.err(
                &key,
                format!("'{alias}' is itself a marker of the taxonomy"),
                format!("remove the alias, or first remove '{alias}' from its category"),
            ));
        }
        if taxonomy.marker(canonical).is_none() {
            let hint = taxonomy
                .suggest(canonical)
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            return Err(ctx.err(
                &key,
                format!("the alias points at '{canonical}', which is not a marker{hint}"),
                "point the alias at a marker of the taxonomy",
            ));
        }
        taxonomy.add_alias(alias, canonical);
    }
    Ok(taxonomy)
}

fn define_category(
    ctx: &Ctx,
    taxonomy: &mut Taxonomy,
    category: &str,
    table: &CategoryConfig,
) -> Result<()> {
    let key = format!("taxonomy.{category}");
    if taxonomy.category(category).is_none() {
        if !MARKER_NAME.is_match(category) {
            return Err(ctx.err(
                &key,
                "a category name is letters, digits and '_'",
                "rename it",
            ));
        }
        let known: Vec<_> = taxonomy
            .categories
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let Some(description) = &table.description else {
            return Err(ctx.err(
                &key,
                format!(
                    "'{category}' is not a category (known: {}); a new one needs a description",
                    known.join(", ")
                ),
                "fix the category name, or add `description = \"...\"` to define a new category",
            ));
        };
        taxonomy.add_category(category, description);
    }
    Ok(())
}

fn remove_markers(
    ctx: &Ctx,
    taxonomy: &mut Taxonomy,
    category: &str,
    table: &CategoryConfig,
    removed: &mut HashMap<String, String>,
) -> Result<()> {
    for name in &table.remove {
        match taxonomy.marker(name) {
            Some(def) if def.category == category => {
                removed.insert(name.clone(), def.description.clone());
                taxonomy.remove_marker(name);
            }
            _ => {
                return Err(ctx.err(
                    &format!("taxonomy.{category}.remove"),
                    format!("'{name}' is not a marker of the {category} category"),
                    "remove it from the list",
                ))
            }
        }
    }
    Ok(())
}

fn apply_counts(
    ctx: &Ctx,
    taxonomy: &mut Taxonomy,
    category: &str,
    table: &CategoryConfig,
) -> Result<()> {
    let key = format!("taxonomy.{category}");
    let satisfied_by = checked_satisfied_by(ctx, taxonomy, category, &key, &table.satisfied_by)?;
    let exclusive = checked_exclusive(ctx, taxonomy, category, &key, &table.exclusive)?;
    let cat = taxonomy.category_mut(category).expect("category exists");
    if let Some(required) = table.required {
        cat.min = u32::from(required).max(if required { cat.min } else { 0 });
    }
    if let Some(min) = table.min {
        cat.min = min;
    }
    match table.max {
        Some(Limit::Count(max)) => cat.max = Some(max),
        Some(Limit::Unlimited) => cat.max = None,
        None => {}
    }
    if !satisfied_by.is_empty() {
        cat.satisfied_by = satisfied_by;
    }
    if !exclusive.is_empty() {
        cat.exclusive = exclusive;
    }
    if let Some(max) = cat.max {
        if cat.min > max {
            return Err(ctx.err(
                &key,
                format!("min ({}) is above max ({max})", cat.min),
                "lower min or raise max",
            ));
        }
    }
    Ok(())
}

fn unknown_marker(taxonomy: &Taxonomy, name: &str) -> String {
    let hint = taxonomy
        .suggest(name)
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default();
    format!("'{name}' is not a marker of the taxonomy{hint}")
}

/// `satisfied_by`: markers of other categories, each known.
fn checked_satisfied_by(
    ctx: &Ctx,
    taxonomy: &Taxonomy,
    category: &str,
    key: &str,
    names: &[String],
) -> Result<Vec<String>> {
    let key = format!("{key}.satisfied_by");
    for name in names {
        match taxonomy.marker(name) {
            None => {
                return Err(ctx.err(
                    &key,
                    unknown_marker(taxonomy, name),
                    "name markers of the taxonomy (`pytest --markers` lists them)",
                ))
            }
            Some(def) if def.category == category => {
                return Err(ctx.err(
                    &key,
                    format!("'{name}' is itself a marker of the {category} category, so it meets the requirement already"),
                    "remove it from the list: satisfied_by names markers of other categories",
                ))
            }
            Some(_) => {}
        }
    }
    Ok(names.to_vec())
}

/// `exclusive`: groups of two or more of the category's own markers.
fn checked_exclusive(
    ctx: &Ctx,
    taxonomy: &Taxonomy,
    category: &str,
    key: &str,
    groups: &[Vec<String>],
) -> Result<Vec<Vec<String>>> {
    let key = format!("{key}.exclusive");
    let own = &taxonomy
        .category(category)
        .expect("category exists")
        .markers;
    for group in groups {
        if group.len() < 2 {
            return Err(ctx.err(
                &key,
                format!("the group [{}] names fewer than two markers", group.join(", ")),
                "list at least two markers per group, e.g. exclusive = [[\"e2e\", \"integration\"]]",
            ));
        }
        if let Some(bad) = group.iter().find(|m| !own.contains(m)) {
            let why = if taxonomy.marker(bad).is_some() {
                format!("'{bad}' is not a marker of the {category} category")
            } else {
                unknown_marker(taxonomy, bad)
            };
            return Err(ctx.err(
                &key,
                why,
                format!("use markers of the {category} category: {}", own.join(", ")),
            ));
        }
    }
    Ok(groups.to_vec())
}

fn add_marker(
    ctx: &Ctx,
    taxonomy: &mut Taxonomy,
    category: &str,
    key: &str,
    spec: &MarkerSpec,
) -> Result<()> {
    let key = format!("{key}.add");
    let name = spec.name.as_str();
    if !MARKER_NAME.is_match(name) {
        return Err(ctx.err(
            &key,
            format!("'{name}' is not a valid marker name"),
            "use letters, digits and '_', not starting with a digit",
        ));
    }
    if let Resolved::Known(existing) | Resolved::Alias(existing) = taxonomy.resolve(name) {
        return Err(ctx.err(
            &key,
            format!(
                "'{name}' is already a marker of the {} category",
                existing.category
            ),
            "remove it from this list (or from the other category first)",
        ));
    }
    if spec.after.is_some() && spec.before.is_some() {
        return Err(ctx.err(
            &key,
            format!("'{name}' has both `after` and `before`"),
            "keep one of them",
        ));
    }
    let position = match spec.after.as_deref().or(spec.before.as_deref()) {
        None => None,
        Some(anchor) => {
            let order = &taxonomy
                .category(category)
                .expect("category exists")
                .markers;
            let Some(at) = order.iter().position(|m| m == anchor) else {
                return Err(ctx.err(
                    &key,
                    format!("'{name}' is placed next to '{anchor}', which is not in the {category} category"),
                    format!("use one of: {}", order.join(", ")),
                ));
            };
            Some(if spec.after.is_some() { at + 1 } else { at })
        }
    };
    if category != LIFECYCLE && position.is_some() {
        log::debug!("placing '{name}' in the {category} order only changes how it is listed");
    }
    let description = spec
        .description
        .clone()
        .unwrap_or_else(|| format!("{category} marker defined by the project"));
    taxonomy.insert_marker(category, name, &description, spec.devices, position);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_pyproject;
    use crate::taxonomy::{COMPONENT, FRAMEWORK, HARDWARE, OTHER};

    fn build(toml: &str) -> Result<Taxonomy> {
        let config = from_pyproject("pyproject.toml", toml)?.unwrap_or_default();
        taxonomy(&config, "pyproject.toml")
    }

    #[test]
    fn a_lifecycle_stage_is_placed_in_the_order() {
        let t = build(
            "[tool.pytest-dynamo.taxonomy.lifecycle]\nadd = [{ name = \"canary\", after = \"nightly\" }]\n",
        )
        .unwrap();
        let order = &t.category(LIFECYCLE).unwrap().markers;
        assert_eq!(
            order,
            &[
                "pre_commit",
                "pre_merge",
                "post_merge",
                "nightly",
                "canary",
                "weekly",
                "release"
            ]
        );
    }

    #[test]
    fn a_hardware_family_and_a_framework_are_added() {
        let t = build(
            "[tool.pytest-dynamo.taxonomy.hardware]\nadd = [\"xpu_1\", \"xpu_2\"]\n\
             [tool.pytest-dynamo.taxonomy.framework]\nadd = [\"lmcache\"]\n",
        )
        .unwrap();
        assert_eq!(t.marker("xpu_2").unwrap().devices, Some(2));
        assert_eq!(t.marker("xpu_2").unwrap().category, HARDWARE);
        assert_eq!(t.marker("lmcache").unwrap().category, FRAMEWORK);
    }

    #[test]
    fn counts_are_adjusted() {
        let t = build(
            "[tool.pytest-dynamo.taxonomy.type]\nrequired = false\n\
             [tool.pytest-dynamo.taxonomy.lifecycle]\nmax = 1\n\
             [tool.pytest-dynamo.taxonomy.framework]\nrequired = true\n",
        )
        .unwrap();
        assert_eq!(t.category("type").unwrap().min, 0);
        assert_eq!(t.category(LIFECYCLE).unwrap().max, Some(1));
        assert_eq!(t.category(FRAMEWORK).unwrap().min, 1);
    }

    #[test]
    fn inconsistent_definitions_are_errors() {
        let cases = [
            ("[tool.pytest-dynamo.aliases]\nold = \"pre_merj\"\n", "did you mean 'pre_merge'"),
            ("[tool.pytest-dynamo.aliases]\nunit = \"e2e\"\n", "itself a marker"),
            ("[tool.pytest-dynamo.taxonomy.type]\nadd = [\"vllm\"]\n", "already a marker of the framework"),
            ("[tool.pytest-dynamo.taxonomy.lifecycle]\nadd = [{ name = \"x\", after = \"nope\" }]\n", "not in the lifecycle"),
            ("[tool.pytest-dynamo.taxonomy.hardware]\nmin = 2\n", "min (2) is above max (1)"),
            ("[tool.pytest-dynamo.taxonomy.hardwre]\nadd = [\"x\"]\n", "not a category"),
            ("[tool.pytest-dynamo.taxonomy.type]\nremove = [\"vllm\"]\n", "not a marker of the type"),
            ("[tool.pytest-dynamo.taxonomy.type]\nadd = [\"9x\"]\n", "not a valid marker name"),
        ];
        for (toml, expected) in cases {
            let err = build(toml).unwrap_err().to_string();
            assert!(err.contains(expected), "{toml}: {err}");
            assert!(
                err.starts_with("pyproject.toml: [tool.pytest-dynamo] "),
                "{err}"
            );
        }
    }

    #[test]
    fn every_remove_runs_before_any_add() {
        let t = build(
            "[tool.pytest-dynamo.taxonomy.infrastructure]\ndescription = \"where it runs\"\nadd = [\"k8s\", \"slurm\"]\n\
             [tool.pytest-dynamo.taxonomy.other]\nremove = [\"k8s\", \"slurm\"]\n",
        )
        .unwrap();
        assert_eq!(t.marker("k8s").unwrap().category, "infrastructure");
        assert_eq!(t.marker("k8s").unwrap().description, "needs Kubernetes");
        assert!(!t.category(OTHER).unwrap().markers.contains(&"k8s".into()));
        let t = build(
            "[tool.pytest-dynamo.taxonomy.component]\nadd = [\"k8s\"]\n\
             [tool.pytest-dynamo.taxonomy.other]\nremove = [\"k8s\"]\n",
        )
        .unwrap();
        assert_eq!(t.marker("k8s").unwrap().category, COMPONENT);
    }

    #[test]
    fn satisfied_by_and_exclusive_are_checked() {
        let t = build(
            "[tool.pytest-dynamo.taxonomy.hardware]\nsatisfied_by = [\"k8s\"]\n\
             [tool.pytest-dynamo.taxonomy.type]\nexclusive = [[\"e2e\", \"integration\"]]\n",
        )
        .unwrap();
        assert_eq!(t.category(HARDWARE).unwrap().satisfied_by, ["k8s"]);
        assert_eq!(
            t.category("type").unwrap().exclusive,
            [vec!["e2e".to_string(), "integration".to_string()]]
        );
        let cases = [
            (
                "[tool.pytest-dynamo.taxonomy.hardware]\nsatisfied_by = [\"k8\"]\n",
                "hardware.satisfied_by: 'k8' is not a marker of the taxonomy (did you mean 'k8s'?)",
            ),
            (
                "[tool.pytest-dynamo.taxonomy.hardware]\nsatisfied_by = [\"gpu_1\"]\n",
                "'gpu_1' is itself a marker of the hardware category",
            ),
            (
                "[tool.pytest-dynamo.taxonomy.type]\nexclusive = [[\"e2e\"]]\n",
                "fewer than two markers",
            ),
            (
                "[tool.pytest-dynamo.taxonomy.type]\nexclusive = [[\"e2e\", \"vllm\"]]\n",
                "type.exclusive: 'vllm' is not a marker of the type category",
            ),
            (
                "[tool.pytest-dynamo.taxonomy.type]\nexclusive = [[\"e2e\", \"integraton\"]]\n",
                "did you mean 'integration'",
            ),
        ];
        for (toml, expected) in cases {
            let err = build(toml).unwrap_err().to_string();
            assert!(err.contains(expected), "{toml}: {err}");
        }
    }

    #[test]
    fn a_new_category_with_a_description_is_defined() {
        let t = build(
            "[tool.pytest-dynamo.taxonomy.model]\ndescription = \"model family\"\nadd = [\"llama\"]\nrequired = true\n",
        )
        .unwrap();
        assert_eq!(t.category("model").unwrap().min, 1);
        assert_eq!(t.marker("llama").unwrap().category, "model");
    }
}
