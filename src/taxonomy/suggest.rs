//! "Did you mean": the known name an unknown one most likely meant.
//!
//! The strategy's own table writes `premerge` and `gpus_needed_1`; real suites
//! carry `Nightly`, `gpu1` and `intergration`. Names are compared after
//! folding case and separators, with the `gpus_needed_N` spelling mapped to
//! `gpu_N`, then by edit distance.

use regex::Regex;
use std::sync::LazyLock;

static GPUS_NEEDED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^gpus?_?needed_?(\d+)$|^(\d+)_?gpus?$").expect("valid regex"));

/// Case and separators folded: `Pre-Merge` and `pre_merge` both become `premerge`.
pub fn fold(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let lower = match GPUS_NEEDED.captures(&lower) {
        Some(c) => format!(
            "gpu{}",
            c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str())
        ),
        None => lower,
    };
    lower
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .collect()
}

/// Levenshtein distance (strsim's), or None beyond `limit`.
pub fn distance(a: &str, b: &str, limit: usize) -> Option<usize> {
    // Names that differ in length by more than the limit are not measured.
    if a.chars().count().abs_diff(b.chars().count()) > limit {
        return None;
    }
    let d = strsim::levenshtein(a, b);
    (d <= limit).then_some(d)
}

/// How far off a name may be, by its length: one edit for short names.
fn limit_for(folded: &str) -> usize {
    if folded.len() <= 4 {
        1
    } else {
        2
    }
}

/// The candidate closest to `name`, if any is close enough.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let folded = fold(name);
    let limit = limit_for(&folded);
    candidates
        .filter(|c| *c != name)
        .filter_map(|c| distance(&folded, &fold(c), limit).map(|d| (d, c)))
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &[
        "pre_merge",
        "nightly",
        "gpu_1",
        "gpu_2",
        "integration",
        "unit",
        "e2e",
    ];

    fn suggest(name: &str) -> Option<&'static str> {
        closest(name, KNOWN.iter().copied())
    }

    #[test]
    fn the_spec_typos_are_caught() {
        assert_eq!(suggest("premerge"), Some("pre_merge"));
        assert_eq!(suggest("gpus_needed_1"), Some("gpu_1"));
        assert_eq!(suggest("gpu1"), Some("gpu_1"));
        assert_eq!(suggest("Nightly"), Some("nightly"));
        assert_eq!(suggest("intergration"), Some("integration"));
        assert_eq!(suggest("2gpus"), Some("gpu_2"));
    }

    #[test]
    fn unrelated_names_are_left_alone() {
        assert_eq!(suggest("timeout"), None);
        assert_eq!(suggest("model"), None);
        assert_eq!(suggest("asyncio"), None);
    }

    #[test]
    fn distance_is_levenshtein() {
        assert_eq!(distance("kitten", "sitting", 5), Some(3));
        assert_eq!(distance("kitten", "sitting", 2), None);
        assert_eq!(distance("", "ab", 2), Some(2));
    }
}
