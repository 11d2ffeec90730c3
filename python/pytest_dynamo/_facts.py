"""Per-test facts, in every process that collects and runs tests (the single
process, or each xdist worker): worked out once for the whole collection by
the core, then attached to each test's reports so the process that writes
records (the xdist controller collects nothing) knows them too.

Each test also gets its flow id here, in ``$DYNAMO_FLOW_ID`` from its start
to the next test's."""

from __future__ import annotations

import os

import pytest

from pytest_dynamo import _flaky, _flow, _state
from pytest_dynamo._core import FactsTable, RunPolicy, TestStart
from pytest_dynamo._gating import GATING, Gating

#: ``report.user_properties`` names this feature reads on the controller.
FACTS = "dynamo_facts"
FLOW_ID = "dynamo_flow_id"
EXEMPT = "dynamo_exempt"
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
        #: Starts each collected test (flow id, and facts on a worker's reports).
        self.start: TestStart | None = None
        #: An xdist worker sends each test's facts to the controller on its
        #: reports; a single process's records read them from the table.
        self.attach = _state.is_worker(config)
        #: nodeid -> how many times to retry it, for tests marked flaky.
        self.reruns: dict[str, int] = {}
        #: $DYNAMO_FLOW_ID before the first test ("" when unset).
        self.environ: str | None = None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # After every pytest_collection_modifyitems: validation, pipeline
        # selection and its gating exemptions are all in place.
        if self.environ is None:
            self.environ = os.environ.get(_flow.ENV, "")
        batch = _state.batch(self.config)
        if batch is None or not session.items:
            return
        context = self.config.stash.get(_state.RUN_CONTEXT, {})
        stages = {str(k): str(v) for k, v in (context.get("stages") or {}).items() if v is not None}
        run_gating = self.gating
        nodeids = [item.nodeid for item in session.items]
        table, quarantined, problems, self.reruns = batch.record_facts(
            self.policy, nodeids, stages, run_gating.exempt, self.default_reruns, self.retries
        )
        if problems:
            lines = "\n".join(f"  {nodeid}: {message}" for nodeid, message in problems)
            raise pytest.UsageError(
                f"pytest-dynamo: {len(problems)} test(s) carry a flaky marker it cannot use:\n{lines}"
            )
        for nodeid, why in quarantined:
            run_gating.add_exemption(nodeid, why)
        self.table = table
        self.start = TestStart(table, self.attach, os.environ, _flow.ENV, _flow.FLOW_ID, run_gating.exempt)
        # Our retries take over the protocol of flaky tests only: registered
        # where there are some, so other runs pay nothing per test for them.
        manager = self.config.pluginmanager
        if self.retries and self.reruns and not manager.has_plugin(_flaky.RETRIES):
            manager.register(_flaky.Retries(self.config, self), _flaky.RETRIES)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        # A plain hook, not a wrapper: it runs once per test, before whichever
        # protocol runs the test (pytest's, our retries', rerunfailures').
        start = self.start
        if start is not None:
            start.test(item)
        else:
            self._start_untracked(item)

    def _start_untracked(self, item: pytest.Item) -> None:
        """A test outside any collected batch: a new flow id, on its reports
        too, since no table knows it."""
        flow_id = _flow.new_flow_id()
        item.user_properties.append((FLOW_ID, flow_id))
        item.stash[_flow.FLOW_ID] = flow_id
        if self.environ is None:
            self.environ = os.environ.get(_flow.ENV, "")
        os.environ[_flow.ENV] = flow_id

    def pytest_sessionfinish(self) -> None:
        # Between tests the variable keeps the last test's flow id; the
        # session gives back what it found.
        if self.environ is not None:
            if self.environ:
                os.environ[_flow.ENV] = self.environ
            else:
                os.environ.pop(_flow.ENV, None)
            self.environ = None
