"""LinUCB: learning, exactness against a naive sequential reference, bank changes, validation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from actionbank_env.core.actions import ActionBank
from actionbank_env.core.users import UserPopulation
from actionbank_env.errors import ConfigError
from agents.linucb import LinUCBAgent, LinUCBConfig, choose_actions
from tests.agents.helpers import D_EMBED, LogisticTruth, make_bank, make_context, make_truth, simulate, unit_vectors


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    # Tiny matrices: BLAS threads only add contention on the shared test machine.
    with threadpool_limits(1):
        yield


def _agent(seed: int = 0, **kwargs: Any) -> LinUCBAgent:
    return LinUCBAgent(make_context(), rng=np.random.default_rng(seed), **kwargs)


def test_picks_the_dominant_action() -> None:
    embeddings = unit_vectors(10, D_EMBED, np.random.default_rng(3))
    truth = LogisticTruth(weights=np.zeros((8, D_EMBED)), effect=3.0 * embeddings[3].astype(np.float64))
    probs = truth.click_prob(np.full((1, 8), 0.5), embeddings)[0]
    assert probs.argmax() == 3 and probs[3] > probs[np.arange(10) != 3].max() + 0.25
    _, served = simulate(
        _agent(alpha=0.5, exploration="none"), truth, make_bank(embeddings), n_rounds=2000, batch_size=1, seed=1
    )
    assert np.mean(served[-200:] == 3) > 0.9


@pytest.mark.parametrize("mode", ["disjoint", "hybrid"])
def test_beats_random_and_epsilon_greedy(mode: str) -> None:
    from agents.baselines import EpsilonGreedyAgent, RandomAgent

    truth, bank = make_truth(0), make_bank(unit_vectors(20, D_EMBED, np.random.default_rng(1)))
    regret = {}
    for name, agent in (
        ("linucb", _agent(mode=mode)),
        ("random", RandomAgent(make_context(), rng=np.random.default_rng(0))),
        ("epsilon_greedy", EpsilonGreedyAgent(make_context(), rng=np.random.default_rng(0))),
    ):
        regret[name] = simulate(agent, truth, bank, n_rounds=2000, batch_size=10, seed=2)[0].sum()
    assert regret["linucb"] < 0.6 * min(regret["random"], regret["epsilon_greedy"]), regret


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"mode": "hybrid"},
        {"exploration": "epsilon", "epsilon": 0.2},
        {"exploration": "softmax", "temperature": 0.05},
    ],
)
@pytest.mark.parametrize("batch_size", [1, 16])
def test_same_seed_same_actions(kwargs: dict[str, Any], batch_size: int) -> None:
    truth, bank = make_truth(0), make_bank(unit_vectors(12, D_EMBED, np.random.default_rng(1)))
    runs = [
        simulate(_agent(7, **kwargs), truth, bank, n_rounds=160, batch_size=batch_size, seed=3)[1] for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    if "exploration" in kwargs:  # random exploration: another seed must give another sequence
        other = simulate(_agent(8, **kwargs), truth, bank, n_rounds=160, batch_size=batch_size, seed=3)[1]
        assert not np.array_equal(runs[0], other)


class NaiveLinUCB:
    """Li et al. (2010) Algorithm 1, written plainly: A and b per action, np.linalg.inv every round."""

    def __init__(self, n_actions: int, d: int, alpha: float, l2: float, rng: np.random.Generator) -> None:
        self.A = [l2 * np.eye(d) for _ in range(n_actions)]
        self.b = [np.zeros(d) for _ in range(n_actions)]
        self.alpha, self.rng = alpha, rng

    def scores(self, x: np.ndarray) -> np.ndarray:
        out = []
        for A, b in zip(self.A, self.b, strict=True):
            A_inv = np.linalg.inv(A)
            out.append(x @ A_inv @ b + self.alpha * np.sqrt(x @ A_inv @ x))
        return np.array(out)

    def act(self, x: np.ndarray) -> int:
        s = self.scores(x)
        ties = np.flatnonzero(s >= s.max() - 1e-12 * max(abs(s.max()), 1.0))
        return int(ties[0] if ties.size == 1 else ties[int(np.floor(self.rng.random() * ties.size))])

    def update(self, x: np.ndarray, a: int, r: float) -> None:
        self.A[a] += np.outer(x, x)
        self.b[a] += r * x


class NaiveHybridLinUCB:
    """Li et al. (2010) Algorithm 2, line by line, one (user, action) pair at a time."""

    def __init__(self, e: np.ndarray, d: int, alpha: float, l2: float) -> None:
        self.e, self.alpha = e, alpha
        k = d * e.shape[1]
        self.A0, self.b0 = l2 * np.eye(k), np.zeros(k)
        self.A = [l2 * np.eye(d) for _ in e]
        self.B = [np.zeros((d, k)) for _ in e]
        self.b = [np.zeros(d) for _ in e]

    def z(self, x: np.ndarray, a: int) -> np.ndarray:
        return np.outer(x, self.e[a]).ravel()

    def scores(self, x: np.ndarray) -> np.ndarray:
        A0_inv = np.linalg.inv(self.A0)
        beta = A0_inv @ self.b0
        out = []
        for a in range(len(self.A)):
            A_inv, B, z = np.linalg.inv(self.A[a]), self.B[a], self.z(x, a)
            theta = A_inv @ (self.b[a] - B @ beta)
            s = (
                z @ A0_inv @ z
                - 2 * z @ A0_inv @ B.T @ A_inv @ x
                + x @ A_inv @ x
                + x @ A_inv @ B @ A0_inv @ B.T @ A_inv @ x
            )
            out.append(z @ beta + x @ theta + self.alpha * np.sqrt(s))
        return np.array(out)

    def update(self, x: np.ndarray, a: int, r: float) -> None:
        A_inv, B, z = np.linalg.inv(self.A[a]), self.B[a], self.z(x, a)
        self.A0 += B.T @ A_inv @ B
        self.b0 += B.T @ A_inv @ self.b[a]
        self.A[a] += np.outer(x, x)
        self.B[a] += np.outer(x, z)
        self.b[a] += r * x
        A_inv, B = np.linalg.inv(self.A[a]), self.B[a]
        self.A0 += np.outer(z, z) - B.T @ A_inv @ B
        self.b0 += r * z - B.T @ A_inv @ self.b[a]


def _stream(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return UserPopulation().sample(n, rng=rng).features, rng.random(n)


def test_batch_of_one_equals_naive_sequential_disjoint() -> None:
    truth, embeddings = make_truth(0), unit_vectors(6, D_EMBED, np.random.default_rng(1))
    agent = _agent(11, alpha=0.7, l2=2.0, exploration="none")
    agent.set_bank(make_bank(embeddings))
    naive = NaiveLinUCB(6, 9, alpha=0.7, l2=2.0, rng=np.random.default_rng(11))
    users, coins = _stream(400, seed=5)
    for t in range(users.shape[0]):
        x = np.append(users[t], 1.0)
        np.testing.assert_allclose(agent.scores(users[t : t + 1])[0], naive.scores(x), rtol=1e-10, atol=1e-10)
        a = int(agent.act(users[t : t + 1]).actions[0])
        assert a == naive.act(x), t
        reward = float(coins[t] < truth.click_prob(users[t : t + 1], embeddings)[0, a])
        agent.update(users[t : t + 1], np.array([a]), np.array([reward]))
        naive.update(x, a, reward)


def test_batch_of_one_equals_naive_sequential_hybrid() -> None:
    truth, embeddings = make_truth(0), unit_vectors(5, D_EMBED, np.random.default_rng(1))
    agent = _agent(11, mode="hybrid", alpha=0.7, pca_components=4, l2_action=1.0)
    bank = make_bank(embeddings)
    agent.set_bank(bank)
    e = np.concatenate([agent._projection.transform(bank.embeddings), np.ones((5, 1))], axis=1)
    naive = NaiveHybridLinUCB(e, 9, alpha=0.7, l2=1.0)
    users, coins = _stream(120, seed=6)
    for t in range(users.shape[0]):
        x = np.append(users[t], 1.0)
        np.testing.assert_allclose(agent.scores(users[t : t + 1])[0], naive.scores(x), rtol=1e-10, atol=1e-10)
        a = int(agent.act(users[t : t + 1]).actions[0])
        reward = float(coins[t] < truth.click_prob(users[t : t + 1], embeddings)[0, a])
        agent.update(users[t : t + 1], np.array([a]), np.array([reward]))
        naive.update(x, a, reward)


@pytest.mark.parametrize("n_rows", [60, 100])  # hybrid: Woodbury step (<= 64 rows) and exact re-inversion
@pytest.mark.parametrize("mode", ["disjoint", "hybrid"])
def test_batched_update_equals_sequential_updates(mode: str, n_rows: int) -> None:
    bank = make_bank(unit_vectors(7, D_EMBED, np.random.default_rng(1)))
    users, coins = _stream(n_rows, seed=7)
    actions = np.random.default_rng(8).integers(0, 7, size=n_rows)
    rewards = (coins < 0.3).astype(np.float64)
    batched, sequential = _agent(mode=mode), _agent(mode=mode)
    batched.set_bank(bank)
    sequential.set_bank(bank)
    batched.update(users, actions, rewards)
    for t in range(n_rows):
        sequential.update(users[t : t + 1], actions[t : t + 1], rewards[t : t + 1])
    probe = _stream(30, seed=9)[0]
    np.testing.assert_allclose(batched.scores(probe), sequential.scores(probe), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(batched._A, sequential._A, rtol=1e-12)
    np.testing.assert_allclose(batched._A_inv, np.linalg.inv(sequential._A), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode", ["disjoint", "hybrid"])
def test_set_bank_keeps_retained_and_starts_new_fresh(mode: str) -> None:
    truth, embeddings = make_truth(0), unit_vectors(9, D_EMBED, np.random.default_rng(1))
    agent = _agent(mode=mode)
    simulate(agent, truth, make_bank(embeddings), n_rounds=300, batch_size=10, seed=4)
    probe = _stream(20, seed=10)[0]
    before = agent.scores(probe)
    old_bank = make_bank(embeddings)
    new_embedding = unit_vectors(1, D_EMBED, np.random.default_rng(99))
    agent.set_bank(ActionBank([old_bank[4], old_bank[2], make_bank(new_embedding, first_id=50)[0]]))
    after = agent.scores(probe)
    np.testing.assert_allclose(after[:, :2], before[:, [4, 2]], rtol=1e-12)
    fresh = agent._A[2]
    np.testing.assert_array_equal(fresh, (1.0 if mode == "disjoint" else 10.0) * np.eye(9))
    if mode == "disjoint":
        blank = _agent()
        blank.set_bank(make_bank(new_embedding))
        np.testing.assert_allclose(after[:, 2], blank.scores(probe)[:, 0], rtol=1e-12)
    else:
        np.testing.assert_array_equal(agent._B[2], 0.0)
    # Back to the first bank: statistics of the dropped actions were kept as well.
    agent.set_bank(make_bank(embeddings))
    np.testing.assert_allclose(agent.scores(probe), before, rtol=1e-12)


def test_hybrid_transfers_to_new_similar_actions() -> None:
    truth = make_truth(0, personalization=1.5)
    rng = np.random.default_rng(12)
    old = unit_vectors(15, D_EMBED, rng)
    noisy = old.astype(np.float64) + 0.15 * rng.normal(size=old.shape)
    new = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)
    regret = {}
    for mode in ("disjoint", "hybrid"):
        # l2_action=10: a new action leans on the shared embedding model rather than its own fresh terms.
        agent = _agent(mode=mode, alpha=0.5, exploration="none", **({"l2_action": 10.0} if mode == "hybrid" else {}))
        simulate(agent, truth, make_bank(old), n_rounds=1500, batch_size=10, seed=13)
        agent.set_bank(make_bank(new, first_id=100))
        regret[mode] = simulate(agent, truth, make_bank(new, first_id=100), n_rounds=300, batch_size=10, seed=14)[0]
    assert regret["hybrid"].sum() < 0.6 * regret["disjoint"].sum(), {k: v.sum() for k, v in regret.items()}


@pytest.mark.parametrize(
    ("exploration", "kwargs"), [("epsilon", {"epsilon": 0.3}), ("softmax", {"temperature": 0.5}), ("none", {})]
)
def test_propensities_match_frequencies(exploration: str, kwargs: dict[str, float]) -> None:
    scores = np.tile(np.array([[0.1, 0.5, 0.5, 0.2]]), (40_000, 1))
    actions, props = choose_actions(
        scores, exploration, kwargs.get("epsilon", 0.0), kwargs.get("temperature", 1.0), np.random.default_rng(0)
    )
    for a in range(4):
        chosen = actions == a
        freq = chosen.mean()
        if freq > 0:
            np.testing.assert_allclose(props[chosen], props[chosen][0])
            assert abs(freq - props[chosen][0]) < 0.01, (a, freq, props[chosen][0])
        else:
            assert exploration == "none" and a in (0, 3)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"mode": "hybird"}, ConfigError, "LinUCBConfig.mode must be one of ['disjoint', 'hybrid'], got 'hybird'."),
        ({"alpha": -0.5}, ConfigError, "LinUCBConfig.alpha must be a float >= 0.0, got -0.5."),
        ({"l2": 0.0}, ConfigError, "LinUCBConfig.l2 must be a float > 0.0, got 0.0."),
        ({"use_pca": 1}, TypeError, "LinUCBConfig.use_pca must be a bool, got 1"),
        ({"l2_action": 5.0}, ConfigError, "LinUCBConfig.l2_action=5.0 only applies to mode='hybrid'"),
        ({"mode": "hybrid", "l2_action": -1.0}, ConfigError, "LinUCBConfig.l2_action must be a float > 0.0, got -1.0."),
        ({"pca_components": 0}, ConfigError, "LinUCBConfig.pca_components must be an int >= 1, got 0."),
        ({"exploration": "ucb"}, ConfigError, "LinUCBConfig.exploration must be one of"),
        (
            {"epsilon": 1.5, "exploration": "epsilon"},
            ConfigError,
            "LinUCBConfig.epsilon must be a float >= 0.0 and <= 1.0",
        ),
        (
            {"exploration": "none", "epsilon": 0.1},
            ConfigError,
            "LinUCBConfig.epsilon=0.1 has no effect with exploration='none'",
        ),
        ({"temperature": 0.0}, ConfigError, "LinUCBConfig.temperature must be a float > 0.0, got 0.0."),
        ({"alpha": "1"}, TypeError, "LinUCBConfig.alpha must be a float, got '1' of type str."),
    ],
)
def test_config_validation(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        LinUCBConfig(**kwargs)
    with pytest.raises(error, match=re.escape(message)):
        _agent(**kwargs)


def test_unknown_hyperparameters_and_config_object() -> None:
    with pytest.raises(TypeError, match=re.escape("LinUCBAgent got unknown parameters ['alfa', 'beta']")):
        _agent(alfa=1.0, beta=2)
    agent = LinUCBAgent(make_context(), rng=np.random.default_rng(0), config=LinUCBConfig(alpha=0.3))
    assert agent.config.alpha == 0.3


def test_act_before_set_bank_errors() -> None:
    with pytest.raises(RuntimeError, match=re.escape("called before set_bank(bank)")):
        _agent().act(np.full((1, 8), 0.5))


def test_act_checks_user_shape() -> None:
    agent = _agent()
    agent.set_bank(make_bank(unit_vectors(3, D_EMBED, np.random.default_rng(0))))
    with pytest.raises(ConfigError, match=re.escape("users must have shape (B, 8), got (2, 7).")):
        agent.act(np.zeros((2, 7)))


def test_hybrid_rank_one_updates_match_an_exact_refresh() -> None:
    truth, embeddings = make_truth(0), unit_vectors(8, D_EMBED, np.random.default_rng(1))
    agent = _agent(mode="hybrid", alpha=0.5)
    simulate(agent, truth, make_bank(embeddings), n_rounds=1300, batch_size=1, seed=15)  # crosses one re-inversion
    probe = _stream(25, seed=16)[0]
    incremental = agent.scores(probe)
    agent._A0_inv = np.linalg.inv(agent._A0)
    agent._dirty = True
    np.testing.assert_allclose(incremental, agent.scores(probe), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("mode", ["disjoint", "hybrid"])
def test_single_user_fast_path_equals_general_path(mode: str) -> None:
    truth, embeddings = make_truth(0), unit_vectors(6, D_EMBED, np.random.default_rng(1))
    fast, general = _agent(5, mode=mode), _agent(5, mode=mode)
    for agent in (fast, general):
        agent.set_bank(make_bank(embeddings))
    users, coins = _stream(300, seed=17)
    for t in range(users.shape[0]):
        a_fast = fast.act(users[t : t + 1]).actions
        a_general = general.act(users[t : t + 1].tolist()).actions  # a list skips the ndarray fast path
        assert a_fast.tolist() == a_general.tolist(), t
        reward = float(coins[t] < truth.click_prob(users[t : t + 1], embeddings)[0, a_fast[0]])
        fast.update(users[t : t + 1], a_fast, np.array([reward]))
        general.update(users[t : t + 1].tolist(), a_general.tolist(), [reward])
    probe = _stream(10, seed=18)[0]
    np.testing.assert_allclose(fast.scores(probe), general.scores(probe), rtol=1e-9, atol=1e-12)


def test_compiled_greedy_batch_follows_choose_actions_rule_and_draws() -> None:
    """The disjoint greedy batch path picks what choose_actions(..., "none") picks from the same rng."""
    bank = make_bank(unit_vectors(7, D_EMBED, np.random.default_rng(1)))
    agent = _agent(3, alpha=0.5, exploration="none")
    agent.set_bank(bank)
    users, coins = _stream(300, seed=4)
    reference_rng = np.random.default_rng(3)  # the agent's seed: both draw the same tie-break uniforms
    for start in range(0, 300, 50):  # the first batch is all ties (fresh actions), later ones mostly not
        batch = users[start : start + 50]
        expected = choose_actions(agent.scores(batch), "none", 0.0, 1.0, reference_rng)
        decision = agent.act(batch)
        np.testing.assert_array_equal(decision.actions, expected[0])
        np.testing.assert_array_equal(decision.propensities, expected[1])
        agent.update(batch, decision.actions, (coins[start : start + 50] < 0.2).astype(np.float64))


def test_compiled_spd_inverse_matches_lapack_and_refuses_non_spd() -> None:
    from agents._linucb_kernels import spd_inverse

    rng = np.random.default_rng(0)
    chol, chol_inv, out = np.empty((9, 9)), np.empty((9, 9)), np.empty((9, 9))
    for _ in range(20):
        x = rng.random((rng.integers(1, 50), 9))
        m = 0.5 * np.eye(9) + x.T @ x  # what LinUCB inverts: l2 I + sum x x^T
        assert spd_inverse(m, out, chol, chol_inv)
        np.testing.assert_allclose(out, np.linalg.inv(m), rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(out, out.T)
    assert not spd_inverse(-np.eye(9), out, chol, chol_inv)


# --------------------------------------------------------------------------- a prior for new actions


def test_new_action_prior_is_the_weighted_ridge_statistics_of_the_predictions() -> None:
    rng = np.random.default_rng(0)
    embeddings = unit_vectors(6, D_EMBED, rng)
    agent = _agent(new_action_prior=50.0)
    first = make_bank(embeddings[:4])
    agent.set_bank(first)
    assert agent.new_action_indices.tolist() == [0, 1, 2, 3]
    users = rng.random((200, 8))
    agent.update(users[:40], rng.integers(0, 4, 40), (rng.random(40) < 0.2).astype(float))
    agent.set_bank(ActionBank([*list(first)[:2], *make_bank(embeddings[4:], first_id=4)]))  # two kept, two new
    assert agent.new_action_indices.tolist() == [2, 3]
    before_kept = agent._phi[:2].copy()
    preds = np.column_stack([np.full(200, 0.05), 0.02 + 0.1 * users[:, 0]])
    agent.prime_new_actions(agent.new_action_indices, users, preds)
    x = np.column_stack([users, np.ones(200)])
    for j, i in enumerate([2, 3]):
        A = np.eye(9) + 50.0 / 200 * x.T @ x
        b = 50.0 / 200 * x.T @ preds[:, j]
        np.testing.assert_allclose(agent._A[i], A, rtol=1e-12)
        np.testing.assert_allclose(agent._phi[i], np.linalg.solve(A, b), rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(agent._phi[:2], before_kept)  # served actions are untouched
    # The primed action's mean now follows the prediction (shrunk by the blank model's one pseudo-observation).
    assert np.abs(x @ agent._phi[3] - preds[:, 1]).max() < 0.02
    blank = _agent()
    blank.set_bank(agent.bank)  # the same new action, blank: its whole score is the confidence bonus
    assert (agent.scores(users)[:, 3] < blank.scores(users)[:, 3]).all()


def test_new_action_prior_off_by_default_and_validated() -> None:
    agent = _agent()
    agent.set_bank(make_bank(unit_vectors(3, D_EMBED, np.random.default_rng(1))))
    phi = agent._phi.copy()
    agent.prime_new_actions(agent.new_action_indices, np.full((5, 8), 0.5), np.full((5, 3), 0.1))
    np.testing.assert_array_equal(agent._phi, phi)  # weight 0: nothing wanted, nothing changed
    assert agent.action_prior_weight == 0.0
    with pytest.raises(ConfigError, match="LinUCBConfig.new_action_prior"):
        LinUCBConfig(new_action_prior=-1.0)
    with pytest.raises(ConfigError, match="needs mode='disjoint'"):
        LinUCBConfig(new_action_prior=10.0, mode="hybrid")
    primed = _agent(new_action_prior=10.0)
    with pytest.raises(RuntimeError, match="before set_bank"):
        primed.prime_new_actions(np.array([0]), np.full((5, 8), 0.5), np.full((5, 1), 0.1))
    primed.set_bank(make_bank(unit_vectors(3, D_EMBED, np.random.default_rng(1))))
    with pytest.raises(ValueError, match="predictions"):
        primed.prime_new_actions(np.array([0, 1]), np.full((5, 8), 0.5), np.full((5, 1), 0.1))
    with pytest.raises(ValueError, match="indices must lie in"):
        primed.prime_new_actions(np.array([3]), np.full((5, 8), 0.5), np.full((5, 1), 0.1))
