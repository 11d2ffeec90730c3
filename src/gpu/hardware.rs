//! Can this machine run the test? The requirement against the inventory
//! (GPU count, model, VRAM) and the installed packages (frameworks). The
//! answer is None, or the reason it cannot, as a skip message.

use std::collections::HashSet;

use super::inventory::{Device, Inventory};
use super::requirement::{number, Requirement};
use super::rules::{Pattern, Rules};

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn gpus(n: u32) -> String {
    if n == 1 {
        "a GPU".into()
    } else {
        format!("{n} GPUs")
    }
}

/// Distinct names, in order.
fn names(devices: &[&Device]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for d in devices {
        if !seen.contains(&d.name.as_str()) {
            seen.push(&d.name);
        }
    }
    seen.join(", ")
}

/// Why the machine cannot run a test with this requirement, or None.
pub fn decide<S: std::hash::BuildHasher>(
    req: &Requirement,
    inventory: &Inventory,
    rules: &Rules,
    missing_packages: &HashSet<String, S>,
) -> Option<String> {
    let mut reasons: Vec<String> = hardware(req, inventory, rules).into_iter().collect();
    for framework in &req.package_markers {
        let absent: Vec<&str> = rules
            .packages
            .get(framework)
            .into_iter()
            .flatten()
            .filter(|p| missing_packages.contains(*p))
            .map(String::as_str)
            .collect();
        if !absent.is_empty() {
            reasons.push(format!(
                "needs {framework}: package {} not installed",
                absent.join(", ")
            ));
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// The decisions for a batch's distinct requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdicts {
    /// The distinct reasons, in the order the requirements first give them.
    pub reasons: Vec<String>,
    /// For each requirement, the index of its reason, or None: it can run.
    pub of: Vec<Option<usize>>,
}

/// Decide once per distinct requirement (a suite has thousands of tests and
/// a few dozen requirements), each reason string made and kept once.
pub fn decide_all<S: std::hash::BuildHasher>(
    reqs: &[Requirement],
    inventory: &Inventory,
    rules: &Rules,
    missing_packages: &HashSet<String, S>,
) -> Verdicts {
    let mut reasons: Vec<String> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let of = reqs
        .iter()
        .map(|req| {
            let reason = decide(req, inventory, rules, missing_packages)?;
            Some(*index.entry(reason).or_insert_with_key(|reason| {
                reasons.push(reason.clone());
                reasons.len() - 1
            }))
        })
        .collect();
    Verdicts { reasons, of }
}

fn hardware(req: &Requirement, inventory: &Inventory, rules: &Rules) -> Option<String> {
    let want = req.gpus();
    if want == 0 {
        return None;
    }
    if want > inventory.visible {
        return Some(too_few(want, inventory));
    }
    let mut candidates: Vec<&Device> = inventory.devices.iter().collect();
    if !req.models.is_empty() {
        let patterns: Vec<&Pattern> = req
            .models
            .iter()
            .flat_map(|m| rules.models.get(m).into_iter().flatten())
            .collect();
        candidates.retain(|d| patterns.iter().any(|p| p.matches(&d.name)));
        let have = u32::try_from(candidates.len()).unwrap_or(u32::MAX);
        if have < want {
            return Some(no_model(req, want, have, &patterns, inventory));
        }
    }
    let gib = req.vram_gib.filter(|g| *g > 0.0)?;
    too_little_memory(req, want, gib, &candidates, inventory)
}

/// More GPUs asked for than are visible.
fn too_few(want: u32, inventory: &Inventory) -> String {
    let note = inventory
        .count_note()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    format!(
        "needs {want} GPU{}, {} visible{note}",
        plural(want),
        inventory.visible
    )
}

/// What the machine shows, for a refusal's end: the visible GPUs' names.
fn shown(inventory: &Inventory) -> String {
    if inventory.devices.is_empty() {
        format!(
            "no GPU name known ({})",
            inventory.count_note().unwrap_or_default()
        )
    } else {
        let visible: Vec<&Device> = inventory.devices.iter().collect();
        format!("visible: {}", names(&visible))
    }
}

/// Fewer GPUs of the asked-for models than the test needs.
fn no_model(
    req: &Requirement,
    want: u32,
    have: u32,
    patterns: &[&Pattern],
    inventory: &Inventory,
) -> String {
    let shown = shown(inventory);
    let quoted: Vec<String> = patterns.iter().map(|p| format!("\"{}\"", p.text)).collect();
    let models = req.models.join(" or ");
    if want == 1 {
        format!(
            "needs a GPU matching {models} ({} in its name); {shown}",
            quoted.join(" or ")
        )
    } else {
        format!(
            "needs {want} GPUs matching {models} ({} in their names), {have} visible; {shown}",
            quoted.join(" or ")
        )
    }
}

/// Fewer candidate GPUs with `gib` of memory than the test needs, or None.
fn too_little_memory(
    req: &Requirement,
    want: u32,
    gib: f64,
    candidates: &[&Device],
    inventory: &Inventory,
) -> Option<String> {
    let fits = candidates
        .iter()
        .filter(|d| d.memory_total_mib.is_some_and(|m| m / 1024.0 >= gib))
        .count();
    let fits = u32::try_from(fits).unwrap_or(u32::MAX);
    if fits >= want {
        return None;
    }
    let largest = candidates
        .iter()
        .filter_map(|d| d.memory_total_mib)
        .fold(None, |acc: Option<f64>, m| {
            Some(acc.map_or(m, |a| a.max(m)))
        });
    let which = if req.models.is_empty() {
        "visible"
    } else {
        "matching"
    };
    let what = match largest {
        None if candidates.is_empty() => format!("{}, memory unknown", shown(inventory)),
        None => format!("the memory of the {which} GPUs is unknown"),
        Some(m) if want == 1 => {
            format!("the largest {which} has {:.1} GiB", m / 1024.0)
        }
        Some(_) => format!(
            "{fits} {which} ha{} that much",
            if fits == 1 { "s" } else { "ve" }
        ),
    };
    let each = if want == 1 { "" } else { " each" };
    Some(format!(
        "needs {} with {} GiB of memory{each}; {what}",
        gpus(want),
        number(gib)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::gpu::inventory::{Memory, Physical};
    use crate::taxonomy::Taxonomy;

    fn rules() -> Rules {
        Rules::new(&Config::default().gpu, &Taxonomy::builtin(), "defaults").unwrap()
    }

    fn gpu(name: &str, gib: f64) -> Physical {
        Physical {
            name: Some(name.into()),
            uuid: Some(format!("GPU-{name}")),
            memory: Some(Memory {
                total_mib: gib * 1024.0,
                free_mib: 0.0,
            }),
            ..Physical::default()
        }
    }

    fn two_h100_and_l40s() -> Inventory {
        Inventory::build(
            &[
                gpu("NVIDIA H100 80GB HBM3", 79.6),
                gpu("NVIDIA H100 80GB HBM3", 79.6),
                gpu("NVIDIA L40S", 45.0),
            ],
            None,
            None,
        )
    }

    fn on(inv: &Inventory, req: &Requirement) -> Option<String> {
        decide(req, inv, &rules(), &HashSet::<String>::new())
    }

    fn needs(n: u32) -> Requirement {
        Requirement {
            hardware: Some((format!("gpu_{n}"), n)),
            ..Requirement::default()
        }
    }

    #[test]
    fn too_few_gpus_says_how_many_and_why() {
        let inv = Inventory::build(&[gpu("NVIDIA A100-SXM4-80GB", 80.0)], None, Some("0"));
        assert_eq!(
            on(&inv, &needs(2)).as_deref(),
            Some("needs 2 GPUs, 1 visible (CUDA_VISIBLE_DEVICES=0)")
        );
        assert_eq!(on(&inv, &needs(1)), None);
        assert_eq!(on(&inv, &needs(0)), None);
        let none = Inventory::unavailable("libnvidia-ml.so.1 not found", None);
        assert_eq!(
            on(&none, &needs(1)).as_deref(),
            Some("needs 1 GPU, 0 visible (libnvidia-ml.so.1 not found)")
        );
        let set = two_h100_and_l40s().with_override(1, "--dynamo-gpus=1");
        assert_eq!(
            on(&set, &needs(2)).as_deref(),
            Some("needs 2 GPUs, 1 visible (count set by --dynamo-gpus=1)")
        );
        assert_eq!(
            on(&two_h100_and_l40s(), &needs(4)).as_deref(),
            Some("needs 4 GPUs, 3 visible")
        );
    }

    #[test]
    fn a_model_must_be_visible() {
        let mut req = needs(1);
        req.models = vec!["a100".into()];
        assert_eq!(
            on(&two_h100_and_l40s(), &req).as_deref(),
            Some("needs a GPU matching a100 (\"A100\" in its name); visible: NVIDIA H100 80GB HBM3, NVIDIA L40S")
        );
        req.models = vec!["h100".into()];
        assert_eq!(on(&two_h100_and_l40s(), &req), None);
        let mut req = needs(4);
        req.models = vec!["h100".into()];
        let inv = Inventory::build(&[0, 1, 2, 3].map(|_| gpu("NVIDIA L40S", 45.0)), None, None);
        assert_eq!(
            on(&inv, &req).as_deref(),
            Some("needs 4 GPUs matching h100 (\"H100\" in their names), 0 visible; visible: NVIDIA L40S")
        );
        // l40 is not an L40S.
        let mut req = needs(1);
        req.models = vec!["l40".into()];
        assert!(on(&inv, &req).is_some());
    }

    #[test]
    fn vram_is_compared_with_total_memory() {
        let mut req = needs(1);
        req.vram_gib = Some(60.0);
        assert_eq!(on(&two_h100_and_l40s(), &req), None);
        req.vram_gib = Some(80.0);
        assert_eq!(
            on(&two_h100_and_l40s(), &req).as_deref(),
            Some("needs a GPU with 80 GiB of memory; the largest visible has 79.6 GiB")
        );
        // Only the GPUs of the right model count.
        let mut req = needs(1);
        req.models = vec!["l40".into(), "h100".into()];
        req.vram_gib = Some(46.5);
        assert_eq!(on(&two_h100_and_l40s(), &req), None);
        let mut req = needs(3);
        req.vram_gib = Some(46.5);
        assert_eq!(
            on(&two_h100_and_l40s(), &req).as_deref(),
            Some("needs 3 GPUs with 46.5 GiB of memory each; 2 visible have that much")
        );
    }

    #[test]
    fn a_vram_need_without_gpus_marked_needs_one() {
        let req = Requirement {
            vram_gib: Some(1.0),
            ..Requirement::default()
        };
        assert_eq!(
            on(&Inventory::build(&[], None, None), &req).as_deref(),
            Some("needs 1 GPU, 0 visible (NVML found no GPU)")
        );
        let unknown = Inventory::unavailable("x", None).with_override(1, "DYNAMO_GPUS=1");
        assert_eq!(
            on(&unknown, &req).as_deref(),
            Some("needs a GPU with 1 GiB of memory; no GPU name known (count set by DYNAMO_GPUS=1; NVML: x), memory unknown")
        );
    }

    #[test]
    fn distinct_requirements_share_their_reasons() {
        let inv = Inventory::build(&[gpu("NVIDIA L40S", 45.0)], None, None);
        let mut h100 = needs(1);
        h100.models = vec!["h100".into()];
        let reqs = [needs(2), needs(1), h100.clone(), needs(4), needs(2), h100];
        let verdicts = decide_all(&reqs, &inv, &rules(), &HashSet::<String>::new());
        assert_eq!(
            verdicts.reasons,
            [
                on(&inv, &needs(2)).unwrap(),
                on(&inv, &reqs[2]).unwrap(),
                on(&inv, &needs(4)).unwrap()
            ]
        );
        assert_eq!(
            verdicts.of,
            [Some(0), None, Some(1), Some(2), Some(0), Some(1)]
        );
    }

    #[test]
    fn a_missing_framework_package_is_named() {
        let req = Requirement {
            package_markers: vec!["trtllm".into(), "vllm".into()],
            ..needs(2)
        };
        let missing: HashSet<String> = HashSet::from(["tensorrt_llm".to_string()]);
        let none = Inventory::unavailable("libnvidia-ml.so.1 not found", None);
        assert_eq!(
            decide(&req, &none, &rules(), &missing).as_deref(),
            Some("needs 2 GPUs, 0 visible (libnvidia-ml.so.1 not found); needs trtllm: package tensorrt_llm not installed")
        );
        let cpu = Requirement {
            package_markers: vec!["custom_backend".into(), "vllm".into()],
            ..Requirement::default()
        };
        assert_eq!(decide(&cpu, &none, &rules(), &missing), None);
    }
}
