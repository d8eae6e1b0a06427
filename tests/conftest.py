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
