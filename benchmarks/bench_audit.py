"""What the lowest-hardware audit costs while a gpu_N test runs.

Runs the audit's Rust sampler against the fake NVML of the test suite (built
here with the system C compiler), as a machine with 8 GPUs and 16 compute
processes (two children of the test on each GPU), and
measures:

- the cost of one sample (NVML calls for every GPU plus the /proc walk that
  attributes each process), from the process CPU time the sampler thread uses;
- the slowdown of a CPU-bound test while it is sampled, at several intervals;
- the cost of starting and stopping the audit around one test.

Writes the results under ``## GPU audit`` in docs/benchmarks.md. Build the
extension in release mode first (``maturin develop --release``).

    python benchmarks/bench_audit.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_dynamo._core import Audit, Engine, probe_gpus

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "fake_nvml" / "fake_nvml.c"
DOCS = ROOT / "docs" / "benchmarks.md"
HEADING = "## GPU audit"
GPUS = 8
NODEID = "bench.py::test_gpu"


def build_fake(out: Path) -> Path:
    cc = os.environ.get("CC") or shutil.which("cc")
    if cc is None:
        sys.exit("bench_audit needs a C compiler (cc) to build the fake NVML")
    lib = out / "libnvidia-ml.so.1"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(lib), str(SOURCE)], check=True)
    return lib


def machine(config: Path, children: list[int]) -> None:
    lines = ["init|0", "driver|550.54.15"]
    lines += [f"gpu|NVIDIA H100 80GB HBM3|GPU-{i:04x}|81559|80000|0" for i in range(GPUS)]
    for i in range(GPUS):
        lines.append(f"proc|{i}|{children[2 * i]}|{1000 + i}")
        lines.append(f"proc|{i}|{children[2 * i + 1]}|500")
    config.write_text("".join(line + "\n" for line in lines))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fixed_work(loops: int) -> float:
    """A CPU-bound test body: a fixed amount of work; its wall time."""
    start = time.perf_counter()
    x = 0
    for _ in range(loops):
        x += sum(range(1000))
    return time.perf_counter() - start


def make_audit(lib: Path, interval: float) -> Audit:
    engine = Engine.load(str(ROOT / "benchmarks"))
    rules = engine.gpu_rules()
    batch = engine.ingest([(NODEID, 1, [("gpu_1", (), {})])], [])
    inventory = probe_gpus(str(lib), None, None, None)
    assert inventory.visible == GPUS, inventory.to_json()
    hardware = batch.hardware(rules, inventory, [])
    audit = Audit(rules, str(lib), interval, os.getpid())
    audit.attach(hardware)
    return audit


def per_sample(lib: Path, seconds: float) -> tuple[float, int]:
    """CPU microseconds per sample, with the main thread asleep."""
    audit = make_audit(lib, 0.001)
    audit.start(NODEID)
    audit.stop(NODEID, True)  # NVML opened, thread warm
    before_cpu, before_samples = cpu_seconds(), audit.samples
    audit.start(NODEID)
    time.sleep(seconds)
    figures = audit.stop(NODEID, True)
    assert figures is not None and figures[0] == GPUS, figures
    cpu = cpu_seconds() - before_cpu
    samples = audit.samples - before_samples
    audit.close()
    return cpu / samples * 1e6, samples


def slowdowns(lib: Path, intervals: list[float], loops: int, repeats: int) -> dict[float | None, list[float]]:
    """Wall times of a fixed CPU-bound test body, not sampled (None) and sampled
    at each interval; the conditions take turns so the machine's drift hits all."""
    audits: dict[float | None, Audit | None] = {None: None}
    audits.update({i: make_audit(lib, i) for i in intervals})
    times: dict[float | None, list[float]] = {k: [] for k in audits}
    for _ in range(repeats):
        for interval, audit in audits.items():
            if audit is not None:
                audit.start(NODEID)
            times[interval].append(fixed_work(loops))
            if audit is not None:
                audit.stop(NODEID, True)
    for audit in audits.values():
        if audit is not None:
            audit.close()
    return times


def start_stop(lib: Path, rounds: int) -> float:
    audit = make_audit(lib, 0.1)
    audit.start(NODEID)
    audit.stop(NODEID, True)
    start = time.perf_counter()
    for _ in range(rounds):
        audit.start(NODEID)
        audit.stop(NODEID, True)
    elapsed = time.perf_counter() - start
    audit.close()
    return elapsed / rounds * 1e6


def write(section: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    start = text.find(HEADING + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    DOCS.parent.mkdir(exist_ok=True)
    DOCS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds")
    args = parser.parse_args()
    repeats = 5 if args.quick else 21
    with tempfile.TemporaryDirectory() as tmp:
        lib = build_fake(Path(tmp))
        config = Path(tmp) / "machine.txt"
        os.environ["FAKE_NVML_CONFIG"] = str(config)
        sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
        children = [subprocess.Popen(sleeper).pid for _ in range(2 * GPUS)]
        try:
            machine(config, children)
            sample_us, samples = per_sample(lib, 1.0 if args.quick else 3.0)
            loops = 1
            while fixed_work(loops) < 0.25:
                loops *= 2
            times = slowdowns(lib, [0.1, 0.01, 0.001], loops, repeats)
            latency_us = start_stop(lib, 100 if args.quick else 300)
        finally:
            for pid in children:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
    load = os.getloadavg()
    lines = [
        HEADING,
        "",
        "`python benchmarks/bench_audit.py` (release build). The sampler runs against the "
        "test suite's fake NVML with 8 GPUs and 16 compute processes (two children of the "
        "test on each GPU), so each sample makes 8 process-list calls and walks /proc for "
        "16 pids. The fake re-reads its text file on every NVML call (16 times a sample), "
        "which a real driver does not, so the figures are the plugin's cost plus the fake's; "
        "a real driver's own time per call was not measured (no GPU was at hand).",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}), shared with other jobs and loaded "
        f"(load average {load[0]:.1f} at the end): expect noise of several percent.",
        "",
        f"- One sample: {sample_us:.0f} µs of CPU ({samples} samples at a 1 ms interval).",
        f"- Share of one core the sampler takes: {sample_us / 1000:.1f}% at 0.1 s, "
        f"{sample_us / 100:.1f}% at 0.01 s, {sample_us / 10:.0f}% at 0.001 s.",
        f"- Starting and stopping the audit around one test (closing sample included): {latency_us:.0f} µs.",
        "",
        f"A CPU-bound test body, not sampled and sampled, the conditions taking turns "
        f"({repeats} rounds). On this shared machine single runs vary by tens of percent, "
        "so this table resolves only large effects; the CPU time per sample above is the "
        "figure to trust:",
        "",
        "| interval | fastest | median | slowdown (medians) |",
        "|---|---|---|---|",
    ]
    base = statistics.median(times[None])
    for interval, runs in times.items():
        name = "not sampled" if interval is None else f"{interval:g} s"
        change = "-" if interval is None else f"{(statistics.median(runs) / base - 1) * 100:+.1f}%"
        lines.append(
            f"| {name} | {min(runs) * 1000:.1f} ms | {statistics.median(runs) * 1000:.1f} ms | {change} |"
        )
    lines.append("")
    section = "\n".join(lines)
    write(section)
    print(section)


if __name__ == "__main__":
    main()
