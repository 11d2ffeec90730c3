"""Collection with marker validation against the plugin turned off.

Target: at 50k tests the plugin adds under 5% to ``pytest --collect-only -q``.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# Run as a script: its folder is on sys.path.
from report import machine, write_section
from suite import generate

SIZES = [(10_000, 200), (20_000, 400), (50_000, 1000)]
REPEATS = 5


# As on a developer's machine: pytest caches the assertion-rewritten bytecode
# of the test files and of plugins (ours included) after the first run. With
# PYTHONDONTWRITEBYTECODE (set in some CI images) every run parses and
# rewrites both again: see docs/benchmarks.md for that case.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def collect(root: Path, *extra: str) -> float:
    """CPU seconds (user + system) of one collection: steadier than wall time
    on a shared machine, and it counts the core's worker threads too."""
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([*command, *extra], cwd=root, capture_output=True, text=True, env=ENV)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"collection failed in {root}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def instructions(root: Path, *extra: str) -> int:
    """Instructions of one collection under callgrind: unlike CPU time, not
    disturbed by other load on the machine (the figure docs/benchmarks.md
    compares). Slow: about 50 times a plain run."""
    collect(root, *extra)  # the bytecode cached, as in the timed runs
    with tempfile.TemporaryDirectory() as out:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--dump-instr=no",
            f"--callgrind-out-file={out}/callgrind.out",
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            *extra,
        ]
        done = subprocess.run(command, cwd=root, capture_output=True, text=True, env=ENV)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind failed in {root}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def count_instructions(tests: int, files: int) -> None:
    """``--instructions``: plugin off and on by instruction count, printed."""
    with tempfile.TemporaryDirectory() as tmp:
        root = generate(Path(tmp) / f"suite_{tests}", tests, files)
        off = instructions(root, "-p", "no:dynamo")
        on = instructions(root)
    print(f"| {tests:,} | {off / 1e9:.2f} G | {on / 1e9:.2f} G | {(on - off) / off * 100:+.1f}% |")


def main() -> None:
    if "--instructions" in sys.argv:
        count_instructions(20_000, 400)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for tests, files in SIZES:
            root = generate(Path(tmp) / f"suite_{tests}", tests, files)
            collect(root)  # warm the file cache and the bytecode
            off, on = [], []
            for _ in range(REPEATS):  # interleaved, so drift hits both alike
                off.append(collect(root, "-p", "no:dynamo"))
                on.append(collect(root))
            off_s, on_s = statistics.median(off), statistics.median(on)
            overhead = (on_s - off_s) / off_s * 100
            rows.append(f"| {tests:,} | {files:,} | {off_s:.2f} s | {on_s:.2f} s | {overhead:+.1f}% |")
            print(rows[-1], flush=True)
    body = "\n".join(
        [
            "`pytest --collect-only -q` on generated suites (module, class-free functions, "
            "parametrize; every test marked), the plugin on (validation strict) against "
            "`-p no:dynamo`; CPU seconds (user + system) of the pytest process, median of "
            f"{REPEATS} interleaved runs, bytecode cached as after a first run. Half the "
            "tests need GPUs this machine lacks and are skipped. Target: under 3%.",
            "",
            f"Machine: {machine()}.",
            "",
            "| tests | files | plugin off | plugin on | overhead |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    write_section("Collection and validation", body)


if __name__ == "__main__":
    main()
