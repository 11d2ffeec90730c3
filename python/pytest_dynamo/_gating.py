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
        #: nodeid -> owner, filled by the records as failing tests finish.
        self.owners: dict[str, str] = {}
        #: Tests that failed outside their call (setup or teardown): errors.
        self.errors: set[str] = set()

    def add_exemption(self, nodeid: str, reason: str) -> None:
        self.exempt.setdefault(nodeid, reason)

    def is_gating(self, nodeid: str) -> bool:
        return nodeid not in self.exempt

    def note(self, report: pytest.TestReport) -> None:
        """Take a failed report, after every exemption it brings is in place.
        The records' report hook calls it: one hook per report, not two."""
        if not getattr(report, "wasxfail", None):
            # A failed call followed by a failed teardown stays FAILED.
            if report.when != "call" and report.nodeid not in self.failed:
                self.errors.add(report.nodeid)
            self.failed[report.nodeid] = self.is_gating(report.nodeid)

    def label(self, nodeid: str) -> str:
        """ERROR for a test that failed outside its call (as pytest counts it), else FAILED."""
        return "ERROR" if nodeid in self.errors else "FAILED"

    def follow_up(self) -> list[tuple[str, str]]:
        """Non-gating failures: ``(nodeid, why it does not gate)``."""
        return [(n, self.exempt[n]) for n, gating in self.failed.items() if not gating]

    def gating_failures(self) -> list[str]:
        return [n for n, gating in self.failed.items() if gating]

    def owner(self, nodeid: str) -> str:
        return self.owners.get(nodeid, "unassigned")

    def settle(self, session: pytest.Session, exitstatus: int) -> int:
        """The exit status once non-gating failures are forgiven."""
        if (
            exitstatus == pytest.ExitCode.TESTS_FAILED
            and self.failed
            and not self.gating_failures()
            and session.testscollected
        ):
            return pytest.ExitCode.OK
        return exitstatus

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        settled = self.settle(session, exitstatus)
        if settled != exitstatus:
            session.exitstatus = settled

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        gating = self.gating_failures()
        if gating:
            terminalreporter.write_sep("=", "gating failures", red=True)
            for nodeid in gating:
                terminalreporter.write_line(f"{self.label(nodeid)} {nodeid} (owner: {self.owner(nodeid)})")
        follow_up = self.follow_up()
        if not follow_up:
            return
        # Gating failures are always listed (as pytest's short summary is);
        # non-gating ones are only counted under -qq.
        listed = terminalreporter.config.get_verbosity() >= -1
        if listed:
            terminalreporter.write_sep("=", "non-gating failures (need follow-up)", yellow=True)
            for nodeid, reason in follow_up:
                label, owner = self.label(nodeid), self.owner(nodeid)
                terminalreporter.write_line(f"{label} {nodeid}: {reason} (owner: {owner})")
        if not gating:
            terminalreporter.write_line(
                f"pytest-dynamo: {len(follow_up)} non-gating failure(s); the run passes"
            )
        elif not listed:
            terminalreporter.write_line(f"pytest-dynamo: {len(follow_up)} non-gating failure(s)")


class GatingReports:
    """Feeds failed reports to gating where no records plugin does (an xdist
    worker)."""

    def __init__(self, gating: Gating) -> None:
        self.gating = gating

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.gating.note(report)
