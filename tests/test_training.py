"""``actionbank_env.training.train`` and the SB3 policy adapter (agents/sb3.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actionbank_env.core.actions import ActionBank
from actionbank_env.core.campaign import run_campaign
from actionbank_env.errors import ConfigError
from actionbank_env.training import TrainResult, train

pytest.importorskip("stable_baselines3")

#: A small hashing world: fast to build, 5 actions.
WORLD_KWARGS: dict[str, Any] = {
    "embedder": "hashing",
    "initial_actions": 5,
    "embedding_dim": 64,
    "n_reference_texts": 64,
    "n_reference_users": 256,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return train(
        "ppo",
        total_timesteps=512,
        seed=3,
        out=tmp_path_factory.mktemp("train") / "run",
        env_kwargs={"users_per_episode": 32, **WORLD_KWARGS},
        algo_kwargs={"n_steps": 128, "batch_size": 64, "n_epochs": 2},
        n_eval_episodes=2,
    )


def test_train_writes_the_run_folder(trained: TrainResult) -> None:
    path = trained.path
    assert trained.model_path == path / "model.zip" and trained.model_path.stat().st_size > 1000
    config = json.loads((path / "train_config.json").read_text())
    assert config["algo"] == "ppo" and config["total_timesteps"] == 512 and config["seed"] == 3
    assert config["env_kwargs"]["users_per_episode"] == 32 and "stable_baselines3" in config["versions"]
    evaluation = json.loads((path / "evaluation.json").read_text())
    assert set(evaluation) >= {"trained", "random", "best_single_action"}
    assert evaluation["trained"]["mean_reward"] == trained.mean_reward
    # The best constant action in hindsight is at least as good in expectation as uniform random actions.
    probs = {k: evaluation[k]["mean_click_prob"] for k in ("trained", "random", "best_single_action")}
    assert all(0.0 < p < 1.0 for p in probs.values()), probs
    assert probs["best_single_action"] >= probs["random"] - 0.01, probs
    assert not list(path.glob("**/*.tmp")), "no temp files left behind"


def test_train_logs_tensorboard_events(trained: TrainResult) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert trained.tensorboard_dir is not None
    event_files = list(trained.tensorboard_dir.glob("**/events.out.tfevents.*"))
    assert event_files, list(trained.tensorboard_dir.glob("**/*"))
    accumulator = EventAccumulator(str(event_files[0].parent))
    accumulator.Reload()
    tags = accumulator.Tags()["scalars"]
    assert "rollout/ep_rew_mean" in tags and any(t.startswith("train/") for t in tags), tags
    assert len(accumulator.Scalars("rollout/ep_rew_mean")) >= 1


def test_loaded_policy_serves_in_run_campaign(trained: TrainResult) -> None:
    from actionbank_env.core.world import WorldConfig
    from actionbank_env.envs._common import cached_world
    from agents.sb3 import SB3PolicyAgent

    world = cached_world(WorldConfig(**WORLD_KWARGS))
    agent = SB3PolicyAgent(world.agent_context(), rng=np.random.default_rng(0), model_path=str(trained.model_path))
    agent.set_bank(world.initial_bank)
    users = world.sample_users(300, rng=np.random.default_rng(1))
    result = run_campaign(world.ground_truth, world.initial_bank, agent, users, rng=np.random.default_rng(2))
    log = result.log
    assert len(log) == 300 and np.all(log.propensities == 1.0)
    # Deterministic: the same users get the same actions as model.predict on the env's float32 observations.
    expected, _ = agent.model.predict(users.features.astype(np.float32), deterministic=True)
    np.testing.assert_array_equal(log.columns["action_index"], expected)
    assert 0.0 <= result.regret <= result.bank_value


def test_stochastic_propensities_match_the_policy(trained: TrainResult) -> None:
    from actionbank_env.core.world import WorldConfig
    from actionbank_env.envs._common import cached_world
    from agents.sb3 import SB3PolicyAgent

    world = cached_world(WorldConfig(**WORLD_KWARGS))
    agent = SB3PolicyAgent(
        world.agent_context(), rng=np.random.default_rng(0), model_path=trained.model_path, deterministic=False
    )
    agent.set_bank(world.initial_bank)
    users = np.tile(world.sample_users(1, rng=np.random.default_rng(1)).features, (20_000, 1))
    probs = agent.action_probabilities(users[:1])[0]
    np.testing.assert_allclose(probs.sum(), 1.0)
    decision = agent.act(users)
    np.testing.assert_allclose(decision.propensities, probs[decision.actions])
    freq = np.bincount(decision.actions, minlength=probs.size) / decision.actions.size
    np.testing.assert_allclose(freq, probs, atol=0.015)
    assert agent.update(users[:3], decision.actions[:3], np.zeros(3)) == {}


def test_observe_bank_adapter_builds_the_env_observation() -> None:
    import gymnasium as gym
    from stable_baselines3 import PPO

    from agents.sb3 import SB3PolicyAgent

    env = gym.make("ActionBank/Targeting-v0", observe_bank=True, max_bank_size=8, users_per_episode=4, **WORLD_KWARGS)
    model = PPO("MultiInputPolicy", env, seed=0, device="cpu", n_steps=32, batch_size=32)
    world = env.unwrapped.world
    agent = SB3PolicyAgent(world.agent_context(), rng=np.random.default_rng(0), model=model, deterministic=False)
    assert agent.observe_bank and agent.max_bank_size == 8
    agent.set_bank(world.initial_bank)
    obs, _ = env.reset(seed=0)
    built = agent._observations(np.asarray(obs["user"], dtype=np.float64)[None, :])
    for key in ("user", "bank", "action_mask"):
        np.testing.assert_array_equal(built[key][0], obs[key])
    probs = agent.action_probabilities(np.asarray(obs["user"], dtype=np.float64)[None, :])
    import torch

    obs_tensor, _ = model.policy.obs_to_tensor({k: np.asarray(v)[None] for k, v in obs.items()})
    with torch.no_grad():
        full = model.policy.get_distribution(obs_tensor).distribution.probs.numpy()[0]
    np.testing.assert_allclose(probs[0], full[:5] / full[:5].sum(), rtol=1e-5)
    decision = agent.act(np.full((10, 8), 0.5))
    assert decision.actions.max() < 5  # only real (unmasked) slots
    env.close()


def test_dqn_deterministic_matches_predict() -> None:
    import gymnasium as gym
    from stable_baselines3 import DQN

    from agents.sb3 import SB3PolicyAgent

    env = gym.make("ActionBank/Targeting-v0", users_per_episode=4, **WORLD_KWARGS)
    model = DQN("MlpPolicy", env, seed=0, device="cpu", learning_starts=10, buffer_size=100)
    world = env.unwrapped.world
    agent = SB3PolicyAgent(world.agent_context(), rng=np.random.default_rng(0), model=model, algo="dqn")
    agent.set_bank(world.initial_bank)
    users = world.sample_users(50, rng=np.random.default_rng(0)).features
    expected, _ = model.predict(users.astype(np.float32), deterministic=True)
    np.testing.assert_array_equal(agent.act(users).actions, expected)
    env.close()


def test_sb3_agent_validation(trained: TrainResult) -> None:
    from actionbank_env.core.world import WorldConfig
    from actionbank_env.envs._common import cached_world
    from agents.sb3 import SB3PolicyAgent

    world = cached_world(WorldConfig(**WORLD_KWARGS))
    ctx, rng = world.agent_context(), np.random.default_rng(0)
    with pytest.raises(ConfigError, match="exactly one of model= and model_path="):
        SB3PolicyAgent(ctx, rng=rng)
    with pytest.raises(
        ConfigError, match=re.escape("SB3PolicyConfig.algo must be one of ['a2c', 'dqn', 'ppo'], got 'ppo2'")
    ):
        SB3PolicyAgent(ctx, rng=rng, model_path=trained.model_path, algo="ppo2")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SB3PolicyAgent(ctx, rng=rng, model_path=str(trained.path / "missing.zip"))
    agent = SB3PolicyAgent(ctx, rng=rng, model_path=trained.model_path)
    with pytest.raises(ConfigError, match=re.escape("bank has 3 actions but the policy has Discrete(5) actions")):
        agent.set_bank(ActionBank(list(world.initial_bank)[:3]))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"algo": "ppo2"},
            ConfigError,
            "train algo must be one of ['a2c', 'dqn', 'ppo'], got 'ppo2'. Did you mean 'ppo'?",
        ),
        ({"total_timesteps": 0}, ConfigError, "train total_timesteps must be an int >= 1, got 0."),
        ({"seed": -1}, ConfigError, "train seed must be an int >= 0, got -1."),
        ({"n_envs": 0}, ConfigError, "train n_envs must be an int >= 1, got 0."),
        ({"algo_kwargs": {"seed": 1}}, TypeError, "train algo_kwargs must not contain 'seed'"),
    ],
)
def test_train_validation(tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    args: dict[str, Any] = {"algo": "ppo", "total_timesteps": 10, "seed": 0, "results_dir": tmp_path, **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        train(**args)
    assert not any(tmp_path.iterdir()), "no run folder for invalid arguments"


# --------------------------------------------------------------------------- issue 19, item 3


def test_periodic_evaluation_oracle_and_callbacks(tmp_path: Path) -> None:
    from stable_baselines3.common.callbacks import BaseCallback
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    class CountSteps(BaseCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def _on_step(self) -> bool:
            self.calls += 1
            return True

    counter = CountSteps()
    result = train(
        "ppo",
        total_timesteps=384,
        seed=1,
        out=tmp_path / "run",
        env_kwargs={"users_per_episode": 32, **WORLD_KWARGS},
        algo_kwargs={"n_steps": 128, "batch_size": 64, "n_epochs": 1},
        n_eval_episodes=2,
        eval_freq=128,
        callbacks=[counter],
    )
    assert counter.calls == 384
    evaluation = json.loads((result.path / "evaluation.json").read_text())
    assert [row["timesteps"] for row in evaluation["periodic"]] == [128, 256, 384]
    # The last periodic row is the final evaluation; the oracle bounds every policy in expectation.
    assert evaluation["periodic"][-1]["mean_click_prob"] == evaluation["trained"]["mean_click_prob"]
    oracle = evaluation["oracle"]["mean_click_prob"]
    for name in ("trained", "random", "best_single_action"):
        assert evaluation[name]["mean_click_prob"] <= oracle + 1e-12
    assert result.oracle_reward == pytest.approx(oracle * 32)
    np.testing.assert_allclose(
        [row["regret"] for row in evaluation["periodic"]],
        [oracle - row["mean_click_prob"] for row in evaluation["periodic"]],
    )
    accumulator = EventAccumulator(str(next(result.tensorboard_dir.glob("**/events.out.tfevents.*")).parent))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    assert {"eval/mean_reward", "eval/regret", "eval/oracle_click_prob", "eval/best_single_action_click_prob"} <= tags
    assert {"rollout/click_prob_mean", "rollout/regret_mean"} <= tags
    assert [e.step for e in accumulator.Scalars("eval/mean_reward")] == [128, 256, 384]
    assert accumulator.Scalars("eval/oracle_click_prob")[0].value == pytest.approx(oracle, rel=1e-6)


def test_baselines_are_mask_aware() -> None:
    import gymnasium as gym

    from actionbank_env.training import evaluate_baselines

    env = gym.make(
        "ActionBank/Targeting-v0", users_per_episode=200, observe_bank=True, max_bank_size=10, **WORLD_KWARGS
    )
    out = evaluate_baselines(env, seeds=[0, 1], rng=np.random.default_rng(0))
    # Random targeting over the 5 real actions, never the 5 padded slots (which send nothing: click_prob 0).
    assert out["best_single_action"]["action"] < 5
    constants = []
    for a in range(5):
        probs = []
        for seed in (0, 1):
            env.reset(seed=seed)
            done = False
            while not done:
                _, _, done, _, info = env.step(a)
                probs.append(info["click_prob"])
        constants.append(np.mean(probs))
    assert out["random"]["mean_click_prob"] == pytest.approx(np.mean(constants), abs=0.02)
    assert out["best_single_action"]["mean_click_prob"] == pytest.approx(max(constants))


def test_bad_callbacks_and_env_fail_before_any_folder(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=re.escape("train callbacks must be stable_baselines3 BaseCallback objects")):
        train("ppo", total_timesteps=10, seed=0, results_dir=tmp_path, callbacks=[print])
    with pytest.raises(ConfigError, match=re.escape("train eval_freq must be an int >= 0, got -1.")):
        train("ppo", total_timesteps=10, seed=0, results_dir=tmp_path, eval_freq=-1)
    with pytest.raises(ConfigError, match="must have a Discrete action space"):
        train(
            "ppo", "ActionBank/BankDesign-v0", total_timesteps=10, seed=0, results_dir=tmp_path, env_kwargs=WORLD_KWARGS
        )
    assert not any(tmp_path.iterdir())
