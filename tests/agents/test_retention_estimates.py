"""The click model of Retention-v0's estimated features: logging, fitting, wrappers, and that nothing reads the truth."""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import actionbank_env  # noqa: F401  (registers the env ids)
from actionbank_env.envs.retention import RetentionEnv, RetentionVectorEnv
from actionbank_env.errors import ConfigError, ConfigTypeError
from agents.retention import SB3RetentionPolicy, run_lifetimes, sb3_vec_env, train_sb3
from agents.retention_estimates import (
    ClickModelConfig,
    EstimatedFeatures,
    EstimatedFeaturesVector,
    ExplorationLog,
    RetentionClickModel,
    log_exploration,
    targeting_quality,
)
from agents.slot_policy import SlotFeaturesExtractor, SlotScoringPolicy, action_probs
from tests.worlds import hashing_world

N_ACTIONS = 10
SMALL = ClickModelConfig(hidden=16, d_message=4, epochs=2, batch_size=256, hazard_estimators=5)
TINY_PPO = {"n_steps": 8, "batch_size": 64, "n_epochs": 2, "gamma": 0.9, "policy_kwargs": {"net_arch": [16, 16]}}


def dict_envs(n: int, **kwargs: Any) -> RetentionVectorEnv:
    return RetentionVectorEnv(n, world=hashing_world(), observe_bank=True, **kwargs)


def small_log(seed: int = 7) -> ExplorationLog:
    return log_exploration(dict_envs(400, horizon=8), seed=seed, rng=np.random.default_rng(seed))


@lru_cache(maxsize=1)
def fitted() -> RetentionClickModel:
    return RetentionClickModel(SMALL).fit(small_log(), rng=np.random.default_rng(0))


def played(envs: Any, weeks: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    obs, _ = envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(weeks):
        obs, *_ = envs.step(rng.integers(0, envs.single_action_space.n, envs.num_envs))
    return obs


def test_the_log_holds_only_sends_of_the_first_subscribers_with_clicks_and_unsubscribes() -> None:
    log = small_log()
    n = log.slots.size
    assert n > 400 and log.subscriber.shape == (n, 20) and log.subscriber.dtype == np.float32
    assert np.all((log.slots >= 0) & (log.slots < N_ACTIONS))  # never the "no email" action
    assert set(np.unique(log.clicks)) <= {0.0, 1.0} and 0.0 < log.clicks.mean() < 0.5
    assert log.subscriber_ids.max() < 400 and np.bincount(log.subscriber_ids).max() <= 8
    assert log.propensity == pytest.approx(0.6 / N_ACTIONS)
    # about 60 % of the weeks send (rest_prob 0.4); a subscriber who unsubscribed is never logged again
    assert 0.5 < n / (400 * 8) < 0.7
    last_week_of = {}
    for i, (sid, left) in enumerate(zip(log.subscriber_ids, log.unsubscribed, strict=True)):
        assert sid not in last_week_of, "a row after the subscriber left"
        if left:
            last_week_of[sid] = i
    same = small_log()
    np.testing.assert_array_equal(same.subscriber, log.subscriber)
    np.testing.assert_array_equal(same.clicks, log.clicks)


def test_log_exploration_refuses_flat_observations() -> None:
    with pytest.raises(ConfigError, match="observe_bank must be True, got False"):
        log_exploration(RetentionVectorEnv(4, world=hashing_world()), seed=0, rng=np.random.default_rng(0))


def test_the_vector_wrapper_adds_the_model_estimates_in_the_oracle_layout() -> None:
    model = fitted()
    envs = EstimatedFeaturesVector(dict_envs(32), model)
    oracle_space = dict_envs(2, oracle_features=True).single_observation_space["oracle"]
    assert envs.single_observation_space["estimate"] == oracle_space
    obs = played(envs)
    assert envs.observation_space.contains(obs)
    est = obs["estimate"]
    probs = model.predict_slots(obs["subscriber"])
    np.testing.assert_allclose(est[:, :N_ACTIONS], np.clip(probs * model.prob_scale_, 0, 1), rtol=1e-5, atol=1e-7)
    best = probs.argmax(axis=1)
    np.testing.assert_allclose(est[:, N_ACTIONS], np.clip(probs.max(axis=1) * model.prob_scale_, 0, 1), rtol=1e-5)
    rested = model.predict_slots(model.rested(obs["subscriber"])).max(axis=1)
    np.testing.assert_allclose(est[:, N_ACTIONS + 1], np.clip(rested * model.prob_scale_, 0, 1), rtol=1e-5)
    hazard = model.predict_hazard(obs["subscriber"], best)
    np.testing.assert_allclose(est[:, N_ACTIONS + 2], hazard, rtol=1e-5, atol=1e-7)
    # the per-slot estimates are those of the one-row path (the same network, every slot at once)
    one = model.predict_logged(obs["subscriber"], best)
    np.testing.assert_allclose(one, probs[np.arange(32), best], rtol=1e-4, atol=1e-7)


def test_estimates_never_read_the_ground_truth(monkeypatch: pytest.MonkeyPatch) -> None:
    model = fitted()
    envs = dict_envs(16)
    obs = played(envs)
    expected = model.estimate(obs["subscriber"])

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the click model read the ground truth")

    world = envs.world
    monkeypatch.setattr(type(world.ground_truth), "click_prob", forbidden)
    for name in ("current_click_probs", "rested_best_click_probs", "expected_clicks_ahead"):
        monkeypatch.setattr(RetentionVectorEnv, name, forbidden)
    np.testing.assert_array_equal(model.estimate(obs["subscriber"]), expected)
    wrapper = EstimatedFeaturesVector(envs, model)
    out = wrapper._add(obs)
    np.testing.assert_array_equal(out["estimate"], expected)
    # a step that draws no new subscriber touches no ground truth outside the env's own dynamics
    monkeypatch.undo()
    assert targeting_quality(model, obs["subscriber"], envs.current_click_probs()[:, :N_ACTIONS])["share_of_best"] > 0


def test_the_rested_cache_equals_recomputing_and_follows_new_subscribers() -> None:
    model = fitted()
    envs = EstimatedFeaturesVector(dict_envs(24, horizon=3), model)
    obs, _ = envs.reset(seed=1)
    rng = np.random.default_rng(1)
    for _ in range(7):  # through two autoresets
        recomputed = model.estimate(obs["subscriber"])
        np.testing.assert_allclose(obs["estimate"], recomputed, rtol=1e-6, atol=1e-7)
        obs, *_ = envs.step(rng.integers(0, N_ACTIONS + 1, 24))


def test_same_step_final_observations_get_estimates() -> None:
    model = fitted()
    envs = EstimatedFeaturesVector(dict_envs(8, horizon=2, autoreset_mode=AutoresetMode.SAME_STEP), model)
    envs.reset(seed=0)
    envs.step(np.zeros(8, dtype=np.int64))
    _, _, _, truncated, info = envs.step(np.zeros(8, dtype=np.int64))
    assert truncated.all()
    for i in range(8):
        final = info["final_obs"][i]
        np.testing.assert_allclose(final["estimate"], model.estimate(final["subscriber"][None])[0], rtol=1e-6)


def test_single_env_wrapper_passes_check_env_with_the_vector_wrappers_space() -> None:
    model = fitted()
    inner = gym.make("ActionBank/Retention-v0", world=hashing_world(), observe_bank=True, render_mode="ansi")
    env = EstimatedFeatures(inner, model)
    with warnings.catch_warnings():  # check_env warns on any wrapper; checking the wrapper is the point here
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version", category=UserWarning)
        check_env(env)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    np.testing.assert_allclose(obs["estimate"], model.estimate(obs["subscriber"][None])[0], rtol=1e-6)
    bare = EstimatedFeatures(RetentionEnv(world=hashing_world(), observe_bank=True), model)
    assert bare.observation_space == env.observation_space
    vector = EstimatedFeaturesVector(dict_envs(1), model)
    assert vector.single_observation_space == env.observation_space


def test_wrappers_refuse_flat_observations_and_oracle_features() -> None:
    model = fitted()
    with pytest.raises(ConfigTypeError, match="observe_bank=True"):
        EstimatedFeaturesVector(RetentionVectorEnv(2, world=hashing_world()), model)
    with pytest.raises(ConfigError, match="oracle_features must be False"):
        EstimatedFeaturesVector(dict_envs(2, oracle_features=True), model)
    with pytest.raises(ConfigError, match="fitted on"):
        EstimatedFeaturesVector(dict_envs(2, bank_obs_dim=8), model)


def test_the_fit_is_seeded() -> None:
    log = small_log()
    a = RetentionClickModel(SMALL).fit(log, rng=np.random.default_rng(5))
    b = RetentionClickModel(SMALL).fit(log, rng=np.random.default_rng(5))
    obs = played(dict_envs(16))
    np.testing.assert_array_equal(a.estimate(obs["subscriber"]), b.estimate(obs["subscriber"]))


def test_a_fitted_click_model_pickles_and_predicts_the_same() -> None:
    import pickle

    model = fitted()
    again = pickle.loads(pickle.dumps(model))
    obs = played(dict_envs(16))
    np.testing.assert_allclose(
        again.predict_slots(obs["subscriber"]), model.predict_slots(obs["subscriber"]), rtol=1e-6
    )
    np.testing.assert_allclose(again.estimate(obs["subscriber"]), model.estimate(obs["subscriber"]), rtol=1e-6)
    assert not again.net_.training


def test_the_click_model_learns_the_targeting() -> None:
    """On a log of 8,000 subscribers the model's argmax closes a good part of the gap from a random message to the best."""
    log = log_exploration(dict_envs(8000, horizon=8), seed=11, rng=np.random.default_rng(11))
    model = RetentionClickModel(ClickModelConfig(hidden=32, d_message=8, epochs=4, batch_size=256, hazard_estimators=5))
    model.fit(log, rng=np.random.default_rng(0))
    envs = dict_envs(2048)
    obs, _ = envs.reset(seed=99)
    truth = envs.current_click_probs()[:, :N_ACTIONS]
    quality = targeting_quality(model, obs["subscriber"], truth)
    random_share = truth.mean() / truth.max(axis=1).mean()
    assert quality["share_of_best"] > random_share + 0.3 * (1.0 - random_share), (quality, random_share)
    assert quality["rank_corr"] > 0.3


def test_the_slot_policy_reads_the_estimate_entry_like_the_oracle_entry() -> None:
    model = fitted()
    envs = EstimatedFeaturesVector(dict_envs(6), model)
    policy = SlotScoringPolicy(envs.single_observation_space, envs.single_action_space, lambda _: 1e-3)
    extractor = policy.features_extractor
    assert isinstance(extractor, SlotFeaturesExtractor) and extractor.oracle_key == "estimate"
    assert extractor.d_slot == 16 + 8 + 3 and extractor.d_state == 20 + 3
    probs = action_probs(policy, played(envs))
    assert probs.shape == (6, N_ACTIONS + 1)
    both = dict(dict_envs(2, oracle_features=True).single_observation_space.spaces)
    both["estimate"] = envs.single_observation_space["estimate"]
    with pytest.raises(ValueError, match="got both"):
        SlotFeaturesExtractor(gym.spaces.Dict(both))


def test_train_sb3_with_a_click_model_is_seeded_and_plays_lifetimes() -> None:
    model = fitted()
    kwargs = {"world": hashing_world(), "horizon": 6}
    first = train_sb3(kwargs, total_timesteps=512, seed=3, n_envs=16, algo_kwargs=TINY_PPO, policy="slots",
                      click_model=model)  # fmt: skip
    second = train_sb3(kwargs, total_timesteps=512, seed=3, n_envs=16, algo_kwargs=TINY_PPO, policy="slots",
                       click_model=model)  # fmt: skip
    for a, b in zip(first.policy.parameters(), second.policy.parameters(), strict=True):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    envs = EstimatedFeaturesVector(dict_envs(64), model)
    result = run_lifetimes(envs, SB3RetentionPolicy(first), seed=0)
    assert result.weeks.min() >= 1 and np.all(np.isfinite(result.clicks))
    with pytest.raises(ValueError, match="policy='slots'"):
        train_sb3(kwargs, total_timesteps=8, seed=0, click_model=model)
    assert sb3_vec_env(EstimatedFeaturesVector(dict_envs(4, autoreset_mode="SameStep"), model)).reset().keys() >= {
        "estimate"
    }


def test_the_benchmark_fits_a_click_model_apart_from_the_evaluation_cohort_and_reports_its_targeting() -> None:
    from benchmarks.retention_ppo_tuning import fit_click_model

    model, summary = fit_click_model(hashing_world(), 7201, log_subscribers=500)
    assert isinstance(model, RetentionClickModel) and summary["log_subscribers"] == 500
    assert summary["log_rows"] > 500 and 0.0 < summary["log_click_rate"] < 0.5
    for key in ("held_out_rested", "held_out_week3"):
        assert 0.0 < summary[key]["share_of_best"] <= 1.0
    # the logging cohort is not the evaluation cohort (seed 1): different subscribers
    log_envs, eval_envs = dict_envs(8), dict_envs(8)
    log_seed = int(np.random.SeedSequence(7201).spawn(6)[2].generate_state(1)[0])
    assert not np.array_equal(log_envs.reset(seed=log_seed)[0]["subscriber"], eval_envs.reset(seed=1)[0]["subscriber"])
