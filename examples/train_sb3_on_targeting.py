"""Train PPO on ``ActionBank/Targeting-v0`` (small world, hashing embedder) and print the evaluation; under a minute.

Run from the repository root: ``python examples/train_sb3_on_targeting.py``; then
``tensorboard --logdir results`` and serve the model with ``agents.sb3.SB3PolicyAgent(model_path=...)``.
"""

from __future__ import annotations

import argparse
import json

from actionbank_env.training import train

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--timesteps", type=int, default=8192, help="PPO's total environment steps (default 8192)")
parser.add_argument("--seed", type=int, default=0, help="decides the world, the users and PPO (default 0)")
parser.add_argument("--embedder", default="hashing", help="hashing (default, fast) or minilm")
args = parser.parse_args()

result = train(
    "ppo",
    total_timesteps=args.timesteps,
    seed=args.seed,
    env_kwargs={"users_per_episode": 256, "embedder": args.embedder, "initial_actions": 10},
    algo_kwargs={"n_steps": 512, "batch_size": 128},
)
print(f"run folder: {result.path}\nmodel: {result.model_path}")
print(json.dumps(result.evaluation, indent=2))
