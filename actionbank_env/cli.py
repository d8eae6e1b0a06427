"""The ``actionbank`` command (also ``python -m actionbank_env``).

``main`` stays thin: it parses, builds a config, calls one library function and prints the run folder and a
summary. Bad input goes to stderr as one line with exit code 2: the command decides by exception type (every
:class:`~actionbank_env.errors.ActionBankError` is the user's to fix), never by the text of a message.

Settings flags are generated from the configuration tree (:func:`actionbank_env.config.settings_schema`): one flag per
setting of the chosen components, its help the field's docstring, its value read by the one field parser
(:func:`actionbank_env.config.parse_value`). The flags of a component appear when it is chosen
(``actionbank simulate --agent bootstrapped_dqn --help``). The original system's flag spellings live in
:data:`ALIASES`, the only table of them (each reaches only the components a version-1 config file gives it to:
:func:`actionbank_env.config.legacy_setting_applies`); every settings flag is also accepted in snake_case.

A subcommand is one function and one entry in :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from actionbank_env import __version__
from actionbank_env.errors import ActionBankError, ConfigError
from actionbank_env.results import out_path

if typing.TYPE_CHECKING:
    from actionbank_env.config import Setting

__all__ = ["main", "build_parser", "ALIASES", "format_default"]

#: The original system's setting names -> keys of the configuration tree (flags ``--<name>`` in kebab and snake
#: case, and keys of ``--set`` / ``--grid``).
ALIASES: dict[str, str] = {
    "users": "users_per_iteration",
    "ground_truth_type": "ground_truth",
    "company_strategy": "agent",
    "company_params": "agent.params",
    "alpha": "agent.alpha",
    "use_pca": "agent.use_pca",
    "pca_components": "agent.pca_components",
    "n_heads": "agent.n_heads",
    "optimizer": "designer",
    "reward_model_type": "designer.reward_model",
    "lgb_n_estimators": "designer.reward_model.n_estimators",
    "lgb_learning_rate": "designer.reward_model.learning_rate",
    "lgb_num_leaves": "designer.reward_model.num_leaves",
    "bnn_mc_samples": "designer.reward_model.mc_samples",
    "action_pool_size": "designer.action_pool_size",
    "action_bank_size": "designer.action_bank_size",
    "max_bank_size": "designer.max_bank_size",
    "diversity_weight": "designer.diversity_weight",
    "use_uncertainty": "designer.use_uncertainty",
    "uncertainty_weight": "designer.uncertainty_weight",
    "n_representative_users": "designer.n_representative_users",
    "representative_method": "designer.representative_method",
}
#: Keys that name a component; the flags of its parameters depend on the name.
_COMPONENT_KEYS = ("agent", "designer", "designer.reward_model")


class _UsageError(Exception):
    """Bad command-line input (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """No abbreviated flags (``--openai-api-k`` would set the key under a spelling no redaction knows; a prefix
    would also change meaning when a flag is added); errors as one line with exit code 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> typing.NoReturn:  # one clear line, exit code 2
        head, sep, rest = message.partition("unrecognized arguments: ")
        if sep:  # name the unknown flags, not the values after them (one may be a key given to a misspelt flag)
            shown = [arg.partition("=")[0] + ("=..." if "=" in arg else "") for arg in rest.split() if arg[:1] == "-"]
            message = f"{head}{sep}{' '.join(shown) or '(values without a flag)'}"
        raise _UsageError(f"{self.prog}: {message}")


def format_default(value: Any) -> str:
    """How ``--help`` and the README write a default.

    Example:
        >>> format_default(None), format_default(True), format_default((64, 32)), format_default(0.05)
        ('none', 'true', '64,32', '0.05')
    """
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(format_default(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _spellings(key: str) -> list[str]:
    kebab = "--" + key.replace("_", "-")
    snake = "--" + key
    return [kebab] if kebab == snake else [kebab, snake]


def _aliases_of(key: str) -> list[str]:
    return [alias for alias, target in ALIASES.items() if target == key]


def _json_object(text: str) -> dict[str, Any]:
    from actionbank_env.core.io import parse_json

    try:
        value = parse_json(text, "the value")
    except ActionBankError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("the value is not", "not")) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return value


def _value_parser(key: str, hint: Any) -> Callable[[str], Any]:
    from actionbank_env.config import parse_value

    def parse(text: str) -> Any:
        try:
            return parse_value(key, text, hint)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = key  # argparse names the converter in some messages
    return parse


class _NotApplicable(argparse.Action):
    """A legacy flag whose setting the chosen component does not have: ignored with a note, as earlier releases did
    (their flat settings went only to the components that had them; the tree's own ``--agent.*`` flags are strict)."""

    def __init__(self, *args: Any, why: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.why = why

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: str | None = None) -> None:
        print(f"{parser.prog}: note: {option} is ignored: {self.why}.", file=sys.stderr)


# ---------------------------------------------------------------------------------------------- settings flags


def _selection(argv: Sequence[str]) -> dict[str, str]:
    """The component names ``argv`` chooses (flags, aliases, or the ``--config`` file), before parsing it."""
    spellings = {s: key for key in _COMPONENT_KEYS for s in _spellings(key)}
    spellings.update(
        {s: target for alias, target in ALIASES.items() if target in _COMPONENT_KEYS for s in _spellings(alias)}
    )
    chosen: dict[str, str] = {}
    config_file: str | None = None
    items = list(argv)
    for i, arg in enumerate(items):
        flag, eq, value = arg.partition("=")
        if not eq:
            value = items[i + 1] if i + 1 < len(items) else ""
        if flag in spellings and value:
            chosen[spellings[flag]] = value
        elif flag == "--config" and value:
            config_file = value
    if config_file is not None:
        for key, value in _file_components(Path(config_file)).items():
            chosen.setdefault(key, value)
    return chosen


def _file_components(path: Path) -> dict[str, str]:
    """Component names a ``--config`` file gives (nothing when it cannot be read: the real parse reports that)."""
    from actionbank_env.config import migrate_v1, nested_to_settings

    try:
        from actionbank_env.core.io import read_json

        data = read_json(path)
        settings = nested_to_settings(data if "version" in data else migrate_v1(data, source=str(path)))
    except (OSError, ValueError, TypeError, AttributeError, ActionBankError):
        return {}
    return {k: v for k, v in settings.items() if k in _COMPONENT_KEYS and isinstance(v, str)}


def _add_settings_flags(
    parser: argparse.ArgumentParser,
    selection: Mapping[str, str],
    skip: Sequence[str] = (),
    keep: Callable[[Setting], bool] | None = None,
) -> None:
    """One flag per setting of the configuration tree for the chosen components (see the module docstring);
    ``keep`` selects a part of the tree (e.g. the world's settings)."""
    from actionbank_env.config import legacy_setting_applies, legacy_setting_homes, settings_schema

    try:
        schema = settings_schema(
            selection.get("agent"),
            selection.get("designer"),
            {"reward_model": selection["designer.reward_model"]} if "designer.reward_model" in selection else None,
        )
    except ActionBankError:  # an unknown component name: its error comes from building the config
        schema = settings_schema()
    group = parser.add_argument_group("settings (defaults < --config file < flags; legacy spellings in brackets)")
    present = set()
    taken: set[str] = set()  # legacy spellings that set a setting of the chosen components
    for setting in schema:
        if setting.key in skip or (keep is not None and not keep(setting)):
            continue
        present.add(setting.key)
        aliases = [alias for alias in _aliases_of(setting.key) if legacy_setting_applies(alias, selection)]
        taken.update(aliases)
        names = _spellings(setting.key) + [s for alias in aliases for s in _spellings(alias)]
        doc = setting.doc.replace("%", "%%")
        help_text = f"{doc} (default: {format_default(setting.default).replace('%', '%%')})"
        kind = typing.get_origin(setting.hint)
        if setting.hint is bool:
            group.add_argument(
                *names,
                dest=setting.key,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        elif setting.hint is dict or kind is dict or (setting.key.endswith(".params")):
            group.add_argument(
                *names, dest=setting.key, type=_json_object, default=argparse.SUPPRESS, metavar="JSON", help=help_text
            )
        else:
            group.add_argument(
                *names,
                dest=setting.key,
                type=_value_parser(setting.key, setting.hint),
                default=argparse.SUPPRESS,
                metavar=setting.key.rpartition(".")[2].upper(),
                help=help_text,
            )
    for alias, target in ALIASES.items():
        if alias not in taken and target not in skip:
            head = max((k for k in _COMPONENT_KEYS if target.startswith(k + ".")), key=len, default=target)
            kind = head.replace("designer.reward_model", "reward model")
            homes = legacy_setting_homes(alias)
            group.add_argument(
                *_spellings(alias),
                dest=target,
                action=_NotApplicable,
                why=(
                    f"the original system passed it only to {kind} {' / '.join(homes)}, not to the chosen one"
                    if target in present and homes
                    else f"it sets {target}, which the chosen {kind} does not have"
                    if head != target and keep is None
                    else f"it sets {target}, which this command does not take"
                ),
                nargs="?",
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS,
            )


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags."""
    return {k: v for k, v in vars(args).items() if k not in _COMMAND_ARGS}


def _config_file(path: Path | None) -> tuple[Any, set[str]]:
    """The ``--config`` file's settings (defaults without one) and the keys the file gives."""
    from actionbank_env.config import SimulationConfig

    if path is None:
        return SimulationConfig(), set()
    if path.is_dir():
        raise _UsageError(f"--config {path} is a folder; give a JSON file of settings (a simulation_config.json).")
    if not path.is_file():
        raise _UsageError(f"--config {path}: no such file.")
    from actionbank_env.core.io import read_json

    try:
        loaded = read_json(path)
    except ActionBankError as exc:  # names the file: not UTF-8, not JSON, too deep, too large
        raise _UsageError(f"actionbank: error: --config {exc}") from None
    base = SimulationConfig.from_dict(loaded, source=f"--config {path}")
    return base, set(loaded) | set(loaded.get("world", {}) if isinstance(loaded.get("world"), dict) else {})


def _simulation_config(args: argparse.Namespace, api_key: str | None = None) -> Any:
    """The configuration: defaults, then the ``--config`` file, then the flags."""
    flags = _settings(args)
    base, file_keys = _config_file(getattr(args, "config", None))
    if api_key and "embedder" not in flags and "embedder" not in file_keys:
        flags["embedder"] = "openai"
    return base.with_settings(flags, source="flags") if flags else base


def _api_key(args: argparse.Namespace) -> str | None:
    """The OpenAI key: ``--openai-api-key`` or the ``OPENAI_API_KEY`` environment variable (read here, once)."""
    return getattr(args, "openai_api_key", None) or os.environ.get("OPENAI_API_KEY") or None


# ---------------------------------------------------------------------------------------------- subcommands

_COMMAND_ARGS = {
    "command",
    "trust_plugins",
    "config",
    "resume",
    "out",
    "overwrite",
    "openai_api_key",
    "quiet",
    "run_dir",
    "model_type",
    "log_users",
    "json",
}


def _add_run_args(parser: argparse.ArgumentParser, *, resume: bool = True) -> None:
    parser.add_argument("--config", type=Path, help="JSON file of settings (simulation_config.json; flags override it)")
    if resume:
        parser.add_argument(
            "--resume",
            type=Path,
            metavar="RUN_DIR",
            help="continue an interrupted run from its last complete iteration",
        )
        parser.add_argument(
            "--trust-plugins",
            action="store_true",
            help="with --resume: import the module:Class components the run folder names (they run code)",
        )
    parser.add_argument(
        "--out", type=out_path, help="write into exactly this folder instead of results_dir/name_timestamp"
    )
    parser.add_argument("--overwrite", action="store_true", help="allow --out to be a non-empty folder")
    parser.add_argument(
        "--openai-api-key",
        "--openai_api_key",
        dest="openai_api_key",
        help="use OpenAI for generation and embeddings (never written anywhere); OPENAI_API_KEY works too",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _configure_simulate(parser: argparse.ArgumentParser, selection: Mapping[str, str]) -> None:
    _add_run_args(parser)
    _add_settings_flags(parser, selection)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from actionbank_env.experiment import run_simulation

    api_key = _api_key(args)
    if getattr(args, "resume", None) is not None:
        given = [f"--{k.replace('_', '-')}" for k in _settings(args)]
        given += [flag for flag, value in (("--config", args.config), ("--out", args.out)) if value is not None]
        given += ["--overwrite"] if args.overwrite else []
        if given:
            raise _UsageError(
                f"--resume {args.resume} continues the run with its own settings ({args.resume}/simulation_config.json) "
                f"and folder; it cannot be combined with {', '.join(sorted(given))}."
            )
        result = run_simulation(
            None, resume=args.resume, progress=not args.quiet, api_key=api_key, trust_plugins=args.trust_plugins
        )
    else:
        config = _simulation_config(args, api_key)
        result = run_simulation(
            config, out=args.out, overwrite=args.overwrite, progress=not args.quiet, api_key=api_key
        )
    print(result.summary_table())
    print()
    print(result.headline())
    return 0


def _configure_generate_data(parser: argparse.ArgumentParser, selection: Mapping[str, str]) -> None:
    parser.add_argument("--config", type=Path, help="JSON file of settings (flags override it)")
    parser.add_argument(
        "--out",
        "--data_dir",
        "--data-dir",
        dest="out",
        type=out_path,
        help="the data folder (default data/simulation_data/<id>)",
    )
    parser.add_argument("--overwrite", action="store_true", help="allow --out to be a non-empty folder")
    parser.add_argument("--openai-api-key", "--openai_api_key", dest="openai_api_key", help=argparse.SUPPRESS)
    _add_settings_flags(parser, selection, skip=("data_dir",))


def _cmd_generate_data(args: argparse.Namespace) -> int:
    from actionbank_env.data import generate_data

    api_key = _api_key(args)
    path = generate_data(_simulation_config(args, api_key), out=args.out, overwrite=args.overwrite, api_key=api_key)
    print(f"data: {path}")
    return 0


def _configure_run_from_data(parser: argparse.ArgumentParser, selection: Mapping[str, str]) -> None:
    _add_run_args(parser)
    _add_settings_flags(parser, selection)


def _cmd_run_from_data(args: argparse.Namespace) -> int:
    if "data_dir" not in vars(args) and args.config is None:
        raise _UsageError("actionbank run-from-data: --data_dir DIR is required (a generate-data folder).")
    return _cmd_simulate(args)


def _configure_compare_models(parser: argparse.ArgumentParser, selection: Mapping[str, str]) -> None:
    parser.add_argument(
        "run_dir", nargs="?", type=Path, help="a run folder whose logs to use (default: a fresh random-targeting log)"
    )
    parser.add_argument(
        "--model-type",
        "--model_type",
        dest="model_type",
        default="compare_all",
        help="a reward model name or compare_all",
    )
    parser.add_argument(
        "--log-users",
        "--log_users",
        dest="log_users",
        type=int,
        default=None,
        help="rows of the fresh log (default: --users)",
    )
    parser.add_argument("--json", type=Path, help="also write the scores as JSON")
    parser.add_argument("--config", type=Path, help="JSON file of settings (flags override it)")
    _add_settings_flags(parser, selection)


def _cmd_compare_models(args: argparse.Namespace) -> int:
    from actionbank_env._validation import check_component, check_int
    from actionbank_env.model_comparison import compare_models, format_table, write_comparison
    from actionbank_env.registry import REWARD_MODELS
    from actionbank_env.results import CONFIG_FILE

    if args.model_type == "compare_all":
        models = tuple(REWARD_MODELS)
    else:
        models = (check_component("--model_type", args.model_type, (*REWARD_MODELS, "compare_all")),)
    config = _simulation_config(args)
    if args.run_dir is not None and not (args.run_dir / CONFIG_FILE).is_file():
        raise _UsageError(f"{args.run_dir} is not a run folder (no {CONFIG_FILE}).")
    if args.log_users is not None:
        check_int("--log-users", args.log_users, low=1)
        if args.run_dir is not None:
            raise _UsageError("actionbank compare-models: --log-users sizes a fresh log; a run folder brings its own.")
    scores = compare_models(
        args.run_dir,
        models=models,
        config=config,
        users=config.campaign.users_per_iteration if args.log_users is None else args.log_users,
        seed=config.run.seed,
    )
    print(format_table(scores))
    if args.json is not None:
        print(f"wrote {write_comparison(args.json, scores)}")
    return 0


def _configure_train(parser: argparse.ArgumentParser, selection: Mapping[str, str]) -> None:
    from actionbank_env.integrations.sb3 import SB3_ALGORITHMS

    parser.add_argument("--algo", required=True, help=", ".join(SB3_ALGORITHMS))
    parser.add_argument("--env", dest="env_id", default="ActionBank/Targeting-v0", help="environment id")
    parser.add_argument("--total-timesteps", "--total_timesteps", dest="total_timesteps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", "--results_dir", dest="results_dir", default="results")
    parser.add_argument("--out", type=out_path, help="write into exactly this (new or empty) folder")
    parser.add_argument("--n-envs", "--n_envs", dest="n_envs", type=int, default=1)
    parser.add_argument(
        "--env-kwargs",
        "--env_kwargs",
        dest="env_kwargs",
        type=_json_object,
        default=None,
        metavar="JSON",
        help='gymnasium.make keyword arguments, e.g. \'{"embedder": "hashing"}\'',
    )
    parser.add_argument(
        "--algo-kwargs", "--algo_kwargs", dest="algo_kwargs", type=_json_object, default=None, metavar="JSON"
    )
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false")
    parser.add_argument(
        "--eval-freq",
        "--eval_freq",
        dest="eval_freq",
        type=int,
        default=None,
        help="evaluate the deterministic policy every N env steps (default: ten times per run; 0: at the end)",
    )
    parser.add_argument(
        "--n-eval-episodes",
        "--n_eval_episodes",
        dest="n_eval_episodes",
        type=int,
        default=5,
        help="episodes per evaluation",
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from actionbank_env.training import train

    result = train(
        args.algo,
        args.env_id,
        total_timesteps=args.total_timesteps,
        seed=args.seed,
        results_dir=args.results_dir,
        out=args.out,
        env_kwargs=args.env_kwargs,
        n_envs=args.n_envs,
        tensorboard=args.tensorboard,
        algo_kwargs=args.algo_kwargs,
        n_eval_episodes=args.n_eval_episodes,
        eval_freq=args.eval_freq,
    )
    print(
        f"mean reward {result.mean_reward:.4f} (random {result.random_reward:.4f}, "
        f"best single action {result.best_single_action_reward:.4f}, oracle {result.oracle_reward:.4f})"
    )
    print(f"model: {result.model_path}")
    print(f"results: {result.path}")
    return 0


def _configure_sweep(parser: argparse.ArgumentParser, selection: Mapping[str, str]) -> None:
    from actionbank_env.sweep import SWEEP_FIXED, add_sweep_arguments

    add_sweep_arguments(parser)
    parser.add_argument(
        "--config",
        type=Path,
        help="JSON file of settings shared by every trial (simulation_config.json; flags override it)",
    )
    _add_settings_flags(parser, selection, skip=SWEEP_FIXED)  # simulate's flags, less what each trial sets itself


def _cmd_sweep(args: argparse.Namespace) -> int:
    from actionbank_env.sweep import SWEEP_ARGS, sweep_main

    config, _ = _config_file(args.config)
    flags = {k: v for k, v in vars(args).items() if k not in SWEEP_ARGS and k != "config"}
    return sweep_main(args, aliases=ALIASES, flags=flags, config=config)


def _configure_benchmark(parser: argparse.ArgumentParser, selection: Mapping[str, str]) -> None:
    from actionbank_env.benchmark import add_benchmark_arguments

    add_benchmark_arguments(parser)


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from actionbank_env.benchmark import benchmark_main

    return benchmark_main(args, aliases=ALIASES)


def _configure_report(parser: argparse.ArgumentParser, selection: Mapping[str, str]) -> None:
    parser.add_argument("run_dir", type=Path)
    parser.add_argument(
        "--compare",
        type=Path,
        action="extend",
        nargs="+",
        default=[],
        metavar="RUN_DIR",
        help="other run folders to draw on the same axes (--compare A B, or --compare A --compare B)",
    )


def _cmd_report(args: argparse.Namespace) -> int:
    from actionbank_env.report import write_report
    from actionbank_env.results import CONFIG_FILE

    for folder in [args.run_dir, *args.compare]:
        if not (folder / CONFIG_FILE).is_file():
            raise _UsageError(f"{folder} is not a run folder (no {CONFIG_FILE}).")
    print(f"report: {write_report(args.run_dir, compare=args.compare)}")
    return 0


def _configure_ope(parser: argparse.ArgumentParser, selection: Mapping[str, str]) -> None:
    parser.description = (
        "Estimate, from iteration T's log, the value of the bank proposed after T (default), of another bank "
        "(--bank) or of a targeting agent (--policy) with DM, IPS, SNIPS, DR, switch-DR, DR-os, MIPS, SN-MIPS and "
        "marginal DR; print estimate, interval, truth and error; write iteration_T/ope.json."
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--iteration", type=int, default=None, help="iteration T (default: the last complete one)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--bank", type=Path, default=None, help="a bank JSON or a text file, one text per line")
    target.add_argument("--policy", default=None, help="a targeting agent: registry name or module:Class")
    parser.add_argument("--folds", type=int, default=5, help="cross-fitting folds of the greedy policy's model")
    parser.add_argument("--seed", type=int, default=0, help="seeds folds, models, clusters and bootstrap")
    parser.add_argument("--interval", choices=("analytic", "bootstrap"), default="analytic")
    parser.add_argument("--obp-out", type=Path, default=None, help="also write the log as an OBP bandit_feedback .npz")


def _cmd_ope(args: argparse.Namespace) -> int:
    from actionbank_env.ope import OPEConfig
    from actionbank_env.ope.run import evaluate_run, write_obp

    report, path = evaluate_run(
        args.run_dir,
        iteration=args.iteration,
        bank=args.bank,
        policy=args.policy,
        config=OPEConfig(interval=args.interval),
        n_folds=args.folds,
        seed=args.seed,
    )
    print(report.table())
    print(f"ope: {path}")
    if args.obp_out is not None:
        print(f"obp: {write_obp(args.run_dir, args.obp_out, iteration=report.info.get('iteration'))}")
    return 0


_WORLD_CARD_ARGS = ("command", "json", "learnability", "n_users", "n_texts", "card_seed")


def _configure_world_card(parser: argparse.ArgumentParser, selection: Mapping[str, str]) -> None:
    from actionbank_env.core.world import WorldConfig

    parser.add_argument("--json", type=Path, help="also write the card as JSON")
    parser.add_argument("--learnability", action="store_true", help="also fit a well-specified model on logs (slow)")
    parser.add_argument("--n-users", "--n_users", dest="n_users", type=int, default=2000, help="fresh users")
    parser.add_argument("--n-texts", "--n_texts", dest="n_texts", type=int, default=2000, help="fresh texts (the pool)")
    parser.add_argument(
        "--card-seed", "--card_seed", dest="card_seed", type=int, default=0, help="draws users and texts"
    )
    _add_settings_flags(parser, selection, keep=lambda s: s.owner is WorldConfig or s.key == "world_seed")


def _cmd_world_card(args: argparse.Namespace) -> int:
    from actionbank_env.config import SimulationConfig
    from actionbank_env.core.io import atomic_write_json
    from actionbank_env.core.world import World

    settings = {k: v for k, v in vars(args).items() if k not in _WORLD_CARD_ARGS}
    world = World.build(SimulationConfig().with_settings(settings, source="flags").world)
    card = world.card(n_users=args.n_users, n_texts=args.n_texts, seed=args.card_seed, learnability=args.learnability)
    print(card.format())
    if args.json is not None:
        print(f"wrote {atomic_write_json(args.json, card.to_dict())}")
    return 0


def _configure_nothing(parser: argparse.ArgumentParser, selection: Mapping[str, str]) -> None:
    pass


def _cmd_list_envs(_: argparse.Namespace) -> int:
    import gymnasium

    import actionbank_env  # noqa: F401  (registers the ids)

    ids = sorted(k for k in gymnasium.registry if k.startswith("ActionBank/"))
    for env_id in ids:
        spec = gymnasium.registry[env_id]
        vector = " (native vector env)" if spec.vector_entry_point else ""
        print(f"{env_id}{vector}")
    return 0


def _configure_check_env(parser: argparse.ArgumentParser, selection: Mapping[str, str]) -> None:
    parser.add_argument("--env", action="append", help="only this id (repeatable)")


def _cmd_check_env(args: argparse.Namespace) -> int:
    import warnings

    import gymnasium
    from gymnasium.utils.env_checker import check_env

    import actionbank_env  # noqa: F401

    ids = args.env or sorted(k for k in gymnasium.registry if k.startswith("ActionBank/"))
    kwargs = {"embedder": "hashing"}
    for env_id in ids:
        if env_id not in gymnasium.registry:
            raise _UsageError(f"--env {env_id!r} is not registered; see `actionbank list-envs`.")
        env = gymnasium.make(env_id, **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped)
        env.close()
        print(f"{env_id}: ok")
    return 0


Configure = Callable[[argparse.ArgumentParser, Mapping[str, str]], None]
#: name -> (help, add its arguments, run it).
SUBCOMMANDS: dict[str, tuple[str, Configure, Callable[[argparse.Namespace], int]]] = {
    "simulate": ("run the full simulation (see the README's 'The loop')", _configure_simulate, _cmd_simulate),
    "generate-data": (
        "write fixed users per iteration and the initial bank (reproducible data)",
        _configure_generate_data,
        _cmd_generate_data,
    ),
    "run-from-data": (
        "run the simulation on a generate-data folder (its users and initial bank)",
        _configure_run_from_data,
        _cmd_run_from_data,
    ),
    "compare-models": (
        "train every reward model (or one) on logged data and score it against the ground truth",
        _configure_compare_models,
        _cmd_compare_models,
    ),
    "train": (
        "train a Stable-Baselines3 policy (ppo, a2c, dqn) on an environment, with TensorBoard",
        _configure_train,
        _cmd_train,
    ),
    "report": ("write report.html and plots for a run folder", _configure_report, _cmd_report),
    "sweep": (
        "a grid of settings x seeds on a process pool or Ray (simulate's flags); mean ± 95%% CI table and paired "
        "differences to a --baseline",
        _configure_sweep,
        _cmd_sweep,
    ),
    "benchmark": (
        "designers x world seeds, paired: differences to random and keep (mean ± 95%% CI), CSV, markdown, plot",
        _configure_benchmark,
        _cmd_benchmark,
    ),
    "ope": (
        "off-policy estimates of a new bank or policy from a run's log, beside the exact truth",
        _configure_ope,
        _cmd_ope,
    ),
    "world-card": (
        "measure a world's datasheet on fresh texts: calibration vs configured, realism, oracle bank",
        _configure_world_card,
        _cmd_world_card,
    ),
    "list-envs": ("list the registered Gymnasium environment ids", _configure_nothing, _cmd_list_envs),
    "check-env": ("run gymnasium's env checker on every environment id", _configure_check_env, _cmd_check_env),
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser of every subcommand, with the settings flags of the components ``argv`` chooses."""
    selection = _selection(argv or ())
    parser = _Parser(prog="actionbank", description="Test action-bank design for personalised targeting.")
    parser.add_argument("--version", action="version", version=f"actionbank-env {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_text, configure, _) in SUBCOMMANDS.items():
        configure(sub.add_parser(name, help=help_text), selection)
    return parser


@contextlib.contextmanager
def _cwd_on_sys_path() -> Iterator[None]:
    """The current folder on ``sys.path`` (last, so it never shadows an installed package) while a command runs.

    ``python -m actionbank_env`` has it; the ``actionbank`` console script does not, so ``--company-strategy
    my_agent:MyAgent`` would fail from the agent's own folder.
    """
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.append(cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``actionbank`` command; returns the exit code."""
    with _cwd_on_sys_path():
        return _main(argv)


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return SUBCOMMANDS[args.command][2](args)
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except ActionBankError as exc:  # bad settings, unknown names, a missing extra: the user's to fix
        print(f"actionbank: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # reading or writing a file: say which, without guessing the operation
        where = f" {exc.filename}:" if getattr(exc, "filename", None) else ""
        print(
            f"actionbank: error:{where} {exc.strerror or exc}; files already written are intact "
            "(an interrupted simulate run resumes with --resume RUN_DIR).",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
