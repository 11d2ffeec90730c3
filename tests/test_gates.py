"""``pytest-dynamo gate``: every gate passing and failing, what each one
compared against which baseline, thresholds from the configuration, and
the ``dynamo_metric`` fixture that feeds the performance gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from history_builder import RECORDS_CONFTEST, Builder, metric
from pytest_dynamo import _cli, _core

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]


def gate(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = _cli.main(["gate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def gate_json(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, Any]]:
    code, out, err = gate(capsys, *args, "--format", "json")
    assert code in (0, 1), err
    data: dict[str, Any] = json.loads(out)
    return code, data


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["name"]: g for g in data["gates"]}


def flaky_history(tmp_path: Path, flaky_tests: int, total: int) -> Path:
    """Five runs on one commit; `flaky_tests` of `total` tests fail once."""
    b = Builder()
    for i in range(5):
        b.run({f"t/a.py::t{n}": "failed" if n < flaky_tests and i == 2 else "passed" for n in range(total)})
    return b.write(tmp_path / "flaky.jsonl")


def test_the_flaky_gate_passes_at_the_threshold_and_fails_above(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = gate_json(capsys, flaky_history(tmp_path, 1, 20), "--only", "flaky", "--rootdir", tmp_path)
    g = by_name(data)["flaky"]
    assert (code, g["status"]) == (0, "pass"), "5.0% is not above 5%"
    assert g["summary"] == "flaky tests 5.0% (1 of 20 tests) <= 5%"
    assert g["compared"] == "flaky tests: the share of the 20 tests with at least 5 results that are flaky"
    assert g["baseline"].startswith("window (window = 20): 5 runs from 2026-01-01 01:00")
    assert g["threshold"] == "flaky_rate = 5%"
    code, data = gate_json(capsys, flaky_history(tmp_path, 2, 20), "--only", "flaky", "--rootdir", tmp_path)
    g = by_name(data)["flaky"]
    assert (code, g["status"]) == (1, "fail")
    assert [c["subject"] for c in g["checks"]] == ["t/a.py::t0", "t/a.py::t1"]
    assert g["checks"][0]["baseline"] == "passed and failed on commit c1"


def test_thresholds_come_from_the_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.pytest-dynamo.gates]\nflaky_rate = 10.0\n")
    path = flaky_history(tmp_path, 2, 20)
    code, out, _ = gate(capsys, path, "--only", "flaky", "--rootdir", tmp_path)
    assert code == 0
    assert "PASS  flaky: flaky tests 10.0% (2 of 20 tests) <= 10%" in out
    assert "threshold: flaky_rate = 10%" in out
    # --config (and DYNAMO_CONFIG) name another file, as --dynamo-config does.
    strict = tmp_path / "strict.toml"
    strict.write_text("[gates]\nflaky_rate = 1.0\n")
    code, out, _ = gate(capsys, path, "--only", "flaky", "--rootdir", tmp_path, "--config", strict)
    assert code == 1
    assert out.rstrip().endswith("pytest-dynamo gate: FAILED: flaky")


def test_too_few_results_skip_the_flaky_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = Builder()
    b.run({"t/a.py::x": "passed"})
    b.run({"t/a.py::x": "failed"})
    code, data = gate_json(capsys, b.write(tmp_path / "h.jsonl"), "--only", "flaky", "--rootdir", tmp_path)
    g = by_name(data)["flaky"]
    assert (code, g["status"]) == (0, "skipped")
    assert g["summary"] == "not judged: no test has 5 results in the window yet (1 tests seen)"


def perf_history(tmp_path: Path, latest: float, *, latest_gpu: str = "NVIDIA H100 80GB HBM3") -> Path:
    """Baseline TTFT on H100: 40, 41, 42 (median 41); a faster A100 run in between."""
    b = Builder()
    for gpu, ttft in [
        ("NVIDIA H100 80GB HBM3", 40.0),
        ("NVIDIA A100", 30.0),
        ("NVIDIA H100 80GB HBM3", 42.0),
    ]:
        b.run({"t/bench.py::test_ttft": ("passed", 5.0, {"metrics": [metric("ttft_ms", ttft)]})}, gpu=gpu)
    b.run({"t/bench.py::test_ttft": ("passed", 5.0, {"metrics": [metric("ttft_ms", 41.0)]})}, gpu=None)
    b.run({"t/bench.py::test_ttft": ("passed", 5.0, {"metrics": [metric("ttft_ms", 41.0)]})})
    b.run(
        {
            "t/bench.py::test_ttft": (
                "passed",
                5.0,
                {"metrics": [metric("ttft_ms", latest), metric("tok_s", 900.0, "tok/s", True)]},
            )
        },
        gpu=latest_gpu,
    )
    return b.write(tmp_path / "perf.jsonl")


def test_the_performance_gate_compares_with_the_median_on_the_same_gpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = gate_json(
        capsys, perf_history(tmp_path, 43.0), "--only", "performance", "--rootdir", tmp_path
    )
    g = by_name(data)["performance"]
    assert (code, g["status"]) == (0, "pass")
    assert g["compared"].endswith("on NVIDIA H100 80GB HBM3")
    ttft, toks = sorted(g["checks"], key=lambda c: c["subject"], reverse=True)
    assert ttft["subject"] == "t/bench.py::test_ttft ttft_ms"
    assert ttft["baseline"] == "median 41.0000 ms of 3 runs", "the A100 and the CPU-only run are not baseline"
    assert ttft["change"] == "+4.9% (lower is better)"
    assert toks["status"] == "skipped" and "too few" in toks["baseline"]
    code, data = gate_json(
        capsys, perf_history(tmp_path, 43.1), "--only", "performance", "--rootdir", tmp_path
    )
    g = by_name(data)["performance"]
    assert (code, g["status"]) == (1, "fail")
    assert g["summary"] == "1 of 1 metric(s) regressed more than 5%"


def test_a_gpu_model_without_history_has_no_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = perf_history(tmp_path, 99.0, latest_gpu="NVIDIA B200")
    code, data = gate_json(capsys, path, "--only", "performance", "--rootdir", tmp_path)
    g = by_name(data)["performance"]
    assert (code, g["status"]) == (0, "skipped")
    assert g["summary"] == "not judged: no metric has 3 earlier values on NVIDIA B200 yet"


def test_judging_an_earlier_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = perf_history(tmp_path, 99.0)
    code, data = gate_json(capsys, path, "--only", "performance", "--run", f"{5:032x}", "--rootdir", tmp_path)
    assert data["run_id"] == f"{5:032x}"
    # Before run 5 there are two H100 values (40, 42): fewer than the 3 needed.
    check = by_name(data)["performance"]["checks"][0]
    assert check["baseline"] == "2 earlier value(s) on NVIDIA H100 80GB HBM3: too few"
    code, _, err = gate(capsys, path, "--run", "nope", "--rootdir", tmp_path)
    assert code == 2 and "run nope is not in the records" in err


COVERAGE_PY = (
    '{"meta": {"version": "7.6.1"}, "files": {}, "totals": {"covered_lines": %d, "num_statements": 1000}}'
)
LCOV = "TN:\nSF:src/lib.rs\nDA:1,1\nLF:1000\nLH:%d\nend_of_record\n"


def write_coverage(tmp_path: Path, name: str, python: int, rust: int) -> tuple[Path, Path]:
    py = tmp_path / f"{name}.json"
    py.write_text(COVERAGE_PY % python)
    rs = tmp_path / f"{name}.info"
    rs.write_text(LCOV % rust)
    return py, rs


def test_the_coverage_gate_against_a_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now_py, now_rs = write_coverage(tmp_path, "now", 860, 790)
    base_py, base_rs = write_coverage(tmp_path, "base", 870, 811)
    args = ["--coverage", now_py, "--coverage", now_rs, "--coverage-baseline", base_py]
    code, data = gate_json(capsys, *args, "--coverage-baseline", base_rs, "--rootdir", tmp_path)
    g = by_name(data)["coverage"]
    assert (code, g["status"]) == (1, "fail")
    checks = {c["subject"]: c for c in g["checks"]}
    assert checks["python line coverage"]["status"] == "pass"
    assert checks["python line coverage"]["change"] == "-1.00 points"
    assert checks["rust line coverage"]["status"] == "fail"
    assert (checks["rust line coverage"]["value"], checks["rust line coverage"]["baseline"]) == (
        "79.00%",
        "81.10%",
    )
    assert "now.json" in g["compared"] and "base.info" in g["baseline"]
    assert by_name(data)["flaky"]["status"] == "skipped", "no records given"
    code, _, _ = gate(capsys, "--coverage", now_py, "--coverage-baseline", base_py, "--rootdir", tmp_path)
    assert code == 0


def test_the_specs_coverage_floors_and_configured_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_coverage(tmp_path, "now", 860, 790)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest-dynamo.gates]\ncoverage_floors = "spec"\ncoverage_report = ["now.json", "now.info"]\n'
    )
    code, out, _ = gate(capsys, "--rootdir", tmp_path, "--only", "coverage")
    assert code == 1
    assert "FAIL  coverage: 1 of 2 coverage check(s) failed" in out
    assert "PASS python floor: 86.00% vs floor 85% (+1.00 points)" in out
    assert "FAIL rust floor: 79.00% vs floor 80% (-1.00 points)" in out
    assert "baseline: no baseline given (--coverage-baseline): floors only" in out


def test_without_coverage_the_gate_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = gate(capsys, "--rootdir", tmp_path)
    assert code == 0
    assert "SKIP  coverage: not run: no coverage report given" in out
    assert out.rstrip().endswith("pytest-dynamo gate: passed (3 gates)")


def test_statuses_cross_the_boundary_as_named_objects(tmp_path: Path) -> None:
    history = _core.History.load([str(flaky_history(tmp_path, 1, 10))])
    outcome = _core.run_gates(_core.Engine.load(str(tmp_path)), history, rootdir=str(tmp_path))
    statuses = outcome.statuses()
    assert all(isinstance(s, _core.GateStatus) for s in statuses)
    assert [(s.name, s.status) for s in statuses] == [
        ("flaky", "fail"),
        ("performance", "skipped"),
        ("coverage", "skipped"),
    ]


def test_markdown_verdicts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = tmp_path / "gates.md"
    code, _, _ = gate(capsys, flaky_history(tmp_path, 2, 20), "--rootdir", tmp_path, "--markdown", summary)
    assert code == 1
    md = summary.read_text()
    assert md.startswith("## pytest-dynamo quality gates\n")
    assert "| flaky | **FAIL** flaky tests 10.0% (2 of 20 tests) &gt; 5% |" in md
    assert "### flaky" in md


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("", ["--coverage", "nope.json"], "coverage file nope.json does not exist"),
        ("", ["missing.jsonl"], "missing.jsonl: no such records file or folder"),
        ("[tool.pytest-dynamo.gates]\nflaky_rate = -1\n", [], "flaky_rate must be a percentage of 0 or more"),
        ("[tool.pytest-dynamo.gates]\nwindow = 0\n", [], "window must be at least 1"),
        ("[tool.pytest-dynamo.gates]\nflakyrate = 1\n", [], "unknown field `flakyrate`"),
        ("", ["empty.jsonl"], "no runs in"),
        ("", ["runs.jsonl", "--pipeline", "weekly"], "no runs of pipeline weekly"),
    ],
)
def test_bad_input_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    setup: str,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.jsonl").write_text("garbage\n")
    flaky_history(tmp_path, 0, 1).rename(tmp_path / "runs.jsonl")
    if setup:
        (tmp_path / "pyproject.toml").write_text(setup)
    code, _, err = gate(capsys, *args)
    assert code == 2
    assert message in err, err


def test_an_unknown_gate_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _cli.main(["gate", "--only", "flaky,speed"])
    assert "unknown gate 'speed'" in capsys.readouterr().err


def test_dynamo_metric_records_on_the_test(pytester: pytest.Pytester, valid_marks: str) -> None:
    pytester.makeconftest(
        RECORDS_CONFTEST
        + """
def pytest_terminal_summary(terminalreporter, config):
    for line in config.stash[_state.TEST_RECORDS]:
        record = json.loads(line)
        terminalreporter.write_line(f"METRICS {record['nodeid']} {json.dumps(record['metrics'])}")
"""
    )
    pytester.makepyfile(
        f"""
import pytest
{valid_marks}def test_bench(dynamo_metric):
    dynamo_metric("ttft_ms", 41.2, unit="ms", higher_is_better=False)
    dynamo_metric("tok_s", 900, unit="tok/s", higher_is_better=True)

{valid_marks}@pytest.mark.parametrize("bad, error", [
    (dict(name="", value=1.0, higher_is_better=True), "non-empty string"),
    (dict(name="x", value="fast", higher_is_better=True), "must be a number"),
    (dict(name="x", value=True, higher_is_better=True), "must be a number"),
    (dict(name="x", value=float("nan"), higher_is_better=True), "must be finite"),
    (dict(name="x", value=1.0, higher_is_better="yes"), "higher_is_better must be True"),
    (dict(name="x", value=1.0, unit=3, higher_is_better=True), "unit must be a string"),
])
def test_bad_metrics(dynamo_metric, bad, error):
    with pytest.raises((TypeError, ValueError), match=error):
        dynamo_metric(bad.pop("name"), bad.pop("value"), **bad)

{valid_marks}def test_direction_is_required(dynamo_metric):
    with pytest.raises(TypeError, match="higher_is_better"):
        dynamo_metric("x", 1.0)
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(
        [
            "METRICS test_dynamo_metric_records_on_the_test.py::test_bench "
            '[[]{"name": "ttft_ms", "value": 41.2, '
            '"unit": "ms", "higher_is_better": false}, {"name": "tok_s", "value": 900.0, "unit": "tok/s", '
            '"higher_is_better": true}[]]'
        ]
    )


def test_markdown_verdicts_escape_metric_and_gpu_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from markdown_it import MarkdownIt

    evil = "<img src=x onerror=alert(1)>"
    name, gpu = f"ttft`{evil}`|ms", f"H100`{evil}"
    b = Builder()
    for ttft in (40.0, 41.0, 42.0, 50.0):
        b.run({"t/bench.py::test_ttft": ("passed", 5.0, {"metrics": [metric(name, ttft)]})}, gpu=gpu)
    path = b.write(tmp_path / "perf.jsonl")
    summary = tmp_path / "gates.md"
    code, _, _ = gate(capsys, path, "--only", "performance", "--rootdir", tmp_path, "--markdown", summary)
    assert code == 1
    text = summary.read_text()
    md = MarkdownIt("commonmark").enable("table")
    assert "<img" not in md.render(text), text
    tokens = md.parse(text.split("### performance", 1)[1])
    kinds = [t.type for t in tokens]
    assert (kinds.count("tr_open"), kinds.count("td_open")) == (2, 5), text
    spans = [c.content for t in tokens for c in t.children or [] if c.type == "code_inline"]
    assert spans == [f"t/bench.py::test_ttft {name}"], text
