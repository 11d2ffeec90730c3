import pytest

pytestmark = [pytest.mark.nightly, pytest.mark.integration, pytest.mark.kvbm]


@pytest.mark.gpu_2
def test_blocks_move_between_two_gpus() -> None:
    blocks = {0: [1, 2], 1: []}
    blocks[1].append(blocks[0].pop())
    assert blocks == {0: [1], 1: [2]}


@pytest.mark.gpu_1
@pytest.mark.parametrize(
    "tier",
    ["host", pytest.param("disk", marks=pytest.mark.slow)],
)
def test_offload_tier(tier: str) -> None:
    assert tier in {"host", "disk"}
