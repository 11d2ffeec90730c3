"""The NVML probe against a fake NVML: the header, CUDA_VISIBLE_DEVICES in each
form, the count override, broken libraries, and the inventory handed to xdist
workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_nvml import A100, H100, FakeNvml, Gpu, Mig, gpus, prepare

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]


@pytest.fixture
def fake(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    return prepare(tmp_path_factory, monkeypatch)


#: A test file whose one test prints the run's inventory.
SHOW_INVENTORY = """
import json
import pytest
from pytest_dynamo import _state

@pytest.mark.pre_merge
@pytest.mark.gpu_0
@pytest.mark.unit
def test_show(request):
    print("INVENTORY=" + json.dumps(request.config.stash[_state.INVENTORY]))
"""


def inventory(result: pytest.RunResult) -> dict[str, object]:
    for line in result.outlines:
        if "INVENTORY=" in line:
            found: dict[str, object] = json.loads(line.split("INVENTORY=", 1)[1])
            return found
    raise AssertionError("no inventory printed:\n" + result.stdout.str())


def run_show(pytester: pytest.Pytester, *args: str) -> dict[str, object]:
    pytester.makepyfile(test_show=SHOW_INVENTORY)
    result = pytester.runpytest("-s", *args)
    result.assert_outcomes(passed=1)
    return inventory(result)


def test_the_header_and_the_inventory_describe_the_machine(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    fake.machine(gpus(8))
    pytester.makepyfile(test_show=SHOW_INVENTORY)
    result = pytester.runpytest("-s", f"--dynamo-nvml-lib={fake.lib()}")
    result.stdout.fnmatch_lines(
        ["dynamo: 8 of 8 GPUs visible (NVIDIA H100 80GB HBM3), 80 GiB each, driver 550.54.15"]
    )
    found = inventory(result)
    assert found["visible"] == 8
    assert found["physical"] == 8
    assert found["source"] == "nvml"
    assert found["driver"] == "550.54.15"
    assert found["reason"] is None
    assert found["cuda_visible_devices"] is None
    devices = found["devices"]
    assert isinstance(devices, list)
    assert devices[3] == {
        "index": 3,
        "name": H100,
        "uuid": "GPU-3333-0000-0000-0000-000000000003",
        "memory_total_mib": 81559.0,
        "memory_free_mib": 80000.0,
        "mig": False,
    }


def test_no_library_means_no_gpu_with_the_reason(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    # The default library name: no NVIDIA driver on the test machines.
    found = run_show(pytester, "--dynamo-nvml-lib=libnvidia-ml-absent.so.1")
    assert found["visible"] == 0
    assert found["source"] == "none"
    assert found["reason"] == "libnvidia-ml-absent.so.1 not found"
    pytester.makepyfile(test_show=SHOW_INVENTORY)
    result = pytester.runpytest("--dynamo-nvml-lib=libnvidia-ml-absent.so.1")
    result.stdout.fnmatch_lines(["dynamo: no NVIDIA GPU (libnvidia-ml-absent.so.1 not found)"])


def test_a_library_path_that_does_not_exist_is_a_usage_error(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_show=SHOW_INVENTORY)
    result = pytester.runpytest("--dynamo-nvml-lib=drivers/libnvidia-ml.so.1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--dynamo-nvml-lib=drivers/libnvidia-ml.so.1: no such file */drivers/libnvidia-ml.so.1; *"]
    )
    monkeypatch.setenv("DYNAMO_NVML_LIB", "/nowhere/libnvidia-ml.so.1")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*DYNAMO_NVML_LIB=/nowhere/libnvidia-ml.so.1: no such file*"])


def test_the_library_is_named_by_env_or_ini(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.machine(gpus(2))
    monkeypatch.setenv("DYNAMO_NVML_LIB", fake.lib())
    assert run_show(pytester)["visible"] == 2
    monkeypatch.delenv("DYNAMO_NVML_LIB")
    pytester.makeini(f"[pytest]\ndynamo_nvml_lib = {fake.lib()}\n")
    assert run_show(pytester)["visible"] == 2


@pytest.mark.parametrize(
    ("value", "visible"),
    [
        ("", []),
        ("1", [1]),
        ("3,0", [3, 0]),
        ("0,2,-1,1", [0, 2]),
        ("1,9,2", [1]),
        ("0,1,0", []),
        ("2gpu", [2]),
        ("GPU-2222", [2]),
        ("GPU-1111-0000-0000-0000-000000000001,GPU-3", [1, 3]),
        ("GPU-1111,GPU-ffff,GPU-0000", [1]),
        ("GPU-2222,0", [2]),
        ("MIG-0000", []),
    ],
)
def test_cuda_visible_devices_is_read_as_cuda_reads_it(
    pytester: pytest.Pytester,
    fake: FakeNvml,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    visible: list[int],
) -> None:
    fake.machine(gpus(4))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    found = run_show(pytester, f"--dynamo-nvml-lib={fake.lib()}")
    devices = found["devices"]
    assert isinstance(devices, list)
    assert [d["index"] for d in devices] == visible
    assert found["visible"] == len(visible)
    assert found["physical"] == 4
    assert found["cuda_visible_devices"] == value


def test_the_header_names_the_variable_and_why_nothing_is_visible(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.machine(gpus(8))
    pytester.makepyfile(test_show=SHOW_INVENTORY)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    pytester.runpytest(f"--dynamo-nvml-lib={fake.lib()}").stdout.fnmatch_lines(
        [
            "dynamo: 2 of 8 GPUs visible (NVIDIA H100 80GB HBM3), 80 GiB each, driver 550.54.15; "
            "CUDA_VISIBLE_DEVICES=0,1"
        ]
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    pytester.runpytest(f"--dynamo-nvml-lib={fake.lib()}").stdout.fnmatch_lines(
        ["dynamo: 0 of 8 GPUs visible (CUDA_VISIBLE_DEVICES is empty), driver 550.54.15"]
    )


def test_mig_instances_are_matched_by_uuid(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = [
        Gpu(
            A100,
            "GPU-a0a0",
            40960,
            40000,
            mig=True,
            instances=[
                Mig(f"{A100} MIG 1g.5gb", "MIG-1111", 4864),
                Mig(f"{A100} MIG 3g.20gb", "MIG-3333", 19968),
            ],
        ),
        Gpu(H100, "GPU-h1h1"),
    ]
    fake.machine(machine)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-3333,MIG-1")
    found = run_show(pytester, f"--dynamo-nvml-lib={fake.lib()}")
    devices = found["devices"]
    assert isinstance(devices, list)
    assert [(d["index"], d["uuid"], d["memory_total_mib"], d["mig"]) for d in devices] == [
        (0, "MIG-3333", 19968.0, True),
        (0, "MIG-1111", 4864.0, True),
    ]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    devices = run_show(pytester, f"--dynamo-nvml-lib={fake.lib()}")["devices"]
    assert isinstance(devices, list)
    assert [(d["uuid"], d["mig"]) for d in devices] == [("GPU-a0a0", True), ("GPU-h1h1", False)]


@pytest.mark.parametrize(
    ("how", "label"),
    [("flag", "--dynamo-gpus=1"), ("env", "DYNAMO_GPUS=1"), ("ini", "dynamo_gpus = 1")],
)
def test_the_count_can_be_overridden(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch, how: str, label: str
) -> None:
    fake.machine(gpus(8))
    args = [f"--dynamo-nvml-lib={fake.lib()}"]
    if how == "flag":
        args.append("--dynamo-gpus=1")
    elif how == "env":
        monkeypatch.setenv("DYNAMO_GPUS", "1")
    else:
        pytester.makeini("[pytest]\ndynamo_gpus = 1\n")
    found = run_show(pytester, *args)
    # NVML is not asked: nothing is known of the GPU but that there is one.
    assert (found["visible"], found["physical"], found["source"]) == (1, 0, "override")
    assert (found["reason"], found["devices"]) == (f"count set by {label}", [])
    pytester.runpytest(*args).stdout.fnmatch_lines([f"dynamo: 1 GPU (count set by {label})"])


def test_a_bad_count_is_a_usage_error(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_show=SHOW_INVENTORY)
    result = pytester.runpytest("--dynamo-gpus=two")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--dynamo-gpus=two: 'two' is not a whole number from 0 to 4096*"])
    monkeypatch.setenv("DYNAMO_GPUS", "-1")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*DYNAMO_GPUS=-1: -1 is out of range: a whole number from 0 to 4096; fix or unset it*"]
    )
    monkeypatch.setenv("DYNAMO_GPUS", "99999999999")
    assert pytester.runpytest().ret == pytest.ExitCode.USAGE_ERROR


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        ("no_init", "* is not a usable NVML library: *undefined symbol: nvmlInit_v2"),
        ("no_count", "the NVML library cannot count GPUs: *undefined symbol: nvmlDeviceGetCount_v2"),
    ],
)
def test_a_library_missing_symbols_means_no_gpu(
    pytester: pytest.Pytester, fake: FakeNvml, variant: str, reason: str
) -> None:
    fake.machine(gpus(2))
    found = run_show(pytester, f"--dynamo-nvml-lib={fake.lib(variant)}")
    assert (found["visible"], found["source"]) == (0, "none")
    pytester.runpytest(f"--dynamo-nvml-lib={fake.lib(variant)}").stdout.fnmatch_lines(
        [f"dynamo: no NVIDIA GPU ({reason})"]
    )


def test_an_old_library_still_counts_its_gpus(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    # No nvmlDeviceGetMemoryInfo_v2 and no nvmlShutdown: memory unknown, no crash.
    fake.machine(gpus(2))
    found = run_show(pytester, f"--dynamo-nvml-lib={fake.lib('old')}")
    devices = found["devices"]
    assert isinstance(devices, list)
    assert found["visible"] == 2
    assert devices[0]["memory_total_mib"] is None
    assert devices[0]["name"] == H100


def test_an_init_failure_means_no_gpu_with_the_reason(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    fake.machine(gpus(2), init=9)
    pytester.makepyfile(test_show=SHOW_INVENTORY)
    result = pytester.runpytest(f"--dynamo-nvml-lib={fake.lib()}")
    result.stdout.fnmatch_lines(
        ["dynamo: no NVIDIA GPU (the NVIDIA driver is not loaded (*libnvidia-ml.so.1 found))"]
    )
    fake.machine(gpus(2), init=999)
    result = pytester.runpytest(f"--dynamo-nvml-lib={fake.lib()}")
    result.stdout.fnmatch_lines(["dynamo: no NVIDIA GPU (*libnvidia-ml.so.1 failed to initialise: *)"])
    result.assert_outcomes(passed=1)


def test_xdist_workers_get_the_controllers_inventory(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.machine(gpus(4))
    log = pytester.path / "nvml.log"
    monkeypatch.setenv("FAKE_NVML_LOG", str(log))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    pytester.makepyfile(
        test_show="""
        import json, os
        import pytest
        from pytest_dynamo import _state

        @pytest.mark.pre_merge
        @pytest.mark.gpu_0
        @pytest.mark.unit
        @pytest.mark.parametrize("n", range(6))
        def test_show(request, n):
            worker = os.environ.get("PYTEST_XDIST_WORKER", "none")
            with open(f"seen-{worker}-{n}.json", "w") as f:
                json.dump(request.config.stash[_state.INVENTORY], f)
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", f"--dynamo-nvml-lib={fake.lib()}")
    result.assert_outcomes(passed=6)
    seen = {p.name.split("-")[1]: json.loads(p.read_text()) for p in pytester.path.glob("seen-*.json")}
    assert set(seen) == {"gw0", "gw1"}
    assert seen["gw0"] == seen["gw1"]
    assert seen["gw0"]["visible"] == 2
    assert [d["index"] for d in seen["gw0"]["devices"]] == [2, 3]
    # NVML was initialised once, by the controller; the workers did not probe.
    assert len(log.read_text().splitlines()) == 1


#: Long enough for a slow machine, short enough that a hang fails the test.
SUBPROCESS_TIMEOUT = 120


def run_show_apart(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, object]]:
    """``run_show`` in a process of its own: a crash or a hang fails this
    test instead of taking the whole run down."""
    pytester.makepyfile(test_show=SHOW_INVENTORY)
    result = pytester.runpytest_subprocess("-s", *args, timeout=SUBPROCESS_TIMEOUT)
    result.assert_outcomes(passed=1)
    return result, inventory(result)


BROKEN = "which no real machine does: a broken NVML library"


@pytest.mark.parametrize(
    ("knob", "machine", "reason"),
    [
        (("FAKE_NVML_COUNT", "4294967295"), gpus(2), f"NVML answered 4294967295 GPUs, {BROKEN}"),
        (
            ("FAKE_NVML_MIG_COUNT", "4294967295"),
            [Gpu(A100, "GPU-a0a0", 40960, 40000, mig=True)],
            f"NVML answered 4294967295 MIG instance slots on GPU 0, {BROKEN}",
        ),
        (
            None,
            [Gpu(H100, "GPU-h1h1", total_mib=100, free_mib=200)],
            f"NVML answered 104857600 bytes of memory, 209715200 free, for GPU 0, {BROKEN}",
        ),
    ],
    ids=["gpu-count", "mig-count", "memory"],
)
def test_an_implausible_answer_is_a_broken_library_and_no_gpu(
    pytester: pytest.Pytester,
    fake: FakeNvml,
    monkeypatch: pytest.MonkeyPatch,
    knob: tuple[str, str] | None,
    machine: list[Gpu],
    reason: str,
) -> None:
    # 4294967295 GPUs once made the probe allocate 446 GB and abort pytest.
    fake.machine(machine)
    if knob is not None:
        monkeypatch.setenv(*knob)
    result, found = run_show_apart(pytester, f"--dynamo-nvml-lib={fake.lib()}")
    assert (found["visible"], found["physical"], found["source"]) == (0, 0, "none")
    assert found["reason"] == reason
    result.stdout.fnmatch_lines([f"dynamo: no NVIDIA GPU ({reason})"])
    collected = pytester.runpytest_subprocess(
        "--collect-only", f"--dynamo-nvml-lib={fake.lib()}", timeout=SUBPROCESS_TIMEOUT
    )
    assert collected.ret == pytest.ExitCode.OK
    collected.stdout.fnmatch_lines([f"dynamo: no NVIDIA GPU ({reason})"])


@pytest.mark.parametrize("how", ["flag", "env", "ini"])
def test_a_wedged_driver_costs_the_time_limit_not_the_run(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # nvmlInit_v2 that never returns once hung every run, --collect-only too.
    fake.machine(gpus(2))
    monkeypatch.setenv("FAKE_NVML_INIT_SLEEP", "3600")
    args = [f"--dynamo-nvml-lib={fake.lib()}"]
    if how == "flag":
        args.append("--dynamo-nvml-timeout=0.5")
    elif how == "env":
        monkeypatch.setenv("DYNAMO_NVML_TIMEOUT", "0.5")
    else:
        pytester.makeini("[pytest]\ndynamo_nvml_timeout = 0.5\n")
    result, found = run_show_apart(pytester, *args)
    assert (found["visible"], found["source"], found["reason"]) == (0, "none", "NVML did not answer in 0.5 s")
    result.stdout.fnmatch_lines(["dynamo: no NVIDIA GPU (NVML did not answer in 0.5 s)"])
    collected = pytester.runpytest_subprocess("--collect-only", *args, timeout=SUBPROCESS_TIMEOUT)
    assert collected.ret == pytest.ExitCode.OK
    collected.stdout.fnmatch_lines(["dynamo: no NVIDIA GPU (NVML did not answer in 0.5 s)"])


def test_a_count_set_by_hand_does_not_ask_nvml(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake.machine(gpus(2))
    log = tmp_path / "nvml.log"
    monkeypatch.setenv("FAKE_NVML_LOG", str(log))
    monkeypatch.setenv("FAKE_NVML_INIT_SLEEP", "3600")
    # The longest time limit: only not asking NVML at all gets this done.
    args = (f"--dynamo-nvml-lib={fake.lib()}", "--dynamo-nvml-timeout=600")
    result = pytester.runpytest_subprocess(
        "--collect-only", *args, "--dynamo-gpus=0", timeout=SUBPROCESS_TIMEOUT
    )
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["dynamo: no NVIDIA GPU (count set by --dynamo-gpus=0)"])
    monkeypatch.setenv("DYNAMO_GPUS", "2")
    _, found = run_show_apart(pytester, *args, "--dynamo-audit=off")
    assert (found["visible"], found["physical"], found["devices"]) == (2, 0, [])
    assert (found["source"], found["reason"]) == ("override", "count set by DYNAMO_GPUS=2")
    assert not log.exists(), log.read_text()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "--dynamo-nvml-timeout=0",
            "*--dynamo-nvml-timeout: '0' is not a number of seconds above 0, at most*",
        ),
        ("env=nan", "*DYNAMO_NVML_TIMEOUT=nan: not a number of seconds above 0, at most 600; fix or unset*"),
        ("ini=soon", "*dynamo_nvml_timeout = soon: not a number of seconds above 0, at most 600*"),
    ],
)
def test_a_bad_nvml_timeout_is_a_usage_error(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch, setting: str, message: str
) -> None:
    pytester.makepyfile(test_show=SHOW_INVENTORY)
    args = [f"--dynamo-nvml-lib={fake.lib()}"]
    if setting.startswith("env="):
        monkeypatch.setenv("DYNAMO_NVML_TIMEOUT", setting[4:])
    elif setting.startswith("ini="):
        pytester.makeini(f"[pytest]\ndynamo_nvml_timeout = {setting[4:]}\n")
    else:
        args.append(setting)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_the_probe_gives_the_cores_inventory_object(fake: FakeNvml, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_dynamo._core import Engine, Inventory, probe_gpus

    fake.machine(gpus(4))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    found = probe_gpus(fake.lib(), "2,3", None, None, 10.0)
    assert isinstance(found, Inventory)
    as_data = json.loads(found.to_json())
    # The getters say what the JSON the records and the xdist workers get says.
    assert found.visible == as_data["visible"] == 2
    assert found.cuda_visible_devices == "2,3"
    assert found.reason is None
    fields = ["index", "name", "uuid", "memory_total_mib", "memory_free_mib", "mig"]
    assert [[getattr(d, f) for f in fields] for d in found.devices] == [
        [d[f] for f in fields] for d in as_data["devices"]
    ]
    # A worker's copy, made from the controller's JSON, is the same inventory.
    copy = Inventory.from_json(found.to_json())
    assert copy.to_json() == found.to_json()
    assert copy.describe() == found.describe()
    with pytest.raises(ValueError, match="not a GPU inventory"):
        Inventory.from_json('{"visible": "two"}')
    # The core's calls take the object itself.
    engine = Engine.builtin()
    batch = engine.ingest([("t.py::t", 1, [("gpu_4", (), {})]), ("t.py::u", 2, [("gpu_2", (), {})])], [])
    refused = batch.hardware(engine.gpu_rules(), found, []).by_position()
    assert (refused.reasons, refused.positions, refused.which) == (
        ["needs 4 GPUs, 2 visible (CUDA_VISIBLE_DEVICES=2,3)"],
        [0],
        [0],
    )
    counted = probe_gpus(None, None, 3, "--dynamo-gpus=3")
    assert (counted.visible, counted.devices, counted.reason) == (3, [], "count set by --dynamo-gpus=3")
