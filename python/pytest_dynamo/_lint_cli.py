"""``pytest-dynamo lint [PATH ...]``: check the markers of test files without
importing them, by the rules collection-time validation applies. The work is
one call into the Rust core; this module reads flags and prints."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pytest_dynamo._core import ConfigError, lint

FORMATS = ("text", "json", "sarif")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-dynamo lint",
        description="Check pytest markers against the pytest-dynamo taxonomy without importing "
        "the tests. Exit status: 0 clean, 1 violations found, 2 usage or configuration error.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="test files or directories (default: testpaths, or the current directory)",
    )
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    parser.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument(
        "--strict-unresolved",
        action="store_true",
        help="markers that cannot be resolved statically are errors, not warnings",
    )
    parser.add_argument("--rootdir", metavar="DIR", help="pytest rootdir (default: found as pytest does)")
    parser.add_argument(
        "-c", "--config-file", metavar="FILE", help="pytest config file (default: found as pytest does)"
    )
    parser.add_argument(
        "--dynamo-config",
        metavar="PATH",
        help="pytest-dynamo TOML configuration, relative to the rootdir "
        "(default: $DYNAMO_CONFIG, the dynamo_config ini option, or [tool.pytest-dynamo])",
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="edit the test files: rename misspelled markers that have one clear suggestion and "
        "deprecated aliases, drop a second hardware marker keeping the lowest",
    )
    parser.add_argument(
        "--diff",
        action="store_true",
        help="with --fix (or alone): print the edits as a unified diff and write nothing",
    )
    return parser


def fix(args: argparse.Namespace, dynamo_config: str | None) -> int:
    from pytest_dynamo import _fix
    from pytest_dynamo._core import lint_fix

    try:
        report = lint_fix(
            list(args.paths),
            invocation_dir=os.getcwd(),
            rootdir=args.rootdir,
            config_file=args.config_file,
            dynamo_config=dynamo_config,
        )
    except ConfigError as err:
        print(f"pytest-dynamo lint: {err}", file=sys.stderr)
        return 2
    return _fix.finish(report, write_files=not args.diff, prog="pytest-dynamo lint")


def main(argv: Sequence[str]) -> int:
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else 2
    dynamo_config = args.dynamo_config or os.environ.get("DYNAMO_CONFIG") or None
    if args.fix or args.diff:
        return fix(args, dynamo_config)
    try:
        report = lint(
            list(args.paths),
            invocation_dir=os.getcwd(),
            rootdir=args.rootdir,
            config_file=args.config_file,
            dynamo_config=dynamo_config,
            strict_unresolved=args.strict_unresolved,
        )
    except ConfigError as err:
        print(f"pytest-dynamo lint: {err}", file=sys.stderr)
        return 2
    if report.config_note is not None:
        # On stderr: the JSON and SARIF on stdout stay machine-readable.
        print(f"pytest-dynamo lint: {report.config_note}", file=sys.stderr)
    rendered = {"text": report.text, "json": report.json, "sarif": report.sarif}[args.format]()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(rendered if rendered.endswith("\n") else rendered + "\n")
        print(report.text().splitlines()[-1])
    else:
        sys.stdout.write(rendered if rendered.endswith("\n") else rendered + "\n")
    return 1 if report.errors else 0
