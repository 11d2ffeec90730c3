"""GPU-parallel runs: the xdist controller's scheduler (from
``pytest_xdist_make_scheduler``). It hands the tests out in the core's
order (longest first by recorded duration, ties by node id) and keeps each
worker exactly two tests ahead: an xdist worker starts a test only once it
holds the next one, and the reservation is taken in the worker, where the
test starts (``_parallel_worker``). Workers kept for ``gpu_0`` tests get
those first."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScheduling

from pytest_dynamo import _options
from pytest_dynamo._core import GpuScheduler
from pytest_dynamo._parallel_machine import Controller

#: Tests each worker holds: the one it runs and the next.
AHEAD = 2


def recorded_durations(config: pytest.Config) -> dict[str, float]:
    path = _options.durations_path(config)
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}


class GpuScheduling(LoadScheduling):  # type: ignore[misc]
    def __init__(self, config: pytest.Config, log: Any, controller: Controller) -> None:
        super().__init__(config, log)
        self.controller = controller
        #: Test indices not handed out yet, split by kind, each in dispatch order.
        self.gpu_queue: list[int] = []
        self.cpu_queue: list[int] = []
        self.cpu_workers: set[Any] = set()
        self.needs: dict[str, Any] | None = None
        self.collection: list[str] | None = None

    # The order and the split ------------------------------------------------

    def _read_needs(self) -> dict[str, Any] | None:
        folder = self.controller.folder
        for name in sorted(os.listdir(folder)):
            if name.startswith("needs-") and name.endswith(".json"):
                try:
                    data: dict[str, Any] = json.loads((Path(folder) / name).read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                return data
        return None

    def _order(self, collection: Sequence[str]) -> None:
        """Fill the two queues in the core's dispatch order."""
        needs = self.needs = self._read_needs()
        by_id: dict[str, tuple[int, float | None]] = {}
        unrunnable: dict[str, str] = {}
        if needs is not None:
            by_id = {i: (g, v) for i, g, v in zip(needs["ids"], needs["gpus"], needs["vram_gib"])}
            unrunnable = needs.get("unrunnable", {})
        durations = recorded_durations(self.config)
        gpus = [by_id.get(i, (0, None))[0] for i in collection]
        vram = [by_id.get(i, (0, None))[1] for i in collection]
        machine = self.controller.machine
        settings = self.controller.settings
        # Slots are no cap here: the ledger's budgets are.
        big = max(1, len(collection))
        core = GpuScheduler(
            machine.ids,
            machine.totals_gib,
            big,
            big,
            list(collection),
            gpus,
            vram,
            [durations.get(i) for i in collection],
            memory_margin=settings.memory_margin,
            gpu_memory_gib=settings.gpu_memory_gib,
            unknown_vram=settings.unknown_vram,
        )
        self.core = core
        order = core.pending
        # Tests that never run go first: the workers skip them at once.
        skipped = [
            i for i, nodeid in enumerate(collection) if nodeid in unrunnable or nodeid in core.unrunnable
        ]
        self.cpu_queue = [i for i in skipped] + [i for i in order if gpus[i] == 0]
        self.gpu_queue = [i for i in order if gpus[i] > 0]
        plan = settings.worker_plan(
            machine.totals_gib, gpus, vram, len(self.node2pending), os.cpu_count() or 1
        )
        self.controller.plan = plan
        nodes = sorted(self.node2pending, key=lambda n: n.gateway.id)
        self.cpu_workers = set(nodes[: plan.cpu_slots]) if self.cpu_queue and self.gpu_queue else set()
        self.pending[:] = self.cpu_queue + self.gpu_queue

    def _gpus(self, nodeid: str) -> int:
        if not self.needs or nodeid not in self.needs["ids"]:
            return 0
        gpus: int = self.needs["gpus"][self.needs["ids"].index(nodeid)]
        return gpus

    def _pick(self, node: Any) -> int | None:
        first, second = (
            (self.cpu_queue, self.gpu_queue) if node in self.cpu_workers else (self.gpu_queue, self.cpu_queue)
        )
        queue = first or second
        if not queue:
            return None
        index = queue.pop(0)
        self.pending.remove(index)
        return index

    def _feed(self, node: Any) -> None:
        while len(self.node2pending[node]) < AHEAD and not self.stopping():
            index = self._pick(node)
            if index is None:
                break
            self.node2pending[node].append(index)
            node.send_runtest_some([index])

    # xdist's scheduling interface --------------------------------------------

    def stopping(self) -> bool:
        dsession = self.config.pluginmanager.getplugin("dsession")
        return bool(getattr(dsession, "shouldstop", False)) or self.session_should_stop()

    def session_should_stop(self) -> bool:
        dsession = self.config.pluginmanager.getplugin("dsession")
        session = getattr(dsession, "_session", None)
        return bool(session is not None and (session.shouldstop or session.shouldfail)) or bool(
            getattr(dsession, "shouldstop", False)
        )

    def check_schedule(self, node: Any, duration: float = 0, initial_batch: bool = False) -> None:
        if node.shutting_down:
            return
        if self.stopping():
            self.controller.stop()
            node.shutdown()
            return
        self._feed(node)
        if not self.pending:
            node.shutdown()

    def mark_test_pending(self, item: str) -> None:
        # A test put back (pytest-rerunfailures after a crash): first in its queue.
        assert self.collection is not None
        index = self.collection.index(item)
        self.pending.insert(0, index)
        gpus = (
            self.needs["gpus"][self.needs["ids"].index(item)]
            if self.needs and item in self.needs["ids"]
            else 0
        )
        (self.gpu_queue if gpus else self.cpu_queue).insert(0, index)
        for node in self.node2pending:
            self.check_schedule(node)

    def remove_node(self, node: Any) -> str | None:
        pending = self.node2pending.pop(node)
        self.cpu_workers.discard(node)
        if not pending:
            return None
        assert self.collection is not None
        crashitem: str = self.collection[pending.pop(0)]
        # The crashed worker's next tests go back to the front of their queues.
        for index in reversed(pending):
            self.pending.insert(0, index)
            (self.gpu_queue if self._gpus(self.collection[index]) else self.cpu_queue).insert(0, index)
        for other in self.node2pending:
            self.check_schedule(other)
        return crashitem

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:
            for node in self.nodes:
                self.check_schedule(node)
            return
        if not self._check_nodes_have_same_collection():
            self.log("**Different tests collected, aborting run**")
            return
        self.collection = next(iter(self.node2collection.values()))
        if not self.collection:
            return
        self._order(self.collection)
        for node in self.nodes:
            self.check_schedule(node)

    # The end summary ------------------------------------------------------------

    def lower_bound(self, durations: dict[str, float]) -> float | None:
        """The plan's lower bound with this run's durations."""
        if self.collection is None or self.needs is None:
            return None
        by_id = {i: (g, v) for i, g, v in zip(self.needs["ids"], self.needs["gpus"], self.needs["vram_gib"])}
        ran = [i for i in self.collection if i in durations]
        if not ran:
            return None
        machine = self.controller.machine
        settings = self.controller.settings
        core = GpuScheduler(
            machine.ids,
            machine.totals_gib,
            len(ran),
            len(ran),
            ran,
            [by_id.get(i, (0, None))[0] for i in ran],
            [by_id.get(i, (0, None))[1] for i in ran],
            [durations[i] for i in ran],
            memory_margin=settings.memory_margin,
            gpu_memory_gib=settings.gpu_memory_gib,
            unknown_vram=settings.unknown_vram,
        )
        return core.simulate().lower_bound
