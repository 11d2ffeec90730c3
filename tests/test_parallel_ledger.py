"""The reservations ledger of GPU-parallel runs (issue #16): best fit,
exclusive GPUs, the stagger, a dead worker's release, the shared file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_dynamo._parallel_ledger import Held, Ledger, State
from pytest_dynamo._parallel_worker import FREE_WAIT_S, Need, attempt

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]


def test_best_fit_keeps_the_big_holes() -> None:
    state = State([68.0, 68.0])
    state.take("a", "gw0", [0], 40.0, now=0.0)
    # 20 GiB fits on both; GPU 0 is left with less room after it: best fit.
    assert state.choose(1, 20.0, now=0.0) == [0]
    assert state.choose(1, 30.0, now=0.0) == [1]
    assert state.choose(2, 30.0, now=0.0) is None
    assert state.choose(2, 28.0, now=0.0) == [0, 1]


def test_exclusive_tests_take_empty_gpus_and_block_them() -> None:
    state = State([68.0, 68.0])
    state.take("small", "gw0", [1], 1.0, now=0.0)
    assert state.choose(1, None, now=0.0) == [0]
    assert state.choose(2, None, now=0.0) is None
    state.take("alone", "gw1", [0], None, now=0.0)
    assert state.choose(1, 1.0, now=0.0) == [1], "nothing joins an exclusive test"
    assert state.release("alone", now=1.0) and not state.release("alone", now=1.0)
    assert state.peak == [68.0, 1.0] and state.busy[0] == 1.0


def test_the_stagger_keeps_starts_on_one_gpu_apart() -> None:
    state = State([68.0], interval_s=5.0)
    state.take("a", "gw0", [0], 10.0, now=100.0)
    assert state.choose(1, 10.0, now=104.0) is None
    assert state.choose(1, 10.0, now=105.0) == [0]


def test_a_dead_workers_reservations_are_released(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "run")
    ledger.create([20.0, 20.0], 0.0)
    with ledger.locked() as state:
        assert state is not None
        state.take("x", "gw3", [0, 1], 15.0, now=0.0)
        state.take("y", "gw1", [1], 5.0, now=0.0)
    with ledger.locked() as state:
        assert state is not None and state.choose(1, 10.0, now=0.0) is None
        assert state.release_worker("gw3", now=2.0) == ["x"]
    state = ledger.read()
    assert state is not None and list(state.running) == ["y"]
    assert state.choose(1, 16.0, now=0.0) == [0]


def test_a_test_waits_for_room_and_is_skipped_when_the_run_stops_or_memory_never_frees() -> None:
    state = State([20.0])
    need = Need(1, 15.0)
    state.take("big", "gw0", [0], 10.0, now=0.0)
    assert attempt(state, "t", "gw1", need, 0.0, None, 0.0) is None, "no room yet: wait"
    state.release("big", now=1.0)
    # NVML says 5 GiB free (a process outside the run): wait, then give up.
    assert attempt(state, "t", "gw1", need, 1.0, [5.0], 1.0) is None
    why = attempt(state, "t", "gw1", need, 1.0, [5.0], FREE_WAIT_S + 1)
    assert isinstance(why, str) and "a process outside the run holds it" in why
    held = attempt(state, "t", "gw1", need, 1.0, [19.0], 0.0)
    assert isinstance(held, Held) and held.gpus == [0] and held.gib == 15.0
    state.stopped = True
    assert "the run is stopping" in str(attempt(state, "u", "gw1", Need(1, 1.0), 2.0, None, 0.0))
