"""Ownership and logging: owners by path, marker and default in the summary
and the records; flow ids for tests and their subprocesses; the plugin's log
lines, from Python and from the Rust core, in pytest's logging."""

from __future__ import annotations

import json
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
OWNERS = """
[tool.pytest-dynamo.owners]
default = "pavithra"
[tool.pytest-dynamo.owners.markers]
vllm = "alec"
kvbm = "ryan"
[tool.pytest-dynamo.owners.paths]
"tests/router" = "router-team"
"""


def read(path: Any) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["nodeid"]: r for r in lines if r["record"] == "test"}


def test_every_failure_line_names_its_owner(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(OWNERS + '[tool.pytest-dynamo.quarantine]\nfile = "q.toml"\n')
    (pytester.path / "q.toml").write_text(
        '[[quarantine]]\ntest = "tests/test_kv.py::test_quarantined"\nreason = "r"\n'
        'owner = "kim"\nticket = "DYN-9"\nexpires = 2999-01-01\n'
    )
    tests = pytester.mkdir("tests")
    (tests / "test_kv.py").write_text(
        HEADER
        + "@pytest.mark.vllm\n@pytest.mark.kvbm\ndef test_component(): assert 0\n"
        + "@pytest.mark.vllm\ndef test_framework(): assert 0\n"
        + "def test_nobody_named(): assert 0\n"
        + "def test_quarantined(): assert 0\n"
    )
    (tests / "router").mkdir()
    (tests / "router" / "test_route.py").write_text(HEADER + "@pytest.mark.vllm\ndef test_path(): assert 0\n")
    result = pytester.runpytest("--dynamo-records=r.jsonl")
    result.stdout.fnmatch_lines(
        [
            "*= gating failures =*",
            "FAILED tests/router/test_route.py::test_path (owner: router-team)",
            "FAILED tests/test_kv.py::test_component (owner: ryan)",
            "FAILED tests/test_kv.py::test_framework (owner: alec)",
            "FAILED tests/test_kv.py::test_nobody_named (owner: pavithra)",
            "*= non-gating failures (need follow-up) =*",
            "FAILED tests/test_kv.py::test_quarantined: quarantined: DYN-9 (kim) (owner: kim)",
        ]
    )
    owners = {nodeid.split("::")[1]: r["owner"] for nodeid, r in read(pytester.path / "r.jsonl").items()}
    assert owners == {
        "test_path": "router-team",
        "test_component": "ryan",
        "test_framework": "alec",
        "test_nobody_named": "pavithra",
        "test_quarantined": "kim",
    }


def test_without_owners_a_failure_is_unassigned(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a=HEADER + "def test_a(): assert 0\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["FAILED test_a.py::test_a (owner: unassigned)"])


def test_owners_hold_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(OWNERS)
    pytester.makepyfile(test_a=HEADER + "@pytest.mark.kvbm\ndef test_a(): assert 0\ndef test_b(): pass\n")
    result = pytester.runpytest_subprocess("-n", "2")
    result.stdout.fnmatch_lines(["FAILED test_a.py::test_a (owner: ryan)"])


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            '[tool.pytest-dynamo.owners.markers]\nvlm = "alec"\n',
            "'vlm' is not a marker\n*fix: did you mean 'vllm'?",
        ),
        ('[tool.pytest-dynamo.owners.paths]\n"t.py::test_a" = "x"\n', "'t.py::test_a' is a test id"),
        ('[tool.pytest-dynamo.owners]\ndefault = ""\n', "'default' has an empty owner"),
        ('[tool.pytest-dynamo.owners]\nvllm = "alec"\n', "unknown field `vllm`*"),
    ],
)
def test_a_bad_owners_table_is_a_usage_error(pytester: pytest.Pytester, table: str, message: str) -> None:
    pytester.makepyprojecttoml(table)
    pytester.makepyfile(test_a=HEADER + "def test_a(): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{line}*" for line in message.split("\n")])


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_each_test_has_a_flow_id_its_subprocesses_and_its_record_see(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    pytester.makepyfile(
        test_flow=HEADER
        + """
        import os, pathlib, subprocess, sys

        def test_a(dynamo_flow_id):
            assert os.environ["DYNAMO_FLOW_ID"] == dynamo_flow_id
            child = subprocess.run(
                [sys.executable, "-c", "import os; print(os.environ['DYNAMO_FLOW_ID'])"],
                capture_output=True, text=True, check=True,
            )
            assert child.stdout.strip() == dynamo_flow_id
            pathlib.Path("seen_a").write_text(dynamo_flow_id)

        def test_b(dynamo_flow_id):
            assert os.environ["DYNAMO_FLOW_ID"] == dynamo_flow_id
            pathlib.Path("seen_b").write_text(dynamo_flow_id)
        """.replace("\n        ", "\n")
    )
    pytester.runpytest("--dynamo-records=r.jsonl", *workers).assert_outcomes(passed=2)
    records = read(pytester.path / "r.jsonl")
    a, b = records["test_flow.py::test_a"], records["test_flow.py::test_b"]
    assert a["flow_id"] != b["flow_id"]
    # The record carries the very id the test, its fixture and its children saw.
    assert a["flow_id"] == (pytester.path / "seen_a").read_text()
    assert b["flow_id"] == (pytester.path / "seen_b").read_text()


def test_the_flow_id_is_restored_after_each_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNAMO_FLOW_ID", "pipeline-flow")
    pytester.makepyfile(
        test_env=HEADER + "import os\n"
        "def test_a(dynamo_flow_id):\n"
        "    assert os.environ['DYNAMO_FLOW_ID'] == dynamo_flow_id != 'pipeline-flow'\n"
    )
    pytester.runpytest().assert_outcomes(passed=1)
    import os

    assert os.environ["DYNAMO_FLOW_ID"] == "pipeline-flow"


def test_caplog_in_a_test_sees_the_cores_log_records(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_log=HEADER
        + """
        import logging
        from pytest_dynamo._core import Recorder

        def test_core_logs(caplog, tmp_path, dynamo_flow_id):
            caplog.set_level(logging.INFO, logger="pytest_dynamo.records")
            recorder = Recorder(dynamo_flow_id.replace("-", ""), str(tmp_path / "r.jsonl"))
            recorder.begin(str(tmp_path), "h")
            recorder.start()
            [record] = caplog.records
            assert record.name == "pytest_dynamo.records"
            component, flow, state = record.getMessage().split(" - ")
            assert (component, flow) == ("records", dynamo_flow_id.replace("-", ""))
            assert state.startswith("started appending records to ")
        """.replace("\n        ", "\n")
    )
    pytester.runpytest().assert_outcomes(passed=1)
