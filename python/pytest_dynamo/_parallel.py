"""GPU-aware parallel runs on pytest-xdist (issue #16, docs/parallel.md):
``--dynamo-gpu-parallel``, its checks, the machine's GPUs and budgets, and
the controller's side (the scheduler, the header, the end summary). The
workers' side is ``_parallel_worker``, the shared reservations
``_parallel_ledger``, the dispatch order ``_parallel_sched``."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_dynamo import _parallel_ledger, _state
from pytest_dynamo._core import DOCS_URL, PROPERTY_PARALLEL_GPUS, ParallelSettings, ParallelWorkers
from pytest_dynamo._parallel_machine import Machine, enabled, gib, machine, settings

PLUGIN = "dynamo-parallel"
#: ``workerinput`` key: the run's folder and the worker plan.
WORKER_KEY = "dynamo_parallel"
#: Where the last run's needs are kept for the next ``-n auto`` (the
#: controller does not collect): under pytest's cache folder.
NEEDS_CACHE = ("v", "dynamo", "parallel_needs")


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("dynamo")
    group.addoption(
        "--dynamo-gpu-parallel",
        dest="dynamo_gpu_parallel",
        action="store_true",
        default=None,
        help="Run GPU tests in parallel on pytest-xdist workers (-n), packed onto the GPUs by "
        f"count and memory ({DOCS_URL}parallel.md; env DYNAMO_GPU_PARALLEL=1).",
    )
    parser.addini(
        "dynamo_gpu_parallel",
        "Run GPU tests in parallel on pytest-xdist workers, packed by GPU count and memory.",
        type="bool",
        default=False,
    )


def check(config: pytest.Config) -> None:
    """The run can be GPU-parallel: xdist installed, ``-n`` given, no other ``--dist``."""
    if not config.pluginmanager.hasplugin("xdist"):
        raise pytest.UsageError(
            "pytest-dynamo: --dynamo-gpu-parallel runs the tests on pytest-xdist workers, "
            "and pytest-xdist is not installed (or -p no:xdist turned it off)\n"
            "  fix: pip install pytest-xdist and add -n auto, or drop --dynamo-gpu-parallel"
        )
    workers = config.getoption("numprocesses", default=None)
    if not workers or config.getoption("dist", default="no") == "no":
        raise pytest.UsageError(
            "pytest-dynamo: --dynamo-gpu-parallel needs pytest-xdist workers, and -n is not given\n"
            "  fix: add -n auto (or -n N), or drop --dynamo-gpu-parallel"
        )
    dist = config.getoption("dist", default="load")
    if dist != "load":
        raise pytest.UsageError(
            f"pytest-dynamo: --dynamo-gpu-parallel hands out the tests itself; --dist={dist} cannot apply\n"
            "  fix: drop --dist"
        )


def needs_cache_path(config: pytest.Config) -> Path | None:
    """None when pytest's cache is off (``-p no:cacheprovider``)."""
    try:
        cache_dir = Path(str(config.getini("cache_dir") or ".pytest_cache"))
    except ValueError:
        return None
    if not cache_dir.is_absolute():
        cache_dir = config.rootpath / cache_dir
    return cache_dir.joinpath(*NEEDS_CACHE)


def cached_needs(config: pytest.Config) -> tuple[list[int], list[float | None]] | None:
    path = needs_cache_path(config)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
        gpus = [int(g) for g in data["gpus"]]
        vram = [None if v is None else float(v) for v in data["vram_gib"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (gpus, vram) if len(gpus) == len(vram) else None


def auto_workers(config: pytest.Config) -> int:
    """``-n auto``: the most tests that can run at once on this machine, by
    the needs the last run saw (capped by the CPU count and ``max_workers``);
    before any run, the CPU count (capped)."""
    from pytest_dynamo import _gpu

    _state.load_engine(config)
    parallel = settings(config)
    inventory = _gpu.inventory(config)
    found = machine(config, inventory, parallel)
    cpus = os.cpu_count() or 1
    needs = cached_needs(config)
    if needs is None:
        return max(1, min(cpus, parallel.max_workers or cpus))
    plan = parallel.worker_plan(found.totals_gib, needs[0], needs[1], None, cpus)
    return plan.workers


class ControllerPlugin:
    """The xdist controller's side of a GPU-parallel run."""

    def __init__(self, config: pytest.Config, found: Machine, parallel: ParallelSettings) -> None:
        self.config = config
        self.machine = found
        self.settings = parallel
        self.folder = tempfile.mkdtemp(prefix="dynamo-parallel-")
        self.ledger = _parallel_ledger.Ledger(self.folder)
        self.ledger.create(found.budgets_gib, parallel.start_interval_s)
        self.workers = int(config.getoption("numprocesses") or 1)
        needs = cached_needs(config)
        self.plan: ParallelWorkers | None = (
            parallel.worker_plan(found.totals_gib, needs[0], needs[1], self.workers, os.cpu_count() or 1)
            if needs is not None
            else None
        )
        self.started = time.time()
        #: Per test: seconds in setup, call and teardown (all attempts).
        self.durations: dict[str, float] = {}
        self.scheduler: Any = None

    def pytest_report_header(self, config: pytest.Config) -> str:
        budgets = sorted(set(round(b, 1) for b in self.machine.budgets_gib))
        n = len(self.machine.ids)
        if not n:
            gpus = "no GPU"
        elif len(budgets) == 1:
            gpus = f"{n} GPU{'' if n == 1 else 's'} x {gib(budgets[0])} GiB budget"
        else:
            gpus = f"{n} GPUs, budgets {', '.join(gib(b) for b in self.machine.budgets_gib)} GiB"
        line = f"dynamo parallel: {gpus}, {self.workers} worker{'' if self.workers == 1 else 's'}"
        if self.plan is not None:
            line += f" ({self.plan.gpu_slots} GPU slots, {self.plan.cpu_slots} CPU)"
        return line

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKER_KEY] = {"folder": self.folder}

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        from pytest_dynamo._parallel_sched import GpuScheduling

        self.scheduler = GpuScheduling(config, log, self)
        return self.scheduler

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        # A dead worker's reservations would hold its GPUs forever.
        with self.ledger.locked() as state:
            if state is not None:
                state.release_worker(node.gateway.id, time.time())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        session = getattr(self.scheduler, "session_should_stop", None)
        if session is not None and session():
            self.stop()

    def stop(self) -> None:
        with self.ledger.locked() as state:
            if state is not None and not state.stopped:
                state.stopped = True

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(self, report: Any, config: pytest.Config) -> Generator[None, Any, Any]:
        result = yield
        if config.option.verbose <= 0 or not result or (report.when != "call" and not report.skipped):
            return result
        properties = getattr(report, "user_properties", ())
        gpus = next((v for k, v in properties if k == PROPERTY_PARALLEL_GPUS), None)
        if gpus is None:
            return result
        category, letter, word = result
        label = f"GPU {gpus}" if "," not in gpus else f"GPUs {gpus}"
        if isinstance(word, tuple):
            word = (f"{word[0]} [{label}]", word[1])
        elif word:
            word = f"{word} [{label}]"
        return category, letter, word

    def summary(self) -> list[str]:
        state = self.ledger.read()
        if state is None:
            return []
        now = time.time()
        wall = now - self.started
        total = sum(self.durations.values())
        lines = []
        for g, gpu_id in enumerate(self.machine.ids):
            busy = state.busy[g]
            since = state.busy_since[g]
            if since is not None:
                busy += now - since
            lines.append(
                f"GPU {gpu_id}: busy {busy:.1f}s ({100 * busy / wall if wall > 0 else 0:.0f}%), "
                f"peak reserved {gib(round(state.peak[g], 1))} "
                f"of {gib(round(self.machine.budgets_gib[g], 1))} GiB"
            )
        speedup = f" ({total / wall:.1f}x)" if wall > 0 else ""
        line = f"wall {wall:.1f}s against {total:.1f}s of test durations{speedup}"
        bound = getattr(self.scheduler, "lower_bound", None)
        if bound is not None:
            bound_s = bound(self.durations)
            if bound_s is not None:
                line += f"; the plan's lower bound {bound_s:.1f}s"
        lines.append(line)
        return lines

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        lines = self.summary()
        if not lines or not self.durations:
            return
        terminalreporter.write_sep("-", "pytest-dynamo GPU-parallel run")
        for line in lines:
            terminalreporter.write_line(line)

    def pytest_sessionfinish(self) -> None:
        # What the next -n auto sizes the workers by (the controller does not collect).
        needs = getattr(self.scheduler, "needs", None)
        if not needs:
            return
        path = needs_cache_path(self.config)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"gpus": needs["gpus"], "vram_gib": needs["vram_gib"]}))
        except OSError:
            pass  # a read-only checkout: the next -n auto counts CPUs

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def register(config: pytest.Config) -> None:
    """After the GPU feature (its inventory): the controller's or a worker's side."""
    for marker, variable in settings(config).env.items():
        config.addinivalue_line(
            "markers",
            f"{marker}(value): sets {variable} to the value while the test runs (GPU-parallel runs)",
        )
    if _state.is_worker(config):
        handed = config.workerinput.get(WORKER_KEY)  # type: ignore[attr-defined]
        if not handed:
            return
        from pytest_dynamo._parallel_worker import WorkerPlugin

        parallel = settings(config)
        found = machine(config, config.stash[_state.INVENTORY], parallel)
        config.pluginmanager.register(WorkerPlugin(config, found, parallel, handed["folder"]), PLUGIN)
        return
    if not enabled(config):
        return
    if _state.planning(config):
        return  # the plan runs nothing: it prints the packing instead
    check(config)
    parallel = settings(config)
    found = machine(config, config.stash[_state.INVENTORY], parallel)
    config.pluginmanager.register(ControllerPlugin(config, found, parallel), PLUGIN)


def plan_text(config: pytest.Config, items: list[pytest.Item]) -> str:
    """``--dynamo-plan --dynamo-gpu-parallel``: the packing plan from the
    recorded durations (per GPU, its tests in order), the estimated makespan
    against the sequential sum, the tests that never fit, those without a
    VRAM value."""
    from pytest_dynamo._core import GpuScheduler
    from pytest_dynamo._parallel_sched import recorded_durations
    from pytest_dynamo._parallel_worker import needs_of

    parallel = settings(config)
    found = machine(config, config.stash[_state.INVENTORY], parallel)
    needs = needs_of(config, items, parallel)
    ids = [item.nodeid for item in items]
    gpus = [needs[i].gpus for i in ids]
    vram = [needs[i].vram_gib for i in ids]
    durations = recorded_durations(config)
    core = GpuScheduler(
        found.ids,
        found.totals_gib,
        max(1, len(ids)),
        max(1, len(ids)),
        ids,
        gpus,
        vram,
        [durations.get(i) for i in ids],
        memory_margin=parallel.memory_margin,
        gpu_memory_gib=parallel.gpu_memory_gib,
        unknown_vram=parallel.unknown_vram,
    )
    sim = core.simulate()
    workers = parallel.worker_plan(found.totals_gib, gpus, vram, None, os.cpu_count() or 1)
    budgets = ", ".join(gib(round(b, 1)) for b in found.budgets_gib) or "none"
    out = [
        "",
        f"GPU-parallel plan: {len(found.ids)} GPUs (budgets {budgets} GiB); -n auto starts "
        f"{workers.workers} workers ({workers.gpu_slots} GPU slots, {workers.cpu_slots} CPU)",
        f"  estimated makespan {sim.makespan:.1f}s against {sim.sequential:.1f}s sequential"
        + (f" ({sim.sequential / sim.makespan:.1f}x)" if sim.makespan > 0 else "")
        + f"; lower bound {sim.lower_bound:.1f}s"
        + ("" if durations else " (no recorded durations: every test counts the same)"),
    ]
    on: dict[int, list[str]] = {}
    cpu: list[str] = []
    for test, start, gpu_list in zip(sim.tests, sim.starts, sim.test_gpus):
        need = vram[test]
        what = f"{ids[test]} @{start:.1f}s"
        if not gpu_list:
            cpu.append(what)
            continue
        size = "exclusive" if need is None else f"{gib(need)} GiB"
        for g in gpu_list:
            on.setdefault(g, []).append(f"{what} ({size})")
    for g, gpu_id in enumerate(found.ids):
        out.append(f"  GPU {gpu_id}: {len(on.get(g, []))} tests")
        out.extend(f"    {line}" for line in on.get(g, []))
    if cpu:
        out.append(f"  CPU slots: {len(cpu)} gpu_0 tests")
        out.extend(f"    {line}" for line in cpu)
    never = core.unrunnable
    if never:
        out.append(f"  never fit ({len(never)}, skipped):")
        out.extend(f"    {nodeid}: {why}" for nodeid, why in never.items())
    unknown = [i for i, g, v in zip(ids, gpus, vram) if g and v is None and i not in never]
    if unknown:
        out.append(f"  without a VRAM value ({len(unknown)}; unknown_vram = {parallel.unknown_vram!r}):")
        out.extend(f"    {nodeid}" for nodeid in unknown)
    return "\n".join(out) + "\n"
