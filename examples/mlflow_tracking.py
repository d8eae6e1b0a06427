"""A small simulation logged to a local MLflow store, then read back with MLflow's own client.

``tracker="mlflow"`` logs the finished run (configuration as params, per-iteration numbers as metrics with the
iteration as step, the run folder as artifacts) to ``<results_dir>/mlruns``. Browse it with
``mlflow ui --backend-store-uri <results_dir>/mlruns`` (set ``MLFLOW_ALLOW_FILE_STORE=true`` for MLflow >= 3).

Needs the ``mlflow`` extra (``pip install "actionbank-env[mlflow]"``). Run from the repository root:
``python examples/mlflow_tracking.py [--users 300 --results_dir results]``.
"""

from __future__ import annotations

import argparse
import os

from mlflow.tracking import MlflowClient

from actionbank_env.config import SimulationConfig
from actionbank_env.experiment import run_simulation
from actionbank_env.integrations.mlflow import EXPERIMENT_NAME, default_tracking_uri

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--users", type=int, default=300)
parser.add_argument("--results_dir", default="results")
args = parser.parse_args()

config = SimulationConfig.from_settings(
    {
        "embedder": "hashing",
        "iterations": 2,
        "users_per_iteration": args.users,
        "initial_actions": 5,
        "evaluation_users": 300,
        "designer.action_pool_size": 60,
        "designer.action_bank_size": 3,
        "results_dir": args.results_dir,
        "name": "mlflow_example",
        "report": False,
        "tracker": "mlflow",
    }
)
result = run_simulation(config)
print(f"run folder: {result.path}")

store = default_tracking_uri(args.results_dir)
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow >= 3 asks for it to read a file store
client = MlflowClient(tracking_uri=store)
experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
run = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)[0]
print(f"mlflow run {run.info.run_id} in {store}: {len(run.data.params)} params")
for key in ("deployed_value", "bank_value", "oracle_bank_value"):
    values = ", ".join(f"{m.value:.4f}" for m in client.get_metric_history(run.info.run_id, key))
    print(f"  {key}: {values}")
print(f"  artifacts: {sorted(a.path for a in client.list_artifacts(run.info.run_id))[:4]} ...")
