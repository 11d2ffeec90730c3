"""Time budgets in a pytest run: how the plan's stages run (shards, GPU
packing) for its wall-time estimates, and the machine a GPU-parallel shard
split balances for. The estimates and the budgets themselves live in the
core (``[tool.pytest-dynamo.pipelines.NAME] budget``)."""

from __future__ import annotations

import pytest


def gpu_parallel(config: pytest.Config) -> bool:
    """True when this run packs GPU tests (``--dynamo-gpu-parallel`` or ini
    ``dynamo_gpu_parallel``); False where no such option is registered."""
    if config.getoption("dynamo_gpu_parallel", default=False):
        return True
    try:
        value = config.getini("dynamo_gpu_parallel")
    except ValueError:  # the option is not registered in this install
        return False
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)
