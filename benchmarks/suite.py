"""Generate a realistic marked test suite of a given size, for benchmarks."""

from __future__ import annotations

import argparse
from pathlib import Path

LIFECYCLES = ["pre_merge", "post_merge", "nightly", "weekly"]
HARDWARE = ["gpu_0", "gpu_0", "gpu_1", "gpu_2"]
TYPES = ["unit", "integration", "e2e"]
FRAMEWORKS = ["", "vllm", "sglang", "trtllm"]


def module_text(index: int, tests: int) -> str:
    """One module: module-level lifecycle, a class, parametrized functions."""
    lines = [
        "import pytest",
        "",
        f"pytestmark = pytest.mark.{LIFECYCLES[index % len(LIFECYCLES)]}",
        "",
    ]
    written = 0
    n = 0
    while written < tests:
        hardware = HARDWARE[n % len(HARDWARE)]
        kind = TYPES[n % len(TYPES)]
        framework = FRAMEWORKS[n % len(FRAMEWORKS)]
        marks = [f"@pytest.mark.{hardware}", f"@pytest.mark.{kind}"]
        if framework:
            marks.append(f"@pytest.mark.{framework}")
        params = min(4, tests - written)
        if params > 1 and n % 2:
            marks.append(f"@pytest.mark.parametrize('x', range({params}))")
            lines += [*marks, f"def test_f{n}(x):", "    pass", ""]
            written += params
        else:
            lines += [*marks, f"def test_f{n}():", "    pass", ""]
            written += 1
        n += 1
    return "\n".join(lines)


def generate(root: Path, tests: int, files: int) -> Path:
    """Write ``tests`` tests across ``files`` modules under ``root``; return it."""
    root.mkdir(parents=True, exist_ok=True)
    # Registered, as a project without the plugin registers them (the
    # strategy's own example): unregistered marks would make pytest warn on
    # every use and slow the plugin-off baseline down.
    names = sorted({*LIFECYCLES, *HARDWARE, *TYPES, *filter(None, FRAMEWORKS)})
    # dynamo_validation configures the plugin: installed alone, it would not act.
    (root / "pytest.ini").write_text(
        "[pytest]\ndynamo_validation = strict\nmarkers =\n" + "".join(f"    {n}\n" for n in names)
    )
    per_file, extra = divmod(tests, files)
    for i in range(files):
        count = per_file + (1 if i < extra else 0)
        (root / f"test_gen_{i:04d}.py").write_text(module_text(i, count))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--tests", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()
    generate(args.root, args.tests, args.files)


if __name__ == "__main__":
    main()
