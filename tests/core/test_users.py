from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actionbank_env.core.users import DEFAULT_ARCHETYPES, FEATURE_NAMES, Archetype, UserBatch, UserPopulation
from actionbank_env.errors import ConfigError


def test_sampling_is_deterministic_and_seed_dependent() -> None:
    pop = UserPopulation()
    a = pop.sample(500, rng=np.random.default_rng(1))
    b = pop.sample(500, rng=np.random.default_rng(1))
    c = pop.sample(500, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.archetypes, b.archetypes)
    assert not np.array_equal(a.features, c.features)


@settings(max_examples=25, deadline=None)
@given(n_users=st.integers(0, 300), seed=st.integers(0, 2**32 - 1), first_id=st.integers(0, 10**9))
def test_features_in_unit_interval_and_ids_sequential(n_users: int, seed: int, first_id: int) -> None:
    users = UserPopulation().sample(n_users, rng=np.random.default_rng(seed), first_id=first_id)
    assert users.features.shape == (n_users, len(FEATURE_NAMES))
    assert users.features.dtype == np.float64
    assert np.all((users.features >= 0) & (users.features <= 1))
    np.testing.assert_array_equal(users.ids, np.arange(first_id, first_id + n_users))
    assert not users.features.flags.writeable


def test_archetypes_shape_the_population() -> None:
    pop = UserPopulation()
    users = pop.sample(50_000, rng=np.random.default_rng(0))
    shares = np.bincount(users.archetypes, minlength=len(DEFAULT_ARCHETYPES)) / len(users)
    np.testing.assert_allclose(shares, pop.weights, atol=0.01)
    assert len(DEFAULT_ARCHETYPES) >= 4
    col = {n: i for i, n in enumerate(FEATURE_NAMES)}
    corr = np.corrcoef(users.features.T)
    # Real customer bases: richer users care less about price and more about quality.
    assert corr[col["income_level"], col["price_sensitivity"]] < -0.3
    assert corr[col["income_level"], col["quality_focus"]] > 0.3
    assert corr[col["price_sensitivity"], col["urgency_response"]] > 0.2
    tech = users.features[:, col["tech_savviness"]]
    young = users.archetype_labels == "young_tech_savvy"
    assert tech[young].mean() > tech[~young].mean() + 0.2


def test_batch_round_trip_through_columns_and_concat() -> None:
    pop = UserPopulation()
    users = pop.sample(20, rng=np.random.default_rng(0), first_id=7)
    back = UserBatch.from_columns(users.to_columns(), pop.archetype_names)
    np.testing.assert_array_equal(back.features, users.features)
    np.testing.assert_array_equal(back.archetypes, users.archetypes)
    both = UserBatch.concat([users.take(slice(0, 5)), users.take(slice(5, 20))])
    np.testing.assert_array_equal(both.ids, users.ids)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Archetype("x", -1.0, (0.5,) * 8), ConfigError, "Archetype[x].weight must be a float > 0.0, got -1.0."),
        (lambda: Archetype("x", 1.0, (0.0,) * 8), ConfigError, "Archetype[x].mean must lie strictly inside (0, 1)"),
        (
            lambda: UserPopulation([Archetype("x", 1.0, (0.5,) * 3)]),
            ConfigError,
            "Archetype[x].mean must have 8 entries, got 3.",
        ),
        (lambda: UserPopulation([]), ConfigError, "UserPopulation.archetypes must contain at least one archetype"),
        (
            lambda: UserPopulation().sample(-1, rng=np.random.default_rng(0)),
            ConfigError,
            "n_users must be an int >= 0, got -1.",
        ),
        (
            lambda: UserPopulation().sample(2.5, rng=np.random.default_rng(0)),
            TypeError,
            "n_users must be an int, got 2.5",
        ),
    ],
)
def test_bad_population_input(make, error, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=re.escape(message)):
        make()
