"""Gathering every collected item's markers once, for one call into Rust."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

MarkTuple = tuple[str, tuple[Any, ...], dict[str, Any]]
ItemTuple = tuple[str, int, list[MarkTuple]]

#: pytest's own markers whose arguments no rule reads: the name is enough,
#: and converting a large ``parametrize`` argument list would dominate ingest.
NAME_ONLY = frozenset({"parametrize", "usefixtures", "filterwarnings", "skipif", "xfail", "skip"})


def describe(items: Sequence[pytest.Item]) -> list[ItemTuple]:
    """``(nodeid, line, [(name, args, kwargs)])`` per item.

    ``iter_markers`` walks the node chain, so this sees function, class and
    module (``pytestmark``) marks, ``pytest.param`` marks, marks added with
    ``add_marker`` and the marks of ``unittest.TestCase`` classes.
    """
    out: list[ItemTuple] = []
    for item in items:
        marks: list[MarkTuple] = [
            (m.name, (), {}) if m.name in NAME_ONLY else (m.name, m.args, dict(m.kwargs))
            for m in item.iter_markers()
        ]
        # Line 0: ``item.location`` costs more than the rest of collection's
        # work for us together; it is looked up only where a line is shown.
        out.append((item.nodeid, 0, marks))
    return out


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
