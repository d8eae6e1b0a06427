"""Selection cost of the generative designer: score 1,000 users x 2,000 candidates and greedily pick 10.

For each reward model: fit once on a synthetic log (5,000 rows, 60 served actions), then time the selection
step exactly as :class:`~optimizers.generative.GenerativeDesigner` runs it: one batched ``predict`` over
users x (bank + pool), the uncertainty pass on a shortlist of 200 (``bayesian_neural`` with 30 MC samples,
``gaussian_process``), and lazy greedy with the diversity penalty. Targets: under 10 s for ``lightgbm`` and
``neural``, under 30 s for ``bayesian_neural``.

Run ``python -m benchmarks.bench_designers`` from the repository root; ``run(repeats)`` returns the rows.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from actionbank_env.core.coverage import GreedySelector
from optimizers.reward_models import REWARD_MODELS, make_reward_model

N_USERS, N_CANDIDATES, N_BANK, K, D_USER, D_EMBED = 1000, 2000, 30, 10, 8, 128
SHORTLIST = 200
UNCERTAIN = {"bayesian_neural": {"mc_samples": 30}, "gaussian_process": {}}


def _data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((D_EMBED, 6)) / np.sqrt(D_EMBED)
    served = rng.standard_normal((60, 6)) @ basis.T
    served = (served / np.linalg.norm(served, axis=1, keepdims=True)).astype(np.float32)
    log_users = rng.random((5000, D_USER))
    idx = rng.integers(0, 60, size=5000)
    w = rng.standard_normal((D_USER, D_EMBED)) * 0.5
    logits = -2.5 + ((log_users - 0.5) @ w * served[idx]).sum(axis=1) * 4
    clicks = (rng.random(5000) < 1 / (1 + np.exp(-logits))).astype(np.float64)
    pool = rng.standard_normal((N_CANDIDATES, 6)) @ basis.T + 0.1 * rng.standard_normal((N_CANDIDATES, D_EMBED))
    pool = (pool / np.linalg.norm(pool, axis=1, keepdims=True)).astype(np.float32)
    return {
        "log_users": log_users,
        "log_embeddings": served[idx],
        "clicks": clicks,
        "bank": served[:N_BANK],
        "pool": pool,
        "users": rng.random((N_USERS, D_USER)),
    }


def _select(model: Any, data: dict[str, np.ndarray], uncertain: bool) -> int:
    users, bank, pool = data["users"], data["bank"], data["pool"]
    scores = model.predict(users, np.concatenate([bank, pool]))
    base, pool_scores = scores[:, :N_BANK].max(axis=1), scores[:, N_BANK:]
    embeddings = pool
    if uncertain:
        gain = (np.maximum(pool_scores, base[:, None]) - base[:, None]).mean(axis=0)
        shortlist = np.sort(np.argsort(-gain)[:SHORTLIST])
        mean, std = model.predict_with_uncertainty(users, np.concatenate([bank, pool[shortlist]]))
        optimistic = mean + 0.1 * std
        base, pool_scores, embeddings = optimistic[:, :N_BANK].max(axis=1), optimistic[:, N_BANK:], pool[shortlist]
    picked = GreedySelector(diversity_weight=0.15).select(
        pool_scores, K, base=base, embeddings=embeddings, bank_embeddings=bank
    )
    return int(picked.size)


def run(repeats: int = 3, models: list[str] | None = None) -> list[dict[str, Any]]:
    """Median / min / max seconds of one selection step per reward model (plus the one-off fit time)."""
    data = _data()
    rows = []
    for name in models or sorted(REWARD_MODELS):
        params = UNCERTAIN.get(name, {})
        start = time.perf_counter()
        model = make_reward_model(name, rng=np.random.default_rng(0), **params)
        model.fit(data["log_users"], data["log_embeddings"], data["clicks"])
        fit_s = time.perf_counter() - start
        uncertain = name in UNCERTAIN
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            _select(model, data, uncertain)
            times.append(time.perf_counter() - start)
        rows.append(
            {
                "model": name,
                "uncertainty": uncertain,
                "fit_s": fit_s,
                "select_median_s": float(np.median(times)),
                "select_min_s": float(np.min(times)),
                "select_max_s": float(np.max(times)),
            }
        )
    return rows


if __name__ == "__main__":
    import sys

    chosen = sys.argv[1:] or None
    print(f"selection step: {N_USERS} users x {N_CANDIDATES} candidates (+{N_BANK} bank), k={K}")
    print(f"{'model':>17} | {'uncert.':>7} | {'fit s':>6} | {'select s (median [min, max])':>28}")
    for r in run(repeats=2, models=chosen):
        print(
            f"{r['model']:>17} | {r['uncertainty']!s:>7} | {r['fit_s']:6.2f} | "
            f"{r['select_median_s']:8.2f} [{r['select_min_s']:.2f}, {r['select_max_s']:.2f}]"
        )
