"""OpenAI plumbing shared by the embedder and the chat copywriter: the key, the client, bounded retries.

The key is held by :class:`Secret` (its repr never shows it; it refuses to be pickled) and travels explicitly:
``resolve_api_key`` takes the caller's key and falls back to the ``OPENAI_API_KEY`` environment variable only
when none is given (the command line passes the key it read explicitly, it never writes the environment).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from actionbank_env.errors import ConfigError, ServiceError

__all__ = [
    "Secret",
    "API_KEY_PATTERN",
    "resolve_api_key",
    "make_client",
    "BadResponse",
    "DeadlineExceeded",
    "call_with_deadline",
    "call_with_retries",
]

logger = logging.getLogger(__name__)

#: Anything shaped like an OpenAI key (redacted from every message, log line and recorded command line).
API_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_\-]{6,}")


class Secret:
    """Holds an API key; its repr/str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The key itself (only for the client that sends it)."""
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with the key (and anything shaped like an OpenAI key) replaced by ``***``."""
        if self._value:
            text = text.replace(self._value, "***")
        return API_KEY_PATTERN.sub("sk-***", text)

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("API keys are not picklable.")


def resolve_api_key(owner: str, api_key: str | None) -> Secret:
    if api_key is None:
        api_key = os.environ.get("OPENAI_API_KEY")
    if api_key is None or not isinstance(api_key, str) or not api_key.strip():
        raise ConfigError(f"{owner} needs an API key: pass api_key=... or set the OPENAI_API_KEY environment variable.")
    return Secret(api_key.strip())


def make_client(secret: Secret, base_url: str | None, timeout: float, *, owner: object | None = None) -> Any:
    """An ``openai.OpenAI`` client without the library's own retries.

    With ``owner``, the client is also closed when ``owner`` is garbage-collected (``weakref.finalize``): an
    embedder or copywriter that nobody closed (or a client replaced after a deadline whose request thread still
    holds it) then releases its sockets in an orderly close instead of leaving them to the socket's finaliser,
    whose ``ResourceWarning`` surfaces in whatever code runs when the collector does. ``close`` is idempotent,
    so an explicit close before that is harmless.
    """
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - openai is a core dependency
        raise ImportError("The OpenAI backends need the 'openai' package: pip install openai.") from exc
    # Retries are ours (call_with_retries), so their number is bounded and bad bodies are retried too.
    client = openai.OpenAI(api_key=secret.reveal(), base_url=base_url, timeout=timeout, max_retries=0)
    if owner is not None:
        weakref.finalize(owner, client.close)
    return client


class BadResponse(Exception):
    """A response arrived but is not what was asked for (retried, then a ServiceError)."""


class DeadlineExceeded(Exception):
    """An attempt got no complete response within its total deadline (retried like a timeout, then a ServiceError).

    The HTTP client's own timeout bounds each read, not the request: a server sending one byte every few seconds
    keeps every read alive for ever. The deadline bounds the whole attempt: connect, send, every read, parsing.
    """


_T = TypeVar("_T")


def call_with_deadline(call: Callable[[], _T], seconds: float, *, on_expiry: Callable[[], None] | None = None) -> _T:
    """``call()`` with a total deadline: its result or exception, or :class:`DeadlineExceeded` after ``seconds``.

    The call runs in a daemon thread (it holds nothing a process exit waits for); when the deadline passes,
    ``on_expiry`` runs (the clients close their HTTP connection there, so the abandoned read ends at the server's
    next byte) and the thread is left to finish on its own.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001  (handed to the caller's thread)
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="actionbank-openai-call", daemon=True).start()
    if not done.wait(seconds):
        if on_expiry is not None:
            try:
                on_expiry()
            except Exception:  # noqa: BLE001  (closing a stuck connection may fail; the deadline still holds)
                logger.debug("closing the connection after a deadline failed", exc_info=True)
        raise DeadlineExceeded(f"no complete response within the {seconds:g} s deadline")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for key, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(key)
        if value is not None:
            try:
                seconds = float(value) * scale
            except ValueError:
                continue  # an HTTP date: fall back to our backoff
            if seconds >= 0:
                return seconds
    return None


def _classify(exc: BaseException) -> str | None:
    """A short reason if ``exc`` is worth retrying, ``None`` if it is final."""
    import openai

    if isinstance(exc, BadResponse):
        return f"invalid response: {exc}"
    if isinstance(exc, json.JSONDecodeError):
        return "malformed JSON body"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, DeadlineExceeded):
        return f"timeout ({exc})"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    if isinstance(exc, openai.APIResponseValidationError):
        return "invalid response body"
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        if code in (408, 409, 429) or code >= 500:
            return f"HTTP {code}"
    return None


def call_with_retries(
    call: Callable[[], _T],
    *,
    what: str,
    max_retries: int,
    backoff: float,
    max_backoff: float,
    secret: Secret,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float | None = None,
    on_deadline: Callable[[], None] | None = None,
) -> _T:
    """Run ``call`` with at most ``max_retries`` retries on transient failures; end in a ServiceError.

    Retried: rate limits (429, ``Retry-After`` honoured up to ``max_backoff``), 408/409/5xx, timeouts (including
    an attempt that passes its total ``deadline``, see :func:`call_with_deadline`), connection errors, malformed or
    invalid bodies. Other HTTP errors (400, 401, 404, ...) fail at once. Error messages are redacted so the API key
    never shows. With a ``deadline``, the whole call takes at most ``(max_retries + 1) * deadline`` plus the
    backoffs (each at most ``max_backoff``).
    """
    import openai

    attempts = max_retries + 1
    for attempt in range(attempts):
        try:
            if deadline is None:
                return call()
            return call_with_deadline(call, deadline, on_expiry=on_deadline)
        except ServiceError:
            raise
        except (openai.OpenAIError, BadResponse, DeadlineExceeded, json.JSONDecodeError) as exc:
            reason = _classify(exc)
            detail = secret.redact(f"{type(exc).__name__}: {exc}")
            if reason is None:
                raise ServiceError(f"{what} failed without retry: {detail}") from None
            if attempt + 1 >= attempts:
                raise ServiceError(
                    f"{what} failed after {attempts} attempt(s) (max_retries={max_retries}); last error: "
                    f"{reason} ({detail})."
                ) from None
            delay = min(max_backoff, backoff * 2.0**attempt)
            hinted = _retry_after(exc)
            if hinted is not None:
                delay = min(max_backoff, max(delay, hinted) if reason != "HTTP 429" else hinted)
            logger.warning("%s: %s; retry %d of %d in %.2fs.", what, reason, attempt + 1, max_retries, delay)
            if delay > 0:
                sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
