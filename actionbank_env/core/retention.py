"""Subscriber dynamics of ``ActionBank/Retention-v0``: fatigue, novelty and unsubscribes, for many subscribers at once.

A subscriber is one user of the world (fixed features ``x``) who receives at most one email a week. The world's
ground truth gives P(click | x, a) of a fresh, rested subscriber; this module modulates it by the subscriber's
state and decides who unsubscribes. Everything is a pure, vectorised function of state arrays for ``n``
subscribers (one row each), so the single env (a batch of one) and its native vector twin share every line.

The week ``t`` of a subscriber, with ``f`` its fatigue and ``E`` its exposure to each message of the bank:

- click probability of message ``a``: ``p(x, a) * exp(-fatigue_click * f) * (1 - novelty_penalty * r_a)``,
  where ``r_a = min(1, (E @ S)[a])`` is how recently it (or a text close to it) was sent and ``S`` the bank's
  similarity matrix (1 on the diagonal, ``(cos - novelty_similarity) / (1 - novelty_similarity)`` above the
  threshold, 0 below); sending nothing has probability 0;
- unsubscribe hazard of a send: ``unsubscribe_base * exp(unsubscribe_fatigue * f) * (1 + unsubscribe_irrelevance
  * max(0, 1 - p_a / relevance_ctr))``, rising with fatigue and with irrelevant mail (low click probability);
  a week without email has the inactivity hazard ``inactivity_churn`` once the subscriber has not been mailed for
  ``inactivity_weeks`` weeks (0 by default);
- after the week: ``f <- fatigue_decay * (f + sent)`` and ``E <- novelty_decay * (E + onehot(a))``.

Each week draws two uniforms per subscriber (click, then unsubscribe) from the episode's generator, whether or
not an email is sent, so a subscriber's stream does not depend on the actions.

The defaults and their sources are listed in the README ("Retention-v0").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_int, check_prob, check_real, check_str
from actionbank_env.core.campaign import CampaignResult
from actionbank_env.core.observations import ObservationLog
from actionbank_env.errors import ConfigError, ConfigTypeError

if TYPE_CHECKING:
    from actionbank_env.core.actions import ActionBank
    from actionbank_env.core.ground_truth import GroundTruth
    from actionbank_env.core.users import UserBatch
    from actionbank_env.protocols import TargetingAgent

__all__ = [
    "DEFAULT_HORIZON",
    "HISTORY_WEEKS",
    "RetentionCampaignConfig",
    "RetentionCampaignResult",
    "RetentionDynamics",
    "RetentionState",
    "StepOutcome",
    "action_hazards",
    "Continuation",
    "current_click_probs",
    "expected_clicks_ahead",
    "fatigue_sensitivity",
    "hazards",
    "myopic_actions",
    "observation_dim",
    "observations",
    "run_retention_campaign",
    "similarity_matrix",
    "step",
]

#: Weeks of a subscriber's lifetime unless configured otherwise (Retention-v0's ``horizon``).
DEFAULT_HORIZON = 26

#: Weeks of the observable send and click history ("emails and clicks in the last 4 weeks").
HISTORY_WEEKS = 4
#: Observable state features after the user features: weeks since last email, emails and clicks in the last
#: 4 weeks, tenure (each scaled to [0, 1]); the last message's projection follows.
_N_STATE_FEATURES = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionDynamics:
    """How subscribers tire, get bored of repeats and unsubscribe (one week per step).

    The defaults follow published email-marketing figures where there are some (README, "Retention-v0"); the
    strength of fatigue is an assumption, set on development worlds (seeds 0-2) so that mailing less often pays
    for part of the subscribers, never on the measurement seeds. The figures: unsubscribes of 0.1-0.5 % per
    delivered email (Campaign Monitor, Mailchimp and LINK Mobility benchmarks);
    "too many emails" (26 % in general, 19 % from this company) and "not relevant" (21 %) as the top reasons to
    unsubscribe and "boring or repetitive" among the next (MarketingSherpa consumer survey, 2017); a weekly cadence
    as the frequency most subscribers prefer (Mapp Digital survey, 2016: 40 % chose weekly); and wear-out of
    response with email frequency (Zhang, Kumar and Cosguner, "Dynamically Managing a Profitable Email Marketing
    Program", Journal of Marketing Research 54(6), 2017).

    Attributes:
        fatigue_decay: Share of fatigue left after a week (0.5: half-life of one week). Fatigue is the decayed
            count of past emails, so a subscriber mailed every week settles at ``fatigue_decay / (1 - fatigue_decay)``.
        fatigue_click: Click probability falls by ``exp(-fatigue_click * sensitivity * fatigue)``. With the
            defaults a subscriber of average sensitivity mailed every week keeps ``exp(-1) = 0.37`` of a rested
            subscriber's click probability per email (0.72 when mailed every other week), so for about half of
            the subscribers (sensitivity above 1) weekly mail gives fewer clicks in total than fortnightly mail.
            An assumption in line with the surveys above, not a measured figure.
        sensitivity_feature: User feature that lowers a subscriber's sensitivity to fatigue (loyal customers
            tolerate more mail).
        sensitivity_slope: Sensitivity is ``exp(-sensitivity_slope * (feature - 0.5))``: 1 at a feature value of
            0.5, 3.3 at 0.2, 0.25 at 0.85; 0 makes every subscriber equally sensitive.
        novelty_decay: Share of a message's exposure left after a week.
        novelty_penalty: Largest fractional loss of click probability for a message sent last week (or one at
            least as similar); 0 turns novelty off.
        novelty_similarity: Cosine similarity of two texts above which sending one counts (partly) as a repeat
            of the other; 1 means only the same text counts.
        unsubscribe_base: Unsubscribe probability of an email to a rested subscriber for whom it is relevant.
        unsubscribe_fatigue: The hazard of an email rises by ``exp(unsubscribe_fatigue * sensitivity * fatigue)``.
        unsubscribe_irrelevance: The hazard of an email is multiplied by ``1 + unsubscribe_irrelevance *
            max(0, 1 - p / relevance_ctr)``, ``p`` its click probability: an email nobody would click triples it
            with the default 2.
        relevance_ctr: Click probability at which an email stops counting as irrelevant; ``None``: the world's
            configured base CTR.
        inactivity_weeks: Weeks without email after which the inactivity hazard applies.
        inactivity_churn: Weekly probability that a subscriber not mailed for ``inactivity_weeks`` weeks lapses
            (forgets the brand, abandons the address); 0 turns it off.
        subscriber_value: Added to the reward of every week the subscriber stays subscribed (in clicks); 0 makes
            the reward the click alone.

    Example:
        >>> RetentionDynamics().fatigue_decay
        0.5
        >>> RetentionDynamics(unsubscribe_base=1.5)
        Traceback (most recent call last):
        ...
        actionbank_env.errors.ConfigError: RetentionDynamics.unsubscribe_base must be a float >= 0.0 and <= 1.0, got 1.5.
    """

    fatigue_decay: float = 0.5
    fatigue_click: float = 1.0
    sensitivity_feature: str = "brand_loyalty"
    sensitivity_slope: float = 4.0
    novelty_decay: float = 0.5
    novelty_penalty: float = 0.5
    novelty_similarity: float = 0.8
    unsubscribe_base: float = 0.001
    unsubscribe_fatigue: float = 0.5
    unsubscribe_irrelevance: float = 2.0
    relevance_ctr: float | None = None
    inactivity_weeks: int = 8
    inactivity_churn: float = 0.0
    subscriber_value: float = 0.0

    def __post_init__(self) -> None:
        check_prob("RetentionDynamics.fatigue_decay", self.fatigue_decay)
        check_real("RetentionDynamics.fatigue_click", self.fatigue_click, low=0.0, high=10.0)
        check_str("RetentionDynamics.sensitivity_feature", self.sensitivity_feature)
        check_real("RetentionDynamics.sensitivity_slope", self.sensitivity_slope, low=0.0, high=20.0)
        check_prob("RetentionDynamics.novelty_decay", self.novelty_decay)
        check_prob("RetentionDynamics.novelty_penalty", self.novelty_penalty)
        check_real("RetentionDynamics.novelty_similarity", self.novelty_similarity, low=-1.0, high=1.0)
        check_prob("RetentionDynamics.unsubscribe_base", self.unsubscribe_base)
        check_real("RetentionDynamics.unsubscribe_fatigue", self.unsubscribe_fatigue, low=0.0, high=10.0)
        check_real("RetentionDynamics.unsubscribe_irrelevance", self.unsubscribe_irrelevance, low=0.0, high=1000.0)
        if self.relevance_ctr is not None:
            check_prob("RetentionDynamics.relevance_ctr", self.relevance_ctr, open_low=True)
        check_int("RetentionDynamics.inactivity_weeks", self.inactivity_weeks, low=1)
        check_prob("RetentionDynamics.inactivity_churn", self.inactivity_churn)
        check_real("RetentionDynamics.subscriber_value", self.subscriber_value, low=0.0, high=1000.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``RetentionDynamics(**d)`` reads it back."""
        return asdict(self)

    def resolve(self, feature_names: Sequence[str], base_ctr: float) -> tuple[int, float]:
        """The column of ``sensitivity_feature`` among ``feature_names`` and the relevance CTR (``base_ctr`` if unset).

        Raises:
            ConfigError: If the world has no feature ``sensitivity_feature``.
        """
        names = list(feature_names)
        if self.sensitivity_feature not in names:
            raise ConfigError(
                f"RetentionDynamics.sensitivity_feature must be one of the world's features {names}, "
                f"got {self.sensitivity_feature!r}."
            )
        relevance = self.relevance_ctr if self.relevance_ctr is not None else base_ctr
        return names.index(self.sensitivity_feature), float(relevance)


def similarity_matrix(embeddings: NDArray[np.floating[Any]], threshold: float) -> NDArray[np.float64]:
    """How much sending message ``b`` counts as sending message ``a``, shape (K, K), in [0, 1].

    ``S[a, b] = clip((cos(a, b) - threshold) / (1 - threshold), 0, 1)`` off the diagonal and 1 on it (a text
    always repeats itself; identical texts with equal embeddings count fully).

    Args:
        embeddings: Bank embeddings, shape (K, d_embed).
        threshold: Cosine similarity at and below which two texts do not repeat each other.

    Example:
        >>> similarity_matrix(np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]]), 0.9).round(2).tolist()
        [[1.0, 0.95, 0.0], [0.95, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    unit = emb / np.where(norms > 0, norms, 1.0)
    cos = unit @ unit.T
    if threshold >= 1.0:
        sim = np.zeros_like(cos)
    else:
        sim = np.clip((cos - threshold) / (1.0 - threshold), 0.0, 1.0)
    np.fill_diagonal(sim, 1.0)
    return sim


@dataclass(slots=True)
class RetentionState:
    """The state of ``n`` subscribers (one row each); arrays are updated in place by :func:`step`.

    Attributes:
        users: User features, float64, shape (n, d_user) (fixed for a subscriber's lifetime).
        sensitivity: How strongly fatigue acts on each subscriber (see :func:`fatigue_sensitivity`), shape (n,).
        base_probs: Ground-truth P(click | x, a) of a rested subscriber for every bank message, shape (n, K).
        fatigue: Decayed count of past emails, shape (n,).
        exposure: Decayed count of past sends of each message, shape (n, K).
        week: Weeks since subscription (tenure), int64, shape (n,).
        last_send_week: Week of the last email, -1 if none, int64, shape (n,).
        last_action: Bank index of the last email, -1 if none, int64, shape (n,).
        recent_sends: Emails of the last ``HISTORY_WEEKS`` weeks (ring buffer indexed by ``week % 4``), (n, 4).
        recent_clicks: Clicks of the last ``HISTORY_WEEKS`` weeks, same layout, (n, 4).
    """

    users: NDArray[np.float64]
    sensitivity: NDArray[np.float64]
    base_probs: NDArray[np.float64]
    fatigue: NDArray[np.float64]
    exposure: NDArray[np.float64]
    week: NDArray[np.int64]
    last_send_week: NDArray[np.int64]
    last_action: NDArray[np.int64]
    recent_sends: NDArray[np.float64]
    recent_clicks: NDArray[np.float64]

    @classmethod
    def new(
        cls,
        users: NDArray[np.float64],
        base_probs: NDArray[np.float64],
        sensitivity: NDArray[np.float64] | None = None,
    ) -> RetentionState:
        """Fresh subscribers (week 0, rested, never mailed) with their ground-truth click probabilities.

        Args:
            users: User features, shape (n, d_user).
            base_probs: Ground-truth click probabilities of the bank, shape (n, K).
            sensitivity: Fatigue sensitivity per subscriber, shape (n,); ``None``: 1 for everyone.

        Example:
            >>> s = RetentionState.new(np.zeros((2, 8)), np.full((2, 3), 0.1))
            >>> s.fatigue.tolist(), s.week.tolist(), s.recent_sends.shape
            ([0.0, 0.0], [0, 0], (2, 4))
        """
        n, k = base_probs.shape
        return cls(
            users=np.array(users, dtype=np.float64),
            sensitivity=np.ones(n) if sensitivity is None else np.array(sensitivity, dtype=np.float64),
            base_probs=np.array(base_probs, dtype=np.float64),
            fatigue=np.zeros(n),
            exposure=np.zeros((n, k)),
            week=np.zeros(n, dtype=np.int64),
            last_send_week=np.full(n, -1, dtype=np.int64),
            last_action=np.full(n, -1, dtype=np.int64),
            recent_sends=np.zeros((n, HISTORY_WEEKS)),
            recent_clicks=np.zeros((n, HISTORY_WEEKS)),
        )

    @property
    def n(self) -> int:
        """Number of subscribers."""
        return int(self.fatigue.shape[0])

    def replace_rows(self, rows: NDArray[np.int64], fresh: RetentionState) -> None:
        """Overwrite subscribers ``rows`` with the (fresh) subscribers of ``fresh``, in order."""
        for name in self.__slots__:
            getattr(self, name)[rows] = getattr(fresh, name)

    def copy(self) -> RetentionState:
        """A deep copy (every array copied)."""
        return RetentionState(*(getattr(self, name).copy() for name in self.__slots__))


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one week did to each subscriber (arrays of shape (n,) unless noted).

    Attributes:
        click_probs: Click probability of every action at decision time, shape (n, K + 1) (the last column,
            sending nothing, is 0).
        click_prob: That of the chosen action.
        hazard: Unsubscribe (or lapse) probability of the chosen action.
        clicks: 1.0 for a click.
        unsubscribed: True where the subscriber left (the episode ends, ``terminated``).
        rewards: ``clicks`` plus ``subscriber_value`` for every subscriber still subscribed.
        fatigue: Fatigue at decision time (hidden state, ground truth).
    """

    click_probs: NDArray[np.float64]
    click_prob: NDArray[np.float64]
    hazard: NDArray[np.float64]
    clicks: NDArray[np.float64]
    unsubscribed: NDArray[np.bool_]
    rewards: NDArray[np.float64]
    fatigue: NDArray[np.float64]


def fatigue_sensitivity(
    users: NDArray[np.float64], feature_index: int, dynamics: RetentionDynamics
) -> NDArray[np.float64]:
    """Each subscriber's sensitivity to fatigue, ``exp(-sensitivity_slope * (users[:, feature_index] - 0.5))``.

    Example:
        >>> fatigue_sensitivity(np.array([[0.5], [0.2]]), 0, RetentionDynamics()).round(2).tolist()
        [1.0, 3.32]
    """
    return np.exp(-dynamics.sensitivity_slope * (users[:, feature_index] - 0.5))


def current_click_probs(
    state: RetentionState, dynamics: RetentionDynamics, similarity: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Click probability of every action now, shape (n, K + 1); the last column (send nothing) is 0.

    Args:
        state: The subscribers.
        dynamics: The dynamics' parameters.
        similarity: The bank's :func:`similarity_matrix`, shape (K, K).

    Example:
        >>> s = RetentionState.new(np.zeros((1, 8)), np.array([[0.1, 0.2]]))
        >>> current_click_probs(s, RetentionDynamics(), np.eye(2)).tolist()
        [[0.1, 0.2, 0.0]]
    """
    n, k = state.base_probs.shape
    fatigue = np.exp(-dynamics.fatigue_click * state.sensitivity * state.fatigue)[:, None]
    if dynamics.novelty_penalty > 0.0:
        # 1 - penalty * min(1, E @ S) = max(1 - penalty * (E @ S), 1 - penalty): one matrix product, two passes.
        probs = state.exposure @ (-dynamics.novelty_penalty * similarity)
        probs += 1.0
        np.maximum(probs, 1.0 - dynamics.novelty_penalty, out=probs)
        probs *= state.base_probs
        probs *= fatigue
    else:
        probs = state.base_probs * fatigue
    out = np.empty((n, k + 1))
    out[:, :k] = probs
    out[:, k] = 0.0
    return out


def hazards(
    state: RetentionState,
    dynamics: RetentionDynamics,
    click_probs: NDArray[np.float64],
    relevance_ctr: float,
) -> NDArray[np.float64]:
    """Unsubscribe (lapse) probability of every action now, shape (n, K + 1), from :func:`current_click_probs`.

    Example:
        >>> s = RetentionState.new(np.zeros((1, 8)), np.array([[0.0, 0.05]]))
        >>> hazards(s, RetentionDynamics(), np.array([[0.0, 0.05, 0.0]]), 0.05).round(4).tolist()
        [[0.003, 0.001, 0.0]]
    """
    k = click_probs.shape[1] - 1
    out = np.empty_like(click_probs)
    send = out[:, :k]
    np.divide(click_probs[:, :k], -relevance_ctr, out=send)
    send += 1.0
    np.maximum(send, 0.0, out=send)
    send *= dynamics.unsubscribe_irrelevance
    send += 1.0
    send *= _fatigue_hazard(state, dynamics)[:, None]
    np.minimum(send, 1.0, out=send)
    out[:, k] = _inactivity_hazard(state, dynamics)
    return out


def action_hazards(
    state: RetentionState,
    dynamics: RetentionDynamics,
    actions: NDArray[np.int64],
    click_prob: NDArray[np.float64],
    relevance_ctr: float,
) -> NDArray[np.float64]:
    """The column ``actions`` of :func:`hazards` (one action per subscriber) without computing the others, (n,).

    Args:
        state: The subscribers.
        dynamics: The dynamics' parameters.
        actions: Action per subscriber (K sends nothing), shape (n,).
        click_prob: Click probability of each subscriber's action now, shape (n,).
        relevance_ctr: Click probability below which an email counts as irrelevant.

    Example:
        >>> s = RetentionState.new(np.zeros((2, 8)), np.array([[0.0, 0.05], [0.0, 0.05]]))
        >>> action_hazards(s, RetentionDynamics(), np.array([0, 2]), np.array([0.0, 0.0]), 0.05).round(4).tolist()
        [0.003, 0.0]
    """
    k = state.base_probs.shape[1]
    irrelevance = np.maximum(1.0 - click_prob / relevance_ctr, 0.0)
    irrelevance *= dynamics.unsubscribe_irrelevance
    irrelevance += 1.0
    send = _fatigue_hazard(state, dynamics)
    send *= irrelevance
    np.minimum(send, 1.0, out=send)
    return np.where(actions < k, send, _inactivity_hazard(state, dynamics))


def _fatigue_hazard(state: RetentionState, dynamics: RetentionDynamics) -> NDArray[np.float64]:
    """Hazard of a relevant email at the subscriber's fatigue, shape (n,)."""
    out: NDArray[np.float64] = dynamics.unsubscribe_base * np.exp(
        dynamics.unsubscribe_fatigue * state.sensitivity * state.fatigue
    )
    return out


def _inactivity_hazard(state: RetentionState, dynamics: RetentionDynamics) -> NDArray[np.float64] | float:
    """Hazard of a week without email: ``inactivity_churn`` once the gap reaches ``inactivity_weeks``."""
    if dynamics.inactivity_churn <= 0.0:
        return 0.0
    # Resting this week makes the gap since the last email (or since subscribing) week - last + 1 weeks.
    gap = state.week - state.last_send_week
    out: NDArray[np.float64] = np.where(gap >= dynamics.inactivity_weeks, dynamics.inactivity_churn, 0.0)
    return out


def step(
    state: RetentionState,
    actions: NDArray[np.int64],
    uniforms: NDArray[np.float64],
    dynamics: RetentionDynamics,
    similarity: NDArray[np.float64],
    relevance_ctr: float,
) -> StepOutcome:
    """Advance every subscriber by one week (in place) and return what happened.

    Args:
        state: The subscribers; updated in place.
        actions: Action per subscriber, int64 (n,): a bank index in [0, K) sends that message, K sends nothing.
        uniforms: Shape (2, n): the click uniforms, then the unsubscribe uniforms.
        dynamics: The dynamics' parameters.
        similarity: The bank's :func:`similarity_matrix`, shape (K, K).
        relevance_ctr: Click probability below which an email counts as irrelevant.

    Returns:
        The week's :class:`StepOutcome` (probabilities and hazard at decision time).

    Example:
        >>> s = RetentionState.new(np.zeros((2, 8)), np.full((2, 2), 0.5))
        >>> out = step(s, np.array([0, 2]), np.array([[0.1, 0.1], [0.9, 0.9]]), RetentionDynamics(), np.eye(2), 0.05)
        >>> out.clicks.tolist(), s.fatigue.tolist(), s.week.tolist()
        ([1.0, 0.0], [0.5, 0.0], [1, 1])
    """
    n, k = state.base_probs.shape
    rows = np.arange(n)
    probs = current_click_probs(state, dynamics, similarity)
    chosen = probs[rows, actions]
    hazard = action_hazards(state, dynamics, actions, chosen, relevance_ctr)
    clicks = (uniforms[0] < chosen).astype(np.float64)
    unsubscribed = uniforms[1] < hazard
    fatigue = state.fatigue.copy()
    sent = actions < k
    sent_f = sent.astype(np.float64)
    # State update: fatigue and exposure decay after this week's email is added.
    state.fatigue += sent_f
    state.fatigue *= dynamics.fatigue_decay
    sent_rows = rows[sent]
    state.exposure[sent_rows, actions[sent]] += 1.0
    state.exposure *= dynamics.novelty_decay
    slot = state.week % HISTORY_WEEKS
    state.recent_sends[rows, slot] = sent_f
    state.recent_clicks[rows, slot] = clicks
    state.last_send_week[sent] = state.week[sent]
    state.last_action[sent] = actions[sent]
    state.week += 1
    rewards = clicks
    if dynamics.subscriber_value > 0.0:
        rewards = clicks + np.where(unsubscribed, 0.0, dynamics.subscriber_value)
    return StepOutcome(probs, chosen, hazard, clicks, unsubscribed, rewards, fatigue)


#: A rule that picks every subscriber's action from the current click probabilities (n, K + 1) and the state:
#: core action indices (n,), ``K`` for no email (what :func:`expected_clicks_ahead` follows after the first week).
Continuation = Callable[[NDArray[np.float64], RetentionState], NDArray[np.int64]]


def myopic_actions(probs: NDArray[np.float64], state: RetentionState) -> NDArray[np.int64]:
    """The oracle-myopic rule: every subscriber gets its best message now (a :data:`Continuation`).

    Example:
        >>> s = RetentionState.new(np.zeros((2, 8)), np.array([[0.1, 0.3], [0.2, 0.1]]))
        >>> myopic_actions(np.array([[0.1, 0.3, 0.0], [0.2, 0.1, 0.0]]), s).tolist()
        [1, 0]
    """
    k = state.base_probs.shape[1]
    out: NDArray[np.int64] = probs[:, :k].argmax(axis=1).astype(np.int64)
    return out


def expected_clicks_ahead(
    state: RetentionState,
    first_actions: NDArray[np.int64],
    continuation: Continuation,
    dynamics: RetentionDynamics,
    similarity: NDArray[np.float64],
    relevance_ctr: float,
    horizon: int,
) -> NDArray[np.float64]:
    """Expected reward over the rest of each subscriber's lifetime: ``first_actions`` this week, then ``continuation``.

    Exact, not sampled: fatigue, exposure, and so the click probabilities and hazards that follow, depend on the
    actions alone (a click changes only the observable history), so a rule of the state gives each subscriber one
    deterministic path, and its expected clicks are ``sum_t S_t p_t`` with ``S_t = prod_{u<t} (1 - h_u)`` the
    probability of still being subscribed (plus ``subscriber_value`` for each week survived). This is the
    ground truth an evaluation-only planner needs (e.g. a rollout over the oracle-myopic rule); agents never see it.

    Args:
        state: The subscribers now (not modified: a copy is advanced).
        first_actions: Core action per subscriber this week, int64 (n,) (``K``: no email).
        continuation: The rule for every later week (e.g. :func:`myopic_actions`).
        dynamics: The dynamics' parameters.
        similarity: The bank's :func:`similarity_matrix`, shape (K, K).
        relevance_ctr: Click probability below which an email counts as irrelevant.
        horizon: Weeks of a lifetime; a subscriber at week ``w`` has ``horizon - w`` weeks left.

    Returns:
        Expected reward per subscriber until the horizon, shape (n,).

    Example:
        >>> s = RetentionState.new(np.full((1, 8), 0.5), np.array([[0.1, 0.1]]))
        >>> d, sim = RetentionDynamics(unsubscribe_base=0.0), np.eye(2)
        >>> rest = expected_clicks_ahead(s, np.array([2]), myopic_actions, d, sim, 0.05, horizon=2)
        >>> send = expected_clicks_ahead(s, np.array([0]), myopic_actions, d, sim, 0.05, horizon=2)
        >>> float(rest[0]), round(float(send[0]), 4)  # rest, then 0.1; or 0.1, then message 1 at fatigue 0.5
        (0.1, 0.1607)
    """
    sim = state.copy()
    n = sim.n
    uniforms = np.ones((2, n))  # no click, no unsubscribe: the path; the probabilities are accumulated instead
    value = np.zeros(n)
    survival = np.ones(n)
    actions = np.asarray(first_actions, dtype=np.int64)
    weeks = int(max(0, horizon - int(sim.week.min()))) if n else 0
    for i in range(weeks):
        live = sim.week < horizon
        out = step(sim, actions, uniforms, dynamics, similarity, relevance_ctr)
        gain = out.click_prob.copy()
        stays = 1.0 - out.hazard
        if dynamics.subscriber_value > 0.0:
            gain += dynamics.subscriber_value * stays
        value += np.where(live, survival * gain, 0.0)
        survival *= np.where(live, stays, 1.0)
        if i + 1 < weeks:
            actions = continuation(current_click_probs(sim, dynamics, similarity), sim)
    return value


def observation_dim(d_user: int, message_obs_dim: int) -> int:
    """Length of the flat observation: user features, 4 state features, the last message's projection."""
    return d_user + _N_STATE_FEATURES + message_obs_dim


def observations(
    state: RetentionState, horizon: int, message_features: NDArray[np.float32], out: NDArray[np.float32] | None = None
) -> NDArray[np.float32]:
    """The observable state of every subscriber, float32 (n, d_user + 4 + d_msg), all in [-1, 1].

    Columns: the user's features; weeks since the last email / horizon, capped at 1 (1 if never mailed: a
    new subscriber is as rested as one not mailed for a lifetime); emails and clicks in the last 4 weeks / 4; tenure (weeks since subscribing) / horizon, capped
    at 1; the fixed projection of the last email's embedding (zeros if none).

    Args:
        state: The subscribers.
        horizon: Weeks of a lifetime (the scale of the week counts).
        message_features: Projected bank embeddings with a trailing zero row for "no email yet", (K + 1, d_msg).
        out: Optional output array of the right shape (written and returned).

    Example:
        >>> s = RetentionState.new(np.full((1, 2), 0.5), np.full((1, 3), 0.1))
        >>> observations(s, 26, np.zeros((4, 2), np.float32)).tolist()
        [[0.5, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    """
    n, d_user = state.users.shape
    d_msg = message_features.shape[1]
    if out is None:
        out = np.empty((n, d_user + _N_STATE_FEATURES + d_msg), dtype=np.float32)
    out[:, :d_user] = state.users
    scale = 1.0 / horizon
    since = np.where(state.last_send_week >= 0, state.week - state.last_send_week, horizon)
    out[:, d_user] = np.minimum(since * scale, 1.0)
    out[:, d_user + 1] = state.recent_sends.sum(axis=1) * (1.0 / HISTORY_WEEKS)
    out[:, d_user + 2] = state.recent_clicks.sum(axis=1) * (1.0 / HISTORY_WEEKS)
    out[:, d_user + 3] = np.minimum(state.week * scale, 1.0)
    out[:, d_user + _N_STATE_FEATURES :] = message_features[state.last_action]
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionCampaignConfig:
    """Run a campaign as subscribers' lifetimes (``BankDesignConfig.retention``): each user of the campaign is a
    subscriber mailed once a week for ``horizon`` weeks by the company's targeting agent, under
    :class:`RetentionDynamics`, so a bank is judged by the clicks it earns over lifetimes, not by one email.

    Attributes:
        horizon: Weeks of each subscriber's lifetime (fewer if the subscriber unsubscribes).
        dynamics: Fatigue, novelty and unsubscribe parameters.

    Example:
        >>> RetentionCampaignConfig(horizon=0)
        Traceback (most recent call last):
        ...
        actionbank_env.errors.ConfigError: RetentionCampaignConfig.horizon must be an int >= 1 and <= 100000, got 0.
    """

    horizon: int = DEFAULT_HORIZON
    dynamics: RetentionDynamics = field(default_factory=RetentionDynamics)

    def __post_init__(self) -> None:
        check_int("RetentionCampaignConfig.horizon", self.horizon, low=1, high=100_000)
        if not isinstance(self.dynamics, RetentionDynamics):
            raise ConfigTypeError(
                f"RetentionCampaignConfig.dynamics must be a RetentionDynamics, got {type(self.dynamics).__name__}."
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionCampaignResult(CampaignResult):
    """A retention campaign: the log has one row per email (subscriber-week); the ground-truth arrays are per
    subscriber and summed over its lifetime.

    ``served_probs`` is each subscriber's expected clicks over its lifetime (the click probability of every email
    it got, fatigue and novelty included), so ``deployed_value`` is the expected lifetime clicks per subscriber;
    ``best_probs`` and ``mean_probs`` sum the best and the mean click probability of the bank over the same
    weeks (perfect and random targeting week by week along the subscriber's actual path).

    Attributes:
        unsubscribed: Whether each subscriber unsubscribed before the horizon, shape (n,).
        weeks: Weeks each subscriber stayed subscribed (emails received), shape (n,).
    """

    unsubscribed: NDArray[np.bool_]
    weeks: NDArray[np.int64]

    def summary(self) -> dict[str, float]:
        """:meth:`CampaignResult.summary` (``company_reward`` is clicks per email, the values are per subscriber
        over its lifetime) plus ``subscribers``, ``unsubscribe_rate`` and ``weeks_subscribed``."""
        n = self.unsubscribed.size
        return {
            **CampaignResult.summary(self),
            "subscribers": float(n),
            "unsubscribe_rate": float(self.unsubscribed.mean()) if n else float("nan"),
            "weeks_subscribed": float(self.weeks.mean()) if n else float("nan"),
        }


def run_retention_campaign(
    ground_truth: GroundTruth,
    bank: ActionBank,
    agent: TargetingAgent,
    users: UserBatch,
    *,
    config: RetentionCampaignConfig,
    sensitivity_index: int,
    relevance_ctr: float,
    rng: np.random.Generator,
    batch_size: int = 32,
    iteration: int = 0,
    learn: bool = True,
) -> RetentionCampaignResult:
    """Mail ``users`` as subscribers once a week for ``config.horizon`` weeks with ``agent``; unsubscribes end a lifetime.

    Every week the agent decides for the subscribers still subscribed, in mini-batches of ``batch_size`` on their
    user features (as :func:`~actionbank_env.core.campaign.run_campaign` does: it acts, sees the clicks through
    ``update``, then acts on the next mini-batch); the clicks and unsubscribes follow :func:`step`. The company's
    agent always sends a message of the bank (it is the targeting agent of Targeting-v0; resting is a policy of
    Retention-v0's own). Two uniforms per subscriber are drawn from ``rng`` each week (see :func:`step`).

    Args:
        ground_truth: The world's click model (rested subscribers' click probabilities).
        bank: The deployed bank; ``agent.set_bank(bank)`` must have been called by the caller.
        agent: The company's targeting agent.
        users: The subscribers, in arrival order.
        config: Horizon and dynamics.
        sensitivity_index: Column of ``dynamics.sensitivity_feature`` (see :meth:`RetentionDynamics.resolve`).
        relevance_ctr: Click probability below which an email counts as irrelevant.
        rng: Draws clicks and unsubscribes.
        batch_size: Subscribers per act/update round.
        iteration: Recorded in the log.
        learn: Call ``agent.update`` after each mini-batch.

    Returns:
        The log (one row per email) and the per-subscriber ground-truth evaluation.
    """
    batch_size = check_int("batch_size", batch_size, low=1)
    n, k = len(users), len(bank)
    if k == 0:
        raise ConfigError("bank must contain at least one action, got an empty bank.")
    dynamics = config.dynamics
    features = np.asarray(users.features, dtype=np.float64)
    base = np.asarray(ground_truth.click_prob(features, bank.embeddings), dtype=np.float64)
    state = RetentionState.new(features, base, fatigue_sensitivity(features, sensitivity_index, dynamics))
    similarity = similarity_matrix(bank.embeddings, dynamics.novelty_similarity)
    alive = np.ones(n, dtype=np.bool_)
    served, best, mean = np.zeros(n), np.zeros(n), np.zeros(n)
    weeks = np.zeros(n, dtype=np.int64)
    unsubscribed = np.zeros(n, dtype=np.bool_)
    chunks: dict[str, list[NDArray[Any]]] = {"rows": [], "actions": [], "propensities": [], "clicks": []}
    metric_sums: dict[str, float] = {}
    n_updates = 0
    for _ in range(config.horizon):
        rows = np.flatnonzero(alive)
        if rows.size == 0:
            break
        uniforms = rng.random((2, n))
        probs = current_click_probs(state, dynamics, similarity)[:, :k]
        actions = np.full(n, k, dtype=np.int64)  # the unsubscribed get nothing
        propensities = np.ones(n)
        for start in range(0, rows.size, batch_size):
            batch = rows[start : start + batch_size]
            x = features[batch]
            decision = agent.act(x)
            chosen = _checked_actions(agent, decision, batch.size, k)
            actions[batch] = chosen
            propensities[batch] = decision.propensities
            if learn:
                clicks = (uniforms[0, batch] < probs[batch, chosen]).astype(np.float64)
                for key, value in (agent.update(x, chosen, clicks) or {}).items():
                    metric_sums[key] = metric_sums.get(key, 0.0) + float(value)
                n_updates += 1
        out = step(state, actions, uniforms, dynamics, similarity, relevance_ctr)
        served[rows] += out.click_prob[rows]
        best[rows] += probs[rows].max(axis=1)
        mean[rows] += probs[rows].mean(axis=1)
        weeks[rows] += 1
        left = out.unsubscribed & alive
        unsubscribed |= left
        alive &= ~left
        chunks["rows"].append(rows)
        chunks["actions"].append(actions[rows])
        chunks["propensities"].append(propensities[rows])
        chunks["clicks"].append(out.clicks[rows].astype(np.int8))
    row_users = np.concatenate(chunks["rows"]) if chunks["rows"] else np.zeros(0, dtype=np.int64)
    row_actions = np.concatenate(chunks["actions"]) if chunks["actions"] else np.zeros(0, dtype=np.int64)
    log = ObservationLog()
    log.append(
        iteration=iteration,
        step=np.arange(row_users.size, dtype=np.int64),
        user_id=np.asarray(users.ids)[row_users],
        users=features[row_users],
        action_ids=np.asarray(bank.ids, dtype=object)[row_actions],
        action_index=row_actions,
        propensity=np.concatenate(chunks["propensities"]) if chunks["propensities"] else np.zeros(0),
        click=np.concatenate(chunks["clicks"]) if chunks["clicks"] else np.zeros(0, dtype=np.int8),
    )
    agent_metrics = {key: value / n_updates for key, value in metric_sums.items()} if n_updates else {}
    return RetentionCampaignResult(log, served, best, mean, agent_metrics, unsubscribed=unsubscribed, weeks=weeks)


def _checked_actions(agent: Any, decision: Any, n: int, n_actions: int) -> NDArray[np.int64]:
    """The decision's actions, after the checks of :func:`~actionbank_env.core.campaign.run_campaign`."""
    chosen = getattr(decision, "actions", None)
    if not isinstance(chosen, np.ndarray) or not hasattr(decision, "propensities"):
        raise ConfigTypeError(
            f"{type(agent).__name__}.act must return a Decision(actions, propensities) "
            f"(actionbank_env.protocols.Decision), got {type(decision).__name__}."
        )
    if chosen.shape != (n,) or (chosen.size and (chosen.min() < 0 or chosen.max() >= n_actions)):
        raise ConfigError(f"agent.act must return {n} action indices in [0, {n_actions}), got {chosen!r}.")
    return chosen.astype(np.int64, copy=False)
