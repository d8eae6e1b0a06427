"""Stable-Baselines3 names shared by ``actionbank train`` and the ``sb3`` targeting agent."""

from __future__ import annotations

from typing import Any

from actionbank_env._validation import check_choice

__all__ = ["SB3_ALGORITHMS", "sb3_class"]

#: Algorithm names and their stable_baselines3 classes.
SB3_ALGORITHMS: dict[str, str] = {"ppo": "PPO", "a2c": "A2C", "dqn": "DQN"}


def sb3_class(name: str, *, field: str = "algo") -> Any:
    """The stable_baselines3 class of ``name`` (``ppo``, ``a2c``, ``dqn``; case-insensitive); imports SB3."""
    import stable_baselines3

    key = check_choice(field, name.lower() if isinstance(name, str) else name, SB3_ALGORITHMS)
    return getattr(stable_baselines3, SB3_ALGORITHMS[key])
