"""One true default per setting: the README's flag table, ``SimulationConfig`` and the component that consumes
each setting agree.

The ``alpha`` drift (``actionbank simulate`` ran LinUCB at 1.0 while the README and ``LinUCBConfig`` said
0.2) happened because a setting had two defaults. These tests read the README's ``simulate`` flag table, the
``SimulationConfig`` defaults and the effective configuration of the components a default run builds (agent,
designer, reward model, env, world), and fail on any disagreement.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actionbank_env.config import SimulationConfig
from actionbank_env.core.copywriting import OfflineCopywriter
from actionbank_env.core.world import World, WorldConfig
from actionbank_env.envs.bank_design import BankDesignConfig
from actionbank_env.experiment import _designer_params
from actionbank_env.protocols import DesignerContext
from actionbank_env.registry import make_agent, make_designer, make_reward_model

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
DEFAULTS = SimulationConfig()


def readme_flag_defaults() -> dict[str, str]:
    """``{field name: default cell}`` of the README's ``simulate`` flag table (one flag per row)."""
    section = README.split("`simulate` flags", 1)[1]
    rows = re.findall(r"^\| `--([a-z0-9-]+)`[^|]*\| ([^|]*) \|", section, flags=re.M)
    assert rows, "the README has a simulate flag table"
    return {flag.replace("-", "_"): cell.strip() for flag, cell in rows}


def _cell(value: Any) -> str:
    """How the README writes a default."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def test_every_readme_row_names_a_setting() -> None:
    unknown = set(readme_flag_defaults()) - set(SimulationConfig.field_names()) - {"openai_api_key"}
    assert not unknown, f"README rows without a SimulationConfig field: {sorted(unknown)}"


@pytest.mark.parametrize(
    "name",
    # The settings whose defaults drifted once (issue 14) must be documented.
    ["alpha", "campaign_batch_size", "n_representative_users", "representative_method", "diversity_weight"],
)
def test_drift_prone_settings_are_in_the_readme(name: str) -> None:
    assert name in readme_flag_defaults()


@pytest.mark.parametrize("name", sorted(set(readme_flag_defaults()) - {"openai_api_key", "world_seed"}))
def test_readme_default_is_the_config_default(name: str) -> None:
    assert readme_flag_defaults()[name] == _cell(getattr(DEFAULTS, name))


def test_readme_world_seed_default_says_it_follows_seed() -> None:
    assert DEFAULTS.world_seed is None
    assert "seed" in readme_flag_defaults()["world_seed"]


@pytest.fixture(scope="module")
def default_components() -> dict[str, Any]:
    """The effective configs of what a default ``simulate`` builds (hashing world: the embedder is irrelevant)."""
    world = World.build(DEFAULTS.replace(embedder="hashing").world_config())
    rng = np.random.default_rng(0)
    agent = make_agent(DEFAULTS.company_strategy, world, rng=rng, **DEFAULTS.agent_params())
    context = DesignerContext(
        embedder=world.embedder,
        copywriter=OfflineCopywriter(),
        d_user=world.d_user,
        feature_names=world.feature_names,
    )
    designer = make_designer(DEFAULTS.optimizer, context, rng=rng, **_designer_params(DEFAULTS))
    model = make_reward_model(DEFAULTS.reward_model_type, rng=rng, **DEFAULTS.reward_model_params())
    return {"agent": agent.config, "designer": designer.config, "reward_model": model.config, "world": world.config}


#: SimulationConfig field -> (component, its field) for settings a default run passes to a component.
CONSUMED = {
    "alpha": ("agent", "alpha"),
    "use_pca": ("agent", "use_pca"),
    "pca_components": ("agent", "pca_components"),
    "reward_model_type": ("designer", "reward_model"),
    "action_pool_size": ("designer", "action_pool_size"),
    "action_bank_size": ("designer", "action_bank_size"),
    "max_bank_size": ("designer", "max_bank_size"),
    "diversity_weight": ("designer", "diversity_weight"),
    "use_uncertainty": ("designer", "use_uncertainty"),
    "uncertainty_weight": ("designer", "uncertainty_weight"),
    "n_representative_users": ("designer", "n_representative_users"),
    "representative_method": ("designer", "representative_method"),
    "lgb_n_estimators": ("reward_model", "n_estimators"),
    "lgb_learning_rate": ("reward_model", "learning_rate"),
    "lgb_num_leaves": ("reward_model", "num_leaves"),
    "initial_actions": ("world", "initial_actions"),
    "embedder": ("world", "embedder"),
    "ground_truth_type": ("world", "ground_truth"),
    "base_ctr": ("world", "base_ctr"),
    "personalization": ("world", "personalization"),
    "gmm_components": ("world", "gmm_components"),
    "density_scale_factor": ("world", "density_scale_factor"),
    "min_utility": ("world", "min_utility"),
    "max_utility": ("world", "max_utility"),
}


def _class_default(config: Any, name: str) -> Any:
    field = {f.name: f for f in dataclasses.fields(config)}[name]
    return field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]


@pytest.mark.parametrize("name", sorted(CONSUMED))
def test_config_default_is_the_consuming_components_own_default(name: str, default_components: dict[str, Any]) -> None:
    component, attr = CONSUMED[name]
    config = default_components[component]
    own = _class_default(type(config), attr)
    if name == "embedder":
        own = WorldConfig().embedder  # the fixture builds a hashing world on purpose
    else:
        assert getattr(config, attr) == getattr(DEFAULTS, name), f"{name}: what a default run uses"
    assert own == getattr(DEFAULTS, name), (
        f"{name}: SimulationConfig says {getattr(DEFAULTS, name)!r}, {type(config).__name__}.{attr} says {own!r}"
    )


def test_env_settings_match_the_env_defaults() -> None:
    env = BankDesignConfig()
    assert DEFAULTS.campaign_batch_size == env.campaign_batch_size
    assert DEFAULTS.users == env.users_per_iteration
    assert DEFAULTS.company_strategy == env.company_strategy


def test_dqn_and_bnn_settings_match_their_models() -> None:
    from agents.bootstrapped_dqn import BootstrappedDQNConfig
    from optimizers.reward_models.neural import BayesianNeuralConfig

    assert DEFAULTS.n_heads == BootstrappedDQNConfig().n_heads
    assert DEFAULTS.bnn_mc_samples == BayesianNeuralConfig().mc_samples
