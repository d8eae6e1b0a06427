"""Ground-truth evaluation of banks and reward models (the only code besides the envs that reads the truth).

- :func:`bank_value`: mean over users of the best true click probability in a bank (perfect targeting).
  The value *as deployed* by the company's agent is :attr:`~actionbank_env.core.campaign.CampaignResult.deployed_value`.
- :func:`improvement_captured`: (V_new - V_old) / (V_oracle - V_old), with :func:`compare_banks` computing the
  three values on one user sample.
- :func:`reward_model_fidelity`: how well r̂ matches the truth on held-out users x candidates (Pearson,
  Spearman, AUC, log loss, expected calibration error).
- :func:`uncertainty_calibration`: whether a model's predictive std tracks its actual error.

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
    from actionbank_env.core.actions import ActionBank
    from actionbank_env.core.ground_truth import GroundTruth

__all__ = [
    "bank_value",
    "improvement_captured",
    "compare_banks",
    "BankComparison",
    "reward_model_fidelity",
    "FidelityReport",
    "uncertainty_calibration",
    "UncertaintyReport",
    "expected_calibration_error",
    "UnseenFidelity",
    "unseen_candidate_fidelity",
    "GainDiagnostics",
    "gain_diagnostics",
]


def _embeddings_of(bank: ActionBank | NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    if hasattr(bank, "embeddings"):
        return np.asarray(bank.embeddings, dtype=np.float64)
    return check_array("bank embeddings", bank, ndim=2)


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
    from scipy.stats import rankdata

    ra = rankdata(a, axis=1)
    rb = rankdata(b, axis=1)
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
    if served is not None and len(served) and cands.shape[0]:
        seen = np.asarray(served, dtype=np.float32)
        # Exact-equality membership through a row view (the same text always embeds to the same row).
        view = np.dtype((np.void, cands.dtype.itemsize * cands.shape[1]))
        mask = ~np.isin(np.ascontiguousarray(cands).view(view).ravel(), np.ascontiguousarray(seen).view(view).ravel())
        cands = cands[mask]
    predicted = np.asarray(model.predict(users, cands), dtype=np.float64)
    truth = np.asarray(ground_truth.click_prob(users, cands), dtype=np.float64)
    from sklearn.metrics import roc_auc_score

    # One draw of clicks for the model, the ceiling and the action-blind baseline (all pairs: n x m is small).
    # Sequential draws, not rng.spawn: spawning advances the SeedSequence a caller may rebuild generators from.
    clicks = rng.random(truth.shape) < truth
    has_both = 0 < clicks.sum() < clicks.size
    user_mean = np.broadcast_to(truth.mean(axis=1, keepdims=True), truth.shape)
    user_only = float(roc_auc_score(clicks.ravel(), user_mean.ravel())) if has_both else float("nan")
    fid = fidelity_from_predictions(predicted, truth, rng=rng, n_bins=n_bins, max_pairs=None)
    if has_both:  # the model's AUC and its ceiling on the same draws as the baseline
        fid = FidelityReport(
            **{
                **fid.to_dict(),
                "auc": float(roc_auc_score(clicks.ravel(), predicted.ravel())),
                "auc_ceiling": float(roc_auc_score(clicks.ravel(), truth.ravel())),
            }
        )
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
