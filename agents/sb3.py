"""A trained Stable-Baselines3 policy (PPO, A2C or DQN) serving as the company's targeting agent.

The policy was trained on ``ActionBank/Targeting-v0`` (see :func:`actionbank_env.training.train`); the adapter
builds, for a whole batch of users, exactly the observations that env would give and evaluates the policy
network once per batch:

- plain mode: the user's features as float32, shape (B, d_user); the model's ``Discrete(K)`` must match the bank;
- ``observe_bank`` mode: the ``Dict`` observation ``{"user", "bank", "action_mask"}`` with the bank projected as
  the env's :class:`~actionbank_env.envs._common.BankProjection` does (fitted on the world's reference
  embeddings, which the agent receives in its context) and padded to the model's ``max_bank_size``; choices are
  restricted to the real (unmasked) slots. (agents/ may not import ``actionbank_env.envs``, so the projection
  comes from :mod:`actionbank_env.core.projection`, the code the env uses; a test checks they agree.)

Propensities: 1.0 for ``deterministic=True`` (argmax of the action probabilities, or of the Q-values for DQN).
With ``deterministic=False`` the action is drawn with the agent's own ``rng`` from the policy's categorical
distribution (PPO/A2C; renormalised over real slots) or epsilon-greedily from the Q-values with the model's
``exploration_rate`` (DQN), and the propensity is the probability of the drawn action under that distribution.

The policy is frozen: ``update`` is a no-op returning ``{}``. stable_baselines3 and torch are imported only
when the agent is built.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_bool, check_choice, check_prob, check_str
from actionbank_env.core.actions import ActionBank
from actionbank_env.core.projection import BankProjection, padded_bank
from actionbank_env.errors import ConfigError, ConfigTypeError
from actionbank_env.integrations.sb3 import SB3_ALGORITHMS, sb3_class
from actionbank_env.protocols import AgentContext, Decision

from ._common import check_bank, check_feedback, check_users, make_decision, require_bank

__all__ = ["SB3PolicyConfig", "SB3PolicyAgent", "load_sb3_model"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SB3PolicyConfig:
    """Settings of :class:`SB3PolicyAgent` (the model object itself is passed separately).

    Attributes:
        model_path: A model saved by ``model.save`` (``.zip``); ``None`` when a model object is given.
        algo: ``"ppo"``, ``"a2c"`` or ``"dqn"``: the class used to load ``model_path``.
        deterministic: Argmax actions with propensity 1.0; otherwise sample with the agent's rng.
        observe_bank: Whether the policy was trained with ``observe_bank=True`` (``Dict`` observations);
            ``None`` infers it from the model's observation space.
        device: torch device for loading and inference.
    """

    model_path: str | None = None
    algo: str = "ppo"
    deterministic: bool = True
    observe_bank: bool | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.model_path is not None:
            if not isinstance(self.model_path, str | os.PathLike):
                raise ConfigTypeError(
                    f"SB3PolicyConfig.model_path must be a str or path, got {self.model_path!r} "
                    f"of type {type(self.model_path).__name__}."
                )
            object.__setattr__(self, "model_path", os.fspath(self.model_path))
        check_choice("SB3PolicyConfig.algo", self.algo, SB3_ALGORITHMS)
        check_bool("SB3PolicyConfig.deterministic", self.deterministic)
        if self.observe_bank is not None:
            check_bool("SB3PolicyConfig.observe_bank", self.observe_bank)
        check_str("SB3PolicyConfig.device", self.device)


def load_sb3_model(algo: str, path: str | os.PathLike[str], *, device: str = "cpu") -> Any:
    """Load a model saved by ``model.save`` with the class of ``algo`` (``"ppo"``, ``"a2c"``, ``"dqn"``)."""
    cls = sb3_class(algo)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"SB3 model file {os.fspath(path)!r} does not exist.")
    return cls.load(path, device=device)


class SB3PolicyAgent:
    """A frozen Stable-Baselines3 policy as a :class:`~actionbank_env.protocols.TargetingAgent`.

    Args:
        context: The world's description (d_user; reference embeddings for the bank projection).
        rng: Draws actions when ``deterministic=False`` (the agent's only randomness).
        model: A trained SB3 model (``PPO``, ``A2C`` or ``DQN`` instance); or give ``model_path``.
        model_path: Path of a saved model (loaded with the class of ``algo``).
        algo: ``"ppo"``, ``"a2c"`` or ``"dqn"``.
        deterministic: Argmax actions (propensity 1.0) or sampled ones (propensity = their probability).
        observe_bank: ``None`` infers it from the model's observation space.
        device: torch device.

    Raises:
        ConfigError: With neither or both of ``model`` and ``model_path``, or a model whose spaces do not
            fit ``context`` (user dimension) or, at ``set_bank``, the bank (action count).
    """

    #: Not an evaluation-only agent: it never sees the ground truth.
    evaluation_only: ClassVar[bool] = False

    #: The config whose fields are this agent's keyword parameters.
    config_class: ClassVar[type[SB3PolicyConfig]] = SB3PolicyConfig

    def __init__(
        self,
        context: AgentContext,
        *,
        rng: np.random.Generator,
        model: Any = None,
        model_path: str | os.PathLike[str] | None = None,
        algo: str = "ppo",
        deterministic: bool = True,
        observe_bank: bool | None = None,
        device: str = "cpu",
    ) -> None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"SB3PolicyAgent rng must be a numpy Generator, got {type(rng).__name__}.")
        self.config = SB3PolicyConfig(
            model_path=None if model_path is None else os.fspath(model_path),
            algo=algo,
            deterministic=deterministic,
            observe_bank=observe_bank,
            device=device,
        )
        if (model is None) == (self.config.model_path is None):
            raise ConfigError(
                "SB3PolicyAgent needs exactly one of model= and model_path=, got "
                f"model={'set' if model is not None else None}, model_path={self.config.model_path!r}."
            )
        if model is None:
            model = load_sb3_model(self.config.algo, self.config.model_path, device=device)  # type: ignore[arg-type]
        self.model = model
        self.context = context
        self._rng = rng
        self.d_user = int(context.d_user)
        self._is_dqn = hasattr(model.policy, "q_net")
        from gymnasium import spaces

        obs_space = model.observation_space
        is_dict = isinstance(obs_space, spaces.Dict)
        if self.config.observe_bank is not None and self.config.observe_bank != is_dict:
            raise ConfigError(
                f"SB3PolicyAgent observe_bank={self.config.observe_bank} does not match the model's observation "
                f"space ({type(obs_space).__name__})."
            )
        self.observe_bank = is_dict
        user_space = obs_space["user"] if is_dict else obs_space
        if tuple(user_space.shape) != (self.d_user,):
            raise ConfigError(
                f"SB3PolicyAgent model expects user observations of shape {tuple(user_space.shape)}, "
                f"but the world has d_user={self.d_user}."
            )
        if not isinstance(model.action_space, spaces.Discrete):
            raise ConfigError(f"SB3PolicyAgent needs a Discrete action space, got {type(model.action_space).__name__}.")
        self.n_outputs = int(model.action_space.n)
        if is_dict:
            self.max_bank_size, d_obs = (int(s) for s in obs_space["bank"].shape)
            self._projection = BankProjection(context.reference_embeddings, d_obs)
        self._bank: ActionBank | None = None
        self._n_actions = 0

    @property
    def bank(self) -> ActionBank | None:
        """The current bank (``None`` before :meth:`set_bank`)."""
        return self._bank

    def set_bank(self, bank: ActionBank) -> None:
        """Deploy ``bank``: its size must match the model (``K``, or at most ``max_bank_size`` with observe_bank)."""
        n = len(check_bank(bank))
        if self.observe_bank:
            if n > self.max_bank_size:
                raise ConfigError(
                    f"bank has {n} actions but the policy was trained with max_bank_size={self.max_bank_size}."
                )
            self._bank_features, self._mask = padded_bank(self._projection, bank, self.max_bank_size)
        elif n != self.n_outputs:
            raise ConfigError(
                f"bank has {n} actions but the policy has Discrete({self.n_outputs}) actions; train with "
                "observe_bank=True for banks that change size."
            )
        self._bank = bank
        self._n_actions = n

    def _observations(self, users: NDArray[np.float64]) -> Any:
        user_obs = users.astype(np.float32)
        if not self.observe_bank:
            return user_obs
        n = users.shape[0]
        return {
            "user": user_obs,
            "bank": np.broadcast_to(self._bank_features, (n, *self._bank_features.shape)).copy(),
            "action_mask": np.broadcast_to(self._mask, (n, self._mask.shape[0])).copy(),
        }

    def action_probabilities(self, users: NDArray[np.float64]) -> NDArray[np.float64]:
        """The policy's distribution over the bank's actions for each user, shape (B, K).

        PPO/A2C: the categorical policy restricted to the real slots and renormalised. DQN: the greedy
        policy, epsilon-mixed with the model's ``exploration_rate`` when ``deterministic=False``.
        """
        require_bank(self._bank, "SB3PolicyAgent")
        users = check_users(users, self.d_user)
        import torch

        policy = self.model.policy
        obs_tensor, _ = policy.obs_to_tensor(self._observations(users))
        k = self._n_actions
        with torch.no_grad():
            if self._is_dqn:
                q = policy.q_net(obs_tensor).cpu().numpy().astype(np.float64)[:, :k]
                probs = np.zeros_like(q)
                probs[np.arange(q.shape[0]), q.argmax(axis=1)] = 1.0
                if not self.config.deterministic:
                    eps = check_prob("exploration_rate", float(getattr(self.model, "exploration_rate", 0.0)))
                    probs = (1.0 - eps) * probs + eps / k
                return np.asarray(probs, dtype=np.float64)
            probs = policy.get_distribution(obs_tensor).distribution.probs.cpu().numpy().astype(np.float64)
        probs = probs[:, :k]
        total = probs.sum(axis=1, keepdims=True)
        out: NDArray[np.float64] = np.divide(probs, total, out=np.full_like(probs, 1.0 / k), where=total > 0)
        return out

    def act(self, users: NDArray[np.float64]) -> Decision:
        """One batched forward pass; argmax (propensity 1.0) or a draw from the policy with the agent's rng.

        Args:
            users: User features, shape (B, d_user).

        Returns:
            A :class:`Decision` with indices (B,) into the bank and their propensities (B,).
        """
        probs = self.action_probabilities(users)
        n = probs.shape[0]
        if self.config.deterministic:
            return make_decision(probs.argmax(axis=1).astype(np.int64), np.ones(n))
        cum: NDArray[np.float64] = np.cumsum(probs, axis=1)
        u = self._rng.random((n,))
        actions = np.minimum(np.sum(cum < u[:, None] * cum[:, -1:], axis=1), probs.shape[1] - 1).astype(np.int64)
        return make_decision(actions, probs[np.arange(n), actions])

    def update(
        self, users: NDArray[np.float64], actions: NDArray[np.int64], rewards: NDArray[np.float64]
    ) -> dict[str, float]:
        """A frozen policy does not learn online: checks the batch and returns ``{}``."""
        require_bank(self._bank, "SB3PolicyAgent")
        check_feedback(users, actions, rewards, self.d_user, self._n_actions)
        return {}
