import pytest


@pytest.mark.pre_merge
@pytest.mark.gpu_0
@pytest.mark.integration
@pytest.mark.router
def test_round_robin_routing() -> None:
    workers = ["w0", "w1", "w2"]
    picks = [workers[i % len(workers)] for i in range(6)]
    assert picks.count("w0") == 2


@pytest.mark.post_merge
@pytest.mark.gpu_1
@pytest.mark.integration
@pytest.mark.kv_cache
def test_kv_aware_routing_prefers_warm_worker() -> None:
    cache_hits = {"w0": 3, "w1": 9}
    assert max(cache_hits, key=cache_hits.__getitem__) == "w1"
