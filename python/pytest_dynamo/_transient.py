"""Retries of failures that say they are transient (issue #16):
``[tool.pytest-dynamo.retries] transient = ["regex", ...]``. A failed
attempt whose text (the failure and its captured output) matches a pattern
is retried, up to ``dynamo_reruns`` times (default 2), as a ``flaky`` test
is (docs/flakiness.md): each attempt is in the records' ``attempts``. Other
failures are never retried. When pytest-rerunfailures or the flaky plugin
is active, they retry and this stays out of the way."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_dynamo import _numbers, _options, _retries, _state
from pytest_dynamo._core import Engine

TRANSIENT = "dynamo-transient-retries"


def failure_text(report: pytest.TestReport) -> str:
    sections = "\n".join(content for _, content in report.sections)
    return f"{report.longreprtext}\n{sections}"


class TransientRetries:
    def __init__(self, engine: Engine, reruns: int) -> None:
        self.engine = engine
        self.reruns = reruns

    def _transient(self, report: pytest.TestReport) -> bool:
        return self.engine.transient_match(failure_text(report)) is not None

    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        if item.get_closest_marker("flaky") is not None:
            return None  # a flaky test's own retries apply
        option = item.config.option
        if any(getattr(option, name, False) for name in ("usepdb", "setuponly", "setupshow")):
            return None
        _retries.run_with_retries(item, nextitem, self.reruns, self._transient)
        return True

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> None:
        # Seen, not answered: each retry re-arms the timer with these settings.
        item.stash[_retries.TIMEOUT] = settings


def register(config: pytest.Config) -> None:
    engine = _state.engine(config)
    if not engine.retries_transient or _retries.other_retrier(config) is not None:
        return
    reruns = _options.get_int(config, "dynamo_reruns", 0, _numbers.MAX_RERUNS)
    reruns = 2 if reruns is None else reruns
    if reruns:
        config.pluginmanager.register(TransientRetries(engine, reruns), TRANSIENT)
