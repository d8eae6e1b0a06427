"""``ActionBank/Targeting-v0``: per-user targeting, one campaign per episode.

Each step one user arrives; the agent picks an action of the bank and receives a click (0/1) drawn from
the world's ground truth. The whole episode (users, their click probabilities for the whole bank, one
click uniform per user) is drawn in one batch at ``reset``, so ``step`` is O(1) indexing.

Episode end: a campaign has a fixed number of users and really ends after the last one, so the env
returns ``terminated=True`` on the ``users_per_episode``-th step (no ``TimeLimit``, ``truncated`` is
always ``False``). A next state does not exist there; bootstrapping through it would be wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import InvalidAction, ResetNeeded
from numpy.typing import NDArray

from actionbank_env._validation import check_bool, check_int
from actionbank_env.core.actions import ActionBank
from actionbank_env.core.projection import padded_bank
from actionbank_env.core.world import World
from actionbank_env.envs._common import (
    bank_projection,
    checked_config,
    checked_render_mode,
    draw_episode,
    get_world,
    reset_bank_option,
    resolve_bank,
    split_world_kwargs,
)
from actionbank_env.errors import ConfigError

__all__ = ["TargetingConfig", "TargetingEnv", "as_action_index"]

_RENDER_MODES = ("ansi",)


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetingConfig:
    """Settings of ``ActionBank/Targeting-v0`` (the world's settings are :class:`WorldConfig` fields).

    Attributes:
        users_per_episode: Users in one campaign (steps per episode).
        observe_bank: ``Dict`` observations ``{"user", "bank", "action_mask"}`` and ``Discrete(max_bank_size)``
            actions, so one policy generalises across banks.
        max_bank_size: Slots of the bank observation in ``observe_bank`` mode (``None``: the initial
            bank's size). Ignored otherwise.
        bank_obs_dim: Features per action in the bank observation (fixed projection of the embeddings).
    """

    users_per_episode: int = 1000
    observe_bank: bool = False
    max_bank_size: int | None = None
    bank_obs_dim: int = 16

    def __post_init__(self) -> None:
        check_int("TargetingConfig.users_per_episode", self.users_per_episode, low=1)
        check_bool("TargetingConfig.observe_bank", self.observe_bank)
        if self.max_bank_size is not None:
            check_int("TargetingConfig.max_bank_size", self.max_bank_size, low=1, high=10_000)
        check_int("TargetingConfig.bank_obs_dim", self.bank_obs_dim, low=1, high=1024)


_TARGETING_FIELDS = ("users_per_episode", "observe_bank", "max_bank_size", "bank_obs_dim")


def as_action_index(action: Any) -> int:
    """``action`` as a Python int if it is an integer scalar (int, numpy integer, 0-d or 1-element array).

    Raises:
        InvalidAction: For anything else (floats, NaN, bools, strings, longer arrays).
    """
    if isinstance(action, int | np.integer) and not isinstance(action, bool):
        return int(action)
    if isinstance(action, np.ndarray) and action.size == 1 and action.ndim <= 1 and action.dtype.kind in "iu":
        return int(action.reshape(()))
    raise InvalidAction(f"action must be an integer index, got {action!r} of type {type(action).__name__}.")


class TargetingEnv(gym.Env[Any, np.int64]):
    """One campaign as an episode: ``users_per_episode`` users arrive, one per step.

    Observation: the user's features, ``Box(0, 1, (d_user,), float32)``; with ``observe_bank=True`` a
    ``Dict`` with ``"user"``, ``"bank"`` (``(max_bank_size, bank_obs_dim)`` float32 in [-1, 1], a fixed
    projection of the embeddings, see :class:`~actionbank_env.envs._common.BankProjection`, zero rows
    past the bank) and ``"action_mask"`` (``(max_bank_size,)`` int8, 1 for a real action, ready for
    ``action_space.sample(mask=...)``); :meth:`action_masks` gives the same as bool (sb3-contrib's MaskablePPO).
    Observations are fresh writable arrays.

    Action: ``Discrete(K)``, an index into the bank; ``Discrete(max_bank_size)`` with ``observe_bank``,
    where choosing a masked slot means *no message is sent*: reward 0, ``click_prob`` 0 and the full
    best probability as regret (so agents without masking can still train).

    Reward: 1.0 for a click, else 0.0. ``info``: ``click_prob``, ``best_click_prob``, ``regret`` (ground
    truth, never in the observation), ``action_id`` and ``user_id`` (ids count from 0 in each episode).

    Bank changes: ``reset(options={"bank": bank_or_texts})`` deploys a new bank from that episode on
    (texts are resolved through the env's catalog with the world's embedder, so known texts keep their
    ids). Spaces are fixed, so without ``observe_bank`` the new bank must have exactly K actions, and
    with it at most ``max_bank_size``; otherwise ``ValueError``.

    Args:
        config: Env settings (or pass its fields as keywords).
        world: A prebuilt world; otherwise one is built (and cached per process) from the
            :class:`~actionbank_env.core.world.WorldConfig` fields given as keywords.
        render_mode: ``None`` or ``"ansi"``; other modes warn and disable rendering.
        **kwargs: :class:`TargetingConfig` and :class:`WorldConfig` fields.

    Example:
        >>> from actionbank_env.core.world import World, WorldConfig
        >>> world = World.build(WorldConfig(embedder="hashing", initial_actions=4, n_reference_texts=64,
        ...                                 n_reference_users=256))
        >>> env = TargetingEnv(world=world, users_per_episode=3)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, env.action_space
        ((8,), Discrete(4))
        >>> _, reward, terminated, truncated, info = env.step(1)
        >>> sorted(info)
        ['action_id', 'best_click_prob', 'click_prob', 'regret', 'user_id']
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        config: TargetingConfig | None = None,
        *,
        world: World | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        own, world_kwargs = split_world_kwargs(type(self).__name__, kwargs, _TARGETING_FIELDS)
        self.config = checked_config(type(self).__name__, config, TargetingConfig, own)
        self.render_mode = checked_render_mode(type(self).__name__, render_mode, _RENDER_MODES)
        self.world = get_world(type(self).__name__, world, world_kwargs)
        self._catalog = self.world.new_catalog()
        self.bank = self.world.initial_bank
        n_actions = len(self.bank)
        d_user = self.world.d_user
        self._user_space = spaces.Box(0.0, 1.0, shape=(d_user,), dtype=np.float32)
        if self.config.observe_bank:
            self.max_bank_size = self.config.max_bank_size or n_actions
            if n_actions > self.max_bank_size:
                raise ConfigError(
                    f"TargetingConfig.max_bank_size={self.max_bank_size} must be >= the initial bank size {n_actions}."
                )
            self._projection = bank_projection(self.world, self.config.bank_obs_dim)
            self.observation_space: spaces.Space[Any] = spaces.Dict(
                {
                    "user": self._user_space,
                    "bank": spaces.Box(
                        -1.0, 1.0, shape=(self.max_bank_size, self.config.bank_obs_dim), dtype=np.float32
                    ),
                    "action_mask": spaces.Box(0, 1, shape=(self.max_bank_size,), dtype=np.int8),
                }
            )
            self.action_space: spaces.Discrete = spaces.Discrete(self.max_bank_size)
        else:
            self.max_bank_size = n_actions
            self.observation_space = self._user_space
            self.action_space = spaces.Discrete(n_actions)
        self._set_bank(self.bank)
        self._t = -1  # -1: reset needed
        self._users = np.zeros((0, d_user), dtype=np.float32)
        self._last: tuple[int, int, float, float] | None = None

    # ------------------------------------------------------------------ bank

    def _set_bank(self, bank: ActionBank) -> None:
        n = len(bank)
        if self.config.observe_bank:
            if n > self.max_bank_size:
                raise ConfigError(f"bank must have at most max_bank_size={self.max_bank_size} actions, got {n}.")
            self._bank_features, mask = padded_bank(self._projection, bank, self.max_bank_size)
            self._mask = mask.astype(np.int8)
        elif n != self.action_space.n:
            raise ConfigError(
                f"bank must have exactly {self.action_space.n} actions (the action space is fixed; use "
                f"observe_bank=True for banks of varying size), got {n}."
            )
        self.bank = bank
        self._ids = list(bank.ids)
        self._valid = np.arange(self.action_space.n) < n
        self._valid.setflags(write=False)

    # ------------------------------------------------------------------ gymnasium API

    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start a campaign: draw all its users, their click probabilities and click uniforms in one batch.

        Args:
            seed: Seeds the episode stream (users and clicks); the world is fixed by ``world_seed``.
            options: ``{"bank": ActionBank | sequence of texts}`` deploys a new bank from this episode on.
        """
        super().reset(seed=seed)
        bank_option = reset_bank_option(type(self).__name__, options)
        if bank_option is not None:
            self._set_bank(resolve_bank("reset(options)", bank_option, self.world, self._catalog))
        n_users, n_actions = self.config.users_per_episode, len(self.bank)
        draw = draw_episode(self.world, self.bank.embeddings, n_users, rng=self.np_random)
        probs = np.zeros((n_users, self.max_bank_size if self.config.observe_bank else n_actions))
        probs[:, :n_actions] = draw.link(draw.scores)
        clicks = (draw.uniforms[:, None] < probs).astype(np.float64)
        best = probs[:, :n_actions].max(axis=1)
        # Python lists: scalar indexing of a list is several times faster than of an ndarray.
        self._probs = probs.tolist()
        self._clicks = clicks.tolist()
        self._best = best.tolist()
        self._user_ids = draw.ids.tolist()
        self._archetypes = draw.archetypes.tolist()
        users = draw.features.astype(np.float32)
        users.setflags(write=False)
        self._users = users
        # Observations are writable rows of a private copy (in-place normalisation, torch.as_tensor), so what a
        # caller does to them never reaches ``self.users``.
        self._user_rows = list(users.copy())
        self._n_users = n_users
        self._t = 0
        self._last = None
        return self._observation(0), {}

    def _observation(self, t: int) -> Any:
        if self.config.observe_bank:
            # Fresh bank arrays each call: callers may keep or modify what they were given.
            return {"user": self._user_rows[t], "bank": self._bank_features.copy(), "action_mask": self._mask.copy()}
        return self._user_rows[t]

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Serve ``action`` to the current user.

        Raises:
            ResetNeeded: Before the first ``reset`` or after the episode ended.
            InvalidAction: For an action outside ``Discrete(n)`` (the env stays usable).
        """
        t = self._t
        if t < 0:
            raise ResetNeeded("Call reset() before step() (the episode has not started or has ended).")
        a = action if type(action) is int else as_action_index(action)
        n = self.action_space.n
        if not 0 <= a < n:
            raise InvalidAction(f"action must be an int in [0, {n}), got {action!r}.")
        p = self._probs[t][a]
        best = self._best[t]
        reward = self._clicks[t][a]
        info = {
            "click_prob": p,
            "best_click_prob": best,
            "regret": best - p,
            "action_id": self._ids[a] if a < len(self._ids) else "",
            "user_id": self._user_ids[t],
        }
        self._last = (t, a, p, reward)
        t += 1
        if t == self._n_users:
            self._t = -1
            # A copy: the caller may have changed the row it got from the previous step in place.
            row = self._user_rows[t - 1].copy()
            last = {**self._observation(t - 1), "user": row} if self.config.observe_bank else row
            return last, reward, True, False, info
        self._t = t
        return self._observation(t), reward, False, False, info

    def action_masks(self) -> NDArray[np.bool_]:
        """Which actions are real messages of the current bank, shape (n,) bool (sb3-contrib's MaskablePPO calls it).

        All ``True`` without ``observe_bank``; with it, ``False`` for the padded slots past the bank.
        """
        return self._valid.copy()

    def render(self) -> str | None:
        """``"ansi"``: a line with the last user, the chosen text and its click probability."""
        if self.render_mode != "ansi":
            return None
        if self._last is None:
            return f"Targeting-v0: bank of {len(self.bank)} actions, no user served yet.\n"
        t, a, p, reward = self._last
        archetype = self.world.population.archetype_names[self._archetypes[t]]
        text = self.bank.texts[a] if a < len(self.bank) else "<no message>"
        return f"user {self._user_ids[t]} ({archetype}) -> {text!r}: click_prob={p:.3f}, click={int(reward)}\n"

    @property
    def users(self) -> NDArray[np.float32]:
        """Features of this episode's users, shape (users_per_episode, d_user), read-only."""
        return self._users
