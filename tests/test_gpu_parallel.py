"""GPU-aware parallel runs on pytest-xdist (issue #16), against the fake
NVML: inner tests write what they saw (their CUDA_VISIBLE_DEVICES, start
and end times, declared needs) to a log, and the assertions read the log:
budgets never exceeded by tests running at once, gpu_2 tests on 2 distinct
GPUs, assignments inside the outer CUDA_VISIBLE_DEVICES, exclusive tests
alone, the stagger held, env overrides set and restored, a killed worker's
reservations released."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_nvml import FakeNvml, gpus, prepare

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]

#: An inner test's log line: what it saw while it ran.
RECORDER = """
import json, os, time

import pytest

LOG = os.environ["PARALLEL_LOG"]


@pytest.fixture(autouse=True)
def record(request, dynamo_gpus):
    started = time.time()
    seen = os.environ.get("CUDA_VISIBLE_DEVICES")
    extra = {k: v for k, v in os.environ.items() if k.startswith("KV_")}
    yield
    mark = request.node.get_closest_marker("vram_gib")
    hw = [m.name for m in request.node.iter_markers() if m.name.startswith("gpu_")]
    line = {
        "id": request.node.nodeid, "cvd": seen, "start": started, "end": time.time(),
        "gpus": int(hw[0][4:]) if hw else 0, "vram": mark.args[0] if mark else None,
        "env": extra, "reserved_at": dynamo_gpus and dynamo_gpus.reserved_at,
    }
    with open(LOG, "a") as f:
        f.write(json.dumps(line) + "\\n")
"""

PACKING = """
import time
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]
NAP = 0.04

@pytest.mark.gpu_1
@pytest.mark.vram_gib(30)
@pytest.mark.parametrize("n", range(6))
def test_thirty(n): time.sleep(NAP)

@pytest.mark.gpu_2
@pytest.mark.vram_gib(20)
@pytest.mark.parametrize("n", range(3))
def test_pair(n): time.sleep(NAP)

@pytest.mark.gpu_1
def test_alone(): time.sleep(NAP)

@pytest.mark.gpu_0
@pytest.mark.parametrize("n", range(2))
def test_cpu(n): time.sleep(NAP)

@pytest.mark.gpu_8
def test_eight(): pass

@pytest.mark.gpu_1
@pytest.mark.vram_gib(75)
def test_too_big(): pass
"""


@pytest.fixture
def fake(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    return prepare(tmp_path_factory, monkeypatch)


@pytest.fixture
def log(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = pytester.path / "seen.jsonl"
    monkeypatch.setenv("PARALLEL_LOG", str(path))
    monkeypatch.delenv("DYNAMO_GPU_PARALLEL", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    pytester.makeconftest(RECORDER)
    return path


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run(pytester: pytest.Pytester, fake: FakeNvml, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--dynamo-gpu-parallel",
        "--dynamo-audit=off",
        f"--dynamo-nvml-lib={fake.lib()}",
        "-p",
        "no:cacheprovider",
        *args,
        timeout=120,
    )


def check_budgets(seen: list[dict[str, Any]], budget: float) -> None:
    """At every start, what runs on each GPU fits its budget; an exclusive
    test shares its GPUs with nothing."""
    for a in seen:
        if not a["gpus"]:
            continue
        on: dict[str, float] = {}
        for b in seen:
            if b["gpus"] and b["start"] <= a["start"] < b["end"]:
                for gpu in b["cvd"].split(","):
                    if b["vram"] is None:
                        assert b is a or gpu not in a["cvd"].split(","), (a, b)
                    on[gpu] = on.get(gpu, 0.0) + (budget if b["vram"] is None else b["vram"])
        for gpu, used in on.items():
            assert used <= budget + 1e-9, (gpu, used, a)


def test_tests_are_packed_within_budgets_on_their_own_gpus(
    pytester: pytest.Pytester, fake: FakeNvml, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.machine(gpus(4))
    # The caller narrowed the machine to three GPUs, by index, out of order.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3,1")
    pytester.makepyfile(PACKING)
    result = run(pytester, fake, "-n", "4", "-v", "-rs", "--dynamo-records=r.jsonl")
    result.assert_outcomes(passed=12, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "dynamo parallel: 3 GPUs x 67.* GiB budget, 4 workers*",
            "*PASSED [[]GPUs ?,?[]] *test_pair?0?*",
            "*pytest-dynamo GPU-parallel run*",
            "GPU 2: busy *, peak reserved * of 67.* GiB",
            "wall *s against *s of test durations (*x); the plan's lower bound *s",
        ]
    )
    # Tests that can never fit are skipped at once, with the hardware skips' words.
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *needs 8 GPUs, 3 visible*"])
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] *needs 75 GiB on each of 1 GPU, the largest parallel budget is 67.* GiB*"]
    )
    seen = lines(log)
    assert len(seen) == 12
    for test in seen:
        ids = test["cvd"].split(",") if test["cvd"] else []
        assert len(ids) == test["gpus"] == len(set(ids)), test
        assert set(ids) <= {"2", "3", "1"}, test
    check_budgets(seen, 81559 / 1024 * 0.85)
    # The records carry each test's GPUs (as its CUDA_VISIBLE_DEVICES named them) and worker.
    records = {r["nodeid"]: r for r in lines(pytester.path / "r.jsonl") if r["record"] == "test"}
    for test in seen:
        record = records[test["id"]]
        assert record.get("gpus_assigned") == (test["cvd"].split(",") if test["cvd"] else None), record
        assert record["worker"] in {"gw0", "gw1", "gw2", "gw3"}
    # Six 30 GiB tests on three 67 GiB budgets: some ran side by side.
    thirty = [t for t in seen if t["vram"] == 30]
    assert any(a["start"] < b["end"] and b["start"] < a["end"] for a in thirty for b in thirty if a is not b)


UUID_SUITE = """
import json, os
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]

@pytest.mark.gpu_2
@pytest.mark.vram_gib(10)
@pytest.mark.parametrize("n", range(3))
def test_pair(n, dynamo_gpus):
    assert dynamo_gpus.ids == tuple(os.environ["CUDA_VISIBLE_DEVICES"].split(","))
    assert dynamo_gpus.uuids == dynamo_gpus.ids
    assert dynamo_gpus.gib_per_gpu == 10 and not dynamo_gpus.exclusive
    assert len(set(dynamo_gpus.indices)) == 2

@pytest.mark.gpu_1
def test_exclusive(dynamo_gpus):
    assert dynamo_gpus.exclusive and dynamo_gpus.gib_per_gpu == pytest.approx(20 * 0.85)

@pytest.mark.gpu_0
def test_cpu(dynamo_gpus):
    assert dynamo_gpus is None and os.environ["CUDA_VISIBLE_DEVICES"] == ""
"""


def test_uuids_stay_uuids_and_the_fixture_names_the_assignment(
    pytester: pytest.Pytester, fake: FakeNvml, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = gpus(8, total_mib=20480)
    fake.machine(machine)
    outer = [machine[i].uuid for i in (5, 1, 6, 2)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", ",".join(outer))
    pytester.makepyfile(UUID_SUITE)
    result = run(pytester, fake, "-n", "3")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["dynamo parallel: 4 GPUs x 17 GiB budget, 3 workers*"])
    for test in lines(log):
        ids = test["cvd"].split(",") if test["cvd"] else []
        assert set(ids) <= set(outer) and len(ids) == test["gpus"], test
    check_budgets(lines(log), 17.0)


NEVER_FIT = """
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]

@pytest.mark.gpu_8
def test_eight(): pass

@pytest.mark.gpu_1
@pytest.mark.vram_gib(75)
def test_too_big(): pass

@pytest.mark.gpu_1
@pytest.mark.vram_gib(5)
def test_small(): pass
"""


def test_without_n_or_without_xdist_it_is_a_usage_error(
    pytester: pytest.Pytester, fake: FakeNvml, log: Path
) -> None:
    pytester.makepyfile(NEVER_FIT)
    result = pytester.runpytest("--dynamo-gpu-parallel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*needs pytest-xdist workers, and -n is not given*", "*fix: add -n auto*"])
    result = pytester.runpytest("--dynamo-gpu-parallel", "-p", "no:xdist")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest-xdist is not installed*", "*fix: pip install pytest-xdist*"])
    pytester.makeini("[pytest]\ndynamo_gpu_parallel = true\n")
    result = pytester.runpytest("-n", "2", "--dist=loadfile")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dist=loadfile cannot apply*"])


KILLED = """
import os, signal, time
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]

@pytest.mark.gpu_1
def test_a_dies_holding_the_gpu():
    os.kill(os.getpid(), signal.SIGKILL)

@pytest.mark.gpu_1
def test_b_needs_the_gpu():
    time.sleep(0.01)
"""


def test_a_killed_workers_reservations_are_released(
    pytester: pytest.Pytester, fake: FakeNvml, log: Path
) -> None:
    fake.machine(gpus(1))
    pytester.makepyfile(KILLED)
    # Both tests need the one GPU to themselves: without the release the
    # second would wait for the dead worker's reservation until the timeout.
    result = run(pytester, fake, "-n", "2")
    result.assert_outcomes(passed=1, failed=1)
    assert [t["id"].split("::")[1] for t in lines(log)] == ["test_b_needs_the_gpu"]


STOP = """
import time
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]

@pytest.mark.gpu_1
def test_fails(): assert False

@pytest.mark.gpu_1
@pytest.mark.parametrize("n", range(12))
def test_more(n): time.sleep(0.02)
"""


def test_x_stops_handing_out_tests(pytester: pytest.Pytester, fake: FakeNvml, log: Path) -> None:
    fake.machine(gpus(1))
    pytester.makepyfile(STOP)
    (pytester.path / ".test_durations").write_text(
        json.dumps({"test_x_stops_handing_out_tests.py::test_fails": 9.0})
    )
    result = run(pytester, fake, "-n", "2", "-x")
    # xdist's own -x ends the run as interrupted.
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*1 failed*"])
    # After the failure, at most what the workers already held runs (two
    # ahead each: the failing worker's next one and the other's two). Before
    # it, the other worker may run tests while the failing one waits for the
    # GPU, so only what starts after the failure is bounded.
    seen = lines(log)
    failed = next(line for line in seen if line["id"].endswith("::test_fails"))
    after = [line for line in seen if line["start"] >= failed["end"]]
    assert len(after) <= 3, seen
    assert len(seen) < 13, seen


STAGGER_ENV = """
import os, time
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]

@pytest.mark.gpu_1
@pytest.mark.vram_gib(5)
@pytest.mark.kv_bytes(4096)
@pytest.mark.parametrize("n", range(3))
def test_engine(n):
    assert os.environ["KV_BYTES"] == "4096"
    time.sleep(0.02)

@pytest.mark.gpu_0
@pytest.mark.parametrize("n", range(4))
def test_plain(n):
    assert "KV_BYTES" not in os.environ
"""


def test_starts_on_one_gpu_are_staggered_and_env_is_set_and_restored(
    pytester: pytest.Pytester, fake: FakeNvml, log: Path
) -> None:
    # GPU 0 has 1 GiB free (another process holds the rest): with
    # check_free_memory every 5 GiB test goes to GPU 1, one start per 150 ms.
    machine = gpus(2)
    machine[0].free_mib = 1024
    fake.machine(machine)
    pytester.makepyprojecttoml(
        '[tool.pytest-dynamo.parallel]\nstart_interval = "150ms"\ncheck_free_memory = true\n'
        '[tool.pytest-dynamo.parallel.env]\nkv_bytes = "KV_BYTES"\n'
    )
    pytester.makepyfile(STAGGER_ENV)
    result = run(pytester, fake, "-n", "3", "--strict-markers")
    result.assert_outcomes(passed=7)
    engines = [t for t in lines(log) if t["gpus"]]
    assert [t["cvd"] for t in engines] == ["1"] * 3
    assert all(t["env"] == {"KV_BYTES": "4096"} for t in engines)
    # The ledger's own clock: when each test got its GPU, right before its setup.
    starts = sorted(t["reserved_at"] for t in engines)
    assert all(b - a >= 0.15 for a, b in zip(starts, starts[1:])), starts
    assert all(t["reserved_at"] <= t["start"] for t in engines)


AUTO = """
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]

@pytest.mark.gpu_1
@pytest.mark.parametrize("n", range(3))
def test_alone(n): pass
"""


def test_n_auto_sizes_the_workers_by_the_last_runs_needs(
    pytester: pytest.Pytester, fake: FakeNvml, log: Path
) -> None:
    fake.machine(gpus(1))
    pytester.makepyfile(AUTO)
    args = ("-n", "auto", "--dynamo-gpu-parallel", "--dynamo-audit=off", f"--dynamo-nvml-lib={fake.lib()}")
    first = pytester.runpytest_subprocess(*args, timeout=120)
    first.assert_outcomes(passed=3)
    # Before any run the needs are unknown: the CPU count; then one GPU
    # that each test needs to itself runs one test at a time: one worker.
    second = pytester.runpytest_subprocess(*args, timeout=120)
    second.assert_outcomes(passed=3)
    second.stdout.fnmatch_lines(["dynamo parallel: 1 GPU x 67.7 GiB budget, 1 worker (1 GPU slots, 0 CPU)"])


def test_bad_parallel_settings_are_refused(pytester: pytest.Pytester, fake: FakeNvml, log: Path) -> None:
    pytester.makepyprojecttoml('[tool.pytest-dynamo.parallel]\nstart_interval = "soon"\n')
    pytester.makepyfile(NEVER_FIT)
    result = pytester.runpytest("-n", "2", "--dynamo-gpu-parallel")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*start_interval*"])


def test_simulated_gpus_need_a_budget(pytester: pytest.Pytester, fake: FakeNvml, log: Path) -> None:
    pytester.makepyfile(NEVER_FIT)
    result = pytester.runpytest("-n", "2", "--dynamo-gpu-parallel", "--dynamo-gpus=2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*the GPUs' memory is unknown*", "*fix: set *gpu_memory_gib*"])


def test_the_plan_shows_the_packing(pytester: pytest.Pytester, fake: FakeNvml, log: Path) -> None:
    fake.machine(gpus(2))
    pytester.makepyfile(PACKING)
    name = "test_the_plan_shows_the_packing.py"
    durations = {f"{name}::test_alone": 5.0, f"{name}::test_pair[0]": 3.0}
    (pytester.path / ".test_durations").write_text(json.dumps(durations))
    # No -n: the plan runs nothing.
    result = pytester.runpytest("--dynamo-plan", "--dynamo-gpu-parallel", f"--dynamo-nvml-lib={fake.lib()}")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "GPU-parallel plan: 2 GPUs (budgets 67.7, 67.7 GiB); -n auto starts * workers*",
            "  estimated makespan *s against *s sequential (*x); lower bound *s",
            "  GPU 0: * tests",
            f"    {name}::test_alone @0.0s (exclusive)",
            "  GPU 1: * tests",
            f"    {name}::test_thirty[[]0[]] @0.0s (30 GiB)",
            f"    {name}::test_pair[[]*[]] @*s (20 GiB)",
            "  CPU slots: 2 gpu_0 tests",
            f"    {name}::test_cpu[[]0[]] @0.0s",
            "  never fit (2, skipped):",
            f"    {name}::test_eight: needs 8 GPUs, 2 visible",
            f"    {name}::test_too_big: needs 75 GiB*",
            "  without a VRAM value (1; unknown_vram = 'exclusive'):",
            f"    {name}::test_alone",
        ]
    )


TRANSIENT = """
from pathlib import Path
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]

def attempt(name):
    path = Path(f"{name}.count")
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n

def test_port_race():
    if attempt("port") == 1:
        raise OSError("[Errno 98] Address already in use")

def test_real_bug():
    attempt("bug")
    assert 3 == 4
"""


def test_transient_failures_are_retried_and_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest-dynamo.retries]\ntransient = ["Address already in use"]\n')
    pytester.makepyfile(TRANSIENT)
    result = pytester.runpytest("-p", "no:rerunfailures", "--dynamo-records=r.jsonl")
    # A test that passed on a retry counts as flaky.
    outcomes = result.parseoutcomes()
    assert (outcomes.get("flaky"), outcomes.get("failed"), outcomes.get("rerun")) == (1, 1, 1), outcomes
    assert (pytester.path / "port.count").read_text() == "2"
    assert (pytester.path / "bug.count").read_text() == "1", "a failure that is not transient runs once"
    records = {
        r["nodeid"].split("::")[1]: r
        for r in map(json.loads, (pytester.path / "r.jsonl").read_text().splitlines())
        if r.get("record") == "test"
    }
    assert [a["outcome"] for a in records["test_port_race"]["attempts"]] == ["failed", "passed"]
    assert len(records["test_real_bug"]["attempts"]) == 1


def test_a_bad_transient_pattern_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest-dynamo.retries]\ntransient = ["(unclosed"]\n')
    pytester.makepyfile(TRANSIENT)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*transient[[]0[]]*is not a regular expression*"])
