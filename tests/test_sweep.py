"""Multi-seed sweeps on the local process pool: parsing, the table, failed trials, skipping finished trials."""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from actionbank_env.cli import ALIASES
from actionbank_env.config import SimulationConfig
from actionbank_env.errors import ConfigError
from actionbank_env.sweep import (
    SWEEP_METRICS,
    SweepResult,
    add_sweep_arguments,
    parse_grid,
    parse_seeds,
    parse_settings,
    plan_trials,
    run_sweep,
    summarize,
    sweep_main,
    typed_settings,
)
from tests.worlds import TINY_SETTINGS

TINY = TINY_SETTINGS
GRID = {"designer": ("generative", "keep")}
SEEDS = (0, 1)


# ---------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("0-3", (0, 1, 2, 3)), ("0,3,5", (0, 3, 5)), ("7", (7,)), ("4-5, 0", (4, 5, 0)), ("2-2", (2,))],
)
def test_parse_seeds(text: str, seeds: tuple[int, ...]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "--seeds must be a list of seeds >= 0 like '0-9' or '0,3,5', got ''."),
        ("a-b", "--seeds must be a list of seeds >= 0 like '0-9' or '0,3,5', got 'a-b'."),
        ("-1", "--seeds must be a list of seeds >= 0 like '0-9' or '0,3,5', got '-1'."),
        ("0,,1", "got '0,,1'."),
        ("9-3", "got '9-3' (range 9-3 is reversed)."),
        ("0-2,1", "--seeds must list each seed once, got '0-2,1' (repeated: [1])."),
    ],
)
def test_parse_seeds_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_seeds(text)


def test_grid_values_are_parsed_by_the_types_of_their_settings() -> None:
    grid = parse_grid(["reward_model_type=lightgbm,neural", "users=100,200", "base-ctr=0.05,0.1", "use_pca=true,no"])
    assert grid == {
        "reward_model_type": ("lightgbm", "neural"),
        "users": ("100", "200"),
        "base_ctr": ("0.05", "0.1"),
        "use_pca": ("true", "no"),
    }
    given = {"users": "100", "base_ctr": "0.05", "use_pca": "no", "world_seed": "none"}
    assert typed_settings("--grid", given, aliases=ALIASES) == {
        "users_per_iteration": 100,
        "base_ctr": 0.05,
        "agent.use_pca": False,
        "world_seed": None,
    }
    settings = parse_settings(["max_bank_size=none", "alpha=2"])
    assert typed_settings("--set", settings, aliases=ALIASES) == {"designer.max_bank_size": None, "agent.alpha": 2.0}
    # a parameter is parsed for the component its own grid point chooses
    point = {"agent": "bootstrapped_dqn", "agent.hidden_sizes": "64,32"}
    assert typed_settings("--grid", point) == {"agent": "bootstrapped_dqn", "agent.hidden_sizes": (64, 32)}
    # a legacy spelling the chosen component does not have is dropped, as in earlier releases
    assert typed_settings("--set", {"agent": "random", "alpha": "0.5"}, aliases=ALIASES) == {"agent": "random"}
    # ... and one the chosen component has under the same name goes only where version 1 sent it: LightGBM's
    # lgb_learning_rate is not the neural model's learning rate
    legacy = {"lgb_learning_rate": "0.5"}
    neural = {"designer.reward_model": "neural"}
    assert typed_settings("--set", neural | legacy, aliases=ALIASES) == neural
    lightgbm = {"designer.reward_model": "lightgbm"}
    rate = {"designer.reward_model.learning_rate": 0.5}
    assert typed_settings("--set", lightgbm | legacy, aliases=ALIASES) == lightgbm | rate


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["optimizer"], "--grid must look like key=value, got 'optimizer'."),
        (["seed=1,2"], "--grid key must not be 'seed', got 'seed'; give the seeds with --seeds."),
        (["users="], "--grid users must have non-empty comma-separated values, got ''."),
        (["users=1,1"], "--grid users must list each value once, got '1,1'."),
        (["users=1", "users=2"], "--grid users must be given once"),
    ],
)
def test_parse_grid_errors(specs: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_grid(specs)


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"optimzer": ("keep",)}, "--grid point optimzer=keep: --grid key must be a setting of the configuration"),
        ({"optimzer": ("keep",)}, "got 'optimzer'. Did you mean 'optimizer'?"),
        ({"users": ("10", "ten")}, "--grid point users=ten: --grid users must be an int, got 'ten'."),
        ({"max_bank_size": ("30", "x")}, "--grid max_bank_size must be an int (or none), got 'x'."),
        ({"use_pca": ("maybe",)}, "--grid use_pca must be true or false, got 'maybe'."),
        ({"users": (10, 0)}, "--grid point users=0: CampaignConfig.users_per_iteration must be an int >= 1"),
    ],
)
def test_plan_names_the_bad_grid_point(tmp_path: Path, grid: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        plan_trials(SimulationConfig.from_settings(TINY), grid, (0,), tmp_path, aliases=ALIASES)


def test_plan_is_configuration_major(tmp_path: Path) -> None:
    trials = plan_trials(
        SimulationConfig.from_settings(TINY),
        {"optimizer": ("keep", "random"), "users": ("10", "20")},
        (3, 4),
        tmp_path,
        aliases=ALIASES,
    )
    assert [(t.key, t.seed) for t in trials][:3] == [
        ("optimizer=keep,users=10", 3),
        ("optimizer=keep,users=10", 4),
        ("optimizer=keep,users=20", 3),
    ]
    first = trials[0].config
    assert len(trials) == 8 and first.campaign.users_per_iteration == 10 and first.run.seed == 3
    assert first.designer.name == "keep" and first.run.name == "seed_3"
    assert trials[0].path == tmp_path.resolve() / "trials" / "optimizer=keep,users=10" / "seed_3"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_sweep_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    ("extra", "error", "message"),
    [
        (
            ["--set", "users=5", "--grid", "users=1,2"],
            ConfigError,
            "--set (or a settings flag) and --grid must not both give users_per_iteration.",
        ),
        (["--grid", "name=a,b"], ConfigError, "--grid key must not be 'name': each trial sets it itself."),
        (["--baseline", "designer=keep"], ConfigError, "--baseline needs a --grid (the baseline is one of its points)"),
        (
            ["--grid", "optimizer=keep,random", "--baseline", "users=10"],
            ConfigError,
            "--baseline key must be a --grid axis (optimizer), got 'users'.",
        ),
        (
            ["--grid", "optimizer=keep,random", "--baseline", "designer=oracle"],
            ConfigError,
            "--baseline designer must be one of its --grid values (keep, random), got 'oracle'.",
        ),
        (
            ["--grid", "optimizer=keep,random", "--baseline", "designer=keep", "--baseline", "optimizer=random"],
            ConfigError,
            "--baseline optimizer must be given once, got it twice.",
        ),
        (["--set", "seed=3"], ConfigError, "--set key must not be 'seed'"),
        (["--set", "userz=3"], ConfigError, "--set key must be a setting of the configuration tree, got 'userz'."),
        (["--set", "users=-1"], ConfigError, "CampaignConfig.users_per_iteration must be an int >= 1"),
        (["--workers", "0"], ConfigError, "--workers must be an int >= 1 and <= 1024, got 0."),
        (["--address", "auto"], ConfigError, "--address needs --backend ray, got --backend local."),
    ],
)
def test_sweep_main_errors(tmp_path: Path, extra: list[str], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        sweep_main(_parse(["--seeds", "0", "--out", str(tmp_path / "s"), *extra]), aliases=ALIASES)
    assert not (tmp_path / "s" / "trials").exists()  # nothing ran


def test_ray_backend_without_ray_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(
        ImportError, match=re.escape("--backend ray needs the 'ray' extra: pip install 'actionbank-env[ray]'")
    ):
        run_sweep(SimulationConfig.from_settings(TINY), grid={}, seeds=(0,), out=tmp_path, backend="ray")


def test_summarize_is_a_t_interval_with_nanmean() -> None:
    records: list[dict[str, Any]] = [
        {"key": "a", "params": {"x": 1}, "status": "ok", "summary": {"bank_value": v, "improvement_captured": ic}}
        for v, ic in ((0.1, 0.5), (0.2, None), (0.3, 0.7), (0.6, 0.9))
    ]
    records.append({"key": "a", "params": {"x": 1}, "status": "error", "error": "boom"})
    (row,) = summarize(records)
    assert (row["n_trials"], row["n_ok"], row["n_failed"]) == (5, 4, 1)
    assert row["bank_value_mean"] == pytest.approx(0.3)
    # t(0.975, 3) = 3.1824; sd = 0.2160
    assert row["bank_value_ci95"] == pytest.approx(3.182446 * 0.216025 / 2, rel=1e-4)
    assert row["improvement_captured_mean"] == pytest.approx(0.7)
    assert (row["improvement_captured_n"], row["improvement_captured_n_nan"]) == (3, 1)


# ---------------------------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    out = tmp_path_factory.mktemp("sweep")
    base = SimulationConfig.from_settings(TINY)
    return run_sweep(base, grid=GRID, seeds=SEEDS, out=out, backend="local", workers=2, baseline={"designer": "keep"})


def test_sweep_gives_the_table(sweep: SweepResult) -> None:
    assert [r["status"] for r in sweep.records] == ["ok"] * 4
    assert [r["config"] for r in sweep.rows] == ["designer=generative", "designer=keep"]
    for row in sweep.rows:
        assert (row["n_ok"], row["n_failed"]) == (2, 0)
        for metric in ("deployed_value", "bank_value", "new_bank_value", "company_reward"):
            assert 0.0 <= row[f"{metric}_mean"] <= 1.0
            assert math.isfinite(row[f"{metric}_ci95"]) and row[f"{metric}_ci95"] >= 0.0
    generative, keep = sweep.rows
    # keep proposes nothing: the next bank is the deployed one and the captured share is undefined
    assert keep["new_bank_value_mean"] == pytest.approx(keep["bank_value_mean"])
    assert keep["improvement_captured_n_nan"] == 2
    assert generative["new_bank_value_mean"] > generative["bank_value_mean"]
    # every trial is an ordinary run folder with the run's own summary
    for record in sweep.records:
        run = Path(record["path"])
        assert run.parent.parent == sweep.path / "trials"
        summary = json.loads((run / "summary.json").read_text())
        assert summary["deployed_value"] == record["summary"]["deployed_value"]
        assert json.loads((run / "simulation_config.json").read_text())["run"]["seed"] == record["seed"]
        assert not (run / "report.html").exists() and not (run / "tb").exists()
    table = sweep.table()
    assert "designer=generative" in table and " ± " in table and "(2 nan)" in table
    with (sweep.path / "sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["config"] for r in rows] == ["designer=generative", "designer=keep"]
    assert float(rows[0]["bank_value_mean"]) == pytest.approx(generative["bank_value_mean"])
    data = json.loads((sweep.path / "sweep.json").read_text())
    assert data["seeds"] == [0, 1] and len(data["trials"]) == 4 and data["metrics"] == list(SWEEP_METRICS)


def test_rerun_skips_finished_trials(sweep: SweepResult) -> None:
    summaries = [Path(r["path"]) / "summary.json" for r in sweep.records]
    before = [p.stat().st_mtime_ns for p in summaries]
    base = SimulationConfig.from_settings(TINY)
    again = run_sweep(base, grid=GRID, seeds=SEEDS, out=sweep.path, workers=2, baseline={"designer": "keep"})
    assert [r["status"] for r in again.records] == ["skipped"] * 4
    assert [p.stat().st_mtime_ns for p in summaries] == before
    assert again.rows == sweep.rows
    with pytest.raises(ConfigError, match=r"is a finished trial with other settings \(users_per_iteration\)"):
        run_sweep(
            SimulationConfig.from_settings({**TINY, "users_per_iteration": 151}), grid=GRID, seeds=SEEDS, out=sweep.path
        )


def test_a_failed_trial_does_not_lose_the_others(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_data"  # passes SimulationConfig validation, fails inside run_simulation
    grid = {"data_dir": (None, str(missing))}
    base = SimulationConfig.from_settings({**TINY, "designer": "keep"})
    first = run_sweep(base, grid=grid, seeds=(0,), out=tmp_path / "s", workers=2)
    ok, failed = first.records
    assert ok["status"] == "ok" and failed["status"] == "error"
    assert failed["error"].startswith("ConfigError: --data_dir") and "no data_config.json" in failed["error"]
    assert "Traceback" in (Path(failed["path"]) / "error.txt").read_text()
    assert (Path(ok["path"]) / "summary.json").is_file()
    assert [(r["n_ok"], r["n_failed"]) for r in first.rows] == [(1, 0), (0, 1)]
    assert f"FAILED {failed['key']} seed 0: ConfigError" in first.table()
    # a re-run skips the finished trial and retries the failed one
    mtime = (Path(ok["path"]) / "summary.json").stat().st_mtime_ns
    second = run_sweep(base, grid=grid, seeds=(0,), out=tmp_path / "s", workers=1)
    assert [r["status"] for r in second.records] == ["skipped", "error"]
    assert (Path(ok["path"]) / "summary.json").stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("settings", "grid", "message"),
    [
        ({}, {}, "world_seed follows each trial's seed: every seed is another world; the 95% CIs mix world-to-world"),
        ({"world_seed": 4}, {}, "world_seed is pinned to 4: every trial runs on that world"),
        ({}, {"world_seed": (1, 2)}, "world_seed is a grid axis (1, 2): each configuration runs on one world"),
    ],
)
def test_the_sweep_says_what_its_seeds_vary(settings: dict[str, Any], grid: dict[str, Any], message: str) -> None:
    # Issue 19, item 8: a seed sweep changes the world too unless world_seed is pinned; the sweep says which.
    from actionbank_env.sweep import world_seed_note

    assert world_seed_note(SimulationConfig.from_settings({**TINY, **settings}), grid).startswith(message)


# ---------------------------------------------------------------------------------------------- issue 19, item 8


def test_paired_differences_against_the_baseline(sweep: SweepResult) -> None:
    # Each configuration minus the baseline, seed by seed, with its own t-interval (not two intervals compared).
    from scipy import stats

    generative, keep = sweep.rows
    assert (generative["baseline"], keep["baseline"]) == ("designer=keep", "")
    by = {(r["key"], r["seed"]): r["summary"] for r in sweep.records}
    for metric in ("deployed_value", "bank_value", "new_bank_value", "company_reward"):
        diffs = [by["designer=generative", s][metric] - by["designer=keep", s][metric] for s in SEEDS]
        low, high = stats.t.interval(0.95, len(diffs) - 1, loc=sum(diffs) / 2, scale=stats.sem(diffs))
        assert generative[f"{metric}_diff_mean"] == pytest.approx((low + high) / 2, rel=1e-9, abs=1e-12)
        assert generative[f"{metric}_diff_ci95"] == pytest.approx((high - low) / 2, rel=1e-6, abs=1e-12)
        assert generative[f"{metric}_diff_n"] == 2 and keep[f"{metric}_diff_n"] == 0
    # keep's proposal is its own bank: the generative designer's new bank is better on every seed here
    assert generative["new_bank_value_diff_mean"] > 0
    table = sweep.table()
    assert table.startswith("seeds: world_seed follows each trial's seed: every seed is another world")
    assert "paired differences, configuration minus its baseline on the same seeds" in table
    assert re.search(r"designer=generative\s+designer=keep\s+2\s+[+-]\d\.\d{4} ± \d\.\d{4}", table)
    with (sweep.path / "sweep.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["baseline"] == "designer=keep" and rows[1]["baseline"] == ""
    assert float(rows[0]["bank_value_diff_mean"]) == pytest.approx(generative["bank_value_diff_mean"])
    data = json.loads((sweep.path / "sweep.json").read_text())
    assert data["baseline"] == {"values": {"designer": "keep"}, "config": "designer=keep"}
    assert data["world_seed"]["mode"] == "per_seed" and "another world" in data["world_seed"]["note"]


def test_benchmark_and_sweep_share_one_interval() -> None:
    from actionbank_env import benchmark, sweep

    assert benchmark.mean_ci is sweep.mean_ci
    assert benchmark.paired_difference is sweep.paired_difference


def _config_file(path: Path, settings: dict[str, Any]) -> Path:
    path.write_text(json.dumps(SimulationConfig.from_settings(settings).to_dict()), encoding="utf-8")
    return path


def test_sweep_takes_simulates_flags_and_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Issue 19, item 8: the same settings as simulate (a --config file and the settings flags), then --set.
    from actionbank_env.cli import main

    config = _config_file(tmp_path / "run.json", {**TINY, "users_per_iteration": 170, "report": True, "iterations": 3})
    argv = ["sweep", "--seeds", "0-1", "--config", str(config), "--users", "120", "--world-seed", "5"]
    argv += ["--set", "iterations=1", "--grid", "optimizer=keep,random", "--baseline", "optimizer=keep"]
    assert main([*argv, "--workers", "2", "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("seeds: world_seed is pinned to 5: every trial runs on that world")
    assert re.search(r"\noptimizer=random\s+optimizer=keep\s+2\s", out)
    for key in ("optimizer=keep", "optimizer=random"):
        for seed in (0, 1):
            stored = json.loads(
                (tmp_path / "s" / "trials" / key / f"seed_{seed}" / "simulation_config.json").read_text()
            )
            settings = SimulationConfig.from_dict(stored).settings()
            assert settings["users_per_iteration"] == 120  # the flag over the file
            assert settings["embedder"] == "hashing" and settings["evaluation_users"] == 200  # the file
            # the file's designer settings reach every designer of the grid, not only the one the file names
            assert settings["designer.action_pool_size"] == 40 and settings["designer.reward_model"] == "linear"
            assert settings["report"] is False  # the sweep's default over the file's report=true
            assert (settings["iterations"], settings["world_seed"], settings["seed"]) == (1, 5, seed)
    data = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert data["world_seed"]["mode"] == "pinned"
    (random_row,) = [r for r in data["configs"] if r["baseline"]]
    assert random_row["config"] == "optimizer=random" and random_row["deployed_value_diff_n"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--users", "0"], "CampaignConfig.users_per_iteration must be an int >= 1 and <= 100000000, got 0."),
        (["--users", "5", "--set", "users=6"], "--set users_per_iteration must not repeat a settings flag"),
        (["--users", "5", "--grid", "users=6,7"], "must not both give users_per_iteration"),
        (["--config", "no_such.json"], "--config no_such.json: no such file."),
        (["--grid", "optimizer=keep", "--baseline", "optimizer=random"], "got 'random'"),
        (["--seed", "3"], "unrecognized arguments: --seed"),  # the seeds are --seeds
    ],
)
def test_sweep_flags_are_checked_before_any_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, extra: list[str], message: str
) -> None:
    from actionbank_env.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "--seeds", "0", *extra, "--out", str(tmp_path / "s")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_sweep_base_precedence(tmp_path: Path) -> None:
    from actionbank_env.sweep import sweep_base

    config = SimulationConfig.from_settings({"iterations": 4, "report": True, "users_per_iteration": 30})
    base = sweep_base({"users": "40"}, flags={"tensorboard": True}, config=config, aliases=ALIASES).settings()
    assert (base["iterations"], base["users_per_iteration"]) == (4, 40)  # file, then --set
    assert (base["report"], base["tensorboard"], base["threads"]) == (False, True, 1)  # sweep defaults < flags
    with pytest.raises(ConfigError, match=re.escape("--seed must not be given to a sweep")):
        sweep_base({}, flags={"seed": 1})


def test_a_grid_point_that_switches_component_keeps_the_sweeps_settings(tmp_path: Path) -> None:
    base = SimulationConfig.from_settings({**TINY, "agent.alpha": 0.5})
    grid = {"optimizer": ("generative", "random"), "agent": ("linucb", "random")}
    trials = plan_trials(base, grid, (0,), tmp_path, aliases=ALIASES)
    for trial in trials:
        settings = trial.config.settings()
        assert settings["designer"] == trial.params["optimizer"]
        assert (settings["designer.action_pool_size"], settings["designer.reward_model"]) == (40, "linear")
        # a parameter the new component does not have is not carried (the random agent has no alpha)
        assert settings.get("agent.alpha") == (0.5 if trial.params["agent"] == "linucb" else None)
    # a grid value of the parameter itself wins; without carrying, a switched component starts from its defaults
    (point,) = plan_trials(
        base, {"optimizer": ("random",), "action_pool_size": ("60",)}, (0,), tmp_path, aliases=ALIASES
    )
    assert point.config.settings()["designer.action_pool_size"] == 60
    (bare,) = plan_trials(base, {"optimizer": ("random",)}, (0,), tmp_path, aliases=ALIASES, carry_settings=False)
    assert (
        bare.config.settings()["designer.action_pool_size"]
        == SimulationConfig().settings()["designer.action_pool_size"]
    )
