from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actionbank_env.core.ground_truth import GroundTruthConfig, interaction_share
from actionbank_env.core.world import World, WorldConfig
from actionbank_env.errors import ConfigError
from tests.worlds import hashing_world

FAMILIES = ["mixture_of_experts", "gmm", "semantic"]


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=15, deadline=None)
@given(n_users=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_click_prob_is_pure_and_row_independent(family: str, n_users: int, seed: int) -> None:
    world = hashing_world(ground_truth=family)
    rng = np.random.default_rng(seed)
    users = world.sample_users(n_users, rng=rng).features
    emb = world.reference_embeddings[rng.integers(0, len(world.reference_embeddings), 7)]
    probs = world.ground_truth.click_prob(users, emb)
    assert probs.shape == (n_users, 7)
    assert np.all((probs >= 0) & (probs <= 1))
    # A user's probabilities do not depend on who else is in the batch, nor on the other actions.
    np.testing.assert_allclose(probs[:1], world.ground_truth.click_prob(users[:1], emb), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(probs[:, 2:3], world.ground_truth.click_prob(users, emb[2:3]), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(probs, world.ground_truth.click_prob(users, emb))  # stationary


@pytest.mark.parametrize("family", FAMILIES)
def test_calibration_base_ctr_and_lift(family: str) -> None:
    world = hashing_world(ground_truth=family)
    rng = np.random.default_rng(123)
    users = world.sample_users(3000, rng=rng).features
    # Random banks of texts the world's copywriter writes, random targeting -> base CTR.
    probs = world.ground_truth.click_prob(users, world.reference_embeddings)
    base = world.config.base_ctr
    assert abs(probs.mean() - base) < 0.15 * base
    banks = [rng.choice(probs.shape[1], world.config.initial_actions, replace=False) for _ in range(20)]
    lift = np.mean([probs[:, b].max(axis=1).mean() for b in banks]) / probs.mean()
    assert lift > 2.0  # the per-user best action is several times better


@pytest.mark.parametrize("family", ["mixture_of_experts", "semantic"])
def test_personalisation_share_of_variance(family: str) -> None:
    world = hashing_world(ground_truth=family)
    users = world.sample_users(2000, rng=np.random.default_rng(0)).features
    logits = world.ground_truth.logits(users, world.reference_embeddings)  # type: ignore[attr-defined]
    assert interaction_share(logits) > 0.4
    low = World.build(
        WorldConfig(
            embedder="hashing",
            embedding_dim=128,
            ground_truth=family,
            personalization=0.1,
            initial_actions=10,
            n_reference_texts=256,
            n_reference_users=1024,
        )
    )
    low_logits = low.ground_truth.logits(users, low.reference_embeddings)  # type: ignore[attr-defined]
    assert interaction_share(low_logits) < interaction_share(logits) - 0.2


def test_targeting_matters_on_the_default_family() -> None:
    world = hashing_world()
    users = world.sample_users(5000, rng=np.random.default_rng(1)).features
    probs = world.ground_truth.click_prob(users, world.initial_bank.embeddings)
    best_single = probs.mean(axis=0).max()
    perfect = probs.max(axis=1).mean()
    assert perfect > 1.15 * best_single


def test_world_seed_decides_the_ground_truth() -> None:
    a, b, c = (
        hashing_world(0),
        hashing_world(0),
        World.build(
            WorldConfig(
                world_seed=0,
                initial_actions=10,
                embedder="hashing",
                embedding_dim=128,
                n_reference_texts=256,
                n_reference_users=1024,
            )
        ),
    )
    other = hashing_world(1)
    users = a.sample_users(50, rng=np.random.default_rng(0)).features
    emb = a.reference_embeddings[:20]
    np.testing.assert_array_equal(a.ground_truth.click_prob(users, emb), c.ground_truth.click_prob(users, emb))
    assert b is a
    assert not np.allclose(a.ground_truth.click_prob(users, emb), other.ground_truth.click_prob(users, emb))


def test_semantic_truth_rewards_the_right_message() -> None:
    world = hashing_world(ground_truth="semantic")
    embed = world.embedder.embed
    pop_users = world.sample_users(4000, rng=np.random.default_rng(3))
    col = {n: i for i, n in enumerate(world.feature_names)}
    x = pop_users.features
    bargain = x[:, col["price_sensitivity"]] > np.quantile(x[:, col["price_sensitivity"]], 0.8)
    rich = x[:, col["income_level"]] > np.quantile(x[:, col["income_level"]], 0.8)
    texts = [
        "Huge sale: save 50% on cheap deals and bargains today",
        "Exclusive premium access to our luxury VIP collection",
    ]
    probs = world.ground_truth.click_prob(x, embed(texts))
    assert probs[bargain, 0].mean() > probs[bargain, 1].mean()
    assert probs[rich, 1].mean() > probs[rich, 0].mean()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_ctr": 0.0}, "GroundTruthConfig.base_ctr must be a float > 0.0 and < 1.0, got 0.0."),
        ({"best_lift": 1.0}, "GroundTruthConfig.best_lift must be a float > 1.0, got 1.0."),
        ({"personalization": 1.5}, "GroundTruthConfig.personalization must be a float >= 0.0 and <= 1.0, got 1.5."),
        ({"base_ctr": 0.4, "best_lift": 3.0}, "GroundTruthConfig.base_ctr * best_lift must be < 1, got 0.4 * 3.0."),
        ({"min_utility": 0.1}, "GroundTruthConfig.min_utility=0.1 < base_ctr=0.05 < max_utility=0.5 must hold."),
        ({"n_experts": 0}, "GroundTruthConfig.n_experts must be an int >= 1 and <= 64, got 0."),
    ],
)
def test_bad_ground_truth_config(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        GroundTruthConfig(**kwargs)  # type: ignore[arg-type]


def test_wrong_embedding_dimension_is_named() -> None:
    world = hashing_world()
    with pytest.raises(
        ConfigError, match=re.escape("embeddings must have 128 columns (the world's embedder), got shape (2, 5).")
    ):
        world.ground_truth.click_prob(np.full((1, 8), 0.5), np.ones((2, 5)))
    with pytest.raises(ConfigError, match="users must contain only finite values"):
        world.ground_truth.click_prob(np.full((1, 8), np.nan), world.reference_embeddings[:2])
