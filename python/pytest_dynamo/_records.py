"""Records of a run, what reports read, kept by the process that sees every
report (the single process, or the xdist controller): a JSON line per test as
it finishes, in memory (``_state.TEST_RECORDS``) and in the records file when
one is named; the run-start and run-end lines; the durations file; JUnit
properties; and the end-of-run summary. Building and writing lines is the
core's; this module gathers what pytest reports."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from pytest_dynamo import _facts, _flow, _numbers, _options, _outcomes, _retries, _shards, _state, _summary
from pytest_dynamo._core import (
    DOCS_URL,
    REPORT_FAILED,
    REPORT_FINISHED,
    REPORT_RETRIED,
    ConfigError,
    ExpiredQuarantine,
    Recorder,
    RunPolicy,
)
from pytest_dynamo._gating import Gating, GatingReports

RECORDS = "dynamo-records"
#: Flags ``Recorder.report`` answers with: the report failed; it finished
#: its test; it ends an attempt that is retried.
FAILED, FINISHED, RETRIED = REPORT_FAILED, REPORT_FINISHED, REPORT_RETRIED
#: ``report.user_properties`` other features set for the records (read by
#: the core): ``dynamo_gpus_used`` (int), ``dynamo_gpu_peak_mib`` (float),
#: ``dynamo_metric`` ({"name", "value", "unit", "higher_is_better"}).
#: Our own properties, replaced by readable ones in JUnit XML.
INTERNAL = (_facts.FACTS, _facts.FLOW_ID, _facts.EXEMPT)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("dynamo")
    group.addoption(
        "--dynamo-records",
        dest="dynamo_records",
        metavar="PATH",
        help="Append a JSON line per test (and per run start and end) to PATH; "
        f"schema in {DOCS_URL}records.md. Several runs may share the file.",
    )
    parser.addini("dynamo_records", "Records file (JSON Lines), relative to the rootdir.", default="")
    group.addoption(
        "--dynamo-reruns",
        dest="dynamo_reruns",
        type=_options.whole_number("--dynamo-reruns", 0, _numbers.MAX_RERUNS),
        metavar="N",
        help="How many times a test marked flaky (without reruns=N) is retried (default 2).",
    )
    parser.addini("dynamo_reruns", "Retries of a test marked flaky without reruns=N.", default="2")
    group.addoption(
        "--dynamo-fail-on-flaky",
        dest="dynamo_fail_on_flaky",
        action="store_true",
        default=None,
        help="Fail the run when a test passed only on a retry.",
    )
    parser.addini("dynamo_fail_on_flaky", "Fail the run when a test passed only on a retry.", type="bool")
    group.addoption(
        "--dynamo-slowest",
        dest="dynamo_slowest",
        type=_options.whole_number("--dynamo-slowest", 0, _numbers.MAX_LIST),
        metavar="N",
        help="List the N slowest tests with their stage at the end (default 0: off; "
        "pytest's --durations=N lists them without the stage).",
    )
    parser.addini("dynamo_slowest", "How many of the slowest tests the summary lists (0: none).", default="0")


def _count(config: pytest.Config, name: str, high: int, default: int) -> int:
    """A whole-number option from 0 to ``high``; ``default`` when set empty."""
    value = _options.get_int(config, name, 0, high)
    return default if value is None else value


def _flag(config: pytest.Config, name: str) -> bool:
    if config.getoption(name, default=None):
        return True
    return bool(config.getini(name))


def _path(config: pytest.Config, name: str) -> Path | None:
    """A file from a flag (relative to where pytest was started) or the ini
    option (relative to the rootdir)."""
    flag = config.getoption(name, default=None)
    if flag:
        return config.invocation_params.dir / str(flag)
    ini = str(config.getini(name) or "").strip()
    return config.rootpath / ini if ini else None


def register(config: pytest.Config) -> None:
    """Register records, retries, quarantine and flow ids for this run."""
    engine = _state.engine(config)
    try:
        policy = engine.run_policy(str(config.rootpath))
    except ConfigError as err:
        raise _options.usage_error(err) from None
    run_id: str = _state.shared(config, "run_id", lambda: _new_run_id(config))
    retrier = _retries.other_retrier(config)
    facts = _facts.TestFacts(
        config,
        policy,
        default_reruns=_count(config, "dynamo_reruns", _numbers.MAX_RERUNS, 2),
        retries=retrier is None,
    )
    config.pluginmanager.register(facts, _facts.PLUGIN)
    config.pluginmanager.register(_flow, "dynamo-flow")
    if _state.is_worker(config):
        config.pluginmanager.register(GatingReports(_facts.gating(config)), "dynamo-gating-reports")
    else:
        records = RecordsPlugin(config, policy, run_id)
        config.pluginmanager.register(records, RECORDS)
        config.pluginmanager.register(ExitPolicy(records), "dynamo-exit-policy")
        outcomes = _outcomes.Outcomes(config, _facts.gating(config), records.fail_on_flaky)
        config.pluginmanager.register(outcomes, _outcomes.PLUGIN)


def _new_run_id(config: pytest.Config) -> str:
    from pytest_dynamo._core import new_run_id

    # The shards of one CI run share its run_id: one run in the report, not N.
    return _shards.run_id(config) or new_run_id()


class RecordsPlugin:
    def __init__(self, config: pytest.Config, policy: RunPolicy, run_id: str) -> None:
        self.config = config
        self.policy = policy
        path = _path(config, "dynamo_records")
        durations = _path(config, "dynamo_durations")
        try:
            self.recorder = Recorder(run_id, None if path is None else str(path))
            # The durations file is updated by runs that write records; read it
            # now so a corrupt one stops the run before any test, not after.
            self.durations = durations if path is not None else None
            if self.durations is not None:
                Recorder.check_durations(str(self.durations))
        except ConfigError as err:
            raise _options.usage_error(err) from None
        self.fail_on_flaky = _flag(config, "dynamo_fail_on_flaky")
        self.slowest = _count(config, "dynamo_slowest", _numbers.MAX_LIST, 0)
        self.junit = bool(getattr(config.option, "xmlpath", None))
        #: The core takes each report: one call per report.
        self.take = self.recorder.report
        #: The flags that need more than the core: failures for gating, and
        #: for JUnit XML the properties of attempts and finished tests.
        self.more = FAILED | (FINISHED | RETRIED if self.junit else 0)
        self.gating: Gating = _facts.gating(config)
        self.expired: list[ExpiredQuarantine] = []
        self.durations_note: str | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # After the facts plugin made the table: this process collected the
        # tests it records, so their facts need not travel on the reports.
        facts = self.config.pluginmanager.get_plugin(_facts.PLUGIN)
        if isinstance(facts, _facts.TestFacts) and facts.table is not None:
            self.recorder.use_facts(facts.table)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        import json
        import platform

        # Logged here, where pytest's logging is set up: --log-cli-level shows it.
        self.expired = self.policy.expired(self.recorder.run_id)
        if self.expired:
            entries: list[object] = [_outcomes.ExpiredEntry(e.test, e.ticket) for e in self.expired]
            _outcomes.count(self.config, _outcomes.EXPIRED, entries)
            if self.policy.strict:
                _outcomes.fail_the_last_line(self.config)
        # What the run-start line says; it is written before the first test's.
        stash = self.config.stash
        context = stash.get(_state.RUN_CONTEXT, {})
        inventory = None
        if _state.INVENTORY in stash:
            inventory = json.dumps(stash[_state.INVENTORY], default=str)
        self.recorder.begin(
            str(self.config.rootpath),
            platform.node(),
            context.get("pipeline"),
            context.get("stage"),
            context.get("framework"),
            inventory,
            context.get("shard"),
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Runs for every report of every test: one call into the core, and
        # more only for a failure or a finished test's JUnit properties.
        flags = self.take(report)
        if flags & self.more:
            self._after(report, flags)

    def _after(self, report: pytest.TestReport, flags: int) -> None:
        if flags & FAILED:
            # Under xdist the controller collected nothing: a worker's
            # exemption (pipeline, quarantine) reaches gating with the report.
            for name, value in report.user_properties:
                if name == _facts.EXEMPT:
                    self.gating.add_exemption(report.nodeid, str(value))
            self.gating.note(report)
        if self.junit and report.when != "setup" and report.when != "call":
            report.user_properties = [p for p in report.user_properties if p[0] not in INTERNAL]
            if flags & FINISHED:
                report.user_properties.extend(self.recorder.last_junit_properties())

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Tests cut short (an interrupted run): recorded from the reports they got.
        self.recorder.finish_cut_short()
        # Gating's summary names the owner of every failure.
        self.gating.owners.update(self.recorder.failure_owners())
        if self.config.option.collectonly:
            return
        status = self.exit_status(session)
        self.config.stash[_state.RUN_END] = self.recorder.end(int(status))
        # Made once, at the end: a Python string per test as it ran would cost every run.
        self.config.stash[_state.TEST_RECORDS] = self.recorder.lines()
        if self.durations is not None and len(self.recorder):
            try:
                held = self.recorder.merge_durations(str(self.durations))
                self.durations_note = f"durations of {held} tests in {self.durations}"
            except ConfigError as err:
                self.durations_note = f"durations not written: {err}"

    def exit_status(self, session: pytest.Session) -> int:
        """The status the run ends with: gating's, then flaky and quarantine rules."""
        status = int(self.gating.settle(session, session.exitstatus))
        if status == pytest.ExitCode.OK and self.fails_run():
            return int(pytest.ExitCode.TESTS_FAILED)
        return status

    def fails_run(self) -> bool:
        flaky = self.fail_on_flaky and self.recorder.count(_outcomes.FLAKY) > 0
        return flaky or (self.policy.strict and bool(self.expired))

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.fails_run():
            _outcomes.fail_the_last_line(self.config)
        _summary.write(terminalreporter, self)


class ExitPolicy:
    """Applies the records' own rules (``--dynamo-fail-on-flaky``, strict
    quarantine) after every ``pytest_sessionfinish``, gating's included."""

    def __init__(self, records: RecordsPlugin) -> None:
        self.records = records

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        result = yield
        if session.exitstatus == pytest.ExitCode.OK and self.records.fails_run():
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return result
