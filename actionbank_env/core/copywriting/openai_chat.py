"""The OpenAI chat copywriter: prompts a chat model for JSON ``{"subject_lines": [...]}``, validates and sanitises
the lines, retries with bounded backoff (:mod:`actionbank_env.core.openai_api`) and caches responses in SQLite.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sqlite3
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from actionbank_env._validation import check_int, check_real, check_str
from actionbank_env.core.actions import MAX_TEXT_LENGTH
from actionbank_env.core.copywriting.brief import CopyBrief, _check_write_args
from actionbank_env.core.copywriting.sanitize import sanitize_lines
from actionbank_env.core.openai_api import BadResponse, Secret, call_with_retries, make_client, resolve_api_key

logger = logging.getLogger(__package__)  # the package's logger name, as before the split


_MODE_INSTRUCTIONS = {
    "explore": "Explore broadly: vary themes, tones, offers, products and sentence structures.",
    "exploit": "Write close variations of the example lines below (which performed well): keep what works, "
    "vary offers, urgency, wording and tone, or combine parts of two examples.",
    "targeted": "Write lines aimed at the customer segment described below.",
}
_TRAIT_DESCRIPTIONS = {
    "age_norm": "older customers who like classic, timeless, trustworthy products",
    "income_level": "high-income customers who respond to premium, exclusive offers",
    "tech_savviness": "tech-savvy customers who respond to new gadgets and product launches",
    "price_sensitivity": "price-sensitive customers who respond to discounts, deals and sales",
    "brand_loyalty": "loyal customers who respond to loyalty rewards and member perks",
    "social_influence": "customers influenced by trends, bestsellers and social proof",
    "urgency_response": "customers who respond to urgency: last chance, limited time",
    "quality_focus": "customers who value quality, craftsmanship and durability",
}
_SYSTEM_PROMPT = (
    "You write marketing email subject lines for an online retailer. "
    'Reply with a JSON object only, of the form {{"subject_lines": ["...", "..."]}}. '
    "Each subject line: at most {max_len} characters, plain text, no numbering, no surrounding quotes, "
    "no placeholders such as [Name], all lines different from each other."
)


class OpenAICopywriter:
    """Subject lines from an OpenAI chat model, validated, sanitised and cached.

    Each call asks for up to ``batch_size`` lines as JSON ``{"subject_lines": [...]}`` (``response_format`` is
    ``json_object``), with the brief and the ``parents`` in the prompt and a ``seed`` drawn from ``rng``. A body
    that is not such JSON is retried; rate limits (429, ``Retry-After`` honoured), server errors, timeouts and
    connection errors are retried with exponential backoff; after ``max_retries`` retries a
    :class:`~actionbank_env.errors.ServiceError` is raised. Batches continue until ``n`` distinct lines or a
    bounded number of calls. With ``cache_path``, responses are stored in SQLite keyed by model + prompt hash +
    seed, so a rerun with the same ``rng`` state costs no request.

    The API key comes from ``api_key`` or ``OPENAI_API_KEY`` and never appears in ``repr``, logs or errors.

    Args:
        model: Chat model name.
        api_key: API key (default: the ``OPENAI_API_KEY`` environment variable).
        base_url: API base URL (default: the client's, or ``OPENAI_BASE_URL``).
        timeout: Total seconds per attempt (connect, send, every read of the answer; a deadline, not a per-read
            timeout, so a server that drips its answer cannot hold a run).
        max_retries: Retries per request after the first attempt.
        batch_size: Lines asked for per request.
        temperature: Sampling temperature in [0, 2].
        cache_path: SQLite file for responses (``None``: no cache).
        backoff: First retry delay in seconds (doubled each retry, capped at ``max_backoff``).
        max_backoff: Longest delay between retries, ``Retry-After`` included.
    """

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        batch_size: int = 50,
        temperature: float = 0.9,
        cache_path: str | os.PathLike[str] | None = None,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.model = check_str("OpenAICopywriter.model", model)
        self._api_key: Secret = resolve_api_key("OpenAICopywriter", api_key)
        self.base_url = None if base_url is None else check_str("OpenAICopywriter.base_url", base_url)
        self.timeout = check_real("OpenAICopywriter.timeout", timeout, low=0.0, low_open=True)
        self.max_retries = check_int("OpenAICopywriter.max_retries", max_retries, low=0)
        self.batch_size = check_int("OpenAICopywriter.batch_size", batch_size, low=1, high=200)
        self.temperature = check_real("OpenAICopywriter.temperature", temperature, low=0.0, high=2.0)
        self.backoff = check_real("OpenAICopywriter.backoff", backoff, low=0.0)
        self.max_backoff = check_real("OpenAICopywriter.max_backoff", max_backoff, low=0.0)
        self.cache_path = None if cache_path is None else Path(cache_path)
        self.name = f"openai:{self.model}"
        self.n_requests = 0
        self.n_cache_hits = 0
        self._client: Any = None
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return (
            f"OpenAICopywriter(model={self.model!r}, base_url={self.base_url!r}, timeout={self.timeout}, "
            f"max_retries={self.max_retries}, batch_size={self.batch_size}, temperature={self.temperature}, "
            f"cache_path={None if self.cache_path is None else str(self.cache_path)!r}, api_key='***')"
        )

    def close(self) -> None:
        """Close the HTTP client and the cache connection."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> OpenAICopywriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- prompt

    def _messages(self, k: int, brief: CopyBrief, parents: Sequence[str], avoid: Sequence[str]) -> list[dict[str, str]]:
        parts = [f"Write {k} new, distinct marketing email subject lines.", _MODE_INSTRUCTIONS[brief.mode]]
        if brief.themes:
            parts.append("Themes to use: " + ", ".join(t.replace("_", " ") for t in brief.themes) + ".")
        if brief.tones:
            parts.append("Tones to use: " + ", ".join(brief.tones) + ".")
        if brief.segment_traits:
            parts.append("Target segment: " + "; ".join(_TRAIT_DESCRIPTIONS[t] for t in brief.segment_traits) + ".")
        if parents:
            parts.append("Example lines:\n" + "\n".join(f"- {p}" for p in parents[:20]))
        if avoid:
            parts.append("Do not repeat any of these lines:\n" + "\n".join(f"- {a}" for a in avoid))
        return [
            {"role": "system", "content": _SYSTEM_PROMPT.format(max_len=MAX_TEXT_LENGTH)},
            {"role": "user", "content": "\n\n".join(parts)},
        ]

    # ---------------------------------------------------------------- cache

    def _cache(self) -> sqlite3.Connection | None:
        if self.cache_path is None:
            return None
        if self._db is None:
            from actionbank_env.core.embedding_cache import _connect

            self._db = _connect(self.cache_path)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS chat_responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                "lines TEXT NOT NULL) WITHOUT ROWID"
            )
        return self._db

    def _cache_get(self, key: str) -> list[str] | None:
        db = self._cache()
        if db is None:
            return None
        row = db.execute("SELECT lines FROM chat_responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            lines = json.loads(row[0])
        except json.JSONDecodeError:
            return None
        return [x for x in lines if isinstance(x, str)] if isinstance(lines, list) else None

    def _cache_put(self, key: str, lines: list[str]) -> None:
        db = self._cache()
        if db is not None:
            db.execute(
                "INSERT OR REPLACE INTO chat_responses (key, model, lines) VALUES (?, ?, ?)",
                (key, self.model, json.dumps(lines)),
            )

    # ---------------------------------------------------------------- request

    def _replace_client(self) -> None:
        """Close the client whose request passed its deadline (ending its read) and make the next one now, outside
        the next attempt's deadline."""
        with self._lock:
            stuck, self._client = self._client, make_client(self._api_key, self.base_url, self.timeout, owner=self)
        if stuck is not None:
            stuck.close()

    def _request(self, messages: list[dict[str, str]], seed: int) -> list[str]:
        key = hashlib.sha256(
            json.dumps(
                {"model": self.model, "messages": messages, "seed": seed, "temperature": self.temperature},
                sort_keys=True,
            ).encode("utf-8")
        ).hexdigest()
        with self._lock:
            cached = self._cache_get(key)
        if cached is not None:
            self.n_cache_hits += 1
            return cached
        with self._lock:
            if self._client is None:
                self._client = make_client(self._api_key, self.base_url, self.timeout, owner=self)
            client = self._client

        def call() -> list[str]:
            with self._lock:  # a new client after an attempt passed its deadline (see _replace_client)
                current = self._client if self._client is not None else client
            self.n_requests += 1
            response = current.chat.completions.create(
                model=self.model,
                messages=messages,
                temperature=self.temperature,
                seed=seed,
                response_format={"type": "json_object"},
            )
            return _parse_subject_lines(response)

        lines = call_with_retries(
            call,
            what=f"OpenAI chat completion (model {self.model!r})",
            max_retries=self.max_retries,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
            secret=self._api_key,
            deadline=self.timeout,
            on_deadline=self._replace_client,
        )
        with self._lock:
            self._cache_put(key, lines)
        return lines

    def write(
        self,
        n: int,
        *,
        rng: np.random.Generator,
        parents: Sequence[str] = (),
        brief: CopyBrief | None = None,
        exclude: Collection[str] = (),
    ) -> list[str]:
        """Ask the model for up to ``n`` distinct subject lines (see the class docstring).

        Raises:
            ServiceError: A request failed after ``max_retries`` retries, or kept returning invalid JSON.
        """
        n, parent_texts, brief, _ = _check_write_args("OpenAICopywriter", n, rng, parents, brief, exclude)
        excluded = [e for e in exclude if isinstance(e, str)] + parent_texts
        out: list[str] = []
        max_calls = 2 * math.ceil(n / self.batch_size) + 2
        for _ in range(max_calls):
            if len(out) >= n:
                break
            k = min(self.batch_size, n - len(out) + max(2, (n - len(out)) // 5))
            avoid = (out + parent_texts)[-20:]
            seed = int(rng.integers(2**31 - 1))
            raw = self._request(self._messages(k, brief, parent_texts, avoid), seed)
            out.extend(sanitize_lines(raw, exclude=excluded + out))
        if len(out) < n:
            logger.warning("OpenAICopywriter got %d of %d requested distinct lines.", len(out), n)
        return out[:n]


def _parse_subject_lines(response: Any) -> list[str]:
    """Validate a chat completion: choices[0].message.content must be JSON {"subject_lines": [str, ...]}."""
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError, KeyError):
        raise BadResponse("the response has no choices[0].message.content") from None
    if not isinstance(content, str):
        raise BadResponse("choices[0].message.content is not a string")
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise BadResponse(f"the message content is not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(data, dict) or not isinstance(data.get("subject_lines"), list):
        keys = sorted(data)[:5] if isinstance(data, dict) else type(data).__name__
        raise BadResponse(f'the JSON is not an object with a "subject_lines" list (got {keys})')
    lines = [x for x in data["subject_lines"] if isinstance(x, str)]
    if data["subject_lines"] and not lines:
        raise BadResponse('"subject_lines" holds no strings')
    return lines
