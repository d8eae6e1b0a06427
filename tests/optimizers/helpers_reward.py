"""A small synthetic world for reward-model tests: known logistic-bilinear click probabilities.

Action embeddings are unit vectors in 64 dimensions that lie near a 6-dimensional latent subspace (as text
embeddings lie near a low-dimensional manifold); the true click probability is
``sigmoid(b0 + alpha * c.v + beta * u_c^T M c)`` with ``c`` the latent coordinates of the embedding and
``u_c`` the centred user features, so targeting matters and unseen candidates share structure with the
logged ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from actionbank_env.core.users import UserPopulation

D_EMBED = 64
D_LATENT = 6


@dataclass(frozen=True)
class BilinearWorld:
    """P(click | u, e) = sigmoid(b0 + alpha * (P^T e).v + beta * u_c^T M (P^T e))."""

    basis: NDArray[np.float64]  # (D_EMBED, D_LATENT), orthonormal columns
    mixing: NDArray[np.float64]  # (D_EMBED, D_LATENT), generates embeddings from latents
    main: NDArray[np.float64]  # (D_LATENT,)
    interaction: NDArray[np.float64]  # (d_user, D_LATENT)
    bias: float

    def click_prob(self, users: NDArray[np.float64], embeddings: NDArray[np.floating]) -> NDArray[np.float64]:
        """True probabilities, (n, d_user) x (m, D_EMBED) -> (n, m)."""
        coords = np.asarray(embeddings, dtype=np.float64) @ self.basis * np.sqrt(D_LATENT)
        users_c = (users - 0.5) / 0.2
        logits = self.bias + (coords @ self.main)[None, :] + (users_c @ self.interaction) @ coords.T
        return 1.0 / (1.0 + np.exp(-logits))

    def embeddings(self, n_actions: int, rng: np.random.Generator) -> NDArray[np.float32]:
        """Unit-norm action embeddings near the latent subspace, shape (n_actions, D_EMBED)."""
        latents = rng.standard_normal((n_actions, D_LATENT))
        raw = latents @ self.mixing.T + 0.25 * rng.standard_normal((n_actions, D_EMBED)) / np.sqrt(D_EMBED)
        return (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class RewardData:
    """Train log, held-out log and an evaluation grid of held-out users x unseen candidates."""

    world: BilinearWorld
    users: NDArray[np.float64]  # (n, d_user) training rows
    embeddings: NDArray[np.float32]  # (n, D_EMBED) served action per row
    clicks: NDArray[np.float64]  # (n,)
    test_users: NDArray[np.float64]  # (n_test, d_user) held-out log rows
    test_embeddings: NDArray[np.float32]
    test_clicks: NDArray[np.float64]
    eval_users: NDArray[np.float64]  # (n_eval_users, d_user), never logged
    candidates: NDArray[np.float32]  # (n_candidates, D_EMBED), never served in training
    true_probs: NDArray[np.float64]  # (n_eval_users, n_candidates)
    bank: NDArray[np.float32]  # (n_bank, D_EMBED), the served actions


def make_world(rng: np.random.Generator, d_user: int = 8) -> BilinearWorld:
    """Draw the world's weights and calibrate the bias to a base CTR of about 0.15."""
    mixing = rng.standard_normal((D_EMBED, D_LATENT)) / np.sqrt(D_EMBED)
    basis, _ = np.linalg.qr(mixing)
    main = 0.5 * rng.standard_normal(D_LATENT) / np.sqrt(D_LATENT)
    interaction = 0.8 * rng.standard_normal((d_user, D_LATENT)) / np.sqrt(d_user * D_LATENT)
    world = BilinearWorld(basis, mixing, main, interaction, 0.0)
    users = UserPopulation().sample(500, rng=rng).features
    embeddings = world.embeddings(200, rng)
    lo, hi = -8.0, 4.0
    for _ in range(40):  # bisection on the bias for a mean CTR of 0.15
        mid = 0.5 * (lo + hi)
        probe = BilinearWorld(basis, mixing, main, interaction, mid)
        lo, hi = (mid, hi) if probe.click_prob(users, embeddings).mean() < 0.15 else (lo, mid)
    return BilinearWorld(basis, mixing, main, interaction, 0.5 * (lo + hi))


def make_reward_data(
    seed: int = 0,
    *,
    n_rows: int = 8000,
    n_bank: int = 40,
    n_test: int = 4000,
    n_eval_users: int = 150,
    n_candidates: int = 60,
) -> RewardData:
    """Logged rows with uniformly random actions from a bank of ``n_bank`` and Bernoulli clicks."""
    rng = np.random.default_rng(seed)
    world = make_world(rng)
    population = UserPopulation()
    bank = world.embeddings(n_bank, rng)

    def log(n: int, first_id: int) -> tuple[NDArray[np.float64], NDArray[np.float32], NDArray[np.float64]]:
        users = population.sample(n, rng=rng, first_id=first_id).features
        actions = rng.integers(n_bank, size=n)
        probs = np.take_along_axis(world.click_prob(users, bank), actions[:, None], axis=1)[:, 0]
        return users, bank[actions], (rng.random(n) < probs).astype(np.float64)

    users, embeddings, clicks = log(n_rows, 0)
    test_users, test_embeddings, test_clicks = log(n_test, n_rows)
    eval_users = population.sample(n_eval_users, rng=rng, first_id=n_rows + n_test).features
    candidates = world.embeddings(n_candidates, rng)
    return RewardData(
        world=world,
        users=users,
        embeddings=embeddings,
        clicks=clicks,
        test_users=test_users,
        test_embeddings=test_embeddings,
        test_clicks=test_clicks,
        eval_users=eval_users,
        candidates=candidates,
        true_probs=world.click_prob(eval_users, candidates),
        bank=bank,
    )


def paired_probs(model: object, users: NDArray[np.float64], embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
    """A model's probability for each logged row (its own user and served action), shape (n,)."""
    distinct, inverse = np.unique(embeddings, axis=0, return_inverse=True)
    grid = model.predict(users, distinct)  # type: ignore[attr-defined]
    return np.take_along_axis(grid, inverse.reshape(-1, 1), axis=1)[:, 0]


def log_loss(clicks: NDArray[np.float64], probs: NDArray[np.float64]) -> float:
    """Mean binary cross-entropy."""
    probs = np.clip(probs, 1e-9, 1 - 1e-9)
    return float(-np.mean(clicks * np.log(probs) + (1 - clicks) * np.log(1 - probs)))
