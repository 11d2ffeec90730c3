"""The ``dynamo_metric`` fixture: a benchmark test records a named value,
its unit and whether higher is better. The value rides on
``request.node.user_properties`` (so it crosses from xdist workers), the
records writer copies it into the test record's ``metrics``, and the
performance gate compares it with the baseline median of earlier runs on
the same GPU model (docs/gates.md)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pytest_dynamo._core import PROPERTY_METRIC

#: The user-property key the records writer looks for.
PROPERTY = PROPERTY_METRIC


class MetricRecorder:
    """``dynamo_metric(name, value, *, unit="", higher_is_better)``."""

    def __init__(self, node: pytest.Item) -> None:
        self._node = node

    def __call__(self, name: str, value: float, *, unit: str = "", higher_is_better: bool) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"dynamo_metric: the metric name must be a non-empty string, not {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(
                f"dynamo_metric({name!r}): the value must be a number, not {type(value).__name__}"
            )
        if not math.isfinite(value):
            raise ValueError(f"dynamo_metric({name!r}): the value must be finite, not {value!r}")
        if not isinstance(unit, str):
            raise TypeError(f"dynamo_metric({name!r}): unit must be a string such as 'ms', not {unit!r}")
        if not isinstance(higher_is_better, bool):
            raise TypeError(
                f"dynamo_metric({name!r}): higher_is_better must be True (throughput) "
                f"or False (latency), not {higher_is_better!r}"
            )
        metric: dict[str, Any] = {
            "name": name,
            "value": float(value),
            "unit": unit,
            "higher_is_better": higher_is_better,
        }
        self._node.user_properties.append((PROPERTY, metric))


@pytest.fixture
def dynamo_metric(request: pytest.FixtureRequest) -> MetricRecorder:
    """Record a performance metric of this test for the performance gate:
    ``dynamo_metric("ttft_ms", 41.2, unit="ms", higher_is_better=False)``."""
    node = request.node
    assert isinstance(node, pytest.Item)
    return MetricRecorder(node)
