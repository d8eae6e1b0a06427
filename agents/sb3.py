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

import io
import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_bool, check_choice, check_prob, check_str
from actionbank_env.core.actions import ActionBank
from actionbank_env.core.projection import BankProjection, padded_bank
from actionbank_env.errors import ConfigError, ConfigTypeError, DataError, MissingFileError
from actionbank_env.integrations.sb3 import SB3_ALGORITHMS, sb3_class
from actionbank_env.protocols import AgentContext, Decision

from ._common import check_bank, check_feedback, check_users, make_decision, require_bank

__all__ = ["SB3PolicyConfig", "SB3PolicyAgent", "SB3Policy", "load_sb3_model"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SB3PolicyConfig:
    """Settings of :class:`SB3PolicyAgent` (the model object itself is passed separately).

    Attributes:
        model_path: A model saved by ``model.save`` (``.zip``); ``None`` when a model object is given. The file is
            read as data (:func:`load_sb3_model`): nothing in it is unpickled or run.
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


#: Largest ``data`` entry (JSON) and ``policy.pth`` read from a model zip: far above any policy of these envs, far
#: below what would exhaust memory.
_MAX_DATA_BYTES = 16 * 2**20
_MAX_WEIGHTS_BYTES = 1 * 2**30
#: ``policy_kwargs`` keys rebuilt from plain values (anything else, e.g. a custom features extractor class, is code).
_PLAIN_POLICY_KWARGS = ("net_arch", "ortho_init", "share_features_extractor", "normalize_images", "n_critics")
#: ``activation_fn`` values a model file may declare (by name; SB3 stores the class pickled, next to its repr).
_ACTIVATIONS = ("ReLU", "Tanh", "ELU", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Softplus")
#: The ``Dict`` observation of ``Targeting-v0`` with ``observe_bank=True``.
_DICT_KEYS = ("action_mask", "bank", "user")
_BOX_REPR = re.compile(r"'(\w+)': Box\(([^,]+), ([^,]+), \(([\d, ]*)\), (float32|float64|int8|int64)\)")


@dataclass(frozen=True)
class SB3Policy:
    """A policy rebuilt from a model zip: what :class:`SB3PolicyAgent` needs of an SB3 model, and nothing run from
    the file.

    Attributes:
        algo: ``"ppo"``, ``"a2c"`` or ``"dqn"``.
        policy: The SB3 policy module, its weights loaded from ``policy.pth``.
        observation_space: Rebuilt from the declared shapes.
        action_space: ``Discrete(n)``.
        exploration_rate: DQN's epsilon at save time (0.0 for PPO/A2C).
    """

    algo: str
    policy: Any
    observation_space: Any
    action_space: Any
    exploration_rate: float

    def predict(self, observation: Any, deterministic: bool = True) -> tuple[Any, Any]:
        """``model.predict``: actions for a batch of observations (the policy's own ``predict``)."""
        return self.policy.predict(observation, deterministic=deterministic)  # type: ignore[no-any-return]


def _model_error(path: str, rule: str) -> DataError:
    return DataError(f"SB3 model file {path!r} {rule}")


def _read_member(archive: zipfile.ZipFile, name: str, limit: int, path: str) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise _model_error(path, f"has no {name!r} entry (not a model saved by model.save).") from None
    if info.file_size > limit:
        raise _model_error(path, f"entry {name!r} must be at most {limit} bytes, got {info.file_size}.")
    return archive.read(name)


def _space_from_declaration(entry: Any, path: str) -> Any:
    """A gymnasium space from the readable fields SB3 writes beside each pickled space (never the pickle)."""
    from gymnasium import spaces

    if not isinstance(entry, dict):
        raise _model_error(path, f"declares a space as {type(entry).__name__}, expected an object.")
    kind = str(entry.get(":type:", ""))
    if kind == "<class 'gymnasium.spaces.discrete.Discrete'>":
        n, start = str(entry.get("n", "")), str(entry.get("start", "0"))
        if not n.isdigit() or not 1 <= int(n) <= 100_000 or start != "0":
            raise _model_error(path, f"declares Discrete(n={n!r}, start={start!r}); need 1 <= n <= 100000, start 0.")
        return spaces.Discrete(int(n))
    if kind == "<class 'gymnasium.spaces.box.Box'>":
        shape, dtype = entry.get("_shape"), entry.get("dtype")
        if (
            not isinstance(shape, list)
            or len(shape) != 1
            or not all(isinstance(d, int) and 1 <= d <= 100_000 for d in shape)
            or dtype not in ("float32", "float64")
        ):
            raise _model_error(path, f"declares Box(shape={shape!r}, dtype={dtype!r}); need a 1-D float Box.")
        return spaces.Box(-np.inf, np.inf, tuple(shape), dtype=np.dtype(dtype))
    if kind == "<class 'gymnasium.spaces.dict.Dict'>":
        boxes: dict[str, Any] = {
            m.group(1): spaces.Box(
                -np.inf, np.inf, tuple(int(d) for d in m.group(4).split(",") if d.strip()), dtype=np.dtype(m.group(5))
            )
            for m in _BOX_REPR.finditer(str(entry.get("spaces", "")))
        }
        if tuple(sorted(boxes)) != _DICT_KEYS or any(
            not 1 <= int(np.prod(b.shape)) <= 10_000_000 for b in boxes.values()
        ):
            raise _model_error(
                path, f"declares a Dict space {str(entry.get('spaces'))[:200]!r}; need Boxes {list(_DICT_KEYS)}."
            )
        return spaces.Dict(boxes)
    raise _model_error(path, f"declares an observation or action space of type {kind[:100]!r}; not supported.")


def _policy_kwargs(entry: Any, path: str) -> dict[str, Any]:
    """``policy_kwargs`` from plain values; an activation by its declared name from an allowlist of torch.nn."""
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        raise _model_error(path, f"declares policy_kwargs as {type(entry).__name__}, expected an object.")
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key in (":type:", ":serialized:", "optimizer_class", "optimizer_kwargs"):
            continue  # the optimizer only trains; a frozen policy never builds it from the file
        if key == "activation_fn":
            match = re.fullmatch(r"<class 'torch\.nn\.modules\.activation\.(\w+)'>", str(value))
            if match is None or match.group(1) not in _ACTIVATIONS:
                raise _model_error(path, f"declares activation_fn {str(value)[:100]!r}; allowed: {list(_ACTIVATIONS)}.")
            import torch

            out[key] = getattr(torch.nn, match.group(1))
        elif key in _PLAIN_POLICY_KWARGS and isinstance(value, (bool, int, list, dict)):
            out[key] = value
        else:
            raise _model_error(
                path,
                f"declares policy_kwargs[{key!r}] = {str(value)[:100]!r}; only {list(_PLAIN_POLICY_KWARGS)} and "
                "activation_fn are rebuilt (a model file is data: no code or custom class is loaded from it).",
            )
    return out


def load_sb3_model(algo: str, path: str | os.PathLike[str], *, device: str = "cpu") -> SB3Policy:
    """Rebuild the policy of a model saved by ``model.save`` without running anything from the file.

    SB3's own ``.load`` unpickles (``cloudpickle``) every ``:serialized:`` entry of the zip's ``data``, so a crafted
    file runs its code on load. Here the file is treated as data: the spaces, the network shape
    (``policy_kwargs``) and DQN's ``exploration_rate`` come from the plain JSON fields SB3 writes beside each pickle,
    the policy class from ``algo`` and the observation kind (``MlpPolicy`` or ``MultiInputPolicy``), and the weights
    from ``policy.pth`` with ``torch.load(weights_only=True)`` (tensors only) into a strict ``load_state_dict``.
    No ``:serialized:`` payload is ever decoded.

    Args:
        algo: ``"ppo"``, ``"a2c"`` or ``"dqn"`` (the class the model was trained with).
        path: The ``.zip``.
        device: torch device.

    Raises:
        MissingFileError: If ``path`` is not a file.
        DataError: If the file is not a model zip, declares something other than plain data (a custom class, an
            unsupported space), or its weights do not fit the declared architecture.
    """
    import torch

    cls = sb3_class(algo)
    where = os.fspath(path)
    if not os.path.isfile(where):
        raise MissingFileError(f"SB3 model file {where!r} does not exist.")
    try:
        with zipfile.ZipFile(where) as archive:
            raw = _read_member(archive, "data", _MAX_DATA_BYTES, where)
            weights = _read_member(archive, "policy.pth", _MAX_WEIGHTS_BYTES, where)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise _model_error(where, f"is not a readable zip archive: {exc}.") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _model_error(where, f"has a 'data' entry that is not valid JSON: {str(exc)[:200]}.") from None
    if not isinstance(data, dict):
        raise _model_error(where, f"has a 'data' entry of type {type(data).__name__}, expected an object.")
    observation_space = _space_from_declaration(data.get("observation_space"), where)
    action_space = _space_from_declaration(data.get("action_space"), where)
    from gymnasium import spaces

    if not isinstance(action_space, spaces.Discrete):
        raise _model_error(where, "declares a non-Discrete action space.")
    is_dict = isinstance(observation_space, spaces.Dict)
    policy_class = data.get("policy_class")
    module = policy_class.get("__module__") if isinstance(policy_class, dict) else None
    expected_module = "stable_baselines3.dqn.policies" if algo.lower() == "dqn" else "stable_baselines3.common.policies"
    if module != expected_module:
        raise _model_error(
            where,
            f"declares a policy class from module {str(module)[:100]!r}; --algo {algo} needs {expected_module!r}.",
        )
    policy_cls = cls.policy_aliases["MultiInputPolicy" if is_dict else "MlpPolicy"]
    exploration_rate = data.get("exploration_rate", 0.0)
    if isinstance(exploration_rate, bool) or not isinstance(exploration_rate, (int, float)):
        raise _model_error(where, f"declares exploration_rate {exploration_rate!r}; expected a number.")
    policy = policy_cls(
        observation_space, action_space, lambda _: 0.0, **_policy_kwargs(data.get("policy_kwargs"), where)
    )
    try:
        state = torch.load(io.BytesIO(weights), map_location=device, weights_only=True)
        policy.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001  (untrusted bytes: every failure to read them is the file's fault)
        # weights_only refuses anything but tensors (an UnpicklingError, whose module this package never imports);
        # a strict load refuses weights of another architecture.
        raise _model_error(where, f"has weights that do not load into the declared policy: {str(exc)[:300]}") from None
    policy = policy.to(device)
    policy.set_training_mode(False)
    return SB3Policy(
        algo=algo.lower(),
        policy=policy,
        observation_space=observation_space,
        action_space=action_space,
        exploration_rate=check_prob("exploration_rate", float(exploration_rate)),
    )


class SB3PolicyAgent:
    """A frozen Stable-Baselines3 policy as a :class:`~actionbank_env.protocols.TargetingAgent`.

    Args:
        context: The world's description (d_user; reference embeddings for the bank projection).
        rng: Draws actions when ``deterministic=False`` (the agent's only randomness).
        model: A trained SB3 model (``PPO``, ``A2C`` or ``DQN`` instance); or give ``model_path``.
        model_path: Path of a saved model (rebuilt as data by :func:`load_sb3_model`, never unpickled).
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
            # int8 since issue 19 (float32 in models trained before): feed the dtype the model was trained on.
            self._mask_dtype = obs_space["action_mask"].dtype
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
            "action_mask": np.broadcast_to(self._mask, (n, self._mask.shape[0])).astype(self._mask_dtype),
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
