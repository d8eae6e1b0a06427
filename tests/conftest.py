"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.fakes.openai_server import FakeOpenAIServer

# Property tests draw the same examples on every machine and run (a red CI run must be reproducible, and a test
# suite must not pass or fail by the draw); `pytest --hypothesis-profile=explore` searches new examples.
settings.register_profile("default", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, max_examples=100, print_blob=True)
settings.load_profile("default")


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """An OpenAI-compatible server on 127.0.0.1 (``.base_url``), with scripted faults; stopped afterwards."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread() -> Iterator[None]:
    """Two cores, several BLAS pools: oversubscription made small solves 5-25x slower here."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
