//! Read every test line of a records file three ways and time each: our
//! scanner (`record_scan::test_line`), sonic-rs and serde_json into the same
//! fields (the finished_at timestamp parsed by the same function). Best of 5.

use std::borrow::Cow;
use std::time::Instant;

use serde::Deserialize;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Line<'a> {
    #[serde(borrow)]
    record: Cow<'a, str>,
    #[serde(borrow, default)]
    run_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    nodeid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    outcome: Option<Cow<'a, str>>,
    #[serde(default)]
    duration_s: Option<f64>,
    #[serde(borrow, default)]
    stage: Option<Cow<'a, str>>,
    #[serde(default)]
    gating: Option<bool>,
    #[serde(borrow, default)]
    owner: Option<Cow<'a, str>>,
    #[serde(default)]
    gpu_peak_mib: Option<f64>,
    #[serde(borrow, default)]
    finished_at: Option<Cow<'a, str>>,
}

fn check(line: &Line<'_>) -> f64 {
    let t = line
        .finished_at
        .as_deref()
        .and_then(_core::history::timestamp::parse)
        .unwrap_or(0.0);
    line.duration_s.unwrap_or(0.0) + t * 0.0 + line.nodeid.as_ref().map_or(0, |n| n.len()) as f64
}

fn time<F: FnMut() -> f64>(name: &str, bytes: usize, lines: usize, mut f: F) -> f64 {
    let mut best = f64::MAX;
    let mut sum = 0.0;
    for _ in 0..5 {
        let start = Instant::now();
        sum = f();
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "{name:<12} {:8.1} ms  {:7.0} MB/s  {:6.0} ns/line  (checksum {sum:.1})",
        best * 1e3,
        bytes as f64 / best / 1e6,
        best * 1e9 / lines as f64
    );
    best
}

fn main() {
    let path = std::env::args().nth(1).expect("a records file");
    let data = std::fs::read(&path).expect("readable");
    let lines: Vec<&[u8]> = data
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(br#"{"record":"test""#))
        .collect();
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    println!("{} test lines, {:.1} MB", lines.len(), bytes as f64 / 1e6);
    let ours = time("ours", bytes, lines.len(), || {
        lines
            .iter()
            .map(|l| {
                let t = _core::history::test_line(l).expect("fast path");
                t.duration_s + t.finished_at.unwrap_or(0.0) * 0.0 + t.nodeid.len() as f64
            })
            .sum()
    });
    let sonic = time("sonic-rs", bytes, lines.len(), || {
        lines
            .iter()
            .map(|l| check(&sonic_rs::from_slice::<Line<'_>>(l).expect("valid")))
            .sum()
    });
    let serde = time("serde_json", bytes, lines.len(), || {
        lines
            .iter()
            .map(|l| check(&serde_json::from_slice::<Line<'_>>(l).expect("valid")))
            .sum()
    });
    println!("ours vs sonic-rs: {:.2}x; vs serde_json: {:.2}x", sonic / ours, serde / ours);
}
