"""Ground-truth click models P(click | user, action): pure, stationary, vectorised, fixed by the world seed.

Three families share one recipe: a raw score over (user, action embedding) pairs, standardised with
constants measured once on the ground truth's own reference sample at construction (never on the batch
being scored), then a link to a probability calibrated so that a random bank under random targeting has the
configured base CTR and the per-user best action of a random bank is ``best_lift`` times better.

The reference sample of texts is split in two: one half fits what the family learns from texts (the
principal components, the concept-similarity statistics), the other half sets the scales and calibrates the
link. So the calibration is measured out of sample and holds for fresh texts, which is what the world card
(:func:`actionbank_env.evaluation.world_card`) checks.

- :class:`MixtureOfExperts`: softmax gate over user features, bilinear experts ``x W_k P e``.
- :class:`GaussianMixture`: a Gaussian-mixture preference density over the joint (user, action) space,
  mapped to ``[min_utility, max_utility]``.
- :class:`SemanticGroundTruth`: experts are concepts in embedding space ("big discount", "exclusive premium
  access", ..., each the centroid of a few exemplar phrases), gated by the user traits that respond to them.
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
    "extra_calibration_texts",
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
        base_ctr: Mean click probability of a random bank under random targeting. Marketing email click
            rates (clicks per delivered email) are a few percent: 2-5 % across industries in the Mailchimp
            and Campaign Monitor benchmarks.
        best_lift: Ratio of the per-user best action's probability in a random bank of ``bank_size``
            actions to ``base_ctr``; must be > 1.
        bank_size: Bank size the lift is calibrated for (the world's ``initial_actions``).
        personalization: Share in [0, 1] of the logit variance that is user x action interaction rather
            than a plain action effect (0: one action is best for everyone; 1: pure targeting). Mixture of
            experts and semantic.
        spectrum_power: Mixture of experts: how the preferences load on the principal components of the
            texts' embeddings. 0 whitens them (a weak direction of text variation moves clicks as much as
            the main one); 1 makes each direction's share of the preference variance proportional to the
            texts' own variance along it (a random linear reader of the embedding); in between, the
            variance shares go as ``variance ** spectrum_power``.
        n_experts: Experts of the mixture of experts.
        projection_dim: Principal components of the embedding space the experts see.
        gmm_components: Components of the Gaussian mixture.
        density_scale_factor: GMM: density that maps to the middle of the utility range, relative to
            the calibrated scale (> 1 lowers probabilities, < 1 raises them).
        min_utility: GMM: lowest click probability.
        max_utility: Highest click probability of any (user, text) pair, every family: the ceiling of the
            logistic link (mixture of experts, semantic) and the top of the GMM's utility range. Even the
            best-targeted marketing email is clicked by a minority of its recipients.
    """

    base_ctr: float = 0.05
    best_lift: float = 2.0
    bank_size: int = 30
    personalization: float = 0.85
    spectrum_power: float = 1.0
    n_experts: int = 4
    projection_dim: int = 16
    gmm_components: int = 8
    density_scale_factor: float = 1.0
    min_utility: float = 0.005
    max_utility: float = 0.35

    def __post_init__(self) -> None:
        check_prob("GroundTruthConfig.base_ctr", self.base_ctr, open_low=True, open_high=True)
        check_real("GroundTruthConfig.best_lift", self.best_lift, low=1.0, low_open=True)
        check_int("GroundTruthConfig.bank_size", self.bank_size, low=2)
        check_prob("GroundTruthConfig.personalization", self.personalization)
        check_real("GroundTruthConfig.spectrum_power", self.spectrum_power, low=0.0, high=1.0)
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
        if self.base_ctr * self.best_lift >= self.max_utility:
            raise ConfigError(
                f"GroundTruthConfig.base_ctr * best_lift must be < max_utility={self.max_utility} (no user's best "
                f"action can beat the ceiling), got {self.base_ctr} * {self.best_lift}."
            )


#: Reference users used to calibrate the link (the rest of the reference sample only sets constants).
_N_CALIBRATION_USERS = 1024
#: Random banks averaged by the lift calibration.
_N_CALIBRATION_BANKS = 48


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


def _split_reference(embeddings: Array) -> tuple[Array, Array]:
    """(fit half, calibration half) of a reference sample: even rows fit, odd rows calibrate."""
    if embeddings.shape[0] < 4:
        raise ConfigError(f"reference_embeddings must have at least 4 rows, got {embeddings.shape[0]}.")
    return embeddings[0::2], embeddings[1::2]


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
    """Mean over users and banks of the per-user best probability within each bank.

    The value of ``float(np.mean(probs[:, banks].max(axis=2)))``, bit for bit (worlds are calibrated with it), about
    4x faster: each bank's bests come from contiguous rows of ``probs.T`` instead of a gathered
    (users, banks, bank_size) block, and are laid out users-fastest, as numpy lays out that reduction's result, so
    the mean adds them in the same order. A world build calls it ~31 times (0.20 -> 0.05 CPU-s at 1,024 x 256).
    """
    by_action = np.ascontiguousarray(probs.T)
    best = np.stack([by_action[bank].max(axis=0) for bank in banks])  # (n_banks, n_users)
    return float(np.mean(best.T))


def calibrate_logistic_link(
    scores: Array,
    *,
    base_ctr: float,
    best_lift: float,
    bank_size: int,
    rng: np.random.Generator,
    n_banks: int = 16,
    ceiling: float = 1.0,
) -> tuple[float, float]:
    """Find (offset, scale) so that p = ceiling * sigmoid(offset + scale * score) has the target CTR and lift.

    Args:
        scores: Standardised raw scores of reference users x reference actions, shape (n_ref, m_ref).
        base_ctr: Target mean of p over all pairs (random targeting of a random bank).
        best_lift: Target ratio E_user[max over a random bank of p] / base_ctr.
        bank_size: Size of the random banks used for the lift.
        rng: Draws the random banks.
        n_banks: How many random banks average the lift.
        ceiling: Largest probability the link can give (``max_utility``); ``base_ctr * best_lift`` must be
            below it.

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
    if not 0.0 < base_ctr * best_lift < ceiling <= 1.0:
        raise ConfigError(
            f"calibrate_logistic_link needs 0 < base_ctr * best_lift < ceiling <= 1, got {base_ctr} * {best_lift} "
            f"and ceiling={ceiling}."
        )
    banks = _random_bank_columns(scores.shape[1], bank_size, n_banks, rng)
    target = base_ctr / ceiling  # the ceiling scales the mean and the best alike, so the lift is unchanged

    def lift(scale: float) -> float:
        offset = _solve_offset(scores, scale, target)
        return _best_of_bank(logistic_inplace(offset + scale * scores), banks) / target

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
    return _solve_offset(scores, scale, target), scale


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
    """Centred top principal components of a reference set of embeddings, weighted by ``spectrum_power``.

    Coordinate l is ``(e - mean) · v_l * (σ_l / σ_1) ** power / σ_l``: its variance over the reference texts
    is ``(σ_l / σ_1) ** (2 power)``, so power 0 whitens and power 1 keeps the texts' own spectrum (scaled so
    the top component has unit variance).
    """

    def __init__(self, reference_embeddings: Array, n_components: int, power: float = 0.0) -> None:
        ref = np.asarray(reference_embeddings, dtype=np.float64)
        pca = principal_axes(ref)
        self.mean, s, vt = pca.mean, pca.singular, pca.axes
        k = max(1, min(n_components, pca.rank(1e-8)))
        std = s[:k] / np.sqrt(max(ref.shape[0] - 1, 1))
        weight = (std / std[0]) ** power / std
        self.components = (vt[:k].T * weight).astype(np.float64)  # (d_embed, k)
        self.variance_share = (std**2 / float(np.sum(s**2) / max(ref.shape[0] - 1, 1))).astype(np.float64)
        for arr in (self.mean, self.components, self.variance_share):
            arr.setflags(write=False)

    @property
    def dim(self) -> int:
        return int(self.components.shape[1])

    def __call__(self, embeddings: Array) -> Array:
        out: Array = (embeddings - self.mean) @ self.components
        return out


class _CalibratedLogistic:
    """Shared tail: a bilinear score with an action effect -> calibrated, capped logistic probability.

    Subclasses give three parts: the action effect a (m,), user vectors U (n, r) and action vectors V (m, r),
    built so that U has mean zero over the population and V mean zero over texts (the interaction term then
    carries no action or user main effect). The standardised score is sqrt(1-ρ) a/σ_a + sqrt(ρ) UVᵀ/σ_i;
    with the link's offset b and scale s folded in, the logits are one matrix product plus a row of biases,
    b + s·sqrt(1-ρ)/σ_a · a + U (c V)ᵀ with c = s·sqrt(ρ)/σ_i, so (n, m) arrays are touched only by the
    product, the bias and the sigmoid. p = max_utility · sigmoid(logit).
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
        self, config: GroundTruthConfig, ref_users: Array, calibration_embeddings: Array, rng: np.random.Generator
    ) -> None:
        """Fix the two parts' scales on held-out reference texts, then calibrate the link (construction only)."""
        action, user_vectors, action_vectors = self._parts(ref_users, calibration_embeddings)
        self._sd_action, self._sd_inter = self._part_scales(config, action, user_vectors @ action_vectors.T)
        scores = self._score(ref_users[:_N_CALIBRATION_USERS], calibration_embeddings)
        self._offset, self._scale = calibrate_logistic_link(
            scores,
            base_ctr=config.base_ctr,
            best_lift=config.best_lift,
            bank_size=config.bank_size,
            rng=rng,
            n_banks=_N_CALIBRATION_BANKS,
            ceiling=config.max_utility,
        )

    def _part_scales(self, config: GroundTruthConfig, action: Array, product: Array) -> tuple[float, float]:
        """(σ_a, σ_i): the standard deviations the two parts are divided by (the product carries no main effect)."""
        return float(action.std()) or 1.0, float(product.std()) or 1.0  # the std of the (n, m) broadcast is the row's

    def logits(self, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]) -> Array:
        """Logits of the link, shape (n, m): ``click_prob = max_utility * sigmoid(logits)``."""
        users_, emb_ = _check_inputs(users, embeddings, self.d_user, self.d_embed)
        return self._affine(users_, emb_, self._offset, self._scale)

    def link(self, logits: Array) -> Array:
        """``max_utility * sigmoid(logits)``, computed in place (the argument is overwritten)."""
        out = logistic_inplace(logits)
        out *= self.config.max_utility
        return out

    def click_prob(self, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]) -> Array:
        """Click probabilities, users (n, d_user) x embeddings (m, d_embed) -> (n, m) in [0, max_utility]."""
        return self.link(self.logits(users, embeddings))


class MixtureOfExperts(_CalibratedLogistic):
    """Softmax-gated bilinear experts over user features and projected action embeddings.

    logit(x, e) = b + s * [sqrt(1-ρ) w·Pe / σ_a + sqrt(ρ) (φ(x) - φ̄) W Pe / σ_i], with x̃ = x - mean(x_ref),
    φ(x) = g(x) ⊗ x̃ the gate-weighted user features (g a softmax gate over x̃), φ̄ their population mean,
    P the top principal components of the reference embeddings weighted by ``spectrum_power``,
    ρ = ``personalization``, and σ_a, σ_i, b, s constants fixed at construction; p = max_utility ·
    sigmoid(logit).

    Centring φ matters: the gate correlates with the features, so E[g_k(x) x̃] ≠ 0, and without the
    centring the "interaction" term would carry an action main effect φ̄ W Pe, lowering the measured
    interaction share below ``personalization``.

    Args:
        config: Shared settings (base CTR, lift, personalization, spectrum, experts, projection).
        rng: Draws the weights and the calibration banks.
        reference_users: A sample of the population, shape (n_ref, d_user).
        reference_embeddings: Embeddings of the ground truth's own reference sample of texts, shape
            (m_ref, d_embed): even rows fit the projection, odd rows calibrate.
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
        fit_emb, calibration_emb = _split_reference(ref_emb)
        self.config = config
        self.d_user, self.d_embed = ref_users.shape[1], ref_emb.shape[1]
        self._projection = _EmbeddingProjection(fit_emb, config.projection_dim, config.spectrum_power)
        r, d, k = self._projection.dim, self.d_user, config.n_experts
        self._user_mean = ref_users.mean(axis=0)
        self._gate = rng.standard_normal((d, k)) * 4.0
        self._gate_bias = rng.standard_normal(k) * 0.5
        self._experts = rng.standard_normal((k, d, r)) / np.sqrt(r)
        self._action_weights = rng.standard_normal(r) / np.sqrt(r)
        self._experts_stacked = self._experts.reshape(k * d, r)  # row k*d + j: expert k, feature j
        self._gated_mean = np.zeros(k * d)
        self._gated_mean = self._gated(ref_users).mean(axis=0)
        for arr in (
            self._user_mean,
            self._gate,
            self._gate_bias,
            self._experts,
            self._experts_stacked,
            self._action_weights,
            self._gated_mean,
        ):
            arr.setflags(write=False)
        self._fit_scales_and_link(config, ref_users, calibration_emb, rng)

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

    def _gated(self, users: Array) -> Array:
        """Centred gate-weighted features φ(x) - φ̄, shape (n, k·d) (column k·d + j: expert k, feature j)."""
        k, d, _ = self._experts.shape
        gated = np.empty((users.shape[0], k, d))  # C order, so the reshape below is a view (gate() is transposed)
        np.multiply(self.gate(users)[:, :, None], (users - self._user_mean)[:, None, :], out=gated)
        out: Array = gated.reshape(-1, k * d)
        out -= self._gated_mean
        return out

    def _parts(self, users: Array, embeddings: Array) -> tuple[Array, Array, Array]:
        projected = self._projection(embeddings)  # (m, r)
        # Σ_k g_k x̃ᵀ W_k Pe = (g ⊗ x̃) · (W_stack Pe): user vectors of k·d gate-weighted features, and one
        # (n, k·d) @ (k·d, m) product gives every pair (no (n, k, r) intermediate).
        return projected @ self._action_weights, self._gated(users), projected @ self._experts_stacked.T

    def design(self, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]) -> tuple[Array, Array]:
        """The family's functional form without its weights: (user basis φ(x) - φ̄ (n, k·d), action basis Pe (m, r)).

        logit = b + α·Pe + (φ(x) - φ̄)ᵀ B Pe for some α (r,) and B (k·d, r): a model that fits α and B on
        logged clicks is well specified (the evaluator's learnability check uses it).
        """
        users_, emb_ = _check_inputs(users, embeddings, self.d_user, self.d_embed)
        return self._gated(users_), self._projection(emb_)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"MixtureOfExperts(n_experts={c.n_experts}, personalization={c.personalization}, "
            f"spectrum_power={c.spectrum_power}, base_ctr={c.base_ctr})"
        )


class GaussianMixture:
    """Preference as a Gaussian mixture over the joint (user, projected action) space, conditioned on the user.

    The joint density Σ_c π_c N(x; μ_c^u, Σ_c^u) N(Pe; μ_c^a, Σ_c^a) (diagonal covariances) conditioned on
    the user gives the preference density(x, e) = Σ_c r_c(x) N(Pe; μ_c^a, Σ_c^a), with r_c(x) the posterior
    responsibility of component c for user x: one (n, C) @ (C, m) product. Then p = min_u + (max_u - min_u)
    * (1 - exp(-(density / (f D)) ** γ)), where f = ``density_scale_factor``, and D and the contrast γ are
    calibrated so that f = 1 gives the configured base CTR and per-user best lift (as the logistic families
    are).

    Conditioning matters: the joint density also rises with how typical the user is, which made users near a
    heavy component click several times more on everything (CTR per archetype from 0.03 to 0.10), piled
    probabilities up at ``max_utility``, and left a per-user best lift out of reach for small banks.

    Args:
        config: Shared settings (gmm_components, density_scale_factor, min/max utility, base_ctr, best_lift).
        rng: Draws the components and the calibration banks.
        reference_users: A sample of the population, shape (n_ref, d_user).
        reference_embeddings: Embeddings of the ground truth's own reference sample of texts, shape
            (m_ref, d_embed): even rows fit the projection, odd rows calibrate.
        calibration_embeddings: More held-out texts of the ground truth's own to calibrate on, shape
            (m_cal, d_embed), added to the odd rows; :meth:`extra_calibration_texts` says how many a world
            draws (see :attr:`CALIBRATION_TEXTS`).
    """

    name = "gmm"
    #: Held-out texts the link is calibrated on. The per-user best lift of a mixture of narrow components rests
    #: on the few texts near a component's centre, so its out-of-sample error shrinks only with many texts:
    #: over world seeds 100-129 (hashing) the lift on fresh texts had sd 0.055 calibrated on 256 texts and
    #: 0.023 on 1,024 (benchmarks/world_cards.py measures the pass rate).
    CALIBRATION_TEXTS = 2048

    @classmethod
    def extra_calibration_texts(cls, n_reference_texts: int) -> int:
        """Texts a world draws beyond its ``n_reference_texts`` to reach :attr:`CALIBRATION_TEXTS` held-out ones."""
        return max(0, cls.CALIBRATION_TEXTS - n_reference_texts // 2)

    def __init__(
        self,
        config: GroundTruthConfig,
        *,
        rng: np.random.Generator,
        reference_users: NDArray[np.float64],
        reference_embeddings: NDArray[np.floating[Any]],
        calibration_embeddings: NDArray[np.floating[Any]] | None = None,
    ) -> None:
        ref_users = check_array("reference_users", reference_users, ndim=2)
        ref_emb = check_array("reference_embeddings", reference_embeddings, ndim=2)
        fit_emb, calibration_emb = _split_reference(ref_emb)
        if calibration_embeddings is not None and len(calibration_embeddings):
            extra = check_array("calibration_embeddings", calibration_embeddings, ndim=2)
            if extra.shape[1] != ref_emb.shape[1]:
                raise ConfigError(
                    f"calibration_embeddings must have {ref_emb.shape[1]} columns (the reference embeddings'), got "
                    f"shape {extra.shape}."
                )
            calibration_emb = np.vstack([calibration_emb, extra])
        self.config = config
        self.d_user, self.d_embed = ref_users.shape[1], ref_emb.shape[1]
        self._projection = _EmbeddingProjection(fit_emb, min(config.projection_dim, 4))
        projected = self._projection(fit_emb)
        c = config.gmm_components
        self._log_weights = np.log(rng.dirichlet(np.full(c, 2.0)))
        self._user_means = ref_users[rng.integers(0, ref_users.shape[0], c)]
        self._user_sd = np.full((c, self.d_user), 0.2) * rng.uniform(0.8, 1.5, (c, 1))
        self._action_means = projected[rng.integers(0, projected.shape[0], c)]
        self._action_sd = np.full((c, self._projection.dim), 0.8) * rng.uniform(0.8, 1.5, (c, 1))
        for arr in (self._log_weights, self._user_means, self._user_sd, self._action_means, self._action_sd):
            arr.setflags(write=False)
        self._log_scale, self._contrast = 0.0, 1.0
        log_density = self.log_density(ref_users[:_N_CALIBRATION_USERS], calibration_emb)
        self._log_scale, self._contrast = self._calibrate(log_density, config, rng)

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

    def log_density(self, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]) -> Array:
        """Log of the preference density of each (user, action) pair (conditioned on the user), shape (n, m)."""
        users_, emb_ = _check_inputs(users, embeddings, self.d_user, self.d_embed)
        a = self._log_normal(users_, self._user_means, self._user_sd) + self._log_weights  # (n, C)
        a -= np.logaddexp.reduce(a, axis=1, keepdims=True)  # responsibilities: condition on the user
        b = self._log_normal(self._projection(emb_), self._action_means, self._action_sd)  # (m, C)
        a_max = a.max(axis=1, keepdims=True) if a.size else np.zeros((a.shape[0], 1))
        b_max = b.max(axis=1, keepdims=True) if b.size else np.zeros((b.shape[0], 1))
        with np.errstate(divide="ignore"):
            out: Array = np.log(np.exp(a - a_max) @ np.exp(b - b_max).T)
        out += a_max
        out += b_max.T
        return out

    def density(self, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]) -> Array:
        """Preference density of each (user, action) pair (conditioned on the user), shape (n, m)."""
        return np.exp(self.log_density(users, embeddings))

    def _to_prob(self, log_density: Array, log_scale: float, contrast: float) -> Array:
        c = self.config
        u = np.exp(np.minimum(contrast * (log_density - log_scale), 700.0))
        return c.min_utility + (c.max_utility - c.min_utility) * (-np.expm1(-u))

    def _solve_scale(self, log_density: Array, contrast: float, target: float, start: float | None = None) -> float:
        """log D with mean p == target for this contrast (safeguarded Newton on log D; the mean falls as D grows).

        ``start``: a first guess (the solution for a nearby contrast); by default a quantile of the log densities.
        """
        c = self.config
        span = c.max_utility - c.min_utility
        finite = log_density[np.isfinite(log_density)]
        lo, hi = float(finite.min()) - 60.0 / contrast, float(finite.max()) + 60.0 / contrast
        if start is None or not lo < start < hi:
            start = float(np.quantile(finite, 1.0 - (target - c.min_utility) / span))
        log_scale = start
        for _ in range(100):
            u = np.exp(np.minimum(contrast * (log_density - log_scale), 700.0))
            decay = np.exp(-u)
            gap = c.min_utility + span * float(np.mean(1.0 - decay)) - target
            if abs(gap) < 1e-7 * target or hi - lo < 1e-10:
                break
            if gap > 0:
                lo = log_scale
            else:
                hi = log_scale
            slope = -span * contrast * float(np.mean(u * decay))  # d mean / d log D
            step = log_scale - gap / slope if slope < 0 else 0.5 * (lo + hi)
            log_scale = step if lo < step < hi else 0.5 * (lo + hi)
        return log_scale

    def _calibrate(
        self, log_density: Array, config: GroundTruthConfig, rng: np.random.Generator
    ) -> tuple[float, float]:
        """(log D, γ): base CTR for every γ, then the γ that gives ``best_lift`` (the lift grows with γ).

        The root in γ is bracketed by doubling, then found by the Illinois variant of regula falsi on
        log(lift / best_lift) (a handful of evaluations, not the ~15 of bisection), each scale solve starting
        from the previous one's solution; it stops when the lift is within 1e-4 of the target.
        """
        banks = _random_bank_columns(log_density.shape[1], config.bank_size, _N_CALIBRATION_BANKS, rng)
        target = float(np.log(config.best_lift))
        state: dict[str, float | None] = {"log_scale": None}

        def gap(contrast: float) -> float:
            log_scale = self._solve_scale(log_density, contrast, config.base_ctr, start=state["log_scale"])
            state["log_scale"] = log_scale
            lift = _best_of_bank(self._to_prob(log_density, log_scale, contrast), banks) / config.base_ctr
            return float(np.log(lift)) - target

        lo, hi = 1e-3, 1.0
        g_lo, g_hi = gap(lo), gap(hi)
        while g_hi < 0:
            lo, g_lo, hi = hi, g_hi, 2.0 * hi
            if hi > 64.0:
                raise ConfigError(
                    f"best_lift={config.best_lift} cannot be reached by the gmm ground truth with "
                    f"base_ctr={config.base_ctr} and max_utility={config.max_utility}; the largest lift is about "
                    f"{np.exp(g_lo + target):.2f}."
                )
            g_hi = gap(hi)
        contrast, side = hi, 0
        for _ in range(60):
            if g_lo >= 0:  # the lift is already reached at the low end
                contrast = lo
                break
            contrast = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
            g = gap(contrast)
            if abs(g) < 1e-4 or hi - lo < 1e-6 * hi:
                break
            if g < 0:
                lo, g_lo = contrast, g
                if side == -1:
                    g_hi *= 0.5  # Illinois: halve the stale end so the bracket shrinks from both sides
                side = -1
            else:
                hi, g_hi = contrast, g
                if side == 1:
                    g_lo *= 0.5
                side = 1
        return self._solve_scale(log_density, contrast, config.base_ctr, start=state["log_scale"]), contrast

    def click_prob(self, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]) -> Array:
        """Click probabilities in [min_utility, max_utility], shape (n, m)."""
        log_scale = self._log_scale + float(np.log(self.config.density_scale_factor))
        return self._to_prob(self.log_density(users, embeddings), log_scale, self._contrast)

    def __repr__(self) -> str:
        c = self.config
        return f"GaussianMixture(components={c.gmm_components}, utility=[{c.min_utility}, {c.max_utility}])"


#: Concepts of the semantic ground truth: exemplar phrases (a concept is their centroid, so it is matched by
#: meaning, not by copying one phrase) and the user traits that respond to it.
SEMANTIC_CONCEPTS: tuple[tuple[tuple[str, ...], Mapping[str, float]], ...] = (
    (
        (
            "big discount",
            "huge sale, save 50% today",
            "cheap deals and bargains",
            "prices slashed",
            "save money with this coupon code",
            "clearance sale, everything must go",
            "half price on everything",
            "lowest prices of the year",
            "extra 30% off sale items",
            "budget-friendly deals",
        ),
        {"price_sensitivity": 1.0, "income_level": -0.5},
    ),
    (
        (
            "exclusive premium access",
            "luxury collection for VIP members",
            "elegant premium quality",
            "an invitation to our private members-only event",
            "the finest designer pieces",
            "indulge in pure luxury",
            "limited-edition luxury for discerning customers",
            "a refined, sophisticated collection",
            "prestige and exclusivity",
            "haute couture for the few",
        ),
        {"income_level": 0.8, "quality_focus": 0.6, "price_sensitivity": -0.6},
    ),
    (
        (
            "new technology launch",
            "the latest smart gadget is here",
            "innovative tech release",
            "our most advanced device yet",
            "cutting-edge features and upgraded specs",
            "pre-order the next generation",
            "powered by artificial intelligence",
            "a faster processor and better battery life",
            "the future of tech is here",
            "the newest wireless gadget",
        ),
        {"tech_savviness": 1.0, "age_norm": -0.4},
    ),
    (
        (
            "last chance",
            "hurry, offer ends tonight",
            "limited time only",
            "final hours to buy",
            "don't miss out, almost gone",
            "only a few left in stock",
            "ends at midnight",
            "act now before it's too late",
            "today only",
            "the countdown is on",
        ),
        {"urgency_response": 1.0},
    ),
    (
        (
            "loyalty reward for our members",
            "thank you for being a loyal customer",
            "earn bonus points",
            "your rewards points are waiting",
            "a special thank-you gift for our regulars",
            "members get double points",
            "as a valued customer, enjoy this perk",
            "celebrating your anniversary with us",
            "redeem your points",
            "exclusive perks for returning customers",
        ),
        {"brand_loyalty": 1.0},
    ),
    (
        (
            "trending now",
            "bestsellers everyone is talking about",
            "join thousands of happy customers",
            "the most popular picks this week",
            "top-rated by our community",
            "going viral on social media",
            "customer favorites with five-star reviews",
            "what everyone is buying right now",
            "as seen on TikTok and Instagram",
            "the hottest item of the season",
        ),
        {"social_influence": 1.0, "age_norm": -0.3},
    ),
    (
        (
            "handcrafted quality built to last",
            "timeless craftsmanship",
            "durable materials",
            "made by skilled artisans",
            "built to last a lifetime",
            "heritage quality you can trust",
            "carefully made with premium materials",
            "tested for durability",
            "classic design that never goes out of style",
            "solid construction and attention to detail",
        ),
        {"quality_focus": 1.0, "age_norm": 0.3},
    ),
    (
        (
            "free shipping on every order",
            "a free gift with your purchase",
            "free delivery, no minimum",
            "free returns and exchanges",
            "we cover the shipping",
            "get it delivered free to your door",
            "complimentary gift wrapping and a free sample",
            "free express shipping this week",
            "no delivery fees",
            "free shipping on all orders",
        ),
        {"price_sensitivity": 0.6, "brand_loyalty": 0.2},
    ),
)


#: Ordinary service mail (confirmations, notices, account messages): the semantic concepts are offers and appeals,
#: so each concept's direction is made orthogonal to the centroid of these phrases. Without it a receipt or a
#: delivery notice matched "free shipping" through the words they share ("order", "delivery") and was targeted
#: at price-sensitive users like a discount (world card, issue 15).
SEMANTIC_SERVICE_PHRASES: tuple[str, ...] = (
    "your order confirmation",
    "your package is on its way",
    "track your delivery",
    "update your account settings",
    "your invoice is attached",
    "a message about your subscription",
    "important information about your account",
    "your appointment reminder",
    "verify your sign-in",
    "our store hours have changed",
)


def _softplus(z: Array) -> Array:
    out: Array = np.logaddexp(0.0, z)
    return out


class SemanticGroundTruth(_CalibratedLogistic):
    """Experts are concepts in embedding space, gated by the user traits that respond to them.

    Concept k has a unit direction c_k, the centroid of its exemplar phrases' embeddings. A text matches
    it by meaning: with z_k(e) the cosine to c_k standardised over reference texts, the match is one-sided
    and saturating, m_k = M tanh(τ softplus((z_k - θ) / τ) / M) (θ = :attr:`MATCH_THRESHOLD` standard
    deviations above the typical text, softness τ = :attr:`MATCH_SOFTNESS`, ceiling M =
    :attr:`MATCH_CEILING`), and a text's matches together are scaled down to sum to at most M: a subject
    line carries one message's worth, so a text that is a discount, a luxury piece and a launch at once says
    each of them less strongly (without this, texts stacking concepts that answer to correlated traits, such
    as luxury and craftsmanship, were the most extreme in the world). A text about nothing in particular (an
    order confirmation, a policy update) matches no concept and is targeted at no one; a near-copy of an
    exemplar matches no more than a well-written text on the concept.

    Users respond one-sidedly too: with r_k(x) = x̃ · w_k standardised over the population (w_k the
    concept's trait weights plus a little world-specific noise), the affinity is
    a_k = τ_u softplus((r_k - θ_u) / τ_u) (θ_u = :attr:`AFFINITY_THRESHOLD`, τ_u = :attr:`AFFINITY_SOFTNESS`):
    price-sensitive users answer a discount, the others are indifferent to it rather than repelled. Then

        logit = b + s [w_a appeal·m(e) + sqrt(ρ) (a(x) - ā)·(m(e) - λ m̄)/σ_i],

    with ā, m̄ the population and reference-text means and p = max_utility · sigmoid(logit). The anchor λ m̄
    (λ = :attr:`NEUTRAL_ANCHOR`) sits between a text that matches nothing (λ = 0) and the average marketing text
    (λ = 1): at λ = 1 a text about nothing was targeted away from every concept's fans and a paraphrase whose
    match was near the average one reached no one; below 1 the interaction carries a user main effect (users
    whose concepts typical mail speaks to click a little more on all mail), which is taken out of the action
    effect's share: σ_i is the standard deviation of the double-centred interaction and w_a makes the action
    effect plus the user main effect 1 - ρ of the variance, so the interaction share stays ρ. Where ρ leaves the
    user main effect too little room, λ moves toward 1 (:meth:`_neutral_anchor`). Concept directions are
    orthogonal to ordinary service mail (:data:`SEMANTIC_SERVICE_PHRASES`), so a receipt is not a discount. These shapes keep the effect sizes of email: with the default
    calibration a concept text is clicked a few times (not tens of times) more often by the top fifth of
    users on its trait than by the bottom fifth (the world card measures it). Needs a semantic embedder
    (MiniLM, OpenAI): with a lexical one the "concepts" are bags of words.

    Args:
        config: Shared settings.
        rng: Draws the world-specific perturbations and the calibration banks.
        reference_users: A sample of the population, shape (n_ref, d_user).
        reference_embeddings: Embeddings of the ground truth's own reference sample of texts, shape
            (m_ref, d_embed): even rows set the match statistics, odd rows calibrate.
        embed: Embeds the concept phrases with the world's embedder: list of texts -> (n, d_embed).
        feature_names: Column names of the user features.
        concepts: (exemplar phrases, {trait: weight}) per concept.
        service_phrases: Ordinary service mail; every concept direction is made orthogonal to their centroid
            (empty: no projection).
    """

    name = "semantic"
    #: Standard deviations of concept similarity above the mean reference text where a match begins.
    MATCH_THRESHOLD = 1.0
    #: Width (in standard deviations) of the soft start of a match.
    MATCH_SOFTNESS = 0.3
    #: Largest match a text can reach (in the same units), so no phrase is a magic word.
    MATCH_CEILING = 1.0
    #: Where the interaction is centred on the text side: the match a text must exceed to be targeted at a
    #: concept's fans, as a fraction of the mean reference text's match (0: a text matching nothing is targeted
    #: at no one; 1: the average marketing text is, and a text matching nothing is targeted *away* from every
    #: concept's fans). See :meth:`_neutral_anchor`.
    NEUTRAL_ANCHOR = 0.5
    #: Most of the variance left to the action effect (1 - personalization) that the user main effect of an
    #: anchor below 1 may take; above it the anchor moves toward the mean text.
    USER_MAIN_BUDGET = 0.5
    #: Standard deviations of a user's trait score above the population mean where the response begins.
    AFFINITY_THRESHOLD = 1.0
    #: Width (in standard deviations) of the soft start of a user's response.
    AFFINITY_SOFTNESS = 0.5

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
        service_phrases: Sequence[str] = SEMANTIC_SERVICE_PHRASES,
    ) -> None:
        ref_users = check_array("reference_users", reference_users, ndim=2)
        ref_emb = check_array("reference_embeddings", reference_embeddings, ndim=2)
        fit_emb, calibration_emb = _split_reference(ref_emb)
        self.config = config
        self.d_user, self.d_embed = ref_users.shape[1], ref_emb.shape[1]
        names = list(feature_names)
        directions, traits = [], []
        for phrases, weights in concepts:
            vecs = np.asarray(embed(list(phrases)), dtype=np.float64)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-12
            mean = vecs.mean(axis=0)
            directions.append(mean / (np.linalg.norm(mean) or 1.0))
            row = np.zeros(len(names))
            for trait, w in weights.items():
                if trait not in names:
                    raise ConfigError(f"semantic concept trait must be one of {names}, got {trait!r}.")
                row[names.index(trait)] = w
            traits.append(row)
        self._directions = np.array(directions)  # (k, d_embed)
        if service_phrases:  # concepts are offers: remove the direction of ordinary service mail
            service = np.asarray(embed(list(service_phrases)), dtype=np.float64)
            service /= np.linalg.norm(service, axis=1, keepdims=True) + 1e-12
            axis = service.mean(axis=0)
            axis /= np.linalg.norm(axis) or 1.0
            self._directions -= np.outer(self._directions @ axis, axis)
            self._directions /= np.linalg.norm(self._directions, axis=1, keepdims=True) + 1e-12
        k = len(directions)
        self._trait_weights = np.array(traits).T + 0.15 * rng.standard_normal((len(names), k))  # (d_user, k)
        self._user_mean = ref_users.mean(axis=0)
        self._trait_sd = np.ones(k)
        self._affinity_mean = np.zeros(k)
        self._trait_sd = ((ref_users - self._user_mean) @ self._trait_weights).std(axis=0) + 1e-12
        self._affinity_mean = self._affinity(ref_users).mean(axis=0)
        sims = fit_emb @ self._directions.T
        self._sim_mean, self._sim_sd = sims.mean(axis=0), sims.std(axis=0) + 1e-9
        self._match_mean = np.zeros(k)
        self._match_mean = self.concept_match(fit_emb).mean(axis=0)
        self._match_anchor = self._match_mean * self._neutral_anchor(
            config.personalization, self.affinity(ref_users), self.concept_match(calibration_emb)
        )
        self._appeal = rng.standard_normal(k)
        for arr in (
            self._directions,
            self._trait_weights,
            self._user_mean,
            self._trait_sd,
            self._affinity_mean,
            self._sim_mean,
            self._sim_sd,
            self._match_mean,
            self._match_anchor,
            self._appeal,
        ):
            arr.setflags(write=False)
        self._fit_scales_and_link(config, ref_users, calibration_emb, rng)

    @property
    def trait_weights(self) -> Array:
        """Trait weights of each concept (with this world's noise), shape (d_user, n_concepts), read-only."""
        return self._trait_weights

    def concept_match(self, embeddings: NDArray[np.floating[Any]]) -> Array:
        """How strongly each action expresses each concept, shape (m, n_concepts); each row sums to <= MATCH_CEILING."""
        emb = np.asarray(embeddings, dtype=np.float64)
        z = (emb @ self._directions.T - self._sim_mean) / self._sim_sd
        soft, ceiling = self.MATCH_SOFTNESS, self.MATCH_CEILING
        out: Array = ceiling * np.tanh(soft * _softplus((z - self.MATCH_THRESHOLD) / soft) / ceiling)
        total = out.sum(axis=1, keepdims=True)
        out *= ceiling / np.maximum(total, ceiling)  # one message's worth: a text's matches sum to <= the ceiling
        return out

    def affinity(self, users: NDArray[np.float64]) -> Array:
        """How strongly each user responds to each concept, centred over the population, shape (n, n_concepts)."""
        out = self._affinity(np.asarray(users, dtype=np.float64))
        out -= self._affinity_mean
        return out

    def _affinity(self, users: Array) -> Array:
        r = (users - self._user_mean) @ self._trait_weights
        r /= self._trait_sd
        soft = self.AFFINITY_SOFTNESS
        out: Array = soft * _softplus((r - self.AFFINITY_THRESHOLD) / soft)
        return out

    def _parts(self, users: Array, embeddings: Array) -> tuple[Array, Array, Array]:
        match = self.concept_match(embeddings)  # (m, k)
        return match @ self._appeal, self.affinity(users), match - self._match_anchor

    @property
    def neutral_anchor(self) -> float:
        """λ of this world: its anchor's fraction of the mean reference text's match (see the class docstring)."""
        mean = float(np.abs(self._match_mean).sum())
        return float(np.abs(self._match_anchor).sum()) / mean if mean > 0 else 1.0

    def _neutral_anchor(self, rho: float, affinity: Array, match: Array) -> float:
        """The anchor's fraction of the mean match: :attr:`NEUTRAL_ANCHOR`, or the smallest larger one whose user
        main effect takes at most :attr:`USER_MAIN_BUDGET` of the action effect's share ``1 - rho``.

        The interaction (a(x) - ā)·(m(e) - anchor) carries a user main effect (a(x) - ā)·(m̄ - anchor): users whose
        concepts typical mail speaks to click more on all mail. Its variance relative to the double-centred
        interaction is quadratic in the anchor, so a grid of 101 fractions finds the smallest that fits.
        """
        centred = match - match.mean(axis=0)
        inter = float(((affinity @ centred.T) ** 2).mean())  # affinity is centred, so this is the double-centred part
        budget = self.USER_MAIN_BUDGET * (1.0 - rho) / rho * inter
        lams = np.linspace(self.NEUTRAL_ANCHOR, 1.0, 101)
        offsets = match.mean(axis=0)[None, :] - lams[:, None] * self._match_mean[None, :]  # (101, k)
        user_main = ((affinity @ offsets.T) ** 2).mean(axis=0)  # (101,)
        fits = np.flatnonzero(user_main <= budget)
        return float(lams[fits[0]]) if fits.size else 1.0

    def _part_scales(self, config: GroundTruthConfig, action: Array, product: Array) -> tuple[float, float]:
        """The interaction's scale from its double-centred part; the user main effect it carries comes out of the
        action effect's share, so the interaction is still ``personalization`` of the logit variance (at
        personalization 1 the action effect is 0 and the user main effect is whatever the anchor leaves)."""
        rho = config.personalization
        user_main = product.mean(axis=1, keepdims=True)
        resid = product - user_main
        resid -= resid.mean(axis=0, keepdims=True)
        inter = float(resid.var()) or 1.0
        left = 1.0 - rho - rho * float(user_main.var()) / inter
        sd_action = (float(action.std()) or 1.0) * float(np.sqrt((1.0 - rho) / left)) if left > 0.0 else np.inf
        return sd_action, float(np.sqrt(inter))

    def design(self, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]) -> tuple[Array, Array]:
        """The functional form without its weights: (user basis a(x) - ā (n, k), action basis m(e) - λ m̄ (m, k)).

        logit = b + α·m(e) + (a(x) - ā)ᵀ B (m(e) - λ m̄) for some α (k,) and B (k, k) (the learnability check
        fits them; the truth has B diagonal).
        """
        users_, emb_ = _check_inputs(users, embeddings, self.d_user, self.d_embed)
        return self.affinity(users_), self.concept_match(emb_) - self._match_anchor

    def __repr__(self) -> str:
        return f"SemanticGroundTruth(concepts={self._directions.shape[0]}, base_ctr={self.config.base_ctr})"


def _identity(scores: Array) -> Array:
    return scores


def monotone_scores(
    ground_truth: GroundTruth, users: NDArray[np.float64], embeddings: NDArray[np.floating[Any]]
) -> tuple[Array, Callable[[Array], Array]]:
    """Scores in the order of the click probabilities, and the link that turns scores into probabilities.

    For the logistic ground truths the scores are the logits and the link is the capped sigmoid, so a caller that
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
        return ground_truth.logits(users, embeddings), ground_truth.link
    return np.asarray(ground_truth.click_prob(users, embeddings), dtype=np.float64), _identity


def extra_calibration_texts(name: str, n_reference_texts: int) -> int:
    """Texts a world draws for family ``name`` beyond its reference sample, only to calibrate on (0 but for gmm)."""
    return GaussianMixture.extra_calibration_texts(n_reference_texts) if name == "gmm" else 0


#: Registry names of the ground-truth families.
GROUND_TRUTHS: dict[str, str] = {
    "mixture_of_experts": "softmax-gated bilinear experts over user features and embeddings (default)",
    "gmm": "Gaussian mixture over the joint (user, action) space, conditioned on the user",
    "semantic": "concepts in embedding space gated by matching user traits (needs a semantic embedder)",
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
    calibration_embeddings: NDArray[np.floating[Any]] | None = None,
) -> GroundTruth:
    """Build the ground truth called ``name`` (one of :data:`GROUND_TRUTHS`).

    ``calibration_embeddings``: the extra held-out texts of :func:`extra_calibration_texts` (gmm only).
    """
    kwargs: dict[str, Any] = {
        "rng": rng,
        "reference_users": reference_users,
        "reference_embeddings": reference_embeddings,
    }
    if name == "mixture_of_experts":
        return MixtureOfExperts(config, **kwargs)
    if name == "gmm":
        return GaussianMixture(config, calibration_embeddings=calibration_embeddings, **kwargs)
    if name == "semantic":
        return SemanticGroundTruth(config, embed=embed, feature_names=feature_names, **kwargs)
    from actionbank_env._validation import check_component

    check_component("ground_truth", name, GROUND_TRUTHS)
    raise AssertionError("unreachable")  # pragma: no cover
