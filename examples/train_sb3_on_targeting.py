"""Train PPO on ``ActionBank/Targeting-v0`` (small world, hashing embedder) and print the evaluation; under a minute.

Run from the repository root: ``python examples/train_sb3_on_targeting.py``; then
``tensorboard --logdir results`` and serve the model with ``agents.sb3.SB3PolicyAgent(model_path=...)``.
"""

from __future__ import annotations

import json

from actionbank_env.training import train

result = train(
    "ppo",
    total_timesteps=8192,
    seed=0,
    env_kwargs={"users_per_episode": 256, "embedder": "hashing", "initial_actions": 10},
    algo_kwargs={"n_steps": 512, "batch_size": 128},
)
print(f"run folder: {result.path}\nmodel: {result.model_path}")
print(json.dumps(result.evaluation, indent=2))
