"""The ``actionbank`` command (also ``python -m actionbank_env``).

``main`` stays thin: it parses, builds a config, calls one library function and prints the run folder and
a summary. Bad input goes to stderr as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actionbank_env import __version__
from actionbank_env.errors import ActionBankError

__all__ = ["main", "build_parser"]


class _UsageError(Exception):
    """Bad command-line input (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one clear line, exit code 2
        raise _UsageError(f"{self.prog}: {message}")


def _field_type(field: dataclasses.Field[Any]) -> Any:
    hint = typing.get_type_hints(_config_class())[field.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = args[0]
    return hint


def _config_class() -> Any:
    from actionbank_env.config import SimulationConfig

    return SimulationConfig


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return value


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("none", "null", "") else int(text)


def _add_config_flags(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    """One flag per SimulationConfig field: ``--kebab-case`` plus the classic ``--snake_case`` alias."""
    group = parser.add_argument_group("simulation settings (defaults < --config file < flags)")
    cls = _config_class()
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        kebab, snake = "--" + field.name.replace("_", "-"), "--" + field.name
        names = [kebab] if kebab == snake else [kebab, snake]
        ftype = _field_type(field)
        default = field.default
        help_text = f"(default: {default})"
        if typing.get_origin(ftype) is dict or ftype is dict:
            group.add_argument(
                *names,
                dest=field.name,
                type=_json_object,
                default=argparse.SUPPRESS,
                metavar="JSON",
                help=f"a JSON object {help_text}",
            )
        elif ftype is bool:
            group.add_argument(
                *names,
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        elif field.name in ("max_bank_size", "world_seed"):
            group.add_argument(
                *names, dest=field.name, type=_optional_int, default=argparse.SUPPRESS, metavar="N", help=help_text
            )
        else:
            group.add_argument(
                *names,
                dest=field.name,
                type=ftype,
                default=argparse.SUPPRESS,
                metavar=field.name.upper(),
                help=help_text,
            )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="actionbank", description="Test action-bank design for personalised targeting.")
    parser.add_argument("--version", action="version", version=f"actionbank-env {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sim = sub.add_parser("simulate", help="run the full simulation (the loop of ARCHITECTURE.md §6)")
    sim.add_argument("--config", type=Path, help="JSON file of settings (flags override it)")
    sim.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run from its last complete iteration"
    )
    sim.add_argument("--out", type=Path, help="write into exactly this folder instead of results_dir/name_timestamp")
    sim.add_argument("--overwrite", action="store_true", help="allow --out to be a non-empty folder")
    sim.add_argument(
        "--openai-api-key",
        "--openai_api_key",
        dest="openai_api_key",
        help="use OpenAI for generation and embeddings (never written anywhere); OPENAI_API_KEY works too",
    )
    sim.add_argument("--quiet", action="store_true", help="no progress bars or per-iteration lines")
    _add_config_flags(sim)

    gen = sub.add_parser(
        "generate-data", help="write fixed users per iteration and the initial bank (reproducible data)"
    )
    gen.add_argument("--config", type=Path, help="JSON file of settings (flags override it)")
    gen.add_argument(
        "--out",
        "--data_dir",
        "--data-dir",
        dest="out",
        type=Path,
        help="the data folder (default data/simulation_data/<id>)",
    )
    gen.add_argument("--overwrite", action="store_true", help="allow --out to be a non-empty folder")
    gen.add_argument("--openai-api-key", "--openai_api_key", dest="openai_api_key", help=argparse.SUPPRESS)
    _add_config_flags(gen, skip=("data_dir",))

    rfd = sub.add_parser(
        "run-from-data", help="run the simulation on a generate-data folder (its users and initial bank)"
    )
    rfd.add_argument("--config", type=Path, help="JSON file of settings (flags override it)")
    rfd.add_argument("--out", type=Path, help="write into exactly this folder")
    rfd.add_argument("--overwrite", action="store_true", help="allow --out to be a non-empty folder")
    rfd.add_argument("--resume", type=Path, metavar="RUN_DIR", help=argparse.SUPPRESS)
    rfd.add_argument("--openai-api-key", "--openai_api_key", dest="openai_api_key", help="see simulate")
    rfd.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_config_flags(rfd)

    cmp = sub.add_parser(
        "compare-models", help="train every reward model (or one) on logged data and score it against the ground truth"
    )
    cmp.add_argument(
        "run_dir", nargs="?", type=Path, help="a run folder whose logs to use (default: a fresh random-targeting log)"
    )
    cmp.add_argument(
        "--model-type",
        "--model_type",
        dest="model_type",
        default="compare_all",
        help="a reward model name or compare_all",
    )
    cmp.add_argument(
        "--log-users",
        "--log_users",
        dest="log_users",
        type=int,
        default=None,
        help="rows of the fresh log (default: --users)",
    )
    cmp.add_argument("--json", type=Path, help="also write the scores as JSON")
    _add_config_flags(cmp)

    trn = sub.add_parser(
        "train", help="train a Stable-Baselines3 policy (ppo, a2c, dqn) on an environment, with TensorBoard"
    )
    trn.add_argument("--algo", required=True, help="ppo, a2c or dqn")
    trn.add_argument("--env", dest="env_id", default="ActionBank/Targeting-v0", help="environment id")
    trn.add_argument("--total-timesteps", "--total_timesteps", dest="total_timesteps", type=int, required=True)
    trn.add_argument("--seed", type=int, default=0)
    trn.add_argument("--results-dir", "--results_dir", dest="results_dir", default="results")
    trn.add_argument("--out", type=Path, help="write into exactly this (new or empty) folder")
    trn.add_argument("--n-envs", "--n_envs", dest="n_envs", type=int, default=1)
    trn.add_argument(
        "--env-kwargs",
        "--env_kwargs",
        dest="env_kwargs",
        type=_json_object,
        default=None,
        metavar="JSON",
        help='gymnasium.make keyword arguments, e.g. \'{"embedder": "hashing"}\'',
    )
    trn.add_argument(
        "--algo-kwargs", "--algo_kwargs", dest="algo_kwargs", type=_json_object, default=None, metavar="JSON"
    )
    trn.add_argument("--no-tensorboard", dest="tensorboard", action="store_false")

    rep = sub.add_parser("report", help="write report.html and plots for a run folder")
    rep.add_argument("run_dir", type=Path)
    rep.add_argument(
        "--compare",
        type=Path,
        action="append",
        default=[],
        help="another run folder to draw on the same axes (repeatable)",
    )

    from actionbank_env.sweep import add_sweep_arguments

    add_sweep_arguments(
        sub.add_parser("sweep", help="a grid of settings x seeds on a process pool or Ray; mean ± 95%% CI table")
    )

    sub.add_parser("list-envs", help="list the registered Gymnasium environment ids")
    chk = sub.add_parser("check-env", help="run gymnasium's env checker on every environment id")
    chk.add_argument("--env", action="append", help="only this id (repeatable)")
    return parser


def _simulation_config(args: argparse.Namespace) -> Any:
    cls = _config_class()
    data: dict[str, Any] = {}
    if getattr(args, "config", None) is not None:
        path: Path = args.config
        if not path.is_file():
            raise _UsageError(f"--config {path}: no such file.")
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise _UsageError(f"--config {path} is not valid JSON: {exc}.") from None
        if not isinstance(loaded, dict):
            raise _UsageError(f"--config {path} must hold a JSON object of settings, got {type(loaded).__name__}.")
        data.update(loaded)
    for name in cls.field_names():
        if name in vars(args):
            data[name] = getattr(args, name)
    explicit_embedder = "embedder" in vars(args) or "embedder" in data
    if (getattr(args, "openai_api_key", None) or os.environ.get("OPENAI_API_KEY")) and not explicit_embedder:
        data["embedder"] = "openai"
    return cls.from_dict(data, source=str(args.config) if getattr(args, "config", None) else "flags")


def _cmd_simulate(args: argparse.Namespace) -> int:
    from actionbank_env.experiment import run_simulation

    if args.openai_api_key:
        os.environ["OPENAI_API_KEY"] = args.openai_api_key  # in-process only; never written
    if getattr(args, "resume", None) is not None:
        result = run_simulation(None, resume=args.resume, progress=not args.quiet)
    else:
        config = _simulation_config(args)
        result = run_simulation(config, out=args.out, overwrite=args.overwrite, progress=not args.quiet)
    print(result.summary_table())
    print()
    print(result.headline())
    return 0


def _cmd_generate_data(args: argparse.Namespace) -> int:
    from actionbank_env.experiment import generate_data

    if args.openai_api_key:
        os.environ["OPENAI_API_KEY"] = args.openai_api_key  # in-process only; never written

    config = _simulation_config(args)
    path = generate_data(config, out=args.out, overwrite=args.overwrite)
    print(f"data: {path}")
    return 0


def _cmd_run_from_data(args: argparse.Namespace) -> int:
    if "data_dir" not in vars(args) and args.config is None:
        raise _UsageError("actionbank run-from-data: --data_dir DIR is required (a generate-data folder).")
    return _cmd_simulate(args)


def _cmd_compare_models(args: argparse.Namespace) -> int:
    from actionbank_env.config import REWARD_MODEL_NAMES
    from actionbank_env.model_comparison import compare_models, format_table, write_comparison

    if args.model_type == "compare_all":
        models = REWARD_MODEL_NAMES
    else:
        from actionbank_env._validation import check_choice

        models = (check_choice("--model_type", args.model_type, (*REWARD_MODEL_NAMES, "compare_all")),)
    config = _simulation_config(args)
    if args.run_dir is not None and not (args.run_dir / "simulation_config.json").is_file():
        raise _UsageError(f"{args.run_dir} is not a run folder (no simulation_config.json).")
    scores = compare_models(
        args.run_dir, models=models, config=config, users=args.log_users or config.users, seed=config.seed
    )
    print(format_table(scores))
    if args.json is not None:
        print(f"wrote {write_comparison(args.json, scores)}")
    return 0


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
    )
    print(
        f"mean reward {result.mean_reward:.4f} (random {result.random_reward:.4f}, "
        f"best single action {result.best_single_action_reward:.4f})"
    )
    print(f"model: {result.model_path}")
    print(f"results: {result.path}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from actionbank_env.sweep import sweep_main

    return sweep_main(args)


def _cmd_report(args: argparse.Namespace) -> int:
    from actionbank_env.report import write_report

    for folder in [args.run_dir, *args.compare]:
        if not (folder / "simulation_config.json").is_file():
            raise _UsageError(f"{folder} is not a run folder (no simulation_config.json).")
    print(f"report: {write_report(args.run_dir, compare=args.compare)}")
    return 0


def _cmd_list_envs(_: argparse.Namespace) -> int:
    import gymnasium

    import actionbank_env  # noqa: F401  (registers the ids)

    ids = sorted(k for k in gymnasium.registry if k.startswith("ActionBank/"))
    for env_id in ids:
        spec = gymnasium.registry[env_id]
        vector = " (native vector env)" if spec.vector_entry_point else ""
        print(f"{env_id}{vector}")
    return 0


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


_COMMANDS = {
    "simulate": _cmd_simulate,
    "generate-data": _cmd_generate_data,
    "run-from-data": _cmd_run_from_data,
    "compare-models": _cmd_compare_models,
    "train": _cmd_train,
    "sweep": _cmd_sweep,
    "report": _cmd_report,
    "list-envs": _cmd_list_envs,
    "check-env": _cmd_check_env,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``actionbank`` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return _COMMANDS[args.command](args)
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except ImportError as exc:
        if "extra" not in str(exc):  # a missing optional extra is a user's set-up problem; anything else is a bug
            raise
        print(f"actionbank: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(
            f"actionbank: error: cannot write{where}: {exc.strerror or exc}; files already written are intact "
            "(an interrupted simulate run resumes with --resume RUN_DIR).",
            file=sys.stderr,
        )
        return 1
    except (ActionBankError, TypeError, ValueError) as exc:
        if isinstance(exc, ActionBankError) or _is_user_error(exc):
            print(f"actionbank: error: {exc}", file=sys.stderr)
            return 2
        raise


def _is_user_error(exc: BaseException) -> bool:
    """Validation errors raised by our check_* helpers (their messages name a field and a rule)."""
    return " must " in str(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
