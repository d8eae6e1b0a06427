"""The full simulation at growing scale: wall time and peak memory per users-per-iteration.

Each size runs ``actionbank simulate`` (3 iterations, pool 2,000, lightgbm, hashing embedder, no report or
TensorBoard) in a fresh subprocess, so peak memory (``wait4``'s ru_maxrss) is that run's alone.

Run ``python -m benchmarks.bench_simulation [--sizes 1000,10000,100000,1000000] [--repeats 1]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (1_000, 10_000)


def _one(users: int, folder: Path) -> tuple[float, float]:
    argv = [
        sys.executable,
        "-m",
        "actionbank_env",
        "simulate",
        "--quiet",
        "--no-report",
        "--no-tensorboard",
        "--embedder",
        "hashing",
        "--iterations",
        "3",
        "--users",
        str(users),
        "--action_pool_size",
        "2000",
        "--reward_model_type",
        "lightgbm",
        "--out",
        str(folder),
        "--overwrite",
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"simulate --users {users} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_maxrss / 1024.0  # KiB -> MiB


def run(repeats: int = 1, sizes: tuple[int, ...] = DEFAULT_SIZES) -> list[dict[str, Any]]:
    """Wall seconds and peak MiB per size: median and spread over ``repeats`` for up to 1e4 users, one run above.

    No warm-up: every run is a new process, as a user's run is (world build and imports included).
    """
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for users in sizes:
            n = max(1, repeats if users <= 10_000 else 1)  # big sizes once: minutes per run
            walls, mems = zip(*(_one(users, Path(tmp) / f"run_{users}") for _ in range(n)), strict=True)
            rows.append(
                {
                    "case": "simulate wall",
                    "users": users,
                    "unit": "s",
                    "median": float(np.median(walls)),
                    "min": float(min(walls)),
                    "max": float(max(walls)),
                }
            )
            rows.append(
                {
                    "case": "simulate peak memory",
                    "users": users,
                    "unit": "MiB",
                    "median": float(np.median(mems)),
                    "min": float(min(mems)),
                    "max": float(max(mems)),
                }
            )
    walls = {r["users"]: r["median"] for r in rows if r["case"] == "simulate wall"}
    sizes_sorted = sorted(walls)
    for a, b in zip(sizes_sorted, sizes_sorted[1:], strict=False):
        growth = walls[b] / walls[a]
        rows.append(
            {
                "case": "wall growth per 10x users",
                "users": f"{a}->{b}",
                "unit": "x",
                "median": growth,
                "min": growth,
                "max": growth,
            }
        )
    return rows


if __name__ == "__main__":
    from benchmarks.__main__ import print_table

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES))
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print_table(run(args.repeats, tuple(int(s) for s in args.sizes.split(","))))
