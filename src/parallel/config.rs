//! `[tool.pytest-dynamo.parallel]`: the memory budget per GPU, what a GPU
//! test without a VRAM value gets, and the worker split. Checked at load.

use std::collections::BTreeMap;
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
    /// Least time between two test starts on one GPU: `"5s"`, `"500ms"`,
    /// `"1m"` or a number of seconds (engines measure free memory at start).
    pub start_interval: Option<Interval>,
    /// Also wait until NVML reports the needed memory free on the GPUs.
    pub check_free_memory: bool,
    /// `[parallel.env]`: marker name -> environment variable set to the
    /// marker's first argument while the test runs.
    pub env: BTreeMap<String, String>,
}

/// A duration as the configuration writes it; `seconds` once read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub seconds: f64,
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Interval;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a duration such as \"5s\", \"500ms\" or \"1m\", or a number of seconds",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Interval, E> {
                parse_interval(v)
                    .map(|seconds| Interval { seconds })
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Interval, E> {
                Ok(Interval { seconds: v })
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Interval, E> {
                Ok(Interval { seconds: v as f64 })
            }
        }
        d.deserialize_any(V)
    }
}

/// `"5s"`, `"500ms"`, `"1m"`, `"2.5"` (seconds) -> seconds.
pub fn parse_interval(text: &str) -> Option<f64> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    number.trim().parse::<f64>().ok().map(|n| n * scale)
}

impl ParallelConfig {
    /// The stagger between starts on one GPU, in seconds (0: none).
    pub fn start_interval_s(&self) -> f64 {
        self.start_interval.map_or(0.0, |i| i.seconds)
    }
}

impl Default for ParallelConfig {
    fn default() -> Self {
        ParallelConfig {
            memory_margin: DEFAULT_MEMORY_MARGIN,
            gpu_memory_gib: None,
            unknown_vram: UnknownVram::Exclusive,
            cpu_slots: None,
            max_workers: None,
            start_interval: None,
            check_free_memory: false,
            env: BTreeMap::new(),
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
        if let Some(Interval { seconds }) = self.start_interval {
            if !(seconds.is_finite() && (0.0..=3600.0).contains(&seconds)) {
                return Err(err(
                    source,
                    "start_interval",
                    format!("{seconds} s is not between 0 and 1 hour"),
                    "give the least time between two starts on one GPU, e.g. \"5s\", or remove the key",
                ));
            }
        }
        for (marker, variable) in &self.env {
            let identifier = |s: &str| {
                s.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            };
            if !identifier(marker) {
                return Err(err(
                    source,
                    &format!("env.{marker}"),
                    format!("{marker:?} is not a marker name"),
                    "use the name of the marker whose first argument gives the value",
                ));
            }
            if !identifier(variable) {
                return Err(err(
                    source,
                    &format!("env.{marker}"),
                    format!("{variable:?} is not an environment variable name"),
                    "give a name of letters, digits and _, e.g. \"_PROFILE_OVERRIDE_VLLM_KV_CACHE_BYTES\"",
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
        let c = parse("start_interval = \"500ms\"\ncheck_free_memory = true\nenv = { kv_bytes = \"KV_BYTES\" }").unwrap();
        assert!((c.start_interval_s() - 0.5).abs() < 1e-12);
        assert!(c.check_free_memory);
        assert_eq!(c.env.get("kv_bytes").map(String::as_str), Some("KV_BYTES"));
        assert!(
            (parse("start_interval = \"1m\"").unwrap().start_interval_s() - 60.0).abs() < 1e-12
        );
        assert!((parse("start_interval = 2").unwrap().start_interval_s() - 2.0).abs() < 1e-12);
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
            ("start_interval = \"soon\"", "start_interval"),
            ("start_interval = -1", "start_interval"),
            ("env = { kv_bytes = \"A B\" }", "env.kv_bytes"),
            ("env = { \"kv-bytes\" = \"A\" }", "env.kv-bytes"),
            ("cpu_slot = 2", "cpu_slot"),
        ] {
            let e = parse(body).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("fix:"), "{body}: {e}");
        }
    }
}
