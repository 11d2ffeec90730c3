"""Prometheus export at the end of a run: a textfile for node_exporter's
textfile collector (``--dynamo-prometheus``) and a push to a Pushgateway
(``--dynamo-pushgateway``). The metrics are made in Rust from the run's
test records, which the records feature leaves on ``config.stash``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from pytest_dynamo import _core, _options, _state

DOCS = _core.DOCS_URL + "prometheus.md"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("dynamo")
    group.addoption(
        "--dynamo-prometheus",
        dest="dynamo_prometheus",
        metavar="PATH",
        help="At the end of the run, write its metrics to PATH for node_exporter's "
        "textfile collector (a .prom file in its --collector.textfile.directory).",
    )
    parser.addini(
        "dynamo_prometheus",
        "Prometheus textfile written at the end of each run, relative to the rootdir.",
        default="",
    )
    group.addoption(
        "--dynamo-pushgateway",
        dest="dynamo_pushgateway",
        metavar="URL",
        help="At the end of the run, push its metrics to the Prometheus Pushgateway at URL "
        "(http://host:9091), group job=pytest-dynamo, pipeline=<pipeline>.",
    )
    parser.addini(
        "dynamo_pushgateway",
        "Prometheus Pushgateway base URL that each run's metrics are pushed to.",
        default="",
    )


class PrometheusExport:
    """Writes and pushes the run's metrics once, on the controller."""

    def __init__(self, config: pytest.Config, path: Path | None, url: str | None) -> None:
        self.config = config
        self.path = path
        self.url = url
        self.done: list[str] = []
        self.problems: list[str] = []

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        records = self.config.stash.get(_state.TEST_RECORDS, None)
        if records is None:
            self.problems.append(
                "no test records on this run, so no Prometheus metrics: "
                f"the metrics are made from the records ({_core.DOCS_URL}records.md)"
            )
            return
        run_end = self.config.stash.get(_state.RUN_END, None)
        context = self.config.stash.get(_state.RUN_CONTEXT, None) or {}
        pipeline = context.get("pipeline")
        metrics = _core.prometheus_text(list(records), run_end, pipeline)
        text, tests = metrics.text, metrics.tests
        if metrics.corrupt:
            self.problems.append(
                f"{metrics.corrupt} test record(s) could not be read and are not in the metrics"
            )
        if self.path is not None:
            try:
                write_atomically(self.path, text)
                self.done.append(f"wrote metrics of {tests} tests to {self.path}")
            except OSError as err:
                self.problems.append(f"could not write {self.path}: {err}")
        if self.url is not None:
            try:
                pushed = _core.push_metrics(self.url, pipeline or "none", text)
                self.done.append(f"pushed metrics of {tests} tests to {pushed}")
            except _core.ConfigError as err:
                self.problems.append(str(err))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for line in self.done:
            terminalreporter.write_line(f"pytest-dynamo: {line}")
        for line in self.problems:
            terminalreporter.write_line(f"pytest-dynamo: Prometheus export: {line} (see {DOCS})", red=True)


def write_atomically(path: Path, text: str) -> None:
    """node_exporter may read the file at any moment: never let it see half of one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def register(config: pytest.Config) -> None:
    """Register the export when a textfile or a Pushgateway is asked for (not on xdist workers)."""
    raw_path = _options.get(config, "dynamo_prometheus")
    url = _options.get(config, "dynamo_pushgateway") or None
    if not raw_path and not url:
        return
    path: Path | None = None
    if raw_path:
        path = Path(raw_path)
        if not path.is_absolute():
            path = config.rootpath / path
        if not path.parent.is_dir():
            raise pytest.UsageError(
                f"pytest-dynamo: --dynamo-prometheus: folder {path.parent} does not exist; "
                "create it or point the option at node_exporter's textfile directory"
            )
        if path.suffix != ".prom":
            raise pytest.UsageError(
                f"pytest-dynamo: --dynamo-prometheus: {path.name} must end in .prom, "
                "the only files node_exporter's textfile collector reads"
            )
    if url:
        try:
            _core.check_pushgateway_url(url)
        except _core.ConfigError as err:
            raise _options.usage_error(err) from None
    if _state.is_worker(config):
        return
    config.pluginmanager.register(PrometheusExport(config, path, url), "dynamo-prometheus")
