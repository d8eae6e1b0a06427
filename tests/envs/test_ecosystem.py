"""The envs as Gymnasium / SB3 / sb3-contrib users meet them (issue 19, items 1, 2, 4, 5 and 6).

RLlib's side of item 2 (no lost transition through ``vector_entry_point``) is in ``tests/test_ray_integration.py``.
"""

from __future__ import annotations

import copy
import pickle
import re
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import vector as vector_wrappers

from actionbank_env.envs.targeting import TargetingEnv
from actionbank_env.envs.targeting_vector import TargetingVectorEnv
from actionbank_env.errors import ConfigError
from tests.envs.helpers import TINY_WORLD, world

UNSUPPORTED = re.escape("render_mode='rgb_array' is not supported")
#: gymnasium.make's own warning for a render mode outside the env's metadata.
GYM_RENDER_WARNING = "ignore:.*is being initialised with render_mode:UserWarning"


# --------------------------------------------------------------------------- item 1: render modes


@pytest.mark.filterwarnings(GYM_RENDER_WARNING)
@pytest.mark.parametrize("env_id", ["ActionBank/Targeting-v0", "ActionBank/BankDesign-v0"])
def test_sb3_make_vec_env_works_with_its_defaults(env_id: str) -> None:
    from stable_baselines3.common.env_util import make_vec_env

    kwargs = {**TINY_WORLD, **({"users_per_episode": 5} if "Targeting" in env_id else {"users_per_iteration": 20})}
    with pytest.warns(UserWarning, match=UNSUPPORTED):
        venv = make_vec_env(env_id, n_envs=2, seed=0, env_kwargs=kwargs)  # passes render_mode="rgb_array"
    assert venv.render_mode is None and venv.num_envs == 2
    if "Targeting" in env_id:
        obs = venv.reset()
        assert obs.shape == (2, 8)
        venv.step(np.zeros(2, dtype=np.int64))
    venv.close()


def test_unsupported_render_modes_warn_and_disable_rendering() -> None:
    with pytest.warns(UserWarning, match=re.escape("TargetingEnv.render_mode='human' is not supported")):
        env = TargetingEnv(world=world(), users_per_episode=3, render_mode="human")
    env.reset(seed=0)
    assert env.render_mode is None and env.render() is None
    with pytest.warns(UserWarning, match=re.escape("TargetingVectorEnv.render_mode='rgb_array' is not supported")):
        TargetingVectorEnv(2, world=world(), render_mode="rgb_array")


# --------------------------------------------------------------------------- item 2: NEXT_STEP autoreset


def native(num_envs: int, **kwargs: Any) -> TargetingVectorEnv:
    env = gym.make_vec(
        "ActionBank/Targeting-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", world=world(), **kwargs
    )
    assert isinstance(env, TargetingVectorEnv)
    return env


def test_next_step_autoreset_is_the_default_and_matches_gymnasium_sync() -> None:
    # The native env and gymnasium's SyncVectorEnv of single envs, both NEXT_STEP, agree on the episode structure:
    # a terminal step with the last user, then a reset step (reward 0, not terminated) with the next episode's first.
    env = native(3, users_per_episode=4)
    assert env.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    sync = gym.make_vec(
        "ActionBank/Targeting-v0", num_envs=3, vectorization_mode="sync", world=world(), users_per_episode=4
    )
    assert sync.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    for venv in (env, sync):
        obs, _ = venv.reset(seed=0)
        terminated_at, rewards_after = [], []
        for t in range(11):
            obs, rewards, terminated, truncated, info = venv.step(np.array([0, 1, 2]))
            assert not truncated.any() and (terminated.all() or not terminated.any())
            if terminated.all():
                terminated_at.append(t)
            if t in (4, 9):  # the reset steps
                rewards_after.append(rewards.tolist())
                assert "click_prob" not in info or not info["_click_prob"].any()
        assert terminated_at == [3, 8]
        assert rewards_after == [[0.0, 0.0, 0.0]] * 2
    # Users of consecutive episodes: the next episode's ids start at 0 again on the step after the reset step.
    env.reset(seed=1)
    ids = []
    for _ in range(10):
        _, _, _, _, info = env.step(np.zeros(3, dtype=np.int64))
        ids.append(info["user_id"].tolist() if "user_id" in info else None)
    assert ids[4] is None and ids[5] == [0, 1, 2] and ids[3] == [9, 10, 11]


def test_next_step_episode_statistics_count_every_transition() -> None:
    env = vector_wrappers.RecordEpisodeStatistics(native(4, users_per_episode=6))
    env.reset(seed=0)
    for _ in range(3 * 7):
        env.step(np.ones(4, dtype=np.int64))
    assert list(env.length_queue) == [6] * 12


@pytest.mark.parametrize(
    "wrap",
    [
        lambda e: vector_wrappers.NormalizeObservation(e),
        lambda e: vector_wrappers.TransformObservation(e, lambda o: o * 2.0, e.observation_space),
        lambda e: vector_wrappers.ClipReward(vector_wrappers.NormalizeReward(e), -5.0, 5.0),
    ],
    ids=["NormalizeObservation", "TransformObservation", "NormalizeReward+ClipReward"],
)
def test_gymnasium_vector_wrappers_work_on_the_native_env(wrap: Any) -> None:
    env = wrap(native(4, users_per_episode=3))
    obs, _ = env.reset(seed=0)
    for _ in range(9):  # crosses two episode ends
        obs, rewards, terminated, truncated, _ = env.step(np.zeros(4, dtype=np.int64))
        assert obs.shape == (4, 8) and np.isfinite(obs).all() and rewards.shape == (4,)


def test_bad_autoreset_mode_names_the_choices() -> None:
    with pytest.raises(
        ConfigError,
        match=re.escape("TargetingVectorEnv.autoreset_mode must be one of ['NextStep', 'SameStep'], got 'disabled'"),
    ):
        TargetingVectorEnv(2, world=world(), autoreset_mode="disabled")


def test_next_step_and_same_step_serve_the_same_users_and_clicks() -> None:
    # Same seed, same actions: the modes differ only by the reset step NEXT_STEP inserts.
    actions = np.random.default_rng(0).integers(10, size=(12, 2))
    nxt, same = native(2, users_per_episode=5), native(2, users_per_episode=5, autoreset_mode="same_step")
    nxt.reset(seed=3)
    same.reset(seed=3)
    got_next, got_same = [], []
    for row in actions:
        _, r, _, _, info = nxt.step(row)
        if "click_prob" in info:
            got_next.append((r.tolist(), info["click_prob"].tolist()))
    for row in actions[: len(got_next)]:
        _, r, _, _, info = same.step(row)
        got_same.append((r.tolist(), info["click_prob"].tolist()))
    assert len(got_next) == 10 and got_next[:5] == got_same[:5]


# --------------------------------------------------------------------------- item 2: the SB3 VecEnv


def test_sb3_vec_env_follows_sb3_conventions() -> None:
    from stable_baselines3.common.vec_env import VecMonitor

    from actionbank_env.integrations.sb3_vec_env import TargetingSB3VecEnv

    venv = TargetingSB3VecEnv(3, world=world(), users_per_episode=4)
    venv.seed(5)
    first = venv.reset()
    venv.seed(5)
    assert np.array_equal(venv.reset(), first) and first.flags.writeable
    last = None
    for t in range(4):
        obs, rewards, dones, infos = venv.step(np.array([0, 1, 2]))
        assert rewards.dtype == np.float32 and len(infos) == 3
        assert {"click_prob", "best_click_prob", "regret", "action_id", "user_id"} <= infos[0].keys()
        if t < 3:
            assert not dones.any()
            last = obs
    assert dones.all() and all(i["TimeLimit.truncated"] is False for i in infos)
    np.testing.assert_array_equal(np.stack([i["terminal_observation"] for i in infos]), last)
    assert not np.array_equal(obs, last)  # the next episode's first users
    assert venv.get_attr("render_mode") == [None] * 3 and venv.env_is_wrapped(VecMonitor) == [False] * 3
    with pytest.raises(ConfigError, match="same step"):
        TargetingSB3VecEnv(env=TargetingVectorEnv(2, world=world()))


def test_sb3_ppo_learns_through_the_native_vec_env() -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from actionbank_env.integrations.sb3_vec_env import TargetingSB3VecEnv

    venv = VecMonitor(TargetingSB3VecEnv(8, world=world(), users_per_episode=32))
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=128, n_epochs=2, seed=0, device="cpu")
    model.learn(512)
    assert model.num_timesteps == 512 and len(model.ep_info_buffer) == 16  # 8 envs x 2 episodes of 32
    assert all(info["l"] == 32 for info in model.ep_info_buffer)


# --------------------------------------------------------------------------- item 4: masks


def test_action_mask_is_int8_and_action_masks_feeds_space_sampling() -> None:
    env = gym.make("ActionBank/Targeting-v0", world=world(), users_per_episode=5, observe_bank=True, max_bank_size=14)
    obs, _ = env.reset(seed=0, options={"bank": world().initial_bank.texts[:4]})
    assert obs["action_mask"].dtype == np.int8 and obs in env.observation_space
    assert env.observation_space["action_mask"].dtype == np.int8
    masks = env.unwrapped.action_masks()
    assert masks.dtype == np.bool_ and masks.tolist() == [True] * 4 + [False] * 10
    env.action_space.seed(0)
    samples = {env.action_space.sample(mask=obs["action_mask"]) for _ in range(200)}
    assert samples == {0, 1, 2, 3}
    plain = TargetingEnv(world=world(), users_per_episode=5)
    assert plain.action_masks().all() and plain.action_masks().shape == (10,)
    vec = native(3, users_per_episode=5, observe_bank=True, max_bank_size=14)
    vec_obs, _ = vec.reset(seed=0)
    assert vec_obs["action_mask"].dtype == np.int8 and vec.action_masks().shape == (3, 14)


def test_maskable_ppo_never_picks_a_padded_slot() -> None:
    sb3_contrib = pytest.importorskip("sb3_contrib")
    from stable_baselines3.common.vec_env import DummyVecEnv

    from actionbank_env.integrations.sb3_vec_env import TargetingSB3VecEnv

    settings = {"users_per_episode": 16, "observe_bank": True, "max_bank_size": 14}
    for venv in (
        DummyVecEnv([lambda: TargetingEnv(world=world(), **settings) for _ in range(2)]),
        TargetingSB3VecEnv(2, world=world(), **settings),
    ):
        model = sb3_contrib.MaskablePPO("MultiInputPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, seed=0)
        model.learn(64)
        env = TargetingEnv(world=world(), **settings)
        obs, _ = env.reset(seed=1, options={"bank": world().initial_bank.texts[:3]})
        picks = [int(model.predict(obs, action_masks=env.action_masks(), deterministic=False)[0]) for _ in range(100)]
        assert max(picks) < 3


# --------------------------------------------------------------------------- item 5: writable observations


def test_observations_are_writable_and_private() -> None:
    env = TargetingEnv(world=world(), users_per_episode=3)
    obs, _ = env.reset(seed=0)
    kept = env.users.copy()
    assert obs.flags.writeable
    obs -= 1.0  # in-place normalisation
    np.testing.assert_array_equal(env.users, kept)
    for _ in range(3):
        obs, _, terminated, _, _ = env.step(0)
        assert obs.flags.writeable
        obs *= 0.0
    assert terminated
    np.testing.assert_array_equal(env.users, kept)
    bank_env = TargetingEnv(world=world(), users_per_episode=3, observe_bank=True)
    obs, _ = bank_env.reset(seed=0)
    assert all(v.flags.writeable for v in obs.values())
    for vec in (native(2, users_per_episode=3), native(2, users_per_episode=3, observe_bank=True)):
        obs, _ = vec.reset(seed=0)
        obs_after, *_ = vec.step(np.zeros(2, dtype=np.int64))
        for o in (obs, obs_after):
            arrays = o.values() if isinstance(o, dict) else [o]
            assert all(a.flags.writeable for a in arrays)


def test_torch_as_tensor_does_not_warn() -> None:
    torch = pytest.importorskip("torch")
    obs, _ = TargetingEnv(world=world(), users_per_episode=3).reset(seed=0)
    torch.as_tensor(obs)  # filterwarnings=error: a read-only array would raise here


# --------------------------------------------------------------------------- item 6: pickling


@pytest.mark.parametrize("mode", ["disjoint", "hybrid"])
def test_bank_design_pickles_and_deep_copies_after_reset(mode: str) -> None:
    env = gym.make(
        "ActionBank/BankDesign-v0",
        world=world(),
        n_iterations=3,
        users_per_iteration=100,
        company_params={"mode": mode},
    ).unwrapped
    env.reset(seed=0)
    texts = [*world().initial_bank.texts[:5], "a new offer for you"]
    env.step(texts)
    clones = [pickle.loads(pickle.dumps(env)), copy.deepcopy(env)]
    # The copies and the original continue identically for two more steps (the agent's statistics, the streams).
    for step_texts in (texts[1:], texts):
        want = env.step(step_texts)
        for clone in clones:
            got = clone.step(step_texts)
            for key in want[0]:
                np.testing.assert_array_equal(got[0][key], want[0][key])
            assert got[1] == want[1] and got[2] == want[2]
            assert got[4]["bank_ids"] == want[4]["bank_ids"]
