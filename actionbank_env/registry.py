"""Name -> ``"module:attr"`` entry points for agents, designers, reward models and embedders.

``actionbank_env`` never imports ``agents`` or ``optimizers`` statically: it resolves them by string, as
``gymnasium.register`` does, so ``BankDesign-v0`` can default to ``"linucb"``. A user's own class is
given as ``"my_package.module:MyAgent"``.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from actionbank_env._validation import check_component, did_you_mean
from actionbank_env.errors import ConfigTypeError, UnknownComponentError

__all__ = [
    "DEFAULT_AGENT",
    "DEFAULT_DESIGNER",
    "AGENTS",
    "DESIGNERS",
    "REWARD_MODELS",
    "resolve",
    "make_agent",
    "make_designer",
    "make_reward_model",
]

#: The company's targeting agent and the bank designer when none is named.
DEFAULT_AGENT = "linucb"
DEFAULT_DESIGNER = "generative"

#: Targeting agents (the company's policy in the inner loop).
AGENTS: dict[str, str] = {
    "linucb": "agents.linucb:LinUCBAgent",
    "bootstrapped_dqn": "agents.bootstrapped_dqn:BootstrappedDQNAgent",
    "random": "agents.baselines:RandomAgent",
    "epsilon_greedy": "agents.baselines:EpsilonGreedyAgent",
    "legacy": "agents.baselines:LegacyAgent",
    "oracle": "agents.baselines:OracleAgent",
    "sb3": "agents.sb3:SB3PolicyAgent",
}

#: Bank designers (outer-loop agents).
DESIGNERS: dict[str, str] = {
    "generative": "optimizers.generative:GenerativeDesigner",
    "keep": "optimizers.baselines:KeepDesigner",
    "random": "optimizers.baselines:RandomDesigner",
    "oracle": "optimizers.baselines:OracleDesigner",
}

#: Reward models r(x, a).
REWARD_MODELS: dict[str, str] = {
    "linear": "optimizers.reward_models.linear:LinearRewardModel",
    "neural": "optimizers.reward_models.neural:NeuralRewardModel",
    "bayesian_neural": "optimizers.reward_models.neural:BayesianNeuralRewardModel",
    "lightgbm": "optimizers.reward_models.lightgbm:LightGBMRewardModel",
    "gaussian_process": "optimizers.reward_models.gaussian_process:GaussianProcessRewardModel",
    "ft_transformer": "optimizers.reward_models.ft_transformer:FTTransformerRewardModel",
    "bayesian_bilinear": "optimizers.reward_models.bilinear:BayesianBilinearRewardModel",
}

_KINDS = {"agent": AGENTS, "designer": DESIGNERS, "reward_model": REWARD_MODELS}


def load_entry_point(spec: str) -> Any:
    """Import ``"module:attr"`` and return the attribute.

    Raises:
        UnknownComponentError: If the string is malformed, the module cannot be imported or lacks ``attr``.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UnknownComponentError(f"entry point must look like 'package.module:Name', got {spec!r}.")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise UnknownComponentError(
                f"entry point {spec!r}: module {module_name!r} cannot be imported ({exc})."
            ) from exc
        raise
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UnknownComponentError(
            f"entry point {spec!r}: module {module_name!r} has no attribute {attr!r}."
        ) from None


def resolve(kind: str, name: str | Any, *, field: str | None = None) -> Any:
    """The class (or factory) registered as ``name`` for ``kind``, or ``name`` itself if it is callable.

    Args:
        kind: ``"agent"``, ``"designer"`` or ``"reward_model"``.
        name: A registered name, a ``"module:attr"`` string, or a class/factory.
        field: The setting that gave ``name``, for error messages (default: ``kind``).

    Raises:
        UnknownComponentError: For an unknown name (with the closest registered one) or a bad entry point.

    Example:
        >>> resolve("agent", "linucb").__name__
        'LinUCBAgent'
        >>> resolve("agent", "linucbb")
        Traceback (most recent call last):
        ...
        actionbank_env.errors.UnknownComponentError: agent must be one of ['bootstrapped_dqn', 'epsilon_greedy', 'legacy', 'linucb', 'oracle', 'random', 'sb3'] or 'module:Class', got 'linucbb'. Did you mean 'linucb'?
    """
    table = _KINDS[check_component("registry kind", kind, _KINDS)]
    field = field or kind
    if callable(name):
        return name
    if not isinstance(name, str):
        raise ConfigTypeError(f"{field} must be a registered name, a 'module:Class' string or a class, got {name!r}.")
    if ":" in name:
        return load_entry_point(name)
    if name not in table:
        raise UnknownComponentError(
            f"{field} must be one of {sorted(table)} or 'module:Class', got {name!r}.{did_you_mean(name, table)}"
        )
    return load_entry_point(table[name])


def make_agent(name: str | Any, world: Any, *, rng: np.random.Generator, **params: Any) -> Any:
    """Build a targeting agent for ``world`` (evaluation-only agents get the ground truth)."""
    cls = resolve("agent", name)
    context = world.agent_context(evaluation_only=bool(getattr(cls, "evaluation_only", False)))
    return cls(context, rng=rng, **params)


def make_designer(
    name: str | Any, world: Any, *, rng: np.random.Generator, copywriter: Any | None = None, **params: Any
) -> Any:
    """Build a bank designer for ``world`` (evaluation-only designers, e.g. the oracle, get the ground truth).

    Args:
        name: A registered name, ``"module:Class"`` or a class.
        world: The :class:`~actionbank_env.core.world.World` (its embedder, feature names and, for
            evaluation-only designers, its ground truth).
        rng: The designer's fallback generator.
        copywriter: The candidate text source (default: the offline copywriter).
        **params: The designer's parameters (fields of its config, or ``config=``).
    """
    from actionbank_env.core.copywriting import OfflineCopywriter
    from actionbank_env.protocols import DesignerContext

    cls = resolve("designer", name)
    context = DesignerContext(
        embedder=world.embedder,
        copywriter=copywriter if copywriter is not None else OfflineCopywriter(),
        d_user=world.d_user,
        feature_names=world.feature_names,
        ground_truth=world.ground_truth if getattr(cls, "evaluation_only", False) else None,
    )
    return cls(context, rng=rng, **params)


def make_reward_model(name: str | Any, *, rng: np.random.Generator, **params: Any) -> Any:
    """Build a reward model."""
    return resolve("reward_model", name)(rng=rng, **params)
