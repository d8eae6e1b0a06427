"""One PCA of embeddings: centre the rows, take their SVD, count the supported axes.

Four components project embeddings (the bank-design observation, the ground truth's view of the embedding space,
the agents' action features, the reward models' feature map); each keeps its own rank tolerance and scaling rule
(whitening, a 3-sd box, an RMS scale, sign-fixed loadings) on top of this one decomposition.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

__all__ = ["PrincipalAxes", "principal_axes"]


class PrincipalAxes(NamedTuple):
    """The SVD of centred rows.

    Attributes:
        mean: Column means of the rows, shape (d,).
        centred: The rows minus ``mean``, shape (n, d).
        singular: Singular values, descending, shape (min(n, d),).
        axes: Right singular vectors (principal axes) as rows, shape (min(n, d), d).
    """

    mean: NDArray[np.float64]
    centred: NDArray[np.float64]
    singular: NDArray[np.float64]
    axes: NDArray[np.float64]

    def rank(self, rtol: float, atol: float = 0.0) -> int:
        """Axes whose singular value exceeds ``max(rtol * largest, atol)``.

        Example:
            >>> principal_axes(np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])).rank(1e-8)
            1
        """
        if not self.singular.size:
            return 0
        return int(np.sum(self.singular > max(float(self.singular[0]) * rtol, atol)))


def principal_axes(rows: NDArray[np.floating[Any]]) -> PrincipalAxes:
    """Centre ``rows`` (n, d) as float64 and decompose them (``numpy.linalg.svd``, thin)."""
    data = np.asarray(rows, dtype=np.float64)
    mean = data.mean(axis=0)
    centred = data - mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    return PrincipalAxes(mean, centred, singular, vt)
