"""The end-of-run summary of the records, after gating's (gating failures and
non-gating failures with their owners): flaky tests, quarantined tests and
expired quarantine entries, the slowest tests with their stage, and where the
records went."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_dynamo._records import RecordsPlugin


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def write(tr: pytest.TerminalReporter, records: RecordsPlugin) -> None:
    recorder = records.recorder
    flaky = recorder.flaky()
    if flaky:
        tr.write_sep("=", "flaky tests (passed on a retry)", yellow=True)
        for nodeid, attempts, owner, reason in flaky:
            why = f": {reason}" if reason else ""
            tr.write_line(f"FLAKY {nodeid} ({attempts} attempts; owner: {owner or 'unassigned'}){why}")
        verdict = "the run fails (dynamo_fail_on_flaky)" if records.fail_on_flaky else "the run passes"
        tr.write_line(f"pytest-dynamo: {_plural(len(flaky), 'flaky test')}; {verdict}", yellow=True)

    quarantined = recorder.quarantined()
    if quarantined or records.expired:
        tr.write_sep("=", "quarantine", yellow=True)
        for nodeid, outcome, ticket, owner, expires in quarantined:
            tr.write_line(f"QUARANTINED {nodeid}: {outcome} ({ticket}, owner: {owner}, expires {expires})")
        for test, ticket, owner, expires, reason in records.expired:
            tr.write_line(
                f"EXPIRED {ticket} (owner: {owner}) on {expires}: {test}: {reason}",
                red=records.policy.strict,
                yellow=not records.policy.strict,
            )
        if records.expired:
            verdict = (
                "strict: the run fails"
                if records.policy.strict
                else "renew or remove them in " + str(records.policy.quarantine_file)
            )
            expired = _plural(len(records.expired), "expired quarantine entry", "expired quarantine entries")
            tr.write_line(
                f"pytest-dynamo: {expired}; {verdict}",
                red=records.policy.strict,
                yellow=not records.policy.strict,
            )

    slowest = recorder.slowest(records.slowest)
    if slowest:
        tr.write_sep("=", f"slowest {_plural(len(slowest), 'test')}")
        for nodeid, seconds, stage in slowest:
            tr.write_line(f"{seconds:8.2f}s {nodeid} (stage: {stage or '-'})")

    # A failed write says only that: "appended" would claim what did not happen.
    error = recorder.write_error()
    if recorder.path is not None and error is None:
        tr.write_line(
            f"pytest-dynamo: {_plural(len(recorder), 'test record')} "
            f"(run {recorder.run_id}) appended to {recorder.path}"
        )
    if error is not None:
        message, lost = error
        tr.write_line(f"pytest-dynamo: {_plural(lost, 'record')} could not be written: {message}", red=True)
    if records.durations_note is not None:
        tr.write_line(f"pytest-dynamo: {records.durations_note}")
