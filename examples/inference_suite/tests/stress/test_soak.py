import pytest


@pytest.mark.weekly
@pytest.mark.gpu_1
@pytest.mark.stress
@pytest.mark.slow
def test_many_requests_do_not_leak() -> None:
    live = set()
    for i in range(1000):
        live.add(i)
        live.discard(i)
    assert not live
