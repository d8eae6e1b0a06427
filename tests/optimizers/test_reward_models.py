"""Reward models: learning, batching, persistence, determinism, uncertainty and errors (fast settings)."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from scipy.stats import spearmanr

from actionbank_env.errors import ConfigError, UnknownComponentError
from optimizers.reward_models import REWARD_MODELS, NotFittedError, make_reward_model, reward_model_class
from optimizers.reward_models._base import bounded_sample
from optimizers.reward_models._features import FeatureMap, grid_features, pair_features
from tests.optimizers.helpers_reward import RewardData, log_loss, make_reward_data, paired_probs

# Small settings so the whole file stays fast on two shared cores.
FAST: dict[str, dict[str, Any]] = {
    "linear": {},
    "neural": {"max_epochs": 8},
    "bayesian_neural": {"max_epochs": 8, "mc_samples": 10},
    "lightgbm": {"n_estimators": 60},
    "gaussian_process": {"n_user_features": 16, "n_action_features": 16},
    "ft_transformer": {"max_epochs": 4},
    "ft_transformer_attention": {"max_epochs": 4, "fusion_type": "attention"},
    "bayesian_bilinear": {"spectrum_grid": (0.5,), "prior_sd_grid": (0.25, 1.0)},
}
CASES = list(FAST)
UNCERTAIN = ["bayesian_neural", "gaussian_process", "bayesian_bilinear"]


def _registry_name(case: str) -> str:
    return "ft_transformer" if case.startswith("ft_transformer") else case


@pytest.fixture(scope="module", autouse=True)
def _single_thread() -> Any:
    """Busy-waiting BLAS/torch threads are slow on two shared cores; results do not depend on this."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data() -> RewardData:
    return make_reward_data(0, n_rows=6000, n_test=3000)


@pytest.fixture(scope="module")
def fitted(data: RewardData) -> dict[str, Any]:
    return {}


def _fit(case: str, data: RewardData, fitted: dict[str, Any]) -> Any:
    if case not in fitted:
        model = make_reward_model(_registry_name(case), rng=np.random.default_rng(1), **FAST[case])
        fitted[case] = model.fit(data.users, data.embeddings, data.clicks)
    return fitted[case]


@pytest.mark.parametrize("case", CASES)
def test_learns_clicks_and_ranks_unseen_candidates(case: str, data: RewardData, fitted: dict[str, Any]) -> None:
    model = _fit(case, data, fitted)
    model_loss = log_loss(data.test_clicks, paired_probs(model, data.test_users, data.test_embeddings))
    constant_loss = log_loss(data.test_clicks, np.full(data.test_clicks.shape, data.clicks.mean()))
    assert model_loss < constant_loss - 0.02, (model_loss, constant_loss)
    # Held-out users x candidate actions never served in training.
    probs = model.predict(data.eval_users, data.candidates)
    rho = spearmanr(probs.ravel(), data.true_probs.ravel()).statistic
    assert rho > 0.6, rho


@pytest.mark.parametrize("case", CASES)
def test_predict_shape_dtype_range(case: str, data: RewardData, fitted: dict[str, Any]) -> None:
    model = _fit(case, data, fitted)
    probs = model.predict(data.eval_users[:7], data.candidates[:5])
    assert probs.shape == (7, 5) and probs.dtype == np.float64
    assert np.all((probs >= 0.0) & (probs <= 1.0))
    # Scoring is row-independent: one user alone gets the same scores as inside a batch.
    np.testing.assert_allclose(model.predict(data.eval_users[2:3], data.candidates[:5]), probs[2:3], atol=1e-6)
    assert model.predict(data.eval_users[:3], data.candidates[:0]).shape == (3, 0)


@pytest.mark.parametrize("case", CASES)
def test_save_load_round_trip(case: str, data: RewardData, fitted: dict[str, Any], tmp_path: Any) -> None:
    model = _fit(case, data, fitted)
    folder = model.save(tmp_path / case)
    assert (folder / "config.json").is_file() and (folder / "arrays.npz").is_file()
    loaded = type(model).load(folder)
    np.testing.assert_array_equal(
        loaded.predict(data.eval_users, data.candidates), model.predict(data.eval_users, data.candidates)
    )
    assert loaded.config == model.config
    with pytest.raises(ConfigError, match="loaded without an rng"):
        loaded.fit(data.users, data.embeddings, data.clicks)


@pytest.mark.parametrize("case", CASES)
def test_same_seed_same_predictions(case: str, data: RewardData) -> None:
    params = {**FAST[case], **({"max_epochs": 2} if "max_epochs" in FAST[case] else {})}
    rows = slice(0, 2000)
    predictions = []
    for _ in range(2):
        model = make_reward_model(_registry_name(case), rng=np.random.default_rng(7), **params)
        model.fit(data.users[rows], data.embeddings[rows], data.clicks[rows])
        predictions.append(model.predict(data.eval_users[:20], data.candidates))
    np.testing.assert_array_equal(predictions[0], predictions[1])


@pytest.mark.parametrize("case", ["linear", "lightgbm", "neural"])
def test_fit_indexed_is_fit_on_the_expanded_rows(case: str, data: RewardData) -> None:
    # The table has rows no logged row uses, in a shuffled order, and one action twice under two indices.
    rows = slice(0, 2000)
    distinct, index = np.unique(data.embeddings[rows], axis=0, return_inverse=True)
    extra = data.candidates[:5]
    table = np.vstack([extra, distinct[::-1], distinct[:1]])
    table_index = len(extra) + (len(distinct) - 1 - index.reshape(-1))
    table_index[::7] = np.where(index.reshape(-1)[::7] == 0, len(table) - 1, table_index[::7])
    np.testing.assert_array_equal(table[table_index], data.embeddings[rows])
    params = {**FAST[case], **({"max_epochs": 2} if "max_epochs" in FAST[case] else {})}
    plain = make_reward_model(case, rng=np.random.default_rng(7), **params)
    plain.fit(data.users[rows], data.embeddings[rows], data.clicks[rows])
    indexed = make_reward_model(case, rng=np.random.default_rng(7), **params)
    indexed.fit_indexed(data.users[rows], table, table_index, data.clicks[rows])
    np.testing.assert_allclose(
        indexed.predict(data.eval_users[:20], data.candidates),
        plain.predict(data.eval_users[:20], data.candidates),
        rtol=0,
        atol=1e-12,
    )


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (np.arange(10) * 1.0, "action_index must be an integer array of shape (10,)"),
        (np.arange(9), "action_index must be an integer array of shape (10,), got shape (9,)"),
        (np.arange(10) - 1, "action_index must be in [0, 4), got min -1 and max 8."),
    ],
)
def test_fit_indexed_checks_the_index(index: Any, message: str) -> None:
    rng = np.random.default_rng(0)
    table = rng.standard_normal((4, 6)).astype(np.float32)
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_reward_model("linear", rng=rng).fit_indexed(rng.random((10, 3)), table, index, np.arange(10) % 2.0)


@pytest.mark.parametrize("case", UNCERTAIN)
def test_uncertainty_grows_away_from_data(case: str, data: RewardData, fitted: dict[str, Any]) -> None:
    model = _fit(case, data, fitted)
    mean, std = model.predict_with_uncertainty(data.eval_users, data.bank)
    np.testing.assert_allclose(mean, model.predict(data.eval_users, data.bank))
    assert std.shape == mean.shape and np.all(std >= 0.0)
    far_actions = -4.0 * data.candidates  # far outside the unit sphere the served embeddings lie on
    far_users = np.full((50, data.users.shape[1]), 3.0)  # features live in [0, 1]
    # The GP's probability std grows; the ReLU MC-dropout net saturates its probabilities far away, so it
    # is checked on the logit scale (see BayesianNeuralRewardModel.predict_with_uncertainty).
    space = "logit" if case == "bayesian_neural" else "probability"
    _, near = model.predict_with_uncertainty(data.eval_users, data.bank, space=space)
    _, std_far_actions = model.predict_with_uncertainty(data.eval_users, far_actions, space=space)
    _, std_far_users = model.predict_with_uncertainty(far_users, data.bank, space=space)
    assert std_far_actions.mean() > 1.5 * near.mean(), (std_far_actions.mean(), near.mean())
    assert std_far_users.mean() > 1.5 * near.mean(), (std_far_users.mean(), near.mean())


@pytest.mark.parametrize("case", ["neural", "ft_transformer"])
def test_early_stopping_restores_best_epoch(case: str, data: RewardData) -> None:
    model = make_reward_model(
        case, rng=np.random.default_rng(3), max_epochs=12, patience=2, learning_rate=0.02, validation_fraction=0.3
    )
    rows = slice(0, 1500)
    model.fit(data.users[rows], data.embeddings[rows], data.clicks[rows])
    val_losses = [h["val_loss"] for h in model.history_]
    assert model.best_epoch_ == 1 + int(np.argmin(val_losses))
    idx = model.validation_index_
    probs = paired_probs(model, data.users[rows][idx], data.embeddings[rows][idx])
    assert log_loss(data.clicks[rows][idx], probs) == pytest.approx(min(val_losses), rel=1e-4)


def test_linear_predict_matches_explicit_design(data: RewardData, fitted: dict[str, Any]) -> None:
    model = _fit("linear", data, fitted)
    users_z = model.features_.users(data.eval_users[:4])
    actions_z = model.features_.actions(data.candidates[:3])
    design = grid_features(users_z, actions_z, interactions=True)
    logits = design @ model.coef_ + model.intercept_
    np.testing.assert_allclose(model.decision_function(data.eval_users[:4], data.candidates[:3]).ravel(), logits)


def test_feature_map_caps_components_at_rank() -> None:
    rng = np.random.default_rng(0)
    bank = rng.standard_normal((5, 64)).astype(np.float32)
    embeddings = bank[rng.integers(5, size=300)]
    fmap = FeatureMap.fit(rng.random((300, 8)), embeddings, n_components=16)
    assert fmap.n_components == 4  # 5 distinct actions, rank 4 after centring
    np.testing.assert_allclose(fmap.components @ fmap.components.T, np.eye(4), atol=1e-10)
    reference = rng.standard_normal((100, 64)).astype(np.float32)
    assert (
        FeatureMap.fit(rng.random((300, 8)), embeddings, n_components=16, reference_embeddings=reference).n_components
        == 16
    )


def test_grid_features_match_paired_rows() -> None:
    rng = np.random.default_rng(0)
    users, actions = rng.standard_normal((3, 2)), rng.standard_normal((4, 5))
    grid = grid_features(users, actions, interactions=True)
    paired = pair_features(np.repeat(users, 4, axis=0), np.tile(actions, (3, 1)), interactions=True)
    np.testing.assert_array_equal(grid, paired)


def test_reference_embeddings_are_used(data: RewardData) -> None:
    model = make_reward_model("linear", rng=np.random.default_rng(0), reference_embeddings=data.candidates)
    model.fit(data.users, data.embeddings, data.clicks)
    assert model.n_components_ == 16
    assert model.predict(data.eval_users[:2], data.candidates[:3]).shape == (2, 3)


def test_sample_weight_changes_fit(data: RewardData) -> None:
    weights = np.where(data.users[:, 0] > 0.5, 5.0, 0.2)
    plain = make_reward_model("linear", rng=np.random.default_rng(0)).fit(data.users, data.embeddings, data.clicks)
    weighted = make_reward_model("linear", rng=np.random.default_rng(0)).fit(
        data.users, data.embeddings, data.clicks, sample_weight=weights
    )
    assert not np.allclose(plain.coef_, weighted.coef_)


@pytest.mark.parametrize("name", sorted(REWARD_MODELS))
def test_predict_before_fit_raises(name: str) -> None:
    model = make_reward_model(name, rng=np.random.default_rng(0))
    cls_name = type(model).__name__
    with pytest.raises(NotFittedError, match=f"This {cls_name} is not fitted yet") as info:
        model.predict(np.zeros((1, 8)), np.zeros((1, 64), dtype=np.float32))
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)
    with pytest.raises(NotFittedError):
        model.save("unused")


@pytest.mark.parametrize("name", sorted(REWARD_MODELS))
def test_registry_resolves(name: str) -> None:
    cls = reward_model_class(name)
    assert cls.name == name
    assert cls(rng=np.random.default_rng(0), config=cls.config_class()).config == cls.config_class()


def test_unknown_name_suggests_closest() -> None:
    with pytest.raises(UnknownComponentError, match=re.escape("Did you mean 'lightgbm'?")):
        make_reward_model("lightgmb", rng=np.random.default_rng(0))


def test_unknown_parameter_is_named() -> None:
    message = "LightGBMRewardModel got unknown parameters ['n_estimator']"
    with pytest.raises(TypeError, match=re.escape(message)) as info:
        make_reward_model("lightgbm", rng=np.random.default_rng(0), n_estimator=10)
    assert "Did you mean 'n_estimators'?" in str(info.value)


def test_rng_must_be_a_generator() -> None:
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        make_reward_model("linear", rng=0)  # type: ignore[arg-type]


CONFIG_ERRORS = [
    ("linear", {"C": 0.0}, ConfigError, "LinearConfig.C must be a float > 0.0, got 0.0."),
    ("linear", {"embedding_components": 0}, ConfigError, "LinearConfig.embedding_components must be an int >= 1"),
    ("neural", {"hidden_sizes": ()}, ConfigError, "NeuralConfig.hidden_sizes must contain at least one int"),
    ("neural", {"hidden_sizes": (64, 0)}, ConfigError, "NeuralConfig.hidden_sizes[1] must be an int >= 1, got 0."),
    ("neural", {"validation_fraction": 0.5}, ConfigError, "NeuralConfig.validation_fraction must be a float >= 0.0"),
    ("neural", {"max_epochs": 1.5}, TypeError, "NeuralConfig.max_epochs must be an int, got 1.5"),
    ("bayesian_neural", {"mc_samples": 1}, ConfigError, "BayesianNeuralConfig.mc_samples must be an int >= 2, got 1."),
    ("bayesian_neural", {"dropout": 0.0}, ConfigError, "BayesianNeuralConfig.dropout must be a float > 0.0"),
    ("lightgbm", {"num_leaves": 1}, ConfigError, "LightGBMConfig.num_leaves must be an int >= 2, got 1."),
    ("lightgbm", {"learning_rate": -0.1}, ConfigError, "LightGBMConfig.learning_rate must be a float > 0.0"),
    ("lightgbm", {"interactions": 1}, TypeError, "LightGBMConfig.interactions must be a bool, got 1"),
    (
        "gaussian_process",
        {"lengthscale_user": 0.0},
        ConfigError,
        "GaussianProcessConfig.lengthscale_user must be a float > 0.0",
    ),
    ("gaussian_process", {"prior_variance": -1.0}, ConfigError, "GaussianProcessConfig.prior_variance must be"),
    ("ft_transformer", {"fusion_type": "concatt"}, ConfigError, "Did you mean 'concat'?"),
    ("ft_transformer", {"d_token": 30, "n_heads": 4}, ConfigError, "d_token=30 must be divisible by n_heads=4."),
    ("lightgbm", {"early_stopping_folds": 1}, ConfigError, "LightGBMConfig.early_stopping_folds must be an int >= 2"),
    (
        "bayesian_bilinear",
        {"prior_selection": "evidenc"},
        ConfigError,
        "BayesianBilinearConfig.prior_selection must be one of",
    ),
    ("bayesian_bilinear", {"prior_sd_grid": ()}, ConfigError, "BayesianBilinearConfig.prior_sd_grid must hold"),
    ("bayesian_bilinear", {"spectrum_power": -1.0}, ConfigError, "BayesianBilinearConfig.spectrum_power must be"),
    ("bayesian_bilinear", {"max_fit_rows": 1}, ConfigError, "BayesianBilinearConfig.max_fit_rows must be an int >= 2"),
    ("lightgbm", {"max_fit_rows": 0}, ConfigError, "LightGBMConfig.max_fit_rows must be an int >= 2, got 0."),
]


@pytest.mark.parametrize(("name", "params", "error", "message"), CONFIG_ERRORS)
def test_config_validation(name: str, params: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        make_reward_model(name, rng=np.random.default_rng(0), **params)


FIT_ERRORS = [
    ({"clicks": np.full(10, 0.5)}, "clicks must be 0 or 1"),
    ({"clicks": np.zeros(10)}, "needs at least one click and one non-click, got 0 clicks in 10 rows."),
    ({"embeddings": np.zeros((9, 4), dtype=np.float32)}, "embeddings must have 10 rows to match users, got 9."),
    ({"sample_weight": -np.ones(10)}, "sample_weight must be >= 0.0"),
]


@pytest.mark.parametrize(("override", "message"), FIT_ERRORS)
def test_fit_input_validation(override: dict[str, Any], message: str) -> None:
    rng = np.random.default_rng(0)
    inputs = {
        "users": rng.random((10, 3)),
        "embeddings": rng.standard_normal((10, 4)).astype(np.float32),
        "clicks": np.arange(10) % 2.0,
        "sample_weight": None,
    }
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_reward_model("linear", rng=rng).fit(**{**inputs, **override})


def test_predict_checks_dimensions(data: RewardData, fitted: dict[str, Any]) -> None:
    model = _fit("linear", data, fitted)
    with pytest.raises(ConfigError, match=re.escape("LinearRewardModel.predict embeddings must have shape (n, 64)")):
        model.predict(data.eval_users, np.zeros((3, 5), dtype=np.float32))


def test_import_is_light() -> None:
    code = (
        "import sys, optimizers.reward_models; "
        "heavy = [m for m in ('torch', 'lightgbm', 'sklearn') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lightgbm_rounds_are_chosen_on_held_out_served_texts(data: RewardData) -> None:
    model = make_reward_model("lightgbm", rng=np.random.default_rng(0), n_estimators=80, early_stopping_rounds=5)
    model.fit(data.users, data.embeddings, data.clicks)
    assert 1 <= model.n_estimators_ <= 80 and model.cv_log_loss_ is not None and model.cv_log_loss_ > 0.0
    fixed = make_reward_model("lightgbm", rng=np.random.default_rng(0), n_estimators=7, early_stopping_folds=None)
    assert fixed.fit(data.users, data.embeddings, data.clicks).n_estimators_ == 7 and fixed.cv_log_loss_ is None


def test_bilinear_prior_selection_modes_and_posterior_draws(data: RewardData) -> None:
    fixed = make_reward_model("bayesian_bilinear", rng=np.random.default_rng(0), prior_selection="fixed")
    fixed.fit(data.users, data.embeddings, data.clicks)
    assert fixed.cv_scores_ == [] and fixed.prior_sds_["interaction"] == 0.5
    evidence = make_reward_model(
        "bayesian_bilinear", rng=np.random.default_rng(0), prior_selection="evidence", spectrum_grid=(0.5,)
    )
    evidence.fit(data.users, data.embeddings, data.clicks)
    assert len(evidence.cv_scores_) == 1 and np.isfinite(evidence.cv_scores_[0]["log_evidence"])
    draws = evidence.sample_logits(data.eval_users[:50], data.candidates[:20], 400, rng=np.random.default_rng(1))
    mean, std = evidence.predict_with_uncertainty(data.eval_users[:50], data.candidates[:20], space="logit")
    assert draws.shape == (400, 50, 20)
    # Posterior draws agree with the analytic moments (400 draws: a loose Monte Carlo tolerance).
    assert np.abs(draws.mean(axis=0) - mean).max() < 0.25 * std.max() + 1e-6
    assert np.abs(draws.std(axis=0) / std - 1.0).mean() < 0.15


def test_bilinear_frozen_copy_fits_at_the_chosen_prior_without_selecting_again(data: RewardData) -> None:
    tuned = make_reward_model(
        "bayesian_bilinear", rng=np.random.default_rng(0), reference_embeddings=data.candidates[:40]
    )
    with pytest.raises(NotFittedError):
        tuned.frozen_copy(np.random.default_rng(1))
    tuned.fit(data.users, data.embeddings, data.clicks)
    frozen = tuned.frozen_copy(np.random.default_rng(1))
    assert frozen.config.prior_selection == "fixed" and frozen.config.spectrum_power == tuned.spectrum_power_
    frozen.fit(data.users, data.embeddings, data.clicks)
    assert frozen.cv_scores_ == [] and frozen.prior_sds_ == tuned.prior_sds_
    # Same priors, same data: the same posterior mean, so the same predictions (to the solver's tolerance).
    np.testing.assert_allclose(
        frozen.predict(data.eval_users, data.candidates), tuned.predict(data.eval_users, data.candidates), atol=1e-6
    )


def test_bilinear_newton_algebra_matches_the_dense_row_design() -> None:
    """The Hessian (summed over distinct entries per served text) and the held-out predictive variance (through
    each text's contracted covariance) equal the textbook forms built from the (n, d_φ d_ψ) row design."""
    from optimizers.reward_models.bilinear import BayesianBilinearRewardModel, _Design, _hessian

    rng = np.random.default_rng(3)
    n, d_phi, d_psi, k = 400, 4, 6, 7
    phi = np.hstack([np.ones((n, 1)), rng.standard_normal((n, d_phi - 1))])
    psi = np.hstack([np.ones((k, 1)), rng.standard_normal((k, d_psi - 1))])
    action = rng.integers(0, k - 1, n)  # text k-1 is never served
    design = _Design(phi, psi, action, (rng.random(n) < 0.3).astype(float), rng.random(n) + 0.5)
    curvature, precision = rng.random(n), rng.random((d_phi, d_psi)) + 0.1
    rows = (design.phi[:, :, None] * design.psi[design.action][:, None, :]).reshape(n, -1)  # φ ⊗ ψ, row-major
    dense = rows.T @ (rows * curvature[:, None]) + np.diag(precision.reshape(-1))
    np.testing.assert_allclose(_hessian(design, curvature, precision), dense, rtol=1e-10, atol=1e-10)
    expected = np.einsum("ij,jk,ik->i", rows, np.linalg.inv(dense), rows)
    got = BayesianBilinearRewardModel._design_variance(design, dense)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def _textbook_fit_map(design, precision, init, *, max_iter, tol):  # type: ignore[no-untyped-def]
    """_fit_map as it was before fits could share their first step: every quantity recomputed per fit."""
    from scipy.linalg.lapack import dpotrf, dpotrs

    from optimizers.reward_models._features import sigmoid
    from optimizers.reward_models.bilinear import _hessian, _objective

    m = init.copy()
    value, logits = _objective(design, m, precision)
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        probs = sigmoid(logits)
        resid = design.weights * (probs - design.clicks)
        per_action = np.add.reduceat(design.phi * resid[:, None], design.starts, axis=0)
        grad = per_action.T @ design.psi[design.groups] + precision * m
        hess = _hessian(design, design.weights * probs * (1.0 - probs), precision)
        factor, _ = dpotrf(hess, lower=False, clean=False)
        step = dpotrs(factor, grad.reshape(-1), lower=False)[0].reshape(m.shape)
        scale = 1.0
        while True:
            candidate = m - scale * step
            new_value, new_logits = _objective(design, candidate, precision)
            if new_value <= value + 1e-10 * max(1.0, abs(value)) or scale < 1e-4:
                break
            scale *= 0.5
        m, value, logits = candidate, new_value, new_logits
        if float(np.max(np.abs(scale * step))) < tol:
            break
    probs = sigmoid(logits)
    return m, _hessian(design, design.weights * probs * (1.0 - probs), precision), n_iter


def test_bilinear_fits_sharing_a_first_step_are_bit_identical_to_separate_fits() -> None:
    """The grouped CV computes the data part of Newton's first step once per fold (_NewtonStart) for its whole
    grid of priors; each fit must equal the fit that recomputes everything. Both sides make the same numpy and
    LAPACK calls on the same shapes, so the equality is exact (that is the claim of the optimisation)."""
    from optimizers.reward_models.bilinear import _Design, _fit_map, _NewtonStart, _precision

    rng = np.random.default_rng(11)
    n, d_phi, d_psi, k = 600, 5, 7, 9
    phi = np.hstack([np.ones((n, 1)), rng.standard_normal((n, d_phi - 1))])
    psi = np.hstack([np.ones((k, 1)), rng.standard_normal((k, d_psi - 1))])
    action = rng.integers(0, k, n)
    logits = phi @ rng.standard_normal((d_phi, d_psi)) * 0.3 @ psi.T
    clicks = (rng.random(n) < 1.0 / (1.0 + np.exp(-logits[np.arange(n), action] + 1.5))).astype(float)
    design = _Design(phi, psi, action, clicks, rng.random(n) + 0.5)
    init = np.zeros((d_phi, d_psi))
    init[0, 0] = -1.2
    start = _NewtonStart.at(design, init)
    for sd_a, sd_w in [(0.125, 0.125), (0.5, 2.0), (2.0, 0.5), (8.0, 8.0)]:
        precision = _precision(d_phi, d_psi, {"intercept": 10.0, "user": 1.0, "action": sd_a, "interaction": sd_w})
        for tol, max_iter in [(1e-4, 50), (1e-8, 50), (1e-4, 1)]:
            expected = _textbook_fit_map(design, precision, init, max_iter=max_iter, tol=tol)
            for got in (
                _fit_map(design, precision, init, max_iter=max_iter, tol=tol, start=start),
                _fit_map(design, precision, init, max_iter=max_iter, tol=tol),
            ):
                np.testing.assert_array_equal(got[0], expected[0])
                np.testing.assert_array_equal(got[1], expected[1])
                assert got[2] == expected[2]
    with pytest.raises(ValueError, match="another init"):
        _fit_map(design, precision, init + 1.0, max_iter=5, tol=1e-4, start=start)


def test_bilinear_quadrature_in_one_buffer_is_bit_identical_to_the_textbook_form(data: RewardData) -> None:
    """predict and predict_with_uncertainty compute the Gauss-Hermite moments in a reused buffer with in-place
    ufuncs; the bits must be those of the plain expression (same ufuncs, same order; chunks of uneven size)."""
    from dataclasses import replace

    from optimizers.reward_models._features import sigmoid, user_chunks

    model = make_reward_model("bayesian_bilinear", rng=np.random.default_rng(0), prior_selection="fixed")
    model.fit(data.users, data.embeddings, data.clicks)
    model.config = replace(model.config, max_pairs_per_chunk=12 * 7 * data.candidates.shape[0])  # 150 = 21 x 7 + 3
    users_z, actions_z = model._check_predict_inputs(data.eval_users, data.candidates)
    nodes, node_weights = np.polynomial.hermite.hermgauss(12)
    node_weights = node_weights / np.sqrt(np.pi)
    mean = np.zeros((users_z.shape[0], actions_z.shape[0]))
    std = np.zeros_like(mean)
    for chunk in user_chunks(users_z.shape[0], actions_z.shape[0], model.config.max_pairs_per_chunk // 12):
        mu, var = model._latent_moments(users_z[chunk], actions_z)
        probs = sigmoid(mu[..., None] + np.sqrt(2.0 * var)[..., None] * nodes)
        mean[chunk] = probs @ node_weights
        std[chunk] = np.sqrt(np.maximum((probs**2) @ node_weights - mean[chunk] ** 2, 0.0))
    mean = np.clip(mean, 0.0, 1.0)
    np.testing.assert_array_equal(model.predict(data.eval_users, data.candidates), mean)
    got_mean, got_std = model.predict_with_uncertainty(data.eval_users, data.candidates)
    np.testing.assert_array_equal(got_mean, mean)
    np.testing.assert_array_equal(got_std, std)


def test_bounded_sample_keeps_the_rare_outcome_and_stands_for_every_row() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    clicks = (rng.random(n) < 0.04).astype(np.float64)
    weights = rng.uniform(0.5, 2.0, n)
    rows, new_weights = bounded_sample(clicks, weights, 2_000, np.random.default_rng(4))
    assert rows.size == 2_000 and np.all(np.diff(rows) > 0)
    assert set(np.flatnonzero(clicks).tolist()) <= set(rows.tolist())  # every click kept: fewer than half
    ratio = new_weights / weights[rows]  # one factor per outcome: 1 / its sampling rate, times a common scale
    kept_clicks = clicks[rows] == 1.0
    np.testing.assert_allclose(ratio[kept_clicks], ratio[kept_clicks][0], rtol=1e-12)
    np.testing.assert_allclose(ratio[~kept_clicks], ratio[~kept_clicks][0], rtol=1e-12)
    n_non = n - int(clicks.sum())
    np.testing.assert_allclose(ratio[~kept_clicks][0] / ratio[kept_clicks][0], n_non / (~kept_clicks).sum())
    np.testing.assert_allclose(new_weights.sum(), weights.sum(), rtol=1e-12)
    # Horvitz-Thompson: the weighted mean of a row statistic over the sample estimates the full log's.
    stat = rng.standard_normal(n) + 3.0 * clicks
    full = float(np.average(stat, weights=weights))
    assert abs(float(np.average(stat[rows], weights=new_weights)) - full) < 0.1
    # More clicks than half the sample: half of it clicks, half non-clicks.
    many = (rng.random(n) < 0.5).astype(np.float64)
    rows, new_weights = bounded_sample(many, np.ones(n), 1_000, np.random.default_rng(5))
    assert int(many[rows].sum()) in (500, 501) and rows.size == 1_000
    assert np.unique(np.round(new_weights, 9)).size == 2


@pytest.mark.parametrize("case", ["bayesian_bilinear", "lightgbm"])
def test_max_fit_rows_bounds_the_fit_without_losing_quality(case: str, data: RewardData) -> None:
    n = data.users.shape[0]

    def fitted_model(max_fit_rows: int | None) -> Any:
        model = make_reward_model(case, rng=np.random.default_rng(11), max_fit_rows=max_fit_rows, **FAST[case])
        return model.fit(data.users, data.embeddings, data.clicks)

    full = fitted_model(None)
    # At the bound nothing is sampled: the very same fit.
    np.testing.assert_array_equal(
        fitted_model(n).predict(data.eval_users, data.candidates), full.predict(data.eval_users, data.candidates)
    )
    sampled = fitted_model(n // 3)
    truth = data.true_probs.ravel()
    quality = {}
    for label, model in (("full", full), ("sampled", sampled)):
        predicted = model.predict(data.eval_users, data.candidates).ravel()
        quality[label] = (float(spearmanr(predicted, truth)[0]), float(predicted.mean() / truth.mean()))
    # The sampled fit ranks unseen candidates about as well and stays calibrated in the mean.
    assert quality["sampled"][0] > quality["full"][0] - 0.1, quality
    assert abs(quality["sampled"][1] - 1.0) < abs(quality["full"][1] - 1.0) + 0.1, quality
    assert not np.array_equal(
        sampled.predict(data.eval_users[:5], data.candidates), full.predict(data.eval_users[:5], data.candidates)
    )
