"""Pipelines and stages: the spec's table, inheritance, stages, configuration,
the summary, the plan, gating, and the same selection on every xdist worker."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]


@pytest.fixture(autouse=True)
def _full_machine(full_machine: None) -> None:
    """Selection only: no hardware or framework skips on this machine."""


#: A suite that encodes the spec's "Mapping Tests to Pipelines" table:
#: (test name, lifecycle, hardware, type, extra markers).
SUITE = [
    ("precommit_unit", "pre_commit", "gpu_0", "unit", ()),
    ("pr_unit", "pre_merge", "gpu_0", "unit", ()),
    ("pr_integration_cpu", "pre_merge", "gpu_0", "integration", ()),
    ("pr_integration_1gpu", "pre_merge", "gpu_1", "integration", ()),
    ("pr_integration_2gpu", "pre_merge", "gpu_2", "integration", ()),
    ("pr_e2e_1gpu", "pre_merge", "gpu_1", "e2e", ("vllm",)),
    ("pr_e2e_4gpu", "pre_merge", "gpu_4", "e2e", ("trtllm",)),
    ("push_integration_1gpu", "post_merge", "gpu_1", "integration", ()),
    ("push_e2e_2gpu", "post_merge", "gpu_2", "e2e", ("sglang",)),
    ("nightly_e2e_1gpu", "nightly", "gpu_1", "e2e", ("vllm",)),
    ("nightly_benchmark", "nightly", "gpu_8", "benchmark", ()),
    ("nightly_security", "nightly", "gpu_0", "security", ()),
    ("weekly_stress", "weekly", "gpu_1", "stress", ()),
    ("release_stress", "release", "gpu_1", "stress", ()),
    ("release_benchmark", "release", "gpu_8", "benchmark", ()),
    ("nightly_performance", "nightly", "gpu_1", "performance", ()),
]

PR = {"precommit_unit", "pr_unit", "pr_integration_cpu", "pr_integration_1gpu", "pr_e2e_1gpu"}
PUSH = PR | {"pr_integration_2gpu", "pr_e2e_4gpu", "push_integration_1gpu", "push_e2e_2gpu"}
NIGHTLY = PUSH | {"nightly_e2e_1gpu", "nightly_benchmark", "nightly_security"}
WEEKLY = NIGHTLY | {"weekly_stress"}
RELEASE = WEEKLY | {"release_stress", "release_benchmark"}
EXPECTED = {
    "pre_commit": {"precommit_unit"},
    "pre_merge": PR,
    "pr": PR,
    "post_merge": PUSH,
    "push": PUSH,
    "nightly": NIGHTLY,
    "weekly": WEEKLY,
    "release": RELEASE,
}


def suite_source(fail: tuple[str, ...] = ()) -> str:
    lines = ["import pytest", ""]
    for name, *marks, extra in SUITE:
        for mark in (*marks, *extra):
            lines.append(f"@pytest.mark.{mark}")
        body = "assert False" if name in fail else "pass"
        lines += [f"def test_{name}(): {body}", ""]
    return "\n".join(lines)


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_suite=suite_source())
    return pytester


def collected(result: pytest.RunResult) -> set[str]:
    """Test names a ``--collect-only -q`` run lists."""
    return {line.split("::test_")[1] for line in result.outlines if line.startswith("test_suite.py::")}


@pytest.mark.parametrize("pipeline", sorted(EXPECTED))
def test_each_pipeline_selects_the_spec_table(suite: pytest.Pytester, pipeline: str) -> None:
    result = suite.runpytest(f"--dynamo-pipeline={pipeline}", "--collect-only", "-q")
    assert collected(result) == EXPECTED[pipeline]


@pytest.mark.parametrize(
    ("pipeline", "stage", "expected"),
    [
        ("pr", "unit", {"precommit_unit", "pr_unit"}),
        ("pr", "integration_1", {"pr_integration_cpu", "pr_integration_1gpu"}),
        ("push", "integration_2", {"pr_integration_2gpu"}),
        ("push", "e2e_2", {"pr_e2e_4gpu", "push_e2e_2gpu"}),
        ("post_merge", "e2e_1", {"pr_e2e_1gpu"}),
        ("nightly", "e2e_1", {"pr_e2e_1gpu", "nightly_e2e_1gpu"}),
        ("nightly", "benchmark", {"nightly_benchmark"}),
        ("weekly", "stress", {"weekly_stress"}),
        ("release", "stress", {"weekly_stress", "release_stress"}),
        ("release", "benchmark", {"nightly_benchmark", "release_benchmark"}),
    ],
)
def test_a_stage_narrows_to_its_tests(
    suite: pytest.Pytester, pipeline: str, stage: str, expected: set[str]
) -> None:
    result = suite.runpytest(f"--dynamo-pipeline={pipeline}", f"--dynamo-stage={stage}", "--co", "-q")
    assert collected(result) == expected


def test_environment_and_ini_name_the_pipeline_and_the_flag_wins(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNAMO_PIPELINE", "nightly")
    monkeypatch.setenv("DYNAMO_STAGE", "security")
    assert collected(suite.runpytest("--co", "-q")) == {"nightly_security"}
    result = suite.runpytest("--dynamo-pipeline=weekly", "--dynamo-stage=stress", "--co", "-q")
    assert collected(result) == {"weekly_stress"}
    monkeypatch.delenv("DYNAMO_PIPELINE")
    monkeypatch.delenv("DYNAMO_STAGE")
    suite.makeini("[pytest]\ndynamo_pipeline = pr\ndynamo_stage = e2e_1\n")
    assert collected(suite.runpytest("--co", "-q")) == {"pr_e2e_1gpu"}


def test_user_m_and_k_intersect_with_the_pipeline(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--dynamo-pipeline=nightly", "-m", "gpu_1 or gpu_2", "--co", "-q")
    assert collected(result) == {"pr_integration_1gpu", "pr_e2e_1gpu", "pr_integration_2gpu"} | {
        "push_integration_1gpu",
        "push_e2e_2gpu",
        "nightly_e2e_1gpu",
    }
    result = suite.runpytest("--dynamo-pipeline=pr", "-k", "e2e or stress", "--co", "-q")
    assert collected(result) == {"pr_e2e_1gpu"}


def test_the_summary_breaks_deselections_down_by_reason(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--dynamo-pipeline=pr", "--dynamo-stage=e2e_1", "-m", "not unit")
    result.assert_outcomes(passed=1, deselected=15)
    result.stdout.fnmatch_lines(
        [
            "*- pytest-dynamo selection -*",
            "pipeline pre_merge (stage e2e_1): 1 selected, 15 deselected",
            "       9 later lifecycle than pre_merge",
            "       4 not in stage e2e_1",
            "       2 deselected before (-m, -k or another plugin)",
        ]
    )


def test_a_pipeline_that_selects_nothing_says_so(pytester: pytest.Pytester, valid_marks: str) -> None:
    pytester.makepyfile(f"import pytest\n{valid_marks}def test_a(): pass\n")
    result = pytester.runpytest("--dynamo-pipeline=pre_commit")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(
        [
            "       1 later lifecycle than pre_commit",
            "pytest-dynamo: pipeline pre_commit (all stages) selects no test; "
            "exit 5 unless --dynamo-allow-empty; see https://*/docs/pipelines.md",
        ]
    )
    assert pytester.runpytest("--dynamo-pipeline=pre_commit", "--dynamo-allow-empty").ret == 0
    pytester.makeini("[pytest]\ndynamo_allow_empty = true\n")
    assert pytester.runpytest("--dynamo-pipeline=pre_commit").ret == 0


def test_unknown_pipelines_and_stages_are_usage_errors(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--dynamo-pipeline=nighty")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-dynamo: --dynamo-pipeline: unknown pipeline 'nighty' (did you mean 'nightly'?)",
            "  fix: use one of: pre_commit, pre_merge (alias pr), post_merge (alias push), nightly, "
            "weekly, release; or define it under *",
        ]
    )
    result = suite.runpytest("--dynamo-pipeline=pr", "--dynamo-stage=e2e_2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-dynamo: --dynamo-stage: pipeline 'pre_merge' has no stage 'e2e_2'*",
            "  fix: use one of: unit, integration_1, e2e_1",
        ]
    )
    result = suite.runpytest("--dynamo-stage=unit")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*the stage 'unit' was given without a pipeline*"])


def test_a_project_redefines_and_adds_pipelines(suite: pytest.Pytester) -> None:
    suite.makepyprojecttoml(
        """
        [tool.pytest-dynamo.pipelines.pre_merge]
        aliases = ["pr", "mr"]
        add_stages = [{ name = "e2e_2", expr = "e2e and (gpu_2 or gpu_4)", machine = "multi_gpu" }]

        [tool.pytest-dynamo.pipelines.gitlab_nightly]
        lifecycle = "nightly"
        gating = "not security"
        stages = [
            { name = "security", expr = "security", machine = "cpu" },
            { name = "perf", expr = "performance or benchmark", machine = "cluster" },
        ]
        """
    )
    result = suite.runpytest("--dynamo-pipeline=mr", "--dynamo-stage=e2e_2", "--co", "-q")
    assert collected(result) == {"pr_e2e_4gpu"}
    result = suite.runpytest("--dynamo-pipeline=gitlab_nightly", "--co", "-q")
    assert collected(result) == {"nightly_security", "nightly_benchmark", "nightly_performance"}


def test_a_bad_stage_expression_points_at_the_column(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        """
        [[tool.pytest-dynamo.pipelines.nightly.add_stages]]
        name = "gpu1"
        expr = "integration and premerge and (gpus_needed_0 or gpus_needed_1)"
        machine = "gpu_1"
        """
    )
    pytester.makepyfile("def test_a(): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-dynamo: *pyproject.toml: [[]tool.pytest-dynamo.pipelines[]] "
            "nightly.add_stages.gpu1.expr: 'premerge' is not a marker of the taxonomy (column 17)",
            "    integration and premerge and (gpus_needed_0 or gpus_needed_1)",
            "                    ^",
            "  fix: did you mean 'pre_merge'?",
        ]
    )


def test_the_run_context_names_the_first_stage_of_each_test(suite: pytest.Pytester) -> None:
    suite.makeconftest(
        """
        import json
        from pytest_dynamo import _state

        def pytest_collection_finish(session):
            context = session.config.stash[_state.RUN_CONTEXT]
            print("CONTEXT " + json.dumps(context, sort_keys=True))
        """
    )
    result = suite.runpytest("--dynamo-pipeline=push", "--dynamo-framework=sglang", "-s", "--co", "-q")
    line = next(line for line in result.outlines if line.startswith("CONTEXT "))
    context = json.loads(line[len("CONTEXT ") :])
    assert context["pipeline"] == "post_merge"
    assert context["stage"] is None
    assert context["framework"] == "sglang"
    stages = {nodeid.split("::test_")[1]: stage for nodeid, stage in context["stages"].items()}
    assert stages == {
        "precommit_unit": "unit",
        "pr_unit": "unit",
        "pr_integration_cpu": "integration_1",
        "pr_integration_1gpu": "integration_1",
        "pr_integration_2gpu": "integration_2",
        "push_integration_1gpu": "integration_1",
        "push_e2e_2gpu": "e2e_2",
    }


def test_the_plan_runs_nothing_and_shows_stages_durations_and_orphans(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_suite=suite_source(fail=("pr_unit",)))
    durations = {"test_suite.py::test_pr_unit": 2.5, "test_suite.py::test_precommit_unit": 0.5}
    suite.path.joinpath(".test_durations").write_text(json.dumps(durations))
    result = suite.runpytest("--dynamo-plan", "--dynamo-pipeline=pr")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes()
    result.stdout.fnmatch_lines(
        [
            "dynamo: --dynamo-plan: no test runs",
            "*= pytest-dynamo plan =*",
            "framework: all",
            "pipeline pre_merge (tests marked pre_merge or earlier; gating: all)",
            "  stage          machine  tests  duration          expression",
            "  unit           cpu          2  3.0s              unit",
            "  integration_1  gpu_1        2  -                 integration and (gpu_0 or gpu_1)",
            "  e2e_1          gpu_1        1  -                 e2e and (gpu_0 or gpu_1)",
            "  (pipeline)                  5  3.0s (2/5 known)  each test once",
            "1 of 16 collected tests are selected by no stage of any pipeline (they never run in CI):",
            "  test_suite.py::test_nightly_performance  [[]nightly, gpu_1, performance[]]",
        ]
    )
    everything = suite.runpytest("--dynamo-plan")
    for pipeline in ("pre_commit", "pre_merge", "post_merge", "nightly", "weekly", "release"):
        everything.stdout.fnmatch_lines([f"pipeline {pipeline} (*"])


@pytest.mark.parametrize(
    ("args", "status"),
    [([], pytest.ExitCode.INTERRUPTED), (["--continue-on-collection-errors"], pytest.ExitCode.TESTS_FAILED)],
)
def test_the_plan_runs_nothing_and_lists_import_errors(
    pytester: pytest.Pytester, valid_marks: str, args: list[str], status: pytest.ExitCode
) -> None:
    ran = pytester.path / "ran"
    pytester.makepyfile(
        test_good=f"import pytest\n{valid_marks}def test_good():\n    open({str(ran)!r}, 'a').write('x')\n",
        test_broken="import not_a_module_anywhere\n",
    )
    result = pytester.runpytest("--dynamo-plan", *args)
    # The status says collection was not clean, as pytest's would.
    assert result.ret == status
    assert not ran.exists(), "--dynamo-plan ran a test"
    result.stdout.fnmatch_lines(
        [
            "*= pytest-dynamo plan =*",
            "pipeline pre_merge (*",
            "  unit  *cpu  *1  *",
            "collection errors: 1; the plan leaves out what these failed to collect:",
            "  test_broken.py: ModuleNotFoundError: No module named 'not_a_module_anywhere'",
        ]
    )
    # A clean collection plans with status 0 and no error list.
    ran.unlink(missing_ok=True)
    (pytester.path / "test_broken.py").unlink()
    clean = pytester.runpytest("--dynamo-plan", *args)
    assert clean.ret == pytest.ExitCode.OK
    assert not ran.exists()
    assert "collection errors" not in clean.stdout.str()


def test_the_plan_reads_the_configured_durations_and_refuses_a_bad_file(suite: pytest.Pytester) -> None:
    suite.path.joinpath("d.json").write_text('{"test_suite.py::test_weekly_stress": 7200}')
    result = suite.runpytest("--dynamo-plan", "--dynamo-pipeline=weekly", "--dynamo-durations=d.json")
    result.stdout.fnmatch_lines(["  stress *cluster *1  2h 00m *stress"])
    suite.path.joinpath("d.json").write_text("{not json")
    result = suite.runpytest("--dynamo-plan", "--dynamo-durations=d.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-dynamo: *d.json: not a durations file: invalid JSON*"])
    result = suite.runpytest("--dynamo-plan", "--dynamo-durations=missing.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-dynamo: durations file *missing.json does not exist"])


def test_security_does_not_gate_nightly_but_gates_the_release(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=suite_source(fail=("nightly_security",)))
    nightly = pytester.runpytest("--dynamo-pipeline=nightly")
    assert nightly.ret == pytest.ExitCode.OK
    # A failure that does not gate is counted as non-gating, not failed.
    nightly.assert_outcomes(passed=11, failed=0, deselected=4)
    assert nightly.parseoutcomes()["non_gating"] == 1
    nightly.stdout.fnmatch_lines(
        [
            "*non-gating failures (need follow-up)*",
            "FAILED test_suite.py::test_nightly_security: non-gating in the nightly pipeline "
            "(gating: not (security or benchmark)) (owner: unassigned)",
        ]
    )
    release = pytester.runpytest("--dynamo-pipeline=release")
    assert release.ret == pytest.ExitCode.TESTS_FAILED


def test_a_gating_failure_still_fails_nightly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=suite_source(fail=("nightly_security", "pr_unit")))
    result = pytester.runpytest("--dynamo-pipeline=nightly")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_xdist_workers_select_alike_and_gating_holds(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=suite_source(fail=("nightly_benchmark",)))
    pytester.makeconftest(
        """
        from pytest_dynamo import _state

        def pytest_terminal_summary(terminalreporter, config):
            stages = config.stash[_state.RUN_CONTEXT]["stages"]
            terminalreporter.write_line(
                f"controller knows {len(stages)} stages, e2e: {stages['test_suite.py::test_push_e2e_2gpu']}"
            )
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "--dynamo-pipeline=nightly", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert result.parseoutcomes() == {"passed": 11, "non_gating": 1}
    result.stdout.fnmatch_lines(
        [
            "pipeline nightly (all stages): 12 selected, 4 deselected",
            "FAILED test_suite.py::test_nightly_benchmark: non-gating in the nightly pipeline*",
        ]
    )
    result.stdout.fnmatch_lines(["controller knows 12 stages, e2e: e2e_2"])


def test_the_plan_refuses_xdist(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--dynamo-plan", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dynamo-plan runs no test, so it needs no xdist workers*"])


def test_items_another_plugin_reordered_are_matched_to_their_markers(suite: pytest.Pytester) -> None:
    suite.makeconftest(
        """
        def pytest_collection_modifyitems(items):
            items.reverse()
            del items[::3]
        """
    )
    result = suite.runpytest("--dynamo-pipeline=push", "--co", "-q")
    names = [line.split("::test_")[1] for line in result.outlines if line.startswith("test_suite.py::")]
    reordered = [name for name, *_ in reversed(SUITE)]
    del reordered[::3]
    assert names == [name for name in reordered if name in PUSH]


def test_the_records_take_stage_and_gating_from_the_core_selection(pytester: pytest.Pytester) -> None:
    """The facts read each kept test's stage and gating from the core's own
    selection: what Python keeps of them (the run's context, gating's
    exemptions) is not handed back, so changing it does not change the records."""
    pytester.makepyfile(test_suite=suite_source())
    pytester.makeconftest(
        """
        from pytest_dynamo import _state

        def pytest_deselected(items):
            # After the selection filled Python's copies, before the facts are made.
            config = items[0].config
            config.stash[_state.RUN_CONTEXT]["stages"].clear()
            config.pluginmanager.get_plugin("dynamo-gating").exempt.clear()
        """
    )
    result = pytester.runpytest("--dynamo-pipeline=nightly", "--dynamo-records=r.jsonl")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    lines = [json.loads(line) for line in (pytester.path / "r.jsonl").read_text().splitlines()]
    tests = {t["nodeid"].split("::test_")[1]: t for t in lines if t["record"] == "test"}
    assert (tests["nightly_security"]["stage"], tests["nightly_security"]["gating"]) == ("security", False)
    assert (tests["pr_unit"]["stage"], tests["pr_unit"]["gating"]) == ("unit", True)
