"""The input of the scanner comparison: benchmarks/bench_report.py's records."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_report import generate

runs = int(sys.argv[2]) if len(sys.argv) > 2 else 200
print(generate(Path(sys.argv[1]), runs, 1000), "lines")
