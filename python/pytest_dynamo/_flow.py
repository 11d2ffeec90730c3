"""Flow ids: every test gets a uuid that its
record, its log lines and the processes it starts share, so one failure can
be followed across components. Log lines read
``<component> - <flow id> - <state> <message>``."""

from __future__ import annotations

import pytest

from pytest_dynamo._core import new_flow_id

#: The environment variable a test's subprocesses find their flow id in.
ENV = "DYNAMO_FLOW_ID"
FLOW_ID = pytest.StashKey[str]()


def line(component: str, flow_id: str, state: str, message: str) -> str:
    """A log line in the strategy's shape."""
    return f"{component} - {flow_id} - {state} {message}"


@pytest.fixture
def dynamo_flow_id(request: pytest.FixtureRequest) -> str:
    """The running test's flow id (also in ``$DYNAMO_FLOW_ID`` while it runs):
    pass it to the services a test starts so their logs carry it too."""
    stash: pytest.Stash = request.node.stash
    if FLOW_ID not in stash:
        stash[FLOW_ID] = new_flow_id()
    return stash[FLOW_ID]
