"""pytest-dynamo's own outcome categories, so that pytest's progress line,
its ``-v`` words and its last line agree with the exit status.

pytest files every report under the category ``pytest_report_teststatus``
answers, counts each category in the last line and colours that line red
when (and only when) its ``failed`` or ``error`` category exists, yellow for
any category it does not know, green otherwise. So:

- a failure that does not gate (quarantined, or non-gating in a pipeline)
  is ``quarantined`` / ``non-gating``, not ``failed``: the run passes and
  the line is not red;
- a test that passed on a retry is ``flaky`` (its failed attempts ``rerun``,
  as pytest-rerunfailures reports them, also under xdist);
- when the run fails for a reason of ours (``--dynamo-fail-on-flaky``, an
  expired quarantine entry in strict mode, a strict GPU audit), an empty
  ``failed`` category is added to the terminal reporter's ``stats``: pytest
  then colours the line red without counting a failure that did not happen.

See docs/flakiness.md ("What the last line says").
"""

from __future__ import annotations

import dataclasses

import pytest

from pytest_dynamo._gating import Gating

PLUGIN = "dynamo-outcomes"
QUARANTINED = "quarantined"
NON_GATING = "non_gating"
FLAKY = "flaky"
RERUN = "rerun"
EXPIRED = "expired"
#: How gating names a quarantine exemption (the core's ``Entry::exemption``).
QUARANTINE_REASON = "quarantined:"

Status = tuple[str, str, tuple[str, dict[str, bool]]]


@dataclasses.dataclass(frozen=True)
class ExpiredEntry:
    """An expired quarantine entry, counted in the last line as ``expired``
    (the terminal reporter counts what its ``stats`` hold under a category)."""

    test: str
    ticket: str


def fail_the_last_line(config: pytest.Config) -> None:
    """Make pytest's last line red: the run fails for a reason of ours."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", None)
    if isinstance(stats, dict):
        stats.setdefault("failed", [])


def count(config: pytest.Config, category: str, entries: list[object]) -> None:
    """Count ``entries`` in the last line under ``category``."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", None)
    if isinstance(stats, dict) and entries:
        stats.setdefault(category, []).extend(entries)


class Outcomes:
    """Registered in the process that reports (the single process or the
    xdist controller), where the terminal reporter asks for each report's
    category."""

    def __init__(self, config: pytest.Config, gating: Gating, fail_on_flaky: bool) -> None:
        self.config = config
        self.gating = gating
        self.fail_on_flaky = fail_on_flaky
        #: Tests with a retried attempt so far (ours or pytest-rerunfailures').
        self.retried: set[str] = set()

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport | pytest.CollectReport, config: pytest.Config
    ) -> Status | None:
        # Runs for every report (a collection error's too, in the short
        # summary): the common case, a pass without a retry, costs two comparisons.
        outcome = report.outcome
        if outcome == "passed":
            if report.when == "call" and self.retried and report.nodeid in self.retried:
                if self.fail_on_flaky:
                    fail_the_last_line(config)
                    return FLAKY, "f", ("FLAKY", {"red": True})
                return FLAKY, "f", ("FLAKY", {"yellow": True})
            return None
        if outcome == RERUN:
            # Also on an xdist controller, where our retries do not run:
            # without this, pytest shows a rerun as F.
            self.retried.add(report.nodeid)
            return RERUN, "R", ("RERUN", {"yellow": True})
        if outcome == "failed" and report.when != "collect" and not hasattr(report, "wasxfail"):
            why = self.gating.exempt.get(report.nodeid)
            if why is not None:
                if why.startswith(QUARANTINE_REASON):
                    return QUARANTINED, "Q", ("QUARANTINED", {"yellow": True})
                return NON_GATING, "N", ("NON-GATING", {"yellow": True})
        return None

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        # pytest's FAILURES and ERRORS sections show the "failed" and "error"
        # categories only: the tracebacks of failures that do not gate are
        # shown here, the way pytest shows its own (--tb, -rN, --show-capture).
        reports = [
            report
            for category in (QUARANTINED, NON_GATING)
            for report in terminalreporter.stats.get(category, [])
            if isinstance(report, pytest.TestReport)
        ]
        style = self.config.option.tbstyle
        if not reports or style == "no":
            return
        terminalreporter.write_sep("=", "failures that do not gate (the run passes for them)", yellow=True)
        for report in reports:
            head = report.head_line or report.nodeid
            if report.when != "call":
                head = f"ERROR at {report.when} of {head}"
            if style == "line":
                crash = getattr(report.longrepr, "reprcrash", None)
                line = f"{crash.path}:{crash.lineno}: {crash.message}" if crash is not None else head
                terminalreporter.write_line(line)
                continue
            terminalreporter.write_sep("_", head, yellow=True, bold=True)
            terminalreporter.write_line(report.longreprtext)
            showcapture = self.config.option.showcapture
            if showcapture == "no":
                continue
            for name, content in report.sections:
                if showcapture != "all" and showcapture not in name:
                    continue
                terminalreporter.write_sep("-", name)
                terminalreporter.write_line(content.rstrip("\n"))
