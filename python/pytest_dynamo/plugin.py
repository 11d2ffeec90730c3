"""The pytest hooks of pytest-dynamo. Thin: each hook hands whole batches to
the Rust core (``pytest_dynamo._core``) and reports what it answers."""

from __future__ import annotations

import os
import sys
from collections.abc import Generator

import pytest

from pytest_dynamo import (
    _activation,
    _analytics,
    _collect,
    _gpu,
    _options,
    _parallel,
    _parallel_machine,
    _parallel_worker,
    _records,
    _selection,
    _shards,
    _state,
    _transient,
    _validation,
)
from pytest_dynamo._core import ConfigError, Engine
from pytest_dynamo._gating import GATING, Gating
from pytest_dynamo._validation import ValidationPlugin

VALIDATION = "dynamo-validation"


def pytest_addoption(parser: pytest.Parser) -> None:
    _options.add_options(parser)
    _activation.add_options(parser)
    _validation.add_options(parser)
    _gpu.add_options(parser)
    _selection.add_options(parser)
    _shards.add_options(parser)
    _analytics.add_options(parser)
    _records.add_options(parser)
    _parallel.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    # Before the options are parsed: a stage's options join the command line
    # here, early enough for xdist (-n) and pytest-timeout to see them.
    _selection.apply_stage_options(early_config, args)


def register_markers(config: pytest.Config, engine: Engine) -> None:
    for marker in engine.markers():
        config.addinivalue_line("markers", f"{marker.name}: [{marker.category}] {marker.description}")
    for alias in engine.aliases():
        config.addinivalue_line("markers", f"{alias.alias}: deprecated alias of {alias.canonical}")


def markers_only(config: pytest.Config, activation: _activation.Activation) -> tuple[Engine, str]:
    """The taxonomy whose markers an inactive run registers, and its VRAM marker.

    Unconfigured: the built-in one, reading no file. Turned off: the
    project's own (its extra markers and aliases), or the built-in one when
    that configuration does not load: off is never an error."""
    if activation.off:
        config_file = _options.get(config, "dynamo_config", env="DYNAMO_CONFIG") or None
        try:
            engine = Engine.load(str(config.rootpath), config_file)
            return engine, engine.gpu_rules().vram_marker
        except ConfigError:
            pass
    engine = Engine.builtin()
    return engine, engine.gpu_rules().vram_marker


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if not _activation.is_active(config):
        if config.getoption("dynamo_plan", default=False):
            # Only the off switch gets here with a --dynamo-* flag.
            raise pytest.UsageError(
                "pytest-dynamo: --dynamo-plan runs nothing, but the plugin is "
                f"{_activation.of(config).why} and the suite would run\n"
                "  fix: drop one of them"
            )
        # Installed but not configured, or turned off: the markers only, so
        # --strict-markers suites that use them keep working.
        engine, vram = markers_only(config, _activation.of(config))
        register_markers(config, engine)
        config.addinivalue_line("markers", f"{vram}(gib): needs a GPU with at least this much memory, in GiB")
        return
    _options.check_flag_values(config)
    engine = _state.load_engine(config)
    register_markers(config, engine)
    config.pluginmanager.register(ValidationPlugin(config), VALIDATION)
    config.pluginmanager.register(Gating(), GATING)
    _gpu.register(config)
    config.pluginmanager.register(_selection.SelectionPlugin(config), _selection.SELECTION)
    _parallel.register(config)
    _shards.register(config)
    _analytics.register(config)
    _records.register(config)
    _transient.register(config)
    if config.pluginmanager.hasplugin("xdist"):
        from pytest_dynamo._xdist import XdistIntegration

        config.pluginmanager.register(XdistIntegration(config), "dynamo-xdist")


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Generator[None, None, None]:
    if not _activation.is_active(config):
        yield
        return
    collected = list(items)
    yield
    # After every other hook: markers added by conftest hooks are in place,
    # and items that -m, -k or another plugin deselected are still checked,
    # so a test cannot escape the rules by never being selected.
    seen = {id(item) for item in collected}
    everything = collected + [item for item in items if id(item) not in seen]
    engine = _state.engine(config)
    batch = engine.ingest_items(everything, _collect.registered_markers(config))
    config.stash[_state.BATCH] = batch
    validation = config.pluginmanager.get_plugin(VALIDATION)
    assert isinstance(validation, ValidationPlugin)
    validation.check(batch, items, everything)
    # Then selection by pipeline, stage and framework (the pipelines feature),
    # then hardware skips or deselection (the GPU feature), in that order.
    _selection.select(config, items, everything)
    _gpu.apply(config, batch, items, everything)
    # Last: shards split what every other decision left to run.
    _shards.apply(config, items, _selection.planning(config), everything)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    # -n auto with --dynamo-gpu-parallel: as many workers as tests fit at once.
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or not _activation.is_active(config):
        return None
    return _parallel.auto_workers(config) if _parallel_machine.enabled(config) else None


@pytest.fixture
def dynamo_gpus(request: pytest.FixtureRequest) -> _parallel_worker.Assignment | None:
    """The running test's GPUs in a GPU-parallel run (indices, ids as the
    outer CUDA_VISIBLE_DEVICES names them, UUIDs, GiB per GPU); None otherwise."""
    return _parallel_worker.assignment(request.node)


def pytest_report_header(config: pytest.Config) -> str | None:
    activation = _activation.of(config)
    return activation.line() if activation.active else None


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, object, object]:
    result = yield
    # `pytest --version --version` lists the plugins: say whether this one acts.
    if (config.getoption("version", default=0) or 0) > 1:
        sys.stdout.write(_activation.of(config).line() + "\n")
    return result
