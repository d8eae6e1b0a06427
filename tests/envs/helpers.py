"""Small worlds and rollout helpers for the environment tests."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from actionbank_env.core.world import World
from actionbank_env.envs.registration import register_envs
from tests.worlds import hashing_world

register_envs()

#: World settings small enough to build in well under a second (for subprocess envs and kwargs tests).
TINY_WORLD: dict[str, Any] = {
    "world_seed": 3,
    "embedder": "hashing",
    "embedding_dim": 32,
    "initial_actions": 4,
    "n_reference_texts": 32,
    "n_reference_users": 128,
    "cache_embeddings": False,
}


def world() -> World:
    """The shared cached test world (10 actions, hashing embedder)."""
    return hashing_world()


def rollout(env: gym.Env[Any, Any], seed: int, actions: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observations (user part), rewards and click probabilities of a seeded rollout with fixed actions."""
    obs, _ = env.reset(seed=seed)
    observations, rewards, probs = [_user(obs)], [], []
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        observations.append(_user(obs))
        rewards.append(reward)
        probs.append(info["click_prob"])
        if terminated or truncated:
            obs, _ = env.reset()
            observations.append(_user(obs))
    return np.asarray(observations), np.asarray(rewards), np.asarray(probs)


def _user(obs: Any) -> np.ndarray:
    return np.array(obs["user"] if isinstance(obs, dict) else obs)
