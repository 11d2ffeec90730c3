"""``pytest-dynamo lint``: the static marker check, its output formats and
exit status, pytest's discovery settings, what it leaves unresolved, and its
agreement with collection-time validation on the examples and generated suites."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from lint_suite import generate
from pytest_dynamo import _cli, _core, _lint_cli

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]

ROOT = Path(__file__).resolve().parent.parent
RULE_CODES = ("DYN001", "DYN002", "DYN003", "DYN004", "DYN005", "DYN006")


def run_lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = _cli.main(["lint", *args])
    out, err = capsys.readouterr()
    return code, out, err


def lint_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run_lint(capsys, "--format", "json", *args)
    return code, json.loads(out)


def codes_by_test(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(t, f["code"]) for f in report["findings"] for t in f["tests"]}


# --- the command -------------------------------------------------------------


def test_the_command_is_registered() -> None:
    assert _cli.COMMANDS["lint"] == (
        "pytest_dynamo._lint_cli",
        "check test markers without importing the tests",
    )


def test_a_real_process_lints_and_fails_on_violations(pytester: pytest.Pytester, valid_marks: str) -> None:
    pytester.makepyfile(
        test_ok=f"import pytest\n{valid_marks}def test_good(): pass\n",
        test_bad="import pytest\n@pytest.mark.gpu_0\n@pytest.mark.unit\ndef test_bad(): pass\n",
    )
    result = pytester.run(sys.executable, "-m", "pytest_dynamo", "lint")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "test_bad.py:4:5: DYN001 test_bad: no lifecycle marker "
            "(fix: add one of @pytest.mark.pre_commit, *)",
            "pytest-dynamo lint: 1 error, 0 warnings (2 tests in 2 files checked)",
        ]
    )
    (pytester.path / "test_bad.py").unlink()
    assert pytester.run(sys.executable, "-m", "pytest_dynamo", "lint").ret == 0


def test_every_rule_has_its_code_and_message(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyfile(
        test_rules="""
        import pytest

        @pytest.mark.gpu_0
        @pytest.mark.unit
        def test_no_lifecycle(): pass

        @pytest.mark.nightly
        @pytest.mark.unit
        def test_no_hardware(): pass

        @pytest.mark.nightly
        @pytest.mark.gpu_0
        def test_no_type(): pass

        @pytest.mark.nightly
        @pytest.mark.gpu_2
        @pytest.mark.gpu_1
        @pytest.mark.e2e
        def test_two_hardware(): pass

        @pytest.mark.nightly
        @pytest.mark.gpu_0
        @pytest.mark.h100
        @pytest.mark.e2e
        def test_model_on_cpu(): pass

        @pytest.mark.premerge
        @pytest.mark.gpu_0
        @pytest.mark.unit
        def test_typo(): pass
        """
    )
    code, out, _ = run_lint(capsys)
    assert code == 1
    lines = out.splitlines()
    expected = [
        "test_rules.py:5:5: DYN001 test_no_lifecycle: no lifecycle marker (fix: add one of *",
        "test_rules.py:9:5: DYN002 test_no_hardware: no hardware marker "
        "(fix: add the lowest hardware it runs on: *",
        "test_rules.py:13:5: DYN003 test_no_type: no type marker (fix: add one of @pytest.mark.unit, *",
        "test_rules.py:19:5: DYN002 test_two_hardware: marked gpu_1 and gpu_2: a test carries exactly one "
        "hardware marker, the lowest it runs on (fix: keep @pytest.mark.gpu_1 and remove @pytest.mark.gpu_2)",
        "test_rules.py:25:5: DYN004 test_model_on_cpu: marked h100 and gpu_0: "
        "a GPU model needs a GPU (fix: *",
        "test_rules.py:27:14: DYN005 test_typo: unknown marker 'premerge' "
        "(fix: did you mean @pytest.mark.pre_merge?)",
        "pytest-dynamo lint: 6 errors, 0 warnings (6 tests in 1 file checked)",
    ]
    pytest.LineMatcher(lines).fnmatch_lines(expected, consecutive=True)


def test_json_and_sarif(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    pytester.makepyfile(test_a="import pytest\n@pytest.mark.gpu_0\n@pytest.mark.unit\ndef test_a(): pass\n")
    code, report = lint_json(capsys)
    assert code == 1
    assert report["errors"] == 1 and report["tests"] == 1 and report["files"] == 1
    finding = report["findings"][0]
    assert finding["code"] == "DYN001"
    assert finding["path"] == "test_a.py" and (finding["line"], finding["column"]) == (4, 5)
    assert finding["tests"] == ["test_a.py::test_a"]
    assert finding["severity"] == "error"
    assert finding["message"] == "no lifecycle marker"

    code, out, _ = run_lint(capsys, "--format", "sarif", "--output", "lint.sarif")
    assert code == 1
    assert out.strip() == "pytest-dynamo lint: 1 error, 0 warnings (1 test in 1 file checked)"
    sarif = json.loads((pytester.path / "lint.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert sarif["$schema"].endswith("sarif-schema-2.1.0.json")
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules][:6] == list(RULE_CODES)
    assert {"DYN101", "DYN900", "DYN901"} <= {r["id"] for r in rules}
    (result,) = run["results"]
    assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == "DYN001"
    assert result["level"] == "error"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "test_a.py"
    assert location["region"] == {"startLine": 4, "startColumn": 5}
    assert result["message"]["text"].startswith("test_a: no lifecycle marker (fix: ")


def test_findings_cross_into_python_as_typed_objects(pytester: pytest.Pytester) -> None:
    """Each finding is a frozen `LintFinding` with the JSON report's names,
    not a tuple read by position."""
    pytester.makepyfile(
        test_a="import pytest\n@pytest.mark.gpu_0\n@pytest.mark.unit\ndef test_a(): pass\n"
        "@pytest.mark.parametrize('x', range(3))\n@pytest.mark.gpu_0\n@pytest.mark.unit\n"
        "def test_b(x): pass\n"
    )
    report = _core.lint(["test_a.py"], invocation_dir=str(pytester.path))
    first, second = report.findings()
    assert isinstance(first, _core.LintFinding)
    assert (first.path, first.line, first.column) == ("test_a.py", 4, 5)
    assert (first.code, first.severity, first.message) == ("DYN001", "error", "no lifecycle marker")
    assert (first.tests, first.count) == (["test_a.py::test_a"], 1)
    assert (second.line, second.tests) == (8, [f"test_a.py::test_b[{i}]" for i in range(3)])
    assert second.count == 3
    names = ("path", "line", "column", "code", "severity", "message", "fix", "tests", "count")
    as_json = json.loads(report.json())["findings"]
    assert [{n: getattr(f, n) for n in names} for f in report.findings()] == as_json
    with pytest.raises(AttributeError):
        first.code = "DYN002"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "file or directory not found"),
        (["--format", "xml"], ""),
        (["--no-such-flag"], ""),
        (["--dynamo-config", "missing.toml"], "missing.toml does not exist"),
    ],
)
def test_usage_errors_exit_2(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    pytester.makepyfile(test_a="def test_a(): pass\n")
    code, _, err = run_lint(capsys, *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_a_bad_configuration_names_the_file_and_the_fix(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyprojecttoml("[tool.pytest-dynamo.taxonomy.lifecycle]\nrequird = true\n")
    pytester.makepyfile(test_a="def test_a(): pass\n")
    code, _, err = run_lint(capsys)
    assert code == 2
    assert "pyproject.toml: invalid [tool.pytest-dynamo]" in err
    assert "fix: " in err


def test_syntax_errors_are_findings_not_crashes(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], valid_marks: str
) -> None:
    pytester.makepyfile(
        test_broken="import pytest\n\ndef test_a(:\n    pass\n",
        test_fine=f"import pytest\n{valid_marks}def test_b(): pass\n",
    )
    code, report = lint_json(capsys)
    assert code == 1
    (finding,) = report["findings"]
    assert finding["code"] == "DYN901"
    assert finding["path"] == "test_broken.py" and finding["line"] == 3
    assert finding["message"].startswith("invalid syntax")
    assert report["tests"] == 1  # the other file is still checked


def test_a_conftest_that_does_not_parse_is_an_error(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], valid_marks: str
) -> None:
    pytester.makeconftest("def pytest_configure(config:\n    pass\n")
    pytester.makepyfile(test_a=f"import pytest\n{valid_marks}def test_a(): pass\n")
    code, report = lint_json(capsys)
    assert code == 1
    assert [(f["path"], f["code"]) for f in report["findings"]] == [("conftest.py", "DYN901")]


# --- pytest's discovery and configuration --------------------------------------


def test_testpaths_are_read_from_the_rootdir(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\ntestpaths = ["suite*", "missing"]\n')
    pytester.mkdir("suite_a")
    (pytester.path / "suite_a" / "test_in.py").write_text("def test_in(): pass\n")
    pytester.makepyfile(test_outside="def test_out(): pass\n")
    _, report = lint_json(capsys)
    assert {t for f in report["findings"] for t in f["tests"]} == {"suite_a/test_in.py::test_in"}
    _, report = lint_json(capsys, ".")
    assert report["tests"] == 2


def test_pytest_discovery_settings_are_followed(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makeini(
        """
        [pytest]
        python_files = check_*.py
        python_classes = Suite
        python_functions = check_* *_spec
        markers =
            pre_merj: a project marker that only looks like a typo
        """
    )
    pytester.makepyfile(
        check_things="""
        import pytest

        def check_one(): pass
        def it_spec(): pass
        def test_not_a_test(): pass

        class SuiteA:
            def check_in_class(self): pass

        class TestIgnored:
            def check_no(self): pass

        @pytest.mark.pre_merj
        @pytest.mark.gpu_0
        @pytest.mark.unit
        def check_registered(): pass
        """,
        test_not_collected="def test_x(): pass\n",
    )
    _, report = lint_json(capsys)
    tests = {t for f in report["findings"] for t in f["tests"]}
    assert tests == {
        "check_things.py::check_one",
        "check_things.py::it_spec",
        "check_things.py::SuiteA::check_in_class",
        "check_things.py::check_registered",
    }
    # A registered marker is no typo, so only the lifecycle is missing.
    assert ("check_things.py::check_registered", "DYN005") not in codes_by_test(report)
    assert ("check_things.py::check_registered", "DYN001") in codes_by_test(report)


def test_the_projects_taxonomy_and_aliases_apply(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyprojecttoml(
        """
        [tool.pytest-dynamo.taxonomy.framework]
        add = ["lmcache"]
        required = true
        [tool.pytest-dynamo.aliases]
        premerge = "pre_merge"
        """
    )
    pytester.makepyfile(
        test_a="""
        import pytest

        @pytest.mark.premerge
        @pytest.mark.gpu_0
        @pytest.mark.unit
        @pytest.mark.lmcache
        def test_alias(): pass

        @pytest.mark.pre_merge
        @pytest.mark.gpu_0
        @pytest.mark.unit
        def test_no_framework(): pass
        """
    )
    code, report = lint_json(capsys)
    assert code == 1
    assert codes_by_test(report) == {
        ("test_a.py::test_alias", "DYN101"),
        ("test_a.py::test_no_framework", "DYN006"),
    }
    alias = next(f for f in report["findings"] if f["code"] == "DYN101")
    assert alias["severity"] == "warning"
    assert alias["message"] == "marker 'premerge' is a deprecated alias of 'pre_merge'"
    assert (alias["line"], alias["column"]) == (3, 14)


def test_a_dedicated_config_file_from_the_flag_or_the_environment(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".toml", dynamo="[taxonomy.type]\nrequired = false\n")
    pytester.makepyfile(
        test_a="import pytest\n@pytest.mark.nightly\n@pytest.mark.gpu_0\ndef test_a(): pass\n"
    )
    assert run_lint(capsys)[0] == 1
    assert run_lint(capsys, "--dynamo-config", "dynamo.toml")[0] == 0
    monkeypatch.setenv("DYNAMO_CONFIG", "dynamo.toml")
    assert run_lint(capsys)[0] == 0


# --- what cannot be resolved ----------------------------------------------------


UNRESOLVED_SUITE = {
    "helpers.py": """
        import pytest

        def gpu_marks():
            return [pytest.mark.gpu_1]

        requires_gpu = pytest.mark.gpu_1

        class Base:
            pytestmark = [pytest.mark.unit]
    """,
    "test_unresolved.py": """
        import pytest
        from helpers import Base, gpu_marks, requires_gpu

        NAME = "nightly"

        def local_marks():
            return [pytest.mark.unit]

        @getattr(pytest.mark, NAME)
        @pytest.mark.gpu_0
        @pytest.mark.unit
        def test_getattr(): pass

        @requires_gpu
        @pytest.mark.nightly
        @pytest.mark.e2e
        def test_imported_decorator(): pass

        @pytest.mark.nightly
        @pytest.mark.gpu_0
        @pytest.mark.unit
        @pytest.mark.parametrize("x", [pytest.param(1, marks=local_marks()), 2])
        def test_computed_param(x): pass

        @pytest.mark.nightly
        @pytest.mark.gpu_0
        class TestInherits(Base):
            def test_m(self): pass

        @requires_gpu
        @pytest.mark.premerge
        @pytest.mark.unit
        def test_typo_is_still_certain(): pass
    """,
    "sub/conftest.py": """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                item.add_marker(pytest.mark.unit)
    """,
    "sub/test_hooked.py": """
        import pytest

        @pytest.mark.pre_merge
        @pytest.mark.gpu_0
        def test_gets_unit_from_a_hook(): pass
    """,
}


def write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    import textwrap

    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def test_unresolved_markers_are_warnings_unless_strict(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    write(pytester, UNRESOLVED_SUITE)
    code, report = lint_json(capsys, "test_unresolved.py", "sub")
    unresolved = [f for f in report["findings"] if f["code"] == "DYN900"]
    reasons = " | ".join(f["message"] for f in unresolved)
    for expected in [
        "marker name computed at run time: `getattr(pytest.mark, NAME)`",
        "`requires_gpu` is imported from helpers",
        "computed pytest.param marks: markers built by the helper function `local_marks()`",
        "a hook in this conftest.py adds markers: `item.add_marker(pytest.mark.unit)`",
    ]:
        assert expected in reasons
    # helpers.py is inside the project: its base class is read, not left unresolved.
    assert "base class `Base`" not in reasons
    assert all(f["severity"] == "warning" for f in unresolved)
    hook = next(f for f in unresolved if "conftest" in f["message"])
    assert hook["path"] == "sub/conftest.py"
    # Shortfalls are left to collection; a typo no marker could fix is reported.
    assert {c for _, c in codes_by_test(report)} == {"DYN900", "DYN005"}
    assert code == 1
    code, report = lint_json(capsys, "--strict-unresolved", "test_unresolved.py", "sub")
    assert code == 1 and all(f["severity"] == "error" for f in report["findings"])
    assert run_lint(capsys, "sub")[0] == 0
    assert run_lint(capsys, "--strict-unresolved", "sub")[0] == 1


# --- agreement with collection-time validation ------------------------------------


class Grab:
    """Takes the validation result and the collected node ids of an inner run."""

    def __init__(self) -> None:
        self.result: Any = None
        self.items: list[str] = []

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        plugin: Any = session.config.pluginmanager.get_plugin("dynamo-validation")
        self.result = plugin.result
        self.items = [item.nodeid for item in session.items]


def assert_agreement(pytester: pytest.Pytester, *paths: str) -> _core.LintReport:
    """Lint and collection find the same tests and the same (test, code) pairs
    for every test the lint resolves; for the others, lint finds no more. An
    unresolved test whose parameters are out of sight (``test_x[*]``) stands
    for every test collection makes of it."""
    grab = Grab()
    pytester.inline_run(
        "--collect-only",
        "--dynamo-validation=warn",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::pytest.PytestUnknownMarkWarning",
        "-W",
        "ignore::DeprecationWarning",
        *paths,
        plugins=[grab],
    )
    assert grab.result is not None, "the inner run did not validate"
    report = _core.lint(list(paths), invocation_dir=str(pytester.path))
    findings = report.findings()
    unresolved = {t for f in findings if f.code == "DYN900" for t in f.tests}
    patterns = {t: re.compile(re.escape(t).replace(r"\*", ".*") + "$") for t in unresolved}

    def standing_for(nodeid: str) -> set[str]:
        """The unresolved lint tests a node id of collection is one of."""
        return {t for t, p in patterns.items() if p.match(nodeid)}

    collected = {(f.nodeid, p.code) for f in grab.result.findings() for p in f.problems}
    linted = {(t, f.code) for f in findings if f.code in RULE_CODES for t in f.tests}
    hidden = {n for n in grab.items if standing_for(n)}

    assert set(report.nodeids()) - unresolved == set(grab.items) - hidden
    assert {p for p in linted if p[0] not in unresolved} == {p for p in collected if p[0] not in hidden}
    for test, code in linted:
        if test in unresolved:
            assert any(test in standing_for(n) and c == code for n, c in collected), (test, code)
    aliases = {(t, f.message) for f in findings if f.code == "DYN101" for t in f.tests if t not in unresolved}
    used = sum(alias.tests for alias in grab.result.aliases())
    assert used >= len(aliases)
    if not unresolved:
        assert len(aliases) == used
    return report


@pytest.mark.parametrize("example", ["inference_suite", "broken_markers"])
def test_agreement_on_the_examples(pytester: pytest.Pytester, example: str) -> None:
    shutil.copytree(ROOT / "examples" / example, pytester.path, dirs_exist_ok=True)
    report = assert_agreement(pytester)
    assert report.unresolved == 0
    assert report.tests == {"inference_suite": 17, "broken_markers": 7}[example]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_agreement_on_generated_suites(pytester: pytest.Pytester, seed: int) -> None:
    tests = generate(pytester.path, files=12, tests_per_file=15, seed=seed)
    report = assert_agreement(pytester)
    assert report.tests == tests
    assert report.unresolved == 0
    assert report.errors > 0  # the suites mix broken tests in


@pytest.mark.parametrize("seed", [4, 5])
def test_agreement_on_generated_suites_with_real_conftests(pytester: pytest.Pytester, seed: int) -> None:
    """A conftest hook adding harmless markers, collect_ignore, a parametrized
    fixture with markers, a base class imported from another module."""
    tests = generate(pytester.path, files=12, tests_per_file=15, seed=seed, real_conftests=True)
    report = assert_agreement(pytester)
    assert report.tests == tests
    assert report.unresolved == 0
    assert report.errors > 0
    assert not any("test_legacy" in n for n in report.nodeids())
    assert any(n.endswith("[a]") for n in report.nodeids())
    assert any("::test_shared" in n for n in report.nodeids())


IDS_SUITE = """
import abc
import enum
import pytest
from pytest import param

pytestmark = [pytest.mark.nightly, pytest.mark.parametrize("m", ["x", "y"])]


class Color(enum.Enum):
    RED = 1


def helper():
    return 1


VALUES = [1.0, 1e16, 0.00001, -2, "h\\xe9llo\\n", b"by\\x00", None, True, 0x1F, helper]


@pytest.mark.gpu_0
@pytest.mark.parametrize("v", VALUES + [Color.RED, (1, 2), "dup", "dup", "1", "1", 1])
def test_values(v, m): pass


@pytest.mark.unit
@pytest.mark.parametrize(
    "a, b",
    [(1, 2), param(3, 4, id="own", marks=[pytest.mark.gpu_1]), param(5, 6, marks=pytest.mark.gpu_0)],
    ids=["first", "ignored", None],
)
def test_ids(a, b, m): pass


@pytest.mark.parametrize("e", [])
def test_empty(e, m): pass


@pytest.mark.gpu_0
@pytest.mark.parametrize("z", range(3))
class TestParamClass:
    @pytest.mark.e2e
    def test_in(self, z, m): pass

    @staticmethod
    def test_static(z, m): pass

    class TestNested:
        def test_nested(self, z, m): pass


class TestAbstract(abc.ABC):
    @abc.abstractmethod
    def helper(self): ...

    def test_never(self, m): pass


class TestOff:
    __test__ = False

    def test_off(self): pass
"""


def test_agreement_on_ids_and_placements(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ids=IDS_SUITE)
    report = assert_agreement(pytester)
    assert report.tests == 60


def test_agreement_where_some_markers_are_unresolved(pytester: pytest.Pytester) -> None:
    write(pytester, UNRESOLVED_SUITE)
    pytester.syspathinsert()
    report = assert_agreement(pytester, "test_unresolved.py", "sub")
    assert report.unresolved == 5  # TestInherits's base class is read from helpers.py


def test_the_pre_commit_hook_is_declared() -> None:
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    for line in [
        "- id: pytest-dynamo-lint",
        "  entry: pytest-dynamo lint",
        "  language: python",
        "  types: [python]",
    ]:
        assert line in text.splitlines()
    assert "files:" in text


def test_the_cli_help_lists_lint(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main(["--help"]) == 0
    assert "lint       check test markers without importing the tests" in capsys.readouterr().out
    assert "--strict-unresolved" in _lint_cli.build_parser().format_help()
