"""Collection-time validation: every placement of markers, every rule, every mode."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]


def test_a_valid_suite_runs(pytester: pytest.Pytester, valid_marks: str) -> None:
    pytester.makepyfile(f"import pytest\n{valid_marks}def test_a(): pass\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_each_rule_is_reported_with_its_fix_and_nothing_runs(pytester: pytest.Pytester) -> None:
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
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting test_rules.py*",
            "pytest-dynamo: 5 tests in this file break the marker rules",
            "test_no_lifecycle",
            "    DYN001 no lifecycle marker",
            "           fix: add one of @pytest.mark.pre_commit, @pytest.mark.pre_merge, *",
            "test_no_hardware",
            "    DYN002 no hardware marker",
            "           fix: add the lowest hardware it runs on: @pytest.mark.gpu_0, *",
            "test_no_type",
            "    DYN003 no type marker",
            "test_two_hardware",
            "    DYN002 marked gpu_1 and gpu_2: *the lowest it runs on",
            "           fix: keep @pytest.mark.gpu_1 and remove @pytest.mark.gpu_2",
            "test_model_on_cpu",
            "    DYN004 marked h100 and gpu_0: a GPU model needs a GPU",
            "pytest-dynamo: 5 tests in 1 file break the marker rules (of 5 checked)*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("premerge", "pre_merge"),
        ("gpus_needed_1", "gpu_1"),
        ("gpu1", "gpu_1"),
        ("Nightly", "nightly"),
        ("intergration", "integration"),
    ],
)
def test_typos_get_did_you_mean(pytester: pytest.Pytester, typo: str, suggestion: str) -> None:
    marks = {"lifecycle": "pre_merge", "hardware": "gpu_0", "type": "unit"}
    category = {"pre_merge": "lifecycle", "gpu_1": "hardware", "nightly": "lifecycle"}.get(suggestion, "type")
    marks[category] = typo
    decorators = "".join(f"@pytest.mark.{m}\n" for m in marks.values())
    pytester.makepyfile(f"import pytest\n{decorators}def test_a(): pass\n")
    result = pytester.runpytest("-W", "ignore::pytest.PytestUnknownMarkWarning")
    result.stdout.fnmatch_lines(
        [
            f"    DYN005 unknown marker '{typo}'",
            f"           fix: did you mean @pytest.mark.{suggestion}?",
        ]
    )
    # The typo is the only problem: its category counts as covered.
    assert "DYN00" not in result.stdout.str().replace("DYN005", "")
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_marks_from_class_module_param_and_dynamic_count(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name == "test_dynamic":
                    item.add_marker(pytest.mark.unit)
        """
    )
    pytester.makepyfile(
        test_places="""
        import pytest

        pytestmark = pytest.mark.nightly

        @pytest.mark.gpu_1
        class TestClass:
            @pytest.mark.e2e
            def test_in_class(self): pass

        @pytest.mark.gpu_0
        @pytest.mark.parametrize("x", [
            pytest.param(1, marks=pytest.mark.unit),
            pytest.param(2, marks=[pytest.mark.integration]),
            3,
        ])
        def test_param(x): pass

        @pytest.mark.gpu_0
        def test_dynamic(): pass
        """
    )
    result = pytester.runpytest("-v")
    # Only test_param[3] lacks a type marker: the other placements all count.
    result.stdout.fnmatch_lines(["test_param[[]3[]]", "    DYN003 no type marker"])
    result.stdout.fnmatch_lines(["*1 test in 1 file breaks the marker rules (of 5 checked)*"])


def test_unittest_classes_are_checked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ut="""
        import unittest
        import pytest

        @pytest.mark.nightly
        @pytest.mark.gpu_0
        class Good(unittest.TestCase):
            @pytest.mark.unit
            def test_ok(self): pass

        class Bad(unittest.TestCase):
            def test_bad(self): pass
        """
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["Bad::test_bad", "    DYN001 no lifecycle marker"])
    assert "Good::test_ok" not in result.stdout.str()


def test_deselected_tests_are_still_checked(pytester: pytest.Pytester, valid_marks: str) -> None:
    pytester.makepyfile(f"import pytest\n{valid_marks}def test_good(): pass\ndef test_bad(): pass\n")
    for args in (["-m", "unit"], ["-k", "good"]):
        result = pytester.runpytest(*args)
        assert result.ret == pytest.ExitCode.INTERRUPTED
        result.stdout.fnmatch_lines(["test_bad"])


def test_collect_only_fails_the_same_way(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_bad(): pass\n")
    result = pytester.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*DYN001 no lifecycle marker*"])


def test_warn_mode_reports_and_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_bad(): pass\n")
    for args in (["--dynamo-validation=warn"], ["-o", "dynamo_validation=warn"]):
        result = pytester.runpytest(*args)
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            ["*pytest-dynamo marker validation (warn)*", "*DYN001 no lifecycle marker*"]
        )


def test_off_mode_checks_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_bad(): pass\n")
    result = pytester.runpytest("--dynamo-validation=off")
    result.assert_outcomes(passed=1)
    assert "DYN001" not in result.stdout.str()


@pytest.mark.parametrize("args", [["--dynamo-validation=loud"], ["-o", "dynamo_validation=loud"]])
def test_a_bad_mode_is_a_usage_error(pytester: pytest.Pytester, args: list[str]) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*loud*not one of strict, warn, off*"])


def test_parametrizations_with_the_same_problem_fold(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("import pytest\n@pytest.mark.parametrize('x', range(50))\ndef test_p(x): pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["test_p[[]*[]]  (50 parametrizations)"])


def test_xdist_workers_report_the_same_and_run_nothing(pytester: pytest.Pytester, valid_marks: str) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_x=f"import pytest\n{valid_marks}def test_good(): pass\ndef test_bad(): pass\n")
    result = pytester.runpytest_subprocess("-n", "2")
    assert result.ret != pytest.ExitCode.OK
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*DYN001 no lifecycle marker*"])
    assert result.stdout.str().count("ERROR collecting test_x.py") == 1


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]])
def test_strict_stops_every_test_under_continue_on_collection_errors(
    pytester: pytest.Pytester, valid_marks: str, xdist: list[str]
) -> None:
    ran = pytester.path / "ran"
    body = f"    open({str(ran)!r}, 'a').write('x')\n"
    pytester.makepyfile(
        test_good=f"import pytest\n{valid_marks}def test_good():\n{body}",
        test_bad=f"def test_bad():\n{body}",
        test_broken="import not_a_module_anywhere\n",
    )
    result = pytester.runpytest_subprocess("--continue-on-collection-errors", *xdist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*No module named 'not_a_module_anywhere'*"])
    result.stdout.fnmatch_lines(["*DYN001 no lifecycle marker*"])
    assert not ran.exists(), "a test ran although strict validation failed collection"
    assert "passed" not in result.stdout.lines[-1]


def test_strict_markers_typos_get_did_you_mean_in_pytests_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_typos="""
        import pytest

        @pytest.mark.Nightly
        @pytest.mark.gpu1
        @pytest.mark.unit
        def test_a(): pass

        @pytest.mark.intergration
        @pytest.mark.frobnicate
        def test_b(): pass
        """
    )
    result = pytester.runpytest("--strict-markers")
    # pytest's own error and status, with our suggestion for every typo.
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "'Nightly' not found in `markers` configuration option",
            "*pytest-dynamo*",
            "pytest-dynamo: line 3: @pytest.mark.Nightly: did you mean @pytest.mark.nightly?",
            "pytest-dynamo: line 4: @pytest.mark.gpu1: did you mean @pytest.mark.gpu_1?",
            "pytest-dynamo: line 8: @pytest.mark.intergration: did you mean @pytest.mark.integration?",
            "ERROR test_typos.py - Failed: 'Nightly' not found in `markers`*",
        ]
    )
    assert "frobnicate: did you mean" not in result.stdout.str()
    assert pytester.runpytest("--strict-markers", "-p", "no:dynamo").ret == result.ret
    # Under xdist the suggestion travels with the worker's report.
    result = pytester.runpytest_subprocess("--strict-markers", "-n", "2")
    assert result.ret == pytester.runpytest_subprocess("--strict-markers", "-n", "2", "-p", "no:dynamo").ret
    result.stdout.fnmatch_lines(["*@pytest.mark.Nightly: did you mean @pytest.mark.nightly?"])


def _legacy_suite(pytester: pytest.Pytester, files: int, tests: int) -> None:
    """``files`` files of ``tests`` unmarked tests each, every one an offender."""
    body = "".join(f"def test_{n}(): pass\n" for n in range(tests))
    pytester.makepyfile(**{f"test_legacy_{f:02}": body for f in range(files)})


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_on_ci_the_short_summary_names_each_file_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    """On CI pytest writes a string report's whole text into the short
    summary: each file's report came out twice."""
    monkeypatch.setenv("CI", "true")
    _legacy_suite(pytester, files=3, tests=4)
    result = pytester.runpytest_subprocess(*workers)
    lines = result.outlines
    summary = lines[lines.index(next(line for line in lines if "short test summary info" in line)) + 1 :]
    errors = [line for line in summary if line.startswith("ERROR ")]
    # Without xdist every file; under it, the errors of the worker xdist shows.
    assert len(errors) == (3 if not workers else len(errors)) and errors, summary
    for line in errors:
        assert line.endswith(".py - pytest-dynamo: 4 tests in this file break the marker rules"), line
    # Nothing else: no report text follows a line (the last line ends it).
    assert all(line.startswith(("ERROR ", "!", "=")) for line in summary), summary


def test_a_large_report_is_capped_and_counts_every_rule(pytester: pytest.Pytester) -> None:
    _legacy_suite(pytester, files=25, tests=15)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    # An error for each of the first 10 files, each listing its first 5 tests.
    result.assert_outcomes(errors=10)
    text = result.stdout.str()
    assert "ERROR collecting test_legacy_09.py" in text
    assert "ERROR collecting test_legacy_10.py" not in text
    result.stdout.fnmatch_lines(
        [
            "pytest-dynamo: 15 tests in this file break the marker rules "
            "(first 5 shown; full list: --dynamo-validation-report=PATH)",
            "test_4",
            "    DYN001 no lifecycle marker",
            "... and 10 more tests in this file",
        ]
    )
    assert "\ntest_5\n" not in text
    result.stdout.fnmatch_lines(
        [
            "  DYN001  375 tests: no lifecycle marker",
            "  DYN002  375 tests: no hardware marker, or more than one",
            "  DYN003  375 tests: no type marker",
            "pytest-dynamo: the report shows the first 5 tests of each of the first 10 files; "
            "full list: --dynamo-validation-report=PATH",
            "pytest-dynamo: 375 tests in 25 files break the marker rules (of 375 checked)*",
        ]
    )
    # 375 offenders with 3 problems each were 2,700 lines before the cap.
    assert len(result.outlines) < 450


def test_the_full_report_goes_to_the_file_named(pytester: pytest.Pytester) -> None:
    _legacy_suite(pytester, files=25, tests=15)
    result = pytester.runpytest("--dynamo-validation-report=reports/full.txt")
    full = pytester.path / "reports" / "full.txt"
    result.stdout.fnmatch_lines([f"*full list in {full}*"])
    text = full.read_text()
    assert text.startswith("pytest-dynamo: 375 tests in 25 files break the marker rules")
    assert text.count("DYN001 no lifecycle marker") == 375
    assert "\ntest_legacy_24.py\n  test_0\n" in text
    assert text.count("\n  test_14\n") == 25

    pytester.makeini("[pytest]\ndynamo_validation_report = full.json\n")
    result = pytester.runpytest("--dynamo-validation=warn")
    result.assert_outcomes(passed=375)
    result.stdout.fnmatch_lines(["... and 15 more files", f"*full list in {pytester.path / 'full.json'}"])
    report = json.loads((pytester.path / "full.json").read_text())
    assert report["offenders"] == 375
    assert report["checked"] == 375
    assert {f["nodeid"] for f in report["findings"]} >= {
        "test_legacy_24.py::test_14",
        "test_legacy_00.py::test_0",
    }
    assert report["findings"][0]["problems"][0] == {
        "code": "DYN001",
        "message": "no lifecycle marker",
        "fix": report["findings"][0]["problems"][0]["fix"],
    }


def test_a_clean_suite_writes_a_clean_report(pytester: pytest.Pytester, valid_marks: str) -> None:
    pytester.makepyfile(f"import pytest\n{valid_marks}def test_a(): pass\n")
    pytester.runpytest("--dynamo-validation-report=r.txt").assert_outcomes(passed=1)
    clean = "pytest-dynamo: no test breaks the marker rules (of 1 checked)\n"
    assert (pytester.path / "r.txt").read_text() == clean


def test_an_unwritable_report_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(): pass\n")
    (pytester.path / "afile").write_text("")
    result = pytester.runpytest("--dynamo-validation-report=afile/r.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest-dynamo: cannot write the validation report *afile/r.txt*"])
