"""Ground-truth evaluation of banks and reward models (the only code besides the envs that reads the truth).

- :func:`bank_value`: mean over users of the best true click probability in a bank (perfect targeting).
  The value *as deployed* by the company's agent is :attr:`~actionbank_env.core.campaign.CampaignResult.deployed_value`.
- :func:`improvement_captured`: (V_new - V_old) / (V_oracle - V_old), with :func:`compare_banks` computing the
  three values on one user sample.
- :func:`reward_model_fidelity`: how well r̂ matches the truth on held-out users x candidates (Pearson,
  Spearman, AUC, log loss, expected calibration error).
- :func:`uncertainty_calibration`: whether a model's predictive std tracks its actual error.
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
    "oracle_bank",
    "bank_evolution",
    "evaluate_iteration",
    "IterationEvaluation",
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


def improvement_captured(v_new: float, v_old: float, v_oracle: float, *, eps: float = 1e-9) -> float:
    """Share of the oracle's improvement that a designer captured: (V_new - V_old) / (V_oracle - V_old).

    1 means the designer matched the oracle, 0 that it gained nothing, a negative value that it made the
    bank worse; above 1 is possible (the oracle is greedy on a user sample, not the exact optimum).

    Edge rule: when ``V_oracle - V_old <= eps`` (the pool held nothing better than the bank, or the oracle
    retired value), the ratio is undefined and NaN is returned; aggregate with ``np.nanmean`` and report how
    many were NaN. NaN inputs give NaN.

    Example:
        >>> improvement_captured(0.125, 0.1, 0.15)
        0.5
        >>> improvement_captured(0.10, 0.10, 0.10)
        nan
    """
    v_new, v_old, v_oracle = float(v_new), float(v_old), float(v_oracle)
    eps = check_real("improvement_captured eps", eps, low=0.0)
    if not (math.isfinite(v_new) and math.isfinite(v_old) and math.isfinite(v_oracle)):
        return float("nan")
    denom = v_oracle - v_old
    if denom <= eps:
        return float("nan")
    return (v_new - v_old) / denom


@dataclass(frozen=True, slots=True)
class BankComparison:
    """True values of the old, new and oracle banks on one evaluation sample.

    Attributes:
        value_old: V_old. value_new: V_new. value_oracle: V_oracle (NaN when not given).
        improvement_captured: See :func:`improvement_captured`.
        lift: V_new / V_old - 1.
        n_users: Size of the evaluation sample.
    """

    value_old: float
    value_new: float
    value_oracle: float
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
    n = predicted.size
    if n == 0:
        return float("nan")
    order = np.argsort(predicted, kind="stable")
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
        spearman: Spearman rank correlation (scipy.stats).
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


def fidelity_from_predictions(
    predicted: NDArray[np.float64],
    truth: NDArray[np.float64],
    *,
    rng: np.random.Generator,
    n_bins: int = 10,
    max_pairs: int | None = 500_000,
) -> FidelityReport:
    """:class:`FidelityReport` from predicted and true probability matrices of shape (n_users, n_actions).

    Args:
        predicted: r̂(u, a), shape (n_users, n_actions).
        truth: P(click | u, a), same shape.
        rng: Draws the clicks for the AUC (and the pair subsample).
        n_bins: Bins of the calibration error.
        max_pairs: Pairs kept for the rank statistics (a uniform subsample beyond it; ``None``: all).
    """
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import roc_auc_score

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
    clicks = rng.random(t.size) < t
    has_both = 0 < clicks.sum() < clicks.size
    const_p, const_t = np.ptp(p) == 0, np.ptp(t) == 0
    pearson = float("nan") if const_p or const_t else float(pearsonr(p, t)[0])
    spearman = float("nan") if const_p or const_t else float(spearmanr(p, t)[0])
    return FidelityReport(
        pearson=pearson,
        spearman=spearman,
        auc=float(roc_auc_score(clicks, p)) if has_both else float("nan"),
        auc_ceiling=float(roc_auc_score(clicks, t)) if has_both else float("nan"),
        log_loss=_xent(t, p),
        log_loss_ceiling=_xent(t, t),
        ece=expected_calibration_error(p, t, n_bins=n_bins),
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
    from scipy.stats import spearmanr

    mean = np.ravel(np.asarray(mean, dtype=np.float64))
    std = check_array("uncertainty_calibration std", np.ravel(std), shape=(mean.size,), low=0.0)
    truth = check_array("uncertainty_calibration truth", np.ravel(truth), shape=(mean.size,))
    error = np.abs(mean - truth)
    if mean.size < 2 or np.ptp(std) == 0 or np.ptp(error) == 0:
        rho = float("nan")
    else:
        rho = float(spearmanr(std, error)[0])
    return UncertaintyReport(
        spearman_std_error=rho,
        coverage_95=float(np.mean(error <= 1.96 * std)) if mean.size else float("nan"),
        mean_std=float(std.mean()) if mean.size else float("nan"),
        mean_abs_error=float(error.mean()) if mean.size else float("nan"),
        n_pairs=int(mean.size),
    )


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
            ``random_targeting_value``, ``regret``: on the campaign's own users).
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
        "improvement_captured": improvement_captured(v_new, v_old, v_oracle),
        "evaluation_users": int(users.shape[0]),
    }
    model = proposal.reward_model
    residuals = None
    if model is not None and candidates is not None and len(candidates.texts):
        held_out = users[:FIDELITY_USERS]
        pool = candidates.embeddings[:FIDELITY_CANDIDATES]
        record["reward_model_fidelity"] = reward_model_fidelity(model, ground_truth, held_out, pool, rng=rng).to_dict()
        sample_users, sample_pool = held_out[:RESIDUAL_SAMPLE], pool[:RESIDUAL_SAMPLE]
        truth = ground_truth.click_prob(sample_users, sample_pool)
        residuals = model.predict(sample_users, sample_pool) - truth
        if hasattr(model, "predict_with_uncertainty"):  # optional part of the RewardModel protocol
            mean, std = model.predict_with_uncertainty(sample_users, sample_pool)
            record["uncertainty_calibration"] = uncertainty_calibration(mean, std, truth).to_dict()
    return IterationEvaluation(record, residuals)
