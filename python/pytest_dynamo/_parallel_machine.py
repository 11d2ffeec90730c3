"""GPU-parallel runs: whether this run packs GPU tests, and the machine it
packs them onto (the visible GPUs, their memory and budgets, what NVML says
is free). Shared by the controller's side (``_parallel``), the workers'
(``_parallel_worker``), the scheduler (``_parallel_sched``), the budgets and
the selection; it imports none of them, so they do not import each other."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from pytest_dynamo import _state
from pytest_dynamo._core import ConfigError, ParallelSettings, ParallelWorkers, probe_gpus

ENV = "DYNAMO_GPU_PARALLEL"
TRUE = ("1", "true", "yes", "on")


def enabled(config: pytest.Config) -> bool:
    """Flag, then environment, then ini."""
    if config.getoption("dynamo_gpu_parallel", default=None):
        return True
    env = os.environ.get(ENV, "").strip().lower()
    if env:
        return env in TRUE
    return bool(config.getini("dynamo_gpu_parallel"))


@dataclass(frozen=True)
class Machine:
    """The visible GPUs in the run's order."""

    #: As the outer ``CUDA_VISIBLE_DEVICES`` names them (positions when unset).
    ids: list[str]
    uuids: list[str | None]
    totals_gib: list[float]
    budgets_gib: list[float]


class Controller(Protocol):
    """What the scheduler (``_parallel_sched``) reads and sets of the
    controller's side (``_parallel.ControllerPlugin``)."""

    folder: str
    machine: Machine
    settings: ParallelSettings
    plan: ParallelWorkers | None

    def stop(self) -> None:
        """Start no more tests (the session should stop)."""


def settings(config: pytest.Config) -> ParallelSettings:
    return _state.engine(config).parallel()


def machine(config: pytest.Config, inventory: dict[str, Any], parallel: ParallelSettings) -> Machine:
    visible = int(inventory.get("visible") or 0)
    # A count set by hand (--dynamo-gpus) may go beyond the devices NVML described.
    devices = (list(inventory.get("devices") or []) + [{}] * visible)[:visible]
    outer = inventory.get("cuda_visible_devices")
    ids = [entry.strip() for entry in outer.split(",")] if outer is not None and outer.strip() else []
    # The first N entries are the visible devices (CUDA stops at the first bad one).
    ids = (ids + [str(i) for i in range(len(ids), visible)])[:visible]
    totals: list[float] = []
    for device in devices:
        total = device.get("memory_total_mib")
        if total is None:
            if parallel.gpu_memory_gib is None:
                raise pytest.UsageError(
                    "pytest-dynamo: --dynamo-gpu-parallel: the GPUs' memory is unknown "
                    f"({inventory.get('reason') or 'NVML did not say'})\n"
                    "  fix: set [tool.pytest-dynamo.parallel] gpu_memory_gib, the budget per GPU in GiB"
                )
            totals.append(parallel.gpu_memory_gib)
        else:
            totals.append(float(total) / 1024.0)
    uuids = [device.get("uuid") for device in devices]
    return Machine(ids, uuids, totals, parallel.budgets_gib(totals))


def free_gib(config: pytest.Config, found: Machine) -> list[float] | None:
    """What NVML reports free on each visible GPU now (``check_free_memory``);
    None when NVML cannot say (the gate then trusts the budgets)."""
    from pytest_dynamo import _gpu

    try:
        now = probe_gpus(
            _gpu.nvml_lib(config),
            os.environ.get("CUDA_VISIBLE_DEVICES"),
            None,
            None,
            _gpu.nvml_timeout(config),
        )
    except (ConfigError, ValueError, OSError):
        return None
    devices = now.devices
    if len(devices) != len(found.ids):
        return None
    free = [f for f in (d.memory_free_mib for d in devices) if f is not None]
    if len(free) != len(devices):
        return None
    return [f / 1024.0 for f in free]


def gib(value: float) -> str:
    """A GiB figure without a needless ``.0``."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
