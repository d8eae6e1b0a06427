"""Secrets: the API key never appears in results, caches, TensorBoard events, logs, output, errors or reprs.

A small simulation runs with embedder ``openai`` against the local fake server, with a distinctive fake key
in ``OPENAI_API_KEY`` and the server in ``OPENAI_BASE_URL`` (the ``openai`` client reads it when no
``base_url`` is given; ``make_embedder`` and ``make_copywriter`` pass none, so no code change was needed).
Then every byte written under the test's folder is scanned for the key.
"""

from __future__ import annotations

import logging
import pickle
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actionbank_env.cli import main
from actionbank_env.config import SimulationConfig
from actionbank_env.core.copywriting import OpenAICopywriter
from actionbank_env.core.embedders import OpenAIEmbedder, make_embedder
from actionbank_env.errors import ServiceError
from actionbank_env.experiment import make_copywriter
from tests.fakes.openai_server import FakeOpenAIServer, _Handler
from tests.reliability.conftest import KEY, SMALL_RUN

#: Parts of the key that must not show either (a prefix or suffix leak is still a leak).
FRAGMENTS = (KEY, KEY[3:], "SECRET-abc123")


def _assert_clean(label: str, text: str | bytes) -> None:
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    for fragment in FRAGMENTS:
        assert fragment.encode() not in data, f"the API key leaked into {label}"


def _scan_tree(root: Path) -> list[str]:
    """Scan every file under ``root``; return the relative paths scanned."""
    scanned = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            _assert_clean(str(path.relative_to(root)), path.read_bytes())
            scanned.append(path.relative_to(root).as_posix())
    return scanned


def _flags(**overrides: Any) -> list[str]:
    """Command-line flags for :data:`SMALL_RUN` with ``overrides`` (booleans as ``--x`` / ``--no-x``)."""
    argv: list[str] = []
    for key, value in {**SMALL_RUN, **overrides}.items():
        flag = key.replace("_", "-")
        argv += [f"--{flag}" if value else f"--no-{flag}"] if isinstance(value, bool) else [f"--{flag}", str(value)]
    return argv


def _echoing_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the fake server put the Authorization header it received into every error body (as some do)."""
    original = _Handler._error

    def error(self: Any, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        original(self, status, f"{message} (you sent {self.headers.get('Authorization')})", headers)

    monkeypatch.setattr(_Handler, "_error", error)


@pytest.mark.timeout(180)
def test_a_simulation_with_openai_writes_the_key_nowhere(
    small_openai: FakeOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # the openai client's and httpx's debug logs included
    out = tmp_path / "run"
    argv = ["simulate", "--quiet", "--out", str(out), *_flags(embedder="openai", iterations=1, tensorboard=True)]
    monkeypatch.setattr(sys, "argv", ["actionbank", *argv])
    assert main(argv) == 0
    printed = capsys.readouterr()
    # The run really used OpenAI for both embeddings and copy, through the fake server.
    paths = {r.path for r in small_openai.requests}
    assert {"/v1/embeddings", "/v1/chat/completions"} <= paths
    for request in small_openai.requests:
        assert {k.casefold(): v for k, v in request.headers.items()}["authorization"] == f"Bearer {KEY}"
    scanned = _scan_tree(tmp_path)
    assert any(p.startswith("run/tb/") for p in scanned), "TensorBoard events must be among the scanned files"
    assert "cache/embeddings.sqlite" in scanned and "run/meta.json" in scanned and "run/metrics.csv" in scanned
    _assert_clean("stdout", printed.out)
    _assert_clean("stderr", printed.err)
    _assert_clean("logs", caplog.text)
    config = SimulationConfig.from_settings({**SMALL_RUN, "embedder": "openai"})
    for obj in (config, make_copywriter(config), make_embedder("openai", cache=tmp_path / "c2.sqlite")):
        _assert_clean(f"repr of {type(obj).__name__}", repr(obj))
        _assert_clean(f"str of {type(obj).__name__}", str(obj))


@pytest.mark.slow
def test_the_key_given_as_a_cli_flag_is_not_written_to_meta_json(
    small_openai: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    argv = ["simulate", "--quiet", "--out", str(out), "--openai-api-key", KEY, *_flags(embedder="openai", iterations=1)]
    monkeypatch.setattr(sys, "argv", ["actionbank", *argv])
    assert main(argv) == 0
    _assert_clean("meta.json", (out / "meta.json").read_bytes())


@pytest.mark.timeout(60)
def test_errors_and_tracebacks_never_show_the_key_even_when_the_server_echoes_it(
    small_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _echoing_errors(monkeypatch)
    kwargs = {"max_retries": 1, "backoff": 0.0, "timeout": 1.0}
    for fault in ("401", "500"):
        for client in (OpenAIEmbedder(**kwargs), OpenAICopywriter(**kwargs)):
            small_openai.queue_fault(fault, times=2)
            with pytest.raises(ServiceError) as info:
                if isinstance(client, OpenAIEmbedder):
                    client.embed(["hello"])
                else:
                    client.write(2, rng=np.random.default_rng(0))
            client.close()
            small_openai.reset()
            assert "you sent Bearer ***" in str(info.value)  # the echo arrived, redacted
            for label, text in (
                ("message", str(info.value)),
                ("repr", repr(info.value)),
                ("traceback", "".join(traceback.format_exception(info.value))),
                ("client repr", repr(client)),
            ):
                _assert_clean(f"{fault} {type(client).__name__} {label}", text)
            # The client's own exception (whose text we cannot redact) is not chained into tracebacks.
            assert info.value.__cause__ is None and info.value.__suppress_context__
    _assert_clean("logs", caplog.text)


def test_the_key_holder_refuses_to_be_pickled() -> None:
    embedder = OpenAIEmbedder(api_key=KEY)
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(embedder._api_key)
    _assert_clean("vars", repr(vars(embedder)))


#: A gateway key (``OPENAI_BASE_URL`` set to a proxy) need not look like ``sk-...``.
CANARY = "gw-CANARY-0f3a9c7e51d24b88"


@pytest.mark.timeout(180)
def test_a_key_without_the_sk_prefix_is_written_nowhere_whatever_the_flag_spelling(
    small_openai: FakeOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every file of two runs (key as ``--openai_api_key=KEY`` and as ``--openai-api-key KEY``) is scanned."""
    monkeypatch.delenv("OPENAI_API_KEY")
    small = _flags(embedder="openai", iterations=1, tensorboard=True)
    for i, key_args in enumerate(([f"--openai_api_key={CANARY}"], ["--openai-api-key", CANARY])):
        argv = ["simulate", "--quiet", "--out", str(tmp_path / f"run{i}"), *key_args, *small]
        monkeypatch.setattr(sys, "argv", ["actionbank", *argv])
        assert main(argv) == 0
        assert small_openai.requests
        for request in small_openai.requests:  # the run really sent this key
            assert {k.casefold(): v for k, v in request.headers.items()}["authorization"] == f"Bearer {CANARY}"
    printed = capsys.readouterr()
    scanned = 0
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), f"the key leaked into {path.relative_to(tmp_path)}"
            assert CANARY[3:].encode() not in path.read_bytes()
            scanned += 1
    assert scanned >= 20 and (tmp_path / "run0" / "meta.json").is_file()
    assert CANARY not in printed.out + printed.err
    meta = (tmp_path / "run1" / "meta.json").read_text()
    assert '"--openai-api-key",\n    "<redacted>"' in meta


@pytest.mark.parametrize("spelling", ["--openai-api-k", "--openai", "--openai_api", "--open"])
def test_abbreviated_flags_are_refused_so_no_spelling_escapes_redaction(
    spelling: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["simulate", "--quiet", "--out", str(out), spelling, CANARY]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert "unrecognized arguments" in err and CANARY not in err


def test_every_spelling_of_every_secret_destination_is_redacted() -> None:
    """Redaction by destination: walk every subcommand's parser for flags that set a secret."""
    import argparse

    from actionbank_env.cli import SUBCOMMANDS, build_parser
    from actionbank_env.provenance import SECRET_DESTS, redact_argv

    parser = build_parser([])
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    for name in SUBCOMMANDS:
        sub = subparsers.choices[name]
        assert sub.allow_abbrev is False, name
        for action in sub._actions:
            if action.dest in SECRET_DESTS:
                for option in action.option_strings:
                    found.append(option)
                    assert CANARY not in " ".join(redact_argv([name, option, CANARY])), option
                    assert CANARY not in " ".join(redact_argv([name, f"{option}={CANARY}"])), option
    assert "--openai-api-key" in found and "--openai_api_key" in found
    # A secret's value is hidden wherever it appears, e.g. pasted into another flag.
    assert CANARY not in " ".join(redact_argv(["--name", f"x{CANARY}y"], secrets=[CANARY]))
