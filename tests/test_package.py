"""The installed plugin: entry point, registered markers, strict modes, opting out."""

from __future__ import annotations

import ast
import importlib.metadata
import re
from pathlib import Path

import pytest
import pytest_dynamo
from pytest_dynamo import _core

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]


def test_version_matches_the_compiled_core() -> None:
    assert pytest_dynamo.__version__ == _core.__version__
    assert pytest_dynamo.ConfigError.__module__ == "pytest_dynamo"


def test_every_taxonomy_marker_is_listed_with_its_description(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.pre_merge: [[]lifecycle[]] runs before merging a pull request",
            "@pytest.mark.gpu_2: [[]hardware[]] needs 2 GPUs",
            "@pytest.mark.h100: [[]gpu_model[]] needs an NVIDIA H100",
            "@pytest.mark.conformance: [[]type[]] conformance test",
            "@pytest.mark.custom_backend: [[]framework[]] needs a custom backend",
            "@pytest.mark.control_plane: [[]component[]] *",
            "@pytest.mark.slurm: [[]other[]] needs Slurm",
        ]
    )
    names = [m.name for m in pytest_dynamo._core.Engine.load(str(pytester.path)).markers()]
    for name in names:
        assert f"@pytest.mark.{name}:" in result.stdout.str()


@pytest.mark.parametrize("strict", [["--strict-markers"], ["-o", "strict=true"]])
def test_valid_tests_pass_with_strict_markers(
    pytester: pytest.Pytester, valid_marks: str, strict: list[str]
) -> None:
    pytester.makepyfile(f"import pytest\n{valid_marks}def test_a(): pass\n")
    result = pytester.runpytest(*strict)
    result.assert_outcomes(passed=1)


def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_unmarked(): pass\n")
    pytester.runpytest("-p", "no:dynamo").assert_outcomes(passed=1)
    assert pytester.runpytest().ret == pytest.ExitCode.INTERRUPTED


def test_messages_point_to_the_documentation_by_url(pytester: pytest.Pytester) -> None:
    """An installed wheel has no docs/ folder: messages name pages by URL, the
    docs of this version's release tag."""
    assert f"https://github.com/ai-dynamo/pytest-dynamo/blob/v{_core.__version__}/docs/" == _core.DOCS_URL
    package = Path(pytest_dynamo.__file__).parent
    offenders = []
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        offenders += [
            f"{path.name}:{node.lineno}: {node.value!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and re.search(r"(?<![/\w])docs/\w+\.md", node.value)
        ]
    assert not offenders
    # And the core's messages (a configuration error here).
    pytester.makepyprojecttoml("[tool.pytest-dynamo]\nbogus_key = 1\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"{_core.DOCS_URL}configuration.md" in result.stderr.str()


def test_the_metadata_links_the_repository_and_its_documentation() -> None:
    urls = dict(
        u.split(", ", 1) for u in importlib.metadata.metadata("pytest-dynamo").get_all("Project-URL") or []
    )
    assert {"Homepage", "Documentation", "Repository", "Issues"} <= set(urls)
    assert _core.DOCS_URL.startswith(urls["Repository"] + "/blob/v")
    assert urls["Documentation"].startswith(urls["Repository"])
