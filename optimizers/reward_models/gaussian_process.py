"""A scalable GP classifier: random Fourier features of a product RBF kernel + Laplace-approximate Bayesian LR.

The latent click logit is ``f(u, e) = b0 + psi(u)^T W chi(e)``, where ``psi`` (D_u) and ``chi`` (D_e) are
random Fourier features (Rahimi & Recht, 2007) of RBF kernels on standardised users and on projected
embeddings. ``vec(W)`` has the prior N(0, prior_variance * I), so ``f`` is approximately a GP with the
product kernel ``prior_variance * k_u(u, u') * k_e(e, e')``; ``b0`` is the logit of the (weighted) click rate,
so far from the data predictions fall back to the base rate with the prior's width. The posterior of ``W``
is the Laplace approximation (MAP by Newton's method, covariance = inverse Hessian at the MAP).

Everything stays batched through the Kronecker structure of the features:

- Hessian: ``sum_i s_i (psi_i psi_i^T) ⊗ (chi_i chi_i^T)`` grouped by distinct served action.
- Predictive variance of every user x action pair: ``var_ij = psi_i^T [Sigma contracted with chi_j chi_j^T]
  psi_i``, computed as two matrix products ``(n, D_u^2) @ (D_u^2, D_e^2) @ (D_e^2, m)``.
- Probabilities: mean and std of ``sigmoid(f)`` under ``f ~ N(mu, var)`` by Gauss-Hermite quadrature.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_choice, check_int, check_real
from optimizers.reward_models._base import RewardModelBase, check_common_config
from optimizers.reward_models._features import sigmoid, user_chunks

__all__ = ["GaussianProcessConfig", "GaussianProcessRewardModel"]

_ROW_CHUNK = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class GaussianProcessConfig:
    """Hyperparameters of the random-Fourier-feature GP reward model.

    Attributes:
        n_user_features: Random Fourier features of the user kernel (D_u).
        n_action_features: Random Fourier features of the action kernel (D_e); W has D_u * D_e entries.
        lengthscale_user: RBF lengthscale on standardised users; ``None`` = median pairwise distance.
        lengthscale_action: RBF lengthscale on projected embeddings; ``None`` = median pairwise distance of
            the distinct fitting embeddings.
        prior_variance: Prior variance of each weight (the kernel's amplitude on the logit scale); > 0.
        max_newton_iter: Iteration cap of Newton's method for the MAP.
        tol: Stop when the largest Newton step is below this; > 0.
        quadrature_points: Gauss-Hermite nodes for the predictive mean and std of the probability.
        embedding_components: Requested PCA components of the action embeddings (capped at the rank).
        max_pairs_per_chunk: Bound on user x action pairs per scoring chunk (memory).
    """

    n_user_features: int = 32
    n_action_features: int = 32
    lengthscale_user: float | None = None
    lengthscale_action: float | None = None
    prior_variance: float = 4.0
    max_newton_iter: int = 50
    tol: float = 1e-6
    quadrature_points: int = 12
    embedding_components: int = 16
    max_pairs_per_chunk: int = 2**18

    def __post_init__(self) -> None:
        check_int("GaussianProcessConfig.n_user_features", self.n_user_features, low=1)
        check_int("GaussianProcessConfig.n_action_features", self.n_action_features, low=1)
        for field in ("lengthscale_user", "lengthscale_action"):
            value = getattr(self, field)
            if value is not None:
                check_real(f"GaussianProcessConfig.{field}", value, low=0.0, low_open=True)
        check_real("GaussianProcessConfig.prior_variance", self.prior_variance, low=0.0, low_open=True)
        check_int("GaussianProcessConfig.max_newton_iter", self.max_newton_iter, low=1)
        check_real("GaussianProcessConfig.tol", self.tol, low=0.0, low_open=True)
        check_int("GaussianProcessConfig.quadrature_points", self.quadrature_points, low=2)
        check_int("GaussianProcessConfig.max_pairs_per_chunk", self.max_pairs_per_chunk, low=1)
        check_common_config(self)


def _median_distance(points: NDArray[np.float64]) -> float:
    """Median pairwise Euclidean distance (1.0 when degenerate)."""
    sq = np.sum(points**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * points @ points.T, 0.0)
    upper = np.sqrt(d2[np.triu_indices(points.shape[0], k=1)])
    med = float(np.median(upper)) if upper.size else 0.0
    return med if med > 1e-12 else 1.0


def _rff(points: NDArray[np.float64], freqs: NDArray[np.float64], phases: NDArray[np.float64]) -> NDArray[np.float64]:
    """Random Fourier features sqrt(2/D) cos(x W + b), (n, d) -> (n, D)."""
    return np.sqrt(2.0 / freqs.shape[1]) * np.cos(points @ freqs + phases)


class GaussianProcessRewardModel(RewardModelBase):
    """GP classification with random Fourier features and a Laplace posterior; has ``predict_with_uncertainty``.

    Fitted attributes: ``weights_`` (D_u, D_e) MAP, ``cov_`` (D_u*D_e, D_u*D_e) posterior covariance,
    ``offset_`` (b0), ``lengthscale_user_``, ``lengthscale_action_``, the random features' frequencies and
    phases, and ``n_iter_``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> users, embeddings = rng.random((400, 3)), rng.standard_normal((400, 5)).astype(np.float32)
        >>> clicks = (rng.random(400) < 0.3).astype(float)
        >>> model = GaussianProcessRewardModel(rng=rng, n_user_features=8, n_action_features=8)
        >>> mean, std = model.fit(users, embeddings, clicks).predict_with_uncertainty(users[:4], embeddings[:3])
        >>> mean.shape, bool(np.all(std > 0))
        ((4, 3), True)
    """

    name = "gaussian_process"
    config_class = GaussianProcessConfig
    config: GaussianProcessConfig

    def _fit(
        self,
        users_z: NDArray[np.float64],
        actions_z: NDArray[np.float64],
        clicks: NDArray[np.float64],
        weights: NDArray[np.float64],
        rng: np.random.Generator,
    ) -> None:
        cfg = self.config
        d_u, d_e = cfg.n_user_features, cfg.n_action_features
        distinct, inverse = np.unique(actions_z, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        sample = users_z[rng.choice(users_z.shape[0], size=min(1000, users_z.shape[0]), replace=False)]
        self.lengthscale_user_ = cfg.lengthscale_user or _median_distance(sample)
        reference = distinct
        if self.reference_embeddings is not None:
            reference = np.unique(np.vstack([distinct, self.features_.actions(self.reference_embeddings)]), axis=0)
        self.lengthscale_action_ = cfg.lengthscale_action or _median_distance(reference[:2000])
        self.user_freqs_ = rng.standard_normal((users_z.shape[1], d_u)) / self.lengthscale_user_
        self.user_phases_ = rng.uniform(0.0, 2.0 * np.pi, d_u)
        self.action_freqs_ = rng.standard_normal((actions_z.shape[1], d_e)) / self.lengthscale_action_
        self.action_phases_ = rng.uniform(0.0, 2.0 * np.pi, d_e)
        rate = float(np.clip(np.average(clicks, weights=weights), 1e-4, 1 - 1e-4))
        self.offset_ = float(np.log(rate / (1.0 - rate)))

        psi = _rff(users_z, self.user_freqs_, self.user_phases_)  # (n, D_u)
        chi_distinct = _rff(distinct, self.action_freqs_, self.action_phases_)  # (K, D_e)
        chi = chi_distinct[inverse]  # (n, D_e)
        order = np.argsort(inverse, kind="stable")
        precision = 1.0 / cfg.prior_variance

        def objective(w_mat: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            logits = self.offset_ + np.einsum("ij,ij->i", psi @ w_mat, chi)
            nll = np.sum(weights * (np.logaddexp(0.0, logits) - clicks * logits))
            return float(nll + 0.5 * precision * np.sum(w_mat**2)), logits

        w_mat = np.zeros((d_u, d_e))
        value, logits = objective(w_mat)
        self.n_iter_ = 0
        for it in range(1, cfg.max_newton_iter + 1):
            probs = sigmoid(logits)
            grad = (psi * (weights * (probs - clicks))[:, None]).T @ chi + precision * w_mat
            hess = self._hessian(psi, chi_distinct, inverse, order, weights * probs * (1.0 - probs))
            hess[np.diag_indices_from(hess)] += precision
            step = np.linalg.solve(hess, grad.reshape(-1)).reshape(d_u, d_e)
            scale = 1.0
            while True:  # backtracking keeps Newton monotone on the convex objective
                candidate = w_mat - scale * step
                new_value, new_logits = objective(candidate)
                if new_value <= value + 1e-12 or scale < 1e-4:
                    break
                scale *= 0.5
            w_mat, value, logits = candidate, new_value, new_logits
            self.n_iter_ = it
            if np.max(np.abs(scale * step)) < cfg.tol:
                break
        probs = sigmoid(logits)
        hess = self._hessian(psi, chi_distinct, inverse, order, weights * probs * (1.0 - probs))
        hess[np.diag_indices_from(hess)] += precision
        cov = np.linalg.inv(hess)
        self.weights_ = w_mat
        self.cov_ = 0.5 * (cov + cov.T)
        self._prepare_cov()

    @staticmethod
    def _hessian(
        psi: NDArray[np.float64],
        chi_distinct: NDArray[np.float64],
        inverse: NDArray[np.int64],
        order: NDArray[np.int64],
        curvature: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """sum_i s_i (psi_i psi_i^T) ⊗ (chi_g(i) chi_g(i)^T), in row chunks grouped by distinct action."""
        d_u, d_e = psi.shape[1], chi_distinct.shape[1]
        chi_outer = (chi_distinct[:, :, None] * chi_distinct[:, None, :]).reshape(-1, d_e * d_e)  # (K, D_e^2)
        acc = np.zeros((d_u * d_u, d_e * d_e))
        for start in range(0, order.shape[0], _ROW_CHUNK):
            rows = order[start : start + _ROW_CHUNK]
            groups = inverse[rows]
            scaled = psi[rows] * np.sqrt(curvature[rows])[:, None]
            outer = (scaled[:, :, None] * scaled[:, None, :]).reshape(-1, d_u * d_u)
            starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])  # rows are sorted by group
            per_group = np.add.reduceat(outer, starts, axis=0)  # (n_groups_in_chunk, D_u^2)
            acc += per_group.T @ chi_outer[groups[starts]]
        # acc[(a, c), (b, d)] -> H[(a, b), (c, d)] with vec(W) row-major.
        return acc.reshape(d_u, d_u, d_e, d_e).transpose(0, 2, 1, 3).reshape(d_u * d_e, d_u * d_e)

    def _prepare_cov(self) -> None:
        d_u, d_e = self.weights_.shape
        # Sigma[(a, b), (c, d)] -> C[(a, c), (b, d)], so var_ij = (psi_i ⊗ psi_i) C (chi_j ⊗ chi_j).
        self._cov_kron = self.cov_.reshape(d_u, d_e, d_u, d_e).transpose(0, 2, 1, 3).reshape(d_u * d_u, d_e * d_e)

    def _latent_moments(
        self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Posterior mean and variance of the logit, each (n_users, n_actions)."""
        psi = _rff(users_z, self.user_freqs_, self.user_phases_)
        chi = _rff(actions_z, self.action_freqs_, self.action_phases_)
        mean = self.offset_ + (psi @ self.weights_) @ chi.T
        psi_outer = (psi[:, :, None] * psi[:, None, :]).reshape(psi.shape[0], -1)
        chi_outer = (chi[:, :, None] * chi[:, None, :]).reshape(chi.shape[0], -1)
        var = (psi_outer @ self._cov_kron) @ chi_outer.T
        return mean, np.maximum(var, 0.0)

    def predict_with_uncertainty(
        self, users: NDArray[np.float64], embeddings: NDArray[np.float32], *, space: str = "probability"
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Posterior mean and standard deviation of the click probability (or of the latent logit).

        Args:
            users: User features, shape (n_users, d_user).
            embeddings: Action embeddings, shape (n_actions, d_embed).
            space: ``"probability"`` (default) or ``"logit"``.

        Returns:
            ``(mean, std)``, each float64 of shape (n_users, n_actions).
        """
        check_choice("space", space, ("probability", "logit"))
        users_z, actions_z = self._check_predict_inputs(users, embeddings)
        if space == "logit":
            mean, var = self._latent_moments(users_z, actions_z)
            return mean, np.sqrt(var)
        return self._prob_moments(users_z, actions_z)

    def _prob_moments(
        self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        nodes, node_weights = np.polynomial.hermite.hermgauss(self.config.quadrature_points)
        node_weights = node_weights / np.sqrt(np.pi)
        n_users, n_actions = users_z.shape[0], actions_z.shape[0]
        mean = np.zeros((n_users, n_actions))
        std = np.zeros((n_users, n_actions))
        if not mean.size:
            return mean, std
        budget = max(1, self.config.max_pairs_per_chunk // self.config.quadrature_points)
        for chunk in user_chunks(n_users, n_actions, budget):
            mu, var = self._latent_moments(users_z[chunk], actions_z)
            probs = sigmoid(mu[..., None] + np.sqrt(2.0 * var)[..., None] * nodes)  # (c, m, Q)
            first = probs @ node_weights
            second = (probs**2) @ node_weights
            mean[chunk] = first
            std[chunk] = np.sqrt(np.maximum(second - first**2, 0.0))
        return np.clip(mean, 0.0, 1.0), std

    def _predict_z(self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64]) -> NDArray[np.float64]:
        return self._prob_moments(users_z, actions_z)[0]

    _ARRAYS = ("weights_", "cov_", "user_freqs_", "user_phases_", "action_freqs_", "action_phases_")

    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        state = {
            "offset": self.offset_,
            "lengthscale_user": self.lengthscale_user_,
            "lengthscale_action": self.lengthscale_action_,
            "n_iter": self.n_iter_,
        }
        return state, {key.rstrip("_"): getattr(self, key) for key in self._ARRAYS}

    def _restore(self, state: dict[str, Any], arrays: dict[str, NDArray[Any]], folder: Path) -> None:
        for key in self._ARRAYS:
            setattr(self, key, np.asarray(arrays[key.rstrip("_")], dtype=np.float64))
        self.offset_ = float(state["offset"])
        self.lengthscale_user_ = float(state["lengthscale_user"])
        self.lengthscale_action_ = float(state["lengthscale_action"])
        self.n_iter_ = int(state["n_iter"])
        self._prepare_cov()
