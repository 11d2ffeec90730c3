"""Hand-made run histories in the records schema (version 1), for tests
whose answers are known, and a stand-in for the records feature in pytester
runs."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Union

START = datetime(2026, 1, 1, tzinfo=timezone.utc)

#: outcome, or (outcome, duration_s), or (outcome, duration_s, extra test-record fields)
Result = Union[str, tuple[str, float], tuple[str, float, Mapping[str, Any]]]


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def metric(name: str, value: float, unit: str = "ms", higher_is_better: bool = False) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": unit, "higher_is_better": higher_is_better}


@dataclass
class Builder:
    """Runs ``every`` apart (an hour), each with its run_start, test records and run_end."""

    lines: list[str] = field(default_factory=list)
    count: int = 0
    every: timedelta = timedelta(hours=1)

    def run(
        self,
        results: Mapping[str, Result],
        *,
        commit: str | None = "c1",
        pipeline: str | None = "nightly",
        gpu: str | None = "NVIDIA H100 80GB HBM3",
        start: bool = True,
        end: bool = True,
        run_id: str | None = None,
        owner: str | None = None,
        stage: str | None = None,
    ) -> str:
        self.count += 1
        rid = run_id or f"{self.count:032x}"
        began = START + self.every * self.count
        if start:
            devices = (
                []
                if gpu is None
                else [
                    {
                        "index": 0,
                        "name": gpu,
                        "uuid": "GPU-0",
                        "memory_total_mib": 81559,
                        "memory_free_mib": 80000,
                        "mig": False,
                    }
                ]
            )
            self.add(
                {
                    "record": "run_start",
                    "schema": 1,
                    "run_id": rid,
                    "pipeline": pipeline,
                    "stage": stage,
                    "framework": None,
                    "gpus": {
                        "visible": len(devices),
                        "physical": len(devices),
                        "devices": devices,
                        "driver": "550.54",
                        "cuda_visible_devices": None,
                        "reason": None,
                        "source": "nvml",
                    },
                    "git": {"commit": commit, "branch": "main"},
                    "host": "ci-runner-1",
                    "plugin_version": "0.1.0",
                    "started_at": stamp(began),
                }
            )
        counts: dict[str, int] = {}
        for i, (nodeid, result) in enumerate(results.items()):
            extra: Mapping[str, Any] = {}
            if isinstance(result, str):
                outcome, duration = result, 1.0
            elif len(result) == 2:
                outcome, duration = result  # type: ignore[misc]
            else:
                outcome, duration, extra = result  # type: ignore[misc]
            counts[outcome] = counts.get(outcome, 0) + 1
            record = make_test_record(rid, nodeid, outcome, duration, began + timedelta(seconds=i + 1))
            record["owner"] = owner
            record["stage"] = stage
            record.update(extra)
            self.add(record)
        if end:
            self.add(
                {
                    "record": "run_end",
                    "schema": 1,
                    "run_id": rid,
                    "exit_status": 1 if counts.get("failed") or counts.get("error") else 0,
                    "counts": counts,
                    "wall_s": 100.0,
                    "finished_at": stamp(began + timedelta(minutes=30)),
                }
            )
        return rid

    def add(self, record: Mapping[str, Any]) -> None:
        self.lines.append(json.dumps(record))

    def write(self, path: Path, *, compress: bool = False) -> Path:
        text = "".join(line + "\n" for line in self.lines)
        if compress:
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)
        return path


def make_test_record(
    run_id: str, nodeid: str, outcome: str, duration: float, finished: datetime
) -> dict[str, Any]:
    attempts = [{"outcome": outcome, "setup_s": 0.0, "call_s": duration, "teardown_s": 0.0}]
    if outcome == "flaky":
        attempts = [{"outcome": "failed", "setup_s": 0.0, "call_s": duration, "teardown_s": 0.0}, *attempts]
    return {
        "record": "test",
        "schema": 1,
        "run_id": run_id,
        "nodeid": nodeid,
        "test_id": "0" * 64,
        "outcome": outcome,
        "attempts": attempts,
        "duration_s": duration,
        "markers": {"lifecycle": ["nightly"], "hardware": ["gpu_1"]},
        "reason": None,
        "gpus_used": 1,
        "gpu_peak_mib": None,
        "worker": None,
        "flow_id": "f" * 32,
        "stage": None,
        "gating": True,
        "owner": None,
        "metrics": [],
        "finished_at": stamp(finished),
    }


def repeat(builder: Builder, times: int, results: Mapping[str, Result], **kw: Any) -> list[str]:
    return [builder.run(results, **kw) for _ in range(times)]


def nodeids(records: Iterable[str]) -> list[str]:
    return [json.loads(line)["nodeid"] for line in records]


#: A conftest for pytester runs: stands in for the records feature (not in
#: this branch yet) by filling the stash keys it fills, in the schema it
#: writes. Once the records feature is installed and fills them itself,
#: ``setdefault`` leaves its values alone.
RECORDS_CONFTEST = """
import json
import time
from datetime import datetime, timezone

import pytest
from pytest_dynamo import _state


def _now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class StandInRecords:
    def __init__(self):
        self.started = time.monotonic()
        self.tests = {}

    def pytest_runtest_logreport(self, report):
        t = self.tests.setdefault(report.nodeid, {"outcome": "passed", "duration_s": 0.0, "metrics": []})
        t["duration_s"] += report.duration
        if report.when == "call" or report.outcome != "passed":
            if report.when != "call" and report.failed:
                t["outcome"] = "error"
            elif t["outcome"] == "passed":
                t["outcome"] = report.outcome
        for key, value in report.user_properties:
            if key == "dynamo_metric" and value not in t["metrics"]:
                t["metrics"].append(value)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        config = session.config
        records = []
        for nodeid, t in self.tests.items():
            records.append(json.dumps({
                "record": "test", "schema": 1, "run_id": "0" * 32, "nodeid": nodeid,
                "test_id": "0" * 64, "outcome": t["outcome"], "attempts": [],
                "duration_s": t["duration_s"], "markers": {}, "reason": None, "gpus_used": None,
                "gpu_peak_mib": None, "worker": None, "flow_id": "0" * 32, "stage": None,
                "gating": True, "owner": None, "metrics": t["metrics"], "finished_at": _now(),
            }))
        config.stash.setdefault(_state.TEST_RECORDS, records)
        if _state.RUN_END not in config.stash:
            counts = {}
            for t in self.tests.values():
                counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
            config.stash[_state.RUN_END] = json.dumps({
                "record": "run_end", "schema": 1, "run_id": "0" * 32, "exit_status": int(exitstatus),
                "counts": counts, "wall_s": time.monotonic() - self.started, "finished_at": _now(),
            })


def pytest_configure(config):
    config.pluginmanager.register(StandInRecords(), "stand-in-records")
"""
