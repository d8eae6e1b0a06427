"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_server import FakeOpenAIServer


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
