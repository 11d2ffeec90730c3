"""``--dynamo-shard=K/N``: run shard K of N of the tests that remain after
selection, hardware decisions and ``-k``/``-m``, balanced by the durations
file. The partition depends only on the selected node ids, the durations file
and N (the core computes it), so every machine and every xdist worker
computes the same one.

``--dynamo-shard=auto`` reads the index and count from the CI's own variables.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_dynamo import _budgets, _numbers, _options, _state
from pytest_dynamo._core import DOCS_URL, ConfigError, ShardPlan, partition_shards

SHARDS = "dynamo-shards"
DOCS = DOCS_URL + "shards.md"
#: More machines than any CI matrix has: a bigger count is a typo.
MAX_SHARDS = 10_000
_FIXED = re.compile(r"\s*([0-9]{1,30})\s*/\s*([0-9]{1,30})\s*")


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("dynamo")
    group.addoption(
        "--dynamo-shard",
        dest="dynamo_shard",
        metavar="K/N|auto",
        help="Run shard K of N (1-based) of the selected tests, balanced by the durations file; "
        "'auto' reads the CI's variables (GitLab, Kubernetes Indexed Jobs, Slurm arrays) "
        "(env DYNAMO_SHARD).",
    )
    parser.addini("dynamo_shard", "Shard of the selected tests to run: K/N or auto.", default="")
    group.addoption(
        "--dynamo-shard-count",
        dest="dynamo_shard_count",
        metavar="N",
        type=_options.whole_number("--dynamo-shard-count", 1, MAX_SHARDS),
        help="How many shards --dynamo-shard=auto splits into when the CI gives only an index "
        "(Kubernetes JOB_COMPLETION_INDEX) (env DYNAMO_SHARD_COUNT).",
    )
    parser.addini("dynamo_shard_count", "Shard count for --dynamo-shard=auto on Kubernetes.", default="")


@dataclass(frozen=True)
class Shard:
    """This machine's shard: ``index`` is 1-based."""

    index: int
    count: int
    #: Where it came from, for the header: ``--dynamo-shard=2/3``, ``GitLab (CI_NODE_INDEX=2, ...)``.
    source: str

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"


def _usage(message: str) -> pytest.UsageError:
    return _options.usage_error(f"{message}\n  see {DOCS}")


def parse_fixed(value: str, where: str) -> Shard:
    """``K/N``, 1-based; anything else is a usage error naming its source."""
    match = _FIXED.fullmatch(value)
    if match is None:
        raise _usage(f"{where}: not K/N (e.g. 2/4, 1-based) or auto")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise _usage(f"{where}: the shard count N must be from 1 to {MAX_SHARDS}")
    if not 1 <= index <= count:
        raise _usage(f"{where}: the shard K must be from 1 to {count} (shards are numbered from 1)")
    return Shard(index, count, where)


def _number(environ: Mapping[str, str], name: str, low: int, why: str) -> int:
    try:
        return _numbers.parse(environ[name], low, 10**9)
    except ValueError as err:
        raise _usage(f"--dynamo-shard=auto: {name}={environ[name]}: {err} ({why})") from None


#: The CI systems ``--dynamo-shard=auto`` reads, and the variables that say one is in use.
CI_VARIABLES = (
    ("GitLab", ("CI_NODE_INDEX", "CI_NODE_TOTAL")),
    ("Kubernetes", ("JOB_COMPLETION_INDEX",)),
    ("Slurm", ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN")),
)


def from_ci(environ: Mapping[str, str], count_setting: tuple[str, str]) -> Shard:
    """The shard the CI's own variables name: GitLab ``parallel:``, a Kubernetes
    Indexed Job, a Slurm job array. None of them, more than one, or a missing
    or inconsistent variable is a usage error naming the variables."""
    ci = _which_ci(environ)
    if ci == "GitLab":
        return _gitlab(environ)
    if ci == "Kubernetes":
        return _kubernetes(environ, count_setting)
    return _slurm(environ)


def _which_ci(environ: Mapping[str, str]) -> str:
    """The one CI whose shard variables are set."""
    found = [name for name, names in CI_VARIABLES if any(environ.get(n, "").strip() for n in names)]
    if not found:
        raise _usage(
            "--dynamo-shard=auto: no CI shard variables are set; it reads CI_NODE_INDEX and "
            "CI_NODE_TOTAL (GitLab parallel:), JOB_COMPLETION_INDEX with --dynamo-shard-count or "
            "DYNAMO_SHARD_COUNT (Kubernetes Indexed Job), or SLURM_ARRAY_TASK_ID, "
            "SLURM_ARRAY_TASK_COUNT and SLURM_ARRAY_TASK_MIN (Slurm array)\n"
            "  fix: run under one of them, or give --dynamo-shard=K/N"
        )
    if len(found) > 1:
        raise _usage(
            f"--dynamo-shard=auto: the variables of {' and '.join(found)} are both set, so the shard is "
            "ambiguous\n  fix: give --dynamo-shard=K/N, or unset the other CI's variables"
        )
    return found[0]


def _gitlab(environ: Mapping[str, str]) -> Shard:
    """GitLab ``parallel:``: a 1-based index and the count."""
    missing = [n for n in ("CI_NODE_INDEX", "CI_NODE_TOTAL") if not environ.get(n, "").strip()]
    if missing:
        raise _usage(
            "--dynamo-shard=auto: GitLab sets CI_NODE_INDEX and CI_NODE_TOTAL together; "
            f"{missing[0]} is missing"
        )
    index = _number(environ, "CI_NODE_INDEX", 1, "GitLab's index is 1-based")
    total = _number(environ, "CI_NODE_TOTAL", 1, "the job's parallel: count")
    if index > total:
        raise _usage(f"--dynamo-shard=auto: CI_NODE_INDEX={index} is above CI_NODE_TOTAL={total}")
    return Shard(index, total, f"GitLab CI_NODE_INDEX={index}, CI_NODE_TOTAL={total}")


def _kubernetes(environ: Mapping[str, str], count_setting: tuple[str, str]) -> Shard:
    """A Kubernetes Indexed Job: a 0-based index; the count from our own setting."""
    index0 = _number(environ, "JOB_COMPLETION_INDEX", 0, "the Indexed Job's index is 0-based")
    value, where = count_setting
    if not value.strip():
        raise _usage(
            f"--dynamo-shard=auto: JOB_COMPLETION_INDEX={index0} is set but not the shard count\n"
            "  fix: pass --dynamo-shard-count=N or set DYNAMO_SHARD_COUNT (the Job's completions)"
        )
    try:
        count = _numbers.parse(value, 1, MAX_SHARDS)
    except ValueError as err:
        raise _usage(f"{where}: {err}") from None
    if index0 >= count:
        raise _usage(
            f"--dynamo-shard=auto: JOB_COMPLETION_INDEX={index0} (0-based) is not below "
            f"the shard count {count} ({where})"
        )
    return Shard(index0 + 1, count, f"Kubernetes JOB_COMPLETION_INDEX={index0}, {where}")


def _slurm(environ: Mapping[str, str]) -> Shard:
    """A Slurm job array: contiguous task ids from a first one by a step."""
    names = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN")
    missing = [n for n in names if not environ.get(n, "").strip()]
    if missing:
        raise _usage(
            f"--dynamo-shard=auto: a Slurm array sets {', '.join(names)}; {', '.join(missing)} missing"
        )
    task = _number(environ, "SLURM_ARRAY_TASK_ID", 0, "the array task's id")
    count = _number(environ, "SLURM_ARRAY_TASK_COUNT", 1, "the array's task count")
    low = _number(environ, "SLURM_ARRAY_TASK_MIN", 0, "the array's first id")
    step = (
        _number(environ, "SLURM_ARRAY_TASK_STEP", 1, "the array's step")
        if environ.get("SLURM_ARRAY_TASK_STEP", "").strip()
        else 1
    )
    offset = task - low
    if offset < 0 or offset % step or offset // step >= count:
        raise _usage(
            f"--dynamo-shard=auto: SLURM_ARRAY_TASK_ID={task} is not one of the {count} ids from "
            f"SLURM_ARRAY_TASK_MIN={low} by {step} (SLURM_ARRAY_TASK_COUNT={count}); an array with gaps "
            "(--array=1,5,9) cannot be sharded by these variables\n"
            "  fix: use a contiguous --array=0-N, or give --dynamo-shard=K/N"
        )
    index0 = offset // step
    return Shard(
        index0 + 1,
        count,
        f"Slurm SLURM_ARRAY_TASK_ID={task}, SLURM_ARRAY_TASK_MIN={low}, SLURM_ARRAY_TASK_COUNT={count}",
    )


def resolve(config: pytest.Config) -> Shard | None:
    """The shard this run is, or None: flag, then ``DYNAMO_SHARD``, then ini."""
    value, where = _options.setting(config, "dynamo_shard", env="DYNAMO_SHARD")
    if not value.strip():
        return None
    if value.strip() == "auto":
        count = _options.setting(config, "dynamo_shard_count", env="DYNAMO_SHARD_COUNT")
        return from_ci(os.environ, count)
    return parse_fixed(value, where)


def human(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class ShardsPlugin:
    """This run's shard, decided at configure time; applied at the end of collection."""

    def __init__(self, config: pytest.Config, shard: Shard, durations: str | None) -> None:
        self.config = config
        self.shard = shard
        self.durations = durations
        self.group = _state.engine(config).shard_group
        #: Tests before the split, and this shard's, once known (on the xdist
        #: controller: from the first worker that finishes).
        self.before: int | None = None
        self.mine = 0
        self.plan: ShardPlan | None = None
        #: How the loads were balanced, when not by summed durations.
        self.balance: str | None = None
        context = config.stash.get(_state.RUN_CONTEXT, None)
        if context is not None:
            context["shard"] = shard.label

    def partition(self, nodeids: Sequence[str]) -> ShardPlan:
        try:
            return partition_shards(list(nodeids), self.shard.count, self.group, self.durations)
        except ConfigError as err:
            raise _options.usage_error(err) from None

    def partition_items(self, items: Sequence[pytest.Item], batched: Sequence[pytest.Item]) -> ShardPlan:
        """With ``--dynamo-gpu-parallel`` and a stage, a shard's load is its
        makespan on the stage's machine class (``[machines.<class>]``); else
        the sum of its durations."""
        context = self.config.stash.get(_state.RUN_CONTEXT, {})
        pipeline, stage = context.get("pipeline"), context.get("stage")
        batch = _state.batch(self.config)
        if batch is not None and pipeline and stage and _budgets.gpu_parallel(self.config):
            try:
                plan = batch.partition_packed(
                    _state.positions(items, batched),
                    self.shard.count,
                    self.group,
                    pipeline,
                    stage,
                    self.durations,
                )
                self.balance = "GPU packing on the stage's machine"
                return plan
            except ConfigError as err:
                self.balance = str(err).splitlines()[0]
        return self.partition([item.nodeid for item in items])

    def split(self, items: list[pytest.Item], batched: Sequence[pytest.Item] | None = None) -> None:
        plan = self.partition_items(items, items if batched is None else batched)
        mine = self.shard.index - 1
        kept = [item for item, at in zip(items, plan.shard_of) if at == mine]
        dropped = [item for item, at in zip(items, plan.shard_of) if at != mine]
        self.plan = plan
        self.before = len(items)
        self.mine = len(kept)
        if dropped:
            self.config.hook.pytest_deselected(items=dropped)
            items[:] = kept
        if _state.is_worker(self.config):
            output: dict[str, Any] = self.config.workeroutput  # type: ignore[attr-defined]
            output["dynamo_shard"] = {"before": self.before, "mine": self.mine, "loads": plan.loads}

    def plan_lines(self, items: Sequence[pytest.Item], batched: Sequence[pytest.Item]) -> list[str]:
        """``--dynamo-plan``: every shard's test count and estimated time
        (a makespan when the stage packs GPU tests)."""
        plan = self.partition_items(items, batched)
        known = f"{plan.known} of {len(items)} tests with a recorded duration"
        if plan.known < len(items):
            known += f", the others counted as {human(plan.assumed)} (the median)"
        balance = f"; {self.balance}" if self.balance else ""
        count = self.shard.count
        lines = [f"shards: {len(items)} tests over {count} (group: {self.group}; {known}{balance})"]
        for k, (count, load) in enumerate(zip(plan.counts, plan.loads), start=1):
            here = "  <- this machine" if k == self.shard.index else ""
            lines.append(f"  shard {k}/{self.shard.count}: {count:>6} tests  ~{human(load)}{here}")
        return lines

    def pytest_report_header(self, config: pytest.Config) -> str:
        return f"dynamo shard: {self.shard.label} (from {self.shard.source}; group: {self.group})"

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        data = output.get("dynamo_shard")
        if data and self.before is None:
            self.before = int(data["before"])
            self.mine = int(data["mine"])

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # An empty shard is normal (more machines than tests): not exit 5,
        # unless nothing was selected before the split.
        if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and self.before and self.mine == 0:
            session.exitstatus = pytest.ExitCode.OK

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.before is None:
            return
        label = self.shard.label
        if self.mine == 0 and self.before:
            terminalreporter.write_line(
                f"pytest-dynamo: shard {label} received no test ({self.before} tests over "
                f"{self.shard.count} shards); exit 0",
                yellow=True,
            )
        elif self.before:
            balance = f" ({self.balance})" if self.balance else ""
            terminalreporter.write_line(
                f"pytest-dynamo: shard {label}: {self.mine} of {self.before} selected tests{balance}"
            )


#: What names one CI run of a job across its machines, by CI: the variables
#: every shard of it sees alike.
_RUN_IDENTITY = (
    ("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_JOB"),
    ("CI_PIPELINE_ID", "CI_JOB_NAME"),
    ("SLURM_ARRAY_JOB_ID",),
)
#: GitLab names the jobs of ``parallel: N`` "name 1/N", "name 2/N", ...
_GITLAB_INDEX = re.compile(r"\s+[0-9]+/[0-9]+$")


def shared_run_id(environ: Mapping[str, str], context: Mapping[str, Any], shard: Shard) -> str | None:
    """The run_id every shard of one CI run writes, so the records of N
    machines are one run: from ``DYNAMO_RUN_ID``, else the CI's own run
    identity (GitHub Actions, GitLab, Slurm), with the pipeline, stage and
    shard count; None when the environment names no run (each shard is then
    its own run)."""
    identity = environ.get("DYNAMO_RUN_ID", "").strip()
    if not identity:
        for names in _RUN_IDENTITY:
            if environ.get(names[0], "").strip():
                values = [environ.get(name, "").strip() for name in names]
                if names[0] == "CI_PIPELINE_ID":
                    values[1] = _GITLAB_INDEX.sub("", values[1])
                identity = "\0".join(values)
                break
    if not identity:
        return None
    parts = (identity, str(context.get("pipeline")), str(context.get("stage")), str(shard.count))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def run_id(config: pytest.Config) -> str | None:
    """This run's shared run_id when it is one shard of a CI run, else None."""
    found = plugin(config)
    if found is None:
        return None
    context: dict[str, Any] = config.stash.get(_state.RUN_CONTEXT, {})
    return shared_run_id(os.environ, context, found.shard)


def register(config: pytest.Config) -> None:
    shard = resolve(config)
    if shard is not None:
        plugin = ShardsPlugin(config, shard, _options.durations_path(config))
        config.pluginmanager.register(plugin, SHARDS)


def plugin(config: pytest.Config) -> ShardsPlugin | None:
    found = config.pluginmanager.get_plugin(SHARDS)
    return found if isinstance(found, ShardsPlugin) else None


def apply(
    config: pytest.Config,
    items: list[pytest.Item],
    planning: bool,
    batched: Sequence[pytest.Item] | None = None,
) -> None:
    """Keep this shard's tests among those still selected (the plan runs
    nothing: it prints every shard instead). ``batched``: the items of the
    core's batch, in its order (for GPU packing by the tests' needs)."""
    found = plugin(config)
    if found is not None and not planning:
        found.split(items, batched)
