//! Names to indices: node ids, run ids, stage and owner names interned with
//! a fast hash, so a million rows stay small.

use std::collections::HashMap;

/// `FxHash` (rustc's): a fast hash for short keys; the keys are node ids from
/// files the user gave, not input an attacker picks.
#[derive(Default, Clone, Copy)]
pub(super) struct Fx(u64);

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(super) type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fx>>;

/// Names to indices: each distinct name is copied once, lookups borrow.
#[derive(Default)]
pub(super) struct Interner {
    index: FxMap<String, u32>,
    pub(super) names: Vec<String>,
}

impl Interner {
    pub(super) fn with_empty() -> Self {
        let mut i = Interner::default();
        i.get("");
        i
    }

    pub(super) fn get(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = u32::try_from(self.names.len()).expect("fewer than 4 billion names");
        self.index.insert(name.to_string(), i);
        self.names.push(name.to_string());
        i
    }
}

/// Fx-hash a node id once, in the parallel phase.
pub(super) fn hash_name(name: &str) -> u64 {
    use std::hash::BuildHasher;
    std::hash::BuildHasherDefault::<Fx>::default().hash_one(name)
}

/// Node ids to test indices by a hash computed beforehand: the sequential
/// merge only probes and compares.
#[derive(Default)]
pub(super) struct TestIndex {
    /// hash -> the latest test with it; `next` chains tests that share a hash.
    heads: FxMap<u64, u32>,
    next: Vec<u32>,
    pub(super) names: Vec<String>,
}

impl TestIndex {
    pub(super) fn get(&mut self, name: &str, hash: u64) -> u32 {
        let head = self.heads.get(&hash).copied().unwrap_or(u32::MAX);
        let mut at = head;
        while at != u32::MAX {
            if self.names[at as usize] == name {
                return at;
            }
            at = self.next[at as usize];
        }
        let i = u32::try_from(self.names.len()).expect("fewer than 4 billion tests");
        self.names.push(name.to_string());
        self.next.push(head);
        self.heads.insert(hash, i);
        i
    }
}
