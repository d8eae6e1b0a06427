from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actionbank_env.core.embedders import HashingEmbedder
from actionbank_env.core.ground_truth import (
    SEMANTIC_SERVICE_PHRASES,
    GaussianMixture,
    GroundTruthConfig,
    MixtureOfExperts,
    SemanticGroundTruth,
    _best_of_bank,
    _random_bank_columns,
    interaction_share,
)
from actionbank_env.core.world import World, WorldConfig
from actionbank_env.errors import ConfigError
from actionbank_env.evaluation import CARD_TOLERANCES, REALISM_BOUNDS, _quintile_ratios, world_card
from tests.worlds import hashing_world, minilm_world, world_for

FAMILIES = ["mixture_of_experts", "gmm", "semantic"]


@settings(max_examples=60, deadline=None)
@given(
    n_users=st.integers(1, 300),
    n_actions=st.integers(1, 80),
    n_banks=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
)
def test_best_of_bank_is_bit_identical_to_the_gathered_block(
    n_users: int, n_actions: int, n_banks: int, seed: int
) -> None:
    """The calibration's lift (every world is built from it): the bank-by-bank form equals the mean of the gathered
    (users, banks, bank_size) block. It adds in the same order, so it is bit-identical here; the test allows 1e-13
    relative so that a CPU whose numpy reduces in another order cannot turn CI red."""
    rng = np.random.default_rng(seed)
    probs = rng.random((n_users, n_actions))
    banks = _random_bank_columns(n_actions, int(rng.integers(1, n_actions + 1)), n_banks, rng)
    assert _best_of_bank(probs, banks) == pytest.approx(float(np.mean(probs[:, banks].max(axis=2))), rel=1e-13, abs=0)


@pytest.mark.parametrize(("n_users", "n_actions", "n_banks", "bank_size"), [(1024, 256, 48, 30), (2000, 513, 16, 10)])
def test_best_of_bank_is_bit_identical_at_a_world_builds_sizes(
    n_users: int, n_actions: int, n_banks: int, bank_size: int
) -> None:
    rng = np.random.default_rng(n_users)
    probs = rng.random((n_users, n_actions))
    banks = _random_bank_columns(n_actions, bank_size, n_banks, rng)
    assert _best_of_bank(probs, banks) == pytest.approx(float(np.mean(probs[:, banks].max(axis=2))), rel=1e-13, abs=0)


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=15, deadline=None)
@given(n_users=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_click_prob_is_pure_and_row_independent(family: str, n_users: int, seed: int) -> None:
    world = world_for(family)
    rng = np.random.default_rng(seed)
    users = world.sample_users(n_users, rng=rng).features
    emb = world.reference_embeddings[rng.integers(0, len(world.reference_embeddings), 7)]
    probs = world.ground_truth.click_prob(users, emb)
    assert probs.shape == (n_users, 7)
    assert np.all((probs >= 0) & (probs <= world.config.max_utility))
    # A user's probabilities do not depend on who else is in the batch, nor on the other actions.
    np.testing.assert_allclose(probs[:1], world.ground_truth.click_prob(users[:1], emb), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(probs[:, 2:3], world.ground_truth.click_prob(users, emb[2:3]), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(probs, world.ground_truth.click_prob(users, emb))  # stationary


#: Card checks every test world must pass: the issue's calibration tolerances and its hard realism bounds. The
#: card's stricter semantic probes (neutral texts <= 1.5x, >= 90 % of paraphrases targeted) are reported by
#: the card and benchmarks/world_cards.py; here they get the looser bounds below (a test world is small).
_REQUIRED = {"base_ctr", "best_lift", "interaction_share", "max_click_prob", "concept_quintile_ratio"}


def _assert_card_within_tolerance(world: World, **card_kwargs: int) -> None:
    card = world_card(world, **card_kwargs)
    failed = [c for c in card.checks if not c["ok"] and c["name"] in _REQUIRED]
    assert not failed, card.format()
    checks = {c["name"]: c["measured"] for c in card.checks}
    if "neutral_quintile_ratio" in checks:
        assert checks["neutral_quintile_ratio"] < 2.0, card.format()  # no strong targeting of neutral texts
        assert checks["paraphrases_targeted"] >= 0.8, card.format()  # concepts matched by meaning
    cfg = world.config
    assert abs(card.base_ctr / cfg.base_ctr - 1) <= CARD_TOLERANCES["base_ctr"]
    assert abs(card.best_lift / cfg.best_lift - 1) <= CARD_TOLERANCES["best_lift"]
    if cfg.ground_truth != "gmm":
        assert abs(card.interaction_share - cfg.personalization) <= CARD_TOLERANCES["interaction_share"]
    assert card.click_prob["max"] <= REALISM_BOUNDS["max_click_prob"]


@pytest.mark.parametrize("family", ["mixture_of_experts", "gmm"])
@settings(max_examples=3, deadline=None)
@given(world_seed=st.integers(0, 2**31 - 1))
def test_world_card_matches_the_parameters_on_fresh_texts_hashing(family: str, world_seed: int) -> None:
    # The default reference sample sizes: the calibration holds out of sample, on texts in no reference sample.
    # The card's default 2,000 x 2,000: on 1,000 texts its own sampling error of the interaction share is ~0.02
    # (world seed 2**31 - 2 measured 0.799 on 1,000 texts, 0.821-0.822 on 3,000 fresh texts and users).
    world = World.build(WorldConfig(world_seed=world_seed, embedder="hashing", ground_truth=family))
    _assert_card_within_tolerance(world)


@pytest.mark.parametrize(("family", "world_seed"), [("gmm", 2612), ("mixture_of_experts", 2**31 - 2)])
def test_world_card_holds_on_the_seeds_hypothesis_found(family: str, world_seed: int) -> None:
    # gmm 2612 had a best lift of 1.75 for 2.0 when calibrated on 256 held-out texts (1.93 on 2,048); the mixture
    # of experts seed failed only the card's own sampling error on 1,000 texts.
    world = World.build(WorldConfig(world_seed=world_seed, embedder="hashing", ground_truth=family))
    _assert_card_within_tolerance(world)


def test_gmm_calibrates_on_its_own_extra_held_out_texts_and_no_other_family_draws_them() -> None:
    gmm, moe = hashing_world(ground_truth="gmm"), hashing_world()
    n_ref = gmm.config.reference_text_count
    extra = GaussianMixture.extra_calibration_texts(n_ref)
    assert extra == GaussianMixture.CALIBRATION_TEXTS - n_ref // 2 > 0
    assert len(gmm.ground_truth_reference_texts) == n_ref + extra  # excluded from the card's fresh texts
    assert len(set(gmm.ground_truth_reference_texts)) == n_ref + extra
    assert not set(gmm.ground_truth_reference_texts) & set(gmm.reference_texts)  # never the company's texts
    assert len(moe.ground_truth_reference_texts) == n_ref  # the other families' worlds are unchanged
    assert moe.ground_truth_reference_texts == gmm.ground_truth_reference_texts[:n_ref]
    with pytest.raises(ConfigError, match=re.escape("calibration_embeddings must have 128 columns")):
        GaussianMixture(
            gmm.config.ground_truth_config(),
            rng=np.random.default_rng(0),
            reference_users=gmm.sample_users(64, rng=np.random.default_rng(1)).features,
            reference_embeddings=gmm.reference_embeddings[:64],
            calibration_embeddings=np.ones((4, 5)),
        )


@pytest.mark.parametrize(
    ("family", "world_seed"),
    [("semantic", 0)]  # the family that needs MiniLM; the rest are slow (a MiniLM world takes ~40 s to embed here)
    + [pytest.param(f, s, marks=pytest.mark.slow) for f in FAMILIES for s in (11, 12)],
)
def test_world_card_matches_the_parameters_on_fresh_texts_minilm(family: str, world_seed: int) -> None:
    world = minilm_world(world_seed, initial_actions=30, ground_truth=family, n_reference_texts=512)
    _assert_card_within_tolerance(world, n_users=1500, n_texts=800)


def test_world_card_is_reproducible_and_excludes_every_reference_text() -> None:
    world = hashing_world(ground_truth="gmm")
    a, b = world_card(world, n_users=200, n_texts=100), world.card(n_users=200, n_texts=100)
    assert a.to_dict() | {"seconds": 0} == b.to_dict() | {"seconds": 0}
    best = {x["text"] for x in a.examples}
    assert not best & set(world.reference_texts) and not best & set(world.ground_truth_reference_texts)
    assert set(a.ctr_by_archetype) <= set(world.population.archetype_names)
    assert a.random_bank_value < a.oracle_bank_value
    assert "base_ctr" in a.format() and "oracle" in a.format()


@pytest.mark.parametrize("family", ["mixture_of_experts", "semantic"])
def test_personalization_sets_the_interaction_share(family: str) -> None:
    world = world_for(family)
    users = world.sample_users(2000, rng=np.random.default_rng(0)).features
    logits = world.ground_truth.logits(users, world.reference_embeddings)  # type: ignore[attr-defined]
    assert abs(interaction_share(logits) - 0.85) < 0.05
    low = (
        minilm_world(0, initial_actions=30, n_reference_texts=512, personalization=0.3)
        if family == "semantic"
        else None
    )
    if low is None:
        low = World.build(
            WorldConfig(
                embedder="hashing",
                embedding_dim=128,
                ground_truth=family,
                personalization=0.3,
                initial_actions=10,
                n_reference_texts=256,
                n_reference_users=1024,
            )
        )
    low_logits = low.ground_truth.logits(users, low.reference_embeddings)  # type: ignore[attr-defined]
    assert abs(interaction_share(low_logits) - 0.3) < 0.07


def test_mixture_of_experts_interaction_carries_no_action_main_effect() -> None:
    # The cause of the old shortfall: E[g(x) ⊗ x̃] != 0 gave the bilinear term an action main effect.
    truth = hashing_world().ground_truth
    assert isinstance(truth, MixtureOfExperts)
    users = hashing_world().sample_users(20_000, rng=np.random.default_rng(2)).features
    user_basis, action_basis = truth.design(users, hashing_world().reference_embeddings)
    inter = user_basis @ truth._experts_stacked @ action_basis.T  # (n, m) interaction before scaling
    uncentred = (user_basis + truth._gated_mean) @ truth._experts_stacked @ action_basis.T
    # Without the centring each action's mean interaction is a main effect of up to ~1.5 sd (0.43 measured);
    # with it, what is left is the sampling error of the mean φ̄ over the world's 1,024 reference users.
    assert np.abs(uncentred.mean(axis=0)).max() > 0.5 * inter.std()
    n_ref = hashing_world().config.n_reference_users
    assert np.abs(inter.mean(axis=0)).max() < 4.0 * inter.std() / np.sqrt(n_ref)


def test_spectrum_power_weights_the_principal_components() -> None:
    shares = {}
    for power in (0.0, 1.0):
        world = World.build(
            WorldConfig(
                embedder="hashing",
                embedding_dim=128,
                spectrum_power=power,
                n_reference_texts=256,
                n_reference_users=512,
                initial_actions=10,
            )
        )
        truth = world.ground_truth
        assert isinstance(truth, MixtureOfExperts)
        fit = np.asarray(world.ground_truth_reference_texts[0::2])
        coords = truth._projection(np.asarray(world.embedder.embed(list(fit)), dtype=np.float64))
        shares[power] = coords.var(axis=0, ddof=1)
    np.testing.assert_allclose(shares[0.0], 1.0, rtol=1e-6)  # whitened: every direction weighs the same
    assert shares[1.0][0] == pytest.approx(1.0) and np.all(np.diff(shares[1.0]) <= 1e-12)  # the texts' own spectrum
    assert shares[1.0][-1] < 0.5


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


def test_semantic_truth_targets_by_meaning_not_by_wording() -> None:
    world = world_for("semantic")
    embed = world.embedder.embed
    x = world.sample_users(4000, rng=np.random.default_rng(3)).features
    col = {n: i for i, n in enumerate(world.feature_names)}
    bargain = x[:, col["price_sensitivity"]] > np.quantile(x[:, col["price_sensitivity"]], 0.8)
    rich = x[:, col["income_level"]] > np.quantile(x[:, col["income_level"]], 0.8)
    texts = [
        "Grab a bargain: everything under $10",  # no concept phrase in it
        "Our most exquisite pieces, reserved for a select few",
        "An update to our privacy policy",  # about nothing a concept responds to
    ]
    probs = world.ground_truth.click_prob(x, embed(texts))
    assert probs[bargain, 0].mean() > 1.3 * probs[~bargain, 0].mean()
    assert probs[rich, 1].mean() > 1.3 * probs[~rich, 1].mean()
    assert probs[rich, 1].mean() > probs[rich, 0].mean() and probs[bargain, 0].mean() > probs[bargain, 1].mean()
    # No strong targeting of a text about nothing: top vs bottom fifth of every trait within the card's bound.
    neutral_ratio = _quintile_ratios(probs[:, 2:3], x)
    assert np.all(np.maximum(neutral_ratio, 1 / neutral_ratio) <= REALISM_BOUNDS["neutral_ratio"])
    # A near-copy of an exemplar phrase is no magic word: at most the concept's ceiling, below 0.35.
    copy = world.ground_truth.click_prob(x, embed(["huge sale, save 50% today"]))[:, 0]
    assert copy.max() <= world.config.max_utility
    price = x[:, col["price_sensitivity"]]
    assert copy[bargain].mean() / copy[price < np.quantile(price, 0.2)].mean() < REALISM_BOUNDS["quintile_ratio"]


def test_semantic_concepts_are_offers_so_service_mail_is_targeted_at_no_one() -> None:
    world = world_for("semantic")
    truth = world.ground_truth
    assert isinstance(truth, SemanticGroundTruth)
    service = np.asarray(world.embedder.embed(list(SEMANTIC_SERVICE_PHRASES)), dtype=np.float64)
    service /= np.linalg.norm(service, axis=1, keepdims=True)
    axis = service.mean(axis=0) / np.linalg.norm(service.mean(axis=0))
    assert np.abs(truth._directions @ axis).max() < 1e-6  # float32 embeddings
    # Transactional mail that is neither in the phrase list nor among the card's neutral probes: before the
    # projection the receipt matched "free shipping" at 0.26 and loyalty at 0.40 (2.0x top-vs-bottom fifth).
    texts = ["Here is your receipt", "Your order #1093 has been delivered", "Reminder: your cart is saved"]
    x = world.sample_users(4000, rng=np.random.default_rng(3)).features
    emb = world.embedder.embed(texts)
    assert truth.concept_match(emb).max() < 0.1
    ratios = _quintile_ratios(truth.click_prob(x, emb), x)
    assert np.all(np.maximum(ratios, 1 / ratios) <= REALISM_BOUNDS["neutral_ratio"])


def test_semantic_anchor_moves_toward_the_mean_text_only_when_personalization_leaves_no_room() -> None:
    world = world_for("semantic")
    truth = world.ground_truth
    assert isinstance(truth, SemanticGroundTruth)
    assert truth.neutral_anchor == pytest.approx(SemanticGroundTruth.NEUTRAL_ANCHOR)
    users = world.sample_users(2000, rng=np.random.default_rng(0)).features
    affinity, match = truth.affinity(users), truth.concept_match(world.reference_embeddings)
    anchors = [truth._neutral_anchor(rho, affinity, match) for rho in (0.5, 0.85, 0.97, 1.0)]
    assert anchors[0] == anchors[1] == SemanticGroundTruth.NEUTRAL_ANCHOR
    assert anchors[1] < anchors[2] < anchors[3] == 1.0
    # The user main effect the anchor leaves is in the logits, and the interaction share is still 0.85.
    logits = truth.logits(users, world.reference_embeddings)
    centred = logits - logits.mean()
    user_main = centred.mean(axis=1).var() / centred.var()
    assert 0.005 < user_main < SemanticGroundTruth.USER_MAIN_BUDGET * 0.15 + 0.02
    assert abs(interaction_share(logits) - 0.85) < CARD_TOLERANCES["interaction_share"]


def test_semantic_truth_refuses_a_lexical_embedder() -> None:
    message = (
        "WorldConfig.ground_truth='semantic' needs a semantic embedder ('minilm' or 'openai'), got embedder='hashing'"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        WorldConfig(embedder="hashing", ground_truth="semantic")
    with pytest.raises(ConfigError, match="needs a semantic embedder, got 'hashing-v1-d64-c0.5'"):
        World.build(WorldConfig(embedder="minilm", ground_truth="semantic"), embedder=HashingEmbedder(64))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_ctr": 0.0}, "GroundTruthConfig.base_ctr must be a float > 0.0 and < 1.0, got 0.0."),
        ({"best_lift": 1.0}, "GroundTruthConfig.best_lift must be a float > 1.0, got 1.0."),
        ({"personalization": 1.5}, "GroundTruthConfig.personalization must be a float >= 0.0 and <= 1.0, got 1.5."),
        ({"spectrum_power": -0.1}, "GroundTruthConfig.spectrum_power must be a float >= 0.0 and <= 1.0, got -0.1."),
        (
            {"base_ctr": 0.1, "best_lift": 4.0},
            "GroundTruthConfig.base_ctr * best_lift must be < max_utility=0.35 (no user's best action can beat the "
            "ceiling), got 0.1 * 4.0.",
        ),
        ({"min_utility": 0.1}, "GroundTruthConfig.min_utility=0.1 < base_ctr=0.05 < max_utility=0.35 must hold."),
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
