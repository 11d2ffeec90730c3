"""Automatic retries of tests marked ``flaky``.

A failed attempt is reported with the outcome ``rerun`` (as
pytest-rerunfailures does, so the terminal shows ``R`` and the records read
both the same way), only the test's function-scoped fixtures are torn down
and set up again, and the last attempt is reported as usual. A test that
failed and then passed ends ``flaky``. When pytest-rerunfailures (or the
``flaky`` plugin) is active, it retries and this module stays out of the way.

Every attempt runs under the test's timeout when pytest-timeout is active:
it arms its timer once per ``pytest_runtest_protocol``, so each retry re-arms
it through pytest-timeout's own hooks, with the settings it armed the first
attempt with.
"""

from __future__ import annotations

import bdb
import logging
from collections.abc import Mapping
from typing import Any, Callable, cast

import pytest

from pytest_dynamo import _flow
from pytest_dynamo._core import ATTEMPTS_ATTRIBUTE, failure_reason

RETRIES = "dynamo-retries"

#: The logger's name: made on a first retry, not at import. pytest looks at
#: every logger at each phase of each test, so an idle one costs every test.
LOGGER = "pytest_dynamo.flaky"

#: Plugins that retry tests themselves.
OTHER_RETRIERS = ("rerunfailures", "flaky")
#: Set on the last teardown report: the earlier attempts, as
#: ``(outcome, setup_s, call_s, teardown_s, reason)``.
ATTEMPTS = ATTEMPTS_ATTRIBUTE

Attempt = tuple[str, float, float, float, "str | None"]

#: The settings pytest-timeout armed this test's timer with (its own
#: ``Settings``), seen through its ``pytest_timeout_set_timer`` hook.
TIMEOUT = pytest.StashKey[Any]()


def other_retrier(config: pytest.Config) -> str | None:
    return next((name for name in OTHER_RETRIERS if config.pluginmanager.hasplugin(name)), None)


def _phase(item: pytest.Item, when: str, **kwargs: Any) -> tuple[pytest.CallInfo[None], pytest.TestReport]:
    """One phase through pytest's public hooks, as pytest's own runner does it."""
    ihook = item.ihook
    hooks: dict[str, Callable[..., None]] = {
        "setup": ihook.pytest_runtest_setup,
        "call": ihook.pytest_runtest_call,
        "teardown": ihook.pytest_runtest_teardown,
    }
    hook = hooks[when]
    call = pytest.CallInfo.from_call(
        lambda: hook(item=item, **kwargs),
        when=when,  # type: ignore[arg-type]
        reraise=(pytest.exit.Exception, KeyboardInterrupt),
    )
    report: pytest.TestReport = ihook.pytest_runtest_makereport(item=item, call=call)
    return call, report


def _log(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    item.ihook.pytest_runtest_logreport(report=report)
    excinfo = call.excinfo
    if (
        excinfo is not None
        and not hasattr(report, "wasxfail")
        and not excinfo.errisinstance((pytest.skip.Exception, bdb.BdbQuit))
    ):
        item.ihook.pytest_exception_interact(node=item, call=call, report=report)


def _fresh_request(item: pytest.Item) -> None:
    """Let the next attempt build its function fixtures and test instance anew.

    pytest has no public way to run an item twice; this is what its own
    ``runtestprotocol`` does before a re-run (and pytest-rerunfailures after a
    failure): a new fixture request, and a new instance for a test method.
    """
    if hasattr(item, "_request"):
        item._initrequest()  # type: ignore[attr-defined]
    if isinstance(item, pytest.Function) and getattr(item, "_instance", None) is not None:
        del item._instance
        item._obj = None


def _release(item: pytest.Item) -> None:
    """Drop the fixture values, as pytest does after an item's protocol."""
    if hasattr(item, "_request"):
        item._request = False
        item.funcargs = None  # type: ignore[attr-defined]


def _rearm_timeout(item: pytest.Item) -> None:
    """Give a retry the whole timeout again, as the first attempt had it.

    pytest-timeout arms its timer for the whole protocol (setup, call and
    teardown) once; the first attempt's timer has fired or is running down.
    A timeout on the call only (``func_only``) is armed per call already.
    """
    settings = item.stash.get(TIMEOUT, None)
    if settings is None or getattr(settings, "func_only", False):
        return
    hook = item.config.hook
    hook.pytest_timeout_cancel_timer(item=item)
    hook.pytest_timeout_set_timer(item=item, settings=settings)


def run_with_retries(
    item: pytest.Item,
    nextitem: pytest.Item | None,
    reruns: int,
    retry_if: Callable[[pytest.TestReport], bool] | None = None,
) -> None:
    """Run the test, retrying a failed attempt up to ``reruns`` times (only
    the failures ``retry_if`` accepts, when given)."""
    ihook = item.ihook
    worth = retry_if or (lambda report: True)
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    flow_id = item.stash.get(_flow.FLOW_ID, "-")
    earlier: list[Attempt] = []
    try:
        for attempt in range(reruns + 1):
            if attempt:
                _fresh_request(item)
                _rearm_timeout(item)
            may_retry = attempt < reruns and not item.session.shouldstop
            setup_call, setup = _phase(item, "setup")
            failed: pytest.TestReport | None = None
            if setup.failed and may_retry and worth(setup):
                setup.outcome = "rerun"  # type: ignore[assignment]
                failed = setup
            _log(item, setup_call, setup)
            call_s = 0.0
            if setup.passed:
                call_call, call = _phase(item, "call")
                call_s = call.duration
                if call.failed and may_retry and worth(call):
                    call.outcome = "rerun"  # type: ignore[assignment]
                    failed = call
                _log(item, call_call, call)
            if failed is not None:
                # Keep the module, class and session above the test: only its
                # function-scoped fixtures are torn down before the retry.
                keep = cast(pytest.Item, item.parent)
                teardown_call, teardown = _phase(item, "teardown", nextitem=keep)
                if teardown.failed:
                    teardown.outcome = "rerun"  # type: ignore[assignment]
                    _log(item, teardown_call, teardown)
                outcome = "error" if failed.when == "setup" else "failed"
                earlier.append((outcome, setup.duration, call_s, teardown.duration, failure_reason(failed)))
                logging.getLogger(LOGGER).warning(
                    _flow.line(
                        "flaky",
                        flow_id,
                        f"attempt {attempt + 1} of {reruns + 1} {outcome}",
                        f"{item.nodeid}: retrying",
                    )
                )
                continue
            if item.session.shouldfail or item.session.shouldstop:
                nextitem = None
            teardown_call, teardown = _phase(item, "teardown", nextitem=nextitem)
            if earlier:
                setattr(teardown, ATTEMPTS, earlier)
            _log(item, teardown_call, teardown)
            break
    finally:
        _release(item)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)


class Retries:
    """Takes over the protocol of tests marked flaky (and only those)."""

    def __init__(self, config: pytest.Config, reruns: Mapping[str, int]) -> None:
        self.config = config
        #: Node id -> how many times the test is retried (the run's facts).
        self.reruns = reruns

    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        reruns = self.reruns.get(item.nodeid)
        if not reruns:
            return None
        option = self.config.option
        if getattr(option, "usepdb", False) or getattr(option, "setuponly", False):
            return None  # a debugger session or a setup plan: run once, as asked
        if getattr(option, "setupshow", False):
            return None
        run_with_retries(item, nextitem, reruns)
        return True

    # pytest-timeout is optional: the hook exists only where it is active.
    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> None:
        # Only seen, never answered: pytest-timeout's own implementation arms it.
        if self.reruns.get(item.nodeid):
            item.stash[TIMEOUT] = settings
