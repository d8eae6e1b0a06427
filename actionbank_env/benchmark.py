"""``actionbank benchmark``: designers over world seeds, paired by seed, against the random and keep designers.

``actionbank benchmark --seeds 301-310 --set embedder=minilm --grid designer.reward_model=lightgbm,bayesian_bilinear
--out BENCH`` runs the full simulation (:func:`~actionbank_env.experiment.run_simulation`, ``iterations`` of them)
for each designer (``generative``, ``random``, ``keep``, ``oracle`` by default; ``--grid`` gives variants of the
generative designer, e.g. its reward model) at each seed, through the sweep machinery
(:func:`~actionbank_env.sweep.run_sweep`: the same process pool, resumable). A trial's
seed is also its world seed (``world_seed`` unset), so the designers of one seed meet the same world, the same
campaign users and, at the first iteration, the same candidate pool (every designer draws it from the same
designer stream): their differences are their choices. The folder::

    BENCH/
      baselines/  generative/   two sweep folders (random, keep, oracle / the generative variants) as
                                actionbank sweep writes them: sweep.csv, sweep.json, trials/<config>/seed_<s>/
      benchmark_trials.csv    one row per designer x seed x iteration (the numbers the tables use)
      benchmark.csv           every statistic of the tables (designer, baseline, metric, mean, ci95, n)
      benchmark.md            the tables in markdown
      benchmark.png           per-iteration bank value and deployed value of each designer (mean ± 95 % CI)

Statistics (over seeds, a two-sided 95 % t-interval of the mean):

- ``final_new_bank_value``: the true value (perfect targeting, fresh evaluation users) of the last proposed bank;
- ``run_company_reward`` / ``run_deployed_value``: what the company earned over the run, the mean over iterations
  of the observed click rate of its campaigns and of the true value of what its agent served;
- paired differences of these against ``random`` and against ``keep``, seed by seed;
- ``improvement_captured``: per iteration and over all iterations, the ratio of means
  ``sum(new - old) / sum(oracle - old)`` over seeds (each designer against the oracle bank of its own pool).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actionbank_env.config import SimulationConfig
from actionbank_env.core.io import atomic_write, atomic_write_text, read_json
from actionbank_env.errors import ConfigError
from actionbank_env.results import (
    BENCHMARK_CSV,
    BENCHMARK_MD,
    BENCHMARK_PLOT,
    BENCHMARK_TRIALS_CSV,
    EVALUATION_FILE,
    SUMMARY_FILE,
    iteration_file,
    out_path,
)
from actionbank_env.sweep import mean_ci, paired_difference

__all__ = [
    "BENCHMARK_DESIGNERS",
    "BenchmarkResult",
    "add_benchmark_arguments",
    "benchmark_main",
    "mean_ci",
    "paired_statistics",
    "run_benchmark",
]

#: The designers of a benchmark unless ``--designers`` says otherwise.
BENCHMARK_DESIGNERS = ("generative", "random", "keep", "oracle")
#: Settings a benchmark fixes unless ``--set`` says otherwise (besides the sweep's): the off-policy estimate of each
#: proposal is not compared here and costs six reward-model fits per iteration.
BENCHMARK_DEFAULTS: dict[str, Any] = {"ope": False}
#: Paired baselines (each designer's difference to them, seed by seed). ``diverse`` (the model-free coverage
#: baseline) is compared against when a benchmark runs it: ``--designers generative,random,keep,diverse``.
BASELINES = ("random", "keep", "diverse")
#: Among the baselines, only the difference of the later one to the earlier one is shown (random - keep,
#: diverse - random, diverse - keep): the bank only grows, so any addition "beats keep".
_BASELINE_ORDER = {"keep": 0, "random": 1, "diverse": 2}
#: Evaluation-only designers that measure what the logs allow (``reference``: the generative designer with the
#: ground truth's functional form, see :class:`optimizers.baselines.ReferenceDesigner`): when one ran, every learning
#: designer's paired difference to it and its share of the reference's improvement captured are shown.
CEILINGS = ("reference",)
#: Designers that are not compared against a ceiling (the baselines, the ceilings and the oracle).
_NOT_LEARNING = (*BASELINES, *CEILINGS, "oracle")
#: Per-seed numbers compared between designers.
PAIRED_METRICS = ("final_new_bank_value", "run_company_reward", "run_deployed_value")
#: Per-iteration columns of ``benchmark_trials.csv`` (from each trial's ``summary.json``).
ITERATION_KEYS = ("company_reward", "deployed_value", "bank_value", "new_bank_value", "oracle_bank_value")
#: Optional per-iteration column: the true value of the bank the evaluation-only reference designer proposed from the
#: same logs and pool as the trial's designer (``--set same_logs_reference=true``; the trial's
#: ``ground_truth_evaluation.json``). ``benchmark_trials.csv`` has it only when some trial recorded it.
SAME_LOGS_KEY = "same_logs_reference_value"
#: How the reference of the same logs is named in ``benchmark.csv``'s baseline column.
SAME_LOGS_BASELINE = "reference (same logs)"
#: Seed-bootstrap resamples of the share-of-reference intervals (a fixed generator: the tables are reproducible).
BOOTSTRAP_RESAMPLES = 10_000


def _per_seed(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[int, dict[str, float]]]:
    """designer -> seed -> the per-seed numbers of :data:`PAIRED_METRICS` (from the per-iteration rows)."""
    grouped: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((str(row["designer"]), int(row["seed"])), []).append(row)
    out: dict[str, dict[int, dict[str, float]]] = {}
    for (designer, seed), its in grouped.items():
        its = sorted(its, key=lambda r: int(r["iteration"]))
        out.setdefault(designer, {})[seed] = {
            "final_new_bank_value": float(its[-1]["new_bank_value"]),
            "run_company_reward": float(np.mean([float(r["company_reward"]) for r in its])),
            "run_deployed_value": float(np.mean([float(r["deployed_value"]) for r in its])),
        }
    return out


def _captured(rows: Sequence[Mapping[str, Any]]) -> float:
    """Ratio of means: summed gains over summed oracle gains (``nan`` when the oracle gains nothing)."""
    new = sum(float(r["new_bank_value"]) - float(r["bank_value"]) for r in rows)
    oracle = sum(float(r["oracle_bank_value"]) - float(r["bank_value"]) for r in rows)
    finite = math.isfinite(new) and math.isfinite(oracle)
    return new / oracle if finite and oracle > 1e-12 else math.nan


def share_interval(
    mine: Mapping[int, tuple[float, float]], theirs: Mapping[int, tuple[float, float]], *, level: float = 0.95
) -> tuple[float, float, float]:
    """A ratio of two improvements captured and its seed-bootstrap interval (percentile, paired by seed).

    Args:
        mine, theirs: seed -> (summed gain over the bank, summed oracle gain) of the designer and of the ceiling
            it is read against; only the seeds both hold count.
        level: Coverage of the interval.

    Returns:
        (share, low, high): ``captured(mine) / captured(theirs)``, each a ratio of means over the seeds, and the
        interval from resampling the seeds with replacement (nan where a resample's ceiling gains nothing).

    Example:
        >>> mine = {s: (0.5 * g, 1.0) for s, g in enumerate([0.2, 0.3, 0.4, 0.1])}
        >>> theirs = {s: (g, 1.0) for s, g in enumerate([0.2, 0.3, 0.4, 0.1])}
        >>> [round(v, 6) for v in share_interval(mine, theirs)]
        [0.5, 0.5, 0.5]
    """
    seeds = sorted(set(mine) & set(theirs))
    if not seeds:
        return math.nan, math.nan, math.nan
    a = np.array([mine[s] for s in seeds], dtype=np.float64)
    b = np.array([theirs[s] for s in seeds], dtype=np.float64)

    def ratio(wa: np.ndarray, wb: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            ceiling = wb[..., 0] / wb[..., 1]
            out: np.ndarray = (wa[..., 0] / wa[..., 1]) / ceiling
        return np.where(np.abs(ceiling) > 1e-12, out, np.nan)

    share = float(ratio(a.sum(axis=0), b.sum(axis=0)))
    if not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)):
        return share, math.nan, math.nan
    n = len(seeds)
    counts = np.random.default_rng(0).multinomial(n, np.full(n, 1.0 / n), size=BOOTSTRAP_RESAMPLES).astype(np.float64)
    draws = ratio(
        np.stack([counts @ a[:, 0], counts @ a[:, 1]], axis=-1), np.stack([counts @ b[:, 0], counts @ b[:, 1]], axis=-1)
    )
    draws = draws[np.isfinite(draws)]
    if not draws.size:
        return share, math.nan, math.nan
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(draws, [tail, 100.0 - tail])
    return share, float(low), float(high)


def _gains(rows: Sequence[Mapping[str, Any]], key: str = "new_bank_value") -> dict[int, tuple[float, float]]:
    """seed -> (summed ``key`` - old bank value, summed oracle - old bank value) over the seed's iterations."""
    out: dict[int, tuple[float, float]] = {}
    for row in rows:
        gain, oracle = out.get(int(row["seed"]), (0.0, 0.0))
        old = float(row["bank_value"])
        out[int(row["seed"])] = (gain + float(row[key]) - old, oracle + float(row["oracle_bank_value"]) - old)
    return out


def paired_statistics(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every statistic of the benchmark tables from the per-iteration rows.

    Args:
        rows: One row per designer x seed x iteration with ``designer``, ``seed``, ``iteration`` and
            :data:`ITERATION_KEYS` (the rows of ``benchmark_trials.csv``).

    Returns:
        Rows ``{designer, baseline, metric, mean, ci95, n}``: ``baseline`` is ``""`` for a designer's own level
        and ``random`` / ``keep`` / ``diverse`` for the paired difference (designer minus baseline over the seeds both ran);
        ``improvement_captured`` (all iterations) and ``improvement_captured_<t>`` are ratios of means (ci95 nan).
        When ``reference`` ran, each learning designer (not a baseline, not the oracle) also gets its paired
        differences to it and ``share_of_captured``: its improvement captured over the reference's, on the seeds
        both ran (ci95 nan; ``share_of_captured_low`` / ``_high``: its seed-bootstrap 95 % interval). A designer
        whose rows carry :data:`SAME_LOGS_KEY` gets the same three numbers against the reference of its own logs
        (baseline :data:`SAME_LOGS_BASELINE`), and that reference's ``improvement_captured`` (per iteration too).

    Example:
        >>> rows = [{"designer": d, "seed": s, "iteration": 1, "company_reward": c, "deployed_value": c,
        ...          "bank_value": 0.1, "new_bank_value": v, "oracle_bank_value": 0.3}
        ...         for d, s, v, c in [("a", 0, 0.2, 0.1), ("a", 1, 0.3, 0.1), ("random", 0, 0.1, 0.1),
        ...                            ("random", 1, 0.2, 0.1)]]
        >>> stats = {(r["designer"], r["baseline"], r["metric"]): r for r in paired_statistics(rows)}
        >>> round(stats["a", "random", "final_new_bank_value"]["mean"], 6), stats["a", "", "improvement_captured"]["mean"]
        (0.1, 0.75)
    """
    seeds = _per_seed(rows)
    designers = list(dict.fromkeys(str(r["designer"]) for r in rows))
    rows_of = {d: [r for r in rows if str(r["designer"]) == d] for d in designers}
    iterations = sorted({int(r["iteration"]) for r in rows})
    out: list[dict[str, Any]] = []

    def add(designer: str, baseline: str, metric: str, mean: float, half: float, n: int) -> None:
        out.append({"designer": designer, "baseline": baseline, "metric": metric, "mean": mean, "ci95": half, "n": n})

    for designer in designers:
        mine = seeds[designer]
        for metric in PAIRED_METRICS:
            add(designer, "", metric, *mean_ci([v[metric] for v in mine.values()]))
        own = [r for r in rows if str(r["designer"]) == designer]
        add(designer, "", "improvement_captured", _captured(own), math.nan, len(mine))
        for t in iterations:
            at = [r for r in own if int(r["iteration"]) == t]
            add(designer, "", f"improvement_captured_{t}", _captured(at), math.nan, len(at))
        for baseline in (*BASELINES, *CEILINGS):
            if baseline == designer or baseline not in seeds:
                continue
            if baseline in CEILINGS and designer in _NOT_LEARNING:
                continue
            if designer in _BASELINE_ORDER and _BASELINE_ORDER[designer] < _BASELINE_ORDER[baseline]:
                continue  # each pair of baselines once: random - keep, diverse - random, diverse - keep
            theirs = seeds[baseline]
            for metric in PAIRED_METRICS:
                ours = {s: v[metric] for s, v in mine.items()}
                add(designer, baseline, metric, *paired_difference(ours, {s: v[metric] for s, v in theirs.items()}))
            if baseline in CEILINGS:
                mine_rows = [r for r in own if int(r["seed"]) in theirs]
                share, low, high = share_interval(_gains(mine_rows), _gains(rows_of[baseline]))
                add(designer, baseline, "share_of_captured", share, math.nan, len(theirs))
                add(designer, baseline, "share_of_captured_low", low, math.nan, len(theirs))
                add(designer, baseline, "share_of_captured_high", high, math.nan, len(theirs))
        shadow = [r for r in own if math.isfinite(float(r.get(SAME_LOGS_KEY, math.nan)))]
        if shadow and len(shadow) == len(own):
            as_new = [{**r, "new_bank_value": r[SAME_LOGS_KEY]} for r in own]
            add(designer, SAME_LOGS_BASELINE, "improvement_captured", _captured(as_new), math.nan, len(mine))
            for t in iterations:
                at = [r for r in as_new if int(r["iteration"]) == t]
                add(designer, SAME_LOGS_BASELINE, f"improvement_captured_{t}", _captured(at), math.nan, len(at))
            share, low, high = share_interval(_gains(own), _gains(own, SAME_LOGS_KEY))
            add(designer, SAME_LOGS_BASELINE, "share_of_captured", share, math.nan, len(mine))
            add(designer, SAME_LOGS_BASELINE, "share_of_captured_low", low, math.nan, len(mine))
            add(designer, SAME_LOGS_BASELINE, "share_of_captured_high", high, math.nan, len(mine))
    return out


def _cell(stat: Mapping[str, Any] | None, signed: bool = False) -> str:
    if stat is None or not math.isfinite(stat["mean"]):
        return "n/a"
    text = f"{stat['mean']:+.4f}" if signed else f"{stat['mean']:.4f}"
    return text + (f" ± {stat['ci95']:.4f}" if math.isfinite(stat["ci95"]) else "")


def format_markdown(stats: Sequence[Mapping[str, Any]], *, n_seeds: int, iterations: int) -> str:
    """The benchmark tables: each designer's levels, then its paired differences against random and keep."""
    index = {(s["designer"], s["baseline"], s["metric"]): s for s in stats}
    designers = list(dict.fromkeys(s["designer"] for s in stats))
    captured = [f"improvement_captured_{t}" for t in range(1, iterations + 1)]
    lines = [
        f"Mean ± 95 % t-interval over {n_seeds} world seeds; improvement captured is a ratio of means over seeds "
        f"(iterations 1..{iterations}, then all); the company's numbers are means over the run's iterations.",
        "",
        "| designer | final new bank value | captured per iteration | captured | company reward over run "
        "| deployed value over run |",
        "|---|---|---|---|---|---|",
    ]
    for d in designers:
        per_it = " / ".join(_cell(index.get((d, "", c))) for c in captured)
        lines.append(
            f"| {d} | {_cell(index.get((d, '', 'final_new_bank_value')))} | {per_it} "
            f"| {_cell(index.get((d, '', 'improvement_captured')))} "
            f"| {_cell(index.get((d, '', 'run_company_reward')))} | {_cell(index.get((d, '', 'run_deployed_value')))} |"
        )
    lines += [
        "",
        "Paired differences, designer minus baseline on the same world seeds (same world, users and first pool):",
        "",
        "| designer | baseline | final new bank value | company reward over run | deployed value over run |",
        "|---|---|---|---|---|",
    ]
    for d in designers:
        for b in (*BASELINES, *CEILINGS):
            if (d, b, "final_new_bank_value") in index:
                cells = " | ".join(_cell(index.get((d, b, m)), signed=True) for m in PAIRED_METRICS)
                lines.append(f"| {d} | {b} | {cells} |")
    shares = []
    for s in stats:
        if s["metric"] != "share_of_captured" or not math.isfinite(s["mean"]):
            continue
        low = index.get((s["designer"], s["baseline"], "share_of_captured_low"))
        high = index.get((s["designer"], s["baseline"], "share_of_captured_high"))
        interval = (
            f" [{low['mean']:.2f}, {high['mean']:.2f}]"
            if low is not None and high is not None and math.isfinite(low["mean"]) and math.isfinite(high["mean"])
            else ""
        )
        whose = "its reference on the same logs" if s["baseline"] == SAME_LOGS_BASELINE else f"{s['baseline']}'s"
        shares.append(f"{s['designer']} {s['mean']:.2f}{interval} of {whose}")
    if shares:
        lines += [
            "",
            "Improvement captured as a share of what the evaluation-only well-specified reference captured (ratio of "
            "captured, each a ratio of means over the same seeds; 95 % seed-bootstrap interval): "
            + "; ".join(shares)
            + ".",
        ]
    same_logs = [d for d in designers if (d, SAME_LOGS_BASELINE, "improvement_captured") in index]
    if same_logs:
        lines += [
            "",
            "The reference proposing from each run's own logs and pool (`same_logs_reference`), improvement captured "
            "per iteration and over the run: "
            + "; ".join(
                f"beside {d}: "
                + " / ".join(_cell(index.get((d, SAME_LOGS_BASELINE, c))) for c in captured)
                + f", {_cell(index.get((d, SAME_LOGS_BASELINE, 'improvement_captured')))}"
                for d in same_logs
            )
            + ".",
        ]
    return "\n".join(lines)


def _plot(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    designers = list(dict.fromkeys(str(r["designer"]) for r in rows))
    iterations = sorted({int(r["iteration"]) for r in rows})
    for ax, key, title in zip(
        fig.subplots(1, 2),
        ("new_bank_value", "deployed_value"),
        ("value of the proposed bank (perfect targeting)", "value the company's agent served"),
        strict=True,
    ):
        for offset, d in enumerate(designers):
            stats = [
                mean_ci([float(r[key]) for r in rows if r["designer"] == d and int(r["iteration"]) == t])
                for t in iterations
            ]
            x = np.asarray(iterations, dtype=np.float64) + 0.04 * (offset - (len(designers) - 1) / 2)
            ax.errorbar(
                x,
                [s[0] for s in stats],
                yerr=[0.0 if math.isnan(s[1]) else s[1] for s in stats],
                label=d,
                marker="o",
                capsize=3,
            )
        ax.set_xlabel("iteration")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(iterations)
        ax.grid(True, alpha=0.3)
    fig.axes[0].set_ylabel("true click probability (mean, 95 % CI over seeds)")
    fig.axes[0].legend(fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    data = buffer.getvalue()
    atomic_write(path, lambda handle: handle.write(data))


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` produced.

    Attributes:
        path: The benchmark folder.
        rows: One row per designer x seed x iteration (``benchmark_trials.csv``).
        stats: :func:`paired_statistics` of the rows (``benchmark.csv``).
        markdown: The tables (``benchmark.md``).
        failures: The sweep records of the trials that failed (their seeds are left out of every pair).
        trials: ``(designer, seed)`` -> the trial's run folder.
    """

    path: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    stats: list[dict[str, Any]] = field(default_factory=list)
    markdown: str = ""
    failures: list[dict[str, Any]] = field(default_factory=list)
    trials: dict[tuple[str, int], Path] = field(default_factory=dict)


def run_benchmark(
    base: SimulationConfig,
    *,
    seeds: Sequence[int],
    out: str | Path,
    designers: Sequence[str] = BENCHMARK_DESIGNERS,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    generative_grid: Mapping[str, Sequence[Any]] | None = None,
    plot: bool = True,
    on_trial_done: Any = None,
    aliases: Mapping[str, str] | None = None,
) -> BenchmarkResult:
    """Run (or resume) every designer x seed simulation and write the paired tables.

    Args:
        base: Settings shared by every trial (designer parameters are the generative designer's config fields,
            which every designer of the comparison accepts; ``world_seed`` must be unset so each seed is a world).
        seeds: The world seeds (each trial's ``seed``).
        out: The benchmark folder (a sweep folder; re-running it skips finished trials).
        designers: Registered designer names (must include ``random`` or ``keep`` for paired differences).
        generative_grid: Variants of the generative designer: setting key -> values, their product (e.g.
            ``{"designer.reward_model": ("lightgbm", "bayesian_bilinear")}``); each is a designer of the tables,
            labelled ``generative[reward_model=lightgbm]``.
        workers, backend, address, on_trial_done, aliases: As :func:`~actionbank_env.sweep.run_sweep`.
        plot: Write ``benchmark.png``.

    Raises:
        ConfigError: For fewer than two designers, a repeated designer, a fixed ``world_seed`` or an ``out`` that is
            a file or another kind of non-empty folder.
    """
    from actionbank_env.sweep import check_out_folder, plan_trials, run_sweep

    designers = tuple(designers)
    if len(designers) < 2 or len(set(designers)) != len(designers):
        raise ConfigError(f"--designers must list at least two different designers, got {list(designers)}.")
    if base.run.world_seed is not None:
        raise ConfigError(
            f"run.world_seed must be unset for a benchmark (each seed is its own world), got {base.run.world_seed}."
        )
    marks = (BENCHMARK_CSV, BENCHMARK_MD, BENCHMARK_PLOT, BENCHMARK_TRIALS_CSV, "baselines", "generative")
    check_out_folder(out, what="benchmark", marks=marks)
    settings = _designer_settings(base)
    variants = {k: tuple(v) for k, v in (generative_grid or {}).items()}
    groups: list[tuple[str, dict[str, tuple[Any, ...]]]] = []
    baselines = tuple(d for d in designers if d != "generative")
    if baselines:  # the reward model's settings are the generative designer's alone
        kept = {k: v for k, v in settings.items() if not k.startswith("designer.reward_model")}
        if base.run.same_logs_reference:  # the reference of the same logs is the generative designer's alone
            kept["same_logs_reference"] = (False,)
        groups.append(("baselines", {"designer": baselines, **kept}))
    if "generative" in designers:
        groups.append(("generative", {"designer": ("generative",), **settings, **variants}))
    if variants and "generative" not in designers:
        raise ConfigError(
            f"--grid varies the generative designer, which --designers {','.join(designers)} does not run; "
            "add generative or drop --grid."
        )
    for folder, grid in groups:  # every trial's settings are checked before the first trial runs
        plan_trials(base, grid, seeds, Path(out) / folder, aliases=aliases, carry_settings=False)
    records: list[dict[str, Any]] = []
    for folder, grid in groups:
        sweep = run_sweep(
            base,
            grid=grid,
            seeds=seeds,
            out=Path(out) / folder,
            backend=backend,
            workers=workers,
            address=address,
            on_trial_done=on_trial_done,
            aliases=aliases,
            carry_settings=False,  # the designer settings travel as grid entries (_designer_settings), by group
        )
        records.extend(sweep.records)
    for record in records:
        record["label"] = _label(record["params"], variants)
    rows: list[dict[str, Any]] = []
    trials = {(str(r["label"]), int(r["seed"])): Path(r["path"]) for r in records}
    for record in records:
        if record["status"] == "error":
            continue
        summary = read_json(Path(record["path"]) / SUMMARY_FILE)
        per = summary["per_iteration"]
        for t in range(summary["iterations"]):
            row: dict[str, Any] = {"designer": record["label"], "seed": record["seed"], "iteration": t + 1}
            row.update({k: per[k][t] if per[k][t] is not None else math.nan for k in ITERATION_KEYS})
            if base.run.same_logs_reference:  # the baselines run without it (see the groups above)
                evaluation = read_json(Path(record["path"]) / iteration_file(t + 1, EVALUATION_FILE))
                shadow = evaluation.get("same_logs_reference")
                if shadow is not None:
                    row[SAME_LOGS_KEY] = shadow["new_bank_value"]
            rows.append(row)
    stats = paired_statistics(rows) if rows else []
    iterations = max((int(r["iteration"]) for r in rows), default=0)
    markdown = format_markdown(stats, n_seeds=len(seeds), iterations=iterations)
    path = Path(out).resolve()
    columns = ["designer", "seed", "iteration", *ITERATION_KEYS]
    if any(SAME_LOGS_KEY in r for r in rows):
        columns.append(SAME_LOGS_KEY)
    atomic_write_text(path / BENCHMARK_TRIALS_CSV, _csv(rows, columns))
    atomic_write_text(path / BENCHMARK_CSV, _csv(stats, ["designer", "baseline", "metric", "mean", "ci95", "n"]))
    atomic_write_text(path / BENCHMARK_MD, markdown + "\n")
    if plot and rows:
        _plot(rows, path / BENCHMARK_PLOT)
    return BenchmarkResult(
        path=path,
        rows=rows,
        stats=stats,
        markdown=markdown,
        failures=[r for r in records if r["status"] == "error"],
        trials=trials,
    )


def _label(params: Mapping[str, Any], variants: Mapping[str, Any]) -> str:
    """A designer's name in the tables: the generative designer's variant settings in brackets.

    Example:
        >>> _label({"designer": "generative", "designer.reward_model": "linear"}, {"designer.reward_model": ()})
        'generative[reward_model=linear]'
    """
    name = str(params["designer"])
    shown = [f"{k.removeprefix('designer.')}={params[k]}" for k in variants if k in params]
    return f"{name}[{','.join(shown)}]" if name == "generative" and shown else name


def _designer_settings(base: SimulationConfig) -> dict[str, tuple[Any, ...]]:
    """The designer settings of ``base`` that differ from their defaults, as one-value grid entries.

    Choosing a designer resets its parameters (a sweep's grid point changes the component), so the settings given
    for the comparison travel with every grid point: every designer gets the same parameter set.
    """
    settings = base.settings()
    reference = SimulationConfig().with_settings(
        {"designer": settings["designer"], "designer.reward_model": settings.get("designer.reward_model")}
    )
    defaults = reference.settings()
    changed = {}
    if "designer.reward_model" in settings and settings["designer.reward_model"] != SimulationConfig().settings().get(
        "designer.reward_model"
    ):
        changed["designer.reward_model"] = (settings["designer.reward_model"],)
    for key, value in settings.items():
        if key.startswith("designer.") and key != "designer.reward_model" and defaults.get(key) != value:
            changed[key] = (value,)
    return changed


def _csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- command line


def add_benchmark_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``actionbank benchmark`` (wired by ``cli.py``)."""
    parser.add_argument("--seeds", required=True, help="world seeds like '301-310' (each trial's --seed and world)")
    parser.add_argument(
        "--designers",
        default=",".join(BENCHMARK_DESIGNERS),
        help=f"comma-separated designers (default {','.join(BENCHMARK_DESIGNERS)})",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a setting shared by every trial (repeatable), e.g. embedder=minilm users=1000; benchmarks default to "
        "ope=false report=false tensorboard=false threads=1",
    )
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="variants of the generative designer, e.g. designer.reward_model=lightgbm,bayesian_bilinear (repeatable)",
    )
    parser.add_argument("--workers", type=int, default=1, help="parallel trials (default 1)")
    parser.add_argument("--out", type=out_path, required=True, help="the benchmark folder (re-run it to resume)")
    parser.add_argument("--no-plot", dest="plot", action="store_false", help="skip benchmark.png")


def benchmark_main(args: argparse.Namespace, *, aliases: Mapping[str, str] | None = None) -> int:
    """Run ``actionbank benchmark``: one progress line per trial (stderr), then the tables and the folder.

    Returns:
        0 when every trial succeeded, 1 when some failed.
    """
    from actionbank_env.sweep import (
        TRIAL_DEFAULTS,
        parse_grid,
        parse_seeds,
        parse_settings,
        progress_printer,
        typed_settings,
    )

    seeds = parse_seeds(args.seeds)
    designers = [d.strip() for d in args.designers.split(",") if d.strip()]
    settings = parse_settings(args.settings)
    grid = parse_grid(args.grid)
    if any(not k.startswith("designer.") for k in grid):
        raise ConfigError(f"--grid keys must be settings of the generative designer (designer.*), got {sorted(grid)}.")
    if "designer" in settings:
        raise ConfigError("--set designer must not be given to a benchmark; list the designers with --designers.")
    base = SimulationConfig.from_settings(
        {**TRIAL_DEFAULTS, **BENCHMARK_DEFAULTS, **typed_settings("--set", settings, aliases=aliases)}, source="--set"
    )
    variants = math.prod(len(v) for v in grid.values()) if "generative" in designers else 1
    total = (len(designers) - 1 + variants) * len(seeds) if "generative" in designers else len(designers) * len(seeds)
    progress = progress_printer(total)

    result = run_benchmark(
        base,
        seeds=seeds,
        out=args.out,
        designers=designers,
        workers=args.workers,
        generative_grid=grid,
        plot=args.plot,
        on_trial_done=progress,
        aliases=aliases,
    )
    print(result.markdown)
    for f in result.failures:
        print(f"FAILED {f['key']} seed {f['seed']}: {f['error']}")
    print(f"benchmark: {result.path} ({BENCHMARK_MD}, {BENCHMARK_CSV}, {BENCHMARK_TRIALS_CSV}, {BENCHMARK_PLOT})")
    return 1 if result.failures else 0
