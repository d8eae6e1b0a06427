"""Paired differences between the configurations of an ``actionbank sweep`` folder, seed by seed.

``actionbank sweep`` prints each configuration's mean ± 95 % CI; deciding between two settings needs the
*paired* difference (same seed = same world, users and pool), its t-interval over seeds and the ratio of means.

    python -m benchmarks.paired_sweep /work/exp/sw_batch --baseline campaign_batch_size=32

Metrics are read from each trial's ``summary.json``: the final iteration's value and, as ``mean_<metric>``, the
mean over iterations (what the company earned over the whole run, for ``company_reward``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

METRICS = ("company_reward", "deployed_value", "new_bank_value", "improvement_captured")


def load(folder: Path) -> dict[str, dict[int, dict[str, float]]]:
    """``{config key: {seed: {metric: value}}}`` for every finished trial."""
    out: dict[str, dict[int, dict[str, float]]] = {}
    for path in sorted(folder.glob("trials/*/seed_*/summary.json")):
        summary = json.loads(path.read_text())
        values = {m: summary[m] for m in METRICS if summary.get(m) is not None}
        for m in METRICS:
            series = [v for v in summary["per_iteration"].get(m, []) if v is not None]
            if series:
                values[f"mean_{m}"] = float(np.mean(series))
        out.setdefault(path.parent.parent.name, {})[int(path.parent.name.removeprefix("seed_"))] = values
    return out


def paired(
    a: dict[int, dict[str, float]], b: dict[int, dict[str, float]], metric: str
) -> tuple[float, float, float, int]:
    """Mean of ``a - b`` over common seeds, its 95 % t half-width, the ratio of means ``a / b``, and n."""
    seeds = sorted(s for s in set(a) & set(b) if metric in a[s] and metric in b[s])
    d = np.array([a[s][metric] - b[s][metric] for s in seeds])
    if len(d) < 2:
        return float("nan"), float("nan"), float("nan"), len(d)
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    ratio = float(np.mean([a[s][metric] for s in seeds]) / np.mean([b[s][metric] for s in seeds]))
    return float(d.mean()), half, ratio, len(d)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="an `actionbank sweep --out` folder")
    parser.add_argument("--baseline", required=True, help="the configuration key to subtract (a trials/ subfolder)")
    args = parser.parse_args(argv)
    runs = load(args.folder)
    if args.baseline not in runs:
        parser.error(f"--baseline must be one of {sorted(runs)}, got {args.baseline!r}")
    base = runs[args.baseline]
    metrics = [m for m in (*METRICS, *(f"mean_{m}" for m in METRICS))]
    for key in sorted(k for k in runs if k != args.baseline):
        print(f"{key}  minus  {args.baseline}")
        for m in metrics:
            mean, half, ratio, n = paired(runs[key], base, m)
            print(f"  {m:<28} {mean:+.4f} ± {half:.4f}   ratio of means {ratio:.3f}   n={n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
