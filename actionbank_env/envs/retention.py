"""``ActionBank/Retention-v0``: one subscriber's lifetime of weekly emails, with fatigue, novelty and unsubscribes.

Targeting-v0 is a contextual bandit (users are i.i.d., nothing carries over). Here a subscriber stays: each
step is a week in which the sender mails one message of the bank or nothing. Mail tires the subscriber
(click probabilities fall, unsubscribes rise), repeats of a recent message (or a text close to it) are worth
less, and an unsubscribe ends the episode (``terminated=True``); the lifetime ends after ``horizon`` weeks
(``truncated=True``; the env enforces it itself: the id has no registered step limit). A sender who maximises this week's
click therefore loses clicks later. The dynamics are the pure functions of
:mod:`actionbank_env.core.retention`, shared by :class:`RetentionEnv` (a batch of one) and its native vector
twin :class:`RetentionVectorEnv` (``gymnasium.make_vec``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.typing import NDArray

from actionbank_env._validation import check_bool, check_int
from actionbank_env.core.actions import ActionBank
from actionbank_env.core.retention import (
    DEFAULT_HORIZON,
    Continuation,
    RetentionDynamics,
    RetentionState,
    StepOutcome,
    action_hazards,
    current_click_probs,
    expected_clicks_ahead,
    fatigue_sensitivity,
    observation_dim,
    observations,
    similarity_matrix,
    step,
)
from actionbank_env.core.world import World
from actionbank_env.envs._common import (
    bank_projection,
    get_world,
    reset_bank_option,
    resolve_bank,
    split_world_kwargs,
    vector_rng,
)
from actionbank_env.envs.targeting import as_action_index
from actionbank_env.errors import ConfigError

__all__ = ["RetentionConfig", "RetentionEnv", "RetentionVectorEnv"]

_DYNAMICS_FIELDS = tuple(f.name for f in dataclasses.fields(RetentionDynamics))


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionConfig:
    """Settings of ``ActionBank/Retention-v0`` (the world's settings are :class:`WorldConfig` fields).

    Attributes:
        horizon: Weeks of a subscriber's lifetime (steps of an episode that ends without an unsubscribe).
        dynamics: Fatigue, novelty and unsubscribe parameters (or pass their fields as keywords to the env).
        observe_bank: ``Dict`` observations ``{"subscriber", "bank", "action_mask"}`` and
            ``Discrete(max_bank_size + 1)`` actions, so one policy generalises across banks.
        max_bank_size: Message slots of the bank observation in ``observe_bank`` mode (``None``: the initial
            bank's size). Ignored otherwise.
        bank_obs_dim: Features per message in the bank observation (fixed projection of the embeddings).
        message_obs_dim: Features of the last email's projection in the subscriber observation.
        oracle_features: **Privileged, evaluation-only.** Append what the oracle baselines read from the ground
            truth to the observation: every message slot's click probability now (fatigue and novelty included;
            ``max_bank_size`` values, 0 for padded slots), the best of them, the subscriber's best click
            probability when rested and never mailed, all divided by the world's ``max_utility`` (so in [0, 1]),
            and the unsubscribe hazard of sending the best message now. For the fair test of "a sequential
            policy beats oracle-myopic" (both see the true click probabilities); a policy trained with it cannot
            be deployed on real subscribers. Flat observations get ``max_bank_size + 3`` more columns; ``Dict``
            observations an ``"oracle"`` entry.
    """

    horizon: int = DEFAULT_HORIZON
    dynamics: RetentionDynamics = field(default_factory=RetentionDynamics)
    observe_bank: bool = False
    max_bank_size: int | None = None
    bank_obs_dim: int = 16
    message_obs_dim: int = 8
    oracle_features: bool = False

    def __post_init__(self) -> None:
        check_int("RetentionConfig.horizon", self.horizon, low=1, high=100_000)
        if not isinstance(self.dynamics, RetentionDynamics):
            raise TypeError(
                f"RetentionConfig.dynamics must be a RetentionDynamics, got {type(self.dynamics).__name__}."
            )
        check_bool("RetentionConfig.observe_bank", self.observe_bank)
        if self.max_bank_size is not None:
            check_int("RetentionConfig.max_bank_size", self.max_bank_size, low=1, high=10_000)
        check_int("RetentionConfig.bank_obs_dim", self.bank_obs_dim, low=1, high=1024)
        check_int("RetentionConfig.message_obs_dim", self.message_obs_dim, low=0, high=1024)
        check_bool("RetentionConfig.oracle_features", self.oracle_features)


_RETENTION_FIELDS = (
    "horizon",
    "dynamics",
    "observe_bank",
    "max_bank_size",
    "bank_obs_dim",
    "message_obs_dim",
    "oracle_features",
)
#: Oracle features after the per-slot click probabilities: the best of them, the rested best, the best send's hazard.
_N_ORACLE_SUMMARY = 3


def _build_config(
    owner: str, config: RetentionConfig | None, kwargs: Mapping[str, Any]
) -> tuple[RetentionConfig, dict[str, Any]]:
    """The env's config from ``config`` or keywords (config fields and dynamics fields), and the world keywords."""
    own, world_kwargs = split_world_kwargs(owner, kwargs, _RETENTION_FIELDS + _DYNAMICS_FIELDS)
    if config is not None:
        if own:
            raise ConfigError(f"{owner} got both config= and the config fields {sorted(own)}; pass one.")
        if not isinstance(config, RetentionConfig):
            raise TypeError(f"{owner}.config must be a RetentionConfig, got {type(config).__name__}.")
        return config, world_kwargs
    dynamics_kwargs = {k: own.pop(k) for k in list(own) if k in _DYNAMICS_FIELDS}
    if dynamics_kwargs:
        if "dynamics" in own:
            raise ConfigError(
                f"{owner} got both dynamics= and the dynamics fields {sorted(dynamics_kwargs)}; pass one."
            )
        own["dynamics"] = RetentionDynamics(**dynamics_kwargs)
    return RetentionConfig(**own), world_kwargs


class _Model:
    """What both envs share: the world, the bank, its similarity matrix, the spaces' layout and the subscriber draw."""

    def __init__(self, owner: str, config: RetentionConfig, world: World) -> None:
        self.config = config
        self.world = world
        self.sensitivity_index, self.relevance_ctr = config.dynamics.resolve(world.feature_names, world.config.base_ctr)
        self.catalog = world.new_catalog()
        n_actions = len(world.initial_bank)
        self.max_bank_size = (config.max_bank_size or n_actions) if config.observe_bank else n_actions
        if n_actions > self.max_bank_size:
            raise ConfigError(
                f"RetentionConfig.max_bank_size={self.max_bank_size} must be >= the initial bank size {n_actions}."
            )
        self.n_slots = self.max_bank_size + 1  # the last action sends nothing
        self.message_projection = bank_projection(world, config.message_obs_dim) if config.message_obs_dim else None
        if config.observe_bank:
            self.bank_projection = bank_projection(world, config.bank_obs_dim)
        d_obs = observation_dim(world.d_user, config.message_obs_dim)
        low = np.zeros(d_obs, dtype=np.float32)
        low[d_obs - config.message_obs_dim :] = -1.0
        self.subscriber_space = spaces.Box(low, np.ones(d_obs, dtype=np.float32), dtype=np.float32)
        self.n_oracle = self.max_bank_size + _N_ORACLE_SUMMARY if config.oracle_features else 0
        # Every family's click probabilities lie in [0, max_utility]; the clip keeps a custom ground truth in bounds.
        self.oracle_scale = 1.0 / world.config.max_utility
        oracle_space = spaces.Box(0.0, 1.0, shape=(self.n_oracle,), dtype=np.float32)
        if config.observe_bank:
            entries: dict[str, spaces.Space[Any]] = {
                "subscriber": self.subscriber_space,
                "bank": spaces.Box(-1.0, 1.0, shape=(self.max_bank_size, config.bank_obs_dim), dtype=np.float32),
                "action_mask": spaces.Box(0, 1, shape=(self.n_slots,), dtype=np.int8),
            }
            if config.oracle_features:
                entries["oracle"] = oracle_space
            self.observation_space: spaces.Space[Any] = spaces.Dict(entries)
        elif config.oracle_features:
            self.observation_space = spaces.Box(
                np.concatenate([low, oracle_space.low]),
                np.ones(d_obs + self.n_oracle, dtype=np.float32),
                dtype=np.float32,
            )
        else:
            self.observation_space = self.subscriber_space
        self.action_space = spaces.Discrete(self.n_slots)
        self.set_bank(world.initial_bank, owner)

    def set_bank(self, bank: ActionBank, owner: str) -> None:
        n = len(bank)
        if self.config.observe_bank:
            if n > self.max_bank_size:
                raise ConfigError(
                    f"{owner} bank must have at most max_bank_size={self.max_bank_size} actions, got {n}."
                )
        elif n != self.max_bank_size:
            raise ConfigError(
                f"{owner} bank must have exactly {self.max_bank_size} actions (the action space is fixed; use "
                f"observe_bank=True for banks of varying size), got {n}."
            )
        self.bank = bank
        self.n_actions = n
        self.similarity = similarity_matrix(bank.embeddings, self.config.dynamics.novelty_similarity)
        d_msg = self.config.message_obs_dim
        features = np.zeros((n + 1, d_msg), dtype=np.float32)  # trailing zero row: no email yet
        if self.message_projection is not None:
            features[:n] = self.message_projection(bank.embeddings)
        self.message_features = features
        # Env action -> core action (a bank index, or n for "send nothing"; padded slots send nothing too).
        to_core = np.full(self.n_slots, n, dtype=np.int64)
        to_core[:n] = np.arange(n)
        self.to_core = to_core
        self.ids = np.asarray([*bank.ids, *([""] * (self.n_slots - n))], dtype=object)
        if self.config.observe_bank:
            bank_features = np.zeros((self.max_bank_size, self.config.bank_obs_dim), dtype=np.float32)
            bank_features[:n] = self.bank_projection(bank.embeddings)
            mask = np.zeros(self.n_slots, dtype=np.int8)
            mask[:n] = 1
            mask[-1] = 1
            self.bank_features = bank_features
            self.mask = mask

    def new_subscribers(
        self, n: int, rng: np.random.Generator, first_id: int
    ) -> tuple[RetentionState, NDArray[np.int64]]:
        """``n`` fresh subscribers drawn from the world's population (one ground-truth call)."""
        users = self.world.sample_users(n, rng=rng, first_id=first_id)
        base = np.asarray(self.world.ground_truth.click_prob(users.features, self.bank.embeddings), dtype=np.float64)
        sensitivity = fatigue_sensitivity(users.features, self.sensitivity_index, self.config.dynamics)
        return RetentionState.new(users.features, base, sensitivity), users.ids

    def click_probs(self, state: RetentionState) -> NDArray[np.float64]:
        """Click probability of every env action now, shape (n, n_slots) (0 for sending nothing or a padded slot)."""
        return self.slot_probs(current_click_probs(state, self.config.dynamics, self.similarity))

    def advance(self, state: RetentionState, actions: NDArray[np.int64], uniforms: NDArray[np.float64]) -> StepOutcome:
        return step(state, self.to_core[actions], uniforms, self.config.dynamics, self.similarity, self.relevance_ctr)

    def slot_probs(self, core_probs: NDArray[np.float64]) -> NDArray[np.float64]:
        """Core probabilities (n, K + 1) laid out on the env's action slots (n, n_slots)."""
        if self.n_slots == self.n_actions + 1:
            return core_probs
        out = np.zeros((core_probs.shape[0], self.n_slots))
        out[:, : self.n_actions] = core_probs[:, : self.n_actions]
        return out

    def oracle_obs(self, state: RetentionState) -> NDArray[np.float32]:
        """The privileged features of ``RetentionConfig.oracle_features``, float32 (n, max_bank_size + 3) in [0, 1]."""
        k, m = self.n_actions, self.max_bank_size
        probs = current_click_probs(state, self.config.dynamics, self.similarity)[:, :k]
        rows = np.arange(state.n)
        best_action = probs.argmax(axis=1)
        best = probs[rows, best_action]
        hazard = action_hazards(state, self.config.dynamics, best_action, best, self.relevance_ctr)
        out = np.zeros((state.n, self.n_oracle), dtype=np.float32)
        out[:, :k] = probs
        out[:, m] = best
        out[:, m + 1] = state.base_probs.max(axis=1)
        out[:, : m + 2] *= self.oracle_scale
        out[:, m + 2] = hazard
        np.clip(out, 0.0, 1.0, out=out)
        return out

    def observe(self, state: RetentionState, horizon: int) -> Any:
        """The observation of every subscriber (batch-first): the flat box, or the ``Dict`` with ``observe_bank``."""
        obs = observations(state, horizon, self.message_features)
        if self.config.observe_bank:
            n = state.n
            out = {
                "subscriber": obs,
                "bank": np.broadcast_to(self.bank_features, (n, *self.bank_features.shape)).copy(),
                "action_mask": np.broadcast_to(self.mask, (n, self.n_slots)).copy(),
            }
            if self.config.oracle_features:
                out["oracle"] = self.oracle_obs(state)
            return out
        if self.config.oracle_features:
            return np.concatenate([obs, self.oracle_obs(state)], axis=1)
        return obs


def _check_render_mode(owner: str, render_mode: str | None, allowed: tuple[str | None, ...]) -> str | None:
    if render_mode in allowed:
        return render_mode
    import warnings

    warnings.warn(
        f"{owner} does not support render_mode={render_mode!r} (supported: {[m for m in allowed if m]}); "
        "rendering is disabled.",
        UserWarning,
        stacklevel=3,
    )
    return None


class RetentionEnv(gym.Env[Any, np.int64]):
    """One subscriber's lifetime as an episode: one step per week, one email (or none) per step.

    Observation: ``Box`` float32 with finite bounds: the user's features (in [0, 1]); weeks since the last
    email, emails and clicks in the last 4 weeks and tenure (each scaled to [0, 1], see
    :func:`~actionbank_env.core.retention.observations`); the fixed projection of the last email's embedding
    (``message_obs_dim`` values in [-1, 1]). With ``observe_bank=True`` a ``Dict`` with ``"subscriber"`` (that
    box), ``"bank"`` (``(max_bank_size, bank_obs_dim)`` float32 in [-1, 1], zero rows past the bank) and
    ``"action_mask"`` (``(max_bank_size + 1,)`` int8, 1 for a real message and for the last slot); the same mask
    comes from :meth:`action_masks` (sb3-contrib's ``MaskablePPO``). With ``oracle_features=True`` (privileged,
    evaluation-only: see :class:`RetentionConfig`) the flat box gets ``max_bank_size + 3`` more columns in [0, 1]
    (every slot's true click probability now / ``max_utility``, the best of them, the rested best, the hazard of
    the best send) and the ``Dict`` an ``"oracle"`` entry with the same values.

    Action: ``Discrete(K + 1)`` (``Discrete(max_bank_size + 1)`` with ``observe_bank``): index ``k < K`` sends
    message ``k``, the last index sends nothing; a padded slot past the bank also sends nothing.

    Reward: 1.0 for a click (plus ``dynamics.subscriber_value`` for every week the subscriber stays).
    ``terminated=True`` when the subscriber unsubscribes; ``truncated=True`` after ``horizon`` weeks.

    ``info`` (ground truth, never in the observation, all at decision time): ``click_probs`` (every action),
    ``click_prob`` (the chosen one), ``best_click_prob``, ``myopic_action`` (argmax of ``click_probs``),
    ``regret`` (``best_click_prob - click_prob``), ``hazard`` (unsubscribe probability of the chosen action),
    ``fatigue``, ``unsubscribed``, ``action_id`` (``""`` for no email) and ``user_id``. An oracle that must act
    on the current state reads :meth:`current_click_probs`.

    Args:
        config: Env settings (or pass its fields, and :class:`RetentionDynamics` fields, as keywords).
        world: A prebuilt world; otherwise one is built (and cached per process) from the
            :class:`~actionbank_env.core.world.WorldConfig` fields given as keywords.
        render_mode: ``None`` or ``"ansi"`` (another value warns and disables rendering, as SB3's
            ``make_vec_env`` passes one).
        **kwargs: :class:`RetentionConfig`, :class:`RetentionDynamics` and :class:`WorldConfig` fields.

    Example:
        >>> from actionbank_env.core.world import World, WorldConfig
        >>> world = World.build(WorldConfig(embedder="hashing", initial_actions=4, n_reference_texts=64,
        ...                                 n_reference_users=256))
        >>> env = RetentionEnv(world=world, horizon=3)
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, env.action_space
        ((20,), Discrete(5))
        >>> _, reward, terminated, truncated, info = env.step(4)  # rest this week
        >>> info["click_prob"], truncated
        (0.0, False)
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        config: RetentionConfig | None = None,
        *,
        world: World | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        self.config, world_kwargs = _build_config(owner, config, kwargs)
        self.render_mode = _check_render_mode(owner, render_mode, (None, "ansi"))
        self.world = get_world(owner, world, world_kwargs)
        self._model = _Model(owner, self.config, self.world)
        self.observation_space: spaces.Space[Any] = self._model.observation_space
        self.action_space: spaces.Discrete = self._model.action_space
        self.max_bank_size = self._model.max_bank_size
        self._state: RetentionState | None = None
        self._user_id = 0
        self._next_user_id = 0
        self._done = True
        self._last: tuple[int, float, float, bool] | None = None

    @property
    def bank(self) -> ActionBank:
        """The deployed bank."""
        return self._model.bank

    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start a new subscriber's lifetime.

        Args:
            seed: Seeds the episode stream (the subscriber, clicks and unsubscribes); the world is fixed by
                ``world_seed``.
            options: ``{"bank": ActionBank | sequence of texts}`` deploys a new bank from this episode on.
        """
        super().reset(seed=seed)
        if seed is not None:
            self._next_user_id = 0
        bank_option = reset_bank_option(type(self).__name__, options)
        if bank_option is not None:
            bank = resolve_bank("reset(options)", bank_option, self.world, self._model.catalog)
            self._model.set_bank(bank, "reset(options)")
        self._state, ids = self._model.new_subscribers(1, self.np_random, self._next_user_id)
        self._user_id = int(ids[0])
        self._next_user_id += 1
        self._done = False
        self._last = None
        return self._observation(), {}

    def _observation(self) -> Any:
        assert self._state is not None
        obs = self._model.observe(self._state, self.config.horizon)
        if isinstance(obs, dict):
            return {key: value[0] for key, value in obs.items()}
        return obs[0]

    def action_masks(self) -> NDArray[np.int8]:
        """1 for every action that sends a real message or nothing, 0 for padded slots; int8 (n_slots,)."""
        if self.config.observe_bank:
            return self._model.mask.copy()
        return np.ones(self._model.n_slots, dtype=np.int8)

    def current_click_probs(self) -> NDArray[np.float64]:
        """Ground truth: click probability of every action for the current state, shape (n_slots,).

        For evaluation-only policies (the oracle-myopic baseline); agents see only the observation.
        """
        if self._state is None or self._done:
            raise ResetNeeded("Call reset() before current_click_probs() (the episode has not started or has ended).")
        probs: NDArray[np.float64] = self._model.click_probs(self._state)[0]
        return probs

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Send ``action`` (a message index, or the last index for no email) and advance one week.

        Raises:
            ResetNeeded: Before the first ``reset`` or after the episode ended.
            InvalidAction: For an action outside the action space (the env stays usable).
        """
        if self._done or self._state is None:
            raise ResetNeeded("Call reset() before step() (the episode has not started or has ended).")
        a = action if type(action) is int else as_action_index(action)
        n = self._model.n_slots
        if not 0 <= a < n:
            raise InvalidAction(f"action must be an int in [0, {n}), got {action!r}.")
        uniforms = self.np_random.random((2, 1))
        out = self._model.advance(self._state, np.array([a], dtype=np.int64), uniforms)
        probs = self._model.slot_probs(out.click_probs)[0]
        myopic = int(probs.argmax())
        terminated = bool(out.unsubscribed[0])
        truncated = not terminated and int(self._state.week[0]) >= self.config.horizon
        self._done = terminated or truncated
        p = float(out.click_prob[0])
        info = {
            "click_probs": probs,
            "click_prob": p,
            "best_click_prob": float(probs[myopic]),
            "myopic_action": myopic,
            "regret": float(probs[myopic]) - p,
            "hazard": float(out.hazard[0]),
            "fatigue": float(out.fatigue[0]),
            "unsubscribed": terminated,
            "action_id": str(self._model.ids[a]),
            "user_id": self._user_id,
        }
        reward = float(out.rewards[0])
        self._last = (a, p, reward, terminated)
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str | None:
        """``"ansi"``: a line with the week, the email sent, its click probability and the outcome."""
        if self.render_mode != "ansi":
            return None
        if self._last is None or self._state is None:
            return f"Retention-v0: bank of {len(self.bank)} messages, no week played yet.\n"
        a, p, reward, left = self._last
        text = self.bank.texts[a] if a < len(self.bank) else "<no email>"
        week = int(self._state.week[0])
        status = "unsubscribed" if left else "subscribed"
        return f"week {week} subscriber {self._user_id}: {text!r} click_prob={p:.3f} reward={reward:g} ({status})\n"


class RetentionVectorEnv(VectorEnv):
    """``num_envs`` subscribers of :class:`RetentionEnv`, advanced by one batched call per week.

    Spaces, rewards and ``info`` keys match the single env (``info`` values are arrays over sub-envs, each
    with its ``_key`` mask). All sub-envs share the world and the bank; ``reset(options={"bank": ...})``
    replaces it for all. ``reset(seed=s)`` seeds one stream for the whole batch; with ``num_envs=1`` the
    rollout equals the single env's (and ``make_vec(..., vectorization_mode="sync")``'s) for the same seed,
    the single env being reset with no seed after each episode.

    Autoreset: ``AutoresetMode.NEXT_STEP`` by default (Gymnasium's default, what its vector wrappers and RLlib
    expect). The step on which a subscriber unsubscribes (``terminated``) or reaches the horizon (``truncated``)
    returns that subscriber's final observation; the *next* step ignores its action, draws a new subscriber and
    returns its first observation with reward 0, both flags ``False`` and no ``info`` entries (masks ``False``).
    ``autoreset_mode=AutoresetMode.SAME_STEP`` (what Stable-Baselines3's ``VecEnv`` expects) draws the new
    subscriber on the ending step itself: ``obs`` is its first observation and the final observations are in
    ``info["final_obs"]`` (an object array, with ``info["_final_obs"]`` marking the ended sub-envs).

    Args:
        num_envs: Number of sub-envs (subscribers in flight).
        config: Env settings (or pass :class:`RetentionConfig` / :class:`RetentionDynamics` fields as keywords).
        world: A prebuilt world; otherwise the cached world of the given ``WorldConfig`` keywords.
        render_mode: Only ``None``.
        max_episode_steps: What ``make_vec(..., max_episode_steps=N)`` passes (the id registers none): episodes
            are truncated after ``min(horizon, max_episode_steps)`` weeks, as ``TimeLimit`` does for the single env.
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (default) or ``AutoresetMode.SAME_STEP`` (or their values).
        **kwargs: :class:`RetentionConfig`, :class:`RetentionDynamics` and :class:`WorldConfig` fields.

    Example:
        >>> from actionbank_env.core.world import World, WorldConfig
        >>> world = World.build(WorldConfig(embedder="hashing", initial_actions=4, n_reference_texts=64,
        ...                                 n_reference_users=256))
        >>> envs = RetentionVectorEnv(3, world=world, horizon=2)
        >>> obs, _ = envs.reset(seed=0)
        >>> obs.shape
        (3, 20)
        >>> _ = envs.step(np.array([0, 1, 4]))
        >>> _, rewards, terminated, truncated, info = envs.step(np.array([0, 1, 4]))
        >>> truncated.tolist()
        [True, True, True]
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        config: RetentionConfig | None = None,
        *,
        world: World | None = None,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        self.num_envs = check_int(f"{owner}.num_envs", num_envs, low=1)
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            raise ConfigError(
                f"{owner}.autoreset_mode must be {AutoresetMode.NEXT_STEP.value!r} or {AutoresetMode.SAME_STEP.value!r}, "
                f"got {autoreset_mode!r}."
            ) from None
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ConfigError(
                f"{owner}.autoreset_mode must be {AutoresetMode.NEXT_STEP.value!r} or {AutoresetMode.SAME_STEP.value!r}, "
                f"got {autoreset_mode!r}."
            )
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self._same_step = mode == AutoresetMode.SAME_STEP
        self.config, world_kwargs = _build_config(owner, config, kwargs)
        if render_mode is not None:
            raise ConfigError(f"{owner}.render_mode must be None, got {render_mode!r}.")
        self.render_mode = None
        self.horizon = self.config.horizon
        if max_episode_steps is not None:
            self.horizon = min(self.horizon, check_int(f"{owner}.max_episode_steps", max_episode_steps, low=1))
        self.world = get_world(owner, world, world_kwargs)
        self._model = _Model(owner, self.config, self.world)
        self.max_bank_size = self._model.max_bank_size
        self.single_observation_space = self._model.observation_space
        self.single_action_space: spaces.Discrete = self._model.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._state: RetentionState | None = None
        self._user_ids = np.zeros(self.num_envs, dtype=np.int64)
        self._next_user_id = 0
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)

    @property
    def bank(self) -> ActionBank:
        """The deployed bank."""
        return self._model.bank

    def _new(self, n: int) -> tuple[RetentionState, NDArray[np.int64]]:
        state, ids = self._model.new_subscribers(n, self.np_random, self._next_user_id)
        self._next_user_id += n
        return state, ids

    def _observation(self) -> Any:
        assert self._state is not None
        return self._model.observe(self._state, self.config.horizon)

    def action_masks(self) -> NDArray[np.int8]:
        """The int8 action masks of every sub-env, shape (num_envs, n_slots)."""
        if self.config.observe_bank:
            return np.broadcast_to(self._model.mask, (self.num_envs, self._model.n_slots)).copy()
        return np.ones((self.num_envs, self._model.n_slots), dtype=np.int8)

    @property
    def weeks(self) -> NDArray[np.int64]:
        """Tenure (weeks since subscribing) of every sub-env's subscriber, shape (num_envs,); a copy."""
        if self._state is None:
            raise ResetNeeded("Call reset() before reading weeks.")
        return self._state.week.copy()

    def rested_best_click_probs(self) -> NDArray[np.float64]:
        """Ground truth: each subscriber's best click probability when rested and never mailed, shape (num_envs,)."""
        if self._state is None:
            raise ResetNeeded("Call reset() before rested_best_click_probs().")
        best: NDArray[np.float64] = self._state.base_probs.max(axis=1)
        return best

    def sends_email(self, actions: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether each action sends a message (not the last action, not a padded slot), shape of ``actions``."""
        return np.asarray(self._model.to_core[actions] < self._model.n_actions)

    def current_click_probs(self) -> NDArray[np.float64]:
        """Ground truth: click probability of every action for every sub-env now, shape (num_envs, n_slots).

        Rows of sub-envs that will autoreset on the next step describe their finished subscriber.
        """
        if self._state is None:
            raise ResetNeeded("Call reset() before current_click_probs().")
        return self._model.click_probs(self._state)

    def expected_clicks_ahead(self, first_actions: Any, continuation: Continuation) -> NDArray[np.float64]:
        """Ground truth for evaluation-only planners: each subscriber's expected reward until the horizon if it gets
        ``first_actions`` this week and then follows ``continuation`` (exact; see
        :func:`~actionbank_env.core.retention.expected_clicks_ahead`). Nothing is drawn and no state changes.

        Args:
            first_actions: Env action per sub-env, shape (num_envs,) (the last index: no email).
            continuation: ``(probs (num_envs, K + 1), state) -> core actions (num_envs,)`` with ``K`` for no email,
                e.g. :func:`~actionbank_env.core.retention.myopic_actions`.

        Returns:
            Expected reward per sub-env, shape (num_envs,).
        """
        if self._state is None:
            raise ResetNeeded("Call reset() before expected_clicks_ahead().")
        m = self._model
        core = m.to_core[self._check_actions(first_actions)]
        dynamics = self.config.dynamics
        return expected_clicks_ahead(
            self._state, core, continuation, dynamics, m.similarity, m.relevance_ctr, self.horizon
        )

    def reset(
        self, *, seed: int | list[int] | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start new subscribers in every sub-env.

        Args:
            seed: One int seeds the batch's stream; a list of ints is combined into one seed sequence.
            options: ``{"bank": ActionBank | sequence of texts}`` deploys a new bank in every sub-env.
        """
        if seed is not None:
            self._np_random, self._np_random_seed = vector_rng(seed)
        if seed is not None:
            self._next_user_id = 0
        bank_option = reset_bank_option(type(self).__name__, options)
        if bank_option is not None:
            bank = resolve_bank("reset(options)", bank_option, self.world, self._model.catalog)
            self._model.set_bank(bank, "reset(options)")
        self._state, ids = self._new(self.num_envs)
        self._user_ids = np.array(ids, dtype=np.int64)
        self._autoreset[:] = False
        return self._observation(), {}

    def _check_actions(self, actions: Any) -> NDArray[np.int64]:
        arr = np.asarray(actions)
        n = self._model.n_slots
        if arr.shape != (self.num_envs,) or arr.dtype.kind not in "iu":
            raise InvalidAction(
                f"actions must be an integer array of shape ({self.num_envs},), got shape {arr.shape} dtype {arr.dtype}."
            )
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            raise InvalidAction(f"actions must be ints in [0, {n}), got min {arr.min()} and max {arr.max()}.")
        return arr.astype(np.int64, copy=False)

    def step(
        self, actions: Any
    ) -> tuple[Any, NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_], dict[str, Any]]:
        """Send ``actions[i]`` to sub-env ``i``'s subscriber and advance every subscriber one week.

        Raises:
            ResetNeeded: Before the first ``reset``.
            InvalidAction: For actions outside the batched action space (the env stays usable).
        """
        state = self._state
        if state is None:
            raise ResetNeeded("Call reset() before step().")
        acts = self._check_actions(actions)
        resetting = self._autoreset
        n_reset = int(resetting.sum())
        n = self.num_envs
        terminated = np.zeros(n, dtype=np.bool_)
        truncated = np.zeros(n, dtype=np.bool_)
        info: dict[str, Any] = {}
        if n_reset < n:
            uniforms = self.np_random.random((2, n))
            out = self._model.advance(state, acts, uniforms)
            active = ~resetting
            probs = self._model.slot_probs(out.click_probs)
            myopic = probs.argmax(axis=1)
            best = probs[np.arange(n), myopic]
            rewards = np.where(active, out.rewards, 0.0)
            np.logical_and(out.unsubscribed, active, out=terminated)
            np.logical_and(state.week >= self.horizon, active, out=truncated)
            truncated &= ~terminated
            info = {
                "click_probs": probs,
                "click_prob": out.click_prob,
                "best_click_prob": best,
                "myopic_action": myopic,
                "regret": best - out.click_prob,
                "hazard": out.hazard,
                "fatigue": out.fatigue,
                "unsubscribed": terminated.copy(),
                "action_id": self._model.ids[acts],
                "user_id": self._user_ids.copy(),
            }
            for key in list(info):
                info["_" + key] = active
        else:
            rewards = np.zeros(n)
        done = terminated | truncated
        if self._same_step:
            if done.any():
                final = self._observation()
                final_obs = np.empty(n, dtype=object)
                final_info = np.empty(n, dtype=object)
                for i in np.flatnonzero(done):
                    final_obs[i] = {k: v[i] for k, v in final.items()} if isinstance(final, dict) else final[i]
                    final_info[i] = {k: v[i] for k, v in info.items() if not k.startswith("_")}
                info = {
                    **info,
                    "final_obs": final_obs,
                    "_final_obs": done,
                    "final_info": final_info,
                    "_final_info": done,
                }
            resetting, n_reset = done, int(done.sum())
        if n_reset:
            rows = np.flatnonzero(resetting)
            fresh, ids = self._new(n_reset)
            state.replace_rows(rows, fresh)
            self._user_ids[rows] = ids
        self._autoreset = np.zeros(n, dtype=np.bool_) if self._same_step else done
        return self._observation(), rewards, terminated, truncated, info
