"""The evaluation-only well-specified reward model: the ground truth's functional form, weights fitted on logs.

``ground_truth.design(users, embeddings)`` gives a family's user basis u(x) and action basis a(e) without its
weights (mixture of experts: gate-weighted user features and the truth's own projection of the embedding;
semantic: trait affinities and concept matches). The logit is then bilinear in them,

    f(x, e) = φ(x)ᵀ M ψ(e),   φ(x) = [1, u(x) / s_u],   ψ(e) = [1, a(e) / s_a],

which the truth is (up to the link's ceiling ``max_utility``). M is fitted on logged clicks by the Bayesian
bilinear model's MAP machinery, with the prior scales of the user, action and interaction blocks chosen by
MacKay's evidence updates (:func:`optimizers.reward_models.bilinear.evidence_sds`). So it knows everything about
the world except what the logs must teach: the weights. It reads the ground truth, so no real designer may use
it; :class:`optimizers.baselines.ReferenceDesigner` uses it to show how much a designer could learn from the same
logs (the "learnability ceiling" beside a designer's result), the full-simulation counterpart of the world card's
learnability check and of ``benchmarks/designer_lab.py``'s ``reference`` variant.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_array
from actionbank_env.errors import ConfigError
from optimizers.reward_models._base import NotFittedError
from optimizers.reward_models._features import distinct_rows, sigmoid
from optimizers.reward_models.bilinear import _Design, evidence_sds

__all__ = ["WellSpecifiedRewardModel"]

#: Starting prior sds of the evidence updates (the intercept's stays fixed and vague).
START_SDS = {"intercept": 10.0, "user": 1.0, "action": 0.5, "interaction": 0.5}


class WellSpecifiedRewardModel:
    """Logistic bilinear model on the ground truth's own bases (evaluation only; see the module docstring).

    Implements :class:`actionbank_env.protocols.RewardModel` (``fit``, ``fit_indexed``, ``predict``).

    Args:
        ground_truth: The world's ground truth; its family must have a ``design`` method (mixture of experts and
            semantic do, the GMM does not).
        reference_embeddings: Unlabelled texts (e.g. the candidate pool) whose action-basis norm scales ψ; default:
            the served texts.

    Raises:
        ConfigError: If the ground truth has no ``design``.
    """

    def __init__(self, ground_truth: Any, *, reference_embeddings: NDArray[np.floating[Any]] | None = None) -> None:
        if not callable(getattr(ground_truth, "design", None)):
            raise ConfigError(
                f"WellSpecifiedRewardModel needs a ground truth with a linear design (mixture_of_experts or semantic), "
                f"got {getattr(ground_truth, 'name', type(ground_truth).__name__)!r}, which has none."
            )
        self.ground_truth = ground_truth
        self.reference_embeddings = (
            None
            if reference_embeddings is None
            else check_array("WellSpecifiedRewardModel reference_embeddings", reference_embeddings, ndim=2)
        )

    def __repr__(self) -> str:
        return f"WellSpecifiedRewardModel(ground_truth={getattr(self.ground_truth, 'name', '?')!r})"

    def fit(
        self,
        users: NDArray[np.float64],
        embeddings: NDArray[np.float32],
        clicks: NDArray[np.float64],
        sample_weight: NDArray[np.float64] | None = None,
    ) -> WellSpecifiedRewardModel:
        """Fit on logged rows: users (n, d_user), the served action's embedding per row (n, d_embed), clicks (n,)."""
        emb = check_array("WellSpecifiedRewardModel.fit embeddings", embeddings, ndim=2)
        table, index = distinct_rows(emb)
        return self.fit_indexed(users, table, index, clicks, sample_weight)

    def fit_indexed(
        self,
        users: NDArray[np.float64],
        action_embeddings: NDArray[np.floating[Any]],
        action_index: NDArray[np.int64],
        clicks: NDArray[np.float64],
        sample_weight: NDArray[np.float64] | None = None,
    ) -> WellSpecifiedRewardModel:
        """Fit on rows given as an embedding table (k, d_embed) and each row's index into it (n,)."""
        users = check_array("WellSpecifiedRewardModel.fit users", users, ndim=2)
        table = check_array("WellSpecifiedRewardModel.fit action_embeddings", action_embeddings, ndim=2)
        n = users.shape[0]
        index = check_array("WellSpecifiedRewardModel.fit action_index", action_index, shape=(n,), dtype=np.int64)
        y = check_array("WellSpecifiedRewardModel.fit clicks", clicks, shape=(n,), low=0.0, high=1.0)
        weights = (
            np.ones(n)
            if sample_weight is None
            else check_array("WellSpecifiedRewardModel.fit sample_weight", sample_weight, shape=(n,), low=0.0)
        )
        if n == 0 or y.min() == y.max():
            raise ValueError("WellSpecifiedRewardModel.fit needs at least one click and one non-click.")
        if index.min() < 0 or index.max() >= table.shape[0]:
            raise ValueError(
                f"WellSpecifiedRewardModel.fit action_index must lie in [0, {table.shape[0]}), "
                f"got [{index.min()}, {index.max()}]."
            )
        used, action = np.unique(index, return_inverse=True)
        user_basis, action_basis = self.ground_truth.design(users, table[used])
        self.user_scale_ = np.asarray(user_basis, dtype=np.float64).std(axis=0) + 1e-9
        scale_basis = (
            action_basis
            if self.reference_embeddings is None
            else self.ground_truth.design(users[:1], self.reference_embeddings)[1]
        )
        self.action_scale_ = float(np.sqrt(np.mean(np.sum(np.square(scale_basis), axis=1)))) + 1e-12
        phi, psi = self._phi(user_basis), self._psi(action_basis)
        design = _Design(phi, psi, action.reshape(-1), y.astype(np.float64), weights)
        rate = float(np.clip(weights @ y / weights.sum(), 1e-6, 1 - 1e-6))
        init = np.zeros((phi.shape[1], psi.shape[1]))
        init[0, 0] = np.log(rate / (1.0 - rate))
        self.prior_sds_, self.log_evidence_, self.coef_ = evidence_sds(
            design, dict(START_SDS), init, blocks=("user", "action", "interaction")
        )
        return self

    def _phi(self, user_basis: NDArray[np.float64]) -> NDArray[np.float64]:
        ub = np.asarray(user_basis, dtype=np.float64) / self.user_scale_
        return np.hstack([np.ones((ub.shape[0], 1)), ub])

    def _psi(self, action_basis: NDArray[np.float64]) -> NDArray[np.float64]:
        ab = np.asarray(action_basis, dtype=np.float64) / self.action_scale_
        return np.hstack([np.ones((ab.shape[0], 1)), ab])

    def decision_function(
        self, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]
    ) -> NDArray[np.float64]:
        """Logits at the MAP, users (n, d_user) x embeddings (m, d_embed) -> (n, m)."""
        if not hasattr(self, "coef_"):
            raise NotFittedError(
                "This WellSpecifiedRewardModel is not fitted yet; call fit(users, embeddings, clicks) first."
            )
        user_basis, action_basis = self.ground_truth.design(users, embeddings)
        out: NDArray[np.float64] = (self._phi(user_basis) @ self.coef_) @ self._psi(action_basis).T
        return out

    def predict(self, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """Click probabilities at the MAP (sigmoid of :meth:`decision_function`), shape (n_users, n_actions)."""
        return sigmoid(self.decision_function(users, embeddings))
