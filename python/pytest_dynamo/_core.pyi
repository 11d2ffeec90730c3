"""The Rust core of pytest-dynamo (PyO3). Typed stub with the docstrings."""

from collections.abc import Mapping, Sequence
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
    def record_facts(
        self,
        policy: RunPolicy,
        nodeids: Sequence[str],
        stages: Mapping[str, str],
        exempt: Mapping[str, str],
        default_reruns: int,
        retries: bool,
    ) -> tuple[list[tuple[str, int | None, str]], list[tuple[str, str]], list[tuple[str, str]]]:
        """The facts of the tests `nodeids` names, for their records, at once:
        `([(facts JSON, retries, flow id)], [(nodeid, quarantine exemption)],
        [(nodeid, problem)])`. `stages` maps node ids to their stage,
        `exempt` to why they already do not gate; `retries` is False when
        pytest-rerunfailures retries instead."""

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

# Records, retries, quarantine and ownership (docs/records.md, docs/flakiness.md).

def new_run_id() -> str:
    """A new run id: 32 hex digits."""

def test_id(nodeid: str) -> str:
    """The stable id of a test: the sha256 of its node id, in hex."""

@final
class RunPolicy:
    """The run's quarantine and owners, loaded and checked once."""

    @staticmethod
    def load(engine: Engine, rootdir: str) -> RunPolicy:
        """Read the quarantine file and the owners table the configuration names.
        Raises `ConfigError` naming the file or key and the fix."""
    @property
    def quarantine_file(self) -> str | None:
        """The quarantine file read, or None."""
    @property
    def strict(self) -> bool:
        """Expired quarantine entries fail the run."""
    def expired(self, run_id: str) -> list[tuple[str, str, str, str, str]]:
        """Quarantine entries past their expiry date (UTC), as
        `(test, ticket, owner, expires, reason)`; each is logged as a warning
        with the run id as its flow id."""

@final
class Recorder:
    """One run's records: the run-start line, a line per finished test, the
    run-end line, appended to the records file when one is named."""

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
    def start(
        self,
        rootdir: str,
        host: str,
        pipeline: str | None = None,
        stage: str | None = None,
        framework: str | None = None,
        gpus: str | None = None,
    ) -> str:
        """Make (and write) the run-start line. `gpus` is the GPU inventory as JSON."""
    def finish(self, reports: Sequence[Any]) -> str:
        """Make (and write) the line of a finished test from its pytest reports
        (the last one ends it), and return it."""
    @staticmethod
    def junit_properties(line: str) -> list[tuple[str, str]]:
        """`JUnit` properties of a test line: its outcome, every attempt, its
        markers by category, its owner and flow id."""
    def failure_owners(self) -> list[tuple[str, str]]:
        """Failed tests (failed, error, quarantined-failed) with an owner:
        `(nodeid, owner)`."""
    def end(self, exit_status: int) -> str:
        """Make (and write) the run-end line."""
    def count(self, outcome: str) -> int:
        """How many tests ended with `outcome`."""
    def flaky(self) -> list[tuple[str, int, str | None, str | None]]:
        """Flaky tests: `(nodeid, attempts, owner, reason)`."""
    def quarantined(self) -> list[tuple[str, str, str, str, str]]:
        """Quarantined tests that ran: `(nodeid, outcome, ticket, owner, expires)`."""
    def slowest(self, n: int) -> list[tuple[str, float, str | None]]:
        """The `n` slowest tests: `(nodeid, seconds, stage)`, slowest first."""
    def write_error(self) -> tuple[str, int] | None:
        """The first failed write to the records file and how many lines were lost."""
    def merge_durations(self, path: str) -> int:
        """Merge this run's test durations into a pytest-split durations file
        (replaced atomically). Returns how many tests the file holds."""
    @staticmethod
    def check_durations(path: str) -> None:
        """Check that a durations file (if it exists) can be read and merged."""
