"""Time budgets: ``[pipelines.NAME] budget`` checked at load, ``--dynamo-plan``
against the budgets (shards and GPU packing included) with the slowest tests
to move, and ``pytest-dynamo gate --budget`` over hand-made records whose
answers are known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from history_builder import Builder
from pytest_dynamo import _budgets, _cli

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]

BUDGETS = """
[tool.pytest-dynamo.pipelines.pre_merge]
budget = "10m"
add_stages = [{ name = "unit", budget = "5m" }]
"""

#: Four unit tests (one never recorded) and two one-GPU E2E tests of 20 GiB each.
SUITE = """
import pytest

pytestmark = [pytest.mark.pre_merge]

@pytest.mark.gpu_0
@pytest.mark.unit
@pytest.mark.parametrize("name", ["a", "b", "c", "d"])
def test_unit(name): pass

@pytest.mark.gpu_1
@pytest.mark.e2e
@pytest.mark.vram_gib(20)
@pytest.mark.parametrize("name", ["e", "f"])
def test_e2e(name): pass
"""

DURATIONS = {
    "test_suite.py::test_unit[a]": 240.0,
    "test_suite.py::test_unit[b]": 120.0,
    "test_suite.py::test_unit[c]": 60.0,
    "test_suite.py::test_e2e[e]": 500.0,
    "test_suite.py::test_e2e[f]": 200.0,
}


@pytest.fixture
def project(full_machine: None, pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_suite=SUITE)
    pytester.path.joinpath(".test_durations").write_text(json.dumps(DURATIONS))
    return pytester


def configure(pytester: pytest.Pytester, toml: str) -> None:
    pytester.path.joinpath("pyproject.toml").write_text(toml)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ('"-5m"', "'-5m' is negative"),
        ('"0s"', "'0s' is zero"),
        ('"200h"', "'200h' is longer than a week"),
        ('"30"', "'30' is not a duration"),
        ('"30 parsecs"', "'30 parsecs' is not a duration"),
        ("30", "30 is a number without a unit"),
    ],
)
def test_a_bad_budget_stops_pytest_naming_the_key(project: pytest.Pytester, value: str, words: str) -> None:
    configure(project, f"[tool.pytest-dynamo.pipelines.pre_merge]\nbudget = {value}\n")
    result = project.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert "pytest-dynamo" in text and "pre_merge.budget" in text and words in text, text
    assert "fix:" in text
    assert "Traceback" not in text and "INTERNALERROR" not in text


def test_a_stage_budget_above_its_pipelines_is_refused(project: pytest.Pytester) -> None:
    configure(
        project,
        '[tool.pytest-dynamo.pipelines.pre_merge]\nbudget = "10m"\n'
        'add_stages = [{ name = "e2e_1", budget = "15m" }]\n',
    )
    result = project.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "pre_merge.stages.e2e_1.budget" in result.stderr.str()
    assert "above its pipeline's" in result.stderr.str()


def test_the_plan_estimates_each_stage_against_its_budget_and_names_tests_to_move(
    project: pytest.Pytester,
) -> None:
    configure(project, BUDGETS)
    result = project.runpytest("--dynamo-plan", "--dynamo-pipeline=pr")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    # unit: 240 + 120 + 60 + d (unknown: the median, 120) = 9m 00s against 5m;
    # moving a (4m) leaves exactly 5m. e2e_1: 500 + 200 = 11m 40s against the
    # pipeline's 10m; moving e leaves 3m 20s. The pipeline: its slowest stage.
    result.stdout.fnmatch_lines(
        [
            "wall time against budgets (the stages of a pipeline run side by side;*",
            "  pipeline pre_merge         ~11m 40s    10m 00s  OVER by 1m 40s (slowest stage e2e_1)",
            "    unit              cpu     ~9m 00s     5m 00s  OVER by 4m 00s; 3/4 known",
            "    integration_1     gpu_1         -  (10m 00s)  no test",
            "    e2e_1             gpu_1  ~11m 40s  (10m 00s)  OVER by 1m 40s",
            "  over budget: stage unit of pre_merge (~9m 00s > 5m 00s): moving the 1 slowest test"
            " to post_merge brings it to ~5m 00s:",
            "    4m 00s  test_suite.py::test_unit[[]a[]]",
            "  over budget: stage e2e_1 of pre_merge (~11m 40s > 10m 00s): moving the 1 slowest test"
            " to post_merge brings it to ~3m 20s:",
            "    8m 20s  test_suite.py::test_e2e[[]e[]]",
        ]
    )


def test_without_a_budget_the_plan_prints_no_budget_lines(project: pytest.Pytester) -> None:
    result = project.runpytest("--dynamo-plan", "--dynamo-pipeline=pr")
    assert result.ret == pytest.ExitCode.OK
    assert "wall time against budgets" not in result.stdout.str()


def test_shards_split_a_stages_wall_time(project: pytest.Pytester) -> None:
    configure(project, BUDGETS)
    result = project.runpytest(
        "--dynamo-plan", "--dynamo-pipeline=pr", "--dynamo-stage=unit", "--dynamo-shard=1/2"
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    # On 2 machines: {a, c} = 5m 00s and {b, d} = 4m 00s: within 5m.
    result.stdout.fnmatch_lines(["    unit              cpu  ~5m 00s   5m 00s  ok; 3/4 known; 2 shards"])
    assert "over budget" not in result.stdout.str()


def test_gpu_packing_on_the_described_machine_overlaps_tests(project: pytest.Pytester) -> None:
    packing = (
        '[tool.pytest-dynamo.pipelines.pre_merge]\nbudget = "10m"\n'
        'add_stages = [{ name = "e2e_1", options = ["--dynamo-gpu-parallel"] }]\n'
    )
    configure(project, packing + "[tool.pytest-dynamo.machines.gpu_1]\ngpus = 1\ngpu_memory_gib = 80\n")
    result = project.runpytest("--dynamo-plan", "--dynamo-pipeline=pr", "--dynamo-stage=e2e_1")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    # Two 20 GiB tests share one 68 GiB budget: e and f run side by side (8m 20s).
    result.stdout.fnmatch_lines(
        ["    e2e_1             gpu_1  ~8m 20s  (10m 00s)  ok; GPU packing on 1 GPU x 68 GiB budget"]
    )
    # Without the machine described, the plan says so and sums.
    configure(project, packing)
    result = project.runpytest("--dynamo-plan", "--dynamo-pipeline=pr", "--dynamo-stage=e2e_1")
    result.stdout.fnmatch_lines(
        ["*~11m 40s*OVER by 1m 40s; no GPU packing: machine class gpu_1 is not described under*"]
    )


PACKED_SUITE = """
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_1, pytest.mark.e2e]

@pytest.mark.vram_gib(10)
@pytest.mark.parametrize("name", ["a", "b", "c"])
def test_small(name): pass

def test_x(): pass
"""


@pytest.mark.parametrize("packing", [True, False])
def test_gpu_parallel_shards_balance_by_makespan(
    full_machine: None, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, packing: bool
) -> None:
    pytester.makepyfile(test_suite=PACKED_SUITE)
    durations = {f"test_suite.py::test_small[{n}]": 30.0 for n in "abc"} | {"test_suite.py::test_x": 30.0}
    pytester.path.joinpath(".test_durations").write_text(json.dumps(durations))
    configure(
        pytester,
        "[tool.pytest-dynamo.parallel]\ngpu_memory_gib = 40\n"
        "[tool.pytest-dynamo.machines.gpu_1]\ngpus = 1\ngpu_memory_gib = 80\n",
    )
    # The flag comes with the GPU-parallel runs (docs/parallel.md); stand in for it.
    monkeypatch.setattr(_budgets, "gpu_parallel", lambda config: packing)
    shards = []
    for k in (1, 2):
        result = pytester.runpytest(
            "--dynamo-pipeline=pr", "--dynamo-stage=e2e_1", f"--dynamo-shard={k}/2", "-v"
        )
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
        ran = [
            line.split("::")[1].split(" ")[0]
            for line in result.outlines
            if line.startswith("test_suite.py::")
        ]
        shards.append(sorted(ran))
    if packing:
        # test_x holds the GPU alone (no VRAM value) for 30 s; the three 10 GiB
        # tests share it for 30 s: 30 s a shard. By sums, x would share a
        # shard with a small test that cannot run beside it (60 s).
        assert shards == [["test_x"], ["test_small[a]", "test_small[b]", "test_small[c]"]]
        result.stdout.fnmatch_lines(
            ["pytest-dynamo: shard 2/2: 3 of 4 selected tests (GPU packing on the stage's machine)"]
        )
    else:
        assert shards == [["test_small[a]", "test_small[c]"], ["test_small[b]", "test_x"]]
    # The plan shows each shard's estimate the same way: makespans when packed.
    plan = pytester.runpytest(
        "--dynamo-plan", "--dynamo-pipeline=pr", "--dynamo-stage=e2e_1", "--dynamo-shard=1/2"
    )
    loads = ["~30.0s", "~30.0s"] if packing else ["~1m00s", "~1m00s"]
    plan.stdout.fnmatch_lines(
        [
            f"  shard 1/2: {len(shards[0]):>6} tests  {loads[0]}  <- this machine",
            f"  shard 2/2: {len(shards[1]):>6} tests  {loads[1]}",
        ]
    )


def gate(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = _cli.main(["gate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def records(tmp_path: Path, walls: list[tuple[str, float, dict[str, Any]]]) -> Path:
    """Runs of pre_merge, one per ``(stage, wall_s, results)``."""
    b = Builder()
    for stage, wall, results in walls:
        b.run(results, pipeline="pre_merge", stage=stage)
        end = json.loads(b.lines[-1])
        end["wall_s"] = wall
        b.lines[-1] = json.dumps(end)
    return b.write(tmp_path / "records.jsonl")


def test_the_budget_gate_fails_on_the_p95_and_names_what_grew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path.joinpath("pyproject.toml").write_text(BUDGETS)
    before = {"t.py::slow": ("passed", 100.0), "t.py::steady": ("passed", 30.0)}
    after = {"t.py::slow": ("passed", 400.0), "t.py::steady": ("passed", 30.0)}
    runs = [("unit", 200.0, before), ("unit", 200.0, before), ("unit", 420.0, after), ("unit", 420.0, after)]
    path = records(tmp_path, runs)
    args = (path, "--rootdir", tmp_path, "--pipeline", "pre_merge")
    # The budget gate runs only when asked for.
    code, out, _ = gate(capsys, *args, "--format", "json")
    assert "budget" not in {g["name"] for g in json.loads(out)["gates"]}
    code, out, err = gate(capsys, *args, "--budget")
    assert code == 1, out + err
    # p95 of the window (the 4 runs: 200, 200, 420, 420) is 420 s = 7m 00s > 5m;
    # the newer half's median against the older half's: +3m 40s; slow grew by 5m.
    assert "FAIL  budget: 1 of 2 budget(s) exceeded: pre_merge stage unit p95 7m 00s > 5m 00s" in out
    assert "grew the most: stage unit +3m 40s; tests t.py::slow +5m 00s" in out
    assert "t.py::steady +" not in out
    assert (
        "FAIL pre_merge stage unit: p95 7m 00s over 4 run(s) vs budget 5m 00s (median +3m 40s since before)"
        in out
    )
    assert "PASS pipeline pre_merge: p95 7m 00s (slowest stage unit, 4 run(s)) vs budget 10m 00s" in out
    assert out.rstrip().endswith("pytest-dynamo gate: FAILED: budget")
    # Judged at the second run, the stage was within its budget.
    first_two = records(tmp_path, runs[:2])
    code, out, _ = gate(capsys, first_two, "--rootdir", tmp_path, "--only", "budget")
    assert code == 0, out
    assert "PASS  budget: 2 budget(s) met by the p95 wall time" in out


def test_the_budget_gate_without_budgets_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = records(tmp_path, [("unit", 200.0, {"t.py::a": "passed"})])
    code, out, _ = gate(capsys, path, "--rootdir", tmp_path, "--only", "budget")
    assert code == 0
    assert "SKIP  budget: not judged: no pipeline has a budget" in out
