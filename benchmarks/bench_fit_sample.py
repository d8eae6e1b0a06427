"""The reward model fitted on a bounded sample against the full-data fit, paired by world seed.

Above ``max_fit_rows`` logged rows (default 50,000) the default reward model is fitted on a reweighted
case-control sample (:func:`optimizers.reward_models._base.bounded_sample`). This runs, for each world seed,
``actionbank simulate`` twice with the same seeds: once with the default bound and once with
``--designer.reward-model.max-fit-rows none`` (every row), and compares the designer's model on the candidates it
never served (``unseen_candidate_fidelity`` of the last iteration: AUC against simulated clicks, mean prediction
over mean truth, within-user Spearman, expected log loss) and the value of the bank it proposed, as paired
differences (sampled - full) with a 95 % t-interval over the seeds, plus the CPU seconds of each run (``os.wait4``,
one thread; the machine is shared, so read CPU, not wall).

Run ``python -m benchmarks.bench_fit_sample [--users 300000] [--iterations 1] [--seeds 9100-9109]
[--json out.json]``. One iteration at 300,000 users fits the model on 300,000 rows, as the third iteration
at 100,000 users does (the designer fits on every logged iteration).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
_ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
#: variant -> extra flags
VARIANTS = {"full": ["--designer.reward-model.max-fit-rows", "none"], "sampled": []}
METRICS = ("auc", "mean_ratio", "within_user_spearman", "log_loss", "new_bank_value")


def one_run(seed: int, users: int, iterations: int, extra: list[str], folder: Path) -> dict[str, float]:
    """One ``simulate`` (hashing embedder, no OPE, report or TensorBoard); its CPU-s and last-iteration metrics."""
    argv = [sys.executable, "-m", "actionbank_env", "simulate", "--quiet", "--embedder", "hashing"]
    argv += ["--iterations", str(iterations), "--users", str(users), "--seed", str(seed), "--world-seed", str(seed)]
    argv += ["--no-ope", "--no-report", "--no-tensorboard", *extra, "--out", str(folder), "--overwrite"]
    env = {**os.environ, **_ONE_THREAD, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"simulate --seed {seed} {' '.join(extra)} failed: {err[-2000:]}")
    record = json.loads((folder / f"iteration_{iterations}" / "ground_truth_evaluation.json").read_text())
    unseen = record["unseen_candidate_fidelity"]
    return {
        **{key: float(unseen[key]) for key in ("auc", "mean_ratio", "within_user_spearman", "log_loss")},
        "new_bank_value": float(record["new_bank_value"]),
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": wall,
        "peak_mib": usage.ru_maxrss / 1024.0,
    }


def paired_summary(runs: dict[str, list[dict[str, float]]]) -> list[dict[str, Any]]:
    """Mean of each variant and the mean paired difference (sampled - full) with its 95 % t-interval."""
    from scipy import stats

    rows = []
    for key in (*METRICS, "cpu_s", "peak_mib"):
        full = np.array([r[key] for r in runs["full"]])
        sampled = np.array([r[key] for r in runs["sampled"]])
        diff = sampled - full
        n = diff.size
        half = float(stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        rows.append(
            {
                "metric": key,
                "full": float(full.mean()),
                "sampled": float(sampled.mean()),
                "diff": float(diff.mean()),
                "ci95": half,
                "ratio_of_means": float(sampled.mean() / full.mean()),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=300_000)
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--seeds", default="9100-9109", help="world seeds: a-b (inclusive) or a comma list")
    parser.add_argument("--json", type=Path, default=None, help="also write every run and the summary here")
    args = parser.parse_args(argv)
    if "-" in args.seeds:
        lo, hi = (int(s) for s in args.seeds.split("-"))
        seeds = list(range(lo, hi + 1))
    else:
        seeds = [int(s) for s in args.seeds.split(",")]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for name, extra in VARIANTS.items():
                result = one_run(seed, args.users, args.iterations, extra, Path(tmp) / f"{name}_{seed}")
                runs[name].append({"seed": seed, **result})
                shown = ", ".join(f"{k} {result[k]:.4g}" for k in (*METRICS, "cpu_s"))
                print(f"seed {seed} {name}: {shown}", file=sys.stderr, flush=True)
    summary = paired_summary(runs)
    print(f"{len(seeds)} world seeds, {args.users} users x {args.iterations} iterations; sampled - full, 95 % t-CI")
    print(f"{'metric':22s} {'full':>10s} {'sampled':>10s} {'diff':>10s} {'+-':>9s} {'ratio':>7s}")
    for row in summary:
        print(
            f"{row['metric']:22s} {row['full']:10.4f} {row['sampled']:10.4f} {row['diff']:10.4f} "
            f"{row['ci95']:9.4f} {row['ratio_of_means']:7.3f}"
        )
    if args.json is not None:
        args.json.write_text(
            json.dumps({"args": vars(args) | {"json": str(args.json)}, "runs": runs, "summary": summary}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
