//! The probe: once per run, read every physical GPU from NVML (name, UUID,
//! memory, MIG mode and instances) and the driver version, then work out the
//! visible devices. Every failure becomes part of the answer: a GPU whose
//! name cannot be read is an "unknown GPU", a library that cannot count GPUs
//! means no GPU, with the reason. So does a library whose answers no real
//! machine gives (4,294,967,295 GPUs, more free memory than total): it is
//! broken, and believing it would mean allocating for every GPU it claims.
//! The probe runs with a time limit: a wedged driver never answers.

use std::time::Duration;

use nvml_wrapper::Device;

use super::inventory::{Instance, Inventory, Memory, Physical};
use super::nvml::{self, Session};

const MIB: f64 = 1024.0 * 1024.0;

/// More GPUs than any machine has (and `--dynamo-gpus`'s own bound).
pub const MAX_GPUS: u32 = 4096;
/// More MIG instances than any GPU offers (7 on an H100).
pub const MAX_MIG_INSTANCES: u32 = 64;
/// More memory than any GPU has: 16 TiB, in MiB.
pub const MAX_MEMORY_MIB: f64 = 16.0 * 1024.0 * 1024.0;

/// The reason for a broken library's answer.
pub fn implausible(what: &str) -> String {
    format!("NVML answered {what}, which no real machine does: a broken NVML library")
}

/// Probe NVML (`lib`: a path, or None for `libnvidia-ml.so.1`) and apply
/// `CUDA_VISIBLE_DEVICES`, waiting at most `limit` for NVML's answers.
pub fn probe_within(
    lib: Option<&str>,
    cuda_visible_devices: Option<&str>,
    limit: Duration,
) -> Inventory {
    let (l, c) = (
        lib.map(String::from),
        cuda_visible_devices.map(String::from),
    );
    nvml::within(limit, move || probe(l.as_deref(), c.as_deref()))
        .unwrap_or_else(|why| Inventory::unavailable(why, cuda_visible_devices))
}

/// Probe NVML (`lib`: a path, or None for `libnvidia-ml.so.1`) and apply
/// `CUDA_VISIBLE_DEVICES`.
pub fn probe(lib: Option<&str>, cuda_visible_devices: Option<&str>) -> Inventory {
    let session = match nvml::open(lib) {
        Ok(s) => s,
        Err(reason) => return Inventory::unavailable(reason, cuda_visible_devices),
    };
    match physical(&session) {
        Ok(gpus) => Inventory::build(
            &gpus,
            session.sys_driver_version().ok(),
            cuda_visible_devices,
        ),
        Err(reason) => Inventory::unavailable(reason, cuda_visible_devices),
    }
}

/// How many GPUs NVML reports; an implausible count is an error.
pub fn count(session: &Session) -> Result<u32, String> {
    let count = session
        .device_count()
        .map_err(|e| nvml::call_error("count GPUs", &e))?;
    if count > MAX_GPUS {
        return Err(implausible(&format!("{count} GPUs")));
    }
    Ok(count)
}

/// Every physical GPU, by NVML index.
pub fn physical(session: &Session) -> Result<Vec<Physical>, String> {
    (0..count(session)?)
        .map(|i| match session.device_by_index(i) {
            Ok(device) => read(i, &device),
            Err(_) => Ok(Physical::default()),
        })
        .collect()
}

fn memory(what: &str, device: &Device<'_>) -> Result<Option<Memory>, String> {
    let Ok(m) = device.memory_info() else {
        return Ok(None);
    };
    #[allow(clippy::cast_precision_loss)]
    let (total_mib, free_mib) = (m.total as f64 / MIB, m.free as f64 / MIB);
    if m.free > m.total || total_mib > MAX_MEMORY_MIB {
        return Err(implausible(&format!(
            "{} bytes of memory, {} free, for {what}",
            m.total, m.free
        )));
    }
    Ok(Some(Memory {
        total_mib,
        free_mib,
    }))
}

fn read(index: u32, device: &Device<'_>) -> Result<Physical, String> {
    let mig = device.mig_mode().is_ok_and(|m| m.current == 1);
    let what = format!("GPU {index}");
    Ok(Physical {
        name: device.name().ok(),
        uuid: device.uuid().ok(),
        memory: memory(&what, device)?,
        mig,
        instances: if mig {
            instances(&what, device)?
        } else {
            Vec::new()
        },
    })
}

/// A MIG-enabled GPU's instances, in NVML's order; empty slots are skipped.
fn instances(what: &str, device: &Device<'_>) -> Result<Vec<Instance>, String> {
    let Ok(max) = device.mig_device_count() else {
        return Ok(Vec::new());
    };
    if max > MAX_MIG_INSTANCES {
        return Err(implausible(&format!("{max} MIG instance slots on {what}")));
    }
    (0..max)
        .filter_map(|j| device.mig_device_by_index(j).ok())
        .map(|m| {
            Ok(Instance {
                name: m.name().ok(),
                uuid: m.uuid().ok(),
                memory: memory(&format!("a MIG instance of {what}"), &m)?,
            })
        })
        .collect()
}
