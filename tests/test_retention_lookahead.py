"""The evaluation-only lookahead of ``benchmarks.retention_lookahead``: it rests where resting pays, and so beats
oracle-myopic on lifetime clicks and unsubscribes (a hashing world, one fixed cohort, wide margins)."""

from __future__ import annotations

import numpy as np

from actionbank_env.core.retention import RetentionState, myopic_actions
from actionbank_env.envs.retention import RetentionVectorEnv
from agents.retention import OracleMyopicPolicy, OracleRestingPolicy, run_lifetimes
from benchmarks.retention_lookahead import OracleLookaheadPolicy, resting_actions
from tests.worlds import hashing_world


def test_resting_rule_matches_the_oracle_resting_policy() -> None:
    envs = RetentionVectorEnv(64, world=hashing_world())
    envs.reset(seed=0)
    for week in range(3):
        state = envs._state
        assert isinstance(state, RetentionState)
        probs = envs.current_click_probs()
        np.testing.assert_array_equal(resting_actions(0.4)(probs, state), OracleRestingPolicy(0.4).act(None, envs))
        envs.step(np.full(64, week % 2, dtype=np.int64))


def test_lookahead_beats_oracle_myopic_on_lifetimes() -> None:
    envs = RetentionVectorEnv(1000, world=hashing_world())
    myopic = run_lifetimes(envs, OracleMyopicPolicy(), seed=1).summary()
    lookahead = run_lifetimes(envs, OracleLookaheadPolicy(), seed=1).summary()
    both = run_lifetimes(envs, OracleLookaheadPolicy((myopic_actions, resting_actions(0.4))), seed=1).summary()
    for policy in (lookahead, both):
        assert policy["clicks_per_subscriber"] > myopic["clicks_per_subscriber"] + 0.03, (policy, myopic)
        assert policy["unsubscribe_rate"] < 0.5 * myopic["unsubscribe_rate"]
        assert policy["emails_per_subscriber"] < myopic["emails_per_subscriber"] - 3  # it rests
