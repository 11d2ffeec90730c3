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
    def pipelines(self) -> Pipelines:
        """Build the built-in pipelines with `[tool.pytest-dynamo.pipelines]` and
        `[tool.pytest-dynamo.frameworks]` applied. Raises `ConfigError`."""

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
    def select(
        self,
        pipelines: Pipelines,
        pipeline: str | None,
        stage: str | None,
        framework: str | None,
        positions: Sequence[int] | None = None,
    ) -> Selection:
        """Select for a pipeline (and stage) and a framework among the tests
        pytest still runs: `positions` holds their batch indices in their
        order (None: the whole batch, in order)."""
    def plan(
        self,
        pipelines: Pipelines,
        pipeline: str | None,
        stage: str | None,
        framework: str | None,
        positions: Sequence[int] | None = None,
        durations: str | None = None,
    ) -> str:
        """The `--dynamo-plan` text for one pipeline (and stage) or, with
        `pipeline` None, for all of them. `positions` are the batch indices of
        the tests -m/-k left (None: all); `durations` a pytest-split durations
        file. Raises `ConfigError`."""

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

_Stage = tuple[str, str, str]

@final
class Pipelines:
    """The pipelines, stages and framework rules of one run."""

    def describe(self) -> list[tuple[str, list[str], str, str | None, str, list[_Stage]]]:
        """Every pipeline: `(name, aliases, lifecycle, gating or None, description,
        [(stage, expression, machine)])`."""
    def resolve(self, pipeline: str, stage: str | None = None) -> tuple[str, str | None]:
        """The canonical pipeline name (aliases resolved) and the stage, checked.
        An unknown one raises `ConfigError` listing the known ones."""
    def framework(self, name: str, source: str) -> str:
        """A framework name given by `source` (a flag or variable), checked
        against the framework markers of the taxonomy."""
    @property
    def default_framework(self) -> str | None:
        """The configured default framework (`[tool.pytest-dynamo.frameworks] default`)."""
    @property
    def agnostic(self) -> str:
        """What happens to tests without a framework marker: `keep` or `drop`."""
    def changed_framework(
        self, rootdir: str, base: str, default: tuple[str, str] | None
    ) -> tuple[str | None, str]:
        """`auto`: run `git diff --name-only BASE...HEAD` in `rootdir` and choose
        the one framework the changes touch, else `default` (`(name, where it
        came from)`, or None for all). Returns `(framework or None, why)`."""

@final
class Selection:
    """Which of the tests handed to `Batch.select` are kept, and why not."""

    def keep(self) -> list[bool]:
        """One flag per test handed in, in order: True to run it."""
    def stages(self) -> list[str | None]:
        """One entry per kept test, in order: the first stage that selects it
        (None without a pipeline)."""
    def counts(self) -> dict[str, int]:
        """Deselected tests by reason: `lifecycle`, `no_lifecycle`, `stage`, `framework`."""
    def non_gating(self) -> list[str]:
        """Node ids of kept tests that do not gate the pipeline."""
    @property
    def selected(self) -> int:
        """How many of the tests handed in are kept."""

_LintFinding = tuple[str, int, int, str, str, str, str, list[str]]

def lint(
    paths: Sequence[str],
    *,
    invocation_dir: str,
    rootdir: str | None = None,
    config_file: str | None = None,
    dynamo_config: str | None = None,
    strict_unresolved: bool = False,
) -> LintReport:
    """Lint the markers of the tests under `paths` without importing them.
    Raises `ConfigError` for a bad configuration or a path that does not exist."""

@final
class LintReport:
    """What `lint` found: findings grouped by place, and counts."""

    @property
    def errors(self) -> int:
        """Findings of error severity (the command fails when there is any)."""
    @property
    def warnings(self) -> int:
        """Findings of warning severity."""
    @property
    def files(self) -> int:
        """Test files linted."""
    @property
    def tests(self) -> int:
        """Tests found."""
    @property
    def unresolved(self) -> int:
        """Tests whose markers are not all known statically."""
    @property
    def rootdir(self) -> str:
        """The pytest rootdir the node ids are relative to."""
    def nodeids(self) -> list[str]:
        """The node id of every test found, file by file."""
    def text(self) -> str:
        """`path:line:col: CODE message (fix: ...)` lines and a summary."""
    def json(self) -> str:
        """The findings as JSON."""
    def sarif(self) -> str:
        """The findings as SARIF 2.1.0."""
    def findings(self) -> list[_LintFinding]:
        """`(path, line, column, code, severity, message, fix, [nodeid])` per finding."""
