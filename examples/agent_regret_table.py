"""Regret of every targeting agent on the default world: 5 seeds, mean and 95% confidence interval.

Each seed draws its own users, clicks and agent randomness (``SeedSequence(seed).spawn``); the world (ground
truth, initial bank) is the default one for ``--world-seed``. An agent serves ``--users`` users in mini-batches of
``--batch-size`` through :func:`~actionbank_env.core.campaign.run_campaign`, learning online. Regret is the
mean per-user gap between the best action of the bank for that user and the served one (ground-truth click
probabilities); the oracle's is 0 by construction. The interval is mean +/- t(0.975, n-1) * sd / sqrt(n).

Run from the repository root::

    python examples/agent_regret_table.py                      # hashing embedder, 5 seeds x 5000 users
    python examples/agent_regret_table.py --embedder minilm    # the semantic default embedder
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actionbank_env.core.campaign import run_campaign  # noqa: E402
from actionbank_env.core.world import World, WorldConfig  # noqa: E402
from actionbank_env.registry import make_agent  # noqa: E402

#: (label, registry name, hyperparameters), in table order.
AGENTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("random", "random", {}),
    ("epsilon_greedy", "epsilon_greedy", {}),
    ("legacy", "legacy", {}),
    ("linucb (disjoint)", "linucb", {"mode": "disjoint"}),
    ("linucb (hybrid)", "linucb", {"mode": "hybrid"}),
    ("bootstrapped_dqn", "bootstrapped_dqn", {}),
    ("oracle", "oracle", {}),
)

#: Two-sided 97.5% quantiles of Student's t for 1..10 degrees of freedom (no scipy needed).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t-interval (``nan`` half-width for one value)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return float(v.mean()), float("nan")
    t = _T975[min(v.size - 1, len(_T975)) - 1] if v.size - 1 <= len(_T975) else 1.96
    return float(v.mean()), float(t * v.std(ddof=1) / np.sqrt(v.size))


def run_agent(
    world: World, name: str, params: dict[str, Any], *, seed: int, n_users: int, batch_size: int
) -> dict[str, float]:
    """One campaign of ``n_users`` for one agent and seed; returns regret, deployed value and seconds."""
    users_rng, clicks_rng, agent_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    agent = make_agent(name, world, rng=agent_rng, **params)
    bank = world.initial_bank
    agent.set_bank(bank)
    users = world.sample_users(n_users, rng=users_rng)
    start = time.perf_counter()
    result = run_campaign(world.ground_truth, bank, agent, users, rng=clicks_rng, batch_size=batch_size)
    return {
        "regret": result.regret,
        "deployed_value": result.deployed_value,
        "bank_value": result.bank_value,
        "seconds": time.perf_counter() - start,
    }


def regret_table(
    world: World,
    agents: Sequence[tuple[str, str, dict[str, Any]]] = AGENTS,
    *,
    seeds: Sequence[int] = range(5),
    n_users: int = 5000,
    batch_size: int = 16,
) -> list[dict[str, Any]]:
    """One row per agent: mean and 95% CI half-width of regret and deployed value over ``seeds``."""
    rows = []
    for label, name, params in agents:
        runs = [run_agent(world, name, params, seed=s, n_users=n_users, batch_size=batch_size) for s in seeds]
        regret, regret_ci = mean_ci([r["regret"] for r in runs])
        value, value_ci = mean_ci([r["deployed_value"] for r in runs])
        rows.append(
            {
                "agent": label,
                "regret": regret,
                "regret_ci": regret_ci,
                "deployed_value": value,
                "deployed_value_ci": value_ci,
                "bank_value": float(np.mean([r["bank_value"] for r in runs])),
                "seconds": float(np.mean([r["seconds"] for r in runs])),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedder", default="hashing", choices=("hashing", "minilm"))
    parser.add_argument("--users", type=int, default=5000, help="users per seed (one campaign)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--world-seed", type=int, default=0)
    args = parser.parse_args(argv)
    world = World.build(WorldConfig(world_seed=args.world_seed, embedder=args.embedder))
    print(
        f"world: {args.embedder} embedder, {len(world.initial_bank)} actions, world_seed={args.world_seed}; "
        f"{args.seeds} seeds x {args.users} users, batch {args.batch_size}; mean +/- 95% CI"
    )
    rows = regret_table(world, seeds=range(args.seeds), n_users=args.users, batch_size=args.batch_size)
    print(f"{'agent':20s} {'regret':>20s} {'deployed value':>20s} {'bank value':>11s} {'s/seed':>7s}")
    for r in rows:
        print(
            f"{r['agent']:20s} {r['regret']:>10.4f} +/- {r['regret_ci']:<6.4f} "
            f"{r['deployed_value']:>10.4f} +/- {r['deployed_value_ci']:<6.4f} {r['bank_value']:>11.4f} {r['seconds']:>7.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
