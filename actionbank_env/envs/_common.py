"""Shared pieces of the environments: the world cache, keyword parsing, the bank projection, user draws.

Nothing here imports gymnasium, so the helpers can be tested and reused without it.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_int, check_known_names
from actionbank_env.core.actions import ActionBank, ActionCatalog
from actionbank_env.core.ground_truth import monotone_scores
from actionbank_env.core.projection import BankProjection
from actionbank_env.core.world import World, WorldConfig
from actionbank_env.errors import ConfigError, ConfigTypeError

__all__ = [
    "WORLD_FIELDS",
    "BankProjection",
    "EpisodeDraw",
    "bank_projection",
    "cached_world",
    "draw_episode",
    "resolve_bank",
    "checked_render_mode",
    "split_world_kwargs",
]

#: Keyword arguments of the envs that build a :class:`WorldConfig`.
WORLD_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(WorldConfig))


def checked_render_mode(owner: str, render_mode: str | None, supported: Sequence[str]) -> str | None:
    """``render_mode`` if the env supports it; otherwise ``None`` with a warning (as Gymnasium envs do).

    Libraries ask for modes they do not need (SB3's ``make_vec_env`` passes ``render_mode="rgb_array"``), so an
    unsupported mode disables rendering (``render()`` returns ``None``) rather than failing the construction.

    Raises:
        ConfigTypeError: If ``render_mode`` is neither ``None`` nor a string.
    """
    if render_mode is None or render_mode in supported:
        return render_mode
    if not isinstance(render_mode, str):
        raise ConfigTypeError(f"{owner}.render_mode must be a string or None, got {type(render_mode).__name__}.")
    warnings.warn(
        f"{owner}.render_mode={render_mode!r} is not supported (supported: {[None, *supported]}); rendering is "
        "disabled and render() returns None.",
        UserWarning,
        stacklevel=3,
    )
    return None


def vector_rng(seed: int | Sequence[int]) -> tuple[np.random.Generator, int | None]:
    """The random stream of a native vector env's ``reset(seed=...)`` and the seed Gymnasium records for it.

    One int seeds the batch's stream as ``gymnasium.utils.seeding.np_random`` does; a list of ints (one per
    sub-env, as ``make_vec`` passes them) is combined into one seed sequence (recorded seed ``None``).
    """
    from gymnasium.utils import seeding

    if isinstance(seed, list | tuple):
        return np.random.default_rng(np.random.SeedSequence([check_int("seed", s, low=0) for s in seed])), None
    return seeding.np_random(seed)


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
        ConfigTypeError: For a keyword that is neither, naming the closest valid one.
    """
    own: dict[str, Any] = {}
    world: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in own_fields:
            own[key] = value
        elif key in WORLD_FIELDS:
            world[key] = value
        else:
            check_known_names(owner, [key], sorted(set(own_fields) | WORLD_FIELDS), what="keyword arguments")
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


_PROJECTIONS: weakref.WeakKeyDictionary[World, dict[int, BankProjection]] = weakref.WeakKeyDictionary()


def bank_projection(world: World, d_obs: int) -> BankProjection:
    """The world's :class:`BankProjection` of dimension ``d_obs`` (computed once per world)."""
    per_world = _PROJECTIONS.setdefault(world, {})
    if d_obs not in per_world:
        per_world[d_obs] = BankProjection(world.reference_embeddings, d_obs)
    return per_world[d_obs]


def checked_config(owner: str, config: Any, config_class: type, own: Mapping[str, Any]) -> Any:
    """``config`` when it is a ``config_class``, else one built from the keyword fields ``own`` (not both).

    Raises:
        ConfigError: For both ``config`` and fields.
        ConfigTypeError: For a ``config`` of another type (naming it).
    """
    if config is None:
        return config_class(**own)
    if own:
        raise ConfigError(f"{owner} got both config= and the config fields {sorted(own)}; pass one.")
    if not isinstance(config, config_class):
        raise ConfigTypeError(
            f"{owner}.config must be a {config_class.__name__} (or pass its fields as keywords), got {type(config).__name__}."
        )
    return config


def reset_bank_option(owner: str, options: Any) -> Any:
    """The ``"bank"`` entry of ``reset(options=...)`` (``None`` when absent); the only option the envs take.

    Raises:
        ConfigTypeError: For ``options`` that is not a mapping, or a key other than ``"bank"``.
    """
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise ConfigTypeError(
            f"{owner}.reset options must be a mapping like {{'bank': ...}}, got {type(options).__name__}."
        )
    check_known_names(f"{owner}.reset options", options, ["bank"], what="options")
    return options.get("bank")


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
    """Users, their click scores for the whole bank and their click uniforms, drawn in one batch.

    Attributes:
        ids: User ids, shape (n,).
        features: User features, float64, shape (n, d_user).
        scores: Scores in the order of the ground-truth click probabilities, shape (n, n_actions)
            (see :func:`~actionbank_env.core.ground_truth.monotone_scores`).
        link: Turns scores into probabilities (it may overwrite its argument; increasing, so the link of
            a row's maximum score is the row's best probability).
        uniforms: One uniform per user; the user clicks action ``a`` iff ``uniforms < link(scores[:, a])``
            (the same rule as :func:`~actionbank_env.core.campaign.run_campaign`).
    """

    ids: NDArray[np.int64]
    features: NDArray[np.float64]
    archetypes: NDArray[np.int64]
    scores: NDArray[np.float64]
    link: Callable[[NDArray[np.float64]], NDArray[np.float64]]
    uniforms: NDArray[np.float64]


def draw_episode(
    world: World, embeddings: NDArray[np.float32], n_users: int, *, rng: np.random.Generator, first_id: int = 0
) -> EpisodeDraw:
    """Draw ``n_users`` users, their click scores for ``embeddings`` and their click uniforms.

    Args:
        world: The world (population and ground truth).
        embeddings: Bank embeddings, shape (n_actions, d_embed).
        n_users: How many users.
        rng: The episode's generator (users first, then uniforms).
        first_id: Id of the first user.
    """
    users = world.sample_users(n_users, rng=rng, first_id=first_id)
    scores, link = monotone_scores(world.ground_truth, users.features, embeddings)
    uniforms = rng.random(n_users)
    return EpisodeDraw(users.ids, users.features, users.archetypes, scores, link, uniforms)
