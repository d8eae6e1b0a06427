"""The company simulator for one iteration: a targeting agent serves a bank to a batch of users."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_int
from actionbank_env.core.observations import ObservationLog
from actionbank_env.errors import ConfigError, ConfigTypeError

if TYPE_CHECKING:
    from actionbank_env.core.actions import ActionBank
    from actionbank_env.core.ground_truth import GroundTruth
    from actionbank_env.core.users import UserBatch
    from actionbank_env.protocols import TargetingAgent

__all__ = ["CampaignConfig", "CampaignResult", "run_campaign"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignConfig:
    """How each campaign iteration is run.

    Attributes:
        users_per_iteration: Fresh users per campaign iteration (ids stay unique across iterations).
        campaign_batch_size: Users per act/update round of the company's agent (1: a plain sequential bandit).

    Example:
        >>> CampaignConfig(campaign_batch_size=0)
        Traceback (most recent call last):
        ...
        actionbank_env.errors.ConfigError: CampaignConfig.campaign_batch_size must be an int >= 1, got 0.
    """

    users_per_iteration: int = 1000
    campaign_batch_size: int = 32

    def __post_init__(self) -> None:
        check_int("CampaignConfig.users_per_iteration", self.users_per_iteration, low=1, high=100_000_000)
        check_int("CampaignConfig.campaign_batch_size", self.campaign_batch_size, low=1)


@dataclass(frozen=True, slots=True)
class CampaignResult:
    """What one campaign produced.

    Attributes:
        log: The observation log (what the company and the optimizer see).
        served_probs: Ground-truth click probability of what was served to each user, shape (n,).
        best_probs: Ground-truth probability of each user's best action in the bank, shape (n,).
        mean_probs: Ground-truth mean over the bank for each user (random targeting), shape (n,).
        agent_metrics: Mean of the metrics the agent's ``update`` returned.

    The three probability arrays are the evaluation table: agents and optimizers never receive them.
    """

    log: ObservationLog
    served_probs: NDArray[np.float64]
    best_probs: NDArray[np.float64]
    mean_probs: NDArray[np.float64]
    agent_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def deployed_value(self) -> float:
        """Mean true click probability of what was served (the engagement the company got in expectation)."""
        return float(self.served_probs.mean()) if self.served_probs.size else float("nan")

    @property
    def bank_value(self) -> float:
        """Mean true click probability under perfect targeting of these users with this bank."""
        return float(self.best_probs.mean()) if self.best_probs.size else float("nan")

    @property
    def regret(self) -> float:
        """Mean per-user regret of the deployed policy against perfect targeting."""
        return self.bank_value - self.deployed_value

    def summary(self) -> dict[str, float]:
        """JSON-ready numbers: realised CTR, deployed value, bank value, random-targeting value, regret."""
        return {
            "n_users": float(len(self.log)),
            "company_reward": self.log.ctr,
            "deployed_value": self.deployed_value,
            "bank_value": self.bank_value,
            "random_targeting_value": float(self.mean_probs.mean()) if self.mean_probs.size else float("nan"),
            "regret": self.regret,
            **self.agent_metrics,
        }


def run_campaign(
    ground_truth: GroundTruth,
    bank: ActionBank,
    agent: TargetingAgent,
    users: UserBatch,
    *,
    rng: np.random.Generator,
    batch_size: int = CampaignConfig().campaign_batch_size,
    iteration: int = 0,
    learn: bool = True,
) -> CampaignResult:
    """Serve ``bank`` to ``users`` with ``agent`` in mini-batches; draw clicks from the ground truth.

    The agent acts on a mini-batch, sees its clicks through ``update``, then acts on the next one
    (``batch_size=1`` is a plain sequential bandit). Click draws are taken for all users up front, so they
    do not depend on the batch size.

    Args:
        ground_truth: The world's click model.
        bank: The deployed bank; ``agent.set_bank(bank)`` must have been called by the caller.
        agent: The company's targeting agent.
        users: The users of this iteration, in arrival order.
        rng: Draws the clicks.
        batch_size: Users per act/update round.
        iteration: Recorded in the log.
        learn: Call ``agent.update`` after each batch.

    Returns:
        The log and the ground-truth evaluation table.
    """
    batch_size = check_int("batch_size", batch_size, low=1)
    n_users, n_actions = len(users), len(bank)
    if n_actions == 0:
        raise ConfigError("bank must contain at least one action, got an empty bank.")
    uniforms = rng.random(n_users)
    actions = np.empty(n_users, dtype=np.int64)
    propensities = np.empty(n_users, dtype=np.float64)
    served = np.empty(n_users, dtype=np.float64)
    best = np.empty(n_users, dtype=np.float64)
    mean = np.empty(n_users, dtype=np.float64)
    metric_sums: dict[str, float] = {}
    n_updates = 0
    # Ground truth in large blocks (one matrix product each), the agent in mini-batches.
    block = max(batch_size, (1 << 16) // max(n_actions, 1) * 16)
    for block_start in range(0, n_users, block):
        block_stop = min(block_start + block, n_users)
        probs = ground_truth.click_prob(users.features[block_start:block_stop], bank.embeddings)
        best[block_start:block_stop] = probs.max(axis=1)
        mean[block_start:block_stop] = probs.mean(axis=1)
        for start in range(block_start, block_stop, batch_size):
            stop = min(start + batch_size, block_stop)
            features = users.features[start:stop]
            decision = agent.act(features)
            chosen = getattr(decision, "actions", None)
            if not isinstance(chosen, np.ndarray) or not hasattr(decision, "propensities"):
                raise ConfigTypeError(
                    f"{type(agent).__name__}.act must return a Decision(actions, propensities) "
                    f"(actionbank_env.protocols.Decision), got {type(decision).__name__}; e.g. "
                    "return Decision(actions, np.ones(len(actions))) for a deterministic choice."
                )
            if chosen.shape != (stop - start,) or (chosen.size and (chosen.min() < 0 or chosen.max() >= n_actions)):
                raise ConfigError(
                    f"agent.act must return {stop - start} action indices in [0, {n_actions}), got {chosen!r}."
                )
            p = probs[np.arange(start - block_start, stop - block_start), chosen]
            clicks = (uniforms[start:stop] < p).astype(np.float64)
            actions[start:stop] = chosen
            propensities[start:stop] = decision.propensities
            served[start:stop] = p
            if learn:
                metrics = agent.update(features, chosen, clicks)
                for key, value in (metrics or {}).items():
                    metric_sums[key] = metric_sums.get(key, 0.0) + float(value)
                n_updates += 1
    clicks_all = (uniforms < served).astype(np.int8)
    log = ObservationLog()
    log.append(
        iteration=iteration,
        step=np.arange(n_users, dtype=np.int64),
        user_id=users.ids,
        users=users.features,
        action_ids=np.asarray(bank.ids, dtype=object)[actions] if n_users else np.zeros(0, dtype=object),
        action_index=actions,
        propensity=propensities,
        click=clicks_all,
    )
    agent_metrics = {k: v / n_updates for k, v in metric_sums.items()} if n_updates else {}
    return CampaignResult(log, served, best, mean, agent_metrics)
