"""The lowest-hardware audit: NVML is sampled by a Rust thread while each
``gpu_N`` test runs; each test's figures go on its report as
``user_properties`` (``dynamo_gpus_used``, ``dynamo_gpu_peak_mib``), and a
report at the end names the tests marked with more hardware than they use.
Under xdist each worker sends what it recorded to the controller."""

from __future__ import annotations

import math
import os
from collections.abc import Generator
from typing import Any

import pytest

from pytest_dynamo import _options, _outcomes, _state
from pytest_dynamo._core import DOCS_URL, PROPERTY_GPU_PEAK_MIB, PROPERTY_GPUS_USED, Audit, GpuRules, Hardware

AUDIT = "dynamo-gpu-audit"
SAMPLING = "dynamo-gpu-audit-sampling"
MODES = ("off", "warn", "strict")
DEFAULT_INTERVAL = 0.1
#: The key of a worker's records in ``workeroutput``.
WORKER_KEY = "dynamo_gpu_audit"
DOCS = DOCS_URL + "gpus.md"


def _interval(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0.001 <= seconds <= 60):
        raise pytest.UsageError(
            f"pytest-dynamo: {name}: '{value}' is not a number of seconds from 0.001 to 60"
        )
    return seconds


def _interval_flag(value: str) -> str:
    _interval("--dynamo-audit-interval", value)
    return value


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("dynamo")
    group.addoption(
        "--dynamo-audit",
        dest="dynamo_audit",
        type=_options.choice("--dynamo-audit", MODES),
        metavar="MODE",
        help="The lowest-hardware audit of gpu_N tests: warn (default) reports tests marked with "
        "more GPUs than they use, strict also fails the run, off does not sample (env DYNAMO_AUDIT).",
    )
    parser.addini("dynamo_audit", "The lowest-hardware audit: off, warn or strict.", default="warn")
    group.addoption(
        "--dynamo-audit-interval",
        dest="dynamo_audit_interval",
        type=_interval_flag,
        metavar="SECONDS",
        help=f"How often the audit samples NVML while a gpu_N test runs (default {DEFAULT_INTERVAL}).",
    )
    parser.addini(
        "dynamo_audit_interval",
        "How often the audit samples NVML, in seconds.",
        default=str(DEFAULT_INTERVAL),
    )


class AuditPlugin:
    def __init__(
        self, config: pytest.Config, rules: GpuRules, nvml_lib: str | None, nvml_timeout: float
    ) -> None:
        self.config = config
        self.mode = _options.get_choice(config, "dynamo_audit", MODES, "DYNAMO_AUDIT")
        self.interval = _interval("dynamo_audit_interval", _options.get(config, "dynamo_audit_interval"))
        self.audit: Audit | None = None
        if self.mode != "off":
            run_pid: int = _state.shared(config, "run_pid", os.getpid)
            self.audit = Audit(rules, nvml_lib, self.interval, run_pid, nvml_timeout)

    def attach(self, hardware: Hardware) -> None:
        if self.audit is None:
            return
        self.audit.attach(hardware)
        # The per-test hooks are registered only where a gpu_N test runs: a
        # CPU-only run (or machine) pays nothing per test for the audit.
        manager = self.config.pluginmanager
        if hardware.gpu_tests > 0 and not manager.has_plugin(SAMPLING):
            manager.register(Sampling(self.audit), SAMPLING)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        exported = getattr(node, "workeroutput", {}).get(WORKER_KEY)
        if self.audit is not None and exported:
            self.audit.absorb(exported)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.audit is None:
            return
        if _state.is_worker(self.config):
            self.config.workeroutput[WORKER_KEY] = self.audit.export()  # type: ignore[attr-defined]
            return
        if self.mode == "strict" and self.audit.failing() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.audit is None or _state.is_worker(self.config):
            return
        text = self.audit.render()
        if not text:
            return
        verbosity = self.config.get_verbosity()
        failing = self.mode == "strict" and self.audit.failing() > 0
        if failing:
            _outcomes.fail_the_last_line(self.config)
        if "\n" not in text:
            # A clean audit (no findings, or nothing sampled): one line that
            # informs, left out under -q like pytest-dynamo's other such lines.
            if verbosity >= 0:
                terminalreporter.write_line(text)
            return
        *body, headline = text.splitlines()
        if verbosity >= -1:  # findings are listed, except under -qq
            terminalreporter.write_sep(
                "=", f"pytest-dynamo GPU audit ({self.mode})", yellow=not failing, red=failing
            )
            for line in body:
                terminalreporter.write_line(line)
        verdict = "the run fails" if failing else "a warning"
        terminalreporter.write_line(
            f"{headline}; {verdict} (dynamo_audit = {self.mode}), see {DOCS}", red=failing, yellow=not failing
        )

    def pytest_unconfigure(self) -> None:
        if self.audit is not None:
            self.audit.close()


class Sampling:
    """The audit's per-test hooks: sample while each test runs."""

    def __init__(self, audit: Audit) -> None:
        self.audit = audit

    # Not tryfirst: skip marks (tryfirst) are applied before sampling starts,
    # and the sampling covers fixture setup (a server started by a fixture).
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.audit.start(item.nodeid)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        if call.when == "call":
            usage = self.audit.stop(item.nodeid, call.excinfo is None)
            if usage is not None:
                item.user_properties.append((PROPERTY_GPUS_USED, usage.gpus_used))
                item.user_properties.append((PROPERTY_GPU_PEAK_MIB, round(usage.peak_mib, 1)))
        report = yield
        if call.when == "teardown" or not report.passed:
            self.audit.cancel()
        return report
