"""One parser for every whole-number setting: flags, environment variables,
ini options and the subcommands' arguments (issue #18). ASCII digits only
(``str.isdigit`` accepts ``'²'``, which ``int`` refuses), and bounds, so a
value that would overflow the core or loop for ever is refused where it is
read, with its source and the allowed range."""

from __future__ import annotations

import argparse
import re
from typing import Callable

#: More than any machine has: a bigger count is a typo.
MAX_GPUS = 4096
#: More retries than this are a typo (the core's ``flaky::MAX_RERUNS``).
MAX_RERUNS = 100
#: Longer lists than this are not read by anyone.
MAX_LIST = 100_000
#: Runs or results counted over a history.
MAX_RUNS = 1_000_000

_WHOLE = re.compile(r"[+-]?[0-9]{1,30}")


def parse(text: str, low: int, high: int) -> int:
    """``text`` as a whole number from ``low`` to ``high``; ``ValueError``
    with a message that names the allowed range otherwise."""
    value = text.strip()
    if not _WHOLE.fullmatch(value):
        raise ValueError(f"{text!r} is not a whole number from {low} to {high}")
    number = int(value)
    if not low <= number <= high:
        raise ValueError(f"{value} is out of range: a whole number from {low} to {high}")
    return number


def argument(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type=`` for a subcommand's whole-number argument."""

    def whole(text: str) -> int:
        try:
            return parse(text, low, high)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return whole
