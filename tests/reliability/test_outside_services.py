"""Outside services fail: bounded retries with backoff, then a clear ServiceError or the logged offline fallback.

Everything runs against the local OpenAI-compatible fake server (``tests/fakes/openai_server.py``) with the
real ``openai`` client. Each case measures how many requests the server received and how long the call took,
and every test has a hard ``timeout`` so a hang fails instead of blocking the suite.
"""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import openai  # noqa: F401  (imported up front so the first timed call does not pay for the import)
import pytest

from actionbank_env.core.copywriting import FallbackCopywriter, OfflineCopywriter, OpenAICopywriter
from actionbank_env.core.embedders import OpenAIEmbedder
from actionbank_env.errors import ServiceError
from tests.fakes.openai_server import FakeOpenAIServer, _Handler, fake_embedding
from tests.reliability.conftest import KEY

MAX_RETRIES = 2
TIMEOUT = 0.25  # seconds per request
BACKOFF = 0.05  # first retry delay; doubled each retry -> 0.05 + 0.10 before the last attempt


@pytest.fixture
def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _embedder(base_url: str, **kwargs: Any) -> OpenAIEmbedder:
    options: dict[str, Any] = {
        "api_key": KEY,
        "base_url": base_url,
        "dimensions": 16,
        "timeout": TIMEOUT,
        "max_retries": MAX_RETRIES,
        "backoff": BACKOFF,
        "max_backoff": 1.0,
    }
    options.update(kwargs)
    return OpenAIEmbedder(**options)


def _writer(base_url: str, **kwargs: Any) -> OpenAICopywriter:
    options: dict[str, Any] = {
        "api_key": KEY,
        "base_url": base_url,
        "timeout": TIMEOUT,
        "max_retries": MAX_RETRIES,
        "backoff": BACKOFF,
        "max_backoff": 1.0,
        "batch_size": 10,
    }
    options.update(kwargs)
    return OpenAICopywriter(**options)


# (fault, queue_fault kwargs, expected message part, requests for a persistent fault, min elapsed seconds)
PERSISTENT_FAULTS = [
    ("slow", {"delay": 3.0}, "timeout", MAX_RETRIES + 1, BACKOFF * 3),
    ("429", {"retry_after": 0.2}, "HTTP 429", MAX_RETRIES + 1, 0.2 * MAX_RETRIES),
    ("500", {}, "HTTP 500", MAX_RETRIES + 1, BACKOFF * 3),
    ("503", {}, "HTTP 503", MAX_RETRIES + 1, BACKOFF * 3),
    ("malformed", {}, "malformed JSON", MAX_RETRIES + 1, BACKOFF * 3),
    ("bad_schema", {}, "invalid response", MAX_RETRIES + 1, BACKOFF * 3),
    ("401", {}, "failed without retry", 1, 0.0),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("fault", "kwargs", "message", "n_requests", "min_seconds"), PERSISTENT_FAULTS)
def test_embedder_persistent_fault_ends_in_bounded_retries_and_a_service_error(
    fake_openai: FakeOpenAIServer,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    kwargs: dict[str, Any],
    message: str,
    n_requests: int,
    min_seconds: float,
) -> None:
    fake_openai.queue_fault(fault, times=10, **kwargs)
    start = time.perf_counter()
    with _embedder(fake_openai.base_url) as embedder, pytest.raises(ServiceError) as info:
        embedder.embed(["hello", "world"])
    elapsed = time.perf_counter() - start
    assert len(fake_openai.requests) == n_requests
    assert message in str(info.value) and "OpenAI embeddings" in str(info.value)
    if n_requests > 1:
        assert f"after {n_requests} attempt(s) (max_retries={MAX_RETRIES})" in str(info.value)
    timeout_budget = TIMEOUT * n_requests if fault == "slow" else 0.0
    assert min_seconds <= elapsed < min_seconds + timeout_budget + 2.0
    retries = [r for r in caplog.records if r.levelno == logging.WARNING and "retry" in r.getMessage()]
    assert len(retries) == n_requests - 1
    assert KEY not in str(info.value) and KEY not in caplog.text


@pytest.mark.timeout(30)
def test_embedder_wrong_dimensions_fail_at_once(fake_openai: FakeOpenAIServer) -> None:
    """A vector of another dimension is a configuration mismatch, not a transient fault: no retry."""
    fake_openai.queue_fault("wrong_dims", times=10)
    with _embedder(fake_openai.base_url) as embedder, pytest.raises(ServiceError) as info:
        embedder.embed(["hello"])
    assert "returned vectors of dimension 15, expected 16" in str(info.value)
    assert "OpenAIEmbedder.dimensions" in str(info.value)
    assert len(fake_openai.requests) == 1


@pytest.mark.timeout(30)
def test_connection_refused_is_retried_boundedly(closed_port_url: str, caplog: pytest.LogCaptureFixture) -> None:
    for client in (_embedder(closed_port_url), _writer(closed_port_url)):
        start = time.perf_counter()
        with pytest.raises(ServiceError, match=r"connection error") as info:
            if isinstance(client, OpenAIEmbedder):
                client.embed(["hello"])
            else:
                client.write(3, rng=np.random.default_rng(0))
        elapsed = time.perf_counter() - start
        client.close()
        assert client.n_requests == MAX_RETRIES + 1
        assert f"after {MAX_RETRIES + 1} attempt(s)" in str(info.value)
        assert BACKOFF * 3 <= elapsed < 5.0
    assert KEY not in caplog.text


CHAT_FAULTS = [f for f in PERSISTENT_FAULTS if f[0] != "bad_schema"] + [
    ("bad_schema", {}, 'not an object with a "subject_lines" list', MAX_RETRIES + 1, BACKOFF * 3),
    ("bad_content", {}, "not valid JSON", MAX_RETRIES + 1, BACKOFF * 3),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("fault", "kwargs", "message", "n_requests", "min_seconds"), CHAT_FAULTS)
def test_copywriter_persistent_fault_is_an_error_alone_and_a_logged_fallback_when_wrapped(
    fake_openai: FakeOpenAIServer,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    kwargs: dict[str, Any],
    message: str,
    n_requests: int,
    min_seconds: float,
) -> None:
    fake_openai.queue_fault(fault, times=10, **kwargs)
    start = time.perf_counter()
    with _writer(fake_openai.base_url) as writer, pytest.raises(ServiceError) as info:
        writer.write(5, rng=np.random.default_rng(0))
    elapsed = time.perf_counter() - start
    assert message in str(info.value) and "OpenAI chat completion" in str(info.value)
    assert len(fake_openai.requests) == n_requests
    timeout_budget = TIMEOUT * n_requests if fault == "slow" else 0.0
    assert min_seconds <= elapsed < min_seconds + timeout_budget + 2.0

    # The same fault behind FallbackCopywriter: same bounded requests, then offline lines and a WARNING.
    fake_openai.reset()
    fake_openai.queue_fault(fault, times=10, **kwargs)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="actionbank_env.core.copywriting"):
        writer = FallbackCopywriter(_writer(fake_openai.base_url), OfflineCopywriter())
        lines = writer.write(5, rng=np.random.default_rng(0))
        writer.close()
    assert len(lines) == 5 and len({line.casefold() for line in lines}) == 5
    assert writer.fallbacks == 1 and message in (writer.last_error or "")
    assert len(fake_openai.requests) == n_requests
    warnings = [r.getMessage() for r in caplog.records if r.name == "actionbank_env.core.copywriting"]
    assert any("using the fallback copywriter offline-v1" in w and "openai:gpt-4o-mini" in w for w in warnings)
    assert KEY not in caplog.text and KEY not in repr(writer)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("fault", ["429", "500", "malformed", "bad_content", "slow"])
def test_one_transient_fault_is_retried_without_fallback(fake_openai: FakeOpenAIServer, fault: str) -> None:
    fake_openai.queue_fault(fault, retry_after=0, delay=3.0)
    writer = FallbackCopywriter(_writer(fake_openai.base_url), OfflineCopywriter())
    lines = writer.write(4, rng=np.random.default_rng(1))
    writer.close()
    assert writer.fallbacks == 0 and len(lines) == 4
    assert all("#" in line for line in lines)  # the fake server's lines, not offline ones
    assert len(fake_openai.requests) == 2


def test_fallback_never_swallows_argument_errors() -> None:
    class Broken:
        name = "broken"

        def write(self, n: int, **kwargs: Any) -> list[str]:
            raise TypeError("OfflineCopywriter.write n must be an int, got 'x' of type str.")

    writer = FallbackCopywriter(Broken(), OfflineCopywriter())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be an int"):
        writer.write(3, rng=np.random.default_rng(0))
    assert writer.fallbacks == 0
    with pytest.raises(TypeError, match="FallbackCopywriter.primary must be a Copywriter"):
        FallbackCopywriter(object())  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------------
# A whole simulation with OpenAI configured while the chat endpoint is down
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_simulation_falls_back_to_offline_copy_when_chat_fails_but_keeps_openai_embeddings(
    small_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from actionbank_env.config import SimulationConfig
    from actionbank_env.experiment import make_copywriter, run_simulation
    from tests.reliability.conftest import SMALL_RUN

    # The chat endpoint is rate limited for good (Retry-After: 0 keeps the test fast); embeddings work.
    monkeypatch.setattr(
        _Handler, "_chat", lambda self, body, fault: self._error(429, "Rate limit (fake).", {"Retry-After": "0"})
    )
    config = SimulationConfig.from_settings({**SMALL_RUN, "embedder": "openai", "iterations": 1})
    writer = make_copywriter(config)
    assert isinstance(writer, FallbackCopywriter) and isinstance(writer.primary, OpenAICopywriter)
    assert make_copywriter(config.with_settings({"embedder": "hashing"})).name == "offline-v1"
    with caplog.at_level(logging.WARNING):
        result = run_simulation(config, out=tmp_path / "run")
    assert (result.path / "summary.json").is_file()
    fallbacks = [r for r in caplog.records if "using the fallback copywriter offline-v1" in r.getMessage()]
    assert fallbacks, "the fallback must be logged"
    chat = [r for r in small_openai.requests if r.path.endswith("/chat/completions")]
    assert len(chat) == len(fallbacks) * 4  # max_retries=3 by default: 4 attempts per failed call
    # Embeddings never fell back: every action of the new bank has the server's vector for its text.
    import json

    bank = json.loads((result.path / "iteration_1" / "new_action_bank.json").read_text())
    assert bank["actions"]
    for action in bank["actions"]:
        np.testing.assert_allclose(action["embedding"], fake_embedding(action["text"], 64), atol=1e-5)
    assert KEY not in caplog.text


# --------------------------------------------------------------------------------------------------------------
# A total deadline: a server that drips its answer one byte at a time keeps every read alive
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("client", ["embeddings", "chat"])
def test_a_slow_drip_answer_is_cut_at_the_total_deadline(fake_openai: FakeOpenAIServer, client: str) -> None:
    """Each byte arrives well within the per-read timeout; only the total deadline ends the attempt."""
    import time

    deadline, drip = 1.0, 0.2  # the body is hundreds of bytes: minutes at this rate
    fake_openai.queue_fault("drip", delay=drip, times=MAX_RETRIES + 1)
    target = (
        _embedder(fake_openai.base_url, timeout=deadline)
        if client == "embeddings"
        else _writer(fake_openai.base_url, timeout=deadline)
    )
    start = time.monotonic()
    with pytest.raises(ServiceError, match=r"failed after \d attempt\(s\).*deadline"):
        if isinstance(target, OpenAIEmbedder):
            target.embed(["hello"])
        else:
            target.write(3, rng=np.random.default_rng(0))
    elapsed = time.monotonic() - start
    assert elapsed < (MAX_RETRIES + 1) * (deadline + 1.0) + 2.0  # deadlines + backoffs (<= 1 s each) + slack
    assert len(fake_openai.requests) == MAX_RETRIES + 1
    # The next call gets a fresh connection and a normal answer.
    fake_openai.reset()
    if isinstance(target, OpenAIEmbedder):
        assert target.embed(["hello"]).shape == (1, 16)
    else:
        assert len(target.write(3, rng=np.random.default_rng(1))) == 3
    target.close()


@pytest.mark.timeout(60)
def test_one_drip_then_a_normal_answer_succeeds_on_retry(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.queue_fault("drip", delay=0.2)
    embedder = _embedder(fake_openai.base_url, timeout=1.0)
    vectors = embedder.embed(["hello", "world"])
    assert vectors.shape == (2, 16) and len(fake_openai.requests) == 2
    embedder.close()


@pytest.mark.timeout(180)
def test_a_rerun_sends_no_chat_or_embedding_request_it_sent_before(
    small_openai: FakeOpenAIServer, tmp_path: Path, shared_worlds: None
) -> None:
    """Chat responses are cached like embeddings (``$ACTIONBANK_CACHE_DIR``), so a rerun costs nothing."""
    from actionbank_env.config import SimulationConfig
    from actionbank_env.experiment import run_simulation
    from tests.reliability.conftest import SMALL_RUN, comparable_files

    config = SimulationConfig.from_settings({**SMALL_RUN, "embedder": "openai", "iterations": 1})
    first = run_simulation(config, out=tmp_path / "first")
    paths = [r.path for r in small_openai.requests]
    assert "/v1/chat/completions" in paths and "/v1/embeddings" in paths
    small_openai.reset()
    second = run_simulation(config, out=tmp_path / "second")
    assert small_openai.requests == []
    assert (tmp_path / "cache" / "chat_responses.sqlite").is_file()
    a, b = comparable_files(first.path), comparable_files(second.path)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
