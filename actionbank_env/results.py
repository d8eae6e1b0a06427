"""Run folders: ``results/<name>_<UTC yyyymmdd-HHMMSS>/``, never silently overwritten; resume support.

An iteration folder is complete once its ``.complete`` marker exists (written last); every file is
written atomically, so a run killed at any point resumes from its last complete iteration.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from pathlib import Path
from typing import Any

from actionbank_env.core.io import atomic_write_json, atomic_write_text, read_json
from actionbank_env.errors import ConfigError

__all__ = ["RunFolder"]

_MARKER = ".complete"


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
        """An existing run folder (for ``--resume`` and ``report``)."""
        p = Path(path)
        if not (p / "simulation_config.json").is_file():
            raise ConfigError(f"{p} is not a run folder (no simulation_config.json).")
        return cls(p)

    def file(self, relative: str | os.PathLike[str]) -> Path:
        """Path of ``relative`` inside the run folder; refuses paths that escape it."""
        target = (self.path / relative).resolve()
        if not target.is_relative_to(self.path.resolve()):
            raise ConfigError(f"path {relative!s} escapes the run folder {self.path}.")
        return target

    def write_json(self, relative: str, data: Any) -> Path:
        """Write JSON atomically."""
        return atomic_write_json(self.file(relative), data)

    def write_text(self, relative: str, text: str) -> Path:
        """Write text atomically."""
        return atomic_write_text(self.file(relative), text)

    def read_json(self, relative: str) -> Any:
        """Read a JSON file of the run."""
        return read_json(self.file(relative))

    def iteration_dir(self, iteration: int) -> Path:
        """``iteration_<t>/`` (created)."""
        d = self.file(f"iteration_{iteration}")
        d.mkdir(parents=True, exist_ok=True)
        return d

    def mark_complete(self, iteration: int) -> None:
        """Mark ``iteration_<t>`` complete (call after all its files are written)."""
        atomic_write_text(self.iteration_dir(iteration) / _MARKER, "")

    def is_complete(self, iteration: int) -> bool:
        """Whether ``iteration_<t>`` was completed."""
        return (self.path / f"iteration_{iteration}" / _MARKER).is_file()

    def completed_iterations(self) -> int:
        """Number of consecutive complete iterations from 1."""
        t = 0
        while self.is_complete(t + 1):
            t += 1
        return t
