//! The marker taxonomy of the strategy ("Python (pytest) Markers"): categories,
//! their markers with one-line descriptions, the lifecycle order, aliases and
//! how many markers of each category a test must and may carry.

mod config;
pub mod customize;
mod marker;
pub mod marker_args;
mod resolution;
pub mod suggest;
pub mod validate;
pub mod validation_report;

// The taxonomy's face: its settings, a test's marks, their resolution.
// The rest are namespaces their users name (`validate::`, `customize::`).
pub use config::{Aliases, CategoryConfig, Limit, MarkerSpec};
pub use marker::{number, Item, Mark, MarkValue};
pub use resolution::{resolve, Groups, Markers, Resolution};

use foldhash::HashMap;

/// The categories the rules and the pipelines speak of by name.
pub const LIFECYCLE: &str = "lifecycle";
pub const HARDWARE: &str = "hardware";
pub const GPU_MODEL: &str = "gpu_model";
pub const TYPE: &str = "type";
pub const FRAMEWORK: &str = "framework";
pub const COMPONENT: &str = "component";
pub const OTHER: &str = "other";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerDef {
    pub name: String,
    pub description: String,
    pub category: String,
    /// For hardware markers: how many devices the test needs.
    pub devices: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub name: String,
    pub description: String,
    /// Marker names in order (the order matters for the lifecycle).
    pub markers: Vec<String>,
    /// A test must carry at least this many markers of the category.
    pub min: u32,
    /// A test may carry at most this many (None: no limit).
    pub max: Option<u32>,
    /// Markers of other categories that meet `min` on their own.
    pub satisfied_by: Vec<String>,
    /// Groups of this category's markers a test may not carry together.
    pub exclusive: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taxonomy {
    pub categories: Vec<Category>,
    markers: HashMap<String, MarkerDef>,
    /// Old name -> canonical name.
    aliases: HashMap<String, String>,
    /// The marker that carries a test's VRAM need (`[gpu] vram_marker`).
    pub vram_marker: String,
}

/// How a marker name on a test resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved<'a> {
    Known(&'a MarkerDef),
    /// A deprecated alias of a known marker.
    Alias(&'a MarkerDef),
    Unknown,
}

/// `(category, description, [(marker, description)])`.
type Builtin = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const BUILTIN: &[Builtin] = &[
    (
        LIFECYCLE,
        "when the test runs: each pipeline runs its own stage and every earlier one",
        &[
            ("pre_commit", "runs at pre-commit, on every commit"),
            ("pre_merge", "runs before merging a pull request"),
            ("post_merge", "runs after a push to a gated branch"),
            ("nightly", "runs in the nightly pipeline"),
            (
                "weekly",
                "runs in the weekly pipeline (long stress and conformance)",
            ),
            ("release", "runs in the release pipeline"),
        ],
    ),
    (
        HARDWARE,
        "the lowest hardware the test can run on: exactly one",
        &[
            ("gpu_0", "runs on CPU only (no GPU needed)"),
            ("gpu_1", "needs 1 GPU"),
            ("gpu_2", "needs 2 GPUs"),
            ("gpu_4", "needs 4 GPUs"),
            ("gpu_8", "needs 8 GPUs"),
        ],
    ),
    (
        GPU_MODEL,
        "optional: the GPU model the test needs",
        &[
            ("h100", "needs an NVIDIA H100"),
            ("gb200", "needs an NVIDIA GB200"),
            ("a100", "needs an NVIDIA A100"),
            ("l40", "needs an NVIDIA L40"),
        ],
    ),
    (
        TYPE,
        "what kind of test it is",
        &[
            ("unit", "unit test"),
            ("integration", "integration test: real service interaction"),
            ("e2e", "end-to-end test: user workflows, CLI and API"),
            (
                "stress",
                "stress test: rare, resource and distributed failures",
            ),
            ("smoke", "smoke test"),
            (
                "performance",
                "performance test: latency, throughput, resource usage",
            ),
            ("benchmark", "benchmark"),
            ("scalability", "scalability test"),
            ("distributed", "distributed or multi-node test"),
            ("security", "security or auth test"),
            ("conformance", "conformance test"),
            ("regression", "regression test"),
        ],
    ),
    (
        FRAMEWORK,
        "the inference backend the test needs, if any",
        &[
            ("vllm", "needs vLLM"),
            ("trtllm", "needs TensorRT-LLM"),
            ("sglang", "needs SGLang"),
            ("custom_backend", "needs a custom backend"),
        ],
    ),
    (
        COMPONENT,
        "optional: the component or feature under test",
        &[
            ("kv_cache", "tests the key-value cache"),
            ("kvbm", "tests KVBM"),
            ("planner", "tests the planner"),
            ("router", "tests the router"),
            ("api", "tests API endpoints"),
            ("config", "tests configuration"),
            ("logging", "tests logging and metrics"),
            ("data_plane", "tests the data path"),
            ("control_plane", "tests the control and configuration path"),
        ],
    ),
    (
        OTHER,
        "optional: other properties",
        &[
            ("slow", "known to be slow"),
            ("flaky", "known to be flaky: retried, flaky(reruns=N)"),
            ("k8s", "needs Kubernetes"),
            ("slurm", "needs Slurm"),
            ("docker", "runs in Docker"),
            ("cloud", "cloud only"),
        ],
    ),
];

/// `gpu_2` -> 2: the device count a hardware marker's name spells.
pub fn devices_from_name(name: &str) -> Option<u32> {
    let (_, digits) = name.rsplit_once('_')?;
    digits.parse().ok()
}

impl Default for Taxonomy {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Taxonomy {
    pub fn builtin() -> Self {
        let mut taxonomy = Taxonomy {
            categories: Vec::new(),
            markers: HashMap::default(),
            aliases: HashMap::default(),
            vram_marker: crate::gpu::VRAM_MARKER.to_string(),
        };
        for (category, description, markers) in BUILTIN {
            let (min, max) = match *category {
                LIFECYCLE | TYPE => (1, None),
                HARDWARE => (1, Some(1)),
                _ => (0, None),
            };
            taxonomy.categories.push(Category {
                name: (*category).to_string(),
                description: (*description).to_string(),
                markers: Vec::new(),
                min,
                max,
                satisfied_by: Vec::new(),
                exclusive: Vec::new(),
            });
            for (name, description) in *markers {
                taxonomy.insert_marker(category, name, description, None, None);
            }
        }
        taxonomy
    }

    pub fn category(&self, name: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.name == name)
    }

    pub fn category_mut(&mut self, name: &str) -> Option<&mut Category> {
        self.categories.iter_mut().find(|c| c.name == name)
    }

    pub fn marker(&self, name: &str) -> Option<&MarkerDef> {
        self.markers.get(name)
    }

    /// Every marker, category by category, in order.
    pub fn markers(&self) -> impl Iterator<Item = &MarkerDef> {
        self.categories
            .iter()
            .flat_map(|c| c.markers.iter().map(|m| &self.markers[m]))
    }

    pub fn aliases(&self) -> impl Iterator<Item = (&str, &str)> {
        self.aliases.iter().map(|(a, c)| (a.as_str(), c.as_str()))
    }

    /// Add a marker to a category; `position` places it in the category's
    /// order (the lifecycle order), at the end when None.
    pub fn insert_marker(
        &mut self,
        category: &str,
        name: &str,
        description: &str,
        devices: Option<u32>,
        position: Option<usize>,
    ) {
        let devices = if category == HARDWARE {
            devices.or_else(|| devices_from_name(name))
        } else {
            None
        };
        self.markers.insert(
            name.to_string(),
            MarkerDef {
                name: name.to_string(),
                description: description.to_string(),
                category: category.to_string(),
                devices,
            },
        );
        let cat = self
            .category_mut(category)
            .expect("insert_marker: the category exists");
        let at = position.unwrap_or(cat.markers.len()).min(cat.markers.len());
        cat.markers.insert(at, name.to_string());
    }

    pub fn remove_marker(&mut self, name: &str) -> bool {
        let Some(def) = self.markers.remove(name) else {
            return false;
        };
        if let Some(cat) = self.category_mut(&def.category) {
            cat.markers.retain(|m| m != name);
        }
        self.aliases.retain(|_, canonical| canonical != name);
        true
    }

    pub fn add_category(&mut self, name: &str, description: &str) {
        self.categories.push(Category {
            name: name.to_string(),
            description: description.to_string(),
            markers: Vec::new(),
            min: 0,
            max: None,
            satisfied_by: Vec::new(),
            exclusive: Vec::new(),
        });
    }

    pub fn add_alias(&mut self, alias: &str, canonical: &str) {
        self.aliases
            .insert(alias.to_string(), canonical.to_string());
    }

    pub fn resolve(&self, name: &str) -> Resolved<'_> {
        if let Some(def) = self.markers.get(name) {
            return Resolved::Known(def);
        }
        match self.aliases.get(name).and_then(|c| self.markers.get(c)) {
            Some(def) => Resolved::Alias(def),
            None => Resolved::Unknown,
        }
    }

    /// Position of a lifecycle marker in the lifecycle order.
    pub fn lifecycle_rank(&self, name: &str) -> Option<usize> {
        self.category(LIFECYCLE)?
            .markers
            .iter()
            .position(|m| m == name)
    }

    /// The known marker an unknown name most likely meant.
    pub fn suggest(&self, name: &str) -> Option<&str> {
        suggest::closest(name, self.markers.keys().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_every_category_of_the_strategy() {
        let t = Taxonomy::builtin();
        let names: Vec<_> = t.categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [LIFECYCLE, HARDWARE, GPU_MODEL, TYPE, FRAMEWORK, COMPONENT, OTHER]
        );
        assert_eq!(t.markers().count(), 6 + 5 + 4 + 12 + 4 + 9 + 6);
        assert!(t.markers().all(|m| !m.description.is_empty()));
    }

    #[test]
    fn lifecycle_is_ordered() {
        let t = Taxonomy::builtin();
        assert!(t.lifecycle_rank("pre_merge") < t.lifecycle_rank("nightly"));
        assert!(t.lifecycle_rank("weekly") < t.lifecycle_rank("release"));
        assert_eq!(t.lifecycle_rank("unit"), None);
    }

    #[test]
    fn hardware_markers_know_their_device_count() {
        let t = Taxonomy::builtin();
        assert_eq!(t.marker("gpu_0").unwrap().devices, Some(0));
        assert_eq!(t.marker("gpu_8").unwrap().devices, Some(8));
        assert_eq!(t.marker("h100").unwrap().devices, None);
    }

    #[test]
    fn aliases_resolve_to_the_canonical_marker() {
        let mut t = Taxonomy::builtin();
        t.add_alias("premerge", "pre_merge");
        assert!(matches!(t.resolve("premerge"), Resolved::Alias(d) if d.name == "pre_merge"));
        assert!(matches!(t.resolve("pre_merge"), Resolved::Known(_)));
        assert_eq!(t.resolve("nope"), Resolved::Unknown);
    }

    #[test]
    fn removing_a_marker_drops_its_aliases() {
        let mut t = Taxonomy::builtin();
        t.add_alias("old_cloud", "cloud");
        assert!(t.remove_marker("cloud"));
        assert_eq!(t.resolve("old_cloud"), Resolved::Unknown);
        assert!(!t.category(OTHER).unwrap().markers.contains(&"cloud".into()));
    }
}
