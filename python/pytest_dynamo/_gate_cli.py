"""``pytest-dynamo gate``: the quality gates over the run's records and
coverage, with thresholds from ``[tool.pytest-dynamo.gates]``. Exit status
0 when every gate passes or is skipped, 1 when one fails, 2 for bad input."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_dynamo import _core
from pytest_dynamo._report_cli import (
    UsageError,
    add_config_options,
    add_records_options,
    load_engine,
    load_history,
    write,
)

FORMATS = ("text", "json", "markdown")
GATES = ("flaky", "performance", "coverage", "budget")
#: What runs without --only: the budget gate runs when asked for (--budget).
DEFAULT_GATES = ("flaky", "performance", "coverage")


def gate_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in GATES:
            raise argparse.ArgumentTypeError(f"unknown gate '{name}' (choose from {', '.join(GATES)})")
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pytest-dynamo gate",
        description="Quality gates: flaky rate, performance regression, coverage drop, time budgets "
        f"({_core.DOCS_URL}gates.md).",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="Records files (.jsonl, .jsonl.gz) or folders.")
    p.add_argument("--run", dest="run_id", help="The run_id to judge (default: the latest run).")
    p.add_argument(
        "--coverage",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="This run's coverage: coverage.py JSON or LCOV (repeatable; default: gates.coverage_report).",
    )
    p.add_argument(
        "--coverage-baseline",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="The baseline's coverage, e.g. of the target branch "
        "(repeatable; default: gates.coverage_baseline).",
    )
    p.add_argument(
        "--only",
        type=gate_list,
        default=[],
        help=f"Comma-separated gates to run (default: {', '.join(DEFAULT_GATES)}).",
    )
    p.add_argument(
        "--budget",
        action="store_true",
        help="Also fail when a pipeline's or stage's p95 wall time in the records exceeds its budget "
        "([tool.pytest-dynamo.pipelines.NAME] budget).",
    )
    p.add_argument("--format", choices=FORMATS, default="text", help="Output format (default text).")
    p.add_argument("-o", "--output", type=Path, help="Write the verdicts there instead of standard output.")
    p.add_argument(
        "--markdown", type=Path, metavar="FILE", help="Also write the verdicts as Markdown to FILE."
    )
    add_records_options(p)
    add_config_options(p)
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except UsageError as err:
        print(f"pytest-dynamo gate: {err}", file=sys.stderr)
        return 2


def _wanted(only: list[str], budget: bool) -> list[str]:
    """The gates to run: ``--only`` (or the default ones), with ``budget`` added by ``--budget``."""
    if not budget or "budget" in only:
        return only
    return [*(only or DEFAULT_GATES), "budget"]


def run(args: argparse.Namespace) -> int:
    engine, rootdir = load_engine(args)
    for path in [*args.coverage, *args.coverage_baseline]:
        if not path.is_file():
            raise UsageError(f"coverage file {path} does not exist")
    history = (
        load_history(args.paths, args.max_decompressed, prog="pytest-dynamo gate") if args.paths else None
    )
    if history is not None and history.runs == 0:
        raise UsageError(
            f"no runs in {', '.join(args.paths)}: {history.records} records, "
            f"{history.corrupt} corrupt lines; a gate needs the records of at least one run"
        )
    try:
        outcome = _core.run_gates(
            engine,
            history,
            rootdir=str(rootdir),
            pipeline=args.pipeline,
            run_id=args.run_id,
            coverage=[str(p) for p in args.coverage],
            coverage_baseline=[str(p) for p in args.coverage_baseline],
            only=_wanted(args.only, args.budget),
        )
    except _core.ConfigError as err:
        raise UsageError(str(err)) from None
    render = {"text": outcome.text, "json": outcome.json, "markdown": outcome.markdown}
    if args.output is None:
        sys.stdout.write(render[args.format]())
    else:
        write(args.output, render[args.format]())
    if args.markdown is not None:
        write(args.markdown, outcome.markdown())
    return 0 if outcome.passed else 1
