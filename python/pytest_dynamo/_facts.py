"""Per-test facts, in every process that collects and runs tests (the single
process, or each xdist worker): worked out once for the whole collection by
the core, then attached to each test's reports so the process that writes
records (the xdist controller collects nothing) knows them too.

Each test also gets its flow id here, in ``$DYNAMO_FLOW_ID`` while it runs."""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

from pytest_dynamo import _flow, _state
from pytest_dynamo._core import RunPolicy
from pytest_dynamo._gating import GATING, Gating

#: ``report.user_properties`` names this feature reads on the controller.
FACTS = "dynamo_facts"
FLOW_ID = "dynamo_flow_id"
EXEMPT = "dynamo_exempt"


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
        self.facts: dict[str, str] = {}
        #: nodeid -> how many times to retry it, for tests marked flaky.
        self.reruns: dict[str, int] = {}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # After every pytest_collection_modifyitems: validation, pipeline
        # selection and its gating exemptions are all in place.
        batch = _state.batch(self.config)
        if batch is None or not session.items:
            return
        stash = self.config.stash
        context = stash[_state.RUN_CONTEXT] if _state.RUN_CONTEXT in stash else {}
        stages = {str(k): str(v) for k, v in (context.get("stages") or {}).items() if v is not None}
        run_gating = self.gating
        nodeids = [item.nodeid for item in session.items]
        tests, quarantined, problems = batch.record_facts(
            self.policy, nodeids, stages, run_gating.exempt, self.default_reruns, self.retries
        )
        if problems:
            lines = "\n".join(f"  {nodeid}: {message}" for nodeid, message in problems)
            raise pytest.UsageError(
                f"pytest-dynamo: {len(problems)} test(s) carry a flaky marker it cannot use:\n{lines}"
            )
        for nodeid, why in quarantined:
            run_gating.add_exemption(nodeid, why)
        self.facts = {nodeid: facts for nodeid, (facts, _) in zip(nodeids, tests)}
        self.reruns = {nodeid: reruns for nodeid, (_, reruns) in zip(nodeids, tests) if reruns is not None}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        flow_id = _flow.new_flow_id()
        item.stash[_flow.FLOW_ID] = flow_id
        # user_properties travel with every report, through xdist too.
        properties = item.user_properties
        properties.append((FLOW_ID, flow_id))
        facts = self.facts.get(item.nodeid)
        if facts is not None:
            properties.append((FACTS, facts))
        exempt = self.gating.exempt.get(item.nodeid)
        if exempt is not None:
            properties.append((EXEMPT, exempt))
        before = os.environ.get(_flow.ENV)
        os.environ[_flow.ENV] = flow_id
        try:
            return (yield)
        finally:
            if before is None:
                os.environ.pop(_flow.ENV, None)
            else:
                os.environ[_flow.ENV] = before
