"""Ground-truth evaluation of banks and reward models (the only code besides the envs that reads the truth).

- :func:`bank_value`: mean over users of the best true click probability in a bank (perfect targeting).
  The value *as deployed* by the company's agent is :attr:`~actionbank_env.core.campaign.CampaignResult.deployed_value`.
- :func:`improvement_captured`: (V_new - V_old) / (V_oracle - V_old), with :func:`compare_banks` computing the
  three values on one user sample.
- :func:`reward_model_fidelity`: how well r̂ matches the truth on held-out users x candidates (Pearson,
  Spearman, AUC, log loss, expected calibration error).
- :func:`uncertainty_calibration`: whether a model's predictive std tracks its actual error.
- :func:`policy_value`: the true value of a (stochastic) targeting policy on given users, the truth that
  every off-policy estimate (:mod:`actionbank_env.ope`) is shown beside.
- :func:`oracle_bank`: the greedy bank on the ground truth over a designer's candidate pool (V_oracle), with the
  coverage objective the designers maximise (:mod:`actionbank_env.core.coverage`).
- :func:`evaluate_iteration`: all of the above for one iteration of ``actionbank simulate``
  (``ground_truth_evaluation.json``).

Users are an evaluation sample given by the caller (fresh users from the population, not the logged ones).
Every function is vectorised over users x actions and returns a frozen dataclass with ``to_dict()``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_array, check_int, check_real
from actionbank_env.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from actionbank_env.core.actions import ActionBank
    from actionbank_env.core.ground_truth import GroundTruth
    from actionbank_env.protocols import Candidates, Proposal

__all__ = [
    "per_action_truth",
    "true_click_probs",
    "bank_value",
    "improvement_captured",
    "compare_banks",
    "BankComparison",
    "reward_model_fidelity",
    "FidelityReport",
    "uncertainty_calibration",
    "UncertaintyReport",
    "expected_calibration_error",
    "policy_value",
    "expected_rewards",
    "oracle_bank",
    "bank_evolution",
    "evaluate_iteration",
    "IterationEvaluation",
    "UnseenFidelity",
    "unseen_candidate_fidelity",
    "GainDiagnostics",
    "gain_diagnostics",
    "same_logs_reference",
]


def _embeddings_of(bank: ActionBank | NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    if hasattr(bank, "embeddings"):
        return np.asarray(bank.embeddings, dtype=np.float64)
    return check_array("bank embeddings", bank, ndim=2)


def true_click_probs(
    ground_truth: GroundTruth, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]
) -> NDArray[np.float64]:
    """True click probabilities, users (n, d_user) x action embeddings (m, d_embed) -> (n, m), float64.

    The ground truth is read through this module only (outside the world and the envs), so what a run knows of
    the truth is what it evaluates.
    """
    return np.asarray(ground_truth.click_prob(users, embeddings), dtype=np.float64)


def bank_value(
    ground_truth: GroundTruth,
    users: NDArray[np.float64],
    bank: ActionBank | NDArray[np.floating[Any]],
) -> float:
    """Mean over ``users`` of the best true click probability in ``bank`` (the value under perfect targeting).

    Args:
        ground_truth: The world's click model.
        users: Evaluation users, shape (n_users, d_user).
        bank: An :class:`~actionbank_env.core.actions.ActionBank` or its embeddings, shape (n_actions, d_embed).

    Returns:
        The value; NaN for an empty bank or no users.

    Example:
        >>> class Truth:  # a toy ground truth: P = sigmoid(u . e)
        ...     def click_prob(self, users, embeddings):
        ...         return 1 / (1 + np.exp(-users @ embeddings.T))
        >>> round(bank_value(Truth(), np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.0, 0.0], [2.0, 0.0]])), 4)
        0.6904
    """
    users = check_array("bank_value users", users, ndim=2)
    embeddings = _embeddings_of(bank)
    if users.shape[0] == 0 or embeddings.shape[0] == 0:
        return float("nan")
    probs = np.asarray(ground_truth.click_prob(users, embeddings), dtype=np.float64)
    return float(probs.max(axis=1).mean())


def improvement_captured(v_new: float, v_old: float, v_oracle: float, *, rtol: float = 1e-3) -> float:
    """Share of the oracle's improvement that a designer captured: (V_new - V_old) / (V_oracle - V_old).

    1 means the designer matched the oracle, 0 that it gained nothing, a negative value that it made the
    bank worse; above 1 is possible (the oracle is greedy on a user sample, not the exact optimum). Report it
    next to ΔV = V_new - V_old (:class:`BankComparison` has both): a ratio alone hides how much was at stake.

    Edge rule: when the oracle's gain ``V_oracle - V_old`` is at most ``rtol`` times the larger of
    ``|V_old|`` and ``|V_oracle|`` (the pool held nothing meaningfully better than the bank, or the oracle
    retired value), the ratio is undefined and NaN is returned; aggregate with ``np.nanmean`` and report how
    many were NaN. The threshold is relative so that it means the same at any CTR scale: a gain of 2e-9 on
    a bank worth 0.1 no longer turns a tiny ΔV into a ratio of 500,000. NaN inputs give NaN.

    Example:
        >>> improvement_captured(0.125, 0.1, 0.15)
        0.5
        >>> improvement_captured(0.10, 0.10, 0.10)
        nan
        >>> improvement_captured(0.101, 0.1, 0.1 + 2e-9)  # the oracle gained 2e-8 of the bank's value
        nan
    """
    v_new, v_old, v_oracle = float(v_new), float(v_old), float(v_oracle)
    rtol = check_real("improvement_captured rtol", rtol, low=0.0)
    if not (math.isfinite(v_new) and math.isfinite(v_old) and math.isfinite(v_oracle)):
        return float("nan")
    denom = v_oracle - v_old
    if denom <= 0.0 or denom <= rtol * max(abs(v_old), abs(v_oracle)):
        return float("nan")
    return (v_new - v_old) / denom


def policy_value(
    ground_truth: GroundTruth,
    users: NDArray[np.float64],
    embeddings: NDArray[np.floating[Any]],
    probs: NDArray[np.float64],
) -> float:
    """True value of a policy on ``users``: mean_i sum_a pi(a | x_i) P(click | x_i, a).

    Args:
        ground_truth: The world's click model.
        users: The users the policy serves, shape (n_users, d_user).
        embeddings: The policy's bank, shape (n_actions, d_embed).
        probs: The policy's action distribution per user, shape (n_users, n_actions).

    Returns:
        The value (NaN for no users).

    Example:
        >>> class Truth:
        ...     def click_prob(self, users, embeddings):
        ...         return np.clip(users @ embeddings.T, 0, 1)
        >>> policy_value(Truth(), np.array([[1.0, 0.0], [0.0, 1.0]]), np.eye(2) * 0.5, np.array([[1.0, 0.0], [0.5, 0.5]]))
        0.375
    """
    users = check_array("policy_value users", users, ndim=2)
    embeddings = check_array("policy_value embeddings", embeddings, ndim=2)
    probs = check_array("policy_value probs", probs, shape=(users.shape[0], embeddings.shape[0]), low=0.0)
    if users.shape[0] == 0:
        return float("nan")
    truth = np.asarray(ground_truth.click_prob(users, embeddings), dtype=np.float64)
    return float(np.einsum("ij,ij->i", probs, truth).mean())


def expected_rewards(
    ground_truth: GroundTruth, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]
) -> NDArray[np.float64]:
    """P(click | x, a) for every user and action, shape (n_users, n_actions): OBP's ``expected_reward``."""
    users = check_array("expected_rewards users", users, ndim=2)
    embeddings = check_array("expected_rewards embeddings", embeddings, ndim=2)
    return np.asarray(ground_truth.click_prob(users, embeddings), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class BankComparison:
    """True values of the old, new and oracle banks on one evaluation sample.

    Attributes:
        value_old: V_old. value_new: V_new. value_oracle: V_oracle (NaN when not given).
        delta_value: ΔV = V_new - V_old, in click probability (read it next to the ratio).
        oracle_delta_value: V_oracle - V_old (NaN without an oracle).
        improvement_captured: See :func:`improvement_captured`.
        lift: V_new / V_old - 1.
        n_users: Size of the evaluation sample.
    """

    value_old: float
    value_new: float
    value_oracle: float
    delta_value: float
    oracle_delta_value: float
    improvement_captured: float
    lift: float
    n_users: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN stays NaN; write with ``allow_nan`` or convert to ``None``)."""
        return asdict(self)


def compare_banks(
    ground_truth: GroundTruth,
    users: NDArray[np.float64],
    old: ActionBank | NDArray[np.floating[Any]],
    new: ActionBank | NDArray[np.floating[Any]],
    oracle: ActionBank | NDArray[np.floating[Any]] | None = None,
) -> BankComparison:
    """Bank values of ``old``, ``new`` and ``oracle`` on the same users, and the improvement captured.

    Example:
        >>> class Truth:
        ...     def click_prob(self, users, embeddings):
        ...         return np.clip(users @ embeddings.T, 0, 1)
        >>> users = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> r = compare_banks(Truth(), users, np.array([[0.2, 0.2]]), np.array([[0.2, 0.2], [0.6, 0.0]]),
        ...                   np.array([[0.2, 0.2], [0.6, 0.0], [0.0, 0.6]]))
        >>> round(r.value_old, 3), round(r.value_new, 3), round(r.value_oracle, 3), round(r.improvement_captured, 3)
        (0.2, 0.4, 0.6, 0.5)
    """
    users = check_array("compare_banks users", users, ndim=2)
    v_old = bank_value(ground_truth, users, old)
    v_new = bank_value(ground_truth, users, new)
    v_oracle = bank_value(ground_truth, users, oracle) if oracle is not None else float("nan")
    return BankComparison(
        value_old=v_old,
        value_new=v_new,
        value_oracle=v_oracle,
        delta_value=v_new - v_old,
        oracle_delta_value=v_oracle - v_old,
        improvement_captured=improvement_captured(v_new, v_old, v_oracle),
        lift=v_new / v_old - 1.0 if v_old > 0 else float("nan"),
        n_users=int(users.shape[0]),
    )


def expected_calibration_error(
    predicted: NDArray[np.float64], truth: NDArray[np.float64], *, n_bins: int = 10
) -> float:
    """Expected calibration error with equal-mass bins of the predictions.

    Pairs are sorted by prediction and cut into ``n_bins`` bins of (nearly) equal size; the ECE is the
    size-weighted mean of |mean prediction - mean truth| per bin. ``truth`` may be probabilities (exact) or
    0/1 outcomes (the usual estimate).

    Example:
        >>> p = np.linspace(0.01, 0.99, 100)
        >>> expected_calibration_error(p, p)
        0.0
        >>> round(expected_calibration_error(p, np.clip(p + 0.1, 0, 1)), 3)
        0.095
    """
    predicted = np.ravel(np.asarray(predicted, dtype=np.float64))
    truth = np.ravel(np.asarray(truth, dtype=np.float64))
    n_bins = check_int("expected_calibration_error n_bins", n_bins, low=1)
    if predicted.size == 0:
        return float("nan")
    return _ece_sorted(predicted, truth, np.argsort(predicted, kind="stable"), n_bins)


def _ece_sorted(
    predicted: NDArray[np.float64], truth: NDArray[np.float64], order: NDArray[np.intp], n_bins: int
) -> float:
    """:func:`expected_calibration_error` given the stable sort ``order`` of ``predicted`` (1-d, non-empty)."""
    n = predicted.size
    bins = np.minimum(np.arange(n) * n_bins // n, n_bins - 1)  # bin of each sorted pair
    counts = np.bincount(bins, minlength=n_bins).astype(np.float64)
    pred_sum = np.bincount(bins, weights=predicted[order], minlength=n_bins)
    true_sum = np.bincount(bins, weights=truth[order], minlength=n_bins)
    nonempty = counts > 0
    gaps = np.abs(pred_sum[nonempty] - true_sum[nonempty]) / counts[nonempty]
    return float((counts[nonempty] * gaps).sum() / n)


@dataclass(frozen=True, slots=True)
class FidelityReport:
    """How well a reward model's predictions match the ground truth on users x candidates.

    Attributes:
        pearson: Pearson correlation of predicted and true probabilities.
        spearman: Spearman rank correlation (of average ranks, as ``scipy.stats.spearmanr``).
        auc: ROC AUC of the predictions against clicks drawn from the true probabilities (Bernoulli draws
            with the caller's ``rng``): what one would measure on real clicks.
        auc_ceiling: AUC of the true probabilities themselves against the same draws (the best possible).
        log_loss: Expected cross-entropy E_{y~truth}[-log p̂(y)] per pair (exact, no draws).
        log_loss_ceiling: The entropy of the truth (the log loss of a perfect model).
        ece: Expected calibration error against the true probabilities, equal-mass bins.
        mean_predicted: Mean predicted probability. mean_true: Mean true probability.
        best_action_agreement: Share of users whose predicted best candidate is their true best.
        n_users: Users. n_actions: Candidates. n_pairs: Pairs used (after the optional subsample).
    """

    pearson: float
    spearman: float
    auc: float
    auc_ceiling: float
    log_loss: float
    log_loss_ceiling: float
    ece: float
    mean_predicted: float
    mean_true: float
    best_action_agreement: float
    n_users: int
    n_actions: int
    n_pairs: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _xent(truth: NDArray[np.float64], predicted: NDArray[np.float64]) -> float:
    q = np.clip(predicted, 1e-7, 1.0 - 1e-7)
    return float(-(truth * np.log(q) + (1.0 - truth) * np.log1p(-q)).mean())


def _stable_argsort(values: NDArray[np.float64]) -> NDArray[np.intp]:
    """``np.argsort(values, kind="stable")`` of a 1-d array, from numpy's default sort (several times faster on
    large vectors: it uses the CPU's vector sort) with each run of equal values (NaNs with NaNs, -0.0 with 0.0)
    put back in index order; the runs are re-sorted alone, so a vector with few ties pays little for them (one
    with many, such as a tree model's leaf values, takes numpy's stable sort).

    Example:
        >>> _stable_argsort(np.array([0.3, 0.1, 0.3, -0.0, 0.0])).tolist()
        [3, 4, 1, 0, 2]
    """
    order = np.argsort(values)
    ranked = values[order]
    same = ranked[1:] == ranked[:-1]
    if np.isnan(ranked[-1:]).any():  # NaNs sort last and are unequal to themselves: a run all the same
        same |= np.isnan(ranked[1:]) & np.isnan(ranked[:-1])
    n_same = int(np.count_nonzero(same))
    if n_same == 0:
        return order
    if n_same > ranked.size // 4:  # mostly ties (a tree model's leaf values): numpy's stable sort is cheaper
        return np.argsort(values, kind="stable")
    tied = np.zeros(ranked.size, dtype=bool)  # positions inside a run of equal values
    tied[1:] = same
    tied[:-1] |= same
    run = np.cumsum(np.concatenate(([True], ~same)))[tied]  # the run each tied position belongs to
    # Sorting the distinct keys run * n + index keeps each run in its places with its indices ascending.
    keys = np.sort(run.astype(np.int64) * ranked.size + order[tied])
    order[tied] = keys % ranked.size
    return order


def _midranks(values: NDArray[np.float64], *, stable: bool = True) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Sort order and 1-based average ranks of ``values`` along the last axis (1-d, or row by row).

    The ranks are ``scipy.stats.rankdata(values, method="average", axis=-1)`` either way; the order is
    ``np.argsort(values, axis=-1, kind="stable")``, or with ``stable=False`` numpy's faster default sort (ties in
    any order: enough for the ranks, which are the same). One sort gives both, so a fidelity report ranks each
    250,000-pair vector once for its Spearman correlation, its AUC and its calibration bins (it sorted five
    times), and the diagnostics need no ``scipy.stats`` (an import of ~0.8 CPU-s; a run that estimates its
    proposals off-policy still imports it, through scikit-learn).

    Example:
        >>> order, ranks = _midranks(np.array([0.3, 0.1, 0.3, 0.2]))
        >>> order.tolist(), ranks.tolist()
        ([1, 3, 0, 2], [3.5, 1.0, 3.5, 2.0])
    """
    values = np.asarray(values, dtype=np.float64)
    if not stable:
        order = np.argsort(values, axis=-1)
    elif values.ndim == 1:
        order = _stable_argsort(values)
    else:
        order = np.argsort(values, axis=-1, kind="stable")
    n = values.shape[-1]
    if values.ndim == 1 and n:  # one vector: each run of equal values from its start and end directly
        ranked = values[order]
        first = np.ones(n, dtype=bool)
        first[1:] = ranked[1:] != ranked[:-1]
        starts = np.flatnonzero(first)
        ends = np.empty_like(starts)
        ends[:-1] = starts[1:] - 1
        ends[-1] = n - 1
        ranks = np.empty(n, dtype=np.float64)
        ranks[order] = np.repeat((starts + ends) / 2.0 + 1.0, ends - starts + 1)
        return order, ranks
    ranked = np.take_along_axis(values, order, axis=-1)
    positions = np.broadcast_to(np.arange(n), ranked.shape)
    first = np.ones(ranked.shape, dtype=bool)  # where a group of equal values starts, in sorted order
    first[..., 1:] = ranked[..., 1:] != ranked[..., :-1]
    last = np.ones(ranked.shape, dtype=bool)  # where one ends
    last[..., :-1] = first[..., 1:]
    start = np.maximum.accumulate(np.where(first, positions, 0), axis=-1)
    end = np.flip(np.minimum.accumulate(np.flip(np.where(last, positions, n - 1), axis=-1), axis=-1), axis=-1)
    ranks = np.empty(ranked.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, (start + end) / 2.0 + 1.0, axis=-1)
    return order, ranks


def _auc_from_ranks(labels: NDArray[np.bool_], ranks: NDArray[np.float64]) -> float:
    """ROC AUC from the scores' average ranks (Mann-Whitney U); NaN without both classes.

    The ranks are half-integers, so their sum is exact in any order: the value is the same as from the sorted
    scores.
    """
    labels = np.asarray(labels, dtype=bool).ravel()
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((np.ravel(ranks)[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _roc_auc(labels: NDArray[np.bool_], scores: NDArray[np.float64]) -> float:
    """Area under the ROC curve: P(a positive's score > a negative's) + P(tie) / 2, from the midranks of one
    stable sort (Mann-Whitney U); the value of ``sklearn.metrics.roc_auc_score`` without its input checks and
    second pass (a fidelity report takes several on 250,000 pairs each iteration).

    Example:
        >>> _roc_auc(np.array([False, True, False, True]), np.array([0.1, 0.4, 0.4, 0.8]))
        0.875
    """
    return _auc_from_ranks(labels, _midranks(np.ravel(np.asarray(scores, dtype=np.float64)), stable=False)[1])


def _correlation(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Pearson correlation of two 1-d arrays (``np.corrcoef``; NaN if either is constant).

    Of average ranks it is the Spearman correlation, as ``scipy.stats.spearmanr`` computes it.
    """
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0))


def fidelity_from_predictions(
    predicted: NDArray[np.float64],
    truth: NDArray[np.float64],
    *,
    rng: np.random.Generator,
    n_bins: int = 10,
    max_pairs: int | None = 500_000,
    auc: bool = True,
    clicks: NDArray[np.bool_] | None = None,
) -> FidelityReport:
    """:class:`FidelityReport` from predicted and true probability matrices of shape (n_users, n_actions).

    Args:
        predicted: r̂(u, a), shape (n_users, n_actions).
        truth: P(click | u, a), same shape.
        rng: Draws the clicks for the AUC (and the pair subsample).
        n_bins: Bins of the calibration error.
        max_pairs: Pairs kept for the rank statistics (a uniform subsample beyond it; ``None``: all).
        auc: Compute the two AUCs (``False``: NaN; the clicks are drawn either way, so ``rng`` advances the same).
        clicks: The caller's own clicks of the pairs, shape (n_users, n_actions), to measure the AUCs on instead
            of the draws (which are still drawn, so ``rng`` advances the same); needs ``max_pairs=None``.
    """
    predicted = check_array("fidelity predicted", predicted, ndim=2)
    truth = check_array("fidelity truth", truth, shape=predicted.shape, low=0.0, high=1.0)
    n_users, n_actions = predicted.shape
    if predicted.size < 2:
        raise ConfigError(f"fidelity needs at least 2 user x action pairs, got shape {predicted.shape}.")
    agreement = float(np.mean(predicted.argmax(axis=1) == truth.argmax(axis=1)))
    p, t = predicted.ravel(), truth.ravel()
    if max_pairs is not None and p.size > check_int("fidelity max_pairs", max_pairs, low=2):
        idx = rng.choice(p.size, size=max_pairs, replace=False)
        p, t = p[idx], t[idx]
    drawn = rng.random(t.size) < t
    if clicks is None:
        clicks = drawn
    elif max_pairs is not None or np.shape(clicks) != predicted.shape:
        raise ConfigError(
            f"fidelity clicks must have the predictions' shape {predicted.shape} with max_pairs=None, got shape "
            f"{np.shape(clicks)} with max_pairs={max_pairs}."
        )
    n_bins = check_int("expected_calibration_error n_bins", n_bins, low=1)
    # One sort of each vector serves its ranks (Spearman, AUC) and the calibration bins.
    order_p, ranks_p = _midranks(p)  # the stable order: the calibration bins cut it
    ranks_t = _midranks(t, stable=False)[1]  # ranks only: any tie order
    const = np.ptp(p) == 0 or np.ptp(t) == 0
    return FidelityReport(
        pearson=float("nan") if const else _correlation(p, t),
        spearman=float("nan") if const else _correlation(ranks_p, ranks_t),
        auc=_auc_from_ranks(clicks, ranks_p) if auc else float("nan"),
        auc_ceiling=_auc_from_ranks(clicks, ranks_t) if auc else float("nan"),
        log_loss=_xent(t, p),
        log_loss_ceiling=_xent(t, t),
        ece=_ece_sorted(p, t, order_p, n_bins),
        mean_predicted=float(p.mean()),
        mean_true=float(t.mean()),
        best_action_agreement=agreement,
        n_users=n_users,
        n_actions=n_actions,
        n_pairs=int(p.size),
    )


def reward_model_fidelity(
    model: Any,
    ground_truth: GroundTruth,
    users: NDArray[np.float64],
    embeddings: NDArray[np.floating[Any]],
    *,
    rng: np.random.Generator,
    n_bins: int = 10,
    max_pairs: int | None = 500_000,
) -> FidelityReport:
    """Compare ``model.predict`` with the ground truth on held-out users x candidate actions.

    Args:
        model: A fitted reward model (``predict(users, embeddings) -> (n_users, n_actions)``).
        ground_truth: The world's click model.
        users: Held-out users (not in the training log), shape (n_users, d_user).
        embeddings: Candidate embeddings, shape (n_actions, d_embed).
        rng: Draws the clicks the AUC is measured on (see :class:`FidelityReport`).
        n_bins: Equal-mass bins of the calibration error.
        max_pairs: Subsample bound for the rank statistics.
    """
    users = check_array("reward_model_fidelity users", users, ndim=2)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    predicted = np.asarray(model.predict(users, embeddings), dtype=np.float64)
    truth = np.asarray(ground_truth.click_prob(users, embeddings), dtype=np.float64)
    return fidelity_from_predictions(predicted, truth, rng=rng, n_bins=n_bins, max_pairs=max_pairs)


@dataclass(frozen=True, slots=True)
class UncertaintyReport:
    """Whether predictive std tracks actual error.

    Attributes:
        spearman_std_error: Spearman correlation between std and |mean - truth| (> 0: std ranks errors).
        coverage_95: Share of pairs with |mean - truth| <= 1.96 std (0.95 for a calibrated Gaussian).
        mean_std: Mean predicted std. mean_abs_error: Mean |mean - truth|.
        n_pairs: Pairs compared.
    """

    spearman_std_error: float
    coverage_95: float
    mean_std: float
    mean_abs_error: float
    n_pairs: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def uncertainty_calibration(
    mean: NDArray[np.float64], std: NDArray[np.float64], truth: NDArray[np.float64]
) -> UncertaintyReport:
    """Compare a model's predictive std with its actual error against the true probabilities.

    Args:
        mean: Predicted mean probabilities, any shape.
        std: Predicted standard deviations, same shape, >= 0.
        truth: True probabilities, same shape.

    Example:
        >>> truth = np.linspace(0.1, 0.5, 50)
        >>> err = np.linspace(0.0, 0.1, 50)
        >>> r = uncertainty_calibration(truth + err, err / 1.96 + 1e-9, truth)
        >>> round(r.spearman_std_error, 3), r.coverage_95
        (1.0, 1.0)
    """
    mean = np.ravel(np.asarray(mean, dtype=np.float64))
    std = check_array("uncertainty_calibration std", np.ravel(std), shape=(mean.size,), low=0.0)
    truth = check_array("uncertainty_calibration truth", np.ravel(truth), shape=(mean.size,))
    error = np.abs(mean - truth)
    if mean.size < 2 or np.ptp(std) == 0 or np.ptp(error) == 0:
        rho = float("nan")
    else:
        rho = _correlation(_midranks(std, stable=False)[1], _midranks(error, stable=False)[1])
    return UncertaintyReport(
        spearman_std_error=rho,
        coverage_95=float(np.mean(error <= 1.96 * std)) if mean.size else float("nan"),
        mean_std=float(std.mean()) if mean.size else float("nan"),
        mean_abs_error=float(error.mean()) if mean.size else float("nan"),
        n_pairs=int(mean.size),
    )


# ------------------------------------------------------------------------------------------------ world card

#: Paraphrases of the semantic concepts (none is an exemplar phrase), by concept index of
#: :data:`~actionbank_env.core.ground_truth.SEMANTIC_CONCEPTS`: a semantic world must target them like the concept.
SEMANTIC_PARAPHRASES: tuple[tuple[str, ...], ...] = (
    ("50% off today only", "Clearance: prices slashed on 300 items", "Grab a bargain: everything under $10"),
    (
        "Exclusive VIP access to our luxury collection",
        "Discover the new collection from our atelier, by invitation only",
        "Our most exquisite pieces, reserved for a select few",
    ),
    (
        "Introducing our new AI-powered noise-cancelling headphones",
        "Meet the smartwatch that tracks your sleep and heart rate",
        "Unbox the fastest laptop we've ever made",
    ),
    (
        "Only 3 hours left to order",
        "Time is running out, this offer disappears at midnight",
        "Final call before the sale closes",
    ),
    (
        "Thanks for shopping with us for five years: here's a gift",
        "You've earned 500 points, spend them now",
        "A special reward for our most faithful customers",
    ),
    (
        "Over 50,000 people bought this last month",
        "The product everyone on Instagram is obsessed with",
        "See why our reviewers gave it 5 stars",
    ),
    (
        "Hand-stitched leather boots made to last decades",
        "Solid oak furniture built by master carpenters",
        "Forged steel knives that will outlive you",
    ),
    ("Delivery is on us this weekend", "Order now and we'll ship it free", "Get a complimentary tote with every order"),
)

#: Texts about nothing a concept responds to: a semantic world must not target them.
NEUTRAL_TEXTS: tuple[str, ...] = (
    "An update to our privacy policy",
    "Your monthly account statement is ready",
    "We have updated our terms of service",
    "Please confirm your email address",
    "Your password was changed",
    "Your receipt for order #4821",
)

#: Realism bounds of a world's click probabilities (README, "World card"): no (user, text) pair above
#: ``max_click_prob``; no text ``quintile_ratio`` times likelier to be clicked by the top fifth of users on
#: a trait than by the bottom fifth; neutral texts at most ``neutral_ratio``.
REALISM_BOUNDS: dict[str, float] = {
    "max_click_prob": 0.35,
    "quintile_ratio": 6.0,
    "neutral_ratio": 1.5,
    "paraphrase_share": 0.9,
}

#: Relative tolerances of the measured calibration (absolute for the interaction share).
CARD_TOLERANCES: dict[str, float] = {"base_ctr": 0.10, "best_lift": 0.10, "interaction_share": 0.05}


@dataclass(frozen=True, slots=True)
class WorldCard:
    """A world's datasheet, measured on fresh users and fresh texts (in no reference sample).

    Attributes:
        world: Family, embedder, world seed and the configured calibration targets.
        n_users: Fresh users measured. n_texts: Fresh texts (the pool). bank_size: Size of the random banks.
        base_ctr: Mean click probability over users x texts (random targeting of random texts).
        best_lift: Mean over users and random banks of the per-user best probability, over ``base_ctr``.
        interaction_share: Share of the logit variance that is user x text interaction.
        single_best_share: Share of the per-user targeting gain (per-user best minus random) that the single
            best action of the bank already gets, averaged over random banks.
        click_prob: Percentiles p50, p90, p99 and the max of the click probability over users x texts.
        ctr_by_archetype: Mean click probability of each archetype's users over the pool.
        quintile_ratio: Over pool texts, percentiles of each text's largest top-vs-bottom-quintile click ratio
            over the user traits (how strongly one text targets).
        probes: Concept exemplars, paraphrases and neutral texts (semantic worlds), each with its largest
            click probability, quintile ratio on its concept's main trait and Spearman correlation with it.
        examples: A few users (one per archetype) with their best pool text.
        random_bank_value: Per-user best of a random bank (= base_ctr x best_lift).
        initial_bank_value: Per-user best of the world's initial bank.
        oracle_bank_value: Per-user best of the bank of ``bank_size`` texts chosen greedily from the pool on the
            true probabilities.
        learnability: Improvement captured from logged users by a well-specified model (on request).
        checks: Each calibration target and realism bound: measured, target, tolerance, ok.
        seconds: Time to compute the card.
    """

    world: dict[str, Any]
    n_users: int
    n_texts: int
    bank_size: int
    base_ctr: float
    best_lift: float
    interaction_share: float
    single_best_share: float
    click_prob: dict[str, float]
    ctr_by_archetype: dict[str, float]
    quintile_ratio: dict[str, float]
    probes: list[dict[str, Any]]
    examples: list[dict[str, Any]]
    random_bank_value: float
    initial_bank_value: float
    oracle_bank_value: float
    learnability: dict[str, Any] | None
    checks: list[dict[str, Any]]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(bool(c["ok"]) for c in self.checks)

    def format(self) -> str:
        """The card as plain text (what ``actionbank world-card`` prints)."""
        w = self.world
        lines = [
            f"World card: {w['ground_truth']} / {w['embedder']} / world_seed {w['world_seed']} "
            f"({self.n_users} fresh users x {self.n_texts} fresh texts, banks of {self.bank_size})",
            "",
            f"{'check':<26}{'measured':>10}{'target':>10}{'tolerance':>11}  ok",
        ]
        for c in self.checks:
            lines.append(
                f"{c['name']:<26}{_fmt_num(c['measured']):>10}{_fmt_num(c['target']):>10}{c['tolerance']:>11}  "
                f"{'yes' if c['ok'] else 'NO'}"
            )
        cp = self.click_prob
        lines += [
            "",
            f"single best action's share of the targeting gain: {self.single_best_share:.3f}",
            f"click probability: p50 {cp['p50']:.4f}  p90 {cp['p90']:.4f}  p99 {cp['p99']:.4f}  max {cp['max']:.4f}",
            "quintile ratio per text: " + "  ".join(f"{k} {v:.2f}" for k, v in self.quintile_ratio.items()),
            "CTR by archetype: " + "  ".join(f"{k} {v:.4f}" for k, v in self.ctr_by_archetype.items()),
            f"bank values: random {self.random_bank_value:.4f}  initial {self.initial_bank_value:.4f}  "
            f"oracle from the pool {self.oracle_bank_value:.4f}",
            "",
            "best pool text per user:",
        ]
        for ex in self.examples:
            lines.append(
                f"  {ex['archetype']:<24} ({', '.join(ex['top_traits'])}): p={ex['click_prob']:.3f} "
                f"(mean {ex['mean_click_prob']:.3f})  {ex['text']!r}"
            )
        if self.probes:
            lines += ["", f"{'probe':<10}{'trait':<19}{'max p':>7}{'ratio':>7}{'rho':>7}  text"]
            for p in self.probes:
                lines.append(
                    f"{p['kind']:<10}{p['trait']:<19}{p['max_click_prob']:>7.3f}{p['quintile_ratio']:>7.2f}"
                    f"{p['spearman']:>7.2f}  {p['text']!r}"
                )
        if self.learnability:
            learn = self.learnability
            lines += ["", f"learnability: add {learn.get('bank_add')} pool texts to the initial bank"]
            for row in learn["rows"]:
                lines.append(
                    f"  well-specified model, {row['logged_users']:>5} logged users: improvement captured "
                    f"{_fmt_num(row['improvement_captured'])} (sd {row['improvement_captured_sd']:.2f} over "
                    f"{row['repeats']} logs), dV {row['delta_value']:+.4f} of the oracle's {row['oracle_delta_value']:+.4f}"
                )
            if learn["rows"]:
                lines.append(
                    f"  random designer: improvement captured {_fmt_num(learn['random_improvement_captured'])}, "
                    f"dV {learn['random_delta_value']:+.4f}"
                )
        return "\n".join(lines)


def _fmt_num(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "nan"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _quintile_ratios(probs: NDArray[np.float64], traits: NDArray[np.float64]) -> NDArray[np.float64]:
    """Top-vs-bottom-quintile click ratio of each text on each trait, shape (d_user, n_texts)."""
    lo = traits <= np.quantile(traits, 0.2, axis=0)  # (n, d)
    hi = traits >= np.quantile(traits, 0.8, axis=0)
    top = (hi.T.astype(np.float64) @ probs) / hi.sum(axis=0)[:, None]
    bottom = (lo.T.astype(np.float64) @ probs) / lo.sum(axis=0)[:, None]
    out: NDArray[np.float64] = top / np.maximum(bottom, 1e-12)
    return out


def _greedy_bank(probs: NDArray[np.float64], k: int, base: NDArray[np.float64] | None = None) -> NDArray[np.int64]:
    """Columns chosen greedily to maximise the mean over rows of the row-wise best (facility location).

    The designers' coverage objective without penalty or bonus, maximised by the same (lazy) greedy
    (:class:`~actionbank_env.core.coverage.GreedySelector`), so the card's oracle is the evaluator's oracle.
    """
    from actionbank_env.core.coverage import GreedySelector

    return GreedySelector().select(probs, k, base=base)


def _percentiles(values: NDArray[np.float64]) -> dict[str, float]:
    """p50, p90, p99 and the max of ``values`` (one partition of the data for the three quantiles)."""
    p50, p90, p99 = np.quantile(values, (0.5, 0.9, 0.99))
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(np.max(values))}


def _card_rng(world_seed: int, seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([world_seed, 0xCA4D, seed]))


def world_card(
    world: Any,
    *,
    n_users: int = 2000,
    n_texts: int = 2000,
    seed: int = 0,
    learnability: bool = False,
    learnability_users: tuple[int, ...] = (1000, 5000),
) -> WorldCard:
    """Measure a world's datasheet on fresh users and on fresh texts outside every reference sample.

    Args:
        world: A :class:`~actionbank_env.core.world.World`.
        n_users: Fresh users to measure on.
        n_texts: Fresh texts from the offline copywriter (none in the ground truth's or the company's reference
            sample, nor in the initial bank); the oracle bank is chosen from them.
        seed: With the world seed, draws the users, the texts and the random banks (same seed, same card).
        learnability: Also fit the evaluation-only well-specified model on logged users (seconds, not ms).
        learnability_users: Logged users of each learnability row.

    Returns:
        The :class:`WorldCard`.
    """
    import time

    from actionbank_env.core.copywriting import OfflineCopywriter
    from actionbank_env.core.ground_truth import SEMANTIC_CONCEPTS, monotone_scores

    start = time.perf_counter()
    n_users = check_int("world_card n_users", n_users, low=10)
    n_texts = check_int("world_card n_texts", n_texts, low=2)
    cfg = world.config
    truth = world.ground_truth
    rng = _card_rng(cfg.world_seed, check_int("world_card seed", seed, low=0))
    user_batch = world.sample_users(n_users, rng=rng)
    users = user_batch.features
    exclude = set(world.ground_truth_reference_texts) | set(world.reference_texts) | set(world.initial_bank.texts)
    texts = OfflineCopywriter().write(n_texts, rng=rng, exclude=exclude)
    embeddings = np.asarray(world.embedder.embed(texts), dtype=np.float64)
    scores, link = monotone_scores(truth, users, embeddings)
    probs = link(scores.copy())
    if scores is probs or not hasattr(truth, "logits"):  # gmm: measure the interaction on logit(p)
        clipped = np.clip(probs, 1e-9, 1 - 1e-9)
        logits = np.log(clipped / (1.0 - clipped))
    else:
        logits = scores
    bank_size = min(cfg.initial_actions, n_texts)
    base_ctr = float(probs.mean())
    banks = np.argsort(rng.random((64, n_texts)), axis=1)[:, :bank_size]
    in_bank = probs[:, banks]  # (n, banks, k)
    per_user_best = in_bank.max(axis=2).mean(axis=0)  # (banks,)
    single_best = in_bank.mean(axis=0).max(axis=1)  # (banks,)
    bank_mean = in_bank.mean(axis=(0, 2))
    gain = per_user_best - bank_mean
    single_share = float(np.mean((single_best - bank_mean) / np.where(gain > 0, gain, np.nan)))
    del in_bank
    best_lift = float(per_user_best.mean() / base_ctr)
    share = float(_interaction_share(logits))
    ratios = _quintile_ratios(probs, users)
    text_ratio = np.maximum(ratios, 1.0 / np.maximum(ratios, 1e-12)).max(axis=0)
    names = list(world.feature_names)
    archetypes = {
        name: float(probs[user_batch.archetypes == i].mean())
        for i, name in enumerate(user_batch.archetype_names)
        if np.any(user_batch.archetypes == i)
    }
    # A few users, one per archetype, with their best pool text.
    z = (users - users.mean(axis=0)) / (users.std(axis=0) + 1e-12)
    examples = []
    for i, name in enumerate(user_batch.archetype_names):
        rows = np.flatnonzero(user_batch.archetypes == i)
        if rows.size:
            u = int(rows[0])
            j = int(np.argmax(probs[u]))
            top = np.argsort(-z[u])[:2]
            examples.append(
                {
                    "archetype": name,
                    "top_traits": [names[t] for t in top],
                    "text": texts[j],
                    "click_prob": float(probs[u, j]),
                    "mean_click_prob": float(probs[u].mean()),
                }
            )
    initial = np.asarray(truth.click_prob(users, world.initial_bank.embeddings), dtype=np.float64)
    oracle = _greedy_bank(probs, bank_size)
    oracle_value = float(probs[:, oracle].max(axis=1).mean())
    probes: list[dict[str, Any]] = []
    max_prob = float(probs.max())
    if cfg.ground_truth == "semantic":
        from scipy.stats import spearmanr  # only the semantic probes need it (an import of a second or two)

        probe_rows: list[tuple[str, str, int]] = []
        for k, (phrases, _) in enumerate(SEMANTIC_CONCEPTS):
            probe_rows += [("exemplar", p, k) for p in phrases[:2]]
            probe_rows += [("paraphrase", p, k) for p in SEMANTIC_PARAPHRASES[k]]
        probe_rows += [("neutral", t, -1) for t in NEUTRAL_TEXTS]
        probe_probs = np.asarray(
            truth.click_prob(users, world.embedder.embed([t for _, t, _ in probe_rows])), dtype=np.float64
        )
        probe_ratios = _quintile_ratios(probe_probs, users)
        for col, (kind, text, k) in enumerate(probe_rows):
            if k >= 0:
                weights = SEMANTIC_CONCEPTS[k][1]
                trait = max(weights, key=lambda t: abs(weights[t]))
                j = names.index(trait)
                sign = 1.0 if weights[trait] > 0 else -1.0
                ratio = float(probe_ratios[j, col] ** sign)
                rho = float(sign * spearmanr(probe_probs[:, col], users[:, j])[0])
            else:
                j = int(np.argmax(np.abs(np.log(probe_ratios[:, col]))))
                trait = names[j]
                ratio = float(max(probe_ratios[j, col], 1.0 / probe_ratios[j, col]))
                rho = float(spearmanr(probe_probs[:, col], users[:, j])[0])
            probes.append(
                {
                    "kind": kind,
                    "text": text,
                    "trait": trait,
                    "max_click_prob": float(probe_probs[:, col].max()),
                    "quintile_ratio": ratio,
                    "spearman": rho,
                }
            )
        max_prob = max(max_prob, float(probe_probs.max()))
    checks = _card_checks(cfg, base_ctr, best_lift, share, max_prob, probes)
    learn = None
    if learnability:
        learn = _learnability(world, users, embeddings, probs, rng=rng, sizes=learnability_users)
    return WorldCard(
        world={
            "ground_truth": cfg.ground_truth,
            "embedder": world.embedder.name,
            "world_seed": cfg.world_seed,
            "base_ctr": cfg.base_ctr,
            "best_lift": cfg.best_lift,
            "personalization": cfg.personalization,
            "spectrum_power": cfg.spectrum_power,
            "max_utility": cfg.max_utility,
        }
        | ({"neutral_anchor": truth.neutral_anchor} if cfg.ground_truth == "semantic" else {}),
        n_users=n_users,
        n_texts=len(texts),
        bank_size=bank_size,
        base_ctr=base_ctr,
        best_lift=best_lift,
        interaction_share=share,
        single_best_share=single_share,
        click_prob=_percentiles(probs),
        ctr_by_archetype=archetypes,
        quintile_ratio=_percentiles(text_ratio),
        probes=probes,
        examples=examples,
        random_bank_value=float(per_user_best.mean()),
        initial_bank_value=float(initial.max(axis=1).mean()),
        oracle_bank_value=oracle_value,
        learnability=learn,
        checks=checks,
        seconds=time.perf_counter() - start,
    )


def _interaction_share(logits: NDArray[np.float64]) -> float:
    from actionbank_env.core.ground_truth import interaction_share

    return interaction_share(logits)


def _check(name: str, measured: float, target: float, rule: str, ok: bool) -> dict[str, Any]:
    return {"name": name, "measured": float(measured), "target": float(target), "tolerance": rule, "ok": bool(ok)}


def _card_checks(
    cfg: Any, base_ctr: float, best_lift: float, share: float, max_prob: float, probes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Calibration targets within :data:`CARD_TOLERANCES`, then the :data:`REALISM_BOUNDS`."""
    tol, bounds = CARD_TOLERANCES, REALISM_BOUNDS
    rows = [
        _check(
            "base_ctr",
            base_ctr,
            cfg.base_ctr,
            f"±{tol['base_ctr']:.0%}",
            abs(base_ctr / cfg.base_ctr - 1.0) <= tol["base_ctr"],
        ),
        _check(
            "best_lift",
            best_lift,
            cfg.best_lift,
            f"±{tol['best_lift']:.0%}",
            abs(best_lift / cfg.best_lift - 1.0) <= tol["best_lift"],
        ),
    ]
    if cfg.ground_truth != "gmm":  # the gmm family has no personalization parameter
        rows.append(
            _check(
                "interaction_share",
                share,
                cfg.personalization,
                f"±{tol['interaction_share']}",
                abs(share - cfg.personalization) <= tol["interaction_share"],
            )
        )
    rows.append(
        _check("max_click_prob", max_prob, bounds["max_click_prob"], "<=", max_prob <= bounds["max_click_prob"] + 1e-12)
    )
    if probes:
        concept = max(p["quintile_ratio"] for p in probes if p["kind"] != "neutral")
        neutral = max(p["quintile_ratio"] for p in probes if p["kind"] == "neutral")
        targeted = float(np.mean([p["spearman"] >= 0.3 for p in probes if p["kind"] == "paraphrase"]))
        rows += [
            _check(
                "concept_quintile_ratio", concept, bounds["quintile_ratio"], "<=", concept <= bounds["quintile_ratio"]
            ),
            _check(
                "neutral_quintile_ratio", neutral, bounds["neutral_ratio"], "<=", neutral <= bounds["neutral_ratio"]
            ),
            _check(
                "paraphrases_targeted",
                targeted,
                bounds["paraphrase_share"],
                ">=",
                targeted >= bounds["paraphrase_share"],
            ),
        ]
    return rows


def _bilinear_prob(
    intercept: float,
    alpha: NDArray[np.float64],
    inter: NDArray[np.float64],
    user_basis: NDArray[np.float64],
    action_basis: NDArray[np.float64],
) -> NDArray[np.float64]:
    """sigmoid(intercept + action_basis @ alpha + user_basis @ inter @ action_basisᵀ), shape (n, m)."""
    z = intercept + action_basis @ alpha + (user_basis @ inter) @ action_basis.T
    out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-z))
    return out


def _fit_design_model(
    truth: Any, logged: NDArray[np.float64], actions: NDArray[np.int64], clicks: NDArray[np.int64], bank: Any
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """(intercept, α, B) of a logistic regression on the family's design, L2 strength by 3-fold CV."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.preprocessing import StandardScaler

    user_basis, bank_basis = truth.design(logged, bank)
    served = bank_basis[actions]
    features = np.hstack([served, (user_basis[:, :, None] * served[:, None, :]).reshape(logged.shape[0], -1)])
    scaler = StandardScaler().fit(features)
    model = LogisticRegressionCV(
        Cs=6, cv=3, scoring="neg_log_loss", max_iter=1000, l1_ratios=(0.0,), use_legacy_attributes=False
    )
    model.fit(scaler.transform(features), clicks)
    coef = model.coef_[0] / scaler.scale_
    r = bank_basis.shape[1]
    return float(model.intercept_[0] - coef @ scaler.mean_), coef[:r], coef[r:].reshape(user_basis.shape[1], r)


def _learnability(
    world: Any,
    card_users: NDArray[np.float64],
    pool_embeddings: NDArray[np.float64],
    pool_probs: NDArray[np.float64],
    *,
    rng: np.random.Generator,
    sizes: tuple[int, ...],
    repeats: int = 3,
    bank_add: int = 10,
) -> dict[str, Any]:
    """Improvement captured by a well-specified model fitted on logs of random targeting of the initial bank.

    The model is the family's own functional form with unknown weights (``ground_truth.design``): a logistic
    regression on [action basis, user basis x action basis] (L2 strength by 3-fold cross-validation, scikit-
    learn); only the link's ceiling (``max_utility``) is not modelled. It adds ``bank_add`` pool texts to the
    initial bank by greedy coverage of its own predictions on the logged users; the oracle adds the truth's
    greedy pick on the card users, and the random designer ``bank_add`` random pool texts. Each row averages
    ``repeats`` independent logs.
    """
    truth = world.ground_truth
    if not hasattr(truth, "design"):
        return {"available": False, "reason": f"{truth.name} has no linear design to fit", "rows": []}
    bank = np.asarray(world.initial_bank.embeddings, dtype=np.float64)
    base = np.asarray(truth.click_prob(card_users, bank), dtype=np.float64).max(axis=1)
    oracle = _greedy_bank(pool_probs, bank_add, base=base)
    v_old = float(base.mean())
    v_oracle = float(np.maximum(base, pool_probs[:, oracle].max(axis=1)).mean())

    def value(picks: NDArray[np.int64]) -> float:
        return float(np.maximum(base, pool_probs[:, picks].max(axis=1)).mean())

    random_values = [value(rng.choice(pool_probs.shape[1], bank_add, replace=False)) for _ in range(32)]
    v_random = float(np.mean(random_values))
    rows = []
    for n_logged in sizes:
        values, n_clicks = [], []
        for _ in range(repeats):
            logged = world.sample_users(int(n_logged), rng=rng).features
            actions = rng.integers(0, bank.shape[0], size=logged.shape[0])
            served = np.asarray(truth.click_prob(logged, bank), dtype=np.float64)[np.arange(len(actions)), actions]
            clicks = (rng.random(len(actions)) < served).astype(np.int64)
            n_clicks.append(int(clicks.sum()))
            if clicks.min() == clicks.max():
                values.append(v_random)  # nothing to learn from: as good as a random pick
                continue
            intercept, alpha, inter = _fit_design_model(truth, logged, actions, clicks, bank)
            selection = logged[: min(1000, logged.shape[0])]
            user_basis, pool_basis = truth.design(selection, pool_embeddings)
            _, bank_basis = truth.design(selection, bank)
            predicted_base = _bilinear_prob(intercept, alpha, inter, user_basis, bank_basis).max(axis=1)
            predicted_pool = _bilinear_prob(intercept, alpha, inter, user_basis, pool_basis)
            values.append(value(_greedy_bank(predicted_pool, bank_add, base=predicted_base)))
        v_new = float(np.mean(values))
        rows.append(
            {
                "logged_users": int(n_logged),
                "repeats": repeats,
                "clicks": float(np.mean(n_clicks)),
                "improvement_captured": improvement_captured(v_new, v_old, v_oracle),
                "improvement_captured_sd": float(np.std([(v - v_old) / (v_oracle - v_old) for v in values])),
                "delta_value": v_new - v_old,
                "oracle_delta_value": v_oracle - v_old,
            }
        )
    return {
        "available": True,
        "model": "logistic regression on the family's design (L2, 3-fold CV); random targeting of the initial bank",
        "bank_add": bank_add,
        "value_old": v_old,
        "value_oracle": v_oracle,
        "random_improvement_captured": improvement_captured(v_random, v_old, v_oracle),
        "random_delta_value": v_random - v_old,
        "rows": rows,
    }


def oracle_bank(
    ground_truth: GroundTruth, users: NDArray[np.float64], bank: ActionBank, candidates: Candidates
) -> tuple[float, list[str]]:
    """V_oracle: the bank plus ``candidates.budget`` candidates chosen greedily on the true click probabilities.

    The same coverage objective the designers maximise under their reward models (no diversity penalty, no
    uncertainty bonus), over the same pool, on the evaluation ``users``.

    Returns:
        ``(value, texts)``: the oracle bank's value under perfect targeting and the texts it added (in the order
        chosen); ``(nan, [])`` when the pool is empty or the budget is 0.
    """
    from actionbank_env.core.coverage import GreedySelector

    if not len(candidates.texts) or candidates.budget <= 0:
        return float("nan"), []
    pool_true = ground_truth.click_prob(users, candidates.embeddings)
    bank_true = ground_truth.click_prob(users, bank.embeddings)
    picks = GreedySelector().run(pool_true, candidates.budget, base=bank_true.max(axis=1))
    value = float(np.maximum(bank_true.max(axis=1), pool_true[:, picks.indices].max(axis=1, initial=0.0)).mean())
    return value, [candidates.texts[i] for i in picks.indices]


def bank_evolution(old: ActionBank, new: ActionBank) -> dict[str, list[str]]:
    """Ids of ``new`` that were in ``old`` (kept), that were not (added), and ids of ``old`` not in ``new`` (retired)."""
    return {
        "kept_ids": [a for a in new.ids if a in old],
        "added_ids": [a for a in new.ids if a not in old],
        "retired_ids": [a for a in old.ids if a not in new],
    }


#: Log rows scored against the ground truth per matrix product in :func:`per_action_truth` (bounds memory).
_TRUTH_BLOCK = 1 << 16


def per_action_truth(
    ground_truth: GroundTruth,
    users: NDArray[np.float64],
    action_index: NDArray[np.integer[Any]],
    clicks: NDArray[np.floating[Any] | np.integer[Any]],
    bank: ActionBank,
) -> dict[str, Any]:
    """Per action of the deployed bank: what its observed CTR estimates, beside the observation.

    The observed CTR of an action is a noisy estimate of the mean true click probability of the users it was shown
    to; the report draws the two side by side (it never reads the ground truth itself).

    Args:
        ground_truth: The world's click model.
        users: The logged users, shape (n, d_user).
        action_index: Index in ``bank`` of what each user was served, shape (n,).
        clicks: The logged clicks, shape (n,).
        bank: The deployed bank.

    Returns:
        Lists in bank order: ``ids``, ``impressions``, ``clicks``, ``observed_ctr`` and ``true_ctr`` (mean true click
        probability over the action's impressions; NaN for an action never shown), and ``true_ctr_all_users`` (its
        mean true click probability had every logged user received it).

    Example:
        >>> from types import SimpleNamespace
        >>> class Truth:
        ...     def click_prob(self, users, embeddings):
        ...         return np.clip(users @ embeddings.T, 0, 1)
        >>> bank = SimpleNamespace(ids=("A", "B", "C"), embeddings=np.array([[0.2], [0.4], [0.9]]))
        >>> out = per_action_truth(Truth(), np.array([[1.0], [0.5], [1.0]]), np.array([0, 1, 1]), np.array([0, 1, 0]), bank)
        >>> out["impressions"], out["observed_ctr"][:2], [round(v, 4) for v in out["true_ctr"][:2]], out["true_ctr"][2]
        ([1, 2, 0], [0.0, 0.5], [0.2, 0.3], nan)
    """
    users = check_array("per_action_truth users", users, ndim=2)
    index = np.asarray(action_index, dtype=np.int64)
    n_actions = len(bank.ids)
    if index.shape != (users.shape[0],) or (index.size and (index.min() < 0 or index.max() >= n_actions)):
        raise ConfigError(
            f"per_action_truth action_index must be {users.shape[0]} indices in [0, {n_actions}), got shape "
            f"{index.shape}."
        )
    served = np.empty(users.shape[0], dtype=np.float64)
    everyone = np.zeros(n_actions, dtype=np.float64)
    for start in range(0, users.shape[0], _TRUTH_BLOCK):
        stop = min(start + _TRUTH_BLOCK, users.shape[0])
        probs = true_click_probs(ground_truth, users[start:stop], bank.embeddings)
        served[start:stop] = probs[np.arange(stop - start), index[start:stop]]
        everyone += probs.sum(axis=0)
    shows = np.bincount(index, minlength=n_actions)
    clicked = np.bincount(index, weights=np.asarray(clicks, dtype=np.float64), minlength=n_actions)
    truth = np.bincount(index, weights=served, minlength=n_actions)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed_ctr = np.where(shows > 0, clicked / shows, np.nan)
        true_ctr = np.where(shows > 0, truth / shows, np.nan)
    return {
        "ids": [str(i) for i in bank.ids],
        "impressions": shows.astype(int).tolist(),
        "clicks": clicked.tolist(),
        "observed_ctr": observed_ctr.tolist(),
        "true_ctr": true_ctr.tolist(),
        "true_ctr_all_users": (everyone / users.shape[0] if users.shape[0] else everyone * np.nan).tolist(),
    }


@dataclass(frozen=True, slots=True)
class IterationEvaluation:
    """The ground-truth evaluation of one iteration.

    Attributes:
        record: The content of ``ground_truth_evaluation.json`` (JSON-ready; NaN where undefined).
        residuals: r̂ - truth on up to 200 held-out users x 200 candidates (``None`` without a reward model),
            for a histogram.
    """

    record: dict[str, Any]
    residuals: NDArray[np.float64] | None


#: Held-out users and candidates on which a reward model's fidelity is measured each iteration.
FIDELITY_USERS, FIDELITY_CANDIDATES, RESIDUAL_SAMPLE = 500, 500, 200


def evaluate_iteration(
    ground_truth: GroundTruth,
    users: NDArray[np.float64],
    bank: ActionBank,
    new_bank: ActionBank,
    campaign: Mapping[str, Any],
    proposal: Proposal,
    *,
    rng: np.random.Generator,
) -> IterationEvaluation:
    """Score an iteration against the ground truth on fresh evaluation users.

    Args:
        ground_truth: The world's click model.
        users: Fresh evaluation users (the same sample every iteration), shape (n, d_user).
        bank: The bank deployed in this iteration.
        new_bank: The bank the designer proposed for the next one.
        campaign: The env's ``info`` of this iteration's campaign (``deployed_value``, ``bank_value``,
            ``random_targeting_value``, ``regret``: on the campaign's own users; ``log``: its observations, for the
            per-action truth).
        proposal: The designer's proposal (its candidate pool for the oracle, its reward model for fidelity).
        rng: Draws the clicks of the fidelity AUC.

    Returns:
        The record (bank values old / new / oracle, improvement captured, the campaign's numbers, and the reward
        model's fidelity and uncertainty calibration when there is one) and the residuals.
    """
    users = check_array("evaluate_iteration users", users, ndim=2)
    v_old = bank_value(ground_truth, users, bank)
    v_new = bank_value(ground_truth, users, new_bank)
    candidates = proposal.candidates
    v_oracle, oracle_texts = (
        (float("nan"), []) if candidates is None else oracle_bank(ground_truth, users, bank, candidates)
    )
    record: dict[str, Any] = {
        "deployed_value": campaign["deployed_value"],
        "bank_value_campaign_users": campaign["bank_value"],
        "random_targeting_value": campaign["random_targeting_value"],
        "regret": campaign["regret"],
        "bank_value": v_old,
        "new_bank_value": v_new,
        "oracle_bank_value": v_oracle,
        "oracle_new_texts": oracle_texts,
        "delta_value": v_new - v_old,
        "oracle_delta_value": v_oracle - v_old,
        "improvement_captured": improvement_captured(v_new, v_old, v_oracle),
        "evaluation_users": int(users.shape[0]),
    }
    log = campaign.get("log")
    if log is not None:  # what each action's observed CTR in this campaign estimates (the report's per-action bars)
        columns = log.columns
        record["per_action"] = per_action_truth(
            ground_truth, log.users, columns["action_index"], columns["click"], bank
        )
    diagnostics = proposal.diagnostics
    if "expected_value_new" in diagnostics:  # the optimizer's curse: predicted over realised gain
        record["gain"] = gain_diagnostics(
            diagnostics.get("expected_value_old"), diagnostics.get("expected_value_new"), v_old, v_new
        ).to_dict()
    model = proposal.reward_model
    residuals = None
    if model is not None and candidates is not None and len(candidates.texts):
        held_out = users[:FIDELITY_USERS]
        pool = np.asarray(candidates.embeddings[:FIDELITY_CANDIDATES], dtype=np.float32)
        # One prediction and one truth of held-out users x pool serve all three diagnostics below (the unseen
        # candidates and the residual sample are sub-blocks of it; predictions are pointwise).
        predicted = np.asarray(model.predict(held_out, pool), dtype=np.float64)
        truth = np.asarray(ground_truth.click_prob(held_out, pool), dtype=np.float64)
        fidelity_state = rng.bit_generator.state
        record["reward_model_fidelity"] = fidelity_from_predictions(predicted, truth, rng=rng).to_dict()
        rng.bit_generator.state = fidelity_state  # the same clicks: the two AUCs are comparable
        # The same model on the candidates, beside its ceiling and the action-blind baseline.
        record["unseen_candidate_fidelity"] = unseen_candidate_fidelity(
            model, ground_truth, held_out, pool, rng=rng, served=bank.embeddings, predicted=predicted, truth=truth
        ).to_dict()
        sample_users, sample_pool = held_out[:RESIDUAL_SAMPLE], pool[:RESIDUAL_SAMPLE]
        sample_truth = truth[:RESIDUAL_SAMPLE, :RESIDUAL_SAMPLE]
        residuals = predicted[:RESIDUAL_SAMPLE, :RESIDUAL_SAMPLE] - sample_truth
        if hasattr(model, "predict_with_uncertainty"):  # optional part of the RewardModel protocol
            mean, std = model.predict_with_uncertainty(sample_users, sample_pool)
            record["uncertainty_calibration"] = uncertainty_calibration(mean, std, sample_truth).to_dict()
    return IterationEvaluation(record, residuals)


# ---------------------------------------------------------------------------------------------- design diagnostics


@dataclass(frozen=True, slots=True)
class UnseenFidelity:
    """A reward model's fidelity on texts it never saw served, with the ceiling and an action-blind baseline.

    Bank design needs r̂ to rank texts that were never served. Pooled AUC over users x texts mixes how well
    r̂ tells users apart (which any action-blind model does) with how well it tells texts apart, so the report
    puts three numbers side by side, all measured on the same simulated clicks:

    Attributes:
        fidelity: :class:`FidelityReport` of the model on users x unseen candidates (AUC, its ceiling, ECE, ...).
        user_only_auc: AUC of each user's true mean click probability over the candidates: the best an
            action-blind model can do. A reward model below it has learned nothing usable about texts.
        within_user_spearman: Mean over users of the Spearman correlation between r̂ and the truth across the
            candidates (how well r̂ ranks texts for one user: what greedy selection acts on).
        mean_ratio: Mean prediction / mean truth (1 is calibrated in the mean; the issue asks for ± 25 %).
        n_candidates: Candidates after removing the served ones.
    """

    fidelity: FidelityReport
    user_only_auc: float
    within_user_spearman: float
    mean_ratio: float
    n_candidates: int

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-ready dict: the fidelity fields plus the baseline numbers."""
        return {
            **self.fidelity.to_dict(),
            "user_only_auc": self.user_only_auc,
            "within_user_spearman": self.within_user_spearman,
            "mean_ratio": self.mean_ratio,
            "n_candidates": self.n_candidates,
        }


def _rowwise_spearman(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Mean over rows of the Spearman correlation of ``a[i]`` and ``b[i]`` (rows constant in either are skipped)."""
    ra = _midranks(a, stable=False)[1]
    rb = _midranks(b, stable=False)[1]
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    ok = denom > 0
    return float(np.mean((ra * rb).sum(axis=1)[ok] / denom[ok])) if ok.any() else float("nan")


def unseen_candidate_fidelity(
    model: Any,
    ground_truth: GroundTruth,
    users: NDArray[np.float64],
    candidates: NDArray[np.floating[Any]],
    *,
    rng: np.random.Generator,
    served: NDArray[np.floating[Any]] | None = None,
    n_bins: int = 10,
    predicted: NDArray[np.float64] | None = None,
    truth: NDArray[np.float64] | None = None,
) -> UnseenFidelity:
    """Fidelity of ``model`` on held-out users x candidates that were never served (see :class:`UnseenFidelity`).

    Args:
        model: A fitted reward model (``predict(users, embeddings) -> (n_users, n_actions)``).
        ground_truth: The world's click model.
        users: Held-out users (not in the training log), shape (n_users, d_user).
        candidates: Candidate embeddings, shape (n_candidates, d_embed).
        rng: Draws the clicks the AUCs are measured on.
        served: Embeddings of every text ever served, shape (n_served, d_embed); candidates equal to one of
            them are left out.
        n_bins: Equal-mass bins of the calibration error.
        predicted: ``model.predict(users, candidates)`` if the caller has it already (shape (n_users,
            n_candidates), before the served candidates are removed); ``None``: predicted here.
        truth: ``ground_truth.click_prob(users, candidates)`` likewise.

    Example:
        >>> class Truth:
        ...     def click_prob(self, users, embeddings):
        ...         return 1 / (1 + np.exp(-(users @ embeddings.T) + 2))
        >>> class Model:  # knows the truth exactly
        ...     def predict(self, users, embeddings):
        ...         return Truth().click_prob(users, embeddings)
        >>> rng = np.random.default_rng(0)
        >>> users, cands = rng.standard_normal((200, 3)), rng.standard_normal((50, 3))
        >>> report = unseen_candidate_fidelity(Model(), Truth(), users, cands, rng=rng)
        >>> round(report.within_user_spearman, 6), round(report.mean_ratio, 6)
        (1.0, 1.0)
    """
    users = check_array("unseen_candidate_fidelity users", users, ndim=2)
    cands = np.asarray(check_array("unseen_candidate_fidelity candidates", candidates, ndim=2), dtype=np.float32)
    for name, given in (("predicted", predicted), ("truth", truth)):
        if given is not None and np.shape(given) != (users.shape[0], cands.shape[0]):
            raise ConfigError(
                f"unseen_candidate_fidelity {name} must have shape (n_users, n_candidates) = "
                f"{(users.shape[0], cands.shape[0])}, got {np.shape(given)}."
            )
    keep = np.ones(cands.shape[0], dtype=bool)
    if served is not None and len(served) and cands.shape[0]:
        seen = np.asarray(served, dtype=np.float32)
        # Exact-equality membership through a row view (the same text always embeds to the same row).
        view = np.dtype((np.void, cands.dtype.itemsize * cands.shape[1]))
        keep = ~np.isin(np.ascontiguousarray(cands).view(view).ravel(), np.ascontiguousarray(seen).view(view).ravel())
        cands = cands[keep]
    predicted = (
        np.asarray(model.predict(users, cands), dtype=np.float64)
        if predicted is None
        else np.asarray(predicted, dtype=np.float64)[:, keep]
    )
    truth = (
        np.asarray(ground_truth.click_prob(users, cands), dtype=np.float64)
        if truth is None
        else np.asarray(truth, dtype=np.float64)[:, keep]
    )
    # One draw of clicks for the model, the ceiling and the action-blind baseline (all pairs: n x m is small).
    # Sequential draws, not rng.spawn: spawning advances the SeedSequence a caller may rebuild generators from.
    clicks = rng.random(truth.shape) < truth
    # The action-blind baseline scores every pair of a user with that user's mean truth. Among the n x m pairs,
    # a user ranked r_u (average rank) among the n means has the average rank m (r_u - 1/2) + 1/2 whatever the
    # ties, so one sort of n means gives the AUC of the n x m pairs (as exact: the ranks are half-integers).
    if truth.size:
        user_ranks = truth.shape[1] * (_midranks(truth.mean(axis=1), stable=False)[1] - 0.5) + 0.5
        user_only = _auc_from_ranks(clicks, np.broadcast_to(user_ranks[:, None], truth.shape))
    else:
        user_only = float("nan")
    # The model's AUC and its ceiling on the same clicks as the baseline (the rng draws the report's own anyway).
    fid = fidelity_from_predictions(predicted, truth, rng=rng, n_bins=n_bins, max_pairs=None, clicks=clicks)
    mean_true = float(truth.mean()) if truth.size else float("nan")
    return UnseenFidelity(
        fidelity=fid,
        user_only_auc=user_only,
        within_user_spearman=_rowwise_spearman(predicted, truth) if truth.shape[1] > 1 else float("nan"),
        mean_ratio=float(predicted.mean()) / mean_true if mean_true > 0 else float("nan"),
        n_candidates=int(cands.shape[0]),
    )


@dataclass(frozen=True, slots=True)
class GainDiagnostics:
    """The designer's predicted gain of the new bank against the realised (true) gain: the optimizer's curse.

    Attributes:
        predicted_gain: The designer's own V̂_new - V̂_old (its reward model on its representative users).
        realised_gain: True V_new - V_old on the evaluation users.
        curse_ratio: predicted_gain / realised_gain (1: honest; > 1: the selection believed its own noise);
            NaN when the realised gain is 0 or either is missing.
    """

    predicted_gain: float
    realised_gain: float
    curse_ratio: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def gain_diagnostics(
    predicted_old: float | None, predicted_new: float | None, value_old: float, value_new: float
) -> GainDiagnostics:
    """:class:`GainDiagnostics` from the designer's predicted values and the true ones.

    Example:
        >>> round(gain_diagnostics(0.10, 0.13, 0.10, 0.11).curse_ratio, 6)
        3.0
    """
    realised = float(value_new) - float(value_old)
    if predicted_old is None or predicted_new is None:
        return GainDiagnostics(float("nan"), realised, float("nan"))
    predicted = float(predicted_new) - float(predicted_old)
    ratio = predicted / realised if abs(realised) > 1e-12 and math.isfinite(realised) else float("nan")
    return GainDiagnostics(predicted, realised, ratio)


def same_logs_reference(
    ground_truth: GroundTruth,
    users: NDArray[np.float64],
    bank: ActionBank,
    proposal: Proposal,
    reference: Proposal,
    *,
    v_old: float,
    v_oracle: float,
    rng: np.random.Generator | None = None,
) -> dict[str, Any]:
    """What an evaluation-only reference designer makes of the same logs, bank and pool as the designer.

    The reference designer (the generative designer given the ground truth's functional form) proposes from the
    campaign the designer just proposed from, with its designer stream in the same state, so both choose from
    one pool and their banks differ only by the reward model. Its improvement captured, over the same old bank
    and the same oracle, is the denominator of "what the designer captures out of what these logs allow" at
    every iteration, not only the first (a reference run on its own leaves different logs from iteration 2 on).

    Args:
        ground_truth: The world's click model.
        users: The evaluation users of :func:`evaluate_iteration`.
        bank: The bank deployed in this iteration.
        proposal: The designer's proposal (its pool is the oracle's).
        reference: The reference designer's proposal from the same logs.
        v_old, v_oracle: The old bank's and the oracle bank's values on ``users`` (from the iteration's record).
        rng: When given (and the reference fitted a model), its model's fidelity on never-served candidates is
            measured as :func:`evaluate_iteration` measures the designer's (the first ``FIDELITY_USERS`` users x
            ``FIDELITY_CANDIDATES`` pool texts); a generator in the state :func:`evaluate_iteration`'s had draws
            the same clicks, so the two AUCs are comparable.

    Returns:
        JSON-ready: ``new_bank_value``, ``improvement_captured``, ``n_new`` and the ``new_texts`` of the
        reference's bank, and ``unseen_candidate_fidelity`` with ``rng``.

    Raises:
        RuntimeError: When the two proposals drew different pools (a copywriter whose output depends on more than
            the designer stream, e.g. a live LLM without its cache): the comparison would not be paired.

    Example:
        >>> from types import SimpleNamespace
        >>> from actionbank_env.protocols import Candidates, Proposal
        >>> class Truth:  # P = clip(x . e)
        ...     def click_prob(self, users, embeddings):
        ...         return np.clip(users @ np.asarray(embeddings, dtype=np.float64).T, 0, 1)
        >>> pool = Candidates(texts=("c", "d"), embeddings=np.array([[0.5], [0.9]], dtype=np.float32), budget=1)
        >>> bank = SimpleNamespace(texts=("a",), embeddings=np.array([[0.1]], dtype=np.float32))
        >>> mine, ref = Proposal(("a", "c"), candidates=pool), Proposal(("a", "d"), candidates=pool)
        >>> out = same_logs_reference(Truth(), np.ones((2, 1)), bank, mine, ref, v_old=0.1, v_oracle=0.9)
        >>> round(out["new_bank_value"], 6), round(out["improvement_captured"], 6), out["new_texts"]
        (0.9, 1.0, ['d'])
    """
    mine, theirs = proposal.candidates, reference.candidates
    if mine is None or theirs is None or tuple(mine.texts) != tuple(theirs.texts):
        raise RuntimeError(
            "same_logs_reference: the reference designer drew a different candidate pool from the designer's, so "
            "their banks cannot be compared on the same pool (the copywriter's output must depend only on the "
            "designer stream)."
        )
    lookup = {text: i for i, text in enumerate(theirs.texts)}
    in_bank = {text: i for i, text in enumerate(bank.texts)}
    rows = []
    for text in reference.texts:
        if text in in_bank:
            rows.append(np.asarray(bank.embeddings[in_bank[text]], dtype=np.float64))
        else:
            rows.append(np.asarray(theirs.embeddings[lookup[text]], dtype=np.float64))
    v_ref = bank_value(ground_truth, users, np.stack(rows)) if rows else float("nan")
    new = [text for text in reference.texts if text not in in_bank]
    out: dict[str, Any] = {
        "new_bank_value": v_ref,
        "improvement_captured": improvement_captured(v_ref, v_old, v_oracle),
        "n_new": len(new),
        "new_texts": new,
    }
    if rng is not None and reference.reward_model is not None and len(theirs.texts):
        pool = np.asarray(theirs.embeddings[:FIDELITY_CANDIDATES], dtype=np.float32)
        out["unseen_candidate_fidelity"] = unseen_candidate_fidelity(
            reference.reward_model, ground_truth, users[:FIDELITY_USERS], pool, rng=rng, served=bank.embeddings
        ).to_dict()
    return out
