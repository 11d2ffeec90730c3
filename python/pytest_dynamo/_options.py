"""Command-line flags and ini options, and reading them with one precedence:
flag, then environment variable, then ini, then the default."""

from __future__ import annotations

import os
from typing import Callable

import pytest

VALIDATION_MODES = ("strict", "warn", "off")


def choice(name: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    """An argparse ``type=`` that turns a bad value into a usage error."""

    def check(value: str) -> str:
        if value not in choices:
            raise pytest.UsageError(f"{name}: '{value}' is not one of {', '.join(choices)}")
        return value

    check.__name__ = name
    return check


def add_options(parser: pytest.Parser) -> pytest.OptionGroup:
    group = parser.getgroup("dynamo", "pytest-dynamo: CI testing strategy")
    group.addoption(
        "--dynamo-config",
        dest="dynamo_config",
        metavar="PATH",
        help="TOML file with the pytest-dynamo configuration "
        "(default: [tool.pytest-dynamo] in the rootdir's pyproject.toml).",
    )
    parser.addini(
        "dynamo_config",
        "TOML file with the pytest-dynamo configuration, relative to the rootdir.",
        default="",
    )
    group.addoption(
        "--dynamo-validation",
        dest="dynamo_validation",
        type=choice("--dynamo-validation", VALIDATION_MODES),
        metavar="MODE",
        help="Marker validation at collection: strict (default) fails collection, "
        "warn reports and runs, off skips it.",
    )
    parser.addini(
        "dynamo_validation",
        "Marker validation at collection: strict, warn or off.",
        default="strict",
    )
    group.addoption(
        "--dynamo-durations",
        dest="dynamo_durations",
        metavar="PATH",
        help="Test durations file in pytest-split's .test_durations format: "
        "read by --dynamo-plan, updated by runs that write records.",
    )
    parser.addini(
        "dynamo_durations",
        "Test durations file (pytest-split's .test_durations format), relative to the rootdir.",
        default="",
    )
    return group


def setting(config: pytest.Config, name: str, env: str | None = None) -> tuple[str, str]:
    """A setting by precedence (``--dynamo-x`` flag, environment, ini ``dynamo_x``)
    and where it came from (``--dynamo-gpus=1``, ``DYNAMO_GPUS=1``,
    ``dynamo_gpus = 1``), so messages can name the source."""
    value = config.getoption(name, default=None)
    if value not in (None, ""):
        return str(value), f"--{name.replace('_', '-')}={value}"
    if env and os.environ.get(env):
        return os.environ[env], f"{env}={os.environ[env]}"
    value = str(config.getini(name) or "")
    return value, f"{name} = {value}"


def get(config: pytest.Config, name: str, env: str | None = None) -> str:
    """A setting's value by precedence: flag, environment, ini."""
    return setting(config, name, env)[0]


def get_choice(config: pytest.Config, name: str, choices: tuple[str, ...], env: str | None = None) -> str:
    """A setting that must be one of ``choices``; anything else is a usage error naming its source."""
    value, where = setting(config, name, env)
    if value.strip() not in choices:
        raise pytest.UsageError(f"pytest-dynamo: {where}: not one of {', '.join(choices)}")
    return value.strip()
