"""Gating: which failures fail the run. A pipeline's non-gating tests and
quarantined tests still run; their failures are listed as needing follow-up
and do not change the exit status."""

from __future__ import annotations

import pytest

GATING = "dynamo-gating"


class Gating:
    """Collects exemptions (nodeid -> why it does not gate) and the failures."""

    def __init__(self) -> None:
        self.exempt: dict[str, str] = {}
        self.failed: dict[str, bool] = {}

    def add_exemption(self, nodeid: str, reason: str) -> None:
        self.exempt.setdefault(nodeid, reason)

    def is_gating(self, nodeid: str) -> bool:
        return nodeid not in self.exempt

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed and not getattr(report, "wasxfail", None):
            self.failed[report.nodeid] = self.is_gating(report.nodeid)

    def follow_up(self) -> list[tuple[str, str]]:
        """Non-gating failures: ``(nodeid, why it does not gate)``."""
        return [(n, self.exempt[n]) for n, gating in self.failed.items() if not gating]

    def gating_failures(self) -> list[str]:
        return [n for n, gating in self.failed.items() if gating]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if (
            exitstatus == pytest.ExitCode.TESTS_FAILED
            and self.failed
            and not self.gating_failures()
            and session.testscollected
        ):
            session.exitstatus = pytest.ExitCode.OK

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        follow_up = self.follow_up()
        if not follow_up:
            return
        terminalreporter.write_sep("=", "non-gating failures (need follow-up)", yellow=True)
        for nodeid, reason in follow_up:
            terminalreporter.write_line(f"FAILED {nodeid}: {reason}")
        if not self.gating_failures():
            terminalreporter.write_line(
                f"pytest-dynamo: {len(follow_up)} non-gating failure(s); the run passes"
            )
