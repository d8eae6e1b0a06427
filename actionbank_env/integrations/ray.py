"""Ray / RLlib integration: the ``ActionBank/*`` envs in Ray's env registry, seeded per remote worker.

RLlib builds environments on its remote EnvRunners from a name in ``ray.tune.registry``; the creator gets
an ``EnvContext`` (the ``env_config`` dict plus ``worker_index`` and ``vector_index``). After
:func:`register_ray_envs`, ``PPOConfig().environment("ActionBank/Targeting-v0", env_config={...})`` works
on any worker::

    from actionbank_env.integrations.ray import register_ray_envs

    register_ray_envs()
    config = PPOConfig().environment(
        "ActionBank/Targeting-v0", env_config={"embedder": "hashing", "users_per_episode": 200, "seed": 0}
    )

``env_config`` holds the ``gymnasium.make`` keyword arguments of the env, plus:

- ``seed`` (default 0): the base seed. The first ``reset()`` without a seed of each environment is seeded
  with :func:`worker_seed` of (base seed, ``worker_index``, ``vector_index``, copy), where *copy* counts the
  environments built from the same ``EnvContext`` (RLlib's new API stack builds the sub-environments of
  one EnvRunner from one context with ``vector_index=0``). So remote workers' rollouts differ, and the same
  config reproduces them. Later resets continue the env's own stream. An explicit ``reset(seed=...)``
  (e.g. from ``AlgorithmConfig.debugging(seed=...)``) wins.
- ``catalog`` and ``bank_size`` (``BankDesign-v0`` only): wrap the env in
  :class:`~actionbank_env.envs.wrappers.FixedCatalogActionWrapper`, so its action is a ``Box`` of scores
  over the catalog texts instead of a sequence of texts that RL libraries cannot produce.

Ray is an optional extra: this module imports it only inside :func:`register_ray_envs`, which raises an
``ImportError`` naming the extra when Ray is missing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from actionbank_env.envs.registration import ENV_IDS, register_envs
from actionbank_env.errors import ConfigError, MissingExtraError

__all__ = ["make_ray_env", "register_ray_envs", "worker_seed"]

_COPIES_ATTR = "_actionbank_env_copies"


def worker_seed(base_seed: int, worker_index: int, vector_index: int = 0, copy: int = 0) -> int:
    """The episode seed of one environment of one RLlib worker: independent streams, reproducible.

    A ``SeedSequence`` of the four integers (no arithmetic collisions such as worker 1, env 1000 and
    worker 2, env 0), reduced to a 63-bit int.

    Example:
        >>> worker_seed(0, 1) == worker_seed(0, 1), worker_seed(0, 1) == worker_seed(0, 2)
        (True, False)
    """
    entropy = [int(base_seed), int(worker_index), int(vector_index), int(copy)]
    return int(np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


class _SeedFirstReset(gym.Wrapper[Any, Any, Any, Any]):
    """Seeds the first ``reset()`` that comes without a seed; later ones continue the env's stream."""

    def __init__(self, env: gym.Env[Any, Any], seed: int) -> None:
        super().__init__(env)
        self.first_seed = seed
        self._pending = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is None and self._pending:
            seed = self.first_seed
        self._pending = False
        return self.env.reset(seed=seed, options=options)


class _SeedFirstResetVector(gym.vector.VectorWrapper):
    """The vector twin of :class:`_SeedFirstReset` (``num_envs`` consecutive seeds from ``seed``)."""

    def __init__(self, env: gym.vector.VectorEnv[Any, Any, Any], seed: int) -> None:
        super().__init__(env)
        self.first_seed = seed
        self._pending = True

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        if seed is None and self._pending:
            seed = self.first_seed
        self._pending = False
        return self.env.reset(seed=seed, options=options)


def make_ray_env(
    env_id: str, env_context: Mapping[str, Any]
) -> gym.Env[Any, Any] | gym.vector.VectorEnv[Any, Any, Any]:
    """Build ``env_id`` from an RLlib ``EnvContext`` (or a plain dict): the env creator of :func:`register_ray_envs`.

    Args:
        env_id: A registered ``ActionBank/*`` id.
        env_context: ``gymnasium.make`` keyword arguments plus ``seed``, ``catalog`` / ``bank_size``
            (``BankDesign-v0``) and, when RLlib asks for a vector env, ``num_envs``; its ``worker_index`` and
            ``vector_index`` attributes (0 for a plain dict) pick the seed.

    Returns:
        The env (when asked for ``num_envs``: the native vector env of Targeting-v0 or Retention-v0, in its default NEXT_STEP
        autoreset mode, which RLlib expects; a ``SyncVectorEnv`` for BankDesign-v0), whose first unseeded reset
        uses :func:`worker_seed` (one stream for the native env's batch; sub-env ``i`` of a ``SyncVectorEnv`` gets
        that seed + ``i``). A vector env built this way gets
        ``worker_index`` 0 (RLlib passes a plain dict there); set ``AlgorithmConfig.debugging(seed=...)``
        for distinct per-worker streams in that mode.

    Example:
        >>> config = {"embedder": "hashing", "users_per_episode": 5, "initial_actions": 5, "seed": 7,
        ...           "n_reference_texts": 64, "n_reference_users": 256}
        >>> first, _ = make_ray_env("ActionBank/Targeting-v0", config).reset()
        >>> again, _ = make_ray_env("ActionBank/Targeting-v0", config).reset()
        >>> other, _ = make_ray_env("ActionBank/Targeting-v0", {**config, "seed": 8}).reset()
        >>> bool(np.array_equal(first, again)), bool(np.array_equal(first, other))
        (True, False)
    """
    register_envs()
    if env_id not in ENV_IDS:
        raise ConfigError(f"env_id must be one of {list(ENV_IDS)}, got {env_id!r}.")
    kwargs = dict(env_context)
    base_seed = kwargs.pop("seed", 0)
    if isinstance(base_seed, bool) or not isinstance(base_seed, int | np.integer) or base_seed < 0:
        raise ConfigError(f"env_config['seed'] must be an int >= 0, got {base_seed!r}.")
    num_envs = kwargs.pop("num_envs", None)
    catalog: Sequence[str] | None = kwargs.pop("catalog", None)
    bank_size = kwargs.pop("bank_size", None)
    if (catalog is None) != (bank_size is None) or (catalog is not None and env_id != "ActionBank/BankDesign-v0"):
        raise ConfigError(
            "env_config['catalog'] and env_config['bank_size'] must be given together and only for "
            f"ActionBank/BankDesign-v0, got catalog={'set' if catalog is not None else None}, bank_size={bank_size!r} "
            f"for {env_id}."
        )
    worker_index = int(getattr(env_context, "worker_index", 0) or 0)
    vector_index = int(getattr(env_context, "vector_index", 0) or 0)
    copy = int(getattr(env_context, _COPIES_ATTR, 0))
    try:
        setattr(env_context, _COPIES_ATTR, copy + 1)
    except AttributeError:  # a plain dict: one env per context
        copy = 0
    seed = worker_seed(int(base_seed), worker_index, vector_index, copy)

    if num_envs is not None and env_id in ("ActionBank/Targeting-v0", "ActionBank/Retention-v0"):
        # The native vector env; its default NEXT_STEP autoreset is what RLlib's EnvRunners expect.
        native = gym.make_vec(env_id, num_envs=int(num_envs), vectorization_mode="vector_entry_point", **kwargs)
        return _SeedFirstResetVector(native, seed)
    if num_envs is not None:
        wrappers = None
        if catalog is not None:
            from actionbank_env.envs.wrappers import FixedCatalogActionWrapper

            wrappers = [functools.partial(FixedCatalogActionWrapper, catalog=list(catalog), bank_size=bank_size)]
        vec_kwargs: dict[str, Any] = {"wrappers": wrappers} if wrappers else {}
        vec = gym.make_vec(env_id, num_envs=int(num_envs), vectorization_mode="sync", **vec_kwargs, **kwargs)
        return _SeedFirstResetVector(vec, seed)
    env: gym.Env[Any, Any] = gym.make(env_id, **kwargs)
    if catalog is not None:
        from actionbank_env.envs.wrappers import FixedCatalogActionWrapper

        env = FixedCatalogActionWrapper(env, catalog=list(catalog), bank_size=int(bank_size))
    return _SeedFirstReset(env, seed)


def _import_ray() -> Any:
    try:
        import ray
        from ray.tune.registry import register_env
    except ImportError:
        raise MissingExtraError("ray", "actionbank_env.integrations.ray") from None
    return ray, register_env


def register_ray_envs(env_ids: Sequence[str] = ENV_IDS) -> tuple[str, ...]:
    """Register ``ActionBank/Targeting-v0`` and ``ActionBank/BankDesign-v0`` with ``ray.tune.registry``.

    Call it in the driver before building the algorithm; Ray ships the registry to its workers. The names
    are the Gymnasium ids, so ``config.environment("ActionBank/Targeting-v0", env_config={...})``.

    Args:
        env_ids: The ids to register (default: all of this package's).

    Returns:
        The registered names.

    Raises:
        MissingExtraError: Without Ray (an ImportError naming the ``ray`` extra).
        ConfigError: For an id this package does not register.
    """
    _, register_env = _import_ray()
    for env_id in env_ids:
        if env_id not in ENV_IDS:
            raise ConfigError(f"env_ids must be among {list(ENV_IDS)}, got {env_id!r}.")
        register_env(env_id, functools.partial(make_ray_env, env_id))
    return tuple(env_ids)
