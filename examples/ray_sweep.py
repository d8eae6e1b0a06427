"""A small multi-seed sweep on Ray: 3 seeds x {generative, random, keep} at a tiny size, mean ± 95% CI.

Needs the ``ray`` extra (``pip install 'actionbank-env[ray]'``). The same from the shell::

    actionbank sweep --seeds 0-2 --grid optimizer=generative,random,keep --set embedder=hashing \\
        --set users=300 --set iterations=2 --set action_pool_size=100 --backend ray --workers 2 --out results/ray_sweep

Re-running skips the finished trials; ``--address auto`` (or ``ray://host:10001``) uses a running cluster.
"""

from __future__ import annotations

import argparse

from actionbank_env.config import SimulationConfig
from actionbank_env.sweep import run_sweep

if __name__ == "__main__":  # the guard matters: trials run in other processes
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (default 2)")
    parser.add_argument("--out", default="results/ray_sweep", help="sweep folder (default results/ray_sweep)")
    parser.add_argument("--embedder", default="hashing", help="hashing (default, fast) or minilm")
    args = parser.parse_args()
    base = SimulationConfig.from_settings(
        {
            "embedder": args.embedder,
            "users_per_iteration": 300,
            "iterations": 2,
            "designer.action_pool_size": 100,
            "report": False,
            "tensorboard": False,
        }
    )
    sweep = run_sweep(
        base,
        grid={"designer": ("generative", "random", "keep")},
        seeds=range(3),
        out=args.out,
        backend="ray",
        workers=args.workers,
    )
    print(sweep.table())
