"""The MLflow tracker (issue 19, item 10): a finished run in a local MLflow file store, with the real mlflow.

Needs the ``mlflow`` extra (``mlflow-skinny``); skipped without it, except the missing-extra error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actionbank_env.cli import main
from tests.test_experiment import SMALL


def test_missing_mlflow_names_the_extra_before_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_mlflow(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "mlflow" or name.startswith("mlflow."):
            raise ImportError("No module named 'mlflow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    assert main(["simulate", *SMALL, "--tracker", "mlflow", "--results-dir", str(tmp_path / "r"), "--quiet"]) == 2
    assert "needs the 'mlflow' extra: pip install 'actionbank-env[mlflow]'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_simulate_logs_params_metrics_and_artifacts_to_a_local_store(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    out = tmp_path / "results" / "run"
    assert (
        main(
            [
                "simulate",
                *SMALL,
                "--tracker",
                "mlflow",
                "--results-dir",
                str(tmp_path / "results"),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    store = (tmp_path / "results" / "mlruns").as_uri()
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("actionbank")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    config = json.loads((out / "simulation_config.json").read_text())
    assert run.data.params["run.iterations"] == str(config["run"]["iterations"]) == "2"
    history = client.get_metric_history(run.info.run_id, "deployed_value")
    summary = json.loads((out / "summary.json").read_text())
    assert [m.step for m in history] == [1, 2]
    assert [m.value for m in history] == pytest.approx(summary["per_iteration"]["deployed_value"])
    assert "final/iterations" not in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"summary.json", "simulation_config.json", "iteration_1"} <= artifacts
