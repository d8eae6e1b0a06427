"""Feature engineering shared by the reward models: user scaling, an embedding PCA and batched pair designs.

The PCA is fitted on the *distinct* served embeddings (one row per action, however often it was served),
optionally together with ``reference_embeddings`` (a broader sample of texts' embeddings). A log holds only
K distinct actions (say 30), so the number of components is capped at the rank of the centred distinct
rows: asking for 16 components of 5 actions gives 4, never a basis padded with arbitrary directions that a
new candidate would load on at random. Passing ``reference_embeddings`` fits the basis on the directions in
which texts in general vary, so new candidates keep more of their variation after projection; the models
still only learn effects along directions in which the served actions varied.

All projected coordinates share one scale factor (the root-mean-square projected coordinate of the fitting
rows), so the geometry of the embedding space is kept; per-component whitening would blow up directions that
the few served actions barely explore.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from actionbank_env.core.pca import principal_axes

__all__ = [
    "FeatureMap",
    "action_folds",
    "distinct_rows",
    "sorted_unique_rows",
    "pair_features",
    "grid_features",
    "user_chunks",
    "sigmoid",
]

_ARRAY_KEYS = ("user_mean", "user_scale", "embed_mean", "components", "embed_scale")

#: Rows per chunk when hashing or comparing rows (bounds the float64 temporaries to a few MiB).
_CHUNK_ROWS = 1 << 14


def distinct_rows(
    rows: NDArray[np.floating], *, probe: NDArray[np.float64] | None = None
) -> tuple[NDArray[np.floating], NDArray[np.int64]]:
    """``np.unique(rows, axis=0, return_inverse=True)`` in O(n d) for logs that repeat a few distinct rows.

    A log of n rows serves K << n actions, and ``np.unique(axis=0)`` sorts all n rows as byte strings
    (minutes at n = 1e6). Here each row is hashed to one float (a dot product with a fixed probe vector);
    the rows with the first occurrence of each key are the candidates, every row is checked equal to its
    candidate, and only the candidates go through the exact ``np.unique``. Equal rows may get unequal keys
    (the exact pass merges them); unequal rows with equal keys fail the check, and then the plain
    ``np.unique`` runs. The result is exact either way, and has the input's dtype.

    Args:
        rows: The rows, shape (n, d).
        probe: The hashing weights, shape (d,); default a fixed vector without zero weights. Only tests pass
            one (to build a key collision exactly, whatever the CPU's dot-product rounding).

    Example:
        >>> rows = np.array([[2.0, 0.0], [1.0, 5.0], [2.0, 0.0]], dtype=np.float32)
        >>> distinct, inverse = distinct_rows(rows)
        >>> distinct.tolist(), inverse.tolist()
        ([[1.0, 5.0], [2.0, 0.0]], [1, 0, 1])
    """
    rows = np.ascontiguousarray(rows)
    n, d = rows.shape
    if n == 0:
        return rows.copy(), np.zeros(0, dtype=np.int64)
    if probe is None:
        probe = np.cos(np.arange(1, d + 1, dtype=np.float64) * 1.6180339887) + 1.5  # fixed, no zero weights
    keys = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, n)
        keys[start:stop] = rows[start:stop].astype(np.float64) @ probe
    _, first, key_index = np.unique(keys, return_index=True, return_inverse=True)
    candidates = rows[first]
    for start in range(0, n, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, n)
        if not np.array_equal(rows[start:stop], candidates[key_index[start:stop]]):
            distinct, inverse = np.unique(rows, axis=0, return_inverse=True)  # a key collision: exact path
            return distinct, inverse.reshape(-1).astype(np.int64)
    distinct, merge = np.unique(candidates, axis=0, return_inverse=True)
    return distinct, merge.reshape(-1).astype(np.int64)[key_index]


def sorted_unique_rows(rows: NDArray[np.float64]) -> NDArray[np.float64]:
    """``np.unique(rows, axis=0)``: the distinct rows in lexicographic order, without sorting whole rows.

    ``np.unique(axis=0)`` sorts the rows as records compared field by field (~13 ms for the 2,070 x 256 rows a
    designer's PCA is fitted on). When the first column alone orders the rows strictly (no two equal, no NaN:
    the usual case for embeddings), that order is the lexicographic one and no two rows are equal, so one
    argsort of the column gives the same array; otherwise ``np.unique`` runs.

    Example:
        >>> sorted_unique_rows(np.array([[2.0, 1.0], [1.0, 3.0]])).tolist()
        [[1.0, 3.0], [2.0, 1.0]]
        >>> sorted_unique_rows(np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])).tolist()  # ties: np.unique
        [[1.0, 0.0], [1.0, 1.0]]
    """
    if rows.ndim == 2 and rows.shape[0] > 0 and rows.shape[1] > 0:
        order = np.argsort(rows[:, 0], kind="stable")
        first = rows[order, 0]
        if bool(np.all(first[1:] > first[:-1])):
            out: NDArray[np.float64] = rows[order]
            return out
    return np.unique(rows, axis=0)


def sigmoid(logits: NDArray[np.floating]) -> NDArray[np.float64]:
    """Numerically stable logistic function, float64.

    Example:
        >>> sigmoid(np.array([-800.0, 0.0, 800.0]))
        array([0. , 0.5, 1. ])
    """
    logits = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -logits))


@dataclass(frozen=True, slots=True)
class FeatureMap:
    """Standardised users and PCA-projected action embeddings.

    Attributes:
        user_mean: Mean of the training users, shape (d_user,).
        user_scale: Standard deviation of the training users (1 where constant), shape (d_user,).
        embed_mean: Mean of the distinct fitting embeddings, shape (d_embed,).
        components: Orthonormal principal directions, shape (r, d_embed), r = min(requested, rank), r >= 1.
        embed_scale: One positive scale shared by all projected coordinates, shape ().

    Example:
        >>> rng = np.random.default_rng(0)
        >>> embeddings = np.repeat(rng.standard_normal((5, 12)).astype(np.float32), 20, axis=0)
        >>> fmap = FeatureMap.fit(rng.random((100, 3)), embeddings, n_components=16)
        >>> fmap.n_components  # 5 distinct actions have rank 4 once centred
        4
        >>> fmap.actions(embeddings[:2]).shape
        (2, 4)
    """

    user_mean: NDArray[np.float64]
    user_scale: NDArray[np.float64]
    embed_mean: NDArray[np.float64]
    components: NDArray[np.float64]
    embed_scale: NDArray[np.float64]

    @classmethod
    def fit(
        cls,
        users: NDArray[np.float64],
        embeddings: NDArray[np.floating],
        *,
        n_components: int,
        reference_embeddings: NDArray[np.floating] | None = None,
    ) -> FeatureMap:
        """Fit the user scaling on ``users`` (n, d_user) and the PCA on the distinct rows of ``embeddings``.

        Args:
            users: Training users, shape (n, d_user).
            embeddings: Embedding of the action served on each row, shape (n, d_embed) (only the distinct
                rows matter, so passing each distinct row once gives the same map).
            n_components: Requested number of components; capped at the rank of the distinct rows.
            reference_embeddings: Optional extra embeddings (n_ref, d_embed) the PCA is also fitted on.
        """
        user_mean = users.mean(axis=0)
        user_scale = users.std(axis=0)
        user_scale = np.where(user_scale > 1e-8, user_scale, 1.0)
        rows = np.asarray(distinct_rows(np.asarray(embeddings))[0], dtype=np.float64)
        if reference_embeddings is not None:
            rows = np.vstack([rows, np.asarray(reference_embeddings, dtype=np.float64)])
        distinct = sorted_unique_rows(rows)  # sorted, so the basis does not depend on row order
        embed_mean, centred, singular, vt = principal_axes(distinct)
        tol = max(singular.max(initial=0.0) * max(centred.shape) * np.finfo(np.float64).eps, 1e-10)
        rank = int(np.sum(singular > tol))
        r = max(1, min(int(n_components), rank))
        components = vt[:r]
        # Fix the SVD's sign ambiguity: the largest-magnitude loading of each component is positive.
        signs = np.sign(components[np.arange(r), np.argmax(np.abs(components), axis=1)])
        components = components * np.where(signs == 0, 1.0, signs)[:, None]
        rms = float(np.sqrt(np.sum(singular[:r] ** 2) / (distinct.shape[0] * r))) if rank else 0.0
        embed_scale = np.asarray(rms if rms > 1e-12 else 1.0)
        return cls(user_mean, user_scale, embed_mean, np.ascontiguousarray(components), embed_scale)

    @property
    def d_user(self) -> int:
        """Number of user features."""
        return int(self.user_mean.shape[0])

    @property
    def n_components(self) -> int:
        """Number of embedding components r."""
        return int(self.components.shape[0])

    def users(self, users: NDArray[np.float64]) -> NDArray[np.float64]:
        """Standardised users, (n, d_user) -> (n, d_user)."""
        return (users - self.user_mean) / self.user_scale

    def actions(self, embeddings: NDArray[np.floating]) -> NDArray[np.float64]:
        """Projected embeddings, (m, d_embed) -> (m, r)."""
        centred = np.asarray(embeddings, dtype=np.float64) - self.embed_mean
        return (centred @ self.components.T) / float(self.embed_scale)

    def to_arrays(self) -> dict[str, NDArray[np.float64]]:
        """The state as named arrays (for ``np.savez``), keys prefixed with ``features.``."""
        return {f"features.{key}": np.asarray(getattr(self, key)) for key in _ARRAY_KEYS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, NDArray[np.float64]]) -> FeatureMap:
        """Inverse of :meth:`to_arrays`."""
        return cls(*(np.asarray(arrays[f"features.{key}"], dtype=np.float64) for key in _ARRAY_KEYS))


def n_pair_features(d_user: int, r: int, *, interactions: bool) -> int:
    """Width of the pair design: d_user + r (+ d_user * r with interactions)."""
    return d_user + r + (d_user * r if interactions else 0)


def pair_features(
    users_z: NDArray[np.float64],
    actions_z: NDArray[np.float64],
    *,
    interactions: bool,
    dtype: type = np.float64,
) -> NDArray[np.floating]:
    """Row-paired design [user, action, user ⊗ action] for logged rows.

    Args:
        users_z: Standardised users, shape (n, d_user).
        actions_z: Projected embedding of each row's action, shape (n, r).
        interactions: Whether to append the outer-product block (row-major, user index outer).
        dtype: Output dtype.

    Returns:
        Design matrix, shape (n, d_user + r [+ d_user * r]).

    Example:
        >>> pair_features(np.array([[1.0, 2.0]]), np.array([[3.0]]), interactions=True)
        array([[1., 2., 3., 3., 6.]])
    """
    n, d_user = users_z.shape
    r = actions_z.shape[1]
    out = np.empty((n, n_pair_features(d_user, r, interactions=interactions)), dtype=dtype)
    out[:, :d_user] = users_z
    out[:, d_user : d_user + r] = actions_z
    if interactions:
        block = out[:, d_user + r :].reshape(n, d_user, r)
        np.multiply(users_z[:, :, None], actions_z[:, None, :], out=block, casting="same_kind")
    return out


def grid_features(
    users_z: NDArray[np.float64],
    actions_z: NDArray[np.float64],
    *,
    interactions: bool,
    dtype: type = np.float64,
) -> NDArray[np.floating]:
    """Design for every user x action pair, users outer: row ``i * m + j`` pairs user i with action j.

    Args:
        users_z: Standardised users, shape (n_users, d_user).
        actions_z: Projected embeddings, shape (n_actions, r).
        interactions: Whether to append the outer-product block.
        dtype: Output dtype.

    Returns:
        Design matrix, shape (n_users * n_actions, n_features), built without a Python loop over pairs.
    """
    n, d_user = users_z.shape
    m, r = actions_z.shape
    out = np.empty((n, m, n_pair_features(d_user, r, interactions=interactions)), dtype=dtype)
    out[:, :, :d_user] = users_z[:, None, :]
    out[:, :, d_user : d_user + r] = actions_z[None, :, :]
    if interactions:
        block = out[:, :, d_user + r :].reshape(n, m, d_user, r)
        np.multiply(users_z[:, None, :, None], actions_z[None, :, None, :], out=block, casting="same_kind")
    return out.reshape(n * m, -1)


def user_chunks(n_users: int, n_actions: int, max_pairs: int) -> Iterator[slice]:
    """Slices of users such that each chunk scores at most ``max_pairs`` pairs (at least one user).

    Example:
        >>> [(s.start, s.stop) for s in user_chunks(5, 3, 7)]
        [(0, 2), (2, 4), (4, 5)]
    """
    step = max(1, int(max_pairs) // max(1, int(n_actions)))
    for start in range(0, n_users, step):
        yield slice(start, min(start + step, n_users))


def action_folds(n_actions: int, n_folds: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Fold of each distinct served action for cross-validation grouped by action, shape (n_actions,).

    Whole actions are held out, so a fold's score is measured on texts the fit never saw served (what bank
    design asks of a reward model); ``min(n_folds, n_actions)`` near-equal folds of a random permutation.

    Example:
        >>> np.bincount(action_folds(7, 3, np.random.default_rng(0))).tolist()
        [3, 2, 2]
    """
    n_folds = max(1, min(int(n_folds), int(n_actions)))
    folds = np.empty(n_actions, dtype=np.int64)
    folds[rng.permutation(n_actions)] = np.arange(n_actions) % n_folds
    return folds
