"""The full simulation: results layout, determinism across processes, resume after SIGKILL, CLI errors."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from actionbank_env.cli import main
from actionbank_env.config import SimulationConfig
from actionbank_env.errors import ConfigError
from actionbank_env.experiment import HEADLINE_MEANINGS, run_simulation

ROOT = Path(__file__).resolve().parents[1]
SMALL = [
    "--embedder",
    "hashing",
    "--users",
    "200",
    "--iterations",
    "2",
    "--initial_actions",
    "5",
    "--action_pool_size",
    "60",
    "--action_bank_size",
    "3",
    "--reward_model_type",
    "linear",
    "--evaluation-users",
    "300",
    "--no-report",
]
ITERATION_FILES = (
    "users.csv",
    "action_bank.json",
    "observations.csv",
    "algorithm_results.json",
    "ground_truth_evaluation.json",
    "new_action_bank.json",
)


def _strip_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_timing(v) for k, v in value.items() if not k.endswith("_seconds")}
    if isinstance(value, list):
        return [_strip_timing(v) for v in value]
    return value


def _comparable_files(folder: Path) -> dict[str, Any]:
    """Every results file except meta.json and TensorBoard events; JSON without durations."""
    out: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or rel == "meta.json" or rel.startswith("tb/"):
            continue
        out[rel] = _strip_timing(json.loads(path.read_text())) if path.suffix == ".json" else path.read_bytes()
    return out


def _cli(args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "actionbank_env", "simulate", "--quiet", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        **kwargs,
    )


def test_simulate_writes_the_documented_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *SMALL, "--out", str(tmp_path / "run"), "--quiet"]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "run"
    assert f"results: {run.resolve()}" in out and "improvement_captured" in out
    # The headline: every summary number with its meaning, and where the report is.
    summary = json.loads((run / "summary.json").read_text())
    for key, meaning in HEADLINE_MEANINGS.items():
        value = summary[key]
        assert f"{key:<22} {'n/a' if value is None else f'{value:.4f}':>8}  {meaning}" in out
    assert "report:" not in out  # --no-report: no report line pointing at nothing
    for name in (
        "simulation_config.json",
        "meta.json",
        "metrics.csv",
        "summary.json",
        "complete_simulation_results.json",
        "initialization/action_bank.json",
        "initialization/world_card.json",
    ):
        assert (run / name).is_file(), name
    card = json.loads((run / "initialization" / "world_card.json").read_text())
    assert card["world"]["embedder"].startswith("hashing") and card["n_texts"] > 0
    assert {"base_ctr", "best_lift", "max_click_prob"} <= {c["name"] for c in card["checks"]}
    for t in (1, 2):
        for name in ITERATION_FILES:
            assert (run / f"iteration_{t}" / name).is_file(), (t, name)
    summary = json.loads((run / "summary.json").read_text())
    for key in ("company_reward", "deployed_value", "bank_value", "oracle_bank_value", "improvement_captured"):
        assert key in summary and len(summary["per_iteration"][key]) == 2
    config = SimulationConfig.from_dict(json.loads((run / "simulation_config.json").read_text()))
    assert config.campaign.users_per_iteration == 200 and config.world.embedder == "hashing"
    # Embeddings are stored once per action (bank files), never per observation row.
    assert "embedding" not in (run / "iteration_1" / "observations.csv").read_text().splitlines()[0]
    # Bank evolution: the new bank keeps the old ids and adds action_bank_size new ones.
    evaluation = json.loads((run / "iteration_1" / "ground_truth_evaluation.json").read_text())
    assert len(evaluation["bank_evolution"]["kept_ids"]) == 5
    assert len(evaluation["bank_evolution"]["added_ids"]) == 3
    # Issue 16 diagnostics: the optimizer's curse and the fidelity on never-served candidates with its ceiling.
    gain = evaluation["gain"]
    assert gain["realised_gain"] == pytest.approx(evaluation["new_bank_value"] - evaluation["bank_value"])
    unseen = evaluation["unseen_candidate_fidelity"]
    assert 0.0 < unseen["n_candidates"] and {"auc_ceiling", "user_only_auc", "mean_ratio"} <= set(unseen)
    # TensorBoard: scalars read back with their values.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"env/company_reward", "optimizer/bank_value", "optimizer/improvement_captured"} <= tags
    assert {"env/per_action_ctr", "fidelity/r_hat_minus_truth"} <= set(acc.Tags()["histograms"])
    assert {"config/text_summary", "bank/text_summary"} <= set(acc.Tags()["tensors"])
    config_text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| users_per_iteration | 200 |" in config_text
    bank_values = [e.value for e in acc.Scalars("optimizer/bank_value")]
    assert bank_values == pytest.approx(summary["per_iteration"]["bank_value"], rel=1e-6)


def test_same_seed_gives_identical_files_in_two_processes(tmp_path: Path) -> None:
    procs = [_cli([*SMALL, "--no-tensorboard", "--out", str(tmp_path / name)]) for name in ("a", "b")]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    a, b = _comparable_files(tmp_path / "a"), _comparable_files(tmp_path / "b")
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key
    other = run_simulation(
        SimulationConfig.from_dict(
            {
                "embedder": "hashing",
                "users": 200,
                "iterations": 2,
                "initial_actions": 5,
                "action_pool_size": 60,
                "action_bank_size": 3,
                "reward_model_type": "linear",
                "evaluation_users": 300,
                "report": False,
                "tensorboard": False,
                "seed": 1,
            }
        ),
        out=tmp_path / "c",
    )
    assert _comparable_files(other.path)["iteration_1/observations.csv"] != a["iteration_1/observations.csv"]


def test_resume_after_sigkill_gives_the_uninterrupted_results(tmp_path: Path) -> None:
    args = [*SMALL, "--iterations", "3", "--no-tensorboard"]
    full = _cli([*args, "--out", str(tmp_path / "full")])
    killed = _cli([*args, "--out", str(tmp_path / "killed")], start_new_session=True)
    marker = tmp_path / "killed" / "iteration_1" / ".complete"
    deadline = time.monotonic() + 240
    while not marker.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert killed.poll() is None, "the run finished before it could be killed; make it longer"
    os.killpg(killed.pid, signal.SIGKILL)
    killed.communicate()
    assert not (tmp_path / "killed" / "summary.json").exists()
    leftovers = [p for p in (tmp_path / "killed").rglob(".*.tmp")]
    resumed = _cli(["--resume", str(tmp_path / "killed")])
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    _, err = full.communicate(timeout=300)
    assert full.returncode == 0, err
    a, b = _comparable_files(tmp_path / "full"), _comparable_files(tmp_path / "killed")
    assert a.keys() == b.keys()  # no temp file either: --resume removes what the kill left
    for key in a:
        assert a[key] == b[key], key
    assert not any(p.exists() for p in leftovers)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "--iteratons", "3"], "unrecognized arguments: --iteratons"),
        (
            ["simulate", "--users", "0"],
            "CampaignConfig.users_per_iteration must be an int >= 1 and <= 100000000, got 0.",
        ),
        (["simulate", "--alpha", "-1"], "LinUCBConfig.alpha must be a float >= 0.0, got -1.0."),
        (["simulate", "--agent.alpha", "-1"], "LinUCBConfig.alpha must be a float >= 0.0, got -1.0."),
        (["simulate", "--reward_model_type", "lightgmb"], "designer.reward_model must be one of"),
        (["simulate", "--reward_model_type", "lightgmb"], "Did you mean 'lightgbm'?"),
        (["simulate", "--optimizer", "best"], "designer must be one of"),
        (["simulate", "--users", "ten"], "users_per_iteration must be an int, got 'ten'."),
        (["simulate", "--agent.n-heads", "3"], "unrecognized arguments: --agent.n-heads"),
        (["simulate", "--agent", "random", "--agent.params", '{"alpha": 1}'], "got unknown parameters ['alpha']"),
        (["simulate", "--config", "/nonexistent/run.json"], "--config /nonexistent/run.json: no such file."),
        (
            ["simulate", "--action_bank_size", "30", "--action_pool_size", "20"],
            "GenerativeConfig.action_bank_size=30 must be <= action_pool_size=20.",
        ),
        (["simulate", "--resume", "/nonexistent"], "/nonexistent is not a run folder (no simulation_config.json)."),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_flags_exit_2_with_one_clear_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_config_file_and_flag_precedence(tmp_path: Path) -> None:
    from actionbank_env.cli import _simulation_config, build_parser

    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"users": 123, "iterations": 4}))
    argv = ["simulate", "--config", str(cfg), "--iterations", "2", "--embedder", "hashing"]
    config = _simulation_config(build_parser(argv).parse_args(argv))
    assert (config.campaign.users_per_iteration, config.run.iterations, config.world.embedder) == (123, 2, "hashing")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"user": 5}))
    assert main(["simulate", "--config", str(bad)]) == 2


def test_refuses_to_overwrite_a_non_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    assert main(["simulate", *SMALL, "--out", str(out)]) == 2
    assert "already exists and is not empty; pass --overwrite" in capsys.readouterr().err
    assert (out / "precious.txt").read_text() == "keep me"


def test_generate_data_then_run_several_algorithms_on_the_same_users(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert (
        main(
            [
                "generate-data",
                "--embedder",
                "hashing",
                "--users",
                "150",
                "--iterations",
                "2",
                "--initial_actions",
                "5",
                "--out",
                str(data),
            ]
        )
        == 0
    )
    assert (data / "data_config.json").is_file() and (data / "initialization" / "action_bank.json").is_file()
    runs = {}
    for optimizer in ("generative", "random"):
        out = tmp_path / optimizer
        argv = [
            "run-from-data",
            "--data_dir",
            str(data),
            "--optimizer",
            optimizer,
            "--action_pool_size",
            "40",
            "--action_bank_size",
            "2",
            "--reward_model_type",
            "linear",
            "--out",
            str(out),
            "--quiet",
            "--no-report",
            "--no-tensorboard",
            "--evaluation-users",
            "200",
        ]
        assert main(argv) == 0
        runs[optimizer] = out
    for t in (1, 2):
        data_users = (data / f"iteration_{t}" / "users.csv").read_bytes()
        for out in runs.values():
            assert (out / f"iteration_{t}" / "users.csv").read_bytes() == data_users
    config = json.loads((runs["random"] / "simulation_config.json").read_text())
    assert config["campaign"]["users_per_iteration"] == 150 and config["world"]["embedder"] == "hashing"
    assert config["run"]["data_dir"] == str(data) and config["run"]["name"] == "simulation_from_data"
    assert (runs["random"] / "run_from_data_config.json").is_file()
    assert main(["run-from-data", "--data_dir", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2


def test_compare_models_scores_against_the_ground_truth(capsys: pytest.CaptureFixture[str]) -> None:
    from actionbank_env.model_comparison import compare_models

    scores = compare_models(
        models=("linear", "gaussian_process"),
        users=3000,
        evaluation_users=300,
        n_new_candidates=60,
        config=SimulationConfig.from_settings({"embedder": "hashing", "initial_actions": 10}),
    )
    assert [s.model for s in scores] == ["linear", "gaussian_process"]
    for s in scores:
        assert s.fidelity_seen["spearman"] > 0.2  # learned something real about the logged actions
        assert 0.0 <= s.fidelity_new["ece"] <= 1.0 and s.fit_seconds > 0
    assert main(["compare-models", "--model_type", "lineer"]) == 2
    assert "Did you mean 'linear'?" in capsys.readouterr().err


def test_headline_points_at_the_report_when_there_is_one(tmp_path: Path) -> None:
    from actionbank_env.config import SimulationConfig
    from actionbank_env.experiment import RunResult

    summary = {key: 0.125 for key in HEADLINE_MEANINGS} | {"iterations": 3, "regret": None}
    result = RunResult(path=tmp_path / "run", config=SimulationConfig(), summary=summary)
    (tmp_path / "run").mkdir()
    assert "report:" not in result.headline()
    (tmp_path / "run" / "report.html").write_text("<html></html>")
    text = result.headline()
    assert f"report:  {(tmp_path / 'run' / 'report.html').resolve()}" in text
    assert f"results: {(tmp_path / 'run').resolve()}" in text
    assert "company_reward           0.1250" in text and "regret                      n/a" in text
    assert "summary.json, iteration 3" in text


def test_same_logs_reference_is_recorded_beside_an_unchanged_run_and_survives_resume(tmp_path: Path) -> None:
    """run.same_logs_reference: the reference designer's bank from the designer's own logs and pool, each iteration.

    The run's own files do not change (only the config and the new record), the record is scored against the same
    old bank and oracle, and a resumed run (the reference replays the deployed banks) records what an uninterrupted
    one does.
    """
    import shutil

    settings = {
        "embedder": "hashing",
        "users": 300,
        "iterations": 3,
        "initial_actions": 5,
        "action_pool_size": 60,
        "action_bank_size": 3,
        "evaluation_users": 300,
        "report": False,
        "tensorboard": False,
        "ope": False,
    }
    plain = run_simulation(SimulationConfig.from_dict(settings), out=tmp_path / "plain")
    shadowed = run_simulation(
        SimulationConfig.from_dict({**settings, "same_logs_reference": True}), out=tmp_path / "ref"
    )
    a, b = _comparable_files(plain.path), _comparable_files(shadowed.path)
    assert a.keys() == b.keys()
    for key in a:
        if key.endswith("ground_truth_evaluation.json"):
            record = dict(b[key])
            reference = record.pop("same_logs_reference")
            assert record == a[key], key
            assert reference["n_new"] == len(reference["new_texts"]) == 3
            gain = reference["new_bank_value"] - record["bank_value"]
            assert gain >= -1e-12  # the bank only grows
            captured = gain / (record["oracle_bank_value"] - record["bank_value"])
            assert reference["improvement_captured"] == pytest.approx(captured, rel=1e-9)
            # its model's fidelity on the designer's clicks: the same truth, ceiling and action-blind baseline
            mine, theirs = record["unseen_candidate_fidelity"], reference["unseen_candidate_fidelity"]
            for field in ("auc_ceiling", "user_only_auc", "n_candidates"):
                assert theirs[field] == mine[field], field
        elif key == "metrics.csv":  # the same columns, plus the reference's beside the designer's
            mine, theirs = (pd.read_csv(io.BytesIO(files[key])) for files in (a, b))
            extra = [c for c in theirs.columns if c not in mine.columns]
            assert sorted(extra) == [
                "same_logs_reference/fidelity/auc",
                "same_logs_reference/fidelity/mean_ratio",
                "same_logs_reference/improvement_captured",
                "same_logs_reference/new_bank_value",
            ]
            pd.testing.assert_frame_equal(theirs[list(mine.columns)], mine)
            for _, row in theirs.iterrows():
                reference = b[f"iteration_{int(row['step'])}/ground_truth_evaluation.json"]["same_logs_reference"]
                assert row["same_logs_reference/improvement_captured"] == pytest.approx(
                    reference["improvement_captured"], rel=1e-6
                )
                assert row["same_logs_reference/fidelity/auc"] == pytest.approx(
                    reference["unseen_candidate_fidelity"]["auc"], rel=1e-6
                )
        elif key not in ("simulation_config.json", "complete_simulation_results.json"):
            assert a[key] == b[key], key
    # Resume from iteration 3: the reference must remember the deployed banks as the designer does.
    resumed = tmp_path / "resumed"
    shutil.copytree(shadowed.path, resumed)
    for name in ("summary.json", "complete_simulation_results.json", "metrics.csv"):
        (resumed / name).unlink(missing_ok=True)
    shutil.rmtree(resumed / "iteration_3")
    run_simulation(resume=resumed)
    assert (
        _comparable_files(resumed)["iteration_3/ground_truth_evaluation.json"]
        == b["iteration_3/ground_truth_evaluation.json"]
    )


def test_same_logs_reference_needs_the_generative_designer(tmp_path: Path) -> None:
    config = SimulationConfig.from_settings({"embedder": "hashing", "designer": "random", "same_logs_reference": True})
    with pytest.raises(
        ConfigError, match="run.same_logs_reference .* needs designer='generative', got designer='random'"
    ):
        run_simulation(config, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
