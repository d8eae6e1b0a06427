"""The posterior direct method and its level-calibrated form, with the Bayesian bilinear reward model."""

from __future__ import annotations

import numpy as np
import pytest

from actionbank_env.errors import ConfigError
from actionbank_env.evaluation import policy_value
from actionbank_env.ope import BanditData, TargetPolicy
from actionbank_env.ope.posterior import (
    BAYES_ESTIMATORS,
    calibrated_posterior_dm,
    estimate_with_posterior,
    posterior_dm,
    posterior_value_draws,
)
from optimizers.reward_models.bilinear import BayesianBilinearRewardModel
from tests.agents.helpers import LogisticTruth, unit_vectors

D_USER, D_EMBED, K_LOGGED, K_NEW = 4, 6, 8, 4


def _world(seed: int) -> tuple[LogisticTruth, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = LogisticTruth(
        weights=rng.normal(size=(D_USER, D_EMBED)) * 0.3, effect=rng.normal(size=D_EMBED) * 0.3, scale=3.0
    )
    texts = unit_vectors(K_LOGGED + K_NEW, D_EMBED, rng)
    return truth, texts[:K_LOGGED], texts[K_LOGGED:]


def _log(truth: LogisticTruth, logged: np.ndarray, n: int, rng: np.random.Generator) -> BanditData:
    users = rng.random((n, D_USER))
    actions = rng.integers(0, logged.shape[0], n)
    p = truth.click_prob(users, logged)[np.arange(n), actions]
    return BanditData(
        users=users,
        actions=actions,
        propensities=np.full(n, 1.0 / logged.shape[0]),
        clicks=(rng.random(n) < p).astype(np.float64),
        embeddings=logged.astype(np.float64),
        action_ids=tuple(f"A{i}" for i in range(logged.shape[0])),
    )


def _fit(data: BanditData, reference: np.ndarray, seed: int, **params: object) -> BayesianBilinearRewardModel:
    model = BayesianBilinearRewardModel(rng=np.random.default_rng(seed), reference_embeddings=reference, **params)
    return model.fit(data.users, data.embeddings.astype(np.float32)[data.actions], data.clicks)


def _target(data: BanditData, new: np.ndarray) -> TargetPolicy:
    """Each user gets the new text that a fixed rule (unrelated to the log) picks."""
    pick = (np.floor(data.users[:, 0] * 7) % new.shape[0]).astype(np.int64)
    return TargetPolicy.from_actions(pick, new.astype(np.float64), tuple(f"N{i}" for i in range(new.shape[0])))


def test_posterior_dm_is_the_models_value_with_a_credible_interval() -> None:
    truth, logged, new = _world(0)
    data = _log(truth, logged, 800, np.random.default_rng(1))
    model = _fit(data, np.vstack([logged, new]), 2, prior_selection="fixed")
    pi = _target(data, new)
    est = posterior_dm(model, data.users, pi, n_samples=2000, rng=np.random.default_rng(4))
    mean = model.predict(data.users, new)
    assert est.value == pytest.approx(float((pi.probs * mean).sum(axis=1).mean()), rel=1e-12)
    draws = posterior_value_draws(model, data.users, pi, n_samples=2000, rng=np.random.default_rng(4))
    # The draws' mean is the moderated prediction's mean, within Monte Carlo error.
    assert abs(draws.mean() - est.value) < 4.0 * draws.std() / np.sqrt(draws.size)
    assert est.ci_low < est.value < est.ci_high
    assert est.std_error == pytest.approx(draws.std(ddof=1), rel=1e-12)


def test_calibrated_dm_of_the_logged_actions_is_the_logged_click_rate() -> None:
    """A target serving each user its logged action has no difference to the logger: the estimate is the
    logged mean click and the interval the clicks' own noise."""
    truth, logged, new = _world(1)
    data = _log(truth, logged, 800, np.random.default_rng(2))
    model = _fit(data, np.vstack([logged, new]), 3, prior_selection="fixed")
    same = TargetPolicy.from_actions(data.actions, data.embeddings, data.action_ids)
    est = calibrated_posterior_dm(model, data, same, n_samples=4000, rng=np.random.default_rng(5))
    assert est.value == pytest.approx(float(data.clicks.mean()), abs=1e-12)
    assert est.diagnostics["posterior_sd_difference"] < 1e-12
    half = 1.96 * est.diagnostics["click_noise_sd"]
    assert est.ci_low == pytest.approx(est.value - half, rel=0.1)
    assert est.ci_high == pytest.approx(est.value + half, rel=0.1)


@pytest.mark.slow
def test_posterior_intervals_reach_nominal_coverage_on_a_well_specified_world() -> None:
    """Bilinear logistic truth (the model's own family), a new bank, 40 logs: the credible intervals of both
    posterior estimators cover the exact value on the same users in about 95 % of the logs."""
    hits = {"bayes_dm": 0, "bayes_cdm": 0}
    n_logs = 40
    for seed in range(n_logs):
        truth, logged, new = _world(100 + seed)
        data = _log(truth, logged, 1500, np.random.default_rng(seed))
        model = _fit(data, np.vstack([logged, new]), seed, prior_selection="evidence")
        pi = _target(data, new)
        value = policy_value(truth, data.users, new, pi.probs)
        ests = {
            "bayes_dm": posterior_dm(model, data.users, pi, n_samples=500, rng=np.random.default_rng(seed)),
            "bayes_cdm": calibrated_posterior_dm(model, data, pi, n_samples=500, rng=np.random.default_rng(seed)),
        }
        for name, est in ests.items():
            hits[name] += est.covers(value)
    for name, h in hits.items():
        assert h / n_logs >= 0.85, (name, h)


def test_estimate_with_posterior_gives_every_bayes_estimator() -> None:
    truth, logged, new = _world(2)
    data = _log(truth, logged, 600, np.random.default_rng(3))
    model = _fit(data, np.vstack([logged, new]), 4, prior_selection="fixed")
    pi = TargetPolicy(
        probs=np.full((data.n_rounds, K_LOGGED), 1.0 / K_LOGGED), embeddings=data.embeddings, action_ids=data.action_ids
    )
    out = estimate_with_posterior(model, data, pi, n_samples=200, rng=np.random.default_rng(6))
    assert tuple(out) == BAYES_ESTIMATORS
    for name, est in out.items():
        assert est.estimator == name and np.isfinite(est.value) and est.ci_low <= est.ci_high
    # The uniform target is the uniform logger: every DR-family weight is 1, so DR is DM plus the mean residual.
    q = model.predict(data.users, data.embeddings.astype(np.float32))
    expected = q.mean() + float(np.mean(data.clicks - q[np.arange(data.n_rounds), data.actions]))
    assert out["bayes_dr"].value == pytest.approx(expected, rel=1e-9)


def test_a_model_without_a_posterior_is_named() -> None:
    class PointModel:
        def predict(self, users: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
            return np.full((len(users), len(embeddings)), 0.1)

    pi = TargetPolicy.from_actions(np.array([0, 1]), np.eye(2), ("A0", "A1"))
    with pytest.raises(ConfigError, match="sample_logits"):
        posterior_dm(PointModel(), np.zeros((2, 3)), pi, rng=np.random.default_rng(0))


def test_a_policy_on_other_users_is_named() -> None:
    truth, logged, new = _world(3)
    data = _log(truth, logged, 300, np.random.default_rng(4))
    model = _fit(data, np.vstack([logged, new]), 5, prior_selection="fixed")
    pi = TargetPolicy.from_actions(np.zeros(5, dtype=np.int64), new.astype(np.float64), ("N0", "N1", "N2", "N3"))
    with pytest.raises(ConfigError, match="one row per"):
        posterior_dm(model, data.users, pi, rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="one row per logged user"):
        calibrated_posterior_dm(model, data, pi, rng=np.random.default_rng(0))


def test_actionbank_ope_fits_its_posterior_model_with_evidence_prior_scales() -> None:
    from actionbank_env.ope.run import DEFAULT_POSTERIOR_MODEL, POSTERIOR_MODEL_PARAMS, _posterior_factory

    reference = unit_vectors(12, 6, np.random.default_rng(0))
    model = _posterior_factory(DEFAULT_POSTERIOR_MODEL, reference)(np.random.default_rng(1))
    assert POSTERIOR_MODEL_PARAMS == {"prior_selection": "evidence"}
    assert isinstance(model, BayesianBilinearRewardModel)
    assert model.config.prior_selection == "evidence"
    other = _posterior_factory("bayesian_neural", reference)(np.random.default_rng(1))
    assert not hasattr(other.config, "prior_selection") or other.config.prior_selection != "evidence"


def test_crossfit_tunes_the_bilinear_prior_once_and_fits_every_fold_at_it() -> None:
    from actionbank_env.ope.policies import crossfit_greedy_policy

    truth, logged, new = _world(5)
    data = _log(truth, logged, 1500, np.random.default_rng(6))
    made: list[BayesianBilinearRewardModel] = []

    def factory(rng: np.random.Generator) -> BayesianBilinearRewardModel:
        made.append(BayesianBilinearRewardModel(rng=rng, prior_sd_grid=(0.125, 2.0), spectrum_grid=(0.0, 1.0)))
        return made[-1]

    once = crossfit_greedy_policy(factory, data, new, [f"n{i}" for i in range(K_NEW)], rng=np.random.default_rng(7))
    assert len(made) == 1 and made[0].cv_scores_  # one selection, on the whole log; the folds are frozen copies
    per_fold = crossfit_greedy_policy(
        factory, data, new, [f"n{i}" for i in range(K_NEW)], rng=np.random.default_rng(7), tune_once=False
    )
    assert len(made) == 6 and all(m.cv_scores_ for m in made[1:])  # the old way: a selection in each of 5 folds
    # Same folds either way, and both are honest out-of-fold predictions of nearly the same model.
    np.testing.assert_array_equal(once.folds, per_fold.folds)
    assert np.corrcoef(once.q_hat_target.ravel(), per_fold.q_hat_target.ravel())[0, 1] > 0.9


def test_crossfit_scores_each_row_on_its_served_action() -> None:
    from actionbank_env.ope.policies import crossfit_greedy_policy

    class Product:
        def fit(self, users: np.ndarray, embeddings: np.ndarray, clicks: np.ndarray) -> Product:
            return self

        def predict(self, users: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
            return np.outer(users[:, 0], np.asarray(embeddings, dtype=np.float64)[:, 0])

    truth, logged, new = _world(8)
    data = _log(truth, logged, 300, np.random.default_rng(9))
    cross = crossfit_greedy_policy(
        lambda rng: Product(), data, new, [f"n{i}" for i in range(K_NEW)], rng=np.random.default_rng(0)
    )
    served = data.users[:, 0] * data.embeddings[data.actions, 0]
    np.testing.assert_allclose(cross.q_hat_logged, served, rtol=1e-12, atol=0)
    np.testing.assert_allclose(cross.q_hat_target, np.outer(data.users[:, 0], new[:, 0]), rtol=1e-12, atol=0)
