"""LinUCB with disjoint or hybrid linear models (Li, Chu, Langford and Schapire, 2010).

"A Contextual-Bandit Approach to Personalized News Article Recommendation", WWW 2010, Algorithms 1 and 2.

Both modes keep stacked statistics and score every user against every action with two matrix products:
the mean ``x @ phi.T`` and the variance ``vec(x x^T) @ P.T``, where ``P_a`` is the (d, d) matrix of the
quadratic form ``x^T P_a x`` that gives the width of the confidence interval of action ``a``:

- disjoint: ``phi_a = theta_a = A_a^{-1} b_a`` and ``P_a = A_a^{-1}``;
- hybrid: with ``z = vec(x (x) e_a)`` linear in ``x`` (``z = E_a x``), Li et al.'s four-term width collapses to
  ``x^T (G_a^T A0^{-1} G_a + A_a^{-1}) x`` with ``G_a = E_a - (A_a^{-1} B_a)^T``, and the mean
  ``z^T beta + x^T theta_a`` to ``x^T (E_a^T beta + theta_a)``. ``P`` is recomputed (one GEMM) only after an
  update, so scoring a batch costs the same as in the disjoint mode.

Here ``x = [user features, 1]`` and ``e_a = [PCA(embedding_a), 1]``; the PCA is fitted once on the world's
reference embeddings, so a new action's ``e_a`` is meaningful and the hybrid model's shared coefficients
``beta`` transfer what was learned to actions never served.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_bool, check_choice, check_int, check_prob, check_real
from actionbank_env.core.actions import ActionBank
from actionbank_env.errors import ConfigError
from actionbank_env.protocols import AgentContext, Decision

from ._common import check_feedback, check_users, make_decision, make_projection, require_bank, resolve_config

__all__ = ["LinUCBConfig", "LinUCBAgent"]

logger = logging.getLogger(__name__)

#: Relative gap under which two scores are treated as tied (see :func:`choose_actions`).
TIE_TOLERANCE = 1e-12


@dataclass(frozen=True, slots=True, kw_only=True)
class LinUCBConfig:
    """Hyperparameters of LinUCB (Li et al., 2010).

    Attributes:
        mode: ``"disjoint"`` (one ridge model per action over [x, 1]) or ``"hybrid"`` (Algorithm 2: shared
            coefficients over ``vec(x (x) e_a)`` plus per-action terms over [x, 1]).
        alpha: Width of the confidence bonus; 0 gives greedy ridge regression.
        l2: Ridge penalty of every model (``A = l2 * I`` at the start); must be > 0.
        l2_action: Hybrid mode only: ridge penalty of the per-action terms (``A_a = l2_action * I``);
            ``None`` uses ``l2``. A larger value makes a new action lean on the shared, embedding-based
            part instead of exploring its own coefficients from scratch.
        use_pca: Reduce action embeddings by PCA before the hybrid model's outer product.
        pca_components: Number of PCA components (clipped to what the reference sample supports).
        exploration: ``"none"`` (argmax, random tie-break), ``"epsilon"`` (uniform with probability
            ``epsilon``) or ``"softmax"`` (sample from softmax(score / temperature)).
        epsilon: Exploration probability of ``exploration="epsilon"``.
        temperature: Softmax temperature of ``exploration="softmax"``; must be > 0.

    Example:
        >>> LinUCBConfig(alpha=0.5).mode
        'disjoint'
    """

    mode: str = "disjoint"
    alpha: float = 1.0
    l2: float = 1.0
    l2_action: float | None = None
    use_pca: bool = True
    pca_components: int = 16
    exploration: str = "none"
    epsilon: float = 0.0
    temperature: float = 0.1

    def __post_init__(self) -> None:
        check_choice("LinUCBConfig.mode", self.mode, ("disjoint", "hybrid"))
        check_real("LinUCBConfig.alpha", self.alpha, low=0.0)
        check_real("LinUCBConfig.l2", self.l2, low=0.0, low_open=True)
        if self.l2_action is not None:
            check_real("LinUCBConfig.l2_action", self.l2_action, low=0.0, low_open=True)
            if self.mode != "hybrid":
                raise ConfigError(
                    f"LinUCBConfig.l2_action={self.l2_action} only applies to mode='hybrid', got mode={self.mode!r}."
                )
        check_bool("LinUCBConfig.use_pca", self.use_pca)
        check_int("LinUCBConfig.pca_components", self.pca_components, low=1)
        check_choice("LinUCBConfig.exploration", self.exploration, ("none", "epsilon", "softmax"))
        check_prob("LinUCBConfig.epsilon", self.epsilon)
        check_real("LinUCBConfig.temperature", self.temperature, low=0.0, low_open=True)
        if self.epsilon > 0.0 and self.exploration != "epsilon":
            raise ConfigError(
                f"LinUCBConfig.epsilon={self.epsilon} has no effect with exploration={self.exploration!r}; "
                "set exploration='epsilon' or epsilon=0.0."
            )


def choose_actions(
    scores: NDArray[np.float64], exploration: str, epsilon: float, temperature: float, rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Pick one action per row of ``scores`` and return its propensity under the policy.

    Random draws, in this order (so batch size 1 replays a sequential agent exactly):

    - ``"none"``/``"epsilon"``: one ``rng.random(n_tied_rows)`` for the rows whose maximum is tied (the
      ``floor(u * n_ties)``-th tied index is taken); propensity ``1 / n_ties``. Scores within
      ``TIE_TOLERANCE * max(|max|, 1)`` of the row maximum count as tied: BLAS may round identical columns
      (e.g. never-served actions) differently in the last bit.
    - ``"epsilon"`` then draws ``rng.random(B)``; rows below ``epsilon`` get ``rng.integers(0, K, n_explore)``;
      propensity ``(1 - epsilon) * [a tied] / n_ties + epsilon / K``.
    - ``"softmax"``: ``rng.random(B)`` inverts the CDF of softmax(scores / temperature) per row.

    Args:
        scores: Scores, shape (B, K).
        exploration: ``"none"``, ``"epsilon"`` or ``"softmax"``.
        epsilon: Exploration probability (``"epsilon"`` only).
        temperature: Softmax temperature (``"softmax"`` only).
        rng: Source of randomness.

    Returns:
        Chosen indices (B,) int64 and their propensities (B,) float64.

    Example:
        >>> acts, props = choose_actions(np.array([[1.0, 3.0, 3.0]]), "none", 0.0, 1.0, np.random.default_rng(0))
        >>> int(acts[0]) in (1, 2), props.tolist()
        (True, [0.5])
    """
    n_rows, n_actions = scores.shape
    rows = np.arange(n_rows)
    if exploration == "softmax":
        logits = (scores - scores.max(axis=1, keepdims=True)) / temperature
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        cum = np.cumsum(probs, axis=1)
        u = rng.random(n_rows)
        actions = np.minimum(np.sum(cum < u[:, None] * cum[:, -1:], axis=1), n_actions - 1).astype(np.int64)
        return actions, probs[rows, actions]
    best = scores.max(axis=1, keepdims=True)
    ties = scores >= best - TIE_TOLERANCE * np.maximum(np.abs(best), 1.0)
    n_ties = ties.sum(axis=1)
    actions = ties.argmax(axis=1).astype(np.int64)
    tied_rows = np.flatnonzero(n_ties > 1)
    if tied_rows.size:
        picks = np.floor(rng.random(tied_rows.size) * n_ties[tied_rows])
        actions[tied_rows] = np.argmax(np.cumsum(ties[tied_rows], axis=1) > picks[:, None], axis=1)
    if exploration == "epsilon":
        explore = rng.random(n_rows) < epsilon
        n_explore = int(explore.sum())
        if n_explore:
            actions[explore] = rng.integers(0, n_actions, size=n_explore)
        return actions, (1.0 - epsilon) * ties[rows, actions] / n_ties + epsilon / n_actions
    return actions, 1.0 / n_ties


class LinUCBAgent:
    """LinUCB (Li et al., 2010): upper-confidence-bound targeting with ridge models, disjoint or hybrid.

    Scores are ``x^T phi_a + alpha * sqrt(x^T P_a x)`` (see the module docstring), computed for a whole batch
    with two matrix products. Ties are broken at random from the agent's ``rng``.

    Mini-batches: ``act`` scores all B users with the statistics as they are (no update inside a batch);
    ``update`` with B = 1 applies one Sherman-Morrison step to ``A_a^{-1}`` (no inversion). With B > 1 it adds
    the grouped sufficient statistics ``sum x x^T`` and ``sum r x`` of each touched action with one product
    of the batch's one-hot matrix, and refreshes ``A_a^{-1}`` of the touched actions with one batched
    inversion of shape (n_touched, d, d): that equals the B rank-one steps up to rounding and also clears the
    drift that long runs of Sherman-Morrison steps accumulate. The hybrid mode applies Li et al.'s A0/b0
    update per touched action; the per-row terms telescope, so the grouped update is the sequential one.

    Args:
        context: The world's description (d_user, reference embeddings for the PCA).
        rng: The agent's only source of randomness (tie-breaks, exploration).
        config: A :class:`LinUCBConfig`; or pass its fields as keyword arguments.

    Example:
        >>> from actionbank_env.core.actions import Action, ActionBank
        >>> ref = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
        >>> ctx = AgentContext(d_user=2, d_embed=4, feature_names=("a", "b"), reference_embeddings=ref)
        >>> agent = LinUCBAgent(ctx, rng=np.random.default_rng(0), alpha=0.5)
        >>> agent.set_bank(ActionBank([Action(f"A{i}", f"t{i}", ref[i]) for i in range(3)]))
        >>> decision = agent.act(np.full((4, 2), 0.5))
        >>> decision.actions.shape, agent.update(np.full((4, 2), 0.5), decision.actions, np.ones(4))
        ((4,), {})
    """

    def __init__(
        self,
        context: AgentContext,
        *,
        rng: np.random.Generator,
        config: LinUCBConfig | None = None,
        **hyperparameters: Any,
    ) -> None:
        self.config = resolve_config(LinUCBConfig, config, hyperparameters, "LinUCBAgent")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"LinUCBAgent rng must be a numpy Generator, got {type(rng).__name__}.")
        self.context = context
        self._rng = rng
        self.d_user = int(context.d_user)
        self.d = self.d_user + 1
        self._alpha = float(self.config.alpha)
        self._l2 = float(self.config.l2)
        self._l2_action = float(self.config.l2 if self.config.l2_action is None else self.config.l2_action)
        self._hybrid = self.config.mode == "hybrid"
        self._bank: ActionBank | None = None
        self._archive: dict[str, tuple[NDArray[np.float64], ...]] = {}
        d = self.d
        self._A = np.zeros((0, d, d))
        self._A_inv = np.zeros((0, d, d))
        self._b = np.zeros((0, d))
        self._phi = np.zeros((0, d))  # mean coefficients of x per action (theta_a in the disjoint mode)
        self._P_flat = np.zeros((0, d * d))  # width matrices, flattened
        if self._hybrid:
            self._projection = make_projection(context, self.config.use_pca, self.config.pca_components, "LinUCBConfig")
            self.q = self._projection.n_components + 1
            self.k = d * self.q
            self._A0 = self._l2 * np.eye(self.k)
            self._A0_inv = np.eye(self.k) / self._l2
            self._b0 = np.zeros(self.k)
            self._B = np.zeros((0, d, self.k))
            self._e = np.zeros((0, self.q))
            self._dirty = True

    # ------------------------------------------------------------------ bank
    @property
    def bank(self) -> ActionBank | None:
        """The current bank (``None`` before :meth:`set_bank`)."""
        return self._bank

    def set_bank(self, bank: ActionBank) -> None:
        """Switch to ``bank``; actions whose id the agent has seen keep their statistics, new ids start fresh."""
        if not isinstance(bank, ActionBank):
            raise TypeError(f"bank must be an ActionBank, got {type(bank).__name__}.")
        if len(bank) == 0:
            raise ConfigError("bank must contain at least one action, got an empty bank.")
        if self._bank is not None:
            for i, action_id in enumerate(self._bank.ids):
                self._archive[action_id] = self._row_state(i)
        d, n_actions = self.d, len(bank)
        fresh_A = self._l2_action * np.eye(d)
        fresh_A_inv = np.eye(d) / self._l2_action
        self._A = np.empty((n_actions, d, d))
        self._A_inv = np.empty((n_actions, d, d))
        self._b = np.empty((n_actions, d))
        if self._hybrid:
            self._B = np.empty((n_actions, d, self.k))
        for i, action_id in enumerate(bank.ids):
            state = self._archive.get(action_id)
            if state is None:
                self._A[i], self._A_inv[i], self._b[i] = fresh_A, fresh_A_inv, 0.0
                if self._hybrid:
                    self._B[i] = 0.0
            else:
                self._A[i], self._A_inv[i], self._b[i] = state[0], state[1], state[2]
                if self._hybrid:
                    self._B[i] = state[3]
        self._bank = bank
        if self._hybrid:
            self._e = np.concatenate([self._projection.transform(bank.embeddings), np.ones((n_actions, 1))], axis=1)
            self._dirty = True
        else:
            self._phi = np.einsum("aij,aj->ai", self._A_inv, self._b)
            self._P_flat = self._A_inv.reshape(n_actions, d * d)

    def _row_state(self, i: int) -> tuple[NDArray[np.float64], ...]:
        state = (self._A[i].copy(), self._A_inv[i].copy(), self._b[i].copy())
        if self._hybrid:
            state += (self._B[i].copy(),)
        return state

    # ------------------------------------------------------------------ scoring
    def _features(self, users: NDArray[np.float64]) -> NDArray[np.float64]:
        x = np.empty((users.shape[0], self.d))
        x[:, :-1] = users
        x[:, -1] = 1.0
        return x

    def _refresh_hybrid(self) -> None:
        """Recompute beta, phi and P from the hybrid statistics (after an update or a bank change)."""
        d, q, k = self.d, self.q, self.k
        n_actions = self._A.shape[0]
        beta = self._A0_inv @ self._b0
        C = self._A_inv @ self._B  # (K, d, k)
        theta = np.einsum("aij,aj->ai", self._A_inv, self._b - self._B @ beta)
        self._phi = self._e @ beta.reshape(d, q).T + theta
        # G_a = E_a - C_a^T with E_a[(i, j), l] = delta_il e_a[j]; stacked as (k, K*d) for one GEMM with A0^-1.
        G = -C.transpose(1, 2, 0).copy()  # (d, k, K) -> index [l, (i,j), a]
        G = G.reshape(d, d, q, n_actions)
        idx = np.arange(d)
        G[idx, idx] += self._e.T[None, :, :]
        G = G.reshape(d, k, n_actions).transpose(1, 2, 0).reshape(k, n_actions * d)  # [(i,j), (a, l)]
        M = (self._A0_inv @ G).reshape(k, n_actions, d)
        H = np.einsum("kal,kam->alm", G.reshape(k, n_actions, d), M)
        self._P_flat = (H + self._A_inv).reshape(n_actions, d * d)
        self._beta = beta
        self._dirty = False

    def scores(self, users: NDArray[np.float64]) -> NDArray[np.float64]:
        """Upper confidence bounds of every user for every action.

        Args:
            users: User features, shape (B, d_user).

        Returns:
            Scores, shape (B, n_actions).
        """
        require_bank(self._bank, "LinUCBAgent")
        return self._scores(self._features(check_users(users, self.d_user)))

    def _scores(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        if self._hybrid and self._dirty:
            self._refresh_hybrid()
        mean = x @ self._phi.T
        if self._alpha == 0.0:
            return mean
        xx = (x[:, :, None] * x[:, None, :]).reshape(x.shape[0], -1)
        var = xx @ self._P_flat.T
        np.maximum(var, 0.0, out=var)
        return mean + self._alpha * np.sqrt(var)

    def act(self, users: NDArray[np.float64]) -> Decision:
        """Choose an action for each user.

        Args:
            users: User features, shape (B, d_user).

        Returns:
            A :class:`Decision` with indices (B,) into the current bank and their propensities (B,).
        """
        require_bank(self._bank, "LinUCBAgent")
        x = self._features(check_users(users, self.d_user))
        cfg = self.config
        actions, props = choose_actions(self._scores(x), cfg.exploration, cfg.epsilon, cfg.temperature, self._rng)
        return make_decision(actions, props)

    # ------------------------------------------------------------------ learning
    def update(
        self, users: NDArray[np.float64], actions: NDArray[np.int64], rewards: NDArray[np.float64]
    ) -> dict[str, float]:
        """Add a batch of (user, action index, reward) to the statistics.

        Args:
            users: User features, shape (B, d_user).
            actions: Indices into the current bank, shape (B,).
            rewards: Observed rewards (clicks), shape (B,).

        Returns:
            An empty dict (LinUCB has no training loss to log).
        """
        require_bank(self._bank, "LinUCBAgent")
        users, actions, rewards = check_feedback(users, actions, rewards, self.d_user, self._A.shape[0])
        if users.shape[0] == 0:
            return {}
        x = self._features(users)
        if self._hybrid:
            self._update_hybrid(x, actions, rewards)
        elif x.shape[0] == 1:
            a, xr = int(actions[0]), x[0]
            A_inv = self._A_inv[a]
            Ax = A_inv @ xr
            A_inv -= np.outer(Ax, Ax / (1.0 + xr @ Ax))
            self._A[a] += np.outer(xr, xr)
            self._b[a] += rewards[0] * xr
            self._phi[a] = A_inv @ self._b[a]
        else:
            touched, onehot = self._group(actions)
            self._add_grouped(x, rewards, touched, onehot)
            self._phi[touched] = np.einsum("aij,aj->ai", self._A_inv[touched], self._b[touched])
        return {}

    def _group(self, actions: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Touched actions (T,) and the (T, B) one-hot matrix of the batch rows."""
        touched, inverse = np.unique(actions, return_inverse=True)
        onehot = np.zeros((touched.size, actions.size))
        onehot[inverse, np.arange(actions.size)] = 1.0
        return touched, onehot

    def _add_grouped(
        self,
        x: NDArray[np.float64],
        rewards: NDArray[np.float64],
        touched: NDArray[np.int64],
        onehot: NDArray[np.float64],
    ) -> None:
        """A_a += sum x x^T, b_a += sum r x per touched action; refresh A_a^{-1} (one batched inversion)."""
        d = self.d
        xx = (x[:, :, None] * x[:, None, :]).reshape(x.shape[0], d * d)
        self._A[touched] += (onehot @ xx).reshape(-1, d, d)
        self._b[touched] += onehot @ (rewards[:, None] * x)
        self._A_inv[touched] = np.linalg.inv(self._A[touched])

    def _hybrid_terms(self, touched: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """sum_a B_a^T A_a^{-1} B_a (k, k) and sum_a B_a^T A_a^{-1} b_a (k,) over the touched actions."""
        B = self._B[touched]
        C = self._A_inv[touched] @ B
        return np.einsum("adk,adl->kl", B, C), np.einsum("adk,ad->k", C, self._b[touched])

    def _update_hybrid(self, x: NDArray[np.float64], actions: NDArray[np.int64], rewards: NDArray[np.float64]) -> None:
        """Li et al. (2010), Algorithm 2, lines 17-23, grouped per touched action."""
        n_rows = x.shape[0]
        z = (x[:, :, None] * self._e[actions][:, None, :]).reshape(n_rows, self.k)
        touched, onehot = self._group(actions)
        S_old, s_old = self._hybrid_terms(touched)
        if n_rows == 1:
            a, xr = int(actions[0]), x[0]
            A_inv = self._A_inv[a]
            Ax = A_inv @ xr
            A_inv -= np.outer(Ax, Ax / (1.0 + xr @ Ax))
            self._A[a] += np.outer(xr, xr)
            self._b[a] += rewards[0] * xr
            self._B[a] += np.outer(xr, z[0])
        else:
            self._add_grouped(x, rewards, touched, onehot)
            self._B[touched] += (onehot @ (x[:, :, None] * z[:, None, :]).reshape(n_rows, -1)).reshape(
                touched.size, self.d, self.k
            )
        S_new, s_new = self._hybrid_terms(touched)
        self._A0 += S_old - S_new + z.T @ z
        self._b0 += s_old - s_new + z.T @ rewards
        self._A0 = 0.5 * (self._A0 + self._A0.T)
        self._A0_inv = np.linalg.inv(self._A0)
        self._dirty = True
