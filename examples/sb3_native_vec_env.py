"""SB3 PPO on the native vector env of ``ActionBank/Targeting-v0`` (one batched env instead of ``DummyVecEnv``).

``TargetingSB3VecEnv`` hands SB3 the batched simulation; SB3 sees an ordinary ``VecEnv`` (wrap it in ``VecMonitor``
for episode statistics). The script trains PPO, then scores the deterministic policy against random targeting and
the oracle on fresh episodes, and prints the throughput of both VecEnvs.

Run from the repository root: ``python examples/sb3_native_vec_env.py [--timesteps 20000 --num-envs 16]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

from actionbank_env.envs.targeting import TargetingEnv
from actionbank_env.integrations.sb3_vec_env import TargetingSB3VecEnv

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--timesteps", type=int, default=20_000)
parser.add_argument("--num-envs", type=int, default=16)
parser.add_argument("--users-per-episode", type=int, default=200)
args = parser.parse_args()
world = {"embedder": "hashing", "initial_actions": 10, "n_reference_texts": 256, "n_reference_users": 512}

venv = VecMonitor(TargetingSB3VecEnv(args.num_envs, users_per_episode=args.users_per_episode, **world))
model = PPO("MlpPolicy", venv, n_steps=128, batch_size=256, seed=0, verbose=0)
model.learn(args.timesteps)

# Deterministic evaluation on fresh episodes (another seed): the policy, random targeting and the oracle.
evaluation = TargetingSB3VecEnv(args.num_envs, users_per_episode=args.users_per_episode, **world)
evaluation.seed(12345)
obs = evaluation.reset()
rng = np.random.default_rng(0)
served = {"policy": [], "random": [], "oracle": []}
for _ in range(args.users_per_episode):
    actions, _ = model.predict(obs, deterministic=True)
    obs, _, _, infos = evaluation.step(actions)
    served["policy"] += [i["click_prob"] for i in infos]
    served["oracle"] += [i["best_click_prob"] for i in infos]
# Random targeting's expected CTR on the same users would need every action's probability; a random policy rollout:
evaluation.seed(12345)
evaluation.reset()
for _ in range(args.users_per_episode):
    _, _, _, infos = evaluation.step(rng.integers(evaluation.action_space.n, size=args.num_envs))
    served["random"] += [i["click_prob"] for i in infos]
for name, values in served.items():
    print(f"{name:>7}: mean click probability {np.mean(values):.4f}")


def throughput(vec, n_steps: int = 400) -> float:
    vec.seed(0)
    vec.reset()
    actions = rng.integers(vec.action_space.n, size=(n_steps, vec.num_envs))
    start = time.perf_counter()
    for row in actions:
        vec.step(row)
    return n_steps * vec.num_envs / (time.perf_counter() - start)


dummy = DummyVecEnv(
    [lambda: TargetingEnv(users_per_episode=args.users_per_episode, **world) for _ in range(args.num_envs)]
)
native = throughput(TargetingSB3VecEnv(args.num_envs, users_per_episode=args.users_per_episode, **world))
print(f"user-steps/s: native {native:,.0f}, DummyVecEnv {throughput(dummy):,.0f}")
