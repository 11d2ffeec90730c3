"""The pytest hooks of pytest-dynamo. Thin: each hook hands whole batches to
the Rust core (``pytest_dynamo._core``) and reports what it answers."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from pytest_dynamo import _analytics, _collect, _gpu, _options, _records, _selection, _state
from pytest_dynamo._gating import GATING, Gating
from pytest_dynamo._validation import ValidationPlugin

VALIDATION = "dynamo-validation"


def pytest_addoption(parser: pytest.Parser) -> None:
    _options.add_options(parser)
    _gpu.add_options(parser)
    _selection.add_options(parser)
    _analytics.add_options(parser)
    _records.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    # Before the options are parsed: a stage's options join the command line
    # here, early enough for xdist (-n) and pytest-timeout to see them.
    _selection.apply_stage_options(early_config, args)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    engine = _state.load_engine(config)
    for name, category, description in engine.markers():
        config.addinivalue_line("markers", f"{name}: [{category}] {description}")
    for alias, canonical in engine.aliases():
        config.addinivalue_line("markers", f"{alias}: deprecated alias of {canonical}")
    config.pluginmanager.register(ValidationPlugin(config), VALIDATION)
    config.pluginmanager.register(Gating(), GATING)
    _gpu.register(config)
    config.pluginmanager.register(_selection.SelectionPlugin(config), _selection.SELECTION)
    _analytics.register(config)
    _records.register(config)
    if config.pluginmanager.hasplugin("xdist"):
        from pytest_dynamo._xdist import XdistIntegration

        config.pluginmanager.register(XdistIntegration(config), "dynamo-xdist")


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Generator[None, None, None]:
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


def gating(config: pytest.Config) -> Gating:
    """The run's gating: pipelines and quarantine add exemptions to it."""
    plugin = config.pluginmanager.get_plugin(GATING)
    assert isinstance(plugin, Gating)
    return plugin
