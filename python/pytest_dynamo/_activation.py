"""Whether pytest-dynamo acts in a run, and why (docs/configuration.md).

Installed is not configured: the plugin acts only where a project configures
it (a ``[tool.pytest-dynamo]`` table in the rootdir's pyproject.toml, a
``dynamo_*`` ini option, ``DYNAMO_CONFIG``) or the command line names a
``--dynamo-*`` option. Elsewhere it only registers the taxonomy's markers.
``--dynamo-off`` / ``PYTEST_DYNAMO_OFF=1`` turn it off for one run;
``PYTEST_DYNAMO_ON=1`` turns it on with the built-in defaults.

Deciding reads no setting that can fail: file texts are searched, not parsed,
so an unrelated project's broken file is never our error.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

OFF_ENV = "PYTEST_DYNAMO_OFF"
ON_ENV = "PYTEST_DYNAMO_ON"
TABLE = "[tool.pytest-dynamo]"
#: ``[tool.pytest-dynamo]`` or one of its subtables, quoted or not.
TABLE_LINE = re.compile(r'^[ \t]*\[[ \t]*tool[ \t]*\.[ \t]*"?pytest-dynamo"?[ \t]*[\].]', re.MULTILINE)
#: A ``dynamo_*`` key in an ini file or in pyproject.toml's pytest table.
INI_KEY = re.compile(r'^[ \t]*"?(dynamo_[A-Za-z0-9_]+)"?[ \t]*[=:]', re.MULTILINE)
OFF_FLAG = "--dynamo-off"
#: Where an xdist worker finds the controller's decision (its own command
#: line holds none of the controller's flags).
WORKER_KEY = "dynamo_activation"

ACTIVATION: pytest.StashKey[Activation] = pytest.StashKey()


@dataclass(frozen=True)
class Activation:
    active: bool
    #: Which file, option or variable decided it, for the header and ``-VV``.
    why: str
    #: Turned off for this run (--dynamo-off, PYTEST_DYNAMO_OFF): the
    #: project's own markers stay registered.
    off: bool = False

    def line(self) -> str:
        state = "active" if self.active else "inactive"
        return f"pytest-dynamo: {state} ({self.why})"


def add_options(parser: pytest.Parser) -> None:
    parser.getgroup("dynamo").addoption(
        OFF_FLAG,
        dest="dynamo_off",
        action="store_true",
        default=False,
        help=f"Turn every pytest-dynamo feature off for this run; its markers stay registered "
        f"(env {OFF_ENV}=1). -p no:dynamo unregisters the markers too.",
    )


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def off_by_environment() -> bool:
    """``PYTEST_DYNAMO_OFF`` is set: readable before the options are parsed."""
    return _truthy(os.environ.get(OFF_ENV))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _arguments(config: pytest.Config) -> list[str]:
    """Every argument the run was given: PYTEST_ADDOPTS, the ini's addopts, the command line."""
    args: list[str] = []
    with contextlib.suppress(ValueError):  # pytest itself reports a broken PYTEST_ADDOPTS
        args += shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    args += [str(arg) for arg in config.getini("addopts") or ()]
    args += [str(arg) for arg in config.invocation_params.args]
    return args


def _flag(args: list[str]) -> str | None:
    for arg in args:
        if arg == "--":
            break
        if arg.startswith("--dynamo-") and arg.split("=", 1)[0] != OFF_FLAG:
            return arg.split("=", 1)[0]
    return None


def _ini_key(config: pytest.Config) -> str | None:
    for override in config.getoption("override_ini", default=None) or ():
        name = str(override).split("=", 1)[0].strip()
        if name.startswith("dynamo_"):
            return f"-o {name}"
    inipath = config.inipath
    if inipath is not None:
        found = INI_KEY.search(_read(inipath))
        if found:
            return f"{found.group(1)} in {inipath}"
    return None


def decide(config: pytest.Config) -> Activation:
    """Active or not, and why; computed once per run (see ``of``)."""
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        why = worker.get(WORKER_KEY)
        return Activation(True, why) if why else Activation(False, "not active on the xdist controller")
    args = _arguments(config)
    if OFF_FLAG in args or config.getoption("dynamo_off", default=False):
        return Activation(False, f"turned off by {OFF_FLAG}", off=True)
    if _truthy(os.environ.get(OFF_ENV)):
        return Activation(False, f"turned off by {OFF_ENV}={os.environ[OFF_ENV]}", off=True)
    flag = _flag(args)
    if flag is not None:
        return Activation(True, f"{flag} on the command line")
    if os.environ.get("DYNAMO_CONFIG", "").strip():
        return Activation(True, f"DYNAMO_CONFIG={os.environ['DYNAMO_CONFIG']}")
    key = _ini_key(config)
    if key is not None:
        return Activation(True, key)
    pyproject = config.rootpath / "pyproject.toml"
    if pyproject.is_file() and TABLE_LINE.search(_read(pyproject)):
        return Activation(True, f"{TABLE} in {pyproject}")
    if _truthy(os.environ.get(ON_ENV)):
        return Activation(True, f"{ON_ENV}={os.environ[ON_ENV]}")
    return Activation(
        False,
        f"not configured: no {TABLE} table, dynamo_* ini option or --dynamo-* option; "
        "the taxonomy's markers are registered",
    )


def of(config: pytest.Config) -> Activation:
    """The run's decision, made on first use."""
    found = config.stash.get(ACTIVATION, None)
    if found is None:
        found = decide(config)
        config.stash[ACTIVATION] = found
    return found


def is_active(config: pytest.Config) -> bool:
    return of(config).active
