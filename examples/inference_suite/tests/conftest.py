"""Fakes of an inference server's parts, so the example runs anywhere."""

from __future__ import annotations

import pytest


class FakeEngine:
    """Stands in for a model engine: echoes prompts back, token by token."""

    def __init__(self, framework: str, gpus: int = 0) -> None:
        self.framework = framework
        self.gpus = gpus

    def generate(self, prompt: str, max_tokens: int = 8) -> list[str]:
        return prompt.split()[:max_tokens]


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine("vllm")
