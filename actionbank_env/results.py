"""Result folders: the ONE place that names their files; atomic writes; resume support.

A simulation run folder (the README's "Results folder")::

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

import argparse
import datetime as _dt
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from actionbank_env.core.io import atomic_write, atomic_write_json, atomic_write_text, read_json, write_frame_csv
from actionbank_env.errors import ConfigError, DataError

__all__ = [
    "RunFolder",
    "RUN_MARKERS",
    "check_replaceable",
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

#: Files of which at least one marks a folder as written by this package (what ``--overwrite`` may replace).
RUN_MARKERS = (CONFIG_FILE, META_FILE, DATA_CONFIG_FILE, TRAIN_CONFIG_FILE, ERROR_FILE, SWEEP_JSON)
#: ``mkdir`` failures that are the user's to fix (a path that cannot be a folder), not a full or failing disk.
_USER_ERRNOS = (errno.ENAMETOOLONG, errno.ENOTDIR, errno.EEXIST, errno.EACCES, errno.EPERM, errno.EROFS, errno.EINVAL)


def check_replaceable(path: str | os.PathLike[str]) -> None:
    """Refuse to let ``--overwrite`` replace ``path`` unless it is recognisably a folder this package wrote.

    Never a symbolic link (nor what it points to), the working directory or one of its parents, the home folder or
    the file-system root, and only a folder holding one of :data:`RUN_MARKERS` at its top.

    Raises:
        ConfigError: Naming the path and the rule it breaks.
    """
    p = Path(path)
    if p.is_symlink():
        raise ConfigError(
            f"--overwrite refuses --out {p}: it is a symbolic link; only a real run folder is replaced, never a "
            "link or what it points to."
        )
    resolved = p.resolve()
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    if resolved == cwd or resolved in cwd.parents or resolved == home or resolved == Path(resolved.anchor):
        raise ConfigError(
            f"--overwrite refuses --out {p}: it is the working directory, one of its parents, the home folder or the "
            "root, never a run folder."
        )
    if not any((p / marker).is_file() for marker in RUN_MARKERS):
        raise ConfigError(
            f"--overwrite refuses --out {p}: it is not a folder this package wrote (none of {', '.join(RUN_MARKERS)} "
            "in it); remove it yourself or choose another --out."
        )


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

    #: Set on a folder being built beside the run it will replace (``--overwrite``): :meth:`commit` swaps it in.
    replaces: Path | None = None

    @classmethod
    def create(
        cls,
        results_dir: str | os.PathLike[str],
        name: str,
        *,
        timestamp: str | None = None,
        out: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        can_overwrite: bool = True,
    ) -> RunFolder:
        """Make a new, empty run folder.

        With ``overwrite`` and an ``out`` that holds something, ``out`` must be recognisably a folder this package
        wrote (:func:`check_replaceable`); it is left untouched while the new run is built in a hidden sibling
        folder, which :meth:`commit` swaps in at the end (so a failed or killed run loses nothing).

        Args:
            results_dir: Parent folder of runs.
            name: Run name prefix (``simulation``, ``simulation_from_data``, ...).
            timestamp: UTC ``yyyymmdd-HHMMSS`` (now if ``None``).
            out: Use exactly this folder instead of ``results_dir/name_timestamp``.
            overwrite: Allow ``out`` to be a non-empty folder of this package (replaced by :meth:`commit`).
            can_overwrite: Whether the caller offers ``--overwrite`` (only changes the advice of the refusal).

        Raises:
            ConfigError: If ``out`` exists and is not empty and ``overwrite`` is false, if ``overwrite`` would
                replace something that is not a run folder, or ``out`` cannot be a folder (a file, a name too
                long, no permission).
        """
        if out is not None:
            path = Path(out)
            if cls.check_out(path, overwrite=overwrite, can_overwrite=can_overwrite):
                staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=path.parent))
                folder = cls(staging)
                folder.replaces = path
                return folder
        else:
            stamp = timestamp or _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
            base = Path(results_dir) / f"{name}_{stamp}"
            path, n = base, 1
            while path.exists():
                path, n = base.with_name(f"{base.name}-{n}"), n + 1
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno in _USER_ERRNOS:
                what = "--out" if out is not None else "the run folder (results_dir/name_timestamp)"
                raise ConfigError(f"{what} {path} cannot be created: {exc.strerror}.") from None
            raise
        return cls(path)

    @staticmethod
    def check_out(out: str | os.PathLike[str], *, overwrite: bool, can_overwrite: bool = True) -> bool:
        """Check ``--out`` before anything is built (no disk change); returns whether it holds a run to replace.

        Raises:
            ConfigError: ``out`` is a file, or holds something and ``overwrite`` is false, or holds something
                :func:`check_replaceable` refuses.
        """
        if not os.fspath(out).strip():
            raise ConfigError(f"--out must be a non-empty path, got {os.fspath(out)!r}.")
        path = Path(out)
        try:
            exists, is_dir, is_link = path.exists(), path.is_dir(), path.is_symlink()
        except OSError as exc:  # a name too long, a loop of links
            raise ConfigError(f"--out {path} cannot be a folder: {exc.strerror or exc}.") from None
        if exists and not is_dir:
            raise ConfigError(f"--out {path} is a file, not a folder; choose another --out.")
        if is_link or (exists and any(path.iterdir())):
            if not overwrite:
                advice = "pass --overwrite or choose another --out" if can_overwrite else "choose a new or empty --out"
                raise ConfigError(f"{path} already exists and is not empty; {advice}.")
            check_replaceable(path)
            return True
        return False

    def commit(self) -> Path:
        """Swap a folder built for ``--overwrite`` in place of the run it replaces; returns the final path.

        The old folder is renamed aside, the new one renamed to its name, then the old one removed (two renames in
        one parent folder; a crash between them leaves both, hidden, and nothing half-written). A folder that
        replaces nothing is already in place.
        """
        if self.replaces is None:
            return self.path
        target = self.replaces
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rename(target, aside / "run")
        os.rename(self.path, target)
        shutil.rmtree(aside)
        self.path, self.replaces = target, None
        return target

    def discard(self) -> None:
        """Remove a folder built for ``--overwrite`` that will not be committed (the old run stays as it was)."""
        if self.replaces is not None:
            shutil.rmtree(self.path, ignore_errors=True)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RunFolder:
        """An existing run folder (for ``--resume``, ``report`` and ``compare-models``)."""
        p = Path(path)
        if not (p / CONFIG_FILE).is_file():
            raise ConfigError(f"{p} is not a run folder (no {CONFIG_FILE}).")
        return cls(p)

    def remove_temp_files(self) -> list[Path]:
        """Delete the temp files an interrupted atomic write left (``.<name>.<random>.tmp``, never a results file);
        returns them."""
        stray = [p for p in self.path.rglob(".*.tmp") if p.is_file() and not p.is_symlink()]
        for path in stray:
            path.unlink()
        return stray

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
        """Write a pandas frame as CSV atomically (no index; floats read back exactly: see
        :func:`~actionbank_env.core.io.write_frame_csv`)."""
        return atomic_write(self.file(relative), lambda handle: write_frame_csv(handle, frame))

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

    def read_bank(self, name: str) -> Any:
        """The :class:`~actionbank_env.core.actions.ActionBank` saved as ``name`` (e.g. ``iteration_1/action_bank.json``);
        ``DataError`` naming the file when it is not one."""
        from actionbank_env.core.actions import ActionBank

        return ActionBank.from_dict(self.read_json(name), source=str(self.file(name)))

    def proposed_texts(self, iteration: int) -> tuple[str, ...]:
        """The texts of the bank proposed in iteration ``t`` (``new_action_bank.json``), in order."""
        from actionbank_env.core.actions import bank_texts

        name = iteration_file(iteration, NEW_BANK_FILE)
        return bank_texts(self.read_json(name), source=str(self.file(name)))

    def read_row(self, iteration: int) -> dict[str, Any]:
        """The numbers of iteration ``t`` (a row of ``metrics.csv``), read back from its files."""

        t = iteration
        ev = self.read_json(iteration_file(t, EVALUATION_FILE))
        alg = self.read_json(iteration_file(t, ALGORITHM_FILE))
        obs_bank = self.read_json(iteration_file(t, BANK_FILE))
        new_bank = self.read_json(iteration_file(t, NEW_BANK_FILE))
        clicks = read_log_columns(self.file(iteration_file(t, OBSERVATIONS_FILE)), ["click"])["click"]
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


def read_log_columns(path: str | os.PathLike[str], columns: list[str], dtype: dict[str, Any] | None = None) -> Any:
    """Some columns of an observation log as a pandas DataFrame (fast: no cell checks, unlike
    :meth:`~actionbank_env.core.observations.ObservationLog.from_csv`).

    Raises:
        DataError: Naming the file and the columns, when it is not readable CSV (or not UTF-8) or lacks a column.
    """
    import pandas as pd

    try:
        return pd.read_csv(path, usecols=columns, dtype=dtype)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(
            f"{path} must be an observation log (CSV) with the columns {columns}: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None


def out_path(text: str) -> Path:
    """The type of every ``--out`` flag: a path, never the empty string (which ``Path`` would read as ``.``).

    Example:
        >>> out_path("runs/a").as_posix()
        'runs/a'
    """
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must be a non-empty path, got {text!r}")
    return Path(text)
