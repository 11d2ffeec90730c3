//! The project's configuration: a `[tool.pytest-dynamo]` table in
//! `pyproject.toml`, or a TOML file named by the `dynamo_config` ini option.
//!
//! Parsed with the `toml` crate into typed structs that refuse unknown keys,
//! so a typo is an error with its line, column and the keys that exist.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

pub use crate::error::TABLE;

const DOCS_FIX: &str = concat!(
    "correct or remove the key; ",
    crate::docs_url!("configuration.md"),
    " lists every key and its type"
);

/// Everything under `[tool.pytest-dynamo]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Per category: markers to add or remove, and how many a test carries.
    pub taxonomy: BTreeMap<String, crate::taxonomy::CategoryConfig>,
    /// Old marker name -> canonical name; using the old one warns.
    pub aliases: crate::taxonomy::Aliases,
    /// `[tool.pytest-dynamo.gpu]`: GPU-model names, the VRAM marker, framework packages.
    pub gpu: crate::gpu::GpuConfig,
    /// Pipelines to add or change: `[tool.pytest-dynamo.pipelines.<name>]`.
    pub pipelines: BTreeMap<String, crate::selection::PipelineConfig>,
    /// Framework selection: `[tool.pytest-dynamo.frameworks]`.
    pub frameworks: crate::selection::FrameworksConfig,
    /// `[tool.pytest-dynamo.gates]`: quality-gate thresholds and the history window.
    pub gates: crate::analytics::gates::config::GatesConfig,
    /// The quarantine file and whether an expired entry fails the run.
    pub quarantine: crate::policy::QuarantineConfig,
    /// Owners of tests by marker or path (the strategy's PIC table).
    pub owners: crate::policy::OwnersConfig,
    /// `[tool.pytest-dynamo.packages]`: marker -> the top-level packages a
    /// test carrying it needs installed (skipped when one is missing).
    pub packages: BTreeMap<String, crate::gpu::OneOrMany>,
    /// `[tool.pytest-dynamo.parallel]`: GPU-aware parallel runs on xdist.
    pub parallel: crate::parallel::ParallelConfig,
    /// `[tool.pytest-dynamo.retries]`: failures retried for what they say.
    pub retries: crate::policy::RetriesConfig,
    /// `[tool.pytest-dynamo.shards]`: what `--dynamo-shard` keeps together.
    pub shards: crate::shards::ShardsConfig,
    /// `[tool.pytest-dynamo.timeouts]`: which tests must carry a timeout, and how long.
    pub timeouts: crate::analytics::advice::TimeoutsConfig,
    /// `[tool.pytest-dynamo.advice]`: how generous `pytest-dynamo advise` is.
    pub advice: crate::analytics::advice::AdviceConfig,
    /// `[tool.pytest-dynamo.machines.<class>]`: the GPUs of a stage's machine
    /// class, for plans and shards of GPU-parallel stages.
    pub machines: BTreeMap<String, crate::selection::budgets::MachineConfig>,
}

#[derive(Deserialize, Default)]
struct PyProject {
    #[serde(default)]
    tool: Tool,
}

#[derive(Deserialize, Default)]
struct Tool {
    #[serde(rename = "pytest-dynamo", default)]
    dynamo: Option<Config>,
}

/// Where the configuration came from, for messages.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The file read, or None when no configuration exists (built-in defaults).
    pub source: Option<String>,
    /// Why the file is not the rootdir's own, when it is not.
    pub note: Option<String>,
}

fn parse_error(path: &str, err: &toml::de::Error) -> Error {
    Error::config(
        path,
        format!(
            "invalid [{TABLE}] configuration\n{}",
            err.to_string().trim_end()
        ),
        DOCS_FIX,
    )
}

/// Parse the text of a `pyproject.toml`; None when it has no table of ours.
pub fn from_pyproject(path: &str, text: &str) -> Result<Option<Config>> {
    let doc: PyProject = toml::from_str(text).map_err(|e| parse_error(path, &e))?;
    Ok(doc.tool.dynamo)
}

/// Parse a dedicated configuration file: the keys at top level, or under
/// `[tool.pytest-dynamo]` when the file is a `pyproject.toml`.
pub fn from_file_text(path: &str, text: &str) -> Result<Config> {
    let value: toml::Table = toml::from_str(text).map_err(|e| parse_error(path, &e))?;
    if value.contains_key("tool") {
        return from_pyproject(path, text)?.ok_or_else(|| {
            Error::config(
                path,
                format!("the file has a [tool] table but no [{TABLE}] in it"),
                format!("put the configuration under [{TABLE}], or at the top level of the file"),
            )
        });
    }
    toml::from_str(text).map_err(|e| parse_error(path, &e))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), &e))
}

/// Find and parse the configuration: an explicit file wins, then the
/// rootdir's `pyproject.toml`, then the built-in defaults.
pub fn load(rootdir: &Path, explicit: Option<&Path>) -> Result<Loaded> {
    if let Some(file) = explicit {
        let file = if file.is_absolute() {
            file.to_path_buf()
        } else {
            rootdir.join(file)
        };
        let shown = file.display().to_string();
        if !file.is_file() {
            return Err(Error::config(
                "dynamo_config",
                format!("configuration file {shown} does not exist"),
                "fix the path in the dynamo_config ini option or --dynamo-config (relative paths start at the rootdir)",
            ));
        }
        let config = from_file_text(&shown, &read(&file)?)?;
        return Ok(Loaded {
            config,
            source: Some(shown),
            note: None,
        });
    }
    if let Some(loaded) = table_in(rootdir)? {
        return Ok(loaded);
    }
    // A nested pytest root (a benchmarks folder with its own pytest
    // settings): the project's table is the nearest one above, inside the
    // same git work tree.
    if let Some(top) = work_tree_top(rootdir) {
        for dir in rootdir.ancestors().skip(1) {
            if !dir.starts_with(&top) {
                break;
            }
            if let Some(mut loaded) = table_in(dir)? {
                loaded.note = Some(format!(
                    "the rootdir {} has no [{TABLE}] table; using the nearest one above it",
                    rootdir.display()
                ));
                return Ok(loaded);
            }
        }
    }
    Ok(Loaded {
        config: Config::default(),
        source: None,
        note: None,
    })
}

/// The `[tool.pytest-dynamo]` table of `dir/pyproject.toml`, if it has one.
fn table_in(dir: &Path) -> Result<Option<Loaded>> {
    let pyproject = dir.join("pyproject.toml");
    if !pyproject.is_file() {
        return Ok(None);
    }
    let shown = pyproject.display().to_string();
    Ok(
        from_pyproject(&shown, &read(&pyproject)?)?.map(|config| Loaded {
            config,
            source: Some(shown),
            note: None,
        }),
    )
}

/// The top of the git work tree holding `dir`: the nearest directory with a
/// `.git` entry (a directory, or a file in a linked worktree or submodule).
fn work_tree_top(dir: &Path) -> Option<std::path::PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taxonomy::Limit;

    #[test]
    fn a_pyproject_without_our_table_is_no_configuration() {
        let text = "[project]\nname = \"x\"\n[tool.ruff]\nline-length = 3\n";
        assert!(from_pyproject("pyproject.toml", text).unwrap().is_none());
    }

    #[test]
    fn markers_are_names_or_tables() {
        let text = r#"
[tool.pytest-dynamo.taxonomy.framework]
add = ["lmcache", { name = "mooncake", description = "needs Mooncake" }]
[tool.pytest-dynamo.taxonomy.hardware]
max = "unlimited"
"#;
        let config = from_pyproject("p", text).unwrap().unwrap();
        let fw = &config.taxonomy["framework"];
        assert_eq!(fw.add[0].name, "lmcache");
        assert_eq!(fw.add[1].description.as_deref(), Some("needs Mooncake"));
        assert_eq!(config.taxonomy["hardware"].max, Some(Limit::Unlimited));
    }

    #[test]
    fn an_unknown_key_names_the_file_the_key_and_the_fix() {
        let text = "[tool.pytest-dynamo.taxonomy.lifecycle]\nrequird = true\n";
        let err = from_pyproject("pyproject.toml", text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("pyproject.toml: invalid [tool.pytest-dynamo]"),
            "{err}"
        );
        assert!(err.contains("requird"), "{err}");
        assert!(err.contains("`required`"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("fix: "), "{err}");
    }

    #[test]
    fn a_wrong_type_is_an_error() {
        let text = "[tool.pytest-dynamo.taxonomy.type]\nmin = \"one\"\n";
        let err = from_pyproject("p", text).unwrap_err().to_string();
        assert!(err.contains("min"), "{err}");
        let text = "[tool.pytest-dynamo.taxonomy.type]\nadd = [{ nme = \"x\" }]\n";
        let err = from_pyproject("p", text).unwrap_err().to_string();
        assert!(err.contains("nme"), "{err}");
    }

    #[test]
    fn a_nested_root_uses_the_nearest_table_above_inside_the_work_tree() {
        let root = std::env::temp_dir().join(format!("dynamo-nested-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let repo = root.join("repo");
        let nested = repo.join("benchmarks");
        std::fs::create_dir_all(nested.join("deep")).unwrap();
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::write(
            root.join("pyproject.toml"),
            "[tool.pytest-dynamo.aliases]\nouter = \"nightly\"\n",
        )
        .unwrap();
        std::fs::write(nested.join("pyproject.toml"), "[tool.pytest.ini_options]\n").unwrap();
        // Outside the work tree: the table above the repository is not used.
        let loaded = load(&nested, None).unwrap();
        assert!(loaded.source.is_none() && loaded.note.is_none());
        std::fs::write(
            repo.join("pyproject.toml"),
            "[tool.pytest-dynamo.aliases]\nold = \"nightly\"\n",
        )
        .unwrap();
        let loaded = load(&nested.join("deep"), None).unwrap();
        assert_eq!(loaded.config.aliases["old"], "nightly");
        assert_eq!(
            loaded.source,
            Some(repo.join("pyproject.toml").display().to_string())
        );
        assert!(loaded
            .note
            .unwrap()
            .contains("has no [tool.pytest-dynamo] table; using the nearest one above it"));
        // The rootdir's own table wins, and needs no note.
        std::fs::write(
            nested.join("pyproject.toml"),
            "[tool.pytest-dynamo.aliases]\nmine = \"nightly\"\n",
        )
        .unwrap();
        let loaded = load(&nested, None).unwrap();
        assert!(loaded.config.aliases.contains_key("mine") && loaded.note.is_none());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_dedicated_file_holds_keys_at_top_level() {
        let config = from_file_text("d.toml", "[aliases]\npremerge = \"pre_merge\"\n").unwrap();
        assert_eq!(config.aliases["premerge"], "pre_merge");
    }
}
