"""Which framework's tests a run keeps.

Precedence: ``--dynamo-framework``, ``DYNAMO_TEST_FRAMEWORK``, the ini value
``dynamo_framework``, then the default: ``DYNAMO_DEFAULT_FRAMEWORK``, then
``[tool.pytest-dynamo.frameworks] default``. The two variables are the
spec's; ``[tool.pytest-dynamo.frameworks] env`` names others, or none. ``all`` keeps every framework;
``auto`` asks git which framework the branch changed, once per run (the
xdist controller decides and hands the answer to every worker).
"""

from __future__ import annotations

import os

import pytest

from pytest_dynamo import _options, _state
from pytest_dynamo._core import ConfigError, Pipelines

ALL = "all"
AUTO = "auto"
CONFIGURED = "[tool.pytest-dynamo.frameworks] default"


def _named(config: pytest.Config, pipelines: Pipelines) -> tuple[str, str, bool] | None:
    """The framework the run names, where, and whether an environment
    variable named it: flag, environment, ini."""
    flag = config.getoption("dynamo_framework", default=None)
    if flag:
        return str(flag).strip(), "--dynamo-framework", False
    var = pipelines.framework_env
    env = os.environ.get(var, "").strip() if var else ""
    if var and env:
        return env, var, True
    ini = str(config.getini("dynamo_framework") or "").strip()
    if ini:
        return ini, "ini dynamo_framework", False
    return None


def _default(pipelines: Pipelines) -> tuple[str, str] | None:
    """The default framework and where it came from; None for all of them."""
    var = pipelines.default_framework_env
    env = os.environ.get(var, "").strip() if var else ""
    if env == ALL:
        return None
    if var and env:
        if env == AUTO:
            raise pytest.UsageError(
                f"pytest-dynamo: {var}=auto: the default is what auto falls back to\n"
                "  fix: set it to a framework marker, or to all"
            )
        try:
            return pipelines.framework_from_env(var, env), var
        except ConfigError as err:
            raise _options.usage_error(err) from None
    configured = pipelines.default_framework
    return None if configured is None else (configured, CONFIGURED)


def _choose(config: pytest.Config, pipelines: Pipelines) -> list[str | None]:
    named = _named(config, pipelines)
    default = _default(pipelines)
    if named is None:
        if default is None:
            return [None, ""]
        return [default[0], f"default from {default[1]}"]
    value, where, from_env = named
    if value == ALL:
        return [None, f"all frameworks ({where})"]
    try:
        if value == AUTO:
            base = _options.get(config, "dynamo_base", env="DYNAMO_BASE").strip()
            if not base:
                raise pytest.UsageError(
                    f"pytest-dynamo: {where}=auto compares the branch with a base, and none is set\n"
                    "  fix: --dynamo-base=origin/main (or the ini option dynamo_base, or DYNAMO_BASE)"
                )
            choice = pipelines.changed_framework(str(config.rootpath), base, default)
            return [choice.framework, f"{choice.why}; base {base}"]
        if from_env:
            return [pipelines.framework_from_env(where, value), where]
        return [pipelines.framework(value, where), where]
    except ConfigError as err:
        raise _options.usage_error(err) from None


def choose(config: pytest.Config, pipelines: Pipelines) -> tuple[str | None, str]:
    """``(framework or None for all, why)``, the same on every xdist worker."""
    framework, why = _state.shared(config, "framework", lambda: _choose(config, pipelines))
    return framework, why
