"""Collection-time marker validation: one report, grouped by file, that
fails collection (strict), is printed while tests run (warn), or is off."""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_dynamo import _collect, _options, _retries, _state
from pytest_dynamo._core import DOCS_URL, Batch, Validation
from pytest_dynamo._warnings import MarkerAliasWarning

DOCS = DOCS_URL + "markers.md"
#: The report in the terminal lists this many tests of a file, for this many
#: files; every rule's count and the full list (--dynamo-validation-report)
#: cover the rest. A legacy suite's 5,000 offenders once printed 120,006 lines.
PER_FILE = 5
FILES = 10
#: pytest's own error for an unregistered marker under --strict-markers.
NOT_FOUND = re.compile(r"'([^']+)' not found in `markers` configuration option")
#: A marker named in source: ``pytest.mark.name``, ``mark.name``.
MARK_IN_SOURCE = re.compile(r"\bmark\.([A-Za-z_][A-Za-z0-9_]*)")


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("dynamo")
    group.addoption(
        "--dynamo-validation-report",
        dest="dynamo_validation_report",
        metavar="PATH",
        help="Write the full marker validation report to PATH (JSON when it ends in .json, else text); "
        f"the terminal shows the first {PER_FILE} tests of each of the first {FILES} files.",
    )
    parser.addini(
        "dynamo_validation_report",
        "File for the full marker validation report (.json: JSON), relative to the rootdir.",
        default="",
    )


def report_path(config: pytest.Config) -> Path | None:
    """The full report's file: a flag is relative to where pytest started, the ini to the rootdir."""
    flag = config.getoption("dynamo_validation_report", default=None)
    if flag:
        return config.invocation_params.dir / str(flag)
    ini = str(config.getini("dynamo_validation_report") or "").strip()
    return config.rootpath / ini if ini else None


def write_report(path: Path, result: Validation) -> None:
    """Write atomically: every xdist worker validates, and writes the same report."""
    if path.suffix.lower() == ".json":
        text = result.to_json()
    elif result.count:
        text = result.render()
    else:
        text = f"pytest-dynamo: no test breaks the marker rules (of {result.checked} checked)\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError as err:
        raise pytest.UsageError(
            f"pytest-dynamo: cannot write the validation report {path}: {err.strerror or err}\n"
            "  fix: point --dynamo-validation-report / dynamo_validation_report at a writable file"
        ) from None


#: What starts the text of a collect report the plugin makes.
OWN_REPORT = "pytest-dynamo: "


class Headline:
    """A crash line for the short summary: its first line only."""

    def __init__(self, message: str) -> None:
        self.message = message


class FileReport:
    """The longrepr of a collect report the plugin makes: the whole text under
    ERRORS, its headline alone in the short summary. pytest writes a plain
    string's whole text there on CI (``$CI`` set) and with ``-vv``, which
    repeated every file's report."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.reprcrash = Headline(text.split("\n", 1)[0])

    def toterminal(self, out: Any) -> None:
        out.line(self.text, red=True)

    def __str__(self) -> str:
        return self.text


class ValidationPlugin:
    @pytest.hookimpl(tryfirst=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # Made here or on an xdist worker (where it travels as a string).
        if report.failed and isinstance(report.longrepr, str) and report.longrepr.startswith(OWN_REPORT):
            report.longrepr = FileReport(report.longrepr)  # type: ignore[assignment]

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.mode = _options.get_choice(config, "dynamo_validation", _options.VALIDATION_MODES)
        self.result: Validation | None = None
        self.report_path = report_path(config)
        #: The suggestions for typos pytest's --strict-markers stopped at,
        #: once per file (the same module may fail on several workers' reports).
        self._suggested: dict[str, str] = {}

    def check(self, batch: Batch, items: list[pytest.Item], everything: list[pytest.Item]) -> None:
        if self.mode == "off":
            return
        result = batch.validate(_retries.other_retrier(self.config))
        self.result = result
        if self.report_path is not None:
            write_report(self.report_path, result)
        aliases = result.aliases()
        by_nodeid = {item.nodeid: item for item in everything} if aliases else {}
        for use in aliases:
            first = by_nodeid.get(use.first_nodeid)
            tests = use.tests
            # Pointed at the first test using the alias, not at this module.
            warnings.warn_explicit(
                MarkerAliasWarning(
                    f"marker '{use.alias}' is a deprecated alias of '{use.canonical}' "
                    f"({tests} test{'s' if tests != 1 else ''}): "
                    f"rename it to @pytest.mark.{use.canonical}"
                ),
                category=MarkerAliasWarning,
                filename=str(self.config.rootpath / use.first_nodeid.split("::", 1)[0]),
                lineno=_collect.line_of(first) if first is not None else 0,
            )
        if self.mode == "strict" and result.count:
            # A failed collect report per file: pytest shows each under
            # ERRORS, counts it, and stops before running any test, also
            # under --collect-only and on every xdist worker.
            # Only the first files get an error each: the rule counts and
            # the full report (the summary names it) cover the others.
            for found in result.files(PER_FILE)[:FILES]:
                tests = found.tests
                shown = f" (first {PER_FILE} shown; {self.where_full()})" if tests > PER_FILE else ""
                header = (
                    f"pytest-dynamo: {tests} test{'s' if tests != 1 else ''} "
                    f"in this file break{'s' if tests == 1 else ''} the marker rules{shown}\n\n"
                )
                report = pytest.CollectReport(
                    nodeid=found.file, outcome="failed", longrepr=header + found.text, result=[]
                )
                self.config.hook.pytest_collectreport(report=report)
            if _state.is_worker(self.config) or self.config.getoption(
                "continue_on_collection_errors", default=False
            ):
                # xdist and --continue-on-collection-errors run the other
                # tests despite collection errors: strict means none runs.
                # Every xdist worker drops all, so their collections agree.
                items[:] = []

    def where_full(self) -> str:
        if self.report_path is not None:
            return f"full list in {self.report_path}"
        return "full list: --dynamo-validation-report=PATH"

    def capped(self, result: Validation) -> bool:
        files = result.files(PER_FILE)
        return len(files) > FILES or any(f.tests > PER_FILE for f in files)

    def render(self, result: Validation) -> str:
        """The warn-mode report: the first tests of the first files."""
        files = result.files(PER_FILE)
        out = [f"pytest-dynamo: {result.headline}\n"]
        for f in files[:FILES]:
            out.append(f"\n{f.file}\n" + "".join(f"  {line}\n" for line in f.text.splitlines()))
        if len(files) > FILES:
            more = len(files) - FILES
            out.append(f"\n... and {more} more file{'s' if more != 1 else ''}\n")
        return "".join(out)

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        report = yield
        if report.failed and isinstance(collector, pytest.Module):
            self._suggest(collector, report)
        return report

    def _suggest(self, module: pytest.Module, report: pytest.CollectReport) -> None:
        """Under --strict-markers pytest fails a module at its first unregistered
        marker, before our rules see it: add a did-you-mean for every
        misspelled marker in the file to pytest's error (its status unchanged)."""
        text = str(report.longrepr)
        if not NOT_FOUND.search(text):
            return
        key = str(module.path)
        if key not in self._suggested:
            known = set(_collect.registered_markers(self.config))
            engine = _state.engine(self.config)
            try:
                source = module.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                source = ""
            lines = []
            seen: set[str] = set()
            for number, line in enumerate(source.splitlines(), 1):
                for name in MARK_IN_SOURCE.findall(line):
                    if name in known or name in seen:
                        continue
                    seen.add(name)
                    suggestion = engine.suggest(name)
                    if suggestion is not None:
                        lines.append(
                            f"pytest-dynamo: line {number}: @pytest.mark.{name}: "
                            f"did you mean @pytest.mark.{suggestion}?"
                        )
            self._suggested[key] = "\n".join(lines)
        suggestions = self._suggested[key]
        if not suggestions:
            return
        addsection = getattr(report.longrepr, "addsection", None)
        if callable(addsection):
            # Keeps pytest's error as it is, its one-line summary included.
            addsection("pytest-dynamo", suggestions)
        else:
            report.longrepr = f"{text.rstrip()}\n{suggestions}"

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        result = self.result
        if result is None or not result.count:
            return
        if self.mode == "warn":
            terminalreporter.write_sep("=", "pytest-dynamo marker validation (warn)", yellow=True)
            terminalreporter.write(self.render(result))
        terminalreporter.write(result.rule_counts())
        if self.capped(result):
            terminalreporter.write_line(
                f"pytest-dynamo: the report shows the first {PER_FILE} tests of each of the first "
                f"{FILES} files; {self.where_full()}"
            )
        elif self.report_path is not None:
            terminalreporter.write_line(f"pytest-dynamo: the report is also in {self.report_path}")
        terminalreporter.write_line(
            f"pytest-dynamo: {result.headline}; see {DOCS} (dynamo_validation = {self.mode})",
            red=self.mode == "strict",
            yellow=self.mode == "warn",
        )
