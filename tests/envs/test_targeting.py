"""ActionBank/Targeting-v0: the Gymnasium and SB3 contracts, seeding, rewards, bank changes and errors."""

from __future__ import annotations

import io
import re
import warnings
from contextlib import redirect_stdout
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.utils.env_checker import check_env

from actionbank_env.envs._common import cached_world
from actionbank_env.envs.registration import ENV_IDS, register_envs
from actionbank_env.envs.targeting import TargetingConfig, TargetingEnv
from actionbank_env.errors import ConfigError
from tests.envs.helpers import TINY_WORLD, rollout, world


def make(**kwargs: Any) -> gym.Env[Any, Any]:
    return gym.make("ActionBank/Targeting-v0", world=world(), **{"users_per_episode": 50, **kwargs})


@pytest.mark.parametrize("observe_bank", [False, True])
def test_gymnasium_check_env(observe_bank: bool) -> None:
    check_env(make(observe_bank=observe_bank, render_mode="ansi").unwrapped)


@pytest.mark.parametrize("observe_bank", [False, True])
def test_sb3_check_env(observe_bank: bool) -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        # SB3 recommends flat Box observations; the bank is (max_bank_size, bank_obs_dim) on purpose
        # (MultiInputPolicy flattens it; custom policies can use the per-action rows).
        warnings.filterwarnings("ignore", message=".*unconventional shape", category=UserWarning)
        sb3_check_env(make(observe_bank=observe_bank).unwrapped)


def test_registration_is_idempotent_and_listed() -> None:
    register_envs()
    register_envs()
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        gym.pprint_registry()
    for env_id in ENV_IDS:
        assert env_id in gym.registry
        assert env_id.split("/")[1] in buffer.getvalue()


def test_spaces_and_info() -> None:
    env = make()
    obs, info = env.reset(seed=0)
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (8,), np.float32)
    assert env.action_space == gym.spaces.Discrete(10)
    assert obs.dtype == np.float32 and info == {}
    _, reward, terminated, truncated, info = env.step(3)
    assert reward in (0.0, 1.0) and not terminated and not truncated
    assert info["action_id"] == world().initial_bank.ids[3]
    assert info["user_id"] == 0
    assert 0.0 <= info["click_prob"] <= info["best_click_prob"] <= 1.0
    assert info["regret"] == pytest.approx(info["best_click_prob"] - info["click_prob"])


def test_click_probs_match_the_ground_truth() -> None:
    env = make().unwrapped
    env.reset(seed=5)
    assert env.users.shape == (50, 8) and env.users.dtype == np.float32
    # obs are float32 but probabilities come from the float64 users: compare loosely
    expected = world().ground_truth.click_prob(env.users.astype(np.float64), world().initial_bank.embeddings)
    probs = [env.step(t)[4]["click_prob"] for t in range(10)]
    np.testing.assert_allclose(probs, expected[np.arange(10), np.arange(10)], rtol=1e-4)


def test_episode_terminates_at_the_last_user() -> None:
    env = make(users_per_episode=3)
    env.reset(seed=0)
    flags = [env.step(0)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (True, False)]
    with pytest.raises(ResetNeeded):
        env.unwrapped.step(0)


def test_step_before_reset_raises() -> None:
    with pytest.raises(ResetNeeded, match="reset"):
        make().unwrapped.step(0)


@pytest.mark.parametrize("observe_bank", [False, True])
def test_seeded_rollouts_are_identical(observe_bank: bool) -> None:
    actions = np.random.default_rng(0).integers(10, size=120).tolist()
    first = rollout(make(observe_bank=observe_bank), 7, actions)
    second = rollout(make(observe_bank=observe_bank), 7, actions)
    other = rollout(make(observe_bank=observe_bank), 8, actions)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_random_actions_reward_matches_click_prob() -> None:
    env = make(users_per_episode=1000).unwrapped
    rng = np.random.default_rng(1)
    rewards, probs = [], []
    env.reset(seed=1)
    for a in rng.integers(10, size=20_000).tolist():
        _, r, terminated, _, info = env.step(a)
        rewards.append(r)
        probs.append(info["click_prob"])
        if terminated:
            env.reset()
    rewards_, probs_ = np.array(rewards), np.array(probs)
    se = np.sqrt(probs_.mean() * (1 - probs_.mean()) / len(rewards_))
    assert abs(rewards_.mean() - probs_.mean()) < 4 * se


@pytest.mark.parametrize(
    "action",
    [10, -1, 2.0, float("nan"), "1", None, np.array([1, 2]), np.float32(1.0), True],
    ids=["too-big", "negative", "float", "nan", "str", "none", "vector", "np-float", "bool"],
)
def test_invalid_actions_raise_and_env_stays_usable(action: Any) -> None:
    env = make().unwrapped
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match=re.escape("action must be")):
        env.step(action)
    _, _, _, _, info = env.step(np.int64(2))
    assert info["user_id"] == 0  # the invalid call served nobody
    assert env.step(np.array(1))[4]["user_id"] == 1


def test_bank_replacement_keeps_ids_and_checks_size() -> None:
    env = make().unwrapped
    texts = list(world().initial_bank.texts[:9]) + ["A brand new subject line"]
    env.reset(seed=0, options={"bank": texts})
    assert env.bank.ids[:9] == world().initial_bank.ids[:9]
    assert env.bank.ids[9] not in world().initial_bank.ids
    assert env.step(9)[4]["action_id"] == env.bank.ids[9]
    env.reset(seed=0)  # the bank stays until replaced
    assert env.bank.texts[9] == "A brand new subject line"
    with pytest.raises(ConfigError, match=re.escape("bank must have exactly 10 actions")):
        env.reset(options={"bank": texts[:5]})
    with pytest.raises(TypeError, match="ActionBank or a sequence of texts"):
        env.reset(options={"bank": "one text"})


def test_observe_bank_mode_generalises_across_banks() -> None:
    env = make(observe_bank=True, max_bank_size=12).unwrapped
    assert env.action_space == gym.spaces.Discrete(12)
    obs, _ = env.reset(seed=0)
    assert obs["bank"].shape == (12, 16) and obs["action_mask"].tolist() == [1.0] * 10 + [0.0] * 2
    assert np.all(np.abs(obs["bank"]) <= 1.0) and np.all(obs["bank"][10:] == 0)
    small = world().initial_bank.texts[:4]
    obs, _ = env.reset(seed=0, options={"bank": small})
    assert obs["action_mask"].tolist() == [1.0] * 4 + [0.0] * 8
    np.testing.assert_array_equal(obs["bank"][:4], env._bank_features[:4])
    # a masked slot means "no message": reward 0, click_prob 0, the whole best probability as regret
    _, reward, _, _, info = env.step(7)
    assert reward == 0.0 and info["click_prob"] == 0.0 and info["action_id"] == ""
    assert info["regret"] == info["best_click_prob"] > 0
    with pytest.raises(ConfigError, match="at most max_bank_size=12"):
        env.reset(options={"bank": [f"subject line number {i}" for i in range(13)]})


def test_render_ansi() -> None:
    env = make(render_mode="ansi")
    env.reset(seed=0)
    assert "no user served yet" in env.render()
    _, reward, _, _, info = env.step(4)
    line = env.render()
    assert world().initial_bank.texts[4] in line and f"click_prob={info['click_prob']:.3f}" in line


def test_world_kwargs_build_a_cached_world() -> None:
    first = gym.make("ActionBank/Targeting-v0", users_per_episode=5, **TINY_WORLD).unwrapped
    second = gym.make("ActionBank/Targeting-v0", **TINY_WORLD).unwrapped
    assert first.world is second.world
    assert first.action_space.n == TINY_WORLD["initial_actions"]
    assert cached_world.cache_info().hits >= 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"users_per_episode": 0}, ValueError, "TargetingConfig.users_per_episode must be"),
        ({"observe_bank": 1}, TypeError, "TargetingConfig.observe_bank"),
        ({"users_per_episod": 5}, TypeError, "Did you mean 'users_per_episode'?"),
        ({"render_mode": 3}, TypeError, "TargetingEnv.render_mode must be a string or None, got int."),
        (
            {"observe_bank": True, "max_bank_size": 3},
            ConfigError,
            "max_bank_size=3 must be >= the initial bank size 10",
        ),
        ({"world_seed": 1}, ConfigError, "got both world= and world settings ['world_seed']"),
    ],
)
def test_bad_kwargs(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        TargetingEnv(world=world(), **kwargs)


def test_config_object_and_fields_are_exclusive() -> None:
    env = TargetingEnv(TargetingConfig(users_per_episode=4), world=world())
    assert env.config.users_per_episode == 4
    with pytest.raises(ConfigError, match="both config= and the config fields"):
        TargetingEnv(TargetingConfig(), world=world(), users_per_episode=3)


@pytest.mark.slow
def test_default_ids_work_with_the_default_world() -> None:
    # The only test with the default (MiniLM) embedder: what the issue asks to show after `import actionbank_env`.
    import actionbank_env  # noqa: F401  (registers the ids)

    env = gym.make("ActionBank/Targeting-v0")
    assert env.reset(seed=0)[0].shape == (8,)
    venv = gym.make_vec("ActionBank/Targeting-v0", num_envs=1024, vectorization_mode="vector_entry_point")
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (1024, 8) and venv.step(venv.action_space.sample())[1].shape == (1024,)
    design = gym.make("ActionBank/BankDesign-v0")
    _, info = design.reset(seed=0)
    assert len(info["log"]) == 1000 and env.unwrapped.world is design.unwrapped.world
