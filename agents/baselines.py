"""Reference targeting policies: uniform random, non-personalised epsilon-greedy, the legacy rule, the oracle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_int, check_prob, check_real, resolve_config
from actionbank_env.core.actions import ActionBank
from actionbank_env.errors import ConfigError
from actionbank_env.protocols import AgentContext, Decision

from ._common import check_bank, check_feedback, check_users, make_decision, require_bank

__all__ = [
    "RandomConfig",
    "RandomAgent",
    "EpsilonGreedyConfig",
    "EpsilonGreedyAgent",
    "LegacyConfig",
    "LegacyAgent",
    "OracleConfig",
    "OracleAgent",
]


def _check_rng(rng: Any, agent: str) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{agent} rng must be a numpy Generator, got {type(rng).__name__}.")
    return rng


class _CountingAgent:
    """Shared bookkeeping: per-id impressions and clicks that survive bank changes."""

    _name = "Agent"

    def __init__(self, context: AgentContext, rng: np.random.Generator) -> None:
        self.context = context
        self._rng = _check_rng(rng, self._name)
        self.d_user = int(context.d_user)
        self._bank: ActionBank | None = None
        self._archive: dict[str, tuple[float, float]] = {}
        self._counts = np.zeros(0)
        self._clicks = np.zeros(0)

    @property
    def bank(self) -> ActionBank | None:
        """The current bank (``None`` before :meth:`set_bank`)."""
        return self._bank

    def set_bank(self, bank: ActionBank) -> None:
        """Switch to ``bank``; retained ids keep their impression and click counts, new ids start at zero."""
        bank = check_bank(bank)
        if self._bank is not None:
            for i, action_id in enumerate(self._bank.ids):
                self._archive[action_id] = (float(self._counts[i]), float(self._clicks[i]))
        stats = np.array([self._archive.get(i, (0.0, 0.0)) for i in bank.ids]).reshape(len(bank), 2)
        self._counts, self._clicks = stats[:, 0].copy(), stats[:, 1].copy()
        self._bank = bank
        self._on_bank_change()

    def _on_bank_change(self) -> None:
        pass

    def update(
        self, users: NDArray[np.float64], actions: NDArray[np.int64], rewards: NDArray[np.float64]
    ) -> dict[str, float]:
        """Count impressions and clicks per action; users (B, d_user), actions (B,), rewards (B,)."""
        require_bank(self._bank, self._name)
        _, actions, rewards = check_feedback(users, actions, rewards, self.d_user, self._counts.size)
        self._counts += np.bincount(actions, minlength=self._counts.size)
        self._clicks += np.bincount(actions, weights=rewards, minlength=self._counts.size)
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RandomConfig:
    """The uniform random policy has no hyperparameters."""


class RandomAgent(_CountingAgent):
    """Serves an action drawn uniformly from the bank; propensity ``1 / K``.

    Example:
        >>> from actionbank_env.core.actions import Action
        >>> ctx = AgentContext(d_user=2, d_embed=3, feature_names=("a", "b"), reference_embeddings=np.eye(3))
        >>> agent = RandomAgent(ctx, rng=np.random.default_rng(0))
        >>> agent.set_bank(ActionBank([Action(f"A{i}", f"t{i}", np.ones(3, np.float32)) for i in range(4)]))
        >>> agent.act(np.full((2, 2), 0.5)).propensities.tolist()
        [0.25, 0.25]
    """

    _name = "RandomAgent"
    config_class: ClassVar[type[RandomConfig]] = RandomConfig

    def __init__(
        self,
        context: AgentContext,
        *,
        rng: np.random.Generator,
        config: RandomConfig | None = None,
        **hyperparameters: Any,
    ) -> None:
        self.config = resolve_config(RandomConfig, config, hyperparameters, self._name)
        super().__init__(context, rng)

    def act(self, users: NDArray[np.float64]) -> Decision:
        """Uniform choice per user; users (B, d_user) -> Decision (B,)."""
        require_bank(self._bank, self._name)
        n_rows = check_users(users, self.d_user).shape[0]
        n_actions = self._counts.size
        return make_decision(rng_ints(self._rng, n_actions, n_rows), np.full(n_rows, 1.0 / n_actions))

    def action_probs(self, users: NDArray[np.float64]) -> NDArray[np.float64]:
        """The uniform distribution for each user, shape (B, K)."""
        require_bank(self._bank, self._name)
        n_rows = check_users(users, self.d_user).shape[0]
        return np.full((n_rows, self._counts.size), 1.0 / self._counts.size)


def rng_ints(rng: np.random.Generator, high: int, size: int) -> NDArray[np.int64]:
    """``size`` uniform integers in [0, high) as int64."""
    return rng.integers(0, high, size=size).astype(np.int64)


@dataclass(frozen=True, slots=True, kw_only=True)
class EpsilonGreedyConfig:
    """Hyperparameters of the non-personalised epsilon-greedy policy.

    Attributes:
        epsilon: Probability of serving a uniformly random action.
        initial_value: Prior CTR of an unseen action (1.0 is optimistic: every action gets tried).
        prior_weight: Pseudo-impressions behind ``initial_value`` (0: an unseen action is valued at
            ``initial_value`` and a seen one at its plain CTR).
    """

    epsilon: float = 0.1
    initial_value: float = 1.0
    prior_weight: float = 1.0

    def __post_init__(self) -> None:
        check_prob("EpsilonGreedyConfig.epsilon", self.epsilon)
        check_prob("EpsilonGreedyConfig.initial_value", self.initial_value)
        check_real("EpsilonGreedyConfig.prior_weight", self.prior_weight, low=0.0)


class EpsilonGreedyAgent(_CountingAgent):
    """Non-personalised epsilon-greedy: the best observed CTR for everybody, a uniform action with prob. epsilon.

    The estimate of action ``a`` is ``(clicks_a + w * v0) / (impressions_a + w)`` with prior value ``v0``
    (``initial_value``) and weight ``w`` (``prior_weight``); an unseen action with ``w = 0`` gets ``v0``.
    Ties between best estimates are broken uniformly, so the exact propensity of the served index is
    ``(1 - epsilon) * [a is a best action] / n_best + epsilon / K``. Every user of a batch sees the same
    estimates (they change in :meth:`update`).

    Random draws per ``act``: ``rng.random(B)`` for the exploration coin, ``rng.integers(0, n_best, B)`` for
    the tie-break among best actions and ``rng.integers(0, K, B)`` for the exploratory action.
    """

    _name = "EpsilonGreedyAgent"
    config_class: ClassVar[type[EpsilonGreedyConfig]] = EpsilonGreedyConfig

    def __init__(
        self,
        context: AgentContext,
        *,
        rng: np.random.Generator,
        config: EpsilonGreedyConfig | None = None,
        **hyperparameters: Any,
    ) -> None:
        self.config = resolve_config(EpsilonGreedyConfig, config, hyperparameters, self._name)
        super().__init__(context, rng)

    def estimates(self) -> NDArray[np.float64]:
        """Estimated CTR of each action of the current bank, shape (K,)."""
        require_bank(self._bank, self._name)
        w, v0 = self.config.prior_weight, self.config.initial_value
        denom = self._counts + w
        safe = np.where(denom > 0, denom, 1.0)
        return np.where(denom > 0, (self._clicks + w * v0) / safe, v0)

    def act(self, users: NDArray[np.float64]) -> Decision:
        """Greedy or uniform choice per user; users (B, d_user) -> Decision (B,)."""
        require_bank(self._bank, self._name)
        n_rows = check_users(users, self.d_user).shape[0]
        values = self.estimates()
        best = np.flatnonzero(values == values.max())
        n_actions, eps = values.size, self.config.epsilon
        explore = self._rng.random(n_rows) < eps
        actions = best[self._rng.integers(0, best.size, size=n_rows)].astype(np.int64)
        random_actions = rng_ints(self._rng, n_actions, n_rows)
        actions = np.where(explore, random_actions, actions)
        is_best = np.isin(actions, best)
        props = (1.0 - eps) * is_best / best.size + eps / n_actions
        return make_decision(actions, props)

    def action_probs(self, users: NDArray[np.float64]) -> NDArray[np.float64]:
        """The distribution :meth:`act` draws from (the same for every user), shape (B, K)."""
        require_bank(self._bank, self._name)
        n_rows = check_users(users, self.d_user).shape[0]
        values = self.estimates()
        is_best = values == values.max()
        row = (1.0 - self.config.epsilon) * is_best / is_best.sum() + self.config.epsilon / values.size
        return np.tile(row, (n_rows, 1))


@dataclass(frozen=True, slots=True, kw_only=True)
class LegacyConfig:
    """Hyperparameters of the legacy rule.

    Attributes:
        warmup_per_action: Users per action served in round-robin after each bank change.
    """

    warmup_per_action: int = 20

    def __post_init__(self) -> None:
        check_int("LegacyConfig.warmup_per_action", self.warmup_per_action, low=0)


class LegacyAgent(_CountingAgent):
    """The company's pre-bandit rule: a round-robin A/B test, then the winner for everybody.

    After each :meth:`set_bank`, the next ``warmup_per_action * K`` users are served in round-robin over the
    bank in user order (user ``t`` gets index ``t mod K``). From then on every user gets the action with the
    best observed CTR (clicks / impressions over the agent's whole history of that id; unseen actions count
    as CTR 0; ties go to the lowest index). The rule is deterministic, so every propensity is 1.0 and the
    agent never draws from its ``rng``.
    """

    _name = "LegacyAgent"
    config_class: ClassVar[type[LegacyConfig]] = LegacyConfig

    def __init__(
        self,
        context: AgentContext,
        *,
        rng: np.random.Generator,
        config: LegacyConfig | None = None,
        **hyperparameters: Any,
    ) -> None:
        self.config = resolve_config(LegacyConfig, config, hyperparameters, self._name)
        super().__init__(context, rng)
        self._served_since_change = 0

    def _on_bank_change(self) -> None:
        self._served_since_change = 0

    def act(self, users: NDArray[np.float64]) -> Decision:
        """Round-robin during warm-up, then the best observed CTR; users (B, d_user) -> Decision (B,)."""
        require_bank(self._bank, self._name)
        n_rows = check_users(users, self.d_user).shape[0]
        actions = self._next_actions(n_rows)
        self._served_since_change += n_rows
        return make_decision(actions, np.ones(n_rows))

    def _next_actions(self, n_rows: int) -> NDArray[np.int64]:
        n_actions = self._counts.size
        t = self._served_since_change + np.arange(n_rows, dtype=np.int64)
        ctr = np.divide(self._clicks, self._counts, out=np.zeros(n_actions), where=self._counts > 0)
        best = np.int64(np.argmax(ctr))
        return np.where(t < self.config.warmup_per_action * n_actions, t % n_actions, best).astype(np.int64)

    def action_probs(self, users: NDArray[np.float64]) -> NDArray[np.float64]:
        """One-hot at the action :meth:`act` would serve each of the next B users (the rule is deterministic)."""
        require_bank(self._bank, self._name)
        n_rows = check_users(users, self.d_user).shape[0]
        probs = np.zeros((n_rows, self._counts.size))
        probs[np.arange(n_rows), self._next_actions(n_rows)] = 1.0
        return probs


@dataclass(frozen=True, slots=True, kw_only=True)
class OracleConfig:
    """The oracle has no hyperparameters."""


class OracleAgent:
    """Upper bound for EVALUATION ONLY: serves each user the action with the highest true click probability.

    It reads ``context.ground_truth``, which no real targeting agent may see, so its results bound what any
    agent could reach with the bank; never use it as a company policy. Ties go to the lowest index;
    propensities are 1.0.

    Raises:
        ConfigError: If ``context.ground_truth`` is ``None``.
    """

    evaluation_only: ClassVar[bool] = True
    config_class: ClassVar[type[OracleConfig]] = OracleConfig

    def __init__(
        self,
        context: AgentContext,
        *,
        rng: np.random.Generator,
        config: OracleConfig | None = None,
        **hyperparameters: Any,
    ) -> None:
        self.config = resolve_config(OracleConfig, config, hyperparameters, "OracleAgent")
        _check_rng(rng, "OracleAgent")
        if context.ground_truth is None:
            raise ConfigError(
                "OracleAgent needs AgentContext.ground_truth, got None; the oracle is an evaluation-only upper "
                "bound, build it with the world's ground truth."
            )
        self.context = context
        self.d_user = int(context.d_user)
        self._truth = context.ground_truth
        self._bank: ActionBank | None = None

    @property
    def bank(self) -> ActionBank | None:
        """The current bank (``None`` before :meth:`set_bank`)."""
        return self._bank

    def set_bank(self, bank: ActionBank) -> None:
        """Switch to ``bank`` (the oracle learns nothing, so nothing is kept)."""
        self._bank = check_bank(bank)

    def act(self, users: NDArray[np.float64]) -> Decision:
        """Argmax of the true click probability per user; users (B, d_user) -> Decision (B,)."""
        require_bank(self._bank, "OracleAgent")
        users = check_users(users, self.d_user)
        bank: ActionBank = self._bank  # type: ignore[assignment]
        probs = self._truth.click_prob(users, bank.embeddings)
        return make_decision(np.argmax(probs, axis=1).astype(np.int64), np.ones(users.shape[0]))

    def action_probs(self, users: NDArray[np.float64]) -> NDArray[np.float64]:
        """One-hot at each user's true best action, shape (B, K)."""
        decision = self.act(users)
        probs = np.zeros((decision.actions.size, len(self._bank)))  # type: ignore[arg-type]
        probs[np.arange(decision.actions.size), decision.actions] = 1.0
        return probs

    def update(
        self, users: NDArray[np.float64], actions: NDArray[np.int64], rewards: NDArray[np.float64]
    ) -> dict[str, float]:
        """Nothing to learn; checks the batch and returns no metrics."""
        require_bank(self._bank, "OracleAgent")
        check_feedback(users, actions, rewards, self.d_user, len(self._bank))  # type: ignore[arg-type]
        return {}
