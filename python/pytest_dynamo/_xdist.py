"""pytest-xdist integration, registered only when xdist is active: hands the
values the controller computed once (``_state.shared``) to every worker."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_dynamo import _activation, _state


class XdistIntegration:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node: Any) -> None:
        handed: dict[str, Any] = self.config.stash.get(_state.FOR_WORKERS, {})
        node.workerinput["dynamo"] = dict(handed)
        # A worker's command line lacks the controller's flags: it acts
        # because the controller does.
        node.workerinput[_activation.WORKER_KEY] = _activation.of(self.config).why
