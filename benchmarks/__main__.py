"""Run every benchmark: ``python -m benchmarks [--only core,agents] [--repeats 5] [--json out.json]``.

Each module's ``run(repeats)`` returns rows ``{"case", <params>, "unit", "median", "min", "max"}``; the table
shows the median and spread of ``repeats`` runs after a warm-up. Comparisons are ratios measured side by
side in the same run, since the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

MODULES = ("core", "envs", "agents", "reward_models", "designers", "simulation")
_STATS = ("unit", "median", "min", "max")


def normalize(row: dict[str, Any]) -> dict[str, Any]:
    """One row shape for every module: ``case``, params, ``unit``, ``median``, ``min``, ``max``."""
    r = dict(row)
    if "case" in r:
        return r
    if "median_s" in r:  # reward models: {"model", "task", "median_s", "min_s", "max_s"}
        return {
            "case": f"{r.pop('model')} {r.pop('task')}",
            **{k: v for k, v in r.items() if not k.endswith("_s")},
            "unit": "s",
            "median": row["median_s"],
            "min": row["min_s"],
            "max": row["max_s"],
        }
    if "select_median_s" in r:  # designers: selection seconds
        case = f"{r.pop('model')} select" + (" (uncertainty)" if r.pop("uncertainty", False) else "")
        return {
            "case": case,
            "fit_s": round(row["fit_s"], 2),
            "unit": "s",
            "median": row["select_median_s"],
            "min": row["select_min_s"],
            "max": row["select_max_s"],
        }
    if "name" in r:  # envs: {"name", "num_envs", ..., "baseline", "baseline_median", "ratio"}
        r["case"] = r.pop("name")
        r["ratio"] = round(r["ratio"], 3)
        r["baseline_median"] = round(r["baseline_median"], 1)
        return r
    return r


def print_table(rows: list[dict[str, Any]], file: Any = sys.stdout) -> None:
    """Print rows as an aligned table."""
    for r in map(normalize, rows):
        params = " ".join(f"{k}={v}" for k, v in r.items() if k not in (*_STATS, "case", "module"))
        print(
            f"{r.get('module', ''):14s} {r['case']:44s} {params:28s} {r['median']:>14,.2f} "
            f"[{r['min']:,.2f} .. {r['max']:,.2f}] {r['unit']}",
            file=file,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", default=",".join(MODULES), help=f"comma-separated subset of {MODULES}")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results.json"))
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for name in args.only.split(","):
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
        except ModuleNotFoundError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        start = time.perf_counter()
        got = [{"module": name, **normalize(r)} for r in module.run(repeats=args.repeats)]
        print_table(got)
        print(f"# {name}: {time.perf_counter() - start:.1f} s", flush=True)
        rows.extend(got)
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "repeats": args.repeats,
        "argv": sys.argv,
    }
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
