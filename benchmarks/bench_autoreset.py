"""The speed cost of NEXT_STEP autoreset in the native Targeting vector env, measured against SAME_STEP.

NEXT_STEP (Gymnasium's default, what its vector wrappers and RLlib expect) spends one step per episode on
resetting; SAME_STEP (SB3's convention) does not. The two modes are timed alternately (paired rounds, so a busy
machine slows both alike) over whole episodes of random actions. Each round gives a ratio NEXT/SAME of
user-steps per second; the table reports the median rates and the median paired ratio with its min..max.

Run ``python -m benchmarks.bench_autoreset [--rounds 15]`` from the repository root.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from actionbank_env.core.world import WorldConfig
from actionbank_env.envs._common import cached_world
from actionbank_env.envs.targeting_vector import TargetingVectorEnv

USERS_PER_EPISODE = 1000
SIZES = (16, 64, 1024)


def _rate(env: TargetingVectorEnv, actions: np.ndarray) -> float:
    start = time.perf_counter()
    env.reset(seed=0)
    for row in actions:
        env.step(row)
    return actions.size / (time.perf_counter() - start)


def run(rounds: int = 15) -> list[dict[str, Any]]:
    """One row per ``num_envs``: median rates of both modes and the median paired ratio NEXT/SAME."""
    world = cached_world(WorldConfig(embedder="hashing", embedding_dim=128, initial_actions=30, cache_embeddings=False))
    rows = []
    with threadpool_limits(1):
        for num_envs in SIZES:
            n_steps = 2 * USERS_PER_EPISODE + 2  # two whole episodes in both modes
            actions = np.random.default_rng(0).integers(30, size=(n_steps, num_envs))
            envs = {
                mode: TargetingVectorEnv(
                    num_envs, world=world, users_per_episode=USERS_PER_EPISODE, autoreset_mode=mode
                )
                for mode in ("next_step", "same_step")
            }
            for env in envs.values():  # warm-up
                _rate(env, actions)
            rates: dict[str, list[float]] = {"next_step": [], "same_step": []}
            for r in range(rounds):
                order = ("next_step", "same_step") if r % 2 == 0 else ("same_step", "next_step")
                for mode in order:
                    rates[mode].append(_rate(envs[mode], actions))
            ratios = np.asarray(rates["next_step"]) / np.asarray(rates["same_step"])
            rows.append(
                {
                    "num_envs": num_envs,
                    "next_step": float(np.median(rates["next_step"])),
                    "same_step": float(np.median(rates["same_step"])),
                    "ratio": float(np.median(ratios)),
                    "ratio_min": float(ratios.min()),
                    "ratio_max": float(ratios.max()),
                }
            )
    return rows


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="paired timing rounds per size")
    args = parser.parse_args()
    print(f"{'num_envs':>9}{'next_step':>14}{'same_step':>14}{'ratio':>8}  min..max   (user-steps/s, medians)")
    for r in run(args.rounds):
        print(
            f"{r['num_envs']:>9}{r['next_step']:>14,.0f}{r['same_step']:>14,.0f}{r['ratio']:>8.3f}  "
            f"{r['ratio_min']:.2f}..{r['ratio_max']:.2f}"
        )


if __name__ == "__main__":
    main()
