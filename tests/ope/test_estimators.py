"""The estimators against what theory says, on a synthetic logistic world where the truth is exact."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from actionbank_env.errors import ConfigError
from actionbank_env.evaluation import policy_value
from actionbank_env.ope import BanditData, OPEConfig, TargetPolicy, estimate_all
from actionbank_env.ope.estimators import ActionClusters, marginal_weights, ratio_estimate
from tests.agents.helpers import LogisticTruth, unit_vectors

D_USER, D_EMBED, K = 8, 6, 5


def _truth(seed: int = 0) -> LogisticTruth:
    rng = np.random.default_rng(seed)
    return LogisticTruth(weights=rng.normal(size=(D_USER, D_EMBED)) * 0.5, effect=rng.normal(size=D_EMBED) * 0.5)


def _log(truth: LogisticTruth, embeddings: np.ndarray, n: int, rng: np.random.Generator, logging: str = "uniform"):
    """Users, a logged campaign and the logger's distribution (uniform, or softmax of a fixed score)."""
    users = rng.random((n, D_USER))
    if logging == "uniform":
        probs = np.full((n, embeddings.shape[0]), 1.0 / embeddings.shape[0])
    else:
        logits = users @ np.linspace(-1, 1, D_USER * embeddings.shape[0]).reshape(D_USER, -1)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
    cum = probs.cumsum(axis=1)
    actions = np.minimum((cum < rng.random(n)[:, None]).sum(axis=1), embeddings.shape[0] - 1)
    p_click = truth.click_prob(users, embeddings)[np.arange(n), actions]
    clicks = (rng.random(n) < p_click).astype(np.float64)
    data = BanditData(
        users=users,
        actions=actions,
        propensities=probs[np.arange(n), actions],
        clicks=clicks,
        embeddings=embeddings.astype(np.float64),
        action_ids=tuple(f"A{i}" for i in range(embeddings.shape[0])),
        logging_probs=probs,
    )
    return data


def _greedy_target(users: np.ndarray, embeddings: np.ndarray) -> TargetPolicy:
    """A fixed deterministic target: argmax of a score unrelated to the log."""
    scores = users @ np.arange(D_USER * embeddings.shape[0], dtype=np.float64).reshape(D_USER, -1) % 7
    return TargetPolicy.from_actions(
        np.argmax(scores, axis=1), embeddings, tuple(f"A{i}" for i in range(embeddings.shape[0]))
    )


def test_ips_and_dr_are_unbiased_under_a_uniform_logger() -> None:
    truth = _truth(0)
    embeddings = unit_vectors(K, D_EMBED, np.random.default_rng(1)).astype(np.float64)
    errors: dict[str, list[float]] = {"ips": [], "dr": [], "snips": []}
    rng = np.random.default_rng(2)
    for _ in range(300):
        data = _log(truth, embeddings, 200, rng)
        policy = _greedy_target(data.users, embeddings)
        wrong_model = np.full((data.n_rounds, K), 0.3)  # DR stays unbiased with a wrong model
        est = estimate_all(
            data,
            policy,
            q_hat_target=wrong_model,
            q_hat_logged=wrong_model[:, 0],
            estimators=("ips", "dr", "snips"),
            rng=rng,
        )
        value = policy_value(truth, data.users, embeddings, policy.probs)
        for name in errors:
            errors[name].append(est[name].value - value)
    for name in ("ips", "dr"):
        err = np.asarray(errors[name])
        assert abs(err.mean()) < 3.5 * err.std(ddof=1) / np.sqrt(err.size), (name, err.mean(), err.std())
    # SNIPS is only consistent: its bias is O(1/n), far below IPS's spread here.
    assert abs(np.mean(errors["snips"])) < 0.25 * np.std(errors["ips"])


def test_snips_equals_ips_when_weights_sum_to_n() -> None:
    embeddings = np.eye(2)
    n = 40
    actions = np.tile([0, 1], n // 2)
    data = BanditData(
        users=np.zeros((n, 1)),
        actions=actions,
        propensities=np.full(n, 0.5),
        clicks=(np.arange(n) % 3 == 0) * 1.0,
        embeddings=embeddings,
        action_ids=("A0", "A1"),
    )
    policy = TargetPolicy.from_actions(np.zeros(n, dtype=np.int64), embeddings, ("A0", "A1"))  # w in {0, 2}
    est = estimate_all(data, policy, estimators=("ips", "snips"), rng=np.random.default_rng(0))
    weights = np.where(actions == 0, 2.0, 0.0)
    assert weights.sum() == n
    assert est["snips"].value == pytest.approx(est["ips"].value, rel=1e-12)


def test_mips_reduces_to_ips_with_one_hot_embeddings() -> None:
    truth = LogisticTruth(weights=np.random.default_rng(0).normal(size=(D_USER, K)), effect=np.zeros(K))
    embeddings = np.eye(K)
    data = _log(truth, embeddings, 500, np.random.default_rng(3), logging="softmax")
    policy = _greedy_target(data.users, embeddings)
    config = OPEConfig(n_clusters=K)
    est = estimate_all(
        data, policy, estimators=("ips", "mips", "snips", "snmips"), config=config, rng=np.random.default_rng(0)
    )
    for a, b in (("ips", "mips"), ("snips", "snmips")):
        assert est[a].value == pytest.approx(est[b].value, rel=1e-9)
        assert est[a].ci_high == pytest.approx(est[b].ci_high, rel=1e-9)


def test_mips_weights_from_a_fitted_marginal_approach_the_exact_ones() -> None:
    truth = _truth(1)
    embeddings = unit_vectors(K, D_EMBED, np.random.default_rng(4)).astype(np.float64)
    data = _log(truth, embeddings, 4000, np.random.default_rng(5), logging="softmax")
    policy = _greedy_target(data.users, embeddings)
    clusters = ActionClusters(embeddings, 3)
    exact, _ = marginal_weights(data, policy, clusters)
    fitted, diag = marginal_weights(data.without("logging_probs"), policy, clusters)
    assert diag["marginal_source"] == 0.0
    assert np.corrcoef(exact, fitted)[0, 1] > 0.9


def test_new_actions_are_invisible_to_ips_but_not_to_mips() -> None:
    truth = _truth(2)
    embeddings = unit_vectors(K, D_EMBED, np.random.default_rng(6)).astype(np.float64)
    data = _log(truth, embeddings, 300, np.random.default_rng(7))
    # The target bank replaces action 0 by a near copy with a new id.
    new_embeddings = embeddings.copy()
    new_embeddings[0] = embeddings[0] + 0.01
    ids = ("NEW", *[f"A{i}" for i in range(1, K)])
    policy = TargetPolicy.from_actions(np.zeros(data.n_rounds, dtype=np.int64), new_embeddings, ids)
    est = estimate_all(
        data, policy, estimators=("ips", "mips"), config=OPEConfig(n_clusters=K), rng=np.random.default_rng(0)
    )
    assert est["ips"].value == 0.0 and est["ips"].diagnostics["unsupported_mass"] == 1.0
    value = policy_value(truth, data.users, new_embeddings, policy.probs)
    assert est["mips"].ci_low <= value <= est["mips"].ci_high


@pytest.mark.parametrize("interval", ["analytic", "bootstrap"])
def test_intervals_reach_nominal_coverage(interval: str) -> None:
    # y ~ Bernoulli(0.3) weighted by w in {0, 2}: IPS of a known population value 0.3 * 1.
    rng = np.random.default_rng(11)
    n, reps = 300, 300 if interval == "analytic" else 150
    covered = []
    for _ in range(reps):
        weights = 2.0 * (rng.random(n) < 0.5)
        y = (rng.random(n) < 0.3).astype(np.float64)
        est = ratio_estimate("ips", weights * y, None, interval=interval, n_bootstrap=300, rng=rng)
        covered.append(est.covers(0.3))
    coverage = float(np.mean(covered))
    assert 0.90 <= coverage <= 0.99, coverage


def _bad(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        users=np.zeros((2, 1)),
        actions=np.array([0, 1]),
        propensities=np.array([0.5, 0.5]),
        clicks=np.array([1.0, 0.0]),
        embeddings=np.eye(2),
        action_ids=("A0", "A1"),
    )
    return {**base, **changes}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (_bad(propensities=np.array([0.0, 0.5])), "BanditData.propensities must be in (0, 1]"),
        (_bad(propensities=np.array([np.nan, 0.5])), "BanditData.propensities must be known for every row"),
        (_bad(propensities=np.array([0.5])), "BanditData.propensities must have shape (2), got (1,)"),
        (_bad(actions=np.array([0, 2])), "BanditData.actions must be indices into the logged bank, in [0, 2)"),
        (_bad(clicks=np.array([2.0, 0.0])), "BanditData.clicks must be 0 or 1"),
        (_bad(action_ids=("A0", "A0")), "BanditData.action_ids must be distinct"),
        (
            _bad(logging_probs=np.array([[0.5, 0.5], [0.9, 0.1]])),
            "BanditData.logging_probs must give each served action its logged propensity",
        ),
    ],
)
def test_bad_logs_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        BanditData(**kwargs)


def test_a_policy_outside_its_bank_is_named() -> None:
    with pytest.raises(ConfigError, match=re.escape("a policy cannot pick outside its bank")):
        TargetPolicy.from_actions(np.array([0, 2]), np.eye(2), ("A0", "A1"))
    with pytest.raises(ConfigError, match=re.escape("a policy cannot pick outside its bank")):
        TargetPolicy(probs=np.full((2, 3), 1 / 3), embeddings=np.eye(2), action_ids=("A0", "A1"))
    with pytest.raises(ConfigError, match=re.escape("TargetPolicy.probs rows must sum to 1")):
        TargetPolicy(probs=np.full((2, 2), 0.4), embeddings=np.eye(2), action_ids=("A0", "A1"))


def test_model_estimators_need_predictions() -> None:
    data = BanditData(**_bad())
    policy = TargetPolicy.from_actions(np.array([0, 0]), np.eye(2), ("A0", "A1"))
    with pytest.raises(ConfigError, match=re.escape("need reward model predictions")):
        estimate_all(data, policy, rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match=re.escape("estimator must be one of")):
        estimate_all(data, policy, estimators=("ipw",), rng=np.random.default_rng(0))
