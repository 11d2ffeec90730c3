"""Shared fixtures of pytest-dynamo's own tests (which run under the plugin)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

#: Markers that make a test valid under the default taxonomy.
VALID = "@pytest.mark.pre_merge\n@pytest.mark.gpu_0\n@pytest.mark.unit\n"


@pytest.fixture(autouse=True)
def dynamo_active_in_inner_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner pytester runs act as a configured project's do: PYTEST_DYNAMO_ON
    activates the plugin with the built-in defaults and changes no setting,
    so the ini options and flags a test gives keep their precedence. Tests
    of an unconfigured project opt out with the ``unconfigured`` fixture."""
    monkeypatch.setenv("PYTEST_DYNAMO_ON", "1")
    monkeypatch.delenv("PYTEST_DYNAMO_OFF", raising=False)
    monkeypatch.delenv("DYNAMO_CONFIG", raising=False)


@pytest.fixture
def unconfigured(dynamo_active_in_inner_runs: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs see the plugin installed but not configured."""
    monkeypatch.delenv("PYTEST_DYNAMO_ON", raising=False)


@pytest.fixture
def valid_marks() -> str:
    """Decorator lines that satisfy the default rules."""
    return VALID


SELECTION_ENV = (
    "DYNAMO_PIPELINE",
    "DYNAMO_STAGE",
    "DYNAMO_TEST_FRAMEWORK",
    "DYNAMO_DEFAULT_FRAMEWORK",
    "DYNAMO_BASE",
    "DYNAMO_SHARD",
    "DYNAMO_SHARD_COUNT",
    # When this suite itself runs under xdist, its inner runs are not workers.
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
)


@pytest.fixture
def no_selection_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs must not inherit a CI job's pipeline or framework."""
    for name in SELECTION_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def full_machine(
    no_selection_from_the_environment: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A machine that can run every test: 8 GPUs (the count override) and
    every framework package importable (empty stand-ins), so selection tests
    see selection only, not hardware skips."""
    site = tmp_path_factory.mktemp("frameworks")
    for package in ("vllm", "sglang", "tensorrt_llm"):
        (site / package).mkdir()
        (site / package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("DYNAMO_GPUS", "8")
