"""The Rust core of pytest-dynamo (PyO3). Typed stub with the docstrings."""

from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any, final

import pytest

__version__: str
PROPERTY_FACTS: str
"""`report.user_properties` name: the test's facts as JSON."""
PROPERTY_FLOW_ID: str
"""`report.user_properties` name: the test's flow id."""
PROPERTY_EXEMPT: str
"""`report.user_properties` name: why a failure of the test does not gate."""
PROPERTY_PARALLEL_GPUS: str
"""`report.user_properties` name: the GPUs a GPU-parallel run gave the test."""
PROPERTY_GPUS_USED: str
"""`report.user_properties` name: how many GPUs the audit saw the test use."""
PROPERTY_GPU_PEAK_MIB: str
"""`report.user_properties` name: the peak MiB on one GPU the audit saw."""
PROPERTY_METRIC: str
"""`report.user_properties` name: a metric from the `dynamo_metric` fixture."""
ATTEMPTS_ATTRIBUTE: str
"""The attribute of a test's last teardown report listing its earlier attempts."""
REPORT_FAILED: int
"""`Recorder.report` flag: the report failed."""
REPORT_FINISHED: int
"""`Recorder.report` flag: the report ended its test, whose line was made."""
REPORT_RETRIED: int
"""`Recorder.report` flag: the report ended an attempt that is retried."""
DOCS_URL: str
"""The documentation of this version, ending in `/docs/`: messages name pages under it."""

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
    @staticmethod
    def builtin() -> Engine:
        """The built-in taxonomy and defaults, reading no file."""
    @property
    def source(self) -> str | None:
        """The file the configuration came from, or None for the built-in defaults."""
    @property
    def note(self) -> str | None:
        """Why the configuration is not the rootdir's own (a nested pytest root
        using the nearest table above it), or None."""
    @property
    def shard_group(self) -> str:
        """What `--dynamo-shard` keeps together: "test", "class" or "module"
        (`[tool.pytest-dynamo.shards] group`)."""
    def markers(self) -> list[MarkerInfo]:
        """Every marker of the taxonomy, category by category."""
    def suggest(self, name: str) -> str | None:
        """The taxonomy's marker that a misspelled `name` most likely means, if any."""
    def aliases(self) -> list[MarkerAlias]:
        """Every alias and the marker it stands for, sorted by alias."""
    def categories(self) -> list[CategoryInfo]:
        """Every category of the taxonomy, in its order."""
    def ingest(self, items: Sequence[_Item], registered: Sequence[str]) -> Batch:
        """Take every collected item at once: `(nodeid, line, [(name, args, kwargs)])`.
        `registered` lists markers registered outside the taxonomy."""
    def ingest_items(self, items: list[pytest.Item], registered: Sequence[str]) -> Batch:
        """Take every collected pytest item at once, reading each one's marks
        from its nodes as `iter_markers` would. `registered` lists markers
        registered outside the taxonomy."""
    def gpu_rules(self) -> GpuRules:
        """The GPU rules; raises `ConfigError` naming the key and the fix."""
    def parallel(self) -> ParallelSettings:
        """`[tool.pytest-dynamo.parallel]`, checked at load."""
    @property
    def retries_transient(self) -> bool:
        """Whether `[tool.pytest-dynamo.retries] transient` names any pattern."""
    def transient_match(self, text: str) -> str | None:
        """The first `[tool.pytest-dynamo.retries] transient` pattern found in
        a failure's text, or None."""
    def pipelines(self) -> Pipelines:
        """Build the built-in pipelines with `[tool.pytest-dynamo.pipelines]` and
        `[tool.pytest-dynamo.frameworks]` applied. Raises `ConfigError`."""
    def run_policy(self, rootdir: str) -> RunPolicy:
        """Read the quarantine file and the owners table the configuration names.
        Raises `ConfigError` naming the file or key and the fix."""

@final
class MarkerInfo:
    """A marker of the taxonomy."""

    @property
    def name(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def description(self) -> str:
        """One line, as `pytest --markers` shows it."""

@final
class MarkerAlias:
    """An alias of a marker (a deprecated or alternative spelling)."""

    @property
    def alias(self) -> str: ...
    @property
    def canonical(self) -> str:
        """The marker it stands for."""

@final
class CategoryInfo:
    """A category of the taxonomy and how many of its markers a test carries."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def min(self) -> int: ...
    @property
    def max(self) -> int | None:
        """None: no upper limit."""

@final
class Batch:
    """The collected items of one run, their markers resolved once."""

    def __len__(self) -> int: ...
    def validate(self, retrier: str | None = None) -> Validation:
        """Apply the marker rules to every item. ``retrier`` names the plugin
        that retries flaky tests (None: ours), whose arguments ``flaky`` takes."""
    def flaky_problems(self, retrier: str) -> list[FlakyProblem]:
        """Each test whose ``flaky`` marker the plugin named ``retrier``
        (rerunfailures or flaky) cannot use."""
    def gpu_needs(self, rules: GpuRules) -> GpuNeeds:
        """Every test's GPU need from its `gpu_N` and VRAM markers. Raises
        `ConfigError` for a VRAM marker without a number."""
    def framework_packages(self, rules: GpuRules) -> list[str]:
        """The packages the batch's markers need (frameworks, `[packages]`), to
        look up once each."""
    def vram_budget(self, rules: GpuRules, max_gib: float) -> VramBudget:
        """The tests a VRAM budget of `max_gib` leaves out: those whose VRAM
        marker exceeds it, and GPU tests without one. Raises `ConfigError`
        for a VRAM marker without a number."""
    def hardware(self, rules: GpuRules, inventory: Inventory, missing_packages: Sequence[str]) -> Hardware:
        """Decide for every test at once against the inventory and the packages
        found missing. Raises `ConfigError` for a VRAM marker without a number."""
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
        *,
        shards: int = 1,
        gpu_parallel: bool = False,
    ) -> str:
        """The `--dynamo-plan` text for one pipeline (and stage) or, with
        `pipeline` None, for all of them. `positions` are the batch indices of
        the tests -m/-k left (None: all); `durations` a pytest-split durations
        file. `shards`: machines per stage (`--dynamo-shard=K/N`'s N);
        `gpu_parallel`: every stage packs GPU tests (`--dynamo-gpu-parallel`).
        Budgets are checked against wall times estimated that way. Raises
        `ConfigError`."""
    def partition_packed(
        self,
        positions: Sequence[int] | None,
        count: int,
        group: str,
        pipeline: str,
        stage: str,
        durations: str | None = None,
    ) -> ShardPlan:
        """Split the tests at `positions` (batch indices, in order; None: all)
        into `count` shards whose loads are makespans on the machine class of
        `pipeline`'s `stage` (GPU tests packed as `--dynamo-gpu-parallel`
        runs them). Raises `ConfigError` when the stage's machine class is not
        described under `[machines]`, or for a bad durations file or VRAM marker."""
    def record_facts(
        self,
        policy: RunPolicy,
        nodeids: Sequence[str],
        selection: Selection | None,
        default_reruns: int,
        retries: bool,
    ) -> CollectedFacts:
        """The facts of the tests `nodeids` names, for their records, at once,
        with what collection must know before any test runs. `selection` is
        the run's `Batch.select` result (None: no pipeline or framework
        selected): each kept test's stage and gating; `retries` is False
        when pytest-rerunfailures retries instead. Raises `ValueError` for a
        selection made over another batch."""

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
    def files(self, per_file: int | None = None) -> list[FileFindings]:
        """Each file with findings and its part of the report; each text lists
        at most `per_file` tests (None: all) and says how many it left out."""
    def render(self) -> str:
        """The whole report: headline and every file."""
    def rule_counts(self) -> str:
        """Every rule broken, one line each: its code, how many tests, what it is about."""
    def to_json(self) -> str:
        """The full list of offending tests and their problems as JSON."""
    def findings(self) -> list[TestFindings]:
        """Every offending test and its problems."""
    def aliases(self) -> list[AliasUse]:
        """The deprecated aliases the tests use."""

@final
class FileFindings:
    """One file's part of the validation report."""

    @property
    def file(self) -> str: ...
    @property
    def tests(self) -> int:
        """How many of its tests break the rules."""
    @property
    def text(self) -> str:
        """The report text for this file."""

@final
class RuleProblem:
    """A rule one test breaks, and the fix."""

    @property
    def code(self) -> str:
        """The rule's code (`DYN001`, ...)."""
    @property
    def message(self) -> str: ...
    @property
    def fix(self) -> str: ...

@final
class TestFindings:
    """A test that breaks the rules."""

    @property
    def nodeid(self) -> str: ...
    @property
    def line(self) -> int: ...
    @property
    def problems(self) -> list[RuleProblem]: ...

@final
class AliasUse:
    """A deprecated alias the tests use."""

    @property
    def alias(self) -> str: ...
    @property
    def canonical(self) -> str: ...
    @property
    def tests(self) -> int:
        """How many tests use it."""
    @property
    def first_nodeid(self) -> str:
        """The first of them, and its line."""
    @property
    def first_line(self) -> int: ...

# GPU awareness (docs/gpus.md)

def probe_gpus(
    nvml_lib: str | None = None,
    cuda_visible_devices: str | None = None,
    count: int | None = None,
    count_label: str | None = None,
    timeout_s: float = 10.0,
) -> Inventory:
    """Probe NVML once, waiting at most `timeout_s`, and apply
    `CUDA_VISIBLE_DEVICES`. `count` sets the number of GPUs instead
    (`count_label` says by what): NVML is then not asked."""

@final
class Inventory:
    """The GPUs a run sees: the probe's inventory, passed from one core call to
    the next as it is. Its JSON (`to_json`) is what the xdist controller
    hands to the workers and what the records' run-start line carries."""

    @staticmethod
    def from_json(text: str) -> Inventory:
        """The inventory `to_json` wrote (another process's probe)."""
    def to_json(self) -> str: ...
    def describe(self) -> str:
        """The report header's line."""
    @property
    def visible(self) -> int:
        """How many GPUs a CUDA program would see."""
    @property
    def devices(self) -> list[GpuDevice]:
        """The visible devices NVML described, in `CUDA_VISIBLE_DEVICES` order
        (fewer than `visible` when the count was set by hand)."""
    @property
    def cuda_visible_devices(self) -> str | None:
        """`CUDA_VISIBLE_DEVICES` as the probe saw it."""
    @property
    def reason(self) -> str | None:
        """Why no GPU is visible, or what set the count."""

@final
class GpuDevice:
    """One visible GPU (or MIG instance) of an `Inventory`."""

    @property
    def index(self) -> int:
        """The NVML (physical) index; a MIG instance has its GPU's."""
    @property
    def name(self) -> str: ...
    @property
    def uuid(self) -> str | None: ...
    @property
    def memory_total_mib(self) -> float | None: ...
    @property
    def memory_free_mib(self) -> float | None: ...
    @property
    def mig(self) -> bool:
        """True for a MIG instance, and for a whole GPU that has MIG mode on."""

@final
class GpuRules:
    """The GPU rules of one run: `[tool.pytest-dynamo.gpu]` checked against the taxonomy."""

    @property
    def vram_marker(self) -> str:
        """The marker that carries a test's VRAM need in GiB."""

@final
class VramBudget:
    """The tests a VRAM budget leaves out, by batch position."""

    @property
    def over(self) -> list[int]:
        """Tests whose VRAM marker asks for more than the budget."""
    @property
    def unknown(self) -> list[int]:
        """GPU tests without a VRAM marker: unknown means unsafe."""

@final
class Hardware:
    """What the machine can run of one batch."""

    def by_position(self) -> Refusals:
        """The tests this machine cannot run, flat: the distinct reasons, and
        for each such test its position in the batch and its reason's index.
        Flat lists of numbers make no Python object per test, which on a
        large suite costs garbage-collection time."""
    @property
    def gpu_tests(self) -> int:
        """How many `gpu_N` tests (N >= 1) this machine runs: the audited ones."""

@final
class Audit:
    """The lowest-hardware audit of one process: samples NVML while each
    `gpu_N` test runs, and reports at the end."""

    def __new__(
        cls,
        rules: GpuRules,
        nvml_lib: str | None,
        interval_s: float,
        run_pid: int,
        nvml_timeout_s: float = 10.0,
    ) -> Audit:
        """`run_pid`: the run's root process (the xdist controller, or this one)."""
    def attach(self, hardware: Hardware) -> None:
        """Which tests to audit: the batch's hardware decisions."""
    def start(self, nodeid: str) -> bool:
        """Begin sampling if `nodeid` is a `gpu_N` test; True when it is."""
    def stop(self, nodeid: str, passed: bool) -> GpuUsage | None:
        """End sampling of `nodeid`: what it used, or None when it was not
        sampled or the figures may miss some of its GPU work."""
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

@final
class Refusals:
    """The tests a machine cannot run, as flat lists (see `Hardware.by_position`)."""

    @property
    def reasons(self) -> list[str]:
        """The distinct reasons."""
    @property
    def positions(self) -> list[int]:
        """Each refused test's position in the batch."""
    @property
    def which(self) -> list[int]:
        """For each of them, the index of its reason in `reasons`."""

@final
class GpuUsage:
    """What one `gpu_N` test used, as the audit sampled it."""

    @property
    def gpus_used(self) -> int:
        """How many GPUs it used."""
    @property
    def peak_mib(self) -> float:
        """The peak memory on any one GPU, in MiB."""

@final
class StageInfo:
    """A stage of a pipeline, as configured."""

    @property
    def name(self) -> str: ...
    @property
    def expression(self) -> str:
        """The `-m` expression that selects its tests."""
    @property
    def machine(self) -> str:
        """The machine it runs on (free text from the configuration)."""

@final
class PipelineInfo:
    """A pipeline, as configured."""

    @property
    def name(self) -> str: ...
    @property
    def aliases(self) -> list[str]: ...
    @property
    def lifecycle(self) -> str:
        """The lifecycle marker its tests carry."""
    @property
    def gating(self) -> str | None:
        """The expression of the tests whose failures fail the run; None: all."""
    @property
    def description(self) -> str: ...
    @property
    def stages(self) -> list[StageInfo]: ...

@final
class ResolvedStage:
    """A pipeline and stage as named, checked and resolved."""

    @property
    def pipeline(self) -> str:
        """The canonical pipeline name (an alias resolved)."""
    @property
    def stage(self) -> str | None: ...

@final
class FrameworkChoice:
    """The framework `auto` chose from the changed files, and why."""

    @property
    def framework(self) -> str | None:
        """None: every framework."""
    @property
    def why(self) -> str: ...

@final
class Pipelines:
    """The pipelines, stages and framework rules of one run."""

    def describe(self) -> list[PipelineInfo]:
        """Every pipeline and its stages."""
    def resolve(self, pipeline: str, stage: str | None = None) -> ResolvedStage:
        """The canonical pipeline name (aliases resolved) and the stage, checked.
        An unknown one raises `ConfigError` listing the known ones."""
    def framework(self, name: str, source: str) -> str:
        """A framework name given by `source` (a flag or variable), checked
        against the framework markers of the taxonomy."""
    def framework_from_env(self, var: str, value: str) -> str:
        """A framework named by the environment variable `var`, one that
        `[tool.pytest-dynamo.frameworks] env` lists; a value that is no
        framework raises `ConfigError` naming the variable, value and key."""
    @property
    def framework_env(self) -> str | None:
        """The environment variable that names the framework, if the
        configuration reads one (`[tool.pytest-dynamo.frameworks] env`)."""
    @property
    def default_framework_env(self) -> str | None:
        """The environment variable that gives the default framework, if any."""
    def stage_options(self, pipeline: str, stage: str) -> list[str]:
        """The pytest options of a stage (`options = [...]`); raises
        `ConfigError` for an unknown pipeline or stage."""
    @property
    def default_framework(self) -> str | None:
        """The configured default framework (`[tool.pytest-dynamo.frameworks] default`)."""
    @property
    def agnostic(self) -> str:
        """What happens to tests without a framework marker: `keep` or `drop`."""
    def changed_framework(self, rootdir: str, base: str, default: tuple[str, str] | None) -> FrameworkChoice:
        """`auto`: run `git diff --name-only BASE...HEAD` in `rootdir` and choose
        the one framework the changes touch, else `default` (`(name, where it
        came from)`, or None for all)."""

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
    def non_gating_reason(self) -> str | None:
        """Why the tests `non_gating` names do not gate:
        `non-gating in the NAME pipeline (gating: EXPRESSION)`; None without
        a pipeline that has a gating expression."""
    @property
    def selected(self) -> int:
        """How many of the tests handed in are kept."""

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
    @property
    def config_note(self) -> str | None:
        """Where the configuration came from when it is not the rootdir's own
        (a nested pytest root), or None."""
    def nodeids(self) -> list[str]:
        """The node id of every test found, file by file."""
    def text(self) -> str:
        """`path:line:col: CODE message (fix: ...)` lines and a summary."""
    def json(self) -> str:
        """The findings as JSON."""
    def sarif(self) -> str:
        """The findings as SARIF 2.1.0."""
    def findings(self) -> list[LintFinding]:
        """The findings, in the report's order (by file and place)."""

@final
class LintFinding:
    """One finding at one place, shared by every test it concerns."""

    @property
    def path(self) -> str:
        """The file, relative to the invocation directory when under it."""
    @property
    def line(self) -> int:
        """1-based line."""
    @property
    def column(self) -> int:
        """1-based column."""
    @property
    def code(self) -> str:
        """The rule's code (`DYN001`, `DYN900` ...)."""
    @property
    def severity(self) -> str:
        """`"error"` or `"warning"`."""
    @property
    def message(self) -> str:
        """What is wrong."""
    @property
    def fix(self) -> str:
        """How to fix it."""
    @property
    def tests(self) -> list[str]:
        """Node ids of the tests concerned, in collection order."""
    @property
    def count(self) -> int:
        """How many tests it concerns: more than `tests` lists when one of them
        stands for parametrizations too many to expand (`name[*]`)."""

# The -m grammar as stages use it, held against pytest's own in the tests.

_PyMark = tuple[str, tuple[Any, ...], dict[str, Any]]

def judge_marker_expression(text: str, tests: Sequence[Sequence[_PyMark]]) -> ExpressionVerdicts:
    """Parse a marker expression as pipelines and stages do, and judge each
    test (its `(name, args, kwargs)` marks); every name in the expression is
    taken as a marker of the taxonomy."""

@final
class ExpressionVerdicts:
    """A syntax error, or one verdict per test."""

    @property
    def error_column(self) -> int | None:
        """1-based column of the syntax error, None when the expression parses."""
    @property
    def error_message(self) -> str | None:
        """What is wrong, in pytest's words."""
    @property
    def verdicts(self) -> list[bool]:
        """Whether each test matches; empty after a syntax error."""

@final
class History:
    """Runs read from records files: parsed once, reported on many ways."""

    @staticmethod
    def load(paths: Sequence[str], max_decompressed: int | None = None) -> History:
        """Read records files and folders (gzip included) in parallel.
        Corrupt lines are counted and skipped; a missing path, a path that is
        not a regular file or folder, or a gzip file that decompresses to more
        than `max_decompressed` bytes (default 1 GiB) raises `ConfigError`."""
    @staticmethod
    def from_records(records: Sequence[str]) -> History:
        """Records given as JSON strings, one record each (a run's own records)."""
    @property
    def runs(self) -> int:
        """Runs read."""
    @property
    def records(self) -> int:
        """Records read (test, run start and run end lines, and unknown kinds)."""
    @property
    def corrupt(self) -> int:
        """Lines that were not records (truncated, corrupt), skipped."""
    @property
    def duplicates(self) -> int:
        """Test lines read again (same run id and node id), counted once."""
    @property
    def skipped(self) -> list[str]:
        """Entries of walked folders skipped as not regular files, as `path: why`."""
    @property
    def problems(self) -> list[str]:
        """The first corrupt lines as `file:line: why`, gzip problems, folder
        entries skipped (not regular files) and duplicate test lines."""
    def report(
        self,
        engine: Engine,
        *,
        window: int | None = None,
        min_runs: int | None = None,
        release_after: int | None = None,
        top: int = 10,
        pipeline: str | None = None,
        quarantine: str | None = None,
        now: float | None = None,
    ) -> Report:
        """Build the report. Settings left as None come from the engine's
        `[tool.pytest-dynamo.gates]`. `quarantine` is the quarantine file's path."""

@final
class Report:
    """The history report, ready to render as text, JSON, Markdown or HTML."""

    @property
    def flaky_tests_percent(self) -> float:
        """Flaky tests in percent of the tests judged (the flaky gate's measure)."""
    def text(self) -> str:
        """Plain-text tables."""
    def json(self) -> str:
        """Everything, as JSON."""
    def markdown(self) -> str:
        """A Markdown summary for a CI job page."""
    def html(self) -> str:
        """One self-contained HTML page with inline SVG charts."""
    def tickets(self) -> list[Ticket]:
        """One ready-to-file ticket per owner with something to act on."""
    def quarantine_file(self, ticket: str | None = None, owner: str | None = None) -> str:
        """The quarantine file with the suggested changes applied (released
        entries cut out, new ones appended); a new file when none was read.
        `ticket` and `owner` fill added entries that have none: an entry
        without them does not load."""

@final
class Ticket:
    """A Markdown ticket for one owner, ready to file."""

    @property
    def owner(self) -> str:
        """The owner, as the records name them (`(no owner)` for tests without one)."""
    @property
    def slug(self) -> str:
        """A file-name-safe form of the owner's name, unique among the report's tickets."""
    @property
    def body(self) -> str:
        """The ticket's Markdown body."""

@final
class GateStatus:
    """One gate's verdict."""

    @property
    def name(self) -> str:
        """The gate: flaky, performance, coverage, budget or timeouts."""
    @property
    def status(self) -> str:
        """pass, fail or skipped."""

@final
class GateOutcome:
    """The quality gates' verdicts."""

    @property
    def passed(self) -> bool:
        """True when no gate failed (skipped gates do not fail)."""
    def statuses(self) -> list[GateStatus]:
        """Each gate's name and status, in the order they ran."""
    def text(self) -> str: ...
    def json(self) -> str: ...
    def markdown(self) -> str: ...

def run_gates(
    engine: Engine,
    history: History | None = None,
    *,
    rootdir: str | None = None,
    pipeline: str | None = None,
    run_id: str | None = None,
    coverage: Sequence[str] = ...,
    coverage_baseline: Sequence[str] = ...,
    only: Sequence[str] = ...,
) -> GateOutcome:
    """Run the quality gates with the engine's `[tool.pytest-dynamo.gates]`.
    Coverage paths are files (coverage.py JSON or LCOV); when none are
    given, the configuration's `coverage_report` and `coverage_baseline`
    are used, relative to `rootdir`. `only` picks gates."""

@final
class PrometheusMetrics:
    """One run's metrics in the Prometheus text format."""

    @property
    def text(self) -> str:
        """The exposition text."""
    @property
    def tests(self) -> int:
        """Test records in the metrics."""
    @property
    def corrupt(self) -> int:
        """Test records that could not be read, left out of the metrics."""

def prometheus_text(
    records: Sequence[str], run_end: str | None = None, pipeline: str | None = None
) -> PrometheusMetrics:
    """One run's metrics in the Prometheus text format, from its test records
    and its run-end record."""

def check_pushgateway_url(url: str) -> None:
    """Raise `ConfigError` unless `url` is an http:// URL with a host."""

def push_metrics(url: str, pipeline: str, text: str, timeout_s: float = 10.0) -> str:
    """PUT `text` into the Pushgateway group of `pipeline`; returns the URL
    pushed to. Raises `ConfigError` naming the URL when the push fails."""

# Records, retries, quarantine and ownership (docs/records.md, docs/flakiness.md).

@final
class ShardPlan:
    """Where each test goes, and each shard's test count and estimated seconds."""

    @property
    def shard_of(self) -> list[int]:
        """Per test handed in, in order: its shard, 0-based."""
    @property
    def loads(self) -> list[float]:
        """Per shard: estimated seconds."""
    @property
    def counts(self) -> list[int]:
        """Per shard: how many tests."""
    @property
    def known(self) -> int:
        """How many tests had a recorded duration."""
    @property
    def assumed(self) -> float:
        """The seconds assumed for a test without a recorded duration."""

def partition_shards(
    nodeids: Sequence[str], count: int, group: str, durations: str | None = None
) -> ShardPlan:
    """Split `nodeids` into `count` shards balanced by the durations file (a
    pytest-split `.test_durations`; None: none known), keeping `group`
    ("test", "class" or "module") together. Raises `ConfigError` for a bad
    durations file, `ValueError` for a bad group or count."""

def new_run_id() -> str:
    """A new run id: 32 hex digits."""

def new_flow_id() -> str:
    """A new flow id: a random version 4 UUID (the one the core gives each test)."""

def test_id(nodeid: str) -> str:
    """The stable id of a test: the sha256 of its node id, in hex."""

def failure_reason(report: Any) -> str | None:
    """Why a failed report failed, as the records say it: the first line of
    the failure's message, cut short. Our retries note each earlier
    attempt's reason with it, so one language words every reason."""

@final
class RunPolicy:
    """The run's quarantine and owners, loaded and checked once."""

    @property
    def quarantine_file(self) -> str | None:
        """The quarantine file read, or None."""
    @property
    def strict(self) -> bool:
        """Expired quarantine entries fail the run."""
    def expired(self, run_id: str) -> list[ExpiredQuarantine]:
        """Quarantine entries past their expiry date (UTC); each is logged as a
        warning with the run id as its flow id."""

@final
class FactsTable:
    """Each collected test's facts JSON and flow id, made in the core as the
    test starts: a Python tuple per test made at collection would cost a large
    suite garbage-collection time."""

    def __len__(self) -> int: ...

@final
class TestStart:
    """Starts each test, one call each: from the collected tests' table once
    there is one, else as a test no table knows."""

    def __new__(
        cls,
        table: FactsTable | None,
        attach: bool,
        environ: MutableMapping[str, str],
        variable: str,
        key: Any,
    ) -> TestStart:
        """`table` holds the collected tests (None before collection ends, or
        for a run without one); `environ` is `os.environ` and `variable` the
        name the flow id goes under; `key` the stash key."""
    def test(self, item: Any) -> None:
        """Start `item`: give it its flow id (a new one for a test collection
        did not see), and in an xdist worker its facts and exemption (the
        table's: the pipeline's or the quarantine's)."""

@final
class CollectedFacts:
    """The collected tests' facts, and what collection must know before any
    test runs (`Batch.record_facts`)."""

    @property
    def table(self) -> FactsTable:
        """Each collected test's facts and flow id, made as the test starts."""
    @property
    def quarantined(self) -> list[Exemption]:
        """The tests the quarantine exempts from gating."""
    @property
    def problems(self) -> list[FlakyProblem]:
        """The tests whose `flaky` marker cannot be understood."""
    @property
    def reruns(self) -> dict[str, int]:
        """How many times each test marked flaky is retried, by node id."""

@final
class Exemption:
    """A test that does not gate, and why."""

    @property
    def nodeid(self) -> str: ...
    @property
    def reason(self) -> str:
        """The words gating's summary shows, e.g. `quarantined: DYN-1 (alec)`."""

@final
class FlakyProblem:
    """A test whose `flaky` marker cannot be used, and what is wrong with it."""

    @property
    def nodeid(self) -> str: ...
    @property
    def message(self) -> str: ...

@final
class Recorder:
    """One run's records: the run-start line, a line per finished test, the
    run-end line, appended to the records file when one is named. It takes
    every pytest report as it comes, and keeps each test's until the test ends."""

    def __new__(cls, run_id: str, path: str | None = None) -> Recorder:
        """Start a run's records; `path` names the records file (None: keep the
        records in memory only). Raises `ConfigError` when it cannot be opened."""
    @property
    def run_id(self) -> str:
        """The run id: 32 hex digits."""
    @property
    def path(self) -> str | None:
        """The records file, or None."""
    @property
    def started(self) -> bool:
        """Whether the run-start line was made."""
    def begin(
        self,
        rootdir: str,
        host: str,
        pipeline: str | None = None,
        stage: str | None = None,
        framework: str | None = None,
        gpus: str | None = None,
        shard: str | None = None,
    ) -> None:
        """What the run-start line will say; it is written before the first
        test's line, or with the run-end line. `gpus` is the GPU inventory as
        JSON; `shard` is `"K/N"` for one shard of a stage."""
    def start(self) -> str | None:
        """Make (and write) the run-start line now, from what `begin` gave, and
        return it; None before `begin`."""
    def use_facts(self, table: FactsTable) -> None:
        """Take this process's facts table: tests whose reports carry no facts
        (this process collected them) get theirs from it."""
    def report(self, report: Any) -> int:
        """Take one pytest report, as `pytest_runtest_logreport` sees it; the
        last teardown of a test (or a report outside the phases, from a
        crashed xdist worker) makes and writes its line. Returns bit flags:
        1, the report failed; 2, the test's line was made; 4, the report ends
        an attempt that is retried."""
    def finish_cut_short(self) -> int:
        """Record the tests cut short (an interrupted run) that got as far as
        a result; a test with only a passed setup has none. Returns how many."""
    def lines(self) -> list[str]:
        """Every test line made so far, in order."""
    def __len__(self) -> int:
        """How many test lines were made."""
    def last_junit_properties(self) -> list[tuple[str, str]]:
        """`JUnit` properties of the last test line made (see `junit_properties`)."""
    @staticmethod
    def junit_properties(line: str) -> list[tuple[str, str]]:
        """`JUnit` properties of a test line: its outcome, every attempt, its
        markers by category, its owner and flow id."""
    def failure_owners(self) -> list[tuple[str, str]]:
        """Failed tests (failed, error, quarantined-failed) with an owner:
        `(nodeid, owner)`."""
    def end(self, exit_status: int) -> str:
        """Make (and write) the run-end line, after the run-start line if no
        test wrote it."""
    def count(self, outcome: str) -> int:
        """How many tests ended with `outcome`."""
    def flaky(self) -> list[FlakyTest]:
        """The tests that passed on a retry."""
    def quarantined(self) -> list[QuarantinedTest]:
        """The quarantined tests that ran."""
    def slowest(self, n: int) -> list[SlowTest]:
        """The `n` slowest tests, slowest first."""
    def write_error(self) -> WriteError | None:
        """The first failed write to the records file and how many lines were lost."""
    def merge_durations(self, path: str) -> int:
        """Merge this run's test durations into a pytest-split durations file
        (replaced atomically). Returns how many tests the file holds."""
    @staticmethod
    def check_durations(path: str) -> None:
        """Check that a durations file (if it exists) can be read and merged."""

@final
class ExpiredQuarantine:
    """A quarantine entry past its expiry date."""

    @property
    def test(self) -> str:
        """The test's node id or pattern, as the entry writes it."""
    @property
    def ticket(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def expires(self) -> str:
        """The expiry date, `YYYY-MM-DD`."""
    @property
    def reason(self) -> str: ...

@final
class FlakyTest:
    """A test that passed on a retry."""

    @property
    def nodeid(self) -> str: ...
    @property
    def attempts(self) -> int:
        """How many attempts it took."""
    @property
    def owner(self) -> str | None: ...
    @property
    def reason(self) -> str | None:
        """The `flaky` marker's reason, if it gives one."""

@final
class QuarantinedTest:
    """A quarantined test that ran."""

    @property
    def nodeid(self) -> str: ...
    @property
    def outcome(self) -> str:
        """Its outcome (`passed`, `failed`, ...)."""
    @property
    def ticket(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def expires(self) -> str:
        """The quarantine's expiry date, `YYYY-MM-DD`."""

@final
class SlowTest:
    """One of the slowest tests of a run."""

    @property
    def nodeid(self) -> str: ...
    @property
    def seconds(self) -> float: ...
    @property
    def stage(self) -> str | None: ...

@final
class WriteError:
    """The first failed write to the records file."""

    @property
    def message(self) -> str: ...
    @property
    def lost(self) -> int:
        """How many lines were lost."""

@final
class GpuAssignment:
    """A test the GPU scheduler handed out, with its reservation."""

    @property
    def test(self) -> int:
        """The test's position in the scheduler's list."""
    @property
    def gpus(self) -> list[int]:
        """Indices into the scheduler's GPUs."""
    @property
    def ids(self) -> list[str]:
        """The GPUs as the outer `CUDA_VISIBLE_DEVICES` names them."""
    @property
    def reserved_gib(self) -> float:
        """Memory reserved on each GPU (0 for an exclusive test: it holds the GPU)."""
    @property
    def exclusive(self) -> bool:
        """The test has its GPUs to itself (no VRAM value)."""

@final
class ParallelSimulation:
    """The suite run by the scheduler on a simulated clock."""

    @property
    def makespan(self) -> float: ...
    @property
    def sequential(self) -> float:
        """The sum of the durations of the tests that run."""
    @property
    def lower_bound(self) -> float:
        """`max(longest test, GPU memory-time / total budget)`."""
    @property
    def busy(self) -> list[float]:
        """Per GPU: seconds with at least one test on it."""
    @property
    def peak_gib(self) -> list[float]:
        """Per GPU: the most memory reserved at once."""
    @property
    def starts(self) -> list[float]: ...
    @property
    def ends(self) -> list[float]: ...
    @property
    def tests(self) -> list[int]:
        """Per started test: its position in the scheduler's list."""
    @property
    def test_gpus(self) -> list[list[int]]: ...

@final
class GpuScheduler:
    """Packs tests onto GPUs by count and memory (issue #16): longest first,
    reserved on dispatch, released on report."""

    def __new__(
        cls,
        gpu_ids: Sequence[str],
        totals_gib: Sequence[float],
        gpu_slots: int,
        cpu_slots: int,
        ids: Sequence[str],
        gpus: Sequence[int],
        vram_gib: Sequence[float | None],
        durations: Sequence[float | None],
        *,
        memory_margin: float = 0.15,
        gpu_memory_gib: float | None = None,
        unknown_vram: str | float | None = None,
    ) -> GpuScheduler: ...
    def next(self, cpu_ok: bool = True, gpu_ok: bool = True) -> GpuAssignment | None:
        """The next test that fits now for a free slot of that kind, reserved."""
    def release(self, test: int) -> bool:
        """Free what a finished test held; False if it was not running."""
    def requeue(self, test: int) -> None:
        """Put a handed-out test that never ran back in the queue."""
    def stop(self) -> None:
        """Hand out nothing more (`-x`, an interrupt)."""
    @property
    def done(self) -> bool: ...
    @property
    def pending(self) -> list[int]: ...
    @property
    def unrunnable(self) -> dict[str, str]:
        """Node id -> why it will not run."""
    @property
    def budgets_gib(self) -> list[float]: ...
    @property
    def peak_gib(self) -> list[float]: ...
    def simulate(self) -> ParallelSimulation:
        """The whole suite on a simulated clock, from the start."""

@final
class Advice:
    """The decorators each test should carry, with their evidence."""

    @property
    def tests(self) -> int:
        """Tests with advice."""
    @property
    def runs(self) -> int:
        """Runs the advice was read from."""
    def text(self) -> str:
        """Per test, its decorators and their evidence."""
    def json(self) -> str: ...

def advise(
    engine: Engine, history: History, *, window: int | None = None, pipeline: str | None = None
) -> Advice:
    """The advice from the last `window` runs (default: `gates.window`) of
    `pipeline` (default: every run), with the engine's GPU rules,
    `[tool.pytest-dynamo.advice]` and `[tool.pytest-dynamo.timeouts]`."""

@final
class FileFix:
    """One file's change."""

    @property
    def path(self) -> str:
        """The file, relative to the invocation directory when under it."""
    @property
    def absolute(self) -> Path:
        """The file's absolute path, to write to."""
    @property
    def original(self) -> str:
        """The text as read."""
    @property
    def fixed(self) -> str:
        """The text with the edits (line ends and everything else untouched)."""
    @property
    def changes(self) -> list[str]:
        """`path:line: what changed`, in line order."""

@final
class FixReport:
    """What `lint --fix` or `advise --apply` would change, and what it leaves."""

    def files(self) -> list[FileFix]:
        """Files with a change, in path order."""
    @property
    def left(self) -> list[str]:
        """`path:line: what was not edited, and why`."""
    @property
    def errors(self) -> list[str]:
        """Files that could not be read or parsed, or whose edits would not parse: untouched."""
    @property
    def checked(self) -> int:
        """Test files looked at."""

def lint_fix(
    paths: Sequence[str],
    *,
    invocation_dir: str,
    rootdir: str | None = None,
    config_file: str | None = None,
    dynamo_config: str | None = None,
) -> FixReport:
    """The lint's fixable findings as edits: misspelled markers with one clear
    suggestion and deprecated aliases renamed, a second hardware marker dropped."""

def advice_fix(
    advice: Advice,
    paths: Sequence[str],
    *,
    invocation_dir: str,
    rootdir: str | None = None,
    config_file: str | None = None,
    dynamo_config: str | None = None,
) -> FixReport:
    """The advice's markers as edits of the test files under `paths` (default:
    the test paths, found as the lint finds them)."""

@final
class GpuNeeds:
    """Per test of a batch, by position: what it needs of the GPUs."""

    @property
    def gpus(self) -> list[int]:
        """GPUs needed (0: a CPU test; a VRAM or model marker implies 1)."""
    @property
    def vram_gib(self) -> list[float | None]:
        """The VRAM marker's value per GPU; None when the test has none."""

@final
class ParallelWorkers:
    """How many workers a parallel run starts (`WorkerPlan`)."""

    @property
    def workers(self) -> int: ...
    @property
    def gpu_slots(self) -> int:
        """Workers that may run GPU tests at once."""
    @property
    def cpu_slots(self) -> int:
        """Workers that may run `gpu_0` tests at once."""
    @property
    def max_gpu_tests(self) -> int:
        """The most GPU tests that can run at once on the machine."""

@final
class ParallelSettings:
    """`[tool.pytest-dynamo.parallel]` as a run reads it (checked at load)."""

    @property
    def memory_margin(self) -> float: ...
    @property
    def gpu_memory_gib(self) -> float | None: ...
    @property
    def unknown_vram(self) -> str | float:
        """`"exclusive"`, `"skip"` or a number of GiB."""
    @property
    def cpu_slots(self) -> int | None: ...
    @property
    def max_workers(self) -> int | None: ...
    @property
    def start_interval_s(self) -> float:
        """The least time between two starts on one GPU, in seconds (0: none)."""
    @property
    def check_free_memory(self) -> bool: ...
    @property
    def env(self) -> dict[str, str]:
        """Marker name -> the environment variable its first argument sets."""
    def budgets_gib(self, totals_gib: Sequence[float]) -> list[float]:
        """Each GPU's budget in GiB from its total memory."""
    def unrunnable(
        self, totals_gib: Sequence[float], gpus: Sequence[int], vram_gib: Sequence[float | None]
    ) -> list[str | None]:
        """Per test: why it can never run on GPUs of these totals, or None."""
    def worker_plan(
        self,
        totals_gib: Sequence[float],
        gpus: Sequence[int],
        vram_gib: Sequence[float | None],
        requested: int | None,
        cpu_count: int,
    ) -> ParallelWorkers:
        """The worker count for `-n auto` (`requested` None) or `-n N`."""
