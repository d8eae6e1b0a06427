"""Learning on Targeting-v0: SB3 PPO beats random targeting in a small budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from tests.envs.helpers import TINY_WORLD

# Few actions and a higher base CTR: clicks are informative enough for PPO in ~4k steps.
PPO_WORLD = {
    **TINY_WORLD,
    "world_seed": 0,
    "embedding_dim": 64,
    "initial_actions": 5,
    "n_reference_texts": 64,
    "n_reference_users": 512,
    "base_ctr": 0.2,
    "max_utility": 0.6,  # a strong-signal world: base_ctr * best_lift must stay below the ceiling
}


def mean_click_prob(env: gym.Env[Any, Any], policy: Callable[[Any], int], n_steps: int = 2000) -> float:
    obs, _ = env.reset(seed=123)
    probs = []
    for _ in range(n_steps):
        obs, _, terminated, _, info = env.step(policy(obs))
        probs.append(info["click_prob"])
        if terminated:
            obs, _ = env.reset()
    return float(np.mean(probs))


@pytest.mark.slow
def test_ppo_beats_random_targeting() -> None:
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    env = gym.make("ActionBank/Targeting-v0", users_per_episode=256, **PPO_WORLD)
    model = PPO("MlpPolicy", env, n_steps=512, batch_size=128, learning_rate=3e-3, seed=0, device="cpu")
    model.learn(4096)
    rng = np.random.default_rng(0)
    eval_env = gym.make("ActionBank/Targeting-v0", users_per_episode=256, **PPO_WORLD)
    ppo = mean_click_prob(eval_env, lambda obs: int(model.predict(obs, deterministic=True)[0]))
    random = mean_click_prob(eval_env, lambda obs: int(rng.integers(5)))
    obs, _ = eval_env.reset(seed=123)
    best = np.mean([eval_env.step(0)[4]["best_click_prob"] for _ in range(255)])
    # PPO closes at least half of the gap between random and perfect targeting.
    assert ppo - random > 0.5 * (best - random), (ppo, random, best)
