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
    "diverse": "optimizers.baselines:DiverseDesigner",
    "oracle": "optimizers.baselines:OracleDesigner",
    "reference": "optimizers.baselines:ReferenceDesigner",
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


#: The methods a ``"module:Class"`` plugin of each kind must have (the protocols of :mod:`actionbank_env.protocols`).
_PROTOCOL_METHODS = {
    "agent": ("set_bank", "act", "update"),
    "designer": ("propose",),
    "reward_model": ("fit", "predict"),
}


def load_entry_point(spec: str) -> Any:
    """Import ``"module:attr"`` and return the attribute.

    Raises:
        UnknownComponentError: If the string is malformed, the module cannot be imported (not found, a syntax
            error, a missing dependency, an error while importing it) or lacks ``attr``.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr or ":" in attr:
        raise UnknownComponentError(f"entry point must look like 'package.module:Name', got {spec!r}.")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise UnknownComponentError(
                f"entry point {spec!r}: module {module_name!r} cannot be imported ({exc}). Modules are imported "
                "from sys.path, which `actionbank` extends with the current folder: run it from the folder that "
                f"holds {module_name.split('.')[0]}.py (or its package), or add that folder to PYTHONPATH."
            ) from None
        raise UnknownComponentError(
            f"entry point {spec!r}: module {module_name!r} needs {exc.name!r}, which is not installed."
        ) from None
    except SyntaxError as exc:
        raise UnknownComponentError(
            f"entry point {spec!r}: module {module_name!r} has a syntax error ({exc.filename}, line {exc.lineno})."
        ) from None
    except Exception as exc:  # noqa: BLE001  (a plugin's own import-time failure is the plugin's, not ours)
        raise UnknownComponentError(
            f"entry point {spec!r}: importing module {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UnknownComponentError(
            f"entry point {spec!r}: module {module_name!r} has no attribute {attr!r}."
        ) from None


def _check_plugin(kind: str, spec: str, obj: Any, field: str) -> Any:
    """A ``"module:Class"`` plugin must be a class with the methods of its protocol (``os:system`` is not)."""
    methods = _PROTOCOL_METHODS[kind]
    if not isinstance(obj, type) or not all(callable(getattr(obj, m, None)) for m in methods):
        what = "a class" if isinstance(obj, type) else type(obj).__name__
        raise UnknownComponentError(
            f"{field} {spec!r} must name a class with the methods {', '.join(methods)} (the {kind} protocol), "
            f"got {what}{'' if isinstance(obj, type) else ' ' + repr(obj)[:60]}."
        )
    return obj


def _build(kind: str, name: Any, cls: Any, *args: Any, **kwargs: Any) -> Any:
    """``cls(*args, **kwargs)``; a plugin whose constructor does not take them is the user's error, named."""
    if not (isinstance(name, str) and ":" in name):
        return cls(*args, **kwargs)
    try:
        return cls(*args, **kwargs)
    except TypeError as exc:
        raise ConfigTypeError(
            f"{kind} {name!r} cannot be built as {getattr(cls, '__name__', cls)}(context, rng=..., **params): {exc}"
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
        return _check_plugin(kind, name, load_entry_point(name), field)
    if name not in table:
        raise UnknownComponentError(
            f"{field} must be one of {sorted(table)} or 'module:Class', got {name!r}.{did_you_mean(name, table)}"
        )
    return load_entry_point(table[name])


def make_agent(name: str | Any, world: Any, *, rng: np.random.Generator, **params: Any) -> Any:
    """Build a targeting agent for ``world`` (evaluation-only agents get the ground truth)."""
    cls, context = _agent_class(name, world, params, rng)
    return _build("agent", name, cls, context, rng=rng, **params)


def _agent_class(name: str | Any, world: Any, params: dict[str, Any], rng: np.random.Generator) -> tuple[Any, Any]:
    """The agent class ``name`` resolves to and its context from ``world``, once ``params`` bind to it."""
    cls = resolve("agent", name)
    context = world.agent_context(evaluation_only=bool(getattr(cls, "evaluation_only", False)))
    check_parameters("agent", name, cls, params, context, rng=rng)
    return cls, context


def check_agent_spec(name: str | Any, params: dict[str, Any], world: Any) -> None:
    """Check, without building it, that ``make_agent(name, world, **params)`` can build an agent: the name resolves
    to an agent class, its signature binds ``params`` and, for a class with a ``config_class``, the parameters pass
    that config's validation (so an env reports a bad agent when it is made, not at its first ``reset``).

    Raises:
        UnknownComponentError, ConfigError, ConfigTypeError: As :func:`make_agent` would.
    """
    import numpy as np

    from actionbank_env._validation import resolve_config

    cls, _ = _agent_class(name, world, params, np.random.default_rng(0))
    if isinstance(cls, type):  # a class given directly must have the protocol's methods, as a plugin's must
        _check_plugin("agent", cls.__name__, cls, "agent")
    config_class = getattr(cls, "config_class", None)
    if isinstance(config_class, type):
        rest = {k: v for k, v in params.items() if k != "config"}
        resolve_config(config_class, params.get("config"), rest, getattr(cls, "__name__", str(name)))


def check_parameters(kind: str, name: Any, factory: Any, params: dict[str, Any], *args: Any, **kwargs: Any) -> None:
    """Raise a clear :class:`ConfigTypeError` if ``factory(*args, **kwargs, **params)`` cannot bind ``params``.

    Classes whose signature takes ``**kwargs`` validate their own parameters and are not checked here.
    """
    import inspect

    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins and some C types have no signature
        return
    try:
        signature.bind(*args, **kwargs, **params)
    except TypeError as exc:
        valid = [
            p.name
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in kwargs
        ][len(args) :]
        unknown = sorted(set(params) - set(valid))
        hint = "".join(did_you_mean(u, valid) for u in unknown)
        label = name if isinstance(name, str) else getattr(name, "__name__", repr(name))
        raise ConfigTypeError(
            f"{kind} {label!r} cannot take the parameters {sorted(params)} ({exc}); its parameters are {valid}.{hint}"
        ) from None


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
    return _build("designer", name, cls, context, rng=rng, **params)


def make_reward_model(name: str | Any, *, rng: np.random.Generator, **params: Any) -> Any:
    """Build a reward model."""
    return _build("reward_model", name, resolve("reward_model", name), rng=rng, **params)


def check_agent_fits(
    name: str | Any,
    params: dict[str, Any],
    world: Any,
    designer: Any,
    *,
    designer_name: str | Any = "designer",
    check_initial_bank: bool = True,
) -> None:
    """Build the agent once (its parameters fail here, not at the first campaign) and check that a fixed-size
    policy (an SB3 policy trained without ``observe_bank``) can serve every bank ``designer`` will deploy.

    Raises:
        ConfigError: If the agent cannot serve the banks the designer will deploy (or the initial bank).
    """
    from actionbank_env.errors import ConfigError

    agent = make_agent(name, world, rng=np.random.default_rng(0), **params)
    n_outputs = getattr(agent, "n_outputs", None)
    if getattr(agent, "observe_bank", True) or n_outputs is None:
        return
    designer_config = getattr(designer, "config", None)
    # A designer that never changes the bank (keep) declares it: its pool settings are then irrelevant.
    changes_bank = getattr(designer, "changes_bank", True)
    added = (getattr(designer_config, "action_bank_size", 0) or 0) if changes_bank else 0
    cap = getattr(designer_config, "max_bank_size", None)
    if added > 0 and cap != n_outputs:
        raise ConfigError(
            f"agent {name!r} has a fixed Discrete({n_outputs}) action space (trained without observe_bank), but "
            f"designer {designer_name!r} changes the bank size (action_bank_size={added}, max_bank_size={cap}); set "
            f"designer.max_bank_size={n_outputs} or train the policy with observe_bank=True."
        )
    if check_initial_bank:
        agent.set_bank(world.initial_bank)  # the initial bank must fit too
