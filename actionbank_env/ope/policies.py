"""Target policies for off-policy evaluation, and a recorder of the logging policy's whole distribution.

- :func:`greedy_policy`: each user gets the best action of a bank under a reward model (how a designer values
  the bank it proposes).
- :func:`agent_policy`: a targeting agent's decision rule, through its ``action_probs(users)`` method.
- :class:`ProbabilityRecorder`: wraps the company's agent during a campaign and keeps, for every logged row,
  the distribution the agent drew from (what MIPS needs to compute the logger's cluster probabilities
  exactly). It only calls ``action_probs`` (no random draw), so the campaign is the same with or without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_int
from actionbank_env.errors import ConfigError
from actionbank_env.ope.data import BanditData, TargetPolicy

if TYPE_CHECKING:
    from actionbank_env.core.actions import ActionBank
    from actionbank_env.protocols import Decision, RewardModel

__all__ = ["greedy_policy", "crossfit_greedy_policy", "CrossFitPolicy", "agent_policy", "ProbabilityRecorder"]


def greedy_policy(
    model: RewardModel,
    users: NDArray[np.float64],
    embeddings: NDArray[np.floating[Any]],
    action_ids: Sequence[str],
    *,
    name: str = "greedy",
) -> tuple[TargetPolicy, NDArray[np.float64]]:
    """The policy serving each user the action with the highest predicted click probability (first on ties).

    Args:
        model: A fitted reward model.
        users: The users, shape (n, d_user).
        embeddings: The bank, shape (K, d_embed).
        action_ids: The bank's ids, length K.
        name: A label for tables.

    Returns:
        ``(policy, predictions)`` with the model's predictions of shape (n, K), reused by the direct method.
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    predictions = np.asarray(model.predict(users, embeddings), dtype=np.float64)
    if predictions.shape != (users.shape[0], embeddings.shape[0]):
        raise ConfigError(
            f"reward model predict must return shape {(users.shape[0], embeddings.shape[0])}, got {predictions.shape}."
        )
    policy = TargetPolicy.from_actions(
        np.argmax(predictions, axis=1).astype(np.int64), embeddings.astype(np.float64), action_ids, name=name
    )
    return policy, predictions


@dataclass(frozen=True, slots=True)
class CrossFitPolicy:
    """A greedy policy whose reward model never saw the rows it is evaluated on.

    Attributes:
        policy: The greedy target policy on every logged user (user ``i`` served by the model of its fold).
        q_hat_target: Each row's fold model over the target bank, shape (n, K1).
        q_hat_logged: Each row's fold model for its served action, shape (n,).
        folds: Fold of each row, shape (n,).
    """

    policy: TargetPolicy
    q_hat_target: NDArray[np.float64]
    q_hat_logged: NDArray[np.float64]
    folds: NDArray[np.int64]


def crossfit_greedy_policy(
    model_factory: Callable[[np.random.Generator], RewardModel],
    data: BanditData,
    embeddings: NDArray[np.floating[Any]],
    action_ids: Sequence[str],
    *,
    n_folds: int = 5,
    rng: np.random.Generator,
    name: str = "greedy",
    tune_once: bool = True,
) -> CrossFitPolicy:
    """The greedy policy of a reward model, cross-fitted: each fold's users are served by a model fitted on the
    other folds.

    A policy fitted on the very rows it is evaluated on is no fixed policy: a flexible model learns the logged
    clicks, its argmax then tends to be the served action exactly where a click was logged, and every
    importance-weighted estimate (and the model's own direct estimate) is biased upwards. Cross-fitting (as in
    double machine learning) keeps each row out of the model that decides and predicts for it, so the
    estimators see an honest policy; its value is that of the designer's procedure trained on
    ``(n_folds - 1) / n_folds`` of the log.

    Args:
        model_factory: Builds an unfitted reward model from a generator (e.g. the designer's model type).
        data: The log.
        embeddings: The target bank, shape (K1, d_embed).
        action_ids: Its ids.
        n_folds: Folds (>= 2); rows are assigned to folds at random.
        rng: Draws the folds and seeds the models.
        name: A label for tables.
        tune_once: For a model that selects its own hyperparameters and offers ``frozen_copy(rng)`` (the
            Bayesian bilinear model), select them once on the whole log and fit every fold at that choice instead
            of repeating the selection per fold (5x fewer selections; the folds' fits stay out-of-fold). Other
            models are fitted per fold as they are.
    """
    n_folds = check_int("crossfit_greedy_policy n_folds", n_folds, low=2)
    n = data.n_rounds
    if n < n_folds:
        raise ConfigError(f"crossfit_greedy_policy needs at least n_folds={n_folds} logged rows, got {n}.")
    target = np.asarray(embeddings, dtype=np.float32)
    logged = np.asarray(data.embeddings, dtype=np.float32)
    folds = rng.permutation(np.arange(n) % n_folds).astype(np.int64)
    q_target = np.empty((n, target.shape[0]))
    q_logged = np.empty(n)
    fold_rngs = rng.spawn(n_folds)
    build: Callable[[np.random.Generator], RewardModel] = model_factory
    if tune_once:
        tuner = model_factory(rng.spawn(1)[0])
        if callable(getattr(tuner, "frozen_copy", None)):  # tune on the whole log, then fit every fold at it
            tuner.fit(data.users, logged[data.actions], data.clicks)
            build = tuner.frozen_copy  # type: ignore[attr-defined]
    for k, model_rng in enumerate(fold_rngs):
        test = folds == k
        train = ~test
        model = build(model_rng)
        model.fit(data.users[train], logged[data.actions[train]], data.clicks[train])
        users, served = data.users[test], data.actions[test]
        q_target[test] = model.predict(users, target)
        q_served = np.empty(users.shape[0])
        for k in np.unique(served):  # each row's served action only, not every logged action for every row
            rows = served == k
            q_served[rows] = np.asarray(model.predict(users[rows], logged[k : k + 1]))[:, 0]
        q_logged[test] = q_served
    policy = TargetPolicy.from_actions(
        np.argmax(q_target, axis=1).astype(np.int64), target.astype(np.float64), action_ids, name=name
    )
    return CrossFitPolicy(policy, q_target, q_logged, folds)


def agent_policy(agent: Any, users: NDArray[np.float64], bank: ActionBank, *, name: str = "agent") -> TargetPolicy:
    """A targeting agent's current decision rule as a target policy over ``bank``.

    The agent must offer ``action_probs(users) -> (n, K)`` (every built-in agent does); ``agent.set_bank(bank)``
    is called first.

    Raises:
        ConfigError: If the agent has no ``action_probs`` or returns a distribution of the wrong shape.
    """
    if not callable(getattr(agent, "action_probs", None)):
        raise ConfigError(
            f"a target policy needs the agent's action distribution; {type(agent).__name__} has no "
            "action_probs(users) -> (n_users, n_actions) method."
        )
    agent.set_bank(bank)
    probs = np.asarray(agent.action_probs(users), dtype=np.float64)
    return TargetPolicy(probs=probs, embeddings=np.asarray(bank.embeddings, np.float64), action_ids=bank.ids, name=name)


class ProbabilityRecorder:
    """A targeting agent that records, at every ``act``, the distribution its inner agent draws from.

    Args:
        agent: Any targeting agent with ``action_probs(users)``.
        campaign_users: The campaign's users in arrival order, shape (n, d_user), to also record the
            campaign-averaged ("balanced") distribution at every one of them: at each ``act`` on B users the
            agent's current rule is evaluated on all n users with weight B / n. Costs n / B extra scorings of
            n users per campaign (fine for the simulator's campaigns of a few thousand users).

    Attributes:
        logging_probs: The recorded distributions of the rows acted on since the last ``set_bank``, (n, K).
        mean_logging_probs: The balanced distributions at ``campaign_users``, (n, K) (needs ``campaign_users``).
    """

    def __init__(self, agent: Any, campaign_users: NDArray[np.float64] | None = None) -> None:
        if not callable(getattr(agent, "action_probs", None)):
            raise ConfigError(
                f"ProbabilityRecorder needs an agent with action_probs(users); {type(agent).__name__} has none."
            )
        self.agent = agent
        self.campaign_users = None if campaign_users is None else np.asarray(campaign_users, dtype=np.float64)
        self._chunks: list[NDArray[np.float64]] = []
        self._mean_sum: NDArray[np.float64] | None = None
        self._n_acted = 0
        self._n_actions = 0

    def set_bank(self, bank: ActionBank) -> None:
        """Switch the inner agent's bank and start a new record."""
        self.agent.set_bank(bank)
        self._chunks = []
        self._mean_sum = None
        self._n_acted = 0
        self._n_actions = len(bank)

    def act(self, users: NDArray[np.float64]) -> Decision:
        """Record the inner agent's distribution for ``users`` (and at every campaign user), then let it act."""
        probs = np.asarray(self.agent.action_probs(users), dtype=np.float64)
        if self.campaign_users is not None:
            everyone = np.asarray(self.agent.action_probs(self.campaign_users), dtype=np.float64)
            weighted = everyone * float(probs.shape[0])
            self._mean_sum = weighted if self._mean_sum is None else self._mean_sum + weighted
        decision: Decision = self.agent.act(users)
        self._chunks.append(probs)
        self._n_acted += probs.shape[0]
        return decision

    def update(
        self, users: NDArray[np.float64], actions: NDArray[np.int64], rewards: NDArray[np.float64]
    ) -> dict[str, float]:
        """Pass the feedback on."""
        return dict(self.agent.update(users, actions, rewards))

    @property
    def logging_probs(self) -> NDArray[np.float64]:
        """Recorded distributions, shape (n_rows, n_actions)."""
        if not self._chunks:
            return np.zeros((0, self._n_actions))
        return np.concatenate(self._chunks, axis=0)

    @property
    def mean_logging_probs(self) -> NDArray[np.float64]:
        """The campaign-averaged distribution at each campaign user, shape (n, n_actions)."""
        if self.campaign_users is None:
            raise ConfigError("ProbabilityRecorder.mean_logging_probs needs campaign_users at construction.")
        if self._mean_sum is None:
            return np.zeros((self.campaign_users.shape[0], self._n_actions))
        return self._mean_sum / self._n_acted
