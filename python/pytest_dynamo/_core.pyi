"""The Rust core of pytest-dynamo (PyO3). Typed stub with the docstrings."""

from collections.abc import Sequence
from typing import Any, final

__version__: str

class ConfigError(Exception):
    """A configuration value, file or flag of pytest-dynamo is wrong.

    The message names it and the fix."""

_Mark = tuple[str, tuple[Any, ...], dict[str, Any]]
_Item = tuple[str, int, list[_Mark]]

@final
class Engine:
    """The taxonomy and configuration of one pytest run."""

    @staticmethod
    def load(rootdir: str, config_file: str | None = None) -> Engine:
        """Load `[tool.pytest-dynamo]` from the rootdir's pyproject.toml, or the
        file `config_file` names. Raises `ConfigError` with the key and the fix."""
    @property
    def source(self) -> str | None:
        """The file the configuration came from, or None for the built-in defaults."""
    def markers(self) -> list[tuple[str, str, str]]:
        """Every marker as `(name, category, description)`, category by category."""
    def aliases(self) -> list[tuple[str, str]]:
        """Every alias as `(alias, canonical)`."""
    def categories(self) -> list[tuple[str, str, int, int | None]]:
        """Every category as `(name, description, min, max)`; max None is unlimited."""
    def ingest(self, items: Sequence[_Item], registered: Sequence[str]) -> Batch:
        """Take every collected item at once: `(nodeid, line, [(name, args, kwargs)])`.
        `registered` lists markers registered outside the taxonomy."""
    def gpu_rules(self) -> GpuRules:
        """The GPU rules; raises `ConfigError` naming the key and the fix."""

@final
class Batch:
    """The collected items of one run, their markers resolved once."""

    def __len__(self) -> int: ...
    def validate(self) -> Validation:
        """Apply the marker rules to every item."""
    def framework_packages(self, rules: GpuRules) -> list[str]:
        """The packages the batch's framework markers need, to look up once each."""
    def hardware(self, rules: GpuRules, inventory_json: str, missing_packages: Sequence[str]) -> Hardware:
        """Decide for every test at once against the inventory (JSON) and the
        packages found missing. Raises `ConfigError` for a VRAM marker without
        a number."""

@final
class Validation:
    """The outcome of the collection-time rules."""

    @property
    def count(self) -> int:
        """How many tests break the rules."""
    @property
    def checked(self) -> int:
        """How many tests were checked."""
    @property
    def headline(self) -> str:
        """`N tests in M files break the marker rules (of K checked)`."""
    def files(self) -> list[tuple[str, int, str]]:
        """`(file, tests, report text)` per file with findings."""
    def render(self) -> str:
        """The whole report: headline and every file."""
    def findings(self) -> list[tuple[str, int, list[tuple[str, str, str]]]]:
        """`(nodeid, line, [(code, message, fix)])` per offending test."""
    def aliases(self) -> list[tuple[str, str, int, str, int]]:
        """Deprecated aliases in use: `(alias, canonical, tests, first nodeid, its line)`."""

# GPU awareness (docs/gpus.md)

def probe_gpus(
    nvml_lib: str | None = None,
    cuda_visible_devices: str | None = None,
    count: int | None = None,
    count_label: str | None = None,
) -> str:
    """Probe NVML once and apply `CUDA_VISIBLE_DEVICES`; the inventory as JSON.
    `count` overrides the number of GPUs (`count_label` says by what)."""

def describe_gpus(inventory_json: str) -> str:
    """The header line for an inventory (JSON)."""

@final
class GpuRules:
    """The GPU rules of one run: `[tool.pytest-dynamo.gpu]` checked against the taxonomy."""

    @property
    def vram_marker(self) -> str:
        """The marker that carries a test's VRAM need in GiB."""

@final
class Hardware:
    """What the machine can run of one batch."""

    def decisions(self) -> list[tuple[str, str]]:
        """`(nodeid, reason)` of every test this machine cannot run."""
    @property
    def gpu_tests(self) -> int:
        """How many `gpu_N` tests (N >= 1) this machine runs: the audited ones."""

@final
class Audit:
    """The lowest-hardware audit of one process: samples NVML while each
    `gpu_N` test runs, and reports at the end."""

    def __new__(cls, rules: GpuRules, nvml_lib: str | None, interval_s: float, run_pid: int) -> Audit:
        """`run_pid`: the run's root process (the xdist controller, or this one)."""
    def attach(self, hardware: Hardware) -> None:
        """Which tests to audit: the batch's hardware decisions."""
    def start(self, nodeid: str) -> bool:
        """Begin sampling if `nodeid` is a `gpu_N` test; True when it is."""
    def stop(self, nodeid: str, passed: bool) -> tuple[int, float] | None:
        """End sampling of `nodeid`; `(GPUs used, peak MiB on one GPU)`, or None
        when it was not sampled or the figures may miss some of its GPU work."""
    def cancel(self) -> None:
        """Stop sampling without recording (the test did not get to run)."""
    def export(self) -> str:
        """Everything recorded, as JSON (an xdist worker sends it to the controller)."""
    def absorb(self, exported: str) -> None:
        """Merge what another process recorded (`export`'s JSON)."""
    def failing(self) -> int:
        """How many tests are marked with more or fewer GPUs than they used."""
    def render(self) -> str:
        """The end-of-run report; empty when there is nothing to say."""
    @property
    def samples(self) -> int:
        """NVML samples taken in this process so far."""
    def close(self) -> None:
        """Stop the sampling thread (idempotent)."""
