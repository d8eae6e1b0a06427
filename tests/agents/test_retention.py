"""Retention-v0 baselines: oracle-myopic, fixed cadence, targeting agents through the protocol, the SB3 adapter."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from actionbank_env.envs.retention import RetentionVectorEnv
from agents.baselines import RandomAgent
from agents.linucb import LinUCBAgent
from agents.retention import (
    FixedCadencePolicy,
    OracleMyopicPolicy,
    SB3RetentionPolicy,
    TargetingAgentPolicy,
    run_lifetimes,
    sb3_vec_env,
    subscriber_feature_names,
)
from tests.worlds import hashing_world

N_ACTIONS = 10


def envs(n: int = 500, **kwargs: object) -> RetentionVectorEnv:
    return RetentionVectorEnv(n, world=hashing_world(), **kwargs)


def test_oracle_myopic_sends_the_best_message_every_week() -> None:
    vec = envs(200)
    obs, _ = vec.reset(seed=0)
    policy = OracleMyopicPolicy()
    for _ in range(5):
        actions = policy.act(obs, vec)
        probs = vec.current_click_probs()
        np.testing.assert_array_equal(actions, probs[:, :N_ACTIONS].argmax(axis=1))
        obs, *_ = vec.step(actions)
    result = run_lifetimes(vec, policy, seed=1)
    stayed = ~result.unsubscribed
    assert np.all(result.sends[stayed] == 26) and np.all(result.weeks[stayed] == 26)
    np.testing.assert_array_equal(result.sends, result.weeks)  # never rests, also in the week it unsubscribes


def test_fixed_cadence_sends_every_n_weeks_and_keeps_more_subscribers() -> None:
    vec = envs(2000)
    myopic = run_lifetimes(vec, OracleMyopicPolicy(), seed=3)
    every3 = run_lifetimes(vec, FixedCadencePolicy(3), seed=3)
    assert np.all(every3.sends[~every3.unsubscribed] == 9)  # weeks 0, 3, ..., 24
    assert every3.unsubscribed.mean() < myopic.unsubscribed.mean()
    assert every3.summary()["clicks_per_email"] > myopic.summary()["clicks_per_email"]


def test_lifetimes_count_only_the_first_subscriber_of_each_sub_env() -> None:
    vec = envs(300, unsubscribe_base=0.2)
    result = run_lifetimes(vec, OracleMyopicPolicy(), seed=0)
    assert result.unsubscribed.mean() > 0.9
    assert np.all(result.weeks[result.unsubscribed] < 26) and result.clicks.max() <= 26
    assert set(result.summary()) == {
        "clicks_per_subscriber", "emails_per_subscriber", "unsubscribe_rate", "unsubscribes_per_email",
        "clicks_per_email", "weeks_subscribed",
    }  # fmt: skip


def test_linucb_through_the_targeting_protocol_learns_and_beats_random() -> None:
    vec = envs(1000)
    assert len(subscriber_feature_names(vec)) == vec.single_observation_space.shape[0]
    linucb = TargetingAgentPolicy(vec, lambda c, rng: LinUCBAgent(c, rng=rng), rng=np.random.default_rng(0))
    run_lifetimes(vec, linucb, seed=10)  # a first cohort to learn from
    learned = run_lifetimes(vec, linucb, seed=11).summary()
    rand = TargetingAgentPolicy(vec, lambda c, rng: RandomAgent(c, rng=rng), rng=np.random.default_rng(0))
    baseline = run_lifetimes(vec, rand, seed=11).summary()
    assert learned["clicks_per_subscriber"] > 1.15 * baseline["clicks_per_subscriber"]
    assert learned["emails_per_subscriber"] > 20  # a bandit learns that an email beats none


def test_oracle_feature_columns_are_named_and_a_targeting_agent_reads_them() -> None:
    vec = envs(64, horizon=3, oracle_features=True)
    names = subscriber_feature_names(vec)
    assert len(names) == vec.single_observation_space.shape[0] == 20 + N_ACTIONS + 3
    assert names[20] == "oracle_click_prob_0" and names[-1] == "oracle_best_hazard"
    linucb = TargetingAgentPolicy(vec, lambda c, rng: LinUCBAgent(c, rng=rng), rng=np.random.default_rng(0))
    assert run_lifetimes(vec, linucb, seed=0).weeks.min() >= 1


def test_bootstrapped_dqn_through_the_targeting_protocol_runs() -> None:
    pytest.importorskip("torch")
    from agents.bootstrapped_dqn import BootstrappedDQNAgent

    vec = envs(64, horizon=6)
    dqn = TargetingAgentPolicy(
        vec,
        lambda c, rng: BootstrappedDQNAgent(c, rng=rng, n_heads=2, hidden_sizes=(16,)),
        rng=np.random.default_rng(0),
    )
    result = run_lifetimes(vec, dqn, seed=0)
    assert result.weeks.min() >= 1 and np.all(np.isfinite(result.clicks))


def test_sb3_adapter_trains_ppo_and_the_policy_acts_on_batches() -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env.util import obs_space_info  # noqa: F401  (SB3 importable)

    train_envs = envs(16, horizon=4, autoreset_mode=AutoresetMode.SAME_STEP)
    venv = sb3_vec_env(train_envs)
    venv.seed(0)
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    result = run_lifetimes(envs(32), SB3RetentionPolicy(model), seed=0)
    assert result.weeks.min() >= 1
    with pytest.raises(ValueError, match="SAME_STEP"):
        sb3_vec_env(envs(4))


def test_train_sb3_with_normalised_rewards_calls_back_and_returns_a_policy() -> None:
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.retention import train_sb3

    seen: list[int] = []

    class Record(BaseCallback):  # type: ignore[misc]
        def _on_step(self) -> bool:
            seen.append(self.num_timesteps)
            return True

    kwargs = {"n_steps": 8, "batch_size": 64, "n_epochs": 1, "gamma": 0.9}
    model = train_sb3(
        {"world": hashing_world(), "horizon": 4},
        total_timesteps=256,
        seed=0,
        n_envs=16,
        algo_kwargs=kwargs,
        normalize_reward=True,
        callback=Record(),
    )
    assert seen and seen[-1] >= 256
    assert isinstance(model.get_env(), VecNormalize) and model.get_env().gamma == 0.9
    assert not model.get_env().norm_obs  # the policy acts on raw observations
    result = run_lifetimes(envs(32), SB3RetentionPolicy(model), seed=0)
    assert result.weeks.min() >= 1
