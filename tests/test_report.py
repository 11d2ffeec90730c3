"""``pytest-dynamo report``: statistics on hand-made histories with known
answers, every output format, quarantine advice, and corrupt inputs."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from history_builder import Builder, repeat
from pytest_dynamo import _cli, _core

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]


def report(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = _cli.main(["report", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def report_json(capsys: pytest.CaptureFixture[str], *args: str | Path) -> dict[str, Any]:
    code, out, err = report(capsys, *args, "--format", "json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def flaky_and_broken(tmp_path: Path) -> Path:
    """Six runs on three commits (two runs each).

    - ``flaky_commit`` passes and fails on commit c1: flaky, 1 of 6 results flaky.
    - ``flaky_retry`` passes on a retry once: flaky.
    - ``broken`` passes on c0, fails on every run of c1 and c2: broken since run 3.
    - ``stable`` always passes; ``skips`` is always skipped (no results).
    """
    b = Builder()
    for i in range(6):
        b.run(
            {
                "t/a.py::flaky_commit": "failed" if i == 3 else "passed",
                "t/a.py::flaky_retry": "flaky" if i == 4 else "passed",
                "t/a.py::broken": "failed" if i >= 2 else "passed",
                "t/a.py::stable": "passed",
                "t/a.py::skips": "skipped",
            },
            commit=f"c{i // 2}",
            owner="alec",
        )
    return b.write(tmp_path / "runs.jsonl")


def test_flaky_is_told_apart_from_broken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = report_json(capsys, flaky_and_broken(tmp_path), "--min-runs", "5")
    f = data["flakiness"]
    assert (f["assessed"], f["flaky_count"], f["broken_count"], f["insufficient"]) == (4, 2, 1, 0)
    assert f["flaky_tests_percent"] == 50.0
    by_id = {t["nodeid"]: t for t in f["flaky"]}
    commit = by_id["t/a.py::flaky_commit"]
    assert (commit["runs"], commit["failed"], commit["mixed_commits"]) == (6, 1, ["c1"])
    assert commit["flake_rate"] == pytest.approx(100 / 6)
    assert commit["last_failure"] == f"{4:032x}"
    assert by_id["t/a.py::flaky_retry"]["retried"] == 1
    (broken,) = f["broken"]
    assert broken["nodeid"] == "t/a.py::broken"
    assert (broken["failing_runs"], broken["failing_since_run"]) == (4, f"{3:032x}")
    assert broken["failing_since_commit"] == "c1"


def test_a_broken_test_says_the_date_its_failures_began(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run 3 (the first failure of ``broken``) started at 03:00: the tables
    show that date, the JSON keeps the run id beside it."""
    path = flaky_and_broken(tmp_path)
    (broken,) = report_json(capsys, path, "--min-runs", "5")["flakiness"]["broken"]
    assert (broken["failing_since_run"], broken["failing_since_at"]) == (f"{3:032x}", "2026-01-01T03:00:00Z")
    code, text, _ = report(capsys, path, "--min-runs", "5")
    assert code == 0
    lines = text.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("broken test"))
    assert header.split() == ["broken", "test", "failing", "runs", "since", "since", "commit", "owner"]
    row = next(line for line in lines if line.lstrip().startswith("t/a.py::broken"))
    assert row.split() == ["t/a.py::broken", "4", "2026-01-01", "03:00", "c1", "alec"]
    assert f"{3:032x}" not in text
    tickets = tmp_path / "tickets"
    code, md, _ = report(capsys, path, "--min-runs", "5", "--format", "markdown", "--tickets", tickets)
    assert "| test | owner | failing runs | since | since commit |" in md
    assert "| `t/a.py::broken` | alec | 4 | 2026-01-01 03:00 | `c1` |" in md
    ticket = (tickets / "alec.md").read_text()
    since = f"since 2026-01-01 03:00 (run `{3:032x}`, commit `c1`)"
    assert f"- [ ] `t/a.py::broken`: failing for 4 run(s), {since}" in ticket
    code, html, _ = report(capsys, path, "--min-runs", "5", "--format", "html")
    assert f'<td><span title="run {3:032x}">2026-01-01 03:00</span></td>' in html


def test_the_window_and_the_minimum_sample_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = flaky_and_broken(tmp_path)
    # The last two runs (commit c2): only the retry is left as flaky evidence.
    data = report_json(capsys, path, "--window", "2", "--min-runs", "2")
    assert data["runs"]["window"] == 2
    assert [t["nodeid"] for t in data["flakiness"]["flaky"]] == ["t/a.py::flaky_retry"]
    assert [t["nodeid"] for t in data["flakiness"]["broken"]] == ["t/a.py::broken"]
    data = report_json(capsys, path, "--window", "2", "--min-runs", "3")
    assert (data["flakiness"]["assessed"], data["flakiness"]["insufficient"]) == (0, 4)


def test_the_window_comes_from_the_gates_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = flaky_and_broken(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.pytest-dynamo.gates]\nwindow = 2\nmin_runs = 2\n")
    data = report_json(capsys, path, "--rootdir", tmp_path)
    assert (data["settings"]["window"], data["settings"]["min_runs"]) == (2, 2)
    assert data["runs"]["previous_window"] == 2


def test_the_flake_rate_over_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = report_json(capsys, flaky_and_broken(tmp_path))
    trend = [(p["tests"], p["flaky"]) for p in data["flaky_results_by_run"]]
    # Run 3 (c1): broken fails on its first run of c1 but passed on c0 only, so
    # its failures are not flaky; flaky_commit fails on c1 where it also passed.
    assert trend == [(4, 0), (4, 0), (4, 0), (4, 1), (4, 1), (4, 0)]
    assert data["flaky_results_by_run"][3]["flaky_results_percent"] == 25.0


def durations_history(tmp_path: Path) -> Path:
    """Four runs: the previous window (runs 1-2) and the window (runs 3-4)."""
    b = Builder()
    for slow, quick in [(2.0, 1.0), (4.0, 1.0), (8.0, 1.0), (10.0, 1.0)]:
        b.run(
            {
                "t/e2e.py::slow": ("passed", slow, {"stage": "e2e", "owner": "ryan"}),
                "t/unit.py::quick": ("passed", quick, {"stage": "unit", "owner": "ishan"}),
            }
        )
    return b.write(tmp_path / "durations.jsonl")


def test_durations_per_test_and_stage_against_the_previous_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = report_json(capsys, durations_history(tmp_path), "--window", "2", "--min-runs", "2")
    d = data["durations"]
    slow = next(t for t in d["tests"] if t["name"] == "t/e2e.py::slow")
    assert slow["current"] == {"samples": 2, "p50": 9.0, "p95": pytest.approx(9.9)}
    assert slow["previous"] == {"samples": 2, "p50": 3.0, "p95": pytest.approx(3.9)}
    assert (slow["change_percent"], slow["change_s"]) == (200.0, 6.0)
    stages = {s["name"]: s for s in d["stages"]}
    assert stages["e2e"]["current"]["p50"] == 9.0
    assert stages["unit"]["change_percent"] == 0.0
    assert [s["name"] for s in d["slowdowns"]] == ["t/e2e.py::slow"]
    assert [s["name"] for s in d["slowest"]] == ["t/e2e.py::slow", "t/unit.py::quick"]
    assert len(d["trend"]) == 8, "one point per stage and run"


def test_a_millisecond_test_is_no_slow_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = Builder()
    for slow, quick in [(2.0, 0.002), (2.0, 0.002), (4.0, 0.004), (4.0, 0.004)]:
        b.run({"t/a.py::slow": ("passed", slow, {}), "t/a.py::quick": ("passed", quick, {})})
    path = b.write(tmp_path / "ms.jsonl")
    args = ("--window", "2", "--min-runs", "2", "--rootdir", tmp_path)
    data = report_json(capsys, path, *args)
    quick = next(t for t in data["durations"]["tests"] if t["name"] == "t/a.py::quick")
    assert quick["change_percent"] == pytest.approx(100.0), "+100%, 2 ms"
    assert [s["name"] for s in data["durations"]["slowdowns"]] == ["t/a.py::slow"]
    # The floor is configurable; 0 lists every relative slow-down, as before.
    (tmp_path / "pyproject.toml").write_text("[tool.pytest-dynamo.gates]\nslowdown_min_s = 0\n")
    data = report_json(capsys, path, *args)
    assert [s["name"] for s in data["durations"]["slowdowns"]] == ["t/a.py::slow", "t/a.py::quick"]
    (tmp_path / "pyproject.toml").write_text("[tool.pytest-dynamo.gates]\nslowdown_min_s = 2.5\n")
    assert report_json(capsys, path, *args)["durations"]["slowdowns"] == []


def test_report_times_are_rfc3339_with_seconds_and_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = report_json(capsys, durations_history(tmp_path), "--window", "2", "--min-runs", "2")
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert re.fullmatch(stamp, data["generated_at"]), data["generated_at"]
    times = [data["runs"]["first"], data["runs"]["latest"]["started_at"]]
    times += [p["started_at"] for p in data["flaky_results_by_run"]]
    times += [p["started_at"] for p in data["durations"]["trend"]]
    assert times and all(re.fullmatch(stamp, t) for t in times), times


def test_an_impossible_date_is_a_corrupt_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = durations_history(tmp_path)
    lines = path.read_text().splitlines()
    start = json.loads(lines[0])
    start["started_at"] = "2026-02-31T00:00:00Z"
    path.write_text("\n".join([json.dumps(start), *lines[1:]]) + "\n")
    code, out, _ = report(capsys, path, "--format", "json")
    assert code == 0
    data = json.loads(out)
    # February 31 is not read as March 3: the line is counted, not shifted.
    assert "2026-03-03" not in out
    assert data["inputs"]["corrupt"] == 1, data["inputs"]


def test_the_text_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = report(capsys, durations_history(tmp_path), "--window", "2", "--min-runs", "2")
    assert code == 0
    lines = out.splitlines()
    assert (
        lines[0]
        == "pytest-dynamo report: 4 runs (all pipelines); window: last 2 runs, previous window: 2 runs"
    )
    assert "  biggest slow-downs  n    p50    p95  prev p50   change" in lines
    assert "  t/e2e.py::slow      2  9.00s  9.90s     3.00s  +200.0%" in lines
    assert "  e2e                   2  9.00s  9.90s     3.00s  +200.0%" in lines
    assert any(line.startswith("  ryan ") for line in lines), out


def test_markdown_summary_and_a_ticket_per_owner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = Builder()
    for i in range(4):
        b.run(
            {
                "t/kv.py::test_evict[a|b]": ("failed" if i == 1 else "passed", 1.0, {"owner": "Ryan Oslon"}),
                "t/router.py::test_route": ("failed" if i >= 2 else "passed", 1.0, {"owner": "alec"}),
            },
            commit=f"c{i // 2}",
        )
    path = b.write(tmp_path / "h.jsonl")
    summary = tmp_path / "summary.md"
    tickets = tmp_path / "tickets"
    code, out, _ = report(
        capsys, path, "--min-runs", "2", "--format", "markdown", "--markdown", summary, "--tickets", tickets
    )
    assert code == 0
    assert out == summary.read_text()
    assert out.startswith("## pytest-dynamo report\n")
    assert (
        "| `t/kv.py::test_evict[a\\|b]` | Ryan Oslon | 4 | 1 | 0 | 25.0 | passed and failed on `c0` |" in out
    )
    assert "### Broken tests" in out and "`t/router.py::test_route` | alec | 2 |" in out
    assert "```diff\n--- quarantine file\n" in out
    assert sorted(p.name for p in tickets.iterdir()) == ["alec.md", "ryan-oslon.md"]
    ryan = (tickets / "ryan-oslon.md").read_text()
    assert ryan.startswith("# [CI] Ryan Oslon: 1 flaky test(s)\n")
    # Outside a table `|` needs no escape (and `\|` in a code span would show).
    assert "- [ ] `t/kv.py::test_evict[a|b]`: 25.0% of 4 results flaky (1 failed)" in ryan
    assert '[[quarantine]]\ntest = "t/kv.py::test_evict[a|b]"\n' in ryan
    alec = (tickets / "alec.md").read_text()
    assert "## Broken" in alec and "failing for 2 run(s)" in alec


def test_tickets_cross_the_boundary_as_named_objects(tmp_path: Path) -> None:
    history = _core.History.load([str(flaky_and_broken(tmp_path))])
    report = history.report(_core.Engine.load(str(tmp_path)), min_runs=5)
    (ticket,) = report.tickets()
    assert isinstance(ticket, _core.Ticket)
    assert (ticket.owner, ticket.slug) == ("alec", "alec")
    assert ticket.body.startswith("# [CI] alec: 1 broken, 2 flaky test(s)\n")
    with pytest.raises(AttributeError):
        ticket.slug = "other"  # type: ignore[misc]


def test_the_html_report_is_one_self_contained_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html = tmp_path / "report.html"
    code, _, _ = report(capsys, durations_history(tmp_path), "--html", html, "--format", "json")
    assert code == 0
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 3, "flaky results per run, duration trends, slowest tests"
    for caption in ("flaky results per run", "time per run by stage (s)", "p50 (dark) and p95 (light)"):
        assert caption in page
    # What to act on first, the charts after it.
    assert page.index("<h2>Flaky tests</h2>") < page.index("<h2>Broken tests</h2>") < page.index("<svg")
    # Time axes show the runs' dates (runs an hour apart here: the hour too), not run numbers.
    assert "run started (UTC)" in page and "run (oldest to newest)" not in page
    assert re.search(r">\s*Jan 01 \d\d:00\s*</text>", page)
    # One name per measure: the window's flaky tests, the runs' flaky results.
    assert "flaky tests<b>" in page and "suite flaky rate" not in page
    assert "t/e2e.py::slow" in page
    for fetches in ("<script", "<link", "src=", "<img", "url("):
        assert fetches not in page


def quarantine_history(tmp_path: Path) -> Path:
    b = Builder()
    for i in range(6):
        b.run(
            {
                "t/a.py::newly_flaky": ("failed" if i == 1 else "passed", 1.0, {"owner": "alec"}),
                "t/b.py::held_1": "passed",
                "t/b.py::held_2": "failed" if i == 0 else "passed",
                "t/c.py::still_bad": "quarantined-failed" if i in (0, 5) else "passed",
            },
            commit=f"c{i // 2}",
        )
    return b.write(tmp_path / "q.jsonl")


QUARANTINE = """\
# Tests out of the gate until fixed.

[[quarantine]]
test = "t/b.py::held_*"
reason = "port clash"
owner = "ishan"
ticket = "DYN-12"
expires = "2026-06-01"

[[quarantine]]
test = "t/c.py::still_bad"
reason = "race in teardown"
owner = "ryan"
ticket = "DYN-13"
expires = "2026-06-01"
"""


def test_the_configured_quarantine_file_is_read_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "q.toml").write_text(QUARANTINE)
    history = quarantine_history(tmp_path)
    args = ("--release-after", "5", "--min-runs", "3", "--rootdir", tmp_path)
    unconfigured = report_json(capsys, history, *args)["quarantine"]
    assert unconfigured["release"] == [], "no file: nothing to release"
    (tmp_path / "pyproject.toml").write_text('[tool.pytest-dynamo.quarantine]\nfile = "q.toml"\n')
    configured = report_json(capsys, history, *args)["quarantine"]
    explicit = report_json(capsys, history, *args, "--quarantine", tmp_path / "q.toml")["quarantine"]
    assert configured == explicit
    assert [r["test"] for r in configured["release"]] == ["t/b.py::held_*"]
    assert "t/c.py::still_bad" not in [e["test"] for e in configured["add"]], "already quarantined"


def test_quarantine_and_release_as_a_change_to_the_quarantine_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tomllib = pytest.importorskip("tomllib")
    qfile = tmp_path / "quarantine.toml"
    qfile.write_text(QUARANTINE)
    out_file = tmp_path / "quarantine.new.toml"
    args = ["--quarantine", qfile, "--quarantine-out", out_file, "--release-after", "5", "--min-runs", "3"]
    data = report_json(capsys, quarantine_history(tmp_path), *args, "--ticket", "DYN-99")
    q = data["quarantine"]
    assert [e["test"] for e in q["add"]] == ["t/a.py::newly_flaky"]
    added = q["add"][0]
    assert added["owner"] == "alec" and added["ticket"] == ""
    assert "passed and failed on commit c0" in added["reason"]
    # held_2 failed in run 1 only: 5 passes since, like held_1; still_bad failed in the last run.
    assert [(r["test"], r["matched"]) for r in q["release"]] == [("t/b.py::held_*", 2)]
    assert '-test = "t/b.py::held_*"' in q["change"] and '+test = "t/a.py::newly_flaky"' in q["change"]
    updated = out_file.read_text()
    assert updated.startswith(
        '# Tests out of the gate until fixed.\n\n[[quarantine]]\ntest = "t/c.py::still_bad"'
    )
    entries = tomllib.loads(updated)["quarantine"]
    assert [e["test"] for e in entries] == ["t/c.py::still_bad", "t/a.py::newly_flaky"]
    assert set(entries[1]) == {"test", "reason", "owner", "ticket", "expires"}
    assert entries[1]["ticket"] == "DYN-99"
    # Six passes are needed now: nothing to release.
    data = report_json(
        capsys,
        quarantine_history(tmp_path),
        *args[:4],
        "--release-after",
        "6",
        "--min-runs",
        "3",
        "--ticket",
        "T",
    )
    assert data["quarantine"]["release"] == []


def test_the_written_quarantine_file_loads_at_the_next_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qfile = tmp_path / "q.toml"
    qfile.write_text(QUARANTINE)
    (tmp_path / "pyproject.toml").write_text('[tool.pytest-dynamo.quarantine]\nfile = "q.toml"\n')
    args = ("--quarantine-out", qfile, "--min-runs", "3", "--rootdir", tmp_path)
    # Without a ticket the added entry would not load: refused, nothing written.
    code, _, err = report(capsys, quarantine_history(tmp_path), *args)
    assert code == 2
    assert "--quarantine-out would add entries without ticket (t/a.py::newly_flaky)" in err
    assert "pass --ticket DYN-123" in err
    assert qfile.read_text() == QUARANTINE
    code, _, err = report(capsys, quarantine_history(tmp_path), *args, "--ticket", "DYN-7")
    assert code == 0, err
    # The round trip: the run loads what the report wrote (an empty ticket was exit 4).
    policy = _core.Engine.load(str(tmp_path)).run_policy(str(tmp_path))
    assert policy.quarantine_file == str(qfile)
    assert 'ticket = "DYN-7"' in qfile.read_text()


COMMENTED = '''\
# Tests out of the gate until fixed.
# File the ticket before adding an entry.

# the router
[[quarantine]]
test = "t/c.py::still_bad"
reason = """
race in teardown; seen on:
[x] H100, driver 550
[[quarantine]] was the first attempt
"""
owner   = "ryan"   # on call this week
ticket = 'DYN-13'
expires = 2999-06-01

[notes]
renewed = ["DYN-13"]
# end of file
'''


def test_quarantine_out_keeps_comments_and_multi_line_strings_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tomllib = pytest.importorskip("tomllib")
    qfile = tmp_path / "quarantine.toml"
    qfile.write_text(COMMENTED)
    args = ["--quarantine", qfile, "--quarantine-out", qfile, "--min-runs", "3", "--ticket", "DYN-99"]
    args += ["--owner", "ishan"]
    data = report_json(capsys, quarantine_history(tmp_path), *args)
    # `[x] ...` and `[[quarantine]] ...` inside the string are not tables: one entry, not released.
    assert data["quarantine"]["release"] == []
    assert [e["test"] for e in data["quarantine"]["add"]] == ["t/a.py::newly_flaky", "t/b.py::held_2"]
    updated = qfile.read_text()
    at = COMMENTED.index("\n[notes]")
    added = updated[at : len(updated) - (len(COMMENTED) - at)]
    assert updated == COMMENTED[:at] + added + COMMENTED[at:], "every byte of the file kept"
    assert added.startswith('\n[[quarantine]]\ntest = "t/a.py::newly_flaky"\n'), added
    assert tomllib.loads(added.replace("[[quarantine]]", "[[q]]"))["q"][1]["ticket"] == "DYN-99"
    entries = tomllib.loads(updated)["quarantine"]
    assert [e["test"] for e in entries] == ["t/c.py::still_bad", "t/a.py::newly_flaky", "t/b.py::held_2"]
    assert entries[0]["reason"].startswith("race in teardown; seen on:\n[x] H100")


def test_a_broken_quarantine_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qfile = tmp_path / "quarantine.toml"
    qfile.write_text('[[quarantine]]\nreason = "no test key"\n')
    code, _, err = report(capsys, quarantine_history(tmp_path), "--quarantine", qfile)
    assert code == 2
    assert "quarantine entry 1 has no `test` string" in err


def test_corrupt_and_truncated_lines_are_counted_never_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    b = Builder()
    repeat(b, 3, {"t/a.py::x": "passed"})
    good = b.lines
    folder = tmp_path / "records"
    (folder / "nested").mkdir(parents=True)
    # A file cut mid-line, garbage, a wrong type, an empty line, and a binary blob.
    (folder / "a.jsonl").write_text(
        "\n".join(
            [good[0], "not json at all", good[1], "", '{"record":"test","run_id":"x","nodeid":1}', *good[2:]]
        )
        + '\n{"record":"test","run_id":"'
    )
    (folder / "nested" / "b.jsonl.gz").write_bytes(gzip.compress(b"\x00\xff\xfe garbage\n"))
    (folder / "ignored.txt").write_text("not a records file name, not read\n")
    code, out, err = report(capsys, folder)
    assert code == 0
    assert "inputs: 2 files, " in out
    assert "4 corrupt lines skipped" in out
    assert "a.jsonl:2: expected ident" in out
    assert "a.jsonl:5: invalid type: integer `1`" in out
    assert "b.jsonl.gz:1: " in out
    assert "skipped 4 corrupt or truncated record line(s)" in err
    data = report_json(capsys, folder)
    assert data["runs"]["total"] == 3
    assert data["inputs"]["corrupt"] == 4


def test_a_truncated_gzip_file_keeps_what_came_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    b = Builder()
    repeat(b, 200, {f"t/a.py::x{i}": "passed" for i in range(20)})
    whole = gzip.compress("".join(line + "\n" for line in b.lines).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    data = report_json(capsys, path)
    problems = data["inputs"]["problems"]
    assert "gzip stream is truncated or corrupt" in problems[0]
    assert 0 < data["runs"]["total"] < 200


def test_interrupted_runs_and_newer_writers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = Builder()
    b.run({"t/a.py::x": "passed"}, end=False)
    b.run({"t/a.py::x": "failed"}, start=False)
    b.add({"record": "annotation", "schema": 2, "run_id": "x", "text": "from a newer writer"})
    b.run({"t/a.py::x": ("passed", 1.0, {"schema": 2, "new_field": {"nested": [1]}})})
    data = report_json(capsys, b.write(tmp_path / "h.jsonl"), "--min-runs", "1")
    i = data["inputs"]
    assert (i["corrupt"], i["unknown"], i["runs_without_start"], i["runs_without_end"]) == (0, 1, 1, 1)
    assert data["runs"]["total"] == 3
    assert data["runs"]["latest"]["counts"] == {"passed": 1}


def test_many_files_and_the_pipeline_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nightly, pr = Builder(), Builder()
    repeat(nightly, 3, {"t/a.py::x": "passed"}, pipeline="nightly")
    pr.count = 10  # distinct run ids and later start times
    repeat(pr, 2, {"t/a.py::x": "failed"}, pipeline="pr")
    first = nightly.write(tmp_path / "nightly.jsonl")
    second = pr.write(tmp_path / "pr.jsonl.gz", compress=True)
    assert report_json(capsys, first, second)["runs"]["total"] == 5
    data = report_json(capsys, first, second, "--pipeline", "pr", "--min-runs", "2")
    assert data["runs"]["total"] == 2
    assert data["flakiness"]["broken_count"] == 1


def test_bad_arguments_exit_2_with_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = report(capsys, tmp_path / "missing.jsonl")
    assert code == 2
    assert "missing.jsonl: no such records file or folder" in err
    (tmp_path / "pyproject.toml").write_text("[tool.pytest-dynamo.gates]\nwindoww = 3\n")
    code, _, err = report(capsys, flaky_and_broken(tmp_path), "--rootdir", tmp_path)
    assert code == 2
    assert "windoww" in err and "fix:" in err
    with pytest.raises(SystemExit):
        _cli.main(["report", "--window", "0", str(tmp_path)])
    assert "--window: 0 is out of range: a whole number from 1 to 1000000" in capsys.readouterr().err


def test_an_empty_folder_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("not records\n")
    code, out, err = report(capsys, tmp_path)
    assert code == 0
    assert out.startswith("pytest-dynamo report: 0 runs")
    assert "no records in" in err and "*.jsonl.gz" in err


def test_the_python_api_reads_records_in_memory(tmp_path: Path) -> None:
    b = Builder()
    repeat(b, 5, {"t/a.py::x": "passed"})
    history = _core.History.from_records(b.lines)
    assert (history.runs, history.records, history.corrupt) == (5, 15, 0)
    engine = _core.Engine.load(str(tmp_path))
    assert history.report(engine).flaky_tests_percent == 0.0


def test_python_dash_m_dispatches_the_report(tmp_path: Path) -> None:
    path = flaky_and_broken(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "pytest_dynamo", "report", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["runs"]["total"] == 6
    listing = subprocess.run(
        [sys.executable, "-m", "pytest_dynamo", "--help"], capture_output=True, text=True, check=False
    )
    assert "report" in listing.stdout and "gate" in listing.stdout


def test_a_node_id_of_70000_characters_renders_everywhere(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    # A real run writes such a record; the text report once panicked on it
    # (a format width above u16::MAX).
    pytester.makepyfile(
        """
        import pytest

        pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]

        @pytest.mark.parametrize("x", [1], ids=["x" * 70000])
        def test_long(x): assert False
        """
    )
    for _ in range(2):
        result = pytester.runpytest("--dynamo-records=r.jsonl", "--dynamo-slowest=5", "-rA")
        result.assert_outcomes(failed=1)
    assert "x" * 70000 in result.stdout.str()  # the pytest summary: in full
    records = pytester.path / "r.jsonl"
    nodeid = "test_a_node_id_of_70000_characters_renders_everywhere.py::test_long[" + "x" * 70000 + "]"
    code, out, err = report(capsys, records, "--min-runs", "1")
    assert code == 0, err
    broken = next(line for line in out.splitlines() if line.startswith("  test_a_node_id"))
    assert "…" in broken and len(broken) < 300, broken[:400]
    code, out, err = report(capsys, records, "--min-runs", "1", "--format", "markdown")
    assert code == 0, err
    assert f"| `{nodeid}` |" in out
    code, out, err = report(capsys, records, "--min-runs", "1", "--format", "html")
    assert code == 0, err
    assert nodeid in out


def test_untrusted_names_cannot_break_out_of_the_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Rendered by a CommonMark parser with GFM tables, as a CI page would.
    from markdown_it import MarkdownIt

    evil = "<img src=x onerror=alert(1)>"
    flaky = f"t/a.py::test_x[a`{evil}`|b\rc]"
    broken = f"t/a.py::test_y[``{evil}]"
    owner = "<b>team</b>\n# pwned | *x*"
    b = Builder()
    for i in range(4):
        b.run(
            {
                flaky: ("failed" if i == 1 else "passed", 1.0, {"owner": owner}),
                broken: ("failed" if i >= 2 else "passed", 1.0, {"owner": owner}),
            },
            commit=f"`<b>x</b>{i // 2}",
            gpu=f"H100`{evil}",
            run_id=f"run`{evil}`{i}",
        )
    path = b.write(tmp_path / "h.jsonl")
    tickets = tmp_path / "tickets"
    code, summary, err = report(capsys, path, "--min-runs", "2", "--format", "markdown", "--tickets", tickets)
    assert code == 0, err
    (ticket_file,) = tickets.iterdir()
    ticket = ticket_file.read_text()
    md = MarkdownIt("commonmark").enable("table")
    # The summary names the latest run; the ticket the run a broken test fails since.
    for text, run in ((summary, 3), (ticket, 2)):
        html = md.render(text)
        assert "<img" not in html and "<b>" not in html and "<em>" not in html, html
        spans = [
            child.content
            for token in md.parse(text)
            for child in token.children or []
            if child.type == "code_inline"
        ]
        # Each name is one code span, whole (a CR reads as a space).
        assert flaky.replace("\r", " ") in spans, spans
        assert broken in spans, spans
        assert f"run`{evil}`{run}" in spans, spans
    # One row per test, seven cells each: no `|` or CR split a row or a cell.
    flaky_table = summary.split("### Flaky tests", 1)[1].split("###", 1)[0]
    kinds = [t.type for t in md.parse(flaky_table)]
    assert (kinds.count("tr_open"), kinds.count("td_open")) == (2, 7), flaky_table
    # The owner's newline does not end the ticket's heading.
    tokens = md.parse(ticket)
    assert [t.tag for t in tokens if t.type == "heading_open"].count("h1") == 1
    assert tokens[0].tag == "h1"
    assert tokens[1].content.startswith("[CI] ") and "# pwned" in tokens[1].content, tokens[1].content
