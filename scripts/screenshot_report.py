"""Render the HTML report of a realistic history and take a headless
Chromium screenshot of it, to look at the page as a person sees it.

    python scripts/screenshot_report.py [--out DIR] [--window-size 1400,2400]

Writes DIR/records.jsonl (a month of nightly runs: the built-in nightly
pipeline's 7 stages, owners, flaky, broken and slower tests), DIR/report.html
and DIR/report.png (default DIR: report-screenshot/). Chromium is looked up as
$CHROMIUM, then chromium, chromium-browser, google-chrome on PATH.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from history_builder import Builder, Result  # noqa: E402

#: The built-in nightly pipeline's stages, with their tests' usual duration (s).
STAGES = {
    "unit": 0.4,
    "integration_1": 6.0,
    "integration_2": 14.0,
    "e2e_1": 35.0,
    "e2e_2": 80.0,
    "benchmark": 240.0,
    "security": 3.0,
}
OWNERS = ["alec", "ryan", "ishan", "Mei Lin"]
RUNS = 30


def build_history(path: Path, seed: int = 7) -> Path:
    """A month of nightly runs, one a day on a new commit each: in every stage
    a dozen tests, one of them flaky; one test broken for the last 5 runs;
    e2e_2 slowing down in the last week."""
    rng = random.Random(seed)
    b = Builder(every=timedelta(days=1))
    for run in range(RUNS):
        results: dict[str, Result] = {}
        for s, (stage, base) in enumerate(STAGES.items()):
            for t in range(12):
                nodeid = f"tests/{stage}/test_{stage}_{t // 4}.py::test_case_{t}"
                if stage == "e2e_2" and t == 0:
                    nodeid = "tests/e2e_2/test_serve.py::test_disaggregated_serving[llama-70b-tp8-pp2]"
                outcome = "passed"
                if t == 3 and rng.random() < 0.25:
                    outcome = rng.choice(["failed", "flaky"])
                if stage == "integration_1" and t == 7 and run >= RUNS - 5:
                    outcome = "failed"
                slower = 1.6 if stage == "e2e_2" and run >= RUNS - 7 else 1.0
                duration = base * (0.5 + t / 12) * slower * rng.uniform(0.9, 1.1)
                extra = {"stage": stage, "owner": OWNERS[(s + t) % 4]}
                results[nodeid] = (outcome, round(duration, 3), extra)
        b.run(results, commit=f"{0xC0FFEE + run:040x}", pipeline="nightly")
    return b.write(path)


def render(records: Path, html: Path) -> None:
    from pytest_dynamo import _cli

    code = _cli.main(["report", str(records), "--pipeline", "nightly", "--html", str(html), "-o", os.devnull])
    if code != 0:
        raise SystemExit(f"pytest-dynamo report exited {code}")


def chromium() -> str | None:
    named = os.environ.get("CHROMIUM")
    if named:
        return shutil.which(named) or named
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html: Path, png: Path, size: str = "1400,2400", browser: str | None = None) -> Path:
    """``chromium --headless --screenshot``; raises with Chromium's output when no PNG comes out."""
    browser = browser or chromium()
    if browser is None:
        raise SystemExit("no Chromium found: install chromium or set $CHROMIUM")
    png.unlink(missing_ok=True)
    argv = [
        browser,
        "--headless",
        # Containers run as root, where Chromium's sandbox cannot start.
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--screenshot={png}",
        f"--window-size={size}",
        html.resolve().as_uri(),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    if not png.is_file():
        raise SystemExit(f"{browser} wrote no screenshot (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return png


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("report-screenshot"))
    parser.add_argument("--window-size", default="1400,2400", help="WIDTH,HEIGHT in pixels")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    records = build_history(args.out / "records.jsonl")
    html = args.out / "report.html"
    render(records, html)
    png = screenshot(html, args.out / "report.png", args.window_size)
    print(f"{html}\n{png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
