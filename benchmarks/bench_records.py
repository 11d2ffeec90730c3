"""Benchmark of the records: a suite of trivial tests run with records on
(written to a file) against the same suite with the plugin off
(``-p no:dynamo``), and with the plugin on without records, to show where
the time goes. Target: records cost under 5% of the run.

    python benchmarks/bench_records.py [--tests 10000] [--repeat 9] [--write]

Build the extension in release mode first (``maturin develop --release``).
``--write`` puts the results under ``## Records`` in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
MARKERS = ("pre_merge", "gpu_0", "unit")
PER_FILE = 100
#: Bytecode caching on, as in an installed package: with PYTHONDONTWRITEBYTECODE
#: set, every run would compile (and assertion-rewrite) the plugin's modules
#: again, a cost the plugin-off case never pays.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def make_suite(root: Path, tests: int) -> None:
    lines = "\n".join(f"    {m}: benchmark marker" for m in MARKERS)
    # dynamo_validation configures the plugin: installed alone, it would not act.
    (root / "pytest.ini").write_text(f"[pytest]\ndynamo_validation = strict\nmarkers =\n{lines}\n")
    marks = ", ".join(f"pytest.mark.{m}" for m in MARKERS)
    for f in range(tests // PER_FILE):
        body = "".join(f"def test_{i}(): pass\n" for i in range(PER_FILE))
        (root / f"test_bench_{f:04d}.py").write_text(f"import pytest\npytestmark = [{marks}]\n{body}")


def run(root: Path, extra: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the pytest process)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode})")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_suite(root, args.tests)
        records = root / "records.jsonl"
        cases = {
            "plugin off (-p no:dynamo)": ["-p", "no:dynamo"],
            "plugin on, no records file": [],
            "plugin on, records file": [f"--dynamo-records={records}"],
        }
        run(root, ["-p", "no:dynamo"])  # warm the file cache
        run(root, [])  # and the plugin's bytecode cache
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        order = list(cases)
        shuffle = random.Random(5)
        for _ in range(args.repeat):
            # Each round runs every case once, in a new order: a load that
            # drifts hits all cases alike, and no case always runs first.
            shuffle.shuffle(order)
            for name in order:
                times[name].append(run(root, cases[name]))
        lines = records.read_text().count("\n")
        assert lines == args.repeat * (args.tests + 2), lines
    off = times["plugin off (-p no:dynamo)"]
    base_cpu = statistics.median(cpu for _, cpu in off)
    base_wall = statistics.median(wall for wall, _ in off)
    rows = []
    for name, ts in times.items():
        cpu = statistics.median(c for _, c in ts)
        wall = statistics.median(w for w, _ in ts)
        # Each round's case against the same round's plugin-off run.
        paired = statistics.median(c / o for (_, c), (_, o) in zip(ts, off))
        rows.append(
            f"| {name} | {cpu:.2f} | {100 * (cpu / base_cpu - 1):+.1f}% | {100 * (paired - 1):+.1f}% "
            f"| {wall:.2f} | {100 * (wall / base_wall - 1):+.1f}% |"
        )
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    report = "\n".join(
        [
            "## Records",
            "",
            f"{args.tests:,} trivial tests ({PER_FILE} per file, module-level markers), "
            f"`pytest -q -p no:cacheprovider`, {args.repeat} rounds, each running every case once "
            "in a shuffled order; medians of the CPU time (user + system) and the wall time of the "
            "whole pytest process, in seconds, and their overhead against the plugin off. "
            "*Paired* is the median of each round's case against the same round's plugin-off run: "
            "it cancels the drift of a shared machine's load, and is the figure to trust. "
            "Release build of the extension, bytecode caching on. Target: records under 5%.",
            "",
            "| case | CPU s | CPU overhead | paired CPU overhead | wall s | wall overhead |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"Machine: {os.cpu_count()} cores, shared with other work and loaded "
            f"(load average {load[0]:.1f} at the end), {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}, pytest {pytest.__version__}. "
            "Timings on a shared machine drift by several percent between runs; "
            "compare cases of one run, not runs.",
            "",
        ]
    )
    print(report)
    for name, ts in times.items():
        print(f"{name}: CPU {[round(c, 2) for _, c in ts]}, wall {[round(w, 2) for w, _ in ts]}")
    if args.write:
        write_section(report)
    return 0


NOTES = "<!-- records: notes below are kept when the table is rewritten -->"


def write_section(section: str) -> None:
    """Replace the table under ``## Records``, keeping the notes after NOTES."""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\n"
    start = text.find("## Records\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        notes = text.find(NOTES, start)
        following = text.find("\n## ", start + 1)
        end = notes if notes != -1 and (following == -1 or notes < following) else following
        rest = "" if end == -1 else text[end:].lstrip("\n")
        text = text[:start] + section + ("\n" + rest if rest else "")
    DOCS.parent.mkdir(exist_ok=True)
    DOCS.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
