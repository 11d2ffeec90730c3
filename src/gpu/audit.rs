//! The lowest-hardware audit (strategy: "Specify the lowest h/w
//! requirement"): each `gpu_N` test's measured usage against its markers,
//! and the report at the end of the run. A test marked with more GPUs than
//! it used is told the marker it should carry; VRAM values are suggested
//! from the measured peaks.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::requirement::number;
use super::rules::Rules;
use super::sampler::Usage;

/// One audited test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub nodeid: String,
    /// The `gpu_N` marker and N.
    pub marker: String,
    pub marked: u32,
    pub vram_gib: Option<f64>,
    pub passed: bool,
    pub usage: Usage,
}

/// Everything the audit saw in one process; xdist workers send theirs to the
/// controller, which merges them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Audit {
    pub records: Vec<Record>,
    /// Tests that could not be sampled because NVML could not be used.
    pub unsampled: u32,
    pub unavailable: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Marked with more or fewer GPUs than used: fails a strict audit.
    Hardware,
    /// A VRAM value from the measured peak.
    Vram,
    /// Not judged: the figures may miss some of the test's GPU work.
    Doubt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub nodeid: String,
    pub kind: Kind,
    pub message: String,
}

fn gpus_used(n: u32) -> String {
    match n {
        0 => "never touched a GPU".into(),
        1 => "used 1 GPU".into(),
        n => format!("used {n} GPUs"),
    }
}

/// `3.74` GiB -> `3.8`: the peak rounded up to a tenth.
pub fn suggested_gib(peak_mib: f64) -> f64 {
    ((peak_mib / 1024.0 * 10.0).ceil() / 10.0).max(0.1)
}

/// What the audit says of one test (nothing of a test that did not pass:
/// it may have stopped before its GPU work).
pub fn judge(record: &Record, rules: &Rules) -> Vec<Finding> {
    let mut out = Vec::new();
    if !record.passed {
        return out;
    }
    let used = u32::try_from(record.usage.gpus.len()).unwrap_or(u32::MAX);
    let found = |kind, message| Finding {
        nodeid: record.nodeid.clone(),
        kind,
        message,
    };
    let marked = format!("marked {}", record.marker);
    if used > record.marked {
        let fix = rules.lowest_for(used).map_or_else(
            || "more than any gpu_N marker".to_string(),
            |m| format!("mark it {m}"),
        );
        out.push(found(
            Kind::Hardware,
            format!("{marked}, {}: {fix}", gpus_used(used)),
        ));
    } else if used < record.marked {
        if let Some(doubt) = &record.usage.doubt {
            out.push(found(
                Kind::Doubt,
                format!("{marked}, {}, but {doubt}", gpus_used(used)),
            ));
            return out;
        }
        if let Some(lower) = rules.lowest_for(used).filter(|m| *m != record.marker) {
            out.push(found(
                Kind::Hardware,
                format!("{marked}, {}: mark it {lower}", gpus_used(used)),
            ));
        }
    }
    if used == 0 || record.usage.doubt.is_some() || record.usage.peak_mib <= 0.0 {
        return out;
    }
    let vm = &rules.vram_marker;
    let peak = record.usage.peak_mib / 1024.0;
    let suggest = suggested_gib(record.usage.peak_mib);
    let peaked = format!("peaked at {peak:.2} GiB on one GPU");
    let message = match record.vram_gib {
        None => Some(format!(
            "{peaked}: add @pytest.mark.{vm}({})",
            number(suggest)
        )),
        Some(v) if v < peak => Some(format!(
            "marked {vm}({}) but {peaked}: raise it to {vm}({})",
            number(v),
            number(suggest)
        )),
        // Generous markers are fine up to a margin.
        Some(v) if v > suggest * 1.25 && v - suggest >= 1.0 => Some(format!(
            "marked {vm}({}) but {peaked}: lower it to {vm}({})",
            number(v),
            number(suggest)
        )),
        Some(_) => None,
    };
    out.extend(message.map(|m| found(Kind::Vram, m)));
    out
}

impl Audit {
    pub fn merge(&mut self, other: Audit) {
        self.records.extend(other.records);
        self.unsampled += other.unsampled;
        if self.unavailable.is_none() {
            self.unavailable = other.unavailable;
        }
    }

    pub fn findings(&self, rules: &Rules) -> Vec<Finding> {
        let mut out: Vec<Finding> = self.records.iter().flat_map(|r| judge(r, rules)).collect();
        out.sort_by(|a, b| (a.kind, &a.nodeid).cmp(&(b.kind, &b.nodeid)));
        out
    }

    /// Tests marked with more or fewer GPUs than they used.
    pub fn failing(&self, rules: &Rules) -> usize {
        self.findings(rules)
            .iter()
            .filter(|f| f.kind == Kind::Hardware)
            .count()
    }

    /// The end-of-run report; empty when no `gpu_N` test ran. A clean audit
    /// (no findings, or nothing sampled) is one line, without a newline.
    pub fn render(&self, rules: &Rules, interval_s: f64) -> String {
        let findings = self.findings(rules);
        let not_sampled = match &self.unavailable {
            Some(why) if self.unsampled > 0 => Some(format!(
                "{} gpu test{} not sampled: {why}",
                self.unsampled,
                if self.unsampled == 1 { "" } else { "s" }
            )),
            _ => None,
        };
        if findings.is_empty() {
            // Nothing to act on: one line, so a clean run stays quiet.
            return match (self.records.is_empty(), not_sampled) {
                (true, None) => String::new(),
                (true, Some(why)) => format!("pytest-dynamo: GPU audit: {why}"),
                (false, why) => format!(
                    "pytest-dynamo: GPU audit of {} test{} (sampled every {} s): no findings{}",
                    self.records.len(),
                    if self.records.len() == 1 { "" } else { "s" },
                    number(interval_s),
                    why.map(|w| format!("; {w}")).unwrap_or_default(),
                ),
            };
        }
        let mut text = String::new();
        let sections = [
            (
                Kind::Hardware,
                "marked with other hardware than they use (mark the lowest each runs on):",
            ),
            (Kind::Vram, "VRAM from the measured peaks:"),
            (
                Kind::Doubt,
                "not judged (GPU work the audit cannot attribute):",
            ),
        ];
        for (kind, title) in sections {
            let lines: Vec<&Finding> = findings.iter().filter(|f| f.kind == kind).collect();
            if lines.is_empty() {
                continue;
            }
            text.push_str(title);
            text.push('\n');
            for f in lines {
                let _ = writeln!(text, "  {}: {}", f.nodeid, f.message);
            }
        }
        if let Some(why) = not_sampled {
            let _ = writeln!(text, "{why}");
        }
        let count = |k| findings.iter().filter(|f| f.kind == k).count();
        let _ = write!(
            text,
            "pytest-dynamo: GPU audit of {} test{} (sampled every {} s): {} marked with other hardware than they use, {} VRAM suggestion{}",
            self.records.len(),
            if self.records.len() == 1 { "" } else { "s" },
            number(interval_s),
            count(Kind::Hardware),
            count(Kind::Vram),
            if count(Kind::Vram) == 1 { "" } else { "s" },
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::taxonomy::Taxonomy;
    use std::collections::BTreeSet;

    fn rules() -> Rules {
        Rules::new(&Config::default().gpu, &Taxonomy::builtin(), "defaults").unwrap()
    }

    fn record(marked: u32, gpus: &[u32], peak_mib: f64) -> Record {
        Record {
            nodeid: format!("t.py::test_{marked}_{}", gpus.len()),
            marker: format!("gpu_{marked}"),
            marked,
            vram_gib: None,
            passed: true,
            usage: Usage {
                gpus: gpus.iter().copied().collect::<BTreeSet<u32>>(),
                peak_mib,
                samples: 3,
                doubt: None,
            },
        }
    }

    fn messages(r: &Record) -> Vec<String> {
        judge(r, &rules()).into_iter().map(|f| f.message).collect()
    }

    #[test]
    fn more_gpus_marked_than_used_names_the_lower_marker() {
        assert_eq!(
            messages(&record(2, &[0], 0.0)),
            ["marked gpu_2, used 1 GPU: mark it gpu_1"]
        );
        assert_eq!(
            messages(&record(1, &[], 0.0)),
            ["marked gpu_1, never touched a GPU: mark it gpu_0"]
        );
        assert_eq!(
            messages(&record(8, &[0, 1, 2], 0.0)),
            ["marked gpu_8, used 3 GPUs: mark it gpu_4"]
        );
        // gpu_4 is the lowest marker that covers 3.
        assert!(messages(&record(4, &[0, 1, 2], 0.0)).is_empty());
        assert!(messages(&record(1, &[5], 0.0)).is_empty());
    }

    #[test]
    fn fewer_marked_than_used_is_reported_too() {
        assert_eq!(
            messages(&record(1, &[0, 1], 0.0)),
            ["marked gpu_1, used 2 GPUs: mark it gpu_2"]
        );
    }

    #[test]
    fn doubt_and_failure_hold_the_verdict() {
        let mut r = record(2, &[0], 0.0);
        r.usage.doubt = Some("GPU 1 also ran process 9".into());
        let f = judge(&r, &rules());
        assert_eq!(f[0].kind, Kind::Doubt);
        assert_eq!(
            f[0].message,
            "marked gpu_2, used 1 GPU, but GPU 1 also ran process 9"
        );
        let mut r = record(2, &[0], 0.0);
        r.passed = false;
        assert!(judge(&r, &rules()).is_empty());
    }

    #[test]
    fn vram_suggestions_come_from_the_peak() {
        assert_eq!(number(suggested_gib(3830.0)), "3.8");
        assert_eq!(number(suggested_gib(3840.0)), "3.8");
        assert_eq!(number(suggested_gib(3900.0)), "3.9");
        assert_eq!(number(suggested_gib(1.0)), "0.1");
        assert_eq!(
            messages(&record(1, &[0], 3830.0)),
            ["peaked at 3.74 GiB on one GPU: add @pytest.mark.vram_gib(3.8)"]
        );
        let mut r = record(1, &[0], 3830.0);
        r.vram_gib = Some(40.0);
        assert_eq!(
            messages(&r),
            ["marked vram_gib(40) but peaked at 3.74 GiB on one GPU: lower it to vram_gib(3.8)"]
        );
        r.vram_gib = Some(2.0);
        assert_eq!(
            messages(&r),
            ["marked vram_gib(2) but peaked at 3.74 GiB on one GPU: raise it to vram_gib(3.8)"]
        );
        r.vram_gib = Some(4.5);
        assert!(messages(&r).is_empty());
    }

    #[test]
    fn the_report_groups_by_kind_and_counts() {
        let mut audit = Audit::default();
        audit.records.push(record(2, &[0], 0.0));
        let mut other = Audit {
            unsampled: 0,
            unavailable: None,
            records: vec![record(1, &[0], 2048.0)],
        };
        other.records.push(record(4, &[0, 1, 2, 3], 0.0));
        audit.merge(other);
        let text = audit.render(&rules(), 0.1);
        assert_eq!(
            text,
            "marked with other hardware than they use (mark the lowest each runs on):\n\
             \x20 t.py::test_2_1: marked gpu_2, used 1 GPU: mark it gpu_1\n\
             VRAM from the measured peaks:\n\
             \x20 t.py::test_1_1: peaked at 2.00 GiB on one GPU: add @pytest.mark.vram_gib(2)\n\
             pytest-dynamo: GPU audit of 3 tests (sampled every 0.1 s): 1 marked with other hardware than they use, 1 VRAM suggestion"
        );
        assert_eq!(audit.failing(&rules()), 1);
        assert_eq!(Audit::default().render(&rules(), 0.1), "");
    }

    #[test]
    fn an_unusable_nvml_is_reported_once() {
        let audit = Audit {
            records: Vec::new(),
            unsampled: 2,
            unavailable: Some("libnvidia-ml.so.1 not found".into()),
        };
        assert_eq!(
            audit.render(&rules(), 0.1),
            "pytest-dynamo: GPU audit: 2 gpu tests not sampled: libnvidia-ml.so.1 not found"
        );
    }

    #[test]
    fn a_clean_audit_is_one_line() {
        let audit = Audit {
            records: vec![record(1, &[0], 0.0), record(2, &[0, 1], 0.0)],
            unsampled: 1,
            unavailable: Some("no NVML".into()),
        };
        assert_eq!(
            audit.render(&rules(), 0.1),
            "pytest-dynamo: GPU audit of 2 tests (sampled every 0.1 s): no findings; 1 gpu test not sampled: no NVML"
        );
    }
}
