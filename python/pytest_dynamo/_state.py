"""Per-run state on ``config.stash``: never module globals, so in-process
pytester runs do not leak into each other.

The keys here are also how the features talk to each other: the pipelines
put the run's context and gating exemptions here, the GPU probe its
inventory, and the records read them.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import pytest

from pytest_dynamo import _options
from pytest_dynamo._core import Batch, ConfigError, Engine, Selection

ENGINE = pytest.StashKey[Engine]()
BATCH = pytest.StashKey[Batch]()
#: The run's selection by pipeline, stage and framework, as the core made it:
#: the facts take each kept test's stage and gating from it, in the core.
SELECTION = pytest.StashKey[Selection]()
#: What this run is: ``{"pipeline": ..., "stage": ..., "framework": ...}`` (JSON-able).
RUN_CONTEXT = pytest.StashKey[dict[str, Any]]()
#: The GPU inventory the probe found (JSON-able), the same on every xdist worker.
INVENTORY = pytest.StashKey[dict[str, Any]]()
#: The run's test records as JSON lines (schema in docs/records.md), in the
#: order tests finished; filled by the records feature on the controller.
TEST_RECORDS = pytest.StashKey[list[str]]()
#: The run-end record (JSON), set at ``pytest_sessionfinish`` before any
#: ``trylast`` hook of that name runs.
RUN_END = pytest.StashKey[str]()
#: Values computed once on the xdist controller and handed to every worker.
FOR_WORKERS = pytest.StashKey[dict[str, Any]]()
#: True when this run prints the plan instead of running tests (set by the
#: selection at configure time, read by the features registered after it).
PLANNING = pytest.StashKey[bool]()


def load_engine(config: pytest.Config) -> Engine:
    """Load the configuration once; a bad one is a usage error, not a traceback."""
    config_file = _options.get(config, "dynamo_config", env="DYNAMO_CONFIG") or None
    try:
        engine = Engine.load(str(config.rootpath), config_file)
    except ConfigError as err:
        raise _options.usage_error(err) from None
    config.stash[ENGINE] = engine
    return engine


def engine(config: pytest.Config) -> Engine:
    return config.stash[ENGINE]


def batch(config: pytest.Config) -> Batch | None:
    return config.stash.get(BATCH, None)


def planning(config: pytest.Config) -> bool:
    """True when this run prints the plan (``--dynamo-plan``) instead of running tests."""
    return config.stash.get(PLANNING, False)


def positions(items: Sequence[pytest.Item], batched: Sequence[pytest.Item]) -> list[int] | None:
    """The batch index of each item pytest still runs; None when that is the
    whole batch in order (no -m, -k or reordering plugin). Items are matched
    by identity, which also tells apart tests that share a node id."""
    if len(items) == len(batched) and all(map(operator.is_, items, batched)):
        return None
    index = dict(zip(map(id, batched), range(len(batched))))
    return list(map(index.__getitem__, map(id, items)))


def is_worker(config: pytest.Config) -> bool:
    """True in a pytest-xdist worker process."""
    return hasattr(config, "workerinput")


def shared(config: pytest.Config, key: str, compute: Any) -> Any:
    """A value computed once per run and the same on every xdist worker.

    On the controller (or without xdist) ``compute()`` runs once and its
    JSON-able result is kept for the workers; on a worker the controller's
    value is used.
    """
    if is_worker(config):
        handed: dict[str, Any] = config.workerinput.get("dynamo", {})  # type: ignore[attr-defined]
        if key in handed:
            return handed[key]
    computed = config.stash.setdefault(FOR_WORKERS, {})
    if key not in computed:
        computed[key] = compute()
    return computed[key]
