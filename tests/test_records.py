"""Records: the lines of each kind, every outcome, the in-memory records, JUnit
properties, the durations file, xdist, concurrent appenders, interrupted runs."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from pytest_dynamo import _flow
from pytest_dynamo._core import Recorder

# A machine that runs every test: the GPU feature would skip framework tests here.
pytestmark = [
    pytest.mark.pre_merge,
    pytest.mark.gpu_0,
    pytest.mark.integration,
    pytest.mark.usefixtures("full_machine"),
]

HEADER = "import pytest\npytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]\n"
NO_RETRIER = ("-p", "no:rerunfailures")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_nodeid(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["nodeid"]: r for r in records if r["record"] == "test"}


OUTCOMES = (
    HEADER
    + """
import os

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

@pytest.fixture
def leaky():
    yield
    raise RuntimeError("teardown leaked")

def test_passed(): pass
def test_failed(): assert 1 == 2, "numbers differ"
def test_setup_error(broken): pass
def test_teardown_error(leaky): pass
@pytest.mark.skip(reason="needs a GPU")
def test_skipped(): pass
def test_skipped_inside(): pytest.skip("not today")
@pytest.mark.xfail(reason="bug 7")
def test_xfailed(): assert False
@pytest.mark.xfail(reason="bug 8")
def test_xpassed(): pass
@pytest.mark.xfail(reason="bug 9", strict=True)
def test_xpass_strict(): pass
@pytest.mark.vllm
@pytest.mark.kvbm
def test_markers(record_property):
    record_property("dynamo_gpus_used", 2)
    record_property("dynamo_gpu_peak_mib", 1536.5)
    record_property(
        "dynamo_metric", {"name": "ttft", "value": 0.25, "unit": "s", "higher_is_better": False}
    )
"""
)


@pytest.fixture
def outcomes(pytester: pytest.Pytester) -> tuple[pytest.RunResult, list[dict[str, Any]]]:
    pytester.makepyfile(test_outcomes=OUTCOMES)
    result = pytester.runpytest("--dynamo-records=out/records.jsonl", *NO_RETRIER)
    return result, read(pytester.path / "out" / "records.jsonl")


def test_every_outcome_is_recorded(outcomes: tuple[pytest.RunResult, list[dict[str, Any]]]) -> None:
    result, records = outcomes
    result.assert_outcomes(passed=3, failed=2, errors=2, skipped=2, xfailed=1, xpassed=1)
    by_name = {nodeid.split("::")[1]: r for nodeid, r in by_nodeid(records).items()}
    expected = {
        "test_passed": ("passed", None),
        "test_failed": ("failed", "AssertionError: numbers differ"),
        "test_setup_error": ("error", "RuntimeError: fixture broke"),
        "test_teardown_error": ("error", "RuntimeError: teardown leaked"),
        "test_skipped": ("skipped", "needs a GPU"),
        "test_skipped_inside": ("skipped", "not today"),
        "test_xfailed": ("xfailed", "bug 7"),
        "test_xpassed": ("xpassed", "bug 8"),
        "test_xpass_strict": ("failed", "[XPASS(strict)] bug 9"),
        "test_markers": ("passed", None),
    }
    assert {name: (r["outcome"], r["reason"]) for name, r in by_name.items()} == expected
    attempts = {name: [a["outcome"] for a in r["attempts"]] for name, r in by_name.items()}
    assert attempts["test_setup_error"] == ["error"]
    assert attempts["test_teardown_error"] == ["error"]
    assert attempts["test_skipped"] == ["skipped"]
    assert attempts["test_xfailed"] == ["skipped"]
    assert attempts["test_xpassed"] == ["passed"]


def test_a_test_line_has_every_field(outcomes: tuple[pytest.RunResult, list[dict[str, Any]]]) -> None:
    _, records = outcomes
    line = by_nodeid(records)["test_outcomes.py::test_markers"]
    assert list(line) == [
        "record", "schema", "run_id", "nodeid", "test_id", "outcome", "attempts", "duration_s",
        "markers", "reason", "gpus_used", "gpu_peak_mib", "timeout_s", "worker", "flow_id", "stage", "gating",
        "owner", "metrics", "quarantine", "finished_at",
    ]  # fmt: skip
    assert line["schema"] == 1
    assert line["test_id"] == hashlib.sha256(b"test_outcomes.py::test_markers").hexdigest()
    assert line["markers"] == {
        "lifecycle": ["pre_merge"],
        "hardware": ["gpu_0"],
        "type": ["unit"],
        "framework": ["vllm"],
        "component": ["kvbm"],
    }
    assert line["gpus_used"] == 2
    assert line["gpu_peak_mib"] == 1536.5
    assert line["metrics"] == [{"name": "ttft", "value": 0.25, "unit": "s", "higher_is_better": False}]
    assert line["worker"] is None and line["stage"] is None and line["owner"] is None
    assert line["gating"] is True and line["quarantine"] is None
    [attempt] = line["attempts"]
    assert set(attempt) == {"outcome", "setup_s", "call_s", "teardown_s"}
    total = attempt["setup_s"] + attempt["call_s"] + attempt["teardown_s"]
    assert line["duration_s"] == pytest.approx(total, abs=2e-6)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", line["flow_id"])
    assert RFC3339.match(line["finished_at"])


def test_run_start_and_end_frame_the_tests(
    outcomes: tuple[pytest.RunResult, list[dict[str, Any]]],
) -> None:
    _, records = outcomes
    start, *tests, end = records
    assert start["record"] == "run_start" and end["record"] == "run_end"
    assert {r["record"] for r in tests} == {"test"}
    assert len({r["run_id"] for r in records}) == 1
    assert re.fullmatch(r"[0-9a-f]{32}", start["run_id"])
    assert list(start) == [
        "record", "schema", "run_id", "pipeline", "stage", "framework", "gpus", "git", "host",
        "plugin_version", "started_at",
    ]  # fmt: skip
    assert set(start["git"]) == {"commit", "branch"}
    assert start["host"] and RFC3339.match(start["started_at"])
    assert end["exit_status"] == 1
    assert end["counts"] == {
        "passed": 2, "failed": 2, "error": 2, "skipped": 2, "xfailed": 1, "xpassed": 1,
        "flaky": 0, "quarantined-failed": 0,
    }  # fmt: skip
    assert end["wall_s"] > 0 and RFC3339.match(end["finished_at"])


STASH_PROBE = """
import json, pytest
from pytest_dynamo import _state

@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    stash = session.config.stash
    with open("stash.json", "w") as f:
        json.dump({"tests": stash[_state.TEST_RECORDS], "end": stash[_state.RUN_END]}, f)
"""


def test_records_are_kept_in_memory_without_a_file(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(STASH_PROBE)
    pytester.makepyfile(HEADER + "def test_a(): pass\ndef test_b(): assert 0\n")
    pytester.runpytest(*NO_RETRIER).assert_outcomes(passed=1, failed=1)
    probe = json.loads((pytester.path / "stash.json").read_text())
    tests = [json.loads(line) for line in probe["tests"]]
    assert [(t["nodeid"], t["outcome"]) for t in tests] == [
        ("test_records_are_kept_in_memory_without_a_file.py::test_a", "passed"),
        ("test_records_are_kept_in_memory_without_a_file.py::test_b", "failed"),
    ]
    end = json.loads(probe["end"])
    assert end["record"] == "run_end" and end["exit_status"] == 1
    assert not list(pytester.path.glob("*.jsonl"))


def test_the_run_context_and_inventory_reach_the_run_start(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from pytest_dynamo import _state

        def pytest_configure(config):
            config.stash[_state.RUN_CONTEXT] = {
                "pipeline": "pre_merge", "stage": "unit", "framework": "vllm",
            }
            config.stash[_state.INVENTORY] = {"count": 1, "gpus": [{"name": "H100"}]}
        """
    )
    pytester.makepyfile(test_context=HEADER + "def test_a(): pass\n")
    # The test's stage comes from the selection, in the core; the run-start
    # line from the run's context.
    result = pytester.runpytest(
        "--dynamo-records=r.jsonl", "--dynamo-pipeline=pre_merge", "--dynamo-stage=unit"
    )
    result.assert_outcomes(passed=1)
    start, test, _ = read(pytester.path / "r.jsonl")
    assert (start["pipeline"], start["stage"], start["framework"]) == ("pre_merge", "unit", "vllm")
    assert start["gpus"] == {"count": 1, "gpus": [{"name": "H100"}]}
    assert test["stage"] == "unit"


def test_the_ci_environment_names_the_commit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_SHA", "a" * 40)
    monkeypatch.setenv("GITHUB_HEAD_REF", "")
    monkeypatch.setenv("GITHUB_REF_NAME", "main")
    pytester.makepyfile(HEADER + "def test_a(): pass\n")
    pytester.runpytest("--dynamo-records=r.jsonl")
    start = read(pytester.path / "r.jsonl")[0]
    assert start["git"] == {"commit": "a" * 40, "branch": "main"}


def test_flow_ids_of_both_languages_are_version_4_uuids() -> None:
    ids = {_flow.new_flow_id() for _ in range(100)}
    assert len(ids) == 100
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


CI_GIT_VARS = ("GITHUB_SHA", "CI_COMMIT_SHA", "GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME")


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    identity = ("-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main")
    return subprocess.run(["git", *identity, *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture
def no_ci_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commit and branch come from git, not from a CI's variables."""
    for var in (*CI_GIT_VARS, "GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(var, raising=False)


def committed(repo: Path, *init: str) -> str:
    """A repository in ``repo`` with one commit on main; its sha."""
    made = git(repo, "init", "-q", *init)
    if made.returncode != 0:
        pytest.skip(f"this git cannot `git init {' '.join(init)}`: {made.stderr.strip()}")
    assert git(repo, "commit", "-q", "--allow-empty", "-m", "first").returncode == 0
    return git(repo, "rev-parse", "HEAD").stdout.strip()


@pytest.mark.usefixtures("no_ci_git")
def test_a_reftable_repository_names_its_commit_and_branch(pytester: pytest.Pytester) -> None:
    # reftable (git 2.45+) keeps no refs/heads files: reading .git by hand found nothing.
    sha = committed(pytester.path, "--ref-format=reftable")
    pytester.makepyfile(HEADER + "def test_a(): pass\n")
    pytester.runpytest("--dynamo-records=r.jsonl").assert_outcomes(passed=1)
    start = read(pytester.path / "r.jsonl")[0]
    assert start["git"] == {"commit": sha, "branch": "main"}


@pytest.mark.usefixtures("no_ci_git")
def test_git_dir_names_the_repository(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sha = committed(elsewhere)
    git(elsewhere, "checkout", "-q", "-b", "release")
    monkeypatch.setenv("GIT_DIR", str(elsewhere / ".git"))
    pytester.makepyfile(HEADER + "def test_a(): pass\n")
    pytester.runpytest("--dynamo-records=r.jsonl").assert_outcomes(passed=1)
    start = read(pytester.path / "r.jsonl")[0]
    assert start["git"] == {"commit": sha, "branch": "release"}


@pytest.mark.usefixtures("no_ci_git")
def test_a_missing_git_is_stated_in_the_record(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed(pytester.path)
    pytester.makepyfile(HEADER + "def test_a(): pass\n")
    monkeypatch.setenv("PATH", str(pytester.mkdir("empty-bin")))
    result = pytester.runpytest("--dynamo-records=r.jsonl")
    result.assert_outcomes(passed=1)
    start = read(pytester.path / "r.jsonl")[0]
    assert start["git"]["commit"] is None and start["git"]["branch"] is None
    assert "git was not found on PATH" in start["git"]["unavailable"]


def test_the_ini_option_names_the_file_relative_to_the_rootdir(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ndynamo_records = ci/records.jsonl\n")
    pytester.makepyfile(HEADER + "def test_a(): pass\n")
    sub = pytester.mkdir("sub")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        pytester.runpytest(str(pytester.path)).assert_outcomes(passed=1)
    assert len(read(pytester.path / "ci" / "records.jsonl")) == 3
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["pytest-dynamo: 1 test record (run *) appended to *records.jsonl"])
    assert len(read(pytester.path / "ci" / "records.jsonl")) == 6


def test_an_unwritable_records_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HEADER + "def test_a(): pass\n")
    (pytester.path / "blocker").write_text("")
    result = pytester.runpytest("--dynamo-records=blocker/r.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot open the records file*", "*fix: *"])
    assert "Traceback" not in result.stderr.str()


def test_collect_only_writes_no_records(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HEADER + "def test_a(): pass\n")
    pytester.runpytest("--collect-only", "--dynamo-records=r.jsonl")
    assert (pytester.path / "r.jsonl").read_text() == ""


def test_junit_xml_carries_markers_and_attempts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
        import itertools
        calls = itertools.count()

        @pytest.mark.vllm
        def test_plain(): pass

        @pytest.mark.flaky(reruns=2)
        def test_flaky():
            assert next(calls) > 0
        """.replace("\n        ", "\n")
    )
    result = pytester.runpytest("--junitxml=j.xml", *NO_RETRIER)
    assert result.parseoutcomes() == {"passed": 1, "rerun": 1, "flaky": 1}
    from xml.etree import ElementTree

    cases = ElementTree.parse(pytester.path / "j.xml").getroot().iter("testcase")
    props = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")} for case in cases
    }
    assert set(props) == {"test_plain", "test_flaky"}  # one testcase per test, retries included
    plain = props["test_plain"]
    assert plain["dynamo_outcome"] == "passed"
    assert plain["dynamo_markers_framework"] == "vllm"
    assert plain["dynamo_markers_lifecycle"] == "pre_merge"
    assert re.fullmatch(r"passed \(setup \S+s, call \S+s, teardown \S+s\)", plain["dynamo_attempt_1"])
    assert "dynamo_facts" not in plain
    flaky = props["test_flaky"]
    assert flaky["dynamo_outcome"] == "flaky"
    assert flaky["dynamo_attempt_1"].startswith("failed (")
    assert flaky["dynamo_attempt_2"].startswith("passed (")
    assert "dynamo_attempt_3" not in flaky


def test_the_durations_file_is_merged_in_pytest_split_format(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_d=HEADER + "def test_a(): pass\ndef test_b(): pass\n")
    durations = pytester.path / ".test_durations"
    durations.write_text(json.dumps({"test_d.py::test_a": 99.0, "other.py::test_z": 1.5}))
    pytester.runpytest("--dynamo-records=r.jsonl", "--dynamo-durations=.test_durations")
    text = durations.read_text()
    data = json.loads(text)
    assert list(data) == sorted(data) == ["other.py::test_z", "test_d.py::test_a", "test_d.py::test_b"]
    assert data["other.py::test_z"] == 1.5
    assert data["test_d.py::test_a"] < 1.0
    assert text.startswith('{\n    "other.py::test_z": 1.5,')
    records = by_nodeid(read(pytester.path / "r.jsonl"))
    assert data["test_d.py::test_b"] == pytest.approx(records["test_d.py::test_b"]["duration_s"])


def test_without_records_the_durations_file_is_only_read(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HEADER + "def test_a(): pass\n")
    durations = pytester.path / ".test_durations"
    durations.write_text("{}")
    pytester.runpytest("--dynamo-durations=.test_durations").assert_outcomes(passed=1)
    assert durations.read_text() == "{}"


def test_a_corrupt_durations_file_stops_the_run_before_any_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HEADER + "def test_a(): pass\n")
    (pytester.path / ".test_durations").write_text("{oops")
    result = pytester.runpytest("--dynamo-records=r.jsonl", "--dynamo-durations=.test_durations")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*.test_durations: not a durations file*", "*fix: delete the file*"])


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--dynamo-reruns", "-1", "-1 is out of range: a whole number from 0 to 100"),
        ("--dynamo-slowest", "many", "'many' is not a whole number from 0 to 100000"),
    ],
)
def test_bad_counts_are_usage_errors(
    pytester: pytest.Pytester, option: str, value: str, message: str
) -> None:
    pytester.makepyfile(HEADER + "def test_a(): pass\n")
    result = pytester.runpytest(f"{option}={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}={value}: {message}*"])


def test_the_summary_lists_the_slowest_tests_with_their_stage(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_slow=HEADER + "import time\ndef test_slow(): time.sleep(0.2)\ndef test_fast(): pass\n"
    )
    result = pytester.runpytest("--dynamo-slowest=1", "--dynamo-pipeline=pre_merge")
    result.stdout.fnmatch_lines(["*= slowest 1 test =*", "*0.2?s test_slow.py::test_slow (stage: unit)"])
    assert "test_fast (stage" not in result.stdout.str()
    assert "= slowest" not in pytester.runpytest("--dynamo-slowest=0").stdout.str()


def test_rust_log_records_reach_caplog(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    run_id = "0" * 32
    caplog.set_level(logging.WARNING, logger="pytest_dynamo")
    quiet = Recorder(run_id, str(tmp_path / "a.jsonl"))
    quiet.begin(str(tmp_path), "host")
    quiet.start()
    assert not [r for r in caplog.records if r.name.startswith("pytest_dynamo")]
    # A level set later is seen: the core does not cache Python's levels.
    caplog.set_level(logging.INFO, logger="pytest_dynamo")
    heard = Recorder(run_id, str(tmp_path / "b.jsonl"))
    heard.begin(str(tmp_path), "host")
    heard.start()
    [record] = [r for r in caplog.records if r.name == "pytest_dynamo.records"]
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        f"records - {run_id} - started appending records to {tmp_path / 'b.jsonl'}"
    )


# Runs in real processes from here on.


def test_xdist_records_are_complete_and_unduplicated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x=HEADER
        + """
        import os

        @pytest.mark.parametrize("i", range(40))
        def test_many(i):
            assert i != 7

        def test_crash():
            os._exit(3)
        """.replace("\n        ", "\n")
    )
    result = pytester.runpytest_subprocess("-n", "2", "--dynamo-records=r.jsonl", *NO_RETRIER)
    result.assert_outcomes(passed=39, failed=2)
    records = read(pytester.path / "r.jsonl")
    assert [r["record"] for r in records].count("run_start") == 1
    assert [r["record"] for r in records].count("run_end") == 1
    tests = [r for r in records if r["record"] == "test"]
    nodeids = [r["nodeid"] for r in tests]
    assert len(nodeids) == len(set(nodeids)) == 41
    assert {r["worker"] for r in tests} == {"gw0", "gw1"}
    crash = by_nodeid(records)["test_x.py::test_crash"]
    assert crash["outcome"] == "failed"
    assert "crashed" in crash["reason"]
    assert crash["markers"]["type"] == ["unit"]
    assert by_nodeid(records)["test_x.py::test_many[7]"]["outcome"] == "failed"


# Flaky on a loaded machine: pytest-rerunfailures now and then does not
# reschedule a crashed worker's test at all (one attempt, no rerun), which
# is its behaviour, not ours; what this test checks holds whenever it does.
@pytest.mark.flaky(reruns=2)
@pytest.mark.parametrize("how", ["os._exit(3)", "os.kill(os.getpid(), 9)"])
def test_a_crashing_test_keeps_every_attempt_under_xdist_and_reruns(
    pytester: pytest.Pytester, how: str
) -> None:
    """pytest-rerunfailures reschedules a test whose worker died on another
    worker, twice: three attempts, the reason naming the worker of the last."""
    pytester.makepyfile(
        test_x=HEADER
        + f"""
        import os

        def test_ok():
            pass

        def test_crash():
            {how}
        """.replace("\n        ", "\n")
    )
    result = pytester.runpytest_subprocess("-n", "2", "--reruns", "2", "--dynamo-records=r.jsonl")
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"], outcomes["rerun"]) == (1, 1, 2), outcomes
    records = read(pytester.path / "r.jsonl")
    tests = [r for r in records if r["record"] == "test"]
    assert sorted(r["nodeid"] for r in tests) == ["test_x.py::test_crash", "test_x.py::test_ok"]
    crash = by_nodeid(records)["test_x.py::test_crash"]
    assert crash["outcome"] == "failed"
    assert [a["outcome"] for a in crash["attempts"]] == ["failed"] * 3
    assert crash["reason"] == f"worker '{crash['worker']}' crashed while running 'test_x.py::test_crash'"


def _suite(path: Path, tests: int) -> None:
    path.mkdir()
    (path / "test_many.py").write_text(
        HEADER + f"@pytest.mark.parametrize('i', range({tests}))\ndef test_n(i): pass\n"
    )


def test_concurrent_runs_append_without_losing_or_duplicating(tmp_path: Path) -> None:
    records = tmp_path / "shared.jsonl"
    runs, tests = 3, 1500
    procs = []
    for n in range(runs):
        _suite(tmp_path / f"suite{n}", tests)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    f"--dynamo-records={records}",
                ],
                cwd=tmp_path / f"suite{n}",
                stdout=subprocess.DEVNULL,
            )
        )
    assert [p.wait(timeout=300) for p in procs] == [0] * runs
    lines = read(records)
    assert len(lines) == runs * (tests + 2)
    by_run: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_run.setdefault(line["run_id"], []).append(line)
    assert len(by_run) == runs
    for run in by_run.values():
        kinds = [r["record"] for r in run]
        assert kinds[0] == "run_start" and kinds[-1] == "run_end"
        assert len({r["nodeid"] for r in run if r["record"] == "test"}) == tests


def test_a_killed_run_leaves_only_whole_lines(tmp_path: Path) -> None:
    records = tmp_path / "r.jsonl"
    _suite(tmp_path / "suite", 20_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--dynamo-records={records}"],
        cwd=tmp_path / "suite",
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not records.exists() or records.stat().st_size < 50_000):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    lines = read(records)  # every line parses
    assert lines[0]["record"] == "run_start"
    assert 50 < len(lines) < 20_002
    assert lines[-1]["record"] == "test"
    # The next run starts on a line of its own.
    _suite(tmp_path / "next", 1)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--dynamo-records={records}"],
        cwd=tmp_path / "next",
        stdout=subprocess.DEVNULL,
        check=True,
    )
    assert [r["record"] for r in read(records)[-3:]] == ["run_start", "test", "run_end"]


def test_an_interrupted_run_ends_its_records(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_i=HEADER + "def test_a(): pass\ndef test_b(): raise KeyboardInterrupt\ndef test_c(): pass\n"
    )
    result = pytester.runpytest_subprocess("--dynamo-records=r.jsonl")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    records = read(pytester.path / "r.jsonl")
    assert [r["record"] for r in records] == ["run_start", "test", "run_end"]
    assert records[1]["nodeid"] == "test_i.py::test_a"
    assert records[-1]["exit_status"] == pytest.ExitCode.INTERRUPTED


def test_a_worker_killed_by_a_signal_is_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_k=HEADER
        + "import os, signal\ndef test_a(): pass\ndef test_kill(): os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = pytester.runpytest_subprocess("-n", "1", "--dynamo-records=r.jsonl")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    tests = by_nodeid(read(pytester.path / "r.jsonl"))
    assert tests["test_k.py::test_kill"]["outcome"] == "failed"
    assert tests["test_k.py::test_a"]["outcome"] == "passed"
