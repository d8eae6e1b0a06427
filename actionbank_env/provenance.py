"""Where a run came from: library versions, the git commit, the (redacted) command line, the seeds (``meta.json``)."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actionbank_env.core.openai_api import API_KEY_PATTERN

__all__ = ["run_meta", "versions", "git_commit", "redact_argv"]

#: Distributions whose versions every run records.
_DISTRIBUTIONS = (
    "actionbank-env",
    "numpy",
    "gymnasium",
    "torch",
    "lightgbm",
    "scikit-learn",
    "sentence-transformers",
    "stable-baselines3",
    "openai",
    "pandas",
)
_SECRET_FLAGS = ("--openai-api-key", "--openai_api_key")


def redact_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with API keys replaced by ``<redacted>`` (the value after a key flag, ``--flag=value``, ``sk-...``).

    Example:
        >>> redact_argv(["simulate", "--openai-api-key", "sk-abc123456", "--out", "keys/run"])
        ['simulate', '--openai-api-key', '<redacted>', '--out', 'keys/run']
    """
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("<redacted>")
            hide_next = False
            continue
        flag, eq, _ = arg.partition("=")
        if flag in _SECRET_FLAGS:
            out.append(f"{flag}=<redacted>" if eq else flag)
            hide_next = not eq
            continue
        out.append(API_KEY_PATTERN.sub("<redacted>", arg))
    return out


def versions() -> dict[str, str]:
    """Python's and the main libraries' versions (``"not installed"`` for a missing one)."""
    out = {"python": sys.version.split()[0]}
    for dist in _DISTRIBUTIONS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def git_commit() -> str | None:
    """The commit of the source tree this package runs from, ``None`` outside a git checkout."""
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def run_meta(*, seed: int, world_seed: int, resumed_from_iteration: int | None) -> dict[str, Any]:
    """The content of ``meta.json``: versions, seeds, the redacted command line, the commit and the start time."""
    return {
        "versions": versions(),
        "seed": seed,
        "world_seed": world_seed,
        "argv": redact_argv(sys.argv),
        "git_commit": git_commit(),
        "started_at_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "resumed_from_iteration": resumed_from_iteration,
    }
