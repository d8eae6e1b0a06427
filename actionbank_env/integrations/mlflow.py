"""MLflow tracking of finished runs: parameters, per-iteration metrics and the run folder as artifacts.

``actionbank simulate --tracker mlflow`` (or ``RunConfig.tracker="mlflow"``) logs each completed run to a local
MLflow file store, by default ``<results_dir>/mlruns`` (``mlflow ui --backend-store-uri <results_dir>/mlruns``), or
to ``RunConfig.tracking_uri``. Sweeps log every trial there too, since each trial is a ``run_simulation``. The run
is logged after it finished, from its folder, so a resumed run logs the same numbers as one that never stopped.

MLflow is an optional extra (``pip install "actionbank-env[mlflow]"``, the lightweight ``mlflow-skinny``); it is
imported only inside :func:`log_run_to_mlflow`, which raises an ``ImportError`` naming the extra without it.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from actionbank_env.errors import MissingExtraError

__all__ = ["EXPERIMENT_NAME", "default_tracking_uri", "log_run_to_mlflow", "require_mlflow"]

#: The MLflow experiment runs are logged under.
EXPERIMENT_NAME = "actionbank"
#: MLflow limits a param value to this many characters (longer values are cut, with a marker).
_MAX_PARAM = 6000


def default_tracking_uri(results_dir: str | os.PathLike[str]) -> str:
    """The local file store ``<results_dir>/mlruns`` as a ``file://`` URI."""
    return (Path(results_dir).resolve() / "mlruns").as_uri()


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        text = str(value)
        out[prefix] = text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 3] + "..."


def require_mlflow() -> Any:
    """MLflow's ``MlflowClient`` class; :class:`MissingExtraError` naming the ``mlflow`` extra without it."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise MissingExtraError("mlflow", "actionbank_env.integrations.mlflow") from None
    return MlflowClient


def log_run_to_mlflow(
    run_path: str | os.PathLike[str],
    *,
    params: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    tracking_uri: str,
    run_name: str | None = None,
    experiment: str = EXPERIMENT_NAME,
) -> str:
    """Log one finished run to MLflow; returns the MLflow run id.

    Args:
        run_path: The run folder, logged whole as the run's artifacts.
        params: The configuration (nested mappings are flattened to ``a.b.c`` keys).
        rows: Per-iteration numbers (``iteration`` is the MLflow step); non-numeric values are skipped.
        summary: ``summary.json``; its numeric top-level entries are logged as ``final/<key>`` metrics.
        tracking_uri: Where to log (e.g. :func:`default_tracking_uri`).
        run_name: The MLflow run name (default: the folder's name).
        experiment: The MLflow experiment (created if missing).
    """
    client_class = require_mlflow()
    with _file_store_allowed(tracking_uri):
        return _log(client_class(tracking_uri=tracking_uri), run_path, params, rows, summary, run_name, experiment)


@contextlib.contextmanager
def _file_store_allowed(tracking_uri: str) -> Iterator[None]:
    """MLflow >= 3.x refuses the file store unless ``MLFLOW_ALLOW_FILE_STORE`` is set; a ``file:`` URI is this
    module's documented default (no database to set up), so it is allowed while logging, unless the user set the
    variable themselves."""
    if not tracking_uri.startswith("file:") or "MLFLOW_ALLOW_FILE_STORE" in os.environ:
        yield
        return
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)


def _log(
    client: Any,
    run_path: str | os.PathLike[str],
    params: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    run_name: str | None,
    experiment: str,
) -> str:
    from mlflow.entities import Metric, Param

    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
    path = Path(run_path)
    run = client.create_run(experiment_id, run_name=run_name or path.name, tags={"actionbank.run_folder": str(path)})
    run_id: str = run.info.run_id
    now = int(time.time() * 1000)
    flat: dict[str, str] = {}
    _flatten("", params, flat)
    metrics = []
    for row in rows:
        step = int(row.get("iteration", 0))
        for key, value in row.items():
            if key != "iteration" and _is_number(value):
                metrics.append(Metric(key, float(value), now, step))
    for key, value in summary.items():
        if _is_number(value) and key != "iterations":
            metrics.append(Metric(f"final/{key}", float(value), now, 0))
    param_list = [Param(k, v) for k, v in flat.items()]
    for start in range(0, max(len(param_list), len(metrics)), 100):  # MLflow's batch limit is 100 params
        client.log_batch(run_id, metrics=metrics[start : start + 100], params=param_list[start : start + 100])
    client.log_artifacts(run_id, str(path))
    client.set_terminated(run_id)
    return run_id


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
