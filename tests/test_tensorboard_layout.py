"""TensorBoard of ``actionbank simulate`` (issue 19, item 9): one chart per question, every fidelity number."""

from __future__ import annotations

from pathlib import Path

import pytest

from actionbank_env.cli import main
from actionbank_env.experiment import TENSORBOARD_LAYOUT
from tests.test_experiment import SMALL


def test_custom_scalars_layout_and_fidelity_scalars(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2

    assert main(["simulate", *SMALL, "--out", str(tmp_path / "run"), "--quiet"]) == 0
    accumulator = EventAccumulator(str(tmp_path / "run" / "tb"), size_guidance={"tensors": 0})
    accumulator.Reload()
    scalars = set(accumulator.Tags()["scalars"])
    # Every fidelity number of the report, with the AUC's ceiling beside the AUC.
    assert {
        "fidelity/auc",
        "fidelity/auc_ceiling",
        "fidelity/log_loss",
        "fidelity/log_loss_ceiling",
        "fidelity/ece",
    } <= scalars
    # hparams metrics (their own event file): the run's results, not its size.
    final = set()
    for events in (tmp_path / "run" / "tb").glob("events.out.tfevents.*"):
        single = EventAccumulator(str(events))
        single.Reload()
        final |= {tag for tag in single.Tags()["scalars"] if tag.startswith("final/")}
    assert "final/deployed_value" in final and "final/iterations" not in final
    # The layout names the deployed, bank and oracle values on one chart, and every tag it draws exists.
    layout = layout_pb2.Layout()
    layout.ParseFromString(accumulator.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0])
    charts = {chart.title: list(chart.multiline.tag) for category in layout.category for chart in category.chart}
    value_chart = charts["value: deployed, bank, proposed, oracle"]
    assert {"env/deployed_value", "optimizer/bank_value", "optimizer/oracle_bank_value"} <= set(value_chart)
    drawn = {tag for charts_ in TENSORBOARD_LAYOUT.values() for tags in charts_.values() for tag in tags}
    assert drawn <= scalars, drawn - scalars


def test_agent_update_metrics_reach_the_metric_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "loss_agent.py").write_text(
        "import numpy as np\n"
        "from actionbank_env.protocols import Decision\n\n\n"
        "class LossAgent:\n"
        "    def __init__(self, context, *, rng):\n"
        "        self.rng = rng\n\n"
        "    def set_bank(self, bank):\n"
        "        self.n = len(bank)\n\n"
        "    def act(self, users):\n"
        "        return Decision(self.rng.integers(self.n, size=len(users)), np.full(len(users), 1.0 / self.n))\n\n"
        "    def update(self, users, actions, rewards):\n"
        "        return {'train/my_loss': float(rewards.mean())}\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["simulate", *SMALL, "--company-strategy", "loss_agent:LossAgent", "--no-tensorboard"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--quiet"]) == 0
    header, *rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    column = header.split(",").index("train/my_loss")
    values = [float(row.split(",")[column]) for row in rows]
    assert len(values) == 2 and all(0.0 <= v <= 1.0 for v in values)
