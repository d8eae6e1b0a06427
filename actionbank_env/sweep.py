"""Multi-seed sweeps: a grid of settings x seeds, one ``run_simulation`` per trial, on a process pool or Ray.

``actionbank sweep --seeds 0-9 --grid optimizer=generative,random,keep --set embedder=hashing --out SWEEP``
runs the cartesian product of the grid values and the seeds. Each trial is an ordinary run folder::

    SWEEP/
      sweep.csv  sweep.json                         mean ± 95% CI per configuration (t-interval over seeds)
      trials/<config key>/seed_<s>/                 a run folder (README, "Results folder"; report off)
      trials/<config key>/seed_<s>/error.txt        the traceback of a failed trial

The trials are independent processes, so nothing is shared but the file system: a local
``ProcessPoolExecutor`` (spawn) by default, Ray tasks with ``backend="ray"`` (a local Ray, or a cluster
through ``address``; trial folders must then be on a file system every node sees). A failing trial is
recorded with its error and the others go on; running the same sweep again skips the trials whose
``summary.json`` exists and retries the others. Trials are deterministic (same config and seed, same files
whatever the backend), so a sweep can be resumed or spread over machines without changing its numbers.

Example:
    >>> parse_seeds("0-2,7")
    (0, 1, 2, 7)
    >>> parse_grid(["optimizer=keep,random", "users=100,200"])
    {'optimizer': ('keep', 'random'), 'users': ('100', '200')}
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import logging
import math
import os
import re
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actionbank_env._validation import check_choice, check_int
from actionbank_env.config import SimulationConfig
from actionbank_env.core.io import atomic_write_json, atomic_write_text, read_json
from actionbank_env.errors import ConfigError, MissingExtraError
from actionbank_env.results import CONFIG_FILE, ERROR_FILE, SUMMARY_FILE, SWEEP_CSV, SWEEP_JSON, TRIALS_DIR, out_path

__all__ = [
    "BACKENDS",
    "SWEEP_METRICS",
    "SweepResult",
    "Trial",
    "add_sweep_arguments",
    "config_key",
    "parse_grid",
    "parse_seeds",
    "parse_settings",
    "plan_trials",
    "run_sweep",
    "run_trial",
    "summarize",
    "sweep_main",
    "world_seed_note",
]

log = logging.getLogger(__name__)

#: Execution backends of :func:`run_sweep`.
BACKENDS = ("local", "ray")
#: Final-iteration numbers of ``summary.json`` aggregated over seeds.
SWEEP_METRICS = ("deployed_value", "bank_value", "new_bank_value", "improvement_captured", "company_reward")
#: Settings a sweep fixes for its trials unless ``--set`` says otherwise.
TRIAL_DEFAULTS: dict[str, Any] = {"report": False, "tensorboard": False, "threads": 1}

_SEEDS_RULE = "a list of seeds >= 0 like '0-9' or '0,3,5'"
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


# ---------------------------------------------------------------------------------------------- parsing


#: Most seeds one sweep or benchmark takes (each is a full run per grid point; more is a typo, e.g. ``0-100000000``).
MAX_SEEDS = 10_000
#: Largest seed (seeds are stored as 64-bit integers).
MAX_SEED = 2**63 - 1


def parse_seeds(text: str) -> tuple[int, ...]:
    """Seeds from ``"0-9"``, ``"0,3,5"`` or a mix (``"0-4,10"``), in the order given.

    Raises:
        ConfigError: For anything else, a reversed range, a negative seed or a seed given twice.

    Example:
        >>> parse_seeds("3,0-1")
        (3, 0, 1)
        >>> parse_seeds("5-2")
        Traceback (most recent call last):
        ...
        actionbank_env.errors.ConfigError: --seeds must be a list of seeds >= 0 like '0-9' or '0,3,5', got '5-2' (range 5-2 is reversed).
    """
    if not isinstance(text, str):
        raise TypeError(f"--seeds must be a str like '0-9', got {type(text).__name__}.")
    ranges: list[tuple[int, int]] = []
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(\d{1,30})(?:\s*-\s*(\d{1,30}))?", part)
        if match is None:
            raise ConfigError(f"--seeds must be {_SEEDS_RULE}, got {text!r}.")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise ConfigError(f"--seeds must be {_SEEDS_RULE}, got {text!r} (range {low}-{high} is reversed).")
        if high > MAX_SEED:
            raise ConfigError(f"--seeds must be at most {MAX_SEED} (a 63-bit seed), got {high} in {text!r}.")
        ranges.append((low, high))
    # Count before any list is built: a typo like 0-100000000 would take minutes and gigabytes.
    count = sum(high - low + 1 for low, high in ranges)
    if count > MAX_SEEDS:
        raise ConfigError(f"--seeds must list at most {MAX_SEEDS} seeds, got {count} ({text!r}).")
    seeds = [seed for low, high in ranges for seed in range(low, high + 1)]
    counts = Counter(seeds)
    duplicates = sorted(s for s, n in counts.items() if n > 1)
    if duplicates:
        raise ConfigError(f"--seeds must list each seed once, got {text!r} (repeated: {duplicates[:5]}).")
    return tuple(seeds)


def _tree_key(flag: str, key: str, aliases: Mapping[str, str]) -> str:
    """The tree key of a ``--set`` / ``--grid`` key (legacy spellings through ``aliases``)."""
    return aliases.get(key, key)


def _schema(components: Mapping[str, str]) -> dict[str, Any]:
    from actionbank_env.config import settings_schema

    nested = {"reward_model": components["designer.reward_model"]} if "designer.reward_model" in components else None
    return {s.key: s for s in settings_schema(components.get("agent"), components.get("designer"), nested)}


def _hint(flag: str, key: str, components: Mapping[str, str], aliases: Mapping[str, str] | None = None) -> Any:
    from actionbank_env._validation import did_you_mean

    schema = _schema(components)
    if key not in schema:
        hint = did_you_mean(key, [*schema, *(aliases or {})])
        raise ConfigError(f"{flag} key must be a setting of the configuration tree, got {key!r}.{hint}")
    return schema[key].hint


def parse_value(flag: str, key: str, text: str, *, components: Mapping[str, str] | None = None) -> Any:
    """``text`` parsed as the tree setting ``key`` (of the chosen ``components``) by the one field parser
    (:func:`actionbank_env.config.parse_value`).

    Example:
        >>> parse_value("--set", "designer.max_bank_size", "none"), parse_value("--set", "agent.use_pca", "false")
        (None, False)
    """
    from actionbank_env.config import parse_value as parse_field

    return parse_field(f"{flag} {key}", text, _hint(flag, key, components or {}))


def _split_assignment(flag: str, spec: str) -> tuple[str, str]:
    if not isinstance(spec, str) or "=" not in spec:
        raise ConfigError(f"{flag} must look like key=value, got {spec!r}.")
    key, _, values = spec.partition("=")
    key = key.strip().replace("-", "_")
    if key == "seed":
        raise ConfigError(f"{flag} key must not be 'seed', got {key!r}; give the seeds with --seeds.")
    return key, values


def parse_grid(specs: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``["key=v1,v2", ...]`` -> ``{key: ("v1", "v2")}`` in the order given. Values stay text until each grid point
    is built (:func:`plan_trials`): a parameter's type depends on the component the point chooses.

    Raises:
        ConfigError: For ``seed``, a key given twice, or an empty or repeated value.

    Example:
        >>> parse_grid(["reward-model-type=lightgbm,neural"])
        {'reward_model_type': ('lightgbm', 'neural')}
    """
    grid: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        key, text = _split_assignment("--grid", spec)
        if key in grid:
            raise ConfigError(f"--grid {key} must be given once (list its values after one '='), got it twice.")
        parts = [p.strip() for p in text.split(",")]
        if not text.strip() or any(not p for p in parts):
            raise ConfigError(f"--grid {key} must have non-empty comma-separated values, got {text!r}.")
        if len(set(parts)) != len(parts):
            raise ConfigError(f"--grid {key} must list each value once, got {text!r}.")
        grid[key] = tuple(parts)
    return grid


def parse_settings(specs: Iterable[str]) -> dict[str, str]:
    """``["key=value", ...]`` (the ``--set`` flags) -> ``{key: "value"}`` (text, parsed when the trials are built).

    Example:
        >>> parse_settings(["users=500", "embedder=hashing"])
        {'users': '500', 'embedder': 'hashing'}
    """
    settings: dict[str, str] = {}
    for spec in specs:
        key, text = _split_assignment("--set", spec)
        if key in settings:
            raise ConfigError(f"--set {key} must be given once, got it twice.")
        settings[key] = text
    return settings


_COMPONENTS = ("agent", "designer", "designer.reward_model")


def typed_settings(
    flag: str,
    values: Mapping[str, Any],
    *,
    aliases: Mapping[str, str] | None = None,
    base: SimulationConfig | None = None,
) -> dict[str, Any]:
    """``{tree key: value}`` from ``{key as given: value}``: keys through ``aliases``, text values parsed for the
    components the values (or ``base``) choose.

    Example:
        >>> typed_settings("--set", {"alpha": "0.5", "users": "10"}, aliases={"alpha": "agent.alpha",
        ...                "users": "users_per_iteration"})
        {'agent.alpha': 0.5, 'users_per_iteration': 10}
    """
    from actionbank_env.config import legacy_setting_applies

    aliases = aliases or {}
    keyed = {_tree_key(flag, k, aliases): v for k, v in values.items()}
    chosen = base.settings() if base is not None else {}
    components = {k: str(keyed.get(k, chosen.get(k))) for k in _COMPONENTS if keyed.get(k, chosen.get(k)) is not None}
    out = {}
    for given, value in values.items():
        key = _tree_key(flag, given, aliases)
        if key in _COMPONENTS or not isinstance(value, str):
            out[key] = value
        elif given in aliases and not (_applies(key, components) and legacy_setting_applies(given, components)):
            # A legacy spelling goes only to the components that have it, as in earlier releases.
            log.info("%s %s is ignored: the chosen components have no %s.", flag, given, key)
        else:
            from actionbank_env.config import parse_value as parse_field

            out[key] = parse_field(f"{flag} {given}", value, _hint(flag, key, components, aliases))
    return out


def _applies(key: str, components: Mapping[str, str]) -> bool:
    try:
        _hint("", key, components)
    except ConfigError:
        return False
    return True


# ---------------------------------------------------------------------------------------------- planning


def config_key(params: Mapping[str, Any]) -> str:
    """The folder name of one grid point: ``key=value`` pairs joined by ``,`` (``default`` for no grid).

    Characters other than letters, digits and ``._+-`` in values become ``_``.

    Example:
        >>> config_key({"optimizer": "generative", "reward_model_type": "lightgbm"})
        'optimizer=generative,reward_model_type=lightgbm'
        >>> config_key({"company_strategy": "my.module:Agent"}), config_key({})
        ('company_strategy=my.module_Agent', 'default')
    """
    if not params:
        return "default"
    return ",".join(f"{k}={re.sub(r'[^A-Za-z0-9._+-]', '_', str(v))}" for k, v in params.items())


@dataclass(frozen=True, slots=True, kw_only=True)
class Trial:
    """One simulation of a sweep.

    Attributes:
        key: The configuration's key (:func:`config_key` of ``params``).
        params: The grid values of this configuration.
        seed: The seed.
        config: The full, validated settings of the run.
        path: The run folder (absolute).
        given: The grid values as given (keys and values before parsing; what ``baseline`` is matched against).
    """

    key: str
    params: Mapping[str, Any]
    seed: int
    config: SimulationConfig
    path: Path
    given: Mapping[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """Whether the run folder holds a ``summary.json`` (the trial is skipped on a re-run)."""
        return (self.path / SUMMARY_FILE).is_file()


def _explicit_component_settings(base: SimulationConfig) -> dict[str, Any]:
    """The parameters of ``base``'s components (``agent.*``, ``designer.*``) that differ from their defaults.

    Example:
        >>> _explicit_component_settings(SimulationConfig().with_settings({"designer.action_pool_size": 50}))
        {'designer.action_pool_size': 50}
    """
    settings = base.settings()
    try:
        reference = SimulationConfig().with_settings({k: settings[k] for k in _COMPONENTS if k in settings}).settings()
    except (TypeError, ValueError):  # pragma: no cover - base was built from the same settings
        return {}
    defaults = SimulationConfig().settings()
    out = {}
    for key, value in settings.items():
        if not any(key.startswith(c + ".") for c in _COMPONENTS) or key.endswith(".params"):
            continue  # a plugin's params dict belongs to that plugin alone
        if value != (defaults.get(key) if key in _COMPONENTS else reference.get(key)):
            out[key] = value
    return out


def _carried(base: SimulationConfig, explicit: Mapping[str, Any], typed: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of ``explicit`` a grid point keeps when it chooses another component: choosing a component
    starts from that component's defaults, so the parameters the sweep was given for the component it replaces
    are carried over where the new one has them (``--designer.action-pool-size 100 --grid designer=generative,random``
    gives both designers a pool of 100)."""
    chosen = base.settings()
    switched = [c for c in _COMPONENTS if c in typed and typed[c] != chosen.get(c)]
    if not switched:
        return {}
    components = {c: str(typed.get(c, chosen.get(c))) for c in _COMPONENTS if typed.get(c, chosen.get(c)) is not None}
    schema = _schema(components)
    return {
        k: v
        for k, v in explicit.items()
        if k not in typed and k in schema and any(k.startswith(c + ".") for c in switched)
    }


def plan_trials(
    base: SimulationConfig,
    grid: Mapping[str, Sequence[Any]],
    seeds: Sequence[int],
    out: str | os.PathLike[str],
    *,
    aliases: Mapping[str, str] | None = None,
    carry_settings: bool = True,
) -> list[Trial]:
    """Every (grid point, seed) trial, configuration-major, with its validated config and folder.

    Args:
        base: Settings shared by all trials.
        grid: Setting key (a tree key, or a legacy spelling of ``aliases``) -> values (typed, or text to parse).
        seeds: The seeds.
        out: The sweep folder.
        aliases: Legacy key spellings -> tree keys (the command line's table).
        carry_settings: A grid point that chooses another component (``designer=random``) keeps the parameters
            ``base`` sets for the component it replaces, where the new one has them (:func:`_carried`); without
            it, the point starts from the new component's defaults.

    Raises:
        ConfigError: If a grid point is not a valid configuration (the message names the point), two points map
            to the same folder, or a finished trial's folder holds other settings (a re-run must use the same
            settings; choose another ``out`` for new ones).
    """
    root = Path(out).resolve() / TRIALS_DIR
    keys = list(grid)
    trials: list[Trial] = []
    seen: dict[str, dict[str, Any]] = {}
    explicit = _explicit_component_settings(base) if carry_settings else {}
    for combo in itertools.product(*(grid[k] for k in keys)):
        given = dict(zip(keys, combo, strict=True))
        try:
            typed = typed_settings("--grid", given, aliases=aliases, base=base)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"--grid point {config_key(given)}: {exc}") from None
        params = {k: typed[_tree_key("--grid", k, aliases or {})] for k in keys}
        key = config_key(params)
        if key in seen:
            raise ConfigError(f"--grid points {seen[key]} and {params} map to the same folder {key!r}.")
        seen[key] = params
        carried = _carried(base, explicit, typed) if explicit else {}
        for seed in seeds:
            changes = {**carried, **typed, "seed": check_int("--seeds", seed, low=0), "name": f"seed_{seed}"}
            try:
                config = base.with_settings(changes, source=f"--grid point {key}")
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"--grid point {key}: {exc}") from None
            path = root / key / f"seed_{seed}"
            trials.append(Trial(key=key, params=params, seed=seed, config=config, path=path, given=given))
    for trial in trials:
        if trial.finished and (trial.path / CONFIG_FILE).is_file():
            stored = SimulationConfig.from_dict(read_json(trial.path / CONFIG_FILE)).settings()
            wanted = trial.config.settings()
            diff = sorted(k for k in wanted.keys() | stored.keys() if stored.get(k) != wanted.get(k))
            if diff:
                raise ConfigError(
                    f"{trial.path} is a finished trial with other settings ({', '.join(diff)}); re-run the sweep "
                    "with the same settings or choose another --out."
                )
    return trials


# ---------------------------------------------------------------------------------------------- trials


def run_trial(config: Mapping[str, Any], out: str) -> dict[str, Any]:
    """Run one trial in this process (the task both backends execute); never raises for a failed run.

    Args:
        config: ``SimulationConfig.to_dict()`` of the trial.
        out: The run folder (replaced if it holds an unfinished run).

    Returns:
        ``{"status": "ok", "summary": {metric: value}, "seconds": s}``, or ``{"status": "error",
        "error": "Type: message", "seconds": s}`` after writing the traceback to ``out/error.txt``.
    """
    from actionbank_env.experiment import run_simulation

    start = time.perf_counter()
    path = Path(out)
    try:
        result = run_simulation(SimulationConfig.from_dict(dict(config)), out=path, overwrite=True)
    except Exception as exc:  # a failed trial is data for the sweep table, not a reason to stop the sweep
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path / ERROR_FILE, traceback.format_exc())
        message = " ".join(str(exc).split()) or "(no message)"
        return {"status": "error", "error": f"{type(exc).__name__}: {message}", "seconds": time.perf_counter() - start}
    summary = {k: result.summary.get(k) for k in SWEEP_METRICS}
    return {"status": "ok", "summary": summary, "seconds": time.perf_counter() - start}


def _skipped(trial: Trial) -> dict[str, Any]:
    summary = read_json(trial.path / SUMMARY_FILE)
    return {"status": "skipped", "summary": {k: summary.get(k) for k in SWEEP_METRICS}, "seconds": 0.0}


TrialFn = Callable[[Mapping[str, Any], str], dict[str, Any]]
OnDone = Callable[[Trial, dict[str, Any]], None]


def _die_with_parent(parent: int) -> None:
    """Worker initializer: the worker is killed when the sweep process dies (even by SIGKILL), so no orphan goes on
    writing trial folders that a re-run may be replacing (Linux ``PR_SET_PDEATHSIG``; elsewhere a no-op)."""
    import sys

    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _run_local(trials: Sequence[Trial], workers: int, trial_fn: TrialFn, on_done: OnDone) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(trials)), mp_context=ctx, initializer=_die_with_parent, initargs=(os.getpid(),)
    ) as pool:
        futures = {pool.submit(trial_fn, t.config.to_dict(), str(t.path)): t for t in trials}
        for future in as_completed(futures):
            trial = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # the worker process died (e.g. out of memory); the trial is retried on re-run
                result = {"status": "error", "error": f"{type(exc).__name__}: {exc}", "seconds": float("nan")}
            on_done(trial, result)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "--backend ray") from None
    return ray


def _run_ray(trials: Sequence[Trial], workers: int, address: str | None, trial_fn: TrialFn, on_done: OnDone) -> None:
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        if address is not None:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(trial_fn)
        refs = {remote.remote(t.config.to_dict(), str(t.path)): t for t in trials}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            trial = refs[done[0]]
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayError as exc:  # worker crash or task error outside run_trial's try
                message = " ".join(str(exc).split())[:500]
                result = {"status": "error", "error": f"{type(exc).__name__}: {message}", "seconds": float("nan")}
            on_done(trial, result)
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------------------------------------- statistics


def mean_ci(values: Iterable[float | None]) -> tuple[float, float, int]:
    """Mean, half-width of the two-sided 95 % t-interval and count of the finite values (``None`` and non-finite
    values are left out; ``nan`` half-width for fewer than 2 values). The one implementation of the interval that
    ``sweep`` and ``benchmark`` report.

    Example:
        >>> m, h, n = mean_ci([1.0, 2.0, 3.0, None, float("nan")])
        >>> m, round(h, 4), n
        (2.0, 2.4841, 3)
    """
    import numpy as np

    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan, 0
    if x.size < 2:
        return float(x.mean()), math.nan, 1
    from scipy import stats

    half = float(stats.t.ppf(0.975, df=x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return float(x.mean()), half, int(x.size)


def paired_difference(values: Mapping[int, float], baseline: Mapping[int, float]) -> tuple[float, float, int]:
    """:func:`mean_ci` of ``values[s] - baseline[s]`` over the seeds ``s`` both have (a pair with a non-finite side
    is left out): the paired comparison of two configurations run on the same seeds.

    Example:
        >>> m, h, n = paired_difference({0: 0.3, 1: 0.5, 2: 0.4, 7: 1.0}, {0: 0.1, 1: 0.2, 2: 0.3})
        >>> round(m, 6), round(h, 4), n
        (0.2, 0.2484, 3)
    """
    common = sorted(set(values) & set(baseline))
    return mean_ci([values[s] - baseline[s] for s in common])


def summarize(
    records: Sequence[Mapping[str, Any]], baseline_of: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Mean ± 95% CI (t-interval over seeds) of :data:`SWEEP_METRICS` per configuration, and with ``baseline_of``
    each configuration's paired difference to its baseline.

    Args:
        records: Per-trial records with ``key``, ``params``, ``seed``, ``status`` and, when it succeeded (``ok`` or
            ``skipped``), ``summary``.
        baseline_of: Configuration key -> the key of the configuration it is compared with (itself for the
            baseline); ``None`` for no comparison.

    Returns:
        One row per configuration (first-seen order): ``config``, the grid values, ``n_trials``, ``n_ok``,
        ``n_failed`` and for each metric ``<m>_mean``, ``<m>_ci95`` (half-width) and ``<m>_n`` (finite values
        used; ``improvement_captured`` is undefined when the oracle gains nothing, hence a nanmean), plus
        ``improvement_captured_n_nan``. With ``baseline_of``: ``baseline`` (the compared configuration, ``""`` for
        the baseline itself) and ``<m>_diff_mean``, ``<m>_diff_ci95``, ``<m>_diff_n``: configuration minus baseline,
        seed by seed over the seeds both finished (:func:`paired_difference`).

    Example:
        >>> rows = summarize([{"key": "a", "params": {}, "status": "ok", "summary": {"bank_value": v}}
        ...                   for v in (1.0, 2.0, 3.0)])
        >>> rows[0]["bank_value_mean"], round(rows[0]["bank_value_ci95"], 4), rows[0]["improvement_captured_n_nan"]
        (2.0, 2.4841, 3)
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["key"], []).append(record)

    def per_seed(key: str, metric: str) -> dict[int, float]:
        out = {}
        for r in groups.get(key, []):
            value = r.get("summary", {}).get(metric) if r["status"] in ("ok", "skipped") else None
            if value is not None:
                out[int(r["seed"])] = float(value)
        return out

    rows = []
    for key, group in groups.items():
        ok = [r for r in group if r["status"] in ("ok", "skipped")]
        row: dict[str, Any] = {"config": key, **dict(group[0]["params"])}
        row.update(n_trials=len(group), n_ok=len(ok), n_failed=len(group) - len(ok))
        for metric in SWEEP_METRICS:
            raw = [r["summary"].get(metric) for r in ok]
            mean, half, n = mean_ci(None if v is None else float(v) for v in raw)
            row.update({f"{metric}_mean": mean, f"{metric}_ci95": half, f"{metric}_n": n})
            if metric == "improvement_captured":
                row["improvement_captured_n_nan"] = len(raw) - n
        if baseline_of is not None:
            other = baseline_of[key]
            row["baseline"] = "" if other == key else other
            for metric in SWEEP_METRICS:
                mean, half, n = (
                    (math.nan, math.nan, 0)
                    if other == key
                    else paired_difference(per_seed(key, metric), per_seed(other, metric))
                )
                row.update({f"{metric}_diff_mean": mean, f"{metric}_diff_ci95": half, f"{metric}_diff_n": n})
        rows.append(row)
    return rows


def _cell(mean: float, half: float, *, signed: bool = False) -> str:
    if not math.isfinite(mean):
        return "n/a"
    return (f"{mean:+.4f}" if signed else f"{mean:.4f}") + (f" ± {half:.4f}" if math.isfinite(half) else "")


def _aligned(heads: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(heads)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    lines = [line(heads)]
    lines.append("-" * len(lines[0]))
    lines.extend(line(cells) for cells in body)
    return lines


def format_table(rows: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, Any]] = ()) -> str:
    """The sweep table (mean ± 95% CI half-width over seeds), the paired differences to the baseline when the rows
    have them, then one line per failed trial."""
    heads = ["config", "ok/n", *SWEEP_METRICS]
    body = []
    for row in rows:
        cells = [str(row["config"]), f"{row['n_ok']}/{row['n_trials']}"]
        for metric in SWEEP_METRICS:
            cell = _cell(row[f"{metric}_mean"], row[f"{metric}_ci95"])
            if metric == "improvement_captured" and row["improvement_captured_n_nan"]:
                cell += f" ({row['improvement_captured_n_nan']} nan)"
            cells.append(cell)
        body.append(cells)
    lines = _aligned(heads, body)
    compared = [row for row in rows if row.get("baseline")]
    if compared:
        lines += ["", "paired differences, configuration minus its baseline on the same seeds (mean ± 95% CI):"]
        diff_body = []
        for row in compared:
            cells = [str(row["config"]), str(row["baseline"])]
            cells.append(str(min(row[f"{m}_diff_n"] for m in ("deployed_value", "bank_value"))))
            cells += [_cell(row[f"{m}_diff_mean"], row[f"{m}_diff_ci95"], signed=True) for m in SWEEP_METRICS]
            diff_body.append(cells)
        lines += _aligned(["config", "baseline", "pairs", *SWEEP_METRICS], diff_body)
    for f in failures:
        lines.append(f"FAILED {f['key']} seed {f['seed']}: {f['error']} (see {f['path']}/error.txt)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- the sweep


@dataclass
class SweepResult:
    """What :func:`run_sweep` produced.

    Attributes:
        path: The sweep folder.
        records: One record per trial (``key``, ``params``, ``seed``, ``path``, ``status`` of ``ok``,
            ``skipped`` or ``error``, ``summary`` or ``error``, ``seconds``), in plan order.
        rows: :func:`summarize` of the records (the rows of ``sweep.csv``).
        note: What the seeds vary (:func:`world_seed_note`), printed above the table.
        baseline: The baseline's grid values (``{}`` without a baseline).
    """

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""
    baseline: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """The records of the trials that failed."""
        return [r for r in self.records if r["status"] == "error"]

    def table(self) -> str:
        """The printed table (what the seeds vary, mean ± 95% CI per configuration, the paired differences to the
        baseline, then the failed trials)."""
        table = format_table(self.rows, self.failures)
        return f"seeds: {self.note}\n{table}" if self.note else table


def resolve_baseline(
    grid: Mapping[str, Sequence[Any]], baseline: Mapping[str, Any] | None, *, aliases: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The baseline's values keyed as the grid spells its axes (``{}`` for no baseline).

    A baseline names one value of some grid axes (``{"designer": "random"}``); each configuration is compared with
    the grid point that has these values and its own values on the other axes.

    Raises:
        ConfigError: For a baseline without a grid, a key that is no grid axis, an axis given twice, or a value
            that is not one of the axis's grid values.

    Example:
        >>> resolve_baseline({"optimizer": ("generative", "keep"), "users": ("10", "20")}, {"designer": "keep"},
        ...                  aliases={"optimizer": "designer"})
        {'optimizer': 'keep'}
    """
    if not baseline:
        return {}
    aliases = aliases or {}
    if not grid:
        raise ConfigError(f"--baseline needs a --grid (the baseline is one of its points), got {dict(baseline)}.")
    axes = {_tree_key("", k, aliases): k for k in grid}
    out: dict[str, Any] = {}
    for given, value in baseline.items():
        key = str(given).strip().replace("-", "_")
        axis = axes.get(_tree_key("", key, aliases))
        if axis is None:
            raise ConfigError(f"--baseline key must be a --grid axis ({', '.join(grid)}), got {given!r}.")
        if axis in out:
            raise ConfigError(f"--baseline {axis} must be given once, got it twice.")
        values = tuple(grid[axis])
        match = [v for v in values if v == value or (isinstance(value, str) and str(v) == value.strip())]
        if not match:
            shown = ", ".join(map(str, values))
            raise ConfigError(f"--baseline {given} must be one of its --grid values ({shown}), got {value!r}.")
        out[axis] = match[0]
    return out


def _baseline_of(trials: Sequence[Trial], baseline: Mapping[str, Any]) -> dict[str, str] | None:
    """Configuration key -> its baseline's key (the grid point with the baseline's values on the baseline's axes)."""
    if not baseline:
        return None

    def point(given: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
        return tuple((k, repr(v)) for k, v in given.items())

    keys = {point(t.given): t.key for t in trials}
    return {t.key: keys[point({**t.given, **baseline})] for t in trials}


def check_out_folder(out: str | os.PathLike[str], *, what: str, marks: Iterable[str]) -> None:
    """Refuse ``--out`` when it is a file, or a non-empty folder holding none of ``marks`` (names this kind of
    folder writes): a sweep or benchmark resumes in its own folder but never writes into someone else's.

    Raises:
        ConfigError: Naming the folder and what it lacks.
    """
    path = Path(out)
    if path.is_file():
        raise ConfigError(f"--out {path} is a file, not a folder.")
    if path.is_dir():
        names = {entry.name for entry in path.iterdir()}
        if names and not names & set(marks):
            raise ConfigError(
                f"--out {path} is a non-empty folder that is not a {what} folder (it has none of {sorted(marks)}); "
                f"give a new or empty folder, or a {what} folder to resume."
            )


def run_sweep(
    base: SimulationConfig,
    *,
    grid: Mapping[str, Sequence[Any]],
    seeds: Sequence[int],
    out: str | os.PathLike[str],
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    trial_fn: TrialFn = run_trial,
    on_trial_done: OnDone | None = None,
    aliases: Mapping[str, str] | None = None,
    baseline: Mapping[str, Any] | None = None,
    carry_settings: bool = True,
    on_start: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every (grid point, seed) trial not finished yet and write ``sweep.csv`` and ``sweep.json``.

    Args:
        base: Settings shared by all trials (its ``seed`` is replaced by each of ``seeds``).
        grid: Setting key -> values (typed, or text); the trials are the cartesian product with ``seeds``.
        seeds: The seeds.
        out: The sweep folder (created; re-using it skips the finished trials).
        backend: ``local`` (a spawn process pool of ``workers``) or ``ray`` (one Ray task per trial).
        workers: Parallel trials (``local``) or CPUs of the local Ray started when no ``address`` is given.
        address: A running Ray cluster (``ray``; e.g. ``auto`` or ``ray://host:10001``).
        trial_fn: The task run per trial (a picklable top-level function; :func:`run_trial`).
        on_trial_done: Called in this process as each trial finishes (e.g. to print progress).
        aliases: Legacy key spellings -> tree keys (the command line's table).
        baseline: Grid axis -> value (:func:`resolve_baseline`): every configuration's paired difference to it,
            seed by seed (a seed is the same world for both unless ``world_seed`` is pinned or a grid axis).
        carry_settings: As :func:`plan_trials` (a grid point that chooses another component keeps the parameters
            ``base`` gives the one it replaces).
        on_start: Called with :func:`world_seed_note` once everything is checked, before the folder is created.

    Raises:
        ConfigError: For a bad backend, workers, baseline, grid point or a finished trial with other settings
            (before any folder is created).
        MissingExtraError: ``backend="ray"`` without Ray installed (an ImportError naming the ``ray`` extra).
    """
    check_choice("--backend", backend, BACKENDS)
    check_int("--workers", workers, low=1, high=1024)
    if address is not None and backend != "ray":
        raise ConfigError(f"--address needs --backend ray, got --backend {backend}.")
    if not seeds:
        raise ConfigError("--seeds must list at least one seed, got none.")
    check_out_folder(out, what="sweep", marks=(SWEEP_CSV, SWEEP_JSON, TRIALS_DIR))
    resolved = resolve_baseline(grid, baseline, aliases=aliases)
    if backend == "ray":
        _import_ray()
    trials = plan_trials(base, grid, seeds, out, aliases=aliases, carry_settings=carry_settings)
    if on_start is not None:
        on_start(world_seed_note(base, grid))
    root = Path(out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    results: dict[Path, dict[str, Any]] = {}

    def done(trial: Trial, result: dict[str, Any]) -> None:
        results[trial.path] = result
        if result["status"] == "error":
            log.info("trial %s seed %d failed: %s", trial.key, trial.seed, result["error"])
        else:
            log.info("trial %s seed %d %s (%.1f s)", trial.key, trial.seed, result["status"], result["seconds"])
        if on_trial_done is not None:
            on_trial_done(trial, result)

    todo = []
    for trial in trials:
        if trial.finished:
            done(trial, _skipped(trial))
        else:
            todo.append(trial)
    log.info("sweep %s: %d trials, %d to run on %s", root, len(trials), len(todo), backend)
    if todo:
        if backend == "local":
            _run_local(todo, workers, trial_fn, done)
        else:
            _run_ray(todo, workers, address, trial_fn, done)
    records = []
    for trial in trials:
        result = results[trial.path]
        record = {"key": trial.key, "params": dict(trial.params), "seed": trial.seed, "path": str(trial.path)}
        records.append({**record, **result})
    rows = summarize(records, _baseline_of(trials, resolved))
    sweep = SweepResult(path=root, records=records, rows=rows, note=world_seed_note(base, grid), baseline=resolved)
    _write_outputs(sweep, base, grid, seeds, backend)
    return sweep


def _write_outputs(
    sweep: SweepResult, base: SimulationConfig, grid: Mapping[str, Sequence[Any]], seeds: Sequence[int], backend: str
) -> None:
    buffer = io.StringIO()
    columns = list(dict.fromkeys(k for row in sweep.rows for k in row))
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(sweep.rows)
    atomic_write_text(sweep.path / SWEEP_CSV, buffer.getvalue())
    baseline_key = next((row["config"] for row in sweep.rows if row.get("baseline") == ""), None)
    atomic_write_json(
        sweep.path / SWEEP_JSON,
        {
            "base_config": base.to_dict(),
            "grid": {k: list(v) for k, v in grid.items()},
            "seeds": list(seeds),
            "world_seed": {"mode": world_seed_mode(base, grid), "note": sweep.note},
            "baseline": {"values": sweep.baseline, "config": baseline_key} if sweep.baseline else None,
            "backend": backend,
            "metrics": list(SWEEP_METRICS),
            "configs": sweep.rows,
            "trials": sweep.records,
        },
    )


# ---------------------------------------------------------------------------------------------- command line


def world_seed_mode(base: SimulationConfig, grid: Mapping[str, Sequence[Any]]) -> str:
    """``"grid"`` (world_seed is a grid axis), ``"per_seed"`` (unset: each seed is its own world) or ``"pinned"``.

    Example:
        >>> world_seed_mode(SimulationConfig(), {}), world_seed_mode(SimulationConfig(), {"world_seed": (1, 2)})
        ('per_seed', 'grid')
    """
    if "world_seed" in grid:
        return "grid"
    return "per_seed" if base.run.world_seed is None else "pinned"


def world_seed_note(base: SimulationConfig, grid: Mapping[str, Sequence[Any]]) -> str:
    """What the seeds of a sweep vary: the world too (``world_seed`` unset), or only the episode on pinned worlds.

    Example:
        >>> world_seed_note(SimulationConfig(), {}).split(";")[0]
        "world_seed follows each trial's seed: every seed is another world"
    """
    mode = world_seed_mode(base, grid)
    if mode == "grid":
        return (
            f"world_seed is a grid axis ({', '.join(map(str, grid['world_seed']))}): each configuration runs on "
            "one world; the 95% CIs over seeds are run-to-run variance on that world."
        )
    if mode == "per_seed":
        return (
            "world_seed follows each trial's seed: every seed is another world; the 95% CIs mix world-to-world "
            "and run-to-run variance (pin the world with --world-seed N to separate them); paired differences "
            "compare configurations on the same worlds."
        )
    return (
        f"world_seed is pinned to {base.run.world_seed}: every trial runs on that world; the 95% CIs over seeds "
        "are run-to-run variance only."
    )


#: ``actionbank sweep``'s own arguments (everything else on its command line is a setting flag).
SWEEP_ARGS = frozenset({"command", "seeds", "grid", "settings", "baseline", "backend", "address", "workers", "out"})
#: Settings each trial sets itself, so a sweep has no flag for them.
SWEEP_FIXED = ("seed", "name", "results_dir")


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """The sweep's own flags of ``actionbank sweep`` (``cli.py`` adds ``--config`` and the settings flags)."""
    parser.add_argument("--seeds", required=True, help="seeds like '0-9' or '0,3,5' (each trial's --seed)")
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="a SimulationConfig field and its values (repeatable; the trials are the product x seeds)",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a setting shared by every trial (repeatable; the settings flags below do the same); sweeps default to "
        "report=false tensorboard=false threads=1",
    )
    parser.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="the configuration the others are compared with, by a grid value (repeatable, e.g. designer=random): "
        "paired differences seed by seed, mean ± 95%% t-CI",
    )
    parser.add_argument("--backend", default="local", choices=BACKENDS, help="local process pool or Ray tasks")
    parser.add_argument("--address", default=None, help="Ray cluster address (--backend ray; default: a local Ray)")
    parser.add_argument("--workers", type=int, default=1, help="parallel trials / CPUs of the local Ray (default 1)")
    parser.add_argument(
        "--out", type=out_path, required=True, help="the sweep folder (re-run it to skip finished trials)"
    )


def parse_baseline(specs: Iterable[str]) -> dict[str, str]:
    """``["key=value", ...]`` (the ``--baseline`` flags) -> ``{key: "value"}``.

    Example:
        >>> parse_baseline(["optimizer=random"])
        {'optimizer': 'random'}
    """
    baseline: dict[str, str] = {}
    for spec in specs:
        key, text = _split_assignment("--baseline", spec)
        if key in baseline:
            raise ConfigError(f"--baseline {key} must be given once, got it twice.")
        baseline[key] = text.strip()
    return baseline


def sweep_base(
    settings: Mapping[str, str],
    *,
    flags: Mapping[str, Any] | None = None,
    config: SimulationConfig | None = None,
    aliases: Mapping[str, str] | None = None,
) -> SimulationConfig:
    """The settings every trial shares: defaults, then the ``--config`` file, then the sweep's defaults
    (:data:`TRIAL_DEFAULTS`), then the settings flags, then ``--set``.

    Args:
        settings: The ``--set`` values as text (:func:`parse_settings`).
        flags: The settings flags, typed (tree keys; what ``actionbank simulate`` takes).
        config: The ``--config`` file's settings.
        aliases: Legacy key spellings -> tree keys.

    Raises:
        ConfigError: For a setting given both as a flag and with ``--set``, for ``seed``, ``name`` or
            ``results_dir`` (each trial sets them), or an invalid configuration.

    Example:
        >>> sweep_base({"users": "10"}, flags={"iterations": 2}, aliases={"users": "users_per_iteration"}).settings()[
        ...     "users_per_iteration"]
        10
    """
    flags = dict(flags or {})
    fixed = sorted(k for k in flags if k in SWEEP_FIXED)
    if fixed:
        raise ConfigError(f"--{fixed[0].replace('_', '-')} must not be given to a sweep: each trial sets it itself.")
    start = (config or SimulationConfig()).with_settings(
        {k: v for k, v in TRIAL_DEFAULTS.items() if k not in flags}, source="sweep defaults"
    )
    if flags:
        start = start.with_settings(flags, source="flags")
    typed = typed_settings("--set", settings, aliases=aliases, base=start)
    both = sorted(set(typed) & set(flags))
    if both:
        raise ConfigError(
            f"--set {both[0]} must not repeat a settings flag: --{both[0].replace('_', '-')} gives it too."
        )
    return start.with_settings(typed, source="--set") if typed else start


def progress_printer(total: int) -> OnDone:
    """A ``progress`` callback that prints ``[done/total] key seed S: status`` to stderr for each finished trial."""
    import sys

    count = 0

    def progress(trial: Trial, result: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        status = result["status"] if result["status"] != "error" else f"FAILED: {result['error']}"
        print(f"[{count}/{total}] {trial.key} seed {trial.seed}: {status}", file=sys.stderr, flush=True)

    return progress


def sweep_main(
    args: argparse.Namespace,
    *,
    aliases: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    config: SimulationConfig | None = None,
) -> int:
    """Run ``actionbank sweep``: print what the seeds vary and one line per finished trial (stderr), then the table
    and the folder. Every input is checked before the sweep folder is created.

    Args:
        args: The parsed sweep arguments (:func:`add_sweep_arguments`).
        aliases: Legacy key spellings -> tree keys.
        flags: The settings flags (typed, tree keys), as ``actionbank simulate`` takes them.
        config: The ``--config`` file's settings.

    Returns:
        0 when every trial succeeded, 1 when some failed (their errors are in the table).
    """
    import sys

    aliases = aliases or {}
    seeds = parse_seeds(args.seeds)
    grid = parse_grid(args.grid)
    settings = parse_settings(args.settings)
    baseline = parse_baseline(getattr(args, "baseline", []))
    given = {_tree_key("", k, aliases) for k in settings} | set(flags or {})
    both = sorted(given & {_tree_key("", k, aliases) for k in grid})
    if both:
        raise ConfigError(f"--set (or a settings flag) and --grid must not both give {', '.join(both)}.")
    fixed = sorted({_tree_key("", k, aliases) for k in grid} & set(SWEEP_FIXED[1:]))
    if fixed:
        raise ConfigError(f"--grid key must not be {fixed[0]!r}: each trial sets it itself.")
    base = sweep_base(settings, flags=flags, config=config, aliases=aliases)
    total = math.prod(len(v) for v in grid.values()) * len(seeds)
    progress = progress_printer(total)

    sweep = run_sweep(
        base,
        grid=grid,
        seeds=seeds,
        out=args.out,
        backend=args.backend,
        workers=args.workers,
        address=args.address,
        on_trial_done=progress,
        aliases=aliases,
        baseline=baseline,
        # after every check, so a refusal is one line with no note above it
        on_start=lambda note: print(f"sweep: {note}", file=sys.stderr, flush=True),
    )
    print(sweep.table())
    print(f"sweep: {sweep.path} ({SWEEP_CSV}, {SWEEP_JSON})")
    return 1 if sweep.failures else 0
