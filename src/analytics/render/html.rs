//! The report as one self-contained HTML page: inline CSS, charts as inline
//! SVG, no script and nothing fetched, so it can be kept as a CI artifact
//! and opened anywhere.

use std::fmt::Write;

use crate::analytics::duration_trends::Timing;
use crate::analytics::render::charts;
use crate::analytics::render::escape::html as escape;
use crate::analytics::render::text::{change, seconds};
use crate::analytics::report::{short, HistoryReport};
use crate::history::timestamp;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}\
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}\
th,td{padding:.25em .7em;border-bottom:1px solid #eee;text-align:left}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em}\
.card b{display:block;font-size:1.5em}.bad{color:#b00}.muted{color:#777}\
pre{background:#f6f8fa;padding:.8em;overflow:auto}\
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88em}\
svg{max-width:100%;height:auto}summary{cursor:pointer}";

fn table(out: &mut String, header: &[(&str, bool)], rows: &[Vec<String>]) {
    out.push_str("<table><tr>");
    for (h, n) in header {
        let _ = write!(
            out,
            "<th{}>{}</th>",
            if *n { " class=\"n\"" } else { "" },
            escape(h)
        );
    }
    out.push_str("</tr>\n");
    for row in rows {
        out.push_str("<tr>");
        for (cell, (_, n)) in row.iter().zip(header) {
            let _ = write!(
                out,
                "<td{}>{}</td>",
                if *n { " class=\"n\"" } else { "" },
                cell
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn timing_rows(rows: &[Timing]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|t| {
            vec![
                format!("<code>{}</code>", escape(&t.name)),
                t.current.samples.to_string(),
                seconds(t.current.p50),
                seconds(t.current.p95),
                t.previous.as_ref().map_or("-".into(), |p| seconds(p.p50)),
                change(t.change_percent),
            ]
        })
        .collect()
}

const TIMING_HEADER: [(&str, bool); 6] = [
    ("name", false),
    ("n", true),
    ("p50", true),
    ("p95", true),
    ("prev p50", true),
    ("change", true),
];

/// The page: what to act on first (flaky and broken tests, quarantine
/// changes), then the charts and the duration tables.
pub fn render(r: &HistoryReport) -> String {
    let mut out = String::new();
    head(&mut out, r);
    flaky(&mut out, r);
    broken(&mut out, r);
    quarantine(&mut out, r);
    trends(&mut out, r);
    out.push_str("</body></html>\n");
    out
}

/// The page's head, its title, the summary cards and the skipped lines.
fn head(out: &mut String, r: &HistoryReport) {
    let title = format!(
        "pytest-dynamo report: {}",
        r.settings.pipeline.as_deref().unwrap_or("all pipelines")
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let f = &r.flakiness;
    let _ = write!(
        out,
        "<p class=\"muted\">{} runs read, window: last {} runs (previous: {}), generated {}.</p>\n<div class=\"cards\">\
         <div class=\"card\">flaky tests<b>{:.1}%</b>{} of {} tests judged</div>\
         <div class=\"card\">broken<b>{}</b>tests</div>\
         <div class=\"card\">to quarantine<b>{}</b>to release: {}</div>\
         <div class=\"card\">corrupt lines<b{}>{}</b>skipped</div></div>\n",
        r.runs.total,
        r.runs.window,
        r.runs.previous_window,
        escape(&r.generated_at),
        f.flaky_tests_percent,
        f.flaky_count,
        f.assessed,
        f.broken_count,
        r.quarantine.add.len(),
        r.quarantine.release.len(),
        if r.inputs.corrupt > 0 { " class=\"bad\"" } else { "" },
        r.inputs.corrupt
    );
    if !r.inputs.problems.is_empty() {
        out.push_str("<details><summary>skipped lines</summary><pre>");
        for p in &r.inputs.problems {
            let _ = writeln!(out, "{}", escape(p));
        }
        out.push_str("</pre></details>\n");
    }
}

fn flaky(out: &mut String, r: &HistoryReport) {
    let f = &r.flakiness;
    out.push_str("\n<h2>Flaky tests</h2>\n");
    if f.flaky.is_empty() {
        out.push_str("<p>None in the window.</p>\n");
        return;
    }
    let rows: Vec<Vec<String>> = f
        .flaky
        .iter()
        .map(|x| {
            vec![
                format!("<code>{}</code>", escape(&x.nodeid)),
                escape(x.owner.as_deref().unwrap_or("-")),
                x.runs.to_string(),
                x.failed.to_string(),
                x.retried.to_string(),
                format!("{:.1}", x.flake_rate),
                escape(
                    &x.mixed_commits
                        .iter()
                        .map(|c| short(c))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("test", false),
            ("owner", false),
            ("results", true),
            ("failed", true),
            ("retried", true),
            ("flaky results %", true),
            ("pass+fail on commit", false),
        ],
        &rows,
    );
}

fn broken(out: &mut String, r: &HistoryReport) {
    let f = &r.flakiness;
    out.push_str("<h2>Broken tests</h2>\n");
    if f.broken.is_empty() {
        out.push_str("<p>None in the window.</p>\n");
        return;
    }
    let rows: Vec<Vec<String>> = f
        .broken
        .iter()
        .map(|x| {
            vec![
                format!("<code>{}</code>", escape(&x.nodeid)),
                escape(x.owner.as_deref().unwrap_or("-")),
                x.failing_runs.to_string(),
                // The run id on hover: the date is what a person reads.
                format!(
                    "<span title=\"run {}\">{}</span>",
                    escape(&x.failing_since_run),
                    timestamp::minute(x.failing_since_epoch)
                ),
                escape(x.failing_since_commit.as_deref().map_or("-", short)),
            ]
        })
        .collect();
    table(
        out,
        &[
            ("test", false),
            ("owner", false),
            ("failing runs", true),
            ("since", false),
            ("since commit", false),
        ],
        &rows,
    );
}

fn quarantine(out: &mut String, r: &HistoryReport) {
    if r.quarantine.change.is_empty() {
        return;
    }
    // Folded: one table per entry made the diff pages long, pushing the charts out of sight.
    let _ = write!(
        out,
        "<h2>Quarantine changes</h2>\n<details><summary>{} to quarantine, {} to release: the change to {}</summary><pre>{}</pre></details>\n",
        r.quarantine.add.len(),
        r.quarantine.release.len(),
        escape(r.quarantine.file.as_deref().unwrap_or("the quarantine file")),
        escape(&r.quarantine.change)
    );
}

/// The charts come after what to act on: flaky and broken tests, quarantine changes.
fn trends(out: &mut String, r: &HistoryReport) {
    out.push_str("\n<h2>Flaky results per run</h2>\n");
    let flake: Vec<(f64, f64)> = r
        .flaky_results_by_run
        .iter()
        .map(|p| (p.epoch, p.flaky_results_percent))
        .collect();
    out.push_str(&charts::lines(
        "flaky results per run (% of the run's results)",
        "flaky results %",
        &[(String::new(), flake)],
    ));

    out.push_str("\n<h2>Duration trends</h2>\n");
    let series = charts::series(
        r.durations
            .trend
            .iter()
            .map(|p| (p.stage.clone(), p.epoch, p.total_s)),
    );
    out.push_str(&charts::lines(
        "time per run by stage (s)",
        "seconds",
        &series,
    ));
    let d = &r.durations;
    if !d.stages.is_empty() {
        table(out, &TIMING_HEADER, &timing_rows(&d.stages));
    }

    out.push_str("\n<h2>Slowest tests</h2>\n");
    let bars: Vec<(String, f64, f64)> = d
        .slowest
        .iter()
        .map(|t| (t.name.clone(), t.current.p50, t.current.p95))
        .collect();
    out.push_str(&charts::bars("p50 (dark) and p95 (light), seconds", &bars));
    table(out, &TIMING_HEADER, &timing_rows(&d.slowest));
    if !d.slowdowns.is_empty() {
        out.push_str("<h3>Biggest slow-downs</h3>\n");
        table(out, &TIMING_HEADER, &timing_rows(&d.slowdowns));
    }
}
