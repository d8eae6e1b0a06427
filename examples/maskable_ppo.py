"""sb3-contrib's MaskablePPO on ``ActionBank/Targeting-v0`` with ``observe_bank=True``: never sends a padded slot.

With ``observe_bank`` the action space has ``max_bank_size`` slots, more than the bank's actions; a padded slot
means *no message*. The env's ``action_masks()`` (and the int8 ``"action_mask"`` of the observation) tell
MaskablePPO which slots are real, so it never samples the others. The script trains on a bank of 6 texts in 12
slots, then deploys a bank of 4 texts and counts how often the policy picks a padded slot (it must be 0).

Needs ``sb3-contrib`` (``pip install sb3-contrib``). Run from the repository root:
``python examples/maskable_ppo.py [--timesteps 4096]``.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3.common.env_util import make_vec_env

import actionbank_env  # noqa: F401  (registers the ids)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--timesteps", type=int, default=4096)
args = parser.parse_args()
settings = {
    "observe_bank": True,
    "max_bank_size": 12,
    "users_per_episode": 128,
    "embedder": "hashing",
    "initial_actions": 6,
    "n_reference_texts": 128,
    "n_reference_users": 256,
}
venv = make_vec_env("ActionBank/Targeting-v0", n_envs=2, seed=0, env_kwargs=settings)
model = MaskablePPO("MultiInputPolicy", venv, n_steps=256, batch_size=128, seed=0, verbose=0)
model.learn(args.timesteps)

env = gym.make("ActionBank/Targeting-v0", **settings)
texts = env.unwrapped.bank.texts[:4]
obs, _ = env.reset(seed=1, options={"bank": texts})
padded = clicks = 0
for _ in range(settings["users_per_episode"]):
    action, _ = model.predict(obs, action_masks=env.unwrapped.action_masks(), deterministic=False)
    padded += int(action >= len(texts))
    obs, reward, terminated, _, _ = env.step(int(action))
    clicks += reward
print(f"masks from the vec env: {get_action_masks(venv).shape}, int8 mask in obs: {obs['action_mask'].dtype}")
print(
    f"bank of {len(texts)} texts in {settings['max_bank_size']} slots: padded slots chosen {padded}, clicks {clicks:.0f}"
)
