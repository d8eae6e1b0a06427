"""Speed of the reward models at full size: fit on 1e4 / 1e5 logged rows, score users x 2,000 candidates.

Run ``python -m benchmarks.bench_reward_models`` from the repository root (5 repeats after a warm-up) or ``--quick`` (1 repeat, no
1e5-row fit and no 10,000-user scoring). Each row reports the median and the spread (min, max) in seconds.
Models use their default configs (LightGBM is also measured with ``n_threads=2``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from actionbank_env.core.users import UserPopulation
from optimizers.reward_models import REWARD_MODELS, make_reward_model

D_EMBED = 384  # MiniLM's width
N_BANK = 30
N_CANDIDATES = 2000

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {name: (name, {}) for name in REWARD_MODELS}
VARIANTS["lightgbm[n_threads=2]"] = ("lightgbm", {"n_threads": 2})
VARIANTS["ft_transformer[attention]"] = ("ft_transformer", {"fusion_type": "attention"})


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def make_log(n_rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A logged dataset: users, served embeddings (30 actions) and clicks from a random bilinear model."""
    users = UserPopulation().sample(n_rows, rng=rng).features
    bank = _unit(rng.standard_normal((N_BANK, D_EMBED)))
    weights = rng.standard_normal((users.shape[1], D_EMBED)) * 0.3
    actions = rng.integers(N_BANK, size=n_rows)
    logits = -2.0 + np.einsum("ij,jk,ik->i", users - 0.5, weights, bank[actions]) * 4.0
    clicks = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logits))).astype(np.float64)
    return users, bank[actions], clicks


def _time(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up (imports, allocator, thread pools)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _row(model: str, task: str, times: list[float]) -> dict[str, Any]:
    return {
        "model": model,
        "task": task,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "repeats": len(times),
    }


def run(repeats: int = 5, *, large: bool = True, models: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Time fit and scoring of each model variant.

    Args:
        repeats: Timed repetitions after one warm-up.
        large: Also time the 1e5-row fit and scoring 10,000 users x 2,000 candidates.
        models: Variant names (keys of ``VARIANTS``); all by default.

    Returns:
        One dict per (model, task): ``model``, ``task``, ``median_s``, ``min_s``, ``max_s``, ``repeats``.
    """
    rng = np.random.default_rng(0)
    logs = {n: make_log(n, rng) for n in ((10_000, 100_000) if large else (10_000,))}
    candidates = _unit(rng.standard_normal((N_CANDIDATES, D_EMBED)))
    score_users = {n: UserPopulation().sample(n, rng=rng).features for n in ((1000, 10_000) if large else (1000,))}
    rows: list[dict[str, Any]] = []
    for variant in models or list(VARIANTS):
        name, params = VARIANTS[variant]

        def fit(n: int, name: str = name, params: dict[str, Any] = params) -> Any:
            users, embeddings, clicks = logs[n]
            return make_reward_model(name, rng=np.random.default_rng(1), **params).fit(users, embeddings, clicks)

        for n in logs:
            rows.append(_row(variant, f"fit {n:.0e} rows", _time(lambda n=n: fit(n), repeats)))
        model = fit(10_000)
        for n, users in score_users.items():
            reps = repeats if n <= 1000 else max(1, repeats // 5)
            rows.append(
                _row(
                    variant, f"score {n}x{N_CANDIDATES}", _time(lambda u=users, m=model: m.predict(u, candidates), reps)
                )
            )
        if hasattr(model, "predict_with_uncertainty"):
            users = score_users[1000]
            times = _time(lambda u=users, m=model: m.predict_with_uncertainty(u, candidates), repeats)
            rows.append(_row(variant, f"uncertainty 1000x{N_CANDIDATES}", times))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Print the timing table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 repeat, skip the 1e5-row fit and 10,000-user scoring")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="*", choices=sorted(VARIANTS), default=None)
    args = parser.parse_args(argv)
    rows = run(1 if args.quick else args.repeats, large=not args.quick, models=args.models)
    print(f"{'model':<28}{'task':<28}{'median s':>10}{'min s':>10}{'max s':>10}{'n':>4}")
    for row in rows:
        print(
            f"{row['model']:<28}{row['task']:<28}{row['median_s']:>10.3f}{row['min_s']:>10.3f}"
            f"{row['max_s']:>10.3f}{row['repeats']:>4}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
