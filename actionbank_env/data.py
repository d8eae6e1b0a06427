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
from actionbank_env.errors import ConfigError
from actionbank_env.results import (
    DATA_CONFIG_FILE,
    INITIAL_BANK_FILE,
    USERS_FILE,
    RunFolder,
    iteration_file,
)

__all__ = ["DATA_FORMAT", "data_settings", "generate_data", "load_data_settings", "with_data"]

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
    folder = RunFolder.create(".", "data", out=out, overwrite=overwrite)
    world = World.build(config.world, api_key=api_key)
    users_rng = np.random.default_rng(np.random.SeedSequence(config.run.seed).spawn(4)[3])
    folder.write_json(DATA_CONFIG_FILE, {"format": DATA_FORMAT, "settings": settings, "id": digest})
    folder.write_json(INITIAL_BANK_FILE, world.initial_bank.to_dict())
    first_id = 0
    for t in range(1, config.run.iterations + 1):
        users = world.sample_users(config.campaign.users_per_iteration, rng=users_rng, first_id=first_id)
        first_id += len(users)
        folder.write_csv(iteration_file(t, USERS_FILE), pd.DataFrame(users.to_columns()))
    return folder.path


def load_data_settings(data_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings stored in a ``generate-data`` folder, as ``{key: value}`` (a version-1 folder is migrated).

    Raises:
        ConfigError: If the folder or its ``data_config.json`` is missing or of another format, or a users file of
            its iterations is missing.
    """
    root = Path(data_dir)
    path = root / DATA_CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"--data_dir {root} is not a generate-data folder (no {DATA_CONFIG_FILE}).")
    data = read_json(path)
    fmt = data.get("format") if isinstance(data, dict) else data
    if fmt == _V1_FORMAT:
        settings = nested_to_settings(migrate_v1(data["settings"], source=str(path)), source=str(path))
    elif fmt == DATA_FORMAT:
        settings = dict(data["settings"])
    else:
        raise ConfigError(f"{path} must have format {DATA_FORMAT!r} (or {_V1_FORMAT!r}), got {fmt!r}.")
    iterations = int(settings.get("iterations", 1))
    needed = [INITIAL_BANK_FILE] + [iteration_file(t, USERS_FILE) for t in range(1, iterations + 1)]
    missing = [n for n in needed if not (root / n).is_file()]
    if missing:
        raise ConfigError(f"--data_dir {root} is missing {', '.join(missing[:3])}; regenerate it with generate-data.")
    return settings


def with_data(config: SimulationConfig) -> SimulationConfig:
    """``config`` with the settings of its ``run.data_dir`` folder (the world, seeds, iterations and users win); a run
    still named ``simulation`` is renamed ``simulation_from_data``."""
    if config.run.data_dir is None:
        return config
    changes = load_data_settings(config.run.data_dir)
    if config.run.name == RunConfig().name:
        changes["name"] = f"{config.run.name}_from_data"
    return config.with_settings(changes, source=f"{config.run.data_dir}/{DATA_CONFIG_FILE}")
