import pytest


@pytest.mark.nightly
@pytest.mark.gpu_0
@pytest.mark.security
@pytest.mark.api
def test_requests_without_a_token_are_refused() -> None:
    headers: dict[str, str] = {}
    assert "Authorization" not in headers
