"""``report.html`` with PNG plots for a run folder (README, "The report").

:func:`write_report` reads only the run's files (``simulation_config.json``, ``summary.json``, ``metrics.csv``,
``iteration_<t>/*``), so it works at the end of ``simulate`` and later on any finished or interrupted run. It
writes ``report.html`` and ``plots/engagement.png``, ``plots/bank_evolution.png`` and, when the run trained a
reward model, ``plots/calibration.png``. The page is self-contained (inline CSS, images by relative path, no
scripts, no network), every text from the run is HTML-escaped (bank texts may come from an LLM), and the same
folder always gives the same HTML. matplotlib is imported inside the plotting code and drives the Agg canvas
directly, never ``pyplot``.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actionbank_env.core.actions import bank_actions
from actionbank_env.core.io import atomic_write, atomic_write_text, read_json
from actionbank_env.errors import ConfigError, DataError
from actionbank_env.results import (
    ALGORITHM_FILE,
    BANK_FILE,
    CONFIG_FILE,
    EVALUATION_FILE,
    META_FILE,
    METRICS_FILE,
    NEW_BANK_FILE,
    OBSERVATIONS_FILE,
    PLOTS_DIR,
    REPORT_FILE,
    SUMMARY_FILE,
    WORLD_CARD_FILE,
    RunFolder,
    iteration_dir,
    iteration_file,
    read_log_columns,
)

__all__ = ["GLOSSARY", "glossary_entry", "write_report"]

log = logging.getLogger(__name__)

_TOP_ACTIONS = 20
_LABEL_CHARS = 48
_DPI = 110
# Main-run series: (key in the per-iteration rows, legend label, matplotlib style).
_ENGAGEMENT = (
    ("deployed_value", "deployed value", {"color": "C0", "marker": "o", "linewidth": 2.2}),
    ("bank_value", "bank value (perfect targeting)", {"color": "C1", "marker": "s"}),
    ("new_bank_value", "new bank value (bank t+1)", {"color": "C2", "marker": "^"}),
    ("oracle_bank_value", "oracle bank value", {"color": "C3", "marker": "D", "linestyle": "--"}),
    ("company_reward", "company realised CTR", {"color": "0.45", "marker": "x", "linestyle": ":"}),
    (
        "random_targeting_value",
        "random targeting of bank t (uniform over its texts)",
        {"color": "0.3", "marker": "v", "linestyle": "-.", "linewidth": 1.0},
    ),
)
#: The summary table's first rows, in this order (the rest follow alphabetically).
_SUMMARY_FIRST = ("deployed_value", "bank_value", "oracle_bank_value", "improvement_captured", "delta_value")
#: Settings that name where and how a run is written, not what it simulates (never a --compare label).
_BOOKKEEPING = frozenset({"name", "results_dir", "report", "tensorboard", "threads", "tracker", "tracking_uri"})
_COMPONENTS = ("agent", "designer", "designer.reward_model")
#: What each key of the summary and per-iteration tables means (the report's glossary).
GLOSSARY: dict[str, str] = {
    "deployed_value": "mean true click probability of what the company's targeting agent served in the last "
    "iteration's campaign (the engagement it got, in expectation)",
    "bank_value": "mean true click probability of the deployed bank under perfect targeting (each evaluation user "
    "gets the bank's best text for them)",
    "oracle_bank_value": "the same for the bank a ground-truth greedy designer picks from the same candidate pool "
    "(what the pool allowed)",
    "improvement_captured": "(new_bank_value - bank_value) / (oracle_bank_value - bank_value): the share of the "
    "pool's headroom the designer took (undefined when the oracle gains nothing)",
    "delta_value": "ΔV = new_bank_value - bank_value: what the proposed bank adds under perfect targeting",
    "new_bank_value": "the same as bank_value for the bank the designer proposes next (bank t+1)",
    "company_reward": "observed click rate of the company's campaign (clicks / emails; a noisy deployed_value)",
    "regret": "per user, the best true click probability in the bank minus that of what was served (campaign users)",
    "algorithm_expected_value": "the value of the proposed bank that the designer's own reward model predicted "
    "(compare with new_bank_value: the optimizer's curse)",
    "final_bank_size": "texts in the bank proposed after the last iteration",
    "iterations": "completed iterations (one campaign and one proposal each)",
    "n_iterations": "completed iterations (one campaign and one proposal each)",
    "random_targeting_value": "mean true click probability of the deployed bank when each user gets a text "
    "uniformly at random (the floor a targeting agent should beat; campaign users)",
    "env/company_reward": "company_reward of iteration t",
    "env/deployed_value": "deployed_value of iteration t",
    "env/regret": "regret of iteration t",
    "optimizer/bank_value": "bank_value of iteration t (bank t)",
    "optimizer/new_bank_value": "new_bank_value of iteration t (bank t+1)",
    "optimizer/oracle_bank_value": "oracle_bank_value of iteration t",
    "optimizer/improvement_captured": "improvement_captured of iteration t",
    "optimizer/delta_value": "delta_value of iteration t",
    "optimizer/expected_value": "algorithm_expected_value of iteration t",
    "optimizer/bank_size": "texts in the deployed bank t",
    "fidelity/spearman": "rank correlation of the reward model's predictions with the true click probabilities on "
    "held-out users x candidates (1: same order)",
    "fidelity/pearson": "linear correlation of predicted and true click probabilities on the same pairs",
    "fidelity/auc": "how well the predictions rank clicks drawn from the truth (0.5: chance; read it against "
    "fidelity/auc_ceiling)",
    "fidelity/auc_ceiling": "the AUC of the true probabilities on the same drawn clicks: the best any model can reach",
    "fidelity/best_action_agreement": "share of users whose predicted best candidate is their true best one",
    "fidelity/ece": "expected calibration error (equal-mass bins): mean |predicted - true| probability per bin",
    "fidelity/log_loss": "cross-entropy of the predictions against the true probabilities",
    "fidelity/log_loss_ceiling": "the same for the true probabilities themselves (the floor of log_loss)",
    "fidelity/mean_predicted": "mean predicted click probability on the held-out pairs",
    "fidelity/mean_true": "mean true click probability on the held-out pairs",
    "fidelity/n_actions": "candidates in the fidelity sample",
    "fidelity/n_pairs": "users x candidates scored for fidelity",
    "fidelity/n_users": "held-out users in the fidelity sample",
    "bank/added": "texts added to bank t to make bank t+1",
    "bank/retired": "texts of bank t left out of bank t+1",
    # Lifetimes (retention.horizon set): every campaign ran as subscribers' lifetimes.
    "retention_horizon": "weeks of each subscriber's lifetime (every campaign ran as lifetimes: retention.horizon)",
    "lifetime_clicks_per_subscriber": "clicks per subscriber over its lifetime in the last iteration (realised)",
    "unsubscribe_rate": "share of the last campaign's subscribers who unsubscribed before the horizon",
    "weeks_subscribed": "mean weeks a subscriber of the last campaign stayed (emails it received)",
    "lifetime/expected_clicks_per_subscriber": "expected clicks per subscriber over its lifetime in iteration t "
    "(with lifetimes, the deployed value)",
    "lifetime/clicks_per_subscriber": "clicks per subscriber over its lifetime in iteration t (realised)",
    "lifetime/unsubscribe_rate": "share of iteration t's subscribers who unsubscribed before the horizon",
    "lifetime/weeks_subscribed": "mean weeks iteration t's subscribers stayed (emails per subscriber)",
}
#: Key families without an entry of their own.
_GLOSSARY_FAMILIES = {
    "train/": "a number the company's targeting agent returned from update(), averaged over the campaign's "
    "mini-batches",
    "fidelity/": "a number of the reward model's fidelity report (ground_truth_evaluation.json)",
    "optimizer/": "a number the designer reported for its proposal",
    "env/": "a number of the iteration's campaign",
    "time/": "wall-clock time",
}


def glossary_entry(key: str) -> str:
    """What a key of the report's tables means (its own entry, else its family's).

    Example:
        >>> glossary_entry("train/td_loss").startswith("a number the company's targeting agent returned")
        True
    """
    if key in GLOSSARY:
        return GLOSSARY[key]
    family = next((text for prefix, text in _GLOSSARY_FAMILIES.items() if key.startswith(prefix)), None)
    return family if family is not None else "a number recorded by the run (no glossary entry)"


_BELOW = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.14), "ncol": 2, "fontsize": 8, "frameon": False}
_COMPARE_COLORS = ("C4", "C5", "C6", "C8", "C9", "C7")


@dataclass
class _Run:
    """What the report needs from one run folder (rows indexed by iteration)."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any] | None
    meta: dict[str, Any]
    iterations: list[int]
    evaluations: dict[int, dict[str, Any]]
    metrics_header: list[str] = field(default_factory=list)
    metrics_rows: list[dict[str, str]] = field(default_factory=list)
    reward_model: str | None = None

    @property
    def optimizer(self) -> str:
        return str(self.config.get("designer", "unknown"))

    def series(self, key: str) -> list[float | None]:
        """One number per iteration (``None`` where missing or not finite)."""
        out: list[float | None] = []
        for t in self.iterations:
            value = self.evaluations[t].get(key)
            if value is None and key == "company_reward":
                value = self._metric(t, "env/company_reward")
            out.append(_finite(value))
        return out

    def _metric(self, t: int, column: str) -> Any:
        for row in self.metrics_rows:
            if _as_int(row.get("step")) == t:
                return row.get(column)
        return None


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, else ``None``.

    Example:
        >>> _finite("0.5"), _finite(""), _finite(None), _finite(float("nan"))
        (0.5, None, None, None)
    """
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _as_int(value: Any) -> int | None:
    f = _finite(value)
    return int(f) if f is not None and f.is_integer() else None


def _fmt(value: Any) -> str:
    """A table cell: floats to 4 significant decimals, missing values as ``n/a``, containers as JSON.

    Example:
        >>> [_fmt(v) for v in (0.123456, 10.0, None, float("nan"), 3, True, "x", [1, 2])]
        ['0.1235', '10', 'n/a', 'n/a', '3', 'True', 'x', '[1, 2]']
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}" if abs(value) >= 1 else f"{value:.4f}"
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} must be a UTF-8 CSV file: {type(exc).__name__}: {str(exc)[:200]}") from None


def _load_run(path: str | os.PathLike[str], *, role: str) -> _Run:
    """Read what the report uses from a run folder; ``ConfigError`` if it is not one or has no iteration."""
    if not Path(path).is_dir():
        raise ConfigError(f"{role} {os.fspath(path)!r} is not a folder.")
    folder = RunFolder.open(path)
    root = folder.path
    iterations = folder.iterations()
    if not iterations:
        raise ConfigError(f"{role} {root} has no iteration_<t>/{EVALUATION_FILE}; nothing to report.")
    evaluations = {t: folder.read_json(iteration_file(t, EVALUATION_FILE)) for t in iterations}
    summary = folder.read_json(SUMMARY_FILE) if folder.exists(SUMMARY_FILE) else None
    meta = folder.read_json(META_FILE) if folder.exists(META_FILE) else {}
    run = _Run(root, _settings(folder), summary, meta, iterations, evaluations)
    if folder.exists(METRICS_FILE):
        run.metrics_header, run.metrics_rows = _read_csv(root / METRICS_FILE)
    first = iteration_file(iterations[0], ALGORITHM_FILE)
    run.reward_model = folder.read_json(first).get("reward_model_type") if folder.exists(first) else None
    return run


def _settings(folder: RunFolder) -> dict[str, Any]:
    """The run's settings as ``{key: value}`` (any layout version); ``{}`` when they cannot be read back."""
    from actionbank_env.config import SimulationConfig
    from actionbank_env.errors import ActionBankError

    try:
        return SimulationConfig.from_dict(
            folder.read_json(CONFIG_FILE), source=str(folder.path / CONFIG_FILE)
        ).settings()
    except (ActionBankError, TypeError, ValueError) as exc:
        log.warning("%s: settings not readable (%s); the report names them 'unknown'.", folder.path / CONFIG_FILE, exc)
        return {}


def _bank_ids(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    return [str(a.get("id")) for a in bank_actions(read_json(path), source=str(path))]


def _evolution(run: _Run) -> list[dict[str, int | None]]:
    """Per iteration: deployed bank size and the kept / added / retired counts of bank t -> t+1."""
    out = []
    for t in run.iterations:
        folder = run.path / iteration_dir(t)
        old, new = _bank_ids(folder / BANK_FILE), _bank_ids(folder / NEW_BANK_FILE)
        evo = run.evaluations[t].get("bank_evolution")
        if isinstance(evo, Mapping) and {"kept_ids", "added_ids", "retired_ids"} <= evo.keys():
            kept, added, retired = len(evo["kept_ids"]), len(evo["added_ids"]), len(evo["retired_ids"])
        elif old is not None and new is not None:
            old_set, new_set = set(old), set(new)
            kept = sum(a in old_set for a in new)
            added, retired = len(new) - kept, sum(a not in new_set for a in old)
        else:
            kept = added = retired = None
        size = len(old) if old is not None else (kept + retired if kept is not None and retired is not None else None)
        out.append({"iteration": t, "bank_size": size, "kept": kept, "added": added, "retired": retired})
    return out


def _action_ctr(run: _Run) -> tuple[int, list[dict[str, Any]]]:
    """Impressions, clicks and CTR per action in the last iteration's log, top ``_TOP_ACTIONS`` by impressions."""
    t = run.iterations[-1]
    folder = run.path / iteration_dir(t)
    if not (folder / OBSERVATIONS_FILE).is_file():
        return t, []
    log_frame = read_log_columns(folder / OBSERVATIONS_FILE, ["action_id", "click"], dtype={"action_id": str})
    if log_frame.empty:
        return t, []
    grouped = log_frame.groupby("action_id", sort=True)["click"].agg(["size", "sum"])
    texts: dict[str, str] = {}
    if (folder / BANK_FILE).is_file():
        bank = bank_actions(read_json(folder / BANK_FILE), source=str(folder / BANK_FILE))
        texts = {str(a.get("id")): a["text"] for a in bank}
    per_action = run.evaluations[t].get("per_action")
    truth: dict[str, float | None] = {}
    if isinstance(per_action, Mapping):  # written by evaluation.py; the report never reads the ground truth
        truth = {str(i): _finite(v) for i, v in zip(per_action["ids"], per_action["true_ctr"], strict=True)}
    rows = [
        {
            "id": str(i),
            "text": texts.get(str(i), ""),
            "impressions": int(n),
            "clicks": float(c),
            "ctr": float(c) / int(n),
            "true_ctr": truth.get(str(i)),
        }
        for i, n, c in zip(grouped.index, grouped["size"], grouped["sum"], strict=True)
    ]
    rows.sort(key=lambda r: (-r["impressions"], r["id"]))
    return t, rows[:_TOP_ACTIONS]


# ---------------------------------------------------------------------------------------------- plotting


def _glyph_filter() -> Any:
    """A function mapping a string to one line the default font can draw (other characters are dropped)."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    try:
        charmap = set(FT2Font(font_manager.findfont(font_manager.FontProperties())).get_charmap())
    except (OSError, RuntimeError, ValueError):  # pragma: no cover - font lookup is environment-specific
        charmap = set()

    def clean(text: str) -> str:
        text = " ".join(str(text).split())
        if charmap:
            text = " ".join("".join(ch for ch in text if ord(ch) in charmap).split())
        return text.replace("$", r"\$")  # no mathtext from run texts

    return clean


def _short(text: str, limit: int = _LABEL_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis.

    Example:
        >>> _short("a  very\\nlong text", 10)
        'a very ...'
    """
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 4].rstrip() + " ..."


def _new_figure(width: float, height: float, *, layout: str | None = None) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> None:
    """Write ``fig`` as PNG cropped to its tight bounding box (``bbox_inches="tight"``), drawn once.

    ``savefig(bbox_inches="tight")`` draws the figure twice: a pass without rasterising (which also runs the
    constrained layout) to place every artist, then the real one. The layout is run here directly and the tight box
    measured on the figure as built (legends, titles, tick labels and annotations place themselves when measured),
    so ``savefig`` gets an explicit box and draws once: the same box, the same PNG.
    """
    from matplotlib import rcParams

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # Glyphs are filtered beforehand; this only guards fonts whose charmap lies.
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from", category=UserWarning)
        renderer = fig.canvas.get_renderer()
        engine = fig.get_layout_engine()
        if engine is not None:
            engine.execute(fig)
            fig.set_layout_engine(None)  # laid out: savefig must not lay it out (and draw) again
        bbox = fig.get_tightbbox(renderer).padded(rcParams["savefig.pad_inches"])
        fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches=bbox, metadata={"Software": None})
    data = buffer.getvalue()
    atomic_write(path, lambda handle: handle.write(data))


def _integer_x(ax: Any, iterations: Sequence[int]) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if iterations:
        ax.set_xlim(min(iterations) - 0.4, max(iterations) + 0.4)
    ax.grid(True, alpha=0.3)


def _plot_line(ax: Any, xs: Sequence[int], ys: Sequence[float | None], label: str, **style: Any) -> bool:
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
    if not pts:
        return False
    ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, **style)
    return True


def _differences(main: _Run, other: _Run) -> list[str]:
    """The settings ``other`` runs with that differ from ``main``'s (a component's parameters are left out when the
    component itself differs; where and how the run is written is never a difference)."""
    keys = list(dict.fromkeys([*main.config, *other.config]))
    changed = [k for k in keys if k not in _BOOKKEEPING and main.config.get(k) != other.config.get(k)]
    switched = [c for c in _COMPONENTS if c in changed]
    return [k for k in changed if not any(k.startswith(c + ".") for c in switched)]


def _setting_label(config: Mapping[str, Any], keys: Sequence[str], limit: int = 3) -> str:
    """``key=value, ...`` of ``keys`` (at most ``limit``, then ``+N more``).

    Example:
        >>> _setting_label({"designer": "keep", "seed": 4, "users_per_iteration": 9, "iterations": 2},
        ...                ["designer", "seed", "users_per_iteration", "iterations"])
        'designer=keep, seed=4, users_per_iteration=9 (+1 more)'
    """
    shown = ", ".join(f"{k}={_fmt(config.get(k))}" for k in keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def _compare_labels(main: _Run, others: Sequence[_Run]) -> tuple[str, list[str]]:
    """Legend names: this run's, then each compared run's by the settings that differ from this run (its folder
    name when none does, or where two labels would clash)."""
    diffs = [_differences(main, o) for o in others]
    labels = [_setting_label(o.config, d) if d else o.path.name for o, d in zip(others, diffs, strict=True)]
    clash = {n for n in labels if labels.count(n) > 1}
    labels = [f"{n} [{o.path.name}]" if n in clash else n for n, o in zip(labels, others, strict=True)]
    union = list(dict.fromkeys(k for d in diffs for k in d))
    main_label = f"this run ({_setting_label(main.config, union)})" if union else f"{main.optimizer} (this run)"
    return main_label, labels


def _plot_engagement(
    run: _Run, others: Sequence[_Run], main: str, labels: Sequence[str], clean: Any, path: Path
) -> list[str]:
    fig = _new_figure(9.5, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    drawn: list[str] = []
    for key, label, style in _ENGAGEMENT:
        name = f"{main}: {label}"
        if _plot_line(ax, run.iterations, run.series(key), clean(name), **style):
            drawn.append(name)
    for i, (other, label) in enumerate(zip(others, labels, strict=True)):
        color = _COMPARE_COLORS[i % len(_COMPARE_COLORS)]
        for key, what, style in (("deployed_value", "deployed value", "-"), ("bank_value", "bank value", "--")):
            name = f"{label}: {what}"
            if _plot_line(
                ax,
                other.iterations,
                other.series(key),
                clean(name),
                color=color,
                linestyle=style,
                marker="o" if style == "-" else "s",
                markersize=4,
                linewidth=1.3,
                alpha=0.9,
            ):
                drawn.append(name)
    all_iters = sorted({*run.iterations, *(t for o in others for t in o.iterations)})
    _integer_x(ax, all_iters)
    ax.set_xlabel("iteration t (bank t deployed)")
    ax.set_ylabel("mean click probability / CTR")
    ax.set_title("Engagement per iteration (ground truth on evaluation users)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    _save(fig, path)
    return drawn


def _legend_labels(fig: Any) -> list[str]:
    """The labels of every legend entry drawn on ``fig`` (what the figure caption lists)."""
    return list(dict.fromkeys(label for ax in fig.axes for label in ax.get_legend_handles_labels()[1]))


def _plot_bank(
    run: _Run, evolution: list[dict[str, int | None]], ctr: tuple[int, list[dict[str, Any]]], clean: Any, path: Path
) -> list[str]:
    t_last, actions = ctr
    height = max(4.5, 0.28 * len(actions) + 1.5)
    fig = _new_figure(13.0, height, layout="constrained")  # room for the long tick labels
    gs = fig.add_gridspec(1, 2, width_ratios=(1.0, 1.6))
    ax = fig.add_subplot(gs[0, 0])
    xs = [e["iteration"] for e in evolution]
    kept = [e["kept"] or 0 for e in evolution]
    added = [e["added"] or 0 for e in evolution]
    retired = [-(e["retired"] or 0) for e in evolution]
    ax.bar(xs, kept, width=0.6, color="0.75", label="kept in bank t+1")
    bars = ax.bar(xs, added, width=0.6, bottom=kept, color="C2", label="added")
    ax.bar_label(bars, labels=[f"+{a}" if a else "" for a in added], label_type="center", fontsize=8, color="white")
    bars = ax.bar(xs, retired, width=0.6, color="C3", label="retired")
    ax.bar_label(bars, labels=[f"{r}" if r else "" for r in retired], label_type="center", fontsize=8, color="white")
    _plot_line(
        ax,
        xs,
        [None if e["bank_size"] is None else float(e["bank_size"]) for e in evolution],
        "deployed bank t size",
        color="C0",
        marker="o",
        linewidth=2,
    )
    ax.axhline(0, color="black", linewidth=0.8)
    _integer_x(ax, xs)
    low = min([0, *retired])
    high = max([1, *(k + a for k, a in zip(kept, added, strict=True)), *(e["bank_size"] or 0 for e in evolution)])
    ax.set_ylim(low * 1.25 - 0.5, high * 1.15 + 0.5)
    ax.set_xlabel("iteration t")
    ax.set_ylabel("actions")
    ax.set_title("Bank size and changes t -> t+1")
    ax.legend(**_BELOW)

    ax2 = fig.add_subplot(gs[0, 1])
    if actions:
        ys = list(range(len(actions)))[::-1]
        ctrs = [a["ctr"] for a in actions]
        errs = [math.sqrt(max(c * (1 - c), 0.0) / a["impressions"]) for c, a in zip(ctrs, actions, strict=True)]
        truths = [a.get("true_ctr") for a in actions]
        has_truth = any(v is not None for v in truths)
        height = 0.4 if has_truth else 0.8
        observed_y = [y + height / 2 for y in ys] if has_truth else ys
        ax2.barh(
            observed_y,
            ctrs,
            height=height,
            xerr=errs,
            color="C0",
            alpha=0.8,
            error_kw={"elinewidth": 0.8, "ecolor": "0.3"},
            label="observed CTR in the log (± 1 s.e.)",
        )
        if has_truth:
            ax2.barh(
                [y - height / 2 for y in ys],
                [0.0 if v is None else v for v in truths],
                height=height,
                color="C1",
                alpha=0.85,
                label="true CTR of the same impressions (mean true click probability)",
            )
        ax2.set_yticks(ys, [clean(f"{a['id']}: {_short(a['text'])}") for a in actions], fontsize=7.5)
        tops = [max(c + e, v or 0.0) for c, e, v in zip(ctrs, errs, truths, strict=True)]
        for y, top, a in zip(ys, tops, actions, strict=True):
            ax2.annotate(
                f"n={a['impressions']}",
                (top, y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
                color="0.3",
            )
        ax2.set_xlim(0, max(tops) * 1.25 + 1e-3)
        ax2.set_xlabel("click-through rate")
        ax2.grid(True, axis="x", alpha=0.3)
        ax2.legend(**_BELOW)
    else:
        ax2.text(0.5, 0.5, "no observations logged", ha="center", va="center", transform=ax2.transAxes)
        ax2.set_axis_off()
    ax2.set_title(f"Per-action CTR in iteration {t_last}'s log (top {_TOP_ACTIONS} by impressions)", fontsize=10)
    drawn = _legend_labels(fig)
    _save(fig, path)
    return drawn


def _fidelity(run: _Run) -> dict[int, dict[str, Any]]:
    return {
        t: dict(run.evaluations[t]["reward_model_fidelity"])
        for t in run.iterations
        if isinstance(run.evaluations[t].get("reward_model_fidelity"), Mapping)
    }


def _plot_calibration(run: _Run, fid: dict[int, dict[str, Any]], clean: Any, path: Path) -> list[str]:
    unc = {
        t: run.evaluations[t]["uncertainty_calibration"]
        for t in run.iterations
        if isinstance(run.evaluations[t].get("uncertainty_calibration"), Mapping)
    }
    n_panels = 3 if unc else 2
    fig = _new_figure(5.0 * n_panels, 4.2)
    xs = sorted(fid)

    def col(src: dict[int, dict[str, Any]], key: str) -> list[float | None]:
        return [_finite(src[t].get(key)) for t in xs]

    ax = fig.add_subplot(1, n_panels, 1)
    for key, label, style in (
        ("spearman", "Spearman", {"color": "C0", "marker": "o"}),
        ("pearson", "Pearson", {"color": "C1", "marker": "s"}),
        ("auc", "AUC (drawn clicks)", {"color": "C2", "marker": "^"}),
        ("auc_ceiling", "AUC ceiling (true probs)", {"color": "C2", "linestyle": "--"}),
        ("best_action_agreement", "best-action agreement", {"color": "C4", "marker": "D"}),
    ):
        _plot_line(ax, xs, col(fid, key), clean(label), **style)
        if key == "auc_ceiling" and any(v is not None for v in col(fid, "auc")):
            # an AUC reads between chance (0.5) and its ceiling: the three lines are drawn together
            ax.axhline(0.5, color="C2", linestyle=":", linewidth=1.2, label="AUC chance (0.5)")
    _integer_x(ax, xs)
    ax.set_ylim(min(0.0, *(v for k in ("spearman", "pearson") for v in col(fid, k) if v is not None)) - 0.05, 1.05)
    ax.set_xlabel("iteration t")
    ax.set_title("Reward model vs truth: ranking")
    ax.legend(**_BELOW)

    ax = fig.add_subplot(1, n_panels, 2)
    _plot_line(ax, xs, col(fid, "ece"), "ECE (equal-mass bins)", color="C3", marker="o")
    _plot_line(ax, xs, col(fid, "mean_predicted"), "mean predicted P(click)", color="C0", marker="s")
    _plot_line(ax, xs, col(fid, "mean_true"), "mean true P(click)", color="black", linestyle="--", marker="x")
    _integer_x(ax, xs)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("iteration t")
    ax.set_title("Reward model vs truth: calibration")
    ax.legend(**_BELOW)

    if unc:
        ux = sorted(unc)
        ax = fig.add_subplot(1, n_panels, 3)
        _plot_line(
            ax, ux, [_finite(unc[t].get("coverage_95")) for t in ux], "95% interval coverage", color="C0", marker="o"
        )
        _plot_line(
            ax,
            ux,
            [_finite(unc[t].get("spearman_std_error")) for t in ux],
            "Spearman(std, |error|)",
            color="C1",
            marker="s",
        )
        ax.axhline(0.95, color="0.5", linestyle=":", linewidth=1, label="nominal 0.95")
        _integer_x(ax, ux)
        ax.set_xlabel("iteration t")
        ax.set_title("Predictive uncertainty")
        ax.legend(**_BELOW)
    fig.subplots_adjust(wspace=0.25)
    drawn = _legend_labels(fig)
    _save(fig, path)
    return drawn


# ---------------------------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.1em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.kv { columns: 2; } .note { background: #fff8e1; border-left: 4px solid #f0c36d; padding: 0.5em 0.8em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; } td.text { max-width: 60em; white-space: pre-wrap; }
.scroll { overflow-x: auto; max-width: 100%; } .scroll th { white-space: nowrap; }
dl.glossary dt { font-family: monospace; margin-top: 0.4em; } dl.glossary dd { margin-left: 2em; color: #333; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: Any) -> str:
    text = _fmt(value)
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{_e(text)}</td>' if numeric else f"<td>{_e(text)}</td>"


def _kv_table(data: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th>{_cell(data[k])}</tr>" for k in sorted(data))
    return f"<table>{rows}</table>"


def _summary_order(keys: Sequence[str]) -> list[str]:
    """The summary table's rows: :data:`_SUMMARY_FIRST` (what a reader looks for first), then the rest by name.

    Example:
        >>> _summary_order(["regret", "bank_value", "company_reward", "deployed_value"])
        ['deployed_value', 'bank_value', 'company_reward', 'regret']
    """
    return [k for k in _SUMMARY_FIRST if k in keys] + sorted(k for k in keys if k not in _SUMMARY_FIRST)


def _summary_table(summary: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}
    rows = "".join(f"<tr><th>{_e(k)}</th>{_cell(shown[k])}</tr>" for k in _summary_order(list(shown)))
    return f'<table id="summary">{rows}</table>'


def _iteration_columns(run: _Run) -> list[str]:
    if run.metrics_rows:
        return [c for c in run.metrics_header if c != "step"]
    return list(_FILE_COLUMNS)


#: The per-iteration table's columns when the run has no metrics.csv (read from the iteration files).
_FILE_COLUMNS = (
    "env/company_reward",
    "env/deployed_value",
    "env/regret",
    "optimizer/bank_value",
    "optimizer/new_bank_value",
    "optimizer/oracle_bank_value",
    "optimizer/improvement_captured",
)


def _glossary(keys: Sequence[str]) -> str:
    """A definition list of ``keys`` (each with an ``id`` to link to)."""
    items = "".join(
        f'<dt id="glossary-{_e(k)}">{_e(k)}</dt><dd>{_e(glossary_entry(k))}</dd>' for k in dict.fromkeys(keys)
    )
    return f'<dl class="glossary">{items}</dl>'


def _iteration_table(run: _Run, evolution: list[dict[str, int | None]]) -> str:
    evo = {e["iteration"]: e for e in evolution}
    columns = _iteration_columns(run)
    if run.metrics_rows:
        rows = {_as_int(r.get("step")): {c: _finite(r.get(c)) for c in columns} for r in run.metrics_rows}
    else:  # no metrics.csv: the same numbers from the iteration files
        keys = [c.split("/", 1)[1] for c in columns]
        rows = {
            t: {c: v for c, v in zip(columns, (run.series(k)[i] for k in keys), strict=True)}
            for i, t in enumerate(run.iterations)
        }
    head = "<tr><th>iteration</th>" + "".join(f"<th>{_e(c)}</th>" for c in columns)
    head += "<th>bank/added</th><th>bank/retired</th></tr>"
    body = []
    for t in sorted({*run.iterations, *(k for k in rows if k is not None)}):
        row = rows.get(t, {})
        cells = "".join(_cell(row.get(c)) for c in columns)
        e = evo.get(t, {})
        body.append(
            f'<tr id="iteration-{t}"><td class="num">{t}</td>{cells}{_cell(e.get("added"))}'
            f"{_cell(e.get('retired'))}</tr>"
        )
    # A run logs a column per metric (20 and more): the table scrolls sideways inside the page instead of widening it.
    return f'<div class="scroll"><table id="iterations">{head}{"".join(body)}</table></div>'


#: Estimators shown in the report's off-policy table (all of them are in ground_truth_evaluation.json).
_OPE_SHOWN = ("dm", "switch_dr", "snmips")


def _ope_table(run: _Run) -> str:
    """Each proposal's pre-deployment estimate (``"ope"`` of ground_truth_evaluation.json) beside its truth."""
    rows = []
    for i, t in enumerate(run.iterations):
        ope = run.evaluations[t].get("ope")
        if not isinstance(ope, dict):
            continue
        cells = []
        for name in _OPE_SHOWN:
            est = ope.get("estimates", {}).get(name, {})
            value, low, high = (_finite(est.get(k)) for k in ("value", "ci_low", "ci_high"))
            text = "" if value is None else f"{value:.4f} [{_fmt(low)}, {_fmt(high)}]"
            cells.append(f'<td class="num">{_e(text)}</td>')
        deployed = run.series("deployed_value")[i + 1] if i + 1 < len(run.iterations) else None
        rows.append(
            f'<tr><td class="num">{t}</td>{"".join(cells)}{_cell(_finite(ope.get("truth")))}'
            f"{_cell(_finite(ope.get('share_on_new_actions')))}{_cell(deployed)}</tr>"
        )
    if not rows:
        return '<p class="note">No off-policy estimates in this run.</p>'
    head = (
        "<tr><th>iteration</th>"
        + "".join(f"<th>{_e(n)} [95% interval]</th>" for n in _OPE_SHOWN)
        + "<th>truth</th><th>share on new texts</th><th>deployed value, next iteration</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _same_logs_section(run: _Run) -> list[str]:
    """The evaluation-only reference on the run's own logs (``run.same_logs_reference``), or nothing without it."""
    rows = []
    for t in run.iterations:
        ev = run.evaluations[t]
        ref = ev.get("same_logs_reference")
        if not isinstance(ref, dict):
            continue
        mine = (ev.get("unseen_candidate_fidelity") or {}).get("auc")
        theirs = (ref.get("unseen_candidate_fidelity") or {}).get("auc")
        rows.append(
            f'<tr><td class="num">{t}</td>{_cell(_finite(ev.get("improvement_captured")))}'
            f"{_cell(_finite(ref.get('improvement_captured')))}{_cell(_finite(mine))}{_cell(_finite(theirs))}</tr>"
        )
    if not rows:
        return []
    head = (
        "<tr><th>iteration</th><th>improvement captured, this run</th><th>same, reference on the same logs</th>"
        "<th>AUC on unseen texts, this run</th><th>same, reference</th></tr>"
    )
    return [
        "<h2>The reference on the same logs</h2>",
        '<p class="sub">Evaluation only (<code>same_logs_reference</code>): the designer given the ground truth\'s '
        "functional form, proposing from this run's logs, bank and pool each iteration; AUCs on the same clicks "
        "(ground_truth_evaluation.json, key same_logs_reference).</p>",
        f'<table id="same-logs-reference">{head}{"".join(rows)}</table>',
    ]


def _world_card_section(run: _Run) -> list[str]:
    """The world card the run measured at start (``initialization/world_card.json``), or a note."""
    path = run.path / WORLD_CARD_FILE
    if not path.is_file():
        return [f'<p class="note">No {WORLD_CARD_FILE} (a run from before world cards).</p>']
    card = read_json(path)
    world = card.get("world", {})
    head = "<tr><th>check</th><th>measured</th><th>target</th><th>tolerance</th><th>ok</th></tr>"
    rows = "".join(
        f"<tr><td>{_e(c.get('name'))}</td>{_cell(c.get('measured'))}{_cell(c.get('target'))}"
        f"<td>{_e(c.get('tolerance'))}</td><td>{'yes' if c.get('ok') else '<b>NO</b>'}</td></tr>"
        for c in card.get("checks", [])
    )
    facts = {
        "ground truth": world.get("ground_truth"),
        "embedder": world.get("embedder"),
        "fresh users x texts": f"{card.get('n_users')} x {card.get('n_texts')}",
        "single best action's share of the targeting gain": card.get("single_best_share"),
        **{f"click probability {k}": v for k, v in card.get("click_prob", {}).items()},
        **{f"quintile ratio per text {k}": v for k, v in card.get("quintile_ratio", {}).items()},
        **{f"CTR {k}": v for k, v in card.get("ctr_by_archetype", {}).items()},
        "random bank value": card.get("random_bank_value"),
        "initial bank value": card.get("initial_bank_value"),
        "world's oracle bank (greedy on the card's pool)": card.get("oracle_bank_value"),
    }
    examples = "".join(
        f"<tr><td>{_e(x.get('archetype'))}</td>{_cell(x.get('click_prob'))}<td>{_e(x.get('text'))}</td></tr>"
        for x in card.get("examples", [])
    )
    return [
        "<h2>World card</h2>",
        '<p class="sub">Measured at the start of the run on fresh users and texts outside every reference sample.</p>',
        f"<table>{head}{rows}</table>",
        _kv_table(facts),
        "<h3>Best pool text of a few users</h3>",
        f"<table><tr><th>archetype</th><th>click probability</th><th>text</th></tr>{examples}</table>",
    ]


def _final_bank_table(run: _Run) -> str:
    t = run.iterations[-1]
    path = run.path / iteration_file(t, NEW_BANK_FILE)
    if not path.is_file():
        return f'<p class="note">iteration_{t}/new_action_bank.json is missing.</p>'
    actions = bank_actions(read_json(path), source=str(path))
    old = set(_bank_ids(run.path / iteration_file(t, BANK_FILE)) or [])
    rows = []
    for a in actions:
        status = "kept" if a.get("id") in old else "new"
        rows.append(
            f"<tr><td>{_e(a.get('id', ''))}</td>{_cell(a.get('created_iteration'))}"
            f'<td>{_e(a.get("origin", ""))}</td><td>{status}</td><td class="text">{_e(a.get("text", ""))}</td></tr>'
        )
    head = "<tr><th>id</th><th>created</th><th>origin</th><th>in bank t</th><th>text</th></tr>"
    return (
        f"<p>{len(actions)} actions proposed after iteration {t} "
        f"(<code>iteration_{t}/new_action_bank.json</code>).</p><table>{head}{''.join(rows)}</table>"
    )


def _figure(name: str, caption: str, series: Sequence[str] = ()) -> str:
    alt = caption + (" Series: " + "; ".join(series) + "." if series else "")
    return (
        f'<figure><img src="plots/{_e(name)}" alt="{_e(alt)}">'
        f"<figcaption>{_e(caption)}"
        + (f"<br>Series: {_e('; '.join(series))}." if series else "")
        + "</figcaption></figure>"
    )


def _compare_table(run: _Run, others: Sequence[_Run], main: str, labels: Sequence[str]) -> str:
    head = (
        "<tr><th>label</th><th>folder</th><th>optimizer</th><th>seed</th><th>iterations</th>"
        "<th>final deployed value</th><th>final bank value</th></tr>"
    )
    rows = []
    for r, label in zip([run, *others], [main, *labels], strict=True):
        loc = "." if r is run else os.path.relpath(r.path, run.path)
        rows.append(
            f"<tr><td>{_e(label)}</td><td>{_e(loc)}</td><td>{_e(r.optimizer)}</td>{_cell(r.config.get('seed'))}"
            f"{_cell(len(r.iterations))}{_cell(r.series('deployed_value')[-1])}"
            f"{_cell(r.series('bank_value')[-1])}</tr>"
        )
    notes = [
        f"{label} used seed {o.config.get('seed')!r} and world_seed {o.config.get('world_seed')!r}; this run "
        f"used {run.config.get('seed')!r} and {run.config.get('world_seed')!r}."
        for o, label in zip(others, labels, strict=True)
        if (o.config.get("seed"), o.config.get("world_seed")) != (run.config.get("seed"), run.config.get("world_seed"))
    ]
    note = "".join(f'<p class="note">{_e(n)} The comparison is not on the same world/users.</p>' for n in notes)
    return f'<table id="compare">{head}{"".join(rows)}</table>{note}'


def write_report(
    run_dir: str | os.PathLike[str],
    *,
    compare: Sequence[str | os.PathLike[str]] = (),
    summary: dict[str, Any] | None = None,
) -> Path:
    """Write ``report.html`` and ``plots/*.png`` into a run folder.

    Plots: engagement per iteration (deployed, bank, new-bank and oracle values, random targeting, realised CTR,
    and the deployed/bank values of each ``compare`` run on the same axes, labelled by the settings that differ
    from this run); bank evolution (size, added and retired per iteration, per-action observed CTR of the last log
    beside the true CTR of the same impressions); reward-model fidelity per iteration (AUC between chance and its
    ceiling; skipped, with a note, when the run has no reward model). Tables: the summary (most important first),
    the per-iteration metrics (scrolling sideways), and a glossary of their keys. Files are written atomically and
    the HTML depends only on the folder's files.

    Args:
        run_dir: The run folder (holds ``simulation_config.json`` and ``iteration_<t>/``).
        compare: Other run folders (e.g. keep / random / oracle runs on the same seed) to draw alongside.
        summary: The run's ``summary.json`` content when the file is not written yet (the runner writes the
            report first and ``summary.json`` last, so a folder with ``summary.json`` is a finished run).

    Returns:
        The path of ``report.html``.

    Raises:
        ConfigError: If ``run_dir`` or a ``compare`` folder is not a run folder or has no iteration yet.
    """
    run = _load_run(run_dir, role="run folder")
    if summary is not None and run.summary is None:
        run.summary = summary
    if isinstance(compare, (str, os.PathLike)):
        raise TypeError(f"compare must be a sequence of run folders, got the single path {os.fspath(compare)!r}.")
    others = [_load_run(c, role="compare folder") for c in compare]
    main_label, labels = _compare_labels(run, others)
    plots = run.path / PLOTS_DIR
    evolution = _evolution(run)
    fid = _fidelity(run)
    action_ctr = _action_ctr(run)  # every file the plots read is read (and checked) before the first is written

    import matplotlib
    import matplotlib.style

    with matplotlib.style.context("default"), matplotlib.rc_context({"axes.titlesize": 11}):
        clean = _glyph_filter()
        series = _plot_engagement(run, others, main_label, labels, clean, plots / "engagement.png")
        bank_series = _plot_bank(run, evolution, action_ctr, clean, plots / "bank_evolution.png")
        fid_series = _plot_calibration(run, fid, clean, plots / "calibration.png") if fid else []
        if not fid:
            (plots / "calibration.png").unlink(missing_ok=True)  # a stale plot from an earlier report

    name = run.path.resolve().name
    cfg = run.config
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(name)} - actionbank report</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(name)}</h1>",
        f'<p class="sub">optimizer <b>{_e(cfg.get("designer", "?"))}</b>'
        + (f" ({_e(run.reward_model)} reward model)" if run.reward_model is not None else "")
        + f", company agent <b>{_e(cfg.get('agent', '?'))}</b>, embedder {_e(cfg.get('embedder', '?'))}, "
        f"{len(run.iterations)} iteration(s), seed {_e(cfg.get('seed'))}"
        + (f", git {_e(str(run.meta['git_commit'])[:12])}" if run.meta.get("git_commit") else "")
        + "</p>",
        "<h2>Summary</h2>",
    ]
    if run.summary is None:
        parts.append(
            '<p class="note">summary.json is missing: the run did not finish; the numbers below come '
            "from the completed iterations.</p>"
        )
    else:
        parts.append(_summary_table(run.summary))
    if cfg.get("retention.horizon") is not None:
        parts.append(
            f'<p class="note">Every campaign ran as subscribers\' lifetimes of {_e(cfg["retention.horizon"])} weeks '
            "(retention.horizon): deployed_value and regret are per subscriber over its lifetime (fatigue, novelty "
            "and unsubscribes included), company_reward is clicks per email; bank values stay one email to a rested "
            "user. No off-policy estimates: the log's clicks are those of tired subscribers.</p>"
        )
    parts += [
        "<h2>Per iteration</h2>",
        _iteration_table(run, evolution),
        "<h2>Plots</h2>",
        _figure(
            "engagement.png",
            "Engagement per iteration: mean true click probability of what the company "
            "agent served (deployed value), of each bank under perfect targeting and under random targeting, "
            "and the realised CTR.",
            series,
        ),
    ]
    if others:
        parts += ["<h3>Compared runs</h3>", _compare_table(run, others, main_label, labels)]
    parts.append(
        _figure(
            "bank_evolution.png",
            "Bank evolution: bank size per iteration with actions added and "
            f"retired, and per-action CTR in the last iteration's log (top {_TOP_ACTIONS} by impressions)"
            + (
                ", observed beside true."
                if any("true CTR" in s for s in bank_series)
                else "; this run's files carry no per-action truth (a run from before it was recorded)."
            ),
            bank_series,
        )
    )
    if fid:
        parts.append(
            _figure(
                "calibration.png",
                "Reward-model fidelity per iteration against the ground truth on "
                "held-out users x candidates (Spearman, AUC between chance and its ceiling, calibration error).",
                fid_series,
            )
        )
    else:
        parts.append(
            f'<p class="note">No reward-model calibration plot: this run (optimizer '
            f"{_e(run.optimizer)}) has no reward model, so no fidelity was recorded.</p>"
        )
    parts += _same_logs_section(run)
    parts += _world_card_section(run)
    parts += [
        "<h2>Off-policy estimate of each proposal</h2>",
        '<p class="sub">Before deployment, from the iteration\'s log: the proposal served greedily under the '
        "run's reward model (cross-fitted); truth: that policy's exact value on the logged users "
        "(all estimators: ground_truth_evaluation.json, key ope; <code>actionbank ope RUN_DIR</code>).</p>",
        _ope_table(run),
        "<h2>Final bank</h2>",
        _final_bank_table(run),
        "<h2>Configuration</h2>",
        '<div class="kv">' + _kv_table(cfg) + "</div>",
        "<h2>Glossary</h2>",
        '<p class="sub">The keys of the summary and per-iteration tables.</p>',
        _glossary(
            [
                *(_summary_order([k for k, v in (run.summary or {}).items() if not isinstance(v, (dict, list))])),
                *_iteration_columns(run),
                "bank/added",
                "bank/retired",
                "random_targeting_value",
            ]
        ),
    ]
    versions = run.meta.get("versions")
    if isinstance(versions, Mapping):
        parts += ["<details><summary>Versions</summary>", _kv_table(versions), "</details>"]
    parts.append("</body></html>\n")
    out = atomic_write_text(run.path / REPORT_FILE, "\n".join(parts))
    log.info("wrote %s", out)
    return out
