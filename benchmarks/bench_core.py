"""Simulation core throughput: users sampled per second, ground-truth (user, action) pairs per second.

Run ``python -m benchmarks.bench_core`` from the repository root.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from actionbank_env.core.users import UserPopulation
from actionbank_env.core.world import World, WorldConfig
from benchmarks._timing import rate, row


def run(repeats: int = 5) -> list[dict[str, Any]]:
    """Users/s for sampling 1e6 users; pairs/s of each ground truth on 10k users x 2k texts (one core)."""
    rows: list[dict[str, Any]] = []
    with threadpool_limits(1):
        pop = UserPopulation()
        rng = np.random.default_rng(0)
        n_users = 1_000_000
        rows.append(
            row("users sampled", "users/s", rate(lambda: len(pop.sample(n_users, rng=rng)), repeats), n=n_users)
        )
        for family in ("mixture_of_experts", "gmm", "semantic"):
            world = World.build(
                WorldConfig(embedder="hashing", ground_truth=family, n_reference_texts=2048, initial_actions=30)
            )
            users = world.sample_users(10_000, rng=np.random.default_rng(1)).features
            emb = world.reference_embeddings[:2000]
            gt = world.ground_truth

            def pairs(gt: Any = gt, users: Any = users, emb: Any = emb) -> float:
                return float(gt.click_prob(users, emb).size)

            rows.append(row(f"ground truth {family}", "pairs/s", rate(pairs, repeats), n="10000x2000"))
    return rows


if __name__ == "__main__":
    from benchmarks.__main__ import print_table

    print_table(run())
