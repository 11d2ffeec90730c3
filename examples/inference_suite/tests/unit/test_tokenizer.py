import pytest

pytestmark = [pytest.mark.pre_merge, pytest.mark.gpu_0, pytest.mark.unit]


def tokenize(text: str) -> list[str]:
    return text.lower().split()


def test_tokenize_splits_on_whitespace() -> None:
    assert tokenize("Hello  GPU world") == ["hello", "gpu", "world"]


@pytest.mark.parametrize(("text", "count"), [("", 0), ("a", 1), ("a b c", 3)])
def test_token_count(text: str, count: int) -> None:
    assert len(tokenize(text)) == count
