"""A fixed, world-level projection of action embeddings to bounded observation features.

Shared by the environments' bank observations and by agents that must build the same observations
(e.g. a Stable-Baselines3 policy serving as the company's agent).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env.core.actions import ActionBank
from actionbank_env.core.pca import principal_axes

__all__ = ["BankProjection", "padded_bank"]


class BankProjection:
    """A fixed, world-level map from embeddings to bounded observation features.

    The top ``d_obs`` principal components of ``world.reference_embeddings``, each divided by three
    standard deviations of the reference texts and clipped to [-1, 1]. Fixed by the world, so one policy
    sees every bank (any texts) in the same coordinates. Components beyond the rank are zero.

    Args:
        reference_embeddings: Shape (n_ref, d_embed).
        d_obs: Output dimension.

    Example:
        >>> proj = BankProjection(np.random.default_rng(0).standard_normal((50, 6)), 4)
        >>> out = proj(np.ones((3, 6), np.float32))
        >>> out.shape, out.dtype, bool(np.all(np.abs(out) <= 1))
        ((3, 4), dtype('float32'), True)
    """

    def __init__(self, reference_embeddings: NDArray[np.floating[Any]], d_obs: int) -> None:
        ref = np.asarray(reference_embeddings, dtype=np.float64)
        self.d_obs = int(d_obs)
        pca = principal_axes(ref)
        self.mean, s, vt = pca.mean, pca.singular, pca.axes
        k = min(self.d_obs, pca.rank(1e-8))
        sd = s[:k] / np.sqrt(max(ref.shape[0] - 1, 1))
        components = np.zeros((ref.shape[1], self.d_obs))
        components[:, :k] = vt[:k].T / (3.0 * sd)
        self.components = components

    def __call__(self, embeddings: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
        """Projected embeddings, shape (m, d_obs), float32 in [-1, 1]."""
        if len(embeddings) == 0:
            return np.zeros((0, self.d_obs), dtype=np.float32)
        out: NDArray[np.float64] = (np.asarray(embeddings, dtype=np.float64) - self.mean) @ self.components
        np.clip(out, -1.0, 1.0, out=out)
        return out.astype(np.float32)


def padded_bank(
    projection: BankProjection, bank: ActionBank, k_max: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Bank features padded to ``k_max`` rows, shape (k_max, d_obs), and the 0/1 mask, shape (k_max,)."""
    features = np.zeros((k_max, projection.d_obs), dtype=np.float32)
    features[: len(bank)] = projection(bank.embeddings)
    mask = np.zeros(k_max, dtype=np.float32)
    mask[: len(bank)] = 1.0
    features.setflags(write=False)
    mask.setflags(write=False)
    return features, mask
