"""Small, cached worlds for tests (hashing embedder: fast and dependency-free)."""

from __future__ import annotations

from functools import lru_cache

from actionbank_env.core.world import World, WorldConfig


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
