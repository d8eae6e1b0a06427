"""Baseline bank designers: keep the bank, add random or maximally diverse candidates, or (evaluation only) the oracle
and the well-specified reference.

``random``, ``diverse``, ``oracle`` and ``reference`` draw the pool exactly as
:class:`~optimizers.generative.GenerativeDesigner` does (same generator streams for the same ``rng``), so at one seed
these designers choose from one pool and their bank values differ only by their choices.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import resolve_config
from actionbank_env.core.coverage import GreedySelector, cosine_similarity
from actionbank_env.errors import ConfigError
from actionbank_env.protocols import DesignerContext, Proposal
from optimizers._common import ActionMemory, GenerativeConfig
from optimizers.generative import GenerativeDesigner, PoolDraw, draw_pool, finish_bank

if TYPE_CHECKING:
    from actionbank_env.core.actions import ActionBank
    from actionbank_env.core.observations import ObservationLog

__all__ = ["KeepDesigner", "RandomDesigner", "DiverseDesigner", "OracleDesigner", "ReferenceDesigner"]


class _PoolDesigner:
    _name = "PoolDesigner"
    #: The config whose fields are this designer's keyword parameters (the generative designer's: one parameter set
    #: serves every designer of a comparison).
    config_class: ClassVar[type[GenerativeConfig]] = GenerativeConfig

    def __init__(
        self,
        context: DesignerContext,
        *,
        rng: np.random.Generator,
        config: GenerativeConfig | None = None,
        **params: Any,
    ) -> None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"{self._name} rng must be a numpy.random.Generator, got {type(rng).__name__}.")
        self.config = resolve_config(GenerativeConfig, config, params, self._name)
        self.context = context
        self._rng = rng
        self.memory = ActionMemory()

    def remember(self, bank: ActionBank) -> None:
        """Record a deployed bank (its texts and embeddings) without proposing."""
        self.memory.remember(bank)

    def _propose_by(
        self,
        history: Sequence[ObservationLog],
        bank: ActionBank,
        rng: np.random.Generator,
        name: str,
        choose: Callable[[PoolDraw, int, np.random.Generator], NDArray[np.int64]],
    ) -> Proposal:
        """The bank plus the pool candidates ``choose(draw, k, pick_rng)`` picks, for designers that know no values.

        The pool and users come from the same streams as every designer's; with ``max_bank_size`` the retired
        actions are drawn uniformly.
        """
        cfg = self.config
        pool_rng, user_rng, pick_rng = rng.spawn(3)
        self.memory.remember(bank)
        draw = draw_pool(self.context, cfg, self.memory, history, bank, pool_rng=pool_rng, user_rng=user_rng)
        start = time.perf_counter()
        chosen = choose(draw, min(cfg.action_bank_size, len(draw.pool)), pick_rng)
        new_texts = [draw.pool.texts[i] for i in chosen]
        texts = [*bank.texts, *new_texts]
        retired: list[str] = []
        if cfg.max_bank_size is not None and len(texts) > cfg.max_bank_size:
            drop = set(pick_rng.choice(len(texts), size=len(texts) - cfg.max_bank_size, replace=False).tolist())
            retired = [t for i, t in enumerate(texts) if i in drop]
            texts = [t for i, t in enumerate(texts) if i not in drop]
        diag = {
            "designer": name,
            **draw.pool.summary(),
            "generate_seconds": draw.seconds,
            "select_seconds": time.perf_counter() - start,
            "n_new": len(new_texts),
            "new_texts": new_texts,
            "new_modes": [draw.pool.modes[i] for i in chosen],
            "retired_texts": retired,
        }
        return Proposal(texts=tuple(texts), diagnostics=diag, candidates=draw.candidates(cfg.action_bank_size))

    def __repr__(self) -> str:
        c = self.config
        return (
            f"{self._name}(action_pool_size={c.action_pool_size}, action_bank_size={c.action_bank_size}, "
            f"max_bank_size={c.max_bank_size})"
        )


class KeepDesigner(_PoolDesigner):
    """Proposes the current bank unchanged (the no-optimisation baseline). Registered as ``"keep"``.

    Accepts the :class:`~optimizers._common.GenerativeConfig` fields (validated, unused).
    """

    _name = "KeepDesigner"
    #: It never changes the bank (a fixed-size targeting policy fits whatever its pool settings say).
    changes_bank: ClassVar[bool] = False

    def propose(
        self, history: Sequence[ObservationLog], bank: ActionBank, *, rng: np.random.Generator | None = None
    ) -> Proposal:
        """The current bank's texts."""
        return Proposal(texts=bank.texts, diagnostics={"designer": "keep", "n_new": 0, "new_texts": []})


class RandomDesigner(_PoolDesigner):
    """Adds ``action_bank_size`` candidates drawn uniformly from the same pool. Registered as ``"random"``.

    With ``max_bank_size``, the retired actions are drawn uniformly too (it knows no values).
    """

    _name = "RandomDesigner"

    def propose(
        self, history: Sequence[ObservationLog], bank: ActionBank, *, rng: np.random.Generator | None = None
    ) -> Proposal:
        """The current bank plus random candidates from the pool."""

        def uniform(draw: PoolDraw, k: int, pick_rng: np.random.Generator) -> NDArray[np.int64]:
            return pick_rng.choice(len(draw.pool), size=k, replace=False) if k else np.zeros(0, dtype=np.int64)

        return self._propose_by(history, bank, self._rng if rng is None else rng, "random", uniform)


def farthest_point_order(
    candidates: NDArray[np.floating[Any]], anchors: NDArray[np.floating[Any]], k: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    """Greedy farthest-point choice of ``k`` candidate rows under cosine similarity (Gonzalez, 1985).

    Each pick is the candidate whose largest cosine similarity to ``anchors`` and to the picks before it is the
    smallest (ties broken uniformly at random by ``rng``), so the picks spread over directions the anchors do not
    cover. One (n_candidates, n_anchors) similarity pass, then one column per pick.

    Args:
        candidates: Candidate embeddings, shape (n, d).
        anchors: What is already covered (the bank), shape (m, d); m may be 0.
        k: Picks (capped at n).
        rng: Breaks ties.

    Example:
        >>> e = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [-1.0, 0.0]])
        >>> farthest_point_order(e, e[:1], 2, np.random.default_rng(0)).tolist()
        [3, 2]
    """
    n = candidates.shape[0]
    k = min(int(k), n)
    closest = cosine_similarity(candidates, anchors).max(axis=1) if anchors.shape[0] else np.full(n, -np.inf)
    tie_break: NDArray[np.float64] = np.asarray(rng.random(n), dtype=np.float64)
    picks = np.empty(k, dtype=np.int64)
    for j in range(k):  # k picks (10 by default), each a vector operation over the pool
        i = int(np.lexsort((tie_break, closest))[0])
        picks[j] = i
        closest = np.maximum(closest, cosine_similarity(candidates, candidates[i : i + 1])[:, 0])
        closest[i] = np.inf
    return picks


class DiverseDesigner(_PoolDesigner):
    """Adds the candidates least like the bank and each other (no reward model). Registered as ``"diverse"``.

    The model-free coverage baseline: from the same pool as the other designers it takes ``action_bank_size``
    candidates by greedy farthest-point selection in cosine similarity, starting from the bank's embeddings
    (:func:`farthest_point_order`). A reward-model designer that beats ``random`` but not ``diverse`` is
    gaining from spreading the bank over the embedding space, not from what its model learned. With
    ``max_bank_size`` the retired actions are drawn uniformly (it knows no values), as ``random`` does.
    """

    _name = "DiverseDesigner"

    def propose(
        self, history: Sequence[ObservationLog], bank: ActionBank, *, rng: np.random.Generator | None = None
    ) -> Proposal:
        """The current bank plus the pool's candidates farthest from it."""
        anchors = np.asarray(bank.embeddings, dtype=np.float64).reshape(len(bank), -1)

        def farthest(draw: PoolDraw, k: int, pick_rng: np.random.Generator) -> NDArray[np.int64]:
            return farthest_point_order(draw.embeddings, anchors, k, pick_rng)

        return self._propose_by(history, bank, self._rng if rng is None else rng, "diverse", farthest)


class OracleDesigner(_PoolDesigner):
    """Greedy selection on the ground truth over the same pool: an upper bound, for evaluation only.

    Registered as ``"oracle"``. It reads the world's ground truth (``evaluation_only = True``: the registry
    hands it ``context.ground_truth``), which no real designer may see; its bank value is the "V_oracle" of
    :func:`actionbank_env.evaluation.improvement_captured`. It maximises the true bank value over the same
    representative users as the other designers, with no diversity penalty and no uncertainty bonus.
    """

    _name = "OracleDesigner"
    evaluation_only: ClassVar[bool] = True

    def __init__(
        self,
        context: DesignerContext,
        *,
        rng: np.random.Generator,
        config: GenerativeConfig | None = None,
        **params: Any,
    ) -> None:
        super().__init__(context, rng=rng, config=config, **params)
        if context.ground_truth is None:
            raise ConfigError(
                'OracleDesigner needs the ground truth: build it with make_designer("oracle", world, ...), which gives '
                "evaluation-only designers the world's ground truth; it is for evaluation only."
            )

    def propose(
        self, history: Sequence[ObservationLog], bank: ActionBank, *, rng: np.random.Generator | None = None
    ) -> Proposal:
        """The current bank plus the greedy-best candidates under the true click probabilities."""
        rng = self._rng if rng is None else rng
        cfg = self.config
        pool_rng, user_rng, _ = rng.spawn(3)
        self.memory.remember(bank)
        draw = draw_pool(self.context, cfg, self.memory, history, bank, pool_rng=pool_rng, user_rng=user_rng)
        candidates = draw.candidates(cfg.action_bank_size)
        start = time.perf_counter()
        truth = self.context.ground_truth
        assert truth is not None  # checked in __init__
        users, weights = draw.users, draw.user_weights
        n_bank = len(bank)
        if users.shape[0] == 0:
            # No logged users: judge on the bank alone (nothing to optimise for).
            return Proposal(
                texts=bank.texts, diagnostics={"designer": "oracle", "n_new": 0, "new_texts": []}, candidates=candidates
            )
        bank_true = truth.click_prob(users, bank.embeddings) if n_bank else np.zeros((users.shape[0], 0))
        pool_true = truth.click_prob(users, draw.embeddings) if len(draw.pool) else np.zeros((users.shape[0], 0))
        base = bank_true.max(axis=1) if n_bank else np.zeros(users.shape[0])
        result = GreedySelector().run(pool_true, cfg.action_bank_size, base=base, user_weights=weights)
        new_texts = [draw.pool.texts[i] for i in result.indices]
        texts, retired = finish_bank(
            bank, new_texts, bank_true, pool_true[:, result.indices], weights, cfg.max_bank_size
        )
        diag = {
            "designer": "oracle",
            "evaluation_only": True,
            **draw.pool.summary(),
            "generate_seconds": draw.seconds,
            "select_seconds": time.perf_counter() - start,
            "n_new": len(new_texts),
            "new_texts": new_texts,
            "new_modes": [draw.pool.modes[i] for i in result.indices],
            "new_gains": result.gains.tolist(),
            "true_value_old": result.base_value,
            "true_value_new": result.value,
            "retired_texts": retired,
        }
        return Proposal(texts=texts, diagnostics=diag, candidates=candidates)


class ReferenceDesigner(GenerativeDesigner):
    """The generative designer given the ground truth's functional form: what the logs can teach (evaluation only).

    Registered as ``"reference"``. Everything is the generative designer's (same pool, representative users,
    screening and greedy selection with the same diversity penalty, same configuration), except the reward model:
    :class:`~optimizers.reward_models.well_specified.WellSpecifiedRewardModel`, a logistic bilinear model on the
    ground truth's own user and action bases whose weights are fitted on the same logs (``reward_model`` and
    ``reward_model_params`` are ignored). So the gap between ``generative`` and ``reference`` on the same world
    seeds is what the designer loses by not knowing how the world reads a text, and ``reference`` itself shows how
    much any designer could capture from logs of this size: the ceiling to report beside a designer's result. It
    reads the ground truth's structure (``evaluation_only = True``), which no real designer may.

    Raises:
        ConfigError: Without the ground truth, for a family without a linear design (GMM), or with
            ``use_uncertainty=True`` (the model has no predictive uncertainty).
    """

    evaluation_only: ClassVar[bool] = True

    def __init__(self, context: DesignerContext, *, rng: np.random.Generator, **kwargs: Any) -> None:
        super().__init__(context, rng=rng, **kwargs)
        truth = context.ground_truth
        if truth is None:
            raise ConfigError(
                'ReferenceDesigner needs the ground truth: build it with make_designer("reference", world, ...), which '
                "gives evaluation-only designers the world's ground truth; it is for evaluation only."
            )
        if not callable(getattr(truth, "design", None)):
            raise ConfigError(
                f"ReferenceDesigner needs a ground truth with a linear design (mixture_of_experts or semantic), "
                f"got {truth.name!r}, which has none."
            )
        if self.config.use_uncertainty:
            raise ConfigError(
                "ReferenceDesigner: use_uncertainty=True needs predictive uncertainty, which the well-specified model "
                "does not give; got use_uncertainty=True."
            )

    def __repr__(self) -> str:
        c = self.config
        return (
            f"ReferenceDesigner(action_pool_size={c.action_pool_size}, action_bank_size={c.action_bank_size}, "
            f"max_bank_size={c.max_bank_size})"
        )

    def _new_model(self, pool_embeddings: NDArray[np.float32], rng: np.random.Generator) -> Any:
        from optimizers.reward_models.well_specified import WellSpecifiedRewardModel

        reference = pool_embeddings if self.config.fit_on_pool_pca and pool_embeddings.shape[0] else None
        return WellSpecifiedRewardModel(self.context.ground_truth, reference_embeddings=reference)

    def propose(
        self, history: Sequence[ObservationLog], bank: ActionBank, *, rng: np.random.Generator | None = None
    ) -> Proposal:
        """The generative designer's proposal with the well-specified model (see the class docstring)."""
        proposal = super().propose(history, bank, rng=rng)
        proposal.diagnostics.update(designer="reference", reward_model="well_specified", evaluation_only=True)
        return proposal
