"""The configuration tree: the version-1 migration, the legacy flag spellings and the one field parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from actionbank_env.cli import _simulation_config, build_parser
from actionbank_env.config import CONFIG_VERSION, SimulationConfig, migrate_v1, parse_value
from actionbank_env.errors import ConfigError, ConfigTypeError

#: The simulation_config.json that df91a5c (version 1, flat) wrote for `simulate --embedder hashing --seed 3`.
V1_FILE: dict[str, Any] = {
    "action_bank_size": 10,
    "action_pool_size": 2000,
    "alpha": 0.2,
    "base_ctr": 0.05,
    "bnn_mc_samples": 30,
    "campaign_batch_size": 64,
    "company_params": None,
    "company_strategy": "linucb",
    "data_dir": None,
    "density_scale_factor": 1.0,
    "diversity_weight": 0.15,
    "embedder": "hashing",
    "evaluation_users": 2000,
    "gmm_components": 8,
    "ground_truth_type": "mixture_of_experts",
    "initial_actions": 30,
    "iterations": 3,
    "lgb_learning_rate": 0.05,
    "lgb_n_estimators": 200,
    "lgb_num_leaves": 31,
    "max_bank_size": None,
    "max_utility": 0.5,
    "min_utility": 0.005,
    "n_heads": 10,
    "n_representative_users": 1000,
    "name": "simulation",
    "optimizer": "generative",
    "pca_components": 16,
    "personalization": 0.85,
    "report": True,
    "representative_method": "subsample",
    "results_dir": "results",
    "reward_model_type": "lightgbm",
    "seed": 3,
    "tensorboard": True,
    "threads": 1,
    "uncertainty_weight": 0.1,
    "use_pca": True,
    "use_uncertainty": False,
    "users": 1000,
    "world_seed": None,
}


def _from_argv(argv: list[str]) -> SimulationConfig:
    args = build_parser(argv).parse_args(argv)
    config = _simulation_config(args)
    assert isinstance(config, SimulationConfig)
    return config


def test_a_version_1_file_reads_as_the_settings_it_ran_with() -> None:
    old = SimulationConfig.from_dict(V1_FILE, source="v1")
    # The values the file records that are not today's defaults; settings it leaves out keep today's.
    recorded = {
        "embedder": "hashing",
        "seed": 3,
        "max_utility": 0.5,
        "campaign_batch_size": 64,
        "designer.reward_model": "lightgbm",  # version 1's default model, recorded only by omission
        "designer.reward_model.n_estimators": 200,
        "designer.reward_model.num_leaves": 31,
        "designer.diversity_weight": 0.15,
    }
    assert old == SimulationConfig.from_settings(recorded)
    assert old.run.seed == 3 and old.world.embedder == "hashing" and old.campaign.users_per_iteration == 1000
    assert old.agent.name == "linucb" and old.agent.kwargs()["alpha"] == 0.2
    assert old.designer.kwargs()["diversity_weight"] == 0.15
    written = old.to_dict()
    assert written["version"] == CONFIG_VERSION
    assert SimulationConfig.from_dict(json.loads(json.dumps(written))) == old  # version 2 round-trips


def test_version_1_settings_reach_only_the_component_that_used_them() -> None:
    v2 = migrate_v1(
        {
            "company_strategy": "bootstrapped_dqn",
            "alpha": 0.7,  # LinUCB's: dropped for the DQN, as version 1 did
            "n_heads": 4,
            "reward_model_type": "linear",
            "lgb_n_estimators": 5,  # LightGBM's: dropped for the linear model
            "company_params": {"n_heads": 6},  # overrides the flag-derived parameter
        }
    )
    assert v2["agent"] == {"name": "bootstrapped_dqn", "params": {"n_heads": 6}}
    assert v2["designer"]["params"]["reward_model"] == {"name": "linear", "params": {}}
    config = SimulationConfig.from_dict({k: v for k, v in V1_FILE.items() if k not in ("alpha",)} | {"alpha": 0.5})
    assert config.agent.kwargs()["alpha"] == 0.5


def test_a_file_that_states_version_1_is_read_as_version_1_and_a_bad_value_names_the_file() -> None:
    assert SimulationConfig.from_dict({"version": 1, "users": 5}).campaign.users_per_iteration == 5
    with pytest.raises(ConfigError, match="version must be 1 or 2, got True"):
        SimulationConfig.from_dict({"version": True})
    with pytest.raises(ConfigError, match=r"^run/simulation_config.json: CampaignConfig.users_per_iteration .* got -5"):
        SimulationConfig.from_dict({"users": -5}, source="run/simulation_config.json")


def test_an_unknown_version_or_key_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="version must be 1 or 2, got 7"):
        SimulationConfig.from_dict({"version": 7})
    with pytest.raises(ConfigTypeError, match="diversity_wieght"):
        SimulationConfig.from_dict({**V1_FILE, "diversity_wieght": 0.1})


def test_legacy_and_tree_flag_spellings_build_the_same_config() -> None:
    legacy = _from_argv(
        [
            "simulate",
            "--users",
            "500",
            "--company_strategy",
            "linucb",
            "--alpha",
            "0.5",
            "--reward_model_type",
            "lightgbm",
            "--lgb_n_estimators",
            "50",
            "--diversity_weight",
            "0.3",
            "--action_bank_size",
            "4",
        ]
    )
    tree = _from_argv(
        [
            "simulate",
            "--users-per-iteration",
            "500",
            "--agent",
            "linucb",
            "--agent.alpha",
            "0.5",
            "--designer.reward-model",
            "lightgbm",
            "--designer.reward-model.n-estimators",
            "50",
            "--designer.diversity-weight",
            "0.3",
            "--designer.action-bank-size",
            "4",
        ]
    )
    assert legacy == tree
    assert tree.campaign.users_per_iteration == 500 and tree.agent.kwargs()["alpha"] == 0.5
    params = tree.designer.kwargs()
    assert params["diversity_weight"] == 0.3 and params["action_bank_size"] == 4
    assert params["reward_model_params"]["n_estimators"] == 50


@pytest.mark.parametrize(
    ("argv", "v1"),
    [
        (["--reward_model_type", "neural", "--lgb_learning_rate", "0.5"], {"reward_model_type": "neural"}),
        (["--reward_model_type", "lightgbm", "--lgb_learning_rate", "0.5"], {"reward_model_type": "lightgbm"}),
        (
            ["--company_strategy", "bootstrapped_dqn", "--alpha", "0.3", "--use_pca"],
            {"company_strategy": "bootstrapped_dqn", "reward_model_type": "bayesian_bilinear"},  # today's default
        ),
        (
            ["--optimizer", "random", "--use_uncertainty"],
            {"optimizer": "random", "reward_model_type": "bayesian_bilinear"},
        ),
    ],
)
def test_a_legacy_flag_reaches_the_components_a_version_1_file_gives_it_to(
    argv: list[str], v1: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    """``--lgb_learning_rate`` is LightGBM's, as ``lgb_learning_rate`` is in a version-1 file: it must not set the
    neural model's learning rate (a setting of the same name); the flag and the file give the same config."""
    values = {"lgb_learning_rate": 0.5, "alpha": 0.3, "use_pca": True, "use_uncertainty": True}
    from_file = SimulationConfig.from_dict({**v1, **{k: v for k, v in values.items() if f"--{k}" in argv}})
    from_flags = _from_argv(["simulate", *argv])
    assert from_flags == from_file
    noted = capsys.readouterr().err
    if "--lgb_learning_rate" in argv:
        chosen = v1["reward_model_type"]
        rate = from_flags.designer.kwargs()["reward_model_params"].get("learning_rate")
        assert (rate == 0.5) == (chosen == "lightgbm")
        passed_over = "--lgb_learning_rate is ignored: the original system passed it only to reward model lightgbm"
        assert (passed_over in noted) == (chosen != "lightgbm")
    else:
        assert " is ignored: " in noted


def test_settings_unreachable_before_are_flags_now() -> None:
    moe = _from_argv(["simulate", "--best-lift", "2.0", "--n-experts", "3", "--projection-dim", "8"])
    assert moe.world.best_lift == 2.0 and moe.world.n_experts == 3 and moe.world.projection_dim == 8
    config = _from_argv(["simulate", "--designer.reward-model", "ft_transformer"])
    assert config.designer.kwargs()["reward_model"] == "ft_transformer"


def test_a_config_file_and_flags_compose(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps(V1_FILE))
    config = _from_argv(["simulate", "--config", str(path), "--seed", "9"])
    assert config.run.seed == 9 and config.world.embedder == "hashing"


@pytest.mark.parametrize(
    ("text", "hint", "expected"),
    [
        ("yes", bool, True),
        ("off", bool, False),
        ("12", int, 12),
        ("0.25", float, 0.25),
        ("none", int | None, None),
        ("3", int | None, 3),
        ("a,b", tuple[str, ...], ("a", "b")),
        ('{"k": 1}', dict[str, Any], {"k": 1}),
    ],
)
def test_one_parser_reads_every_field_type(text: str, hint: Any, expected: Any) -> None:
    assert parse_value("x", text, hint) == expected


def test_the_parser_names_field_rule_and_value() -> None:
    with pytest.raises(ConfigError, match="agent.alpha must be a float, got 'lots'"):
        parse_value("agent.alpha", "lots", float)
