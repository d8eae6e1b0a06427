"""The generative bank designer: reward model + candidate pool + greedy selection.

Each call of :meth:`GenerativeDesigner.propose`:

1. remembers the bank's actions (id -> text, embedding), so logged ids can be turned into embeddings;
2. writes a pool of ``action_pool_size`` candidates (exploit / explore / targeted) and embeds it with the
   world's embedder;
3. fits the reward model r̂(x, a) on the logged rows of the last ``history_window`` iterations;
4. scores a representative sample of logged users against the bank and the pool in one batch;
5. greedily adds ``action_bank_size`` candidates maximising the bank's value under perfect targeting
   (mean over users of the best r̂), optionally optimistic (r̂ + w * std) and penalised for similarity;
6. retires the least valuable actions if ``max_bank_size`` is exceeded.

The current bank is kept first in the proposal, so the env keeps the ids of retained actions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import resolve_config
from actionbank_env.core.coverage import GreedySelector, retire_least_valuable
from actionbank_env.core.observations import ObservationLog
from actionbank_env.errors import ConfigError
from actionbank_env.protocols import CandidateGenerator, Candidates, DesignerContext, Proposal, Selector
from optimizers._common import (
    ActionMemory,
    GenerativeConfig,
    representative_users,
    training_rows,
    window,
)
from optimizers.generators import CandidatePool, CopywriterCandidateGenerator

if TYPE_CHECKING:
    from actionbank_env.core.actions import ActionBank

__all__ = ["GenerativeDesigner", "GenerativeConfig", "PoolDraw", "draw_pool", "finish_bank"]

logger = logging.getLogger(__name__)


class PoolDraw:
    """The candidate pool of one ``propose`` call with its embeddings and the users it is judged on.

    Attributes:
        pool: The generated candidates.
        embeddings: Their embeddings, float32, shape (n_pool, d_embed).
        users: Representative users, shape (n_rep, d_user). user_weights: (n_rep,), summing to 1.
        log: The windowed log.
        seconds: Time spent writing and embedding the pool.
    """

    __slots__ = ("pool", "embeddings", "users", "user_weights", "log", "seconds")

    def __init__(
        self,
        pool: CandidatePool,
        embeddings: NDArray[np.float32],
        users: NDArray[np.float64],
        user_weights: NDArray[np.float64],
        log: ObservationLog,
        seconds: float,
    ) -> None:
        self.pool = pool
        self.embeddings = embeddings
        self.users = users
        self.user_weights = user_weights
        self.log = log
        self.seconds = seconds

    def candidates(self, budget: int) -> Candidates:
        """The pool as the evaluator sees it, with the designer's ``budget`` of new actions."""
        return Candidates(texts=self.pool.texts, embeddings=self.embeddings, budget=budget)


def draw_pool(
    context: DesignerContext,
    config: GenerativeConfig,
    memory: ActionMemory,
    history: Sequence[ObservationLog],
    bank: ActionBank,
    *,
    pool_rng: np.random.Generator,
    user_rng: np.random.Generator,
    generator: CandidateGenerator | None = None,
) -> PoolDraw:
    """Write and embed the pool and sample the representative users (shared by every designer).

    Designers given generators in the same state draw the same pool and users, so a comparison of designers
    at one seed compares their choices, not their luck. ``generator`` writes the pool (default: a
    :class:`~optimizers.generators.CopywriterCandidateGenerator` over the context's copywriter).
    """
    start = time.perf_counter()
    logs = window(history, config.history_window)
    log = ObservationLog.concat(logs)
    if generator is None:
        generator = CopywriterCandidateGenerator(context.copywriter, config, feature_names=context.feature_names)
    texts_by_id = {i: t for i in np.unique(log.action_ids.astype(str)) if (t := memory.text_of(str(i))) is not None}
    pool = generator.generate(bank, log, config.action_pool_size, rng=pool_rng, texts_by_id=texts_by_id)
    if len(pool):
        embeddings = np.asarray(context.embedder.embed(list(pool.texts)), dtype=np.float32)
    else:
        embeddings = np.zeros((0, bank.d_embed), dtype=np.float32)
    users, weights = representative_users(
        log.users, config.n_representative_users, rng=user_rng, method=config.representative_method
    )
    return PoolDraw(pool, embeddings, users, weights, log, time.perf_counter() - start)


def finish_bank(
    bank: ActionBank,
    new_texts: Sequence[str],
    bank_scores: NDArray[np.float64],
    new_scores: NDArray[np.float64],
    user_weights: NDArray[np.float64],
    max_bank_size: int | None,
) -> tuple[tuple[str, ...], list[str]]:
    """The next bank's texts (current bank first, then the new ones), capped at ``max_bank_size``.

    Returns:
        ``(texts, retired_texts)``.
    """
    texts = [*bank.texts, *new_texts]
    if max_bank_size is None or len(texts) <= max_bank_size:
        return tuple(texts), []
    scores = np.concatenate([bank_scores, new_scores], axis=1)
    kept, retired = retire_least_valuable(scores, max_bank_size, user_weights=user_weights)
    return tuple(texts[i] for i in kept), [texts[i] for i in retired]


class GenerativeDesigner:
    """The generative bank designer (see the module docstring). Registered as ``"generative"``.

    Args:
        context: The world's embedder, copywriter and feature names.
        rng: Fallback generator for :meth:`propose` calls made without one.
        config: A :class:`GenerativeConfig`; keyword ``params`` are applied on top of it.
        generator: Writes the candidate pool (a :class:`~actionbank_env.protocols.CandidateGenerator`; default: a
            :class:`~optimizers.generators.CopywriterCandidateGenerator` over ``context.copywriter`` and ``config``).
        selector: Chooses the new actions from the r̂ scores (a :class:`~actionbank_env.protocols.Selector`;
            default: :class:`~actionbank_env.core.coverage.GreedySelector` with ``config.diversity_weight``, which
            an injected selector replaces).
        **params: Fields of :class:`GenerativeConfig`.

    Example:
        >>> from actionbank_env.core.copywriting import OfflineCopywriter
        >>> from actionbank_env.core.embedders import HashingEmbedder
        >>> ctx = DesignerContext(HashingEmbedder(dim=16), OfflineCopywriter(), 8, tuple(f"f{i}" for i in range(8)))
        >>> GenerativeDesigner(ctx, rng=np.random.default_rng(0), reward_model="linear", action_bank_size=3)
        GenerativeDesigner(reward_model='linear', action_pool_size=2000, action_bank_size=3, max_bank_size=None)
    """

    #: The config whose fields are this designer's keyword parameters.
    config_class: ClassVar[type[GenerativeConfig]] = GenerativeConfig

    def __init__(
        self,
        context: DesignerContext,
        *,
        rng: np.random.Generator,
        config: GenerativeConfig | None = None,
        generator: CandidateGenerator | None = None,
        selector: Selector | None = None,
        **params: Any,
    ) -> None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"GenerativeDesigner rng must be a numpy.random.Generator, got {type(rng).__name__}.")
        self.config = resolve_config(GenerativeConfig, config, params, "GenerativeDesigner")
        if generator is not None and not isinstance(generator, CandidateGenerator):
            raise TypeError(
                f"GenerativeDesigner generator must implement CandidateGenerator (a generate method), "
                f"got {type(generator).__name__}."
            )
        if selector is not None and not isinstance(selector, Selector):
            raise TypeError(
                f"GenerativeDesigner selector must implement Selector (a run method), got {type(selector).__name__}."
            )
        self.generator = generator
        self.selector = (
            selector if selector is not None else GreedySelector(diversity_weight=self.config.diversity_weight)
        )
        self.context = context
        self._rng = rng
        self.memory = ActionMemory()
        if self.config.use_uncertainty:
            from optimizers.reward_models import reward_model_class

            if not hasattr(reward_model_class(self.config.reward_model), "predict_with_uncertainty"):
                raise ConfigError(
                    f"GenerativeConfig.use_uncertainty=True needs a reward model with predictive uncertainty "
                    f"('bayesian_bilinear', 'bayesian_neural' or 'gaussian_process'), got reward_model={self.config.reward_model!r}."
                )

    def __repr__(self) -> str:
        c = self.config
        return (
            f"GenerativeDesigner(reward_model={c.reward_model!r}, action_pool_size={c.action_pool_size}, "
            f"action_bank_size={c.action_bank_size}, max_bank_size={c.max_bank_size})"
        )

    def remember(self, bank: ActionBank) -> None:
        """Record a deployed bank (its texts and embeddings) without proposing."""
        self.memory.remember(bank)

    def _new_model(self, pool_embeddings: NDArray[np.float32], rng: np.random.Generator) -> Any:
        """The unfitted reward model of one ``propose`` call (``config.reward_model``)."""
        from optimizers.reward_models import make_reward_model

        cfg = self.config
        params = dict(cfg.reward_model_params)
        if cfg.fit_on_pool_pca and pool_embeddings.shape[0] and "reference_embeddings" not in params:
            params["reference_embeddings"] = pool_embeddings
        return make_reward_model(cfg.reward_model, rng=rng, **params)

    def _fit(
        self, logs: Sequence[ObservationLog], pool_embeddings: NDArray[np.float32], rng: np.random.Generator
    ) -> tuple[Any, dict[str, Any]]:
        cfg = self.config
        rows = training_rows(
            logs, self.memory, importance_weighting=cfg.importance_weighting, propensity_clip=cfg.propensity_clip
        )
        info: dict[str, Any] = {"n_train_rows": int(rows.clicks.size), "n_unknown_rows": rows.n_unknown}
        if not rows.fittable:
            info["skipped"] = "the log needs at least one click and one non-click to fit a reward model"
            return None, info
        model = self._new_model(pool_embeddings, rng)
        fit_indexed = getattr(model, "fit_indexed", None)
        if fit_indexed is not None:  # the package's models: no (n, d_embed) per-row embedding array
            fit_indexed(rows.users, rows.action_embeddings, rows.action_index, rows.clicks, sample_weight=rows.weights)
        else:  # any RewardModel: the protocol's fit
            model.fit(rows.users, rows.embeddings, rows.clicks, sample_weight=rows.weights)
        return model, info

    def _screen(self, model: Any, draw: PoolDraw, bank: ActionBank) -> NDArray[np.int64]:
        """Pool indices worth scoring on every representative user.

        The whole pool is scored on the ``screen_users`` heaviest representative users; the ``screen_shortlist``
        candidates with the largest single-action gain over the bank there are kept (all of them if the pool is
        no larger). Tree models cost ~20 µs per (user, candidate) pair here, so this keeps a 2,000-text pool
        affordable.
        """
        cfg = self.config
        n_pool = draw.embeddings.shape[0]
        if cfg.screen_shortlist is None or n_pool <= cfg.screen_shortlist:
            return np.arange(n_pool)
        heavy = np.sort(np.argsort(-draw.user_weights, kind="stable")[: cfg.screen_users])
        users, weights = draw.users[heavy], draw.user_weights[heavy]
        n_bank = len(bank)
        scores = model.predict(users, np.concatenate([bank.embeddings, draw.embeddings]) if n_bank else draw.embeddings)
        base = scores[:, :n_bank].max(axis=1) if n_bank else np.zeros(users.shape[0])
        gains = weights @ np.maximum(scores[:, n_bank:] - base[:, None], 0.0)
        return np.sort(np.argsort(-gains, kind="stable")[: cfg.screen_shortlist]).astype(np.int64)

    def propose(
        self, history: Sequence[ObservationLog], bank: ActionBank, *, rng: np.random.Generator | None = None
    ) -> Proposal:
        """The next bank: the current bank's texts, then ``action_bank_size`` new ones (see the module doc).

        Args:
            history: Observation logs of past iterations, oldest first (the last one was served on ``bank``).
            bank: The bank deployed now.
            rng: Source of every random choice of this call (default: the constructor's generator).

        Returns:
            The proposal; ``diagnostics`` holds JSON-ready numbers: expected values of the old and new banks
            under r̂, pool size and mix, fit / generate / select seconds, the chosen texts and their gains,
            and uncertainty statistics when the model has them.
        """
        rng = self._rng if rng is None else rng
        cfg = self.config
        pool_rng, user_rng, fit_rng = rng.spawn(3)
        self.memory.remember(bank)
        diag: dict[str, Any] = {"designer": "generative", "reward_model": cfg.reward_model}
        if cfg.action_bank_size == 0 and cfg.max_bank_size is None:
            diag.update(n_new=0, new_texts=[], retired_texts=[], note="action_bank_size=0 keeps the bank")
            return Proposal(texts=bank.texts, diagnostics=diag)

        draw = draw_pool(
            self.context,
            cfg,
            self.memory,
            history,
            bank,
            pool_rng=pool_rng,
            user_rng=user_rng,
            generator=self.generator,
        )
        pool_view = draw.candidates(cfg.action_bank_size)
        diag.update(draw.pool.summary())
        diag["generate_seconds"] = draw.seconds

        start = time.perf_counter()
        model, fit_info = self._fit(window(history, cfg.history_window), draw.embeddings, fit_rng)
        diag["fit_seconds"] = time.perf_counter() - start
        diag.update(fit_info)
        if model is None or draw.users.shape[0] == 0:
            logger.warning("GenerativeDesigner keeps the bank: %s.", fit_info.get("skipped", "no logged users"))
            diag.update(n_new=0, new_texts=[], retired_texts=[], select_seconds=0.0)
            return Proposal(texts=bank.texts, diagnostics=diag, candidates=pool_view, reward_model=model)

        start = time.perf_counter()
        users, weights = draw.users, draw.user_weights
        n_bank = len(bank)
        screened = self._screen(model, draw, bank)
        pool_embeddings = draw.embeddings[screened]
        all_embeddings = (
            np.concatenate([bank.embeddings.reshape(n_bank, -1), pool_embeddings]) if n_bank else pool_embeddings
        )
        mean_scores = model.predict(users, all_embeddings)
        bank_mean, pool_mean = mean_scores[:, :n_bank], mean_scores[:, n_bank:]
        base_mean = bank_mean.max(axis=1) if n_bank else np.zeros(users.shape[0])
        diag["n_scored_candidates"] = int(screened.size)
        candidates = np.arange(screened.size)
        select_scores, base = pool_mean, base_mean
        if cfg.use_uncertainty and candidates.size:
            single_gain = weights @ (np.maximum(pool_mean, base_mean[:, None]) - base_mean[:, None])
            shortlist = np.sort(np.argsort(-single_gain, kind="stable")[: cfg.uncertainty_shortlist])
            sub = (
                np.concatenate([bank.embeddings.reshape(n_bank, -1), pool_embeddings[shortlist]])
                if n_bank
                else pool_embeddings[shortlist]
            )
            mean_u, std_u = model.predict_with_uncertainty(users, sub)
            optimistic = mean_u + cfg.uncertainty_weight * std_u
            candidates = shortlist
            select_scores = optimistic[:, n_bank:]
            base = optimistic[:, :n_bank].max(axis=1) if n_bank else np.zeros(users.shape[0])
            diag["uncertainty"] = {
                "shortlist": int(shortlist.size),
                "mean_std_bank": float(std_u[:, :n_bank].mean()) if n_bank else None,
                "mean_std_pool": float(std_u[:, n_bank:].mean()) if shortlist.size else None,
                "max_std_pool": float(std_u[:, n_bank:].max()) if shortlist.size else None,
            }
        result = self.selector.run(
            select_scores,
            cfg.action_bank_size,
            base=base,
            user_weights=weights,
            embeddings=pool_embeddings[candidates],
            bank_embeddings=bank.embeddings if n_bank else None,
        )
        chosen = candidates[result.indices]  # columns of pool_mean; pool indices are screened[chosen]
        new_texts = [draw.pool.texts[i] for i in screened[chosen]]
        texts, retired = finish_bank(bank, new_texts, bank_mean, pool_mean[:, chosen], weights, cfg.max_bank_size)
        diag["select_seconds"] = time.perf_counter() - start

        final_cols = np.concatenate([bank_mean, pool_mean[:, chosen]], axis=1)
        keep = [i for i, t in enumerate([*bank.texts, *new_texts]) if t in set(texts)]
        diag.update(
            n_new=len(new_texts),
            n_representative_users=int(users.shape[0]),
            expected_value_old=float(weights @ base_mean) if n_bank else 0.0,
            expected_value_new=float(weights @ final_cols[:, keep].max(axis=1)) if keep else 0.0,
            new_texts=new_texts,
            new_modes=[draw.pool.modes[i] for i in screened[chosen]],
            new_gains=result.gains.tolist(),
            new_coverage_gains=result.coverage_gains.tolist(),
            new_mean_scores=[float(weights @ pool_mean[:, i]) for i in chosen],
            retired_texts=retired,
            selection_evaluations=result.n_evaluations,
            pool_expected_value_max=float(weights @ pool_mean.max(axis=1)) if pool_mean.size else None,
        )
        return Proposal(texts=texts, diagnostics=diag, candidates=pool_view, reward_model=model)
