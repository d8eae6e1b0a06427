"""A Stable-Baselines3 ``VecEnv`` over the native vector env of ``ActionBank/Targeting-v0``.

SB3 steps its envs through ``VecEnv`` (``DummyVecEnv`` loops over single envs in Python). This adapter hands SB3
the batched :class:`~actionbank_env.envs.targeting_vector.TargetingVectorEnv` instead, in its ``SAME_STEP``
autoreset mode, which is SB3's own convention: the step that ends the episodes returns ``done=True``, the next
episodes' first observations, and each final observation under ``infos[i]["terminal_observation"]``.

Example:
    >>> from stable_baselines3 import PPO
    >>> venv = TargetingSB3VecEnv(8, users_per_episode=100, embedder="hashing", n_reference_texts=64)
    >>> model = PPO("MlpPolicy", venv, n_steps=16, batch_size=32, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode
from numpy.typing import NDArray
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from actionbank_env.envs.targeting_vector import TargetingVectorEnv
from actionbank_env.errors import ConfigError

__all__ = ["TargetingSB3VecEnv"]

#: ``info`` keys of the native env that are copied into each sub-env's SB3 info dict.
INFO_KEYS: tuple[str, ...] = ("click_prob", "best_click_prob", "regret", "action_id", "user_id")
#: Methods of the native env that return one row per sub-env (``env_method`` splits their result).
_BATCHED_METHODS = frozenset({"action_masks"})


class TargetingSB3VecEnv(VecEnv):
    """``num_envs`` Targeting-v0 campaigns for SB3, stepped as one batch (see the module docstring).

    Infos: one dict per sub-env with ``click_prob``, ``best_click_prob``, ``regret``, ``action_id`` and
    ``user_id`` (plain Python values), plus ``terminal_observation`` and ``TimeLimit.truncated`` on the last step
    of an episode. ``env_method("action_masks")`` gives each sub-env's mask, so sb3-contrib's ``MaskablePPO``
    works on ``observe_bank=True``. Seeding: SB3's ``seed(s)`` seeds the batch's one stream with ``s`` at the
    next ``reset`` (sub-env ``i`` is not reseeded with ``s + i``; the batch stream is reproducible as a whole).

    Args:
        num_envs: Number of sub-envs (ignored when ``env`` is given).
        env: A native vector env built with ``autoreset_mode="same_step"``; otherwise one is built.
        **kwargs: :class:`~actionbank_env.envs.targeting.TargetingConfig` and ``WorldConfig`` fields, ``world=``
            or ``config=`` for the native env.
    """

    def __init__(self, num_envs: int = 1, *, env: TargetingVectorEnv | None = None, **kwargs: Any) -> None:
        if env is None:
            env = TargetingVectorEnv(num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
        elif kwargs:
            raise ConfigError(f"TargetingSB3VecEnv got both env= and settings {sorted(kwargs)}; pass one.")
        if not isinstance(env, TargetingVectorEnv):
            raise TypeError(f"TargetingSB3VecEnv.env must be a TargetingVectorEnv, got {type(env).__name__}.")
        if env.autoreset_mode is not AutoresetMode.SAME_STEP:
            raise ConfigError(
                "TargetingSB3VecEnv.env must autoreset in the same step (SB3's convention), got "
                f"{env.autoreset_mode}; build it with autoreset_mode='same_step'."
            )
        self.venv = env
        self._actions: NDArray[np.int64] | None = None
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)

    def reset(self) -> Any:
        """Reset every sub-env (with the seed and options of the last ``seed`` / ``set_options`` call)."""
        seed = self._seeds[0]
        options = self._options[0] or None
        obs, _ = self.venv.reset(seed=seed, options=options)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: NDArray[Any]) -> None:
        """Remember the actions of the next :meth:`step_wait`."""
        self._actions = np.asarray(actions).reshape(self.num_envs).astype(np.int64, copy=False)

    def step_wait(self) -> VecEnvStepReturn:
        """Step every sub-env; returns observations, float32 rewards, dones and one info dict per sub-env."""
        if self._actions is None:
            raise RuntimeError("TargetingSB3VecEnv.step_wait() called without step_async().")
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        dones = terminated | truncated
        columns = [info[key].tolist() for key in INFO_KEYS]
        infos: list[dict[str, Any]] = [
            dict(zip(INFO_KEYS, values, strict=True)) for values in zip(*columns, strict=True)
        ]
        if dones.any():
            final_obs = info["final_obs"]
            for i in np.flatnonzero(dones).tolist():
                infos[i]["terminal_observation"] = final_obs[i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        """Close the native env."""
        self.venv.close()

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices) if isinstance(indices, Iterable) else [int(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The native env's attribute, once per requested sub-env (the sub-envs share it)."""
        value = None if attr_name == "render_mode" else getattr(self.venv, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the shared native env (all sub-envs at once)."""
        if indices is not None and sorted(self._indices(indices)) != list(range(self.num_envs)):
            raise ConfigError(
                f"TargetingSB3VecEnv.set_attr sets {attr_name!r} for all sub-envs (they share one env), "
                f"got indices={indices!r}."
            )
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of the native env: per-sub-env rows for ``action_masks``, else one shared result."""
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        chosen = self._indices(indices)
        if method_name in _BATCHED_METHODS:
            return [result[i] for i in chosen]
        return [result for _ in chosen]

    def env_is_wrapped(self, wrapper_class: type[Any], indices: VecEnvIndices = None) -> list[bool]:
        """Sub-envs are never wrapped (wrap the ``VecEnv`` itself, e.g. in ``VecMonitor``)."""
        return [False for _ in self._indices(indices)]

    def get_images(self) -> Sequence[NDArray[Any] | None]:
        """No rendering: one ``None`` per sub-env."""
        return [None for _ in range(self.num_envs)]
