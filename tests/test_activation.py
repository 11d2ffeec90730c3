"""Installed is not configured: the plugin acts only where a project configures
it, says why in the header, and turns off with --dynamo-off without breaking
--strict-markers. The inner runs here opt out of the suite's activation
(the ``unconfigured`` fixture) to see the plugin as a new user installs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]

#: Tests that break every marker rule: they fail collection wherever the plugin acts.
UNMARKED = "def test_a():\n    assert 1\n"


def test_an_unconfigured_project_runs_as_without_the_plugin(
    pytester: pytest.Pytester, unconfigured: None
) -> None:
    pytester.makepyfile(UNMARKED)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    assert "dynamo" not in result.stdout.str().replace("dynamo-0", "")


def plugin_lines(result: pytest.RunResult) -> list[str]:
    """The lines the plugin printed (its header lines, sections, messages)."""
    return [
        line
        for line in result.outlines
        if line.startswith(("dynamo", "pytest-dynamo")) or "= pytest-dynamo" in line
    ]


def _normalized(lines: list[str]) -> list[str]:
    """Output lines with what differs between two runs anyway: the plugin
    list and the durations."""
    out = []
    for line in lines:
        if line.startswith("plugins:"):
            continue
        out.append(re.sub(r"\d+\.\d+s", "N.NNs", line))
    return out


def test_an_unconfigured_project_has_the_same_output_byte_for_byte(
    pytester: pytest.Pytester, unconfigured: None
) -> None:
    pytester.makepyfile(
        test_mixed="""
        import warnings
        import pytest

        def test_pass(): pass
        def test_fail(): assert 1 == 2
        @pytest.mark.skip(reason="no")
        def test_skip(): pass
        @pytest.mark.xfail(reason="known")
        def test_xfail(): assert 0
        @pytest.mark.slow
        def test_unregistered_marker(): warnings.warn(UserWarning("careful"))
        @pytest.mark.parametrize("x", [1, 2])
        def test_param(x): pass
        """
    )
    pytester.makepyfile(test_import_error="import not_a_module_anywhere\n")
    for args in (
        [],
        ["-v"],
        ["-qq"],
        ["-rA", "-x"],
        ["--reruns", "1"],
        ["--continue-on-collection-errors"],
        ["--collect-only", "-q"],
    ):
        installed = pytester.runpytest("-p", "no:cacheprovider", *args)
        removed = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:dynamo", *args)
        assert installed.ret == removed.ret, args
        assert _normalized(installed.outlines) == _normalized(removed.outlines), args
        assert _normalized(installed.errlines) == _normalized(removed.errlines), args


def test_an_unconfigured_project_with_strict_markers_may_use_the_taxonomy(
    pytester: pytest.Pytester, unconfigured: None
) -> None:
    pytester.makepyfile(
        "import pytest\n@pytest.mark.nightly\n@pytest.mark.vram_gib(3.8)\ndef test_a(): pass\n"
    )
    # No hardware or type marker: no rule is applied, and nothing is skipped.
    result = pytester.runpytest_subprocess("--strict-markers")
    result.assert_outcomes(passed=1)
    assert not plugin_lines(result)


@pytest.mark.parametrize(
    ("setup", "args", "why"),
    [
        ("pyproject", [], "[[]tool.pytest-dynamo] in */pyproject.toml"),
        ("ini", [], "dynamo_validation in */tox.ini"),
        ("none", ["-o", "dynamo_validation=strict"], "-o dynamo_validation"),
        ("none", ["--dynamo-validation=strict"], "--dynamo-validation on the command line"),
        ("config_file", ["--dynamo-config=dynamo.toml"], "--dynamo-config on the command line"),
        ("env_config", [], "DYNAMO_CONFIG=dynamo.toml"),
        ("addopts", [], "--dynamo-pipeline on the command line"),
        ("env_on", [], "PYTEST_DYNAMO_ON=1"),
    ],
)
def test_each_way_of_configuring_activates_it_and_the_header_says_which(
    pytester: pytest.Pytester,
    unconfigured: None,
    monkeypatch: pytest.MonkeyPatch,
    setup: str,
    args: list[str],
    why: str,
) -> None:
    pytester.makepyfile(UNMARKED)
    if setup == "pyproject":
        pytester.makepyprojecttoml("[tool.pytest-dynamo]\n")
    elif setup == "ini":
        pytester.makefile(".ini", tox="[pytest]\ndynamo_validation = strict\n")
    elif setup in ("config_file", "env_config"):
        (pytester.path / "dynamo.toml").write_text("")
        if setup == "env_config":
            monkeypatch.setenv("DYNAMO_CONFIG", "dynamo.toml")
    elif setup == "addopts":
        pytester.makeini("[pytest]\naddopts = --dynamo-pipeline=nightly\n")
    elif setup == "env_on":
        monkeypatch.setenv("PYTEST_DYNAMO_ON", "1")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"pytest-dynamo: active ({why})"])


def test_version_says_whether_and_why_it_acts(pytester: pytest.Pytester, unconfigured: None) -> None:
    result = pytester.runpytest("--version", "--version")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*pytest-dynamo*", "pytest-dynamo: inactive (not configured: *)"])
    pytester.makepyprojecttoml("[tool.pytest-dynamo]\n")
    result = pytester.runpytest("--version", "--version")
    result.stdout.fnmatch_lines(["pytest-dynamo: active ([[]tool.pytest-dynamo] in */pyproject.toml)"])
    result = pytester.runpytest("--version", "--version", "--dynamo-off")
    result.stdout.fnmatch_lines(["pytest-dynamo: inactive (turned off by --dynamo-off)"])


@pytest.mark.parametrize("off", ["flag", "env"])
def test_dynamo_off_turns_every_feature_off_and_keeps_the_markers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, off: str
) -> None:
    pytester.makepyprojecttoml("[tool.pytest-dynamo]\n")
    pytester.makepyfile(
        test_a="import pytest\n@pytest.mark.nightly\n@pytest.mark.gpu_8\ndef test_marked(): pass\n",
        test_b=UNMARKED,
    )
    args = ["--strict-markers", "--dynamo-records=records.jsonl", "--dynamo-gpus=0"]
    if off == "flag":
        args.append("--dynamo-off")
    else:
        monkeypatch.setenv("PYTEST_DYNAMO_OFF", "1")
    result = pytester.runpytest(*args)
    # No validation, no GPU skip of the gpu_8 test, no records, no header line.
    result.assert_outcomes(passed=2)
    assert not (pytester.path / "records.jsonl").exists()
    assert not plugin_lines(result)


def test_dynamo_off_keeps_the_projects_own_markers(pytester: pytest.Pytester) -> None:
    """The example suite uses its configured alias `premerge` under --strict-markers."""
    example = Path(__file__).parent.parent / "examples" / "inference_suite"
    shutil.copytree(example, pytester.path, dirs_exist_ok=True)
    # In a subprocess: in-process runs share pytest.mark's cache of known names.
    result = pytester.runpytest_subprocess("--dynamo-off")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert not plugin_lines(result)
    assert "not found in `markers`" not in result.stdout.str()
    # A configuration that does not load is no error when the plugin is off.
    with (pytester.path / "pyproject.toml").open("a") as pyproject:
        pyproject.write("[tool.pytest-dynamo.no_such_table]\n")
    assert pytester.runpytest_subprocess().ret == pytest.ExitCode.USAGE_ERROR
    result = pytester.runpytest_subprocess("--dynamo-off")
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED  # pytest's: 'premerge' is unknown now
    result.stdout.fnmatch_lines(["*'premerge' not found in `markers` configuration option*"])


def test_dynamo_off_refuses_to_run_a_plan(pytester: pytest.Pytester) -> None:
    """Off would run the suite the plan was asked not to run."""
    pytester.makepyfile(UNMARKED)
    result = pytester.runpytest("--dynamo-off", "--dynamo-plan")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*pytest-dynamo: --dynamo-plan runs nothing, but the plugin is turned off by --dynamo-off*"]
    )


def test_without_the_plugin_strict_markers_suites_fail(pytester: pytest.Pytester, valid_marks: str) -> None:
    """What the docs say of -p no:dynamo: the markers go with it."""
    pytester.makepyfile(f"import pytest\n{valid_marks}def test_a(): pass\n")
    # In a subprocess: in-process runs share pytest.mark's cache of known names.
    result = pytester.runpytest_subprocess("-p", "no:dynamo", "--strict-markers")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*'pre_merge' not found in `markers` configuration option*"])
    pytester.runpytest_subprocess("--dynamo-off", "--strict-markers").assert_outcomes(passed=1)


def test_xdist_workers_act_when_the_controller_does(
    pytester: pytest.Pytester, unconfigured: None, no_selection_from_the_environment: None
) -> None:
    pytester.makepyfile(test_x=UNMARKED)
    # Unconfigured: the workers leave the unmarked test alone.
    pytester.runpytest("-n", "2").assert_outcomes(passed=1)
    # A flag on the controller's command line reaches the workers.
    result = pytester.runpytest("-n", "2", "--dynamo-validation=strict")
    result.stdout.fnmatch_lines(["*DYN001 no lifecycle marker*"])
    assert "1 passed" not in result.stdout.str()


#: A small pure-Python package whose sdist ships its own tests (test_six.py).
SDIST = ("six", "1.17.0")


def _fetch_sdist(cache: Path) -> Path:
    name, version = SDIST
    archive = cache / f"{name}-{version}.tar.gz"
    if not archive.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    *("-m", "pip", "download", "--no-binary", ":all:", "--no-deps"),
                    *("--disable-pip-version-check", "--retries", "0", "--timeout", "20"),
                    *("-q", "-d", str(cache), f"{name}=={version}"),
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            pytest.skip(f"cannot fetch the {name}=={version} sdist: {err}")
        if done.returncode != 0 or not archive.is_file():
            last = (done.stderr.strip().splitlines() or ["pip download failed"])[-1]
            pytest.skip(f"cannot fetch the {name}=={version} sdist (offline?): {last}")
    return archive


def test_a_third_party_suite_from_its_sdist_runs_as_without_the_plugin(
    pytester: pytest.Pytester, unconfigured: None
) -> None:
    cache = Path(os.environ.get("DYNAMO_SDIST_CACHE", Path(__file__).parent.parent / ".cache" / "sdists"))
    archive = _fetch_sdist(cache)
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(pytester.path, filter="data")
        else:  # Python before 3.9.17 / 3.11.4: a pinned sdist from the package index
            tar.extractall(pytester.path)
    name, version = SDIST
    source = pytester.path / f"{name}-{version}"
    for entry in source.iterdir():
        shutil.move(str(entry), str(pytester.path / entry.name))
    installed = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers")
    removed = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers", "-p", "no:dynamo")
    assert installed.ret == removed.ret
    assert installed.parseoutcomes() == removed.parseoutcomes()
    assert installed.parseoutcomes().get("passed", 0) > 100
    assert _normalized(installed.outlines) == _normalized(removed.outlines)
