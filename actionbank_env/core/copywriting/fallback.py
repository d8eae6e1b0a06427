"""Fallback: an outside copywriter backed by an offline one."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

import numpy as np

from actionbank_env.core.copywriting.brief import CopyBrief, Copywriter
from actionbank_env.core.copywriting.offline import OfflineCopywriter
from actionbank_env.errors import ServiceError

logger = logging.getLogger(__package__)  # the package's logger name, as before the split


class FallbackCopywriter:
    """Writes with ``primary`` (e.g. :class:`OpenAICopywriter`); a call that fails uses ``fallback`` instead.

    When ``primary.write`` raises :class:`~actionbank_env.errors.ServiceError` (the outside service still failed
    after its bounded retries), a WARNING is logged (``actionbank_env.core.copywriting``) naming both writers and
    the error, ``fallbacks`` is incremented, and the same call is answered by ``fallback.write`` with the same
    arguments (and the same ``rng``, after whatever draws the primary made). The next call tries the primary
    again. Any other exception (a wrong argument, a bug) propagates unchanged. Only text generation falls back:
    embeddings never do, since a run must not change embedder midway.

    Args:
        primary: The preferred copywriter.
        fallback: The copywriter used for a call the primary could not answer (offline by default).

    Attributes:
        name: ``"<primary name>|<fallback name>"`` (recorded as the origin of generated actions).
        fallbacks: Calls answered by the fallback so far.
        last_error: The message of the last ServiceError (the API key is already redacted), or ``None``.

    Example:
        >>> class Down:
        ...     name = "down"
        ...     def write(self, n, *, rng, parents=(), brief=None, exclude=()):
        ...         raise ServiceError("service down")
        >>> writer = FallbackCopywriter(Down(), OfflineCopywriter())
        >>> len(writer.write(3, rng=np.random.default_rng(0))), writer.fallbacks
        (3, 1)
    """

    def __init__(self, primary: Copywriter, fallback: Copywriter | None = None) -> None:
        for role, writer in (("primary", primary), ("fallback", fallback)):
            if writer is not None and not (isinstance(getattr(writer, "name", None), str) and hasattr(writer, "write")):
                raise TypeError(
                    f"FallbackCopywriter.{role} must be a Copywriter (a str name and a write method), "
                    f"got {type(writer).__name__}."
                )
        self.primary = primary
        self.fallback: Copywriter = fallback if fallback is not None else OfflineCopywriter()
        self.name = f"{primary.name}|{self.fallback.name}"
        self.fallbacks = 0
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"FallbackCopywriter(primary={self.primary!r}, fallback={self.fallback!r})"

    def close(self) -> None:
        """Close whichever writers have a ``close`` method."""
        for writer in (self.primary, self.fallback):
            close = getattr(writer, "close", None)
            if callable(close):
                close()

    def write(
        self,
        n: int,
        *,
        rng: np.random.Generator,
        parents: Sequence[str] = (),
        brief: CopyBrief | None = None,
        exclude: Collection[str] = (),
    ) -> list[str]:
        """Up to ``n`` distinct texts from the primary, or from the fallback when the primary's service fails."""
        try:
            return self.primary.write(n, rng=rng, parents=parents, brief=brief, exclude=exclude)
        except ServiceError as exc:
            self.fallbacks += 1
            self.last_error = str(exc)
            logger.warning(
                "Copywriter %s failed (%s); using the fallback copywriter %s for this call (%d fallback(s) so far).",
                self.primary.name,
                exc,
                self.fallback.name,
                self.fallbacks,
            )
            return self.fallback.write(n, rng=rng, parents=parents, brief=brief, exclude=exclude)
