"""Command-line flags and ini options, and reading them with one precedence:
flag, then environment variable, then ini, then the default."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Callable

import pytest

from pytest_dynamo import _numbers

VALIDATION_MODES = ("strict", "warn", "off")


def usage_error(problem: object) -> pytest.UsageError:
    """Bad configuration as the plugin reports it: ``pytest-dynamo: ...``
    (``problem`` is a message, or a ``ConfigError`` whose text names the fix)."""
    return pytest.UsageError(f"pytest-dynamo: {problem}")


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
        raise usage_error(f"{where}: not one of {', '.join(choices)}")
    return value.strip()


def whole_number(name: str, low: int, high: int) -> Callable[[str], str]:
    """An argparse ``type=`` for a ``--dynamo-*`` flag that takes a whole
    number: a bad or out-of-range value is a usage error naming the flag."""

    def check(value: str) -> str:
        try:
            _numbers.parse(value, low, high)
        except ValueError as err:
            raise usage_error(f"{name}={value}: {err}") from None
        return value.strip()

    check.__name__ = name
    return check


def get_int(config: pytest.Config, name: str, low: int, high: int, env: str | None = None) -> int | None:
    """A whole-number setting by precedence (None when unset); a bad or
    out-of-range value is a usage error naming its source and the range."""
    value, where = setting(config, name, env)
    if not value.strip():
        return None
    try:
        return _numbers.parse(value, low, high)
    except ValueError as err:
        raise usage_error(f"{where}: {err}; fix or unset it") from None


#: A value that is a negative number, not an option: the number's parser judges it.
_NEGATIVE = re.compile(r"-[0-9.]+")


def check_flag_values(config: pytest.Config) -> None:
    """``--dynamo-x=--`` (or any ``--dynamo-x=-...``) is a value that looks
    like an option: argparse silently turns ``--`` into an empty value, and a
    path such as ``-q`` is almost always a slip. Refused, naming the flag."""
    args: list[str] = [str(a) for a in config.invocation_params.args]
    args += shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    args += [str(a) for a in config.getini("addopts") or []]
    for arg in args:
        if not arg.startswith("--dynamo-"):
            continue
        flag, equals, value = arg.partition("=")
        if equals and value.startswith("-") and not _NEGATIVE.fullmatch(value):
            raise pytest.UsageError(
                f"pytest-dynamo: {arg}: the value {value!r} looks like an option, not a value for {flag}; "
                f"write {flag}=VALUE, or leave the flag out"
            )


def durations_path(config: pytest.Config) -> str | None:
    """The durations file the plan and the shards read: ``--dynamo-durations``
    (or ini), else the rootdir's ``.test_durations`` when there is one."""
    value = get(config, "dynamo_durations").strip()
    if not value:
        default = config.rootpath / ".test_durations"
        return str(default) if default.is_file() else None
    path = Path(value)
    if not path.is_absolute():
        path = config.rootpath / path
    if not path.is_file():
        raise pytest.UsageError(
            f"pytest-dynamo: durations file {path} does not exist\n"
            "  fix: correct --dynamo-durations / dynamo_durations (relative paths start at the rootdir)"
        )
    return str(path)
