"""Result folders: the ONE place that names their files; atomic writes; resume support.

A simulation run folder (ARCHITECTURE.md §8)::

    results/<name>_<UTC yyyymmdd-HHMMSS>/        never silently overwritten
      simulation_config.json  meta.json  metrics.csv  summary.json  complete_simulation_results.json
      initialization/action_bank.json  initialization/world.json
      iteration_<t>/ users.csv  action_bank.json  observations.csv  algorithm_results.json
                     ground_truth_evaluation.json  new_action_bank.json  .complete
      tb/  report.html  plots/*.png

A ``generate-data`` folder holds ``data_config.json``, ``initialization/action_bank.json`` and
``iteration_<t>/users.csv``; a sweep folder ``sweep.csv``, ``sweep.json`` and ``trials/<key>/seed_<s>/`` run folders
(``error.txt`` for a failed trial); a ``train`` folder ``train_config.json``, ``model.zip`` and ``evaluation.json``.

An iteration folder is complete once its ``.complete`` marker exists (written last); every file is written
atomically, so a run killed at any point resumes from its last complete iteration.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
from pathlib import Path
from typing import Any

from actionbank_env.core.io import atomic_write, atomic_write_json, atomic_write_text, read_json
from actionbank_env.errors import ConfigError

__all__ = [
    "RunFolder",
    "CONFIG_FILE",
    "META_FILE",
    "METRICS_FILE",
    "SUMMARY_FILE",
    "COMPLETE_FILE",
    "REPORT_FILE",
    "PLOTS_DIR",
    "TENSORBOARD_DIR",
    "INITIAL_BANK_FILE",
    "WORLD_FILE",
    "WORLD_CARD_FILE",
    "FROM_DATA_FILE",
    "DATA_CONFIG_FILE",
    "USERS_FILE",
    "BANK_FILE",
    "OBSERVATIONS_FILE",
    "ALGORITHM_FILE",
    "EVALUATION_FILE",
    "NEW_BANK_FILE",
    "OPE_FILE",
    "SWEEP_CSV",
    "SWEEP_JSON",
    "TRIALS_DIR",
    "BENCHMARK_CSV",
    "BENCHMARK_TRIALS_CSV",
    "BENCHMARK_MD",
    "BENCHMARK_PLOT",
    "ERROR_FILE",
    "TRAIN_CONFIG_FILE",
    "MODEL_FILE",
    "TRAIN_EVALUATION_FILE",
    "iteration_dir",
    "iteration_file",
    "iteration_number",
    "SUMMARY_KEYS",
    "summarize_rows",
]

# -- a simulation run folder
CONFIG_FILE = "simulation_config.json"
META_FILE = "meta.json"
METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"
COMPLETE_FILE = "complete_simulation_results.json"
REPORT_FILE = "report.html"
PLOTS_DIR = "plots"
TENSORBOARD_DIR = "tb"
INITIAL_BANK_FILE = "initialization/action_bank.json"
WORLD_FILE = "initialization/world.json"
WORLD_CARD_FILE = "initialization/world_card.json"
FROM_DATA_FILE = "run_from_data_config.json"
# -- in iteration_<t>/
USERS_FILE = "users.csv"
BANK_FILE = "action_bank.json"
OBSERVATIONS_FILE = "observations.csv"
ALGORITHM_FILE = "algorithm_results.json"
EVALUATION_FILE = "ground_truth_evaluation.json"
NEW_BANK_FILE = "new_action_bank.json"
OPE_FILE = "ope.json"
_MARKER = ".complete"
# -- a generate-data folder (plus INITIAL_BANK_FILE and iteration_<t>/USERS_FILE)
DATA_CONFIG_FILE = "data_config.json"
# -- a sweep folder
SWEEP_CSV = "sweep.csv"
SWEEP_JSON = "sweep.json"
TRIALS_DIR = "trials"
# actionbank benchmark (a sweep folder plus the paired tables)
BENCHMARK_CSV = "benchmark.csv"
BENCHMARK_TRIALS_CSV = "benchmark_trials.csv"
BENCHMARK_MD = "benchmark.md"
BENCHMARK_PLOT = "benchmark.png"
ERROR_FILE = "error.txt"
# -- a train folder
TRAIN_CONFIG_FILE = "train_config.json"
MODEL_FILE = "model.zip"
TRAIN_EVALUATION_FILE = "evaluation.json"

_ITERATION_DIR = re.compile(r"^iteration_(\d+)$")

#: Keys of ``summary.json`` reported for the final iteration and as per-iteration lists.
SUMMARY_KEYS = (
    "company_reward",
    "deployed_value",
    "bank_value",
    "new_bank_value",
    "oracle_bank_value",
    "improvement_captured",
    "delta_value",
    "regret",
    "algorithm_expected_value",
)


def summarize_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The content of ``summary.json`` from the per-iteration rows (:meth:`RunFolder.read_rows`)."""
    summary: dict[str, Any] = {k: rows[-1].get(k) if rows else None for k in SUMMARY_KEYS}
    summary["per_iteration"] = {k: [r.get(k) for r in rows] for k in SUMMARY_KEYS}
    summary["iterations"] = len(rows)
    summary["final_bank_size"] = rows[-1]["new_bank_size"] if rows else None
    return summary


def iteration_dir(iteration: int) -> str:
    """``iteration_<t>`` (iterations count from 1: iteration 1 deploys the initial bank).

    Example:
        >>> iteration_dir(2), iteration_file(2, USERS_FILE), iteration_number("iteration_12"), iteration_number("x")
        ('iteration_2', 'iteration_2/users.csv', 12, None)
    """
    return f"iteration_{iteration}"


def iteration_file(iteration: int, name: str) -> str:
    """``iteration_<t>/<name>``, relative to the run (or data) folder."""
    return f"{iteration_dir(iteration)}/{name}"


def iteration_number(folder_name: str) -> int | None:
    """``t`` of a folder named ``iteration_<t>``, ``None`` for any other name."""
    match = _ITERATION_DIR.match(folder_name)
    return int(match.group(1)) if match else None


class RunFolder:
    """One run's results folder.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     run = RunFolder.create(d, "simulation", timestamp="20260101-000000")
        ...     _ = run.write_json("summary.json", {"x": 1})
        ...     run.path.name, run.read_json("summary.json")
        ('simulation_20260101-000000', {'x': 1})
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @classmethod
    def create(
        cls,
        results_dir: str | os.PathLike[str],
        name: str,
        *,
        timestamp: str | None = None,
        out: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
    ) -> RunFolder:
        """Make a new, empty run folder.

        Args:
            results_dir: Parent folder of runs.
            name: Run name prefix (``simulation``, ``simulation_from_data``, ...).
            timestamp: UTC ``yyyymmdd-HHMMSS`` (now if ``None``).
            out: Use exactly this folder instead of ``results_dir/name_timestamp``.
            overwrite: Allow ``out`` to be a non-empty folder (its content is removed).

        Raises:
            ConfigError: If ``out`` exists and is not empty and ``overwrite`` is false.
        """
        if out is not None:
            path = Path(out)
            if path.exists() and any(path.iterdir()):
                if not overwrite:
                    raise ConfigError(
                        f"{path} already exists and is not empty; pass --overwrite or choose another --out."
                    )
                shutil.rmtree(path)
        else:
            stamp = timestamp or _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
            base = Path(results_dir) / f"{name}_{stamp}"
            path, n = base, 1
            while path.exists():
                path, n = base.with_name(f"{base.name}-{n}"), n + 1
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunFolder:
        """An existing run folder (for ``--resume``, ``report`` and ``compare-models``)."""
        p = Path(path)
        if not (p / CONFIG_FILE).is_file():
            raise ConfigError(f"{p} is not a run folder (no {CONFIG_FILE}).")
        return cls(p)

    def file(self, relative: str | os.PathLike[str]) -> Path:
        """Path of ``relative`` inside the run folder; refuses paths that escape it."""
        target = (self.path / relative).resolve()
        if not target.is_relative_to(self.path.resolve()):
            raise ConfigError(f"path {relative!s} escapes the run folder {self.path}.")
        return target

    def exists(self, relative: str) -> bool:
        """Whether ``relative`` is a file of the run."""
        return (self.path / relative).is_file()

    def write_json(self, relative: str, data: Any) -> Path:
        """Write JSON atomically."""
        return atomic_write_json(self.file(relative), data)

    def write_text(self, relative: str, text: str) -> Path:
        """Write text atomically."""
        return atomic_write_text(self.file(relative), text)

    def write_csv(self, relative: str, frame: Any) -> Path:
        """Write a pandas frame as CSV atomically (no index; floats with 17 significant digits, so they read back
        exactly)."""
        return atomic_write(self.file(relative), lambda handle: frame.to_csv(handle, index=False, float_format="%.17g"))

    def read_json(self, relative: str) -> Any:
        """Read a JSON file of the run."""
        return read_json(self.file(relative))

    def iteration_dir(self, iteration: int) -> Path:
        """``iteration_<t>/`` (created)."""
        d = self.file(iteration_dir(iteration))
        d.mkdir(parents=True, exist_ok=True)
        return d

    def iterations(self) -> list[int]:
        """The ``t`` of every ``iteration_<t>/`` folder holding a ground-truth evaluation, ascending."""
        found = [iteration_number(c.name) for c in self.path.iterdir() if c.is_dir()]
        return sorted(t for t in found if t is not None and self.exists(iteration_file(t, EVALUATION_FILE)))

    def mark_complete(self, iteration: int) -> None:
        """Mark ``iteration_<t>`` complete (call after all its files are written)."""
        atomic_write_text(self.iteration_dir(iteration) / _MARKER, "")

    def is_complete(self, iteration: int) -> bool:
        """Whether ``iteration_<t>`` was completed."""
        return self.exists(iteration_file(iteration, _MARKER))

    def completed_iterations(self) -> int:
        """Number of consecutive complete iterations from 1."""
        t = 0
        while self.is_complete(t + 1):
            t += 1
        return t

    # ------------------------------------------------------------------ the files of one iteration

    def write_iteration(
        self,
        iteration: int,
        *,
        users: Any,
        bank: dict[str, Any],
        observations: Any,
        algorithm: dict[str, Any],
        evaluation: dict[str, Any],
        new_bank: dict[str, Any],
    ) -> None:
        """Write the six files of ``iteration_<t>/`` (not the completion marker).

        Args:
            iteration: ``t``.
            users: The campaign's users as a pandas frame (``UserBatch.to_columns``).
            bank: The deployed bank (``ActionBank.to_dict``).
            observations: The campaign's :class:`~actionbank_env.core.observations.ObservationLog`.
            algorithm: What the designer reported (``algorithm_results.json``).
            evaluation: The ground-truth evaluation (``ground_truth_evaluation.json``).
            new_bank: The proposed bank t+1 (``ActionBank.to_dict``).
        """
        self.iteration_dir(iteration)
        self.write_csv(iteration_file(iteration, USERS_FILE), users)
        self.write_json(iteration_file(iteration, BANK_FILE), bank)
        observations.to_csv(self.file(iteration_file(iteration, OBSERVATIONS_FILE)))
        self.write_json(iteration_file(iteration, ALGORITHM_FILE), algorithm)
        self.write_json(iteration_file(iteration, EVALUATION_FILE), evaluation)
        self.write_json(iteration_file(iteration, NEW_BANK_FILE), new_bank)

    def proposed_texts(self, iteration: int) -> tuple[str, ...]:
        """The texts of the bank proposed in iteration ``t`` (``new_action_bank.json``), in order."""
        data = self.read_json(iteration_file(iteration, NEW_BANK_FILE))
        return tuple(a["text"] for a in data["actions"])

    def read_row(self, iteration: int) -> dict[str, Any]:
        """The numbers of iteration ``t`` (a row of ``metrics.csv``), read back from its files."""
        import pandas as pd

        t = iteration
        ev = self.read_json(iteration_file(t, EVALUATION_FILE))
        alg = self.read_json(iteration_file(t, ALGORITHM_FILE))
        obs_bank = self.read_json(iteration_file(t, BANK_FILE))
        new_bank = self.read_json(iteration_file(t, NEW_BANK_FILE))
        clicks = pd.read_csv(self.file(iteration_file(t, OBSERVATIONS_FILE)), usecols=["click"])["click"]
        fid = ev.get("reward_model_fidelity") or {}
        evolution = ev.get("bank_evolution", {})
        return {
            "iteration": t,
            "company_reward": float(clicks.mean()),
            "deployed_value": ev["deployed_value"],
            "bank_value": ev["bank_value"],
            "new_bank_value": ev["new_bank_value"],
            "oracle_bank_value": ev["oracle_bank_value"],
            "improvement_captured": ev["improvement_captured"],
            "delta_value": ev.get("delta_value", ev["new_bank_value"] - ev["bank_value"]),
            "regret": ev["regret"],
            "algorithm_expected_value": alg.get("algorithm_expected_value"),
            "bank_size": obs_bank["n_actions"],
            "new_bank_size": new_bank["n_actions"],
            "n_added": len(evolution.get("added_ids", [])),
            "n_retired": len(evolution.get("retired_ids", [])),
            "fidelity_spearman": fid.get("spearman"),
            "fidelity_auc": fid.get("auc"),
        }

    def read_rows(self, n_iterations: int) -> list[dict[str, Any]]:
        """:meth:`read_row` of iterations ``1 .. n_iterations`` (a resumed run reports every iteration)."""
        return [self.read_row(t) for t in range(1, n_iterations + 1)]
