"""Ground-truth click models P(click | user, action): pure, stationary, vectorised, fixed by the world seed.

Three families share one recipe: a raw score over (user, action embedding) pairs, standardised with
constants measured once on a reference sample at construction (never on the batch being scored), then a
link to a probability calibrated so that a random bank under random targeting has the configured base
CTR and the per-user best action of a random bank is ``best_lift`` times better.

- :class:`MixtureOfExperts`: softmax gate over user features, bilinear experts ``x W_k P e``.
- :class:`GaussianMixture`: a Gaussian-mixture preference density over the joint (user, action) space,
  mapped to ``[min_utility, max_utility]``.
- :class:`SemanticGroundTruth`: experts are concept directions in embedding space ("big discount",
  "exclusive premium access", ...), gated by the user traits that respond to them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_array, check_int, check_prob, check_real
from actionbank_env.core._math import logistic_inplace
from actionbank_env.core.pca import principal_axes
from actionbank_env.errors import ConfigError

__all__ = [
    "GroundTruth",
    "GroundTruthConfig",
    "MixtureOfExperts",
    "GaussianMixture",
    "SemanticGroundTruth",
    "GROUND_TRUTHS",
    "build_ground_truth",
    "calibrate_logistic_link",
    "interaction_share",
    "monotone_scores",
    "SEMANTIC_CONCEPTS",
]

Array = NDArray[np.float64]


@runtime_checkable
class GroundTruth(Protocol):
    """The true click model of a world. Only the environments and the evaluator may call it."""

    name: str

    def click_prob(self, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]) -> Array:
        """Click probabilities, users (n, d_user) x embeddings (m, d_embed) -> (n, m) in [0, 1]."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class GroundTruthConfig:
    """Settings shared by the ground-truth families.

    Attributes:
        base_ctr: Mean click probability of a random bank under random targeting (email click rates are
            a few percent).
        best_lift: Ratio of the per-user best action's probability in a random bank of ``bank_size``
            actions to ``base_ctr``; must be > 1.
        bank_size: Bank size the lift is calibrated for (the world's ``initial_actions``).
        personalization: Share in [0, 1] of the logit variance that is user x action interaction rather
            than a plain action effect (0: one action is best for everyone; 1: pure targeting).
        n_experts: Experts of the mixture of experts.
        projection_dim: Principal components of the embedding space the experts see.
        gmm_components: Components of the Gaussian mixture.
        density_scale_factor: GMM: density that maps to the middle of the utility range, relative to
            the calibrated scale (> 1 lowers probabilities, < 1 raises them).
        min_utility: GMM: lowest click probability.
        max_utility: GMM: highest click probability.
    """

    base_ctr: float = 0.05
    best_lift: float = 3.0
    bank_size: int = 30
    personalization: float = 0.85
    n_experts: int = 4
    projection_dim: int = 16
    gmm_components: int = 8
    density_scale_factor: float = 1.0
    min_utility: float = 0.005
    max_utility: float = 0.5

    def __post_init__(self) -> None:
        check_prob("GroundTruthConfig.base_ctr", self.base_ctr, open_low=True, open_high=True)
        check_real("GroundTruthConfig.best_lift", self.best_lift, low=1.0, low_open=True)
        check_int("GroundTruthConfig.bank_size", self.bank_size, low=2)
        check_prob("GroundTruthConfig.personalization", self.personalization)
        check_int("GroundTruthConfig.n_experts", self.n_experts, low=1, high=64)
        check_int("GroundTruthConfig.projection_dim", self.projection_dim, low=1, high=512)
        check_int("GroundTruthConfig.gmm_components", self.gmm_components, low=1, high=256)
        check_real("GroundTruthConfig.density_scale_factor", self.density_scale_factor, low=0.0, low_open=True)
        check_prob("GroundTruthConfig.min_utility", self.min_utility)
        check_prob("GroundTruthConfig.max_utility", self.max_utility)
        if not self.min_utility < self.base_ctr < self.max_utility:
            raise ConfigError(
                f"GroundTruthConfig.min_utility={self.min_utility} < base_ctr={self.base_ctr} < "
                f"max_utility={self.max_utility} must hold."
            )
        if self.base_ctr * self.best_lift >= 1.0:
            raise ConfigError(
                f"GroundTruthConfig.base_ctr * best_lift must be < 1, got {self.base_ctr} * {self.best_lift}."
            )


#: Reference users used to calibrate the link (the rest of the reference sample only sets constants).
_N_CALIBRATION_USERS = 512


def _check_inputs(users: Any, embeddings: Any, d_user: int, d_embed: int) -> tuple[Array, Array]:
    users = check_array("users", users, ndim=2, dtype=np.float64)
    embeddings = check_array("embeddings", embeddings, ndim=2, dtype=np.float64)
    if users.shape[1] != d_user:
        raise ConfigError(f"users must have {d_user} feature columns, got shape {users.shape}.")
    if embeddings.shape[0] and embeddings.shape[1] != d_embed:
        raise ConfigError(
            f"embeddings must have {d_embed} columns (the world's embedder), got shape {embeddings.shape}."
        )
    return users, embeddings


def _random_bank_columns(
    n_candidates: int, bank_size: int, n_banks: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    """Indices of ``n_banks`` random banks of ``bank_size`` distinct columns, shape (n_banks, bank_size)."""
    keys = rng.random((n_banks, n_candidates))
    return np.argsort(keys, axis=1)[:, :bank_size].astype(np.int64)


def _solve_offset(scores: Array, scale: float, target: float) -> float:
    """Offset b with mean(sigmoid(b + scale * scores)) == target (safeguarded Newton; monotone in b)."""
    lo, hi = -60.0, 60.0
    offset = float(np.log(target / (1.0 - target)))
    for _ in range(60):
        probs = logistic_inplace(offset + scale * scores)
        gap = float(probs.mean()) - target
        if abs(gap) < 1e-8 * target or hi - lo < 1e-9:
            break
        if gap < 0:
            lo = offset
        else:
            hi = offset
        slope = float(np.mean(probs * (1.0 - probs)))
        step = offset - gap / slope if slope > 0 else 0.5 * (lo + hi)
        offset = step if lo < step < hi else 0.5 * (lo + hi)
    return offset


def _best_of_bank(probs: Array, banks: NDArray[np.int64]) -> float:
    """Mean over users and banks of the per-user best probability within each bank."""
    return float(np.mean([probs[:, cols].max(axis=1).mean() for cols in banks]))


def calibrate_logistic_link(
    scores: Array,
    *,
    base_ctr: float,
    best_lift: float,
    bank_size: int,
    rng: np.random.Generator,
    n_banks: int = 16,
) -> tuple[float, float]:
    """Find (offset, scale) so that p = sigmoid(offset + scale * score) has the target CTR and lift.

    Args:
        scores: Standardised raw scores of reference users x reference actions, shape (n_ref, m_ref).
        base_ctr: Target mean of p over all pairs (random targeting of a random bank).
        best_lift: Target ratio E_user[max over a random bank of p] / base_ctr.
        bank_size: Size of the random banks used for the lift.
        rng: Draws the random banks.
        n_banks: How many random banks average the lift.

    Returns:
        ``(offset, scale)``.

    Raises:
        ConfigError: If the lift cannot be reached (for example, a bank larger than the reference).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> s = rng.standard_normal((200, 100))
        >>> b, a = calibrate_logistic_link(s, base_ctr=0.05, best_lift=3.0, bank_size=10, rng=rng)
        >>> round(float(logistic_inplace(b + a * s).mean()), 3)
        0.05
    """
    if bank_size > scores.shape[1]:
        raise ConfigError(f"bank_size={bank_size} must be <= the number of reference actions={scores.shape[1]}.")
    banks = _random_bank_columns(scores.shape[1], bank_size, n_banks, rng)

    def lift(scale: float) -> float:
        offset = _solve_offset(scores, scale, base_ctr)
        return _best_of_bank(logistic_inplace(offset + scale * scores), banks) / base_ctr

    lo, hi = 1e-3, 1.0
    while lift(hi) < best_lift:
        hi *= 2.0
        if hi > 64.0:
            raise ConfigError(
                f"best_lift={best_lift} cannot be reached with base_ctr={base_ctr} and bank_size={bank_size}; "
                f"the largest lift is about {lift(hi):.2f}."
            )
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if lift(mid) < best_lift:
            lo = mid
        else:
            hi = mid
    scale = 0.5 * (lo + hi)
    return _solve_offset(scores, scale, base_ctr), scale


def interaction_share(logits: Array) -> float:
    """Share of the variance of a (users x actions) matrix not explained by row and column effects.

    Example:
        >>> interaction_share(np.add.outer(np.arange(3.0), np.arange(4.0)))
        0.0
    """
    centred = logits - logits.mean()
    row = centred.mean(axis=1, keepdims=True)
    col = centred.mean(axis=0, keepdims=True)
    resid = centred - row - col
    total = float(np.var(centred))
    return float(np.var(resid) / total) if total > 0 else 0.0


class _EmbeddingProjection:
    """Centred, whitened top principal components of a reference set of embeddings."""

    def __init__(self, reference_embeddings: Array, n_components: int) -> None:
        ref = np.asarray(reference_embeddings, dtype=np.float64)
        pca = principal_axes(ref)
        self.mean, s, vt = pca.mean, pca.singular, pca.axes
        k = max(1, min(n_components, pca.rank(1e-8)))
        std = s[:k] / np.sqrt(max(ref.shape[0] - 1, 1))
        self.components = (vt[:k].T / std).astype(np.float64)  # (d_embed, k): whitening projection
        for arr in (self.mean, self.components):
            arr.setflags(write=False)

    @property
    def dim(self) -> int:
        return int(self.components.shape[1])

    def __call__(self, embeddings: Array) -> Array:
        out: Array = (embeddings - self.mean) @ self.components
        return out


class _CalibratedLogistic:
    """Shared tail: a bilinear score with an action effect -> calibrated logistic probability.

    Subclasses give three parts: the action effect a (m,), user vectors U (n, r) and action vectors V (m, r).
    The standardised score is sqrt(1-ρ) a/σ_a + sqrt(ρ) UVᵀ/σ_i; with the link's offset b and scale s folded
    in, the logits are one matrix product plus a row of biases, b + s·sqrt(1-ρ)/σ_a · a + U (c V)ᵀ with
    c = s·sqrt(ρ)/σ_i, so (n, m) arrays are touched only by the product, the bias and the sigmoid.
    """

    name = "base"
    _offset: float = 0.0
    _scale: float = 1.0
    d_user: int
    d_embed: int

    config: GroundTruthConfig
    _sd_action: float = 1.0
    _sd_inter: float = 1.0

    def _parts(self, users: Array, embeddings: Array) -> tuple[Array, Array, Array]:  # pragma: no cover - abstract
        """Raw (action effect (m,), user vectors (n, r), action vectors (m, r))."""
        raise NotImplementedError

    def _affine(self, users: Array, embeddings: Array, offset: float, scale: float) -> Array:
        """offset + scale * standardised score, shape (n, m): a fresh array the caller may overwrite."""
        action, user_vectors, action_vectors = self._parts(users, embeddings)
        rho = self.config.personalization
        weights = (scale * np.sqrt(rho) / self._sd_inter) * action_vectors
        bias = offset + (scale * np.sqrt(1.0 - rho) / self._sd_action) * action
        out: Array = user_vectors @ weights.T
        out += bias
        return out

    def _score(self, users: Array, embeddings: Array) -> Array:
        return self._affine(users, embeddings, 0.0, 1.0)

    def _fit_scales_and_link(
        self, config: GroundTruthConfig, ref_users: Array, ref_embeddings: Array, rng: np.random.Generator
    ) -> None:
        """Fix the two parts' scales on the reference sample, then calibrate the link (construction only)."""
        action, user_vectors, action_vectors = self._parts(ref_users, ref_embeddings)
        self._sd_action = float(action.std()) or 1.0  # the std of the (n, m) broadcast equals the row's
        self._sd_inter = float((user_vectors @ action_vectors.T).std()) or 1.0
        self._calibrate(config, ref_users, ref_embeddings, rng)

    def logits(self, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]) -> Array:
        """Logits of the click probabilities, shape (n, m)."""
        users_, emb_ = _check_inputs(users, embeddings, self.d_user, self.d_embed)
        return self._affine(users_, emb_, self._offset, self._scale)

    def click_prob(self, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]) -> Array:
        """Click probabilities, users (n, d_user) x embeddings (m, d_embed) -> (n, m) in [0, 1]."""
        return logistic_inplace(self.logits(users, embeddings))

    def _calibrate(
        self, config: GroundTruthConfig, ref_users: Array, ref_embeddings: Array, rng: np.random.Generator
    ) -> None:
        scores = self._score(ref_users[:_N_CALIBRATION_USERS], ref_embeddings)
        self._offset, self._scale = calibrate_logistic_link(
            scores, base_ctr=config.base_ctr, best_lift=config.best_lift, bank_size=config.bank_size, rng=rng
        )


class MixtureOfExperts(_CalibratedLogistic):
    """Softmax-gated bilinear experts over user features and projected action embeddings.

    logit(x, e) = b + s * [sqrt(1-ρ) w·Pe / σ_a + sqrt(ρ) (Σ_k g_k(x) x̃ᵀ W_k) Pe / σ_i], with
    x̃ = x - mean(x_ref), P the whitened principal components of the reference embeddings, g a softmax
    gate over x̃, ρ = ``personalization``, and σ_a, σ_i, b, s constants fixed at construction.

    Args:
        config: Shared settings (base CTR, lift, personalization, experts, projection).
        rng: Draws the weights and the calibration banks.
        reference_users: A sample of the population, shape (n_ref, d_user).
        reference_embeddings: Embeddings of a reference sample of texts, shape (m_ref, d_embed).
    """

    name = "mixture_of_experts"

    def __init__(
        self,
        config: GroundTruthConfig,
        *,
        rng: np.random.Generator,
        reference_users: NDArray[np.float64],
        reference_embeddings: NDArray[np.floating[Any]],
    ) -> None:
        ref_users = check_array("reference_users", reference_users, ndim=2)
        ref_emb = check_array("reference_embeddings", reference_embeddings, ndim=2)
        self.config = config
        self.d_user, self.d_embed = ref_users.shape[1], ref_emb.shape[1]
        self._projection = _EmbeddingProjection(ref_emb, config.projection_dim)
        r, d, k = self._projection.dim, self.d_user, config.n_experts
        self._user_mean = ref_users.mean(axis=0)
        self._gate = rng.standard_normal((d, k)) * 4.0
        self._gate_bias = rng.standard_normal(k) * 0.5
        self._experts = rng.standard_normal((k, d, r)) / np.sqrt(r)
        self._action_weights = rng.standard_normal(r) / np.sqrt(r)
        self._experts_stacked = self._experts.reshape(k * d, r)  # row k*d + j: expert k, feature j
        for arr in (
            self._user_mean,
            self._gate,
            self._gate_bias,
            self._experts,
            self._experts_stacked,
            self._action_weights,
        ):
            arr.setflags(write=False)
        self._fit_scales_and_link(config, ref_users, ref_emb, rng)

    def gate(self, users: NDArray[np.float64]) -> Array:
        """Expert weights of each user, shape (n, n_experts), rows summing to one."""
        # Experts on rows: the softmax's reductions are then elementwise ops over k rows, not over tiny rows.
        logits = self._gate.T @ (users - self._user_mean).T
        logits += self._gate_bias[:, None]
        logits -= logits.max(axis=0)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=0)
        out: Array = logits.T
        return out

    def _parts(self, users: Array, embeddings: Array) -> tuple[Array, Array, Array]:
        projected = self._projection(embeddings)  # (m, r)
        centred = users - self._user_mean  # (n, d)
        k, d, r = self._experts.shape
        # Σ_k g_k x̃ᵀ W_k Pe = (g ⊗ x̃) · (W_stack Pe): user vectors of k·d gate-weighted features, and one
        # (n, k·d) @ (k·d, m) product gives every pair (no (n, k, r) intermediate).
        gated = np.empty((users.shape[0], k, d))  # C order, so the reshape below is a view (gate() is transposed)
        np.multiply(self.gate(users)[:, :, None], centred[:, None, :], out=gated)
        gated = gated.reshape(-1, k * d)
        return projected @ self._action_weights, gated, projected @ self._experts_stacked.T

    def __repr__(self) -> str:
        c = self.config
        return f"MixtureOfExperts(n_experts={c.n_experts}, personalization={c.personalization}, base_ctr={c.base_ctr})"


class GaussianMixture:
    """Preference as a Gaussian-mixture density over the joint (user, projected action) space.

    density(x, e) = Σ_c π_c N(x; μ_c^u, Σ_c^u) N(Pe; μ_c^a, Σ_c^a) (diagonal covariances, so it factorises
    into one (n, C) @ (C, m) product), and p = min_u + (max_u - min_u) * (1 - exp(-density / (f * D))),
    where f = ``density_scale_factor`` and D is calibrated so that f = 1 gives the configured base CTR.

    Args:
        config: Shared settings (gmm_components, density_scale_factor, min/max utility, base_ctr).
        rng: Draws the components.
        reference_users: A sample of the population, shape (n_ref, d_user).
        reference_embeddings: Embeddings of a reference sample of texts, shape (m_ref, d_embed).
    """

    name = "gmm"

    def __init__(
        self,
        config: GroundTruthConfig,
        *,
        rng: np.random.Generator,
        reference_users: NDArray[np.float64],
        reference_embeddings: NDArray[np.floating[Any]],
    ) -> None:
        ref_users = check_array("reference_users", reference_users, ndim=2)
        ref_emb = check_array("reference_embeddings", reference_embeddings, ndim=2)
        self.config = config
        self.d_user, self.d_embed = ref_users.shape[1], ref_emb.shape[1]
        self._projection = _EmbeddingProjection(ref_emb, min(config.projection_dim, 4))
        projected = self._projection(ref_emb)
        c = config.gmm_components
        self._log_weights = np.log(rng.dirichlet(np.full(c, 2.0)))
        self._user_means = ref_users[rng.integers(0, ref_users.shape[0], c)]
        self._user_sd = np.full((c, self.d_user), 0.2) * rng.uniform(0.8, 1.5, (c, 1))
        self._action_means = projected[rng.integers(0, projected.shape[0], c)]
        self._action_sd = np.full((c, self._projection.dim), 0.8) * rng.uniform(0.8, 1.5, (c, 1))
        self._scale = 1.0
        density = self.density(ref_users[:_N_CALIBRATION_USERS], ref_emb)
        self._scale = self._calibrate_scale(density, config)
        for arr in (self._log_weights, self._user_means, self._user_sd, self._action_means, self._action_sd):
            arr.setflags(write=False)

    @staticmethod
    def _log_normal(z: Array, means: Array, sds: Array) -> Array:
        """log N(z; mean_c, diag sd_c^2) for every row and component, shape (n, C)."""
        diff = (z[:, None, :] - means[None]) / sds[None]
        out: Array = (
            -0.5 * np.sum(diff * diff, axis=2)
            - np.sum(np.log(sds), axis=1)[None]
            - 0.5 * z.shape[1] * np.log(2 * np.pi)
        )
        return out

    def density(self, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]) -> Array:
        """Mixture density of each (user, action) pair, shape (n, m)."""
        users_, emb_ = _check_inputs(users, embeddings, self.d_user, self.d_embed)
        a = self._log_normal(users_, self._user_means, self._user_sd) + self._log_weights  # (n, C)
        b = self._log_normal(self._projection(emb_), self._action_means, self._action_sd)  # (m, C)
        a_max = a.max(axis=1, keepdims=True) if a.size else np.zeros((a.shape[0], 1))
        b_max = b.max(axis=1, keepdims=True) if b.size else np.zeros((b.shape[0], 1))
        out: Array = np.exp(a_max + b_max.T) * (np.exp(a - a_max) @ np.exp(b - b_max).T)
        return out

    def _to_prob(self, density: Array, scale: float) -> Array:
        c = self.config
        return c.min_utility + (c.max_utility - c.min_utility) * (-np.expm1(-density / scale))

    def _calibrate_scale(self, density: Array, config: GroundTruthConfig) -> float:
        lo, hi = np.log(density.max() + 1e-300) - 60.0, np.log(density.max() + 1e-300) + 60.0
        for _ in range(100):  # mean prob decreases with the scale: bisect on its log
            mid = 0.5 * (lo + hi)
            if self._to_prob(density, np.exp(mid)).mean() > config.base_ctr:
                lo = mid
            else:
                hi = mid
        return float(np.exp(0.5 * (lo + hi)))

    def click_prob(self, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]) -> Array:
        """Click probabilities in [min_utility, max_utility], shape (n, m)."""
        return self._to_prob(self.density(users, embeddings), self._scale * self.config.density_scale_factor)

    def __repr__(self) -> str:
        c = self.config
        return f"GaussianMixture(components={c.gmm_components}, utility=[{c.min_utility}, {c.max_utility}])"


#: Concept phrases of the semantic ground truth and the user traits that respond to each.
SEMANTIC_CONCEPTS: tuple[tuple[tuple[str, ...], Mapping[str, float]], ...] = (
    (
        ("big discount", "huge sale, save 50% today", "cheap deals and bargains"),
        {"price_sensitivity": 1.0, "income_level": -0.5},
    ),
    (
        ("exclusive premium access", "luxury collection for VIP members", "elegant premium quality"),
        {"income_level": 0.8, "quality_focus": 0.6, "price_sensitivity": -0.6},
    ),
    (
        ("new technology launch", "the latest smart gadget is here", "innovative tech release"),
        {"tech_savviness": 1.0, "age_norm": -0.4},
    ),
    (("last chance", "hurry, offer ends tonight", "limited time only"), {"urgency_response": 1.0}),
    (
        ("loyalty reward for our members", "thank you for being a loyal customer", "earn bonus points"),
        {"brand_loyalty": 1.0},
    ),
    (
        ("trending now", "bestsellers everyone is talking about", "join thousands of happy customers"),
        {"social_influence": 1.0, "age_norm": -0.3},
    ),
    (
        ("handcrafted quality built to last", "timeless craftsmanship", "durable materials"),
        {"quality_focus": 1.0, "age_norm": 0.3},
    ),
    (
        ("free shipping on every order", "a free gift with your purchase"),
        {"price_sensitivity": 0.6, "brand_loyalty": 0.2},
    ),
)


class SemanticGroundTruth(_CalibratedLogistic):
    """Experts are concept directions in embedding space, gated by the user traits that respond to them.

    For concept k with unit direction c_k (the mean embedding of its phrases) the action's match is the
    standardised cosine s_k(e); the user's affinity is a_k(x) = x̃ · w_k from the concept's trait weights
    (plus a little world-specific noise). logit = b + s [sqrt(1-ρ) g·s(e)/σ_a + sqrt(ρ) a(x)·s(e)/σ_i], so a
    better-written text really is better for the right users. Most meaningful with a semantic embedder.

    Args:
        config: Shared settings.
        rng: Draws the world-specific perturbations and the calibration banks.
        reference_users: A sample of the population, shape (n_ref, d_user).
        reference_embeddings: Embeddings of a reference sample of texts, shape (m_ref, d_embed).
        embed: Embeds the concept phrases with the world's embedder: list of texts -> (n, d_embed).
        feature_names: Column names of the user features.
    """

    name = "semantic"

    def __init__(
        self,
        config: GroundTruthConfig,
        *,
        rng: np.random.Generator,
        reference_users: NDArray[np.float64],
        reference_embeddings: NDArray[np.floating[Any]],
        embed: Callable[[list[str]], NDArray[np.floating[Any]]],
        feature_names: Sequence[str],
        concepts: Sequence[tuple[Sequence[str], Mapping[str, float]]] = SEMANTIC_CONCEPTS,
    ) -> None:
        ref_users = check_array("reference_users", reference_users, ndim=2)
        ref_emb = check_array("reference_embeddings", reference_embeddings, ndim=2)
        self.config = config
        self.d_user, self.d_embed = ref_users.shape[1], ref_emb.shape[1]
        names = list(feature_names)
        directions, traits = [], []
        for phrases, weights in concepts:
            vecs = np.asarray(embed(list(phrases)), dtype=np.float64)
            mean = vecs.mean(axis=0)
            directions.append(mean / (np.linalg.norm(mean) or 1.0))
            row = np.zeros(len(names))
            for trait, w in weights.items():
                if trait not in names:
                    raise ConfigError(f"semantic concept trait must be one of {names}, got {trait!r}.")
                row[names.index(trait)] = w
            traits.append(row)
        self._directions = np.array(directions)  # (k, d_embed)
        k = len(directions)
        self._trait_weights = np.array(traits).T + 0.15 * rng.standard_normal((len(names), k))  # (d_user, k)
        self._user_mean = ref_users.mean(axis=0)
        sims = ref_emb @ self._directions.T
        self._sim_mean, self._sim_sd = sims.mean(axis=0), sims.std(axis=0) + 1e-9
        self._appeal = rng.standard_normal(k)
        for arr in (self._directions, self._trait_weights, self._user_mean, self._sim_mean, self._sim_sd, self._appeal):
            arr.setflags(write=False)
        self._fit_scales_and_link(config, ref_users, ref_emb, rng)

    def concept_match(self, embeddings: NDArray[np.floating[Any]]) -> Array:
        """Standardised similarity of each action to each concept, shape (m, n_concepts)."""
        emb = np.asarray(embeddings, dtype=np.float64)
        out: Array = (emb @ self._directions.T - self._sim_mean) / self._sim_sd
        return out

    def _parts(self, users: Array, embeddings: Array) -> tuple[Array, Array, Array]:
        match = self.concept_match(embeddings)  # (m, k)
        affinity = (users - self._user_mean) @ self._trait_weights  # (n, k)
        return match @ self._appeal, affinity, match

    def __repr__(self) -> str:
        return f"SemanticGroundTruth(concepts={self._directions.shape[0]}, base_ctr={self.config.base_ctr})"


def _identity(scores: Array) -> Array:
    return scores


def monotone_scores(
    ground_truth: GroundTruth, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]
) -> tuple[Array, Callable[[Array], Array]]:
    """Scores in the order of the click probabilities, and the link that turns scores into probabilities.

    For the logistic ground truths the scores are the logits and the link is the sigmoid, so a caller that
    needs only the served probabilities and each user's best one applies the link to those (``link`` of a
    row maximum is the maximum probability, the link being increasing) and skips the (n, m) sigmoid. Any
    other ground truth gives ``click_prob`` and the identity. ``link`` may overwrite its argument;
    ``link(scores)`` equals ``click_prob(users, embeddings)`` bit for bit.

    Example:
        >>> from actionbank_env.core.world import World, WorldConfig
        >>> world = World.build(WorldConfig(embedder="hashing", initial_actions=4, n_reference_texts=64,
        ...                                 n_reference_users=256))
        >>> users = world.sample_users(3, rng=np.random.default_rng(0)).features
        >>> scores, link = monotone_scores(world.ground_truth, users, world.initial_bank.embeddings)
        >>> bool(np.array_equal(link(scores), world.ground_truth.click_prob(users, world.initial_bank.embeddings)))
        True
    """
    if isinstance(ground_truth, _CalibratedLogistic):
        return ground_truth.logits(users, embeddings), logistic_inplace
    return np.asarray(ground_truth.click_prob(users, embeddings), dtype=np.float64), _identity


#: Registry names of the ground-truth families.
GROUND_TRUTHS: dict[str, str] = {
    "mixture_of_experts": "softmax-gated bilinear experts over user features and embeddings (default)",
    "gmm": "Gaussian-mixture preference density over the joint (user, action) space",
    "semantic": "concept directions in embedding space gated by matching user traits",
}


def build_ground_truth(
    name: str,
    config: GroundTruthConfig,
    *,
    rng: np.random.Generator,
    reference_users: NDArray[np.float64],
    reference_embeddings: NDArray[np.floating[Any]],
    embed: Callable[[list[str]], NDArray[np.floating[Any]]],
    feature_names: Sequence[str],
) -> GroundTruth:
    """Build the ground truth called ``name`` (one of :data:`GROUND_TRUTHS`)."""
    kwargs: dict[str, Any] = {
        "rng": rng,
        "reference_users": reference_users,
        "reference_embeddings": reference_embeddings,
    }
    if name == "mixture_of_experts":
        return MixtureOfExperts(config, **kwargs)
    if name == "gmm":
        return GaussianMixture(config, **kwargs)
    if name == "semantic":
        return SemanticGroundTruth(config, embed=embed, feature_names=feature_names, **kwargs)
    from actionbank_env._validation import check_component

    check_component("ground_truth", name, GROUND_TRUTHS)
    raise AssertionError("unreachable")  # pragma: no cover
