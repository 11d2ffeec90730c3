"""Records, reports and gates under corrupt input: a corpus of broken records
files (docs/reliability.md), each read by ``pytest-dynamo report`` in every
format and by ``pytest-dynamo gate``. Every file is either read, its bad lines
counted as corrupt, or refused with its name: never a panic, a traceback or
a hang, and a gzip file never decompresses past ``--max-decompressed``."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from history_builder import Builder
from pytest_dynamo import _cli

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]

REPORT_FORMATS = ("text", "json", "markdown", "html")
GATE_FORMATS = ("text", "json", "markdown")


def good_run(run_id: str = "r1", at: str = "2026-03-01T00:00:00Z") -> list[str]:
    """A whole run of two tests, as the plugin writes it."""
    start = {"record": "run_start", "schema": 1, "run_id": run_id, "pipeline": "nightly", "started_at": at}
    start |= {"gpus": {"devices": [{"name": "NVIDIA H100"}]}, "git": {"commit": "c1", "branch": "main"}}
    tests = [
        {
            "record": "test",
            "schema": 1,
            "run_id": run_id,
            "nodeid": f"t.py::{name}",
            "outcome": "passed",
            "duration_s": 1.25,
            "stage": "unit",
            "owner": "alec",
            "metrics": [{"name": "tps", "value": 10.0, "unit": "tok/s", "higher_is_better": True}],
            "finished_at": at,
        }
        for name in ("a", "b")
    ]
    end = {
        "record": "run_end",
        "schema": 1,
        "run_id": run_id,
        "exit_status": 0,
        "wall_s": 3.5,
        "finished_at": at,
    }
    return [json.dumps(r) for r in (start, *tests, end)]


def good_bytes(run_id: str = "r1") -> bytes:
    return ("\n".join(good_run(run_id)) + "\n").encode()


def record_line(**fields: Any) -> str:
    """A test record with `fields` replacing or adding to the usual ones."""
    record: dict[str, Any] = {"record": "test", "run_id": "r1", "nodeid": "t.py::x", "outcome": "passed"}
    record |= {"duration_s": 1.0, "finished_at": "2026-03-01T00:00:00Z"}
    record.update(fields)
    return json.dumps(record)


def with_lines(*lines: str | bytes) -> bytes:
    """A good run followed by `lines`."""
    return good_bytes() + b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)


WRONG_TYPES = {
    # Every field the reader keeps, with a value of a type it cannot take.
    "record": [1, [], {}, True],
    "run_id": [1, [], {}, False, None],
    "nodeid": [2, ["a"], {"a": 1}, True, None],
    "outcome": [0, [], {}, True, None],
    "duration_s": ["1.5", [], {}, True],
    "gating": ["yes", 1, [], {}],
    "stage": [1, [], {}, True],
    "owner": [1, ["o"], {}, False],
    "gpu_peak_mib": ["big", [], {}, True],
    "gpus_used": ["1", [], {}, True],
    "timeout_s": ["60", [], {}, True],
    "metrics": [{}, 1, "m", [1], [{"name": 1, "value": 1}], [{"name": "x", "value": "y"}], [{"value": 1}]],
    "finished_at": [1, [], "noon", "2026-13-01T00:00:00Z", "2026-01-01T25:00:00Z"],
}
RUN_START_WRONG = [
    {"record": "run_start", "run_id": 1, "started_at": "2026-03-01T00:00:00Z"},
    {"record": "run_start", "run_id": "s", "started_at": 5},
    {"record": "run_start", "run_id": "s"},
    {"record": "run_start", "run_id": "s", "started_at": "2026-03-01T00:00:00Z", "pipeline": 1},
    {"record": "run_start", "run_id": "s", "started_at": "2026-03-01T00:00:00Z", "gpus": 1},
    {"record": "run_start", "run_id": "s", "started_at": "2026-03-01T00:00:00Z", "gpus": {"devices": 1}},
    {
        "record": "run_start",
        "run_id": "s",
        "started_at": "2026-03-01T00:00:00Z",
        "gpus": {"devices": [{"name": 1}]},
    },
    {"record": "run_start", "run_id": "s", "started_at": "2026-03-01T00:00:00Z", "git": "c1"},
    {"record": "run_start", "run_id": "s", "started_at": "2026-03-01T00:00:00Z", "git": {"commit": 1}},
    {"record": "run_start", "run_id": "s", "started_at": "2026-03-01T00:00:00Z", "host": []},
]
RUN_END_WRONG = [
    {"record": "run_end", "run_id": "r1", "exit_status": "0"},
    {"record": "run_end", "run_id": "r1", "exit_status": 1.5},
    {"record": "run_end", "run_id": "r1"},
    {"record": "run_end", "run_id": "r1", "exit_status": 0, "wall_s": "long"},
    {"record": "run_end", "run_id": "r1", "exit_status": 0, "finished_at": 0},
]


def out_of_range() -> bytes:
    # Written by hand: 1e400 and -0 as JSON text, as a broken writer would.
    lines = [
        record_line(duration_s=-1.0),
        record_line(duration_s=-1e-9),
        record_line(duration_s=1e308),
        record_line(duration_s=1e10),
        record_line().replace('"duration_s": 1.0', '"duration_s": 1e400'),
        record_line().replace('"duration_s": 1.0', '"duration_s": -1e400'),
        record_line().replace('"duration_s": 1.0', '"duration_s": NaN'),
        record_line().replace('"duration_s": 1.0', '"duration_s": Infinity'),
        '{"record": "run_end", "run_id": "r1", "exit_status": 0, "wall_s": -5}',
        '{"record": "run_end", "run_id": "r1", "exit_status": 0, "wall_s": 1e300}',
        '{"record": "run_end", "run_id": "r1", "exit_status": 99999999999999999999}',
        '{"record": "run_end", "run_id": "r1", "exit_status": 1e30}',
    ]
    return with_lines(*lines)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


#: What a corpus file must give: ("corrupt", n) n lines counted corrupt (None:
#: at least one); ("read", None) read whole; ("empty", None) no records;
#: ("problem", text) read, with `text` among the problems; ("refused", text)
#: exit 2 with `text` (and the file's name) in the message.
Expect = tuple[str, Any]
KINDS: dict[str, tuple[Callable[[], bytes], Expect]] = {
    "empty file": (lambda: b"", ("empty", None)),
    "blank lines": (lambda: b"\n \n\t\r\n\n", ("empty", None)),
    "truncated last line": (lambda: good_bytes() + record_line().encode()[:30], ("corrupt", 1)),
    "truncated in the middle": (lambda: good_bytes()[:90] + b"\n" + good_bytes("r2"), ("corrupt", 1)),
    "binary garbage": (lambda: random.Random(1).randbytes(20_000), ("corrupt", None)),
    "binary garbage after a run": (
        lambda: good_bytes() + random.Random(2).randbytes(5_000),
        ("corrupt", None),
    ),
    "invalid UTF-8 in a node id": (
        lambda: with_lines(record_line(nodeid="t.py::XX").encode().replace(b"XX", b"\xff\xfe")),
        ("corrupt", 1),
    ),
    "invalid UTF-8 outside strings": (lambda: with_lines(b'{"record":"test",\xc3\x28}'), ("corrupt", 1)),
    "invalid UTF-8 in a skipped field": (
        lambda: with_lines(record_line(worker="gwXX").encode().replace(b"XX", b"\xff")),
        ("read", None),
    ),
    "NUL bytes in a line": (
        lambda: with_lines(record_line().encode().replace(b",", b",\x00", 1)),
        ("corrupt", 1),
    ),
    "a file of NUL bytes": (lambda: b"\x00" * 10_000, ("corrupt", 1)),
    "escaped NUL in a node id": (lambda: with_lines(record_line(nodeid="t.py::a\x00b")), ("read", None)),
    "a huge line of garbage": (lambda: with_lines(b"x" * (8 << 20)), ("corrupt", 1)),
    "a huge valid line": (lambda: with_lines(record_line(reason="r" * (8 << 20))), ("read", None)),
    "deeply nested JSON": (lambda: with_lines("[" * 200_000 + "]" * 200_000), ("corrupt", 1)),
    "deeply nested unclosed JSON": (lambda: with_lines("{" * 100_000), ("corrupt", 1)),
    # serde skips a value it does not keep without recursion: read, however deep.
    "deep nesting in a skipped field": (
        lambda: with_lines(
            record_line().replace('"passed"', '"passed", "deep": ' + "[" * 50_000 + "]" * 50_000)
        ),
        ("read", None),
    ),
    "JSON that is not an object": (
        lambda: with_lines("1", "null", '"test"', "[]", "true", "{}"),
        ("corrupt", 6),
    ),
    "duplicate keys": (
        lambda: with_lines(record_line().replace("{", '{"nodeid": "t.py::y", ', 1)),
        ("corrupt", 1),
    ),
    "a lone surrogate": (
        lambda: with_lines(record_line(nodeid="XX").replace("XX", "\\ud800")),
        ("corrupt", 1),
    ),
    "a raw control character in a string": (
        lambda: with_lines(record_line(nodeid="t.py::a\tb").replace("\\t", "\t")),
        ("corrupt", 1),
    ),
    "a UTF-8 byte order mark": (lambda: b"\xef\xbb\xbf" + good_bytes(), ("corrupt", 1)),
    "UTF-16": (lambda: good_bytes().decode().encode("utf-16"), ("corrupt", None)),
    "CRLF line ends": (lambda: good_bytes().replace(b"\n", b"\r\n"), ("read", None)),
    "CR line ends": (lambda: good_bytes().replace(b"\n", b"\r"), ("corrupt", 1)),
    "wrong types in test records": (
        lambda: with_lines(*(record_line(**{f: v}) for f, vs in WRONG_TYPES.items() for v in vs)),
        ("corrupt", sum(map(len, WRONG_TYPES.values()))),
    ),
    "wrong types in run starts": (lambda: with_lines(*map(json.dumps, RUN_START_WRONG)), ("corrupt", 10)),
    "wrong types in run ends": (lambda: with_lines(*map(json.dumps, RUN_END_WRONG)), ("corrupt", 5)),
    "missing fields": (
        lambda: with_lines('{"record": "test"}', '{"run_id": "r1"}', '{"record": "test", "run_id": "r1"}'),
        ("corrupt", 3),
    ),
    "negative, huge and non-finite durations": (out_of_range, ("corrupt", 12)),
    "an unknown outcome": (
        lambda: with_lines(record_line(outcome="banana"), record_line(nodeid="t.py::e", outcome="")),
        ("read", None),
    ),
    "timestamps at the edges": (
        lambda: with_lines(
            *(
                json.dumps({"record": "run_start", "run_id": f"edge{i}", "started_at": t})
                for i, t in enumerate(
                    [
                        "0000-01-01T00:00:00Z",
                        "9999-12-31T23:59:60Z",
                        "1970-01-01T00:00:00.5-23:59",
                    ]
                )
            ),
            record_line(run_id="edge0", finished_at="0000-01-01T00:00:00Z"),
            record_line(run_id="edge1", finished_at="9999-12-31T23:59:60." + "9" * 40 + "Z"),
        ),
        # A leap second on the last day the calendar has, and a fraction
        # beyond nanoseconds, are past its range: counted, not shifted.
        ("corrupt", 2),
    ),
    "an impossible date": (
        lambda: with_lines(
            json.dumps({"record": "run_start", "run_id": "s", "started_at": "2026-02-31T00:00:00Z"})
        ),
        ("problem", '"2026-02-31T00:00:00Z"'),
    ),
    "timestamps that are not": (
        lambda: with_lines(
            *(
                json.dumps({"record": "run_start", "run_id": "s", "started_at": t})
                for t in [
                    "2026-03-01",
                    "2026-03-01T00:00:00",
                    "\uff12\uff10\uff12\uff16-03-01T00:00:00Z",  # full-width digits
                    "2026-03-01T00:00:00+99",
                    "x" * 30,
                ]
            )
        ),
        ("corrupt", 5),
    ),
    "extreme metric values": (
        lambda: with_lines(
            *(
                record_line(
                    nodeid=f"t.py::m{i}", metrics=[{"name": "tps", "value": v, "higher_is_better": True}]
                )
                for i, v in enumerate([1e308, -1e308, 0.0, 5e-324, -0.0])
            )
        ),
        ("read", None),
    ),
    "empty and odd names": (
        lambda: with_lines(
            record_line(run_id="", nodeid="", stage="", owner=""), record_line(nodeid="t.py::[\n]")
        ),
        ("read", None),
    ),
    "only run ends": (
        lambda: b"\n".join(
            json.dumps(r).encode() for r in [{"record": "run_end", "run_id": "e", "exit_status": 1}]
        ),
        ("read", None),
    ),
    "the same run twice": (lambda: good_bytes() + good_bytes(), ("problem", "duplicate test lines")),
    "a gzip file cut short": (
        lambda: gz(good_bytes() * 50)[:-40],
        ("problem", "gzip stream is truncated or corrupt"),
    ),
    "gzip magic then garbage": (
        lambda: b"\x1f\x8b" + random.Random(3).randbytes(3_000),
        ("problem", "gzip stream is truncated or corrupt"),
    ),
    "gzip then trailing garbage": (lambda: gz(good_bytes()) + b"trailing", ("problem", "gzip stream")),
    "concatenated gzip members": (lambda: gz(good_bytes("r1")) + gz(good_bytes("r2")), ("read", None)),
    "gzip of nothing": (lambda: gz(b""), ("empty", None)),
    "gzip of garbage": (lambda: gz(random.Random(4).randbytes(10_000)), ("corrupt", None)),
    "a gzip bomb": (lambda: gz(b"\n" * (3 << 20)), ("refused", "decompresses to more than 2097152 bytes")),
    "a gzip bomb of one line": (lambda: gz(b"{" * (3 << 20)), ("refused", "--max-decompressed")),
}
#: Passed to every command: small enough that the bombs above trip it.
LIMIT = ("--max-decompressed", "2M")


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = _cli.main([*map(str, args)])
    out, err = capsys.readouterr()
    for text in (out, err):
        assert "Traceback" not in text and "panicked" not in text, text
    return code, out, err


@pytest.mark.parametrize("kind", KINDS)
def test_every_corrupt_file_is_read_counted_or_refused(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, (expect, detail) = KINDS[kind]
    name = "records.jsonl.gz" if "gzip" in kind else "records.jsonl"
    path = tmp_path / "in" / name
    path.parent.mkdir()
    path.write_bytes(make())
    common = (*LIMIT, "--rootdir", tmp_path)
    outputs: dict[str, str] = {}
    for fmt in REPORT_FORMATS:
        code, out, err = run(capsys, "report", path.parent, "--format", fmt, *common)
        if expect == "refused":
            assert code == 2, (fmt, err)
            assert str(path) in err and detail in err, err
            continue
        assert code == 0, (fmt, err)
        assert out.strip(), fmt
        outputs[fmt] = out
    runs = 0 if expect == "refused" else json.loads(outputs["json"])["runs"]["total"]
    for fmt in GATE_FORMATS:
        code, out, err = run(capsys, "gate", path, "--format", fmt, "--only", "flaky,performance", *common)
        if runs == 0:
            # Refused, or nothing to judge: exit 2, naming the file.
            assert code == 2, (fmt, err)
            assert str(path) in err, err
        else:
            assert code in (0, 1), (fmt, err)
            assert out.strip(), fmt
    if expect == "refused":
        return
    inputs = json.loads(outputs["json"])["inputs"]
    if expect == "corrupt":
        assert inputs["corrupt"] == detail if detail is not None else inputs["corrupt"] >= 1, inputs
        # Every skipped line is counted, and the first are quoted with file and line.
        assert inputs["problems"] and inputs["problems"][-1].startswith(f"{path}:"), inputs
        assert "corrupt lines skipped" in outputs["text"]
    elif expect == "problem":
        assert any(detail in p for p in inputs["problems"]), inputs
    else:
        assert inputs["corrupt"] == 0, inputs
        if expect == "empty":
            assert inputs["records"] == 0, inputs


def test_the_corpus_has_dozens_of_kinds() -> None:
    assert len(KINDS) >= 40


def test_a_folder_named_like_a_records_file_is_walked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "history" / "old.jsonl"
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_bytes(good_bytes("r1"))
    (tmp_path / "history" / "b.jsonl").write_bytes(good_bytes("r2"))
    code, out, err = run(capsys, "report", tmp_path / "history", "--format", "json", "--rootdir", tmp_path)
    assert code == 0, err
    assert json.loads(out)["inputs"]["files"] == 2


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX thing")
def test_a_fifo_in_a_walked_folder_is_skipped_and_named(tmp_path: Path) -> None:
    """Opening a FIFO waits for a writer for ever: the commands run in a
    subprocess with a time limit, so a hang fails the test, not the suite."""
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "a.jsonl").write_bytes(good_bytes())
    os.mkfifo(folder / "pipe.jsonl")
    (folder / "gone.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (folder / "loop").symlink_to(folder)
    for command in (["report", "--format", "json"], ["report", "--format", "html"], ["gate"]):
        result = subprocess.run(
            [sys.executable, "-m", "pytest_dynamo", *command, str(folder), "--rootdir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode in (0, 1), result.stderr
        assert "Traceback" not in result.stderr
        # Said on stderr whatever the format.
        assert f"{folder / 'pipe.jsonl'}: skipped, a FIFO is not a records file" in result.stderr
        if "json" in command:
            inputs = json.loads(result.stdout)["inputs"]
            assert inputs["files"] == 1
            assert inputs["problems"] == [
                f"{folder / 'gone.jsonl'}: skipped, a broken link is not a records file",
                f"{folder / 'pipe.jsonl'}: skipped, a FIFO is not a records file",
            ]
    # A FIFO named on the command line is refused with what it is.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_dynamo",
            "report",
            str(folder / "pipe.jsonl"),
            "--rootdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"{folder / 'pipe.jsonl'}: not a records file: it is a FIFO" in result.stderr
    if Path("/dev/zero").exists():
        result = subprocess.run(
            [sys.executable, "-m", "pytest_dynamo", "gate", "/dev/zero", "--rootdir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert "/dev/zero: not a records file: it is a device" in result.stderr


def test_the_decompressed_size_limit_is_an_option_with_a_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.jsonl.gz"
    path.write_bytes(gz(good_bytes() + b"\n" * (5 << 20)))
    # The default (1 GiB) reads it; a smaller limit refuses it, naming the file and the option.
    code, out, err = run(capsys, "report", path, "--format", "json", "--rootdir", tmp_path)
    assert code == 0, err
    assert json.loads(out)["runs"]["total"] == 1
    code, _, err = run(capsys, "gate", path, "--max-decompressed", "4MiB", "--rootdir", tmp_path)
    assert code == 2
    assert f"{path}: decompresses to more than 4194304 bytes (--max-decompressed)" in err
    for bad in ("0", "-1", "lots", "2X", "9" * 30, "2000T"):
        with pytest.raises(SystemExit) as exit_info:
            _cli.main(["report", str(path), "--max-decompressed", bad])
        assert exit_info.value.code == 2
        assert "--max-decompressed" in capsys.readouterr().err


def test_a_history_read_twice_counts_each_result_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two copies of one history: the latest run has its 27 tests, not 54."""
    b = Builder()
    for i in range(6):
        b.run({f"t/a.py::t{n}": "failed" if n == 0 and i % 2 else "passed" for n in range(27)})
    b.write(tmp_path / "one.jsonl")
    (tmp_path / "copy.jsonl").write_bytes((tmp_path / "one.jsonl").read_bytes())
    once = json.loads(run(capsys, "report", tmp_path / "one.jsonl", "--format", "json")[1])
    twice = json.loads(run(capsys, "report", tmp_path, "--format", "json")[1])
    assert sum(twice["runs"]["latest"]["counts"].values()) == 27
    assert twice["runs"]["latest"] == once["runs"]["latest"]
    assert twice["flakiness"] == once["flakiness"]
    assert twice["inputs"]["duplicates"] == 27 * 6
    assert "duplicate test lines" in run(capsys, "report", tmp_path)[1]


def test_durations_out_of_range_are_corrupt_not_totals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.jsonl"
    huge = [record_line(nodeid=f"t.py::h{i}", duration_s=1e308, stage="e2e") for i in range(3)]
    path.write_bytes(with_lines(record_line(duration_s=-2.0), *huge))
    data = json.loads(run(capsys, "report", path, "--format", "json")[1])
    assert data["inputs"]["corrupt"] == 4
    assert any("`duration_s` is -2" in p for p in data["inputs"]["problems"]), data["inputs"]
    text = run(capsys, "report", path)[1]
    assert "inf" not in text.lower()
