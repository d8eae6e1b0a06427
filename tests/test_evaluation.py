"""Ground-truth evaluation: bank value, improvement captured, fidelity and uncertainty metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from actionbank_env.evaluation import (
    bank_value,
    compare_banks,
    expected_calibration_error,
    fidelity_from_predictions,
    gain_diagnostics,
    improvement_captured,
    reward_model_fidelity,
    uncertainty_calibration,
    unseen_candidate_fidelity,
)
from tests.worlds import hashing_world


class _TruthModel:
    """A 'reward model' that predicts the ground truth exactly."""

    def __init__(self, truth: object) -> None:
        self.truth = truth

    def predict(self, users: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        return self.truth.click_prob(users, embeddings)  # type: ignore[attr-defined]


class _ConstantModel:
    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, users: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        return np.full((users.shape[0], embeddings.shape[0]), self.value)


@pytest.mark.parametrize(
    ("v_new", "v_old", "v_oracle", "expected"),
    [
        (0.15, 0.10, 0.15, 1.0),
        (0.10, 0.10, 0.20, 0.0),
        (0.05, 0.10, 0.20, -0.5),
        (0.25, 0.10, 0.20, 1.5),
        (0.12, 0.10, 0.10, math.nan),  # oracle found nothing better: undefined
        (0.12, 0.10, 0.09, math.nan),  # oracle below the old bank: undefined
        (0.12, 0.10, 0.10 + 1e-12, math.nan),  # within the relative threshold
        (0.101, 0.10, 0.10 + 2e-9, math.nan),  # a gain of 2e-8 of the bank's value: no ratio of 500,000
        (1.01e-6, 1e-6, 1.02e-6, 0.5),  # the same relative gain is defined at any CTR scale
        (math.nan, 0.10, 0.20, math.nan),
    ],
)
def test_improvement_captured_edges(v_new: float, v_old: float, v_oracle: float, expected: float) -> None:
    got = improvement_captured(v_new, v_old, v_oracle)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected)


def test_perfect_model_has_perfect_fidelity() -> None:
    world = hashing_world()
    users = world.sample_users(300, rng=np.random.default_rng(0)).features
    report = reward_model_fidelity(
        _TruthModel(world.ground_truth),
        world.ground_truth,
        users,
        world.reference_embeddings[:100],
        rng=np.random.default_rng(1),
    )
    assert report.spearman == pytest.approx(1.0) and report.pearson == pytest.approx(1.0)
    assert report.ece == pytest.approx(0.0, abs=1e-12)
    assert report.log_loss == pytest.approx(report.log_loss_ceiling)
    assert report.auc == pytest.approx(report.auc_ceiling) and report.auc > 0.6
    assert report.best_action_agreement == 1.0
    assert report.n_pairs == 30_000
    json.dumps(report.to_dict())


def test_constant_model_fidelity() -> None:
    world = hashing_world()
    users = world.sample_users(200, rng=np.random.default_rng(0)).features
    embeddings = world.reference_embeddings[:50]
    truth = world.ground_truth.click_prob(users, embeddings)
    report = reward_model_fidelity(
        _ConstantModel(0.5), world.ground_truth, users, embeddings, rng=np.random.default_rng(1)
    )
    assert math.isnan(report.spearman) and report.auc == pytest.approx(0.5)
    assert report.ece == pytest.approx(abs(0.5 - truth.mean()))
    assert report.log_loss > report.log_loss_ceiling


def test_fidelity_subsamples_and_ranks_a_noisy_model_between() -> None:
    rng = np.random.default_rng(0)
    truth = rng.beta(1, 12, size=(400, 300))
    noisy = np.clip(truth + 0.05 * rng.standard_normal(truth.shape), 0, 1)
    report = fidelity_from_predictions(noisy, truth, rng=np.random.default_rng(1), max_pairs=50_000)
    assert report.n_pairs == 50_000 and report.n_users == 400 and report.n_actions == 300
    assert 0.0 < report.spearman < 1.0 and report.ece > 0.0


def test_expected_calibration_error_bins() -> None:
    p = np.repeat([0.1, 0.3], 50)
    t = np.repeat([0.2, 0.3], 50)
    assert expected_calibration_error(p, t, n_bins=2) == pytest.approx(0.05)
    assert expected_calibration_error(p, t, n_bins=1) == pytest.approx(0.05)
    assert math.isnan(expected_calibration_error(np.zeros(0), np.zeros(0)))


def test_uncertainty_calibration() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random(5000) * 0.3
    std = 0.01 + 0.05 * rng.random(5000)
    mean = truth + std * rng.standard_normal(5000)  # errors really have this std
    report = uncertainty_calibration(mean, std, truth)
    assert report.spearman_std_error > 0.3
    assert 0.93 < report.coverage_95 < 0.97
    overconfident = uncertainty_calibration(mean, std / 10, truth)
    assert overconfident.coverage_95 < 0.3
    assert math.isnan(uncertainty_calibration(mean, np.full(5000, 0.1), truth).spearman_std_error)


def test_bank_value_is_monotone_and_compare_banks() -> None:
    world = hashing_world()
    users = world.sample_users(2000, rng=np.random.default_rng(0)).features
    emb = world.reference_embeddings
    small, large = emb[:5], emb[:40]
    assert bank_value(world.ground_truth, users, large) >= bank_value(world.ground_truth, users, small)
    assert bank_value(world.ground_truth, users, world.initial_bank) == pytest.approx(
        float(world.ground_truth.click_prob(users, world.initial_bank.embeddings).max(axis=1).mean())
    )
    result = compare_banks(world.ground_truth, users, small, emb[:20], large)
    assert result.value_old <= result.value_new <= result.value_oracle
    assert 0.0 <= result.improvement_captured <= 1.0
    assert result.delta_value == pytest.approx(result.value_new - result.value_old)  # dV next to the ratio
    assert result.oracle_delta_value == pytest.approx(result.value_oracle - result.value_old)
    assert math.isnan(bank_value(world.ground_truth, users, emb[:0]))


def test_world_card_command_prints_writes_and_refuses_semantic_with_hashing(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from actionbank_env.cli import main

    out = tmp_path / "card.json"
    argv = ["world-card", "--embedder", "hashing", "--ground-truth", "gmm", "--initial-actions", "10"]
    assert main([*argv, "--n-users", "300", "--n-texts", "200", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    card = json.loads(out.read_text())
    assert card["world"]["ground_truth"] == "gmm" and card["n_texts"] == 200 and card["bank_size"] == 10
    assert {c["name"] for c in card["checks"]} >= {"base_ctr", "best_lift", "max_click_prob"}
    assert "World card: gmm" in printed and "oracle from the pool" in printed
    assert main(["world-card", "--embedder", "hashing", "--ground-truth", "semantic"]) == 2
    assert "needs a semantic embedder" in capsys.readouterr().err


def test_world_card_learnability_is_measured_on_request() -> None:
    from actionbank_env.core.world import World, WorldConfig

    world = World.build(
        WorldConfig(embedder="hashing", initial_actions=10, n_reference_texts=256, n_reference_users=1024)
    )
    assert world.card(n_users=300, n_texts=200).learnability is None  # cheap by default
    card = world.card(n_users=600, n_texts=300, learnability=True, learnability_users=(3000,))
    learn = card.learnability
    assert learn is not None and learn["available"] and len(learn["rows"]) == 1
    row = learn["rows"][0]
    assert row["logged_users"] == 3000 and row["clicks"] > 0
    assert row["oracle_delta_value"] > 0 and math.isfinite(row["improvement_captured"])
    # dV and the ratio agree: the ratio is dV over the oracle's dV.
    assert row["improvement_captured"] == pytest.approx(row["delta_value"] / row["oracle_delta_value"])
    # The well-specified model knows the functional form: it beats random picks from the same pool.
    assert row["delta_value"] > learn["random_delta_value"]
    assert "learnability" in card.format()


class _UserOnlyModel:
    """Knows each user's mean click probability over the texts, nothing about the texts."""

    def __init__(self, truth: object, embeddings: np.ndarray) -> None:
        self.truth, self.embeddings = truth, embeddings

    def predict(self, users: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        mean = self.truth.click_prob(users, self.embeddings).mean(axis=1, keepdims=True)  # type: ignore[attr-defined]
        return np.broadcast_to(mean, (users.shape[0], embeddings.shape[0])).copy()


def test_unseen_candidate_fidelity_puts_the_model_between_baseline_and_ceiling() -> None:
    world = hashing_world()
    users = world.sample_users(400, rng=np.random.default_rng(0)).features
    candidates = world.reference_embeddings[:80]
    served = candidates[:20]
    truth = world.ground_truth
    perfect = unseen_candidate_fidelity(
        _TruthModel(truth), truth, users, candidates, rng=np.random.default_rng(1), served=served
    )
    assert perfect.n_candidates == 60  # the served ones are left out
    assert perfect.fidelity.auc == pytest.approx(perfect.fidelity.auc_ceiling)
    assert perfect.within_user_spearman == pytest.approx(1.0) and perfect.mean_ratio == pytest.approx(1.0)
    assert perfect.fidelity.auc > perfect.user_only_auc  # the texts matter in this world
    blind = unseen_candidate_fidelity(
        _UserOnlyModel(truth, candidates[20:]), truth, users, candidates, rng=np.random.default_rng(1), served=served
    )
    # Same clicks drawn: the action-blind model reaches exactly the baseline, and ranks no text.
    assert blind.fidelity.auc == pytest.approx(blind.user_only_auc)
    assert math.isnan(blind.within_user_spearman)
    assert blind.mean_ratio == pytest.approx(1.0)
    low = unseen_candidate_fidelity(_ConstantModel(0.01), truth, users, candidates, rng=np.random.default_rng(1))
    assert low.n_candidates == 80 and low.mean_ratio == pytest.approx(0.01 / truth.click_prob(users, candidates).mean())
    json.dumps(perfect.to_dict())


def test_gain_diagnostics_curse_ratio() -> None:
    honest = gain_diagnostics(0.10, 0.12, 0.10, 0.12)
    assert honest.predicted_gain == pytest.approx(0.02) and honest.curse_ratio == pytest.approx(1.0)
    cursed = gain_diagnostics(0.10, 0.15, 0.20, 0.21)
    assert cursed.curse_ratio == pytest.approx(5.0)
    assert math.isnan(gain_diagnostics(None, None, 0.1, 0.2).curse_ratio)
    assert math.isnan(gain_diagnostics(0.1, 0.2, 0.1, 0.1).curse_ratio)  # nothing realised: undefined
    json.dumps(cursed.to_dict())


def test_world_card_oracle_is_the_plain_facility_location_greedy() -> None:
    # The card picks its oracle with the designers' lazy GreedySelector; it must pick what the plain greedy on
    # the mean over users of the row-wise best picks (the card's former loop, kept here as the reference).
    from actionbank_env.evaluation import _greedy_bank

    rng = np.random.default_rng(4)
    probs = rng.beta(0.5, 8.0, size=(300, 120))
    for base in (None, probs[:, :5].max(axis=1)):
        best = np.zeros(300) if base is None else base.copy()
        expected = []
        for _ in range(12):
            gains = np.maximum(probs, best[:, None]).mean(axis=0)
            gains[expected] = -np.inf
            j = int(np.argmax(gains))
            expected.append(j)
            best = np.maximum(best, probs[:, j])
        assert _greedy_bank(probs, 12, base=base).tolist() == expected


def test_roc_auc_matches_sklearn_with_ties() -> None:
    """The fidelity reports' midrank AUC is sklearn's ROC AUC (scores rounded so that many pairs tie)."""
    from sklearn.metrics import roc_auc_score

    from actionbank_env.evaluation import _roc_auc

    rng = np.random.default_rng(5)
    for n, decimals in ((50, 1), (5_000, 2), (100_000, 4)):
        truth = rng.random(n) * 0.3
        labels = rng.random(n) < truth
        scores = np.round(truth + rng.normal(0.0, 0.05, n), decimals)
        assert _roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), rel=1e-12, abs=1e-12)


def test_midranks_and_rank_correlations_match_scipy_with_ties() -> None:
    """One sort gives scipy's average ranks (1-d and row by row) and the stable order; Spearman as spearmanr's."""
    from scipy.stats import rankdata, spearmanr

    from actionbank_env.evaluation import _correlation, _midranks, _rowwise_spearman

    rng = np.random.default_rng(11)
    for shape, decimals in (((1,), 1), ((40,), 1), ((3_000,), 2), ((60, 45), 1), ((7, 1), 3)):
        values = np.round(rng.random(shape), decimals)
        order, ranks = _midranks(values)
        np.testing.assert_array_equal(ranks, rankdata(values, axis=-1))
        np.testing.assert_array_equal(order, np.argsort(values, axis=-1, kind="stable"))
        np.testing.assert_array_equal(_midranks(values, stable=False)[1], ranks)  # any tie order: the same ranks
    a, b = np.round(rng.random(2_000), 2), np.round(rng.random(2_000), 1)
    assert _correlation(_midranks(a)[1], _midranks(b)[1]) == pytest.approx(spearmanr(a, b)[0], rel=1e-12)
    assert np.isnan(_correlation(a, np.full(a.size, 0.5)))
    rows_a, rows_b = np.round(rng.random((30, 20)), 1), np.round(rng.random((30, 20)), 1)
    expected = np.mean([spearmanr(x, y)[0] for x, y in zip(rows_a, rows_b, strict=True)])
    assert _rowwise_spearman(rows_a, rows_b) == pytest.approx(expected, rel=1e-12)


def test_stable_argsort_is_numpys_stable_argsort() -> None:
    """The fast stable order equals ``np.argsort(kind="stable")`` exactly: no ties, a few, many (the fallback), and
    runs of NaN, -0.0 / 0.0 and infinities, which the calibration bins would otherwise cut differently."""
    from actionbank_env.evaluation import _stable_argsort

    rng = np.random.default_rng(12)
    specials = np.array([0.0, -0.0, 1.0, np.inf, -np.inf, np.nan, 0.5])
    cases = [rng.random(n) for n in (1, 2, 50, 5_000)]
    cases += [np.round(rng.random(n), 2) for n in (3, 300, 5_000)]  # many ties: the stable-sort fallback
    cases += [rng.choice(specials, n) for n in (2, 7, 400)]
    for n in (64, 3_000):  # a few ties, below the fallback's share: the runs re-sorted alone
        values = rng.random(n)
        values[rng.integers(0, n, n // 40)] = values[0]
        values[rng.integers(0, n, 3)] = np.nan
        values[rng.integers(0, n, 2)] = -0.0
        values[rng.integers(0, n, 2)] = 0.0
        cases.append(values)
    for values in cases:
        np.testing.assert_array_equal(_stable_argsort(values), np.argsort(values, kind="stable"))


def test_unseen_fidelity_user_only_auc_is_the_auc_of_the_user_means() -> None:
    """The action-blind AUC from the n user means' ranks equals the AUC of the n x m broadcast scores."""
    from actionbank_env.evaluation import _roc_auc, unseen_candidate_fidelity

    class Truth:
        def click_prob(self, users: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
            return 1 / (1 + np.exp(-(np.round(users, 1) @ embeddings.T) + 2))  # rounded users: tied user means

    class Model:
        def predict(self, users: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
            return Truth().click_prob(users, embeddings) * 0.9

    rng = np.random.default_rng(3)
    users, cands = rng.random((300, 3)), rng.standard_normal((40, 3))
    users[:50] = users[50:100]  # some users identical: ties among the means
    report = unseen_candidate_fidelity(Model(), Truth(), users, cands, rng=np.random.default_rng(8))
    truth = Truth().click_prob(users, cands)
    clicks = np.random.default_rng(8).random(truth.shape) < truth  # the function's first draw
    expected = _roc_auc(clicks, np.broadcast_to(truth.mean(axis=1, keepdims=True), truth.shape))
    assert report.user_only_auc == pytest.approx(expected, rel=1e-12)
    assert report.fidelity.auc == pytest.approx(_roc_auc(clicks, Model().predict(users, cands)), rel=1e-12)
