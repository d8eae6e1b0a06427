"""MetricLogger: CSV always, stdout and TensorBoard on request (SB3-style ``record``/``dump``/``close``).

For the outer loop ``step`` is the campaign iteration; for env training it counts env steps.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from actionbank_env.core.io import atomic_write_text
from actionbank_env.results import METRICS_FILE, TENSORBOARD_DIR

__all__ = ["EventWriter", "MetricLogger"]

log = logging.getLogger(__name__)


def _fmt(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return repr(float(value))


class MetricLogger:
    """Collects scalar metrics and writes them per step.

    Args:
        folder: Run folder; ``metrics.csv`` is written there (atomically, rewritten at every dump so new keys
            can appear at any step), TensorBoard events under ``folder/tb``.
        stdout: Also print a one-line summary per dump to this stream (``None``: quiet).
        tensorboard: Write TensorBoard events (requires the ``tensorboard`` package; torch is not imported).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     logger = MetricLogger(d, tensorboard=False)
        ...     logger.record("env/ctr", 0.1); _ = logger.dump(0); logger.close()
        ...     print(Path(d, "metrics.csv").read_text().strip())
        step,env/ctr
        0,0.1
    """

    def __init__(
        self, folder: str | os.PathLike[str], *, stdout: TextIO | None = None, tensorboard: bool = True
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._pending: dict[str, float] = {}
        self._rows: list[dict[str, float]] = []
        self._keys: list[str] = []
        self._stdout = stdout
        self._writer: EventWriter | None = None
        if tensorboard:
            self._writer = EventWriter(self.folder / TENSORBOARD_DIR)

    @property
    def writer(self) -> EventWriter | None:
        """The TensorBoard :class:`EventWriter` (``None`` when TensorBoard is off)."""
        return self._writer

    def record(self, key: str, value: float) -> None:
        """Remember ``value`` under ``key`` until the next :meth:`dump`."""
        self._pending[key] = float(value)

    def record_many(self, values: Mapping[str, float], prefix: str = "") -> None:
        """Record every numeric entry of ``values`` as ``prefix + key``."""
        for key, value in values.items():
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
                self.record(prefix + key, float(value))

    def histogram(self, key: str, values: Any, step: int) -> None:
        """A TensorBoard histogram (no-op without TensorBoard)."""
        if self._writer is not None:
            arr = np.asarray(values, dtype=np.float64).ravel()
            arr = arr[np.isfinite(arr)]
            if arr.size:
                self._writer.add_histogram(key, arr, step)

    def text(self, key: str, text: str, step: int) -> None:
        """A TensorBoard text entry (no-op without TensorBoard)."""
        if self._writer is not None:
            self._writer.add_text(key, text, step)

    def custom_scalars(self, layout: Mapping[str, Mapping[str, Sequence[str]]]) -> None:
        """A TensorBoard custom-scalars layout: ``{category: {chart title: [tags drawn on one chart]}}``.

        No-op without TensorBoard. The charts appear in TensorBoard's "Custom Scalars" tab.
        """
        if self._writer is not None:
            self._writer.add_custom_scalars(layout)

    def hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        """Record the configuration as TensorBoard hparams (flattened to scalars and strings)."""
        if self._writer is None:
            return
        flat = {
            k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in params.items() if v is not None
        }
        finite = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        self._writer.add_hparams(flat, finite)

    def dump(self, step: int, *, tensorboard: bool = True) -> dict[str, float]:
        """Write the recorded values for ``step`` and clear them; returns what was written.

        ``tensorboard=False`` writes the CSV row only (e.g. for steps replayed on resume, whose events exist).
        """
        row = {"step": float(step), **self._pending}
        self._pending = {}
        for key in row:
            if key not in self._keys:
                self._keys.append(key)
        self._rows.append(row)
        lines = [",".join(self._keys)]
        for r in self._rows:
            lines.append(
                ",".join(str(int(r["step"])) if k == "step" else _fmt(r[k]) if k in r else "" for k in self._keys)
            )
        atomic_write_text(self.folder / METRICS_FILE, "\n".join(lines) + "\n")
        if self._writer is not None and tensorboard:
            for key, value in row.items():
                if key != "step" and math.isfinite(value):
                    self._writer.add_scalar(key, value, step)
            self._writer.flush()
        if self._stdout is not None:
            shown = " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "step")
            print(f"[{step}] {shown}", file=self._stdout, flush=True)
        return row

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@functools.cache
def _histogram_edges() -> NDArray[np.float64]:
    """TensorFlow's default histogram buckets, as ``torch.utils.tensorboard``'s ``SummaryWriter.default_bins``.

    Edges 0 and +-1e-12 * 1.1**k below 1e20 (each the previous one times 1.1, the same floats as SummaryWriter's
    loop): fine near zero, logarithmic away from it, the same for every histogram so TensorBoard can overlay steps.
    """
    positive = np.multiply.accumulate(np.r_[1e-12, np.full(800, 1.1)])
    positive = positive[positive < 1e20]
    edges = np.concatenate([-positive[::-1], [0.0], positive])
    edges.setflags(write=False)
    return edges


class EventWriter:
    """TensorBoard event files from the ``tensorboard`` package's own protos and event-file writer (no torch).

    The events are the ones ``torch.utils.tensorboard.SummaryWriter`` writes for the same calls (scalars as
    ``simple_value``, histograms as ``HistogramProto`` on TensorFlow's default buckets, text and custom-scalar
    layouts as their plugins' tensors, hparams as the hparams plugin's three summaries plus the metrics as
    scalars in a second event file), so ``EventAccumulator`` and TensorBoard read them as before; importing
    torch only to serialise a few protocol buffers cost a default run ~1.5 CPU-s.

    Args:
        log_dir: Folder of the event files (created if missing).

    Example:
        >>> import tempfile
        >>> from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        >>> with tempfile.TemporaryDirectory() as d:
        ...     writer = EventWriter(d)
        ...     writer.add_scalar("env/ctr", 0.25, 3); writer.close()
        ...     accumulator = EventAccumulator(d); _ = accumulator.Reload()
        ...     [(e.step, e.value) for e in accumulator.Scalars("env/ctr")]
        [(3, 0.25)]
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.log_dir = str(log_dir)
        # SummaryWriter's queue and flush interval: 10 events, 120 s (``flush`` and ``close`` write at once).
        self._events = EventFileWriter(self.log_dir, 10, 120)

    def _summary(self, value: Any, step: int | None, events: Any = None) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        event = Event(summary=Summary(value=[value]), wall_time=time.time())
        if step is not None:
            event.step = int(step)
        (self._events if events is None else events).add_event(event)

    def add_scalar(self, tag: str, value: float, step: int | None = None) -> None:
        """One point of the scalar series ``tag``."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        self._summary(Summary.Value(tag=tag, simple_value=float(value)), step)

    def add_histogram(self, tag: str, values: NDArray[np.float64], step: int | None = None) -> None:
        """A histogram of finite ``values`` (any shape, at least one) on TensorFlow's default buckets.

        Like TensorBoard's ``histogram.cc``: only the buckets from the first to the last non-empty one are kept,
        each stored by its right edge, plus an empty bucket on the left so the leftmost edge is kept too.
        """
        from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary

        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError(f"histogram {tag!r} needs at least one value, all finite; got {values.size} values.")
        edges = _histogram_edges()
        # Values beyond +-1e20 count in the outermost buckets (np.histogram would drop them).
        counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
        nonzero = np.flatnonzero(counts)
        start, end = int(nonzero[0]), int(nonzero[-1]) + 1
        kept = counts[start - 1 : end] if start > 0 else np.concatenate([[0], counts[:end]])
        histogram = HistogramProto(
            min=float(values.min()),
            max=float(values.max()),
            num=float(values.size),
            sum=float(values.sum()),
            sum_squares=float(values @ values),
            bucket_limit=edges[start : end + 1].tolist(),
            bucket=kept.astype(np.float64).tolist(),
        )
        self._summary(Summary.Value(tag=tag, histo=histogram), step)

    def add_text(self, tag: str, text: str, step: int | None = None) -> None:
        """A Markdown text entry (shown in TensorBoard's Text tab as ``tag``)."""
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
        from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData

        metadata = SummaryMetadata(
            plugin_data=SummaryMetadata.PluginData(
                plugin_name="text", content=TextPluginData(version=0).SerializeToString()
            )
        )
        tensor = TensorProto(
            dtype="DT_STRING",
            string_val=[text.encode("utf-8")],
            tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
        )
        self._summary(Summary.Value(tag=f"{tag}/text_summary", metadata=metadata, tensor=tensor), step)

    def add_custom_scalars(self, layout: Mapping[str, Mapping[str, Sequence[str]]]) -> None:
        """The Custom Scalars tab's layout: ``{category: {chart title: [tags drawn on one chart]}}``."""
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
        from tensorboard.plugins.custom_scalar import layout_pb2

        proto = layout_pb2.Layout(
            category=[
                layout_pb2.Category(
                    title=category,
                    chart=[
                        layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=list(tags)))
                        for title, tags in charts.items()
                    ],
                )
                for category, charts in layout.items()
            ]
        )
        tensor = TensorProto(dtype="DT_STRING", string_val=[proto.SerializeToString()], tensor_shape=TensorShapeProto())
        metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="custom_scalars"))
        self._summary(Summary.Value(tag="custom_scalars__config__", tensor=tensor, metadata=metadata), None)

    def add_hparams(self, params: Mapping[str, int | float | str | bool], metrics: Mapping[str, float]) -> None:
        """The HParams tab's session: ``params`` (numbers, strings, booleans) and the final ``metrics``.

        As ``SummaryWriter.add_hparams(..., run_name=".")``: the hparams plugin's experiment, session-start and
        session-end summaries and each metric as a scalar go to a second event file in the same folder, so the
        metrics stay apart from the per-step scalars of the same names. A bool is stored as a bool, as
        TensorBoard's own ``hparams`` API does (SummaryWriter stores it as the number 0 or 1).
        """
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        infos = []
        start = plugin_data_pb2.SessionStartInfo()
        for name, value in params.items():
            if isinstance(value, bool):  # before int: a bool is an int
                start.hparams[name].bool_value = value
                kind = "DATA_TYPE_BOOL"
            elif isinstance(value, (int, float)):
                start.hparams[name].number_value = value
                kind = "DATA_TYPE_FLOAT64"
            elif isinstance(value, str):
                start.hparams[name].string_value = value
                kind = "DATA_TYPE_STRING"
            else:
                raise TypeError(f"hparam {name!r} must be an int, float, str or bool, got {type(value).__name__}.")
            infos.append(api_pb2.HParamInfo(name=name, type=api_pb2.DataType.Value(kind)))
        experiment = api_pb2.Experiment(
            hparam_infos=infos, metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=k)) for k in metrics]
        )
        end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value("STATUS_SUCCESS"))
        events = EventFileWriter(self.log_dir, 10, 120)
        try:
            for tag, data in (
                (metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)),
                (metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start)),
                (metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end)),
            ):
                data.version = metadata.PLUGIN_DATA_VERSION
                plugin = SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString())
                self._summary(Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin)), None, events)
            for tag, value in metrics.items():
                self._summary(Summary.Value(tag=tag, simple_value=float(value)), None, events)
        finally:
            events.close()

    def flush(self) -> None:
        """Write the queued events to disk."""
        self._events.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._events.close()
