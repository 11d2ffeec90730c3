"""Settings that say where they came from (``--dynamo-gpus=1``,
``DYNAMO_GPUS=1``, ``dynamo_gpus = 1``), so messages can name the source."""

from __future__ import annotations

import os

import pytest


def setting(config: pytest.Config, name: str, env: str | None = None) -> tuple[str, str]:
    """A setting by precedence (flag, environment, ini) and where it came from."""
    value = config.getoption(name, default=None)
    if value not in (None, ""):
        return str(value), f"--{name.replace('_', '-')}={value}"
    if env and os.environ.get(env):
        return os.environ[env], f"{env}={os.environ[env]}"
    value = str(config.getini(name) or "")
    return value, f"{name} = {value}"


def choice(config: pytest.Config, name: str, choices: tuple[str, ...], env: str | None = None) -> str:
    value, where = setting(config, name, env)
    if value.strip() not in choices:
        raise pytest.UsageError(f"pytest-dynamo: {where}: not one of {', '.join(choices)}")
    return value.strip()
