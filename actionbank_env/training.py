"""Train a Stable-Baselines3 agent (PPO, A2C or DQN) on an ActionBank env: ``actionbank train``.

Writes a run folder ``results/train_<algo>_<UTC yyyymmdd-HHMMSS>/`` (or ``out``) with

- ``train_config.json``: the arguments, library versions;
- ``model.zip``: ``model.save`` (Stable-Baselines3's zip format; load it with ``PPO.load`` / ``A2C.load`` /
  ``DQN.load``, or serve it with ``agents.sb3.SB3PolicyAgent(model_path=...)``);
- ``tb/``: TensorBoard events (SB3's ``rollout/ep_rew_mean``, ``train/...``);
- ``evaluation.json``: on ``n_eval_episodes`` fresh episodes (seeds ``seed + 1_000_000 + i``), the mean
  episode reward and mean ground-truth click probability per step of the trained policy (deterministic),
  of uniformly random actions, and of the best single action in hindsight (the constant action with the
  highest mean click probability on those episodes, when the env reports ``info["click_prob"]``).

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

from actionbank_env._validation import check_bool, check_choice, check_int, check_str
from actionbank_env.core.io import atomic_write, atomic_write_json
from actionbank_env.integrations.sb3 import SB3_ALGORITHMS, sb3_class
from actionbank_env.results import (
    MODEL_FILE,
    TENSORBOARD_DIR,
    TRAIN_CONFIG_FILE,
    TRAIN_EVALUATION_FILE,
    RunFolder,
)

__all__ = ["TrainResult", "train", "evaluate_policy_on_env"]

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
    seconds: float
    evaluation: dict[str, Any]


def _episode(env: Any, policy: Any, seed: int) -> tuple[float, float, int]:
    """Run one episode with ``policy(obs) -> action``; (total reward, summed click_prob, steps)."""
    obs, _ = env.reset(seed=seed)
    total, expected, steps = 0.0, 0.0, 0
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        total += float(reward)
        expected += float(info.get("click_prob", np.nan))
        steps += 1
        done = terminated or truncated
    return total, expected, steps


def evaluate_policy_on_env(
    env: Any, model: Any, *, seeds: list[int], rng: np.random.Generator
) -> dict[str, dict[str, float]]:
    """Mean episode reward and mean click probability per step: trained policy, random, best single action.

    Args:
        env: A single Gymnasium env (``Discrete`` actions).
        model: A trained SB3 model (``predict(obs, deterministic=True)``).
        seeds: One episode per seed, the same episodes for every policy.
        rng: Draws the random policy's actions.

    Returns:
        ``{"trained": {...}, "random": {...}, "best_single_action": {...}}``, each with ``mean_reward``
        (per episode) and ``mean_click_prob`` (per step); the last also has ``action``.
    """
    n_actions = int(env.action_space.n)

    def summarise(policy: Any) -> dict[str, float]:
        runs = [_episode(env, policy, s) for s in seeds]
        steps = sum(r[2] for r in runs)
        return {
            "mean_reward": float(np.mean([r[0] for r in runs])),
            "mean_click_prob": float(sum(r[1] for r in runs) / max(steps, 1)),
        }

    out = {
        "trained": summarise(lambda obs: int(model.predict(obs, deterministic=True)[0])),
        "random": summarise(lambda obs: int(rng.integers(n_actions))),
    }
    constant = [summarise(lambda obs, a=a: a) for a in range(n_actions)]
    values = np.array([c["mean_click_prob"] for c in constant])
    if np.all(np.isnan(values)):
        best = int(np.argmax([c["mean_reward"] for c in constant]))
    else:
        best = int(np.nanargmax(values))
    out["best_single_action"] = {**constant[best], "action": best}
    return out


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
        n_eval_episodes: Episodes of the final evaluation (>= 1).

    Returns:
        A :class:`TrainResult`.

    Raises:
        ConfigError: For an unknown algorithm (with the closest name) or invalid sizes.
    """
    algo = check_choice("train algo", algo.lower() if isinstance(algo, str) else algo, SB3_ALGORITHMS)
    env_id = check_str("train env_id", env_id)
    total_timesteps = check_int("train total_timesteps", total_timesteps, low=1)
    seed = check_int("train seed", seed, low=0)
    n_envs = check_int("train n_envs", n_envs, low=1)
    n_eval_episodes = check_int("train n_eval_episodes", n_eval_episodes, low=1)
    tensorboard = check_bool("train tensorboard", tensorboard)
    env_kwargs = dict(env_kwargs or {})
    algo_kwargs = dict(algo_kwargs or {})
    for forbidden in ("seed", "tensorboard_log", "env", "policy"):
        if forbidden in algo_kwargs:
            raise TypeError(f"train algo_kwargs must not contain {forbidden!r}; it is set by train().")

    import gymnasium as gym
    import stable_baselines3
    import torch
    from gymnasium import spaces
    from stable_baselines3.common.env_util import make_vec_env

    import actionbank_env  # noqa: F401  (registers the env ids)

    run = RunFolder.create(results_dir, f"train_{algo}", out=out)
    tb_dir = run.path / TENSORBOARD_DIR if tensorboard else None
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
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "gymnasium": gym.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "torch": torch.__version__,
        },
    }
    run.write_json(TRAIN_CONFIG_FILE, config)

    # render_mode=None: SB3 asks for "rgb_array" by default, which the ActionBank envs do not render.
    vec_env = make_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs={"render_mode": None, **env_kwargs})
    policy = "MultiInputPolicy" if isinstance(vec_env.observation_space, spaces.Dict) else "MlpPolicy"
    cls = sb3_class(algo)
    model = cls(
        policy,
        vec_env,
        seed=seed,
        tensorboard_log=str(tb_dir) if tb_dir is not None else None,
        device="cpu",
        verbose=0,
        **algo_kwargs,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=total_timesteps, tb_log_name=algo, progress_bar=False)
    seconds = time.perf_counter() - start
    vec_env.close()
    logger.info("trained %s on %s for %d steps in %.1f s", algo, env_id, total_timesteps, seconds)

    model_path = atomic_write(run.path / MODEL_FILE, model.save)

    eval_env = gym.make(env_id, **env_kwargs)
    try:
        evaluation = evaluate_policy_on_env(
            eval_env,
            model,
            seeds=[seed + EVAL_SEED_OFFSET + j for j in range(n_eval_episodes)],
            rng=np.random.default_rng(seed),
        )
    finally:
        eval_env.close()
    evaluation["n_episodes"] = n_eval_episodes
    evaluation["train_seconds"] = seconds
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
        seconds=seconds,
        evaluation=evaluation,
    )
