"""Every test here breaks a rule of the strategy; pytest-dynamo reports them all at once."""

import pytest


@pytest.mark.gpu_0
@pytest.mark.unit
def test_forgot_the_lifecycle() -> None: ...


@pytest.mark.nightly
@pytest.mark.gpu_1
@pytest.mark.gpu_2
@pytest.mark.e2e
def test_two_hardware_markers() -> None: ...


@pytest.mark.premerge
@pytest.mark.gpus_needed_1
@pytest.mark.intergration
def test_typos_from_the_strategy_table() -> None: ...


@pytest.mark.nightly
@pytest.mark.gpu_0
@pytest.mark.h100
@pytest.mark.e2e
def test_gpu_model_on_a_cpu_test() -> None: ...


@pytest.mark.parametrize("batch", [1, 2, 4])
def test_unmarked_parametrized(batch: int) -> None: ...
