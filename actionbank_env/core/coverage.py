"""The bank's coverage objective and its lazy greedy maximisation over a representative user sample.

Shared by the bank designers (selection under the reward model) and the evaluator (the oracle bank under the ground
truth), so both maximise the same function.

The objective of adding a set S of candidates to a bank B is

    F(S) = sum_u w_u * max(base_u, max_{a in S} s(u, a)) + sum_{a in S} bonus_a - lambda * sum_{a in S} sim_a

where ``base_u = max_{b in B} s(u, b)`` is what the bank already gives user ``u`` (each user gets its best
action), ``w`` are user weights summing to 1, ``bonus`` an optional per-candidate term and ``sim_a`` the
largest cosine similarity (clipped at 0) of ``a`` to the bank and to the candidates chosen before it. With
``relative_diversity`` (the default) ``lambda`` is ``diversity_weight`` times the largest single-candidate
coverage gain of the first round, so the penalty is free of the CTR scale: a copy of a bank action pays
``diversity_weight`` of the best gain on offer. With
``lambda = 0`` this is a weighted facility-location (coverage) function plus a modular term: monotone
submodular, so greedy is within 1 - 1/e of the optimum (Nemhauser, Wolsey & Fisher, 1978). Every term of a
candidate's marginal gain can only shrink as S grows (coverage by submodularity, the similarity penalty
because the maximum similarity can only rise), so stale gains are upper bounds and lazy greedy (Minoux, 1978)
picks exactly what plain greedy picks, usually after a handful of re-evaluations per step.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_array, check_bool, check_int, check_real
from actionbank_env.errors import ConfigError

__all__ = [
    "GreedySelector",
    "SelectionResult",
    "coverage_value",
    "exhaustive_select",
    "retire_least_valuable",
    "cosine_similarity",
]


def coverage_value(
    scores: NDArray[np.float64],
    *,
    base: NDArray[np.float64] | None = None,
    user_weights: NDArray[np.float64] | None = None,
) -> float:
    """Weighted mean over users of the best score among the columns of ``scores`` (and ``base``).

    Args:
        scores: Scores of the bank's actions, shape (n_users, n_actions).
        base: What each user already has, shape (n_users,) (default: nothing, i.e. -inf).
        user_weights: Non-negative weights summing to 1, shape (n_users,) (default: uniform).

    Example:
        >>> coverage_value(np.array([[0.1, 0.3], [0.5, 0.2]]))
        0.4
    """
    n_users = scores.shape[0]
    best = scores.max(axis=1) if scores.shape[1] else np.full(n_users, -np.inf)
    if base is not None:
        best = np.maximum(best, base)
    weights = np.full(n_users, 1.0 / max(n_users, 1)) if user_weights is None else user_weights
    return float(weights @ best) if n_users else float("nan")


def cosine_similarity(a: NDArray[np.floating[Any]], b: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """Cosine similarity of every row of ``a`` with every row of ``b``, shape (len(a), len(b)).

    Example:
        >>> cosine_similarity(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0], [0.0, 3.0]])).tolist()
        [[1.0, 0.0]]
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a_n = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b_n = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    similarity: NDArray[np.float64] = a_n @ b_n.T
    return similarity


@dataclass(frozen=True, slots=True)
class SelectionResult:
    """What a greedy run chose and why.

    Attributes:
        indices: Chosen candidate indices in the order chosen, int64, shape (n_chosen,).
        gains: Marginal gain of each choice (coverage + bonus - penalty), shape (n_chosen,).
        coverage_gains: The coverage part of each gain, shape (n_chosen,).
        base_value: Coverage value of the bank alone (weighted mean of ``base``).
        value: Coverage value of the bank plus the chosen candidates.
        n_evaluations: Candidate gains computed (all candidates once, then one per lazy re-evaluation).
    """

    indices: NDArray[np.int64]
    gains: NDArray[np.float64]
    coverage_gains: NDArray[np.float64]
    base_value: float
    value: float
    n_evaluations: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "indices": self.indices.tolist(),
            "gains": self.gains.tolist(),
            "coverage_gains": self.coverage_gains.tolist(),
            "base_value": self.base_value,
            "value": self.value,
            "n_evaluations": self.n_evaluations,
        }


class GreedySelector:
    """(Lazy) greedy selection of candidates for a bank (see the module docstring for the objective).

    Implements :class:`actionbank_env.protocols.Selector`.

    Args:
        diversity_weight: ``lambda``, the penalty per unit of maximal cosine similarity; needs ``embeddings``.
        lazy: Lazy evaluation with a priority queue of upper bounds (same choices as plain greedy).
        relative_diversity: Scale the penalty by the best first-round coverage gain (see the module
            docstring); ``False``: ``diversity_weight`` is in the units of the scores.
        min_gain: Stop early when the best marginal gain falls below this (``None``: always choose ``k``).

    Example:
        >>> scores = np.array([[0.9, 0.8, 0.1], [0.1, 0.2, 0.7]])  # 2 users x 3 candidates
        >>> GreedySelector().select(scores, 2).tolist()  # the best, then the one that serves user 1
        [0, 2]
    """

    def __init__(
        self,
        *,
        diversity_weight: float = 0.0,
        lazy: bool = True,
        relative_diversity: bool = True,
        min_gain: float | None = None,
    ) -> None:
        self.diversity_weight = check_real("GreedySelector.diversity_weight", diversity_weight, low=0.0)
        self.lazy = check_bool("GreedySelector.lazy", lazy)
        self.relative_diversity = check_bool("GreedySelector.relative_diversity", relative_diversity)
        self.min_gain = None if min_gain is None else check_real("GreedySelector.min_gain", min_gain)

    def __repr__(self) -> str:
        return (
            f"GreedySelector(diversity_weight={self.diversity_weight}, lazy={self.lazy}, "
            f"relative_diversity={self.relative_diversity}, min_gain={self.min_gain})"
        )

    def select(self, scores: NDArray[np.float64], k: int, **kwargs: Any) -> NDArray[np.int64]:
        """Indices of the chosen candidates, in the order chosen (see :meth:`run` for the arguments)."""
        return self.run(scores, k, **kwargs).indices

    def run(
        self,
        scores: NDArray[np.float64],
        k: int,
        *,
        base: NDArray[np.float64] | None = None,
        user_weights: NDArray[np.float64] | None = None,
        bonus: NDArray[np.float64] | None = None,
        embeddings: NDArray[np.floating[Any]] | None = None,
        bank_embeddings: NDArray[np.floating[Any]] | None = None,
    ) -> SelectionResult:
        """Choose up to ``k`` distinct candidates.

        Args:
            scores: Score of each candidate for each user, shape (n_users, n_candidates).
            k: Most candidates to choose (fewer when the pool is smaller or ``min_gain`` stops it).
            base: Best score the current bank gives each user, shape (n_users,) (default: 0, an empty bank).
            user_weights: Weights of the users, shape (n_users,), normalised to sum 1 (default: uniform).
            bonus: Additive per-candidate term, shape (n_candidates,) (default: 0).
            embeddings: Candidate embeddings, shape (n_candidates, d), for the diversity penalty.
            bank_embeddings: The bank's embeddings, shape (n_bank, d), for the diversity penalty.

        Returns:
            The choices with their gains.
        """
        scores = check_array("GreedySelector scores", scores, ndim=2)
        n_users, n_candidates = scores.shape
        k = check_int("GreedySelector k", k, low=0)
        base_arr = (
            np.zeros(n_users)
            if base is None
            else check_array("GreedySelector base", base, shape=(n_users,), finite=False)
        )
        if user_weights is None:
            weights = np.full(n_users, 1.0 / max(n_users, 1))
        else:
            weights = check_array("GreedySelector user_weights", user_weights, shape=(n_users,), low=0.0)
            total = weights.sum()
            if total <= 0:
                raise ConfigError(f"GreedySelector user_weights must have a positive sum, got {total!r}.")
            weights = weights / total
        bonus_arr = (
            np.zeros(n_candidates)
            if bonus is None
            else check_array("GreedySelector bonus", bonus, shape=(n_candidates,))
        )
        penalty_on = self.diversity_weight > 0.0
        if penalty_on and embeddings is None:
            raise ConfigError("GreedySelector with diversity_weight > 0 needs the candidates' embeddings.")
        if penalty_on:
            emb = check_array("GreedySelector embeddings", embeddings, ndim=2)
            if emb.shape[0] != n_candidates:
                raise ConfigError(f"GreedySelector embeddings must have {n_candidates} rows, got {emb.shape[0]}.")
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            max_sim = np.zeros(n_candidates)
            if bank_embeddings is not None and len(bank_embeddings):
                max_sim = np.maximum(max_sim, cosine_similarity(emb, bank_embeddings).max(axis=1))
        else:
            emb = np.zeros((n_candidates, 0))
            max_sim = np.zeros(n_candidates)

        best = base_arr.copy()
        finite_base = np.isfinite(best)
        base_value = float(weights @ np.where(finite_base, best, 0.0)) if n_users else float("nan")

        best_finite = bool(finite_base.all())

        def coverage(cols: NDArray[np.int64] | slice) -> NDArray[np.float64]:
            block = scores[:, cols]
            improvement = np.maximum(block, best[:, None])
            improvement -= best[:, None]  # in place: one (n_users, n_cols) temporary, not two
            if best_finite:  # finite scores over a finite best: every improvement is finite, nothing to replace
                result: NDArray[np.float64] = weights @ improvement
            else:  # a user with no action yet (best -inf) gains the whole score
                result = weights @ np.where(np.isfinite(improvement), improvement, block)
            return result

        k_eff = min(k, n_candidates)
        lam = self.diversity_weight
        first_cov = coverage(slice(None)) if k_eff and (self.lazy or self.relative_diversity) else None
        if penalty_on and self.relative_diversity and first_cov is not None:
            lam *= max(float(first_cov.max()), 0.0)
        chosen: list[int] = []
        gains: list[float] = []
        cov_gains: list[float] = []
        n_evals = 0
        available = np.ones(n_candidates, dtype=bool)
        heap: list[tuple[float, int]] = []
        stamp = np.zeros(n_candidates, dtype=np.int64)
        if first_cov is not None and self.lazy:
            first = first_cov + bonus_arr - lam * max_sim
            n_evals += n_candidates
            heap = [(-float(g), int(i)) for i, g in enumerate(first)]
            heapq.heapify(heap)
        for step in range(k_eff):
            if self.lazy:
                while True:
                    neg_bound, i = heapq.heappop(heap)
                    if stamp[i] == step:
                        break
                    g = float(coverage(np.array([i]))[0] + bonus_arr[i] - lam * max_sim[i])
                    n_evals += 1
                    stamp[i] = step
                    heapq.heappush(heap, (-g, i))
                gain = -neg_bound
                pick = i
            else:
                cols = np.flatnonzero(available)
                all_gains = coverage(cols) + bonus_arr[cols] - lam * max_sim[cols]
                n_evals += cols.size
                j = int(np.argmax(all_gains))
                pick, gain = int(cols[j]), float(all_gains[j])
            if self.min_gain is not None and gain < self.min_gain:
                break
            cov = float(coverage(np.array([pick]))[0])
            chosen.append(pick)
            gains.append(gain)
            cov_gains.append(cov)
            available[pick] = False
            best = np.maximum(best, scores[:, pick])
            best_finite = best_finite or bool(np.isfinite(best).all())
            if penalty_on:
                max_sim = np.maximum(max_sim, emb @ emb[pick])
            stamp[pick] = -1  # never re-enters the heap's "fresh" state
        value = float(weights @ np.where(np.isfinite(best), best, 0.0)) if n_users else float("nan")
        return SelectionResult(
            indices=np.asarray(chosen, dtype=np.int64),
            gains=np.asarray(gains, dtype=np.float64),
            coverage_gains=np.asarray(cov_gains, dtype=np.float64),
            base_value=base_value,
            value=value,
            n_evaluations=n_evals,
        )


def exhaustive_select(
    scores: NDArray[np.float64],
    k: int,
    *,
    base: NDArray[np.float64] | None = None,
    user_weights: NDArray[np.float64] | None = None,
    bonus: NDArray[np.float64] | None = None,
) -> tuple[tuple[int, ...], float]:
    """The best set of ``min(k, n_candidates)`` candidates by brute force (for tests on tiny instances).

    Maximises coverage value + sum of ``bonus`` (no diversity penalty, which depends on the order).

    Returns:
        ``(indices, objective)`` with the indices sorted; ties go to the lexicographically first set.

    Example:
        >>> exhaustive_select(np.array([[0.9, 0.8, 0.1], [0.1, 0.2, 0.7]]), 2)
        ((0, 2), 0.8)
    """
    scores = check_array("exhaustive_select scores", scores, ndim=2)
    n_users, n_candidates = scores.shape
    base_arr = np.zeros(n_users) if base is None else np.asarray(base, dtype=np.float64)
    bonus_arr = np.zeros(n_candidates) if bonus is None else np.asarray(bonus, dtype=np.float64)
    best_set: tuple[int, ...] = ()
    best_value = -np.inf
    for subset in itertools.combinations(range(n_candidates), min(k, n_candidates)):
        value = coverage_value(scores[:, list(subset)], base=base_arr, user_weights=user_weights)
        value += float(bonus_arr[list(subset)].sum())
        if value > best_value + 1e-12:
            best_set, best_value = subset, value
    return best_set, float(best_value)


def retire_least_valuable(
    scores: NDArray[np.float64],
    n_keep: int,
    *,
    user_weights: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Drop actions one at a time, each time the one whose removal loses the least coverage value.

    The loss of removing action ``a`` is the weighted sum, over the users for whom ``a`` is the best action,
    of the gap to their second-best action (computed for all actions at once from the top two per user).

    Args:
        scores: Scores of the bank's actions, shape (n_users, n_actions).
        n_keep: Actions to keep (all when ``n_keep >= n_actions``).
        user_weights: User weights, shape (n_users,) (default: uniform).

    Returns:
        ``(kept, retired)``: kept column indices in their original order, retired ones in retirement order.

    Example:
        >>> kept, retired = retire_least_valuable(np.array([[0.9, 0.8, 0.1], [0.1, 0.2, 0.7]]), 2)
        >>> kept.tolist(), retired.tolist()
        ([0, 2], [1])
    """
    scores = check_array("retire_least_valuable scores", scores, ndim=2)
    n_users, n_actions = scores.shape
    n_keep = check_int("retire_least_valuable n_keep", n_keep, low=1)
    weights = np.full(n_users, 1.0 / max(n_users, 1)) if user_weights is None else np.asarray(user_weights)
    alive = list(range(n_actions))
    retired: list[int] = []
    rows = np.arange(n_users)
    while len(alive) > n_keep:
        sub = scores[:, alive]
        top = np.argmax(sub, axis=1)
        best = sub[rows, top]
        second = np.partition(sub, -2, axis=1)[:, -2] if sub.shape[1] > 1 else np.zeros(n_users)
        loss = np.bincount(top, weights=weights * (best - second), minlength=len(alive))
        drop = int(np.argmin(loss))  # first index among ties: older actions are retired first
        retired.append(alive.pop(drop))
    return np.asarray(alive, dtype=np.int64), np.asarray(retired, dtype=np.int64)
