"""pytest's progress, -v words and last line agree with the exit status:
quarantined and non-gating failures, flaky tests and expired quarantine
entries are outcome categories of their own, the line is red exactly when
the run fails; retries show as R under xdist; -q and -qq quiet the plugin's
sections; every retry runs under the test's timeout."""

from __future__ import annotations

import json
import re

import pytest

# A machine that runs every test: the GPU feature would skip framework tests here.
pytestmark = [
    pytest.mark.pre_merge,
    pytest.mark.gpu_0,
    pytest.mark.integration,
    pytest.mark.usefixtures("full_machine"),
]

HEADER = "import pytest\npytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]\n"
OURS = ("-p", "no:rerunfailures")
SUITE = (
    HEADER
    + """
import itertools
calls = itertools.count()

def test_known_bad(): assert False, "races on restart"
def test_fine(): pass
@pytest.mark.flaky(reruns=2)
def test_flaky(): assert next(calls) >= 1, "first attempt fails"
"""
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
COLOURS = {"31": "red", "32": "green", "33": "yellow"}


def entry(test: str, expires: str = "2999-12-31", ticket: str = "DYN-1") -> str:
    return (
        f'[[quarantine]]\ntest = "{test}"\nreason = "races on restart"\n'
        f'owner = "alec"\nticket = "{ticket}"\nexpires = {expires}\n'
    )


def quarantine(pytester: pytest.Pytester, *entries: str, strict: bool = False) -> None:
    pytester.makepyprojecttoml(
        f'[tool.pytest-dynamo.quarantine]\nfile = "quarantine.toml"\nstrict = {str(strict).lower()}\n'
    )
    (pytester.path / "quarantine.toml").write_text("".join(entries))


def last_line(result: pytest.RunResult) -> tuple[str, str]:
    """pytest's last line without colour codes, and its colour."""
    line = [line for line in result.outlines if line.strip()][-1]
    codes = re.match(r"\x1b\[([0-9;]*)m", line)
    assert codes is not None, f"no colour on the last line: {line!r}"
    colour = next(COLOURS[c] for c in codes.group(1).split(";") if c in COLOURS)
    words = ANSI.sub("", line).strip("= ")
    return re.sub(r" in [0-9.]+s.*$", "", words), colour


def test_a_quarantined_failure_is_counted_as_quarantined_and_not_red(pytester: pytest.Pytester) -> None:
    quarantine(pytester, entry("test_q.py::test_known_bad"))
    pytester.makepyfile(test_q=SUITE)
    result = pytester.runpytest(*OURS, "--color=yes")
    assert result.ret == pytest.ExitCode.OK
    assert last_line(result) == ("1 passed, 1 quarantined, 1 rerun, 1 flaky", "yellow")
    # Its traceback is still shown, in a section of its own.
    result.stdout.fnmatch_lines(
        [
            "*= failures that do not gate (the run passes for them) =*",
            "*_ test_known_bad _*",
            "*AssertionError: races on restart",
        ]
    )
    assert "= FAILURES =" not in ANSI.sub("", result.stdout.str())


def test_without_quarantine_the_same_failure_is_red(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_q=SUITE)
    result = pytester.runpytest(*OURS, "--color=yes")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert last_line(result) == ("1 failed, 1 passed, 1 rerun, 1 flaky", "red")


def test_a_clean_run_stays_green(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HEADER + "def test_a(): pass\n")
    result = pytester.runpytest(*OURS, "--color=yes")
    assert last_line(result) == ("1 passed", "green")


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["single", "xdist"])
def test_fail_on_flaky_makes_the_line_red_without_a_failure(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    pytester.makepyfile(
        test_f=HEADER + "import itertools\nc = itertools.count()\n"
        "@pytest.mark.flaky\ndef test_a(): assert next(c)\ndef test_b(): pass\n"
    )
    result = pytester.runpytest_subprocess(*OURS, "--color=yes", *xdist)
    assert result.ret == pytest.ExitCode.OK
    assert last_line(result) == ("1 passed, 1 rerun, 1 flaky", "yellow")
    result = pytester.runpytest_subprocess(*OURS, "--color=yes", "--dynamo-fail-on-flaky", *xdist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert last_line(result) == ("1 passed, 1 rerun, 1 flaky", "red")


@pytest.mark.parametrize(("strict", "status", "colour"), [(False, 0, "yellow"), (True, 1, "red")])
def test_an_expired_entry_is_counted_and_red_when_strict(
    pytester: pytest.Pytester, strict: bool, status: int, colour: str
) -> None:
    quarantine(pytester, entry("test_e.py::test_a", expires="2000-01-31"), strict=strict)
    pytester.makepyfile(test_e=HEADER + "def test_a(): pass\ndef test_b(): pass\n")
    result = pytester.runpytest(*OURS, "--color=yes")
    assert result.ret == status
    assert last_line(result) == ("2 passed, 1 expired", colour)


def test_a_pipelines_non_gating_failure_is_not_red(pytester: pytest.Pytester) -> None:
    # Security tests do not gate the nightly pipeline.
    pytester.makepyfile(
        "import pytest\n"
        "pytestmark = [pytest.mark.nightly, pytest.mark.gpu_0]\n"
        "@pytest.mark.security\ndef test_security(): assert False, 'a new CVE'\n"
        "@pytest.mark.unit\ndef test_unit(): pass\n"
    )
    result = pytester.runpytest(*OURS, "--color=yes", "--dynamo-pipeline=nightly")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert last_line(result) == ("1 passed, 1 non_gating", "yellow")


def test_verbose_names_each_outcome(pytester: pytest.Pytester) -> None:
    quarantine(pytester, entry("test_q.py::test_known_bad"))
    pytester.makepyfile(test_q=SUITE)
    result = pytester.runpytest(*OURS, "-v")
    result.stdout.fnmatch_lines(
        [
            "test_q.py::test_known_bad QUARANTINED*",
            "test_q.py::test_fine PASSED*",
            "test_q.py::test_flaky RERUN*",
            "test_q.py::test_flaky FLAKY*",
        ]
    )
    # -rA: the plugin's sections name them (pytest's short summary lists
    # only its own categories).
    result = pytester.runpytest(*OURS, "-rA")
    result.stdout.fnmatch_lines(
        [
            "FLAKY test_q.py::test_flaky (2 attempts; *): AssertionError: first attempt fails*",
            "QUARANTINED test_q.py::test_known_bad: quarantined-failed (DYN-1, *",
            "PASSED test_q.py::test_fine",
        ]
    )


def test_progress_letters(pytester: pytest.Pytester) -> None:
    quarantine(pytester, entry("test_q.py::test_known_bad"))
    pytester.makepyfile(test_q=SUITE)
    result = pytester.runpytest(*OURS)
    result.stdout.fnmatch_lines(["test_q.py Q.Rf *"])


def test_under_xdist_a_retried_attempt_shows_as_r_not_f(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x=HEADER + "import pathlib\n"
        "@pytest.mark.flaky(reruns=2)\n"
        "def test_a():\n"
        "    p = pathlib.Path('a.count'); n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "    p.write_text(str(n)); assert n >= 3\n"
        "def test_b(): pass\n"
    )
    result = pytester.runpytest_subprocess(*OURS, "-n", "2", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.OK
    [progress] = [line for line in result.outlines if "[100%]" in line]
    letters = progress.split("[")[0].strip()
    assert sorted(letters) == sorted(".RRf"), progress
    assert "F" not in letters
    result.stdout.fnmatch_lines(["*= 1 passed, 2 rerun, 1 flaky in *"])


def test_missing_hardware_is_an_error_in_the_plugins_sections(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNAMO_GPUS", "0")
    pytester.makepyfile(
        test_hw="import pytest\npytestmark = [pytest.mark.pre_merge, pytest.mark.integration]\n"
        "@pytest.mark.gpu_2\ndef test_big(): pass\n"
        "@pytest.mark.gpu_0\ndef test_small(): pass\n"
    )
    result = pytester.runpytest(*OURS, "--dynamo-on-missing-hardware=fail", "--dynamo-audit=off")
    result.assert_outcomes(passed=1, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*= gating failures =*", "ERROR test_hw.py::test_big (owner: unassigned)"])
    assert "FAILED test_hw.py::test_big" not in result.stdout.str()


# Quiet by default, and as quiet as pytest under -q and -qq.


def test_the_slowest_tests_are_opt_in(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HEADER + "import time\ndef test_a(): time.sleep(0.05)\n")
    assert "= slowest" not in pytester.runpytest(*OURS, "--dynamo-records=r.jsonl").stdout.str()
    result = pytester.runpytest(*OURS, "--dynamo-slowest=3", "-qq")
    result.stdout.fnmatch_lines(
        ["*= slowest 1 test =*", "*s test_the_slowest_tests_are_opt_in.py::test_a (stage: -)"]
    )


def test_passing_quarantined_tests_are_counted_not_listed(pytester: pytest.Pytester) -> None:
    quarantine(pytester, entry("test_q.py::test_*", ticket="DYN-9"))
    pytester.makepyfile(test_q=HEADER + "".join(f"def test_{n}(): pass\n" for n in range(5)))
    result = pytester.runpytest(*OURS)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["pytest-dynamo: 5 quarantined tests passed (remove their entries once they are fixed)"]
    )
    assert "QUARANTINED" not in result.stdout.str()


def run_quietly(pytester: pytest.Pytester, *args: str) -> str:
    quarantine(pytester, entry("test_q.py::test_known_bad"), entry("test_q.py::test_fine", ticket="DYN-2"))
    pytester.makepyfile(test_q=SUITE)
    result = pytester.runpytest(*OURS, "--dynamo-records=r.jsonl", *args)
    assert result.ret == pytest.ExitCode.OK
    return result.stdout.str()


@pytest.mark.parametrize(
    ("flags", "shown", "hidden"),
    [
        (
            [],
            [
                "FLAKY test_q.py::test_flaky",
                "QUARANTINED test_q.py::test_known_bad",
                "pytest-dynamo: 1 quarantined test passed",
                "test records (run",
            ],
            [],
        ),
        (
            ["-q"],
            ["FLAKY test_q.py::test_flaky", "QUARANTINED test_q.py::test_known_bad", "1 flaky test; the run"],
            ["quarantined test passed", "test records (run"],
        ),
        (
            ["-qq"],
            [
                "pytest-dynamo: 1 flaky test; the run passes",
                "pytest-dynamo: 1 quarantined test failed",
                "pytest-dynamo: 1 non-gating failure(s); the run passes",
            ],
            [
                "FLAKY test_q.py",
                "QUARANTINED test_q.py",
                "FAILED test_q.py::test_known_bad",
                "= quarantine =",
                "quarantined test passed",
                "records",
            ],
        ),
    ],
    ids=["default", "-q", "-qq"],
)
def test_quiet_flags_quiet_the_plugins_sections(
    pytester: pytest.Pytester, flags: list[str], shown: list[str], hidden: list[str]
) -> None:
    out = run_quietly(pytester, *flags)
    for text in shown:
        assert text in out, text
    for text in hidden:
        assert text not in out, text


# Retries keep the test's timeout (pytest-timeout).

TIMED = (
    HEADER
    + """
import pathlib, time

@pytest.mark.timeout(0.5)
@pytest.mark.flaky(reruns=1)
def test_hangs():
    path = pathlib.Path("attempts")
    path.write_text(path.read_text() + "x" if path.exists() else "x")
    time.sleep(3)
"""
)


@pytest.mark.skipif(not hasattr(__import__("signal"), "setitimer"), reason="pytest-timeout's signal method")
@pytest.mark.parametrize("method", ["signal"])
def test_every_retry_attempt_runs_under_the_timeout(pytester: pytest.Pytester, method: str) -> None:
    pytester.makepyfile(test_t=TIMED)
    result = pytester.runpytest_subprocess(*OURS, f"--timeout-method={method}", "--dynamo-records=r.jsonl")
    # Without a timer on the retry, the second attempt would sleep its 3 s and pass.
    assert result.parseoutcomes() == {"failed": 1, "rerun": 1}
    assert (pytester.path / "attempts").read_text() == "xx"
    result.stdout.fnmatch_lines(["*Failed: Timeout*"])
    lines = (pytester.path / "r.jsonl").read_text().splitlines()
    [record] = [r for r in map(json.loads, lines) if r["record"] == "test"]
    assert [a["outcome"] for a in record["attempts"]] == ["failed", "failed"]
    assert "Timeout" in record["reason"]


def test_a_timeout_on_the_call_only_holds_on_every_attempt(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_t=TIMED.replace("timeout(0.5)", "timeout(0.5, func_only=True)"))
    result = pytester.runpytest_subprocess(*OURS)
    assert result.parseoutcomes() == {"failed": 1, "rerun": 1}
    assert (pytester.path / "attempts").read_text() == "xx"


def test_retries_work_without_pytest_timeout(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_r=HEADER
        + "import itertools\nc = itertools.count()\n@pytest.mark.flaky\ndef test_a(): assert next(c)\n"
    )
    result = pytester.runpytest_subprocess(*OURS, "-p", "no:timeout")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*1 rerun, 1 flaky*"])
