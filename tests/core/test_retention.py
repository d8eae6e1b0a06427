"""The subscriber dynamics of Retention-v0: fatigue, novelty, unsubscribes, observations and parameter checks."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from actionbank_env.core.retention import (
    HISTORY_WEEKS,
    RetentionDynamics,
    RetentionState,
    current_click_probs,
    expected_clicks_ahead,
    fatigue_sensitivity,
    hazards,
    myopic_actions,
    observations,
    similarity_matrix,
    step,
)
from actionbank_env.errors import ConfigError

K = 3
NO_EMAIL = K


def subscribers(n: int = 1, probs: tuple[float, ...] = (0.2, 0.1, 0.05), sensitivity: float = 1.0) -> RetentionState:
    return RetentionState.new(np.full((n, 8), 0.5), np.tile(np.asarray(probs), (n, 1)), np.full(n, sensitivity))


def play(
    state: RetentionState,
    actions: list[int],
    dynamics: RetentionDynamics | None = None,
    similarity: np.ndarray | None = None,
    uniforms: float = 0.999,
) -> list[Any]:
    """Play the same action sequence for every subscriber with fixed uniforms (no clicks, no unsubscribes)."""
    dynamics = dynamics or RetentionDynamics()
    sim = np.eye(K) if similarity is None else similarity
    outcomes = []
    for a in actions:
        u = np.full((2, state.n), uniforms)
        outcomes.append(step(state, np.full(state.n, a, dtype=np.int64), u, dynamics, sim, 0.05))
    return outcomes


def test_fatigue_rises_with_each_send_and_decays_with_rest() -> None:
    state = subscribers()
    fatigue = [float(o.fatigue[0]) for o in play(state, [0, 0, 0, NO_EMAIL, NO_EMAIL, NO_EMAIL])]
    assert fatigue[0] == 0.0
    assert fatigue[0] < fatigue[1] < fatigue[2] < fatigue[3]  # three sends in a row
    assert fatigue[3] > fatigue[4] > fatigue[5]  # resting
    d = RetentionDynamics().fatigue_decay
    assert fatigue[1] == pytest.approx(d)
    assert fatigue[4] == pytest.approx(d * fatigue[3])


def test_click_probability_falls_with_fatigue_and_recovers_with_rest() -> None:
    dyn = RetentionDynamics(novelty_penalty=0.0)
    state = subscribers()
    outcomes = play(state, [1, 1, 1, NO_EMAIL, NO_EMAIL], dyn)
    best_now = [float(o.click_probs[0, 0]) for o in outcomes]  # message 0 is never sent: fatigue alone
    assert best_now[0] == pytest.approx(0.2)
    assert best_now[0] > best_now[1] > best_now[2]
    assert best_now[3] < best_now[4] < 0.2
    np.testing.assert_allclose(outcomes[1].click_probs[0, 0], 0.2 * np.exp(-dyn.fatigue_click * outcomes[1].fatigue[0]))
    assert outcomes[0].click_probs[0, NO_EMAIL] == 0.0


def test_loyal_subscribers_tire_less() -> None:
    dyn = RetentionDynamics()
    users = np.full((2, 8), 0.5)
    users[0, 4], users[1, 4] = 0.2, 0.8  # brand_loyalty
    sens = fatigue_sensitivity(users, 4, dyn)
    assert sens[0] > 1.0 > sens[1]
    state = RetentionState.new(users, np.full((2, K), 0.1), sens)
    play(state, [0, 0], dyn)
    probs = current_click_probs(state, dyn, np.eye(K))
    assert probs[0, 1] < probs[1, 1]
    flat = RetentionDynamics(sensitivity_slope=0.0)
    np.testing.assert_allclose(fatigue_sensitivity(users, 4, flat), 1.0)


def test_repeats_and_near_repeats_are_worth_less() -> None:
    dyn = RetentionDynamics(fatigue_click=0.0)
    embeddings = np.array([[1.0, 0.0, 0.0], [0.99, 0.14, 0.0], [0.0, 0.0, 1.0]])
    sim = similarity_matrix(embeddings, dyn.novelty_similarity)
    assert sim[0, 1] > 0.5 and sim[0, 2] == 0.0 and np.all(np.diag(sim) == 1.0)
    state = subscribers(probs=(0.2, 0.2, 0.2))
    play(state, [0], dyn, sim)
    probs = current_click_probs(state, dyn, sim)[0]
    assert probs[0] < probs[1] < probs[2] == pytest.approx(0.2)  # the repeat, the near repeat, a new text
    assert probs[0] == pytest.approx(0.2 * (1 - dyn.novelty_penalty * min(1.0, dyn.novelty_decay)))
    play(state, [NO_EMAIL] * 6, dyn, sim)  # novelty comes back with time
    assert current_click_probs(state, dyn, sim)[0, 0] > 0.19


def test_hazard_rises_with_fatigue_and_with_irrelevant_mail() -> None:
    dyn = RetentionDynamics()
    state = subscribers(probs=(0.2, 0.0, 0.05))
    first = play(state, [0], dyn)[0]
    rested = hazards(subscribers(probs=(0.2, 0.0, 0.05)), dyn, first.click_probs, 0.05)[0]
    assert rested[0] == pytest.approx(dyn.unsubscribe_base)  # relevant mail to a rested subscriber
    assert rested[1] == pytest.approx(dyn.unsubscribe_base * (1 + dyn.unsubscribe_irrelevance))  # p = 0
    assert rested[NO_EMAIL] == 0.0
    hazard_by_week = [float(o.hazard[0]) for o in play(state, [2, 2, 2], dyn)]
    assert hazard_by_week[0] < hazard_by_week[1] < hazard_by_week[2]


@pytest.mark.parametrize("inactivity_churn", [0.0, 0.3])
def test_the_hazard_of_the_chosen_action_is_that_column_of_all_hazards(inactivity_churn: float) -> None:
    dyn = RetentionDynamics(inactivity_churn=inactivity_churn, inactivity_weeks=2)
    rng = np.random.default_rng(0)
    state = RetentionState.new(rng.random((64, 8)), rng.random((64, K)) * 0.2, rng.random(64) * 3)
    for _ in range(4):
        actions = rng.integers(0, K + 1, size=64)
        probs = current_click_probs(state, dyn, np.eye(K))
        expected = hazards(state, dyn, probs, 0.05)[np.arange(64), actions]
        out = step(state, actions, rng.random((2, 64)), dyn, np.eye(K), 0.05)
        np.testing.assert_allclose(out.hazard, expected, rtol=1e-12)


def test_unsubscribes_follow_the_uniforms_and_rewards_count_clicks() -> None:
    dyn = RetentionDynamics(unsubscribe_base=0.5, unsubscribe_irrelevance=0.0, subscriber_value=0.25)
    state = subscribers(2)
    u = np.array([[0.01, 0.99], [0.1, 0.9]])  # sub 0 clicks and leaves, sub 1 neither
    out = step(state, np.array([0, 0]), u, dyn, np.eye(K), 0.05)
    assert out.clicks.tolist() == [1.0, 0.0]
    assert out.unsubscribed.tolist() == [True, False]
    assert out.rewards.tolist() == [1.0, 0.25]  # the value of staying goes to who stays


def test_resting_never_unsubscribes_without_inactivity_churn_and_lapses_with_it() -> None:
    state = subscribers(50)
    quiet = play(state, [NO_EMAIL] * 10, uniforms=0.0)
    assert not any(o.unsubscribed.any() for o in quiet)
    dyn = RetentionDynamics(inactivity_churn=1.0, inactivity_weeks=3)
    state = subscribers(1)
    lapses = [bool(o.unsubscribed[0]) for o in play(state, [NO_EMAIL] * 4, dyn, uniforms=0.5)]
    assert lapses == [False, False, True, True]  # the gap reaches 3 weeks in the third week


def test_observations_are_bounded_and_count_the_last_four_weeks() -> None:
    state = subscribers()
    features = np.vstack([np.array([[0.5, -0.5], [1.0, 0.0], [0.0, 1.0]], np.float32), np.zeros((1, 2), np.float32)])
    obs = observations(state, 26, features)
    assert obs.dtype == np.float32 and obs.flags.writeable
    assert obs[0, 8:].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # never mailed: rested, no history, no message
    outcomes = play(state, [0, 1, NO_EMAIL, 2, NO_EMAIL, NO_EMAIL], uniforms=0.0)  # uniforms 0: every email clicked
    assert [int(o.clicks[0]) for o in outcomes] == [1, 1, 0, 1, 0, 0]
    obs = observations(state, 26, features)[0]
    assert obs[8] == pytest.approx(3 / 26)  # last email in week 3, now week 6
    assert obs[9] == pytest.approx(1 / HISTORY_WEEKS)  # weeks 2..5: one email
    assert obs[10] == pytest.approx(1 / HISTORY_WEEKS)
    assert obs[11] == pytest.approx(6 / 26)
    assert obs[12:].tolist() == [0.0, 1.0]  # message 2's features
    assert np.all((obs >= -1) & (obs <= 1))


def test_state_rows_can_be_replaced_by_fresh_subscribers() -> None:
    state = subscribers(3)
    play(state, [0, 0])
    state.replace_rows(np.array([1]), subscribers(1, probs=(0.3, 0.3, 0.3)))
    assert state.week.tolist() == [2, 0, 2]
    assert state.fatigue[1] == 0.0 and state.base_probs[1].tolist() == [0.3, 0.3, 0.3]
    copy = state.copy()
    copy.week[:] = 9
    assert state.week.tolist() == [2, 0, 2]


ERRORS = [
    (
        {"fatigue_decay": 1.5},
        ConfigError,
        "RetentionDynamics.fatigue_decay must be a float >= 0.0 and <= 1.0, got 1.5.",
    ),
    (
        {"fatigue_click": -1.0},
        ConfigError,
        "RetentionDynamics.fatigue_click must be a float >= 0.0 and <= 10.0, got -1.0.",
    ),
    (
        {"novelty_penalty": 2},
        ConfigError,
        "RetentionDynamics.novelty_penalty must be a float >= 0.0 and <= 1.0, got 2.",
    ),
    ({"unsubscribe_base": "x"}, TypeError, "RetentionDynamics.unsubscribe_base must be a float"),
    ({"inactivity_weeks": 0}, ConfigError, "RetentionDynamics.inactivity_weeks must be an int >= 1, got 0."),
    ({"relevance_ctr": 0.0}, ConfigError, "RetentionDynamics.relevance_ctr must be a float > 0.0"),
    ({"sensitivity_feature": ""}, ConfigError, "RetentionDynamics.sensitivity_feature must be a non-empty string"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), ERRORS)
def test_bad_parameters_name_the_field_the_rule_and_the_value(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        RetentionDynamics(**kwargs)


# --------------------------------------------------------------------------- campaigns as lifetimes (BankDesign)


class _FixedAgent:
    """A targeting agent that always sends ``index`` and counts the rows it learned from."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.updated = 0

    def set_bank(self, bank: Any) -> None:
        pass

    def act(self, users: np.ndarray) -> Any:
        from actionbank_env.protocols import Decision

        return Decision(np.full(len(users), self.index, dtype=np.int64), np.ones(len(users)))

    def update(self, users: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> dict[str, float]:
        self.updated += len(users)
        return {"train/rows": float(len(users))}


def _campaign(horizon: int, seed: int = 0, n: int = 400, index: int = 0, **dynamics: Any) -> tuple[Any, Any, Any]:
    from actionbank_env.core.retention import RetentionCampaignConfig, run_retention_campaign
    from tests.worlds import hashing_world

    world = hashing_world()
    users = world.sample_users(n, rng=np.random.default_rng(1))
    agent = _FixedAgent(index)
    config = RetentionCampaignConfig(horizon=horizon, dynamics=RetentionDynamics(**dynamics))
    sensitivity_index, relevance = config.dynamics.resolve(world.feature_names, world.config.base_ctr)
    result = run_retention_campaign(
        world.ground_truth,
        world.initial_bank,
        agent,
        users,
        config=config,
        sensitivity_index=sensitivity_index,
        relevance_ctr=relevance,
        rng=np.random.default_rng(seed),
        batch_size=32,
    )
    return result, agent, (world, users)


def test_a_retention_campaign_logs_one_row_per_email_until_the_subscriber_leaves() -> None:
    result, agent, (_, users) = _campaign(horizon=12, unsubscribe_base=0.02)
    cols = result.log.columns
    rows_per_user = np.bincount(np.searchsorted(users.ids, cols["user_id"]), minlength=len(users))
    np.testing.assert_array_equal(rows_per_user, result.weeks)
    assert agent.updated == len(result.log) == result.weeks.sum()
    assert np.all(result.weeks[~result.unsubscribed] == 12)
    assert 0 < result.unsubscribed.sum() < len(users)  # 2 % a week, more with fatigue
    assert np.all(result.weeks[result.unsubscribed] <= 12)
    # Expected lifetime clicks of a subscriber: the click probabilities of its emails, below perfect targeting.
    assert np.all(result.served_probs <= result.best_probs + 1e-12)
    summary = result.summary()
    assert summary["subscribers"] == len(users) and summary["n_users"] == len(result.log)
    assert summary["unsubscribe_rate"] == pytest.approx(result.unsubscribed.mean())
    assert summary["deployed_value"] == pytest.approx(result.served_probs.mean())
    assert 0 < summary["train/rows"] <= 32  # the agent's metrics: mean over its updates (mini-batches of 32)


def test_a_one_week_retention_campaign_serves_the_ground_truth_of_a_one_email_campaign() -> None:
    from actionbank_env.core.campaign import run_campaign

    result, _, (world, users) = _campaign(horizon=1, index=3)
    single = run_campaign(world.ground_truth, world.initial_bank, _FixedAgent(3), users, rng=np.random.default_rng(0))
    np.testing.assert_allclose(result.served_probs, single.served_probs, rtol=1e-12)
    np.testing.assert_allclose(result.best_probs, single.best_probs, rtol=1e-12)
    np.testing.assert_allclose(result.mean_probs, single.mean_probs, rtol=1e-12)


def test_weekly_repeats_of_one_message_wear_out_and_seeded_campaigns_repeat() -> None:
    result, _, _ = _campaign(horizon=6)
    again, _, _ = _campaign(horizon=6)
    for key, column in result.log.columns.items():
        np.testing.assert_array_equal(column, again.log.columns[key])
    np.testing.assert_array_equal(result.served_probs, again.served_probs)
    # Six weekly sends of the same message earn less than six times the first one (fatigue and novelty).
    first, _, _ = _campaign(horizon=1)
    assert result.deployed_value < 0.6 * 6 * first.deployed_value
    # Without fatigue, novelty or unsubscribes the lifetime is six independent first emails.
    flat, _, _ = _campaign(horizon=6, fatigue_click=0.0, novelty_penalty=0.0, unsubscribe_base=0.0)
    np.testing.assert_allclose(flat.served_probs, 6 * first.served_probs, rtol=1e-12)


# ---------------------------------------------------------------------------------------------- exact lookahead


def _sampled_lifetime_clicks(
    state: RetentionState, first: int, dynamics: RetentionDynamics, horizon: int, seed: int
) -> np.ndarray:
    """Clicks (plus subscriber value) of each subscriber until the horizon or an unsubscribe, by sampling ``step``:
    ``first`` in week 0, then oracle-myopic."""
    rng = np.random.default_rng(seed)
    sim = similarity_matrix(np.eye(K), dynamics.novelty_similarity)
    total = np.zeros(state.n)
    alive = np.ones(state.n, dtype=bool)
    actions = np.full(state.n, first, dtype=np.int64)
    for _ in range(horizon):
        out = step(state, actions, rng.random((2, state.n)), dynamics, sim, 0.05)
        total += np.where(alive, out.rewards, 0.0)
        alive &= ~out.unsubscribed
        actions = myopic_actions(current_click_probs(state, dynamics, sim), state)
    return total


@pytest.mark.parametrize("first", [0, NO_EMAIL])
@pytest.mark.parametrize("subscriber_value", [0.0, 0.1])
def test_expected_clicks_ahead_is_the_mean_of_sampled_lifetimes(first: int, subscriber_value: float) -> None:
    # A strong hazard so that survival matters; 20,000 copies of one subscriber give the sampled mean.
    dynamics = RetentionDynamics(unsubscribe_base=0.05, unsubscribe_fatigue=1.0, subscriber_value=subscriber_value)
    horizon, n = 8, 20_000
    exact = expected_clicks_ahead(
        subscribers(1), np.array([first]), myopic_actions, dynamics, similarity_matrix(np.eye(K), 0.8), 0.05, horizon
    )
    sampled = _sampled_lifetime_clicks(subscribers(n), first, dynamics, horizon, seed=3)
    standard_error = sampled.std() / np.sqrt(n)
    assert abs(sampled.mean() - exact[0]) < 4 * standard_error, (sampled.mean(), exact[0], standard_error)


def test_expected_clicks_ahead_leaves_the_state_alone_and_stops_at_the_horizon() -> None:
    state = subscribers(3)
    state.week[:] = [0, 24, 26]  # 26, 2 and 0 weeks left of a 26-week lifetime
    before = state.copy()
    dynamics = RetentionDynamics()
    sim = similarity_matrix(np.eye(K), dynamics.novelty_similarity)
    value = expected_clicks_ahead(state, np.zeros(3, dtype=np.int64), myopic_actions, dynamics, sim, 0.05, 26)
    for name in RetentionState.__slots__:
        np.testing.assert_array_equal(getattr(state, name), getattr(before, name))
    assert value[2] == 0.0 and 0.0 < value[1] < value[0]
    # Two weeks left: message 0 at rest (0.2, hazard 0.001), then message 0 again as the best, at fatigue 0.5 and
    # half an exposure (0.2 * exp(-0.5) * (1 - 0.5 * 0.5) = 0.091 beats message 1's 0.1 * exp(-0.5) = 0.061).
    assert value[1] == pytest.approx(0.2 + (1.0 - 0.001) * 0.2 * np.exp(-0.5) * 0.75)
