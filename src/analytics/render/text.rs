//! The report as a plain-text table for a terminal or a CI log.

use std::borrow::Cow;
use std::fmt::Write;

use crate::analytics::duration_trends::Timing;
use crate::analytics::report::{short, HistoryReport};
use crate::history::timestamp;

/// Seconds as `0.42s`, `12.3s`, `4m05s` or `1h02m`.
pub fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2}s")
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let t = s.round() as u64;
        format!("{}m{:02}s", t / 60, t % 60)
    } else {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let t = (s / 60.0).round() as u64;
        format!("{}h{:02}m", t / 60, t % 60)
    }
}

/// A signed change in percent, or "new" without a previous window.
pub fn change(p: Option<f64>) -> String {
    p.map_or_else(|| "new".to_string(), |p| format!("{p:+.1}%"))
}

/// Columns padded to their widest cell; numbers right-aligned.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

impl Table {
    pub fn new(header: &[&str], right: &[bool]) -> Table {
        Table {
            header: header.iter().map(ToString::to_string).collect(),
            rows: Vec::new(),
            right: right.to_vec(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self, indent: &str) -> String {
        let rows: Vec<Vec<String>> = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|row| row.iter().map(|c| clip(c).into_owned()).collect())
            .collect();
        let mut widths: Vec<usize> = vec![0; self.header.len()];
        for row in &rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        for row in &rows {
            let mut line = String::from(indent);
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                pad(
                    &mut line,
                    cell,
                    *w,
                    self.right.get(i).copied().unwrap_or(false),
                );
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The most characters of one cell a table shows: longer names (a
/// parametrize id can be any length) keep their start and end.
pub const MAX_CELL: usize = 200;

/// `s` cut to `MAX_CELL` characters for display, the middle elided.
pub fn clip(s: &str) -> Cow<'_, str> {
    let n = s.chars().count();
    if n <= MAX_CELL {
        return Cow::Borrowed(s);
    }
    let keep = (MAX_CELL - 1) / 2;
    let head: String = s.chars().take(keep).collect();
    let tail: String = s.chars().skip(n - (MAX_CELL - 1 - keep)).collect();
    Cow::Owned(format!("{head}…{tail}"))
}

/// Append `cell` padded to `width` characters. By hand, not with a format
/// width: `format!` panics on a width above `u16::MAX`.
pub fn pad(line: &mut String, cell: &str, width: usize, right: bool) {
    let fill = width.saturating_sub(cell.chars().count());
    if right {
        line.extend(std::iter::repeat_n(' ', fill));
        line.push_str(cell);
    } else {
        line.push_str(cell);
        line.extend(std::iter::repeat_n(' ', fill));
    }
}

fn timing_table(title: &str, timings: &[Timing]) -> Table {
    let mut t = Table::new(
        &[title, "n", "p50", "p95", "prev p50", "change"],
        &[false, true, true, true, true, true],
    );
    for s in timings {
        t.row(vec![
            s.name.clone(),
            s.current.samples.to_string(),
            seconds(s.current.p50),
            seconds(s.current.p95),
            s.previous.as_ref().map_or("-".into(), |p| seconds(p.p50)),
            change(s.change_percent),
        ]);
    }
    t
}

/// The report as text: one section after another.
pub fn render(r: &HistoryReport) -> String {
    let mut out = String::new();
    header(&mut out, r);
    flakiness(&mut out, r);
    durations(&mut out, r);
    timeouts(&mut out, r);
    quarantine(&mut out, r);
    owners(&mut out, r);
    out
}

/// The runs read, the inputs and what was skipped, and the latest run.
fn header(w: &mut String, r: &HistoryReport) {
    let pipeline = r.settings.pipeline.as_deref().unwrap_or("all pipelines");
    let _ = writeln!(
        w,
        "pytest-dynamo report: {} runs ({pipeline}); window: last {} runs, previous window: {} runs",
        r.runs.total, r.runs.window, r.runs.previous_window
    );
    let i = &r.inputs;
    let _ = writeln!(
        w,
        "inputs: {} files, {} lines, {} records, {} corrupt lines skipped, {} unknown records, \
         {} runs without run_start, {} without run_end",
        i.files, i.lines, i.records, i.corrupt, i.unknown, i.runs_without_start, i.runs_without_end
    );
    for p in &i.problems {
        let _ = writeln!(w, "  skipped: {p}");
    }
    if i.corrupt > i.problems.len() {
        let _ = writeln!(w, "  ... and more corrupt lines (all counted above)");
    }
    if let Some(l) = &r.runs.latest {
        let counts: Vec<String> = l.counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let _ = writeln!(
            w,
            "latest run: {} at {} (commit {}, {}), exit {}, wall {}: {}",
            l.run_id,
            l.started_at,
            l.commit.as_deref().map_or("unknown", short),
            l.gpu_model.as_deref().unwrap_or("GPU unknown"),
            l.exit_status
                .map_or("unknown (no run_end)".into(), |e| e.to_string()),
            l.wall_s.map_or("unknown".into(), seconds),
            if counts.is_empty() {
                "no tests".into()
            } else {
                counts.join(", ")
            }
        );
    }
}

/// The flaky rate, then the flaky and the broken tests.
fn flakiness(out: &mut String, r: &HistoryReport) {
    let f = &r.flakiness;
    let _ = writeln!(
        out,
        "\nFlakiness (tests with at least {} results in the window)",
        r.settings.min_runs
    );
    let _ = writeln!(
        out,
        "  flaky tests: {:.1}% ({} flaky of {} tests judged); broken: {}; too few results: {}",
        f.flaky_tests_percent, f.flaky_count, f.assessed, f.broken_count, f.insufficient
    );
    if !f.flaky.is_empty() {
        out.push_str(&flaky_table(r).render("  "));
    }
    if !r.flakiness.broken.is_empty() {
        out.push_str(&broken_table(r).render("  "));
    }
}

fn flaky_table(r: &HistoryReport) -> Table {
    let mut t = Table::new(
        &[
            "flaky test",
            "results",
            "failed",
            "retried",
            "flaky%",
            "owner",
            "evidence",
        ],
        &[false, true, true, true, true, false, false],
    );
    for x in &r.flakiness.flaky {
        let mut evidence = Vec::new();
        if !x.mixed_commits.is_empty() {
            evidence.push(format!(
                "pass+fail on {}",
                x.mixed_commits
                    .iter()
                    .map(|c| short(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if x.retried > 0 {
            evidence.push("passed on retry".into());
        }
        if x.quarantined {
            evidence.push("quarantined".into());
        }
        t.row(vec![
            x.nodeid.clone(),
            x.runs.to_string(),
            x.failed.to_string(),
            x.retried.to_string(),
            format!("{:.1}", x.flake_rate),
            x.owner.clone().unwrap_or_else(|| "-".into()),
            evidence.join("; "),
        ]);
    }
    t
}

fn broken_table(r: &HistoryReport) -> Table {
    let mut t = Table::new(
        &[
            "broken test",
            "failing runs",
            "since",
            "since commit",
            "owner",
        ],
        &[false, true, false, false, false],
    );
    for x in &r.flakiness.broken {
        t.row(vec![
            x.nodeid.clone(),
            x.failing_runs.to_string(),
            timestamp::minute(x.failing_since_epoch),
            x.failing_since_commit
                .as_deref()
                .map_or("-", short)
                .to_string(),
            x.owner.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    t
}

/// Stage times, the slowest tests and the biggest slow-downs.
fn durations(out: &mut String, r: &HistoryReport) {
    let d = &r.durations;
    let _ = writeln!(
        out,
        "\nDurations (p50 and p95 in the window; change of p50 against the previous window)"
    );
    if d.stages.is_empty() {
        let _ = writeln!(out, "  no test results in the window");
        return;
    }
    out.push_str(&timing_table("stage (time per run)", &d.stages).render("  "));
    out.push('\n');
    out.push_str(&timing_table("slowest tests (by p95)", &d.slowest).render("  "));
    out.push('\n');
    if d.slowdowns.is_empty() {
        let _ = writeln!(
            out,
            "  no test got slower (with at least {} results in both windows)",
            r.settings.min_runs
        );
    } else {
        out.push_str(&timing_table("biggest slow-downs", &d.slowdowns).render("  "));
    }
}

/// Long tests without a timeout, and timeouts too tight or too loose.
fn timeouts(out: &mut String, r: &HistoryReport) {
    let timeouts = crate::analytics::advice::timeouts::render_text(&r.timeouts);
    if let Some((title, rest)) = timeouts.split_first() {
        let _ = writeln!(out, "\n{title}");
        for line in rest {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// The suggested change to the quarantine file.
fn quarantine(out: &mut String, r: &HistoryReport) {
    let q = &r.quarantine;
    let _ = writeln!(out, "\nQuarantine");
    if q.change.is_empty() {
        let _ = writeln!(
            out,
            "  no change suggested{}",
            if q.file.is_none() {
                " (no quarantine file given: releases not checked)"
            } else {
                ""
            }
        );
    } else {
        let _ = writeln!(
            out,
            "  {} to quarantine, {} to release (after {} passes in a row):",
            q.add.len(),
            q.release.len(),
            r.settings.release_after
        );
        for line in q.change.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
}

/// What each owner has to act on.
fn owners(out: &mut String, r: &HistoryReport) {
    if r.owners.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nOwners");
    let mut t = Table::new(
        &["owner", "flaky", "broken", "slow-downs", "to quarantine"],
        &[false, true, true, true, true],
    );
    for o in &r.owners {
        t.row(vec![
            o.owner.clone(),
            o.flaky.len().to_string(),
            o.broken.len().to_string(),
            o.slowdowns.len().to_string(),
            o.quarantine.len().to_string(),
        ]);
    }
    out.push_str(&t.render("  "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_read_well() {
        assert_eq!(seconds(0.4213), "0.42s");
        assert_eq!(seconds(12.34), "12.3s");
        assert_eq!(seconds(245.0), "4m05s");
        assert_eq!(seconds(3720.0), "1h02m");
        assert_eq!(change(Some(12.345)), "+12.3%");
        assert_eq!(change(None), "new");
    }

    #[test]
    fn tables_pad_and_align() {
        let mut t = Table::new(&["name", "n"], &[false, true]);
        t.row(vec!["a".into(), "10".into()]);
        t.row(vec!["long name".into(), "2".into()]);
        assert_eq!(
            t.render(""),
            "name        n\na          10\nlong name   2\n"
        );
    }

    #[test]
    fn a_cell_wider_than_a_format_width_is_clipped_not_a_panic() {
        // 70,000 characters: above u16::MAX, where `{:<w$}` panics.
        let long = format!("t.py::test[{}]", "x".repeat(70_000));
        let mut t = Table::new(&["test", "n"], &[false, true]);
        t.row(vec![long.clone(), "1".into()]);
        t.row(vec!["short".into(), "22".into()]);
        let out = t.render("");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1].chars().count(), MAX_CELL + 2 + 2);
        assert!(lines[1].starts_with("t.py::test[xxx"), "{}", lines[1]);
        assert!(lines[1].ends_with("xx]   1"), "{}", lines[1]);
        assert!(lines[1].contains('…'));
        assert_eq!(lines[2], format!("short{}  22", " ".repeat(MAX_CELL - 5)));
        assert_eq!(clip("short"), "short");
    }
}
