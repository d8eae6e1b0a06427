"""The configuration tree of ``actionbank simulate``: a run section, the world's, the campaign's, and two components.

::

    SimulationConfig
      run       RunConfig        iterations, seeds, evaluation users, folders, threads, outputs
      world     WorldConfig      the world (core/world.py), composed as it is
      campaign  CampaignConfig   users per iteration, the agent's batch size (core/campaign.py)
      agent     ComponentSpec    name + the agent's own config (e.g. LinUCBConfig)
      designer  ComponentSpec    name + the designer's own config (GenerativeConfig, whose reward model is again a
                                 name + the model's own config, e.g. LightGBMConfig)
      retention RetentionCampaignConfig | None   none (default): one email per user; else every campaign runs as
                                 subscribers' lifetimes (horizon weeks, the dynamics of Retention-v0)

Every default lives in the component that uses it: this module restates none. A *setting* is addressed by a key:
a field of the run, world or campaign section by its own name (``iterations``, ``base_ctr``, ``users_per_iteration``;
the three sections share no field name), a component by its kind (``agent``, ``designer``, and
``designer.reward_model``) and a component's parameter by ``<component>.<field>`` (``agent.alpha``,
``designer.diversity_weight``, ``designer.reward_model.n_estimators``), and the lifetimes option by its path
(``retention.horizon``, ``retention.dynamics.fatigue_click``; the dynamics keys need ``retention.horizon``, which
turns lifetimes on). :func:`settings_schema` lists the settings
of a choice of components with their types, defaults and docstrings; the command line builds one flag per setting
from it, so a field added to a component's config is a flag with no edit here. :func:`parse_value` is the one
text-to-value parser (flags, sweeps).

Two settings belong to the run and fill the components' fields of the same purpose: ``world_seed`` (``None``: the
episode ``seed``) sets ``WorldConfig.world_seed``, and ``threads`` sets every component field named ``n_threads``.

``simulation_config.json`` holds :meth:`SimulationConfig.to_dict` with ``"version": 2``; a version-1 file (the flat
settings of earlier releases) is migrated by :func:`migrate_v1`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from actionbank_env._validation import check_bool, check_choice, check_int, check_known_names, check_str
from actionbank_env.core.campaign import CampaignConfig
from actionbank_env.core.retention import RetentionCampaignConfig, RetentionDynamics
from actionbank_env.core.world import WorldConfig
from actionbank_env.errors import ActionBankError, ConfigError, ConfigTypeError

__all__ = [
    "CONFIG_VERSION",
    "RunConfig",
    "ComponentSpec",
    "SimulationConfig",
    "Setting",
    "settings_schema",
    "parse_value",
    "field_docs",
    "migrate_v1",
    "legacy_setting_applies",
    "legacy_setting_homes",
]

#: Version of the layout :meth:`SimulationConfig.to_dict` writes.
CONFIG_VERSION = 2


#: Upper bound of ``evaluation_users`` (memory: the evaluation arrays are evaluation_users x candidates float64).
MAX_EVALUATION_USERS = 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """The run: how many iterations, the seeds, where results go and what is written.

    Attributes:
        iterations: Campaign iterations, each deploying bank t to fresh users, logging it, and proposing and
            evaluating bank t+1 (bank 1 is the world's initial bank; the last proposal is evaluated, not deployed).
        seed: Decides the episode: users, clicks, the company's agent, the designer and the evaluation users.
        world_seed: Decides the world (ground truth, reference texts, initial bank); none: the same as seed.
        evaluation_users: Fresh users on which bank values are evaluated each iteration (at most 1,000,000: the
            evaluator holds evaluation_users x candidates float64 arrays).
        results_dir: Parent folder of run folders.
        name: Run folder prefix.
        data_dir: Replay the users and initial bank of a generate-data folder (its world settings win).
        threads: BLAS / torch / LightGBM threads of the run (1 measured best on the 2-core machines here); also the
            n_threads of every component that has one.
        tensorboard: Write TensorBoard events under tb/.
        report: Write report.html with plots at the end.
        ope: Estimate each proposed bank off-policy from the campaign's log before it is deployed (ope.json beside
            its truth; cross-fits the designer's reward model, 6 fits per iteration).
        tracker: Also log the finished run to an experiment tracker: none, or mlflow (the 'mlflow' extra).
        tracking_uri: The tracker's store; none: the local file store results_dir/mlruns.
        same_logs_reference: Evaluation only, generative designer only: each iteration, also propose with the
            ``reference`` designer (the same designer given the ground truth's functional form) from the same logs,
            bank and candidate pool, and record the true value of its bank and its improvement captured beside the
            designer's (``same_logs_reference`` in ground_truth_evaluation.json). The run itself is unchanged.
    """

    iterations: int = 3
    seed: int = 0
    world_seed: int | None = None
    evaluation_users: int = 2000
    results_dir: str = "results"
    name: str = "simulation"
    data_dir: str | None = None
    threads: int = 1
    tensorboard: bool = True
    report: bool = True
    ope: bool = True
    tracker: str | None = None
    tracking_uri: str | None = None
    same_logs_reference: bool = False

    def __post_init__(self) -> None:
        c = "RunConfig"
        check_int(f"{c}.iterations", self.iterations, low=1, high=1000)
        check_int(f"{c}.seed", self.seed, low=0)
        if self.world_seed is not None:
            check_int(f"{c}.world_seed", self.world_seed, low=0)
        # The evaluator holds (evaluation_users x candidates) float64 arrays: 1e6 users x 1000 candidates is 8 GB.
        check_int(f"{c}.evaluation_users", self.evaluation_users, low=1, high=MAX_EVALUATION_USERS)
        check_str(f"{c}.results_dir", self.results_dir)
        check_str(f"{c}.name", self.name)
        if any(ch in self.name for ch in "/\\") or self.name in (".", ".."):
            raise ConfigError(f"{c}.name must be a plain folder name without '/' or '\\\\', got {self.name!r}.")
        if self.data_dir is not None:
            check_str(f"{c}.data_dir", self.data_dir)
        check_int(f"{c}.threads", self.threads, low=1, high=256)
        check_bool(f"{c}.tensorboard", self.tensorboard)
        check_bool(f"{c}.report", self.report)
        check_bool(f"{c}.ope", self.ope)
        if self.tracker is not None:
            check_choice(f"{c}.tracker", self.tracker, ("mlflow",))
        if self.tracking_uri is not None:
            check_str(f"{c}.tracking_uri", self.tracking_uri)
        check_bool(f"{c}.same_logs_reference", self.same_logs_reference)

    @property
    def resolved_world_seed(self) -> int:
        """``world_seed`` or, when unset, ``seed``."""
        return self.seed if self.world_seed is None else self.world_seed


# ---------------------------------------------------------------------------------------------- components

#: Component kinds of the tree (the registry's kinds) and the key of each.
COMPONENT_KINDS = {"agent": "agent", "designer": "designer"}
#: Run settings that fill component fields of the same purpose (never set on the component itself).
RUN_OWNED_FIELDS = {"n_threads": "threads"}


def _component_class(kind: str, name: str, key: str | None = None) -> Any:
    from actionbank_env.registry import resolve

    return resolve(kind, name, field=key)


def _config_class(cls: Any) -> type | None:
    """The component's config dataclass (its ``config_class``), ``None`` for a class without one."""
    cc = getattr(cls, "config_class", None)
    return cc if isinstance(cc, type) and dataclasses.is_dataclass(cc) else None


def _nested(config_cls: type | None) -> dict[str, tuple[str, str]]:
    """``{name field: (registry kind, params field)}`` of a config that names sub-components (``COMPONENTS``)."""
    return dict(getattr(config_cls, "COMPONENTS", {})) if config_cls is not None else {}


def _fields(obj: Any) -> dict[str, Any]:
    """A dataclass instance's fields, shallow (nested configs stay objects)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """A component by name, with its parameters.

    Attributes:
        name: A registry name or ``"module:Class"``.
        params: The component's own config (e.g. a ``LinUCBConfig``) when its class declares ``config_class``; a dict
            of keyword arguments otherwise.
    """

    name: str
    params: Any

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments that build the component: its config's fields (or the params dict)."""
        return _fields(self.params) if dataclasses.is_dataclass(self.params) else dict(self.params)

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., "params": {...}}``, sub-components (the reward model) nested the same way."""
        params = self.kwargs()
        for name_field, (_, params_field) in _nested(type(self.params)).items():
            params[name_field] = {"name": params.pop(name_field), "params": dict(params.pop(params_field))}
        return {"name": self.name, "params": _jsonable(params)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------- docs, types, parsing

_ATTRIBUTE = re.compile(r"^(\s*)(\w+):\s?(.*)$")


def field_docs(cls: type) -> dict[str, str]:
    """``{field: text}`` from the ``Attributes:`` section of a (config) class docstring, continuation lines joined.

    Example:
        >>> field_docs(RunConfig)["threads"]
        'BLAS / torch / LightGBM threads of the run (1 measured best on the 2-core machines here); also the n_threads of every component that has one.'
    """
    doc = cls.__doc__ or ""
    lines = doc.expandtabs().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return {}
    docs: dict[str, str] = {}
    current: str | None = None
    indent: int | None = None
    for line in lines[start + 1 :]:
        if not line.strip():
            if docs:
                current = None
            continue
        width = len(line) - len(line.lstrip())
        match = _ATTRIBUTE.match(line)
        if indent is None and match:
            indent = width
        if indent is not None and width < indent:
            break
        if match and width == indent:
            current = match.group(2)
            docs[current] = match.group(3).strip()
        elif current is not None and indent is not None and width > indent:
            docs[current] += " " + line.strip()
        else:
            break
    return docs


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_NONE = ("none", "null")


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    args = typing.get_args(hint)
    if (isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else Any), True
    return hint, False


def _describe(hint: Any) -> str:
    kind, optional = _unwrap_optional(hint)
    origin = typing.get_origin(kind)
    if kind is bool:
        text = "true or false"
    elif kind is int:
        text = "an int"
    elif kind is float:
        text = "a float"
    elif origin is tuple:
        text = "a comma-separated list"
    elif kind in (dict, Mapping) or origin in (dict, Mapping):
        text = "a JSON object"
    else:
        text = "a string"
    return text + (" (or none)" if optional else "")


def parse_value(name: str, text: str, hint: Any) -> Any:
    """``text`` as a value of type ``hint``: the one parser of flags, ``--set`` / ``--grid`` and every other text.

    ``bool``: true/false, 1/0, yes/no, on/off; ``int``; ``float``; ``str``; ``X | None`` also takes ``none``;
    ``tuple[...]``: comma-separated or a JSON list; ``dict``: a JSON object.

    Raises:
        ConfigError: If ``text`` does not parse, naming the setting, the rule and the text.

    Example:
        >>> parse_value("max_bank_size", "none", int | None), parse_value("use_pca", "off", bool)
        (None, False)
        >>> parse_value("agent.hidden_sizes", "64,32", tuple[int, ...])
        (64, 32)
        >>> parse_value("iterations", "three", int)
        Traceback (most recent call last):
        ...
        actionbank_env.errors.ConfigError: iterations must be an int, got 'three'.
    """
    kind, optional = _unwrap_optional(hint)
    value = text.strip()
    if optional and value.lower() in _NONE:
        return None
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
            raise ValueError
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
        if origin is tuple:
            item = (typing.get_args(kind) or (str,))[0]
            parts = json.loads(value) if value.startswith("[") else [p for p in value.split(",") if p.strip()]
            return tuple(parse_value(name, str(p), item) for p in parts)
        if kind in (dict, Mapping) or origin in (dict, Mapping):
            loaded = json.loads(value)
            if not isinstance(loaded, dict):
                raise ValueError
            return loaded
    except (ValueError, json.JSONDecodeError, ConfigError):
        raise ConfigError(f"{name} must be {_describe(hint)}, got {text!r}.") from None
    return text


# ---------------------------------------------------------------------------------------------- the schema


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting of the tree, for the command line, the README and the defaults guard.

    Attributes:
        key: Its key (``iterations``, ``agent``, ``agent.alpha``, ``designer.reward_model.n_estimators``).
        hint: Its type.
        default: Its default, read from the class that owns it.
        doc: Its docstring line (the owning class's ``Attributes:`` entry).
        owner: The class that owns the default (``RunConfig``, ``WorldConfig``, ``LinUCBConfig``, ...).
    """

    key: str
    hint: Any
    default: Any
    doc: str
    owner: type

    @property
    def flag(self) -> str:
        """``--key`` in kebab case (``--designer.reward-model.n-estimators``)."""
        return "--" + self.key.replace("_", "-")


def _field_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _class_settings(prefix: str, cls: type, skip: frozenset[str] = frozenset()) -> Iterator[Setting]:
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in skip or f.name in RUN_OWNED_FIELDS:
            continue
        yield Setting(f"{prefix}{f.name}", hints[f.name], _field_default(f), docs.get(f.name, ""), cls)


#: Sections composed as they are, and the fields of theirs the run owns.
SECTIONS: dict[str, tuple[type, frozenset[str]]] = {
    "run": (RunConfig, frozenset()),
    "world": (WorldConfig, frozenset({"world_seed"})),
    "campaign": (CampaignConfig, frozenset()),
}


def _section_of() -> dict[str, str]:
    """``{field: section}`` over the run, world and campaign sections (their field names are distinct)."""
    owner: dict[str, str] = {}
    for section, (cls, skip) in SECTIONS.items():
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name in skip:
                continue
            if f.name in owner:
                raise AssertionError(f"{cls.__name__}.{f.name} clashes with the {owner[f.name]} section's field")
            owner[f.name] = section
    return owner


def _component_doc(kind: str) -> str:
    from actionbank_env.registry import AGENTS, DESIGNERS

    table = {"agent": AGENTS, "designer": DESIGNERS}[kind]
    what = {"agent": "The company's targeting agent", "designer": "The bank designer"}[kind]
    return f"{what}: one of {', '.join(sorted(table))}, or module:Class."


#: The doc of ``retention.horizon`` (the switch of the lifetimes option; its default, off, is the tree's own).
RETENTION_HORIZON_DOC = (
    "Run every campaign as subscribers' lifetimes of this many weeks: each user of the campaign is mailed once a week "
    "by the company's agent, with Retention-v0's fatigue, novelty and unsubscribes (the retention.dynamics.* "
    "settings), and deployed_value is the expected clicks per subscriber over its lifetime (Retention-v0's own "
    "lifetime is 26 weeks); none: each user gets one email."
)
#: Key prefix of the lifetimes option's dynamics (``retention.dynamics.<RetentionDynamics field>``).
RETENTION_DYNAMICS = "retention.dynamics."


def _retention_settings() -> list[Setting]:
    """``retention.horizon`` and one setting per :class:`RetentionDynamics` field."""
    return [
        Setting("retention.horizon", int | None, None, RETENTION_HORIZON_DOC, SimulationConfig),
        *_class_settings(RETENTION_DYNAMICS, RetentionDynamics),
    ]


def _build_retention(values: Mapping[str, Any], source: str) -> RetentionCampaignConfig | None:
    """The lifetimes option from its settings (``horizon`` and ``dynamics.<field>`` keys, prefix removed).

    Raises:
        ConfigError: If a dynamics setting is given while ``retention.horizon`` is none (lifetimes are off), or
            from the configs' own validation.
    """
    horizon = values.get("horizon")
    dynamics = {k.removeprefix("dynamics."): v for k, v in values.items() if k != "horizon"}
    if horizon is None:
        if dynamics:
            given = ", ".join(f"{RETENTION_DYNAMICS}{k}={v!r}" for k, v in sorted(dynamics.items()))
            raise ConfigError(
                f"{source}: {given} needs retention.horizon, which is none (lifetimes are off); set "
                "retention.horizon (e.g. 26) or leave the retention.dynamics.* settings out."
            )
        return None
    return RetentionCampaignConfig(horizon=horizon, dynamics=RetentionDynamics(**dynamics))


def settings_schema(
    agent: str | None = None, designer: str | None = None, nested: Mapping[str, str] | None = None
) -> list[Setting]:
    """Every setting of the tree for the chosen components (defaults: the default run's), in flag order.

    Args:
        agent: The agent's name (``None``: the default agent).
        designer: The designer's name (``None``: the default designer).
        nested: Names of the designer's sub-components by field (``{"reward_model": "neural"}``; default: the
            designer config's defaults).
    """
    from actionbank_env.registry import DEFAULT_AGENT, DEFAULT_DESIGNER

    out: list[Setting] = []
    for cls, skip in SECTIONS.values():
        out.extend(_class_settings("", cls, skip))
    out.extend(_retention_settings())
    defaults = {"agent": DEFAULT_AGENT, "designer": DEFAULT_DESIGNER}
    names = {"agent": agent or DEFAULT_AGENT, "designer": designer or DEFAULT_DESIGNER}
    for kind, name in names.items():
        out.append(Setting(kind, str, defaults[kind], _component_doc(kind), SimulationConfig))
        doc = f"Parameters of the {kind} as a JSON object (the single {kind}.* settings win)."
        out.append(Setting(f"{kind}.params", dict[str, Any] | None, None, doc, SimulationConfig))
        config_cls = _config_class(_component_class(kind, name))
        if config_cls is None:
            continue
        sub = _nested(config_cls)
        skip = frozenset(n for pair in sub.items() for n in (pair[0], pair[1][1]))
        out.extend(_class_settings(f"{kind}.", config_cls, skip))
        docs, own_defaults = field_docs(config_cls), {f.name: _field_default(f) for f in dataclasses.fields(config_cls)}
        for name_field, (sub_kind, _) in sub.items():
            sub_name = (nested or {}).get(name_field) or own_defaults[name_field]
            out.append(
                Setting(f"{kind}.{name_field}", str, own_defaults[name_field], docs.get(name_field, ""), config_cls)
            )
            sub_cls = _config_class(_component_class(sub_kind, sub_name))
            if sub_cls is not None:
                out.extend(_class_settings(f"{kind}.{name_field}.", sub_cls))
    return out


# ---------------------------------------------------------------------------------------------- the tree


def _default_component(kind: str) -> ComponentSpec:
    from actionbank_env.registry import DEFAULT_AGENT, DEFAULT_DESIGNER

    return _build_component(
        kind, DEFAULT_AGENT if kind == "agent" else DEFAULT_DESIGNER, {}, threads=RunConfig().threads
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationConfig:
    """Settings of a full simulation (the README's "The loop"): the tree described in the module docstring.

    Build it from keys with :meth:`from_settings` (what the command line, config files and sweeps do), from a
    ``simulation_config.json`` with :meth:`from_dict`, or from the sections directly.

    Attributes:
        run: The run section.
        world: The world (its ``world_seed`` is the run's: set ``run.world_seed``).
        campaign: How each campaign is run.
        agent: The company's targeting agent.
        designer: The bank designer.
        retention: ``None`` (default): each user of a campaign gets one email. A
            :class:`~actionbank_env.core.retention.RetentionCampaignConfig`: every campaign runs as subscribers'
            lifetimes (``BankDesignConfig.retention``); settings ``retention.horizon`` and ``retention.dynamics.*``.

    Example:
        >>> cfg = SimulationConfig.from_settings({"iterations": 2, "agent.alpha": 0.5, "reward_model": "linear"})
        Traceback (most recent call last):
        ...
        actionbank_env.errors.ConfigTypeError: settings got unknown keys ['reward_model']; valid names are ... Did you mean 'designer.reward_model'?
    """

    run: RunConfig = field(default_factory=RunConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    campaign: CampaignConfig = field(default_factory=CampaignConfig)
    agent: ComponentSpec = field(default_factory=lambda: _default_component("agent"))
    designer: ComponentSpec = field(default_factory=lambda: _default_component("designer"))
    retention: RetentionCampaignConfig | None = None

    def __post_init__(self) -> None:
        for name, cls in (("run", RunConfig), ("world", WorldConfig), ("campaign", CampaignConfig)):
            if not isinstance(getattr(self, name), cls):
                raise ConfigTypeError(
                    f"SimulationConfig.{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}."
                )
        for name in COMPONENT_KINDS:
            if not isinstance(getattr(self, name), ComponentSpec):
                raise ConfigTypeError(
                    f"SimulationConfig.{name} must be a ComponentSpec, got {type(getattr(self, name)).__name__}."
                )
        if self.retention is not None and not isinstance(self.retention, RetentionCampaignConfig):
            raise ConfigTypeError(
                "SimulationConfig.retention must be a RetentionCampaignConfig or None, "
                f"got {type(self.retention).__name__}."
            )
        if self.world.world_seed != self.run.resolved_world_seed:  # the run owns the world's seed
            object.__setattr__(self, "world", dataclasses.replace(self.world, world_seed=self.run.resolved_world_seed))

    # ------------------------------------------------------------------ settings <-> tree

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, source: str = "settings") -> SimulationConfig:
        """Build the tree from ``{key: value}`` (keys as in the module docstring; missing keys take the defaults).

        ``agent.params`` / ``designer.params`` (a dict) set several parameters at once (later single keys win).

        Raises:
            ConfigTypeError: For an unknown key (with the closest valid one) or a parameter the chosen component
                does not have.
            ConfigError, ConfigTypeError: From the configs' own validation.
        """
        if not isinstance(settings, Mapping):
            raise ConfigTypeError(
                f"{source} must be a mapping of setting keys to values, got {type(settings).__name__}."
            )
        flat = _expand(settings)
        section_of = _section_of()
        sections: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
        comps: dict[str, dict[str, Any]] = {k: {} for k in COMPONENT_KINDS}
        names: dict[str, str] = {}
        retention: dict[str, Any] = {}
        retention_keys = {s.key for s in _retention_settings()}
        unknown = []
        for key, value in flat.items():
            head, dot, rest = key.partition(".")
            if not dot and key in section_of:
                sections[section_of[key]][key] = value
            elif key in retention_keys:
                retention[rest] = value
            elif head in COMPONENT_KINDS and not dot:
                names[head] = check_str(f"{source} {key}", value)
            elif head in COMPONENT_KINDS:
                comps[head][rest] = value
            else:
                unknown.append(key)
        if unknown:
            valid = [s.key for s in settings_schema(names.get("agent"), names.get("designer"))]
            check_known_names(source, unknown, valid, what="keys")
        run = RunConfig(**sections["run"])
        world = sections["world"]
        if "world_seed" in world:
            raise ConfigTypeError(f"{source} world_seed is the run's: set run.world_seed, got world.world_seed.")
        from actionbank_env.registry import DEFAULT_AGENT, DEFAULT_DESIGNER

        agent = _build_component("agent", names.get("agent", DEFAULT_AGENT), comps["agent"], threads=run.threads)
        designer = _build_component(
            "designer", names.get("designer", DEFAULT_DESIGNER), comps["designer"], threads=run.threads
        )
        return cls(
            run=run,
            world=WorldConfig(world_seed=run.resolved_world_seed, **world),
            campaign=CampaignConfig(**sections["campaign"]),
            agent=agent,
            designer=designer,
            retention=_build_retention(retention, source),
        )

    def settings(self) -> dict[str, Any]:
        """Every setting of this tree as ``{key: value}`` (``from_settings(config.settings()) == config``)."""
        out: dict[str, Any] = {}
        for section, (_, skip) in SECTIONS.items():
            out.update({k: v for k, v in _fields(getattr(self, section)).items() if k not in skip})
        for kind in COMPONENT_KINDS:
            spec: ComponentSpec = getattr(self, kind)
            out[kind] = spec.name
            params = spec.kwargs()
            for name_field, (_, params_field) in _nested(type(spec.params)).items():
                out[f"{kind}.{name_field}"] = params.pop(name_field)
                for k, v in dict(params.pop(params_field)).items():
                    if k not in RUN_OWNED_FIELDS:
                        out[f"{kind}.{name_field}.{k}"] = v
            out.update({f"{kind}.{k}": v for k, v in params.items() if k not in RUN_OWNED_FIELDS})
        if self.retention is not None:  # off: no retention keys (the settings of earlier releases, unchanged)
            out["retention.horizon"] = self.retention.horizon
            out.update({RETENTION_DYNAMICS + k: v for k, v in _fields(self.retention.dynamics).items()})
        return out

    def with_settings(self, changes: Mapping[str, Any], *, source: str = "settings") -> SimulationConfig:
        """A copy with ``changes`` applied (validated again). Naming another component drops the old one's parameters.

        Example:
            >>> SimulationConfig().with_settings({"agent": "random"}).agent.name
            'random'
        """
        changes = _expand(changes)
        base = self.settings()
        for prefix in ("agent", "designer", "designer.reward_model"):
            if prefix in changes and changes[prefix] != base.get(prefix):
                base = {k: v for k, v in base.items() if not k.startswith(prefix + ".") or k in changes}
                if prefix == "designer":  # the new designer's sub-components start from their defaults too
                    base = {k: v for k, v in base.items() if not k.startswith("designer.") or k in changes}
        if "retention.horizon" in changes and changes["retention.horizon"] is None:  # lifetimes off: no dynamics
            base = {k: v for k, v in base.items() if not k.startswith(RETENTION_DYNAMICS) or k in changes}
        return type(self).from_settings({**base, **changes}, source=source)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``{"version": 2, "run": {...}, "world": {...}, "campaign": {...}, "agent": {"name",
        "params"}, "designer": {"name", "params"}}``, and ``"retention": {"horizon", "dynamics": {...}}`` when
        lifetimes are on (no secrets: API keys are never part of the config)."""
        world = {k: v for k, v in _fields(self.world).items() if k != "world_seed"}
        out: dict[str, Any] = {
            "version": CONFIG_VERSION,
            "run": _fields(self.run),
            "world": _jsonable(world),
            "campaign": _fields(self.campaign),
            "agent": self.agent.to_dict(),
            "designer": self.designer.to_dict(),
        }
        for kind in COMPONENT_KINDS:
            _drop_run_owned(out[kind])
        if self.retention is not None:  # off: no section (files of runs without lifetimes stay as they were)
            out["retention"] = {"horizon": self.retention.horizon, "dynamics": self.retention.dynamics.to_dict()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> SimulationConfig:
        """Read :meth:`to_dict`'s layout back; a file without ``"version"`` (version 1, flat) is migrated first.

        Raises:
            ConfigError: For a version this release does not know.
            ConfigTypeError: For unknown keys (named, with the closest valid one).
        """
        if not isinstance(data, Mapping):
            raise ConfigTypeError(f"{source} must hold a JSON object of settings, got {type(data).__name__}.")
        version = data.get("version", 1)
        if isinstance(version, bool) or version not in (1, CONFIG_VERSION):
            raise ConfigError(f"{source} version must be 1 or {CONFIG_VERSION}, got {version!r}.")
        if version == 1:  # flat; a file that states "version": 1 is the same layout
            data = migrate_v1({k: v for k, v in data.items() if k != "version"}, source=source)
        try:
            return cls.from_settings(nested_to_settings(data, source=source), source=source)
        except ActionBankError as exc:  # a value breaks a rule: name the file it came from too
            if source == "config" or str(exc).startswith(source):
                raise
            raise type(exc)(f"{source}: {exc}") from None

    # ------------------------------------------------------------------ views

    @property
    def iterations(self) -> int:
        """``run.iterations``."""
        return self.run.iterations

    def world_config(self) -> WorldConfig:
        """The world's config (with the run's world seed)."""
        return self.world


def _drop_run_owned(spec_dict: dict[str, Any]) -> None:
    params = spec_dict.get("params")
    if isinstance(params, dict):
        for key in RUN_OWNED_FIELDS:
            params.pop(key, None)
        for value in params.values():
            if isinstance(value, dict) and {"name", "params"} <= value.keys():
                _drop_run_owned(value)


def _expand(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Keys as given, with ``<component>.params`` dicts spread into ``<component>.<name>`` keys."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if not isinstance(key, str):
            raise ConfigTypeError(f"setting keys must be str, got {key!r}.")
        if key.endswith(".params") and key.removesuffix(".params") in ("agent", "designer", "designer.reward_model"):
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigTypeError(f"{key} must be a dict of parameters, got {type(value).__name__}.")
            prefix = key.removesuffix("params")
            out.update({prefix + k: v for k, v in value.items() if prefix + k not in settings})
        else:
            out[key] = value
    return out


def _build_component(
    kind: str, name: str, params: Mapping[str, Any], *, threads: int, key: str | None = None
) -> ComponentSpec:
    """The spec of component ``name`` with ``params`` (``field`` or ``sub.field`` keys) validated by its config;
    ``key`` is the setting that names it (for messages)."""
    key = key or kind
    cls = _component_class(kind, name, key)
    config_cls = _config_class(cls)
    if config_cls is None:  # a user's class without a config: its keyword arguments as given
        if any("." in k for k in params):
            raise ConfigTypeError(
                f"{kind} {name!r} has no sub-components, got {sorted(k for k in params if '.' in k)}."
            )
        return ComponentSpec(name, dict(params))
    own = {k: v for k, v in params.items() if "." not in k}
    nested_params: dict[str, dict[str, Any]] = {}
    for param, value in params.items():
        if "." in param:
            head, _, rest = param.partition(".")
            nested_params.setdefault(head, {})[rest] = value
    sub = _nested(config_cls)
    for name_field, (_, params_field) in sub.items():  # a dict of a sub-component's parameters, given directly
        if params_field in own:
            given = own.pop(params_field)
            if not isinstance(given, Mapping):
                raise ConfigTypeError(f"{kind}.{params_field} must be a dict, got {type(given).__name__}.")
            nested_params[name_field] = {**dict(given), **nested_params.get(name_field, {})}
    valid = [f.name for f in dataclasses.fields(config_cls) if f.name not in RUN_OWNED_FIELDS]
    valid = [v for v in valid if v not in {p for _, p in sub.values()}]
    owner = f"{key} {name!r} ({config_cls.__name__})"
    check_known_names(owner, list(own) + [f"{h}.*" for h in nested_params if h not in sub], valid)
    defaults = {f.name: _field_default(f) for f in dataclasses.fields(config_cls)}
    for name_field, (sub_kind, params_field) in sub.items():
        sub_name = own.get(name_field, defaults[name_field])
        if isinstance(sub_name, str):  # (a class given directly takes its parameters as they are)
            sub_spec = _build_component(
                sub_kind, sub_name, nested_params.get(name_field, {}), threads=threads, key=f"{key}.{name_field}"
            )
            own[params_field] = sub_spec.kwargs()
    if "n_threads" in {f.name for f in dataclasses.fields(config_cls)}:
        own["n_threads"] = threads
    return ComponentSpec(name, config_cls(**own))


def nested_to_settings(data: Mapping[str, Any], *, source: str = "config") -> dict[str, Any]:
    """``{key: value}`` settings from the nested layout of :meth:`SimulationConfig.to_dict` (any subset of it)."""
    out: dict[str, Any] = {}
    sections = {"run", "world", "campaign"}
    check_known_names(
        source, [k for k in data if k != "version"], [*sections, *COMPONENT_KINDS, "retention"], what="sections"
    )
    for section in sections & data.keys():
        values = data[section]
        if not isinstance(values, Mapping):
            raise ConfigTypeError(f"{source} {section} must be an object of settings, got {type(values).__name__}.")
        valid = [k for k, s in _section_of().items() if s == section]
        if section == "world" and "world_seed" in values:
            raise ConfigTypeError(f"{source} world.world_seed is the run's: set run.world_seed instead.")
        check_known_names(f"{source} {section}", values, valid, what="settings")
        out.update(values)
    for kind in COMPONENT_KINDS:
        if kind in data:
            out.update(_spec_settings(kind, data[kind], source))
    if data.get("retention") is not None:
        out.update(_retention_section(data["retention"], source))
    return out


def _retention_section(section: Any, source: str) -> dict[str, Any]:
    """``retention.*`` settings from a file's ``"retention": {"horizon": ..., "dynamics": {...}}`` section."""
    if not isinstance(section, Mapping):
        raise ConfigTypeError(f"{source} retention must be an object of settings, got {type(section).__name__}.")
    check_known_names(f"{source} retention", section, ["horizon", "dynamics"], what="settings")
    dynamics = section.get("dynamics", {})
    if not isinstance(dynamics, Mapping):
        raise ConfigTypeError(f"{source} retention.dynamics must be an object, got {type(dynamics).__name__}.")
    valid = [f.name for f in dataclasses.fields(RetentionDynamics)]
    check_known_names(f"{source} retention.dynamics", dynamics, valid, what="settings")
    out = {RETENTION_DYNAMICS + k: v for k, v in dynamics.items()}
    if "horizon" in section:
        out["retention.horizon"] = section["horizon"]
    return out


def _spec_settings(prefix: str, spec: Any, source: str) -> dict[str, Any]:
    if isinstance(spec, str):
        return {prefix: spec}
    if not isinstance(spec, Mapping) or not set(spec) <= {"name", "params"}:
        raise ConfigTypeError(f"{source} {prefix} must be a name or an object with 'name' and 'params', got {spec!r}.")
    out: dict[str, Any] = {}
    if "name" in spec:
        out[prefix] = spec["name"]
    params = spec.get("params", {})
    if not isinstance(params, Mapping):
        raise ConfigTypeError(f"{source} {prefix}.params must be an object, got {type(params).__name__}.")
    for key, value in params.items():
        if isinstance(value, Mapping) and set(value) <= {"name", "params"} and "name" in value:
            out.update(_spec_settings(f"{prefix}.{key}", value, source))
        else:
            out[f"{prefix}.{key}"] = value
    return out


# ---------------------------------------------------------------------------------------------- version 1

#: Version-1 keys (the flat ``SimulationConfig`` of earlier releases) that moved or were renamed.
_V1_RENAMED = {
    "users": "users_per_iteration",
    "ground_truth_type": "ground_truth",
    "company_strategy": "agent",
    "optimizer": "designer",
    "reward_model_type": "designer.reward_model",
}
#: Version-1 keys of the pool and selection (every designer took them).
_V1_DESIGNER = (
    "action_pool_size",
    "action_bank_size",
    "max_bank_size",
    "diversity_weight",
    "n_representative_users",
    "representative_method",
)
#: Version-1 keys that applied only to some components, as (component key, name) -> {v1 key: parameter}.
_V1_CONDITIONAL = {
    ("agent", "linucb"): {"alpha": "alpha", "use_pca": "use_pca", "pca_components": "pca_components"},
    ("agent", "bootstrapped_dqn"): {"n_heads": "n_heads", "use_pca": "use_pca", "pca_components": "pca_components"},
    ("designer", "generative"): {"use_uncertainty": "use_uncertainty", "uncertainty_weight": "uncertainty_weight"},
    ("designer.reward_model", "lightgbm"): {
        "lgb_n_estimators": "n_estimators",
        "lgb_learning_rate": "learning_rate",
        "lgb_num_leaves": "num_leaves",
    },
    ("designer.reward_model", "bayesian_neural"): {"bnn_mc_samples": "mc_samples"},
}
#: Version-1 defaults of the component names (what an old file without them ran).
_V1_NAMES = {"company_strategy": "linucb", "optimizer": "generative", "reward_model_type": "lightgbm"}


def legacy_setting_homes(name: str) -> tuple[str, ...]:
    """The components the version-1 setting ``name`` went to (empty: wherever its setting exists).

    Example:
        >>> legacy_setting_homes("use_pca"), legacy_setting_homes("users")
        (('linucb', 'bootstrapped_dqn'), ())
    """
    return tuple(component_name for _, component_name in _v1_homes(name))


def _v1_homes(name: str) -> list[tuple[str, str]]:
    """(component key, component name) of every component the version-1 setting ``name`` went to."""
    return [home for home, table in _V1_CONDITIONAL.items() if name in table]


def legacy_setting_applies(name: str, components: Mapping[str, str]) -> bool:
    """Whether the version-1 setting ``name`` reaches the chosen components, as it did in version 1.

    ``alpha`` / ``use_pca`` / ``pca_components`` went only to LinUCB (``n_heads`` and the PCA ones also to the
    bootstrapped DQN), the ``lgb_*`` settings only to LightGBM, ``bnn_mc_samples`` only to the Bayesian neural model
    and the uncertainty settings only to the generative designer (the table :func:`migrate_v1` reads config files
    with). The command line's legacy flags and ``--set`` keys follow it too, so ``--lgb_learning_rate`` never sets
    the neural model's learning rate. Any other name applies wherever its setting exists.

    Args:
        name: A version-1 setting name (``"lgb_learning_rate"``).
        components: Component key -> chosen name (``{"designer.reward_model": "neural"}``); a key left out means
            today's default component.

    Example:
        >>> legacy_setting_applies("lgb_learning_rate", {"designer.reward_model": "neural"})
        False
        >>> legacy_setting_applies("lgb_learning_rate", {"designer.reward_model": "lightgbm"})
        True
        >>> legacy_setting_applies("alpha", {}), legacy_setting_applies("users", {})  # LinUCB is the default agent
        (True, True)
    """
    homes = _v1_homes(name)
    if not homes:
        return True
    defaults: dict[str, Any] | None = None
    for component, component_name in homes:
        chosen = components.get(component)
        if chosen is None:
            defaults = defaults if defaults is not None else SimulationConfig().settings()
            chosen = defaults.get(component)
        if chosen == component_name:
            return True
    return False


def migrate_v1(data: Mapping[str, Any], *, source: str = "config") -> dict[str, Any]:
    """A version-1 ``simulation_config.json`` (flat settings) in the version-2 layout, with the same meaning.

    Version 1 passed ``alpha`` / ``use_pca`` / ``pca_components`` only to LinUCB (``n_heads`` and the PCA ones only
    to the bootstrapped DQN), the ``lgb_*`` settings only to LightGBM, ``bnn_mc_samples`` only to the Bayesian
    neural model and the uncertainty settings only to the generative designer; ``company_params`` overrode the
    agent's parameters. Settings a file leaves out keep today's defaults.

    Example:
        >>> v2 = migrate_v1({"users": 500, "alpha": 0.5, "n_heads": 4, "reward_model_type": "linear"})
        >>> v2["campaign"], v2["agent"], v2["designer"]["params"]["reward_model"]
        ({'users_per_iteration': 500}, {'name': 'linucb', 'params': {'alpha': 0.5}}, {'name': 'linear', 'params': {}})
    """
    flat = dict(data)
    known = set(_V1_RENAMED) | set(_V1_DESIGNER) | set(_section_of()) | {"company_params"} | {"world_seed"}
    known |= {k for table in _V1_CONDITIONAL.values() for k in table}
    check_known_names(f"{source} (version 1)", flat, sorted(known), what="settings")
    names = {
        "agent": flat.pop("company_strategy", _V1_NAMES["company_strategy"]),
        "designer": flat.pop("optimizer", _V1_NAMES["optimizer"]),
        "designer.reward_model": flat.pop("reward_model_type", _V1_NAMES["reward_model_type"]),
    }
    params: dict[str, dict[str, Any]] = {k: {} for k in names}
    conditional = {k for table in _V1_CONDITIONAL.values() for k in table}
    for (component, name), table in _V1_CONDITIONAL.items():
        if names[component] == name:
            params[component].update({p: flat[k] for k, p in table.items() if k in flat})
    for key in conditional:
        flat.pop(key, None)
    company_params = flat.pop("company_params", None)
    if company_params is not None and not isinstance(company_params, Mapping):
        raise ConfigTypeError(
            f"{source} (version 1) company_params must be a JSON object of the agent's parameters, got "
            f"{type(company_params).__name__} {str(company_params)[:60]!r}."
        )
    params["agent"].update(company_params or {})
    for key in _V1_DESIGNER:
        if key in flat:
            params["designer"][key] = flat.pop(key)
    out: dict[str, Any] = {"version": CONFIG_VERSION, "run": {}, "world": {}, "campaign": {}}
    section_of = _section_of()
    for key, value in flat.items():
        target = _V1_RENAMED.get(key, key)
        out[section_of[target]][target] = value
    designer_params: dict[str, Any] = dict(params["designer"])
    if names["designer"] == "generative":
        designer_params["reward_model"] = {
            "name": names["designer.reward_model"],
            "params": params["designer.reward_model"],
        }
    out["agent"] = {"name": names["agent"], "params": params["agent"]}
    out["designer"] = {"name": names["designer"], "params": designer_params}
    return out
