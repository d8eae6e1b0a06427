"""Baseline agents: random, epsilon-greedy, legacy rule, oracle."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from actionbank_env.core.actions import ActionBank
from actionbank_env.errors import ConfigError
from agents.baselines import (
    EpsilonGreedyAgent,
    EpsilonGreedyConfig,
    LegacyAgent,
    LegacyConfig,
    OracleAgent,
    RandomAgent,
)
from tests.agents.helpers import D_EMBED, make_bank, make_context, make_truth, simulate, unit_vectors

TRUTH = make_truth(0)
BANK = make_bank(unit_vectors(10, D_EMBED, np.random.default_rng(1)))


def _make(name: str, seed: int = 0, **kwargs: Any) -> Any:
    rng = np.random.default_rng(seed)
    if name == "random":
        return RandomAgent(make_context(), rng=rng, **kwargs)
    if name == "epsilon_greedy":
        return EpsilonGreedyAgent(make_context(), rng=rng, **kwargs)
    if name == "legacy":
        return LegacyAgent(make_context(), rng=rng, **kwargs)
    return OracleAgent(make_context(ground_truth=TRUTH), rng=rng, **kwargs)


@pytest.mark.parametrize("name", ["random", "epsilon_greedy", "legacy", "oracle"])
@pytest.mark.parametrize("batch_size", [1, 16])
def test_same_seed_same_actions(name: str, batch_size: int) -> None:
    runs = [simulate(_make(name, 5), TRUTH, BANK, n_rounds=200, batch_size=batch_size, seed=1)[1] for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("name", ["random", "epsilon_greedy", "legacy", "oracle"])
def test_act_before_set_bank_errors(name: str) -> None:
    with pytest.raises(RuntimeError, match=re.escape("called before set_bank(bank)")):
        _make(name).act(np.full((1, 8), 0.5))


def test_random_is_uniform_with_exact_propensity() -> None:
    agent = _make("random")
    agent.set_bank(BANK)
    decision = agent.act(np.full((20_000, 8), 0.5))
    np.testing.assert_array_equal(decision.propensities, 0.1)
    assert np.abs(np.bincount(decision.actions, minlength=10) / 20_000 - 0.1).max() < 0.01


def test_epsilon_greedy_propensities_are_exact() -> None:
    agent = _make("epsilon_greedy", epsilon=0.3, initial_value=0.0)
    agent.set_bank(BANK)
    agent.update(np.full((4, 8), 0.5), np.array([2, 2, 7, 7]), np.array([1.0, 0.0, 1.0, 0.0]))  # 2 and 7 tie
    decision = agent.act(np.full((40_000, 8), 0.5))
    for a in range(10):
        chosen = decision.actions == a
        expected = 0.7 / 2 + 0.03 if a in (2, 7) else 0.03
        np.testing.assert_allclose(decision.propensities[chosen], expected)
        assert abs(chosen.mean() - expected) < 0.01


def test_epsilon_greedy_learns_the_best_average_action() -> None:
    regret_eps = simulate(_make("epsilon_greedy"), TRUTH, BANK, n_rounds=2000, batch_size=10, seed=2)[0].sum()
    regret_random = simulate(_make("random"), TRUTH, BANK, n_rounds=2000, batch_size=10, seed=2)[0].sum()
    assert regret_eps < 0.7 * regret_random


def test_legacy_round_robin_then_best_ctr() -> None:
    agent = _make("legacy", warmup_per_action=2)
    bank = make_bank(unit_vectors(3, D_EMBED, np.random.default_rng(0)))
    agent.set_bank(bank)
    users = np.full((6, 8), 0.5)
    first = agent.act(users[:4])
    second = agent.act(users[:2])
    np.testing.assert_array_equal(np.concatenate([first.actions, second.actions]), [0, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(first.propensities, 1.0)
    agent.update(users, np.array([0, 1, 2, 0, 1, 2]), np.array([0.0, 1.0, 0.0, 0.0, 1.0, 1.0]))
    np.testing.assert_array_equal(agent.act(users[:3]).actions, [1, 1, 1])
    # A bank change restarts the round-robin; retained ids keep their counts.
    agent.set_bank(ActionBank([bank[1], make_bank(unit_vectors(1, D_EMBED, np.random.default_rng(5)), first_id=9)[0]]))
    np.testing.assert_array_equal(agent.act(np.full((5, 8), 0.5)).actions, [0, 1, 0, 1, 0])
    np.testing.assert_array_equal(agent._counts, [2.0, 0.0])


def test_set_bank_keeps_counts_of_retained_ids() -> None:
    agent = _make("epsilon_greedy")
    agent.set_bank(BANK)
    agent.update(np.full((3, 8), 0.5), np.array([4, 4, 6]), np.array([1.0, 1.0, 0.0]))
    agent.set_bank(ActionBank([BANK[6], BANK[4]]))
    np.testing.assert_array_equal(agent._counts, [1.0, 2.0])
    np.testing.assert_array_equal(agent._clicks, [0.0, 2.0])


def test_oracle_is_an_evaluation_only_upper_bound() -> None:
    assert OracleAgent.evaluation_only is True
    regret, _ = simulate(_make("oracle"), TRUTH, BANK, n_rounds=300, batch_size=30, seed=3)
    np.testing.assert_array_equal(regret, 0.0)


def test_oracle_without_ground_truth_errors() -> None:
    with pytest.raises(ConfigError, match=re.escape("OracleAgent needs AgentContext.ground_truth, got None")):
        OracleAgent(make_context(), rng=np.random.default_rng(0))


@pytest.mark.parametrize(
    ("factory", "kwargs", "error", "message"),
    [
        (
            EpsilonGreedyConfig,
            {"epsilon": 1.5},
            ConfigError,
            "EpsilonGreedyConfig.epsilon must be a float >= 0.0 and <= 1.0, got 1.5.",
        ),
        (
            EpsilonGreedyConfig,
            {"prior_weight": -1.0},
            ConfigError,
            "EpsilonGreedyConfig.prior_weight must be a float >= 0.0, got -1.0.",
        ),
        (
            LegacyConfig,
            {"warmup_per_action": -1},
            ConfigError,
            "LegacyConfig.warmup_per_action must be an int >= 0, got -1.",
        ),
        (LegacyConfig, {"warmup_per_action": 1.5}, TypeError, "LegacyConfig.warmup_per_action must be an int, got 1.5"),
    ],
)
def test_config_validation(factory: Any, kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        factory(**kwargs)


@pytest.mark.parametrize("name", ["random", "epsilon_greedy", "legacy", "oracle"])
def test_unknown_hyperparameters_raise(name: str) -> None:
    with pytest.raises(TypeError, match=re.escape("got unknown parameters ['bogus']")):
        _make(name, bogus=1)


def test_update_checks_action_range() -> None:
    agent = _make("epsilon_greedy")
    agent.set_bank(BANK)
    with pytest.raises(ConfigError, match=re.escape("actions must be indices in [0, 10), got values in [0, 10].")):
        agent.update(np.full((2, 8), 0.5), np.array([0, 10]), np.zeros(2))
