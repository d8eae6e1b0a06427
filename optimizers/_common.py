"""Pieces shared by the bank designers: the pool/bank config, the action memory, training rows, users.

Everything here is numpy; the designers in :mod:`optimizers.generative` and :mod:`optimizers.baselines`
compose these functions.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_bool, check_choice, check_int, check_prob, check_real, check_str
from actionbank_env.errors import ConfigError, ConfigTypeError

if TYPE_CHECKING:
    from actionbank_env.core.actions import ActionBank
    from actionbank_env.core.observations import ObservationLog

__all__ = [
    "GenerativeConfig",
    "ActionMemory",
    "TrainingRows",
    "training_rows",
    "representative_users",
    "REPRESENTATIVE_METHODS",
]

logger = logging.getLogger(__name__)

#: How :func:`representative_users` summarises the logged users.
REPRESENTATIVE_METHODS: tuple[str, ...] = ("subsample", "kmeans")


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerativeConfig:
    """Hyperparameters of the generative bank designer (and of the pool the baselines draw from).

    The baselines (``random``, ``oracle``) accept the same fields, so one parameter set can be passed to every
    designer of a comparison; they ignore the reward-model fields.

    Attributes:
        reward_model: The reward model: a key of :data:`optimizers.reward_models.REWARD_MODELS`, a
            ``"module:Class"`` string or a class following :class:`~actionbank_env.protocols.RewardModel`.
        reward_model_params: Hyperparameters of that model (fields of its config).
        action_pool_size: Candidates generated per iteration (at most 100,000: each is embedded and scored).
        action_bank_size: New actions added per iteration; 0 keeps the bank (the baseline).
        max_bank_size: Cap on the deployed bank; when the current bank plus the new actions exceed it, the
            least valuable actions under the model (by marginal value) are retired. ``None``: the new bank is
            the current bank plus the new actions (nothing is ever dropped).
        diversity_weight: Penalty per unit of maximal cosine similarity of a candidate to the bank and to the
            actions already chosen (relative to the best single-candidate gain: see
            :mod:`actionbank_env.core.coverage`). The default 0.5 beat 0.15 in the paired designer measurement
            (``benchmarks/DESIGNERS.md``): texts unlike the bank cover users it serves badly, which a reward model
            fitted on ~30 served texts ranks weakly.
        use_uncertainty: Select on an optimistic score r̂ + ``uncertainty_weight`` * std (needs a model with
            ``predict_with_uncertainty``: ``bayesian_bilinear``, ``bayesian_neural``, ``gaussian_process``).
        uncertainty_weight: Weight of the predictive standard deviation.
        screen_users: Representative users (the heaviest prototypes) on which the whole pool is screened first.
        screen_shortlist: Candidates (best single-action gain on the screening users) that are scored on every
            representative user; ``None`` scores the whole pool on every user (exact but slow for tree models).
        uncertainty_shortlist: Candidates (best by their single-action gain under the mean) that get the
            expensive uncertainty pass.
        exploit_ratio: Share of the pool written as variations of the best-performing logged actions.
        explore_ratio: Share written as new themes and tones.
        targeted_ratio: Share written for the user traits the log shows respond.
        n_parents: Best logged actions used as parents of the exploit candidates.
        prior_strength: Pseudo-impressions of the shrinkage prior on logged CTRs (ranks the parents).
        n_segment_traits: Traits named in a targeted brief.
        n_representative_users: Users the selection averages over.
        representative_method: ``"subsample"`` (a uniform sample of the logged users, equal weights) or
            ``"kmeans"`` (k-means prototypes weighted by cluster size).
        history_window: Past iterations whose logs train the model (``None``: all).
        importance_weighting: Weight rows by 1 / propensity (clipped at ``propensity_clip``).
        propensity_clip: Smallest propensity used in the weights.
        fit_on_pool_pca: Fit the model's embedding projection on the pool too (unsupervised; it lets the
            model tell apart candidates that differ in directions the bank does not span).

    Example:
        >>> GenerativeConfig(action_bank_size=5, max_bank_size=4)
        Traceback (most recent call last):
        ...
        actionbank_env.errors.ConfigError: GenerativeConfig.max_bank_size=4 must be >= action_bank_size=5.
    """

    reward_model: Any = "lightgbm"
    reward_model_params: dict[str, Any] = field(default_factory=dict)
    action_pool_size: int = 2000
    action_bank_size: int = 10
    max_bank_size: int | None = None
    diversity_weight: float = 0.5
    use_uncertainty: bool = False
    uncertainty_weight: float = 0.1
    uncertainty_shortlist: int = 200
    screen_users: int = 32
    screen_shortlist: int | None = 256
    exploit_ratio: float = 0.4
    explore_ratio: float = 0.3
    targeted_ratio: float = 0.3
    n_parents: int = 5
    prior_strength: float = 20.0
    n_segment_traits: int = 2
    n_representative_users: int = 1000
    representative_method: str = "subsample"
    history_window: int | None = None
    importance_weighting: bool = False
    propensity_clip: float = 0.05
    fit_on_pool_pca: bool = True

    #: Fields that name a component (``reward_model``, a reward-model registry name) and the field holding its
    #: parameters: the configuration tree gives them their own ``--designer.reward-model.*`` settings.
    COMPONENTS: ClassVar[dict[str, tuple[str, str]]] = {"reward_model": ("reward_model", "reward_model_params")}

    def __post_init__(self) -> None:
        from optimizers.reward_models import REWARD_MODELS

        name = "GenerativeConfig"
        if isinstance(self.reward_model, type):
            pass  # a user's own class
        elif check_str(f"{name}.reward_model", self.reward_model) and ":" in self.reward_model:
            pass  # "module:Class", resolved when the model is built
        else:
            check_choice(f"{name}.reward_model", self.reward_model, REWARD_MODELS)
        if not isinstance(self.reward_model_params, Mapping):
            raise ConfigTypeError(
                f"{name}.reward_model_params must be a dict, got {self.reward_model_params!r} "
                f"of type {type(self.reward_model_params).__name__}."
            )
        object.__setattr__(self, "reward_model_params", dict(self.reward_model_params))
        # Every candidate is embedded and scored for every representative user: 100,000 is already minutes of work.
        check_int(f"{name}.action_pool_size", self.action_pool_size, low=0, high=100_000)
        check_int(f"{name}.action_bank_size", self.action_bank_size, low=0)
        if self.action_bank_size > self.action_pool_size:
            raise ConfigError(
                f"{name}.action_bank_size={self.action_bank_size} must be <= action_pool_size={self.action_pool_size}."
            )
        if self.max_bank_size is not None:
            check_int(f"{name}.max_bank_size", self.max_bank_size, low=1)
            if self.max_bank_size < self.action_bank_size:
                raise ConfigError(
                    f"{name}.max_bank_size={self.max_bank_size} must be >= action_bank_size={self.action_bank_size}."
                )
        check_real(f"{name}.diversity_weight", self.diversity_weight, low=0.0)
        check_bool(f"{name}.use_uncertainty", self.use_uncertainty)
        check_real(f"{name}.uncertainty_weight", self.uncertainty_weight, low=0.0)
        check_int(f"{name}.uncertainty_shortlist", self.uncertainty_shortlist, low=1)
        check_int(f"{name}.screen_users", self.screen_users, low=1)
        if self.screen_shortlist is not None:
            check_int(f"{name}.screen_shortlist", self.screen_shortlist, low=1)
        ratios = [check_real(f"{name}.{r}_ratio", getattr(self, f"{r}_ratio"), low=0.0) for r in MODE_NAMES]
        if sum(ratios) <= 0.0:
            raise ConfigError(
                f"{name}.exploit_ratio + explore_ratio + targeted_ratio must be > 0, got {sum(ratios)!r}."
            )
        check_int(f"{name}.n_parents", self.n_parents, low=1)
        check_real(f"{name}.prior_strength", self.prior_strength, low=0.0)
        check_int(f"{name}.n_segment_traits", self.n_segment_traits, low=1)
        check_int(f"{name}.n_representative_users", self.n_representative_users, low=1)
        check_choice(f"{name}.representative_method", self.representative_method, REPRESENTATIVE_METHODS)
        if self.history_window is not None:
            check_int(f"{name}.history_window", self.history_window, low=1)
        check_bool(f"{name}.importance_weighting", self.importance_weighting)
        check_prob(f"{name}.propensity_clip", self.propensity_clip, open_low=True)
        check_bool(f"{name}.fit_on_pool_pca", self.fit_on_pool_pca)

    @property
    def ratios(self) -> dict[str, float]:
        """The mode shares, normalised to sum to 1: ``{"exploit": ..., "explore": ..., "targeted": ...}``."""
        raw = {m: float(getattr(self, f"{m}_ratio")) for m in MODE_NAMES}
        total = sum(raw.values())
        return {m: v / total for m, v in raw.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``GenerativeConfig(**d)`` reads it back."""
        return dataclasses.asdict(self)


#: Generation modes, in pool order.
MODE_NAMES: tuple[str, ...] = ("exploit", "explore", "targeted")


class ActionMemory:
    """Every action a designer has seen: id -> (text, embedding).

    The log holds action ids only; the embedding of a served action is looked up here. Each bank given to
    ``propose`` is remembered, so actions retired since they were served stay known.

    Example:
        >>> from actionbank_env.core.actions import Action, ActionBank
        >>> memory = ActionMemory()
        >>> memory.remember(ActionBank([Action("A00000", "Hi", np.ones(3, np.float32))]))
        >>> memory.embeddings_of(np.array(["A00000", "A00009"], dtype=object))[1].tolist()
        [True, False]
    """

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._texts: list[str] = []
        self._rows: list[NDArray[np.float32]] = []
        self._matrix: NDArray[np.float32] | None = None

    def __len__(self) -> int:
        return len(self._texts)

    def remember(self, bank: ActionBank) -> None:
        """Record the actions of ``bank`` (ids already known keep their first record)."""
        for action in bank:
            if action.id not in self._index:
                self._index[action.id] = len(self._texts)
                self._texts.append(action.text)
                self._rows.append(action.embedding)
                self._matrix = None

    def text_of(self, action_id: str) -> str | None:
        """The text of ``action_id`` if known."""
        i = self._index.get(action_id)
        return None if i is None else self._texts[i]

    @property
    def matrix(self) -> NDArray[np.float32]:
        """Embeddings of the remembered actions, in the order they were first remembered, (len, d_embed)."""
        if self._matrix is None:
            self._matrix = np.stack(self._rows).astype(np.float32) if self._rows else np.zeros((0, 0), np.float32)
        return self._matrix

    def index_of(self, action_ids: NDArray[Any]) -> NDArray[np.int64]:
        """Row of :attr:`matrix` of each logged id, -1 for ids never remembered, shape (n,)."""
        ids = np.asarray(action_ids, dtype=object)
        if not self._texts or ids.size == 0:
            return np.full(ids.shape[0], -1, dtype=np.int64)
        # A log repeats a few ids: one dict lookup per distinct id (pandas' hash factorisation, O(n)).
        import pandas as pd

        codes, uniq = pd.factorize(ids)  # missing ids (None, NaN) get code -1
        lookup = np.array([self._index.get(str(u), -1) for u in uniq] + [-1], dtype=np.int64)
        return lookup[codes]  # code -1 picks the trailing -1

    def embeddings_of(self, action_ids: NDArray[Any]) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """Embeddings of logged ids, shape (n, d_embed), and a mask of the ids that are known, shape (n,)."""
        lookup = self.index_of(action_ids)
        known = lookup >= 0
        if not self._texts:
            return np.zeros((lookup.shape[0], 0), dtype=np.float32), known
        return self.matrix[np.where(known, lookup, 0)], known


@dataclass(frozen=True, slots=True)
class TrainingRows:
    """Logged rows ready for a reward model.

    Attributes:
        users: (n, d_user). clicks: (n,) 0/1 floats. weights: (n,) or ``None``.
        action_embeddings: Embedding table of the remembered actions, (n_actions, d_embed).
        action_index: Row of ``action_embeddings`` served on each row, (n,).
        n_unknown: Rows dropped because their action id was never seen in a bank.
    """

    users: NDArray[np.float64]
    action_embeddings: NDArray[np.float32]
    action_index: NDArray[np.int64]
    clicks: NDArray[np.float64]
    weights: NDArray[np.float64] | None
    n_unknown: int

    @property
    def embeddings(self) -> NDArray[np.float32]:
        """Per-row embeddings, (n, d_embed): a new array (``fit_indexed`` avoids building it)."""
        return self.action_embeddings[self.action_index]

    @property
    def fittable(self) -> bool:
        """Whether both outcomes occur (every model needs a click and a non-click)."""
        return bool(self.clicks.size) and 0.0 < float(self.clicks.mean()) < 1.0


def window(history: Sequence[ObservationLog], history_window: int | None) -> list[ObservationLog]:
    """The last ``history_window`` logs (all when ``None``)."""
    logs = list(history)
    return logs if history_window is None else logs[-history_window:]


def training_rows(
    logs: Sequence[ObservationLog],
    memory: ActionMemory,
    *,
    importance_weighting: bool = False,
    propensity_clip: float = 0.05,
) -> TrainingRows:
    """Rows of ``logs`` whose served action is in ``memory``, with optional 1 / propensity weights."""
    from actionbank_env.core.observations import ObservationLog

    log = ObservationLog.concat(list(logs))
    lookup = memory.index_of(log.action_ids)
    known = lookup >= 0
    n_unknown = int((~known).sum())
    if n_unknown:
        logger.warning("%d logged rows serve actions never seen in a bank; they are left out.", n_unknown)
    weights = None
    if importance_weighting:
        weights = 1.0 / np.maximum(log.propensities[known], propensity_clip)
    all_known = n_unknown == 0  # the usual case: no boolean-mask copies of the whole log
    return TrainingRows(
        users=log.users if all_known else log.users[known],
        action_embeddings=memory.matrix,
        action_index=lookup if all_known else lookup[known],
        clicks=log.clicks[known].astype(np.float64),
        weights=weights,
        n_unknown=n_unknown,
    )


#: ``representative_users(method="kmeans")`` fits the centres on at most this many users (a uniform
#: subsample), then weights each centre by its share of all users.
KMEANS_FIT_USERS = 20_000


def representative_users(
    users: NDArray[np.float64], n_users: int, *, rng: np.random.Generator, method: str = "subsample"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A weighted sample of users that stands for the logged population in the selection objective.

    Args:
        users: Logged user features, shape (n, d_user).
        n_users: Size of the sample (all users, equal weights, when ``n <= n_users``).
        rng: Draws the subsample or seeds k-means.
        method: ``"subsample"`` (uniform without replacement) or ``"kmeans"`` (cluster centres weighted by
            cluster size; centres fitted on at most :data:`KMEANS_FIT_USERS` users).

    Returns:
        ``(sample, weights)``: shape (m, d_user) and (m,), weights summing to 1.

    Example:
        >>> sample, weights = representative_users(np.eye(4), 2, rng=np.random.default_rng(0))
        >>> sample.shape, weights.tolist()
        ((2, 4), [0.5, 0.5])
    """
    check_choice("representative_users method", method, REPRESENTATIVE_METHODS)
    n = users.shape[0]
    if n <= n_users:
        return users.copy(), np.full(n, 1.0 / max(n, 1))
    if method == "subsample":
        idx = np.sort(rng.choice(n, size=n_users, replace=False))
        return users[idx], np.full(n_users, 1.0 / n_users)
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n_users, n_init=1, max_iter=50, random_state=int(rng.integers(2**31 - 1)))
    if n <= KMEANS_FIT_USERS:
        labels = km.fit_predict(users)
    else:
        # Fit the centres on a uniform subsample, then weight them by the whole population (one assignment
        # pass in chunks): k-means on every logged user grew to minutes at 1e6 users for no visible gain.
        km.fit(users[np.sort(rng.choice(n, size=KMEANS_FIT_USERS, replace=False))])
        labels = np.concatenate([km.predict(users[i : i + 65536]) for i in range(0, n, 65536)])
    counts = np.bincount(labels, minlength=n_users).astype(np.float64)
    keep = counts > 0
    return np.asarray(km.cluster_centers_[keep], dtype=np.float64), counts[keep] / counts.sum()


def shrunk_ctr(
    impressions: NDArray[np.float64], clicks: NDArray[np.float64], *, prior_strength: float
) -> NDArray[np.float64]:
    """Posterior-mean CTR under a Beta prior centred on the pooled CTR with ``prior_strength`` pseudo-counts.

    Example:
        >>> shrunk_ctr(np.array([1.0, 1000.0]), np.array([1.0, 300.0]), prior_strength=10.0).round(3).tolist()
        [0.364, 0.3]
    """
    pooled = float(clicks.sum() / impressions.sum()) if impressions.sum() > 0 else 0.0
    return (clicks + prior_strength * pooled) / np.maximum(impressions + prior_strength, 1e-12)
