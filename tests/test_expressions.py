"""Marker expressions in pipelines mean what the same ``-m`` means to pytest,
keyword arguments included; names are checked against the taxonomy and
errors point at the column."""

from __future__ import annotations

import itertools

import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]


@pytest.fixture(autouse=True)
def _full_machine(full_machine: None) -> None:
    """Selection only: no hardware or framework skips on this machine."""


EXPRESSIONS = [
    "unit",
    "integration and (gpu_0 or gpu_1)",
    "e2e and gpu_2 or benchmark and not vllm",
    "not (unit or integration) and not nightly",
    "gpu(count=2)",
    "gpu(count=2, model='h100') or gpu(count=8)",
    "gpu(fast=True) and not gpu(count=1)",
    "not not (sglang and e2e) or stress",
    "(vllm or trtllm) and (gpu_1 or gpu_2) and not release",
]


def suite_source() -> str:
    """Sixty-odd tests whose markers cover every name the expressions use,
    placed on functions, classes and parameters."""
    lifecycles = ["pre_merge", "nightly", "release"]
    hardware = ["gpu_0", "gpu_1", "gpu_2"]
    types = ["unit", "integration", "e2e", "benchmark", "stress"]
    extras = [
        "",
        "@pytest.mark.vllm",
        "@pytest.mark.sglang\n@pytest.mark.vllm",
        "@pytest.mark.trtllm",
        "@pytest.mark.gpu(count=2)",
        "@pytest.mark.gpu(count=2, model='h100')",
        "@pytest.mark.gpu(count=8, fast=True)",
        "@pytest.mark.gpu(count=1, fast=1)",
    ]
    lines = ["import pytest", ""]
    combos = itertools.product(lifecycles, hardware, types)
    for i, (lifecycle, hw, kind) in enumerate(combos):
        extra = extras[i % len(extras)]
        lines += [f"@pytest.mark.{lifecycle}", f"@pytest.mark.{hw}", f"@pytest.mark.{kind}"]
        if extra:
            lines.append(extra)
        lines += [f"def test_{i}(): pass", ""]
    lines += [
        "@pytest.mark.nightly",
        "@pytest.mark.gpu_2",
        "class TestClassMarks:",
        "    pytestmark = [pytest.mark.e2e, pytest.mark.gpu(count=2)]",
        "    def test_in_class(self): pass",
        "",
        "@pytest.mark.pre_merge",
        "@pytest.mark.gpu_1",
        "@pytest.mark.parametrize('x', [",
        "    pytest.param(1, marks=[pytest.mark.integration, pytest.mark.vllm]),",
        "    pytest.param(2, marks=[pytest.mark.e2e, pytest.mark.gpu(count=8)]),",
        "])",
        "def test_param(x): pass",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    stages = ",\n".join(
        f'    {{ name = "s{i}", expr = "{expr}", machine = "cpu" }}' for i, expr in enumerate(EXPRESSIONS)
    )
    pytester.makepyprojecttoml(
        f"""
[tool.pytest-dynamo.taxonomy.other]
add = [{{ name = "gpu", description = "GPUs by keyword: gpu(count=N, model=..., fast=...)" }}]

[tool.pytest-dynamo.pipelines.probe]
lifecycle = "release"
stages = [
{stages}
]
"""
    )
    pytester.makepyfile(test_expr_suite=suite_source())
    return pytester


def collected(result: pytest.RunResult) -> set[str]:
    return {line for line in result.outlines if line.startswith("test_expr_suite.py::")}


@pytest.mark.parametrize("index", range(len(EXPRESSIONS)), ids=EXPRESSIONS)
def test_a_stage_selects_what_pytest_m_selects(suite: pytest.Pytester, index: int) -> None:
    ours = collected(suite.runpytest("--dynamo-pipeline=probe", f"--dynamo-stage=s{index}", "--co", "-q"))
    pytests = collected(suite.runpytest("-m", EXPRESSIONS[index], "--co", "-q"))
    assert ours == pytests
    assert ours, "every expression selects something in this suite"


def test_keyword_matching_follows_pytest(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--dynamo-pipeline=probe", "--dynamo-stage=s4", "--co", "-q")
    names = {line.split("::")[-1] for line in collected(result)}
    assert {"test_in_class", "test_4", "test_5"} <= names
    assert "test_param[2]" not in names


def test_an_alias_in_an_expression_means_its_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        """
        [tool.pytest-dynamo.aliases]
        premerge = "pre_merge"
        [tool.pytest-dynamo.pipelines.pr_only]
        lifecycle = "release"
        stages = [{ name = "all", expr = "premerge", machine = "cpu" }]
        """
    )
    pytester.makepyfile(
        """
        import pytest
        pytestmark = [pytest.mark.gpu_0, pytest.mark.unit]

        @pytest.mark.pre_merge
        def test_new_name(): pass

        @pytest.mark.premerge
        def test_old_name(): pass

        @pytest.mark.nightly
        def test_other(): pass
        """
    )
    result = pytester.runpytest("--dynamo-pipeline=pr_only", "-W", "ignore::pytest_dynamo.MarkerAliasWarning")
    result.assert_outcomes(passed=2, deselected=1)


@pytest.mark.parametrize(
    ("expr", "lines"),
    [
        (
            "e2e and (gpu_1",
            [
                "*nightly.gating: expected right parenthesis; got end of input (column 15)",
                "    e2e and (gpu_1",
                "                  ^",
                "  fix: correct the expression; the grammar is pytest's -m*",
            ],
        ),
        (
            "e2e && gpu_1",
            ['*nightly.gating: unexpected character "&" (column 5)', "        ^"],
        ),
        (
            "gpu_1(count=two)",
            ['*nightly.gating: unexpected character/s "two" (column 13)'],
        ),
        (
            "e2e and not gpus_needed_2",
            [
                "*nightly.gating: 'gpus_needed_2' is not a marker of the taxonomy (column 13)",
                "    e2e and not gpus_needed_2",
                "                ^",
                "  fix: did you mean 'gpu_2'?",
            ],
        ),
    ],
)
def test_a_bad_expression_is_a_usage_error_at_its_column(
    pytester: pytest.Pytester, expr: str, lines: list[str]
) -> None:
    pytester.makepyprojecttoml(f"[tool.pytest-dynamo.pipelines.nightly]\ngating = '{expr}'\n")
    pytester.makepyfile("def test_a(): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(lines)
