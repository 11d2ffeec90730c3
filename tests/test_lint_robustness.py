"""``pytest-dynamo lint`` under pathological input: files nested deeper than
its walkers go, files it cannot or must not read, and more parametrizations
than fit in memory. Each is one finding (or one counted test), never a crash,
a hang or a silent pass; the other files are still checked."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]


def lint_process(pytester: pytest.Pytester, *args: str, timeout: float = 120) -> tuple[int, dict[str, Any]]:
    """Lint in a process of its own: a stack overflow or a hang must fail
    this test, not take the test run down with it."""
    result = pytester.run(
        sys.executable, "-m", "pytest_dynamo", "lint", "--format", "json", *args, timeout=timeout
    )
    assert result.ret in (0, 1), f"exit {result.ret}: {result.stderr.str()[-2000:]}"
    return result.ret, json.loads(result.stdout.str())


def healthy_files(pytester: pytest.Pytester, valid_marks: str, n: int = 8) -> None:
    """Files linted beside the pathological one: worker threads then share the run."""
    for i in range(n):
        pytester.makepyfile(**{f"test_fine_{i}": f"import pytest\n{valid_marks}def test_ok_{i}(): pass\n"})


def findings_of(report: dict[str, Any], code: str) -> dict[str, dict[str, Any]]:
    return {f["path"]: f for f in report["findings"] if f["code"] == code}


def test_deeply_nested_files_are_one_finding_each(pytester: pytest.Pytester, valid_marks: str) -> None:
    healthy_files(pytester, valid_marks)
    pytester.makepyfile(
        test_with_args="import pytest\n@pytest.mark.unit"
        + ".with_args(1)" * 8_000
        + f"\n{valid_marks}def test_deep_decorator(): pass\n",
        test_sum="import pytest\nm = pytest.mark.unit\npytestmark = [m]"
        + " + [m]" * 5_000
        + f"\n{valid_marks}def test_deep_sum(): pass\n",
    )
    code, report = lint_process(pytester)
    assert code == 1
    deep = findings_of(report, "DYN901")
    assert set(deep) == {"test_with_args.py", "test_sum.py"}
    for finding in deep.values():
        assert finding["message"] == "too deeply nested to check: more than 3000 levels of syntax"
        assert "split the deeply nested expression" in finding["fix"]
        assert "syntax error" not in finding["fix"]
    assert deep["test_sum.py"]["line"] == 3
    assert report["tests"] == 8  # every other file is still checked
    assert report["errors"] == 2


def test_nesting_within_the_limit_is_checked(pytester: pytest.Pytester, valid_marks: str) -> None:
    healthy_files(pytester, valid_marks)
    pytester.makepyfile(
        test_sum="import pytest\npytestmark = [pytest.mark.unit]"
        + " + [pytest.mark.unit]" * 2_900
        + "\n@pytest.mark.pre_merge\n@pytest.mark.gpu_0\ndef test_sum(): pass\n",
        test_with_args="import pytest\n@pytest.mark.unit"
        + ".with_args(1)" * 1_400
        + "\n@pytest.mark.pre_merge\n@pytest.mark.gpu_0\ndef test_chain(): pass\n",
    )
    code, report = lint_process(pytester)
    assert (code, report["tests"], report["errors"]) == (0, 10, 0)
    # A chain of with_args is computed markers: one warning, with one
    # snippet before its cause however long the chain.
    ((finding),) = report["findings"]
    assert (finding["path"], finding["code"]) == ("test_with_args.py", "DYN900")
    assert finding["message"] == (
        "`pytest.mark.unit.with_args(1).with_args(1).with_args(1).w...`: computed markers: "
        "`pytest.mark.unit.with_args(1).with_args`; left to collection-time validation"
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_skipped_and_said_so(pytester: pytest.Pytester, valid_marks: str) -> None:
    healthy_files(pytester, valid_marks, n=2)
    os.mkfifo(pytester.path / "test_fifo.py")
    code, report = lint_process(pytester, timeout=60)
    assert code == 1
    (finding,) = report["findings"]
    assert (finding["path"], finding["code"]) == ("test_fifo.py", "DYN901")
    assert finding["message"] == "a named pipe (FIFO), not a module: skipped"
    assert "regular file" in finding["fix"]
    assert report["tests"] == 2
    # Named on the command line, it is not "not found" either.
    code, report = lint_process(pytester, "test_fifo.py", timeout=60)
    assert [(f["path"], f["message"]) for f in report["findings"]] == [
        ("test_fifo.py", "a named pipe (FIFO), not a module: skipped")
    ]


def test_a_file_that_is_not_utf8_is_reported_unreadable(pytester: pytest.Pytester, valid_marks: str) -> None:
    healthy_files(pytester, valid_marks, n=1)
    (pytester.path / "test_latin1.py").write_bytes(
        b"import pytest\n" + valid_marks.encode() + b"def test_caf\xe9(): pass\n"
    )
    code, report = lint_process(pytester)
    assert code == 1
    (finding,) = report["findings"]
    where = (finding["path"], finding["code"], finding["line"], finding["column"])
    assert where == ("test_latin1.py", "DYN901", 5, 13)
    assert finding["message"] == "the file is not UTF-8 (byte 0xe9), so it cannot be checked"
    assert "UTF-8" in finding["fix"] and "syntax" not in finding["fix"]
    assert report["tests"] == 1


def test_an_unreadable_file_is_not_called_a_syntax_error(pytester: pytest.Pytester, valid_marks: str) -> None:
    healthy_files(pytester, valid_marks, n=1)
    (pytester.path / "test_gone.py").symlink_to(pytester.path / "missing.py")
    code, report = lint_process(pytester)
    assert code == 1
    (finding,) = report["findings"]
    assert (finding["path"], finding["code"]) == ("test_gone.py", "DYN901")
    assert finding["message"].startswith("cannot read the file: ")
    assert "syntax" not in finding["fix"]


def stacked_parametrize(n: int, marked: bool = False) -> str:
    lines = ["import pytest", "@pytest.mark.pre_merge", "@pytest.mark.unit"]
    for i in range(n):
        if marked and i == 0:
            lines.append("@pytest.mark.parametrize('p0', [pytest.param(0, marks=pytest.mark.gpu_1), 1])")
        else:
            lines.append(f"@pytest.mark.parametrize('p{i}', [0, 1])")
    lines.append("def test_many(" + ", ".join(f"p{i}" for i in range(n)) + "): pass")
    return "\n".join(lines) + "\n"


def test_parametrizations_are_counted_not_materialised(pytester: pytest.Pytester) -> None:
    # 2^40 ids once grew to 12 GB. They carry the same markers, so they are
    # checked as one and counted.
    pytester.makepyfile(test_many=stacked_parametrize(40))
    code, report = lint_process(pytester)
    assert code == 1
    assert report["tests"] == 2**40
    (finding,) = report["findings"]
    assert finding["code"] == "DYN002"  # no hardware marker
    assert finding["tests"] == ["test_many.py::test_many[*]"] and finding["count"] == 2**40
    result = pytester.run(sys.executable, "-m", "pytest_dynamo", "lint", timeout=120)
    result.stdout.fnmatch_lines(["test_many.py:*: DYN002 test_many?*? (1099511627776 parametrizations): *"])


def test_counted_parametrizations_with_markers_of_their_own_are_left_to_collection(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_many=stacked_parametrize(40, marked=True))
    code, report = lint_process(pytester)
    # A warning only: a parameter set's markers may supply the hardware marker.
    assert code == 0
    (finding,) = [f for f in report["findings"] if f["code"] == "DYN900"]
    assert finding["message"].startswith("1099511627776 parametrizations, some with markers of their own")
    assert report["unresolved"] == 2**40


def test_a_hundred_thousand_tests_in_one_file_are_all_checked(
    pytester: pytest.Pytester, valid_marks: str
) -> None:
    # The per-file cost was quadratic in its tests (a search per definition).
    body = "".join(f"{valid_marks}def test_{i}(): pass\n" for i in range(100_000))
    pytester.makepyfile(test_big="import pytest\n" + body + "@pytest.mark.unit\ndef test_0(): pass\n")
    code, report = lint_process(pytester, timeout=300)
    assert report["tests"] == 100_000
    # The later test_0 replaces the first, as in Python: it lacks two markers.
    assert {f["code"] for f in report["findings"]} == {"DYN001", "DYN002"}
    assert code == 1


def test_json_output_is_complete_under_deep_conftests(pytester: pytest.Pytester, valid_marks: str) -> None:
    healthy_files(pytester, valid_marks, n=2)
    pytester.makeconftest("x = 1" + " + 1" * 5_000 + "\n")
    code, report = lint_process(pytester)
    assert code == 1
    assert [(f["path"], f["code"]) for f in report["findings"]] == [("conftest.py", "DYN901")]
