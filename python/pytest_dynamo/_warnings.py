"""Warning categories of pytest-dynamo, filterable with ``-W`` and ``filterwarnings``."""

from __future__ import annotations

import pytest


class DynamoWarning(pytest.PytestWarning):
    """Base of every warning pytest-dynamo emits."""

    __module__ = "pytest_dynamo"


class MarkerAliasWarning(DynamoWarning, DeprecationWarning):
    """A test uses a deprecated alias of a taxonomy marker."""

    __module__ = "pytest_dynamo"
