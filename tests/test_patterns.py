"""One pattern dialect for node ids: the run's quarantine, the report's
quarantine advice and the owners table judge the same patterns alike
(docs/flakiness.md, "Quarantine"); and the lint reads pytest's own
``python_files`` patterns as pytest does, in linear time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from history_builder import Builder
from pytest_dynamo import _cli, _core

pytestmark = [
    pytest.mark.pre_merge,
    pytest.mark.gpu_0,
    pytest.mark.integration,
    pytest.mark.usefixtures("full_machine"),
]

HEADER = "import pytest\npytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]\n"
TOP = (
    HEADER
    + """
def test_a(): assert False
@pytest.mark.parametrize("m", ["meta-llama/Llama-3", "c[1]"])
def test_split(m): assert False
"""
)
DEEP = HEADER + "def test_d(): assert False\ndef test_e(): assert False\n"

A = "tests/test_top.py::test_a"
LLAMA = "tests/test_top.py::test_split[meta-llama/Llama-3]"
C1 = "tests/test_top.py::test_split[c[1]]"
D = "tests/unit/test_deep.py::test_d"
E = "tests/unit/test_deep.py::test_e"
ALL = {A, LLAMA, C1, D, E}

CASES = [
    # `*` stops at `/` in the file's path; a pattern without `::` names files.
    ("tests/*", {A, LLAMA, C1}),
    ("tests/**", ALL),
    ("tests/*/test_?eep.py", {D, E}),
    # After `::`, `*` crosses `/`: parameter ids carry slashes.
    ("tests/test_top.py::test_split[*]", {LLAMA, C1}),
    ("tests/test_top.py::*/*", {LLAMA}),
    # Brackets are literal: `[de]` is not a class.
    ("tests/unit/test_deep.py::test_[de]", set()),
    ("tests/test_top.py::test_split[c[1]]", {C1}),
    ("tests/**/test_deep.py::test_?", {D, E}),
]


def write_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**{"tests/test_top": TOP, "tests/unit/test_deep": DEEP})


def records(path: Path) -> dict[str, dict[str, object]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["nodeid"]: r for r in lines if r["record"] == "test"}


def quarantine_entry(pattern: str) -> str:
    return (
        f"[[quarantine]]\ntest = {json.dumps(pattern)}\nreason = 'r'\nowner = 'alec'\n"
        "ticket = 'DYN-1'\nexpires = 2999-12-31\n"
    )


def judged_by_the_run(pytester: pytest.Pytester, pattern: str) -> set[str]:
    pytester.makepyprojecttoml('[tool.pytest-dynamo.quarantine]\nfile = "quarantine.toml"\n')
    (pytester.path / "quarantine.toml").write_text(quarantine_entry(pattern))
    pytester.runpytest("--dynamo-records=run.jsonl", "-p", "no:cacheprovider")
    found = records(pytester.path / "run.jsonl")
    assert set(found) == ALL
    return {n for n, r in found.items() if r["outcome"] == "quarantined-failed"}


def judged_by_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str], pattern: str) -> set[str]:
    """Every test is flaky; the report advises quarantining those no entry matches."""
    b = Builder()
    for i in range(4):
        b.run({n: "failed" if i % 2 else "passed" for n in sorted(ALL)})
    history = b.write(tmp_path / "history.jsonl")
    qfile = tmp_path / "advice.toml"
    qfile.write_text(quarantine_entry(pattern))
    capsys.readouterr()  # what the pytest run printed
    code = _cli.main(
        ["report", str(history), "--quarantine", str(qfile), "--min-runs", "2", "--format", "json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    advised = {e["test"] for e in json.loads(out)["quarantine"]["add"]}
    assert advised <= ALL
    return ALL - advised


def judged_by_the_owners(pytester: pytest.Pytester, pattern: str) -> set[str]:
    pytester.makepyprojecttoml(
        f"[tool.pytest-dynamo.owners]\ndefault = 'nobody'\n"
        f"[tool.pytest-dynamo.owners.paths]\n{json.dumps(pattern)} = 'team'\n"
    )
    pytester.runpytest("--dynamo-records=owners.jsonl", "-p", "no:cacheprovider")
    return {n for n, r in records(pytester.path / "owners.jsonl").items() if r["owner"] == "team"}


@pytest.mark.parametrize(("pattern", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_run_the_report_and_the_owners_read_a_pattern_alike(
    pytester: pytest.Pytester,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    pattern: str,
    expected: set[str],
) -> None:
    write_suite(pytester)
    assert judged_by_the_run(pytester, pattern) == expected
    assert judged_by_the_report(tmp_path, capsys, pattern) == expected
    if "::" not in pattern:  # owners rules name files and folders only
        assert judged_by_the_owners(pytester, pattern) == expected


def lint_nodeids(pytester: pytest.Pytester) -> set[str]:
    return set(_core.lint(["."], invocation_dir=str(pytester.path)).nodeids())


def test_the_lint_reads_python_files_patterns_as_pytest_does(pytester: pytest.Pytester) -> None:
    """Classes, negated classes and an unclosed bracket, as Python's fnmatch reads them."""
    pytester.makeini("[pytest]\npython_files = check_[ab]*.py t[!x]_*.py odd[_*.py\n")
    body = HEADER + "def test_x(): pass\n"
    for name in ["check_a1", "check_c1", "ty_1", "tx_1", "odd[_1", "odd_1"]:
        pytester.makepyfile(**{name: body})
    collected = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    expected = {"check_a1.py::test_x", "ty_1.py::test_x", "odd[_1.py::test_x"}
    assert {line for line in collected.outlines if "::" in line} == expected
    assert lint_nodeids(pytester) == expected


@pytest.mark.timeout(60)
def test_a_pathological_python_files_pattern_answers_at_once(pytester: pytest.Pytester) -> None:
    """A backtracking fnmatch took minutes on this pattern (2^n paths); a
    linear one answers at once (the timeout only guards against a relapse)."""
    pattern = "*a" * 25 + "b.py"
    pytester.makeini(f"[pytest]\npython_files = {pattern} test_*.py\n")
    pytester.makepyfile(
        **{"a" * 60: HEADER + "def test_x(): pass\n", "test_real": HEADER + "def test_y(): pass\n"}
    )
    assert lint_nodeids(pytester) == {"test_real.py::test_y"}
