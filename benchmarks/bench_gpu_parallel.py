"""Benchmark: GPU-aware packing (issue #16) on a simulated 8-GPU, 80 GiB machine.

Run from the repository root after a release build of the extension::

    maturin develop --release -q
    python benchmarks/bench_gpu_parallel.py            # print the results
    python benchmarks/bench_gpu_parallel.py --write    # and update docs/benchmarks.md

A synthetic suite shaped like a real one (200 tests: 70% ``gpu_1`` with VRAM
2-40 GiB, 20% ``gpu_0``, 8% ``gpu_2``, 2% ``gpu_4``; durations drawn from a
log-normal distribution, a long tail) is packed by ``GpuScheduler``:

* simulated: the scheduler on a simulated clock (``GpuScheduler.simulate``),
  its makespan against the sequential sum and the lower bound
  ``max(longest test, total GPU-memory-time / capacity)``;
* replayed: the same suite with each test a real ``sleep`` of its duration
  scaled to milliseconds, on one thread per worker slot, dispatched and
  released by a controller loop through ``next``/``release`` as the xdist
  scheduler does: the wall time, and the scheduler's own cost per test
  (time spent inside ``next`` and ``release``).
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import random
import re
import threading
import time
from pathlib import Path

from pytest_dynamo import _core

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
GPUS = 8
TOTAL_GIB = 80.0


def suite(n: int, seed: int) -> tuple[list[str], list[int], list[float | None], list[float]]:
    """Node ids, GPU counts, VRAM per GPU and durations (seconds)."""
    rng = random.Random(seed)
    # Exact shares (70% gpu_1, 20% gpu_0, 8% gpu_2, 2% gpu_4), in a shuffled order.
    counts = [1] * round(n * 0.70) + [0] * round(n * 0.20) + [2] * round(n * 0.08)
    counts += [4] * (n - len(counts))
    rng.shuffle(counts)
    ids: list[str] = []
    gpus: list[int] = []
    vram: list[float | None] = []
    durations: list[float] = []
    for i, count in enumerate(counts):
        ids.append(f"tests/test_m{i % 17}.py::test_{i:04d}")
        gpus.append(count)
        vram.append(round(rng.uniform(2, 40), 1) if count else None)
        # Log-normal: a median of about 20 s, a tail of a few minutes.
        durations.append(round(min(600.0, rng.lognormvariate(3.0, 1.0)), 2))
    return ids, gpus, vram, durations


def scheduler(
    ids: list[str], gpus: list[int], vram: list[float | None], durations: list[float], slots: tuple[int, int]
) -> _core.GpuScheduler:
    return _core.GpuScheduler(
        [str(g) for g in range(GPUS)],
        [TOTAL_GIB] * GPUS,
        slots[0],
        slots[1],
        ids,
        gpus,
        vram,
        list(durations),
    )


def replay(
    sched: _core.GpuScheduler, durations: list[float], scale: float, workers: int
) -> tuple[float, float, int]:
    """Run the suite with real sleeps; return (wall s, scheduler s, tests run)."""
    done: queue.SimpleQueue[int] = queue.SimpleQueue()

    def run(test: int) -> None:
        time.sleep(durations[test] * scale)
        done.put(test)

    in_scheduler = 0.0
    running = 0
    ran = 0
    start = time.perf_counter()
    while True:
        while True:
            t0 = time.perf_counter()
            a = sched.next()
            in_scheduler += time.perf_counter() - t0
            if a is None:
                break
            threading.Thread(target=run, args=(a.test,), daemon=True).start()
            running += 1
            ran += 1
        if running == 0:
            break
        finished = done.get()
        t0 = time.perf_counter()
        sched.release(finished)
        in_scheduler += time.perf_counter() - t0
        running -= 1
    assert running <= workers
    return time.perf_counter() - start, in_scheduler, ran


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--gpu-slots", type=int, default=32)
    parser.add_argument("--cpu-slots", type=int, default=8)
    parser.add_argument("--scale", type=float, default=0.001, help="seconds of sleep per second of test")
    parser.add_argument("--seeds", type=int, default=20, help="suites simulated for the spread of the gap")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    ids, gpus, vram, durations = suite(args.tests, args.seed)
    slots = (args.gpu_slots, args.cpu_slots)
    sched = scheduler(ids, gpus, vram, durations, slots)
    t0 = time.perf_counter()
    sim = sched.simulate()
    simulate_s = time.perf_counter() - t0
    gpu_sequential = sum(d for d, g in zip(durations, gpus) if g)
    replay_wall, in_scheduler, ran = replay(
        scheduler(ids, gpus, vram, durations, slots), durations, args.scale, sum(slots)
    )
    per_test_us = in_scheduler / ran * 1e6
    gap = sim.makespan / sim.lower_bound - 1
    counts = {n: gpus.count(n) for n in (0, 1, 2, 4)}
    gaps = []
    for seed in range(args.seeds):
        other = scheduler(*suite(args.tests, seed), slots).simulate()
        gaps.append(other.makespan / other.lower_bound - 1)
    gaps.sort()
    within = sum(g <= 0.15 for g in gaps)
    lines = [
        f"suite: {args.tests} tests (gpu_0 {counts[0]}, gpu_1 {counts[1]}, "
        f"gpu_2 {counts[2]}, gpu_4 {counts[4]}), "
        f"seed {args.seed}; machine: {GPUS} GPUs x {TOTAL_GIB:g} GiB (budget {sched.budgets_gib[0]:g} GiB), "
        f"{args.gpu_slots} GPU slots + {args.cpu_slots} CPU slots",
        f"sequential sum: {sim.sequential:.0f} s (GPU tests {gpu_sequential:.0f} s)",
        f"makespan (simulated): {sim.makespan:.0f} s = "
        f"{sim.sequential / sim.makespan:.1f}x faster than sequential",
        f"lower bound: {sim.lower_bound:.0f} s; makespan is {gap:+.1%} above it (target <= +15%)",
        f"over {args.seeds} suites (seeds 0-{args.seeds - 1}): the gap to the lower bound is median "
        f"{gaps[len(gaps) // 2]:+.1%}, worst {gaps[-1]:+.1%}; {within} of {args.seeds} within 15%",
        f"simulation of the whole run: {simulate_s * 1e3:.2f} ms "
        f"({simulate_s / args.tests * 1e6:.1f} us per test)",
        f"replay with real sleeps (x{args.scale:g}): wall {replay_wall:.3f} s vs simulated "
        f"{sim.makespan * args.scale:.3f} s; scheduler cost {per_test_us:.1f} us per test (target < 1000 us)",
        f"peak reserved per GPU (GiB): {', '.join(f'{p:.0f}' for p in sim.peak_gib)}",
        f"busy per GPU (% of makespan): {', '.join(f'{b / sim.makespan:.0%}' for b in sim.busy)}",
    ]
    print("\n".join(lines))
    if args.write:
        machine = f"{os.cpu_count()} cores ({platform.machine()}, CPython {platform.python_version()})"
        section = (
            "## GPU-parallel packing\n\n"
            + (
                "`python benchmarks/bench_gpu_parallel.py --write` (release build): issue #16's "
                "synthetic suite packed by the Rust scheduler on a simulated clock, then replayed with "
                "real sleeps (test seconds scaled to milliseconds) through the scheduler's "
                "`next`/`release` calls, one thread per running "
                f"test. Machine: {machine}, shared with other builds.\n\n"
            )
            + "\n".join(f"- {line}" for line in lines)
            + "\n\n"
        )
        cost_met = "met" if per_test_us < 1000 else "NOT met"
        section += (
            f"Targets: the scheduler's cost under 1 ms per test is **{cost_met}** "
            f"({per_test_us:.0f} us through "
            f"the Python binding). Within 15% of the lower bound: **{within} of {args.seeds} suites** "
            f"(this one: {gap:+.1%}). The bound is not always reachable: it lets a test's memory-time "
            "spread over every GPU, and ignores the run's end, when fewer tests remain than GPUs can hold; "
            "the gap is that tail (the GPUs' busy shares above).\n\n"
        )
        text = DOCS.read_text()
        pattern = re.compile(r"^## GPU-parallel packing\n.*?(?=^## |\Z)", re.S | re.M)
        text = (
            pattern.sub(lambda _: section, text)
            if pattern.search(text)
            else text.rstrip("\n") + "\n\n" + section
        )
        DOCS.write_text(text.rstrip("\n") + "\n")
        print(f"wrote the GPU-parallel section of {DOCS}")


if __name__ == "__main__":
    main()
