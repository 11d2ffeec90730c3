"""Two builds of the plugin, interleaved: the records benchmark's suite run
with the plugin off and with a records file, round after round, each round
running both builds in a shuffled order, so a shared machine's drifting load
hits both alike. Prints each build's paired CPU overhead of records (median
over the rounds of the records run against the same round's plugin-off run).

    python benchmarks/ab_records.py BEFORE_DIR AFTER_DIR [--tests 10000] [--repeat 11]

Each folder holds a whole ``pytest_dynamo`` package (Python files and a
release ``_core`` library), e.g. ``cp -r python/pytest_dynamo DIR/`` after a
release build of each revision; it goes first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_records import ENV, make_suite


def run(root: Path, extra: list[str], build: Path) -> float:
    """CPU seconds (user + system) of one pytest process using `build`."""
    env = {**ENV, "PYTHONPATH": str(build)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} with {build} failed")
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builds", nargs=2, type=Path, metavar="DIR")
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=11)
    args = parser.parse_args()
    builds = [b.resolve() for b in args.builds]
    paired: dict[Path, list[float]] = {b: [] for b in builds}
    cpu: dict[Path, list[float]] = {b: [] for b in builds}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_suite(root, args.tests)
        on = [f"--dynamo-records={root / 'records.jsonl'}"]
        off = ["-p", "no:dynamo"]
        for build in builds:  # file and bytecode caches
            run(root, off, build)
            run(root, on, build)
        order = list(builds)
        shuffle = random.Random(5)
        for _ in range(args.repeat):
            shuffle.shuffle(order)
            for build in order:
                base = run(root, off, build)
                with_records = run(root, on, build)
                paired[build].append(with_records / base - 1)
                cpu[build].append(with_records)
    for build in builds:
        print(
            f"{build}: paired CPU overhead of records {100 * statistics.median(paired[build]):+.1f}% "
            f"(rounds: {', '.join(f'{100 * p:+.1f}' for p in paired[build])}); "
            f"median CPU with records {statistics.median(cpu[build]):.2f} s"
        )
    print(f"{args.tests} tests, {args.repeat} rounds, {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
