"""Compiled (numba) kernels of the disjoint LinUCB: one user's scores, one Sherman-Morrison step, a grouped batch.

A sequential LinUCB round is ~20 numpy calls on (d, d) and (K,) arrays, each costing about a microsecond of
dispatch here; the arithmetic itself is ~3K·d² flops. These kernels do a round's arithmetic in one call each
(issue 7: the sequential target of 5e4 decisions/s was out of reach of any numpy loop on this machine, the
bare reference loop included). They work in place on the agent's stacked arrays; ``x`` is always
``[user features, 1]`` and is formed inside the kernels from the user row.

Compiled on first use and cached next to this file (``cache=True``); importing this module imports numba,
so :mod:`agents.linucb` imports it lazily.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "first_argmax_and_ties",
    "greedy_batch",
    "nth_tie",
    "scores_one",
    "spd_inverse",
    "update_one",
    "update_batch",
]

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def _tie_threshold(best: float, tie_tolerance: float) -> float:
    """Scores at or above this tie with ``best`` (the rule of ``choose_actions``)."""
    return best - tie_tolerance * max(abs(best), 1.0)


@_jit
def first_argmax_and_ties(scores: NDArray[np.float64], tie_tolerance: float) -> tuple[int, int]:
    """First index of the maximum of ``scores`` (K,) and how many scores tie with it."""
    best_index = 0
    for a in range(1, scores.shape[0]):
        if scores[a] > scores[best_index]:
            best_index = a
    threshold = _tie_threshold(scores[best_index], tie_tolerance)
    n_ties = 0
    for a in range(scores.shape[0]):
        if scores[a] >= threshold:
            n_ties += 1
    return best_index, n_ties


@_jit
def scores_one(
    user: NDArray[np.float64],
    phi: NDArray[np.float64],
    a_inv: NDArray[np.float64],
    alpha: float,
    tie_tolerance: float,
    out: NDArray[np.float64],
) -> tuple[int, int]:
    """UCB scores of one user for every action into ``out`` (K,); returns (first argmax, number of ties).

    ``score_a = phi_a . x + alpha * sqrt(max(x^T A_a^{-1} x, 0))``; scores within
    ``tie_tolerance * max(|best|, 1)`` of the best count as ties (the same rule as ``choose_actions``).
    """
    n_actions, d = phi.shape
    d_user = d - 1
    for a in range(n_actions):
        score = phi[a, d_user]
        for i in range(d_user):
            score += phi[a, i] * user[i]
        if alpha != 0.0:
            quad = 0.0
            for i in range(d):
                xi = user[i] if i < d_user else 1.0
                row = a_inv[a, i, d_user]
                for j in range(d_user):
                    row += a_inv[a, i, j] * user[j]
                quad += xi * row
            score += alpha * math.sqrt(max(quad, 0.0))
        out[a] = score
    return first_argmax_and_ties(out, tie_tolerance)


@_jit
def nth_tie(scores: NDArray[np.float64], tie_tolerance: float, n: int) -> int:
    """Index of the ``n``-th (0-based) score tied with the maximum (same rule as :func:`scores_one`)."""
    threshold = _tie_threshold(scores.max(), tie_tolerance)
    seen = 0
    for a in range(scores.shape[0]):
        if scores[a] >= threshold:
            if seen == n:
                return a
            seen += 1
    return int(np.argmax(scores))


@_jit
def greedy_batch(scores: NDArray[np.float64], tie_tolerance: float) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """First argmax of each row of ``scores`` (B, K) and how many scores tie with it (same rule as above)."""
    n_rows = scores.shape[0]
    actions = np.zeros(n_rows, dtype=np.int64)
    n_ties = np.zeros(n_rows, dtype=np.int64)
    for row in range(n_rows):
        actions[row], n_ties[row] = first_argmax_and_ties(scores[row], tie_tolerance)
    return actions, n_ties


@_jit
def update_one(
    user: NDArray[np.float64],
    a: int,
    reward: float,
    big_a: NDArray[np.float64],
    a_inv: NDArray[np.float64],
    b: NDArray[np.float64],
    phi: NDArray[np.float64],
    ax: NDArray[np.float64],
) -> None:
    """One Sherman-Morrison step for action ``a``: A += x x^T, A^{-1} -= (A^{-1}x)(A^{-1}x)^T / (1 + x^T A^{-1} x),
    b += r x, phi_a = A^{-1} b. ``ax`` is a (d,) scratch vector."""
    d = b.shape[1]
    d_user = d - 1
    denom = 1.0
    for i in range(d):
        s = a_inv[a, i, d_user]
        for j in range(d_user):
            s += a_inv[a, i, j] * user[j]
        ax[i] = s
        denom += (user[i] if i < d_user else 1.0) * s
    inv_denom = 1.0 / denom
    for i in range(d):
        xi = user[i] if i < d_user else 1.0
        scaled = ax[i] * inv_denom
        for j in range(d):
            xj = user[j] if j < d_user else 1.0
            a_inv[a, i, j] -= scaled * ax[j]
            big_a[a, i, j] += xi * xj
        b[a, i] += reward * xi
    for i in range(d):
        s = 0.0
        for j in range(d):
            s += a_inv[a, i, j] * b[a, j]
        phi[a, i] = s


@_jit
def spd_inverse(
    m: NDArray[np.float64], out: NDArray[np.float64], chol: NDArray[np.float64], chol_inv: NDArray[np.float64]
) -> bool:
    """Inverse of the symmetric positive-definite ``m`` (d, d) into ``out`` by Cholesky (two (d, d) scratch arrays).

    m = L L^T, then m^{-1} = L^{-T} L^{-1}: ~d^3/2 multiply-adds and no allocation (LAPACK's inverse through
    ``np.linalg.inv`` costs ~4 us per 9 x 9 matrix here, mostly call overhead). Returns False, leaving
    ``out`` undefined, when a pivot is not positive (``m`` not numerically SPD).
    """
    d = m.shape[0]
    for j in range(d):
        s = m[j, j]
        for k in range(j):
            s -= chol[j, k] * chol[j, k]
        if not s > 0.0:
            return False
        pivot = math.sqrt(s)
        chol[j, j] = pivot
        for i in range(j + 1, d):
            s = m[i, j]
            for k in range(j):
                s -= chol[i, k] * chol[j, k]
            chol[i, j] = s / pivot
    for j in range(d):  # L^{-1}, lower triangular: forward substitution, column by column
        chol_inv[j, j] = 1.0 / chol[j, j]
        for i in range(j + 1, d):
            s = 0.0
            for k in range(j, i):
                s -= chol[i, k] * chol_inv[k, j]
            chol_inv[i, j] = s / chol[i, i]
    for i in range(d):  # (L^{-1})^T L^{-1}, symmetric
        for j in range(i, d):
            s = 0.0
            for k in range(j, d):
                s += chol_inv[k, i] * chol_inv[k, j]
            out[i, j] = s
            out[j, i] = s
    return True


@_jit
def update_batch(
    users: NDArray[np.float64],
    actions: NDArray[np.int64],
    rewards: NDArray[np.float64],
    big_a: NDArray[np.float64],
    a_inv: NDArray[np.float64],
    b: NDArray[np.float64],
    phi: NDArray[np.float64],
) -> None:
    """Add the batch's x x^T and r x to each served action, then re-invert A of every touched action exactly
    (clearing the drift of earlier Sherman-Morrison steps) and refresh its phi."""
    n_rows, d_user = users.shape
    n_actions, d = b.shape
    touched = np.zeros(n_actions, dtype=np.bool_)
    for row in range(n_rows):
        a = actions[row]
        touched[a] = True
        r = rewards[row]
        for i in range(d):
            xi = users[row, i] if i < d_user else 1.0
            for j in range(d):
                xj = users[row, j] if j < d_user else 1.0
                big_a[a, i, j] += xi * xj
            b[a, i] += r * xi
    chol = np.empty((d, d))
    chol_inv = np.empty((d, d))
    for a in range(n_actions):
        if not touched[a]:
            continue
        if not spd_inverse(big_a[a], a_inv[a], chol, chol_inv):
            a_inv[a] = np.linalg.inv(big_a[a])  # not numerically SPD: LAPACK's LU inverse
        for i in range(d):
            s = 0.0
            for j in range(d):
                s += a_inv[a, i, j] * b[a, j]
            phi[a, i] = s
