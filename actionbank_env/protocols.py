"""The small contracts between the world, the targeting agents and the bank designers.

Only numpy and the core data types are imported here, so agents/ and optimizers/ can depend on this
module without pulling in gymnasium.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_array

if TYPE_CHECKING:
    from typing import Self

    from actionbank_env.core.actions import ActionBank
    from actionbank_env.core.copywriting import Copywriter
    from actionbank_env.core.coverage import SelectionResult
    from actionbank_env.core.embedders import Embedder
    from actionbank_env.core.ground_truth import GroundTruth
    from actionbank_env.core.observations import ObservationLog

__all__ = [
    "Decision",
    "TargetingAgent",
    "AgentContext",
    "RewardModel",
    "CandidateGenerator",
    "GeneratedPool",
    "Selector",
    "BankDesigner",
    "DesignerContext",
    "Proposal",
    "Candidates",
]


@dataclass(frozen=True, slots=True)
class Decision:
    """What a targeting agent chose for a batch of users.

    Attributes:
        actions: Indices into the current bank, int64, shape (B,).
        propensities: Probability the agent gave each chosen index, float64 in (0, 1], shape (B,)
            (1.0 for a deterministic argmax).

    Example:
        >>> Decision(np.array([0, 2]), np.array([1.0, 0.5])).actions.dtype
        dtype('int64')
    """

    actions: NDArray[np.int64]
    propensities: NDArray[np.float64]

    def __post_init__(self) -> None:
        actions = check_array("Decision.actions", self.actions, ndim=1, dtype=np.int64)
        props = check_array("Decision.propensities", self.propensities, shape=(actions.shape[0],), low=0.0, high=1.0)
        object.__setattr__(self, "actions", actions)
        object.__setattr__(self, "propensities", props)


@dataclass(frozen=True, slots=True)
class AgentContext:
    """What the world tells a targeting agent when it is built.

    Attributes:
        d_user: Number of user features.
        d_embed: Action embedding dimension.
        feature_names: Names of the user features, length d_user.
        reference_embeddings: Embeddings of a world-side reference sample of texts, shape (n_ref, d_embed),
            for fitting projections (e.g. LinUCB's PCA) that stay meaningful for later actions.
        ground_truth: Only for evaluation-only agents (the oracle); ``None`` for every real agent.
    """

    d_user: int
    d_embed: int
    feature_names: tuple[str, ...]
    reference_embeddings: NDArray[np.float32]
    ground_truth: GroundTruth | None = field(default=None, repr=False)


@runtime_checkable
class TargetingAgent(Protocol):
    """A company targeting policy (inner loop). Batch-first: one user is a batch of one.

    Agents are built as ``AgentClass(context, rng=rng, **hyperparameters)`` by the registry.
    """

    def set_bank(self, bank: ActionBank) -> None:
        """Switch to a new bank, keeping what was learned about retained action ids."""
        ...

    def act(self, users: NDArray[np.float64]) -> Decision:
        """Choose an action for each user, shape (B, d_user) -> Decision of length B."""
        ...

    def update(
        self, users: NDArray[np.float64], actions: NDArray[np.int64], rewards: NDArray[np.float64]
    ) -> dict[str, float]:
        """Learn from a batch of (user, action index, reward); returns metrics to log."""
        ...


@runtime_checkable
class RewardModel(Protocol):
    """Learns r(x, a) = P(click | user x, action embedding e_a) from logged data.

    Fitted attributes end in ``_``. ``predict`` scores every user against every action in one batch.
    Models that have predictive uncertainty also implement
    ``predict_with_uncertainty(users, embeddings) -> (mean, std)``.
    """

    def fit(
        self,
        users: NDArray[np.float64],
        embeddings: NDArray[np.float32],
        clicks: NDArray[np.float64],
        sample_weight: NDArray[np.float64] | None = None,
    ) -> Self:
        """Fit on logged rows: users (n, d_user), embeddings of the served action (n, d_embed), clicks (n,)."""
        ...

    def predict(self, users: NDArray[np.float64], embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
        """Click probabilities, users (n, d_user) x embeddings (m, d_embed) -> (n, m)."""
        ...


class GeneratedPool(Protocol):
    """What a :class:`CandidateGenerator` returns: distinct candidate texts with the mode that wrote each."""

    texts: tuple[str, ...]
    modes: tuple[str, ...]

    def __len__(self) -> int: ...

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (without the texts)."""
        ...


@runtime_checkable
class CandidateGenerator(Protocol):
    """Writes the candidate pool of the generative designer (injected as ``GenerativeDesigner(generator=...)``)."""

    def generate(
        self,
        bank: ActionBank | None,
        log: ObservationLog,
        n: int,
        *,
        rng: np.random.Generator,
        texts_by_id: Mapping[str, str] | None = None,
    ) -> GeneratedPool:
        """Up to ``n`` distinct candidate texts, none in ``bank``."""
        ...


@runtime_checkable
class Selector(Protocol):
    """Chooses which candidates join the bank (injected as ``GenerativeDesigner(selector=...)``)."""

    def run(
        self,
        scores: NDArray[np.float64],
        k: int,
        *,
        base: NDArray[np.float64] | None = None,
        user_weights: NDArray[np.float64] | None = None,
        embeddings: NDArray[np.floating[Any]] | None = None,
        bank_embeddings: NDArray[np.floating[Any]] | None = None,
    ) -> SelectionResult:
        """Up to ``k`` candidates (columns of ``scores``) with their gains, in the order chosen."""
        ...


@dataclass(frozen=True, slots=True)
class Candidates:
    """The candidate pool a designer chose from, for the evaluator (the oracle bank over the same pool).

    Attributes:
        texts: The candidate texts, length n.
        embeddings: Their embeddings by the world's embedder, float32, shape (n, d_embed).
        budget: How many of them the designer could add to the bank (its ``action_bank_size``).
    """

    texts: tuple[str, ...]
    embeddings: NDArray[np.float32] = field(repr=False)
    budget: int


@dataclass(frozen=True, slots=True)
class Proposal:
    """A bank designer's answer: the next bank's texts and what it found out on the way.

    The runner takes everything it needs from a designer from here (never from the designer's attributes).

    Attributes:
        texts: The next bank, in order (retained texts keep their ids when deployed).
        diagnostics: JSON-ready numbers and notes (expected value, fit time, ...).
        candidates: The pool it chose from (``None`` when it drew none): the evaluator's oracle picks from it.
        reward_model: The reward model it fitted (``None`` when it fitted none): the evaluator measures its
            fidelity against the ground truth.
    """

    texts: tuple[str, ...]
    diagnostics: dict[str, Any] = field(default_factory=dict)
    candidates: Candidates | None = field(default=None, repr=False)
    reward_model: RewardModel | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class DesignerContext:
    """What the world tells a bank designer when it is built.

    Attributes:
        embedder: The world's embedder (candidates must be embedded the same way as the bank).
        copywriter: The text source for candidates (OpenAI when configured, offline otherwise).
        d_user: Number of user features.
        feature_names: Names of the user features.
        ground_truth: Only for evaluation-only designers (the oracle); ``None`` otherwise.
    """

    embedder: Embedder
    copywriter: Copywriter
    d_user: int
    feature_names: tuple[str, ...]
    ground_truth: GroundTruth | None = field(default=None, repr=False)


@runtime_checkable
class BankDesigner(Protocol):
    """An outer-loop agent: reads the observation history and proposes the next bank.

    Designers are built as ``DesignerClass(context, rng=rng, **params)`` by the registry (a class with
    ``evaluation_only = True`` is given the ground truth in its context).
    """

    def propose(self, history: Sequence[ObservationLog], bank: ActionBank, *, rng: np.random.Generator) -> Proposal:
        """Return the next bank's texts (the current bank's texts it keeps come first)."""
        ...

    def remember(self, bank: ActionBank) -> None:
        """Record a deployed bank without proposing (a resumed run replays the iterations it completed before)."""
        ...
