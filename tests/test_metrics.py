"""MetricLogger's TensorBoard events: written without torch, read back as torch's SummaryWriter's are."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actionbank_env.metrics import EventWriter, MetricLogger

ROOT = Path(__file__).resolve().parents[1]

LAYOUT = {"value": {"deployed and bank": ["env/deployed_value", "optimizer/bank_value"]}, "agent": {"ctr": ["env/ctr"]}}
#: (SummaryWriter stores a bool as the number 0 or 1; EventWriter as a bool, as TensorBoard's own hparams API does.)
PARAMS = {"users": 200, "alpha": 0.2, "embedder": "hashing"}
METRICS = {"final/deployed_value": 0.0643, "final/regret": 0.0645}


def _accumulate(folder: Path) -> list[Any]:
    """One EventAccumulator per event file of ``folder``, in file order (the hparams file is the second)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulators = []
    for events in sorted(folder.glob("events.out.tfevents.*"), key=lambda p: int(p.name.rsplit(".", 1)[1])):
        accumulator = EventAccumulator(str(events), size_guidance={"tensors": 0, "histograms": 0, "scalars": 0})
        accumulator.Reload()
        accumulators.append(accumulator)
    return accumulators


def _plugin_content(accumulator: Any, plugin: str) -> dict[str, bytes]:
    """``{tag: content}`` of ``plugin``'s summaries in one event file (empty when it has none)."""
    try:
        return dict(accumulator.PluginTagToContent(plugin))
    except KeyError:
        return {}


def _write(writer: Any, *, torch_style: bool) -> None:
    rng = np.random.default_rng(5)
    if torch_style:
        layout = {c: {t: ["Multiline", tags] for t, tags in charts.items()} for c, charts in LAYOUT.items()}
        writer.add_custom_scalars(layout)
    else:
        writer.add_custom_scalars(LAYOUT)
    writer.add_text("config", "| setting | value |\n|---|---|\n| users | 200 |", 0)
    for step in range(3):
        writer.add_scalar("env/ctr", 0.05 + 0.01 * step, step)
        writer.add_scalar("optimizer/bank_value", 0.12 + 0.003 * step, step)
        writer.add_histogram("fidelity/r_hat_minus_truth", rng.normal(0.0, 0.05, size=500), step)
    writer.add_histogram("edge/one_value", np.array([0.0]), 3)
    writer.add_histogram("edge/negative", -rng.exponential(size=50), 3)
    if torch_style:
        writer.add_hparams(PARAMS, METRICS, run_name=".")
    else:
        writer.add_hparams(PARAMS, METRICS)
    writer.close()


def test_event_writer_reads_back_as_torch_summary_writer(tmp_path: Path) -> None:
    """The same calls through EventWriter and SummaryWriter: EventAccumulator finds the same events."""
    pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    _write(EventWriter(tmp_path / "ours"), torch_style=False)
    _write(SummaryWriter(log_dir=str(tmp_path / "torch")), torch_style=True)
    ours, theirs = _accumulate(tmp_path / "ours"), _accumulate(tmp_path / "torch")
    assert len(ours) == len(theirs) == 2  # the run's file and the hparams file
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.Tags() == reference.Tags()
        for tag in reference.Tags()["scalars"]:
            expected = [(e.step, e.value) for e in reference.Scalars(tag)]
            assert [(e.step, e.value) for e in mine.Scalars(tag)] == expected
        for tag in reference.Tags()["histograms"]:
            for got, want in zip(mine.Histograms(tag), reference.Histograms(tag), strict=True):
                assert got.step == want.step
                np.testing.assert_allclose(got.histogram_value.bucket_limit, want.histogram_value.bucket_limit)
                assert got.histogram_value.bucket == want.histogram_value.bucket
                assert got.histogram_value.num == want.histogram_value.num
                np.testing.assert_allclose(
                    [got.histogram_value.min, got.histogram_value.max, got.histogram_value.sum],
                    [want.histogram_value.min, want.histogram_value.max, want.histogram_value.sum],
                    rtol=1e-12,
                )
        for tag in reference.Tags()["tensors"]:
            got_events, want_events = mine.Tensors(tag), reference.Tensors(tag)
            assert [e.step for e in got_events] == [e.step for e in want_events]
            assert [e.tensor_proto for e in got_events] == [e.tensor_proto for e in want_events]
            assert mine.SummaryMetadata(tag) == reference.SummaryMetadata(tag)
        # The hparams plugin's summaries (experiment, session start and end) hold the same protos.
        assert _plugin_content(mine, "hparams") == _plugin_content(reference, "hparams")
    assert len(_plugin_content(ours[1], "hparams")) == 3  # the hparams file has the experiment and the session


def test_metric_logger_skips_empty_histograms_and_rejects_other_hparam_types(tmp_path: Path) -> None:
    logger = MetricLogger(tmp_path)
    logger.histogram("fidelity/r_hat_minus_truth", np.array([np.nan, np.inf]), 0)  # nothing finite: no event
    logger.record("env/ctr", 0.1)
    logger.dump(0)
    assert logger.writer is not None
    with pytest.raises(TypeError, match=re.escape("hparam 'bank' must be an int, float, str or bool, got list.")):
        logger.writer.add_hparams({"bank": [1, 2]}, {})
    logger.hparams({"report": False, "users": 200}, {"final/ctr": 0.1})
    logger.close()
    run, hparams = _accumulate(tmp_path / "tb")
    assert run.Tags()["histograms"] == [] and [e.value for e in run.Scalars("env/ctr")] == [pytest.approx(0.1)]
    from tensorboard.plugins.hparams import plugin_data_pb2

    start = plugin_data_pb2.HParamsPluginData.FromString(
        _plugin_content(hparams, "hparams")["_hparams_/session_start_info"]
    ).session_start_info
    assert start.hparams["report"].bool_value is False and start.hparams["report"].HasField("bool_value")
    assert start.hparams["users"].number_value == 200


def test_a_simulation_with_tensorboard_does_not_import_torch(tmp_path: Path) -> None:
    """The default run (hashing embedder, TensorBoard on) never imports torch, and its events are readable."""
    code = (
        "import sys\n"
        "from actionbank_env.cli import main\n"
        "from tests.test_experiment import SMALL\n"
        f"assert main(['simulate', *SMALL, '--tensorboard', '--quiet', '--out', {str(tmp_path / 'run')!r}]) == 0\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    run, hparams = _accumulate(tmp_path / "run" / "tb")
    assert {"env/deployed_value", "fidelity/auc"} <= set(run.Tags()["scalars"])
    assert "fidelity/r_hat_minus_truth" in run.Tags()["histograms"]
    assert "config/text_summary" in run.Tags()["tensors"]
    assert "final/deployed_value" in hparams.Tags()["scalars"]
