"""``pytest-dynamo report``: flakiness, durations, quarantine advice and
owners over the records of many runs, as text, JSON, Markdown or HTML.
Parsing and every statistic run in Rust; this module reads arguments and
writes files."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_dynamo import _core, _numbers

FORMATS = ("text", "json", "markdown", "html")


class UsageError(Exception):
    """A bad argument or input: printed without a traceback, exit status 2."""


def add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rootdir",
        type=Path,
        default=None,
        help="Folder whose pyproject.toml holds [tool.pytest-dynamo] (default: the current folder).",
    )
    parser.add_argument(
        "--config",
        default=None,
        help="TOML file with the pytest-dynamo configuration, as --dynamo-config "
        "(default: $DYNAMO_CONFIG, then the rootdir's pyproject.toml).",
    )
    parser.add_argument("--pipeline", default=None, help="Only runs of this pipeline.")


def load_engine(args: argparse.Namespace) -> tuple[_core.Engine, Path]:
    """The configuration found the way the plugin finds it."""
    rootdir: Path = args.rootdir or Path.cwd()
    if not rootdir.is_dir():
        raise UsageError(f"--rootdir {rootdir} is not a folder")
    config_file = args.config or os.environ.get("DYNAMO_CONFIG") or None
    try:
        return _core.Engine.load(str(rootdir), config_file), rootdir
    except _core.ConfigError as err:
        raise UsageError(str(err)) from None


def load_history(paths: Sequence[str], max_decompressed: int | None = None, *, prog: str) -> _core.History:
    """The records under `paths`; what was skipped (a FIFO in a folder) is said on stderr."""
    try:
        history = _core.History.load(list(paths), max_decompressed)
    except _core.ConfigError as err:
        raise UsageError(str(err)) from None
    for skipped in history.skipped:
        print(f"{prog}: {skipped}", file=sys.stderr)
    return history


#: What one gzip records file may decompress to, unless --max-decompressed says otherwise.
MAX_DECOMPRESSED = "1GiB"
_SIZE = re.compile(r"([0-9]{1,20})\s*(?:([kmgt])(?:i?b)?|b)?", re.IGNORECASE)
_UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def size(text: str) -> int:
    """A size in bytes: a whole number with an optional unit (K, M, G, T; KiB, MB...
    are the same powers of 1024), 1 byte to 1 PiB."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size (say 500M, 2GiB or a number of bytes)")
    value = int(match.group(1)) * _UNIT[(match.group(2) or "").lower()]
    if not 1 <= value <= 1 << 50:
        raise argparse.ArgumentTypeError(f"'{text}' must be 1 byte to 1 PiB")
    return value


def add_records_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-decompressed",
        type=size,
        default=MAX_DECOMPRESSED,
        metavar="SIZE",
        help="The most one gzip records file may decompress to; a larger one is refused "
        f"(memory stays bounded; default {MAX_DECOMPRESSED}).",
    )


def write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err}") from None


def positive(text: str) -> int:
    """A count of runs or results: a whole number from 1 (refused beyond any history)."""
    return _numbers.argument(1, _numbers.MAX_RUNS)(text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pytest-dynamo report",
        description="Report flaky, broken and slower tests over the records of many runs "
        f"({_core.DOCS_URL}reports.md).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="Records files (.jsonl, .jsonl.gz) or folders.")
    p.add_argument(
        "--format", choices=FORMATS, default="text", help="Format written to --output (default text)."
    )
    p.add_argument("-o", "--output", type=Path, help="Write the report there instead of standard output.")
    p.add_argument("--json", type=Path, metavar="FILE", help="Also write the JSON report to FILE.")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="Also write the Markdown summary to FILE.")
    p.add_argument("--html", type=Path, metavar="FILE", help="Also write the HTML report to FILE.")
    p.add_argument(
        "--tickets", type=Path, metavar="DIR", help="Write one Markdown ticket body per owner into DIR."
    )
    p.add_argument(
        "--quarantine",
        type=Path,
        metavar="FILE",
        help="The quarantine file: releases are checked against it "
        "(default: the file [tool.pytest-dynamo.quarantine] names, if any).",
    )
    p.add_argument(
        "--quarantine-out",
        type=Path,
        metavar="FILE",
        help="Write the quarantine file with the suggested changes applied (may be --quarantine itself).",
    )
    p.add_argument(
        "--ticket",
        metavar="ID",
        help="The ticket of the entries --quarantine-out adds (required when it adds any).",
    )
    p.add_argument(
        "--owner",
        metavar="NAME",
        help="The owner of added entries whose records name none (required when one has none).",
    )
    p.add_argument("--window", type=positive, help="Runs in the window (default: gates.window, 20).")
    p.add_argument(
        "--min-runs", type=positive, help="Results a test needs to be judged (default: gates.min_runs, 5)."
    )
    p.add_argument(
        "--release-after",
        type=positive,
        help="Passes in a row before a quarantined test is released (default: gates.release_after, 10).",
    )
    p.add_argument(
        "--top",
        type=_numbers.argument(1, _numbers.MAX_LIST),
        default=10,
        help="Length of the slowest and slow-down lists (default 10).",
    )
    add_records_options(p)
    add_config_options(p)
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except UsageError as err:
        print(f"pytest-dynamo report: {err}", file=sys.stderr)
        return 2


def configured_quarantine(engine: _core.Engine, rootdir: Path) -> Path | None:
    """The quarantine file the configuration names (``[tool.pytest-dynamo.quarantine]
    file``), read and checked as the plugin reads it; None when none is named."""
    try:
        named = engine.run_policy(str(rootdir)).quarantine_file
    except _core.ConfigError as err:
        raise UsageError(str(err)) from None
    return None if named is None else Path(named)


def quarantine_text(args: argparse.Namespace, report: _core.Report) -> str:
    """The file --quarantine-out writes: its added entries must load at the
    next run, which refuses an entry without a ticket or an owner."""
    added = json.loads(report.json())["quarantine"]["add"]
    missing = [
        (flag, [e["test"] for e in added if not e[key].strip()])
        for flag, key, given in (("--ticket", "ticket", args.ticket), ("--owner", "owner", args.owner))
        if not (given or "").strip()
    ]
    for flag, tests in missing:
        if tests:
            shown = ", ".join(tests[:5]) + (f" and {len(tests) - 5} more" if len(tests) > 5 else "")
            raise UsageError(
                f"--quarantine-out would add entries without {flag[2:]} ({shown}), and a quarantine "
                f"entry without one does not load; file the ticket and pass {flag} "
                f"{'DYN-123' if flag == '--ticket' else 'NAME'}"
            )
    return report.quarantine_file(ticket=args.ticket, owner=args.owner)


def run(args: argparse.Namespace) -> int:
    engine, rootdir = load_engine(args)
    if args.quarantine is not None and not args.quarantine.is_file():
        raise UsageError(f"--quarantine {args.quarantine}: no such file")
    if args.quarantine is None:
        # Without it, the report would suggest quarantining tests that already are.
        args.quarantine = configured_quarantine(engine, rootdir)
    history = load_history(args.paths, args.max_decompressed, prog="pytest-dynamo report")
    try:
        report = history.report(
            engine,
            window=args.window,
            min_runs=args.min_runs,
            release_after=args.release_after,
            top=args.top,
            pipeline=args.pipeline,
            quarantine=None if args.quarantine is None else str(args.quarantine),
        )
    except _core.ConfigError as err:
        raise UsageError(str(err)) from None
    # Refused before anything is written: the file must load at the next run.
    quarantine = None if args.quarantine_out is None else quarantine_text(args, report)
    render = {"text": report.text, "json": report.json, "markdown": report.markdown, "html": report.html}
    if args.output is None:
        sys.stdout.write(render[args.format]())
    else:
        write(args.output, render[args.format]())
    for path, fmt in ((args.json, "json"), (args.markdown, "markdown"), (args.html, "html")):
        if path is not None:
            write(path, render[fmt]())
    if args.tickets is not None:
        for ticket in report.tickets():
            write(args.tickets / f"{ticket.slug}.md", ticket.body)
    if args.quarantine_out is not None and quarantine is not None:
        write(args.quarantine_out, quarantine)
    if history.records == 0 and history.corrupt == 0:
        print(
            f"pytest-dynamo report: no records in {', '.join(args.paths)} "
            "(folders are searched for *.jsonl, *.jsonl.gz, *.ndjson, *.ndjson.gz)",
            file=sys.stderr,
        )
    if history.corrupt:
        print(
            f"pytest-dynamo report: skipped {history.corrupt} corrupt or truncated record line(s); "
            "the report lists the first ones",
            file=sys.stderr,
        )
    return 0
