"""Prometheus export at the end of a run: the node_exporter textfile, the
push to a real Pushgateway and back, and bad options.

The metrics are made from the run's records on ``config.stash``, which the
records feature fills. Each pytester run here gets ``RECORDS_CONFTEST``, a
stand-in that fills the same keys in the same schema only when nothing else
did, so these tests hold before and after the records feature is installed.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from history_builder import RECORDS_CONFTEST
from pytest_dynamo import _core, _prometheus, _state

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]


def suite(pytester: pytest.Pytester, marks: str) -> None:
    pytester.makeconftest(RECORDS_CONFTEST)
    pytester.makepyfile(
        f"""
import pytest
{marks}def test_one(): pass
{marks}def test_two(): pass
{marks}def test_three(): assert False
{marks}@pytest.mark.skip(reason="not here")
def test_four(): pass
"""
    )


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the one sample of `name` whose labels include `labels`."""
    found = []
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        head, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            found.append(float(value))
    assert len(found) == 1, f"{name} {labels}: {found}\n{text}"
    return found[0]


def test_the_textfile_holds_the_runs_metrics(pytester: pytest.Pytester, valid_marks: str) -> None:
    suite(pytester, valid_marks)
    result = pytester.runpytest("--dynamo-prometheus=metrics/pytest.prom")
    assert (pytester.path / "metrics").is_dir() is False
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dynamo-prometheus: folder */metrics does not exist*"])

    (pytester.path / "metrics").mkdir()
    result = pytester.runpytest("--dynamo-prometheus=metrics/pytest.prom")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["pytest-dynamo: wrote metrics of 4 tests to */metrics/pytest.prom"])
    text = (pytester.path / "metrics" / "pytest.prom").read_text()
    assert sample(text, "dynamo_tests", pipeline="none", stage="none", outcome="passed") == 2
    assert sample(text, "dynamo_tests", outcome="failed") == 1
    assert sample(text, "dynamo_tests", outcome="skipped") == 1
    assert sample(text, "dynamo_test_duration_seconds_count", stage="none") == 4
    assert sample(text, "dynamo_test_duration_seconds_bucket", le="+Inf") == 4
    assert sample(text, "dynamo_flaky_tests") == 0
    assert sample(text, "dynamo_quarantined_failures") == 0
    assert sample(text, "dynamo_run_exit_status") == 1
    assert 0 < sample(text, "dynamo_run_wall_seconds") < 600
    assert abs(sample(text, "dynamo_run_finished_timestamp_seconds") - time.time()) < 600
    assert "# HELP dynamo_tests Tests of the last run by outcome, pipeline and stage." in text
    assert [p.name for p in (pytester.path / "metrics").iterdir()] == ["pytest.prom"], "no temp file left"


def test_the_ini_option_and_the_suffix_check(pytester: pytest.Pytester, valid_marks: str) -> None:
    suite(pytester, valid_marks)
    pytester.makeini("[pytest]\ndynamo_prometheus = run.txt\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*run.txt must end in .prom*"])
    pytester.makeini("[pytest]\ndynamo_prometheus = run.prom\n")
    pytester.runpytest().assert_outcomes(passed=2, failed=1, skipped=1)
    assert "dynamo_tests{" in (pytester.path / "run.prom").read_text()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://gw:9091", "only plain http:// is supported"),
        ("gw:9091", "is not an http:// URL"),
        ("http://", "has no host"),
        ("http://:9091", "http://:9091 has no host"),
        # Once read as port 80 while the summary said :99999.
        ("http://127.0.0.1:99999", "http://127.0.0.1:99999 is not a usable URL: invalid port number"),
        # Once pushed to /?x=1 instead of the group, and called a success.
        ("http://127.0.0.1:9091/?x=1#frag", "has a query or a fragment (after ? or #)"),
        ("http://user:secret@gw:99999", "http://***@gw:99999 is not a usable URL"),
    ],
)
def test_a_bad_pushgateway_url_is_a_usage_error(pytester: pytest.Pytester, url: str, message: str) -> None:
    result = pytester.runpytest(f"--dynamo-pushgateway={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
    assert "secret" not in result.stdout.str() + result.stderr.str()


def test_credentials_in_the_url_go_as_basic_auth_and_are_never_shown(
    pytester: pytest.Pytester, valid_marks: str
) -> None:
    seen: list[tuple[str, str, str | None]] = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.command, self.path, self.headers["Authorization"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        suite(pytester, valid_marks)
        port = server.server_address[1]
        result = pytester.runpytest(f"--dynamo-pushgateway=http://ci%40corp:s3cret@127.0.0.1:{port}/gw/")
    finally:
        server.shutdown()
        server.server_close()
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    token = base64.b64encode(b"ci@corp:s3cret").decode()
    assert seen == [("PUT", "/gw/metrics/job/pytest-dynamo/pipeline/none", f"Basic {token}")]
    result.stdout.fnmatch_lines(
        [
            f"pytest-dynamo: pushed metrics of 4 tests to http://127.0.0.1:{port}/gw/metrics/job/pytest-dynamo/pipeline/none"
        ]
    )
    assert "s3cret" not in result.stdout.str() + result.stderr.str()


def test_an_unreachable_pushgateway_is_reported_not_fatal(
    pytester: pytest.Pytester, valid_marks: str
) -> None:
    suite(pytester, valid_marks)
    port = free_port()
    result = pytester.runpytest(f"--dynamo-pushgateway=http://127.0.0.1:{port}")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"pytest-dynamo: Prometheus export: "
            f"http://127.0.0.1:{port}/metrics/job/pytest-dynamo/pipeline/none: *"
        ]
    )


def test_without_records_there_is_nothing_to_export(pytester: pytest.Pytester, tmp_path: Path) -> None:
    # A configured run without a session: nothing filled the records keys.
    config = pytester.parseconfigure()
    for key in (_state.TEST_RECORDS, _state.RUN_END):
        if key in config.stash:
            del config.stash[key]
    export = _prometheus.PrometheusExport(config, tmp_path / "x.prom", None)
    export.pytest_sessionfinish(session=None)  # type: ignore[arg-type]
    assert not (tmp_path / "x.prom").exists()
    assert export.problems == [
        "no test records on this run, so no Prometheus metrics: the metrics are made from the records "
        f"({_core.DOCS_URL}records.md)"
    ]


def test_the_encoder_skips_unreadable_records() -> None:
    metrics = _core.prometheus_text(['{"record":"test","run_id":"r","nodeid":"a","outcome":"passed"}', "{"])
    assert (metrics.tests, metrics.corrupt) == (1, 1)
    assert 'dynamo_tests{pipeline="none",stage="none",outcome="passed"} 1' in metrics.text


# --- the Pushgateway round trip -------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pushgateway_binary() -> str:
    for name in ("prometheus-pushgateway", "pushgateway"):
        found = shutil.which(name)
        if found:
            return found
    why = (
        "prometheus-pushgateway is not installed "
        "(apt-get install prometheus-pushgateway; .ci/run installs it)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the Pushgateway round trip: {why}")
    pytest.skip(why)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body.decode()


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """A real Pushgateway on a free loopback port, with its own storage file."""
    binary = pushgateway_binary()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "pushgateway.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            f"--persistence.file={tmp_path / 'pushgateway.data'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                get(f"{base}/-/ready")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        f"the Pushgateway did not start:\n{(tmp_path / 'pushgateway.log').read_text()}"
                    )
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_a_run_pushed_to_a_pushgateway_reads_back(
    pytester: pytest.Pytester, valid_marks: str, pushgateway: str
) -> None:
    suite(pytester, valid_marks)
    result = pytester.runpytest(f"--dynamo-pushgateway={pushgateway}")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [f"pytest-dynamo: pushed metrics of 4 tests to {pushgateway}/metrics/job/pytest-dynamo/pipeline/none"]
    )
    text = get(f"{pushgateway}/metrics")
    group = {"job": "pytest-dynamo", "pipeline": "none"}
    assert sample(text, "dynamo_tests", outcome="passed", **group) == 2
    assert sample(text, "dynamo_tests", outcome="failed", **group) == 1
    assert sample(text, "dynamo_test_duration_seconds_count", **group) == 4
    assert sample(text, "dynamo_run_exit_status", **group) == 1
    assert sample(text, "push_failure_time_seconds", **group) == 0
    assert sample(text, "push_time_seconds", **group) > 0
    # A second run replaces the group's metrics: the gateway keeps the last run.
    pytester.makepyfile(f"import pytest\n{valid_marks}def test_only(): pass\n")
    pytester.runpytest(f"--dynamo-pushgateway={pushgateway}").assert_outcomes(passed=1)
    text = get(f"{pushgateway}/metrics")
    assert sample(text, "dynamo_tests", outcome="passed", **group) == 1
    assert 'outcome="failed"' not in text


def test_the_grafana_dashboard_uses_the_documented_names() -> None:
    docs = Path(__file__).resolve().parent.parent / "docs"
    dashboard = json.loads((docs / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_(bucket|sum|count)$", "", n) for e in exprs for n in re.findall(r"\bdynamo_[a-z_]+", e)}
    documented = set(re.findall(r"^\| `(dynamo_[a-z_]+)` \|", (docs / "prometheus.md").read_text(), re.M))
    run_end = '{"record":"run_end","run_id":"r","exit_status":0,"wall_s":1.0}'
    record = '{"record":"test","run_id":"r","nodeid":"a","outcome":"passed","gpu_peak_mib":1.0}'
    text = _core.prometheus_text([record], run_end).text
    emitted = set(re.findall(r"^# TYPE (dynamo_[a-z_]+) ", text, re.M))
    assert used, exprs
    assert used <= documented == emitted
