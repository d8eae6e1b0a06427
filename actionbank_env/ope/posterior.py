"""The direct method under a Bayesian reward model: a policy value whose interval integrates the model's error.

A plain direct-method interval (a bootstrap or t-interval over users with the model held fixed) only measures
how the value varies across users; the model's own error, which dominates it, is left out, so it covers the
truth in almost no case. A Bayesian reward model states its error as a posterior over whole click functions f.
Each posterior draw f_s gives one value of the target policy on the logged users,

    V_s = (1/n) sum_i sum_a pi(a | x_i) sigmoid(f_s(x_i, a)),

so the draws V_1..V_S are the posterior of the policy value given the log, conditional on the logged users
(the same users the truth is computed on). The estimate is the posterior mean of V (the model's moderated
prediction averaged under pi) and the interval the equal-tailed credible interval of the draws.

The model needs ``predict(users, embeddings) -> (n, K)`` (the posterior mean click probability) and
``sample_logits(users, embeddings, n_samples, rng=) -> (S, n, K)`` (whole functions from the posterior), as
:class:`optimizers.reward_models.bilinear.BayesianBilinearRewardModel` has.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_array, check_int, check_real
from actionbank_env.errors import ConfigError
from actionbank_env.ope.data import BanditData, TargetPolicy
from actionbank_env.ope.estimators import Estimate, OPEConfig, estimate_all

__all__ = [
    "BAYES_ESTIMATORS",
    "PosteriorRewardModel",
    "posterior_value_draws",
    "posterior_dm",
    "calibrated_posterior_dm",
    "estimate_with_posterior",
]

#: Estimators of :func:`estimate_with_posterior`, in table order: the posterior direct method, its
#: level-calibrated form, and the DR family with the Bayesian model as the baseline.
BAYES_ESTIMATORS: tuple[str, ...] = ("bayes_dm", "bayes_cdm", "bayes_dr", "bayes_switch_dr", "bayes_dr_os", "bayes_mdr")


class PosteriorRewardModel(Protocol):
    """A fitted reward model that can draw whole click functions from its posterior."""

    def predict(self, users: NDArray[np.float64], embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
        """Posterior mean click probability, shape (n_users, n_actions)."""
        ...

    def sample_logits(
        self, users: NDArray[np.float64], embeddings: NDArray[np.float32], n_samples: int, *, rng: np.random.Generator
    ) -> NDArray[np.float64]:
        """Logits of ``n_samples`` posterior draws, shape (n_samples, n_users, n_actions)."""
        ...


def _draw_logits(
    model: Any, users: NDArray[np.float64], embeddings: NDArray[np.float32], n_samples: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Posterior logit draws (S, n, K) from the model's ``sample_logits``."""
    return np.asarray(model.sample_logits(users, embeddings, n_samples, rng=rng), dtype=np.float64)


def _check_model(model: Any) -> None:
    missing = [m for m in ("predict", "sample_logits") if not callable(getattr(model, m, None))]
    if missing:
        raise ConfigError(
            f"the posterior direct method needs a Bayesian reward model with predict and sample_logits; "
            f"{type(model).__name__} has no {', '.join(missing)} (use e.g. 'bayesian_bilinear')."
        )


def posterior_value_draws(
    model: PosteriorRewardModel,
    users: NDArray[np.float64],
    policy: TargetPolicy,
    *,
    n_samples: int = 1000,
    rng: np.random.Generator,
    max_cells: int = 2**22,
) -> NDArray[np.float64]:
    """Posterior draws of the policy's value on ``users``: ``(1/n) sum_i sum_a pi(a|x_i) sigmoid(f_s(x_i, a))``.

    Only the target actions some user can get are scored; draws are taken in chunks of at most ``max_cells``
    (sample x user x action) logits.

    Args:
        model: A fitted Bayesian reward model (see :class:`PosteriorRewardModel`).
        users: The users the policy serves (the logged users), shape (n, d_user).
        policy: The target policy on those users.
        n_samples: Posterior draws.
        rng: Draws the functions.
        max_cells: Memory bound of one chunk.

    Returns:
        The value draws, shape (n_samples,).

    Raises:
        ConfigError: If the model cannot draw from a posterior, or the policy was evaluated on other users.
    """
    _check_model(model)
    n_samples = check_int("posterior n_samples", n_samples, low=1)
    max_cells = check_int("posterior max_cells", max_cells, low=1)
    users = check_array("posterior users", users, ndim=2)
    if policy.probs.shape[0] != users.shape[0]:
        raise ConfigError(
            f"TargetPolicy.probs must have one row per user ({users.shape[0]}), got {policy.probs.shape[0]}."
        )
    used = np.flatnonzero(policy.probs.sum(axis=0) > 0.0)
    probs = policy.probs[:, used]
    embeddings = np.asarray(policy.embeddings[used], dtype=np.float32)
    n = users.shape[0]
    chunk = max(1, max_cells // max(1, n * used.size))
    values = np.empty(n_samples)
    for start in range(0, n_samples, chunk):
        stop = min(start + chunk, n_samples)
        logits = _draw_logits(model, users, embeddings, stop - start, rng)
        clicks = 0.5 * (1.0 + np.tanh(0.5 * logits))  # sigmoid without overflow warnings
        values[start:stop] = np.einsum("sua,ua->s", clicks, probs) / n
    return values


def posterior_dm(
    model: PosteriorRewardModel,
    users: NDArray[np.float64],
    policy: TargetPolicy,
    *,
    level: float = 0.95,
    n_samples: int = 1000,
    rng: np.random.Generator,
    name: str = "posterior_dm",
) -> Estimate:
    """The direct method with a credible interval that integrates the reward model's posterior.

    Value: ``mean_i sum_a pi(a|x_i) predict(x_i, a)`` (the posterior mean). Interval: the equal-tailed ``level``
    interval of :func:`posterior_value_draws`. ``std_error`` is the draws' standard deviation.

    Example:
        >>> class Known:  # a "posterior" concentrated on one function: the interval shrinks to the value
        ...     def predict(self, users, embeddings):
        ...         return np.full((len(users), len(embeddings)), 0.5)
        ...     def sample_logits(self, users, embeddings, n_samples, *, rng):
        ...         return np.zeros((n_samples, len(users), len(embeddings)))
        >>> pi = TargetPolicy(probs=np.array([[1.0, 0.0]]), embeddings=np.eye(2), action_ids=("A0", "A1"))
        >>> e = posterior_dm(Known(), np.zeros((1, 3)), pi, n_samples=10, rng=np.random.default_rng(0))
        >>> e.value, e.ci_low, e.ci_high
        (0.5, 0.5, 0.5)
    """
    level = check_real("posterior level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    draws = posterior_value_draws(model, users, policy, n_samples=n_samples, rng=rng)
    mean = np.asarray(model.predict(users, np.asarray(policy.embeddings, dtype=np.float32)), dtype=np.float64)
    if mean.shape != policy.probs.shape:
        raise ConfigError(f"reward model predict must return shape {policy.probs.shape}, got {mean.shape}.")
    value = float(np.einsum("ij,ij->i", policy.probs, mean).mean())
    alpha = 1.0 - level
    low, high = np.quantile(draws, [alpha / 2.0, 1.0 - alpha / 2.0])
    diagnostics = {"posterior_sd": float(draws.std(ddof=1)) if draws.size > 1 else 0.0, "n_samples": float(draws.size)}
    return Estimate(name, value, float(low), float(high), diagnostics["posterior_sd"], users.shape[0], diagnostics)


def calibrated_posterior_dm(
    model: PosteriorRewardModel,
    data: BanditData,
    policy: TargetPolicy,
    *,
    level: float = 0.95,
    n_samples: int = 1000,
    rng: np.random.Generator,
    name: str = "calibrated_dm",
) -> Estimate:
    """The direct method of the value *difference* to the logger, anchored on the logged click rate.

    ``V(pi) = V(pi0) + [V(pi) - V(pi0)]`` on the logged users: the logged mean click ``ȳ`` estimates ``V(pi0)``
    without any model (its error is the clicks' own noise, the floor of every estimator that reads them),
    and the model only has to get the difference right, so an error in its level (an intercept off, or the
    upward pull of moderated predictions at low click rates) cancels:

        value = ȳ + (1/n) sum_i [ sum_a pi(a|x_i) q̂(x_i, a) - q̂(x_i, a_i) ].

    The interval adds the two independent parts: the posterior draws of the difference (same functions f_s
    for the target's and the logged actions) and the clicks' noise around their expectation, a normal with
    the variance of the residuals ``y_i - q̂(x_i, a_i)`` over ``n``. Unbiased for ``V(pi)`` when the model's
    difference is; a model that overrates the target's actions against the logged ones biases it.

    Args:
        model: A fitted Bayesian reward model (see :class:`PosteriorRewardModel`).
        data: The log (users, served actions, clicks, logged bank).
        policy: The target policy on the logged users.
        level: Credible level. n_samples: Posterior draws. rng: Draws the functions and the click noise.
        name: A label.

    Returns:
        The estimate; ``std_error`` is the standard deviation of the combined draws.
    """
    _check_model(model)
    level = check_real("posterior level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    n_samples = check_int("posterior n_samples", n_samples, low=2)
    n = data.n_rounds
    if policy.probs.shape[0] != n:
        raise ConfigError(f"TargetPolicy.probs must have one row per logged user ({n}), got {policy.probs.shape[0]}.")
    used = np.flatnonzero(policy.probs.sum(axis=0) > 0.0)
    probs = policy.probs[:, used]
    both = np.vstack([policy.embeddings[used], data.embeddings]).astype(np.float32)
    rows = np.arange(n)
    served = used.size + data.actions
    mean = np.asarray(model.predict(data.users, both), dtype=np.float64)
    residual = data.clicks - mean[rows, served]
    diff = float(np.einsum("ij,ij->i", probs, mean[:, : used.size]).mean() - mean[rows, served].mean())
    value = float(data.clicks.mean()) + diff
    chunk = max(1, 2**22 // max(1, n * both.shape[0]))
    draws = np.empty(n_samples)
    for start in range(0, n_samples, chunk):
        stop = min(start + chunk, n_samples)
        logits = _draw_logits(model, data.users, both, stop - start, rng)
        clicks = 0.5 * (1.0 + np.tanh(0.5 * logits))
        draws[start:stop] = (
            np.einsum("sua,ua->s", clicks[:, :, : used.size], probs) - clicks[:, rows, served].sum(axis=1)
        ) / n
    noise_sd = float(residual.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    total = value + (draws - draws.mean()) + rng.normal(0.0, noise_sd, size=n_samples)
    alpha = 1.0 - level
    low, high = np.quantile(total, [alpha / 2.0, 1.0 - alpha / 2.0])
    diagnostics = {
        "posterior_sd_difference": float(draws.std(ddof=1)),
        "click_noise_sd": noise_sd,
        "model_residual_mean": float(residual.mean()),
    }
    return Estimate(name, value, float(low), float(high), float(total.std(ddof=1)), n, diagnostics)


def estimate_with_posterior(
    model: PosteriorRewardModel,
    data: BanditData,
    policy: TargetPolicy,
    *,
    config: OPEConfig | None = None,
    n_samples: int = 1000,
    rng: np.random.Generator,
) -> dict[str, Estimate]:
    """Every estimator of :data:`BAYES_ESTIMATORS` with one fitted Bayesian reward model.

    - ``bayes_dm``: :func:`posterior_dm` (credible interval over posterior functions);
    - ``bayes_cdm``: :func:`calibrated_posterior_dm` (the model's difference to the logger plus the logged
      click rate);
    - ``bayes_dr``, ``bayes_switch_dr``, ``bayes_dr_os``, ``bayes_mdr``: the DR family of
      :func:`~actionbank_env.ope.estimators.estimate_all` with the model's posterior mean as ``q̂``.

    The model should have been fitted on the log (all rows: its posterior, not cross-fitting, accounts for its
    error). Draws and bootstrap come from ``rng``.

    Returns:
        ``{name: Estimate}`` in :data:`BAYES_ESTIMATORS` order (names carry the ``bayes_`` prefix).
    """
    config = config or OPEConfig()
    _check_model(model)
    dm_rng, cdm_rng, dr_rng = rng.spawn(3)
    out = {
        "bayes_dm": posterior_dm(
            model, data.users, policy, level=config.level, n_samples=n_samples, rng=dm_rng, name="bayes_dm"
        ),
        "bayes_cdm": calibrated_posterior_dm(
            model, data, policy, level=config.level, n_samples=n_samples, rng=cdm_rng, name="bayes_cdm"
        ),
    }
    q_target = np.asarray(model.predict(data.users, np.asarray(policy.embeddings, np.float32)), dtype=np.float64)
    q_logged_all = np.asarray(model.predict(data.users, np.asarray(data.embeddings, np.float32)), dtype=np.float64)
    q_logged = q_logged_all[np.arange(data.n_rounds), data.actions]
    family = estimate_all(
        data,
        policy,
        q_hat_target=q_target,
        q_hat_logged=q_logged,
        config=config,
        estimators=("dr", "switch_dr", "dr_os", "mdr"),
        rng=dr_rng,
    )
    for name, est in family.items():
        out[f"bayes_{name}"] = Estimate(
            f"bayes_{name}", est.value, est.ci_low, est.ci_high, est.std_error, est.n_rounds, est.diagnostics
        )
    return out
