//! The GPU rules of a run: `[tool.pytest-dynamo.gpu]` checked against the
//! taxonomy, with the defaults filled in. Which hardware markers count
//! against NVML, which words name each GPU model, which package each
//! framework marker needs, and which marker carries a VRAM need.

use std::collections::BTreeMap;

use crate::config::TABLE;
use crate::error::{Error, Result};
use crate::taxonomy::suggest;
use crate::taxonomy::validate::Resolution;
use crate::taxonomy::Item;
use crate::taxonomy::{Taxonomy, FRAMEWORK, GPU_MODEL, HARDWARE};

use super::config::{GpuConfig, OneOrMany};

/// Hardware markers named `gpu_<N>` count NVIDIA GPUs; other families a
/// project adds (`xpu_1`) are not NVML's to count.
pub const NVIDIA_FAMILY: &str = "gpu_";

/// Built-in framework marker -> the package it needs. Other framework
/// markers (`custom_backend`, a project's own) are checked only when
/// `[tool.pytest-dynamo.gpu] frameworks` names their package: a guessed
/// package name would skip tests for nothing.
const FRAMEWORK_PACKAGES: &[(&str, &str)] = &[
    ("vllm", "vllm"),
    ("sglang", "sglang"),
    ("trtllm", "tensorrt_llm"),
];

/// Words to find, in order, among a GPU name's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub text: String,
    words: Vec<String>,
}

impl Pattern {
    pub fn new(text: &str) -> Self {
        Pattern {
            text: text.to_string(),
            words: words(text),
        }
    }

    /// Case-insensitive, whole words: `H100` matches "NVIDIA H100 80GB HBM3"
    /// and "NVIDIA H100 `PCIe`" but not "NVIDIA GH100"; `L40` does not match
    /// "NVIDIA L40S".
    pub fn matches(&self, name: &str) -> bool {
        let have = words(name);
        !self.words.is_empty() && have.windows(self.words.len()).any(|w| w == self.words)
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub vram_marker: String,
    /// GPU-model marker -> the names that match it.
    pub models: BTreeMap<String, Vec<Pattern>>,
    /// Marker -> the top-level packages it needs: framework markers (built
    /// in, or `[gpu] frameworks`) and any marker under `[packages]`.
    pub packages: BTreeMap<String, Vec<String>>,
    /// The `gpu_N` markers, fewest devices first.
    pub family: Vec<(String, u32)>,
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

struct Ctx<'a> {
    source: &'a str,
}

impl Ctx<'_> {
    fn err(&self, key: &str, message: impl Into<String>, fix: impl Into<String>) -> Error {
        Error::at_key(self.source, &format!("{TABLE}.gpu"), key, message, fix)
    }

    fn in_category(
        &self,
        taxonomy: &Taxonomy,
        key: &str,
        marker: &str,
        category: &str,
    ) -> Result<()> {
        let markers = &taxonomy
            .category(category)
            .map(|c| c.markers.clone())
            .unwrap_or_default();
        if markers.iter().any(|m| m == marker) {
            return Ok(());
        }
        let hint = suggest::closest(marker, markers.iter().map(String::as_str))
            .map(|s| format!(" (did you mean '{s}'?)"))
            .unwrap_or_default();
        Err(self.err(
            key,
            format!("'{marker}' is not a {category} marker{hint}"),
            format!(
                "use one of {}, or add '{marker}' under [{TABLE}.taxonomy.{category}]",
                markers.join(", ")
            ),
        ))
    }
}

impl Rules {
    pub fn new(config: &GpuConfig, taxonomy: &Taxonomy, source: &str) -> Result<Self> {
        let ctx = Ctx { source };
        check_vram_marker(&ctx, &config.vram_marker, taxonomy)?;
        check_models(&ctx, config, taxonomy)?;
        check_frameworks(&ctx, config, taxonomy)?;
        Ok(Rules {
            vram_marker: config.vram_marker.clone(),
            models: models(config, taxonomy),
            packages: framework_packages(config, taxonomy),
            family: family(taxonomy),
        })
    }

    /// Add `[tool.pytest-dynamo.packages]`: any marker name to the packages
    /// a test carrying it needs. `[gpu] frameworks` is the older name of the
    /// same thing for framework markers; one marker in both is an error.
    pub fn with_packages(
        mut self,
        packages: &BTreeMap<String, OneOrMany>,
        gpu: &GpuConfig,
        taxonomy: &Taxonomy,
        source: &str,
    ) -> Result<Self> {
        let err = |key: &str, message: String, fix: &str| {
            Error::config(source, format!("[{TABLE}.packages] {key}: {message}"), fix)
        };
        for (marker, names) in packages {
            if !is_identifier(marker) {
                return Err(err(
                    marker.as_str(),
                    format!("'{marker}' is not a marker name"),
                    "use the marker's name, a Python identifier",
                ));
            }
            if let crate::taxonomy::Resolved::Alias(def) = taxonomy.resolve(marker) {
                return Err(err(
                    marker.as_str(),
                    format!("'{marker}' is a deprecated alias of '{}'", def.name),
                    "name the canonical marker",
                ));
            }
            if gpu.frameworks.contains_key(marker) {
                return Err(err(
                    marker.as_str(),
                    format!("'{marker}' is also under [{TABLE}.gpu] frameworks, its older name"),
                    "keep it in one table: [tool.pytest-dynamo.packages]",
                ));
            }
            if let Some(bad) = names.0.iter().find(|p| !is_identifier(p)) {
                return Err(err(
                    marker.as_str(),
                    format!("'{bad}' is not the name of a top-level package"),
                    "give the name it is imported by, such as tensorrt_llm (not tensorrt-llm nor tensorrt_llm.runtime)",
                ));
            }
            self.packages.insert(marker.clone(), names.0.clone());
        }
        Ok(self)
    }

    /// Whether a test carrying `marker` needs a package.
    pub fn needs_package(&self, marker: &str) -> bool {
        self.packages.get(marker).is_some_and(|p| !p.is_empty())
    }

    /// The markers a test carries that need a package: canonical taxonomy
    /// markers, and marker names outside the taxonomy as written. Sorted,
    /// each once.
    pub fn package_markers(&self, item: &Item, resolved: &Resolution) -> Vec<String> {
        // Called for every collected test: most need no package, so nothing
        // is allocated until one does.
        let mut out: Vec<&str> = Vec::new();
        let names = resolved
            .markers
            .keys()
            .map(String::as_str)
            .chain(item.marks.iter().map(|m| m.name.as_str()));
        for name in names {
            if self.needs_package(name) && !out.contains(&name) {
                out.push(name);
            }
        }
        out.sort_unstable();
        out.into_iter().map(String::from).collect()
    }

    /// How many NVIDIA GPUs a hardware marker asks for (None: not NVIDIA's).
    pub fn gpus(&self, marker: &str) -> Option<u32> {
        self.family
            .iter()
            .find(|(m, _)| m == marker)
            .map(|(_, d)| *d)
    }

    /// The lowest `gpu_N` marker with at least `used` GPUs.
    pub fn lowest_for(&self, used: u32) -> Option<&str> {
        self.family
            .iter()
            .find(|(_, d)| *d >= used)
            .map(|(m, _)| m.as_str())
    }
}

/// The VRAM marker is a marker name of its own, outside the taxonomy.
fn check_vram_marker(ctx: &Ctx<'_>, vram: &str, taxonomy: &Taxonomy) -> Result<()> {
    if !is_identifier(vram) {
        return Err(ctx.err(
            "vram_marker",
            format!("'{vram}' is not a marker name"),
            "use a Python identifier, such as vram_gib",
        ));
    }
    if let Some(def) = taxonomy.marker(vram) {
        return Err(ctx.err(
            "vram_marker",
            format!(
                "'{vram}' is already a {} marker of the taxonomy",
                def.category
            ),
            "choose a name of its own, such as vram_gib",
        ));
    }
    Ok(())
}

/// `[gpu] models`: GPU-model markers, each with words of a GPU name.
fn check_models(ctx: &Ctx<'_>, config: &GpuConfig, taxonomy: &Taxonomy) -> Result<()> {
    for (marker, patterns) in &config.models {
        let key = format!("models.{marker}");
        ctx.in_category(taxonomy, &key, marker, GPU_MODEL)?;
        if patterns.0.is_empty() || patterns.0.iter().any(|p| words(p).is_empty()) {
            return Err(ctx.err(
                &key,
                "no words of a GPU name to match",
                "give words of the names nvidia-smi shows, such as \"H100\"",
            ));
        }
    }
    Ok(())
}

/// `[gpu] frameworks`: framework markers, each with top-level package names.
fn check_frameworks(ctx: &Ctx<'_>, config: &GpuConfig, taxonomy: &Taxonomy) -> Result<()> {
    for (marker, packages) in &config.frameworks {
        let key = format!("frameworks.{marker}");
        ctx.in_category(taxonomy, &key, marker, FRAMEWORK)?;
        if let Some(bad) = packages.0.iter().find(|p| !is_identifier(p)) {
            return Err(ctx.err(
                &key,
                format!("'{bad}' is not the name of a top-level package"),
                "give the name it is imported by, such as tensorrt_llm (not tensorrt-llm nor tensorrt_llm.runtime)",
            ));
        }
    }
    Ok(())
}

/// Every GPU-model marker and the names that match it (its own name,
/// upper-cased, unless `[gpu] models` says otherwise).
fn models(config: &GpuConfig, taxonomy: &Taxonomy) -> BTreeMap<String, Vec<Pattern>> {
    taxonomy
        .category(GPU_MODEL)
        .map(|c| c.markers.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let patterns = match config.models.get(&m) {
                Some(p) => p.0.iter().map(|t| Pattern::new(t)).collect(),
                None => vec![Pattern::new(&m.to_ascii_uppercase())],
            };
            (m, patterns)
        })
        .collect()
}

/// Every framework marker and the packages it needs (built in, or `[gpu] frameworks`).
fn framework_packages(config: &GpuConfig, taxonomy: &Taxonomy) -> BTreeMap<String, Vec<String>> {
    taxonomy
        .category(FRAMEWORK)
        .map(|c| c.markers.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let packages = match config.frameworks.get(&m) {
                Some(p) => p.0.clone(),
                None => FRAMEWORK_PACKAGES
                    .iter()
                    .filter(|(name, _)| *name == m)
                    .map(|(_, p)| (*p).to_string())
                    .collect(),
            };
            (m, packages)
        })
        .collect()
}

/// The `gpu_N` hardware markers and their GPU counts, fewest first.
fn family(taxonomy: &Taxonomy) -> Vec<(String, u32)> {
    let mut family: Vec<(String, u32)> = taxonomy
        .category(HARDWARE)
        .map(|c| c.markers.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.starts_with(NVIDIA_FAMILY))
        .filter_map(|m| {
            let devices = taxonomy.marker(&m)?.devices?;
            Some((m, devices))
        })
        .collect();
    family.sort_by_key(|(_, d)| *d);
    family
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_pyproject;
    use crate::taxonomy::customize;

    fn rules(text: &str) -> Result<Rules> {
        let config = from_pyproject("pyproject.toml", text)?.unwrap_or_default();
        let taxonomy = customize::taxonomy(&config, "pyproject.toml")?;
        Rules::new(&config.gpu, &taxonomy, "pyproject.toml")
    }

    #[test]
    fn model_names_match_whole_words() {
        let p = Pattern::new("H100");
        assert!(p.matches("NVIDIA H100 80GB HBM3"));
        assert!(p.matches("NVIDIA H100 `PCIe`"));
        assert!(p.matches("nvidia h100-sxm5"));
        assert!(!p.matches("NVIDIA GH100"));
        assert!(!p.matches("NVIDIA H800"));
        assert!(!Pattern::new("L40").matches("NVIDIA L40S"));
        assert!(Pattern::new("H100 NVL").matches("NVIDIA H100 NVL"));
        assert!(!Pattern::new("H100 NVL").matches("NVIDIA H100 `PCIe`"));
        assert!(Pattern::new("A100").matches("NVIDIA A100-SXM4-80GB"));
    }

    #[test]
    fn defaults_cover_the_builtin_markers() {
        let r = rules("").unwrap();
        assert_eq!(r.vram_marker, "vram_gib");
        assert_eq!(r.models["gb200"][0].text, "GB200");
        assert_eq!(r.packages["trtllm"], ["tensorrt_llm"]);
        assert_eq!(r.packages["vllm"], ["vllm"]);
        assert!(r.packages["custom_backend"].is_empty());
        let family: Vec<_> = r.family.iter().map(|(_, d)| *d).collect();
        assert_eq!(family, [0, 1, 2, 4, 8]);
        assert_eq!(r.lowest_for(0), Some("gpu_0"));
        assert_eq!(r.lowest_for(3), Some("gpu_4"));
        assert_eq!(r.lowest_for(9), None);
    }

    #[test]
    fn project_markers_join_in() {
        let r = rules(
            r#"
[tool.pytest-dynamo.taxonomy.hardware]
add = ["xpu_1", "gpu_16"]
[tool.pytest-dynamo.taxonomy.gpu_model]
add = ["b200"]
[tool.pytest-dynamo.taxonomy.framework]
add = ["lmcache", "mooncake"]
[tool.pytest-dynamo.gpu]
models = { h100 = ["H100", "H800"] }
frameworks = { vllm = ["vllm", "torch"], lmcache = "lmcache" }
"#,
        )
        .unwrap();
        assert_eq!(r.gpus("gpu_16"), Some(16));
        assert_eq!(r.gpus("xpu_1"), None);
        assert_eq!(r.models["b200"][0].text, "B200");
        assert_eq!(r.models["h100"].len(), 2);
        assert_eq!(r.packages["lmcache"], ["lmcache"]);
        // Not named in `frameworks`: no package is guessed for it.
        assert!(r.packages["mooncake"].is_empty());
        assert_eq!(r.packages["vllm"], ["vllm", "torch"]);
    }

    fn with_packages(text: &str) -> Result<Rules> {
        let config = from_pyproject("pyproject.toml", text)?.unwrap_or_default();
        let taxonomy = customize::taxonomy(&config, "pyproject.toml")?;
        Rules::new(&config.gpu, &taxonomy, "pyproject.toml")?.with_packages(
            &config.packages,
            &config.gpu,
            &taxonomy,
            "pyproject.toml",
        )
    }

    #[test]
    fn any_marker_can_need_a_package() {
        let r = with_packages(
            "[tool.pytest-dynamo.packages]\nkvbm = \"kvbm\"\nneeds_redis = [\"redis\", \"hiredis\"]\n\
             [tool.pytest-dynamo.gpu]\nframeworks = { sglang = \"sgl\" }\n",
        )
        .unwrap();
        assert_eq!(r.packages["kvbm"], ["kvbm"]);
        assert_eq!(r.packages["needs_redis"], ["redis", "hiredis"]);
        assert_eq!(r.packages["sglang"], ["sgl"]);
        assert_eq!(r.packages["vllm"], ["vllm"]);
        let item = Item::new(
            "a.py::t",
            &["kvbm", "needs_redis", "unit", "custom_backend"],
        );
        let taxonomy = Taxonomy::builtin();
        let resolved = crate::taxonomy::validate::resolve(
            &taxonomy,
            item.marks.iter().map(|m| m.name.as_str()),
            &std::collections::HashSet::<String>::new(),
        );
        assert_eq!(r.package_markers(&item, &resolved), ["kvbm", "needs_redis"]);
        let cases = [
            ("[tool.pytest-dynamo.packages]\nvllm = \"vllm\"\n[tool.pytest-dynamo.gpu]\nframeworks = { vllm = \"vllm\" }\n", "'vllm' is also under [tool.pytest-dynamo.gpu] frameworks"),
            ("[tool.pytest-dynamo.packages]\nkvbm = \"kv-bm\"\n", "[tool.pytest-dynamo.packages] kvbm: 'kv-bm' is not the name of a top-level package"),
            ("[tool.pytest-dynamo.aliases]\nkv = \"kvbm\"\n[tool.pytest-dynamo.packages]\nkv = \"kvbm\"\n", "'kv' is a deprecated alias of 'kvbm'"),
        ];
        for (toml, expected) in cases {
            let err = with_packages(toml).unwrap_err().to_string();
            assert!(err.contains(expected), "{toml}: {err}");
        }
    }

    #[test]
    fn mistakes_name_the_key_and_the_fix() {
        let err = rules("[tool.pytest-dynamo.gpu]\nmodels = { h10 = \"H100\" }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[tool.pytest-dynamo.gpu] models.h10: 'h10' is not a gpu_model marker (did you mean 'h100'?)"),
            "{err}"
        );
        assert!(err.contains("fix: "), "{err}");
        let err = rules("[tool.pytest-dynamo.gpu]\nmodels = { h100 = [] }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no words of a GPU name"), "{err}");
        let err = rules("[tool.pytest-dynamo.gpu]\nframeworks = { trtllm = \"tensorrt-llm\" }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'tensorrt-llm' is not the name of a top-level package"),
            "{err}"
        );
        let err = rules("[tool.pytest-dynamo.gpu]\nframeworks = { vllm2 = \"x\" }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a framework marker"), "{err}");
        let err = rules("[tool.pytest-dynamo.gpu]\nvram_marker = \"gpu_1\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("already a hardware marker"), "{err}");
        let err = rules("[tool.pytest-dynamo.gpu]\nvram_marker = \"vram gib\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a marker name"), "{err}");
    }
}
