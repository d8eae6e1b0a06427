"""Train SB3 PPO on the outer env: ``BankDesign-v0`` wrapped with ``FixedCatalogActionWrapper``.

``BankDesign-v0``'s action is the next bank as a list of texts, which SB3 cannot emit. The wrapper fixes a
catalog of M candidate texts and turns a ``Box(-1, 1, (M,))`` score vector into the top-k texts, so PPO (with
SB3's ``MultiInputPolicy`` for the ``Dict`` observation) learns which texts to put in the bank. Each step runs
one campaign of the company's LinUCB agent on fresh users; the reward is the mean true click probability of what
it served. The script prints the mean episode reward of the deterministic policy before and after a few hundred
steps of training (at this tiny size the gain is noisy: it shows the wiring, not a result).

Run (about 40 s; hashing embedder for speed, ``--embedder minilm`` for the semantic default one)::

    python examples/bank_design_with_catalog_wrapper.py [--timesteps 384] [--embedder minilm]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import actionbank_env  # noqa: F401  (registers the env ids)
from actionbank_env.envs.wrappers import FixedCatalogActionWrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=384, help="PPO training steps (one campaign each)")
    parser.add_argument("--users", type=int, default=100, help="users per campaign")
    parser.add_argument("--catalog-size", type=int, default=24)
    parser.add_argument("--bank-size", type=int, default=6)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--embedder", default="hashing", choices=("hashing", "minilm"))
    args = parser.parse_args()

    env = gym.make(
        "ActionBank/BankDesign-v0",
        embedder=args.embedder,
        users_per_iteration=args.users,
        n_iterations=4,
        initial_actions=args.bank_size,
        max_bank_size=args.bank_size,
        campaign_batch_size=50,
    )
    catalog = list(env.unwrapped.world.reference_texts[: args.catalog_size])
    env = Monitor(FixedCatalogActionWrapper(env, catalog, bank_size=args.bank_size))
    first_obs, _ = env.reset(seed=0)
    model = PPO("MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=4, seed=0, device="cpu", verbose=0)

    def mean_reward() -> float:
        reward, _ = evaluate_policy(model, env, n_eval_episodes=args.eval_episodes, deterministic=True)
        return float(reward) / 4  # per step (4 campaigns per episode)

    before = mean_reward()
    model.learn(total_timesteps=args.timesteps)
    after = mean_reward()
    scores, _ = model.predict(first_obs, deterministic=True)
    print(f"catalog of {len(catalog)} texts, banks of {args.bank_size}, {args.users} users per campaign")
    print(f"mean reward per campaign before training: {before:.4f}")
    print(f"mean reward per campaign after {args.timesteps} steps: {after:.4f}")
    print("bank the trained policy picks first:")
    for text in FixedCatalogActionWrapper.top_k(np.asarray(scores), catalog, args.bank_size):
        print(f"  - {text}")


if __name__ == "__main__":
    main()
