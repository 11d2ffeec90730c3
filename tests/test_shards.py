"""Shards: ``--dynamo-shard=K/N`` and ``auto`` split the tests that remain
after selection over N machines, balanced by the durations file, each test in
exactly one shard, the same partition in every process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_dynamo import _cli

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]

CI_VARIABLES = (
    "DYNAMO_SHARD",
    "DYNAMO_SHARD_COUNT",
    "CI_NODE_INDEX",
    "CI_NODE_TOTAL",
    "JOB_COMPLETION_INDEX",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_STEP",
    "DYNAMO_RUN_ID",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
    "GITHUB_JOB",
    "CI_PIPELINE_ID",
    "CI_JOB_NAME",
    "SLURM_ARRAY_JOB_ID",
)


@pytest.fixture(autouse=True)
def _no_ci(full_machine: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs must not see the shard of a CI job running this suite."""
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def unit_suite(pytester: pytest.Pytester, files: int = 3, per_file: int = 6) -> set[str]:
    """``files`` files of ``per_file`` pre-merge unit tests, two classes each; their node ids."""
    ids = set()
    for f in range(files):
        lines = [
            "import pytest",
            "",
            "pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]",
        ]
        for c in range(2):
            lines.append(f"class TestC{c}:")
            for t in range(per_file // 2):
                lines.append(f"    def test_{t}(self): pass")
                ids.add(f"test_f{f}.py::TestC{c}::test_{t}")
        pytester.makepyfile(**{f"test_f{f}": "\n".join(lines) + "\n"})
    return ids


def listed(result: pytest.RunResult) -> list[str]:
    """Node ids a ``--collect-only -q`` run lists."""
    return [line for line in result.outlines if "::" in line and not line.startswith(" ")]


def header(pytester: pytest.Pytester, *args: str) -> list[str]:
    """The ``dynamo shard:`` header line of a run (``-q`` hides the header)."""
    result = pytester.runpytest("--collect-only", *args)
    return [line for line in result.outlines if line.startswith("dynamo shard:")]


def shards_of(pytester: pytest.Pytester, count: int, *args: str) -> list[list[str]]:
    out = []
    for k in range(1, count + 1):
        result = pytester.runpytest(f"--dynamo-shard={k}/{count}", "--collect-only", "-q", *args)
        assert result.ret in (0, 5), result.stdout.str()
        out.append(listed(result))
    return out


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_every_test_runs_in_exactly_one_shard(pytester: pytest.Pytester, count: int) -> None:
    ids = unit_suite(pytester)
    shards = shards_of(pytester, count)
    everything = [nodeid for shard in shards for nodeid in shard]
    assert sorted(everything) == sorted(ids)
    # Without durations every test counts the same: counts differ by at most one.
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= 1


def test_balanced_by_recorded_durations(pytester: pytest.Pytester) -> None:
    ids = sorted(unit_suite(pytester, files=1, per_file=6))
    slow = ids[0]
    durations = {nodeid: 1.0 for nodeid in ids}
    durations[slow] = 5.0  # as long as all the others together
    pytester.path.joinpath(".test_durations").write_text(json.dumps(durations))
    shards = shards_of(pytester, 2)
    alone = [shard for shard in shards if slow in shard]
    assert alone == [[slow]]


def test_group_module_keeps_a_file_together(pytester: pytest.Pytester) -> None:
    unit_suite(pytester, files=4, per_file=4)
    pytester.makepyprojecttoml('[tool.pytest-dynamo.shards]\ngroup = "module"\n')
    shards = shards_of(pytester, 2)
    for shard in shards:
        files = {nodeid.split("::")[0] for nodeid in shard}
        assert len(shard) == 4 * len(files)
    assert [len(shard) for shard in shards] == [8, 8]


def test_group_class_keeps_a_class_together(pytester: pytest.Pytester) -> None:
    unit_suite(pytester, files=1, per_file=6)
    pytester.makepyprojecttoml('[tool.pytest-dynamo.shards]\ngroup = "class"\n')
    shards = shards_of(pytester, 2)
    assert sorted({nodeid.rsplit("::", 1)[0] for nodeid in shard} for shard in map(set, shards)) == [
        {"test_f0.py::TestC0"},
        {"test_f0.py::TestC1"},
    ]


def test_an_unknown_group_is_a_configuration_error(pytester: pytest.Pytester) -> None:
    unit_suite(pytester, files=1)
    pytester.makepyprojecttoml('[tool.pytest-dynamo.shards]\ngroup = "package"\n')
    result = pytester.runpytest("--dynamo-shard=1/2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown variant `package`, expected one of `test`, `class`, `module`*"])


def stage_suite(pytester: pytest.Pytester) -> tuple[set[str], set[str]]:
    """Seven unit tests and three integration tests of pre-merge; their ids."""
    lines = ["import pytest", ""]
    unit, integration = set(), set()
    for i in range(7):
        lines += [
            "@pytest.mark.pre_merge",
            "@pytest.mark.gpu_0",
            "@pytest.mark.unit",
            f"def test_unit_{i}(): pass",
        ]
        unit.add(f"test_stages.py::test_unit_{i}")
    for i in range(3):
        lines += [
            "@pytest.mark.pre_merge",
            "@pytest.mark.gpu_0",
            "@pytest.mark.integration",
            f"def test_integration_{i}(): pass",
        ]
        integration.add(f"test_stages.py::test_integration_{i}")
    pytester.makepyfile(test_stages="\n".join(lines) + "\n")
    return unit, integration


def test_shards_split_the_stage_not_the_collection(pytester: pytest.Pytester) -> None:
    # pytest-split splits before the stage selects: 0 / 7 / 0. Here every
    # shard gets a part of the stage's own tests.
    unit, _ = stage_suite(pytester)
    shards = shards_of(pytester, 3, "--dynamo-pipeline=pre_merge", "--dynamo-stage=unit")
    assert sorted(n for shard in shards for n in shard) == sorted(unit)
    assert sorted(len(shard) for shard in shards) == [2, 2, 3]


def test_shards_compose_with_k(pytester: pytest.Pytester) -> None:
    _, integration = stage_suite(pytester)
    shards = shards_of(pytester, 2, "-k", "integration or unit_1")
    assert sorted(n for shard in shards for n in shard) == sorted(
        integration | {"test_stages.py::test_unit_1"}
    )
    assert sorted(len(shard) for shard in shards) == [2, 2]


def test_an_empty_shard_exits_0_and_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_two="import pytest\npytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]\n"
        "def test_a(): pass\ndef test_b(): pass\n"
    )
    result = pytester.runpytest("--dynamo-shard=3/3")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["*pytest-dynamo: shard 3/3 received no test (2 tests over 3 shards); exit 0*"]
    )
    result.stdout.fnmatch_lines(["*2 deselected*"])
    result = pytester.runpytest("--dynamo-shard=1/3")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*pytest-dynamo: shard 1/3: 1 of 2 selected tests*"])


def test_an_empty_selection_still_exits_5(pytester: pytest.Pytester) -> None:
    stage_suite(pytester)
    result = pytester.runpytest("--dynamo-shard=1/2", "-k", "nothing_matches")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_the_same_partition_in_independent_processes_and_xdist_workers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = unit_suite(pytester, files=3, per_file=6)
    durations = {nodeid: 0.1 + (i % 4) for i, nodeid in enumerate(sorted(ids))}
    pytester.path.joinpath(".test_durations").write_text(json.dumps(durations))
    ran = []
    for seed, workers in (("1", ()), ("2", ()), ("3", ("-n", "2"))):
        # Different hash seeds: nothing may hang on set or dict order.
        monkeypatch.setenv("PYTHONHASHSEED", seed)
        result = pytester.runpytest_subprocess(
            "--dynamo-shard=2/3", "-p", "no:cacheprovider", "-rA", *workers
        )
        assert result.ret == 0, result.stdout.str()
        ran.append(sorted(line.split()[1] for line in result.outlines if line.startswith("PASSED ")))
    assert ran[0] and ran[0] == ran[1] == ran[2]


def test_an_empty_shard_under_xdist_exits_0(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_one="import pytest\npytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]\n"
        "def test_a(): pass\n"
    )
    result = pytester.runpytest_subprocess("--dynamo-shard=2/2", "-n", "2", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*shard 2/2 received no test*"])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0/3", "*--dynamo-shard=0/3: the shard K must be from 1 to 3 (shards are numbered from 1)*"),
        ("4/3", "*--dynamo-shard=4/3: the shard K must be from 1 to 3*"),
        ("1/0", "*--dynamo-shard=1/0: the shard count N must be from 1 to 10000*"),
        ("2", "*--dynamo-shard=2: not K/N (e.g. 2/4, 1-based) or auto*"),
        ("a/b", "*--dynamo-shard=a/b: not K/N*"),
        ("1/99999999999999999999999", "*the shard count N must be from 1 to 10000*"),
    ],
)
def test_a_bad_shard_is_a_usage_error(pytester: pytest.Pytester, value: str, message: str) -> None:
    unit_suite(pytester, files=1)
    result = pytester.runpytest(f"--dynamo-shard={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_shard_from_the_environment_and_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = unit_suite(pytester, files=1, per_file=4)
    pytester.makeini("[pytest]\ndynamo_shard = 1/4\n")
    assert header(pytester) == ["dynamo shard: 1/4 (from dynamo_shard = 1/4; group: test)"]
    assert len(listed(pytester.runpytest("--collect-only", "-q"))) == 1
    monkeypatch.setenv("DYNAMO_SHARD", "2/2")
    assert header(pytester) == ["dynamo shard: 2/2 (from DYNAMO_SHARD=2/2; group: test)"]
    assert len(listed(pytester.runpytest("--collect-only", "-q"))) == 2
    result = pytester.runpytest("--collect-only", "-q", "--dynamo-shard=1/1")
    assert sorted(listed(result)) == sorted(ids)


AUTO = [
    # (environment, flags, expected shard, header source)
    ({"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}, (), "2/3", "GitLab CI_NODE_INDEX=2, CI_NODE_TOTAL=3"),
    (
        {"JOB_COMPLETION_INDEX": "0"},
        ("--dynamo-shard-count=3",),
        "1/3",
        "Kubernetes JOB_COMPLETION_INDEX=0, --dynamo-shard-count=3",
    ),
    (
        {"JOB_COMPLETION_INDEX": "2", "DYNAMO_SHARD_COUNT": "3"},
        (),
        "3/3",
        "Kubernetes JOB_COMPLETION_INDEX=2, DYNAMO_SHARD_COUNT=3",
    ),
    (
        {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "4"},
        (),
        "2/3",
        "Slurm SLURM_ARRAY_TASK_ID=5, SLURM_ARRAY_TASK_MIN=4, SLURM_ARRAY_TASK_COUNT=3",
    ),
    (
        {
            "SLURM_ARRAY_TASK_ID": "4",
            "SLURM_ARRAY_TASK_COUNT": "3",
            "SLURM_ARRAY_TASK_MIN": "0",
            "SLURM_ARRAY_TASK_STEP": "2",
        },
        (),
        "3/3",
        "Slurm SLURM_ARRAY_TASK_ID=4, SLURM_ARRAY_TASK_MIN=0, SLURM_ARRAY_TASK_COUNT=3",
    ),
]


@pytest.mark.parametrize(("env", "flags", "shard", "source"), AUTO)
def test_auto_reads_the_ci_variables(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    flags: tuple[str, ...],
    shard: str,
    source: str,
) -> None:
    unit_suite(pytester, files=1, per_file=6)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert header(pytester, "--dynamo-shard=auto", *flags) == [
        f"dynamo shard: {shard} (from {source}; group: test)"
    ]
    result = pytester.runpytest("--dynamo-shard=auto", "--collect-only", "-q", *flags)
    index, count = map(int, shard.split("/"))
    for name in env:
        monkeypatch.delenv(name)
    fixed = pytester.runpytest(f"--dynamo-shard={index}/{count}", "--collect-only", "-q")
    assert listed(result) == listed(fixed)


AUTO_ERRORS = [
    (
        {},
        (),
        "*no CI shard variables are set; it reads CI_NODE_INDEX and CI_NODE_TOTAL*SLURM_ARRAY_TASK_MIN*",
    ),
    (
        {"CI_NODE_INDEX": "2"},
        (),
        "*GitLab sets CI_NODE_INDEX and CI_NODE_TOTAL together; CI_NODE_TOTAL is missing*",
    ),
    ({"CI_NODE_INDEX": "4", "CI_NODE_TOTAL": "3"}, (), "*CI_NODE_INDEX=4 is above CI_NODE_TOTAL=3*"),
    (
        {"CI_NODE_INDEX": "0", "CI_NODE_TOTAL": "3"},
        (),
        "*CI_NODE_INDEX=0: 0 is out of range*(GitLab's index is 1-based)*",
    ),
    ({"JOB_COMPLETION_INDEX": "1"}, (), "*JOB_COMPLETION_INDEX=1 is set but not the shard count*"),
    (
        {"JOB_COMPLETION_INDEX": "3", "DYNAMO_SHARD_COUNT": "3"},
        (),
        "*JOB_COMPLETION_INDEX=3 (0-based) is not below the shard count 3 (DYNAMO_SHARD_COUNT=3)*",
    ),
    (
        {"JOB_COMPLETION_INDEX": "x"},
        ("--dynamo-shard-count=2",),
        "*JOB_COMPLETION_INDEX=x: 'x' is not a whole number*",
    ),
    ({"SLURM_ARRAY_TASK_ID": "1"}, (), "*SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN missing*"),
    (
        {"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1"},
        (),
        "*SLURM_ARRAY_TASK_ID=9 is not one of the 3 ids from SLURM_ARRAY_TASK_MIN=1*",
    ),
    (
        {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "2", "SLURM_ARRAY_TASK_ID": "0"},
        (),
        "*the variables of GitLab and Slurm are both set, so the shard is ambiguous*",
    ),
]


@pytest.mark.parametrize(("env", "flags", "message"), AUTO_ERRORS)
def test_auto_refuses_missing_or_inconsistent_variables(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    flags: tuple[str, ...],
    message: str,
) -> None:
    unit_suite(pytester, files=1)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = pytester.runpytest("--dynamo-shard=auto", *flags)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_a_bad_shard_count_flag_is_a_usage_error(pytester: pytest.Pytester) -> None:
    unit_suite(pytester, files=1)
    result = pytester.runpytest("--dynamo-shard=auto", "--dynamo-shard-count=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dynamo-shard-count=0*"])


def test_the_plan_prints_every_shard(pytester: pytest.Pytester) -> None:
    unit, _ = stage_suite(pytester)
    durations = {nodeid: 10.0 for nodeid in sorted(unit)[:4]}
    pytester.path.joinpath(".test_durations").write_text(json.dumps(durations))
    result = pytester.runpytest(
        "--dynamo-plan", "--dynamo-pipeline=pre_merge", "--dynamo-stage=unit", "--dynamo-shard=2/3"
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "shards: 7 tests over 3 (group: test; 4 of 7 tests with a recorded duration, "
            "the others counted as 10.0s (the median))",
            "  shard 1/3:      3 tests  ~30.0s",
            "  shard 2/3:      2 tests  ~20.0s  <- this machine",
            "  shard 3/3:      2 tests  ~20.0s",
        ]
    )
    result.stdout.no_fnmatch_line("*passed*")


def test_records_carry_the_shard(pytester: pytest.Pytester) -> None:
    unit_suite(pytester, files=1, per_file=2)
    pytester.runpytest("--dynamo-shard=1/2", "--dynamo-records=r.jsonl")
    records = [json.loads(line) for line in pytester.path.joinpath("r.jsonl").read_text().splitlines()]
    start = next(r for r in records if r["record"] == "run_start")
    assert start["shard"] == "1/2"


def run_ids(*paths: Path) -> list[str]:
    return [json.loads(line)["run_id"] for path in paths for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    "env",
    [
        {"GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": "unit"},
        {"CI_PIPELINE_ID": "7", "CI_JOB_NAME": "unit {k}/2"},
        {"SLURM_ARRAY_JOB_ID": "9001"},
        {"DYNAMO_RUN_ID": "nightly-2026-03-01"},
    ],
)
def test_the_shards_of_one_ci_run_are_one_run_in_the_report(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
) -> None:
    unit_suite(pytester, files=1, per_file=4)
    files = []
    for k in (1, 2):
        for name, value in env.items():
            monkeypatch.setenv(name, value.format(k=k))
        files.append(pytester.path / f"shard{k}.jsonl")
        pytester.runpytest(f"--dynamo-shard={k}/2", f"--dynamo-records={files[-1]}").assert_outcomes(passed=2)
    assert len(set(run_ids(*files))) == 1
    capsys.readouterr()
    assert _cli.main(["report", "--format", "json", *map(str, files)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["runs"]["total"] == 1


def test_shards_without_a_ci_run_identity_are_runs_of_their_own(pytester: pytest.Pytester) -> None:
    unit_suite(pytester, files=1, per_file=4)
    files = [pytester.path / "a.jsonl", pytester.path / "b.jsonl"]
    for k, path in enumerate(files, start=1):
        pytester.runpytest(f"--dynamo-shard={k}/2", f"--dynamo-records={path}")
    assert len(set(run_ids(*files))) == 2
