"""Compare reward models inside the generative bank designer on the default world, over 3 seeds.

For each seed: serve the initial bank plus a batch of exploratory offline texts to logged users with a random
targeting agent; then, for each reward model, let :class:`~optimizers.generative.GenerativeDesigner` add
new actions from a shared candidate pool, and score the result against the ground truth:

- improvement captured = (V_new - V_old) / (V_oracle - V_old), V = bank value under perfect targeting on
  fresh users, V_oracle from the oracle designer on the same pool;
- fidelity of the fitted model on fresh users x the pool (Spearman, AUC against simulated clicks);
- fit + generate + select seconds.

Run from the repository root::

    python examples/compare_reward_models.py --quick
    python examples/compare_reward_models.py --models linear lightgbm --embedder minilm
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
from actionbank_env.core.copywriting import OfflineCopywriter  # noqa: E402
from actionbank_env.core.world import World, WorldConfig, spawn_generators  # noqa: E402
from actionbank_env.evaluation import bank_value, improvement_captured, reward_model_fidelity  # noqa: E402
from actionbank_env.registry import make_agent, make_designer  # noqa: E402
from optimizers.reward_models import REWARD_MODELS  # noqa: E402

#: Smaller hyperparameters for --quick (the defaults otherwise).
QUICK_PARAMS: dict[str, dict[str, Any]] = {
    "linear": {},
    "lightgbm": {"n_estimators": 60},
    "neural": {"max_epochs": 15},
    "bayesian_neural": {"max_epochs": 15, "mc_samples": 20},
    "gaussian_process": {},
    "ft_transformer": {"max_epochs": 8},
}


def _row(values: list[float]) -> str:
    arr = np.asarray(values, dtype=float)
    if np.all(np.isnan(arr)):
        return "nan"
    return f"{np.nanmean(arr):.3f} ± {np.nanstd(arr):.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=sorted(REWARD_MODELS), choices=sorted(REWARD_MODELS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--world-seed", type=int, default=0)
    parser.add_argument("--embedder", default="hashing", choices=["hashing", "minilm"])
    parser.add_argument("--n-log", type=int, default=5000, help="logged users")
    parser.add_argument("--n-explore", type=int, default=50, help="exploratory texts added to the logged bank")
    parser.add_argument("--pool", type=int, default=1000, help="candidates per proposal")
    parser.add_argument("--new-actions", type=int, default=10)
    parser.add_argument("--n-eval", type=int, default=5000, help="fresh users for the bank values")
    parser.add_argument("--quick", action="store_true", help="small sizes and fewer epochs/trees")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_log, args.pool, args.new_actions, args.n_eval = 3000, 300, 5, 3000
    n_rep = 500 if args.quick else 1000

    start = time.perf_counter()
    world = World.build(WorldConfig(world_seed=args.world_seed, embedder=args.embedder))
    print(f"{world}  (built in {time.perf_counter() - start:.1f} s)")
    common = {"action_pool_size": args.pool, "action_bank_size": args.new_actions, "n_representative_users": n_rep}
    results: dict[str, dict[str, list[float]]] = {
        m: {k: [] for k in ("captured", "spearman", "auc", "fit", "generate", "select")} for m in args.models
    }
    oracle_gain: list[float] = []
    for seed in range(args.seeds):
        log_rng, designer_seed_rng, eval_rng, metric_rng = spawn_generators(seed, 4)
        designer_seed = int(designer_seed_rng.integers(2**31))
        extra = OfflineCopywriter().write(args.n_explore, rng=log_rng, exclude=world.initial_bank.texts)
        bank = world.new_catalog().bank([*world.initial_bank.texts, *extra], world.embedder)
        agent = make_agent("random", world, rng=log_rng)
        agent.set_bank(bank)
        log = run_campaign(
            world.ground_truth, bank, agent, world.sample_users(args.n_log, rng=log_rng), rng=log_rng
        ).log
        eval_users = world.sample_users(args.n_eval, rng=eval_rng).features
        v_old = bank_value(world.ground_truth, eval_users, bank)
        oracle = make_designer("oracle", world, rng=np.random.default_rng(0), **common)  # gets the ground truth
        oracle_texts = oracle.propose([log], bank, rng=np.random.default_rng(designer_seed)).texts
        v_oracle = bank_value(world.ground_truth, eval_users, world.embedder.embed(list(oracle_texts)))
        oracle_gain.append(v_oracle - v_old)
        for name in args.models:
            params = QUICK_PARAMS.get(name, {}) if args.quick else {}
            designer = make_designer(
                "generative",
                world,
                rng=np.random.default_rng(0),
                reward_model=name,
                reward_model_params=params,
                **common,
            )
            proposal = designer.propose([log], bank, rng=np.random.default_rng(designer_seed))
            v_new = bank_value(world.ground_truth, eval_users, world.embedder.embed(list(proposal.texts)))
            row = results[name]
            row["captured"].append(improvement_captured(v_new, v_old, v_oracle))
            diag = proposal.diagnostics
            for key in ("fit", "generate", "select"):
                row[key].append(float(diag.get(f"{key}_seconds", float("nan"))))
            if proposal.reward_model is not None and proposal.candidates is not None:
                fidelity = reward_model_fidelity(
                    proposal.reward_model,
                    world.ground_truth,
                    eval_users[:500],
                    proposal.candidates.embeddings,
                    rng=metric_rng,
                )
                row["spearman"].append(fidelity.spearman)
                row["auc"].append(fidelity.auc)
            print(f"  seed {seed} {name:>16}: V_old={v_old:.4f} V_new={v_new:.4f} V_oracle={v_oracle:.4f}", flush=True)

    print()
    print(
        f"World seed {args.world_seed}, embedder {args.embedder}, {args.seeds} seeds, {args.n_log} logged users on "
        f"{len(world.initial_bank)}+{args.n_explore} actions, pool {args.pool}, {args.new_actions} new actions; "
        f"oracle gain V_oracle - V_old = {np.mean(oracle_gain):.4f}"
    )
    header = f"{'reward model':>16} | {'improvement captured':>20} | {'Spearman':>14} | {'AUC':>14} | {'fit s':>7} | {'gen s':>6} | {'select s':>8}"
    print(header)
    print("-" * len(header))
    for name in args.models:
        r = results[name]
        print(
            f"{name:>16} | {_row(r['captured']):>20} | {_row(r['spearman']):>14} | {_row(r['auc']):>14} | "
            f"{np.mean(r['fit']):7.2f} | {np.mean(r['generate']):6.2f} | {np.mean(r['select']):8.2f}"
        )
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
