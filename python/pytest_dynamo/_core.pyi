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
