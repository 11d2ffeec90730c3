"""Helpers of collection: where a test starts, which markers are registered.
The core reads each item's markers itself (`Engine.ingest_items`)."""

from __future__ import annotations

import pytest


def line_of(item: pytest.Item) -> int:
    """The 1-based line a test starts on (its first decorator), 0 when unknown."""
    line = item.location[1]
    return 0 if line is None else line + 1


def registered_markers(config: pytest.Config) -> list[str]:
    """Names registered through the ``markers`` ini value, by pytest, plugins and users."""
    names = []
    for line in config.getini("markers"):
        name = line.split(":", 1)[0].split("(", 1)[0].strip()
        if name:
            names.append(name)
    return names
