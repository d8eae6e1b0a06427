"""Logistic regression on user, action and user x action features, scored by matrix algebra."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_int, check_real
from optimizers.reward_models._base import RewardModelBase, check_common_config
from optimizers.reward_models._features import pair_features, sigmoid

__all__ = ["LinearConfig", "LinearRewardModel"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LinearConfig:
    """Hyperparameters of the logistic-bilinear reward model.

    Attributes:
        C: Inverse L2 regularisation strength of scikit-learn's LogisticRegression; must be > 0.
        max_iter: Iteration cap of the Newton-Cholesky solver.
        embedding_components: Requested PCA components of the action embeddings (capped at the rank).
    """

    C: float = 1.0
    max_iter: int = 100
    embedding_components: int = 16

    def __post_init__(self) -> None:
        check_real("LinearConfig.C", self.C, low=0.0, low_open=True)
        check_int("LinearConfig.max_iter", self.max_iter, low=1)
        check_common_config(self)


class LinearRewardModel(RewardModelBase):
    """P(click | u, e) = sigmoid(b + u.w_u + e.w_e + u^T W e) on standardised users and PCA'd embeddings.

    Fitted with scikit-learn's ``LogisticRegression`` on the design [u, e, u ⊗ e]; scoring uses the linear
    structure, so no (n_users * n_actions, n_features) design is ever built.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> users, embeddings = rng.random((400, 3)), rng.standard_normal((400, 5)).astype(np.float32)
        >>> clicks = (rng.random(400) < 0.3).astype(float)
        >>> model = LinearRewardModel(rng=rng, C=0.5).fit(users, embeddings, clicks)
        >>> model.predict(users[:4], embeddings[:3]).shape
        (4, 3)
    """

    name = "linear"
    config_class = LinearConfig
    config: LinearConfig

    def _fit(
        self,
        users_z: NDArray[np.float64],
        actions_z: NDArray[np.float64],
        clicks: NDArray[np.float64],
        weights: NDArray[np.float64],
        rng: np.random.Generator,
    ) -> None:
        from sklearn.linear_model import LogisticRegression

        design = pair_features(users_z, actions_z, interactions=True)
        lr = LogisticRegression(C=self.config.C, solver="newton-cholesky", max_iter=self.config.max_iter, tol=1e-8)
        lr.fit(design, clicks.astype(np.int64), sample_weight=weights)
        self.coef_ = np.asarray(lr.coef_[0], dtype=np.float64)
        self.intercept_ = float(lr.intercept_[0])
        self.n_iter_ = int(np.max(lr.n_iter_))

    def decision_function(self, users: NDArray[np.float64], embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
        """Logits of every user x action pair, shape (n_users, n_actions)."""
        users_z, actions_z = self._check_predict_inputs(users, embeddings)
        return self._logits(users_z, actions_z)

    def _logits(self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64]) -> NDArray[np.float64]:
        d_user, r = users_z.shape[1], actions_z.shape[1]
        w_user = self.coef_[:d_user]
        w_action = self.coef_[d_user : d_user + r]
        w_inter = self.coef_[d_user + r :].reshape(d_user, r)
        logits = (users_z @ w_inter) @ actions_z.T
        logits += (users_z @ w_user)[:, None]
        logits += (actions_z @ w_action)[None, :]
        logits += self.intercept_
        return logits

    def _predict_z(self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64]) -> NDArray[np.float64]:
        return sigmoid(self._logits(users_z, actions_z))

    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        return {"intercept": self.intercept_, "n_iter": self.n_iter_}, {"coef": self.coef_}

    def _restore(self, state: dict[str, Any], arrays: dict[str, NDArray[Any]], folder: Path) -> None:
        self.coef_ = np.asarray(arrays["coef"], dtype=np.float64)
        self.intercept_ = float(state["intercept"])
        self.n_iter_ = int(state["n_iter"])
