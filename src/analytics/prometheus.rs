//! A run's metrics in the Prometheus text format, encoded with the
//! `prometheus-client` crate: for `node_exporter`'s textfile collector and for
//! a Pushgateway, so every test job's durations, results and resource use
//! reach Prometheus. Every value describes the last run, so every metric
//! is a gauge or a histogram: a counter would claim to accumulate. The
//! names are documented in docs/prometheus.md; the Grafana dashboard uses them.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::history::{parse_line, Parsed};

/// Upper bounds of the test-duration histogram, in seconds: unit tests to soak tests.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// Label value for a run or test without a pipeline or stage.
pub const NONE: &str = "none";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    pipeline: String,
    stage: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    pipeline: String,
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    pipeline: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// What was encoded, for the terminal line and the tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Encoded {
    pub text: String,
    pub tests: usize,
    /// Test records that could not be read (skipped).
    pub corrupt: usize,
    pub pipeline: String,
}

/// The documented metrics, registered.
struct Metrics {
    registry: Registry,
    tests: Family<OutcomeLabels, Gauge>,
    durations: Family<StageLabels, Histogram>,
    flaky: Family<RunLabels, Gauge>,
    quarantined: Family<RunLabels, Gauge>,
    wall: Family<RunLabels, FloatGauge>,
    exit: Family<RunLabels, Gauge>,
    gpu_peak: Family<RunLabels, FloatGauge>,
    finished: Family<RunLabels, FloatGauge>,
}

impl Metrics {
    fn register() -> Metrics {
        let mut registry = Registry::default();
        let tests = Family::<OutcomeLabels, Gauge>::default();
        let durations = Family::<StageLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(DURATION_BUCKETS)
        });
        let flaky = Family::<RunLabels, Gauge>::default();
        let quarantined = Family::<RunLabels, Gauge>::default();
        let wall = Family::<RunLabels, FloatGauge>::default();
        let exit = Family::<RunLabels, Gauge>::default();
        let gpu_peak = Family::<RunLabels, FloatGauge>::default();
        let finished = Family::<RunLabels, FloatGauge>::default();
        registry.register(
            "dynamo_tests",
            "Tests of the last run by outcome, pipeline and stage",
            tests.clone(),
        );
        registry.register(
            "dynamo_test_duration_seconds",
            "Test durations of the last run (setup, call and teardown of every attempt)",
            durations.clone(),
        );
        registry.register(
            "dynamo_flaky_tests",
            "Tests of the last run that passed only on a retry",
            flaky.clone(),
        );
        registry.register(
            "dynamo_quarantined_failures",
            "Quarantined tests that failed in the last run (their failure did not fail the run)",
            quarantined.clone(),
        );
        registry.register(
            "dynamo_run_wall_seconds",
            "Wall time of the last run",
            wall.clone(),
        );
        registry.register(
            "dynamo_run_exit_status",
            "pytest exit status of the last run (0 passed)",
            exit.clone(),
        );
        registry.register(
            "dynamo_run_gpu_peak_memory_bytes",
            "Highest GPU memory any test of the last run used",
            gpu_peak.clone(),
        );
        registry.register(
            "dynamo_run_finished_timestamp_seconds",
            "When the last run finished, in seconds since the Unix epoch",
            finished.clone(),
        );
        Metrics {
            registry,
            tests,
            durations,
            flaky,
            quarantined,
            wall,
            exit,
            gpu_peak,
            finished,
        }
    }

    /// One pass over the test records: durations observed, outcomes
    /// counted, the highest GPU peak kept; unreadable records counted in `encoded`.
    fn observe_tests(&self, records: &[String], pipeline: &str, encoded: &mut Encoded) {
        let run = RunLabels {
            pipeline: pipeline.to_string(),
        };
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut peak: Option<f64> = None;
        let (mut n_flaky, mut n_quarantined) = (0, 0);
        for line in records {
            let Ok(Some(Parsed::Test(t))) = parse_line(line.as_bytes()) else {
                encoded.corrupt += 1;
                continue;
            };
            encoded.tests += 1;
            let stage = t.stage.as_deref().unwrap_or(NONE).to_string();
            *counts
                .entry((stage.clone(), t.outcome.to_string()))
                .or_default() += 1;
            self.durations
                .get_or_create(&StageLabels {
                    pipeline: pipeline.to_string(),
                    stage,
                })
                .observe(t.duration_s);
            match t.outcome.as_ref() {
                "flaky" => n_flaky += 1,
                "quarantined-failed" => n_quarantined += 1,
                _ => {}
            }
            if let Some(p) = t.gpu_peak_mib {
                peak = Some(peak.map_or(p, |q: f64| q.max(p)));
            }
        }
        for ((stage, outcome), n) in counts {
            self.tests
                .get_or_create(&OutcomeLabels {
                    pipeline: pipeline.to_string(),
                    stage,
                    outcome,
                })
                .set(n);
        }
        self.flaky.get_or_create(&run).set(n_flaky);
        self.quarantined.get_or_create(&run).set(n_quarantined);
        if let Some(p) = peak {
            self.gpu_peak.get_or_create(&run).set(p * 1024.0 * 1024.0);
        }
    }

    /// The run's wall time, exit status and end, from its run-end record
    /// (the end is `now` without one).
    fn observe_end(&self, run_end: Option<&str>, pipeline: &str, now: f64) {
        let run = RunLabels {
            pipeline: pipeline.to_string(),
        };
        let mut end_time = now;
        if let Some(Ok(Some(Parsed::End(e)))) = run_end.map(|l| parse_line(l.as_bytes())) {
            self.wall.get_or_create(&run).set(e.wall_s);
            self.exit.get_or_create(&run).set(e.exit_status);
            end_time = e.finished_at.unwrap_or(now);
        }
        self.finished.get_or_create(&run).set(end_time);
    }
}

/// Encode one run: its test records (JSON lines), its run-end record, and
/// the pipeline it ran (from the run's context).
pub fn encode(
    records: &[String],
    run_end: Option<&str>,
    pipeline: Option<&str>,
    now: f64,
) -> Encoded {
    let pipeline = pipeline
        .filter(|p| !p.is_empty())
        .unwrap_or(NONE)
        .to_string();
    let metrics = Metrics::register();
    let mut encoded = Encoded {
        pipeline: pipeline.clone(),
        ..Encoded::default()
    };
    metrics.observe_tests(records, &pipeline, &mut encoded);
    metrics.observe_end(run_end, &pipeline, now);
    prometheus_client::encoding::text::encode_registry(&mut encoded.text, &metrics.registry)
        .expect("writing to a String cannot fail");
    encoded
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // known answers are exact
mod tests {
    use super::*;

    fn record(nodeid: &str, outcome: &str, duration: f64, stage: &str, peak: &str) -> String {
        format!(
            r#"{{"record":"test","schema":1,"run_id":"r","nodeid":"{nodeid}","outcome":"{outcome}","duration_s":{duration},"stage":"{stage}","gpu_peak_mib":{peak},"metrics":[]}}"#
        )
    }

    #[test]
    fn a_run_becomes_gauges_and_a_histogram() {
        let records = vec![
            record("a", "passed", 0.2, "unit", "null"),
            record("b", "passed", 2.0, "unit", "1024"),
            record("c", "failed", 40.0, "e2e", "2048.5"),
            record("d", "flaky", 1.0, "e2e", "null"),
            record("e", "quarantined-failed", 1.0, "e2e", "null"),
            "{\"record\":\"test\",\"run_".to_string(),
        ];
        let end = r#"{"record":"run_end","schema":1,"run_id":"r","exit_status":1,"counts":{},"wall_s":61.5,"finished_at":"2026-03-01T12:00:00Z"}"#;
        let e = encode(&records, Some(end), Some("nightly"), 0.0);
        assert_eq!((e.tests, e.corrupt), (5, 1));
        let t = &e.text;
        for line in [
            "# TYPE dynamo_tests gauge",
            r#"dynamo_tests{pipeline="nightly",stage="unit",outcome="passed"} 2"#,
            r#"dynamo_tests{pipeline="nightly",stage="e2e",outcome="failed"} 1"#,
            "# TYPE dynamo_test_duration_seconds histogram",
            r#"dynamo_test_duration_seconds_bucket{le="0.5",pipeline="nightly",stage="unit"} 1"#,
            r#"dynamo_test_duration_seconds_count{pipeline="nightly",stage="e2e"} 3"#,
            r#"dynamo_test_duration_seconds_sum{pipeline="nightly",stage="e2e"} 42.0"#,
            r#"dynamo_flaky_tests{pipeline="nightly"} 1"#,
            r#"dynamo_quarantined_failures{pipeline="nightly"} 1"#,
            r#"dynamo_run_wall_seconds{pipeline="nightly"} 61.5"#,
            r#"dynamo_run_exit_status{pipeline="nightly"} 1"#,
            r#"dynamo_run_gpu_peak_memory_bytes{pipeline="nightly"} 2148007936.0"#,
            r#"dynamo_run_finished_timestamp_seconds{pipeline="nightly"} 1772366400.0"#,
        ] {
            assert!(t.contains(line), "missing {line}\n{t}");
        }
        assert!(
            !t.contains("# EOF"),
            "a textfile is Prometheus text, not OpenMetrics"
        );
    }

    #[test]
    fn a_run_without_pipeline_or_run_end() {
        let e = encode(
            &[record("a", "passed", 0.2, "unit", "null")],
            None,
            None,
            5.0,
        );
        assert!(
            e.text.contains(r#"dynamo_flaky_tests{pipeline="none"} 0"#),
            "{}",
            e.text
        );
        assert!(!e.text.contains("dynamo_run_wall_seconds{"));
        assert!(e
            .text
            .contains(r#"dynamo_run_finished_timestamp_seconds{pipeline="none"} 5.0"#));
    }
}
