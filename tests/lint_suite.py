"""Generated test suites for the static lint: every marker placement and
spelling pytest knows, valid and broken tests mixed, deterministic per seed.
Used by the agreement tests (lint findings == collection findings) and by
``benchmarks/bench_lint.py``."""

from __future__ import annotations

import random
from pathlib import Path

LIFECYCLE = ["pre_merge", "post_merge", "nightly", "weekly"]
HARDWARE = ["gpu_0", "gpu_1", "gpu_2", "gpu_4"]
TYPE = ["unit", "integration", "e2e", "stress"]
EXTRA = ["vllm", "sglang", "slow", "router", "h100", "skip", "timeout"]
#: Misspellings with a did-you-mean, and a deprecated alias of the config below.
TYPOS = ["premerge", "intergration", "gpu1", "Nightly"]
ALIAS = "legacy_nightly"

PYPROJECT = f"""\
[tool.pytest.ini_options]
markers = ["timeout(seconds): a plugin's marker"]

[tool.pytest-dynamo.aliases]
{ALIAS} = "nightly"
"""


#: With ``real_conftests``: what a real project's conftest and helper module
#: do (a hook adding only harmless markers through a local name and reading
#: ``own_markers``, ``collect_ignore``, a parametrized fixture whose params
#: carry markers), and a base class the tests import from another module.
REAL_PYPROJECT = PYPROJECT.replace(
    "[tool.pytest.ini_options]\n", '[tool.pytest.ini_options]\npythonpath = ["tests"]\n'
)

REAL_CONFTEST = """\
import pytest

collect_ignore = ["pkg_000/test_legacy.py"]


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="not on this runner")
    for item in items:
        if any(m.name == "gpu_4" for m in getattr(item, "own_markers", [])):
            item.add_marker(skip)


@pytest.fixture(params=[pytest.param("a", marks=pytest.mark.slow), "b"])
def variant(request):
    return request.param
"""

REAL_COMMON = """\
import pytest


class Base:
    pytestmark = [pytest.mark.unit]

    def test_shared(self):
        pass
"""

#: Collected by no one: conftest's collect_ignore names it.
LEGACY = "import pytest\n\n@pytest.mark.gpu_0\ndef test_legacy():\n    pass\n"


class Module:
    """One generated test module, written bit by bit."""

    def __init__(self, rng: random.Random, valid_share: float, real: bool = False) -> None:
        self.rng = rng
        self.valid_share = valid_share
        self.real = real
        self.style = rng.choice(["pytest", "alias", "from"])
        self.mark = {"pytest": "pytest.mark.", "alias": "pt.mark.", "from": "mark."}[self.style]
        self.param = {"pytest": "pytest.param", "alias": "pt.param", "from": "param"}[self.style]
        head = {
            "pytest": "import pytest\n",
            "alias": "import pytest as pt\n",
            "from": "import pytest\nfrom pytest import mark, param\n",
        }[self.style]
        self.lines = [head + "import unittest\n" + ("from common import Base\n" if real else "")]
        self.tests = 0
        self.names = 0

    def name(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}_{self.names}"

    def markers(self, covered: set[str]) -> list[str]:
        """Markers for one level; a valid test gets every category across its levels."""
        rng = self.rng
        out: list[str] = []
        for category in (LIFECYCLE, HARDWARE, TYPE):
            if not covered.intersection(category) and rng.random() < 0.5:
                out.append(rng.choice(category))
        if rng.random() < 0.2:
            out.append(rng.choice(EXTRA))
        if rng.random() > self.valid_share:
            out.append(rng.choice([*TYPOS, ALIAS, rng.choice(HARDWARE), rng.choice(LIFECYCLE)]))
        return out

    def complete(self, covered: set[str]) -> list[str]:
        """The categories still missing, unless this test is meant to break a rule."""
        if self.rng.random() > self.valid_share:
            return []
        out = []
        for category in (LIFECYCLE, HARDWARE, TYPE):
            if not covered.intersection(category):
                out.append(self.rng.choice(category))
        return out

    def decorators(self, marks: list[str], indent: str = "") -> str:
        return "".join(f"{indent}@{self.mark}{m}\n" for m in marks)

    def module_marks(self) -> set[str]:
        marks = self.markers(set()) if self.rng.random() < 0.5 else []
        if not marks:
            return set()
        items = ", ".join(f"{self.mark}{m}" for m in marks)
        if self.rng.random() < 0.3:
            self.lines.append(f"common = [{items}]\npytestmark = common + []\n")
        elif len(marks) == 1 and self.rng.random() < 0.5:
            self.lines.append(f"pytestmark = {self.mark}{marks[0]}\n")
        else:
            self.lines.append(f"pytestmark = [{items}]\n")
        return set(marks)

    def params(self, covered: set[str]) -> tuple[str, int]:
        """A parametrize decorator, some values with markers of their own."""
        rng = self.rng
        count = rng.randint(1, 4)
        values = []
        for i in range(count):
            if rng.random() < 0.4:
                marks = self.markers(covered)
                listed = ", ".join(f"{self.mark}{m}" for m in marks) or f"{self.mark}slow"
                wrap = f"[{listed}]" if rng.random() < 0.5 else listed.split(", ")[0]
                values.append(f"{self.param}({i}, marks={wrap})")
            else:
                values.append(rng.choice([str(i), f"'v{i}'", f"{i}.5"]))
        return f"@{self.mark}parametrize('x', [{', '.join(values)}])\n", count

    def function(self, covered: set[str], budget: int) -> None:
        marks = self.markers(covered)
        marks += self.complete(covered | set(marks))
        deco = self.decorators(marks)
        count = 1
        args = ""
        if budget >= 4 and self.rng.random() < 0.3:
            param, count = self.params(covered | set(marks))
            deco = param + deco
            args = "x"
        if self.real and self.rng.random() < 0.3:
            args = f"{args}, variant" if args else "variant"
            count *= 2
        self.lines.append(f"\n{deco}def {self.name('test_f')}({args}):\n    pass\n")
        self.tests += count

    def klass(self, covered: set[str], budget: int) -> None:
        rng = self.rng
        own = self.markers(covered)
        name = self.name("TestC")
        methods = rng.randint(1, min(4, budget))
        body = []
        for _ in range(methods):
            marks = self.markers(covered | set(own))
            marks += self.complete(covered | set(own) | set(marks))
            body.append(
                f"{self.decorators(marks, '    ')}    def {self.name('test_m')}(self):\n        pass\n"
            )
        based = self.real and rng.random() < 0.3
        bases = "(Base)" if based else ""
        self.lines.append(f"\n{self.decorators(own)}class {name}{bases}:\n" + "\n".join(body))
        self.tests += methods + based
        if budget - methods >= methods + 1 and rng.random() < 0.3:
            # A subclass inherits the methods and the class markers.
            sub = self.name("TestSub")
            self.lines.append(
                f"\n{self.decorators(self.markers(covered))}class {sub}({name}):\n"
                f"    def {self.name('test_s')}(self):\n        pass\n"
            )
            self.tests += methods + based + 1

    def unittest_class(self, covered: set[str], budget: int) -> None:
        own = self.markers(covered)
        own += self.complete(covered | set(own))
        methods = self.rng.randint(1, min(3, budget))
        body = "".join(f"    def {self.name('test_u')}(self):\n        pass\n" for _ in range(methods))
        self.lines.append(f"\n{self.decorators(own)}class {self.name('Checks')}(unittest.TestCase):\n{body}")
        self.tests += methods

    def build(self, tests: int) -> str:
        covered = self.module_marks()
        while self.tests < tests:
            budget = tests - self.tests
            kind = self.rng.random()
            if kind < 0.6 or budget < 2:
                self.function(covered, budget)
            elif kind < 0.85:
                self.klass(covered, budget)
            else:
                self.unittest_class(covered, budget)
        return "".join(self.lines)


def generate(
    root: Path,
    files: int,
    tests_per_file: int,
    seed: int,
    valid_share: float = 0.7,
    real_conftests: bool = False,
) -> int:
    """Write a suite under ``root``; returns the number of tests (at least
    ``tests_per_file`` per file: a class may overshoot by its subclass).
    ``real_conftests`` adds what real projects' conftests do (see
    ``REAL_CONFTEST``)."""
    rng = random.Random(seed)
    (root / "pyproject.toml").write_text(REAL_PYPROJECT if real_conftests else PYPROJECT)
    if real_conftests:
        (root / "tests" / "pkg_000").mkdir(parents=True, exist_ok=True)
        (root / "tests" / "conftest.py").write_text(REAL_CONFTEST)
        (root / "tests" / "common.py").write_text(REAL_COMMON)
        (root / "tests" / "pkg_000" / "test_legacy.py").write_text(LEGACY)
    total = 0
    for i in range(files):
        folder = root / "tests" / f"pkg_{i // 50:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        module = Module(rng, valid_share, real_conftests)
        (folder / f"test_mod_{i:04d}.py").write_text(module.build(tests_per_file))
        total += module.tests
    return total
