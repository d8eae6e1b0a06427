"""The world: population, ground truth, embedder and initial bank, all drawn once from ``world_seed``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_bool, check_choice, check_component, check_int
from actionbank_env.core.actions import ActionBank, ActionCatalog
from actionbank_env.core.copywriting import CopyBrief, Copywriter, OfflineCopywriter
from actionbank_env.core.embedders import EMBEDDERS, Embedder, make_embedder
from actionbank_env.core.ground_truth import (
    GROUND_TRUTHS,
    GroundTruth,
    GroundTruthConfig,
    build_ground_truth,
    extra_calibration_texts,
)
from actionbank_env.core.users import UserBatch, UserPopulation
from actionbank_env.errors import ConfigError
from actionbank_env.protocols import AgentContext

if TYPE_CHECKING:
    from actionbank_env.evaluation import WorldCard

__all__ = ["WorldConfig", "World", "spawn_generators"]


def spawn_generators(seed: int | np.random.SeedSequence, n: int) -> list[np.random.Generator]:
    """``n`` independent generators from one seed (``SeedSequence(seed).spawn(n)``).

    Example:
        >>> a, b = spawn_generators(0, 2)
        >>> bool(a.random() != b.random())
        True
    """
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(check_int("seed", seed, low=0))
    return [np.random.default_rng(s) for s in seq.spawn(n)]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorldConfig:
    """Everything that defines a world. Same config -> the same world, in any process.

    Attributes:
        world_seed: Draws the ground-truth weights, the reference texts, the projection basis and the
            initial bank (not the users of an episode: those come from the episode's seed).
        initial_actions: Size of the initial bank.
        embedder: ``"minilm"`` (all-MiniLM-L6-v2, offline), ``"hashing"`` (fast, no model) or ``"openai"``.
        embedding_dim: Dimension of the hashing embedder (ignored by the others).
        cache_embeddings: Keep embeddings in the persistent SQLite cache (MiniLM, OpenAI).
        ground_truth: ``"mixture_of_experts"``, ``"gmm"`` or ``"semantic"``.
            ``semantic`` needs a semantic embedder (not ``hashing``).
        base_ctr: Mean click probability of a random bank under random targeting (marketing email: a few
            percent of delivered emails are clicked; see the README's "World card" section).
        best_lift: How many times better the per-user best action of a random initial bank is.
        personalization: Share of the logit variance that is user x action interaction (mixture of experts,
            semantic).
        spectrum_power: Mixture of experts: how preferences load on the principal components of the text
            embeddings, from 0 (whitened: every direction of text variation matters as much as the main ones)
            to 1 (each direction in proportion to the texts' own variance along it). See
            :class:`~actionbank_env.core.ground_truth.GroundTruthConfig`.
        n_experts: Experts of the mixture of experts.
        projection_dim: Principal components of the embedding space the ground truth sees.
        gmm_components: Components of the GMM ground truth.
        density_scale_factor: GMM density scale (relative to the calibrated one).
        min_utility: GMM lowest click probability.
        max_utility: Highest click probability of any user and text, every family (the ceiling of the link).
        n_reference_texts: Texts in each of the two reference samples drawn at construction: the ground
            truth's own (fits its projection and calibrates it; never shown to agents) and the company's
            (``reference_texts``: what agents and designers may fit their projections on); none:
            max(512, initial_actions).
        n_reference_users: Users drawn at construction to calibrate the ground truth.
    """

    world_seed: int = 0
    initial_actions: int = 30
    embedder: str = "minilm"
    embedding_dim: int = 256
    cache_embeddings: bool = True
    ground_truth: str = "mixture_of_experts"
    base_ctr: float = 0.05
    best_lift: float = 2.0
    personalization: float = 0.85
    spectrum_power: float = 1.0
    n_experts: int = 4
    projection_dim: int = 16
    gmm_components: int = 8
    density_scale_factor: float = 1.0
    min_utility: float = 0.005
    max_utility: float = 0.35
    n_reference_texts: int | None = None
    n_reference_users: int = 4096

    @property
    def reference_text_count(self) -> int:
        """``n_reference_texts`` as resolved by the constructor (never ``None`` after it)."""
        return check_int("WorldConfig.n_reference_texts", self.n_reference_texts, low=16)

    def __post_init__(self) -> None:
        if self.n_reference_texts is None:  # resolved here, so every copy and record holds the number
            object.__setattr__(
                self, "n_reference_texts", max(512, check_int("WorldConfig.initial_actions", self.initial_actions))
            )
        check_int("WorldConfig.world_seed", self.world_seed, low=0)
        check_int("WorldConfig.initial_actions", self.initial_actions, low=2, high=10_000)
        check_component("WorldConfig.embedder", self.embedder, EMBEDDERS)
        check_int("WorldConfig.embedding_dim", self.embedding_dim, low=8, high=8192)
        check_bool("WorldConfig.cache_embeddings", self.cache_embeddings)
        check_choice("WorldConfig.ground_truth", self.ground_truth, GROUND_TRUTHS)
        n_reference_texts = check_int("WorldConfig.n_reference_texts", self.n_reference_texts, low=16, high=100_000)
        check_int("WorldConfig.n_reference_users", self.n_reference_users, low=64, high=10_000_000)
        if n_reference_texts < self.initial_actions:
            raise ConfigError(
                f"WorldConfig.n_reference_texts={n_reference_texts} must be >= initial_actions={self.initial_actions}."
            )
        if self.ground_truth == "semantic" and self.embedder == "hashing":
            raise ConfigError(
                "WorldConfig.ground_truth='semantic' needs a semantic embedder ('minilm' or 'openai'), got "
                "embedder='hashing': its concepts are matched by meaning, which feature hashing does not encode."
            )
        self.ground_truth_config()  # validates the ground-truth fields with their own messages

    def ground_truth_config(self) -> GroundTruthConfig:
        """The ground-truth part of the config."""
        return GroundTruthConfig(
            base_ctr=self.base_ctr,
            best_lift=self.best_lift,
            bank_size=min(self.initial_actions, self.reference_text_count),
            personalization=self.personalization,
            spectrum_power=self.spectrum_power,
            n_experts=self.n_experts,
            projection_dim=self.projection_dim,
            gmm_components=self.gmm_components,
            density_scale_factor=self.density_scale_factor,
            min_utility=self.min_utility,
            max_utility=self.max_utility,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``WorldConfig(**d)`` reads it back."""
        return asdict(self)


class World:
    """A world built once from a :class:`WorldConfig`.

    Attributes:
        config: The config it was built from.
        population: Where users come from.
        embedder: Embeds texts (the world's; every bank and candidate goes through it).
        ground_truth: P(click | user, action). Only envs and the evaluator may read it.
        reference_texts: The company's reference sample of texts (an independent draw from the copywriter,
            disjoint from the ground truth's): what agents and designers may fit projections on.
        reference_embeddings: Their embeddings, shape (n_reference_texts, d_embed).
        ground_truth_reference_texts: The ground truth's own reference sample (it fitted its projection and
            was calibrated on these). Evaluation only: never handed to agents or designers.
        initial_bank: The bank deployed at iteration 0.

    Example:
        >>> world = World.build(WorldConfig(embedder="hashing", initial_actions=5, n_reference_texts=64,
        ...                                 n_reference_users=256))
        >>> len(world.initial_bank), world.d_user
        (5, 8)
    """

    def __init__(
        self,
        config: WorldConfig,
        *,
        population: UserPopulation,
        embedder: Embedder,
        ground_truth: GroundTruth,
        reference_texts: tuple[str, ...],
        reference_embeddings: NDArray[np.float32],
        initial_bank: ActionBank,
        catalog: ActionCatalog,
        ground_truth_reference_texts: tuple[str, ...] = (),
    ) -> None:
        self.config = config
        self.population = population
        self.embedder = embedder
        self.ground_truth = ground_truth
        self.reference_texts = reference_texts
        reference_embeddings.setflags(write=False)
        self.reference_embeddings = reference_embeddings
        self.ground_truth_reference_texts = ground_truth_reference_texts
        self.initial_bank = initial_bank
        self._catalog = catalog

    @classmethod
    def build(
        cls,
        config: WorldConfig | None = None,
        *,
        embedder: Embedder | None = None,
        copywriter: Copywriter | None = None,
        population: UserPopulation | None = None,
        api_key: str | None = None,
    ) -> World:
        """Draw a world from ``config.world_seed``.

        Args:
            config: The world's settings (defaults if ``None``).
            embedder: Use this embedder instead of ``config.embedder`` (e.g. your own model).
            copywriter: Source of the reference texts and the initial bank (offline by default).
            population: Use this population instead of the default archetypes.
            api_key: The OpenAI key of ``embedder="openai"`` (default: the ``OPENAI_API_KEY`` environment variable).
        """
        config = config or WorldConfig()
        if embedder is None:
            kwargs: dict[str, Any] = {"dim": config.embedding_dim} if config.embedder == "hashing" else {}
            if config.embedder == "openai" and api_key is not None:
                kwargs["api_key"] = api_key
            embedder = make_embedder(config.embedder, cache=config.cache_embeddings, **kwargs)
        elif config.ground_truth == "semantic" and not getattr(embedder, "semantic", True):
            raise ConfigError(
                f"WorldConfig.ground_truth='semantic' needs a semantic embedder, got {embedder.name!r} "
                "(its concepts are matched by meaning, which this embedder does not encode)."
            )
        copywriter = copywriter or OfflineCopywriter()
        population = population or UserPopulation()
        # Streams by index (a sixth leaves the first five as they were): the gmm family's extra calibration texts
        # come from the sixth, so the other families' worlds do not change with it.
        text_rng, user_rng, truth_rng, bank_rng, company_text_rng, calibration_rng = spawn_generators(
            config.world_seed, 6
        )
        n_texts = config.reference_text_count
        truth_texts = tuple(copywriter.write(n_texts, rng=text_rng))
        # The company's sample: an independent draw that shares no text with the ground truth's.
        reference_texts = tuple(copywriter.write(n_texts, rng=company_text_rng, exclude=truth_texts))
        n_extra = extra_calibration_texts(config.ground_truth, n_texts)
        calibration_texts = tuple(
            copywriter.write(n_extra, rng=calibration_rng, exclude=truth_texts + reference_texts) if n_extra else ()
        )
        initial_texts = copywriter.write(config.initial_actions, rng=bank_rng, brief=CopyBrief(mode="explore"))
        all_embeddings = np.asarray(
            embedder.embed(list(truth_texts) + list(reference_texts) + list(initial_texts) + list(calibration_texts)),
            dtype=np.float32,
        )
        truth_embeddings = all_embeddings[: len(truth_texts)]
        reference_embeddings = all_embeddings[len(truth_texts) : len(truth_texts) + len(reference_texts)].copy()
        calibration_embeddings = all_embeddings[len(all_embeddings) - len(calibration_texts) :]
        reference_users = population.sample(config.n_reference_users, rng=user_rng).features
        ground_truth = build_ground_truth(
            config.ground_truth,
            config.ground_truth_config(),
            rng=truth_rng,
            reference_users=reference_users,
            reference_embeddings=truth_embeddings,
            embed=embedder.embed,
            feature_names=population.feature_names,
            calibration_embeddings=calibration_embeddings,
        )
        catalog = ActionCatalog()
        initial_bank = catalog.bank(initial_texts, embedder, origin="initial", iteration=0)
        return cls(
            config,
            population=population,
            embedder=embedder,
            ground_truth=ground_truth,
            reference_texts=reference_texts,
            reference_embeddings=reference_embeddings,
            initial_bank=initial_bank,
            catalog=catalog,
            ground_truth_reference_texts=truth_texts + calibration_texts,
        )

    @property
    def d_user(self) -> int:
        """Number of user features."""
        return self.population.d_user

    @property
    def d_embed(self) -> int:
        """Embedding dimension."""
        return int(self.reference_embeddings.shape[1])

    @property
    def feature_names(self) -> tuple[str, ...]:
        """User feature names."""
        return self.population.feature_names

    def new_catalog(self) -> ActionCatalog:
        """A fresh catalog holding the initial bank (ids continue after it)."""
        return self._catalog.copy()

    def sample_users(self, n_users: int, *, rng: np.random.Generator, first_id: int = 0) -> UserBatch:
        """Draw users from the population."""
        return self.population.sample(n_users, rng=rng, first_id=first_id)

    def agent_context(self, *, evaluation_only: bool = False) -> AgentContext:
        """What a targeting agent is told at construction (ground truth only for evaluation-only agents).

        Its reference embeddings are the company's own sample (:attr:`reference_embeddings`), never the
        texts the ground truth was fitted on.
        """
        return AgentContext(
            d_user=self.d_user,
            d_embed=self.d_embed,
            feature_names=self.feature_names,
            reference_embeddings=self.reference_embeddings,
            ground_truth=self.ground_truth if evaluation_only else None,
        )

    def card(self, **kwargs: Any) -> WorldCard:
        """The world's datasheet, measured on fresh users and fresh texts (in no reference sample).

        Base CTR, per-user best lift and interaction share against their configured values, click-probability
        percentiles, CTR per archetype, the best pool text of a few users, the oracle bank from a 2,000-text
        pool and the realism checks; ``learnability=True`` adds the improvement a well-specified model captures
        from 1,000 and 5,000 logged users. See :func:`actionbank_env.evaluation.world_card` for the arguments
        (the evaluator computes it: only it and the envs read the ground truth).
        """
        from actionbank_env.evaluation import world_card

        return world_card(self, **kwargs)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"World(world_seed={c.world_seed}, embedder={self.embedder.name!r}, ground_truth={c.ground_truth!r}, "
            f"initial_actions={len(self.initial_bank)}, d_embed={self.d_embed})"
        )
