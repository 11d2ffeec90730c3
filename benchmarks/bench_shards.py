"""Benchmark: the shard partition (``--dynamo-shard``) over a 20,000-test
durations file with a long-tailed distribution, for N = 2..64 shards.

For each N it reports the slowest shard over the ideal (``total / N``, or the
longest test when that is larger; target: within 5%) and the time to compute
the partition, reading the durations file included (best of ``--repeat``;
target: under 50 ms). Run from the repository root after a release build::

    maturin develop --release -q
    python benchmarks/bench_shards.py              # and update docs/benchmarks.md
    python benchmarks/bench_shards.py --dry-run    # print only
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pytest_dynamo._core import partition_shards
from report import machine, write_section

COUNTS = [2, 4, 8, 16, 32, 64]


def suite(tests: int, seed: int) -> tuple[list[str], dict[str, float]]:
    """Node ids in files of about 40 tests, classes of about 8, some
    parametrized; durations log-normal (most under a second, a few minutes),
    and one test in twenty without a recorded duration."""
    rng = random.Random(seed)
    ids = []
    for i in range(tests):
        module, cls = divmod(i, 40)
        ids.append(f"tests/area{module % 25}/test_m{module}.py::TestC{cls // 8}::test_{i}[p{i % 3}]")
    durations = {nodeid: round(rng.lognormvariate(-1.0, 1.6), 6) for nodeid in ids if rng.random() >= 0.05}
    return ids, durations


def measure(ids: list[str], path: str, durations: dict[str, float], repeat: int) -> list[tuple[str, ...]]:
    known = sorted(durations.values())
    median = (
        known[len(known) // 2]
        if len(known) % 2
        else (known[len(known) // 2 - 1] + known[len(known) // 2]) / 2
    )
    longest = max(durations.get(nodeid, median) for nodeid in ids)
    files: dict[str, float] = {}
    for nodeid in ids:
        file = nodeid.split("::")[0]
        files[file] = files.get(file, 0.0) + durations.get(nodeid, median)
    longest_file = max(files.values())
    rows = []
    for count in COUNTS:
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            plan = partition_shards(ids, count, "test", path)
            best = min(best, time.perf_counter() - start)
        total = sum(plan.loads)
        ideal = max(total / count, longest)
        slowest = max(plan.loads)
        module = partition_shards(ids, count, "module", path)
        module_ideal = max(sum(module.loads) / count, longest_file)
        rows.append(
            (
                str(count),
                f"{ideal:,.0f} s",
                f"{slowest:,.0f} s",
                f"{(slowest / ideal - 1) * 100:+.2f}%",
                f"{(max(module.loads) / module_ideal - 1) * 100:+.2f}%",
                f"{best * 1000:.1f} ms",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--dry-run", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    ids, durations = suite(args.tests, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ".test_durations"
        path.write_text(json.dumps(durations, indent=4, sort_keys=True))
        rows = measure(ids, str(path), durations, args.repeat)
    total = sum(durations.values())
    head = (
        "| shards | ideal (total / N or longest) | slowest shard | over ideal "
        '| over ideal, `group = "module"` | partition time |\n|---|---|---|---|---|---|'
    )
    table = "\n".join([head, *("| " + " | ".join(row) + " |" for row in rows)])
    body = (
        f"`_core.partition_shards` (what `--dynamo-shard` calls) over {args.tests:,} tests in files of 40 "
        f"and classes of 8; log-normal durations (mu = -1, sigma = 1.6: median 0.37 s, longest "
        f"{max(durations.values()):,.0f} s, total {total:,.0f} s), 5% of tests without a recorded duration "
        "(counted as the median). Time: best of "
        f"{args.repeat}, reading the durations file included. Targets: slowest shard within 5% of the "
        "ideal, under 50 ms.\n\n"
        f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} while it ran.\n\n{table}\n"
    )
    print(body)
    if not args.dry_run:
        write_section("Shards", body)


if __name__ == "__main__":
    main()
