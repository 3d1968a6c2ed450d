"""The rollout's thread and batch policy (climdiff/rollout/policy.py), shared by the engines and the CLI."""

from __future__ import annotations

import pytest
import torch

from climdiff.errors import ClimdiffError
from climdiff.rollout.policy import FORECAST_BATCH, chains_per_call, configure_sampling_threads


def test_default_batch_is_every_member_or_a_forecast_batch() -> None:
    assert chains_per_call(3, None) == 3
    assert chains_per_call(3, None, forecast=True) == FORECAST_BATCH == 64
    assert chains_per_call(100, None, forecast=True) == 100
    assert chains_per_call(3, 2) == chains_per_call(3, 2, forecast=True) == 2
    with pytest.raises(ClimdiffError, match="--batch must be positive, got 0"):
        chains_per_call(3, 0)


@pytest.mark.parametrize(
    ("threads", "chains", "expected"),
    [
        (1, 1, (1, False)),  # small call, one core: nothing to run the guidance on
        (2, 16, (1, True)),  # 16 x 32 x 32 points: still small, the guidance gets the second core
        (2, 17, (2, False)),  # one more chain: every operation spreads over both threads
    ],
)
def test_small_calls_run_one_thread_per_network(threads: int, chains: int, expected: tuple[int, bool]) -> None:
    before = torch.get_num_threads()
    try:
        concurrent = configure_sampling_threads(threads, chains, (1, 32, 32))
        assert (torch.get_num_threads(), concurrent) == expected
    finally:
        torch.set_num_threads(before)
