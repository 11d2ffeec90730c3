"""``pytest-dynamo lint`` on real projects' conftests: hooks that add only
harmless markers, files pytest never collects, markers from fixture
parameters, and base classes imported from other modules of the project.
Each case is checked on the lint's report and, where collection can run it,
against collection-time validation (the agreement test)."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
from pytest_dynamo import _cli
from test_lint import assert_agreement

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]

VALID = "@pytest.mark.pre_merge\n@pytest.mark.gpu_0\n@pytest.mark.unit\n"


def write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def lint_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    _cli.main(["lint", "--format", "json", *args])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def codes(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(t, f["code"]) for f in report["findings"] for t in f["tests"]}


def unresolved(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["code"] == "DYN900"]


# --- 11: hooks that change no verdict ---------------------------------------------


HARMLESS_CONFTEST = """
    import pytest

    def pytest_collection_modifyitems(config, items):
        skip = pytest.mark.skip(reason="needs a GPU")
        slow = pytest.mark.timeout(600) if config.getoption("-x") else pytest.mark.xfail
        for item in items:
            markers = getattr(item, "own_markers", [])
            names = [m.name for m in item.own_markers]
            if any(m.name == "gpu_1" for m in markers) and "nightly" not in names:
                item.add_marker(skip)
            item.add_marker(slow)
            item.add_marker(pytest.mark.usefixtures("tmp_path"))
            item.add_marker(pytest.mark.filterwarnings("ignore"))
            item.add_marker("skipif")
"""

HOOKED_TESTS = f"""
    import pytest

    {VALID.replace(chr(10), chr(10) + "    ")}def test_good(): pass

    @pytest.mark.gpu_0
    @pytest.mark.unit
    def test_no_lifecycle(): pass
"""


def test_hooks_adding_only_harmless_markers_leave_tests_checked(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    write(pytester, {"conftest.py": HARMLESS_CONFTEST, "test_hooked.py": HOOKED_TESTS})
    report = lint_json(capsys)
    assert unresolved(report) == []
    assert codes(report) == {("test_hooked.py::test_no_lifecycle", "DYN001")}
    assert report["unresolved"] == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            "    marker = pytest.mark.nightly\n    for item in items:\n        item.add_marker(marker)\n",
            "adds markers: `item.add_marker(marker)`",
        ),
        (
            "    for item in items:\n        for name in NAMES:\n            item.add_marker(name)\n",
            "adds markers: `item.add_marker(name)`",
        ),
        (
            "    for item in items:\n        item.own_markers.append(pytest.mark.nightly.mark)\n",
            "changes `own_markers` of tests: `item.own_markers.append(pytest.mark.nightly.mark)`",
        ),
        (
            "    for item in items:\n"
            "        marks = getattr(item, 'own_markers', [])\n"
            "        marks += [pytest.mark.unit.mark]\n",
            "changes `own_markers` of tests",
        ),
        (
            "    for item in items:\n        item.own_markers = []\n",
            "changes `own_markers` of tests: `item.own_markers`",
        ),
    ],
)
def test_hooks_that_may_change_a_verdict_stay_unresolved(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], body: str, reason: str
) -> None:
    write(
        pytester,
        {
            "conftest.py": "import pytest\nNAMES = ['nightly']\n\n"
            "def pytest_collection_modifyitems(items):\n" + body,
            "test_hooked.py": HOOKED_TESTS,
        },
    )
    report = lint_json(capsys)
    (finding,) = unresolved(report)
    assert reason in finding["message"]
    assert finding["path"] == "conftest.py"
    # A missing marker may come from the hook: left to collection.
    assert codes(report) == {
        ("test_hooked.py::test_good", "DYN900"),
        ("test_hooked.py::test_no_lifecycle", "DYN900"),
    }


def test_agreement_with_a_conftest_adding_harmless_markers(pytester: pytest.Pytester) -> None:
    write(pytester, {"conftest.py": HARMLESS_CONFTEST, "test_hooked.py": HOOKED_TESTS})
    report = assert_agreement(pytester)
    assert report.unresolved == 0 and report.tests == 2


# --- 12: files pytest never collects -----------------------------------------------


BAD = "import pytest\n@pytest.mark.gpu_0\n@pytest.mark.unit\ndef test_bad(): pass\n"

IGNORED_PROJECT = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        addopts = "-p no:cacheprovider --ignore=tests/skipped --ignore-glob=*_draft.py"
    """,
    "tests/conftest.py": """
        LEGACY = ["test_legacy.py"]
        collect_ignore = LEGACY + ["old"]
        collect_ignore.append("test_more.py")
        collect_ignore += ["test_plus.py"]
        collect_ignore_glob = ["*_wip.py"]
    """,
    "tests/test_legacy.py": BAD,
    "tests/test_more.py": BAD,
    "tests/test_plus.py": BAD,
    "tests/old/test_old.py": BAD,
    "tests/test_a_wip.py": BAD,
    "tests/skipped/test_s.py": BAD,
    "tests/test_b_draft.py": BAD,
    "tests/sub/conftest.py": "collect_ignore = []\n",
    # The nearest conftest's list replaces the one above: this one is collected.
    "tests/sub/test_legacy.py": BAD,
    "tests/test_kept.py": BAD,
}


def test_collect_ignore_and_addopts_ignores_are_honoured(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    write(pytester, IGNORED_PROJECT)
    report = lint_json(capsys)
    assert codes(report) == {
        ("tests/test_kept.py::test_bad", "DYN001"),
        ("tests/sub/test_legacy.py::test_bad", "DYN001"),
    }
    assert report["files"] == 2
    # A file named on the command line is collected whatever the ignores say.
    report = lint_json(capsys, "tests/test_legacy.py")
    assert codes(report) == {("tests/test_legacy.py::test_bad", "DYN001")}


def test_agreement_on_ignored_files(pytester: pytest.Pytester) -> None:
    write(pytester, IGNORED_PROJECT)
    report = assert_agreement(pytester)
    assert report.tests == 2


def test_a_computed_collect_ignore_is_reported_once(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        pytester,
        {
            "conftest.py": "import sys\ncollect_ignore = ['test_a.py']\n"
            "if sys.platform == 'win32':\n    collect_ignore.append('test_b.py')\n",
            "test_a.py": BAD,
            "test_b.py": BAD,
            "test_c.py": BAD,
        },
    )
    report = lint_json(capsys)
    (finding,) = unresolved(report)
    assert finding["path"] == "conftest.py" and finding["line"] == 3
    assert finding["tests"] == []
    assert "is set under a condition" in finding["message"]
    # What is known applies; the rest is still linted.
    assert codes(report) == {("test_b.py::test_bad", "DYN001"), ("test_c.py::test_bad", "DYN001")}
    assert _cli.main(["lint", "--strict-unresolved"]) == 1


# --- 13: markers from fixture parameters ---------------------------------------------


FIXTURE_TESTS = """
    import pytest

    @pytest.fixture(params=[
        pytest.param("cpu", marks=pytest.mark.gpu_0),
        pytest.param("gpu", marks=[pytest.mark.gpu_1], id="one-gpu"),
    ])
    def device(request):
        return request.param

    @pytest.fixture(params=["a", "b"], ids=["first", "second"])
    def flavour(device, request):
        return request.param

    @pytest.mark.pre_merge
    @pytest.mark.unit
    def test_by_argument(device): pass

    @pytest.mark.pre_merge
    @pytest.mark.unit
    @pytest.mark.usefixtures("device")
    def test_by_usefixtures(): pass

    @pytest.mark.pre_merge
    @pytest.mark.unit
    @pytest.mark.parametrize("x", [1])
    def test_through_a_fixture(flavour, x): pass

    @pytest.mark.pre_merge
    @pytest.mark.unit
    @pytest.mark.gpu_0
    def test_twice(device): pass

    @pytest.mark.pre_merge
    @pytest.mark.unit
    @pytest.mark.gpu_0
    @pytest.mark.parametrize("device", ["mine"])
    def test_parametrized_itself(device): pass

    @pytest.mark.pre_merge
    @pytest.mark.unit
    class TestInClass:
        @pytest.fixture(params=[pytest.param(1, marks=pytest.mark.gpu_2)])
        def device(self, request):
            return request.param

        def test_class_fixture(self, device): pass
"""


def test_fixture_params_parametrize_and_mark_their_tests(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    write(pytester, {"test_fix.py": FIXTURE_TESTS})
    report = lint_json(capsys)
    assert unresolved(report) == []
    assert codes(report) == {
        ("test_fix.py::test_twice[one-gpu]", "DYN002"),
    }
    twice = next(f for f in report["findings"] if f["code"] == "DYN002")
    assert "marked gpu_0 and gpu_1" in twice["message"]
    assert report["tests"] == 2 + 2 + 4 + 2 + 1 + 1


def test_agreement_on_fixture_params(pytester: pytest.Pytester) -> None:
    write(pytester, {"test_fix.py": FIXTURE_TESTS})
    report = assert_agreement(pytester)
    assert report.unresolved == 0 and report.tests == 12


CONFTEST_FIXTURES = {
    "conftest.py": """
        import pytest

        def backends():
            return [pytest.param(name, marks=pytest.mark.gpu_1) for name in ("a", "b")]

        @pytest.fixture(params=backends())
        def backend(request):
            return request.param

        @pytest.fixture(params=[pytest.param(1, marks=pytest.mark.nightly)], autouse=True)
        def everywhere(request):
            return request.param
    """,
    "test_uses.py": """
        import pytest

        @pytest.mark.unit
        def test_backend(backend): pass

        @pytest.mark.gpu_0
        @pytest.mark.unit
        def test_plain(): pass
    """,
}


def test_fixture_params_from_a_conftest_and_helpers(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    write(pytester, CONFTEST_FIXTURES)
    report = lint_json(capsys)
    # The autouse fixture gives every test its lifecycle; the helper's
    # params are out of sight, so test_backend is unresolved, not DYN002.
    assert codes(report) == {("test_uses.py::test_backend[1-*]", "DYN900")}
    (finding,) = unresolved(report)
    assert finding["path"] == "conftest.py"
    assert "fixture `backend` has parameters computed at run time" in finding["message"]
    assert report["tests"] == 2


def test_agreement_on_conftest_fixture_params(pytester: pytest.Pytester) -> None:
    write(pytester, CONFTEST_FIXTURES)
    report = assert_agreement(pytester)
    assert report.unresolved == 1


# --- 14: base classes imported from the project ----------------------------------------


COMMON = """
    import pytest

    class BaseTest:
        pytestmark = [pytest.mark.nightly]

        @pytest.mark.gpu_0
        def test_inherited(self): pass

    class Derived(BaseTest):
        pytestmark = [pytest.mark.unit]
"""


@pytest.mark.parametrize(
    ("layout", "import_line", "base"),
    [
        ({"tests/__init__.py": ""}, "from .common import Derived", "Derived"),
        ({"tests/__init__.py": ""}, "from tests.common import Derived as Base", "Base"),
        ({}, "import common", "common.Derived"),
        ({"tests/__init__.py": ""}, "from . import common", "common.Derived"),
        (
            {"tests/__init__.py": "", "tests/reexport.py": "from .common import Derived\n"},
            "from .reexport import Derived",
            "Derived",
        ),
    ],
)
def test_base_classes_imported_from_the_project_are_read(
    pytester: pytest.Pytester,
    capsys: pytest.CaptureFixture[str],
    layout: dict[str, str],
    import_line: str,
    base: str,
) -> None:
    test = f"""
        import pytest
        {import_line}

        class TestChild({base}):
            @pytest.mark.gpu_0
            def test_own(self): pass

        @pytest.mark.gpu_1
        class TestBroken({base}):
            def test_own(self): pass
    """
    write(pytester, {**layout, "tests/common.py": COMMON, "tests/test_child.py": test})
    report = lint_json(capsys, "tests")
    assert unresolved(report) == []
    # The inherited method carries gpu_0 where the base class writes it.
    assert codes(report) == {("tests/test_child.py::TestBroken::test_inherited", "DYN002")}
    assert report["tests"] == 4
    if "tests/__init__.py" not in layout:
        pytester.syspathinsert(pytester.path / "tests")
    agreement = assert_agreement(pytester, "tests")
    assert agreement.unresolved == 0


def test_a_base_class_outside_the_project_stays_unresolved(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        pytester,
        {
            "test_child.py": "import pytest\nfrom vendor_tests import BaseTest\n\n"
            f"{VALID}class TestChild(BaseTest):\n    def test_a(self): pass\n",
        },
    )
    report = lint_json(capsys)
    (finding,) = unresolved(report)
    assert "base class `BaseTest` is imported from vendor_tests" in finding["message"]


def test_fixtures_out_of_sight_leave_their_tests_unresolved(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        pytester,
        {
            "conftest.py": "from shared_fixtures import *\n",
            "test_uses.py": f"import pytest\n\n{VALID}def test_hidden(engine): pass\n\n"
            f"{VALID}def test_builtin(tmp_path, monkeypatch): pass\n",
        },
    )
    report = lint_json(capsys)
    (finding,) = unresolved(report)
    assert finding["tests"] == ["test_uses.py::test_hidden"]
    assert "fixture `engine` is not defined where the lint can see it" in finding["message"]
    assert codes(report) == {("test_uses.py::test_hidden", "DYN900")}
