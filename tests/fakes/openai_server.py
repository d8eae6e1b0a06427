"""A small OpenAI-compatible HTTP server for tests, with scripted faults.

Serves ``POST /v1/embeddings`` (deterministic unit vectors from a hash of each text; dimension from the
request's ``dimensions`` or ``default_dim``; ``encoding_format`` ``float`` or ``base64``) and
``POST /v1/chat/completions`` (``{"subject_lines": [...]}`` in ``choices[0].message.content``). Faults queued
with :meth:`FakeOpenAIServer.queue_fault` are served one per request, in order, before normal answers resume:

- ``"429"``: rate limited, with ``Retry-After`` (seconds) when given;
- ``"500"`` / ``"503"``: server errors; ``"401"``: bad key (not retried by clients);
- ``"malformed"``: a broken JSON body with status 200;
- ``"bad_schema"``: valid JSON with the wrong keys (chat: content ``{"lines": ...}``; embeddings: no ``data``);
- ``"bad_content"``: chat content that is not JSON at all;
- ``"wrong_dims"``: embeddings one element too short;
- ``"slow"``: sleeps ``delay`` seconds before answering (longer than the client's timeout);
- ``"drip"``: answers at once with the headers, then sends the body one byte every ``delay`` seconds (each read
  of the client succeeds, so only a total deadline ends it).

Every request is recorded (path, headers, JSON body) in :attr:`FakeOpenAIServer.requests`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

__all__ = ["FakeOpenAIServer", "RecordedRequest", "FAULTS"]

FAULTS = ("429", "500", "503", "401", "malformed", "bad_schema", "bad_content", "wrong_dims", "slow", "drip")

_LINE_PARTS = (
    ("Last chance", "Final hours", "Just dropped", "Members only", "Trending now", "Back in stock", "Picked for you"),
    ("30% off sneakers", "new smartwatches", "free shipping on everything", "our bestselling denim", "a gift for you"),
    ("today only", "ends tonight", "while supplies last", "this weekend", "don't miss out"),
)


@dataclass
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class _Fault:
    kind: str
    retry_after: float | None = None
    delay: float = 2.0


@dataclass
class _State:
    faults: deque[_Fault] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


def fake_embedding(text: str, dim: int) -> np.ndarray:
    """The deterministic unit vector the server returns for ``text`` (float32, (dim,))."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _subject_lines(prompt: str, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng([seed, int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "little")])
    lines = []
    for i in range(n):
        head, body, tail = (parts[int(rng.integers(len(parts)))] for parts in _LINE_PARTS)
        lines.append(f"{head}: {body}, {tail} #{seed % 1000}-{i}")
    return lines


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    drip: float | None = None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep the test output quiet
        return

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        drip = self.drip
        try:
            if drip is None:
                self.wfile.write(body)
                return
            self.wfile.flush()
            for i in range(len(body)):
                if self.server.state.stopping.wait(drip):
                    return
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        body = {"error": {"message": message, "type": "fake_error", "code": str(status)}}
        self._send(status, json.dumps(body).encode(), headers)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        state = self.server.state
        self.drip = None  # one handler serves every request of a kept-alive connection
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = None
        with state.lock:
            state.requests.append(RecordedRequest("POST", self.path, dict(self.headers.items()), body))
            fault = state.faults.popleft() if state.faults else None
        if fault is not None:
            if fault.kind == "slow":
                state.stopping.wait(fault.delay)
            elif fault.kind == "drip":
                self.drip = fault.delay
            elif fault.kind == "429":
                headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
                return self._error(429, "Rate limit reached (fake).", headers)
            elif fault.kind in ("500", "503", "401"):
                return self._error(int(fault.kind), f"Fake error {fault.kind}.")
            elif fault.kind == "malformed":
                return self._send(200, b'{"object": "list", "data": [ {"embedding": [0.1, ')
        if not isinstance(body, dict):
            return self._error(400, "Request body is not JSON.")
        if self.path.rstrip("/").endswith("/embeddings"):
            return self._embeddings(body, fault)
        if self.path.rstrip("/").endswith("/chat/completions"):
            return self._chat(body, fault)
        return self._error(404, f"Unknown path {self.path}.")

    def _embeddings(self, body: dict[str, Any], fault: _Fault | None) -> None:
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(t, str) and t for t in inputs):
            return self._error(400, "'input' must be a non-empty string or a list of them.")
        dim = int(body.get("dimensions") or self.server.default_dim)
        if fault is not None and fault.kind == "bad_schema":
            return self._send(200, json.dumps({"object": "list", "vectors": [[0.0] * dim]}).encode())
        if fault is not None and fault.kind == "wrong_dims":
            dim -= 1
        data = []
        for i, text in enumerate(inputs):
            vector = fake_embedding(text, dim)
            if body.get("encoding_format") == "base64":
                encoded: Any = base64.b64encode(vector.astype("<f4").tobytes()).decode()
            else:
                encoded = [float(v) for v in vector]
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        payload = {
            "object": "list",
            "data": data,
            "model": body.get("model", "fake"),
            "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
        }
        return self._send(200, json.dumps(payload).encode())

    def _chat(self, body: dict[str, Any], fault: _Fault | None) -> None:
        messages = body.get("messages") or []
        prompt = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        asked = re.search(r"\bWrite (\d+)\b", prompt)
        n = min(int(asked.group(1)), 200) if asked else 10
        seed = int(body.get("seed") or 0)
        if fault is not None and fault.kind == "bad_schema":
            content = json.dumps({"lines": _subject_lines(prompt, n, seed)})
        elif fault is not None and fault.kind == "bad_content":
            content = "Sure! Here are some subject lines:\n1. Big sale"
        else:
            content = json.dumps({"subject_lines": _subject_lines(prompt, n, seed)})
        payload = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        return self._send(200, json.dumps(payload).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    state: _State
    default_dim: int

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hung up on a slow answer is expected here


class FakeOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 (ephemeral port) in a daemon thread.

    Args:
        default_dim: Embedding dimension when a request does not set ``dimensions``.

    Attributes:
        base_url: ``"http://127.0.0.1:PORT/v1"``, for ``openai.OpenAI(base_url=...)``.
        requests: What the server received, in order.
    """

    def __init__(self, *, default_dim: int = 1536) -> None:
        self._state = _State()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self._state
        self._server.default_dim = default_dim
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}/v1"
        self._thread: threading.Thread | None = None

    def start(self) -> FakeOpenAIServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake any slow handler and close the socket."""
        self._state.stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def queue_fault(self, kind: str, *, retry_after: float | None = None, delay: float = 2.0, times: int = 1) -> None:
        """Serve ``kind`` (one of :data:`FAULTS`) to the next ``times`` requests (after those already queued)."""
        if kind not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, got {kind!r}.")
        with self._state.lock:
            self._state.faults.extend(_Fault(kind, retry_after, delay) for _ in range(times))

    def reset(self) -> None:
        """Forget queued faults and recorded requests."""
        with self._state.lock:
            self._state.faults.clear()
            self._state.requests.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the recorded requests."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def pending_faults(self) -> int:
        """Faults not served yet."""
        with self._state.lock:
            return len(self._state.faults)
