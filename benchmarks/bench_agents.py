"""Throughput of the targeting agents on one core: LinUCB (sequential and batched), mabwiser's LinUCB, DQN.

Run ``python -m benchmarks.bench_agents`` from the repository root; ``run(repeats)`` returns the rows as dicts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from actionbank_env.core.actions import Action, ActionBank
from actionbank_env.protocols import AgentContext

D_USER, D_EMBED = 8, 32


def _context() -> AgentContext:
    ref = np.random.default_rng(0).normal(size=(200, D_EMBED)).astype(np.float32)
    return AgentContext(
        d_user=D_USER, d_embed=D_EMBED, feature_names=tuple(f"f{i}" for i in range(D_USER)), reference_embeddings=ref
    )


def _bank(n_actions: int) -> ActionBank:
    emb = np.random.default_rng(1).normal(size=(n_actions, D_EMBED)).astype(np.float32)
    return ActionBank(Action(f"A{i:05d}", f"text {i}", e) for i, e in enumerate(emb))


def _data(n: int, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    return rng.random((n, D_USER)), (rng.random((n, n_actions)) < 0.1).astype(np.float64)


def _time(fn: Callable[[], int], repeats: int) -> tuple[float, float, float]:
    """Warm-up once, then ``repeats`` timings; returns (median, min, max) of units per second."""
    fn()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        units = fn()
        rates.append(units / (time.perf_counter() - start))
    return float(np.median(rates)), float(np.min(rates)), float(np.max(rates))


def _linucb_loop(mode: str, n_actions: int, batch_size: int, n_rounds: int) -> Callable[[], int]:
    from agents.linucb import LinUCBAgent

    users, clicks = _data(n_rounds, n_actions)

    def loop() -> int:
        agent = LinUCBAgent(_context(), rng=np.random.default_rng(0), mode=mode, alpha=1.0)
        agent.set_bank(_bank(n_actions))
        if batch_size == 1:  # a campaign's loop: one user row, its click row
            for t in range(n_rounds):
                actions = agent.act(users[t : t + 1]).actions
                agent.update(users[t : t + 1], actions, clicks[t][actions])
            return n_rounds
        for start in range(0, n_rounds, batch_size):
            x = users[start : start + batch_size]
            actions = agent.act(x).actions
            agent.update(x, actions, clicks[np.arange(start, start + x.shape[0]), actions])
        return n_rounds

    return loop


def _plain_numpy_loop(n_actions: int, n_rounds: int) -> Callable[[], int]:
    """The issue's reference: a bare per-step Sherman-Morrison LinUCB loop in numpy (no API, no checks)."""
    users, clicks = _data(n_rounds, n_actions)
    d = D_USER + 1

    def loop() -> int:
        A_inv = np.tile(np.eye(d), (n_actions, 1, 1))
        b = np.zeros((n_actions, d))
        theta = np.zeros((n_actions, d))
        x = np.ones(d)
        for t in range(n_rounds):
            x[:-1] = users[t]
            scores = theta @ x + np.sqrt((A_inv @ x) @ x)
            a = int(scores.argmax())
            Ax = A_inv[a] @ x
            A_inv[a] -= np.outer(Ax, Ax) / (1.0 + x @ Ax)
            b[a] += clicks[t, a] * x
            theta[a] = A_inv[a] @ b[a]
        return n_rounds

    return loop


def _mabwiser_loop(n_actions: int, n_rounds: int) -> Callable[[], int]:
    from mabwiser.mab import MAB, LearningPolicy

    users, clicks = _data(n_rounds, n_actions)
    arms = list(range(n_actions))

    def loop() -> int:
        mab = MAB(arms, LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0), seed=0)
        mab.fit(decisions=[0], rewards=[0.0], contexts=users[:1])
        for t in range(n_rounds):
            arm = mab.predict(users[t : t + 1])
            mab.partial_fit(decisions=[arm], rewards=[clicks[t, arm]], contexts=users[t : t + 1])
        return n_rounds

    return loop


def _dqn_loop(n_actions: int, n_updates: int, batch_size: int) -> Callable[[], int]:
    from agents.bootstrapped_dqn import BootstrappedDQNAgent

    users, clicks = _data(n_updates * batch_size, n_actions)

    def loop() -> int:
        agent = BootstrappedDQNAgent(_context(), rng=np.random.default_rng(0), learning_starts=batch_size)
        agent.set_bank(_bank(n_actions))
        for i in range(n_updates):
            x = users[i * batch_size : (i + 1) * batch_size]
            actions = agent.act(x).actions
            agent.update(x, actions, clicks[np.arange(i * batch_size, (i + 1) * batch_size), actions])
        return n_updates

    return loop


def run(repeats: int = 5) -> list[dict[str, Any]]:
    """Measure every case; one row per case with median, min and max rates over ``repeats`` after a warm-up."""
    import scipy.linalg.blas  # noqa: F401  (LinUCB's BLAS rank-one update: load it before the thread limits)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []
    try:
        with threadpool_limits(1):
            for n_actions in (30, 100):
                for mode in ("disjoint", "hybrid"):
                    seq_rounds = 4000 if mode == "disjoint" else 1000
                    for batch_size, n_rounds in ((1, seq_rounds), (256, 256 * 40)):
                        med, lo, hi = _time(_linucb_loop(mode, n_actions, batch_size, n_rounds), repeats)
                        rows.append(
                            {
                                "case": f"linucb-{mode}",
                                "K": n_actions,
                                "batch": batch_size,
                                "unit": "decisions/s",
                                "median": med,
                                "min": lo,
                                "max": hi,
                            }
                        )
                med, lo, hi = _time(_plain_numpy_loop(n_actions, 4000), repeats)
                rows.append(
                    {
                        "case": "plain-numpy sherman-morrison loop",
                        "K": n_actions,
                        "batch": 1,
                        "unit": "decisions/s",
                        "median": med,
                        "min": lo,
                        "max": hi,
                    }
                )
                med, lo, hi = _time(_mabwiser_loop(n_actions, 300), repeats)
                rows.append(
                    {
                        "case": "mabwiser-linucb",
                        "K": n_actions,
                        "batch": 1,
                        "unit": "decisions/s",
                        "median": med,
                        "min": lo,
                        "max": hi,
                    }
                )
                ours = next(
                    r for r in rows if r["case"] == "linucb-disjoint" and r["K"] == n_actions and r["batch"] == 1
                )
                rows.append(
                    {
                        "case": "ratio linucb/mabwiser (sequential)",
                        "K": n_actions,
                        "batch": 1,
                        "unit": "x",
                        "median": ours["median"] / med,
                        "min": ours["min"] / hi,
                        "max": ours["max"] / lo,
                    }
                )
                med, lo, hi = _time(_dqn_loop(n_actions, 100, 64), repeats)
                rows.append(
                    {
                        "case": "bootstrapped-dqn act+update",
                        "K": n_actions,
                        "batch": 64,
                        "unit": "updates/s",
                        "median": med,
                        "min": lo,
                        "max": hi,
                    }
                )
    finally:
        torch.set_num_threads(threads)
    return rows


if __name__ == "__main__":
    results = run()
    print(f"{'case':38s} {'K':>4s} {'batch':>6s} {'median':>12s} {'min':>12s} {'max':>12s}  unit")
    for row in results:
        print(
            f"{row['case']:38s} {row['K']:>4d} {row['batch']:>6d} {row['median']:>12,.0f} {row['min']:>12,.0f} "
            f"{row['max']:>12,.0f}  {row['unit']}"
        )
