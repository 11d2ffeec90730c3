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

@final
class Batch:
    """The collected items of one run, their markers resolved once."""

    def __len__(self) -> int: ...
    def validate(self) -> Validation:
        """Apply the marker rules to every item."""

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
    def aliases(self) -> list[tuple[str, str, int]]:
        """Deprecated aliases in use: `(alias, canonical, tests)`."""

@final
class History:
    """Runs read from records files: parsed once, reported on many ways."""

    @staticmethod
    def load(paths: Sequence[str]) -> History:
        """Read records files and folders (gzip included) in parallel.
        Corrupt lines are counted and skipped; a missing path raises `ConfigError`."""
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
    def problems(self) -> list[str]:
        """The first corrupt lines as `file:line: why`, and gzip problems."""
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
    def flaky_rate(self) -> float:
        """The suite's flaky rate in percent (flaky tests among those judged)."""
    def text(self) -> str:
        """Plain-text tables."""
    def json(self) -> str:
        """Everything, as JSON."""
    def markdown(self) -> str:
        """A Markdown summary for a CI job page."""
    def html(self) -> str:
        """One self-contained HTML page with inline SVG charts."""
    def tickets(self) -> list[tuple[str, str, str]]:
        """`(owner, file-name slug, Markdown body)`: one ready-to-file ticket per owner."""
    def quarantine_file(self) -> str:
        """The quarantine file with the suggested changes applied (released
        entries cut out, new ones appended); a new file when none was read."""

@final
class GateOutcome:
    """The quality gates' verdicts."""

    @property
    def passed(self) -> bool:
        """True when no gate failed (skipped gates do not fail)."""
    def statuses(self) -> list[tuple[str, str]]:
        """`(name, status)` per gate; status is pass, fail or skipped."""
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

def prometheus_text(
    records: Sequence[str], run_end: str | None = None, pipeline: str | None = None
) -> tuple[str, int, int]:
    """One run's metrics in the Prometheus text format: `(text, tests, corrupt)`."""

def check_pushgateway_url(url: str) -> None:
    """Raise `ConfigError` unless `url` is an http:// URL with a host."""

def push_metrics(url: str, pipeline: str, text: str, timeout_s: float = 10.0) -> str:
    """PUT `text` into the Pushgateway group of `pipeline`; returns the URL
    pushed to. Raises `ConfigError` naming the URL when the push fails."""
