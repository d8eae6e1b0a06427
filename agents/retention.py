"""Baselines for ``ActionBank/Retention-v0``: oracle-myopic, fixed cadence, targeting agents and SB3 policies.

Every policy decides for a batch of subscribers (one row per sub-env of
:class:`~actionbank_env.envs.retention.RetentionVectorEnv`) once a week; :func:`run_lifetimes` plays one cohort
of subscribers from signup to the end of their lifetime and returns what each did.

- :class:`OracleMyopicPolicy`: sends the message with the highest click probability *this week* (ground truth,
  fatigue and novelty included); never rests, since resting has click probability 0. What a sender who
  maximises the next click does with perfect knowledge.
- :class:`FixedCadencePolicy`: the same oracle message, but only every ``every`` weeks.
- :class:`TargetingAgentPolicy`: any :class:`~actionbank_env.protocols.TargetingAgent` (LinUCB, bootstrapped DQN,
  ...) through the targeting protocol, one decision per week: its "users" are the subscriber observations and
  its bank is the K messages plus a "no email" action; it learns from clicks, like a bandit.
- :class:`SB3RetentionPolicy`: a trained Stable-Baselines3 model (see :func:`train_sb3`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_int, check_real
from actionbank_env.core.actions import Action, ActionBank
from actionbank_env.core.retention import HISTORY_WEEKS
from actionbank_env.protocols import AgentContext, TargetingAgent

__all__ = [
    "FixedCadencePolicy",
    "LifetimeResult",
    "OracleMyopicPolicy",
    "OracleRestingPolicy",
    "PPO_DEFAULTS",
    "RetentionPolicy",
    "SB3_POLICIES",
    "SubscriberEnvs",
    "SB3RetentionPolicy",
    "TargetingAgentPolicy",
    "no_email_action",
    "run_lifetimes",
    "sb3_vec_env",
    "subscriber_feature_names",
    "train_sb3",
]


class SubscriberEnvs(Protocol):
    """What these policies use of :class:`~actionbank_env.envs.retention.RetentionVectorEnv` (``agents`` does not
    import the env modules: build the env with ``gymnasium.make_vec("ActionBank/Retention-v0", ...)``)."""

    num_envs: int
    metadata: dict[str, Any]
    config: Any
    world: Any
    horizon: int
    single_action_space: Any
    single_observation_space: Any

    @property
    def bank(self) -> ActionBank:
        """The deployed bank."""
        ...

    @property
    def weeks(self) -> NDArray[np.int64]:
        """Tenure of every sub-env's subscriber."""
        ...

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict[str, Any]]:
        """Start new subscribers in every sub-env."""
        ...

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Advance every subscriber one week."""
        ...

    def current_click_probs(self) -> NDArray[np.float64]:
        """Ground truth: click probability of every action now, (num_envs, n_slots)."""
        ...

    def rested_best_click_probs(self) -> NDArray[np.float64]:
        """Ground truth: each subscriber's best click probability when rested."""
        ...

    def sends_email(self, actions: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether each action sends a message."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


class RetentionPolicy(Protocol):
    """A weekly email policy for a batch of subscribers."""

    def act(self, observations: Any, envs: SubscriberEnvs) -> NDArray[np.int64]:
        """Actions for every sub-env, shape (num_envs,). ``envs`` gives oracles access to the ground truth."""
        ...

    def update(
        self, observations: Any, actions: NDArray[np.int64], rewards: NDArray[np.float64], active: NDArray[np.bool_]
    ) -> None:
        """Learn from the week just played (``active`` is False for sub-envs whose action was ignored)."""
        ...


class OracleMyopicPolicy:
    """Send the message with the highest click probability this week (ground truth); never rest."""

    def act(self, observations: Any, envs: SubscriberEnvs) -> NDArray[np.int64]:
        """Argmax of the current click probabilities over the bank's messages."""
        probs = envs.current_click_probs()
        return np.asarray(probs[:, : len(envs.bank)].argmax(axis=1), dtype=np.int64)

    def update(self, observations: Any, actions: Any, rewards: Any, active: Any) -> None:
        """Nothing to learn."""


class FixedCadencePolicy:
    """Send the oracle-myopic message every ``every`` weeks (weeks 0, every, 2 * every, ...), nothing otherwise.

    Args:
        every: Weeks between two emails (1 is :class:`OracleMyopicPolicy`).
    """

    def __init__(self, every: int) -> None:
        self.every = check_int("FixedCadencePolicy.every", every, low=1)

    def act(self, observations: Any, envs: SubscriberEnvs) -> NDArray[np.int64]:
        """The oracle message where the subscriber's tenure is a multiple of ``every``, the last action elsewhere."""
        probs = envs.current_click_probs()
        best = probs[:, : len(envs.bank)].argmax(axis=1)
        rest = int(envs.single_action_space.n) - 1
        actions: NDArray[np.int64] = np.where(envs.weeks % self.every == 0, best, rest).astype(np.int64)
        return actions

    def update(self, observations: Any, actions: Any, rewards: Any, active: Any) -> None:
        """Nothing to learn."""


class OracleRestingPolicy:
    """Send the oracle-myopic message only when it is worth at least ``ratio`` of what it is to a rested subscriber.

    An evaluation-only reference (it reads the ground truth, fatigue and novelty included): it shows how much a
    sender who looks past this week can gain over :class:`OracleMyopicPolicy` with the same perfect targeting.

    Args:
        ratio: Send when the best click probability now is at least ``ratio`` times the subscriber's best click
            probability when rested and never mailed; rest otherwise.
    """

    def __init__(self, ratio: float) -> None:
        self.ratio = check_real("OracleRestingPolicy.ratio", ratio, low=0.0, high=1.0)

    def act(self, observations: Any, envs: SubscriberEnvs) -> NDArray[np.int64]:
        """The oracle message where it is worth sending, the last action elsewhere."""
        n_actions = len(envs.bank)
        probs = envs.current_click_probs()[:, :n_actions]
        best = probs.argmax(axis=1)
        worth = probs[np.arange(probs.shape[0]), best] >= self.ratio * envs.rested_best_click_probs()
        actions: NDArray[np.int64] = np.where(worth, best, int(envs.single_action_space.n) - 1).astype(np.int64)
        return actions

    def update(self, observations: Any, actions: Any, rewards: Any, active: Any) -> None:
        """Nothing to learn."""


def no_email_action(d_embed: int) -> Action:
    """The pseudo-message a targeting agent chooses to send nothing (zero embedding, id ``"no-email"``)."""
    return Action("no-email", "(no email this week)", np.zeros(d_embed, dtype=np.float32), origin="baseline")


def subscriber_feature_names(envs: SubscriberEnvs) -> tuple[str, ...]:
    """Names of the columns of the flat subscriber observation (with the privileged ``oracle_*`` columns of
    ``oracle_features=True``)."""
    d_msg = envs.config.message_obs_dim
    oracle: tuple[str, ...] = ()
    if envs.config.oracle_features:
        n_slots = int(envs.single_action_space.n) - 1
        oracle = (
            *(f"oracle_click_prob_{i}" for i in range(n_slots)),
            "oracle_best_click_prob",
            "oracle_rested_best_click_prob",
            "oracle_best_hazard",
        )
    return (
        *envs.world.feature_names,
        "weeks_since_email",
        f"emails_last_{HISTORY_WEEKS}_weeks",
        f"clicks_last_{HISTORY_WEEKS}_weeks",
        "tenure",
        *(f"last_message_{i}" for i in range(d_msg)),
        *oracle,
    )


class TargetingAgentPolicy:
    """A targeting agent deciding once a week per subscriber, on the subscriber observation, learning from clicks.

    The agent is built by ``make_agent(context, rng)`` with an :class:`AgentContext` whose "users" are the flat
    subscriber observations; its bank is the env's K messages followed by :func:`no_email_action`. It is a
    bandit: it maximises the expected click of each week (so it learns that an email beats none), which is the
    point of this baseline.

    Args:
        envs: The vector env (flat observations, ``observe_bank=False``).
        make_agent: ``(context, rng) -> TargetingAgent``, e.g. ``lambda c, rng: LinUCBAgent(c, rng=rng)``.
        rng: The agent's generator.
    """

    def __init__(
        self,
        envs: SubscriberEnvs,
        make_agent: Any,
        *,
        rng: np.random.Generator,
    ) -> None:
        if envs.config.observe_bank:
            raise ValueError("TargetingAgentPolicy needs flat observations (observe_bank=False).")
        names = subscriber_feature_names(envs)
        context = AgentContext(
            d_user=len(names),
            d_embed=envs.world.d_embed,
            feature_names=names,
            reference_embeddings=envs.world.reference_embeddings,
        )
        self.agent: TargetingAgent = make_agent(context, rng)
        self.agent.set_bank(ActionBank([*envs.bank, no_email_action(envs.world.d_embed)]))

    def act(self, observations: Any, envs: SubscriberEnvs) -> NDArray[np.int64]:
        """The agent's decision on the observations (index K, the no-email action, is the env's last action)."""
        return np.asarray(self.agent.act(np.asarray(observations, dtype=np.float64)).actions, dtype=np.int64)

    def update(
        self, observations: Any, actions: NDArray[np.int64], rewards: NDArray[np.float64], active: NDArray[np.bool_]
    ) -> None:
        """Update on the sub-envs whose action was played."""
        rows = np.flatnonzero(active)
        if rows.size:
            users = np.asarray(observations, dtype=np.float64)[rows]
            self.agent.update(users, actions[rows], rewards[rows])


class SB3RetentionPolicy:
    """A trained Stable-Baselines3 model acting on the batched observations.

    Args:
        model: A fitted SB3 algorithm (``model.predict``).
        deterministic: Act by the mode of the policy.
    """

    def __init__(self, model: Any, *, deterministic: bool = True) -> None:
        self.model = model
        self.deterministic = deterministic

    def act(self, observations: Any, envs: SubscriberEnvs) -> NDArray[np.int64]:
        """``model.predict`` on the whole batch."""
        actions, _ = self.model.predict(observations, deterministic=self.deterministic)
        return np.asarray(actions, dtype=np.int64).reshape(envs.num_envs)

    def update(self, observations: Any, actions: Any, rewards: Any, active: Any) -> None:
        """Trained offline: nothing to learn here."""


@dataclass(frozen=True, slots=True)
class LifetimeResult:
    """What each subscriber of a cohort did over its lifetime (arrays of shape (n_subscribers,)).

    Attributes:
        clicks: Clicks over the lifetime.
        sends: Emails sent.
        unsubscribed: Whether the subscriber unsubscribed before the horizon.
        weeks: Weeks subscribed.
    """

    clicks: NDArray[np.float64]
    sends: NDArray[np.float64]
    unsubscribed: NDArray[np.bool_]
    weeks: NDArray[np.int64]

    def summary(self) -> dict[str, float]:
        """Means per subscriber and the unsubscribe rate (per subscriber and per email sent)."""
        n_sends = float(self.sends.sum())
        return {
            "clicks_per_subscriber": float(self.clicks.mean()),
            "emails_per_subscriber": float(self.sends.mean()),
            "unsubscribe_rate": float(self.unsubscribed.mean()),
            "unsubscribes_per_email": float(self.unsubscribed.sum() / n_sends) if n_sends else 0.0,
            "clicks_per_email": float(self.clicks.sum() / n_sends) if n_sends else 0.0,
            "weeks_subscribed": float(self.weeks.mean()),
        }


def run_lifetimes(
    envs: SubscriberEnvs, policy: RetentionPolicy, *, seed: int | None, learn: bool = True
) -> LifetimeResult:
    """Play one cohort of ``envs.num_envs`` subscribers from signup to unsubscribe or the horizon.

    ``envs.reset(seed=seed)`` draws the cohort (so every policy meets the same subscribers for the same seed),
    then ``horizon`` weeks are played; a sub-env whose subscriber left keeps stepping (the vector env autoresets
    it), but only the first subscriber of each sub-env is counted.

    Args:
        envs: The vector env.
        policy: The policy; ``update`` is called after every week when ``learn``.
        seed: Seed of the cohort (``None`` continues the env's stream).
        learn: Call ``policy.update``.
    """
    n = envs.num_envs
    obs, _ = envs.reset(seed=seed)
    alive = np.ones(n, dtype=np.bool_)
    active = np.ones(n, dtype=np.bool_)  # the action of this step is played (not an autoreset step)
    clicks = np.zeros(n)
    sends = np.zeros(n)
    weeks = np.zeros(n, dtype=np.int64)
    unsubscribed = np.zeros(n, dtype=np.bool_)
    for _ in range(envs.horizon):
        actions = policy.act(obs, envs)
        next_obs, rewards, terminated, truncated, info = envs.step(actions)
        counted = alive & active
        clicks += np.where(counted, rewards, 0.0)
        sends += counted & envs.sends_email(actions)
        weeks += counted
        unsubscribed |= counted & terminated
        if learn:
            policy.update(obs, actions, rewards, active)
        alive &= ~(terminated | truncated)
        active = ~(terminated | truncated)
        obs = next_obs
    return LifetimeResult(clicks, sends, unsubscribed, weeks)


def sb3_vec_env(envs: SubscriberEnvs) -> Any:
    """The native vector twin as a Stable-Baselines3 ``VecEnv`` (one batched call per step, no Python loop over envs).

    ``envs`` must use ``autoreset_mode=AutoresetMode.SAME_STEP`` (SB3's convention): an ended episode's final
    observation goes to ``infos[i]["terminal_observation"]`` and a horizon end sets ``"TimeLimit.truncated"``, so
    SB3 bootstraps through truncations and not through unsubscribes.

    Example:
        >>> import gymnasium
        >>> import actionbank_env
        >>> from actionbank_env.core.world import World, WorldConfig
        >>> world = World.build(WorldConfig(embedder="hashing", initial_actions=4, n_reference_texts=64,
        ...                                 n_reference_users=256))
        >>> envs = gymnasium.make_vec("ActionBank/Retention-v0", num_envs=8, vectorization_mode="vector_entry_point",
        ...                           world=world, autoreset_mode="SameStep")
        >>> venv = sb3_vec_env(envs)
        >>> venv.reset().shape
        (8, 20)
    """
    from gymnasium.vector import AutoresetMode
    from stable_baselines3.common.vec_env import VecEnv

    if envs.metadata["autoreset_mode"] != AutoresetMode.SAME_STEP:
        raise ValueError("sb3_vec_env needs RetentionVectorEnv(..., autoreset_mode=AutoresetMode.SAME_STEP).")

    class _RetentionSB3VecEnv(VecEnv):
        def __init__(self) -> None:
            super().__init__(envs.num_envs, envs.single_observation_space, envs.single_action_space)
            self.envs = envs
            self._actions: NDArray[np.int64] = np.zeros(envs.num_envs, dtype=np.int64)

        def reset(self) -> Any:
            seed = self._seeds[0] if self._seeds and self._seeds[0] is not None else None
            obs, _ = envs.reset(seed=seed)
            self._reset_seeds()
            return obs

        def step_async(self, actions: Any) -> None:
            self._actions = np.asarray(actions, dtype=np.int64).reshape(envs.num_envs)

        def step_wait(self) -> Any:
            obs, rewards, terminated, truncated, info = envs.step(self._actions)
            dones = terminated | truncated
            infos: list[dict[str, Any]] = [{} for _ in range(envs.num_envs)]
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = info["final_obs"][i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i])
            return obs, rewards.astype(np.float32), dones, infos

        def close(self) -> None:
            envs.close()

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [getattr(envs, attr_name)] * len(list(self._get_indices(indices)))

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            setattr(envs, attr_name, value)

        def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
            return [getattr(envs, method_name)(*args, **kwargs)] * len(list(self._get_indices(indices)))

        def env_is_wrapped(self, wrapper_class: Any, indices: Any = None) -> list[bool]:
            return [False] * len(list(self._get_indices(indices)))

    return _RetentionSB3VecEnv()


#: PPO hyperparameters of :func:`train_sb3` (SB3 names): large batches from the vector twin, gamma 0.95 (fatigue and
#: novelty fade within a few weeks of a 26-week lifetime), a small entropy bonus. Chosen on dev world seeds 0-1
#: (none of the measurement seeds) by a handful of runs, not a sweep.
PPO_DEFAULTS: dict[str, Any] = {
    "n_steps": 32,
    "batch_size": 2048,
    "n_epochs": 10,
    "learning_rate": 1e-3,
    "gamma": 0.95,
    "ent_coef": 0.002,
    "policy_kwargs": {"net_arch": [128, 128]},
}

#: Policies of :func:`train_sb3`: ``"mlp"`` is SB3's ``MlpPolicy`` on the flat observation (K + 1 output rows);
#: ``"slots"`` is :class:`agents.slot_policy.SlotScoringPolicy` on the ``Dict`` observation (``observe_bank=True``),
#: which scores every message slot with shared weights (``net_arch`` sizes its state and critic MLPs).
SB3_POLICIES = ("mlp", "slots")


def train_sb3(
    env_kwargs: dict[str, Any],
    *,
    total_timesteps: int,
    seed: int,
    n_envs: int = 256,
    algo: str = "ppo",
    algo_kwargs: dict[str, Any] | None = None,
    normalize_reward: bool = False,
    callback: Any = None,
    policy: str = "mlp",
    click_model: Any = None,
) -> Any:
    """Train a Stable-Baselines3 ``PPO`` (or ``A2C``) on ``ActionBank/Retention-v0``'s native vector twin.

    The training env is one native vector twin (``RetentionVectorEnv``) of ``n_envs`` subscribers (``SAME_STEP`` autoreset,
    seeded with ``seed``) seen through :func:`sb3_vec_env`; torch is seeded by SB3 from the same ``seed``.

    Args:
        env_kwargs: Keyword arguments of ``RetentionVectorEnv`` (world, horizon, dynamics fields, ...).
        total_timesteps: Environment steps (subscriber-weeks) of training.
        seed: Seeds the training env and the model.
        n_envs: Subscribers in flight.
        algo: ``"ppo"`` or ``"a2c"``.
        algo_kwargs: Hyperparameters of the algorithm (``None``: :data:`PPO_DEFAULTS` for PPO, SB3's defaults for A2C).
        normalize_reward: Train on rewards scaled by a running estimate of the discounted return's standard
            deviation (SB3's ``VecNormalize(norm_obs=False, norm_reward=True)``, with the algorithm's ``gamma``);
            the policy still acts on the raw observations, so :class:`SB3RetentionPolicy` uses it as it is.
        callback: An SB3 callback passed to ``learn`` (e.g. evaluations during training).
        policy: ``"mlp"`` (SB3's ``MlpPolicy`` on the flat observation) or ``"slots"`` (:class:`SlotScoringPolicy
            <agents.slot_policy.SlotScoringPolicy>`, shared weights over the message slots; it sets
            ``observe_bank=True``, so evaluate the model on an env built with ``observe_bank=True`` too).
        click_model: A fitted :class:`~agents.retention_estimates.RetentionClickModel`: train on its estimates (the
            ``"estimate"`` entry of :class:`~agents.retention_estimates.EstimatedFeaturesVector`; needs
            ``policy="slots"``), and evaluate on an env wrapped the same way.

    Returns:
        The trained model.
    """
    import stable_baselines3 as sb3
    from gymnasium.vector import AutoresetMode

    algos = {"ppo": sb3.PPO, "a2c": sb3.A2C}
    if algo not in algos:
        raise ValueError(f"train_sb3 algo must be one of {sorted(algos)}, got {algo!r}.")
    if policy not in SB3_POLICIES:
        raise ValueError(f"train_sb3 policy must be one of {list(SB3_POLICIES)}, got {policy!r}.")
    import gymnasium

    policy_class: Any = "MlpPolicy"
    if policy == "slots":
        from agents.slot_policy import SlotScoringPolicy

        if env_kwargs.get("observe_bank") is False:
            raise ValueError("train_sb3(policy='slots') reads the bank observation; do not pass observe_bank=False.")
        env_kwargs = {**env_kwargs, "observe_bank": True}
        policy_class = SlotScoringPolicy

    envs = gymnasium.make_vec(
        "ActionBank/Retention-v0",
        num_envs=n_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode=AutoresetMode.SAME_STEP,
        **env_kwargs,
    )
    if click_model is not None:
        if policy != "slots":
            raise ValueError("train_sb3(click_model=...) adds a Dict entry; use policy='slots'.")
        from agents.retention_estimates import EstimatedFeaturesVector

        envs = EstimatedFeaturesVector(envs, click_model)
    vec_env = sb3_vec_env(cast(SubscriberEnvs, envs))
    vec_env.seed(seed)
    if algo_kwargs is None:
        algo_kwargs = PPO_DEFAULTS if algo == "ppo" else {}
    if policy == "slots":  # the policy finds the last email's projection at the end of the subscriber features
        policy_kwargs = {
            **algo_kwargs.get("policy_kwargs", {}),
            "message_obs_dim": cast(SubscriberEnvs, envs).config.message_obs_dim,
        }
        algo_kwargs = {**algo_kwargs, "policy_kwargs": policy_kwargs}
    if normalize_reward:
        from stable_baselines3.common.vec_env import VecNormalize

        vec_env = VecNormalize(vec_env, norm_obs=False, norm_reward=True, gamma=float(algo_kwargs.get("gamma", 0.99)))
    model = algos[algo](policy_class, vec_env, seed=seed, verbose=0, device="cpu", **algo_kwargs)
    model.learn(total_timesteps=total_timesteps, callback=callback)
    vec_env.close()
    return model
