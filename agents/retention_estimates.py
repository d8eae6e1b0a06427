"""Deployable stand-ins for Retention-v0's privileged ``"oracle"`` features: a click model fitted on logged clicks.

``RetentionConfig.oracle_features`` hands a policy the ground truth (every slot's click probability now, the
best, the rested best, the hazard of the best send); a policy trained on it cannot be deployed. The standard
model-based alternative learns the targeting *outside* the RL agent, by supervised learning on a log, and gives
the agent the model's estimates:

1. :func:`log_exploration` plays a **logging cohort** (subscribers of the same world, drawn with their own seed,
   never the evaluation cohort) for a lifetime under a documented exploration policy that reads no ground truth:
   each week a subscriber gets nothing with probability ``rest_prob`` and otherwise a message of the bank drawn
   uniformly at random (so the propensity of every logged send is ``(1 - rest_prob) / K``, and fatigue, novelty
   and the observable history vary). It logs what a sender sees: the ``Dict`` observation of each send, the slot
   sent, the click and whether the subscriber unsubscribed that week.
2. :class:`RetentionClickModel` fits P(click now | observation, message) (a small torch network, additive in the
   logit: a bilinear user-by-message targeting term plus fatigue and novelty terms of the observable state) and
   P(unsubscribe | observation, message) (LightGBM; Ke et al., 2017) on that log. Its inputs per (subscriber, slot) are the subscriber observation (user features, weeks since the last
   email, emails and clicks in the last 4 weeks, tenure), the slot's index in the bank (a categorical feature: the
   sender knows which message it is), whether the slot is the last email sent and the cosine of the slot's
   bank-observation row with the last email's (novelty). The last email is identified from the observation alone:
   its projection is the ``"subscriber"`` entry's last ``message_obs_dim`` columns, which equal the first
   ``message_obs_dim`` columns of its ``"bank"`` row (the same fixed principal axes).
3. :class:`EstimatedFeatures` (single env) and :class:`EstimatedFeaturesVector` (the native vector twin, both
   autoreset modes, so it also serves :func:`agents.retention.train_sb3`) add an ``"estimate"`` entry to the
   ``Dict`` observation in exactly the ``"oracle"`` entry's layout: every slot's estimated click probability now,
   the estimated best, the estimated rested best (the model at the observation of a new subscriber, who is rested
   and never mailed, with the same user features) and the estimated unsubscribe probability of sending the
   estimated best message now; probabilities are divided by the model's ``prob_scale_`` (a high quantile of its
   predictions on the log), everything clipped to [0, 1]. :class:`~agents.slot_policy.SlotScoringPolicy` reads it
   like ``"oracle"``.

The wrappers compute from the observation only: they never call the world's ground truth or the env's ground-truth
methods (``tests/agents/test_retention_estimates.py`` makes those raise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorWrapper
from numpy.typing import NDArray

from actionbank_env._validation import check_int, check_prob, check_real
from actionbank_env.errors import ConfigError, ConfigTypeError

__all__ = [
    "ClickModelConfig",
    "EstimatedFeatures",
    "EstimatedFeaturesVector",
    "ExplorationLog",
    "RetentionClickModel",
    "estimate_space",
    "log_exploration",
    "targeting_quality",
]

#: Summary values after the per-slot estimates (as in the ``"oracle"`` entry): best, rested best, hazard of the best.
N_SUMMARY = 3
#: Observable state columns after the user features in the ``"subscriber"`` entry.
_N_STATE = 4


@dataclass(frozen=True, slots=True)
class ExplorationLog:
    """One row per email of the logging cohort (no ground truth in it).

    Attributes:
        subscriber: The ``"subscriber"`` observation before the send, float32 (n_rows, d_sub).
        slots: The slot sent, int64 (n_rows,).
        clicks: 1.0 for a click, (n_rows,).
        unsubscribed: Whether the subscriber unsubscribed that week, (n_rows,).
        subscriber_ids: Index of the logged subscriber (0..n_subscribers-1), for splits by subscriber, (n_rows,).
        bank: The ``"bank"`` observation (the same for every row), float32 (K_max, d_bank).
        mask: The ``"action_mask"`` of the slots (1 for a message), int8 (K_max,).
        propensity: Probability the logging policy gave each logged send.
    """

    subscriber: NDArray[np.float32]
    slots: NDArray[np.int64]
    clicks: NDArray[np.float64]
    unsubscribed: NDArray[np.bool_]
    subscriber_ids: NDArray[np.int64]
    bank: NDArray[np.float32]
    mask: NDArray[np.int8]
    propensity: float


def log_exploration(envs: Any, *, seed: int, rng: np.random.Generator, rest_prob: float = 0.4) -> ExplorationLog:
    """Play one logging cohort of ``envs.num_envs`` subscribers for a lifetime under random exploration.

    Each week every subscriber gets nothing with probability ``rest_prob``, otherwise a message drawn uniformly from
    the bank. Only the first subscriber of each sub-env is logged (as :func:`agents.retention.run_lifetimes` counts).

    Args:
        envs: A Retention-v0 vector twin with ``observe_bank=True`` and NEXT_STEP autoreset (its default).
        seed: Seed of the cohort (``envs.reset(seed=seed)``); pick one apart from every evaluation cohort.
        rng: The exploration policy's generator.
        rest_prob: Probability of sending nothing in a week.

    Returns:
        The log of every email sent.
    """
    check_prob("log_exploration.rest_prob", rest_prob, open_high=True)
    if not envs.config.observe_bank:
        raise ConfigError(
            "log_exploration needs the Dict observation: envs.config.observe_bank must be True, got "
            f"{envs.config.observe_bank!r}."
        )
    value = float(envs.config.dynamics.subscriber_value)
    n = envs.num_envs
    obs, _ = envs.reset(seed=seed)
    mask = np.asarray(obs["action_mask"][0], dtype=np.int8)
    messages = np.flatnonzero(mask[:-1])
    rest = int(envs.single_action_space.n) - 1
    alive = np.ones(n, dtype=np.bool_)
    active = np.ones(n, dtype=np.bool_)
    rows: list[tuple[Any, ...]] = []
    for _ in range(envs.horizon):
        sends = rng.random(n) >= rest_prob
        actions = np.where(sends, messages[rng.integers(0, messages.size, n)], rest).astype(np.int64)
        next_obs, rewards, terminated, truncated, _ = envs.step(actions)
        logged = alive & active & sends
        clicks = rewards - value * ~terminated  # the reward adds subscriber_value for every week still subscribed
        idx = np.flatnonzero(logged)
        rows.append((obs["subscriber"][idx], actions[idx], clicks[idx], terminated[idx], idx))
        alive &= ~(terminated | truncated)
        active = ~(terminated | truncated)
        obs = next_obs
    subscriber, slots, clicks, unsubscribed, ids = (np.concatenate(col) for col in zip(*rows, strict=True))
    return ExplorationLog(
        subscriber=subscriber.astype(np.float32),
        slots=slots.astype(np.int64),
        clicks=clicks.astype(np.float64),
        unsubscribed=unsubscribed.astype(np.bool_),
        subscriber_ids=ids.astype(np.int64),
        bank=np.asarray(obs["bank"][0], dtype=np.float32),
        mask=mask,
        propensity=(1.0 - rest_prob) / messages.size,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClickModelConfig:
    """Settings of :class:`RetentionClickModel`.

    Attributes:
        message_obs_dim: Columns of the last email's projection at the end of the ``"subscriber"`` observation
            (the env's ``RetentionConfig.message_obs_dim``; must be >= 1 to tell which message was last).
        hidden: Width of the click network's hidden layers.
        d_message: Width of the per-message vectors of the click network's bilinear targeting term.
        epochs: Passes over the log when fitting the click network.
        batch_size: Rows per gradient step.
        learning_rate: Adam's step size.
        hazard_estimators: Boosting rounds of the LightGBM unsubscribe model.
        scale_quantile: Quantile of the click model's predictions on the log used as ``prob_scale_``.
    """

    message_obs_dim: int = 8
    hidden: int = 128
    d_message: int = 32
    epochs: int = 4
    batch_size: int = 2048
    learning_rate: float = 3e-3
    hazard_estimators: int = 100
    scale_quantile: float = 0.999

    def __post_init__(self) -> None:
        check_int("ClickModelConfig.message_obs_dim", self.message_obs_dim, low=1, high=1024)
        check_int("ClickModelConfig.hidden", self.hidden, low=1, high=4096)
        check_int("ClickModelConfig.d_message", self.d_message, low=1, high=4096)
        check_int("ClickModelConfig.epochs", self.epochs, low=1, high=10_000)
        check_int("ClickModelConfig.batch_size", self.batch_size, low=1)
        check_real("ClickModelConfig.learning_rate", self.learning_rate, low=0.0, high=1.0, low_open=True)
        check_int("ClickModelConfig.hazard_estimators", self.hazard_estimators, low=1, high=100_000)
        check_prob("ClickModelConfig.scale_quantile", self.scale_quantile, open_low=True)


def _click_net(d_user: int, d_state: int, n_slots: int, hidden: int, d_message: int) -> Any:
    """The click network, additive in the logit (the dynamics multiply a rested click probability by fatigue and
    novelty factors, and ``logit p ~ log p`` for small ``p``)::

        logit[i, k] = u(x_i) . E_k + b_k  +  g(state_i)  +  v(state_i, is_last_ik, cos_ik)

    ``u`` (an MLP of the user features) and the per-message vectors ``E_k`` form a bilinear targeting term, the
    shape of the world's experts; ``g`` (fatigue) and ``v`` (novelty) are MLPs of the observable state. Scoring every
    slot costs one (n, K) matrix product plus ``v`` on (n, K) rows.
    """
    import torch as th
    from torch import nn

    class ClickNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.user = nn.Sequential(
                nn.Linear(d_user, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, d_message)
            )
            self.messages = nn.Embedding(n_slots, d_message)
            self.bias = nn.Embedding(n_slots, 1)
            self.fatigue = nn.Sequential(nn.Linear(d_state, hidden), nn.ReLU(), nn.Linear(hidden, 1))
            self.novelty = nn.Sequential(nn.Linear(d_state + 2, hidden), nn.ReLU(), nn.Linear(hidden, 1))

        def forward(self, state: th.Tensor, slots: th.Tensor | None, pair: th.Tensor) -> th.Tensor:
            u = self.user(state[:, :d_user])
            if slots is None:  # every slot: pair (n, K, 2)
                target = u @ self.messages.weight.T + self.bias.weight.T
                expanded = state[:, None, :].expand(-1, pair.shape[1], -1)
                novelty = self.novelty(th.cat([expanded, pair], dim=-1)).squeeze(-1)
                out: th.Tensor = target + self.fatigue(state) + novelty
                return out
            target = (u * self.messages(slots)).sum(dim=-1) + self.bias(slots).squeeze(-1)
            novelty = self.novelty(th.cat([state, pair], dim=-1)).squeeze(-1)
            out = target + self.fatigue(state).squeeze(-1) + novelty
            return out

    return ClickNet()


class RetentionClickModel:
    """P(click now) and P(unsubscribe) of sending each message slot, from the ``Dict`` observation alone.

    The click model is a small network (see :func:`_click_net`) on the subscriber observation's user and state
    columns, a learned vector per message slot and the two novelty features (is the slot the last email; cosine of
    its bank-observation row with the last email's), fitted by Adam on the log's clicks; the unsubscribe model is LightGBM on the same features with
    the slot as a categorical feature.

    Args:
        config: Settings.

    Attributes (after :meth:`fit`):
        bank_: The ``"bank"`` observation of the fitted bank, (K_max, d_bank).
        mask_: Its slot mask (K_max + 1,).
        prob_scale_: Divides click probabilities in the ``"estimate"`` entry.
    """

    def __init__(self, config: ClickModelConfig | None = None) -> None:
        self.config = config or ClickModelConfig()

    # -- features ---------------------------------------------------------------------------------------------
    def _last_slot(self, subscriber: NDArray[np.float32]) -> NDArray[np.int64]:
        """The slot of each subscriber's last email (-1 if never mailed), by matching its projection, (n,)."""
        d = self.config.message_obs_dim
        last = subscriber[:, subscriber.shape[1] - d :]
        dist = np.abs(last[:, None, :] - self.bank_[None, :, :d]).max(axis=2)  # (n, K)
        slot = dist.argmin(axis=1)
        return np.where(dist[np.arange(slot.size), slot] > 1e-4, -1, slot)

    def _parts(
        self, subscriber: NDArray[np.float32], slots: NDArray[np.int64] | None
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Per-subscriber state (n, d_user + 4) and novelty pair features ((n, K, 2), or (n, 2) for ``slots``)."""
        d = self.config.message_obs_dim
        state = np.ascontiguousarray(subscriber[:, : subscriber.shape[1] - d], dtype=np.float32)
        last = self._last_slot(subscriber)
        k = self.bank_.shape[0]
        cos = np.vstack([self._cos, np.zeros((1, k), dtype=np.float32)])  # row -1 (never mailed): 0
        if slots is None:
            pair = np.stack([last[:, None] == np.arange(k)[None, :], cos[last]], axis=2)
        else:
            pair = np.stack([last == slots, cos[last, slots]], axis=1)
        return state, pair.astype(np.float32)

    def features(self, subscriber: NDArray[np.float32], slots: NDArray[np.int64]) -> NDArray[np.float64]:
        """Flat feature rows of (subscriber, slot) pairs for the unsubscribe model: state, slot, is_last, cosine."""
        state, pair = self._parts(subscriber, slots)
        return np.column_stack([state, slots, pair]).astype(np.float64)

    # -- fitting ----------------------------------------------------------------------------------------------
    def fit(self, log: ExplorationLog, *, rng: np.random.Generator) -> RetentionClickModel:
        """Fit both models on a log (torch and LightGBM seeded from ``rng``; one thread each)."""
        import lightgbm as lgb
        import torch as th

        cfg = self.config
        self.bank_ = np.asarray(log.bank, dtype=np.float32)
        self.mask_ = np.asarray(log.mask, dtype=np.int8)
        unit = self.bank_ / np.maximum(np.linalg.norm(self.bank_, axis=1, keepdims=True), 1e-12)
        self._cos = (unit @ unit.T).astype(np.float32)
        state, pair = self._parts(log.subscriber, log.slots)
        generator = th.Generator().manual_seed(int(rng.integers(0, 2**62)))
        with th.random.fork_rng(devices=[]):
            th.manual_seed(int(th.randint(0, 2**62, (1,), generator=generator)))
            d_user = state.shape[1] - _N_STATE
            self.net_args_ = (d_user, state.shape[1], self.bank_.shape[0], cfg.hidden, cfg.d_message)
            net = _click_net(*self.net_args_)
        optimizer = th.optim.Adam(net.parameters(), lr=cfg.learning_rate)
        loss_fn = th.nn.BCEWithLogitsLoss()
        tensors = (
            th.from_numpy(state),
            th.from_numpy(log.slots),
            th.from_numpy(pair),
            th.from_numpy(log.clicks).float(),
        )
        n = state.shape[0]
        for epoch in range(cfg.epochs):
            for group in optimizer.param_groups:  # step size x0.3 over the last third of the epochs
                group["lr"] = cfg.learning_rate * (0.3 if epoch >= 2 * cfg.epochs // 3 else 1.0)
            order = th.from_numpy(rng.permutation(n))
            for start in range(0, n, cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                s, k, p, y = (t[idx] for t in tensors)
                loss = loss_fn(net(s, k, p), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        net.eval()
        self.net_ = net
        x = self.features(log.subscriber, log.slots)
        self.hazard_booster_ = lgb.train(
            {
                "objective": "binary",
                "learning_rate": 0.1,
                "num_leaves": 7,
                "min_child_samples": 200,
                "deterministic": True,
                "force_row_wise": True,
                "num_threads": 1,
                "verbose": -1,
                "seed": int(rng.integers(0, 2**31 - 1)),
            },
            lgb.Dataset(x, log.unsubscribed.astype(np.float64), categorical_feature=[x.shape[1] - 3]),
            num_boost_round=cfg.hazard_estimators,
        )
        with th.no_grad():
            logits = net(tensors[0], tensors[1], tensors[2])
        preds = th.sigmoid(logits).numpy()
        self.prob_scale_ = 1.0 / max(float(np.quantile(preds, cfg.scale_quantile)), 1e-6)
        return self

    # -- pickling ---------------------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """The network travels as its constructor arguments and weights (its class is built by :func:`_click_net`)."""
        state = dict(self.__dict__)
        net = state.pop("net_", None)
        if net is not None:
            state["net_weights_"] = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("net_weights_", None)
        self.__dict__.update(state)
        if weights is not None:
            import torch as th

            net = _click_net(*self.net_args_)
            net.load_state_dict({k: th.from_numpy(np.array(v)) for k, v in weights.items()})
            net.eval()
            self.net_ = net

    # -- prediction -------------------------------------------------------------------------------------------
    def predict_slots(self, subscriber: NDArray[np.float32]) -> NDArray[np.float64]:
        """Estimated click probability of every slot now, (n, K_max) (0 for padded slots)."""
        import torch as th

        state, pair = self._parts(subscriber, None)
        with th.no_grad():
            probs = th.sigmoid(self.net_(th.from_numpy(state), None, th.from_numpy(pair))).numpy()
        k = self.bank_.shape[0]
        return np.asarray(probs * self.mask_[:k], dtype=np.float64)

    def predict_logged(self, subscriber: NDArray[np.float32], slots: NDArray[np.int64]) -> NDArray[np.float64]:
        """Estimated click probability of sending ``slots[i]`` to subscriber ``i`` now, (n,)."""
        import torch as th

        state, pair = self._parts(subscriber, slots)
        with th.no_grad():
            logits = self.net_(
                th.from_numpy(state), th.from_numpy(np.asarray(slots, dtype=np.int64)), th.from_numpy(pair)
            )
        return np.asarray(th.sigmoid(logits).numpy(), dtype=np.float64)

    def predict_hazard(self, subscriber: NDArray[np.float32], slots: NDArray[np.int64]) -> NDArray[np.float64]:
        """Estimated unsubscribe probability of sending ``slots[i]`` to subscriber ``i`` now, (n,)."""
        return np.asarray(self.hazard_booster_.predict(self.features(subscriber, slots), num_threads=1))

    def rested(self, subscriber: NDArray[np.float32]) -> NDArray[np.float32]:
        """The observation of a new subscriber (never mailed, tenure 0) with the same user features, (n, d_sub)."""
        out = np.zeros_like(subscriber)
        d_user = subscriber.shape[1] - self.config.message_obs_dim - _N_STATE
        out[:, :d_user] = subscriber[:, :d_user]
        out[:, d_user] = 1.0  # weeks since the last email: 1 (the cap) for a new subscriber; the rest 0
        return out

    def estimate(
        self, subscriber: NDArray[np.float32], rested_best: NDArray[np.float64] | None = None
    ) -> NDArray[np.float32]:
        """The ``"estimate"`` entry: [slot probabilities, best, rested best] * ``prob_scale_``, hazard; (n, K_max + 3).

        Args:
            subscriber: ``"subscriber"`` observations, (n, d_sub).
            rested_best: Precomputed estimated rested best per row (unscaled), (n,); ``None`` computes it.
        """
        k = self.bank_.shape[0]
        probs = self.predict_slots(subscriber)
        probs_masked = np.where(self.mask_[:k] > 0, probs, -np.inf)
        best_slot = probs_masked.argmax(axis=1)
        best = probs[np.arange(probs.shape[0]), best_slot]
        if rested_best is None:
            rested_best = self.predict_slots(self.rested(subscriber)).max(axis=1)
        out = np.empty((subscriber.shape[0], k + N_SUMMARY), dtype=np.float32)
        out[:, :k] = probs
        out[:, k] = best
        out[:, k + 1] = rested_best
        out[:, : k + 2] *= self.prob_scale_
        out[:, k + 2] = self.predict_hazard(subscriber, best_slot)
        np.clip(out, 0.0, 1.0, out=out)
        return out


def estimate_space(model: RetentionClickModel) -> spaces.Box:
    """The ``"estimate"`` entry's space: ``Box(0, 1, (K_max + 3,), float32)``, the ``"oracle"`` entry's layout."""
    return spaces.Box(0.0, 1.0, shape=(model.bank_.shape[0] + N_SUMMARY,), dtype=np.float32)


def _check_space(owner: str, space: Any, model: RetentionClickModel) -> spaces.Dict:
    if not isinstance(space, spaces.Dict) or not {"subscriber", "bank", "action_mask"} <= set(space.spaces):
        raise ConfigTypeError(f"{owner} needs Retention-v0's Dict observation (observe_bank=True), got {space}.")
    if "oracle" in space.spaces:
        raise ConfigError(
            f"{owner} replaces the privileged oracle features: the env's oracle_features must be False, got an "
            "observation with an 'oracle' entry."
        )
    if tuple(space["bank"].shape or ()) != model.bank_.shape:
        raise ConfigError(
            f"{owner}: the env's bank observation has shape {space['bank'].shape}, the click model was fitted on "
            f"{model.bank_.shape}."
        )
    return spaces.Dict({**space.spaces, "estimate": estimate_space(model)})


class _RestedCache:
    """Estimated rested best per row, recomputed only for rows whose user features changed (new subscribers)."""

    def __init__(self, model: RetentionClickModel) -> None:
        self.model = model
        self.users: NDArray[np.float32] | None = None
        self.best: NDArray[np.float64] | None = None

    def __call__(self, subscriber: NDArray[np.float32]) -> NDArray[np.float64]:
        d_user = subscriber.shape[1] - self.model.config.message_obs_dim - _N_STATE
        users = subscriber[:, :d_user]
        if self.users is None or self.best is None or self.users.shape != users.shape:
            self.users, self.best = users.copy(), np.zeros(users.shape[0])
            changed = np.arange(users.shape[0])
        else:
            changed = np.flatnonzero(np.any(self.users != users, axis=1))
        if changed.size:
            rested = self.model.rested(subscriber[changed])
            self.best[changed] = self.model.predict_slots(rested).max(axis=1)
            self.users[changed] = users[changed]
        return self.best.copy()


class EstimatedFeatures(gym.ObservationWrapper[dict[str, Any], Any, dict[str, Any]], gym.utils.RecordConstructorArgs):
    """Adds the click model's ``"estimate"`` entry to a single Retention-v0 env's ``Dict`` observation.

    Args:
        env: ``gym.make("ActionBank/Retention-v0", observe_bank=True)`` (without ``oracle_features``).
        model: A fitted :class:`RetentionClickModel` (on the same bank observation).
    """

    def __init__(self, env: gym.Env[Any, Any], model: RetentionClickModel) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, model=model)
        gym.ObservationWrapper.__init__(self, env)
        self.model = model
        self.observation_space = _check_space(type(self).__name__, env.observation_space, model)
        self._rested = _RestedCache(model)

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        """The observation with ``"estimate"`` (float32, (K_max + 3,))."""
        sub = np.asarray(observation["subscriber"], dtype=np.float32)[None]
        return {**observation, "estimate": self.model.estimate(sub, self._rested(sub))[0]}


class EstimatedFeaturesVector(VectorWrapper):
    """Adds the click model's ``"estimate"`` entry to the vector twin's ``Dict`` observations (batched, no loop).

    Works with both autoreset modes; with ``SAME_STEP`` it also adds the entry to ``info["final_obs"]``. Other
    public attributes (``config``, ``horizon``, ``bank``, ``sends_email``, ...) are those of the wrapped env, so
    :func:`agents.retention.run_lifetimes` and :func:`agents.retention.sb3_vec_env` take it as they take the env.

    Args:
        env: ``RetentionVectorEnv(..., observe_bank=True)`` (without ``oracle_features``).
        model: A fitted :class:`RetentionClickModel` (on the same bank observation).
    """

    def __init__(self, env: Any, model: RetentionClickModel) -> None:
        super().__init__(env)
        self.model = model
        self.single_observation_space = _check_space(type(self).__name__, env.single_observation_space, model)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, env.num_envs)
        self._rested = _RestedCache(model)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.env, name)

    def _add(self, observations: dict[str, Any]) -> dict[str, Any]:
        sub = np.asarray(observations["subscriber"], dtype=np.float32)
        return {**observations, "estimate": self.model.estimate(sub, self._rested(sub))}

    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[Any, dict[str, Any]]:
        """The wrapped env's reset, with estimates."""
        obs, info = self.env.reset(seed=seed, options=options)
        return self._add(obs), info

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """The wrapped env's step, with estimates (also in ``info["final_obs"]`` with SAME_STEP autoreset)."""
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        if self.env.metadata.get("autoreset_mode") == AutoresetMode.SAME_STEP and "final_obs" in info:
            ended = np.flatnonzero(info["_final_obs"])
            if ended.size:
                final = {
                    key: np.stack([info["final_obs"][i][key] for i in ended]) for key in info["final_obs"][ended[0]]
                }
                # Final observations are of finished subscribers: no rested cache (their rows now hold new ones).
                sub = final["subscriber"].astype(np.float32)
                estimates = self.model.estimate(sub)
                final_obs = info["final_obs"].copy()
                for j, i in enumerate(ended):  # one dict per ended sub-env, as the env returns them
                    final_obs[i] = {**final_obs[i], "estimate": estimates[j]}
                info = {**info, "final_obs": final_obs}
        return self._add(obs), rewards, terminated, truncated, info


def targeting_quality(
    model: RetentionClickModel, subscriber: NDArray[np.float32], true_probs: NDArray[np.float64]
) -> dict[str, float]:
    """Evaluation only: how well the model's argmax targets, against the true click probabilities.

    Args:
        model: The fitted model.
        subscriber: Observations of held-out subscribers, (n, d_sub).
        true_probs: Their true click probability of every slot now, (n, K) (ground truth, from the caller).

    Returns:
        ``share_of_best``: mean true probability of the model's argmax over the mean true best;
        ``rank_corr``: mean Spearman correlation of estimated and true probabilities across slots;
        ``mean_abs_error``; ``mean_estimate`` and ``mean_truth`` (calibration in the large).
    """
    k = true_probs.shape[1]
    est = model.predict_slots(subscriber)[:, :k]
    rows = np.arange(est.shape[0])
    chosen = true_probs[rows, est.argmax(axis=1)]
    ranks_est = est.argsort(axis=1).argsort(axis=1).astype(np.float64)
    ranks_true = true_probs.argsort(axis=1).argsort(axis=1).astype(np.float64)
    ranks_est -= ranks_est.mean(axis=1, keepdims=True)
    ranks_true -= ranks_true.mean(axis=1, keepdims=True)
    corr = (ranks_est * ranks_true).sum(axis=1) / np.sqrt((ranks_est**2).sum(axis=1) * (ranks_true**2).sum(axis=1))
    return {
        "share_of_best": float(chosen.mean() / true_probs.max(axis=1).mean()),
        "rank_corr": float(np.nanmean(corr)),
        "mean_abs_error": float(np.abs(est - true_probs).mean()),
        "mean_estimate": float(est.mean()),
        "mean_truth": float(true_probs.mean()),
    }
