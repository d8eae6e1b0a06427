"""Off-policy estimators of a target policy's value from logged bandit feedback, with confidence intervals.

With logged rows ``(x_i, a_i, p_i, y_i)``, a target policy ``pi`` over a target bank, a reward model ``q̂``
and ``w_i = pi(a_i | x_i) / p_i`` (0 when the logged action is not in the target bank):

========== ===========================================================================================
``dm``       direct method: mean_i sum_a pi(a|x_i) q̂(x_i, a)
``ips``      inverse propensity scoring: mean_i w_i y_i (Horvitz-Thompson)
``snips``    self-normalised IPS: sum_i w_i y_i / sum_i w_i (Swaminathan and Joachims, 2015)
``dr``       doubly robust: dm_i + w_i (y_i - q̂(x_i, a_i)) (Dudík, Langford and Li, 2011)
``switch_dr`` switch-DR: the DR correction only where w_i <= tau, the model elsewhere (Wang, Agarwal and
             Dudík, 2017)
``dr_os``    DR with optimistic shrinkage: w_i replaced by lambda w_i / (w_i^2 + lambda) (Su et al., 2020)
``mips``     marginalised IPS over action embeddings (Saito and Joachims, 2022): the weight of the logged
             action's embedding cluster c_i, pi(c_i|x_i) / p0(c_i|x_i), where pi(c|x) and p0(c|x) sum the
             target's and the logger's action probabilities over the actions of cluster c
``snmips``   self-normalised MIPS
``mdr``      marginalised DR: dm_i + w_c,i (y_i - q̂(x_i, a_i))
========== ===========================================================================================

Every estimator is a ratio of row sums ``sum_i num_i / sum_i den_i`` (``den_i = 1`` for the unnormalised
ones), so one routine gives all intervals: an analytic t-interval on the linearised row terms
``(num_i - V den_i) / mean(den)`` (the delta method; exact for the plain means), or a percentile bootstrap
over rows.

IPS, SNIPS and the DR family can only see actions the log holds; the share of the target's probability
on actions that are new to the log is reported as ``unsupported_mass`` (IPS and SNIPS ignore it, the DR family
leaves it to the model). MIPS sees new actions through their embedding cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_array, check_choice, check_int, check_real
from actionbank_env.errors import ConfigError
from actionbank_env.ope.data import BanditData, TargetPolicy

__all__ = [
    "ESTIMATORS",
    "Estimate",
    "OPEConfig",
    "ActionClusters",
    "importance_weights",
    "marginal_weights",
    "estimate_all",
    "ratio_estimate",
]

#: Estimator names in table order.
ESTIMATORS: tuple[str, ...] = ("dm", "ips", "snips", "dr", "switch_dr", "dr_os", "mips", "snmips", "mdr")
#: Estimators that need a reward model.
MODEL_ESTIMATORS = frozenset({"dm", "dr", "switch_dr", "dr_os", "mdr"})


@dataclass(frozen=True, slots=True, kw_only=True)
class OPEConfig:
    """Settings of the estimators.

    Attributes:
        level: Confidence level of the intervals.
        interval: ``"analytic"`` (t-interval on the linearised row terms) or ``"bootstrap"`` (percentile
            bootstrap over rows).
        n_bootstrap: Bootstrap resamples.
        switch_tau: Switch-DR threshold: rows whose weight exceeds it get the model's value only.
        os_lambda: DR-os shrinkage: w -> lambda w / (w^2 + lambda); large lambda leaves w unchanged.
        n_clusters: Embedding clusters of MIPS (Ward clustering of the unit-normalised logged embeddings;
            clipped to the logged bank's size); ``None``: ``round(sqrt(K0))`` for a logged bank of K0 actions
            (5 for the default 30). 1 ignores the action entirely (the logged mean click rate); K0 is IPS with
            each new action mapped to its most similar logged one. On development seeds (hashing embedder,
            ``benchmarks/bench_ope.py --cluster-grid 3,5,8,10``) 5 clusters gave the lowest RMSE of SN-MIPS for
            every logger; sqrt(K0) keeps about as many actions per cluster as there are clusters.
        marginal_model_c: Inverse L2 strength of the multinomial logistic model of p0(c | x) used when the log
            holds only the served action's propensity (not the logger's whole distribution).
    """

    level: float = 0.95
    interval: str = "analytic"
    n_bootstrap: int = 1000
    switch_tau: float = 10.0
    os_lambda: float = 10.0
    n_clusters: int | None = None
    marginal_model_c: float = 1.0

    def __post_init__(self) -> None:
        check_real("OPEConfig.level", self.level, low=0.0, high=1.0, low_open=True, high_open=True)
        check_choice("OPEConfig.interval", self.interval, ("analytic", "bootstrap"))
        check_int("OPEConfig.n_bootstrap", self.n_bootstrap, low=10)
        check_real("OPEConfig.switch_tau", self.switch_tau, low=0.0, low_open=True)
        check_real("OPEConfig.os_lambda", self.os_lambda, low=0.0, low_open=True)
        if self.n_clusters is not None:
            check_int("OPEConfig.n_clusters", self.n_clusters, low=1)
        check_real("OPEConfig.marginal_model_c", self.marginal_model_c, low=0.0, low_open=True)


@dataclass(frozen=True, slots=True)
class Estimate:
    """One estimator's answer.

    Attributes:
        estimator: Its name (see :data:`ESTIMATORS`).
        value: The estimate of the target's value (mean click probability per user).
        ci_low: Lower end of the interval. ci_high: Upper end.
        std_error: Standard error of the linearised row terms (NaN for a bootstrap interval).
        n_rounds: Logged rows used.
        diagnostics: Effective sample size of the weights, largest weight, unsupported target mass, ...
    """

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    std_error: float
    n_rounds: int
    diagnostics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    def covers(self, truth: float) -> bool:
        """Whether the interval contains ``truth``."""
        return bool(self.ci_low <= truth <= self.ci_high)


def ratio_estimate(
    name: str,
    num: NDArray[np.float64],
    den: NDArray[np.float64] | None,
    *,
    level: float = 0.95,
    interval: str = "analytic",
    n_bootstrap: int = 1000,
    rng: np.random.Generator | None = None,
    diagnostics: dict[str, float] | None = None,
) -> Estimate:
    """``sum(num) / sum(den)`` (``den=None``: the mean of ``num``) with its confidence interval.

    Analytic: a t-interval on the linearised terms ``(num_i - V den_i) / mean(den)``. Bootstrap: the percentile
    interval of the same ratio over ``n_bootstrap`` multinomial resamples of the rows (needs ``rng``).

    Example:
        >>> e = ratio_estimate("ips", np.array([0.0, 1.0, 0.0, 1.0]), None)
        >>> e.value, round(e.ci_low, 3), round(e.ci_high, 3)
        (0.5, -0.419, 1.419)
    """
    from scipy.stats import t as student_t

    num = np.asarray(num, dtype=np.float64)
    n = num.size
    den_arr = np.ones(n) if den is None else np.asarray(den, dtype=np.float64)
    total = float(den_arr.sum())
    diag = dict(diagnostics or {})
    if n == 0 or total <= 0.0:
        nan = float("nan")
        return Estimate(name, nan, nan, nan, nan, n, diag)
    value = float(num.sum() / total)
    if interval == "bootstrap":
        if rng is None:
            raise ConfigError("a bootstrap interval needs rng (a numpy Generator), got None.")
        values = np.empty(n_bootstrap)
        chunk = max(1, min(n_bootstrap, 20_000_000 // max(n, 1)))
        for start in range(0, n_bootstrap, chunk):
            stop = min(start + chunk, n_bootstrap)
            counts = rng.multinomial(n, np.full(n, 1.0 / n), size=stop - start).astype(np.float64)
            d = counts @ den_arr
            values[start:stop] = np.divide(counts @ num, d, out=np.full(stop - start, value), where=d > 0)
        alpha = 1.0 - level
        low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
        return Estimate(name, value, float(low), float(high), float("nan"), n, diag)
    if n < 2:
        return Estimate(name, value, float("-inf"), float("inf"), float("inf"), n, diag)
    influence = (num - value * den_arr) / (total / n)
    se = float(influence.std(ddof=1) / np.sqrt(n))
    half = float(student_t.ppf(0.5 + level / 2.0, df=n - 1)) * se
    return Estimate(name, value, value - half, value + half, se, n, diag)


def importance_weights(data: BanditData, policy: TargetPolicy) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Action importance weights ``pi(a_i|x_i) / p_i`` and the target's mass on actions the log cannot see.

    ``p_i`` is the balanced propensity ``data.mean_logging_probs[i, a_i]`` when recorded, else the logged one.

    Returns:
        ``(weights (n,), unsupported (n,))``: ``unsupported[i]`` is the target's probability, for user ``i``, on
        target actions that are not in the logged bank.

    Raises:
        ConfigError: If the policy was evaluated on a different number of users than the log holds.
    """
    _check_pair(data, policy)
    position = {a: j for j, a in enumerate(policy.action_ids)}
    to_target = np.array([position.get(a, -1) for a in data.action_ids], dtype=np.int64)  # (K0,)
    target_of_logged = to_target[data.actions]
    rows = np.arange(data.n_rounds)
    pi_logged = np.where(target_of_logged >= 0, policy.probs[rows, np.maximum(target_of_logged, 0)], 0.0)
    in_log = np.zeros(policy.n_actions, dtype=bool)
    in_log[to_target[to_target >= 0]] = True
    unsupported = policy.probs[:, ~in_log].sum(axis=1)
    if data.mean_logging_probs is not None:
        return pi_logged / data.mean_logging_probs[rows, data.actions], unsupported
    return pi_logged / data.propensities, unsupported


def _check_pair(data: BanditData, policy: TargetPolicy) -> None:
    if policy.probs.shape[0] != data.n_rounds:
        raise ConfigError(
            f"TargetPolicy.probs must have one row per logged user ({data.n_rounds}), got {policy.probs.shape[0]}."
        )
    if policy.embeddings.shape[1] != data.embeddings.shape[1]:
        raise ConfigError(
            f"TargetPolicy.embeddings must have the logged bank's dimension {data.embeddings.shape[1]}, got "
            f"{policy.embeddings.shape[1]}."
        )


def _unit_rows(x: NDArray[np.float64]) -> NDArray[np.float64]:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


class ActionClusters:
    """A discrete action embedding for MIPS: clusters of the logged bank's embeddings.

    The logged actions are clustered by Ward's hierarchical clustering of their unit-normalised embeddings
    (deterministic, and balanced on the few dozen actions of a bank); any other action (a new text of the
    target bank) joins the cluster of its most similar logged action (cosine), so every target action has
    logged support through its cluster.

    Args:
        logged_embeddings: Embeddings of the logged bank, shape (K0, d_embed).
        n_clusters: Wanted clusters (clipped to the number of distinct logged embeddings).

    Example:
        >>> emb = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> c = ActionClusters(emb, 2)
        >>> bool(c.logged_labels[0] == c.logged_labels[1] != c.logged_labels[2])
        True
        >>> bool(c.assign(np.array([[0.1, 1.0]]))[0] == c.logged_labels[2])
        True
    """

    def __init__(self, logged_embeddings: NDArray[np.floating[Any]], n_clusters: int) -> None:
        unit = _unit_rows(check_array("ActionClusters logged_embeddings", logged_embeddings, ndim=2))
        distinct = np.unique(np.round(unit, 12), axis=0).shape[0]
        k = max(1, min(check_int("ActionClusters n_clusters", n_clusters, low=1), distinct))
        if k == unit.shape[0]:
            labels = np.arange(k)
        elif k == 1:
            labels = np.zeros(unit.shape[0], dtype=np.int64)
        else:
            from sklearn.cluster import AgglomerativeClustering

            labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(unit)
        self._unit = unit
        self.n_clusters = int(k)
        self.logged_labels: NDArray[np.int64] = np.asarray(labels, dtype=np.int64)

    def assign(self, embeddings: NDArray[np.floating[Any]]) -> NDArray[np.int64]:
        """Cluster of each embedding: that of its most similar logged action (cosine), shape (m,)."""
        unit = _unit_rows(np.asarray(embeddings, dtype=np.float64))
        labels: NDArray[np.int64] = self.logged_labels[np.argmax(unit @ self._unit.T, axis=1)]
        return labels


def _cluster_mass(probs: NDArray[np.float64], labels: NDArray[np.int64], n_clusters: int) -> NDArray[np.float64]:
    """Sum of action probabilities per cluster: (n, K) x labels (K,) -> (n, C)."""
    onehot = np.zeros((labels.size, n_clusters))
    onehot[np.arange(labels.size), labels] = 1.0
    return probs @ onehot


def marginal_weights(
    data: BanditData,
    policy: TargetPolicy,
    clusters: ActionClusters,
    *,
    model_c: float = 1.0,
) -> tuple[NDArray[np.float64], dict[str, float]]:
    """MIPS weights ``pi(c_i | x_i) / p0(c_i | x_i)`` of each logged row's cluster ``c_i``.

    ``pi(c | x)`` sums the target's probabilities over the target actions of cluster ``c``. ``p0(c | x)`` sums
    the logger's: from the campaign-averaged distribution when recorded (``data.mean_logging_probs``; source
    2), exactly per decision when the log holds the logger's distribution (``data.logging_probs``; source 1),
    otherwise (source 0) from
    a multinomial logistic regression of the logged clusters on the user features (the logger's average
    behaviour over the log; floored at the served action's own propensity, which ``p0(c_i | x_i)`` can never be
    below).

    Returns:
        ``(weights (n,), diagnostics)``.
    """
    _check_pair(data, policy)
    n, n_clusters = data.n_rounds, clusters.n_clusters
    rows = np.arange(n)
    logged_c = clusters.logged_labels[data.actions]
    pi_c = _cluster_mass(policy.probs, clusters.assign(policy.embeddings), n_clusters)[rows, logged_c]
    if data.mean_logging_probs is not None:
        p0_c = _cluster_mass(data.mean_logging_probs, clusters.logged_labels, n_clusters)[rows, logged_c]
        source = 2.0
    elif data.logging_probs is not None:
        p0_c = _cluster_mass(data.logging_probs, clusters.logged_labels, n_clusters)[rows, logged_c]
        source = 1.0
    else:
        p0_c = _fit_marginal(data.users, logged_c, model_c)
        p0_c = np.maximum(p0_c, data.propensities)
        source = 0.0
    weights = pi_c / p0_c
    return weights, {"marginal_source": source, "n_clusters": float(n_clusters)}


def _fit_marginal(users: NDArray[np.float64], labels: NDArray[np.int64], model_c: float) -> NDArray[np.float64]:
    """p̂0(c_i | x_i) from a multinomial logistic regression of the logged clusters on the user features."""
    classes = np.unique(labels)
    if classes.size == 1:
        return np.ones(labels.size)
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = StandardScaler().fit_transform(users)
    model = LogisticRegression(C=model_c, max_iter=1000).fit(x, labels)
    proba = model.predict_proba(x)
    column = np.searchsorted(model.classes_, labels)
    return np.asarray(proba[np.arange(labels.size), column], dtype=np.float64)


def _ess(weights: NDArray[np.float64]) -> float:
    s2 = float(np.square(weights).sum())
    return float(weights.sum() ** 2 / s2) if s2 > 0 else 0.0


def estimate_all(
    data: BanditData,
    policy: TargetPolicy,
    *,
    q_hat_target: NDArray[np.float64] | None = None,
    q_hat_logged: NDArray[np.float64] | None = None,
    config: OPEConfig | None = None,
    estimators: Sequence[str] = ESTIMATORS,
    rng: np.random.Generator,
) -> dict[str, Estimate]:
    """Every requested estimator of ``policy``'s value from ``data``.

    Args:
        data: The logged feedback.
        policy: The target policy on the logged users.
        q_hat_target: Reward model predictions for every logged user and target action, shape (n, K1); needed
            by the model-based estimators (``dm`` and the DR family).
        q_hat_logged: Reward model prediction of each logged (user, served action), shape (n,).
        config: Estimator settings.
        estimators: Names from :data:`ESTIMATORS`.
        rng: Seeds the bootstrap.

    Returns:
        ``{name: Estimate}`` in the order asked.

    Raises:
        ConfigError: On an unknown estimator name, or a model-based estimator without model predictions.
    """
    config = config or OPEConfig()
    for name in estimators:
        check_choice("estimator", name, ESTIMATORS)
    needs_model = [e for e in estimators if e in MODEL_ESTIMATORS]
    n = data.n_rounds
    if needs_model:
        if q_hat_target is None or q_hat_logged is None:
            raise ConfigError(f"estimators {needs_model} need reward model predictions (q_hat_target, q_hat_logged).")
        q_hat_target = check_array("q_hat_target", q_hat_target, shape=(n, policy.n_actions))
        q_hat_logged = check_array("q_hat_logged", q_hat_logged, shape=(n,))
    weights, unsupported = importance_weights(data, policy)
    y = data.clicks
    common = {"unsupported_mass": float(unsupported.mean())}
    terms: dict[str, tuple[NDArray[np.float64], NDArray[np.float64] | None, dict[str, float]]] = {}
    w_diag = {**common, "ess": _ess(weights), "max_weight": float(weights.max(initial=0.0))}
    if q_hat_target is not None and q_hat_logged is not None:
        dm = np.einsum("ij,ij->i", policy.probs, q_hat_target)
        residual = y - q_hat_logged
        terms["dm"] = (dm, None, dict(common))
        terms["dr"] = (dm + weights * residual, None, w_diag)
        kept = weights <= config.switch_tau
        terms["switch_dr"] = (
            dm + np.where(kept, weights, 0.0) * residual,
            None,
            {**w_diag, "switched_rows": float(np.mean(~kept))},
        )
        shrunk = config.os_lambda * weights / (np.square(weights) + config.os_lambda)
        terms["dr_os"] = (dm + shrunk * residual, None, {**w_diag, "ess_shrunk": _ess(shrunk)})
    terms["ips"] = (weights * y, None, w_diag)
    terms["snips"] = (weights * y, weights, w_diag)
    if any(e in ("mips", "snmips", "mdr") for e in estimators):
        n_clusters = config.n_clusters or max(1, round(float(np.sqrt(data.n_actions))))
        clusters = ActionClusters(data.embeddings, n_clusters)
        m_weights, m_diag = marginal_weights(data, policy, clusters, model_c=config.marginal_model_c)
        m_diag = {**m_diag, "ess": _ess(m_weights), "max_weight": float(m_weights.max(initial=0.0))}
        terms["mips"] = (m_weights * y, None, m_diag)
        terms["snmips"] = (m_weights * y, m_weights, m_diag)
        if q_hat_target is not None and q_hat_logged is not None:
            dm = terms["dm"][0]
            terms["mdr"] = (dm + m_weights * (y - q_hat_logged), None, m_diag)
    out: dict[str, Estimate] = {}
    for name in estimators:
        num, den, diag = terms[name]
        out[name] = ratio_estimate(
            name,
            num,
            den,
            level=config.level,
            interval=config.interval,
            n_bootstrap=config.n_bootstrap,
            rng=rng,
            diagnostics=diag,
        )
    return out
