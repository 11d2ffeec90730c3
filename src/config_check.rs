//! The whole configuration, checked once when it is loaded (issue #18):
//! names that could never be used as markers, counts that overflow, and
//! settings other features would otherwise refuse only when they first
//! read them (the pipelines, the owners, the gates, the GPU rules).

use std::collections::BTreeSet;

use crate::config::{Config, TABLE};
use crate::error::{Error, Result};
use crate::gpu::Rules;
use crate::policy::Owners;
use crate::selection::pipeline::Pipelines;
use crate::selection::{Frameworks, PipelineConfig};
use crate::taxonomy::CategoryConfig;
use crate::taxonomy::{Taxonomy, HARDWARE};

/// More devices than any machine has: a bigger count is a typo, and one
/// that overflows a `u32` would read as "no GPU needed".
pub const MAX_DEVICES: u32 = 4096;

/// Words of pytest's `-m` grammar: a marker so named can never be selected.
const EXPRESSION_KEYWORDS: &[&str] = &["and", "or", "not"];

/// pytest's own markers: in a category (or as an alias) they would let a
/// test pass a rule by being parametrized or skipped.
const PYTEST_MARKERS: &[&str] = &[
    "parametrize",
    "skip",
    "skipif",
    "xfail",
    "usefixtures",
    "filterwarnings",
    "tryfirst",
    "trylast",
];

/// Python's keywords: `@pytest.mark.class` is a syntax error.
const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

fn err(source: &str, key: &str, message: impl Into<String>, fix: impl Into<String>) -> Error {
    Error::at_key(source, TABLE, key, message, fix)
}

/// Why `name` cannot be a marker, if it cannot.
pub fn bad_marker_name(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_well || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some(format!(
            "{name:?} is not a valid marker name: letters, digits and '_', not starting with a digit"
        ));
    }
    if EXPRESSION_KEYWORDS.contains(&name) {
        return Some(format!(
            "'{name}' is a word of pytest's -m grammar: no expression could select the marker"
        ));
    }
    if PYTHON_KEYWORDS.contains(&name) {
        return Some(format!(
            "'{name}' is a Python keyword: @pytest.mark.{name} is a syntax error"
        ));
    }
    if PYTEST_MARKERS.contains(&name) {
        return Some(format!(
            "'{name}' is one of pytest's own markers, not a marker the project can define"
        ));
    }
    None
}

/// The device count a hardware marker's `_N` suffix spells, or why it is unusable.
fn suffix_devices(name: &str) -> Option<std::result::Result<u32, String>> {
    let (_, digits) = name.rsplit_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match digits.parse::<u32>() {
        Ok(n) if n <= MAX_DEVICES => Ok(n),
        _ => Err(format!(
            "'{name}' asks for {digits} devices, more than the {MAX_DEVICES} any machine has"
        )),
    })
}

/// Checks of names and counts, before the taxonomy is built from them.
pub fn names(config: &Config, source: &str) -> Result<()> {
    for (category, table) in &config.taxonomy {
        added_markers(category, table, source)?;
    }
    for alias in config.aliases.keys() {
        usable_name(source, &format!("aliases.{alias}"), alias, "alias")?;
    }
    for (name, pipeline) in &config.pipelines {
        stage_names(name, pipeline, source)?;
    }
    for pattern in config.owners.paths.keys() {
        let cleaned = pattern.trim().trim_start_matches("./");
        if cleaned.is_empty() || cleaned == "." {
            return Err(err(
                source,
                "owners.paths",
                format!("the path {pattern:?} names no file or folder"),
                "own a file or a folder relative to the rootdir (tests/router), or set owners.default",
            ));
        }
    }
    Ok(())
}

/// A marker or alias name `-m` can select (`what` names which, in the fix).
fn usable_name(source: &str, key: &str, name: &str, what: &str) -> Result<()> {
    match bad_marker_name(name) {
        Some(why) => Err(err(
            source,
            key,
            why,
            format!(
                "rename the {what}: a Python identifier that is not a keyword or a pytest marker"
            ),
        )),
        None => Ok(()),
    }
}

/// A category's added markers: valid names, not also removed, and a
/// hardware marker's devices within bounds.
fn added_markers(category: &str, table: &CategoryConfig, source: &str) -> Result<()> {
    let key = format!("taxonomy.{category}");
    let removed: BTreeSet<&str> = table.remove.iter().map(String::as_str).collect();
    for spec in &table.add {
        let name = spec.name.as_str();
        usable_name(source, &format!("{key}.add"), name, "marker")?;
        if removed.contains(name) {
            return Err(err(
                source,
                &key,
                format!("'{name}' is both removed and added"),
                "keep it in one of the two lists",
            ));
        }
        if category == HARDWARE {
            if let Some(devices) = spec.devices {
                if devices > MAX_DEVICES {
                    return Err(err(
                        source,
                        &format!("{key}.add"),
                        format!("'{name}' has devices = {devices}, more than {MAX_DEVICES}"),
                        format!("set devices to 0 to {MAX_DEVICES}"),
                    ));
                }
            } else if let Some(Err(why)) = suffix_devices(name) {
                return Err(err(
                    source,
                    &format!("{key}.add"),
                    why,
                    format!(
                        "name the devices the tests need (0 to {MAX_DEVICES}), or set `devices`"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// No two stages of one list (`stages`, `add_stages`) share a name.
fn stage_names(name: &str, pipeline: &PipelineConfig, source: &str) -> Result<()> {
    for (list, stages) in [
        ("stages", pipeline.stages.as_deref().unwrap_or_default()),
        ("add_stages", pipeline.add_stages.as_slice()),
    ] {
        let mut seen = BTreeSet::new();
        for stage in stages {
            if !seen.insert(stage.name.as_str()) {
                return Err(err(
                    source,
                    &format!("pipelines.{name}.{list}"),
                    format!("two stages are named '{}'", stage.name),
                    "give each stage a name of its own",
                ));
            }
        }
    }
    Ok(())
}

/// Everything that needs the taxonomy: each feature's own checks, run now
/// so a mistake stops pytest at its start, not a later command or flag.
pub fn whole(config: &Config, taxonomy: &Taxonomy, source: &str) -> Result<()> {
    Pipelines::build(taxonomy, &config.pipelines, source)?;
    Frameworks::build(taxonomy, &config.frameworks, source)?;
    Rules::new(&config.gpu, taxonomy, source)?.with_packages(
        &config.packages,
        &config.gpu,
        taxonomy,
        source,
    )?;
    Owners::new(&config.owners, taxonomy)?;
    config.gates.check(source)?;
    config.parallel.check(source)?;
    for (class, machine) in &config.machines {
        machine.check(class, source)?;
    }
    config.retries.check(source)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_pyproject;
    use crate::engine::Engine;
    use crate::error::Error;

    fn load(toml: &str) -> Result<Engine> {
        let config = from_pyproject("pyproject.toml", toml)?.unwrap_or_default();
        Engine::from_config(config, "pyproject.toml")
    }

    #[test]
    fn what_was_silently_accepted_is_refused_at_load() {
        let cases = [
            ("[tool.pytest-dynamo.aliases]\n\"pre merge\" = \"pre_merge\"\n", "not a valid marker name"),
            ("[tool.pytest-dynamo.aliases]\n\"\" = \"pre_merge\"\n", "not a valid marker name"),
            ("[tool.pytest-dynamo.aliases]\nand = \"pre_merge\"\n", "-m grammar"),
            ("[tool.pytest-dynamo.taxonomy.type]\nadd = [\"or\"]\n", "-m grammar"),
            ("[tool.pytest-dynamo.taxonomy.type]\nadd = [\"class\"]\n", "Python keyword"),
            ("[tool.pytest-dynamo.taxonomy.type]\nadd = [\"skipif\"]\n", "pytest's own markers"),
            ("[tool.pytest-dynamo.aliases]\nparametrize = \"unit\"\n", "pytest's own markers"),
            ("[tool.pytest-dynamo.taxonomy.hardware]\nadd = [\"gpu_4294967296\"]\n", "more than the 4096"),
            ("[tool.pytest-dynamo.taxonomy.hardware]\nadd = [\"gpu_5000\"]\n", "more than the 4096"),
            ("[tool.pytest-dynamo.taxonomy.hardware]\nadd = [{ name = \"tpu\", devices = 9999 }]\n", "devices = 9999"),
            ("[tool.pytest-dynamo.taxonomy.hardware]\nremove = [\"gpu_1\"]\nadd = [\"gpu_1\"]\n", "both removed and added"),
            ("[tool.pytest-dynamo.owners.paths]\n\"\" = \"team\"\n", "names no file or folder"),
            ("[tool.pytest-dynamo.owners.paths]\n\"./\" = \"team\"\n", "names no file or folder"),
            ("[tool.pytest-dynamo.pipelines.nightly]\nadd_stages = [{ name = \"x\", expr = \"unit\", machine = \"cpu\" }, { name = \"x\", expr = \"e2e\", machine = \"cpu\" }]\n", "two stages are named 'x'"),
            ("[tool.pytest-dynamo.gates]\nwindow = 0\n", "window must be at least 1"),
            ("[tool.pytest-dynamo.parallel]\nmemory_margin = 1.5\n", "memory_margin"),
            ("[tool.pytest-dynamo.gates]\nflaky_rate = nan\n", "flaky_rate"),
            ("[tool.pytest-dynamo.gates]\nflaky_rate = inf\n", "flaky_rate"),
            ("[tool.pytest-dynamo.gates]\nflaky_rate = -1\n", "flaky_rate"),
            ("[tool.pytest-dynamo.gates]\ncoverage_floors = { python = 101 }\n", "coverage_floors.python"),
            ("[tool.pytest-dynamo.owners.markers]\nnope_marker = \"team\"\n", "not a marker"),
            ("[tool.pytest-dynamo.pipelines.nightly]\ngating = \"unit and\"\n", "nightly.gating"),
        ];
        for (toml, expected) in cases {
            let err = load(toml).expect_err(toml).to_string();
            assert!(err.contains(expected), "{toml}\n{err}");
            assert!(err.contains("fix: "), "{err}");
        }
    }

    #[test]
    fn good_names_and_counts_still_load() {
        load(
            "[tool.pytest-dynamo.aliases]\npremerge = \"pre_merge\"\n\
             [tool.pytest-dynamo.taxonomy.hardware]\nadd = [\"xpu_4096\", \"gpu_16\"]\n\
             [tool.pytest-dynamo.owners.paths]\n\"tests/router\" = \"team\"\n",
        )
        .unwrap();
        assert!(bad_marker_name("gpu_1").is_none());
        assert!(bad_marker_name("_private").is_none());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Keys and values near the configuration's own, so the generated
        /// documents reach past the TOML parser into the checks.
        fn fragment() -> impl Strategy<Value = String> {
            let tables = prop::sample::select(vec![
                "[tool.pytest-dynamo]",
                "[tool.pytest-dynamo.aliases]",
                "[tool.pytest-dynamo.taxonomy.type]",
                "[tool.pytest-dynamo.taxonomy.hardware]",
                "[tool.pytest-dynamo.taxonomy.lifecycle]",
                "[tool.pytest-dynamo.taxonomy.newcat]",
                "[tool.pytest-dynamo.gates]",
                "[tool.pytest-dynamo.owners.paths]",
                "[tool.pytest-dynamo.owners.markers]",
                "[tool.pytest-dynamo.pipelines.nightly]",
                "[tool.pytest-dynamo.pipelines.mine]",
                "[tool.pytest-dynamo.frameworks]",
                "[tool.pytest-dynamo.gpu]",
            ]);
            let keys = prop::sample::select(vec![
                "add",
                "remove",
                "min",
                "max",
                "required",
                "description",
                "window",
                "flaky_rate",
                "coverage_floors",
                "stages",
                "add_stages",
                "remove_stages",
                "gating",
                "lifecycle",
                "pre_merge",
                "premerge",
                "\"\"",
                "and",
                "vram_marker",
                "models",
                "default",
                "\"tests\"",
            ]);
            let values = prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_map(|f| format!("{f:?}")),
                Just("nan".to_string()),
                Just("-inf".to_string()),
                "[a-z_ 0-9]{0,12}".prop_map(|s| format!("{s:?}")),
                "[a-z_0-9]{0,8}".prop_map(|s| format!("[{s:?}, \"gpu_4294967296\"]")),
                "[a-z_]{1,6}".prop_map(|s| format!(
                    "[{{ name = {s:?}, expr = \"unit or\", machine = \"\" }}]"
                )),
                Just("{ python = 101 }".to_string()),
                Just("true".to_string()),
                Just("\"unlimited\"".to_string()),
                ".{0,10}".prop_map(|s| s),
            ];
            prop_oneof![
                tables.prop_map(|t| format!("{t}\n")),
                (keys, values).prop_map(|(k, v)| format!("{k} = {v}\n")),
                ".{0,20}".prop_map(|s| format!("{s}\n")),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            /// Whatever the text, loading it never panics, and a refusal is a
            /// configuration error with a message and a fix.
            #[test]
            fn loading_never_panics_and_every_refusal_explains(parts in prop::collection::vec(fragment(), 0..12)) {
                let text = parts.concat();
                let result = from_pyproject("pyproject.toml", &text)
                    .and_then(|c| Engine::from_config(c.unwrap_or_default(), "pyproject.toml"));
                if let Err(e) = result {
                    match &e {
                        Error::Config { message, fix, .. } => {
                            prop_assert!(!message.trim().is_empty(), "{e}");
                            prop_assert!(!fix.trim().is_empty(), "{e}");
                        }
                        other @ Error::Io { .. } => prop_assert!(false, "not a configuration error: {other}"),
                    }
                }
            }
        }
    }
}
