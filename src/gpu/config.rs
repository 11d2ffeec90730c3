//! `[tool.pytest-dynamo.gpu]`: how the hardware markers meet the machine.
//! Checked against the taxonomy in `rules.rs`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

pub const VRAM_MARKER: &str = "vram_gib";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpuConfig {
    /// The marker that carries a test's VRAM need in GiB: `@pytest.mark.vram_gib(3.8)`.
    pub vram_marker: String,
    /// GPU-model marker -> words matched against the GPU names NVML reports
    /// (default: the marker's own name, `h100` matches "NVIDIA H100 80GB HBM3").
    pub models: BTreeMap<String, OneOrMany>,
    /// Framework marker -> the top-level packages it needs installed
    /// (built in: vllm, sglang, `trtllm` -> `tensorrt_llm`; `[]` turns a check off).
    pub frameworks: BTreeMap<String, OneOrMany>,
}

impl Default for GpuConfig {
    fn default() -> Self {
        GpuConfig {
            vram_marker: VRAM_MARKER.to_string(),
            models: BTreeMap::new(),
            frameworks: BTreeMap::new(),
        }
    }
}

/// `"H100"` or `["H100", "H800"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::from_pyproject;

    #[test]
    fn the_gpu_table_reads_strings_and_lists() {
        let text = r#"
[tool.pytest-dynamo.gpu]
vram_marker = "profiled_vram_gib"
models = { h100 = ["H100", "H800"], l40 = "L40S" }
frameworks = { trtllm = "tensorrt_llm", custom_backend = [] }
"#;
        let gpu = from_pyproject("p", text).unwrap().unwrap().gpu;
        assert_eq!(gpu.vram_marker, "profiled_vram_gib");
        assert_eq!(gpu.models["h100"].0, ["H100", "H800"]);
        assert_eq!(gpu.models["l40"].0, ["L40S"]);
        assert!(gpu.frameworks["custom_backend"].0.is_empty());
    }

    #[test]
    fn defaults_apply_without_a_table_and_typos_are_errors() {
        let gpu = from_pyproject("p", "[tool.pytest-dynamo]\n")
            .unwrap()
            .unwrap()
            .gpu;
        assert_eq!(gpu.vram_marker, "vram_gib");
        let err = from_pyproject("p", "[tool.pytest-dynamo.gpu]\nvram_markr = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("vram_markr") && err.contains("`vram_marker`"),
            "{err}"
        );
        let err = from_pyproject("p", "[tool.pytest-dynamo.gpu]\nmodels = { h100 = 3 }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a string or an array of strings"), "{err}");
    }
}
