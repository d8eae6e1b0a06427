"""Shared pieces of the environments: the world cache, keyword parsing, the bank projection, user draws.

Nothing here imports gymnasium, so the helpers can be tested and reused without it.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env.core.actions import ActionBank, ActionCatalog
from actionbank_env.core.world import World, WorldConfig
from actionbank_env.errors import ConfigError

__all__ = [
    "WORLD_FIELDS",
    "BankProjection",
    "EpisodeDraw",
    "bank_projection",
    "cached_world",
    "draw_episode",
    "resolve_bank",
    "split_world_kwargs",
]

#: Keyword arguments of the envs that build a :class:`WorldConfig`.
WORLD_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(WorldConfig))


@lru_cache(maxsize=16)
def cached_world(config: WorldConfig) -> World:
    """The world for ``config``, built once per process (``make_vec`` and many envs share it).

    Worlds are immutable after construction (the catalog is copied by ``new_catalog``), so sharing is safe.
    """
    return World.build(config)


def split_world_kwargs(
    owner: str, kwargs: Mapping[str, Any], own_fields: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split env keyword arguments into the env's own fields and :class:`WorldConfig` fields.

    Raises:
        TypeError: For a keyword that is neither, naming the closest valid one.
    """
    own: dict[str, Any] = {}
    world: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in own_fields:
            own[key] = value
        elif key in WORLD_FIELDS:
            world[key] = value
        else:
            import difflib

            valid = sorted(set(own_fields) | WORLD_FIELDS)
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"{owner} got an unexpected keyword argument {key!r}; valid keywords: {valid}.{hint}")
    return own, world


def get_world(owner: str, world: World | None, world_kwargs: Mapping[str, Any]) -> World:
    """A prebuilt ``world`` or the cached world for the given :class:`WorldConfig` fields (not both)."""
    if world is not None:
        if not isinstance(world, World):
            raise TypeError(f"{owner}.world must be a World, got {type(world).__name__}.")
        if world_kwargs:
            raise ConfigError(
                f"{owner} got both world= and world settings {sorted(world_kwargs)}; pass one or the other."
            )
        return world
    return cached_world(WorldConfig(**world_kwargs))


class BankProjection:
    """A fixed, world-level map from embeddings to bounded observation features.

    The top ``d_obs`` principal components of ``world.reference_embeddings``, each divided by three
    standard deviations of the reference texts and clipped to [-1, 1]. Fixed by the world, so one policy
    sees every bank (any texts) in the same coordinates. Components beyond the rank are zero.

    Args:
        reference_embeddings: Shape (n_ref, d_embed).
        d_obs: Output dimension.

    Example:
        >>> proj = BankProjection(np.random.default_rng(0).standard_normal((50, 6)), 4)
        >>> out = proj(np.ones((3, 6), np.float32))
        >>> out.shape, out.dtype, bool(np.all(np.abs(out) <= 1))
        ((3, 4), dtype('float32'), True)
    """

    def __init__(self, reference_embeddings: NDArray[np.floating[Any]], d_obs: int) -> None:
        ref = np.asarray(reference_embeddings, dtype=np.float64)
        self.d_obs = int(d_obs)
        self.mean = ref.mean(axis=0)
        _, s, vt = np.linalg.svd(ref - self.mean, full_matrices=False)
        k = min(self.d_obs, int(np.sum(s > (s[0] * 1e-8 if s.size else 0.0))))
        sd = s[:k] / np.sqrt(max(ref.shape[0] - 1, 1))
        components = np.zeros((ref.shape[1], self.d_obs))
        components[:, :k] = vt[:k].T / (3.0 * sd)
        self.components = components

    def __call__(self, embeddings: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
        """Projected embeddings, shape (m, d_obs), float32 in [-1, 1]."""
        if len(embeddings) == 0:
            return np.zeros((0, self.d_obs), dtype=np.float32)
        out = (np.asarray(embeddings, dtype=np.float64) - self.mean) @ self.components
        return np.clip(out, -1.0, 1.0).astype(np.float32)


_PROJECTIONS: weakref.WeakKeyDictionary[World, dict[int, BankProjection]] = weakref.WeakKeyDictionary()


def bank_projection(world: World, d_obs: int) -> BankProjection:
    """The world's :class:`BankProjection` of dimension ``d_obs`` (computed once per world)."""
    per_world = _PROJECTIONS.setdefault(world, {})
    if d_obs not in per_world:
        per_world[d_obs] = BankProjection(world.reference_embeddings, d_obs)
    return per_world[d_obs]


def padded_bank(
    projection: BankProjection, bank: ActionBank, k_max: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Bank features padded to ``k_max`` rows, shape (k_max, d_obs), and the 0/1 mask, shape (k_max,)."""
    features = np.zeros((k_max, projection.d_obs), dtype=np.float32)
    features[: len(bank)] = projection(bank.embeddings)
    mask = np.zeros(k_max, dtype=np.float32)
    mask[: len(bank)] = 1.0
    features.setflags(write=False)
    mask.setflags(write=False)
    return features, mask


def resolve_bank(owner: str, value: Any, world: World, catalog: ActionCatalog, *, iteration: int = 0) -> ActionBank:
    """An :class:`ActionBank` from ``value`` (a bank, or texts resolved through ``catalog``, keeping ids)."""
    if isinstance(value, ActionBank):
        if len(value) and value.d_embed != world.d_embed:
            raise ConfigError(
                f"{owner} bank embeddings must have dimension {world.d_embed} (the world's embedder), "
                f"got {value.d_embed}."
            )
        bank = value
    elif isinstance(value, str) or not isinstance(value, Sequence | np.ndarray):
        raise TypeError(f"{owner} bank must be an ActionBank or a sequence of texts, got {type(value).__name__}.")
    else:
        bank = catalog.bank(list(value), world.embedder, origin="user", iteration=iteration)
    if len(bank) == 0:
        raise ConfigError(f"{owner} bank must contain at least one action, got an empty bank.")
    return bank


@dataclasses.dataclass(slots=True)
class EpisodeDraw:
    """Users, their click probabilities for the whole bank and their click uniforms, drawn in one batch.

    Attributes:
        ids: User ids, shape (n,).
        features: User features, float64, shape (n, d_user).
        probs: Ground-truth click probabilities, shape (n, n_actions).
        uniforms: One uniform per user; the user clicks action ``a`` iff ``uniforms < probs[:, a]``
            (the same rule as :func:`~actionbank_env.core.campaign.run_campaign`).
    """

    ids: NDArray[np.int64]
    features: NDArray[np.float64]
    archetypes: NDArray[np.int64]
    probs: NDArray[np.float64]
    uniforms: NDArray[np.float64]


def draw_episode(
    world: World, embeddings: NDArray[np.float32], n_users: int, *, rng: np.random.Generator, first_id: int = 0
) -> EpisodeDraw:
    """Draw ``n_users`` users, their click probabilities for ``embeddings`` and their click uniforms.

    Args:
        world: The world (population and ground truth).
        embeddings: Bank embeddings, shape (n_actions, d_embed).
        n_users: How many users.
        rng: The episode's generator (users first, then uniforms).
        first_id: Id of the first user.
    """
    users = world.sample_users(n_users, rng=rng, first_id=first_id)
    probs = world.ground_truth.click_prob(users.features, embeddings)
    uniforms = rng.random(n_users)
    return EpisodeDraw(users.ids, users.features, users.archetypes, probs, uniforms)
