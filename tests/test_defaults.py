"""One true default per setting: the README's ``simulate`` flag table, the ``--help`` text and the components'
own defaults agree, and each default lives in exactly one class.

The ``alpha`` drift (``actionbank simulate`` ran LinUCB at 1.0 while the README and ``LinUCBConfig`` said 0.2)
happened because a setting had two defaults. In the configuration tree a default is read from the class that owns
it (``Setting.owner``); these tests tie that value to the README row, to the ``--help`` text of the flag and to
the effective configuration of every component a default run builds, and fail on any disagreement.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actionbank_env.cli import ALIASES, build_parser, format_default
from actionbank_env.config import RunConfig, Setting, SimulationConfig, settings_schema
from actionbank_env.core.campaign import CampaignConfig
from actionbank_env.core.world import World, WorldConfig
from actionbank_env.envs.bank_design import BankDesignConfig
from actionbank_env.registry import make_agent, make_designer, make_reward_model

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
SCHEMA = {s.key: s for s in settings_schema()}
#: Flags of ``simulate`` that are not settings of the tree.
COMMAND_FLAGS = {"--openai-api-key"}


def readme_rows(readme: str = README) -> list[tuple[str, str]]:
    """``[(flag, default cell)]`` of the README's ``simulate`` flag table, in order."""
    section = readme.split("`simulate` flags", 1)[1]
    rows = re.findall(r"^\| `(--[a-z0-9.-]+)` \|[^|]*\| ([^|]*) \|", section, flags=re.M)
    assert rows, "the README has a simulate flag table"
    return [(flag, cell.strip()) for flag, cell in rows]


def readme_disagreements(readme: str, schema: dict[str, Setting]) -> list[str]:
    """Every way the README's table and the schema disagree (missing, extra or repeated rows, other defaults)."""
    rows = readme_rows(readme)
    flags = [flag for flag, _ in rows]
    by_flag = {s.flag: s for s in schema.values()}
    problems = [f"{f} has {flags.count(f)} rows" for f in sorted(set(flags)) if flags.count(f) > 1]
    problems += [f"{f} has no README row" for f in sorted(set(by_flag) - set(flags))]
    problems += [f"README row {f} is not a flag" for f in sorted(set(flags) - set(by_flag) - COMMAND_FLAGS)]
    for flag, cell in rows:
        if flag in by_flag and cell != format_default(by_flag[flag].default):
            owner = by_flag[flag].owner.__name__
            problems.append(f"{flag}: README says {cell!r}, {owner} says {format_default(by_flag[flag].default)!r}")
    return problems


def test_readme_table_has_one_row_per_flag_with_its_default() -> None:
    assert readme_disagreements(README, SCHEMA) == []


@pytest.mark.parametrize("kind", ["agent", "designer"])
def test_readme_lists_every_registered_component(kind: str) -> None:
    """The ``--agent`` / ``--designer`` rows copy the setting's doc, which names every registered component (the
    designer row once lacked ``diverse``)."""
    doc = SCHEMA[kind].doc
    row = re.search(rf"^\| `--{kind}` \|[^|]*\|[^|]*\| (.*) \|$", README, flags=re.M)
    assert row is not None, f"the README has a --{kind} row"
    assert row.group(1).strip() == doc


def test_the_guard_reports_a_drifted_readme_default() -> None:
    drifted = README.replace("| `--agent.alpha` | `--alpha` | 0.2 |", "| `--agent.alpha` | `--alpha` | 1.0 |")
    assert drifted != README
    assert readme_disagreements(drifted, SCHEMA) == ["--agent.alpha: README says '1.0', LinUCBConfig says '0.2'"]


@pytest.mark.parametrize(
    "key",
    # The settings whose defaults drifted once (issue 14) must be documented.
    [
        "agent.alpha",
        "campaign_batch_size",
        "designer.n_representative_users",
        "designer.representative_method",
        "designer.diversity_weight",
    ],
)
def test_drift_prone_settings_are_in_the_readme(key: str) -> None:
    assert SCHEMA[key].flag in dict(readme_rows())


def _simulate_actions() -> dict[str, argparse.Action]:
    parser = build_parser(["simulate"])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices["simulate"]._actions}


@pytest.mark.parametrize("key", sorted(SCHEMA))
def test_help_shows_the_owners_docstring_and_default(key: str) -> None:
    action = _simulate_actions()[key]
    setting = SCHEMA[key]
    assert action.help is not None
    assert action.help.endswith(f"(default: {format_default(setting.default)})")
    assert setting.doc and action.help.startswith(setting.doc.replace("%", "%%")[:40])


def test_every_legacy_alias_is_a_flag_of_its_setting() -> None:
    actions = _simulate_actions()
    for alias, key in ALIASES.items():
        assert f"--{alias.replace('_', '-')}" in actions[key].option_strings, alias


@pytest.fixture(scope="module")
def default_run() -> dict[str, Any]:
    """The effective configs of what a default ``simulate`` builds (a hashing world: the embedder is irrelevant)."""
    config = SimulationConfig()
    world = World.build(dataclasses.replace(config.world, embedder="hashing"))
    rng = np.random.default_rng(0)
    agent = make_agent(config.agent.name, world, rng=rng, **config.agent.kwargs())
    designer = make_designer(config.designer.name, world, rng=rng, **config.designer.kwargs())
    model = make_reward_model(designer.config.reward_model, rng=rng, **designer.config.reward_model_params)
    return {
        "config": config,
        "world": world.config,
        "agent": agent.config,
        "designer": designer.config,
        "designer.reward_model": model.config,
    }


def _effective(key: str, run: dict[str, Any]) -> Any:
    """What a default run uses for setting ``key``."""
    config: SimulationConfig = run["config"]
    head, _, rest = key.rpartition(".")
    if key in ("agent", "designer"):
        return getattr(config, key).name
    if key == "designer.reward_model":
        return run["designer"].reward_model
    if key.endswith(".params"):
        return None  # not a field of any component: nothing given
    if key == "retention.horizon":
        return None if config.retention is None else config.retention.horizon
    if key.startswith("retention.dynamics."):  # unused while lifetimes are off: what turning them on uses
        lifetimes = config.with_settings({"retention.horizon": 26}).retention
        assert lifetimes is not None
        return getattr(lifetimes.dynamics, key.rpartition(".")[2])
    if head:
        return getattr(run[head], rest)
    section = {f.name for f in dataclasses.fields(RunConfig)}
    if key in section:
        return getattr(config.run, key)
    if key in {f.name for f in dataclasses.fields(CampaignConfig)}:
        return getattr(config.campaign, key)
    value = getattr(run["world"], key)
    return WorldConfig().embedder if key == "embedder" else value  # the fixture's world embeds by hashing


@pytest.mark.parametrize("key", sorted(SCHEMA))
def test_a_default_run_uses_the_owners_default(key: str, default_run: dict[str, Any]) -> None:
    setting = SCHEMA[key]
    expected = setting.default
    if key == "n_reference_texts":  # None resolves to max(512, initial_actions) in WorldConfig itself
        expected = WorldConfig().n_reference_texts
    assert _effective(key, default_run) == expected, f"{key}: {setting.owner.__name__} says {expected!r}"


def test_each_default_lives_in_one_class() -> None:
    """The tree composes the sections and names components; it restates no field of theirs."""
    tree = {f.name for f in dataclasses.fields(SimulationConfig)}
    assert tree == {"run", "world", "campaign", "agent", "designer", "retention"}
    owners = [(s.owner, s.key.rpartition(".")[2]) for s in SCHEMA.values() if not s.key.endswith(".params")]
    assert len(owners) == len(set(owners))
    # The env composes the campaign's config instead of restating its fields.
    env_fields = {f.name for f in dataclasses.fields(BankDesignConfig)}
    assert env_fields.isdisjoint(f.name for f in dataclasses.fields(CampaignConfig))
    assert BankDesignConfig().campaign == CampaignConfig()
