"""How well can a policy that sees each message only through the bank observation's projection target at all?

:class:`~agents.slot_policy.SlotScoringPolicy` scores message ``k`` from its row of the ``Dict`` observation's
``"bank"``: the top ``bank_obs_dim`` principal components of its embedding (``RetentionConfig.bank_obs_dim``,
default 16). Two messages whose projections agree look the same to it, whatever their true click probabilities.
This prints, per world and dimension, the share of the bank's embedding variance the projection keeps, and the
click probability of the message that the *exact* ground truth picks on the projected embeddings (the
embeddings rebuilt from their top components) relative to the true best message's, on a sample of users: an
upper bound on the targeting of any policy that identifies messages by these features alone (a flat MLP
over ``Discrete(K + 1)`` identifies them by index and has no such bound).

Run from the repository root: ``nice -n 15 python -m benchmarks.retention_projection_ceiling``.
"""

from __future__ import annotations

import argparse

import numpy as np

from actionbank_env.core.world import World, WorldConfig
from benchmarks.retention_ppo_tuning import DEV_WORLD_SEEDS


def main(argv: list[str] | None = None) -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEV_WORLD_SEEDS))
    parser.add_argument("--dims", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--users", type=int, default=4000)
    args = parser.parse_args(argv)
    print(f"{'world':>6}{'dim':>6}{'variance kept':>16}{'targeting ceiling':>20}")
    for seed in args.seeds:
        world = World.build(WorldConfig(world_seed=seed))
        embeddings = world.initial_bank.embeddings.astype(np.float64)
        reference = world.reference_embeddings.astype(np.float64)
        mean = reference.mean(axis=0)
        _, _, axes = np.linalg.svd(reference - mean, full_matrices=False)
        centred = embeddings - mean
        users = world.sample_users(args.users, rng=np.random.default_rng(0)).features
        probs = world.ground_truth.click_prob(users, embeddings.astype(np.float32))
        rows = np.arange(len(users))
        for dim in args.dims:
            projected = centred @ axes[:dim].T @ axes[:dim]
            kept = 1.0 - ((centred - projected) ** 2).sum() / (centred**2).sum()
            seen = world.ground_truth.click_prob(users, (mean + projected).astype(np.float32))
            ceiling = probs[rows, seen.argmax(axis=1)].mean() / probs.max(axis=1).mean()
            print(f"{seed:>6}{dim:>6}{kept:>16.3f}{ceiling:>20.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
