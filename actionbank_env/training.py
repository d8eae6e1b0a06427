"""Train a Stable-Baselines3 agent (PPO, A2C or DQN) on an ActionBank env: ``actionbank train``.

Writes a run folder ``results/train_<algo>_<UTC yyyymmdd-HHMMSS>/`` (or ``out``) with

- ``train_config.json``: the arguments, library versions;
- ``model.zip``: ``model.save`` (Stable-Baselines3's zip format; load it with ``PPO.load`` / ``A2C.load`` /
  ``DQN.load``, or serve it with ``agents.sb3.SB3PolicyAgent(model_path=...)``);
- ``tb/``: TensorBoard events: SB3's (``rollout/ep_rew_mean``, ``train/...``), the env's ground truth per rollout
  (``rollout/click_prob_mean``, ``rollout/regret_mean``) and the periodic deterministic evaluation (``eval/mean_reward``,
  ``eval/mean_click_prob``, ``eval/regret``, next to ``eval/{random,best_single_action,oracle}_{reward,click_prob}``
  on the same episodes). ``rollout/ep_rew_mean`` samples the *stochastic* policy; ``eval/`` is what it deploys;
- ``evaluation.json``: on ``n_eval_episodes`` fresh episodes (seeds ``seed + 1_000_000 + i``), the mean
  episode reward and mean ground-truth click probability per step of the trained policy (deterministic),
  of uniformly random actions, of the best single action in hindsight (the constant action with the
  highest mean click probability on those episodes, when the env reports ``info["click_prob"]``) and of the
  oracle (``info["best_click_prob"]``: the best action for every user; its reward is expected clicks). Random and
  constant actions use only real actions (``action_masks()``). ``"periodic"`` lists every evaluation during training.

Every file is written atomically. stable_baselines3 and torch are imported inside :func:`train`.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_bool, check_choice, check_int, check_str
from actionbank_env.core.io import atomic_write, atomic_write_json
from actionbank_env.errors import ConfigError, ConfigTypeError
from actionbank_env.integrations.sb3 import SB3_ALGORITHMS, sb3_class
from actionbank_env.results import (
    MODEL_FILE,
    TENSORBOARD_DIR,
    TRAIN_CONFIG_FILE,
    TRAIN_EVALUATION_FILE,
    RunFolder,
)

__all__ = ["TrainResult", "evaluate_baselines", "evaluate_policy_on_env", "evaluate_trained", "train"]

logger = logging.getLogger(__name__)


#: Offset of the evaluation episodes' seeds from the training seed (fresh episodes, never trained on).
EVAL_SEED_OFFSET = 1_000_000


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        path: The run folder.
        model_path: The saved model (``model.zip``).
        tensorboard_dir: TensorBoard log folder (``None`` when disabled).
        algo: Algorithm name.
        env_id: Environment id.
        mean_reward: Mean episode reward of the trained (deterministic) policy on the evaluation episodes.
        random_reward: Same for uniformly random actions.
        best_single_action_reward: Same for the best constant action in hindsight (``nan`` if unknown).
        oracle_reward: Expected clicks per episode of the oracle (the best action for every user).
        seconds: Wall time of training (``learn``) in seconds.
        evaluation: The content of ``evaluation.json``.
    """

    path: Path
    model_path: Path
    tensorboard_dir: Path | None
    algo: str
    env_id: str
    mean_reward: float
    random_reward: float
    best_single_action_reward: float
    oracle_reward: float
    seconds: float
    evaluation: dict[str, Any]


def _episode(env: Any, policy: Any, seed: int) -> tuple[float, float, float, int]:
    """Run one episode with ``policy(obs) -> action``; (total reward, summed click_prob, summed best_click_prob, steps)."""
    obs, _ = env.reset(seed=seed)
    total, expected, best, steps = 0.0, 0.0, 0.0, 0
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        total += float(reward)
        expected += float(info.get("click_prob", np.nan))
        best += float(info.get("best_click_prob", np.nan))
        steps += 1
        done = terminated or truncated
    return total, expected, best, steps


def _valid_actions(env: Any, seed: int) -> NDArray[np.int64]:
    """The actions that are real messages after ``reset(seed)`` (``action_masks()`` when the env has it)."""
    env.reset(seed=seed)
    masks = getattr(env.unwrapped, "action_masks", None)
    if masks is None:
        return np.arange(int(env.action_space.n))
    return np.flatnonzero(np.asarray(masks()))


def _summarise(env: Any, policy: Any, seeds: list[int]) -> dict[str, float]:
    runs = [_episode(env, policy, s) for s in seeds]
    steps = max(sum(r[3] for r in runs), 1)
    return {
        "mean_reward": float(np.mean([r[0] for r in runs])),
        "mean_click_prob": float(sum(r[1] for r in runs) / steps),
        "_oracle_reward": float(np.mean([r[2] for r in runs])),
        "_oracle_click_prob": float(sum(r[2] for r in runs) / steps),
    }


def evaluate_baselines(env: Any, *, seeds: list[int], rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """Random targeting, the best single action in hindsight and the oracle on the episodes of ``seeds``.

    Mask-aware: with ``observe_bank`` the random policy and the constant actions use only the real actions of
    the bank (``env.unwrapped.action_masks()``), never the padded slots that send no message.

    Returns:
        ``{"random": ..., "best_single_action": ..., "oracle": ...}``, each with ``mean_reward`` (per episode;
        for the oracle the *expected* clicks, the summed ``info["best_click_prob"]``) and ``mean_click_prob``
        (per step); ``best_single_action`` also has ``action``. The oracle is ``nan`` when the env reports no
        ``best_click_prob``.
    """
    valid = _valid_actions(env, seeds[0])
    random = _summarise(env, lambda obs: int(valid[rng.integers(len(valid))]), seeds)
    constant = [_summarise(env, lambda obs, a=int(a): a, seeds) for a in valid]
    values = np.array([c["mean_click_prob"] for c in constant])
    if np.all(np.isnan(values)):
        best = int(np.argmax([c["mean_reward"] for c in constant]))
    else:
        best = int(np.nanargmax(values))
    oracle = {"mean_reward": random["_oracle_reward"], "mean_click_prob": random["_oracle_click_prob"]}
    return {
        "random": _public(random),
        "best_single_action": {**_public(constant[best]), "action": int(valid[best])},
        "oracle": oracle,
    }


def _public(stats: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in stats.items() if not k.startswith("_")}


def evaluate_trained(env: Any, model: Any, *, seeds: list[int]) -> dict[str, float]:
    """The deterministic policy of ``model`` on the episodes of ``seeds``: ``mean_reward``, ``mean_click_prob``."""
    return _public(_summarise(env, lambda obs: int(model.predict(obs, deterministic=True)[0]), seeds))


def evaluate_policy_on_env(
    env: Any, model: Any, *, seeds: list[int], rng: np.random.Generator
) -> dict[str, dict[str, float]]:
    """Mean episode reward and mean click probability per step: trained policy, random, best single action, oracle.

    Args:
        env: A single Gymnasium env (``Discrete`` actions).
        model: A trained SB3 model (``predict(obs, deterministic=True)``).
        seeds: One episode per seed, the same episodes for every policy.
        rng: Draws the random policy's actions.

    Returns:
        ``{"trained": {...}, **evaluate_baselines(...)}`` (see :func:`evaluate_baselines`).
    """
    return {"trained": evaluate_trained(env, model, seeds=seeds), **evaluate_baselines(env, seeds=seeds, rng=rng)}


def _training_callback(eval_env: Any, seeds: list[int], eval_freq: int, baselines: dict[str, dict[str, float]]) -> Any:
    """An SB3 callback: ``info`` means per rollout, and a deterministic evaluation every ``eval_freq`` steps."""
    from stable_baselines3.common.callbacks import BaseCallback

    class TrainingMetrics(BaseCallback):  # type: ignore[misc]
        """Logs ``rollout/click_prob_mean`` and ``rollout/regret_mean`` (the env's ground truth from ``info``) per
        rollout, and ``eval/*`` (the deterministic policy on fresh episodes, next to random targeting, the best
        single action and the oracle on the same episodes) every ``eval_freq`` steps and at the end."""

        def __init__(self) -> None:
            super().__init__()
            self.history: list[dict[str, float]] = []
            self._next_eval = eval_freq
            self._sums = np.zeros(3)  # click_prob, regret, count

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", ()):
                if "click_prob" in info:
                    self._sums += (info["click_prob"], info.get("regret", np.nan), 1.0)
            if eval_freq and self.num_timesteps >= self._next_eval:
                self._next_eval += eval_freq
                self.evaluate()
            return True

        def _on_rollout_end(self) -> None:
            if self._sums[2]:
                self.logger.record("rollout/click_prob_mean", self._sums[0] / self._sums[2])
                self.logger.record("rollout/regret_mean", self._sums[1] / self._sums[2])
            self._sums[:] = 0.0

        def _on_training_end(self) -> None:
            if not self.history or self.history[-1]["timesteps"] < self.num_timesteps:
                self.evaluate()

        def evaluate(self) -> None:
            trained = evaluate_trained(eval_env, self.model, seeds=seeds)
            row = {
                "timesteps": float(self.num_timesteps),
                "mean_reward": trained["mean_reward"],
                "mean_click_prob": trained["mean_click_prob"],
                "regret": baselines["oracle"]["mean_click_prob"] - trained["mean_click_prob"],
            }
            for key, value in row.items():
                if key != "timesteps":
                    self.logger.record(f"eval/{key}", value)
            for name in ("random", "best_single_action", "oracle"):
                self.logger.record(f"eval/{name}_click_prob", baselines[name]["mean_click_prob"])
                self.logger.record(f"eval/{name}_reward", baselines[name]["mean_reward"])
            self.logger.dump(self.num_timesteps)
            self.history.append(row)

    return TrainingMetrics()


def train(
    algo: str,
    env_id: str = "ActionBank/Targeting-v0",
    *,
    total_timesteps: int,
    seed: int,
    results_dir: str | os.PathLike[str] = "results",
    out: str | os.PathLike[str] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    n_envs: int = 1,
    tensorboard: bool = True,
    algo_kwargs: dict[str, Any] | None = None,
    n_eval_episodes: int = 5,
    eval_freq: int | None = None,
    callbacks: Any = None,
) -> TrainResult:
    """Train PPO, A2C or DQN on ``env_id`` and write the run folder (see the module docstring).

    Args:
        algo: ``"ppo"``, ``"a2c"`` or ``"dqn"`` (case-insensitive).
        env_id: A registered Gymnasium id with ``Discrete`` actions.
        total_timesteps: Environment steps to train for (>= 1).
        seed: Seeds SB3 (``seed=``: torch, the policy's sampling), the training envs (``seed + i`` for env
            ``i``) and the evaluation (episodes ``seed + 1_000_000 + j``, random actions from
            ``default_rng(seed)``).
        results_dir: Parent folder of runs.
        out: Write into exactly this (new or empty) folder instead.
        env_kwargs: Keyword arguments of ``gymnasium.make`` (e.g. ``users_per_episode``, ``embedder``).
        n_envs: Parallel training envs (SB3 ``DummyVecEnv``).
        tensorboard: Log to ``tb/`` with SB3's TensorBoard writer.
        algo_kwargs: Extra keyword arguments of the SB3 class (``n_steps``, ``learning_rate``, ...).
        n_eval_episodes: Episodes of every evaluation (>= 1), the same fresh episodes each time.
        eval_freq: Evaluate the deterministic policy every this many env steps (logged as ``eval/*`` scalars
            and under ``"periodic"`` in ``evaluation.json``); ``None``: ten times per run; 0: only at the end.
        callbacks: SB3 callbacks (a ``BaseCallback`` or a list of them), run after this function's own.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ConfigError: For an unknown algorithm (with the closest name), invalid sizes or an env without
            ``Discrete`` actions; raised before any run folder is created.
    """
    algo = check_choice("train algo", algo.lower() if isinstance(algo, str) else algo, SB3_ALGORITHMS)
    env_id = check_str("train env_id", env_id)
    total_timesteps = check_int("train total_timesteps", total_timesteps, low=1)
    seed = check_int("train seed", seed, low=0)
    n_envs = check_int("train n_envs", n_envs, low=1)
    n_eval_episodes = check_int("train n_eval_episodes", n_eval_episodes, low=1)
    tensorboard = check_bool("train tensorboard", tensorboard)
    if eval_freq is None:
        eval_freq = max(total_timesteps // 10, 1)
    eval_freq = check_int("train eval_freq", eval_freq, low=0)
    env_kwargs = dict(env_kwargs or {})
    algo_kwargs = dict(algo_kwargs or {})
    for forbidden in ("seed", "tensorboard_log", "env", "policy"):
        if forbidden in algo_kwargs:
            raise ConfigTypeError(f"train algo_kwargs must not contain {forbidden!r}; it is set by train().")

    import gymnasium as gym
    import stable_baselines3
    import torch
    from gymnasium import spaces
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList
    from stable_baselines3.common.env_util import make_vec_env

    import actionbank_env  # noqa: F401  (registers the env ids)

    extra_callbacks = [callbacks] if isinstance(callbacks, BaseCallback) else list(callbacks or [])
    for callback in extra_callbacks:
        if not isinstance(callback, BaseCallback):
            raise TypeError(
                f"train callbacks must be stable_baselines3 BaseCallback objects, got {type(callback).__name__}."
            )
    # render_mode=None: SB3 asks for "rgb_array" by default, which the ActionBank envs do not render.
    # The envs and the model are built before the run folder, so a bad env id or keyword leaves nothing behind.
    try:
        vec_env = make_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs={"render_mode": None, **env_kwargs})
    except gym.error.Error as exc:
        raise ConfigError(f"train env_id {env_id!r} cannot be made: {exc}") from None
    except TypeError as exc:
        raise ConfigTypeError(f"train env_kwargs {env_kwargs!r} are not keywords of {env_id!r}: {exc}") from None
    eval_env = gym.make(env_id, **env_kwargs)
    if not isinstance(eval_env.action_space, spaces.Discrete):
        vec_env.close()
        raise ConfigError(
            f"train env_id must have a Discrete action space, {env_id} has {type(eval_env.action_space).__name__}."
        )
    policy = "MultiInputPolicy" if isinstance(vec_env.observation_space, spaces.Dict) else "MlpPolicy"
    cls = sb3_class(algo)
    try:
        model = cls(policy, vec_env, seed=seed, device="cpu", verbose=0, **algo_kwargs)
    except TypeError as exc:
        vec_env.close()
        raise ConfigTypeError(f"train algo_kwargs {algo_kwargs!r} are not keywords of {cls.__name__}: {exc}") from None
    except (AssertionError, ValueError) as exc:  # SB3 checks its hyperparameters with asserts
        vec_env.close()
        raise ConfigError(f"train algo_kwargs {algo_kwargs!r} are not valid for {cls.__name__}: {exc}") from None
    run = RunFolder.create(results_dir, f"train_{algo}", out=out, can_overwrite=False)
    tb_dir = run.path / TENSORBOARD_DIR if tensorboard else None
    model.tensorboard_log = str(tb_dir) if tb_dir is not None else None
    config = {
        "algo": algo,
        "env_id": env_id,
        "total_timesteps": total_timesteps,
        "seed": seed,
        "env_kwargs": env_kwargs,
        "n_envs": n_envs,
        "tensorboard": tensorboard,
        "algo_kwargs": algo_kwargs,
        "n_eval_episodes": n_eval_episodes,
        "eval_freq": eval_freq,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "gymnasium": gym.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "torch": torch.__version__,
        },
    }
    run.write_json(TRAIN_CONFIG_FILE, config)

    eval_seeds = [seed + EVAL_SEED_OFFSET + j for j in range(n_eval_episodes)]
    baselines = evaluate_baselines(eval_env, seeds=eval_seeds, rng=np.random.default_rng(seed))
    metrics = _training_callback(eval_env, eval_seeds, eval_freq, baselines)
    start = time.perf_counter()
    model.learn(
        total_timesteps=total_timesteps,
        tb_log_name=algo,
        progress_bar=False,
        callback=CallbackList([metrics, *extra_callbacks]),
    )
    seconds = time.perf_counter() - start
    vec_env.close()
    logger.info("trained %s on %s for %d steps in %.1f s", algo, env_id, total_timesteps, seconds)

    model_path = atomic_write(run.path / MODEL_FILE, model.save)

    # The callback evaluated the final policy on the evaluation episodes (deterministic, so it is the final row).
    final = metrics.history[-1]
    evaluation: dict[str, Any] = {
        "trained": {"mean_reward": final["mean_reward"], "mean_click_prob": final["mean_click_prob"]},
        **baselines,
        "n_episodes": n_eval_episodes,
        "train_seconds": seconds,
        "periodic": metrics.history,
    }
    eval_env.close()
    atomic_write_json(run.path / TRAIN_EVALUATION_FILE, evaluation)
    return TrainResult(
        path=run.path,
        model_path=model_path,
        tensorboard_dir=tb_dir,
        algo=algo,
        env_id=env_id,
        mean_reward=evaluation["trained"]["mean_reward"],
        random_reward=evaluation["random"]["mean_reward"],
        best_single_action_reward=evaluation["best_single_action"]["mean_reward"],
        oracle_reward=evaluation["oracle"]["mean_reward"],
        seconds=seconds,
        evaluation=evaluation,
    )
