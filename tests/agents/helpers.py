"""Test helpers for the targeting agents: a synthetic logistic ground truth, banks, and a tiny campaign loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env.core.actions import Action, ActionBank
from actionbank_env.core.users import FEATURE_NAMES, UserPopulation
from actionbank_env.protocols import AgentContext

D_USER = len(FEATURE_NAMES)
D_EMBED = 8


@dataclass(frozen=True)
class LogisticTruth:
    """P(click | x, e) = sigmoid(bias + scale * (x - 0.5) @ W @ e + e @ v): personalised through W, plain effect v."""

    weights: NDArray[np.float64]  # (d_user, d_embed)
    effect: NDArray[np.float64]  # (d_embed,)
    bias: float = -2.0
    scale: float = 6.0

    def click_prob(self, users: NDArray[np.float64], embeddings: NDArray[Any]) -> NDArray[np.float64]:
        """(n, d_user) x (m, d_embed) -> (n, m)."""
        emb = np.asarray(embeddings, dtype=np.float64)
        logits = self.bias + self.scale * (users - 0.5) @ self.weights @ emb.T + emb @ self.effect
        return 1.0 / (1.0 + np.exp(-logits))


def unit_vectors(n: int, d: int, rng: np.random.Generator) -> NDArray[np.float32]:
    """``n`` random unit vectors, shape (n, d)."""
    v = rng.normal(size=(n, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def make_truth(seed: int = 0, *, personalization: float = 1.0, effect_scale: float = 1.0) -> LogisticTruth:
    """A random logistic ground truth over (D_USER, D_EMBED)."""
    rng = np.random.default_rng(seed)
    weights = personalization * rng.normal(size=(D_USER, D_EMBED)) / np.sqrt(D_USER)
    return LogisticTruth(weights=weights, effect=effect_scale * rng.normal(size=D_EMBED))


def make_context(seed: int = 0, *, ground_truth: Any = None, n_ref: int = 200) -> AgentContext:
    """An AgentContext whose reference embeddings are random unit vectors."""
    ref = unit_vectors(n_ref, D_EMBED, np.random.default_rng(10_000 + seed))
    return AgentContext(
        d_user=D_USER, d_embed=D_EMBED, feature_names=FEATURE_NAMES, reference_embeddings=ref, ground_truth=ground_truth
    )


def make_bank(embeddings: NDArray[Any], *, first_id: int = 0) -> ActionBank:
    """A bank with ids ``A{first_id:05d}...`` and the given embeddings (m, d_embed)."""
    return ActionBank(
        Action(f"A{first_id + i:05d}", f"text {first_id + i}", np.asarray(e, dtype=np.float32))
        for i, e in enumerate(embeddings)
    )


def simulate(
    agent: Any,
    truth: Any,
    bank: ActionBank,
    *,
    n_rounds: int,
    batch_size: int = 1,
    seed: int = 0,
    set_bank: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Run ``agent`` for ``n_rounds`` users in mini-batches; users from UserPopulation, clicks from ``truth``.

    Returns:
        Per-round regret (best true click probability minus that of the served action), shape (n_rounds,),
        and the served indices, shape (n_rounds,).
    """
    rng = np.random.default_rng(seed)
    population = UserPopulation()
    if set_bank:
        agent.set_bank(bank)
    regrets = np.empty(n_rounds)
    served = np.empty(n_rounds, dtype=np.int64)
    for start in range(0, n_rounds, batch_size):
        n = min(batch_size, n_rounds - start)
        users = population.sample(n, rng=rng).features
        probs = truth.click_prob(users, bank.embeddings)
        decision = agent.act(users)
        chosen = probs[np.arange(n), decision.actions]
        clicks = (rng.random(n) < chosen).astype(np.float64)
        agent.update(users, decision.actions, clicks)
        regrets[start : start + n] = probs.max(axis=1) - chosen
        served[start : start + n] = decision.actions
    return regrets, served
