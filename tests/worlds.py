"""Small, cached worlds for tests (hashing embedder: fast and dependency-free; MiniLM for the semantic family)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from actionbank_env.core.embedders import SentenceTransformerEmbedder
from actionbank_env.core.world import World, WorldConfig

#: The smallest full simulation the sweep and benchmark tests run (settings keys, hashing world).
TINY_SETTINGS: dict[str, Any] = {
    "embedder": "hashing",
    "users_per_iteration": 150,
    "iterations": 2,
    "initial_actions": 5,
    "designer.action_pool_size": 40,
    "designer.reward_model": "linear",
    "evaluation_users": 200,
    "report": False,
    "tensorboard": False,
    "threads": 1,
}


@lru_cache(maxsize=8)
def hashing_world(world_seed: int = 0, initial_actions: int = 10, ground_truth: str = "mixture_of_experts") -> World:
    """A small world with the hashing embedder, built once per process for each argument set."""
    return World.build(
        WorldConfig(
            world_seed=world_seed,
            initial_actions=initial_actions,
            embedder="hashing",
            embedding_dim=128,
            ground_truth=ground_truth,
            n_reference_texts=256,
            n_reference_users=1024,
        )
    )


@lru_cache(maxsize=1)
def minilm_embedder() -> SentenceTransformerEmbedder:
    """One offline MiniLM per process (loading it takes seconds); no disk cache."""
    return SentenceTransformerEmbedder()


@lru_cache(maxsize=8)
def minilm_world(
    world_seed: int = 0,
    initial_actions: int = 10,
    ground_truth: str = "semantic",
    n_reference_texts: int = 256,
    **overrides: Any,
) -> World:
    """A small world embedded with MiniLM (the semantic family refuses the hashing embedder)."""
    return World.build(
        WorldConfig(
            world_seed=world_seed,
            initial_actions=initial_actions,
            embedder="minilm",
            cache_embeddings=False,
            ground_truth=ground_truth,
            n_reference_texts=n_reference_texts,
            n_reference_users=1024,
            **overrides,
        ),
        embedder=minilm_embedder(),
    )


def world_for(ground_truth: str, world_seed: int = 0) -> World:
    """The small test world of a family: hashing for mixture of experts and gmm, MiniLM for semantic."""
    if ground_truth == "semantic":  # the default sizes: 512 reference texts, banks of 30
        return minilm_world(world_seed, initial_actions=30, n_reference_texts=512)
    return hashing_world(world_seed, ground_truth=ground_truth)
