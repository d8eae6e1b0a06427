"""Helpers shared by the targeting agents: input checks, PCA of embeddings, fast Decisions."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env.core.actions import ActionBank
from actionbank_env.core.pca import principal_axes
from actionbank_env.errors import ConfigError
from actionbank_env.protocols import Decision

__all__ = ["EmbeddingPCA", "make_decision", "check_users", "check_feedback", "require_bank"]


def make_decision(actions: NDArray[np.int64], propensities: NDArray[np.float64]) -> Decision:
    """A :class:`Decision` built without re-validating arrays the agent produced itself.

    ``Decision.__post_init__`` runs two ``check_array`` calls (about 20 us), more than a whole sequential
    LinUCB round; agents construct int64 / float64 1-D arrays of equal length, so the checks are skipped here.
    """
    decision = object.__new__(Decision)
    object.__setattr__(decision, "actions", actions)
    object.__setattr__(decision, "propensities", propensities)
    return decision


def check_users(users: Any, d_user: int) -> NDArray[np.float64]:
    """Return ``users`` as a float64 (B, d_user) array; a cheap shape check for the hot path."""
    arr: NDArray[np.float64] = np.asarray(users, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != d_user:
        raise ConfigError(f"users must have shape (B, {d_user}), got {arr.shape}.")
    return arr


def check_feedback(
    users: Any, actions: Any, rewards: Any, d_user: int, n_actions: int
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """Validate an ``update`` batch: users (B, d_user), actions (B,) in [0, n_actions), rewards (B,)."""
    users = check_users(users, d_user)
    actions = np.asarray(actions, dtype=np.int64)
    rewards = np.asarray(rewards, dtype=np.float64)
    n = users.shape[0]
    if actions.shape != (n,) or rewards.shape != (n,):
        raise ConfigError(
            f"actions and rewards must have shape ({n},) to match users, got {actions.shape} and {rewards.shape}."
        )
    if n and (actions.min() < 0 or actions.max() >= n_actions):
        raise ConfigError(
            f"actions must be indices in [0, {n_actions}), got values in [{actions.min()}, {actions.max()}]."
        )
    return users, actions, rewards


def check_bank(bank: Any) -> ActionBank:
    """``bank`` if it is a non-empty :class:`ActionBank` (what every ``set_bank`` accepts)."""
    if not isinstance(bank, ActionBank):
        raise TypeError(f"bank must be an ActionBank, got {type(bank).__name__}.")
    if len(bank) == 0:
        raise ConfigError("bank must contain at least one action, got an empty bank.")
    return bank


def require_bank(bank: object, agent: str) -> None:
    """Raise a clear error when ``act``/``update`` is called before ``set_bank``."""
    if bank is None:
        raise RuntimeError(f"{agent}.act/update called before set_bank(bank); give the agent a bank first.")


class EmbeddingPCA:
    """PCA of action embeddings fitted once on a world-side reference sample (numpy SVD).

    The projection is centred on the reference mean and scaled so projected reference rows have a mean
    squared norm of 1, which keeps bilinear user x embedding features on the scale of the user features.

    Args:
        reference: Reference embeddings, shape (n_ref, d_embed).
        n_components: Wanted components; clipped to ``min(d_embed, n_ref - 1)`` (what the reference supports).
        name: Field name used in error messages.

    Example:
        >>> pca = EmbeddingPCA(np.random.default_rng(0).normal(size=(20, 5)), 3)
        >>> pca.transform(np.ones((4, 5))).shape
        (4, 3)
    """

    def __init__(self, reference: NDArray[Any], n_components: int, *, name: str = "pca_components") -> None:
        reference = np.asarray(reference, dtype=np.float64)
        if reference.ndim != 2 or reference.shape[0] < 2:
            raise ConfigError(
                f"AgentContext.reference_embeddings must have at least 2 rows to fit the PCA behind {name}, "
                f"got shape {reference.shape}."
            )
        pca = principal_axes(reference)
        self.mean: NDArray[np.float64] = pca.mean
        centred = pca.centred
        self.n_components = max(1, min(n_components, pca.rank(1e-10, atol=1e-310)))
        self.components: NDArray[np.float64] = pca.axes[: self.n_components]
        projected = centred @ self.components.T
        scale = float(np.sqrt(np.mean(np.sum(projected**2, axis=1))))
        self.scale = scale if scale > 0 else 1.0

    def transform(self, embeddings: NDArray[Any]) -> NDArray[np.float64]:
        """Project embeddings (m, d_embed) -> (m, n_components)."""
        return ((np.asarray(embeddings, dtype=np.float64) - self.mean) @ self.components.T) / self.scale


class IdentityProjection:
    """No reduction: the embeddings as float64 (used when ``use_pca=False``)."""

    def __init__(self, d_embed: int) -> None:
        self.n_components = d_embed

    def transform(self, embeddings: NDArray[Any]) -> NDArray[np.float64]:
        """Return embeddings (m, d_embed) as float64."""
        return np.asarray(embeddings, dtype=np.float64)


def make_projection(context: Any, use_pca: bool, n_components: int, agent: str) -> EmbeddingPCA | IdentityProjection:
    """The embedding projection of an agent: PCA on ``context.reference_embeddings`` or the identity."""
    if use_pca:
        return EmbeddingPCA(context.reference_embeddings, n_components, name=f"{agent}.pca_components")
    return IdentityProjection(int(context.d_embed))
