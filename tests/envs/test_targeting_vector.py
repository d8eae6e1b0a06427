"""The native vector twin of Targeting-v0 and gymnasium's own vectorisers on Targeting-v0."""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from actionbank_env.envs.targeting_vector import TargetingVectorEnv
from tests.envs.helpers import TINY_WORLD, rollout, world


def make_vec(num_envs: int, **kwargs: Any) -> TargetingVectorEnv:
    env = gym.make_vec(
        "ActionBank/Targeting-v0",
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        world=world(),
        **{"users_per_episode": 20, **kwargs},
    )
    assert isinstance(env, TargetingVectorEnv)
    return env


def vec_rollout(env: gym.vector.VectorEnv, seed: int, actions: np.ndarray) -> tuple[np.ndarray, ...]:
    obs, _ = env.reset(seed=seed)
    observations, rewards, dones = [obs], [], []
    for row in actions:
        obs, reward, terminated, truncated, _ = env.step(row)
        observations.append(obs)
        rewards.append(reward)
        dones.append(terminated | truncated)
    return np.asarray(observations), np.asarray(rewards), np.asarray(dones)


def test_make_vec_spaces_and_metadata() -> None:
    env = make_vec(16)
    assert env.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert env.single_action_space == gym.spaces.Discrete(10)
    assert env.action_space == gym.spaces.MultiDiscrete([10] * 16)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (16, 8) and obs.dtype == np.float32 and obs in env.observation_space
    obs, rewards, terminated, truncated, info = env.step(np.arange(16) % 10)
    assert rewards.shape == terminated.shape == truncated.shape == (16,)
    assert set(info) >= {"click_prob", "best_click_prob", "regret", "action_id", "user_id", "_click_prob"}
    np.testing.assert_allclose(info["regret"], info["best_click_prob"] - info["click_prob"])
    assert info["user_id"].tolist() == list(range(16))


def test_seeded_rollouts_are_identical() -> None:
    actions = np.random.default_rng(0).integers(10, size=(45, 8))
    first = vec_rollout(make_vec(8), 3, actions)
    second = vec_rollout(make_vec(8), 3, actions)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], vec_rollout(make_vec(8), 4, actions)[0])


def test_one_sub_env_equals_the_single_env() -> None:
    actions = np.random.default_rng(0).integers(10, size=19)
    single = rollout(gym.make("ActionBank/Targeting-v0", world=world(), users_per_episode=20), 11, actions.tolist())
    vector = vec_rollout(make_vec(1), 11, actions[:, None])
    np.testing.assert_array_equal(single[0], vector[0][:, 0])
    np.testing.assert_array_equal(single[1], vector[1][:, 0])


def test_same_step_autoreset_wastes_no_step() -> None:
    env = make_vec(4, users_per_episode=3, autoreset_mode="same_step")
    env.reset(seed=0)
    for _ in range(2):
        obs, _, terminated, _, info = env.step(np.zeros(4, dtype=np.int64))
        assert not terminated.any() and "final_obs" not in info
    last_users = obs
    obs, _, terminated, _, info = env.step(np.zeros(4, dtype=np.int64))
    assert terminated.all()
    np.testing.assert_array_equal(np.stack(info["final_obs"]), last_users)
    assert info["_final_obs"].all() and "click_prob" in info["final_info"]
    assert not np.array_equal(obs, last_users)  # the returned obs is the next episode's first user
    _, _, terminated, _, info = env.step(np.zeros(4, dtype=np.int64))
    assert not terminated.any() and info["user_id"].tolist() == [0, 1, 2, 3]


def test_blocks_of_many_steps_stay_consistent() -> None:
    # 3000 sub-envs: blocks of 10 steps, so an episode of 25 users crosses block boundaries.
    env = make_vec(3000, users_per_episode=25, autoreset_mode="same_step")
    env.reset(seed=0)
    ids = []
    for _ in range(25):
        _, _, terminated, _, info = env.step(np.zeros(3000, dtype=np.int64))
        ids.append(info["user_id"])
    assert terminated.all()
    np.testing.assert_array_equal(np.concatenate(ids), np.arange(25 * 3000))


@pytest.mark.skipif(
    tuple(int(p) for p in gym.__version__.split(".")[:2]) < (1, 4),
    reason="gymnasium < 1.4's vector RecordEpisodeStatistics ignores SAME_STEP autoreset (ray[rllib] pins 1.2.2)",
)
def test_record_episode_statistics() -> None:
    env = RecordEpisodeStatistics(make_vec(6, users_per_episode=10, autoreset_mode=AutoresetMode.SAME_STEP))
    env.reset(seed=0)
    total = np.zeros(6)
    for t in range(25):
        _, rewards, terminated, _, info = env.step(np.full(6, 2))
        total += rewards
        if t == 9:
            assert terminated.all()
            np.testing.assert_array_equal(info["episode"]["l"], np.full(6, 10))
            np.testing.assert_array_equal(info["episode"]["r"], total)
            total[:] = 0
    assert len(env.length_queue) == 12 and set(env.length_queue) == {10}


def test_invalid_actions_raise_and_env_stays_usable() -> None:
    env = make_vec(4)
    with pytest.raises(ResetNeeded):
        env.step(np.zeros(4, dtype=np.int64))
    env.reset(seed=0)
    for bad in (np.array([0, 1, 2, 10]), np.array([0, 1, 2]), np.array([0.0, 1.0, 2.0, 3.0]), np.array([0, -1, 0, 0])):
        with pytest.raises(InvalidAction, match=re.escape("actions must be")):
            env.step(bad)
    _, _, _, _, info = env.step(np.array([0, 1, 2, 3]))
    assert info["user_id"].tolist() == [0, 1, 2, 3]


def test_observe_bank_and_bank_option() -> None:
    env = make_vec(5, observe_bank=True, max_bank_size=12)
    obs, _ = env.reset(seed=0, options={"bank": world().initial_bank.texts[:3]})
    assert obs in env.observation_space
    assert obs["bank"].shape == (5, 12, 16) and obs["action_mask"][:, :3].all() and not obs["action_mask"][:, 3:].any()
    _, rewards, _, _, info = env.step(np.array([0, 1, 2, 3, 11]))
    assert (
        info["action_id"].tolist()[3:] == ["", ""] and (info["click_prob"][3:] == 0).all() and (rewards[3:] == 0).all()
    )


def test_async_vector_env_rollouts_are_identical() -> None:
    actions = np.random.default_rng(0).integers(TINY_WORLD["initial_actions"], size=(12, 2))

    def run() -> tuple[np.ndarray, ...]:
        env = gym.make_vec(
            "ActionBank/Targeting-v0", num_envs=2, vectorization_mode="async", users_per_episode=5, **TINY_WORLD
        )
        try:
            return vec_rollout(env, 9, actions)
        finally:
            env.close()

    first, second = run(), run()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[2].sum() == 4  # both sub-envs ended episodes after steps 5 and 10
