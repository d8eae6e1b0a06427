"""Train SB3 PPO on ``ActionBank/Retention-v0`` and compare its subscribers' lifetimes with the baselines.

Run from the repository root: ``python examples/train_sb3_on_retention.py`` (hashing embedder, 1M subscriber-weeks
of PPO: a few minutes on two cores; ``--timesteps 3000000 --embedder minilm`` is the setting of
``benchmarks/retention_baselines.py``). Prints clicks per subscriber, unsubscribe rate and emails per subscriber
over 26-week lifetimes for oracle-myopic, a fixed two-week cadence, LinUCB and PPO on the same cohort.
"""

from __future__ import annotations

import argparse

import numpy as np

import actionbank_env  # noqa: F401  (registers the ids)
from actionbank_env.core.world import World, WorldConfig
from actionbank_env.envs.retention import RetentionVectorEnv
from agents.linucb import LinUCBAgent
from agents.retention import (
    FixedCadencePolicy,
    OracleMyopicPolicy,
    SB3RetentionPolicy,
    TargetingAgentPolicy,
    run_lifetimes,
    train_sb3,
)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--timesteps", type=int, default=1_000_000, help="PPO training steps (subscriber-weeks)")
parser.add_argument("--subscribers", type=int, default=5_000, help="subscribers in the measured cohort")
parser.add_argument("--embedder", default="hashing", choices=("hashing", "minilm"))
parser.add_argument("--world-seed", type=int, default=0)
args = parser.parse_args()

world = World.build(WorldConfig(world_seed=args.world_seed, embedder=args.embedder))
envs = RetentionVectorEnv(args.subscribers, world=world)
linucb = TargetingAgentPolicy(envs, lambda c, rng: LinUCBAgent(c, rng=rng), rng=np.random.default_rng(0))
run_lifetimes(envs, linucb, seed=2)  # LinUCB learns from one cohort first (and keeps learning)
model = train_sb3({"world": world}, total_timesteps=args.timesteps, seed=0)

print(f"{'policy':<16}{'clicks/subscriber':>18}{'unsubscribed':>14}{'emails':>8}")
for name, policy in (
    ("oracle-myopic", OracleMyopicPolicy()),
    ("every 2 weeks", FixedCadencePolicy(2)),
    ("LinUCB", linucb),
    (f"PPO ({args.timesteps:,})", SB3RetentionPolicy(model)),
):
    s = run_lifetimes(envs, policy, seed=1).summary()
    print(
        f"{name:<16}{s['clicks_per_subscriber']:>18.3f}{s['unsubscribe_rate']:>14.3f}{s['emails_per_subscriber']:>8.1f}"
    )
