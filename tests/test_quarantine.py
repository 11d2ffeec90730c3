"""Quarantine: quarantined tests run, are recorded and never gate; expired
entries are reported every run and fail it in strict mode; a bad quarantine
file is a clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from history_builder import Builder
from pytest_dynamo import _cli

# A machine that runs every test: the GPU feature would skip framework tests here.
pytestmark = [
    pytest.mark.pre_merge,
    pytest.mark.gpu_0,
    pytest.mark.integration,
    pytest.mark.usefixtures("full_machine"),
]

HEADER = "import pytest\npytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]\n"
SUITE = (
    HEADER
    + """
def test_known_bad(): assert False, "races on restart"
def test_fine(): pass
@pytest.mark.parametrize("n", [1, 2])
def test_param(n): assert n == 1
"""
)


def entry(test: str, expires: str = "2999-12-31", ticket: str = "DYN-1", owner: str = "alec") -> str:
    return (
        f'[[quarantine]]\ntest = "{test}"\nreason = "races on restart"\n'
        f'owner = "{owner}"\nticket = "{ticket}"\nexpires = {expires}\n'
    )


def setup(pytester: pytest.Pytester, *entries: str, strict: bool = False) -> None:
    pytester.makepyprojecttoml(
        f'[tool.pytest-dynamo.quarantine]\nfile = "quarantine.toml"\nstrict = {str(strict).lower()}\n'
    )
    (pytester.path / "quarantine.toml").write_text("".join(entries))
    pytester.makepyfile(test_q=SUITE)


def read(path: Path) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["nodeid"]: r for r in lines if r["record"] == "test"}


def test_a_quarantined_failure_is_recorded_and_does_not_gate(pytester: pytest.Pytester) -> None:
    setup(pytester, entry("test_q.py::test_known_bad"), entry("test_q.py::test_param[*", ticket="DYN-2"))
    result = pytester.runpytest("--dynamo-records=r.jsonl")
    assert result.parseoutcomes() == {"passed": 2, "quarantined": 2}
    assert result.ret == pytest.ExitCode.OK
    records = read(pytester.path / "r.jsonl")
    bad = records["test_q.py::test_known_bad"]
    assert (bad["outcome"], bad["gating"], bad["owner"]) == ("quarantined-failed", False, "alec")
    assert bad["reason"] == ["AssertionError: races on restart", "assert False"][0]
    assert bad["quarantine"] == {
        "ticket": "DYN-1", "owner": "alec", "reason": "races on restart",
        "expires": "2999-12-31", "expired": False,
    }  # fmt: skip
    # A pattern covers every parametrization; the passing one stays passed.
    assert records["test_q.py::test_param[1]"]["outcome"] == "passed"
    assert records["test_q.py::test_param[2]"]["outcome"] == "quarantined-failed"
    assert records["test_q.py::test_fine"]["quarantine"] is None
    assert records["test_q.py::test_fine"]["gating"] is True
    result.stdout.fnmatch_lines(
        [
            "*= non-gating failures (need follow-up) =*",
            "FAILED test_q.py::test_known_bad: quarantined: DYN-1 (alec) (owner: alec)",
            "FAILED test_q.py::test_param[[]2]: quarantined: DYN-2 (alec) (owner: alec)",
            "pytest-dynamo: 2 non-gating failure(s); the run passes",
            "*= quarantine =*",
            "QUARANTINED test_q.py::test_known_bad: quarantined-failed "
            "(DYN-1, owner: alec, expires 2999-12-31)",
            "QUARANTINED test_q.py::test_param[[]2]: quarantined-failed (DYN-2, *",
            # Passing quarantined tests are counted, not listed.
            "pytest-dynamo: 1 quarantined test passed (remove their entries once they are fixed)",
        ]
    )
    assert "EXPIRED" not in result.stdout.str()


def test_the_report_writes_a_quarantine_that_the_next_run_loads(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    """The round trip: records, `report --quarantine-out` on the configured file,
    then a pytest run that reads what the report wrote."""
    setup(pytester, "# kept as it is\n", entry("test_q.py::test_param[*", ticket="DYN-2"))
    b = Builder()
    for i in range(4):
        b.run(
            {
                "test_q.py::test_known_bad": "failed" if i == 1 else "passed",
                "test_q.py::test_param[2]": "failed" if i == 2 else "passed",
                "test_q.py::test_fine": "passed",
            },
            commit="c1",
            owner="alec",
        )
    history = b.write(pytester.path / "history.jsonl")
    qfile = pytester.path / "quarantine.toml"
    before = qfile.read_text()
    args = ["--rootdir", str(pytester.path), "--min-runs", "3", "--format", "json"]
    code = _cli.main(["report", str(history), *args, "--quarantine-out", str(qfile), "--ticket", "DYN-77"])
    out, err = capsys.readouterr()
    assert code == 0, err
    # The configured file was read without --quarantine: test_param[2] is not added again.
    assert [e["test"] for e in json.loads(out)["quarantine"]["add"]] == ["test_q.py::test_known_bad"]
    assert qfile.read_text().startswith(before + "\n[[quarantine]]\n")
    result = pytester.runpytest("--dynamo-records=r.jsonl")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert result.parseoutcomes() == {"passed": 2, "quarantined": 2}
    bad = read(pytester.path / "r.jsonl")["test_q.py::test_known_bad"]
    assert (bad["outcome"], bad["quarantine"]["ticket"], bad["quarantine"]["owner"]) == (
        "quarantined-failed",
        "DYN-77",
        "alec",
    )


def test_an_unquarantined_failure_still_gates(pytester: pytest.Pytester) -> None:
    setup(pytester, entry("test_q.py::test_known_bad"))
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*= gating failures =*", "FAILED test_q.py::test_param[[]2] (owner: unassigned)"]
    )


def test_an_expired_entry_is_reported_every_run(pytester: pytest.Pytester) -> None:
    setup(
        pytester,
        entry("test_q.py::test_known_bad", expires="2000-01-31"),
        entry("test_q.py::test_param[*", ticket="DYN-2"),
    )
    for _ in range(2):
        result = pytester.runpytest("--dynamo-records=r.jsonl", "--log-cli-level=WARNING")
        assert result.ret == pytest.ExitCode.OK  # not strict: reported, still quarantined
        result.stdout.fnmatch_lines(
            [
                "*quarantine - * - expired DYN-1 on 2000-01-31: test_q.py::test_known_bad *",
                "*= quarantine =*",
                "EXPIRED DYN-1 (owner: alec) on 2000-01-31: test_q.py::test_known_bad: races on restart",
                "pytest-dynamo: 1 expired quarantine entry; renew or remove them in *quarantine.toml",
            ]
        )
    bad = read(pytester.path / "r.jsonl")["test_q.py::test_known_bad"]
    assert bad["quarantine"]["expired"] is True
    assert bad["outcome"] == "quarantined-failed"


def test_an_expired_entry_fails_a_strict_run(pytester: pytest.Pytester) -> None:
    setup(
        pytester,
        entry("test_q.py::test_fine", expires="2000-01-31"),
        entry("test_q.py::test_known_bad"),
        entry("test_q.py::test_param[2]"),
        strict=True,
    )
    result = pytester.runpytest("--dynamo-records=r.jsonl")
    assert result.parseoutcomes() == {"passed": 2, "quarantined": 2, "expired": 1}
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["pytest-dynamo: 1 expired quarantine entry; strict: the run fails"])
    end = json.loads((pytester.path / "r.jsonl").read_text().splitlines()[-1])
    assert end["exit_status"] == 1


def test_a_strict_run_without_expiry_passes(pytester: pytest.Pytester) -> None:
    setup(pytester, entry("test_q.py::test_known_bad"), entry("test_q.py::test_param[2]"), strict=True)
    assert pytester.runpytest().ret == pytest.ExitCode.OK


def test_an_entry_matching_nothing_changes_nothing(pytester: pytest.Pytester) -> None:
    setup(pytester, entry("test_q.py::test_gone"))
    assert pytester.runpytest().ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (entry("t.py::a").replace("expires = 2999-12-31\n", ""), "missing field `expires`"),
        (entry("t.py::a", expires='"next week"'), "a date like 2026-03-31"),
        (entry("t.py::a").replace("ticket", "tiket"), "unknown field `tiket`"),
        (entry("t.py::a", owner=""), "has an empty owner"),
        (entry("t.py::a") + entry("t.py::a", ticket="X"), "'t.py::a' is quarantined twice"),
        ("[[quarantine]\n", "invalid quarantine file"),
    ],
)
def test_a_bad_quarantine_file_is_a_usage_error(pytester: pytest.Pytester, text: str, message: str) -> None:
    setup(pytester, text)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    stderr = result.stderr.str()
    assert "quarantine.toml" in stderr and message in stderr, stderr
    result.stderr.fnmatch_lines(["*fix: *"])
    assert "Traceback" not in result.stderr.str()


def test_a_missing_file_and_strict_without_file_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest-dynamo.quarantine]\nfile = "nope.toml"\n')
    pytester.makepyfile(test_q=SUITE)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nope.toml: cannot read the quarantine file*"])
    pytester.makepyprojecttoml("[tool.pytest-dynamo.quarantine]\nstrict = true\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*strict = true but no quarantine file is named*"])
    pytester.makepyprojecttoml("[tool.pytest-dynamo.quarantine]\nfiles = 'q.toml'\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*unknown field `files`*"])


def test_quarantine_holds_under_xdist(pytester: pytest.Pytester) -> None:
    setup(pytester, entry("test_q.py::test_known_bad"), entry("test_q.py::test_param[2]"))
    result = pytester.runpytest_subprocess("-n", "2", "--dynamo-records=r.jsonl")
    assert result.parseoutcomes() == {"passed": 2, "quarantined": 2}
    assert result.ret == pytest.ExitCode.OK
    records = read(pytester.path / "r.jsonl")
    assert records["test_q.py::test_known_bad"]["outcome"] == "quarantined-failed"
    result.stdout.fnmatch_lines(["FAILED test_q.py::test_known_bad: quarantined: DYN-1 (alec) (owner: alec)"])


def test_fail_on_flaky_holds_when_gating_forgives_a_quarantined_failure(
    pytester: pytest.Pytester,
) -> None:
    setup(pytester, entry("test_q.py::test_known_bad"), entry("test_q.py::test_param[2]"))
    pytester.makepyfile(
        test_f=HEADER + "import itertools\nc = itertools.count()\n"
        "@pytest.mark.flaky\ndef test_f(): assert next(c)\n"
    )
    args = ("-p", "no:rerunfailures", "--dynamo-records=r.jsonl")
    assert pytester.runpytest(*args).ret == pytest.ExitCode.OK
    result = pytester.runpytest(*args, "--dynamo-fail-on-flaky")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    ends = [json.loads(line) for line in (pytester.path / "r.jsonl").read_text().splitlines()]
    assert [e["exit_status"] for e in ends if e["record"] == "run_end"] == [0, 1]
