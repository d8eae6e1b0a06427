"""Same seed, same files: run a fixed set of ``actionbank`` commands on two source trees and compare the outputs.

A refactor must not change results. This script runs every case of :data:`CASES` with ``PYTHONPATH`` set to
a source tree (``--src``), then compares two such output folders file by file. What may differ is left out
of the comparison, and only that:

- ``meta.json``: timestamps, argv (it holds the output path), git commit, library versions;
- JSON keys ending in ``seconds`` (durations);
- ``tb/`` (TensorBoard event files are named by time and host);
- with ``--config-schema-changed``: ``simulation_config.json`` and the ``config`` key of
  ``complete_simulation_results.json``, which hold the settings in the schema of each version (the
  migration of the old file into the new schema is tested in ``tests/test_config.py``).

Usage::

    git archive <base> | tar -x -C /tmp/base
    python -m benchmarks.same_results run --src /tmp/base --out /tmp/runs/base [--cases default,...]
    python -m benchmarks.same_results run --src . --out /tmp/runs/new
    python -m benchmarks.same_results compare /tmp/runs/base /tmp/runs/new --config-schema-changed
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SMALL = ["--users", "300", "--action-pool-size", "200", "--evaluation-users", "500", "--no-report", "--no-tensorboard"]
#: The settings whose defaults were being decided when this script was written, given on every command.
PINNED = ["--alpha", "0.2", "--campaign-batch-size", "64", "--n-representative-users", "1000"]
PINNED += ["--representative-method", "subsample"]

#: name -> argv after ``python -m actionbank_env`` (``{out}`` and ``{data}`` are filled in).
CASES: dict[str, list[str]] = {
    "default": ["simulate", "--embedder", "hashing", "--seed", "3", *PINNED, "--out", "{out}"],
    "random_designer": ["simulate", "--embedder", "hashing", "--seed", "1", "--optimizer", "random", *SMALL, *PINNED],
    "oracle_designer": ["simulate", "--embedder", "hashing", "--seed", "2", "--optimizer", "oracle", *SMALL, *PINNED],
    "keep_one_iteration": ["simulate", "--embedder", "hashing", "--iterations", "1", "--optimizer", "keep", *SMALL],
    "bnn_uncertainty_cap": [
        "simulate",
        "--embedder",
        "hashing",
        "--seed",
        "4",
        "--reward_model_type",
        "bayesian_neural",
        "--use_uncertainty",
        "--bnn_mc_samples",
        "8",
        "--max_bank_size",
        "36",
        "--iterations",
        "2",
        *SMALL,
        *PINNED,
    ],
    "dqn_gmm_linear": [
        "simulate",
        "--embedder",
        "hashing",
        "--seed",
        "5",
        "--company_strategy",
        "bootstrapped_dqn",
        "--n_heads",
        "4",
        "--ground_truth_type",
        "gmm",
        "--reward-model-type",
        "linear",
        "--diversity-weight",
        "0.3",
        "--iterations",
        "2",
        *SMALL,
        *PINNED,
    ],
    "lightgbm_flags_kmeans": [
        "simulate",
        "--embedder",
        "hashing",
        "--seed",
        "6",
        "--lgb_n_estimators",
        "40",
        "--lgb_num_leaves",
        "7",
        "--lgb_learning_rate",
        "0.1",
        "--representative_method",
        "kmeans",
        "--n_representative_users",
        "50",
        "--alpha",
        "0.5",
        "--action_bank_size",
        "4",
        "--iterations",
        "2",
        "--world-seed",
        "11",
        *SMALL,
    ],
    "generate_data": ["generate-data", "--embedder", "hashing", "--users", "200", "--iterations", "2", "--seed", "7"],
    "run_from_data": ["run-from-data", "--data_dir", "{data}", "--action_bank_size", "3", *SMALL, *PINNED],
}


def run(src: Path, out: Path, cases: list[str] | None = None) -> None:
    """Run every case (or those named) with ``src`` on ``PYTHONPATH``; each case's folder is ``out/<name>``."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(src.resolve()), "HF_HUB_OFFLINE": "1"}
    unknown = sorted(set(cases or ()) - set(CASES))
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; choose from {sorted(CASES)}")
    for name, argv in CASES.items():
        if cases and name not in cases:
            continue
        folder = out / name
        args = [a.format(out=folder, data=out / "generate_data") for a in argv]
        if "--out" not in args:
            args += ["--out", str(folder)]
        args += ["--overwrite"]
        if args[0] in ("simulate", "run-from-data"):
            args += ["--quiet"]
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "actionbank_env", *args], cwd=src, env=env, capture_output=True)
        (out / f"{name}.log").write_bytes(proc.stdout + proc.stderr)
        print(f"{name}: exit {proc.returncode} in {time.perf_counter() - start:.1f} s", flush=True)
        if proc.returncode != 0:
            print(proc.stderr.decode()[-2000:], file=sys.stderr)


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.endswith("seconds")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _normalised(path: Path, rel: str, schema_changed: bool) -> Any:
    if path.suffix != ".json":
        return path.read_bytes()
    data = json.loads(path.read_text(encoding="utf-8"))
    if rel.endswith("meta.json"):
        return {k: data.get(k) for k in ("seed", "world_seed", "resumed_from_iteration")}
    if schema_changed and rel.endswith("complete_simulation_results.json"):
        data.pop("config", None)
    return _strip(data)


def compare(a: Path, b: Path, *, schema_changed: bool) -> int:
    """Print every file that differs (or exists on one side only); returns the number of differences."""

    def files(root: Path) -> set[str]:
        skip = ("tb/",) + (("simulation_config.json",) if schema_changed else ())
        rels = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.name.endswith(".log")}
        return {r for r in rels if not any(s in r for s in skip)}

    fa, fb = files(a), files(b)
    n_diff = 0
    for rel in sorted(fa ^ fb):
        print(f"only in {'A' if rel in fa else 'B'}: {rel}")
        n_diff += 1
    same = 0
    for rel in sorted(fa & fb):
        if _normalised(a / rel, rel, schema_changed) != _normalised(b / rel, rel, schema_changed):
            print(f"differs: {rel}")
            n_diff += 1
        else:
            same += 1
    print(f"{same} files identical, {n_diff} differences")
    return n_diff


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--src", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--cases", default=None, help="comma-separated subset of the cases (default: all)")
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    c.add_argument("--config-schema-changed", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.src, args.out, args.cases.split(",") if args.cases else None)
        return 0
    return 1 if compare(args.a, args.b, schema_changed=args.config_schema_changed) else 0


if __name__ == "__main__":
    sys.exit(main())
