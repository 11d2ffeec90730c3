"""The end-of-run summary of the records, after gating's (gating failures and
non-gating failures with their owners): flaky tests, quarantined tests and
expired quarantine entries, the slowest tests with their stage (opt-in), and
where the records went.

Quiet as pytest is quiet (docs/flakiness.md, "The summary"): problems are
listed one per line by default and under ``-q``, and only counted under
``-qq``; lines that only inform (passing quarantined tests, where the
records went) are left out under ``-q``. The slowest tests, asked for
explicitly, are shown at any verbosity."""

from __future__ import annotations

from typing import Protocol

import pytest

from pytest_dynamo._core import ExpiredQuarantine, Recorder, RunPolicy


class SummarySource(Protocol):
    """What the summary reads of the records plugin (``_records.RecordsPlugin``),
    named here so that the two modules do not import each other."""

    config: pytest.Config
    recorder: Recorder
    policy: RunPolicy
    fail_on_flaky: bool
    expired: list[ExpiredQuarantine]
    slowest: int
    durations_note: str | None


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def write(tr: pytest.TerminalReporter, records: SummarySource) -> None:
    verbosity = records.config.get_verbosity()
    #: Problems one per line (default and -q); only their count under -qq.
    listed = verbosity >= -1
    #: Lines that only inform: not under -q.
    informed = verbosity >= 0
    recorder = records.recorder
    flaky = recorder.flaky()
    if flaky:
        fails = records.fail_on_flaky
        if listed:
            tr.write_sep("=", "flaky tests (passed on a retry)", yellow=not fails, red=fails)
            for test in flaky:
                why = f": {test.reason}" if test.reason else ""
                owner = test.owner or "unassigned"
                tr.write_line(f"FLAKY {test.nodeid} ({test.attempts} attempts; owner: {owner}){why}")
        verdict = "the run fails (dynamo_fail_on_flaky)" if fails else "the run passes"
        tr.write_line(
            f"pytest-dynamo: {_plural(len(flaky), 'flaky test')}; {verdict}", yellow=not fails, red=fails
        )

    quarantined = recorder.quarantined()
    passing = sum(1 for entry in quarantined if entry.outcome == "passed")
    failing = [entry for entry in quarantined if entry.outcome != "passed"]
    if failing or records.expired or (passing and informed):
        if listed:
            tr.write_sep("=", "quarantine", yellow=True)
            for q in failing:
                entry = f"({q.ticket}, owner: {q.owner}, expires {q.expires})"
                tr.write_line(f"QUARANTINED {q.nodeid}: {q.outcome} {entry}")
            for e in records.expired:
                tr.write_line(
                    f"EXPIRED {e.ticket} (owner: {e.owner}) on {e.expires}: {e.test}: {e.reason}",
                    red=records.policy.strict,
                    yellow=not records.policy.strict,
                )
        if failing and not listed:
            tr.write_line(
                f"pytest-dynamo: {_plural(len(failing), 'quarantined test')} failed; the run passes for them",
                yellow=True,
            )
        if passing and informed:
            tr.write_line(
                f"pytest-dynamo: {_plural(passing, 'quarantined test')} passed "
                "(remove their entries once they are fixed)"
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
        for slow in slowest:
            tr.write_line(f"{slow.seconds:8.2f}s {slow.nodeid} (stage: {slow.stage or '-'})")

    # A failed write says only that: "appended" would claim what did not happen.
    error = recorder.write_error()
    if recorder.path is not None and error is None and informed:
        tr.write_line(
            f"pytest-dynamo: {_plural(len(recorder), 'test record')} "
            f"(run {recorder.run_id}) appended to {recorder.path}"
        )
    if error is not None:
        lost = _plural(error.lost, "record")
        tr.write_line(f"pytest-dynamo: {lost} could not be written: {error.message}", red=True)
    if records.durations_note is not None and informed:
        tr.write_line(f"pytest-dynamo: {records.durations_note}")
