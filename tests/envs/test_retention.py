"""ActionBank/Retention-v0 and its native vector twin: contracts, seeding, dynamics through the env, errors."""

from __future__ import annotations

import pickle
import re
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import RecordEpisodeStatistics, TransformObservation

from actionbank_env.envs.retention import RetentionConfig, RetentionEnv, RetentionVectorEnv
from actionbank_env.errors import ConfigError
from tests.envs.helpers import world

ENV_ID = "ActionBank/Retention-v0"
N_ACTIONS = 10  # the test world's bank
NO_EMAIL = N_ACTIONS


def make(**kwargs: Any) -> gym.Env[Any, Any]:
    return gym.make(ENV_ID, world=world(), **kwargs)


def make_vec(num_envs: int, **kwargs: Any) -> RetentionVectorEnv:
    envs = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", world=world(), **kwargs)
    assert isinstance(envs, RetentionVectorEnv)
    return envs


def actions_for(seed: int, n_steps: int, shape: tuple[int, ...] = ()) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, N_ACTIONS + 1, size=(n_steps, *shape))


def single_rollout(env: gym.Env[Any, Any], seed: int, actions: np.ndarray) -> dict[str, list[Any]]:
    """Play ``actions``; reset (without a seed) after each episode, as the NEXT_STEP vector twin does."""
    obs, _ = env.reset(seed=seed)
    out: dict[str, list[Any]] = {"obs": [obs], "reward": [], "terminated": [], "truncated": [], "click_probs": []}
    done = False
    for a in actions:
        if done:
            obs, _ = env.reset()
            reward, terminated, truncated, probs = 0.0, False, False, None
            done = False
        else:
            obs, reward, terminated, truncated, info = env.step(int(a))
            probs = info["click_probs"]
            done = terminated or truncated
        for key, value in zip(out, (obs, reward, terminated, truncated, probs), strict=True):
            out[key].append(value)
    return out


def vector_rollout(envs: gym.vector.VectorEnv, seed: int, actions: np.ndarray) -> dict[str, list[Any]]:
    obs, _ = envs.reset(seed=seed)
    out: dict[str, list[Any]] = {"obs": [obs], "reward": [], "terminated": [], "truncated": [], "click_probs": []}
    for row in actions:
        obs, reward, terminated, truncated, info = envs.step(row)
        probs = info["click_probs"] if info.get("_click_probs", np.zeros(1, bool)).any() else None
        for key, value in zip(out, (obs, reward, terminated, truncated, probs), strict=True):
            out[key].append(value)
    return out


@pytest.mark.parametrize("oracle_features", [False, True])
@pytest.mark.parametrize("observe_bank", [False, True])
def test_gymnasium_check_env(observe_bank: bool, oracle_features: bool) -> None:
    check_env(make(observe_bank=observe_bank, oracle_features=oracle_features, render_mode="ansi").unwrapped)


@pytest.mark.parametrize("oracle_features", [False, True])
@pytest.mark.parametrize("observe_bank", [False, True])
def test_sb3_check_env(observe_bank: bool, oracle_features: bool) -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        # The bank observation is (max_bank_size, bank_obs_dim) on purpose (as in Targeting-v0).
        warnings.filterwarnings("ignore", message=".*unconventional shape", category=UserWarning)
        sb3_check_env(make(observe_bank=observe_bank, oracle_features=oracle_features, max_bank_size=12).unwrapped)


def test_registration_spaces_and_info() -> None:
    env = make()
    assert env.spec is not None and env.spec.max_episode_steps is None  # the env truncates itself at its horizon
    assert gym.spec(ENV_ID).vector_entry_point == "actionbank_env.envs.retention:RetentionVectorEnv"
    obs, info = env.reset(seed=0)
    assert env.action_space == gym.spaces.Discrete(N_ACTIONS + 1)
    assert obs.shape == (20,) and obs.dtype == np.float32 and obs.flags.writeable and info == {}
    assert env.observation_space.contains(obs)
    unwrapped = env.unwrapped
    assert isinstance(unwrapped, RetentionEnv)
    probs_now = unwrapped.current_click_probs()
    _, reward, terminated, truncated, info = env.step(3)
    assert reward in (0.0, 1.0) and not truncated
    assert set(info) == {
        "click_probs", "click_prob", "best_click_prob", "myopic_action", "regret", "hazard", "fatigue",
        "unsubscribed", "action_id", "user_id",
    }  # fmt: skip
    np.testing.assert_array_equal(info["click_probs"], probs_now)
    # Week 0: a rested, never-mailed subscriber clicks with the world's ground-truth probability.
    users = unwrapped._state.users  # type: ignore[union-attr]
    truth = world().ground_truth.click_prob(users, world().initial_bank.embeddings)[0]
    np.testing.assert_allclose(info["click_probs"][:N_ACTIONS], truth)
    assert info["click_probs"][NO_EMAIL] == 0.0
    assert info["myopic_action"] == int(np.argmax(truth))
    assert info["click_prob"] == pytest.approx(truth[3])
    assert info["regret"] == pytest.approx(truth.max() - truth[3])
    assert info["action_id"] == world().initial_bank.ids[3] and info["fatigue"] == 0.0


def test_seeded_rollouts_are_identical() -> None:
    actions = actions_for(1, 60)
    a, b = (single_rollout(make(), 7, actions) for _ in range(2))
    np.testing.assert_array_equal(np.stack(a["obs"]), np.stack(b["obs"]))
    np.testing.assert_array_equal(a["reward"], b["reward"])
    c = single_rollout(make(), 8, actions)
    assert not np.array_equal(np.stack(a["obs"]), np.stack(c["obs"]))
    vec_actions = actions_for(2, 40, (16,))
    v1, v2 = (vector_rollout(make_vec(16), 3, vec_actions) for _ in range(2))
    np.testing.assert_array_equal(np.stack(v1["obs"]), np.stack(v2["obs"]))
    np.testing.assert_array_equal(np.stack(v1["reward"]), np.stack(v2["reward"]))


def test_a_lifetime_is_truncated_at_the_horizon() -> None:
    env = make(unsubscribe_base=0.0, unsubscribe_irrelevance=0.0)
    env.reset(seed=0)
    flags = [env.step(0)[2:4] for _ in range(26)]
    assert flags[-1] == (False, True) and all(f == (False, False) for f in flags[:-1])
    with pytest.raises(ResetNeeded):
        env.unwrapped.step(0)
    short = RetentionEnv(world=world(), horizon=3)
    short.reset(seed=0)
    assert [short.step(NO_EMAIL)[3] for _ in range(3)] == [False, False, True]


def test_unsubscribes_end_the_episode_and_resting_does_not() -> None:
    env = make(unsubscribe_base=1.0)
    env.reset(seed=0)
    for _ in range(5):
        _, _, terminated, _, info = env.step(NO_EMAIL)
        assert not terminated and info["hazard"] == 0.0
    _, _, terminated, truncated, info = env.step(0)
    assert terminated and not truncated and info["unsubscribed"] and info["hazard"] == 1.0
    with pytest.raises(ResetNeeded):
        env.step(0)


def test_resting_raises_the_next_click_probability() -> None:
    env = make(novelty_penalty=0.0).unwrapped
    env.reset(seed=0)
    fresh = env.current_click_probs().copy()
    for _ in range(3):
        env.step(0)
    tired = env.current_click_probs().copy()
    env.step(NO_EMAIL)
    rested = env.current_click_probs()
    assert np.all(tired[:N_ACTIONS] < rested[:N_ACTIONS]) and np.all(rested[:N_ACTIONS] < fresh[:N_ACTIONS])


def test_one_sub_env_equals_the_single_env_step_for_step() -> None:
    """Native twin, Gymnasium's SyncVectorEnv and the single env give the same rollouts, episodes included."""
    actions = actions_for(5, 120)
    kwargs = {"horizon": 8, "unsubscribe_base": 0.05}  # short lifetimes and frequent unsubscribes: many resets
    single = single_rollout(RetentionEnv(world=world(), **kwargs), 11, actions)
    native = vector_rollout(make_vec(1, **kwargs), 11, actions[:, None])
    sync = vector_rollout(
        gym.make_vec(ENV_ID, num_envs=1, vectorization_mode="sync", world=world(), **kwargs), 11, actions[:, None]
    )
    assert sum(single["terminated"]) >= 2 and sum(single["truncated"]) >= 2
    for other in (native, sync):
        np.testing.assert_array_equal(np.stack(other["obs"])[:, 0], np.stack(single["obs"]))
        for key in ("reward", "terminated", "truncated"):
            np.testing.assert_array_equal(np.asarray(other[key])[:, 0], np.asarray(single[key]))
        for mine, theirs in zip(single["click_probs"], other["click_probs"], strict=True):
            assert (mine is None) == (theirs is None)
            if mine is not None:
                np.testing.assert_array_equal(theirs[0], mine)


def test_next_step_autoreset_starts_a_fresh_subscriber() -> None:
    envs = make_vec(64, horizon=4, unsubscribe_base=0.2)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, _ = envs.reset(seed=0)
    done = np.zeros(64, dtype=bool)
    seen_reset = False
    for _ in range(12):
        obs, rewards, terminated, truncated, info = envs.step(np.zeros(64, dtype=np.int64))
        if done.any():
            seen_reset = True
            assert np.all(rewards[done] == 0.0) and not terminated[done].any() and not truncated[done].any()
            assert np.all(obs[done, 11] == 0.0) and np.all(obs[done, 8] == 1.0)  # tenure 0, never mailed
            assert not info["_click_probs"][done].any() and info["_click_probs"][~done].all()
            assert np.array_equal(envs.weeks[done], np.zeros(done.sum()))
        done = terminated | truncated
        assert obs.flags.writeable
    assert seen_reset


def test_same_step_autoreset_reports_final_observations() -> None:
    envs = RetentionVectorEnv(8, world=world(), horizon=3, autoreset_mode="SameStep")
    obs, _ = envs.reset(seed=0)
    for _ in range(2):
        obs, _, _, truncated, _ = envs.step(np.zeros(8, dtype=np.int64))
    final_week = obs[:, 11].copy()
    obs, _, terminated, truncated, info = envs.step(np.zeros(8, dtype=np.int64))
    done = terminated | truncated
    assert done.all() and info["_final_obs"].all()
    assert np.all(obs[:, 11] == 0.0)  # already the next subscribers
    assert all(f[11] > w for f, w in zip(info["final_obs"], final_week, strict=True))


def test_gymnasium_vector_wrappers_see_every_episode() -> None:
    envs = RecordEpisodeStatistics(make_vec(32, horizon=6, unsubscribe_base=0.1), buffer_length=1000)
    envs = TransformObservation(envs, lambda obs: obs * 2.0, envs.observation_space)
    obs, _ = envs.reset(seed=0)
    ends = 0
    for _ in range(30):
        obs, rewards, terminated, truncated, info = envs.step(np.zeros(32, dtype=np.int64))
        ends += int((terminated | truncated).sum())
        assert obs.max() <= 2.0
    lengths = np.asarray(envs.env.length_queue)  # type: ignore[attr-defined]
    assert len(lengths) == ends and lengths.max() <= 6 and lengths.min() >= 1


@pytest.mark.parametrize("horizon", [3, 40])
def test_an_episode_lasts_the_horizon_given_to_make(horizon: int) -> None:
    """No registered step limit cuts a longer lifetime short (``horizon=40`` once stopped at 26 weeks)."""
    stay = {"unsubscribe_base": 0.0, "unsubscribe_irrelevance": 0.0}  # nobody leaves: the horizon ends it
    env = make(horizon=horizon, **stay)
    env.reset(seed=0)
    ends = []
    for _ in range(horizon):
        _, _, terminated, truncated, _ = env.step(NO_EMAIL)
        ends.append((terminated, truncated))
    assert ends == [(False, False)] * (horizon - 1) + [(False, True)]
    envs = make_vec(2, horizon=horizon, **stay)
    envs.reset(seed=0)
    steps = [envs.step(np.full(2, NO_EMAIL, dtype=np.int64)) for _ in range(horizon)]
    assert [bool(s[3].any()) for s in steps] == [False] * (horizon - 1) + [True]
    assert not any(bool(s[2].any()) for s in steps)


def test_make_vec_passes_max_episode_steps_as_the_horizon() -> None:
    envs = gym.make_vec(
        ENV_ID, num_envs=4, vectorization_mode="vector_entry_point", world=world(), max_episode_steps=2,
        unsubscribe_base=0.0, unsubscribe_irrelevance=0.0,
    )  # fmt: skip
    envs.reset(seed=0)
    assert not envs.step(np.zeros(4, dtype=np.int64))[3].any()
    assert envs.step(np.zeros(4, dtype=np.int64))[3].all()


def test_observe_bank_mask_is_int8_and_padded_slots_send_nothing() -> None:
    env = make(observe_bank=True, max_bank_size=12).unwrapped
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"subscriber", "bank", "action_mask"}
    assert obs["action_mask"].dtype == np.int8 and obs["action_mask"].tolist() == [1] * 10 + [0, 0, 1]
    assert obs["bank"].flags.writeable and obs["subscriber"].flags.writeable
    np.testing.assert_array_equal(env.action_masks(), obs["action_mask"])
    _, reward, _, _, info = env.step(11)  # padded slot: no email
    assert reward == 0.0 and info["click_prob"] == 0.0 and info["action_id"] == "" and info["fatigue"] == 0.0
    envs = make_vec(3, observe_bank=True, max_bank_size=12)
    vobs, _ = envs.reset(seed=0)
    assert vobs["bank"].shape == (3, 12, 16) and vobs["bank"].flags.writeable
    assert envs.action_masks().dtype == np.int8 and envs.action_masks().shape == (3, 13)
    texts = list(world().initial_bank.texts[:5])
    obs, _ = env.reset(seed=1, options={"bank": texts})
    assert obs["action_mask"].tolist() == [1] * 5 + [0] * 7 + [1]
    assert env.bank.ids == world().initial_bank.ids[:5]  # known texts keep their ids


def test_oracle_features_are_the_ground_truth_the_oracles_read() -> None:
    """The privileged columns: every slot's click probability now, the best, the rested best (all / max_utility),
    and the hazard of sending the best message now; the plain columns are unchanged."""
    env = make(oracle_features=True, unsubscribe_base=0.01).unwrapped
    plain = make(unsubscribe_base=0.01).unwrapped
    obs, _ = env.reset(seed=3)
    plain_obs, _ = plain.reset(seed=3)
    assert obs.shape == (20 + N_ACTIONS + 3,) and obs.dtype == np.float32 and env.observation_space.contains(obs)
    scale = world().config.max_utility
    rested = env.current_click_probs()[:N_ACTIONS]
    for action in (0, 0, NO_EMAIL, 0, 4):  # tire the subscriber and repeat a message, so "now" differs from rested
        np.testing.assert_array_equal(obs[:20], plain_obs[:20])
        oracle = obs[20:]
        probs = env.current_click_probs()[:N_ACTIONS]
        np.testing.assert_allclose(oracle[:N_ACTIONS], probs / scale, rtol=1e-6)
        np.testing.assert_allclose(
            oracle[N_ACTIONS : N_ACTIONS + 2], [probs.max() / scale, rested.max() / scale], rtol=1e-6
        )
        best = int(probs.argmax())
        probe = pickle.loads(pickle.dumps(env))  # the hazard of the best send, read from a copy that sends it
        assert probe.step(best)[4]["hazard"] == pytest.approx(oracle[-1], rel=1e-6)
        obs, _, terminated, _, _ = env.step(action)
        plain_obs, _, plain_terminated, _, _ = plain.step(action)
        assert terminated == plain_terminated  # the observation draws nothing: same dynamics
    assert oracle[N_ACTIONS] < oracle[N_ACTIONS + 1]  # fatigue: the best now is below the rested best
    dict_env = make(oracle_features=True, observe_bank=True, max_bank_size=12).unwrapped
    dict_obs, _ = dict_env.reset(seed=3)
    assert set(dict_obs) == {"subscriber", "bank", "action_mask", "oracle"} and dict_obs["oracle"].shape == (15,)
    np.testing.assert_array_equal(dict_obs["oracle"][N_ACTIONS:12], [0.0, 0.0])  # padded slots
    np.testing.assert_allclose(dict_obs["oracle"][12:14], [rested.max() / scale] * 2, rtol=1e-6)


def test_oracle_features_twin_equals_the_single_env_and_rollouts_repeat() -> None:
    actions = actions_for(6, 80)
    kwargs = {"horizon": 8, "unsubscribe_base": 0.05, "oracle_features": True}
    single = single_rollout(RetentionEnv(world=world(), **kwargs), 12, actions)
    again = single_rollout(RetentionEnv(world=world(), **kwargs), 12, actions)
    native = vector_rollout(make_vec(1, **kwargs), 12, actions[:, None])
    plain = single_rollout(RetentionEnv(world=world(), horizon=8, unsubscribe_base=0.05), 12, actions)
    assert sum(single["terminated"]) >= 1 and sum(single["truncated"]) >= 2
    np.testing.assert_array_equal(np.stack(again["obs"]), np.stack(single["obs"]))
    np.testing.assert_array_equal(np.stack(native["obs"])[:, 0], np.stack(single["obs"]))
    np.testing.assert_array_equal(np.stack(plain["obs"]), np.stack(single["obs"])[:, :20])
    for key in ("reward", "terminated", "truncated"):
        np.testing.assert_array_equal(np.asarray(native[key])[:, 0], np.asarray(single[key]))
        np.testing.assert_array_equal(np.asarray(plain[key]), np.asarray(single[key]))
    envs = make_vec(8, oracle_features=True, observe_bank=True, max_bank_size=12, autoreset_mode="SameStep")
    obs, _ = envs.reset(seed=0)
    assert obs["oracle"].shape == (8, 15) and envs.observation_space.contains(obs)
    for _ in range(30):
        obs, _, terminated, truncated, info = envs.step(np.zeros(8, dtype=np.int64))
        for i in np.flatnonzero(terminated | truncated):
            assert envs.single_observation_space.contains(info["final_obs"][i])
    assert envs.observation_space.contains(obs)


def test_envs_pickle_mid_episode() -> None:
    env = make().unwrapped
    env.reset(seed=0)
    env.step(0)
    clone = pickle.loads(pickle.dumps(env))
    np.testing.assert_array_equal(clone.step(1)[0], env.step(1)[0])


def test_render_ansi_and_unsupported_render_modes_warn() -> None:
    env = make(render_mode="ansi")
    env.reset(seed=0)
    env.step(0)
    assert "week 1" in env.render()
    with pytest.warns(UserWarning, match="does not support render_mode='rgb_array'"):
        RetentionEnv(world=world(), render_mode="rgb_array")


def test_invalid_actions_raise_and_the_env_stays_usable() -> None:
    env = make().unwrapped
    env.reset(seed=0)
    for bad in (N_ACTIONS + 1, -1, 1.5, "a"):
        with pytest.raises(InvalidAction):
            env.step(bad)
    env.step(NO_EMAIL)
    envs = make_vec(4)
    with pytest.raises(ResetNeeded):
        envs.step(np.zeros(4, dtype=np.int64))
    envs.reset(seed=0)
    with pytest.raises(InvalidAction, match=re.escape("actions must be ints in [0, 11), got min 0 and max 11.")):
        envs.step(np.array([0, 1, 2, 11]))
    with pytest.raises(InvalidAction, match="integer array of shape"):
        envs.step(np.zeros(3, dtype=np.int64))
    envs.step(np.zeros(4, dtype=np.int64))


ERRORS = [
    ({"horizon": 0}, ConfigError, "RetentionConfig.horizon must be an int >= 1 and <= 100000, got 0."),
    (
        {"fatigue_decay": 2.0},
        ConfigError,
        "RetentionDynamics.fatigue_decay must be a float >= 0.0 and <= 1.0, got 2.0.",
    ),
    ({"sensitivity_feature": "shoe_size"}, ConfigError, "RetentionDynamics.sensitivity_feature must be one of"),
    ({"fatigue_dcay": 0.5}, TypeError, "Did you mean 'fatigue_decay'?"),
    ({"max_bank_size": 5, "observe_bank": True}, ConfigError, "RetentionConfig.max_bank_size=5 must be >= the initial"),
    ({"config": RetentionConfig(), "horizon": 3}, ConfigError, "got both config= and the config fields ['horizon']"),
    ({"dynamics": "fast"}, TypeError, "RetentionConfig.dynamics must be a RetentionDynamics, got str."),
    (
        {"oracle_features": "yes"},
        TypeError,
        "RetentionConfig.oracle_features must be a bool, got 'yes' of type str.",
    ),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), ERRORS)
def test_bad_parameters_get_clear_errors(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        RetentionEnv(world=world(), **kwargs)


def test_vector_env_errors() -> None:
    with pytest.raises(ConfigError, match=re.escape("RetentionVectorEnv.autoreset_mode must be 'NextStep'")):
        RetentionVectorEnv(2, world=world(), autoreset_mode="Disabled")
    with pytest.raises(ConfigError, match="render_mode must be None"):
        RetentionVectorEnv(2, world=world(), render_mode="ansi")
    envs = RetentionVectorEnv(2, world=world())
    envs.reset(seed=0)
    with pytest.raises(ConfigError, match="bank must have exactly 10 actions"):
        envs.reset(options={"bank": list(world().initial_bank.texts[:3])})


def test_expected_clicks_ahead_is_the_core_value_of_the_current_subscribers() -> None:
    from actionbank_env.core.retention import expected_clicks_ahead, myopic_actions

    envs = RetentionVectorEnv(4, world=world())
    with pytest.raises(ResetNeeded, match="Call reset\\(\\) before expected_clicks_ahead"):
        envs.expected_clicks_ahead(np.zeros(4, dtype=np.int64), myopic_actions)
    envs.reset(seed=0)
    envs.step(np.array([0, 1, 2, NO_EMAIL]))
    state = envs._state
    assert state is not None
    before = state.copy()
    first = np.array([3, NO_EMAIL, 0, 0])
    value = envs.expected_clicks_ahead(first, myopic_actions)
    m = envs._model
    expected = expected_clicks_ahead(
        before, first, myopic_actions, envs.config.dynamics, m.similarity, m.relevance_ctr, envs.horizon
    )
    np.testing.assert_array_equal(value, expected)
    np.testing.assert_array_equal(state.fatigue, before.fatigue)  # nothing moved, nothing drawn
    with pytest.raises(InvalidAction, match="actions must be ints in"):
        envs.expected_clicks_ahead(np.full(4, NO_EMAIL + 1), myopic_actions)


# --------------------------------------------------------------------------- BankDesign-v0 with retention campaigns


def test_bank_design_can_judge_banks_by_lifetime_clicks() -> None:
    from actionbank_env.core.retention import RetentionCampaignConfig, RetentionCampaignResult
    from actionbank_env.envs.bank_design import BankDesignEnv

    def design(**kwargs: Any) -> BankDesignEnv:
        env = gym.make("ActionBank/BankDesign-v0", world=world(), users_per_iteration=150, max_bank_size=12, **kwargs)
        return env.unwrapped

    retention = RetentionCampaignConfig(horizon=6)
    env = design(retention=retention, n_iterations=1)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    result = env._results[-1]
    assert isinstance(result, RetentionCampaignResult)
    assert len(info["log"]) == result.weeks.sum() > 150  # one row per email, several emails per subscriber
    assert info["summary"]["subscribers"] == 150 and 0.0 <= info["summary"]["unsubscribe_rate"] < 1.0
    assert obs["impressions"].sum() == len(info["log"])
    obs, reward, terminated, _, info = env.step(list(world().initial_bank.texts[:3]))
    assert terminated and env.observation_space.contains(obs)
    # The reward is the expected clicks per subscriber over a lifetime: more than one email's worth.
    assert reward == pytest.approx(info["deployed_value"]) and reward > info["summary"]["company_reward"]
    # Same seed, same episode.
    again = design(retention=retention, n_iterations=1)
    _, info_again = again.reset(seed=0)
    assert info_again["log"].to_pandas().equals(env._history[0].to_pandas())
    # The default stays one email per user, and a wrong type is named.
    _, plain = design().reset(seed=0)
    assert len(plain["log"]) == 150 and "unsubscribe_rate" not in plain["summary"]
    with pytest.raises(TypeError, match=re.escape("BankDesignConfig.retention must be a RetentionCampaignConfig")):
        design(retention={"horizon": 6})
