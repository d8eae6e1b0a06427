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
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import (
    check_array,
    check_bool,
    check_choice,
    check_int,
    check_prob,
    check_real,
    resolve_config,
)
from actionbank_env.core.actions import ActionBank
from actionbank_env.errors import ConfigError
from actionbank_env.protocols import AgentContext, Decision

from ._common import (
    check_bank,
    check_feedback,
    check_users,
    make_decision,
    make_projection,
    require_bank,
)

__all__ = ["LinUCBConfig", "LinUCBAgent", "choose_actions", "policy_probs"]

logger = logging.getLogger(__name__)

#: Exploration probability of ``exploration="epsilon"`` when ``LinUCBConfig.epsilon`` is unset.
DEFAULT_EPSILON = 0.1
#: Relative gap under which two scores are treated as tied (see :func:`choose_actions`).
TIE_TOLERANCE = 1e-12


@dataclass(frozen=True, slots=True, kw_only=True)
class LinUCBConfig:
    """Hyperparameters of LinUCB (Li et al., 2010).

    Attributes:
        mode: ``"disjoint"`` (one ridge model per action over [x, 1]) or ``"hybrid"`` (Algorithm 2: shared
            coefficients over ``vec(x (x) e_a)`` plus per-action terms over [x, 1]).
        alpha: Width of the confidence bonus; 0 gives greedy ridge regression. The default 0.2 comes from a
            sweep over {0.03, 0.1, 0.2, 0.3, 0.5, 1.0} on the default world (hashing embedder, 5 seeds, 1000 and
            5000 users): clicks there are Bernoulli with p ~ 0.05, and alpha = 1.0 kept exploring long after
            the means were known (about 40% more regret than 0.1-0.2); 0.1 under-explored worlds with larger
            click rates (the test worlds), 0.2 was within the confidence interval of the best in both.
        l2: Ridge penalty of every model (``A = l2 * I`` at the start); must be > 0.
        l2_action: Hybrid mode only: ridge penalty of the per-action terms (``A_a = l2_action * I``);
            ``None`` uses ``10 * l2`` in the hybrid mode. A larger value makes a new action lean on the shared,
            embedding-based part instead of exploring its own coefficients from scratch (on the default world
            it gave lower or equal regret than ``l2`` at alpha 0.1-0.3).
        use_pca: Reduce action embeddings by PCA before the hybrid model's outer product.
        pca_components: Number of PCA components (clipped to what the reference sample supports).
        exploration: ``"none"`` (argmax, random tie-break), ``"epsilon"`` (uniform with probability
            ``epsilon``) or ``"softmax"`` (sample from softmax(score / temperature)). The default ``"epsilon"``
            gives every action of the bank a propensity of at least ``epsilon / K`` for every user, so the logs
            support off-policy evaluation (``actionbank ope``). Measured on 10 world seeds of the default world
            (MiniLM, seeds 1000-1009, ``python -m benchmarks.bench_exploration``; README, "Off-policy
            evaluation"), epsilon 0.1 changed the deployed value of the non-exploring agent by -0.0015
            [-0.0055, +0.0024] (ratio of means 0.977, within noise), while softmax cost 11 % at temperature
            0.05 and still left some actions with probability 3e-9 for some users.
        epsilon: Exploration probability of ``exploration="epsilon"``; ``None`` means 0.1 there (and 0 for the
            other modes, where setting it is an error).
        temperature: Softmax temperature of ``exploration="softmax"``; must be > 0.
        new_action_prior: Disjoint mode: how many observations' worth of the bank designer's predictions a new
            action starts from, instead of a blank ridge model (0). When the designer hands its reward model
            over with the bank (``BankDesignEnv.set_action_prior``, which ``actionbank simulate`` does), each
            new action's model starts at the ridge fit of the designer's predicted click probabilities on
            logged users, weighted as this many observations, so its confidence bonus no longer sends it most of
            the traffic until it has been served about (alpha |x| / ctr)^2 times. Off by default; measured in
            ``benchmarks/DESIGNERS.md`` ("A prior for new texts from the designer's model").

    Example:
        >>> LinUCBConfig(alpha=0.5).mode
        'disjoint'
    """

    mode: str = "disjoint"
    alpha: float = 0.2
    l2: float = 1.0
    l2_action: float | None = None
    use_pca: bool = True
    pca_components: int = 16
    exploration: str = "epsilon"
    epsilon: float | None = None
    temperature: float = 0.1
    new_action_prior: float = 0.0

    def __post_init__(self) -> None:
        check_choice("LinUCBConfig.mode", self.mode, ("disjoint", "hybrid"))
        check_real("LinUCBConfig.new_action_prior", self.new_action_prior, low=0.0, high=1e6)
        if self.new_action_prior > 0.0 and self.mode != "disjoint":
            raise ConfigError(
                f"LinUCBConfig.new_action_prior={self.new_action_prior} needs mode='disjoint', got mode={self.mode!r} "
                "(the hybrid model's new actions already lean on its shared, embedding-based part)."
            )
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
        if self.epsilon is not None:
            check_prob("LinUCBConfig.epsilon", self.epsilon)
        check_real("LinUCBConfig.temperature", self.temperature, low=0.0, low_open=True)
        if self.epsilon is not None and self.epsilon > 0.0 and self.exploration != "epsilon":
            raise ConfigError(
                f"LinUCBConfig.epsilon={self.epsilon} has no effect with exploration={self.exploration!r}; "
                "set exploration='epsilon' or epsilon=0.0."
            )

    @property
    def exploration_epsilon(self) -> float:
        """The exploration probability in use: ``epsilon`` (0.1 when unset) in the epsilon mode, 0 otherwise."""
        if self.exploration != "epsilon":
            return 0.0
        return DEFAULT_EPSILON if self.epsilon is None else float(self.epsilon)


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
        probs: NDArray[np.float64] = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        cum: NDArray[np.float64] = np.cumsum(probs, axis=1)
        u = rng.random((n_rows,))
        actions = np.minimum(np.sum(cum < u[:, None] * cum[:, -1:], axis=1), n_actions - 1).astype(np.int64)
        return actions, probs[rows, actions]
    # argmax = the first tied index whenever a row has a single tie; ties are counted against the maximum.
    actions = scores.argmax(axis=1)
    best = scores[rows, actions]
    ties = scores >= (best - TIE_TOLERANCE * np.maximum(np.abs(best), 1.0))[:, None]
    n_ties = np.count_nonzero(ties, axis=1)
    tied_rows = np.flatnonzero(n_ties > 1)
    if tied_rows.size:
        picks = np.floor(rng.random(tied_rows.size) * n_ties[tied_rows])
        actions[tied_rows] = np.argmax(np.cumsum(ties[tied_rows], axis=1) > picks[:, None], axis=1)
    if exploration == "epsilon":
        explore = np.less(rng.random(n_rows), epsilon)
        n_explore = int(explore.sum())
        if n_explore:
            actions[explore] = rng.integers(0, n_actions, size=n_explore)
        return actions, (1.0 - epsilon) * ties[rows, actions] / n_ties + epsilon / n_actions
    return actions, 1.0 / n_ties


def policy_probs(
    scores: NDArray[np.float64], exploration: str, epsilon: float, temperature: float
) -> NDArray[np.float64]:
    """The whole distribution :func:`choose_actions` draws from, for each row of ``scores``.

    ``"none"``: uniform over the tied maxima; ``"epsilon"``: that mixed with the uniform distribution;
    ``"softmax"``: softmax(scores / temperature). The entry of the chosen index is the propensity that
    :func:`choose_actions` reports.

    Args:
        scores: Scores, shape (B, K).
        exploration: ``"none"``, ``"epsilon"`` or ``"softmax"``.
        epsilon: Exploration probability (``"epsilon"`` only).
        temperature: Softmax temperature (``"softmax"`` only).

    Returns:
        Probabilities, shape (B, K), rows summing to 1.

    Example:
        >>> policy_probs(np.array([[1.0, 3.0, 3.0]]), "epsilon", 0.3, 1.0).round(2).tolist()
        [[0.1, 0.45, 0.45]]
    """
    if exploration == "softmax":
        logits = (scores - scores.max(axis=1, keepdims=True)) / temperature
        probs: NDArray[np.float64] = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return probs
    best = scores.max(axis=1)
    ties = scores >= (best - TIE_TOLERANCE * np.maximum(np.abs(best), 1.0))[:, None]
    greedy: NDArray[np.float64] = ties / np.count_nonzero(ties, axis=1)[:, None]
    if exploration == "epsilon":
        mixed: NDArray[np.float64] = (1.0 - epsilon) * greedy + epsilon / scores.shape[1]
        return mixed
    return greedy


#: One shared, read-only propensity array for deterministic single-user decisions (no allocation per round).
_ONE = np.ones(1)
_ONE.setflags(write=False)
_F64 = np.dtype(np.float64)
_I64 = np.dtype(np.int64)
#: Default ``l2_action`` of the hybrid mode, as a multiple of ``l2``.
_HYBRID_L2_ACTION_FACTOR = 10.0
#: Largest batch whose hybrid update uses a rank-B Woodbury step instead of inverting A0 (k, k).
_HYBRID_WOODBURY_MAX_ROWS = 64
#: Sequential hybrid updates between two exact refreshes of A0^{-1} (bounds Sherman-Morrison drift).
_HYBRID_REFRESH_EVERY = 1024


class LinUCBAgent:
    """LinUCB (Li et al., 2010): upper-confidence-bound targeting with ridge models, disjoint or hybrid.

    Scores are ``x^T phi_a + alpha * sqrt(x^T P_a x)`` (see the module docstring), computed for a whole batch
    with two matrix products. Ties are broken at random from the agent's ``rng``.

    Mini-batches: ``act`` scores all B users with the statistics as they are (no update inside a batch);
    ``update`` with B = 1 applies one Sherman-Morrison step to ``A_a^{-1}`` (no inversion). With B > 1 it adds
    the grouped sufficient statistics ``sum x x^T`` and ``sum r x`` of each touched action and re-inverts
    ``A_a`` of the touched actions exactly: that equals the B rank-one steps up to rounding and also clears
    the drift that long runs of Sherman-Morrison steps accumulate. In the disjoint mode these steps, one
    user's scores and the greedy choice of a batch are compiled kernels (:mod:`agents._linucb_kernels`,
    numba; a Cholesky inverse per touched action); the hybrid mode is numpy throughout. The hybrid mode applies Li et al.'s A0/b0
    update per touched action; the per-row terms telescope, so the grouped update is the sequential one. Up to
    64 rows, ``A0^{-1}`` follows by one Woodbury step of rank B (see :meth:`_update_hybrid_woodbury`) instead
    of a (k, k) inversion.

    Batch of one: ``act`` and ``update`` have a fast path for a float64 (1, d_user) array (no re-validation;
    one kernel call each in the disjoint mode, preallocated buffers and a matrix-vector product per term in
    the hybrid mode). In the hybrid mode a single update
    changes ``A0`` by the rank-one term ``g g^T / (1 + x^T A_a^{-1} x)`` with ``g = z - (A_a^{-1} B_a)^T x``,
    so ``A0^{-1}`` and every ``P_a`` follow by rank-one (Sherman-Morrison) steps instead of a (k, k)
    inversion; ``A0^{-1}`` is re-inverted exactly every 1024 single updates and after every batch update.

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

    #: The config whose fields are this agent's keyword parameters.
    config_class: ClassVar[type[LinUCBConfig]] = LinUCBConfig

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
        if self.config.l2_action is not None:
            self._l2_action = float(self.config.l2_action)
        else:
            self._l2_action = _HYBRID_L2_ACTION_FACTOR * self._l2 if self.config.mode == "hybrid" else self._l2
        self._hybrid = self.config.mode == "hybrid"
        self._new_indices = np.zeros(0, dtype=np.int64)  # bank positions that started blank at the last set_bank
        self._greedy = self.config.exploration == "none"
        self._bank: ActionBank | None = None
        self._archive: dict[str, tuple[NDArray[np.float64], ...]] = {}
        d = self.d
        self._A = np.zeros((0, d, d))
        self._A_inv = np.zeros((0, d, d))
        self._b = np.zeros((0, d))
        self._phi = np.zeros((0, d))  # mean coefficients of x per action (theta_a in the disjoint mode)
        self._P_flat = np.zeros((0, d * d))  # width matrices, flattened
        # Batch-of-one buffers: x = [user, 1] for act and update, and (d, d) scratch matrices.
        self._one_user_shape = (1, self.d_user)
        self._x_act = np.ones(d)
        self._x_act_head = self._x_act[None, :-1]
        self._x_act_col = self._x_act[:, None]
        self._x_upd = np.ones(d)
        self._x_upd_head = self._x_upd[None, :-1]
        self._xx = np.empty((d, d))
        self._xx_flat = self._xx.reshape(d * d)
        # W stacks the mean and the width of every action as linear maps of vec(x x^T) (x's last entry is 1,
        # so the last row of x x^T is x): rows [0, K) hold phi_a in the last-row block, rows [K, 2K) hold P_a.
        # One matrix-vector product then scores a single user.
        self._W = np.zeros((0, d * d))
        self._index_arrays: list[NDArray[np.int64]] = []
        self._score_buf = np.zeros(0)
        self._ax = np.empty(d)
        if not self._hybrid:
            from agents import _linucb_kernels

            self._kernels = _linucb_kernels  # compiled on first use (numba), cached on disk
        if self._hybrid:
            self._projection = make_projection(context, self.config.use_pca, self.config.pca_components, "LinUCBConfig")
            self.q = self._projection.n_components + 1
            self.k = d * self.q
            self._A0 = self._l2 * np.eye(self.k)
            self._A0_inv = np.eye(self.k) / self._l2
            self._kk = np.empty((self.k, self.k))
            self._b0 = np.zeros(self.k)
            self._B = np.zeros((0, d, self.k))
            self._C = np.zeros((0, d, self.k))  # A_a^{-1} B_a, valid when not dirty
            self._t = np.zeros((0, d))  # A_a^{-1} b_a, valid when not dirty
            self._P = np.zeros((0, d, d))
            self._e = np.zeros((0, self.q))
            self._dirty = True
            self._since_exact = 0

    # ------------------------------------------------------------------ bank
    @property
    def bank(self) -> ActionBank | None:
        """The current bank (``None`` before :meth:`set_bank`)."""
        return self._bank

    def set_bank(self, bank: ActionBank) -> None:
        """Switch to ``bank``; actions whose id the agent has seen keep their statistics, new ids start fresh."""
        check_bank(bank)
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
        fresh = []
        for i, action_id in enumerate(bank.ids):
            state = self._archive.get(action_id)
            if state is None:
                fresh.append(i)
                self._A[i], self._A_inv[i], self._b[i] = fresh_A, fresh_A_inv, 0.0
                if self._hybrid:
                    self._B[i] = 0.0
            else:
                self._A[i], self._A_inv[i], self._b[i] = state[0], state[1], state[2]
                if self._hybrid:
                    self._B[i] = state[3]
        self._bank = bank
        self._new_indices = np.array(fresh, dtype=np.int64)
        self._W = np.zeros((2 * n_actions, d * d))
        width = self._bind_views()
        if self._hybrid:
            self._e = np.concatenate([self._projection.transform(bank.embeddings), np.ones((n_actions, 1))], axis=1)
            self._C = np.zeros((n_actions, d, self.k))
            self._t = np.zeros((n_actions, d))
            self._P = width
            self._dirty = True
        else:
            width[...] = self._A_inv
            self._A_inv = width  # the width matrices are A_a^{-1} themselves: one array, updated in place
            self._phi[...] = (self._A_inv @ self._b[:, :, None])[:, :, 0]
        self._score_buf = np.zeros(n_actions)
        self._index_arrays = []
        for i in range(n_actions):
            index = np.array([i], dtype=np.int64)
            index.setflags(write=False)
            self._index_arrays.append(index)

    @property
    def new_action_indices(self) -> NDArray[np.int64]:
        """Positions in the current bank of the actions whose models started blank at the last :meth:`set_bank`."""
        return self._new_indices.copy()

    @property
    def action_prior_weight(self) -> float:
        """Observations' worth of the designer's predictions a new action starts from (0: none wanted)."""
        return float(self.config.new_action_prior)

    def prime_new_actions(
        self, indices: NDArray[np.int64], users: NDArray[np.float64], predictions: NDArray[np.float64]
    ) -> None:
        """Start the models of the bank's actions ``indices`` from predicted click probabilities.

        Adds the ridge statistics of the pseudo-observations ``(users[i], predictions[i, j])`` for action
        ``indices[j]``, each row weighted ``new_action_prior / n_users``, so the prior counts as
        ``new_action_prior`` observations in all; real clicks then update it as usual. Call right after
        :meth:`set_bank`, for actions the agent has never served (the env does).

        Args:
            indices: Positions of the new actions in the current bank, shape (k,).
            users: Users the predictions are for, shape (n, d_user).
            predictions: Predicted click probabilities, shape (n, k).
        """
        weight = self.action_prior_weight
        idx = np.asarray(indices, dtype=np.int64)
        if weight == 0.0 or idx.size == 0:
            return
        require_bank(self._bank, "LinUCBAgent")
        assert self._bank is not None  # for the type checker: require_bank raised otherwise
        users = check_array("users", users, ndim=2)
        preds = check_array("predictions", predictions, ndim=2)
        if users.shape[1] != self.d_user or preds.shape != (users.shape[0], idx.size) or users.shape[0] == 0:
            raise ValueError(
                f"prime_new_actions needs users (n, {self.d_user}) and predictions (n, {idx.size}) with n > 0, got "
                f"{users.shape} and {preds.shape}."
            )
        if idx.min() < 0 or idx.max() >= len(self._bank):
            raise ValueError(f"prime_new_actions: indices must lie in [0, {len(self._bank)}), got {idx.tolist()}.")
        x = self._features(users)
        scale = weight / users.shape[0]
        self._A[idx] += scale * (x.T @ x)
        self._b[idx] += scale * (preds.T @ x)
        self._A_inv[idx] = np.linalg.inv(self._A[idx])
        self._phi[idx] = (self._A_inv[idx] @ self._b[idx][:, :, None])[:, :, 0]

    def _bind_views(self) -> NDArray[np.float64]:
        """Point ``_phi`` and ``_P_flat`` into ``_W``; returns the width matrices as a (K, d, d) view of ``_W``."""
        d = self.d
        n_actions = self._W.shape[0] // 2
        self._phi = self._W[:n_actions].reshape(n_actions, d, d)[:, d - 1, :]
        self._P_flat = self._W[n_actions:]
        return self._P_flat.reshape(n_actions, d, d)

    # Pickling (checkpoints, deepcopy, forked envs): the kernels module is not picklable, and pickle stores views
    # as separate copies, which would cut the in-place links between ``_W`` and the per-action matrices.
    _UNPICKLED: ClassVar[tuple[str, ...]] = (
        "_kernels",
        "_x_act_head",
        "_x_act_col",
        "_x_upd_head",
        "_xx_flat",
        "_phi",
        "_P_flat",
    )

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in self._UNPICKLED}
        state.pop("_P" if self._hybrid else "_A_inv")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._x_act_head = self._x_act[None, :-1]
        self._x_act_col = self._x_act[:, None]
        self._x_upd_head = self._x_upd[None, :-1]
        self._xx_flat = self._xx.reshape(self.d * self.d)
        width = self._bind_views()
        if self._hybrid:
            self._P = width
        else:
            from agents import _linucb_kernels

            self._kernels = _linucb_kernels
            self._A_inv = width

    def _row_state(self, i: int) -> tuple[NDArray[np.float64], ...]:
        state: tuple[NDArray[np.float64], ...] = (self._A[i].copy(), self._A_inv[i].copy(), self._b[i].copy())
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
        """Recompute C, t, beta, phi and P from the hybrid statistics (after a batch update or a bank change)."""
        d, q, k = self.d, self.q, self.k
        n_actions = self._A.shape[0]
        beta = self._A0_inv @ self._b0
        C = self._A_inv @ self._B  # (K, d, k)
        t = (self._A_inv @ self._b[:, :, None])[:, :, 0]
        self._C[...] = C
        self._t[...] = t
        self._phi[...] = self._e @ beta.reshape(d, q).T + t - C @ beta
        # G_a = E_a - C_a^T with E_a[(i, j), l] = delta_il e_a[j]; stacked as (k, K*d) for one GEMM with A0^-1.
        G = -C.transpose(1, 2, 0).copy()  # (d, k, K) -> index [l, (i,j), a]
        G = G.reshape(d, d, q, n_actions)
        idx = np.arange(d)
        G[idx, idx] += self._e.T[None, :, :]
        G = G.reshape(d, k, n_actions).transpose(1, 2, 0).reshape(k, n_actions * d)  # [(i,j), (a, l)]
        M = (self._A0_inv @ G).reshape(k, n_actions, d).transpose(1, 0, 2)  # (K, k, d)
        H = G.reshape(k, n_actions, d).transpose(1, 2, 0) @ M  # (K, d, d)
        self._P[...] = H + self._A_inv
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
        if self._alpha == 0.0:
            return x @ self._phi.T
        mean = x @ self._phi.T
        xx = (x[:, :, None] * x[:, None, :]).reshape(x.shape[0], -1)
        var = xx @ self._P_flat.T
        np.maximum(var, 0.0, out=var)
        np.sqrt(var, out=var)
        var *= self._alpha
        var += mean
        return var

    def act(self, users: NDArray[np.float64]) -> Decision:
        """Choose an action for each user.

        Args:
            users: User features, shape (B, d_user).

        Returns:
            A :class:`Decision` with indices (B,) into the current bank and their propensities (B,).
        """
        if (
            self._greedy
            and type(users) is np.ndarray
            and users.shape == self._one_user_shape
            and users.dtype is _F64
            and self._bank is not None
        ):
            return self._act_one(users)
        require_bank(self._bank, "LinUCBAgent")
        x = self._features(check_users(users, self.d_user))
        cfg = self.config
        scores = self._scores(x)
        if self._greedy and not self._hybrid:  # choose_actions' "none" rule in one compiled pass
            actions, n_ties = self._kernels.greedy_batch(scores, TIE_TOLERANCE)
            tied_rows = np.flatnonzero(n_ties > 1)
            if tied_rows.size:
                picks = np.floor(self._rng.random(tied_rows.size) * n_ties[tied_rows]).astype(np.int64)
                for row, pick in zip(tied_rows.tolist(), picks.tolist(), strict=True):
                    actions[row] = self._kernels.nth_tie(scores[row], TIE_TOLERANCE, pick)
            return make_decision(actions, 1.0 / n_ties)
        actions, props = choose_actions(scores, cfg.exploration, cfg.exploration_epsilon, cfg.temperature, self._rng)
        return make_decision(actions, props)

    def action_probs(self, users: NDArray[np.float64]) -> NDArray[np.float64]:
        """The distribution :meth:`act` would draw each user's action from now (no random draw, no state change).

        Args:
            users: User features, shape (B, d_user).

        Returns:
            Probabilities over the current bank, shape (B, n_actions); the served action's entry is its propensity.
        """
        require_bank(self._bank, "LinUCBAgent")
        cfg = self.config
        scores = self._scores(self._features(check_users(users, self.d_user)))
        return policy_probs(scores, cfg.exploration, cfg.exploration_epsilon, cfg.temperature)

    def _act_one(self, users: NDArray[np.float64]) -> Decision:
        """``act`` for one user and exploration ``"none"``: the same scores and draws as the batch path."""
        if not self._hybrid:
            scores = self._score_buf
            best_index, n_ties = self._kernels.scores_one(
                users[0], self._phi, self._A_inv, self._alpha, TIE_TOLERANCE, scores
            )
            if n_ties == 1:
                return make_decision(self._index_arrays[best_index], _ONE)
            pick = int(np.floor(self._rng.random(1)[0] * n_ties))
            chosen = self._kernels.nth_tie(scores, TIE_TOLERANCE, pick)
            return make_decision(self._index_arrays[chosen], np.array([1.0 / n_ties]))
        if self._dirty:
            self._refresh_hybrid()
        x = self._x_act
        np.copyto(self._x_act_head, users)
        np.multiply(self._x_act_col, x, out=self._xx)
        both = self._W @ self._xx_flat
        n_actions = len(self._index_arrays)
        scores = both[:n_actions]
        if self._alpha != 0.0:
            var = both[n_actions:]
            np.maximum(var, 0.0, out=var)
            np.sqrt(var, out=var)
            var *= self._alpha
            var += scores
            scores = var
        best_index = int(scores.argmax())
        best = float(scores[best_index])
        threshold = best - TIE_TOLERANCE * max(abs(best), 1.0)
        scores[best_index] = -np.inf  # a tie exists iff the runner-up reaches the threshold
        if float(scores.max()) < threshold:
            return make_decision(self._index_arrays[best_index], _ONE)
        scores[best_index] = best
        ties = scores >= threshold
        n_ties = int(np.count_nonzero(ties))
        pick = int(np.floor(self._rng.random(1)[0] * n_ties))
        return make_decision(self._index_arrays[int(np.flatnonzero(ties)[pick])], np.array([1.0 / n_ties]))

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
        if (
            type(users) is np.ndarray
            and users.shape == self._one_user_shape
            and users.dtype is _F64
            and type(actions) is np.ndarray
            and actions.shape == (1,)
            and actions.dtype is _I64
            and type(rewards) is np.ndarray
            and rewards.shape == (1,)
            and self._bank is not None
        ):
            a = int(actions[0])
            if 0 <= a < len(self._index_arrays):
                if self._hybrid:
                    np.copyto(self._x_upd_head, users)
                    self._update_hybrid_one(self._x_upd, a, float(rewards[0]))
                else:
                    self._kernels.update_one(
                        users[0], a, float(rewards[0]), self._A, self._A_inv, self._b, self._phi, self._ax
                    )
                return {}
        require_bank(self._bank, "LinUCBAgent")
        users, actions, rewards = check_feedback(users, actions, rewards, self.d_user, self._A.shape[0])
        if users.shape[0] == 0:
            return {}
        if self._hybrid:
            self._update_hybrid(self._features(users), actions, rewards)
        elif users.shape[0] == 1:
            self._kernels.update_one(
                users[0], int(actions[0]), float(rewards[0]), self._A, self._A_inv, self._b, self._phi, self._ax
            )
        else:
            self._kernels.update_batch(users, actions, rewards, self._A, self._A_inv, self._b, self._phi)
        return {}

    def _rank_one(self, M: NDArray[np.float64], scale: float, v: NDArray[np.float64]) -> None:
        """``M += scale * v v^T`` in place for the (k, k) hybrid matrices, through a preallocated buffer.

        (Not scipy's ``dger``: for k ~ 150 its OpenBLAS may start threads that threadpool limits set before
        scipy was imported do not cover.)
        """
        np.multiply(v[:, None], scale * v, out=self._kk)
        M += self._kk

    def _update_hybrid_one(self, x: NDArray[np.float64], a: int, reward: float) -> None:
        """Li et al. (2010), Algorithm 2, lines 17-23, for one row, with rank-one updates of A0^{-1} and P.

        With ``u = A_a^{-1} x``, ``delta = 1 + x^T u`` and ``g = z - C_a^T x`` (``C_a = A_a^{-1} B_a`` before
        the step), the algorithm's change of ``A0`` is exactly ``g g^T / delta``.
        """
        d, q = self.d, self.q
        e_a = self._e[a]
        z = np.multiply(x[:, None], e_a).reshape(self.k)
        A_inv = self._A_inv[a]
        C_old = self._C[a] if not self._dirty else A_inv @ self._B[a]
        u = A_inv @ x
        delta = 1.0 + float(x @ u)
        g = z - x @ C_old
        old_cb = self._b[a] @ C_old
        A_inv -= np.multiply(u[:, None], u / delta)
        self._A[a] += np.multiply(x[:, None], x)
        b = self._b[a]
        if reward != 0.0:
            b += reward * x
        self._B[a] += np.multiply(x[:, None], z)
        C_new = A_inv @ self._B[a]
        self._b0 += reward * z - b @ C_new + old_cb
        self._rank_one(self._A0, 1.0 / delta, g)
        self._since_exact += 1
        if self._since_exact >= _HYBRID_REFRESH_EVERY:
            self._A0_inv = np.linalg.inv(0.5 * (self._A0 + self._A0.T)).astype(np.float64, copy=False)
            self._since_exact = 0
            self._dirty = True
            return
        h = self._A0_inv @ g
        rho = delta + float(g @ h)
        self._rank_one(self._A0_inv, -1.0 / rho, h)
        if self._dirty:
            return
        self._C[a] = C_new
        self._t[a] = A_inv @ b
        # P_c -= w_c w_c^T / rho with w_c = G_c^T h for every action; then P_a afresh (its G changed).
        n_actions = self._C.shape[0]
        C_flat = self._C.reshape(n_actions * d, self.k)  # one GEMV instead of K batched ones
        w = self._e @ h.reshape(d, q).T - (C_flat @ h).reshape(n_actions, d)
        self._P -= w[:, :, None] * (w / rho)[:, None, :]
        # G_a = E_a - C_a^T, (k, d), with E_a[(i, j), l] = delta_il e_a[j]; C-ordered so the reshape is a view.
        G_a = -C_new.T.copy()
        idx = np.arange(d)
        G_a.reshape(d, q, d)[idx, :, idx] += e_a
        self._P[a] = G_a.T @ (self._A0_inv @ G_a) + A_inv
        beta = self._A0_inv @ self._b0
        self._beta = beta
        self._phi[...] = self._e @ beta.reshape(d, q).T + self._t - (C_flat @ beta).reshape(n_actions, d)

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
        A = self._A[touched] + (onehot @ xx).reshape(-1, d, d)
        self._A[touched] = A
        self._b[touched] += onehot @ (rewards[:, None] * x)
        self._A_inv[touched] = np.linalg.inv(A)

    def _hybrid_terms(self, touched: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """sum_a B_a^T A_a^{-1} B_a (k, k) and sum_a B_a^T A_a^{-1} b_a (k,) over the touched actions."""
        B = self._B[touched]
        C = self._A_inv[touched] @ B
        flat_B = B.reshape(-1, self.k)
        return flat_B.T @ C.reshape(-1, self.k), C.reshape(-1, self.k).T @ self._b[touched].reshape(-1)

    def _update_hybrid(self, x: NDArray[np.float64], actions: NDArray[np.int64], rewards: NDArray[np.float64]) -> None:
        """Li et al. (2010), Algorithm 2, lines 17-23, grouped per touched action."""
        n_rows = x.shape[0]
        z = (x[:, :, None] * self._e[actions][:, None, :]).reshape(n_rows, self.k)
        touched, onehot = self._group(actions)
        if n_rows <= _HYBRID_WOODBURY_MAX_ROWS and self._since_exact + n_rows < _HYBRID_REFRESH_EVERY:
            self._update_hybrid_woodbury(x, actions, rewards, z, touched, onehot)
            return
        S_old, s_old = self._hybrid_terms(touched)
        self._add_grouped(x, rewards, touched, onehot)
        self._B[touched] += (onehot @ (x[:, :, None] * z[:, None, :]).reshape(n_rows, -1)).reshape(
            touched.size, self.d, self.k
        )
        S_new, s_new = self._hybrid_terms(touched)
        self._A0 += S_old - S_new + z.T @ z
        self._b0 += s_old - s_new + z.T @ rewards
        self._A0 = 0.5 * (self._A0 + self._A0.T)
        self._A0_inv = np.linalg.inv(self._A0).astype(np.float64, copy=False)
        self._since_exact = 0
        self._dirty = True

    def _update_hybrid_woodbury(
        self,
        x: NDArray[np.float64],
        actions: NDArray[np.int64],
        rewards: NDArray[np.float64],
        z: NDArray[np.float64],
        touched: NDArray[np.int64],
        onehot: NDArray[np.float64],
    ) -> None:
        """The grouped update for a small batch without a (k, k) inversion.

        For the rows of one action (features X, Z), A0 grows by ``G^T M^{-1} G`` with ``G = Z - X C_a`` and
        ``M = I + X A_a^{-1} X^T`` (the rank-one formula of :meth:`_update_hybrid_one`, blockwise); stacked over
        the batch M is block diagonal, so ``A0^{-1}`` follows by one Woodbury step of rank B.
        """
        k, n_rows = self.k, x.shape[0]
        inverse = np.searchsorted(touched, actions)
        A_inv_t = self._A_inv[touched]
        C_t = A_inv_t @ self._B[touched]  # (T, d, k)
        G = z - (x[:, None, :] @ C_t[inverse])[:, 0, :]  # (B, k)
        U = (A_inv_t[inverse] @ x[:, :, None])[:, :, 0]  # A_{a_r}^{-1} x_r, (B, d)
        M = np.eye(n_rows) + (x @ U.T) * (actions[:, None] == actions[None, :])
        s_old = C_t.reshape(-1, k).T @ self._b[touched].reshape(-1)
        self._add_grouped(x, rewards, touched, onehot)
        self._B[touched] += (onehot @ (x[:, :, None] * z[:, None, :]).reshape(n_rows, -1)).reshape(
            touched.size, self.d, k
        )
        s_new = (self._A_inv[touched] @ self._B[touched]).reshape(-1, k).T @ self._b[touched].reshape(-1)
        self._b0 += s_old - s_new + z.T @ rewards
        self._A0 += G.T @ np.linalg.solve(M, G)
        H = self._A0_inv @ G.T  # (k, B)
        self._A0_inv -= H @ np.linalg.solve(M + G @ H, H.T)
        self._since_exact += n_rows
        self._dirty = True
