"""``pytest-dynamo advise``: the decorators each test should carry, read from
the records (the GPU audit's figures, durations): the lowest ``gpu_N``
marker, a VRAM value, a timeout, each with its evidence. ``--apply`` writes
them into the test files; ``--diff`` shows the change without writing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_dynamo import _core, _numbers
from pytest_dynamo._report_cli import (
    UsageError,
    add_config_options,
    add_records_options,
    load_engine,
    load_history,
    write,
)

FORMATS = ("text", "json")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pytest-dynamo advise",
        description="The markers each test should carry, from the records: the lowest gpu_N, "
        f"a VRAM value and a timeout, with the evidence ({_core.DOCS_URL}budgets.md). "
        "Exit status: 0, or 2 for bad input.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="Records files (.jsonl, .jsonl.gz) or folders.")
    p.add_argument("--format", choices=FORMATS, default="text", help="Output format (default text).")
    p.add_argument("-o", "--output", type=Path, help="Write the advice there instead of standard output.")
    p.add_argument(
        "--window",
        type=_numbers.argument(1, _numbers.MAX_RUNS),
        help="Runs the advice is read from: the latest N (default: gates.window, 20).",
    )
    p.add_argument("--apply", action="store_true", help="Write the advised markers into the test files.")
    p.add_argument(
        "--diff",
        action="store_true",
        help="Print what --apply would change, as a unified diff, and write nothing.",
    )
    add_records_options(p)
    add_config_options(p)
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except UsageError as err:
        print(f"pytest-dynamo advise: {err}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    engine, rootdir = load_engine(args)
    history = load_history(args.paths, args.max_decompressed, prog="pytest-dynamo advise")
    if history.runs == 0:
        raise UsageError(
            f"no runs in {', '.join(args.paths)}: {history.records} records, "
            f"{history.corrupt} corrupt lines; advice needs the records of at least one run"
        )
    try:
        advice = _core.advise(engine, history, window=args.window, pipeline=args.pipeline)
    except _core.ConfigError as err:
        raise UsageError(str(err)) from None
    if args.apply or args.diff:
        from pytest_dynamo import _fix

        return _fix.apply_advice(advice, rootdir, write_files=not args.diff, prog="pytest-dynamo advise")
    rendered = advice.json() + "\n" if args.format == "json" else advice.text()
    if args.output is None:
        sys.stdout.write(rendered)
    else:
        write(args.output, rendered)
    return 0
