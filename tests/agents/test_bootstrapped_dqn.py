"""Bootstrapped DQN: learning, determinism, votes as propensities, new actions, validation, lazy torch."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from actionbank_env.errors import ConfigError
from agents.bootstrapped_dqn import BootstrappedDQNAgent, BootstrappedDQNConfig
from tests.agents.helpers import D_EMBED, make_bank, make_context, make_truth, simulate, unit_vectors

SMALL: dict[str, Any] = {
    "n_heads": 5,
    "hidden_sizes": (32,),
    "head_hidden": 16,
    "batch_size": 32,
    "learning_starts": 32,
    "train_steps_per_update": 2,
    "lr": 3e-3,
}


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    # Tiny networks: extra intra-op threads only add contention on the shared test machine; restored after.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _agent(seed: int = 0, **kwargs: Any) -> BootstrappedDQNAgent:
    return BootstrappedDQNAgent(make_context(), rng=np.random.default_rng(seed), **{**SMALL, **kwargs})


def test_beats_random_and_epsilon_greedy() -> None:
    from agents.baselines import EpsilonGreedyAgent, RandomAgent

    truth, bank = make_truth(0), make_bank(unit_vectors(20, D_EMBED, np.random.default_rng(1)))
    regret = {}
    for name, agent in (
        ("dqn", _agent()),
        ("random", RandomAgent(make_context(), rng=np.random.default_rng(0))),
        ("epsilon_greedy", EpsilonGreedyAgent(make_context(), rng=np.random.default_rng(0))),
    ):
        regret[name] = simulate(agent, truth, bank, n_rounds=2000, batch_size=10, seed=2)[0].sum()
    assert regret["dqn"] < 0.6 * min(regret["random"], regret["epsilon_greedy"]), regret


@pytest.mark.parametrize("kwargs", [{}, {"head_sampling": "batch", "gamma": 0.5, "target_update_period": 5}])
def test_same_seed_same_actions(kwargs: dict[str, Any]) -> None:
    truth, bank = make_truth(0), make_bank(unit_vectors(8, D_EMBED, np.random.default_rng(1)))
    runs = [simulate(_agent(3, **kwargs), truth, bank, n_rounds=300, batch_size=10, seed=4)[1] for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    other = simulate(_agent(4, **kwargs), truth, bank, n_rounds=300, batch_size=10, seed=4)[1]
    assert not np.array_equal(runs[0], other)


def test_propensities_are_head_votes_and_new_actions_are_scored() -> None:
    truth, bank = make_truth(0), make_bank(unit_vectors(8, D_EMBED, np.random.default_rng(1)))
    agent = _agent()
    simulate(agent, truth, bank, n_rounds=200, batch_size=20, seed=5)
    users = np.random.default_rng(6).random((50, 8))
    decision = agent.act(users)
    greedy = agent.q_values(users).argmax(axis=2)  # (H, B)
    np.testing.assert_allclose(decision.propensities, np.mean(greedy == decision.actions[None, :], axis=0))
    assert decision.propensities.min() >= 1 / 5
    # A bank of never-served actions is scored through the embeddings straight away.
    agent.set_bank(make_bank(unit_vectors(3, D_EMBED, np.random.default_rng(7)), first_id=50))
    q = agent.q_values(users)
    assert q.shape == (5, 50, 3) and np.all(np.isfinite(q)) and np.ptp(q) > 0


def test_update_reports_td_loss_once_training() -> None:
    agent = _agent(learning_starts=40)
    agent.set_bank(make_bank(unit_vectors(4, D_EMBED, np.random.default_rng(1))))
    users = np.full((20, 8), 0.5)
    assert agent.update(users, np.zeros(20, dtype=np.int64), np.ones(20)) == {"train/replay_size": 20.0}
    metrics = agent.update(users, np.ones(20, dtype=np.int64), np.zeros(20))
    assert metrics["train/replay_size"] == 40.0 and np.isfinite(metrics["train/td_loss"])
    assert agent.n_gradient_steps == 2


def test_act_before_set_bank_errors() -> None:
    with pytest.raises(RuntimeError, match=re.escape("called before set_bank(bank)")):
        _agent().act(np.full((1, 8), 0.5))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_heads": 0}, ConfigError, "BootstrappedDQNConfig.n_heads must be an int >= 1, got 0."),
        ({"hidden_sizes": [64]}, TypeError, "BootstrappedDQNConfig.hidden_sizes must be a tuple of ints, got list."),
        ({"hidden_sizes": (64, 0)}, ConfigError, "BootstrappedDQNConfig.hidden_sizes[1] must be an int >= 1, got 0."),
        ({"gamma": 1.0}, ConfigError, "BootstrappedDQNConfig.gamma must be a float >= 0.0 and < 1.0, got 1.0."),
        ({"mask_prob": 0.0}, ConfigError, "BootstrappedDQNConfig.mask_prob must be a float > 0.0 and <= 1.0, got 0.0."),
        (
            {"head_sampling": "step"},
            ConfigError,
            "BootstrappedDQNConfig.head_sampling must be one of ['batch', 'episode']",
        ),
        ({"lr": 0.0}, ConfigError, "BootstrappedDQNConfig.lr must be a float > 0.0, got 0.0."),
        (
            {"replay_capacity": 10, "learning_starts": 20},
            ConfigError,
            "BootstrappedDQNConfig.learning_starts=20 must be <= replay_capacity=10.",
        ),
    ],
)
def test_config_validation(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        BootstrappedDQNConfig(**kwargs)


def test_unknown_hyperparameters_raise() -> None:
    with pytest.raises(TypeError, match=re.escape("BootstrappedDQNAgent got unknown parameters ['n_head']")):
        BootstrappedDQNAgent(make_context(), rng=np.random.default_rng(0), n_head=3)


def test_import_does_not_import_torch() -> None:
    code = "import sys, agents, agents.bootstrapped_dqn, agents.linucb, agents.baselines; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
