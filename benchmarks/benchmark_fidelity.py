"""The generative designer's diagnostics in an ``actionbank benchmark`` folder, per reward model and iteration.

For every generative trial of the folder (and every trial of the evaluation-only ``reference`` designer, whose
well-specified model gives the fidelity reachable from logs of that size; and, for trials run with
``same_logs_reference``, the well-specified model fitted on the trial's own logs) it reads each iteration's
``ground_truth_evaluation.json`` and reports, averaged over world seeds: the reward model's fidelity on never-served candidates (pooled AUC beside its ceiling,
the true probabilities, and the action-blind user-only baseline; the within-user Spearman correlation; mean
prediction over mean truth) and the optimizer's curse (predicted over realised gain of the new bank, as a ratio of
means over seeds).

Run: ``python -m benchmarks.benchmark_fidelity BENCH_FOLDER``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from actionbank_env.core.io import read_json
from actionbank_env.results import CONFIG_FILE, EVALUATION_FILE, SUMMARY_FILE, TRIALS_DIR, iteration_file

COLUMNS = ("auc", "auc_ceiling", "user_only_auc", "within_user_spearman", "mean_ratio")


def collect(folder: Path) -> list[dict[str, Any]]:
    """One row per generative trial x iteration: reward model, seed, iteration, fidelity and gain numbers."""
    rows = []
    trials = [
        *sorted((folder / "generative" / TRIALS_DIR).glob("*/seed_*")),
        *sorted((folder / "baselines" / TRIALS_DIR).glob("designer=reference/seed_*")),
    ]
    for trial in trials:
        if not (trial / SUMMARY_FILE).is_file():
            continue
        config = read_json(trial / CONFIG_FILE)
        params = config["designer"]["params"]
        if config["designer"]["name"] == "reference":
            label = "well-specified (reference designer)"
        else:
            label = params["reward_model"]["name"] + (" + uncertainty" if params.get("use_uncertainty") else "")
        for t in range(1, int(config["run"]["iterations"]) + 1):
            ev = read_json(trial / iteration_file(t, EVALUATION_FILE))
            fid = ev.get("unseen_candidate_fidelity") or {}
            gain = ev.get("gain") or {}
            row = {"model": label, "seed": int(config["run"]["seed"]), "iteration": t}
            row.update({c: fid.get(c) for c in COLUMNS})
            row.update(predicted_gain=gain.get("predicted_gain"), realised_gain=gain.get("realised_gain"))
            rows.append(row)
            # run.same_logs_reference: the well-specified model fitted on this trial's own logs, on the same clicks
            shadow = (ev.get("same_logs_reference") or {}).get("unseen_candidate_fidelity")
            if shadow is not None:
                same = {
                    "model": f"well-specified on the same logs (beside {label})",
                    "seed": row["seed"],
                    "iteration": t,
                }
                same.update({c: shadow.get(c) for c in COLUMNS}, predicted_gain=None, realised_gain=None)
                rows.append(same)
    return rows


def summarize(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table: means over seeds per model and iteration, the curse ratio as a ratio of means."""
    lines = [
        "| reward model | iteration | seeds | AUC unseen | ceiling | user-only | within-user Spearman "
        "| mean pred / truth | predicted / realised gain |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["model"], r["iteration"]) for r in rows})
    for model, t in keys:
        sub = [r for r in rows if r["model"] == model and r["iteration"] == t]

        def mean(col: str, sub: Sequence[dict[str, Any]] = sub) -> str:
            vals = [float(r[col]) for r in sub if r[col] is not None and np.isfinite(float(r[col]))]
            return f"{np.mean(vals):.3f}" if vals else "n/a"

        pred = sum(float(r["predicted_gain"]) for r in sub if r["predicted_gain"] is not None)
        real = sum(float(r["realised_gain"]) for r in sub if r["realised_gain"] is not None)
        curse = f"{pred / real:.2f}" if real > 0 else "n/a"
        cells = [model, str(t), str(len(sub)), *(mean(c) for c in COLUMNS), curse]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    """Command line: the benchmark folder."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.benchmark_fidelity")
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    table = summarize(collect(args.folder))
    print(table)
    return table


if __name__ == "__main__":
    main()
