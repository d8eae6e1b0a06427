"""Where a run came from: library versions, the git commit, the (redacted) command line, the seeds (``meta.json``)."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actionbank_env.core.openai_api import API_KEY_PATTERN

__all__ = ["run_meta", "versions", "git_commit", "redact_argv", "SECRET_DESTS"]

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
#: Destinations (argparse ``dest``) whose values are secrets: every spelling of their flags is redacted.
SECRET_DESTS = ("openai_api_key",)
#: Environment variables whose values are secrets wherever they appear in a command line.
SECRET_ENV = ("OPENAI_API_KEY",)
#: Shortest value redacted wherever it appears (shorter ones would hide ordinary words).
_MIN_SECRET = 8


def _is_secret_flag(flag: str) -> bool:
    """Whether ``flag`` sets a secret destination, in any spelling (``--openai-api-key``, ``--OPENAI_API_KEY``)."""
    return flag.startswith("--") and flag[2:].replace("-", "_").lower() in SECRET_DESTS


def redact_argv(argv: Sequence[str], secrets: Sequence[str | None] = ()) -> list[str]:
    """``argv`` with secrets replaced by ``<redacted>``.

    Hidden: the value of every flag whose destination is in :data:`SECRET_DESTS` (``--flag value`` and
    ``--flag=value``, in kebab or snake case; the parser accepts no abbreviation, so these are all its spellings),
    every occurrence of a value in ``secrets`` or in the :data:`SECRET_ENV` variables, whatever its shape, and
    anything shaped like an OpenAI key (``sk-...``).

    Example:
        >>> redact_argv(["simulate", "--openai-api-key", "sk-abc123456", "--out", "keys/run"])
        ['simulate', '--openai-api-key', '<redacted>', '--out', 'keys/run']
        >>> redact_argv(["--set", "note=gw-0123456789"], secrets=["gw-0123456789"])
        ['--set', 'note=<redacted>']
    """
    values = [v for v in (*secrets, *(os.environ.get(name) for name in SECRET_ENV)) if v and len(v) >= _MIN_SECRET]
    values.sort(key=len, reverse=True)
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("<redacted>")
            hide_next = False
            continue
        flag, eq, _ = arg.partition("=")
        if _is_secret_flag(flag):
            out.append(f"{flag}=<redacted>" if eq else flag)
            hide_next = not eq
            continue
        for value in values:
            arg = arg.replace(value, "<redacted>")
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


def run_meta(
    *, seed: int, world_seed: int, resumed_from_iteration: int | None, secrets: Sequence[str | None] = ()
) -> dict[str, Any]:
    """The content of ``meta.json``: versions, seeds, the redacted command line (``secrets`` hidden wherever they
    appear, see :func:`redact_argv`), the commit and the start time."""
    return {
        "versions": versions(),
        "seed": seed,
        "world_seed": world_seed,
        "argv": redact_argv(sys.argv, secrets),
        "git_commit": git_commit(),
        "started_at_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "resumed_from_iteration": resumed_from_iteration,
    }
