"""Headroom for RL on Retention-v0, shown with the ground truth: an oracle that looks ahead against oracle-myopic.

PPO has not yet beaten oracle-myopic (README, "Retention-v0"). How much could a non-myopic policy gain at all?
:class:`OracleLookaheadPolicy` is an evaluation-only rollout policy (Bertsekas, *Rollout Algorithms*, 1997;
Tesauro and Galperin, 1996) over oracle-myopic: every week, for every subscriber, it compares the exact expected
clicks until the horizon of two plans, "send the myopically best message now, then be myopic" and "rest this week,
then be myopic", and takes the better first step. The values are exact, not sampled: the dynamics move fatigue
and exposure by the actions alone, so a plan has one path per subscriber, weighted by its survival probability
(:func:`actionbank_env.core.retention.expected_clicks_ahead`). Rollout's policy-improvement property makes it at
least as good as oracle-myopic in expectation; how much better is the headroom a far-sighted sender with perfect
targeting has, and an upper reference for what RL can learn from clicks. It has no tuned parameter.
``lookahead_myopic_or_resting`` values each first step by the better of two continuations, oracle-myopic and
oracle-resting 0.4 (parallel rollout: at least as good as both).

Measured like ``benchmarks.retention_baselines`` (same worlds 7301-7305, MiniLM, 30 messages, default dynamics,
26-week lifetimes, one cohort of ``--subscribers`` per world, the same for every policy): oracle-myopic,
oracle-resting 0.4 and the two lookaheads, with paired differences by world (mean ± 95 % t-interval, ratio of means).

Run from the repository root (a few minutes; the MiniLM worlds come from the embedding cache)::

    nice -n 15 python -m benchmarks.retention_lookahead [--seeds 7301 7302] [--subscribers 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env.core.retention import Continuation, RetentionState, myopic_actions
from actionbank_env.core.world import World, WorldConfig
from actionbank_env.envs.retention import RetentionVectorEnv
from agents.retention import OracleMyopicPolicy, OracleRestingPolicy, run_lifetimes
from benchmarks.retention_baselines import WORLD_SEEDS, interval, print_paired

METRICS = ("clicks_per_subscriber", "unsubscribe_rate", "unsubscribes_per_email", "emails_per_subscriber")


def resting_actions(ratio: float) -> Continuation:
    """Oracle-resting as a continuation rule: the best message where it is worth at least ``ratio`` of what it is to
    the subscriber rested and never mailed, no email (core index ``K``) elsewhere."""

    def rule(probs: NDArray[np.float64], state: RetentionState) -> NDArray[np.int64]:
        k = state.base_probs.shape[1]
        best = probs[:, :k].argmax(axis=1)
        worth = probs[np.arange(best.size), best] >= ratio * state.base_probs.max(axis=1)
        out: NDArray[np.int64] = np.where(worth, best, k).astype(np.int64)
        return out

    return rule


class OracleLookaheadPolicy:
    """Send the myopically best message only when that beats resting this week, each followed by a base rule.

    Evaluation-only (it reads the ground truth through
    :meth:`~actionbank_env.envs.retention.RetentionVectorEnv.expected_clicks_ahead`): a one-step rollout policy,
    vectorised over subscribers. With several base rules it is Bertsekas' parallel rollout: each first step is
    valued by its best continuation among ``bases``, so the policy is at least as good as every base in expectation
    (two exact lifetime evaluations per base and week).

    Args:
        bases: The continuation rules (default: oracle-myopic alone).
    """

    def __init__(self, bases: tuple[Continuation, ...] = (myopic_actions,)) -> None:
        self.bases = bases

    def act(self, observations: Any, envs: RetentionVectorEnv) -> NDArray[np.int64]:
        """Per sub-env: the best message where sending it now is worth more than resting, no email elsewhere."""
        n_actions = len(envs.bank)
        rest = np.full(envs.num_envs, int(envs.single_action_space.n) - 1, dtype=np.int64)
        best = envs.current_click_probs()[:, :n_actions].argmax(axis=1).astype(np.int64)
        send_value = np.max([envs.expected_clicks_ahead(best, base) for base in self.bases], axis=0)
        rest_value = np.max([envs.expected_clicks_ahead(rest, base) for base in self.bases], axis=0)
        actions: NDArray[np.int64] = np.where(send_value >= rest_value, best, rest).astype(np.int64)
        return actions

    def update(self, observations: Any, actions: Any, rewards: Any, active: Any) -> None:
        """Nothing to learn."""


def measure_world(world_seed: int, *, subscribers: int, cohort_seed: int) -> dict[str, Any]:
    """The three oracles' lifetime summaries on one world (the same cohort for all)."""
    world = World.build(WorldConfig(world_seed=world_seed))
    envs = RetentionVectorEnv(subscribers, world=world)
    out: dict[str, Any] = {"world_seed": world_seed}
    for name, policy in (
        ("oracle_myopic", OracleMyopicPolicy()),
        ("oracle_resting_0.4", OracleRestingPolicy(0.4)),
        ("oracle_lookahead", OracleLookaheadPolicy()),
        ("lookahead_myopic_or_resting", OracleLookaheadPolicy((myopic_actions, resting_actions(0.4)))),
    ):
        start = time.perf_counter()
        out[name] = run_lifetimes(envs, policy, seed=cohort_seed).summary()
        out[f"{name}_s"] = time.perf_counter() - start
    return out


def report(per_seed: list[dict[str, Any]], subscribers: int) -> None:
    """Print each policy's means and the paired differences against oracle-myopic."""
    seeds = [r["world_seed"] for r in per_seed]
    print(f"\n{len(seeds)} world seeds {seeds}, {subscribers} subscribers per cohort, 26-week lifetimes; "
          "mean +- 95 % t-interval over world seeds")  # fmt: skip
    policies = [k for k, v in per_seed[0].items() if isinstance(v, dict)]
    print(f"{'policy':<20}" + "".join(f"{m:>26}" for m in METRICS))
    for name in policies:
        cells = [interval([r[name][m] for r in per_seed]) for m in METRICS]
        print(f"{name:<20}" + "".join(f"{mean:.4f} +- {half:.4f}".rjust(26) for mean, half in cells))
    pairs = [
        ("oracle_lookahead", "oracle_myopic"),
        ("oracle_resting_0.4", "oracle_myopic"),
        ("lookahead_myopic_or_resting", "oracle_myopic"),
        ("lookahead_myopic_or_resting", "oracle_resting_0.4"),
    ]
    print_paired(per_seed, pairs)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(WORLD_SEEDS))
    parser.add_argument("--subscribers", type=int, default=10_000, help="subscribers per cohort")
    parser.add_argument("--cohort-seed", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the per-seed results here")
    args = parser.parse_args(argv)
    per_seed = []
    for seed in args.seeds:
        per_seed.append(measure_world(seed, subscribers=args.subscribers, cohort_seed=args.cohort_seed))
        row = per_seed[-1]
        print(f"world {seed}: " + json.dumps({k: round(v["clicks_per_subscriber"], 4) for k, v in row.items()
                                             if isinstance(v, dict)}), flush=True)  # fmt: skip
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"args": vars(args), "per_seed": per_seed}, f, indent=2)
    report(per_seed, args.subscribers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
