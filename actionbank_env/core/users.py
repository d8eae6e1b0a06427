"""The user population: 8 named features in [0, 1], correlated through archetypes.

Each archetype is a logit-normal distribution: features = sigmoid(logit(mean) + spread * L z), where L is
the Cholesky factor of a correlation matrix that ties, for example, price sensitivity to urgency
response and income to quality focus, the way real customer bases look.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_array, check_int, check_real
from actionbank_env.core._math import logistic_inplace
from actionbank_env.errors import ConfigError

__all__ = ["FEATURE_NAMES", "Archetype", "DEFAULT_ARCHETYPES", "UserBatch", "UserPopulation"]

#: The default user features, in column order.
FEATURE_NAMES: tuple[str, ...] = (
    "age_norm",
    "income_level",
    "tech_savviness",
    "price_sensitivity",
    "brand_loyalty",
    "social_influence",
    "urgency_response",
    "quality_focus",
)


@dataclass(frozen=True, slots=True)
class Archetype:
    """One customer segment.

    Attributes:
        name: Segment label stored with each user.
        weight: Share of the population (weights are normalised over archetypes).
        mean: Typical feature values in (0, 1), shape (d_user,).
        spread: Standard deviation on the logit scale; larger means a more varied segment.
    """

    name: str
    weight: float
    mean: tuple[float, ...]
    spread: float = 0.6

    def __post_init__(self) -> None:
        check_real(f"Archetype[{self.name}].weight", self.weight, low=0.0, low_open=True)
        check_real(f"Archetype[{self.name}].spread", self.spread, low=0.0)
        check_array(f"Archetype[{self.name}].mean", self.mean, ndim=1, low=0.0, high=1.0)
        if any(m <= 0.0 or m >= 1.0 for m in self.mean):
            raise ConfigError(f"Archetype[{self.name}].mean must lie strictly inside (0, 1), got {self.mean}.")


#                         age  income tech  price brand social urgency quality
DEFAULT_ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("young_tech_savvy", 0.24, (0.22, 0.40, 0.85, 0.55, 0.30, 0.75, 0.60, 0.50)),
    Archetype("busy_professional", 0.26, (0.45, 0.75, 0.65, 0.25, 0.50, 0.45, 0.35, 0.75)),
    Archetype("budget_family", 0.28, (0.50, 0.30, 0.40, 0.85, 0.45, 0.50, 0.75, 0.35)),
    Archetype("premium_loyalist", 0.14, (0.65, 0.85, 0.45, 0.15, 0.85, 0.35, 0.25, 0.90)),
    Archetype("retired_bargain_hunter", 0.08, (0.85, 0.35, 0.20, 0.75, 0.70, 0.25, 0.45, 0.55)),
)

# Within-segment correlations (same column order as FEATURE_NAMES).
_DEFAULT_CORRELATION = np.array(
    [
        # age  inc   tech  price brand soc   urg   qual
        [1.00, 0.25, -0.40, 0.00, 0.25, -0.30, -0.10, 0.10],
        [0.25, 1.00, 0.10, -0.50, 0.10, 0.00, -0.20, 0.45],
        [-0.40, 0.10, 1.00, 0.00, -0.10, 0.35, 0.10, 0.00],
        [0.00, -0.50, 0.00, 1.00, -0.15, 0.10, 0.45, -0.35],
        [0.25, 0.10, -0.10, -0.15, 1.00, 0.00, -0.10, 0.30],
        [-0.30, 0.00, 0.35, 0.10, 0.00, 1.00, 0.30, 0.00],
        [-0.10, -0.20, 0.10, 0.45, -0.10, 0.30, 1.00, -0.10],
        [0.10, 0.45, 0.00, -0.35, 0.30, 0.00, -0.10, 1.00],
    ]
)


@dataclass(frozen=True, slots=True, eq=False)
class UserBatch:
    """A batch of users.

    Attributes:
        ids: Unique user ids, int64, shape (n,).
        features: Feature values in [0, 1], float64, shape (n, d_user), read-only.
        archetypes: Index of each user's archetype, int64, shape (n,).
        archetype_names: Names indexed by ``archetypes``.
        feature_names: Column names of ``features``.
    """

    ids: NDArray[np.int64]
    features: NDArray[np.float64]
    archetypes: NDArray[np.int64]
    archetype_names: tuple[str, ...]
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name, arr, shape, dtype in (
            ("ids", self.ids, (n,), np.int64),
            ("features", self.features, (n, len(self.feature_names)), np.float64),
            ("archetypes", self.archetypes, (n,), np.int64),
        ):
            checked = check_array(f"UserBatch.{name}", arr, shape=shape, dtype=dtype)
            checked.setflags(write=False)
            object.__setattr__(self, name, checked)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UserBatch):
            return NotImplemented
        return (
            self.archetype_names == other.archetype_names
            and self.feature_names == other.feature_names
            and np.array_equal(self.ids, other.ids)
            and np.array_equal(self.archetypes, other.archetypes)
            and np.array_equal(self.features, other.features)
        )

    __hash__ = None  # type: ignore[assignment]  # holds arrays: equal by value, not hashable

    def take(self, index: NDArray[np.int64] | slice) -> UserBatch:
        """Sub-batch at ``index`` (positions, a slice or a boolean mask)."""
        return UserBatch(
            self.ids[index], self.features[index], self.archetypes[index], self.archetype_names, self.feature_names
        )

    @property
    def archetype_labels(self) -> NDArray[np.str_]:
        """Archetype name of each user, shape (n,)."""
        return np.asarray(self.archetype_names)[self.archetypes]

    def to_columns(self) -> dict[str, Any]:
        """Columnar dict: user_id, archetype and one column per feature."""
        cols: dict[str, Any] = {"user_id": self.ids, "archetype": self.archetype_labels}
        for j, name in enumerate(self.feature_names):
            cols[name] = self.features[:, j]
        return cols

    @classmethod
    def from_columns(cls, columns: dict[str, Any], archetype_names: Sequence[str] | None = None) -> UserBatch:
        """Inverse of :meth:`to_columns`; feature columns are taken in :data:`FEATURE_NAMES` order."""
        labels = np.asarray(columns["archetype"]).astype(str)
        names = tuple(archetype_names) if archetype_names is not None else tuple(sorted(set(labels.tolist())))
        lookup = {n: i for i, n in enumerate(names)}
        unknown = sorted(set(labels.tolist()) - set(lookup))
        if unknown:
            raise ConfigError(f"users.archetype must be one of {list(names)}, got {unknown[:3]}.")
        missing = [f for f in FEATURE_NAMES if f not in columns]
        if missing:
            raise ConfigError(f"users must have the feature columns {list(FEATURE_NAMES)}; missing {missing}.")
        features = np.column_stack([np.asarray(columns[f], dtype=np.float64) for f in FEATURE_NAMES])
        check_array("users.features", features, low=0.0, high=1.0)
        return cls(
            ids=np.asarray(columns["user_id"], dtype=np.int64),
            features=features,
            archetypes=np.asarray([lookup[x] for x in labels], dtype=np.int64),
            archetype_names=names,
        )

    @classmethod
    def concat(cls, batches: Sequence[UserBatch]) -> UserBatch:
        """Stack batches that share archetype and feature names."""
        if not batches:
            raise ValueError("UserBatch.concat needs at least one batch.")
        first = batches[0]
        return cls(
            np.concatenate([b.ids for b in batches]),
            np.concatenate([b.features for b in batches]),
            np.concatenate([b.archetypes for b in batches]),
            first.archetype_names,
            first.feature_names,
        )


class UserPopulation:
    """A mixture of archetypes from which users are drawn, vectorised.

    Args:
        archetypes: The segments; their feature means must have ``len(feature_names)`` entries.
        correlation: Within-segment correlation matrix of the logit-scale noise, shape (d_user, d_user).
        feature_names: Column names.

    Example:
        >>> pop = UserPopulation()
        >>> users = pop.sample(5, rng=np.random.default_rng(0), first_id=100)
        >>> users.features.shape, users.ids.tolist()
        ((5, 8), [100, 101, 102, 103, 104])
    """

    def __init__(
        self,
        archetypes: Sequence[Archetype] = DEFAULT_ARCHETYPES,
        correlation: NDArray[np.float64] | None = None,
        feature_names: Sequence[str] = FEATURE_NAMES,
    ) -> None:
        self.feature_names = tuple(feature_names)
        d = len(self.feature_names)
        if not archetypes:
            raise ConfigError("UserPopulation.archetypes must contain at least one archetype, got none.")
        for a in archetypes:
            if len(a.mean) != d:
                raise ConfigError(f"Archetype[{a.name}].mean must have {d} entries, got {len(a.mean)}.")
        self.archetypes = tuple(archetypes)
        corr = _DEFAULT_CORRELATION if correlation is None else check_array("correlation", correlation, shape=(d, d))
        try:
            self._chol = np.linalg.cholesky(corr)
        except np.linalg.LinAlgError:
            raise ConfigError("UserPopulation.correlation must be positive definite.") from None
        weights = np.array([a.weight for a in self.archetypes], dtype=np.float64)
        self.weights = weights / weights.sum()
        self._logit_means = np.array([np.log(np.array(a.mean) / (1.0 - np.array(a.mean))) for a in self.archetypes])
        self._spreads = np.array([a.spread for a in self.archetypes])
        self.archetype_names = tuple(a.name for a in self.archetypes)

    @property
    def d_user(self) -> int:
        """Number of features."""
        return len(self.feature_names)

    def sample(self, n_users: int, *, rng: np.random.Generator, first_id: int = 0) -> UserBatch:
        """Draw ``n_users`` users with ids ``first_id, first_id + 1, ...``.

        Args:
            n_users: How many users.
            rng: The only source of randomness.
            first_id: Id of the first user; callers advance it so ids stay unique across iterations.

        Returns:
            A :class:`UserBatch` of ``n_users`` users.
        """
        n_users = check_int("n_users", n_users, low=0)
        first_id = check_int("first_id", first_id, low=0)
        archetypes = rng.choice(len(self.archetypes), size=n_users, p=self.weights).astype(np.int64)
        noise = rng.standard_normal((n_users, self.d_user)) @ self._chol.T
        noise *= self._spreads[archetypes, None]
        noise += self._logit_means[archetypes]
        features = logistic_inplace(noise)
        ids = np.arange(first_id, first_id + n_users, dtype=np.int64)
        return UserBatch(ids, features, archetypes, self.archetype_names, self.feature_names)

    def __repr__(self) -> str:
        return f"UserPopulation(archetypes={list(self.archetype_names)}, weights={np.round(self.weights, 3).tolist()})"
