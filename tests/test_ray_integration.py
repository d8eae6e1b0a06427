"""Ray: the sweep backend gives the local backend's results; RLlib builds and trains on the envs.

Needs the ``ray`` extra; skipped without it. The sweep and RLlib tests start a local Ray and are marked slow.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ray")

from actionbank_env.config import SimulationConfig  # noqa: E402
from actionbank_env.integrations.ray import register_ray_envs, worker_seed  # noqa: E402
from actionbank_env.sweep import run_sweep  # noqa: E402
from tests.worlds import TINY_SETTINGS as TINY  # noqa: E402

pytestmark = [
    # Ray and RLlib emit their own DeprecationWarnings (and RLlib a few UserWarnings) at import and setup.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:ray.*"),
    # Every SingleAgentEnvRunner re-registers RLlib's own gymnasium id; gymnasium warns from its own module.
    pytest.mark.filterwarnings("ignore:.*Overriding environment rllib-single-agent-env-v0:UserWarning"),
]

SMALL_WORLD = {"embedder": "hashing", "initial_actions": 5, "n_reference_texts": 64, "n_reference_users": 256}


def _creator(name: str) -> Any:
    from ray.tune.registry import ENV_CREATOR, _global_registry

    return _global_registry.get(ENV_CREATOR, name)


def test_registered_creators_seed_each_worker_differently_and_reproducibly() -> None:
    from ray.rllib.env.env_context import EnvContext

    assert register_ray_envs() == ("ActionBank/Targeting-v0", "ActionBank/BankDesign-v0", "ActionBank/Retention-v0")
    create = _creator("ActionBank/Targeting-v0")
    config = {**SMALL_WORLD, "users_per_episode": 20, "seed": 3}

    def first_obs(worker_index: int, vector_index: int = 0) -> np.ndarray:
        env = create(EnvContext(config, worker_index=worker_index, vector_index=vector_index))
        users = [env.reset()[0]]
        for _ in range(5):
            users.append(env.step(0)[0])
        return np.stack(users)

    np.testing.assert_array_equal(first_obs(1), first_obs(1))
    assert not np.array_equal(first_obs(1), first_obs(2))
    assert not np.array_equal(first_obs(1, 0), first_obs(1, 1))
    # RLlib's new API stack builds every sub-env of an EnvRunner from one context: each copy gets its own stream
    context = EnvContext(config, worker_index=1)
    a, b = create(context), create(context)
    assert not np.array_equal(a.reset()[0], b.reset()[0])
    assert a.unwrapped.world is b.unwrapped.world  # one cached world per process
    assert worker_seed(3, 1, 0, 0) != worker_seed(3, 1, 0, 1)
    # an explicit seed wins
    np.testing.assert_array_equal(create(context).reset(seed=5)[0], create(EnvContext(config, 2)).reset(seed=5)[0])


def test_bank_design_creator_with_a_catalog_has_a_box_action() -> None:
    from ray.rllib.env.env_context import EnvContext

    register_ray_envs(["ActionBank/BankDesign-v0"])
    catalog = [f"Offer number {i}: save today" for i in range(8)]
    env = _creator("ActionBank/BankDesign-v0")(
        EnvContext(
            {**SMALL_WORLD, "users_per_iteration": 50, "n_iterations": 2, "catalog": catalog, "bank_size": 3},
            worker_index=1,
        )
    )
    assert env.action_space.shape == (8,)
    env.reset()
    _, reward, *_ = env.step(env.action_space.sample())
    assert 0.0 <= reward <= 1.0


@pytest.mark.slow
def test_ray_sweep_matches_the_local_backend(tmp_path: Path) -> None:
    import ray

    base = SimulationConfig.from_settings(TINY)
    grid = {"designer": ("generative", "keep")}
    local = run_sweep(base, grid=grid, seeds=(0, 1), out=tmp_path / "local", backend="local", workers=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_sweep(base, grid=grid, seeds=(0, 1), out=tmp_path / "ray", backend="ray", workers=2)
    finally:
        ray.shutdown()
    assert [r["status"] for r in local.records] == ["ok"] * 4
    assert [r["status"] for r in remote.records] == ["ok"] * 4
    for a, b in zip(local.records, remote.records, strict=True):
        run_a, run_b = Path(a["path"]), Path(b["path"])
        assert run_a.relative_to(tmp_path / "local") == run_b.relative_to(tmp_path / "ray")
        # summary.json has no timing keys; the logs are byte-identical too
        assert (run_a / "summary.json").read_bytes() == (run_b / "summary.json").read_bytes()
        for t in (1, 2):
            assert (run_a / f"iteration_{t}/observations.csv").read_bytes() == (
                run_b / f"iteration_{t}/observations.csv"
            ).read_bytes()
    assert local.rows == remote.rows


@pytest.mark.slow
def test_rllib_ppo_trains_on_targeting() -> None:
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        register_ray_envs()
        config = (
            PPOConfig()
            .environment("ActionBank/Targeting-v0", env_config={**SMALL_WORLD, "users_per_episode": 50, "seed": 0})
            .env_runners(num_env_runners=1, num_envs_per_env_runner=2)
            .training(train_batch_size_per_learner=400, minibatch_size=100, num_epochs=2)
        )
        algo = config.build_algo()
        try:
            returns = []
            for _ in range(2):
                result = algo.train()
                returns.append(result["env_runners"]["episode_return_mean"])
            steps = result["env_runners"]["num_env_steps_sampled_lifetime"]
        finally:
            algo.stop()
    finally:
        ray.shutdown()
    assert steps >= 800
    assert all(math.isfinite(r) and 0.0 <= r <= 50.0 for r in returns)


def _sample_vector_entry_point(
    env_id: str, env_config: dict[str, Any], vector_class: type, registered: bool, n_steps: int
) -> list[Any]:
    """Episodes an RLlib env runner samples from ``env_id``'s native vector env (3 envs, random actions)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    env_config = dict(env_config)
    if registered:  # through make_ray_env, which takes a seed; otherwise RLlib calls gymnasium.make_vec itself
        register_ray_envs()
        env_config["seed"] = 0
    config = (
        PPOConfig()
        .environment(env_id, env_config=env_config)
        .env_runners(num_envs_per_env_runner=3, gym_env_vectorize_mode="vector_entry_point")
    )
    runner = SingleAgentEnvRunner(config=config)
    try:
        assert isinstance(runner.env.unwrapped, vector_class)
        return list(runner.sample(num_timesteps=n_steps, random_actions=True))
    finally:
        runner.stop()


@pytest.mark.parametrize("registered", [False, True])
def test_rllib_vector_entry_point_loses_no_transition(registered: bool) -> None:
    # Item 2 of issue 19: RLlib steps the native vector env (gym_env_vectorize_mode="vector_entry_point");
    # with SAME_STEP autoreset every episode after the first lost its first transition (length 19 of 20).
    from actionbank_env.envs.targeting_vector import TargetingVectorEnv

    config = {**SMALL_WORLD, "users_per_episode": 20}
    episodes = _sample_vector_entry_point("ActionBank/Targeting-v0", config, TargetingVectorEnv, registered, 200)
    done = [len(e) for e in episodes if e.is_done]
    assert len(done) >= 9 and set(done) == {20}


@pytest.mark.parametrize("registered", [False, True])
def test_rllib_samples_whole_lifetimes_from_the_retention_vector_twin(registered: bool) -> None:
    # Issue 20: RLlib steps Retention-v0's native vector twin (NEXT_STEP autoreset): every finished lifetime has
    # all its weeks (the horizon, or fewer only when the subscriber unsubscribed), none is cut at an autoreset.
    from actionbank_env.envs.retention import RetentionVectorEnv

    config = {**SMALL_WORLD, "horizon": 10, "unsubscribe_base": 0.05}
    episodes = _sample_vector_entry_point("ActionBank/Retention-v0", config, RetentionVectorEnv, registered, 300)
    done = [e for e in episodes if e.is_done]
    assert len(done) >= 20
    assert all(len(e) == 10 for e in done if e.is_truncated)
    assert all(1 <= len(e) <= 10 for e in done if e.is_terminated)
    assert any(e.is_terminated for e in done)  # 5 % a week: some subscribers leave before the horizon
