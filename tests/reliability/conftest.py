"""Shared pieces of the reliability suite: a small, fast simulation config and folder snapshots."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAIServer

#: A distinctive fake API key: no file, log, message or repr may ever contain it.
KEY = "sk-test-SECRET-abc123-RELIABILITY"

#: A simulation small enough to run several times per test file (hashing embedder, linear reward model).
SMALL_RUN: dict[str, Any] = {
    "embedder": "hashing",
    "users_per_iteration": 100,
    "iterations": 2,
    "initial_actions": 5,
    "designer.action_pool_size": 40,
    "designer.action_bank_size": 3,
    "designer.reward_model": "linear",
    "designer.n_representative_users": 32,
    "evaluation_users": 100,
    "report": False,
    "tensorboard": False,
}


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative POSIX path -> bytes); symlinks are recorded by their target."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = b"symlink->" + str(path.readlink()).encode()
        elif path.is_file():
            out[rel] = path.read_bytes()
    return out


def _strip_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_timing(v) for k, v in value.items() if not k.endswith("_seconds")}
    if isinstance(value, list):
        return [_strip_timing(v) for v in value]
    return value


def comparable_files(folder: Path) -> dict[str, Any]:
    """Results files except meta.json, TensorBoard events and temp files; JSON without durations.

    The same comparison as ``tests/test_experiment.py`` uses for resume-after-SIGKILL.
    """
    out: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or rel == "meta.json" or rel.startswith("tb/"):
            continue
        out[rel] = _strip_timing(json.loads(path.read_text())) if path.suffix == ".json" else path.read_bytes()
    return out


def temp_files(root: Path) -> list[Path]:
    """Temp files of ``atomic_write`` (``.<name>.*.tmp``) left anywhere under ``root``."""
    return [p for p in root.rglob(".*.tmp")]


def share_worlds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let ``run_simulation`` reuse one World per WorldConfig in this process (``envs._common.cached_world``).

    A world is a pure, immutable function of its config (the envs already share them this way), so this
    changes no result; it only skips rebuilding the same world (about 2 s) for every run of a test. That a
    world rebuilt in another process gives the same results is ``tests/test_experiment.py``'s SIGKILL test.
    """
    from actionbank_env import experiment
    from actionbank_env.core.world import World
    from actionbank_env.envs._common import cached_world

    class _SharedWorld(World):
        @classmethod
        def build(cls, config: Any = None, **kwargs: Any) -> World:
            return cached_world(config) if config is not None and not kwargs else World.build(config, **kwargs)

    monkeypatch.setattr(experiment, "World", _SharedWorld)


@pytest.fixture
def shared_worlds(monkeypatch: pytest.MonkeyPatch) -> None:
    """:func:`share_worlds` for one test."""
    share_worlds(monkeypatch)


@pytest.fixture(scope="session")
def small_run_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of :data:`SMALL_RUN` (seed 0), shared by the crash-safety tests."""
    from actionbank_env.config import SimulationConfig
    from actionbank_env.experiment import run_simulation

    out = tmp_path_factory.mktemp("reference") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        share_worlds(monkeypatch)
        return run_simulation(SimulationConfig.from_settings(SMALL_RUN), out=out).path


@pytest.fixture
def small_openai(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeOpenAIServer]:
    """A fake OpenAI server answering 64-D embeddings, with the environment a user would set for it.

    Sets ``OPENAI_API_KEY`` (:data:`KEY`), ``OPENAI_BASE_URL`` (the openai client reads it when no
    ``base_url`` is passed, which is how ``make_embedder``/``make_copywriter`` build their clients) and
    ``ACTIONBANK_CACHE_DIR`` (``tmp_path / "cache"``). ``text-embedding-3-small`` is given 64 dimensions here
    only to keep the tests fast (the client parses every float of every vector); nothing else changes.
    """
    import actionbank_env.core.embedders as embedders

    monkeypatch.setitem(embedders._OPENAI_DIMS, "text-embedding-3-small", 64)
    with FakeOpenAIServer(default_dim=64) as server:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("ACTIONBANK_CACHE_DIR", str(tmp_path / "cache"))
        yield server
