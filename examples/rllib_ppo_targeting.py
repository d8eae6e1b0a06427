"""Train PPO (RLlib, new API stack) on ``ActionBank/Targeting-v0`` and print the reward curve.

Needs the ``ray`` extra (``pip install 'actionbank-env[ray]'``). One remote EnvRunner samples campaigns of
200 users (one episode = one campaign; its return is the number of clicks); the driver's learner updates
the policy. A minute or two on two cores::

    python examples/rllib_ppo_targeting.py --iterations 5
"""

from __future__ import annotations

import argparse
import time

import ray
from ray.rllib.algorithms.ppo import PPOConfig

from actionbank_env.integrations.ray import register_ray_envs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--users-per-episode", type=int, default=200)
    parser.add_argument("--env-runners", type=int, default=1)
    parser.add_argument("--envs-per-runner", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    register_ray_envs()
    env_config = {"embedder": "hashing", "users_per_episode": args.users_per_episode, "seed": args.seed}
    config = (
        PPOConfig()
        .environment("ActionBank/Targeting-v0", env_config=env_config)
        .env_runners(num_env_runners=args.env_runners, num_envs_per_env_runner=args.envs_per_runner)
        .training(train_batch_size_per_learner=2000, minibatch_size=200, num_epochs=4, lr=1e-3, entropy_coeff=0.01)
    )
    algo = config.build_algo()
    try:
        print(f"{'iter':>4}  {'episode_return_mean':>20}  {'episodes':>8}  {'env_steps':>9}  {'seconds':>7}")
        for i in range(1, args.iterations + 1):
            start = time.perf_counter()
            result = algo.train()
            runners = result["env_runners"]
            print(
                f"{i:>4}  {runners.get('episode_return_mean', float('nan')):>20.3f}  "
                f"{runners.get('num_episodes', 0):>8}  {runners.get('num_env_steps_sampled_lifetime', 0):>9.0f}  "
                f"{time.perf_counter() - start:>7.1f}"
            )
    finally:
        algo.stop()
        ray.shutdown()


if __name__ == "__main__":
    main()
