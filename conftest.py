"""Shared fixtures of pytest-dynamo's own tests (which run under the plugin)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

#: Markers that make a test valid under the default taxonomy.
VALID = "@pytest.mark.pre_merge\n@pytest.mark.gpu_0\n@pytest.mark.unit\n"


@pytest.fixture
def valid_marks() -> str:
    """Decorator lines that satisfy the default rules."""
    return VALID
