"""distinct_rows and sorted_unique_rows: the fast exact dedupes behind the reward models' fit (each equal to
np.unique(axis=0))."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizers.reward_models._features import FeatureMap, distinct_rows, sorted_unique_rows


@settings(max_examples=60, deadline=None)
@given(
    n_distinct=st.integers(1, 12),
    d=st.integers(1, 9),
    n=st.integers(0, 200),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_distinct_rows_equals_np_unique(n_distinct: int, d: int, n: int, seed: int, dtype: type) -> None:
    rng = np.random.default_rng(seed)
    table = rng.integers(-3, 4, size=(n_distinct, d)).astype(dtype)  # small ints: exact ties across columns
    rows = table[rng.integers(n_distinct, size=n)]
    distinct, inverse = distinct_rows(rows)
    expected, expected_inverse = np.unique(rows, axis=0, return_inverse=True)
    assert distinct.dtype == rows.dtype
    np.testing.assert_array_equal(distinct, expected)
    np.testing.assert_array_equal(inverse, expected_inverse.reshape(-1))
    np.testing.assert_array_equal(distinct[inverse], rows)


def test_unequal_rows_with_equal_keys_take_the_exact_path() -> None:
    # With the probe (1, 1) the rows (0, 0) and (1, -1) both hash to 0: small integers, so every CPU's dot
    # product (FMA or not) gives exactly 0 and the collision does not depend on rounding.
    probe = np.array([1.0, 1.0])
    rows = np.array([[0.0, 0.0], [1.0, -1.0], [0.0, 0.0], [2.0, 3.0]])
    keys = rows @ probe
    assert keys[0] == keys[1] and not np.array_equal(rows[0], rows[1])
    distinct, inverse = distinct_rows(rows, probe=probe)
    np.testing.assert_array_equal(distinct, np.unique(rows, axis=0))
    np.testing.assert_array_equal(distinct[inverse], rows)


def test_feature_map_is_the_same_from_every_row_or_each_distinct_row_once() -> None:
    rng = np.random.default_rng(0)
    table = rng.standard_normal((7, 24)).astype(np.float32)
    rows = table[rng.integers(7, size=5000)]
    users = rng.random((5000, 4))
    a = FeatureMap.fit(users, rows, n_components=5)
    b = FeatureMap.fit(users, table[::-1], n_components=5)
    for key, value in a.to_arrays().items():
        np.testing.assert_array_equal(value, b.to_arrays()[key])


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(0, 60),
    d=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["continuous", "small_ints", "signed_zeros", "nan", "inf"]),
)
def test_sorted_unique_rows_equals_np_unique(n: int, d: int, seed: int, kind: str) -> None:
    """The fast path (first column strictly ordered) and the fallback (ties, equal rows, -0.0 and 0.0, NaN) both
    give np.unique(axis=0)'s array, bit for bit (no arithmetic: a permutation of the rows)."""
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((n, d))
    if kind == "small_ints":  # ties in the first column and repeated rows
        rows = rng.integers(-2, 3, size=(n, d)).astype(np.float64)
    elif kind == "signed_zeros" and n:
        rows[rng.integers(n, size=2), 0] = [0.0, -0.0]
    elif kind == "nan" and n:
        rows[rng.integers(n), 0] = np.nan
    elif kind == "inf" and n:
        rows[rng.integers(n), 0] = -np.inf
    got, expected = sorted_unique_rows(rows), np.unique(rows, axis=0)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got.view(np.int64), expected.view(np.int64))  # the bits, -0.0 and NaN included


def test_sorted_unique_rows_on_a_designer_sized_pool() -> None:
    rows = np.random.default_rng(0).standard_normal((2_070, 256))
    rows = np.vstack([rows, rows[:5]])  # repeated rows: the fallback
    np.testing.assert_array_equal(sorted_unique_rows(rows), np.unique(rows, axis=0))
    np.testing.assert_array_equal(sorted_unique_rows(rows[:2_070]), np.unique(rows[:2_070], axis=0))
