"""GPU awareness: the NVML probe's inventory and the header line, and what
to do with the tests this machine cannot run (skip, deselect or fail).
The Rust core decides for the whole batch in one call; see docs/gpus.md."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from collections.abc import Sequence
from typing import Any, Callable

import pytest

from pytest_dynamo import _audit, _numbers, _options, _state
from pytest_dynamo._core import Batch, ConfigError, GpuRules, Inventory, probe_gpus

GPU = "dynamo-gpu"
MISSING = "dynamo-gpu-missing-hardware"
ON_MISSING = ("skip", "deselect", "fail")
#: More than any machine has: a bigger count is a typo.
MAX_GPUS = _numbers.MAX_GPUS
#: How long the NVML probe may take, in seconds. NVML can take several
#: seconds to initialise a multi-GPU machine without persistence mode.
DEFAULT_NVML_TIMEOUT = 10.0
MAX_NVML_TIMEOUT = 600.0


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and 0 < seconds <= MAX_NVML_TIMEOUT else None


def _timeout_flag(value: str) -> str:
    if _seconds(value) is None:
        raise pytest.UsageError(
            f"--dynamo-nvml-timeout: '{value}' is not a number of seconds above 0, "
            f"at most {MAX_NVML_TIMEOUT:g}"
        )
    return value


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("dynamo")
    group.addoption(
        "--dynamo-gpus",
        dest="dynamo_gpus",
        type=_options.whole_number("--dynamo-gpus", 0, MAX_GPUS),
        metavar="N",
        help="Count N GPUs instead of asking NVML, e.g. to run as a smaller machine would (env DYNAMO_GPUS).",
    )
    parser.addini("dynamo_gpus", "Count this many GPUs instead of asking NVML.", default="")
    group.addoption(
        "--dynamo-nvml-lib",
        dest="dynamo_nvml_lib",
        metavar="PATH",
        help="The NVML library to load (default: libnvidia-ml.so.1 from the loader's path; "
        "env DYNAMO_NVML_LIB).",
    )
    parser.addini("dynamo_nvml_lib", "The NVML library to load, relative to the rootdir.", default="")
    group.addoption(
        "--dynamo-nvml-timeout",
        dest="dynamo_nvml_timeout",
        type=_timeout_flag,
        metavar="SECONDS",
        help=f"How long NVML may take to answer before the run counts no GPU (default "
        f"{DEFAULT_NVML_TIMEOUT:g}; env DYNAMO_NVML_TIMEOUT).",
    )
    parser.addini(
        "dynamo_nvml_timeout",
        "How long NVML may take to answer, in seconds, before the run counts no GPU.",
        default=f"{DEFAULT_NVML_TIMEOUT:g}",
    )
    group.addoption(
        "--dynamo-on-missing-hardware",
        dest="dynamo_on_missing_hardware",
        type=_options.choice("--dynamo-on-missing-hardware", ON_MISSING),
        metavar="ACTION",
        help="Tests this machine cannot run (GPUs, model, VRAM, framework): skip (default), "
        "deselect, or fail them (env DYNAMO_ON_MISSING_HARDWARE).",
    )
    parser.addini(
        "dynamo_on_missing_hardware",
        "Tests this machine cannot run: skip, deselect or fail.",
        default="skip",
    )
    group.addoption(
        "--dynamo-max-vram-gib",
        dest="dynamo_max_vram_gib",
        type=_gib("--dynamo-max-vram-gib"),
        metavar="N",
        help="A VRAM budget: deselect tests whose VRAM marker asks for more than N GiB, and GPU "
        "tests without a VRAM marker (env DYNAMO_MAX_VRAM_GIB).",
    )
    parser.addini("dynamo_max_vram_gib", "VRAM budget in GiB (see --dynamo-max-vram-gib).", default="")
    _audit.add_options(parser)


def _is_gib(value: str) -> bool:
    try:
        gib = float(value)
    except ValueError:
        return False
    return math.isfinite(gib) and gib >= 0


def _gib(name: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not _is_gib(value):
            raise pytest.UsageError(f"{name}: '{value}' is not a number of GiB (0 or more)")
        return value.strip()

    check.__name__ = name
    return check


def vram_budget(config: pytest.Config) -> tuple[float | None, str]:
    """The VRAM budget in GiB and where it was set (flag, env, ini), or None."""
    value, where = _options.setting(config, "dynamo_max_vram_gib", "DYNAMO_MAX_VRAM_GIB")
    if not value.strip():
        return None, ""
    if not _is_gib(value.strip()):
        raise _options.usage_error(f"{where}: not a number of GiB (0 or more); fix or unset it")
    return float(value), where


def gpu_count(config: pytest.Config) -> tuple[int | None, str]:
    _, where = _options.setting(config, "dynamo_gpus", "DYNAMO_GPUS")
    count = _options.get_int(config, "dynamo_gpus", 0, MAX_GPUS, env="DYNAMO_GPUS")
    return count, where if count is not None else ""


def nvml_timeout(config: pytest.Config) -> float:
    """How long the probe and the audit wait for NVML, in seconds."""
    value, where = _options.setting(config, "dynamo_nvml_timeout", "DYNAMO_NVML_TIMEOUT")
    if not value.strip():
        return DEFAULT_NVML_TIMEOUT
    seconds = _seconds(value)
    if seconds is None:
        raise pytest.UsageError(
            f"pytest-dynamo: {where}: not a number of seconds above 0, at most {MAX_NVML_TIMEOUT:g}; "
            "fix or unset it"
        )
    return seconds


def nvml_lib(config: pytest.Config) -> str | None:
    """The NVML library named by the user; a path that does not exist is an error."""
    value, where = _options.setting(config, "dynamo_nvml_lib", "DYNAMO_NVML_LIB")
    if not value:
        return None
    if "/" not in value:
        return value  # a bare name: the dynamic loader searches for it
    base = config.rootpath if where.startswith("dynamo_nvml_lib =") else os.getcwd()
    path = os.path.join(base, value)
    if not os.path.exists(path):
        raise pytest.UsageError(
            f"pytest-dynamo: {where}: no such file {path}; point it at libnvidia-ml.so.1 or unset it"
        )
    return path


def installed(package: str) -> bool:
    """Whether a top-level package can be imported, without importing it."""
    try:
        return importlib.util.find_spec(package) is not None
    except ValueError:  # in sys.modules without a spec: it is there
        return True


def _inventory_json(config: pytest.Config) -> str:
    """The probe's inventory as JSON, probed once per run: the xdist
    controller hands it to the workers."""
    lib = nvml_lib(config)
    count, where = gpu_count(config)
    timeout = nvml_timeout(config)

    def probe() -> str:
        # With a count set by hand NVML is not asked at all.
        found = probe_gpus(lib, os.environ.get("CUDA_VISIBLE_DEVICES"), count, where or None, timeout)
        config.stash[PROBED] = found
        return found.to_json()

    found: str = _state.shared(config, "inventory", probe)
    return found


#: The core's inventory in this process, passed to its calls as it is.
PROBED = pytest.StashKey[Inventory]()


def probed(config: pytest.Config) -> Inventory:
    """The NVML probe's inventory as the core's object, once per process."""
    text = _inventory_json(config)
    if PROBED not in config.stash:  # an xdist worker: the controller probed
        config.stash[PROBED] = Inventory.from_json(text)
    return config.stash[PROBED]


def inventory(config: pytest.Config) -> dict[str, Any]:
    """The NVML probe's inventory as plain data (what the records and
    ``config.stash[_state.INVENTORY]`` show), probed once per run."""
    found: dict[str, Any] = json.loads(_inventory_json(config))
    return found


class GpuPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        try:
            self.rules: GpuRules = _state.engine(config).gpu_rules()
        except ConfigError as err:
            raise _options.usage_error(err) from None
        config.addinivalue_line(
            "markers",
            f"{self.rules.vram_marker}(gib): needs a GPU with at least this much memory, in GiB "
            "(skipped where no visible GPU has it)",
        )
        self.on_missing = _options.get_choice(
            config, "dynamo_on_missing_hardware", ON_MISSING, "DYNAMO_ON_MISSING_HARDWARE"
        )
        lib = nvml_lib(config)
        timeout = nvml_timeout(config)
        self.inventory = probed(config)
        config.stash[_state.INVENTORY] = inventory(config)
        self.audit = _audit.AuditPlugin(config, self.rules, lib, timeout)
        config.pluginmanager.register(self.audit, _audit.AUDIT)
        self.budget, self.budget_where = vram_budget(config)
        #: Tests the budget deselected: (above it, without a VRAM marker).
        self.over_budget: tuple[int, int] | None = None

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = [self.inventory.describe()]
        if self.budget is not None:
            lines.append(
                f"dynamo VRAM budget: {_number(self.budget)} GiB ({self.budget_where}): tests above it "
                f"and GPU tests without a {self.rules.vram_marker} marker are deselected"
            )
        return lines

    def apply_budget(self, batch: Batch, items: list[pytest.Item], batched: Sequence[pytest.Item]) -> None:
        """Deselect what the VRAM budget leaves out (a budget, not what the machine has)."""
        if self.budget is None:
            return
        try:
            budget = batch.vram_budget(self.rules, self.budget)
        except ConfigError as err:
            raise _options.usage_error(err) from None
        over = {id(batched[p]) for p in budget.over}
        unknown = {id(batched[p]) for p in budget.unknown}
        dropped = [item for item in items if id(item) in over or id(item) in unknown]
        counts = (
            sum(1 for item in dropped if id(item) in over),
            sum(1 for item in dropped if id(item) in unknown),
        )
        self.over_budget = counts
        if _state.is_worker(self.config):
            self.config.workeroutput["dynamo_vram_budget"] = list(counts)  # type: ignore[attr-defined]
        if dropped:
            gone = {id(item) for item in dropped}
            items[:] = [item for item in items if id(item) not in gone]
            self.config.hook.pytest_deselected(items=dropped)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        counts = output.get("dynamo_vram_budget")
        if counts and self.over_budget is None:
            self.over_budget = (int(counts[0]), int(counts[1]))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.budget is None or not self.over_budget or not sum(self.over_budget):
            return
        over, unknown = self.over_budget
        terminalreporter.write_sep("-", "pytest-dynamo VRAM budget")
        terminalreporter.write_line(
            f"{over + unknown} deselected by the VRAM budget of {_number(self.budget)} GiB "
            f"({self.budget_where})"
        )
        if over:
            terminalreporter.write_line(
                f"  {over:>6} {self.rules.vram_marker} above {_number(self.budget)} GiB"
            )
        if unknown:
            terminalreporter.write_line(
                f"  {unknown:>6} GPU tests without a {self.rules.vram_marker} marker "
                "(unknown VRAM is over budget)"
            )

    def decide(self, batch: Batch, items: list[pytest.Item], batched: Sequence[pytest.Item]) -> None:
        """``batched``: the items in the batch's order; ``items``: those still selected."""
        self.apply_budget(batch, items, batched)
        missing = [p for p in batch.framework_packages(self.rules) if not installed(p)]
        try:
            hardware = batch.hardware(self.rules, self.inventory, missing)
        except ConfigError as err:
            raise _options.usage_error(err) from None
        self.audit.attach(hardware)
        refused = hardware.by_position()
        reasons, positions, which = refused.reasons, refused.positions, refused.which
        if not positions:
            return
        if self.on_missing == "skip":
            # One skip mark per distinct reason: making a mark per test was
            # most of this step's time on large suites. A test that another
            # plugin deselected gets its mark too; it never runs.
            # What ``item.add_marker(mark)`` does, without its per-call
            # import and checks: a large suite skips thousands of tests here.
            marks = [pytest.mark.skip(reason=reason).mark for reason in reasons]
            for position, n in zip(positions, which):
                item = batched[position]
                item.keywords["skip"] = marks[n]
                item.own_markers.append(marks[n])
            return
        cannot = {id(batched[position]): reasons[n] for position, n in zip(positions, which)}
        if self.on_missing == "deselect":
            kept = [item for item in items if id(item) not in cannot]
            if len(kept) < len(items):
                dropped = [item for item in items if id(item) in cannot]
                items[:] = kept
                self.config.hook.pytest_deselected(items=dropped)
        else:
            failing = {item.nodeid: cannot[id(item)] for item in items if id(item) in cannot}
            if failing:
                self.config.pluginmanager.register(MissingHardware(failing), MISSING)


def _number(gib: float) -> str:
    """``24.0`` -> ``24``, ``7.5`` -> ``7.5``: as the user wrote it."""
    return str(int(gib)) if gib.is_integer() else str(gib)


class MissingHardware:
    """``dynamo_on_missing_hardware = fail``: registered only when some test
    must fail, so other runs pay nothing per test for it."""

    def __init__(self, failing: dict[str, str]) -> None:
        #: nodeid -> why this machine cannot run it.
        self.failing = failing

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        reason = self.failing.get(item.nodeid)
        if reason is not None:
            pytest.fail(
                f"pytest-dynamo: this machine cannot run it: {reason} (dynamo_on_missing_hardware = fail)",
                pytrace=False,
            )


def register(config: pytest.Config) -> None:
    """Probe once (the xdist controller hands its inventory to the workers)."""
    config.pluginmanager.register(GpuPlugin(config), GPU)


def apply(
    config: pytest.Config, batch: Batch, items: list[pytest.Item], batched: Sequence[pytest.Item]
) -> None:
    """Skip, deselect or fail the tests this machine cannot run; ``batched``
    are the items in the batch's order."""
    plugin = config.pluginmanager.get_plugin(GPU)
    if isinstance(plugin, GpuPlugin):
        plugin.decide(batch, items, batched)
