"""Throughput of ``ActionBank/Retention-v0``'s native vector twin (subscriber-steps/s), with its single env.

The vector twin at ``num_envs`` 1, 64 and 1024, stepped with a fixed random action table (sends and rests)
over several whole lifetimes, so autoresets (unsubscribes and horizon ends) are included; the single env
(steps/s, with ``reset`` after each lifetime) for comparison. One BLAS thread. Wall-clock rates (median of
``repeats`` timings after a warm-up) and, since the machine is shared, the median rate per CPU-second of this
process (``time.process_time``), which other processes do not slow down.

Run ``python -m benchmarks.bench_retention`` from the repository root (``--repeats N``, default 7); ``run(repeats)``
returns the rows (median, min and max over ``repeats`` timings after one warm-up run).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from actionbank_env.core.world import World, WorldConfig
from actionbank_env.envs._common import cached_world
from actionbank_env.envs.retention import RetentionEnv, RetentionVectorEnv
from benchmarks._timing import rate, row

VECTOR_SIZES = (1, 64, 1024)
#: Subscriber-steps per timing of the vector twin (at least 4 lifetimes of 26 weeks per sub-env).
STEPS_PER_TIMING = 260_000


def _world() -> World:
    """The default world's sizes (30 messages, 8 user features), hashing embedder (no model to load)."""
    return cached_world(WorldConfig(embedder="hashing", embedding_dim=128, initial_actions=30, cache_embeddings=False))


def _vector_loop(envs: RetentionVectorEnv, n_steps: int) -> Callable[[], float]:
    actions = np.random.default_rng(0).integers(0, envs.single_action_space.n, size=(n_steps, envs.num_envs))

    def go() -> float:
        envs.reset(seed=0)
        for row_ in actions:
            envs.step(row_)
        return float(n_steps * envs.num_envs)

    return go


def _single_loop(env: RetentionEnv, n_steps: int) -> Callable[[], float]:
    actions = np.random.default_rng(0).integers(0, env.action_space.n, size=n_steps).tolist()

    def go() -> float:
        env.reset(seed=0)
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        return float(n_steps)

    return go


def _cpu_rate(fn: Callable[[], float], repeats: int) -> float:
    """Median units per second of this process's CPU time (what the code costs, whatever else runs)."""
    fn()
    rates = []
    for _ in range(repeats):
        start = time.process_time()
        units = fn()
        rates.append(units / (time.process_time() - start))
    return float(np.median(rates))


def run(repeats: int = 7) -> list[dict[str, Any]]:
    """Measure every row: wall-clock rates (median, min, max) and the median rate per CPU-second (``cpu_median``)."""
    world = _world()
    rows: list[dict[str, Any]] = []
    with threadpool_limits(1):
        single = _single_loop(RetentionEnv(world=world), 5_000)
        rows.append(row("Retention-v0 (single)", "steps/s", rate(single, repeats), num_envs=1))
        rows[-1]["cpu_median"] = _cpu_rate(single, repeats)
        for num_envs in VECTOR_SIZES:
            n_steps = max(104, STEPS_PER_TIMING // num_envs) if num_envs > 1 else 5_000
            loop = _vector_loop(RetentionVectorEnv(num_envs, world=world), n_steps)
            rows.append(row("Retention-v0 (vector)", "subscriber-steps/s", rate(loop, repeats), num_envs=num_envs))
            rows[-1]["cpu_median"] = _cpu_rate(loop, repeats)
    return rows


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"{'env':<24}{'num_envs':>9}{'median':>14}{'min..max':>28}{'per CPU-second':>16}")
    for r in run(args.repeats):
        spread = f"{r['min']:,.0f}..{r['max']:,.0f}"
        print(
            f"{r['case']:<24}{r['num_envs']:>9}{r['median']:>14,.0f}{spread:>28}{r['cpu_median']:>16,.0f}   ({r['unit']})"
        )


if __name__ == "__main__":
    main()
