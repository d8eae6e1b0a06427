"""MetricLogger: CSV always, stdout and TensorBoard on request (SB3-style ``record``/``dump``/``close``).

For the outer loop ``step`` is the campaign iteration; for env training it counts env steps.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from actionbank_env.core.io import atomic_write_text
from actionbank_env.results import METRICS_FILE, TENSORBOARD_DIR

__all__ = ["MetricLogger"]

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
        tensorboard: Write TensorBoard events (requires the ``tensorboard`` package).

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
        self._writer: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.folder / TENSORBOARD_DIR))

    @property
    def writer(self) -> Any:
        """The TensorBoard ``SummaryWriter`` (``None`` when TensorBoard is off)."""
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
        arr = np.asarray(values, dtype=np.float64)
        if self._writer is not None and arr.size:
            self._writer.add_histogram(key, arr[np.isfinite(arr)], step)

    def text(self, key: str, text: str, step: int) -> None:
        """A TensorBoard text entry (no-op without TensorBoard)."""
        if self._writer is not None:
            self._writer.add_text(key, text, step)

    def custom_scalars(self, layout: Mapping[str, Mapping[str, Sequence[str]]]) -> None:
        """A TensorBoard custom-scalars layout: ``{category: {chart title: [tags drawn on one chart]}}``.

        No-op without TensorBoard. The charts appear in TensorBoard's "Custom Scalars" tab.
        """
        if self._writer is not None:
            self._writer.add_custom_scalars(
                {
                    category: {title: ["Multiline", list(tags)] for title, tags in charts.items()}
                    for category, charts in layout.items()
                }
            )

    def hparams(self, params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        """Record the configuration as TensorBoard hparams (flattened to scalars and strings)."""
        if self._writer is None:
            return
        flat = {
            k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in params.items() if v is not None
        }
        finite = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        self._writer.add_hparams(flat, finite, run_name=".")

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
