"""Greedy selection: optimality where greedy is provably optimal, lazy == plain, bounds, retirement."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from actionbank_env.core.coverage import (
    GreedySelector,
    coverage_value,
    exhaustive_select,
    retire_least_valuable,
)
from actionbank_env.errors import ConfigError


def _instance(seed: int, n_users: int = 12, n_candidates: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.random((n_users, n_candidates)) ** 2
    base = 0.5 * rng.random(n_users)
    weights = rng.random(n_users)
    return scores, base, weights / weights.sum()


@pytest.mark.parametrize("seed", range(20))
def test_greedy_equals_exhaustive_for_k1(seed: int) -> None:
    scores, base, weights = _instance(seed)
    picked = GreedySelector().select(scores, 1, base=base, user_weights=weights)
    best, _ = exhaustive_select(scores, 1, base=base, user_weights=weights)
    assert tuple(picked.tolist()) == best


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("k", [2, 3, 4])
def test_greedy_equals_exhaustive_on_modular_objectives(seed: int, k: int) -> None:
    """Disjoint supports (each candidate serves its own users) and pure bonuses make F modular."""
    rng = np.random.default_rng(seed)
    n_candidates, per = 7, 3
    scores = np.zeros((n_candidates * per, n_candidates))
    for j in range(n_candidates):
        scores[j * per : (j + 1) * per, j] = rng.random(per)
    bonus = 0.1 * rng.random(n_candidates)
    picked = GreedySelector().select(scores, k, bonus=bonus)
    best, best_value = exhaustive_select(scores, k, bonus=bonus)
    assert sorted(picked.tolist()) == list(best)
    assert coverage_value(scores[:, picked]) + bonus[picked].sum() == pytest.approx(best_value)


@pytest.mark.parametrize("seed", range(10))
def test_greedy_is_within_1_minus_1_over_e_of_exhaustive(seed: int) -> None:
    scores, base, weights = _instance(seed, n_candidates=8)
    result = GreedySelector().run(scores, 3, base=base, user_weights=weights)
    _, best_value = exhaustive_select(scores, 3, base=base, user_weights=weights)
    base_value = float(weights @ base)
    assert result.value - base_value >= (1 - 1 / np.e) * (best_value - base_value) - 1e-12
    assert result.value <= best_value + 1e-12


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("diversity_weight", [0.0, 0.3, 2.0])
def test_lazy_greedy_matches_plain_greedy(seed: int, diversity_weight: float) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.random((200, 150))
    base = np.quantile(scores, 0.9, axis=1)
    embeddings = rng.standard_normal((150, 16))
    bank = rng.standard_normal((5, 16))
    kwargs = {"base": base, "embeddings": embeddings, "bank_embeddings": bank}
    lazy = GreedySelector(diversity_weight=diversity_weight, lazy=True).run(scores, 12, **kwargs)
    plain = GreedySelector(diversity_weight=diversity_weight, lazy=False).run(scores, 12, **kwargs)
    np.testing.assert_array_equal(lazy.indices, plain.indices)
    np.testing.assert_allclose(lazy.gains, plain.gains, rtol=1e-10, atol=1e-12)
    assert lazy.n_evaluations < plain.n_evaluations
    assert np.all(np.diff(lazy.gains) <= 1e-12)  # diminishing returns


@pytest.mark.parametrize("k", [0, 1, 5, 7, 50])
def test_bounds_k_distinct_and_pool_size(k: int) -> None:
    scores, base, _ = _instance(3)
    for lazy in (True, False):
        picked = GreedySelector(lazy=lazy, diversity_weight=0.5).select(scores, k, base=base, embeddings=np.eye(7))
        assert len(picked) == min(k, 7)
        assert len(set(picked.tolist())) == len(picked)
        assert picked.dtype == np.int64


def test_empty_pool_and_empty_bank() -> None:
    empty = GreedySelector().run(np.zeros((10, 0)), 5)
    assert empty.indices.size == 0 and empty.value == 0.0
    scores = np.array([[0.2, 0.4]])
    assert GreedySelector().run(scores, 1).value == pytest.approx(0.4)  # no base: an empty bank


def test_value_tracks_coverage_and_gains_add_up() -> None:
    scores, base, weights = _instance(5, n_candidates=10)
    result = GreedySelector().run(scores, 4, base=base, user_weights=weights)
    assert result.value == pytest.approx(coverage_value(scores[:, result.indices], base=base, user_weights=weights))
    assert result.base_value + result.coverage_gains.sum() == pytest.approx(result.value)


def test_diversity_avoids_near_copies() -> None:
    # Candidates 0 and 1 are copies serving the same users; 2 is slightly worse but different.
    scores = np.array([[0.9, 0.9, 0.0], [0.8, 0.8, 0.0], [0.0, 0.0, 0.3]])
    embeddings = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    picked = GreedySelector(diversity_weight=0.5).select(scores, 2, embeddings=embeddings)
    assert picked.tolist() == [0, 2]
    # A candidate identical to a bank action is penalised against a different one of equal value.
    same = np.array([[0.5, 0.5]])
    picked = GreedySelector(diversity_weight=0.5).select(
        same, 1, embeddings=np.array([[1.0, 0.0], [0.0, 1.0]]), bank_embeddings=np.array([[1.0, 0.0]])
    )
    assert picked.tolist() == [1]


def test_min_gain_stops_early() -> None:
    scores = np.array([[0.9, 0.1, 0.05]])
    picked = GreedySelector(min_gain=1e-6).select(scores, 3)
    assert picked.tolist() == [0]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"diversity_weight": -0.1}, ConfigError, "GreedySelector.diversity_weight must be a float >= 0.0, got -0.1."),
        ({"lazy": 1}, TypeError, "GreedySelector.lazy must be a bool, got 1 of type int."),
    ],
)
def test_selector_validation(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        GreedySelector(**kwargs)  # type: ignore[arg-type]


def test_diversity_needs_embeddings() -> None:
    with pytest.raises(ConfigError, match="needs the candidates' embeddings"):
        GreedySelector(diversity_weight=0.1).select(np.ones((2, 2)), 1)


@pytest.mark.parametrize("seed", range(6))
def test_retirement_keeps_the_best_subset_of_size_n_minus_1(seed: int) -> None:
    scores, _, weights = _instance(seed, n_candidates=6)
    kept, retired = retire_least_valuable(scores, 5, user_weights=weights)
    assert len(kept) == 5 and len(retired) == 1 and set(kept) | set(retired) == set(range(6))
    # Dropping one action: the greedy removal is exactly optimal.
    values = [coverage_value(scores[:, list(s)], user_weights=weights) for s in itertools.combinations(range(6), 5)]
    assert coverage_value(scores[:, kept], user_weights=weights) == pytest.approx(max(values))


def test_retirement_bounds() -> None:
    scores, _, _ = _instance(1, n_candidates=6)
    kept, retired = retire_least_valuable(scores, 10)
    assert kept.tolist() == list(range(6)) and retired.size == 0
    kept, retired = retire_least_valuable(scores, 2)
    assert len(kept) == 2 and len(retired) == 4 and np.all(np.diff(kept) > 0)


@pytest.mark.parametrize("lazy", [True, False])
def test_users_without_an_action_gain_the_whole_score(lazy: bool) -> None:
    """A base of -inf (a user no action serves yet) counts the whole score; once served, the finite shortcut."""
    rng = np.random.default_rng(2)
    scores = rng.random((30, 12))
    base = rng.random(30) * 0.5
    base[:7] = -np.inf
    result = GreedySelector(lazy=lazy).run(scores, 4, base=base)
    best, expected = base.copy(), []
    for _ in range(4):  # plain greedy, gains written out with the -inf users' whole scores
        gains = [
            np.mean(np.where(np.isfinite(best), np.maximum(scores[:, j], best) - best, scores[:, j])) for j in range(12)
        ]
        j = max((j for j in range(12) if j not in expected), key=lambda j: gains[j])
        expected.append(j)
        best = np.maximum(best, scores[:, j])
    assert result.indices.tolist() == expected
    np.testing.assert_allclose(result.value, best.mean(), rtol=1e-12)
