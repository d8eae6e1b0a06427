"""Progress bars for long phases (model loads, embedding thousands of texts), scoped by the caller.

Library code never decides on its own to draw on the terminal: a runner that wants progress (``simulate`` on a
terminal) opens :func:`progress_bars`, and the slow steps below it draw a ``tqdm`` bar on stderr only inside
that scope and only when stderr is a terminal. Elsewhere (tests, sweeps, a log file) everything stays quiet.
``tqdm`` is imported only when a bar is drawn.

Example:
    >>> enabled()
    False
    >>> with progress_bars(True):
    ...     requested()
    True
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

__all__ = ["progress_bars", "enabled", "requested", "bar"]

_REQUESTED: ContextVar[bool] = ContextVar("actionbank_progress", default=False)


@contextlib.contextmanager
def progress_bars(on: bool = True) -> Iterator[None]:
    """Within the block, slow steps draw progress bars (when stderr is a terminal)."""
    token = _REQUESTED.set(bool(on))
    try:
        yield
    finally:
        _REQUESTED.reset(token)


def requested() -> bool:
    """Whether the caller asked for progress bars (whatever the terminal)."""
    return _REQUESTED.get()


def enabled() -> bool:
    """Whether a bar drawn now would be shown: requested, and stderr is a terminal."""
    return _REQUESTED.get() and sys.stderr.isatty()


class _NoBar:
    """What :func:`bar` returns when nothing is shown: the calls a caller makes on a bar, doing nothing."""

    def update(self, n: int = 1) -> None:
        """Ignore progress."""

    def set_description(self, desc: str) -> None:
        """Ignore the label."""

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def bar(total: int | None, desc: str, *, unit: str = "it") -> Any:
    """A ``tqdm`` bar on stderr when :func:`enabled`, otherwise a no-op with the same methods."""
    if not enabled():
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr)
