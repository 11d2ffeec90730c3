"""Collection-time marker validation: one report, grouped by file, that
fails collection (strict), is printed while tests run (warn), or is off."""

from __future__ import annotations

import warnings

import pytest

from pytest_dynamo import _collect, _flaky, _options
from pytest_dynamo._core import Batch, Validation
from pytest_dynamo._warnings import MarkerAliasWarning

DOCS = "docs/markers.md"


class ValidationPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.mode = _options.get_choice(config, "dynamo_validation", _options.VALIDATION_MODES)
        self.result: Validation | None = None

    def check(self, batch: Batch, items: list[pytest.Item], everything: list[pytest.Item]) -> None:
        if self.mode == "off":
            return
        result = batch.validate(_flaky.other_retrier(self.config))
        self.result = result
        aliases = result.aliases()
        by_nodeid = {item.nodeid: item for item in everything} if aliases else {}
        for alias, canonical, tests, nodeid, _ in aliases:
            first = by_nodeid.get(nodeid)
            # Pointed at the first test using the alias, not at this module.
            warnings.warn_explicit(
                MarkerAliasWarning(
                    f"marker '{alias}' is a deprecated alias of '{canonical}' "
                    f"({tests} test{'s' if tests != 1 else ''}): "
                    f"rename it to @pytest.mark.{canonical}"
                ),
                category=MarkerAliasWarning,
                filename=str(self.config.rootpath / nodeid.split("::", 1)[0]),
                lineno=_collect.line_of(first) if first is not None else 0,
            )
        if self.mode == "strict" and result.count:
            # A failed collect report per file: pytest shows each under
            # ERRORS, counts it, and stops before running any test, also
            # under --collect-only and on every xdist worker.
            for file, tests, text in result.files():
                header = (
                    f"pytest-dynamo: {tests} test{'s' if tests != 1 else ''} "
                    "in this file break the marker rules\n\n"
                )
                report = pytest.CollectReport(
                    nodeid=file, outcome="failed", longrepr=header + text, result=[]
                )
                self.config.hook.pytest_collectreport(report=report)
            if hasattr(self.config, "workerinput"):
                # xdist runs the other tests despite collection errors;
                # every worker drops all, so their collections still agree.
                items[:] = []

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        result = self.result
        if result is None or not result.count:
            return
        if self.mode == "warn":
            terminalreporter.write_sep("=", "pytest-dynamo marker validation (warn)", yellow=True)
            terminalreporter.write(result.render())
        terminalreporter.write_line(
            f"pytest-dynamo: {result.headline}; see {DOCS} (dynamo_validation = {self.mode})",
            red=self.mode == "strict",
            yellow=self.mode == "warn",
        )
