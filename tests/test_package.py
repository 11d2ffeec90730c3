"""The installed plugin: entry point, registered markers, strict modes, opting out."""

from __future__ import annotations

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
    names = [m[0] for m in pytest_dynamo._core.Engine.load(str(pytester.path)).markers()]
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
