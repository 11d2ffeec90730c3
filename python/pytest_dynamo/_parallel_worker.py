"""GPU-parallel runs, the xdist worker's side: each test's need written for
the controller at collection, and the reservation taken where the test
starts (waiting there until its GPUs have room), with
``CUDA_VISIBLE_DEVICES`` naming exactly its GPUs until its teardown ends."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_dynamo import _collect, _parallel_ledger, _parallel_machine, _state
from pytest_dynamo._core import PROPERTY_PARALLEL_GPUS, ParallelSettings

#: How long a waiting test sleeps between two looks at the ledger, in seconds.
POLL_S = 0.01
#: How long a test waits for memory NVML says is taken, when no test of the
#: run holds any, before it is skipped (it would otherwise wait forever).
FREE_WAIT_S = 30.0
#: ``item.user_properties`` name of a test's GPUs (the outer form, joined by ",").
GPUS_PROPERTY = PROPERTY_PARALLEL_GPUS
CVD = "CUDA_VISIBLE_DEVICES"
ASSIGNMENT = pytest.StashKey["Assignment"]()
SKIP_REASON = pytest.StashKey[str]()


@dataclass(frozen=True)
class Assignment:
    """What the ``dynamo_gpus`` fixture returns: the test's GPUs."""

    #: Positions among the run's visible GPUs (0 = the first one the outer
    #: ``CUDA_VISIBLE_DEVICES`` names).
    indices: tuple[int, ...]
    #: The GPUs as the outer ``CUDA_VISIBLE_DEVICES`` names them (indices or
    #: UUIDs): what this test's ``CUDA_VISIBLE_DEVICES`` holds.
    ids: tuple[str, ...]
    #: The GPUs' UUIDs where NVML gave them.
    uuids: tuple[str | None, ...]
    #: GiB this test may use on each GPU (the whole budget when exclusive).
    gib_per_gpu: float
    exclusive: bool
    #: When the GPUs were reserved (epoch seconds), just before the setup.
    reserved_at: float


@dataclass(frozen=True)
class Need:
    gpus: int
    #: Per GPU; None: the GPUs to itself.
    vram_gib: float | None


def needs_of(config: pytest.Config, items: list[pytest.Item], settings: ParallelSettings) -> dict[str, Need]:
    """Each item's need (CPU tests: 0 GPUs), ``unknown_vram`` applied."""
    engine = _state.engine(config)
    batch = engine.ingest_items(items, _collect.registered_markers(config))
    found = batch.gpu_needs(engine.gpu_rules())
    unknown = settings.unknown_vram
    out = {}
    for item, gpus, vram in zip(items, found.gpus, found.vram_gib):
        if gpus and vram is None and not isinstance(unknown, str):
            vram = float(unknown)
        out[item.nodeid] = Need(gpus, vram)
    return out


def attempt(
    state: _parallel_ledger.State | None,
    nodeid: str,
    worker: str,
    need: Need,
    now: float,
    free: list[float] | None,
    waited_s: float,
) -> _parallel_ledger.Held | str | None:
    """One look at the ledger: the reservation taken, a skip reason, or
    None (wait and look again)."""
    if state is None:
        return "the parallel run's ledger is gone (the controller ended)"
    if state.stopped:
        return "not started: the run is stopping (-x, --maxfail or an interrupt)"
    gpus = state.choose(need.gpus, need.vram_gib, now, free)
    if gpus is not None:
        return state.take(nodeid, worker, gpus, need.vram_gib, now)
    if (
        free is not None
        and not state.running
        and waited_s > FREE_WAIT_S
        and state.choose(need.gpus, need.vram_gib, now) is not None
    ):
        # Nothing of this run holds the memory: something else does.
        return (
            f"check_free_memory: NVML has not reported the memory free for {FREE_WAIT_S:g}s "
            "while no test of this run held any: a process outside the run holds it"
        )
    return None


class WorkerPlugin:
    def __init__(self, config: pytest.Config, machine: Any, settings: ParallelSettings, folder: str) -> None:
        self.config = config
        self.machine = machine
        self.settings = settings
        self.folder = Path(folder)
        self.ledger = _parallel_ledger.Ledger(folder)
        self.worker = str(config.workerinput.get("workerid", "?"))  # type: ignore[attr-defined]
        self.needs: dict[str, Need] = {}
        self.unrunnable: dict[str, str] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Before xdist's own hook tells the controller the collection.
        items = session.items
        self.needs = needs_of(self.config, items, self.settings)
        whys = self.settings.unrunnable(
            self.machine.totals_gib,
            [self.needs[i.nodeid].gpus for i in items],
            [self.needs[i.nodeid].vram_gib for i in items],
        )
        self.unrunnable = {item.nodeid: why for item, why in zip(items, whys) if why is not None}
        data = {
            "ids": [item.nodeid for item in items],
            "gpus": [self.needs[item.nodeid].gpus for item in items],
            "vram_gib": [self.needs[item.nodeid].vram_gib for item in items],
            "unrunnable": self.unrunnable,
        }
        path = self.folder / f"needs-{self.worker}.json"
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(data))
        os.replace(partial, path)

    def _wait(self, item: pytest.Item, need: Need) -> _parallel_ledger.Held | str:
        """Reserve the test's GPUs, waiting until they have room; a skip
        reason when it must not start."""
        began = time.time()
        while True:
            free = self._free_gib() if self.settings.check_free_memory else None
            with self.ledger.locked() as state:
                got = attempt(state, item.nodeid, self.worker, need, time.time(), free, time.time() - began)
            if got is not None:
                return got
            time.sleep(POLL_S)

    def _free_gib(self) -> list[float] | None:
        return _parallel_machine.free_gib(self.config, self.machine)

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, None, None]:
        # Outside pytest-timeout's wrapper: waiting for room is not the test's time.
        need = self.needs.get(item.nodeid)
        saved: dict[str, str | None] = {}
        held = None
        # A test skipped by its marks (the hardware skips' among them) holds nothing.
        skipped = item.get_closest_marker("skip") is not None
        if need is not None and item.nodeid not in self.unrunnable and not skipped:
            saved[CVD] = os.environ.get(CVD)
            if need.gpus == 0:
                os.environ[CVD] = ""
            else:
                got = self._wait(item, need)
                if isinstance(got, str):
                    item.stash[SKIP_REASON] = got
                else:
                    held = got
                    ids = tuple(self.machine.ids[g] for g in got.gpus)
                    os.environ[CVD] = ",".join(ids)
                    item.stash[ASSIGNMENT] = Assignment(
                        tuple(got.gpus),
                        ids,
                        tuple(self.machine.uuids[g] for g in got.gpus),
                        got.gib,
                        got.exclusive,
                        got.at,
                    )
                    item.user_properties.append((GPUS_PROPERTY, ",".join(ids)))
            for marker, variable in self.settings.env.items():
                mark = item.get_closest_marker(marker)
                if mark is not None and mark.args:
                    saved.setdefault(variable, os.environ.get(variable))
                    os.environ[variable] = str(mark.args[0])
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            if held is not None:
                with self.ledger.locked() as state:
                    if state is not None:
                        state.release(item.nodeid, time.time())

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        why = self.unrunnable.get(item.nodeid) or item.stash.get(SKIP_REASON, None)
        if why is not None:
            pytest.skip(why)


def assignment(item: pytest.Item) -> Assignment | None:
    """The running test's GPUs in a GPU-parallel run; None otherwise."""
    return item.stash.get(ASSIGNMENT, None)
