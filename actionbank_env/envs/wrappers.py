"""Wrappers that make the outer env trainable with standard RL libraries (SB3, RLlib)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import InvalidAction
from numpy.typing import NDArray

from actionbank_env._validation import check_int
from actionbank_env.core.actions import MAX_TEXT_LENGTH, clean_text, normalize_text
from actionbank_env.errors import ConfigError

__all__ = ["FixedCatalogActionWrapper"]


class FixedCatalogActionWrapper(gym.ActionWrapper[Any, NDArray[np.float32], Any], gym.utils.RecordConstructorArgs):
    """Scores over a fixed catalog of M candidate texts -> the top-``bank_size`` texts as the next bank.

    The wrapped action space is ``Box(-1, 1, (M,), float32)`` (symmetric, as SB3 recommends). The
    ``bank_size`` highest-scoring texts, best first (ties broken by catalog order), become the bank passed
    to :class:`~actionbank_env.envs.bank_design.BankDesignEnv`. Non-finite scores or a wrong shape raise
    ``gymnasium.error.InvalidAction``; scores outside [-1, 1] are accepted (only their order matters).

    Args:
        env: A ``BankDesign-v0`` env (possibly wrapped).
        catalog: The M candidate texts (distinct after normalisation, non-blank, at most
            ``MAX_TEXT_LENGTH`` characters).
        bank_size: Texts per deployed bank, in [1, M].

    Example:
        >>> scores = np.array([0.1, 0.9, -0.5, 0.4], dtype=np.float32)
        >>> FixedCatalogActionWrapper.top_k(scores, ("a", "b", "c", "d"), 2)
        ('b', 'd')
    """

    def __init__(self, env: gym.Env[Any, Any], catalog: Sequence[str], bank_size: int) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, catalog=catalog, bank_size=bank_size)
        gym.ActionWrapper.__init__(self, env)
        if isinstance(catalog, str) or not isinstance(catalog, Sequence):
            raise TypeError(
                f"FixedCatalogActionWrapper.catalog must be a sequence of texts, got {type(catalog).__name__}."
            )
        texts = []
        for i, text in enumerate(catalog):
            if not isinstance(text, str) or not clean_text(text) or len(text) > MAX_TEXT_LENGTH:
                raise ConfigError(
                    f"FixedCatalogActionWrapper.catalog[{i}] must be a non-blank text of at most {MAX_TEXT_LENGTH} "
                    f"characters, got {text!r}."
                )
            texts.append(text)
        if len({normalize_text(t) for t in texts}) != len(texts):
            raise ConfigError("FixedCatalogActionWrapper.catalog must hold distinct texts (after normalisation).")
        self.catalog: tuple[str, ...] = tuple(texts)
        self.bank_size = check_int("FixedCatalogActionWrapper.bank_size", bank_size, low=1, high=len(texts))
        self.action_space = spaces.Box(-1.0, 1.0, shape=(len(texts),), dtype=np.float32)

    @staticmethod
    def top_k(scores: NDArray[np.floating[Any]], catalog: Sequence[str], k: int) -> tuple[str, ...]:
        """The ``k`` texts of ``catalog`` with the highest ``scores``, best first (stable for ties)."""
        order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
        return tuple(catalog[i] for i in order.tolist())

    def action(self, action: Any) -> tuple[str, ...]:
        """The bank (texts) for the scores ``action``, shape (M,)."""
        scores = np.asarray(action)
        if scores.shape != self.action_space.shape or scores.dtype.kind not in "fiu":
            raise InvalidAction(
                f"action must be {len(self.catalog)} numeric scores of shape {self.action_space.shape}, "
                f"got shape {scores.shape} and dtype {scores.dtype}."
            )
        if not np.all(np.isfinite(scores)):
            raise InvalidAction(f"action scores must be finite, got {scores!r}.")
        return self.top_k(scores, self.catalog, self.bank_size)
