"""Selection by pipeline, stage and framework, and the ``--dynamo-plan``.

The Rust core decides for every collected test at once (``Batch.select``);
this module hands it the tests pytest still runs, deselects the rest through
``pytest_deselected``, records the run's context and the non-gating tests,
and tells the user what was left out and why.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Sequence
from itertools import compress
from typing import Any

import pytest

from pytest_dynamo import (
    _activation,
    _budgets,
    _framework,
    _options,
    _parallel,
    _parallel_machine,
    _shards,
    _state,
)
from pytest_dynamo._core import DOCS_URL, ConfigError, Engine
from pytest_dynamo._gating import GATING, Gating

SELECTION = "dynamo-selection"
DOCS = DOCS_URL + "pipelines.md"
#: ``item.user_properties`` names that carry the selection to the xdist
#: controller with each report (and into junit XML).
STAGE_PROPERTY = "dynamo_stage"
NON_GATING_PROPERTY = "dynamo_non_gating"
CONTROLLER_REPORTS = "dynamo-selection-controller"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("dynamo")
    group.addoption(
        "--dynamo-pipeline",
        dest="dynamo_pipeline",
        metavar="NAME",
        help="Run the tests of a pipeline: pre_commit, pre_merge (pr), post_merge (push), nightly, "
        "weekly, release, or one the project defines (env DYNAMO_PIPELINE).",
    )
    parser.addini("dynamo_pipeline", "Pipeline whose tests run (see --dynamo-pipeline).", default="")
    group.addoption(
        "--dynamo-stage",
        dest="dynamo_stage",
        metavar="NAME",
        help="Only this stage of the pipeline, e.g. unit, integration_1, e2e_2 (env DYNAMO_STAGE).",
    )
    parser.addini("dynamo_stage", "Stage of the pipeline whose tests run.", default="")
    group.addoption(
        "--dynamo-framework",
        dest="dynamo_framework",
        metavar="NAME",
        help="Keep one framework's tests (vllm, sglang, ...), 'auto' to choose it from the files "
        "changed since --dynamo-base, or 'all' (env DYNAMO_TEST_FRAMEWORK, then "
        "DYNAMO_DEFAULT_FRAMEWORK).",
    )
    parser.addini("dynamo_framework", "Framework whose tests run: a name, auto or all.", default="")
    group.addoption(
        "--dynamo-base",
        dest="dynamo_base",
        metavar="REV",
        help="What --dynamo-framework=auto compares HEAD with, e.g. origin/main (env DYNAMO_BASE).",
    )
    parser.addini("dynamo_base", "Base revision of --dynamo-framework=auto.", default="")
    group.addoption(
        "--dynamo-plan",
        dest="dynamo_plan",
        action="store_true",
        default=False,
        help="Run nothing; print each stage's expression, test count, machine and known duration, "
        "and the tests no stage of any pipeline selects.",
    )
    parser.addini("dynamo_plan", "Print the plan instead of running tests.", type="bool", default=False)
    group.addoption(
        "--dynamo-allow-empty",
        dest="dynamo_allow_empty",
        action="store_true",
        default=False,
        help="Exit 0 instead of 5 when the pipeline or framework selects no test.",
    )
    parser.addini(
        "dynamo_allow_empty",
        "Exit 0 instead of 5 when the selection is empty.",
        type="bool",
        default=False,
    )


#: The options a stage put on the command line, for the header.
STAGE_OPTIONS = pytest.StashKey[tuple[str, str, list[str]]]()


def _early(config: pytest.Config, name: str, env: str) -> str:
    """A setting before option parsing: the flag as parsed so far, the
    environment, the ini file."""
    value = getattr(config.known_args_namespace, name, None)
    if value:
        return str(value).strip()
    if os.environ.get(env):
        return os.environ[env].strip()
    try:
        return str(config.getini(name) or "").strip()
    except ValueError:
        return ""


def apply_stage_options(config: pytest.Config, args: list[str]) -> None:
    """Put the options of the chosen stage (``options = [...]``) in front of
    the command line, so that what the user typed comes later and wins.
    Anything wrong (no configuration, an unknown stage) is left for
    ``pytest_configure`` to report."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the controller's options reach workers already applied
    if getattr(config.known_args_namespace, "dynamo_plan", False):
        return  # the plan runs nothing: it prints the options instead
    if getattr(config.known_args_namespace, "dynamo_off", False) or _activation.off_by_environment():
        return  # turned off: a stage's options are the plugin's too
    pipeline = _early(config, "dynamo_pipeline", "DYNAMO_PIPELINE")
    stage = _early(config, "dynamo_stage", "DYNAMO_STAGE")
    if not pipeline or not stage:
        return
    config_file = _early(config, "dynamo_config", "DYNAMO_CONFIG") or None
    try:
        pipelines = Engine.load(str(config.rootpath), config_file).pipelines()
        options = pipelines.stage_options(pipeline, stage)
        resolved = pipelines.resolve(pipeline, stage)
    except ConfigError:
        return
    if not options:
        return
    args[:0] = options
    config.stash[STAGE_OPTIONS] = (resolved.pipeline, resolved.stage or stage, list(options))
    # `-p NAME` among them: load the plugin as pytest does for the command line.
    config.pluginmanager.consider_preparse(options, exclude_only=False)


def _flag(config: pytest.Config, name: str) -> bool:
    return bool(config.getoption(name, default=False)) or bool(config.getini(name))


class SelectionPlugin:
    """The run's pipeline, stage and framework, decided at configure time."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        try:
            self.pipelines = _state.engine(config).pipelines()
        except ConfigError as err:
            raise _options.usage_error(err) from None
        pipeline = _options.get(config, "dynamo_pipeline", env="DYNAMO_PIPELINE").strip() or None
        stage = _options.get(config, "dynamo_stage", env="DYNAMO_STAGE").strip() or None
        if pipeline is None and stage is not None:
            raise pytest.UsageError(
                f"pytest-dynamo: the stage '{stage}' was given without a pipeline\n"
                "  fix: name the pipeline too: --dynamo-pipeline=NAME (or dynamo_pipeline, DYNAMO_PIPELINE)"
            )
        if pipeline is not None:
            try:
                resolved = self.pipelines.resolve(pipeline, stage)
            except ConfigError as err:
                raise _options.usage_error(err) from None
            pipeline, stage = resolved.pipeline, resolved.stage
        self.pipeline: str | None = pipeline
        self.stage: str | None = stage
        self.framework, self.why = _framework.choose(config, self.pipelines)
        self.plan = _flag(config, "dynamo_plan")
        config.stash[_state.PLANNING] = self.plan
        if self.plan and config.getoption("numprocesses", default=None):
            raise pytest.UsageError(
                "pytest-dynamo: --dynamo-plan runs no test, so it needs no xdist workers\n  fix: drop -n"
            )
        self.allow_empty = _flag(config, "dynamo_allow_empty")
        self.context: dict[str, Any] = {
            "pipeline": self.pipeline,
            "stage": self.stage,
            "framework": self.framework,
            "stages": {},
        }
        config.stash[_state.RUN_CONTEXT] = self.context
        #: Deselections by reason and the selected count, once known (on the
        #: xdist controller: from the first worker that finishes).
        self.counts: dict[str, int] | None = None
        self.selected = 0
        self.collected = 0
        self.plan_text: str | None = None
        #: ``(file, first line of its error)`` of what failed to collect, for the plan.
        self.collection_errors: list[tuple[str, str]] = []

    @property
    def active(self) -> bool:
        return self.pipeline is not None or self.framework is not None

    def scope(self) -> str:
        parts = []
        if self.pipeline is not None:
            stage = f"stage {self.stage}" if self.stage else "all stages"
            parts.append(f"pipeline {self.pipeline} ({stage})")
        if self.framework is not None:
            parts.append(f"framework {self.framework}")
        return ", ".join(parts)

    def _gating(self) -> Gating:
        plugin = self.config.pluginmanager.get_plugin(GATING)
        assert isinstance(plugin, Gating)
        return plugin

    def _durations(self) -> str | None:
        return _options.durations_path(self.config)

    def select(self, items: list[pytest.Item], batched: Sequence[pytest.Item]) -> None:
        batch = _state.batch(self.config)
        if batch is None:
            return
        if self.plan:
            shards = _shards.plugin(self.config)
            try:
                self.plan_text = batch.plan(
                    self.pipelines,
                    self.pipeline,
                    self.stage,
                    self.framework,
                    _state.positions(items, batched),
                    self._durations(),
                    shards=shards.shard.count if shards is not None else 1,
                    gpu_parallel=_budgets.gpu_parallel(self.config),
                )
            except ConfigError as err:
                raise _options.usage_error(err) from None
            parallel = _parallel_machine.enabled(self.config)
            if shards is not None or parallel:
                planned = items
                if self.active:
                    keep = batch.select(
                        self.pipelines,
                        self.pipeline,
                        self.stage,
                        self.framework,
                        _state.positions(items, batched),
                    ).keep()
                    planned = list(compress(items, keep))
                if shards is not None:
                    lines = shards.plan_lines(planned, batched)
                    self.plan_text += "\n".join(lines) + "\n"
                if parallel:
                    self.plan_text += _parallel.plan_text(self.config, planned)
            return
        if not self.active:
            return
        result = batch.select(
            self.pipelines, self.pipeline, self.stage, self.framework, _state.positions(items, batched)
        )
        # The facts take each kept test's stage and gating from the core's own result.
        self.config.stash[_state.SELECTION] = result
        before = len(batch) - len(items)
        keep = result.keep()
        kept = list(compress(items, keep))
        dropped = list(compress(items, map(operator.not_, keep)))
        stages: dict[str, str] = self.context["stages"]
        if self.pipeline is not None:
            for item, stage in zip(kept, result.stages()):
                if stage is not None:  # always set when a pipeline selected the test
                    stages.setdefault(item.nodeid, stage)
                    item.user_properties.append((STAGE_PROPERTY, stage))
        non_gating = result.non_gating()
        reason = result.non_gating_reason
        if non_gating and reason is not None:
            by_id = {item.nodeid: item for item in kept}
            gating = self._gating()
            for nodeid in non_gating:
                gating.add_exemption(nodeid, reason)
                by_id[nodeid].user_properties.append((NON_GATING_PROPERTY, reason))
        if dropped:
            self.config.hook.pytest_deselected(items=dropped)
            items[:] = kept
        counts = dict(result.counts())
        if before > 0:
            counts["user"] = before
        self.counts = counts
        self.selected = len(kept)
        self.collected = len(batch)
        if _state.is_worker(self.config):
            output: dict[str, Any] = self.config.workeroutput  # type: ignore[attr-defined]
            output["dynamo_selection"] = {
                "counts": counts,
                "selected": self.selected,
                "collected": self.collected,
            }

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = []
        note = _state.engine(config).note
        if note is not None:
            lines.append(f"dynamo config: {_state.engine(config).source} ({note})")
        applied = config.stash.get(STAGE_OPTIONS, None)
        if applied is not None:
            pipeline, stage, options = applied
            lines.append(
                f"dynamo stage options: {' '.join(options)} (from stage {stage} of {pipeline}; "
                "the command line wins over them)"
            )
        if self.plan:
            lines.append("dynamo: --dynamo-plan: no test runs")
        if self.active or self.why:
            scope = (
                self.scope()
                if self.framework is not None
                else ", ".join([part for part in (self.scope(), "every framework") if part])
            )
            why = f" ({self.why})" if self.why else ""
            lines.append(f"dynamo selection: {scope}{why}")
        return lines

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Only an xdist controller learns stages and exemptions from reports
        # (it collects nothing); a process that collected knows them already.
        if self.config.pluginmanager.has_plugin("dsession"):
            self.config.pluginmanager.register(
                ControllerReports(self.context["stages"], self._gating()), CONTROLLER_REPORTS
            )

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        data = output.get("dynamo_selection")
        if data and self.counts is None:
            self.counts = dict(data["counts"])
            self.selected = int(data["selected"])
            self.collected = int(data["collected"])

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if self.plan and report.failed:
            self.collection_errors.append((report.nodeid or ".", _first_line(report)))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if not self.plan:
            return None
        # A plan runs nothing, ever; collection errors still fail the run,
        # with the status pytest gives them (2, or 1 under
        # --continue-on-collection-errors).
        if session.testsfailed and not self.config.getoption("continue_on_collection_errors", default=False):
            errors = session.testsfailed
            raise session.Interrupted(f"{errors} error{'s' if errors != 1 else ''} during collection")
        return True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and self.active and self.allow_empty:
            session.exitstatus = pytest.ExitCode.OK

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.plan_text is not None:
            terminalreporter.write_sep("=", "pytest-dynamo plan")
            framework = self.framework or "all"
            why = f" ({self.why})" if self.why else ""
            terminalreporter.write_line(f"framework: {framework}{why}")
            terminalreporter.write(self.plan_text)
            errors = self.collection_errors
            if errors:
                terminalreporter.write_line(
                    f"collection errors: {len(errors)}; the plan leaves out what these failed to collect:",
                    red=True,
                )
                for nodeid, message in errors:
                    terminalreporter.write_line(f"  {nodeid}: {message}" if message else f"  {nodeid}")
            return
        counts = self.counts
        if counts is None:
            return
        deselected = sum(counts.values())
        if deselected:
            terminalreporter.write_sep("-", "pytest-dynamo selection")
            terminalreporter.write_line(f"{self.scope()}: {self.selected} selected, {deselected} deselected")
            for key, words in self._reasons():
                if counts.get(key):
                    terminalreporter.write_line(f"  {counts[key]:>6} {words}")
        if self.selected == 0 and self.collected:
            status = (
                "exit 0 (dynamo_allow_empty)" if self.allow_empty else "exit 5 unless --dynamo-allow-empty"
            )
            terminalreporter.write_line(
                f"pytest-dynamo: {self.scope()} selects no test; {status}; see {DOCS}",
                yellow=True,
            )

    def _reasons(self) -> list[tuple[str, str]]:
        stage = f"not in stage {self.stage}" if self.stage else f"in no stage of the {self.pipeline} pipeline"
        agnostic = ", or none" if self.pipelines.agnostic == "drop" else ""
        return [
            ("lifecycle", f"later lifecycle than {self.pipeline}"),
            ("no_lifecycle", "no lifecycle marker"),
            ("stage", stage),
            ("framework", f"other framework than {self.framework}{agnostic}"),
            ("user", "deselected before (-m, -k or another plugin)"),
        ]


def _first_line(report: pytest.CollectReport) -> str:
    """The error's one line: pytest's crash message, else the last ``E`` line
    of the report (an import error's own message), else its first line."""
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if message:
        return str(message).splitlines()[0].strip()
    lines = [line.strip() for line in str(report.longrepr).splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    return errors[-1] if errors else (lines[0] if lines else "")


def planning(config: pytest.Config) -> bool:
    """True when this run prints the plan instead of running tests."""
    return _state.planning(config)


def select(config: pytest.Config, items: list[pytest.Item], batched: Sequence[pytest.Item]) -> None:
    """Selection by pipeline, stage and framework over the run's batch;
    ``batched`` are the items in the batch's order."""
    plugin = config.pluginmanager.get_plugin(SELECTION)
    assert isinstance(plugin, SelectionPlugin)
    plugin.select(items, batched)


class ControllerReports:
    """On an xdist controller: the stage and the exemption of each test, read
    from its reports (before Gating, which runs trylast, reads them)."""

    def __init__(self, stages: dict[str, str], gating: Gating) -> None:
        self.stages = stages
        self.gating = gating

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for prop in report.user_properties:
            if not isinstance(prop, (tuple, list)) or len(prop) != 2:
                continue
            name, value = prop
            if name == STAGE_PROPERTY:
                self.stages.setdefault(report.nodeid, str(value))
            elif name == NON_GATING_PROPERTY:
                self.gating.add_exemption(report.nodeid, str(value))
