//! The probe: once per run, read every physical GPU from NVML (name, UUID,
//! memory, MIG mode and instances) and the driver version, then work out the
//! visible devices. Every failure becomes part of the answer: a GPU whose
//! name cannot be read is an "unknown GPU", a library that cannot count GPUs
//! means no GPU, with the reason.

use nvml_wrapper::Device;

use super::inventory::{Instance, Inventory, Memory, Physical};
use super::nvml::{self, Session};

const MIB: f64 = 1024.0 * 1024.0;

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

/// Every physical GPU, by NVML index.
pub fn physical(session: &Session) -> Result<Vec<Physical>, String> {
    let count = session
        .device_count()
        .map_err(|e| nvml::call_error("count GPUs", &e))?;
    Ok((0..count)
        .map(|i| match session.device_by_index(i) {
            Ok(device) => read(&device),
            Err(_) => Physical::default(),
        })
        .collect())
}

fn memory(device: &Device<'_>) -> Option<Memory> {
    #[allow(clippy::cast_precision_loss)]
    device.memory_info().ok().map(|m| Memory {
        total_mib: m.total as f64 / MIB,
        free_mib: m.free as f64 / MIB,
    })
}

fn read(device: &Device<'_>) -> Physical {
    let mig = device.mig_mode().is_ok_and(|m| m.current == 1);
    Physical {
        name: device.name().ok(),
        uuid: device.uuid().ok(),
        memory: memory(device),
        mig,
        instances: if mig { instances(device) } else { Vec::new() },
    }
}

/// A MIG-enabled GPU's instances, in NVML's order; empty slots are skipped.
fn instances(device: &Device<'_>) -> Vec<Instance> {
    let Ok(max) = device.mig_device_count() else {
        return Vec::new();
    };
    (0..max)
        .filter_map(|j| device.mig_device_by_index(j).ok())
        .map(|m| Instance {
            name: m.name().ok(),
            uuid: m.uuid().ok(),
            memory: memory(&m),
        })
        .collect()
}
