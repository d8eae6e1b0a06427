"""Profile one ``actionbank simulate`` run in CPU seconds (cProfile timed by ``time.process_time``).

The machine is shared, so wall-clock profiles say more about the neighbours than about the code: this one
charges each function the CPU time of this process only. One BLAS / OpenMP thread (set before numpy loads).

Run ``python -m benchmarks.profile_simulation [--embedder hashing|minilm] [--top 40] [--out prof.pstats]
[--phases] [-- extra simulate flags]``; it prints the top cumulative entries (``--phases``: CPU seconds of the
run's main phases, measured by wrappers without a profiler's per-call overhead). The default workload is the original
system's default configuration: 3 iterations, 30 initial actions, 1,000 users, +20 actions per iteration,
pool 2,000, the default reward model, report and TensorBoard included.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

#: The original system's default configuration (``--action-bank-size 20``; every other value is our default).
ORIGINAL_DEFAULT = ["--iterations", "3", "--initial-actions", "30", "--users", "1000", "--action-bank-size", "20"]
ORIGINAL_DEFAULT += ["--action-pool-size", "2000"]


def profile(embedder: str, extra: list[str], out: Path | None) -> tuple[pstats.Stats, float, float]:
    """Run simulate in this process under cProfile; returns the stats, CPU seconds and wall seconds."""
    from actionbank_env.cli import main  # imports inside the profile on purpose: they are part of a run

    with tempfile.TemporaryDirectory() as tmp:
        argv = ["simulate", "--quiet", "--embedder", embedder, *ORIGINAL_DEFAULT, *extra]
        argv += ["--out", str(Path(tmp) / "run")]
        prof = cProfile.Profile(time.process_time)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        prof.enable()
        code = main(argv)
        prof.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if code != 0:
        raise SystemExit(f"simulate exited with {code}")
    if out is not None:
        prof.dump_stats(str(out))
    return pstats.Stats(prof, stream=io.StringIO()), cpu, wall


#: (module, attribute) of the phases that ``--phases`` times: each is looked up at call time by the run.
PHASES = (
    ("actionbank_env.evaluation", "evaluate_iteration"),
    ("actionbank_env.ope.run", "estimate_proposal"),
    ("optimizers.generative", "GenerativeDesigner.propose"),
    ("actionbank_env.report", "write_report"),
    ("actionbank_env.core.world", "World.card"),
    ("actionbank_env.core.campaign", "run_campaign"),
    ("actionbank_env.results", "RunFolder.write_iteration"),
    ("actionbank_env.core.world", "World.build"),
    # Inside the phases above (they overlap them): every reward-model fit, and within the fits the bilinear
    # model's grouped cross-validation (the designer's and OPE's tuning); the designer's candidate pool (texts
    # written and embedded); OPE's cross-fitted policy (its tuning and fold fits) and its estimators (the first
    # call imports scikit-learn for MIPS).
    ("optimizers.reward_models._base", "RewardModelBase.fit_indexed"),
    ("optimizers.reward_models.bilinear", "BayesianBilinearRewardModel._grouped_cv"),
    ("optimizers.generative", "draw_pool"),
    ("actionbank_env.ope.report", "crossfit_greedy_policy"),
    ("actionbank_env.ope.report", "estimate_all"),
)


def phases(embedder: str, extra: list[str]) -> tuple[dict[str, float], float]:
    """CPU seconds of each phase of :data:`PHASES` (no profiler overhead: a ``process_time`` wrapper per call),
    and of the whole run."""
    import functools
    import importlib

    from actionbank_env.cli import main as cli_main

    spent: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.process_time() - start

        return wrapper

    for module_name, attr in PHASES:
        owner: Any = importlib.import_module(module_name)
        *path, last = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, last, timed(attr, getattr(owner, last)))
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["simulate", "--quiet", "--embedder", embedder, *ORIGINAL_DEFAULT, *extra]
        cpu0 = time.process_time()
        if cli_main([*argv, "--out", str(Path(tmp) / "run")]) != 0:
            raise SystemExit("simulate failed")
    return spent, time.process_time() - cpu0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--embedder", default="hashing")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", type=Path, default=None, help="also dump the pstats file here")
    parser.add_argument("extra", nargs="*", help="more simulate flags (after --)")
    parser.add_argument("--phases", action="store_true", help="CPU seconds per phase instead of a profile")
    args = parser.parse_args(argv)
    if args.phases:
        import resource

        wall0 = time.perf_counter()
        spent, total = phases(args.embedder, args.extra)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(
            f"CPU {total:.2f} s after imports of the phases' modules (embedder {args.embedder}); "
            f"wall {time.perf_counter() - wall0:.1f} s, peak RSS {peak:.0f} MiB, whole process "
            f"{time.process_time():.2f} CPU-s"
        )
        for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"  {name:40s} {seconds:7.2f} s  {100 * seconds / total:5.1f} %")
        return 0
    stats, cpu, wall = profile(args.embedder, args.extra, args.out)
    print(f"CPU {cpu:.2f} s, wall {wall:.2f} s (embedder {args.embedder})")
    stream = io.StringIO()
    stats.stream = stream  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(args.top)
    print(stream.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
