"""``actionbank ope`` on a small run folder, the OBP export and the estimate ``simulate`` writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from actionbank_env.cli import main

SMALL = [
    "--embedder", "hashing", "--users", "300", "--iterations", "2", "--initial_actions", "6",
    "--action_pool_size", "60", "--action_bank_size", "3", "--reward_model_type", "linear",
    "--evaluation-users", "200", "--no-report", "--no-tensorboard", "--quiet",
]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ope") / "run"
    assert main(["simulate", *SMALL, "--out", str(out)]) == 0
    return out


def test_simulate_writes_the_proposals_estimate_beside_its_truth(run_dir: Path) -> None:
    evaluation = json.loads((run_dir / "iteration_1" / "ground_truth_evaluation.json").read_text())
    ope = evaluation["ope"]
    assert ope["n_rounds"] == 300 and 0.0 < ope["truth"] < 1.0
    assert {"dm", "ips", "snips", "dr", "switch_dr", "dr_os", "mips", "snmips", "mdr"} <= set(ope["estimates"])
    for row in ope["estimates"].values():
        assert row["truth"] == ope["truth"]
        assert row["error"] == pytest.approx(row["value"] - ope["truth"])
        assert row["ci_low"] <= row["value"] <= row["ci_high"]


def test_ope_prints_the_table_and_writes_ope_json(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    simulate = json.loads((run_dir / "iteration_1" / "ground_truth_evaluation.json").read_text())["ope"]
    assert main(["ope", str(run_dir), "--iteration", "1", "--seed", str(simulate["seed"])]) == 0
    out = capsys.readouterr().out
    assert "estimator" in out and "truth" in out and "snmips" in out
    report = json.loads((run_dir / "iteration_1" / "ope.json").read_text())
    assert report["iteration"] == 1 and report["policy"].startswith("proposal after iteration 1")
    # The default target is the proposal the run wrote; with simulate's seed, the estimate simulate recorded.
    assert report["share_on_new_actions"] == pytest.approx(simulate["share_on_new_actions"])
    assert report["truth"] == pytest.approx(simulate["truth"], rel=1e-9)
    for name, row in simulate["estimates"].items():
        assert report["estimates"][name]["value"] == pytest.approx(row["value"], rel=1e-6, abs=1e-9), name
    # `actionbank ope` adds the Bayesian posterior estimators (simulate leaves them out to keep its cost).
    assert "bayes_cdm" not in simulate["estimates"] and "bayes_cdm" in out
    cdm = report["estimates"]["bayes_cdm"]
    assert cdm["ci_low"] < cdm["value"] < cdm["ci_high"] and "covers_truth" in cdm


def test_ope_of_another_bank_and_of_an_agent(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logged = json.loads((run_dir / "iteration_2" / "action_bank.json").read_text())
    bank = tmp_path / "bank.txt"
    bank.write_text(logged["actions"][0]["text"] + "\nA completely new line about premium gadgets\n")
    assert main(["ope", str(run_dir), "--bank", str(bank)]) == 0
    report = json.loads((run_dir / "iteration_2" / "ope.json").read_text())
    assert 0.0 < report["share_on_new_actions"] <= 1.0
    assert main(["ope", str(run_dir), "--iteration", "2", "--policy", "random"]) == 0
    report = json.loads((run_dir / "iteration_2" / "ope.json").read_text())
    assert report["share_on_new_actions"] == 0.0
    # A uniform target over the logged bank: IPS interval must be finite and the truth a plain mean.
    assert np.isfinite(report["estimates"]["ips"]["ci_high"])


def test_obp_export_has_expected_rewards(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "feedback.npz"
    assert main(["ope", str(run_dir), "--iteration", "1", "--obp-out", str(out)]) == 0
    feedback = dict(np.load(out))
    n, k = int(feedback["n_rounds"]), int(feedback["n_actions"])
    assert feedback["action_context"].shape[0] == k and feedback["context"].shape == (n, 8)
    assert feedback["expected_reward"].shape == (n, k)
    assert np.all((feedback["expected_reward"] > 0) & (feedback["expected_reward"] < 1))
    assert np.all((feedback["pscore"] > 0) & (feedback["pscore"] <= 1))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"actions": [{"text": ""}]}', "text 0 must be a non-empty string the embedder can embed"),
        ('{"actions": [{"text": "' + "x" * 300 + '"}]}', "text 0 must be at most 200 characters"),
        ('{"actions": [{"text": 5}]}', "text 0 must be a non-empty string the embedder can embed, got 5"),
        ("[]", "holds no texts"),
    ],
)
def test_bad_banks_exit_2_naming_the_rule(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bank = tmp_path / "bank.json"
    bank.write_text(content)
    assert main(["ope", str(run_dir), "--bank", str(bank)]) == 2
    assert message in capsys.readouterr().err


def test_bad_targets_exit_2(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ope", str(run_dir), "--iteration", "9"]) == 2
    assert "--iteration must be a complete iteration" in capsys.readouterr().err
    assert main(["ope", str(run_dir), "--bank", "x.txt", "--policy", "random"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["ope", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err


def test_report_shows_each_proposals_estimate_beside_its_truth(run_dir: Path, tmp_path: Path) -> None:
    from actionbank_env.report import write_report

    ope = json.loads((run_dir / "iteration_1" / "ground_truth_evaluation.json").read_text())["ope"]
    page = write_report(run_dir).read_text(encoding="utf-8")
    section = page.split("Off-policy estimate of each proposal", 1)[1].split("<h2>", 1)[0]
    assert f"{ope['estimates']['snmips']['value']:.4f}" in section
    assert f"{ope['truth']:.4f}" in section


def test_the_estimate_takes_the_designers_chosen_prior_and_ope_reproduces_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the default (Bayesian bilinear) reward model, simulate's OPE fits its folds at the prior scales and
    spectrum power the designer's model chose on the logs (recorded in ``algorithm_results.json``) instead of
    choosing them again, and ``actionbank ope`` reads them back: the same estimate, with no grouped CV run (the
    posterior estimators' own model still chooses its scales by evidence)."""
    from optimizers.reward_models.bilinear import BayesianBilinearRewardModel

    # SMALL with the default reward model, one iteration
    small = [
        "--embedder", "hashing", "--users", "300", "--iterations", "1", "--initial_actions", "6",
        "--action_pool_size", "60", "--action_bank_size", "3", "--evaluation-users", "200",
        "--no-report", "--no-tensorboard", "--quiet",
    ]  # fmt: skip
    out = tmp_path / "run"
    assert main(["simulate", *small, "--out", str(out)]) == 0
    algorithm = json.loads((out / "iteration_1" / "algorithm_results.json").read_text())
    simulate = json.loads((out / "iteration_1" / "ground_truth_evaluation.json").read_text())["ope"]
    settings = algorithm["reward_model_settings"]
    assert settings["prior_selection"] == "fixed" and settings["spectrum_power"] in (0.0, 0.5, 1.0)
    assert simulate["reward_model_settings"] == settings

    def no_selection(*args: object, **kwargs: object) -> None:
        raise AssertionError("OPE chose the reward model's prior again")

    monkeypatch.setattr(BayesianBilinearRewardModel, "_grouped_cv", no_selection)
    assert main(["ope", str(out), "--iteration", "1", "--seed", str(simulate["seed"])]) == 0
    report = json.loads((out / "iteration_1" / "ope.json").read_text())
    assert report["reward_model_settings"] == settings
    assert report["truth"] == pytest.approx(simulate["truth"], rel=1e-9)
    for name, row in simulate["estimates"].items():
        assert report["estimates"][name]["value"] == pytest.approx(row["value"], rel=1e-9, abs=1e-12), name
        assert report["estimates"][name]["ci_high"] == pytest.approx(row["ci_high"], rel=1e-9, abs=1e-12), name

    # A settings entry that is not an object is an error naming the file and the key, not a silent re-selection;
    # a run written before the key existed still evaluates (OPE then chooses the prior on the log itself).
    monkeypatch.undo()
    path = out / "iteration_1" / "algorithm_results.json"
    path.write_text(json.dumps({**algorithm, "reward_model_settings": "fixed"}))
    assert main(["ope", str(out), "--iteration", "1", "--seed", str(simulate["seed"])]) == 2
    err = capsys.readouterr().err
    assert "algorithm_results.json" in err and "'reward_model_settings' must be an object" in err
    path.write_text(json.dumps({k: v for k, v in algorithm.items() if k != "reward_model_settings"}))
    assert main(["ope", str(out), "--iteration", "1", "--seed", str(simulate["seed"])]) == 0
