"""Every built-in agent's reported propensities and action distribution against its empirical choice frequencies.

Each agent first learns from a short campaign, then acts once on a batch holding a few users, each repeated
many times (``act`` does not learn inside a batch, so the copies are independent draws from the same rule).
For every (user, action) the empirical frequency must match ``action_probs`` within 5 binomial standard
errors, and the propensity reported for each served row must be that row's entry of ``action_probs``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from actionbank_env.core.campaign import run_campaign
from actionbank_env.registry import make_agent
from tests.worlds import hashing_world

AGENTS: list[tuple[str, dict[str, Any]]] = [
    ("random", {}),
    ("epsilon_greedy", {"epsilon": 0.3}),
    ("legacy", {"warmup_per_action": 5}),
    ("oracle", {}),
    ("linucb", {}),  # the default: epsilon exploration
    ("linucb", {"exploration": "none"}),
    ("linucb", {"exploration": "softmax", "temperature": 0.05}),
    ("linucb", {"mode": "hybrid", "exploration": "epsilon", "epsilon": 0.3}),
    ("bootstrapped_dqn", {"learning_starts": 16, "train_steps_per_update": 1}),
]
N_COPIES = 3000


@pytest.mark.parametrize(("name", "params"), AGENTS, ids=[f"{n}-{'-'.join(map(str, p.values()))}" for n, p in AGENTS])
def test_propensities_match_choice_frequencies(name: str, params: dict[str, Any]) -> None:
    world = hashing_world(0, 6)
    bank = world.initial_bank
    agent = make_agent(name, world, rng=np.random.default_rng(5), **params)
    agent.set_bank(bank)
    warm = world.sample_users(300, rng=np.random.default_rng(1))
    run_campaign(world.ground_truth, bank, agent, warm, rng=np.random.default_rng(2), batch_size=16)
    users = np.repeat(world.sample_users(3, rng=np.random.default_rng(3)).features, N_COPIES, axis=0)
    probs = agent.action_probs(users)
    assert probs.shape == (users.shape[0], len(bank))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    decision = agent.act(users)
    rows = np.arange(users.shape[0])
    np.testing.assert_allclose(decision.propensities, probs[rows, decision.actions], rtol=1e-9, atol=1e-12)
    for u in range(3):
        block = slice(u * N_COPIES, (u + 1) * N_COPIES)
        freq = np.bincount(decision.actions[block], minlength=len(bank)) / N_COPIES
        expected = probs[block][0]
        np.testing.assert_allclose(probs[block], np.broadcast_to(expected, probs[block].shape), atol=1e-9)
        tolerance = 5.0 * np.sqrt(expected * (1.0 - expected) / N_COPIES) + 1e-9
        assert np.all(np.abs(freq - expected) <= tolerance), (u, freq.round(3), expected.round(3))


def test_default_linucb_gives_every_action_a_propensity() -> None:
    world = hashing_world(0, 6)
    agent = make_agent("linucb", world, rng=np.random.default_rng(0))
    agent.set_bank(world.initial_bank)
    probs = agent.action_probs(world.sample_users(50, rng=np.random.default_rng(1)).features)
    assert probs.min() >= 0.1 / len(world.initial_bank) - 1e-12
