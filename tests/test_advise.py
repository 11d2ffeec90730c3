"""Timeouts, ``pytest-dynamo advise`` and the edits of ``advise --apply`` and
``lint --fix`` (issue #17): records whose right answers are known, golden
files for every placement of a marker, idempotence, ``--diff``, and bad input
(syntax errors, CRLF, tabs, non-UTF-8, read-only files)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from history_builder import Builder
from pytest_dynamo import _cli

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]

HEADER = "import pytest\npytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]\n"


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = _cli.main([*map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def result(duration: float, **fields: Any) -> tuple[str, float, dict[str, Any]]:
    """A passed result with these record fields (no GPU figures unless given)."""
    return ("passed", duration, {"gpus_used": None, "gpu_peak_mib": None, **fields})


# --- records carry the timeout marker ----------------------------------------


def test_records_carry_the_timeout_marker_and_null_without_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_t=HEADER
        + "@pytest.mark.timeout(120)\ndef test_positional(): pass\n"
        + "@pytest.mark.timeout(timeout=2.5)\ndef test_keyword(): pass\n"
        + "def test_bare(): pass\n"
    )
    pytester.runpytest("--dynamo-records=r.jsonl", "-p", "no:rerunfailures").assert_outcomes(passed=3)
    lines = [json.loads(x) for x in (pytester.path / "r.jsonl").read_text().splitlines()]
    timeouts = {r["nodeid"].split("::")[1]: r["timeout_s"] for r in lines if r["record"] == "test"}
    assert timeouts == {"test_positional": 120, "test_keyword": 2.5, "test_bare": None}


def test_the_timeout_crosses_from_xdist_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_t=HEADER + "@pytest.mark.timeout(90)\ndef test_a(): pass\ndef test_b(): pass\n")
    pytester.runpytest("-n", "2", "--dynamo-records=r.jsonl", "-p", "no:rerunfailures").assert_outcomes(
        passed=2
    )
    lines = [json.loads(x) for x in (pytester.path / "r.jsonl").read_text().splitlines()]
    timeouts = {r["nodeid"].split("::")[1]: r["timeout_s"] for r in lines if r["record"] == "test"}
    assert timeouts == {"test_a": 90, "test_b": None}


# --- the report and the gate -------------------------------------------------


def timeout_history(tmp_path: Path) -> Path:
    """Three runs; the answers: long_bare misses a timeout (p95 118 s ->
    recommended 354), tight's 110 s is under 100 / 0.8, loose's 600 s is
    above 10 x 10 s, long_ok is fine, old's records do not say."""
    b = Builder()
    for long_bare in (90.0, 120.0, 100.0):
        b.run(
            {
                "t/a.py::long_bare": result(long_bare, timeout_s=None),
                "t/a.py::long_ok": result(100.0, timeout_s=300),
                "t/a.py::tight": result(100.0, timeout_s=110),
                "t/a.py::loose": result(10.0, timeout_s=600),
                "t/a.py::short": result(0.5, timeout_s=None),
                "t/a.py::old": result(500.0),
            }
        )
    return b.write(tmp_path / "h.jsonl")


def test_the_report_names_missing_tight_and_loose_timeouts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = timeout_history(tmp_path)
    code, out, err = cli(capsys, "report", path, "--rootdir", tmp_path)
    assert code == 0, err
    assert (
        "Timeouts (a test above 1m p95 carries one; recommended: 3 x p95):\n"
        "  t/a.py::long_bare: no timeout marker (p95 1m58s over 3 run(s), marked none): "
        "@pytest.mark.timeout(354)\n"
        "  t/a.py::tight: timeout too tight (p95 1m40s over 3 run(s), marked timeout(110)): "
        "@pytest.mark.timeout(300)\n"
        "  t/a.py::loose: timeout too loose (p95 10s over 3 run(s), marked timeout(600)): "
        "@pytest.mark.timeout(30)\n"
        "  1 long test(s) not judged: their records do not say whether they carry a timeout "
        "(written before pytest-dynamo recorded timeout_s)\n"
    ) in out
    code, out, _ = cli(capsys, "report", path, "--rootdir", tmp_path, "--format", "json")
    section = json.loads(out)["timeouts"]
    assert (section["require_above_s"], section["factor"], section["long_tests"], section["unknown"]) == (
        60.0,
        3.0,
        4,
        1,
    )
    assert [(f["nodeid"], f["problem"], f["recommended_s"]) for f in section["findings"]] == [
        ("t/a.py::long_bare", "missing", 354),
        ("t/a.py::tight", "too-tight", 300),
        ("t/a.py::loose", "too-loose", 30),
    ]
    code, out, _ = cli(capsys, "report", path, "--rootdir", tmp_path, "--format", "markdown")
    assert "| `t/a.py::long_bare` | no timeout marker | 1m58s | 3 | - | `@pytest.mark.timeout(354)` |" in out


def test_the_threshold_and_factor_come_from_the_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest-dynamo.timeouts]\nrequire_above = "2m"\nfactor = 2\n'
    )
    _, out, _ = cli(capsys, "report", timeout_history(tmp_path), "--rootdir", tmp_path, "--format", "json")
    section = json.loads(out)["timeouts"]
    # long_bare's 118 s p95 is under 2 minutes now; loose's 600 s is above 2m and 10 x p95.
    assert [(f["nodeid"], f["problem"], f["recommended_s"]) for f in section["findings"]] == [
        ("t/a.py::tight", "too-tight", 200),
        ("t/a.py::loose", "too-loose", 20),
    ]


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ('require_above = "often"', "'often' is not a duration"),
        ("require_above = -1", "must be 0 seconds to a year"),
        ("factor = 0.5", "a timeout below the p95 duration fails the tests it guards"),
        ("factr = 3", "factr"),
    ],
)
def test_bad_timeouts_settings_are_refused_at_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, says: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(f"[tool.pytest-dynamo.timeouts]\n{table}\n")
    code, out, err = cli(capsys, "report", timeout_history(tmp_path), "--rootdir", tmp_path)
    assert code == 2 and out == ""
    assert err.startswith("pytest-dynamo report: ") and says in err
    assert "Traceback" not in err


def test_gate_timeouts_fails_on_a_long_test_without_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = timeout_history(tmp_path)
    code, out, _ = cli(capsys, "gate", path, "--timeouts", "--rootdir", tmp_path, "--format", "json")
    gates = {g["name"]: g for g in json.loads(out)["gates"]}
    assert code == 1
    assert list(gates) == ["flaky", "performance", "coverage", "timeouts"]
    g = gates["timeouts"]
    assert g["status"] == "fail"
    assert g["summary"] == "1 of 3 test(s) above 1m carry no timeout marker"
    assert [(c["subject"], c["change"]) for c in g["checks"]] == [
        ("t/a.py::long_bare", "add @pytest.mark.timeout(354)")
    ]
    # Not run unless asked for.
    code, out, _ = cli(capsys, "gate", path, "--rootdir", tmp_path, "--format", "json")
    assert "timeouts" not in [g["name"] for g in json.loads(out)["gates"]]
    # --only timeouts runs it alone.
    code, out, _ = cli(capsys, "gate", path, "--only", "timeouts", "--rootdir", tmp_path)
    assert code == 1 and "FAIL  timeouts: 1 of 3 test(s) above 1m carry no timeout marker" in out


def test_gate_timeouts_passes_when_every_long_test_has_one_and_skips_on_old_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    b = Builder()
    b.run({"t/a.py::long": result(100.0, timeout_s=300), "t/a.py::short": result(1.0, timeout_s=None)})
    code, out, _ = cli(
        capsys, "gate", b.write(tmp_path / "ok.jsonl"), "--only", "timeouts", "--rootdir", tmp_path
    )
    assert code == 0
    assert "PASS  timeouts: every test above 1m carries a timeout (1 judged)" in out
    old = Builder()
    old.run({"t/a.py::long": result(100.0)})
    code, out, _ = cli(
        capsys, "gate", old.write(tmp_path / "old.jsonl"), "--only", "timeouts", "--rootdir", tmp_path
    )
    assert code == 0
    assert "SKIP  timeouts: not judged: the records of the 1 long test(s) do not say" in out


# --- advise ------------------------------------------------------------------


def advice_history(tmp_path: Path) -> Path:
    """big: used 1 GPU, peaks 4096 MiB (x 1.2 = 4.8 GiB), 100 s with no timeout;
    two: used 2 GPUs, 2048 MiB; its failed run that used 4 does not count."""
    b = Builder()
    for i in range(3):
        b.run(
            {
                "tests/test_m.py::test_big": result(
                    100.0, gpus_used=1, gpu_peak_mib=4096.0 - 512 * i, timeout_s=None
                ),
                "tests/test_m.py::test_two": ("failed" if i == 2 else "passed", 1.0, {
                    "gpus_used": 4 if i == 2 else 2, "gpu_peak_mib": 2048.0, "timeout_s": None}),
                "tests/test_m.py::test_cpu": result(0.1, gpus_used=0, timeout_s=None),
                "tests/test_m.py::test_plain": result(0.1, timeout_s=None),
            }
        )  # fmt: skip
    return b.write(tmp_path / "h.jsonl")


def test_advise_prints_each_tests_decorators_with_the_evidence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "advise", advice_history(tmp_path), "--rootdir", tmp_path)
    assert code == 0, err
    assert out == (
        "tests/test_m.py::test_big  (3 run(s), 3 passed, p95 1m40s)\n"
        "  @pytest.mark.gpu_1          used at most 1 GPU in 3 passing run(s) measured\n"
        "  @pytest.mark.vram_gib(4.8)  peak 4.00 GiB on one GPU x 1.2\n"
        "  @pytest.mark.timeout(300)   p95 1m40s over 3 run(s) x 3 (no timeout marker)\n"
        "tests/test_m.py::test_cpu  (3 run(s), 3 passed, p95 0.1s)\n"
        "  @pytest.mark.gpu_0          used no GPU in 3 passing run(s) measured\n"
        "tests/test_m.py::test_two  (3 run(s), 2 passed, p95 1s)\n"
        "  @pytest.mark.gpu_2          used at most 2 GPUs in 2 passing run(s) measured\n"
        "  @pytest.mark.vram_gib(2.4)  peak 2.00 GiB on one GPU x 1.2\n"
        "pytest-dynamo advise: 3 test(s) from 3 run(s); `pytest-dynamo advise --apply` writes them\n"
    )
    code, out, _ = cli(capsys, "advise", advice_history(tmp_path), "--rootdir", tmp_path, "--format", "json")
    data = json.loads(out)
    big = data["tests"][0]
    assert (big["runs"], big["passed"], big["p95_s"], big["gpus_used"], big["peak_mib"]) == (
        3,
        3,
        100.0,
        1,
        4096.0,
    )
    assert [(d["kind"], d["marker"], d["arg"]) for d in big["decorators"]] == [
        ("hardware", "gpu_1", None),
        ("vram", "vram_gib", "4.8"),
        ("timeout", "timeout", "300"),
    ]
    assert data["vram_factor"] == 1.2


def test_the_vram_factor_and_marker_come_from_the_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.pytest-dynamo.advice]\nvram_factor = 1.5\n"
        '[tool.pytest-dynamo.gpu]\nvram_marker = "profiled_vram_gib"\n'
    )
    code, out, _ = cli(capsys, "advise", advice_history(tmp_path), "--rootdir", tmp_path)
    assert code == 0
    assert "@pytest.mark.profiled_vram_gib(6)" in out and "peak 4.00 GiB on one GPU x 1.5" in out
    (tmp_path / "pyproject.toml").write_text("[tool.pytest-dynamo.advice]\nvram_factor = 0.5\n")
    code, _, err = cli(capsys, "advise", advice_history(tmp_path), "--rootdir", tmp_path)
    assert code == 2 and "a VRAM value below the measured peak does not fit the test" in err


def test_advise_without_runs_or_with_nothing_to_say(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, _, err = cli(capsys, "advise", empty, "--rootdir", tmp_path)
    assert code == 2 and "advice needs the records of at least one run" in err
    b = Builder()
    b.run({"t.py::quick": result(0.1, timeout_s=None)})
    code, out, _ = cli(capsys, "advise", b.write(tmp_path / "h.jsonl"), "--rootdir", tmp_path)
    assert code == 0 and out.startswith("pytest-dynamo advise: nothing to advise from 1 run(s)")


# --- advise --apply and lint --fix: golden files ------------------------------

GOLDEN = Path(__file__).parent / "golden"


def golden(name: str) -> str:
    return (GOLDEN / name).read_text(encoding="utf-8")


def apply_history(path: Path) -> Path:
    b = Builder()
    for _ in range(3):
        b.run(
            {
                "test_apply.py::test_big": result(100.0, gpus_used=1, gpu_peak_mib=4096.0, timeout_s=None),
                "test_apply.py::test_tight": result(100.0, gpus_used=1, gpu_peak_mib=1024.0, timeout_s=60),
                "test_apply.py::TestSuite::test_in_class": result(1.0, gpus_used=1, timeout_s=None),
                "test_apply.py::test_params[1]": result(
                    1.0, gpus_used=1, gpu_peak_mib=2048.0, timeout_s=None
                ),
                "test_apply.py::test_params[2]": result(
                    1.0, gpus_used=1, gpu_peak_mib=3072.0, timeout_s=None
                ),
            }
        )
    return b.write(path)


def test_advise_apply_writes_every_placement_and_a_second_apply_changes_nothing(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    target = pytester.path / "test_apply.py"
    target.write_text(golden("advise_apply.in"), encoding="utf-8")
    records = apply_history(pytester.path / "h.jsonl")
    code, out, err = cli(capsys, "advise", records, "--apply")
    assert code == 0, err
    assert target.read_text(encoding="utf-8") == golden("advise_apply.out")
    assert out.splitlines() == [
        "test_apply.py:6: 'gpu_2' replaced by 'gpu_1'",
        "test_apply.py:7: added @pytest.mark.timeout(300)",
        "test_apply.py:7: added @pytest.mark.vram_gib(4.8)",
        "test_apply.py:11: timeout(60) set to timeout(300)",
        "test_apply.py:13: added @pytest.mark.vram_gib(1.2)",
        "test_apply.py:28: vram_gib(1) set to vram_gib(2.4)",
        "test_apply.py:29: vram_gib() set to vram_gib(3.6)",
        "pytest-dynamo advise: changed 7 marker(s) in 1 file(s) of 1 checked; 1 left as written",
    ]
    assert err.splitlines() == [
        "pytest-dynamo advise: not edited: test_apply.py:18: 'gpu_4' is written for the whole class: "
        "@pytest.mark.gpu_1 of test_apply.py::TestSuite::test_in_class not written "
        "(move the marker to the tests)"
    ]
    code, out, err = cli(capsys, "advise", records, "--apply")
    assert code == 0
    assert target.read_text(encoding="utf-8") == golden("advise_apply.out")
    assert out.splitlines()[-1].startswith("pytest-dynamo advise: changed 0 marker(s) in 0 file(s)")


@pytest.mark.parametrize("name", ["lint_fix", "multiline"])
def test_lint_fix_matches_its_golden_file_and_is_idempotent(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    target = pytester.path / f"test_{name}.py"
    target.write_text(golden(f"{name}.in"), encoding="utf-8")
    code, out, err = cli(capsys, "lint", "--fix")
    assert code == 0, err
    assert target.read_text(encoding="utf-8") == golden(f"{name}.out")
    code, out, _ = cli(capsys, "lint", "--fix")
    assert target.read_text(encoding="utf-8") == golden(f"{name}.out")
    assert "changed 0 marker(s) in 0 file(s)" in out


def test_lint_fix_says_what_it_changed_and_what_it_left(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    (pytester.path / "test_lint_fix.py").write_text(golden("lint_fix.in"), encoding="utf-8")
    code, out, err = cli(capsys, "lint", "--fix")
    assert code == 0
    assert out.splitlines() == [
        "test_lint_fix.py:4: dropped 'gpu_2': a second hardware marker (kept the lowest, 'gpu_1')",
        "test_lint_fix.py:7: renamed 'nighly' to 'nightly'",
        "test_lint_fix.py:14: renamed 'intergration' to 'integration'",
        "test_lint_fix.py:25: dropped 'gpu_4': a second hardware marker (kept the lowest, 'gpu_1')",
        "test_lint_fix.py:26: renamed 'premerge' to 'pre_merge'",
        "pytest-dynamo lint: changed 5 marker(s) in 1 file(s) of 1 checked; 2 left as written",
    ]
    assert err.splitlines() == [
        "pytest-dynamo lint: not edited: test_lint_fix.py:34: 'gpu_4' is a second hardware marker of "
        "test_lint_fix.py::test_computed (the lowest is 'gpu_1'), but it is computed: not edited",
        "pytest-dynamo lint: not edited: test_lint_fix.py:4: 'gpu_1' is a second hardware marker of "
        "test_lint_fix.py::TestClass::test_method (the lowest is 'gpu_0'), but it is written for the whole "
        "module (pytestmark) and is the lowest of test_lint_fix.py::test_decorated: not edited",
    ]


def test_diff_prints_a_unified_diff_and_writes_nothing(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    target = pytester.path / "test_lint_fix.py"
    target.write_text(golden("lint_fix.in"), encoding="utf-8")
    before = target.stat().st_mtime_ns
    code, out, err = cli(capsys, "lint", "--fix", "--diff")
    assert code == 0
    assert target.read_text(encoding="utf-8") == golden("lint_fix.in")
    assert target.stat().st_mtime_ns == before
    assert out.startswith("--- a/test_lint_fix.py\n+++ b/test_lint_fix.py\n@@ ")
    assert "-@pytest.mark.nighly  # typo\n+@pytest.mark.nightly  # typo\n" in out
    assert "would change 5 marker(s) in 1 file(s)" in err
    records = apply_history(pytester.path / "h.jsonl")
    (pytester.path / "test_apply.py").write_text(golden("advise_apply.in"), encoding="utf-8")
    code, out, err = cli(capsys, "advise", records, "--diff")
    assert code == 0 and "+@pytest.mark.timeout(300)\n" in out
    assert (pytester.path / "test_apply.py").read_text(encoding="utf-8") == golden("advise_apply.in")


# --- bad input -----------------------------------------------------------------


def test_crlf_and_tabs_are_kept(pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    source = (
        "import pytest\r\n\r\nclass TestT:\r\n\t@pytest.mark.nighly\r\n\t@pytest.mark.gpu_0\r\n"
        "\t@pytest.mark.gpu_1\r\n\t@pytest.mark.unit\r\n\tdef test_a(self):\r\n\t\tpass\r\n"
    )
    target = pytester.path / "test_crlf.py"
    target.write_bytes(source.encode())
    code, _, err = cli(capsys, "lint", "--fix")
    assert code == 0, err
    assert target.read_bytes() == (
        b"import pytest\r\n\r\nclass TestT:\r\n\t@pytest.mark.nightly\r\n\t@pytest.mark.gpu_0\r\n"
        b"\t@pytest.mark.unit\r\n\tdef test_a(self):\r\n\t\tpass\r\n"
    )
    records = Builder()
    records.run({"test_crlf.py::TestT::test_a": result(100.0, gpus_used=0, timeout_s=None)})
    code, _, err = cli(capsys, "advise", records.write(pytester.path / "h.jsonl"), "--apply")
    assert code == 0, err
    assert b"\t@pytest.mark.timeout(300)\r\n\tdef test_a(self):\r\n" in target.read_bytes()


def test_files_that_cannot_be_edited_are_named_and_left_untouched(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = pytester.path / "test_broken.py"
    broken.write_text("import pytest\n@pytest.mark.nighly\ndef test_a(:\n    pass\n")
    latin = pytester.path / "test_latin.py"
    latin.write_bytes(b"import pytest\n# caf\xe9\n@pytest.mark.nighly\ndef test_b(): pass\n")
    locked = pytester.path / "test_locked.py"
    locked.write_text("import pytest\n@pytest.mark.nighly\ndef test_c(): pass\n")
    locked.chmod(stat.S_IRUSR | stat.S_IRGRP)
    snapshot = {p: p.read_bytes() for p in (broken, latin, locked)}
    try:
        code, _, err = cli(capsys, "lint", "--fix")
    finally:
        locked.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert code == 1
    assert {p: p.read_bytes() for p in (broken, latin, locked)} == snapshot
    assert "test_broken.py:3: " in err and "not edited" in err
    assert "test_latin.py:2: the file is not UTF-8 (byte 0xe9)" in err
    assert "pytest-dynamo lint: cannot write test_locked.py: it is read-only; left as it was" in err
    assert not [p for p in pytester.path.iterdir() if p.name.endswith(".tmp")]
    assert "Traceback" not in err


def test_the_command_is_registered() -> None:
    assert _cli.COMMANDS["advise"] == (
        "pytest_dynamo._advise_cli",
        "the markers each test should carry, from the records",
    )


def test_a_stage_over_its_budget_moves_its_slowest_tests_to_the_next_lifecycle(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    # pre_merge's unit stage measures 610 s a run against 8 minutes: test_slow (300 s) moves.
    pytester.makepyprojecttoml('[tool.pytest-dynamo.pipelines.pre_merge]\nbudget = "8m"\n')
    target = pytester.path / "test_move.py"
    target.write_text(
        "import pytest\n\n\n@pytest.mark.pre_merge  # fast lane\n@pytest.mark.gpu_0\n@pytest.mark.unit\n"
        "def test_slow():\n    pass\n\n\n@pytest.mark.pre_merge\n@pytest.mark.gpu_0\n@pytest.mark.unit\n"
        "def test_fast():\n    pass\n",
        encoding="utf-8",
    )
    b = Builder()
    for _ in range(2):
        b.run(
            {
                "test_move.py::test_slow": result(300.0, timeout_s=900),
                "test_move.py::test_mid": result(200.0, timeout_s=600),
                "test_move.py::test_fast": result(110.0, timeout_s=400),
            },
            pipeline="pre_merge",
            stage="unit",
        )
    records = b.write(pytester.path / "h.jsonl")
    code, out, err = cli(capsys, "advise", records)
    assert code == 0, err
    assert "test_move.py::test_slow  (2 run(s), 2 passed, p95 5m)\n  @pytest.mark.post_merge" in out
    assert (
        "instead of pre_merge: p95 5m in stage unit of pre_merge, whose p95 10m10s is over its budget 8m; "
        "moving its 1 slowest test(s) frees 5m"
    ) in out
    code, out, err = cli(capsys, "advise", records, "--apply")
    assert code == 0, err
    assert "test_move.py:4: 'pre_merge' replaced by 'post_merge'" in out
    assert target.read_text(encoding="utf-8").startswith(
        "import pytest\n\n\n@pytest.mark.post_merge  # fast lane\n@pytest.mark.gpu_0\n"
    )
    assert (
        "@pytest.mark.pre_merge\n@pytest.mark.gpu_0\n@pytest.mark.unit\ndef test_fast" in target.read_text()
    )
