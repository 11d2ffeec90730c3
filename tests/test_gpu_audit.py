"""The lowest-hardware audit against a fake NVML: the tests start child
processes and put them on fake GPUs; the audit must see them, attribute them,
and say which tests are marked with more (or less) hardware than they use."""

from __future__ import annotations

import pytest
from fake_nvml import FakeNvml, gpus, prepare

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]


@pytest.fixture
def fake(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    return prepare(tmp_path_factory, monkeypatch)


#: Helpers of the inner suites: put a process on a fake GPU, and wait until
#: the audit has sampled it (no sleeping and hoping).
HELPERS = '''
import contextlib, fcntl, os, subprocess, sys, time

import pytest


@contextlib.contextmanager
def _machine():
    """The fake machine's text, to edit; xdist workers take turns."""
    path = os.environ["FAKE_NVML_CONFIG"]
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(path) as f:
            edit = [f.read()]
        yield edit
        partial = f"{path}.{os.getpid()}.partial"
        with open(partial, "w") as f:
            f.write(edit[0])
        os.replace(partial, path)


def on_gpu(gpu, mib, pid=None):
    """A child process (or `pid`) holding `mib` MiB on fake GPU `gpu`."""
    child = None
    if pid is None:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        pid = child.pid
    line = f"proc|{gpu}|{pid}|{mib}\\n"
    with _machine() as text:
        text[0] += line
    return child, line


def off_gpu(child, line):
    with _machine() as text:
        text[0] = text[0].replace(line, "")
    if child is not None:
        child.kill()
        child.wait()


def sampled(config, more=2):
    """Wait until the audit has taken `more` samples from now."""
    audit = config.pluginmanager.get_plugin("dynamo-gpu-audit").audit
    target = audit.samples + more
    deadline = time.monotonic() + 10
    while audit.samples < target:
        assert time.monotonic() < deadline, "the audit took no sample"
        time.sleep(0.005)
'''

SUITE = (
    HELPERS
    + """
pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]


@pytest.mark.gpu_2
def test_two_marked_one_used(request):
    child, line = on_gpu(1, 3000)
    sampled(request.config)
    off_gpu(child, line)


@pytest.mark.gpu_1
def test_one_marked_none_used():
    pass


@pytest.mark.gpu_1
def test_one_marked_two_used(request):
    a = on_gpu(0, 100)
    b = on_gpu(1, 200)
    sampled(request.config)
    off_gpu(*a)
    off_gpu(*b)


@pytest.mark.gpu_1
@pytest.mark.vram_gib(40)
def test_one_used_well(request):
    child, line = on_gpu(0, 20480)
    sampled(request.config)
    off_gpu(child, line)


@pytest.mark.gpu_0
def test_cpu():
    pass
"""
)


AUDIT_PROPERTIES = ("dynamo_gpus_used", "dynamo_gpu_peak_mib")


def props(result: pytest.RunResult) -> dict[str, dict[str, object]]:
    """The audit's user_properties of each test's call report, by test name
    (other features' properties, such as the records' facts, left out)."""
    out: dict[str, dict[str, object]] = {}
    for report in result.reprec.getreports("pytest_runtest_logreport"):  # type: ignore[attr-defined]
        if report.when == "call":
            out[report.nodeid.split("::")[-1]] = {
                name: value for name, value in report.user_properties if name in AUDIT_PROPERTIES
            }
    return out


def run(pytester: pytest.Pytester, fake: FakeNvml, *args: str) -> pytest.RunResult:
    return pytester.runpytest(f"--dynamo-nvml-lib={fake.lib()}", "--dynamo-audit-interval=0.01", *args)


def test_the_audit_finds_tests_marked_with_more_hardware_than_they_use(
    pytester: pytest.Pytester, fake: FakeNvml
) -> None:
    fake.machine(gpus(2))
    pytester.makepyfile(SUITE)
    result = run(pytester, fake)
    result.assert_outcomes(passed=5)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*= pytest-dynamo GPU audit (warn) =*",
            "marked with other hardware than they use (mark the lowest each runs on):",
            "  *::test_one_marked_none_used: marked gpu_1, never touched a GPU: mark it gpu_0",
            "  *::test_one_marked_two_used: marked gpu_1, used 2 GPUs: mark it gpu_2",
            "  *::test_two_marked_one_used: marked gpu_2, used 1 GPU: mark it gpu_1",
            "VRAM from the measured peaks:",
            "  *::test_one_marked_two_used: peaked at 0.20 GiB on one GPU: add @pytest.mark.vram_gib(0.2)",
            "  *::test_one_used_well: marked vram_gib(40) but peaked at 20.00 GiB on one GPU: "
            "lower it to vram_gib(20)",
            "  *::test_two_marked_one_used: peaked at 2.93 GiB on one GPU: add @pytest.mark.vram_gib(3)",
            "pytest-dynamo: GPU audit of 4 tests (sampled every 0.01 s): 3 marked with other hardware "
            "than they use, 3 VRAM suggestions; a warning (dynamo_audit = warn), see https://*/docs/gpus.md",
        ]
    )
    figures = props(result)
    assert figures["test_two_marked_one_used"] == {"dynamo_gpus_used": 1, "dynamo_gpu_peak_mib": 3000.0}
    assert figures["test_one_marked_none_used"] == {"dynamo_gpus_used": 0, "dynamo_gpu_peak_mib": 0.0}
    assert figures["test_one_marked_two_used"] == {"dynamo_gpus_used": 2, "dynamo_gpu_peak_mib": 200.0}
    # gpu_0 tests are not sampled.
    assert figures["test_cpu"] == {}


def test_strict_fails_the_run(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    fake.machine(gpus(2))
    pytester.makepyfile(SUITE)
    result = run(pytester, fake, "--dynamo-audit=strict")
    result.assert_outcomes(passed=5)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*3 marked with other hardware than they use*; the run fails (dynamo_audit = strict)*"]
    )
    # pytest's last line is red, as the exit status says, without a made-up failure.
    result = run(pytester, fake, "--dynamo-audit=strict", "--color=yes")
    assert result.outlines[-1].startswith("\x1b[31m=") and "5 passed" in result.outlines[-1]
    assert "failed" not in result.outlines[-1]


def test_off_samples_nothing(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.machine(gpus(2))
    pytester.makepyfile(
        "import pytest\n@pytest.mark.pre_merge\n@pytest.mark.integration\n@pytest.mark.gpu_1\n"
        "def test_one(request):\n"
        "    assert request.config.pluginmanager.get_plugin('dynamo-gpu-audit').audit is None\n"
    )
    monkeypatch.setenv("DYNAMO_AUDIT", "off")
    result = run(pytester, fake)
    result.assert_outcomes(passed=1)
    assert "GPU audit" not in result.stdout.str()
    assert props(result)["test_one"] == {}


def test_a_fixtures_server_counts_for_the_tests_that_use_it(
    pytester: pytest.Pytester, fake: FakeNvml
) -> None:
    fake.machine(gpus(2))
    pytester.makepyfile(
        HELPERS
        + """
pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]


@pytest.fixture(scope="module")
def server(request):
    child, line = on_gpu(0, 8192)
    yield
    off_gpu(child, line)


@pytest.mark.gpu_1
@pytest.mark.vram_gib(8)
def test_first(server, request):
    sampled(request.config)


@pytest.mark.gpu_1
@pytest.mark.vram_gib(8)
def test_second(server, request):
    sampled(request.config)
"""
    )
    result = run(pytester, fake)
    result.assert_outcomes(passed=2)
    # A clean audit is one line, not a warning section.
    result.stdout.fnmatch_lines(["pytest-dynamo: GPU audit of 2 tests (sampled every 0.01 s): no findings"])
    assert "= pytest-dynamo GPU audit" not in result.stdout.str()
    assert "warning" not in result.stdout.str()
    assert "GPU audit" not in run(pytester, fake, "-q").stdout.str()
    figures = props(result)
    assert (
        figures["test_first"]
        == figures["test_second"]
        == {"dynamo_gpus_used": 1, "dynamo_gpu_peak_mib": 8192.0}
    )


def test_a_process_outside_the_test_is_not_judged(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    fake.machine(gpus(2))
    pytester.makepyfile(
        HELPERS
        + """
@pytest.mark.pre_merge
@pytest.mark.integration
@pytest.mark.gpu_2
def test_beside_a_stranger(request):
    stranger = on_gpu(1, 500, pid=1)  # init: alive, and not the test's
    mine = on_gpu(0, 100)
    sampled(request.config)
    off_gpu(*mine)
    off_gpu(*stranger)
"""
    )
    result = run(pytester, fake, "--dynamo-audit=strict")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "not judged (GPU work the audit cannot attribute):",
            "  *::test_beside_a_stranger: marked gpu_2, used 1 GPU, but GPU 1 also ran process 1, "
            "which is not the test's (a container or daemon it started?)",
        ]
    )
    # Figures that may miss GPU work are not handed to the records.
    assert props(result)["test_beside_a_stranger"] == {}


def test_a_failed_test_is_not_judged(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    fake.machine(gpus(2))
    pytester.makepyfile(
        "import pytest\n@pytest.mark.pre_merge\n@pytest.mark.integration\n@pytest.mark.gpu_2\n"
        "def test_broken():\n    assert False\n"
    )
    result = run(pytester, fake, "--dynamo-audit=strict")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["pytest-dynamo: GPU audit of 1 test (sampled every 0.01 s): no findings"])
    assert props(result)["test_broken"] == {"dynamo_gpus_used": 0, "dynamo_gpu_peak_mib": 0.0}


def test_a_library_that_cannot_list_processes_is_reported(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    fake.machine(gpus(2))
    pytester.makepyfile(
        """
        import pytest

        pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]

        @pytest.mark.gpu_2
        def test_two(): pass

        @pytest.mark.gpu_1
        def test_one(): pass
        """
    )
    result = pytester.runpytest(f"--dynamo-nvml-lib={fake.lib('old')}", "--dynamo-audit=strict")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    # Nothing sampled: one line, not a warning section.
    result.stdout.fnmatch_lines(
        [
            "pytest-dynamo: GPU audit: 2 gpu tests not sampled: the NVML library cannot list the processes "
            "on a GPU: *undefined symbol: nvmlDeviceGetComputeRunningProcesses_v3",
        ]
    )
    assert "= pytest-dynamo GPU audit" not in result.stdout.str()
    assert props(result)["test_two"] == {}


def test_a_bad_interval_is_a_usage_error(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--dynamo-audit-interval=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--dynamo-audit-interval: '0' is not a number of seconds from 0.001 to 60*"]
    )
    pytester.makeini("[pytest]\ndynamo_audit_interval = fast\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dynamo_audit_interval: 'fast' is not a number of seconds*"])


def test_under_xdist_the_controller_reports_every_workers_tests(
    pytester: pytest.Pytester, fake: FakeNvml
) -> None:
    fake.machine(gpus(2))
    pytester.makepyfile(SUITE)
    result = pytester.runpytest_subprocess(
        "-n", "2", f"--dynamo-nvml-lib={fake.lib()}", "--dynamo-audit-interval=0.01", "--junitxml=out.xml"
    )
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        [
            "  *::test_one_marked_none_used: marked gpu_1, never touched a GPU: mark it gpu_0",
            "  *::test_one_marked_two_used: marked gpu_1, used 2 GPUs: mark it gpu_2",
            "  *::test_two_marked_one_used: marked gpu_2, used 1 GPU: mark it gpu_1",
            "pytest-dynamo: GPU audit of 4 tests *",
        ]
    )
    xml = (pytester.path / "out.xml").read_text()
    assert '<property name="dynamo_gpus_used" value="2" />' in xml
    assert '<property name="dynamo_gpu_peak_mib" value="3000.0" />' in xml


TWO_GPU_1_TESTS = """
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]

@pytest.mark.gpu_1
def test_a(): pass

@pytest.mark.gpu_1
def test_b(): pass
"""


def test_a_wedged_driver_does_not_hang_the_audit(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The count set by hand skips the probe; the audit still opens NVML,
    # which never answers: the run must still end, and say why.
    fake.machine(gpus(1))
    monkeypatch.setenv("FAKE_NVML_INIT_SLEEP", "3600")
    pytester.makepyfile(TWO_GPU_1_TESTS)
    result = pytester.runpytest_subprocess(
        f"--dynamo-nvml-lib={fake.lib()}", "--dynamo-gpus=1", "--dynamo-nvml-timeout=0.5", timeout=120
    )
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["pytest-dynamo: GPU audit: 2 gpu tests not sampled: NVML did not answer in 0.5 s*"]
    )


def test_an_implausible_process_count_is_a_broken_library(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Believed, it is an allocation of ~100 GB for the process list.
    fake.machine(gpus(1))
    monkeypatch.setenv("FAKE_NVML_PROC_COUNT", "4294967290")
    pytester.makepyfile(TWO_GPU_1_TESTS)
    result = pytester.runpytest_subprocess(
        f"--dynamo-nvml-lib={fake.lib()}", "--dynamo-audit=strict", timeout=120
    )
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "pytest-dynamo: GPU audit: 2 gpu tests not sampled: NVML answered 4294967290 processes on GPU 0, "
            "which no real machine does: a broken NVML library*"
        ]
    )
