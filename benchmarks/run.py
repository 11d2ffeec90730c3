"""Run every benchmark (``nox -s bench``); each rewrites its docs/benchmarks.md section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
selected = sys.argv[1:]
for script in sorted(here.glob("bench_*.py")):
    if selected and script.stem not in selected:
        continue
    print(f"== {script.stem}", flush=True)
    subprocess.run([sys.executable, str(script)], check=True)
