"""Time budgets in a pytest run: how the plan's stages run (shards, GPU
packing) for its wall-time estimates, and the machine a GPU-parallel shard
split balances for. The estimates and the budgets themselves live in the
core (``[tool.pytest-dynamo.pipelines.NAME] budget``)."""

from __future__ import annotations

import pytest

from pytest_dynamo import _parallel_machine


def gpu_parallel(config: pytest.Config) -> bool:
    """True when this run packs GPU tests: ``--dynamo-gpu-parallel``, its
    environment variable or ini key, read as the GPU-parallel run reads them."""
    return _parallel_machine.enabled(config)
