"""SlotScoringPolicy: shared weights over the message slots of Retention-v0's Dict observation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from actionbank_env.envs.retention import RetentionVectorEnv
from agents.retention import SB3RetentionPolicy, run_lifetimes, sb3_vec_env, train_sb3
from agents.slot_policy import SlotFeaturesExtractor, SlotScoringPolicy, action_probs
from tests.worlds import hashing_world

N_ACTIONS = 10
TINY_PPO = {"n_steps": 8, "batch_size": 64, "n_epochs": 2, "gamma": 0.9, "policy_kwargs": {"net_arch": [16, 16]}}


def dict_envs(n: int, **kwargs: Any) -> RetentionVectorEnv:
    return RetentionVectorEnv(n, world=hashing_world(), observe_bank=True, **kwargs)


def build_policy(envs: RetentionVectorEnv, seed: int = 0) -> SlotScoringPolicy:
    """A policy with random (not near-zero) weights, so that its outputs depend on every input."""
    th.manual_seed(seed)
    policy = SlotScoringPolicy(
        envs.single_observation_space, envs.single_action_space, lambda _: 1e-3, net_arch=[16, 16], slot_arch=[8, 8]
    )
    generator = th.Generator().manual_seed(seed)
    with th.no_grad():
        for param in policy.parameters():
            param.copy_(th.randn(param.shape, generator=generator) * 0.5)
    return policy


def played_observations(envs: RetentionVectorEnv, weeks: int = 3) -> dict[str, np.ndarray]:
    """Observations after a few weeks of mixed actions (non-zero last emails, fatigue, novelty)."""
    obs, _ = envs.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(weeks):
        obs, *_ = envs.step(rng.integers(0, envs.single_action_space.n, envs.num_envs))
    return obs


@pytest.mark.parametrize("oracle_features", [False, True])
def test_shapes_of_features_logits_and_values(oracle_features: bool) -> None:
    envs = dict_envs(6, oracle_features=oracle_features)
    policy = build_policy(envs)
    obs = played_observations(envs)
    extractor = policy.features_extractor
    assert isinstance(extractor, SlotFeaturesExtractor)
    d_sub = envs.single_observation_space["subscriber"].shape[0]
    assert extractor.n_slots == N_ACTIONS
    # bank row, products with the last email, and p_k, p_k / best, [p_k is the best]
    assert extractor.d_slot == 16 + 8 + (3 if oracle_features else 0)
    assert extractor.d_state == d_sub + (3 if oracle_features else 0)
    tensor_obs, _ = policy.obs_to_tensor(obs)
    features = policy.extract_features(tensor_obs)
    assert features.shape == (6, extractor.features_dim)
    logits, latent_vf = policy.mlp_extractor(features)
    assert logits.shape == (6, N_ACTIONS + 1)
    actions, values, log_prob = policy(tensor_obs)
    assert actions.shape == (6,) and values.shape == (6, 1) and log_prob.shape == (6,)
    probs = action_probs(policy, obs)
    np.testing.assert_allclose(probs.sum(dim=1).numpy(), 1.0, rtol=1e-5)


@pytest.mark.parametrize("oracle_features", [False, True])
def test_permuting_the_bank_slots_permutes_the_action_probabilities(oracle_features: bool) -> None:
    envs = dict_envs(8, oracle_features=oracle_features)
    policy = build_policy(envs, seed=1)
    obs = played_observations(envs)
    perm = np.random.default_rng(1).permutation(N_ACTIONS)
    permuted = dict(obs)
    permuted["bank"] = obs["bank"][:, perm]
    permuted["action_mask"] = np.concatenate([obs["action_mask"][:, perm], obs["action_mask"][:, -1:]], axis=1)
    if oracle_features:
        permuted["oracle"] = np.concatenate([obs["oracle"][:, perm], obs["oracle"][:, N_ACTIONS:]], axis=1)
    probs = action_probs(policy, obs).numpy()
    probs_permuted = action_probs(policy, permuted).numpy()
    assert probs[:, :N_ACTIONS].std() > 1e-3  # the check is not about a uniform policy
    np.testing.assert_allclose(probs_permuted[:, :N_ACTIONS], probs[:, perm], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(probs_permuted[:, -1], probs[:, -1], rtol=1e-4, atol=1e-7)
    values = policy.predict_values(policy.obs_to_tensor(obs)[0])
    values_permuted = policy.predict_values(policy.obs_to_tensor(permuted)[0])
    th.testing.assert_close(values_permuted, values, rtol=1e-4, atol=1e-5)  # the critic pools the slots


def test_padded_slots_are_never_chosen() -> None:
    envs = dict_envs(16, max_bank_size=N_ACTIONS + 4)
    policy = build_policy(envs, seed=2)
    obs = played_observations(envs)
    probs = action_probs(policy, obs).numpy()
    assert probs.shape == (16, N_ACTIONS + 5)
    assert np.all(probs[:, N_ACTIONS : N_ACTIONS + 4] == 0.0)
    assert np.all(probs[:, :N_ACTIONS].sum(axis=1) > 0.0) and np.all(probs[:, -1] > 0.0)


def test_the_policy_refuses_a_flat_observation() -> None:
    flat = RetentionVectorEnv(2, world=hashing_world())
    with pytest.raises(TypeError, match="observe_bank=True"):
        SlotScoringPolicy(flat.single_observation_space, flat.single_action_space, lambda _: 1e-3)
    with pytest.raises(ValueError, match="message_obs_dim"):
        SlotFeaturesExtractor(dict_envs(2).single_observation_space, message_obs_dim=64)
    bad = spaces.Dict({"subscriber": spaces.Box(0, 1, (20,)), "bank": spaces.Box(-1, 1, (3, 16))})
    with pytest.raises(ValueError, match="action_mask"):
        SlotFeaturesExtractor(bad)


def test_train_sb3_slots_is_seeded_saves_loads_and_plays_lifetimes(tmp_path: Path) -> None:
    kwargs = {"world": hashing_world(), "horizon": 6, "oracle_features": True}
    first = train_sb3(kwargs, total_timesteps=512, seed=3, n_envs=16, algo_kwargs=TINY_PPO, policy="slots")
    second = train_sb3(kwargs, total_timesteps=512, seed=3, n_envs=16, algo_kwargs=TINY_PPO, policy="slots")
    assert isinstance(first.policy, SlotScoringPolicy) and first.num_timesteps >= 512
    for a, b in zip(first.policy.parameters(), second.policy.parameters(), strict=True):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())  # same ops, same order, same process
    eval_envs = dict_envs(64, oracle_features=True)
    result = run_lifetimes(eval_envs, SB3RetentionPolicy(first), seed=0)
    assert result.weeks.min() >= 1 and np.all(np.isfinite(result.clicks))
    np.testing.assert_array_equal(result.clicks, run_lifetimes(eval_envs, SB3RetentionPolicy(second), seed=0).clicks)

    from stable_baselines3 import PPO

    first.save(tmp_path / "slots.zip")
    loaded = PPO.load(tmp_path / "slots.zip", device="cpu")
    assert isinstance(loaded.policy, SlotScoringPolicy) and loaded.policy.slot_arch == first.policy.slot_arch
    obs = played_observations(eval_envs)
    th.testing.assert_close(action_probs(loaded.policy, obs), action_probs(first.policy, obs))
    reloaded = run_lifetimes(eval_envs, SB3RetentionPolicy(loaded), seed=0)
    np.testing.assert_array_equal(reloaded.clicks, result.clicks)


def test_train_sb3_policy_errors() -> None:
    with pytest.raises(ValueError, match="policy must be one of"):
        train_sb3({"world": hashing_world()}, total_timesteps=8, seed=0, policy="transformer")
    with pytest.raises(ValueError, match="observe_bank=False"):
        train_sb3({"world": hashing_world(), "observe_bank": False}, total_timesteps=8, seed=0, policy="slots")


def test_the_slots_policy_trains_on_the_sb3_adapter_with_same_step_autoreset() -> None:
    from stable_baselines3 import PPO

    venv = sb3_vec_env(dict_envs(16, horizon=4, autoreset_mode=AutoresetMode.SAME_STEP))
    venv.seed(0)
    model = PPO(SlotScoringPolicy, venv, n_steps=8, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
