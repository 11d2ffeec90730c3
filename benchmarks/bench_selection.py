"""Benchmark: selection by a pipeline stage against pytest's own ``-m`` on the
same expression, over a generated suite of 50,000 items.

Run from the repository root after a release build of the extension::

    maturin develop --release -q
    python benchmarks/bench_selection.py            # print the results
    python benchmarks/bench_selection.py --write    # and update docs/benchmarks.md

One pytest process collects the suite once; then, on copies of the collected
items, it times (best of ``--repeat``):

* pytest's ``-m``: ``_pytest.mark.deselect_by_mark``, the function ``-m`` runs,
  imported from pytest's private module on purpose (this is a measurement);
* pytest-dynamo: ``_selection.select`` for a stage with the same expression
  (the whole Python side: batch positions in, Rust over the batch,
  ``items[:]`` and ``pytest_deselected`` out), for the built-in nightly
  pipeline (seven stages, the lifecycle rule and the gating expression), and
  for the stage after ``-k`` left every other item (items then map to batch
  positions through a dictionary);
* gathering the markers and ``Engine.ingest``, which the foundation pays once
  per run for validation whether or not a pipeline is chosen.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from _pytest.mark import deselect_by_mark
from pytest_dynamo import _collect, _core, _selection, _state

EXPRESSION = "(integration or e2e) and (gpu_0 or gpu_1) and not sglang"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"

LIFECYCLES = ["pre_merge", "post_merge", "nightly", "weekly", "release"]
HARDWARE = ["gpu_0", "gpu_1", "gpu_2", "gpu_4"]
TYPES = ["unit", "integration", "e2e", "benchmark", "stress", "security", "integration", "e2e"]
FRAMEWORKS = ["", "vllm", "sglang", "trtllm", ""]
COMPONENTS = ["kvbm", "router", "planner", ""]

PYPROJECT = f"""
[tool.pytest.ini_options]
addopts = ["-p", "no:cacheprovider"]

[tool.pytest-dynamo.pipelines.bench]
lifecycle = "release"
stages = [{{ name = "s", expr = "{EXPRESSION}", machine = "cpu" }}]
"""


def generate(root: Path, items: int) -> None:
    """Files of 10 test functions with 100 parameters each; markers on the
    module, the functions and some parameters, as real suites place them."""
    per_file = 1000
    for f in range(items // per_file):
        lines = [
            "import pytest",
            "",
            f"pytestmark = [pytest.mark.{LIFECYCLES[f % len(LIFECYCLES)]}]",
            "",
            "PARAMS = [",
            "    pytest.param(i, marks=[pytest.mark.slow]) if i % 10 == 0 else",
            "    pytest.param(i, marks=[pytest.mark.vllm]) if i % 25 == 1 else i",
            "    for i in range(100)",
            "]",
            "",
        ]
        for t in range(10):
            n = f * 10 + t
            marks = [HARDWARE[n % 4], TYPES[n % 8], FRAMEWORKS[n % 5], COMPONENTS[n % 4]]
            lines += [f"@pytest.mark.{m}" for m in marks if m]
            lines += ['@pytest.mark.parametrize("x", PARAMS)', f"def test_{t}(x): pass", ""]
        (root / f"test_gen_{f:03d}.py").write_text("\n".join(lines))
    (root / "pyproject.toml").write_text(PYPROJECT)


def best(times: list[float]) -> float:
    return min(times)


class Bench:
    """Times collection, then each selection on copies of the collected items."""

    def __init__(self, repeat: int) -> None:
        self.repeat = repeat
        self.results: dict[str, Any] = {}

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> Generator[None, Any, Any]:
        start = time.perf_counter()
        result = yield
        self.results["collection"] = time.perf_counter() - start
        return result

    def _time(self, run: Any) -> tuple[float, int]:
        times, kept = [], 0
        for _ in range(self.repeat):
            start = time.perf_counter()
            kept = run()
            times.append(time.perf_counter() - start)
        return best(times), kept

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        config = session.config
        items = list(session.items)
        self.results["items"] = len(items)
        plugin = config.pluginmanager.get_plugin(_selection.SELECTION)
        assert isinstance(plugin, _selection.SelectionPlugin)

        def ours(pipeline: str, stage: str | None, step: int = 1) -> int:
            plugin.pipeline, plugin.stage = pipeline, stage
            work = items[::step]
            plugin.select(work, items)
            return len(work)

        def pytest_m() -> int:
            config.option.markexpr = EXPRESSION
            work = list(items)
            deselect_by_mark(work, config)
            return len(work)

        def ingest() -> int:
            engine = _state.engine(config)
            batch = engine.ingest_items(items, _collect.registered_markers(config))
            return len(batch)

        self.results["pytest_m"], kept_m = self._time(pytest_m)
        self.results["stage"], kept_stage = self._time(lambda: ours("bench", "s"))
        self.results["nightly"], kept_nightly = self._time(lambda: ours("nightly", None))
        self.results["half"], kept_half = self._time(lambda: ours("bench", "s", 2))
        self.results["ingest"], _ = self._time(ingest)
        assert kept_m == kept_stage, f"-m kept {kept_m}, the stage kept {kept_stage}"
        self.results["kept_stage"] = kept_stage
        self.results["kept_nightly"] = kept_nightly
        self.results["kept_half"] = kept_half
        return True  # run no test


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    # A debug build carries debug info: tens of MB against a few for release.
    size = Path(_core.__file__).stat().st_size
    build = "release" if size < 20_000_000 else "debug (not representative)"
    return (
        f"{os.cpu_count()} cores ({cpu}), shared with other work and loaded "
        f"(load average {load} at the end of the run); Python {platform.python_version()}, "
        f"pytest {pytest.__version__}, {build} build of the extension"
    )


def report(r: dict[str, Any], repeat: int) -> str:
    n = r["items"]
    per = {k: r[k] / n * 1e6 for k in ("pytest_m", "stage", "nightly", "ingest")}
    per["half"] = r["half"] / (n // 2) * 1e6
    speedup = r["pytest_m"] / r["stage"]
    share = r["stage"] / r["collection"] * 100
    rows = [
        ("pytest `-m` (deselect_by_mark)", r["pytest_m"], per["pytest_m"], r["kept_stage"]),
        ("pytest-dynamo stage, same expression", r["stage"], per["stage"], r["kept_stage"]),
        ("pytest-dynamo `nightly`, all 7 stages + gating", r["nightly"], per["nightly"], r["kept_nightly"]),
        ("pytest-dynamo stage, after -k kept every other item", r["half"], per["half"], r["kept_half"]),
        ("markers gathered + `Engine.ingest` (paid for validation)", r["ingest"], per["ingest"], n),
    ]
    lines = [
        "## Selection",
        "",
        f"`benchmarks/bench_selection.py`: {n:,} generated items (50 files x 10 functions x 100",
        "parameters; markers on modules, functions and parameters), expression",
        f"`{EXPRESSION}`. Best of {repeat} on copies of the same collected items.",
        "",
        f"Machine: {machine()}. On a machine this loaded the milliseconds move from run to run",
        "(by half or more); the ratios move much less.",
        "",
        "| what | total | per item | items kept |",
        "|---|---:|---:|---:|",
    ]
    for what, total, per_item, kept in rows:
        lines.append(f"| {what} | {total * 1000:.1f} ms | {per_item:.2f} us | {kept:,} |")
    lines += [
        "",
        f"- Per item, the stage selects **{speedup:.0f}x** faster than pytest's `-m` on the same",
        f"  expression (target: at least 10x). Both keep the same {r['kept_stage']:,} items.",
        f"- Collection of the {n:,} items took {r['collection']:.1f} s; stage selection adds",
        f"  **{share:.2f}%** to it (target: under 2%).",
        "- Gathering the markers and `Engine.ingest` is the foundation's once-per-run cost: validation",
        "  needs the batch whether or not a pipeline is chosen, so it is not counted as selection.",
        "  Here most of it is converting each item's `parametrize` arguments (a list of 100",
        "  `pytest.param` objects, kept as their `repr`); selection never reads them.",
        "",
    ]
    return "\n".join(lines)


def write(section: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\n"
    pattern = re.compile(r"^## Selection\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dynamo-bench-") as tmp:
        root = Path(tmp)
        generate(root, args.items)
        bench = Bench(args.repeat)
        cwd = os.getcwd()
        os.chdir(root)
        try:
            code = pytest.main(["-p", "no:terminal", "-W", "ignore", str(root)], plugins=[bench])
        finally:
            os.chdir(cwd)
    if code not in (0, 5):
        print(f"pytest exited {code}")
        return int(code)
    section = report(bench.results, args.repeat)
    print(section)
    if args.write:
        write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
