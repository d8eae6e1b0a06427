"""One off-policy evaluation with its ground truth: every estimate, its interval, the truth and the error.

:func:`evaluate_policy` is the one routine behind ``actionbank ope``, the pre-deployment estimate that
``simulate`` writes for each proposed bank, and ``benchmarks/bench_ope.py``.

The truth is computed through :func:`actionbank_env.evaluation.policy_value` (evaluation.py stays the only
module outside the envs that reads the ground truth); it is the target policy's exact value on the same
logged users the estimators see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env.ope.data import BanditData, TargetPolicy
from actionbank_env.ope.estimators import ESTIMATORS, MODEL_ESTIMATORS, Estimate, OPEConfig, estimate_all
from actionbank_env.ope.policies import crossfit_greedy_policy

if TYPE_CHECKING:
    from actionbank_env.core.ground_truth import GroundTruth
    from actionbank_env.ope.posterior import PosteriorRewardModel
    from actionbank_env.protocols import RewardModel

__all__ = ["OPEReport", "evaluate_policy", "evaluate_greedy_bank"]


@dataclass(frozen=True, slots=True)
class OPEReport:
    """Estimates of one target policy from one log, beside the truth.

    Attributes:
        policy: The target policy's label.
        n_rounds: Logged rows.
        truth: The policy's exact value on the logged users (NaN without a ground truth).
        estimates: ``{estimator: Estimate}``.
        info: Context: share of the target's probability on actions new to the log, folds, settings.
    """

    policy: str
    n_rounds: int
    truth: float
    estimates: dict[str, Estimate]
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: one entry per estimator with estimate, interval, truth, error and coverage."""
        rows = {}
        for name, est in self.estimates.items():
            row = est.to_dict()
            row.pop("estimator")
            if np.isfinite(self.truth):
                row["truth"] = self.truth
                row["error"] = est.value - self.truth
                row["covers_truth"] = est.covers(self.truth)
            rows[name] = row
        return {"policy": self.policy, "n_rounds": self.n_rounds, "truth": self.truth, "estimates": rows, **self.info}

    def table(self) -> str:
        """A plain-text table: estimator, estimate, interval, truth, error."""
        head = f"{'estimator':<16} {'estimate':>9} {'95% interval':>21} {'truth':>8} {'error':>8}"
        lines = [f"policy: {self.policy}  ({self.n_rounds} logged rows)", head, "-" * len(head)]
        for name, e in self.estimates.items():
            interval = f"[{e.ci_low:.4f}, {e.ci_high:.4f}]"
            truth = f"{self.truth:8.4f}" if np.isfinite(self.truth) else f"{'n/a':>8}"
            error = f"{e.value - self.truth:+8.4f}" if np.isfinite(self.truth) else f"{'n/a':>8}"
            lines.append(f"{name:<16} {e.value:9.4f} {interval:>21} {truth} {error}")
        if "share_on_new_actions" in self.info:
            lines.append(f"target probability on texts the log never served: {self.info['share_on_new_actions']:.1%}")
        return "\n".join(lines)


def evaluate_policy(
    data: BanditData,
    policy: TargetPolicy,
    *,
    q_hat_target: NDArray[np.float64] | None = None,
    q_hat_logged: NDArray[np.float64] | None = None,
    ground_truth: GroundTruth | None = None,
    config: OPEConfig | None = None,
    estimators: Sequence[str] | None = None,
    rng: np.random.Generator,
    info: dict[str, Any] | None = None,
    posterior_model: PosteriorRewardModel | None = None,
) -> OPEReport:
    """Every estimator of ``policy`` from ``data`` and, given the ground truth, the policy's true value.

    Model-based estimators are left out when no predictions are given. With ``posterior_model`` (a Bayesian
    reward model fitted on ``data``), the estimators of :data:`~actionbank_env.ope.posterior.BAYES_ESTIMATORS`
    are added (its posterior carries the model's error into their intervals).
    """
    from actionbank_env.evaluation import policy_value

    if estimators is None:
        has_model = q_hat_target is not None and q_hat_logged is not None
        estimators = [e for e in ESTIMATORS if has_model or e not in MODEL_ESTIMATORS]
    estimates = estimate_all(
        data,
        policy,
        q_hat_target=q_hat_target,
        q_hat_logged=q_hat_logged,
        config=config,
        estimators=estimators,
        rng=rng,
    )
    if posterior_model is not None:
        from actionbank_env.ope.posterior import estimate_with_posterior

        estimates.update(estimate_with_posterior(posterior_model, data, policy, config=config, rng=rng.spawn(1)[0]))
    truth = (
        policy_value(ground_truth, data.users, policy.embeddings, policy.probs)
        if ground_truth is not None
        else float("nan")
    )
    new = np.array([a not in set(data.action_ids) for a in policy.action_ids])
    extra = {"share_on_new_actions": float(policy.probs[:, new].sum(axis=1).mean()) if new.any() else 0.0}
    return OPEReport(policy.name, data.n_rounds, truth, estimates, {**extra, **(info or {})})


def evaluate_greedy_bank(
    data: BanditData,
    embeddings: NDArray[np.floating[Any]],
    action_ids: Sequence[str],
    model_factory: Callable[[np.random.Generator], RewardModel],
    *,
    ground_truth: GroundTruth | None = None,
    config: OPEConfig | None = None,
    n_folds: int = 5,
    rng: np.random.Generator,
    name: str = "greedy reward model over the bank",
    posterior_factory: Callable[[np.random.Generator], Any] | None = None,
) -> OPEReport:
    """Estimate a bank's value as a designer uses it: each user gets its best action under a reward model.

    The reward model is cross-fitted (:func:`~actionbank_env.ope.policies.crossfit_greedy_policy`): a model
    fitted on the evaluated rows would make the policy depend on their clicks and bias every estimate.
    ``posterior_factory`` (an unfitted Bayesian reward model from a generator, e.g. ``bayesian_bilinear``) is
    fitted on every logged row and adds the posterior estimators (see :func:`evaluate_policy`).
    """
    fit_rng, est_rng = rng.spawn(2)
    cross = crossfit_greedy_policy(model_factory, data, embeddings, action_ids, n_folds=n_folds, rng=fit_rng, name=name)
    posterior_model = None
    if posterior_factory is not None:
        posterior_model = posterior_factory(est_rng.spawn(1)[0])
        posterior_model.fit(data.users, np.asarray(data.embeddings, np.float32)[data.actions], data.clicks)
    return evaluate_policy(
        data,
        cross.policy,
        q_hat_target=cross.q_hat_target,
        q_hat_logged=cross.q_hat_logged,
        ground_truth=ground_truth,
        config=config,
        rng=est_rng,
        info={"n_folds": n_folds},
        posterior_model=posterior_model,
    )
