"""Bank design on subscribers' lifetimes from the configuration tree, the command line and ``run_simulation``.

``retention.horizon`` (none by default) turns every campaign of a run into subscribers' lifetimes
(``BankDesignConfig.retention``); ``retention.dynamics.*`` are :class:`RetentionDynamics` fields. Off, nothing of a
run changes (no key in the settings, no section in ``simulation_config.json``).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from actionbank_env.cli import _simulation_config, build_parser, main
from actionbank_env.config import SimulationConfig, settings_schema
from actionbank_env.core.retention import RetentionCampaignConfig, RetentionDynamics
from actionbank_env.errors import ConfigError, ConfigTypeError
from tests.worlds import TINY_SETTINGS


def _flags(settings: dict[str, Any]) -> list[str]:
    """``settings`` as ``simulate`` flags (booleans as ``--x`` / ``--no-x``)."""
    out: list[str] = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + flag[2:])
        else:
            out += [flag, str(value)]
    return out


def _from_argv(argv: list[str]) -> SimulationConfig:
    args = build_parser(argv).parse_args(argv)
    config = _simulation_config(args)
    assert isinstance(config, SimulationConfig)
    return config


def test_lifetimes_are_off_by_default_and_leave_no_trace_in_the_settings() -> None:
    config = SimulationConfig()
    assert config.retention is None
    assert "retention" not in config.to_dict()
    assert not any(k.startswith("retention") for k in config.settings())
    keys = [s.key for s in settings_schema() if s.key.startswith("retention.")]
    assert keys[0] == "retention.horizon"
    assert {k.removeprefix("retention.dynamics.") for k in keys[1:]} == set(RetentionDynamics.__dataclass_fields__)


def test_retention_settings_round_trip_through_the_file_and_the_settings(tmp_path: Path) -> None:
    config = SimulationConfig().with_settings(
        {"retention.horizon": 12, "retention.dynamics.fatigue_click": 1.5, "retention.dynamics.relevance_ctr": 0.02}
    )
    assert config.retention == RetentionCampaignConfig(
        horizon=12, dynamics=RetentionDynamics(fatigue_click=1.5, relevance_ctr=0.02)
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert data["retention"]["horizon"] == 12 and data["retention"]["dynamics"]["fatigue_click"] == 1.5
    assert SimulationConfig.from_dict(data) == config
    assert SimulationConfig.from_settings(config.settings()) == config
    # A config file with the section, then flags on top of it (defaults < file < flags).
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    assert _from_argv(["simulate", "--config", str(path)]) == config
    flagged = _from_argv(["simulate", "--config", str(path), "--retention.dynamics.novelty-penalty", "0.25"])
    assert flagged.retention is not None and flagged.retention.dynamics.novelty_penalty == 0.25
    assert flagged.retention.dynamics.fatigue_click == 1.5 and flagged.retention.horizon == 12
    # --retention.horizon none turns lifetimes off again, dropping the file's dynamics.
    assert _from_argv(["simulate", "--config", str(path), "--retention.horizon", "none"]).retention is None


def test_the_flags_turn_lifetimes_on_in_kebab_and_snake_case() -> None:
    kebab = _from_argv(["simulate", "--retention.horizon", "26", "--retention.dynamics.fatigue-click", "0.5"])
    snake = _from_argv(["simulate", "--retention.horizon=26", "--retention.dynamics.fatigue_click=0.5"])
    assert kebab == snake
    assert kebab.retention == RetentionCampaignConfig(horizon=26, dynamics=RetentionDynamics(fatigue_click=0.5))


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        (
            {"retention.dynamics.fatigue_click": 2.0},
            ConfigError,
            "settings: retention.dynamics.fatigue_click=2.0 needs retention.horizon, which is none (lifetimes are off)",
        ),
        ({"retention.horizon": 0}, ConfigError, "RetentionCampaignConfig.horizon must be an int >= 1"),
        (
            {"retention.horizon": 26, "retention.dynamics.unsubscribe_base": 1.5},
            ConfigError,
            "RetentionDynamics.unsubscribe_base must be a float >= 0.0 and <= 1.0, got 1.5.",
        ),
        ({"retention.horizn": 26}, ConfigTypeError, "Did you mean 'retention.horizon'?"),
    ],
)
def test_bad_retention_settings_name_the_field_the_rule_and_the_value(
    settings: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        SimulationConfig().with_settings(settings)


def test_a_bad_retention_section_in_a_file_is_refused_by_name() -> None:
    with pytest.raises(ConfigTypeError, match=re.escape("f retention.dynamics got unknown settings ['fatigue']")):
        SimulationConfig.from_dict({"version": 2, "retention": {"horizon": 5, "dynamics": {"fatigue": 1}}}, source="f")
    with pytest.raises(ConfigTypeError, match=re.escape("f retention must be an object of settings, got int.")):
        SimulationConfig.from_dict({"version": 2, "retention": 26}, source="f")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--retention.horizon", "0"], "RetentionCampaignConfig.horizon must be an int >= 1 and <= 100000, got 0."),
        (["--retention.horizon", "ten"], "retention.horizon must be an int (or none), got 'ten'."),
        (["--retention.dynamics.fatigue-click", "2"], "needs retention.horizon, which is none (lifetimes are off)"),
        (
            ["--retention.horizon", "4", "--retention.dynamics.sensitivity-feature", "shoe_size"],
            "RetentionDynamics.sensitivity_feature must be one of the world's features",
        ),
    ],
)
def test_bad_retention_flags_exit_2_with_one_clear_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["simulate", *_flags(TINY_SETTINGS), "--quiet", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # refused before a run folder is made


def test_simulate_on_lifetimes_writes_the_lifetime_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    argv = ["simulate", *_flags(TINY_SETTINGS), "--quiet", "--retention.horizon", "6", "--out", str(run)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "campaigns ran as 6-week subscriber lifetimes" in out and "unsubscribe_rate" in out
    config = json.loads((run / "simulation_config.json").read_text())
    assert config["retention"]["horizon"] == 6
    users = TINY_SETTINGS["users_per_iteration"]
    for t in (1, 2):
        lifetime = json.loads((run / f"iteration_{t}" / "ground_truth_evaluation.json").read_text())["lifetime"]
        assert lifetime["horizon"] == 6 and lifetime["subscribers"] == users
        assert 0.0 <= lifetime["unsubscribe_rate"] <= 1.0 and 1.0 <= lifetime["weeks_subscribed"] <= 6.0
        # one log row per email: every subscriber's weeks, the realised clicks per subscriber from the same log
        with (run / f"iteration_{t}" / "observations.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == pytest.approx(lifetime["weeks_subscribed"] * users)
        assert lifetime["clicks_per_subscriber"] == pytest.approx(sum(int(r["click"]) for r in rows) / users)
        assert json.loads((run / f"iteration_{t}" / "ground_truth_evaluation.json").read_text()).get("ope") is None
    with (run / "metrics.csv").open() as f:
        metrics = list(csv.DictReader(f))
    assert len(metrics) == 2
    for column in ("lifetime/expected_clicks_per_subscriber", "lifetime/unsubscribe_rate", "lifetime/weeks_subscribed"):
        assert all(row[column] != "" for row in metrics), column
    summary = json.loads((run / "summary.json").read_text())
    assert summary["retention_horizon"] == 6
    assert summary["deployed_value"] == pytest.approx(float(metrics[-1]["lifetime/expected_clicks_per_subscriber"]))
    assert summary["unsubscribe_rate"] == pytest.approx(float(metrics[-1]["lifetime/unsubscribe_rate"]))
    assert len(summary["per_iteration"]["lifetime_clicks_per_subscriber"]) == 2


def test_sweep_set_and_grid_keys_reach_the_retention_settings() -> None:
    from actionbank_env.sweep import parse_grid, parse_settings, typed_settings

    given = parse_settings(["retention.horizon=26", "retention.dynamics.fatigue-click=0.5"])
    typed = typed_settings("--set", given)
    assert typed == {"retention.horizon": 26, "retention.dynamics.fatigue_click": 0.5}
    config = SimulationConfig().with_settings(typed)
    assert config.retention == RetentionCampaignConfig(horizon=26, dynamics=RetentionDynamics(fatigue_click=0.5))
    grid = parse_grid(["retention.horizon=none,12"])
    points = [typed_settings("--grid", {"retention.horizon": v}) for v in grid["retention.horizon"]]
    assert [SimulationConfig().with_settings(p).retention for p in points] == [
        None,
        RetentionCampaignConfig(horizon=12),
    ]


def test_a_run_on_lifetimes_resumes_to_the_same_files(tmp_path: Path) -> None:
    import shutil

    from actionbank_env.experiment import run_simulation
    from actionbank_env.results import _MARKER

    settings = {**TINY_SETTINGS, "users_per_iteration": 60, "retention.horizon": 4, "seed": 5}
    config = SimulationConfig.from_settings(settings)
    full = run_simulation(config, out=tmp_path / "full").path
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    for name in ("summary.json", "complete_simulation_results.json", f"iteration_2/{_MARKER}"):
        (cut / name).unlink()  # as if killed after iteration 1
    run_simulation(resume=cut)

    def strip(value: Any) -> Any:  # durations differ between runs
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not k.endswith("seconds")}
        return [strip(v) for v in value] if isinstance(value, list) else value

    def files(root: Path) -> dict[str, Any]:
        return {
            p.relative_to(root).as_posix(): strip(json.loads(p.read_text())) if p.suffix == ".json" else p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "meta.json"
        }

    assert files(cut) == files(full)
