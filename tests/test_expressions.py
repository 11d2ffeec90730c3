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


def deep_stage_project(pytester: pytest.Pytester, expr: str) -> None:
    pytester.makepyprojecttoml(
        f"""
        [tool.pytest-dynamo.pipelines.deep]
        lifecycle = "release"
        stages = [{{ name = "long", expr = "{expr}", machine = "cpu" }}]
        """
    )
    pytester.makepyfile(
        """
        import pytest
        pytestmark = [pytest.mark.pre_merge, pytest.mark.unit]

        @pytest.mark.gpu_0
        def test_cpu(): pass

        @pytest.mark.gpu_1
        def test_gpu(): pass
        """
    )


def test_a_flat_chain_of_25000_terms_selects_as_pytest_does(pytester: pytest.Pytester) -> None:
    # A left-deep tree of 25,000 nodes once overflowed the stack (SIGSEGV) in
    # parsing, evaluation and drop: a chain is flat, whatever its length.
    deep_stage_project(pytester, " and ".join(["gpu_0"] * 12_500 + ["unit"] * 12_500))
    result = pytester.runpytest_subprocess("--dynamo-pipeline=deep", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=1)


@pytest.mark.parametrize(
    ("expr", "column"),
    [
        pytest.param("(" * 10_000 + "unit" + ")" * 10_000, 201, id="10000-parentheses"),
        pytest.param("not " * 20_000 + "unit", 801, id="20000-nots"),
        pytest.param("not (" * 150 + "unit" + ")" * 150, 501, id="mixed"),
    ],
)
def test_an_expression_nested_too_deeply_is_a_usage_error(
    pytester: pytest.Pytester, expr: str, column: int
) -> None:
    deep_stage_project(pytester, expr)
    result = pytester.runpytest_subprocess("--dynamo-pipeline=deep")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*deep.stages?0?.expr: the expression nests deeper than 200 levels of parentheses and `not` "
            f"(column {column})"
        ]
    )
    assert len(result.stderr.str()) < 2000, "a long expression is shown cut around the column"


def test_nesting_within_the_limit_still_selects(pytester: pytest.Pytester) -> None:
    deep_stage_project(pytester, "(" * 199 + "gpu_0" + ")" * 199 + " and " + "not " * 199 + "gpu_1")
    result = pytester.runpytest_subprocess("--dynamo-pipeline=deep")
    result.assert_outcomes(passed=1, deselected=1)


@pytest.mark.parametrize(
    "expr",
    [
        "gpu(count=1180591620717411303424)",
        "gpu(count=-1180591620717411303424)",
        "gpu(count=\u0661\u0662)",
        "gpu(count=9223372036854775807)",
    ],
)
def test_integers_beyond_64_bits_select_what_pytest_m_selects(pytester: pytest.Pytester, expr: str) -> None:
    pytester.makepyprojecttoml(
        f"""
        [tool.pytest-dynamo.taxonomy.other]
        add = [{{ name = "gpu", description = "GPUs by keyword" }}]
        [tool.pytest-dynamo.pipelines.big]
        lifecycle = "release"
        stages = [{{ name = "s", expr = "{expr}", machine = "cpu" }}]
        """
    )
    pytester.makepyfile(
        test_big="""
        import pytest
        pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]

        @pytest.mark.gpu(count=2**70)
        def test_huge(): pass

        @pytest.mark.gpu(count=-(2**70))
        def test_negative(): pass

        @pytest.mark.gpu(count=12)
        def test_twelve(): pass

        @pytest.mark.gpu(count=2**63 - 1)
        def test_max(): pass

        @pytest.mark.gpu(count=2.0**70)
        def test_float(): pass
        """
    )
    ours = collected_from(pytester.runpytest("--dynamo-pipeline=big", "--co", "-q"), "test_big.py::")
    pytests = collected_from(pytester.runpytest("-p", "no:dynamo", "-m", expr, "--co", "-q"), "test_big.py::")
    assert ours == pytests
    assert ours


def collected_from(result: pytest.RunResult, prefix: str) -> set[str]:
    return {line for line in result.outlines if line.startswith(prefix)}


@pytest.mark.parametrize("expr", ["e2e and \u0915\u093f", "unit or e\u0301", "\u24b6"])
def test_marks_that_are_no_word_characters_are_refused_as_pytest_refuses_them(
    pytester: pytest.Pytester, expr: str
) -> None:
    pytester.makepyprojecttoml(f'[tool.pytest-dynamo.pipelines.nightly]\ngating = "{expr}"\n')
    pytester.makepyfile("def test_a(): pass\n")
    ours = pytester.runpytest()
    assert ours.ret == pytest.ExitCode.USAGE_ERROR
    pytests = pytester.runpytest("-p", "no:dynamo", "-m", expr)
    assert pytests.ret == pytest.ExitCode.USAGE_ERROR
    # pytest: "Wrong expression passed to '-m': <expr>: at column N: unexpected character ..."
    column = pytests.stderr.str().split("at column ")[1].split(":")[0]
    message = pytests.stderr.str().split(f"at column {column}: ")[1].splitlines()[0]
    ours.stderr.fnmatch_lines([f"*nightly.gating: {message} (column {column})"])
