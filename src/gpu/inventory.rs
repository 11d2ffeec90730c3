//! The GPU inventory of a run: the devices a CUDA program would see, in
//! `CUDA_VISIBLE_DEVICES` order, and why the count is what it is. JSON-able:
//! the xdist controller probes once and hands it to every worker.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::visible::{self, Ids, Target};

/// Memory as NVML reports it, in MiB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Memory {
    pub total_mib: f64,
    pub free_mib: f64,
}

/// A MIG instance of a physical GPU, as the probe read it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Instance {
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub memory: Option<Memory>,
}

/// One physical GPU, by NVML index, as the probe read it (None: unreadable).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Physical {
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub memory: Option<Memory>,
    pub mig: bool,
    pub instances: Vec<Instance>,
}

/// One visible device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// The NVML (physical) index; a MIG instance has its GPU's.
    pub index: u32,
    pub name: String,
    pub uuid: Option<String>,
    pub memory_total_mib: Option<f64>,
    pub memory_free_mib: Option<f64>,
    /// True for a MIG instance, and for a whole GPU that has MIG mode on.
    pub mig: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Counted by NVML.
    Nvml,
    /// Counted by `--dynamo-gpus` / `DYNAMO_GPUS` / `dynamo_gpus`.
    Override,
    /// NVML could not be used.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub visible: u32,
    pub physical: u32,
    pub devices: Vec<Device>,
    pub driver: Option<String>,
    pub cuda_visible_devices: Option<String>,
    /// Why no GPU is visible, or what set the count.
    pub reason: Option<String>,
    pub source: Source,
}

const UNKNOWN_NAME: &str = "unknown GPU";

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Inventory {
    /// No usable NVML: no GPU, and why.
    pub fn unavailable(reason: impl Into<String>, cuda_visible_devices: Option<&str>) -> Self {
        Inventory {
            visible: 0,
            physical: 0,
            devices: Vec::new(),
            driver: None,
            cuda_visible_devices: cuda_visible_devices.map(String::from),
            reason: Some(reason.into()),
            source: Source::None,
        }
    }

    /// The count set by hand (`label` says by what), NVML not asked: a
    /// wedged driver cannot hang a run that names its GPU count, and nothing
    /// is known of the GPUs beyond how many there are.
    pub fn counted(n: u32, label: &str, cuda_visible_devices: Option<&str>) -> Self {
        Inventory {
            visible: n,
            physical: 0,
            devices: Vec::new(),
            driver: None,
            cuda_visible_devices: cuda_visible_devices.map(String::from),
            reason: Some(format!("count set by {label}")),
            source: Source::Override,
        }
    }

    /// The visible devices among the physical GPUs NVML found.
    pub fn build(
        physical: &[Physical],
        driver: Option<String>,
        cuda_visible_devices: Option<&str>,
    ) -> Self {
        let ids: Vec<Ids> = physical
            .iter()
            .map(|p| Ids {
                uuid: p.uuid.clone(),
                migs: p.instances.iter().map(|i| i.uuid.clone()).collect(),
            })
            .collect();
        let devices: Vec<Device> = visible::visible(cuda_visible_devices, &ids)
            .into_iter()
            .map(|t| device(physical, t))
            .collect();
        let reason = if !devices.is_empty() {
            None
        } else if physical.is_empty() {
            Some("NVML found no GPU".to_string())
        } else {
            let value = cuda_visible_devices.unwrap_or_default();
            Some(if value.trim().is_empty() {
                "CUDA_VISIBLE_DEVICES is empty".to_string()
            } else {
                format!(
                    "CUDA_VISIBLE_DEVICES={value} names none of the {} GPU{}",
                    physical.len(),
                    plural(physical.len())
                )
            })
        };
        Inventory {
            visible: count(devices.len()),
            physical: count(physical.len()),
            devices,
            driver,
            cuda_visible_devices: cuda_visible_devices.map(String::from),
            reason,
            source: Source::Nvml,
        }
    }

    /// The count set by hand (`label` says by what, e.g. `--dynamo-gpus=1`):
    /// the first `n` visible devices keep their description; beyond those
    /// nothing is known of them.
    #[must_use]
    pub fn with_override(mut self, n: u32, label: &str) -> Self {
        self.devices.truncate(n as usize);
        let mut reason = format!("count set by {label}");
        if self.source == Source::None {
            if let Some(why) = &self.reason {
                reason.push_str("; NVML: ");
                reason.push_str(why);
            }
        }
        self.visible = n;
        self.reason = Some(reason);
        self.source = Source::Override;
        self
    }

    /// The header line: `dynamo: 2 of 8 GPUs visible (NVIDIA H100 80GB HBM3),
    /// 80 GiB each, driver 550.54`, or `dynamo: no NVIDIA GPU (why)`.
    pub fn describe(&self) -> String {
        let why = self.reason.as_deref().unwrap_or("unknown reason");
        if self.visible == 0 && self.source != Source::Nvml {
            return format!("dynamo: no NVIDIA GPU ({why})");
        }
        if self.visible == 0 {
            let mut line = if self.physical == 0 {
                format!("dynamo: no NVIDIA GPU ({why})")
            } else {
                format!(
                    "dynamo: 0 of {} GPU{} visible ({why})",
                    self.physical,
                    plural(self.physical as usize)
                )
            };
            if let Some(d) = &self.driver {
                let _ = write!(line, ", driver {d}");
            }
            return line;
        }
        if self.devices.is_empty() {
            // An override beyond anything NVML described.
            return format!(
                "dynamo: {} GPU{} ({why})",
                self.visible,
                plural(self.visible as usize)
            );
        }
        let mut line = if self.visible > self.physical {
            format!(
                "dynamo: {} GPUs, NVML found {}",
                self.visible, self.physical
            )
        } else {
            format!(
                "dynamo: {} of {} GPU{} visible",
                self.visible,
                self.physical,
                plural(self.physical as usize)
            )
        };
        let _ = write!(line, " ({})", self.names());
        if let Some(memory) = self.memory() {
            let _ = write!(line, ", {memory}");
        }
        if let Some(d) = &self.driver {
            let _ = write!(line, ", driver {d}");
        }
        if let Some(v) = &self.cuda_visible_devices {
            let _ = write!(line, "; CUDA_VISIBLE_DEVICES={v}");
        }
        if self.source == Source::Override {
            let _ = write!(line, "; {why}");
        }
        line
    }

    /// Distinct names in order; with their counts when they differ.
    fn names(&self) -> String {
        let mut seen: Vec<(&str, usize)> = Vec::new();
        for d in &self.devices {
            match seen.iter_mut().find(|(n, _)| *n == d.name) {
                Some((_, c)) => *c += 1,
                None => seen.push((&d.name, 1)),
            }
        }
        if seen.len() == 1 {
            return seen[0].0.to_string();
        }
        seen.iter()
            .map(|(n, c)| format!("{c} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn memory(&self) -> Option<String> {
        let mut sizes: Vec<String> = Vec::new();
        for mib in self.devices.iter().filter_map(|d| d.memory_total_mib) {
            let s = gib_text(mib);
            if !sizes.contains(&s) {
                sizes.push(s);
            }
        }
        match sizes.len() {
            0 => None,
            1 if self.devices.len() > 1 => Some(format!("{} GiB each", sizes[0])),
            _ => Some(format!("{} GiB", sizes.join("/"))),
        }
    }

    /// What the skip reasons add in parentheses to explain the count.
    pub fn count_note(&self) -> Option<String> {
        match (&self.source, &self.reason, &self.cuda_visible_devices) {
            (Source::Nvml, _, Some(v)) => Some(format!("CUDA_VISIBLE_DEVICES={v}")),
            (_, r, _) => r.clone(),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `81559` MiB -> `80`; below 1 GiB, one decimal.
pub fn gib_text(mib: f64) -> String {
    let gib = mib / 1024.0;
    if gib >= 1.0 {
        format!("{gib:.0}")
    } else {
        format!("{gib:.1}")
    }
}

fn device(physical: &[Physical], target: Target) -> Device {
    match target {
        Target::Gpu(i) => {
            let p = &physical[i];
            Device {
                index: count(i),
                name: p.name.clone().unwrap_or_else(|| UNKNOWN_NAME.into()),
                uuid: p.uuid.clone(),
                memory_total_mib: p.memory.map(|m| m.total_mib),
                memory_free_mib: p.memory.map(|m| m.free_mib),
                mig: p.mig,
            }
        }
        Target::Mig(i, j) => {
            let m = &physical[i].instances[j];
            Device {
                index: count(i),
                name: m.name.clone().unwrap_or_else(|| UNKNOWN_NAME.into()),
                uuid: m.uuid.clone(),
                memory_total_mib: m.memory.map(|m| m.total_mib),
                memory_free_mib: m.memory.map(|m| m.free_mib),
                mig: true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h100(uuid: &str) -> Physical {
        Physical {
            name: Some("NVIDIA H100 80GB HBM3".into()),
            uuid: Some(uuid.into()),
            memory: Some(Memory {
                total_mib: 81559.0,
                free_mib: 81000.0,
            }),
            mig: false,
            instances: Vec::new(),
        }
    }

    fn eight() -> Vec<Physical> {
        (0..8).map(|i| h100(&format!("GPU-{i}{i}{i}{i}"))).collect()
    }

    #[allow(clippy::unnecessary_wraps)]
    fn driver() -> Option<String> {
        Some("550.54".into())
    }

    #[test]
    fn the_header_says_what_is_visible() {
        let inv = Inventory::build(&eight(), driver(), Some("0,1"));
        assert_eq!(
            inv.describe(),
            "dynamo: 2 of 8 GPUs visible (NVIDIA H100 80GB HBM3), 80 GiB each, driver 550.54; CUDA_VISIBLE_DEVICES=0,1"
        );
        let inv = Inventory::build(&eight()[..1], driver(), None);
        assert_eq!(
            inv.describe(),
            "dynamo: 1 of 1 GPU visible (NVIDIA H100 80GB HBM3), 80 GiB, driver 550.54"
        );
        assert_eq!(inv.devices[0].uuid.as_deref(), Some("GPU-0000"));
    }

    #[test]
    fn mixed_machines_list_each_model() {
        let mut gpus = eight()[..2].to_vec();
        gpus.push(Physical {
            name: Some("NVIDIA L40S".into()),
            memory: Some(Memory {
                total_mib: 46068.0,
                free_mib: 0.0,
            }),
            ..Physical::default()
        });
        let inv = Inventory::build(&gpus, None, None);
        assert_eq!(
            inv.describe(),
            "dynamo: 3 of 3 GPUs visible (2 NVIDIA H100 80GB HBM3, 1 NVIDIA L40S), 80/45 GiB"
        );
    }

    #[test]
    fn no_gpu_says_why() {
        let inv = Inventory::unavailable("libnvidia-ml.so.1 not found", None);
        assert_eq!(
            inv.describe(),
            "dynamo: no NVIDIA GPU (libnvidia-ml.so.1 not found)"
        );
        assert_eq!(inv.source, Source::None);
        let inv = Inventory::build(&[], driver(), None);
        assert_eq!(
            inv.describe(),
            "dynamo: no NVIDIA GPU (NVML found no GPU), driver 550.54"
        );
        let inv = Inventory::build(&eight(), driver(), Some(""));
        assert_eq!(
            inv.describe(),
            "dynamo: 0 of 8 GPUs visible (CUDA_VISIBLE_DEVICES is empty), driver 550.54"
        );
        let inv = Inventory::build(&eight(), None, Some("9"));
        assert_eq!(
            inv.reason.as_deref(),
            Some("CUDA_VISIBLE_DEVICES=9 names none of the 8 GPUs")
        );
    }

    #[test]
    fn visible_devices_follow_the_variable() {
        let inv = Inventory::build(&eight(), None, Some("GPU-5555,3"));
        assert_eq!(inv.visible, 1);
        assert_eq!(inv.devices[0].index, 5);
        let inv = Inventory::build(&eight(), None, Some("6,2"));
        let idx: Vec<u32> = inv.devices.iter().map(|d| d.index).collect();
        assert_eq!(idx, [6, 2]);
    }

    #[test]
    fn a_mig_entry_describes_the_instance() {
        let mut gpus = eight()[..1].to_vec();
        gpus[0].mig = true;
        gpus[0].instances = vec![Instance {
            name: Some("NVIDIA H100 80GB HBM3 MIG 1g.10gb".into()),
            uuid: Some("MIG-abcd".into()),
            memory: Some(Memory {
                total_mib: 9984.0,
                free_mib: 9000.0,
            }),
        }];
        let inv = Inventory::build(&gpus, None, Some("MIG-ab"));
        assert_eq!(inv.visible, 1);
        let d = &inv.devices[0];
        assert!(d.mig);
        assert_eq!(d.uuid.as_deref(), Some("MIG-abcd"));
        assert_eq!(d.memory_total_mib, Some(9984.0));
        let whole = Inventory::build(&gpus, None, None);
        assert!(whole.devices[0].mig);
        assert_eq!(whole.devices[0].memory_total_mib, Some(81559.0));
    }

    #[test]
    fn an_override_sets_the_count_and_says_so() {
        let inv = Inventory::build(&eight(), driver(), None).with_override(1, "--dynamo-gpus=1");
        assert_eq!((inv.visible, inv.physical, inv.devices.len()), (1, 8, 1));
        assert_eq!(inv.source, Source::Override);
        assert_eq!(
            inv.describe(),
            "dynamo: 1 of 8 GPUs visible (NVIDIA H100 80GB HBM3), 80 GiB, driver 550.54; count set by --dynamo-gpus=1"
        );
        assert_eq!(
            inv.count_note().as_deref(),
            Some("count set by --dynamo-gpus=1")
        );
        let none = Inventory::unavailable("libnvidia-ml.so.1 not found", None)
            .with_override(2, "DYNAMO_GPUS=2");
        assert_eq!(
            none.describe(),
            "dynamo: 2 GPUs (count set by DYNAMO_GPUS=2; NVML: libnvidia-ml.so.1 not found)"
        );
        let more = Inventory::build(&eight()[..2], None, None).with_override(4, "DYNAMO_GPUS=4");
        assert_eq!(
            more.describe(),
            "dynamo: 4 GPUs, NVML found 2 (NVIDIA H100 80GB HBM3), 80 GiB each; count set by DYNAMO_GPUS=4"
        );
        let zero = Inventory::build(&eight(), driver(), None).with_override(0, "DYNAMO_GPUS=0");
        assert_eq!(
            zero.describe(),
            "dynamo: no NVIDIA GPU (count set by DYNAMO_GPUS=0)"
        );
    }

    #[test]
    fn a_count_set_by_hand_needs_no_nvml() {
        let two = Inventory::counted(2, "--dynamo-gpus=2", None);
        assert_eq!((two.visible, two.source), (2, Source::Override));
        assert_eq!(
            two.describe(),
            "dynamo: 2 GPUs (count set by --dynamo-gpus=2)"
        );
        assert_eq!(
            Inventory::counted(0, "DYNAMO_GPUS=0", Some("0")).describe(),
            "dynamo: no NVIDIA GPU (count set by DYNAMO_GPUS=0)"
        );
    }

    #[test]
    fn it_round_trips_through_json() {
        let inv = Inventory::build(&eight(), driver(), Some("1"));
        let text = serde_json::to_string(&inv).unwrap();
        assert!(text.contains("\"source\":\"nvml\""), "{text}");
        let back: Inventory = serde_json::from_str(&text).unwrap();
        assert_eq!(back, inv);
    }
}
