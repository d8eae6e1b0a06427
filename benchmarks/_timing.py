"""Shared timing helper: a warm-up, then ``repeats`` timings; rates reported as median, min and max."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def rate(fn: Callable[[], float], repeats: int, *, warmup: int = 1) -> tuple[float, float, float]:
    """``fn`` returns the units of work it did; returns (median, min, max) units per second."""
    for _ in range(warmup):
        fn()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        units = fn()
        rates.append(units / (time.perf_counter() - start))
    return float(np.median(rates)), float(np.min(rates)), float(np.max(rates))


def row(case: str, unit: str, stats: tuple[float, float, float], **params: Any) -> dict[str, Any]:
    """One result row in the format every benchmark module returns."""
    med, lo, hi = stats
    return {"case": case, **params, "unit": unit, "median": med, "min": lo, "max": hi}
