"""A Bayesian bilinear logistic reward model built to generalise from a few dozen served texts.

The click logit of user x and text e is

    f(x, e) = φ(x)ᵀ M ψ(e),   φ(x) = [1, x̃],   ψ(e) = [1, z(e)],

so M holds the intercept, a user main effect (the user-only baseline), an action main effect and the
user x action interaction. x̃ are the standardised user features; z(e) are the coordinates of the embedding
on the top principal components of *unlabelled* texts the company has (the candidate pool and the served
texts, passed as ``reference_embeddings``), so a candidate that was never served still has coordinates in
directions the served texts vary little along. Coordinate l is scaled to variance ∝ (σ_l / σ_1)^(2p) over
those texts (``spectrum_power`` p: 0 whitens, 1 keeps the texts' own spectrum), normalised to unit total.

Prior: independent Gaussians on the entries of M, one scale per block (intercept, user effect, action
effect, interaction). The action and interaction scales shrink towards the user-only model; they (and p) are
chosen from the logs, by default by cross-validation grouped by served text: folds hold out whole texts, so
the score is log loss on texts the fit never saw, which is what bank design asks of the model.

Posterior: the Laplace approximation at the MAP (Newton's method). Every row's design is the Kronecker
product φ(x) ⊗ ψ(e), and a log serves only K distinct texts, so the Hessian is a sum of K Kronecker products
``G_a ⊗ ψ_a ψ_aᵀ`` (G_a the curvature-weighted user Gram of text a): one Newton step costs O(n d_φ² + K d²)
whatever the number of rows. Predictions integrate the logit's posterior: the mean probability is
E[sigmoid(f)] (Gauss-Hermite quadrature; the probit approximation in cross-validation), the predictive variance of every user x text pair is
(φ ⊗ φ)ᵀ S (ψ ⊗ ψ) with S the rearranged posterior covariance, and :meth:`sample_logits` draws whole
functions f from the posterior (for Thompson-style bank selection).

References: MacKay (1992) "The evidence framework applied to classification networks"; Spiegelhalter &
Lauritzen (1990) for the probit approximation; Chu et al. (2011) "Contextual bandits with linear payoff
functions" for the bilinear user x action form.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_bool, check_choice, check_int, check_real
from actionbank_env.errors import ConfigError
from optimizers.reward_models._base import RewardModelBase, check_common_config, check_max_fit_rows
from optimizers.reward_models._features import action_folds, distinct_rows, sigmoid, user_chunks

__all__ = ["BayesianBilinearConfig", "BayesianBilinearRewardModel", "PRIOR_SELECTIONS"]

#: How the prior scales (and the spectrum power) are chosen.
PRIOR_SELECTIONS = ("grouped_cv", "evidence", "fixed")

_BLOCKS = ("intercept", "user", "action", "interaction")


@dataclass(frozen=True, slots=True, kw_only=True)
class BayesianBilinearConfig:
    """Hyperparameters of the Bayesian bilinear reward model.

    Attributes:
        embedding_components: Principal components of the unlabelled texts' embeddings (capped at the rank).
        spectrum_power: Scale of component l ∝ (σ_l / σ_1) ** spectrum_power; ``None`` chooses it from
            ``spectrum_grid`` with the prior scales.
        spectrum_grid: Candidate powers when ``spectrum_power`` is ``None``.
        prior_selection: ``"grouped_cv"`` (log loss on held-out served texts), ``"evidence"`` (MacKay's
            type-II maximum likelihood under the Laplace approximation) or ``"fixed"`` (the sds below).
        user_prior_sd: Prior sd of the user main effects (logit per standardised feature).
        action_prior_sd: Prior sd of the action main effects (fixed; the start of the evidence updates).
        interaction_prior_sd: Prior sd of the interaction entries (fixed; the start of the evidence updates).
        prior_sd_grid: Candidate sds of the action and interaction blocks for ``grouped_cv`` (each pair).
        cv_folds: Folds of served texts for ``grouped_cv`` (fewer when fewer texts were served).
        moderated: Predict E[sigmoid(f)] under the posterior (``False``: sigmoid of the posterior mean).
        max_newton_iter: Iteration cap of Newton's method.
        tol: Stop when the largest Newton step is below this.
        max_pairs_per_chunk: Bound on user x action pairs per scoring chunk of the uncertainty pass.
        max_fit_rows: Above this many logged rows the model is fitted on a reweighted sample of this size (every
            click, up to half the sample, plus a uniform sample of the non-clicks weighted by the inverse of their
            sampling rate: :func:`optimizers.reward_models._base.bounded_sample`), which bounds a fit's cost
            (~0.1 CPU-s per 1,000 rows: 5 CV folds x 27 grid points of Newton) at large logs; ``None`` fits on every
            row. At or below it the fit is exactly the full-data fit. Measured in ``benchmarks/BASELINE.md``: on
            unseen candidates the sampled fit is as good as the full one.
    """

    embedding_components: int = 16
    spectrum_power: float | None = None
    spectrum_grid: tuple[float, ...] = (0.0, 0.5, 1.0)
    prior_selection: str = "grouped_cv"
    user_prior_sd: float = 1.0
    action_prior_sd: float = 0.5
    interaction_prior_sd: float = 0.5
    prior_sd_grid: tuple[float, ...] = (0.125, 0.5, 2.0)
    cv_folds: int = 5
    moderated: bool = True
    max_newton_iter: int = 50
    tol: float = 1e-6
    max_pairs_per_chunk: int = 2**18
    max_fit_rows: int | None = 50_000

    def __post_init__(self) -> None:
        name = "BayesianBilinearConfig"
        check_common_config(self)
        if self.spectrum_power is not None:
            check_real(f"{name}.spectrum_power", self.spectrum_power, low=0.0, high=4.0)
        grid = tuple(self.spectrum_grid)
        if not grid:
            raise ConfigError(f"{name}.spectrum_grid must hold at least one power, got {self.spectrum_grid!r}.")
        object.__setattr__(
            self,
            "spectrum_grid",
            tuple(check_real(f"{name}.spectrum_grid[{i}]", p, low=0.0, high=4.0) for i, p in enumerate(grid)),
        )
        check_choice(f"{name}.prior_selection", self.prior_selection, PRIOR_SELECTIONS)
        for field in ("user_prior_sd", "action_prior_sd", "interaction_prior_sd"):
            check_real(f"{name}.{field}", getattr(self, field), low=0.0, low_open=True)
        sds = tuple(self.prior_sd_grid)
        if not sds:
            raise ConfigError(f"{name}.prior_sd_grid must hold at least one sd, got {self.prior_sd_grid!r}.")
        object.__setattr__(
            self,
            "prior_sd_grid",
            tuple(check_real(f"{name}.prior_sd_grid[{i}]", s, low=0.0, low_open=True) for i, s in enumerate(sds)),
        )
        check_int(f"{name}.cv_folds", self.cv_folds, low=2)
        check_bool(f"{name}.moderated", self.moderated)
        check_int(f"{name}.max_newton_iter", self.max_newton_iter, low=1)
        check_real(f"{name}.tol", self.tol, low=0.0, low_open=True)
        check_int(f"{name}.max_pairs_per_chunk", self.max_pairs_per_chunk, low=1)
        check_max_fit_rows(self)


# ---------------------------------------------------------------------------------------------- the MAP fit


@dataclass
class _Design:
    """Training rows in Kronecker form: user basis per row, distinct action basis, action of each row."""

    phi: NDArray[np.float64]  # (n, d_phi)
    psi: NDArray[np.float64]  # (K, d_psi)
    action: NDArray[np.int64]  # (n,), sorted rows: see order
    clicks: NDArray[np.float64]  # (n,)
    weights: NDArray[np.float64]  # (n,)

    def __post_init__(self) -> None:
        order = np.argsort(self.action, kind="stable")
        self.phi, self.action = self.phi[order], self.action[order]
        self.clicks, self.weights = self.clicks[order], self.weights[order]
        self.starts = np.flatnonzero(np.r_[True, self.action[1:] != self.action[:-1]])
        self.groups = self.action[self.starts]  # the actions present, ascending
        self.psi_rows = self.psi[self.action]  # each row's action basis, for the logits of every Newton step

    # Built on the first Hessian of a design, then used by every Newton step of every fit on it (a CV fold is
    # fitted for each grid point): the upper triangles of φφᵀ per row and of ψψᵀ per present text.
    @functools.cached_property
    def phi_sym(self) -> NDArray[np.float64]:
        rows, cols = np.triu_indices(self.phi.shape[1])
        out: NDArray[np.float64] = self.phi[:, rows] * self.phi[:, cols]  # (n, d_phi (d_phi + 1) / 2)
        return out

    @functools.cached_property
    def psi_sym(self) -> NDArray[np.float64]:
        rows, cols = np.triu_indices(self.psi.shape[1])
        present = self.psi[self.groups]
        out: NDArray[np.float64] = present[:, rows] * present[:, cols]  # (K_present, d_psi (d_psi + 1) / 2)
        return out

    def subset(self, rows: NDArray[np.bool_]) -> _Design:
        return _Design(self.phi[rows], self.psi, self.action[rows], self.clicks[rows], self.weights[rows])

    def logits(self, m: NDArray[np.float64]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = np.einsum("ij,ij->i", self.phi @ m, self.psi_rows)
        return out


def _pair_index(d: int) -> NDArray[np.int64]:
    """(d, d) position of entry (i, j) of a symmetric d x d matrix in its row-major upper triangle."""
    rows, cols = np.triu_indices(d)
    index = np.empty((d, d), dtype=np.int64)
    index[rows, cols] = np.arange(rows.size)
    index[cols, rows] = np.arange(rows.size)
    return index


_KRON_INDEX: dict[tuple[int, int], NDArray[np.int64]] = {}


def _symmetric_kron_index(d_phi: int, d_psi: int) -> NDArray[np.int64]:
    """Flat index into ``acc`` (upper-triangle pairs of φ x upper-triangle pairs of ψ) of every Hessian entry.

    Entry [(i, k), (j, l)] of the Hessian (vec(M) row-major) is Σ_a G_a[i, j] ψ_a[k] ψ_a[l], which is
    ``acc[pair(i, j), pair(k, l)]`` with ``acc = gram_sym.T @ psi_sym``.
    """
    key = (d_phi, d_psi)
    if key not in _KRON_INDEX:
        pi, ps = _pair_index(d_phi), _pair_index(d_psi)
        n_psi_pairs = d_psi * (d_psi + 1) // 2
        # rows (i, k), columns (j, l)
        flat = pi[:, None, :, None] * n_psi_pairs + ps[None, :, None, :]
        _KRON_INDEX[key] = flat.reshape(d_phi * d_psi, d_phi * d_psi)
    return _KRON_INDEX[key]


def _nll(design: _Design, logits: NDArray[np.float64]) -> float:
    return float(np.sum(design.weights * (np.logaddexp(0.0, logits) - design.clicks * logits)))


def _objective(
    design: _Design, m: NDArray[np.float64], precision: NDArray[np.float64]
) -> tuple[float, NDArray[np.float64]]:
    logits = design.logits(m)
    return _with_prior(_nll(design, logits), m, precision), logits


def _with_prior(nll: float, m: NDArray[np.float64], precision: NDArray[np.float64]) -> float:
    return nll + 0.5 * float(np.sum(precision * m * m))


def _data_hessian(design: _Design, curvature: NDArray[np.float64]) -> NDArray[np.float64]:
    """Σ_a G_a ⊗ ψ_a ψ_aᵀ, with vec(M) row-major (the likelihood's part of the Hessian).

    Only the distinct entries are summed: G_a and ψ_a ψ_aᵀ are symmetric, so their upper triangles (45 and 153
    of 81 and 289 entries at the default sizes) are accumulated and the full matrix is gathered from them.
    """
    gram = np.add.reduceat(design.phi_sym * curvature[:, None], design.starts, axis=0)  # (K_present, pairs_φ)
    acc = gram.T @ design.psi_sym  # [pair(i, j), pair(k, l)]
    out: NDArray[np.float64] = acc.reshape(-1)[_symmetric_kron_index(design.phi.shape[1], design.psi.shape[1])]
    return out


def _add_prior(hess: NDArray[np.float64], precision: NDArray[np.float64]) -> NDArray[np.float64]:
    hess.reshape(-1)[:: hess.shape[0] + 1] += precision.reshape(-1)  # the diagonal, in place
    return hess


def _hessian(design: _Design, curvature: NDArray[np.float64], precision: NDArray[np.float64]) -> NDArray[np.float64]:
    """Σ_a G_a ⊗ ψ_a ψ_aᵀ + diag(precision), with vec(M) row-major (see :func:`_data_hessian`)."""
    return _add_prior(_data_hessian(design, curvature), precision)


def _data_gradient(design: _Design, probs: NDArray[np.float64]) -> NDArray[np.float64]:
    resid = design.weights * (probs - design.clicks)
    per_action = np.add.reduceat(design.phi * resid[:, None], design.starts, axis=0)  # (K_present, d_phi)
    out: NDArray[np.float64] = per_action.T @ design.psi[design.groups]
    return out


@dataclass(frozen=True)
class _NewtonStart:
    """The likelihood's part of Newton's first step from ``init`` on a design, which no prior changes.

    The grouped CV fits every prior of its grid on a fold from the same ``init``: the logits, the data gradient
    and the data Hessian there are computed once per fold and each fit adds its prior's terms to them, in the
    order :func:`_fit_map` adds them on its own (so every fit is bit-identical to one made without a start).
    """

    init: NDArray[np.float64]
    logits: NDArray[np.float64]
    nll: float
    grad: NDArray[np.float64]
    hess: NDArray[np.float64]

    @classmethod
    def at(cls, design: _Design, init: NDArray[np.float64]) -> _NewtonStart:
        logits = design.logits(init)
        probs = sigmoid(logits)
        hess = _data_hessian(design, design.weights * probs * (1.0 - probs))
        return cls(init, logits, _nll(design, logits), _data_gradient(design, probs), hess)


def _fit_map(
    design: _Design,
    precision: NDArray[np.float64],
    init: NDArray[np.float64],
    *,
    max_iter: int,
    tol: float,
    start: _NewtonStart | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """MAP of M by damped Newton; returns (M, Hessian at the MAP, iterations).

    ``start``: :meth:`_NewtonStart.at` of this design and ``init``, when several fits share it.
    """
    from scipy.linalg.lapack import dpotrf, dpotrs  # what cho_factor / cho_solve call, without their wrappers

    if start is None:
        start = _NewtonStart.at(design, init)
    elif start.init is not init and not np.array_equal(start.init, init):
        raise ValueError("_fit_map start was computed at another init.")
    m = init.copy()
    value, logits = _with_prior(start.nll, m, precision), start.logits
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        if n_iter == 1:
            grad = start.grad + precision * m
            hess = _add_prior(start.hess.copy(), precision)
        else:
            probs = sigmoid(logits)
            grad = _data_gradient(design, probs) + precision * m
            hess = _hessian(design, design.weights * probs * (1.0 - probs), precision)
        factor, info = dpotrf(hess, lower=False, clean=False)
        if info == 0:
            step = dpotrs(factor, grad.reshape(-1), lower=False)[0].reshape(m.shape)
        else:  # not positive definite in floating point
            step = np.linalg.lstsq(hess, grad.reshape(-1), rcond=None)[0].reshape(m.shape)
        scale = 1.0
        while True:  # backtracking keeps Newton monotone on the convex objective
            candidate = m - scale * step
            new_value, new_logits = _objective(design, candidate, precision)
            if new_value <= value + 1e-10 * max(1.0, abs(value)) or scale < 1e-4:
                break
            scale *= 0.5
        m, value, logits = candidate, new_value, new_logits
        if float(np.max(np.abs(scale * step))) < tol:
            break
    probs = sigmoid(logits)  # the Hessian at the returned MAP (the loop's is one step behind)
    return m, _hessian(design, design.weights * probs * (1.0 - probs), precision), n_iter


def _block_masks(d_phi: int, d_psi: int) -> dict[str, NDArray[np.bool_]]:
    masks = {b: np.zeros((d_phi, d_psi), dtype=bool) for b in _BLOCKS}
    masks["intercept"][0, 0] = True
    masks["user"][1:, 0] = True
    masks["action"][0, 1:] = True
    masks["interaction"][1:, 1:] = True
    return masks


def _precision(d_phi: int, d_psi: int, sds: dict[str, float]) -> NDArray[np.float64]:
    out = np.zeros((d_phi, d_psi))
    for block, mask in _block_masks(d_phi, d_psi).items():
        out[mask] = 1.0 / sds[block] ** 2
    return out


def evidence_sds(
    design: _Design,
    sds: dict[str, float],
    init: NDArray[np.float64],
    *,
    max_iter: int = 50,
    tol: float = 1e-6,
    n_outer: int = 30,
    blocks: tuple[str, ...] = ("action", "interaction"),
) -> tuple[dict[str, float], float, NDArray[np.float64]]:
    """MacKay's fixed-point updates of the ``blocks``' prior sds.

    Returns:
        ``(sds, log evidence under the Laplace approximation, MAP)``.
    """
    d_phi, d_psi = design.phi.shape[1], design.psi.shape[1]
    masks = _block_masks(d_phi, d_psi)
    sds = dict(sds)
    m = init
    for _ in range(n_outer):
        precision = _precision(d_phi, d_psi, sds)
        m, hess, _ = _fit_map(design, precision, m, max_iter=max_iter, tol=tol)
        diag_cov = np.diag(np.linalg.inv(hess)).reshape(d_phi, d_psi)
        changed = 0.0
        for block in blocks:
            mask = masks[block]
            lam = 1.0 / sds[block] ** 2
            gamma = float(np.sum(1.0 - lam * diag_cov[mask]))
            norm = float(np.sum(m[mask] ** 2))
            new_sd = float(np.clip(np.sqrt(max(norm, 1e-12) / max(gamma, 1e-6)), 1e-3, 10.0))
            changed = max(changed, abs(float(np.log(new_sd / sds[block]))))
            sds[block] = new_sd
        if changed < 1e-3:
            break
    precision = _precision(d_phi, d_psi, sds)
    m, hess, _ = _fit_map(design, precision, m, max_iter=max_iter, tol=tol)
    value, _ = _objective(design, m, precision)
    _, logdet_h = np.linalg.slogdet(hess)
    return sds, float(-value + 0.5 * float(np.sum(np.log(precision))) - 0.5 * logdet_h), m


class BayesianBilinearRewardModel(RewardModelBase):
    """Bayesian bilinear logistic model (see the module docstring); has ``predict_with_uncertainty``.

    Fitted attributes: ``coef_`` (d_phi, d_psi) posterior mean of M, ``cov_`` its covariance (row-major
    vec), ``component_scale_`` (r,) the scaling of the projected coordinates, ``spectrum_power_``,
    ``prior_sds_`` (per block), ``cv_scores_`` (the selection table), ``n_iter_``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> texts = rng.standard_normal((40, 6)).astype(np.float32)
        >>> served = rng.integers(0, 20, 3000)  # 20 texts served, 20 never
        >>> users = rng.random((3000, 3))
        >>> logits = -2.5 + 2.0 * (users[:, 0] - 0.5) * texts[served, 0]
        >>> clicks = (rng.random(3000) < 1 / (1 + np.exp(-logits))).astype(float)
        >>> model = BayesianBilinearRewardModel(rng=rng, reference_embeddings=texts)
        >>> mean, std = model.fit_indexed(users, texts, served, clicks).predict_with_uncertainty(users[:2], texts[20:])
        >>> mean.shape, bool(np.all(std > 0))
        ((2, 20), True)
    """

    name = "bayesian_bilinear"
    config_class = BayesianBilinearConfig
    config: BayesianBilinearConfig

    # ------------------------------------------------------------------ features

    def _component_scale(self, power: float) -> NDArray[np.float64]:
        """Per-component multiplier: variance ∝ (σ_l/σ_1)^(2 power) over the unlabelled texts, unit total."""
        sd = self._component_sd
        rel = (sd / sd[0]) ** power
        scale = rel / sd
        total = float(np.sum((sd * scale) ** 2))
        return scale / np.sqrt(total)

    def _psi(self, actions_z: NDArray[np.float64], scale: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        s = self.component_scale_ if scale is None else scale
        return np.hstack([np.ones((actions_z.shape[0], 1)), actions_z * s])

    @staticmethod
    def _phi(users_z: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.hstack([np.ones((users_z.shape[0], 1)), users_z])

    # ------------------------------------------------------------------ fit

    def _fit(
        self,
        users_z: NDArray[np.float64],
        actions_z: NDArray[np.float64],
        clicks: NDArray[np.float64],
        weights: NDArray[np.float64],
        rng: np.random.Generator,
    ) -> None:
        cfg = self.config
        distinct, action = distinct_rows(actions_z)
        unlabelled = distinct
        if self.reference_embeddings is not None:
            unlabelled = np.vstack([distinct, self.features_.actions(self.reference_embeddings)])
        sd = unlabelled.std(axis=0)
        self._component_sd = np.where(sd > 1e-12, sd, 1e-12)
        phi = self._phi(users_z)
        rate = float(np.clip(np.average(clicks, weights=weights), 1e-6, 1 - 1e-6))
        d_phi, d_psi = phi.shape[1], distinct.shape[1] + 1
        init = np.zeros((d_phi, d_psi))
        init[0, 0] = np.log(rate / (1.0 - rate))
        powers = (cfg.spectrum_power,) if cfg.spectrum_power is not None else cfg.spectrum_grid
        base_sds = {
            "intercept": 10.0,
            "user": cfg.user_prior_sd,
            "action": cfg.action_prior_sd,
            "interaction": cfg.interaction_prior_sd,
        }

        def design_for(power: float) -> _Design:
            return _Design(phi, self._psi(distinct, self._component_scale(power)), action, clicks, weights)

        table: list[dict[str, float]] = []
        if cfg.prior_selection == "fixed":
            power, sds = float(powers[0]), base_sds
        elif cfg.prior_selection == "evidence":
            best = None
            for p in powers:
                sds_p, evidence, _ = evidence_sds(
                    design_for(p), base_sds, init, max_iter=cfg.max_newton_iter, tol=cfg.tol
                )
                table.append({"spectrum_power": p, **{f"{b}_sd": sds_p[b] for b in _BLOCKS}, "log_evidence": evidence})
                if best is None or evidence > best[0]:
                    best = (evidence, p, sds_p)
            assert best is not None
            power, sds = float(best[1]), best[2]
        else:
            power, sds, table = self._grouped_cv(design_for, powers, base_sds, init, distinct.shape[0], rng)
        self.component_scale_ = self._component_scale(power)
        design = design_for(power)
        precision = _precision(d_phi, d_psi, sds)
        m, hess, self.n_iter_ = _fit_map(design, precision, init, max_iter=cfg.max_newton_iter, tol=cfg.tol)
        cov = np.linalg.inv(hess)
        self.coef_ = m
        self.cov_ = 0.5 * (cov + cov.T)
        self.spectrum_power_ = power
        self.prior_sds_ = dict(sds)
        self.cv_scores_ = table
        self._prepare_cov()

    def frozen_copy(self, rng: np.random.Generator | None) -> BayesianBilinearRewardModel:
        """An unfitted model of this kind whose prior scales and spectrum power are fixed at what this fit chose.

        Cross-fitting uses it to tune once on the whole log and then fit each fold without repeating the
        selection (a grouped-CV fit scores 27 candidate settings; a fixed one fits once), as DoubleML tunes its
        nuisance learners globally rather than per fold.

        Raises:
            NotFittedError: Before :meth:`fit`.
        """
        self._check_fitted()
        from dataclasses import replace

        config = replace(
            self.config,
            prior_selection="fixed",
            spectrum_power=float(self.spectrum_power_),
            user_prior_sd=float(self.prior_sds_["user"]),
            action_prior_sd=float(self.prior_sds_["action"]),
            interaction_prior_sd=float(self.prior_sds_["interaction"]),
        )
        return type(self)(rng=rng, config=config, reference_embeddings=self.reference_embeddings)

    def _grouped_cv(
        self,
        design_for: Any,
        powers: tuple[float, ...],
        base_sds: dict[str, float],
        init: NDArray[np.float64],
        n_actions: int,
        rng: np.random.Generator,
    ) -> tuple[float, dict[str, float], list[dict[str, float]]]:
        """Choose (power, action sd, interaction sd) by log loss on served texts held out by fold."""
        cfg = self.config
        n_folds = min(cfg.cv_folds, n_actions)
        if n_folds < 2:
            return float(powers[0]), base_sds, []
        folds = action_folds(n_actions, n_folds, rng)
        table: list[dict[str, float]] = []
        best: tuple[float, float, dict[str, float]] | None = None
        grid = [(sd_a, sd_w) for sd_a in cfg.prior_sd_grid for sd_w in cfg.prior_sd_grid]
        for power in powers:
            design = design_for(power)
            row_fold = folds[design.action]
            d_phi, d_psi = design.phi.shape[1], design.psi.shape[1]
            precisions = [_precision(d_phi, d_psi, {**base_sds, "action": a, "interaction": w}) for a, w in grid]
            # Fold by fold (one fold's designs in memory at a time: each holds per-row products), every grid point;
            # the losses are then summed over folds in fold order, as a grid-point-major loop would.
            losses: list[list[float]] = [[] for _ in grid]
            weights: list[float] = []
            for f in range(n_folds):
                train, test = design.subset(row_fold != f), design.subset(row_fold == f)
                if not (test.clicks.size and 0 < train.clicks.mean() < 1):
                    continue
                start = _NewtonStart.at(train, init)  # the same first step's data for every grid point
                for g, precision in enumerate(precisions):
                    m, hess, _ = _fit_map(train, precision, init, max_iter=cfg.max_newton_iter, tol=1e-4, start=start)
                    losses[g].append(float(self._heldout_loss(test, m, hess)))
                weights.append(float(test.weights.sum()))
                del train, test, start
            for (sd_a, sd_w), fold_losses in zip(grid, losses, strict=True):
                sds = {**base_sds, "action": sd_a, "interaction": sd_w}
                loss = 0.0
                weight = 0.0
                for fold_loss, fold_weight in zip(fold_losses, weights, strict=True):
                    loss += fold_loss
                    weight += fold_weight
                score = loss / max(weight, 1e-12)
                table.append({"spectrum_power": power, "action_sd": sd_a, "interaction_sd": sd_w, "cv_log_loss": score})
                if best is None or score < best[0] - 1e-12:
                    best = (score, power, sds)
        assert best is not None
        return float(best[1]), best[2], table

    def _heldout_loss(self, test: _Design, m: NDArray[np.float64], hess: NDArray[np.float64]) -> float:
        """Weighted log loss of the (moderated) predictions on held-out rows."""
        mu = test.logits(m)
        if self.config.moderated:
            var = self._design_variance(test, hess)
            mu = mu / np.sqrt(1.0 + np.pi * var / 8.0)
        p = np.clip(sigmoid(mu), 1e-9, 1 - 1e-9)
        return float(-np.sum(test.weights * (test.clicks * np.log(p) + (1 - test.clicks) * np.log1p(-p))))

    @staticmethod
    def _design_variance(design: _Design, hess: NDArray[np.float64]) -> NDArray[np.float64]:
        """xᵢᵀ H⁻¹ xᵢ for the rows' designs xᵢ = φᵢ ⊗ ψ_a(i), shape (n,), in the design's (sorted) row order.

        With H = L Lᵀ and B_a = I ⊗ ψ_a (so xᵢ = B_a φᵢ), xᵢᵀ H⁻¹ xᵢ = φᵢᵀ C_a φᵢ where C_a = (L⁻¹ B_a)ᵀ (L⁻¹ B_a):
        one triangular solve for the K texts present, not H⁻¹ and an (n, d_φ d_ψ) design multiplied row by row.
        """
        from scipy.linalg.lapack import dpotrf, dtrtrs

        d_phi, d_psi = design.phi.shape[1], design.psi.shape[1]
        present = design.psi[design.groups]  # (K, d_psi)
        n_texts = present.shape[0]
        # B[(i, k), (a, j)] = δ_ij ψ_a[k]  (vec(M) row-major, as the Hessian)
        basis = np.einsum("ij,ak->ikaj", np.eye(d_phi), present).reshape(d_phi * d_psi, n_texts * d_phi)
        factor, info = dpotrf(hess, lower=True, clean=True)
        if info == 0:
            solved, info = dtrtrs(factor, basis, lower=True)
        if info == 0:
            solved = solved.reshape(-1, n_texts, d_phi)
            per_text = np.einsum("pai,paj->aij", solved, solved)  # C_a, (K, d_phi, d_phi)
        else:  # not positive definite in floating point: the pseudo-inverse
            blocks = (basis.T @ np.linalg.pinv(hess) @ basis).reshape(n_texts, d_phi, n_texts, d_phi)
            per_text = blocks[np.arange(n_texts), :, np.arange(n_texts), :]
        counts = np.diff(np.r_[design.starts, design.action.size])
        rows = np.repeat(per_text, counts, axis=0)
        return np.maximum(np.einsum("ni,nij,nj->n", design.phi, rows, design.phi), 0.0)

    # ------------------------------------------------------------------ predict

    def _prepare_cov(self) -> None:
        d_phi, d_psi = self.coef_.shape
        self._cov_kron = (
            self.cov_.reshape(d_phi, d_psi, d_phi, d_psi).transpose(0, 2, 1, 3).reshape(d_phi * d_phi, d_psi * d_psi)
        )

    def _latent_moments(
        self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Posterior mean and variance of the logit, each (n_users, n_actions)."""
        phi, psi = self._phi(users_z), self._psi(actions_z)
        mean = (phi @ self.coef_) @ psi.T
        phi2 = (phi[:, :, None] * phi[:, None, :]).reshape(phi.shape[0], -1)
        psi2 = (psi[:, :, None] * psi[:, None, :]).reshape(psi.shape[0], -1)
        var = (phi2 @ self._cov_kron) @ psi2.T
        return mean, np.maximum(var, 0.0)

    def decision_function(self, users: NDArray[np.float64], embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
        """Posterior-mean logits, shape (n_users, n_actions)."""
        users_z, actions_z = self._check_predict_inputs(users, embeddings)
        return (self._phi(users_z) @ self.coef_) @ self._psi(actions_z).T

    def _predict_z(self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64]) -> NDArray[np.float64]:
        if not self.config.moderated:
            return sigmoid((self._phi(users_z) @ self.coef_) @ self._psi(actions_z).T)
        return self._probability_moments(users_z, actions_z, with_std=False)[0]

    def _probability_moments(
        self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64], *, with_std: bool = True
    ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
        """Posterior mean and sd of sigmoid(f) by 12-node Gauss-Hermite quadrature, chunked over users.

        The (users, actions, nodes) block of each chunk is computed in one reused buffer, by the same operations in
        the same order as ``sigmoid(mu[..., None] + np.sqrt(2.0 * var)[..., None] * nodes)`` (so the same bits)
        without its five temporaries. ``with_std=False`` (what :meth:`predict` needs) skips the sd: ``None``.
        """
        nodes, node_weights = np.polynomial.hermite.hermgauss(12)
        node_weights = node_weights / np.sqrt(np.pi)
        n_users, n_actions = users_z.shape[0], actions_z.shape[0]
        mean = np.zeros((n_users, n_actions))
        std = np.zeros((n_users, n_actions)) if with_std else None
        budget = max(1, self.config.max_pairs_per_chunk // 12)
        buffer: NDArray[np.float64] | None = None
        for chunk in user_chunks(n_users, n_actions, budget):
            mu, var = self._latent_moments(users_z[chunk], actions_z)  # var: a new array, overwritten below
            size = mu.size * nodes.size
            if buffer is None or buffer.size < size:
                buffer = np.empty(size)
            probs = buffer[:size].reshape(*mu.shape, nodes.size)
            sd = np.sqrt(np.multiply(2.0, var, out=var), out=var)
            np.multiply(sd[..., None], nodes, out=probs)
            np.add(mu[..., None], probs, out=probs)
            np.negative(probs, out=probs)  # sigmoid(x) = exp(-logaddexp(0, -x)), as _features.sigmoid
            np.logaddexp(0.0, probs, out=probs)
            np.negative(probs, out=probs)
            np.exp(probs, out=probs)
            first = probs @ node_weights
            mean[chunk] = first
            if std is not None:
                std[chunk] = np.sqrt(np.maximum((probs**2) @ node_weights - first**2, 0.0))
        return np.clip(mean, 0.0, 1.0), std

    def predict_with_uncertainty(
        self, users: NDArray[np.float64], embeddings: NDArray[np.float32], *, space: str = "probability"
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Posterior mean and standard deviation of the click probability (or of the logit).

        Args:
            users: User features, shape (n_users, d_user).
            embeddings: Action embeddings, shape (n_actions, d_embed).
            space: ``"probability"`` (Gauss-Hermite moments of sigmoid(f); its mean is :meth:`predict`) or
                ``"logit"``.

        Returns:
            ``(mean, std)``, each float64 of shape (n_users, n_actions).
        """
        check_choice("space", space, ("probability", "logit"))
        users_z, actions_z = self._check_predict_inputs(users, embeddings)
        if space == "logit":
            mean, var = self._latent_moments(users_z, actions_z)
            return mean, np.sqrt(var)
        if not self.config.moderated:
            mean, var = self._latent_moments(users_z, actions_z)
            probs = sigmoid(mean)
            return probs, np.sqrt(var) * probs * (1.0 - probs)  # delta method around the posterior mean
        mean, std = self._probability_moments(users_z, actions_z)
        assert std is not None
        return mean, std

    def sample_logits(
        self, users: NDArray[np.float64], embeddings: NDArray[np.float32], n_samples: int, *, rng: np.random.Generator
    ) -> NDArray[np.float64]:
        """Logits of ``n_samples`` functions drawn from the posterior, shape (n_samples, n_users, n_actions)."""
        n_samples = check_int("n_samples", n_samples, low=1)
        users_z, actions_z = self._check_predict_inputs(users, embeddings)
        phi, psi = self._phi(users_z), self._psi(actions_z)
        chol = np.linalg.cholesky(self.cov_ + 1e-12 * np.eye(self.cov_.shape[0]))
        draws = self.coef_.reshape(-1) + rng.standard_normal((n_samples, chol.shape[0])) @ chol.T
        mats = draws.reshape(n_samples, *self.coef_.shape)
        out: NDArray[np.float64] = np.matmul(np.matmul(phi, mats), psi.T)  # two batched products, not an einsum
        return out

    # ------------------------------------------------------------------ persistence

    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        state = {"spectrum_power": self.spectrum_power_, "prior_sds": self.prior_sds_, "n_iter": self.n_iter_}
        return state, {"coef": self.coef_, "cov": self.cov_, "component_scale": self.component_scale_}

    def _restore(self, state: dict[str, Any], arrays: dict[str, NDArray[Any]], folder: Path) -> None:
        self.coef_ = np.asarray(arrays["coef"], dtype=np.float64)
        self.cov_ = np.asarray(arrays["cov"], dtype=np.float64)
        self.component_scale_ = np.asarray(arrays["component_scale"], dtype=np.float64)
        self.spectrum_power_ = float(state["spectrum_power"])
        self.prior_sds_ = {k: float(v) for k, v in state["prior_sds"].items()}
        self.n_iter_ = int(state["n_iter"])
        self.cv_scores_ = []
        self._prepare_cov()
