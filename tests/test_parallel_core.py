"""The GPU packing scheduler through the Python binding (issue #16, the core):
budgets, reservations, the order, tests that never fit, the simulation, and
`[tool.pytest-dynamo.parallel]` checked at load."""

from __future__ import annotations

import pytest
from pytest_dynamo import _core

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]


def scheduler(
    tests: list[tuple[str, int, float | None, float | None]],
    *,
    gpus: int = 2,
    total: float = 80.0,
    slots: tuple[int, int] = (8, 2),
    **kwargs: object,
) -> _core.GpuScheduler:
    return _core.GpuScheduler(
        [f"GPU-{g}" for g in range(gpus)],
        [total] * gpus,
        slots[0],
        slots[1],
        [t[0] for t in tests],
        [t[1] for t in tests],
        [t[2] for t in tests],
        [t[3] for t in tests],
        **kwargs,  # type: ignore[arg-type]
    )


def test_reservations_follow_the_budget_and_are_released_on_report() -> None:
    s = scheduler([("a", 1, 40.0, 3.0), ("b", 1, 30.0, 2.0), ("c", 1, 20.0, 1.0)], gpus=1)
    assert s.budgets_gib == [68.0]
    first = s.next()
    assert first is not None and (first.test, first.ids, first.reserved_gib) == (0, ["GPU-0"], 40.0)
    second = s.next()
    assert second is not None and second.test == 2  # b (30) does not fit beside a (40); c does
    assert s.next() is None
    assert s.release(0) and not s.release(0)
    third = s.next()
    assert third is not None and third.test == 1
    assert s.peak_gib == [60.0]


def test_exclusive_and_multi_gpu_tests() -> None:
    # Memory-time: the pair 20 s x 2 x 10 GiB, "alone" 4 s x a whole 68 GiB budget.
    s = scheduler([("pair", 2, 10.0, 20.0), ("alone", 1, None, 4.0), ("ids-kept", 1, 1.0, 1.0)])
    pair = s.next()
    assert pair is not None and pair.ids == ["GPU-0", "GPU-1"]
    small = s.next()
    assert small is not None and small.test == 2
    assert s.next() is None, "an exclusive test waits for an empty GPU"
    s.release(pair.test)
    s.release(small.test)
    alone = s.next()
    assert alone is not None and alone.exclusive and len(alone.gpus) == 1


def test_unknown_vram_settings_and_tests_that_never_fit() -> None:
    tests = [("huge", 4, 1.0, 1.0), ("fat", 1, 90.0, 1.0), ("unknown", 1, None, 1.0), ("cpu", 0, None, 1.0)]
    s = scheduler(tests, unknown_vram="skip")
    assert s.unrunnable["huge"] == "needs 4 GPUs, 2 visible"
    assert "90 GiB" in s.unrunnable["fat"]
    assert "unknown_vram" in s.unrunnable["unknown"]
    assert s.pending == [3]
    s = scheduler(tests, unknown_vram=12)
    unknown = s.next(cpu_ok=False)
    assert unknown is not None and unknown.test == 2 and unknown.reserved_gib == 12.0


def test_order_and_stop() -> None:
    s = scheduler(
        [("b", 0, None, 1.0), ("a", 0, None, 1.0), ("long", 0, None, 9.0), ("new", 0, None, None)],
        slots=(1, 1),
    )
    assert s.pending == [2, 1, 0, 3]  # longest first, ties by id, unknown = median (1)
    s.next()
    s.stop()
    s.release(2)
    assert s.next() is None and s.done


def test_simulation_packs_and_respects_the_bound() -> None:
    tests = [(f"t{i}", 1, 20.0, 10.0) for i in range(6)]
    sim = scheduler(tests, gpus=1).simulate()
    # 68 GiB: three 20 GiB tests at a time, two rounds of 10 s.
    assert sim.makespan == pytest.approx(20.0)
    assert sim.sequential == pytest.approx(60.0)
    assert sim.lower_bound == pytest.approx(1200 / 68)
    assert sim.peak_gib == [60.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"memory_margin": 1.0}, "memory_margin"),
        ({"gpu_memory_gib": -1.0}, "gpu_memory_gib"),
        ({"unknown_vram": "shared"}, "unknown_vram"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises((_core.ConfigError, ValueError), match=message):
        scheduler([], **kwargs)


def test_the_parallel_table_is_checked_at_load(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.pytest-dynamo.parallel]\nmemory_margin = 1.5\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*[[]tool.pytest-dynamo.parallel[]] memory_margin: 1.5 is not a share*", "*fix:*"]
    )
