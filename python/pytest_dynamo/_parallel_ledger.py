"""The reservations of a GPU-parallel run, shared by the xdist workers: a
JSON file under an exclusive lock (``flock``) in the run's folder.

A worker takes a test's reservation where the test starts (it may wait
there) and gives it back after teardown; the controller gives back a dead
worker's. The GPUs are chosen best-fit as the core scheduler chooses them
(the least room left after the test, ties by index), so big holes stay
for big tests. Budgets and needs are in GiB."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Tolerance on GiB sums: budgets and needs are decimals.
EPSILON = 1e-9


@dataclass
class Held:
    worker: str
    gpus: list[int]
    #: GiB reserved on each GPU (its whole budget when exclusive).
    gib: float
    exclusive: bool
    #: When it was taken (epoch seconds): the stagger counts from here.
    at: float = 0.0


@dataclass
class State:
    budgets: list[float]
    #: Least seconds between two starts on one GPU.
    interval_s: float = 0.0
    running: dict[str, Held] = field(default_factory=dict)
    last_start: list[float] = field(default_factory=list)
    #: Per GPU: the most reserved at once, seconds busy, busy since (or None).
    peak: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)
    busy_since: list[float | None] = field(default_factory=list)
    stopped: bool = False

    def __post_init__(self) -> None:
        n = len(self.budgets)
        for name, empty in (("last_start", -1e18), ("peak", 0.0), ("busy", 0.0), ("busy_since", None)):
            if len(getattr(self, name)) != n:
                setattr(self, name, [empty] * n)

    def reserved(self) -> list[float]:
        out = [0.0] * len(self.budgets)
        for held in self.running.values():
            for g in held.gpus:
                out[g] += held.gib
        return out

    def tests_on(self) -> list[int]:
        out = [0] * len(self.budgets)
        for held in self.running.values():
            for g in held.gpus:
                out[g] += 1
        return out

    def choose(
        self, gpus: int, vram_gib: float | None, now: float, free_gib: Sequence[float] | None = None
    ) -> list[int] | None:
        """The GPUs a need fits on now (``vram_gib`` None: GPUs to itself),
        or None. ``free_gib``: what NVML reports free, when checked."""
        reserved, on = self.reserved(), self.tests_on()
        exclusive = {g for held in self.running.values() if held.exclusive for g in held.gpus}
        candidates: list[tuple[float, int]] = []
        for g, budget in enumerate(self.budgets):
            if g in exclusive or now - self.last_start[g] < self.interval_s:
                continue
            left = budget - reserved[g]
            want = budget if vram_gib is None else vram_gib
            if free_gib is not None and free_gib[g] + EPSILON < want:
                continue
            if vram_gib is None:
                if on[g] == 0:
                    candidates.append((0.0, g))
            elif left + EPSILON >= vram_gib:
                candidates.append((left - vram_gib, g))
        if len(candidates) < gpus:
            return None
        candidates.sort()
        return sorted(g for _, g in candidates[:gpus])

    def take(self, nodeid: str, worker: str, gpus: list[int], vram_gib: float | None, now: float) -> Held:
        exclusive = vram_gib is None
        # An exclusive test holds each GPU's whole budget.
        gib = max(self.budgets[g] for g in gpus) if vram_gib is None else float(vram_gib)
        held = Held(worker, gpus, gib, exclusive, now)
        on = self.tests_on()
        self.running[nodeid] = held
        reserved = self.reserved()
        for g in gpus:
            self.last_start[g] = now
            if on[g] == 0:
                self.busy_since[g] = now
            self.peak[g] = max(self.peak[g], min(reserved[g], self.budgets[g]))
        return held

    def release(self, nodeid: str, now: float) -> bool:
        held = self.running.pop(nodeid, None)
        if held is None:
            return False
        on = self.tests_on()
        for g in held.gpus:
            since = self.busy_since[g]
            if on[g] == 0 and since is not None:
                self.busy[g] += max(0.0, now - since)
                self.busy_since[g] = None
        return True

    def release_worker(self, worker: str, now: float) -> list[str]:
        """Give back everything a (dead) worker held; the node ids."""
        gone = [nodeid for nodeid, held in self.running.items() if held.worker == worker]
        for nodeid in gone:
            self.release(nodeid, now)
        return gone

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "budgets": self.budgets,
            "interval_s": self.interval_s,
            "running": {k: vars(v) for k, v in self.running.items()},
            "last_start": self.last_start,
            "peak": self.peak,
            "busy": self.busy,
            "busy_since": self.busy_since,
            "stopped": self.stopped,
        }
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> State:
        data = json.loads(text)
        data["running"] = {k: Held(**v) for k, v in data["running"].items()}
        return cls(**data)


class Ledger:
    """The state file and its lock, in the run's folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / "ledger.json"
        self.lock_path = self.folder / "ledger.lock"

    def create(self, budgets: Sequence[float], interval_s: float) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.locked():
            pass
        self._write(State(list(budgets), interval_s))

    def _write(self, state: State) -> None:
        partial = self.path.with_suffix(".partial")
        partial.write_text(state.to_json())
        os.replace(partial, self.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[State | None]:
        """The state under the lock, written back when the block ends
        (None before ``create``)."""
        import fcntl

        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = State.from_json(self.path.read_text()) if self.path.exists() else None
                yield state
                if state is not None:
                    self._write(state)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> State | None:
        with self.locked() as state:
            return state
