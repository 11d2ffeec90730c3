//! `[tool.pytest-dynamo.parallel]`: the memory budget per GPU, what a GPU
//! test without a VRAM value gets, and the worker split. Checked at load.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::config::TABLE;
use crate::error::{Error, Result};

pub const DEFAULT_MEMORY_MARGIN: f64 = 0.15;

/// What a GPU test without a VRAM value needs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum UnknownVram {
    /// Its GPUs to itself (safe: it may grab all memory).
    #[default]
    Exclusive,
    /// Not run in a parallel run (skipped with a reason).
    Skip,
    /// This many GiB per GPU.
    Gib(f64),
}

impl<'de> Deserialize<'de> for UnknownVram {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UnknownVram;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"exclusive\", \"skip\" or a number of GiB")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<UnknownVram, E> {
                match v {
                    "exclusive" => Ok(UnknownVram::Exclusive),
                    "skip" => Ok(UnknownVram::Skip),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<UnknownVram, E> {
                Ok(UnknownVram::Gib(v))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<UnknownVram, E> {
                Ok(UnknownVram::Gib(v as f64))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ParallelConfig {
    /// Share of each GPU's total memory kept free (driver, fragmentation).
    pub memory_margin: f64,
    /// An explicit budget per GPU in GiB, instead of total x (1 - margin).
    pub gpu_memory_gib: Option<f64>,
    pub unknown_vram: UnknownVram,
    /// Workers kept for `gpu_0` tests (default: those left after the GPU slots).
    pub cpu_slots: Option<u32>,
    /// Cap on the worker count `-n auto` picks.
    pub max_workers: Option<u32>,
}

impl Default for ParallelConfig {
    fn default() -> Self {
        ParallelConfig {
            memory_margin: DEFAULT_MEMORY_MARGIN,
            gpu_memory_gib: None,
            unknown_vram: UnknownVram::Exclusive,
            cpu_slots: None,
            max_workers: None,
        }
    }
}

fn err(source: &str, key: &str, message: String, fix: &str) -> Error {
    Error::config(source, format!("[{TABLE}.parallel] {key}: {message}"), fix)
}

impl ParallelConfig {
    /// Values the types accept but no machine could use.
    pub fn check(&self, source: &str) -> Result<()> {
        let m = self.memory_margin;
        if !(m.is_finite() && (0.0..1.0).contains(&m)) {
            return Err(err(
                source,
                "memory_margin",
                format!("{m} is not a share between 0 and 1"),
                "give a share of each GPU's memory to keep free, 0 <= margin < 1 (default 0.15)",
            ));
        }
        if let Some(g) = self.gpu_memory_gib {
            if !(g.is_finite() && g > 0.0) {
                return Err(err(
                    source,
                    "gpu_memory_gib",
                    format!("{g} is not a positive number of GiB"),
                    "give the memory budget per GPU in GiB, e.g. 68, or remove the key to use total x (1 - memory_margin)",
                ));
            }
        }
        if let UnknownVram::Gib(g) = self.unknown_vram {
            if !(g.is_finite() && g > 0.0) {
                return Err(err(
                    source,
                    "unknown_vram",
                    format!("{g} is not a positive number of GiB"),
                    "use \"exclusive\", \"skip\" or a positive number of GiB",
                ));
            }
        }
        if self.max_workers == Some(0) {
            return Err(err(
                source,
                "max_workers",
                "0 workers could run nothing".into(),
                "give at least 1, or remove the key for no cap",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_pyproject;

    fn parse(body: &str) -> crate::error::Result<ParallelConfig> {
        let text = format!("[tool.pytest-dynamo.parallel]\n{body}\n");
        let config = from_pyproject("p", &text)?.unwrap().parallel;
        config.check("p")?;
        Ok(config)
    }

    #[test]
    fn defaults_and_values_read() {
        assert_eq!(parse("").unwrap(), ParallelConfig::default());
        let c = parse("memory_margin = 0.2\ngpu_memory_gib = 40\nunknown_vram = 12\ncpu_slots = 2\nmax_workers = 9").unwrap();
        assert!((c.memory_margin - 0.2).abs() < 1e-12);
        assert_eq!(c.gpu_memory_gib, Some(40.0));
        assert_eq!(c.unknown_vram, UnknownVram::Gib(12.0));
        assert_eq!((c.cpu_slots, c.max_workers), (Some(2), Some(9)));
        assert_eq!(
            parse("unknown_vram = \"skip\"").unwrap().unknown_vram,
            UnknownVram::Skip
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_key_and_the_fix() {
        for (body, key) in [
            ("memory_margin = 1.0", "memory_margin"),
            ("memory_margin = -0.1", "memory_margin"),
            ("memory_margin = nan", "memory_margin"),
            ("gpu_memory_gib = 0", "gpu_memory_gib"),
            ("unknown_vram = -3", "unknown_vram"),
            ("unknown_vram = \"shared\"", "unknown_vram"),
            ("max_workers = 0", "max_workers"),
            ("cpu_slot = 2", "cpu_slot"),
        ] {
            let e = parse(body).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("fix:"), "{body}: {e}");
        }
    }
}
