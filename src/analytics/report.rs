//! The history report: flakiness, durations, quarantine advice and owners,
//! computed once from a `History` into one plain structure. The text,
//! JSON, Markdown and HTML outputs all render this structure.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::analytics::duration_trends::{self, Timing};
use crate::analytics::flakiness::{self, TrendPoint, Verdict};
use crate::analytics::quarantine_advice::{self, Entry, QuarantineFile};
use crate::history::timestamp;
use crate::history::{History, Inputs};
use crate::policy::Names;

pub const NO_OWNER: &str = "(no owner)";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Runs in the window (the last N runs).
    pub window: usize,
    /// Results a test needs in the window to be judged.
    pub min_runs: usize,
    /// Consecutive passes after which a quarantined test is released.
    pub release_after: usize,
    /// Length of the lists of slowest tests and slow-downs.
    pub top: usize,
    /// A slow-down is listed when p50 grew by at least this much, in percent.
    pub slowdown_percent: f64,
    /// ... and by at least this many seconds.
    pub slowdown_min_s: f64,
    /// Days a suggested quarantine lasts before it must be renewed.
    pub quarantine_days: u32,
    /// Only runs of this pipeline (all runs when None).
    pub pipeline: Option<String>,
    /// `[tool.pytest-dynamo.timeouts]`: which tests must carry a timeout.
    pub timeouts: crate::analytics::advice::TimeoutsConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window: 20,
            min_runs: 5,
            release_after: 10,
            top: 10,
            slowdown_percent: 5.0,
            slowdown_min_s: 1.0,
            quarantine_days: 30,
            pipeline: None,
            timeouts: crate::analytics::advice::TimeoutsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub started_at: String,
    pub pipeline: Option<String>,
    pub commit: Option<String>,
    pub gpu_model: Option<String>,
    pub exit_status: Option<i64>,
    pub wall_s: Option<f64>,
    pub counts: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Runs {
    /// Runs read (of the pipeline, when one is chosen).
    pub total: usize,
    pub window: usize,
    pub previous_window: usize,
    pub first: Option<String>,
    pub latest: Option<RunSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlakyTest {
    pub nodeid: String,
    pub owner: Option<String>,
    pub stage: Option<String>,
    pub runs: usize,
    pub passed: usize,
    pub failed: usize,
    pub retried: usize,
    pub mixed_commits: Vec<String>,
    pub flake_rate: f64,
    pub last_failure: Option<String>,
    pub quarantined: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrokenTest {
    pub nodeid: String,
    pub owner: Option<String>,
    pub stage: Option<String>,
    pub runs: usize,
    pub failed: usize,
    /// Failures in a row, up to the latest run of the test.
    pub failing_runs: usize,
    /// The run its failures began in, when that run started (RFC 3339,
    /// UTC), and its commit.
    pub failing_since_run: String,
    pub failing_since_at: String,
    pub failing_since_commit: Option<String>,
    /// When that run started, in seconds since the epoch (for the tables' dates).
    #[serde(skip)]
    pub failing_since_epoch: f64,
    pub quarantined: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlakinessSection {
    pub assessed: usize,
    pub insufficient: usize,
    pub flaky_count: usize,
    pub broken_count: usize,
    /// "Flaky tests": flaky tests among the assessed, in percent (the
    /// flaky gate's measure; not the per-run share of flaky results).
    pub flaky_tests_percent: f64,
    pub flaky: Vec<FlakyTest>,
    pub broken: Vec<BrokenTest>,
}

/// A stage's time in one run, for the duration chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StagePoint {
    pub run_id: String,
    pub started_at: String,
    pub stage: String,
    pub total_s: f64,
    #[serde(skip)]
    pub epoch: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DurationsSection {
    pub stages: Vec<Timing>,
    pub slowest: Vec<Timing>,
    pub slowdowns: Vec<Timing>,
    /// Every test with a result in the window, slowest p95 first.
    pub tests: Vec<Timing>,
    pub trend: Vec<StagePoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    pub test: String,
    /// Tests of the history the entry matches.
    pub matched: usize,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuarantineSection {
    /// The quarantine file read, if any.
    pub file: Option<String>,
    pub add: Vec<Entry>,
    pub release: Vec<Release>,
    /// The change as text: tables to add, entries to remove.
    pub change: String,
    #[serde(skip)]
    pub release_indices: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Owner {
    pub owner: String,
    pub flaky: Vec<FlakyTest>,
    pub broken: Vec<BrokenTest>,
    pub slowdowns: Vec<Timing>,
    pub quarantine: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryReport {
    pub schema: u32,
    pub generated_at: String,
    pub settings: Settings,
    pub inputs: Inputs,
    pub runs: Runs,
    pub flakiness: FlakinessSection,
    /// "Flaky results per run": each run's share of flaky results.
    pub flaky_results_by_run: Vec<TrendPoint>,
    pub durations: DurationsSection,
    pub quarantine: QuarantineSection,
    pub owners: Vec<Owner>,
    /// Long tests without a timeout, and timeouts too tight or too loose.
    pub timeouts: crate::analytics::advice::timeouts::TimeoutsSection,
}

/// The window and the window before it: the last `n` of `runs`, and the `n` before those.
pub fn windows(runs: &[usize], n: usize) -> (Vec<usize>, Vec<usize>) {
    let n = n.max(1);
    let split = runs.len().saturating_sub(n);
    let prev_start = split.saturating_sub(n);
    (runs[split..].to_vec(), runs[prev_start..split].to_vec())
}

pub fn latest_summary(history: &History, run: usize) -> RunSummary {
    let r = &history.runs[run];
    let mut counts = BTreeMap::new();
    for row in &history.rows[history.rows_by_run()[run].clone()] {
        *counts.entry(row.outcome.as_str().to_string()).or_insert(0) += 1;
    }
    RunSummary {
        run_id: r.run_id.clone(),
        started_at: timestamp::seconds(r.started_at),
        pipeline: r.pipeline.clone(),
        commit: r.commit.clone(),
        gpu_model: r.gpu_model.clone(),
        exit_status: r.end.as_ref().map(|e| e.exit_status),
        wall_s: r.end.as_ref().map(|e| e.wall_s),
        counts,
    }
}

/// Build the report. `now` is the epoch time the report is made at (it
/// dates suggested quarantines). Each statistic lives in its own module:
/// this assembles the sections.
pub fn build(
    history: &History,
    settings: &Settings,
    quarantine: Option<&QuarantineFile>,
    now: f64,
) -> HistoryReport {
    let selected = history.select(settings.pipeline.as_deref());
    let (window, previous) = windows(&selected, settings.window);
    let flakes = flakiness::assess(history, &window, settings.min_runs);
    let (flaky, broken) = flaky_and_broken(history, &flakes, quarantine);
    let durations = durations(history, settings, &selected, &window, &previous);
    let quarantine_section = advise(history, settings, quarantine, &selected, &flaky, now);
    let owners = by_owner(
        &flaky,
        &broken,
        &durations.slowdowns,
        history,
        &flakes,
        &quarantine_section,
    );

    HistoryReport {
        // 2: the flaky measures renamed (`flaky_tests_percent`, `flaky_results_by_run`).
        schema: 2,
        generated_at: timestamp::seconds(now),
        settings: settings.clone(),
        inputs: history.inputs.clone(),
        runs: Runs {
            total: selected.len(),
            window: window.len(),
            previous_window: previous.len(),
            first: selected
                .first()
                .map(|&r| timestamp::seconds(history.runs[r].started_at)),
            latest: selected.last().map(|&r| latest_summary(history, r)),
        },
        flakiness: FlakinessSection {
            assessed: flakes.assessed,
            insufficient: flakes.insufficient,
            flaky_count: flakes.flaky,
            broken_count: flakes.broken,
            flaky_tests_percent: flakes.flaky_rate,
            flaky,
            broken,
        },
        flaky_results_by_run: flakiness::trend(history, &selected),
        durations,
        quarantine: quarantine_section,
        owners,
        timeouts: crate::analytics::advice::timeouts::assess(history, &window, &settings.timeouts),
    }
}

/// The flaky tests (most flaky first) and the broken ones (longest failing
/// first) of the assessment, with their owner, stage and quarantine.
fn flaky_and_broken(
    history: &History,
    flakes: &flakiness::Flakiness,
    quarantine: Option<&QuarantineFile>,
) -> (Vec<FlakyTest>, Vec<BrokenTest>) {
    let entries = quarantine.map_or(&[][..], |q| q.entries.as_slice());
    let patterns: Vec<Names> = entries.iter().map(|e| Names::new(&e.test)).collect();
    let is_quarantined = |nodeid: &str| patterns.iter().any(|p| p.matches(nodeid));

    let owner_of = |row: usize| history.name(history.rows[row].owner).map(str::to_string);
    let stage_of = |row: usize| history.name(history.rows[row].stage).map(str::to_string);
    let run_id = |run: usize| history.runs[run].run_id.clone();

    let mut flaky = Vec::new();
    let mut broken = Vec::new();
    for t in &flakes.tests {
        let nodeid = history.tests[t.test as usize].clone();
        match t.verdict {
            Verdict::Flaky => flaky.push(FlakyTest {
                quarantined: is_quarantined(&nodeid),
                nodeid,
                owner: owner_of(t.latest_row),
                stage: stage_of(t.latest_row),
                runs: t.runs,
                passed: t.passed,
                failed: t.failed,
                retried: t.retried,
                mixed_commits: t.mixed_commits.clone(),
                flake_rate: t.flake_rate,
                last_failure: t.last_failure.map(run_id),
            }),
            Verdict::Broken => {
                let since = t.failing_since.expect("a broken test has a failing streak");
                broken.push(BrokenTest {
                    quarantined: is_quarantined(&nodeid),
                    nodeid,
                    owner: owner_of(t.latest_row),
                    stage: stage_of(t.latest_row),
                    runs: t.runs,
                    failed: t.failed,
                    failing_runs: t.failing_streak,
                    failing_since_run: run_id(since),
                    failing_since_at: timestamp::seconds(history.runs[since].started_at),
                    failing_since_commit: history.runs[since].commit.clone(),
                    failing_since_epoch: history.runs[since].started_at,
                });
            }
            Verdict::Passing | Verdict::Insufficient => {}
        }
    }
    flaky.sort_by(|a, b| {
        b.flake_rate
            .total_cmp(&a.flake_rate)
            .then_with(|| a.nodeid.cmp(&b.nodeid))
    });
    broken.sort_by(|a, b| {
        b.failing_runs
            .cmp(&a.failing_runs)
            .then_with(|| a.nodeid.cmp(&b.nodeid))
    });
    (flaky, broken)
}

/// Per test and per stage, the window against the previous one; the
/// slowest tests, the biggest slow-downs, and each stage's time per run.
fn durations(
    history: &History,
    settings: &Settings,
    selected: &[usize],
    window: &[usize],
    previous: &[usize],
) -> DurationsSection {
    let tests = duration_trends::per_test(history, window, previous);
    let slowdowns = duration_trends::slowdowns(
        &tests,
        settings.min_runs,
        settings.slowdown_percent,
        settings.slowdown_min_s,
        settings.top,
    );
    let slowest: Vec<Timing> = tests.iter().take(settings.top).cloned().collect();
    let stages = duration_trends::per_stage(history, window, previous);
    let trend = duration_trends::stage_totals(history, selected)
        .into_iter()
        .flat_map(|(stage, per_run)| {
            per_run
                .into_iter()
                .map(move |(run, total)| (stage.clone(), run, total))
        })
        .map(|(stage, run, total_s)| StagePoint {
            run_id: history.runs[run].run_id.clone(),
            started_at: timestamp::seconds(history.runs[run].started_at),
            epoch: history.runs[run].started_at,
            stage,
            total_s,
        })
        .collect();
    DurationsSection {
        stages,
        slowest,
        slowdowns,
        tests,
        trend,
    }
}

fn advise(
    history: &History,
    settings: &Settings,
    quarantine: Option<&QuarantineFile>,
    selected: &[usize],
    flaky: &[FlakyTest],
    now: f64,
) -> QuarantineSection {
    let expires = timestamp::date(now + f64::from(settings.quarantine_days) * 86_400.0);
    let add: Vec<Entry> = flaky
        .iter()
        .filter(|t| !t.quarantined)
        .map(|t| Entry {
            test: t.nodeid.clone(),
            reason: flaky_reason(t, settings.window),
            owner: t.owner.clone().unwrap_or_default(),
            ticket: String::new(),
            expires: expires.clone(),
        })
        .collect();
    let mut release = Vec::new();
    let mut release_indices = Vec::new();
    if let Some(q) = quarantine {
        let passes = flakiness::trailing_passes(history, selected);
        for (i, entry) in q.entries.iter().enumerate() {
            let names = Names::new(&entry.test);
            let matched: Vec<usize> = (0..history.tests.len())
                .filter(|&t| names.matches(&history.tests[t]))
                .collect();
            if matched.is_empty() {
                continue;
            }
            let fewest = matched.iter().map(|&t| passes[t]).min().unwrap_or(0);
            if fewest >= settings.release_after {
                release.push(Release {
                    test: entry.test.clone(),
                    matched: matched.len(),
                    reason: format!(
                        "passed the last {fewest} runs in a row (release after {})",
                        settings.release_after
                    ),
                });
                release_indices.push(i);
            }
        }
    }
    let change = render_change(quarantine, &add, &release);
    QuarantineSection {
        file: quarantine.map(|q| q.path.clone()),
        add,
        release,
        change,
        release_indices,
    }
}

pub fn flaky_reason(t: &FlakyTest, window: usize) -> String {
    let mut why = format!(
        "flaky: {:.0}% of {} results in the last {} runs were flaky",
        t.flake_rate, t.runs, window
    );
    if !t.mixed_commits.is_empty() {
        let _ = write!(
            why,
            "; passed and failed on commit {}",
            short(&t.mixed_commits[0])
        );
    }
    if t.retried > 0 {
        let _ = write!(why, "; passed on retry {} time(s)", t.retried);
    }
    why
}

/// A commit hash cut to 12 characters, for prose.
pub fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// The change as a diff of the quarantine file: `+` lines to add, `-` lines to remove.
fn render_change(
    quarantine: Option<&QuarantineFile>,
    add: &[Entry],
    release: &[Release],
) -> String {
    let mut out = String::new();
    if add.is_empty() && release.is_empty() {
        return out;
    }
    let name = quarantine.map_or("quarantine file", |q| q.path.as_str());
    let _ = writeln!(out, "--- {name}\n+++ {name} (suggested)");
    if let Some(q) = quarantine {
        for r in release {
            let Some(entry) = q.entries.iter().find(|e| e.test == r.test) else {
                continue;
            };
            let _ = writeln!(out, "# release: {}", r.reason);
            for line in entry.text.lines() {
                let _ = writeln!(out, "-{line}");
            }
        }
    }
    for e in add {
        out.push_str("# quarantine: newly flaky\n");
        for line in quarantine_advice::render_entry(e).lines() {
            let _ = writeln!(out, "+{line}");
        }
    }
    out
}

/// The owner's entry, made on first use.
fn slot<'o>(owners: &'o mut BTreeMap<String, Owner>, name: Option<&str>) -> &'o mut Owner {
    let name = name.unwrap_or(NO_OWNER).to_string();
    owners.entry(name.clone()).or_insert_with(|| Owner {
        owner: name,
        flaky: Vec::new(),
        broken: Vec::new(),
        slowdowns: Vec::new(),
        quarantine: Vec::new(),
    })
}

fn by_owner(
    flaky: &[FlakyTest],
    broken: &[BrokenTest],
    slowdowns: &[Timing],
    history: &History,
    flakes: &flakiness::Flakiness,
    quarantine: &QuarantineSection,
) -> Vec<Owner> {
    let mut owners: BTreeMap<String, Owner> = BTreeMap::new();
    for t in flaky {
        slot(&mut owners, t.owner.as_deref()).flaky.push(t.clone());
    }
    for t in broken {
        slot(&mut owners, t.owner.as_deref()).broken.push(t.clone());
    }
    // A slow-down's owner: the latest owner of that test in the window.
    let latest_owner: BTreeMap<u32, Option<&str>> = flakes
        .tests
        .iter()
        .map(|t| (t.test, history.name(history.rows[t.latest_row].owner)))
        .collect();
    for s in slowdowns {
        let owner = s.test.and_then(|t| latest_owner.get(&t).copied().flatten());
        slot(&mut owners, owner).slowdowns.push(s.clone());
    }
    for e in &quarantine.add {
        let owner = (!e.owner.is_empty()).then_some(e.owner.as_str());
        slot(&mut owners, owner).quarantine.push(e.clone());
    }
    owners.into_values().collect()
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use super::*;
    use crate::analytics::flakiness::tests::history;

    #[test]
    fn windows_are_the_last_n_and_the_n_before() {
        let runs: Vec<usize> = (0..7).collect();
        assert_eq!(windows(&runs, 3), (vec![4, 5, 6], vec![1, 2, 3]));
        assert_eq!(windows(&runs, 5), (vec![2, 3, 4, 5, 6], vec![0, 1]));
        assert_eq!(windows(&runs, 10), (runs.clone(), vec![]));
        assert_eq!(windows(&[], 3), (vec![], vec![]));
    }

    #[test]
    fn flaky_tests_are_suggested_for_quarantine_and_steady_ones_released() {
        let h = history(&[
            (
                "r1",
                "c1",
                &[
                    ("t::flaky", "passed"),
                    ("t::held", "failed"),
                    ("t::ok", "passed"),
                ],
            ),
            (
                "r2",
                "c1",
                &[
                    ("t::flaky", "failed"),
                    ("t::held", "passed"),
                    ("t::ok", "passed"),
                ],
            ),
            (
                "r3",
                "c2",
                &[
                    ("t::flaky", "passed"),
                    ("t::held", "passed"),
                    ("t::ok", "passed"),
                ],
            ),
            (
                "r4",
                "c3",
                &[
                    ("t::flaky", "passed"),
                    ("t::held", "passed"),
                    ("t::ok", "passed"),
                ],
            ),
        ]);
        let q = QuarantineFile::parse(
            "q.toml",
            "[[quarantine]]\ntest = \"t::he*\"\nreason = \"r\"\nowner = \"o\"\nticket = \"T-1\"\nexpires = \"2026-06-01\"\n",
        )
        .unwrap();
        let settings = Settings {
            window: 4,
            min_runs: 3,
            release_after: 3,
            ..Settings::default()
        };
        let now = timestamp::parse("2026-01-10T00:00:00Z").unwrap();
        let r = build(&h, &settings, Some(&q), now);
        assert_eq!(r.flakiness.flaky_count, 2, "held is flaky too (c1)");
        assert!(r
            .flakiness
            .flaky
            .iter()
            .any(|t| t.nodeid == "t::held" && t.quarantined));
        assert_eq!(r.quarantine.add.len(), 1);
        let add = &r.quarantine.add[0];
        assert_eq!(add.test, "t::flaky");
        assert_eq!(add.expires, "2026-02-09");
        assert!(
            add.reason.contains("passed and failed on commit c1"),
            "{}",
            add.reason
        );
        assert_eq!(r.quarantine.release.len(), 1);
        assert_eq!(r.quarantine.release[0].test, "t::he*");
        assert!(
            r.quarantine.change.contains("-test = \"t::he*\""),
            "{}",
            r.quarantine.change
        );
        assert!(r.quarantine.change.contains("+test = \"t::flaky\""));
        let updated = q.updated(&r.quarantine.release_indices, &r.quarantine.add);
        assert!(!updated.contains("t::he*") && updated.contains("t::flaky"));
        let strict = Settings {
            release_after: 4,
            ..settings
        };
        assert!(build(&h, &strict, Some(&q), now)
            .quarantine
            .release
            .is_empty());
        assert_eq!(r.runs.latest.as_ref().unwrap().counts["passed"], 3);
        assert_eq!(r.owners.len(), 1);
        assert_eq!(r.owners[0].owner, NO_OWNER);
    }
}
