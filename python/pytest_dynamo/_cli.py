"""The ``pytest-dynamo`` command (also ``python -m pytest_dynamo``): one
subcommand per job, each in its own module, loaded only when asked for."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "lint": ("pytest_dynamo._lint_cli", "check test markers without importing the tests"),
    "advise": ("pytest_dynamo._advise_cli", "the markers each test should carry, from the records"),
    "report": ("pytest_dynamo._report_cli", "flaky, broken and slower tests over many runs' records"),
    "gate": ("pytest_dynamo._gate_cli", "quality gates: flaky rate, performance, coverage"),
}

USAGE = "usage: pytest-dynamo COMMAND [ARGS...]   (pytest-dynamo COMMAND --help)"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        print("\ncommands:")
        for name, (_, help_text) in sorted(COMMANDS.items()):
            print(f"  {name:<10} {help_text}")
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from pytest_dynamo import __version__

        print(f"pytest-dynamo {__version__}")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        known = ", ".join(sorted(COMMANDS)) or "none"
        print(f"pytest-dynamo: unknown command '{args[0]}' (known: {known})", file=sys.stderr)
        return 2
    module = importlib.import_module(command[0])
    code: int = module.main(args[1:])
    return code
