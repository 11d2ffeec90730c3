"""Tests the machine cannot run: too few GPUs, the wrong model, too little
VRAM, a framework not installed; skipped, deselected or failed."""

from __future__ import annotations

import pytest
from fake_nvml import A100, H100, L40S, FakeNvml, Gpu, gpus, prepare

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.integration]


@pytest.fixture
def fake(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    return prepare(tmp_path_factory, monkeypatch)


SUITE = """
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]

@pytest.mark.gpu_0
def test_cpu(): pass

@pytest.mark.gpu_1
def test_one(): pass

@pytest.mark.gpu_2
def test_two(): pass

@pytest.mark.gpu_8
def test_eight(): pass
"""


def lib(fake: FakeNvml) -> str:
    return f"--dynamo-nvml-lib={fake.lib()}"


def test_tests_needing_more_gpus_than_visible_are_skipped(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.machine(gpus(4))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("-rs", "--dynamo-audit=off", lib(fake))
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] *: needs 2 GPUs, 1 visible (CUDA_VISIBLE_DEVICES=0)",
            "SKIPPED [[]1[]] *: needs 8 GPUs, 1 visible (CUDA_VISIBLE_DEVICES=0)",
        ]
    )


def test_without_a_gpu_only_cpu_tests_run(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("-rs", "--dynamo-nvml-lib=libnvidia-ml-absent.so.1")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(["SKIPPED * needs 1 GPU, 0 visible (libnvidia-ml-absent.so.1 not found)"])


def test_only_the_nvidia_family_is_counted_against_nvml(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    pytester.makepyprojecttoml('[tool.pytest-dynamo.taxonomy.hardware]\nadd = ["xpu_2", "gpu_16"]\n')
    pytester.makepyfile(
        """
        import pytest

        pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]

        @pytest.mark.xpu_2
        def test_on_xpus(): pass

        @pytest.mark.gpu_16
        def test_on_sixteen(): pass
        """
    )
    result = pytester.runpytest("-rs", "--dynamo-nvml-lib=libnvidia-ml-absent.so.1")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * needs 16 GPUs, 0 visible *"])


def test_an_override_runs_as_a_smaller_machine(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    fake.machine(gpus(8))
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("-rs", "--dynamo-audit=off", lib(fake), "--dynamo-gpus=1")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED * needs 2 GPUs, 1 visible (count set by --dynamo-gpus=1)"])
    result = pytester.runpytest("-rs", "--dynamo-audit=off", lib(fake))
    result.assert_outcomes(passed=4)


def test_missing_hardware_can_be_deselected(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    fake.machine(gpus(2))
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--dynamo-on-missing-hardware=deselect", "--dynamo-audit=off", lib(fake))
    result.assert_outcomes(passed=3, deselected=1)
    pytester.makeini("[pytest]\ndynamo_on_missing_hardware = deselect\n")
    result = pytester.runpytest("--dynamo-audit=off", "--dynamo-gpus=0", lib(fake))
    result.assert_outcomes(passed=1, deselected=3)


def test_missing_hardware_can_fail_loudly(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.machine(gpus(1))
    pytester.makepyfile(SUITE)
    monkeypatch.setenv("DYNAMO_ON_MISSING_HARDWARE", "fail")
    result = pytester.runpytest("--dynamo-audit=off", lib(fake))
    result.assert_outcomes(passed=2, errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*pytest-dynamo: this machine cannot run it: needs 2 GPUs, 1 visible "
            "(dynamo_on_missing_hardware = fail)",
        ]
    )


def test_a_bad_action_is_a_usage_error(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--dynamo-on-missing-hardware=ignore")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--dynamo-on-missing-hardware: 'ignore' is not one of skip, deselect, fail*"]
    )
    monkeypatch.setenv("DYNAMO_ON_MISSING_HARDWARE", "skipp")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*DYNAMO_ON_MISSING_HARDWARE=skipp: not one of skip, deselect, fail*"])


MODELS = """
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]

@pytest.mark.gpu_1
@pytest.mark.h100
def test_h100(): pass

@pytest.mark.gpu_1
@pytest.mark.a100
def test_a100(): pass

@pytest.mark.gpu_1
@pytest.mark.l40
def test_l40(): pass

@pytest.mark.gpu_2
@pytest.mark.h100
def test_two_h100(): pass
"""


def test_a_model_marker_needs_a_visible_gpu_of_that_model(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.machine([Gpu(H100, "GPU-1"), Gpu(L40S, "GPU-2", 46068), Gpu(H100, "GPU-3")])
    pytester.makepyfile(MODELS)
    result = pytester.runpytest("-rs", "--dynamo-audit=off", lib(fake))
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(
        [
            'SKIPPED * needs a GPU matching a100 ("A100" in its name); '
            "visible: NVIDIA H100 80GB HBM3, NVIDIA L40S",
            'SKIPPED * needs a GPU matching l40 ("L40" in its name); visible: *',
        ]
    )
    # Hide one H100: two are needed.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    result = pytester.runpytest("-rs", "--dynamo-audit=off", lib(fake))
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(
        ['SKIPPED * needs 2 GPUs matching h100 ("H100" in their names), 1 visible; *']
    )


def test_model_names_are_configurable(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    fake.machine([Gpu(L40S, "GPU-1", 46068), Gpu(A100, "GPU-2", 40960), Gpu(A100, "GPU-3", 40960)])
    pytester.makepyprojecttoml(
        """
        [tool.pytest-dynamo.gpu]
        models = { l40 = ["L40", "L40S"], h100 = "A100" }
        """
    )
    pytester.makepyfile(MODELS)
    result = pytester.runpytest("-rs", "--dynamo-audit=off", lib(fake))
    result.assert_outcomes(passed=4)


def test_a_bad_gpu_table_is_a_usage_error(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    pytester.makepyprojecttoml('[tool.pytest-dynamo.gpu]\nmodels = { h10 = "H100" }\n')
    pytester.makepyfile(MODELS)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*[[]tool.pytest-dynamo.gpu[]] models.h10: "
            "'h10' is not a gpu_model marker (did you mean 'h100'?)",
            "*fix: *",
        ]
    )


VRAM = """
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.integration]

@pytest.mark.gpu_1
@pytest.mark.{marker}(3.8)
def test_small(): pass

@pytest.mark.gpu_1
@pytest.mark.{marker}(gib=60)
def test_large(): pass

@pytest.mark.gpu_2
@pytest.mark.{marker}(40)
def test_two_large(): pass
"""


def test_a_vram_marker_needs_a_gpu_with_that_much_memory(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    fake.machine([Gpu(A100, "GPU-1", 40960), Gpu(L40S, "GPU-2", 46068)])
    pytester.makepyfile(VRAM.format(marker="vram_gib"))
    result = pytester.runpytest("-rs", "--strict-markers", "--dynamo-audit=off", lib(fake))
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED * needs a GPU with 60 GiB of memory; the largest visible has 45.0 GiB"]
    )


def test_the_vram_marker_name_is_configurable(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    fake.machine([Gpu(A100, "GPU-1", 40960), Gpu(A100, "GPU-2", 40960)])
    pytester.makepyprojecttoml('[tool.pytest-dynamo.gpu]\nvram_marker = "profiled_vram_gib"\n')
    pytester.makepyfile(VRAM.format(marker="profiled_vram_gib"))
    result = pytester.runpytest("-rs", "--strict-markers", "--dynamo-audit=off", lib(fake))
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED * needs a GPU with 60 GiB of memory; the largest visible has 40.0 GiB"]
    )
    markers = pytester.runpytest("--markers").stdout
    markers.fnmatch_lines(
        ["@pytest.mark.profiled_vram_gib(gib): needs a GPU with at least this much memory*"]
    )


def test_a_vram_marker_without_a_number_is_a_usage_error(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.pre_merge
        @pytest.mark.integration
        @pytest.mark.gpu_1
        @pytest.mark.vram_gib("lots")
        def test_greedy(): pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*test_a_vram_marker_without_a_number_is_a_usage_error.py::test_greedy: "
            '@pytest.mark.vram_gib("lots") needs one number, the GiB of GPU memory the test needs, '
            "e.g. @pytest.mark.vram_gib(3.8)"
        ]
    )


FRAMEWORKS = """
import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.integration, pytest.mark.gpu_0]

@pytest.mark.trtllm
def test_trtllm(): pass

@pytest.mark.vllm
def test_vllm(): pass

@pytest.mark.custom_backend
def test_custom(): pass
"""


def test_a_framework_marker_needs_its_package_installed(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    pytester.makepyfile(FRAMEWORKS)
    # A package that imports would fail: finding it must not import it.
    pytester.makepyfile(vllm="raise RuntimeError('vllm was imported')")
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * needs trtllm: package tensorrt_llm not installed"])


def test_the_framework_packages_are_configurable(pytester: pytest.Pytester, fake: FakeNvml) -> None:
    pytester.makepyprojecttoml(
        """
        [tool.pytest-dynamo.taxonomy.framework]
        add = ["lmcache"]
        [tool.pytest-dynamo.gpu]
        frameworks = { trtllm = [], vllm = "vllm_not_here", lmcache = "lmcache_absent" }
        """
    )
    pytester.makepyfile(FRAMEWORKS + "\n@pytest.mark.lmcache\ndef test_lmcache(): pass\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED * needs vllm: package vllm_not_here not installed",
            "SKIPPED * needs lmcache: package lmcache_absent not installed",
        ]
    )


def test_skips_are_the_same_on_every_xdist_worker(
    pytester: pytest.Pytester, fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.machine(gpus(2))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    pytester.makepyfile(
        SUITE.replace("def test_", "@pytest.mark.parametrize('n', range(3))\ndef test_").replace(
            "():", "(n):"
        )
    )
    result = pytester.runpytest_subprocess("-n", "2", "-rs", "--dynamo-audit=off", lib(fake))
    result.assert_outcomes(passed=6, skipped=6)
    result.stdout.fnmatch_lines(["SKIPPED [[]3[]] *: needs 2 GPUs, 1 visible (CUDA_VISIBLE_DEVICES=1)"])
