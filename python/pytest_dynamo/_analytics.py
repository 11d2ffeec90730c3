"""The run-time side of the history analytics: the ``dynamo_metric``
fixture and the Prometheus export. The report and the gates are commands
(``pytest-dynamo report``, ``pytest-dynamo gate``)."""

from __future__ import annotations

import pytest

from pytest_dynamo import _metric, _prometheus


def add_options(parser: pytest.Parser) -> None:
    _prometheus.add_options(parser)


def register(config: pytest.Config) -> None:
    config.pluginmanager.register(_metric, "dynamo-metric")
    _prometheus.register(config)
