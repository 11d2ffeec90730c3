"""Two builds of the plugin, interleaved, on the lint and on reading a
history: the lint's Rust call over ``bench_lint.py``'s suite, and
``History.load`` with the report over ``bench_report.py``'s records. Each
round runs every build once per workload in a shuffled order, so a shared
machine's drifting load hits both alike; each call runs in a fresh process
with the build first on ``PYTHONPATH`` and times itself (wall, and CPU of all
its threads). Prints each build's medians and the after/before ratio of the
paired rounds.

    python benchmarks/ab_lint.py BEFORE_DIR AFTER_DIR [--repeat 9]

Named outside ``bench_*.py``: ``run.py`` runs those without arguments.

Each folder holds a whole ``pytest_dynamo`` package (Python files and a
release ``_core`` library), as ``ab_records.py`` takes them.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

# Run as a script: its folder is on sys.path.
from bench_lint import FILES, TESTS_PER_FILE  # noqa: E402
from bench_report import generate as generate_records  # noqa: E402
from lint_suite import generate as generate_suite  # noqa: E402

#: One timed call in a fresh process: `lint ROOT` or `report RECORDS`.
CHILD = """
import json, sys, time
from pytest_dynamo import _core
kind, path = sys.argv[1], sys.argv[2]
if kind == "report":
    engine = _core.Engine.load(str(__import__("pathlib").Path(path).parent))
wall, cpu = time.perf_counter(), time.process_time()
if kind == "lint":
    size = _core.lint([], invocation_dir=path).tests
else:
    history = _core.History.load([path])
    size = len(history.report(engine, window=20, min_runs=5).json())
print(json.dumps([time.perf_counter() - wall, time.process_time() - cpu, size]))
"""


def once(build: Path, kind: str, path: Path) -> tuple[float, float, int]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(path)],
        env={"PYTHONPATH": str(build), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} with {build} failed:\n{done.stderr[-2000:]}")
    wall, cpu, size = json.loads(done.stdout)
    return wall, cpu, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builds", nargs=2, type=Path, metavar="DIR")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--runs", type=int, default=300, help="runs in the records file")
    parser.add_argument("--tests", type=int, default=1000, help="tests per run")
    args = parser.parse_args()
    builds = [b.resolve() for b in args.builds]
    started = time.perf_counter()
    times: dict[tuple[str, Path], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "suite"
        suite.mkdir()
        generate_suite(suite, files=FILES, tests_per_file=TESTS_PER_FILE, seed=7, valid_share=0.95)
        records = Path(tmp) / "history" / "records.jsonl"
        records.parent.mkdir()
        generate_records(records, args.runs, args.tests)
        workloads = {"lint": suite, "report": records}
        for kind, path in workloads.items():  # caches, and both builds give the same answer
            sizes = {once(b, kind, path)[2] for b in builds}
            assert len(sizes) == 1, (kind, sizes)
        order = list(builds)
        shuffle = random.Random(5)
        for _ in range(args.repeat):
            for kind, path in workloads.items():
                shuffle.shuffle(order)
                for build in order:
                    wall, cpu, _ = once(build, kind, path)
                    times.setdefault((kind, build), []).append((wall, cpu))
    before, after = builds
    for kind in workloads:
        for build in builds:
            runs = times[kind, build]
            print(
                f"{kind} {build}: median wall {statistics.median(r[0] for r in runs):.3f} s, "
                f"CPU {statistics.median(r[1] for r in runs):.3f} s"
            )
        paired = [a[1] / b[1] for a, b in zip(times[kind, after], times[kind, before])]
        walls = [a[0] / b[0] for a, b in zip(times[kind, after], times[kind, before])]
        print(
            f"{kind}: after/before, paired by round: CPU {statistics.median(paired):.3f} "
            f"(rounds: {', '.join(f'{p:.2f}' for p in paired)}), wall {statistics.median(walls):.3f}"
        )
    print(f"{args.repeat} rounds, {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
