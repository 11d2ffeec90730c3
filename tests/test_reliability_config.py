"""Issue #18, configuration, options and markers: bad input is a clear error
when pytest starts or collects, never an INTERNALERROR, a hang or silence."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_dynamo import _cli

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]

HEADER = "import pytest\npytestmark = [pytest.mark.pre_merge, pytest.mark.unit]\n"
VALID = "import pytest\npytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]\n"
HUGE = "99999999999999999999999"


def assert_clean_usage_error(result: pytest.RunResult, *lines: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(list(lines))


# Item 7: flaky's arguments, whichever plugin retries.


@pytest.mark.parametrize(
    ("mark", "message"),
    [
        ("flaky(reruns=10**20)", "reruns must be a whole number, 0 or more and at most 100, not 1000*"),
        ("flaky(reruns='x')", 'reruns must be a whole number*not "x"'),
        ("flaky(reruns=-1)", "at most 100, not -1"),
        ("flaky(reruns=2, reruns_delay=-5)", "reruns_delay must be a number of seconds from 0 to 3600*"),
    ],
)
def test_flaky_arguments_rerunfailures_cannot_use_fail_collection(
    pytester: pytest.Pytester, mark: str, message: str
) -> None:
    # A failing test: with reruns=10**20 rerunfailures would retry it for ever.
    pytester.makepyfile(test_bad=VALID + f"@pytest.mark.{mark}\ndef test_a(): assert False\n")
    result = pytester.runpytest_subprocess("-p", "rerunfailures", timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["test_a", f"    DYN010 @pytest.mark.flaky(*{message}"])
    result.stderr.fnmatch_lines(
        ["*1 test(s) carry a flaky marker it cannot use:", f"  test_bad.py::test_a: *{message}*"]
    )
    # Whatever the validation mode: rerunfailures would loop or crash on it.
    for mode in ("warn", "off"):
        result = pytester.runpytest_subprocess(
            "-p", "rerunfailures", f"--dynamo-validation={mode}", timeout=120
        )
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"  test_bad.py::test_a: *{message}*"])


@pytest.mark.parametrize("retrier", ["rerunfailures", "no:rerunfailures"])
def test_under_xdist_a_flaky_marker_no_retrier_can_use_is_a_collection_error(
    pytester: pytest.Pytester, retrier: str
) -> None:
    pytester.makepyfile(test_bad=VALID + "@pytest.mark.flaky(reruns=10**20)\ndef test_a(): assert False\n")
    result = pytester.runpytest_subprocess("-p", retrier, "-n", "2", "--dynamo-validation=off", timeout=120)
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    result.stdout.fnmatch_lines(
        ["pytest-dynamo: a flaky marker it cannot use", "  test_bad.py::test_a: *at most 100*"]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=1)


def test_rerunfailures_own_arguments_are_accepted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ok=VALID + "@pytest.mark.flaky(2, 0)\ndef test_a(): pass\n"
        "@pytest.mark.flaky(reruns=1, only_rerun=['AssertionError'])\ndef test_b(): pass\n"
    )
    pytester.runpytest("-p", "rerunfailures").assert_outcomes(passed=2)


# Item 12: arguments a marker does not take.


@pytest.mark.parametrize(
    ("mark", "message"),
    [
        ("flaky(1, 2)", "pytest-dynamo reads at most 1 positional argument(s) (reruns)"),
        ("flaky(1, reruns=2)", "reruns is given twice"),
        ("vram_gib(1, 2)", "takes one number, not 2 arguments"),
        ("gpu_2(3)", "the hardware marker takes no arguments"),
        ("gpu_1(count=8)", "the hardware marker takes no arguments"),
        ("h100(4)", "the gpu_model marker takes no arguments"),
    ],
)
def test_arguments_a_marker_does_not_take_fail_collection(
    pytester: pytest.Pytester, mark: str, message: str
) -> None:
    hardware = "" if mark.startswith("gpu_") else "@pytest.mark.gpu_1\n"
    pytester.makeini("[pytest]\nmarkers =\n    vram_gib: GiB\n")
    pytester.makepyfile(test_args=HEADER + hardware + f"@pytest.mark.{mark}\ndef test_a(): pass\n")
    result = pytester.runpytest("-p", "no:rerunfailures", "--strict-markers", "--dynamo-gpus=8")
    # Our own retries also refuse a flaky marker they cannot use (exit 4).
    expected = pytest.ExitCode.USAGE_ERROR if mark.startswith("flaky") else pytest.ExitCode.INTERRUPTED
    assert result.ret == expected
    result.stdout.fnmatch_lines(
        ["test_a", f"    DYN010 @pytest.mark.{mark}: *{message}*", "           fix: *"]
    )
    # --dynamo-validation=warn reports it too.
    warned = pytester.runpytest("-p", "no:rerunfailures", "--dynamo-gpus=8", "--dynamo-validation=warn")
    warned.stdout.fnmatch_lines([f"*DYN010 @pytest.mark.{mark}: *{message}*"])


# Item 8: numbers out of range, from every source.


@pytest.mark.parametrize(
    ("args", "env", "ini", "message"),
    [
        (
            (),
            {"DYNAMO_GPUS": "²"},
            "",
            "*DYNAMO_GPUS=²: '²' is not a whole number from 0 to 4096; fix or unset it",
        ),
        ((), {}, "dynamo_gpus = ²", "*dynamo_gpus = ²: '²' is not a whole number from 0 to 4096*"),
        ((f"--dynamo-gpus={HUGE}",), {}, "", f"*--dynamo-gpus={HUGE}: {HUGE} is out of range*"),
        ((f"--dynamo-reruns={HUGE}",), {}, "", f"*--dynamo-reruns={HUGE}: {HUGE} is out of range*0 to 100"),
        ((f"--dynamo-slowest={HUGE}",), {}, "", f"*--dynamo-slowest={HUGE}: {HUGE} is out of range*"),
        ((), {}, f"dynamo_reruns = {HUGE}", f"*dynamo_reruns = {HUGE}: {HUGE} is out of range*"),
        (
            (),
            {},
            "dynamo_slowest = -3",
            "*dynamo_slowest = -3: -3 is out of range: a whole number from 0 to*",
        ),
    ],
)
def test_an_integer_setting_out_of_range_is_a_usage_error(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    env: dict[str, str],
    ini: str,
    message: str,
) -> None:
    monkeypatch.delenv("DYNAMO_GPUS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(VALID + "def test_a(): pass\n")
    assert_clean_usage_error(pytester.runpytest("--dynamo-records=r.jsonl", *args), message)


@pytest.mark.parametrize("option", ["--window", "--min-runs", "--release-after", "--top"])
def test_report_counts_out_of_range_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    with pytest.raises(SystemExit) as exit:
        _cli.main(["report", option, "99999999999999999999", str(tmp_path)])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: 99999999999999999999 is out of range: a whole number from 1 to" in err
    assert "Traceback" not in err


# Item 11: configuration silently accepted.


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[tool.pytest-dynamo.aliases]\n"pre merge" = "pre_merge"\n',
            "*aliases.pre merge: *not a valid marker name*",
        ),
        ('[tool.pytest-dynamo.aliases]\n"" = "pre_merge"\n', "*not a valid marker name*"),
        ('[tool.pytest-dynamo.aliases]\nand = "pre_merge"\n', "*'and' is a word of pytest's -m grammar*"),
        ('[tool.pytest-dynamo.taxonomy.type]\nadd = ["not"]\n', "*'not' is a word of pytest's -m grammar*"),
        ('[tool.pytest-dynamo.taxonomy.type]\nadd = ["parametrize"]\n', "*pytest's own markers*"),
        ('[tool.pytest-dynamo.aliases]\nskipif = "unit"\n', "*pytest's own markers*"),
        ('[tool.pytest-dynamo.taxonomy.hardware]\nadd = ["gpu_4294967296"]\n', "*more than the 4096*"),
        (
            '[tool.pytest-dynamo.taxonomy.type]\nremove = ["smoke"]\nadd = ["smoke"]\n',
            "*both removed and added*",
        ),
        ('[tool.pytest-dynamo.owners.paths]\n"" = "team"\n', "*names no file or folder*"),
        (
            "[tool.pytest-dynamo.pipelines.nightly]\nadd_stages = ["
            '{ name = "s", expr = "unit", machine = "cpu" }, '
            '{ name = "s", expr = "e2e", machine = "cpu" }]\n',
            "*two stages are named 's'*",
        ),
        ("[tool.pytest-dynamo.gates]\nwindow = 0\n", "*window must be at least 1*"),
        ("[tool.pytest-dynamo.gates]\nflaky_rate = nan\n", "*flaky_rate must be a percentage*"),
        ("[tool.pytest-dynamo.gates]\nflaky_rate = inf\n", "*flaky_rate must be a percentage*"),
        ("[tool.pytest-dynamo.gates]\nflaky_rate = -1\n", "*flaky_rate must be a percentage*"),
        ("[tool.pytest-dynamo.gates]\ncoverage_floors = { python = 101 }\n", "*coverage_floors.python*"),
    ],
)
def test_bad_configuration_stops_pytest_at_start(pytester: pytest.Pytester, toml: str, message: str) -> None:
    pytester.makepyprojecttoml(toml)
    pytester.makepyfile(VALID + "def test_a(): pass\n")
    assert_clean_usage_error(pytester.runpytest(), f"ERROR: pytest-dynamo: *{message}", "*fix: *")
    # The markers listing starts pytest too: nothing like `@pytest.mark.:` is listed.
    assert_clean_usage_error(pytester.runpytest("--markers"), f"*{message}")


def test_an_overflowing_gpu_count_never_runs_its_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest-dynamo.taxonomy.hardware]\nadd = ["gpu_4294967296"]\n')
    pytester.makepyfile(HEADER + "@pytest.mark.gpu_4294967296\ndef test_a(): pass\n")
    result = pytester.runpytest("--dynamo-gpus=2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "passed" not in result.stdout.str()


# Item 19, option parts.


@pytest.mark.parametrize(
    "arg", ["--dynamo-records=--", "--dynamo-config=--", "--dynamo-durations=-q", "--dynamo-pipeline=--"]
)
def test_a_flag_value_that_looks_like_an_option_is_a_usage_error(pytester: pytest.Pytester, arg: str) -> None:
    pytester.makepyfile(VALID + "def test_a(): pass\n")
    flag, _, value = arg.partition("=")
    assert_clean_usage_error(
        pytester.runpytest(arg),
        f"ERROR: pytest-dynamo: {arg}: the value '{value}' looks like an option*{flag}=VALUE*",
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_records_that_cannot_be_written_are_not_said_to_be_appended(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(VALID + "def test_a(): pass\n")
    result = pytester.runpytest("--dynamo-records=/dev/full")
    result.stdout.fnmatch_lines(["pytest-dynamo: * could not be written: /dev/full: *"])
    assert "appended to /dev/full" not in result.stdout.str()
