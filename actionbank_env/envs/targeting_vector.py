"""The native vector twin of ``ActionBank/Targeting-v0``: N campaigns advanced by one batched call.

``gymnasium.make_vec("ActionBank/Targeting-v0", num_envs=N, vectorization_mode="vector_entry_point")``
returns a :class:`TargetingVectorEnv`. Every step serves N users (one per sub-env) with array indexing;
users, click scores and click uniforms are drawn in blocks of many steps with the same core
functions as the single env (:func:`~actionbank_env.envs._common.draw_episode`), never in a Python loop
over sub-envs.

Autoreset (``autoreset_mode=``). All sub-envs have the same fixed episode length and start together, so they
terminate on the same step. The next episode continues the env's random stream (no reseeding).

- ``AutoresetMode.NEXT_STEP`` (the default, Gymnasium's default, what its vector wrappers and RLlib expect): the
  last step returns the last observations with ``terminated=True``; the following ``step`` ignores its actions,
  starts the next episodes and returns their first observations with reward 0, ``terminated=False`` and an
  empty ``info``. One step in ``users_per_episode + 1`` is spent on resetting.
- ``AutoresetMode.SAME_STEP`` (what SB3's ``VecEnv`` does, see
  :class:`~actionbank_env.integrations.sb3.TargetingSB3VecEnv`): the last step returns ``terminated=True``,
  the final observations in ``info["final_obs"]`` (an object array of per-env observations) with the step's
  info also under ``info["final_info"]``, and the *first observation of the next episode* as ``obs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.typing import NDArray

from actionbank_env._validation import check_int
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
    vector_rng,
)
from actionbank_env.envs.targeting import _TARGETING_FIELDS, TargetingConfig
from actionbank_env.errors import ConfigError

__all__ = ["TargetingVectorEnv"]

#: Users drawn per block (all sub-envs together): one ground-truth call per block.
_BLOCK_USERS = 1 << 15


class TargetingVectorEnv(VectorEnv):
    """``num_envs`` copies of :class:`~actionbank_env.envs.targeting.TargetingEnv`, computed as one batch.

    Spaces, rewards and ``info`` keys match the single env (``info`` values are arrays of shape
    ``(num_envs,)``, each with its ``_key`` mask). All sub-envs share the world and the bank;
    ``reset(options={"bank": ...})`` replaces it for all of them. ``reset(seed=s)`` seeds one stream for
    the whole batch; with ``num_envs=1`` the rollout equals the single env's for the same seed (for
    episodes of at most 32768 users).

    Args:
        num_envs: Number of sub-envs.
        config: Env settings (or pass :class:`TargetingConfig` fields as keywords).
        world: A prebuilt world; otherwise the cached world of the given ``WorldConfig`` keywords.
        render_mode: Only ``None`` (use the single env for ``"ansi"``); other modes warn and are ignored.
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (default) or ``SAME_STEP`` (or ``"next_step"`` / ``"same_step"``).
        **kwargs: :class:`TargetingConfig` and :class:`WorldConfig` fields.

    Example:
        >>> from actionbank_env.core.world import World, WorldConfig
        >>> world = World.build(WorldConfig(embedder="hashing", initial_actions=4, n_reference_texts=64,
        ...                                 n_reference_users=256))
        >>> envs = TargetingVectorEnv(3, world=world, users_per_episode=2)
        >>> obs, _ = envs.reset(seed=0)
        >>> obs.shape
        (3, 8)
        >>> _, rewards, terminated, _, _ = envs.step(np.array([0, 1, 2]))
        >>> _, rewards, terminated, _, info = envs.step(np.array([0, 1, 2]))
        >>> terminated.tolist()
        [True, True, True]
        >>> obs, rewards, terminated, _, info = envs.step(np.array([0, 1, 2]))  # NEXT_STEP: the reset step
        >>> rewards.tolist(), terminated.tolist(), info
        ([0.0, 0.0, 0.0], [False, False, False], {})
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        config: TargetingConfig | None = None,
        *,
        world: World | None = None,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **kwargs: Any,
    ) -> None:
        self.num_envs = check_int("TargetingVectorEnv.num_envs", num_envs, low=1)
        own, world_kwargs = split_world_kwargs(type(self).__name__, kwargs, _TARGETING_FIELDS)
        self.config = checked_config(type(self).__name__, config, TargetingConfig, own)
        checked_render_mode(type(self).__name__, render_mode, ())
        self.render_mode = None
        modes = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)
        key = autoreset_mode.lower().replace("_", "") if isinstance(autoreset_mode, str) else None
        mode = next((m for m in modes if autoreset_mode is m or key == m.value.lower()), None)
        if mode is None:
            raise ConfigError(
                f"TargetingVectorEnv.autoreset_mode must be one of {[m.value for m in modes]}, got {autoreset_mode!r}."
            )
        self.autoreset_mode = mode
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.world = get_world(type(self).__name__, world, world_kwargs)
        self._catalog = self.world.new_catalog()
        n_actions = len(self.world.initial_bank)
        user_space = spaces.Box(0.0, 1.0, shape=(self.world.d_user,), dtype=np.float32)
        if self.config.observe_bank:
            self.max_bank_size = self.config.max_bank_size or n_actions
            if n_actions > self.max_bank_size:
                raise ConfigError(
                    f"TargetingConfig.max_bank_size={self.max_bank_size} must be >= the initial bank size {n_actions}."
                )
            self._projection = bank_projection(self.world, self.config.bank_obs_dim)
            self.single_observation_space: spaces.Space[Any] = spaces.Dict(
                {
                    "user": user_space,
                    "bank": spaces.Box(
                        -1.0, 1.0, shape=(self.max_bank_size, self.config.bank_obs_dim), dtype=np.float32
                    ),
                    "action_mask": spaces.Box(0, 1, shape=(self.max_bank_size,), dtype=np.int8),
                }
            )
        else:
            self.max_bank_size = n_actions
            self.single_observation_space = user_space
        self.single_action_space: spaces.Discrete = spaces.Discrete(self.max_bank_size)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._arange = np.arange(self.num_envs)
        self._all_true = np.ones(self.num_envs, dtype=np.bool_)
        self._all_true.setflags(write=False)
        self._set_bank(self.world.initial_bank)
        self._t = -1
        self._needs_autoreset = False

    # ------------------------------------------------------------------ internals

    def _set_bank(self, bank: ActionBank) -> None:
        n = len(bank)
        if self.config.observe_bank:
            if n > self.max_bank_size:
                raise ConfigError(f"bank must have at most max_bank_size={self.max_bank_size} actions, got {n}.")
            features, mask = padded_bank(self._projection, bank, self.max_bank_size)
            self._bank_batch = np.broadcast_to(features, (self.num_envs, *features.shape))
            self._mask_batch = np.broadcast_to(mask.astype(np.int8), (self.num_envs, *mask.shape))
        elif n != self.single_action_space.n:
            raise ConfigError(
                f"bank must have exactly {self.single_action_space.n} actions (the action space is fixed; use "
                f"observe_bank=True for banks of varying size), got {n}."
            )
        self.bank = bank
        self._n_actions = n
        n_slots = self.single_action_space.n
        self._valid = np.broadcast_to(np.arange(n_slots) < n, (self.num_envs, n_slots))
        self._ids = np.asarray([*bank.ids, ""], dtype=object)  # "" for a masked slot (no message)

    def _draw_block(self) -> None:
        """Draw users, click probabilities and uniforms for the next block of steps, all sub-envs at once."""
        n_envs, horizon = self.num_envs, self.config.users_per_episode
        n_steps = min(horizon - self._t, max(1, _BLOCK_USERS // n_envs))
        draw = draw_episode(
            self.world, self.bank.embeddings, n_steps * n_envs, rng=self.np_random, first_id=self._t * n_envs
        )
        users = draw.features.astype(np.float32).reshape(n_steps, n_envs, -1)
        users.setflags(write=False)
        self._block_start = self._t
        self._users = users
        # Scores, not probabilities: the link is applied to the served and the best score only (per step,
        # n_envs values), never to the whole (users x actions) block.
        self._scores = draw.scores.reshape(n_steps, n_envs, -1)
        self._link = draw.link
        self._best = draw.link(self._scores.max(axis=2))
        self._uniforms = draw.uniforms.reshape(n_steps, n_envs)
        self._user_ids = draw.ids.reshape(n_steps, n_envs)

    def _start_episode(self) -> Any:
        self._t = 0
        self._draw_block()
        return self._observation(0)

    def _observation(self, row: int) -> Any:
        # Fresh writable arrays each step (in-place normalisation, torch.as_tensor); the stored blocks stay read-only.
        users = self._users[row].copy()
        if self.config.observe_bank:
            return {"user": users, "bank": self._bank_batch.copy(), "action_mask": self._mask_batch.copy()}
        return users

    def _check_actions(self, actions: Any) -> NDArray[np.int64]:
        arr = np.asarray(actions)
        n = self.single_action_space.n
        if arr.shape != (self.num_envs,) or arr.dtype.kind not in "iu":
            raise InvalidAction(
                f"actions must be an integer array of shape ({self.num_envs},), got "
                f"{'shape ' + str(arr.shape) + ' dtype ' + str(arr.dtype)}."
            )
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            raise InvalidAction(f"actions must be ints in [0, {n}), got min {arr.min()} and max {arr.max()}.")
        return arr

    def action_masks(self) -> NDArray[np.bool_]:
        """Which actions are real messages of the current bank, shape (num_envs, n) bool."""
        return self._valid.copy()

    # ------------------------------------------------------------------ gymnasium API

    def reset(
        self, *, seed: int | list[int] | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start new campaigns in every sub-env.

        Args:
            seed: One int seeds the batch's stream; a list of ints is combined into one seed sequence.
            options: ``{"bank": ActionBank | sequence of texts}`` deploys a new bank in every sub-env.
        """
        if seed is not None:
            self._np_random, self._np_random_seed = vector_rng(seed)
        bank_option = reset_bank_option(type(self).__name__, options)
        if bank_option is not None:
            self._set_bank(resolve_bank("reset(options)", bank_option, self.world, self._catalog))
        self._needs_autoreset = False
        return self._start_episode(), {}

    def step(
        self, actions: Any
    ) -> tuple[Any, NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_], dict[str, Any]]:
        """Serve ``actions[i]`` to sub-env ``i``'s current user.

        Raises:
            ResetNeeded: Before the first ``reset``.
            InvalidAction: For actions outside the batched action space (the env stays usable).
        """
        if self._t < 0:
            raise ResetNeeded("Call reset() before step().")
        acts = self._check_actions(actions)
        if self._needs_autoreset:  # NEXT_STEP: this step starts the next episodes; its actions are ignored
            self._needs_autoreset = False
            no = np.zeros(self.num_envs, dtype=np.bool_)
            return self._start_episode(), np.zeros(self.num_envs), no, no.copy(), {}
        row = self._t - self._block_start
        if self._n_actions < self.single_action_space.n:  # masked slots: no message, click_prob 0
            scores = self._scores[row, self._arange, np.minimum(acts, self._n_actions - 1)]
            served = np.where(acts < self._n_actions, self._link(scores), 0.0)
        else:
            served = self._link(self._scores[row, self._arange, acts])
        rewards = (self._uniforms[row] < served).astype(np.float64)
        best = self._best[row]
        mask = self._all_true
        info: dict[str, Any] = {
            "click_prob": served,
            "_click_prob": mask,
            "best_click_prob": best,
            "_best_click_prob": mask,
            "regret": best - served,
            "_regret": mask,
            "action_id": self._ids[np.minimum(acts, self._n_actions)],
            "_action_id": mask,
            "user_id": self._user_ids[row],
            "_user_id": mask,
        }
        self._t += 1
        if self._t == self.config.users_per_episode and self.autoreset_mode is AutoresetMode.NEXT_STEP:
            self._needs_autoreset = True
            obs = self._observation(row)
            terminated = np.ones(self.num_envs, dtype=np.bool_)
        elif self._t == self.config.users_per_episode:
            final = self._observation(row)
            final_obs = np.empty(self.num_envs, dtype=object)
            if self.config.observe_bank:
                final_obs[:] = [{k: v[i] for k, v in final.items()} for i in range(self.num_envs)]
            else:
                final_obs[:] = list(final)
            info = {**info, "final_obs": final_obs, "_final_obs": mask, "final_info": dict(info), "_final_info": mask}
            terminated = np.ones(self.num_envs, dtype=np.bool_)
            obs = self._start_episode()
        else:
            terminated = np.zeros(self.num_envs, dtype=np.bool_)
            if row + 1 == self._users.shape[0]:
                self._draw_block()
            obs = self._observation(self._t - self._block_start)
        return obs, rewards, terminated, np.zeros(self.num_envs, dtype=np.bool_), info
