"""The reproducible-data workflow: ``generate-data`` writes fixed users and the initial bank; ``run-from-data`` replays
them, so several algorithms see the same users and the same starting bank.

A data folder (names in :mod:`actionbank_env.results`)::

    data_config.json                    {"format": "actionbank-data-v2", "settings": {...}, "id": "<hash>"}
    initialization/action_bank.json     the world's initial bank
    iteration_<t>/users.csv             the users of iteration t, t = 1 .. iterations

The settings a folder fixes are the world (every :class:`~actionbank_env.core.world.WorldConfig` field), the seeds,
the number of iterations and the users per iteration; the algorithm settings stay the caller's. Folders of the
previous format (``actionbank-data-v1``: a flat subset of the world settings) are read through the version-1
configuration migration.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from actionbank_env.config import RunConfig, SimulationConfig, migrate_v1, nested_to_settings
from actionbank_env.core.io import read_json
from actionbank_env.core.world import World
from actionbank_env.errors import ActionBankError, ConfigError, DataError
from actionbank_env.results import (
    DATA_CONFIG_FILE,
    INITIAL_BANK_FILE,
    USERS_FILE,
    RunFolder,
    iteration_file,
)

__all__ = [
    "DATA_FORMAT",
    "data_settings",
    "generate_data",
    "load_data_settings",
    "with_data",
    "read_users_csv",
    "check_data_folder",
]

#: Format tag of ``generate-data`` folders.
DATA_FORMAT = "actionbank-data-v2"
_V1_FORMAT = "actionbank-data-v1"
#: Run settings a data folder fixes (besides the world's and the users per iteration).
_RUN_KEYS = ("iterations", "seed", "world_seed")


def data_settings(config: SimulationConfig) -> dict[str, Any]:
    """The settings a data folder of ``config`` fixes, as ``{key: value}`` (see the module docstring)."""
    everything = config.settings()
    world = {k: v for k, v in config.world.to_dict().items() if k != "world_seed"}
    return {
        **{k: everything[k] for k in _RUN_KEYS},
        "users_per_iteration": config.campaign.users_per_iteration,
        **world,
    }


def generate_data(
    config: SimulationConfig,
    *,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    api_key: str | None = None,
) -> Path:
    """Write a reproducible data folder: fixed users per iteration and the initial bank.

    Args:
        config: World, seed, iteration and user settings (the rest is not used).
        out: The folder (default ``data/simulation_data/data_seed<seed>_<hash>`` of the settings).
        overwrite: Allow a non-empty ``out``.
        api_key: The OpenAI key of an ``openai`` embedder.

    Returns:
        The folder.
    """
    import pandas as pd

    settings = data_settings(config)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    if out is None:
        out = Path("data/simulation_data") / f"data_seed{config.run.seed}_{digest}"
    RunFolder.check_out(out, overwrite=overwrite)  # refuse a bad --out before the (slow) world is built
    world = World.build(config.world, api_key=api_key)  # a refused world setting leaves no folder behind
    folder = RunFolder.create(".", "data", out=out, overwrite=overwrite)
    try:
        users_rng = np.random.default_rng(np.random.SeedSequence(config.run.seed).spawn(4)[3])
        folder.write_json(INITIAL_BANK_FILE, world.initial_bank.to_dict())
        first_id = 0
        for t in range(1, config.run.iterations + 1):
            users = world.sample_users(config.campaign.users_per_iteration, rng=users_rng, first_id=first_id)
            first_id += len(users)
            folder.write_csv(iteration_file(t, USERS_FILE), pd.DataFrame(users.to_columns()))
        # written last: a folder without it is incomplete, and load_data_settings refuses it
        folder.write_json(DATA_CONFIG_FILE, {"format": DATA_FORMAT, "settings": settings, "id": digest})
    except BaseException:
        folder.discard()
        raise
    return folder.commit()


def load_data_settings(data_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings stored in a ``generate-data`` folder, as ``{key: value}`` (a version-1 folder is migrated), after
    checking the folder's files against them (:func:`check_data_folder`).

    Raises:
        ConfigError: If the folder or its ``data_config.json`` is missing or of another format, or a users file of
            its iterations is missing.
        DataError: If a file is not what ``data_config.json`` says (see :func:`check_data_folder`).
    """
    root = Path(data_dir)
    path = root / DATA_CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"--data_dir {root} is not a generate-data folder (no {DATA_CONFIG_FILE}).")
    data = read_json(path)
    fmt = data.get("format") if isinstance(data, dict) else data
    try:
        if fmt == _V1_FORMAT:
            settings = nested_to_settings(migrate_v1(data["settings"], source=str(path)), source=str(path))
        elif fmt == DATA_FORMAT:
            settings = dict(data["settings"])
        else:
            raise ConfigError(f"{path} must have format {DATA_FORMAT!r} (or {_V1_FORMAT!r}), got {fmt!r}.")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ActionBankError):
            raise
        raise DataError(f"{path} must hold an object 'settings' of key: value pairs, got {exc!r}.") from None
    iterations = settings.get("iterations", 1)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or not 1 <= iterations <= 100_000:
        raise DataError(f"{path} settings.iterations must be an int in [1, 100000], got {iterations!r}.")
    needed = [INITIAL_BANK_FILE] + [iteration_file(t, USERS_FILE) for t in range(1, iterations + 1)]
    missing = [n for n in needed if not (root / n).is_file()]
    if missing:
        raise ConfigError(f"--data_dir {root} is missing {', '.join(missing[:3])}; regenerate it with generate-data.")
    check_data_folder(root, iterations=iterations, users_per_iteration=settings.get("users_per_iteration"))
    return settings


def read_users_csv(path: str | os.PathLike[str], *, expected_rows: int | None = None) -> Any:
    """Read one ``iteration_<t>/users.csv`` of a data folder as a pandas frame, checking every rule on the way.

    Rules: valid UTF-8 CSV; the columns ``user_id``, ``archetype`` and every feature of
    :data:`~actionbank_env.core.users.FEATURE_NAMES`; at least one row, and exactly ``expected_rows`` when given;
    ``user_id`` a non-negative integer in every row, distinct; ``archetype`` never empty; features finite, in
    [0, 1].

    Raises:
        DataError: Naming the file, the rule and the offending value (and its row).
    """
    import pandas as pd

    from actionbank_env.core.users import FEATURE_NAMES

    p = Path(path)
    try:
        frame = pd.read_csv(p, dtype={"user_id": "string", "archetype": "string"}, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise DataError(f"{p} is not a readable users CSV: {type(exc).__name__}: {str(exc)[:200]}") from None
    missing = [c for c in ("user_id", "archetype", *FEATURE_NAMES) if c not in frame.columns]
    if missing:
        raise DataError(f"{p} must have the columns user_id, archetype and {list(FEATURE_NAMES)}; missing {missing}.")
    if len(frame) == 0:
        raise DataError(f"{p} must hold at least one user row, got only a header.")
    if expected_rows is not None and len(frame) != expected_rows:
        raise DataError(
            f"{p} must hold users_per_iteration={expected_rows} rows (its data_config.json says so), got {len(frame)}; "
            "the file was cut short or edited."
        )
    ids = frame["user_id"].str.strip()
    valid = ids.str.fullmatch(r"\d{1,18}").fillna(False).to_numpy(dtype=bool)
    if not valid.all():
        row = int(np.flatnonzero(~valid)[0])
        raise DataError(f"{p} row {row + 2}: user_id must be a non-negative integer, got {frame['user_id'][row]!r}.")
    as_int = ids.astype("int64")
    duplicated = as_int.duplicated().to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        raise DataError(f"{p} row {row + 2}: user_id must be distinct, got {int(as_int[row])} a second time.")
    frame["user_id"] = as_int
    empty = (frame["archetype"].str.strip() == "").to_numpy(dtype=bool)
    if empty.any():
        raise DataError(f"{p} row {int(np.flatnonzero(empty)[0]) + 2}: archetype must not be empty.")
    for name in FEATURE_NAMES:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~(np.isfinite(values) & (values >= 0.0) & (values <= 1.0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{p} row {row + 2}: {name} must be a number in [0, 1], got {str(frame[name][row])!r}.")
        frame[name] = values
    return frame


def check_data_folder(root: Path, *, iterations: int, users_per_iteration: Any) -> None:
    """Check a data folder's files against its ``data_config.json``: every users file by :func:`read_users_csv`
    (with ``users_per_iteration`` rows), user ids distinct across iterations, and the initial bank's texts clean
    (no control, format or surrogate characters: they would be copied into every result).

    Raises:
        DataError: Naming the file, the rule and the value.
    """
    from actionbank_env.core.actions import clean_text

    expected = users_per_iteration if isinstance(users_per_iteration, int) and users_per_iteration > 0 else None
    prior_ids, prior_iterations = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    for t in range(1, iterations + 1):
        path = root / iteration_file(t, USERS_FILE)
        ids = read_users_csv(path, expected_rows=expected)["user_id"].to_numpy(dtype=np.int64)
        clash = np.flatnonzero(np.isin(prior_ids, ids))
        if clash.size:
            raise DataError(
                f"{path}: user_id {int(prior_ids[clash[0]])} is also in iteration_{int(prior_iterations[clash[0]])}; "
                "ids must be distinct across iterations."
            )
        prior_ids = np.concatenate([prior_ids, ids])
        prior_iterations = np.concatenate([prior_iterations, np.full(ids.size, t, dtype=np.int64)])
    bank_path = root / INITIAL_BANK_FILE
    bank = read_json(bank_path)
    actions = bank.get("actions") if isinstance(bank, dict) else None
    if not isinstance(actions, list) or not actions:
        raise DataError(f"{bank_path} must hold a non-empty list 'actions', got {type(actions).__name__}.")
    for i, action in enumerate(actions):
        text = action.get("text") if isinstance(action, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{bank_path} actions[{i}].text must be a non-empty string, got {text!r}.")
        if clean_text(text) != text:
            odd = next((ch for ch in text if ch not in clean_text(text)), text[:1])
            raise DataError(
                f"{bank_path} actions[{i}].text must be clean text (no control, format or surrogate characters, "
                f"single spaces), got {text[:80]!r} (U+{ord(odd):04X})."
            )


def with_data(config: SimulationConfig) -> SimulationConfig:
    """``config`` with the settings of its ``run.data_dir`` folder (the world, seeds, iterations and users win); a run
    still named ``simulation`` is renamed ``simulation_from_data``."""
    if config.run.data_dir is None:
        return config
    changes = load_data_settings(config.run.data_dir)
    if config.run.name == RunConfig().name:
        changes["name"] = f"{config.run.name}_from_data"
    return config.with_settings(changes, source=f"{config.run.data_dir}/{DATA_CONFIG_FILE}")
