//! `CUDA_VISIBLE_DEVICES`, read the way CUDA reads it, so the plugin counts
//! the GPUs a test will really see. NVML ignores the variable (its indices are
//! physical), so the visible devices are worked out here and matched to the
//! NVML devices by UUID.
//!
//! The rules follow CUDA as `PyTorch` reproduces them without initialising CUDA
//! (`torch.cuda._parse_visible_devices`): the first entry decides the kind of
//! list (indices, `GPU-<uuid>` or `MIG-<uuid>`); an index is read like
//! `strtoul` (`1gpu` is 1); the list is cut at the first invalid entry (a
//! negative or out-of-range index, an entry of another kind, a UUID prefix
//! that matches no device or more than one); a repeated entry makes the whole
//! list empty; an empty value means no GPU.

/// One entry of the variable, before it is matched to devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Index(u32),
    /// A physical GPU's UUID or a prefix of it, `GPU-` included.
    Gpu(String),
    /// A MIG instance's UUID or a prefix of it, `MIG-` included.
    Mig(String),
}

/// What a visible device is on the NVML side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A physical GPU, by NVML index.
    Gpu(usize),
    /// A MIG instance: the NVML index of its GPU and its position among the
    /// GPU's instances.
    Mig(usize, usize),
}

/// The UUIDs of one physical GPU and its MIG instances (None: unreadable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ids {
    pub uuid: Option<String>,
    pub migs: Vec<Option<String>>,
}

/// Parse the variable's value into entries, syntax only.
pub fn parse(value: &str) -> Vec<Entry> {
    if value.starts_with("GPU-") {
        return with_prefix(value, "GPU-", Entry::Gpu);
    }
    if value.starts_with("MIG-") {
        return with_prefix(value, "MIG-", Entry::Mig);
    }
    let mut out = Vec::new();
    for elem in value.split(',') {
        let Some(index) = strtoul(elem.trim()) else {
            break;
        };
        let entry = Entry::Index(index);
        if out.contains(&entry) {
            return Vec::new();
        }
        out.push(entry);
    }
    out
}

fn with_prefix(value: &str, prefix: &str, make: fn(String) -> Entry) -> Vec<Entry> {
    let mut out = Vec::new();
    for elem in value.split(',') {
        let entry = make(elem.to_string());
        if out.contains(&entry) {
            return Vec::new();
        }
        if !elem.starts_with(prefix) {
            break;
        }
        out.push(entry);
    }
    out
}

/// The leading integer of `s` as C's `strtoul` reads it; None when there is
/// none or it is negative (which ends the list).
fn strtoul(s: &str) -> Option<u32> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let value: u32 = rest[..digits].parse().ok()?;
    if negative && value != 0 {
        return None;
    }
    Some(value)
}

/// Match the entries to the NVML devices, in the variable's order.
pub fn resolve(entries: &[Entry], devices: &[Ids]) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for entry in entries {
        let target = match entry {
            Entry::Index(i) => {
                let i = *i as usize;
                (i < devices.len()).then_some(Target::Gpu(i))
            }
            Entry::Gpu(prefix) => unique(
                devices
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| starts(d.uuid.as_deref(), prefix))
                    .map(|(i, _)| Target::Gpu(i)),
            ),
            Entry::Mig(prefix) => unique(devices.iter().enumerate().flat_map(|(i, d)| {
                d.migs
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| starts(m.as_deref(), prefix))
                    .map(move |(j, _)| Target::Mig(i, j))
            })),
        };
        let Some(target) = target else {
            break;
        };
        if out.contains(&target) {
            return Vec::new();
        }
        out.push(target);
    }
    out
}

fn starts(uuid: Option<&str>, prefix: &str) -> bool {
    uuid.is_some_and(|u| u.starts_with(prefix))
}

/// The only match, or None when there is none or the prefix is ambiguous.
fn unique(mut matches: impl Iterator<Item = Target>) -> Option<Target> {
    let first = matches.next()?;
    matches.next().is_none().then_some(first)
}

/// The devices a CUDA program will see: every physical GPU when the variable
/// is unset, else the ones it names.
pub fn visible(value: Option<&str>, devices: &[Ids]) -> Vec<Target> {
    match value {
        None => (0..devices.len()).map(Target::Gpu).collect(),
        Some(v) => resolve(&parse(v), devices),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpus(uuids: &[&str]) -> Vec<Ids> {
        uuids
            .iter()
            .map(|u| Ids {
                uuid: Some((*u).to_string()),
                migs: Vec::new(),
            })
            .collect()
    }

    fn four() -> Vec<Ids> {
        gpus(&["GPU-aaaa-1", "GPU-bbbb-2", "GPU-abcd-3", "GPU-cccc-4"])
    }

    fn idx(list: &[usize]) -> Vec<Target> {
        list.iter().map(|i| Target::Gpu(*i)).collect()
    }

    #[test]
    fn unset_means_every_gpu() {
        assert_eq!(visible(None, &four()), idx(&[0, 1, 2, 3]));
    }

    #[test]
    fn empty_means_no_gpu() {
        assert!(visible(Some(""), &four()).is_empty());
        assert!(visible(Some(" "), &four()).is_empty());
    }

    #[test]
    fn indices_keep_their_order() {
        assert_eq!(visible(Some("2,0"), &four()), idx(&[2, 0]));
        assert_eq!(visible(Some(" 1 , 3 "), &four()), idx(&[1, 3]));
    }

    #[test]
    fn the_list_is_cut_at_the_first_invalid_entry() {
        assert_eq!(visible(Some("0,2,-1,1"), &four()), idx(&[0, 2]));
        assert_eq!(visible(Some("0,x,1"), &four()), idx(&[0]));
        assert_eq!(visible(Some("0,,1"), &four()), idx(&[0]));
        // Out of range on this machine: cut there too.
        assert_eq!(visible(Some("1,7,2"), &four()), idx(&[1]));
        assert!(visible(Some("-1"), &four()).is_empty());
        assert!(visible(Some("NoDevFiles"), &four()).is_empty());
    }

    #[test]
    fn indices_are_read_like_strtoul() {
        assert_eq!(parse("1gpu2,+3,-0"), [1, 3, 0].map(Entry::Index));
        assert_eq!(parse("99999999999"), []);
    }

    #[test]
    fn a_repeated_entry_empties_the_list() {
        assert!(visible(Some("0,1,0"), &four()).is_empty());
        assert!(visible(Some("GPU-bbbb,GPU-bbbb"), &four()).is_empty());
        // Two different prefixes of the same GPU are a repeat too.
        assert!(visible(Some("GPU-bbbb,GPU-bbbb-2"), &four()).is_empty());
        // Repeats are found before indices are checked against the machine...
        assert_eq!(visible(Some("0,9,0"), &four()), []);
        // ...but not after an entry that ends the list.
        assert_eq!(visible(Some("1,-1,1"), &four()), idx(&[1]));
    }

    #[test]
    fn uuids_match_by_unique_prefix() {
        assert_eq!(visible(Some("GPU-cccc-4,GPU-aaaa"), &four()), idx(&[3, 0]));
        // "GPU-a" is a prefix of two GPUs: ambiguous, so the list ends there.
        assert_eq!(visible(Some("GPU-bbbb,GPU-a,GPU-cccc"), &four()), idx(&[1]));
        // No such GPU.
        assert_eq!(visible(Some("GPU-cccc,GPU-ffff"), &four()), idx(&[3]));
    }

    #[test]
    fn the_first_entry_decides_the_kind() {
        assert_eq!(visible(Some("GPU-bbbb,0"), &four()), idx(&[1]));
        assert_eq!(visible(Some("1,GPU-aaaa"), &four()), idx(&[1]));
        assert!(visible(Some("gpu-bbbb"), &four()).is_empty());
    }

    #[test]
    fn an_unreadable_uuid_never_matches() {
        let mut devices = four();
        devices[1].uuid = None;
        assert_eq!(visible(Some("GPU-b"), &devices), []);
        assert_eq!(visible(Some("1"), &devices), idx(&[1]));
    }

    #[test]
    fn mig_entries_match_instances() {
        let devices = vec![
            Ids {
                uuid: Some("GPU-0000".into()),
                migs: vec![Some("MIG-1111".into()), Some("MIG-2222".into())],
            },
            Ids {
                uuid: Some("GPU-9999".into()),
                migs: vec![Some("MIG-3333".into())],
            },
        ];
        assert_eq!(
            visible(Some("MIG-3333,MIG-1"), &devices),
            [Target::Mig(1, 0), Target::Mig(0, 0)]
        );
        assert_eq!(
            visible(Some("MIG-2222,MIG-4"), &devices),
            [Target::Mig(0, 1)]
        );
        assert_eq!(
            visible(Some("MIG-2222,GPU-9999"), &devices),
            [Target::Mig(0, 1)]
        );
        // A MIG entry never names a whole GPU, nor a GPU entry an instance.
        assert!(visible(Some("MIG-GPU-0000"), &devices).is_empty());
        assert!(visible(Some("GPU-1111"), &devices).is_empty());
    }
}
