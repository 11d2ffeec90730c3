import pytest


@pytest.mark.pre_merge
@pytest.mark.gpu_1
@pytest.mark.e2e
@pytest.mark.vllm
def test_vllm_serves_a_completion(engine) -> None:
    assert engine.generate("the prime path works") == ["the", "prime", "path", "works"]


@pytest.mark.nightly
@pytest.mark.gpu_2
@pytest.mark.e2e
@pytest.mark.sglang
def test_sglang_disaggregated_serving() -> None:
    assert sum([1, 1]) == 2


@pytest.mark.nightly
@pytest.mark.gpu_4
@pytest.mark.e2e
@pytest.mark.trtllm
@pytest.mark.h100
def test_trtllm_tensor_parallel_4() -> None:
    assert 4 % 2 == 0


@pytest.mark.premerge
@pytest.mark.gpu_0
@pytest.mark.e2e
def test_cli_help_lists_commands() -> None:
    assert "serve" in "usage: dynamo serve|run|bench"
