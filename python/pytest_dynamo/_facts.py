"""Per-test facts, in every process that collects and runs tests (the single
process, or each xdist worker): worked out once for the whole collection by
the core, then attached to each test's reports so the process that writes
records (the xdist controller collects nothing) knows them too.

Each test also gets its flow id here, in ``$DYNAMO_FLOW_ID`` from its start
to the next test's."""

from __future__ import annotations

import os

import pytest

from pytest_dynamo import _flow, _retries, _state
from pytest_dynamo._core import (
    PROPERTY_EXEMPT,
    PROPERTY_FACTS,
    PROPERTY_FLOW_ID,
    FactsTable,
    RunPolicy,
    TestStart,
)
from pytest_dynamo._gating import GATING, Gating

#: ``report.user_properties`` names this feature reads on the controller
#: (spelled once, in the core).
FACTS = PROPERTY_FACTS
FLOW_ID = PROPERTY_FLOW_ID
EXEMPT = PROPERTY_EXEMPT
#: The name this plugin is registered under.
PLUGIN = "dynamo-facts"


def gating(config: pytest.Config) -> Gating:
    plugin = config.pluginmanager.get_plugin(GATING)
    assert isinstance(plugin, Gating)
    return plugin


class TestFacts:
    """Facts, retries and quarantine exemptions of the collected tests."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, config: pytest.Config, policy: RunPolicy, default_reruns: int, retries: bool) -> None:
        self.config = config
        self.policy = policy
        self.default_reruns = default_reruns
        self.retries = retries
        self.gating = gating(config)
        #: The collected tests' facts and flow ids, in the core.
        self.table: FactsTable | None = None
        #: An xdist worker sends each test's facts to the controller on its
        #: reports; a single process's records read them from the table.
        self.attach = _state.is_worker(config)
        #: Starts each test (flow id, and facts on a worker's reports); it
        #: gets the table when collection ends.
        self.start = self._test_start(None)
        #: nodeid -> how many times to retry it, for tests marked flaky.
        self.reruns: dict[str, int] = {}
        #: $DYNAMO_FLOW_ID as the session found it ("" when unset).
        self.environ: str | None = os.environ.get(_flow.ENV, "")

    def _test_start(self, table: FactsTable | None) -> TestStart:
        return TestStart(table, self.attach, os.environ, _flow.ENV, _flow.FLOW_ID)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # After every pytest_collection_modifyitems: validation, pipeline
        # selection and its gating exemptions are all in place.
        batch = _state.batch(self.config)
        if batch is None or not session.items:
            return
        # Each kept test's stage and gating: the core's own selection, not a
        # copy made in Python.
        selection = self.config.stash.get(_state.SELECTION, None)
        run_gating = self.gating
        nodeids = [item.nodeid for item in session.items]
        facts = batch.record_facts(self.policy, nodeids, selection, self.default_reruns, self.retries)
        self.reruns = facts.reruns
        problems = facts.problems
        retrier = None if self.retries else _retries.other_retrier(self.config)
        if retrier is not None:
            # Checked whatever the validation mode: the other plugin would
            # retry for ever (reruns=10**20) or crash (reruns="x") on them.
            problems = [*problems, *batch.flaky_problems(retrier)]
        if problems and _state.is_worker(self.config):
            # A usage error in an xdist worker is the controller's INTERNALERROR
            # ("no active workers"): report a failed collection instead, and
            # run nothing on any worker, so their collections still agree.
            by_file: dict[str, list[str]] = {}
            for problem in problems:
                nodeid = problem.nodeid
                by_file.setdefault(nodeid.split("::", 1)[0], []).append(f"  {nodeid}: {problem.message}")
            for file, found in by_file.items():
                longrepr = "pytest-dynamo: a flaky marker it cannot use\n" + "\n".join(found)
                report = pytest.CollectReport(nodeid=file, outcome="failed", longrepr=longrepr, result=[])
                self.config.hook.pytest_collectreport(report=report)
            session.items[:] = []
            return
        if problems:
            lines = "\n".join(f"  {problem.nodeid}: {problem.message}" for problem in problems)
            raise pytest.UsageError(
                f"pytest-dynamo: {len(problems)} test(s) carry a flaky marker it cannot use:\n{lines}"
            )
        for exemption in facts.quarantined:
            run_gating.add_exemption(exemption.nodeid, exemption.reason)
        self.table = facts.table
        self.start = self._test_start(facts.table)
        # Our retries take over the protocol of flaky tests only: registered
        # where there are some, so other runs pay nothing per test for them.
        manager = self.config.pluginmanager
        if self.retries and self.reruns and not manager.has_plugin(_retries.RETRIES):
            manager.register(_retries.Retries(self.config, self.reruns), _retries.RETRIES)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        # A plain hook, not a wrapper: it runs once per test, before whichever
        # protocol runs the test (pytest's, our retries', rerunfailures').
        self.start.test(item)

    def pytest_sessionfinish(self) -> None:
        # Between tests the variable keeps the last test's flow id; the
        # session gives back what it found.
        if self.environ is not None:
            if self.environ:
                os.environ[_flow.ENV] = self.environ
            else:
                os.environ.pop(_flow.ENV, None)
            self.environ = None
