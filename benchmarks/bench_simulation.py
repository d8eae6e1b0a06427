"""The full simulation end to end: CPU seconds, wall seconds and peak memory of ``actionbank simulate``.

Every run is a fresh subprocess (imports, world build, report and TensorBoard included, as a user's run is; after
one untimed run that fills numba's kernel cache, as any earlier run on the checkout has) with one BLAS / OpenMP /
torch thread; CPU seconds (user + system) and peak RSS come from ``os.wait4``, so they are the
run's alone. The machine is shared: read CPU seconds, wall times carry the neighbours' load.

Two modes:

- the rows of issue 21's table (default): the original system's default configuration on our side (3 iterations,
  30 initial actions, +20 actions per iteration, pool 2,000, the default reward model, report and TensorBoard),
  at 1,000 and 10,000 users, with the hashing embedder and with MiniLM on a warm embedding cache (one untimed
  run first fills it), plus the keep-the-bank baseline at 1,000 users;
- ``--sizes 1000,10000,...``: the same configuration (hashing) at growing users per iteration, and the growth
  of wall, CPU and memory per 10x users.

- ``--startup``: ``gym.make("ActionBank/Targeting-v0")`` with defaults and ``make demo``'s command
  (``python -m actionbank_env simulate`` with defaults, written to a temporary folder), each cold and warm. Cold is
  a fresh process whose embedding cache (``ACTIONBANK_CACHE_DIR``) is a new empty folder, so every text of the
  world (and of the demo's candidate pools) goes through MiniLM, which has to be imported and loaded; warm is a
  second fresh process on the cache the cold one filled. On this machine "cold" does not empty the operating
  system's file cache: the torch / transformers libraries are read from memory, as after any earlier run
  (a rebooted machine would also read ~1 GB of them from disk).

Run ``python -m benchmarks.bench_simulation [--rows keep,hashing,minilm,10k] [--repeats 1]``,
``python -m benchmarks.bench_simulation --sizes 1000,10000,100000,1000000`` or
``python -m benchmarks.bench_simulation --startup``
(``python -m benchmarks --only simulation`` runs the table's rows).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: The original system's default configuration (its ``--action_bank_size`` is 20; the rest are our defaults).
ORIGINAL_DEFAULT = ["--iterations", "3", "--initial-actions", "30", "--action-bank-size", "20"]
ORIGINAL_DEFAULT += ["--action-pool-size", "2000"]

#: name -> (users per iteration, extra flags, warm the embedding cache first)
ROWS: dict[str, tuple[int, list[str], bool]] = {
    "keep": (1_000, ["--embedder", "hashing", "--designer", "keep"], False),
    "hashing": (1_000, ["--embedder", "hashing"], False),
    "minilm": (1_000, ["--embedder", "minilm"], True),
    "10k": (10_000, ["--embedder", "hashing"], False),
    "10k_minilm": (10_000, ["--embedder", "minilm"], True),
}
DEFAULT_ROWS = ("keep", "hashing", "minilm", "10k", "10k_minilm")
_LABELS = {
    "keep": "1,000 users, keep the bank",
    "hashing": "1,000 users, +20/iter, pool 2,000 (hashing)",
    "minilm": "1,000 users, +20/iter, pool 2,000 (MiniLM, warm)",
    "10k": "10,000 users, same (hashing)",
    "10k_minilm": "10,000 users, same (MiniLM, warm)",
}
_ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def one_run(users: int, extra: list[str], folder: Path, *, cache_dir: Path | None = None) -> dict[str, float]:
    """One ``simulate`` in a fresh process; returns ``cpu_s``, ``wall_s`` and ``peak_mib``."""
    argv = [sys.executable, "-m", "actionbank_env", "simulate", "--quiet", *ORIGINAL_DEFAULT, "--users", str(users)]
    argv += [*extra, "--out", str(folder), "--overwrite"]
    env = {**os.environ, **_ONE_THREAD, "PYTHONPATH": str(ROOT)}
    if cache_dir is not None:
        env["ACTIONBANK_CACHE_DIR"] = str(cache_dir)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"simulate --users {users} {' '.join(extra)} failed ({code}): {err[-2000:]}")
    if proc.stderr:
        proc.stderr.close()
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall, "peak_mib": usage.ru_maxrss / 1024.0}


def _timed(argv: list[str], *, cache_dir: Path) -> dict[str, float]:
    """Run ``argv`` in a fresh process (one thread, this checkout, the given embedding cache); CPU, wall, RSS."""
    env = {**os.environ, **_ONE_THREAD, "PYTHONPATH": str(ROOT), "ACTIONBANK_CACHE_DIR": str(cache_dir)}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {err[-2000:]}")
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall, "peak_mib": usage.ru_maxrss / 1024.0}


#: ``gym.make`` of the default world, as a user's first line does.
GYM_MAKE = "import gymnasium as gym, actionbank_env; gym.make('ActionBank/Targeting-v0')"


def startup_rows(*, demo: bool = True) -> list[dict[str, Any]]:
    """``gym.make`` of the default world and ``make demo``'s command, each cold (empty embedding cache) and warm.

    Targets (issue 21, wall on an idle machine): ``gym.make`` <= 8 s cold and <= 1.5 s warm; ``make demo`` <= 60 s.
    """
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cases: list[tuple[str, list[str]]] = [("gym.make", [sys.executable, "-c", GYM_MAKE])]
        if demo:  # the Makefile's recipe after `install`, into a temporary folder
            demo_argv = [sys.executable, "-m", "actionbank_env", "simulate", "--quiet"]
            cases.append(("make demo", [*demo_argv, "--out", str(Path(tmp) / "demo"), "--overwrite"]))
        for label, argv in cases:
            cache = Path(tmp) / f"cache_{label.replace(' ', '_')}"
            cache.mkdir()
            for state in ("cold", "warm"):
                run = _timed(argv, cache_dir=cache)
                rows += _stat_rows(f"{label} ({state})", {"users": "-"}, [run])
                _progress(f"{label} ({state})", [run])
    return rows


def _warm_compiled_kernels(tmp: Path) -> None:
    """One small untimed run first: numba compiles the LinUCB kernels into its on-disk cache on a checkout's first
    run (several CPU-seconds), which no later run pays; the table measures runs after that one."""
    one_run(200, ["--embedder", "hashing", "--iterations", "1", "--no-report", "--no-ope"], tmp / "warm_kernels")


def _progress(label: str, runs: list[dict[str, float]]) -> None:
    """Each row on stderr as it finishes (a 1e6-user row takes many minutes)."""
    for r in runs:
        print(f"{label}: {r['cpu_s']:.1f} CPU-s, {r['wall_s']:.1f} s wall, {r['peak_mib']:.0f} MiB", file=sys.stderr)


def _stat_rows(case: str, params: dict[str, Any], runs: list[dict[str, float]]) -> list[dict[str, Any]]:
    out = []
    for key, what, unit in (("cpu_s", "CPU", "s"), ("wall_s", "wall", "s"), ("peak_mib", "peak RSS", "MiB")):
        values = [r[key] for r in runs]
        out.append(
            {
                "case": f"{case}: {what}",
                **params,
                "unit": unit,
                "median": float(np.median(values)),
                "min": float(min(values)),
                "max": float(max(values)),
            }
        )
    return out


def table_rows(names: tuple[str, ...] = DEFAULT_ROWS, repeats: int = 1) -> list[dict[str, Any]]:
    """CPU, wall and peak RSS of each named row of issue 21's table (median over ``repeats`` fresh runs)."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        _warm_compiled_kernels(Path(tmp))
        for name in names:
            users, extra, warm = ROWS[name]
            if warm:  # fills the embedding cache with this run's texts (same seed: the same pools)
                one_run(users, extra, Path(tmp) / f"warm_{name}", cache_dir=cache)
            runs = [one_run(users, extra, Path(tmp) / f"run_{name}", cache_dir=cache) for _ in range(max(1, repeats))]
            rows += _stat_rows(_LABELS[name], {"users": users}, runs)
            _progress(_LABELS[name], runs)
    return rows


def growth_rows(sizes: tuple[int, ...], repeats: int = 1) -> list[dict[str, Any]]:
    """The hashing row at each size (big sizes once), then wall / CPU / memory growth per step of sizes."""
    rows: list[dict[str, Any]] = []
    medians: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        _warm_compiled_kernels(Path(tmp))
        for users in sizes:
            n = max(1, repeats if users <= 10_000 else 1)  # big sizes once: minutes per run
            runs = [one_run(users, ROWS["hashing"][1], Path(tmp) / f"run_{users}") for _ in range(n)]
            rows += _stat_rows("simulate (hashing)", {"users": users}, runs)
            _progress(f"{users} users", runs)
            medians[users] = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
    ordered = sorted(medians)
    for a, b in zip(ordered, ordered[1:], strict=False):
        for key, what in (("cpu_s", "CPU"), ("wall_s", "wall"), ("peak_mib", "memory")):
            growth = medians[b][key] / medians[a][key]
            rows.append(
                {
                    "case": f"{what} growth",
                    "users": f"{a}->{b}",
                    "unit": "x",
                    "median": growth,
                    "min": growth,
                    "max": growth,
                }
            )
    return rows


def run(repeats: int = 1) -> list[dict[str, Any]]:
    """The table's rows (``python -m benchmarks --only simulation``; one run each above 1 repeat: minutes)."""
    return table_rows(DEFAULT_ROWS, repeats=min(repeats, 3))


if __name__ == "__main__":
    from benchmarks.__main__ import print_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=",".join(DEFAULT_ROWS), help=f"comma-separated subset of {tuple(ROWS)}")
    parser.add_argument("--sizes", default=None, help="growth mode: comma-separated users per iteration")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--startup", action="store_true", help="gym.make and make demo, cold and warm")
    parser.add_argument("--no-demo", action="store_true", help="with --startup: gym.make only")
    args = parser.parse_args()
    if args.startup:
        print_table(startup_rows(demo=not args.no_demo))
    elif args.sizes:
        print_table(growth_rows(tuple(int(s) for s in args.sizes.split(",")), args.repeats))
    else:
        print_table(table_rows(tuple(args.rows.split(",")), args.repeats))
