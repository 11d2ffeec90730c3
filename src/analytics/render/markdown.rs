//! The report in Markdown: a summary for a CI job page
//! (`$GITHUB_STEP_SUMMARY`, a GitLab report), and one ticket body per owner,
//! ready to file for the component's person in charge (PIC).

use std::fmt::Write;

use crate::analytics::duration_trends::Timing;
use crate::analytics::render::escape::{code, code_cell, fence, text};
use crate::analytics::render::text::{change, seconds};
use crate::analytics::report::{short, HistoryReport, Owner, NO_OWNER};
use crate::history::timestamp;

fn timings(out: &mut String, title: &str, rows: &[Timing]) {
    let _ = writeln!(
        out,
        "| {title} | n | p50 | p95 | prev p50 | change |\n|---|--:|--:|--:|--:|--:|"
    );
    for t in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            code_cell(&t.name),
            t.current.samples,
            seconds(t.current.p50),
            seconds(t.current.p95),
            t.previous.as_ref().map_or("-".into(), |p| seconds(p.p50)),
            change(t.change_percent)
        );
    }
    out.push('\n');
}

/// The summary for a CI job page: the figures, the latest run, then what to act on.
pub fn summary(r: &HistoryReport) -> String {
    let mut out = String::new();
    figures(&mut out, r);
    flaky_table(&mut out, r);
    broken_table(&mut out, r);
    let d = &r.durations;
    if !d.stages.is_empty() {
        let _ = writeln!(out, "### Durations\n");
        timings(&mut out, "stage (time per run)", &d.stages);
        if !d.slowdowns.is_empty() {
            timings(&mut out, "biggest slow-downs", &d.slowdowns);
        }
        timings(&mut out, "slowest tests", &d.slowest);
    }
    out.push_str(&crate::analytics::advice::timeouts::render_markdown(
        &r.timeouts,
    ));
    if !r.quarantine.change.is_empty() {
        let change = &r.quarantine.change;
        let f = fence(change);
        let _ = writeln!(out, "### Quarantine changes\n\n{f}diff\n{change}{f}\n");
    }
    out
}

/// The title, the table of figures, the latest run and the corrupt lines.
fn figures(out: &mut String, r: &HistoryReport) {
    let f = &r.flakiness;
    let _ = writeln!(out, "## pytest-dynamo report\n");
    let _ = writeln!(
        out,
        "| runs | window | flaky tests | flaky | broken | to quarantine | to release | corrupt lines |\n\
         |--:|--:|--:|--:|--:|--:|--:|--:|\n\
         | {} | last {} | {:.1}% | {} of {} | {} | {} | {} | {} |\n",
        r.runs.total,
        r.runs.window,
        f.flaky_tests_percent,
        f.flaky_count,
        f.assessed,
        f.broken_count,
        r.quarantine.add.len(),
        r.quarantine.release.len(),
        r.inputs.corrupt
    );
    if let Some(l) = &r.runs.latest {
        let counts: Vec<String> = l.counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let _ = writeln!(
            out,
            "Latest run {} at {} on commit {} ({}): {}.\n",
            code(&l.run_id),
            text(&l.started_at),
            code(l.commit.as_deref().map_or("unknown", short)),
            text(l.gpu_model.as_deref().unwrap_or("GPU unknown")),
            text(&if counts.is_empty() {
                "no tests".into()
            } else {
                counts.join(", ")
            })
        );
    }
    if r.inputs.corrupt > 0 {
        let _ = writeln!(
            out,
            "> {} corrupt or truncated record lines were skipped; the first: {}\n",
            r.inputs.corrupt,
            text(r.inputs.problems.first().map_or("", String::as_str))
        );
    }
}

fn flaky_table(out: &mut String, r: &HistoryReport) {
    let f = &r.flakiness;
    if f.flaky.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Flaky tests\n\n| test | owner | results | failed | retried | flaky results % | evidence |\n|---|---|--:|--:|--:|--:|---|");
    for x in &f.flaky {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1} | {} |",
            code_cell(&x.nodeid),
            text(x.owner.as_deref().unwrap_or("-")),
            x.runs,
            x.failed,
            x.retried,
            x.flake_rate,
            evidence(
                x.mixed_commits.as_slice(),
                x.retried,
                x.quarantined,
                code_cell
            )
        );
    }
    out.push('\n');
}

fn broken_table(out: &mut String, r: &HistoryReport) {
    let f = &r.flakiness;
    if f.broken.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Broken tests\n\n| test | owner | failing runs | since | since commit |\n|---|---|--:|---|---|");
    for x in &f.broken {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            code_cell(&x.nodeid),
            text(x.owner.as_deref().unwrap_or("-")),
            x.failing_runs,
            timestamp::minute(x.failing_since_epoch),
            code_cell(x.failing_since_commit.as_deref().map_or("-", short))
        );
    }
    out.push('\n');
}

/// `code`: how a commit is quoted where the evidence goes (a table cell or not).
fn evidence(
    mixed: &[String],
    retried: usize,
    quarantined: bool,
    code: fn(&str) -> String,
) -> String {
    let mut e = Vec::new();
    if !mixed.is_empty() {
        e.push(format!(
            "passed and failed on {}",
            mixed
                .iter()
                .map(|c| code(short(c)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if retried > 0 {
        e.push(format!("passed on retry {retried}x"));
    }
    if quarantined {
        e.push("quarantined".into());
    }
    e.join("; ")
}

/// A file-name-safe form of an owner's name.
pub fn slug(owner: &str) -> String {
    if owner == NO_OWNER {
        return "no-owner".into();
    }
    let s: String = owner
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "owner".into()
    } else {
        s
    }
}

/// A ticket ready to file for one owner.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub owner: String,
    /// A file-name-safe form of the owner's name, unique among the tickets.
    pub slug: String,
    /// The ticket's Markdown body.
    pub body: String,
}

/// A ticket for each owner with something to act on. Slugs are unique:
/// two owners that read alike get `-2`, `-3`, ...
pub fn tickets(r: &HistoryReport) -> Vec<Ticket> {
    let mut used = std::collections::HashSet::new();
    r.owners
        .iter()
        .filter(|o| !o.flaky.is_empty() || !o.broken.is_empty() || !o.slowdowns.is_empty())
        .map(|o| {
            let base = slug(&o.owner);
            let mut name = base.clone();
            let mut n = 1;
            while !used.insert(name.clone()) {
                n += 1;
                name = format!("{base}-{n}");
            }
            Ticket {
                owner: o.owner.clone(),
                slug: name,
                body: ticket(r, o),
            }
        })
        .collect()
}

/// One owner's ticket: a title, what the lists mean, then each list.
fn ticket(r: &HistoryReport, o: &Owner) -> String {
    let mut out = String::new();
    ticket_head(&mut out, r, o);
    ticket_broken(&mut out, o);
    ticket_flaky(&mut out, o);
    ticket_slower(&mut out, o);
    ticket_quarantine(&mut out, o);
    out
}

fn ticket_head(out: &mut String, r: &HistoryReport, o: &Owner) {
    let mut what = Vec::new();
    if !o.broken.is_empty() {
        what.push(format!("{} broken", o.broken.len()));
    }
    if !o.flaky.is_empty() {
        what.push(format!("{} flaky", o.flaky.len()));
    }
    if !o.slowdowns.is_empty() {
        what.push(format!("{} slower", o.slowdowns.len()));
    }
    let _ = writeln!(
        out,
        "# [CI] {}: {} test(s)\n",
        text(&o.owner),
        what.join(", ")
    );
    let _ = writeln!(
        out,
        "Found by `pytest-dynamo report` over the last {} runs{} (generated {}). \
         A test is flaky when it passed and failed on the same commit or passed only on a retry; \
         broken when it fails in every run since its last pass.\n",
        r.runs.window,
        r.settings
            .pipeline
            .as_deref()
            .map(|p| format!(" of pipeline {}", code(p)))
            .unwrap_or_default(),
        r.generated_at
    );
}

fn ticket_broken(out: &mut String, o: &Owner) {
    if o.broken.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Broken\n");
    for b in &o.broken {
        let _ = writeln!(
            out,
            "- [ ] {}: failing for {} run(s), since {} (run {}, commit {}){}",
            code(&b.nodeid),
            b.failing_runs,
            timestamp::minute(b.failing_since_epoch),
            code(&b.failing_since_run),
            code(b.failing_since_commit.as_deref().map_or("unknown", short)),
            if b.quarantined { "; quarantined" } else { "" }
        );
    }
    out.push('\n');
}

fn ticket_flaky(out: &mut String, o: &Owner) {
    if o.flaky.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Flaky\n");
    for x in &o.flaky {
        let _ = writeln!(
            out,
            "- [ ] {}: {:.1}% of {} results flaky ({} failed); {}{}",
            code(&x.nodeid),
            x.flake_rate,
            x.runs,
            x.failed,
            evidence(&x.mixed_commits, x.retried, x.quarantined, code),
            x.last_failure
                .as_deref()
                .map(|f| format!("; last failure in run {}", code(f)))
                .unwrap_or_default()
        );
    }
    out.push('\n');
}

fn ticket_slower(out: &mut String, o: &Owner) {
    if o.slowdowns.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Slower\n");
    for s in &o.slowdowns {
        let _ = writeln!(
            out,
            "- [ ] {}: p50 {} (was {}, {}), p95 {}",
            code(&s.name),
            seconds(s.current.p50),
            s.previous.as_ref().map_or("-".into(), |p| seconds(p.p50)),
            change(s.change_percent),
            seconds(s.current.p95)
        );
    }
    out.push('\n');
}

fn ticket_quarantine(out: &mut String, o: &Owner) {
    if o.quarantine.is_empty() {
        return;
    }
    let entries: String = o
        .quarantine
        .iter()
        .map(crate::analytics::quarantine_advice::render_entry)
        .collect();
    let f = fence(&entries);
    let _ = writeln!(out, "## Suggested quarantine\n\nUntil fixed, add to the quarantine file (put this ticket's id in `ticket`):\n\n{f}toml\n{entries}{f}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_safe_file_names() {
        assert_eq!(slug("Ryan Oslon"), "ryan-oslon");
        assert_eq!(slug("../etc"), "etc");
        assert_eq!(slug(NO_OWNER), "no-owner");
        assert_eq!(slug("///"), "owner");
    }

    #[test]
    fn cells_escape_pipes() {
        assert_eq!(code_cell("t.py::a[x|y]"), "`t.py::a[x\\|y]`");
    }
}
