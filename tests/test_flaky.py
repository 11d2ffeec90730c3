"""Retries of tests marked flaky: every attempt sequence, what is set up again
and what is not, --dynamo-fail-on-flaky, and pytest-rerunfailures present
and absent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# A machine that runs every test: the GPU feature would skip framework tests here.
pytestmark = [
    pytest.mark.pre_merge,
    pytest.mark.gpu_0,
    pytest.mark.integration,
    pytest.mark.usefixtures("full_machine"),
]

HEADER = "import pytest\npytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]\n"
OURS = ("-p", "no:rerunfailures", "--dynamo-records=r.jsonl")

#: Tests that fail on the attempts listed in FAIL_ON (1-based), counting
#: attempts in a file so every process sees the same count.
SEQUENCES = (
    HEADER
    + """
import json, pathlib

def attempt(name):
    path = pathlib.Path(name + ".count")
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n

@pytest.fixture
def fragile(request):
    if attempt("fixture-" + request.node.name) == 1:
        raise RuntimeError("port busy")

@pytest.mark.flaky(reruns=2)
def test_fail_then_pass():
    assert attempt("fail_then_pass") >= 2, "timeout"

@pytest.mark.flaky(reruns=2)
def test_always_fails():
    attempt("always_fails")
    assert False, "broken"

@pytest.mark.flaky(reruns=3)
def test_fail_twice_then_pass():
    assert attempt("fail_twice") >= 3

@pytest.mark.flaky(reruns=2)
def test_setup_error_then_pass(fragile):
    attempt("setup_error_then_pass")

@pytest.mark.flaky(reruns=2)
def test_passes_first():
    attempt("passes_first")

@pytest.mark.flaky(reruns=0)
def test_no_reruns():
    attempt("no_reruns")
    assert False

@pytest.mark.flaky(2)
@pytest.mark.xfail(reason="known")
def test_xfail_is_not_retried():
    attempt("xfail")
    assert False

@pytest.mark.flaky
def test_default_reruns():
    attempt("default")
    assert False
"""
)


def read(path: Path) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["nodeid"].split("::")[-1]: r for r in lines if r["record"] == "test"}


def count(pytester: pytest.Pytester, name: str) -> int:
    return int((pytester.path / f"{name}.count").read_text())


def test_every_attempt_sequence(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seq=SEQUENCES)
    result = pytester.runpytest(*OURS)
    # A test that passed on a retry counts as flaky, not passed.
    result.assert_outcomes(passed=1, failed=3, xfailed=1)
    assert result.parseoutcomes()["flaky"] == 3
    records = read(pytester.path / "r.jsonl")
    sequences = {
        name: (r["outcome"], [a["outcome"] for a in r["attempts"]], r["reason"])
        for name, r in records.items()
    }
    assert sequences == {
        "test_fail_then_pass": ("flaky", ["failed", "passed"], "AssertionError: timeout"),
        "test_always_fails": ("failed", ["failed"] * 3, "AssertionError: broken"),
        "test_fail_twice_then_pass": (
            "flaky",
            ["failed", "failed", "passed"],
            "AssertionError: assert 1 >= 3",
        ),
        "test_setup_error_then_pass": ("flaky", ["error", "passed"], "RuntimeError: port busy"),
        "test_passes_first": ("passed", ["passed"], None),
        "test_no_reruns": ("failed", ["failed"], "assert False"),
        "test_xfail_is_not_retried": ("xfailed", ["skipped"], "known"),
        "test_default_reruns": ("failed", ["failed"] * 3, "assert False"),
    }
    assert count(pytester, "always_fails") == 3
    assert count(pytester, "no_reruns") == 1
    assert count(pytester, "xfail") == 1
    assert count(pytester, "default") == 3
    # Every attempt's phases are timed.
    for attempt in records["test_fail_twice_then_pass"]["attempts"]:
        assert attempt["setup_s"] > 0 and attempt["call_s"] > 0 and attempt["teardown_s"] > 0
    # The run fails for the real failures only; flaky ones are listed.
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*= flaky tests (passed on a retry) =*",
            "FLAKY test_seq.py::test_fail_then_pass (2 attempts; owner: unassigned): AssertionError: timeout",
            "FLAKY test_seq.py::test_fail_twice_then_pass (3 attempts; *",
            "FLAKY test_seq.py::test_setup_error_then_pass (2 attempts; *): RuntimeError: port busy",
            "pytest-dynamo: 3 flaky tests; the run passes",
        ]
    )
    result.stdout.fnmatch_lines(["*= 3 failed, 1 passed, 1 xfailed, 8 rerun, 3 flaky in *"])


@pytest.mark.parametrize("how", [["--dynamo-reruns=4"], ["-o", "dynamo_reruns=4"]])
def test_the_default_count_comes_from_the_flag_or_ini(pytester: pytest.Pytester, how: list[str]) -> None:
    pytester.makepyfile(HEADER + "@pytest.mark.flaky\ndef test_a(): assert False\n")
    pytester.runpytest(*OURS, *how).assert_outcomes(failed=1)
    [record] = read(pytester.path / "r.jsonl").values()
    assert len(record["attempts"]) == 5


def test_a_flaky_run_passes_and_fail_on_flaky_fails_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER + "import itertools\nc = itertools.count()\n@pytest.mark.flaky\ndef test_a(): assert next(c)\n"
    )
    assert pytester.runpytest(*OURS).ret == pytest.ExitCode.OK
    result = pytester.runpytest(*OURS, "--dynamo-fail-on-flaky")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["pytest-dynamo: 1 flaky test; the run fails (dynamo_fail_on_flaky)"])
    ends = [json.loads(line) for line in (pytester.path / "r.jsonl").read_text().splitlines()]
    assert [e["exit_status"] for e in ends if e["record"] == "run_end"] == [0, 1]
    pytester.makeini("[pytest]\ndynamo_fail_on_flaky = true\n")
    assert pytester.runpytest(*OURS).ret == pytest.ExitCode.TESTS_FAILED


def test_only_function_scoped_setup_runs_again(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
        setups = {"session": 0, "module": 0, "class": 0, "function": 0}
        teardowns = {"module": 0}

        @pytest.fixture(scope="session")
        def session_fixture():
            setups["session"] += 1

        @pytest.fixture(scope="module")
        def module_fixture():
            setups["module"] += 1
            yield
            teardowns["module"] += 1

        @pytest.fixture(scope="class")
        def class_fixture():
            setups["class"] += 1

        @pytest.fixture
        def function_fixture():
            setups["function"] += 1
            return []

        class TestRetried:
            @pytest.mark.flaky(reruns=3)
            def test_retried(self, session_fixture, module_fixture, class_fixture, function_fixture):
                assert function_fixture == [], "a fresh function fixture each attempt"
                function_fixture.append(1)
                assert getattr(self, "seen", False) is False, "a fresh instance each attempt"
                self.seen = True
                assert setups["function"] == 3

            def test_after(self, module_fixture, class_fixture):
                assert setups == {"session": 1, "module": 1, "class": 1, "function": 3}
                assert teardowns["module"] == 0

        def test_module_torn_down_once_at_the_end(module_fixture):
            pass
        """.replace("\n        ", "\n")
    )
    assert pytester.runpytest(*OURS).parseoutcomes() == {"passed": 2, "rerun": 2, "flaky": 1}
    assert read(pytester.path / "r.jsonl")["test_retried"]["outcome"] == "flaky"


def test_retries_log_their_attempts_with_the_flow_id(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER + "import itertools\nc = itertools.count()\n@pytest.mark.flaky\ndef test_a(): assert next(c)\n"
    )
    result = pytester.runpytest(*OURS, "--log-cli-level=WARNING")
    flow_id = read(pytester.path / "r.jsonl")["test_a"]["flow_id"]
    result.stdout.fnmatch_lines(
        [f"WARNING  pytest_dynamo.flaky:* flaky - {flow_id} - attempt 1 of 3 failed *::test_a: retrying"]
    )


def test_stop_after_first_failure_still_retries(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER + "import itertools\nc = itertools.count()\n"
        "@pytest.mark.flaky\ndef test_a(): assert next(c)\ndef test_b(): pass\n"
    )
    assert pytester.runpytest(*OURS, "-x").parseoutcomes() == {"passed": 1, "rerun": 1, "flaky": 1}


@pytest.mark.parametrize(
    ("mark", "message"),
    [
        ("flaky(reruns=-1)", "reruns must be a whole number, 0 or more and at most 100, not -1"),
        ("flaky(reruns='2')", "reruns must be a whole number"),
        ("flaky(reruns_delay=1)", "it is an option of pytest-rerunfailures"),
        ("flaky(max_runs=3)", "pytest-dynamo's retries take only reruns=N"),
    ],
)
def test_a_marker_it_cannot_use_is_a_usage_error(pytester: pytest.Pytester, mark: str, message: str) -> None:
    pytester.makepyfile(test_bad=HEADER + f"@pytest.mark.{mark}\ndef test_a(): pass\n")
    result = pytester.runpytest("-p", "no:rerunfailures")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*1 test(s) carry a flaky marker it cannot use:", f"  test_bad.py::test_a: *{message}*"]
    )


# pytest-rerunfailures, in a real process as users run it.

RERUNFAILURES = (
    HEADER
    + """
import pathlib

def attempt(name):
    path = pathlib.Path(name + ".count")
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n

@pytest.mark.flaky(reruns=3, reruns_delay=0)
def test_marked():
    assert attempt("marked") >= 3

def test_plain():
    assert attempt("plain") >= 2
"""
)


def test_with_rerunfailures_its_reruns_are_the_attempts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_rr=RERUNFAILURES)
    result = pytester.runpytest_subprocess("--dynamo-records=r.jsonl", "--reruns=1")
    assert result.parseoutcomes() == {"rerun": 3, "flaky": 2}
    # Retried by rerunfailures alone: no attempt on top of its own.
    assert count(pytester, "marked") == 3
    assert count(pytester, "plain") == 2
    records = read(pytester.path / "r.jsonl")
    assert [a["outcome"] for a in records["test_marked"]["attempts"]] == ["failed", "failed", "passed"]
    assert records["test_marked"]["outcome"] == "flaky"
    assert records["test_plain"]["outcome"] == "flaky"
    result.stdout.fnmatch_lines(["FLAKY test_rr.py::test_marked (3 attempts; *"])


def test_with_rerunfailures_an_exhausted_test_fails_with_every_attempt(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_rr=HEADER + "@pytest.mark.flaky(reruns=2)\ndef test_a(): assert False, 'always'\n"
    )
    result = pytester.runpytest_subprocess("--dynamo-records=r.jsonl")
    result.assert_outcomes(failed=1)
    record = read(pytester.path / "r.jsonl")["test_a"]
    assert (record["outcome"], len(record["attempts"])) == ("failed", 3)
    assert record["reason"] == "AssertionError: always"


def test_without_rerunfailures_the_plugin_retries(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_rr=RERUNFAILURES.replace(", reruns_delay=0", ""))
    result = pytester.runpytest_subprocess("-p", "no:rerunfailures", "--dynamo-records=r.jsonl")
    assert result.parseoutcomes() == {"failed": 1, "rerun": 2, "flaky": 1}
    assert count(pytester, "marked") == 3
    assert count(pytester, "plain") == 1
    records = read(pytester.path / "r.jsonl")
    assert [a["outcome"] for a in records["test_marked"]["attempts"]] == ["failed", "failed", "passed"]
    assert records["test_plain"]["outcome"] == "failed"


def test_retries_under_xdist_reach_the_controllers_records(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seq=SEQUENCES)
    result = pytester.runpytest_subprocess("-n", "2", *OURS)
    result.assert_outcomes(passed=1, failed=3, xfailed=1)
    assert result.parseoutcomes()["flaky"] == 3
    records = read(pytester.path / "r.jsonl")
    attempts = [a["outcome"] for a in records["test_setup_error_then_pass"]["attempts"]]
    assert (records["test_setup_error_then_pass"]["outcome"], attempts) == ("flaky", ["error", "passed"])
    assert len(records["test_always_fails"]["attempts"]) == 3
    assert {r["worker"] for r in records.values()} <= {"gw0", "gw1"}


def test_the_facts_of_a_collection_are_read_by_name(pytester: pytest.Pytester) -> None:
    """``Batch.record_facts`` and ``Batch.flaky_problems`` hand Python named
    objects, not tuples read by position."""
    pytester.makepyprojecttoml('[tool.pytest-dynamo.quarantine]\nfile = "quarantine.toml"\n')
    pytester.path.joinpath("quarantine.toml").write_text(
        '[[quarantine]]\ntest = "test_named.py::test_held"\nreason = "r"\nowner = "o"\n'
        'ticket = "T-9"\nexpires = 2099-01-01\n'
    )
    pytester.makeconftest(
        """
        import pytest
        from pytest_dynamo import _collect, _state

        @pytest.hookimpl(trylast=True)
        def pytest_collection_finish(session):
            config = session.config
            batch = _state.batch(config)
            policy = _state.engine(config).run_policy(str(config.rootpath))
            ids = [item.nodeid for item in session.items]
            facts = batch.record_facts(policy, ids, None, 3, True)
            print("RERUNS", sorted(facts.reruns.items()))
            print("QUARANTINED", [(q.nodeid, q.reason) for q in facts.quarantined])
            print("PROBLEMS", facts.problems, "TABLE", len(facts.table))
            other = batch.flaky_problems("flaky")
            print("OTHER", [(p.nodeid, p.message.split(":")[0]) for p in other])
            # A selection reads its own batch's positions only.
            engine = _state.engine(config)
            selection = batch.select(engine.pipelines(), None, None, None)
            again = engine.ingest_items(session.items, _collect.registered_markers(config))
            try:
                again.record_facts(policy, ids, selection, 3, True)
            except ValueError as err:
                print("ANOTHER BATCH", err)
        """
    )
    pytester.makepyfile(
        test_named=HEADER
        + "@pytest.mark.flaky(reruns=5)\ndef test_retried(): pass\n"
        + "def test_held(): pass\n"
    )
    result = pytester.runpytest("--co", "-q", "-s", "-p", "no:rerunfailures")
    result.stdout.fnmatch_lines(
        [
            "RERUNS [('test_named.py::test_retried', 5)]",
            "QUARANTINED [('test_named.py::test_held', 'quarantined: T-9 (o)')]",
            "PROBLEMS [] TABLE 2",
            "OTHER [('test_named.py::test_retried', '@pytest.mark.flaky(reruns=5)')]",
            "ANOTHER BATCH the selection was made over another batch: *",
        ]
    )
