"""The configuration language a real project's taxonomy needs (issue #13,
items 1-10): moving markers between categories, ``satisfied_by``,
``exclusive``, built-in pipelines a project does not use, VRAM 0 and a VRAM
budget, packages for any marker, stage options and nested pytest roots. Each
point is checked at collection and, where it concerns markers, by the lint."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pytest_dynamo import _cli

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _full_machine(full_machine: None) -> None:
    """8 GPUs by the count override, every framework package importable."""


def lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    capsys.readouterr()  # what in-process pytest runs printed before
    code = _cli.main(["lint", "--format", "json", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def codes(report: dict[str, Any]) -> set[tuple[str, str]]:
    """``(test name, code)`` of every finding."""
    return {(t.rsplit("::", 1)[-1], f["code"]) for f in report["findings"] for t in f["tests"]}


# --- 1. a built-in marker moves between categories ---------------------------


def test_a_builtin_marker_moves_to_another_category(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    # `infrastructure` sorts before `other`: its add used to run first.
    pytester.makepyprojecttoml(
        """
        [tool.pytest-dynamo.taxonomy.infrastructure]
        description = "where the test runs"
        add = ["k8s"]
        max = 1
        [tool.pytest-dynamo.taxonomy.other]
        remove = ["k8s"]
        """
    )
    pytester.makepyfile(
        "import pytest\n"
        "@pytest.mark.nightly\n@pytest.mark.gpu_1\n@pytest.mark.e2e\n@pytest.mark.k8s\n"
        "def test_on_k8s(): pass\n"
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.k8s: [[]infrastructure[]] needs Kubernetes"])
    code, report, _ = lint(capsys)
    assert (code, report["findings"]) == (0, [])


# --- 2. satisfied_by ------------------------------------------------------------

SATISFIED = """
[tool.pytest-dynamo.taxonomy.hardware]
satisfied_by = ["k8s"]
"""

K8S_TESTS = """
import pytest

pytestmark = [pytest.mark.nightly, pytest.mark.e2e]

@pytest.mark.k8s
def test_k8s_only(): pass

@pytest.mark.k8s
@pytest.mark.gpu_1
@pytest.mark.gpu_2
def test_k8s_and_two_gpus(): pass

def test_nothing(): pass
"""


def test_satisfied_by_meets_the_requirement_at_collection_and_in_the_lint(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyprojecttoml(SATISFIED)
    pytester.makepyfile(test_k8s=K8S_TESTS)
    result = pytester.runpytest("--dynamo-validation=warn")
    out = result.stdout.str()
    assert "test_k8s_only\n" not in out
    result.stdout.fnmatch_lines(
        [
            "*test_k8s_and_two_gpus",
            "*DYN002 marked gpu_1 and gpu_2: a test carries exactly one hardware marker, "
            "the lowest it runs on",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*test_nothing",
            "*DYN002 no hardware marker",
            "*fix: add the lowest hardware it runs on: *; or one of @pytest.mark.k8s, which meet it too",
        ]
    )
    code, report, _ = lint(capsys)
    assert code == 1
    assert codes(report) == {("test_k8s_and_two_gpus", "DYN002"), ("test_nothing", "DYN002")}


def test_the_plan_shows_the_marker_that_meets_the_requirement(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(SATISFIED)
    pytester.makepyfile(
        "import pytest\n@pytest.mark.nightly\n@pytest.mark.e2e\n@pytest.mark.k8s\ndef test_k8s_only(): pass\n"
    )
    result = pytester.runpytest("--dynamo-plan")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "1 of 1 collected tests are selected by no stage of any pipeline*",
            "  test_*.py::test_k8s_only  [[]nightly, k8s, e2e[]]",
        ]
    )


# --- 3. exclusive ----------------------------------------------------------------


def test_exclusive_markers_have_their_own_rule(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyprojecttoml('[tool.pytest-dynamo.taxonomy.type]\nexclusive = [["e2e", "integration"]]\n')
    pytester.makepyfile(
        """
        import pytest

        pytestmark = [pytest.mark.nightly, pytest.mark.gpu_1]

        @pytest.mark.e2e
        @pytest.mark.performance
        def test_allowed(): pass

        @pytest.mark.e2e
        @pytest.mark.integration
        def test_both(): pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "test_both",
            "    DYN007 marked e2e and integration: the type category keeps them apart",
            "*fix: keep one of @pytest.mark.e2e, @pytest.mark.integration",
        ]
    )
    assert "test_allowed\n" not in result.stdout.str()
    code, report, _ = lint(capsys)
    assert code == 1
    assert codes(report) == {("test_both", "DYN007")}


# --- 4. built-in pipelines a project does not use ----------------------------------

NO_SECURITY = """
[tool.pytest-dynamo.taxonomy.type]
remove = ["security", "benchmark"]
[tool.pytest-dynamo.pipelines.weekly]
enabled = false
[tool.pytest-dynamo.pipelines.release]
enabled = false
[tool.pytest-dynamo.pipelines.nightly]
gating = ""
stages = [{ name = "all", expr = "unit or e2e", machine = "gpu_1" }]
"""


def test_dropped_builtin_pipelines_leave_runs_and_the_plan(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(NO_SECURITY)
    pytester.makepyfile(
        """
        import pytest

        pytestmark = [pytest.mark.gpu_0]

        @pytest.mark.pre_merge
        @pytest.mark.unit
        def test_unit(): pass

        @pytest.mark.weekly
        @pytest.mark.stress
        def test_stress(): pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    plan = pytester.runpytest("--dynamo-plan")
    plan.stdout.fnmatch_lines(
        [
            "1 of 2 collected tests are selected by no stage of any pipeline*",
            "  test_*::test_stress  [[]weekly, gpu_0, stress[]]",
        ]
    )
    assert "pipeline weekly" not in plan.stdout.str()
    assert "pipeline release" not in plan.stdout.str()
    result = pytester.runpytest("--dynamo-pipeline=weekly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown pipeline 'weekly'*"])


BAD_CONFIGURATIONS = {
    "a marker a kept built-in stage names": '[tool.pytest-dynamo.taxonomy.type]\nremove = ["security"]\n',
    "a pipeline to disable that does not exist": "[tool.pytest-dynamo.pipelines.nigthly]\nenabled = false\n",
    "a stage option that chooses the stage": (
        '[[tool.pytest-dynamo.pipelines.nightly.add_stages]]\nname = "unit"\noptions = ["--dynamo-stage=x"]\n'
    ),
    "a bad GPU table": '[tool.pytest-dynamo.gpu]\nvram_marker = "gpu_1"\n',
    "a bad package name": '[tool.pytest-dynamo.packages]\nkvbm = "kv-bm"\n',
    "too many framework variables": '[tool.pytest-dynamo.frameworks]\nenv = ["A", "B", "C"]\n',
    "a bad satisfied_by": '[tool.pytest-dynamo.taxonomy.hardware]\nsatisfied_by = ["k8"]\n',
    "a bad exclusive group": '[tool.pytest-dynamo.taxonomy.type]\nexclusive = [["e2e", "vllm"]]\n',
}


@pytest.mark.parametrize("toml", BAD_CONFIGURATIONS.values(), ids=BAD_CONFIGURATIONS.keys())
def test_the_lint_and_collection_refuse_the_same_configuration_alike(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], toml: str
) -> None:
    pytester.makepyprojecttoml(toml)
    pytester.makepyfile(
        "import pytest\n@pytest.mark.pre_merge\n@pytest.mark.gpu_0\n@pytest.mark.unit\ndef test_a(): pass\n"
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    collection = result.stderr.str()
    assert "Traceback" not in collection
    code, _, err = lint(capsys)
    assert code == 2
    start = "ERROR: pytest-dynamo: "
    assert collection.startswith(start), collection
    message = collection[len(start) :].strip()
    assert err.strip() == f"pytest-dynamo lint: {message}"


def test_a_configuration_the_lint_accepts_starts_a_run(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makepyprojecttoml(NO_SECURITY)
    pytester.makepyfile(
        "import pytest\n@pytest.mark.pre_merge\n@pytest.mark.gpu_0\n@pytest.mark.unit\ndef test_a(): pass\n"
    )
    assert lint(capsys)[0] == 0
    pytester.runpytest().assert_outcomes(passed=1)


# --- 5. VRAM 0, and VRAM on a CPU test ----------------------------------------------


def test_vram_zero_needs_no_gpu_and_vram_on_a_cpu_test_is_a_contradiction(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DYNAMO_GPUS", "0")
    pytester.makepyprojecttoml('[tool.pytest-dynamo.gpu]\nvram_marker = "profiled_vram_gib"\n')
    pytester.makepyfile(
        """
        import pytest

        pytestmark = [pytest.mark.pre_merge, pytest.mark.unit]

        @pytest.mark.gpu_0
        @pytest.mark.profiled_vram_gib(0)
        def test_cpu(): pass

        @pytest.mark.gpu_1
        @pytest.mark.profiled_vram_gib(0)
        def test_gpu(): pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * needs 1 GPU, 0 visible*"])
    pytester.makepyfile(
        test_contradiction="import pytest\n@pytest.mark.pre_merge\n@pytest.mark.unit\n@pytest.mark.gpu_0\n"
        "@pytest.mark.profiled_vram_gib(2.5)\ndef test_cpu_with_vram(): pass\n"
    )
    result = pytester.runpytest("--strict-markers")
    result.stdout.fnmatch_lines(
        [
            "test_cpu_with_vram",
            "    DYN008 marked gpu_0 and profiled_vram_gib(2.5): GPU memory needs a GPU",
            "*fix: mark it with the GPUs it needs (@pytest.mark.gpu_1 or more), "
            "or write @pytest.mark.profiled_vram_gib(0) for a CPU-only test",
        ]
    )
    code, report, _ = lint(capsys)
    assert code == 1
    assert codes(report) == {("test_cpu_with_vram", "DYN008")}


# --- 6. the VRAM budget ----------------------------------------------------------

BUDGET_SUITE = """
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.e2e]

@pytest.mark.gpu_1
@pytest.mark.vram_gib(16)
def test_fits(): pass

@pytest.mark.gpu_1
@pytest.mark.vram_gib(40)
def test_too_big(): pass

@pytest.mark.gpu_1
def test_unknown(): pass

@pytest.mark.gpu_0
def test_cpu(): pass

@pytest.mark.gpu_0
@pytest.mark.vram_gib(0)
def test_cpu_zero(): pass
"""


def test_a_vram_budget_deselects_what_exceeds_it_and_what_is_unknown(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_budget=BUDGET_SUITE)
    result = pytester.runpytest("--dynamo-max-vram-gib=24", "-rs", "--strict-markers")
    # test_fits stays selected; with no memory known it is skipped by the
    # hardware check, which is another thing than the budget.
    result.assert_outcomes(passed=2, skipped=1, deselected=2)
    result.stdout.fnmatch_lines(
        [
            "dynamo VRAM budget: 24 GiB (--dynamo-max-vram-gib=24): tests above it and GPU tests "
            "without a vram_gib marker are deselected",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*pytest-dynamo VRAM budget*",
            "2 deselected by the VRAM budget of 24 GiB (--dynamo-max-vram-gib=24)",
            "       1 vram_gib above 24 GiB",
            "       1 GPU tests without a vram_gib marker (unknown VRAM is over budget)",
        ]
    )
    result.stdout.fnmatch_lines(["SKIPPED * needs a GPU with 16 GiB of memory*"])
    monkeypatch.setenv("DYNAMO_MAX_VRAM_GIB", "48")
    pytester.runpytest().assert_outcomes(passed=2, skipped=2, deselected=1)
    monkeypatch.delenv("DYNAMO_MAX_VRAM_GIB")
    pytester.makeini("[pytest]\ndynamo_max_vram_gib = 8\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, deselected=3)
    result.stdout.fnmatch_lines(["*(dynamo_max_vram_gib = 8)*"])


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--dynamo-max-vram-gib=lots"],
            None,
            "--dynamo-max-vram-gib: 'lots' is not a number of GiB (0 or more)",
        ),
        ([], "-3", "pytest-dynamo: DYNAMO_MAX_VRAM_GIB=-3: not a number of GiB (0 or more); fix or unset it"),
    ],
)
def test_a_bad_budget_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str], env: str | None, message: str
) -> None:
    if env is not None:
        monkeypatch.setenv("DYNAMO_MAX_VRAM_GIB", env)
    pytester.makepyfile(test_budget=BUDGET_SUITE)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


# --- 7. packages for any marker -----------------------------------------------------


def test_any_marker_can_need_a_package(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        """
        [tool.pytest-dynamo.packages]
        kvbm = "dynamo_kvbm_not_installed"
        needs_json = ["json"]
        [tool.pytest-dynamo.gpu]
        frameworks = { vllm = "vllm_not_installed_either" }
        """
    )
    pytester.makeini("[pytest]\nmarkers =\n    needs_json: needs the json package\n")
    pytester.makepyfile(
        """
        import pytest

        pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]

        @pytest.mark.kvbm
        def test_kvbm(): pass

        @pytest.mark.needs_json
        def test_json(): pass

        @pytest.mark.vllm
        def test_vllm(): pass
        """
    )
    result = pytester.runpytest("-rs", "--strict-markers")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED * needs kvbm: package dynamo_kvbm_not_installed not installed",
            "SKIPPED * needs vllm: package vllm_not_installed_either not installed",
        ],
        consecutive=False,
    )


# --- 9. stages carry their options --------------------------------------------------

STAGE_OPTIONS = """
[[tool.pytest-dynamo.pipelines.pre_merge.add_stages]]
name = "unit"
options = ["-n", "2", "--timeout=77"]
"""


def test_a_stage_applies_its_options_and_the_command_line_wins(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(STAGE_OPTIONS)
    pytester.makepyfile(
        "import pytest\n@pytest.mark.pre_merge\n@pytest.mark.gpu_0\n@pytest.mark.unit\n"
        "def test_a(): pass\n\n"
        "@pytest.mark.pre_merge\n@pytest.mark.gpu_0\n@pytest.mark.unit\ndef test_b(): pass\n"
    )
    result = pytester.runpytest_subprocess(
        "--dynamo-pipeline=pr", "--dynamo-stage=unit", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "dynamo stage options: -n 2 --timeout=77 (from stage unit of pre_merge; "
            "the command line wins over them)",
        ]
    )
    result.stdout.fnmatch_lines(["timeout: 77.0s"])
    result.stdout.fnmatch_lines(["created: 2/2 workers"])
    result.assert_outcomes(passed=2)
    mine = pytester.runpytest_subprocess(
        "--dynamo-pipeline=pr", "--dynamo-stage=unit", "--timeout=5", "-n", "0", "-p", "no:cacheprovider"
    )
    mine.stdout.fnmatch_lines(["timeout: 5.0s"])
    assert "workers" not in mine.stdout.str()
    mine.assert_outcomes(passed=2)
    plan = pytester.runpytest("--dynamo-plan", "--dynamo-pipeline=pr")
    plan.stdout.fnmatch_lines(["  options of unit: -n 2 --timeout=77"])


def test_stage_options_follow_a_stage_named_by_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyprojecttoml(STAGE_OPTIONS)
    pytester.makepyfile(
        "import pytest\n@pytest.mark.pre_merge\n@pytest.mark.gpu_0\n@pytest.mark.unit\ndef test_a(): pass\n"
    )
    monkeypatch.setenv("DYNAMO_PIPELINE", "pre_merge")
    monkeypatch.setenv("DYNAMO_STAGE", "unit")
    result = pytester.runpytest("-n", "0")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["dynamo stage options: -n 2 --timeout=77 *", "timeout: 77.0s"], consecutive=False
    )
    monkeypatch.delenv("DYNAMO_STAGE")
    result = pytester.runpytest("-n", "0")
    assert "dynamo stage options" not in result.stdout.str()
    assert "timeout: 77.0s" not in result.stdout.str()


# --- 10. nested pytest roots ----------------------------------------------------------


def test_a_nested_root_uses_the_projects_table_above_it(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    (pytester.path / ".git").mkdir()
    pytester.makepyprojecttoml('[tool.pytest-dynamo.taxonomy.hardware]\nadd = ["xpu_1"]\n')
    bench = pytester.mkdir("benchmarks")
    (bench / "pyproject.toml").write_text("[tool.pytest.ini_options]\nmarkers = []\n")
    (bench / "test_bench.py").write_text(
        "import pytest\n@pytest.mark.nightly\n@pytest.mark.xpu_1\n@pytest.mark.benchmark\n"
        "def test_b(): pass\n"
    )
    result = pytester.runpytest("benchmarks", "--strict-markers")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"rootdir: {bench}"])
    result.stdout.fnmatch_lines(
        [
            f"dynamo config: {pytester.path / 'pyproject.toml'} (the rootdir {bench} has no "
            "[[]tool.pytest-dynamo[]] table; using the nearest one above it)",
        ]
    )
    code, report, err = lint(capsys, "benchmarks")
    assert (code, report["findings"]) == (0, [])
    assert err.strip() == (
        f"pytest-dynamo lint: the rootdir {bench} has no [tool.pytest-dynamo] table; "
        f"using the nearest one above it: {pytester.path / 'pyproject.toml'}"
    )
    # Outside a git work tree nothing above the rootdir applies.
    (pytester.path / ".git").rmdir()
    result = pytester.runpytest("benchmarks")
    result.stdout.fnmatch_lines(["*DYN005 unknown marker 'xpu_1'*"])


# --- the worked example of docs/configuration.md ---------------------------------------


def worked_example() -> str:
    """The TOML of the worked example, as docs/configuration.md shows it."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = text.split("## A real-world taxonomy, worked", 1)[1]
    found = re.search(r"```toml\n(.*?)```", section, re.S)
    assert found is not None, "the worked example has no toml block"
    return found.group(1)


WORKED_TESTS = """
import pytest

@pytest.mark.pre_merge
@pytest.mark.e2e
@pytest.mark.k8s
def test_on_kubernetes(): pass

@pytest.mark.pre_merge
@pytest.mark.e2e
@pytest.mark.multimodal
@pytest.mark.gpu_1
@pytest.mark.profiled_vram_gib(12)
def test_multimodal(): pass

@pytest.mark.pre_merge
@pytest.mark.unit
@pytest.mark.gpu_0
@pytest.mark.profiled_vram_gib(0)
def test_cpu(): pass

@pytest.mark.nightly
@pytest.mark.integration
@pytest.mark.xpu_1
@pytest.mark.kvbm
def test_kvbm_on_xpu(): pass

@pytest.mark.pre_merge
@pytest.mark.e2e
@pytest.mark.integration
@pytest.mark.gpu_1
def test_both_types(): pass
"""


def test_the_worked_example_of_the_docs_loads_and_applies(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CI's own label: the example reads DYNAMO_BACKEND instead.
    monkeypatch.setenv("DYNAMO_TEST_FRAMEWORK", "dynamo")
    pytester.makepyprojecttoml(worked_example())
    pytester.makepyfile(test_worked=WORKED_TESTS)
    result = pytester.runpytest("--dynamo-validation=warn", "--strict-markers", "-rs")
    result.stdout.fnmatch_lines(
        [
            "*test_both_types",
            "*DYN007 marked e2e and integration: the type category keeps them apart",
        ]
    )
    out = result.stdout.str()
    for fine in ("test_on_kubernetes", "test_multimodal", "test_cpu", "test_kvbm_on_xpu"):
        assert f"{fine}\n" not in out.split("pytest-dynamo marker validation")[-1], fine
    result.stdout.fnmatch_lines(["SKIPPED * needs kvbm: package kvbm not installed"])
    code, report, _ = lint(capsys)
    assert code == 1
    assert codes(report) == {("test_both_types", "DYN007")}
    plan = pytester.runpytest("--dynamo-plan", "--dynamo-validation=warn")
    assert plan.ret == pytest.ExitCode.OK, plan.stdout.str()
    plan.stdout.fnmatch_lines(["  options of e2e_1: -n 4 --dist=loadscope"])
    assert "pipeline weekly" not in plan.stdout.str()
