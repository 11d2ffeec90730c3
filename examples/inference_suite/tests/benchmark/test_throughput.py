import pytest


@pytest.mark.nightly
@pytest.mark.gpu_8
@pytest.mark.benchmark
@pytest.mark.vllm
def test_throughput_8_gpus() -> None:
    tokens, seconds = 80_000, 10.0
    assert tokens / seconds > 1000
